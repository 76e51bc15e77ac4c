/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * qcow2 internal snapshots and resize, against qemu-img: snapshots made by Vireo are listed,
 * applied and deleted by `qemu-img snapshot` and the other way round, `qemu-img check` stays
 * clean after every step, data comes back on apply (read through Vireo and through
 * `qemu-img compare`), space is reused, hostile snapshot tables fail cleanly, and a process
 * killed with SIGKILL in the middle of snapshot operations leaves an image that checks clean
 * and whose earlier snapshots still apply. The parts that need qemu-img skip without it.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk-test-util.h"

#define MIB (UINT64_C (1) << 20)
#define GIB (UINT64_C (1) << 30)

static char *qemu_img;

static bool
need_qemu (void)
{
  if (qemu_img == NULL)
    {
      g_test_skip ("qemu-img not found");
      return false;
    }
  return true;
}

static void
write_file (const char *path, const uint8_t *data, uint64_t len)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, (const char *) data, (gssize) len, &error));
  g_assert_no_error (error);
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (from, &data, &len, NULL));
  write_file (to, (const uint8_t *) data, len);
}

/* Exit status of `qemu-img check`; the report in *out. */
static int
qemu_check (const char *path, char **out)
{
  g_autofree char *err = NULL;
  g_autofree char *o = NULL;
  int rc = dt_run (&o, &err, (const char *const[]) { qemu_img, "check", "-f", "qcow2", path,
                                                     NULL });

  if (out != NULL)
    *out = g_strconcat (o ? o : "", err ? err : "", NULL);
  return rc;
}

static void
assert_qemu_check_clean (const char *path)
{
  g_autofree char *out = NULL;
  int rc = qemu_check (path, &out);

  if (rc != 0)
    g_error ("qemu-img check %s: exit %d\n%s", path, rc, out);
}

static void
assert_vireo_check_clean (const char *path)
{
  g_autoptr (GError) error = NULL;
  VrDiskCheckResult r;

  g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_no_error (error);
  if (r.corruptions + r.leaks + r.check_errors != 0)
    {
      for (guint i = 0; i < r.messages->len; i++)
        g_test_message ("%s", (char *) r.messages->pdata[i]);
      g_error ("vireo check %s: %" G_GUINT64_FORMAT " corruptions, %" G_GUINT64_FORMAT
               " leaks", path, r.corruptions, r.leaks);
    }
  vr_disk_check_result_clear (&r);
}

/* Both checks, when qemu-img is there. */
static void
assert_clean (const char *path)
{
  assert_vireo_check_clean (path);
  if (qemu_img != NULL)
    assert_qemu_check_clean (path);
}

/* `qemu-img compare` of the image against the expected contents. */
static void
assert_qemu_equals (const char *img, const uint8_t *model, uint64_t size)
{
  g_autofree char *dir = g_path_get_dirname (img);
  g_autofree char *raw = g_build_filename (dir, "expect.raw", NULL);
  g_autofree char *out = NULL;
  int rc;

  write_file (raw, model, size);
  rc = DT_RUN (&out, qemu_img, "compare", "-f", "qcow2", "-F", "raw", img, raw);
  if (rc != 0)
    g_error ("qemu-img compare %s: exit %d\n%s", img, rc, out);
  g_unlink (raw);
}

static VrDisk *
open_qcow2 (const char *path, VrDiskOpenFlags flags)
{
  g_autoptr (GError) error = NULL;
  VrDisk *disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, flags, &error);

  g_assert_no_error (error);
  g_assert_nonnull (disk);
  return disk;
}

static void
assert_range_equals (VrDisk *disk, const uint8_t *expect, uint64_t off, uint64_t len)
{
  g_autofree uint8_t *buf = g_malloc (len);
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_pread (disk, buf, len, off, &error));
  g_assert_no_error (error);
  if (memcmp (buf, expect, len) != 0)
    for (uint64_t i = 0; i < len; i++)
      if (buf[i] != expect[i])
        g_error ("mismatch at %" G_GUINT64_FORMAT ": %02x != %02x", off + i, buf[i],
                 expect[i]);
}

static void
assert_disk_equals (VrDisk *disk, const uint8_t *model, uint64_t size)
{
  g_assert_cmpuint (vr_disk_get_size (disk), ==, size);
  assert_range_equals (disk, model, 0, size);
}

static void
write_model (VrDisk *disk, uint8_t *model, uint64_t off, uint64_t len, uint32_t seed)
{
  g_autoptr (GError) error = NULL;

  dt_pattern (model + off, len, off, seed);
  g_assert_true (vr_disk_pwrite (disk, model + off, len, off, &error));
  g_assert_no_error (error);
}

/* Random writes, zeroes and discards through the API, mirrored in model. */
static void
random_io (VrDisk *disk, uint8_t *model, uint64_t size, unsigned rounds, uint32_t seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  for (unsigned r = 0; r < rounds; r++)
    {
      g_autoptr (GError) error = NULL;
      uint64_t off = (uint64_t) g_rand_double_range (rand, 0, (double) size);
      uint64_t len = (uint64_t) g_rand_int_range (rand, 1, 200000);
      int op = g_rand_int_range (rand, 0, 10);

      if (g_rand_boolean (rand))
        off &= ~UINT64_C (511), len = (len + 511) & ~UINT64_C (511);
      len = MIN (len, size - off);
      if (len == 0)
        continue;
      if (op < 8)
        write_model (disk, model, off, len, seed * 1000 + r);
      else
        {
          g_assert_true (vr_disk_write_zeroes (disk, off, len, op == 9, &error));
          g_assert_no_error (error);
          memset (model + off, 0, len);
        }
    }
}

static void
snap_create (VrDisk *disk, const char *id, const char *name)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_snapshot_create (disk, id, name, 0, &error));
  g_assert_no_error (error);
}

static void
snap_apply (VrDisk *disk, const char *name)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_snapshot_apply (disk, name, &error));
  g_assert_no_error (error);
}

static void
snap_delete (VrDisk *disk, const char *name)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_snapshot_delete (disk, name, &error));
  g_assert_no_error (error);
}

static GPtrArray *
snap_list (VrDisk *disk)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *list = vr_disk_snapshot_list (disk, &error);

  g_assert_no_error (error);
  g_assert_nonnull (list);
  return list;
}

static VrDiskSnapshot *
find_snap (GPtrArray *list, const char *name)
{
  for (guint i = 0; i < list->len; i++)
    if (g_strcmp0 (((VrDiskSnapshot *) list->pdata[i])->name, name) == 0)
      return list->pdata[i];
  return NULL;
}

/* An image as the test wants it: Vireo's own (64 KiB clusters, v3) or qemu-img's. */
static char *
make_image (const char *dir, const char *name, const char *qemu_opts, uint64_t size)
{
  g_autofree char *size_s = g_strdup_printf ("%" G_GUINT64_FORMAT, size);
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);

  if (qemu_opts == NULL)
    {
      g_assert_true (vr_disk_create (path, VR_DISK_FORMAT_QCOW2, size, NULL, 0, &error));
      g_assert_no_error (error);
    }
  else
    g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", "-o", qemu_opts,
                             path, size_s), ==, 0);
  return path;
}

/* Header fields (big-endian) of a qcow2 file. */
static uint64_t
read_be (const char *path, uint64_t off, unsigned bytes)
{
  uint8_t b[8] = { 0 };
  uint64_t v = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, b, bytes, (off_t) off), ==, (ssize_t) bytes);
  close (fd);
  for (unsigned i = 0; i < bytes; i++)
    v = (v << 8) | b[i];
  return v;
}

