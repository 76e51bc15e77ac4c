/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A read-only CD/DVD-ROM logical unit (SPC-3, MMC-5), for installers and firmware to boot
 * and read an ISO image. It knows nothing of its transport: virtio-scsi (../virtio/scsi.c)
 * hands it CDBs and data-in buffers. Why virtio-scsi and not AHCI/ATAPI is said there.
 *
 * Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard data, VPD pages 0x00, 0x80,
 * 0x83), REPORT LUNS, READ CAPACITY(10), READ(10), READ(12), READ TOC/PMA/ATIP (formats 0
 * and 1, LBA and MSF), GET CONFIGURATION (profile list, core, morphing, removable medium,
 * random readable), MODE SENSE(6)/(10) (pages 0x01, 0x2a, 0x3f; current, changeable and
 * default values), GET EVENT STATUS NOTIFICATION (polled, media class), START STOP UNIT,
 * PREVENT ALLOW MEDIUM REMOVAL, READ DISC INFORMATION, READ TRACK INFORMATION, MECHANISM
 * STATUS and SET CD SPEED (accepted, ignored). Anything else is ILLEGAL REQUEST, INVALID
 * COMMAND OPERATION CODE.
 *
 * The order of checks for every command: a CDB shorter than its opcode's group says →
 * INVALID FIELD IN CDB; a pending unit attention is reported (and cleared) first, except to
 * INQUIRY, REPORT LUNS, REQUEST SENSE, GET CONFIGURATION and GET EVENT STATUS NOTIFICATION,
 * which never report one (SPC-3 5.9.7, MMC-5 4.1.6.1); an unknown opcode → INVALID COMMAND
 * OPERATION CODE; a command that reads the medium with none in the drive → NOT READY, MEDIUM
 * NOT PRESENT; then the command's own fields. The sense of the last command is kept for
 * REQUEST SENSE (firmware such as SeaBIOS asks for it after a failed TEST UNIT READY instead
 * of looking at the autosense data).
 *
 * Lengths: an allocation length shorter than the data truncates it (never an error), the
 * data-in buffer truncates it further; a READ's blocks must fit in the buffer whole, or the
 * result says "overrun" and nothing is read. LBAs and counts are checked in 64-bit
 * arithmetic against the medium's size. The image need not be a multiple of 2048 bytes: the
 * last block reads with zeroes after the end of the file.
 *
 * Locks: `lock` guards every field of VrScsiCd. A READ takes a reference on the Medium (fd,
 * size) under the lock and reads into the guest's buffers with preadv() without it, so a
 * medium change or another command never waits for the disk; the old medium is closed when
 * its last read is done. The medium callback runs with no lock held.
 */

#include "vr-scsi-cd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../hw/state.h"
#include "../vr-machine.h"

/* Opcodes. */
#define OP_TEST_UNIT_READY   0x00
#define OP_REQUEST_SENSE     0x03
#define OP_INQUIRY           0x12
#define OP_MODE_SENSE_6      0x1a
#define OP_START_STOP_UNIT   0x1b
#define OP_PREVENT_ALLOW     0x1e
#define OP_READ_CAPACITY_10  0x25
#define OP_READ_10           0x28
#define OP_READ_TOC          0x43
#define OP_GET_CONFIGURATION 0x46
#define OP_GET_EVENT_STATUS  0x4a
#define OP_READ_DISC_INFO    0x51
#define OP_READ_TRACK_INFO   0x52
#define OP_MODE_SENSE_10     0x5a
#define OP_REPORT_LUNS       0xa0
#define OP_READ_12           0xa8
#define OP_SET_CD_SPEED      0xbb
#define OP_MECHANISM_STATUS  0xbd

/* Additional sense codes (ASC, ASCQ). */
#define ASC_NONE                 0x00, 0x00
#define ASC_UNRECOVERED_READ     0x11, 0x00
#define ASC_INVALID_OPCODE       0x20, 0x00
#define ASC_LBA_OUT_OF_RANGE     0x21, 0x00
#define ASC_INVALID_FIELD        0x24, 0x00
#define ASC_MEDIUM_CHANGED       0x28, 0x00
#define ASC_POWER_ON_RESET       0x29, 0x00
#define ASC_SAVING_NOT_SUPPORTED 0x39, 0x00
#define ASC_NO_MEDIUM            0x3a, 0x00
#define ASC_REMOVAL_PREVENTED    0x53, 0x02

/* GET EVENT STATUS NOTIFICATION, media class event codes. */
#define MEDIA_EVENT_NONE    0
#define MEDIA_EVENT_NEW     2
#define MEDIA_EVENT_REMOVAL 3

/* MMC profiles. */
#define PROFILE_CD_ROM  0x0008
#define PROFILE_DVD_ROM 0x0010
/* Larger than an 80-minute CD: call it a DVD. */
#define CD_MAX_BLOCKS (80u * 60 * 75)

