/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * VMDK, read-only: hosted sparse extents ("KDMV": monolithicSparse, streamOptimized with
 * zlib grains and markers, the footer when the grain directory is at the end) and descriptor
 * files (monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs) whose extents are
 * relative to the descriptor's directory. Snapshot chains (parentCID) are not supported.
 *
 * Lock-free: everything is immutable after opening; reads use pread only (grain table
 * entries are read from the file on each access, so no cache needs a lock).
 */

#include "vr-disk-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPARSE_MAGIC        0x564d444bu  /* "KDMV" little-endian */
#define GD_AT_END           UINT64_C (0xffffffffffffffff)
#define FLAG_COMPRESSED     (1u << 16)
#define FLAG_MARKERS        (1u << 17)
#define MAX_GRAIN_SECTORS   4096u         /* 2 MiB */
#define MAX_GD_BYTES        (32u << 20)
#define MAX_DESCRIPTOR      (1u << 20)
#define MAX_EXTENTS         1024u

typedef enum
{
  EXTENT_FLAT,
  EXTENT_SPARSE,
  EXTENT_ZERO,
} ExtentType;

typedef struct
{
  ExtentType  type;
  uint64_t    start;        /* virtual byte offset */
  uint64_t    length;       /* bytes */
  int         fd;           /* -1 for zero extents */
  bool        own_fd;
  char       *path;
  uint64_t    file_size;
  uint64_t    flat_offset;  /* bytes */
  uint64_t    grain_size;   /* bytes */
  uint32_t    gtes;
  uint32_t   *gd;
  uint64_t    gd_entries;
  bool        compressed;
  bool        markers;
} Extent;

typedef struct
{
  Extent   *ext;
  unsigned  n;
  char     *create_type;
} Vmdk;

static inline uint32_t
le32_at (const uint8_t *p)
{
  uint32_t v;

  memcpy (&v, p, 4);
  return GUINT32_FROM_LE (v);
}

static inline uint64_t
le64_at (const uint8_t *p)
{
  uint64_t v;

  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

G_GNUC_PRINTF (4, 5) static bool
fail (const char  *path,
      GError     **error,
      int          code,
      const char  *fmt,
      ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, VR_DISK_ERROR, code, "%s: %s", path, msg);
  return false;
}

/* Reads the sparse header (at offset 0, or the footer's copy) of ext->fd. */
static bool
open_sparse (Extent   *ext,
             uint64_t *capacity_out,
             uint64_t *desc_offset,
             uint64_t *desc_size,
             GError  **error)
{
  uint8_t h[512];
  size_t got = 0;
  uint64_t capacity, granularity, gd_offset, gd_bytes;
  uint32_t version, flags, gtes;
  uint16_t algo;

  if (!vr_disk_full_pread (ext->fd, h, sizeof h, 0, &got, error))
    return false;
  if (got < 79 || le32_at (h) != SPARSE_MAGIC)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "not a VMDK sparse extent (bad magic)");
  if (le64_at (h + 56) == GD_AT_END)
    {
      /* streamOptimized: the footer (marker, header, end-of-stream) ends the file. */
      if (ext->file_size < 1536 + 512)
        return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "VMDK footer is missing");
      if (!vr_disk_full_pread (ext->fd, h, sizeof h, ext->file_size - 1024, &got, error))
        return false;
      if (got < 79 || le32_at (h) != SPARSE_MAGIC || le64_at (h + 56) == GD_AT_END)
        return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "VMDK footer is invalid");
    }
  version = le32_at (h + 4);
  flags = le32_at (h + 8);
  capacity = le64_at (h + 12);
  granularity = le64_at (h + 20);
  *desc_offset = le64_at (h + 28);
  *desc_size = le64_at (h + 36);
  gtes = le32_at (h + 44);
  gd_offset = le64_at (h + 56);
  algo = (uint16_t) (h[77] | (h[78] << 8));

  if (version < 1 || version > 3)
    return fail (ext->path, error, VR_DISK_ERROR_UNSUPPORTED, "VMDK version %u is not supported",
                 version);
  if (capacity > (UINT64_C (1) << 53))
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "VMDK capacity is too large");
  if (granularity == 0 || granularity > MAX_GRAIN_SECTORS
      || (granularity & (granularity - 1)) != 0)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK grain size of %" G_GUINT64_FORMAT " sectors is invalid", granularity);
  if (gtes == 0 || gtes > 512)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK grain table size %u is invalid", gtes);
  if ((flags & FLAG_COMPRESSED) && algo != 1)
    return fail (ext->path, error, VR_DISK_ERROR_UNSUPPORTED,
                 "VMDK compression algorithm %u is not supported", algo);
  ext->grain_size = granularity * 512;
  ext->gtes = gtes;
  ext->compressed = (flags & FLAG_COMPRESSED) != 0;
  ext->markers = (flags & FLAG_MARKERS) != 0;
  ext->gd_entries = (capacity + granularity * gtes - 1) / (granularity * gtes);
  gd_bytes = ext->gd_entries * 4;
  if (gd_bytes > MAX_GD_BYTES)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "VMDK grain directory is too large");
  if (gd_offset > ext->file_size / 512 || gd_bytes > ext->file_size - gd_offset * 512)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK grain directory at sector %" G_GUINT64_FORMAT " lies past the end of "
                 "the file", gd_offset);
  ext->gd = g_new0 (uint32_t, MAX (ext->gd_entries, 1));
  if (!vr_disk_full_pread (ext->fd, ext->gd, gd_bytes, gd_offset * 512, NULL, error))
    return false;
  for (uint64_t i = 0; i < ext->gd_entries; i++)
    ext->gd[i] = GUINT32_FROM_LE (ext->gd[i]);
  *capacity_out = capacity;
  return true;
}

