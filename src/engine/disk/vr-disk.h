/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/*
 * Disk images: raw, qcow2 (v2/v3, read/write, backing files, zlib clusters read) and VMDK
 * (read-only: monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*).
 *
 * The format is always chosen by the caller (it lives in the machine's configuration); the
 * engine never guesses it from an image a guest can write. vr_disk_probe_format() exists for
 * user tools (vireo-img) only. The one exception: a qcow2 image whose header names a backing
 * file without a backing format extension (old qemu-img) has its backing file probed between
 * qcow2, VMDK and raw, as qemu does; the backing file is never written by Vireo.
 *
 * Thread safety: every I/O function may be called concurrently from several threads on the
 * same VrDisk. Raw and VMDK images need no lock (pread/pwrite); a qcow2 image serializes its
 * requests with one mutex per image (the metadata caches and the allocator live under it).
 * vr_disk_close() must not race with I/O.
 *
 * VMDK images are read-only: opening one without VR_DISK_OPEN_READONLY fails with
 * VR_DISK_ERROR_READ_ONLY (the machine's configuration must say "readonly").
 *
 * Crash safety of qcow2 writes: a data cluster and its refcount reach the file before the L2
 * entry that points at it, and an L2 table (after an fdatasync) before the L1 entry pointing
 * at it; freed clusters are released only after the L2 tables that dropped them are on disk.
 * A crash (even SIGKILL or power loss) therefore only leaks clusters (`vireo-img check -r
 * leaks` or `qemu-img check -r leaks` repairs that); data written before the last
 * successful vr_disk_flush() is never lost. Lazy refcounts are never used.
 */

typedef enum
{
  VR_DISK_FORMAT_RAW,
  VR_DISK_FORMAT_QCOW2,
  VR_DISK_FORMAT_VMDK,
} VrDiskFormat;

typedef enum
{
  VR_DISK_OPEN_READONLY      = 1 << 0,
  /* Metadata only (info, check): also opens images whose data cannot be read (encrypted
   * qcow2); every I/O function then fails with VR_DISK_ERROR_UNSUPPORTED. */
  VR_DISK_OPEN_METADATA_ONLY = 1 << 1,
} VrDiskOpenFlags;

typedef enum
{
  VR_DISK_ERROR_FAILED,
  VR_DISK_ERROR_CORRUPT,      /* the image's metadata is inconsistent or hostile */
  VR_DISK_ERROR_UNSUPPORTED,  /* a valid image using a feature Vireo does not implement */
  VR_DISK_ERROR_READ_ONLY,    /* write to a read-only disk, or a format that is read-only */
  VR_DISK_ERROR_NO_SPACE,     /* host file system full, or image metadata at its limits */
  VR_DISK_ERROR_IO,           /* a system call on the host file failed */
  VR_DISK_ERROR_OUT_OF_RANGE, /* request beyond the virtual size */
  VR_DISK_ERROR_INVALID,      /* bad argument (size, format name, path) */
  VR_DISK_ERROR_NOT_FOUND,    /* the image (or one of its backing files) does not exist */
} VrDiskError;

#define VR_DISK_ERROR (vr_disk_error_quark ())
GQuark vr_disk_error_quark (void);

typedef struct _VrDisk VrDisk;

typedef struct
{
  VrDiskFormat format;
  char        *filename;
  uint64_t     virtual_size;     /* bytes */
  uint64_t     actual_size;      /* bytes allocated on the host (all files of the image) */
  uint32_t     cluster_size;     /* qcow2 cluster / VMDK grain size; 0 for raw */
  char        *backing_file;     /* as stored in the image, or NULL */
  char        *backing_file_full; /* resolved against the image's directory, or NULL */
  bool         has_backing_format;
  VrDiskFormat backing_format;
  /* qcow2 */
  uint32_t     qcow2_version;    /* 2 or 3 */
  uint32_t     refcount_bits;
  bool         lazy_refcounts;
  bool         dirty;
  bool         corrupt;
  bool         encrypted;
  uint32_t     nb_snapshots;
  uint64_t     image_end_offset; /* highest byte used by the qcow2 metadata/data */
  /* VMDK */
  char        *vmdk_create_type;
  uint32_t     vmdk_extents;
  bool         vmdk_compressed;
} VrDiskInfo;

typedef enum
{
  VR_DISK_REPAIR_NONE,
  VR_DISK_REPAIR_LEAKS,  /* like qemu-img check -r leaks */
  VR_DISK_REPAIR_ALL,    /* like qemu-img check -r all: leaks, refcounts too low, COPIED flags */
} VrDiskRepairMode;

