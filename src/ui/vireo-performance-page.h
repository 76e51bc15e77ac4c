/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/* The Performance page: CPU per vCPU, memory, disk read/write and network rx/tx over the
 * last 60 seconds (VireoPlot), sampled once a second while the machine runs. */

#define VIREO_TYPE_PERFORMANCE_PAGE (vireo_performance_page_get_type ())
G_DECLARE_FINAL_TYPE (VireoPerformancePage, vireo_performance_page, VIREO, PERFORMANCE_PAGE,
                      GtkWidget)

/* clang-format off */
GtkWidget    *vireo_performance_page_new         (void);
VireoMachine *vireo_performance_page_get_machine (VireoPerformancePage *self);
void          vireo_performance_page_set_machine (VireoPerformancePage *self,
                                                  VireoMachine         *machine);
/* Samples taken since the machine started (tests). */
guint         vireo_performance_page_get_n_samples (VireoPerformancePage *self);
/* clang-format on */

G_END_DECLS
