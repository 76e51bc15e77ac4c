/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Split virtqueues (virtio 1.x, 2.7): the device side.
 *
 * The rings live in guest RAM and the guest may change them at any time, even while we read
 * them: every index and descriptor is read once into a local copy, then checked — the head
 * and every `next` inside the table, an indirect table only where negotiated, never nested,
 * its length a non-zero multiple of 16, every buffer entirely inside RAM, no readable buffer
 * after a writable one, no more descriptors than the table holds (so no loop), no more than
 * VR_VIRTQ_MAX_SIZE segments. A chain that fails any check breaks the device: the queue
 * stops and the transport sets DEVICE_NEEDS_RESET.
 */

#include "virtio-private.h"

#include <gio/gio.h>
#include <glib-unix.h>

#include <string.h>

#define AVAIL_EVENT(vq) (*(uint16_t *) ((uint8_t *) (vq)->used + 4 + 8 * (size_t) (vq)->size))
#define USED_EVENT(vq)  (*(volatile uint16_t *) &(vq)->avail->ring[(vq)->size])

static inline uint16_t
load16 (const volatile uint16_t *p)
{
  return __atomic_load_n (p, __ATOMIC_ACQUIRE);
}

VrVirtqueue *
vr_virtq_new (VrVirtio *vio,
              unsigned  index,
              uint16_t  max_size)
{
  VrVirtqueue *vq = g_new0 (VrVirtqueue, 1);

  vq->vio = vio;
  vq->memory = vio->host.memory;
  vq->index = index;
  vq->max_size = max_size;
  g_mutex_init (&vq->lock);
  vr_virtq_reset (vq);
  return vq;
}

void
vr_virtq_free (VrVirtqueue *vq)
{
  if (vq == NULL)
    return;
  g_free (vq->broken);
  g_free (vq->scratch);
  g_mutex_clear (&vq->lock);
  g_free (vq);
}

void
vr_virtq_reset (VrVirtqueue *vq)
{
  g_mutex_lock (&vq->lock);
  vq->ready = false;
  vq->size = vq->max_size;
  vq->msix_vector = VR_VIRTIO_NO_VECTOR;
  vq->desc_addr = vq->avail_addr = vq->used_addr = 0;
  vq->desc = NULL;
  vq->avail = NULL;
  vq->used = NULL;
  vq->last_avail = vq->used_idx = vq->signalled_used = 0;
  vq->signalled_used_valid = false;
  vq->quiesced = false;
  g_clear_pointer (&vq->broken, g_free);
  g_mutex_unlock (&vq->lock);
}

/* The checks of a ring setup, whoever asks for it (the driver, or a snapshot): the size a
 * power of two up to the maximum (2.7), the spec's alignment, every ring inside RAM. Fills
 * the rings' host addresses. */
static bool
map_rings (VrVirtqueue *vq,
           uint16_t     size,
           uint64_t     desc_addr,
           uint64_t     avail_addr,
           uint64_t     used_addr,
           void       **desc,
           void       **avail,
           void       **used,
           GError     **error)
{
  uint64_t n = size;

  if (n == 0 || n > vq->max_size || (n & (n - 1)) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "queue %u: size %u (a power of two up to %u)", vq->index, size, vq->max_size);
      return false;
    }
  /* Alignment as the spec requires: 16 for descriptors, 2 for avail, 4 for used. */
  if ((desc_addr & 15) || (avail_addr & 1) || (used_addr & 3))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "queue %u: misaligned rings", vq->index);
      return false;
    }
  *desc = vr_memory_translate (vq->memory, desc_addr, 16 * n);
  *avail = vr_memory_translate (vq->memory, avail_addr, 6 + 2 * n);
  *used = vr_memory_translate (vq->memory, used_addr, 6 + 8 * n);
  if (*desc == NULL || *avail == NULL || *used == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "queue %u: rings outside RAM (desc %#" G_GINT64_MODIFIER "x, "
                   "avail %#" G_GINT64_MODIFIER "x, used %#" G_GINT64_MODIFIER "x)",
                   vq->index, desc_addr, avail_addr, used_addr);
      return false;
    }
  return true;
}

bool
vr_virtq_enable (VrVirtqueue *vq,
                 bool         event_idx,
                 bool         indirect,
                 GError     **error)
{
  void *desc, *avail, *used;

  if (!map_rings (vq, vq->size, vq->desc_addr, vq->avail_addr, vq->used_addr, &desc, &avail,
                  &used, error))
    return false;
  g_mutex_lock (&vq->lock);
  vq->desc = desc;
  vq->avail = avail;
  vq->used = used;
  vq->event_idx = event_idx;
  vq->indirect = indirect;
  vq->last_avail = 0;
  vq->used_idx = 0;
  vq->signalled_used_valid = false;
  vq->ready = true;
  g_mutex_unlock (&vq->lock);
  return true;
}

