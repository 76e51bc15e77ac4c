/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * SMBIOS structures (DMTF DSP0134) for a Vireo machine. Each structure is its formatted
 * area (type, length, handle, fields; strings referred to by 1-based index, 0 for none)
 * followed by its strings, each NUL-terminated, and one more NUL (two NULs when it has
 * none). The lengths used are those of SMBIOS 2.8 / 3.0 for each type, so every field a
 * reader may look for is there.
 */

#include "config.h"

#include "vr-smbios.h"
#include "vr-bytes.h"

#include <string.h>

#include "vr-acpi.h"
#include "vr-machine.h"
#include "vr-memory.h"

#define VENDOR          "Vireo"
#define PRODUCT         "Vireo Virtual Machine"
#define FAMILY          "Virtual Machine"

#define DIMM_SIZE       (16ull << 30)    /* RAM is described in memory devices of this size */
#define MAX_STRING      255

/* Handles: type << 8 | instance. */
#define HANDLE(type, i) ((uint16_t) ((type) << 8 | (i)))
#define NO_HANDLE       0xffff           /* "not provided" for cache handles */
#define NO_ERROR_INFO   0xfffe           /* no memory error information structure */

typedef struct
{
  GByteArray *b;
  size_t      start;      /* of the structure being built */
  GPtrArray  *strings;    /* its strings so far */
  unsigned    count;      /* structures */
  size_t      max_size;   /* the largest structure, with its strings */
} Table;

static void
put_zeros (GByteArray *b, size_t n)
{
  while (n--)
    vr_bytes_put8 (b, 0);
}

static void
struct_begin (Table *t, uint8_t type, uint8_t length, uint16_t handle)
{
  t->start = t->b->len;
  vr_bytes_put8 (t->b, type);
  vr_bytes_put8 (t->b, length);
  vr_bytes_put16 (t->b, handle);
}

/* Appends the index @s will have in the current structure's strings (0 for none or ""). */
static void
put_string (Table *t, const char *s)
{
  if (s == NULL || *s == '\0')
    {
      vr_bytes_put8 (t->b, 0);
      return;
    }
  g_assert (t->strings->len < MAX_STRING);
  g_ptr_array_add (t->strings, g_strndup (s, MAX_STRING));
  vr_bytes_put8 (t->b, (uint8_t) t->strings->len);
}

/* Closes the structure begun at t->start: checks its formatted length, adds the strings. */
static void
struct_end (Table *t)
{
  GByteArray *b = t->b;

  g_assert (b->len - t->start == b->data[t->start + 1]);
  for (guint i = 0; i < t->strings->len; i++)
    {
      const char *s = g_ptr_array_index (t->strings, i);

      g_byte_array_append (b, (const uint8_t *) s, (guint) strlen (s) + 1);
    }
  if (t->strings->len == 0)
    vr_bytes_put8 (b, 0);
  vr_bytes_put8 (b, 0);
  g_ptr_array_set_size (t->strings, 0);
  t->count++;
  t->max_size = MAX (t->max_size, b->len - t->start);
}

/* "1.2.3" → 1, 2; a part that is missing or not a number below 255 is 0. */
static void
parse_release (const char *version, uint8_t *major, uint8_t *minor)
{
  g_auto (GStrv) parts = g_strsplit (version, ".", 3);
  uint8_t *out[2] = { major, minor };

  *major = *minor = 0;
  for (unsigned i = 0; i < 2 && parts[i]; i++)
    {
      guint64 v;

      if (g_ascii_string_to_unsigned (parts[i], 10, 0, 0xfe, &v, NULL))
        *out[i] = (uint8_t) v;
    }
}

/* The UUID's text as the 16 bytes of SMBIOS 2.6+: the first three fields little-endian. */
static void
parse_uuid (const char *text, uint8_t uuid[16])
{
  static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
  uint8_t be[16] = { 0 };
  unsigned n = 0;

  memset (uuid, 0, 16);
  if (text == NULL)
    return;
  for (const char *p = text; *p && n < 32; p++)
    {
      if (*p == '-')
        continue;
      be[n / 2] |= (uint8_t) (g_ascii_xdigit_value (*p) << (n % 2 ? 0 : 4));
      n++;
    }
  for (unsigned i = 0; i < 16; i++)
    uuid[i] = be[order[i]];
}

