/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The disk layer against qemu-img: images made by qemu-img (qcow2 v2/v3, refcount widths,
 * small clusters, backing chains, compressed clusters, VMDK subformats) and by
 * vr_disk_create, written through the disk API, then `qemu-img check` must be clean and
 * `qemu-img compare` must match the expected raw contents. Also vireo-img, and a writer
 * killed with SIGKILL in the middle of allocating. Skipped when qemu-img is missing.
 */

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk-test-util.h"

#define MIB (UINT64_C (1) << 20)

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
assert_qemu_check_clean (const char *path)
{
  g_autofree char *out = NULL;
  int rc = DT_RUN (&out, qemu_img, "check", "-f", "qcow2", path);

  if (rc != 0)
    g_error ("qemu-img check %s: exit %d\n%s", path, rc, out);
}

static void
assert_qemu_compare (const char *img, const char *fmt, const char *raw)
{
  g_autofree char *out = NULL;
  int rc = DT_RUN (&out, qemu_img, "compare", "-f", fmt, "-F", "raw", img, raw);

  if (rc != 0)
    g_error ("qemu-img compare %s %s: exit %d\n%s", img, raw, rc, out);
}

static void
assert_disk_equals (VrDisk *disk, const uint8_t *expect, uint64_t len)
{
  g_autofree uint8_t *buf = g_malloc (len);
  g_autoptr (GError) error = NULL;

  g_assert_cmpuint (vr_disk_get_size (disk), ==, len);
  g_assert_true (vr_disk_pread (disk, buf, len, 0, &error));
  g_assert_no_error (error);
  if (memcmp (buf, expect, len) != 0)
    for (uint64_t i = 0; i < len; i++)
      if (buf[i] != expect[i])
        g_error ("mismatch at %" G_GUINT64_FORMAT ": %02x != %02x", i, buf[i], expect[i]);
}

/* Random writes (unaligned too), zeroes and discards through the API, mirrored in model. */
static void
random_writes (VrDisk *disk, uint8_t *model, uint64_t size, uint64_t cluster, unsigned rounds,
               uint32_t seed, bool discard_zeroes)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  for (unsigned r = 0; r < rounds; r++)
    {
      g_autoptr (GError) error = NULL;
      uint64_t off = (uint64_t) g_rand_double_range (rand, 0, (double) size);
      uint64_t len = (uint64_t) g_rand_int_range (rand, 1, (gint32) MIN (8 * cluster, 300000));
      int op = g_rand_int_range (rand, 0, 12);

      if (g_rand_int_range (rand, 0, 4) > 0)
        off &= ~UINT64_C (511), len = (len + 511) & ~UINT64_C (511);
      len = MIN (len, size - off);
      if (len == 0)
        continue;
      if (op < 9)
        {
          g_autofree uint8_t *buf = g_malloc (len);

          dt_pattern (buf, len, off, seed + r);
          g_assert_true (vr_disk_pwrite (disk, buf, len, off, &error));
          g_assert_no_error (error);
          memcpy (model + off, buf, len);
        }
      else if (op < 11)
        {
          g_assert_true (vr_disk_write_zeroes (disk, off, len, op == 10, &error));
          g_assert_no_error (error);
          memset (model + off, 0, len);
        }
      else if (discard_zeroes)
        {
          uint64_t s = (off + cluster - 1) / cluster * cluster;
          uint64_t e = MIN ((off + len) / cluster * cluster, size);

          if (e > s)
            {
              g_assert_true (vr_disk_discard (disk, s, e - s, &error));
              g_assert_no_error (error);
              memset (model + s, 0, e - s);
            }
        }
      if (r % 50 == 49)
        {
          g_assert_true (vr_disk_flush (disk, &error));
          g_assert_no_error (error);
        }
    }
}

