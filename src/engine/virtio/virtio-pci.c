/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The virtio 1.x PCI transport (virtio spec 4.1), modern only.
 *
 * BAR 4 (64-bit memory, 16 KiB) holds the four register blocks the vendor capabilities point
 * at; BAR 1 (32-bit memory, 4 KiB) the MSI-X table and PBA:
 *
 *   BAR 4 + 0x0000  common configuration (struct virtio_pci_common_cfg)
 *   BAR 4 + 0x1000  ISR status (read clears, lowers INTx)
 *   BAR 4 + 0x2000  device-specific configuration
 *   BAR 4 + 0x3000  notifications: queue n at 0x3000 + 4 n (notify_off_multiplier 4)
 *   BAR 1 + 0x0000  MSI-X table (one vector per queue + one for configuration changes)
 *   BAR 1 + 0x0800  MSI-X PBA
 *
 * Each queue's notify address is an ioeventfd: KVM signals the queue's eventfd and the I/O
 * thread runs the device. When KVM cannot register it (or the guest writes with another
 * width), the notify handler signals the same eventfd, so the path is the same.
 *
 * Interrupts: with MSI-X enabled each vector is a KVM MSI route raised through an irqfd;
 * masked vectors collect a pending bit that is delivered on unmask. Without MSI-X, INTx on
 * the device's GSI (16-23, the DSDT's _PRT) with the ISR bits.
 */

#include "virtio-private.h"

#include "../hw/state.h"

#include <gio/gio.h>
#include <glib-unix.h>

#include <errno.h>
#include <linux/virtio_pci.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BAR_MSIX         1
#define BAR_REGS         4
#define REGS_SIZE        0x4000
#define COMMON_OFFSET    0x0000
#define ISR_OFFSET       0x1000
#define DEVICE_OFFSET    0x2000
#define NOTIFY_OFFSET    0x3000
#define NOTIFY_MULT      4
#define MSIX_BAR_SIZE    0x1000
#define MSIX_PBA_OFFSET  0x800

#define PCI_CAP_ID_VNDR  0x09
#define PCI_CAP_ID_MSIX  0x11
#define MSIX_ENABLE      0x8000
#define MSIX_MASKALL     0x4000

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_MODERN_BASE 0x1040

typedef struct
{
  uint64_t addr;
  uint32_t data;
  uint32_t ctrl;     /* bit 0: masked */
  int      gsi;
  bool     pending;
} MsixVector;

typedef struct
{
  unsigned      nvectors;
  MsixVector   *vectors;
  uint8_t       msix_cap;        /* config offset of the MSI-X capability */
  uint8_t       cfg_cap;         /* config offset of the PCI configuration access capability */
  uint16_t      msix_config;     /* vector for configuration changes */
  uint32_t      dfselect;
  uint32_t      gfselect;
  uint16_t      queue_select;
  uint8_t       isr;
  bool          intx_level;
  uint64_t      regs_addr;       /* BAR 4's decoded address, for the ioeventfds */

  /* Per queue: the eventfd kicked by the guest and its I/O thread source. */
  int           kick_fd[VR_VIRTIO_MAX_QUEUES];
  GSource      *kick_source[VR_VIRTIO_MAX_QUEUES];

  /* Held around every ops->queue_notify and across a device reset, so that a reset never
   * runs concurrently with the device's work on the I/O thread. */
  GMutex        notify_lock;
  bool          quiesced;        /* snapshot: kicks are not delivered (notify_lock) */
} Transport;

static inline Transport *
transport (VrVirtio *vio)
{
  return vio->transport;
}

/* ---- interrupts ------------------------------------------------------------------------- */

static bool
msix_enabled (VrVirtio *vio)
{
  Transport *t = transport (vio);

  return vr_pci_get_word (vio->pci.config, t->msix_cap + 2) & MSIX_ENABLE;
}

static bool
msix_function_masked (VrVirtio *vio)
{
  Transport *t = transport (vio);

  return vr_pci_get_word (vio->pci.config, t->msix_cap + 2) & MSIX_MASKALL;
}

/* Lock held: brings vector @v's KVM route in line with the table and the enable bits, and
 * delivers a pending message that became unmasked. Returns the GSI to fire, or -1. */
static int
msix_update (VrVirtio *vio,
             unsigned  v)
{
  Transport *t = transport (vio);
  MsixVector *vec = &t->vectors[v];
  bool live = msix_enabled (vio) && !msix_function_masked (vio) && !(vec->ctrl & 1);

  vr_irqchip_msi_set (vio->host.irq, vec->gsi, vec->addr, vec->data, live);
  if (live && vec->pending)
    {
      vec->pending = false;
      return vec->gsi;
    }
  return -1;
}

static bool
compute_intx (VrVirtio *vio)
{
  return transport (vio)->isr != 0 && !msix_enabled (vio)
         && !(vr_pci_get_word (vio->pci.config, VR_PCI_COMMAND) & VR_PCI_COMMAND_INTX_OFF);
}

static void
update_intx (VrVirtio *vio)
{
  Transport *t = transport (vio);
  bool level = compute_intx (vio);

  if (level != t->intx_level)
    {
      t->intx_level = level;
      vr_irq_set_level (vio->host.irq, vio->host.gsi, level);
    }
}

/* Lock held. Returns the GSI to fire after unlocking, or -1. */
static int
raise_vector (VrVirtio *vio,
              uint16_t  vector,
              uint8_t   isr_bit)
{
  Transport *t = transport (vio);
  MsixVector *vec;

  if (!msix_enabled (vio))
    {
      t->isr |= isr_bit;
      update_intx (vio);
      return -1;
    }
  if (vector >= t->nvectors)
    return -1;
  vec = &t->vectors[vector];
  if (msix_function_masked (vio) || (vec->ctrl & 1))
    {
      vec->pending = true;
      return -1;
    }
  return vec->gsi;
}

