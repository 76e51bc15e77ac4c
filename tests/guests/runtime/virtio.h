/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A small virtio 1.x PCI driver for the test guests (modern transport, split virtqueues).
 *
 * Since the guests test the device models, the driver sticks to the spec and checks what
 * the device does: it accepts modern devices (1af4:1040 + type) and transitional ones
 * (1af4:1000..103f) through their virtio vendor capabilities, walks those (common, notify
 * with notify_off_multiplier, ISR, device config), assigns BARs when nobody did, follows
 * the initialisation sequence of the spec (3.1.1), refuses a device that does not offer
 * VIRTIO_F_VERSION_1 or that clears FEATURES_OK, and supports indirect descriptors and
 * VIRTIO_RING_F_EVENT_IDX on both sides (used_event / avail_event).
 *
 * Typical use:
 *
 *   VirtioDevice dev;
 *   if (!virtio_find (VIRTIO_ID_BLOCK, 0, &dev) || !virtio_init (&dev, VIRTIO_IRQ_MSIX))
 *     guest_fail (...);
 *   virtio_negotiate (&dev, VIRTIO_F (VIRTIO_RING_F_INDIRECT_DESC) | ...);
 *   VirtQueue *vq = virtio_queue_setup (&dev, 0, 64);
 *   virtio_driver_ok (&dev);
 *   VirtioBuf bufs[] = { { &hdr, sizeof hdr, false }, { data, 512, true } };
 *   virtq_add (vq, bufs, 1, 1, token, false);
 *   virtq_kick (vq);
 *   token = virtq_wait_used (vq, &len, 5000);
 *
 * Interrupts (one mode per device, chosen at virtio_init):
 *  - VIRTIO_IRQ_MSIX: the MSI-X table in the device's BAR is programmed with fixed
 *    LAPIC vectors (config: VIRTIO_VECTOR_BASE + 16 * slot, queue n: + 1 + n) towards
 *    the boot CPU; each vector has its own IDT handler that counts into VirtQueue.irqs
 *    or VirtioDevice.config_irqs.
 *  - VIRTIO_IRQ_INTX: the INTx pin, through the IOAPIC: the GSI is the ISA IRQ in the
 *    interrupt line register after the MADT's source overrides (as firmware leaves it on
 *    QEMU), level-triggered; the handler reads (and so clears) the ISR and counts.
 *  - VIRTIO_IRQ_POLL: no interrupts; the driver asks the device not to send any
 *    (VRING_AVAIL_F_NO_INTERRUPT, or used_event far away with EVENT_IDX) and polls.
 * In the interrupt modes, waiting halts the CPU between checks (a LAPIC timer tick makes
 * sure it wakes up, so a lost interrupt shows as a count of 0 instead of a hang).
 *
 * "pci-unassign" on the command line makes virtio_init() clear the device's BARs first, as
 * a machine without firmware leaves them, so that QEMU runs test the BAR assignment too.
 *
 * Memory: virtqueues and buffers must be guest-physical = virtual (the runtime's
 * identity map); virtio_alloc() hands out zeroed, aligned memory that never goes away.
 */
#pragma once

#include "guest.h"
#include "pci.h"

/* Device types (5.x). */
#define VIRTIO_ID_NET      1
#define VIRTIO_ID_BLOCK    2
#define VIRTIO_ID_CONSOLE  3
#define VIRTIO_ID_RNG      4
#define VIRTIO_ID_GPU      16
#define VIRTIO_ID_INPUT    18

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE   1
#define VIRTIO_STATUS_DRIVER        2
#define VIRTIO_STATUS_DRIVER_OK     4
#define VIRTIO_STATUS_FEATURES_OK   8
#define VIRTIO_STATUS_NEEDS_RESET   64
#define VIRTIO_STATUS_FAILED        128

/* Reserved feature bits (6). */
#define VIRTIO_F(bit)                     (1ull << (bit))
#define VIRTIO_RING_F_INDIRECT_DESC       28
#define VIRTIO_RING_F_EVENT_IDX           29
#define VIRTIO_F_VERSION_1                32
#define VIRTIO_F_ACCESS_PLATFORM          33
#define VIRTIO_F_RING_PACKED              34
#define VIRTIO_F_IN_ORDER                 35

/* Split virtqueue layout (2.7). */
#define VIRTQ_DESC_F_NEXT        1
#define VIRTQ_DESC_F_WRITE       2
#define VIRTQ_DESC_F_INDIRECT    4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY   1

typedef struct
{
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
} VirtqDesc;

typedef struct
{
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[];              /* [size], then used_event (EVENT_IDX) */
} VirtqAvail;

typedef struct
{
  uint32_t id;
  uint32_t len;
} VirtqUsedElem;

typedef struct
{
  uint16_t      flags;
  uint16_t      idx;
  VirtqUsedElem ring[];         /* [size], then avail_event (EVENT_IDX) */
} VirtqUsed;

