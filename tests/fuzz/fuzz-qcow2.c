/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Fuzzes qcow2 header and metadata parsing (the snapshot table too), reads through the image,
 * a few writes (the allocator on hostile refcounts), internal snapshots (create, apply, delete
 * on hostile tables and refcounts), growing the image, and the metadata check. */

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

/* Every existing snapshot applied and deleted, one created, applied and written over, the
 * disk grown. Errors are expected; crashes and sanitizer reports are not. */
static void
snapshots (VrDisk *disk)
{
  static const uint8_t pattern[1000] = { 9, 8, 7 };
  GPtrArray *list = vr_disk_snapshot_list (disk, NULL);
  uint64_t vsize;

  if (list != NULL)
    {
      for (guint i = 0; i < list->len && i < 4; i++)
        {
          VrDiskSnapshot *sn = list->pdata[i];

          vr_disk_snapshot_apply (disk, sn->id, NULL);
          read_some (disk);
        }
      for (guint i = 0; i < list->len && i < 4; i++)
        vr_disk_snapshot_delete (disk, ((VrDiskSnapshot *) list->pdata[i])->name, NULL);
      g_ptr_array_unref (list);
    }
  if (vr_disk_snapshot_create (disk, NULL, "fuzz", 0, NULL))
    {
      vsize = vr_disk_get_size (disk);
      if (vsize >= sizeof pattern)
        vr_disk_pwrite (disk, pattern, sizeof pattern, vsize / 3, NULL);
      vr_disk_snapshot_create (disk, "99", "fuzz2", 1, NULL);
      vr_disk_snapshot_apply (disk, "fuzz", NULL);
      read_some (disk);
      vr_disk_snapshot_delete (disk, "99", NULL);
    }
  vsize = vr_disk_get_size (disk);
  if (vsize < (UINT64_C (1) << 40))
    vr_disk_resize (disk, (vsize + (UINT64_C (3) << 20)) & ~UINT64_C (511), false, NULL);
  read_some (disk);
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
      GPtrArray *list = vr_disk_snapshot_list (disk, NULL);

      read_some (disk);
      if (list != NULL)
        g_ptr_array_unref (list);
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
      snapshots (disk);
      vr_disk_close (disk);
      if (vr_disk_check (path, VR_DISK_FORMAT_QCOW2, VR_DISK_REPAIR_ALL, &result, NULL))
        vr_disk_check_result_clear (&result);
      else
        vr_disk_check_result_clear (&result);
    }
  close (fd);
  return 0;
}
