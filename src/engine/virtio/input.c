/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-input (virtio spec 5.8): a keyboard or an absolute tablet. Queue 0 carries events
 * to the guest (8 bytes each: le16 type, le16 code, le32 value), queue 1 status from it
 * (LEDs: read and dropped). The configuration space answers the driver's (select, subsel)
 * questions: name, serial, device ids, property bits, event bits per type, axis ranges.
 *
 * Events wait in a small ring until the guest posts buffers; when the ring is full the oldest
 * complete report is dropped (a guest that never reads cannot make us grow).
 *
 * Snapshots save the events still waiting (so that a key released after its press reached
 * the guest is released in the restored guest too) and the configuration selectors; LED
 * reports from the guest are not kept by the device, so there is nothing else.
 */

#include "virtio.h"

#include "../hw/state.h"

#include <linux/input-event-codes.h>
#include <linux/virtio_input.h>
#include <string.h>

#define EVENT_QUEUE    0
#define STATUS_QUEUE   1
#define PENDING_MAX    256
#define TABLET_MAX     32767
#define BUS_VIRTUAL    0x06

typedef struct
{
  VrVirtio           vio;
  VrVirtioInputKind  kind;
  GMutex             ev_lock;
  VrInputEvent       pending[PENDING_MAX];
  unsigned           head;    /* index of the oldest */
  unsigned           count;
} VrVirtioInput;

static void
set_bit (uint8_t *bitmap, unsigned bit)
{
  bitmap[bit / 8] |= (uint8_t) (1u << (bit % 8));
}

/* vio->lock held: fills size and u[] for the current select/subsel. */
static void
input_config_write (VrVirtio *vio,
                    uint32_t  offset,
                    uint32_t  len)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;
  struct virtio_input_config *cfg = (struct virtio_input_config *) vio->config;
  bool keyboard = self->kind == VR_VIRTIO_INPUT_KEYBOARD;
  uint8_t select = cfg->select, subsel = cfg->subsel;
  uint8_t size = 0;

  /* Only select and subsel are writable: everything after them is recomputed. */
  memset (&cfg->u, 0, sizeof cfg->u);
  memset (cfg->reserved, 0, sizeof cfg->reserved);

  switch (select)
    {
    case VIRTIO_INPUT_CFG_ID_NAME:
      {
        const char *name = keyboard ? "Vireo Virtio Keyboard" : "Vireo Virtio Tablet";

        size = (uint8_t) strlen (name);
        memcpy (cfg->u.string, name, size);
      }
      break;
    case VIRTIO_INPUT_CFG_ID_SERIAL:
      size = 1;
      cfg->u.string[0] = '0';
      break;
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
      cfg->u.ids.bustype = BUS_VIRTUAL;
      cfg->u.ids.vendor = 0x0627;
      cfg->u.ids.product = keyboard ? 1 : 3;
      cfg->u.ids.version = 1;
      size = sizeof cfg->u.ids;
      break;
    case VIRTIO_INPUT_CFG_PROP_BITS:
      if (!keyboard)
        {
          set_bit (cfg->u.bitmap, INPUT_PROP_DIRECT);
          size = 1;
        }
      break;
    case VIRTIO_INPUT_CFG_EV_BITS:
      if (keyboard && subsel == EV_KEY)
        {
          /* Every key of a PC keyboard and more: codes 1..KEY_MICMUTE. */
          for (unsigned k = KEY_ESC; k <= KEY_MICMUTE; k++)
            set_bit (cfg->u.bitmap, k);
          size = KEY_MICMUTE / 8 + 1;
        }
      else if (keyboard && subsel == EV_REP)
        size = 1;
      else if (!keyboard && subsel == EV_KEY)
        {
          for (unsigned b = BTN_LEFT; b <= BTN_EXTRA; b++)
            set_bit (cfg->u.bitmap, b);
          size = BTN_EXTRA / 8 + 1;
        }
      else if (!keyboard && subsel == EV_REL)
        {
          set_bit (cfg->u.bitmap, REL_WHEEL);
          size = REL_WHEEL / 8 + 1;
        }
      else if (!keyboard && subsel == EV_ABS)
        {
          set_bit (cfg->u.bitmap, ABS_X);
          set_bit (cfg->u.bitmap, ABS_Y);
          size = 1;
        }
      break;
    case VIRTIO_INPUT_CFG_ABS_INFO:
      if (!keyboard && (subsel == ABS_X || subsel == ABS_Y))
        {
          cfg->u.abs.min = 0;
          cfg->u.abs.max = TABLET_MAX;
          size = sizeof cfg->u.abs;
        }
      break;
    default:
      break;
    }
  cfg->size = size;
}

