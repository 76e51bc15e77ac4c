/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * VireoMachine's snapshots with a real guest (tests/guests/snapshot.elf with a qcow2 disk)
 * when /dev/kvm is usable: take live snapshots, branch, revert (the guest's counter, RAM
 * checksum and disk records continue from the snapshot: the guest itself fails if its disk
 * was not reverted with its memory), delete, the index and the folders on disk, the qcow2
 * snapshots on the image; "save state" then start resumes (no second boot) and deletes the
 * saved state; a damaged saved state is kept and reported until discarded; reverting drops
 * a saved state (it is the present being left); a disk-only
 * snapshot of a stopped machine; a qcow2 snapshot made outside Vireo; a writable raw disk
 * refused with an explanation; a second operation refused while one runs.
 *
 * Environment: VIREO_GUEST_DIR, the built guests (set by meson).
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/vr-disk.h"
#include "vireo-library.h"

typedef struct
{
  VireoLibrary *library;
} Fixture;

static char *
guest_path (const char *name)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");

  return g_build_filename (dir ? dir : ".", name, NULL);
}

static gboolean
skip_without_guests (void)
{
  g_autofree char *guest = guest_path ("snapshot.elf");
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    {
      g_test_skip ("/dev/kvm is not usable");
      return TRUE;
    }
  close (fd);
  if (!g_file_test (guest, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("the snapshot test guest is not built (VIREO_GUEST_DIR)");
      return TRUE;
    }
  return FALSE;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  f->library = vireo_library_new (NULL);
  vireo_library_load_async (f->library, NULL, store_result, &res);
  g_assert_true (vireo_library_load_finish (f->library, wait_result (&res), &error));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->library);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* A machine running the snapshot guest, with a disk (@format: qcow2 or raw). */
static VireoMachine *
make_machine (Fixture *f, const char *name, VrDiskFormat format)
{
  g_autoptr(VireoMachineConfig) c = vireo_machine_config_new ();
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  VireoDiskConfig *disk;

  c->name = g_strdup (name);
  c->kernel = guest_path ("snapshot.elf");
  c->cmdline = g_strdup ("disk");
  c->memory_mib = 64;
  c->cpus = 1;
  c->display = VIREO_DISPLAY_NONE;
  c->input = FALSE;
  c->rng = FALSE;
  g_ptr_array_set_size (c->nics, 0);
  disk = vireo_disk_config_new (format == VR_DISK_FORMAT_QCOW2 ? "disk.qcow2" : "disk.img",
                                format);
  disk->create_size = 16 << 20;
  g_ptr_array_add (c->disks, disk);
  vireo_library_create_machine_async (f->library, c, NULL, store_result, &res);
  return vireo_library_create_machine_finish (f->library, wait_result (&res), &error);
}

static void
start (VireoMachine *m)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  vireo_machine_start_async (m, NULL, store_result, &res);
  g_assert_true (vireo_machine_start_finish (m, wait_result (&res), &error));
  g_assert_no_error (error);
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

/* The last "count=N" the guest printed (0: none yet). */
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
wait_count (VireoMachine *m, guint64 n, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (last_count (m) < n)
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (20000);
    }
  return TRUE;
}

static void
spin (double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
}

static char *
take (VireoMachine *m, const char *name, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  vireo_machine_take_snapshot_async (m, name, NULL, NULL, NULL, store_result, &res);
  return vireo_machine_take_snapshot_finish (m, wait_result (&res), error);
}

static gboolean
revert (VireoMachine *m, const char *id, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  vireo_machine_revert_snapshot_async (m, id, NULL, store_result, &res);
  return vireo_machine_revert_snapshot_finish (m, wait_result (&res), error);
}

static gboolean
delete (VireoMachine *m, const char *id, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  vireo_machine_delete_snapshot_async (m, id, NULL, store_result, &res);
  return vireo_machine_delete_snapshot_finish (m, wait_result (&res), error);
}

static gboolean
save_state (VireoMachine *m, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  vireo_machine_save_state_async (m, NULL, store_result, &res);
  return vireo_machine_save_state_finish (m, wait_result (&res), error);
}

