/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The real app (VireoApplication, VireoWindow), in-process under Xvfb, against a temporary
 * library with two machines: "Demo" (the demo guest: a screen, a serial prompt, powers off
 * on the ACPI power button) and "Hello" (the hello guest, no screen). The test looks at what
 * a user would: the list, the machine view's pages, the serial console's text, the state
 * after the power button; it clones and deletes through the Details page's dialogs and
 * checks the quit question. Screenshots of the window go to $VIREO_TEST_LOG_DIR.
 */

#include "config.h"

#include <adwaita.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "disk/vr-disk.h"
#include "vireo-application.h"
#include "vireo-library.h"
#include "vireo-machine-view.h"
#include "vireo-window.h"

static VireoApplication *app;
static VireoWindow *window;
static char *tmp_root;
static char *guest_dir;

/* ---- helpers ---------------------------------------------------------------------------- */

typedef gboolean (*CondFunc) (gpointer data);

static gboolean
wait_for (CondFunc cond, gpointer data, double timeout_s)
{
  gint64 end = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);

  while (!cond (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (5000);
    }
  return TRUE;
}

static gboolean
always_false (gpointer data)
{
  return FALSE;
}

static void
spin (double seconds)
{
  wait_for (always_false, NULL, seconds);
}

static gboolean
is_drawn (gpointer data)
{
  return gtk_widget_get_mapped (data) && gtk_widget_get_width (data) > 0;
}

static void
screenshot (GtkWidget *widget, const char *name)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR");
  g_autoptr(GdkPaintable) paintable = NULL;
  g_autoptr(GtkSnapshot) snapshot = NULL;
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *path = NULL;
  GskRenderer *renderer;
  int w, h;

  if (dir == NULL)
    dir = g_get_tmp_dir ();
  g_assert_true (wait_for (is_drawn, widget, 10));
  spin (0.3);   /* let layout and frames settle */
  w = gtk_widget_get_width (widget);
  h = gtk_widget_get_height (widget);
  paintable = gtk_widget_paintable_new (widget);
  snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  g_assert_nonnull (node);
  renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s (%dx%d)", path, w, h);
}

static VireoMachine *
find_machine (const char *name)
{
  VireoLibrary *library = vireo_application_get_library (app);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (library));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) m = g_list_model_get_item (G_LIST_MODEL (library), i);

      if (g_strcmp0 (vireo_machine_get_name (m), name) == 0)
        return m;   /* the library keeps it */
    }
  return NULL;
}

static gboolean
state_is (gpointer data)
{
  VireoMachine *m = ((gpointer *) data)[0];
  VireoMachineState s = GPOINTER_TO_INT (((gpointer *) data)[1]);

  return vireo_machine_get_state (m) == s;
}

static gboolean
wait_state (VireoMachine *m, VireoMachineState s, double timeout)
{
  gpointer data[2] = { m, GINT_TO_POINTER (s) };

  return wait_for (state_is, data, timeout);
}

static gboolean
console_has (gpointer data)
{
  VireoMachineView *view = vireo_window_get_machine_view (window);
  g_autofree char *text = vireo_console_page_dup_text (vireo_machine_view_get_console (view));

  return text != NULL && strstr (text, data) != NULL;
}

static AdwMessageDialog *
find_message_dialog (void)
{
  GListModel *toplevels = gtk_window_get_toplevels ();
  guint n = g_list_model_get_n_items (toplevels);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GObject) w = g_list_model_get_item (toplevels, i);

      if (ADW_IS_MESSAGE_DIALOG (w) && gtk_widget_get_visible (GTK_WIDGET (w)))
        return ADW_MESSAGE_DIALOG (w);
    }
  return NULL;
}

/* What a click on the dialog's button does. */
static void
respond (AdwMessageDialog *dialog, const char *response)
{
  adw_message_dialog_response (dialog, response);
  gtk_window_destroy (GTK_WINDOW (dialog));
}

static gboolean
dialog_shown (gpointer data)
{
  return find_message_dialog () != NULL;
}

static gboolean
n_items_is (gpointer data)
{
  return g_list_model_get_n_items (G_LIST_MODEL (vireo_application_get_library (app)))
         == GPOINTER_TO_UINT (data);
}

/* ---- the library before the app opens it ------------------------------------------------ */

static void
created_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  VireoMachine **out = user_data;

  *out = vireo_library_create_machine_finish (VIREO_LIBRARY (object), result, &error);
  g_assert_no_error (error);
}

