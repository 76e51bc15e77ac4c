/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * rng: the entropy device (virtio 1.x, 5.4).  Reads READS x BYTES bytes from the request
 * queue (the device may return fewer than asked: the guest asks again until each read is
 * full), using a one-buffer chain, a two-buffer chain and an indirect two-buffer chain;
 * each read must not be all-equal bytes, and no two reads may be the same.
 *
 * Command line: irq=msix|intx|poll (default poll).
 */

#include "guest.h"
#include "virtio.h"

#define READS      4
#define BYTES      64
#define TIMEOUT_MS 20000

static VirtioDevice dev;
static VirtQueue *vq;

/* Fills @out with BYTES bytes; @style 0: one buffer, 1: two, 2: two, indirect. */
static unsigned
read_random (uint8_t *out, int style)
{
  unsigned got = 0, requests = 0;

  while (got < BYTES)
    {
      uint32_t len = 0, want = BYTES - got;
      VirtioBuf bufs[2] = {
        { out + got, want, true },
        { NULL, 0, true },
      };
      unsigned n = 1;

      if (style > 0 && want >= 2)
        {
          bufs[0].len = want / 2;
          bufs[1] = (VirtioBuf) { out + got + want / 2, want - want / 2, true };
          n = 2;
        }
      if (virtq_add (vq, bufs, 0, n, out, style == 2) < 0)
        guest_fail ("virtqueue full");
      virtq_kick (vq);
      if (virtq_wait_used (vq, &len, TIMEOUT_MS) != out)
        guest_fail ("timeout waiting for random bytes");
      /* The device fills the buffers in order, and they are contiguous: len bytes from
       * out + got are new, whatever the split. */
      got += len;
      if (++requests > 1000)
        guest_fail ("the device keeps returning nothing");
    }
  return requests;
}

int
guest_main (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_POLL);
  uint8_t *data;
  bool irq_ok;

  printf ("rng test\n");
  printf ("irq: %s\n", virtio_irq_mode_name (mode));
  if (!virtio_find (VIRTIO_ID_RNG, 0, &dev))
    guest_fail ("no virtio-rng device");
  if (!virtio_init (&dev, mode))
    guest_fail ("virtio-rng: initialisation failed");
  if (!virtio_negotiate (&dev, VIRTIO_F (VIRTIO_RING_F_INDIRECT_DESC)
                                 | VIRTIO_F (VIRTIO_RING_F_EVENT_IDX)))
    guest_fail ("virtio-rng: feature negotiation failed");
  printf ("features: ok\n");
  vq = virtio_queue_setup (&dev, 0, 0);
  if (!vq)
    guest_fail ("virtio-rng: queue 0 setup failed");
  data = virtio_alloc (READS * BYTES, 64);
  virtio_driver_ok (&dev);

  for (int r = 0; r < READS; r++)
    {
      uint8_t *p = data + r * BYTES;
      unsigned requests = read_random (p, r % 3);
      bool varied = false;

      for (int i = 1; i < BYTES; i++)
        if (p[i] != p[0])
          varied = true;
      printf ("info: read %d: %u requests, %02x %02x %02x %02x...\n", r, requests, p[0], p[1],
              p[2], p[3]);
      if (!varied)
        guest_fail ("read %d: all %u bytes are 0x%02x", r, BYTES, p[0]);
      for (int q = 0; q < r; q++)
        if (!memcmp (p, data + q * BYTES, BYTES))
          guest_fail ("reads %d and %d are the same", q, r);
      printf ("read %d: %u bytes\n", r, BYTES);
    }
  printf ("random: ok\n");
  irq_ok = mode != VIRTIO_IRQ_POLL && virtq_wait_irq (vq, 1000);
  printf ("info: queue 0: %u completed, %u kicks, %u suppressed, %u indirect, %u interrupts\n",
          vq->completed, vq->kicks, vq->kicks_suppressed, vq->indirect_used, vq->irqs);
  if (mode != VIRTIO_IRQ_POLL)
    {
      if (!irq_ok)
        guest_fail ("no %s interrupt arrived", virtio_irq_mode_name (mode));
      printf ("interrupts: ok\n");
    }
  return 0;
}
