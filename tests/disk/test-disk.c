/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Disk layer unit tests that need no external tools: raw and qcow2 I/O against an in-memory
 * model (also from several threads), and hostile images. */

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk-test-util.h"

#define MIB (UINT64_C (1) << 20)

static void
test_format_strings (void)
{
  VrDiskFormat f;
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_format_from_string ("qcow2", &f, NULL));
  g_assert_cmpint (f, ==, VR_DISK_FORMAT_QCOW2);
  g_assert_true (vr_disk_format_from_string ("RAW", &f, NULL));
  g_assert_cmpint (f, ==, VR_DISK_FORMAT_RAW);
  g_assert_cmpstr (vr_disk_format_to_string (VR_DISK_FORMAT_VMDK), ==, "vmdk");
  g_assert_false (vr_disk_format_from_string ("qed", &f, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
}

typedef struct
{
  VrDisk  *disk;
  uint8_t *model;
  uint64_t size;
  GRand   *rand;
  bool     zero_discard; /* discarded whole clusters read as zeroes */
  uint64_t cluster;
} Model;

static void
model_check_range (Model *m, uint64_t off, uint64_t len)
{
  g_autofree uint8_t *buf = g_malloc (len);
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_disk_pread (m->disk, buf, len, off, &error));
  g_assert_no_error (error);
  if (memcmp (buf, m->model + off, len) != 0)
    {
      for (uint64_t i = 0; i < len; i++)
        if (buf[i] != m->model[off + i])
          g_error ("mismatch at %" G_GUINT64_FORMAT ": disk %02x model %02x", off + i, buf[i],
                   m->model[off + i]);
    }
}

static void
model_random_ops (Model *m, unsigned rounds)
{
  for (unsigned r = 0; r < rounds; r++)
    {
      g_autoptr (GError) error = NULL;
      uint64_t off = (uint64_t) g_rand_double_range (m->rand, 0, (double) m->size);
      uint64_t len = (uint64_t) g_rand_int_range (m->rand, 1, 3 * 65536);
      int op = g_rand_int_range (m->rand, 0, 10);

      if (g_rand_boolean (m->rand))
        off &= ~UINT64_C (511), len = (len + 511) & ~UINT64_C (511);
      len = MIN (len, m->size - off);
      if (len == 0)
        continue;
      if (op < 5)
        {
          g_autofree uint8_t *buf = g_malloc (len);
          struct iovec iov[3];
          uint64_t a = len / 3, b = len / 2;

          dt_pattern (buf, len, off, r + 1);
          /* Split into an uneven iovec. */
          iov[0] = (struct iovec) { buf, a };
          iov[1] = (struct iovec) { buf + a, b - a };
          iov[2] = (struct iovec) { buf + b, len - b };
          g_assert_true (vr_disk_pwritev (m->disk, iov, 3, off, &error));
          g_assert_no_error (error);
          memcpy (m->model + off, buf, len);
        }
      else if (op < 8)
        model_check_range (m, off, len);
      else if (op == 8)
        {
          g_assert_true (vr_disk_write_zeroes (m->disk, off, len, g_rand_boolean (m->rand),
                                               &error));
          g_assert_no_error (error);
          memset (m->model + off, 0, len);
        }
      else
        {
          /* Discard whole clusters only: partial ones are left alone. */
          uint64_t s = (off + m->cluster - 1) / m->cluster * m->cluster;
          uint64_t e = (off + len) / m->cluster * m->cluster;

          if (e <= s || !m->zero_discard)
            continue;
          g_assert_true (vr_disk_discard (m->disk, s, e - s, &error));
          g_assert_no_error (error);
          memset (m->model + s, 0, e - s);
        }
    }
}

