/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-snapshots-page"

#include "config.h"

#include "vireo-snapshots-page.h"

#include <adwaita.h>

struct _VireoSnapshotsPage
{
  GtkWidget     parent_instance;

  VireoMachine *machine;
};

G_DEFINE_FINAL_TYPE (VireoSnapshotsPage, vireo_snapshots_page, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

GtkWidget *
vireo_snapshots_page_new (void)
{
  return g_object_new (VIREO_TYPE_SNAPSHOTS_PAGE, NULL);
}

VireoMachine *
vireo_snapshots_page_get_machine (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);
  return self->machine;
}

void
vireo_snapshots_page_set_machine (VireoSnapshotsPage *self,
                                  VireoMachine       *machine)
{
  g_return_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (g_set_object (&self->machine, machine))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

static void
vireo_snapshots_page_dispose (GObject *object)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  g_clear_object (&self->machine);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_SNAPSHOTS_PAGE);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_snapshots_page_parent_class)->dispose (object);
}

static void
vireo_snapshots_page_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      g_value_set_object (value, self->machine);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_snapshots_page_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_snapshots_page_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_snapshots_page_class_init (VireoSnapshotsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_snapshots_page_dispose;
  object_class->get_property = vireo_snapshots_page_get_property;
  object_class->set_property = vireo_snapshots_page_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-snapshots-page.ui");
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
vireo_snapshots_page_init (VireoSnapshotsPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}
