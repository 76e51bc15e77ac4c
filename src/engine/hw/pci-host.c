/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * PCI host bridge with configuration mechanism #1, bus 0 only.
 *
 *   0xcf8  CONFIG_ADDRESS: dword accesses only (bit 31 enable, bus, device, function,
 *          register); other widths there do not touch it
 *   0xcf9  byte accesses: the PIIX3 reset control register (bit 2 set → reset request; bit 1
 *          kept: hard/soft, read back)
 *   0xcfc  CONFIG_DATA, byte/word/dword at 0xcfc-0xcff
 *
 * 00.0 is an i440FX-like host bridge (8086:1237, class 0x0600). Absent functions and other
 * buses read all ones. The PCI I/O window (VR_PCI_IO_WINDOW_*) and, once attached, an MMIO
 * window are routed to the BARs the guest programs; see pci.h for the function API and the
 * locking rules.
 */

#include "config.h"

#include "pci.h"
#include "state.h"

#include <string.h>

#define CONF_ADDR_ENABLE   0x80000000u
#define CONF_ADDR_MASK     0x80fffffcu
#define RCR_SYS_RST        0x02
#define RCR_RST_CPU        0x04

#define I440FX_PAM0        0x59
#define I440FX_PAM_END     0x60
#define I440FX_SMRAM       0x72

typedef struct
{
  VrDevice        parent;
  GRWLock         lock;
  VrBus          *pio;
  VrMachine      *machine;
  VrBus          *mmio;
  uint64_t        mmio_base;
  uint64_t        mmio_size;

  uint32_t        conf_addr;
  uint8_t         rcr;
  VrPciFunction  *fns[256];     /* by devfn; bus 0 */
  VrPciFunction   bridge;
} VrPciHost;

/* ---- Functions ---------------------------------------------------------------------- */

void
vr_pci_function_init (VrPciFunction          *fn,
                      uint16_t                vendor,
                      uint16_t                device,
                      uint32_t                class_code,
                      uint8_t                 revision,
                      const VrPciFunctionOps *ops,
                      void                   *opaque)
{
  g_return_if_fail (fn != NULL);

  memset (fn, 0, sizeof *fn);
  vr_pci_set_word (fn->config, VR_PCI_VENDOR_ID, vendor);
  vr_pci_set_word (fn->config, VR_PCI_DEVICE_ID, device);
  fn->config[VR_PCI_REVISION_ID] = revision;
  fn->config[VR_PCI_CLASS_PROG] = class_code & 0xff;
  fn->config[VR_PCI_CLASS_PROG + 1] = (class_code >> 8) & 0xff;
  fn->config[VR_PCI_CLASS_PROG + 2] = (class_code >> 16) & 0xff;
  fn->config[VR_PCI_HEADER_TYPE] = 0x00;

  vr_pci_set_word (fn->wmask, VR_PCI_COMMAND,
                   VR_PCI_COMMAND_IO | VR_PCI_COMMAND_MEMORY | VR_PCI_COMMAND_MASTER
                   | VR_PCI_COMMAND_INTX_OFF);
  /* Status: the error bits are write-1-to-clear. */
  vr_pci_set_word (fn->w1cmask, VR_PCI_STATUS, 0xf900);
  fn->wmask[0x0c] = 0xff;  /* cache line size */
  fn->wmask[0x0d] = 0xff;  /* latency timer */
  fn->wmask[VR_PCI_INTERRUPT_LINE] = 0xff;

  for (unsigned i = 0; i < VR_PCI_NUM_BARS; i++)
    fn->bars[i].addr = VR_PCI_BAR_UNMAPPED;
  fn->rom_addr = VR_PCI_BAR_UNMAPPED;
  fn->ops = ops;
  fn->opaque = opaque;
  fn->next_cap = 0x40;
}

void
vr_pci_function_set_subsystem (VrPciFunction *fn,
                               uint16_t       vendor,
                               uint16_t       id)
{
  g_return_if_fail (fn != NULL);

  vr_pci_set_word (fn->config, VR_PCI_SUBSYSTEM_VENDOR, vendor);
  vr_pci_set_word (fn->config, VR_PCI_SUBSYSTEM_ID, id);
}