static void
write_be (const char *path, uint64_t off, unsigned bytes, uint64_t v)
{
  uint8_t b[8];
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  for (unsigned i = 0; i < bytes; i++)
    b[i] = (uint8_t) (v >> (8 * (bytes - 1 - i)));
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, b, bytes, (off_t) off), ==, (ssize_t) bytes);
  close (fd);
}

static uint64_t
allocated_bytes (const char *path)
{
  struct stat st;

  g_assert_cmpint (stat (path, &st), ==, 0);
  return (uint64_t) st.st_blocks * 512;
}

static uint64_t
file_size (const char *path)
{
  struct stat st;

  g_assert_cmpint (stat (path, &st), ==, 0);
  return (uint64_t) st.st_size;
}

/* Created by Vireo: qemu-img lists them with the right ids, names and values. */
static void
test_create_list (void)
{
  const char *vireo_img = g_getenv ("VIREO_IMG");
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *img = NULL;
  g_autofree uint8_t *model = g_malloc0 (32 * MIB);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  const VrDiskSnapshot *sn;
  int64_t now = g_get_real_time () / G_USEC_PER_SEC;
  VrDisk *disk;

  img = make_image (dir, "list.qcow2", NULL, 32 * MIB);
  disk = open_qcow2 (img, 0);
  random_io (disk, model, 32 * MIB, 50, 1);
  g_assert_true (vr_disk_snapshot_create (disk, NULL, "first", UINT64_C (90061500000000),
                                          &error));
  g_assert_no_error (error);
  snap_create (disk, "7", "second");
  snap_create (disk, NULL, "third");

  /* Duplicates and bad arguments. */
  g_assert_false (vr_disk_snapshot_create (disk, NULL, "first", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_create (disk, "7", "other", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_create (disk, NULL, "", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_apply (disk, "nonexistent", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_delete (disk, "nonexistent", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_NOT_FOUND);
  g_clear_error (&error);

  list = snap_list (disk);
  g_assert_cmpuint (list->len, ==, 3);
  sn = list->pdata[0];
  g_assert_cmpstr (sn->id, ==, "1");
  g_assert_cmpstr (sn->name, ==, "first");
  g_assert_cmpuint (sn->vm_clock_nsec, ==, UINT64_C (90061500000000));
  g_assert_cmpuint (sn->disk_size, ==, 32 * MIB);
  g_assert_cmpuint (sn->vm_state_size, ==, 0);
  g_assert_cmpuint (sn->icount, ==, UINT64_MAX);
  g_assert_cmpint (sn->date_sec, >=, now - 5);
  g_assert_cmpint (sn->date_sec, <=, now + 5);
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[1])->id, ==, "7");
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[2])->id, ==, "8");
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[2])->name, ==, "third");
  assert_disk_equals (disk, model, 32 * MIB);
  vr_disk_close (disk);
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Reopened: the same list. */
  disk = open_qcow2 (img, VR_DISK_OPEN_READONLY);
  list = snap_list (disk);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[1])->name, ==, "second");
  {
    g_autoptr (VrDiskInfo) info = vr_disk_get_info (disk, &error);

    g_assert_cmpuint (info->nb_snapshots, ==, 3);
  }
  /* Read-only: nothing changes. */
  g_assert_false (vr_disk_snapshot_create (disk, NULL, "ro", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_apply (disk, "first", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_delete (disk, "first", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  g_assert_false (vr_disk_resize (disk, 64 * MIB, false, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  vr_disk_close (disk);
  assert_vireo_check_clean (img);

  if (qemu_img == NULL)
    {
      dt_rmdir (dir);
      g_test_skip ("qemu-img not found (the Vireo part passed)");
      return;
    }
  assert_qemu_check_clean (img);
  {
    g_autofree char *qout = NULL, *vout = NULL;

    g_assert_cmpint (DT_RUN (&qout, qemu_img, "snapshot", "-l", img), ==, 0);
    g_test_message ("%s", qout);
    g_assert_nonnull (strstr (qout, "Snapshot list:\n"));
    g_assert_true (g_regex_match_simple ("^1 +first +0 B [0-9-]+ [0-9:]+ 25:01:01\\.500 +$",
                                         qout, G_REGEX_MULTILINE, 0));
    g_assert_true (g_regex_match_simple ("^7 +second +0 B [0-9-]+ [0-9:]+ 00:00:00\\.000 +$",
                                         qout, G_REGEX_MULTILINE, 0));
    g_assert_true (g_regex_match_simple ("^8 +third ", qout, G_REGEX_MULTILINE, 0));
    /* vireo-img prints the same table. */
    if (vireo_img != NULL)
      {
        g_assert_cmpint (DT_RUN (&vout, vireo_img, "snapshot", "-l", img), ==, 0);
        g_assert_cmpstr (vout, ==, qout);
      }
  }
  /* Each one reads back as the data of the moment (all the same here). */
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "7", img), ==, 0);
  assert_qemu_equals (img, model, 32 * MIB);
  assert_qemu_check_clean (img);
  dt_rmdir (dir);
}

/* Write, snapshot, overwrite, apply: the data is back. Then branches. */
static void
revert_test (const char *qemu_opts, uint64_t size)
{
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL;
  g_autofree uint8_t *m0 = g_malloc0 (size);
  g_autofree uint8_t *ma = NULL, *mb = NULL, *mc = NULL;
  VrDisk *disk;

  if (qemu_opts != NULL && !need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = make_image (dir, "revert.qcow2", qemu_opts, size);
  disk = open_qcow2 (img, 0);
  random_io (disk, m0, size, 150, 2);
  snap_create (disk, NULL, "zero");
  {
    g_autofree uint8_t *scratch = g_memdup2 (m0, size);

    random_io (disk, scratch, size, 150, 3);
    assert_disk_equals (disk, scratch, size);
  }
  snap_apply (disk, "zero");
  assert_disk_equals (disk, m0, size);
  vr_disk_close (disk);
  assert_clean (img);
  if (qemu_img != NULL)
    assert_qemu_equals (img, m0, size);

  /* Branches: A, write, B, apply A, write, C; then every one of them again. */
  disk = open_qcow2 (img, 0);
  ma = g_memdup2 (m0, size);
  random_io (disk, ma, size, 60, 4);
  snap_create (disk, NULL, "A");
  mb = g_memdup2 (ma, size);
  random_io (disk, mb, size, 60, 5);
  snap_create (disk, NULL, "B");
  snap_apply (disk, "A");
  assert_disk_equals (disk, ma, size);
  assert_clean (img);
  mc = g_memdup2 (ma, size);
  random_io (disk, mc, size, 60, 6);
  snap_create (disk, NULL, "C");
  assert_clean (img);
  snap_apply (disk, "B");
  assert_disk_equals (disk, mb, size);
  assert_clean (img);
  snap_apply (disk, "C");
  assert_disk_equals (disk, mc, size);
  snap_apply (disk, "A");
  assert_disk_equals (disk, ma, size);
  snap_apply (disk, "zero");
  assert_disk_equals (disk, m0, size);
  assert_clean (img);
  /* Writes after an apply do not reach the snapshot. */
  {
    g_autofree uint8_t *scratch = g_memdup2 (m0, size);

    random_io (disk, scratch, size, 60, 7);
    snap_apply (disk, "B");
    assert_disk_equals (disk, mb, size);
  }
  vr_disk_close (disk);
  assert_clean (img);
  if (qemu_img != NULL)
    {
      assert_qemu_equals (img, mb, size);
      /* qemu-img applies Vireo's snapshots to the same data. */
      g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "C", img), ==, 0);
      assert_qemu_equals (img, mc, size);
      g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "A", img), ==, 0);
      assert_qemu_equals (img, ma, size);
      assert_qemu_check_clean (img);
      disk = open_qcow2 (img, VR_DISK_OPEN_READONLY);
      assert_disk_equals (disk, ma, size);
      vr_disk_close (disk);
    }
  dt_rmdir (dir);
}

