/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Disk images: the common layer (dispatch, range checks, helpers, creation) and raw images. */

#include "vr-disk-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>

G_DEFINE_QUARK (vr-disk-error-quark, vr_disk_error)

/* Largest virtual size accepted anywhere: 2^62 bytes. */
#define VR_DISK_MAX_SIZE (UINT64_C (1) << 62)

bool
vr_disk_format_from_string (const char    *s,
                            VrDiskFormat  *out,
                            GError       **error)
{
  g_return_val_if_fail (out != NULL, false);

  if (s != NULL && g_ascii_strcasecmp (s, "raw") == 0)
    *out = VR_DISK_FORMAT_RAW;
  else if (s != NULL && g_ascii_strcasecmp (s, "qcow2") == 0)
    *out = VR_DISK_FORMAT_QCOW2;
  else if (s != NULL && g_ascii_strcasecmp (s, "vmdk") == 0)
    *out = VR_DISK_FORMAT_VMDK;
  else
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "Unknown disk image format “%s” (known: raw, qcow2, vmdk)", s ? s : "");
      return false;
    }
  return true;
}

const char *
vr_disk_format_to_string (VrDiskFormat fmt)
{
  switch (fmt)
    {
    case VR_DISK_FORMAT_RAW:   return "raw";
    case VR_DISK_FORMAT_QCOW2: return "qcow2";
    case VR_DISK_FORMAT_VMDK:  return "vmdk";
    default:                   return "unknown";
    }
}

static void
set_errno_error (GError     **error,
                 int          errsv,
                 const char  *path,
                 const char  *what)
{
  int code = VR_DISK_ERROR_IO;

  if (errsv == ENOSPC || errsv == EDQUOT || errsv == EFBIG)
    code = VR_DISK_ERROR_NO_SPACE;
  else if (errsv == ENOENT)
    code = VR_DISK_ERROR_NOT_FOUND;
  else if (errsv == EROFS || errsv == EACCES || errsv == EPERM)
    code = VR_DISK_ERROR_READ_ONLY;
  g_set_error (error, VR_DISK_ERROR, code, "%s: %s: %s", path, what, g_strerror (errsv));
}

bool
vr_disk_probe_format (const char    *path,
                      VrDiskFormat  *out,
                      GError       **error)
{
  g_autofree char *buf = g_malloc0 (4096);
  size_t done = 0;
  int fd;
  bool ok;

  g_return_val_if_fail (path != NULL && out != NULL, false);

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      set_errno_error (error, errno, path, "cannot open");
      return false;
    }
  ok = vr_disk_full_pread (fd, buf, 4095, 0, &done, error);
  close (fd);
  if (!ok)
    return false;

  if (done >= 4 && memcmp (buf, "QFI\xfb", 4) == 0)
    *out = VR_DISK_FORMAT_QCOW2;
  else if (done >= 4 && (memcmp (buf, "KDMV", 4) == 0 || memcmp (buf, "COWD", 4) == 0))
    *out = VR_DISK_FORMAT_VMDK;
  else if (done > 0 && (strstr (buf, "# Disk DescriptorFile") == buf
                        || (strstr (buf, "createType=") != NULL
                            && strstr (buf, "# Extent description") != NULL)))
    *out = VR_DISK_FORMAT_VMDK;
  else
    *out = VR_DISK_FORMAT_RAW;
  return true;
}

/* Helpers */

bool
vr_disk_full_pread (int       fd,
                    void     *buf,
                    size_t    len,
                    uint64_t  offset,
                    size_t   *done,
                    GError  **error)
{
  size_t pos = 0;

  while (pos < len)
    {
      ssize_t n = pread (fd, (char *) buf + pos, len - pos, (off_t) (offset + pos));

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          set_errno_error (error, errno, "disk image", "read failed");
          return false;
        }
      if (n == 0)
        break;
      pos += (size_t) n;
    }
  if (done != NULL)
    *done = pos;
  else if (pos < len)
    memset ((char *) buf + pos, 0, len - pos);
  return true;
}