static gboolean
nonnull (gpointer data)
{
  return *(gpointer *) data != NULL;
}

static void
make_machine (VireoLibrary *library, const char *name, const char *guest,
              VireoDisplayKind display)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_new ();
  VireoMachine *machine = NULL;

  config->name = g_strdup (name);
  config->source = g_strdup ("Vireo test guest");
  config->boot_kind = VIREO_BOOT_KERNEL;
  config->kernel = g_build_filename (guest_dir, guest, NULL);
  config->memory_mib = 64;
  config->display = display;
  g_ptr_array_set_size (config->nics, 0);
  vireo_library_create_machine_async (library, config, NULL, created_cb, &machine);
  g_assert_true (wait_for (nonnull, &machine, 30));
  g_object_unref (machine);
}

static void
loaded_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_assert_true (vireo_library_load_finish (VIREO_LIBRARY (object), result, NULL));
  *(gboolean *) user_data = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *) data;
}

static void
prepare_library (const char *dir)
{
  g_autoptr(VireoLibrary) library = vireo_library_new (dir);
  gboolean loaded = FALSE;

  vireo_library_load_async (library, NULL, loaded_cb, &loaded);
  g_assert_true (wait_for (is_true, &loaded, 30));
  make_machine (library, "Demo", "demo.elf", VIREO_DISPLAY_STD);
  make_machine (library, "Hello", "hello.elf", VIREO_DISPLAY_NONE);
}

/* ---- tests ------------------------------------------------------------------------------ */

static gboolean
library_loaded (gpointer data)
{
  return vireo_library_is_loaded (vireo_application_get_library (app))
         && g_list_model_get_n_items (G_LIST_MODEL (vireo_application_get_library (app))) == 2;
}

static void
test_list (void)
{
  VireoMachineView *view;

  g_assert_true (wait_for (library_loaded, NULL, 30));
  g_assert_cmpstr (vireo_window_get_page (window), ==, "machines");
  /* Ctrl+? opens the shortcuts window (gtk/help-overlay.ui in the resources). */
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (window), "show-help-overlay"));
  vireo_window_select_machine (window, find_machine ("Demo"));
  view = vireo_window_get_machine_view (window);
  g_assert_nonnull (view);
  g_assert_true (vireo_machine_view_get_machine (view) == find_machine ("Demo"));
  g_assert_cmpstr (vireo_machine_view_get_display_state (view), ==, "off");
  g_assert_true (gtk_widget_is_visible (GTK_WIDGET (view)));
  screenshot (GTK_WIDGET (window), "window-list.png");
}

static gboolean
display_shows_screen (gpointer data)
{
  VireoMachineView *view = vireo_window_get_machine_view (window);
  guint w = 0, h = 0;

  vireo_display_get_mode_size (vireo_machine_view_get_display (view), &w, &h);
  return g_strcmp0 (vireo_machine_view_get_display_state (view), "screen") == 0 && w > 0;
}

static gboolean
perf_sampled (gpointer data)
{
  VireoMachineView *view = vireo_window_get_machine_view (window);

  return vireo_performance_page_get_n_samples (vireo_machine_view_get_performance (view)) >= 3;
}

static void
test_start_console (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoMachineView *view;

  vireo_window_select_machine (window, demo);
  view = vireo_window_get_machine_view (window);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_state (demo, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_true (vireo_console_page_get_connected (vireo_machine_view_get_console (view)));

  /* Its screen: the demo sets a mode and draws. */
  g_assert_true (wait_for (display_shows_screen, NULL, 120));
  spin (3);
  screenshot (GTK_WIDGET (window), "window-display.png");

  /* Its serial console: the banner and prompt, then an answer to a command. */
  vireo_machine_view_show_page (view, "console");
  g_assert_true (wait_for (console_has, "demo> ", 120));
  vireo_console_page_send_text (vireo_machine_view_get_console (view), "cpus\r");
  g_assert_true (wait_for (console_has, "cpus", 60));
  spin (1);
  screenshot (GTK_WIDGET (window), "window-console.png");

  vireo_machine_view_show_page (view, "performance");
  g_assert_true (wait_for (perf_sampled, NULL, 30));
  screenshot (GTK_WIDGET (window), "window-performance.png");

  vireo_machine_view_show_page (view, "details");
  screenshot (GTK_WIDGET (window), "window-details-running.png");

  /* By now the demo has drawn its whole scene: the screenshot data/screenshots/ keeps. */
  vireo_machine_view_show_page (view, "display");
  spin (5);
  screenshot (GTK_WIDGET (window), "window-demo-running.png");
}

static gboolean
thumbnail_exists (gpointer data)
{
  g_autoptr(GFile) f = vireo_machine_get_thumbnail (data);

  return f != NULL;
}

static void
test_quit_question (void)
{
  VireoMachine *demo = find_machine ("Demo");
  AdwMessageDialog *dialog;

  g_assert_true (vireo_machine_is_active (demo));
  gtk_window_close (GTK_WINDOW (window));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  screenshot (GTK_WIDGET (dialog), "window-quit-question.png");
  respond (dialog, "cancel");
  spin (0.5);
  /* Cancelled: the window and the machine are still there. */
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (window)));
  g_assert_true (vireo_machine_is_active (demo));
  g_assert_null (find_message_dialog ());
}

