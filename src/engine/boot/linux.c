/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <asm/bootparam.h>
#include <stddef.h>
#include <string.h>

#include "boot.h"
#include "../vr-machine-private.h"

/*
 * Linux bzImage, 64-bit boot protocol (Documentation/arch/x86/boot.rst): the protected-mode
 * kernel is loaded at 1 MiB and entered at +0x200 in long mode, on identity-mapped page
 * tables, with %rsi pointing at the zero page (struct boot_params) that carries the setup
 * header, the command line, the initrd, the e820 map and the ACPI RSDP.
 */

#define KERNEL_LOAD_ADDR   0x100000ull
#define MIN_PROTOCOL       0x020c   /* 2.12: xloadflags, the 64-bit entry */
#define DEFAULT_INITRD_MAX 0x37ffffffull

typedef struct
{
  struct setup_header hdr;
  gsize               setup_size;  /* real-mode part, skipped */
  gsize               hdr_len;     /* bytes of setup header present in the file */
} LinuxHeader;

bool
vr_linux_probe (const VrBootFile *file)
{
  uint32_t magic;
  uint16_t flag;

  if (file->size < 0x206)
    return false;
  memcpy (&flag, file->data + 0x1fe, 2);
  memcpy (&magic, file->data + 0x202, 4);
  return flag == 0xaa55 && magic == 0x53726448;  /* "HdrS" */
}

static bool
parse (const VrBootFile  *file,
       LinuxHeader       *lh,
       GError           **error)
{
  const gsize hdr_off = offsetof (struct boot_params, hdr);
  unsigned setup_sects;

  memset (lh, 0, sizeof *lh);
  if (file->size < 0x202 + 2 || file->size < 0x201 + 1)
    goto truncated;
  /* The header's own length: it ends at 0x202 + the byte at 0x201. */
  lh->hdr_len = MIN (sizeof lh->hdr, (gsize) 0x202 + file->data[0x201] - hdr_off);
  if (file->size < hdr_off + lh->hdr_len)
    goto truncated;
  memcpy (&lh->hdr, file->data + hdr_off, lh->hdr_len);

  if (lh->hdr.version < MIN_PROTOCOL || !(lh->hdr.xloadflags & XLF_KERNEL_64)
      || !(lh->hdr.loadflags & LOADED_HIGH))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” is a Linux kernel Vireo cannot start: it needs boot protocol 2.12 or "
                   "later with a 64-bit entry point (this one has protocol %u.%02u%s)",
                   file->path, lh->hdr.version >> 8, lh->hdr.version & 0xff,
                   (lh->hdr.xloadflags & XLF_KERNEL_64) ? "" : ", no 64-bit entry");
      return false;
    }

  setup_sects = lh->hdr.setup_sects ? lh->hdr.setup_sects : 4;
  lh->setup_size = (gsize) (setup_sects + 1) * 512;
  if (file->size <= lh->setup_size + 0x200)
    goto truncated;
  return true;

truncated:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
               "“%s” is truncated: a Linux bzImage header is there but the kernel is not",
               file->path);
  return false;
}

/* End of the memory the kernel needs while it decompresses and runs its early code. */
static uint64_t
kernel_end (const VrBootFile  *file,
            const LinuxHeader *lh)
{
  uint64_t payload = file->size - lh->setup_size;

  return KERNEL_LOAD_ADDR + MAX (payload, (uint64_t) lh->hdr.init_size);
}

static uint64_t
initrd_limit (const LinuxHeader *lh,
              uint64_t           ram_low)
{
  uint64_t max = lh->hdr.initrd_addr_max ? lh->hdr.initrd_addr_max : DEFAULT_INITRD_MAX;

  return MIN (max + 1, ram_low);
}

bool
vr_linux_check (const VrBootFile  *file,
                const VrBootFile  *initrd,
                uint64_t           ram_low,
                GError           **error)
{
  LinuxHeader lh;
  uint64_t end;

  if (!parse (file, &lh, error))
    return false;
  end = kernel_end (file, &lh);
  if (end > ram_low)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” needs %" G_GUINT64_FORMAT " MiB of memory to start, the machine has "
                   "%" G_GUINT64_FORMAT " MiB", file->path, (end + 0xfffff) >> 20,
                   ram_low >> 20);
      return false;
    }
  return vr_boot_check_initrd (initrd, end, initrd_limit (&lh, ram_low), error);
}

static void
write_page_tables (VrMemory *memory,
                   uint64_t *cr3)
{
  /* PML4 → one PDPT → four page directories of 2 MiB pages: the first 4 GiB, identity. */
  const uint64_t pml4 = VR_BOOT_PGTABLE, pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
  uint64_t entries[512];

  memset (entries, 0, sizeof entries);
  entries[0] = pdpt | 0x3;
  vr_memory_write (memory, pml4, entries, sizeof entries);

  memset (entries, 0, sizeof entries);
  for (unsigned i = 0; i < 4; i++)
    entries[i] = (pd + i * 0x1000) | 0x3;
  vr_memory_write (memory, pdpt, entries, sizeof entries);

  for (unsigned d = 0; d < 4; d++)
    {
      for (unsigned i = 0; i < 512; i++)
        entries[i] = ((uint64_t) d << 30 | (uint64_t) i << 21) | 0x83;  /* P, RW, PS */
      vr_memory_write (memory, pd + d * 0x1000, entries, sizeof entries);
    }
  *cr3 = pml4;
}