static void
build_type0 (Table *t, const char *version, uint64_t rom_size)
{
  g_autofree char *bios_version = g_strdup_printf (VENDOR " %s", version);
  uint64_t rom_64k = rom_size >> 16;
  uint8_t major, minor;

  parse_release (version, &major, &minor);
  struct_begin (t, 0, 0x18, HANDLE (0, 0));
  put_string (t, VENDOR);                    /* vendor */
  put_string (t, bios_version);              /* BIOS version */
  vr_bytes_put16 (t->b, 0xe800);             /* starting segment: the last 96 KiB */
  put_string (t, NULL);                      /* release date */
  vr_bytes_put8 (t->b, (uint8_t) (CLAMP (rom_64k, 1, 256) - 1));  /* ROM size: 64 KiB · (n+1) */
  vr_bytes_put64 (t->b, 1u << 3);            /* characteristics: not supported */
  vr_bytes_put8 (t->b, 0);                   /* extension byte 1 */
  vr_bytes_put8 (t->b, (1u << 2) | (1u << 4));  /* byte 2: targeted content distribution, VM */
  vr_bytes_put8 (t->b, major);               /* system BIOS release */
  vr_bytes_put8 (t->b, minor);
  vr_bytes_put8 (t->b, 0xff);                /* no embedded controller */
  vr_bytes_put8 (t->b, 0xff);
  struct_end (t);
}

static void
build_type1 (Table *t, const VrSmbiosConfig *config, const char *version)
{
  uint8_t uuid[16];

  parse_uuid (config->uuid, uuid);
  struct_begin (t, 1, 0x1b, HANDLE (1, 0));
  put_string (t, VENDOR);                    /* manufacturer */
  put_string (t, PRODUCT);                   /* product name */
  put_string (t, version);                   /* version */
  put_string (t, config->serial);            /* serial number */
  g_byte_array_append (t->b, uuid, sizeof uuid);
  vr_bytes_put8 (t->b, 0x06);                /* wake-up type: power switch */
  put_string (t, NULL);                      /* SKU number */
  put_string (t, FAMILY);                    /* family */
  struct_end (t);
}

static void
build_type3 (Table *t)
{
  struct_begin (t, 3, 0x16, HANDLE (3, 0));
  put_string (t, VENDOR);                    /* manufacturer */
  vr_bytes_put8 (t->b, 0x01);                /* type: other, no lock */
  put_string (t, NULL);                      /* version */
  put_string (t, NULL);                      /* serial number */
  put_string (t, NULL);                      /* asset tag */
  vr_bytes_put8 (t->b, 0x03);                /* boot-up state: safe */
  vr_bytes_put8 (t->b, 0x03);                /* power supply state: safe */
  vr_bytes_put8 (t->b, 0x03);                /* thermal state: safe */
  vr_bytes_put8 (t->b, 0x02);                /* security status: unknown */
  vr_bytes_put32 (t->b, 0);                  /* OEM-defined */
  vr_bytes_put8 (t->b, 0);                   /* height: unspecified */
  vr_bytes_put8 (t->b, 0);                   /* power cords: unspecified */
  vr_bytes_put8 (t->b, 0);                   /* contained elements: none */
  vr_bytes_put8 (t->b, 0);                   /* contained element record length */
  put_string (t, NULL);                      /* SKU number */
  struct_end (t);
}

