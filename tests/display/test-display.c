/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The display devices and VrDisplay.
 *
 * /display-unit/… (suite 'unit'): the bochs-display card driven through its buses as a
 * hostile guest would (every register value, odd access sizes, BAR moves), without a VM:
 * the framebuffer then works through exits and its damage through the software bitmap.
 *
 * /display/… (suite 'display'): the `display` guest (tests/guests/display.c) on a real
 * machine through the engine API, on the bochs card and on virtio-gpu. The snapshot must
 * equal the documented pattern (tests/guests/display-pattern.h) pixel for pixel in both
 * modes; while the guest idles for 2 s no row is damaged and no callback runs; after its
 * 16x16 change exactly 16 rows are damaged. The same guest runs on QEMU (-device
 * bochs-display / virtio-gpu-pci) and must print the same lines (info: lines aside).
 */

#include "config.h"

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <string.h>

#include "hw/bochs-display.h"
#include "hw/pci.h"
#include "vr-display-private.h"
#include "vr-machine.h"

#include "../guests/display-pattern.h"

/* ---- unit: bochs-display ----------------------------------------------------------------- */

#define FB_ADDR   0xc0000000u
#define MMIO_ADDR 0xc1000000u
#define SLOT      3
#define DEVFN     (SLOT << 3)

typedef struct
{
  VrBus        *pio;
  VrBus        *mmio;
  VrMemory     *memory;
  GMainContext *io;
  VrDisplay    *display;
  VrDevice     *host;
  VrDevice     *bochs;
  unsigned      calls;
  VrDisplayUpdateFlags flags;
  uint64_t      rows;
} Unit;

static uint64_t
bus_in (VrBus *bus, uint64_t addr, unsigned len)
{
  uint8_t data[8] = { 0 };

  vr_bus_dispatch (bus, addr, data, len, false);
  return vr_io_get (data, len);
}

static void
bus_out (VrBus *bus, uint64_t addr, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (bus, addr, data, len, true);
}

static void
cfg_write (Unit *u, unsigned reg, unsigned len, uint32_t v)
{
  bus_out (u->pio, 0xcf8, 4, 0x80000000u | (DEVFN << 8) | (reg & 0xfc));
  bus_out (u->pio, 0xcfc + (reg & 3), len, v);
}

static uint32_t
cfg_read (Unit *u, unsigned reg, unsigned len)
{
  bus_out (u->pio, 0xcf8, 4, 0x80000000u | (DEVFN << 8) | (reg & 0xfc));
  return (uint32_t) bus_in (u->pio, 0xcfc + (reg & 3), len);
}

static uint16_t
dispi_read (Unit *u, unsigned index)
{
  return (uint16_t) bus_in (u->mmio, MMIO_ADDR + 0x500 + index * 2, 2);
}

static void
dispi_write (Unit *u, unsigned index, uint16_t v)
{
  bus_out (u->mmio, MMIO_ADDR + 0x500 + index * 2, 2, v);
}

static void
set_mode (Unit *u, unsigned w, unsigned h, unsigned bpp)
{
  dispi_write (u, VR_VBE_DISPI_INDEX_ENABLE, 0);
  dispi_write (u, VR_VBE_DISPI_INDEX_BPP, (uint16_t) bpp);
  dispi_write (u, VR_VBE_DISPI_INDEX_XRES, (uint16_t) w);
  dispi_write (u, VR_VBE_DISPI_INDEX_YRES, (uint16_t) h);
  dispi_write (u, VR_VBE_DISPI_INDEX_VIRT_WIDTH, (uint16_t) w);
  dispi_write (u, VR_VBE_DISPI_INDEX_X_OFFSET, 0);
  dispi_write (u, VR_VBE_DISPI_INDEX_Y_OFFSET, 0);
  dispi_write (u, VR_VBE_DISPI_INDEX_ENABLE, VR_VBE_DISPI_ENABLED | VR_VBE_DISPI_LFB_ENABLED);
}