static void
test_revert_vireo (void)
{
  revert_test (NULL, 24 * MIB);
}

static void
test_revert_4k (void)
{
  /* 512 L2 entries per table and 2048 refcounts per block: many of both. */
  revert_test ("cluster_size=4096", 16 * MIB);
}

static void
test_revert_v2_512 (void)
{
  revert_test ("compat=0.10,cluster_size=512", 4 * MIB);
}

static void
test_revert_refcount8 (void)
{
  revert_test ("cluster_size=4096,refcount_bits=8", 8 * MIB);
}

/* 1-bit refcounts cannot share a cluster: creation fails and changes nothing. */
static void
test_refcount1 (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL;
  g_autofree uint8_t *model = g_malloc0 (4 * MIB);
  g_autoptr (GError) error = NULL;
  uint64_t size_before;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = make_image (dir, "rc1.qcow2", "refcount_bits=1", 4 * MIB);
  disk = open_qcow2 (img, 0);
  random_io (disk, model, 4 * MIB, 20, 8);
  g_assert_true (vr_disk_flush (disk, &error));
  size_before = file_size (img);
  g_assert_false (vr_disk_snapshot_create (disk, NULL, "x", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_NO_SPACE);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_assert_cmpuint (file_size (img), ==, size_before);
  assert_disk_equals (disk, model, 4 * MIB);
  random_io (disk, model, 4 * MIB, 20, 9);
  vr_disk_close (disk);
  assert_clean (img);
  assert_qemu_equals (img, model, 4 * MIB);
  dt_rmdir (dir);
}

/* Deletion in several orders; then create/delete cycles reuse the space. */
static void
test_delete (void)
{
  const uint64_t size = 16 * MIB;
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *img = make_image (dir, "del.qcow2", NULL, size);
  g_autofree uint8_t *cur = g_malloc0 (size);
  uint8_t *models[6] = { NULL };
  const char *order[] = { "s3", "s1", "s5", "s2" };
  uint64_t before, after, end_before;
  VrDisk *disk = open_qcow2 (img, 0);

  for (int i = 1; i <= 5; i++)
    {
      g_autofree char *name = g_strdup_printf ("s%d", i);

      random_io (disk, cur, size, 40, 10 + (uint32_t) i);
      snap_create (disk, NULL, name);
      models[i] = g_memdup2 (cur, size);
    }
  random_io (disk, cur, size, 40, 20);
  for (guint k = 0; k < G_N_ELEMENTS (order); k++)
    {
      g_autoptr (GPtrArray) list = NULL;

      snap_delete (disk, order[k]);
      assert_clean (img);
      assert_disk_equals (disk, cur, size);
      list = snap_list (disk);
      g_assert_cmpuint (list->len, ==, 4 - k);
      g_assert_null (find_snap (list, order[k]));
    }
  /* s4 is left, intact. */
  snap_apply (disk, "s4");
  assert_disk_equals (disk, models[4], size);
  memcpy (cur, models[4], size);
  snap_delete (disk, "4");  /* by id */
  assert_clean (img);
  assert_disk_equals (disk, cur, size);
  if (qemu_img != NULL)
    assert_qemu_equals (img, cur, size);

  /* No snapshots left: all clusters of the current data only. */
  {
    VrDiskCheckResult r;
    g_autoptr (GError) error = NULL;

    g_assert_true (vr_disk_check (img, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
    g_assert_cmpuint (r.leaks, ==, 0);
    vr_disk_check_result_clear (&r);
  }

  /* 20 cycles: write 2 MiB, snapshot, overwrite it (copy on write), delete. */
  before = allocated_bytes (img);
  end_before = file_size (img);
  for (int c = 0; c < 20; c++)
    {
      write_model (disk, cur, 2 * MIB, 2 * MIB, 100 + (uint32_t) c);
      snap_create (disk, NULL, "cycle");
      write_model (disk, cur, 2 * MIB, 2 * MIB, 200 + (uint32_t) c);
      snap_delete (disk, "cycle");
    }
  assert_disk_equals (disk, cur, size);
  vr_disk_close (disk);
  after = allocated_bytes (img);
  g_test_message ("allocated %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT " bytes; file %"
                  G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT, before, after, end_before,
                  file_size (img));
  /* Without reuse this grows by 20 × 2 MiB at least. */
  g_assert_cmpuint (after, <=, before + 6 * MIB);
  g_assert_cmpuint (file_size (img), <=, end_before + 8 * MIB);
  assert_clean (img);
  if (qemu_img != NULL)
    assert_qemu_equals (img, cur, size);
  for (int i = 1; i <= 5; i++)
    g_free (models[i]);
  dt_rmdir (dir);
}

/* qemu-io writes a constant pattern; the model follows. */
static void
qemu_io_write (const char *img, uint8_t *model, uint64_t off, uint64_t len, uint8_t v)
{
  g_autofree char *cmd = g_strdup_printf ("write -P 0x%02x %" G_GUINT64_FORMAT " %"
                                          G_GUINT64_FORMAT, v, off, len);
  g_autofree char *io = g_find_program_in_path ("qemu-io");
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;

  if (io != NULL)
    g_assert_cmpint (DT_RUN (&out, io, "-f", "qcow2", "-c", cmd, img), ==, 0);
  else
    {
      VrDisk *disk = open_qcow2 (img, 0);
      g_autofree uint8_t *buf = g_malloc (len);

      memset (buf, v, len);
      g_assert_true (vr_disk_pwrite (disk, buf, len, off, &error));
      vr_disk_close (disk);
    }
  memset (model + off, v, len);
}

/* Snapshots made by qemu-img, used by Vireo, and the other way round. */
static void
interop_test (const char *compat)
{
  const uint64_t size = 16 * MIB;
  g_autofree char *dir = NULL, *img = NULL, *opts = NULL;
  g_autofree uint8_t *mq1 = NULL, *mv1 = NULL, *cur = g_malloc0 (size);
  g_autoptr (GPtrArray) list = NULL;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  opts = g_strdup_printf ("compat=%s", compat);
  img = make_image (dir, "interop.qcow2", opts, size);
  qemu_io_write (img, cur, 0, 3 * MIB, 0x11);
  qemu_io_write (img, cur, 10 * MIB, 100000, 0x12);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-c", "q1", img), ==, 0);
  mq1 = g_memdup2 (cur, size);
  qemu_io_write (img, cur, MIB, 3 * MIB, 0x21);

  disk = open_qcow2 (img, 0);
  list = snap_list (disk);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[0])->id, ==, "1");
  g_assert_cmpstr (((VrDiskSnapshot *) list->pdata[0])->name, ==, "q1");
  g_assert_cmpuint (((VrDiskSnapshot *) list->pdata[0])->disk_size, ==, size);
  g_assert_cmpuint (((VrDiskSnapshot *) list->pdata[0])->icount, ==, 0);  /* qemu-img's */
  assert_disk_equals (disk, cur, size);
  /* Writes into clusters the qemu snapshot shares. */
  random_io (disk, cur, size, 80, 30);
  snap_create (disk, NULL, "v1");
  mv1 = g_memdup2 (cur, size);
  random_io (disk, cur, size, 80, 31);
  snap_apply (disk, "q1");
  assert_disk_equals (disk, mq1, size);
  memcpy (cur, mq1, size);
  vr_disk_close (disk);
  assert_clean (img);
  g_clear_pointer (&list, g_ptr_array_unref);

  /* qemu-img applies both. */
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "v1", img), ==, 0);
  assert_qemu_equals (img, mv1, size);
  assert_qemu_check_clean (img);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "q1", img), ==, 0);
  assert_qemu_equals (img, mq1, size);

  /* qemu-img deletes Vireo's, Vireo deletes qemu's. */
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-c", "q2", img), ==, 0);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-d", "v1", img), ==, 0);
  assert_clean (img);
  disk = open_qcow2 (img, 0);
  snap_delete (disk, "q1");
  random_io (disk, cur, size, 40, 32);
  snap_apply (disk, "q2");
  assert_disk_equals (disk, mq1, size);
  snap_delete (disk, "q2");
  vr_disk_close (disk);
  assert_clean (img);
  assert_qemu_equals (img, mq1, size);
  dt_rmdir (dir);
}

