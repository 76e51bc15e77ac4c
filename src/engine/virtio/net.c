/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-net (virtio spec 5.1): receive queue 0, transmit queue 1, no control queue.
 * Features: MAC, STATUS (link always up), MRG_RXBUF (a frame may span several receive
 * buffers; num_buffers says how many) and CSUM (the driver may leave a TCP/UDP checksum for
 * us to fill: csum_start/csum_offset). Every frame carries the 12-byte virtio_net_hdr_v1.
 *
 * Receive (backend → guest) runs on the I/O thread from the backend's sources. When the
 * receive ring has no room, net_receive() returns false: the backend keeps the frame and
 * stops reading the network, and we ask the driver for a kick; the next kick of queue 0
 * calls vr_net_backend_accept_input() and delivery resumes. Buffers popped for a frame that
 * needed more than were available stay in `stash` for the next frame (a virtqueue cannot
 * give a buffer back), so nothing the driver posted is lost either.
 *
 * Transmit (guest → backend) runs on the I/O thread from the kick of queue 1, at most
 * TX_BUDGET frames at a time (then an idle source continues), so one guest cannot hold the
 * thread.
 *
 * Snapshots: nothing of the device's own is saved beyond the transport's state (the MAC
 * address and link status are in the configuration, which must match). Receive buffers held
 * in `stash` are not saved: a restored queue offers them again (its available index goes back
 * to the used one, see vr_virtq_set_state()), since frames fill them in order. While the
 * device is quiesced no frame is received (the backend keeps it, as when the ring is full),
 * so nothing is written into guest RAM between quiesce and resume. The backend's own state
 * is not saved: slirp's connections and NAT table are lost on a restore (as with QEMU, which
 * does not save slirp's state either) and the guest's DHCP lease is renewed by the guest.
 *
 * Locks: rx_lock guards the receive side (stash, pops and pushes on queue 0); tx_lock the
 * transmit side (tx_buf, tx_more). A transmitted frame may come straight back (slirp answers
 * an ARP inside slirp_input), so the order is tx_lock → (backend) → rx_lock. A reset takes
 * both, in that order, after which `enabled` is false and both sides drop everything until
 * the driver sets the device up again. The transport holds its notify lock around
 * queue_notify and reset; driver_ok runs under VrVirtio.lock and only flips `enabled`.
 */

#include "virtio.h"

#include <linux/virtio_net.h>
#include <string.h>

#include "../net/vr-net.h"

#define NET_RX_QUEUE    0
#define NET_TX_QUEUE    1
#define NET_QUEUE_SIZE  256
#define NET_HDR_LEN     sizeof (struct virtio_net_hdr_v1)
#define RX_STASH_MAX    64
#define TX_BUDGET       256
#define CONFIG_SIZE     (offsetof (struct virtio_net_config, mtu))

G_STATIC_ASSERT (sizeof (struct virtio_net_hdr_v1) == 12);

typedef struct
{
  VrVirtio      vio;
  VrNetBackend *backend;
  uint8_t       mac[6];
  GMainContext *io_context;
  gint          enabled;           /* atomic: DRIVER_OK seen and no reset since */

  GMutex        rx_lock;
  bool          quiesced;          /* snapshot: hold frames back (rx_lock) */
  VrVirtqElem  *stash[RX_STASH_MAX];
  unsigned      n_stash;
  bool          warned_rx;

  guint64       rx_bytes;          /* atomic counters of frames delivered (performance page) */
  guint64       rx_packets;
  guint64       tx_bytes;
  guint64       tx_packets;

  GMutex        tx_lock;
  uint8_t      *tx_buf;            /* header + frame */
  GSource      *tx_more;
  bool          warned_tx;
} VrVirtioNet;

static void net_tx_flush (VrVirtioNet *self);

static void
net_fill_config (VrVirtioNet *self)
{
  memcpy (self->vio.config + offsetof (struct virtio_net_config, mac), self->mac, 6);
  vr_virtio_config_put16 (&self->vio, offsetof (struct virtio_net_config, status),
                          VIRTIO_NET_S_LINK_UP);
  vr_virtio_config_put16 (&self->vio, offsetof (struct virtio_net_config, max_virtqueue_pairs),
                          1);
}

/* ---- receive ----------------------------------------------------------------------------- */

/* rx_lock held. Drops every stashed buffer without using it (a reset follows). */
static void
net_clear_stash (VrVirtioNet *self)
{
  for (unsigned i = 0; i < self->n_stash; i++)
    g_free (self->stash[i]);
  self->n_stash = 0;
}

