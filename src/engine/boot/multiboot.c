/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <string.h>

#include "boot.h"
#include "../vr-machine-private.h"

/*
 * Multiboot v1 (the GNU Multiboot Specification 0.6.96): a header in the first 8 KiB, the
 * image loaded either from its ELF program headers or from the header's address fields
 * (the "a.out kludge", flag 16), entered in flat protected mode with %eax = 0x2badb002 and
 * %ebx = the multiboot information structure. An initrd becomes module 0.
 */

#define MB_HEADER_MAGIC     0x1badb002u
#define MB_LOADER_MAGIC     0x2badb002u
#define MB_SEARCH           8192
#define MB_FLAG_PAGE_ALIGN  (1u << 0)
#define MB_FLAG_MEMINFO     (1u << 1)
#define MB_FLAG_VIDEO       (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)

#define MBI_MEM             (1u << 0)
#define MBI_CMDLINE         (1u << 2)
#define MBI_MODS            (1u << 3)
#define MBI_MMAP            (1u << 6)
#define MBI_LOADER_NAME     (1u << 9)

typedef struct
{
  uint32_t magic, flags, checksum;
  uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
} MbHeader;

typedef struct
{
  uint32_t flags;
  uint32_t mem_lower, mem_upper;
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr;
  uint32_t drives_length, drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe[6];
} MbInfo;

typedef struct
{
  uint32_t mod_start, mod_end, string, reserved;
} MbModule;

typedef struct __attribute__ ((packed))
{
  uint32_t size;
  uint64_t addr, len;
  uint32_t type;
} MbMmapEntry;

G_STATIC_ASSERT (sizeof (MbMmapEntry) == 24);

#define MBI_ADDR      VR_BOOT_INFO_ADDR
#define MODS_ADDR     (VR_BOOT_INFO_ADDR + 0x100)
#define NAME_ADDR     (VR_BOOT_INFO_ADDR + 0x140)
#define MODNAME_ADDR  (VR_BOOT_INFO_ADDR + 0x160)
#define MMAP_ADDR     (VR_BOOT_INFO_ADDR + 0x200)

/* Finds the header; returns its file offset or -1. */
static gssize
find_header (const VrBootFile *file,
             MbHeader         *hdr)
{
  gsize limit = MIN (file->size, (gsize) MB_SEARCH);

  for (gsize off = 0; off + 12 <= limit; off += 4)
    {
      uint32_t w[3];

      memcpy (w, file->data + off, sizeof w);
      if (w[0] != MB_HEADER_MAGIC || (uint32_t) (w[0] + w[1] + w[2]) != 0)
        continue;
      memset (hdr, 0, sizeof *hdr);
      memcpy (hdr, file->data + off, MIN (sizeof *hdr, file->size - off));
      return (gssize) off;
    }
  return -1;
}

bool
vr_multiboot_probe (const VrBootFile *file)
{
  MbHeader hdr;

  return find_header (file, &hdr) >= 0;
}

/* Where the image goes: [load, load + file_len) from file offset @offset, bss to @end. */
typedef struct
{
  bool     kludge;
  uint64_t offset, load, file_len, end, entry;
} MbLayout;

static bool
layout (const VrBootFile  *file,
        uint64_t           ram_low,
        MbLayout          *out,
        GError           **error)
{
  MbHeader hdr;
  gssize hoff = find_header (file, &hdr);

  if (hoff < 0)
    return false;
  if (hdr.flags & 0xfff8u)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” asks for Multiboot features Vireo does not provide (flags 0x%x)",
                   file->path, hdr.flags);
      return false;
    }

  memset (out, 0, sizeof *out);
  if (hdr.flags & MB_FLAG_AOUT_KLUDGE)
    {
      if ((gsize) hoff + sizeof hdr > file->size || hdr.header_addr < hdr.load_addr
          || hdr.header_addr - hdr.load_addr > (uint64_t) hoff)
        goto bad;
      out->kludge = true;
      out->offset = (uint64_t) hoff - (hdr.header_addr - hdr.load_addr);
      out->load = hdr.load_addr;
      if (hdr.load_end_addr == 0)
        out->file_len = file->size - out->offset;
      else if (hdr.load_end_addr < hdr.load_addr)
        goto bad;
      else
        out->file_len = hdr.load_end_addr - hdr.load_addr;
      if (out->file_len > file->size - out->offset)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” is truncated: its Multiboot header describes %" G_GUINT64_FORMAT
                       " bytes to load", file->path, out->file_len);
          return false;
        }
      out->end = MAX (out->load + out->file_len, (uint64_t) hdr.bss_end_addr);
      out->entry = hdr.entry_addr;
      if (out->load < 0x100000 || out->end > ram_low)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” must be loaded at 0x%" G_GINT64_MODIFIER "x–0x%"
                       G_GINT64_MODIFIER "x, outside the machine's %" G_GUINT64_FORMAT
                       " MiB of memory above 1 MiB", file->path, out->load, out->end,
                       ram_low >> 20);
          return false;
        }
    }
  else
    {
      if (!vr_elf_is_elf (file))
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” has a Multiboot header but is not an ELF file and gives no load "
                       "addresses", file->path);
          return false;
        }
      if (!vr_elf_check (file, ram_low, &out->entry, &out->end, error))
        return false;
    }
  if (out->entry < 0x100000 || out->entry >= out->end)
    goto bad;
  return true;

