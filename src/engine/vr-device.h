/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/*
 * A device model. Each concrete device embeds VrDevice as its first member and fills in an
 * ops table. The machine that creates a device owns it: it registers the device's I/O ranges
 * on its buses, calls reset() on a machine reset (with every vCPU stopped) and destroy() when
 * the machine goes away. No file-scope mutable state: many machines live in one process.
 *
 * Snapshots (vr-snapshot.c drives these, always on the machine's I/O thread, so no device
 * handler that runs there — ioeventfd kicks, backends, timers — runs at the same time):
 * - quiesce(): every vCPU is parked. Finish all work in flight (requests handed to worker
 *   threads complete and their used entries are written to guest RAM) and start none until
 *   load() or reset(). Must not wait for anything that runs on the I/O thread. Optional.
 * - save(): after every device was quiesced. Returns the device's whole state as a GVariant
 *   (may be floating; the caller sinks it). Host resources (fds, threads) are not state.
 *   NULL means "nothing to save".
 * - load(): the machine was reset (reset() already called on this device), guest RAM, the
 *   irqchip and every vCPU are restored; vCPUs are parked. @state comes from a file and is
 *   hostile: check its type and every value (a bad one fails with a clear message and leaves
 *   the device as after reset()). Re-assert interrupt lines at their saved levels, re-install
 *   MSI routes, and (virtio) process the queues once, as if kicked, so that buffers the
 *   driver added before the save are not forgotten. NULL means "nothing to load".
 * - resume(): after save() when the machine runs on (quiesce() is undone). Optional.
 */

typedef struct _VrDevice VrDevice;

typedef struct
{
  const char *name;
  void      (*reset)   (VrDevice        *dev);
  void      (*quiesce) (VrDevice        *dev);
  GVariant *(*save)    (VrDevice        *dev);
  bool      (*load)    (VrDevice        *dev,
                        GVariant        *state,
                        GError         **error);
  void      (*resume)  (VrDevice        *dev);
  void      (*destroy) (VrDevice        *dev);
} VrDeviceOps;

struct _VrDevice
{
  const VrDeviceOps *ops;
};

static inline void
vr_device_reset (VrDevice *dev)
{
  if (dev->ops->reset)
    dev->ops->reset (dev);
}

static inline void
vr_device_destroy (VrDevice *dev)
{
  if (dev && dev->ops->destroy)
    dev->ops->destroy (dev);
}

G_END_DECLS
