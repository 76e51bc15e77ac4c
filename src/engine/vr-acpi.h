/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * ACPI tables built per machine: RSDP, XSDT, FADT (PM1a event/control, PM timer, GPE0,
 * reset register 0xcf9 = 6, IAPC_BOOT_ARCH with the 8042 flag), FACS, DSDT (\_S5, the PCI
 * root bridge, no AML loops), MADT (one LAPIC per vCPU, the IOAPIC, ISA overrides for IRQ0→2
 * and the SCI).
 *
 * The blob is laid out to be copied to guest-physical @base with the RSDP at offset 0 (so a
 * guest that scans 0xe0000–0xfffff finds it); every pointer inside is absolute.
 */

typedef struct
{
  unsigned ncpus;
} VrAcpiConfig;

GBytes  *vr_acpi_build    (const VrAcpiConfig *config,
                          uint64_t            base);
/* The byte that makes @len bytes at @data sum to zero (with it in place of a zero byte). */
uint8_t  vr_acpi_checksum (const void         *data,
                          size_t              len);

G_END_DECLS