bad:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
               "“%s” has an inconsistent Multiboot header", file->path);
  return false;
}

bool
vr_multiboot_check (const VrBootFile  *file,
                    const VrBootFile  *initrd,
                    uint64_t           ram_low,
                    GError           **error)
{
  MbLayout l;

  if (!layout (file, ram_low, &l, error))
    return false;
  if (!vr_boot_check_initrd (initrd, l.end, ram_low, error))
    return false;
  return true;
}

bool
vr_multiboot_load (const VrBootFile  *file,
                   const VrBootFile  *initrd,
                   VrMemory          *memory,
                   const char        *cmdline,
                   uint64_t           rsdp_addr,
                   VrBootCpuState    *cpu,
                   GError           **error)
{
  uint64_t ram_low = vr_memory_low_size (memory);
  MbInfo mbi = { 0 };
  VrE820Entry e820[16];
  MbMmapEntry mmap[16];
  MbLayout l;
  unsigned n;

  if (!vr_multiboot_check (file, initrd, ram_low, error))
    return false;
  layout (file, ram_low, &l, NULL);

  if (l.kludge)
    {
      uint8_t *dst = vr_memory_translate (memory, l.load, l.end - l.load);

      g_assert (dst != NULL);
      vr_boot_file_copy (file, l.offset, dst, l.file_len);
      memset (dst + l.file_len, 0, l.end - l.load - l.file_len);
    }
  else if (!vr_elf_load (file, memory, error))
    return false;

  if (!vr_boot_write_cmdline (memory, cmdline, 0xffff, error))
    return false;

  mbi.flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME | MBI_MODS;
  mbi.mem_lower = 0x9fc00 / 1024;
  mbi.mem_upper = (uint32_t) MIN ((ram_low - 0x100000) / 1024, (uint64_t) G_MAXUINT32);
  mbi.cmdline = VR_BOOT_CMDLINE;
  mbi.boot_loader_name = NAME_ADDR;
  vr_memory_write (memory, NAME_ADDR, "Vireo", 6);

  if (initrd)
    {
      uint64_t addr;
      MbModule mod;

      vr_boot_place_initrd (initrd->size, l.end, ram_low, &addr);
      vr_boot_file_copy (initrd, 0, vr_memory_translate (memory, addr, initrd->size),
                         initrd->size);
      mod = (MbModule) { (uint32_t) addr, (uint32_t) (addr + initrd->size), MODNAME_ADDR, 0 };
      vr_memory_write (memory, MODNAME_ADDR, "initrd", 7);
      vr_memory_write (memory, MODS_ADDR, &mod, sizeof mod);
      mbi.mods_count = 1;
    }
  mbi.mods_addr = MODS_ADDR;

  n = vr_memory_e820 (memory, e820, G_N_ELEMENTS (e820));
  for (unsigned i = 0; i < n; i++)
    mmap[i] = (MbMmapEntry) { 20, e820[i].addr, e820[i].size, e820[i].type };
  vr_memory_write (memory, MMAP_ADDR, mmap, n * sizeof mmap[0]);
  mbi.mmap_addr = MMAP_ADDR;
  mbi.mmap_length = n * sizeof mmap[0];
  vr_memory_write (memory, MBI_ADDR, &mbi, sizeof mbi);

  (void) rsdp_addr;  /* Multiboot v1 has no RSDP field: the guest scans 0xe0000–0xfffff. */
  vr_boot_write_gdt (memory, VR_CPU_MODE_PROTECTED32);
  cpu->mode = VR_CPU_MODE_PROTECTED32;
  cpu->rip = l.entry;
  cpu->rax = MB_LOADER_MAGIC;
  cpu->rbx = MBI_ADDR;
  return true;
}
