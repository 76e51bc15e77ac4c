/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * Before quitting or closing the window with machines running: asks whether to shut them
 * down (the ACPI power button, then a wait of VIREO_QUIT_TIMEOUT_S seconds after which
 * forcing them off is offered), to force them off, or to cancel. Finishes TRUE when no
 * machine runs any more (at once when none did), FALSE when the user cancelled.
 *
 * TODO(snapshots): "Save their state and resume them next time" joins these choices with
 * the snapshot issue.
 */

#define VIREO_QUIT_TIMEOUT_S 30

/* clang-format off */
void     vireo_quit_dialog_run_async  (GtkWindow           *parent,
                                       VireoLibrary        *library,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
gboolean vireo_quit_dialog_run_finish (GAsyncResult        *result,
                                       GError             **error);
/* The active machines of @library (VireoMachine, referenced). */
GPtrArray *vireo_library_dup_active_machines (VireoLibrary *library);
/* clang-format on */

G_END_DECLS
