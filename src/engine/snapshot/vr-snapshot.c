/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "config.h"

#include "vr-snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vr-machine.h"

#define STATE_MAGIC      "VIREOSNP"
#define STATE_HEADER     (8 + 4 + 4 + 8 + 32)
#define RAM_MAGIC        "VIREORAM"
#define RAM_HEADER_BYTES (8 + 4 + 4 + 8 + 8 + VR_SNAPSHOT_ID_SIZE)
/* A state file holds registers and device state, never RAM: anything bigger is not ours. */
#define STATE_MAX_PAYLOAD (256u << 20)

static void
put_le32 (uint8_t *p, uint32_t v)
{
  for (unsigned i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static void
put_le64 (uint8_t *p, uint64_t v)
{
  for (unsigned i = 0; i < 8; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t
get_le64 (const uint8_t *p)
{
  return (uint64_t) get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

static void
sha256 (const void *data,
        size_t      len,
        uint8_t     out[32])
{
  g_autoptr (GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  gsize n = 32;

  g_checksum_update (c, data, (gssize) len);
  g_checksum_get_digest (c, out, &n);
}

static bool io_error (GError **error, int err, const char *format, ...) G_GNUC_PRINTF (3, 4);

static bool
io_error (GError    **error,
          int         err,
          const char *format,
          ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, VR_ERROR, VR_ERROR_IO, "%s: %s", what, g_strerror (err));
  return false;
}

static bool
write_all (int         fd,
           const void *buf,
           size_t      len,
           off_t       offset)
{
  const uint8_t *p = buf;

  while (len > 0)
    {
      ssize_t n = pwrite (fd, p, len, offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = ENOSPC;
          return false;
        }
      p += n;
      len -= (size_t) n;
      offset += n;
    }
  return true;
}

bool
vr_snapshot_fsync (int         fd,
                   const char *what,
                   GError    **error)
{
  if (fsync (fd) == 0)
    return true;
  return io_error (error, errno, "Cannot write %s to the disk", what);
}

bool
vr_snapshot_write_state (int         dir_fd,
                         const char *name,
                         GVariant   *payload,
                         GError    **error)
{
  g_autoptr (GVariant) normal = g_variant_get_normal_form (payload);
  gsize len = g_variant_get_size (normal);
  uint8_t header[STATE_HEADER];
  int fd;
  bool ok;

  g_return_val_if_fail (g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT), false);

  memcpy (header, STATE_MAGIC, 8);
  put_le32 (header + 8, VR_SNAPSHOT_FORMAT_VERSION);
  put_le32 (header + 12, 0);
  put_le64 (header + 16, len);
  sha256 (g_variant_get_data (normal), len, header + 24);

  fd = openat (dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return io_error (error, errno, "Cannot create the snapshot file “%s”", name);
  ok = write_all (fd, header, sizeof header, 0)
       && write_all (fd, g_variant_get_data (normal), len, sizeof header);
  if (!ok)
    io_error (error, errno, "Cannot write the snapshot file “%s”", name);
  else
    ok = vr_snapshot_fsync (fd, "the snapshot's state", error);
  close (fd);
  return ok;
}

GVariant *
vr_snapshot_read_state (const char *path,
                        GError    **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GVariant) v = NULL;
  uint8_t digest[32];
  const uint8_t *h;
  gsize size;
  uint32_t version;
  uint64_t len;

  if (!g_file_get_contents (path, &contents, &size, &local))
    {
      g_set_error (error, VR_ERROR,
                   g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                     ? VR_ERROR_BAD_SNAPSHOT : VR_ERROR_IO,
                   "Cannot read the snapshot: %s", local->message);
      return NULL;
    }
  h = (const uint8_t *) contents;
  if (size < 8 || memcmp (h, STATE_MAGIC, 8) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "“%s” is not a Vireo snapshot", path);
      return NULL;
    }
  if (size < STATE_HEADER)
    goto truncated;
  version = get_le32 (h + 8);
  if (version > VR_SNAPSHOT_FORMAT_VERSION || version == 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot “%s” was made by a newer version of Vireo (format %u; this "
                   "version reads format %u): update Vireo to use it", path, version,
                   VR_SNAPSHOT_FORMAT_VERSION);
      return NULL;
    }
  len = get_le64 (h + 16);
  if (len > STATE_MAX_PAYLOAD)
    goto damaged;
  if (size - STATE_HEADER < len)
    goto truncated;
  if (size - STATE_HEADER > len)
    goto damaged;
  sha256 (h + STATE_HEADER, len, digest);
  if (memcmp (digest, h + 24, 32) != 0)
    goto damaged;

  bytes = g_bytes_new (h + STATE_HEADER, len);
  v = g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE);
  if (!g_variant_is_normal_form (v))
    goto damaged;
  return g_steal_pointer (&v);

truncated:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
               "The snapshot “%s” is truncated (%" G_GSIZE_FORMAT " bytes): it was not "
               "written completely", path, size);
  return NULL;
damaged:
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
               "The snapshot “%s” is damaged: its checksum does not match", path);
  return NULL;
}