static void
unit_setup (Unit *u, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  u->pio = vr_bus_new ("pio");
  u->mmio = vr_bus_new ("mmio");
  u->memory = vr_memory_new (16u << 20, &error);
  g_assert_no_error (error);
  u->io = g_main_context_new ();
  u->display = vr_display_new (u->io);
  u->host = vr_pci_host_new (u->pio, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (vr_pci_host_attach_mmio (u->host, u->mmio, 0xc0000000u, 0x3ec00000u, &error));
  u->bochs = vr_bochs_display_new (u->host, u->memory, u->display, NULL, SLOT, FB_ADDR,
                                   MMIO_ADDR, NULL, &error);
  g_assert_no_error (error);
  /* As a machine does when it creates the VM: the BARs come up decoded. */
  vr_device_reset (u->host);
  vr_device_reset (u->bochs);
}

static void
unit_teardown (Unit *u, gconstpointer data)
{
  vr_device_destroy (u->bochs);
  vr_display_free (u->display);
  vr_device_destroy (u->host);
  while (g_main_context_iteration (u->io, FALSE))
    ;
  g_main_context_unref (u->io);
  vr_memory_free (u->memory);
  vr_bus_free (u->pio);
  vr_bus_free (u->mmio);
}

static void
test_bochs_ids (Unit *u, gconstpointer data)
{
  uint8_t edid[128], sum = 0;

  g_assert_cmphex (cfg_read (u, 0x00, 4), ==, 0x11111234);
  g_assert_cmphex (cfg_read (u, 0x08, 4) >> 8, ==, 0x038000);
  g_assert_cmphex (cfg_read (u, 0x08, 1), ==, 2);
  g_assert_cmphex (cfg_read (u, 0x10, 4), ==, FB_ADDR | 0x8);
  g_assert_cmphex (cfg_read (u, 0x18, 4), ==, MMIO_ADDR);
  g_assert_cmphex (cfg_read (u, 0x04, 2) & 2, ==, 2);
  /* BAR sizing. */
  cfg_write (u, 0x10, 4, 0xffffffff);
  g_assert_cmphex (cfg_read (u, 0x10, 4), ==, (uint32_t) ~(VR_BOCHS_FB_SIZE - 1) | 0x8);
  cfg_write (u, 0x10, 4, FB_ADDR);

  g_assert_cmphex (dispi_read (u, VR_VBE_DISPI_INDEX_ID), ==, 0xb0c5);
  dispi_write (u, VR_VBE_DISPI_INDEX_ID, 0xb0c0);
  g_assert_cmphex (dispi_read (u, VR_VBE_DISPI_INDEX_ID), ==, 0xb0c5);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_VIDEO_MEMORY_64K), ==, 256);
  g_assert_cmphex (dispi_read (u, 0x7f), ==, 0xffff);
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0x600, 4), ==, 8);
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0x604, 4), ==, 0x1e1e1e1e);

  for (unsigned i = 0; i < 128; i++)
    {
      edid[i] = (uint8_t) bus_in (u->mmio, MMIO_ADDR + i, 1);
      sum = (uint8_t) (sum + edid[i]);
    }
  g_assert_cmpmem (edid, 8, "\x00\xff\xff\xff\xff\xff\xff\x00", 8);
  g_assert_cmpuint (sum, ==, 0);
  g_assert_cmpuint (edid[56] | ((edid[58] >> 4) << 8), ==, 1024);   /* preferred 1024x768 */
  g_assert_cmpuint (edid[59] | ((edid[61] >> 4) << 8), ==, 768);
  g_assert_cmpuint (bus_in (u->mmio, MMIO_ADDR + 0x3ff, 1), ==, 0);
  bus_out (u->mmio, MMIO_ADDR + 0x10, 4, 0xdeadbeef);   /* EDID is read-only */
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0x10, 1), ==, edid[0x10]);
}

