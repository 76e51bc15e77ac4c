/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/*
 * The Snapshots page: the machine's snapshots as a tree (thumbnail, name, description, when,
 * with memory or disks only, the current one marked), and the actions snapshots.take,
 * .revert, .delete, .rename and .edit-description (each asks in a dialog). While the machine
 * runs a snapshot is live (memory and disks); while it is off, disks only. A banner says when
 * the machine cannot take snapshots (a raw disk) and when it has a saved state (with a way to
 * discard it, and to start afresh when resuming failed). Errors show as toasts on the page.
 */

#define VIREO_TYPE_SNAPSHOTS_PAGE (vireo_snapshots_page_get_type ())
G_DECLARE_FINAL_TYPE (VireoSnapshotsPage, vireo_snapshots_page, VIREO, SNAPSHOTS_PAGE, GtkWidget)

/* clang-format off */
GtkWidget    *vireo_snapshots_page_new         (void);
VireoMachine *vireo_snapshots_page_get_machine (VireoSnapshotsPage *self);
void          vireo_snapshots_page_set_machine (VireoSnapshotsPage *self,
                                                VireoMachine       *machine);

/* For tests and accessibility tools. */
/* "empty", "list" or "error". */
const char   *vireo_snapshots_page_get_view    (VireoSnapshotsPage *self);
/* The rows as shown (expanded tree, top to bottom). */
guint         vireo_snapshots_page_get_n_rows  (VireoSnapshotsPage *self);
/* Row @position's snapshot (a reference), or NULL. */
VireoSnapshot *vireo_snapshots_page_get_row    (VireoSnapshotsPage *self,
                                                guint               position);
/* What row @position says, its labels joined by " | " (g_free it). */
char         *vireo_snapshots_page_dup_row_text (VireoSnapshotsPage *self,
                                                guint               position);
gboolean      vireo_snapshots_page_select      (VireoSnapshotsPage *self,
                                                const char         *id);
const char   *vireo_snapshots_page_get_selected_id (VireoSnapshotsPage *self);
/* Whether an operation runs (the spinner shows). */
gboolean      vireo_snapshots_page_get_busy    (VireoSnapshotsPage *self);
/* The banner's text, or NULL when it is hidden. */
const char   *vireo_snapshots_page_get_banner  (VireoSnapshotsPage *self);
/* clang-format on */

G_END_DECLS