static bool
read_grain (Extent    *ext,
            uint32_t   gte,
            uint8_t   *out,
            GError   **error)
{
  uint64_t off = (uint64_t) gte * 512, avail, want;
  g_autofree uint8_t *in = NULL;
  size_t got = 0;
  z_stream s = { 0 };
  int ret;

  if (off >= ext->file_size)
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK grain at sector %u lies past the end of the file", gte);
  avail = ext->file_size - off;
  want = MIN (avail, 2 * ext->grain_size + 512);
  in = g_malloc (want);
  if (!vr_disk_full_pread (ext->fd, in, want, off, &got, error))
    return false;
  s.next_in = in;
  s.avail_in = (uInt) got;
  if (ext->markers)
    {
      uint32_t size;

      if (got < 12)
        return fail (ext->path, error, VR_DISK_ERROR_CORRUPT, "VMDK grain marker is truncated");
      size = le32_at (in + 8);
      if (size == 0 || size > got - 12)
        return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                     "VMDK compressed grain at sector %u is invalid", gte);
      s.next_in = in + 12;
      s.avail_in = size;
    }
  if (inflateInit (&s) != Z_OK)
    return fail (ext->path, error, VR_DISK_ERROR_FAILED, "zlib initialisation failed");
  s.next_out = out;
  s.avail_out = (uInt) ext->grain_size;
  ret = inflate (&s, Z_FINISH);
  inflateEnd (&s);
  if (ret != Z_STREAM_END && !(ret == Z_BUF_ERROR && s.avail_out == 0))
    return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK compressed grain at sector %u is damaged", gte);
  memset (out + (ext->grain_size - s.avail_out), 0, s.avail_out);
  return true;
}

static bool
read_sparse (Extent              *ext,
             const struct iovec  *iov,
             int                  iovcnt,
             uint64_t             skip,
             uint64_t             len,
             uint64_t             off,
             GError             **error)
{
  while (len > 0)
    {
      uint64_t grain = off / ext->grain_size, in = off % ext->grain_size;
      uint64_t n = MIN (len, ext->grain_size - in);
      uint64_t gdi = grain / ext->gtes, gti = grain % ext->gtes;
      uint32_t gte = 0;

      if (gdi < ext->gd_entries && ext->gd[gdi] != 0)
        {
          uint64_t pos = (uint64_t) ext->gd[gdi] * 512 + gti * 4;
          uint8_t b[4];

          if (pos + 4 > ext->file_size)
            return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                         "VMDK grain table at sector %u lies past the end of the file",
                         ext->gd[gdi]);
          if (!vr_disk_full_pread (ext->fd, b, 4, pos, NULL, error))
            return false;
          gte = le32_at (b);
        }
      if (gte == 0 || gte == 1)
        vr_disk_iov_memset (iov, iovcnt, skip, 0, n);
      else if (ext->compressed)
        {
          g_autofree uint8_t *buf = g_malloc (ext->grain_size);

          if (!read_grain (ext, gte, buf, error))
            return false;
          vr_disk_iov_from_buf (iov, iovcnt, skip, buf + in, n);
        }
      else
        {
          if ((uint64_t) gte * 512 >= ext->file_size)
            return fail (ext->path, error, VR_DISK_ERROR_CORRUPT,
                         "VMDK grain at sector %u lies past the end of the file", gte);
          if (!vr_disk_file_preadv (ext->fd, iov, iovcnt, skip, n, (uint64_t) gte * 512 + in,
                                    error))
            return false;
        }
      skip += n;
      off += n;
      len -= n;
    }
  return true;
}