bool
vr_linux_load (const VrBootFile  *file,
               const VrBootFile  *initrd,
               VrMemory          *memory,
               const char        *cmdline,
               uint64_t           rsdp_addr,
               const VrBootFramebuffer *fb,
               VrBootCpuState    *cpu,
               GError           **error)
{
  uint64_t ram_low = vr_memory_low_size (memory);
  g_autofree struct boot_params *bp = g_new0 (struct boot_params, 1);
  VrE820Entry e820[E820_MAX_ENTRIES_ZEROPAGE];
  LinuxHeader lh;
  unsigned n;

  if (!vr_linux_check (file, initrd, ram_low, error) || !parse (file, &lh, error))
    return false;

  memcpy (&bp->hdr, &lh.hdr, lh.hdr_len);
  vr_boot_file_copy (file, lh.setup_size,
                     vr_memory_translate (memory, KERNEL_LOAD_ADDR, file->size - lh.setup_size),
                     file->size - lh.setup_size);

  if (!vr_boot_write_cmdline (memory, cmdline,
                              lh.hdr.cmdline_size ? lh.hdr.cmdline_size : 255, error))
    return false;

  bp->hdr.type_of_loader = 0xff;
  bp->hdr.vid_mode = 0xffff;
  bp->hdr.loadflags &= ~(KEEP_SEGMENTS);
  bp->hdr.loadflags |= CAN_USE_HEAP;
  bp->hdr.heap_end_ptr = 0xfe00;
  bp->hdr.cmd_line_ptr = VR_BOOT_CMDLINE;
  bp->hdr.code32_start = KERNEL_LOAD_ADDR;
  bp->acpi_rsdp_addr = rsdp_addr;

  if (initrd)
    {
      uint64_t addr;

      vr_boot_place_initrd (initrd->size, kernel_end (file, &lh), initrd_limit (&lh, ram_low),
                            &addr);
      vr_boot_file_copy (initrd, 0, vr_memory_translate (memory, addr, initrd->size),
                         initrd->size);
      bp->hdr.ramdisk_image = (uint32_t) addr;
      bp->hdr.ramdisk_size = (uint32_t) initrd->size;
      bp->ext_ramdisk_image = (uint32_t) (addr >> 32);
      bp->ext_ramdisk_size = (uint32_t) ((uint64_t) initrd->size >> 32);
    }

  if (fb)
    {
      /* A VESA linear framebuffer the boot loader already switched on: simplefb shows the
       * console there until a real driver takes the card over. lfb_size counts 64 KiB. */
      struct screen_info *si = &bp->screen_info;

      si->orig_video_isVGA = VIDEO_TYPE_VLFB;
      si->lfb_width = (uint16_t) fb->width;
      si->lfb_height = (uint16_t) fb->height;
      si->lfb_depth = 32;
      si->lfb_linelength = (uint16_t) fb->stride;
      si->lfb_base = (uint32_t) fb->addr;
      si->ext_lfb_base = (uint32_t) (fb->addr >> 32);
      if (fb->addr >> 32)
        si->capabilities |= VIDEO_CAPABILITY_64BIT_BASE;
      si->lfb_size = (uint32_t) ((fb->size + 0xffff) >> 16);
      si->red_size = 8;
      si->red_pos = 16;
      si->green_size = 8;
      si->green_pos = 8;
      si->blue_size = 8;
      si->blue_pos = 0;
      si->rsvd_size = 8;
      si->rsvd_pos = 24;
      si->orig_video_lines = 25;
      si->orig_video_cols = 80;
      si->orig_video_points = 16;
    }

  n = vr_memory_e820 (memory, e820, G_N_ELEMENTS (e820));
  for (unsigned i = 0; i < n; i++)
    {
      bp->e820_table[i].addr = e820[i].addr;
      bp->e820_table[i].size = e820[i].size;
      bp->e820_table[i].type = e820[i].type;
    }
  bp->e820_entries = (uint8_t) n;
  vr_memory_write (memory, VR_BOOT_PARAMS_ADDR, bp, sizeof *bp);

  write_page_tables (memory, &cpu->cr3);
  vr_boot_write_gdt (memory, VR_CPU_MODE_LONG64);
  cpu->mode = VR_CPU_MODE_LONG64;
  cpu->rip = KERNEL_LOAD_ADDR + 0x200;
  cpu->rsi = VR_BOOT_PARAMS_ADDR;
  return true;
}