bool
vr_pci_function_set_bar (VrPciFunction  *fn,
                         unsigned        index,
                         VrPciBarType    type,
                         uint64_t        size,
                         bool            prefetchable,
                         VrIoHandler     handler,
                         void           *opaque,
                         GError        **error)
{
  unsigned off;
  uint64_t mask;
  uint32_t flags;

  g_return_val_if_fail (fn != NULL, false);
  g_return_val_if_fail (!fn->plugged, false);

  if (index >= VR_PCI_NUM_BARS || (type == VR_PCI_BAR_MEM64 && index + 1 >= VR_PCI_NUM_BARS)
      || type == VR_PCI_BAR_NONE || (size & (size - 1)) != 0
      || (type == VR_PCI_BAR_IO && (size < 4 || size > 256))
      || (type == VR_PCI_BAR_MEM32 && (size < 16 || size > (1ull << 31)))
      || (type == VR_PCI_BAR_MEM64 && (size < 16 || size > (1ull << 40))))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED, "Invalid PCI BAR %u (size %#" G_GINT64_MODIFIER
                   "x)", index, size);
      return false;
    }

  off = VR_PCI_BAR0 + 4 * index;
  mask = ~(size - 1);
  switch (type)
    {
    case VR_PCI_BAR_IO:
      flags = 0x1;
      vr_pci_set_long (fn->wmask, off, (uint32_t) mask & ~0x3u);
      break;
    case VR_PCI_BAR_MEM32:
      flags = prefetchable ? 0x8 : 0x0;
      vr_pci_set_long (fn->wmask, off, (uint32_t) mask & ~0xfu);
      break;
    case VR_PCI_BAR_MEM64:
      flags = 0x4 | (prefetchable ? 0x8 : 0x0);
      vr_pci_set_long (fn->wmask, off, (uint32_t) mask & ~0xfu);
      vr_pci_set_long (fn->wmask, off + 4, (uint32_t) (mask >> 32));
      vr_pci_set_long (fn->config, off + 4, 0);
      break;
    case VR_PCI_BAR_NONE:
    default:
      g_assert_not_reached ();
    }
  vr_pci_set_long (fn->config, off, flags);

  fn->bars[index] = (VrPciBar) {
    .type = type,
    .prefetchable = prefetchable,
    .size = size,
    .handler = handler,
    .opaque = opaque,
    .addr = VR_PCI_BAR_UNMAPPED,
  };
  return true;
}

#define ROM_ENABLE     0x1u
#define ROM_MIN_SIZE   2048u
#define ROM_MAX_SIZE   (16u << 20)

bool
vr_pci_function_set_rom (VrPciFunction  *fn,
                         const void     *data,
                         size_t          len,
                         GError        **error)
{
  uint64_t size = ROM_MIN_SIZE;

  g_return_val_if_fail (fn != NULL, false);
  g_return_val_if_fail (!fn->plugged, false);
  g_return_val_if_fail (data != NULL || len == 0, false);

  if (len == 0 || len > ROM_MAX_SIZE)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "An expansion ROM of %zu bytes (1 byte to 16 MiB)", len);
      return false;
    }
  while (size < len)
    size <<= 1;
  vr_pci_function_clear_rom (fn);
  fn->rom = g_malloc0 (size);
  memcpy (fn->rom, data, len);
  fn->rom_size = size;
  fn->rom_addr = VR_PCI_BAR_UNMAPPED;
  vr_pci_set_long (fn->config, VR_PCI_ROM_ADDRESS, 0);
  vr_pci_set_long (fn->wmask, VR_PCI_ROM_ADDRESS, (uint32_t) ~(size - 1) | ROM_ENABLE);
  return true;
}

void
vr_pci_function_clear_rom (VrPciFunction *fn)
{
  g_return_if_fail (fn != NULL);
  g_return_if_fail (!fn->plugged);

  g_clear_pointer (&fn->rom, g_free);
  fn->rom_size = 0;
  fn->rom_addr = VR_PCI_BAR_UNMAPPED;
  vr_pci_set_long (fn->wmask, VR_PCI_ROM_ADDRESS, 0);
}