static void
qemu_created (const char *const *opts, uint64_t size, unsigned rounds)
{
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL;
  g_autofree char *raw = NULL;
  g_autofree char *size_s = g_strdup_printf ("%" G_GUINT64_FORMAT, size);
  g_autofree uint8_t *model = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  uint64_t cluster = 65536;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "img.qcow2", NULL);
  raw = g_build_filename (dir, "expect.raw", NULL);
  g_ptr_array_add (argv, qemu_img);
  g_ptr_array_add (argv, (char *) "create");
  g_ptr_array_add (argv, (char *) "-q");
  g_ptr_array_add (argv, (char *) "-f");
  g_ptr_array_add (argv, (char *) "qcow2");
  for (const char *const *o = opts; *o; o++)
    {
      g_ptr_array_add (argv, (char *) "-o");
      g_ptr_array_add (argv, (char *) *o);
      if (g_str_has_prefix (*o, "cluster_size="))
        cluster = g_ascii_strtoull (*o + 13, NULL, 10);
    }
  g_ptr_array_add (argv, img);
  g_ptr_array_add (argv, size_s);
  g_ptr_array_add (argv, NULL);
  g_assert_cmpint (dt_run (NULL, NULL, (const char *const *) argv->pdata), ==, 0);

  model = g_malloc0 (size);
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  if (cluster <= 4096)
    {
      /* Fill the disk first: many refcount blocks, and a grown refcount table. */
      for (uint64_t off = 0; off < size; off += 65536)
        {
          uint64_t n = MIN (65536, size - off);

          dt_pattern (model + off, n, off, 3);
          g_assert_true (vr_disk_pwrite (disk, model + off, n, off, &error));
          g_assert_no_error (error);
        }
    }
  random_writes (disk, model, size, cluster, rounds, 7, true);
  assert_disk_equals (disk, model, size);
  vr_disk_close (disk);

  write_file (raw, model, size);
  assert_qemu_check_clean (img);
  assert_qemu_compare (img, "qcow2", raw);
  dt_rmdir (dir);
}

static void
test_qemu_v3 (void)
{
  qemu_created ((const char *const[]) { "compat=1.1", NULL }, 48 * MIB, 300);
}

static void
test_qemu_v2 (void)
{
  qemu_created ((const char *const[]) { "compat=0.10", NULL }, 48 * MIB, 300);
}

static void
test_qemu_small_clusters (void)
{
  /* 512-byte clusters with 16-bit refcounts: a refcount block covers 128 KiB and the first
   * refcount table 8 MiB, so this crosses many refcount blocks and grows the table. */
  qemu_created ((const char *const[]) { "cluster_size=512", NULL }, 24 * MIB, 600);
}

static void
test_qemu_refcount_bits (gconstpointer data)
{
  g_autofree char *o = g_strdup_printf ("refcount_bits=%s", (const char *) data);

  qemu_created ((const char *const[]) { "cluster_size=4096", o, NULL }, 16 * MIB, 300);
}

static void
test_vireo_created (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL;
  g_autofree char *raw = NULL;
  g_autofree uint8_t *model = NULL;
  g_autoptr (GError) error = NULL;
  const uint64_t size = 40 * MIB + 512;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "img.qcow2", NULL);
  raw = g_build_filename (dir, "expect.raw", NULL);
  g_assert_true (vr_disk_create (img, VR_DISK_FORMAT_QCOW2, size, NULL, 0, &error));
  assert_qemu_check_clean (img);
  model = g_malloc0 (size);
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  random_writes (disk, model, size, 65536, 300, 11, true);
  vr_disk_close (disk);
  write_file (raw, model, size);
  assert_qemu_check_clean (img);
  assert_qemu_compare (img, "qcow2", raw);
  dt_rmdir (dir);
}

/* base (qcow2 from qemu-img convert) ← overlay (qemu-img create -b, or vr_disk_create). */
static void
backing_test (bool vireo_overlay, const char *base_compat)
{
  g_autofree char *dir = NULL;
  g_autofree char *base_raw = NULL, *base = NULL, *top = NULL, *raw = NULL;
  g_autofree uint8_t *model = NULL;
  g_autofree char *compat = g_strdup_printf ("compat=%s", base_compat);
  g_autoptr (GError) error = NULL;
  const uint64_t size = 16 * MIB;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  base_raw = g_build_filename (dir, "base.raw", NULL);
  base = g_build_filename (dir, "base.qcow2", NULL);
  top = g_build_filename (dir, "top.qcow2", NULL);
  raw = g_build_filename (dir, "expect.raw", NULL);
  model = g_malloc0 (size);
  for (uint64_t off = 0; off < size; off += 3 * 65536)
    dt_pattern (model + off, MIN (100000, size - off), off, 99);
  write_file (base_raw, model, size);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-q", "-f", "raw", "-O", "qcow2", "-o",
                           compat, base_raw, base), ==, 0);
  if (vireo_overlay)
    g_assert_true (vr_disk_create (top, VR_DISK_FORMAT_QCOW2, 0, "base.qcow2",
                                   VR_DISK_FORMAT_QCOW2, &error));
  else
    g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
                             "-F", "qcow2", top), ==, 0);
  g_assert_no_error (error);

  disk = vr_disk_open (top, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  assert_disk_equals (disk, model, size);
  /* Partial-cluster writes copy the rest of the cluster from the backing file. */
  random_writes (disk, model, size, 65536, 200, 5, false);
  assert_disk_equals (disk, model, size);
  vr_disk_close (disk);
  write_file (raw, model, size);
  assert_qemu_check_clean (top);
  assert_qemu_compare (top, "qcow2", raw);
  {
    g_autofree char *out = NULL;

    /* The backing file is untouched. */
    g_assert_cmpint (DT_RUN (&out, qemu_img, "compare", "-q", base_raw, base), ==, 0);
  }
  dt_rmdir (dir);
}

