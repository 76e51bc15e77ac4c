/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-display.h"
#include "vr-machine.h"

G_BEGIN_DECLS

#define VIREO_TYPE_RUN_WINDOW (vireo_run_window_get_type ())

G_DECLARE_FINAL_TYPE (VireoRunWindow, vireo_run_window, VIREO, RUN_WINDOW, GtkWindow)

/* A small window showing @machine's screen (vireo-run --display window). The machine must
 * outlive the window. Screenshots and recordings go to the XDG Pictures / Videos folders
 * (or the current directory) and their names are printed on standard error. */
GtkWidget      *vireo_run_window_new         (VrMachine      *machine);
VireoDisplay   *vireo_run_window_get_display (VireoRunWindow *self);

G_END_DECLS