bool
vr_virtq_is_ready (VrVirtqueue *vq)
{
  bool ready;

  g_mutex_lock (&vq->lock);
  ready = vq->ready && vq->broken == NULL;
  g_mutex_unlock (&vq->lock);
  return ready;
}

uint16_t
vr_virtq_size (VrVirtqueue *vq)
{
  uint16_t size;

  g_mutex_lock (&vq->lock);
  size = vq->ready ? vq->size : 0;
  g_mutex_unlock (&vq->lock);
  return size;
}

unsigned
vr_virtq_index (VrVirtqueue *vq)
{
  return vq->index;
}

/* ---- snapshots --------------------------------------------------------------------------- */

void
vr_virtq_set_quiesced (VrVirtqueue *vq,
                       bool         quiesced)
{
  g_mutex_lock (&vq->lock);
  vq->quiesced = quiesced;
  g_mutex_unlock (&vq->lock);
}

void
vr_virtq_get_state (VrVirtqueue  *vq,
                    VrVirtqState *state)
{
  g_mutex_lock (&vq->lock);
  *state = (VrVirtqState) {
    .size = vq->size,
    .msix_vector = vq->msix_vector,
    .ready = vq->ready,
    .desc_addr = vq->desc_addr,
    .avail_addr = vq->avail_addr,
    .used_addr = vq->used_addr,
    .last_avail = vq->last_avail,
    .used_idx = vq->used_idx,
    .signalled_used = vq->signalled_used,
    .signalled_used_valid = vq->signalled_used_valid,
    .broken = vq->broken != NULL,
  };
  g_mutex_unlock (&vq->lock);
}

bool
vr_virtq_check_state (VrVirtqueue        *vq,
                      const VrVirtqState *state,
                      GError            **error)
{
  void *desc, *avail, *used;

  if (state->size > vq->max_size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "queue %u: size %u (maximum %u)", vq->index, state->size, vq->max_size);
      return false;
    }
  if (!state->ready)
    {
      /* Set up but not enabled: the driver may have written anything to the addresses, but
       * the device has not started. */
      if (state->last_avail || state->used_idx || state->signalled_used
          || state->signalled_used_valid || state->broken)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "queue %u: indices or a fault on a queue that is not enabled", vq->index);
          return false;
        }
      return true;
    }
  if (!map_rings (vq, state->size, state->desc_addr, state->avail_addr, state->used_addr, &desc,
                  &avail, &used, error))
    return false;
  if ((uint16_t) (state->last_avail - state->used_idx) > state->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "queue %u: %u buffers in use in a queue of %u", vq->index,
                   (uint16_t) (state->last_avail - state->used_idx), state->size);
      return false;
    }
  return true;
}

void
vr_virtq_set_state (VrVirtqueue        *vq,
                    const VrVirtqState *state,
                    bool                event_idx,
                    bool                indirect)
{
  void *desc = NULL, *avail = NULL, *used = NULL;

  if (state->ready && !map_rings (vq, state->size, state->desc_addr, state->avail_addr,
                                  state->used_addr, &desc, &avail, &used, NULL))
    g_return_if_reached ();   /* vr_virtq_check_state() said yes */

  g_mutex_lock (&vq->lock);
  vq->size = state->size;
  vq->msix_vector = state->msix_vector;
  vq->desc_addr = state->desc_addr;
  vq->avail_addr = state->avail_addr;
  vq->used_addr = state->used_addr;
  vq->ready = state->ready;
  vq->desc = desc;
  vq->avail = avail;
  vq->used = used;
  vq->event_idx = event_idx;
  vq->indirect = indirect;
  vq->last_avail = state->used_idx;   /* buffers in use come again: see the header */
  vq->used_idx = state->used_idx;
  vq->signalled_used = state->signalled_used;
  vq->signalled_used_valid = state->signalled_used_valid;
  vq->quiesced = false;
  g_clear_pointer (&vq->broken, g_free);
  if (state->ready && state->broken)
    vq->broken = g_strdup ("broken before the snapshot");
  g_mutex_unlock (&vq->lock);
}

/* ---- popping a chain -------------------------------------------------------------------- */

typedef struct
{
  struct iovec iov[VR_VIRTQ_MAX_SIZE];
  unsigned     n_out;
  unsigned     n_in;
  uint64_t     out_len;
  uint64_t     in_len;
} Walk;

/* Lock held. Records why the queue is broken; the caller reports it after unlocking. */
static void
set_broken (VrVirtqueue *vq,
            const char  *fmt,
            ...)
{
  va_list ap;

  if (vq->broken != NULL)
    return;
  va_start (ap, fmt);
  vq->broken = g_strdup_vprintf (fmt, ap);
  va_end (ap);
}

