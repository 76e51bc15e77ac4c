/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * PCI functions on the host bridge's bus 0 (see vr_pci_host_new() in hw.h).
 *
 * A device embeds a VrPciFunction, describes it with vr_pci_function_init(),
 * vr_pci_function_set_bar() and vr_pci_function_add_capability(), then plugs it with
 * vr_pci_host_add_function(). From then on the host owns the configuration space: it
 * applies the guest's writes through the per-byte masks (wmask: writable bits; w1cmask:
 * write-1-to-clear bits), handles BAR sizing and decoding (command register IO/MEM bits),
 * and routes guest accesses that hit a decoded BAR to that BAR's handler, with the offset
 * relative to the BAR. The hooks in VrPciFunctionOps let a device see or override what the
 * host does (e.g. MSI-X enable, a register computed on read, ioeventfds for a moved BAR).
 *
 * BAR routing: the host claims one I/O window (VR_PCI_IO_WINDOW_*) on the port bus at
 * creation, and an MMIO window of the machine's choosing with vr_pci_host_attach_mmio();
 * BARs are decoded only inside those windows. This keeps guest BAR moves away from the
 * buses' registration (which a handler must not touch).
 *
 * Snapshots: the host's save()/load() keep every function's configuration space. Loading
 * takes the guest-writable (wmask) and write-1-to-clear bits from the snapshot, checks the IDs,
 * and decodes the BARs as a guest's write would (bar_update hooks); it does not call the
 * config_write hooks, so a device's own load() must derive what it needs from its restored
 * configuration space (the host's load runs first: it comes earlier in the machine's device
 * list), and restore any read-only bits it changes at run time.
 *
 * Locking: the host has one GRWLock. Config-space accesses and add/remove take it for
 * writing; BAR routing takes it for reading, so BAR handlers of different vCPUs run
 * concurrently. The ops hooks and BAR handlers run with it held: they must not call the
 * vr_pci_* API of the same host. They may take their device's own lock.
 */

#include "hw.h"

G_BEGIN_DECLS

#define VR_PCI_NUM_BARS          6
#define VR_PCI_CONFIG_SIZE       256
#define VR_PCI_BAR_UNMAPPED      G_MAXUINT64
#define VR_PCI_IO_WINDOW_START   0xd00
#define VR_PCI_IO_WINDOW_END     0x10000   /* exclusive */

/* Standard configuration header offsets. */
#define VR_PCI_VENDOR_ID         0x00
#define VR_PCI_DEVICE_ID         0x02
#define VR_PCI_COMMAND           0x04
#define VR_PCI_STATUS            0x06
#define VR_PCI_REVISION_ID       0x08
#define VR_PCI_CLASS_PROG        0x09
#define VR_PCI_HEADER_TYPE       0x0e
#define VR_PCI_BAR0              0x10
#define VR_PCI_SUBSYSTEM_VENDOR  0x2c
#define VR_PCI_SUBSYSTEM_ID      0x2e
#define VR_PCI_ROM_ADDRESS       0x30
#define VR_PCI_CAPABILITY_LIST   0x34
#define VR_PCI_INTERRUPT_LINE    0x3c
#define VR_PCI_INTERRUPT_PIN     0x3d

#define VR_PCI_COMMAND_IO        0x0001
#define VR_PCI_COMMAND_MEMORY    0x0002
#define VR_PCI_COMMAND_MASTER    0x0004
#define VR_PCI_COMMAND_INTX_OFF  0x0400
#define VR_PCI_STATUS_CAP_LIST   0x0010

typedef enum
{
  VR_PCI_BAR_NONE,
  VR_PCI_BAR_IO,
  VR_PCI_BAR_MEM32,
  VR_PCI_BAR_MEM64,   /* takes this BAR and the next */
} VrPciBarType;

typedef struct _VrPciFunction VrPciFunction;

typedef struct
{
  /* Called after the default read; returns the value the guest sees (@len 1, 2 or 4). */
  uint32_t (*config_read)  (VrPciFunction *fn,
                            uint32_t       offset,
                            uint32_t       len,
                            uint32_t       value);
  /* Called after the host applied a guest write to config[] (the raw value written). */
  void     (*config_write) (VrPciFunction *fn,
                            uint32_t       offset,
                            uint32_t       len,
                            uint32_t       value);
  /* A BAR's decoded address changed; @addr is VR_PCI_BAR_UNMAPPED when not decoded. */
  void     (*bar_update)   (VrPciFunction *fn,
                            unsigned       bar,
                            uint64_t       addr);
} VrPciFunctionOps;

typedef struct
{
  VrPciBarType  type;
  bool          prefetchable;
  uint64_t      size;        /* a power of two; 0 when unused */
  VrIoHandler   handler;
  void         *opaque;
  uint64_t      addr;        /* host-owned: decoded address or VR_PCI_BAR_UNMAPPED */
} VrPciBar;