/* PCI capability configuration types (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG  1
#define VIRTIO_PCI_CAP_NOTIFY_CFG  2
#define VIRTIO_PCI_CAP_ISR_CFG     3
#define VIRTIO_PCI_CAP_DEVICE_CFG  4
#define VIRTIO_PCI_CAP_PCI_CFG     5

/* Common configuration structure offsets (4.1.4.3). */
#define VIRTIO_COMMON_DFSELECT     0x00
#define VIRTIO_COMMON_DF           0x04
#define VIRTIO_COMMON_GFSELECT     0x08
#define VIRTIO_COMMON_GF           0x0c
#define VIRTIO_COMMON_MSIX         0x10
#define VIRTIO_COMMON_NUMQ         0x12
#define VIRTIO_COMMON_STATUS       0x14
#define VIRTIO_COMMON_CFGGENERATION 0x15
#define VIRTIO_COMMON_Q_SELECT     0x16
#define VIRTIO_COMMON_Q_SIZE       0x18
#define VIRTIO_COMMON_Q_MSIX       0x1a
#define VIRTIO_COMMON_Q_ENABLE     0x1c
#define VIRTIO_COMMON_Q_NOFF       0x1e
#define VIRTIO_COMMON_Q_DESCLO     0x20
#define VIRTIO_COMMON_Q_DESCHI     0x24
#define VIRTIO_COMMON_Q_AVAILLO    0x28
#define VIRTIO_COMMON_Q_AVAILHI    0x2c
#define VIRTIO_COMMON_Q_USEDLO     0x30
#define VIRTIO_COMMON_Q_USEDHI     0x34

#define VIRTIO_MSI_NO_VECTOR       0xffff

#define VIRTIO_MAX_QUEUES          8
#define VIRTIO_MAX_QUEUE_SIZE      256
#define VIRTIO_MAX_INDIRECT        16   /* descriptors per indirect table */
#define VIRTIO_MAX_DEVICES         4    /* in MSI-X mode, at once (IDT vector slots) */
#define VIRTIO_VECTOR_BASE         0x40 /* MSI-X: 0x40 + 16 * slot + (0 config | 1 + queue) */
#define VIRTIO_INTX_VECTOR_BASE    0xa0 /* INTx: 0xa0 + slot */
#define VIRTIO_TICK_VECTOR         0xef /* the wake-up tick while waiting */

typedef enum
{
  VIRTIO_IRQ_POLL,
  VIRTIO_IRQ_INTX,
  VIRTIO_IRQ_MSIX,
} VirtioIrqMode;

typedef struct _VirtioDevice VirtioDevice;

typedef struct
{
  VirtioDevice      *dev;
  uint16_t           index;
  uint16_t           size;
  VirtqDesc         *desc;
  VirtqAvail        *avail;
  VirtqUsed         *used;
  VirtqDesc         *indirect;          /* size tables of VIRTIO_MAX_INDIRECT, one per head */
  volatile uint16_t *notify;            /* the queue's notification address */
  uint16_t           msix_vector;       /* as read back, or VIRTIO_MSI_NO_VECTOR */

  uint16_t           free_head;
  uint16_t           num_free;
  uint16_t           avail_idx;         /* next avail->idx (shadow) */
  uint16_t           kicked_idx;        /* avail->idx at the last notification decision */
  uint16_t           last_used;         /* used entries consumed so far */
  uint16_t           irq_mark;          /* INTx: used->idx at the last interrupt */
  void              *tokens[VIRTIO_MAX_QUEUE_SIZE];
  uint16_t           chain_len[VIRTIO_MAX_QUEUE_SIZE];   /* ring descriptors per head */
  uint32_t           writable[VIRTIO_MAX_QUEUE_SIZE];    /* device-writable bytes per head */

  /* Statistics, for the guests' reports. */
  volatile uint32_t  irqs;              /* interrupts attributed to this queue */
  uint32_t           kicks;             /* notifications sent */
  uint32_t           kicks_suppressed;  /* notifications the device said it did not need */
  uint32_t           indirect_used;     /* chains submitted through an indirect table */
  uint32_t           completed;
} VirtQueue;

struct _VirtioDevice
{
  PciDevice          pci;
  uint16_t           type;              /* VIRTIO_ID_* */
  bool               transitional;
  int                slot;              /* interrupt slot (see the vector layout) */
  VirtioIrqMode      irq_mode;

  uintptr_t          common;            /* mapped addresses of the capabilities */
  uintptr_t          isr;
  uintptr_t          device_cfg;
  uint32_t           device_cfg_len;
  uintptr_t          notify_base;
  uint32_t           notify_len;
  uint32_t           notify_mult;

  uintptr_t          msix_table;
  uint16_t           msix_entries;
  uint16_t           config_vector;     /* as read back */
  unsigned           intx_gsi;

  uint64_t           device_features;   /* offered */
  uint64_t           features;          /* negotiated */
  uint16_t           num_queues;        /* as the device reports */
  VirtQueue         *queues[VIRTIO_MAX_QUEUES];

