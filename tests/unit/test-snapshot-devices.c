/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Device snapshots (the quiesce/save/load/resume ops of vr-device.h), device by device.
 *
 * Each test drives a device through its bus as a guest would, saves it, makes a second
 * machine's worth of buses ("side B") with a fresh device, resets that one and loads the
 * state (after a trip through serialised bytes read back as untrusted data, as from a file),
 * then checks that:
 *  - saving the loaded device gives the same bytes (save(load(save(x))) == save(x));
 *  - the guest goes on where it was (queued bytes come out in order, BARs decode at the
 *    loaded addresses, queues continue from their indices, the display shows the mode);
 *  - hostile states (wrong type or version, out-of-range values, truncated arrays, rings
 *    outside RAM, overlapping BARs...) fail with VR_ERROR_BAD_SNAPSHOT and leave the device
 *    as after a reset.
 * Both sides share one VrMemory: it stands for guest RAM restored with the snapshot. There
 * is no KVM VM: interrupts and ioeventfds are only recorded by the VrIrqChip.
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/input-event-codes.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_gpu.h>
#include <linux/virtio_input.h>
#include <linux/virtio_pci.h>
#include <string.h>
#include <unistd.h>

#include "disk/vr-disk.h"
#include "hw/bochs-display.h"
#include "hw/hw.h"
#include "hw/pci.h"
#include "virtio/virtio-private.h"
#include "vr-display-private.h"
#include "vr-machine.h"

#define RAM_SIZE     (32u << 20)
#define MMIO_BASE    VR_MMIO_HOLE_START
#define MMIO_SIZE    0x10000000ull
#define VIRTIO_BARS  (MMIO_BASE + 0x2000000)   /* above the bochs card's two BARs */

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct
{
  VrBus        *pio;
  VrBus        *mmio;
  VrDevice     *host;     /* PCI host bridge with the MMIO window attached */
  GMainContext *io;       /* this side's "I/O thread" (iterated by hand) */
  VrDisplay    *display;
} Side;

typedef struct
{
  VrIrqChip *irq;
  VrMemory  *mem;
  Side       a;
  Side       b;
  char      *tmpdir;
} Fixture;

static void
side_init (Fixture *f,
           Side    *s)
{
  g_autoptr (GError) error = NULL;

  s->pio = vr_bus_new ("port I/O");
  s->mmio = vr_bus_new ("MMIO");
  s->host = vr_pci_host_new (s->pio, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (vr_pci_host_attach_mmio (s->host, s->mmio, MMIO_BASE, MMIO_SIZE, &error));
  g_assert_no_error (error);
  s->io = g_main_context_new ();
  s->display = vr_display_new (s->io);
}

static void
side_clear (Side *s)
{
  vr_device_destroy (s->host);
  vr_display_free (s->display);
  while (g_main_context_iteration (s->io, FALSE))
    ;
  g_main_context_unref (s->io);
  vr_bus_free (s->mmio);
  vr_bus_free (s->pio);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->irq = vr_irqchip_new ();
  f->mem = vr_memory_new (RAM_SIZE, &error);
  g_assert_no_error (error);
  f->tmpdir = g_dir_make_tmp ("vireo-snapshot-devices-XXXXXX", &error);
  g_assert_no_error (error);
  side_init (f, &f->a);
  side_init (f, &f->b);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->tmpdir, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (f->tmpdir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (f->tmpdir);
  g_free (f->tmpdir);
  side_clear (&f->a);
  side_clear (&f->b);
  vr_memory_free (f->mem);
  vr_irqchip_free (f->irq);
}

/* ---- guest accesses ----------------------------------------------------------------------- */

static uint64_t
in (Side *s, uint16_t port, unsigned len)
{
  uint8_t data[8];

  vr_bus_dispatch (s->pio, port, data, len, false);
  return vr_io_get (data, len);
}

static uint8_t
inb (Side *s, uint16_t port)
{
  return (uint8_t) in (s, port, 1);
}

static void
out (Side *s, uint16_t port, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (s->pio, port, data, len, true);
}

static void
outb (Side *s, uint16_t port, uint8_t v)
{
  out (s, port, 1, v);
}

static uint64_t
mread (Side *s, uint64_t addr, unsigned len)
{
  uint8_t data[8];

  vr_bus_dispatch (s->mmio, addr, data, len, false);
  return vr_io_get (data, len);
}

static void
mwrite (Side *s, uint64_t addr, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (s->mmio, addr, data, len, true);
}

static uint32_t
cfg_read (Side *s, unsigned devfn, unsigned reg, unsigned len)
{
  out (s, 0xcf8, 4, 0x80000000u | (devfn << 8) | (reg & 0xfc));
  return (uint32_t) in (s, (uint16_t) (0xcfc + (reg & 3)), len);
}

static void
cfg_write (Side *s, unsigned devfn, unsigned reg, unsigned len, uint32_t v)
{
  out (s, 0xcf8, 4, 0x80000000u | (devfn << 8) | (reg & 0xfc));
  out (s, (uint16_t) (0xcfc + (reg & 3)), len, v);
}

static void
run_io (Side *s)
{
  /* Kicks are eventfd sources: a few rounds deliver every one that is pending. */
  for (int i = 0; i < 4; i++)
    while (g_main_context_iteration (s->io, FALSE))
      ;
}

/* ---- states ------------------------------------------------------------------------------- */

static GVariant *
save (VrDevice *dev)
{
  GVariant *v;

  g_assert_nonnull (dev->ops->save);
  v = dev->ops->save (dev);
  g_assert_nonnull (v);
  return g_variant_ref_sink (v);
}

/* @state as it comes back from a snapshot file: serialised, then read as untrusted data. */
static GVariant *
through_file (GVariant *state)
{
  g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (state);

  return g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (state), bytes,
                                                       FALSE));
}

static void
assert_same_state (GVariant *x,
                   GVariant *y)
{
  g_assert_cmpstr (g_variant_get_type_string (x), ==, g_variant_get_type_string (y));
  g_assert_cmpuint (g_variant_get_size (x), ==, g_variant_get_size (y));
  g_assert_true (memcmp (g_variant_get_data (x), g_variant_get_data (y),
                         g_variant_get_size (x)) == 0);
}

/* Resets @dev and loads @state, which must work. */
static void
load_ok (VrDevice *dev,
         GVariant *state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) file = through_file (state);

  vr_device_reset (dev);
  if (!dev->ops->load (dev, file, &error))
    g_error ("load failed: %s", error->message);
}

/* Loads @state into @to (reset first) and checks that @to saves the same bytes. */
static void
roundtrip (VrDevice *to,
           GVariant *state)
{
  g_autoptr (GVariant) again = NULL;

  load_ok (to, state);
  again = save (to);
  assert_same_state (state, again);
}

/* Resets @dev and loads @state (sunk), which must fail naming @fragment. */
static void
load_fails (VrDevice   *dev,
            GVariant   *state,
            const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) owned = g_variant_ref_sink (state);
  g_autoptr (GVariant) file = through_file (owned);

  vr_device_reset (dev);
  g_assert_false (dev->ops->load (dev, file, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT);
  g_test_message ("refused as it should: %s", error->message);
  if (fragment && !strstr (error->message, fragment))
    g_error ("“%s” does not say “%s”", error->message, fragment);
}

/* @tuple with child @index replaced by @replacement (floating, consumed). */
static GVariant *
with_child (GVariant *tuple,
            gsize     index,
            GVariant *replacement)
{
  gsize n = g_variant_n_children (tuple);
  g_autofree GVariant **children = g_new0 (GVariant *, n);
  GVariant *v;

  g_variant_ref_sink (replacement);
  for (gsize i = 0; i < n; i++)
    children[i] = i == index ? g_variant_ref (replacement)
                             : g_variant_get_child_value (tuple, i);
  v = g_variant_new_tuple (children, n);
  for (gsize i = 0; i < n; i++)
    g_variant_unref (children[i]);
  g_variant_unref (replacement);
  return v;
}

/* An array @array with element @index replaced by @elem (floating; NULL: removed). */
static GVariant *
with_element (GVariant *array,
              gsize     index,
              GVariant *elem)
{
  GVariantBuilder b;
  gsize n = g_variant_n_children (array);

  if (elem)
    g_variant_ref_sink (elem);
  g_variant_builder_init (&b, g_variant_get_type (array));
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) c = g_variant_get_child_value (array, i);

      if (i != index)
        g_variant_builder_add_value (&b, c);
      else if (elem)
        g_variant_builder_add_value (&b, elem);
    }
  if (elem)
    g_variant_unref (elem);
  return g_variant_builder_end (&b);
}

static GVariant *
child (GVariant *tuple,
       gsize     index)
{
  return g_variant_get_child_value (tuple, index);
}

static GVariant *
bytes_of (const void *data,
          gsize       len)
{
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1);
}

/* The generic hostile cases: another type, a newer version, no state at all. */
static void
check_wrong_types (VrDevice *dev,
                   GVariant *good)
{
  g_autoptr (GError) error = NULL;

  load_fails (dev, g_variant_new ("(qs)", 1, "hello"), "type");
  load_fails (dev, g_variant_new ("s", "hello"), "type");
  load_fails (dev, with_child (good, 0, g_variant_new_uint16 (2)), "version 2");
  vr_device_reset (dev);
  g_assert_false (dev->ops->load (dev, NULL, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT);
}

/* ---- serial ------------------------------------------------------------------------------- */

#define COM1 VR_COM1_BASE

static VrDevice *
new_serial (Fixture *f, Side *s)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_serial_new (s->pio, COM1, f->irq, VR_COM1_IRQ, NULL, NULL, &error);

  g_assert_no_error (error);
  return dev;
}

