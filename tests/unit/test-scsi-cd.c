/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The CD-ROM drive: the SCSI/MMC model (scsi/vr-scsi-cd.c) command by command against small
 * generated images (block N starts with N, big-endian, then a pattern), then virtio-scsi
 * (virtio/scsi.c) through its PCI function and its queues as a driver would use them:
 * SeaBIOS-shaped requests, Linux's configuration writes, and hostile headers.
 *
 * There is no KVM VM: guest RAM is a VrMemory, interrupts are only recorded by the
 * VrIrqChip, and the I/O thread is a GMainContext iterated by hand.
 */

#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_scsi.h>
#include <string.h>
#include <unistd.h>

#include "hw/hw.h"
#include "hw/pci.h"
#include "scsi/vr-scsi-cd.h"
#include "virtio/scsi.h"
#include "vr-bus.h"
#include "vr-irq.h"
#include "vr-machine.h"
#include "vr-memory.h"

#define BLOCK 2048

/* ---- images -------------------------------------------------------------------------------- */

static uint8_t
pattern (uint64_t offset, uint8_t salt)
{
  uint64_t block = offset / BLOCK;

  /* The first four bytes of a block: its number; then bytes that depend on both. */
  if (offset % BLOCK < 4)
    return (uint8_t) (block >> (8 * (3 - offset % BLOCK)));
  return (uint8_t) (offset * 7 + block * 13 + salt);
}

/* @blocks whole blocks and @extra more bytes, in @dir. */
static char *
make_image (const char *dir, const char *name, unsigned blocks, unsigned extra, uint8_t salt)
{
  g_autoptr (GError)  error = NULL;
  gsize               size = (gsize) blocks * BLOCK + extra;
  g_autofree uint8_t *data = g_malloc (MAX (size, 1));
  char               *path = g_build_filename (dir, name, NULL);

  for (gsize i = 0; i < size; i++)
    data[i] = pattern (i, salt);
  g_assert_true (g_file_set_contents (path, (const char *) data, (gssize) size, &error));
  g_assert_no_error (error);
  return path;
}

/* A sparse image of @size bytes (zeroes). */
static char *
make_sparse (const char *dir, const char *name, uint64_t size)
{
  char *path = g_build_filename (dir, name, NULL);
  int   fd = open (path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) size), ==, 0);
  close (fd);
  return path;
}

static void
remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char      *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        g_rmdir (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

/* ---- the model ----------------------------------------------------------------------------- */

typedef struct
{
  char     *dir;
  char     *iso;  /* 10 blocks + 100 bytes, salt 1 */
  char     *iso2; /* 4 blocks, salt 2 */
  VrScsiCd *cd;
  gint      changed; /* medium callback calls */
} Fixture;

static void
on_changed (gpointer data)
{
  Fixture *f = data;

  g_atomic_int_inc (&f->changed);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("vireo-scsi-cd-XXXXXX", &error);
  g_assert_no_error (error);
  f->iso = make_image (f->dir, "a.iso", 10, 100, 1);
  f->iso2 = make_image (f->dir, "b.iso", 4, 0, 2);
  f->cd = vr_scsi_cd_new ();
  f->changed = 0;
  vr_scsi_cd_set_medium_callback (f->cd, on_changed, f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  vr_scsi_cd_free (f->cd);
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->iso);
  g_free (f->iso2);
}

/* Runs @cdb (@cdb_len bytes) with a data-in buffer of @len bytes at @buf. */
static void
run_buf (VrScsiCd *cd, const uint8_t *cdb, size_t cdb_len, void *buf, size_t len, VrScsiResult *r)
{
  struct iovec iov = { .iov_base = buf, .iov_len = len };

  vr_scsi_cd_command (cd, cdb, cdb_len, &iov, buf ? 1 : 0, len, r);
  g_assert_cmpuint (r->written + r->residual, ==, len);
  if (r->status == VR_SCSI_STATUS_CHECK_CONDITION)
    {
      g_assert_cmpuint (r->sense_len, ==, 18);
      g_assert_cmphex (r->sense[0], ==, 0x70);
      g_assert_cmpuint (r->sense[7], ==, 10);
      g_assert_cmpuint (r->written, ==, 0);
    }
  else
    {
      g_assert_cmphex (r->status, ==, VR_SCSI_STATUS_GOOD);
      g_assert_cmpuint (r->sense_len, ==, 0);
    }
}

#define CDB(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof ((const uint8_t[]){ __VA_ARGS__ })

#define RUN(cd, buf, len, r, ...) run_buf (cd, CDB (__VA_ARGS__), buf, len, r)

static void
assert_sense (const VrScsiResult *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
  g_assert_cmphex (r->status, ==, VR_SCSI_STATUS_CHECK_CONDITION);
  g_assert_false (r->overrun);
  g_assert_cmphex (r->sense[2], ==, key);
  g_assert_cmphex (r->sense[12], ==, asc);
  g_assert_cmphex (r->sense[13], ==, ascq);
}

static void
assert_good (const VrScsiResult *r)
{
  if (r->status != VR_SCSI_STATUS_GOOD)
    g_error ("CHECK CONDITION %x/%02x/%02x", r->sense[2], r->sense[12], r->sense[13]);
  g_assert_false (r->overrun);
}

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint16_t
be16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

static void
tur_good (VrScsiCd *cd)
{
  VrScsiResult r;

  RUN (cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_good (&r);
}

/* Inserts @path and eats the unit attention. */
static void
insert (Fixture *f, const char *path)
{
  g_autoptr (GError) error = NULL;
  VrScsiResult       r;

  g_assert_true (vr_scsi_cd_set_medium (f->cd, path, &error));
  g_assert_no_error (error);
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  tur_good (f->cd);
}

static void
check_blocks (const uint8_t *buf, uint32_t lba, unsigned count, uint8_t salt, uint64_t size)
{
  for (uint64_t i = 0; i < (uint64_t) count * BLOCK; i++)
    {
      uint64_t off = (uint64_t) lba * BLOCK + i;
      uint8_t  want = off < size ? pattern (off, salt) : 0;

      if (buf[i] != want)
        g_error ("byte %" G_GUINT64_FORMAT " of the read (image offset %" G_GUINT64_FORMAT
                 "): %02x, expected %02x",
                 i, off, buf[i], want);
    }
}

static void
test_no_medium (Fixture *f, gconstpointer data)
{
  uint8_t      buf[256];
  VrScsiResult r;

  g_assert_null (vr_scsi_cd_get_medium (f->cd));
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  /* SeaBIOS asks for the sense after a failed TEST UNIT READY. */
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 0, 0, 0, 18, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 18);
  g_assert_cmphex (buf[2], ==, 0x02);
  g_assert_cmphex (buf[12], ==, 0x3a);

  RUN (f->cd, buf, sizeof buf, &r, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 1, 0, 0, 0, 1, 0, 0, 36, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);

  /* What works without a disc. */
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 36, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 128, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_cmpuint (be16 (buf + 6), ==, 0); /* no current profile */
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmphex (buf[5], ==, 0x00); /* no media present */
  RUN (f->cd, buf, sizeof buf, &r, 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 1, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0xbb, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0);
  assert_good (&r);
  /* Eject with nothing in the drive (and the lock released first). */
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 0, 0);
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x02, 0);
  assert_good (&r);
  g_assert_cmpint (f->changed, ==, 0);
}

static void
test_unit_attention (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  uint8_t            buf[64];
  VrScsiResult       r;

  g_assert_true (vr_scsi_cd_set_medium (f->cd, f->iso, &error));
  g_assert_no_error (error);
  /* INQUIRY, GET CONFIGURATION, GET EVENT STATUS NOTIFICATION and REPORT LUNS neither
   * report nor clear it. */
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 36, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0);
  assert_good (&r);
  /* Any other command does, once. */
  RUN (f->cd, buf, sizeof buf, &r, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_good (&r);

  /* Even an unknown command gets the unit attention first. */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, f->iso2, &error));
  RUN (f->cd, buf, sizeof buf, &r, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0x00);

  /* REQUEST SENSE with nothing kept reports the pending unit attention and clears it. */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, f->iso, &error));
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 36, 0);
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 0, 0, 0, 252, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 18);
  g_assert_cmphex (buf[2], ==, 0x06);
  g_assert_cmphex (buf[12], ==, 0x28);
  tur_good (f->cd);

  /* A failed medium change raises nothing and keeps the medium. */
  g_assert_false (vr_scsi_cd_set_medium (f->cd, "/nonexistent/x.iso", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_clear_error (&error);
  tur_good (f->cd);
  g_assert_false (vr_scsi_cd_set_medium (f->cd, f->dir, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_clear_error (&error);
  {
    g_autofree char *empty = make_image (f->dir, "empty.iso", 0, 0, 0);

    g_assert_false (vr_scsi_cd_set_medium (f->cd, empty, &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_IO);
    g_clear_error (&error);
  }
  g_assert_false (vr_scsi_cd_set_medium (f->cd, "/dev/null", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_clear_error (&error);
  tur_good (f->cd);
  {
    g_autofree char *path = vr_scsi_cd_get_medium (f->cd);

    g_assert_cmpstr (path, ==, f->iso);
  }

  /* The host ejects: unit attention, then NOT READY. */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, NULL, &error));
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  /* The host's changes are not reported back through the callback. */
  g_assert_cmpint (f->changed, ==, 0);
}

static void
test_inquiry (Fixture *f, gconstpointer data)
{
  uint8_t      buf[256];
  VrScsiResult r;

  memset (buf, 0xee, sizeof buf);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 36);
  g_assert_cmpuint (r.residual, ==, sizeof buf - 36);
  g_assert_cmphex (buf[0], ==, 0x05); /* CD/DVD */
  g_assert_cmphex (buf[1], ==, 0x80); /* removable */
  g_assert_cmpuint (buf[4], ==, 31);
  g_assert_true (memcmp (buf + 8, "VIREO   ", 8) == 0);
  g_assert_cmphex (buf[36], ==, 0xee);

  /* A short allocation length: that many bytes, no error. */
  memset (buf, 0xee, sizeof buf);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 5, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 5);
  g_assert_cmphex (buf[4], ==, 31);
  g_assert_cmphex (buf[5], ==, 0xee);
  /* A buffer shorter still. */
  RUN (f->cd, buf, 3, &r, 0x12, 0, 0, 0, 36, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 3);
  g_assert_cmpuint (r.residual, ==, 0);
  /* Allocation length 0. */
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0, 0, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 0);

  /* VPD pages. */
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 1, 0x00, 0, 255, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 7);
  g_assert_cmpuint (be16 (buf + 2), ==, 3);
  g_assert_cmphex (buf[4], ==, 0x00);
  g_assert_cmphex (buf[5], ==, 0x80);
  g_assert_cmphex (buf[6], ==, 0x83);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 1, 0x80, 0, 255, 0);
  assert_good (&r);
  g_assert_cmphex (buf[1], ==, 0x80);
  g_assert_cmpuint (r.written, ==, 4u + be16 (buf + 2));
  g_assert_cmpuint (be16 (buf + 2), >, 0);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 1, 0x83, 0, 255, 0);
  assert_good (&r);
  g_assert_cmphex (buf[1], ==, 0x83);
  g_assert_cmpuint (r.written, ==, 4u + be16 (buf + 2));
  g_assert_cmpuint (buf[7], ==, be16 (buf + 2) - 4); /* one designator fills the page */
  g_assert_true (memcmp (buf + 8, "VIREO   ", 8) == 0);

  RUN (f->cd, buf, sizeof buf, &r, 0x12, 1, 0xb0, 0, 255, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 0, 0x80, 0, 255, 0); /* a page without EVPD */
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x12, 2, 0, 0, 255, 0); /* CmdDt */
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
}

