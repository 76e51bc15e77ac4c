/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-rng (virtio spec 5.4): one queue of device-writable buffers, filled from the
 * host's getrandom(). A request is capped at 64 KiB so one guest cannot keep the I/O thread
 * busy; the rest of the buffer is simply not written (the driver asks again).
 */

#include "virtio.h"

#include <errno.h>
#include <sys/random.h>

#define RNG_MAX_REQUEST (64 * 1024)

typedef struct
{
  VrVirtio vio;
  gint     reported;   /* atomic: the first request since the last reset was logged */
} VrVirtioRng;

static void
rng_queue_notify (VrVirtio *vio,
                  unsigned  queue)
{
  VrVirtioRng *self = (VrVirtioRng *) vio;
  VrVirtqueue *vq = vr_virtio_get_queue (vio, 0);
  VrVirtqElem *elem;

  while ((elem = vr_virtq_pop (vq)) != NULL)
    {
      size_t budget = RNG_MAX_REQUEST, written = 0;

      for (unsigned i = 0; i < elem->n_in && budget > 0; i++)
        {
          size_t want = MIN (elem->in[i].iov_len, budget);
          ssize_t got;

          do
            got = getrandom (elem->in[i].iov_base, want, 0);
          while (got < 0 && errno == EINTR);
          if (got <= 0)
            break;
          written += (size_t) got;
          budget -= (size_t) got;
          if ((size_t) got < want)
            break;
        }
      if (g_atomic_int_compare_and_exchange (&self->reported, 0, 1))
        g_log ("vireo-virtio", G_LOG_LEVEL_DEBUG,
               "virtio-rng: the guest's driver asked for %" G_GUINT64_FORMAT " bytes",
               elem->in_len);
      vr_virtq_complete (vq, elem, (uint32_t) written);
      g_free (elem);
    }
}

static void
rng_reset (VrVirtio *vio)
{
  g_atomic_int_set (&((VrVirtioRng *) vio)->reported, 0);
}

static void
rng_destroy (VrVirtio *vio)
{
  g_free (vio);
}

static const VrVirtioOps rng_ops = {
  .name = "virtio-rng",
  .device_id = VIRTIO_ID_RNG,
  .pci_class = 0xff0000,   /* "other" */
  .queue_notify = rng_queue_notify,
  .reset = rng_reset,
  .destroy = rng_destroy,
};

VrDevice *
vr_virtio_rng_new (const VrVirtioHost *host,
                   GError            **error)
{
  VrVirtioRng *self = g_new0 (VrVirtioRng, 1);

  if (!vr_virtio_init (&self->vio, &rng_ops, host, 0, 1, 256, 0, error)
      || !vr_virtio_plug (&self->vio, error))
    {
      vr_device_destroy (&self->vio.parent);
      return NULL;
    }
  return &self->vio.parent;
}
