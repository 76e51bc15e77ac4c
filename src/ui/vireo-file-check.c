/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-file-check"

#include "config.h"

#include "vireo-file-check.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"

static char *
format_size_iec (guint64 size)
{
  return g_format_size_full (size, G_FORMAT_SIZE_IEC_UNITS);
}

const char *
vireo_disk_format_label (VrDiskFormat format)
{
  switch (format)
    {
    case VR_DISK_FORMAT_QCOW2:
      return "qcow2";
    case VR_DISK_FORMAT_VMDK:
      return "VMDK";
    case VR_DISK_FORMAT_RAW:
    default:
      /* Translators: a disk image format: a plain copy of the disk's bytes */
      return _("raw");
    }
}

VireoFileCheck *
vireo_file_check_new (VireoFileKind       kind,
                      const char         *path,
                      const VrDiskFormat *format)
{
  VireoFileCheck *check;

  g_return_val_if_fail (path != NULL, NULL);

  check = g_new0 (VireoFileCheck, 1);
  check->kind = kind;
  check->path = g_strdup (path);
  check->forced = format != NULL;
  check->format = format ? *format : VR_DISK_FORMAT_RAW;
  check->state = VIREO_FILE_CHECK_ERROR;
  return check;
}

void
vireo_file_check_free (VireoFileCheck *check)
{
  if (check == NULL)
    return;
  g_free (check->path);
  g_free (check->message);
  g_free (check);
}

