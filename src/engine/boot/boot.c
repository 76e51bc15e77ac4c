/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "boot.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include "../vr-machine-private.h"

struct _VrBootImage
{
  VrBootProtocol  protocol;
  GMappedFile    *kernel_map;
  GMappedFile    *initrd_map;
  VrBootFile      kernel;
  VrBootFile      initrd;
  char           *kernel_path;
  char           *initrd_path;
  bool            has_fb;
  VrBootFramebuffer fb;
};

const char *
vr_boot_protocol_to_string (VrBootProtocol protocol)
{
  switch (protocol)
    {
    case VR_BOOT_LINUX:     return "linux";
    case VR_BOOT_PVH:       return "pvh";
    case VR_BOOT_MULTIBOOT: return "multiboot";
    default:                return "unknown";
    }
}

static GMappedFile *
map_file (const char  *path,
          const char  *what,
          VrBootFile  *file,
          VrError      code,
          GError     **error)
{
  g_autoptr (GError) local_error = NULL;
  GMappedFile *map;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, VR_ERROR, code, "The %s “%s” is a directory, not a file", what, path);
      return NULL;
    }
  map = g_mapped_file_new (path, FALSE, &local_error);
  if (map == NULL)
    {
      g_set_error (error, VR_ERROR, code, "Cannot read the %s “%s”: %s",
                   what, path, local_error->message);
      return NULL;
    }
  file->data = (const uint8_t *) g_mapped_file_get_contents (map);
  file->size = g_mapped_file_get_length (map);
  file->path = path;
  file->fd = open (path, O_RDONLY | O_CLOEXEC);
  if (file->size == 0)
    {
      if (file->fd >= 0)
        close (file->fd);
      file->fd = -1;
      g_mapped_file_unref (map);
      g_set_error (error, VR_ERROR, code, "The %s “%s” is empty", what, path);
      return NULL;
    }
  return map;
}

void
vr_boot_image_free (VrBootImage *image)
{
  if (image == NULL)
    return;
  if (image->kernel.fd >= 0)
    close (image->kernel.fd);
  if (image->initrd.fd >= 0)
    close (image->initrd.fd);
  g_clear_pointer (&image->kernel_map, g_mapped_file_unref);
  g_clear_pointer (&image->initrd_map, g_mapped_file_unref);
  g_free (image->kernel_path);
  g_free (image->initrd_path);
  g_free (image);
}

VrBootImage *
vr_boot_image_new (const char  *kernel_path,
                   const char  *initrd_path,
                   uint64_t     ram_size,
                   GError     **error)
{
  g_autoptr (VrBootImage) image = g_new0 (VrBootImage, 1);
  uint64_t ram_low = MIN (ram_size, VR_MMIO_HOLE_START);
  const VrBootFile *initrd = NULL;
  bool ok;

  image->kernel.fd = image->initrd.fd = -1;
  g_return_val_if_fail (kernel_path != NULL, NULL);

  image->kernel_path = g_strdup (kernel_path);
  image->kernel_map = map_file (image->kernel_path, "kernel", &image->kernel,
                                VR_ERROR_BAD_KERNEL, error);
  if (image->kernel_map == NULL)
    return NULL;
  if (initrd_path != NULL)
    {
      image->initrd_path = g_strdup (initrd_path);
      image->initrd_map = map_file (image->initrd_path, "initrd", &image->initrd,
                                    VR_ERROR_BAD_INITRD, error);
      if (image->initrd_map == NULL)
        return NULL;
      initrd = &image->initrd;
    }

  if (vr_linux_probe (&image->kernel))
    {
      image->protocol = VR_BOOT_LINUX;
      ok = vr_linux_check (&image->kernel, initrd, ram_low, error);
    }
  else if (vr_pvh_probe (&image->kernel))
    {
      image->protocol = VR_BOOT_PVH;
      ok = vr_pvh_check (&image->kernel, initrd, ram_low, error);
    }
  else if (vr_multiboot_probe (&image->kernel))
    {
      image->protocol = VR_BOOT_MULTIBOOT;
      ok = vr_multiboot_check (&image->kernel, initrd, ram_low, error);
    }
  else
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "“%s” is not a kernel Vireo can boot: it is neither a Linux bzImage, "
                   "an ELF with a PVH entry point, nor a Multiboot kernel%s",
                   kernel_path,
                   vr_elf_is_elf (&image->kernel) ? " (it is an ELF file without a PVH note "
                                                    "or Multiboot header)" : "");
      return NULL;
    }

  if (!ok)
    return NULL;
  return g_steal_pointer (&image);
}

static void
release_pages (const VrBootFile *file)
{
  uintptr_t start = (uintptr_t) file->data;
  uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
  uintptr_t aligned = start & ~(page - 1);

  madvise ((void *) aligned, file->size + (start - aligned), MADV_DONTNEED);
}