  volatile uint32_t  config_irqs;       /* configuration change interrupts */
  volatile uint32_t  intx_irqs;         /* INTx interrupts (any cause) */
};

/* A buffer of a chain: @device_writes for buffers the device fills (VIRTQ_DESC_F_WRITE). */
typedef struct
{
  const void *addr;
  uint32_t    len;
  bool        device_writes;
} VirtioBuf;

/* Zeroed memory for rings and buffers; @align a power of two. Fails the guest when out. */
void       *virtio_alloc         (size_t size, size_t align);

/* The @index-th (0-based) virtio device of @type on bus 0 (modern or transitional). */
bool        virtio_find          (uint16_t type, int index, VirtioDevice *dev);
/* Maps the capabilities, resets the device, sets ACKNOWLEDGE and DRIVER, reads the
 * offered features and sets up interrupts for @mode. False (with a "FAIL"-worthy message
 * printed as info) when the device is not usable. */
bool        virtio_init          (VirtioDevice *dev, VirtioIrqMode mode);
/* Accepts @wanted & offered, plus VIRTIO_F_VERSION_1 (required), then FEATURES_OK and
 * checks that the device kept it. False when VERSION_1 is missing or FEATURES_OK is
 * refused (the device is then marked FAILED). */
bool        virtio_negotiate     (VirtioDevice *dev, uint64_t wanted);
/* Sets up split virtqueue @index with @size entries (0: the device's maximum, capped at
 * VIRTIO_MAX_QUEUE_SIZE; a smaller power of two is used when the device offers less),
 * binds its MSI-X vector, enables it. NULL on failure (message printed as info). */
VirtQueue  *virtio_queue_setup   (VirtioDevice *dev, unsigned index, unsigned size);
void        virtio_driver_ok     (VirtioDevice *dev);
uint8_t     virtio_status        (VirtioDevice *dev);
/* Writes 0 to device_status and waits until it reads 0. */
bool        virtio_reset         (VirtioDevice *dev);
bool        virtio_has_feature   (const VirtioDevice *dev, unsigned bit);

/* Device configuration space: reads @len bytes at @offset, retrying until
 * config_generation is stable. Fails the guest when out of the capability's range. */
void        virtio_config_read   (VirtioDevice *dev, unsigned offset, void *buf, unsigned len);
uint8_t     virtio_config_read8  (VirtioDevice *dev, unsigned offset);
uint16_t    virtio_config_read16 (VirtioDevice *dev, unsigned offset);
uint32_t    virtio_config_read32 (VirtioDevice *dev, unsigned offset);
uint64_t    virtio_config_read64 (VirtioDevice *dev, unsigned offset);
void        virtio_config_write8 (VirtioDevice *dev, unsigned offset, uint8_t v);
void        virtio_config_write32 (VirtioDevice *dev, unsigned offset, uint32_t v);

/* Makes a chain of @n_out driver-written buffers followed by @n_in device-written ones
 * available (not yet notified). With @indirect (and VIRTIO_RING_F_INDIRECT_DESC
 * negotiated, and at most VIRTIO_MAX_INDIRECT buffers) the chain takes one ring
 * descriptor pointing at an indirect table. Returns the head, or -1 when the ring is full. */
int         virtq_add            (VirtQueue *vq, const VirtioBuf *bufs, unsigned n_out,
                                  unsigned n_in, void *token, bool indirect);
/* Notifies the device if it wants to be (VIRTQ_USED_F_NO_NOTIFY, or avail_event with
 * EVENT_IDX). Returns whether it did. */
bool        virtq_kick           (VirtQueue *vq);
/* The token of the next used chain (and the length the device wrote), or NULL. */
void       *virtq_get_used       (VirtQueue *vq, uint32_t *len);
/* virtq_get_used, waiting up to @timeout_ms (halting in the interrupt modes). NULL on
 * timeout. */
void       *virtq_wait_used      (VirtQueue *vq, uint32_t *len, unsigned timeout_ms);
/* Waits until any of @n queues (possibly of different devices) has a used entry. */
bool        virtq_wait_any       (VirtQueue **vqs, unsigned n, unsigned timeout_ms);
/* In the interrupt modes: waits until at least one interrupt was counted for @vq (an
 * interrupt can trail the used entry it signals). False on timeout, or when polling. */
bool        virtq_wait_irq       (VirtQueue *vq, unsigned timeout_ms);
/* Chains in flight. */
unsigned    virtq_pending        (const VirtQueue *vq);

/* Milliseconds since the first virtio call (TSC, calibrated on the PIT). */
uint64_t    virtio_now_ms        (void);
/* Waits a little: halts until the next interrupt (at most a tick, 10 ms) in the interrupt
 * modes, else spins briefly. */
void        virtio_idle          (VirtioIrqMode mode);

const char *virtio_irq_mode_name (VirtioIrqMode mode);
/* "irq=msix|intx|poll" on the command line, else @fallback. */
VirtioIrqMode virtio_irq_mode_from_cmdline (VirtioIrqMode fallback);