static void
test_read_capacity (Fixture *f, gconstpointer data)
{
  uint8_t      buf[8];
  VrScsiResult r;

  insert (f, f->iso);
  RUN (f->cd, buf, sizeof buf, &r, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8);
  g_assert_cmpuint (be32 (buf), ==, 10); /* 10 blocks + a partial one: last LBA 10 */
  g_assert_cmpuint (be32 (buf + 4), ==, BLOCK);

  insert (f, f->iso2);
  RUN (f->cd, buf, 4, &r, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4);
  g_assert_cmpuint (be32 (buf), ==, 3);
}

static void
test_read (Fixture *f, gconstpointer data)
{
  g_autofree uint8_t *buf = g_malloc (16 * BLOCK);
  uint64_t            size = 10 * BLOCK + 100;
  VrScsiResult        r;

  insert (f, f->iso);

  /* READ(10) and READ(12). */
  RUN (f->cd, buf, 2 * BLOCK, &r, 0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 2 * BLOCK);
  g_assert_cmpuint (r.residual, ==, 0);
  check_blocks (buf, 3, 2, 1, size);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 11 * BLOCK);
  g_assert_cmpuint (r.residual, ==, 5 * BLOCK);
  check_blocks (buf, 0, 11, 1, size);

  /* The partial last block reads with zeroes after the end of the file. */
  memset (buf, 0xee, BLOCK);
  RUN (f->cd, buf, BLOCK, &r, 0x28, 0, 0, 0, 0, 10, 0, 0, 1, 0);
  assert_good (&r);
  check_blocks (buf, 10, 1, 1, size);
  g_assert_cmphex (buf[100], ==, 0);
  g_assert_cmphex (buf[BLOCK - 1], ==, 0);

  /* Scattered over odd-sized buffers. */
  {
    uint8_t     *flat = g_malloc (3 * BLOCK);
    struct iovec iov[4] = {
      { buf, 1 },
      { buf + 100, 2047 },
      { buf + 4000, 3000 },
      { buf + 9000, 5000 },
    };
    size_t at = 0;

    memset (buf, 0xee, 16 * BLOCK);
    /* 1 + 2047 + 3000 + 5000 bytes: more than the 11048 said is not there. */
    vr_scsi_cd_command (f->cd, CDB (0x28, 0, 0, 0, 0, 5, 0, 0, 3, 0), iov, 4, 11048, &r);
    assert_good (&r);
    g_assert_cmpuint (r.written, ==, 3 * BLOCK);
    g_assert_cmpuint (r.residual, ==, 10048 - 3 * BLOCK);
    for (unsigned i = 0; i < 4 && at < 3 * BLOCK; i++)
      {
        size_t l = MIN (iov[i].iov_len, 3 * BLOCK - at);

        memcpy (flat + at, iov[i].iov_base, l);
        at += l;
      }
    check_blocks (flat, 5, 3, 1, size);
    /* Nothing between the buffers nor after what was asked for: the last one got 1096. */
    g_assert_cmphex (buf[1], ==, 0xee);
    g_assert_cmphex (buf[99], ==, 0xee);
    g_assert_cmphex (buf[100 + 2047], ==, 0xee);
    g_assert_cmphex (buf[9000 + 1096], ==, 0xee);
    g_free (flat);
  }

  /* No blocks: nothing done, no error; also at the very end. */
  RUN (f->cd, buf, BLOCK, &r, 0x28, 0, 0, 0, 0, 2, 0, 0, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 0);
  RUN (f->cd, buf, BLOCK, &r, 0x28, 0, 0, 0, 0, 11, 0, 0, 0, 0);
  assert_good (&r);

  /* Outside the disc. */
  RUN (f->cd, buf, 16 * BLOCK, &r, 0x28, 0, 0, 0, 0, 11, 0, 0, 1, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0x28, 0, 0, 0, 0, 10, 0, 0, 2, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0x28, 0, 0, 0, 0, 12, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  /* Huge LBA and length: no wrap-around. */
  RUN (f->cd, buf, 16 * BLOCK, &r, 0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0xa8, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);
  RUN (f->cd, buf, 16 * BLOCK, &r, 0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0x00);

  /* More blocks than the data-in buffer holds: an overrun, nothing read. */
  memset (buf, 0xee, 16 * BLOCK);
  RUN (f->cd, buf, 2 * BLOCK - 1, &r, 0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0);
  g_assert_true (r.overrun);
  g_assert_cmphex (r.status, ==, VR_SCSI_STATUS_GOOD);
  g_assert_cmpuint (r.written, ==, 0);
  g_assert_cmpuint (r.residual, ==, 2 * BLOCK - 1);
  g_assert_cmphex (buf[0], ==, 0xee);
  RUN (f->cd, NULL, 0, &r, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  g_assert_true (r.overrun);
  /* A data length beyond the iovecs counts as the iovecs' total. */
  {
    struct iovec iov = { buf, BLOCK };

    vr_scsi_cd_command (f->cd, CDB (0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0), &iov, 1, 10 * BLOCK, &r);
    g_assert_true (r.overrun);
    g_assert_cmpuint (r.residual, ==, BLOCK);
  }
}

static void
test_read_limits (Fixture *f, gconstpointer data)
{
  /* A sparse 200 MiB image: longer than a READ may be, and a DVD by its size. */
  g_autofree char    *big = make_sparse (f->dir, "big.iso", 200ull << 20);
  uint32_t            max_blocks = VR_SCSI_CD_MAX_TRANSFER / BLOCK;
  g_autofree uint8_t *buf = g_malloc (VR_SCSI_CD_MAX_TRANSFER);
  uint8_t             cdb[12] = { 0xa8 };
  uint8_t             cfg[16];
  VrScsiResult        r;

  insert (f, big);
  cdb[6] = (uint8_t) (max_blocks >> 24);
  cdb[7] = (uint8_t) (max_blocks >> 16);
  cdb[8] = (uint8_t) (max_blocks >> 8);
  cdb[9] = (uint8_t) max_blocks;
  run_buf (f->cd, cdb, sizeof cdb, buf, VR_SCSI_CD_MAX_TRANSFER, &r);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, VR_SCSI_CD_MAX_TRANSFER);
  cdb[9]++;
  run_buf (f->cd, cdb, sizeof cdb, buf, VR_SCSI_CD_MAX_TRANSFER, &r);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* 102400 blocks: a CD still (up to 80 minutes); a larger one is a DVD. */
  RUN (f->cd, cfg, sizeof cfg, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 16, 0);
  assert_good (&r);
  g_assert_cmphex (be16 (cfg + 6), ==, 0x0008);
  {
    g_autofree char *dvd = make_sparse (f->dir, "dvd.iso", 4700ull << 20);

    insert (f, dvd);
    RUN (f->cd, cfg, sizeof cfg, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 16, 0);
    assert_good (&r);
    g_assert_cmphex (be16 (cfg + 6), ==, 0x0010);
    g_assert_cmphex (be16 (cfg + 8 + 4), ==, 0x0010);
    g_assert_cmphex (cfg[8 + 6], ==, 1); /* DVD-ROM current */
  }
}