static void
test_backing_qemu (void)
{
  backing_test (false, "1.1");
}

static void
test_backing_vireo (void)
{
  backing_test (true, "1.1");
}

static void
test_backing_v2 (void)
{
  backing_test (false, "0.10");
}

static void
test_compressed (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *src = NULL, *img = NULL, *raw = NULL;
  g_autofree uint8_t *model = NULL;
  g_autoptr (GError) error = NULL;
  const uint64_t size = 8 * MIB;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  src = g_build_filename (dir, "src.raw", NULL);
  img = g_build_filename (dir, "c.qcow2", NULL);
  raw = g_build_filename (dir, "expect.raw", NULL);
  model = g_malloc0 (size);
  /* Compressible data: repeated text with variations; some random clusters. */
  for (uint64_t off = 0; off < size; off += 64)
    g_snprintf ((char *) model + off, 64, "block %" G_GUINT64_FORMAT " of the test pattern", off);
  dt_pattern (model + MIB, 200000, MIB, 3);
  memset (model + 3 * MIB, 0, MIB);
  write_file (src, model, size);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-q", "-c", "-f", "raw", "-O", "qcow2",
                           src, img), ==, 0);
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  assert_disk_equals (disk, model, size);
  vr_disk_close (disk);
  /* Overwriting parts of compressed clusters. */
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  random_writes (disk, model, size, 65536, 100, 9, true);
  assert_disk_equals (disk, model, size);
  vr_disk_close (disk);
  write_file (raw, model, size);
  assert_qemu_check_clean (img);
  assert_qemu_compare (img, "qcow2", raw);
  dt_rmdir (dir);
}

static void
test_vmdk (gconstpointer data)
{
  const char *subformat = data;
  g_autofree char *dir = NULL;
  g_autofree char *src = NULL, *img = NULL, *opt = NULL;
  g_autofree uint8_t *model = NULL;
  g_autoptr (GError) error = NULL;
  const uint64_t size = 5 * MIB + 65536;
  VrDiskFormat probed;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  src = g_build_filename (dir, "src.raw", NULL);
  img = g_build_filename (dir, "disk.vmdk", NULL);
  opt = g_strdup_printf ("subformat=%s", subformat);
  model = g_malloc0 (size);
  for (uint64_t off = 0; off < size; off += 5 * 65536)
    dt_pattern (model + off, MIN (150000, size - off), off, 17);
  write_file (src, model, size);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", opt,
                           src, img), ==, 0);
  g_assert_true (vr_disk_probe_format (img, &probed, &error));
  g_assert_cmpint (probed, ==, VR_DISK_FORMAT_VMDK);
  disk = vr_disk_open (img, VR_DISK_FORMAT_VMDK, 0, &error);
  g_assert_null (disk);
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  disk = vr_disk_open (img, VR_DISK_FORMAT_VMDK, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  assert_disk_equals (disk, model, size);
  {
    g_autoptr (VrDiskInfo) info = vr_disk_get_info (disk, &error);

    g_assert_cmpstr (info->vmdk_create_type, ==, subformat);
  }
  {
    uint8_t b = 0;

    g_assert_false (vr_disk_pwrite (disk, &b, 1, 0, &error));
    g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  }
  vr_disk_close (disk);
  dt_rmdir (dir);
}