static void
test_bochs_modes (Unit *u, gconstpointer data)
{
  VrDisplayMode mode;

  mode = vr_display_get_mode (u->display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_NONE);

  set_mode (u, 1024, 768, 32);
  mode = vr_display_get_mode (u->display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_XRGB8888);
  g_assert_cmpuint (mode.width, ==, 1024);
  g_assert_cmpuint (mode.height, ==, 768);
  g_assert_cmpuint (mode.stride, ==, 4096);

  set_mode (u, 800, 600, 16);
  mode = vr_display_get_mode (u->display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_RGB565);
  g_assert_cmpuint (mode.stride, ==, 1600);
  set_mode (u, 800, 600, 24);
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_RGB888);

  /* Hostile values: each shows nothing, none breaks anything. */
  {
    static const struct { unsigned w, h, bpp; } bad[] = {
      { 1024, 768, 8 }, { 1024, 768, 0 }, { 1024, 768, 0xffff }, { 0, 768, 32 },
      { 1024, 0, 32 }, { 63, 768, 32 }, { 4097, 768, 32 }, { 1024, 4097, 32 },
      { 0xffff, 0xffff, 32 }, { 4096, 4096, 32 } /* 64 MiB > 16 MiB */,
    };

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        set_mode (u, bad[i].w, bad[i].h, bad[i].bpp);
        g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
        /* The registers read back what was written, as on QEMU. */
        g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_XRES), ==, bad[i].w);
      }
  }
  set_mode (u, 1024, 768, 32);
  dispi_write (u, VR_VBE_DISPI_INDEX_VIRT_WIDTH, 0xffff);      /* stride * h > 16 MiB */
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
  dispi_write (u, VR_VBE_DISPI_INDEX_VIRT_WIDTH, 1024);
  dispi_write (u, VR_VBE_DISPI_INDEX_Y_OFFSET, 0xffff);        /* offset past the end */
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
  dispi_write (u, VR_VBE_DISPI_INDEX_Y_OFFSET, 768);           /* page flip: fits */
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_XRGB8888);
  dispi_write (u, VR_VBE_DISPI_INDEX_Y_OFFSET, 3328);          /* ends exactly at 16 MiB */
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_XRGB8888);
  dispi_write (u, VR_VBE_DISPI_INDEX_X_OFFSET, 1);             /* 4 bytes too far */
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
  dispi_write (u, VR_VBE_DISPI_INDEX_X_OFFSET, 0);
  dispi_write (u, VR_VBE_DISPI_INDEX_Y_OFFSET, 0);

  /* Byte accesses, a 4-byte access over two registers, 8 bytes at the end of the block. */
  bus_out (u->mmio, MMIO_ADDR + 0x500 + 2 * VR_VBE_DISPI_INDEX_XRES, 1, 0x80);
  bus_out (u->mmio, MMIO_ADDR + 0x500 + 2 * VR_VBE_DISPI_INDEX_XRES + 1, 1, 0x02);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_XRES), ==, 640);
  bus_out (u->mmio, MMIO_ADDR + 0x500 + 2 * VR_VBE_DISPI_INDEX_XRES, 4, (480u << 16) | 640);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_YRES), ==, 480);
  mode = vr_display_get_mode (u->display);
  g_assert_cmpuint (mode.width, ==, 640);
  g_assert_cmpuint (mode.stride, ==, 4096);   /* VIRT_WIDTH 1024 stays */
  bus_out (u->mmio, MMIO_ADDR + 0x5f8, 8, G_MAXUINT64);
  bus_out (u->mmio, MMIO_ADDR + 0xff8, 8, G_MAXUINT64);
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0xff8, 8), ==, 0);

  /* Big-endian framebuffer: not shown; garbage in the byte-order register is ignored. */
  bus_out (u->mmio, MMIO_ADDR + 0x604, 4, 0xbebebebe);
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
  bus_out (u->mmio, MMIO_ADDR + 0x604, 4, 0x12345678);
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0x604, 4), ==, 0xbebebebe);
  bus_out (u->mmio, MMIO_ADDR + 0x604, 2, 0x1e1e);
  g_assert_cmphex (bus_in (u->mmio, MMIO_ADDR + 0x604, 4), ==, 0xbebebebe);
  bus_out (u->mmio, MMIO_ADDR + 0x604, 4, 0x1e1e1e1e);
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_XRGB8888);

  /* GETCAPS: the maxima. */
  dispi_write (u, VR_VBE_DISPI_INDEX_ENABLE, VR_VBE_DISPI_GETCAPS);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_XRES), ==, 4096);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_BPP), ==, 32);
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);

  /* A reset turns the display off. */
  set_mode (u, 1024, 768, 32);
  vr_device_reset (u->bochs);
  g_assert_cmpint (vr_display_get_mode (u->display).format, ==, VR_PIXEL_FORMAT_NONE);
  g_assert_cmpuint (dispi_read (u, VR_VBE_DISPI_INDEX_XRES), ==, 0);
}