static void
test_read_toc (Fixture *f, gconstpointer data)
{
  uint8_t      buf[64];
  VrScsiResult r;

  insert (f, f->iso); /* 11 blocks */

  /* Format 0, LBA: track 1 at 0, lead-out at 11. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 0, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 20);
  g_assert_cmpuint (be16 (buf), ==, 18);
  g_assert_cmpuint (buf[2], ==, 1);
  g_assert_cmpuint (buf[3], ==, 1);
  g_assert_cmphex (buf[5], ==, 0x14);
  g_assert_cmpuint (buf[6], ==, 1);
  g_assert_cmpuint (be32 (buf + 8), ==, 0);
  g_assert_cmphex (buf[13], ==, 0x14);
  g_assert_cmphex (buf[14], ==, 0xaa);
  g_assert_cmpuint (be32 (buf + 16), ==, 11);

  /* MSF: 00:02:00 and 00:02:11. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0x02, 0, 0, 0, 0, 1, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (be32 (buf + 8), ==, 0x00000200);
  g_assert_cmpuint (be32 (buf + 16), ==, 0x0000020b);

  /* Starting at the lead-out: only it. Past the last track: refused. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 0xaa, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 12);
  g_assert_cmpuint (be16 (buf), ==, 10);
  g_assert_cmphex (buf[6], ==, 0xaa);
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 2, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* Short allocation length: the header says how much there is. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4);
  g_assert_cmpuint (be16 (buf), ==, 18);

  /* Format 1: one session, first track 1 at 0 (MSF 00:02:00). */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 1, 0, 0, 0, 0, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 12);
  g_assert_cmpuint (be16 (buf), ==, 10);
  g_assert_cmpuint (buf[6], ==, 1);
  g_assert_cmpuint (be32 (buf + 8), ==, 0);
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0x02, 1, 0, 0, 0, 0, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (be32 (buf + 8), ==, 0x00000200);
  /* The same through SFF-8020's control byte. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 0, 0, 0, 0, 0, 0, 64, 0x40);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 12);

  /* Other formats (full TOC, PMA, ATIP) are not there. */
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 2, 0, 0, 0, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x43, 0, 4, 0, 0, 0, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
}

/* Finds feature @code in a GET CONFIGURATION answer of @len bytes. */
static const uint8_t *
find_feature (const uint8_t *buf, size_t len, uint16_t code)
{
  for (size_t at = 8; at + 4 <= len; at += 4u + buf[at + 3])
    if (be16 (buf + at) == code)
      return buf + at;
  return NULL;
}

static void
test_get_configuration (Fixture *f, gconstpointer data)
{
  uint8_t        buf[256];
  const uint8_t *feat;
  VrScsiResult   r;

  insert (f, f->iso);
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_cmpuint (be32 (buf), ==, r.written - 4);
  g_assert_cmphex (be16 (buf + 6), ==, 0x0008); /* CD-ROM */
  /* The profile list: DVD-ROM, CD-ROM current. */
  feat = find_feature (buf, r.written, 0x0000);
  g_assert_nonnull (feat);
  g_assert_cmphex (feat[2] & 0x03, ==, 0x03);
  g_assert_cmpuint (feat[3], ==, 8);
  g_assert_cmphex (be16 (feat + 4), ==, 0x0010);
  g_assert_cmpuint (feat[6] & 1, ==, 0);
  g_assert_cmphex (be16 (feat + 8), ==, 0x0008);
  g_assert_cmpuint (feat[10] & 1, ==, 1);
  /* Core, morphing, removable medium (tray, eject, lock), random readable. */
  g_assert_nonnull (find_feature (buf, r.written, 0x0001));
  g_assert_nonnull (find_feature (buf, r.written, 0x0002));
  feat = find_feature (buf, r.written, 0x0003);
  g_assert_nonnull (feat);
  g_assert_cmphex (feat[4], ==, 0x29);
  feat = find_feature (buf, r.written, 0x0010);
  g_assert_nonnull (feat);
  g_assert_cmpuint (be32 (feat + 4), ==, BLOCK);
  g_assert_cmpuint (feat[2] & 1, ==, 1);

  /* RT 2: only the one asked for. */
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 2, 0, 3, 0, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8 + 8);
  g_assert_cmphex (be16 (buf + 8), ==, 0x0003);
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 2, 0, 0x28, 0, 0, 0, 0, 255, 0); /* MRW: none */
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8);
  g_assert_cmpuint (be32 (buf), ==, 4);
  /* Starting feature: those from there on. */
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 0, 0, 2, 0, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_null (find_feature (buf, r.written, 0x0001));
  g_assert_nonnull (find_feature (buf, r.written, 0x0002));
  /* A short allocation length: the header still counts everything. */
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8);
  g_assert_cmpuint (be32 (buf), >, 4);
  /* RT 3 is reserved. */
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 3, 0, 0, 0, 0, 0, 0, 255, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* Without a medium: no current profile, random readable not current (RT 1 drops it). */
  vr_scsi_cd_set_medium (f->cd, NULL, NULL);
  RUN (f->cd, buf, sizeof buf, &r, 0x46, 1, 0, 0, 0, 0, 0, 0, 255, 0);
  assert_good (&r);
  g_assert_cmphex (be16 (buf + 6), ==, 0);
  g_assert_null (find_feature (buf, r.written, 0x0010));
  g_assert_nonnull (find_feature (buf, r.written, 0x0003));
}

static void
test_mode_sense (Fixture *f, gconstpointer data)
{
  uint8_t      buf[128];
  VrScsiResult r;

  insert (f, f->iso);

  /* MODE SENSE(10), capabilities page, as Linux's sr asks at probe. */
  RUN (f->cd, buf, sizeof buf, &r, 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 128, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8 + 22);
  g_assert_cmpuint (be16 (buf), ==, 8 + 22 - 2);
  g_assert_cmpuint (be16 (buf + 6), ==, 0); /* no block descriptors */
  g_assert_cmphex (buf[8], ==, 0x2a);
  g_assert_cmpuint (buf[9], ==, 20);
  g_assert_cmphex (buf[8 + 2] & 0x08, ==, 0x08); /* reads DVD-ROM */
  g_assert_cmphex (buf[8 + 3], ==, 0);           /* writes nothing */
  g_assert_cmphex (buf[8 + 6], ==, 0x29);        /* tray, eject, lock; not locked */
  g_assert_cmpuint (be16 (buf + 8 + 8) / 176, ==, 50);

  /* The lock shows. */
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 1, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x2a, 0, 128, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4 + 22);
  g_assert_cmpuint (buf[0], ==, 4 + 22 - 1);
  g_assert_cmphex (buf[4], ==, 0x2a);
  g_assert_cmphex (buf[4 + 6], ==, 0x2b);

  /* All pages, in order. */
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x3f, 0, 128, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4 + 12 + 22);
  g_assert_cmphex (buf[4], ==, 0x01);
  g_assert_cmpuint (buf[5], ==, 10);
  g_assert_cmphex (buf[16], ==, 0x2a);
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x3f, 0xff, 128, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x5a, 0, 0x01, 0, 0, 0, 0, 0, 128, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8 + 12);

  /* Changeable values: none. */
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x40 | 0x2a, 0, 128, 0);
  assert_good (&r);
  for (unsigned i = 4 + 2; i < 4 + 22; i++)
    g_assert_cmphex (buf[i], ==, 0);
  /* Default values: not locked. */
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x80 | 0x2a, 0, 128, 0);
  assert_good (&r);
  g_assert_cmphex (buf[4 + 6], ==, 0x29);
  /* Saved values: not supported. */
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0xc0 | 0x2a, 0, 128, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0x00);
  /* Pages and subpages we do not have. */
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x08, 0, 128, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x1a, 0, 0x2a, 1, 128, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  /* A short allocation length. */
  RUN (f->cd, buf, sizeof buf, &r, 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 10, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 10);
  g_assert_cmpuint (be16 (buf), ==, 28);
}

static void
test_event_status (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  uint8_t            buf[16];
  VrScsiResult       r;

  /* Asynchronous notification is not supported; a poll for other classes has no event. */
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x02, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4);
  g_assert_cmphex (buf[2], ==, 0x80);
  g_assert_cmphex (buf[3], ==, 0x10);

  /* New media, once; then nothing, media present. */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, f->iso, &error));
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8);
  g_assert_cmpuint (be16 (buf), ==, 6);
  g_assert_cmphex (buf[2], ==, 0x04);
  g_assert_cmpuint (buf[4], ==, 2);
  g_assert_cmphex (buf[5], ==, 0x02);
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (buf[4], ==, 0);
  g_assert_cmphex (buf[5], ==, 0x02);

  /* GET EVENT STATUS NOTIFICATION left the unit attention for the next command. */
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);

  /* The host takes it out: media removal, no media present; a short allocation length
   * still consumes the event. */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, NULL, &error));
  RUN (f->cd, buf, 4, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 4, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4);
  g_assert_cmpuint (be16 (buf), ==, 6);
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (buf[4], ==, 0);
  g_assert_cmphex (buf[5], ==, 0x00);
}

static void
test_eject (Fixture *f, gconstpointer data)
{
  uint8_t      buf[16];
  VrScsiResult r;

  insert (f, f->iso);

  /* Locked: the guest's eject is refused, the medium stays. */
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 1, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x02, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02);
  tur_good (f->cd);
  g_assert_cmpint (f->changed, ==, 0);

  /* A power condition, load, start, stop: no eject. */
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 0, 0);
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x32, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x03, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0x1b, 1, 0, 0, 0x01, 0);
  assert_good (&r);
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x00, 0);
  assert_good (&r);
  tur_good (f->cd);

  /* Unlocked: out it goes; the machine hears of it, the guest sees no unit attention (it
   * did it) but a media removal event and NOT READY. */
  RUN (f->cd, NULL, 0, &r, 0x1b, 1, 0, 0, 0x02, 0);
  assert_good (&r);
  g_assert_cmpint (f->changed, ==, 1);
  g_assert_null (vr_scsi_cd_get_medium (f->cd));
  RUN (f->cd, buf, sizeof buf, &r, 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0);
  assert_good (&r);
  g_assert_cmpuint (buf[4], ==, 3);
  g_assert_cmphex (buf[5], ==, 0x00);
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
  /* Again: nothing to eject, nothing to tell. */
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x02, 0);
  assert_good (&r);
  g_assert_cmpint (f->changed, ==, 1);

  /* The host puts another one in: unit attention once, its data. */
  insert (f, f->iso2);
  {
    g_autofree uint8_t *blocks = g_malloc (4 * BLOCK);

    RUN (f->cd, blocks, 4 * BLOCK, &r, 0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0);
    assert_good (&r);
    check_blocks (blocks, 0, 4, 2, 4 * BLOCK);
  }
}