uint8_t
vr_pci_function_add_capability (VrPciFunction *fn,
                                uint8_t        id,
                                const uint8_t *body,
                                size_t         len,
                                const uint8_t *wmask)
{
  unsigned off;
  unsigned size;
  unsigned last = 0;
  unsigned guard = 0;

  g_return_val_if_fail (fn != NULL, 0);
  g_return_val_if_fail (body != NULL || len == 0, 0);
  g_return_val_if_fail (!fn->plugged, 0);

  off = fn->next_cap;
  size = (unsigned) ((2 + len + 3) & ~(size_t) 3);
  if (len > VR_PCI_CONFIG_SIZE || off < 0x40 || off + size > VR_PCI_CONFIG_SIZE)
    return 0;

  /* Append to the list: find its tail. */
  for (unsigned p = fn->config[VR_PCI_CAPABILITY_LIST]; p != 0 && guard < 64; guard++)
    {
      last = p;
      p = fn->config[p + 1];
    }

  fn->config[off] = id;
  fn->config[off + 1] = 0;
  if (len)
    memcpy (fn->config + off + 2, body, len);
  if (wmask && len)
    memcpy (fn->wmask + off + 2, wmask, len);

  if (last)
    fn->config[last + 1] = (uint8_t) off;
  else
    fn->config[VR_PCI_CAPABILITY_LIST] = (uint8_t) off;
  vr_pci_set_word (fn->config, VR_PCI_STATUS,
                   vr_pci_get_word (fn->config, VR_PCI_STATUS) | VR_PCI_STATUS_CAP_LIST);
  fn->next_cap = (uint8_t) MIN (off + size, 0xffu);
  if (off + size >= VR_PCI_CONFIG_SIZE)
    fn->next_cap = 0;
  return (uint8_t) off;
}

uint64_t
vr_pci_function_bar_address (VrPciFunction *fn,
                             unsigned       index)
{
  g_return_val_if_fail (fn != NULL, VR_PCI_BAR_UNMAPPED);
  g_return_val_if_fail (index < VR_PCI_NUM_BARS, VR_PCI_BAR_UNMAPPED);

  return fn->bars[index].addr;
}

/* ---- Decoding ----------------------------------------------------------------------- */

/* Where BAR @i of @fn decodes with configuration space @config (the function's own, or one
 * about to become it), or VR_PCI_BAR_UNMAPPED. */
static uint64_t
bar_decoded_address (VrPciHost     *s,
                     VrPciFunction *fn,
                     const uint8_t *config,
                     unsigned       i)
{
  uint16_t cmd = vr_pci_get_word (config, VR_PCI_COMMAND);
  VrPciBar *bar = &fn->bars[i];
  unsigned off = VR_PCI_BAR0 + 4 * i;
  uint64_t a;

  switch (bar->type)
    {
    case VR_PCI_BAR_IO:
      a = vr_pci_get_long (config, off) & ~0x3u;
      if ((cmd & VR_PCI_COMMAND_IO) && a >= VR_PCI_IO_WINDOW_START
          && a + bar->size <= VR_PCI_IO_WINDOW_END)
        return a;
      break;

    case VR_PCI_BAR_MEM32:
    case VR_PCI_BAR_MEM64:
      a = vr_pci_get_long (config, off) & ~0xfu;
      if (bar->type == VR_PCI_BAR_MEM64)
        a |= (uint64_t) vr_pci_get_long (config, off + 4) << 32;
      if ((cmd & VR_PCI_COMMAND_MEMORY) && s->mmio && a >= s->mmio_base
          && a - s->mmio_base < s->mmio_size && bar->size <= s->mmio_size - (a - s->mmio_base))
        return a;
      break;

    case VR_PCI_BAR_NONE:
    default:
      break;
    }
  return VR_PCI_BAR_UNMAPPED;
}

/* Where @fn's expansion ROM decodes with @config, or VR_PCI_BAR_UNMAPPED. */
static uint64_t
rom_decoded_address (VrPciHost     *s,
                     VrPciFunction *fn,
                     const uint8_t *config)
{
  uint32_t reg = vr_pci_get_long (config, VR_PCI_ROM_ADDRESS);
  uint64_t a = reg & ~(uint32_t) (fn->rom_size - 1);

  if (fn->rom == NULL || !(reg & ROM_ENABLE)
      || !(vr_pci_get_word (config, VR_PCI_COMMAND) & VR_PCI_COMMAND_MEMORY) || !s->mmio
      || a < s->mmio_base || a - s->mmio_base >= s->mmio_size
      || fn->rom_size > s->mmio_size - (a - s->mmio_base))
    return VR_PCI_BAR_UNMAPPED;
  return a;
}