static bool
vmdk_preadv (VrDisk              *disk,
             const struct iovec  *iov,
             int                  iovcnt,
             uint64_t             offset,
             uint64_t             len,
             GError             **error)
{
  Vmdk *v = disk->priv;
  uint64_t skip = 0;

  for (unsigned i = 0; i < v->n && len > 0; i++)
    {
      Extent *e = &v->ext[i];
      uint64_t in, n;

      if (offset >= e->start + e->length)
        continue;
      in = offset - e->start;
      n = MIN (len, e->length - in);
      switch (e->type)
        {
        case EXTENT_ZERO:
          vr_disk_iov_memset (iov, iovcnt, skip, 0, n);
          break;
        case EXTENT_FLAT:
          if (!vr_disk_file_preadv (e->fd, iov, iovcnt, skip, n, e->flat_offset + in, error))
            return false;
          break;
        case EXTENT_SPARSE:
        default:
          if (!read_sparse (e, iov, iovcnt, skip, n, in, error))
            return false;
          break;
        }
      skip += n;
      offset += n;
      len -= n;
    }
  if (len > 0)
    vr_disk_iov_memset (iov, iovcnt, skip, 0, len);
  return true;
}

static bool
vmdk_refuse (VrDisk  *disk,
             GError **error)
{
  g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY, "%s: VMDK images are read-only",
               disk->filename);
  return false;
}

static bool
vmdk_pwritev (VrDisk *disk, const struct iovec *iov, int iovcnt, uint64_t offset,
              uint64_t len, GError **error)
{
  return vmdk_refuse (disk, error);
}

static bool
vmdk_flush (VrDisk *disk, GError **error)
{
  return true;
}

static bool
vmdk_discard (VrDisk *disk, uint64_t offset, uint64_t len, GError **error)
{
  return vmdk_refuse (disk, error);
}

static bool
vmdk_write_zeroes (VrDisk *disk, uint64_t offset, uint64_t len, bool may_unmap,
                   GError **error)
{
  return vmdk_refuse (disk, error);
}

static bool
vmdk_block_status (VrDisk    *disk,
                   uint64_t   offset,
                   uint64_t   len,
                   bool      *is_zero,
                   uint64_t  *pnum,
                   GError   **error)
{
  Vmdk *v = disk->priv;

  *is_zero = false;
  *pnum = len;
  for (unsigned i = 0; i < v->n; i++)
    {
      Extent *e = &v->ext[i];
      uint64_t in;

      if (offset >= e->start + e->length)
        continue;
      in = offset - e->start;
      if (e->type == EXTENT_ZERO)
        {
          *is_zero = true;
          *pnum = MIN (len, e->length - in);
        }
      else if (e->type == EXTENT_SPARSE)
        {
          uint64_t grain = in / e->grain_size, gdi = grain / e->gtes;

          *pnum = MIN (len, e->grain_size - in % e->grain_size);
          *is_zero = gdi >= e->gd_entries || e->gd[gdi] == 0;
          if (!*is_zero)
            {
              uint8_t b[4];
              uint64_t pos = (uint64_t) e->gd[gdi] * 512 + (grain % e->gtes) * 4;

              if (pos + 4 <= e->file_size
                  && vr_disk_full_pread (e->fd, b, 4, pos, NULL, NULL))
                *is_zero = le32_at (b) <= 1;
            }
        }
      break;
    }
  return true;
}

static void
vmdk_info (VrDisk     *disk,
           VrDiskInfo *info)
{
  Vmdk *v = disk->priv;

  info->vmdk_create_type = g_strdup (v->create_type);
  info->vmdk_extents = v->n;
  info->actual_size = 0;
  for (unsigned i = 0; i < v->n; i++)
    {
      struct stat st;

      if (v->ext[i].type == EXTENT_SPARSE)
        {
          info->cluster_size = (uint32_t) v->ext[i].grain_size;
          info->vmdk_compressed |= v->ext[i].compressed;
        }
      if (v->ext[i].fd >= 0 && (v->ext[i].own_fd || i == 0) && fstat (v->ext[i].fd, &st) == 0)
        info->actual_size += (uint64_t) st.st_blocks * 512;
    }
}