static void
test_serial (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_serial (f, &f->a);
  VrDevice *b = new_serial (f, &f->b);
  g_autoptr (GVariant) state = NULL;
  uint8_t fifo[17] = { 0 };

  /* 9600 8N1, FIFO on (trigger 14), RX data and line status interrupts, a scratch value,
   * and three bytes received through loopback that the guest has not read yet. */
  outb (&f->a, COM1 + 3, 0x80);
  outb (&f->a, COM1 + 0, 0x0c);
  outb (&f->a, COM1 + 1, 0x00);
  outb (&f->a, COM1 + 3, 0x03);
  outb (&f->a, COM1 + 2, 0xc7);
  outb (&f->a, COM1 + 1, 0x05);
  outb (&f->a, COM1 + 7, 0x5a);
  outb (&f->a, COM1 + 4, 0x10 | 0x0b);
  outb (&f->a, COM1, 'a');
  outb (&f->a, COM1, 'b');
  outb (&f->a, COM1, 'c');
  state = save (a);
  roundtrip (b, state);

  /* The registers read back; the bytes come out in order; IIR says "timeout" (3 < 14). */
  g_assert_cmphex (inb (&f->b, COM1 + 7), ==, 0x5a);
  g_assert_cmphex (inb (&f->b, COM1 + 3), ==, 0x03);
  g_assert_cmphex (inb (&f->b, COM1 + 1), ==, 0x05);
  g_assert_cmphex (inb (&f->b, COM1 + 4), ==, 0x1b);
  outb (&f->b, COM1 + 3, 0x83);
  g_assert_cmphex (inb (&f->b, COM1 + 0), ==, 0x0c);
  outb (&f->b, COM1 + 3, 0x03);
  g_assert_cmphex (inb (&f->b, COM1 + 2), ==, 0xcc);
  g_assert_cmphex (inb (&f->b, COM1 + 5) & 0x61, ==, 0x61);
  g_assert_cmpuint (inb (&f->b, COM1), ==, 'a');
  g_assert_cmpuint (inb (&f->b, COM1), ==, 'b');
  g_assert_cmpuint (inb (&f->b, COM1), ==, 'c');
  g_assert_cmphex (inb (&f->b, COM1 + 5) & 0x01, ==, 0);
  g_assert_cmphex (inb (&f->b, COM1 + 2), ==, 0xc1);

  /* Hostile states. */
  check_wrong_types (b, state);
  load_fails (b, with_child (state, 1, g_variant_new_byte (0xff)), "IER");
  load_fails (b, with_child (state, 2, g_variant_new_byte (0x20)), "FCR");
  load_fails (b, with_child (state, 4, g_variant_new_byte (0xe0)), "MCR");
  load_fails (b, with_child (state, 11, bytes_of (fifo, sizeof fifo)), "FIFO");
  {
    /* FIFO off: one byte at most. */
    g_autoptr (GVariant) off = g_variant_ref_sink (with_child (state, 2,
                                                               g_variant_new_byte (0x00)));
    load_fails (b, off, "receive buffer");
  }
  load_fails (b, with_child (state, 5, g_variant_new_byte (0x01)), "LSR");
  load_fails (b, with_child (state, 6, g_variant_new_byte (0x00)), "MSR");
  /* After a failed load the port is as after reset: scratch 0, nothing received. */
  g_assert_cmphex (inb (&f->b, COM1 + 7), ==, 0);
  g_assert_cmphex (inb (&f->b, COM1 + 5) & 0x01, ==, 0);

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- i8042 -------------------------------------------------------------------------------- */

static VrDevice *
new_i8042 (Fixture *f, Side *s)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_i8042_new (s->pio, f->irq, NULL, &error);

  g_assert_no_error (error);
  return dev;
}

/* Reads the output buffer while it is full: what the guest's driver would get. */
static GByteArray *
i8042_drain (Side *s)
{
  GByteArray *bytes = g_byte_array_new ();

  for (int i = 0; i < 600 && (inb (s, 0x64) & 0x01); i++)
    {
      uint8_t b = inb (s, 0x60);

      g_byte_array_append (bytes, &b, 1);
    }
  return bytes;
}

static void
i8042_same_output (Side *x, Side *y)
{
  g_autoptr (GByteArray) bx = i8042_drain (x);
  g_autoptr (GByteArray) by = i8042_drain (y);

  g_assert_cmpmem (bx->data, bx->len, by->data, by->len);
}

static void
mouse_cmd (Side *s, uint8_t v)
{
  outb (s, 0x64, 0xd4);
  outb (s, 0x60, v);
}

static void
test_i8042 (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_i8042 (f, &f->a);
  VrDevice *b = new_i8042 (f, &f->b);
  g_autoptr (GVariant) state = NULL;
  g_autoptr (GVariant) again = NULL;
  g_autoptr (GVariant) leds = NULL, id = NULL;
  static const uint8_t keys[] = { 0x1e, 0x9e, 0x30, 0xb0 };
  uint8_t rates[3] = { 0 };
  uint8_t big[300] = { 0 };
  uint16_t words[1] = { 0x2aa };

  /* Mouse on, both interrupts, translation on. */
  outb (&f->a, 0x64, 0x60);
  outb (&f->a, 0x60, 0x47);
  outb (&f->a, 0x64, 0xa8);
  /* Keyboard LEDs: Scroll + Caps. */
  outb (&f->a, 0x60, 0xed);
  outb (&f->a, 0x60, 0x05);
  /* IntelliMouse knock (200, 100, 80), then reporting on. */
  mouse_cmd (&f->a, 0xf3);
  mouse_cmd (&f->a, 200);
  mouse_cmd (&f->a, 0xf3);
  mouse_cmd (&f->a, 100);
  mouse_cmd (&f->a, 0xf3);
  mouse_cmd (&f->a, 80);
  mouse_cmd (&f->a, 0xf4);
  vr_i8042_mouse_move (a, 5, -3, 1, 1);
  vr_i8042_kbd_put (a, keys, sizeof keys);
  /* The guest has read a few bytes; more wait, one of them in the output buffer. */
  for (int i = 0; i < 3; i++)
    inb (&f->a, 0x60);
  g_assert_cmphex (inb (&f->a, 0x64) & 0x01, ==, 0x01);

  state = save (a);
  roundtrip (b, state);
  again = save (b);
  leds = child (again, 14);
  id = child (again, 23);
  g_assert_cmpuint (g_variant_get_byte (leds), ==, 0x05);
  g_assert_cmpuint (g_variant_get_byte (id), ==, 3);

  /* Both go on with the same bytes, in the same order, then answer the same commands. */
  g_assert_cmphex (inb (&f->b, 0x64), ==, inb (&f->a, 0x64));
  i8042_same_output (&f->a, &f->b);
  mouse_cmd (&f->a, 0xf2);
  mouse_cmd (&f->b, 0xf2);
  outb (&f->a, 0x60, 0xee);
  outb (&f->b, 0x60, 0xee);
  vr_i8042_mouse_move (a, -7, 2, 0, 0);
  vr_i8042_mouse_move (b, -7, 2, 0, 0);
  vr_i8042_kbd_put (a, keys, 2);
  vr_i8042_kbd_put (b, keys, 2);
  {
    g_autoptr (GByteArray) bx = i8042_drain (&f->a);
    g_autoptr (GByteArray) by = i8042_drain (&f->b);

    g_assert_cmpmem (bx->data, bx->len, by->data, by->len);
    /* The mouse still says it is an IntelliMouse (ACK, 3), with 4-byte packets. */
    g_assert_cmpuint (by->len, ==, 2 + 1 + 4 + 2);
  }

  check_wrong_types (b, state);
  load_fails (b, with_child (state, 1, g_variant_new_byte (0x02)), "status");
  load_fails (b, with_child (state, 1, g_variant_new_byte (0x24)), "aux");
  load_fails (b, with_child (state, 4, g_variant_new_byte (0x42)), "command");
  load_fails (b, with_child (state, 7, bytes_of (big, 31)), "RAM");
  load_fails (b, with_child (state, 8, g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, words,
                                                                  1, 2)), "controller queue");
  load_fails (b, with_child (state, 9, bytes_of (big, sizeof big)), "queue");
  load_fails (b, with_child (state, 12, g_variant_new_byte (0x11)), "keyboard command");
  load_fails (b, with_child (state, 13, g_variant_new_byte (7)), "scan code set");
  load_fails (b, with_child (state, 14, g_variant_new_byte (0x08)), "LEDs");
  load_fails (b, with_child (state, 21, g_variant_new_byte (4)), "resolution");
  load_fails (b, with_child (state, 23, g_variant_new_byte (5)), "mouse ID");
  load_fails (b, with_child (state, 24, bytes_of (rates, 2)), "sample rates");
  load_fails (b, with_child (state, 25, g_variant_new_uint32 (0x20)), "buttons");
  /* As after reset: nothing to read. */
  g_assert_cmphex (inb (&f->b, 0x64) & 0x01, ==, 0);

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- RTC ---------------------------------------------------------------------------------- */

static VrDevice *
new_rtc (Fixture *f, Side *s)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_rtc_new (s->pio, f->irq, f->mem, NULL, &error);

  g_assert_no_error (error);
  return dev;
}

static uint8_t
cmos_read (Side *s, uint8_t reg)
{
  outb (s, 0x70, reg);
  return inb (s, 0x71);
}

static void
cmos_write (Side *s, uint8_t reg, uint8_t v)
{
  outb (s, 0x70, reg);
  outb (s, 0x71, v);
}

