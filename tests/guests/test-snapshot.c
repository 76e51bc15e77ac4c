/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Live snapshots, end to end, with the snapshot guest (tests/guests/snapshot.c): its serial
 * output is a pure function of where it is, so a restore is right exactly when the output
 * after it is byte for byte the output that followed the snapshot the first time. The guest
 * also checks its own RAM checksums and that the disk records written after the snapshot
 * are gone, and fails loudly otherwise.
 *
 * Through the engine's API: revert in the same process (1 and 4 vCPUs, a PIT ticking),
 * branching (A, B, C), damaged files refused with the machine untouched, a disk-only
 * snapshot of a stopped machine, a full file system. Through vireo-run: a snapshot asked for
 * by the guest and restored in a fresh process, and SIGKILL at random points of saving.
 * qemu-img (when installed) checks the qcow2 disk and lists its internal snapshots.
 */

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/vr-disk.h"
#include "vr-machine.h"

#define MEMORY      (64u << 20)
#define CONTINUE    400     /* bytes of output compared after a restore */
#define WAIT_S      240.0   /* the guest runs a few thousand steps a second at most here */

typedef struct
{
  GMainContext *context;
  char         *dir;
  char         *log;
  char         *disk;
  VrMachine    *machine;
} Fixture;

static char *
guest_path (const char *name)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");

  return g_build_filename (dir ? dir : ".", name, NULL);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  f->dir = g_dir_make_tmp ("vireo-test-snapshot-XXXXXX", NULL);
  f->log = g_build_filename (f->dir, "serial.log", NULL);
  f->disk = g_build_filename (f->dir, "disk.qcow2", NULL);
  g_assert_true (vr_disk_create (f->disk, VR_DISK_FORMAT_QCOW2, 16u << 20, NULL, 0, &error));
  g_assert_no_error (error);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->machine, vr_machine_free);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  remove_tree (f->dir);
  g_free (f->log);
  g_free (f->disk);
  g_free (f->dir);
  g_main_context_pop_thread_default (f->context);
  g_main_context_unref (f->context);
}

static VrMachine *
new_machine (Fixture *f, unsigned cpus, uint64_t memory, GError **error)
{
  g_autofree char *kernel = guest_path ("snapshot.elf");
  VrMachineConfig config;
  VrMachine *m;

  vr_machine_config_init (&config);
  config.name = g_strdup ("snapshot");
  config.kernel = g_strdup (kernel);
  config.cmdline = g_strdup ("disk");
  config.memory = memory;
  config.cpus = cpus;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->log);
  config.n_disks = 1;
  config.disks = g_new0 (VrDiskConfig, 1);
  config.disks[0].path = g_strdup (f->disk);
  config.disks[0].format = g_strdup ("qcow2");
  m = vr_machine_new (&config, error);
  vr_machine_config_clear (&config);
  return m;
}

static char *
read_log (Fixture *f, gsize *len)
{
  char *text = NULL;

  if (!g_file_get_contents (f->log, &text, len, NULL))
    {
      *len = 0;
      return g_strdup ("");
    }
  return text;
}

static gsize
log_length (Fixture *f)
{
  GStatBuf st;

  return g_stat (f->log, &st) == 0 ? (gsize) st.st_size : 0;
}

/* Waits until the log holds at least @len bytes; fails the test on a guest failure. */
static void
wait_log (Fixture *f, gsize len)
{
  gint64 end = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);

  while (log_length (f) < len)
    {
      if (g_get_monotonic_time () > end)
        {
          gsize n;
          g_autofree char *text = read_log (f, &n);

          g_test_message ("log:\n%s", text);
          g_error ("timed out waiting for %" G_GSIZE_FORMAT " bytes of output", len);
        }
      g_main_context_iteration (f->context, FALSE);
      g_usleep (5000);
    }
  {
    gsize n;
    g_autofree char *text = read_log (f, &n);

    if (strstr (text, "FAIL") != NULL)
      {
        g_test_message ("log:\n%s", text);
        g_error ("the guest failed");
      }
  }
}

