/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * A CD/DVD-ROM drive as a SCSI logical unit (SPC-3 + MMC-5, the commands installers and
 * firmware use), independent of the transport that carries its commands (virtio-scsi here).
 * The medium is an ISO image, read-only, in 2048-byte blocks. See vr-scsi-cd.c for the
 * command set and the reasons for the choices.
 *
 * Threads: every call may come from any thread; a drive has its own mutex. A READ's data
 * is read without that mutex held (the medium it started on stays open until it is done), so
 * changing the medium never waits for the disk.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

G_BEGIN_DECLS

#define VR_SCSI_CD_BLOCK 2048
/* Fixed-format sense data, as every command reports it. */
#define VR_SCSI_SENSE_LEN 18
/* The most a READ may ask for (bytes); more fails with INVALID FIELD IN CDB. */
#define VR_SCSI_CD_MAX_TRANSFER (64u << 20)

/* SAM-5 status codes. */
#define VR_SCSI_STATUS_GOOD            0x00
#define VR_SCSI_STATUS_CHECK_CONDITION 0x02

/* Sense keys. */
#define VR_SCSI_SENSE_NO_SENSE        0x0
#define VR_SCSI_SENSE_NOT_READY       0x2
#define VR_SCSI_SENSE_MEDIUM_ERROR    0x3
#define VR_SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define VR_SCSI_SENSE_UNIT_ATTENTION  0x6

typedef struct _VrScsiCd VrScsiCd;

/* What one command did. */
typedef struct
{
  uint8_t status; /* VR_SCSI_STATUS_* */
  /* The command wanted to transfer more than the data-in buffer holds (a READ of more
   * blocks than fit): nothing was done, status is GOOD and no sense is set; the transport
   * reports it in its own way (virtio-scsi: VIRTIO_SCSI_S_OVERRUN). */
  bool     overrun;
  uint32_t sense_len;                /* VR_SCSI_SENSE_LEN with CHECK CONDITION, else 0 */
  uint8_t  sense[VR_SCSI_SENSE_LEN]; /* fixed format (response code 0x70) */
  size_t   written;                  /* bytes put at the start of the data-in buffer */
  size_t   residual;                 /* data_len - written */
} VrScsiResult;

/* The medium changed other than by vr_scsi_cd_set_medium(): the guest ejected it (START
 * STOP UNIT), or a snapshot was loaded with another medium (or one that could not be opened
 * again). Called on the thread of that command or load, with no lock of the drive held. */
typedef void (*VrScsiCdMediumFunc) (gpointer data);

/* clang-format off */
VrScsiCd *vr_scsi_cd_new                 (void);
void      vr_scsi_cd_free                (VrScsiCd            *cd);
void      vr_scsi_cd_set_medium_callback (VrScsiCd            *cd,
                                          VrScsiCdMediumFunc   func,
                                          gpointer             data);
/* Puts the image at @path in the drive (opened read-only), or empties it (@path NULL). The
 * next command that reports unit attentions gets UNIT ATTENTION, NOT READY TO READY CHANGE,
 * MEDIUM MAY HAVE CHANGED, and GET EVENT STATUS NOTIFICATION reports new media (or media
 * removal). The host always wins: a PREVENT ALLOW MEDIUM REMOVAL lock only refuses the
 * guest's own eject. On failure (VR_ERROR_IO: missing, unreadable, empty, not a file or
 * block device) the old medium stays and nothing is raised. */
bool      vr_scsi_cd_set_medium          (VrScsiCd            *cd,
                                          const char          *path,
                                          GError             **error);
/* The image in the drive (a copy), or NULL when empty. */
char     *vr_scsi_cd_get_medium          (VrScsiCd            *cd);
/* A reset (the transport's, or a LOGICAL UNIT RESET): the lock is released, the last sense
 * forgotten, and UNIT ATTENTION, POWER ON, RESET raised unless another one is pending. The
 * medium stays. */
void      vr_scsi_cd_reset               (VrScsiCd            *cd);
/*
 * Runs one command: @cdb holds @cdb_len bytes (as many as the transport carries; the
 * command's own length must fit), @iov/@n_iov the data-in buffer, of which the first
 * @data_len bytes may be written (at most the iovecs' total). Fills @result. Every field of
 * the CDB is checked; a guest gets CHECK CONDITION with sense data, never more than it
 * asked for, and nothing outside its buffer is touched.
 */
void      vr_scsi_cd_command             (VrScsiCd            *cd,
                                          const uint8_t       *cdb,
                                          size_t               cdb_len,
                                          const struct iovec  *iov,
                                          unsigned             n_iov,
                                          size_t               data_len,
                                          VrScsiResult        *result);
/* Snapshots: the medium's path, the lock, the pending unit attention and media event, the
 * last sense. load() checks every value; a medium that cannot be opened again leaves the
 * drive empty (and raises a media change) instead of failing. load() calls the medium
 * callback when the drive then holds another medium than before, or none for a lost one. */
GVariant *vr_scsi_cd_save                (VrScsiCd            *cd);
bool      vr_scsi_cd_load                (VrScsiCd            *cd,
                                          GVariant            *state,
                                          GError             **error);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrScsiCd, vr_scsi_cd_free)

G_END_DECLS
