/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Virtio 1.x devices over PCI (modern only: device ID 0x1040 + type, revision 1).
 *
 * A device model embeds a VrVirtio as its first member, fills a VrVirtioOps table and calls
 * vr_virtio_init(), then vr_virtio_plug(). The transport (virtio-pci.c) owns the PCI function:
 * the vendor capabilities (common, notify, ISR, device config), BAR 4 holding the four
 * register blocks, BAR 1 holding the MSI-X table and PBA, feature negotiation, the device
 * status, queue configuration and the device reset. The split virtqueues live in
 * virtqueue.c; every descriptor chain a guest offers is validated there.
 *
 * Threads and locks:
 *  - Register accesses arrive on vCPU threads (under the PCI host's read lock). The transport
 *    serialises them with VrVirtio.lock.
 *  - Queue kicks arrive through an ioeventfd (or, where KVM cannot register one, from the
 *    notify register's handler writing the same eventfd) and are delivered to
 *    ops->queue_notify on the machine's I/O thread — never on a vCPU thread.
 *  - A virtqueue has its own mutex: vr_virtq_pop() and vr_virtq_push() may be called from
 *    any thread (e.g. a block device's worker threads complete requests).
 *  - ops->reset runs on the thread that resets the device (a vCPU writing status 0, or the
 *    machine resetting); it must wait for the device's in-flight work, after which no
 *    thread may touch the queues until the driver sets them up again.
 *  - Snapshots: the transport is the VrDevice (quiesce/save/load/resume of vr-device.h); it
 *    saves feature negotiation, status, MSI-X table, every queue's configuration and indices
 *    and the device configuration, and calls the device's own hooks (VrVirtioOps) for the
 *    rest. While quiesced, kicks are dropped and the queues refuse to pop (no device writes
 *    guest RAM); resume and load look at every enabled queue once.
 *  - A device that finds the guest's structures broken (a bad descriptor chain, …) calls
 *    vr_virtio_set_broken(): DEVICE_NEEDS_RESET is set, a config interrupt sent, the reason
 *    logged once; the queues refuse work until the driver resets the device.
 */

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <sys/uio.h>

#include "../hw/pci.h"
#include "../vr-machine.h"

G_BEGIN_DECLS

#define VR_VIRTIO_MAX_QUEUES   64
#define VR_VIRTQ_MAX_SIZE      1024
#define VR_VIRTIO_NO_VECTOR    0xffff

typedef struct _VrVirtio    VrVirtio;
typedef struct _VrVirtqueue VrVirtqueue;

/* One descriptor chain popped from a queue: @n_out device-readable segments, then @n_in
 * device-writable ones, as host pointers into guest RAM (already bounds-checked). */
typedef struct
{
  uint16_t      head;
  unsigned      n_out;
  unsigned      n_in;
  uint64_t      out_len;   /* total bytes of the readable part */
  uint64_t      in_len;    /* total bytes of the writable part */
  struct iovec *out;       /* points into iov[] */
  struct iovec *in;        /* points into iov[] + n_out */
  struct iovec  iov[];
} VrVirtqElem;

typedef struct
{
  const char *name;           /* "virtio-blk", … (logs) */
  uint16_t    device_id;      /* VIRTIO_ID_* */
  uint32_t    pci_class;      /* class << 16 | subclass << 8 | prog-if */
  /* The guest wrote the device-specific configuration (@offset, @len inside config_size);
   * VrVirtio.lock is held and vio->config already holds the bytes written. */
  void      (*config_write) (VrVirtio *vio,
                             uint32_t  offset,
                             uint32_t  len);
  /* The driver accepted the features (vio->driver_features): return false to refuse. */
  bool      (*features_ok)  (VrVirtio *vio);
  /* DRIVER_OK was set: the device may start using its queues (VrVirtio.lock held). */
  void      (*driver_ok)    (VrVirtio *vio);
  /* A queue was kicked (I/O thread). */
  void      (*queue_notify) (VrVirtio *vio,
                             unsigned  queue);
  /* Device reset (driver or machine); see the threads note above. VrVirtio.lock NOT held. */
  void      (*reset)        (VrVirtio *vio);
  /*
   * Snapshots (see vr-device.h; all on the I/O thread, VrVirtio.lock not held; optional):
   *  - quiesce: the transport has stopped delivering kicks and the queues refuse to pop;
   *    finish the work handed to other threads (used entries written, interrupts sent) and
   *    put nothing more into guest RAM (e.g. received frames) until resume, load or reset.
   *  - save: the device's own state besides the transport's, or NULL.
   *  - load: after a reset, with the transport's state in place (features, status, queues
   *    mapped) but before driver_ok is replayed and the queues processed. @state is what
   *    save returned (NULL for none), @config the saved device configuration (config_size
   *    bytes; vio->config still holds the device's own). Check both; on failure the
   *    transport resets the device. Without this hook the saved configuration must equal
   *    the device's (it is read-only to the driver).
   *  - resume: the machine runs on after a save; then every enabled queue is kicked once.
   */
  void      (*quiesce)      (VrVirtio *vio);
  GVariant *(*save)         (VrVirtio *vio);
  bool      (*load)         (VrVirtio      *vio,
                             GVariant      *state,
                             const uint8_t *config,
                             GError       **error);
  void      (*resume)       (VrVirtio *vio);
  /* Frees the device (its VrVirtio is torn down by the transport first). */
  void      (*destroy)      (VrVirtio *vio);
} VrVirtioOps;

/* What the machine gives every virtio device. */
typedef struct
{
  VrMemory     *memory;
  VrIrqChip    *irq;
  VrDevice     *pci_host;
  GMainContext *io_context;   /* the machine's I/O thread */
  unsigned      slot;         /* PCI slot (function 0) */
  unsigned      gsi;          /* INTx line (GSI 16-23), as the DSDT's _PRT says */
} VrVirtioHost;

struct _VrVirtio
{
  VrDevice           parent;      /* ops point at the transport's; see vr_virtio_init() */
  VrPciFunction      pci;
  const VrVirtioOps *ops;
  VrVirtioHost       host;

  GMutex             lock;
  uint64_t           host_features;    /* set by the device before plugging */
  uint64_t           driver_features;  /* what the driver accepted */
  uint8_t            status;
  bool               broken;
  uint8_t           *config;           /* device-specific configuration (config_size bytes) */
  uint32_t           config_size;
  uint8_t            config_generation;

  unsigned           num_queues;
  VrVirtqueue       *queues[VR_VIRTIO_MAX_QUEUES];

  void              *transport;        /* virtio-pci.c's private state */
};

/* Sets up the transport part: @num_queues queues of at most @queue_max_size entries,
 * @config_size bytes of device configuration (zeroed; the device fills it). VIRTIO_F_VERSION_1,
 * RING_INDIRECT_DESC and RING_EVENT_IDX are offered on top of @features. */
bool         vr_virtio_init          (VrVirtio          *vio,
                                      const VrVirtioOps *ops,
                                      const VrVirtioHost *host,
                                      uint64_t           features,
                                      unsigned           num_queues,
                                      uint16_t           queue_max_size,
                                      uint32_t           config_size,
                                      GError           **error);
/* Plugs the PCI function into the host at host->slot and starts listening for kicks. */
bool         vr_virtio_plug          (VrVirtio          *vio,
                                      GError           **error);
/* The device changed its configuration: bump the generation, send a config interrupt.
 * Call with vio->lock held. */
void         vr_virtio_config_changed (VrVirtio         *vio);
/* The guest broke the device: DEVICE_NEEDS_RESET (logged once, with @fmt). Any thread;
 * takes vio->lock. */
void         vr_virtio_set_broken    (VrVirtio          *vio,
                                      const char        *fmt,
                                      ...) G_GNUC_PRINTF (2, 3);
bool         vr_virtio_has_feature   (VrVirtio          *vio,
                                      unsigned           bit);
/* Is the driver done with setup (DRIVER_OK set, not broken)? */
bool         vr_virtio_is_running    (VrVirtio          *vio);

VrVirtqueue *vr_virtio_get_queue     (VrVirtio          *vio,
                                      unsigned           index);

/* The next available chain, or NULL (empty, not ready, or broken: the latter marks the
 * device broken). Free the element with g_free() after pushing it. */
VrVirtqElem *vr_virtq_pop            (VrVirtqueue       *vq);
/* Returns @elem to the used ring with @written bytes written into its writable part. */
void         vr_virtq_push           (VrVirtqueue       *vq,
                                      const VrVirtqElem *elem,
                                      uint32_t           written);
/* Interrupts the driver if it wants to hear about used buffers (flags / used_event). */
void         vr_virtq_notify         (VrVirtqueue       *vq);
/* Push + notify. */
void         vr_virtq_complete       (VrVirtqueue       *vq,
                                      VrVirtqElem       *elem,
                                      uint32_t           written);
/* Has the driver made buffers available? (rx queues: "is there room?") */
bool         vr_virtq_has_buffers    (VrVirtqueue       *vq);
/* Enables or suppresses kicks for this queue (VRING_USED_F_NO_NOTIFY / avail_event). After
 * enabling, check vr_virtq_has_buffers() again to close the race with the driver. */
void         vr_virtq_set_notification (VrVirtqueue     *vq,
                                        bool             enable);
bool         vr_virtq_is_ready       (VrVirtqueue       *vq);
unsigned     vr_virtq_index          (VrVirtqueue       *vq);
/* The ring's size as the driver set it up (0 when not ready). */
uint16_t     vr_virtq_size           (VrVirtqueue       *vq);

/* Copies between an iovec array and a flat buffer, from @offset in the iovec data; return
 * the bytes copied. */
size_t       vr_iov_to_buf           (const struct iovec *iov,
                                      unsigned            n,
                                      size_t              offset,
                                      void               *buf,
                                      size_t              len);
size_t       vr_iov_from_buf         (const struct iovec *iov,
                                      unsigned            n,
                                      size_t              offset,
                                      const void         *buf,
                                      size_t              len);

/* Little-endian accessors for config structs. */
static inline void
vr_virtio_config_put16 (VrVirtio *vio, uint32_t off, uint16_t v)
{
  vr_pci_set_word (vio->config, off, v);
}

static inline void
vr_virtio_config_put32 (VrVirtio *vio, uint32_t off, uint32_t v)
{
  vr_pci_set_long (vio->config, off, v);
}

static inline void
vr_virtio_config_put64 (VrVirtio *vio, uint32_t off, uint64_t v)
{
  vr_pci_set_long (vio->config, off, (uint32_t) v);
  vr_pci_set_long (vio->config, off + 4, (uint32_t) (v >> 32));
}

/* ---- the devices ------------------------------------------------------------------------ */

/* A disk (see ../disk/vr-disk.h); the device takes ownership of @disk. */
typedef struct _VrDisk VrDisk;
VrDevice *vr_virtio_blk_new     (const VrVirtioHost *host,
                                 VrDisk             *disk,
                                 const char         *serial,
                                 GError            **error);
/* Adds the device's counters (since it was created) to @stats. Any thread. */
void      vr_virtio_blk_get_stats (VrDevice         *dev,
                                   VrIoStats        *stats);
void      vr_virtio_net_get_stats (VrDevice         *dev,
                                   VrIoStats        *stats);
VrDevice *vr_virtio_rng_new     (const VrVirtioHost *host,
                                 GError            **error);
/* A console on @chr (not owned). */
typedef struct _VrChardev VrChardev;
VrDevice *vr_virtio_console_new (const VrVirtioHost *host,
                                 VrChardev          *chr,
                                 GError            **error);

typedef enum
{
  VR_VIRTIO_INPUT_KEYBOARD,
  VR_VIRTIO_INPUT_TABLET,
} VrVirtioInputKind;

VrDevice *vr_virtio_input_new   (const VrVirtioHost *host,
                                 VrVirtioInputKind   kind,
                                 GError            **error);
/* Queues evdev events (type, code, value) followed by a SYN_REPORT; thread-safe. Events are
 * dropped (not queued forever) while the driver has not set the device up. */
typedef struct
{
  uint16_t type;
  uint16_t code;
  int32_t  value;
} VrInputEvent;

void      vr_virtio_input_send  (VrDevice           *dev,
                                 const VrInputEvent *events,
                                 unsigned            n);
/* Has the guest's driver set the device up (DRIVER_OK, not broken)? Thread-safe. */
bool      vr_virtio_input_is_active (VrDevice       *dev);

/* A network card; @backend is owned by the device (see ../net/vr-net.h). */
typedef struct _VrNetBackend VrNetBackend;
VrDevice *vr_virtio_net_new     (const VrVirtioHost *host,
                                 VrNetBackend       *backend,
                                 const uint8_t       mac[6],
                                 GError            **error);

/* virtio-gpu, 2D only (see gpu.c): one scanout shown on @display (not owned), whose
 * preferred size the device reports to the guest. */
typedef struct _VrDisplay VrDisplay;
VrDevice *vr_virtio_gpu_new     (const VrVirtioHost *host,
                                 VrDisplay          *display,
                                 GError            **error);

G_END_DECLS