void
vr_virtio_queue_interrupt (VrVirtio    *vio,
                           VrVirtqueue *vq)
{
  int gsi;

  g_mutex_lock (&vio->lock);
  gsi = raise_vector (vio, vq->msix_vector, 1);
  g_mutex_unlock (&vio->lock);
  if (gsi >= 0)
    vr_irqchip_msi_fire (vio->host.irq, gsi);
}

void
vr_virtio_config_changed (VrVirtio *vio)
{
  int gsi;

  vio->config_generation++;
  if (!(vio->status & VIRTIO_CONFIG_S_DRIVER_OK))
    return;
  gsi = raise_vector (vio, transport (vio)->msix_config, 2);
  if (gsi >= 0)
    vr_irqchip_msi_fire (vio->host.irq, gsi);
}

/* Lock held: DEVICE_NEEDS_RESET, logged once; the driver hears of it by a config interrupt
 * once it is running (vr_virtio_config_changed() sends none before DRIVER_OK). */
static void
mark_broken (VrVirtio   *vio,
             const char *reason)
{
  if (vio->broken)
    return;
  vio->broken = true;
  g_warning ("%s (00:%02x.0): the guest broke the device: %s; it needs a reset",
             vio->ops->name, vio->host.slot, reason);
  vio->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
  vr_virtio_config_changed (vio);
}

void
vr_virtio_set_broken (VrVirtio   *vio,
                      const char *fmt,
                      ...)
{
  g_autofree char *reason = NULL;
  va_list ap;

  va_start (ap, fmt);
  reason = g_strdup_vprintf (fmt, ap);
  va_end (ap);

  g_mutex_lock (&vio->lock);
  mark_broken (vio, reason);
  g_mutex_unlock (&vio->lock);
}

bool
vr_virtio_has_feature (VrVirtio *vio,
                       unsigned  bit)
{
  return bit < 64 && (vio->driver_features & (1ull << bit));
}

bool
vr_virtio_is_running (VrVirtio *vio)
{
  bool running;

  g_mutex_lock (&vio->lock);
  running = (vio->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vio->broken;
  g_mutex_unlock (&vio->lock);
  return running;
}

VrVirtqueue *
vr_virtio_get_queue (VrVirtio *vio,
                     unsigned  index)
{
  return index < vio->num_queues ? vio->queues[index] : NULL;
}

/* ---- reset ------------------------------------------------------------------------------ */

/* Without vio->lock. The device first (it drains its work), then the transport. */
static void
device_reset (VrVirtio *vio)
{
  Transport *t = transport (vio);

  g_mutex_lock (&t->notify_lock);
  if (vio->ops->reset)
    vio->ops->reset (vio);
  for (unsigned q = 0; q < vio->num_queues; q++)
    vr_virtq_reset (vio->queues[q]);

  t->quiesced = false;
  g_mutex_lock (&vio->lock);
  vio->status = 0;
  vio->broken = false;
  vio->driver_features = 0;
  t->dfselect = t->gfselect = 0;
  t->queue_select = 0;
  t->msix_config = VR_VIRTIO_NO_VECTOR;
  t->isr = 0;
  update_intx (vio);
  g_mutex_unlock (&vio->lock);
  g_mutex_unlock (&t->notify_lock);
}

/* ---- common configuration --------------------------------------------------------------- */

#define COMMON_SIZE 0x38   /* up to and including queue_used */

/* Lock held: the common configuration as the guest sees it now. */
static void
common_image (VrVirtio *vio,
              uint8_t   img[COMMON_SIZE])
{
  Transport *t = transport (vio);
  VrVirtqueue *vq = t->queue_select < vio->num_queues ? vio->queues[t->queue_select] : NULL;
  uint64_t features = vio->host_features;

  memset (img, 0, COMMON_SIZE);
  vr_pci_set_long (img, 0, t->dfselect);
  vr_pci_set_long (img, 4, t->dfselect < 2 ? (uint32_t) (features >> (32 * t->dfselect)) : 0);
  vr_pci_set_long (img, 8, t->gfselect);
  vr_pci_set_long (img, 12, t->gfselect < 2
                              ? (uint32_t) (vio->driver_features >> (32 * t->gfselect)) : 0);
  vr_pci_set_word (img, 16, t->msix_config);
  vr_pci_set_word (img, 18, (uint16_t) vio->num_queues);
  img[20] = vio->status;
  img[21] = vio->config_generation;
  vr_pci_set_word (img, 22, t->queue_select);
  if (vq != NULL)
    {
      vr_pci_set_word (img, 24, vq->size);
      vr_pci_set_word (img, 26, vq->msix_vector);
      vr_pci_set_word (img, 28, vq->ready ? 1 : 0);
      vr_pci_set_word (img, 30, (uint16_t) vq->index);
      vr_pci_set_long (img, 32, (uint32_t) vq->desc_addr);
      vr_pci_set_long (img, 36, (uint32_t) (vq->desc_addr >> 32));
      vr_pci_set_long (img, 40, (uint32_t) vq->avail_addr);
      vr_pci_set_long (img, 44, (uint32_t) (vq->avail_addr >> 32));
      vr_pci_set_long (img, 48, (uint32_t) vq->used_addr);
      vr_pci_set_long (img, 52, (uint32_t) (vq->used_addr >> 32));
    }
}

static uint64_t
get64 (const uint8_t *img, unsigned off)
{
  return vr_pci_get_long (img, off) | (uint64_t) vr_pci_get_long (img, off + 4) << 32;
}

static void kick (VrVirtio *vio, unsigned queue);

/* Lock held. Returns true when the driver asked for a device reset. */
static bool
write_status (VrVirtio *vio,
              uint8_t   status)
{
  uint8_t old = vio->status;

  if (status == 0)
    return true;
  /* Bits only go up until a reset; FEATURES_OK only if we accept the features. */
  if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK))
    {
      uint64_t f = vio->driver_features;
      bool ok = (f & ~vio->host_features) == 0 && (f & (1ull << VIRTIO_F_VERSION_1))
                && (vio->ops->features_ok == NULL || vio->ops->features_ok (vio));

      if (!ok)
        status &= (uint8_t) ~VIRTIO_CONFIG_S_FEATURES_OK;
    }
  if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)
      && !(status & VIRTIO_CONFIG_S_FEATURES_OK))
    status &= (uint8_t) ~VIRTIO_CONFIG_S_DRIVER_OK;
  vio->status = old | status;
  if ((vio->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK))
    {
      if (vio->ops->driver_ok)
        vio->ops->driver_ok (vio);
      /* A kick before DRIVER_OK was dropped: look at every queue once now. */
      for (unsigned q = 0; q < vio->num_queues; q++)
        if (vio->queues[q]->ready)
          kick (vio, q);
    }
  return false;
}

