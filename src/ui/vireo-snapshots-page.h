/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/* The Snapshots page. Snapshots arrive with the snapshot issue; until then the page says
 * so. */

#define VIREO_TYPE_SNAPSHOTS_PAGE (vireo_snapshots_page_get_type ())
G_DECLARE_FINAL_TYPE (VireoSnapshotsPage, vireo_snapshots_page, VIREO, SNAPSHOTS_PAGE, GtkWidget)

/* clang-format off */
GtkWidget    *vireo_snapshots_page_new         (void);
VireoMachine *vireo_snapshots_page_get_machine (VireoSnapshotsPage *self);
void          vireo_snapshots_page_set_machine (VireoSnapshotsPage *self,
                                                VireoMachine       *machine);
/* clang-format on */

G_END_DECLS