static void
check_fail (VireoFileCheck *data, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
check_fail (VireoFileCheck  *data,
            const char *format,
            ...)
{
  va_list args;

  va_start (args, format);
  g_free (data->message);
  data->message = g_strdup_vprintf (format, args);
  va_end (args);
  data->state = VIREO_FILE_CHECK_ERROR;
}

/* What every file field needs: an absolute path to a readable, non-empty file. Fills @st. */
static gboolean
check_readable_file (VireoFileCheck *data,
                     GStatBuf  *st)
{
  int fd;

  if (!g_path_is_absolute (data->path))
    {
      check_fail (data, _("Enter the file’s full path, starting with “/”, or choose the file."));
      return FALSE;
    }
  if (g_stat (data->path, st) != 0)
    {
      int saved = errno;

      if (saved == ENOENT || saved == ENOTDIR)
        check_fail (data, _("There is no file at this path. Check the name, or choose the "
                            "file."));
      else
        check_fail (data, _("Vireo cannot look at this file: %s."), g_strerror (saved));
      return FALSE;
    }
  if (S_ISDIR (st->st_mode))
    {
      check_fail (data, _("This is a folder. Choose a file in it."));
      return FALSE;
    }
  if (!S_ISREG (st->st_mode) && !S_ISBLK (st->st_mode))
    {
      check_fail (data, _("This is not a regular file. Choose a file."));
      return FALSE;
    }
  fd = g_open (data->path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int saved = errno;

      check_fail (data, _("Vireo cannot read this file: %s. Check its permissions."),
                  g_strerror (saved));
      return FALSE;
    }
  close (fd);
  if (S_ISREG (st->st_mode) && st->st_size == 0)
    {
      check_fail (data, _("This file is empty."));
      return FALSE;
    }
  return TRUE;
}

static void
check_iso (VireoFileCheck *data)
{
  GStatBuf st;
  char magic[5] = { 0 };
  g_autofree char *size = NULL;
  int fd;
  gboolean iso9660 = FALSE;

  if (!check_readable_file (data, &st))
    return;
  fd = g_open (data->path, O_RDONLY | O_CLOEXEC, 0);
  if (fd >= 0)
    {
      iso9660 = pread (fd, magic, sizeof magic, 0x8001) == (ssize_t) sizeof magic
                && memcmp (magic, "CD001", 5) == 0;
      close (fd);
    }
  size = format_size_iec ((guint64) st.st_size);
  data->data_size = (guint64) st.st_size;
  if (!iso9660)
    {
      data->state = VIREO_FILE_CHECK_WARNING;
      data->message = g_strdup_printf (_("This file (%s) does not look like an installer disc "
                                         "image: it has no ISO 9660 header. Make sure it is "
                                         "the right file."),
                                       size);
      return;
    }
  data->state = VIREO_FILE_CHECK_OK;
  /* Translators: %s is a size, "3.9 GB" */
  data->message = g_strdup_printf (_("Installer disc image, %s"), size);
}

static void
check_disk (VireoFileCheck *data)
{
  GStatBuf st;
  g_autoptr(GError) error = NULL;
  g_autoptr(VrDisk) disk = NULL;
  g_autoptr(VrDiskInfo) info = NULL;
  g_autofree char *vsize = NULL;
  g_autofree char *dsize = NULL;
  VrDiskFormat probed = VR_DISK_FORMAT_RAW;

  if (!check_readable_file (data, &st))
    return;
  if (!vr_disk_probe_format (data->path, &probed, &error))
    {
      check_fail (data, _("Vireo cannot read this file: %s"), error->message);
      return;
    }
  data->detected = probed;
  data->probed = TRUE;
  if (!data->forced)
    data->format = probed;

  if (data->format == VR_DISK_FORMAT_RAW && S_ISREG (st.st_mode)
      && (st.st_size < 512 || st.st_size % 512 != 0))
    {
      check_fail (data, ngettext ("This file does not look like a disk image: it has no image "
                                  "header, and its size (%lu byte) is not a whole number of "
                                  "512-byte sectors.",
                                  "This file does not look like a disk image: it has no image "
                                  "header, and its size (%lu bytes) is not a whole number of "
                                  "512-byte sectors.",
                                  (gulong) st.st_size),
                  (gulong) st.st_size);
      return;
    }

  disk = vr_disk_open (data->path, data->format,
                       VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY, &error);
  if (disk != NULL)
    info = vr_disk_get_info (disk, &error);
  if (info == NULL)
    {
      check_fail (data, _("This is not a usable %s image: %s"), vireo_disk_format_label (data->format),
                  error->message);
      return;
    }
  data->virtual_size = info->virtual_size;
  data->data_size = info->actual_size;
  data->writable = g_access (data->path, W_OK) == 0;
  data->one_file = data->format != VR_DISK_FORMAT_VMDK
                   || g_strcmp0 (info->vmdk_create_type, "monolithicSparse") == 0
                   || g_strcmp0 (info->vmdk_create_type, "streamOptimized") == 0;
  if (info->backing_file != NULL)
    {
      check_fail (data, _("This image depends on another one (“%s”). Vireo cannot add an image "
                          "with a backing file here; convert it into a standalone image "
                          "first."),
                  info->backing_file);
      return;
    }

  vsize = g_format_size_full (info->virtual_size, G_FORMAT_SIZE_IEC_UNITS);
  dsize = g_format_size_full (info->actual_size, G_FORMAT_SIZE_IEC_UNITS);
  if (data->forced && data->format != data->detected)
    {
      data->state = VIREO_FILE_CHECK_WARNING;
      data->message = g_strdup_printf (_("The file’s contents say it is a %s image. Read as %s, "
                                         "the machine sees a %s disk that is probably not "
                                         "what you want."),
                                       vireo_disk_format_label (data->detected),
                                       vireo_disk_format_label (data->format), vsize);
    }
  else if (data->format == VR_DISK_FORMAT_RAW)
    {
      data->state = VIREO_FILE_CHECK_WARNING;
      data->message = g_strdup_printf (_("No image header found: Vireo will use the file as a "
                                         "raw disk of %s. Make sure it is a disk image."),
                                       vsize);
    }
  else
    {
      data->state = VIREO_FILE_CHECK_OK;
      /* Translators: "qcow2 image: a 20 GiB disk, 1.2 GiB used" */
      data->message = g_strdup_printf (_("%s image: a %s disk, %s used"),
                                       vireo_disk_format_label (data->format), vsize, dsize);
    }
  if (data->format == VR_DISK_FORMAT_VMDK)
    {
      g_autofree char *old = data->message;

      data->message = g_strdup_printf ("%s\n%s", old,
                                       _("Vireo can only read VMDK images: the machine gets "
                                         "this disk read-only."));
    }
}

static void
check_kernel (VireoFileCheck *data)
{
  GStatBuf st;
  g_autoptr(GError) error = NULL;
  g_autoptr(VrBootImage) image = NULL;
  const char *what;

  if (!check_readable_file (data, &st))
    return;
  image = vr_boot_image_new (data->path, NULL, 1ull << 30, &error);
  if (image == NULL)
    {
      if (error->message != NULL && strstr (error->message, "is not a kernel Vireo can boot"))
        check_fail (data, _("This is not a kernel Vireo can boot. Choose a Linux kernel "
                            "(bzImage), or an ELF kernel with a PVH or Multiboot entry."));
      else
        check_fail (data, _("Vireo cannot boot this kernel: %s"), error->message);
      return;
    }
  switch (vr_boot_image_get_protocol (image))
    {
    case VR_BOOT_LINUX:
      what = _("Linux kernel (bzImage)");
      break;
    case VR_BOOT_PVH:
      what = _("ELF kernel with a PVH entry point");
      break;
    case VR_BOOT_MULTIBOOT:
    default:
      what = _("Multiboot kernel");
      break;
    }
  data->state = VIREO_FILE_CHECK_OK;
  data->message = g_strdup (what);
}

static void
check_initrd (VireoFileCheck *data)
{
  GStatBuf st;
  g_autofree char *size = NULL;

  if (!check_readable_file (data, &st))
    return;
  size = format_size_iec ((guint64) st.st_size);
  data->state = VIREO_FILE_CHECK_OK;
  /* Translators: %s is a size, "12.3 MB" */
  data->message = g_strdup_printf (_("Initial RAM disk, %s"), size);
}

void
vireo_file_check_run (VireoFileCheck *check)
{
  g_return_if_fail (check != NULL);

  switch (check->kind)
    {
    case VIREO_FILE_INSTALLER:
      check_iso (check);
      break;
    case VIREO_FILE_DISK_IMAGE:
      check_disk (check);
      break;
    case VIREO_FILE_KERNEL:
      check_kernel (check);
      break;
    case VIREO_FILE_INITRD:
    default:
      check_initrd (check);
      break;
    }
}

static void
check_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  VireoFileCheck *data = task_data;

  vireo_file_check_run (data);
  g_task_return_pointer (task, data, (GDestroyNotify) vireo_file_check_free);
}

void
vireo_file_check_async (VireoFileKind        kind,
                        const char          *path,
                        const VrDiskFormat  *format,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (path != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_file_check_async);
  g_task_set_task_data (task, vireo_file_check_new (kind, path, format), NULL);
  g_task_run_in_thread (task, check_thread);
}

VireoFileCheck *
vireo_file_check_finish (GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
