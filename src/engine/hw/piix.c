/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The south bridge functions PC firmware looks for next to the i440FX host bridge, as on
 * QEMU's "pc" machine, so that SeaBIOS recognises the platform and sets it up:
 *
 *   00:SLOT.0  PIIX3 PCI-to-ISA bridge (8086:7000, class 0x0601, multi-function header).
 *              PIRQA-D routing (0x60-0x63), the ISA/top-of-memory registers the firmware
 *              writes (0x4c, 0x69-0x6b, 0x70-0x71, 0x76-0x77, 0x80-0x82, 0xa0-0xaf) are
 *              plain storage: our PCI INTx lines reach the IOAPIC directly (see the DSDT),
 *              and the legacy PIC's edge/level control (0x4d0/0x4d1) lives in KVM.
 *   00:SLOT.3  PIIX4 power management (8086:7113, class 0x0680): PMBA (0x40) reads our fixed
 *              ACPI PM block (VR_ACPI_PM_BASE, the address SeaBIOS also picks), PMREGMISC
 *              (0x80) and the SMBus base (0x90, 0xd2) are storage. The interrupt line is the
 *              SCI, IRQ 9. DEVACTB (0x58) has APMC_EN set and read-only: the firmware reads
 *              "SMM already set up" and leaves SMM alone, as on QEMU without SMM — we have
 *              no SMM, and an SMI that never comes would hang it.
 *
 * All state is PCI configuration space, which the host bridge saves and restores with
 * snapshots; nothing here has state of its own.
 */

#include "config.h"

#include "pci.h"
#include "../vr-machine-private.h"

#include <string.h>

#define PIIX3_DEVICE_ID   0x7000
#define PIIX4_PM_DEVICE   0x7113
#define PIIX4_PM_FUNC     3

#define PM_PMBA           0x40
#define PM_DEVACTB        0x58
#define PM_DEVACTB_APMC   (1u << 25)
#define PM_PMREGMISC      0x80
#define PM_SMBBA          0x90
#define PM_SMBHSTCFG      0xd2

typedef struct
{
  VrDevice       parent;
  VrDevice      *host;
  VrPciFunction  isa;
  VrPciFunction  pm;
} VrPiix;

static void
piix_destroy (VrDevice *dev)
{
  VrPiix *s = (VrPiix *) dev;

  vr_pci_host_remove_function (s->host, &s->pm);
  vr_pci_host_remove_function (s->host, &s->isa);
  g_free (s);
}

static const VrDeviceOps piix_ops = {
  .name = "piix",
  .destroy = piix_destroy,
};

static void
writable (VrPciFunction *fn,
          unsigned       offset,
          unsigned       len)
{
  memset (fn->wmask + offset, 0xff, len);
}

VrDevice *
vr_piix_new (VrDevice  *host,
             unsigned   slot,
             GError   **error)
{
  VrPiix *s;
  VrPciFunction *isa, *pm;

  g_return_val_if_fail (host != NULL, NULL);

  s = g_new0 (VrPiix, 1);
  s->parent.ops = &piix_ops;
  s->host = host;

  isa = &s->isa;
  vr_pci_function_init (isa, 0x8086, PIIX3_DEVICE_ID, 0x060100, 0x00, NULL, NULL);
  isa->config[VR_PCI_HEADER_TYPE] = 0x80;  /* multi-function: the PM function follows */
  vr_pci_set_word (isa->config, VR_PCI_COMMAND, 0x0007);
  vr_pci_set_word (isa->config, VR_PCI_STATUS, 0x0200);
  isa->config[0x4c] = 0x4d;                /* IORT */
  isa->config[0x4e] = 0x03;                /* XBCS */
  memset (isa->config + 0x60, 0x80, 4);    /* PIRQRC[A-D]: routing disabled */
  isa->config[0x69] = 0x02;                /* TOM */
  isa->config[0x70] = 0x80;                /* MBIRQ0 */
  isa->config[0x76] = 0x0c;                /* MBDMA0 */
  isa->config[0x77] = 0x0c;
  isa->config[0x78] = 0x02;                /* PCSC */
  isa->config[0xa0] = 0x08;                /* SMICNTL */
  writable (isa, 0x4c, 4);
  writable (isa, 0x60, 4);
  writable (isa, 0x69, 3);
  writable (isa, 0x70, 2);
  writable (isa, 0x76, 3);
  writable (isa, 0x80, 3);
  writable (isa, 0xa0, 16);

  pm = &s->pm;
  vr_pci_function_init (pm, 0x8086, PIIX4_PM_DEVICE, 0x068000, 0x03, NULL, NULL);
  vr_pci_set_long (pm->config, PM_PMBA, VR_ACPI_PM_BASE | 1);
  vr_pci_set_long (pm->config, PM_DEVACTB, PM_DEVACTB_APMC);
  pm->config[VR_PCI_INTERRUPT_PIN] = 1;
  pm->config[VR_PCI_INTERRUPT_LINE] = 9;   /* the SCI */
  writable (pm, VR_PCI_INTERRUPT_LINE, 1);
  pm->wmask[PM_PMREGMISC] = 0x01;
  vr_pci_set_long (pm->wmask, PM_SMBBA, 0x0000fff0);
  pm->wmask[PM_SMBHSTCFG] = 0x0f;

  if (!vr_pci_host_add_function (host, isa, slot, 0, error))
    {
      g_free (s);
      return NULL;
    }
  if (!vr_pci_host_add_function (host, pm, slot, PIIX4_PM_FUNC, error))
    {
      vr_pci_host_remove_function (host, isa);
      g_free (s);
      return NULL;
    }
  return &s->parent;
}
