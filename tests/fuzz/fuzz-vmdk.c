/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Fuzzes VMDK parsing: text descriptors, sparse extent headers (and footers), grain
 * directories and tables, compressed grains. */

#include <glib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/vr-disk.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static uint8_t buf[70000];
  g_autofree char *path = NULL;
  VrDisk *disk;
  int fd;

  fd = memfd_create ("fuzz-vmdk", MFD_CLOEXEC);
  if (fd < 0 || (size > 0 && write (fd, data, size) != (ssize_t) size))
    abort ();
  path = g_strdup_printf ("/proc/self/fd/%d", fd);

  disk = vr_disk_open (path, VR_DISK_FORMAT_VMDK, VR_DISK_OPEN_READONLY, NULL);
  if (disk != NULL)
    {
      uint64_t vsize = vr_disk_get_size (disk);
      const uint64_t offsets[] = { 0, 1000, 65536, vsize / 2, vsize > 70000 ? vsize - 70000 : 0 };
      VrDiskInfo *info;

      for (unsigned i = 0; i < G_N_ELEMENTS (offsets); i++)
        {
          uint64_t off = MIN (offsets[i], vsize);
          bool zero;
          uint64_t pnum;

          vr_disk_pread (disk, buf, (size_t) MIN (sizeof buf, vsize - off), off, NULL);
          if (off < vsize)
            vr_disk_block_status (disk, off, vsize - off, &zero, &pnum, NULL);
        }
      info = vr_disk_get_info (disk, NULL);
      vr_disk_info_free (info);
      vr_disk_close (disk);
    }
  close (fd);
  return 0;
}