#define VENDOR    "VIREO   "         /* 8 bytes */
#define PRODUCT   "Virtual CD-ROM  " /* 16 bytes */
#define REVISION  "1.0 "             /* 4 bytes */
#define SERIAL    "VIREO-CD-0"
#define SPEED_KBS (50 * 176) /* "50x" */

/* The longest answer we build (GET CONFIGURATION with every feature is ~60 bytes). */
#define REPLY_MAX 256

typedef struct
{
  gint     ref;
  int      fd;
  uint64_t size;   /* bytes */
  uint64_t blocks; /* 2048-byte blocks, the last maybe partial */
  char    *path;
} Medium;

struct _VrScsiCd
{
  GMutex             lock;
  Medium            *medium; /* NULL: no medium */
  bool               locked; /* PREVENT ALLOW MEDIUM REMOVAL */
  uint8_t            ua_asc; /* pending unit attention (0: none) */
  uint8_t            ua_ascq;
  uint8_t            event;     /* pending media event (MEDIA_EVENT_*) */
  uint32_t           sense_len; /* the last command's sense, for REQUEST SENSE */
  uint8_t            sense[VR_SCSI_SENSE_LEN];
  VrScsiCdMediumFunc medium_func;
  gpointer           medium_data;
};

/* One command being answered. */
typedef struct
{
  uint8_t data[REPLY_MAX];
  size_t  len;   /* bytes of data[] */
  size_t  alloc; /* the CDB's allocation length */
  uint8_t key;   /* non-zero: CHECK CONDITION with key/asc/ascq */
  uint8_t asc;
  uint8_t ascq;
  bool    ejected; /* the guest ejected the medium: tell the machine */
  /* READ: what to read, outside the lock. */
  Medium  *read_medium;
  uint64_t read_offset;
  uint64_t read_bytes;
} Reply;

/* ---- helpers ------------------------------------------------------------------------------ */

static inline uint16_t
get16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

static inline uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline void
put16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
}

static inline void
put32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

static bool
fail (Reply *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
  r->key = key;
  r->asc = asc;
  r->ascq = ascq;
  return false;
}

/* Appends @n bytes (zeroed) to the reply; returns where they start. */
static uint8_t *
reply_add (Reply *r, size_t n)
{
  uint8_t *p;

  g_assert (r->len + n <= sizeof r->data);
  p = r->data + r->len;
  memset (p, 0, n);
  r->len += n;
  return p;
}

static void
make_sense (uint8_t sense[VR_SCSI_SENSE_LEN], uint8_t key, uint8_t asc, uint8_t ascq)
{
  memset (sense, 0, VR_SCSI_SENSE_LEN);
  sense[0] = 0x70; /* current error, fixed format */
  sense[2] = key & 0x0f;
  sense[7] = VR_SCSI_SENSE_LEN - 8; /* additional sense length */
  sense[12] = asc;
  sense[13] = ascq;
}

static size_t
iov_from_buf (const struct iovec *iov, unsigned n, size_t limit, const void *buf, size_t len)
{
  size_t done = 0;

  len = MIN (len, limit);
  for (unsigned i = 0; i < n && done < len; i++)
    {
      size_t chunk = MIN (iov[i].iov_len, len - done);

      memcpy (iov[i].iov_base, (const uint8_t *) buf + done, chunk);
      done += chunk;
    }
  return done;
}

static Medium *
medium_ref (Medium *m)
{
  g_atomic_int_inc (&m->ref);
  return m;
}

static void
medium_unref (Medium *m)
{
  if (m && g_atomic_int_dec_and_test (&m->ref))
    {
      close (m->fd);
      g_free (m->path);
      g_free (m);
    }
}

static Medium *
medium_open (const char *path, GError **error)
{
  struct stat st;
  off_t       end;
  Medium     *m;
  int         fd;

  /* O_NONBLOCK: a FIFO must not hang us; it is refused below. */
  do
    fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    {
      int e = errno;

      g_set_error (error, VR_ERROR, VR_ERROR_IO, "Cannot open the disc image “%s”: %s", path,
                   g_strerror (e));
      return NULL;
    }
  if (fstat (fd, &st) < 0 || !(S_ISREG (st.st_mode) || S_ISBLK (st.st_mode)))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_IO,
                   "“%s” is not a disc image (not a file or a block device)", path);
      close (fd);
      return NULL;
    }
  end = lseek (fd, 0, SEEK_END);
  if (end <= 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_IO, "The disc image “%s” is empty", path);
      close (fd);
      return NULL;
    }
  m = g_new0 (Medium, 1);
  m->ref = 1;
  m->fd = fd;
  m->size = (uint64_t) end;
  m->blocks = (m->size + VR_SCSI_CD_BLOCK - 1) / VR_SCSI_CD_BLOCK;
  m->path = g_strdup (path);
  return m;
}

/* ---- the drive ---------------------------------------------------------------------------- */

