/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * Before quitting or closing the window with machines running: asks whether to save their
 * state ("Save State and Quit": a live snapshot of each into its saved-state folder, from
 * which its next start resumes; see vireo_machine_save_state_async()), to shut them down
 * (the ACPI power button, then a wait in which forcing them off is offered, pressingly after
 * VIREO_QUIT_TIMEOUT_S seconds), or to cancel. Finishes TRUE when no machine runs any more
 * (at once when none did), FALSE when the user cancelled or a state could not be saved (the
 * reason is shown; the machines saved so far are off, the others still run).
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