static void
enable_queue (VrVirtio    *vio,
              VrVirtqueue *vq)
{
  g_autoptr (GError) error = NULL;

  if (!(vio->status & VIRTIO_CONFIG_S_FEATURES_OK))
    return;
  if (!vr_virtq_enable (vq, vr_virtio_has_feature (vio, VIRTIO_RING_F_EVENT_IDX),
                        vr_virtio_has_feature (vio, VIRTIO_RING_F_INDIRECT_DESC), &error))
    mark_broken (vio, error->message);
}

static void
common_write (VrVirtio      *vio,
              uint32_t       offset,
              const uint8_t *data,
              uint32_t       len,
              bool          *reset)
{
  Transport *t = transport (vio);
  uint8_t old[COMMON_SIZE], img[COMMON_SIZE];
  VrVirtqueue *vq;
  bool features_open = !(vio->status & VIRTIO_CONFIG_S_FEATURES_OK);

  common_image (vio, old);
  memcpy (img, old, sizeof img);
  memcpy (img + offset, data, len);
  vq = t->queue_select < vio->num_queues ? vio->queues[t->queue_select] : NULL;

#define CHANGED(o, n) (offset < (o) + (n) && offset + len > (o))
  if (CHANGED (0, 4))
    t->dfselect = vr_pci_get_long (img, 0);
  if (CHANGED (8, 4))
    t->gfselect = vr_pci_get_long (img, 8);
  if (CHANGED (12, 4) && features_open && t->gfselect < 2)
    {
      uint64_t mask = 0xffffffffull << (32 * t->gfselect);

      vio->driver_features = (vio->driver_features & ~mask)
                             | ((uint64_t) vr_pci_get_long (img, 12) << (32 * t->gfselect));
    }
  if (CHANGED (16, 2))
    t->msix_config = vr_pci_get_word (img, 16);
  if (CHANGED (20, 1))
    *reset = write_status (vio, img[20]);
  if (CHANGED (22, 2))
    t->queue_select = vr_pci_get_word (img, 22);
  /* Queue registers: only for a queue that exists and is not enabled yet. */
  if (vq != NULL && !vq->ready && !CHANGED (22, 2))
    {
      if (CHANGED (24, 2))
        {
          uint16_t size = vr_pci_get_word (img, 24);

          vq->size = size <= vq->max_size ? size : vq->max_size;
        }
      if (CHANGED (26, 2))
        {
          uint16_t v = vr_pci_get_word (img, 26);

          vq->msix_vector = v < t->nvectors ? v : VR_VIRTIO_NO_VECTOR;
        }
      if (CHANGED (32, 8))
        vq->desc_addr = get64 (img, 32);
      if (CHANGED (40, 8))
        vq->avail_addr = get64 (img, 40);
      if (CHANGED (48, 8))
        vq->used_addr = get64 (img, 48);
      if (CHANGED (28, 2) && vr_pci_get_word (img, 28) == 1)
        enable_queue (vio, vq);
    }
#undef CHANGED
}

static void
common_access (VrVirtio *vio,
               uint32_t  offset,
               uint8_t  *data,
               uint32_t  len,
               bool      is_write)
{
  uint8_t img[COMMON_SIZE];
  bool reset = false;

  if (offset >= COMMON_SIZE || len > COMMON_SIZE - offset)
    {
      if (!is_write)
        memset (data, 0, len);
      return;
    }
  g_mutex_lock (&vio->lock);
  if (is_write)
    common_write (vio, offset, data, len, &reset);
  else
    {
      common_image (vio, img);
      memcpy (data, img + offset, len);
    }
  g_mutex_unlock (&vio->lock);
  if (reset)
    device_reset (vio);
}

/* ---- BAR handlers ----------------------------------------------------------------------- */

static void
kick (VrVirtio *vio,
      unsigned  queue)
{
  uint64_t one = 1;

  if (queue < vio->num_queues && write (transport (vio)->kick_fd[queue], &one, sizeof one) < 0)
    g_debug ("kick: %s", g_strerror (errno));
}

static void
regs_access (void     *opaque,
             uint64_t  offset,
             uint8_t  *data,
             uint32_t  len,
             bool      is_write)
{
  VrVirtio *vio = opaque;
  Transport *t = transport (vio);

  if (offset < ISR_OFFSET)
    common_access (vio, (uint32_t) offset, data, len, is_write);
  else if (offset < DEVICE_OFFSET)
    {
      if (is_write)
        return;
      memset (data, 0, len);
      if (offset != ISR_OFFSET)
        return;
      g_mutex_lock (&vio->lock);
      data[0] = t->isr;
      t->isr = 0;
      update_intx (vio);
      g_mutex_unlock (&vio->lock);
    }
  else if (offset < NOTIFY_OFFSET)
    {
      uint64_t off = offset - DEVICE_OFFSET;

      g_mutex_lock (&vio->lock);
      if (off >= vio->config_size || len > vio->config_size - off)
        {
          if (!is_write)
            memset (data, 0, len);
        }
      else if (!is_write)
        memcpy (data, vio->config + off, len);
      else if (vio->ops->config_write)
        {
          memcpy (vio->config + off, data, len);
          vio->ops->config_write (vio, (uint32_t) off, len);
        }
      g_mutex_unlock (&vio->lock);
    }
  else if (is_write)
    {
      uint64_t off = offset - NOTIFY_OFFSET;

      /* Where no ioeventfd caught the write. */
      if (off % NOTIFY_MULT == 0)
        kick (vio, (unsigned) (off / NOTIFY_MULT));
    }
  else
    memset (data, 0, len);
}

