/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * Guest RAM: one memfd, mapped once into the VMM. Below 4 GiB, RAM ends at the start of the
 * 32-bit MMIO hole (VR_MMIO_HOLE_START); the rest lives above 4 GiB.
 *
 *   [0, low_size)               RAM        (e820 splits out the legacy VGA/BIOS area)
 *   [VR_MMIO_HOLE_START, 4 GiB) MMIO: PCI BARs, IOAPIC 0xfec00000, LAPIC 0xfee00000
 *   [4 GiB, 4 GiB + high_size)  RAM
 *
 * Every guest-physical access made on a device's behalf goes through vr_memory_translate()
 * or the copy helpers, which check the whole range lies in RAM: a guest address is hostile.
 * RAM is immutable after creation; safe from any thread.
 *
 * Extra slots: device memory (a display's framebuffer) that the guest sees at an address the
 * device chooses and moves (a PCI BAR), as its own KVM memory slot so that guest accesses
 * never exit, optionally with KVM dirty logging. The registry outlives the KVM VM: every
 * vr_memory_map_into_vm() re-adds the slots that are mapped. These functions take the
 * memory's slot lock (a leaf) and may be called from any thread; vr_memory_detach_vm() must
 * be called before the VM's file descriptor is closed.
 */

#define VR_MMIO_HOLE_START   0xc0000000ull
#define VR_4GIB              0x100000000ull

typedef struct _VrMemory VrMemory;

typedef enum
{
  VR_E820_RAM      = 1,
  VR_E820_RESERVED = 2,
  VR_E820_ACPI     = 3,
} VrE820Type;

typedef struct
{
  uint64_t addr;
  uint64_t size;
  uint32_t type;
} VrE820Entry;

VrMemory *vr_memory_new          (uint64_t       size,
                                  GError       **error);
void      vr_memory_free         (VrMemory      *mem);
uint64_t  vr_memory_get_size     (VrMemory      *mem);
uint64_t  vr_memory_low_size     (VrMemory      *mem);
uint64_t  vr_memory_high_size    (VrMemory      *mem);
/* Host address of guest-physical [gpa, gpa + len), or NULL when not entirely RAM. */
void     *vr_memory_translate    (VrMemory      *mem,
                                  uint64_t       gpa,
                                  uint64_t       len);
bool      vr_memory_read         (VrMemory      *mem,
                                  uint64_t       gpa,
                                  void          *buf,
                                  uint64_t       len);
bool      vr_memory_write        (VrMemory      *mem,
                                  uint64_t       gpa,
                                  const void    *buf,
                                  uint64_t       len);
/* Drops all contents (a cold boot): pages read as zero and are returned to the host. */
void      vr_memory_discard      (VrMemory      *mem);
/*
 * Snapshots. vr_memory_save() writes all of RAM to @fd from @offset on (page-aligned), as
 * the guest sees it below then above the hole, leaving a hole in the file for every zero
 * page; the caller syncs the file. vr_memory_map_private() maps such a file copy-on-write
 * over guest RAM at the same host address (so every pointer into RAM stays valid): the
 * guest runs on at once and pages are read from the file when first touched; with
 * @prefault the kernel starts reading the whole file in the background. The file must not
 * be truncated while mapped (unlinking it is fine). vr_memory_discard() returns to the
 * memfd. Only while no vCPU runs and no device touches RAM.
 */
bool      vr_memory_save         (VrMemory      *mem,
                                  int            fd,
                                  uint64_t       offset,
                                  GError       **error);
bool      vr_memory_map_private  (VrMemory      *mem,
                                  int            fd,
                                  uint64_t       offset,
                                  bool           prefault,
                                  GError       **error);
/* Bytes of guest RAM the host holds right now. */
uint64_t  vr_memory_get_used     (VrMemory      *mem);

/* Registers the RAM slots with a KVM VM. */
bool      vr_memory_map_into_vm  (VrMemory      *mem,
                                  int            vm_fd,
                                  GError       **error);
#define VR_MEMORY_MAX_EXTRA_SLOTS 8
#define VR_MEMORY_UNMAPPED        G_MAXUINT64

typedef enum
{
  VR_MEMORY_SLOT_LOG_DIRTY = 1 << 0,  /* KVM keeps a dirty bitmap (vr_memory_get_dirty_log) */
  VR_MEMORY_SLOT_READONLY  = 1 << 1,  /* a ROM: guest reads hit memory, writes exit to the
                                       * MMIO bus (KVM_MEM_READONLY), where nothing claims
                                       * them */
} VrMemorySlotFlags;

/* Registers @size bytes at @host (page-aligned, a multiple of 4 KiB, kept alive by the
 * caller until vr_memory_remove_slot()) as an extra slot, initially unmapped. Returns its
 * id, or -1 when every extra slot is taken. */
int       vr_memory_add_slot         (VrMemory          *mem,
                                      void              *host,
                                      uint64_t           size,
                                      VrMemorySlotFlags  flags);
void      vr_memory_remove_slot      (VrMemory      *mem,
                                      int            id);
/* Maps the slot at guest-physical @gpa (page-aligned), or unmaps it with
 * VR_MEMORY_UNMAPPED. The address is recorded even when no VM exists or KVM refuses it
 * (overlap with another slot: false, with @error); the next VM gets it again. */
bool      vr_memory_set_slot_address (VrMemory      *mem,
                                      int            id,
                                      uint64_t       gpa,
                                      GError       **error);
/* Fetches and clears KVM's dirty bitmap of a mapped slot with log_dirty: bit n of @bitmap
 * (@size / 4 KiB bits, rounded up to 64) is page n. False, with @bitmap untouched, when the
 * slot is not in a VM right now. */
bool      vr_memory_get_dirty_log    (VrMemory      *mem,
                                      int            id,
                                      uint64_t      *bitmap);
/* The VM is about to go away: forget its file descriptor. */
void      vr_memory_detach_vm        (VrMemory      *mem);

/* The guest's e820 map (RAM, with the legacy areas reserved). Returns the entry count. */
unsigned  vr_memory_e820         (VrMemory      *mem,
                                  VrE820Entry   *entries,
                                  unsigned       max);

G_END_DECLS