static void
test_vireo_img (void)
{
  const char *vireo_img = g_getenv ("VIREO_IMG");
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL, *raw = NULL, *out_raw = NULL, *out_q = NULL, *src = NULL;
  g_autofree char *out = NULL;
  g_autofree uint8_t *model = NULL;
  g_autoptr (GError) error = NULL;
  const uint64_t size = 4 * MIB;
  struct stat st;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  if (vireo_img == NULL)
    {
      g_test_skip ("VIREO_IMG not set");
      return;
    }
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "a.qcow2", NULL);
  raw = g_build_filename (dir, "expect.raw", NULL);
  src = g_build_filename (dir, "src.vmdk", NULL);
  out_raw = g_build_filename (dir, "out.raw", NULL);
  out_q = g_build_filename (dir, "out.qcow2", NULL);

  g_assert_cmpint (DT_RUN (NULL, vireo_img, "create", "-f", "qcow2", img, "4M"), ==, 0);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "info", img), ==, 0);
  g_assert_nonnull (strstr (out, "file format: qcow2\n"));
  g_assert_nonnull (strstr (out, "virtual size: 4 MiB (4194304 bytes)\n"));
  g_assert_nonnull (strstr (out, "cluster_size: 65536\n"));
  g_assert_nonnull (strstr (out, "    compat: 1.1\n"));
  g_assert_nonnull (strstr (out, "    refcount bits: 16\n"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "info", "--output=json", img), ==, 0);
  g_assert_nonnull (strstr (out, "\"virtual-size\": 4194304"));
  g_clear_pointer (&out, g_free);

  model = g_malloc0 (size);
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  dt_pattern (model + 65536, 70000, 65536, 1);
  dt_pattern (model + 3 * MIB, 1000, 3 * MIB, 2);
  g_assert_true (vr_disk_pwrite (disk, model + 65536, 70000, 65536, &error));
  g_assert_true (vr_disk_pwrite (disk, model + 3 * MIB, 1000, 3 * MIB, &error));
  vr_disk_close (disk);
  write_file (raw, model, size);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "check", img), ==, 0);
  g_assert_nonnull (strstr (out, "No errors were found on the image."));
  g_clear_pointer (&out, g_free);

  /* convert qcow2 → raw: same contents, sparse. */
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "convert", "-O", "raw", img, out_raw), ==, 0);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "compare", "-q", "-f", "raw", "-F", "raw", out_raw,
                           raw), ==, 0);
  g_assert_cmpint (stat (out_raw, &st), ==, 0);
  g_assert_cmpuint ((uint64_t) st.st_size, ==, size);
  g_assert_cmpuint ((uint64_t) st.st_blocks * 512, <=, 512 * 1024);
  /* convert raw → qcow2, and VMDK → qcow2 (probed formats). */
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "convert", "-O", "qcow2", out_raw, out_q), ==, 0);
  assert_qemu_check_clean (out_q);
  assert_qemu_compare (out_q, "qcow2", raw);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-q", "-O", "vmdk", raw, src), ==, 0);
  g_unlink (out_q);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "convert", "-O", "qcow2", src, out_q), ==, 0);
  assert_qemu_compare (out_q, "qcow2", raw);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "info", src), ==, 0);
  g_assert_nonnull (strstr (out, "file format: vmdk\n"));
  g_clear_pointer (&out, g_free);

  /* Backing file via vireo-img, size taken from it. */
  {
    g_autofree char *top = g_build_filename (dir, "top.qcow2", NULL);

    g_assert_cmpint (DT_RUN (NULL, vireo_img, "create", "-f", "qcow2", "-b", "a.qcow2", "-F",
                             "qcow2", top), ==, 0);
    g_assert_cmpint (DT_RUN (&out, qemu_img, "info", top), ==, 0);
    g_assert_nonnull (strstr (out, "backing file format: qcow2"));
    g_assert_nonnull (strstr (out, "virtual size: 4 MiB"));
    g_clear_pointer (&out, g_free);
    assert_qemu_compare (top, "qcow2", raw);
  }

  /* Errors: exit status 1 and a message. */
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "create", "-f", "qcow2", img, "12Q"), ==, 1);
  g_assert_cmpint (DT_RUN (NULL, vireo_img, "info", "/nonexistent/x"), ==, 1);
  dt_rmdir (dir);
}

