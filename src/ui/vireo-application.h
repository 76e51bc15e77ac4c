/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * The app: one machine library per process (shared by every window), the app actions
 * (app.quit, app.about, app.new-window, app.demo), keyboard shortcuts, and the question
 * asked before quitting with machines running. `--demo` opens the window on the demo
 * machine (made first when the library has none) and starts it.
 */

#define VIREO_TYPE_APPLICATION (vireo_application_get_type ())
G_DECLARE_FINAL_TYPE (VireoApplication, vireo_application, VIREO, APPLICATION, AdwApplication)

/* clang-format off */
VireoApplication *vireo_application_new            (void);
VireoLibrary     *vireo_application_get_library    (VireoApplication *self);
GSettings        *vireo_application_get_settings   (VireoApplication *self);
/* Makes the demo machine if the library has none, selects it in @window and starts it. */
void              vireo_application_open_demo      (VireoApplication *self,
                                                    GtkWindow        *window);
/* Quits, after asking what to do with running machines (see vireo-quit-dialog.h). */
void              vireo_application_request_quit   (VireoApplication *self);
/* clang-format on */

G_END_DECLS
