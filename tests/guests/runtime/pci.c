/* SPDX-License-Identifier: GPL-3.0-or-later */
/* PCI for the test guests: config space on bus 0, capabilities, BAR sizing and assignment. */

#include "pci.h"

#define MAX_RANGES 64

typedef struct
{
  uint64_t start, end;          /* [start, end) */
  bool     io;
} Range;

/* The allocator's view of bus 0: filled once, on first use. */
static Range used[MAX_RANGES];
static int n_used;
static bool allocator_ready;

static uint32_t
address (const PciDevice *d, unsigned reg)
{
  return 0x80000000u | (uint32_t) d->bus << 16 | (uint32_t) d->dev << 11
         | (uint32_t) d->fn << 8 | (reg & 0xfc);
}

uint8_t
pci_read8 (const PciDevice *d, unsigned reg)
{
  outl (0xcf8, address (d, reg));
  return inb (0xcfc + (reg & 3));
}

uint16_t
pci_read16 (const PciDevice *d, unsigned reg)
{
  outl (0xcf8, address (d, reg));
  return inw (0xcfc + (reg & 2));
}

uint32_t
pci_read32 (const PciDevice *d, unsigned reg)
{
  outl (0xcf8, address (d, reg));
  return inl (0xcfc);
}

void
pci_write8 (const PciDevice *d, unsigned reg, uint8_t v)
{
  outl (0xcf8, address (d, reg));
  outb (0xcfc + (reg & 3), v);
}

void
pci_write16 (const PciDevice *d, unsigned reg, uint16_t v)
{
  outl (0xcf8, address (d, reg));
  outw (0xcfc + (reg & 2), v);
}

void
pci_write32 (const PciDevice *d, unsigned reg, uint32_t v)
{
  outl (0xcf8, address (d, reg));
  outl (0xcfc, v);
}

int
pci_scan (PciDevice *out, int max)
{
  int n = 0;

  for (unsigned dev = 0; dev < 32; dev++)
    for (unsigned fn = 0; fn < 8 && n < max; fn++)
      {
        PciDevice d = { 0, (uint8_t) dev, (uint8_t) fn, 0, 0, 0, 0 };
        uint32_t id = pci_read32 (&d, PCI_VENDOR_ID);
        uint8_t hdr;

        if ((id & 0xffff) == 0xffff)
          {
            if (fn == 0)
              break;
            continue;
          }
        hdr = pci_read8 (&d, PCI_HEADER_TYPE);
        d.vendor_id = id & 0xffff;
        d.device_id = id >> 16;
        d.class_code = pci_read32 (&d, PCI_CLASS_REVISION) >> 8;
        d.header_type = hdr & 0x7f;
        out[n++] = d;
        if (fn == 0 && !(hdr & 0x80))
          break;
      }
  return n;
}