static void
test_bad_commands (Fixture *f, gconstpointer data)
{
  uint8_t      buf[32], cdb[16] = { 0 };
  VrScsiResult r;

  insert (f, f->iso);

  /* Unknown opcodes in every group, with CDBs long enough for them. */
  static const uint8_t unknown[] = { 0x0a, 0x15, 0x2a, 0x35, 0x55, 0x60, 0x7f,
                                     0x88, 0x9e, 0xa1, 0xad, 0xbe, 0xc0, 0xff };
  for (gsize i = 0; i < G_N_ELEMENTS (unknown); i++)
    {
      cdb[0] = unknown[i];
      run_buf (f->cd, cdb, sizeof cdb, buf, sizeof buf, &r);
      assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0x00);
    }
  /* Its sense is kept for REQUEST SENSE, then forgotten. */
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 0, 0, 0, 18, 0);
  assert_good (&r);
  g_assert_cmphex (buf[2], ==, 0x05);
  g_assert_cmphex (buf[12], ==, 0x20);
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 0, 0, 0, 18, 0);
  assert_good (&r);
  g_assert_cmphex (buf[2], ==, 0x00);
  g_assert_cmphex (buf[12], ==, 0x00);
  /* REQUEST SENSE: short allocation length; descriptor format refused. */
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 0, 0, 0, 4, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 4);
  RUN (f->cd, buf, sizeof buf, &r, 0x03, 1, 0, 0, 18, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* CDBs shorter than their command. */
  vr_scsi_cd_command (f->cd, cdb, 0, NULL, 0, 0, &r);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  vr_scsi_cd_command (f->cd, NULL, 0, NULL, 0, 0, &r);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x00, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x28, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 1);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  /* Longer CDBs are fine (virtio-scsi carries 32 bytes). */
  memset (cdb, 0, sizeof cdb);
  run_buf (f->cd, cdb, sizeof cdb, NULL, 0, &r);
  assert_good (&r);
}

static void
test_other_commands (Fixture *f, gconstpointer data)
{
  uint8_t      buf[64];
  VrScsiResult r;

  insert (f, f->iso);

  /* REPORT LUNS: LUN 0 only; SeaBIOS starts with 16 bytes. */
  memset (buf, 0xee, sizeof buf);
  RUN (f->cd, buf, sizeof buf, &r, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 16);
  g_assert_cmpuint (be32 (buf), ==, 8);
  for (unsigned i = 8; i < 16; i++)
    g_assert_cmphex (buf[i], ==, 0);
  RUN (f->cd, buf, sizeof buf, &r, 0xa0, 0, 1, 0, 0, 0, 0, 0, 0, 16, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (be32 (buf), ==, 0);
  RUN (f->cd, buf, sizeof buf, &r, 0xa0, 0, 0x10, 0, 0, 0, 0, 0, 0, 16, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* READ DISC INFORMATION: complete, one session, one track. */
  RUN (f->cd, buf, sizeof buf, &r, 0x51, 0, 0, 0, 0, 0, 0, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 34);
  g_assert_cmpuint (be16 (buf), ==, 32);
  g_assert_cmphex (buf[2], ==, 0x0e);
  g_assert_cmpuint (buf[3], ==, 1);
  g_assert_cmpuint (buf[4], ==, 1);
  RUN (f->cd, buf, sizeof buf, &r, 0x51, 1, 0, 0, 0, 0, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* READ TRACK INFORMATION by track, session and LBA. */
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 1, 0, 0, 0, 1, 0, 0, 64, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 36);
  g_assert_cmpuint (buf[2], ==, 1);
  g_assert_cmpuint (be32 (buf + 24), ==, 11);
  g_assert_cmpuint (be32 (buf + 28), ==, 10);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 2, 0, 0, 0, 1, 0, 0, 64, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 0, 0, 0, 0, 10, 0, 0, 64, 0);
  assert_good (&r);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 0, 0, 0, 0, 11, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 1, 0, 0, 0, 2, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);
  RUN (f->cd, buf, sizeof buf, &r, 0x52, 3, 0, 0, 0, 1, 0, 0, 64, 0);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x00);

  /* MECHANISM STATUS: 8 bytes, no changer. */
  memset (buf, 0xee, sizeof buf);
  RUN (f->cd, buf, sizeof buf, &r, 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0);
  assert_good (&r);
  g_assert_cmpuint (r.written, ==, 8);
  g_assert_cmphex (buf[1], ==, 0);
  g_assert_cmphex (buf[8], ==, 0xee);

  /* SET CD SPEED: accepted. */
  RUN (f->cd, NULL, 0, &r, 0xbb, 0, 0x02, 0xc2, 0xff, 0xff, 0, 0, 0, 0, 0, 0);
  assert_good (&r);
}

static void
test_reset (Fixture *f, gconstpointer data)
{
  VrScsiResult r;

  insert (f, f->iso);
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 1, 0);
  vr_scsi_cd_reset (f->cd);
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x29, 0x00);
  tur_good (f->cd);
  /* The lock is gone, the medium not. */
  RUN (f->cd, NULL, 0, &r, 0x1b, 0, 0, 0, 0x02, 0);
  assert_good (&r);
  g_assert_cmpint (f->changed, ==, 1);

  /* A pending medium change is not replaced by the reset's. */
  insert (f, f->iso);
  vr_scsi_cd_set_medium (f->cd, f->iso2, NULL);
  vr_scsi_cd_reset (f->cd);
  RUN (f->cd, NULL, 0, &r, 0x00, 0, 0, 0, 0, 0);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  tur_good (f->cd);
}

static GVariant *
through_file (GVariant *state)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (state);
  g_autoptr (GBytes)   bytes = g_variant_get_data_as_bytes (owned);

  return g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (owned), bytes, FALSE));
}

static void
count_calls (gpointer data)
{
  g_atomic_int_inc ((gint *) data);
}

static void
load_fails (Fixture *f, GVariant *state, const char *fragment)
{
  g_autoptr (GError)   error = NULL;
  g_autoptr (GVariant) file = state ? through_file (state) : NULL;
  g_autoptr (VrScsiCd) cd = vr_scsi_cd_new ();

  g_assert_false (vr_scsi_cd_load (cd, file, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT);
  if (!strstr (error->message, fragment))
    g_error ("“%s” does not say “%s”", error->message, fragment);
}

static void
test_snapshot (Fixture *f, gconstpointer data)
{
  g_autoptr (GError)   error = NULL;
  g_autoptr (GVariant) state = NULL, file = NULL, again = NULL;
  g_autoptr (VrScsiCd) b = vr_scsi_cd_new ();
  g_autofree char     *path = NULL;
  gint                 b_changed = 0;
  uint8_t              buf[32];
  VrScsiResult         r;

  insert (f, f->iso);
  RUN (f->cd, NULL, 0, &r, 0x1e, 0, 0, 0, 1, 0);                  /* locked */
  RUN (f->cd, NULL, 0, &r, 0xff, 0, 0, 0, 0, 0);                  /* a sense to keep */
  g_assert_true (vr_scsi_cd_set_medium (f->cd, f->iso2, &error)); /* a pending UA */
  state = g_variant_ref_sink (vr_scsi_cd_save (f->cd));
  file = through_file (g_variant_ref (state));
  vr_scsi_cd_set_medium_callback (b, count_calls, &b_changed);
  g_assert_true (vr_scsi_cd_load (b, file, &error));
  g_assert_no_error (error);
  /* Another medium than b had (none): the machine is told; the same one again: not. */
  g_assert_cmpint (b_changed, ==, 1);
  g_assert_true (vr_scsi_cd_load (b, file, &error));
  g_assert_cmpint (b_changed, ==, 1);
  again = g_variant_ref_sink (vr_scsi_cd_save (b));
  g_assert_true (g_variant_equal (state, again));
  path = vr_scsi_cd_get_medium (b);
  g_assert_cmpstr (path, ==, f->iso2);
  /* The kept sense, then the unit attention, then the lock. */
  run_buf (b, CDB (0x03, 0, 0, 0, 18, 0), buf, sizeof buf, &r);
  g_assert_cmphex (buf[12], ==, 0x20);
  run_buf (b, CDB (0x00, 0, 0, 0, 0, 0), NULL, 0, &r);
  assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
  run_buf (b, CDB (0x1b, 0, 0, 0, 2, 0), NULL, 0, &r);
  assert_sense (&r, VR_SCSI_SENSE_ILLEGAL_REQUEST, 0x53, 0x02);
  /* GET EVENT STATUS still has the new medium to report. */
  run_buf (b, CDB (0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0), buf, sizeof buf, &r);
  g_assert_cmpuint (buf[4], ==, 2);

  /* The image is gone by the time of the load: an empty drive, a media change, the machine
   * told; not a failure. */
  g_assert_cmpint (g_unlink (f->iso2), ==, 0);
  {
    g_autoptr (VrScsiCd) c = vr_scsi_cd_new ();
    gint                 changed = 0;

    vr_scsi_cd_set_medium_callback (c, count_calls, &changed);
    g_test_expect_message ("vireo-engine", G_LOG_LEVEL_MESSAGE, "*medium is gone*");
    g_assert_true (vr_scsi_cd_load (c, file, &error));
    g_test_assert_expected_messages ();
    g_assert_no_error (error);
    g_assert_cmpint (changed, ==, 1);
    g_assert_null (vr_scsi_cd_get_medium (c));
    run_buf (c, CDB (0x03, 0, 0, 0, 18, 0), buf, sizeof buf, &r);
    run_buf (c, CDB (0x00, 0, 0, 0, 0, 0), NULL, 0, &r);
    assert_sense (&r, VR_SCSI_SENSE_UNIT_ATTENTION, 0x28, 0x00);
    run_buf (c, CDB (0x00, 0, 0, 0, 0, 0), NULL, 0, &r);
    assert_sense (&r, VR_SCSI_SENSE_NOT_READY, 0x3a, 0x00);
    run_buf (c, CDB (0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0), buf, sizeof buf, &r);
    g_assert_cmpuint (buf[4], ==, 3);
  }

  /* An empty drive saves and loads as one. */
  {
    g_autoptr (VrScsiCd) c = vr_scsi_cd_new ();
    g_autoptr (VrScsiCd) d = vr_scsi_cd_new ();
    g_autoptr (GVariant) s = g_variant_ref_sink (vr_scsi_cd_save (c));
    g_autoptr (GVariant) fs = through_file (g_variant_ref (s));

    g_assert_true (vr_scsi_cd_load (d, fs, &error));
    g_assert_null (vr_scsi_cd_get_medium (d));
  }

  /* Hostile states. */
  load_fails (f, g_variant_new ("(qs)", 1, "x"), "type");
  load_fails (f,
              g_variant_new ("(qsbyyy@ay)", 2, "", FALSE, 0, 0, 0,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "", 0, 1)),
              "version 2");
  load_fails (f,
              g_variant_new ("(qsbyyy@ay)", 1, "", FALSE, 0x3a, 0, 0,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "", 0, 1)),
              "unit attention");
  load_fails (f,
              g_variant_new ("(qsbyyy@ay)", 1, "", FALSE, 0, 0, 7,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "", 0, 1)),
              "media event");
  load_fails (f,
              g_variant_new ("(qsbyyy@ay)", 1, "", FALSE, 0, 0, 0,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "\x70\0\0", 3, 1)),
              "sense");
  {
    uint8_t bad[18] = { 0x71 };

    load_fails (f,
                g_variant_new ("(qsbyyy@ay)", 1, "", FALSE, 0, 0, 0,
                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bad, 18, 1)),
                "sense");
  }
  load_fails (f, NULL, "no state");
}