/* ev_lock held: hands pending events to the guest, one buffer per event. */
static void
flush_events (VrVirtioInput *self)
{
  VrVirtqueue *vq = vr_virtio_get_queue (&self->vio, EVENT_QUEUE);
  bool pushed = false;

  while (self->count > 0)
    {
      VrInputEvent *ev = &self->pending[self->head];
      struct virtio_input_event wire = {
        .type = GUINT16_TO_LE (ev->type),
        .code = GUINT16_TO_LE (ev->code),
        .value = GUINT32_TO_LE ((uint32_t) ev->value),
      };
      VrVirtqElem *elem = vr_virtq_pop (vq);
      size_t n;

      if (elem == NULL)
        break;
      n = vr_iov_from_buf (elem->in, elem->n_in, 0, &wire, sizeof wire);
      vr_virtq_push (vq, elem, (uint32_t) n);
      g_free (elem);
      pushed = true;
      self->head = (self->head + 1) % PENDING_MAX;
      self->count--;
    }
  if (pushed)
    vr_virtq_notify (vq);
}

void
vr_virtio_input_send (VrDevice           *dev,
                      const VrInputEvent *events,
                      unsigned            n)
{
  VrVirtioInput *self = (VrVirtioInput *) dev;
  VrInputEvent syn = { EV_SYN, SYN_REPORT, 0 };

  g_return_if_fail (dev != NULL);
  if (!vr_virtio_is_running (&self->vio))
    return;
  g_mutex_lock (&self->ev_lock);
  for (unsigned i = 0; i <= n; i++)
    {
      const VrInputEvent *ev = i < n ? &events[i] : &syn;

      if (self->count == PENDING_MAX)
        {
          /* Drop the oldest report, up to and including its SYN_REPORT. */
          while (self->count > 0)
            {
              VrInputEvent *old = &self->pending[self->head];
              bool end = old->type == EV_SYN;

              self->head = (self->head + 1) % PENDING_MAX;
              self->count--;
              if (end)
                break;
            }
        }
      self->pending[(self->head + self->count) % PENDING_MAX] = *ev;
      self->count++;
    }
  flush_events (self);
  g_mutex_unlock (&self->ev_lock);
}

bool
vr_virtio_input_is_active (VrDevice *dev)
{
  VrVirtioInput *self = (VrVirtioInput *) dev;

  g_return_val_if_fail (dev != NULL, false);
  return vr_virtio_is_running (&self->vio);
}

static void
input_queue_notify (VrVirtio *vio,
                    unsigned  queue)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;

  if (queue == EVENT_QUEUE)
    {
      g_mutex_lock (&self->ev_lock);
      flush_events (self);
      g_mutex_unlock (&self->ev_lock);
    }
  else
    {
      VrVirtqueue *vq = vr_virtio_get_queue (vio, STATUS_QUEUE);
      VrVirtqElem *elem;
      bool pushed = false;

      /* LED state and the like: accepted, not acted on. */
      while ((elem = vr_virtq_pop (vq)) != NULL)
        {
          vr_virtq_push (vq, elem, 0);
          g_free (elem);
          pushed = true;
        }
      if (pushed)
        vr_virtq_notify (vq);
    }
}

static void
input_reset (VrVirtio *vio)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;

  g_mutex_lock (&self->ev_lock);
  self->head = self->count = 0;
  g_mutex_unlock (&self->ev_lock);
}

