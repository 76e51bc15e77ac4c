/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <gio/gio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_MSI_ROUTES 1024

typedef struct
{
  int      gsi;
  int      fd;        /* the irqfd's eventfd */
  bool     enabled;
  uint64_t addr;
  uint32_t data;
} MsiRoute;

typedef struct
{
  int      fd;
  bool     pio;
  uint64_t addr;
  unsigned len;
  bool     installed;
} IoEventFd;

struct _VrIrqChip
{
  /*
   * The current VM's file descriptor, or -1 while there is none. A reset re-creates the VM:
   * the lock is taken for writing while the descriptor is swapped (and the old one closed),
   * for reading around every KVM_IRQ_LINE, so no thread ever uses a stale descriptor. The
   * MSI routes and ioeventfds are changed with the lock held for writing too.
   */
  GRWLock lock;
  int     vm_fd;
  GArray *msi;        /* MsiRoute */
  GArray *ioeventfds; /* IoEventFd */
  int     next_gsi;
};

VrIrqChip *
vr_irqchip_new (void)
{
  VrIrqChip *chip = g_new0 (VrIrqChip, 1);

  g_rw_lock_init (&chip->lock);
  chip->vm_fd = -1;
  chip->msi = g_array_new (FALSE, TRUE, sizeof (MsiRoute));
  chip->ioeventfds = g_array_new (FALSE, TRUE, sizeof (IoEventFd));
  chip->next_gsi = VR_IRQ_NUM_GSI;
  return chip;
}

void
vr_irqchip_free (VrIrqChip *chip)
{
  if (chip == NULL)
    return;
  for (guint i = 0; i < chip->msi->len; i++)
    close (g_array_index (chip->msi, MsiRoute, i).fd);
  g_array_unref (chip->msi);
  g_array_unref (chip->ioeventfds);
  g_rw_lock_clear (&chip->lock);
  g_free (chip);
}

void
vr_irqchip_lock_for_swap (VrIrqChip *chip)
{
  g_rw_lock_writer_lock (&chip->lock);
}

/* The PC's GSI routing (ISA IRQs to the PICs and the IOAPIC, IRQ 0 on IOAPIC pin 2, PCI lines
 * 16-23 on the IOAPIC) plus the enabled MSI routes. Lock held for writing. */
static bool
apply_routing (VrIrqChip *chip,
               GError   **error)
{
  g_autofree struct kvm_irq_routing *routing = NULL;
  struct kvm_irq_routing_entry *e;
  unsigned n = 0;

  if (chip->vm_fd < 0)
    return true;
  routing = g_malloc0 (sizeof *routing
                       + (40 + chip->msi->len) * sizeof (struct kvm_irq_routing_entry));
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
  for (guint i = 0; i < chip->msi->len; i++)
    {
      MsiRoute *r = &g_array_index (chip->msi, MsiRoute, i);

      if (!r->enabled)
        continue;
      e[n++] = (struct kvm_irq_routing_entry) {
        .gsi = (uint32_t) r->gsi, .type = KVM_IRQ_ROUTING_MSI,
        .u.msi = { .address_lo = (uint32_t) r->addr, .address_hi = (uint32_t) (r->addr >> 32),
                   .data = r->data },
      };
    }
  routing->nr = n;
  if (ioctl (chip->vm_fd, KVM_SET_GSI_ROUTING, routing) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "KVM cannot set the interrupt routing: %s", g_strerror (errno));
      return false;
    }
  return true;
}

static bool
install_irqfd (VrIrqChip *chip,
               MsiRoute  *r,
               GError   **error)
{
  struct kvm_irqfd irqfd = { .fd = (uint32_t) r->fd, .gsi = (uint32_t) r->gsi };
  uint64_t stale;

  /* A signal left over from the previous VM must not reach the new one. */
  while (read (r->fd, &stale, sizeof stale) == sizeof stale)
    ;
  if (chip->vm_fd >= 0 && ioctl (chip->vm_fd, KVM_IRQFD, &irqfd) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "KVM cannot attach an interrupt eventfd: %s", g_strerror (errno));
      return false;
    }
  return true;
}

