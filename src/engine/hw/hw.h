/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Constructors of the platform devices. Each returns a VrDevice (its first member) whose
 * ranges the constructor has already registered on the given bus; the machine keeps the
 * pointer, calls vr_device_reset() on a machine reset and vr_device_destroy() at the end.
 */

#include "../vr-bus.h"
#include "../vr-chardev.h"
#include "../vr-device.h"
#include "../vr-irq.h"
#include "../vr-machine-private.h"
#include "../vr-memory.h"

G_BEGIN_DECLS

/* 16550A UART at @base/@gsi. @chr may be NULL (no backend: output discarded). */
VrDevice *vr_serial_new       (VrBus        *pio,
                               uint16_t      base,
                               VrIrqChip    *irq,
                               unsigned      gsi,
                               VrChardev    *chr,
                               GMainContext *io_context,
                               GError      **error);

/* i8042 keyboard controller with keyboard and aux (PS/2 mouse) ports; 0xfe → reset. */
VrDevice *vr_i8042_new        (VrBus        *pio,
                               VrIrqChip    *irq,
                               VrMachine    *machine,
                               GError      **error);
/* Input injection (vr-input.c calls these): PC scan code set 1 bytes, PS/2 packets.
 * Keys are dropped while the guest has keyboard scanning disabled; the controller converts
 * them to set 2 when the guest turns translation off. Mouse: @dx right, @dy down (screen
 * directions), @dz > 0 wheel up; @buttons bit 0 left, 1 right, 2 middle, 3-4 side/extra (the
 * last two only reach an IntelliMouse Explorer guest). Motion is dropped unless the guest
 * enabled data reporting. Thread-safe. */
void      vr_i8042_kbd_put    (VrDevice     *dev,
                               const uint8_t *scancodes,
                               size_t         len);
void      vr_i8042_mouse_move (VrDevice     *dev,
                               int           dx,
                               int           dy,
                               int           dz,
                               unsigned      buttons);

/* CMOS RTC + NVRAM (host time, BCD/binary, 12/24h, update-in-progress, periodic IRQ).
 * NVRAM survives a machine reset, as on a PC. @memory gives the CMOS memory-size fields. */
VrDevice *vr_rtc_new          (VrBus        *pio,
                               VrIrqChip    *irq,
                               VrMemory     *memory,
                               GMainContext *io_context,
                               GError      **error);
/* Sets an NVRAM byte (0x0e–0x7f, not the century), e.g. the firmware's boot flags. */
void      vr_rtc_set_nvram    (VrDevice     *rtc,
                               unsigned      index,
                               uint8_t       value);

/* QEMU-compatible isa-debug-exit at 0xf4, 4 bytes. */
VrDevice *vr_debug_exit_new   (VrBus        *pio,
                               VrMachine    *machine,
                               GError      **error);

/* PCI host bridge, configuration mechanism #1 (0xcf8/0xcfc), bus 0 with the host bridge at
 * 00.0; also the 0xcf9 reset control register. Later issues add PCI devices to it. */
VrDevice *vr_pci_host_new     (VrBus        *pio,
                               VrMachine    *machine,
                               GError      **error);

/* Gives the host bridge (00.0) a subsystem ID, before the machine first runs. SeaBIOS
 * recognises QEMU's platform (and reads fw_cfg) by 1af4:1100 there. */
void      vr_pci_host_set_bridge_subsystem (VrDevice *host,
                                            uint16_t  vendor,
                                            uint16_t  id);
/* The PIIX3 ISA bridge (SLOT.0) and PIIX4 power management (SLOT.3) functions that PC
 * firmware expects next to the host bridge (see piix.c). */
VrDevice *vr_piix_new         (VrDevice     *host,
                               unsigned      slot,
                               GError      **error);

/* ACPI PM1a event/control blocks, PM timer, GPE0 (fixed power button, S5, SCI on GSI 9). */
VrDevice *vr_acpi_pm_new      (VrBus        *pio,
                               VrIrqChip    *irq,
                               VrMachine    *machine,
                               GError      **error);
/* Sets PWRBTN_STS and raises the SCI when the guest enabled it. */
void      vr_acpi_pm_power_button (VrDevice *dev);

/* QEMU fw_cfg I/O interface: selector 0x510, data 0x511, DMA 0x514. */
VrDevice *vr_fw_cfg_new       (VrBus        *pio,
                               VrMemory     *memory,
                               GError      **error);
/* Adds a named file ("etc/…") or a fixed item; @data is copied. */
void      vr_fw_cfg_add_item  (VrDevice     *dev,
                               uint16_t      key,
                               const void   *data,
                               size_t        len);
void      vr_fw_cfg_add_file  (VrDevice     *dev,
                               const char   *name,
                               const void   *data,
                               size_t        len);

/* Lines of the firmware's debug console (0x402) also go to vr_machine_firmware_line(). */
/* Ports the PC has but we give no behaviour: 0x80 POST codes, etc. (reads 0xff / ignored). */
VrDevice *vr_pc_misc_new      (VrBus        *pio,
                               VrMachine    *machine,
                               GError      **error);

G_END_DECLS
