/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-console (virtio spec 5.3), one port (no MULTIPORT): queue 0 receives (host to
 * guest), queue 1 transmits. The backend is a VrChardev like the UART's. Input waits in a
 * small buffer until the guest posts receive buffers; the chardev is told how much room
 * there is, so typed input is never dropped, only held back.
 *
 * Snapshots: no state besides the transport's (one port, no MULTIPORT control messages).
 * Input held back here is the host terminal's, not the guest's: it is not saved, and while
 * the device is quiesced it waits here (the queues refuse to pop) until resume.
 */

#include "virtio.h"

#include <linux/virtio_console.h>
#include <string.h>

#include "../vr-chardev.h"

#define RX_QUEUE   0
#define TX_QUEUE   1
#define RX_BUFFER  4096

typedef struct
{
  VrVirtio   vio;
  VrChardev *chr;
  GMutex     rx_lock;
  uint8_t    rx[RX_BUFFER];
  size_t     rx_len;
} VrVirtioConsole;

/* rx_lock held: moves buffered input into the guest's receive buffers. */
static void
flush_rx (VrVirtioConsole *self)
{
  VrVirtqueue *vq = vr_virtio_get_queue (&self->vio, RX_QUEUE);
  bool pushed = false;

  while (self->rx_len > 0 && vr_virtio_is_running (&self->vio))
    {
      VrVirtqElem *elem = vr_virtq_pop (vq);
      size_t n;

      if (elem == NULL)
        break;
      n = vr_iov_from_buf (elem->in, elem->n_in, 0, self->rx, self->rx_len);
      memmove (self->rx, self->rx + n, self->rx_len - n);
      self->rx_len -= n;
      vr_virtq_push (vq, elem, (uint32_t) n);
      g_free (elem);
      pushed = true;
      if (n == 0)
        break;
    }
  if (pushed)
    vr_virtq_notify (vq);
}

static size_t
console_can_receive (void *opaque)
{
  VrVirtioConsole *self = opaque;
  size_t room;

  g_mutex_lock (&self->rx_lock);
  room = RX_BUFFER - self->rx_len;
  g_mutex_unlock (&self->rx_lock);
  return room;
}

static void
console_receive (void          *opaque,
                 const uint8_t *buf,
                 size_t         len)
{
  VrVirtioConsole *self = opaque;

  g_mutex_lock (&self->rx_lock);
  len = MIN (len, RX_BUFFER - self->rx_len);
  memcpy (self->rx + self->rx_len, buf, len);
  self->rx_len += len;
  flush_rx (self);
  g_mutex_unlock (&self->rx_lock);
}

static void
console_queue_notify (VrVirtio *vio,
                      unsigned  queue)
{
  VrVirtioConsole *self = (VrVirtioConsole *) vio;

  if (queue == RX_QUEUE)
    {
      g_mutex_lock (&self->rx_lock);
      flush_rx (self);
      g_mutex_unlock (&self->rx_lock);
      if (self->chr)
        vr_chardev_accept_input (self->chr);
    }
  else if (queue == TX_QUEUE)
    {
      VrVirtqueue *vq = vr_virtio_get_queue (vio, TX_QUEUE);
      VrVirtqElem *elem;
      bool pushed = false;

      while ((elem = vr_virtq_pop (vq)) != NULL)
        {
          for (unsigned i = 0; i < elem->n_out && self->chr; i++)
            vr_chardev_write (self->chr, elem->out[i].iov_base, elem->out[i].iov_len);
          vr_virtq_push (vq, elem, 0);
          g_free (elem);
          pushed = true;
        }
      if (pushed)
        vr_virtq_notify (vq);
    }
}

static void
console_reset (VrVirtio *vio)
{
  VrVirtioConsole *self = (VrVirtioConsole *) vio;

  g_mutex_lock (&self->rx_lock);
  self->rx_len = 0;
  g_mutex_unlock (&self->rx_lock);
}

static void
console_destroy (VrVirtio *vio)
{
  VrVirtioConsole *self = (VrVirtioConsole *) vio;

  if (self->chr)
    vr_chardev_detach (self->chr);
  g_mutex_clear (&self->rx_lock);
  g_free (self);
}

static const VrVirtioOps console_ops = {
  .name = "virtio-console",
  .device_id = VIRTIO_ID_CONSOLE,
  .pci_class = 0x078000,   /* simple communication controller, other */
  .queue_notify = console_queue_notify,
  .reset = console_reset,
  .destroy = console_destroy,
};

VrDevice *
vr_virtio_console_new (const VrVirtioHost *host,
                       VrChardev          *chr,
                       GError            **error)
{
  VrVirtioConsole *self = g_new0 (VrVirtioConsole, 1);

  g_mutex_init (&self->rx_lock);
  self->chr = chr;
  if (!vr_virtio_init (&self->vio, &console_ops, host, 0, 2, 128,
                       sizeof (struct virtio_console_config), error)
      || !vr_virtio_plug (&self->vio, error))
    {
      vr_device_destroy (&self->vio.parent);
      return NULL;
    }
  vr_virtio_config_put16 (&self->vio, 0, 80);   /* cols (only read with F_SIZE) */
  vr_virtio_config_put16 (&self->vio, 2, 25);   /* rows */
  vr_virtio_config_put32 (&self->vio, 4, 1);    /* max_nr_ports */
  if (chr)
    vr_chardev_attach (chr, host->io_context, console_can_receive, console_receive, self);
  return &self->vio.parent;
}