/* The @n bytes after @a and after @b in the log are the same. */
static void
assert_same_continuation (Fixture *f, gsize a, gsize b, gsize n)
{
  g_autofree char *text = NULL;
  gsize len;

  wait_log (f, b + n);
  text = read_log (f, &len);
  g_assert_cmpuint (a + n, <=, b);
  if (memcmp (text + a, text + b, n) != 0)
    {
      g_test_message ("after the snapshot:\n%.*s\nafter the restore:\n%.*s", (int) n, text + a,
                      (int) n, text + b);
      g_error ("the guest did not continue where the snapshot was taken");
    }
}

/* Pauses, saves @name under the fixture's directory, returns the log length at that point. */
static gsize
take (Fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (f->dir, name, NULL);
  gsize at;
  gint64 t0;

  g_assert_true (vr_machine_pause (f->machine, &error));
  at = log_length (f);
  t0 = g_get_monotonic_time ();
  g_assert_true (vr_machine_save_snapshot (f->machine, dir, NULL, &error));
  g_assert_no_error (error);
  g_test_message ("saved %s in %.1f ms", name, (double) (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_true (vr_machine_resume (f->machine, &error));
  return at;
}

/* Restores @name, paused, and returns the log length before the guest runs again. */
static gsize
revert (Fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (f->dir, name, NULL);
  gsize at;
  gint64 t0 = g_get_monotonic_time ();

  g_assert_true (vr_machine_restore_snapshot (f->machine, dir, VR_RESTORE_PAUSED, &error));
  g_assert_no_error (error);
  g_test_message ("restored %s in %.2f ms", name,
                  (double) (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_PAUSED);
  at = log_length (f);
  g_assert_true (vr_machine_resume (f->machine, &error));
  return at;
}

static void
start (Fixture *f, unsigned cpus)
{
  g_autoptr (GError) error = NULL;
  gsize len;
  g_autofree char *text = NULL;

  f->machine = new_machine (f, cpus, MEMORY, &error);
  g_assert_no_error (error);
  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  /* Past start-up and a few records. */
  for (;;)
    {
      wait_log (f, log_length (f) + 1);
      text = read_log (f, &len);
      if (strstr (text, "rec=2") != NULL)
        break;
      g_clear_pointer (&text, g_free);
      g_usleep (20000);
    }
}

static char *
qemu_img (void)
{
  return g_find_program_in_path ("qemu-img");
}

/* qemu-img finds no corruption (leaks are allowed: a crash may leave some) and, with
 * @snapshots, lists those names. */
static void
check_disk (const char *disk, const char *const *snapshots, bool allow_leaks)
{
  g_autofree char *img = qemu_img ();
  g_autofree char *out = NULL, *err = NULL;
  int status;

  if (img == NULL)
    return;
  {
    const char *argv[] = { img, "check", "-f", "qcow2", disk, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &status, NULL));
    /* qemu-img check: 0 clean, 3 leaks only; 2 corruption. */
    if (!(g_spawn_check_wait_status (status, NULL)
          || (allow_leaks && WIFEXITED (status) && WEXITSTATUS (status) == 3)))
      g_error ("qemu-img check %s: %s%s", disk, out, err);
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  if (snapshots)
    {
      const char *argv[] = { img, "snapshot", "-l", disk, NULL };

      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                   &out, &err, &status, NULL));
      if (!g_spawn_check_wait_status (status, NULL))
        g_error ("qemu-img snapshot -l %s: %s%s", disk, out, err);
      for (unsigned i = 0; snapshots[i]; i++)
        if (strstr (out, snapshots[i]) == NULL)
          g_error ("qemu-img snapshot -l does not list %s:\n%s", snapshots[i], out);
    }
}

static void
test_revert (Fixture *f, gconstpointer data)
{
  unsigned cpus = GPOINTER_TO_UINT (data);
  const char *const names[] = { "A", NULL };
  gsize a, r;

  start (f, cpus);
  {
    VrIoStats st;

    /* The guest has read and written records (512-byte sectors) by now. */
    vr_machine_get_io_stats (f->machine, &st);
    g_assert_cmpuint (st.disk_writes, >=, 2);
    g_assert_cmpuint (st.disk_reads, >=, 2);
    g_assert_cmpuint (st.disk_write_bytes, ==, st.disk_writes * 512);
    g_assert_cmpuint (st.disk_read_bytes, ==, st.disk_reads * 512);
    g_assert_cmpuint (st.net_rx_packets + st.net_tx_packets, ==, 0);
  }
  a = take (f, "A");
  /* Run on well past the snapshot: more records, RAM rewritten. */
  wait_log (f, a + 3 * CONTINUE);
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);
  /* Twice from the same snapshot. */
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);
  g_clear_pointer (&f->machine, vr_machine_free);
  check_disk (f->disk, names, false);
}

