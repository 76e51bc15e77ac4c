/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * Interrupt lines into the in-kernel irqchip (PIC + IOAPIC). GSIs 0-15 are the ISA IRQs
 * (routed to both PIC and IOAPIC), 16-23 the IOAPIC's PCI lines.
 *
 * A VrIrqChip outlives a machine reset, which re-creates the KVM VM: it always talks to the
 * current VM file descriptor. Thread-safe; callable from any thread.
 */

typedef struct _VrIrqChip VrIrqChip;

#define VR_IRQ_NUM_GSI 24

VrIrqChip *vr_irqchip_new      (void);
void       vr_irqchip_free     (VrIrqChip *chip);
/* Makes @vm_fd the current VM and installs everything below in it (routing, irqfds,
 * ioeventfds). */
bool       vr_irqchip_set_vm   (VrIrqChip *chip,
                                int        vm_fd,
                                GError   **error);
/* Swapping the VM: lock, close the old VM, create the new one, unlock with its fd. */
void       vr_irqchip_lock_for_swap     (VrIrqChip *chip);
void       vr_irqchip_unlock_after_swap (VrIrqChip *chip,
                                         int        vm_fd);
/* Level-triggered line: level true = asserted. */
void       vr_irq_set_level    (VrIrqChip *chip,
                                unsigned   gsi,
                                bool       level);
/* Edge: raise then lower. */
void       vr_irq_pulse        (VrIrqChip *chip,
                                unsigned   gsi);
/*
 * Snapshot restore: a device re-asserts its line at its saved level, after the VM's irqchip
 * state (PIC and IOAPIC) was restored and while the line is low in the fresh VM. A level-
 * triggered pin is raised as with vr_irq_set_level(). An edge-triggered one is left as it is:
 * the restored state already holds its pending edge (IOAPIC IRR, PIC IRR/last IRR), and
 * raising it again would deliver a second, spurious interrupt for an edge the guest has seen.
 * (The device's next lowering and raising then make a new edge, as they should.) The trigger
 * mode is the IOAPIC pin's, or the PIC's ELCR when the guest masked the IOAPIC pin.
 */
void       vr_irq_restore_level (VrIrqChip *chip,
                                 unsigned   gsi,
                                 bool       level);

/*
 * MSI routes: a GSI above the IOAPIC's whose KVM routing entry is an MSI message, raised
 * through an irqfd (an eventfd KVM listens to, so raising it is one write() from any thread).
 * The routes, irqfds and ioeventfds are kept here and installed again in every new VM.
 * Returns the GSI, or -1 with @error set.
 */
int        vr_irqchip_msi_alloc (VrIrqChip *chip,
                                 GError   **error);
void       vr_irqchip_msi_free  (VrIrqChip *chip,
                                 int        gsi);
/* Points the route at (@addr, @data); @enabled false removes it from KVM's table. */
void       vr_irqchip_msi_set   (VrIrqChip *chip,
                                 int        gsi,
                                 uint64_t   addr,
                                 uint32_t   data,
                                 bool       enabled);
void       vr_irqchip_msi_fire  (VrIrqChip *chip,
                                 int        gsi);

/*
 * ioeventfds: KVM signals @fd instead of exiting to user space when the guest writes to
 * [@addr, @addr + @len) (port I/O when @pio). Without a VM, or where KVM refuses, the fd is
 * only remembered; the device's own handler must then signal it (vr_irqchip_ioeventfd_add()
 * returns false in that case, with no error: it is not fatal).
 */
bool       vr_irqchip_ioeventfd_add    (VrIrqChip *chip,
                                        bool       pio,
                                        uint64_t   addr,
                                        unsigned   len,
                                        int        fd);
void       vr_irqchip_ioeventfd_remove (VrIrqChip *chip,
                                        int        fd);

G_END_DECLS