static void
test_interop_v3 (void)
{
  interop_test ("1.1");
}

static void
test_interop_v2 (void)
{
  interop_test ("0.10");
}

/* Rewrites the only entry of the snapshot table with the given extra data (old QEMU wrote
 * none, future ones may write more). */
static void
rewrite_snapshot_extra (const char *img, const uint8_t *extra, uint32_t extra_len)
{
  uint64_t so = read_be (img, 64, 8);
  uint8_t h[40];
  uint32_t old_extra, id_len, name_len;
  g_autofree uint8_t *names = NULL;
  g_autoptr (GByteArray) e = g_byte_array_new ();
  int fd;

  g_assert_cmpuint (read_be (img, 60, 4), ==, 1);
  fd = open (img, O_RDWR | O_CLOEXEC);
  g_assert_cmpint (pread (fd, h, 40, (off_t) so), ==, 40);
  old_extra = (uint32_t) h[36] << 24 | (uint32_t) h[37] << 16 | (uint32_t) h[38] << 8 | h[39];
  id_len = (uint32_t) h[12] << 8 | h[13];
  name_len = (uint32_t) h[14] << 8 | h[15];
  names = g_malloc (id_len + name_len);
  g_assert_cmpint (pread (fd, names, id_len + name_len, (off_t) (so + 40 + old_extra)), ==,
                   (ssize_t) (id_len + name_len));
  h[36] = (uint8_t) (extra_len >> 24);
  h[37] = (uint8_t) (extra_len >> 16);
  h[38] = (uint8_t) (extra_len >> 8);
  h[39] = (uint8_t) extra_len;
  g_byte_array_append (e, h, 40);
  g_byte_array_append (e, extra, extra_len);
  g_byte_array_append (e, names, id_len + name_len);
  g_assert_cmpint (pwrite (fd, e->data, e->len, (off_t) so), ==, (ssize_t) e->len);
  close (fd);
}

static void
test_extra_data (void)
{
  const uint64_t size = 4 * MIB;
  g_autofree char *dir = NULL, *img = NULL;
  g_autofree uint8_t *m1 = NULL, *cur = g_malloc0 (size);
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();

  /* No extra data at all (QEMU before 1.1): the disk size is the image's. */
  img = make_image (dir, "short.qcow2", "compat=0.10", size);
  qemu_io_write (img, cur, 0, MIB, 0x31);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-c", "old", img), ==, 0);
  m1 = g_memdup2 (cur, size);
  rewrite_snapshot_extra (img, NULL, 0);
  assert_qemu_check_clean (img);
  qemu_io_write (img, cur, 512 * 1024, MIB, 0x32);
  disk = open_qcow2 (img, 0);
  {
    g_autoptr (GPtrArray) list = snap_list (disk);
    const VrDiskSnapshot *sn = list->pdata[0];

    g_assert_cmpstr (sn->name, ==, "old");
    g_assert_cmpuint (sn->disk_size, ==, size);
    g_assert_cmpuint (sn->icount, ==, UINT64_MAX);
  }
  snap_create (disk, NULL, "new");
  snap_apply (disk, "old");
  assert_disk_equals (disk, m1, size);
  vr_disk_close (disk);
  assert_clean (img);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "new", img), ==, 0);
  assert_qemu_equals (img, cur, size);
  g_clear_pointer (&img, g_free);

  /* More extra data than Vireo knows: kept when the table is rewritten. */
  {
    uint8_t extra[40] = { 0 };
    g_autofree char *data = NULL;
    gsize len;

    extra[13] = 0x40;  /* disk_size = 4 MiB (big-endian, bytes 8..15) */
    memcpy (extra + 24, "VIREO-UNKNOWN-16", 16);
    img = make_image (dir, "long.qcow2", "compat=1.1", size);
    g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-c", "future", img), ==, 0);
    rewrite_snapshot_extra (img, extra, sizeof extra);
    assert_qemu_check_clean (img);
    disk = open_qcow2 (img, 0);
    {
      g_autoptr (GPtrArray) list = snap_list (disk);

      g_assert_cmpuint (((VrDiskSnapshot *) list->pdata[0])->disk_size, ==, size);
    }
    snap_create (disk, NULL, "second");
    vr_disk_close (disk);
    assert_clean (img);
    g_assert_true (g_file_get_contents (img, &data, &len, NULL));
    /* Known extra data, the unknown part, id "1", name. */
    g_assert_nonnull (memmem (data, len, "VIREO-UNKNOWN-161future", 23));
    g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "future", img), ==, 0);
    assert_qemu_check_clean (img);
  }
  dt_rmdir (dir);
}