static bool
ioeventfd_ioctl (VrIrqChip *chip,
                 IoEventFd *io,
                 bool       assign)
{
  struct kvm_ioeventfd req = {
    .addr = io->addr, .len = io->len, .fd = io->fd,
    .flags = (io->pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
  };

  if (chip->vm_fd < 0)
    return false;
  if (ioctl (chip->vm_fd, KVM_IOEVENTFD, &req) < 0)
    {
      if (assign)
        g_debug ("KVM_IOEVENTFD at %#" G_GINT64_MODIFIER "x: %s", io->addr, g_strerror (errno));
      return false;
    }
  return true;
}

void
vr_irqchip_unlock_after_swap (VrIrqChip *chip,
                              int        vm_fd)
{
  chip->vm_fd = vm_fd;
  for (guint i = 0; i < chip->ioeventfds->len; i++)
    g_array_index (chip->ioeventfds, IoEventFd, i).installed = false;
  g_rw_lock_writer_unlock (&chip->lock);
}

bool
vr_irqchip_set_vm (VrIrqChip *chip,
                   int        vm_fd,
                   GError   **error)
{
  bool ok;

  g_rw_lock_writer_lock (&chip->lock);
  chip->vm_fd = vm_fd;
  ok = apply_routing (chip, error);
  for (guint i = 0; ok && i < chip->msi->len; i++)
    ok = install_irqfd (chip, &g_array_index (chip->msi, MsiRoute, i), error);
  for (guint i = 0; ok && i < chip->ioeventfds->len; i++)
    {
      IoEventFd *io = &g_array_index (chip->ioeventfds, IoEventFd, i);

      io->installed = ioeventfd_ioctl (chip, io, true);
    }
  g_rw_lock_writer_unlock (&chip->lock);
  return ok;
}

int
vr_irqchip_msi_alloc (VrIrqChip *chip,
                      GError   **error)
{
  MsiRoute r = { 0 };
  int gsi = -1;

  g_rw_lock_writer_lock (&chip->lock);
  if (chip->msi->len >= MAX_MSI_ROUTES)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "Too many MSI interrupt vectors");
      goto out;
    }
  r.fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r.fd < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "Cannot create an interrupt eventfd: %s", g_strerror (errno));
      goto out;
    }
  r.gsi = chip->next_gsi++;
  if (!install_irqfd (chip, &r, error))
    {
      close (r.fd);
      goto out;
    }
  g_array_append_val (chip->msi, r);
  gsi = r.gsi;
out:
  g_rw_lock_writer_unlock (&chip->lock);
  return gsi;
}

static MsiRoute *
find_msi (VrIrqChip *chip,
          int        gsi)
{
  for (guint i = 0; i < chip->msi->len; i++)
    if (g_array_index (chip->msi, MsiRoute, i).gsi == gsi)
      return &g_array_index (chip->msi, MsiRoute, i);
  return NULL;
}

void
vr_irqchip_msi_free (VrIrqChip *chip,
                     int        gsi)
{
  g_rw_lock_writer_lock (&chip->lock);
  for (guint i = 0; i < chip->msi->len; i++)
    {
      MsiRoute *r = &g_array_index (chip->msi, MsiRoute, i);

      if (r->gsi != gsi)
        continue;
      if (chip->vm_fd >= 0)
        {
          struct kvm_irqfd irqfd = { .fd = (uint32_t) r->fd, .gsi = (uint32_t) r->gsi,
                                     .flags = KVM_IRQFD_FLAG_DEASSIGN };

          ioctl (chip->vm_fd, KVM_IRQFD, &irqfd);
        }
      close (r->fd);
      g_array_remove_index_fast (chip->msi, i);
      break;
    }
  g_rw_lock_writer_unlock (&chip->lock);
}