bool
vr_disk_full_pwrite (int          fd,
                     const void  *buf,
                     size_t       len,
                     uint64_t     offset,
                     GError     **error)
{
  size_t pos = 0;

  while (pos < len)
    {
      ssize_t n = pwrite (fd, (const char *) buf + pos, len - pos, (off_t) (offset + pos));

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          set_errno_error (error, n < 0 ? errno : ENOSPC, "disk image", "write failed");
          return false;
        }
      pos += (size_t) n;
    }
  return true;
}

/* Fills out[] with the part [skip, skip + len) of iov; returns the count (<= max). */
int
vr_disk_iov_slice (const struct iovec *iov,
           int                 iovcnt,
           uint64_t            skip,
           uint64_t            len,
           struct iovec       *out,
           int                 max)
{
  int n = 0;

  for (int i = 0; i < iovcnt && len > 0 && n < max; i++)
    {
      uint64_t l = iov[i].iov_len;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      out[n].iov_base = (char *) iov[i].iov_base + skip;
      out[n].iov_len = (size_t) MIN (l - skip, len);
      len -= out[n].iov_len;
      skip = 0;
      n++;
    }
  return n;
}

#define SLICE_MAX 64

static bool
file_iov_io (bool                 write,
             int                  fd,
             const struct iovec  *iov,
             int                  iovcnt,
             uint64_t             skip,
             uint64_t             len,
             uint64_t             offset,
             GError             **error)
{
  while (len > 0)
    {
      struct iovec part[SLICE_MAX];
      int n = vr_disk_iov_slice (iov, iovcnt, skip, len, part, SLICE_MAX);
      ssize_t r;

      g_assert (n > 0);
      r = write ? pwritev (fd, part, n, (off_t) offset) : preadv (fd, part, n, (off_t) offset);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          set_errno_error (error, errno, "disk image", write ? "write failed" : "read failed");
          return false;
        }
      if (r == 0)
        {
          if (write)
            {
              set_errno_error (error, ENOSPC, "disk image", "write failed");
              return false;
            }
          vr_disk_iov_memset (iov, iovcnt, skip, 0, len);  /* past the end of the file */
          return true;
        }
      skip += (uint64_t) r;
      offset += (uint64_t) r;
      len -= (uint64_t) r;
    }
  return true;
}

bool
vr_disk_file_preadv (int                  fd,
                     const struct iovec  *iov,
                     int                  iovcnt,
                     uint64_t             skip,
                     uint64_t             len,
                     uint64_t             offset,
                     GError             **error)
{
  return file_iov_io (false, fd, iov, iovcnt, skip, len, offset, error);
}

bool
vr_disk_file_pwritev (int                  fd,
                      const struct iovec  *iov,
                      int                  iovcnt,
                      uint64_t             skip,
                      uint64_t             len,
                      uint64_t             offset,
                      GError             **error)
{
  return file_iov_io (true, fd, iov, iovcnt, skip, len, offset, error);
}

void
vr_disk_iov_memset (const struct iovec *iov,
                    int                 iovcnt,
                    uint64_t            skip,
                    int                 c,
                    uint64_t            len)
{
  for (int i = 0; i < iovcnt && len > 0; i++)
    {
      uint64_t l = iov[i].iov_len, n;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      n = MIN (l - skip, len);
      memset ((char *) iov[i].iov_base + skip, c, (size_t) n);
      len -= n;
      skip = 0;
    }
}

void
vr_disk_iov_from_buf (const struct iovec *iov,
                      int                 iovcnt,
                      uint64_t            skip,
                      const void         *buf,
                      uint64_t            len)
{
  const char *p = buf;

  for (int i = 0; i < iovcnt && len > 0; i++)
    {
      uint64_t l = iov[i].iov_len, n;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      n = MIN (l - skip, len);
      memcpy ((char *) iov[i].iov_base + skip, p, (size_t) n);
      p += n;
      len -= n;
      skip = 0;
    }
}

void
vr_disk_iov_to_buf (const struct iovec *iov,
                    int                 iovcnt,
                    uint64_t            skip,
                    void               *buf,
                    uint64_t            len)
{
  char *p = buf;

  for (int i = 0; i < iovcnt && len > 0; i++)
    {
      uint64_t l = iov[i].iov_len, n;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      n = MIN (l - skip, len);
      memcpy (p, (const char *) iov[i].iov_base + skip, (size_t) n);
      p += n;
      len -= n;
      skip = 0;
    }
}

