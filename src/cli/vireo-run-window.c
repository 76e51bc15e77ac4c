/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * vireo-run's window: one VireoDisplay under a header bar with the Send Key menu,
 * screenshot and record buttons, a view menu (fit, 1:1, fullscreen) and the capture hint.
 */


#include "config.h"

#include <glib/gi18n.h>

#include "vireo-run-window.h"

struct _VireoRunWindow
{
  GtkWindow       parent_instance;

  GtkLabel       *title_label;
  GtkLabel       *hint_label;
  GtkMenuButton  *send_key_button;
  VireoDisplay   *display;

  GSimpleActionGroup *actions;
  char           *name;
};

G_DEFINE_FINAL_TYPE (VireoRunWindow, vireo_run_window, GTK_TYPE_WINDOW)

/* A new file name in the XDG folder @dir (or the current directory) for a capture. */
static GFile *
capture_file (VireoRunWindow *self,
              GUserDirectory  dir,
              const char     *extension)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%d %H-%M-%S");
  g_autofree char *base = NULL;
  const char *folder = g_get_user_special_dir (dir);

  if (folder == NULL || !g_file_test (folder, G_FILE_TEST_IS_DIR))
    folder = ".";
  /* Translators: a file name: the machine's name and a date and time */
  base = g_strdup_printf (_("%s %s.%s"), self->name, stamp, extension);
  return g_file_new_build_filename (folder, base, NULL);
}

static void
on_screenshot_done (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr (GFile) file = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_file_get_path (file);

  if (!vireo_display_screenshot_finish (VIREO_DISPLAY (object), result, &error))
    g_printerr ("vireo-run: %s\n", error->message);
  else
    g_printerr ("vireo-run: screenshot saved to %s\n", path);
}

static void
action_screenshot (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  VireoRunWindow *self = user_data;
  g_autoptr (GFile) file = capture_file (self, G_USER_DIRECTORY_PICTURES, "png");

  vireo_display_screenshot_async (self->display, file, NULL, on_screenshot_done,
                                  g_object_ref (file));
}

static void
action_record (GSimpleAction *action,
               GVariant      *value,
               gpointer       user_data)
{
  VireoRunWindow *self = user_data;
  g_autoptr (GError) error = NULL;

  if (g_variant_get_boolean (value) == vireo_display_get_recording (self->display))
    return;
  if (vireo_display_get_recording (self->display))
    {
      if (!vireo_display_stop_recording (self->display, &error))
        g_printerr ("vireo-run: %s\n", error->message);
      else
        g_printerr ("vireo-run: recording stopped\n");
    }
  else
    {
      g_autoptr (GFile) file = capture_file (self, G_USER_DIRECTORY_VIDEOS, "webm");
      g_autofree char *path = g_file_get_path (file);

      if (!vireo_display_start_recording (self->display, file, &error))
        g_printerr ("vireo-run: %s\n", error->message);
      else
        g_printerr ("vireo-run: recording to %s\n", path);
    }
}

static void
action_fullscreen (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  GtkWindow *window = user_data;

  if (gtk_window_is_fullscreen (window))
    gtk_window_unfullscreen (window);
  else
    gtk_window_fullscreen (window);
}

static void
update_hint (VireoRunWindow *self)
{
  if (vireo_display_get_captured (self->display))
    gtk_label_set_label (self->hint_label,
                         _("Press Ctrl+Alt to release the keyboard and pointer"));
  else
    gtk_label_set_label (self->hint_label,
                         _("Click the screen to capture the keyboard and pointer"));
}

static void
on_display_notify (GObject        *object,
                   GParamSpec     *pspec,
                   VireoRunWindow *self)
{
  if (g_str_equal (pspec->name, "captured"))
    update_hint (self);
  else if (g_str_equal (pspec->name, "recording"))
    {
      GAction *record = g_action_map_lookup_action (G_ACTION_MAP (self->actions), "record");

      /* Also when the display stopped by itself (the machine went away). */
      gboolean recording = vireo_display_get_recording (self->display);

      g_simple_action_set_state (G_SIMPLE_ACTION (record), g_variant_new_boolean (recording));
    }
}

