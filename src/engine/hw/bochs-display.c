/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * bochs-display-compatible PCI card; see bochs-display.h for the layout.
 *
 * Register semantics follow what Linux's drivers/gpu/drm/tiny/bochs.c and SeaBIOS's
 * vgasrc/bochsdisplay.c expect of QEMU's device: the dispi registers store what the guest
 * writes (reads give it back), ID reads 0xB0C5, VIDEO_MEMORY_64K the framebuffer size; with
 * GETCAPS set in ENABLE, XRES/YRES/BPP read the maxima. The mode is derived from them, and
 * only a fully valid one is shown: ENABLED, bpp 16/24/32, 64..4096 pixels each way, and
 * offset + stride * height inside the framebuffer. Anything else shows nothing (a guest can
 * only break its own display).
 *
 * Threads and locks: BAR2 accesses arrive on vCPU threads (PCI host read lock held), BAR
 * moves through the bar_update hook (host write lock held), polls on the I/O thread. All of
 * them take @lock; under it the device calls into VrMemory's slot lock and VrDisplay's lock
 * (both leaves).
 */

#include "config.h"

#include "bochs-display.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define VBE_NUM_REGS     0xa
#define MMIO_EDID        0x000
#define MMIO_EDID_SIZE   0x400
#define MMIO_VBE         0x500
#define MMIO_VBE_SIZE    0x100
#define MMIO_QEXT        0x600
#define MMIO_QEXT_SIZE   0x8    /* what 0x600 reads */
#define QEXT_LITTLE      0x1e1e1e1eu
#define QEXT_BIG         0xbebebebeu
#define PAGE_SHIFT       12
#define FB_PAGES         (VR_BOCHS_FB_SIZE >> PAGE_SHIFT)

typedef struct
{
  VrDevice        parent;
  VrPciFunction   pci;
  VrDevice       *pci_host;
  VrMemory       *memory;
  VrDisplay      *display;
  VrMachine      *machine;

  GMutex          lock;
  int             fb_fd;
  uint8_t        *fb;
  int             slot;          /* extra memory slot id, -1: none (exits only) */
  uint64_t        fb_addr;       /* BAR0 as decoded, or VR_PCI_BAR_UNMAPPED */
  uint16_t        vbe[VBE_NUM_REGS];
  bool            big_endian;
  uint8_t         edid[VR_EDID_SIZE];
  uint32_t        boot_width;    /* mode turned on at reset (direct Linux boot), 0: none */
  uint32_t        boot_height;
  VrDisplayMode   mode;          /* format NONE: nothing shown */
  uint64_t        mode_offset;
  uint64_t        kvm_dirty[FB_PAGES / 64];
  uint64_t        sw_dirty[FB_PAGES / 64];   /* pages written through exits */
  bool            slot_refused_logged;
} VrBochsDisplay;

/* ---- the mode ----------------------------------------------------------------------------- */

/* With @lock held: derives the mode from the registers and tells the display. */
static void
update_mode (VrBochsDisplay *self)
{
  const uint16_t *vbe = self->vbe;
  VrDisplayMode mode = { VR_PIXEL_FORMAT_NONE, 0, 0, 0 };
  uint64_t offset = 0, stride, virt_width;
  unsigned bytes;

  if (!(vbe[VR_VBE_DISPI_INDEX_ENABLE] & VR_VBE_DISPI_ENABLED) || self->big_endian)
    goto out;
  switch (vbe[VR_VBE_DISPI_INDEX_BPP])
    {
    case 16: mode.format = VR_PIXEL_FORMAT_RGB565; break;
    case 24: mode.format = VR_PIXEL_FORMAT_RGB888; break;
    case 32: mode.format = VR_PIXEL_FORMAT_XRGB8888; break;
    default: goto out;
    }
  bytes = vr_pixel_format_bpp (mode.format);
  mode.width = vbe[VR_VBE_DISPI_INDEX_XRES];
  mode.height = vbe[VR_VBE_DISPI_INDEX_YRES];
  if (mode.width < 64 || mode.height < 64 || mode.width > VR_DISPLAY_MAX_WIDTH
      || mode.height > VR_DISPLAY_MAX_HEIGHT)
    {
      mode.format = VR_PIXEL_FORMAT_NONE;
      goto out;
    }
  virt_width = MAX ((uint64_t) vbe[VR_VBE_DISPI_INDEX_VIRT_WIDTH], (uint64_t) mode.width);
  stride = virt_width * bytes;
  offset = (uint64_t) vbe[VR_VBE_DISPI_INDEX_X_OFFSET] * bytes
           + (uint64_t) vbe[VR_VBE_DISPI_INDEX_Y_OFFSET] * stride;
  if (offset + stride * mode.height > VR_BOCHS_FB_SIZE)
    {
      mode.format = VR_PIXEL_FORMAT_NONE;
      goto out;
    }
  mode.stride = (uint32_t) stride;

out:
  if (mode.format == VR_PIXEL_FORMAT_NONE)
    {
      mode = (VrDisplayMode) { VR_PIXEL_FORMAT_NONE, 0, 0, 0 };
      offset = 0;
    }
  if (memcmp (&mode, &self->mode, sizeof mode) == 0 && offset == self->mode_offset)
    return;
  self->mode = mode;
  self->mode_offset = offset;
  vr_display_source_set_scanout (self->display, VR_DISPLAY_SOURCE_BOCHS, &mode,
                                 mode.format != VR_PIXEL_FORMAT_NONE ? self->fb + offset : NULL,
                                 NULL);
}