static void
test_rtc (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_rtc (f, &f->a);
  VrDevice *b = new_rtc (f, &f->b);
  g_autoptr (GVariant) stopped = NULL, running = NULL;
  uint8_t cmos[128] = { 0 };

  /* Clock stopped (SET) at 1999-12-24 10:15:30, no periodic rate: a state that does not
   * move. NVRAM bytes, and the index register left pointing at 0x0e. */
  cmos_write (&f->a, 0x0b, 0x82);
  cmos_write (&f->a, 0x0a, 0x20);
  cmos_write (&f->a, 0x00, 0x30);
  cmos_write (&f->a, 0x02, 0x15);
  cmos_write (&f->a, 0x04, 0x10);
  cmos_write (&f->a, 0x07, 0x24);
  cmos_write (&f->a, 0x08, 0x12);
  cmos_write (&f->a, 0x09, 0x99);
  cmos_write (&f->a, 0x32, 0x19);
  cmos_write (&f->a, 0x40, 0xab);
  cmos_write (&f->a, 0x7f, 0xcd);
  outb (&f->a, 0x70, 0x0e);
  stopped = save (a);
  roundtrip (b, stopped);
  g_assert_cmphex (inb (&f->b, 0x71), ==, cmos_read (&f->a, 0x0e));
  g_assert_cmphex (cmos_read (&f->b, 0x40), ==, 0xab);
  g_assert_cmphex (cmos_read (&f->b, 0x7f), ==, 0xcd);
  g_assert_cmphex (cmos_read (&f->b, 0x00), ==, 0x30);
  g_assert_cmphex (cmos_read (&f->b, 0x0b), ==, 0x82);

  /* Running from there: the restored clock reads the same time. */
  cmos_write (&f->a, 0x0b, 0x02);
  running = save (a);
  load_ok (b, running);
  g_assert_cmphex (cmos_read (&f->b, 0x09), ==, 0x99);
  g_assert_cmphex (cmos_read (&f->b, 0x08), ==, 0x12);
  g_assert_cmphex (cmos_read (&f->b, 0x04), ==, cmos_read (&f->a, 0x04));
  g_assert_cmphex (cmos_read (&f->b, 0x02), ==, cmos_read (&f->a, 0x02));

  check_wrong_types (b, stopped);
  load_fails (b, with_child (stopped, 1, g_variant_new_byte (0x80)), "index");
  load_fails (b, with_child (stopped, 2, g_variant_new_int64 (G_MAXINT64)), "offset");
  load_fails (b, with_child (stopped, 3, bytes_of (cmos, 127)), "CMOS");
  cmos[0x0a] = 0xa0;
  load_fails (b, with_child (stopped, 3, bytes_of (cmos, 128)), "register A");

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- ACPI PM ------------------------------------------------------------------------------ */

static VrDevice *
new_acpi_pm (Fixture *f, Side *s)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_acpi_pm_new (s->pio, f->irq, NULL, &error);

  g_assert_no_error (error);
  return dev;
}

static void
test_acpi_pm (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_acpi_pm (f, &f->a);
  VrDevice *b = new_acpi_pm (f, &f->b);
  g_autoptr (GVariant) state = NULL, again = NULL, saved_timer = NULL;
  uint32_t timer;

  out (&f->a, VR_ACPI_PM_BASE + 2, 2, 0x0100);      /* PWRBTN_EN */
  out (&f->a, VR_ACPI_PM_BASE + 0x22, 2, 0x0001);   /* a GPE enable */
  out (&f->a, VR_ACPI_PM_BASE + 4, 2, 5 << 10);     /* SLP_TYP, no SLP_EN */
  vr_acpi_pm_power_button (a);
  state = save (a);
  load_ok (b, state);
  again = save (b);
  /* Everything but the running timer saves the same. */
  for (gsize i = 0; i < 6; i++)
    {
      g_autoptr (GVariant) x = child (state, i), y = child (again, i);

      g_assert_true (g_variant_equal (x, y));
    }
  g_assert_cmphex (in (&f->b, VR_ACPI_PM_BASE, 2) & 0x0100, ==, 0x0100);
  g_assert_cmphex (in (&f->b, VR_ACPI_PM_BASE + 4, 2), ==, 0x1401);
  g_assert_cmphex (in (&f->b, VR_ACPI_PM_BASE + 0x22, 2), ==, 0x0001);
  /* The PM timer goes on from the saved count (well within a second of it). */
  saved_timer = child (state, 6);
  timer = (uint32_t) in (&f->b, VR_ACPI_PM_BASE + 8, 4);
  g_assert_cmpuint ((timer - g_variant_get_uint32 (saved_timer)) & 0xffffff, <, 3579545);

  check_wrong_types (b, state);
  load_fails (b, with_child (state, 1, g_variant_new_uint16 (0x4000)), "PM1_STS");
  load_fails (b, with_child (state, 2, g_variant_new_uint16 (0x8000)), "PM1_EN");
  load_fails (b, with_child (state, 3, g_variant_new_uint16 (0x0000)), "PM1_CNT");
  load_fails (b, with_child (state, 3, g_variant_new_uint16 (0x2001)), "PM1_CNT");
  load_fails (b, with_child (state, 7, g_variant_new_uint32 (0x200)), "epoch");
  g_assert_cmphex (in (&f->b, VR_ACPI_PM_BASE + 2, 2), ==, 0);

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- pc-misc, debug-exit ------------------------------------------------------------------ */

static void
test_pc_misc (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *a = vr_pc_misc_new (f->a.pio, NULL, &error);
  VrDevice *b = vr_pc_misc_new (f->b.pio, NULL, &error);
  VrDevice *exit_dev = vr_debug_exit_new (f->a.pio, NULL, &error);
  g_autoptr (GVariant) state = NULL;

  g_assert_no_error (error);
  /* A20 off through port 0x92. */
  outb (&f->a, 0x92, 0x00);
  state = save (a);
  roundtrip (b, state);
  g_assert_cmphex (inb (&f->b, 0x92), ==, 0x00);
  vr_device_reset (b);
  g_assert_cmphex (inb (&f->b, 0x92), ==, 0x02);

  check_wrong_types (b, state);
  load_fails (b, with_child (state, 1, g_variant_new_byte (0x03)), "0x92");

  /* The debug-exit port has no state. */
  g_assert_null (exit_dev->ops->save);
  g_assert_null (exit_dev->ops->load);

  vr_device_destroy (exit_dev);
  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- fw_cfg ------------------------------------------------------------------------------- */

static VrDevice *
new_fw_cfg (Fixture *f, Side *s, const uint8_t *file, gsize len)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_fw_cfg_new (s->pio, f->mem, &error);

  g_assert_no_error (error);
  vr_fw_cfg_add_file (dev, "etc/test", file, len);
  vr_fw_cfg_add_item (dev, 0x05, "\x02\x00", 2);
  return dev;
}

static void
test_fw_cfg (Fixture *f, gconstpointer data)
{
  uint8_t file[100];
  VrDevice *a, *b;
  g_autoptr (GVariant) state = NULL;
  uint8_t dma[7] = { 0 };

  for (unsigned i = 0; i < sizeof file; i++)
    file[i] = (uint8_t) (i * 7 + 1);
  a = new_fw_cfg (f, &f->a, file, sizeof file);
  b = new_fw_cfg (f, &f->b, file, sizeof file);

  /* "etc/test" is the only file: selector 0x20. Read 10 bytes, then half a DMA address. */
  out (&f->a, VR_FW_CFG_BASE, 2, 0x20);
  for (unsigned i = 0; i < 10; i++)
    g_assert_cmpuint (inb (&f->a, VR_FW_CFG_BASE + 1), ==, file[i]);
  out (&f->a, VR_FW_CFG_BASE + 4, 4, 0x12345678);
  state = save (a);
  roundtrip (b, state);
  for (unsigned i = 10; i < sizeof file; i++)
    g_assert_cmpuint (inb (&f->b, VR_FW_CFG_BASE + 1), ==, file[i]);
  g_assert_cmpuint (inb (&f->b, VR_FW_CFG_BASE + 1), ==, 0);

  check_wrong_types (b, state);
  load_fails (b, with_child (state, 1, g_variant_new_uint16 (0x21)), "does not exist");
  load_fails (b, with_child (state, 1, g_variant_new_uint16 (0x4020)), "write bit");
  load_fails (b, with_child (state, 2, g_variant_new_uint32 (101)), "past the end");
  load_fails (b, with_child (state, 3, bytes_of (dma, sizeof dma)), "DMA");
  {
    /* Nothing selected, offset 0: fine; nothing selected with an offset: not. */
    g_autoptr (GVariant) none = g_variant_ref_sink (with_child (state, 1,
                                                                g_variant_new_uint16 (0xffff)));
    g_autoptr (GVariant) none0 = g_variant_ref_sink (with_child (none, 2,
                                                                 g_variant_new_uint32 (0)));

    load_fails (b, none, "past the end");
    load_ok (b, none0);
    g_assert_cmpuint (inb (&f->b, VR_FW_CFG_BASE + 1), ==, 0);
  }
  /* The fixed item: its offset too. */
  {
    g_autoptr (GVariant) item = g_variant_ref_sink (with_child (state, 1,
                                                                g_variant_new_uint16 (0x05)));
    g_autoptr (GVariant) item1 = g_variant_ref_sink (with_child (item, 2,
                                                                 g_variant_new_uint32 (1)));

    load_ok (b, item1);
    g_assert_cmpuint (inb (&f->b, VR_FW_CFG_BASE + 1), ==, 0x00);
    load_fails (b, with_child (item, 2, g_variant_new_uint32 (3)), "past the end");
  }

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- PCI host ----------------------------------------------------------------------------- */

typedef struct
{
  VrPciFunction fn;
  uint8_t       regs[16];
  uint64_t      bar_addr[VR_PCI_NUM_BARS];
} TestFn;

static void
test_bar_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  TestFn *t = opaque;

  if (offset + len > sizeof t->regs)
    {
      if (!is_write)
        memset (data, 0xee, len);
      return;
    }
  if (is_write)
    memcpy (t->regs + offset, data, len);
  else
    memcpy (data, t->regs + offset, len);
}

static void
test_bar_update (VrPciFunction *fn, unsigned bar, uint64_t addr)
{
  ((TestFn *) fn)->bar_addr[bar] = addr;
}

static const VrPciFunctionOps test_fn_ops = {
  .bar_update = test_bar_update,
};

static void
test_fn_plug (Side *s, TestFn *t, unsigned slot, uint16_t device, bool mem_bar)
{
  g_autoptr (GError) error = NULL;

  vr_pci_function_init (&t->fn, 0x1af4, device, 0x020000, 1, &test_fn_ops, t);
  for (unsigned i = 0; i < VR_PCI_NUM_BARS; i++)
    t->bar_addr[i] = VR_PCI_BAR_UNMAPPED;
  g_assert_true (vr_pci_function_set_bar (&t->fn, 0, VR_PCI_BAR_IO, 16, false, test_bar_io, t,
                                          &error));
  if (mem_bar)
    g_assert_true (vr_pci_function_set_bar (&t->fn, 1, VR_PCI_BAR_MEM32, 4096, false,
                                            test_bar_io, t, &error));
  g_assert_true (vr_pci_host_add_function (s->host, &t->fn, slot, 0, &error));
  g_assert_no_error (error);
}

/* The state's function array with @devfn's configuration space edited by @edit. */
static GVariant *
with_config (GVariant   *state,
             unsigned    devfn,
             unsigned    offset,
             unsigned    len,
             uint32_t    value)
{
  g_autoptr (GVariant) fns = child (state, 3);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(yay)"));
  for (gsize i = 0; i < g_variant_n_children (fns); i++)
    {
      g_autoptr (GVariant) bytes = NULL;
      uint8_t d, config[VR_PCI_CONFIG_SIZE];
      gsize n;

      g_variant_get_child (fns, i, "(y@ay)", &d, &bytes);
      memcpy (config, g_variant_get_fixed_array (bytes, &n, 1), sizeof config);
      g_assert_cmpuint (n, ==, sizeof config);
      if (d == devfn)
        for (unsigned k = 0; k < len; k++)
          config[offset + k] = (uint8_t) (value >> (8 * k));
      g_variant_builder_add (&b, "(y@ay)", d, bytes_of (config, sizeof config));
    }
  return with_child (state, 3, g_variant_builder_end (&b));
}

static void
test_pci_host (Fixture *f, gconstpointer data)
{
  TestFn a1 = { 0 }, a2 = { 0 }, b1 = { 0 }, b2 = { 0 };
  uint64_t mem_bar = MMIO_BASE + 0x3000000;
  g_autoptr (GVariant) state = NULL, fns = NULL;
  uint8_t short_config[255] = { 0 };

  test_fn_plug (&f->a, &a1, 3, 0x1000, true);
  test_fn_plug (&f->a, &a2, 4, 0x1001, false);
  test_fn_plug (&f->b, &b1, 3, 0x1000, true);
  test_fn_plug (&f->b, &b2, 4, 0x1001, false);

  /* What firmware and a driver leave: BARs assigned and decoded, a chipset register, the
   * address latch pointing somewhere, the reset control's hard-reset bit. */
  cfg_write (&f->a, 3 << 3, 0x10, 4, 0xc000);
  cfg_write (&f->a, 3 << 3, 0x14, 4, (uint32_t) mem_bar);
  cfg_write (&f->a, 3 << 3, 0x04, 2, VR_PCI_COMMAND_IO | VR_PCI_COMMAND_MEMORY);
  cfg_write (&f->a, 3 << 3, 0x3c, 1, 11);
  cfg_write (&f->a, 4 << 3, 0x10, 4, 0xc100);
  cfg_write (&f->a, 4 << 3, 0x04, 2, VR_PCI_COMMAND_IO | VR_PCI_COMMAND_MASTER);
  cfg_write (&f->a, 0, 0x59, 1, 0x33);
  out (&f->a, 0xcf8, 4, 0x80001810);
  outb (&f->a, 0xcf9, 0x02);
  g_assert_cmphex (a1.bar_addr[0], ==, 0xc000);
  g_assert_cmphex (a1.bar_addr[1], ==, mem_bar);

  state = save (f->a.host);
  roundtrip (f->b.host, state);

  /* The BARs are mapped where they were, through the same hooks as a guest's write. */
  g_assert_cmphex (b1.bar_addr[0], ==, 0xc000);
  g_assert_cmphex (b1.bar_addr[1], ==, mem_bar);
  g_assert_cmphex (b2.bar_addr[0], ==, 0xc100);
  out (&f->b, 0xc004, 4, 0xfeedf00d);
  g_assert_cmphex (vr_pci_get_long (b1.regs, 4), ==, 0xfeedf00d);
  mwrite (&f->b, mem_bar + 8, 4, 0x01020304);
  g_assert_cmphex (vr_pci_get_long (b1.regs, 8), ==, 0x01020304);
  out (&f->b, 0xc108, 2, 0xbeef);
  g_assert_cmphex (vr_pci_get_word (b2.regs, 8), ==, 0xbeef);
  g_assert_cmphex (a1.regs[4], ==, 0);   /* side A untouched */
  /* The latch, the reset control, the chipset register, the interrupt line. */
  g_assert_cmphex (in (&f->b, 0xcf8, 4), ==, 0x80001810);
  g_assert_cmphex (inb (&f->b, 0xcf9), ==, 0x02);
  g_assert_cmphex (cfg_read (&f->b, 0, 0x59, 1), ==, 0x33);
  g_assert_cmphex (cfg_read (&f->b, 3 << 3, 0x3c, 1), ==, 11);

  /* Hostile states; after each, the bus is as after reset (nothing decoded). */
  check_wrong_types (f->b.host, state);
  load_fails (f->b.host, with_config (state, 4 << 3, 0x10, 4, 0xc001), "overlaps");
  g_assert_cmphex (b1.bar_addr[0], ==, VR_PCI_BAR_UNMAPPED);
  g_assert_cmphex (b2.bar_addr[0], ==, VR_PCI_BAR_UNMAPPED);
  load_fails (f->b.host, with_config (state, 3 << 3, 0x00, 2, 0x8086), "another device");
  load_fails (f->b.host, with_config (state, 4 << 3, 0x0e, 1, 0x80), "another device");
  load_fails (f->b.host, with_child (state, 1, g_variant_new_uint32 (0x80000001)),
              "CONFIG_ADDRESS");
  load_fails (f->b.host, with_child (state, 2, g_variant_new_byte (0x04)), "reset control");
  fns = child (state, 3);
  load_fails (f->b.host, with_child (state, 3, with_element (fns, 2, NULL)), "no state for");
  load_fails (f->b.host, with_child (state, 3, with_element (fns, 2,
                                                             g_variant_new ("(y@ay)", 5 << 3,
                                                                            bytes_of (short_config,
                                                                                      255)))),
              "has a device at 00:05.0");
  load_fails (f->b.host, with_child (state, 3, with_element (fns, 2,
                                                             g_variant_new ("(y@ay)", 4 << 3,
                                                                            bytes_of (short_config,
                                                                                      255)))),
              "255 bytes");
  {
    g_autoptr (GVariant) first = g_variant_get_child_value (fns, 1);

    load_fails (f->b.host, with_child (state, 3, with_element (fns, 2, first)),
                "saved twice");
  }
  g_assert_cmphex (in (&f->b, 0xcf8, 4), ==, 0);
  out (&f->b, 0xc004, 4, 0);
  g_assert_cmphex (vr_pci_get_long (b1.regs, 4), ==, 0xfeedf00d);   /* not decoded */

  /* A function the guest left undecoded (IO off) may sit anywhere. */
  {
    g_autoptr (GVariant) off = g_variant_ref_sink (with_config (state, 4 << 3, 0x04, 2, 0));
    g_autoptr (GVariant) off_overlap = g_variant_ref_sink (with_config (off, 4 << 3, 0x10, 4,
                                                                        0xc001));

    load_ok (f->b.host, off_overlap);
    g_assert_cmphex (b1.bar_addr[0], ==, 0xc000);
    g_assert_cmphex (b2.bar_addr[0], ==, VR_PCI_BAR_UNMAPPED);
  }

  vr_pci_host_remove_function (f->a.host, &a1.fn);
  vr_pci_host_remove_function (f->a.host, &a2.fn);
  vr_pci_host_remove_function (f->b.host, &b1.fn);
  vr_pci_host_remove_function (f->b.host, &b2.fn);
}

/* ---- bochs-display ------------------------------------------------------------------------ */

#define FB_ADDR    MMIO_BASE
#define REGS_ADDR  (MMIO_BASE + VR_BOCHS_FB_SIZE)
#define DISPI(i)   (REGS_ADDR + 0x500 + 2 * (i))

static VrDevice *
new_bochs (Fixture *f, Side *s)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_bochs_display_new (s->host, f->mem, s->display, NULL, 6, FB_ADDR,
                                        REGS_ADDR, NULL, &error);

  g_assert_no_error (error);
  /* As the machine's first reset does: the BARs the card starts with are decoded. */
  vr_device_reset (s->host);
  return dev;
}