static void
roundtrip (VrDiskFormat fmt, uint64_t size)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "disk.img", NULL);
  g_autoptr (GError) error = NULL;
  Model m = { 0 };
  uint8_t byte;

  g_assert_true (vr_disk_create (path, fmt, size, NULL, VR_DISK_FORMAT_RAW, &error));
  g_assert_no_error (error);
  m.disk = vr_disk_open (path, fmt, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vr_disk_get_size (m.disk), ==, size);
  g_assert_false (vr_disk_is_readonly (m.disk));
  m.size = size;
  m.model = g_malloc0 (size);
  m.rand = g_rand_new_with_seed (42);
  m.zero_discard = true;
  m.cluster = 65536;

  /* Beyond the end: refused. */
  g_assert_false (vr_disk_pread (m.disk, &byte, 1, size, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_OUT_OF_RANGE);
  g_clear_error (&error);
  g_assert_false (vr_disk_write_zeroes (m.disk, size - 512, 1024, true, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_OUT_OF_RANGE);
  g_clear_error (&error);
  g_assert_false (vr_disk_pread (m.disk, &byte, 1, UINT64_MAX, &error));
  g_clear_error (&error);

  model_random_ops (&m, 400);
  model_check_range (&m, 0, size);
  g_assert_true (vr_disk_flush (m.disk, &error));
  g_assert_no_error (error);
  vr_disk_close (m.disk);

  m.disk = vr_disk_open (path, fmt, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  model_check_range (&m, 0, size);
  g_assert_false (vr_disk_pwrite (m.disk, &byte, 1, 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  g_clear_error (&error);
  vr_disk_close (m.disk);

  if (fmt == VR_DISK_FORMAT_QCOW2)
    {
      VrDiskCheckResult r;

      g_assert_true (vr_disk_check (path, fmt, VR_DISK_REPAIR_NONE, &r, &error));
      g_assert_no_error (error);
      g_assert_true (r.checked);
      g_assert_cmpuint (r.corruptions, ==, 0);
      g_assert_cmpuint (r.leaks, ==, 0);
      vr_disk_check_result_clear (&r);
    }
  g_free (m.model);
  g_rand_free (m.rand);
  dt_rmdir (dir);
}

static void
test_raw_roundtrip (void)
{
  roundtrip (VR_DISK_FORMAT_RAW, 8 * MIB);
}

static void
test_qcow2_roundtrip (void)
{
  roundtrip (VR_DISK_FORMAT_QCOW2, 8 * MIB + 4096);
}

/* Several threads write and read interleaved 512-byte blocks of the same clusters. */
typedef struct
{
  VrDisk  *disk;
  uint8_t *model;
  uint64_t size;
  unsigned id, nthreads;
} ThreadArg;

static gpointer
thread_main (gpointer data)
{
  ThreadArg *a = data;
  g_autoptr (GRand) rand = g_rand_new_with_seed (1000 + a->id);
  uint64_t nblocks = a->size / 512;
  uint8_t buf[2048];

  for (unsigned r = 0; r < 600; r++)
    {
      g_autoptr (GError) error = NULL;
      uint64_t b = (uint64_t) g_rand_double_range (rand, 0, (double) (nblocks / a->nthreads));
      uint64_t off = (b * a->nthreads + a->id) * 512;

      if (g_rand_int_range (rand, 0, 3) > 0)
        {
          dt_pattern (buf, 512, off, r * 16 + a->id);
          g_assert_true (vr_disk_pwrite (a->disk, buf, 512, off, &error));
          g_assert_no_error (error);
          memcpy (a->model + off, buf, 512);
        }
      else
        {
          g_assert_true (vr_disk_pread (a->disk, buf, 512, off, &error));
          g_assert_no_error (error);
          g_assert_cmpmem (buf, 512, a->model + off, 512);
        }
      if (r % 100 == 99)
        {
          g_assert_true (vr_disk_flush (a->disk, &error));
          g_assert_no_error (error);
        }
    }
  return NULL;
}

static void
threads_test (VrDiskFormat fmt)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "disk.img", NULL);
  g_autoptr (GError) error = NULL;
  const uint64_t size = 32 * MIB;
  g_autofree uint8_t *model = g_malloc0 (size);
  g_autofree uint8_t *buf = g_malloc (size);
  ThreadArg args[4];
  GThread *threads[4];
  VrDisk *disk;

  g_assert_true (vr_disk_create (path, fmt, size, NULL, VR_DISK_FORMAT_RAW, &error));
  disk = vr_disk_open (path, fmt, 0, &error);
  g_assert_no_error (error);
  for (unsigned i = 0; i < 4; i++)
    {
      args[i] = (ThreadArg) { disk, model, size, i, 4 };
      threads[i] = g_thread_new ("disk-test", thread_main, &args[i]);
    }
  for (unsigned i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  vr_disk_close (disk);
  disk = vr_disk_open (path, fmt, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  g_assert_true (vr_disk_pread (disk, buf, size, 0, &error));
  g_assert_cmpmem (buf, size, model, size);
  vr_disk_close (disk);
  if (fmt == VR_DISK_FORMAT_QCOW2)
    {
      VrDiskCheckResult r;

      g_assert_true (vr_disk_check (path, fmt, VR_DISK_REPAIR_NONE, &r, &error));
      g_assert_cmpuint (r.corruptions + r.leaks, ==, 0);
      vr_disk_check_result_clear (&r);
    }
  dt_rmdir (dir);
}

static void
test_raw_threads (void)
{
  threads_test (VR_DISK_FORMAT_RAW);
}

static void
test_qcow2_threads (void)
{
  threads_test (VR_DISK_FORMAT_QCOW2);
}

/* Hostile images */

static void
patch (const char *path, uint64_t off, const void *data, size_t len)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, data, len, (off_t) off), ==, (ssize_t) len);
  close (fd);
}

static void
patch_be64 (const char *path, uint64_t off, uint64_t v)
{
  v = GUINT64_TO_BE (v);
  patch (path, off, &v, 8);
}

static void
patch_be32 (const char *path, uint64_t off, uint32_t v)
{
  v = GUINT32_TO_BE (v);
  patch (path, off, &v, 4);
}

static void
expect_open_error (const char *path, VrDiskOpenFlags flags, int code, const char *substring)
{
  g_autoptr (GError) error = NULL;
  VrDisk *disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, flags, &error);

  g_assert_null (disk);
  g_assert_error (error, VR_DISK_ERROR, code);
  g_test_message ("%s", error->message);
  if (strstr (error->message, substring) == NULL)
    g_error ("“%s” does not contain “%s”", error->message, substring);
  g_assert_nonnull (strstr (error->message, path));
}

