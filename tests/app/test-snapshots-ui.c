/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Snapshots in the real app (VireoApplication, VireoWindow), in-process under Xvfb, against
 * a temporary library with two machines: "Demo" (the demo guest: a screen) and "Counter"
 * (the snapshot guest with a qcow2 disk: it counts on its serial line, checks its RAM and
 * its disk records, and prints FAIL when they disagree). Through the Snapshots page, as a
 * user would: take a snapshot of the running Demo (listed with its name, "Memory and
 * disks", current, a thumbnail), a second one (its child), revert to the first through the
 * confirmation (the machine runs on), rename, delete the second (the index and the folders
 * on disk agree); then quit with both running through "Save State and Quit" (saved-state
 * written, both off), open the app again and start them: each resumes (no second boot, the
 * count goes on) and its saved state is gone; a damaged saved state makes the start fail
 * with a question (keep it, or start afresh), and nothing is deleted unasked. Screenshots go
 * to $VIREO_TEST_LOG_DIR (snapshots-*.png; snapshots-LANG-*.png with LANGUAGE set).
 */

#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include "vireo-application.h"
#include "vireo-library.h"
#include "vireo-machine-view.h"
#include "vireo-snapshots-page.h"
#include "vireo-window.h"

static VireoApplication *app;
static VireoWindow *window;
static char *tmp_root;
static char *guest_dir;
static guint64 counter_saved_at;
static guint demo_boots;

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
  spin (0.5);   /* let layout, thumbnails and frames settle */
  paintable = gtk_widget_paintable_new (widget);
  /* A busy machine (guests running beside) may not have drawn the first frame yet. */
  for (guint tries = 0; node == NULL && tries < 50; tries++)
    {
      w = gtk_widget_get_width (widget);
      h = gtk_widget_get_height (widget);
      snapshot = gtk_snapshot_new ();
      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
      if (node == NULL)
        spin (0.2);
    }
  g_assert_nonnull (node);
  renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  {
    /* In another language: snapshots-de-one.png … */
    const char *lang = g_getenv ("LANGUAGE");
    g_autofree char *file = lang && *lang && g_str_has_prefix (name, "snapshots-")
                              ? g_strdup_printf ("snapshots-%s-%s", lang, name + 10)
                              : g_strdup (name);

    path = g_build_filename (dir, file, NULL);
  }
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

static gboolean
dialog_shown (gpointer data)
{
  return find_message_dialog () != NULL;
}

/* What a click on the dialog's button does. */
static void
respond (AdwMessageDialog *dialog, const char *response)
{
  g_assert_true (adw_message_dialog_has_response (dialog, response));
  g_assert_true (adw_message_dialog_get_response_enabled (dialog, response));
  adw_message_dialog_response (dialog, response);
  gtk_window_destroy (GTK_WINDOW (dialog));
}

static char *
read_serial_log (VireoMachine *m)
{
  g_autofree char *path = vireo_machine_dup_serial_log_path (m);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static guint
count_occurrences (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* The last "count=N" the snapshot guest printed (0: none yet). */
static guint64
last_count (VireoMachine *m)
{
  g_autofree char *text = read_serial_log (m);
  const char *p = NULL;

  for (const char *q = strstr (text, "count="); q; q = strstr (q + 1, "count="))
    if (q == text || q[-1] == '\n')
      p = q;
  return p ? g_ascii_strtoull (p + 6, NULL, 10) : 0;
}

static gboolean
count_reached (gpointer data)
{
  VireoMachine *m = ((gpointer *) data)[0];
  guint64 n = *(guint64 *) ((gpointer *) data)[1];

  return last_count (m) >= n;
}

static gboolean
wait_count (VireoMachine *m, guint64 n, double timeout)
{
  gpointer data[2] = { m, &n };

  return wait_for (count_reached, data, timeout);
}

static VireoSnapshotsPage *
snapshots_page (void)
{
  VireoMachineView *view = vireo_window_get_machine_view (window);
  GtkWidget *page = adw_view_stack_get_child_by_name (vireo_machine_view_get_stack (view),
                                                      "snapshots");

  g_assert_true (VIREO_IS_SNAPSHOTS_PAGE (page));
  return VIREO_SNAPSHOTS_PAGE (page);
}

static gboolean
page_settled (gpointer data)
{
  VireoSnapshotsPage *page = snapshots_page ();

  return !vireo_snapshots_page_get_busy (page)
         && vireo_snapshots_page_get_n_rows (page) == GPOINTER_TO_UINT (data);
}

static gboolean
display_shows_screen (gpointer data)
{
  VireoMachineView *view = vireo_window_get_machine_view (window);
  guint w = 0, h = 0;

  vireo_display_get_mode_size (vireo_machine_view_get_display (view), &w, &h);
  return g_strcmp0 (vireo_machine_view_get_display_state (view), "screen") == 0 && w > 0;
}

/* The page's row showing snapshot @id, or -1. */
static int
row_of (VireoSnapshotsPage *page, const char *id)
{
  for (guint i = 0; i < vireo_snapshots_page_get_n_rows (page); i++)
    {
      g_autoptr(VireoSnapshot) s = vireo_snapshots_page_get_row (page, i);

      if (g_strcmp0 (vireo_snapshot_get_id (s), id) == 0)
        return (int) i;
    }
  return -1;
}

static char *
row_text (VireoSnapshotsPage *page, const char *id)
{
  int i = row_of (page, id);

  g_assert_cmpint (i, >=, 0);
  return vireo_snapshots_page_dup_row_text (page, (guint) i);
}

static char *
snapshots_path (VireoMachine *m, const char *name)
{
  return g_build_filename (vireo_machine_get_dir (m), "snapshots", name, NULL);
}

/* Takes a snapshot through the page's dialog. */
static void
take_through_dialog (const char *name, const char *description, guint expected_default,
                     guint rows_after, const char *shot)
{
  VireoSnapshotsPage *page = snapshots_page ();
  AdwMessageDialog *dialog;
  GtkEditable *name_row, *description_row;

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.take", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  name_row = g_object_get_data (G_OBJECT (dialog), "vireo-name");
  description_row = g_object_get_data (G_OBJECT (dialog), "vireo-description");
  g_assert_true (GTK_IS_EDITABLE (name_row));
  {
    /* Translators never see this: the page's own string, as the user's language has it. */
    g_autofree char *expected = g_strdup_printf (_("Snapshot %u"), expected_default);

    g_assert_cmpstr (gtk_editable_get_text (name_row), ==, expected);
  }
  /* An empty name cannot be taken. */
  gtk_editable_set_text (name_row, "  ");
  g_assert_false (adw_message_dialog_get_response_enabled (dialog, "take"));
  gtk_editable_set_text (name_row, name);
  gtk_editable_set_text (description_row, description);
  if (shot != NULL)
    screenshot (GTK_WIDGET (dialog), shot);
  respond (dialog, "take");
  g_assert_true (wait_for (page_settled, GUINT_TO_POINTER (rows_after), 120));
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
              VireoDisplayKind display, const char *cmdline, gboolean disk)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_new ();
  VireoMachine *machine = NULL;

  config->name = g_strdup (name);
  config->source = g_strdup ("Vireo test guest");
  config->boot_kind = VIREO_BOOT_KERNEL;
  config->kernel = g_build_filename (guest_dir, guest, NULL);
  config->cmdline = g_strdup (cmdline);
  config->memory_mib = 64;
  config->display = display;
  g_ptr_array_set_size (config->nics, 0);
  if (disk)
    {
      VireoDiskConfig *d = vireo_disk_config_new ("disk.qcow2", VR_DISK_FORMAT_QCOW2);

      d->create_size = 16 << 20;
      g_ptr_array_add (config->disks, d);
    }
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
  make_machine (library, "Demo", "demo.elf", VIREO_DISPLAY_STD, NULL, FALSE);
  make_machine (library, "Counter", "snapshot.elf", VIREO_DISPLAY_NONE, "disk", TRUE);
}

static gboolean
library_loaded (gpointer data)
{
  return vireo_library_is_loaded (vireo_application_get_library (app))
         && g_list_model_get_n_items (G_LIST_MODEL (vireo_application_get_library (app))) == 2;
}

static void
open_app (gboolean again)
{
  app = vireo_application_new ();
  g_application_set_flags (G_APPLICATION (app),
                           g_application_get_flags (G_APPLICATION (app))
                             | G_APPLICATION_NON_UNIQUE);
  if (again)
    {
      /* The first instance stays exported on the session bus for as long as the process
       * lives: the second one (the same code, the same library) gets another object path. */
      g_autofree char *id = g_strconcat (g_application_get_application_id (G_APPLICATION (app)),
                                         ".Again", NULL);

      g_application_set_application_id (G_APPLICATION (app), id);
    }
  {
    g_autoptr(GError) error = NULL;

    g_application_register (G_APPLICATION (app), NULL, &error);
    g_assert_no_error (error);
  }
  g_application_activate (G_APPLICATION (app));
  window = VIREO_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);
  g_assert_true (wait_for (library_loaded, NULL, 30));
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_empty (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoSnapshotsPage *page;

  vireo_window_select_machine (window, demo);
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  page = snapshots_page ();
  g_assert_true (vireo_snapshots_page_get_machine (page) == demo);
  g_assert_cmpstr (vireo_snapshots_page_get_view (page), ==, "empty");
  g_assert_null (vireo_snapshots_page_get_banner (page));
  /* Nothing selected: only Take (the others are disabled: nothing asks). */
  gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.revert", NULL);
  gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.delete", NULL);
  gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.rename", NULL);
  spin (0.3);
  g_assert_null (find_message_dialog ());
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.take", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  respond (find_message_dialog (), "cancel");
  screenshot (GTK_WIDGET (window), "snapshots-empty.png");
}

static void
test_take (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoSnapshotsPage *page;
  g_autofree char *text = NULL;
  g_autofree char *thumb = NULL;
  g_autofree char *log = NULL;
  VireoSnapshot *s;

  vireo_window_select_machine (window, demo);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_state (demo, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_true (wait_for (display_shows_screen, NULL, 120));
  spin (8);   /* the demo draws its scene: the snapshot's thumbnail shows it */
  log = read_serial_log (demo);
  demo_boots = count_occurrences (log, "Vireo demo machine");

  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  page = snapshots_page ();
  take_through_dialog ("First", "The desktop, freshly started", 1, 1,
                       "snapshots-take-dialog.png");
  g_assert_cmpstr (vireo_snapshots_page_get_view (page), ==, "list");
  g_assert_cmpstr (vireo_snapshots_page_get_selected_id (page), ==, "1");
  text = row_text (page, "1");
  g_test_message ("row: %s", text);
  g_assert_nonnull (strstr (text, "First"));
  g_assert_nonnull (strstr (text, _("Memory and disks")));
  g_assert_nonnull (strstr (text, C_("snapshot", "Current")));
  g_assert_nonnull (strstr (text, _("Just now")));
  g_assert_nonnull (strstr (text, "The desktop, freshly started"));
  s = vireo_snapshot_store_lookup (vireo_machine_get_snapshot_store (demo), "1");
  g_assert_true (vireo_snapshot_get_memory (s));
  /* Its screen, as the thumbnail. */
  thumb = snapshots_path (demo, "1/thumbnail.png");
  g_assert_true (g_file_test (thumb, G_FILE_TEST_IS_REGULAR));
  g_assert_nonnull (vireo_snapshot_get_thumbnail (s));
  g_assert_cmpint (vireo_machine_get_state (demo), ==, VIREO_MACHINE_STATE_RUNNING);
  screenshot (GTK_WIDGET (window), "snapshots-one.png");
}

static void
test_take_second (void)
{
  VireoSnapshotsPage *page = snapshots_page ();
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autoptr(VireoSnapshot) child = NULL;

  spin (2);
  take_through_dialog ("Second", "", 2, 2, NULL);
  first = row_text (page, "1");
  second = row_text (page, "2");
  g_test_message ("rows: %s / %s", first, second);
  /* The current mark moved; 2 is 1's child. */
  g_assert_null (strstr (first, C_("snapshot", "Current")));
  g_assert_nonnull (strstr (second, C_("snapshot", "Current")));
  g_assert_cmpint (row_of (page, "2"), ==, 1);
  child = vireo_snapshots_page_get_row (page, 1);
  g_assert_cmpstr (vireo_snapshot_get_parent_id (child), ==, "1");
  screenshot (GTK_WIDGET (window), "snapshots-two.png");
}

static void
test_revert (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoSnapshotsPage *page = snapshots_page ();
  AdwMessageDialog *dialog;
  g_autofree char *first = NULL;
  g_autofree char *log = NULL;

  g_assert_true (vireo_snapshots_page_select (page, "1"));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.revert", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  g_assert_nonnull (strstr (adw_message_dialog_get_body (dialog),
                            _("The current state will be lost: everything that changed since "
                              "this snapshot was taken, in the machine’s memory and on its disks. "
                              "To keep it, take a snapshot first.")));
  g_assert_true (adw_message_dialog_has_response (dialog, "snapshot-first"));
  screenshot (GTK_WIDGET (dialog), "snapshots-revert-dialog.png");
  respond (dialog, "revert");
  g_assert_true (wait_for (page_settled, GUINT_TO_POINTER (2), 120));

  /* It runs on from the first snapshot. */
  g_assert_cmpint (vireo_machine_get_state (demo), ==, VIREO_MACHINE_STATE_RUNNING);
  g_assert_nonnull (vireo_machine_get_vr_machine (demo));
  g_assert_cmpstr (vireo_snapshot_store_get_current_id (vireo_machine_get_snapshot_store (demo)),
                   ==, "1");
  first = row_text (page, "1");
  g_assert_nonnull (strstr (first, C_("snapshot", "Current")));
  spin (2);
  log = read_serial_log (demo);
  g_assert_cmpuint (count_occurrences (log, "Vireo demo machine"), ==, demo_boots);
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "display");
  g_assert_true (wait_for (display_shows_screen, NULL, 30));
  spin (1);
  screenshot (GTK_WIDGET (window), "snapshots-reverted-display.png");
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
}

