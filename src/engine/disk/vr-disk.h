/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/*
 * Disk images: raw, qcow2 (v2/v3, read/write, backing files, zlib clusters read, internal
 * snapshots) and VMDK
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
 * Requests also pass a per-disk gate that snapshot and resize operations hold exclusively (a
 * waiting one holds new requests back), so the virtual size never changes under a request.
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
 *
 * Internal snapshots and resize (qcow2) change the metadata as one transaction: every table
 * that changes (the active L1 and L2 tables, refcount blocks, the refcount table, the snapshot
 * table) is written to free clusters, synced, and then a single write of the header (48 bytes
 * inside its first sector: size, L1, refcount table and snapshot table fields) switches to the
 * new state, followed by another fdatasync. A crash before that write leaves the old image
 * as it was (the new tables sit in clusters it does not use); after it, the new one. The old
 * tables are freed in the same transaction, so not even a leak remains. `qemu-img check`
 * is clean at every point, which QEMU's own in-place updates do not guarantee (between its
 * refcount and COPIED-flag writes, check reports corruption).
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

/*
 * An internal snapshot (qcow2), as stored in the image's snapshot table. Strings are UTF-8 as
 * far as Vireo is concerned but come from the image: treat them as untrusted bytes.
 */
typedef struct
{
  char     *id;             /* unique; numeric when chosen by Vireo or QEMU ("1", "2", …) */
  char     *name;           /* QEMU calls it the tag */
  uint64_t  vm_state_size;  /* bytes of saved VM state in the image (0: disk-only snapshot) */
  int64_t   date_sec;       /* creation time, seconds since the epoch (UTC) */
  uint32_t  date_nsec;
  uint64_t  vm_clock_nsec;  /* guest clock when it was taken */
  uint64_t  disk_size;      /* virtual size of the disk when it was taken */
  uint64_t  icount;         /* QEMU's instruction count; UINT64_MAX when not recorded */
} VrDiskSnapshot;

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

/*
 * Internal snapshots (qcow2 only, compatible with `qemu-img snapshot`).
 *
 * Thread safety: each function may be called while other threads do I/O on the same VrDisk;
 * it waits for the requests in flight and holds new ones back until it is done (the disk's
 * gate, exclusively, then the qcow2 image lock); _list passes the gate shared. None of them
 * may be called from a thread that is inside another call on the same disk. Pausing the VM
 * first is still wiser: apply changes the data under a running guest.
 *
 * Crash safety: each change is one transaction ending with one atomic header write (see the
 * top of this file): after a crash the image either has the change or does not, and `qemu-img
 * check` is clean either way. Data written before the call is flushed first.
 *
 * Raw and VMDK images: _list returns an empty array; the others fail with
 * VR_DISK_ERROR_UNSUPPORTED. A read-only disk: VR_DISK_ERROR_READ_ONLY. A damaged snapshot
 * table: VR_DISK_ERROR_CORRUPT (when opening, or for a disk opened for metadata only, when
 * listing). An unknown id_or_name: VR_DISK_ERROR_NOT_FOUND. id_or_name is looked up first as
 * an id, then as a name, as QEMU does.
 */
void         vr_disk_snapshot_free      (VrDiskSnapshot      *snapshot);
/* Array of VrDiskSnapshot *, in table order (oldest first), owning its elements. */
GPtrArray   *vr_disk_snapshot_list      (VrDisk              *disk,
                                         GError             **error);
/* id NULL: the next free numeric id (one more than the largest, as QEMU picks it). A
 * duplicate id or name: VR_DISK_ERROR_INVALID. The snapshot records the current time, the
 * virtual size and vm_clock_nsec; the data stays shared until either side is written. */
bool         vr_disk_snapshot_create    (VrDisk              *disk,
                                         const char          *id,
                                         const char          *name,
                                         uint64_t             vm_clock_nsec,
                                         GError             **error);
/* The disk's contents (and virtual size, if it differs) become the snapshot's; the current
 * state is dropped. The snapshot stays. */
bool         vr_disk_snapshot_apply     (VrDisk              *disk,
                                         const char          *id_or_name,
                                         GError             **error);
/* Frees the clusters only the snapshot used. */
bool         vr_disk_snapshot_delete    (VrDisk              *disk,
                                         const char          *id_or_name,
                                         GError             **error);

/*
 * Changes the virtual size. qcow2: grows only (a multiple of 512; a larger L1 table is
 * written first and switched in with the size, atomically); a v2 image with snapshots is
 * refused (VR_DISK_ERROR_UNSUPPORTED), like QEMU; shrinking is refused (VR_DISK_ERROR_INVALID)
 * even with allow_shrink. Raw: ftruncate, then fdatasync; shrinking needs allow_shrink
 * (VR_DISK_ERROR_INVALID otherwise) and drops the data past the end. VMDK:
 * VR_DISK_ERROR_UNSUPPORTED. Thread safety as for snapshots (I/O waits while it runs).
 * A qcow2 overlay grown past the old end of a larger backing file gets zeroes written over
 * the newly visible range afterwards (a crash in between can show backing data there).
 */
bool         vr_disk_resize             (VrDisk              *disk,
                                         uint64_t             new_size,
                                         bool                 allow_shrink,
                                         GError             **error);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrDisk, vr_disk_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrDiskInfo, vr_disk_info_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrDiskSnapshot, vr_disk_snapshot_free)

G_END_DECLS
