/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <gio/gio.h>
#include <sys/ioctl.h>

struct _VrIrqChip
{
  /*
   * The current VM's file descriptor, or -1 while there is none. A reset re-creates the VM:
   * the lock is taken for writing while the descriptor is swapped (and the old one closed),
   * for reading around every KVM_IRQ_LINE, so no thread ever uses a stale descriptor.
   */
  GRWLock lock;
  int     vm_fd;
};

VrIrqChip *
vr_irqchip_new (void)
{
  VrIrqChip *chip = g_new0 (VrIrqChip, 1);

  g_rw_lock_init (&chip->lock);
  chip->vm_fd = -1;
  return chip;
}

void
vr_irqchip_free (VrIrqChip *chip)
{
  if (chip == NULL)
    return;
  g_rw_lock_clear (&chip->lock);
  g_free (chip);
}

void
vr_irqchip_lock_for_swap (VrIrqChip *chip)
{
  g_rw_lock_writer_lock (&chip->lock);
}

void
vr_irqchip_unlock_after_swap (VrIrqChip *chip,
                              int        vm_fd)
{
  chip->vm_fd = vm_fd;
  g_rw_lock_writer_unlock (&chip->lock);
}

void
vr_irqchip_set_vm (VrIrqChip *chip,
                   int        vm_fd)
{
  vr_irqchip_lock_for_swap (chip);
  vr_irqchip_unlock_after_swap (chip, vm_fd);
}

bool
vr_irqchip_setup_routing (int      vm_fd,
                          GError **error)
{
  g_autofree struct kvm_irq_routing *routing = NULL;
  struct kvm_irq_routing_entry *e;
  unsigned n = 0;

  routing = g_malloc0 (sizeof *routing + 64 * sizeof (struct kvm_irq_routing_entry));
  e = routing->entries;

  /* ISA IRQs 0-15 go to the PICs (IRQ 2 is the cascade)... */
  for (unsigned i = 0; i < 16; i++)
    {
      if (i == 2)
        continue;
      e[n++] = (struct kvm_irq_routing_entry) {
        .gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
        .u.irqchip = { .irqchip = i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                       .pin = i & 7 },
      };
    }
  /* ...and to the IOAPIC, where the timer (IRQ 0) is wired to pin 2, as the MADT's interrupt
   * source override says and as on every PC since the APIC. */
  for (unsigned i = 0; i < VR_IRQ_NUM_GSI; i++)
    {
      if (i == 2)
        continue;
      e[n++] = (struct kvm_irq_routing_entry) {
        .gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
        .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = i == 0 ? 2 : i },
      };
    }
  routing->nr = n;
  if (ioctl (vm_fd, KVM_SET_GSI_ROUTING, routing) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "KVM cannot set the interrupt routing: %s", g_strerror (errno));
      return false;
    }
  return true;
}

void
vr_irq_set_level (VrIrqChip *chip,
                  unsigned   gsi,
                  bool       level)
{
  struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

  g_return_if_fail (chip != NULL);
  g_return_if_fail (gsi < VR_IRQ_NUM_GSI);

  g_rw_lock_reader_lock (&chip->lock);
  if (chip->vm_fd >= 0 && ioctl (chip->vm_fd, KVM_IRQ_LINE, &irq) < 0)
    g_debug ("KVM_IRQ_LINE %u: %s", gsi, g_strerror (errno));
  g_rw_lock_reader_unlock (&chip->lock);
}

void
vr_irq_pulse (VrIrqChip *chip,
              unsigned   gsi)
{
  vr_irq_set_level (chip, gsi, true);
  vr_irq_set_level (chip, gsi, false);
}
