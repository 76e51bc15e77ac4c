/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * A bus is a sorted table of non-overlapping address ranges, one for port I/O and one for
 * MMIO per machine. Lookup is a binary search. Both buses use the same handler signature.
 *
 * Locking: the table is protected by a GRWLock; dispatch takes it for reading, so many vCPU
 * threads dispatch at once. A handler runs with that read lock held and must not register or
 * unregister ranges itself. Devices protect their own state with their own mutex.
 */

typedef struct _VrBus VrBus;

/*
 * Called for a guest access to [base, base + length). @offset is relative to the range's
 * base. For a read, the handler fills @data (@len bytes, 1..8; the bus pre-fills it with
 * 0xff). For a write, @data holds the guest's little-endian bytes.
 */
typedef void (*VrIoHandler) (void     *opaque,
                             uint64_t  offset,
                             uint8_t  *data,
                             uint32_t  len,
                             bool      is_write);

VrBus   *vr_bus_new        (const char   *name);
void     vr_bus_free       (VrBus        *bus);
bool     vr_bus_register   (VrBus        *bus,
                            uint64_t      base,
                            uint64_t      length,
                            VrIoHandler   handler,
                            void         *opaque,
                            const char   *owner,
                            GError      **error);
bool     vr_bus_unregister (VrBus        *bus,
                            uint64_t      base);
/* Returns false when nothing is mapped at @addr (reads then see all ones). */
bool     vr_bus_dispatch   (VrBus        *bus,
                            uint64_t      addr,
                            uint8_t      *data,
                            uint32_t      len,
                            bool          is_write);

/* Little-endian helpers for handlers. */
static inline uint64_t
vr_io_get (const uint8_t *data, uint32_t len)
{
  uint64_t v = 0;
  for (uint32_t i = 0; i < len && i < 8; i++)
    v |= (uint64_t) data[i] << (8 * i);
  return v;
}

static inline void
vr_io_put (uint8_t *data, uint32_t len, uint64_t v)
{
  for (uint32_t i = 0; i < len && i < 8; i++)
    data[i] = (uint8_t) (v >> (8 * i));
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrBus, vr_bus_free)

G_END_DECLS
