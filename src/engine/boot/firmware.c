/* SPDX-License-Identifier: GPL-3.0-or-later */
/* PC firmware images: see firmware.h. */

#include "config.h"

#include "firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vr-machine.h"

struct _VrFirmware
{
  char     *path;
  uint8_t  *rom;      /* page-aligned (a KVM slot), @size bytes */
  uint64_t  size;
  VrMemory *memory;   /* set by vr_firmware_map() */
  int       slot;
};

VrFirmware *
vr_firmware_new (const char  *path,
                 GError     **error)
{
  g_autoptr (VrFirmware) fw = NULL;
  struct stat st;
  int fd;
  uint64_t done = 0;

  g_return_val_if_fail (path != NULL, NULL);

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "Cannot open the firmware “%s”: %s%s", path, g_strerror (saved),
                   saved == ENOENT && g_str_has_prefix (path, "/usr/share/seabios/")
                     ? " (install Debian’s “seabios” package)" : "");
      return NULL;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "The firmware “%s” is not a regular file", path);
      close (fd);
      return NULL;
    }
  if (st.st_size < 64 * 1024 || st.st_size > VR_FIRMWARE_MAX_SIZE
      || (st.st_size % (64 * 1024)) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL,
                   "The firmware “%s” is %" G_GINT64_FORMAT " bytes: a PC firmware image is "
                   "a multiple of 64 KiB, at most 16 MiB", path, (gint64) st.st_size);
      close (fd);
      return NULL;
    }

  fw = g_new0 (VrFirmware, 1);
  fw->path = g_strdup (path);
  fw->slot = -1;
  fw->size = (uint64_t) st.st_size;
  fw->rom = mmap (NULL, fw->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fw->rom == MAP_FAILED)
    {
      fw->rom = NULL;
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY, "No memory for the firmware: %s",
                   g_strerror (errno));
      close (fd);
      return NULL;
    }
  while (done < fw->size)
    {
      ssize_t n = pread (fd, fw->rom + done, fw->size - done, (off_t) done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL, "Cannot read the firmware “%s”: %s",
                       path, n < 0 ? g_strerror (errno) : "the file got shorter");
          close (fd);
          return NULL;
        }
      done += (uint64_t) n;
    }
  close (fd);
  /* The guest must never change the ROM, not even through a bug of ours. */
  mprotect (fw->rom, fw->size, PROT_READ);
  return g_steal_pointer (&fw);
}

void
vr_firmware_free (VrFirmware *fw)
{
  if (fw == NULL)
    return;
  if (fw->slot >= 0)
    vr_memory_remove_slot (fw->memory, fw->slot);
  if (fw->rom)
    munmap (fw->rom, fw->size);
  g_free (fw->path);
  g_free (fw);
}

uint64_t
vr_firmware_get_size (VrFirmware *fw)
{
  return fw->size;
}

bool
vr_firmware_map (VrFirmware  *fw,
                 VrMemory    *memory,
                 GError     **error)
{
  g_return_val_if_fail (fw->slot < 0, false);

  fw->slot = vr_memory_add_slot (memory, fw->rom, fw->size, VR_MEMORY_SLOT_READONLY);
  if (fw->slot < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "No memory slot is left for the firmware");
      return false;
    }
  fw->memory = memory;
  return vr_memory_set_slot_address (memory, fw->slot, VR_4GIB - fw->size, error);
}

void
vr_firmware_load_low (VrFirmware *fw,
                      VrMemory   *memory)
{
  uint64_t len = MIN (fw->size, VR_FIRMWARE_LOW_MIRROR_MAX);

  vr_memory_write (memory, VR_FIRMWARE_LOW_MIRROR_END - len, fw->rom + fw->size - len, len);
}