/* Crash safety: a writer SIGKILLed in the middle of allocating. */
#define CRASH_BLOCK 4096
#define CRASH_FLUSHED 300

static void
crash_child (const char *img, int fd)
{
  g_autoptr (GError) error = NULL;
  VrDisk *disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, 0, &error);
  uint8_t buf[CRASH_BLOCK];
  uint64_t nblocks;

  if (disk == NULL)
    _exit (2);
  nblocks = vr_disk_get_size (disk) / CRASH_BLOCK;
  for (uint64_t i = 0;; i++)
    {
      /* Scattered order so L2 tables and refcount blocks keep being allocated. */
      uint64_t b = (i * 7919) % nblocks;

      dt_pattern (buf, sizeof buf, b * CRASH_BLOCK, 1);
      if (!vr_disk_pwrite (disk, buf, sizeof buf, b * CRASH_BLOCK, NULL))
        _exit (3);
      if (i + 1 == CRASH_FLUSHED)
        {
          if (!vr_disk_flush (disk, NULL) || write (fd, "F", 1) != 1)
            _exit (4);
        }
      if (i + 1 >= nblocks)
        i = CRASH_FLUSHED;  /* keep rewriting: never reaches a second flush */
    }
}

static void
test_crash (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *img = NULL, *copy = NULL, *conv = NULL;
  g_autofree char *out = NULL;
  g_autofree uint8_t *converted = NULL;
  g_autoptr (GError) error = NULL;
  VrDiskCheckResult r;
  int pipefd[2], status;
  char c;
  pid_t pid;
  gsize len;
  VrDisk *disk;

  if (!need_qemu ())
    return;
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "crash.qcow2", NULL);
  copy = g_build_filename (dir, "copy.qcow2", NULL);
  conv = g_build_filename (dir, "conv.raw", NULL);
  /* Small clusters and 8-bit refcounts: allocations cross many refcount blocks. */
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", "-o",
                           "cluster_size=1024,refcount_bits=8", img, "64M"), ==, 0);
  g_assert_cmpint (pipe2 (pipefd, O_CLOEXEC), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (pipefd[0]);
      crash_child (img, pipefd[1]);
      _exit (0);
    }
  close (pipefd[1]);
  g_assert_cmpint (read (pipefd[0], &c, 1), ==, 1);
  g_usleep (150 * 1000);
  kill (pid, SIGKILL);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  close (pipefd[0]);

  /* Our own check finds leaks at most, and repairs them. */
  {
    g_autofree char *data = NULL;

    g_assert_true (g_file_get_contents (img, &data, &len, NULL));
    write_file (copy, (uint8_t *) data, len);
  }
  g_assert_true (vr_disk_check (copy, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_no_error (error);
  g_test_message ("after SIGKILL: %" G_GUINT64_FORMAT " leaks, %" G_GUINT64_FORMAT
                  " corruptions", r.leaks, r.corruptions);
  g_assert_cmpuint (r.corruptions, ==, 0);
  vr_disk_check_result_clear (&r);
  g_assert_true (vr_disk_check (copy, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_LEAKS, &r, &error));
  g_assert_cmpuint (r.corruptions + r.leaks, ==, 0);
  vr_disk_check_result_clear (&r);
  assert_qemu_check_clean (copy);

  /* qemu-img repairs it to clean. */
  {
    g_autofree char *err = NULL;

    g_assert_cmpint (dt_run (&out, &err, (const char *const[]) { qemu_img, "check", "-q", "-r",
                                                                "all", img, NULL }), ==, 0);
  }
  assert_qemu_check_clean (img);

  /* Every block written before the flush is intact. */
  disk = vr_disk_open (img, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "convert", "-q", "-O", "raw", img, conv), ==, 0);
  {
    g_autofree char *data = NULL;

    g_assert_true (g_file_get_contents (conv, &data, &len, NULL));
    converted = (uint8_t *) g_steal_pointer (&data);
  }
  for (uint64_t i = 0; i < CRASH_FLUSHED; i++)
    {
      uint64_t b = (i * 7919) % (64 * MIB / CRASH_BLOCK);
      uint8_t expect[CRASH_BLOCK], got[CRASH_BLOCK];

      dt_pattern (expect, sizeof expect, b * CRASH_BLOCK, 1);
      g_assert_true (vr_disk_pread (disk, got, sizeof got, b * CRASH_BLOCK, &error));
      g_assert_cmpmem (got, sizeof got, expect, sizeof expect);
      g_assert_cmpmem (converted + b * CRASH_BLOCK, CRASH_BLOCK, expect, sizeof expect);
    }
  vr_disk_close (disk);
  dt_rmdir (dir);
}