static void
test_bochs_display (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_bochs (f, &f->a);
  VrDevice *b = new_bochs (f, &f->b);
  g_autoptr (GVariant) state = NULL, pci = NULL, runs = NULL, regs = NULL;
  VrDisplayMode mode;
  uint16_t nine[9] = { VR_VBE_DISPI_ID5 };
  uint16_t ten[10] = { 0xb0c4 };
  uint8_t page[8192] = { 1 };

  /* 640x480x32 in a 1024-pixel-wide virtual screen, scrolled down 8 lines. */
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_XRES), 2, 640);
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_YRES), 2, 480);
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_BPP), 2, 32);
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_VIRT_WIDTH), 2, 1024);
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_Y_OFFSET), 2, 8);
  mwrite (&f->a, DISPI (VR_VBE_DISPI_INDEX_ENABLE), 2,
          VR_VBE_DISPI_ENABLED | VR_VBE_DISPI_LFB_ENABLED);
  /* Pixels: the first shown one, one further in, and a buffer far outside the mode. */
  mwrite (&f->a, FB_ADDR + 8 * 4096, 4, 0x00112233);
  mwrite (&f->a, FB_ADDR + (8 + 10) * 4096 + 40, 4, 0x00445566);
  mwrite (&f->a, FB_ADDR + (12u << 20), 4, 0xdeadbeef);
  mode = vr_display_get_mode (f->a.display);
  g_assert_cmpuint (mode.width, ==, 640);

  pci = save (f->a.host);
  state = save (a);
  /* Only the non-zero pages are in the state. */
  runs = child (state, 3);
  g_assert_cmpuint (g_variant_n_children (runs), ==, 3);

  /* B's own framebuffer had something in it: the load replaces all of it. */
  mwrite (&f->b, FB_ADDR + (15u << 20), 4, 0x77777777);
  load_ok (f->b.host, pci);
  roundtrip (b, state);

  /* The display shows the mode, with the pixels. */
  mode = vr_display_get_mode (f->b.display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_XRGB8888);
  g_assert_cmpuint (mode.width, ==, 640);
  g_assert_cmpuint (mode.height, ==, 480);
  g_assert_cmpuint (mode.stride, ==, 4096);
  {
    VrDisplayMode m;
    const uint8_t *pixels = vr_display_map (f->b.display, &m);

    g_assert_nonnull (pixels);
    g_assert_cmphex (vr_pci_get_long (pixels, 0), ==, 0x00112233);
    g_assert_cmphex (vr_pci_get_long (pixels, 10 * 4096 + 40), ==, 0x00445566);
    vr_display_unmap (f->b.display);
  }
  g_assert_cmphex (mread (&f->b, FB_ADDR + (12u << 20), 4), ==, 0xdeadbeef);
  g_assert_cmphex (mread (&f->b, FB_ADDR + (15u << 20), 4), ==, 0);
  g_assert_cmpuint (mread (&f->b, DISPI (VR_VBE_DISPI_INDEX_VIRT_WIDTH), 2), ==, 1024);
  g_assert_cmpuint (mread (&f->b, DISPI (VR_VBE_DISPI_INDEX_Y_OFFSET), 2), ==, 8);

  check_wrong_types (b, state);
  regs = child (state, 1);
  load_fails (b, with_child (state, 1, g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, nine, 9,
                                                                  2)), "dispi");
  load_fails (b, with_child (state, 1, g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, ten, 10,
                                                                  2)), "dispi");
  load_fails (b, with_child (state, 3, with_element (runs, 0, g_variant_new ("(u@ay)", 4096,
                                                                             bytes_of (page,
                                                                                       4096)))),
              "run 0");
  load_fails (b, with_child (state, 3, with_element (runs, 0, g_variant_new ("(u@ay)", 4095,
                                                                             bytes_of (page,
                                                                                       4096)))),
              "run");   /* out of order: after the two others... */
  load_fails (b, with_child (state, 3, with_element (runs, 1, g_variant_new ("(u@ay)", 9,
                                                                             bytes_of (page,
                                                                                       100)))),
              "run 1");
  load_fails (b, with_child (state, 3, with_element (runs, 1, g_variant_new ("(u@ay)", 4095,
                                                                             bytes_of (page,
                                                                                       8192)))),
              "run 1");
  /* As after reset: no mode. */
  mode = vr_display_get_mode (f->b.display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_NONE);

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- virtio: a guest's driver ------------------------------------------------------------- */