static void
stop (VireoMachine *m)
{
  vireo_machine_force_off (m);
  spin (0.2);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The image's qcow2 snapshot ids, sorted, comma-separated. */
static char *
disk_snapshot_ids (VireoMachine *m, const char *image)
{
  g_autofree char *path = g_build_filename (vireo_machine_get_dir (m), image, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(VrDisk) disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY,
                                         &error);
  g_autoptr(GPtrArray) snaps = NULL;
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();

  g_assert_no_error (error);
  snaps = vr_disk_snapshot_list (disk, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < snaps->len; i++)
    g_ptr_array_add (ids, ((VrDiskSnapshot *) g_ptr_array_index (snaps, i))->id);
  g_ptr_array_sort (ids, compare_strings);
  g_ptr_array_add (ids, NULL);
  return g_strjoinv (",", (char **) ids->pdata);
}

static void
assert_disk_clean (VireoMachine *m, const char *image)
{
  g_autofree char *path = g_build_filename (vireo_machine_get_dir (m), image, NULL);
  VrDiskCheckResult result = { 0 };
  g_autoptr(GError) error = NULL;

  g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &result,
                                &error));
  g_assert_no_error (error);
  g_assert_cmpuint (result.corruptions, ==, 0);
  g_assert_cmpuint (result.leaks, ==, 0);
  vr_disk_check_result_clear (&result);
}