static char *
fresh_qcow2 (const char *dir, const char *name)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_unlink (path);
  g_assert_true (vr_disk_create (path, VR_DISK_FORMAT_QCOW2, 64 * MIB, NULL,
                                 VR_DISK_FORMAT_RAW, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_bad_headers (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;

  /* Truncated and wrong magic. */
  path = g_build_filename (dir, "short.qcow2", NULL);
  g_assert_true (g_file_set_contents (path, "QFI\xfb\0\0\0\3", 8, NULL));
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "too short");
  g_free (path);
  path = fresh_qcow2 (dir, "magic.qcow2");
  patch (path, 0, "XXXX", 4);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "bad magic");
  g_free (path);
  path = fresh_qcow2 (dir, "trunc.qcow2");
  g_assert_cmpint (truncate (path, 65536), ==, 0);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "past the end");

  g_free (path);
  path = fresh_qcow2 (dir, "l1.qcow2");
  patch_be64 (path, 40, UINT64_C (1) << 40);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT,
                     "L1 table at 0x10000000000 lies past the end of the file");
  g_free (path);
  path = fresh_qcow2 (dir, "l1big.qcow2");
  patch_be32 (path, 36, 0x10000000);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "too large");
  g_free (path);
  path = fresh_qcow2 (dir, "l1small.qcow2");
  patch_be32 (path, 36, 0);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "too small");
  g_free (path);
  path = fresh_qcow2 (dir, "size.qcow2");
  patch_be64 (path, 24, UINT64_C (1) << 63);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "too large");
  g_free (path);
  path = fresh_qcow2 (dir, "cbits.qcow2");
  patch_be32 (path, 20, 31);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "cluster_bits");
  g_free (path);
  path = fresh_qcow2 (dir, "cbits0.qcow2");
  patch_be32 (path, 20, 0);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "cluster_bits");
  g_free (path);
  path = fresh_qcow2 (dir, "rt.qcow2");
  patch_be64 (path, 48, UINT64_C (1) << 50);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "refcount table");
  g_free (path);
  path = fresh_qcow2 (dir, "rorder.qcow2");
  patch_be32 (path, 96, 7);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "refcount order");
  g_free (path);
  path = fresh_qcow2 (dir, "version.qcow2");
  patch_be32 (path, 4, 4);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_UNSUPPORTED, "version 4");
  g_free (path);
  path = fresh_qcow2 (dir, "incompat.qcow2");
  patch_be64 (path, 72, UINT64_C (1) << 40);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_UNSUPPORTED,
                     "unknown feature bit 40");
  g_free (path);
  path = fresh_qcow2 (dir, "datafile.qcow2");
  patch_be64 (path, 72, 4);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_UNSUPPORTED,
                     "external data file");
  g_free (path);
  path = fresh_qcow2 (dir, "crypt.qcow2");
  patch_be32 (path, 32, 1);
  expect_open_error (path, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_UNSUPPORTED, "encrypted");

  /* Corrupt bit: read-only only. */
  g_free (path);
  path = fresh_qcow2 (dir, "corrupt.qcow2");
  patch_be64 (path, 72, 2);
  expect_open_error (path, 0, VR_DISK_ERROR_CORRUPT, "marked corrupt");
  {
    g_autoptr (VrDisk) disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY,
                                            &error);

    g_assert_no_error (error);
  }
  /* Dirty bit: refused read-write until repaired. */
  g_free (path);
  path = fresh_qcow2 (dir, "dirty.qcow2");
  patch_be64 (path, 72, 1);
  expect_open_error (path, 0, VR_DISK_ERROR_UNSUPPORTED, "check -r all");
  {
    VrDiskCheckResult r;
    g_autoptr (VrDisk) disk = NULL;

    g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_ALL, &r, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (r.corruptions, ==, 0);
    vr_disk_check_result_clear (&r);
    disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
    g_assert_no_error (error);
  }
  dt_rmdir (dir);
}

