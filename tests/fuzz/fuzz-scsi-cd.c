/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the CD-ROM drive's command parser (scsi/vr-scsi-cd.c): arbitrary CDBs of any
 * length against data-in buffers of any size, scattered over several pieces, with medium
 * changes, resets and snapshot round trips in between. The drive must answer every one with
 * a well-formed result, write only inside the buffer it was given, and never crash.
 *
 * Input: byte 0 flags (bit 0: a medium at the start), then records until the input ends:
 *   byte 0   CDB length (0-32), or an action: 0xf0 put the image in, 0xf1 eject (host),
 *            0xf2 reset, 0xf3 save and load into the drive again;
 *   byte 1   pieces of the data-in buffer (1-4, low 2 bits + 1), bit 7: no buffer at all
 *   byte 2-3 data-in length, little-endian (0-65535)
 *   then the CDB's bytes.
 * The image: 40 blocks of 2048 bytes and 1000 more, in a memfd.
 */

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scsi/vr-scsi-cd.h"

#define IMAGE_SIZE (40 * 2048 + 1000)
#define CANARY     0xa5
#define GAP        64

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
quiet (const char *domain, GLogLevelFlags level, const char *message, gpointer user_data)
{
}

static const char *
image_path (void)
{
  static char *path;

  if (path == NULL)
    {
      g_autofree uint8_t *bytes = g_malloc (IMAGE_SIZE);
      int                 fd = memfd_create ("fuzz-scsi-cd", MFD_CLOEXEC);

      if (fd < 0)
        abort ();
      for (size_t i = 0; i < IMAGE_SIZE; i++)
        bytes[i] = (uint8_t) (i * 31 + i / 2048);
      if (write (fd, bytes, IMAGE_SIZE) != IMAGE_SIZE)
        abort ();
      path = g_strdup_printf ("/proc/self/fd/%d", fd);
      g_log_set_default_handler (quiet, NULL);
    }
  return path;
}

static void
check (bool ok)
{
  if (!ok)
    abort ();
}

/* One command into a buffer of @len bytes in @pieces pieces, each followed by a gap of
 * canary bytes that must stay untouched. */
static void
one_command (VrScsiCd      *cd,
             const uint8_t *cdb,
             size_t         cdb_len,
             unsigned       pieces,
             size_t         len,
             bool           no_buffer)
{
  g_autofree uint8_t *buf = g_malloc (len + GAP * (pieces + 1));
  struct iovec        iov[4];
  size_t              at = 0, off = GAP, per = len / pieces;
  VrScsiResult        r;

  memset (buf, CANARY, len + GAP * (pieces + 1));
  for (unsigned i = 0; i < pieces; i++)
    {
      size_t l = i + 1 < pieces ? per : len - at;

      iov[i] = (struct iovec){ .iov_base = buf + off, .iov_len = l };
      at += l;
      off += l + GAP;
    }
  if (no_buffer)
    vr_scsi_cd_command (cd, cdb, cdb_len, NULL, 0, len, &r);
  else
    vr_scsi_cd_command (cd, cdb, cdb_len, iov, pieces, len, &r);

  check (r.status == VR_SCSI_STATUS_GOOD || r.status == VR_SCSI_STATUS_CHECK_CONDITION);
  if (no_buffer)
    len = 0;
  check (r.written <= len && r.written + r.residual == len);
  if (r.status == VR_SCSI_STATUS_CHECK_CONDITION)
    check (r.sense_len == VR_SCSI_SENSE_LEN && r.sense[0] == 0x70 && r.written == 0 && !r.overrun);
  else
    check (r.sense_len == 0);
  if (r.overrun)
    check (r.written == 0);
  /* The gaps, the bytes before the first piece, and after the last. */
  off = 0;
  for (unsigned i = 0; i <= pieces; i++)
    {
      for (size_t j = 0; j < GAP; j++)
        check (buf[off + j] == CANARY);
      if (i < pieces)
        off += GAP + iov[i].iov_len;
    }
  /* Nothing written beyond what the result says (in buffer order). */
  at = 0;
  for (unsigned i = 0; i < pieces && !no_buffer; i++)
    for (size_t j = 0; j < iov[i].iov_len; j++, at++)
      if (at >= r.written)
        check (((uint8_t *) iov[i].iov_base)[j] == CANARY);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char          *path = image_path ();
  g_autoptr (VrScsiCd) cd = vr_scsi_cd_new ();
  unsigned             commands = 0;

  if (size < 1)
    return 0;
  if ((data[0] & 1) && !vr_scsi_cd_set_medium (cd, path, NULL))
    abort ();
  data++;
  size--;

  while (size >= 4 && commands++ < 64)
    {
      uint8_t  op = data[0];
      unsigned pieces = (data[1] & 3) + 1;
      bool     no_buffer = data[1] & 0x80;
      size_t   len = (size_t) data[2] | (size_t) data[3] << 8;
      size_t   cdb_len = op <= 32 ? op : 0;

      data += 4;
      size -= 4;
      switch (op)
        {
        case 0xf0:
          check (vr_scsi_cd_set_medium (cd, path, NULL));
          continue;
        case 0xf1:
          check (vr_scsi_cd_set_medium (cd, NULL, NULL));
          continue;
        case 0xf2:
          vr_scsi_cd_reset (cd);
          continue;
        case 0xf3:
          {
            g_autoptr (GVariant) state = g_variant_ref_sink (vr_scsi_cd_save (cd));

            check (vr_scsi_cd_load (cd, state, NULL));
          }
          continue;
        default:
          break;
        }
      cdb_len = MIN (cdb_len, size);
      one_command (cd, data, cdb_len, pieces, len, no_buffer);
      data += cdb_len;
      size -= cdb_len;
    }
  return 0;
}