typedef struct
{
  uint64_t   corruptions;        /* left after repair */
  uint64_t   leaks;              /* left after repair */
  uint64_t   corruptions_fixed;
  uint64_t   leaks_fixed;
  uint64_t   check_errors;       /* parts that could not be checked (I/O errors) */
  uint64_t   allocated_clusters; /* guest clusters with data in this image */
  uint64_t   total_clusters;     /* guest clusters of the virtual disk */
  uint64_t   compressed_clusters;
  uint64_t   fragmented_clusters;
  uint64_t   image_end_offset;
  bool       checked;            /* false: the format has no metadata to check (raw, VMDK) */
  GPtrArray *messages;           /* char *, one line per problem, as qemu-img prints them */
} VrDiskCheckResult;

/* clang-format off */
bool         vr_disk_format_from_string (const char          *s,
                                         VrDiskFormat        *out,
                                         GError             **error);
const char  *vr_disk_format_to_string   (VrDiskFormat         fmt);
/* For UIs and tools only (the engine never probes): guesses the format from the header. */
bool         vr_disk_probe_format       (const char          *path,
                                         VrDiskFormat        *out,
                                         GError             **error);

VrDisk      *vr_disk_open               (const char          *path,
                                         VrDiskFormat         fmt,
                                         VrDiskOpenFlags      flags,
                                         GError             **error);
/* Flushes metadata (errors are logged); NULL-safe. */
void         vr_disk_close              (VrDisk              *disk);
uint64_t     vr_disk_get_size           (VrDisk              *disk);
bool         vr_disk_is_readonly        (VrDisk              *disk);
VrDiskFormat vr_disk_get_format         (VrDisk              *disk);
const char  *vr_disk_get_filename       (VrDisk              *disk);

/* I/O. offset + total length must lie within the virtual size. Thread-safe. */
bool         vr_disk_preadv             (VrDisk              *disk,
                                         const struct iovec  *iov,
                                         int                  iovcnt,
                                         uint64_t             offset,
                                         GError             **error);
bool         vr_disk_pwritev            (VrDisk              *disk,
                                         const struct iovec  *iov,
                                         int                  iovcnt,
                                         uint64_t             offset,
                                         GError             **error);
bool         vr_disk_pread              (VrDisk              *disk,
                                         void                *buf,
                                         size_t               len,
                                         uint64_t             offset,
                                         GError             **error);
bool         vr_disk_pwrite             (VrDisk              *disk,
                                         const void          *buf,
                                         size_t               len,
                                         uint64_t             offset,
                                         GError             **error);
/* Metadata, then fdatasync of every file written. */
bool         vr_disk_flush              (VrDisk              *disk,
                                         GError             **error);
/* Advisory: afterwards the range reads either as before or as zeroes (whole qcow2 clusters
 * read as zeroes; partial clusters are left alone). */
bool         vr_disk_discard            (VrDisk              *disk,
                                         uint64_t             offset,
                                         uint64_t             len,
                                         GError             **error);
/* The range reads as zeroes afterwards. may_unmap lets the host space be released. */
bool         vr_disk_write_zeroes       (VrDisk              *disk,
                                         uint64_t             offset,
                                         uint64_t             len,
                                         bool                 may_unmap,
                                         GError             **error);
/* Whether [offset, offset+len) is known to read as zeroes without touching data (used by
 * convert to keep output sparse). *pnum gets the length of the run with that answer. */
bool         vr_disk_block_status       (VrDisk              *disk,
                                         uint64_t             offset,
                                         uint64_t             len,
                                         bool                *is_zero,
                                         uint64_t            *pnum,
                                         GError             **error);

/*
 * Creates an image atomically (temporary file in the same directory, then rename): raw as a
 * sparse file, qcow2 as v3 with 64 KiB clusters and 16-bit refcounts. backing (qcow2 only) is
 * stored as given; a relative path is relative to the new image's directory. backing_fmt is
 * ignored when backing is NULL. With a backing file, size 0 means "the backing file's size".
 * Sizes are rounded up to 512 bytes.
 */
bool         vr_disk_create             (const char          *path,
                                         VrDiskFormat         fmt,
                                         uint64_t             size,
                                         const char          *backing,
                                         VrDiskFormat         backing_fmt,
                                         GError             **error);

VrDiskInfo  *vr_disk_get_info           (VrDisk              *disk,
                                         GError             **error);
void         vr_disk_info_free          (VrDiskInfo          *info);

/* Checks a qcow2 image's metadata (refcounts against references, COPIED flags, offsets
 * inside the file) and repairs it when asked. Other formats report checked = false. */
bool         vr_disk_check              (const char          *path,
                                         VrDiskFormat         fmt,
                                         VrDiskRepairMode     repair,
                                         VrDiskCheckResult   *result,
                                         GError             **error);
void         vr_disk_check_result_clear (VrDiskCheckResult   *result);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrDisk, vr_disk_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrDiskInfo, vr_disk_info_free)

G_END_DECLS
