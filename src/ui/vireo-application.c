/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-application"

#include "config.h"

#include "vireo-application.h"

#include <glib/gi18n.h>

#include "vireo-quit-dialog.h"
#include "vireo-thumbnailer.h"
#include "vireo-window.h"

struct _VireoApplication
{
  AdwApplication    parent_instance;

  VireoLibrary     *library;
  VireoThumbnailer *thumbnailer;
  GSettings        *settings;
  gboolean          demo;      /* --demo */
  gboolean          quitting;  /* the quit question is on screen */
};

G_DEFINE_FINAL_TYPE (VireoApplication, vireo_application, ADW_TYPE_APPLICATION)

static const GOptionEntry option_entries[] = {
  { "demo", 0, 0, G_OPTION_ARG_NONE, NULL,
    N_("Open the demo machine (made first if the library has none) and start it"), NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Show the version and exit"), NULL },
  { NULL }
};

VireoApplication *
vireo_application_new (void)
{
  return g_object_new (VIREO_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       "flags", G_APPLICATION_HANDLES_COMMAND_LINE,
                       "resource-base-path", "/org/vireo/Vireo",
                       NULL);
}

VireoLibrary *
vireo_application_get_library (VireoApplication *self)
{
  g_return_val_if_fail (VIREO_IS_APPLICATION (self), NULL);
  return self->library;
}

GSettings *
vireo_application_get_settings (VireoApplication *self)
{
  g_return_val_if_fail (VIREO_IS_APPLICATION (self), NULL);
  return self->settings;
}

static VireoWindow *
get_main_window (VireoApplication *self)
{
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (self)); l; l = l->next)
    if (VIREO_IS_WINDOW (l->data))
      return l->data;
  return NULL;
}

static VireoWindow *
ensure_window (VireoApplication *self)
{
  VireoWindow *window = get_main_window (self);

  if (window == NULL)
    window = vireo_window_new (self);
  return window;
}

/* ---- the demo machine ------------------------------------------------------------------- */

typedef struct
{
  VireoApplication *app;
  GtkWindow        *window;  /* weak */
} DemoData;

static void
demo_data_free (DemoData *data)
{
  g_clear_object (&data->app);
  g_clear_weak_pointer (&data->window);
  g_free (data);
}

static void
open_demo_machine (DemoData *data, VireoMachine *machine)
{
  if (data->window != NULL && VIREO_IS_WINDOW (data->window))
    {
      vireo_window_select_machine (VIREO_WINDOW (data->window), machine);
      if (vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_STOPPED)
        vireo_window_start_machine (VIREO_WINDOW (data->window), machine);
    }
}

static void
demo_created_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  DemoData *data = user_data;
  g_autoptr(VireoMachine) machine = NULL;
  g_autoptr(GError) error = NULL;

  machine = vireo_library_create_demo_machine_finish (VIREO_LIBRARY (object), result, &error);
  if (machine == NULL)
    {
      if (data->window != NULL && VIREO_IS_WINDOW (data->window))
        vireo_window_show_error (VIREO_WINDOW (data->window),
                                 _("Could not make the demo machine"), error);
      else
        g_warning ("Could not make the demo machine: %s", error->message);
    }
  else
    open_demo_machine (data, machine);
  demo_data_free (data);
}

static VireoMachine *
find_demo_machine (VireoApplication *self)
{
  g_autofree char *guest = vireo_library_get_demo_guest_path ();
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->library));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) machine = g_list_model_get_item (G_LIST_MODEL (self->library), i);
      VireoMachineConfig *config = vireo_machine_get_config (machine);

      if (config != NULL && config->kernel != NULL && g_strcmp0 (config->kernel, guest) == 0)
        return g_steal_pointer (&machine);
    }
  return NULL;
}

