/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Fuzzes qcow2 header and metadata parsing, reads through the image, a few writes (the
 * allocator on hostile refcounts) and the metadata check. */

#include <glib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/vr-disk.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
read_some (VrDisk *disk)
{
  static uint8_t buf[65536 + 1024];
  uint64_t size = vr_disk_get_size (disk);
  const uint64_t offsets[] = { 0, 512, 65536 - 100, size / 2, size > 4096 ? size - 4096 : 0 };

  for (unsigned i = 0; i < G_N_ELEMENTS (offsets); i++)
    {
      uint64_t off = MIN (offsets[i], size);
      size_t len = (size_t) MIN (sizeof buf, size - off);
      bool zero;
      uint64_t pnum;

      vr_disk_pread (disk, buf, len, off, NULL);
      if (len > 0)
        vr_disk_block_status (disk, off, len, &zero, &pnum, NULL);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *path = NULL;
  VrDiskCheckResult result;
  VrDisk *disk;
  int fd;

  fd = memfd_create ("fuzz-qcow2", MFD_CLOEXEC);
  if (fd < 0 || (size > 0 && write (fd, data, size) != (ssize_t) size))
    abort ();
  path = g_strdup_printf ("/proc/self/fd/%d", fd);

  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, NULL);
  if (disk != NULL)
    {
      read_some (disk);
      vr_disk_close (disk);
    }
  if (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_NONE, &result, NULL))
    vr_disk_check_result_clear (&result);
  else
    vr_disk_check_result_clear (&result);

  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, NULL);
  if (disk != NULL)
    {
      static const uint8_t pattern[3000] = { 1, 2, 3 };
      uint64_t vsize = vr_disk_get_size (disk);

      if (vsize >= sizeof pattern)
        {
          vr_disk_pwrite (disk, pattern, sizeof pattern, 0, NULL);
          vr_disk_pwrite (disk, pattern, sizeof pattern, vsize - sizeof pattern, NULL);
          vr_disk_write_zeroes (disk, 0, MIN (vsize, 1u << 20), true, NULL);
          vr_disk_discard (disk, vsize / 2, MIN (vsize / 2, 1u << 20), NULL);
          vr_disk_flush (disk, NULL);
          read_some (disk);
        }
      vr_disk_close (disk);
      if (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_ALL, &result, NULL))
        vr_disk_check_result_clear (&result);
      else
        vr_disk_check_result_clear (&result);
    }
  close (fd);
  return 0;
}