/* Reads while the host changes the medium back and forth: every block read comes whole from
 * one image or the other, and nothing is used after it is closed. */
typedef struct
{
  Fixture *f;
  gint     stop;
} Race;

static gpointer
race_reader (gpointer data)
{
  Race    *race = data;
  uint8_t  buf[BLOCK];
  unsigned good = 0;

  while (!g_atomic_int_get (&race->stop) || good < 100)
    {
      VrScsiResult r;

      run_buf (race->f->cd, CDB (0x28, 0, 0, 0, 0, 2, 0, 0, 1, 0), buf, sizeof buf, &r);
      if (r.status != VR_SCSI_STATUS_GOOD)
        continue;
      g_assert_cmpuint (be32 (buf), ==, 2);
      if (buf[4] == pattern (2 * BLOCK + 4, 1))
        check_blocks (buf, 2, 1, 1, 10 * BLOCK + 100);
      else
        check_blocks (buf, 2, 1, 2, 4 * BLOCK);
      good++;
    }
  return NULL;
}

static void
test_concurrent_change (Fixture *f, gconstpointer data)
{
  Race     race = { f, 0 };
  GThread *reader;

  insert (f, f->iso);
  reader = g_thread_new ("reader", race_reader, &race);
  for (unsigned i = 0; i < 300; i++)
    g_assert_true (vr_scsi_cd_set_medium (f->cd, i % 2 ? f->iso : f->iso2, NULL));
  g_atomic_int_set (&race.stop, 1);
  g_thread_join (reader);
}

/* ---- virtio-scsi ------------------------------------------------------------------------- */

#define RAM_SIZE   (16u << 20)
#define MMIO_BASE  VR_MMIO_HOLE_START
#define REGS       (MMIO_BASE + 0x100000)
#define MSIX       (MMIO_BASE + 0x200000)
#define SLOT       4
#define DEVFN      (SLOT << 3)
#define DEVICE_CFG 0x2000
#define NOTIFY     0x3000

/* Where the driver keeps things in guest RAM. */
#define CQ_RING    0x100000
#define RQ_RING    0x110000
#define REQ_GPA    0x200000
#define RESP_GPA   0x201000
#define DATA_GPA   0x210000
#define SENSE_SIZE 96
#define REQ_SIZE   (19 + 32)
#define RESP_SIZE  (12 + SENSE_SIZE)

typedef struct
{
  uint64_t desc, avail, used;
  uint16_t size, avail_idx, used_seen;
  unsigned next_desc;
} Ring;

typedef struct
{
  char         *dir;
  char         *iso;
  VrIrqChip    *irq;
  VrMemory     *mem;
  VrBus        *pio;
  VrBus        *mmio;
  VrDevice     *host;
  GMainContext *io;
  VrDevice     *dev;
  gint          changed;
  Ring          cq;
  Ring          rq;
} VFixture;

static uint64_t
port_in (VFixture *f, uint16_t port, unsigned len)
{
  uint8_t data[8];

  vr_bus_dispatch (f->pio, port, data, len, false);
  return vr_io_get (data, len);
}

static void
port_out (VFixture *f, uint16_t port, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (f->pio, port, data, len, true);
}

static uint32_t
cfg_read (VFixture *f, unsigned reg, unsigned len)
{
  port_out (f, 0xcf8, 4, 0x80000000u | (DEVFN << 8) | (reg & 0xfc));
  return (uint32_t) port_in (f, (uint16_t) (0xcfc + (reg & 3)), len);
}

static void
cfg_write (VFixture *f, unsigned reg, unsigned len, uint32_t v)
{
  port_out (f, 0xcf8, 4, 0x80000000u | (DEVFN << 8) | (reg & 0xfc));
  port_out (f, (uint16_t) (0xcfc + (reg & 3)), len, v);
}

static uint64_t
cr (VFixture *f, unsigned off, unsigned len)
{
  uint8_t data[8];

  vr_bus_dispatch (f->mmio, REGS + off, data, len, false);
  return vr_io_get (data, len);
}

static void
cw (VFixture *f, unsigned off, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (f->mmio, REGS + off, data, len, true);
}

static void
run_io (VFixture *f)
{
  for (int i = 0; i < 4; i++)
    while (g_main_context_iteration (f->io, FALSE))
      ;
}

static void
v_on_changed (gpointer data)
{
  g_atomic_int_inc (&((VFixture *) data)->changed);
}