typedef struct
{
  Side     *side;
  unsigned  devfn;
  uint64_t  regs;       /* BAR 4: common, ISR, device, notify */
  uint64_t  msix;       /* BAR 1: MSI-X table */
  uint8_t   msix_cap;
} Drv;

typedef struct
{
  uint64_t desc;
  uint64_t avail;
  uint64_t used;
  uint16_t size;
  uint16_t avail_idx;
  unsigned next_desc;
} Ring;

#define DEVICE_CFG  0x2000
#define NOTIFY      0x3000

/* Where the driver finds the function (no configuration writes). */
static void
drv_attach (Drv *d, Side *s, unsigned slot)
{
  d->side = s;
  d->devfn = slot << 3;
  d->regs = VIRTIO_BARS + (uint64_t) slot * 0x100000;
  d->msix = d->regs + 0x80000;
  d->msix_cap = 0;
  for (unsigned p = cfg_read (s, d->devfn, 0x34, 1); p != 0; p = cfg_read (s, d->devfn, p + 1, 1))
    if (cfg_read (s, d->devfn, p, 1) == 0x11)
      d->msix_cap = (uint8_t) p;
  g_assert_cmpuint (d->msix_cap, !=, 0);
}

/* What firmware does: assigns the BARs and turns decoding on. */
static void
drv_map (Drv *d, Side *s, unsigned slot)
{
  drv_attach (d, s, slot);
  cfg_write (s, d->devfn, 0x20, 4, (uint32_t) d->regs);
  cfg_write (s, d->devfn, 0x24, 4, (uint32_t) (d->regs >> 32));
  cfg_write (s, d->devfn, 0x14, 4, (uint32_t) d->msix);
  cfg_write (s, d->devfn, 0x04, 2, VR_PCI_COMMAND_MEMORY | VR_PCI_COMMAND_MASTER);
}

static void
cw (Drv *d, unsigned off, unsigned len, uint64_t v)
{
  mwrite (d->side, d->regs + off, len, v);
}

static uint64_t
cr (Drv *d, unsigned off, unsigned len)
{
  return mread (d->side, d->regs + off, len);
}

#define S_ACK  VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV  VIRTIO_CONFIG_S_DRIVER
#define S_FOK  VIRTIO_CONFIG_S_FEATURES_OK
#define S_OK   VIRTIO_CONFIG_S_DRIVER_OK

static void
drv_start (Drv *d, uint64_t features)
{
  cw (d, VIRTIO_PCI_COMMON_STATUS, 1, 0);
  cw (d, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK | S_DRV);
  cw (d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
  cw (d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t) features);
  cw (d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
  cw (d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t) (features >> 32));
  cw (d, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK | S_DRV | S_FOK);
  g_assert_cmphex (cr (d, VIRTIO_PCI_COMMON_STATUS, 1), ==, S_ACK | S_DRV | S_FOK);
}

