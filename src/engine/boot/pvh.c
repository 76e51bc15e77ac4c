/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <string.h>

#include "boot.h"
#include "../vr-machine-private.h"

/*
 * PVH boot (Xen's HVM direct boot ABI, also used by Linux, FreeBSD and QEMU): the kernel is
 * an ELF whose XEN_ELFNOTE_PHYS32_ENTRY note gives a 32-bit physical entry point, entered in
 * flat protected mode without paging with %ebx pointing at struct hvm_start_info.
 * Layout from xen/include/public/arch-x86/hvm/start_info.h.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC          0x336ec578u
#define HVM_MEMMAP_MAX           16

typedef struct
{
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
} HvmStartInfo;

typedef struct
{
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
} HvmModlistEntry;

typedef struct
{
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
} HvmMemmapEntry;

G_STATIC_ASSERT (sizeof (HvmStartInfo) == 56);
G_STATIC_ASSERT (sizeof (HvmModlistEntry) == 32);
G_STATIC_ASSERT (sizeof (HvmMemmapEntry) == 24);

#define START_INFO_ADDR  VR_BOOT_INFO_ADDR
#define MODLIST_ADDR     (VR_BOOT_INFO_ADDR + 0x40)
#define MEMMAP_ADDR      (VR_BOOT_INFO_ADDR + 0x80)

static bool
get_entry (const VrBootFile *file,
           uint64_t         *entry)
{
  const uint8_t *desc;
  uint32_t size;

  if (!vr_elf_find_note (file, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &desc, &size))
    return false;
  if (size == 4)
    {
      uint32_t v;
      memcpy (&v, desc, 4);
      *entry = v;
    }
  else if (size == 8)
    memcpy (entry, desc, 8);
  else
    return false;
  return true;
}

bool
vr_pvh_probe (const VrBootFile *file)
{
  uint64_t entry;

  return vr_elf_is_elf (file) && get_entry (file, &entry);
}

bool
vr_pvh_check (const VrBootFile  *file,
              const VrBootFile  *initrd,
              uint64_t           ram_low,
              GError           **error)
{
  uint64_t entry, end;

  if (!get_entry (file, &entry) || entry >= VR_4GIB)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” has a malformed PVH entry note", file->path);
      return false;
    }
  if (!vr_elf_check (file, ram_low, NULL, &end, error))
    return false;
  if (entry < 0x100000 || entry >= end)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s”: the PVH entry point 0x%" G_GINT64_MODIFIER "x lies outside the kernel",
                   file->path, entry);
      return false;
    }
  if (!vr_boot_check_initrd (initrd, end, ram_low, error))
    return false;
  return true;
}

bool
vr_pvh_load (const VrBootFile  *file,
             const VrBootFile  *initrd,
             VrMemory          *memory,
             const char        *cmdline,
             uint64_t           rsdp_addr,
             VrBootCpuState    *cpu,
             GError           **error)
{
  HvmStartInfo info = { .magic = HVM_START_MAGIC, .version = 1 };
  HvmMemmapEntry memmap[HVM_MEMMAP_MAX];
  VrE820Entry e820[HVM_MEMMAP_MAX];
  uint64_t entry, end;
  unsigned n;

  if (!vr_pvh_check (file, initrd, vr_memory_low_size (memory), error))
    return false;
  get_entry (file, &entry);
  vr_elf_check (file, vr_memory_low_size (memory), NULL, &end, NULL);
  if (!vr_elf_load (file, memory, error))
    return false;
  if (!vr_boot_write_cmdline (memory, cmdline, 0xffff, error))
    return false;

  info.cmdline_paddr = VR_BOOT_CMDLINE;
  info.rsdp_paddr = rsdp_addr;

  if (initrd)
    {
      HvmModlistEntry mod = { .size = initrd->size };

      vr_boot_place_initrd (initrd->size, end, vr_memory_low_size (memory), &mod.paddr);
      vr_boot_file_copy (initrd, 0, vr_memory_translate (memory, mod.paddr, initrd->size),
                         initrd->size);
      vr_memory_write (memory, MODLIST_ADDR, &mod, sizeof mod);
      info.nr_modules = 1;
      info.modlist_paddr = MODLIST_ADDR;
    }

  n = vr_memory_e820 (memory, e820, HVM_MEMMAP_MAX);
  for (unsigned i = 0; i < n; i++)
    memmap[i] = (HvmMemmapEntry) { e820[i].addr, e820[i].size, e820[i].type, 0 };
  vr_memory_write (memory, MEMMAP_ADDR, memmap, n * sizeof memmap[0]);
  info.memmap_paddr = MEMMAP_ADDR;
  info.memmap_entries = n;
  vr_memory_write (memory, START_INFO_ADDR, &info, sizeof info);

  vr_boot_write_gdt (memory, VR_CPU_MODE_PROTECTED32);
  cpu->mode = VR_CPU_MODE_PROTECTED32;
  cpu->rip = entry;
  cpu->rbx = START_INFO_ADDR;
  return true;
}