static void
setup_queue (VFixture *f, unsigned q, Ring *r, uint64_t base, uint16_t size)
{
  g_autofree uint8_t *zero = g_malloc0 (0x3000);

  *r = (Ring){ .desc = base, .avail = base + 0x1000, .used = base + 0x2000, .size = size };
  g_assert_true (vr_memory_write (f->mem, base, zero, 0x3000));
  cw (f, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
  cw (f, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
  cw (f, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t) r->desc);
  cw (f, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
  cw (f, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t) r->avail);
  cw (f, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
  cw (f, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t) r->used);
  cw (f, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
  cw (f, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

/* What SeaBIOS does (plus the control queue, as Linux): reset, features, queues, go. */
static void
driver_init (VFixture *f)
{
  cw (f, VIRTIO_PCI_COMMON_STATUS, 1, 0);
  cw (f, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  cw (f, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
  cw (f, VIRTIO_PCI_COMMON_GF, 4, 1); /* VERSION_1 */
  cw (f, VIRTIO_PCI_COMMON_STATUS, 1,
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  g_assert_cmphex (cr (f, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK, !=, 0);
  setup_queue (f, 0, &f->cq, CQ_RING, 16);
  setup_queue (f, 2, &f->rq, RQ_RING, 16);
  cw (f, VIRTIO_PCI_COMMON_STATUS, 1,
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
          VIRTIO_CONFIG_S_DRIVER_OK);
}

/* What firmware does: BARs, decoding, bus mastering. */
static void
map_bars (VFixture *f)
{
  cfg_write (f, 0x20, 4, (uint32_t) REGS);
  cfg_write (f, 0x24, 4, (uint32_t) (REGS >> 32));
  cfg_write (f, 0x14, 4, (uint32_t) MSIX);
  cfg_write (f, 0x04, 2, VR_PCI_COMMAND_MEMORY | 0x4);
}

static void
vfixture_setup (VFixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrVirtioHost       host;

  memset (f, 0, sizeof *f);
  f->dir = g_dir_make_tmp ("vireo-virtio-scsi-XXXXXX", &error);
  g_assert_no_error (error);
  f->iso = make_image (f->dir, "a.iso", 20, 0, 3);
  f->irq = vr_irqchip_new ();
  f->mem = vr_memory_new (RAM_SIZE, &error);
  g_assert_no_error (error);
  f->pio = vr_bus_new ("port I/O");
  f->mmio = vr_bus_new ("MMIO");
  f->host = vr_pci_host_new (f->pio, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (vr_pci_host_attach_mmio (f->host, f->mmio, MMIO_BASE, 0x10000000, &error));
  f->io = g_main_context_new ();
  host = (VrVirtioHost){ .memory = f->mem,
                         .irq = f->irq,
                         .pci_host = f->host,
                         .io_context = f->io,
                         .slot = SLOT,
                         .gsi = 16 + SLOT % 8 };
  f->dev = vr_virtio_scsi_new (&host, f->iso, v_on_changed, f, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->dev);

  map_bars (f);
}

static void
vfixture_teardown (VFixture *f, gconstpointer data)
{
  vr_device_destroy (f->dev);
  vr_device_destroy (f->host);
  while (g_main_context_iteration (f->io, FALSE))
    ;
  g_main_context_unref (f->io);
  vr_bus_free (f->mmio);
  vr_bus_free (f->pio);
  vr_memory_free (f->mem);
  vr_irqchip_free (f->irq);
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->iso);
}

/* Offers a chain of @n segments (device-writable ones last) on @r and kicks queue @q. */
static void
offer (VFixture       *f,
       Ring           *r,
       unsigned        q,
       unsigned        n,
       const uint64_t *addr,
       const uint32_t *len,
       const bool     *writable)
{
  uint16_t head = (uint16_t) (r->next_desc % r->size);

  for (unsigned i = 0; i < n; i++)
    {
      unsigned          idx = (head + i) % r->size;
      struct vring_desc desc = {
        .addr = addr[i],
        .len = len[i],
        .flags = (uint16_t) ((writable[i] ? VRING_DESC_F_WRITE : 0) |
                             (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
        .next = (uint16_t) ((idx + 1) % r->size),
      };

      g_assert_true (vr_memory_write (f->mem, r->desc + 16 * idx, &desc, sizeof desc));
    }
  r->next_desc += n;
  g_assert_true (vr_memory_write (f->mem, r->avail + 4 + 2 * (r->avail_idx % r->size), &head, 2));
  r->avail_idx++;
  g_assert_true (vr_memory_write (f->mem, r->avail + 2, &r->avail_idx, 2));
  cw (f, NOTIFY + 4 * q, 2, q);
}

static uint16_t
used_idx (VFixture *f, Ring *r)
{
  uint16_t v;

  g_assert_true (vr_memory_read (f->mem, r->used + 2, &v, 2));
  return v;
}

/* Waits (the worker completes requests) for the next used entry; returns its length. */
static uint32_t
wait_used (VFixture *f, Ring *r)
{
  gint64   deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  uint32_t e[2];

  while (used_idx (f, r) == r->used_seen)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      run_io (f);
      g_usleep (200);
    }
  g_assert_true (vr_memory_read (f->mem, r->used + 4 + 8 * (r->used_seen % r->size), e, 8));
  r->used_seen++;
  return e[1];
}

typedef struct
{
  uint32_t sense_len;
  uint32_t resid;
  uint8_t  status;
  uint8_t  response;
  uint8_t  sense[SENSE_SIZE];
  uint32_t used_len;
} Resp;

/* One command the way SeaBIOS sends it: header, response, data-in of @data_len bytes (none
 * for 0). @lun NULL: target 0 LUN 0 as SeaBIOS and Linux write it. */
static Resp
command (VFixture *f, const uint8_t *lun, const uint8_t *cdb, size_t cdb_len, uint32_t data_len)
{
  uint8_t  req[REQ_SIZE] = { 1, 0, 0x40, 0 };
  uint8_t  resp[RESP_SIZE];
  uint64_t addr[3] = { REQ_GPA, RESP_GPA, DATA_GPA };
  uint32_t len[3] = { REQ_SIZE, RESP_SIZE, data_len };
  bool     writable[3] = { false, true, true };
  Resp     r;

  if (lun)
    memcpy (req, lun, 8);
  memcpy (req + 19, cdb, cdb_len);
  memset (resp, 0xee, sizeof resp);
  g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
  g_assert_true (vr_memory_write (f->mem, RESP_GPA, resp, sizeof resp));
  offer (f, &f->rq, 2, data_len ? 3 : 2, addr, len, writable);
  r.used_len = wait_used (f, &f->rq);
  g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
  memcpy (&r.sense_len, resp, 4);
  memcpy (&r.resid, resp + 4, 4);
  r.status = resp[10];
  r.response = resp[11];
  memcpy (r.sense, resp + 12, SENSE_SIZE);
  return r;
}

#define COMMAND(f, lun, data_len, ...) command (f, lun, CDB (__VA_ARGS__), data_len)

static bool
device_broken (VFixture *f)
{
  return cr (f, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static void
test_virtio_config (VFixture *f, gconstpointer data)
{
  g_assert_cmphex (cfg_read (f, 0x00, 2), ==, 0x1af4);
  g_assert_cmphex (cfg_read (f, 0x02, 2), ==, 0x1040 + VIRTIO_ID_SCSI);
  g_assert_cmphex (cfg_read (f, 0x08, 4) >> 8, ==, 0x010000);
  g_assert_cmpuint (cr (f, VIRTIO_PCI_COMMON_NUMQ, 2), ==, 3);

#define CFG(field) (DEVICE_CFG + offsetof (struct virtio_scsi_config, field))
  g_assert_cmpuint (cr (f, CFG (num_queues), 4), ==, 1);
  g_assert_cmpuint (cr (f, CFG (seg_max), 4), >, 0);
  g_assert_cmpuint (cr (f, CFG (max_sectors), 4), ==, 0xffff);
  g_assert_cmpuint (cr (f, CFG (event_info_size), 4), ==, 16);
  g_assert_cmpuint (cr (f, CFG (sense_size), 4), ==, 96);
  g_assert_cmpuint (cr (f, CFG (cdb_size), 4), ==, 32);
  g_assert_cmpuint (cr (f, CFG (max_channel), 2), ==, 0);
  g_assert_cmpuint (cr (f, CFG (max_target), 2), ==, 0);
  g_assert_cmpuint (cr (f, CFG (max_lun), 4), ==, 0);

  /* The driver may set the sizes (Linux writes the defaults), within bounds, and nothing
   * else. */
  cw (f, CFG (cdb_size), 4, 16);
  cw (f, CFG (sense_size), 4, 32);
  cw (f, CFG (max_target), 2, 7);
  cw (f, CFG (num_queues), 4, 9);
  g_assert_cmpuint (cr (f, CFG (cdb_size), 4), ==, 16);
  g_assert_cmpuint (cr (f, CFG (sense_size), 4), ==, 32);
  g_assert_cmpuint (cr (f, CFG (max_target), 2), ==, 0);
  g_assert_cmpuint (cr (f, CFG (num_queues), 4), ==, 1);
  cw (f, CFG (cdb_size), 4, 256);
  cw (f, CFG (sense_size), 4, 0x10000);
  g_assert_cmpuint (cr (f, CFG (cdb_size), 4), ==, 16);
  g_assert_cmpuint (cr (f, CFG (sense_size), 4), ==, 32);
  cw (f, CFG (cdb_size) + 1, 1, 0x12); /* a byte of it: 0x1210 is too big */
  g_assert_cmpuint (cr (f, CFG (cdb_size), 4), ==, 16);
  /* A reset puts the defaults back. */
  cw (f, VIRTIO_PCI_COMMON_STATUS, 1, 0);
  g_assert_cmpuint (cr (f, CFG (cdb_size), 4), ==, 32);
  g_assert_cmpuint (cr (f, CFG (sense_size), 4), ==, 96);
#undef CFG
}

static void
test_virtio_commands (VFixture *f, gconstpointer data)
{
  g_autofree uint8_t *buf = g_malloc (4 * BLOCK);
  g_autofree char    *medium = NULL;
  Resp                r;

  driver_init (f);

  /* SeaBIOS's scan: REPORT LUNS with 16 bytes, then INQUIRY. */
  r = COMMAND (f, NULL, 16, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OK);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_cmpuint (r.resid, ==, 0);
  g_assert_cmpuint (r.used_len, ==, RESP_SIZE + 16);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, 16));
  g_assert_cmpuint (be32 (buf), ==, 8);
  r = COMMAND (f, NULL, 36, 0x12, 0, 0, 0, 36, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OK);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, 36));
  g_assert_cmphex (buf[0], ==, 0x05);
  g_assert_cmphex (buf[1], ==, 0x80);

  /* Booting: TEST UNIT READY → unit attention (the medium at power-on, then the reset),
   * REQUEST SENSE, TEST UNIT READY again. */
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OK);
  g_assert_cmpuint (r.status, ==, 2);
  g_assert_cmpuint (r.sense_len, ==, 18);
  g_assert_cmphex (r.sense[2], ==, 0x06);
  g_assert_cmpuint (r.used_len, ==, RESP_SIZE);
  r = COMMAND (f, NULL, 18, 0x03, 0, 0, 0, 18, 0);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_cmpuint (r.sense_len, ==, 0);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, 18));
  g_assert_cmphex (buf[2], ==, 0x06);
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmpuint (r.status, ==, 0);

  /* The boot record volume descriptor, as SeaBIOS reads it; then 4 blocks into a bigger
   * buffer (residual). */
  r = COMMAND (f, NULL, BLOCK, 0x28, 0, 0, 0, 0, 0x11, 0, 0, 1, 0);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_cmpuint (r.used_len, ==, RESP_SIZE + BLOCK);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, BLOCK));
  check_blocks (buf, 0x11, 1, 3, 20 * BLOCK);
  r = COMMAND (f, NULL, 4 * BLOCK + 512, 0xa8, 0, 0, 0, 0, 16, 0, 0, 0, 4, 0, 0);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_cmpuint (r.resid, ==, 512);
  g_assert_cmpuint (r.used_len, ==, RESP_SIZE + 4 * BLOCK);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, 4 * BLOCK));
  check_blocks (buf, 16, 4, 3, 20 * BLOCK);
  /* Outside the disc: CHECK CONDITION with the sense in the response. */
  r = COMMAND (f, NULL, BLOCK, 0x28, 0, 0, 0, 0, 20, 0, 0, 1, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OK);
  g_assert_cmpuint (r.status, ==, 2);
  g_assert_cmpuint (r.sense_len, ==, 18);
  g_assert_cmphex (r.sense[2], ==, 0x05);
  g_assert_cmphex (r.sense[12], ==, 0x21);
  g_assert_cmpuint (r.resid, ==, BLOCK);
  g_assert_cmphex (r.sense[18], ==, 0); /* the rest of the sense area is zeroed */

  /* The guest ejects: the machine hears of it. */
  r = COMMAND (f, NULL, 0, 0x1b, 0, 0, 0, 0x02, 0);
  g_assert_cmpuint (r.status, ==, 0);
  g_assert_cmpint (g_atomic_int_get (&f->changed), ==, 1);
  g_assert_null (vr_virtio_scsi_get_medium (f->dev));
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmpuint (r.status, ==, 2);
  g_assert_cmphex (r.sense[12], ==, 0x3a);
  /* The host puts it back. */
  g_assert_true (vr_virtio_scsi_change_medium (f->dev, f->iso, NULL));
  medium = vr_virtio_scsi_get_medium (f->dev);
  g_assert_cmpstr (medium, ==, f->iso);
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmphex (r.sense[12], ==, 0x28);
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmpuint (r.status, ==, 0);
  {
    g_autoptr (GError) error = NULL;

    g_assert_false (vr_virtio_scsi_change_medium (f->dev, "/nonexistent.iso", &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  }
  g_assert_false (device_broken (f));
}

static void
test_virtio_hostile (VFixture *f, gconstpointer data)
{
  static const uint8_t luns[][8] = {
    { 0, 0, 0x40, 0 },                       /* byte 0 not 1 */
    { 2, 0, 0x40, 0 },    { 1, 1, 0x40, 0 }, /* target 1 */
    { 1, 0xff, 0x40, 0 }, { 1, 0, 0x40, 1 }, /* LUN 1 */
    { 1, 0, 0x41, 0 },                       /* LUN 256 */
    { 1, 0, 0x01, 0 },                       /* peripheral addressing, bus 1 */
    { 1, 0, 0x80, 0 },                       /* logical unit addressing */
    { 1, 0, 0xc0, 0 },                       /* extended addressing */
  };
  uint8_t buf[64];
  Resp    r;

  driver_init (f);
  COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0); /* eat the unit attention */

  /* LUN garbage: BAD_TARGET, nothing run. */
  for (gsize i = 0; i < G_N_ELEMENTS (luns); i++)
    {
      r = COMMAND (f, luns[i], 36, 0x12, 0, 0, 0, 36, 0);
      g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_BAD_TARGET);
      g_assert_cmpuint (r.resid, ==, 36);
      g_assert_cmpuint (r.used_len, ==, RESP_SIZE);
    }
  /* Peripheral addressing of LUN 0 is LUN 0 too; bytes 4-7 are not looked at. */
  {
    static const uint8_t periph[8] = { 1, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef };

    r = COMMAND (f, periph, 36, 0x12, 0, 0, 0, 36, 0);
    g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OK);
    g_assert_cmpuint (r.status, ==, 0);
  }

  /* Data-in smaller than the READ asks: OVERRUN, nothing written. */
  memset (buf, 0xee, sizeof buf);
  g_assert_true (vr_memory_write (f->mem, DATA_GPA, buf, sizeof buf));
  r = COMMAND (f, NULL, BLOCK - 1, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OVERRUN);
  g_assert_cmpuint (r.resid, ==, BLOCK - 1);
  g_assert_true (vr_memory_read (f->mem, DATA_GPA, buf, sizeof buf));
  g_assert_cmphex (buf[0], ==, 0xee);
  r = COMMAND (f, NULL, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0);
  g_assert_cmpuint (r.response, ==, VIRTIO_SCSI_S_OVERRUN);

  /* A header shorter than 19 + cdb_size: FAILURE, the device goes on. */
  {
    uint64_t addr[3] = { REQ_GPA, RESP_GPA, DATA_GPA };
    uint32_t len[3] = { REQ_SIZE - 1, RESP_SIZE, 36 };
    bool     writable[3] = { false, true, true };
    uint8_t  resp[RESP_SIZE];

    offer (f, &f->rq, 2, 3, addr, len, writable);
    g_assert_cmpuint (wait_used (f, &f->rq), ==, RESP_SIZE);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[11], ==, VIRTIO_SCSI_S_FAILURE);
    len[0] = 0;
    addr[0] = RESP_GPA;
    offer (f, &f->rq, 2, 2, addr + 1, len + 1, writable + 1); /* no header at all */
    g_assert_cmpuint (wait_used (f, &f->rq), ==, RESP_SIZE);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[11], ==, VIRTIO_SCSI_S_FAILURE);
  }
  g_assert_false (device_broken (f));

  /* The CDB carried by the header follows cdb_size: with 6, READ(10) is cut short. */
  cw (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, cdb_size), 4, 6);
  {
    uint8_t  req[19 + 6] = { 1, 0, 0x40, 0, [19] = 0x28 };
    uint64_t addr[3] = { REQ_GPA, RESP_GPA, DATA_GPA };
    uint32_t len[3] = { sizeof req, RESP_SIZE, BLOCK };
    bool     writable[3] = { false, true, true };
    uint8_t  resp[RESP_SIZE];

    g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
    offer (f, &f->rq, 2, 3, addr, len, writable);
    g_assert_cmpuint (wait_used (f, &f->rq), ==, RESP_SIZE);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[11], ==, VIRTIO_SCSI_S_OK);
    g_assert_cmpuint (resp[10], ==, 2);
    g_assert_cmphex (resp[12 + 2], ==, 0x05);
    g_assert_cmphex (resp[12 + 12], ==, 0x24);
    /* ...and TEST UNIT READY fits. */
    req[19] = 0x00;
    g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
    offer (f, &f->rq, 2, 2, addr, len, writable);
    wait_used (f, &f->rq);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[10], ==, 0);
  }
  /* A smaller sense area: the sense is cut to it and the data-in follows it. */
  cw (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, cdb_size), 4, 32);
  cw (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, sense_size), 4, 8);
  {
    uint8_t  req[REQ_SIZE] = { 1, 0, 0x40, 0, [19] = 0x12, [23] = 36 };
    uint64_t addr[2] = { REQ_GPA, RESP_GPA };
    uint32_t len[2] = { REQ_SIZE, 12 + 8 + 36 };
    bool     writable[2] = { false, true };
    uint8_t  resp[12 + 8 + 36];

    g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
    offer (f, &f->rq, 2, 2, addr, len, writable);
    g_assert_cmpuint (wait_used (f, &f->rq), ==, 12 + 8 + 36);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[10], ==, 0);
    g_assert_cmphex (resp[20], ==, 0x05); /* INQUIRY data right after the 8 sense bytes */
    g_assert_cmphex (resp[21], ==, 0x80);
    /* A failing command: 8 bytes of sense. */
    req[19] = 0xff;
    g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
    offer (f, &f->rq, 2, 2, addr, len, writable);
    g_assert_cmpuint (wait_used (f, &f->rq), ==, 12 + 8);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[0], ==, 8);
    g_assert_cmpuint (resp[10], ==, 2);
    g_assert_cmphex (resp[12], ==, 0x70);
  }
  g_assert_false (device_broken (f));

  /* No room for the whole response: nowhere to report, the device is broken. */
  {
    uint64_t addr[2] = { REQ_GPA, RESP_GPA };
    uint32_t len[2] = { REQ_SIZE, 12 + 7 };
    bool     writable[2] = { false, true };

    g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
    offer (f, &f->rq, 2, 2, addr, len, writable);
    run_io (f);
    g_test_assert_expected_messages ();
    g_assert_true (device_broken (f));
  }
}

