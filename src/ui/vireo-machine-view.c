/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-machine-view"

#include "config.h"

#include "vireo-machine-view.h"

#include <glib/gi18n.h>

#include "vireo-snapshots-page.h"

struct _VireoMachineView
{
  GtkWidget             parent_instance;

  VireoMachine         *machine;
  VireoLibrary         *library;
  GSignalGroup         *signals;

  GtkRevealer          *banner_revealer;
  GtkLabel             *banner_label;
  AdwViewStack         *stack;
  GtkStack             *display_stack;
  GtkPicture           *last_frame;
  GtkLabel             *off_label;
  GtkLabel             *off_detail;
  GtkSpinner           *spinner;
  VireoDisplay         *display;
  AdwStatusPage        *broken_status;
  VireoConsolePage     *console;
  VireoDetailsPage     *details;
  VireoSnapshotsPage   *snapshots;
  VireoPerformancePage *performance;
};

G_DEFINE_FINAL_TYPE (VireoMachineView, vireo_machine_view, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  PROP_LIBRARY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
update_last_frame (VireoMachineView *self)
{
  g_autoptr(GFile) file = vireo_machine_get_thumbnail (self->machine);
  g_autoptr(GdkTexture) texture = file ? gdk_texture_new_from_file (file, NULL) : NULL;

  gtk_picture_set_paintable (self->last_frame, GDK_PAINTABLE (texture));
  /* Light text over the dimmed frame; the theme's colours without one. */
  if (texture != NULL)
    gtk_widget_add_css_class (GTK_WIDGET (self->display_stack), "has-frame");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->display_stack), "has-frame");
}

static void
update_display (VireoMachineView *self)
{
  VireoMachineConfig *config = vireo_machine_get_config (self->machine);
  VireoMachineState state = vireo_machine_get_state (self->machine);
  const char *page;

  if (state == VIREO_MACHINE_STATE_BROKEN)
    {
      adw_status_page_set_description (self->broken_status,
                                       vireo_machine_get_broken_reason (self->machine));
      page = "broken";
    }
  else if (config != NULL && config->display == VIREO_DISPLAY_NONE
           && state != VIREO_MACHINE_STATE_STOPPED)
    page = "headless";
  else if (state == VIREO_MACHINE_STATE_STARTING)
    page = "starting";
  else if (vireo_machine_get_vr_machine (self->machine) != NULL)
    page = "screen";
  else
    page = "off";

  gtk_spinner_set_spinning (self->spinner, g_str_equal (page, "starting"));
  if (g_str_equal (page, "off"))
    {
      const char *problem = vireo_machine_get_problem (self->machine);

      gtk_label_set_label (self->off_detail,
                           problem ? problem
                           : config && config->display == VIREO_DISPLAY_NONE
                             ? _("It has no screen: once it runs, use the Console page.")
                             : "");
      gtk_widget_set_visible (GTK_WIDGET (self->off_detail), *gtk_label_get_label (self->off_detail));
    }
  gtk_stack_set_visible_child_name (self->display_stack, page);
}

static void
update_banner (VireoMachineView *self)
{
  const char *problem = vireo_machine_get_problem (self->machine);
  const GError *error = vireo_machine_get_problem_error (self->machine);
  const char *boot_failure = vireo_machine_get_boot_failure (self->machine);
  g_autofree char *text = NULL;

  if (problem != NULL && g_error_matches (error, VIREO_MACHINE_CONFIG_ERROR,
                                          VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND))
    /* Translators: %s says which file is missing; the banner offers "Open Details" */
    text = g_strdup_printf (_("This machine cannot start: %s Choose the file again in "
                              "Details."), problem);
  else if (problem != NULL)
    /* Translators: %s says what is wrong and what to do; the banner offers "Open Details" */
    text = g_strdup_printf (_("This machine cannot start: %s"), problem);
  else if (boot_failure != NULL && *boot_failure != '\0')
    /* Translators: %s is what the PC firmware printed, in English, like "No bootable
     * device."; the banner offers "Open Details" */
    text = g_strdup_printf (_("The machine found nothing to boot (the firmware says: “%s”). "
                              "Insert an installer ISO or choose another boot device in "
                              "Details."),
                            boot_failure);
  else if (boot_failure != NULL)
    text = g_strdup (_("The machine found nothing to boot. Insert an installer ISO or choose "
                       "another boot device in Details."));

  if (text != NULL)
    gtk_label_set_label (self->banner_label, text);
  gtk_revealer_set_reveal_child (self->banner_revealer, text != NULL);
}

static void
vr_machine_changed_cb (VireoMachineView *self)
{
  /* Called when the engine's machine appears, and just before it is freed. */
  vireo_display_set_machine (self->display, vireo_machine_get_vr_machine (self->machine));
  update_display (self);
}

GtkWidget *
vireo_machine_view_new (VireoMachine *machine,
                        VireoLibrary *library)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (machine), NULL);

  return g_object_new (VIREO_TYPE_MACHINE_VIEW, "machine", machine, "library", library, NULL);
}

VireoMachine *
vireo_machine_view_get_machine (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->machine;
}

AdwViewStack *
vireo_machine_view_get_stack (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->stack;
}

VireoDisplay *
vireo_machine_view_get_display (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->display;
}

VireoConsolePage *
vireo_machine_view_get_console (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->console;
}

