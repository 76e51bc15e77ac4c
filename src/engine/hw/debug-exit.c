/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * QEMU-compatible isa-debug-exit: any write of value v stops the machine with exit status
 * (v << 1) | 1 (the machine computes it). Reads return 0, as QEMU's, which is how a guest
 * can tell the port is there. Stateless: no lock needed.
 */

#include "config.h"

#include "hw.h"

#include <string.h>

typedef struct
{
  VrDevice   parent;
  VrBus     *pio;
  VrMachine *machine;
} VrDebugExit;

static void
debug_exit_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrDebugExit *s = opaque;

  if (!is_write)
    {
      memset (data, 0, len);
      return;
    }
  if (s->machine)
    vr_machine_request_debug_exit (s->machine, (uint32_t) vr_io_get (data, MIN (len, 4u)));
}

static void
debug_exit_destroy (VrDevice *dev)
{
  VrDebugExit *s = (VrDebugExit *) dev;

  vr_bus_unregister (s->pio, VR_DEBUG_EXIT_BASE);
  g_free (s);
}

static const VrDeviceOps debug_exit_ops = {
  .name = "debug-exit",
  .destroy = debug_exit_destroy,
};

VrDevice *
vr_debug_exit_new (VrBus      *pio,
                   VrMachine  *machine,
                   GError    **error)
{
  VrDebugExit *s;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrDebugExit, 1);
  s->parent.ops = &debug_exit_ops;
  s->pio = pio;
  s->machine = machine;
  if (!vr_bus_register (pio, VR_DEBUG_EXIT_BASE, VR_DEBUG_EXIT_SIZE, debug_exit_io, s,
                        "debug-exit", error))
    {
      g_free (s);
      return NULL;
    }
  return &s->parent;
}