static void
test_rename (void)
{
  VireoSnapshotsPage *page = snapshots_page ();
  AdwMessageDialog *dialog;
  GtkEditable *name_row;
  g_autofree char *text = NULL;

  g_assert_true (vireo_snapshots_page_select (page, "1"));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.rename", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  name_row = g_object_get_data (G_OBJECT (dialog), "vireo-name");
  g_assert_cmpstr (gtk_editable_get_text (name_row), ==, "First");
  gtk_editable_set_text (name_row, "Clean desktop");
  respond (dialog, "save");
  spin (0.3);
  text = row_text (page, "1");
  g_assert_nonnull (strstr (text, "Clean desktop"));
}

static void
test_delete (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoSnapshotsPage *page = snapshots_page ();
  AdwMessageDialog *dialog;
  g_autofree char *dir2 = snapshots_path (demo, "2");
  g_autofree char *dir1 = snapshots_path (demo, "1");
  g_autofree char *index = snapshots_path (demo, "snapshots.conf");
  g_autofree char *text = NULL;

  g_assert_true (g_file_test (dir2, G_FILE_TEST_IS_DIR));
  g_assert_true (vireo_snapshots_page_select (page, "2"));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.delete", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  screenshot (GTK_WIDGET (dialog), "snapshots-delete-dialog.png");
  respond (dialog, "delete");
  g_assert_true (wait_for (page_settled, GUINT_TO_POINTER (1), 60));

  /* The index and the folders agree. */
  g_assert_cmpint (row_of (page, "2"), ==, -1);
  g_assert_false (g_file_test (dir2, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (dir1, G_FILE_TEST_IS_DIR));
  g_assert_true (g_file_get_contents (index, &text, NULL, NULL));
  g_test_message ("snapshots.conf:\n%s", text);
  g_assert_null (strstr (text, "[Snapshot 2]"));
  g_assert_nonnull (strstr (text, "[Snapshot 1]"));
  g_assert_nonnull (strstr (text, "Name=Clean desktop"));
  g_assert_nonnull (strstr (text, "Current=1"));
  {
    g_autoptr(GDir) d = g_dir_open (vireo_snapshot_store_get_dir (
                                      vireo_machine_get_snapshot_store (demo)), 0, NULL);
    const char *name;
    guint n = 0;

    while ((name = g_dir_read_name (d)) != NULL)
      {
        g_test_message ("snapshots/%s", name);
        n++;
      }
    g_assert_cmpuint (n, ==, 2);   /* 1/ and snapshots.conf */
  }
  screenshot (GTK_WIDGET (window), "snapshots-after-delete.png");
}

static void
test_counter_snapshot (void)
{
  VireoMachine *counter = find_machine ("Counter");
  VireoSnapshotsPage *page;
  g_autofree char *text = NULL;

  /* The second machine: a disk, no screen. Its snapshot has no thumbnail. */
  vireo_window_select_machine (window, counter);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_true (wait_count (counter, 32, 300));
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  page = snapshots_page ();
  g_assert_true (vireo_snapshots_page_get_machine (page) == counter);
  take_through_dialog ("Counting", "", 1, 1, NULL);
  text = row_text (page, "1");
  g_assert_nonnull (strstr (text, _("Memory and disks")));
  g_assert_true (wait_count (counter, last_count (counter) + 16, 300));

  /* Back to it, keeping the present first ("Take Snapshot First"): a second snapshot is
   * taken, then the machine goes back to the first one and counts on from there. */
  {
    AdwMessageDialog *dialog;
    g_autofree char *before = NULL;

    g_assert_true (vireo_snapshots_page_select (page, "1"));
    g_assert_true (gtk_widget_activate_action (GTK_WIDGET (page), "snapshots.revert", NULL));
    g_assert_true (wait_for (dialog_shown, NULL, 10));
    dialog = find_message_dialog ();
    respond (dialog, "snapshot-first");
    g_assert_true (wait_for (page_settled, GUINT_TO_POINTER (2), 120));
    spin (0.5);
    g_assert_true (wait_for (page_settled, GUINT_TO_POINTER (2), 120));
    g_assert_cmpstr (vireo_snapshot_store_get_current_id (
                       vireo_machine_get_snapshot_store (counter)), ==, "1");
    before = row_text (page, "2");
    g_test_message ("row: %s", before);
    g_assert_true (vireo_snapshot_get_memory (vireo_snapshot_store_lookup (
                     vireo_machine_get_snapshot_store (counter), "2")));
    g_assert_cmpint (vireo_machine_get_state (counter), ==, VIREO_MACHINE_STATE_RUNNING);
    screenshot (GTK_WIDGET (window), "snapshots-counter.png");
  }
  spin (2);
  {
    g_autofree char *log = read_serial_log (counter);
    g_assert_cmpuint (count_occurrences (log, "FAIL"), ==, 0);
    g_assert_cmpuint (count_occurrences (log, "snapshot test"), ==, 1);
  }
}

static gboolean
quit_done (gpointer data)
{
  return !vireo_machine_is_active (find_machine ("Demo"))
         && !vireo_machine_is_active (find_machine ("Counter"))
         && find_message_dialog () == NULL;
}

static void
test_save_state_quit (void)
{
  VireoMachine *demo = find_machine ("Demo");
  VireoMachine *counter = find_machine ("Counter");
  AdwMessageDialog *dialog;
  g_autofree char *demo_state = g_build_filename (vireo_machine_get_dir (demo), "saved-state",
                                                  "state", NULL);
  g_autofree char *counter_ram = g_build_filename (vireo_machine_get_dir (counter),
                                                   "saved-state", "ram", NULL);

  g_assert_true (vireo_machine_is_active (demo));
  g_assert_true (vireo_machine_is_active (counter));
  vireo_application_request_quit (app);
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  dialog = find_message_dialog ();
  screenshot (GTK_WIDGET (dialog), "snapshots-quit-question.png");
  respond (dialog, "save");
  g_assert_true (wait_for (quit_done, NULL, 120));

  g_assert_true (vireo_machine_has_saved_state (demo));
  g_assert_true (vireo_machine_has_saved_state (counter));
  g_assert_true (g_file_test (demo_state, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (counter_ram, G_FILE_TEST_IS_REGULAR));
  counter_saved_at = last_count (counter);
  g_test_message ("Counter saved at count=%" G_GUINT64_FORMAT, counter_saved_at);

  /* Its Snapshots page says so. */
  vireo_window_select_machine (window, counter);
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  g_assert_nonnull (vireo_snapshots_page_get_banner (snapshots_page ()));
  spin (1);   /* the banner slides in */
  screenshot (GTK_WIDGET (window), "snapshots-saved-state.png");
}

static void
close_app (void)
{
  gtk_window_destroy (GTK_WINDOW (window));
  window = NULL;
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&app);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_resume (void)
{
  VireoMachine *demo, *counter;
  g_autofree char *saved = NULL;
  g_autofree char *log = NULL;

  /* The app again, as after a restart. */
  close_app ();
  open_app (TRUE);
  counter = find_machine ("Counter");
  demo = find_machine ("Demo");
  g_assert_true (vireo_machine_has_saved_state (counter));

  vireo_window_select_machine (window, counter);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_true (vireo_machine_get_resumed (counter));
  g_assert_false (vireo_machine_has_saved_state (counter));
  saved = g_build_filename (vireo_machine_get_dir (counter), "saved-state", NULL);
  g_assert_false (g_file_test (saved, G_FILE_TEST_EXISTS));
  /* Resumed, not booted: the count goes on from where it was saved; its RAM and disk agree. */
  g_assert_true (wait_count (counter, counter_saved_at + 32, 300));
  log = read_serial_log (counter);
  g_assert_cmpuint (count_occurrences (log, "snapshot test"), ==, 1);
  g_assert_cmpuint (count_occurrences (log, "FAIL"), ==, 0);
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  g_assert_null (vireo_snapshots_page_get_banner (snapshots_page ()));
  screenshot (GTK_WIDGET (window), "snapshots-resumed.png");

  vireo_window_select_machine (window, demo);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_state (demo, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_true (vireo_machine_get_resumed (demo));
  g_assert_false (vireo_machine_has_saved_state (demo));
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "display");
  g_assert_true (wait_for (display_shows_screen, NULL, 60));
  spin (2);
  g_clear_pointer (&log, g_free);
  log = read_serial_log (demo);
  g_assert_cmpuint (count_occurrences (log, "Vireo demo machine"), ==, demo_boots);
  screenshot (GTK_WIDGET (window), "snapshots-resumed-display.png");

  vireo_machine_force_off (demo);
  vireo_machine_force_off (counter);
  g_assert_true (wait_state (demo, VIREO_MACHINE_STATE_STOPPED, 30));
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_STOPPED, 30));
}