static uint16_t
vbe_read (VrBochsDisplay *self,
          unsigned        index)
{
  bool caps = self->vbe[VR_VBE_DISPI_INDEX_ENABLE] & VR_VBE_DISPI_GETCAPS;

  switch (index)
    {
    case VR_VBE_DISPI_INDEX_ID:
      return VR_VBE_DISPI_ID5;
    case VR_VBE_DISPI_INDEX_XRES:
      return caps ? VR_DISPLAY_MAX_WIDTH : self->vbe[index];
    case VR_VBE_DISPI_INDEX_YRES:
      return caps ? VR_DISPLAY_MAX_HEIGHT : self->vbe[index];
    case VR_VBE_DISPI_INDEX_BPP:
      return caps ? 32 : self->vbe[index];
    case VR_VBE_DISPI_INDEX_VIDEO_MEMORY_64K:
      return (uint16_t) (VR_BOCHS_FB_SIZE >> 16);
    default:
      return index < VBE_NUM_REGS ? self->vbe[index] : 0xffff;
    }
}

static void
vbe_write (VrBochsDisplay *self,
           unsigned        index,
           uint16_t        value)
{
  /* ID is fixed (0xB0C5), VIDEO_MEMORY_64K read-only; the rest is stored as written and
   * judged by update_mode(). */
  if (index == VR_VBE_DISPI_INDEX_ID || index >= VBE_NUM_REGS)
    return;
  self->vbe[index] = value;
  update_mode (self);
}

/* ---- BAR2: registers ---------------------------------------------------------------------- */

static void
mmio_access (void     *opaque,
             uint64_t  offset,
             uint8_t  *data,
             uint32_t  len,
             bool      is_write)
{
  VrBochsDisplay *self = opaque;

  /* The host checked offset + len ≤ 4 KiB; len is 1, 2, 4 or 8. */
  g_mutex_lock (&self->lock);
  if (offset + len <= MMIO_EDID + MMIO_EDID_SIZE)
    {
      if (!is_write)
        for (uint32_t i = 0; i < len; i++)
          data[i] = offset + i < VR_EDID_SIZE ? self->edid[offset + i] : 0;
    }
  else if (offset >= MMIO_VBE && offset + len <= MMIO_VBE + MMIO_VBE_SIZE)
    {
      /* 16-bit registers; wider accesses cover several, narrower ones part of one. */
      for (uint32_t i = 0; i < len;)
        {
          unsigned off = (unsigned) (offset - MMIO_VBE) + i;
          unsigned index = off / 2;
          uint16_t v = vbe_read (self, index);

          if (!is_write)
            {
              data[i] = (uint8_t) (v >> (8 * (off & 1)));
              i++;
              continue;
            }
          if ((off & 1) == 0 && i + 1 < len)
            {
              v = (uint16_t) (data[i] | data[i + 1] << 8);
              i += 2;
            }
          else
            {
              unsigned shift = 8 * (off & 1);

              v = (uint16_t) ((self->vbe[MIN (index, VBE_NUM_REGS - 1)] & ~(0xff << shift))
                              | (data[i] << shift));
              i++;
            }
          vbe_write (self, index, v);
        }
    }
  else if (offset >= MMIO_QEXT && offset + len <= MMIO_QEXT + MMIO_QEXT_SIZE)
    {
      unsigned off = (unsigned) (offset - MMIO_QEXT);

      if (!is_write)
        {
          uint8_t regs[8];

          vr_pci_set_long (regs, 0, MMIO_QEXT_SIZE);
          vr_pci_set_long (regs, 4, self->big_endian ? QEXT_BIG : QEXT_LITTLE);
          memcpy (data, regs + off, len);
        }
      else if (off == 4 && len == 4)
        {
          uint32_t v = (uint32_t) vr_io_get (data, 4);

          if (v == QEXT_BIG || v == QEXT_LITTLE)
            {
              self->big_endian = v == QEXT_BIG;
              update_mode (self);
            }
        }
    }
  else if (!is_write)
    memset (data, 0, len);
  g_mutex_unlock (&self->lock);
}