static void
msix_access (void     *opaque,
             uint64_t  offset,
             uint8_t  *data,
             uint32_t  len,
             bool      is_write)
{
  VrVirtio *vio = opaque;
  Transport *t = transport (vio);
  int fire = -1;

  if (!is_write)
    memset (data, 0, len);
  /* Aligned dword (or qword) accesses only, as the PCI spec allows. */
  if ((len != 4 && len != 8) || (offset & 3))
    return;
  if (len == 8)
    {
      msix_access (opaque, offset, data, 4, is_write);
      msix_access (opaque, offset + 4, data + 4, 4, is_write);
      return;
    }

  g_mutex_lock (&vio->lock);
  if (offset < MSIX_PBA_OFFSET)
    {
      unsigned v = (unsigned) (offset / 16), reg = (unsigned) (offset % 16);
      MsixVector *vec;

      if (v >= t->nvectors)
        goto out;
      vec = &t->vectors[v];
      if (!is_write)
        {
          uint32_t val = reg == 0 ? (uint32_t) vec->addr : reg == 4 ? (uint32_t) (vec->addr >> 32)
                       : reg == 8 ? vec->data : vec->ctrl;

          vr_pci_set_long (data, 0, val);
          goto out;
        }
      switch (reg)
        {
        case 0:
          vec->addr = (vec->addr & ~0xffffffffull) | vr_pci_get_long (data, 0);
          break;
        case 4:
          vec->addr = (vec->addr & 0xffffffffull) | (uint64_t) vr_pci_get_long (data, 0) << 32;
          break;
        case 8:
          vec->data = vr_pci_get_long (data, 0);
          break;
        default:
          vec->ctrl = vr_pci_get_long (data, 0) & 1;
          break;
        }
      fire = msix_update (vio, v);
    }
  else if (!is_write)
    {
      unsigned first = (unsigned) (offset - MSIX_PBA_OFFSET) * 8;
      uint32_t bits = 0;

      for (unsigned i = 0; i < 32 && first + i < t->nvectors; i++)
        if (t->vectors[first + i].pending)
          bits |= 1u << i;
      vr_pci_set_long (data, 0, bits);
    }
out:
  g_mutex_unlock (&vio->lock);
  if (fire >= 0)
    vr_irqchip_msi_fire (vio->host.irq, fire);
}

/* ---- PCI hooks -------------------------------------------------------------------------- */

static void
update_ioeventfds (VrVirtio *vio)
{
  Transport *t = transport (vio);

  for (unsigned q = 0; q < vio->num_queues; q++)
    {
      vr_irqchip_ioeventfd_remove (vio->host.irq, t->kick_fd[q]);
      if (t->regs_addr != VR_PCI_BAR_UNMAPPED)
        vr_irqchip_ioeventfd_add (vio->host.irq, false,
                                  t->regs_addr + NOTIFY_OFFSET + NOTIFY_MULT * q, 2,
                                  t->kick_fd[q]);
    }
}

static void
pci_bar_update (VrPciFunction *fn,
                unsigned       bar,
                uint64_t       addr)
{
  VrVirtio *vio = fn->opaque;

  if (bar != BAR_REGS)
    return;
  transport (vio)->regs_addr = addr;
  update_ioeventfds (vio);
}

/* The VIRTIO_PCI_CAP_PCI_CFG window: a BAR access through configuration space, for
 * firmware that cannot reach the BAR (spec 4.1.4.8). */
static uint32_t
cfg_window (VrVirtio *vio,
            uint32_t  value,
            bool      is_write)
{
  Transport *t = transport (vio);
  const uint8_t *cap = vio->pci.config + t->cfg_cap;
  uint8_t bar = cap[4];
  uint32_t offset = vr_pci_get_long (cap, 8), len = vr_pci_get_long (cap, 12);
  uint8_t data[4];

  if ((len != 1 && len != 2 && len != 4) || offset % len)
    return 0;
  vr_pci_set_long (data, 0, value);
  if (bar == BAR_REGS && offset < REGS_SIZE && len <= REGS_SIZE - offset)
    regs_access (vio, offset, data, len, is_write);
  else if (bar == BAR_MSIX && offset < MSIX_BAR_SIZE && len == 4)
    msix_access (vio, offset, data, len, is_write);
  else
    memset (data, 0, sizeof data);
  return is_write ? 0 : vr_pci_get_long (data, 0) & (len == 4 ? 0xffffffffu : (1u << (8 * len)) - 1);
}

static uint32_t
pci_config_read (VrPciFunction *fn,
                 uint32_t       offset,
                 uint32_t       len,
                 uint32_t       value)
{
  VrVirtio *vio = fn->opaque;
  Transport *t = transport (vio);

  if (t->cfg_cap && offset == t->cfg_cap + 16u)
    return cfg_window (vio, 0, false);
  return value;
}