static bool
net_receive (void          *opaque,
             const uint8_t *frame,
             size_t         len)
{
  VrVirtioNet *self = opaque;
  VrVirtqueue *rx;
  struct virtio_net_hdr_v1 hdr = { 0 };
  uint64_t need = NET_HDR_LEN + len;
  uint64_t have = 0;
  unsigned count = 0;
  size_t off = 0;
  bool mrg;

  g_mutex_lock (&self->rx_lock);
  if (self->quiesced)
    {
      /* Kept by the backend until resume (or a restore, which drops it). */
      g_mutex_unlock (&self->rx_lock);
      return false;
    }
  rx = vr_virtio_get_queue (&self->vio, NET_RX_QUEUE);
  if (!g_atomic_int_get (&self->enabled) || !vr_virtq_is_ready (rx))
    goto drop;   /* no driver: like a cable plugged into a card that is off */
  mrg = vr_virtio_has_feature (&self->vio, VIRTIO_NET_F_MRG_RXBUF);

  for (unsigned i = 0; i < self->n_stash; i++)
    have += self->stash[i]->in_len;
  while (have < need && (mrg || self->n_stash == 0) && self->n_stash < RX_STASH_MAX)
    {
      VrVirtqElem *elem = vr_virtq_pop (rx);

      if (!elem && self->n_stash >= vr_virtq_size (rx))
        {
          /* The whole ring is not enough for this frame: it can never be delivered. */
          if (!self->warned_rx)
            g_message ("virtio-net: dropping a %zu-byte frame: it does not fit the guest's "
                       "whole receive ring", len);
          self->warned_rx = true;
          goto drop;
        }
      if (!elem)
        {
          /* Out of buffers: ask for a kick, then look again to close the race. */
          vr_virtq_set_notification (rx, true);
          if (!vr_virtq_has_buffers (rx))
            {
              g_mutex_unlock (&self->rx_lock);
              return false;
            }
          vr_virtq_set_notification (rx, false);
          continue;
        }
      if (elem->in_len < NET_HDR_LEN || elem->n_out != 0)
        {
          vr_virtio_set_broken (&self->vio,
                                "a receive buffer of %" G_GUINT64_FORMAT " writable bytes "
                                "(%u readable segments); each needs at least %zu writable",
                                elem->in_len, elem->n_out, NET_HDR_LEN);
          vr_virtq_push (rx, elem, 0);
          g_free (elem);
          goto drop;
        }
      self->stash[self->n_stash++] = elem;
      have += elem->in_len;
    }

  if (have < need)
    {
      /* Without MRG_RXBUF the driver should post buffers of 1526 bytes or more; the frame
       * cannot be delivered, the buffer waits for a smaller one. */
      if (!self->warned_rx)
        g_message ("virtio-net: dropping a %zu-byte frame: the guest's receive buffers are "
                   "too small (%" G_GUINT64_FORMAT " bytes)", len, have);
      self->warned_rx = true;
      goto drop;
    }

  for (have = 0; have < need; count++)
    have += self->stash[count]->in_len;
  hdr.num_buffers = GUINT16_TO_LE ((uint16_t) count);

  for (unsigned i = 0; i < count; i++)
    {
      VrVirtqElem *elem = self->stash[i];
      uint64_t written = 0;
      size_t chunk;

      if (i == 0)
        written = vr_iov_from_buf (elem->in, elem->n_in, 0, &hdr, NET_HDR_LEN);
      chunk = (size_t) MIN (elem->in_len - written, (uint64_t) (len - off));
      written += vr_iov_from_buf (elem->in, elem->n_in, written, frame + off, chunk);
      off += chunk;
      vr_virtq_push (rx, elem, (uint32_t) written);
      g_free (elem);
    }
  memmove (self->stash, self->stash + count, (self->n_stash - count) * sizeof self->stash[0]);
  self->n_stash -= count;
  vr_virtq_notify (rx);
  __atomic_add_fetch (&self->rx_bytes, len, __ATOMIC_RELAXED);
  __atomic_add_fetch (&self->rx_packets, 1, __ATOMIC_RELAXED);

drop:
  g_mutex_unlock (&self->rx_lock);
  return true;
}

/* ---- transmit ---------------------------------------------------------------------------- */

static uint16_t
inet_checksum (const uint8_t *p, size_t len)
{
  uint32_t sum = 0;

  for (; len > 1; p += 2, len -= 2)
    sum += (uint32_t) (p[0] << 8 | p[1]);
  if (len)
    sum += (uint32_t) (p[0] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t) ~sum;
}