/* Snapshot state, version 1: (version, waiting events oldest first as (type, code, value)).
 * The configuration's select/subsel come through the transport. */
#define INPUT_STATE_VERSION 1
#define INPUT_STATE_TYPE    "(qa(qqi))"

static GVariant *
input_save (VrVirtio *vio)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;
  GVariantBuilder events;

  g_variant_builder_init (&events, G_VARIANT_TYPE ("a(qqi)"));
  g_mutex_lock (&self->ev_lock);
  for (unsigned i = 0; i < self->count; i++)
    {
      const VrInputEvent *ev = &self->pending[(self->head + i) % PENDING_MAX];

      g_variant_builder_add (&events, "(qqi)", ev->type, ev->code, ev->value);
    }
  g_mutex_unlock (&self->ev_lock);
  return g_variant_new (INPUT_STATE_TYPE, INPUT_STATE_VERSION, &events);
}

static bool
input_load (VrVirtio      *vio,
            GVariant      *state,
            const uint8_t *config,
            GError       **error)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;
  /* Bytes, not the struct: the saved data need not be aligned. */
  uint8_t select = config[offsetof (struct virtio_input_config, select)];
  uint8_t subsel = config[offsetof (struct virtio_input_config, subsel)];
  g_autoptr (GVariant) events = NULL;
  uint16_t version;
  bool same;
  gsize n;

  if (!vr_state_check (state, "virtio-input", INPUT_STATE_TYPE, INPUT_STATE_VERSION, error))
    return false;
  g_variant_get (state, INPUT_STATE_TYPE, &version, NULL);
  events = g_variant_get_child_value (state, 1);
  n = g_variant_n_children (events);
  if (n > PENDING_MAX)
    return vr_state_fail (error, "virtio-input", "%" G_GSIZE_FORMAT " waiting events, at most "
                          "%u", n, PENDING_MAX);

  /* The selectors as the driver wrote them; what they select is ours to compute, and must be
   * what the driver read. */
  g_mutex_lock (&vio->lock);
  vio->config[offsetof (struct virtio_input_config, select)] = select;
  vio->config[offsetof (struct virtio_input_config, subsel)] = subsel;
  input_config_write (vio, 0, 2);
  same = memcmp (vio->config, config, vio->config_size) == 0;
  g_mutex_unlock (&vio->lock);
  if (!same)
    return vr_state_fail (error, "virtio-input", "the configuration for select %u subsel %u "
                          "differs from the snapshot's (another kind of device?)", select, subsel);

  g_mutex_lock (&self->ev_lock);
  self->head = 0;
  self->count = 0;
  for (gsize i = 0; i < n; i++)
    {
      VrInputEvent *ev = &self->pending[i];

      g_variant_get_child (events, i, "(qqi)", &ev->type, &ev->code, &ev->value);
      self->count++;
    }
  g_mutex_unlock (&self->ev_lock);
  return true;
}

static void
input_destroy (VrVirtio *vio)
{
  VrVirtioInput *self = (VrVirtioInput *) vio;

  g_mutex_clear (&self->ev_lock);
  g_free (self);
}

static const VrVirtioOps input_ops = {
  .name = "virtio-input",
  .device_id = VIRTIO_ID_INPUT,
  .pci_class = 0x098000,   /* input device, other */
  .config_write = input_config_write,
  .queue_notify = input_queue_notify,
  .reset = input_reset,
  .save = input_save,
  .load = input_load,
  .destroy = input_destroy,
};

VrDevice *
vr_virtio_input_new (const VrVirtioHost *host,
                     VrVirtioInputKind   kind,
                     GError            **error)
{
  VrVirtioInput *self = g_new0 (VrVirtioInput, 1);

  self->kind = kind;
  g_mutex_init (&self->ev_lock);
  if (!vr_virtio_init (&self->vio, &input_ops, host, 0, 2, 64,
                       sizeof (struct virtio_input_config), error)
      || !vr_virtio_plug (&self->vio, error))
    {
      vr_device_destroy (&self->vio.parent);
      return NULL;
    }
  return &self->vio.parent;
}