/* With the lock held for writing. */
static void
host_update_bars (VrPciHost *s, VrPciFunction *fn, bool force_off)
{
  fn->rom_addr = force_off ? VR_PCI_BAR_UNMAPPED : rom_decoded_address (s, fn, fn->config);
  for (unsigned i = 0; i < VR_PCI_NUM_BARS; i++)
    {
      VrPciBar *bar = &fn->bars[i];
      uint64_t addr;

      if (bar->type == VR_PCI_BAR_NONE)
        continue;
      addr = bar_decoded_address (s, fn, fn->config, i);
      if (force_off)
        addr = VR_PCI_BAR_UNMAPPED;
      if (addr != bar->addr)
        {
          bar->addr = addr;
          if (fn->ops && fn->ops->bar_update)
            fn->ops->bar_update (fn, i, addr);
        }
    }
}

/* With the lock held for reading. */
static void
host_route (VrPciHost *s, VrPciBarType kind, uint64_t addr, uint8_t *data, uint32_t len,
            bool is_write)
{
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    {
      VrPciFunction *fn = s->fns[d];

      if (!fn)
        continue;
      for (unsigned i = 0; i < VR_PCI_NUM_BARS; i++)
        {
          VrPciBar *bar = &fn->bars[i];
          bool io = bar->type == VR_PCI_BAR_IO;

          if (bar->addr == VR_PCI_BAR_UNMAPPED || io != (kind == VR_PCI_BAR_IO))
            continue;
          if (addr < bar->addr || addr - bar->addr >= bar->size
              || len > bar->size - (addr - bar->addr))
            continue;
          if (bar->handler)
            bar->handler (bar->opaque, addr - bar->addr, data, len, is_write);
          return;
        }
      if (kind != VR_PCI_BAR_IO && fn->rom_addr != VR_PCI_BAR_UNMAPPED && addr >= fn->rom_addr
          && addr - fn->rom_addr < fn->rom_size && len <= fn->rom_size - (addr - fn->rom_addr))
        {
          if (!is_write)
            memcpy (data, fn->rom + (addr - fn->rom_addr), len);
          return;
        }
    }
  /* Nothing decodes it: reads see all ones (the bus pre-filled them). */
  if (!is_write)
    memset (data, 0xff, len);
}

static void
host_io_window (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrPciHost *s = opaque;

  g_rw_lock_reader_lock (&s->lock);
  host_route (s, VR_PCI_BAR_IO, VR_PCI_IO_WINDOW_START + offset, data, len, is_write);
  g_rw_lock_reader_unlock (&s->lock);
}

static void
host_mmio_window (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrPciHost *s = opaque;

  g_rw_lock_reader_lock (&s->lock);
  host_route (s, VR_PCI_BAR_MEM32, s->mmio_base + offset, data, len, is_write);
  g_rw_lock_reader_unlock (&s->lock);
}

/* ---- Configuration space ------------------------------------------------------------ */

static uint32_t
fn_config_read (VrPciFunction *fn, unsigned reg, uint32_t len)
{
  uint32_t val = 0;

  for (uint32_t i = 0; i < len; i++)
    val |= (uint32_t) fn->config[reg + i] << (8 * i);
  if (fn->ops && fn->ops->config_read)
    val = fn->ops->config_read (fn, reg, len, val);
  return val;
}

static void
fn_config_write (VrPciHost *s, VrPciFunction *fn, unsigned reg, uint32_t len, uint32_t val)
{
  uint16_t old_cmd = vr_pci_get_word (fn->config, VR_PCI_COMMAND);
  bool bars = false;

  for (uint32_t i = 0; i < len; i++)
    {
      unsigned o = reg + i;
      uint8_t b = (uint8_t) (val >> (8 * i));
      uint8_t w = fn->wmask[o];

      if ((o >= VR_PCI_BAR0 && o < VR_PCI_BAR0 + 4 * VR_PCI_NUM_BARS)
          || (o >= VR_PCI_ROM_ADDRESS && o < VR_PCI_ROM_ADDRESS + 4))
        bars = true;
      fn->config[o] = (uint8_t) ((fn->config[o] & ~w) | (b & w));
      fn->config[o] &= (uint8_t) ~(b & fn->w1cmask[o]);
    }

  if (bars || old_cmd != vr_pci_get_word (fn->config, VR_PCI_COMMAND))
    host_update_bars (s, fn, false);
  if (fn->ops && fn->ops->config_write)
    fn->ops->config_write (fn, reg, len, val);
}