/* The snapshot folders (sorted, comma-separated). */
static char *
snapshot_folders (VireoMachine *m)
{
  g_autofree char *dir = g_build_filename (vireo_machine_get_dir (m), "snapshots", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (names, g_strdup (name));
    }
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

static gboolean
log_has_fail (VireoMachine *m)
{
  g_autofree char *text = read_serial_log (m);

  return strstr (text, "FAIL") != NULL;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_live (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autofree char *ids = NULL;
  g_autofree char *folders = NULL;
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;
  g_autofree char *saved = NULL;
  VireoSnapshotStore *store;
  VireoSnapshot *s;
  guint64 count_a, count_b, count_saved;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Snap", VR_DISK_FORMAT_QCOW2);
  g_assert_nonnull (m);
  g_assert_true (vireo_machine_can_snapshot (m, NULL));
  store = vireo_machine_get_snapshot_store (m);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (store)), ==, 0);

  start (m);
  g_assert_true (wait_count (m, 64, 300));

  /* A: a live snapshot. */
  a = take (m, "Snapshot A", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (a, ==, "1");
  count_a = last_count (m);
  g_test_message ("A at count=%" G_GUINT64_FORMAT, count_a);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  s = vireo_snapshot_store_lookup (store, "1");
  g_assert_nonnull (s);
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "Snapshot A");
  g_assert_true (vireo_snapshot_get_memory (s));
  g_assert_true (vireo_snapshot_get_current (s));
  g_assert_false (vireo_snapshot_is_broken (s));

  /* B, later. */
  g_assert_true (wait_count (m, count_a + 96, 300));
  b = take (m, "Snapshot B", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (b, ==, "2");
  count_b = last_count (m);
  s = vireo_snapshot_store_lookup (store, "2");
  g_assert_cmpstr (vireo_snapshot_get_parent_id (s), ==, "1");
  g_assert_true (vireo_snapshot_get_current (s));
  g_assert_false (vireo_snapshot_get_current (vireo_snapshot_store_lookup (store, "1")));

  /* Back to A: the guest goes on from A's count (it prints the same lines again), its RAM
   * checksum and its disk records agree (else it prints FAIL). */
  g_assert_true (revert (m, "1", &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  g_assert_cmpstr (vireo_snapshot_store_get_current_id (store), ==, "1");
  line = g_strdup_printf ("count=%" G_GUINT64_FORMAT " ", (count_a / 16 + 2) * 16);
  g_assert_true (wait_count (m, count_a + 16, 300));
  {
    gint64 end = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;

    for (;;)
      {
        g_autofree char *t = read_serial_log (m);

        if (count_occurrences (t, line) >= 2 || g_get_monotonic_time () > end)
          break;
        spin (0.1);
      }
  }
  text = read_serial_log (m);
  g_assert_cmpuint (count_occurrences (text, line), ==, 2);
  g_assert_cmpuint (count_occurrences (text, "snapshot test"), ==, 1);
  g_assert_false (log_has_fail (m));
  g_test_message ("B at count=%" G_GUINT64_FORMAT "; after reverting to A: %s", count_b, line);

  /* Delete B: its entry, its folder and its disk snapshots go. */
  g_assert_true (delete (m, "2", &error));
  g_assert_no_error (error);
  g_assert_null (vireo_snapshot_store_lookup (store, "2"));
  folders = snapshot_folders (m);
  g_assert_cmpstr (folders, ==, "1");

  /* Save state: the machine stops with its state in saved-state/. */
  g_assert_true (wait_count (m, count_a + 64, 300));
  g_assert_true (save_state (m, &error));
  g_assert_no_error (error);
  spin (0.2);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_true (vireo_machine_has_saved_state (m));
  saved = g_build_filename (vireo_machine_get_dir (m), "saved-state", "state", NULL);
  g_assert_true (g_file_test (saved, G_FILE_TEST_IS_REGULAR));
  count_saved = last_count (m);

  /* The disk: A and the saved state; B is gone; `qemu-img check` would be clean. */
  ids = disk_snapshot_ids (m, "disk.qcow2");
  g_assert_cmpstr (ids, ==, "1,saved-state");
  assert_disk_clean (m, "disk.qcow2");
  /* Off: a snapshot list reload scans the disks and finds nothing foreign. */
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (store)), ==, 1);

  /* Start resumes: no second boot, the count goes on, the saved state is gone. */
  start (m);
  g_assert_true (vireo_machine_get_resumed (m));
  g_assert_false (vireo_machine_has_saved_state (m));
  g_assert_false (g_file_test (saved, G_FILE_TEST_EXISTS));
  g_assert_true (wait_count (m, count_saved + 32, 300));
  g_clear_pointer (&text, g_free);
  text = read_serial_log (m);
  g_assert_cmpuint (count_occurrences (text, "snapshot test"), ==, 1);
  g_assert_false (log_has_fail (m));
  stop (m);

  g_clear_pointer (&ids, g_free);
  ids = disk_snapshot_ids (m, "disk.qcow2");
  g_assert_cmpstr (ids, ==, "1");
  assert_disk_clean (m, "disk.qcow2");
  g_clear_pointer (&folders, g_free);
  folders = snapshot_folders (m);
  g_assert_cmpstr (folders, ==, "1");

  /* Reverting to A while off starts it at A. */
  g_assert_true (revert (m, "1", &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  spin (3);
  g_assert_false (log_has_fail (m));
  stop (m);
}

static void
test_saved_state_damaged (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autofree char *state = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *text = NULL;
  gsize len;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Damaged", VR_DISK_FORMAT_QCOW2);
  start (m);
  g_assert_true (wait_count (m, 32, 300));
  g_assert_true (save_state (m, &error));
  g_assert_no_error (error);
  spin (0.2);

  /* Half of the state file is lost. */
  state = g_build_filename (vireo_machine_get_dir (m), "saved-state", "state", NULL);
  g_assert_true (g_file_get_contents (state, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (state, contents, (gssize) len / 2, NULL));

  /* Start fails with a clear message; the saved state stays. */
  vireo_machine_start_async (m, NULL, store_result, &res);
  g_assert_false (vireo_machine_start_finish (m, wait_result (&res), &error));
  g_assert_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_SAVED_STATE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "saved state"));
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_true (vireo_machine_has_saved_state (m));
  g_assert_cmpstr (vireo_machine_get_saved_state_error (m), ==, error->message);
  g_assert_true (g_file_test (state, G_FILE_TEST_IS_REGULAR));
  g_clear_error (&error);
  g_clear_object (&res);

  /* The user discards it: the next start boots. */
  vireo_machine_discard_saved_state_async (m, NULL, store_result, &res);
  g_assert_true (vireo_machine_discard_saved_state_finish (m, wait_result (&res), &error));
  g_assert_no_error (error);
  g_assert_false (vireo_machine_has_saved_state (m));
  g_assert_null (vireo_machine_get_saved_state_error (m));
  g_assert_false (g_file_test (state, G_FILE_TEST_EXISTS));
  {
    g_autofree char *ids = disk_snapshot_ids (m, "disk.qcow2");
    g_assert_cmpstr (ids, ==, "");
  }
  start (m);
  g_assert_false (vireo_machine_get_resumed (m));
  {
    gint64 end = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;

    for (;;)
      {
        g_clear_pointer (&text, g_free);
        text = read_serial_log (m);
        if (count_occurrences (text, "ready:") >= 2 || g_get_monotonic_time () > end)
          break;
        spin (0.1);
      }
  }
  /* Booted afresh: a second start line. */
  g_assert_cmpuint (count_occurrences (text, "snapshot test"), ==, 2);
  stop (m);
}

static void
test_revert_drops_saved_state (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *a = NULL;
  g_autofree char *saved = NULL;
  g_autofree char *ids = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Saved", VR_DISK_FORMAT_QCOW2);
  start (m);
  g_assert_true (wait_count (m, 32, 300));
  a = take (m, "A", &error);
  g_assert_no_error (error);
  g_assert_true (wait_count (m, last_count (m) + 32, 300));
  g_assert_true (save_state (m, &error));
  g_assert_no_error (error);
  spin (0.2);
  g_assert_true (vireo_machine_has_saved_state (m));

  /* Going back to A leaves the saved present behind for good: a later start must boot or
   * resume from A's line, never from the saved state. */
  g_assert_true (revert (m, a, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  g_assert_false (vireo_machine_has_saved_state (m));
  saved = g_build_filename (vireo_machine_get_dir (m), "saved-state", NULL);
  g_assert_false (g_file_test (saved, G_FILE_TEST_EXISTS));
  spin (2);
  g_assert_false (log_has_fail (m));
  stop (m);
  ids = disk_snapshot_ids (m, "disk.qcow2");
  g_assert_cmpstr (ids, ==, "1");
  assert_disk_clean (m, "disk.qcow2");
}

static void
test_stopped (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *image = NULL;
  g_autofree char *ids = NULL;
  VireoSnapshotStore *store;
  VireoSnapshot *s;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Off", VR_DISK_FORMAT_QCOW2);
  store = vireo_machine_get_snapshot_store (m);

  /* Off: a disk-only snapshot. */
  id = take (m, "Disks only", &error);
  g_assert_no_error (error);
  s = vireo_snapshot_store_lookup (store, id);
  g_assert_false (vireo_snapshot_get_memory (s));
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);

  /* One made elsewhere (like `qemu-img snapshot -c clean disk.qcow2`). */
  image = g_build_filename (vireo_machine_get_dir (m), "disk.qcow2", NULL);
  {
    g_autoptr(VrDisk) disk = vr_disk_open (image, VR_DISK_FORMAT_QCOW2, 0, &error);

    g_assert_no_error (error);
    g_assert_true (vr_disk_snapshot_create (disk, NULL, "clean", 0, &error));
    g_assert_no_error (error);
  }
  vireo_machine_reload_snapshots (m);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (store)), ==, 2);
  s = vireo_snapshot_store_lookup (store, "disk:2");
  g_assert_nonnull (s);
  g_assert_cmpint (vireo_snapshot_get_kind (s), ==, VIREO_SNAPSHOT_KIND_DISK);
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "clean");

  /* Reverted to and deleted while off. */
  g_assert_true (revert (m, "disk:2", &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_true (delete (m, "disk:2", &error));
  g_assert_no_error (error);
  g_assert_null (vireo_snapshot_store_lookup (store, "disk:2"));

  /* Its own disk-only snapshot reverts with the machine staying off. */
  g_assert_true (revert (m, id, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);

  /* A new id never collides with the disk's ids. */
  {
    g_autofree char *next = take (m, "Second", &error);
    g_assert_no_error (error);
    g_assert_cmpstr (next, ==, "2");
  }
  g_assert_true (delete (m, id, &error));
  ids = disk_snapshot_ids (m, "disk.qcow2");
  g_assert_cmpstr (ids, ==, "2");
  assert_disk_clean (m, "disk.qcow2");
}

static void
test_disk_only_while_running (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *text = NULL;

  if (skip_without_guests ())
    return;

  /* Taken while off (disks only), reverted to while running: the machine boots afresh. */
  m = make_machine (f, "Boots", VR_DISK_FORMAT_QCOW2);
  id = take (m, "Off", &error);
  g_assert_no_error (error);
  g_assert_false (vireo_snapshot_get_memory (vireo_snapshot_store_lookup (
                    vireo_machine_get_snapshot_store (m), id)));
  start (m);
  g_assert_true (wait_count (m, 64, 300));
  g_assert_true (revert (m, id, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  g_assert_false (vireo_machine_get_resumed (m));
  {
    gint64 end = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;

    for (;;)
      {
        g_clear_pointer (&text, g_free);
        text = read_serial_log (m);
        if (count_occurrences (text, "ready:") >= 2 || g_get_monotonic_time () > end)
          break;
        spin (0.1);
      }
  }
  g_assert_cmpuint (count_occurrences (text, "snapshot test"), ==, 2);
  /* The disk went back too: the fresh boot finds no records from the first run. */
  spin (3);
  g_assert_false (log_has_fail (m));
  stop (m);
}

static void
test_busy (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res1 = NULL;
  g_autoptr(GAsyncResult) res2 = NULL;
  g_autoptr(GAsyncResult) res3 = NULL;
  g_autofree char *id = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Busy", VR_DISK_FORMAT_QCOW2);
  start (m);
  g_assert_true (wait_count (m, 16, 300));

  vireo_machine_take_snapshot_async (m, "One", NULL, NULL, NULL, store_result, &res1);
  g_assert_cmpint (vireo_machine_get_snapshot_op (m), ==, VIREO_SNAPSHOT_OP_TAKE);
  vireo_machine_take_snapshot_async (m, "Two", NULL, NULL, NULL, store_result, &res2);
  g_assert_null (vireo_machine_take_snapshot_finish (m, wait_result (&res2), &error));
  g_assert_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_BUSY);
  g_clear_error (&error);
  /* Pulling the plug meanwhile waits for the snapshot. */
  vireo_machine_force_off (m);
  g_assert_nonnull (vireo_machine_get_vr_machine (m));
  vireo_machine_start_async (m, NULL, store_result, &res3);
  g_assert_false (vireo_machine_start_finish (m, wait_result (&res3), &error));
  g_clear_error (&error);

  id = vireo_machine_take_snapshot_finish (m, wait_result (&res1), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, "1");
  g_assert_cmpint (vireo_machine_get_snapshot_op (m), ==, VIREO_SNAPSHOT_OP_NONE);
  spin (0.2);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_null (vireo_machine_get_vr_machine (m));
}

static void
test_raw_disk (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *snapdir = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Raw", VR_DISK_FORMAT_RAW);
  g_assert_false (vireo_machine_can_snapshot (m, &error));
  g_assert_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_NO_SNAPSHOTS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "disk.img"));
  g_clear_error (&error);

  start (m);
  id = take (m, "No", &error);
  g_assert_null (id);
  g_assert_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_NO_SNAPSHOTS);
  g_clear_error (&error);
  g_assert_false (save_state (m, &error));
  g_assert_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_NO_SNAPSHOTS);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  /* Nothing was written, and the machine runs on. */
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  snapdir = g_build_filename (vireo_machine_get_dir (m), "snapshots", NULL);
  g_assert_false (g_file_test (snapdir, G_FILE_TEST_EXISTS));
  g_assert_false (vireo_machine_has_saved_state (m));

  /* The overlay the Snapshots page offers: refused while running, then (off) the raw
   * image gets a qcow2 overlay, the machine can snapshot, boots and writes its records into
   * the overlay, and a live snapshot of it reverts. */
  g_assert_false (vireo_machine_add_disk_overlays (m, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
  g_clear_error (&error);
  stop (m);
  {
    g_autofree char *raw = g_build_filename (vireo_machine_get_dir (m), "disk.img", NULL);
    g_autofree char *overlay = g_build_filename (vireo_machine_get_dir (m),
                                                 "disk-overlay.qcow2", NULL);
    g_autofree char *raw_before = NULL, *raw_after = NULL;
    gsize n_before, n_after;
    VireoDiskConfig *disk;
    VrDiskInfo *info;

    g_assert_true (g_file_get_contents (raw, &raw_before, &n_before, NULL));
    g_assert_true (vireo_machine_add_disk_overlays (m, &error));
    g_assert_no_error (error);
    disk = g_ptr_array_index (vireo_machine_get_config (m)->disks, 0);
    g_assert_cmpint (disk->format, ==, VR_DISK_FORMAT_QCOW2);
    g_assert_cmpstr (disk->path, ==, "disk-overlay.qcow2");
    {
      g_autoptr(VrDisk) vd = vr_disk_open (overlay, VR_DISK_FORMAT_QCOW2,
                                           VR_DISK_OPEN_READONLY, &error);

      g_assert_no_error (error);
      info = vr_disk_get_info (vd, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (info->backing_file, ==, raw);
      g_assert_true (info->has_backing_format);
      g_assert_cmpint (info->backing_format, ==, VR_DISK_FORMAT_RAW);
      vr_disk_info_free (info);
    }
    g_assert_true (vireo_machine_can_snapshot (m, NULL));

    start (m);
    g_clear_pointer (&id, g_free);
    id = take (m, "With overlay", &error);
    g_assert_no_error (error);
    g_assert_nonnull (id);
    g_assert_true (revert (m, id, &error));
    g_assert_no_error (error);
    stop (m);
    /* The raw image was not written after the overlay went on. */
    g_assert_true (g_file_get_contents (raw, &raw_after, &n_after, NULL));
    g_assert_cmpuint (n_before, ==, n_after);
    g_assert_true (memcmp (raw_before, raw_after, n_before) == 0);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/snapshots/live", test_live);
  ADD ("/snapshots/saved-state-damaged", test_saved_state_damaged);
  ADD ("/snapshots/revert-drops-saved-state", test_revert_drops_saved_state);
  ADD ("/snapshots/stopped", test_stopped);
  ADD ("/snapshots/disk-only-while-running", test_disk_only_while_running);
  ADD ("/snapshots/busy", test_busy);
  ADD ("/snapshots/raw-disk", test_raw_disk);
#undef ADD
  return g_test_run ();
}