/* MSI-X on, vectors 0..@n-1 unmasked (data 0x40 + vector), configuration changes on 0. */
static void
drv_msix (Drv *d, unsigned n)
{
  cfg_write (d->side, d->devfn, d->msix_cap + 2, 2, 0x8000);
  for (unsigned v = 0; v < n; v++)
    {
      mwrite (d->side, d->msix + 16 * v, 4, 0xfee00000);
      mwrite (d->side, d->msix + 16 * v + 4, 4, 0);
      mwrite (d->side, d->msix + 16 * v + 8, 4, 0x40 + v);
      mwrite (d->side, d->msix + 16 * v + 12, 4, 0);
    }
  cw (d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
}

static void
drv_queue (Fixture  *f,
           Drv      *d,
           unsigned  q,
           Ring     *r,
           uint64_t  base,
           uint16_t  size,
           uint16_t  vector,
           bool      enable)
{
  g_autofree uint8_t *zero = g_malloc0 (0x3000);

  *r = (Ring) { .desc = base, .avail = base + 0x1000, .used = base + 0x2000, .size = size };
  g_assert_true (vr_memory_write (f->mem, base, zero, 0x3000));
  cw (d, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
  cw (d, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
  cw (d, VIRTIO_PCI_COMMON_Q_MSIX, 2, vector);
  cw (d, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t) r->desc);
  cw (d, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
  cw (d, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t) r->avail);
  cw (d, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
  cw (d, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t) r->used);
  cw (d, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
  if (enable)
    cw (d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

static void
drv_ok (Drv *d)
{
  cw (d, VIRTIO_PCI_COMMON_STATUS, 1, S_ACK | S_DRV | S_FOK | S_OK);
}

static void
drv_kick (Drv *d, unsigned q)
{
  mwrite (d->side, d->regs + NOTIFY + 4 * q, 2, q);
}

/* Offers the chain of @n segments (device-writable ones last); returns its head. */
static uint16_t
ring_offer (Fixture        *f,
            Ring           *r,
            unsigned        n,
            const uint64_t *addr,
            const uint32_t *len,
            const bool     *writable)
{
  uint16_t head = (uint16_t) (r->next_desc % r->size);

  for (unsigned i = 0; i < n; i++)
    {
      unsigned idx = (head + i) % r->size;
      struct vring_desc desc = {
        .addr = addr[i],
        .len = len[i],
        .flags = (uint16_t) ((writable[i] ? VRING_DESC_F_WRITE : 0)
                             | (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
        .next = (uint16_t) ((idx + 1) % r->size),
      };

      g_assert_true (vr_memory_write (f->mem, r->desc + 16 * idx, &desc, sizeof desc));
    }
  r->next_desc += n;
  g_assert_true (vr_memory_write (f->mem, r->avail + 4 + 2 * (r->avail_idx % r->size), &head,
                                  2));
  r->avail_idx++;
  g_assert_true (vr_memory_write (f->mem, r->avail + 2, &r->avail_idx, 2));
  return head;
}

static uint16_t
ring_offer1 (Fixture *f, Ring *r, uint64_t addr, uint32_t len, bool writable)
{
  return ring_offer (f, r, 1, &addr, &len, &writable);
}

static uint16_t
ring_used (Fixture *f, Ring *r)
{
  uint16_t v;

  g_assert_true (vr_memory_read (f->mem, r->used + 2, &v, 2));
  return v;
}

/* Used entry @i: (id, len). */
static void
ring_used_elem (Fixture *f, Ring *r, unsigned i, uint32_t *id, uint32_t *len)
{
  uint32_t e[2];

  g_assert_true (vr_memory_read (f->mem, r->used + 4 + 8 * (i % r->size), e, sizeof e));
  *id = e[0];
  *len = e[1];
}

/* The transport's state with field @field of queue @q replaced. */
static GVariant *
with_queue_field (GVariant *state,
                  gsize     q,
                  gsize     field,
                  GVariant *value)
{
  g_autoptr (GVariant) queues = child (state, 13);
  g_autoptr (GVariant) queue = g_variant_get_child_value (queues, q);

  return with_child (state, 13, with_element (queues, q, with_child (queue, field, value)));
}

static void
quiesce (VrDevice *dev)
{
  if (dev->ops->quiesce)
    dev->ops->quiesce (dev);
}

/* ---- virtio: the transport with a device of our own --------------------------------------- */

typedef struct
{
  VrVirtio vio;
  unsigned notified;
} FakeDev;

/* Fills every buffer with 'X' + queue and returns it whole. */
static void
fake_notify (VrVirtio *vio,
             unsigned  queue)
{
  FakeDev *fd = (FakeDev *) vio;
  VrVirtqueue *vq = vr_virtio_get_queue (vio, queue);
  VrVirtqElem *elem;

  fd->notified++;
  while ((elem = vr_virtq_pop (vq)) != NULL)
    {
      for (unsigned i = 0; i < elem->n_in; i++)
        memset (elem->in[i].iov_base, 'X' + (int) queue, elem->in[i].iov_len);
      vr_virtq_complete (vq, elem, (uint32_t) elem->in_len);
      g_free (elem);
    }
}

static void
fake_destroy (VrVirtio *vio)
{
  g_free (vio);
}

static const VrVirtioOps fake_ops = {
  .name = "virtio-fake",
  .device_id = VIRTIO_ID_RNG,
  .pci_class = 0xff0000,
  .queue_notify = fake_notify,
  .destroy = fake_destroy,
};

#define FAKE_FEATURE 5
#define FAKE_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX)       \
                       | (1ull << FAKE_FEATURE))

static VrVirtioHost
virtio_host (Fixture *f, Side *s, unsigned slot)
{
  return (VrVirtioHost) {
    .memory = f->mem,
    .irq = f->irq,
    .pci_host = s->host,
    .io_context = s->io,
    .slot = slot,
    .gsi = VR_PCI_INTX_GSI (slot, 0),
  };
}

static FakeDev *
new_fake (Fixture *f, Side *s, unsigned slot)
{
  g_autoptr (GError) error = NULL;
  VrVirtioHost host = virtio_host (f, s, slot);
  FakeDev *fd = g_new0 (FakeDev, 1);

  g_assert_true (vr_virtio_init (&fd->vio, &fake_ops, &host, 1ull << FAKE_FEATURE, 2, 16, 8,
                                 &error));
  memcpy (fd->vio.config, "FAKECFG!", 8);
  g_assert_true (vr_virtio_plug (&fd->vio, &error));
  g_assert_no_error (error);
  return fd;
}

/* A running fake device on side A, slot 3: queue 0 (8 entries, vector 1) enabled with one
 * buffer used and one offered but not kicked; queue 1 set up (4 entries, vector 2) but not
 * enabled; queue_select left at 1. */
static void
fake_setup (Fixture *f, FakeDev *a, Drv *d, Ring *q0, Ring *q1)
{
  drv_map (d, &f->a, 3);
  drv_start (d, FAKE_FEATURES);
  drv_msix (d, 3);
  drv_queue (f, d, 0, q0, 0x100000, 8, 1, true);
  drv_queue (f, d, 1, q1, 0x110000, 4, 2, false);
  drv_ok (d);
  ring_offer1 (f, q0, 0x200000, 64, true);
  drv_kick (d, 0);
  run_io (&f->a);
  g_assert_cmpuint (ring_used (f, q0), ==, 1);
  g_assert_cmpuint (a->notified, ==, 1);
  ring_offer1 (f, q0, 0x201000, 64, true);
}

static void
test_virtio_transport (Fixture *f, gconstpointer data)
{
  FakeDev *a = new_fake (f, &f->a, 3);
  FakeDev *b = new_fake (f, &f->b, 3);
  g_autoptr (GVariant) pci = NULL, state = NULL, vectors = NULL, queues = NULL;
  Drv da, db;
  Ring q0, q1;
  VrVirtqState st;
  uint32_t id, len;
  uint8_t byte;

  fake_setup (f, a, &da, &q0, &q1);

  /* Quiesced: a kick is not acted on, and the queue gives nothing. */
  quiesce (&a->vio.parent);
  drv_kick (&da, 0);
  run_io (&f->a);
  g_assert_cmpuint (ring_used (f, &q0), ==, 1);
  g_assert_null (vr_virtq_pop (vr_virtio_get_queue (&a->vio, 0)));
  g_assert_false (vr_virtq_has_buffers (vr_virtio_get_queue (&a->vio, 0)));

  pci = save (f->a.host);
  state = save (&a->vio.parent);
  load_ok (f->b.host, pci);
  roundtrip (&b->vio.parent, state);
  drv_attach (&db, &f->b, 3);

  /* B takes the buffer offered before the snapshot: a load looks at every enabled queue. */
  run_io (&f->b);
  g_assert_cmpuint (b->notified, ==, 1);
  g_assert_cmpuint (ring_used (f, &q0), ==, 2);
  ring_used_elem (f, &q0, 1, &id, &len);
  g_assert_cmpuint (id, ==, 1);
  g_assert_cmpuint (len, ==, 64);
  g_assert_true (vr_memory_read (f->mem, 0x201000 + 63, &byte, 1));
  g_assert_cmpuint (byte, ==, 'X');
  vr_virtq_get_state (vr_virtio_get_queue (&b->vio, 0), &st);
  g_assert_cmpuint (st.last_avail, ==, 2);
  g_assert_cmpuint (st.used_idx, ==, 2);

  /* What B's driver reads: status, the selected queue, the other queue, its configuration,
   * features, the MSI-X table. */
  g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_STATUS, 1), ==, S_ACK | S_DRV | S_FOK | S_OK);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_SELECT, 2), ==, 1);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, 4);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_MSIX, 2), ==, 2);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
  g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_Q_DESCLO, 4), ==, 0x110000);
  cw (&db, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 1);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, 8);
  g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_Q_USEDLO, 4), ==, 0x102000);
  g_assert_cmphex (cr (&db, DEVICE_CFG, 4), ==, vr_pci_get_long ((const uint8_t *) "FAKE", 0));
  cw (&db, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
  g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_GF, 4), ==, (uint32_t) FAKE_FEATURES);
  g_assert_cmphex (mread (&f->b, db.msix + 16 + 8, 4), ==, 0x41);
  g_assert_cmphex (mread (&f->b, db.msix + 16 + 12, 4), ==, 0);
  g_assert_cmphex (cfg_read (&f->b, db.devfn, db.msix_cap + 2, 2) & 0x8000, ==, 0x8000);
  /* B goes on: a new buffer, kicked, is used. */
  q0.avail_idx = 2;
  ring_offer1 (f, &q0, 0x202000, 16, true);
  drv_kick (&db, 0);
  run_io (&f->b);
  g_assert_cmpuint (ring_used (f, &q0), ==, 3);

  /* Hostile states; after each, the device is as after reset. */
  check_wrong_types (&b->vio.parent, state);
  load_fails (&b->vio.parent, with_child (state, 1, g_variant_new_uint64 (FAKE_FEATURES)),
              "offered features");
  load_fails (&b->vio.parent, with_child (state, 2, g_variant_new_uint64 (FAKE_FEATURES
                                                                          | (1ull << 40))),
              "never offered");
  load_fails (&b->vio.parent, with_child (state, 3, g_variant_new_byte (S_OK)), "status");
  load_fails (&b->vio.parent, with_child (state, 3, g_variant_new_byte (0x2f)), "status");
  load_fails (&b->vio.parent, with_child (state, 4, g_variant_new_boolean (TRUE)), "broken");
  load_fails (&b->vio.parent, with_child (state, 9, g_variant_new_byte (4)), "ISR");
  load_fails (&b->vio.parent, with_child (state, 11, bytes_of ("FAKECFG", 7)), "7 bytes");
  load_fails (&b->vio.parent, with_child (state, 11, bytes_of ("OTHERCFG", 8)), "differs");
  vectors = child (state, 12);
  load_fails (&b->vio.parent, with_child (state, 12, with_element (vectors, 2, NULL)),
              "MSI-X vectors");
  load_fails (&b->vio.parent,
              with_child (state, 12, with_element (vectors, 0,
                                                   g_variant_new ("(tuub)", 0xfee00000ull, 0x40,
                                                                  2, FALSE))),
              "control");
  queues = child (state, 13);
  load_fails (&b->vio.parent, with_child (state, 13, with_element (queues, 1, NULL)),
              "queues");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 0, g_variant_new_uint16 (6)),
              "power of two");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 0, g_variant_new_uint16 (32)),
              "size 32");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 3, g_variant_new_uint64 (RAM_SIZE - 64)),
              "outside RAM");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 3,
                                                g_variant_new_uint64 (0xfffffffffffff000ull)),
              "outside RAM");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 5, g_variant_new_uint64 (0x102002)),
              "misaligned");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 1, g_variant_new_uint16 (99)),
              "vector 99");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 6, g_variant_new_uint16 (30)),
              "in use");
  load_fails (&b->vio.parent, with_queue_field (state, 1, 6, g_variant_new_uint16 (5)),
              "not enabled");
  load_fails (&b->vio.parent, with_queue_field (state, 0, 10, g_variant_new_boolean (TRUE)),
              "working device");
  load_fails (&b->vio.parent,
              with_child (state, 14, g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                          g_variant_new_variant (
                                                            g_variant_new_byte (1)))),
              "device state");
  {
    /* Not enabled before FEATURES_OK. */
    g_autoptr (GVariant) ack = g_variant_ref_sink (with_child (state, 3,
                                                               g_variant_new_byte (S_ACK)));
    load_fails (&b->vio.parent, ack, "before the features");
  }
  g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_STATUS, 1), ==, 0);
  cw (&db, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  g_assert_cmpuint (cr (&db, VIRTIO_PCI_COMMON_Q_ENABLE, 2), ==, 0);
  g_assert_cmphex (mread (&f->b, db.msix + 16 + 12, 4), ==, 1);

  /* A broken device saves and loads as broken (and needs a reset). */
  {
    g_autoptr (GVariant) broken = NULL;

    g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
    vr_virtio_set_broken (&a->vio, "a test");
    g_test_assert_expected_messages ();
    broken = save (&a->vio.parent);
    roundtrip (&b->vio.parent, broken);
    g_assert_cmphex (cr (&db, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
  }

  vr_device_destroy (&a->vio.parent);
  vr_device_destroy (&b->vio.parent);
}

static void
test_virtio_resume (Fixture *f, gconstpointer data)
{
  FakeDev *a = new_fake (f, &f->a, 3);
  g_autoptr (GVariant) state = NULL;
  Drv da;
  Ring q0, q1;

  fake_setup (f, a, &da, &q0, &q1);
  quiesce (&a->vio.parent);
  drv_kick (&da, 0);
  run_io (&f->a);
  g_assert_cmpuint (ring_used (f, &q0), ==, 1);
  state = save (&a->vio.parent);

  /* The machine runs on: what was kicked meanwhile is seen. */
  a->vio.parent.ops->resume (&a->vio.parent);
  run_io (&f->a);
  g_assert_cmpuint (ring_used (f, &q0), ==, 2);
  ring_offer1 (f, &q0, 0x202000, 16, true);
  drv_kick (&da, 0);
  run_io (&f->a);
  g_assert_cmpuint (ring_used (f, &q0), ==, 3);

  vr_device_destroy (&a->vio.parent);
}

/* ---- virtio-blk: quiesce finishes the requests in flight ----------------------------------- */

static char *
make_disk (Fixture *f, const char *name, gsize size)
{
  g_autoptr (GError) error = NULL;
  g_autofree uint8_t *data = g_malloc (size);
  char *path = g_build_filename (f->tmpdir, name, NULL);

  for (gsize i = 0; i < size; i++)
    data[i] = (uint8_t) (i / 512 + i * 3);
  g_assert_true (g_file_set_contents (path, (const char *) data, (gssize) size, &error));
  return path;
}

static VrDevice *
new_blk (Fixture *f, Side *s, unsigned slot, const char *path)
{
  g_autoptr (GError) error = NULL;
  VrVirtioHost host = virtio_host (f, s, slot);
  VrDisk *disk = vr_disk_open (path, VR_DISK_FORMAT_RAW, 0, &error);
  VrDevice *dev;

  g_assert_no_error (error);
  dev = vr_virtio_blk_new (&host, disk, "snapshot", &error);
  g_assert_no_error (error);
  return dev;
}

static void
test_virtio_blk (Fixture *f, gconstpointer data)
{
  g_autofree char *path = make_disk (f, "a.img", 1u << 20);
  g_autofree char *small = make_disk (f, "small.img", 1u << 19);
  VrDevice *a = new_blk (f, &f->a, 5, path);
  VrDevice *b = new_blk (f, &f->b, 5, path);
  VrDevice *other;
  g_autoptr (GVariant) pci = NULL, state = NULL;
  VrVirtqState st;
  Drv d;
  Ring q;

  drv_map (&d, &f->a, 5);
  drv_start (&d, 1ull << VIRTIO_F_VERSION_1);
  drv_queue (f, &d, 0, &q, 0x300000, 32, VR_VIRTIO_NO_VECTOR, true);
  drv_ok (&d);
  /* Eight reads of 4 KiB, for the workers to do at once. */
  for (unsigned i = 0; i < 8; i++)
    {
      struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_IN, .sector = 8 * i };
      uint64_t addr[3] = { 0x310000 + 0x100 * i, 0x320000 + 0x1000 * i, 0x310080 + 0x100 * i };
      uint32_t len[3] = { sizeof hdr, 4096, 1 };
      bool writable[3] = { false, true, true };
      uint8_t status = 0xff;

      g_assert_true (vr_memory_write (f->mem, addr[0], &hdr, sizeof hdr));
      g_assert_true (vr_memory_write (f->mem, addr[2], &status, 1));
      ring_offer (f, &q, 3, addr, len, writable);
    }
  drv_kick (&d, 0);
  run_io (&f->a);
  /* Whatever the workers had left, quiesce waits for it: everything is used now. */
  quiesce (a);
  g_assert_cmpuint (ring_used (f, &q), ==, 8);
  for (unsigned i = 0; i < 8; i++)
    {
      uint8_t status, sector[512];

      g_assert_true (vr_memory_read (f->mem, 0x310080 + 0x100 * i, &status, 1));
      g_assert_cmpuint (status, ==, VIRTIO_BLK_S_OK);
      g_assert_true (vr_memory_read (f->mem, 0x320000 + 0x1000 * i, sector, sizeof sector));
      g_assert_cmpuint (sector[1], ==, (uint8_t) (8 * i + 3));
    }
  vr_virtq_get_state (vr_virtio_get_queue ((VrVirtio *) a, 0), &st);
  g_assert_cmpuint (st.last_avail, ==, 8);
  g_assert_cmpuint (st.used_idx, ==, 8);

  pci = save (f->a.host);
  state = save (a);
  load_ok (f->b.host, pci);
  roundtrip (b, state);
  /* A disk of another size: the configuration (capacity) differs. */
  other = new_blk (f, &f->b, 6, small);
  load_fails (other, state, "differs");

  vr_device_destroy (a);
  vr_device_destroy (b);
  vr_device_destroy (other);
}

/* ---- virtio-input: waiting events and the selectors -------------------------------------- */

static VrDevice *
new_input (Fixture *f, Side *s, unsigned slot)
{
  g_autoptr (GError) error = NULL;
  VrVirtioHost host = virtio_host (f, s, slot);
  VrDevice *dev = vr_virtio_input_new (&host, VR_VIRTIO_INPUT_KEYBOARD, &error);

  g_assert_no_error (error);
  return dev;
}

static void
test_virtio_input (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_input (f, &f->a, 4);
  VrDevice *b = new_input (f, &f->b, 4);
  g_autoptr (GVariant) pci = NULL, state = NULL;
  VrInputEvent ev = { EV_KEY, KEY_A, 1 };
  static const char name[] = "Vireo Virtio Keyboard";
  GVariantBuilder many;
  Drv da, db;
  Ring q0, q1;

  drv_map (&da, &f->a, 4);
  drv_start (&da, 1ull << VIRTIO_F_VERSION_1);
  drv_queue (f, &da, 0, &q0, 0x400000, 8, VR_VIRTIO_NO_VECTOR, true);
  drv_queue (f, &da, 1, &q1, 0x410000, 8, VR_VIRTIO_NO_VECTOR, true);
  cw (&da, DEVICE_CFG + 0, 1, VIRTIO_INPUT_CFG_ID_NAME);
  drv_ok (&da);
  g_assert_true (vr_virtio_input_is_active (a));
  /* A key pressed and released while the driver had no buffers posted: four events wait. */
  vr_virtio_input_send (a, &ev, 1);
  ev.value = 0;
  vr_virtio_input_send (a, &ev, 1);
  run_io (&f->a);

  quiesce (a);
  pci = save (f->a.host);
  state = save (a);
  load_ok (f->b.host, pci);
  roundtrip (b, state);
  drv_attach (&db, &f->b, 4);
  g_assert_true (vr_virtio_input_is_active (b));

  /* The selectors and what they select. */
  g_assert_cmpuint (cr (&db, DEVICE_CFG + 0, 1), ==, VIRTIO_INPUT_CFG_ID_NAME);
  g_assert_cmpuint (cr (&db, DEVICE_CFG + 2, 1), ==, strlen (name));
  g_assert_cmphex (cr (&db, DEVICE_CFG + 8, 4), ==, vr_pci_get_long ((const uint8_t *) name, 0));
  /* The driver posts buffers: the press and the release arrive, in order. */
  for (unsigned i = 0; i < 8; i++)
    ring_offer1 (f, &q0, 0x420000 + 8 * i, 8, true);
  drv_kick (&db, 0);
  run_io (&f->b);
  g_assert_cmpuint (ring_used (f, &q0), ==, 4);
  {
    static const struct virtio_input_event want[4] = {
      { EV_KEY, KEY_A, 1 }, { EV_SYN, SYN_REPORT, 0 }, { EV_KEY, KEY_A, 0 },
      { EV_SYN, SYN_REPORT, 0 },
    };
    struct virtio_input_event got[4];

    g_assert_true (vr_memory_read (f->mem, 0x420000, got, sizeof got));
    g_assert_cmpmem (got, sizeof got, want, sizeof want);
  }

  /* Hostile: too many waiting events; a configuration that does not match the selectors. */
  g_variant_builder_init (&many, G_VARIANT_TYPE ("a(qqi)"));
  for (unsigned i = 0; i < 257; i++)
    g_variant_builder_add (&many, "(qqi)", EV_KEY, KEY_B, 1);
  load_fails (b, with_child (state, 14, g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                             g_variant_new_variant (
                                                               g_variant_new ("(qa(qqi))", 1,
                                                                              &many)))),
              "waiting events");
  {
    g_autoptr (GVariant) config = child (state, 11);
    gsize n;
    const uint8_t *saved = g_variant_get_fixed_array (config, &n, 1);
    g_autofree uint8_t *bytes = g_memdup2 (saved, n);

    bytes[8] = 'W';
    load_fails (b, with_child (state, 11, bytes_of (bytes, n)), "differs");
  }
  load_fails (b, with_child (state, 14, g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL)),
              "no state");
  g_assert_false (vr_virtio_input_is_active (b));

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- virtio-gpu: resources, scanout, cursor ---------------------------------------------- */

