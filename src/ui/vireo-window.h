/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-application.h"
#include "vireo-machine-view.h"

G_BEGIN_DECLS

/*
 * The main window: the machine list (search, live thumbnails) beside the selected machine's
 * view, in an AdwLeaflet; or, with no machines, a page that offers a new one and the demo.
 * Machine actions (machine.start, .pause, .resume, .shutdown, .force-off, .reset,
 * .screenshot, .record) act on the selected machine; win.new-machine, win.demo-machine,
 * win.fullscreen, win.search, win.go-back. Closing with machines running asks first.
 */

#define VIREO_TYPE_WINDOW (vireo_window_get_type ())
G_DECLARE_FINAL_TYPE (VireoWindow, vireo_window, VIREO, WINDOW, AdwApplicationWindow)

/* clang-format off */
VireoWindow      *vireo_window_new                (VireoApplication *app);
void              vireo_window_select_machine     (VireoWindow      *self,
                                                   VireoMachine     *machine);
VireoMachine     *vireo_window_get_selected_machine (VireoWindow    *self);
/* The selected machine's view, or NULL. */
VireoMachineView *vireo_window_get_machine_view   (VireoWindow      *self);
/* Starts @machine; a failure shows a toast. */
void              vireo_window_start_machine      (VireoWindow      *self,
                                                   VireoMachine     *machine);
void              vireo_window_show_toast         (VireoWindow      *self,
                                                   const char       *text);
/* A toast "@what: @error's message". */
void              vireo_window_show_error         (VireoWindow      *self,
                                                   const char       *what,
                                                   const GError     *error);
/* Size and selection into GSettings. */
void              vireo_window_save_state         (VireoWindow      *self);
/* "empty" or "machines". */
const char       *vireo_window_get_page           (VireoWindow      *self);

/* For pages inside a window: toasts on the window @widget is in (or a warning). */
void              vireo_widget_show_toast         (GtkWidget        *widget,
                                                   const char       *text);
void              vireo_widget_show_error         (GtkWidget        *widget,
                                                   const char       *what,
                                                   const GError     *error);
/* clang-format on */

G_END_DECLS