void
vr_irqchip_msi_set (VrIrqChip *chip,
                    int        gsi,
                    uint64_t   addr,
                    uint32_t   data,
                    bool       enabled)
{
  g_autoptr (GError) error = NULL;
  MsiRoute *r;

  g_rw_lock_writer_lock (&chip->lock);
  r = find_msi (chip, gsi);
  if (r != NULL && (r->enabled != enabled || r->addr != addr || r->data != data))
    {
      r->enabled = enabled;
      r->addr = addr;
      r->data = data;
      if (!apply_routing (chip, &error))
        g_warning ("%s", error->message);
    }
  g_rw_lock_writer_unlock (&chip->lock);
}

void
vr_irqchip_msi_fire (VrIrqChip *chip,
                     int        gsi)
{
  uint64_t one = 1;
  int fd = -1;

  g_rw_lock_reader_lock (&chip->lock);
  for (guint i = 0; i < chip->msi->len; i++)
    if (g_array_index (chip->msi, MsiRoute, i).gsi == gsi)
      fd = g_array_index (chip->msi, MsiRoute, i).fd;
  if (fd >= 0 && write (fd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_debug ("irqfd write: %s", g_strerror (errno));
  g_rw_lock_reader_unlock (&chip->lock);
}

bool
vr_irqchip_ioeventfd_add (VrIrqChip *chip,
                          bool       pio,
                          uint64_t   addr,
                          unsigned   len,
                          int        fd)
{
  IoEventFd io = { .fd = fd, .pio = pio, .addr = addr, .len = len };

  g_rw_lock_writer_lock (&chip->lock);
  io.installed = ioeventfd_ioctl (chip, &io, true);
  g_array_append_val (chip->ioeventfds, io);
  g_rw_lock_writer_unlock (&chip->lock);
  return io.installed;
}

void
vr_irqchip_ioeventfd_remove (VrIrqChip *chip,
                             int        fd)
{
  g_rw_lock_writer_lock (&chip->lock);
  for (guint i = 0; i < chip->ioeventfds->len; i++)
    {
      IoEventFd *io = &g_array_index (chip->ioeventfds, IoEventFd, i);

      if (io->fd != fd)
        continue;
      if (io->installed)
        ioeventfd_ioctl (chip, io, false);
      g_array_remove_index_fast (chip->ioeventfds, i);
      break;
    }
  g_rw_lock_writer_unlock (&chip->lock);
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

/* Lock held for reading. Is @gsi level-triggered where the guest takes it from? */
static bool
line_is_level (VrIrqChip *chip,
               unsigned   gsi)
{
  struct kvm_irqchip ioapic = { .chip_id = KVM_IRQCHIP_IOAPIC };
  struct kvm_irqchip pic = { .chip_id = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE };
  unsigned pin = gsi == 0 ? 2 : gsi;
  bool level, masked;

  if (ioctl (chip->vm_fd, KVM_GET_IRQCHIP, &ioapic) < 0)
    return true;   /* cannot tell: raise it, as vr_irq_set_level() would */
  level = ioapic.chip.ioapic.redirtbl[pin].fields.trig_mode != 0;
  masked = ioapic.chip.ioapic.redirtbl[pin].fields.mask != 0;
  /* An ISA line the guest takes through the PICs: their ELCR says. */
  if (masked && gsi < 16 && ioctl (chip->vm_fd, KVM_GET_IRQCHIP, &pic) == 0)
    level = pic.chip.pic.elcr & (1u << (gsi & 7));
  return level;
}

void
vr_irq_restore_level (VrIrqChip *chip,
                      unsigned   gsi,
                      bool       level)
{
  struct kvm_irq_level irq = { .irq = gsi, .level = 1 };

  g_return_if_fail (chip != NULL);
  g_return_if_fail (gsi < VR_IRQ_NUM_GSI);

  /* A fresh VM's lines are low: only a high one needs telling. */
  if (!level)
    return;
  g_rw_lock_reader_lock (&chip->lock);
  if (chip->vm_fd >= 0 && line_is_level (chip, gsi)
      && ioctl (chip->vm_fd, KVM_IRQ_LINE, &irq) < 0)
    g_debug ("KVM_IRQ_LINE %u: %s", gsi, g_strerror (errno));
  g_rw_lock_reader_unlock (&chip->lock);
}
