/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Little-endian writers on a GByteArray, for the tables the engine builds for guests
 * (ACPI, SMBIOS). */

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

static inline void
vr_bytes_put8 (GByteArray *b, uint8_t v)
{
  g_byte_array_append (b, &v, 1);
}

static inline void
vr_bytes_put16 (GByteArray *b, uint16_t v)
{
  vr_bytes_put8 (b, v & 0xff);
  vr_bytes_put8 (b, v >> 8);
}

static inline void
vr_bytes_put32 (GByteArray *b, uint32_t v)
{
  vr_bytes_put16 (b, v & 0xffff);
  vr_bytes_put16 (b, v >> 16);
}

static inline void
vr_bytes_put64 (GByteArray *b, uint64_t v)
{
  vr_bytes_put32 (b, (uint32_t) v);
  vr_bytes_put32 (b, (uint32_t) (v >> 32));
}

G_END_DECLS