static void
test_branch (Fixture *f, gconstpointer data)
{
  const char *const names[] = { "A", "B", "C", NULL };
  gsize a, b, c, r;

  start (f, 1);
  a = take (f, "A");
  wait_log (f, a + 2 * CONTINUE);
  b = take (f, "B");
  wait_log (f, b + 2 * CONTINUE);
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);
  c = take (f, "C");
  wait_log (f, c + 2 * CONTINUE);
  r = revert (f, "B");
  assert_same_continuation (f, b, r, CONTINUE);
  r = revert (f, "C");
  assert_same_continuation (f, c, r, CONTINUE);
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);

  /* Delete B: A and C still revert. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = g_build_filename (f->dir, "B", NULL);

    g_assert_true (vr_machine_delete_snapshot (f->machine, dir, &error));
    g_assert_no_error (error);
    g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  }
  r = revert (f, "C");
  assert_same_continuation (f, c, r, CONTINUE);
  g_clear_pointer (&f->machine, vr_machine_free);
  {
    const char *const left[] = { "A", "C", NULL };

    check_disk (f->disk, left, false);
  }
  (void) names;
}

/* Copies @src to @dst, then lets @mutate change the copy. */
static char *
damaged_copy (Fixture *f, const char *src, const char *dst,
              void (*mutate) (const char *dir))
{
  g_autofree char *from = g_build_filename (f->dir, src, NULL);
  char *to = g_build_filename (f->dir, dst, NULL);
  const char *files[] = { "state", "ram" };

  g_assert_cmpint (g_mkdir (to, 0755), ==, 0);
  for (unsigned i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *a = g_build_filename (from, files[i], NULL);
      g_autofree char *b = g_build_filename (to, files[i], NULL);
      const char *argv[] = { "cp", "--sparse=always", a, b, NULL };
      int status;

      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, NULL, &status, NULL));
      g_assert_true (g_spawn_check_wait_status (status, NULL));
    }
  mutate (to);
  return to;
}

static void
flip_byte (const char *path, off_t offset)
{
  int fd = open (path, O_RDWR);
  uint8_t b;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, &b, 1, offset), ==, 1);
  b ^= 0x40;
  g_assert_cmpint (pwrite (fd, &b, 1, offset), ==, 1);
  close (fd);
}

static void
truncate_state (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "state", NULL);
  GStatBuf st;

  g_assert_cmpint (g_stat (p, &st), ==, 0);
  g_assert_cmpint (truncate (p, st.st_size / 2), ==, 0);
}

static void
flip_state_payload (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "state", NULL);

  flip_byte (p, 200);
}

static void
newer_state (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "state", NULL);

  flip_byte (p, 9);   /* format version 1 → 0x4001 */
}

static void
flip_ram_header (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "ram", NULL);

  flip_byte (p, 20);
}

static void
truncate_ram (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "ram", NULL);

  g_assert_cmpint (truncate (p, MEMORY / 2), ==, 0);
}

static void
remove_ram (const char *dir)
{
  g_autofree char *p = g_build_filename (dir, "ram", NULL);

  g_assert_cmpint (g_unlink (p), ==, 0);
}