static void
on_unit_update (VrDisplay *display, const VrDisplayUpdate *update, gpointer user_data)
{
  Unit *u = user_data;

  u->calls++;
  u->flags |= update->flags;
  for (unsigned i = 0; i < update->n_rects; i++)
    {
      g_assert_cmpint (update->rects[i].x, >=, 0);
      g_assert_cmpint (update->rects[i].y + update->rects[i].height, <=,
                       (int) update->mode.height);
      g_assert_cmpint (update->rects[i].x + update->rects[i].width, <=,
                       (int) update->mode.width);
      u->rows += (uint64_t) update->rects[i].height;
    }
}

/* One refresh period: the timer on the "I/O thread", then the listener's context. */
static void
unit_refresh (Unit *u)
{
  gint64 end = g_get_monotonic_time () + 60000;

  while (g_get_monotonic_time () < end)
    {
      g_main_context_iteration (u->io, FALSE);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static void
test_bochs_damage (Unit *u, gconstpointer data)
{
  const uint8_t *pixels;
  VrDisplayMode mode;
  g_autoptr (GBytes) snap = NULL;

  set_mode (u, 1024, 768, 32);
  vr_display_set_listener (u->display, NULL, 100, on_unit_update, u, NULL);
  unit_refresh (u);
  g_assert_cmpuint (u->calls, ==, 1);
  g_assert_true (u->flags & VR_DISPLAY_UPDATE_MODE);
  g_assert_cmpuint (u->rows, ==, 768);

  /* Nothing written: no callback at all. */
  u->calls = 0;
  u->rows = 0;
  unit_refresh (u);
  g_assert_cmpuint (u->calls, ==, 0);

  /* Without a VM the framebuffer works through exits; a write into row 100 and one that
   * straddles rows 200/201 (pages 100 and 200-201 at a 4096-byte stride). */
  bus_out (u->mmio, FB_ADDR + 100 * 4096 + 8, 4, 0x00ff0000);
  bus_out (u->mmio, FB_ADDR + 201 * 4096 - 4, 8, G_MAXUINT64);
  unit_refresh (u);
  g_assert_cmpuint (u->calls, ==, 1);
  g_assert_cmpuint (u->rows, ==, 3);
  g_assert_cmpuint (bus_in (u->mmio, FB_ADDR + 100 * 4096 + 8, 4), ==, 0x00ff0000);

  pixels = vr_display_map (u->display, &mode);
  g_assert_nonnull (pixels);
  g_assert_cmpuint (mode.stride, ==, 4096);
  g_assert_cmphex (pixels[100 * 4096 + 10], ==, 0xff);
  vr_display_unmap (u->display);
  snap = vr_display_snapshot (u->display, &mode);
  g_assert_cmpuint (g_bytes_get_size (snap), ==, 1024 * 768 * 4);

  /* Writes outside the mode's rows (the last page of the 16 MiB) are no damage. */
  u->calls = 0;
  bus_out (u->mmio, FB_ADDR + VR_BOCHS_FB_SIZE - 4, 4, 1);
  unit_refresh (u);
  g_assert_cmpuint (u->calls, ==, 0);

  /* The guest moves BAR0: the framebuffer follows; turning MEM decoding off unmaps it. */
  cfg_write (u, 0x10, 4, 0xd0000000u);
  bus_out (u->mmio, 0xd0000000u + 4096 * 5, 4, 0x1234);
  g_assert_cmphex (bus_in (u->mmio, 0xd0000000u + 4096 * 5, 4), ==, 0x1234);
  g_assert_cmphex (bus_in (u->mmio, FB_ADDR + 4096 * 5, 4), ==, 0xffffffff);
  cfg_write (u, 0x04, 2, 0);
  g_assert_cmphex (bus_in (u->mmio, 0xd0000000u + 4096 * 5, 4), ==, 0xffffffff);
  cfg_write (u, 0x04, 2, 2);

  vr_display_set_listener (u->display, NULL, 0, NULL, NULL, NULL);
}

static void
test_edid (void)
{
  uint8_t edid[VR_EDID_SIZE];
  static const uint32_t sizes[][2] = { { 1024, 768 }, { 1920, 1080 }, { 0, 0 }, { 9999, 9999 } };

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      uint8_t sum = 0;

      vr_display_make_edid (sizes[i][0], sizes[i][1], edid);
      for (unsigned j = 0; j < VR_EDID_SIZE; j++)
        sum = (uint8_t) (sum + edid[j]);
      g_assert_cmpuint (sum, ==, 0);
      g_assert_cmpuint (edid[56] | ((edid[58] >> 4) << 8), ==, CLAMP (sizes[i][0], 64, 4095));
    }
}

/* ---- guest runs --------------------------------------------------------------------------- */

typedef struct
{
  const char      *gpu;        /* the guest's gpu= */
  VrDisplayDevice  device;
  const char      *qemu_device;
} GuestCase;

static const GuestCase guest_cases[] = {
  { "bochs", VR_DISPLAY_DEVICE_BOCHS, "bochs-display" },
  { "virtio", VR_DISPLAY_DEVICE_VIRTIO_GPU, "virtio-gpu-pci" },
};

typedef struct
{
  GMainContext *context;
  char         *dir;
  char         *log;
  VrMachine    *machine;
  VrDisplay    *display;
  unsigned      calls;
  bool          stopped;
  bool          track;        /* record damaged rows in @rows */
  uint8_t       rows[VR_DISPLAY_MAX_HEIGHT];
} Run;

static char *
guest_path (const char *name)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");

  return g_build_filename (dir ? dir : ".", name, NULL);
}

