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
  bool                    quiesced; /* snapshot: no access to the rings (see below) */
};

/* A queue's state in a snapshot: the guest's configuration and the device's indices. */
typedef struct
{
  uint16_t size;
  uint16_t msix_vector;
  bool     ready;
  uint64_t desc_addr;
  uint64_t avail_addr;
  uint64_t used_addr;
  uint16_t last_avail;
  uint16_t used_idx;
  uint16_t signalled_used;
  bool     signalled_used_valid;
  bool     broken;
} VrVirtqState;

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

/* Snapshots. While quiesced, the queue neither pops nor looks for buffers nor changes its
 * notification flags: it does not touch guest RAM (pushing what was popped before is the
 * device's business: it must have finished, see VrVirtioOps.quiesce). A reset or a load
 * ends it. */
void         vr_virtq_set_quiesced (VrVirtqueue *vq,
                                    bool         quiesced);
void         vr_virtq_get_state (VrVirtqueue         *vq,
                                 VrVirtqState        *state);
/* Checks a saved state as the driver's setup would be (size, alignment, rings in RAM) and
 * its indices; a queue that is not enabled has none. Changes nothing. */
bool         vr_virtq_check_state (VrVirtqueue       *vq,
                                   const VrVirtqState *state,
                                   GError            **error);
/* Applies a state vr_virtq_check_state() accepted (after a reset). Buffers popped but not
 * used when it was saved are offered again: the available index goes back to the used one
 * (only exact for a device that completes in order; others finish theirs in quiesce). */
void         vr_virtq_set_state (VrVirtqueue         *vq,
                                 const VrVirtqState  *state,
                                 bool                 event_idx,
                                 bool                 indirect);

/* Transport side: interrupt the driver for @vq (MSI-X vector or INTx + ISR). */
void         vr_virtio_queue_interrupt (VrVirtio    *vio,
                                        VrVirtqueue *vq);

G_END_DECLS