static void
test_bad_files (Fixture *f, gconstpointer data)
{
  static const struct
  {
    const char *name;
    void      (*mutate) (const char *dir);
    const char *message;
  } cases[] = {
    { "truncated", truncate_state, "truncated" },
    { "flipped", flip_state_payload, "damaged" },
    { "newer", newer_state, "newer version" },
    { "ram-header", flip_ram_header, "header checksum" },
    { "ram-truncated", truncate_ram, "truncated" },
    { "ram-missing", remove_ram, "cannot be opened" },
  };
  gsize a, r;

  start (f, 1);
  a = take (f, "A");

  for (unsigned i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *dir = damaged_copy (f, "A", cases[i].name, cases[i].mutate);
      gsize before = log_length (f);

      g_assert_false (vr_machine_restore_snapshot (f->machine, dir, 0, &error));
      g_assert_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT);
      g_test_message ("%s: %s", cases[i].name, error->message);
      if (strstr (error->message, cases[i].message) == NULL)
        g_error ("%s: the message does not say “%s”: %s", cases[i].name, cases[i].message,
                 error->message);
      /* The machine was not touched: it runs on. */
      g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_RUNNING);
      wait_log (f, before + 64);
    }

  /* A machine built differently (other memory size) refuses it too. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = g_build_filename (f->dir, "A", NULL);
    VrMachine *other = new_machine (f, 1, MEMORY * 2, &error);

    g_assert_no_error (error);
    g_assert_false (vr_machine_restore_snapshot (other, dir, 0, &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT);
    g_test_message ("other layout: %s", error->message);
    g_assert_cmpint (vr_machine_get_state (other), ==, VR_STATE_CREATED);
    vr_machine_free (other);
  }

  /* The good one still works after all that. */
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);
}