static void
ram_header (uint8_t        buf[RAM_HEADER_BYTES + 32],
            uint64_t       ram_size,
            const uint8_t *id)
{
  memcpy (buf, RAM_MAGIC, 8);
  put_le32 (buf + 8, VR_SNAPSHOT_FORMAT_VERSION);
  put_le32 (buf + 12, 4096);
  put_le64 (buf + 16, ram_size);
  put_le64 (buf + 24, VR_SNAPSHOT_RAM_OFFSET);
  memcpy (buf + 32, id, VR_SNAPSHOT_ID_SIZE);
  sha256 (buf, RAM_HEADER_BYTES, buf + RAM_HEADER_BYTES);
}

bool
vr_snapshot_write_ram_header (int            fd,
                              uint64_t       ram_size,
                              const uint8_t *id,
                              GError       **error)
{
  uint8_t buf[RAM_HEADER_BYTES + 32];

  ram_header (buf, ram_size, id);
  if (!write_all (fd, buf, sizeof buf, 0))
    return io_error (error, errno, "Cannot write the snapshot's memory file");
  return true;
}

bool
vr_snapshot_check_ram_header (int            fd,
                              const char    *path,
                              uint64_t       ram_size,
                              const uint8_t *id,
                              GError       **error)
{
  uint8_t want[RAM_HEADER_BYTES + 32], got[RAM_HEADER_BYTES + 32];
  struct stat st;
  ssize_t n = pread (fd, got, sizeof got, 0);

  if (n < 0)
    return io_error (error, errno, "Cannot read “%s”", path);
  if (n < (ssize_t) sizeof got || memcmp (got, RAM_MAGIC, 8) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot's memory file “%s” is damaged: its header is missing", path);
      return false;
    }
  ram_header (want, ram_size, id);
  if (memcmp (want, got, sizeof want) != 0)
    {
      uint8_t digest[32];

      sha256 (got, RAM_HEADER_BYTES, digest);
      if (memcmp (digest, got + RAM_HEADER_BYTES, 32) != 0)
        g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                     "The snapshot's memory file “%s” is damaged: its header checksum does "
                     "not match", path);
      else if (get_le32 (got + 8) > VR_SNAPSHOT_FORMAT_VERSION)
        g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                     "The snapshot's memory file “%s” was made by a newer version of Vireo",
                     path);
      else if (get_le64 (got + 16) != ram_size)
        g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                     "The snapshot's memory file “%s” holds %" G_GUINT64_FORMAT " MiB, the "
                     "machine has %" G_GUINT64_FORMAT " MiB", path, get_le64 (got + 16) >> 20,
                     ram_size >> 20);
      else
        g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                     "The snapshot's memory file “%s” belongs to another snapshot", path);
      return false;
    }
  if (fstat (fd, &st) < 0 || (uint64_t) st.st_size < VR_SNAPSHOT_RAM_OFFSET + ram_size)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot's memory file “%s” is truncated", path);
      return false;
    }
  return true;
}

char *
vr_snapshot_make_temp_dir (const char *final,
                           GError    **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.partial-XXXXXX", final);

  if (g_mkdtemp_full (tmp, 0755) == NULL)
    {
      io_error (error, errno, "Cannot create the snapshot directory next to “%s”", final);
      return NULL;
    }
  return g_steal_pointer (&tmp);
}

static bool
fsync_path (const char *path,
            GError    **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool ok;

  if (fd < 0)
    return io_error (error, errno, "Cannot open “%s”", path);
  ok = vr_snapshot_fsync (fd, path, error);
  close (fd);
  return ok;
}

bool
vr_snapshot_commit_dir (const char *tmp,
                        const char *final,
                        GError    **error)
{
  g_autofree char *parent = g_path_get_dirname (final);

  if (!fsync_path (tmp, error))
    return false;
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
    return io_error (error, errno, "Cannot put the snapshot in place as “%s”", final);
  return fsync_path (parent, error);
}

void
vr_snapshot_remove_dir (const char *path)
{
  static const char *const files[] = { "state", "ram", "state.tmp", NULL };

  for (unsigned i = 0; files[i]; i++)
    {
      g_autofree char *f = g_build_filename (path, files[i], NULL);

      unlink (f);
    }
  rmdir (path);
}