bool
vr_disk_fdatasync (VrDisk  *disk,
                   int      fd,
                   GError **error)
{
  while (fdatasync (fd) < 0)
    {
      if (errno == EINTR)
        continue;
      set_errno_error (error, errno, disk->filename, "fdatasync failed");
      return false;
    }
  return true;
}

void *
vr_disk_alloc_aligned (size_t size)
{
  void *p = NULL;

  if (posix_memalign (&p, 4096, MAX (size, 512)) != 0)
    g_error ("out of memory allocating %zu bytes", size);
  return p;
}

char *
vr_disk_resolve_relative (const char *image_path,
                          const char *name)
{
  g_autofree char *dir = NULL;

  if (g_path_is_absolute (name))
    return g_strdup (name);
  dir = g_path_get_dirname (image_path);
  return g_build_filename (dir, name, NULL);
}

/* Raw images */

static bool
raw_preadv (VrDisk              *disk,
            const struct iovec  *iov,
            int                  iovcnt,
            uint64_t             offset,
            uint64_t             len,
            GError             **error)
{
  return vr_disk_file_preadv (disk->fd, iov, iovcnt, 0, len, offset, error);
}

static bool
raw_pwritev (VrDisk              *disk,
             const struct iovec  *iov,
             int                  iovcnt,
             uint64_t             offset,
             uint64_t             len,
             GError             **error)
{
  return vr_disk_file_pwritev (disk->fd, iov, iovcnt, 0, len, offset, error);
}

static bool
raw_flush (VrDisk  *disk,
           GError **error)
{
  return vr_disk_fdatasync (disk, disk->fd, error);
}

static bool
raw_discard (VrDisk    *disk,
             uint64_t   offset,
             uint64_t   len,
             GError   **error)
{
  /* Advisory: a file system without hole punching simply keeps the data. */
  if (fallocate (disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset,
                 (off_t) len) < 0 && errno != EOPNOTSUPP && errno != ENOSYS)
    {
      set_errno_error (error, errno, disk->filename, "discard failed");
      return false;
    }
  return true;
}

static bool
write_zero_buffer (VrDisk    *disk,
                   uint64_t   offset,
                   uint64_t   len,
                   GError   **error)
{
  size_t chunk = (size_t) MIN (len, 1u << 20);
  g_autofree char *zeros = g_malloc0 (MAX (chunk, 1));

  while (len > 0)
    {
      size_t n = (size_t) MIN (len, chunk);

      if (!vr_disk_full_pwrite (disk->fd, zeros, n, offset, error))
        return false;
      offset += n;
      len -= n;
    }
  return true;
}

static bool
raw_write_zeroes (VrDisk    *disk,
                  uint64_t   offset,
                  uint64_t   len,
                  bool       may_unmap,
                  GError   **error)
{
  if (may_unmap && fallocate (disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              (off_t) offset, (off_t) len) == 0)
    return true;
  if (fallocate (disk->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t) offset,
                 (off_t) len) == 0)
    return true;
  return write_zero_buffer (disk, offset, len, error);
}

static bool
raw_block_status (VrDisk    *disk,
                  uint64_t   offset,
                  uint64_t   len,
                  bool      *is_zero,
                  uint64_t  *pnum,
                  GError   **error)
{
  off_t data = lseek (disk->fd, (off_t) offset, SEEK_DATA);

  if (data < 0)
    {
      /* ENXIO: a hole up to the end of the file. Anything else: treat as data. */
      *is_zero = errno == ENXIO;
      *pnum = len;
      return true;
    }
  if ((uint64_t) data > offset)
    {
      *is_zero = true;
      *pnum = MIN (len, (uint64_t) data - offset);
      return true;
    }
  {
    off_t hole = lseek (disk->fd, (off_t) offset, SEEK_HOLE);

    *is_zero = false;
    *pnum = hole > (off_t) offset ? MIN (len, (uint64_t) hole - offset) : len;
  }
  return true;
}

