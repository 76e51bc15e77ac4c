/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The machine's I/O thread: a GMainContext run by its own thread. Backends (serial input,
 * later ioeventfds, disk completions, timers) attach their GSources to its context.
 */

typedef struct _VrIoThread VrIoThread;

VrIoThread   *vr_iothread_new         (const char *name);
void          vr_iothread_free        (VrIoThread *thread);
GMainContext *vr_iothread_get_context (VrIoThread *thread);

G_END_DECLS
