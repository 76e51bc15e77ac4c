/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * What device models and boot code may ask of the machine that owns them. Every function
 * here is thread-safe and returns at once: the machine acts on the request from its own
 * control path (never from inside the device's handler), so a device may call these from a
 * vCPU thread while holding its own lock.
 */

#include "vr-machine.h"

G_BEGIN_DECLS

/* A guest-initiated reset (i8042 0xfe, port 0xcf9, ACPI reset register, port 0x92). */
void vr_machine_request_reset      (VrMachine  *machine,
                                    const char *why);
/* ACPI S5 through PM1a_CNT. */
void vr_machine_request_power_off  (VrMachine  *machine);
/* The isa-debug-exit port: the machine stops with status (value << 1) | 1. */
void vr_machine_request_debug_exit (VrMachine  *machine,
                                    uint32_t    value);
/* A device met a guest error worth one log line (rate-limited by the caller). */
/* A line the firmware wrote to its debug console (port 0x402). Any thread. */
void vr_machine_firmware_line      (VrMachine  *machine,
                                    const char *line);
void vr_machine_log_guest_error    (VrMachine  *machine,
                                    const char *device,
                                    const char *format,
                                    ...) G_GNUC_PRINTF (3, 4);

/* Fixed platform layout shared by the devices, ACPI tables and boot code. */
#define VR_COM1_BASE        0x3f8
#define VR_COM1_IRQ         4
#define VR_I8042_DATA       0x60
#define VR_I8042_CMD        0x64
#define VR_I8042_KBD_IRQ    1
#define VR_I8042_AUX_IRQ    12
#define VR_RTC_BASE         0x70
#define VR_RTC_IRQ          8
#define VR_DEBUG_EXIT_BASE  0xf4
#define VR_DEBUG_EXIT_SIZE  4
#define VR_PCI_CONFIG_BASE  0xcf8    /* 0xcf8 address, 0xcfc data; 0xcf9 reset control */
#define VR_FW_CFG_BASE      0x510    /* 0x510 selector, 0x511 data, 0x514 DMA */
#define VR_ACPI_PM_BASE     0x600
#define VR_ACPI_PM1_EVT     (VR_ACPI_PM_BASE + 0x00)  /* 2 bytes status, 2 bytes enable */
#define VR_ACPI_PM1_CNT     (VR_ACPI_PM_BASE + 0x04)  /* 2 bytes */
#define VR_ACPI_PM_TMR      (VR_ACPI_PM_BASE + 0x08)  /* 4 bytes, 24-bit at 3.579545 MHz */
#define VR_ACPI_GPE0        (VR_ACPI_PM_BASE + 0x20)  /* 4 bytes: 2 status, 2 enable */
#define VR_ACPI_PM_SIZE     0x40
#define VR_ACPI_SCI_IRQ     9
#define VR_ACPI_S5_TYP      5        /* SLP_TYP value for S5 in our DSDT */
/* PCI INTx: slot @s pin @p (0 = INTA) on IOAPIC GSI 16-23, as the DSDT's _PRT says. */
#define VR_PCI_INTX_GSI(s, p) (16u + (((s) + (p)) & 7u))
#define VR_RESET_PORT       0xcf9
#define VR_RESET_VALUE      0x06
#define VR_IOAPIC_ADDR      0xfec00000u
#define VR_LAPIC_ADDR       0xfee00000u

/* Low-memory layout used by the boot loaders (all inside the first MiB). */
#define VR_BOOT_GDT_ADDR    0x500
#define VR_BOOT_INFO_ADDR   0x6000   /* hvm_start_info / multiboot info + memmap */
#define VR_BOOT_PARAMS_ADDR 0x7000   /* Linux zero page */
#define VR_BOOT_CMDLINE     0x20000  /* kernel command line, up to 64 KiB */
#define VR_BOOT_PGTABLE     0x9000   /* identity page tables for 64-bit Linux entry */
#define VR_ACPI_TABLES_ADDR 0xe0000  /* RSDP first, then the other tables; 128 KiB */
#define VR_ACPI_TABLES_SIZE 0x20000

G_END_DECLS
