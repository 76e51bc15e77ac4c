/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <glib.h>
#include <string.h>

#include "vr-machine.h"
#include "vr-memory.h"

static void
test_memory_small (void)
{
  g_autoptr (GError) error = NULL;
  VrMemory *mem = vr_memory_new (64u << 20, &error);
  VrE820Entry e820[8];
  unsigned n;
  uint8_t buf[16];

  g_assert_no_error (error);
  g_assert_cmpuint (vr_memory_low_size (mem), ==, 64u << 20);
  g_assert_cmpuint (vr_memory_high_size (mem), ==, 0);

  /* Every byte of RAM is reachable, nothing past it. */
  g_assert_nonnull (vr_memory_translate (mem, 0, 64u << 20));
  g_assert_nonnull (vr_memory_translate (mem, (64u << 20) - 1, 1));
  g_assert_null (vr_memory_translate (mem, (64u << 20) - 1, 2));
  g_assert_null (vr_memory_translate (mem, 64u << 20, 1));
  g_assert_null (vr_memory_translate (mem, G_MAXUINT64, 1));
  g_assert_null (vr_memory_translate (mem, 0x1000, G_MAXUINT64));
  g_assert_null (vr_memory_translate (mem, VR_4GIB, 1));

  g_assert_true (vr_memory_write (mem, 0x1000, "vireo", 6));
  g_assert_true (vr_memory_read (mem, 0x1000, buf, 6));
  g_assert_cmpstr ((char *) buf, ==, "vireo");
  g_assert_false (vr_memory_write (mem, (64u << 20) - 3, "vireo", 6));

  vr_memory_discard (mem);
  g_assert_true (vr_memory_read (mem, 0x1000, buf, 6));
  g_assert_cmpint (buf[0], ==, 0);

  n = vr_memory_e820 (mem, e820, G_N_ELEMENTS (e820));
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpuint (e820[0].addr, ==, 0);
  g_assert_cmpuint (e820[0].type, ==, VR_E820_RAM);
  g_assert_cmpuint (e820[3].addr, ==, 0x100000);
  g_assert_cmpuint (e820[3].addr + e820[3].size, ==, 64u << 20);
  vr_memory_free (mem);
}

static void
test_memory_hole (void)
{
  g_autoptr (GError) error = NULL;
  /* 4 GiB of guest RAM: 3 GiB below the hole, 1 GiB above 4 GiB (sparse: costs nothing). */
  VrMemory *mem = vr_memory_new (4ull << 30, &error);
  VrE820Entry e820[8];
  unsigned n;
  uint8_t *lo, *hi;

  g_assert_no_error (error);
  g_assert_cmpuint (vr_memory_low_size (mem), ==, VR_MMIO_HOLE_START);
  g_assert_cmpuint (vr_memory_high_size (mem), ==, (4ull << 30) - VR_MMIO_HOLE_START);

  /* The hole is not RAM: IOAPIC, LAPIC and the BARs live there. */
  g_assert_null (vr_memory_translate (mem, VR_MMIO_HOLE_START, 1));
  g_assert_null (vr_memory_translate (mem, 0xfee00000, 4));
  g_assert_null (vr_memory_translate (mem, VR_MMIO_HOLE_START - 1, 2));
  lo = vr_memory_translate (mem, VR_MMIO_HOLE_START - 1, 1);
  hi = vr_memory_translate (mem, VR_4GIB, 1);
  g_assert_nonnull (lo);
  g_assert_nonnull (hi);
  g_assert_true (hi == lo + 1);  /* one memfd, laid out contiguously */
  g_assert_nonnull (vr_memory_translate (mem, VR_4GIB + (1ull << 30) - 8, 8));
  g_assert_null (vr_memory_translate (mem, VR_4GIB + (1ull << 30) - 8, 9));

  n = vr_memory_e820 (mem, e820, G_N_ELEMENTS (e820));
  g_assert_cmpuint (n, ==, 5);
  g_assert_cmpuint (e820[4].addr, ==, VR_4GIB);
  g_assert_cmpuint (e820[4].size, ==, 1ull << 30);
  vr_memory_free (mem);
}

static void
test_memory_bad_size (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (vr_memory_new (1u << 20, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_null (vr_memory_new ((64u << 20) + 1, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_null (vr_memory_new (VR_MAX_MEMORY + 4096, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/memory/small", test_memory_small);
  g_test_add_func ("/memory/hole", test_memory_hole);
  g_test_add_func ("/memory/bad-size", test_memory_bad_size);
  return g_test_run ();
}