static void
raw_info (VrDisk     *disk,
          VrDiskInfo *info)
{
}

static bool
raw_resize (VrDisk    *disk,
            uint64_t   new_size,
            bool       allow_shrink,
            GError   **error)
{
  struct stat st;

  if (new_size < disk->size && !allow_shrink)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: shrinking from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT " bytes "
                   "would drop the data past the new end; allow shrinking explicitly "
                   "(vireo-img resize --shrink)", disk->filename, disk->size, new_size);
      return false;
    }
  if (fstat (disk->fd, &st) < 0)
    {
      set_errno_error (error, errno, disk->filename, "cannot stat");
      return false;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: only raw images in regular files can be resized", disk->filename);
      return false;
    }
  if (ftruncate (disk->fd, (off_t) new_size) < 0)
    {
      set_errno_error (error, errno, disk->filename, "cannot resize");
      return false;
    }
  disk->size = new_size;
  return vr_disk_fdatasync (disk, disk->fd, error);
}

static void
raw_close (VrDisk *disk)
{
}

static const VrDiskOps raw_ops = {
  .preadv = raw_preadv,
  .pwritev = raw_pwritev,
  .flush = raw_flush,
  .discard = raw_discard,
  .write_zeroes = raw_write_zeroes,
  .block_status = raw_block_status,
  .info = raw_info,
  .close = raw_close,
  .resize = raw_resize,
};

/* Common layer */

/* The gate: requests pass shared, snapshot operations and resize exclusively; a waiting
 * exclusive user keeps new requests out so that busy I/O threads cannot starve it. */
static void
gate_enter (VrDisk *disk,
            bool    exclusive)
{
  VrDiskGate *g = &disk->gate;

  g_mutex_lock (&g->lock);
  if (exclusive)
    {
      g->exclusive_waiting++;
      while (g->exclusive || g->shared > 0)
        g_cond_wait (&g->cond, &g->lock);
      g->exclusive_waiting--;
      g->exclusive = true;
    }
  else
    {
      while (g->exclusive || g->exclusive_waiting > 0)
        g_cond_wait (&g->cond, &g->lock);
      g->shared++;
    }
  g_mutex_unlock (&g->lock);
}

static void
gate_leave (VrDisk *disk,
            bool    exclusive)
{
  VrDiskGate *g = &disk->gate;

  g_mutex_lock (&g->lock);
  if (exclusive)
    g->exclusive = false;
  else
    g->shared--;
  if (exclusive || g->shared == 0)
    g_cond_broadcast (&g->cond);
  g_mutex_unlock (&g->lock);
}

