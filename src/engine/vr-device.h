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
 * save()/load() serialise the device's state for snapshots; they are optional until the
 * snapshot work lands (NULL means "nothing to save").
 */

typedef struct _VrDevice VrDevice;

typedef struct
{
  const char *name;
  void      (*reset)   (VrDevice        *dev);
  GVariant *(*save)    (VrDevice        *dev);
  bool      (*load)    (VrDevice        *dev,
                        GVariant        *state,
                        GError         **error);
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