/* A stopped machine's snapshot holds its disks only; reverting leaves it stopped. */
static void
test_offline (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (f->dir, "off", NULL);
  g_autofree char *state = g_build_filename (dir, "state", NULL);
  g_autofree char *ram = g_build_filename (dir, "ram", NULL);
  const char *const names[] = { "off", NULL };

  f->machine = new_machine (f, 1, MEMORY, &error);
  g_assert_no_error (error);
  g_assert_true (vr_machine_save_snapshot (f->machine, dir, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_test (state, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (ram, G_FILE_TEST_EXISTS));

  /* The guest writes records; reverting to the offline snapshot empties the disk again, so
   * the guest, booted afresh, finds no record where it writes (it checks). */
  g_assert_true (vr_machine_start (f->machine, &error));
  wait_log (f, 200);
  {
    gsize len;
    g_autofree char *text = NULL;

    do
      {
        g_clear_pointer (&text, g_free);
        wait_log (f, log_length (f) + 1);
        text = read_log (f, &len);
      }
    while (strstr (text, "rec=2") == NULL);
  }
  g_assert_true (vr_machine_restore_snapshot (f->machine, dir, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_STOPPED);
  {
    gsize before = log_length (f);
    gsize len;
    g_autofree char *text = NULL;

    g_assert_true (vr_machine_start (f->machine, &error));
    do
      {
        g_clear_pointer (&text, g_free);
        wait_log (f, log_length (f) + 1);
        text = read_log (f, &len);
      }
    while (strstr (text + before, "rec=3") == NULL);
  }
  g_clear_pointer (&f->machine, vr_machine_free);
  check_disk (f->disk, names, false);
}

/* Saving onto a full file system fails cleanly; the earlier snapshot is untouched. */
static void
test_disk_full (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *mnt = g_build_filename (f->dir, "small", NULL);
  g_autofree char *full = g_build_filename (mnt, "snap", NULL);
  const char *mount_argv[] = { "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt, NULL };
  const char *umount_argv[] = { "umount", mnt, NULL };
  g_autoptr (GDir) d = NULL;
  int status = -1;
  gsize a, r;

  g_assert_cmpint (g_mkdir (mnt, 0755), ==, 0);
  if (!g_spawn_sync (NULL, (char **) mount_argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                     &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    {
      g_test_skip ("cannot mount a small tmpfs here (needs root)");
      return;
    }

  start (f, 1);
  a = take (f, "A");
  g_assert_true (vr_machine_pause (f->machine, &error));
  g_assert_false (vr_machine_save_snapshot (f->machine, full, NULL, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_test_message ("full: %s", error->message);
  g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
  g_clear_error (&error);
  /* Nothing is left behind on the small file system. */
  d = g_dir_open (mnt, 0, NULL);
  g_assert_null (g_dir_read_name (d));
  g_clear_pointer (&d, g_dir_close);
  g_assert_true (vr_machine_resume (f->machine, &error));
  wait_log (f, a + 2 * CONTINUE);

  g_spawn_sync (NULL, (char **) umount_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                NULL, NULL);
  r = revert (f, "A");
  assert_same_continuation (f, a, r, CONTINUE);
  g_clear_pointer (&f->machine, vr_machine_free);
  {
    const char *const names[] = { "A", NULL };

    check_disk (f->disk, names, false);
  }
}

/* ---- vireo-run ---------------------------------------------------------------------------- */

static GPtrArray *
vireo_run_argv (Fixture *f, const char *extra1, const char *extra2)
{
  g_autofree char *kernel = guest_path ("snapshot.elf");
  g_autofree char *disk_opt = g_strdup_printf ("%s,format=qcow2", f->disk);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup (g_getenv ("VIREO_RUN")));
  g_ptr_array_add (argv, g_strdup ("--kernel"));
  g_ptr_array_add (argv, g_strdup (kernel));
  g_ptr_array_add (argv, g_strdup ("--memory"));
  g_ptr_array_add (argv, g_strdup ("64M"));
  g_ptr_array_add (argv, g_strdup ("--disk"));
  g_ptr_array_add (argv, g_strdup (disk_opt));
  g_ptr_array_add (argv, g_strdup ("--timeout"));
  g_ptr_array_add (argv, g_strdup ("600"));
  if (extra1)
    g_ptr_array_add (argv, g_strdup (extra1));
  if (extra2)
    g_ptr_array_add (argv, g_strdup (extra2));
  g_ptr_array_add (argv, NULL);
  return argv;
}

static void
run_sync (GPtrArray *argv, char **out, char **err, int *status)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, status, &error));
  g_assert_no_error (error);
}

static void
test_fresh_process (Fixture *f, gconstpointer data)
{
  g_autofree char *snap = g_build_filename (f->dir, "S", NULL);
  g_autofree char *save_opt = g_strdup_printf ("--snapshot-save=%s", snap);
  g_autofree char *restore_opt = g_strdup_printf ("--restore=%s", snap);
  g_autofree char *out1 = NULL, *err1 = NULL, *out2 = NULL, *err2 = NULL;
  g_autoptr (GPtrArray) argv1 = vireo_run_argv (f, save_opt, "--append=disk snap=256 end=700");
  g_autoptr (GPtrArray) argv2 = vireo_run_argv (f, restore_opt, "--append=disk snap=256 end=700");
  const char *asked, *tail;
  int status;

  if (g_getenv ("VIREO_RUN") == NULL)
    {
      g_test_skip ("VIREO_RUN is not set");
      return;
    }
  run_sync (argv1, &out1, &err1, &status);
  g_test_message ("first run: %s", err1);
  g_assert_true (g_spawn_check_wait_status (status, NULL) == FALSE);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 1);   /* debug exit 0 */
  g_assert_nonnull (strstr (out1, "PASS"));
  g_assert_nonnull (strstr (err1, "snapshot saved to"));

  run_sync (argv2, &out2, &err2, &status);
  g_test_message ("second run: %s", err2);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 1);
  g_assert_nonnull (strstr (err2, "restored"));

  /* The second run's whole output is what the first printed after asking. */
  asked = strstr (out1, "snapshot: asking");
  g_assert_nonnull (asked);
  tail = strchr (asked, '\n') + 1;
  if (!g_str_equal (tail, out2))
    g_error ("the restored run printed\n%s\ninstead of\n%s", out2, tail);
  {
    const char *const names[] = { "S", NULL };

    check_disk (f->disk, names, false);
  }
}

/* SIGKILL at random points while snapshots are being saved: every snapshot that exists
 * afterwards restores, none is half there, and the disk has no corruption. */
static void
test_sigkill (Fixture *f, gconstpointer data)
{
  g_autofree char *base = g_build_filename (f->dir, "K", NULL);
  g_autofree char *save_opt = g_strdup_printf ("--snapshot-save=%s", base);
  unsigned trials = g_test_slow () ? 100 : 50, restored = 0, saved_total = 0;
  GRand *rand = g_rand_new_with_seed (20261128);

  if (g_getenv ("VIREO_RUN") == NULL)
    {
      g_test_skip ("VIREO_RUN is not set");
      return;
    }

  for (unsigned t = 0; t < trials; t++)
    {
      g_autoptr (GPtrArray) argv = vireo_run_argv (f, save_opt, "--append=disk");
      g_autoptr (GError) error = NULL;
      g_autoptr (GDir) d = NULL;
      const char *name;
      GPid pid;
      int status;
      int null_fd = open ("/dev/null", O_WRONLY);
      unsigned hups = 1 + (unsigned) g_rand_int_range (rand, 0, 3);

      /* A fresh disk each time: the guest refuses to find its records already there. */
      g_unlink (f->disk);
      g_assert_true (vr_disk_create (f->disk, VR_DISK_FORMAT_QCOW2, 16u << 20, NULL, 0, &error));

      g_assert_true (g_spawn_async_with_pipes_and_fds (NULL, (const char *const *) argv->pdata,
                                                       NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                                       NULL, -1, null_fd, null_fd, NULL, NULL,
                                                       0, &pid, NULL, NULL, NULL, &error));
      close (null_fd);
      g_usleep (200000);
      for (unsigned h = 0; h < hups; h++)
        {
          kill (pid, SIGHUP);
          g_usleep ((gulong) g_rand_int_range (rand, 0, 40000));
        }
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      g_spawn_close_pid (pid);

      /* Every complete snapshot restores; partial ones are never under a final name. */
      d = g_dir_open (f->dir, 0, NULL);
      while ((name = g_dir_read_name (d)))
        {
          g_autofree char *path = g_build_filename (f->dir, name, NULL);

          if (!g_str_has_prefix (name, "K"))
            continue;
          if (strstr (name, ".partial-"))
            {
              remove_tree (path);
              continue;
            }
          saved_total++;
          {
            g_autoptr (GError) rerror = NULL;
            VrMachine *m = new_machine (f, 1, MEMORY, &rerror);

            g_assert_no_error (rerror);
            if (!vr_machine_restore_snapshot (m, path, VR_RESTORE_PAUSED, &rerror))
              g_error ("trial %u: snapshot %s does not restore: %s", t, name, rerror->message);
            restored++;
            vr_machine_delete_snapshot (m, path, &rerror);
            g_assert_no_error (rerror);
            vr_machine_free (m);
          }
        }
      check_disk (f->disk, NULL, true);
    }
  g_test_message ("%u trials: %u snapshots completed and restored", trials, restored);
  g_assert_cmpuint (restored, ==, saved_total);
  g_rand_free (rand);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (!g_file_test ("/dev/kvm", G_FILE_TEST_EXISTS))
    {
      g_test_message ("no /dev/kvm");
      return 77;
    }
  g_test_add ("/snapshot/revert/1-cpu", Fixture, GUINT_TO_POINTER (1), fixture_setup,
              test_revert, fixture_teardown);
  g_test_add ("/snapshot/revert/4-cpus", Fixture, GUINT_TO_POINTER (4), fixture_setup,
              test_revert, fixture_teardown);
  g_test_add ("/snapshot/branch", Fixture, NULL, fixture_setup, test_branch, fixture_teardown);
  g_test_add ("/snapshot/bad-files", Fixture, NULL, fixture_setup, test_bad_files,
              fixture_teardown);
  g_test_add ("/snapshot/offline", Fixture, NULL, fixture_setup, test_offline, fixture_teardown);
  g_test_add ("/snapshot/disk-full", Fixture, NULL, fixture_setup, test_disk_full,
              fixture_teardown);
  g_test_add ("/snapshot/vireo-run/fresh-process", Fixture, NULL, fixture_setup,
              test_fresh_process, fixture_teardown);
  g_test_add ("/snapshot/vireo-run/sigkill", Fixture, NULL, fixture_setup, test_sigkill,
              fixture_teardown);
  return g_test_run ();
}