/* tx_lock held. Returns false when the guest's frame is malformed (and was dropped). */
static bool
net_tx_one (VrVirtioNet *self, VrVirtqElem *elem)
{
  struct virtio_net_hdr_v1 hdr;
  uint8_t *frame = self->tx_buf + NET_HDR_LEN;
  size_t len;
  struct iovec iov;

  if (elem->out_len < NET_HDR_LEN + 14 || elem->out_len > NET_HDR_LEN + VR_NET_MAX_FRAME)
    {
      /* Every chain starts with the header (the driver MUST, 5.1.6.2); a runt frame or a
       * giant one is only dropped. */
      if (elem->out_len < NET_HDR_LEN)
        {
          self->warned_tx = true;   /* one message is enough */
          vr_virtio_set_broken (&self->vio,
                                "a transmit chain of %" G_GUINT64_FORMAT " bytes, shorter "
                                "than the %zu-byte header", elem->out_len, NET_HDR_LEN);
        }
      return false;
    }
  len = vr_iov_to_buf (elem->out, elem->n_out, 0, self->tx_buf, (size_t) elem->out_len);
  if (len != elem->out_len)
    return false;
  len -= NET_HDR_LEN;
  memcpy (&hdr, self->tx_buf, sizeof hdr);

  if (hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE)
    return false;   /* no HOST_TSO/UFO offered */
  if (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
    {
      size_t start = GUINT16_FROM_LE (hdr.csum_start);
      size_t field = start + GUINT16_FROM_LE (hdr.csum_offset);
      uint16_t sum;

      if (!vr_virtio_has_feature (&self->vio, VIRTIO_NET_F_CSUM) || start >= len
          || field + 2 > len)
        return false;
      /* The field holds the pseudo-header sum already: checksum from start to the end. */
      sum = inet_checksum (frame + start, len - start);
      frame[field] = (uint8_t) (sum >> 8);
      frame[field + 1] = (uint8_t) sum;
    }

  iov.iov_base = frame;
  iov.iov_len = len;
  vr_net_backend_send (self->backend, &iov, 1);
  __atomic_add_fetch (&self->tx_bytes, len, __ATOMIC_RELAXED);
  __atomic_add_fetch (&self->tx_packets, 1, __ATOMIC_RELAXED);
  return true;
}

static gboolean
net_tx_more_cb (gpointer data)
{
  VrVirtioNet *self = data;

  g_mutex_lock (&self->tx_lock);
  if (self->tx_more == g_main_current_source ())
    g_clear_pointer (&self->tx_more, g_source_unref);
  g_mutex_unlock (&self->tx_lock);
  net_tx_flush (self);
  return G_SOURCE_REMOVE;
}

static void
net_tx_flush (VrVirtioNet *self)
{
  VrVirtqueue *tx;
  unsigned done = 0;

  g_mutex_lock (&self->tx_lock);
  tx = vr_virtio_get_queue (&self->vio, NET_TX_QUEUE);
  if (!g_atomic_int_get (&self->enabled) || !vr_virtq_is_ready (tx))
    goto out;

  vr_virtq_set_notification (tx, false);
  for (;;)
    {
      VrVirtqElem *elem;

      if (done == TX_BUDGET)
        {
          /* Let the I/O thread breathe; kicks stay off, the idle source goes on. */
          if (!self->tx_more)
            {
              self->tx_more = g_idle_source_new ();
              g_source_set_callback (self->tx_more, net_tx_more_cb, self, NULL);
              g_source_set_static_name (self->tx_more, "vireo-virtio-net-tx");
              g_source_attach (self->tx_more, self->io_context);
            }
          break;
        }
      elem = vr_virtq_pop (tx);
      if (!elem)
        {
          vr_virtq_set_notification (tx, true);
          if (!vr_virtq_has_buffers (tx))
            break;
          vr_virtq_set_notification (tx, false);
          continue;
        }
      if (!net_tx_one (self, elem) && !self->warned_tx)
        {
          g_message ("virtio-net: dropping a malformed frame from the guest (%" G_GUINT64_FORMAT
                     " bytes)", elem->out_len);
          self->warned_tx = true;
        }
      vr_virtq_push (tx, elem, 0);
      g_free (elem);
      done++;
    }
  if (done)
    vr_virtq_notify (tx);

out:
  g_mutex_unlock (&self->tx_lock);
}

/* ---- VrVirtioOps ------------------------------------------------------------------------- */

static void
net_queue_notify (VrVirtio *vio,
                  unsigned  queue)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  if (queue == NET_RX_QUEUE)
    vr_net_backend_accept_input (self->backend);
  else if (queue == NET_TX_QUEUE)
    net_tx_flush (self);
}