static bool
add_segment (VrVirtqueue            *vq,
             Walk                   *w,
             const struct vring_desc *d)
{
  bool writable = d->flags & VRING_DESC_F_WRITE;
  void *host;

  if (!writable && w->n_in > 0)
    {
      set_broken (vq, "a readable buffer follows a writable one");
      return false;
    }
  if (w->n_out + w->n_in >= VR_VIRTQ_MAX_SIZE)
    {
      set_broken (vq, "a chain of more than %u buffers", VR_VIRTQ_MAX_SIZE);
      return false;
    }
  if (d->len == 0)
    return true;
  host = vr_memory_translate (vq->memory, d->addr, d->len);
  if (host == NULL)
    {
      set_broken (vq, "a buffer outside RAM (%#" G_GINT64_MODIFIER "x, %u bytes)",
                  (uint64_t) d->addr, d->len);
      return false;
    }
  w->iov[w->n_out + w->n_in] = (struct iovec) { .iov_base = host, .iov_len = d->len };
  if (writable)
    {
      w->n_in++;
      w->in_len += d->len;
    }
  else
    {
      w->n_out++;
      w->out_len += d->len;
    }
  return true;
}

/* Lock held: walks the chain at @head into @w. */
static bool
walk_chain (VrVirtqueue *vq,
            uint16_t     head,
            Walk        *w)
{
  const struct vring_desc *table = vq->desc;
  unsigned table_size = vq->size;
  unsigned i = head, visited = 0;
  bool in_indirect = false;

  for (;;)
    {
      struct vring_desc d;

      if (i >= table_size)
        {
          set_broken (vq, "descriptor index %u out of range (%u)", i, table_size);
          return false;
        }
      if (++visited > table_size)
        {
          set_broken (vq, "a descriptor chain that loops");
          return false;
        }
      /* One copy of the guest's descriptor, whatever its alignment (an indirect table can
       * be anywhere); everything below looks at the copy only. */
      memcpy (&d, (const uint8_t *) table + (size_t) i * sizeof d, sizeof d);
      __atomic_signal_fence (__ATOMIC_SEQ_CST);

      if (d.flags & VRING_DESC_F_INDIRECT)
        {
          if (!vq->indirect || in_indirect)
            {
              set_broken (vq, in_indirect ? "a nested indirect table"
                                          : "an indirect descriptor not negotiated");
              return false;
            }
          if (d.len == 0 || d.len % sizeof (struct vring_desc) != 0
              || d.len / sizeof (struct vring_desc) > VR_VIRTQ_MAX_SIZE
              || (d.flags & VRING_DESC_F_NEXT))
            {
              set_broken (vq, "an indirect table of %u bytes", d.len);
              return false;
            }
          table = vr_memory_translate (vq->memory, d.addr, d.len);
          if (table == NULL)
            {
              set_broken (vq, "an indirect table outside RAM (%#" G_GINT64_MODIFIER "x)",
                          (uint64_t) d.addr);
              return false;
            }
          table_size = d.len / sizeof (struct vring_desc);
          in_indirect = true;
          visited = 0;
          i = 0;
          continue;
        }

      if (!add_segment (vq, w, &d))
        return false;
      if (!(d.flags & VRING_DESC_F_NEXT))
        return true;
      i = d.next;
    }
}

VrVirtqElem *
vr_virtq_pop (VrVirtqueue *vq)
{
  Walk *w;
  g_autofree char *broken = NULL;
  VrVirtqElem *elem = NULL;
  uint16_t avail_idx, head;
  unsigned n;

  g_mutex_lock (&vq->lock);
  if (!vq->ready || vq->broken != NULL || vq->quiesced)
    goto out;
  avail_idx = load16 (&vq->avail->idx);
  if (avail_idx == vq->last_avail)
    goto out;
  if ((uint16_t) (avail_idx - vq->last_avail) > vq->size)
    {
      set_broken (vq, "the available index moved by %u in a queue of %u",
                  (uint16_t) (avail_idx - vq->last_avail), vq->size);
      goto out;
    }
  head = load16 (&vq->avail->ring[vq->last_avail % vq->size]);

  if (vq->scratch == NULL)
    vq->scratch = g_new (Walk, 1);
  w = vq->scratch;
  w->n_out = w->n_in = 0;
  w->out_len = w->in_len = 0;
  if (!walk_chain (vq, head, w))
    goto out;

  vq->last_avail++;
  if (vq->event_idx)
    __atomic_store_n (&AVAIL_EVENT (vq), vq->last_avail, __ATOMIC_RELEASE);

  n = w->n_out + w->n_in;
  elem = g_malloc (sizeof *elem + n * sizeof (struct iovec));
  elem->head = head;
  elem->n_out = w->n_out;
  elem->n_in = w->n_in;
  elem->out_len = w->out_len;
  elem->in_len = w->in_len;
  memcpy (elem->iov, w->iov, n * sizeof (struct iovec));
  elem->out = elem->iov;
  elem->in = elem->iov + w->n_out;

out:
  if (vq->broken != NULL)
    broken = g_strdup (vq->broken);
  g_mutex_unlock (&vq->lock);
  if (broken != NULL)
    vr_virtio_set_broken (vq->vio, "queue %u: %s", vq->index, broken);
  return elem;
}