static void
host_config_data (VrPciHost *s, unsigned byte, uint8_t *data, uint32_t len, bool is_write)
{
  uint32_t addr = s->conf_addr;
  unsigned bus = (addr >> 16) & 0xff;
  unsigned devfn = (addr >> 8) & 0xff;
  unsigned reg = (addr & 0xfc) + byte;
  VrPciFunction *fn;

  if (!(addr & CONF_ADDR_ENABLE) || bus != 0 || !(fn = s->fns[devfn]))
    {
      if (!is_write)
        memset (data, 0xff, len);
      return;
    }
  /* reg + len ≤ 256: reg ≤ 0xfc + byte and byte + len ≤ 4 (checked by the caller). */
  if (is_write)
    fn_config_write (s, fn, reg, len, (uint32_t) vr_io_get (data, len));
  else
    vr_io_put (data, len, fn_config_read (fn, reg, len));
}

static void
host_config_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrPciHost *s = opaque;

  if (offset >= 8 || len > 8 - offset || (offset < 4 && offset + len > 4) || len > 4)
    {
      if (!is_write)
        memset (data, 0xff, len);
      return;
    }

  g_rw_lock_writer_lock (&s->lock);
  if (offset == 0 && len == 4)
    {
      if (is_write)
        s->conf_addr = (uint32_t) vr_io_get (data, 4) & CONF_ADDR_MASK;
      else
        vr_io_put (data, 4, s->conf_addr);
    }
  else if (offset == 1 && len == 1)
    {
      if (is_write)
        {
          if (data[0] & RCR_RST_CPU)
            {
              if (s->machine)
                vr_machine_request_reset (s->machine, "PCI reset control register (0xcf9)");
            }
          else
            s->rcr = data[0] & RCR_SYS_RST;
        }
      else
        data[0] = s->rcr;
    }
  else if (offset >= 4)
    host_config_data (s, (unsigned) offset - 4, data, len, is_write);
  else if (!is_write)
    memset (data, 0xff, len);
  g_rw_lock_writer_unlock (&s->lock);
}

/* ---- Host API ----------------------------------------------------------------------- */

bool
vr_pci_host_add_function (VrDevice       *host,
                          VrPciFunction  *fn,
                          unsigned        slot,
                          unsigned        func,
                          GError        **error)
{
  VrPciHost *s = (VrPciHost *) host;
  unsigned devfn = (slot << 3) | func;
  bool ok = false;

  g_return_val_if_fail (host != NULL, false);
  g_return_val_if_fail (fn != NULL, false);
  g_return_val_if_fail (!fn->plugged, false);

  g_rw_lock_writer_lock (&s->lock);
  if (slot >= 32 || func >= 8)
    g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG, "Invalid PCI address 00:%02x.%x",
                 slot, func);
  else if (s->fns[devfn])
    g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG, "PCI address 00:%02x.%x is taken",
                 slot, func);
  else
    {
      fn->devfn = (uint8_t) devfn;
      fn->plugged = true;
      memcpy (fn->reset_config, fn->config, sizeof fn->config);
      /* A multi-function device says so in function 0's header type. */
      if (func != 0 && s->fns[devfn & ~7u])
        s->fns[devfn & ~7u]->config[VR_PCI_HEADER_TYPE] |= 0x80;
      if (func == 0)
        for (unsigned f = 1; f < 8; f++)
          if (s->fns[devfn + f])
            fn->config[VR_PCI_HEADER_TYPE] |= 0x80;
      s->fns[devfn] = fn;
      ok = true;
    }
  g_rw_lock_writer_unlock (&s->lock);
  return ok;
}

void
vr_pci_host_remove_function (VrDevice      *host,
                             VrPciFunction *fn)
{
  VrPciHost *s = (VrPciHost *) host;

  g_return_if_fail (host != NULL);
  g_return_if_fail (fn != NULL);

  g_rw_lock_writer_lock (&s->lock);
  if (fn->plugged && s->fns[fn->devfn] == fn)
    {
      host_update_bars (s, fn, true);
      s->fns[fn->devfn] = NULL;
      fn->plugged = false;
    }
  g_rw_lock_writer_unlock (&s->lock);
}