VrScsiCd *
vr_scsi_cd_new (void)
{
  VrScsiCd *cd = g_new0 (VrScsiCd, 1);

  g_mutex_init (&cd->lock);
  return cd;
}

void
vr_scsi_cd_free (VrScsiCd *cd)
{
  if (cd == NULL)
    return;
  medium_unref (cd->medium);
  g_mutex_clear (&cd->lock);
  g_free (cd);
}

void
vr_scsi_cd_set_medium_callback (VrScsiCd *cd, VrScsiCdMediumFunc func, gpointer data)
{
  g_return_if_fail (cd != NULL);

  g_mutex_lock (&cd->lock);
  cd->medium_func = func;
  cd->medium_data = data;
  g_mutex_unlock (&cd->lock);
}

/* Lock held: a medium change the guest must notice. */
static void
raise_change (VrScsiCd *cd)
{
  cd->ua_asc = 0x28;
  cd->ua_ascq = 0x00;
  cd->event = cd->medium ? MEDIA_EVENT_NEW : MEDIA_EVENT_REMOVAL;
}

bool
vr_scsi_cd_set_medium (VrScsiCd *cd, const char *path, GError **error)
{
  Medium *m = NULL, *old;

  g_return_val_if_fail (cd != NULL, false);
  g_return_val_if_fail (error == NULL || *error == NULL, false);

  /* Opened outside the lock: a slow file system does not hold up the guest's commands. */
  if (path != NULL && (m = medium_open (path, error)) == NULL)
    return false;

  g_mutex_lock (&cd->lock);
  old = cd->medium;
  cd->medium = m;
  raise_change (cd);
  g_mutex_unlock (&cd->lock);
  medium_unref (old);
  return true;
}

char *
vr_scsi_cd_get_medium (VrScsiCd *cd)
{
  char *path;

  g_return_val_if_fail (cd != NULL, NULL);

  g_mutex_lock (&cd->lock);
  path = cd->medium ? g_strdup (cd->medium->path) : NULL;
  g_mutex_unlock (&cd->lock);
  return path;
}

void
vr_scsi_cd_reset (VrScsiCd *cd)
{
  g_return_if_fail (cd != NULL);

  g_mutex_lock (&cd->lock);
  cd->locked = false;
  cd->sense_len = 0;
  if (cd->ua_asc == 0)
    {
      cd->ua_asc = 0x29;
      cd->ua_ascq = 0x00;
    }
  g_mutex_unlock (&cd->lock);
}

/* ---- the commands (lock held) -------------------------------------------------------------- */

static bool
is_dvd (VrScsiCd *cd)
{
  return cd->medium && cd->medium->blocks > CD_MAX_BLOCKS;
}

static bool
cmd_inquiry (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  bool     evpd = cdb[1] & 0x01;
  uint8_t  page = cdb[2];
  uint8_t *p;

  r->alloc = get16 (cdb + 3);
  if (cdb[1] & 0xfe)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  if (!evpd)
    {
      if (page != 0)
        return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
      p = reply_add (r, 36);
      p[0] = 0x05;   /* connected, CD/DVD device */
      p[1] = 0x80;   /* removable */
      p[2] = 0x05;   /* SPC-3 */
      p[3] = 0x02;   /* response data format 2 */
      p[4] = 36 - 5; /* additional length */
      p[7] = 0x02;   /* CmdQue: commands may be queued */
      memcpy (p + 8, VENDOR, 8);
      memcpy (p + 16, PRODUCT, 16);
      memcpy (p + 32, REVISION, 4);
      return true;
    }

  p = reply_add (r, 4);
  p[0] = 0x05;
  p[1] = page;
  switch (page)
    {
    case 0x00: /* supported pages */
      {
        static const uint8_t pages[] = { 0x00, 0x80, 0x83 };

        memcpy (reply_add (r, sizeof pages), pages, sizeof pages);
      }
      break;
    case 0x80: /* unit serial number */
      memcpy (reply_add (r, strlen (SERIAL)), SERIAL, strlen (SERIAL));
      break;
    case 0x83: /* device identification: one T10 vendor ID designator, ASCII */
      {
        const size_t id_len = 8 + 16 + strlen (SERIAL);
        uint8_t     *d = reply_add (r, 4 + id_len);

        d[0] = 0x02; /* code set: ASCII */
        d[1] = 0x01; /* associated with the logical unit; T10 vendor ID based */
        d[3] = (uint8_t) id_len;
        memcpy (d + 4, VENDOR, 8);
        memcpy (d + 12, PRODUCT, 16);
        memcpy (d + 28, SERIAL, strlen (SERIAL));
      }
      break;
    default:
      return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    }
  put16 (r->data + 2, (uint16_t) (r->len - 4));
  return true;
}

