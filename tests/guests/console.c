/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * console: virtio-console port 0 without VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.x, 5.3).
 *
 * Posts RX_BUFS receive buffers of RX_LEN bytes (so a long line spans several), sends
 * GREETING on the transmit queue (in two chains, the second through an indirect table),
 * then reads one line from the receive queue, prints it on COM1 and sends it back as
 * "echo: LINE\n".  The host (test-virtio.c) waits for GREETING before it sends the line.
 *
 * Command line: irq=msix|intx|poll (default intx).
 */

#include "guest.h"
#include "virtio.h"

#define GREETING_1 "hello from "
#define GREETING_2 "the virtio console\n"
#define RX_BUFS    8
#define RX_LEN     32
#define LINE_MAX   200
#define TIMEOUT_MS 120000

static VirtioDevice dev;
static VirtQueue *rxq, *txq;
static uint8_t *rx_bufs;

static void
post_rx (uint8_t *buf)
{
  VirtioBuf b = { buf, RX_LEN, true };

  if (virtq_add (rxq, &b, 0, 1, buf, false) < 0)
    guest_fail ("receive queue full");
}

/* Sends @n buffers as one chain and waits until the device has taken them. */
static void
send (const VirtioBuf *bufs, unsigned n, bool indirect)
{
  static int token;

  if (virtq_add (txq, bufs, n, 0, &token, indirect) < 0)
    guest_fail ("transmit queue full");
  virtq_kick (txq);
  if (virtq_wait_used (txq, NULL, TIMEOUT_MS) != &token)
    guest_fail ("timeout: the device did not consume the transmit buffers");
}

int
guest_main (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_INTX);
  char *line, *out;
  unsigned n = 0;
  bool done = false, irq_ok;

  printf ("console test\n");
  printf ("irq: %s\n", virtio_irq_mode_name (mode));
  if (!virtio_find (VIRTIO_ID_CONSOLE, 0, &dev))
    guest_fail ("no virtio-console device");
  if (!virtio_init (&dev, mode))
    guest_fail ("virtio-console: initialisation failed");
  if (!virtio_negotiate (&dev, VIRTIO_F (VIRTIO_RING_F_INDIRECT_DESC)
                                 | VIRTIO_F (VIRTIO_RING_F_EVENT_IDX)))
    guest_fail ("virtio-console: feature negotiation failed");
  printf ("features: ok\n");
  printf ("info: multiport offered: %s\n", dev.device_features & 2 ? "yes" : "no");
  rxq = virtio_queue_setup (&dev, 0, 0);
  txq = virtio_queue_setup (&dev, 1, 0);
  if (!rxq || !txq)
    guest_fail ("virtio-console: queue setup failed");
  rx_bufs = virtio_alloc (RX_BUFS * RX_LEN, 64);
  line = virtio_alloc (LINE_MAX + 1, 64);
  out = virtio_alloc (LINE_MAX + 8, 64);
  for (int i = 0; i < RX_BUFS; i++)
    post_rx (rx_bufs + i * RX_LEN);
  virtio_driver_ok (&dev);
  virtq_kick (rxq);

  {
    static const char g1[] = GREETING_1, g2[] = GREETING_2;
    char *copy = virtio_alloc (sizeof g1 + sizeof g2, 16);
    VirtioBuf b1 = { copy, sizeof g1 - 1, false };
    VirtioBuf b2[2] = {
      { copy + sizeof g1, 4, false },
      { copy + sizeof g1 + 4, sizeof g2 - 1 - 4, false },
    };

    memcpy (copy, g1, sizeof g1);
    memcpy (copy + sizeof g1, g2, sizeof g2);
    send (&b1, 1, false);
    send (b2, 2, true);
  }
  printf ("console: sent greeting\n");

  while (!done)
    {
      uint32_t len;
      uint8_t *buf = virtq_wait_used (rxq, &len, TIMEOUT_MS);

      if (!buf)
        guest_fail ("timeout: no line from the host (%u bytes so far)", n);
      for (uint32_t i = 0; i < len && !done; i++)
        {
          if (buf[i] == '\n')
            done = true;
          else if (buf[i] != '\r' && n < LINE_MAX)
            line[n++] = (char) buf[i];
        }
      if (!done && len > 0 && n >= LINE_MAX)
        guest_fail ("line longer than %u bytes", LINE_MAX);
      post_rx (buf);
      virtq_kick (rxq);
    }
  line[n] = 0;
  printf ("console: received: %s\n", line);

  memcpy (out, "echo: ", 6);
  memcpy (out + 6, line, n);
  out[6 + n] = '\n';
  {
    VirtioBuf b = { out, 6 + n + 1, false };
    send (&b, 1, false);
  }
  printf ("console: echoed\n");

  irq_ok = mode != VIRTIO_IRQ_POLL && virtq_wait_irq (rxq, 1000);
  printf ("info: rx: %u completed, %u interrupts; tx: %u completed, %u kicks, %u suppressed,"
          " %u interrupts; intx %u\n", rxq->completed, rxq->irqs, txq->completed, txq->kicks,
          txq->kicks_suppressed, txq->irqs, dev.intx_irqs);
  if (mode != VIRTIO_IRQ_POLL)
    {
      if (!irq_ok)
        guest_fail ("no %s interrupt for the receive queue", virtio_irq_mode_name (mode));
      printf ("interrupts: ok\n");
    }
  return 0;
}