bool
vr_virtq_has_buffers (VrVirtqueue *vq)
{
  bool has;

  g_mutex_lock (&vq->lock);
  has = vq->ready && vq->broken == NULL && !vq->quiesced
        && load16 (&vq->avail->idx) != vq->last_avail;
  g_mutex_unlock (&vq->lock);
  return has;
}

void
vr_virtq_set_notification (VrVirtqueue *vq,
                           bool         enable)
{
  g_mutex_lock (&vq->lock);
  if (vq->ready && !vq->quiesced)
    {
      if (vq->event_idx)
        {
          if (enable)
            __atomic_store_n (&AVAIL_EVENT (vq), load16 (&vq->avail->idx), __ATOMIC_RELEASE);
        }
      else
        {
          uint16_t flags = enable ? 0 : VRING_USED_F_NO_NOTIFY;

          __atomic_store_n (&vq->used->flags, flags, __ATOMIC_RELEASE);
        }
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
    }
  g_mutex_unlock (&vq->lock);
}

/* ---- completing ------------------------------------------------------------------------- */

void
vr_virtq_push (VrVirtqueue       *vq,
               const VrVirtqElem *elem,
               uint32_t           written)
{
  volatile struct vring_used_elem *slot;

  g_mutex_lock (&vq->lock);
  /* A reset between pop and push: the element belongs to a ring that no longer exists. */
  if (vq->ready)
    {
      if (written > elem->in_len)
        written = (uint32_t) elem->in_len;
      slot = &vq->used->ring[vq->used_idx % vq->size];
      slot->id = elem->head;
      slot->len = written;
      vq->used_idx++;
      __atomic_store_n (&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
    }
  g_mutex_unlock (&vq->lock);
}

void
vr_virtq_notify (VrVirtqueue *vq)
{
  bool need = false;

  g_mutex_lock (&vq->lock);
  if (vq->ready)
    {
      /* The used index must be visible before we read what the driver wants. */
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      if (vq->event_idx)
        {
          uint16_t old = vq->signalled_used, new = vq->used_idx;
          uint16_t event = load16 (&USED_EVENT (vq));

          need = !vq->signalled_used_valid || vring_need_event (event, new, old);
          vq->signalled_used = new;
          vq->signalled_used_valid = true;
        }
      else
        need = !(load16 (&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
    }
  g_mutex_unlock (&vq->lock);
  if (need)
    vr_virtio_queue_interrupt (vq->vio, vq);
}

void
vr_virtq_complete (VrVirtqueue *vq,
                   VrVirtqElem *elem,
                   uint32_t     written)
{
  vr_virtq_push (vq, elem, written);
  vr_virtq_notify (vq);
}

/* ---- iovec helpers ---------------------------------------------------------------------- */

size_t
vr_iov_to_buf (const struct iovec *iov,
               unsigned            n,
               size_t              offset,
               void               *buf,
               size_t              len)
{
  size_t done = 0;

  for (unsigned i = 0; i < n && done < len; i++)
    {
      size_t chunk;

      if (offset >= iov[i].iov_len)
        {
          offset -= iov[i].iov_len;
          continue;
        }
      chunk = MIN (iov[i].iov_len - offset, len - done);
      memcpy ((uint8_t *) buf + done, (uint8_t *) iov[i].iov_base + offset, chunk);
      done += chunk;
      offset = 0;
    }
  return done;
}

size_t
vr_iov_from_buf (const struct iovec *iov,
                 unsigned            n,
                 size_t              offset,
                 const void         *buf,
                 size_t              len)
{
  size_t done = 0;

  for (unsigned i = 0; i < n && done < len; i++)
    {
      size_t chunk;

      if (offset >= iov[i].iov_len)
        {
          offset -= iov[i].iov_len;
          continue;
        }
      chunk = MIN (iov[i].iov_len - offset, len - done);
      memcpy ((uint8_t *) iov[i].iov_base + offset, (const uint8_t *) buf + done, chunk);
      done += chunk;
      offset = 0;
    }
  return done;
}