static void
test_power_button (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoMachineView *view = vireo_window_get_machine_view (window);

  vireo_machine_view_show_page (view, "console");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.shutdown", NULL));
  g_assert_true (wait_state (demo, VIREO_MACHINE_STATE_STOPPED, 120));
  g_assert_true (wait_for (console_has, "power button", 10));
  g_assert_false (vireo_console_page_get_connected (vireo_machine_view_get_console (view)));
  /* The last frame became the thumbnail and the Display page shows it under Start. */
  g_assert_true (wait_for (thumbnail_exists, demo, 10));
  vireo_machine_view_show_page (view, "display");
  g_assert_cmpstr (vireo_machine_view_get_display_state (view), ==, "off");
  screenshot (GTK_WIDGET (window), "window-stopped.png");
}

static void
test_clone_delete (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoMachineView *view;
  AdwMessageDialog *dialog;
  VireoMachine *clone;
  g_autofree char *clone_dir = NULL;

  vireo_window_select_machine (window, demo);
  view = vireo_window_get_machine_view (window);
  vireo_machine_view_show_page (view, "details");
  screenshot (GTK_WIDGET (window), "window-details.png");

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (vireo_machine_view_get_details (view)),
                                             "details.clone", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  screenshot (GTK_WIDGET (dialog), "window-clone-dialog.png");
  respond (dialog, "clone");
  g_assert_true (wait_for (n_items_is, GUINT_TO_POINTER (3), 60));
  clone = find_machine ("Demo (clone)");
  g_assert_nonnull (clone);
  clone_dir = g_strdup (vireo_machine_get_dir (clone));
  g_assert_true (g_file_test (clone_dir, G_FILE_TEST_IS_DIR));
  spin (0.5);
  g_assert_true (vireo_window_get_selected_machine (window) == clone);

  view = vireo_window_get_machine_view (window);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (vireo_machine_view_get_details (view)),
                                             "details.delete", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  screenshot (GTK_WIDGET (dialog), "window-delete-dialog.png");
  respond (dialog, "delete");
  g_assert_true (wait_for (n_items_is, GUINT_TO_POINTER (2), 60));
  g_assert_false (g_file_test (clone_dir, G_FILE_TEST_EXISTS));
  g_assert_null (find_machine ("Demo (clone)"));
}

/* The first button under @root labelled @label (depth first). */
static GtkWidget *
find_by_label (GtkWidget *root, const char *label)
{
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found;

      if (GTK_IS_BUTTON (c) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (c)), label) == 0)
        return c;
      if ((found = find_by_label (c, label)))
        return found;
    }
  return NULL;
}