uint8_t
pci_find_cap (const PciDevice *d, uint8_t id, uint8_t after)
{
  uint8_t off;
  int guard = 48;               /* a looping list must not hang us */

  if (!(pci_read16 (d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
    return 0;
  off = after ? pci_read8 (d, after + 1) : pci_read8 (d, PCI_CAPABILITY_LIST);
  while (off >= 0x40 && guard--)
    {
      off &= 0xfc;
      if (pci_read8 (d, off) == id)
        return off;
      off = pci_read8 (d, off + 1);
    }
  return 0;
}

bool
pci_bar_probe (const PciDevice *d, unsigned bar, PciBar *out)
{
  unsigned reg = PCI_BAR0 + 4 * bar;
  uint16_t cmd;
  uint32_t lo, lo_mask, hi = 0, hi_mask = 0;

  memset (out, 0, sizeof *out);
  if (bar >= PCI_NUM_BARS || d->header_type != 0)
    return false;
  cmd = pci_read16 (d, PCI_COMMAND);
  pci_write16 (d, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));

  lo = pci_read32 (d, reg);
  pci_write32 (d, reg, 0xffffffffu);
  lo_mask = pci_read32 (d, reg);
  pci_write32 (d, reg, lo);
  if (!(lo & 1) && (lo & 6) == 4 && bar + 1 < PCI_NUM_BARS)
    {
      hi = pci_read32 (d, reg + 4);
      pci_write32 (d, reg + 4, 0xffffffffu);
      hi_mask = pci_read32 (d, reg + 4);
      pci_write32 (d, reg + 4, hi);
    }
  pci_write16 (d, PCI_COMMAND, cmd);

  if (lo_mask == 0 || lo_mask == 0xffffffffu)
    return true;                        /* not implemented (0), or no device */
  if (lo & 1)
    {
      uint32_t m = lo_mask & 0xfffffffcu;

      m |= 0xffff0000u;                 /* 16-bit decoders may leave the top bits 0 */
      out->type = PCI_BAR_IO;
      out->size = (uint32_t) (~m + 1);
      out->addr = lo & 0xfffcu;
    }
  else
    {
      uint64_t m = lo_mask & 0xfffffff0u;

      if ((lo & 6) == 4)
        {
          out->type = PCI_BAR_MEM64;
          m |= (uint64_t) hi_mask << 32;
          out->addr = ((uint64_t) hi << 32) | (lo & 0xfffffff0u);
        }
      else
        {
          out->type = PCI_BAR_MEM32;
          m |= 0xffffffff00000000ull;
          out->addr = lo & 0xfffffff0u;
        }
      out->prefetchable = lo & 8;
      out->size = ~m + 1;
    }
  return out->size != 0;
}

static void
add_used (uint64_t start, uint64_t size, bool io)
{
  if (n_used < MAX_RANGES && size)
    used[n_used++] = (Range) { start, start + size, io };
}

static void
allocator_init (void)
{
  PciDevice devs[64];
  int n = pci_scan (devs, ARRAY_SIZE (devs));

  allocator_ready = true;
  for (int i = 0; i < n; i++)
    for (unsigned b = 0; b < PCI_NUM_BARS; b++)
      {
        PciBar bar;

        if (!pci_bar_probe (&devs[i], b, &bar))
          continue;
        if (bar.addr)
          add_used (bar.addr, bar.size, bar.type == PCI_BAR_IO);
        if (bar.type == PCI_BAR_MEM64)
          b++;
      }
}

static uint64_t
allocate (uint64_t size, bool io)
{
  uint64_t start = io ? PCI_IO_WINDOW_START : PCI_MEM_WINDOW_START;
  uint64_t end = io ? PCI_IO_WINDOW_END : PCI_MEM_WINDOW_END;
  uint64_t a = start;

  if (!allocator_ready)
    allocator_init ();
  while (a + size <= end)
    {
      bool clash = false;

      a = (a + size - 1) & ~(size - 1);
      if (a + size > end)
        break;
      for (int i = 0; i < n_used; i++)
        if (used[i].io == io && a < used[i].end && used[i].start < a + size)
          {
            a = used[i].end;
            clash = true;
            break;
          }
      if (!clash)
        {
          add_used (a, size, io);
          return a;
        }
    }
  return 0;
}

void
pci_command (const PciDevice *d, uint16_t set, uint16_t clear)
{
  uint16_t cmd = pci_read16 (d, PCI_COMMAND);

  pci_write16 (d, PCI_COMMAND, (uint16_t) ((cmd & ~clear) | set));
}

uint64_t
pci_bar_map (const PciDevice *d, unsigned bar)
{
  unsigned reg = PCI_BAR0 + 4 * bar;
  PciBar b;
  uint64_t a;

  if (!pci_bar_probe (d, bar, &b) || b.type == PCI_BAR_NONE)
    return 0;
  if (b.type == PCI_BAR_IO)
    {
      if (!b.addr)
        {
          if (!(a = allocate (b.size, true)))
            return 0;
          pci_command (d, 0, PCI_COMMAND_IO);
          pci_write32 (d, reg, (uint32_t) a);
          b.addr = pci_read32 (d, reg) & 0xfffcu;
        }
      pci_command (d, PCI_COMMAND_IO, 0);
      return b.addr;
    }
  if (!b.addr || b.addr + b.size > 0x100000000ull)
    {
      if (!(a = allocate (b.size, false)))
        return 0;
      pci_command (d, 0, PCI_COMMAND_MEMORY);
      pci_write32 (d, reg, (uint32_t) a);
      if (b.type == PCI_BAR_MEM64)
        pci_write32 (d, reg + 4, 0);
      pci_bar_probe (d, bar, &b);
      if (b.addr != a)
        return 0;
    }
  pci_command (d, PCI_COMMAND_MEMORY, 0);
  return b.addr;
}