static void
pci_config_write (VrPciFunction *fn,
                  uint32_t       offset,
                  uint32_t       len,
                  uint32_t       value)
{
  VrVirtio *vio = fn->opaque;
  Transport *t = transport (vio);
  int fire[VR_VIRTIO_MAX_QUEUES + 1];
  unsigned nfire = 0;

  if (t->cfg_cap && offset == t->cfg_cap + 16u)
    {
      cfg_window (vio, value, true);
      return;
    }
  /* MSI-X enable / function mask, or the INTx disable bit. */
  if ((offset <= t->msix_cap + 3u && offset + len > t->msix_cap + 2u)
      || (offset <= VR_PCI_COMMAND + 1u && offset + len > VR_PCI_COMMAND))
    {
      g_mutex_lock (&vio->lock);
      for (unsigned v = 0; v < t->nvectors; v++)
        {
          int gsi = msix_update (vio, v);

          if (gsi >= 0 && nfire < G_N_ELEMENTS (fire))
            fire[nfire++] = gsi;
        }
      if (msix_enabled (vio))
        t->isr = 0;
      update_intx (vio);
      g_mutex_unlock (&vio->lock);
      for (unsigned i = 0; i < nfire; i++)
        vr_irqchip_msi_fire (vio->host.irq, fire[i]);
    }
}

static const VrPciFunctionOps pci_ops = {
  .config_read = pci_config_read,
  .config_write = pci_config_write,
  .bar_update = pci_bar_update,
};

/* ---- kicks on the I/O thread ------------------------------------------------------------ */

typedef struct
{
  VrVirtio *vio;
  unsigned  queue;
} KickData;

static gboolean
on_kick (int          fd,
         GIOCondition condition,
         gpointer     user_data)
{
  KickData *k = user_data;
  VrVirtio *vio = k->vio;
  Transport *t = transport (vio);
  uint64_t count;

  if (read (fd, &count, sizeof count) != sizeof count)
    return G_SOURCE_CONTINUE;
  g_mutex_lock (&t->notify_lock);
  /* Quiesced for a snapshot: the kick is dropped; resume (or load) looks at every queue. */
  if (vio->ops->queue_notify && !t->quiesced && vr_virtio_is_running (vio)
      && vr_virtq_is_ready (vio->queues[k->queue]))
    vio->ops->queue_notify (vio, k->queue);
  g_mutex_unlock (&t->notify_lock);
  return G_SOURCE_CONTINUE;
}

/* ---- the VrDevice ----------------------------------------------------------------------- */

static void
virtio_device_reset (VrDevice *dev)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);

  device_reset (vio);
  g_mutex_lock (&vio->lock);
  for (unsigned v = 0; v < t->nvectors; v++)
    {
      t->vectors[v] = (MsixVector) { .ctrl = 1, .gsi = t->vectors[v].gsi };
      vr_irqchip_msi_set (vio->host.irq, t->vectors[v].gsi, 0, 0, false);
    }
  g_mutex_unlock (&vio->lock);
}

/* ---- snapshots -------------------------------------------------------------------------- */

/*
 * The transport's state, version 1: (version, host features (must be the device's own),
 * driver features, device status, broken, configuration generation, device and driver
 * feature selects, queue select, ISR, configuration vector, the device configuration bytes,
 * the MSI-X table as (address, data, control, pending), every queue as (size, vector, enabled,
 * descriptor, driver and device ring addresses, last available index, used index, last
 * signalled used index, whether that one is valid, broken), the device's own state (see
 * VrVirtioOps.save)). The MSI-X enable and function-mask bits and the command register are
 * in configuration space, which the PCI host restores first.
 *
 * Loading checks everything before changing anything, the queues as the driver's setup is
 * checked (vr_virtq_check_state()). Then the MSI routes are installed again from the table,
 * the INTx line re-asserted, driver_ok replayed for a running device and every enabled queue
 * kicked once, so buffers the driver added before the snapshot are seen.
 */
#define VIRTIO_STATE_VERSION 1
#define VIRTIO_STATE_TYPE    "(qttybyuuqyq@aya(tuub)a(qqbtttqqqbb)mv)"
#define QUEUE_STATE_TYPE     "(qqbtttqqqbb)"

#define KNOWN_STATUS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER                  \
                      | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK             \
                      | VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

/* Kicks every enabled queue of a running device (on its I/O thread, through the eventfds). */
static void
kick_ready_queues (VrVirtio *vio)
{
  if (!vr_virtio_is_running (vio))
    return;
  for (unsigned q = 0; q < vio->num_queues; q++)
    if (vr_virtq_is_ready (vio->queues[q]))
      kick (vio, q);
}

static void
virtio_device_quiesce (VrDevice *dev)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);

  g_mutex_lock (&t->notify_lock);
  t->quiesced = true;
  g_mutex_unlock (&t->notify_lock);
  for (unsigned q = 0; q < vio->num_queues; q++)
    vr_virtq_set_quiesced (vio->queues[q], true);
  if (vio->ops->quiesce)
    vio->ops->quiesce (vio);
}

static void
virtio_device_resume (VrDevice *dev)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);

  for (unsigned q = 0; q < vio->num_queues; q++)
    vr_virtq_set_quiesced (vio->queues[q], false);
  g_mutex_lock (&t->notify_lock);
  t->quiesced = false;
  g_mutex_unlock (&t->notify_lock);
  if (vio->ops->resume)
    vio->ops->resume (vio);
  /* Kicks dropped while quiesced. */
  kick_ready_queues (vio);
}

static GVariant *
virtio_device_save (VrDevice *dev)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);
  GVariant *own = vio->ops->save ? vio->ops->save (vio) : NULL;
  GVariantBuilder vectors, queues;
  GVariant *v;

  g_variant_builder_init (&vectors, G_VARIANT_TYPE ("a(tuub)"));
  g_variant_builder_init (&queues, G_VARIANT_TYPE ("a" QUEUE_STATE_TYPE));
  g_mutex_lock (&vio->lock);
  for (unsigned i = 0; i < t->nvectors; i++)
    g_variant_builder_add (&vectors, "(tuub)", t->vectors[i].addr, t->vectors[i].data,
                           t->vectors[i].ctrl, t->vectors[i].pending);
  for (unsigned q = 0; q < vio->num_queues; q++)
    {
      VrVirtqState st;

      vr_virtq_get_state (vio->queues[q], &st);
      g_variant_builder_add (&queues, QUEUE_STATE_TYPE, st.size, st.msix_vector, st.ready,
                             st.desc_addr, st.avail_addr, st.used_addr, st.last_avail,
                             st.used_idx, st.signalled_used, st.signalled_used_valid, st.broken);
    }
  v = g_variant_new (VIRTIO_STATE_TYPE, VIRTIO_STATE_VERSION, vio->host_features,
                     vio->driver_features, vio->status, vio->broken, vio->config_generation,
                     t->dfselect, t->gfselect, t->queue_select, t->isr, t->msix_config,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, vio->config,
                                                vio->config_size, 1),
                     &vectors, &queues, own);
  g_mutex_unlock (&vio->lock);
  return v;
}

