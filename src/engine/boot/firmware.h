/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vr-memory.h"

G_BEGIN_DECLS

/*
 * PC firmware (SeaBIOS) as a real PC has it: the whole image is a ROM at the top of the
 * 32-bit address space, ending at 4 GiB, where the vCPU's reset vector (0xfffffff0) lands,
 * and its last 128 KiB also appear below 1 MiB (0xe0000–0xfffff, the "low mirror") where
 * 16-bit code runs.
 *
 * The high copy is a read-only KVM memory slot (guest writes exit and are dropped). The low
 * mirror is guest RAM — the "shadow RAM" a PC's PAM registers switch in — and gets a fresh
 * copy of the ROM on every boot and reset, so the firmware always starts from its pristine
 * image (SeaBIOS also re-copies itself from the high ROM when it finds it ran before).
 */

typedef struct _VrFirmware VrFirmware;

#define VR_FIRMWARE_LOW_MIRROR_END  0x100000u
#define VR_FIRMWARE_LOW_MIRROR_MAX  (128u * 1024)
#define VR_FIRMWARE_MAX_SIZE        (16u << 20)

/* Reads the image: its size must be a multiple of 64 KiB, from 64 KiB to 16 MiB (a clear
 * VR_ERROR_BAD_KERNEL error names the file otherwise, or when it cannot be read). */
VrFirmware *vr_firmware_new        (const char  *path,
                                    GError     **error);
void        vr_firmware_free       (VrFirmware  *firmware);
uint64_t    vr_firmware_get_size   (VrFirmware  *firmware);
/* Registers the ROM with @memory at 4 GiB - size, for every VM the machine creates. */
bool        vr_firmware_map        (VrFirmware  *firmware,
                                    VrMemory    *memory,
                                    GError     **error);
/* Copies the low mirror into RAM: before every boot. */
void        vr_firmware_load_low   (VrFirmware  *firmware,
                                    VrMemory    *memory);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrFirmware, vr_firmware_free)

G_END_DECLS