static void
vmdk_free (Vmdk *v)
{
  if (v == NULL)
    return;
  for (unsigned i = 0; i < v->n; i++)
    {
      if (v->ext[i].own_fd && v->ext[i].fd >= 0)
        close (v->ext[i].fd);
      g_free (v->ext[i].path);
      g_free (v->ext[i].gd);
    }
  g_free (v->ext);
  g_free (v->create_type);
  g_free (v);
}

static void
vmdk_close (VrDisk *disk)
{
  vmdk_free (disk->priv);
  disk->priv = NULL;
}

static const VrDiskOps vmdk_ops = {
  .preadv = vmdk_preadv,
  .pwritev = vmdk_pwritev,
  .flush = vmdk_flush,
  .discard = vmdk_discard,
  .write_zeroes = vmdk_write_zeroes,
  .block_status = vmdk_block_status,
  .info = vmdk_info,
  .close = vmdk_close,
};

static char *
descriptor_value (const char *text,
                  const char *key)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    {
      char *line = g_strstrip (*l);
      size_t kl = strlen (key);

      if (strncmp (line, key, kl) == 0)
        {
          char *val = g_strstrip (line + kl);

          if (*val != '=')
            continue;
          val = g_strstrip (val + 1);
          if (*val == '"')
            {
              char *end = strchr (val + 1, '"');

              return end ? g_strndup (val + 1, (gsize) (end - val - 1)) : g_strdup (val + 1);
            }
          return g_strdup (val);
        }
    }
  return NULL;
}

static Extent *
add_extent (Vmdk *v)
{
  v->ext = g_renew (Extent, v->ext, v->n + 1);
  memset (&v->ext[v->n], 0, sizeof (Extent));
  v->ext[v->n].fd = -1;
  return &v->ext[v->n++];
}

static bool
open_extent_file (Extent   *e,
                  GError  **error)
{
  struct stat st;

  e->fd = open (e->path, O_RDONLY | O_CLOEXEC);
  if (e->fd < 0)
    return fail (e->path, error, errno == ENOENT ? VR_DISK_ERROR_NOT_FOUND : VR_DISK_ERROR_IO,
                 "cannot open VMDK extent: %s", g_strerror (errno));
  e->own_fd = true;
  if (fstat (e->fd, &st) < 0 || !S_ISREG (st.st_mode))
    return fail (e->path, error, VR_DISK_ERROR_INVALID, "VMDK extent is not a regular file");
  e->file_size = (uint64_t) st.st_size;
  return true;
}

static bool
parse_descriptor (VrDisk      *disk,
                  Vmdk        *v,
                  const char  *text,
                  GError     **error)
{
  g_auto (GStrv) lines = NULL;
  g_autofree char *parent = descriptor_value (text, "parentCID");
  uint64_t pos = 0;

  v->create_type = descriptor_value (text, "createType");
  if (v->create_type == NULL)
    return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                 "VMDK descriptor has no createType");
  if (parent != NULL && g_ascii_strcasecmp (parent, "ffffffff") != 0)
    return fail (disk->filename, error, VR_DISK_ERROR_UNSUPPORTED,
                 "VMDK image has a parent (snapshot chain); this is not supported");

  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      char *line = g_strstrip (*l);
      g_auto (GStrv) f = NULL;
      const char *q1, *q2;
      g_autofree char *name = NULL;
      uint64_t sectors, offset = 0;
      Extent *e;
      char *end;

      if (!g_str_has_prefix (line, "RW ") && !g_str_has_prefix (line, "RDONLY ")
          && !g_str_has_prefix (line, "NOACCESS "))
        continue;
      if (v->n >= MAX_EXTENTS)
        return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT, "too many VMDK extents");
      q1 = strchr (line, '"');
      q2 = q1 ? strchr (q1 + 1, '"') : NULL;
      f = g_strsplit_set (line, " \t", 4);
      if (g_strv_length (f) < 3)
        return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                     "VMDK extent line “%s” is invalid", line);
      errno = 0;
      sectors = g_ascii_strtoull (f[1], &end, 10);
      if (errno != 0 || *end != '\0' || sectors > (UINT64_C (1) << 53))
        return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                     "VMDK extent size “%s” is invalid", f[1]);
      e = add_extent (v);
      e->start = pos;
      e->length = sectors * 512;
      if (pos + e->length > (UINT64_C (1) << 62))
        return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT, "VMDK image is too large");
      pos += e->length;
      if (strcmp (f[2], "ZERO") == 0)
        {
          e->type = EXTENT_ZERO;
          continue;
        }
      if (q1 == NULL || q2 == NULL || q2 == q1 + 1)
        return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                     "VMDK extent line “%s” has no file name", line);
      name = g_strndup (q1 + 1, (gsize) (q2 - q1 - 1));
      e->path = vr_disk_resolve_relative (disk->filename, name);
      if (strcmp (f[2], "FLAT") == 0 || strcmp (f[2], "VMFS") == 0)
        {
          const char *o = q2 + 1;

          while (*o == ' ' || *o == '\t')
            o++;
          if (*o != '\0')
            {
              errno = 0;
              offset = g_ascii_strtoull (o, &end, 10);
              if (errno != 0 || offset > (UINT64_C (1) << 53))
                return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                             "VMDK extent offset is invalid");
            }
          e->type = EXTENT_FLAT;
          e->flat_offset = offset * 512;
          if (!open_extent_file (e, error))
            return false;
        }
      else if (strcmp (f[2], "SPARSE") == 0 || strcmp (f[2], "VMFSSPARSE") == 0)
        {
          uint64_t cap, doff, dsize;

          e->type = EXTENT_SPARSE;
          if (!open_extent_file (e, error) || !open_sparse (e, &cap, &doff, &dsize, error))
            return false;
        }
      else
        return fail (disk->filename, error, VR_DISK_ERROR_UNSUPPORTED,
                     "VMDK extent type “%s” is not supported", f[2]);
    }
  if (v->n == 0)
    return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT, "VMDK descriptor has no extents");
  disk->size = pos;
  return true;
}