struct _VrPciFunction
{
  uint8_t                  config[VR_PCI_CONFIG_SIZE];
  uint8_t                  wmask[VR_PCI_CONFIG_SIZE];
  uint8_t                  w1cmask[VR_PCI_CONFIG_SIZE];
  VrPciBar                 bars[VR_PCI_NUM_BARS];
  const VrPciFunctionOps  *ops;
  void                    *opaque;
  /* The expansion ROM (vr_pci_function_set_rom()): @rom_size bytes, a power of two. */
  uint8_t                 *rom;
  uint64_t                 rom_size;

  /* Host-owned. */
  uint8_t                  reset_config[VR_PCI_CONFIG_SIZE];
  uint8_t                  devfn;
  uint8_t                  next_cap;   /* free config space for capabilities starts here */
  uint64_t                 rom_addr;   /* decoded ROM address or VR_PCI_BAR_UNMAPPED */
  bool                     plugged;
};

/* A type 0 header: IDs, 24-bit class code (class << 16 | subclass << 8 | prog-if). */
void      vr_pci_function_init           (VrPciFunction          *fn,
                                          uint16_t                vendor,
                                          uint16_t                device,
                                          uint32_t                class_code,
                                          uint8_t                 revision,
                                          const VrPciFunctionOps *ops,
                                          void                   *opaque);
void      vr_pci_function_set_subsystem  (VrPciFunction          *fn,
                                          uint16_t                vendor,
                                          uint16_t                id);
/* Before plugging. @size: a power of two, ≥ 4 for I/O (≤ 256), ≥ 16 for memory. */
bool      vr_pci_function_set_bar        (VrPciFunction          *fn,
                                          unsigned                index,
                                          VrPciBarType            type,
                                          uint64_t                size,
                                          bool                    prefetchable,
                                          VrIoHandler             handler,
                                          void                   *opaque,
                                          GError                **error);
/* Before plugging: an expansion ROM (the ROM BAR at 0x30, e.g. a display's option ROM for
 * the firmware) holding a copy of @data. Guest reads of the decoded ROM see it; writes are
 * dropped. Freed with vr_pci_function_clear_rom(). */
bool      vr_pci_function_set_rom        (VrPciFunction          *fn,
                                          const void             *data,
                                          size_t                  len,
                                          GError                **error);
void      vr_pci_function_clear_rom      (VrPciFunction          *fn);
/* Appends a capability (@body is what follows the ID/next bytes, @len bytes); @wmask, when
 * not NULL, gives the guest-writable bits of @body. Returns its offset, or 0 when full. */
uint8_t   vr_pci_function_add_capability (VrPciFunction          *fn,
                                          uint8_t                 id,
                                          const uint8_t          *body,
                                          size_t                  len,
                                          const uint8_t          *wmask);
/* The BAR's current decoded address, or VR_PCI_BAR_UNMAPPED. Racy by nature: for logs. */
uint64_t  vr_pci_function_bar_address    (VrPciFunction          *fn,
                                          unsigned                index);

/* Plugs @fn at 00:@slot.@func. The function must stay alive until removed. */
bool      vr_pci_host_add_function       (VrDevice               *host,
                                          VrPciFunction          *fn,
                                          unsigned                slot,
                                          unsigned                func,
                                          GError                **error);
void      vr_pci_host_remove_function    (VrDevice               *host,
                                          VrPciFunction          *fn);
/* Routes memory BARs decoded inside [base, base + size) (registered on @mmio). */
bool      vr_pci_host_attach_mmio        (VrDevice               *host,
                                          VrBus                  *mmio,
                                          uint64_t                base,
                                          uint64_t                size,
                                          GError                **error);

static inline uint16_t
vr_pci_get_word (const uint8_t *config, unsigned offset)
{
  return (uint16_t) (config[offset] | (config[offset + 1] << 8));
}

static inline uint32_t
vr_pci_get_long (const uint8_t *config, unsigned offset)
{
  return (uint32_t) config[offset] | ((uint32_t) config[offset + 1] << 8)
         | ((uint32_t) config[offset + 2] << 16) | ((uint32_t) config[offset + 3] << 24);
}

static inline void
vr_pci_set_word (uint8_t *config, unsigned offset, uint16_t v)
{
  config[offset] = (uint8_t) v;
  config[offset + 1] = (uint8_t) (v >> 8);
}

static inline void
vr_pci_set_long (uint8_t *config, unsigned offset, uint32_t v)
{
  for (unsigned i = 0; i < 4; i++)
    config[offset + i] = (uint8_t) (v >> (8 * i));
}

G_END_DECLS