bool
vr_pci_host_attach_mmio (VrDevice  *host,
                         VrBus     *mmio,
                         uint64_t   base,
                         uint64_t   size,
                         GError   **error)
{
  VrPciHost *s = (VrPciHost *) host;

  g_return_val_if_fail (host != NULL, false);
  g_return_val_if_fail (mmio != NULL, false);
  g_return_val_if_fail (size > 0 && base + size > base, false);
  g_return_val_if_fail (s->mmio == NULL, false);

  if (!vr_bus_register (mmio, base, size, host_mmio_window, s, "pci-mmio", error))
    return false;

  g_rw_lock_writer_lock (&s->lock);
  s->mmio = mmio;
  s->mmio_base = base;
  s->mmio_size = size;
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    if (s->fns[d])
      host_update_bars (s, s->fns[d], false);
  g_rw_lock_writer_unlock (&s->lock);
  return true;
}

static void
pci_host_reset (VrDevice *dev)
{
  VrPciHost *s = (VrPciHost *) dev;

  g_rw_lock_writer_lock (&s->lock);
  s->conf_addr = 0;
  s->rcr = 0;
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    {
      VrPciFunction *fn = s->fns[d];

      if (!fn)
        continue;
      memcpy (fn->config, fn->reset_config, sizeof fn->config);
      host_update_bars (s, fn, false);
    }
  g_rw_lock_writer_unlock (&s->lock);
}

/* ---- snapshots ---------------------------------------------------------------------- */

/*
 * State, version 1: (version, CONFIG_ADDRESS, reset control register, every function on the
 * bus as (devfn, its 256 bytes of configuration space)).
 *
 * Loading checks that the same functions sit at the same addresses (IDs, class, revision,
 * subsystem and header type must match), then takes the guest-writable bits (wmask) and the
 * write-1-to-clear status bits from the snapshot; read-only bits stay the device's own. BARs
 * are then decoded as after a guest's write: each moved BAR goes through its function's
 * bar_update hook (ioeventfds, a framebuffer's memory slot). config_write hooks are not
 * called: each device's own load() derives what it needs from its restored configuration
 * space (e.g. MSI-X enable). Two decoded BARs that overlap are refused (no guest can use
 * such a bus).
 */
#define PCI_HOST_STATE_VERSION 1
#define PCI_HOST_STATE_TYPE    "(quya(yay))"

static GVariant *
pci_host_save (VrDevice *dev)
{
  VrPciHost *s = (VrPciHost *) dev;
  GVariantBuilder fns;
  GVariant *v;

  g_variant_builder_init (&fns, G_VARIANT_TYPE ("a(yay)"));
  g_rw_lock_reader_lock (&s->lock);
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    if (s->fns[d])
      g_variant_builder_add (&fns, "(y@ay)", (uint8_t) d,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, s->fns[d]->config,
                                                        VR_PCI_CONFIG_SIZE, 1));
  v = g_variant_new (PCI_HOST_STATE_TYPE, PCI_HOST_STATE_VERSION, s->conf_addr, s->rcr, &fns);
  g_rw_lock_reader_unlock (&s->lock);
  return v;
}

/* The identity of a function: the bytes that must match between snapshot and machine. */
static bool
same_identity (const uint8_t *a,
               const uint8_t *b)
{
  static const struct { unsigned off, len; } ids[] = {
    { VR_PCI_VENDOR_ID, 4 }, { VR_PCI_REVISION_ID, 4 }, { VR_PCI_HEADER_TYPE, 1 },
    { VR_PCI_SUBSYSTEM_VENDOR, 4 }, { VR_PCI_INTERRUPT_PIN, 1 },
  };

  for (unsigned i = 0; i < G_N_ELEMENTS (ids); i++)
    if (memcmp (a + ids[i].off, b + ids[i].off, ids[i].len) != 0)
      return false;
  return true;
}

typedef struct
{
  VrPciFunction *fn;
  unsigned       bar;
  uint64_t       addr;
  uint64_t       size;
  bool           io;
} DecodedBar;

