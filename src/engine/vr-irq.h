/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

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
void       vr_irqchip_set_vm   (VrIrqChip *chip,
                                int        vm_fd);
/* Swapping the VM: lock, close the old VM, create the new one, unlock with its fd. */
void       vr_irqchip_lock_for_swap     (VrIrqChip *chip);
void       vr_irqchip_unlock_after_swap (VrIrqChip *chip,
                                         int        vm_fd);
/* Installs the PC's GSI routing (ISA IRQs to the PICs and the IOAPIC, IRQ 0 on IOAPIC pin 2)
 * in a freshly created VM. */
bool       vr_irqchip_setup_routing     (int        vm_fd,
                                         GError   **error);
/* Level-triggered line: level true = asserted. */
void       vr_irq_set_level    (VrIrqChip *chip,
                                unsigned   gsi,
                                bool       level);
/* Edge: raise then lower. */
void       vr_irq_pulse        (VrIrqChip *chip,
                                unsigned   gsi);

G_END_DECLS