static bool
vmdk_open (VrDisk  *disk,
           Vmdk    *v,
           GError **error)
{
  uint8_t magic[4] = { 0 };
  size_t got = 0;
  struct stat st;

  if (fstat (disk->fd, &st) < 0)
    return fail (disk->filename, error, VR_DISK_ERROR_IO, "cannot stat: %s", g_strerror (errno));
  if (!vr_disk_full_pread (disk->fd, magic, 4, 0, &got, error))
    return false;
  if (got == 4 && le32_at (magic) == SPARSE_MAGIC)
    {
      Extent *e = add_extent (v);
      uint64_t cap, doff, dsize;

      e->type = EXTENT_SPARSE;
      e->fd = disk->fd;
      e->path = g_strdup (disk->filename);
      e->file_size = (uint64_t) st.st_size;
      if (!open_sparse (e, &cap, &doff, &dsize, error))
        return false;
      e->length = cap * 512;
      disk->size = e->length;
      /* The embedded descriptor names the create type. */
      if (doff != 0 && dsize > 0 && dsize <= MAX_DESCRIPTOR / 512
          && doff * 512 < e->file_size)
        {
          g_autofree char *text = g_malloc0 (dsize * 512 + 1);

          if (vr_disk_full_pread (disk->fd, text, dsize * 512, doff * 512, NULL, NULL))
            v->create_type = descriptor_value (text, "createType");
        }
      if (v->create_type == NULL)
        v->create_type = g_strdup (e->compressed ? "streamOptimized" : "monolithicSparse");
      return true;
    }
  if (got == 4 && memcmp (magic, "COWD", 4) == 0)
    return fail (disk->filename, error, VR_DISK_ERROR_UNSUPPORTED,
                 "VMDK version 3 (COWD) images are not supported");
  if ((uint64_t) st.st_size > MAX_DESCRIPTOR)
    return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                 "not a VMDK image (no sparse header, and too large for a descriptor)");
  {
    g_autofree char *text = g_malloc0 ((size_t) st.st_size + 1);

    if (!vr_disk_full_pread (disk->fd, text, (size_t) st.st_size, 0, NULL, error))
      return false;
    /* qemu-img pads descriptor files with NULs to a sector. */
    if (strstr (text, "createType") == NULL)
      return fail (disk->filename, error, VR_DISK_ERROR_CORRUPT,
                   "not a VMDK image (no sparse header or text descriptor)");
    return parse_descriptor (disk, v, text, error);
  }
}

bool
vr_vmdk_open (VrDisk  *disk,
              GError **error)
{
  Vmdk *v = g_new0 (Vmdk, 1);

  if (!vmdk_open (disk, v, error))
    {
      vmdk_free (v);
      return false;
    }
  disk->priv = v;
  disk->ops = &vmdk_ops;
  return true;
}