static bool
cmd_request_sense (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint8_t *p;

  r->alloc = cdb[4];
  if (cdb[1] & 0x01) /* descriptor format: we only have fixed */
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  p = reply_add (r, VR_SCSI_SENSE_LEN);
  if (cd->sense_len > 0)
    memcpy (p, cd->sense, VR_SCSI_SENSE_LEN);
  else if (cd->ua_asc != 0)
    {
      make_sense (p, VR_SCSI_SENSE_UNIT_ATTENTION, cd->ua_asc, cd->ua_ascq);
      cd->ua_asc = cd->ua_ascq = 0;
    }
  else
    make_sense (p, VR_SCSI_SENSE_NO_SENSE, ASC_NONE);
  return true;
}

static bool
cmd_report_luns (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint8_t *p;

  r->alloc = get32 (cdb + 6);
  switch (cdb[2])
    {
    case 0x00: /* every logical unit */
    case 0x02:
      p = reply_add (r, 16);
      put32 (p, 8); /* one LUN: 0, eight zero bytes */
      return true;
    case 0x01: /* well-known logical units only: none */
      reply_add (r, 8);
      return true;
    default:
      return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    }
}

static bool
cmd_read_capacity (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint64_t last = cd->medium->blocks - 1;
  uint8_t *p = reply_add (r, 8);

  r->alloc = 8;
  put32 (p, last > 0xfffffffe ? 0xffffffff : (uint32_t) last);
  put32 (p + 4, VR_SCSI_CD_BLOCK);
  return true;
}

static bool
cmd_read (VrScsiCd *cd, const uint8_t *cdb, size_t data_len, Reply *r)
{
  bool     twelve = cdb[0] == OP_READ_12;
  uint64_t lba = get32 (cdb + 2);
  uint64_t count = twelve ? get32 (cdb + 6) : get16 (cdb + 7);
  uint64_t blocks = cd->medium->blocks;

  /* No overflow: lba and count are below 2^32, blocks below 2^53. */
  if (lba > blocks || count > blocks - lba)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
  if (count > VR_SCSI_CD_MAX_TRANSFER / VR_SCSI_CD_BLOCK)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  r->read_bytes = count * VR_SCSI_CD_BLOCK;
  r->alloc = (size_t) r->read_bytes;
  if (r->read_bytes > data_len || r->read_bytes == 0)
    return true; /* overrun (the caller sees read_bytes > data_len), or nothing to read */
  r->read_offset = lba * VR_SCSI_CD_BLOCK;
  r->read_medium = medium_ref (cd->medium);
  return true;
}

/* LBA → MSF (with the 2-second pregap), clamped to what 3 bytes hold. */
static void
put_msf (uint8_t *p, uint64_t lba)
{
  uint64_t f = lba + 150;
  uint64_t m = f / (60 * 75);

  p[0] = 0;
  if (m > 255)
    {
      p[1] = 255;
      p[2] = 59;
      p[3] = 74;
      return;
    }
  p[1] = (uint8_t) m;
  p[2] = (uint8_t) (f / 75 % 60);
  p[3] = (uint8_t) (f % 75);
}

static void
put_address (uint8_t *p, uint64_t lba, bool msf)
{
  if (msf)
    put_msf (p, lba);
  else
    put32 (p, lba > 0xffffffff ? 0xffffffff : (uint32_t) lba);
}

static bool
cmd_read_toc (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  bool     msf = cdb[1] & 0x02;
  uint8_t  format = cdb[2] & 0x0f;
  uint8_t  track = cdb[6];
  uint8_t *p;

  r->alloc = get16 (cdb + 7);
  /* SFF-8020 put the format in the top bits of the control byte. */
  if (format == 0)
    format = cdb[9] >> 6;
  switch (format)
    {
    case 0: /* TOC: track 1 (data) and the lead-out */
      if (track > 1 && track != 0xaa)
        return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
      p = reply_add (r, 4);
      p[2] = 1; /* first track */
      p[3] = 1; /* last track */
      if (track <= 1)
        {
          p = reply_add (r, 8);
          p[1] = 0x14; /* ADR 1 (position), control 4 (data track) */
          p[2] = 1;
          put_address (p + 4, 0, msf);
        }
      p = reply_add (r, 8);
      p[1] = 0x14;
      p[2] = 0xaa;
      put_address (p + 4, cd->medium->blocks, msf);
      break;
    case 1: /* session information: one session, starting with track 1 at 0 */
      p = reply_add (r, 12);
      p[2] = 1;
      p[3] = 1;
      p[5] = 0x14;
      p[6] = 1;
      put_address (p + 8, 0, msf);
      break;
    default:
      return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
    }
  put16 (r->data, (uint16_t) (r->len - 2));
  return true;
}