static void
net_config_write (VrVirtio *vio,
                  uint32_t  offset,
                  uint32_t  len)
{
  /* The configuration is read-only for a VERSION_1 driver: undo the write. */
  net_fill_config ((VrVirtioNet *) vio);
}

static void
net_driver_ok (VrVirtio *vio)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  g_atomic_int_set (&self->enabled, 1);
  vr_net_backend_accept_input (self->backend);
}

static void
net_reset (VrVirtio *vio)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  g_mutex_lock (&self->tx_lock);
  g_mutex_lock (&self->rx_lock);
  g_atomic_int_set (&self->enabled, 0);
  self->quiesced = false;
  net_clear_stash (self);
  self->warned_rx = false;
  self->warned_tx = false;
  g_mutex_unlock (&self->rx_lock);
  if (self->tx_more)
    {
      g_source_destroy (self->tx_more);
      g_clear_pointer (&self->tx_more, g_source_unref);
    }
  g_mutex_unlock (&self->tx_lock);
  /* Frames the backend kept for the old driver are dropped now, and reading resumes. */
  if (self->backend)
    vr_net_backend_accept_input (self->backend);
}

static void
net_quiesce (VrVirtio *vio)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  /* Transmission runs on kicks only (and its idle continuation, which finds the queue
   * refusing to pop): nothing to wait for. */
  g_mutex_lock (&self->rx_lock);
  self->quiesced = true;
  g_mutex_unlock (&self->rx_lock);
}

static void
net_resume (VrVirtio *vio)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  g_mutex_lock (&self->rx_lock);
  self->quiesced = false;
  g_mutex_unlock (&self->rx_lock);
  vr_net_backend_accept_input (self->backend);
}

static void
net_destroy (VrVirtio *vio)
{
  VrVirtioNet *self = (VrVirtioNet *) vio;

  /* The I/O thread is gone (see virtio_device_destroy): no callback can be running. */
  g_clear_pointer (&self->backend, vr_net_backend_free);
  if (self->tx_more)
    {
      g_source_destroy (self->tx_more);
      g_source_unref (self->tx_more);
    }
  net_clear_stash (self);
  g_free (self->tx_buf);
  g_clear_pointer (&self->io_context, g_main_context_unref);
  g_mutex_clear (&self->rx_lock);
  g_mutex_clear (&self->tx_lock);
  g_free (self);
}

static const VrVirtioOps net_ops = {
  .name = "virtio-net",
  .device_id = VIRTIO_ID_NET,
  .pci_class = 0x020000,   /* network, Ethernet */
  .config_write = net_config_write,
  .driver_ok = net_driver_ok,
  .queue_notify = net_queue_notify,
  .reset = net_reset,
  .quiesce = net_quiesce,
  .resume = net_resume,
  .destroy = net_destroy,
};

VrDevice *
vr_virtio_net_new (const VrVirtioHost *host,
                   VrNetBackend       *backend,
                   const uint8_t       mac[6],
                   GError            **error)
{
  VrVirtioNet *self;
  uint64_t features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS)
                      | (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM);

  g_return_val_if_fail (host != NULL, NULL);
  g_return_val_if_fail (backend != NULL, NULL);
  g_return_val_if_fail (mac != NULL, NULL);

  self = g_new0 (VrVirtioNet, 1);
  self->backend = backend;
  memcpy (self->mac, mac, 6);
  self->io_context = g_main_context_ref (host->io_context);
  self->tx_buf = g_malloc (NET_HDR_LEN + VR_NET_MAX_FRAME);
  g_mutex_init (&self->rx_lock);
  g_mutex_init (&self->tx_lock);

  if (!vr_virtio_init (&self->vio, &net_ops, host, features, 2, NET_QUEUE_SIZE, CONFIG_SIZE,
                       error))
    goto fail;
  net_fill_config (self);
  if (!vr_virtio_plug (&self->vio, error))
    goto fail;

  vr_net_backend_attach (backend, host->io_context, net_receive, self);
  return &self->vio.parent;

fail:
  vr_device_destroy (&self->vio.parent);
  return NULL;
}

void
vr_virtio_net_get_stats (VrDevice   *dev,
                         VrIoStats  *stats)
{
  VrVirtioNet *self = (VrVirtioNet *) dev;

  stats->net_rx_bytes += __atomic_load_n (&self->rx_bytes, __ATOMIC_RELAXED);
  stats->net_rx_packets += __atomic_load_n (&self->rx_packets, __ATOMIC_RELAXED);
  stats->net_tx_bytes += __atomic_load_n (&self->tx_bytes, __ATOMIC_RELAXED);
  stats->net_tx_packets += __atomic_load_n (&self->tx_packets, __ATOMIC_RELAXED);
}