/* A leaked image for vireo-img check's exit codes. */
static void
test_vireo_img_check_leaks (void)
{
  const char *vireo_img = g_getenv ("VIREO_IMG");
  g_autofree char *dir = NULL, *img = NULL, *out = NULL;
  uint8_t one = 1;
  int fd;

  if (!need_qemu () || vireo_img == NULL)
    {
      if (vireo_img == NULL)
        g_test_skip ("VIREO_IMG not set");
      return;
    }
  dir = dt_tmpdir ();
  img = g_build_filename (dir, "leak.qcow2", NULL);
  g_assert_cmpint (DT_RUN (NULL, qemu_img, "create", "-q", "-f", "qcow2", img, "1M"), ==, 0);
  /* Mark cluster 5 (past the end of the image) as used: a leak. */
  fd = open (img, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (pwrite (fd, &one, 1, 2 * 65536 + 2 * 5 + 1), ==, 1);
  close (fd);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "check", img), ==, 3);
  g_assert_nonnull (strstr (out, "1 leaked clusters were found on the image."));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "check", "-r", "leaks", img), ==, 0);
  g_assert_nonnull (strstr (out, "1 leaked clusters"));
  g_clear_pointer (&out, g_free);
  assert_qemu_check_clean (img);
  /* A refcount too low: a corruption (exit 2), repaired by -r all. */
  fd = open (img, O_WRONLY | O_CLOEXEC);
  one = 0;
  g_assert_cmpint (pwrite (fd, &one, 1, 2 * 65536 + 2 * 1 + 1), ==, 1);
  close (fd);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "check", img), ==, 2);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (DT_RUN (&out, vireo_img, "check", "-r", "all", img), ==, 0);
  assert_qemu_check_clean (img);
  dt_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  qemu_img = dt_qemu_img ();

  g_test_add_func ("/disk/qemu/qcow2-v3", test_qemu_v3);
  g_test_add_func ("/disk/qemu/qcow2-v2", test_qemu_v2);
  g_test_add_func ("/disk/qemu/small-clusters", test_qemu_small_clusters);
  g_test_add_data_func ("/disk/qemu/refcount-bits-1", "1", test_qemu_refcount_bits);
  g_test_add_data_func ("/disk/qemu/refcount-bits-2", "2", test_qemu_refcount_bits);
  g_test_add_data_func ("/disk/qemu/refcount-bits-8", "8", test_qemu_refcount_bits);
  g_test_add_data_func ("/disk/qemu/refcount-bits-32", "32", test_qemu_refcount_bits);
  g_test_add_data_func ("/disk/qemu/refcount-bits-64", "64", test_qemu_refcount_bits);
  g_test_add_func ("/disk/qemu/vireo-created", test_vireo_created);
  g_test_add_func ("/disk/qemu/backing", test_backing_qemu);
  g_test_add_func ("/disk/qemu/backing-vireo", test_backing_vireo);
  g_test_add_func ("/disk/qemu/backing-v2", test_backing_v2);
  g_test_add_func ("/disk/qemu/compressed", test_compressed);
  g_test_add_data_func ("/disk/qemu/vmdk/monolithicSparse", "monolithicSparse", test_vmdk);
  g_test_add_data_func ("/disk/qemu/vmdk/monolithicFlat", "monolithicFlat", test_vmdk);
  g_test_add_data_func ("/disk/qemu/vmdk/twoGbMaxExtentSparse", "twoGbMaxExtentSparse",
                        test_vmdk);
  g_test_add_data_func ("/disk/qemu/vmdk/twoGbMaxExtentFlat", "twoGbMaxExtentFlat", test_vmdk);
  g_test_add_data_func ("/disk/qemu/vmdk/streamOptimized", "streamOptimized", test_vmdk);
  g_test_add_func ("/disk/qemu/vireo-img", test_vireo_img);
  g_test_add_func ("/disk/qemu/vireo-img-check", test_vireo_img_check_leaks);
  g_test_add_func ("/disk/qemu/crash", test_crash);
  return g_test_run ();
}