VrDisk *
vr_disk_open_internal (const char         *path,
                       VrDiskFormat        fmt,
                       VrDiskOpenFlags     flags,
                       bool                repair_mode,
                       const VrDiskChain  *chain,
                       int                 depth,
                       GError            **error)
{
  g_autoptr (VrDisk) disk = NULL;
  VrDiskChain link;
  struct stat st;
  bool readonly = (flags & VR_DISK_OPEN_READONLY) != 0;

  if (depth > VR_DISK_MAX_BACKING_DEPTH)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT,
                   "%s: backing file chain deeper than %d (loop?)", chain ? chain->path : path,
                   VR_DISK_MAX_BACKING_DEPTH);
      return NULL;
    }
  if (fmt == VR_DISK_FORMAT_VMDK && !readonly)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY,
                   "%s: VMDK images can only be opened read-only (set the disk read-only, or "
                   "convert it with “vireo-img convert -O qcow2”)", path);
      return NULL;
    }

  disk = g_new0 (VrDisk, 1);
  g_mutex_init (&disk->gate.lock);
  g_cond_init (&disk->gate.cond);
  disk->fd = -1;
  disk->format = fmt;
  disk->filename = g_strdup (path);
  disk->readonly = readonly;
  disk->metadata_only = (flags & VR_DISK_OPEN_METADATA_ONLY) != 0;
  disk->repair_mode = repair_mode;

  /* O_NONBLOCK: a FIFO named as an image (or backing file) must not hang the open. */
  disk->fd = open (path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
  if (disk->fd < 0)
    {
      set_errno_error (error, errno, path, "cannot open disk image");
      return NULL;
    }
  if (fstat (disk->fd, &st) < 0)
    {
      set_errno_error (error, errno, path, "cannot stat disk image");
      return NULL;
    }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode))
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: not a regular file or block device", path);
      return NULL;
    }
  fcntl (disk->fd, F_SETFL, fcntl (disk->fd, F_GETFL) & ~O_NONBLOCK);
  for (const VrDiskChain *c = chain; c != NULL; c = c->parent)
    if (c->dev == st.st_dev && c->ino == st.st_ino)
      {
        g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_CORRUPT,
                     "%s: backing file loop: “%s” is already in the chain", c->path, path);
        return NULL;
      }
  link.parent = chain;
  link.dev = st.st_dev;
  link.ino = st.st_ino;
  link.path = path;

  switch (fmt)
    {
    case VR_DISK_FORMAT_RAW:
      {
        off_t end = lseek (disk->fd, 0, SEEK_END);

        if (end < 0)
          {
            set_errno_error (error, errno, path, "cannot find the size");
            return NULL;
          }
        disk->size = (uint64_t) end;
        disk->ops = &raw_ops;
      }
      break;
    case VR_DISK_FORMAT_QCOW2:
      if (!vr_qcow2_open (disk, &link, depth, error))
        return NULL;
      break;
    case VR_DISK_FORMAT_VMDK:
      if (!vr_vmdk_open (disk, error))
        return NULL;
      break;
    default:
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID, "%s: bad format %d", path, fmt);
      return NULL;
    }
  return g_steal_pointer (&disk);
}

VrDisk *
vr_disk_open (const char       *path,
              VrDiskFormat      fmt,
              VrDiskOpenFlags   flags,
              GError          **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  return vr_disk_open_internal (path, fmt, flags, false, NULL, 0, error);
}

void
vr_disk_close (VrDisk *disk)
{
  if (disk == NULL)
    return;
  if (disk->ops != NULL)
    {
      g_autoptr (GError) error = NULL;

      if (!disk->readonly && !disk->metadata_only && !disk->ops->flush (disk, &error))
        g_warning ("%s", error->message);
      disk->ops->close (disk);
    }
  if (disk->fd >= 0)
    close (disk->fd);
  g_mutex_clear (&disk->gate.lock);
  g_cond_clear (&disk->gate.cond);
  g_free (disk->filename);
  g_free (disk);
}

uint64_t
vr_disk_get_size (VrDisk *disk)
{
  uint64_t size;

  g_return_val_if_fail (disk != NULL, 0);
  gate_enter (disk, false);
  size = disk->size;
  gate_leave (disk, false);
  return size;
}

bool
vr_disk_is_readonly (VrDisk *disk)
{
  g_return_val_if_fail (disk != NULL, true);
  return disk->readonly;
}

VrDiskFormat
vr_disk_get_format (VrDisk *disk)
{
  g_return_val_if_fail (disk != NULL, VR_DISK_FORMAT_RAW);
  return disk->format;
}

const char *
vr_disk_get_filename (VrDisk *disk)
{
  g_return_val_if_fail (disk != NULL, NULL);
  return disk->filename;
}

static bool
check_request (VrDisk    *disk,
               uint64_t   offset,
               uint64_t   len,
               bool       write,
               GError   **error)
{
  if (disk->metadata_only)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: opened for metadata only", disk->filename);
      return false;
    }
  if (write && disk->readonly)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY, "%s: the disk is read-only",
                   disk->filename);
      return false;
    }
  if (offset > disk->size || len > disk->size - offset)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_OUT_OF_RANGE,
                   "%s: request at %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                   " bytes lies beyond the disk's end (%" G_GUINT64_FORMAT " bytes)",
                   disk->filename, offset, len, disk->size);
      return false;
    }
  return true;
}