static void
build_type4 (Table *t, const VrSmbiosConfig *config, bool v3)
{
  unsigned cores = config->ncpus;

  /* SMBIOS 3.0 added the 16-bit core and thread counts. */
  struct_begin (t, 4, v3 ? 0x30 : 0x2a, HANDLE (4, 0));
  put_string (t, "CPU 0");                   /* socket designation */
  vr_bytes_put8 (t->b, 0x03);                /* processor type: central processor */
  vr_bytes_put8 (t->b, 0x01);                /* family: other */
  put_string (t, VENDOR);                    /* manufacturer */
  vr_bytes_put32 (t->b, config->cpuid_signature);  /* processor id: CPUID.1 EAX, EDX */
  vr_bytes_put32 (t->b, config->cpuid_features);
  put_string (t, NULL);                      /* version */
  vr_bytes_put8 (t->b, 0);                   /* voltage: unknown */
  vr_bytes_put16 (t->b, 0);                  /* external clock: unknown */
  vr_bytes_put16 (t->b, 0);                  /* max speed: unknown */
  vr_bytes_put16 (t->b, 0);                  /* current speed: unknown */
  vr_bytes_put8 (t->b, 0x41);                /* status: socket populated, CPU enabled */
  vr_bytes_put8 (t->b, 0x01);                /* upgrade: other */
  vr_bytes_put16 (t->b, NO_HANDLE);          /* L1, L2, L3 cache: not provided */
  vr_bytes_put16 (t->b, NO_HANDLE);
  vr_bytes_put16 (t->b, NO_HANDLE);
  put_string (t, NULL);                      /* serial number */
  put_string (t, NULL);                      /* asset tag */
  put_string (t, NULL);                      /* part number */
  vr_bytes_put8 (t->b, (uint8_t) MIN (cores, 0xff));  /* core count */
  vr_bytes_put8 (t->b, (uint8_t) MIN (cores, 0xff));  /* cores enabled */
  vr_bytes_put8 (t->b, (uint8_t) MIN (cores, 0xff));  /* thread count */
  /* characteristics: 64-bit capable, multi-core */
  vr_bytes_put16 (t->b, (1u << 2) | (cores > 1 ? 1u << 3 : 0));
  vr_bytes_put16 (t->b, 0x01);               /* family 2: other */
  if (v3)
    {
      vr_bytes_put16 (t->b, (uint16_t) cores);  /* core count 2 */
      vr_bytes_put16 (t->b, (uint16_t) cores);  /* cores enabled 2 */
      vr_bytes_put16 (t->b, (uint16_t) cores);  /* thread count 2 */
    }
  struct_end (t);
}

static void
build_type16 (Table *t, uint64_t ram, unsigned ndimms)
{
  uint64_t kib = ram >> 10;

  struct_begin (t, 16, 0x17, HANDLE (16, 0));
  vr_bytes_put8 (t->b, 0x01);                /* location: other */
  vr_bytes_put8 (t->b, 0x03);                /* use: system memory */
  vr_bytes_put8 (t->b, 0x03);                /* error correction: none */
  if (kib < 0x80000000u)
    {
      vr_bytes_put32 (t->b, (uint32_t) kib);  /* maximum capacity, KiB */
      vr_bytes_put16 (t->b, NO_ERROR_INFO);
      vr_bytes_put16 (t->b, (uint16_t) ndimms);
      vr_bytes_put64 (t->b, 0);              /* extended maximum capacity */
    }
  else
    {
      vr_bytes_put32 (t->b, 0x80000000u);    /* see the extended capacity */
      vr_bytes_put16 (t->b, NO_ERROR_INFO);
      vr_bytes_put16 (t->b, (uint16_t) ndimms);
      vr_bytes_put64 (t->b, ram);            /* bytes */
    }
  struct_end (t);
}

