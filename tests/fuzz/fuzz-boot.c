/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Fuzzes the kernel loaders: bzImage, PVH ELF and Multiboot parsing and loading. */

#include <glib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "vr-memory.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static VrMemory *memory;
  g_autoptr (VrBootImage) image = NULL;
  g_autofree char *path = NULL;
  VrBootCpuState cpu;
  int fd;

  if (memory == NULL)
    memory = vr_memory_new (32u << 20, NULL);

  fd = memfd_create ("fuzz-kernel", MFD_CLOEXEC);
  if (fd < 0 || (size > 0 && write (fd, data, size) != (ssize_t) size))
    abort ();
  path = g_strdup_printf ("/proc/self/fd/%d", fd);

  image = vr_boot_image_new (path, NULL, 32u << 20, NULL);
  if (image != NULL)
    vr_boot_image_load (image, memory, "console=ttyS0", 0xe0000, &cpu, NULL);
  close (fd);
  return 0;
}