/* Raw, VMDK, read-only: clear errors. */
static void
test_unsupported (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *raw = g_build_filename (dir, "r.raw", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  uint8_t buf[4096];
  VrDisk *disk;

  g_assert_true (vr_disk_create (raw, VR_DISK_FORMAT_RAW, 4 * MIB, NULL, 0, &error));
  disk = vr_disk_open (raw, VR_DISK_FORMAT_RAW, 0, &error);
  g_assert_no_error (error);
  list = vr_disk_snapshot_list (disk, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 0);
  g_assert_false (vr_disk_snapshot_create (disk, NULL, "x", 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "raw images have no internal snapshots"));
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_apply (disk, "x", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_delete (disk, "x", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
  g_clear_error (&error);

  /* Raw resize: grow, shrink only when allowed. */
  memset (buf, 0x5a, sizeof buf);
  g_assert_true (vr_disk_pwrite (disk, buf, sizeof buf, 4 * MIB - sizeof buf, &error));
  g_assert_true (vr_disk_resize (disk, 8 * MIB + 1000, false, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vr_disk_get_size (disk), ==, 8 * MIB + 1000);
  g_assert_cmpuint (file_size (raw), ==, 8 * MIB + 1000);
  {
    uint8_t got[4096], zero[4096] = { 0 };

    g_assert_true (vr_disk_pread (disk, got, sizeof got, 4 * MIB - sizeof got, &error));
    g_assert_cmpmem (got, sizeof got, buf, sizeof buf);
    g_assert_true (vr_disk_pread (disk, got, sizeof got, 8 * MIB + 1000 - sizeof got, &error));
    g_assert_cmpmem (got, sizeof got, zero, sizeof zero);
  }
  g_assert_false (vr_disk_resize (disk, MIB, false, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_cmpuint (file_size (raw), ==, 8 * MIB + 1000);
  g_assert_true (vr_disk_resize (disk, MIB, true, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (file_size (raw), ==, MIB);
  g_assert_false (vr_disk_pread (disk, buf, 512, MIB, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_OUT_OF_RANGE);
  g_clear_error (&error);
  vr_disk_close (disk);

  if (qemu_img != NULL)
    {
      g_autofree char *vmdk = g_build_filename (dir, "v.vmdk", NULL);

      g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "vmdk", vmdk, "1M"), ==, 0);
      disk = vr_disk_open (vmdk, VR_DISK_FORMAT_VMDK, VR_DISK_OPEN_READONLY, &error);
      g_assert_no_error (error);
      g_clear_pointer (&list, g_ptr_array_unref);
      list = vr_disk_snapshot_list (disk, &error);
      g_assert_cmpuint (list->len, ==, 0);
      g_assert_false (vr_disk_snapshot_create (disk, NULL, "x", 0, &error));
      g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
      g_clear_error (&error);
      g_assert_false (vr_disk_resize (disk, 2 * MIB, false, &error));
      g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
      g_clear_error (&error);
      vr_disk_close (disk);
    }
  dt_rmdir (dir);
}

/* Hostile snapshot tables: errors, never a crash, and a failed operation changes nothing. */
static void
expect_corrupt_table (const char *base, const char *path, uint64_t off, unsigned bytes,
                      uint64_t value, const char *what)
{
  g_autoptr (GError) error = NULL;
  VrDisk *disk;
  VrDiskCheckResult r;

  copy_file (base, path);
  write_be (path, off, bytes, value);
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_null (disk);
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  if (what != NULL && strstr (error->message, what) == NULL)
    g_error ("“%s” does not mention “%s”", error->message, what);
  g_clear_error (&error);
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_null (disk);
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_clear_error (&error);
  /* Info and check open it and report the table. */
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2,
                       VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY, &error);
  g_assert_no_error (error);
  g_assert_null (vr_disk_snapshot_list (disk, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_clear_error (&error);
  vr_disk_close (disk);
  g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_cmpuint (r.corruptions, >, 0);
  vr_disk_check_result_clear (&r);
  g_assert_false (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_LEAKS, &r, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  vr_disk_check_result_clear (&r);
}

static void
check_counts (const char *path, uint64_t *corruptions, uint64_t *leaks)
{
  g_autoptr (GError) error = NULL;
  VrDiskCheckResult r;

  g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_no_error (error);
  *corruptions = r.corruptions;
  *leaks = r.leaks;
  vr_disk_check_result_clear (&r);
}

static void
expect_failed_operation (const char *base, const char *path, uint64_t off, unsigned bytes,
                         uint64_t value, const uint8_t *model, uint64_t size)
{
  g_autoptr (GError) error = NULL;
  uint8_t header[112], header_after[112];
  uint64_t corruptions, leaks, corruptions_after, leaks_after, end;
  VrDisk *disk;
  int fd;

  copy_file (base, path);
  write_be (path, off, bytes, value);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (pread (fd, header, sizeof header, 0), ==, sizeof header);
  close (fd);
  end = file_size (path);
  check_counts (path, &corruptions, &leaks);
  disk = open_qcow2 (path, 0);
  g_assert_false (vr_disk_snapshot_apply (disk, "s", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_test_message ("apply: %s", error->message);
  g_clear_error (&error);
  g_assert_false (vr_disk_snapshot_delete (disk, "s", &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_test_message ("delete: %s", error->message);
  g_clear_error (&error);
  assert_disk_equals (disk, model, size);
  vr_disk_close (disk);
  /* Nothing the image uses changed (a failed transaction only wrote to free clusters, and
   * what it appended is cut off again). */
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (pread (fd, header_after, sizeof header_after, 0), ==, sizeof header_after);
  close (fd);
  g_assert_cmpmem (header, sizeof header, header_after, sizeof header_after);
  g_assert_cmpuint (file_size (path), ==, end);
  check_counts (path, &corruptions_after, &leaks_after);
  g_assert_cmpuint (corruptions_after, ==, corruptions);
  g_assert_cmpuint (leaks_after, ==, leaks);
}

static void
test_hostile (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *base = make_image (dir, "base.qcow2", NULL, 8 * MIB);
  g_autofree char *path = g_build_filename (dir, "bad.qcow2", NULL);
  g_autofree uint8_t *model = g_malloc0 (8 * MIB);
  uint64_t so, sl1, l1;
  VrDisk *disk;

  disk = open_qcow2 (base, 0);
  random_io (disk, model, 8 * MIB, 20, 40);
  snap_create (disk, NULL, "s");
  random_io (disk, model, 8 * MIB, 20, 41);
  vr_disk_close (disk);
  assert_vireo_check_clean (base);
  so = read_be (base, 64, 8);
  l1 = read_be (base, 40, 8);
  sl1 = read_be (base, so, 8);

  /* The header's fields. */
  expect_corrupt_table (base, path, 60, 4, 0x7fffffff, "entries");
  expect_corrupt_table (base, path, 60, 4, 65536, NULL);       /* runs past the end */
  expect_corrupt_table (base, path, 64, 8, so + 8, "offset");
  expect_corrupt_table (base, path, 64, 8, UINT64_C (1) << 40, "offset");
  expect_corrupt_table (base, path, 64, 8, 0, "offset");
  /* An entry's fields. */
  expect_corrupt_table (base, path, so + 36, 4, 5000, "extra data");
  expect_corrupt_table (base, path, so + 36, 4, 0xffffffff, "extra data");
  expect_corrupt_table (base, path, so + 8, 4, 0x10000000, "entries");   /* L1 size */
  expect_corrupt_table (base, path, so + 8, 4, 0xffffffff, "entries");
  expect_corrupt_table (base, path, so, 8, UINT64_C (1) << 45, "outside the file");
  expect_corrupt_table (base, path, so, 8, sl1 + 4096, "aligned");
  expect_corrupt_table (base, path, so, 8, 0, NULL);
  /* Id and name running past the end of the file: the table moved to the last cluster. */
  {
    g_autofree char *moved = g_build_filename (dir, "moved.qcow2", NULL);
    uint64_t last = file_size (base) - 65536;
    uint8_t entry[64];
    int fd;

    copy_file (base, moved);
    fd = open (moved, O_RDWR | O_CLOEXEC);
    g_assert_cmpint (pread (fd, entry, sizeof entry, (off_t) so), ==, sizeof entry);
    g_assert_cmpint (pwrite (fd, entry, sizeof entry, (off_t) last), ==, sizeof entry);
    close (fd);
    write_be (moved, 64, 8, last);
    expect_corrupt_table (moved, path, last + 12, 4, 0xffffffff, "past the end");
  }
  expect_corrupt_table (base, path, so + 40 + 8, 8, UINT64_MAX, "disk size");

  /* Valid table, bad tables below it: apply and delete fail and change nothing. */
  expect_failed_operation (base, path, sl1, 8, UINT64_C (1) << 44, model, 8 * MIB);
  expect_failed_operation (base, path, sl1, 8, l1, model, 8 * MIB);  /* L2 = the active L1 */
  expect_failed_operation (base, path, so, 8, l1, model, 8 * MIB);   /* L1 = the active L1 */
  dt_rmdir (dir);
}

/* Crash safety: a process creating, applying and deleting snapshots while another thread
 * writes is SIGKILLed at random points. */
#define CK_SIZE   (16 * MIB)
#define CK_HALF   (8 * MIB)
#define CK_BLOCK  4096
#define CK_WRITES 8

static void
ck_round (uint8_t *model, VrDisk *disk, uint32_t round)
{
  uint8_t buf[CK_BLOCK];

  for (uint32_t k = 0; k < CK_WRITES; k++)
    {
      uint32_t i = round * CK_WRITES + k;
      uint64_t off = (uint64_t) i * 7919 % (CK_HALF / CK_BLOCK) * CK_BLOCK;

      dt_pattern (buf, sizeof buf, off, i);
      if (model != NULL)
        memcpy (model + off, buf, sizeof buf);
      if (disk != NULL && !vr_disk_pwrite (disk, buf, sizeof buf, off, NULL))
        _exit (3);
    }
}

static gpointer
ck_noise (gpointer data)
{
  VrDisk *disk = data;
  g_autoptr (GRand) rand = g_rand_new ();
  static uint8_t buf[65536];

  for (unsigned n = 0;; n++)
    {
      uint64_t off = CK_HALF + (uint64_t) g_rand_int_range (rand, 0, (CK_SIZE - CK_HALF) / 512)
                                 * 512;
      uint64_t len = (uint64_t) g_rand_int_range (rand, 512, sizeof buf);

      g_autoptr (GError) error = NULL;

      len = MIN (len, CK_SIZE - off);
      buf[n % sizeof buf] = (uint8_t) n;
      if (!vr_disk_pwrite (disk, buf, len, off, &error)
          || (n % 16 == 0 && !vr_disk_flush (disk, &error)))
        {
          g_printerr ("noise: %s\n", error->message);
          _exit (5);
        }
    }
  return NULL;
}

static void
ck_child (const char *img, int fd)
{
  g_autoptr (GError) error = NULL;
  VrDisk *disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);

  if (disk == NULL)
    _exit (2);
  g_thread_unref (g_thread_new ("noise", ck_noise, disk));
  if (write (fd, "R", 1) != 1)
    _exit (2);
  for (uint32_t round = 0;; round++)
    {
      char name[32];

      ck_round (NULL, disk, round);
      g_snprintf (name, sizeof name, "s%u", round);
      if (!vr_disk_snapshot_create (disk, NULL, name, round, &error))
        {
          g_printerr ("create: %s\n", error->message);
          _exit (7);
        }
      if (write (fd, &round, sizeof round) != sizeof round)
        _exit (8);
      /* Applying the snapshot just made changes nothing in the first half. */
      if (round % 3 == 1 && !vr_disk_snapshot_apply (disk, name, &error))
        {
          g_printerr ("apply: %s\n", error->message);
          _exit (9);
        }
      if (round >= 4)
        {
          g_snprintf (name, sizeof name, "s%u", round - 4);
          if (!vr_disk_snapshot_delete (disk, name, &error))
            {
              g_printerr ("delete: %s\n", error->message);
              _exit (10);
            }
        }
    }
}

static void
ck_verify_snapshot (const char *img, VrDisk *disk, uint32_t round)
{
  g_autofree uint8_t *model = g_malloc0 (CK_HALF);
  char name[32];

  for (uint32_t r = 0; r <= round; r++)
    ck_round (model, NULL, r);
  g_snprintf (name, sizeof name, "s%u", round);
  snap_apply (disk, name);
  assert_range_equals (disk, model, 0, CK_HALF);
}

/* No corruption (leaks from the writes in flight are acceptable): Vireo's check, and
 * qemu-img's when it is there. */
static void
ck_check (const char *img, unsigned trial, int32_t last)
{
  g_autoptr (GError) error = NULL;
  VrDiskCheckResult r;

  g_assert_true (vr_disk_check (img, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_no_error (error);
  if (r.corruptions != 0)
    {
      for (guint i = 0; i < r.messages->len; i++)
        g_test_message ("%s", (char *) r.messages->pdata[i]);
      g_error ("trial %u (after snapshot %d): %" G_GUINT64_FORMAT " corruptions", trial, last,
               r.corruptions);
    }
  vr_disk_check_result_clear (&r);
  if (qemu_img != NULL)
    {
      g_autofree char *out = NULL;
      int rc = qemu_check (img, &out);

      if ((rc != 0 && rc != 3) || strstr (out, "ERROR") != NULL)
        g_error ("trial %u (after snapshot %d): qemu-img check exit %d\n%s", trial, last, rc,
                 out);
    }
}

static void
test_crash (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (77);
  unsigned trials = 40, total_rounds = 0;

  for (unsigned trial = 0; trial < trials; trial++)
    {
      bool small = trial % 2 == 1 && qemu_img != NULL;
      g_autofree char *img = NULL;
      g_autoptr (GPtrArray) list = NULL;
      int pipefd[2], status;
      int64_t deadline;
      int32_t last = -1;
      uint32_t v;
      char c;
      pid_t pid;
      VrDisk *disk;

      img = make_image (dir, small ? "crash4k.qcow2" : "crash.qcow2",
                        small ? "cluster_size=4096" : NULL, CK_SIZE);
      g_assert_cmpint (pipe2 (pipefd, O_CLOEXEC), ==, 0);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          close (pipefd[0]);
          ck_child (img, pipefd[1]);
          _exit (0);
        }
      close (pipefd[1]);
      g_assert_cmpint (read (pipefd[0], &c, 1), ==, 1);
      deadline = g_get_monotonic_time () + g_rand_int_range (rand, 2000, 250000);
      for (;;)
        {
          struct pollfd p = { pipefd[0], POLLIN, 0 };
          int64_t left = deadline - g_get_monotonic_time ();

          if (left <= 0 || poll (&p, 1, (int) (left / 1000)) <= 0)
            break;
          if (read (pipefd[0], &v, sizeof v) != sizeof v)
            break;
          last = (int32_t) v;
        }
      kill (pid, SIGKILL);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      if (!WIFSIGNALED (status))
        g_error ("the child exited with %d", WEXITSTATUS (status));
      while (read (pipefd[0], &v, sizeof v) == sizeof v)
        last = (int32_t) v;
      close (pipefd[0]);
      total_rounds += (unsigned) (last + 1);

      ck_check (img, trial, last);

      /* The snapshots reported done are there (the last four), and apply correctly; so does
       * one created but not yet reported. */
      disk = open_qcow2 (img, 0);
      list = snap_list (disk);
      for (int32_t r = MAX (last - 3, 0); r <= last; r++)
        {
          char name[32];

          g_snprintf (name, sizeof name, "s%d", r);
          if (find_snap (list, name) == NULL)
            g_error ("trial %u: snapshot %s is missing", trial, name);
        }
      for (guint i = 0; i < list->len; i++)
        {
          const VrDiskSnapshot *sn = list->pdata[i];
          uint32_t r = (uint32_t) g_ascii_strtoull (sn->name + 1, NULL, 10);

          g_assert_cmpint ((int32_t) r, >=, last - 4);
          g_assert_cmpint ((int32_t) r, <=, last + 1);
          ck_verify_snapshot (img, disk, r);
        }
      vr_disk_close (disk);
      ck_check (img, trial, last);
      /* qemu-img applies the newest one to the same data. */
      if (qemu_img != NULL && last >= 0 && trial % 4 == 0)
        {
          g_autofree char *name = g_strdup_printf ("s%d", last);
          g_autofree char *raw = g_build_filename (dir, "conv.raw", NULL);
          g_autofree uint8_t *model = g_malloc0 (CK_HALF);
          g_autofree char *data = NULL;
          gsize len;

          g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", name, img), ==, 0);
          g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-O", "raw", img, raw), ==, 0);
          g_assert_true (g_file_get_contents (raw, &data, &len, NULL));
          for (int32_t r = 0; r <= last; r++)
            ck_round (model, NULL, (uint32_t) r);
          g_assert_cmpmem (data, CK_HALF, model, CK_HALF);
          g_unlink (raw);
        }
      g_unlink (img);
    }
  g_test_message ("%u trials, %u snapshots created before the kills", trials, total_rounds);
  g_assert_cmpuint (total_rounds, >, trials);
  dt_rmdir (dir);
}

/* Snapshot operations while other threads do I/O on the same disk. */
typedef struct
{
  VrDisk       *disk;
  uint64_t      base;
  gint         *stop;
} IoThread;

static gpointer
io_thread (gpointer data)
{
  IoThread *t = data;
  g_autoptr (GRand) rand = g_rand_new_with_seed ((guint32) t->base);
  uint8_t buf[16384];

  while (!g_atomic_int_get (t->stop))
    {
      g_autoptr (GError) error = NULL;
      uint64_t off = t->base + (uint64_t) g_rand_int_range (rand, 0, 4 * MIB / 512) * 512;
      size_t len = (size_t) g_rand_int_range (rand, 1, sizeof buf / 512) * 512;

      len = MIN (len, t->base + 4 * MIB - off);
      if (g_rand_boolean (rand))
        {
          memset (buf, g_rand_int (rand), len);
          g_assert_true (vr_disk_pwrite (t->disk, buf, len, off, &error));
        }
      else
        g_assert_true (vr_disk_pread (t->disk, buf, len, off, &error));
      g_assert_no_error (error);
    }
  return NULL;
}

static void
test_concurrent (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *img = make_image (dir, "conc.qcow2", NULL, 16 * MIB);
  VrDisk *disk = open_qcow2 (img, 0);
  gint stop = 0;
  IoThread t[4];
  GThread *threads[4];

  for (int i = 0; i < 4; i++)
    {
      t[i] = (IoThread) { disk, (uint64_t) i * 4 * MIB, &stop };
      threads[i] = g_thread_new ("io", io_thread, &t[i]);
    }
  for (int i = 0; i < 30; i++)
    {
      g_autofree char *name = g_strdup_printf ("c%d", i);

      snap_create (disk, NULL, name);
      if (i % 3 == 2)
        {
          g_autofree char *prev = g_strdup_printf ("c%d", i - 1);

          snap_apply (disk, prev);
          snap_delete (disk, prev);
        }
      if (i == 15)
        {
          g_autoptr (GError) error = NULL;

          g_assert_true (vr_disk_resize (disk, 16 * MIB + 64 * 1024, false, &error));
          g_assert_no_error (error);
        }
    }
  g_atomic_int_set (&stop, 1);
  for (int i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (vr_disk_get_size (disk), ==, 16 * MIB + 64 * 1024);
  vr_disk_close (disk);
  assert_clean (img);
  dt_rmdir (dir);
}

/* qemu-io's verdict on a constant pattern. */
static void
assert_qemu_io_pattern (const char *img, uint64_t off, uint64_t len, uint8_t v)
{
  g_autofree char *io = g_find_program_in_path ("qemu-io");
  g_autofree char *cmd = g_strdup_printf ("read -P 0x%02x %" G_GUINT64_FORMAT " %"
                                          G_GUINT64_FORMAT, v, off, len);
  g_autofree char *out = NULL;

  if (io == NULL)
    return;
  g_assert_cmpint (DT_RUN (&out, io, "-r", "-f", "qcow2", "-c", cmd, img), ==, 0);
  if (strstr (out, "read ") == NULL || strstr (out, "Pattern verification failed") != NULL)
    g_error ("qemu-io %s: %s", cmd, out);
}

static void
put_pattern (VrDisk *disk, uint64_t off, uint64_t len, uint8_t v)
{
  g_autofree uint8_t *buf = g_malloc (len);
  g_autoptr (GError) error = NULL;

  memset (buf, v, len);
  g_assert_true (vr_disk_pwrite (disk, buf, len, off, &error));
  g_assert_no_error (error);
}

static void
get_pattern (VrDisk *disk, uint64_t off, uint64_t len, uint8_t v)
{
  g_autofree uint8_t *buf = g_malloc (len);
  g_autofree uint8_t *expect = g_malloc (len);
  g_autoptr (GError) error = NULL;

  memset (expect, v, len);
  g_assert_true (vr_disk_pread (disk, buf, len, off, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (buf, len, expect, len);
}

static char *
qemu_info (const char *img)
{
  char *out = NULL;

  g_assert_cmpint (DT_RUN (&out, qemu_img, "info", img), ==, 0);
  return out;
}

/* 1 GiB → 3 GiB with 512-byte clusters: the L1 table grows from 256 KiB to 768 KiB. */
static void
test_resize_qcow2 (void)
{
  g_autofree char *dir = NULL, *img = NULL, *out = NULL;
  g_autoptr (GError) error = NULL;
  uint64_t l1_before;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = make_image (dir, "grow.qcow2", "cluster_size=512", GIB);
  l1_before = read_be (img, 40, 8);
  g_assert_cmpuint (read_be (img, 36, 4), ==, 32768);
  disk = open_qcow2 (img, 0);
  put_pattern (disk, 0, MIB, 0x41);
  put_pattern (disk, GIB - 65536, 65536, 0x42);
  snap_create (disk, NULL, "small");
  put_pattern (disk, 0, 4096, 0x43);

  /* Refused: shrinking, odd sizes. */
  g_assert_false (vr_disk_resize (disk, GIB - 512, false, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_resize (disk, GIB - 512, true, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_resize (disk, 2 * GIB + 100, false, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_true (vr_disk_resize (disk, 3 * GIB, false, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (vr_disk_get_size (disk), ==, 3 * GIB);
  get_pattern (disk, 4096, MIB - 4096, 0x41);
  get_pattern (disk, 0, 4096, 0x43);
  get_pattern (disk, GIB - 65536, 65536, 0x42);
  get_pattern (disk, GIB, 65536, 0);
  put_pattern (disk, 2 * GIB + GIB / 2, 100000, 0x44);
  put_pattern (disk, 3 * GIB - 512, 512, 0x45);
  get_pattern (disk, 2 * GIB + GIB / 2, 100000, 0x44);
  vr_disk_close (disk);
  g_assert_cmpuint (read_be (img, 36, 4), ==, 98304);
  g_assert_cmpuint (read_be (img, 40, 8), !=, l1_before);
  out = qemu_info (img);
  g_assert_nonnull (strstr (out, "virtual size: 3 GiB (3221225472 bytes)"));
  g_clear_pointer (&out, g_free);
  assert_clean (img);
  assert_qemu_io_pattern (img, 2 * GIB + GIB / 2, 100000, 0x44);
  assert_qemu_io_pattern (img, 3 * GIB - 512, 512, 0x45);
  assert_qemu_io_pattern (img, GIB - 65536, 65536, 0x42);

  /* The snapshot remembers 1 GiB: applying it (Vireo) shrinks the disk back. */
  disk = open_qcow2 (img, 0);
  snap_create (disk, NULL, "big");
  snap_apply (disk, "small");
  g_assert_cmpuint (vr_disk_get_size (disk), ==, GIB);
  get_pattern (disk, 0, MIB, 0x41);
  vr_disk_close (disk);
  out = qemu_info (img);
  g_assert_nonnull (strstr (out, "virtual size: 1 GiB (1073741824 bytes)"));
  g_clear_pointer (&out, g_free);
  assert_clean (img);
  /* And qemu-img reads the 3 GiB of the other one. */
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-a", "big", img), ==, 0);
  out = qemu_info (img);
  g_assert_nonnull (strstr (out, "virtual size: 3 GiB (3221225472 bytes)"));
  g_clear_pointer (&out, g_free);
  assert_qemu_io_pattern (img, 3 * GIB - 512, 512, 0x45);
  assert_qemu_check_clean (img);
  disk = open_qcow2 (img, 0);
  g_assert_cmpuint (vr_disk_get_size (disk), ==, 3 * GIB);
  snap_apply (disk, "small");
  snap_apply (disk, "big");
  get_pattern (disk, 3 * GIB - 512, 512, 0x45);
  vr_disk_close (disk);
  assert_clean (img);
  dt_rmdir (dir);
}

static void
test_resize_small (void)
{
  g_autofree char *dir = NULL, *img = NULL, *base = NULL, *top = NULL, *out = NULL;
  g_autoptr (GError) error = NULL;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();

  /* Within the L1 table: only the size changes. */
  img = make_image (dir, "in-l1.qcow2", NULL, 16 * MIB);
  disk = open_qcow2 (img, 0);
  put_pattern (disk, 16 * MIB - 4096, 4096, 0x51);
  g_assert_true (vr_disk_resize (disk, 100 * MIB, false, &error));
  g_assert_no_error (error);
  get_pattern (disk, 16 * MIB, MIB, 0);
  vr_disk_close (disk);
  out = qemu_info (img);
  g_assert_nonnull (strstr (out, "virtual size: 100 MiB"));
  g_clear_pointer (&out, g_free);
  assert_clean (img);

  /* v2 with snapshots: refused, as QEMU does. */
  g_free (img);
  img = make_image (dir, "v2.qcow2", "compat=0.10", 16 * MIB);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "snapshot", "-c", "s", img), ==, 0);
  disk = open_qcow2 (img, 0);
  g_assert_false (vr_disk_resize (disk, 32 * MIB, false, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  vr_disk_close (disk);

  /* A shorter overlay (not a whole number of clusters): growing it shows zeroes, not the
   * backing file's data, nor what its last cluster held past the old end. */
  base = g_build_filename (dir, "base.qcow2", NULL);
  top = g_build_filename (dir, "top.qcow2", NULL);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", base, "8M"), ==, 0);
  disk = open_qcow2 (base, 0);
  put_pattern (disk, 0, 8 * MIB, 0x61);
  vr_disk_close (disk);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
                           "-F", "qcow2", top, "3141632"), ==, 0);  /* 3 MiB - 4 KiB */
  disk = open_qcow2 (top, 0);
  put_pattern (disk, 3 * MIB - 4096 - 512, 512, 0x62);
  g_assert_true (vr_disk_resize (disk, 10 * MIB, false, &error));
  g_assert_no_error (error);
  get_pattern (disk, 0, 3 * MIB - 4096 - 512, 0x61);
  get_pattern (disk, 3 * MIB - 4096 - 512, 512, 0x62);
  get_pattern (disk, 3 * MIB - 4096, 7 * MIB + 4096, 0);
  vr_disk_close (disk);
  assert_clean (top);
  assert_qemu_io_pattern (top, 3 * MIB - 4096, 7 * MIB + 4096, 0);
  assert_qemu_io_pattern (top, MIB, MIB, 0x61);
  dt_rmdir (dir);
}

/* vireo-img snapshot and resize. */
static void
test_cli (void)
{
  const char *vireo_img = g_getenv ("VIREO_IMG");
  g_autofree char *dir = NULL, *img = NULL, *raw = NULL, *out = NULL, *err = NULL;
  g_autofree uint8_t *model = g_malloc0 (4 * MIB);

  if (!need_qemu ())
    return;
  if (vireo_img == NULL)
    {
      g_test_skip ("VIREO_IMG not set");
      return;
    }
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "cli.qcow2", NULL);
  raw = g_build_filename (dir, "cli.raw", NULL);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "create", "-f", "qcow2", img, "4M"), ==, 0);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "snapshot", "-l", img), ==, 0);
  g_assert_cmpstr (out, ==, "");
  g_clear_pointer (&out, g_free);
  qemu_io_write (img, model, 0, MIB, 0x71);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-c", "before", img), ==, 0);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-f", "qcow2", "-c", "other", img), ==,
                   0);
  g_assert_cmpint (dt_run (&out, &err, (const char *const[]) { vireo_img, "snapshot", "-c",
                                                                "before", img, NULL }), ==, 1);
  g_assert_nonnull (strstr (err, "Could not create snapshot 'before'"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  qemu_io_write (img, model + 0, 0, MIB, 0x72);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "snapshot", "-l", img), ==, 0);
  g_assert_true (g_regex_match_simple ("^1 +before +0 B ", out, G_REGEX_MULTILINE, 0));
  g_assert_true (g_regex_match_simple ("^2 +other +0 B ", out, G_REGEX_MULTILINE, 0));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "info", img), ==, 0);
  g_assert_nonnull (strstr (out, "Snapshot list:"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-a", "1", img), ==, 0);
  memset (model, 0x71, MIB);
  assert_qemu_equals (img, model, 4 * MIB);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-d", "before", img), ==, 0);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-a", "before", img), ==, 1);
  g_assert_cmpint (DT_RUN (&out, qemu_img, "snapshot", "-l", img), ==, 0);
  g_assert_null (strstr (out, "before"));
  g_assert_nonnull (strstr (out, "other"));
  g_clear_pointer (&out, g_free);
  assert_qemu_check_clean (img);

  /* resize */
  g_assert_cmpint (DT_RUN (&out, vireo_img, "resize", img, "+1G"), ==, 0);
  g_assert_cmpstr (out, ==, "Image resized.\n");
  g_clear_pointer (&out, g_free);
  out = qemu_info (img);
  g_assert_nonnull (strstr (out, "(1077936128 bytes)"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (dt_run (&out, &err, (const char *const[]) { vireo_img, "resize", img, "-1M",
                                                                NULL }), ==, 1);
  g_assert_nonnull (strstr (err, "--shrink"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "resize", "--shrink", img, "-1M"), ==, 1);
  assert_qemu_check_clean (img);

  g_assert_cmpint (DT_RUN (NULL, vireo_img, "create", "-f", "raw", raw, "4M"), ==, 0);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "resize", "-f", "raw", "-q", raw, "8M"), ==, 0);
  g_assert_cmpuint (file_size (raw), ==, 8 * MIB);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "resize", raw, "-6M"), ==, 1);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "resize", "-q", "--shrink", raw, "-6M"), ==, 0);
  g_assert_cmpuint (file_size (raw), ==, 2 * MIB);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "snapshot", "-c", "x", raw), ==, 1);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "snapshot", "-l", raw), ==, 0);
  g_assert_cmpstr (out, ==, "");
  dt_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  qemu_img = dt_qemu_img ();

  g_test_add_func ("/disk/snapshot/create-list", test_create_list);
  g_test_add_func ("/disk/snapshot/revert", test_revert_vireo);
  g_test_add_func ("/disk/snapshot/revert-4k", test_revert_4k);
  g_test_add_func ("/disk/snapshot/revert-v2-512", test_revert_v2_512);
  g_test_add_func ("/disk/snapshot/revert-refcount8", test_revert_refcount8);
  g_test_add_func ("/disk/snapshot/refcount1", test_refcount1);
  g_test_add_func ("/disk/snapshot/delete", test_delete);
  g_test_add_func ("/disk/snapshot/interop-v3", test_interop_v3);
  g_test_add_func ("/disk/snapshot/interop-v2", test_interop_v2);
  g_test_add_func ("/disk/snapshot/extra-data", test_extra_data);
  g_test_add_func ("/disk/snapshot/unsupported", test_unsupported);
  g_test_add_func ("/disk/snapshot/hostile", test_hostile);
  g_test_add_func ("/disk/snapshot/concurrent", test_concurrent);
  g_test_add_func ("/disk/snapshot/crash", test_crash);
  g_test_add_func ("/disk/resize/qcow2", test_resize_qcow2);
  g_test_add_func ("/disk/resize/small", test_resize_small);
  g_test_add_func ("/disk/resize/cli", test_cli);
  return g_test_run ();
}