VrBootProtocol
vr_boot_image_get_protocol (VrBootImage *image)
{
  return image->protocol;
}

void
vr_boot_image_set_framebuffer (VrBootImage             *image,
                               const VrBootFramebuffer *fb)
{
  g_return_if_fail (image != NULL);

  image->has_fb = fb != NULL;
  if (fb)
    image->fb = *fb;
}

bool
vr_boot_image_load (VrBootImage     *image,
                    VrMemory        *memory,
                    const char      *cmdline,
                    uint64_t         rsdp_addr,
                    VrBootCpuState  *cpu,
                    GError         **error)
{
  const VrBootFile *initrd = image->initrd_map ? &image->initrd : NULL;
  bool ok;

  memset (cpu, 0, sizeof *cpu);
  switch (image->protocol)
    {
    case VR_BOOT_LINUX:
      ok = vr_linux_load (&image->kernel, initrd, memory, cmdline, rsdp_addr,
                          image->has_fb ? &image->fb : NULL, cpu, error);
      break;
    case VR_BOOT_PVH:
      ok = vr_pvh_load (&image->kernel, initrd, memory, cmdline, rsdp_addr, cpu, error);
      break;
    case VR_BOOT_MULTIBOOT:
      ok = vr_multiboot_load (&image->kernel, initrd, memory, cmdline, rsdp_addr, cpu, error);
      break;
    default:
      g_assert_not_reached ();
    }

  /* The images stay mapped for the next reset, but their pages need not stay resident in
   * the VMM: a kernel is copied into guest RAM and then only costs page cache. */
  release_pages (&image->kernel);
  if (initrd)
    release_pages (&image->initrd);
  return ok;
}

void
vr_boot_write_gdt (VrMemory  *memory,
                   VrCpuMode  mode)
{
  /* null, null, code (0x10), data (0x18): the selectors Linux's boot protocol names. */
  const uint64_t gdt[4] = {
    0,
    0,
    mode == VR_CPU_MODE_LONG64 ? 0x00af9b000000ffffull : 0x00cf9b000000ffffull,
    0x00cf93000000ffffull,
  };

  vr_memory_write (memory, VR_BOOT_GDT_ADDR, gdt, sizeof gdt);
}

bool
vr_boot_write_cmdline (VrMemory    *memory,
                       const char  *cmdline,
                       gsize        max_len,
                       GError     **error)
{
  gsize len = cmdline ? strlen (cmdline) : 0;

  max_len = MIN (max_len, 0xffffu);
  if (len > max_len)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The kernel command line is %" G_GSIZE_FORMAT " bytes long; this kernel "
                   "accepts at most %" G_GSIZE_FORMAT, len, max_len);
      return false;
    }
  vr_memory_write (memory, VR_BOOT_CMDLINE, cmdline ? cmdline : "", len);
  vr_memory_write (memory, VR_BOOT_CMDLINE + len, "", 1);
  return true;
}

bool
vr_boot_place_initrd (uint64_t  size,
                      uint64_t  floor,
                      uint64_t  limit,
                      uint64_t *addr)
{
  uint64_t top = limit & ~0xfffull;

  floor = (floor + 0xfff) & ~0xfffull;
  if (size > top || top - size < floor)
    return false;
  *addr = (top - size) & ~0xfffull;
  return *addr >= floor;
}

bool
vr_boot_check_initrd (const VrBootFile  *initrd,
                      uint64_t           floor,
                      uint64_t           limit,
                      GError           **error)
{
  uint64_t addr;

  if (initrd == NULL || vr_boot_place_initrd (initrd->size, floor, limit, &addr))
    return true;
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_INITRD,
               "The initrd “%s” (%" G_GSIZE_FORMAT " MiB) does not fit in memory above the "
               "kernel: give the machine more memory", initrd->path, initrd->size >> 20);
  return false;
}

void
vr_boot_file_copy (const VrBootFile *file,
                   uint64_t          offset,
                   void             *dst,
                   uint64_t          len)
{
  uint8_t *p = dst;

  g_assert (offset <= file->size && len <= file->size - offset);
  g_assert (dst != NULL || len == 0);
  while (len > 0 && file->fd >= 0)
    {
      ssize_t n = pread (file->fd, p, MIN (len, (uint64_t) G_MAXSSIZE), (off_t) offset);

      if (n <= 0)
        {
          if (n < 0 && errno == EINTR)
            continue;
          break;  /* the file changed under us: fall back to the mapping */
        }
      p += n;
      offset += (uint64_t) n;
      len -= (uint64_t) n;
    }
  if (len > 0)
    memcpy (p, file->data + offset, len);
}
