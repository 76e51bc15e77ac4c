/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Between the virtio-pci transport and the virtqueues; devices use virtio.h only. */

#include "virtio.h"

G_BEGIN_DECLS

struct _VrVirtqueue
{
  VrVirtio  *vio;
  VrMemory  *memory;
  unsigned   index;
  uint16_t   max_size;

  /* Guest-programmed configuration (transport, under VrVirtio.lock, then copied here with
   * the queue's lock held by vr_virtq_enable()). */
  uint16_t   size;
  uint16_t   msix_vector;
  uint64_t   desc_addr;
  uint64_t   avail_addr;
  uint64_t   used_addr;

  /* Runtime, under @lock. */
  GMutex                  lock;
  bool                    ready;
  bool                    event_idx;
  bool                    indirect;
  struct vring_desc      *desc;
  struct vring_avail     *avail;
  struct vring_used      *used;
  uint16_t                last_avail;
  uint16_t                used_idx;
  uint16_t                signalled_used;
  bool                    signalled_used_valid;
  char                   *broken;   /* why the last pop failed; the caller reports it */
  void                   *scratch;  /* the chain being walked (virtqueue.c) */
};

VrVirtqueue *vr_virtq_new      (VrVirtio    *vio,
                                unsigned     index,
                                uint16_t     max_size);
void         vr_virtq_free     (VrVirtqueue *vq);
/* Back to the reset state (not ready, default size, no vector). */
void         vr_virtq_reset    (VrVirtqueue *vq);
/* Checks and maps the rings the driver configured; false (with a reason) if they are not in
 * RAM or the size is not acceptable. */
bool         vr_virtq_enable   (VrVirtqueue *vq,
                                bool         event_idx,
                                bool         indirect,
                                GError     **error);

/* Transport side: interrupt the driver for @vq (MSI-X vector or INTx + ISR). */
void         vr_virtio_queue_interrupt (VrVirtio    *vio,
                                        VrVirtqueue *vq);

G_END_DECLS