static void
build_type17 (Table *t, unsigned i, uint64_t size)
{
  g_autofree char *locator = g_strdup_printf ("DIMM %u", i);
  uint64_t mib = size >> 20;

  struct_begin (t, 17, 0x28, HANDLE (17, i));
  vr_bytes_put16 (t->b, HANDLE (16, 0));     /* physical memory array */
  vr_bytes_put16 (t->b, NO_ERROR_INFO);
  vr_bytes_put16 (t->b, 0xffff);             /* total width: unknown */
  vr_bytes_put16 (t->b, 0xffff);             /* data width: unknown */
  if (size % (1u << 20) != 0 && size < (32u << 20))
    vr_bytes_put16 (t->b, (uint16_t) (0x8000 | (size >> 10)));  /* size in KiB */
  else
    vr_bytes_put16 (t->b, (uint16_t) MIN (mib, 0x7fff));  /* size in MiB, 0x7fff: extended */
  vr_bytes_put8 (t->b, 0x09);                /* form factor: DIMM */
  vr_bytes_put8 (t->b, 0);                   /* device set: none */
  put_string (t, locator);                   /* device locator */
  put_string (t, NULL);                      /* bank locator */
  vr_bytes_put8 (t->b, 0x07);                /* memory type: RAM */
  vr_bytes_put16 (t->b, 1u << 1);            /* type detail: other */
  vr_bytes_put16 (t->b, 0);                  /* speed: unknown */
  put_string (t, VENDOR);                    /* manufacturer */
  put_string (t, NULL);                      /* serial number */
  put_string (t, NULL);                      /* asset tag */
  put_string (t, NULL);                      /* part number */
  vr_bytes_put8 (t->b, 0);                   /* attributes: rank unknown */
  vr_bytes_put32 (t->b, mib >= 0x7fff ? (uint32_t) mib : 0);  /* extended size, MiB */
  vr_bytes_put16 (t->b, 0);                  /* configured speed: unknown */
  vr_bytes_put16 (t->b, 0);                  /* minimum, maximum, configured voltage */
  vr_bytes_put16 (t->b, 0);
  vr_bytes_put16 (t->b, 0);
  struct_end (t);
}

/* RAM at [@start, @start + @size). */
static void
build_type19 (Table *t, unsigned i, uint64_t start, uint64_t size)
{
  uint64_t last = start + size - 1;

  struct_begin (t, 19, 0x1f, HANDLE (19, i));
  if ((last >> 10) < 0xffffffffu)
    {
      vr_bytes_put32 (t->b, (uint32_t) (start >> 10));  /* starting address, KiB */
      vr_bytes_put32 (t->b, (uint32_t) (last >> 10));  /* ending address, KiB, inclusive */
      vr_bytes_put16 (t->b, HANDLE (16, 0));
      vr_bytes_put8 (t->b, 1);                /* partition width: one device per row */
      vr_bytes_put64 (t->b, 0);
      vr_bytes_put64 (t->b, 0);
    }
  else
    {
      vr_bytes_put32 (t->b, 0xffffffffu);     /* see the extended addresses */
      vr_bytes_put32 (t->b, 0xffffffffu);
      vr_bytes_put16 (t->b, HANDLE (16, 0));
      vr_bytes_put8 (t->b, 1);
      vr_bytes_put64 (t->b, start);           /* bytes */
      vr_bytes_put64 (t->b, last);
    }
  struct_end (t);
}

static void
build_type32 (Table *t)
{
  struct_begin (t, 32, 0x0b, HANDLE (32, 0));
  put_zeros (t->b, 6);                       /* reserved */
  vr_bytes_put8 (t->b, 0);                   /* boot status: no errors detected */
  struct_end (t);
}

static void
build_type127 (Table *t)
{
  struct_begin (t, 127, 4, HANDLE (127, 0));
  struct_end (t);
}

static GBytes *
build_anchor_64 (size_t table_len)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();

  g_byte_array_append (a, (const uint8_t *) "_SM3_", 5);
  vr_bytes_put8 (a, 0);                      /* checksum */
  vr_bytes_put8 (a, 0x18);                   /* length */
  vr_bytes_put8 (a, 3);                      /* SMBIOS 3.0.0 */
  vr_bytes_put8 (a, 0);
  vr_bytes_put8 (a, 0);
  vr_bytes_put8 (a, 0x01);                   /* entry point revision: 3.0 */
  vr_bytes_put8 (a, 0);
  vr_bytes_put32 (a, (uint32_t) table_len);  /* structure table maximum size */
  vr_bytes_put64 (a, 0);                     /* structure table address, set by SeaBIOS */
  a->data[5] = vr_acpi_checksum (a->data, a->len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&a));
}

