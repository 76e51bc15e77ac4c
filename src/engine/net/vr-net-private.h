/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * For backend implementations (slirp.c, tap.c). The common part (vr-net.c) owns the
 * attachment, the frames the device refused and the paused state; a backend reads from the
 * network, hands frames to vr_net_backend_deliver() and stops reading while
 * vr_net_backend_is_paused().
 *
 * Lifetime: a backend is an atomic reference-counted box (g_atomic_rc_box_alloc0 of the
 * backend's own struct, VrNetBackend first). vr_net_backend_free() detaches, marks it closed
 * and drops the owner's reference; each GSource callback holds one too, so a callback that
 * runs while the owner frees the backend still sees valid memory (and `closed`).
 * ops->finalize runs when the last reference goes: no source of the backend is alive then.
 *
 * Locks:
 *   cb_lock: held while calling the device's receive(); detach takes it, so no receive()
 *            runs after detach returns.
 *   lock:    the attachment, the pending queue, paused, closed and the resume source. Never
 *            held while calling into the device or the backend's ops. Order: cb_lock, lock.
 */

#include "vr-net.h"

G_BEGIN_DECLS

typedef struct
{
  const char *kind;
  /* The backend runs on the context it was made for; attach() cannot move it. */
  bool        own_context;
  /* The attachment changed (@nb->context set): start or move reading. I/O thread or the
   * attaching thread, lock NOT held. */
  void      (*start)    (VrNetBackend       *nb);
  /* Stop reading (detach/free); any thread. */
  void      (*stop)     (VrNetBackend       *nb);
  /* Reading may resume (pending frames delivered); I/O thread. */
  void      (*resume)   (VrNetBackend       *nb);
  bool      (*send)     (VrNetBackend       *nb,
                         const struct iovec *iov,
                         unsigned            n);
  /* Releases the backend's resources (last reference). */
  void      (*finalize) (VrNetBackend       *nb);
} VrNetBackendOps;

struct _VrNetBackend
{
  const VrNetBackendOps *ops;
  GMutex                 lock;
  GMutex                 cb_lock;
  GMainContext          *context;
  VrNetReceive           receive;
  void                  *opaque;
  bool                   closed;
  bool                   paused;
  GQueue                 pending;      /* GBytes frames, oldest first */
  GSource               *resume;
  uint64_t               dropped;
};

/* Allocates a backend box of @size bytes (≥ sizeof (VrNetBackend)). */
VrNetBackend *vr_net_backend_alloc     (size_t                 size,
                                        const VrNetBackendOps *ops,
                                        GMainContext          *context);
VrNetBackend *vr_net_backend_ref       (VrNetBackend          *nb);
void          vr_net_backend_unref     (VrNetBackend          *nb);
/* A frame from the network (I/O thread). Returns false when the backend should stop reading
 * (the device is full; the frame was kept or, past the bound, dropped). */
bool          vr_net_backend_deliver   (VrNetBackend          *nb,
                                        const uint8_t         *frame,
                                        size_t                 len);
bool          vr_net_backend_is_paused (VrNetBackend          *nb);
/* The context to run on, referenced, or NULL when detached/closed. */
GMainContext *vr_net_backend_dup_context (VrNetBackend        *nb);

G_END_DECLS