static bool
pci_host_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrPciHost *s = (VrPciHost *) dev;
  g_autoptr (GVariant) fns = NULL;
  g_autofree uint8_t *configs = NULL;   /* [devfn * 256 + offset] */
  g_autofree DecodedBar *bars = NULL;
  bool seen[256] = { false };
  unsigned n_bars = 0, n_fns = 0;
  uint32_t conf_addr;
  uint16_t version;
  uint8_t rcr;
  bool ok = false;
  gsize n;

  if (!vr_state_check (state, "pci-host", PCI_HOST_STATE_TYPE, PCI_HOST_STATE_VERSION, error))
    return false;
  g_variant_get (state, PCI_HOST_STATE_TYPE, &version, &conf_addr, &rcr, NULL);
  fns = g_variant_get_child_value (state, 3);
  n = g_variant_n_children (fns);
  if (conf_addr & ~CONF_ADDR_MASK)
    return vr_state_fail (error, "pci-host", "CONFIG_ADDRESS %#x has bits that do not stick",
                          conf_addr);
  if (rcr & ~RCR_SYS_RST)
    return vr_state_fail (error, "pci-host", "reset control register %#x", rcr);
  if (n > G_N_ELEMENTS (s->fns))
    return vr_state_fail (error, "pci-host", "%" G_GSIZE_FORMAT " functions on one bus", n);

  configs = g_malloc0 (G_N_ELEMENTS (s->fns) * VR_PCI_CONFIG_SIZE);
  bars = g_new0 (DecodedBar, G_N_ELEMENTS (s->fns) * VR_PCI_NUM_BARS);

  g_rw_lock_writer_lock (&s->lock);
  /* Check everything before changing anything. */
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) bytes = NULL;
      const uint8_t *saved;
      VrPciFunction *fn;
      uint8_t devfn;
      gsize len;

      g_variant_get_child (fns, i, "(y@ay)", &devfn, &bytes);
      saved = g_variant_get_fixed_array (bytes, &len, 1);
      fn = s->fns[devfn];
      if (fn == NULL)
        {
          vr_state_fail (error, "pci-host", "the snapshot has a device at 00:%02x.%x, this "
                         "machine has none", devfn >> 3, devfn & 7);
          goto out;
        }
      if (seen[devfn])
        {
          vr_state_fail (error, "pci-host", "00:%02x.%x is saved twice", devfn >> 3, devfn & 7);
          goto out;
        }
      seen[devfn] = true;
      n_fns++;
      if (len != VR_PCI_CONFIG_SIZE)
        {
          vr_state_fail (error, "pci-host", "00:%02x.%x: %" G_GSIZE_FORMAT " bytes of "
                         "configuration space, expected %u", devfn >> 3, devfn & 7, len,
                         VR_PCI_CONFIG_SIZE);
          goto out;
        }
      if (!same_identity (saved, fn->config))
        {
          vr_state_fail (error, "pci-host", "00:%02x.%x is another device in the snapshot "
                         "(%04x:%04x class %06x, here %04x:%04x class %06x; or the revision, "
                         "subsystem, header type or interrupt pin differ)", devfn >> 3,
                         devfn & 7, vr_pci_get_word (saved, VR_PCI_VENDOR_ID),
                         vr_pci_get_word (saved, VR_PCI_DEVICE_ID),
                         vr_pci_get_long (saved, VR_PCI_REVISION_ID) >> 8,
                         vr_pci_get_word (fn->config, VR_PCI_VENDOR_ID),
                         vr_pci_get_word (fn->config, VR_PCI_DEVICE_ID),
                         vr_pci_get_long (fn->config, VR_PCI_REVISION_ID) >> 8);
          goto out;
        }
      for (unsigned o = 0; o < VR_PCI_CONFIG_SIZE; o++)
        {
          uint8_t m = fn->wmask[o] | fn->w1cmask[o];

          configs[devfn * VR_PCI_CONFIG_SIZE + o] = (uint8_t) ((fn->config[o] & ~m)
                                                               | (saved[o] & m));
        }
      for (unsigned b = 0; b < VR_PCI_NUM_BARS; b++)
        {
          uint64_t addr;

          if (fn->bars[b].type == VR_PCI_BAR_NONE)
            continue;
          addr = bar_decoded_address (s, fn, configs + devfn * VR_PCI_CONFIG_SIZE, b);
          if (addr == VR_PCI_BAR_UNMAPPED)
            continue;
          for (unsigned k = 0; k < n_bars; k++)
            if (bars[k].io == (fn->bars[b].type == VR_PCI_BAR_IO)
                && addr < bars[k].addr + bars[k].size && bars[k].addr < addr + fn->bars[b].size)
              {
                vr_state_fail (error, "pci-host", "BAR %u of 00:%02x.%x at %#" G_GINT64_MODIFIER
                               "x overlaps BAR %u of 00:%02x.%x", b, devfn >> 3, devfn & 7, addr,
                               bars[k].bar, bars[k].fn->devfn >> 3, bars[k].fn->devfn & 7);
                goto out;
              }
          bars[n_bars++] = (DecodedBar) { fn, b, addr, fn->bars[b].size,
                                          fn->bars[b].type == VR_PCI_BAR_IO };
        }
    }
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    if (s->fns[d] && !seen[d])
      {
        vr_state_fail (error, "pci-host", "the snapshot has no state for 00:%02x.%x", d >> 3,
                       d & 7);
        goto out;
      }

  s->conf_addr = conf_addr;
  s->rcr = rcr;
  for (unsigned d = 0; d < G_N_ELEMENTS (s->fns); d++)
    {
      VrPciFunction *fn = s->fns[d];

      if (!fn)
        continue;
      memcpy (fn->config, configs + d * VR_PCI_CONFIG_SIZE, VR_PCI_CONFIG_SIZE);
      host_update_bars (s, fn, false);
    }
  ok = true;

