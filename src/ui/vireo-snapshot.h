/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * One snapshot of a machine, as VireoSnapshotStore lists it (GTK-free, read-only for
 * everyone but the store, main thread only). Either one Vireo took (a folder
 * snapshots/<id>/ and an entry in snapshots/snapshots.conf), or a qcow2 internal snapshot
 * found on the machine's disks that Vireo did not make (`qemu-img snapshot -c`): that one
 * holds the disks only, has no parent and no thumbnail, and its id is "disk:" + the qcow2
 * id.
 */

typedef enum
{
  VIREO_SNAPSHOT_KIND_VIREO,  /* taken by Vireo: machine state (maybe memory) and disks */
  VIREO_SNAPSHOT_KIND_DISK,   /* a qcow2 snapshot made elsewhere: the disks only */
} VireoSnapshotKind;

#define VIREO_TYPE_SNAPSHOT_KIND (vireo_snapshot_kind_get_type ())
GType vireo_snapshot_kind_get_type (void) G_GNUC_CONST;

#define VIREO_TYPE_SNAPSHOT (vireo_snapshot_get_type ())
G_DECLARE_FINAL_TYPE (VireoSnapshot, vireo_snapshot, VIREO, SNAPSHOT, GObject)

/* clang-format off */
const char        *vireo_snapshot_get_id            (VireoSnapshot *self);
VireoSnapshotKind  vireo_snapshot_get_kind          (VireoSnapshot *self);
const char        *vireo_snapshot_get_name          (VireoSnapshot *self);
const char        *vireo_snapshot_get_description   (VireoSnapshot *self);
/* Local time; never NULL. */
GDateTime         *vireo_snapshot_get_created       (VireoSnapshot *self);
/* NULL for a root. */
const char        *vireo_snapshot_get_parent_id     (VireoSnapshot *self);
/* Whether it holds the machine's memory (it resumes where it was) or the disks only (the
 * machine boots afresh from them). */
gboolean           vireo_snapshot_get_memory        (VireoSnapshot *self);
/* Its thumbnail.png, or NULL. */
GFile             *vireo_snapshot_get_thumbnail     (VireoSnapshot *self);
/* Why it cannot be used (its files are missing or damaged), or NULL. A broken snapshot can
 * only be deleted. */
const char        *vireo_snapshot_get_broken_reason (VireoSnapshot *self);
gboolean           vireo_snapshot_is_broken         (VireoSnapshot *self);
/* The snapshot the machine's current state grew from (the last taken or reverted to). */
gboolean           vireo_snapshot_get_current       (VireoSnapshot *self);
/* Its children (VireoSnapshot), oldest first. */
GListModel        *vireo_snapshot_get_children      (VireoSnapshot *self);
/* The id of its qcow2 snapshots on the machine's disks. */
const char        *vireo_snapshot_get_disk_id       (VireoSnapshot *self);
/* For VIREO_SNAPSHOT_KIND_DISK: the images that hold it. */
const char *const *vireo_snapshot_get_disks         (VireoSnapshot *self);

/* For VireoSnapshotStore only. */
VireoSnapshot     *vireo_snapshot_new               (const char    *id,
                                                     VireoSnapshotKind kind);
void               vireo_snapshot_set_fields        (VireoSnapshot *self,
                                                     const char    *name,
                                                     const char    *description,
                                                     GDateTime     *created,
                                                     const char    *parent_id,
                                                     gboolean       memory,
                                                     GFile         *thumbnail,
                                                     const char    *broken_reason,
                                                     const char    *disk_id,
                                                     const char *const *disks);
void               vireo_snapshot_set_current       (VireoSnapshot *self,
                                                     gboolean       current);
/* clang-format on */

G_END_DECLS