/* ---- BAR0: the framebuffer ---------------------------------------------------------------- */

/* Only reached when KVM has no slot there (it refused one): the same memory, by exits. */
static void
fb_access (void     *opaque,
           uint64_t  offset,
           uint8_t  *data,
           uint32_t  len,
           bool      is_write)
{
  VrBochsDisplay *self = opaque;

  if (offset >= VR_BOCHS_FB_SIZE || len > VR_BOCHS_FB_SIZE - offset)
    return;
  if (!is_write)
    {
      memcpy (data, self->fb + offset, len);
      return;
    }
  memcpy (self->fb + offset, data, len);
  for (uint64_t p = offset >> PAGE_SHIFT; p <= (offset + len - 1) >> PAGE_SHIFT; p++)
    g_atomic_pointer_or ((gsize *) &self->sw_dirty[p / 64], (gsize) 1 << (p % 64));
}

static void
bar_update (VrPciFunction *fn,
            unsigned       bar,
            uint64_t       addr)
{
  VrBochsDisplay *self = fn->opaque;
  g_autoptr (GError) error = NULL;

  if (bar != 0)
    return;
  g_mutex_lock (&self->lock);
  self->fb_addr = addr;
  if (self->slot >= 0
      && !vr_memory_set_slot_address (self->memory, self->slot,
                                      addr == VR_PCI_BAR_UNMAPPED ? VR_MEMORY_UNMAPPED : addr,
                                      &error)
      && !self->slot_refused_logged)
    {
      self->slot_refused_logged = true;
      vr_machine_log_guest_error (self->machine, "bochs-display",
                                  "framebuffer through exits: %s", error->message);
    }
  g_mutex_unlock (&self->lock);
}

static const VrPciFunctionOps pci_ops = {
  .bar_update = bar_update,
};

/* ---- damage ------------------------------------------------------------------------------- */

static void
bochs_poll (gpointer   opaque,
            VrDisplay *display)
{
  VrBochsDisplay *self = opaque;
  uint64_t first_page, last_page;
  int64_t run_start = -1, run_end = -1;

  g_mutex_lock (&self->lock);
  if (self->mode.format == VR_PIXEL_FORMAT_NONE)
    goto out;

  memset (self->kvm_dirty, 0, sizeof self->kvm_dirty);
  if (self->slot >= 0)
    vr_memory_get_dirty_log (self->memory, self->slot, self->kvm_dirty);
  for (unsigned w = 0; w < G_N_ELEMENTS (self->sw_dirty); w++)
    if (self->sw_dirty[w])
      self->kvm_dirty[w] |= (uint64_t) g_atomic_pointer_and ((gsize *) &self->sw_dirty[w], 0);

  first_page = self->mode_offset >> PAGE_SHIFT;
  last_page = (self->mode_offset + (uint64_t) self->mode.stride * self->mode.height - 1)
              >> PAGE_SHIFT;
  for (uint64_t p = first_page; p <= last_page; p++)
    {
      uint64_t start, end;
      int64_t row0, row1;

      if (self->kvm_dirty[p / 64] == 0)
        {
          p |= 63;   /* the loop's p++ goes to the next word */
          continue;
        }
      if (!(self->kvm_dirty[p / 64] & ((uint64_t) 1 << (p % 64))))
        continue;
      /* The rows this page touches, in the mode. */
      start = MAX (p << PAGE_SHIFT, self->mode_offset) - self->mode_offset;
      end = ((p + 1) << PAGE_SHIFT) - self->mode_offset;   /* exclusive; > start */
      row0 = (int64_t) (start / self->mode.stride);
      row1 = (int64_t) MIN ((end - 1) / self->mode.stride, (uint64_t) self->mode.height - 1);
      if (row0 > row1)
        continue;
      if (run_start >= 0 && row0 <= run_end + 1)
        run_end = MAX (run_end, row1);
      else
        {
          if (run_start >= 0)
            vr_display_source_damage_rows (display, VR_DISPLAY_SOURCE_BOCHS, (uint32_t) run_start,
                                           (uint32_t) (run_end - run_start + 1));
          run_start = row0;
          run_end = row1;
        }
    }
  if (run_start >= 0)
    vr_display_source_damage_rows (display, VR_DISPLAY_SOURCE_BOCHS, (uint32_t) run_start,
                                   (uint32_t) (run_end - run_start + 1));

out:
  g_mutex_unlock (&self->lock);
}