static void
test_virtio_no_response (VFixture *f, gconstpointer data)
{
  uint64_t addr[1] = { REQ_GPA };
  uint32_t len[1] = { REQ_SIZE };
  bool     writable[1] = { false };

  driver_init (f);
  g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
  offer (f, &f->rq, 2, 1, addr, len, writable);
  run_io (f);
  g_test_assert_expected_messages ();
  g_assert_true (device_broken (f));
  /* A reset makes it work again. */
  driver_init (f);
  g_assert_false (device_broken (f));
  g_assert_cmpuint (COMMAND (f, NULL, 36, 0x12, 0, 0, 0, 36, 0).status, ==, 0);
}

/* A control request: @req (@req_len bytes), a response of @resp_len bytes into @resp. */
static uint32_t
control (VFixture *f, const void *req, uint32_t req_len, void *resp, uint32_t resp_len)
{
  uint64_t addr[2] = { REQ_GPA, RESP_GPA };
  uint32_t len[2] = { req_len, resp_len };
  bool     writable[2] = { false, true };
  uint32_t used;

  g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, req_len));
  g_assert_true (vr_memory_write (f->mem, RESP_GPA, "\xee\xee\xee\xee\xee\xee\xee\xee", 8));
  offer (f, &f->cq, 0, 2, addr, len, writable);
  used = wait_used (f, &f->cq);
  g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, resp_len));
  return used;
}

