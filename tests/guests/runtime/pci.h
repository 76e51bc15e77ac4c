/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * PCI for the test guests: configuration mechanism #1 (ports 0xcf8/0xcfc) on bus 0,
 * capability lists, BAR sizing and assignment.
 *
 * Firmware may or may not have assigned the BARs: on QEMU, SeaBIOS does; on Vireo (no
 * firmware) they read 0.  pci_bar_map() assigns a BAR that is unassigned, or that lies
 * above 4 GiB (the runtime identity-maps the first 4 GiB only): memory BARs (32- and
 * 64-bit) go in [PCI_MEM_WINDOW_START, PCI_MEM_WINDOW_END), I/O BARs in
 * [PCI_IO_WINDOW_START, PCI_IO_WINDOW_END), first fit, clear of every BAR that was already
 * decoded on bus 0 when the allocator first ran.
 */
#pragma once

#include "guest.h"

#define PCI_MEM_WINDOW_START 0xc0000000u
#define PCI_MEM_WINDOW_END   0xfec00000u
#define PCI_IO_WINDOW_START  0xd000u
#define PCI_IO_WINDOW_END    0x10000u

/* Configuration header. */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_CLASS_REVISION   0x08
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_COMMAND_IO       0x0001
#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_INTX_OFF 0x0400
#define PCI_STATUS_CAP_LIST  0x0010
#define PCI_STATUS_INTX      0x0008

#define PCI_CAP_ID_MSI       0x05
#define PCI_CAP_ID_VNDR      0x09
#define PCI_CAP_ID_MSIX      0x11

#define PCI_NUM_BARS         6

typedef struct
{
  uint8_t  bus, dev, fn;
  uint16_t vendor_id;
  uint16_t device_id;
  uint32_t class_code;          /* class << 16 | subclass << 8 | prog-if */
  uint8_t  header_type;         /* without the multi-function bit */
} PciDevice;

typedef enum
{
  PCI_BAR_NONE,
  PCI_BAR_IO,
  PCI_BAR_MEM32,
  PCI_BAR_MEM64,                /* takes this BAR and the next */
} PciBarType;

typedef struct
{
  PciBarType type;
  bool       prefetchable;
  uint64_t   size;
  uint64_t   addr;              /* as programmed; 0 when unassigned */
} PciBar;

uint8_t  pci_read8          (const PciDevice *d, unsigned reg);
uint16_t pci_read16         (const PciDevice *d, unsigned reg);
uint32_t pci_read32         (const PciDevice *d, unsigned reg);
void     pci_write8         (const PciDevice *d, unsigned reg, uint8_t v);
void     pci_write16        (const PciDevice *d, unsigned reg, uint16_t v);
void     pci_write32        (const PciDevice *d, unsigned reg, uint32_t v);

/* Every function on bus 0, in slot/function order; returns how many (at most max). */
int      pci_scan           (PciDevice *out, int max);
/* Offset of the first capability @id after offset @after (0: from the start), or 0. */
uint8_t  pci_find_cap       (const PciDevice *d, uint8_t id, uint8_t after);
/* Type, size and current address of BAR @bar (sizing briefly turns decoding off). */
bool     pci_bar_probe      (const PciDevice *d, unsigned bar, PciBar *out);
/* The address of BAR @bar, assigning it first when needed (see above); 0 on failure.
 * Turns on the decoding the BAR needs (MEM or IO). */
uint64_t pci_bar_map        (const PciDevice *d, unsigned bar);
/* Sets (and clears) bits of the command register. */
void     pci_command        (const PciDevice *d, uint16_t set, uint16_t clear);
