/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "vireo-snapshot.h"

G_BEGIN_DECLS

/*
 * The snapshots of one machine, in its folder's snapshots/ (GTK-free):
 *
 *   snapshots/<id>/            one snapshot, as vr_machine_save_snapshot() writes it (state,
 *                              ram for one with memory), plus thumbnail.png
 *   snapshots/snapshots.conf   the index, a GKeyFile:
 *       [Vireo]        Version (VIREO_SNAPSHOT_STORE_VERSION), Current (an id, or empty)
 *       [Snapshot ID]  Name, Description, Created (ISO 8601), Parent (an id, or empty),
 *                      Memory (true/false), Thumbnail (a file name inside the folder)
 *
 * Ids are small decimal numbers ("1", "2", …), never reused while a folder or a disk
 * snapshot still has them; the same id names the snapshot's qcow2 internal snapshots. The
 * index is written atomically (vireo-atomic-file.h) and always after the snapshot's folder
 * is complete, so a crash leaves at worst a folder that the index does not name: an orphan,
 * which is never listed (vireo_snapshot_store_list_orphans() names them for cleaning). An
 * entry whose folder is missing or whose state file is damaged is listed as broken, with
 * the reason; the others stay usable. Groups and keys this version does not know are kept.
 * An index of a newer format is refused, and never written over.
 *
 * Qcow2 internal snapshots on the machine's disks (vireo_snapshot_store_set_disks()) that the
 * index does not name — made with `qemu-img snapshot -c`, say — are listed too, as
 * VIREO_SNAPSHOT_KIND_DISK roots (disks only).
 *
 * The store is a GListModel of every snapshot (VireoSnapshot), oldest first, and gives the
 * tree (get_tree(): the roots; each snapshot's children). The model is changed by
 * vireo_snapshot_store_reload() only, on the main thread. The index functions (next_id, add,
 * set_current, update, remove, list_orphans) may run in any thread: they are serialized, and
 * each reads the index, changes it and writes it back; reload afterwards to see the change.
 */

#define VIREO_SNAPSHOT_STORE_VERSION   1
#define VIREO_SNAPSHOT_INDEX_FILE      "snapshots.conf"
#define VIREO_SNAPSHOT_THUMBNAIL_FILE  "thumbnail.png"
#define VIREO_SNAPSHOT_DISK_ID_PREFIX  "disk:"

#define VIREO_SNAPSHOT_STORE_ERROR (vireo_snapshot_store_error_quark ())
GQuark vireo_snapshot_store_error_quark (void);

typedef enum
{
  VIREO_SNAPSHOT_STORE_ERROR_PARSE,      /* the index cannot be read */
  VIREO_SNAPSHOT_STORE_ERROR_NEWER,      /* written by a newer Vireo: refused, left alone */
  VIREO_SNAPSHOT_STORE_ERROR_NOT_FOUND,  /* no snapshot with that id */
  VIREO_SNAPSHOT_STORE_ERROR_INVALID,    /* a bad id or name */
} VireoSnapshotStoreError;

#define VIREO_TYPE_SNAPSHOT_STORE (vireo_snapshot_store_get_type ())
G_DECLARE_FINAL_TYPE (VireoSnapshotStore, vireo_snapshot_store, VIREO, SNAPSHOT_STORE, GObject)

/* clang-format off */
/* @dir: the snapshots folder (it need not exist yet). */
VireoSnapshotStore *vireo_snapshot_store_new           (const char          *dir);
const char         *vireo_snapshot_store_get_dir       (VireoSnapshotStore  *self);
/* The writable qcow2 images to look for other snapshots in (NULL-terminated). */
void                vireo_snapshot_store_set_disks     (VireoSnapshotStore  *self,
                                                        const char *const   *paths);
/* @dir/@id (g_free it). */
char               *vireo_snapshot_store_dup_path      (VireoSnapshotStore  *self,
                                                        const char          *id);

/* Reads the index and the folders again (and the disks' snapshot tables when @scan_disks:
 * only while no machine uses them; otherwise the last scan's findings are kept). An index
 * that cannot be read empties the model, and its reason is kept (get_error()) and
 * returned. Main thread. */
gboolean            vireo_snapshot_store_reload        (VireoSnapshotStore  *self,
                                                        gboolean             scan_disks,
                                                        GError             **error);
/* Why the index could not be read at the last reload, or NULL. */
const char         *vireo_snapshot_store_get_error     (VireoSnapshotStore  *self);
/* The roots of the tree (VireoSnapshot), oldest first. */
GListModel         *vireo_snapshot_store_get_tree      (VireoSnapshotStore  *self);
VireoSnapshot      *vireo_snapshot_store_lookup        (VireoSnapshotStore  *self,
                                                        const char          *id);
/* The current snapshot's id, or NULL. */
const char         *vireo_snapshot_store_get_current_id (VireoSnapshotStore *self);

/* The index (any thread). */
/* A new id: one more than every id that the index, a folder or a disk snapshot uses. Fails
 * when the index cannot be read (so nothing is written before that is known). */
char               *vireo_snapshot_store_next_id       (VireoSnapshotStore  *self,
                                                        GError             **error);
/* A new entry, child of the current snapshot; it becomes the current one. */
gboolean            vireo_snapshot_store_add           (VireoSnapshotStore  *self,
                                                        const char          *id,
                                                        const char          *name,
                                                        const char          *description,
                                                        GDateTime           *created,
                                                        gboolean             memory,
                                                        const char          *thumbnail,
                                                        GError             **error);
/* @id NULL: none. */
gboolean            vireo_snapshot_store_set_current   (VireoSnapshotStore  *self,
                                                        const char          *id,
                                                        GError             **error);
/* A NULL @name or @description is left as it is. */
gboolean            vireo_snapshot_store_update        (VireoSnapshotStore  *self,
                                                        const char          *id,
                                                        const char          *name,
                                                        const char          *description,
                                                        GError             **error);
/* Removes the entry (not its files). Its children move up to its parent; when it was the
 * current one, its parent becomes current. */
gboolean            vireo_snapshot_store_remove        (VireoSnapshotStore  *self,
                                                        const char          *id,
                                                        GError             **error);
/* Folders in @dir that the index does not name (left by a crash), as base names; an empty
 * array when the index cannot be read. */
GStrv               vireo_snapshot_store_list_orphans  (VireoSnapshotStore  *self);

/* A valid name: non-empty after trimming, no control characters. */
gboolean            vireo_snapshot_name_is_valid       (const char          *name,
                                                        GError             **error);
/* clang-format on */

G_END_DECLS