static void
test_bad_metadata (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *path = fresh_qcow2 (dir, "l2.qcow2");
  g_autoptr (GError) error = NULL;
  uint8_t buf[4096];
  VrDisk *disk;
  VrDiskCheckResult r;
  uint64_t l1e;
  int fd;

  /* Write one cluster; the image is then: header, refcount table, refcount block, L1, data,
   * L2. */
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  memset (buf, 0xab, sizeof buf);
  g_assert_true (vr_disk_pwrite (disk, buf, sizeof buf, 0, &error));
  vr_disk_close (disk);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (pread (fd, &l1e, 8, 3 * 65536), ==, 8);
  close (fd);
  l1e = GUINT64_FROM_BE (l1e) & UINT64_C (0x00fffffffffffe00);
  g_assert_cmpuint (l1e, ==, 5 * 65536);  /* data at cluster 4, then its L2 table */

  /* Refcount at its maximum: the write must fail cleanly (shared cluster). */
  {
    uint16_t max = 0xffff;

    patch (path, 2 * 65536 + 2 * 4, &max, 2);
    disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
    g_assert_no_error (error);
    g_assert_true (vr_disk_pread (disk, buf, sizeof buf, 0, &error));
    g_assert_cmpuint (buf[100], ==, 0xab);
    g_assert_true (vr_disk_pwrite (disk, buf, sizeof buf, 0, &error));  /* COPIED is set */
    vr_disk_close (disk);
    g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
    g_assert_cmpuint (r.leaks + r.corruptions, >, 0);
    vr_disk_check_result_clear (&r);
    g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_ALL, &r, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (r.leaks + r.corruptions, ==, 0);
    vr_disk_check_result_clear (&r);
  }

  /* L2 entry pointing past the end of the file. */
  patch_be64 (path, l1e, (UINT64_C (1) << 63) | (UINT64_C (1) << 45));
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  g_assert_false (vr_disk_pread (disk, buf, sizeof buf, 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_assert_false (vr_disk_pwrite (disk, buf, 512, 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_clear_error (&error);
  vr_disk_close (disk);
  g_assert_true (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &r, &error));
  g_assert_cmpuint (r.corruptions, >, 0);
  vr_disk_check_result_clear (&r);

  /* L1 entry pointing past the end of the file. */
  patch_be64 (path, 3 * 65536, UINT64_C (1) << 44);
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  g_assert_false (vr_disk_pread (disk, buf, sizeof buf, 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "L2 table at 0x100000000000 lies past the end"));
  g_clear_error (&error);
  vr_disk_close (disk);
  dt_rmdir (dir);
}

static void
test_backing_loop (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *z = g_build_filename (dir, "z.img", NULL);
  g_autofree char *a = g_build_filename (dir, "a.img", NULL);
  g_autofree char *b = g_build_filename (dir, "b.img", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;
  char *hit;

  g_assert_true (vr_disk_create (z, VR_DISK_FORMAT_QCOW2, MIB, NULL, 0, &error));
  g_assert_true (vr_disk_create (a, VR_DISK_FORMAT_QCOW2, MIB, "z.img", VR_DISK_FORMAT_QCOW2,
                                 &error));
  g_assert_true (vr_disk_create (b, VR_DISK_FORMAT_QCOW2, 0, "a.img", VR_DISK_FORMAT_QCOW2,
                                 &error));
  g_assert_no_error (error);
  {
    g_autoptr (VrDisk) disk = vr_disk_open (b, VR_DISK_FORMAT_QCOW2, 0, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (vr_disk_get_size (disk), ==, MIB);
  }
  /* a → b → a */
  g_assert_true (g_file_get_contents (a, &contents, &len, NULL));
  hit = memmem (contents, 65536, "z.img", 5);
  g_assert_nonnull (hit);
  patch (a, (uint64_t) (hit - contents), "b.img", 5);
  expect_open_error (b, 0, VR_DISK_ERROR_CORRUPT, "loop");
  /* a → a */
  patch (a, (uint64_t) (hit - contents), "a.img", 5);
  expect_open_error (a, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_CORRUPT, "loop");
  /* Missing backing file. */
  patch (a, (uint64_t) (hit - contents), "x.img", 5);
  expect_open_error (a, VR_DISK_OPEN_READONLY, VR_DISK_ERROR_NOT_FOUND, "x.img");
  dt_rmdir (dir);
}

static void
test_backing_depth (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autoptr (GError) error = NULL;
  g_autofree char *top = NULL;

  for (int i = 0; i <= 17; i++)
    {
      g_autofree char *p = g_strdup_printf ("%s/l%02d.img", dir, i);
      g_autofree char *prev = g_strdup_printf ("l%02d.img", i - 1);

      if (i <= 16)
        g_assert_true (vr_disk_create (p, VR_DISK_FORMAT_QCOW2, MIB, i ? prev : NULL,
                                       VR_DISK_FORMAT_QCOW2, &error));
      else
        {
          /* Creating checks the backing chain: beyond 16 it fails. */
          g_assert_false (vr_disk_create (p, VR_DISK_FORMAT_QCOW2, MIB, prev,
                                          VR_DISK_FORMAT_QCOW2, &error));
          g_assert_nonnull (strstr (error->message, "deeper than 16"));
          g_clear_error (&error);
        }
      g_assert_no_error (error);
      g_free (top);
      top = g_strdup (p);
    }
  dt_rmdir (dir);
}

static void
test_create_errors (void)
{
  g_autofree char *dir = dt_tmpdir ();
  g_autofree char *p = g_build_filename (dir, "x.img", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (vr_disk_create (p, VR_DISK_FORMAT_RAW, UINT64_C (1) << 63, NULL, 0, &error));
  g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vr_disk_create (p, VR_DISK_FORMAT_QCOW2, UINT64_MAX, NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (vr_disk_create (p, VR_DISK_FORMAT_VMDK, MIB, NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
  g_assert_true (vr_disk_create (p, VR_DISK_FORMAT_RAW, UINT64_C (1) << 40, NULL, 0, &error));
  g_assert_no_error (error);
  {
    g_autoptr (VrDisk) disk = vr_disk_open (p, VR_DISK_FORMAT_RAW, 0, &error);
    uint8_t b = 7;

    g_assert_cmpuint (vr_disk_get_size (disk), ==, UINT64_C (1) << 40);
    g_assert_true (vr_disk_pwrite (disk, &b, 1, (UINT64_C (1) << 39) + 3, &error));
    g_assert_no_error (error);
  }
  /* VMDK must be opened read-only. */
  expect_open_error (p, 0, VR_DISK_ERROR_CORRUPT, "");
  {
    VrDisk *d = vr_disk_open (p, VR_DISK_FORMAT_VMDK, 0, &error);

    g_assert_null (d);
    g_assert_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY);
  }
  dt_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/disk/format-strings", test_format_strings);
  g_test_add_func ("/disk/raw/roundtrip", test_raw_roundtrip);
  g_test_add_func ("/disk/qcow2/roundtrip", test_qcow2_roundtrip);
  g_test_add_func ("/disk/raw/threads", test_raw_threads);
  g_test_add_func ("/disk/qcow2/threads", test_qcow2_threads);
  g_test_add_func ("/disk/bad/headers", test_bad_headers);
  g_test_add_func ("/disk/bad/metadata", test_bad_metadata);
  g_test_add_func ("/disk/bad/backing-loop", test_backing_loop);
  g_test_add_func ("/disk/bad/backing-depth", test_backing_depth);
  g_test_add_func ("/disk/create-errors", test_create_errors);
  return g_test_run ();
}