static void
test_virtio_control (VFixture *f, gconstpointer data)
{
  struct virtio_scsi_ctrl_tmf_req tmf = {
    .type = GUINT32_TO_LE (VIRTIO_SCSI_T_TMF),
    .subtype = GUINT32_TO_LE (VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET),
    .lun = { 1, 0, 0x40, 0 },
  };
  struct virtio_scsi_ctrl_an_req an = {
    .type = GUINT32_TO_LE (VIRTIO_SCSI_T_AN_QUERY),
    .lun = { 1, 0, 0x40, 0 },
    .event_requested = GUINT32_TO_LE (1u << 4),
  };
  uint8_t resp[8];
  Resp    r;

  driver_init (f);
  COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  COMMAND (f, NULL, 0, 0x1e, 0, 0, 0, 1, 0); /* locked */

  /* A LUN reset: FUNCTION COMPLETE; the drive reports the reset, and the lock is gone. */
  g_assert_cmpuint (control (f, &tmf, sizeof tmf, resp, 1), ==, 1);
  g_assert_cmpuint (resp[0], ==, 0);
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmphex (r.sense[2], ==, 0x06);
  g_assert_cmphex (r.sense[12], ==, 0x29);
  r = COMMAND (f, NULL, 0, 0x1b, 0, 0, 0, 0x02, 0);
  g_assert_cmpuint (r.status, ==, 0);

  /* Aborts: nothing to abort, complete. */
  tmf.subtype = GUINT32_TO_LE (VIRTIO_SCSI_T_TMF_ABORT_TASK);
  control (f, &tmf, sizeof tmf, resp, 1);
  g_assert_cmpuint (resp[0], ==, 0);
  /* An unknown function: rejected; another target: bad target. */
  tmf.subtype = GUINT32_TO_LE (99);
  control (f, &tmf, sizeof tmf, resp, 1);
  g_assert_cmpuint (resp[0], ==, VIRTIO_SCSI_S_FUNCTION_REJECTED);
  tmf.subtype = GUINT32_TO_LE (VIRTIO_SCSI_T_TMF_ABORT_TASK);
  tmf.lun[1] = 3;
  control (f, &tmf, sizeof tmf, resp, 1);
  g_assert_cmpuint (resp[0], ==, VIRTIO_SCSI_S_BAD_TARGET);

  /* Asynchronous notification: no events. */
  g_assert_cmpuint (control (f, &an, sizeof an, resp, 5), ==, 5);
  g_assert_cmpuint (resp[0] | resp[1] | resp[2] | resp[3], ==, 0);
  g_assert_cmpuint (resp[4], ==, VIRTIO_SCSI_S_OK);
  an.type = GUINT32_TO_LE (VIRTIO_SCSI_T_AN_SUBSCRIBE);
  control (f, &an, sizeof an, resp, 5);
  g_assert_cmpuint (resp[4], ==, VIRTIO_SCSI_S_OK);
  g_assert_false (device_broken (f));

  /* A truncated one breaks the device. */
  {
    uint64_t addr[2] = { REQ_GPA, RESP_GPA };
    uint32_t len[2] = { sizeof tmf - 1, 1 };
    bool     writable[2] = { false, true };

    g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
    offer (f, &f->cq, 0, 2, addr, len, writable);
    run_io (f);
    g_test_assert_expected_messages ();
    g_assert_true (device_broken (f));
  }
}

static void
test_virtio_control_unknown (VFixture *f, gconstpointer data)
{
  uint32_t type = GUINT32_TO_LE (7);
  uint64_t addr[2] = { REQ_GPA, RESP_GPA };
  uint32_t len[2] = { 24, 8 };
  bool     writable[2] = { false, true };

  driver_init (f);
  g_assert_true (vr_memory_write (f->mem, REQ_GPA, &type, sizeof type));
  g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
  offer (f, &f->cq, 0, 2, addr, len, writable);
  run_io (f);
  g_test_assert_expected_messages ();
  g_assert_true (device_broken (f));
}

static void
test_virtio_snapshot (VFixture *f, gconstpointer data)
{
  g_autoptr (GError)   error = NULL;
  g_autoptr (GVariant) state = NULL, file = NULL, again = NULL;
  VrVirtioHost         host = { .memory = f->mem,
                                .irq = f->irq,
                                .pci_host = f->host,
                                .io_context = f->io,
                                .slot = SLOT,
                                .gsi = 16 + SLOT % 8 };
  g_autofree char     *medium = NULL;
  Resp                 r;

  driver_init (f);
  COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  COMMAND (f, NULL, 0, 0x1e, 0, 0, 0, 1, 0); /* locked */
  cw (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, sense_size), 4, 64);

  f->dev->ops->quiesce (f->dev);
  state = g_variant_ref_sink (f->dev->ops->save (f->dev));
  file = through_file (g_variant_ref (state));

  /* Another device in the same slot takes the state. */
  vr_device_destroy (f->dev);
  f->dev = vr_virtio_scsi_new (&host, NULL, v_on_changed, f, &error);
  g_assert_no_error (error);
  map_bars (f); /* (the PCI host's own state would do it) */
  vr_device_reset (f->dev);
  g_assert_true (f->dev->ops->load (f->dev, file, &error));
  g_assert_no_error (error);
  again = g_variant_ref_sink (f->dev->ops->save (f->dev));
  g_assert_true (g_variant_equal (state, again));
  g_assert_cmpint (g_atomic_int_get (&f->changed), ==, 1); /* none before, f->iso now */
  medium = vr_virtio_scsi_get_medium (f->dev);
  g_assert_cmpstr (medium, ==, f->iso);
  g_assert_cmpuint (cr (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, sense_size), 4), ==,
                    64);
  /* Still locked; the driver's sense size in use. */
  {
    uint8_t  req[REQ_SIZE] = { 1, 0, 0x40, 0, [19] = 0x1b, [23] = 0x02 };
    uint64_t addr[2] = { REQ_GPA, RESP_GPA };
    uint32_t len[2] = { REQ_SIZE, 12 + 64 };
    bool     writable[2] = { false, true };
    uint8_t  resp[12 + 64];

    g_assert_true (vr_memory_write (f->mem, REQ_GPA, req, sizeof req));
    offer (f, &f->rq, 2, 2, addr, len, writable);
    g_assert_cmpuint (wait_used (f, &f->rq), ==, 12 + 64);
    g_assert_true (vr_memory_read (f->mem, RESP_GPA, resp, sizeof resp));
    g_assert_cmpuint (resp[10], ==, 2);
    g_assert_cmphex (resp[12 + 12], ==, 0x53);
  }
  cw (f, DEVICE_CFG + offsetof (struct virtio_scsi_config, sense_size), 4, 96);

  /* The image gone: the load works, the drive is empty, the machine is told. (A new
   * snapshot: the rings have moved on since the first.) */
  f->dev->ops->quiesce (f->dev);
  g_clear_pointer (&state, g_variant_unref);
  g_clear_pointer (&file, g_variant_unref);
  state = g_variant_ref_sink (f->dev->ops->save (f->dev));
  file = through_file (g_variant_ref (state));
  g_assert_cmpint (g_unlink (f->iso), ==, 0);
  vr_device_reset (f->dev);
  g_test_expect_message ("vireo-engine", G_LOG_LEVEL_MESSAGE, "*medium is gone*");
  g_assert_true (f->dev->ops->load (f->dev, file, &error));
  g_test_assert_expected_messages ();
  g_assert_cmpint (g_atomic_int_get (&f->changed), ==, 2);
  g_assert_null (vr_virtio_scsi_get_medium (f->dev));
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmphex (r.sense[12], ==, 0x28);
  r = COMMAND (f, NULL, 0, 0x00, 0, 0, 0, 0, 0);
  g_assert_cmphex (r.sense[12], ==, 0x3a);
}

/* ---- main --------------------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
#define VADD(path, func) g_test_add (path, VFixture, NULL, vfixture_setup, func, vfixture_teardown)

  ADD ("/scsi-cd/no-medium", test_no_medium);
  ADD ("/scsi-cd/unit-attention", test_unit_attention);
  ADD ("/scsi-cd/inquiry", test_inquiry);
  ADD ("/scsi-cd/read-capacity", test_read_capacity);
  ADD ("/scsi-cd/read", test_read);
  ADD ("/scsi-cd/read-limits", test_read_limits);
  ADD ("/scsi-cd/read-toc", test_read_toc);
  ADD ("/scsi-cd/get-configuration", test_get_configuration);
  ADD ("/scsi-cd/mode-sense", test_mode_sense);
  ADD ("/scsi-cd/event-status", test_event_status);
  ADD ("/scsi-cd/eject", test_eject);
  ADD ("/scsi-cd/bad-commands", test_bad_commands);
  ADD ("/scsi-cd/other-commands", test_other_commands);
  ADD ("/scsi-cd/reset", test_reset);
  ADD ("/scsi-cd/snapshot", test_snapshot);
  ADD ("/scsi-cd/concurrent-change", test_concurrent_change);
  VADD ("/virtio-scsi/config", test_virtio_config);
  VADD ("/virtio-scsi/commands", test_virtio_commands);
  VADD ("/virtio-scsi/hostile", test_virtio_hostile);
  VADD ("/virtio-scsi/no-response", test_virtio_no_response);
  VADD ("/virtio-scsi/control", test_virtio_control);
  VADD ("/virtio-scsi/control-unknown", test_virtio_control_unknown);
  VADD ("/virtio-scsi/snapshot", test_virtio_snapshot);

#undef ADD
#undef VADD
  return g_test_run ();
}
