/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <elf.h>
#include <string.h>

#include "boot.h"
#include "../vr-machine.h"

/*
 * A small ELF reader for PVH and Multiboot kernels: 32- and 64-bit little-endian x86 files,
 * PT_LOAD segments placed at their physical addresses, PT_NOTE parsing. The image is
 * untrusted: every header field is checked against the file size before use.
 */

#define KERNEL_MIN_ADDR 0x100000ull  /* below 1 MiB live the boot structures and ACPI */

typedef struct
{
  bool     is64;
  uint64_t entry;
  uint64_t phoff;
  uint16_t phnum;
  uint16_t phentsize;
} ElfInfo;

typedef struct
{
  uint32_t type;
  uint64_t offset;
  uint64_t paddr;
  uint64_t filesz;
  uint64_t memsz;
} ElfPhdr;

bool
vr_elf_is_elf (const VrBootFile *file)
{
  return file->size >= EI_NIDENT && memcmp (file->data, ELFMAG, SELFMAG) == 0;
}

static bool
parse_header (const VrBootFile *file,
              ElfInfo          *info,
              GError          **error)
{
  const uint8_t *id = file->data;

  if (!vr_elf_is_elf (file))
    goto bad;
  if (id[EI_DATA] != ELFDATA2LSB || id[EI_VERSION] != EV_CURRENT)
    goto bad;
  if (id[EI_CLASS] == ELFCLASS64)
    {
      Elf64_Ehdr eh;

      if (file->size < sizeof eh)
        goto truncated;
      memcpy (&eh, file->data, sizeof eh);
      if (eh.e_machine != EM_X86_64 || eh.e_phentsize < sizeof (Elf64_Phdr))
        goto bad;
      *info = (ElfInfo) { true, eh.e_entry, eh.e_phoff, eh.e_phnum, eh.e_phentsize };
    }
  else if (id[EI_CLASS] == ELFCLASS32)
    {
      Elf32_Ehdr eh;

      if (file->size < sizeof eh)
        goto truncated;
      memcpy (&eh, file->data, sizeof eh);
      if (eh.e_machine != EM_386 || eh.e_phentsize < sizeof (Elf32_Phdr))
        goto bad;
      *info = (ElfInfo) { false, eh.e_entry, eh.e_phoff, eh.e_phnum, eh.e_phentsize };
    }
  else
    goto bad;

  if (info->phnum == 0 || info->phoff > file->size
      || (uint64_t) info->phnum * info->phentsize > file->size - info->phoff)
    goto truncated;
  return true;

bad:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
               "“%s” is not a little-endian x86 ELF executable", file->path);
  return false;
truncated:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
               "“%s” is truncated: its ELF program headers lie beyond the end of the file",
               file->path);
  return false;
}

static void
get_phdr (const VrBootFile *file,
          const ElfInfo    *info,
          unsigned          i,
          ElfPhdr          *ph)
{
  const uint8_t *p = file->data + info->phoff + (uint64_t) i * info->phentsize;

  if (info->is64)
    {
      Elf64_Phdr h;

      memcpy (&h, p, sizeof h);
      *ph = (ElfPhdr) { h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
    }
  else
    {
      Elf32_Phdr h;

      memcpy (&h, p, sizeof h);
      *ph = (ElfPhdr) { h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
    }
}

bool
vr_elf_check (const VrBootFile  *file,
              uint64_t           ram_low,
              uint64_t          *entry,
              uint64_t          *end,
              GError           **error)
{
  ElfInfo info;
  uint64_t top = 0;
  unsigned loads = 0;

  if (!parse_header (file, &info, error))
    return false;

  for (unsigned i = 0; i < info.phnum; i++)
    {
      ElfPhdr ph;

      get_phdr (file, &info, i, &ph);
      if (ph.type != PT_LOAD || ph.memsz == 0)
        continue;
      loads++;
      if (ph.filesz > ph.memsz || ph.offset > file->size || ph.filesz > file->size - ph.offset)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” is truncated or damaged: segment %u needs bytes "
                       "0x%" G_GINT64_MODIFIER "x–0x%" G_GINT64_MODIFIER "x of a "
                       "%" G_GSIZE_FORMAT "-byte file",
                       file->path, i, ph.offset, ph.offset + ph.filesz, file->size);
          return false;
        }
      if (ph.paddr < KERNEL_MIN_ADDR)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” wants to be loaded at 0x%" G_GINT64_MODIFIER "x, below 1 MiB, "
                       "where the boot structures live", file->path, ph.paddr);
          return false;
        }
      if (ph.paddr > ram_low || ph.memsz > ram_low - ph.paddr)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                       "“%s” does not fit in the machine's memory: it needs RAM up to "
                       "%" G_GUINT64_FORMAT " MiB, the machine has %" G_GUINT64_FORMAT " MiB "
                       "below 4 GiB", file->path, (ph.paddr + ph.memsz + 0xfffff) >> 20,
                       ram_low >> 20);
          return false;
        }
      top = MAX (top, ph.paddr + ph.memsz);
    }

  if (loads == 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” has no loadable segments", file->path);
      return false;
    }
  if (entry)
    *entry = info.entry;
  if (end)
    *end = top;
  return true;
}

bool
vr_elf_load (const VrBootFile  *file,
             VrMemory          *memory,
             GError           **error)
{
  ElfInfo info;

  if (!vr_elf_check (file, vr_memory_low_size (memory), NULL, NULL, error))
    return false;
  parse_header (file, &info, NULL);

  for (unsigned i = 0; i < info.phnum; i++)
    {
      ElfPhdr ph;
      uint8_t *dst;

      get_phdr (file, &info, i, &ph);
      if (ph.type != PT_LOAD || ph.memsz == 0)
        continue;
      dst = vr_memory_translate (memory, ph.paddr, ph.memsz);
      g_assert (dst != NULL);  /* vr_elf_check() proved it */
      vr_boot_file_copy (file, ph.offset, dst, ph.filesz);
      memset (dst + ph.filesz, 0, ph.memsz - ph.filesz);
    }
  return true;
}

bool
vr_elf_find_note (const VrBootFile  *file,
                  const char        *name,
                  uint32_t           type,
                  const uint8_t    **desc,
                  uint32_t          *desc_size)
{
  ElfInfo info;
  size_t name_len = strlen (name) + 1;

  if (!parse_header (file, &info, NULL))
    return false;

  for (unsigned i = 0; i < info.phnum; i++)
    {
      ElfPhdr ph;
      uint64_t pos, end;

      get_phdr (file, &info, i, &ph);
      if (ph.type != PT_NOTE || ph.offset > file->size || ph.filesz > file->size - ph.offset)
        continue;
      pos = ph.offset;
      end = ph.offset + ph.filesz;
      while (end - pos >= 12)
        {
          uint32_t hdr[3];
          uint64_t name_off, desc_off, next;

          memcpy (hdr, file->data + pos, sizeof hdr);
          name_off = pos + 12;
          desc_off = name_off + (((uint64_t) hdr[0] + 3) & ~3ull);
          next = desc_off + (((uint64_t) hdr[1] + 3) & ~3ull);
          if (desc_off > end || next > end || hdr[1] > end - desc_off)
            break;
          if (hdr[2] == type && hdr[0] == name_len
              && memcmp (file->data + name_off, name, name_len) == 0)
            {
              *desc = file->data + desc_off;
              *desc_size = hdr[1];
              return true;
            }
          pos = next;
        }
    }
  return false;
}