static GBytes *
build_anchor_32 (const Table *t)
{
  g_autoptr (GByteArray) a = g_byte_array_new ();

  vr_bytes_put32 (a, 0x5f4d535f);            /* "_SM_" */
  vr_bytes_put8 (a, 0);                      /* checksum of all 31 bytes */
  vr_bytes_put8 (a, 0x1f);                   /* length */
  vr_bytes_put8 (a, 2);                      /* SMBIOS 2.8 */
  vr_bytes_put8 (a, 8);
  vr_bytes_put16 (a, (uint16_t) t->max_size);  /* maximum structure size */
  vr_bytes_put8 (a, 0);                      /* entry point revision */
  put_zeros (a, 5);                          /* formatted area */
  g_byte_array_append (a, (const uint8_t *) "_DMI_", 5);
  vr_bytes_put8 (a, 0);                      /* intermediate checksum, of bytes 0x10-0x1e */
  vr_bytes_put16 (a, (uint16_t) t->b->len);  /* structure table length */
  vr_bytes_put32 (a, 0);                     /* structure table address, set by SeaBIOS */
  vr_bytes_put16 (a, (uint16_t) t->count);   /* number of structures */
  vr_bytes_put8 (a, 0x28);                   /* BCD revision */
  a->data[0x15] = vr_acpi_checksum (a->data + 0x10, a->len - 0x10);
  a->data[4] = vr_acpi_checksum (a->data, a->len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&a));
}

GBytes *
vr_smbios_build (const VrSmbiosConfig  *config,
                 GBytes               **anchor)
{
  g_autoptr (GByteArray) b = NULL;
  g_autoptr (GPtrArray) strings = NULL;
  const char *version;
  uint64_t ram;
  unsigned ndimms;
  Table t;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (anchor != NULL, NULL);
  g_return_val_if_fail (config->ncpus >= 1 && config->ncpus <= VR_MAX_CPUS, NULL);
  g_return_val_if_fail (config->ram_low > 0 && config->ram_low <= 4ull << 30, NULL);
  g_return_val_if_fail (config->ram_high <= VR_MAX_MEMORY, NULL);
  g_return_val_if_fail (config->uuid == NULL || g_uuid_string_is_valid (config->uuid), NULL);
  g_return_val_if_fail (config->entry_point == VR_SMBIOS_ENTRY_POINT_64
                        || config->entry_point == VR_SMBIOS_ENTRY_POINT_32, NULL);

  version = config->version ? config->version : PACKAGE_VERSION;
  ram = config->ram_low + config->ram_high;
  ndimms = (unsigned) ((ram + DIMM_SIZE - 1) / DIMM_SIZE);
  g_assert (ndimms <= 0xff);                 /* handles 0x1100 + i stay below type 19's */

  b = g_byte_array_new ();
  strings = g_ptr_array_new_with_free_func (g_free);
  t = (Table) { .b = b, .strings = strings };

  build_type0 (&t, version, config->firmware_size);
  build_type1 (&t, config, version);
  build_type3 (&t);
  build_type4 (&t, config, config->entry_point == VR_SMBIOS_ENTRY_POINT_64);
  build_type16 (&t, ram, ndimms);
  for (unsigned i = 0; i < ndimms; i++)
    build_type17 (&t, i, MIN (DIMM_SIZE, ram - (uint64_t) i * DIMM_SIZE));
  build_type19 (&t, 0, 0, config->ram_low);
  if (config->ram_high > 0)
    build_type19 (&t, 1, VR_4GIB, config->ram_high);
  build_type32 (&t);
  build_type127 (&t);

  /* The 2.1 entry point's table length is 16 bits; ours stays far below. */
  g_assert (b->len <= 0xffff);
  if (config->entry_point == VR_SMBIOS_ENTRY_POINT_64)
    *anchor = build_anchor_64 (b->len);
  else
    *anchor = build_anchor_32 (&t);
  return g_byte_array_free_to_bytes (g_steal_pointer (&b));
}