static void virtio_device_reset (VrDevice *dev);

static bool
virtio_device_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);
  g_autofree char *name = g_strdup_printf ("%s (00:%02x.0)", vio->ops->name, vio->host.slot);
  g_autoptr (GVariant) config = NULL, vectors = NULL, queues = NULL, own = NULL;
  g_autofree VrVirtqState *qs = NULL;
  g_autoptr (GError) local = NULL;
  uint64_t host_features, driver_features;
  uint32_t dfselect, gfselect;
  uint16_t version, queue_select, msix_config;
  uint8_t status, generation, isr;
  gboolean broken;
  const uint8_t *config_bytes;
  int fire[VR_VIRTIO_MAX_QUEUES + 1];
  unsigned nfire = 0;
  bool event_idx, indirect, features_refused;
  gsize n;

  if (!vr_state_check (state, name, VIRTIO_STATE_TYPE, VIRTIO_STATE_VERSION, error))
    return false;
  g_variant_get (state, VIRTIO_STATE_TYPE, &version, &host_features, &driver_features, &status,
                 &broken, &generation, &dfselect, &gfselect, &queue_select, &isr, &msix_config,
                 &config, NULL, NULL, &own);
  vectors = g_variant_get_child_value (state, 12);
  queues = g_variant_get_child_value (state, 13);

  /* The device and the driver's negotiation. */
  if (host_features != vio->host_features)
    return vr_state_fail (error, name, "the device offered features %#" G_GINT64_MODIFIER "x, "
                          "it offers %#" G_GINT64_MODIFIER "x now (another device, or another "
                          "version?)", host_features, vio->host_features);
  if (driver_features & ~host_features)
    return vr_state_fail (error, name, "driver features %#" G_GINT64_MODIFIER "x were never "
                          "offered", driver_features);
  if ((status & ~KNOWN_STATUS)
      || ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(status & VIRTIO_CONFIG_S_FEATURES_OK)))
    return vr_state_fail (error, name, "device status %#x", status);
  if ((status & VIRTIO_CONFIG_S_FEATURES_OK)
      && !(driver_features & (1ull << VIRTIO_F_VERSION_1)))
    return vr_state_fail (error, name, "features accepted without VERSION_1");
  if (!broken != !(status & VIRTIO_CONFIG_S_NEEDS_RESET))
    return vr_state_fail (error, name, "broken %d with device status %#x", broken, status);
  if (isr & ~3u)
    return vr_state_fail (error, name, "ISR %#x", isr);
  config_bytes = g_variant_get_fixed_array (config, &n, 1);
  if (n != vio->config_size)
    return vr_state_fail (error, name, "%" G_GSIZE_FORMAT " bytes of device configuration, "
                          "expected %u", n, vio->config_size);
  if (vio->ops->load == NULL && n > 0 && memcmp (config_bytes, vio->config, n) != 0)
    return vr_state_fail (error, name, "the device configuration differs from the snapshot's "
                          "(another disk, or another network address?)");

  /* MSI-X table. */
  if (g_variant_n_children (vectors) != t->nvectors)
    return vr_state_fail (error, name, "%" G_GSIZE_FORMAT " MSI-X vectors, expected %u",
                          g_variant_n_children (vectors), t->nvectors);
  for (unsigned i = 0; i < t->nvectors; i++)
    {
      uint64_t addr;
      uint32_t data, ctrl;
      gboolean pending;

      g_variant_get_child (vectors, i, "(tuub)", &addr, &data, &ctrl, &pending);
      if (ctrl & ~1u)
        return vr_state_fail (error, name, "MSI-X vector %u control %#x", i, ctrl);
    }

  /* Queues, checked as the driver's setup is. */
  if (g_variant_n_children (queues) != vio->num_queues)
    return vr_state_fail (error, name, "%" G_GSIZE_FORMAT " queues, expected %u",
                          g_variant_n_children (queues), vio->num_queues);
  qs = g_new0 (VrVirtqState, vio->num_queues);
  for (unsigned q = 0; q < vio->num_queues; q++)
    {
      VrVirtqState *st = &qs[q];
      gboolean ready, valid, qbroken;

      g_variant_get_child (queues, q, QUEUE_STATE_TYPE, &st->size, &st->msix_vector, &ready,
                           &st->desc_addr, &st->avail_addr, &st->used_addr, &st->last_avail,
                           &st->used_idx, &st->signalled_used, &valid, &qbroken);
      st->ready = ready;
      st->signalled_used_valid = valid;
      st->broken = qbroken;
      if (st->msix_vector >= t->nvectors && st->msix_vector != VR_VIRTIO_NO_VECTOR)
        return vr_state_fail (error, name, "queue %u: MSI-X vector %u of %u", q, st->msix_vector,
                              t->nvectors);
      if (st->ready && !(status & VIRTIO_CONFIG_S_FEATURES_OK))
        return vr_state_fail (error, name, "queue %u enabled before the features were", q);
      if (st->broken && !broken)
        return vr_state_fail (error, name, "queue %u broken in a working device", q);
      if (!vr_virtq_check_state (vio->queues[q], st, &local))
        return vr_state_fail (error, name, "%s", local->message);
    }

  /* Apply: the transport... */
  g_mutex_lock (&t->notify_lock);
  g_mutex_lock (&vio->lock);
  vio->driver_features = driver_features;
  vio->status = status;
  vio->broken = broken;
  vio->config_generation = generation;
  t->dfselect = dfselect;
  t->gfselect = gfselect;
  t->queue_select = queue_select;
  t->isr = isr;
  t->msix_config = msix_config;
  t->quiesced = false;
  for (unsigned i = 0; i < t->nvectors; i++)
    {
      MsixVector *vec = &t->vectors[i];
      gboolean pending;

      g_variant_get_child (vectors, i, "(tuub)", &vec->addr, &vec->data, &vec->ctrl, &pending);
      vec->pending = pending;
    }
  event_idx = vr_virtio_has_feature (vio, VIRTIO_RING_F_EVENT_IDX);
  indirect = vr_virtio_has_feature (vio, VIRTIO_RING_F_INDIRECT_DESC);
  for (unsigned q = 0; q < vio->num_queues; q++)
    vr_virtq_set_state (vio->queues[q], &qs[q], event_idx, indirect);
  if (vio->ops->load == NULL && vio->config_size > 0)
    memcpy (vio->config, config_bytes, vio->config_size);
  g_mutex_unlock (&vio->lock);
  g_mutex_unlock (&t->notify_lock);

  /* ...then the device. */
  g_mutex_lock (&vio->lock);
  features_refused = (status & VIRTIO_CONFIG_S_FEATURES_OK) && vio->ops->features_ok
                     && !vio->ops->features_ok (vio);
  g_mutex_unlock (&vio->lock);
  if (features_refused)
    {
      virtio_device_reset (dev);
      return vr_state_fail (error, name, "the device refuses the saved features %#"
                            G_GINT64_MODIFIER "x", driver_features);
    }
  if (vio->ops->load)
    {
      if (!vio->ops->load (vio, own, config_bytes, error))
        {
          virtio_device_reset (dev);
          return false;
        }
    }
  else if (own != NULL)
    {
      virtio_device_reset (dev);
      return vr_state_fail (error, name, "device state for a device that has none");
    }

  /* Interrupts: routes from the table, the INTx line at its level. */
  g_mutex_lock (&vio->lock);
  for (unsigned v = 0; v < t->nvectors; v++)
    {
      int gsi = msix_update (vio, v);

      if (gsi >= 0 && nfire < G_N_ELEMENTS (fire))
        fire[nfire++] = gsi;
    }
  t->intx_level = compute_intx (vio);
  vr_irq_restore_level (vio->host.irq, vio->host.gsi, t->intx_level);
  /* A running device goes on as after DRIVER_OK. */
  if ((vio->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vio->broken && vio->ops->driver_ok)
    vio->ops->driver_ok (vio);
  g_mutex_unlock (&vio->lock);
  for (unsigned i = 0; i < nfire; i++)
    vr_irqchip_msi_fire (vio->host.irq, fire[i]);
  kick_ready_queues (vio);
  return true;
}