static const VrDisplaySourceOps source_ops = {
  .poll = bochs_poll,
};

/* ---- device ------------------------------------------------------------------------------- */

static void
set_mode_registers (VrBochsDisplay *self,
                    uint32_t        width,
                    uint32_t        height)
{
  memset (self->vbe, 0, sizeof self->vbe);
  self->vbe[VR_VBE_DISPI_INDEX_ID] = VR_VBE_DISPI_ID5;
  if (width == 0 || height == 0)
    return;
  self->vbe[VR_VBE_DISPI_INDEX_XRES] = (uint16_t) width;
  self->vbe[VR_VBE_DISPI_INDEX_YRES] = (uint16_t) height;
  self->vbe[VR_VBE_DISPI_INDEX_BPP] = 32;
  self->vbe[VR_VBE_DISPI_INDEX_VIRT_WIDTH] = (uint16_t) width;
  self->vbe[VR_VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t) height;
  self->vbe[VR_VBE_DISPI_INDEX_ENABLE] = VR_VBE_DISPI_ENABLED | VR_VBE_DISPI_LFB_ENABLED;
}

static void
bochs_reset (VrDevice *dev)
{
  VrBochsDisplay *self = (VrBochsDisplay *) dev;

  g_mutex_lock (&self->lock);
  self->big_endian = false;
  set_mode_registers (self, self->boot_width, self->boot_height);
  update_mode (self);
  g_mutex_unlock (&self->lock);
}

void
vr_bochs_display_set_boot_mode (VrDevice *dev,
                                uint32_t  width,
                                uint32_t  height)
{
  VrBochsDisplay *self = (VrBochsDisplay *) dev;

  g_return_if_fail (dev != NULL);
  g_return_if_fail (width <= VR_DISPLAY_MAX_WIDTH && height <= VR_DISPLAY_MAX_HEIGHT);
  g_return_if_fail ((uint64_t) width * height * 4 <= VR_BOCHS_FB_SIZE);

  g_mutex_lock (&self->lock);
  self->boot_width = width;
  self->boot_height = height;
  g_mutex_unlock (&self->lock);
}