static bool
iov_length (const struct iovec  *iov,
            int                  iovcnt,
            uint64_t            *len,
            GError             **error)
{
  uint64_t total = 0;

  if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID, "bad I/O vector");
      return false;
    }
  for (int i = 0; i < iovcnt; i++)
    {
      if (iov[i].iov_len > UINT64_MAX - total)
        {
          g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID, "I/O vector too long");
          return false;
        }
      total += iov[i].iov_len;
    }
  *len = total;
  return true;
}

bool
vr_disk_preadv (VrDisk              *disk,
                const struct iovec  *iov,
                int                  iovcnt,
                uint64_t             offset,
                GError             **error)
{
  uint64_t len;

  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  if (!iov_length (iov, iovcnt, &len, error))
    return false;
  gate_enter (disk, false);
  ok = check_request (disk, offset, len, false, error)
       && (len == 0 || disk->ops->preadv (disk, iov, iovcnt, offset, len, error));
  gate_leave (disk, false);
  return ok;
}

bool
vr_disk_pwritev (VrDisk              *disk,
                 const struct iovec  *iov,
                 int                  iovcnt,
                 uint64_t             offset,
                 GError             **error)
{
  uint64_t len;

  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  if (!iov_length (iov, iovcnt, &len, error))
    return false;
  gate_enter (disk, false);
  ok = check_request (disk, offset, len, true, error)
       && (len == 0 || disk->ops->pwritev (disk, iov, iovcnt, offset, len, error));
  gate_leave (disk, false);
  return ok;
}

bool
vr_disk_pread (VrDisk    *disk,
               void      *buf,
               size_t     len,
               uint64_t   offset,
               GError   **error)
{
  struct iovec iov = { buf, len };

  return vr_disk_preadv (disk, &iov, 1, offset, error);
}

bool
vr_disk_pwrite (VrDisk      *disk,
                const void  *buf,
                size_t       len,
                uint64_t     offset,
                GError     **error)
{
  struct iovec iov = { (void *) buf, len };

  return vr_disk_pwritev (disk, &iov, 1, offset, error);
}

bool
vr_disk_flush (VrDisk  *disk,
               GError **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  if (disk->readonly || disk->metadata_only)
    return true;
  gate_enter (disk, false);
  ok = disk->ops->flush (disk, error);
  gate_leave (disk, false);
  return ok;
}

bool
vr_disk_discard (VrDisk    *disk,
                 uint64_t   offset,
                 uint64_t   len,
                 GError   **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  gate_enter (disk, false);
  ok = check_request (disk, offset, len, true, error)
       && (len == 0 || disk->ops->discard (disk, offset, len, error));
  gate_leave (disk, false);
  return ok;
}

bool
vr_disk_write_zeroes (VrDisk    *disk,
                      uint64_t   offset,
                      uint64_t   len,
                      bool       may_unmap,
                      GError   **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  gate_enter (disk, false);
  ok = check_request (disk, offset, len, true, error)
       && (len == 0 || disk->ops->write_zeroes (disk, offset, len, may_unmap, error));
  gate_leave (disk, false);
  return ok;
}

bool
vr_disk_block_status (VrDisk    *disk,
                      uint64_t   offset,
                      uint64_t   len,
                      bool      *is_zero,
                      uint64_t  *pnum,
                      GError   **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL && is_zero != NULL && pnum != NULL, false);
  gate_enter (disk, false);
  ok = check_request (disk, offset, len, false, error);
  if (ok && len == 0)
    {
      *is_zero = true;
      *pnum = 0;
    }
  else if (ok)
    ok = disk->ops->block_status (disk, offset, len, is_zero, pnum, error);
  gate_leave (disk, false);
  if (ok && (*pnum == 0 || *pnum > len))
    *pnum = len;
  return ok;
}

/* Creation */