/* A stopped machine's qcow2 disk grows through the Details page's Size row. */
static void
test_resize_disk (void)
{
  VireoMachine *hello = find_machine ("Hello");
  g_autofree char *disk = g_build_filename (tmp_root, "hello-disk.qcow2", NULL);
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(VrDisk) vd = NULL;
  VireoMachineView *view;
  GtkWidget *details, *sb, *button;

  g_assert_true (vr_disk_create (disk, VR_DISK_FORMAT_QCOW2, 1ull << 30, NULL, 0, &error));
  g_assert_no_error (error);
  config = vireo_machine_config_copy (vireo_machine_get_config (hello));
  g_ptr_array_add (config->disks, vireo_disk_config_new (disk, VR_DISK_FORMAT_QCOW2));
  g_assert_true (vireo_machine_set_config (hello, config, TRUE, &error));
  g_assert_no_error (error);

  vireo_window_select_machine (window, hello);
  view = vireo_window_get_machine_view (window);
  vireo_machine_view_show_page (view, "details");
  spin (0.5);
  details = GTK_WIDGET (vireo_machine_view_get_details (view));
  /* The size spin button sits right before the Resize button, in the disk's row. */
  button = find_by_label (details, "Re_size");
  g_assert_nonnull (button);
  sb = gtk_widget_get_prev_sibling (button);
  g_assert_true (GTK_IS_SPIN_BUTTON (sb));
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (sb)), ==, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (sb), 3);
  g_signal_emit_by_name (button, "clicked");
  spin (0.5);
  screenshot (GTK_WIDGET (window), "window-details-disk.png");

  vd = vr_disk_open (disk, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vr_disk_get_size (vd), ==, 3ull << 30);
  g_clear_pointer (&vd, vr_disk_close);
  /* The page shows the new size (rebuilt rows). */
  button = find_by_label (details, "Re_size");
  sb = gtk_widget_get_prev_sibling (button);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (sb)), ==, 3);
}

static gboolean
page_is_empty (gpointer data)
{
  return g_strcmp0 (vireo_window_get_page (window), "empty") == 0;
}

static void
delete_done_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_assert_true (vireo_library_delete_machine_finish (VIREO_LIBRARY (object), result, NULL));
}

static void
test_empty (void)
{
  VireoLibrary *library = vireo_application_get_library (app);

  vireo_library_delete_machine_async (library, find_machine ("Demo"), FALSE, NULL,
                                      delete_done_cb, NULL);
  vireo_library_delete_machine_async (library, find_machine ("Hello"), FALSE, NULL,
                                      delete_done_cb, NULL);
  g_assert_true (wait_for (page_is_empty, NULL, 30));
  spin (1);   /* the crossfade */
  screenshot (GTK_WIDGET (window), "window-empty.png");
}

/* ---- main ------------------------------------------------------------------------------- */

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

int
main (int argc, char *argv[])
{
  g_autofree char *lib_dir = NULL;
  g_autofree char *demo = NULL;
  int ret;

  guest_dir = g_strdup (g_getenv ("VIREO_GUEST_DIR"));
  tmp_root = g_dir_make_tmp ("vireo-test-window-XXXXXX", NULL);
  g_assert_nonnull (tmp_root);
  /* Nothing of the user's: data, config, trash and settings all in the temporary folder. */
  g_setenv ("XDG_DATA_HOME", tmp_root, TRUE);
  g_setenv ("XDG_CONFIG_HOME", tmp_root, TRUE);
  g_setenv ("XDG_PICTURES_DIR", tmp_root, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  lib_dir = g_build_filename (tmp_root, "vireo", "machines", NULL);
  g_setenv ("VIREO_LIBRARY_DIR", lib_dir, TRUE);
  g_setenv ("VIREO_QUIT_TIMEOUT", "5", TRUE);

  g_test_init (&argc, &argv, NULL);

  if (guest_dir == NULL || !g_file_test (guest_dir, G_FILE_TEST_IS_DIR)
      || access ("/dev/kvm", R_OK | W_OK) != 0)
    {
      g_test_skip ("needs VIREO_GUEST_DIR with the test guests and a usable /dev/kvm");
      return g_test_run ();
    }
  demo = g_build_filename (guest_dir, "demo.elf", NULL);
  g_setenv ("VIREO_DEMO_GUEST", demo, TRUE);

  prepare_library (lib_dir);

  app = vireo_application_new ();
  g_application_set_flags (G_APPLICATION (app),
                           g_application_get_flags (G_APPLICATION (app))
                             | G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, NULL));
  g_application_activate (G_APPLICATION (app));
  window = VIREO_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);

  g_test_add_func ("/window/list", test_list);
  g_test_add_func ("/window/start-console", test_start_console);
  g_test_add_func ("/window/quit-question", test_quit_question);
  g_test_add_func ("/window/power-button", test_power_button);
  g_test_add_func ("/window/resize-disk", test_resize_disk);
  g_test_add_func ("/window/clone-delete", test_clone_delete);
  g_test_add_func ("/window/empty", test_empty);
  ret = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (window));
  spin (0.2);
  g_clear_object (&app);
  rm_rf (tmp_root);
  return ret;
}
