/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Virtio 1.x over PCI for the test guests: modern transport, split virtqueues. */

#include "virtio.h"

#define VIRTIO_VENDOR     0x1af4
#define POOL_START        0x800000u     /* 8 MiB: above the image and the boot data */
#define POOL_END          0x2000000u    /* 32 MiB */
#define MSI_ADDRESS       0xfee00000u
#define TICK_INITIAL      10000000u     /* 10 ms at KVM's 1 GHz APIC bus, divide by 1 */

static uintptr_t pool_next = POOL_START;
static uint64_t tsc_start, tsc_per_ms;
static bool tick_running;
static int next_slot;
static VirtioDevice *slots[VIRTIO_MAX_DEVICES];
static MadtInfo madt;
static bool madt_ready;

/* --------------------------------------------------------------- small helpers */

static inline void
mb (void)
{
  /* A full barrier, the way Linux does it on x86 (cheaper than mfence, and emulated). */
  __asm__ volatile ("lock; orl $0, (%%rsp)" ::: "memory", "cc");
}

static inline void
compiler_barrier (void)
{
  __asm__ volatile ("" ::: "memory");
}

static inline uint8_t
rd8 (uintptr_t a)
{
  return *(volatile uint8_t *) a;
}

static inline uint16_t
rd16 (uintptr_t a)
{
  return *(volatile uint16_t *) a;
}

static inline uint32_t
rd32 (uintptr_t a)
{
  return *(volatile uint32_t *) a;
}

static inline void
wr8 (uintptr_t a, uint8_t v)
{
  *(volatile uint8_t *) a = v;
}

static inline void
wr16 (uintptr_t a, uint16_t v)
{
  *(volatile uint16_t *) a = v;
}

static inline void
wr32 (uintptr_t a, uint32_t v)
{
  *(volatile uint32_t *) a = v;
}

