/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-machine-row"

#include "config.h"

#include "vireo-machine-row.h"

#include <glib/gi18n.h>

struct _VireoMachineRow
{
  GtkWidget     parent_instance;

  VireoMachine *machine;
  GSignalGroup *signals;

  GtkStack     *thumbnail_stack;
  GtkPicture   *thumbnail;
  GtkImage     *badge;
  GtkLabel     *name_label;
  GtkLabel     *source_label;
  GtkImage     *state_dot;
  GtkLabel     *state_label;
};

G_DEFINE_FINAL_TYPE (VireoMachineRow, vireo_machine_row, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *state_classes[] = { "stopped", "starting", "running", "paused", "stopping",
                                       "broken" };

static void
update_thumbnail (VireoMachineRow *self)
{
  g_autoptr(GFile) file = self->machine ? vireo_machine_get_thumbnail (self->machine) : NULL;
  g_autoptr(GdkTexture) texture = NULL;

  if (file != NULL)
    texture = gdk_texture_new_from_file (file, NULL);
  gtk_picture_set_paintable (self->thumbnail, GDK_PAINTABLE (texture));
  gtk_stack_set_visible_child_name (self->thumbnail_stack,
                                    texture != NULL ? "picture" : "placeholder");
}

static void
update_labels (VireoMachineRow *self)
{
  VireoMachineConfig *config;
  VireoMachineState state;
  const char *problem;
  g_autofree char *accessible = NULL;

  if (self->machine == NULL)
    return;

  config = vireo_machine_get_config (self->machine);
  state = vireo_machine_get_state (self->machine);
  problem = vireo_machine_is_broken (self->machine)
              ? vireo_machine_get_broken_reason (self->machine)
              : vireo_machine_get_problem (self->machine);

  gtk_label_set_label (self->name_label, vireo_machine_get_name (self->machine));
  gtk_label_set_label (self->source_label,
                       config && config->source && *config->source ? config->source
                       : config && config->boot_kind == VIREO_BOOT_KERNEL ? _("Linux kernel")
                       : config && config->boot_kind == VIREO_BOOT_CDROM ? _("Installer")
                       : config ? _("Disk image")
                                : _("Settings cannot be read"));
  gtk_label_set_label (self->state_label, vireo_machine_state_to_label (state));

  for (guint i = 0; i < G_N_ELEMENTS (state_classes); i++)
    gtk_widget_remove_css_class (GTK_WIDGET (self->state_dot), state_classes[i]);
  if ((guint) state < G_N_ELEMENTS (state_classes))
    gtk_widget_add_css_class (GTK_WIDGET (self->state_dot), state_classes[state]);

  gtk_widget_set_visible (GTK_WIDGET (self->badge), problem != NULL);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self), problem);
  if (problem != NULL)
    gtk_label_set_label (self->state_label,
                         vireo_machine_is_broken (self->machine) ? _("Broken")
                                                                 : _("A file is missing"));

  /* Translators: what a screen reader says for a machine in the list: name, then state */
  accessible = g_strdup_printf (C_("accessible", "%s, %s"),
                                vireo_machine_get_name (self->machine),
                                gtk_label_get_label (self->state_label));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  accessible, -1);
}

GtkWidget *
vireo_machine_row_new (void)
{
  return g_object_new (VIREO_TYPE_MACHINE_ROW, NULL);
}

VireoMachine *
vireo_machine_row_get_machine (VireoMachineRow *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_ROW (self), NULL);
  return self->machine;
}

void
vireo_machine_row_set_machine (VireoMachineRow *self,
                               VireoMachine    *machine)
{
  g_return_if_fail (VIREO_IS_MACHINE_ROW (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (!g_set_object (&self->machine, machine))
    return;
  g_signal_group_set_target (self->signals, machine);
  update_labels (self);
  update_thumbnail (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

static void
vireo_machine_row_dispose (GObject *object)
{
  VireoMachineRow *self = VIREO_MACHINE_ROW (object);

  g_signal_group_set_target (self->signals, NULL);
  g_clear_object (&self->signals);
  g_clear_object (&self->machine);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_MACHINE_ROW);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_machine_row_parent_class)->dispose (object);
}

static void
vireo_machine_row_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  VireoMachineRow *self = VIREO_MACHINE_ROW (object);

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
vireo_machine_row_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  VireoMachineRow *self = VIREO_MACHINE_ROW (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_machine_row_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_machine_row_class_init (VireoMachineRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_machine_row_dispose;
  object_class->get_property = vireo_machine_row_get_property;
  object_class->set_property = vireo_machine_row_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-machine-row.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, thumbnail_stack);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, thumbnail);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, badge);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, name_label);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, source_label);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, state_dot);
  gtk_widget_class_bind_template_child (widget_class, VireoMachineRow, state_label);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "machinerow");
}

static void
vireo_machine_row_init (VireoMachineRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->signals, "notify::name", G_CALLBACK (update_labels), self);
  g_signal_group_connect_swapped (self->signals, "notify::state", G_CALLBACK (update_labels), self);
  g_signal_group_connect_swapped (self->signals, "notify::problem", G_CALLBACK (update_labels),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::config", G_CALLBACK (update_labels),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::thumbnail",
                                  G_CALLBACK (update_thumbnail), self);
}