static void
virtio_device_destroy (VrDevice *dev)
{
  VrVirtio *vio = (VrVirtio *) dev;
  Transport *t = transport (vio);

  /* The vCPUs and the I/O thread are gone; let the device finish its own work (a reset
   * drains it) before its queues go away. */
  if (vio->ops->reset)
    vio->ops->reset (vio);
  if (t != NULL)
    {
      for (unsigned q = 0; q < vio->num_queues; q++)
        {
          if (t->kick_source[q])
            {
              g_source_destroy (t->kick_source[q]);
              g_source_unref (t->kick_source[q]);
            }
          if (t->kick_fd[q] >= 0)
            {
              vr_irqchip_ioeventfd_remove (vio->host.irq, t->kick_fd[q]);
              close (t->kick_fd[q]);
            }
        }
      if (vio->pci.plugged)
        vr_pci_host_remove_function (vio->host.pci_host, &vio->pci);
      for (unsigned v = 0; v < t->nvectors; v++)
        if (t->vectors[v].gsi >= 0)
          vr_irqchip_msi_free (vio->host.irq, t->vectors[v].gsi);
      g_free (t->vectors);
      g_mutex_clear (&t->notify_lock);
      g_free (t);
    }
  for (unsigned q = 0; q < vio->num_queues; q++)
    vr_virtq_free (vio->queues[q]);
  g_free (vio->config);
  g_mutex_clear (&vio->lock);
  if (vio->ops->destroy)
    vio->ops->destroy (vio);
}

static const VrDeviceOps virtio_device_ops = {
  .name = "virtio-pci",
  .reset = virtio_device_reset,
  .quiesce = virtio_device_quiesce,
  .save = virtio_device_save,
  .load = virtio_device_load,
  .resume = virtio_device_resume,
  .destroy = virtio_device_destroy,
};

/* ---- setup ------------------------------------------------------------------------------ */

static uint8_t
add_virtio_cap (VrVirtio      *vio,
                uint8_t        type,
                uint8_t        bar,
                uint32_t       offset,
                uint32_t       length,
                const uint8_t *extra,
                size_t         extra_len,
                const uint8_t *wmask)
{
  uint8_t body[32] = { 0 };
  size_t len = 14 + extra_len;   /* after cap_vndr and cap_next */

  g_assert (len <= sizeof body);
  body[0] = (uint8_t) (len + 2);   /* cap_len */
  body[1] = type;
  body[2] = bar;
  vr_pci_set_long (body, 6, offset);
  vr_pci_set_long (body, 10, length);
  if (extra_len)
    memcpy (body + 14, extra, extra_len);
  return vr_pci_function_add_capability (&vio->pci, PCI_CAP_ID_VNDR, body, len, wmask);
}