/* GET CONFIGURATION's features, in ascending order. */
static void
add_feature (Reply         *r,
             uint16_t       code,
             uint8_t        version,
             bool           current,
             const uint8_t *data,
             uint8_t        len)
{
  uint8_t *p = reply_add (r, 4 + (size_t) len);

  put16 (p, code);
  p[2] = (uint8_t) (version << 2 | (code <= 0x0003 ? 0x02 : 0) | (current ? 0x01 : 0));
  p[3] = len;
  memcpy (p + 4, data, len);
}

static bool
cmd_get_configuration (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint8_t  rt = cdb[1] & 0x03;
  uint16_t start = get16 (cdb + 2);
  uint16_t profile = cd->medium == NULL ? 0 : is_dvd (cd) ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
  const struct
  {
    uint16_t code;
    uint8_t  version;
    bool     current;
    uint8_t  len;
    uint8_t  data[8];
  } features[] = {
    /* clang-format off */
    /* Profile list: DVD-ROM, CD-ROM (descending). */
    { 0x0000, 0, true, 8,
      { PROFILE_DVD_ROM >> 8, PROFILE_DVD_ROM & 0xff, profile == PROFILE_DVD_ROM, 0,
        PROFILE_CD_ROM >> 8, PROFILE_CD_ROM & 0xff, profile == PROFILE_CD_ROM, 0 } },
    /* Core: physical interface SCSI (1). */
    { 0x0001, 2, true, 8, { 0, 0, 0, 1, 0, 0, 0, 0 } },
    /* Morphing: no asynchronous events, no operational change events. */
    { 0x0002, 1, true, 4, { 0, 0, 0, 0 } },
    /* Removable medium: tray, eject, lock. */
    { 0x0003, 0, true, 4, { 0x29, 0, 0, 0 } },
    /* Random readable: 2048-byte blocks, blocking 1 (16 for DVD), no page present. */
    { 0x0010, 0, profile != 0, 8,
      { 0, 0, VR_SCSI_CD_BLOCK >> 8, VR_SCSI_CD_BLOCK & 0xff, 0, is_dvd (cd) ? 16 : 1, 0, 0 } },
    /* clang-format on */
  };
  uint8_t *p;

  r->alloc = get16 (cdb + 7);
  if (rt == 3)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  p = reply_add (r, 8);
  put16 (p + 6, profile);
  for (gsize i = 0; i < G_N_ELEMENTS (features); i++)
    {
      if (features[i].code < start || (rt == 2 && features[i].code != start) ||
          (rt == 1 && !features[i].current))
        continue;
      add_feature (r, features[i].code, features[i].version, features[i].current, features[i].data,
                   features[i].len);
    }
  put32 (r->data, (uint32_t) (r->len - 4));
  return true;
}

/* Mode pages: @pc 0 current, 1 changeable (nothing is), 2 default. */
static void
add_mode_page (VrScsiCd *cd, Reply *r, uint8_t page, uint8_t pc)
{
  uint8_t *p;

  switch (page)
    {
    case 0x01: /* read-write error recovery */
      p = reply_add (r, 12);
      p[0] = 0x01;
      p[1] = 10;
      if (pc != 1)
        p[3] = 5; /* read retry count */
      break;
    case 0x2a: /* MM capabilities and mechanical status */
      p = reply_add (r, 22);
      p[0] = 0x2a;
      p[1] = 20;
      if (pc == 1)
        break;
      p[2] = 0x3b; /* reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM */
      p[3] = 0x00; /* writes nothing */
      p[4] = 0x40; /* multi-session */
      p[5] = 0x00; /* no CD-DA */
      /* Tray, eject, lock; the lock's state. */
      p[6] = 0x29 | (pc == 0 && cd->locked ? 0x02 : 0);
      put16 (p + 8, SPEED_KBS);  /* maximum read speed (obsolete) */
      put16 (p + 14, SPEED_KBS); /* current read speed (obsolete) */
      break;
    default:
      g_assert_not_reached ();
    }
}

static bool
cmd_mode_sense (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  bool    ten = cdb[0] == OP_MODE_SENSE_10;
  uint8_t pc = cdb[2] >> 6;
  uint8_t page = cdb[2] & 0x3f;
  uint8_t subpage = cdb[3];
  size_t  header = ten ? 8 : 4;

  r->alloc = ten ? get16 (cdb + 7) : cdb[4];
  if (pc == 3)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED);
  if (subpage != 0 && !(page == 0x3f && subpage == 0xff))
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  if (page != 0x01 && page != 0x2a && page != 0x3f)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);

  /* The header; MMC drives have no block descriptors and no device-specific parameter. */
  reply_add (r, header);
  if (page == 0x01 || page == 0x3f)
    add_mode_page (cd, r, 0x01, pc);
  if (page == 0x2a || page == 0x3f)
    add_mode_page (cd, r, 0x2a, pc);
  if (ten)
    put16 (r->data, (uint16_t) (r->len - 2));
  else
    r->data[0] = (uint8_t) (r->len - 1);
  return true;
}

