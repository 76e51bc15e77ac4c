/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * ACPI tables built per machine: RSDP, RSDT, XSDT, FADT (PM1a event/control, PM timer, GPE0,
 * reset register 0xcf9 = 6, IAPC_BOOT_ARCH with the 8042 flag), FACS, DSDT (\_S5, the PCI
 * root bridge, no AML loops), MADT (one LAPIC per vCPU, the IOAPIC, ISA overrides for IRQ0→2
 * and the SCI). The same tables come in two forms:
 *
 * vr_acpi_build(): one blob laid out to be copied to guest-physical @base with the RSDP at
 * offset 0 (so a guest that scans 0xe0000–0xfffff finds it); every pointer inside is
 * absolute. For kernels the engine boots directly.
 *
 * vr_acpi_build_fw_cfg(): the fw_cfg files QEMU gives its firmware, for SeaBIOS to place
 * and link: @rsdp (the RSDP alone) for VR_ACPI_FW_CFG_RSDP, @tables (every other table,
 * with each pointer an offset into @tables) for VR_ACPI_FW_CFG_TABLES, and @loader, the
 * BIOS linker/loader script (ALLOCATE the RSDP in the F segment, 16-byte aligned, and the
 * tables in high memory, 64-byte aligned; ADD_POINTER for every pointer; ADD_CHECKSUM for
 * every checksum), for VR_ACPI_FW_CFG_LOADER. Run at any two addresses, the script yields
 * the same tables as vr_acpi_build().
 */

#define VR_ACPI_FW_CFG_RSDP    "etc/acpi/rsdp"
#define VR_ACPI_FW_CFG_TABLES  "etc/acpi/tables"
#define VR_ACPI_FW_CFG_LOADER  "etc/table-loader"

typedef struct
{
  unsigned ncpus;
} VrAcpiConfig;

/* clang-format off */
GBytes  *vr_acpi_build        (const VrAcpiConfig  *config,
                               uint64_t             base);
bool     vr_acpi_build_fw_cfg (const VrAcpiConfig  *config,
                               GBytes             **rsdp,
                               GBytes             **tables,
                               GBytes             **loader);
/* The byte that makes @len bytes at @data sum to zero (with it in place of a zero byte). */
uint8_t  vr_acpi_checksum     (const void          *data,
                               size_t               len);
/* clang-format on */

G_END_DECLS