#define GPU_REQ   0x600000
#define GPU_RESP  0x601000

static VrDevice *
new_gpu (Fixture *f, Side *s, unsigned slot)
{
  g_autoptr (GError) error = NULL;
  VrVirtioHost host = virtio_host (f, s, slot);
  VrDevice *dev = vr_virtio_gpu_new (&host, s->display, &error);

  g_assert_no_error (error);
  return dev;
}

/* Sends one control (queue 0, with a response) or cursor (queue 1) command; returns the
 * response type (0 for the cursor queue). */
static uint32_t
gpu_cmd (Fixture *f, Drv *d, Ring *r, unsigned queue, const void *req, size_t len)
{
  uint64_t addr[2] = { GPU_REQ, GPU_RESP };
  uint32_t lens[2] = { (uint32_t) len, 1024 };
  bool writable[2] = { false, true };
  uint16_t used = ring_used (f, r);
  struct virtio_gpu_ctrl_hdr resp = { 0 };

  g_assert_true (vr_memory_write (f->mem, GPU_REQ, req, len));
  ring_offer (f, r, queue == 0 ? 2 : 1, addr, lens, writable);
  drv_kick (d, queue);
  run_io (d->side);
  g_assert_cmpuint (ring_used (f, r), ==, (uint16_t) (used + 1));
  if (queue == 0)
    g_assert_true (vr_memory_read (f->mem, GPU_RESP, &resp, sizeof resp));
  return resp.type;
}

static void
gpu_resource (Fixture *f, Drv *d, Ring *r, uint32_t id, uint32_t format, uint32_t w, uint32_t h,
              uint64_t backing)
{
  struct virtio_gpu_resource_create_2d create = {
    .hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
    .resource_id = id, .format = format, .width = w, .height = h,
  };
  struct
  {
    struct virtio_gpu_resource_attach_backing req;
    struct virtio_gpu_mem_entry entries[2];
  } attach = {
    .req = { .hdr.type = VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, .resource_id = id,
             .nr_entries = 2 },
    /* In two pieces, the first one page. */
    .entries = { { .addr = backing, .length = 4096 },
                 { .addr = backing + 0x10000, .length = w * h * 4 - 4096 } },
  };
  struct virtio_gpu_transfer_to_host_2d transfer = {
    .hdr.type = VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
    .r = { 0, 0, w, h }, .offset = 0, .resource_id = id,
  };
  g_autofree uint8_t *pixels = g_malloc (w * h * 4);

  /* The guest draws: pixel (x, y) = B x, G y, R id, X 0xff. */
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++)
      {
        uint8_t *p = pixels + 4 * (y * w + x);

        p[0] = (uint8_t) x;
        p[1] = (uint8_t) y;
        p[2] = (uint8_t) id;
        p[3] = 0xff;
      }
  g_assert_true (vr_memory_write (f->mem, backing, pixels, 4096));
  g_assert_true (vr_memory_write (f->mem, backing + 0x10000, pixels + 4096, w * h * 4 - 4096));
  g_assert_cmphex (gpu_cmd (f, d, r, 0, &create, sizeof create), ==, VIRTIO_GPU_RESP_OK_NODATA);
  g_assert_cmphex (gpu_cmd (f, d, r, 0, &attach, sizeof attach), ==, VIRTIO_GPU_RESP_OK_NODATA);
  g_assert_cmphex (gpu_cmd (f, d, r, 0, &transfer, sizeof transfer), ==,
                   VIRTIO_GPU_RESP_OK_NODATA);
}

