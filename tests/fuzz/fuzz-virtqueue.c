/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the split virtqueue walker: the input is a driver's view of guest RAM (descriptor
 * table, available ring, indirect tables, anything) plus the queue's parameters; every chain
 * popped is then written to and completed, as a device would. Nothing may touch memory
 * outside guest RAM, loop or crash.
 *
 * Input: byte 0 flags (bit 0 indirect, bit 1 event_idx), byte 1 queue size - 1 (mod 64),
 * then 1024 bytes of descriptor table (guest-physical 0), 136 bytes of available ring
 * (0x1000), and the rest (indirect tables, anything) at 0x4000. The used ring is at 0x2000.
 */

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtio-private.h"
#include "vr-memory.h"

#define RAM (4u << 20)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
quiet (const char *domain, GLogLevelFlags level, const char *message, gpointer user_data)
{
}

static const VrVirtioOps fuzz_ops = { .name = "virtio-fuzz" };

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static VrMemory *memory;
  VrVirtio vio = { .ops = &fuzz_ops };
  VrVirtqueue *vq;
  uint8_t *ram;

  if (memory == NULL)
    {
      memory = vr_memory_new (RAM, NULL);
      if (memory == NULL)
        abort ();
      g_log_set_default_handler (quiet, NULL);
    }
  if (size < 2)
    return 0;
  ram = vr_memory_translate (memory, 0, 64 * 1024);
  memset (ram, 0, 64 * 1024);
  data += 2;
  size -= 2;
  memcpy (ram, data, MIN (size, 1024));
  if (size > 1024)
    memcpy (ram + 0x1000, data + 1024, MIN (size - 1024, 136));
  if (size > 1024 + 136)
    memcpy (ram + 0x4000, data + 1024 + 136, MIN (size - 1024 - 136, 48 * 1024));

  g_mutex_init (&vio.lock);
  vio.host.memory = memory;
  vq = vr_virtq_new (&vio, 0, 64);
  vq->size = (uint16_t) (data[-1] % 64 + 1);
  vq->desc_addr = 0;
  vq->avail_addr = 0x1000;
  vq->used_addr = 0x2000;
  if (vr_virtq_enable (vq, data[-2] & 2, data[-2] & 1, NULL))
    {
      for (unsigned round = 0; round < 2u * vq->size + 2; round++)
        {
          VrVirtqElem *elem = vr_virtq_pop (vq);

          if (elem == NULL)
            break;
          /* Touch every byte as a device would. */
          for (unsigned i = 0; i < elem->n_out; i++)
            {
              volatile uint8_t sum = 0;

              for (size_t j = 0; j < elem->out[i].iov_len; j += 512)
                sum += ((uint8_t *) elem->out[i].iov_base)[j];
              (void) sum;
            }
          for (unsigned i = 0; i < elem->n_in; i++)
            memset (elem->in[i].iov_base, 0xa5, elem->in[i].iov_len);
          vr_virtq_push (vq, elem, (uint32_t) elem->in_len);
          g_free (elem);
        }
    }
  vr_virtq_free (vq);
  g_mutex_clear (&vio.lock);
  return 0;
}