static const GActionEntry action_entries[] = {
  { .name = "screenshot", .activate = action_screenshot },
  { .name = "record", .state = "false", .change_state = action_record },
  { .name = "fullscreen", .activate = action_fullscreen },
};

static void
vireo_run_window_dispose (GObject *object)
{
  VireoRunWindow *self = VIREO_RUN_WINDOW (object);

  /* No gtk_widget_dispose_template (): GtkWindow disposes of its child and titlebar itself. */
  g_clear_object (&self->actions);

  G_OBJECT_CLASS (vireo_run_window_parent_class)->dispose (object);
}

static void
vireo_run_window_finalize (GObject *object)
{
  VireoRunWindow *self = VIREO_RUN_WINDOW (object);

  g_free (self->name);

  G_OBJECT_CLASS (vireo_run_window_parent_class)->finalize (object);
}

static void
vireo_run_window_class_init (VireoRunWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_run_window_dispose;
  object_class->finalize = vireo_run_window_finalize;

  g_type_ensure (VIREO_TYPE_DISPLAY);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/run/vireo-run-window.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoRunWindow, title_label);
  gtk_widget_class_bind_template_child (widget_class, VireoRunWindow, hint_label);
  gtk_widget_class_bind_template_child (widget_class, VireoRunWindow, send_key_button);
  gtk_widget_class_bind_template_child (widget_class, VireoRunWindow, display);
}

static void
ensure_css (void)
{
  static gsize loaded = 0;

  if (g_once_init_enter (&loaded))
    {
      g_autoptr (GtkCssProvider) provider = gtk_css_provider_new ();

      gtk_css_provider_load_from_resource (provider, "/org/vireo/Vireo/run/vireo-run-window.css");
      gtk_style_context_add_provider_for_display (gdk_display_get_default (),
                                                  GTK_STYLE_PROVIDER (provider),
                                                  GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
      g_once_init_leave (&loaded, 1);
    }
}

static void
vireo_run_window_init (VireoRunWindow *self)
{
  g_autoptr (GMenuModel) send_keys = vireo_display_get_send_key_menu ();

  gtk_widget_init_template (GTK_WIDGET (self));
  ensure_css ();
  gtk_widget_add_css_class (GTK_WIDGET (self), "vireo-run");

  self->actions = g_simple_action_group_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self->actions), action_entries,
                                   G_N_ELEMENTS (action_entries), self);
  gtk_widget_insert_action_group (GTK_WIDGET (self), "win", G_ACTION_GROUP (self->actions));

  gtk_menu_button_set_menu_model (self->send_key_button, send_keys);
  /* The header bar's menus act on the display. */
  gtk_widget_insert_action_group (GTK_WIDGET (self), "display",
                                  vireo_display_get_action_group (self->display));
  g_signal_connect_object (self->display, "notify", G_CALLBACK (on_display_notify), self, 0);
  update_hint (self);
}

GtkWidget *
vireo_run_window_new (VrMachine *machine)
{
  VireoRunWindow *self;
  const VrMachineConfig *config;
  g_autofree char *title = NULL;

  g_return_val_if_fail (machine != NULL, NULL);

  self = g_object_new (VIREO_TYPE_RUN_WINDOW, NULL);
  config = vr_machine_get_config (machine);
  if (config->name != NULL && config->name[0] != '\0')
    self->name = g_strdup (config->name);
  else if (config->kernel != NULL)
    self->name = g_path_get_basename (config->kernel);
  else
    self->name = g_strdup ("vireo");
  gtk_label_set_label (self->title_label, self->name);
  gtk_window_set_title (GTK_WINDOW (self), self->name);
  vireo_display_set_machine (self->display, machine);
  return GTK_WIDGET (self);
}

VireoDisplay *
vireo_run_window_get_display (VireoRunWindow *self)
{
  g_return_val_if_fail (VIREO_IS_RUN_WINDOW (self), NULL);
  return self->display;
}
