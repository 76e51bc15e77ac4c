/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/*
 * The Console page: a VTE terminal on the machine's serial port. What earlier runs printed
 * (serial.log) comes first; while the machine runs the terminal reads and writes its pty.
 * Scrollback, Ctrl+Shift+C / Ctrl+Shift+V copy and paste.
 */

#define VIREO_TYPE_CONSOLE_PAGE (vireo_console_page_get_type ())
G_DECLARE_FINAL_TYPE (VireoConsolePage, vireo_console_page, VIREO, CONSOLE_PAGE, GtkWidget)

/* clang-format off */
GtkWidget    *vireo_console_page_new          (void);
VireoMachine *vireo_console_page_get_machine  (VireoConsolePage *self);
void          vireo_console_page_set_machine  (VireoConsolePage *self,
                                               VireoMachine     *machine);
/* Whether the terminal is connected to the running machine's serial port. */
gboolean      vireo_console_page_get_connected (VireoConsolePage *self);
/* The terminal's visible text (tests; g_free it). */
char         *vireo_console_page_dup_text     (VireoConsolePage *self);
/* Types @text into the serial port, as if from the keyboard (tests). */
void          vireo_console_page_send_text    (VireoConsolePage *self,
                                               const char       *text);
/* clang-format on */

G_END_DECLS