static bool
cmd_get_event_status (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint8_t *p;

  r->alloc = get16 (cdb + 7);
  if (!(cdb[1] & 0x01)) /* asynchronous notification: not supported */
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  p = reply_add (r, 4);
  p[3] = 0x10; /* supported classes: media */
  if (!(cdb[4] & 0x10))
    {
      put16 (p, 2);
      p[2] = 0x80; /* no event available (of the classes asked for) */
      return true;
    }
  put16 (p, 6);
  p[2] = 0x04; /* media class */
  p = reply_add (r, 4);
  p[0] = cd->event;
  p[1] = cd->medium ? 0x02 : 0x00; /* media present; the door is never reported open */
  cd->event = MEDIA_EVENT_NONE;
  return true;
}

static bool
cmd_start_stop (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  bool start = cdb[4] & 0x01, loej = cdb[4] & 0x02;

  /* A power condition: LoEj and Start are ignored. */
  if ((cdb[4] >> 4) != 0 || !loej || start)
    return true;
  if (cd->locked)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED);
  if (cd->medium != NULL)
    {
      g_clear_pointer (&cd->medium, medium_unref);
      cd->event = MEDIA_EVENT_REMOVAL;
      r->ejected = true;
    }
  return true;
}

static bool
cmd_prevent_allow (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  cd->locked = cdb[4] & 0x01;
  return true;
}

static bool
cmd_read_disc_info (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint8_t *p;

  r->alloc = get16 (cdb + 7);
  if (cdb[1] & 0x07) /* only the standard disc information */
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  p = reply_add (r, 34);
  put16 (p, 32);
  p[2] = 0x0e;                /* last session complete, disc finalized, not erasable */
  p[3] = 1;                   /* first track */
  p[4] = 1;                   /* sessions */
  p[5] = 1;                   /* first track in the last session */
  p[6] = 1;                   /* last track in the last session */
  p[8] = 0x00;                /* CD-ROM disc type */
  put32 (p + 16, 0xffffffff); /* no next session: lead-in and lead-out unknown */
  put32 (p + 20, 0xffffffff);
  return true;
}

static bool
cmd_read_track_info (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  uint32_t address = get32 (cdb + 2);
  uint64_t blocks = cd->medium->blocks;
  bool     ok;
  uint8_t *p;

  r->alloc = get16 (cdb + 7);
  switch (cdb[1] & 0x03)
    {
    case 0: /* the track holding this LBA */
      ok = address < blocks;
      break;
    case 1: /* track number */
    case 2: /* session number: the first track of the session */
      ok = address == 1;
      break;
    default:
      ok = false;
      break;
    }
  if (!ok)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  p = reply_add (r, 36);
  put16 (p, 34);
  p[2] = 1;    /* track */
  p[3] = 1;    /* session */
  p[5] = 0x04; /* data track, recorded uninterrupted */
  p[6] = 0x01; /* data mode 1 */
  put32 (p + 24, blocks > 0xffffffff ? 0xffffffff : (uint32_t) blocks);           /* size */
  put32 (p + 28, blocks - 1 > 0xffffffff ? 0xffffffff : (uint32_t) (blocks - 1)); /* last */
  return true;
}

static bool
cmd_mechanism_status (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  r->alloc = get16 (cdb + 8);
  /* Idle, no changer, door closed, no slot tables. */
  reply_add (r, 8);
  return true;
}

static bool
cmd_nothing (VrScsiCd *cd, const uint8_t *cdb, Reply *r)
{
  return true;
}

enum
{
  NEEDS_MEDIUM = 1 << 0,
  NO_UA = 1 << 1, /* never reports (nor clears) a unit attention */
};

typedef struct
{
  uint8_t opcode;
  uint8_t flags;
  bool (*run) (VrScsiCd *cd, const uint8_t *cdb, Reply *r);
} Command;

static const Command commands[] = {
  { OP_TEST_UNIT_READY, NEEDS_MEDIUM, cmd_nothing },
  { OP_REQUEST_SENSE, NO_UA, cmd_request_sense },
  { OP_INQUIRY, NO_UA, cmd_inquiry },
  { OP_MODE_SENSE_6, 0, cmd_mode_sense },
  { OP_START_STOP_UNIT, 0, cmd_start_stop },
  { OP_PREVENT_ALLOW, 0, cmd_prevent_allow },
  { OP_READ_CAPACITY_10, NEEDS_MEDIUM, cmd_read_capacity },
  { OP_READ_10, NEEDS_MEDIUM, NULL },
  { OP_READ_TOC, NEEDS_MEDIUM, cmd_read_toc },
  { OP_GET_CONFIGURATION, NO_UA, cmd_get_configuration },
  { OP_GET_EVENT_STATUS, NO_UA, cmd_get_event_status },
  { OP_READ_DISC_INFO, NEEDS_MEDIUM, cmd_read_disc_info },
  { OP_READ_TRACK_INFO, NEEDS_MEDIUM, cmd_read_track_info },
  { OP_MODE_SENSE_10, 0, cmd_mode_sense },
  { OP_REPORT_LUNS, NO_UA, cmd_report_luns },
  { OP_READ_12, NEEDS_MEDIUM, NULL },
  { OP_SET_CD_SPEED, 0, cmd_nothing },
  { OP_MECHANISM_STATUS, 0, cmd_mechanism_status },
};

