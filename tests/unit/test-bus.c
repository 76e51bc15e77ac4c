/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <glib.h>
#include <string.h>

#include "vr-bus.h"
#include "vr-machine.h"

typedef struct
{
  uint64_t last_offset;
  uint32_t last_len;
  bool     last_write;
  uint64_t last_value;
  unsigned calls;
} Recorder;

static void
record (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  Recorder *r = opaque;

  r->calls++;
  r->last_offset = offset;
  r->last_len = len;
  r->last_write = is_write;
  if (is_write)
    r->last_value = vr_io_get (data, len);
  else
    vr_io_put (data, len, 0x1122334455667788ull);
}

static void
test_bus_dispatch (void)
{
  g_autoptr (VrBus) bus = vr_bus_new ("test");
  Recorder a = { 0 }, b = { 0 };
  uint8_t data[8];

  g_assert_true (vr_bus_register (bus, 0x3f8, 8, record, &a, "a", NULL));
  g_assert_true (vr_bus_register (bus, 0x60, 1, record, &b, "b", NULL));

  vr_io_put (data, 1, 0x41);
  g_assert_true (vr_bus_dispatch (bus, 0x3f8, data, 1, true));
  g_assert_cmpuint (a.calls, ==, 1);
  g_assert_cmpuint (a.last_offset, ==, 0);
  g_assert_cmpuint (a.last_value, ==, 0x41);

  g_assert_true (vr_bus_dispatch (bus, 0x3fd, data, 2, false));
  g_assert_cmpuint (a.last_offset, ==, 5);
  g_assert_cmphex (vr_io_get (data, 2), ==, 0x7788);

  g_assert_true (vr_bus_dispatch (bus, 0x60, data, 1, false));
  g_assert_cmpuint (b.calls, ==, 1);
}

static void
test_bus_unmapped (void)
{
  g_autoptr (VrBus) bus = vr_bus_new ("test");
  Recorder a = { 0 };
  uint8_t data[8] = { 0 };

  g_assert_true (vr_bus_register (bus, 0x100, 0x10, record, &a, "a", NULL));

  /* Holes read as all ones and never reach a handler. */
  g_assert_false (vr_bus_dispatch (bus, 0xff, data, 4, false));
  g_assert_cmphex (vr_io_get (data, 4), ==, 0xffffffff);
  g_assert_false (vr_bus_dispatch (bus, 0x110, data, 1, false));
  /* An access that straddles the end of a range is dropped. */
  g_assert_false (vr_bus_dispatch (bus, 0x10e, data, 4, false));
  /* Sizes the bus cannot carry. */
  g_assert_false (vr_bus_dispatch (bus, 0x100, data, 0, true));
  g_assert_false (vr_bus_dispatch (bus, 0x100, data, 9, true));
  g_assert_cmpuint (a.calls, ==, 0);
}

static void
test_bus_overlap (void)
{
  g_autoptr (VrBus) bus = vr_bus_new ("test");
  g_autoptr (GError) error = NULL;
  Recorder a = { 0 };

  g_assert_true (vr_bus_register (bus, 0x100, 0x10, record, &a, "first", NULL));
  g_assert_false (vr_bus_register (bus, 0x10f, 1, record, &a, "second", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "first"));
  g_clear_error (&error);
  g_assert_false (vr_bus_register (bus, 0xf0, 0x11, record, &a, "third", &error));
  g_clear_error (&error);
  g_assert_false (vr_bus_register (bus, 0, 0, record, &a, "empty", &error));
  g_clear_error (&error);
  g_assert_false (vr_bus_register (bus, G_MAXUINT64, 2, record, &a, "wraps", &error));
  g_clear_error (&error);
  g_assert_true (vr_bus_register (bus, 0x110, 1, record, &a, "adjacent", NULL));
  g_assert_true (vr_bus_register (bus, 0xff, 1, record, &a, "adjacent below", NULL));

  g_assert_true (vr_bus_unregister (bus, 0x100));
  g_assert_false (vr_bus_unregister (bus, 0x100));
  g_assert_true (vr_bus_register (bus, 0x100, 0x10, record, &a, "again", NULL));
}

static void
test_bus_many (void)
{
  g_autoptr (VrBus) bus = vr_bus_new ("test");
  Recorder r[64] = { 0 };
  uint8_t data[4];

  /* Registered out of order; each lookup must find its own range. */
  for (unsigned i = 0; i < 64; i++)
    {
      unsigned slot = (i * 37) % 64;
      g_assert_true (vr_bus_register (bus, 0x1000 + slot * 0x10, 0x8, record, &r[slot], "r",
                                      NULL));
    }
  for (unsigned slot = 0; slot < 64; slot++)
    {
      g_assert_true (vr_bus_dispatch (bus, 0x1000 + slot * 0x10 + 4, data, 4, false));
      g_assert_cmpuint (r[slot].calls, ==, 1);
      g_assert_cmpuint (r[slot].last_offset, ==, 4);
      g_assert_false (vr_bus_dispatch (bus, 0x1000 + slot * 0x10 + 8, data, 1, false));
    }
}

static void
test_parse_size (void)
{
  uint64_t v;
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_parse_size ("512M", &v, NULL));
  g_assert_cmpuint (v, ==, 512ull << 20);
  g_assert_true (vr_parse_size ("2G", &v, NULL));
  g_assert_cmpuint (v, ==, 2ull << 30);
  g_assert_true (vr_parse_size ("2GiB", &v, NULL));
  g_assert_cmpuint (v, ==, 2ull << 30);
  g_assert_true (vr_parse_size ("4096", &v, NULL));
  g_assert_cmpuint (v, ==, 4096);
  g_assert_false (vr_parse_size ("", &v, &error));
  g_clear_error (&error);
  g_assert_false (vr_parse_size ("-1G", &v, &error));
  g_clear_error (&error);
  g_assert_false (vr_parse_size ("12Q", &v, &error));
  g_clear_error (&error);
  g_assert_false (vr_parse_size ("99999999999999999999T", &v, &error));
  g_clear_error (&error);
  g_assert_false (vr_parse_size ("20000000000T", &v, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bus/dispatch", test_bus_dispatch);
  g_test_add_func ("/bus/unmapped", test_bus_unmapped);
  g_test_add_func ("/bus/overlap", test_bus_overlap);
  g_test_add_func ("/bus/many", test_bus_many);
  g_test_add_func ("/config/parse-size", test_parse_size);
  return g_test_run ();
}