bool
vr_disk_create (const char    *path,
                VrDiskFormat   fmt,
                uint64_t       size,
                const char    *backing,
                VrDiskFormat   backing_fmt,
                GError       **error)
{
  g_autofree char *tmp = NULL;
  g_autofree char *backing_path = NULL;
  int fd;
  bool ok;

  g_return_val_if_fail (path != NULL, false);

  if (fmt != VR_DISK_FORMAT_RAW && fmt != VR_DISK_FORMAT_QCOW2)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: cannot create %s images (only raw and qcow2)", path,
                   vr_disk_format_to_string (fmt));
      return false;
    }
  if (backing != NULL && fmt != VR_DISK_FORMAT_QCOW2)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: only qcow2 images can have a backing file", path);
      return false;
    }
  if (backing != NULL)
    {
      g_autoptr (VrDisk) base = NULL;
      g_autoptr (GError) local_error = NULL;

      if (*backing == '\0' || strlen (backing) > 1023)
        {
          g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                       "%s: bad backing file name", path);
          return false;
        }
      backing_path = vr_disk_resolve_relative (path, backing);
      /* Depth 1: the new image counts as the top of the chain. */
      base = vr_disk_open_internal (backing_path, backing_fmt, VR_DISK_OPEN_READONLY, false,
                                    NULL, 1, &local_error);
      if (base == NULL)
        {
          g_set_error (error, VR_DISK_ERROR, local_error->code,
                       "%s: cannot open the backing file: %s", path, local_error->message);
          return false;
        }
      if (size == 0)
        size = vr_disk_get_size (base);
    }
  if (size > VR_DISK_MAX_SIZE)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: size %" G_GUINT64_FORMAT " is too large (the limit is 2^62 bytes)",
                   path, size);
      return false;
    }
  size = (size + 511) & ~UINT64_C (511);

  tmp = g_strdup_printf ("%s.XXXXXX", path);
  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      set_errno_error (error, errno, path, "cannot create a temporary file next to it");
      return false;
    }

  if (fmt == VR_DISK_FORMAT_RAW)
    {
      ok = ftruncate (fd, (off_t) size) == 0;
      if (!ok)
        set_errno_error (error, errno, path, "cannot set the size");
    }
  else
    ok = vr_qcow2_create (fd, path, size, backing,
                          backing ? vr_disk_format_to_string (backing_fmt) : NULL, error);
  if (ok && fsync (fd) < 0)
    {
      set_errno_error (error, errno, path, "fsync failed");
      ok = false;
    }
  close (fd);
  if (ok && rename (tmp, path) < 0)
    {
      set_errno_error (error, errno, path, "cannot rename the new image into place");
      ok = false;
    }
  if (!ok)
    {
      unlink (tmp);
      return false;
    }
  /* Make the rename durable. */
  {
    g_autofree char *dir = g_path_get_dirname (path);
    int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd >= 0)
      {
        fsync (dfd);
        close (dfd);
      }
  }
  return true;
}

/* Info and check */

VrDiskInfo *
vr_disk_get_info (VrDisk  *disk,
                  GError **error)
{
  VrDiskInfo *info;
  struct stat st;

  g_return_val_if_fail (disk != NULL, NULL);

  info = g_new0 (VrDiskInfo, 1);
  info->format = disk->format;
  info->filename = g_strdup (disk->filename);
  gate_enter (disk, false);
  info->virtual_size = disk->size;
  if (fstat (disk->fd, &st) == 0)
    info->actual_size = (uint64_t) st.st_blocks * 512;
  disk->ops->info (disk, info);
  gate_leave (disk, false);
  return info;
}

void
vr_disk_info_free (VrDiskInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->filename);
  g_free (info->backing_file);
  g_free (info->backing_file_full);
  g_free (info->vmdk_create_type);
  g_free (info);
}

bool
vr_disk_check (const char         *path,
               VrDiskFormat        fmt,
               VrDiskRepairMode    repair,
               VrDiskCheckResult  *result,
               GError            **error)
{
  g_autoptr (VrDisk) disk = NULL;

  g_return_val_if_fail (path != NULL && result != NULL, false);

  memset (result, 0, sizeof *result);
  result->messages = g_ptr_array_new_with_free_func (g_free);
  if (fmt != VR_DISK_FORMAT_QCOW2)
    {
      disk = vr_disk_open (path, fmt, VR_DISK_OPEN_READONLY, error);
      return disk != NULL;
    }
  disk = vr_disk_open_internal (path, fmt,
                                (repair == VR_DISK_REPAIR_NONE ? VR_DISK_OPEN_READONLY : 0)
                                | VR_DISK_OPEN_METADATA_ONLY,
                                repair != VR_DISK_REPAIR_NONE, NULL, 0, error);
  if (disk == NULL)
    return false;
  return vr_qcow2_check (disk, repair, result, error);
}