static inline uint64_t
rdtsc (void)
{
  uint32_t lo, hi;

  __asm__ volatile ("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t) hi << 32) | lo;
}

uint64_t
virtio_now_ms (void)
{
  if (!tsc_per_ms)
    {
      uint64_t t0 = rdtsc ();

      pit_delay_ms (10);
      tsc_per_ms = (rdtsc () - t0) / 10;
      if (!tsc_per_ms)
        tsc_per_ms = 1;
      tsc_start = t0;
    }
  return (rdtsc () - tsc_start) / tsc_per_ms;
}

const char *
virtio_irq_mode_name (VirtioIrqMode mode)
{
  switch (mode)
    {
    case VIRTIO_IRQ_MSIX: return "msix";
    case VIRTIO_IRQ_INTX: return "intx";
    case VIRTIO_IRQ_POLL: return "poll";
    default: return "?";
    }
}

VirtioIrqMode
virtio_irq_mode_from_cmdline (VirtioIrqMode fallback)
{
  if (cmdline_has ("irq=msix"))
    return VIRTIO_IRQ_MSIX;
  if (cmdline_has ("irq=intx"))
    return VIRTIO_IRQ_INTX;
  if (cmdline_has ("irq=poll"))
    return VIRTIO_IRQ_POLL;
  return fallback;
}

void *
virtio_alloc (size_t size, size_t align)
{
  uintptr_t a = (pool_next + align - 1) & ~(uintptr_t) (align - 1);
  uint64_t *p;

  if (a + size > POOL_END || a + size < a)
    guest_fail ("virtio_alloc: out of memory (%lu bytes)", (unsigned long) size);
  pool_next = a + size;
  /* Zero with 8-byte stores: every instruction counts on an emulating host. */
  p = phys (a);
  for (size_t i = 0; i < (size + 7) / 8; i++)
    p[i] = 0;
  return p;
}

/* --------------------------------------------------------------- interrupts */

static void
on_tick (IntFrame *f)
{
}

static void
start_tick (void)
{
  if (tick_running)
    return;
  tick_running = true;
  pic_disable ();
  lapic_enable ();
  set_int_handler (VIRTIO_TICK_VECTOR, on_tick);
  lapic_timer_periodic (VIRTIO_TICK_VECTOR, TICK_INITIAL, 0xb);
}

static void
on_msix (IntFrame *f)
{
  unsigned v = (unsigned) f->vector - VIRTIO_VECTOR_BASE;
  VirtioDevice *dev = slots[v / 16];

  if (!dev)
    return;
  if (v % 16 == 0)
    dev->config_irqs++;
  else if (v % 16 - 1 < VIRTIO_MAX_QUEUES && dev->queues[v % 16 - 1])
    dev->queues[v % 16 - 1]->irqs++;
}

static void
on_intx (IntFrame *f)
{
  VirtioDevice *dev = slots[f->vector - VIRTIO_INTX_VECTOR_BASE];
  uint8_t isr;

  if (!dev)
    return;
  isr = rd8 (dev->isr);                 /* reading clears it and drops the line */
  if (!isr)
    return;                             /* someone else's on a shared line */
  dev->intx_irqs++;
  if (isr & 2)
    dev->config_irqs++;
  if (isr & 1)
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
      {
        VirtQueue *vq = dev->queues[i];

        /* The driver may have consumed the entries already (it polls after every
         * wake-up): compare with what the device had used at the last interrupt. */
        if (vq && vq->used->idx != vq->irq_mark)
          {
            vq->irq_mark = vq->used->idx;
            vq->irqs++;
          }
      }
}

/* Lets interrupts that are pending while IF=0 in (the one after sti's shadow). */
static inline void
irq_window (void)
{
  __asm__ volatile ("sti; nop; cli" ::: "memory");
}

void
virtio_idle (VirtioIrqMode mode)
{
  if (mode == VIRTIO_IRQ_POLL)
    {
      for (int i = 0; i < 20; i++)
        cpu_relax ();
      return;
    }
  wait_for_interrupt ();
}

static bool
setup_msix (VirtioDevice *dev)
{
  const PciDevice *p = &dev->pci;
  uint8_t cap = pci_find_cap (p, PCI_CAP_ID_MSIX, 0);
  uint16_t ctrl;
  uint32_t table;
  uint64_t bar;
  uint32_t dest = lapic_id ();
  unsigned base = VIRTIO_VECTOR_BASE + 16 * dev->slot;

  if (!cap)
    {
      printf ("info: virtio: no MSI-X capability\n");
      return false;
    }
  ctrl = pci_read16 (p, cap + 2);
  table = pci_read32 (p, cap + 4);
  dev->msix_entries = (ctrl & 0x7ff) + 1;
  bar = pci_bar_map (p, table & 7);
  if (!bar)
    {
      printf ("info: virtio: MSI-X table BAR %u cannot be mapped\n", table & 7);
      return false;
    }
  dev->msix_table = (uintptr_t) bar + (table & ~7u);

  /* Enable with the function masked, program the table, then unmask (PCI 6.8.2). */
  pci_write16 (p, cap + 2, (uint16_t) (ctrl | 0x8000 | 0x4000));
  for (unsigned i = 0; i < dev->msix_entries && i < 16; i++)
    {
      uintptr_t e = dev->msix_table + 16 * i;

      wr32 (e + 0, MSI_ADDRESS | dest << 12);
      wr32 (e + 4, 0);
      wr32 (e + 8, base + i);
      wr32 (e + 12, 0);                 /* vector control: unmasked */
      set_int_handler ((int) (base + i), on_msix);
    }
  pci_write16 (p, cap + 2, (uint16_t) ((ctrl | 0x8000) & ~0x4000));
  pci_command (p, PCI_COMMAND_INTX_OFF, 0);

  wr16 (dev->common + VIRTIO_COMMON_MSIX, 0);
  dev->config_vector = rd16 (dev->common + VIRTIO_COMMON_MSIX);
  if (dev->config_vector != 0)
    {
      printf ("info: virtio: msix_config reads 0x%x after writing 0\n", dev->config_vector);
      return false;
    }
  return true;
}

static bool
setup_intx (VirtioDevice *dev)
{
  const PciDevice *p = &dev->pci;
  uint8_t line = pci_read8 (p, PCI_INTERRUPT_LINE);
  uint8_t pin = pci_read8 (p, PCI_INTERRUPT_PIN);
  uint16_t flags = 0xd;                 /* level, active high: PCI lines on a PC */
  unsigned gsi = line;
  uint8_t vector = (uint8_t) (VIRTIO_INTX_VECTOR_BASE + dev->slot);

  if (!madt_ready)
    madt_ready = acpi_parse_madt (&madt);
  if (!madt_ready || !madt.ioapic_addr)
    {
      printf ("info: virtio: no MADT or no IOAPIC for INTx\n");
      return false;
    }
  if (!pin || pin > 4 || !line || line == 0xff)
    {
      printf ("info: virtio: no INTx (pin %u line %u)\n", pin, line);
      return false;
    }
  if (line < 16)
    {
      gsi = madt.isa_gsi[line];
      if (madt.isa_flags[line])
        flags = madt.isa_flags[line];
    }
  dev->intx_gsi = gsi;
  printf ("info: virtio: INTx pin %c line %u gsi %u flags 0x%x\n", 'A' + pin - 1, line, gsi,
          flags);
  set_int_handler (vector, on_intx);
  pci_command (p, 0, PCI_COMMAND_INTX_OFF);
  ioapic_route (madt.ioapic_addr, gsi - madt.ioapic_gsi_base, vector, flags,
                (uint8_t) lapic_id (), false);
  return true;
}

/* --------------------------------------------------------------- discovery */

bool
virtio_find (uint16_t type, int index, VirtioDevice *dev)
{
  PciDevice devs[64];
  int n = pci_scan (devs, ARRAY_SIZE (devs));

  memset (dev, 0, sizeof *dev);
  for (int i = 0; i < n; i++)
    {
      const PciDevice *p = &devs[i];
      bool modern, transitional = false;

      if (p->vendor_id != VIRTIO_VENDOR || p->header_type != 0)
        continue;
      modern = p->device_id == 0x1040 + type;
      if (p->device_id >= 0x1000 && p->device_id <= 0x103f)
        transitional = pci_read16 (p, PCI_SUBSYSTEM_ID) == type;
      if (!modern && !transitional)
        continue;
      if (index-- > 0)
        continue;
      dev->pci = *p;
      dev->type = type;
      dev->transitional = transitional;
      return true;
    }
  return false;
}

bool
virtio_has_feature (const VirtioDevice *dev, unsigned bit)
{
  return (dev->features >> bit) & 1;
}

uint8_t
virtio_status (VirtioDevice *dev)
{
  return rd8 (dev->common + VIRTIO_COMMON_STATUS);
}

static void
set_status (VirtioDevice *dev, uint8_t bits)
{
  wr8 (dev->common + VIRTIO_COMMON_STATUS, virtio_status (dev) | bits);
}

bool
virtio_reset (VirtioDevice *dev)
{
  uint64_t end;

  wr8 (dev->common + VIRTIO_COMMON_STATUS, 0);
  end = virtio_now_ms () + 1000;
  while (virtio_status (dev) != 0)
    {
      if (virtio_now_ms () > end)
        return false;
      cpu_relax ();
    }
  return true;
}

bool
virtio_init (VirtioDevice *dev, VirtioIrqMode mode)
{
  const PciDevice *p = &dev->pci;
  uint64_t bars[PCI_NUM_BARS] = { 0 };
  uint32_t common_len = 0, isr_len = 0;

  virtio_now_ms ();                     /* calibrate before anything is timed */
  dev->irq_mode = mode;
  if (cmdline_has ("pci-unassign"))
    {
      /* Leave the BARs as a firmware-less machine does, so that QEMU runs exercise the
       * assignment code too. */
      pci_command (p, 0, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
      for (unsigned b = 0; b < PCI_NUM_BARS; b++)
        pci_write32 (p, PCI_BAR0 + 4 * b, 0);
    }
  for (uint8_t cap = pci_find_cap (p, PCI_CAP_ID_VNDR, 0); cap;
       cap = pci_find_cap (p, PCI_CAP_ID_VNDR, cap))
    {
      uint8_t cap_len = pci_read8 (p, cap + 2);
      uint8_t cfg_type = pci_read8 (p, cap + 3);
      uint8_t bar = pci_read8 (p, cap + 4);
      uint32_t offset = pci_read32 (p, cap + 8);
      uint32_t length = pci_read32 (p, cap + 12);
      uintptr_t addr;

      if (cap_len < 16 || bar >= PCI_NUM_BARS)
        continue;                       /* reserved BAR values: ignore (4.1.4) */
      if (cfg_type < VIRTIO_PCI_CAP_COMMON_CFG || cfg_type > VIRTIO_PCI_CAP_DEVICE_CFG)
        continue;
      /* The first capability of each type is the one to use. */
      if ((cfg_type == VIRTIO_PCI_CAP_COMMON_CFG && dev->common)
          || (cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG && dev->notify_base)
          || (cfg_type == VIRTIO_PCI_CAP_ISR_CFG && dev->isr)
          || (cfg_type == VIRTIO_PCI_CAP_DEVICE_CFG && dev->device_cfg))
        continue;
      if (!bars[bar] && !(bars[bar] = pci_bar_map (p, bar)))
        {
          printf ("info: virtio: BAR %u cannot be mapped\n", bar);
          return false;
        }
      addr = (uintptr_t) bars[bar] + offset;
      printf ("info: virtio: cap type %u bar %u offset 0x%x length 0x%x at 0x%lx\n", cfg_type,
              bar, offset, length, (unsigned long) addr);
      switch (cfg_type)
        {
        case VIRTIO_PCI_CAP_COMMON_CFG:
          dev->common = addr;
          common_len = length;
          break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
          if (cap_len < 20)
            continue;
          dev->notify_base = addr;
          dev->notify_len = length;
          dev->notify_mult = pci_read32 (p, cap + 16);
          break;
        case VIRTIO_PCI_CAP_ISR_CFG:
          dev->isr = addr;
          isr_len = length;
          break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
          dev->device_cfg = addr;
          dev->device_cfg_len = length;
          break;
        }
    }
  if (!dev->common || common_len < 0x38 || !dev->notify_base || !dev->isr || isr_len < 1)
    {
      printf ("info: virtio: missing capabilities (common %lx/%u notify %lx isr %lx)\n",
              (unsigned long) dev->common, common_len, (unsigned long) dev->notify_base,
              (unsigned long) dev->isr);
      return false;
    }
  pci_command (p, PCI_COMMAND_MASTER, 0);

  /* 3.1.1: reset, ACKNOWLEDGE, DRIVER, read the features. */
  if (!virtio_reset (dev))
    {
      printf ("info: virtio: device_status does not read 0 after reset\n");
      return false;
    }
  set_status (dev, VIRTIO_STATUS_ACKNOWLEDGE);
  set_status (dev, VIRTIO_STATUS_DRIVER);
  wr32 (dev->common + VIRTIO_COMMON_DFSELECT, 0);
  dev->device_features = rd32 (dev->common + VIRTIO_COMMON_DF);
  wr32 (dev->common + VIRTIO_COMMON_DFSELECT, 1);
  dev->device_features |= (uint64_t) rd32 (dev->common + VIRTIO_COMMON_DF) << 32;
  dev->num_queues = rd16 (dev->common + VIRTIO_COMMON_NUMQ);
  printf ("info: virtio: %02x.%u %04x:%04x type %u features 0x%lx queues %u\n", p->dev, p->fn,
          p->vendor_id, p->device_id, dev->type, (unsigned long) dev->device_features,
          dev->num_queues);

  if (next_slot >= VIRTIO_MAX_DEVICES)
    {
      printf ("info: virtio: too many devices\n");
      return false;
    }
  dev->slot = next_slot++;
  slots[dev->slot] = dev;
  switch (mode)
    {
    case VIRTIO_IRQ_MSIX:
      start_tick ();
      if (!setup_msix (dev))
        return false;
      break;
    case VIRTIO_IRQ_INTX:
      start_tick ();
      if (!setup_intx (dev))
        return false;
      break;
    case VIRTIO_IRQ_POLL:
      pci_command (p, PCI_COMMAND_INTX_OFF, 0);
      break;
    }
  return true;
}

bool
virtio_negotiate (VirtioDevice *dev, uint64_t wanted)
{
  wanted |= VIRTIO_F (VIRTIO_F_VERSION_1);
  if (!(dev->device_features & VIRTIO_F (VIRTIO_F_VERSION_1)))
    {
      printf ("info: virtio: device does not offer VIRTIO_F_VERSION_1\n");
      set_status (dev, VIRTIO_STATUS_FAILED);
      return false;
    }
  dev->features = dev->device_features & wanted;
  wr32 (dev->common + VIRTIO_COMMON_GFSELECT, 0);
  wr32 (dev->common + VIRTIO_COMMON_GF, (uint32_t) dev->features);
  wr32 (dev->common + VIRTIO_COMMON_GFSELECT, 1);
  wr32 (dev->common + VIRTIO_COMMON_GF, (uint32_t) (dev->features >> 32));
  set_status (dev, VIRTIO_STATUS_FEATURES_OK);
  if (!(virtio_status (dev) & VIRTIO_STATUS_FEATURES_OK))
    {
      printf ("info: virtio: device refused FEATURES_OK for 0x%lx\n",
              (unsigned long) dev->features);
      set_status (dev, VIRTIO_STATUS_FAILED);
      return false;
    }
  return true;
}

void
virtio_driver_ok (VirtioDevice *dev)
{
  set_status (dev, VIRTIO_STATUS_DRIVER_OK);
}

/* --------------------------------------------------------------- configuration space */

static void
config_bytes (VirtioDevice *dev, unsigned offset, void *buf, unsigned len)
{
  uintptr_t a = dev->device_cfg + offset;
  uint8_t *b = buf;

  /* Natural accesses for naturally aligned fields; 64-bit ones as two 32-bit reads. */
  if ((len == 4 || len == 8) && !(offset & 3))
    {
      for (unsigned i = 0; i < len; i += 4)
        {
          uint32_t v = rd32 (a + i);
          memcpy (b + i, &v, 4);
        }
    }
  else if (len == 2 && !(offset & 1))
    {
      uint16_t v = rd16 (a);
      memcpy (b, &v, 2);
    }
  else
    for (unsigned i = 0; i < len; i++)
      b[i] = rd8 (a + i);
}

void
virtio_config_read (VirtioDevice *dev, unsigned offset, void *buf, unsigned len)
{
  uint8_t before, after;
  int tries = 0;

  if (!dev->device_cfg || offset + len > dev->device_cfg_len)
    guest_fail ("virtio: config read at %u+%u beyond the device config (%u bytes)", offset,
                len, dev->device_cfg_len);
  do
    {
      if (tries++ > 100)
        guest_fail ("virtio: config_generation never settles");
      before = rd8 (dev->common + VIRTIO_COMMON_CFGGENERATION);
      config_bytes (dev, offset, buf, len);
      after = rd8 (dev->common + VIRTIO_COMMON_CFGGENERATION);
    }
  while (before != after);
}

uint8_t
virtio_config_read8 (VirtioDevice *dev, unsigned offset)
{
  uint8_t v;

  virtio_config_read (dev, offset, &v, 1);
  return v;
}

uint16_t
virtio_config_read16 (VirtioDevice *dev, unsigned offset)
{
  uint16_t v;

  virtio_config_read (dev, offset, &v, 2);
  return v;
}

uint32_t
virtio_config_read32 (VirtioDevice *dev, unsigned offset)
{
  uint32_t v;

  virtio_config_read (dev, offset, &v, 4);
  return v;
}

uint64_t
virtio_config_read64 (VirtioDevice *dev, unsigned offset)
{
  uint64_t v;

  virtio_config_read (dev, offset, &v, 8);
  return v;
}

void
virtio_config_write8 (VirtioDevice *dev, unsigned offset, uint8_t v)
{
  if (!dev->device_cfg || offset + 1 > dev->device_cfg_len)
    guest_fail ("virtio: config write at %u beyond the device config", offset);
  wr8 (dev->device_cfg + offset, v);
}

void
virtio_config_write32 (VirtioDevice *dev, unsigned offset, uint32_t v)
{
  if (!dev->device_cfg || offset + 4 > dev->device_cfg_len)
    guest_fail ("virtio: config write at %u beyond the device config", offset);
  wr32 (dev->device_cfg + offset, v);
}

/* --------------------------------------------------------------- virtqueues */

static inline volatile uint16_t *
used_event (VirtQueue *vq)
{
  return &vq->avail->ring[vq->size];
}

static inline volatile uint16_t *
avail_event (VirtQueue *vq)
{
  return (volatile uint16_t *) &vq->used->ring[vq->size];
}

VirtQueue *
virtio_queue_setup (VirtioDevice *dev, unsigned index, unsigned size)
{
  uintptr_t c = dev->common;
  unsigned max;
  uint16_t noff;
  VirtQueue *vq;
  uint64_t a;

  if (index >= VIRTIO_MAX_QUEUES || index >= dev->num_queues)
    {
      printf ("info: virtio: queue %u not available (%u queues)\n", index, dev->num_queues);
      return NULL;
    }
  wr16 (c + VIRTIO_COMMON_Q_SELECT, (uint16_t) index);
  max = rd16 (c + VIRTIO_COMMON_Q_SIZE);
  if (max == 0 || rd16 (c + VIRTIO_COMMON_Q_ENABLE) != 0)
    {
      printf ("info: virtio: queue %u: size %u, enabled %u before setup\n", index, max,
              rd16 (c + VIRTIO_COMMON_Q_ENABLE));
      return NULL;
    }
  if (!size || size > max)
    size = max;
  if (size > VIRTIO_MAX_QUEUE_SIZE)
    size = VIRTIO_MAX_QUEUE_SIZE;
  while (size & (size - 1))             /* a power of two (2.7) */
    size &= size - 1;

  vq = virtio_alloc (sizeof *vq, 64);
  vq->dev = dev;
  vq->index = (uint16_t) index;
  vq->size = (uint16_t) size;
  vq->desc = virtio_alloc (16 * size, 16);
  vq->avail = virtio_alloc (6 + 2 * size, 2);
  vq->used = virtio_alloc (6 + 8 * size, 4096);
  if (virtio_has_feature (dev, VIRTIO_RING_F_INDIRECT_DESC))
    vq->indirect = virtio_alloc (sizeof (VirtqDesc) * VIRTIO_MAX_INDIRECT * size, 16);
  for (unsigned i = 0; i < size; i++)
    vq->desc[i].next = (uint16_t) (i + 1);
  vq->num_free = (uint16_t) size;
  if (dev->irq_mode == VIRTIO_IRQ_POLL)
    {
      /* Polling: ask for no interrupts at all. */
      vq->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
      *used_event (vq) = 0x8000;
    }

  wr16 (c + VIRTIO_COMMON_Q_SIZE, (uint16_t) size);
  a = (uintptr_t) vq->desc;
  wr32 (c + VIRTIO_COMMON_Q_DESCLO, (uint32_t) a);
  wr32 (c + VIRTIO_COMMON_Q_DESCHI, (uint32_t) (a >> 32));
  a = (uintptr_t) vq->avail;
  wr32 (c + VIRTIO_COMMON_Q_AVAILLO, (uint32_t) a);
  wr32 (c + VIRTIO_COMMON_Q_AVAILHI, (uint32_t) (a >> 32));
  a = (uintptr_t) vq->used;
  wr32 (c + VIRTIO_COMMON_Q_USEDLO, (uint32_t) a);
  wr32 (c + VIRTIO_COMMON_Q_USEDHI, (uint32_t) (a >> 32));

  vq->msix_vector = VIRTIO_MSI_NO_VECTOR;
  if (dev->irq_mode == VIRTIO_IRQ_MSIX)
    {
      uint16_t want = (uint16_t) (1 + index);

      if (want >= dev->msix_entries)
        want = 0;                       /* share the config vector */
      wr16 (c + VIRTIO_COMMON_Q_MSIX, want);
      vq->msix_vector = rd16 (c + VIRTIO_COMMON_Q_MSIX);
      if (vq->msix_vector != want)
        {
          printf ("info: virtio: queue %u: msix vector reads 0x%x after writing %u\n", index,
                  vq->msix_vector, want);
          return NULL;
        }
    }

  noff = rd16 (c + VIRTIO_COMMON_Q_NOFF);
  if ((uint64_t) noff * dev->notify_mult + 2 > dev->notify_len)
    {
      printf ("info: virtio: queue %u: notify offset %u x %u beyond the notify region (%u)\n",
              index, noff, dev->notify_mult, dev->notify_len);
      return NULL;
    }
  vq->notify = phys (dev->notify_base + (uintptr_t) noff * dev->notify_mult);
  wr16 (c + VIRTIO_COMMON_Q_ENABLE, 1);
  if (rd16 (c + VIRTIO_COMMON_Q_ENABLE) != 1)
    {
      printf ("info: virtio: queue %u does not read enabled\n", index);
      return NULL;
    }
  printf ("info: virtio: queue %u: size %u (max %u), notify off %u, vector 0x%x\n", index, size,
          max, noff, vq->msix_vector);
  dev->queues[index] = vq;
  return vq;
}

int
virtq_add (VirtQueue *vq, const VirtioBuf *bufs, unsigned n_out, unsigned n_in, void *token,
           bool indirect)
{
  unsigned n = n_out + n_in;
  uint16_t head = vq->free_head;
  uint32_t writable = 0;

  if (n == 0 || !token)
    guest_fail ("virtq_add: empty chain or no token");
  indirect = indirect && vq->indirect && virtio_has_feature (vq->dev, VIRTIO_RING_F_INDIRECT_DESC)
             && n <= VIRTIO_MAX_INDIRECT && n > 1;
  if (vq->num_free < (indirect ? 1 : n))
    return -1;

  if (indirect)
    {
      VirtqDesc *table = vq->indirect + (size_t) head * VIRTIO_MAX_INDIRECT;

      for (unsigned i = 0; i < n; i++)
        {
          table[i].addr = (uintptr_t) bufs[i].addr;
          table[i].len = bufs[i].len;
          table[i].flags = (uint16_t) ((i >= n_out ? VIRTQ_DESC_F_WRITE : 0)
                                       | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
          table[i].next = (uint16_t) (i + 1 < n ? i + 1 : 0);
          if (i >= n_out)
            writable += bufs[i].len;
        }
      vq->desc[head].addr = (uintptr_t) table;
      vq->desc[head].len = (uint32_t) (n * sizeof (VirtqDesc));
      vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
      vq->free_head = vq->desc[head].next;
      vq->chain_len[head] = 1;
      vq->indirect_used++;
    }
  else
    {
      uint16_t d = head;

      for (unsigned i = 0; i < n; i++)
        {
          vq->desc[d].addr = (uintptr_t) bufs[i].addr;
          vq->desc[d].len = bufs[i].len;
          vq->desc[d].flags = (uint16_t) ((i >= n_out ? VIRTQ_DESC_F_WRITE : 0)
                                          | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
          if (i >= n_out)
            writable += bufs[i].len;
          if (i + 1 < n)
            d = vq->desc[d].next;
        }
      vq->free_head = vq->desc[d].next;
      vq->chain_len[head] = (uint16_t) n;
    }
  vq->num_free -= vq->chain_len[head];
  vq->tokens[head] = token;
  vq->writable[head] = writable;

  vq->avail->ring[vq->avail_idx % vq->size] = head;
  compiler_barrier ();                  /* x86: stores are not reordered with stores */
  vq->avail_idx++;
  *(volatile uint16_t *) &vq->avail->idx = vq->avail_idx;
  return head;
}

bool
virtq_kick (VirtQueue *vq)
{
  uint16_t old = vq->kicked_idx, new = vq->avail_idx;
  bool need;

  mb ();                                /* avail->idx visible before we read the device's wish */
  vq->kicked_idx = new;
  if (old == new)
    return false;
  if (virtio_has_feature (vq->dev, VIRTIO_RING_F_EVENT_IDX))
    {
      uint16_t event = *avail_event (vq);
      need = (uint16_t) (new - event - 1) < (uint16_t) (new - old);
    }
  else
    need = !(*(volatile uint16_t *) &vq->used->flags & VIRTQ_USED_F_NO_NOTIFY);
  if (need)
    {
      *vq->notify = vq->index;
      vq->kicks++;
    }
  else
    vq->kicks_suppressed++;
  return need;
}

void *
virtq_get_used (VirtQueue *vq, uint32_t *len)
{
  uint16_t idx = *(volatile uint16_t *) &vq->used->idx;
  VirtqUsedElem e;
  uint16_t d;
  void *token;

  if (idx == vq->last_used)
    return NULL;
  if ((uint16_t) (idx - vq->last_used) > vq->size)
    guest_fail ("virtio: queue %u: used->idx %u runs %u ahead of %u (size %u)", vq->index, idx,
                (uint16_t) (idx - vq->last_used), vq->last_used, vq->size);
  compiler_barrier ();                  /* x86: loads are not reordered with loads */
  e = ((volatile VirtqUsedElem *) vq->used->ring)[vq->last_used % vq->size];
  if (e.id >= vq->size || !vq->tokens[e.id])
    guest_fail ("virtio: queue %u: device returned descriptor %u, which is not in flight",
                vq->index, e.id);
  if (e.len > vq->writable[e.id])
    guest_fail ("virtio: queue %u: device wrote %u bytes into %u writable ones", vq->index,
                e.len, vq->writable[e.id]);

  token = vq->tokens[e.id];
  vq->tokens[e.id] = NULL;
  d = (uint16_t) e.id;
  for (unsigned i = 1; i < vq->chain_len[e.id]; i++)
    d = vq->desc[d].next;
  vq->desc[d].next = vq->free_head;
  vq->free_head = (uint16_t) e.id;
  vq->num_free += vq->chain_len[e.id];
  vq->last_used++;
  vq->completed++;
  if (vq->dev->irq_mode != VIRTIO_IRQ_POLL)
    *used_event (vq) = vq->last_used;   /* interrupt on the next used entry */
  else
    *used_event (vq) = (uint16_t) (vq->last_used + 0x8000);
  if (len)
    *len = e.len;
  return token;
}

unsigned
virtq_pending (const VirtQueue *vq)
{
  return vq->size - vq->num_free;
}

void *
virtq_wait_used (VirtQueue *vq, uint32_t *len, unsigned timeout_ms)
{
  uint64_t end = virtio_now_ms () + timeout_ms;

  for (;;)
    {
      void *t;

      /* The device may have finished before we look: take its interrupt first, so the
       * counts hold every interrupt that arrived. */
      if (vq->dev->irq_mode != VIRTIO_IRQ_POLL)
        irq_window ();
      t = virtq_get_used (vq, len);

      if (t)
        return t;
      if (virtio_now_ms () > end)
        return NULL;
      virtio_idle (vq->dev->irq_mode);
    }
}

bool
virtq_wait_any (VirtQueue **vqs, unsigned n, unsigned timeout_ms)
{
  uint64_t end = virtio_now_ms () + timeout_ms;
  VirtioIrqMode mode = VIRTIO_IRQ_POLL;

  for (unsigned i = 0; i < n; i++)
    if (vqs[i]->dev->irq_mode != VIRTIO_IRQ_POLL)
      mode = vqs[i]->dev->irq_mode;
  for (;;)
    {
      if (mode != VIRTIO_IRQ_POLL)
        irq_window ();
      for (unsigned i = 0; i < n; i++)
        if (*(volatile uint16_t *) &vqs[i]->used->idx != vqs[i]->last_used)
          return true;
      if (virtio_now_ms () > end)
        return false;
      virtio_idle (mode);
    }
}

bool
virtq_wait_irq (VirtQueue *vq, unsigned timeout_ms)
{
  uint64_t end = virtio_now_ms () + timeout_ms;

  if (vq->dev->irq_mode == VIRTIO_IRQ_POLL)
    return false;
  while (vq->irqs == 0)
    {
      if (virtio_now_ms () > end)
        return false;
      wait_for_interrupt ();
    }
  return true;
}