static void
open_demo_when_loaded (VireoApplication *self, GtkWindow *window)
{
  g_autoptr(VireoMachine) existing = find_demo_machine (self);
  DemoData *data = g_new0 (DemoData, 1);

  data->app = g_object_ref (self);
  g_set_weak_pointer (&data->window, window);
  if (existing != NULL)
    {
      open_demo_machine (data, existing);
      demo_data_free (data);
      return;
    }
  vireo_library_create_demo_machine_async (self->library, NULL, demo_created_cb, data);
}

static void
library_loaded_for_demo_cb (VireoLibrary *library,
                            GParamSpec   *pspec,
                            gpointer      user_data)
{
  GtkWindow *window = user_data;
  VireoApplication *self = VIREO_APPLICATION (g_application_get_default ());

  if (!vireo_library_is_loaded (library))
    return;
  g_signal_handlers_disconnect_by_func (library, library_loaded_for_demo_cb, user_data);
  open_demo_when_loaded (self, window);
}

void
vireo_application_open_demo (VireoApplication *self,
                             GtkWindow        *window)
{
  g_return_if_fail (VIREO_IS_APPLICATION (self));
  g_return_if_fail (GTK_IS_WINDOW (window));

  if (vireo_library_is_loaded (self->library))
    open_demo_when_loaded (self, window);
  else
    g_signal_connect_object (self->library, "notify::loaded",
                             G_CALLBACK (library_loaded_for_demo_cb), window, 0);
}

/* ---- quitting --------------------------------------------------------------------------- */

static void
quit_dialog_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(VireoApplication) self = user_data;

  self->quitting = FALSE;
  if (!vireo_quit_dialog_run_finish (result, NULL))
    return;
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (self)); l; l = l->next)
    if (VIREO_IS_WINDOW (l->data))
      vireo_window_save_state (l->data);
  g_application_quit (G_APPLICATION (self));
}

void
vireo_application_request_quit (VireoApplication *self)
{
  g_return_if_fail (VIREO_IS_APPLICATION (self));

  if (self->quitting)
    return;
  self->quitting = TRUE;
  vireo_quit_dialog_run_async (gtk_application_get_active_window (GTK_APPLICATION (self)),
                               self->library, NULL, quit_dialog_cb, g_object_ref (self));
}

/* ---- actions ---------------------------------------------------------------------------- */

static void
quit_action (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  vireo_application_request_quit (VIREO_APPLICATION (user_data));
}

static void
about_action (GSimpleAction *action,
              GVariant      *param,
              gpointer       user_data)
{
  VireoApplication *self = user_data;
  static const char *developers[] = { "The Vireo authors", NULL };
  GtkWidget *about;

  about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                        "transient-for", gtk_application_get_active_window (GTK_APPLICATION (self)),
                        "application-icon", APP_ID,
                        "application-name", _("Vireo"),
                        "developer-name", _("The Vireo authors"),
                        "version", PACKAGE_VERSION,
                        "comments", _("Create, run and watch virtual machines, with no service "
                                      "running in the background"),
                        "license-type", GTK_LICENSE_GPL_3_0,
                        "developers", developers,
                        /* Translators: put your names here, one per line */
                        "translator-credits", _("translator-credits"),
                        NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
new_window_action (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       user_data)
{
  gtk_window_present (GTK_WINDOW (ensure_window (VIREO_APPLICATION (user_data))));
}

static void
demo_action (GSimpleAction *action,
             GVariant      *param,
             gpointer       user_data)
{
  VireoApplication *self = user_data;
  VireoWindow *window = ensure_window (self);

  gtk_window_present (GTK_WINDOW (window));
  vireo_application_open_demo (self, GTK_WINDOW (window));
}

static const GActionEntry app_actions[] = {
  { "quit", quit_action },
  { "about", about_action },
  { "new-window", new_window_action },
  { "demo", demo_action },
};

/* ---- GApplication ----------------------------------------------------------------------- */

static void
library_loaded_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(VireoApplication) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!vireo_library_load_finish (VIREO_LIBRARY (object), result, &error))
    {
      VireoWindow *window = get_main_window (self);

      if (window != NULL)
        vireo_window_show_error (window, _("Could not read the machine library"), error);
      else
        g_warning ("Could not read the machine library: %s", error->message);
    }
}

