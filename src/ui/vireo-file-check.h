/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "disk/vr-disk.h"

G_BEGIN_DECLS

/*
 * Checks a file a person picked for a machine, and says in words what is wrong with it (or
 * what it is): an installer disc image, a disk image, a kernel, an initial RAM disk. Used by
 * the New Machine wizard as the user types a path; runs in a thread (it reads headers).
 *
 * Disk images: the format is probed from the contents (vr_disk_probe_format) unless the
 * caller gives one, then the image is opened in that format, metadata only, for its sizes.
 * A file with no image header is a raw disk: a warning when its size is a whole number of
 * 512-byte sectors, an error otherwise (a text file is not a disk). An image with a backing
 * file is refused. Kernels: vr_boot_image_new() must accept them (bzImage, PVH, Multiboot).
 */

typedef enum
{
  VIREO_FILE_INSTALLER,
  VIREO_FILE_DISK_IMAGE,
  VIREO_FILE_KERNEL,
  VIREO_FILE_INITRD,
} VireoFileKind;

typedef enum
{
  VIREO_FILE_CHECK_OK,
  VIREO_FILE_CHECK_WARNING,  /* usable, but tell the user (@message) */
  VIREO_FILE_CHECK_ERROR,    /* not usable: @message says why and what to do */
} VireoFileCheckState;

typedef struct
{
  VireoFileKind        kind;
  char                *path;
  gboolean             forced;       /* disk: opened as @format, as asked */
  VrDiskFormat         format;       /* disk: the format checked */
  /* results */
  VireoFileCheckState  state;
  char                *message;      /* one or two sentences for under the field */
  gboolean             probed;       /* disk: @detected is known */
  VrDiskFormat         detected;     /* disk: the format the contents say */
  guint64              virtual_size; /* disk: the size the machine sees */
  guint64              data_size;    /* bytes the file takes on the host */
  gboolean             writable;     /* disk: the user can write the file */
  gboolean             one_file;     /* disk: the whole image is in this one file */
} VireoFileCheck;

/* clang-format off */
/* @format: NULL to probe a disk image's format. */
VireoFileCheck *vireo_file_check_new       (VireoFileKind        kind,
                                            const char          *path,
                                            const VrDiskFormat  *format);
void            vireo_file_check_free      (VireoFileCheck      *check);
/* Blocking (reads the file): fills the results. */
void            vireo_file_check_run       (VireoFileCheck      *check);
void            vireo_file_check_async     (VireoFileKind        kind,
                                            const char          *path,
                                            const VrDiskFormat  *format,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
VireoFileCheck *vireo_file_check_finish    (GAsyncResult        *result,
                                            GError             **error);
/* "qcow2", "VMDK", "raw" (translated) */
const char     *vireo_disk_format_label    (VrDiskFormat         format);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VireoFileCheck, vireo_file_check_free)

G_END_DECLS