static void
bochs_destroy (VrDevice *dev)
{
  VrBochsDisplay *self = (VrBochsDisplay *) dev;

  if (self->pci.plugged)
    vr_pci_host_remove_function (self->pci_host, &self->pci);
  vr_pci_function_clear_rom (&self->pci);
  if (self->display)
    vr_display_remove_source (self->display, VR_DISPLAY_SOURCE_BOCHS);
  if (self->slot >= 0)
    vr_memory_remove_slot (self->memory, self->slot);
  if (self->fb)
    munmap (self->fb, VR_BOCHS_FB_SIZE);
  if (self->fb_fd >= 0)
    close (self->fb_fd);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/*
 * State, version 1: (version, the dispi registers 0-9 as the guest wrote them, big-endian
 * framebuffer, the framebuffer's contents as runs of pages that are not all zero:
 * (first page, bytes)). All of the 16 MiB is saved, not only what the current mode shows:
 * a guest's driver keeps other buffers there (Linux's bochs DRM driver allocates in VRAM).
 * Loading writes the pages, zeroes the rest, then sets the mode through the same path as a
 * register write, so the display sees it; every row of the mode is damaged, since the new
 * pixels did not come through the guest's writes.
 */
#define BOCHS_STATE_VERSION 1
#define BOCHS_STATE_TYPE    "(q@aqba(uay))"
#define PAGE_SIZE_BYTES     ((size_t) 1 << PAGE_SHIFT)

static bool
page_is_zero (const uint8_t *page)
{
  const uint64_t *w = (const uint64_t *) page;

  for (size_t i = 0; i < PAGE_SIZE_BYTES / sizeof *w; i++)
    if (w[i])
      return false;
  return true;
}

static GVariant *
bochs_save (VrDevice *dev)
{
  VrBochsDisplay *self = (VrBochsDisplay *) dev;
  GVariantBuilder runs;
  GVariant *v;

  g_variant_builder_init (&runs, G_VARIANT_TYPE ("a(uay)"));
  g_mutex_lock (&self->lock);
  for (size_t p = 0; p < FB_PAGES;)
    {
      size_t first;

      if (page_is_zero (self->fb + (p << PAGE_SHIFT)))
        {
          p++;
          continue;
        }
      for (first = p; p < FB_PAGES && !page_is_zero (self->fb + (p << PAGE_SHIFT)); p++)
        ;
      g_variant_builder_add (&runs, "(u@ay)", (uint32_t) first,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                        self->fb + (first << PAGE_SHIFT),
                                                        (p - first) << PAGE_SHIFT, 1));
    }
  v = g_variant_new (BOCHS_STATE_TYPE, BOCHS_STATE_VERSION,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, self->vbe, VBE_NUM_REGS,
                                                sizeof self->vbe[0]),
                     self->big_endian, &runs);
  g_mutex_unlock (&self->lock);
  return v;
}

static bool
bochs_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrBochsDisplay *self = (VrBochsDisplay *) dev;
  g_autoptr (GVariant) vbe = NULL, runs = NULL;
  const uint16_t *regs;
  gboolean big_endian;
  uint16_t version;
  uint64_t next = 0;
  gsize n_regs, n_runs;

  if (!vr_state_check (state, "bochs-display", BOCHS_STATE_TYPE, BOCHS_STATE_VERSION, error))
    return false;
  g_variant_get (state, BOCHS_STATE_TYPE, &version, &vbe, &big_endian, NULL);
  runs = g_variant_get_child_value (state, 3);
  regs = g_variant_get_fixed_array (vbe, &n_regs, sizeof (uint16_t));
  if (n_regs != VBE_NUM_REGS || regs[VR_VBE_DISPI_INDEX_ID] != VR_VBE_DISPI_ID5)
    return vr_state_fail (error, "bochs-display", "%" G_GSIZE_FORMAT " dispi registers, ID "
                          "%#x (expected %u, ID %#x)", n_regs, n_regs ? regs[0] : 0,
                          VBE_NUM_REGS, VR_VBE_DISPI_ID5);
  n_runs = g_variant_n_children (runs);
  for (gsize i = 0; i < n_runs; i++)
    {
      g_autoptr (GVariant) bytes = NULL;
      uint32_t page;
      gsize len;

      g_variant_get_child (runs, i, "(u@ay)", &page, &bytes);
      len = g_variant_get_size (bytes);
      if (page < next || page >= FB_PAGES || len == 0 || len % PAGE_SIZE_BYTES != 0
          || len / PAGE_SIZE_BYTES > FB_PAGES - page)
        return vr_state_fail (error, "bochs-display", "framebuffer run %" G_GSIZE_FORMAT
                              ": page %u, %" G_GSIZE_FORMAT " bytes (of %u pages, in order)",
                              i, page, len, FB_PAGES);
      next = page + len / PAGE_SIZE_BYTES;
    }

  g_mutex_lock (&self->lock);
  /* The memfd's pages go back to the host; they read as zero. */
  if (fallocate (self->fb_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                 VR_BOCHS_FB_SIZE) < 0)
    memset (self->fb, 0, VR_BOCHS_FB_SIZE);
  for (gsize i = 0; i < n_runs; i++)
    {
      g_autoptr (GVariant) bytes = NULL;
      uint32_t page;

      g_variant_get_child (runs, i, "(u@ay)", &page, &bytes);
      memcpy (self->fb + ((size_t) page << PAGE_SHIFT), g_variant_get_data (bytes),
              g_variant_get_size (bytes));
    }
  memcpy (self->vbe, regs, sizeof self->vbe);
  self->big_endian = big_endian;
  update_mode (self);
  if (self->mode.format != VR_PIXEL_FORMAT_NONE)
    vr_display_source_damage_rows (self->display, VR_DISPLAY_SOURCE_BOCHS, 0,
                                   self->mode.height);
  g_mutex_unlock (&self->lock);
  return true;
}

