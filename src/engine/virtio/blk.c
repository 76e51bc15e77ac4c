/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-blk (virtio spec 5.2) on a VrDisk (raw, qcow2, VMDK).
 *
 * The I/O thread pops requests and hands each to a small thread pool, so several requests
 * are in flight at once and the I/O thread never waits for the disk; a worker does the I/O
 * through the disk layer (thread-safe), writes the status byte and completes the request
 * itself. A device reset waits for every request in flight before the queues go away.
 *
 * Every request is checked: a header of 16 readable bytes, a writable status byte at the end,
 * data lengths in whole sectors, sector ranges inside the disk, discard/write-zeroes
 * segments within the limits we advertise. A bad request gets VIRTIO_BLK_S_IOERR (or UNSUPP):
 * it is the guest's own I/O that fails, not the device. Only a malformed chain (no room for
 * the status) breaks the device, since there is nowhere to report the error.
 */

#include "virtio.h"

#include <linux/virtio_blk.h>
#include <stddef.h>
#include <string.h>

#include "../disk/vr-disk.h"

#define QUEUE_SIZE        256
#define SECTOR            512u
#define SEG_MAX           (QUEUE_SIZE - 2)
#define MAX_DISCARD_SECT  (1u << 22)     /* 2 GiB per segment */
#define MAX_DISCARD_SEG   32
#define WORKERS           4

typedef struct
{
  VrVirtio   vio;
  VrDisk    *disk;
  char      *serial;
  uint64_t   sectors;
  bool       readonly;
  GThreadPool *pool;
  GMutex     inflight_lock;
  GCond      inflight_cond;
  unsigned   inflight;
  guint64    read_bytes;    /* atomic counters of completed requests (performance page) */
  guint64    write_bytes;
  guint64    reads;
  guint64    writes;
} VrVirtioBlk;

typedef struct
{
  VrVirtioBlk *blk;
  VrVirtqueue *vq;
  VrVirtqElem *elem;
} Request;

/* The data part of a request: the readable part after the header, or the writable part
 * before the status byte. */
static struct iovec *
data_iov (VrVirtqElem *elem,
          bool         device_writes,
          unsigned    *n,
          uint64_t    *len)
{
  struct iovec *iov;
  size_t skip, total;
  unsigned src_n, out = 0;
  const struct iovec *src;

  if (device_writes)
    {
      src = elem->in;
      src_n = elem->n_in;
      skip = 0;
      total = elem->in_len - 1;
    }
  else
    {
      src = elem->out;
      src_n = elem->n_out;
      skip = sizeof (struct virtio_blk_outhdr);
      total = elem->out_len - skip;
    }
  iov = g_new (struct iovec, MAX (src_n, 1));
  *len = total;
  for (unsigned i = 0; i < src_n && total > 0; i++)
    {
      size_t l = src[i].iov_len;
      uint8_t *base = src[i].iov_base;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      base += skip;
      l -= skip;
      skip = 0;
      l = MIN (l, total);
      iov[out++] = (struct iovec) { .iov_base = base, .iov_len = l };
      total -= l;
    }
  *n = out;
  return iov;
}

static bool
range_ok (VrVirtioBlk *self,
          uint64_t     sector,
          uint64_t     bytes)
{
  return bytes % SECTOR == 0 && sector <= self->sectors
         && bytes / SECTOR <= self->sectors - sector;
}

