/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/* One machine in the window's list: thumbnail, name, source and state (with a badge and the
 * reason as tooltip when it is broken or misses a file). */

#define VIREO_TYPE_MACHINE_ROW (vireo_machine_row_get_type ())
G_DECLARE_FINAL_TYPE (VireoMachineRow, vireo_machine_row, VIREO, MACHINE_ROW, GtkWidget)

/* clang-format off */
GtkWidget    *vireo_machine_row_new         (void);
VireoMachine *vireo_machine_row_get_machine (VireoMachineRow *self);
void          vireo_machine_row_set_machine (VireoMachineRow *self,
                                             VireoMachine    *machine);
/* clang-format on */

G_END_DECLS