static void
on_event (VrMachine *machine, const VrEvent *event, gpointer user_data)
{
  Run *r = user_data;

  if (event->type == VR_EVENT_POWERED_OFF)
    r->stopped = true;
}

static void
on_update (VrDisplay *display, const VrDisplayUpdate *update, gpointer user_data)
{
  Run *r = user_data;

  r->calls++;
  if (!r->track || !(update->flags & VR_DISPLAY_UPDATE_DAMAGE))
    return;
  for (unsigned i = 0; i < update->n_rects; i++)
    for (int y = update->rects[i].y; y < update->rects[i].y + update->rects[i].height; y++)
      if (y >= 0 && y < VR_DISPLAY_MAX_HEIGHT)
        r->rows[y] = 1;
}

static char *
read_log (Run *r)
{
  char *text = NULL;

  if (!g_file_get_contents (r->log, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static bool
wait_for_line (Run *r, const char *line, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  g_autofree char *needle = g_strdup_printf ("%s\n", line);

  for (;;)
    {
      g_autofree char *text = read_log (r);

      if (strstr (text, needle))
        return true;
      if (g_get_monotonic_time () > end || r->stopped)
        return false;
      g_main_context_iteration (r->context, FALSE);
      g_usleep (5000);
    }
}

static void
spin (Run *r, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end)
    {
      g_main_context_iteration (r->context, FALSE);
      g_usleep (2000);
    }
}

/* Number of pixels that differ from the pattern (counter @counter), first one reported. */
static unsigned
compare_pattern (GBytes *snap, const VrDisplayMode *mode, uint32_t counter)
{
  const uint32_t *px = g_bytes_get_data (snap, NULL);
  unsigned bad = 0;

  for (uint32_t y = 0; y < mode->height; y++)
    for (uint32_t x = 0; x < mode->width; x++)
      {
        uint32_t got = px[y * mode->width + x] & 0xffffff;
        uint32_t want = display_pattern_pixel (x, y, mode->width, mode->height, counter);

        if (got != want && bad++ == 0)
          g_test_message ("first difference at (%u,%u): %06x, want %06x", x, y, got, want);
      }
  return bad;
}

/* Polls the snapshot until it is @w x @h and equals the pattern (the guest holds it). */
static void
check_screen (Run *r, uint32_t w, uint32_t h, uint32_t counter)
{
  gint64 end = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  unsigned bad = 0;

  for (;;)
    {
      VrDisplayMode mode = { 0 };
      g_autoptr (GBytes) snap = vr_display_snapshot (r->display, &mode);

      if (snap && mode.width == w && mode.height == h
          && (bad = compare_pattern (snap, &mode, counter)) == 0)
        break;
      if (g_get_monotonic_time () > end)
        {
          g_test_message ("screen %ux%u, %u pixels differ", mode.width, mode.height, bad);
          g_assert_not_reached ();
        }
      spin (r, 0.05);
    }
}

/* The lines a display guest prints, without the info: ones. */
static char *
normalise (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; lines[i]; i++)
    {
      g_strchomp (lines[i]);
      if (*lines[i] && !g_str_has_prefix (lines[i], "info: "))
        g_string_append_printf (out, "%s\n", lines[i]);
    }
  return g_string_free (out, FALSE);
}

static const char *
expected_lines (const GuestCase *gc)
{
  if (gc->device == VR_DISPLAY_DEVICE_BOCHS)
    return "display test\ngpu: bochs\nbochs-display: class 038000\ndispi id: b0c5\n"
           "qext: size 8, byte order 1e1e1e1e\nedid: ok\nmode 640x480: drawn\n"
           "mode 1024x768: drawn\nidle\nchanged\nPASS\n";
  return "display test\ngpu: virtio\nvirtio-gpu: class 038000\nfeatures: edid yes\n"
         "scanouts: 1\nedid: ok\nerrors: ok\nmode 640x480: drawn\nmode 1024x768: drawn\nidle\nchanged\n"
         "PASS\n";
}

static void
test_guest_vireo (gconstpointer data)
{
  const GuestCase *gc = data;
  g_autofree char *kernel = guest_path ("display.elf");
  g_autofree char *cmdline = g_strdup_printf ("gpu=%s hold=3 idle=6 strict", gc->gpu);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL, *lines = NULL;
  VrMachineConfig config;
  Run r = { 0 };
  uint64_t rows0, calls0;
  VrDisplayMode mode;
  const uint8_t *pixels;

  if (!g_file_test ("/dev/kvm", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no /dev/kvm");
      return;
    }
  r.context = g_main_context_new ();
  g_main_context_push_thread_default (r.context);
  r.dir = g_dir_make_tmp ("vireo-test-display-XXXXXX", NULL);
  r.log = g_build_filename (r.dir, "serial.log", NULL);

  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.cmdline = g_strdup (cmdline);
  config.memory = 64u << 20;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (r.log);
  config.display = gc->device;
  r.machine = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  vr_machine_set_event_func (r.machine, r.context, on_event, &r, NULL);
  r.display = vr_machine_get_display (r.machine);
  g_assert_nonnull (r.display);
  vr_display_set_listener (r.display, r.context, 60, on_update, &r, NULL);
  g_assert_true (vr_machine_start (r.machine, &error));
  g_assert_no_error (error);

  g_assert_true (wait_for_line (&r, "mode 640x480: drawn", 240));
  check_screen (&r, 640, 480, 1);
  g_assert_true (wait_for_line (&r, "mode 1024x768: drawn", 120));
  check_screen (&r, 1024, 768, 2);
  pixels = vr_display_map (r.display, &mode);
  g_assert_nonnull (pixels);
  g_assert_cmpuint (mode.stride, ==, 4096);
  g_assert_cmphex (pixels[0] | pixels[1] << 8 | pixels[2] << 16, ==, 0xffffff);
  vr_display_unmap (r.display);

  /* Idle: not one damaged row, not one callback, for 2 s. */
  g_assert_true (wait_for_line (&r, "idle", 60));
  spin (&r, 0.5);
  rows0 = vr_display_get_damaged_rows (r.display);
  calls0 = vr_display_get_updates (r.display);
  spin (&r, 2.0);
  g_test_message ("idle: %" G_GUINT64_FORMAT " rows, %" G_GUINT64_FORMAT " updates",
                  vr_display_get_damaged_rows (r.display) - rows0,
                  vr_display_get_updates (r.display) - calls0);
  g_assert_cmpuint (vr_display_get_damaged_rows (r.display), ==, rows0);
  g_assert_cmpuint (vr_display_get_updates (r.display), ==, calls0);

  /* One 16x16 square: its 16 rows, and only those. (A row can be reported twice when a
   * refresh falls in the middle of the guest's drawing: count distinct rows.) */
  memset (r.rows, 0, sizeof r.rows);
  r.track = true;
  g_assert_true (wait_for_line (&r, "changed", 60));
  spin (&r, 0.5);
  {
    unsigned distinct = 0, first = G_MAXUINT, last = 0;

    for (unsigned y = 0; y < G_N_ELEMENTS (r.rows); y++)
      if (r.rows[y])
        {
          distinct++;
          first = MIN (first, y);
          last = y;
        }
    g_test_message ("change: rows %u-%u, %u distinct, %" G_GUINT64_FORMAT " reported",
                    first, last, distinct, vr_display_get_damaged_rows (r.display) - rows0);
    g_assert_cmpuint (distinct, ==, DISPLAY_PATTERN_CELL);
    g_assert_cmpuint (first, ==, 768 / 2 + DISPLAY_PATTERN_COUNTER_DY);
    g_assert_cmpuint (last, ==, 768 / 2 + DISPLAY_PATTERN_COUNTER_DY + DISPLAY_PATTERN_CELL - 1);
  }
  r.track = false;
  g_assert_cmpuint (vr_display_get_updates (r.display) - calls0, >=, 1);
  check_screen (&r, 1024, 768, 3);

  g_assert_true (wait_for_line (&r, "PASS", 60));
  while (!r.stopped)
    spin (&r, 0.05);
  g_assert_cmpint (vr_machine_get_exit_status (r.machine), ==, 1);
  text = read_log (&r);
  lines = normalise (text);
  g_assert_cmpstr (lines, ==, expected_lines (gc));

  vr_display_set_listener (r.display, NULL, 0, NULL, NULL, NULL);
  g_clear_pointer (&r.machine, vr_machine_free);
  while (g_main_context_iteration (r.context, FALSE))
    ;
  g_unlink (r.log);
  g_rmdir (r.dir);
  g_free (r.log);
  g_free (r.dir);
  g_main_context_pop_thread_default (r.context);
  g_main_context_unref (r.context);
}

static void
test_guest_qemu (gconstpointer data)
{
  const GuestCase *gc = data;
  const char *qemu = g_getenv ("VIREO_QEMU");
  g_autofree char *kernel = guest_path ("display-pvh.elf");
  g_autofree char *append = g_strdup_printf ("gpu=%s", gc->gpu);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *lines = NULL;

  if (qemu == NULL || *qemu == '\0')
    {
      g_test_skip ("no qemu-system-x86_64 (VIREO_QEMU)");
      return;
    }
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                           &error, qemu, "-enable-kvm", "-nodefaults", "-no-user-config",
                           "-display", "none", "-M", "pc", "-m", "128",
                           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
                           "-serial", "stdio", "-device", gc->qemu_device,
                           "-kernel", kernel, "-append", append, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
  lines = normalise (out);
  g_assert_cmpstr (lines, ==, expected_lines (gc));
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/display-unit/bochs-ids", Unit, NULL, unit_setup, test_bochs_ids, unit_teardown);
  g_test_add ("/display-unit/bochs-modes", Unit, NULL, unit_setup, test_bochs_modes,
              unit_teardown);
  g_test_add ("/display-unit/bochs-damage", Unit, NULL, unit_setup, test_bochs_damage,
              unit_teardown);
  g_test_add_func ("/display-unit/edid", test_edid);
  for (gsize i = 0; i < G_N_ELEMENTS (guest_cases); i++)
    {
      g_autofree char *vireo = g_strdup_printf ("/display/%s-vireo", guest_cases[i].gpu);
      g_autofree char *qemu = g_strdup_printf ("/display/%s-qemu", guest_cases[i].gpu);

      g_test_add_data_func (qemu, &guest_cases[i], test_guest_qemu);
      g_test_add_data_func (vireo, &guest_cases[i], test_guest_vireo);
    }
  return g_test_run ();
}
