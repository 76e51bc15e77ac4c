/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vr-machine.h"

G_BEGIN_DECLS

/*
 * A character backend for a serial port: stdio, a pty (a VTE terminal or `screen` attaches),
 * a log file, or nothing. Output is written synchronously from the device's thread and never
 * blocks the guest for long (a pty nobody reads drops output rather than stalling the vCPU).
 * Input is read on the machine's I/O thread and handed to the device through @receive; the
 * device says how many bytes it can take through @can_receive, so nothing typed is dropped.
 */

typedef struct _VrChardev VrChardev;

typedef size_t (*VrChardevCanReceive) (void *opaque);
typedef void   (*VrChardevReceive)    (void *opaque, const uint8_t *buf, size_t len);

/* @path: the file for VR_SERIAL_FILE; with VR_SERIAL_PTY, when set, a log file that gets a
 * copy of all output (appended), whether or not anyone reads the pty. */
VrChardev  *vr_chardev_new          (VrSerialBackend       backend,
                                     const char           *path,
                                     GError              **error);
void        vr_chardev_free         (VrChardev            *chr);
/* Starts reading input on @context (the I/O thread's). */
void        vr_chardev_attach       (VrChardev            *chr,
                                     GMainContext         *context,
                                     VrChardevCanReceive   can_receive,
                                     VrChardevReceive      receive,
                                     void                 *opaque);
/* Stops input: no callback runs after this returns. Call it without holding the lock the
 * device's callbacks take (a device's destroy() calls it first). */
void        vr_chardev_detach       (VrChardev            *chr);
/* The device has room again: input reading resumes. Thread-safe. */
void        vr_chardev_accept_input (VrChardev            *chr);
void        vr_chardev_write        (VrChardev            *chr,
                                     const uint8_t        *buf,
                                     size_t                len);
const char *vr_chardev_get_pty_path (VrChardev            *chr);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrChardev, vr_chardev_free)

G_END_DECLS
