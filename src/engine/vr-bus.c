/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-bus.h"

#include <string.h>

#include "vr-machine.h"

typedef struct
{
  uint64_t     base;
  uint64_t     length;
  VrIoHandler  handler;
  void        *opaque;
  char        *owner;
} VrBusRange;

struct _VrBus
{
  char    *name;
  GRWLock  lock;    /* protects ranges: read for dispatch, write for (un)registration */
  GArray  *ranges;  /* VrBusRange, sorted by base, never overlapping */
};

static void
range_clear (gpointer p)
{
  VrBusRange *r = p;

  g_free (r->owner);
}

VrBus *
vr_bus_new (const char *name)
{
  VrBus *bus = g_new0 (VrBus, 1);

  bus->name = g_strdup (name);
  g_rw_lock_init (&bus->lock);
  bus->ranges = g_array_new (FALSE, FALSE, sizeof (VrBusRange));
  g_array_set_clear_func (bus->ranges, range_clear);
  return bus;
}

void
vr_bus_free (VrBus *bus)
{
  if (bus == NULL)
    return;
  g_array_unref (bus->ranges);
  g_rw_lock_clear (&bus->lock);
  g_free (bus->name);
  g_free (bus);
}

/* Index of the first range whose base is greater than @addr. Lock held. */
static guint
upper_bound (VrBus *bus, uint64_t addr)
{
  guint lo = 0, hi = bus->ranges->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (g_array_index (bus->ranges, VrBusRange, mid).base <= addr)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

bool
vr_bus_register (VrBus       *bus,
                 uint64_t     base,
                 uint64_t     length,
                 VrIoHandler  handler,
                 void        *opaque,
                 const char  *owner,
                 GError     **error)
{
  VrBusRange range = { base, length, handler, opaque, g_strdup (owner) };
  bool ok = false;
  guint pos;

  g_return_val_if_fail (bus != NULL, false);
  g_return_val_if_fail (handler != NULL, false);

  if (length == 0 || base + length - 1 < base)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                   "%s: invalid range 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER "x for %s",
                   bus->name, base, length, owner);
      g_free (range.owner);
      return false;
    }

  g_rw_lock_writer_lock (&bus->lock);
  pos = upper_bound (bus, base);
  if (pos > 0)
    {
      VrBusRange *prev = &g_array_index (bus->ranges, VrBusRange, pos - 1);

      if (prev->base + prev->length - 1 >= base)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                       "%s: %s at 0x%" G_GINT64_MODIFIER "x overlaps %s",
                       bus->name, owner, base, prev->owner);
          goto out;
        }
    }
  if (pos < bus->ranges->len)
    {
      VrBusRange *next = &g_array_index (bus->ranges, VrBusRange, pos);

      if (base + length - 1 >= next->base)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                       "%s: %s at 0x%" G_GINT64_MODIFIER "x overlaps %s",
                       bus->name, owner, base, next->owner);
          goto out;
        }
    }
  g_array_insert_val (bus->ranges, pos, range);
  range.owner = NULL;
  ok = true;

out:
  g_rw_lock_writer_unlock (&bus->lock);
  g_free (range.owner);
  return ok;
}

bool
vr_bus_unregister (VrBus    *bus,
                   uint64_t  base)
{
  bool found = false;
  guint pos;

  g_return_val_if_fail (bus != NULL, false);

  g_rw_lock_writer_lock (&bus->lock);
  pos = upper_bound (bus, base);
  if (pos > 0 && g_array_index (bus->ranges, VrBusRange, pos - 1).base == base)
    {
      g_array_remove_index (bus->ranges, pos - 1);
      found = true;
    }
  g_rw_lock_writer_unlock (&bus->lock);
  return found;
}

bool
vr_bus_dispatch (VrBus    *bus,
                 uint64_t  addr,
                 uint8_t  *data,
                 uint32_t  len,
                 bool      is_write)
{
  bool handled = false;
  guint pos;

  if (!is_write)
    memset (data, 0xff, MIN (len, 8u));
  if (len == 0 || len > 8)
    return false;

  g_rw_lock_reader_lock (&bus->lock);
  pos = upper_bound (bus, addr);
  if (pos > 0)
    {
      VrBusRange *r = &g_array_index (bus->ranges, VrBusRange, pos - 1);
      uint64_t offset = addr - r->base;

      /* The whole access must fall inside the range; a straddling access is dropped. */
      if (offset < r->length && len <= r->length - offset)
        {
          r->handler (r->opaque, offset, data, len, is_write);
          handled = true;
        }
    }
  g_rw_lock_reader_unlock (&bus->lock);
  return handled;
}