static uint8_t
do_discard (VrVirtioBlk *self,
            VrVirtqElem *elem,
            bool         zeroes)
{
  struct virtio_blk_discard_write_zeroes seg;
  uint64_t len = elem->out_len - sizeof (struct virtio_blk_outhdr);
  unsigned nseg;

  if (len == 0 || len % sizeof seg != 0)
    return VIRTIO_BLK_S_IOERR;
  nseg = (unsigned) (len / sizeof seg);
  if (nseg > MAX_DISCARD_SEG)
    return VIRTIO_BLK_S_IOERR;
  for (unsigned i = 0; i < nseg; i++)
    {
      g_autoptr (GError) error = NULL;
      uint64_t sector, bytes;
      uint32_t nsect, flags;

      vr_iov_to_buf (elem->out, elem->n_out, sizeof (struct virtio_blk_outhdr) + i * sizeof seg,
                     &seg, sizeof seg);
      sector = GUINT64_FROM_LE (seg.sector);
      nsect = GUINT32_FROM_LE (seg.num_sectors);
      flags = GUINT32_FROM_LE (seg.flags);
      bytes = (uint64_t) nsect * SECTOR;
      if (nsect > MAX_DISCARD_SECT || !range_ok (self, sector, bytes)
          || (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
          || (!zeroes && flags != 0))
        return VIRTIO_BLK_S_UNSUPP;
      if (zeroes ? !vr_disk_write_zeroes (self->disk, sector * SECTOR, bytes,
                                          flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &error)
                 : !vr_disk_discard (self->disk, sector * SECTOR, bytes, &error))
        {
          g_debug ("virtio-blk: %s", error->message);
          return VIRTIO_BLK_S_IOERR;
        }
    }
  return VIRTIO_BLK_S_OK;
}

/* A worker thread: performs one request and completes it. */
static void
run_request (gpointer data,
             gpointer user_data)
{
  g_autofree Request *req = data;
  VrVirtioBlk *self = req->blk;
  VrVirtqElem *elem = req->elem;
  struct virtio_blk_outhdr hdr;
  uint8_t status = VIRTIO_BLK_S_OK;
  uint32_t written = 0;
  uint64_t sector;
  uint32_t type;

  vr_iov_to_buf (elem->out, elem->n_out, 0, &hdr, sizeof hdr);
  type = GUINT32_FROM_LE (hdr.type);
  sector = GUINT64_FROM_LE (hdr.sector);

  switch (type)
    {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
      {
        g_autoptr (GError) error = NULL;
        g_autofree struct iovec *iov = NULL;
        bool in = type == VIRTIO_BLK_T_IN;
        uint64_t len;
        unsigned n;
        bool ok;

        if (!in && self->readonly)
          {
            status = VIRTIO_BLK_S_IOERR;
            break;
          }
        iov = data_iov (elem, in, &n, &len);
        if (!range_ok (self, sector, len))
          {
            status = VIRTIO_BLK_S_IOERR;
            break;
          }
        if (len == 0)
          break;
        ok = in ? vr_disk_preadv (self->disk, iov, (int) n, sector * SECTOR, &error)
                : vr_disk_pwritev (self->disk, iov, (int) n, sector * SECTOR, &error);
        if (!ok)
          {
            g_debug ("virtio-blk: %s", error->message);
            status = VIRTIO_BLK_S_IOERR;
          }
        else
          {
            if (in)
              written = (uint32_t) len;
            __atomic_add_fetch (in ? &self->read_bytes : &self->write_bytes, len,
                                __ATOMIC_RELAXED);
            __atomic_add_fetch (in ? &self->reads : &self->writes, 1, __ATOMIC_RELAXED);
          }
      }
      break;

    case VIRTIO_BLK_T_FLUSH:
      {
        g_autoptr (GError) error = NULL;

        if (!self->readonly && !vr_disk_flush (self->disk, &error))
          {
            g_warning ("virtio-blk: %s", error->message);
            status = VIRTIO_BLK_S_IOERR;
          }
      }
      break;

    case VIRTIO_BLK_T_GET_ID:
      {
        char id[VIRTIO_BLK_ID_BYTES] = { 0 };

        /* Not NUL-terminated when it fills the 20 bytes, as the spec says. */
        strncpy (id, self->serial ? self->serial : "", sizeof id);
        written = (uint32_t) vr_iov_from_buf (elem->in, elem->n_in, 0, id,
                                              MIN (sizeof id, elem->in_len - 1));
      }
      break;

    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
      status = self->readonly ? VIRTIO_BLK_S_IOERR
                              : do_discard (self, elem, type == VIRTIO_BLK_T_WRITE_ZEROES);
      break;

    default:
      status = VIRTIO_BLK_S_UNSUPP;
      break;
    }

  vr_iov_from_buf (elem->in, elem->n_in, elem->in_len - 1, &status, 1);
  vr_virtq_complete (req->vq, elem, written + 1);
  g_free (elem);

  g_mutex_lock (&self->inflight_lock);
  if (--self->inflight == 0)
    g_cond_broadcast (&self->inflight_cond);
  g_mutex_unlock (&self->inflight_lock);
}

static void
blk_queue_notify (VrVirtio *vio,
                  unsigned  queue)
{
  VrVirtioBlk *self = (VrVirtioBlk *) vio;
  VrVirtqueue *vq = vr_virtio_get_queue (vio, queue);

  do
    {
      VrVirtqElem *elem;

      vr_virtq_set_notification (vq, false);
      while ((elem = vr_virtq_pop (vq)) != NULL)
        {
          Request *req;

          if (elem->out_len < sizeof (struct virtio_blk_outhdr) || elem->in_len < 1)
            {
              g_free (elem);
              vr_virtio_set_broken (vio, "a request without a header or a status byte");
              return;
            }
          req = g_new (Request, 1);
          req->blk = self;
          req->vq = vq;
          req->elem = elem;
          g_mutex_lock (&self->inflight_lock);
          self->inflight++;
          g_mutex_unlock (&self->inflight_lock);
          g_thread_pool_push (self->pool, req, NULL);
        }
      vr_virtq_set_notification (vq, true);
    }
  while (vr_virtq_has_buffers (vq));
}

/* Waits for every request handed to the workers: they complete it themselves (status byte,
 * used entry, interrupt) without the I/O thread, so this may run there. */
static void
blk_drain (VrVirtio *vio)
{
  VrVirtioBlk *self = (VrVirtioBlk *) vio;

  g_mutex_lock (&self->inflight_lock);
  while (self->inflight > 0)
    g_cond_wait (&self->inflight_cond, &self->inflight_lock);
  g_mutex_unlock (&self->inflight_lock);
}

static void
blk_destroy (VrVirtio *vio)
{
  VrVirtioBlk *self = (VrVirtioBlk *) vio;

  if (self->pool)
    g_thread_pool_free (self->pool, FALSE, TRUE);
  vr_disk_close (self->disk);
  g_free (self->serial);
  g_mutex_clear (&self->inflight_lock);
  g_cond_clear (&self->inflight_cond);
  g_free (self);
}

static const VrVirtioOps blk_ops = {
  .name = "virtio-blk",
  .device_id = VIRTIO_ID_BLOCK,
  .pci_class = 0x010000,   /* SCSI storage controller, as QEMU and real virtio cards say */
  .queue_notify = blk_queue_notify,
  .reset = blk_drain,
  /* Snapshots: nothing in flight, nothing of our own (the disk's contents are the disk
   * layer's business; its size and read-only flag show in the features and configuration,
   * which the transport compares). */
  .quiesce = blk_drain,
  .destroy = blk_destroy,
};

VrDevice *
vr_virtio_blk_new (const VrVirtioHost *host,
                   VrDisk             *disk,
                   const char         *serial,
                   GError            **error)
{
  VrVirtioBlk *self = g_new0 (VrVirtioBlk, 1);
  VrVirtio *vio = &self->vio;
  uint64_t features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE)
                      | (1ull << VIRTIO_BLK_F_FLUSH);

  self->disk = disk;
  self->serial = g_strdup (serial);
  self->sectors = vr_disk_get_size (disk) / SECTOR;
  self->readonly = vr_disk_is_readonly (disk);
  g_mutex_init (&self->inflight_lock);
  g_cond_init (&self->inflight_cond);
  if (self->readonly)
    features |= 1ull << VIRTIO_BLK_F_RO;
  else
    features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

  self->pool = g_thread_pool_new (run_request, self, WORKERS, FALSE, error);
  if (self->pool == NULL
      || !vr_virtio_init (vio, &blk_ops, host, features, 1, QUEUE_SIZE,
                          sizeof (struct virtio_blk_config), error))
    goto fail;

  vr_virtio_config_put64 (vio, offsetof (struct virtio_blk_config, capacity), self->sectors);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, seg_max), SEG_MAX);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, blk_size), SECTOR);
  vr_virtio_config_put16 (vio, offsetof (struct virtio_blk_config, num_queues), 1);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, max_discard_sectors),
                          MAX_DISCARD_SECT);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, max_discard_seg),
                          MAX_DISCARD_SEG);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, discard_sector_alignment), 1);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, max_write_zeroes_sectors),
                          MAX_DISCARD_SECT);
  vr_virtio_config_put32 (vio, offsetof (struct virtio_blk_config, max_write_zeroes_seg),
                          MAX_DISCARD_SEG);
  vio->config[offsetof (struct virtio_blk_config, write_zeroes_may_unmap)] = 1;

  if (!vr_virtio_plug (vio, error))
    goto fail;
  return &vio->parent;

fail:
  if (vio->ops == NULL)
    blk_destroy (vio);
  else
    vr_device_destroy (&vio->parent);
  return NULL;
}

void
vr_virtio_blk_get_stats (VrDevice   *dev,
                         VrIoStats  *stats)
{
  VrVirtioBlk *self = (VrVirtioBlk *) dev;

  stats->disk_read_bytes += __atomic_load_n (&self->read_bytes, __ATOMIC_RELAXED);
  stats->disk_write_bytes += __atomic_load_n (&self->write_bytes, __ATOMIC_RELAXED);
  stats->disk_reads += __atomic_load_n (&self->reads, __ATOMIC_RELAXED);
  stats->disk_writes += __atomic_load_n (&self->writes, __ATOMIC_RELAXED);
}