static void
vireo_application_startup (GApplication *app)
{
  VireoApplication *self = VIREO_APPLICATION (app);
  static const char *quit_accels[] = { "<Control>q", NULL };
  static const char *new_accels[] = { "<Control>n", NULL };
  static const char *fullscreen_accels[] = { "F11", NULL };
  static const char *search_accels[] = { "<Control>f", NULL };
  static const char *shortcuts_accels[] = { "<Control>question", NULL };

  G_APPLICATION_CLASS (vireo_application_parent_class)->startup (app);

  g_action_map_add_action_entries (G_ACTION_MAP (self), app_actions, G_N_ELEMENTS (app_actions),
                                   self);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "app.quit", quit_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "win.new-machine", new_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "win.fullscreen",
                                         fullscreen_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "win.search", search_accels);
  /* (GtkApplication would do it for gtk/help-overlay.ui; see vireo.gresource.xml.) */
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "win.show-help-overlay",
                                         shortcuts_accels);

  self->settings = g_settings_new ("org.vireo.Vireo");
  self->library = vireo_library_new (g_getenv ("VIREO_LIBRARY_DIR"));
  self->thumbnailer = vireo_thumbnailer_new (self->library);
  vireo_library_load_async (self->library, NULL, library_loaded_cb, g_object_ref (self));
}

static void
vireo_application_activate (GApplication *app)
{
  gtk_window_present (GTK_WINDOW (ensure_window (VIREO_APPLICATION (app))));
}

static int
vireo_application_handle_local_options (GApplication *app,
                                        GVariantDict *options)
{
  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("%s %s\n", _("Vireo"), PACKAGE_VERSION);
      return 0;
    }
  return -1;
}

static int
vireo_application_command_line (GApplication            *app,
                                GApplicationCommandLine *command_line)
{
  VireoApplication *self = VIREO_APPLICATION (app);
  GVariantDict *options = g_application_command_line_get_options_dict (command_line);

  g_application_activate (app);
  if (g_variant_dict_contains (options, "demo"))
    vireo_application_open_demo (self, GTK_WINDOW (get_main_window (self)));
  return 0;
}

static void
vireo_application_shutdown (GApplication *app)
{
  VireoApplication *self = VIREO_APPLICATION (app);
  guint n = self->library ? g_list_model_get_n_items (G_LIST_MODEL (self->library)) : 0;

  /* Whatever still runs (the user already chose to force it off, or the session ends):
   * pull the plug, so that every disk image is closed cleanly. */
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) machine = g_list_model_get_item (G_LIST_MODEL (self->library), i);

      vireo_machine_force_off (machine);
    }

  G_APPLICATION_CLASS (vireo_application_parent_class)->shutdown (app);
}

static void
vireo_application_dispose (GObject *object)
{
  VireoApplication *self = VIREO_APPLICATION (object);

  g_clear_object (&self->thumbnailer);
  g_clear_object (&self->library);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (vireo_application_parent_class)->dispose (object);
}

static void
vireo_application_class_init (VireoApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->dispose = vireo_application_dispose;
  app_class->startup = vireo_application_startup;
  app_class->activate = vireo_application_activate;
  app_class->handle_local_options = vireo_application_handle_local_options;
  app_class->command_line = vireo_application_command_line;
  app_class->shutdown = vireo_application_shutdown;
}

static void
vireo_application_init (VireoApplication *self)
{
  g_application_add_main_option_entries (G_APPLICATION (self), option_entries);
  g_application_set_option_context_summary (G_APPLICATION (self),
                                            _("Create, run and watch virtual machines."));
}