out:
  g_rw_lock_writer_unlock (&s->lock);
  return ok;
}

static void
pci_host_destroy (VrDevice *dev)
{
  VrPciHost *s = (VrPciHost *) dev;

  vr_bus_unregister (s->pio, VR_PCI_CONFIG_BASE);
  vr_bus_unregister (s->pio, VR_PCI_IO_WINDOW_START);
  if (s->mmio)
    vr_bus_unregister (s->mmio, s->mmio_base);
  g_rw_lock_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps pci_host_ops = {
  .name = "pci-host",
  .reset = pci_host_reset,
  .save = pci_host_save,
  .load = pci_host_load,
  .destroy = pci_host_destroy,
};

void
vr_pci_host_set_bridge_subsystem (VrDevice *dev,
                                  uint16_t  vendor,
                                  uint16_t  id)
{
  VrPciHost *s = (VrPciHost *) dev;

  g_rw_lock_writer_lock (&s->lock);
  vr_pci_set_word (s->bridge.config, VR_PCI_SUBSYSTEM_VENDOR, vendor);
  vr_pci_set_word (s->bridge.config, VR_PCI_SUBSYSTEM_ID, id);
  memcpy (s->bridge.reset_config, s->bridge.config, sizeof s->bridge.config);
  g_rw_lock_writer_unlock (&s->lock);
}

VrDevice *
vr_pci_host_new (VrBus      *pio,
                 VrMachine  *machine,
                 GError    **error)
{
  VrPciHost *s;
  VrPciFunction *br;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrPciHost, 1);
  s->parent.ops = &pci_host_ops;
  g_rw_lock_init (&s->lock);
  s->pio = pio;
  s->machine = machine;

  /* 00.0: the host bridge, like QEMU's i440FX. PAM and SMRAM registers are plain storage
   * (our BIOS area is always RAM), so firmware that programs them reads back its values. */
  br = &s->bridge;
  vr_pci_function_init (br, 0x8086, 0x1237, 0x060000, 0x02, NULL, NULL);
  vr_pci_set_word (br->config, VR_PCI_STATUS, 0x0280);  /* fast back-to-back, medium DEVSEL */
  memset (br->wmask + I440FX_PAM0, 0xff, I440FX_PAM_END - I440FX_PAM0);
  br->wmask[I440FX_SMRAM] = 0x78;
  br->config[I440FX_SMRAM] = 0x02;
  br->devfn = 0;
  br->plugged = true;
  memcpy (br->reset_config, br->config, sizeof br->config);
  s->fns[0] = br;

  if (!vr_bus_register (pio, VR_PCI_CONFIG_BASE, 8, host_config_io, s, "pci-config", error))
    goto fail;
  if (!vr_bus_register (pio, VR_PCI_IO_WINDOW_START,
                        VR_PCI_IO_WINDOW_END - VR_PCI_IO_WINDOW_START, host_io_window, s,
                        "pci-io", error))
    {
      vr_bus_unregister (pio, VR_PCI_CONFIG_BASE);
      goto fail;
    }
  return &s->parent;

fail:
  g_rw_lock_clear (&s->lock);
  g_free (s);
  return NULL;
}
