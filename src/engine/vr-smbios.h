/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * SMBIOS tables for the firmware, as QEMU hands them to SeaBIOS through fw_cfg: the
 * structure table for VR_SMBIOS_FW_CFG_TABLES and an entry point for
 * VR_SMBIOS_FW_CFG_ANCHOR, whose table address SeaBIOS fills in (and whose checksum it
 * redoes) when it places the table; SeaBIOS wants the anchor's table length (3.0: maximum
 * size) to equal the size of the table file.
 *
 * Structures, handle = type << 8 | instance:
 *   0    BIOS: vendor "Vireo", version @version (SeaBIOS adds its own type 0 only when the
 *        table has none)
 *   1    System: "Vireo" "Vireo Virtual Machine", @uuid, @serial
 *   3    Chassis: other
 *   4    Processor: one socket of @ncpus cores, one thread each
 *   16   Physical memory array holding all of RAM
 *   17   Memory devices: one per 16 GiB of RAM ("DIMM 0", "DIMM 1", …)
 *   19   Memory array mapped addresses: RAM below 4 GiB, RAM above 4 GiB
 *   32   System boot: no errors
 *   127  End of table
 */

#define VR_SMBIOS_FW_CFG_ANCHOR  "etc/smbios/smbios-anchor"
#define VR_SMBIOS_FW_CFG_TABLES  "etc/smbios/smbios-tables"

typedef enum
{
  VR_SMBIOS_ENTRY_POINT_64,   /* SMBIOS 3.0, "_SM3_" (24 bytes) */
  VR_SMBIOS_ENTRY_POINT_32,   /* SMBIOS 2.8 through the 2.1 "_SM_" entry point (31 bytes),
                               * for guests older than SMBIOS 3.0 */
} VrSmbiosEntryPoint;

typedef struct
{
  unsigned           ncpus;            /* 1..VR_MAX_CPUS */
  uint64_t           ram_low;          /* bytes of RAM from address 0 (below the MMIO hole) */
  uint64_t           ram_high;         /* bytes of RAM from 4 GiB */
  const char        *uuid;             /* "01234567-89ab-cdef-0123-456789abcdef", or NULL */
  const char        *serial;           /* system serial number, or NULL */
  const char        *version;          /* the engine's version, NULL: this build's */
  uint64_t           firmware_size;    /* bytes of the firmware image (type 0), or 0 */
  uint32_t           cpuid_signature;  /* CPUID.1:EAX for the processor id, or 0 */
  uint32_t           cpuid_features;   /* CPUID.1:EDX */
  VrSmbiosEntryPoint entry_point;
} VrSmbiosConfig;

/* clang-format off */
/* The structure table; *@anchor gets the entry point, with its table address 0. */
GBytes *vr_smbios_build (const VrSmbiosConfig  *config,
                         GBytes               **anchor);
/* clang-format on */

G_END_DECLS