/* The gpu state (transport child 14) with its own state's child @index replaced. */
static GVariant *
with_gpu_child (GVariant *state, gsize index, GVariant *value)
{
  g_autoptr (GVariant) own = child (state, 14);
  g_autoptr (GVariant) inner = g_variant_get_variant (g_variant_get_maybe (own));
  g_autoptr (GVariant) changed = g_variant_ref_sink (with_child (inner, index, value));

  return with_child (state, 14, g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                     g_variant_new_variant (changed)));
}

static void
test_virtio_gpu (Fixture *f, gconstpointer data)
{
  VrDevice *a = new_gpu (f, &f->a, 7);
  VrDevice *b = new_gpu (f, &f->b, 7);
  g_autoptr (GVariant) pci = NULL, state = NULL, own = NULL, inner = NULL, resources = NULL;
  g_autoptr (GVariant) res0 = NULL;
  struct virtio_gpu_set_scanout scanout = {
    .hdr.type = VIRTIO_GPU_CMD_SET_SCANOUT, .r = { 0, 0, 64, 32 }, .scanout_id = 0,
    .resource_id = 1,
  };
  struct virtio_gpu_update_cursor cursor = {
    .hdr.type = VIRTIO_GPU_CMD_UPDATE_CURSOR, .pos = { .scanout_id = 0, .x = 10, .y = 20 },
    .resource_id = 2, .hot_x = 3, .hot_y = 4,
  };
  VrDisplayMode mode;
  Drv da;
  Ring ctrl, curs;

  drv_map (&da, &f->a, 7);
  drv_start (&da, 1ull << VIRTIO_F_VERSION_1);
  drv_queue (f, &da, 0, &ctrl, 0x500000, 16, VR_VIRTIO_NO_VECTOR, true);
  drv_queue (f, &da, 1, &curs, 0x510000, 16, VR_VIRTIO_NO_VECTOR, true);
  drv_ok (&da);
  gpu_resource (f, &da, &ctrl, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 32, 0x700000);
  gpu_resource (f, &da, &ctrl, 2, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64, 0x800000);
  g_assert_cmphex (gpu_cmd (f, &da, &ctrl, 0, &scanout, sizeof scanout), ==,
                   VIRTIO_GPU_RESP_OK_NODATA);
  gpu_cmd (f, &da, &curs, 1, &cursor, sizeof cursor);
  mode = vr_display_get_mode (f->a.display);
  g_assert_cmpuint (mode.width, ==, 64);

  quiesce (a);
  pci = save (f->a.host);
  state = save (a);
  load_ok (f->b.host, pci);
  roundtrip (b, state);

  /* B shows the same picture, rebuilt from the backing pages, and the same cursor. */
  {
    g_autoptr (GBytes) frame = NULL;
    g_autoptr (GBytes) cursor_pixels = NULL;
    const uint8_t *p;
    uint32_t w, h;
    int32_t hx, hy, x, y;

    frame = vr_display_snapshot (f->b.display, &mode);
    g_assert_nonnull (frame);
    g_assert_cmpuint (mode.width, ==, 64);
    g_assert_cmpuint (mode.height, ==, 32);
    p = g_bytes_get_data (frame, NULL);
    g_assert_cmpuint (p[4 * (5 * 64 + 7) + 0], ==, 7);
    g_assert_cmpuint (p[4 * (5 * 64 + 7) + 1], ==, 5);
    g_assert_cmpuint (p[4 * (31 * 64 + 63) + 0], ==, 63);
    g_assert_cmpuint (p[4 * (31 * 64 + 63) + 2], ==, 1);
    g_assert_true (vr_display_get_cursor (f->b.display, &cursor_pixels, &w, &h, &hx, &hy));
    g_assert_cmpuint (w, ==, 64);
    g_assert_cmpuint (h, ==, 64);
    g_assert_cmpint (hx, ==, 3);
    g_assert_cmpint (hy, ==, 4);
    g_assert_cmpuint (((const uint8_t *) g_bytes_get_data (cursor_pixels, NULL))[4 * 33 + 2],
                      ==, 2);
    vr_display_get_cursor_position (f->b.display, &x, &y);
    g_assert_cmpint (x, ==, 10);
    g_assert_cmpint (y, ==, 20);
  }

  /* Hostile. */
  own = child (state, 14);
  inner = g_variant_get_variant (g_variant_get_maybe (own));
  resources = child (inner, 1);
  res0 = g_variant_get_child_value (resources, 0);
  load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                         with_child (res0, 0,
                                                                     g_variant_new_uint32 (2)))),
              "twice");
  load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                         with_child (res0, 0,
                                                                     g_variant_new_uint32 (0)))),
              "zero");
  load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                         with_child (res0, 1,
                                                                     g_variant_new_uint32 (99)))),
              "format 99");
  load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                         with_child (res0, 2,
                                                                     g_variant_new_uint32 (5000)))),
              "5000x32");
  {
    GVariantBuilder backing;
    GVariant *entries;

    g_variant_builder_init (&backing, G_VARIANT_TYPE ("a(tu)"));
    g_variant_builder_add (&backing, "(tu)", (uint64_t) RAM_SIZE - 4096, 8192u);
    entries = g_variant_builder_end (&backing);
    load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                           with_child (res0, 4, entries))),
                "not in RAM");
    g_variant_builder_init (&backing, G_VARIANT_TYPE ("a(tu)"));
    g_variant_builder_add (&backing, "(tu)", (uint64_t) 0x700000, 0u);
    entries = g_variant_builder_end (&backing);
    load_fails (b, with_gpu_child (state, 1, with_element (resources, 0,
                                                           with_child (res0, 4, entries))),
                "not in RAM");
  }
  load_fails (b, with_gpu_child (state, 2, g_variant_new ("(u(uuuu))", 9, 0, 0, 64, 32)),
              "scanout");
  load_fails (b, with_gpu_child (state, 2, g_variant_new ("(u(uuuu))", 1, 8, 0, 64, 32)),
              "scanout");
  load_fails (b, with_gpu_child (state, 2, g_variant_new ("(u(uuuu))", 1, 0, 0, 8, 8)),
              "scanout");
  load_fails (b, with_gpu_child (state, 3, g_variant_new ("(uuuuu)", 9, 0, 0, 0, 0)), "cursor");
  load_fails (b, with_gpu_child (state, 3, g_variant_new ("(uuuuu)", 2, 65, 0, 0, 0)),
              "cursor");
  load_fails (b, with_gpu_child (state, 3, g_variant_new ("(uuuuu)", 0, 1, 0, 0, 0)),
              "hot spot");
  {
    GVariantBuilder lots;

    g_variant_builder_init (&lots, G_VARIANT_TYPE ("a(uuuua(tu))"));
    for (uint32_t i = 1; i <= 1025; i++)
      g_variant_builder_add (&lots, "(uuuu@a(tu))", i, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1, 1,
                             g_variant_new_array (G_VARIANT_TYPE ("(tu)"), NULL, 0));
    load_fails (b, with_gpu_child (state, 1, g_variant_builder_end (&lots)), "1025 resources");
    g_variant_builder_init (&lots, G_VARIANT_TYPE ("a(uuuua(tu))"));
    for (uint32_t i = 1; i <= 20; i++)
      g_variant_builder_add (&lots, "(uuuu@a(tu))", i, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4096,
                             4096, g_variant_new_array (G_VARIANT_TYPE ("(tu)"), NULL, 0));
    load_fails (b, with_gpu_child (state, 1, g_variant_builder_end (&lots)), "MiB");
  }
  {
    g_autoptr (GVariant) config = child (state, 11);
    uint8_t bytes[sizeof (struct virtio_gpu_config)];
    gsize n;

    memcpy (bytes, g_variant_get_fixed_array (config, &n, 1), sizeof bytes);
    bytes[0] = 0x02;   /* events_read: an unknown event */
    load_fails (b, with_child (state, 11, bytes_of (bytes, sizeof bytes)), "events");
    bytes[0] = 0;
    bytes[8] = 2;      /* num_scanouts */
    load_fails (b, with_child (state, 11, bytes_of (bytes, sizeof bytes)), "differs");
  }
  /* As after reset: nothing shown by the gpu. */
  mode = vr_display_get_mode (f->b.display);
  g_assert_cmpint (mode.format, ==, VR_PIXEL_FORMAT_NONE);

  vr_device_destroy (a);
  vr_device_destroy (b);
}

/* ---- main --------------------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/snapshot-devices/serial", test_serial);
  ADD ("/snapshot-devices/i8042", test_i8042);
  ADD ("/snapshot-devices/rtc", test_rtc);
  ADD ("/snapshot-devices/acpi-pm", test_acpi_pm);
  ADD ("/snapshot-devices/pc-misc", test_pc_misc);
  ADD ("/snapshot-devices/fw-cfg", test_fw_cfg);
  ADD ("/snapshot-devices/pci-host", test_pci_host);
  ADD ("/snapshot-devices/bochs-display", test_bochs_display);
  ADD ("/snapshot-devices/virtio/transport", test_virtio_transport);
  ADD ("/snapshot-devices/virtio/resume", test_virtio_resume);
  ADD ("/snapshot-devices/virtio/blk", test_virtio_blk);
  ADD ("/snapshot-devices/virtio/input", test_virtio_input);
  ADD ("/snapshot-devices/virtio/gpu", test_virtio_gpu);

#undef ADD
  return g_test_run ();
}
