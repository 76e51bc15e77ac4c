/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include "vr-disk.h"

#include <sys/types.h>

G_BEGIN_DECLS

#define VR_DISK_MAX_BACKING_DEPTH 16

typedef struct
{
  bool (*preadv)       (VrDisk *disk, const struct iovec *iov, int iovcnt, uint64_t offset,
                        uint64_t len, GError **error);
  bool (*pwritev)      (VrDisk *disk, const struct iovec *iov, int iovcnt, uint64_t offset,
                        uint64_t len, GError **error);
  bool (*flush)        (VrDisk *disk, GError **error);
  bool (*discard)      (VrDisk *disk, uint64_t offset, uint64_t len, GError **error);
  bool (*write_zeroes) (VrDisk *disk, uint64_t offset, uint64_t len, bool may_unmap,
                        GError **error);
  bool (*block_status) (VrDisk *disk, uint64_t offset, uint64_t len, bool *is_zero,
                        uint64_t *pnum, GError **error);
  void (*info)         (VrDisk *disk, VrDiskInfo *info);
  void (*close)        (VrDisk *disk);
  /* Optional (NULL: the format has no internal snapshots / cannot resize). Called with the
   * disk's gate held: shared for snapshot_list, exclusive for the others. */
  GPtrArray *(*snapshot_list) (VrDisk *disk, GError **error);
  bool (*snapshot_create) (VrDisk *disk, const char *id, const char *name,
                           uint64_t vm_clock_nsec, GError **error);
  bool (*snapshot_apply)  (VrDisk *disk, const char *id_or_name, GError **error);
  bool (*snapshot_delete) (VrDisk *disk, const char *id_or_name, GError **error);
  bool (*resize)          (VrDisk *disk, uint64_t new_size, bool allow_shrink,
                           GError **error);
} VrDiskOps;

/* The chain of files opened so far (st_dev/st_ino), to find backing file loops. */
typedef struct _VrDiskChain VrDiskChain;
struct _VrDiskChain
{
  const VrDiskChain *parent;
  dev_t              dev;
  ino_t              ino;
  const char        *path;
};

typedef struct
{
  GMutex lock;
  GCond  cond;
  guint  shared;
  guint  exclusive_waiting;
  bool   exclusive;
} VrDiskGate;

struct _VrDisk
{
  const VrDiskOps *ops;
  VrDiskFormat     format;
  char            *filename;
  uint64_t         size;
  bool             readonly;
  bool             metadata_only;
  bool             repair_mode;  /* qcow2 check -r: opens dirty images read-write */
  /* Requests (and anything reading size) pass it shared; snapshot operations and resize
   * exclusively. A waiting exclusive user holds new requests back (no starvation). Not
   * recursive: nothing holding it may call the public API on the same disk. */
  VrDiskGate       gate;
  int              fd;
  void            *priv;
};

VrDisk *vr_disk_open_internal (const char        *path,
                               VrDiskFormat       fmt,
                               VrDiskOpenFlags    flags,
                               bool               repair_mode,
                               const VrDiskChain *chain,
                               int                depth,
                               GError           **error);

bool    vr_qcow2_open         (VrDisk            *disk,
                               const VrDiskChain *chain,
                               int                depth,
                               GError           **error);
bool    vr_qcow2_create       (int                fd,
                               const char        *path,
                               uint64_t           size,
                               const char        *backing,
                               const char        *backing_fmt,
                               GError           **error);
bool    vr_qcow2_check        (VrDisk            *disk,
                               VrDiskRepairMode   repair,
                               VrDiskCheckResult *result,
                               GError           **error);
bool    vr_vmdk_open          (VrDisk            *disk,
                               GError           **error);

/* Helpers shared by the drivers. */
bool    vr_disk_full_pread    (int fd, void *buf, size_t len, uint64_t offset, size_t *done,
                               GError **error);
bool    vr_disk_full_pwrite   (int fd, const void *buf, size_t len, uint64_t offset,
                               GError **error);
/* preadv/pwritev of an iovec slice; a short read (end of file) is zero-filled. */
bool    vr_disk_file_preadv   (int fd, const struct iovec *iov, int iovcnt, uint64_t skip,
                               uint64_t len, uint64_t offset, GError **error);
bool    vr_disk_file_pwritev  (int fd, const struct iovec *iov, int iovcnt, uint64_t skip,
                               uint64_t len, uint64_t offset, GError **error);
int     vr_disk_iov_slice     (const struct iovec *iov, int iovcnt, uint64_t skip,
                               uint64_t len, struct iovec *out, int max);
void    vr_disk_iov_memset    (const struct iovec *iov, int iovcnt, uint64_t skip, int c,
                               uint64_t len);
void    vr_disk_iov_from_buf  (const struct iovec *iov, int iovcnt, uint64_t skip,
                               const void *buf, uint64_t len);
void    vr_disk_iov_to_buf    (const struct iovec *iov, int iovcnt, uint64_t skip, void *buf,
                               uint64_t len);
bool    vr_disk_fdatasync     (VrDisk *disk, int fd, GError **error);
void   *vr_disk_alloc_aligned (size_t size);
char   *vr_disk_resolve_relative (const char *image_path, const char *name);

G_END_DECLS
