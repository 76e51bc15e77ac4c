/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-console-page.h"
#include "vireo-details-page.h"
#include "vireo-display.h"
#include "vireo-library.h"
#include "vireo-performance-page.h"

G_BEGIN_DECLS

/*
 * One machine's pages in an AdwViewStack (the window puts its switcher in the header bar):
 * Display (the guest's screen while it runs; its last frame and a Start button while it is
 * off), Console, Details, Snapshots, Performance. A banner says when the machine cannot
 * start (a file is missing…) or, while it runs, when its firmware found nothing to boot.
 */

#define VIREO_TYPE_MACHINE_VIEW (vireo_machine_view_get_type ())
G_DECLARE_FINAL_TYPE (VireoMachineView, vireo_machine_view, VIREO, MACHINE_VIEW, GtkWidget)

/* clang-format off */
GtkWidget            *vireo_machine_view_new             (VireoMachine     *machine,
                                                          VireoLibrary     *library);
VireoMachine         *vireo_machine_view_get_machine     (VireoMachineView *self);
AdwViewStack         *vireo_machine_view_get_stack       (VireoMachineView *self);
VireoDisplay         *vireo_machine_view_get_display     (VireoMachineView *self);
VireoConsolePage     *vireo_machine_view_get_console     (VireoMachineView *self);
VireoDetailsPage     *vireo_machine_view_get_details     (VireoMachineView *self);
VireoPerformancePage *vireo_machine_view_get_performance (VireoMachineView *self);
/* "display", "console", "details", "snapshots", "performance". */
void                  vireo_machine_view_show_page       (VireoMachineView *self,
                                                          const char       *name);
/* What the Display page shows: "screen", "off", "starting", "headless" or "broken". */
const char           *vireo_machine_view_get_display_state (VireoMachineView *self);
/* The banner above the pages (a missing file, nothing to boot), or NULL when hidden. */
const char           *vireo_machine_view_get_banner      (VireoMachineView *self);
/* clang-format on */

G_END_DECLS