/* The CDB length an opcode's group code implies (SPC-3 4.3.5); 1 for the reserved and
 * vendor-specific groups, which we do not implement anyway. */
static size_t
cdb_length (uint8_t opcode)
{
  switch (opcode >> 5)
    {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 1;
    }
}

static const Command *
find_command (uint8_t opcode)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (commands[i].opcode == opcode)
      return &commands[i];
  return NULL;
}

/* Lock held. */
static bool
dispatch (VrScsiCd *cd, const uint8_t *cdb, size_t cdb_len, size_t data_len, Reply *r)
{
  const Command *c;

  if (cdb_len == 0 || cdb_len < cdb_length (cdb[0]))
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
  c = find_command (cdb[0]);
  if (cd->ua_asc != 0 && (c == NULL || !(c->flags & NO_UA)))
    {
      uint8_t asc = cd->ua_asc, ascq = cd->ua_ascq;

      cd->ua_asc = cd->ua_ascq = 0;
      return fail (r, VR_SCSI_SENSE_UNIT_ATTENTION, asc, ascq);
    }
  if (c == NULL)
    return fail (r, VR_SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
  if ((c->flags & NEEDS_MEDIUM) && cd->medium == NULL)
    return fail (r, VR_SCSI_SENSE_NOT_READY, ASC_NO_MEDIUM);
  if (c->run == NULL)
    return cmd_read (cd, cdb, data_len, r);
  return c->run (cd, cdb, r);
}

/* Reads @bytes at @offset of @m into the start of the iovecs (which hold at least @bytes):
 * straight into the guest's buffers, zeroes after the end of the file. Returns 0 or an errno
 * value. */
static int
read_medium (Medium *m, uint64_t offset, uint64_t bytes, const struct iovec *iov, unsigned n_iov)
{
  g_autofree struct iovec *v = g_new (struct iovec, MAX (n_iov, 1));
  unsigned                 n = 0, first = 0;
  uint64_t                 left = bytes;

  for (unsigned i = 0; i < n_iov && left > 0; i++)
    {
      size_t l = (size_t) MIN ((uint64_t) iov[i].iov_len, left);

      if (l == 0)
        continue;
      v[n++] = (struct iovec){ .iov_base = iov[i].iov_base, .iov_len = l };
      left -= l;
    }
  g_assert (left == 0);

  left = bytes;
  while (left > 0 && first < n)
    {
      unsigned cnt = MIN (n - first, (unsigned) IOV_MAX);
      ssize_t  got = preadv (m->fd, v + first, (int) cnt, (off_t) offset);

      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        return errno;
      if (got == 0)
        {
          /* The end of the image (a partial last block, or a file that shrank). */
          for (unsigned i = first; i < n; i++)
            memset (v[i].iov_base, 0, v[i].iov_len);
          return 0;
        }
      offset += (uint64_t) got;
      left -= (uint64_t) got;
      while (got > 0 && first < n)
        {
          if ((size_t) got >= v[first].iov_len)
            {
              got -= (ssize_t) v[first].iov_len;
              first++;
            }
          else
            {
              v[first].iov_base = (uint8_t *) v[first].iov_base + got;
              v[first].iov_len -= (size_t) got;
              got = 0;
            }
        }
    }
  return 0;
}

void
vr_scsi_cd_command (VrScsiCd           *cd,
                    const uint8_t      *cdb,
                    size_t              cdb_len,
                    const struct iovec *iov,
                    unsigned            n_iov,
                    size_t              data_len,
                    VrScsiResult       *result)
{
  Reply              reply = { 0 }, *r = &reply;
  size_t             total = 0;
  VrScsiCdMediumFunc func = NULL;
  gpointer           func_data = NULL;
  bool               ok;

  g_return_if_fail (cd != NULL);
  g_return_if_fail (result != NULL);
  g_return_if_fail (cdb != NULL || cdb_len == 0);
  g_return_if_fail (iov != NULL || n_iov == 0);

  for (unsigned i = 0; i < n_iov; i++)
    total += iov[i].iov_len;
  data_len = MIN (data_len, total);
  memset (result, 0, sizeof *result);

  g_mutex_lock (&cd->lock);
  ok = dispatch (cd, cdb, cdb_len, data_len, r);
  if (ok && r->read_bytes > data_len)
    result->overrun = true;
  else if (ok && r->read_medium == NULL)
    result->written = iov_from_buf (iov, n_iov, data_len, r->data, MIN (r->len, r->alloc));
  if (r->ejected)
    {
      func = cd->medium_func;
      func_data = cd->medium_data;
    }
  g_mutex_unlock (&cd->lock);

  if (r->read_medium != NULL)
    {
      int e = read_medium (r->read_medium, r->read_offset, r->read_bytes, iov, n_iov);

      if (e == 0)
        result->written = (size_t) r->read_bytes;
      else
        {
          g_debug ("scsi-cd: reading %s: %s", r->read_medium->path, g_strerror (e));
          ok = fail (r, VR_SCSI_SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ);
        }
      medium_unref (r->read_medium);
    }

  if (!ok)
    {
      result->status = VR_SCSI_STATUS_CHECK_CONDITION;
      result->sense_len = VR_SCSI_SENSE_LEN;
      make_sense (result->sense, r->key, r->asc, r->ascq);
    }
  result->residual = data_len - result->written;

  /* Kept for REQUEST SENSE until the next command completes. */
  g_mutex_lock (&cd->lock);
  cd->sense_len = result->sense_len;
  memcpy (cd->sense, result->sense, sizeof cd->sense);
  g_mutex_unlock (&cd->lock);

  if (func)
    func (func_data);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/* Version 1: (version, medium path or "", locked, pending unit attention ASC and ASCQ,
 * pending media event, the last sense (0 or 18 bytes)). */
#define CD_STATE_VERSION 1
#define CD_STATE_TYPE    "(qsbyyy@ay)"

GVariant *
vr_scsi_cd_save (VrScsiCd *cd)
{
  GVariant *v;

  g_return_val_if_fail (cd != NULL, NULL);

  g_mutex_lock (&cd->lock);
  v = g_variant_new (CD_STATE_TYPE, CD_STATE_VERSION, cd->medium ? cd->medium->path : "",
                     cd->locked, cd->ua_asc, cd->ua_ascq, cd->event,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, cd->sense, cd->sense_len, 1));
  g_mutex_unlock (&cd->lock);
  return v;
}

bool
vr_scsi_cd_load (VrScsiCd *cd, GVariant *state, GError **error)
{
  g_autoptr (GVariant) sense = NULL;
  g_autoptr (GError)   local = NULL;
  g_autofree char     *path = NULL;
  const uint8_t       *sense_bytes;
  Medium              *m = NULL, *old;
  uint8_t              ua_asc, ua_ascq, event;
  VrScsiCdMediumFunc   func = NULL;
  gpointer             func_data = NULL;
  gboolean             locked;
  guint16              version;
  gsize                n;

  g_return_val_if_fail (cd != NULL, false);

  if (!vr_state_check (state, "scsi-cd", CD_STATE_TYPE, CD_STATE_VERSION, error))
    return false;
  g_variant_get (state, CD_STATE_TYPE, &version, &path, &locked, &ua_asc, &ua_ascq, &event, &sense);
  if (!((ua_asc == 0 && ua_ascq == 0) || (ua_asc == 0x28 && ua_ascq == 0) ||
        (ua_asc == 0x29 && ua_ascq == 0)))
    return vr_state_fail (error, "scsi-cd", "pending unit attention %02x/%02x", ua_asc, ua_ascq);
  if (event != MEDIA_EVENT_NONE && event != MEDIA_EVENT_NEW && event != MEDIA_EVENT_REMOVAL)
    return vr_state_fail (error, "scsi-cd", "media event %u", event);
  sense_bytes = g_variant_get_fixed_array (sense, &n, 1);
  if (n != 0 && (n != VR_SCSI_SENSE_LEN || sense_bytes[0] != 0x70))
    return vr_state_fail (error, "scsi-cd", "sense data of %" G_GSIZE_FORMAT " bytes", n);

  /* The image may have gone since: then the drive is empty, and the guest hears of it as if
   * the medium had been taken out. */
  if (path[0] != '\0' && (m = medium_open (path, &local)) == NULL)
    g_message ("scsi-cd: the snapshot's medium is gone, the drive is empty: %s", local->message);

  g_mutex_lock (&cd->lock);
  old = cd->medium;
  cd->medium = m;
  cd->locked = locked;
  cd->ua_asc = ua_asc;
  cd->ua_ascq = ua_ascq;
  cd->event = event;
  cd->sense_len = (uint32_t) n;
  memset (cd->sense, 0, sizeof cd->sense);
  if (n > 0)
    memcpy (cd->sense, sense_bytes, n);
  if (path[0] != '\0' && m == NULL)
    {
      cd->locked = false;
      raise_change (cd);
    }
  /* The machine learns what is in the drive now when it is not what was there before. */
  if ((path[0] != '\0' && m == NULL) || g_strcmp0 (old ? old->path : NULL, m ? m->path : NULL))
    {
      func = cd->medium_func;
      func_data = cd->medium_data;
    }
  g_mutex_unlock (&cd->lock);
  medium_unref (old);
  if (func)
    func (func_data);
  return true;
}