static void
saved_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (vireo_machine_save_state_finish (VIREO_MACHINE (object), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
test_resume_failure (void)
{
  VireoMachine *counter = find_machine ("Counter");
  g_autofree char *state = g_build_filename (vireo_machine_get_dir (counter), "saved-state",
                                             "state", NULL);
  g_autofree char *contents = NULL;
  AdwMessageDialog *dialog;
  gboolean saved = FALSE;
  gsize len;

  {
    g_autofree char *log = read_serial_log (counter);
    guint boots = count_occurrences (log, "snapshot test");

    vireo_window_select_machine (window, counter);
    g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
    g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_RUNNING, 60));
    /* It boots afresh (it was forced off): wait until it counts again. */
    for (gint64 end = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;
         g_get_monotonic_time () < end;)
      {
        g_autofree char *now = read_serial_log (counter);
        const char *last_boot = g_strrstr (now, "snapshot test");

        if (count_occurrences (now, "snapshot test") > boots && strstr (last_boot, "count=16 "))
          break;
        spin (0.2);
      }
  }
  vireo_machine_save_state_async (counter, NULL, saved_cb, &saved);
  g_assert_true (wait_for (is_true, &saved, 60));
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_STOPPED, 30));

  /* The saved state is damaged (half of it lost): starting says so and offers a fresh start;
   * nothing is deleted without asking. */
  g_assert_true (g_file_get_contents (state, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (state, contents, (gssize) len / 2, NULL));
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "display");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "machine.start", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 60));
  dialog = find_message_dialog ();
  g_test_message ("%s: %s", adw_message_dialog_get_heading (dialog),
                  adw_message_dialog_get_body (dialog));
  g_assert_nonnull (strstr (adw_message_dialog_get_heading (dialog), "Counter"));
  g_assert_cmpint (vireo_machine_get_state (counter), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_true (vireo_machine_has_saved_state (counter));
  g_assert_true (g_file_test (state, G_FILE_TEST_IS_REGULAR));
  screenshot (GTK_WIDGET (dialog), "snapshots-resume-failed.png");

  /* Keep it: still there, the Snapshots page offers the fresh start again. */
  respond (dialog, "cancel");
  g_assert_true (g_file_test (state, G_FILE_TEST_IS_REGULAR));
  vireo_machine_view_show_page (vireo_window_get_machine_view (window), "snapshots");
  g_assert_cmpstr (vireo_snapshots_page_get_banner (snapshots_page ()), ==,
                   vireo_machine_get_saved_state_error (counter));
  spin (1);
  screenshot (GTK_WIDGET (window), "snapshots-resume-failed-banner.png");

  /* Start afresh: the saved state goes, the machine boots. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (snapshots_page ()),
                                             "snapshots.start-afresh", NULL));
  g_assert_true (wait_for (dialog_shown, NULL, 10));
  respond (find_message_dialog (), "start-afresh");
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_RUNNING, 60));
  g_assert_false (vireo_machine_get_resumed (counter));
  g_assert_false (vireo_machine_has_saved_state (counter));
  g_assert_false (g_file_test (state, G_FILE_TEST_EXISTS));
  g_assert_null (vireo_snapshots_page_get_banner (snapshots_page ()));
  vireo_machine_force_off (counter);
  g_assert_true (wait_state (counter, VIREO_MACHINE_STATE_STOPPED, 30));
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
  g_autofree char *snap = NULL;
  int ret;

  guest_dir = g_strdup (g_getenv ("VIREO_GUEST_DIR"));
  tmp_root = g_dir_make_tmp ("vireo-test-snapshots-ui-XXXXXX", NULL);
  g_assert_nonnull (tmp_root);
  /* Nothing of the user's: data, config, trash and settings all in the temporary folder. */
  g_setenv ("XDG_DATA_HOME", tmp_root, TRUE);
  g_setenv ("XDG_CONFIG_HOME", tmp_root, TRUE);
  g_setenv ("XDG_PICTURES_DIR", tmp_root, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  lib_dir = g_build_filename (tmp_root, "vireo", "machines", NULL);
  g_setenv ("VIREO_LIBRARY_DIR", lib_dir, TRUE);
  g_setenv ("VIREO_QUIT_TIMEOUT", "5", TRUE);

  /* As main.c does: the build tree's translations when VIREO_LOCALEDIR is set. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("VIREO_LOCALEDIR") ? g_getenv ("VIREO_LOCALEDIR")
                                                                : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_test_init (&argc, &argv, NULL);

  snap = guest_dir ? g_build_filename (guest_dir, "snapshot.elf", NULL) : NULL;
  if (guest_dir == NULL || !g_file_test (guest_dir, G_FILE_TEST_IS_DIR)
      || !g_file_test (snap, G_FILE_TEST_IS_REGULAR) || access ("/dev/kvm", R_OK | W_OK) != 0)
    {
      g_test_skip ("needs VIREO_GUEST_DIR with the test guests and a usable /dev/kvm");
      return g_test_run ();
    }
  demo = g_build_filename (guest_dir, "demo.elf", NULL);
  g_setenv ("VIREO_DEMO_GUEST", demo, TRUE);

  prepare_library (lib_dir);
  open_app (FALSE);

  g_test_add_func ("/snapshots-ui/empty", test_empty);
  g_test_add_func ("/snapshots-ui/take", test_take);
  g_test_add_func ("/snapshots-ui/take-second", test_take_second);
  g_test_add_func ("/snapshots-ui/revert", test_revert);
  g_test_add_func ("/snapshots-ui/rename", test_rename);
  g_test_add_func ("/snapshots-ui/delete", test_delete);
  g_test_add_func ("/snapshots-ui/counter-snapshot", test_counter_snapshot);
  g_test_add_func ("/snapshots-ui/save-state-quit", test_save_state_quit);
  g_test_add_func ("/snapshots-ui/resume", test_resume);
  g_test_add_func ("/snapshots-ui/resume-failure", test_resume_failure);
  ret = g_test_run ();

  if (window != NULL)
    gtk_window_destroy (GTK_WINDOW (window));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&app);
  rm_rf (tmp_root);
  g_free (tmp_root);
  g_free (guest_dir);
  return ret;
}
