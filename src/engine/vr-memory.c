/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vr-machine.h"

struct _VrMemory
{
  int       fd;          /* memfd holding all of guest RAM */
  uint8_t  *host;        /* the whole memfd, mapped shared */
  uint64_t  size;
  uint64_t  low_size;    /* RAM below the MMIO hole: guest [0, low_size) = memfd [0, low_size) */
  uint64_t  high_size;   /* RAM above 4 GiB: guest [4G, 4G + high) = memfd [low, size) */
};

VrMemory *
vr_memory_new (uint64_t   size,
               GError   **error)
{
  g_autofree VrMemory *mem = NULL;
  int fd;
  void *host;

  if (size < VR_MIN_MEMORY || size > VR_MAX_MEMORY || (size & 0xfff) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Guest memory must be a multiple of 4 KiB between 2 MiB and 1 TiB "
                   "(asked for %" G_GUINT64_FORMAT " bytes)", size);
      return NULL;
    }

  fd = memfd_create ("vireo-guest-ram", MFD_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot create guest memory: %s", g_strerror (errno));
      return NULL;
    }
  if (ftruncate (fd, (off_t) size) < 0)
    {
      int err = errno;
      close (fd);
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot size guest memory to %" G_GUINT64_FORMAT " MiB: %s",
                   size >> 20, g_strerror (err));
      return NULL;
    }
  host = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (host == MAP_FAILED)
    {
      int err = errno;
      close (fd);
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot map %" G_GUINT64_FORMAT " MiB of guest memory: %s",
                   size >> 20, g_strerror (err));
      return NULL;
    }
  madvise (host, size, MADV_DONTDUMP);
  /* Huge pages where the host allows them for shared memory (shmem_enabled=advise): fewer
   * faults and TLB misses for the guest. A no-op where it is "never". */
  madvise (host, size, MADV_HUGEPAGE);

  mem = g_new0 (VrMemory, 1);
  mem->fd = fd;
  mem->host = host;
  mem->size = size;
  mem->low_size = MIN (size, VR_MMIO_HOLE_START);
  mem->high_size = size - mem->low_size;
  return g_steal_pointer (&mem);
}

void
vr_memory_free (VrMemory *mem)
{
  if (mem == NULL)
    return;
  munmap (mem->host, mem->size);
  close (mem->fd);
  g_free (mem);
}

uint64_t vr_memory_get_size (VrMemory *mem) { return mem->size; }
uint64_t vr_memory_low_size (VrMemory *mem) { return mem->low_size; }
uint64_t vr_memory_high_size (VrMemory *mem) { return mem->high_size; }
int vr_memory_get_fd (VrMemory *mem) { return mem->fd; }

void *
vr_memory_translate (VrMemory *mem,
                     uint64_t  gpa,
                     uint64_t  len)
{
  if (gpa < mem->low_size)
    {
      if (len > mem->low_size - gpa)
        return NULL;
      return mem->host + gpa;
    }
  if (gpa >= VR_4GIB && gpa - VR_4GIB < mem->high_size)
    {
      uint64_t off = gpa - VR_4GIB;

      if (len > mem->high_size - off)
        return NULL;
      return mem->host + mem->low_size + off;
    }
  return NULL;
}

bool
vr_memory_read (VrMemory   *mem,
                uint64_t    gpa,
                void       *buf,
                uint64_t    len)
{
  void *p = vr_memory_translate (mem, gpa, len);

  if (p == NULL)
    return false;
  memcpy (buf, p, len);
  return true;
}

bool
vr_memory_write (VrMemory   *mem,
                 uint64_t    gpa,
                 const void *buf,
                 uint64_t    len)
{
  void *p = vr_memory_translate (mem, gpa, len);

  if (p == NULL)
    return false;
  memcpy (p, buf, len);
  return true;
}

void
vr_memory_discard (VrMemory *mem)
{
  /* Gives the pages back to the host; they read as zero afterwards. */
  if (fallocate (mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) mem->size) < 0)
    memset (mem->host, 0, mem->size);
}

bool
vr_memory_map_into_vm (VrMemory  *mem,
                       int        vm_fd,
                       GError   **error)
{
  struct kvm_userspace_memory_region regions[2] = {
    { .slot = 0, .guest_phys_addr = 0, .memory_size = mem->low_size,
      .userspace_addr = (uintptr_t) mem->host },
    { .slot = 1, .guest_phys_addr = VR_4GIB, .memory_size = mem->high_size,
      .userspace_addr = (uintptr_t) (mem->host + mem->low_size) },
  };

  for (unsigned i = 0; i < G_N_ELEMENTS (regions); i++)
    {
      if (regions[i].memory_size == 0)
        continue;
      if (ioctl (vm_fd, KVM_SET_USER_MEMORY_REGION, &regions[i]) < 0)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                       "KVM refused guest memory slot %u: %s", i, g_strerror (errno));
          return false;
        }
    }
  return true;
}

unsigned
vr_memory_e820 (VrMemory    *mem,
                VrE820Entry *entries,
                unsigned     max)
{
  VrE820Entry map[5];
  unsigned n = 0;

  /* Conventional memory, then the EBDA, the VGA hole and the BIOS area (ACPI tables live in
   * 0xe0000-0xfffff), then extended memory up to the MMIO hole, then RAM above 4 GiB. */
  map[n++] = (VrE820Entry) { 0, 0x9fc00, VR_E820_RAM };
  map[n++] = (VrE820Entry) { 0x9fc00, 0x400, VR_E820_RESERVED };
  map[n++] = (VrE820Entry) { 0xe0000, 0x20000, VR_E820_RESERVED };
  if (mem->low_size > 0x100000)
    map[n++] = (VrE820Entry) { 0x100000, mem->low_size - 0x100000, VR_E820_RAM };
  if (mem->high_size > 0)
    map[n++] = (VrE820Entry) { VR_4GIB, mem->high_size, VR_E820_RAM };

  n = MIN (n, max);
  memcpy (entries, map, n * sizeof (VrE820Entry));
  return n;
}