VireoDetailsPage *
vireo_machine_view_get_details (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->details;
}

VireoPerformancePage *
vireo_machine_view_get_performance (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return self->performance;
}

void
vireo_machine_view_show_page (VireoMachineView *self,
                              const char       *name)
{
  g_return_if_fail (VIREO_IS_MACHINE_VIEW (self));
  adw_view_stack_set_visible_child_name (self->stack, name);
}

const char *
vireo_machine_view_get_display_state (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);
  return gtk_stack_get_visible_child_name (self->display_stack);
}

const char *
vireo_machine_view_get_banner (VireoMachineView *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE_VIEW (self), NULL);

  if (!gtk_revealer_get_reveal_child (self->banner_revealer))
    return NULL;
  return gtk_label_get_label (self->banner_label);
}

static void
show_details_action (GtkWidget *widget, const char *name, GVariant *param)
{
  vireo_machine_view_show_page (VIREO_MACHINE_VIEW (widget), "details");
}

static void
show_console_action (GtkWidget *widget, const char *name, GVariant *param)
{
  vireo_machine_view_show_page (VIREO_MACHINE_VIEW (widget), "console");
}

static void
delete_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoMachineView *self = VIREO_MACHINE_VIEW (widget);

  gtk_widget_activate_action (GTK_WIDGET (self->details), "details.delete", NULL);
}

static void
vireo_machine_view_constructed (GObject *object)
{
  VireoMachineView *self = VIREO_MACHINE_VIEW (object);

  G_OBJECT_CLASS (vireo_machine_view_parent_class)->constructed (object);

  g_assert (self->machine != NULL);
  g_signal_group_set_target (self->signals, self->machine);
  vireo_console_page_set_machine (self->console, self->machine);
  vireo_details_page_set_library (self->details, self->library);
  vireo_details_page_set_machine (self->details, self->machine);
  vireo_snapshots_page_set_machine (self->snapshots, self->machine);
  vireo_performance_page_set_machine (self->performance, self->machine);
  vireo_display_set_machine (self->display, vireo_machine_get_vr_machine (self->machine));
  update_last_frame (self);
  update_banner (self);
  update_display (self);
}

static void
vireo_machine_view_dispose (GObject *object)
{
  VireoMachineView *self = VIREO_MACHINE_VIEW (object);

  if (self->display != NULL)
    vireo_display_set_machine (self->display, NULL);
  if (self->signals != NULL)
    g_signal_group_set_target (self->signals, NULL);
  g_clear_object (&self->signals);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_MACHINE_VIEW);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }
  g_clear_object (&self->machine);
  g_clear_object (&self->library);

  G_OBJECT_CLASS (vireo_machine_view_parent_class)->dispose (object);
}

static void
vireo_machine_view_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  VireoMachineView *self = VIREO_MACHINE_VIEW (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      g_value_set_object (value, self->machine);
      break;
    case PROP_LIBRARY:
      g_value_set_object (value, self->library);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_machine_view_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  VireoMachineView *self = VIREO_MACHINE_VIEW (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      self->machine = g_value_dup_object (value);
      break;
    case PROP_LIBRARY:
      self->library = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_machine_view_class_init (VireoMachineViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->constructed = vireo_machine_view_constructed;
  object_class->dispose = vireo_machine_view_dispose;
  object_class->get_property = vireo_machine_view_get_property;
  object_class->set_property = vireo_machine_view_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_LIBRARY] =
    g_param_spec_object ("library", NULL, NULL, VIREO_TYPE_LIBRARY,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (VIREO_TYPE_DISPLAY);
  g_type_ensure (VIREO_TYPE_CONSOLE_PAGE);
  g_type_ensure (VIREO_TYPE_DETAILS_PAGE);
  g_type_ensure (VIREO_TYPE_SNAPSHOTS_PAGE);
  g_type_ensure (VIREO_TYPE_PERFORMANCE_PAGE);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-machine-view.ui");
#define BIND(x) gtk_widget_class_bind_template_child (widget_class, VireoMachineView, x)
  BIND (banner_revealer);
  BIND (banner_label);
  BIND (stack);
  BIND (display_stack);
  BIND (last_frame);
  BIND (off_label);
  BIND (off_detail);
  BIND (spinner);
  BIND (display);
  BIND (broken_status);
  BIND (console);
  BIND (details);
  BIND (snapshots);
  BIND (performance);
#undef BIND
  gtk_widget_class_install_action (widget_class, "view.show-details", NULL, show_details_action);
  gtk_widget_class_install_action (widget_class, "view.show-console", NULL, show_console_action);
  gtk_widget_class_install_action (widget_class, "view.delete", NULL, delete_action);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
vireo_machine_view_init (VireoMachineView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->signals, "notify::vr-machine",
                                  G_CALLBACK (vr_machine_changed_cb), self);
  g_signal_group_connect_swapped (self->signals, "notify::state", G_CALLBACK (update_display),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::config", G_CALLBACK (update_display),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::problem", G_CALLBACK (update_banner),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::boot-failure",
                                  G_CALLBACK (update_banner), self);
  g_signal_group_connect_swapped (self->signals, "notify::problem", G_CALLBACK (update_display),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::thumbnail",
                                  G_CALLBACK (update_last_frame), self);
}