void
vr_disk_check_result_clear (VrDiskCheckResult *result)
{
  if (result == NULL)
    return;
  g_clear_pointer (&result->messages, g_ptr_array_unref);
}

/* Internal snapshots and resize */

void
vr_disk_snapshot_free (VrDiskSnapshot *snapshot)
{
  if (snapshot == NULL)
    return;
  g_free (snapshot->id);
  g_free (snapshot->name);
  g_free (snapshot);
}

/* Whether the disk can change: the format, then read-only and metadata-only opens. */
static bool
check_snapshot_capable (VrDisk      *disk,
                        bool         snapshots,
                        GError     **error)
{
  if (disk->format == VR_DISK_FORMAT_RAW && snapshots)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: raw images have no internal snapshots; convert the image to qcow2 "
                   "(“vireo-img convert -O qcow2”) to take snapshots", disk->filename);
      return false;
    }
  if (disk->format == VR_DISK_FORMAT_VMDK)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: VMDK images are read-only in Vireo and have no internal snapshots or "
                   "resize; convert the image to qcow2 (“vireo-img convert -O qcow2”) first",
                   disk->filename);
      return false;
    }
  if (disk->readonly)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_READ_ONLY, "%s: the disk is read-only",
                   disk->filename);
      return false;
    }
  if (disk->metadata_only)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: opened for metadata only", disk->filename);
      return false;
    }
  if ((snapshots && disk->ops->snapshot_create == NULL) || (!snapshots && !disk->ops->resize))
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_UNSUPPORTED,
                   "%s: %s images do not support this", disk->filename,
                   vr_disk_format_to_string (disk->format));
      return false;
    }
  return true;
}

GPtrArray *
vr_disk_snapshot_list (VrDisk  *disk,
                       GError **error)
{
  GPtrArray *list;

  g_return_val_if_fail (disk != NULL, NULL);
  if (disk->ops->snapshot_list == NULL)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) vr_disk_snapshot_free);
  gate_enter (disk, false);
  list = disk->ops->snapshot_list (disk, error);
  gate_leave (disk, false);
  return list;
}

bool
vr_disk_snapshot_create (VrDisk      *disk,
                         const char  *id,
                         const char  *name,
                         uint64_t     vm_clock_nsec,
                         GError     **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL && name != NULL, false);
  if (!check_snapshot_capable (disk, true, error))
    return false;
  gate_enter (disk, true);
  ok = disk->ops->snapshot_create (disk, id, name, vm_clock_nsec, error);
  gate_leave (disk, true);
  return ok;
}

bool
vr_disk_snapshot_apply (VrDisk      *disk,
                        const char  *id_or_name,
                        GError     **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL && id_or_name != NULL, false);
  if (!check_snapshot_capable (disk, true, error))
    return false;
  gate_enter (disk, true);
  ok = disk->ops->snapshot_apply (disk, id_or_name, error);
  gate_leave (disk, true);
  return ok;
}

bool
vr_disk_snapshot_delete (VrDisk      *disk,
                         const char  *id_or_name,
                         GError     **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL && id_or_name != NULL, false);
  if (!check_snapshot_capable (disk, true, error))
    return false;
  gate_enter (disk, true);
  ok = disk->ops->snapshot_delete (disk, id_or_name, error);
  gate_leave (disk, true);
  return ok;
}

bool
vr_disk_resize (VrDisk    *disk,
                uint64_t   new_size,
                bool       allow_shrink,
                GError   **error)
{
  bool ok;

  g_return_val_if_fail (disk != NULL, false);
  if (!check_snapshot_capable (disk, false, error))
    return false;
  if (new_size > VR_DISK_MAX_SIZE)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: size %" G_GUINT64_FORMAT " is too large (the limit is 2^62 bytes)",
                   disk->filename, new_size);
      return false;
    }
  gate_enter (disk, true);
  ok = disk->ops->resize (disk, new_size, allow_shrink, error);
  gate_leave (disk, true);
  return ok;
}