bool
vr_virtio_init (VrVirtio           *vio,
                const VrVirtioOps  *ops,
                const VrVirtioHost *host,
                uint64_t            features,
                unsigned            num_queues,
                uint16_t            queue_max_size,
                uint32_t            config_size,
                GError            **error)
{
  Transport *t;
  uint8_t notify_extra[4], cfg_extra[4] = { 0 }, cfg_wmask[18] = { 0 };
  uint8_t msix_body[10], msix_wmask[10] = { 0 };

  g_return_val_if_fail (num_queues > 0 && num_queues <= VR_VIRTIO_MAX_QUEUES, false);
  g_return_val_if_fail (queue_max_size > 0 && queue_max_size <= VR_VIRTQ_MAX_SIZE, false);
  g_return_val_if_fail (config_size <= NOTIFY_OFFSET - DEVICE_OFFSET, false);

  vio->parent.ops = &virtio_device_ops;
  vio->ops = ops;
  vio->host = *host;
  g_mutex_init (&vio->lock);
  vio->host_features = features | (1ull << VIRTIO_F_VERSION_1)
                       | (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX);
  vio->config_size = config_size;
  vio->config = g_malloc0 (MAX (config_size, 1));
  vio->num_queues = num_queues;

  t = g_new0 (Transport, 1);
  vio->transport = t;
  g_mutex_init (&t->notify_lock);
  t->msix_config = VR_VIRTIO_NO_VECTOR;
  t->regs_addr = VR_PCI_BAR_UNMAPPED;
  t->nvectors = num_queues + 1;
  t->vectors = g_new0 (MsixVector, t->nvectors);
  for (unsigned v = 0; v < t->nvectors; v++)
    {
      t->vectors[v].ctrl = 1;
      t->vectors[v].gsi = -1;
    }
  for (unsigned q = 0; q < num_queues; q++)
    t->kick_fd[q] = -1;

  for (unsigned q = 0; q < num_queues; q++)
    {
      vio->queues[q] = vr_virtq_new (vio, q, queue_max_size);
      t->kick_fd[q] = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (t->kick_fd[q] < 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "Cannot create an eventfd: %s", g_strerror (errno));
          return false;
        }
    }
  for (unsigned v = 0; v < t->nvectors; v++)
    if ((t->vectors[v].gsi = vr_irqchip_msi_alloc (host->irq, error)) < 0)
      return false;

  vr_pci_function_init (&vio->pci, VIRTIO_PCI_VENDOR, VIRTIO_PCI_MODERN_BASE + ops->device_id,
                        ops->pci_class, 1, &pci_ops, vio);
  vr_pci_function_set_subsystem (&vio->pci, VIRTIO_PCI_VENDOR, 0x40);
  vio->pci.config[VR_PCI_INTERRUPT_PIN] = 1;
  vio->pci.config[VR_PCI_INTERRUPT_LINE] = (uint8_t) host->gsi;
  if (!vr_pci_function_set_bar (&vio->pci, BAR_MSIX, VR_PCI_BAR_MEM32, MSIX_BAR_SIZE, false,
                                msix_access, vio, error)
      || !vr_pci_function_set_bar (&vio->pci, BAR_REGS, VR_PCI_BAR_MEM64, REGS_SIZE, true,
                                   regs_access, vio, error))
    return false;

  /* MSI-X: table in BAR 1 at 0, PBA at 0x800. */
  vr_pci_set_word (msix_body, 0, (uint16_t) (t->nvectors - 1));
  vr_pci_set_long (msix_body, 2, 0 | BAR_MSIX);
  vr_pci_set_long (msix_body, 6, MSIX_PBA_OFFSET | BAR_MSIX);
  msix_wmask[1] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
  t->msix_cap = vr_pci_function_add_capability (&vio->pci, PCI_CAP_ID_MSIX, msix_body,
                                                sizeof msix_body, msix_wmask);

  vr_pci_set_long (notify_extra, 0, NOTIFY_MULT);
  /* The PCI configuration access window: bar, offset, length and data are writable. */
  cfg_wmask[2] = 0xff;
  memset (cfg_wmask + 6, 0xff, 12);
  if (!add_virtio_cap (vio, VIRTIO_PCI_CAP_COMMON_CFG, BAR_REGS, COMMON_OFFSET, 0x1000,
                       NULL, 0, NULL)
      || !add_virtio_cap (vio, VIRTIO_PCI_CAP_ISR_CFG, BAR_REGS, ISR_OFFSET, 0x1000,
                          NULL, 0, NULL)
      || !add_virtio_cap (vio, VIRTIO_PCI_CAP_DEVICE_CFG, BAR_REGS, DEVICE_OFFSET,
                          MAX (config_size, 4), NULL, 0, NULL)
      || !add_virtio_cap (vio, VIRTIO_PCI_CAP_NOTIFY_CFG, BAR_REGS, NOTIFY_OFFSET,
                          NOTIFY_MULT * num_queues, notify_extra, sizeof notify_extra, NULL)
      || !(t->cfg_cap = add_virtio_cap (vio, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, cfg_extra,
                                        sizeof cfg_extra, cfg_wmask))
      || !t->msix_cap)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%s: the PCI capabilities do not fit", ops->name);
      return false;
    }
  return true;
}

bool
vr_virtio_plug (VrVirtio  *vio,
                GError   **error)
{
  Transport *t = transport (vio);

  if (!vr_pci_host_add_function (vio->host.pci_host, &vio->pci, vio->host.slot, 0, error))
    return false;
  for (unsigned q = 0; q < vio->num_queues; q++)
    {
      KickData *k = g_new (KickData, 1);

      k->vio = vio;
      k->queue = q;
      t->kick_source[q] = g_unix_fd_source_new (t->kick_fd[q], G_IO_IN);
      g_source_set_callback (t->kick_source[q], (GSourceFunc) (void (*) (void)) on_kick, k,
                             g_free);
      g_source_attach (t->kick_source[q], vio->host.io_context);
    }
  return true;
}