static const VrDeviceOps bochs_ops = {
  .name = "bochs-display",
  .reset = bochs_reset,
  .save = bochs_save,
  .load = bochs_load,
  .destroy = bochs_destroy,
};

VrDevice *
vr_bochs_display_new (VrDevice   *pci_host,
                      VrMemory   *memory,
                      VrDisplay  *display,
                      VrMachine  *machine,
                      unsigned    slot,
                      uint64_t    fb_addr,
                      uint64_t    mmio_addr,
                      GBytes     *rom,
                      GError    **error)
{
  VrBochsDisplay *self;
  void *fb;

  g_return_val_if_fail (pci_host != NULL && memory != NULL && display != NULL, NULL);
  g_return_val_if_fail ((fb_addr & (VR_BOCHS_FB_SIZE - 1)) == 0, NULL);
  g_return_val_if_fail ((mmio_addr & (VR_BOCHS_MMIO_SIZE - 1)) == 0, NULL);

  self = g_new0 (VrBochsDisplay, 1);
  self->parent.ops = &bochs_ops;
  g_mutex_init (&self->lock);
  self->pci_host = pci_host;
  self->memory = memory;
  self->machine = machine;
  self->slot = -1;
  self->fb_addr = VR_PCI_BAR_UNMAPPED;
  self->fb_fd = memfd_create ("vireo-framebuffer", MFD_CLOEXEC);
  if (self->fb_fd < 0 || ftruncate (self->fb_fd, VR_BOCHS_FB_SIZE) < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY, "Cannot create the framebuffer: %s",
                   g_strerror (errno));
      goto fail;
    }
  fb = mmap (NULL, VR_BOCHS_FB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fb_fd, 0);
  if (fb == MAP_FAILED)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY, "Cannot map the framebuffer: %s",
                   g_strerror (errno));
      goto fail;
    }
  self->fb = fb;
  madvise (self->fb, VR_BOCHS_FB_SIZE, MADV_DONTDUMP);
  vr_display_make_edid (VR_DISPLAY_DEFAULT_WIDTH, VR_DISPLAY_DEFAULT_HEIGHT, self->edid);
  set_mode_registers (self, 0, 0);

  self->slot = vr_memory_add_slot (memory, self->fb, VR_BOCHS_FB_SIZE,
                                   VR_MEMORY_SLOT_LOG_DIRTY);
  if (self->slot < 0)
    g_message ("bochs-display: no memory slot left, the framebuffer works through exits");

  vr_pci_function_init (&self->pci, 0x1234, 0x1111, 0x038000, 0x02, &pci_ops, self);
  vr_pci_function_set_subsystem (&self->pci, 0x1af4, 0x1100);
  if (!vr_pci_function_set_bar (&self->pci, 0, VR_PCI_BAR_MEM32, VR_BOCHS_FB_SIZE, true,
                                fb_access, self, error)
      || !vr_pci_function_set_bar (&self->pci, 2, VR_PCI_BAR_MEM32, VR_BOCHS_MMIO_SIZE, false,
                                   mmio_access, self, error)
      || (rom && !vr_pci_function_set_rom (&self->pci, g_bytes_get_data (rom, NULL),
                                           g_bytes_get_size (rom), error)))
    goto fail;
  /* Assigned and decoded from the start, as firmware leaves them. */
  vr_pci_set_long (self->pci.config, VR_PCI_BAR0, (uint32_t) fb_addr | 0x8);
  vr_pci_set_long (self->pci.config, VR_PCI_BAR0 + 8, (uint32_t) mmio_addr);
  vr_pci_set_word (self->pci.config, VR_PCI_COMMAND, VR_PCI_COMMAND_MEMORY);

  self->display = display;
  vr_display_add_source (display, VR_DISPLAY_SOURCE_BOCHS, &source_ops, self);
  if (!vr_pci_host_add_function (pci_host, &self->pci, slot, 0, error))
    goto fail;
  return &self->parent;

fail:
  bochs_destroy (&self->parent);
  return NULL;
}
