/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-atomic-file"

#include "config.h"

#include "vireo-atomic-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define TEMP_INFIX ".tmp-"
#define TEMP_RANDOM_LEN 6  /* the XXXXXX of g_mkstemp */

static gboolean set_errno_error (GError **error, int saved, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

/* Always returns FALSE. The format takes the file name then the system's reason. */
static gboolean
set_errno_error (GError **error, int saved, const char *format, ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved), msg);
  return FALSE;
}

gboolean
vireo_fsync_dir (const char *dir, GError **error)
{
  int fd;

  g_return_val_if_fail (dir != NULL, FALSE);

  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      return set_errno_error (error, saved, _("Cannot open the folder “%s”: %s"), dir,
                              g_strerror (saved));
    }
  if (fsync (fd) < 0 && errno != EINVAL)
    {
      int saved = errno;
      close (fd);
      return set_errno_error (error, saved, _("Cannot save the folder “%s”: %s"), dir,
                              g_strerror (saved));
    }
  close (fd);
  return TRUE;
}

gboolean
vireo_atomic_file_write (const char  *path,
                         const void  *data,
                         gsize        len,
                         GError     **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;
  g_autofree char *tmp = NULL;
  const guint8 *p = data;
  int fd;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  dir = g_path_get_dirname (path);
  base = g_path_get_basename (path);
  tmp = g_strdup_printf ("%s/.%s" TEMP_INFIX "XXXXXX", dir, base);

  fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      int saved = errno;
      return set_errno_error (error, saved, _("Cannot write “%s”: %s"), path,
                              g_strerror (saved));
    }

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        goto fail;
      p += n;
      len -= (gsize) n;
    }
  if (fsync (fd) < 0)
    goto fail;
  if (close (fd) < 0)
    {
      fd = -1;
      goto fail;
    }
  fd = -1;
  if (rename (tmp, path) < 0)
    goto fail;

  return vireo_fsync_dir (dir, error);

fail:
  {
    int saved = errno ? errno : EIO;

    if (fd >= 0)
      close (fd);
    g_unlink (tmp);
    return set_errno_error (error, saved, _("Cannot write “%s”: %s"), path, g_strerror (saved));
  }
}

gboolean
vireo_atomic_file_write_bytes (const char  *path,
                               GBytes      *bytes,
                               GError     **error)
{
  gsize len;
  const void *data;

  g_return_val_if_fail (bytes != NULL, FALSE);

  data = g_bytes_get_data (bytes, &len);
  return vireo_atomic_file_write (path, data ? data : "", len, error);
}

gboolean
vireo_atomic_file_is_temp_name (const char *name)
{
  const char *infix;
  gsize len;

  g_return_val_if_fail (name != NULL, FALSE);

  len = strlen (name);
  if (name[0] != '.' || len < 1 + strlen (TEMP_INFIX) + TEMP_RANDOM_LEN + 1)
    return FALSE;
  infix = name + len - TEMP_RANDOM_LEN - strlen (TEMP_INFIX);
  return strncmp (infix, TEMP_INFIX, strlen (TEMP_INFIX)) == 0;
}

guint
vireo_atomic_file_clean_temps (const char *dir)
{
  g_autoptr(GDir) d = NULL;
  const char *name;
  guint removed = 0;

  g_return_val_if_fail (dir != NULL, 0);

  d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return 0;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;

      if (!vireo_atomic_file_is_temp_name (name))
        continue;
      path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && g_unlink (path) == 0)
        {
          g_debug ("Removed the leftover temporary file %s", path);
          removed++;
        }
    }
  return removed;
}
