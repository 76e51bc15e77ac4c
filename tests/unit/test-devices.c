/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The platform devices, driven through a port bus exactly as a guest drives them
 * (vr_bus_dispatch). Requests to the machine (reset, power-off, debug-exit) go to a real
 * VrMachine made without a kernel; when /dev/kvm is missing those checks are skipped.
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "hw/hw.h"
#include "hw/pci.h"
#include "vr-machine.h"

/* ---- Helpers --------------------------------------------------------------------------- */

typedef struct
{
  VrBus     *pio;
  VrIrqChip *irq;
  VrMachine *machine;   /* NULL without KVM */
  VrMemory  *memory;
  char      *tmpdir;
} Fixture;

static uint64_t
in (Fixture *f, uint16_t port, unsigned len)
{
  uint8_t data[8];

  vr_bus_dispatch (f->pio, port, data, len, false);
  return vr_io_get (data, len);
}

static uint8_t
inb (Fixture *f, uint16_t port)
{
  return (uint8_t) in (f, port, 1);
}

static void
out (Fixture *f, uint16_t port, unsigned len, uint64_t v)
{
  uint8_t data[8];

  vr_io_put (data, len, v);
  vr_bus_dispatch (f->pio, port, data, len, true);
}

static void
outb (Fixture *f, uint16_t port, uint8_t v)
{
  out (f, port, 1, v);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  VrMachineConfig config;
  g_autoptr (GError) error = NULL;

  f->pio = vr_bus_new ("test port I/O");
  f->irq = vr_irqchip_new ();
  f->memory = vr_memory_new (64u << 20, &error);
  g_assert_no_error (error);
  f->tmpdir = g_dir_make_tmp ("vireo-devices-XXXXXX", &error);
  g_assert_no_error (error);

  vr_machine_config_init (&config);
  g_free (config.name);
  config.name = g_strdup ("test-devices");
  config.memory = 16u << 20;
  config.cpus = 1;
  config.serial = VR_SERIAL_NONE;
  config.on_reset = VR_RESET_STOP;
  f->machine = vr_machine_new (&config, &error);
  if (!f->machine)
    g_test_message ("no machine for requests: %s", error->message);
  vr_machine_config_clear (&config);
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
  g_clear_pointer (&f->machine, vr_machine_free);
  vr_memory_free (f->memory);
  vr_irqchip_free (f->irq);
  vr_bus_free (f->pio);
}

/*
 * Waits for the machine to record a guest request. A machine that was never started may not
 * act on requests (the lead's choice); then the check is reported incomplete, not failed.
 */
static void
expect_stop (Fixture *f, VrStopReason reason)
{
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  if (!f->machine)
    {
      g_test_message ("no KVM: the machine request is not checked");
      return;
    }
  while (vr_machine_get_stop_reason (f->machine) == VR_STOP_NONE
         && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
  if (vr_machine_get_stop_reason (f->machine) == VR_STOP_NONE)
    {
      g_test_incomplete ("the machine does not record requests before it is started");
      return;
    }
  g_assert_cmpint (vr_machine_get_stop_reason (f->machine), ==, reason);
}

static void
expect_no_stop (Fixture *f)
{
  if (f->machine)
    g_assert_cmpint (vr_machine_get_stop_reason (f->machine), ==, VR_STOP_NONE);
}

/* ---- Serial ------------------------------------------------------------------------------ */

#define COM1 VR_COM1_BASE

static void
test_serial_autoconfig (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *log = g_build_filename (f->tmpdir, "serial.log", NULL);
  g_autofree char *contents = NULL;
  VrChardev *chr;
  VrDevice *dev;

  chr = vr_chardev_new (VR_SERIAL_FILE, log, &error);
  g_assert_no_error (error);
  dev = vr_serial_new (f->pio, COM1, f->irq, VR_COM1_IRQ, chr, NULL, &error);
  g_assert_no_error (error);

  /* Linux's autoconfig(): IER scratch test. */
  outb (f, COM1 + 1, 0x00);
  g_assert_cmpuint (inb (f, COM1 + 1) & 0x0f, ==, 0x00);
  outb (f, COM1 + 1, 0x0f);
  g_assert_cmpuint (inb (f, COM1 + 1) & 0x0f, ==, 0x0f);
  outb (f, COM1 + 1, 0x00);

  /* Loopback: RTS → CTS, OUT2 → DCD. */
  outb (f, COM1 + 4, 0x10 | 0x0a);
  g_assert_cmpuint (inb (f, COM1 + 6) & 0xf0, ==, 0x90);
  outb (f, COM1 + 4, 0x10 | 0x05);  /* DTR → DSR, OUT1 → RI */
  g_assert_cmpuint (inb (f, COM1 + 6) & 0xf0, ==, 0x60);
  /* A byte sent in loopback comes back and never reaches the line. */
  outb (f, COM1, 'L');
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x01, ==, 0x01);
  g_assert_cmpuint (inb (f, COM1), ==, 'L');
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x01, ==, 0x00);
  outb (f, COM1 + 4, 0x00);

  /* EFR probe (harmless on a 16550A), then the FIFO test: IIR bits 7:6 = 3. */
  outb (f, COM1 + 3, 0xbf);
  outb (f, COM1 + 2, 0x00);
  outb (f, COM1 + 3, 0x00);
  outb (f, COM1 + 2, 0x01);
  g_assert_cmpuint (inb (f, COM1 + 2) >> 6, ==, 3);

  /* autoconfig_16550a(): no EFR behind DLAB or 0xbf, not a TI16750 (bit 5 stays 0). */
  outb (f, COM1 + 3, 0x80);
  g_assert_cmpuint (inb (f, COM1 + 2), !=, 0);
  outb (f, COM1 + 3, 0xbf);
  g_assert_cmpuint (inb (f, COM1 + 2), !=, 0);
  outb (f, COM1 + 3, 0x80);
  outb (f, COM1 + 2, 0x21);
  g_assert_cmpuint (inb (f, COM1 + 2) >> 5, ==, 6);
  outb (f, COM1 + 2, 0x01);
  outb (f, COM1 + 3, 0x00);
  outb (f, COM1 + 2, 0x21);
  g_assert_cmpuint (inb (f, COM1 + 2) >> 5, ==, 6);
  /* IER bit 6 (XScale UUE) does not stick. */
  outb (f, COM1 + 1, 0x40);
  g_assert_cmpuint (inb (f, COM1 + 1) & 0x40, ==, 0);
  outb (f, COM1 + 1, 0x00);

  /* Divisor latch. */
  outb (f, COM1 + 3, 0x80);
  outb (f, COM1 + 0, 0x0c);
  outb (f, COM1 + 1, 0x00);
  g_assert_cmpuint (inb (f, COM1 + 0), ==, 0x0c);
  g_assert_cmpuint (inb (f, COM1 + 1), ==, 0x00);
  outb (f, COM1 + 3, 0x03);
  g_assert_cmpuint (inb (f, COM1 + 3), ==, 0x03);

  /* Scratch register. */
  outb (f, COM1 + 7, 0x5a);
  g_assert_cmpuint (inb (f, COM1 + 7), ==, 0x5a);

  /* Output reaches the chardev. */
  for (const char *p = "hello\n"; *p; p++)
    outb (f, COM1, (uint8_t) *p);

  vr_device_destroy (dev);
  vr_chardev_free (chr);
  g_file_get_contents (log, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, "hello\n");
}

static void
test_serial_thre (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_serial_new (f->pio, COM1, f->irq, VR_COM1_IRQ, NULL, NULL, &error);

  g_assert_no_error (error);
  outb (f, COM1 + 2, 0x07);               /* FIFO on, both cleared */
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x60, ==, 0x60);

  /* No interrupt while nothing is enabled. */
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc1);

  /* serial8250_do_startup's THRE test: enabling THRI raises it, reading IIR acks it,
   * toggling IER raises it again. */
  outb (f, COM1 + 1, 0x02);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc2);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc1);
  outb (f, COM1 + 1, 0x00);
  outb (f, COM1 + 1, 0x02);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc2);

  /* A transmitted byte leaves THR empty with THRE pending again. */
  outb (f, COM1, 'x');
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x60, ==, 0x60);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc2);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc1);

  /* FIFO off: IIR loses bits 7:6. */
  outb (f, COM1 + 2, 0x00);
  g_assert_cmpuint (inb (f, COM1 + 2) & 0xc0, ==, 0x00);

  vr_device_destroy (dev);
}

static void
test_serial_fifo (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_serial_new (f->pio, COM1, f->irq, VR_COM1_IRQ, NULL, NULL, &error);

  g_assert_no_error (error);
  outb (f, COM1 + 2, 0xc7);               /* FIFO, trigger level 14 */
  outb (f, COM1 + 4, 0x10);               /* loopback */
  outb (f, COM1 + 1, 0x01);               /* RDI */

  for (unsigned i = 0; i < 3; i++)
    outb (f, COM1, (uint8_t) ('a' + i));
  /* Below the trigger level: character timeout. */
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xcc);
  for (unsigned i = 3; i < 14; i++)
    outb (f, COM1, (uint8_t) ('a' + i));
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc4);
  /* Two more fill the FIFO, the third overruns. */
  for (unsigned i = 14; i < 17; i++)
    outb (f, COM1, (uint8_t) ('a' + i));
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x03, ==, 0x03);   /* DR | OE */
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x02, ==, 0x00);   /* OE cleared by the read */
  for (unsigned i = 0; i < 16; i++)
    g_assert_cmpuint (inb (f, COM1), ==, 'a' + i);
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x01, ==, 0);
  g_assert_cmpuint (inb (f, COM1 + 2), ==, 0xc1);

  /* Clearing the receive FIFO drops what is in it. */
  outb (f, COM1, 'z');
  outb (f, COM1 + 2, 0xc3);
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x01, ==, 0);

  vr_device_destroy (dev);
}

typedef struct
{
  GMainContext *context;
  VrChardev    *chr;
} PtyTest;

static void
test_serial_pty_input (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainContext) context = g_main_context_new ();
  VrChardev *chr;
  VrDevice *dev;
  const char *path;
  int fd;
  gint64 deadline;
  GString *got = g_string_new (NULL);
  char big[100];

  chr = vr_chardev_new (VR_SERIAL_PTY, NULL, &error);
  g_assert_no_error (error);
  path = vr_chardev_get_pty_path (chr);
  g_assert_nonnull (path);

  dev = vr_serial_new (f->pio, COM1, f->irq, VR_COM1_IRQ, chr, context, &error);
  g_assert_no_error (error);
  outb (f, COM1 + 2, 0x01);               /* 16-byte FIFO */

  /* Output with nobody attached never blocks, however much there is. */
  for (unsigned i = 0; i < 20000; i++)
    outb (f, COM1, 'o');

  fd = g_open (path, O_RDWR | O_NOCTTY, 0);
  g_assert_cmpint (fd, >=, 0);
  memset (big, 'k', sizeof big);
  g_assert_cmpint (write (fd, big, sizeof big), ==, sizeof big);

  /* 100 bytes through a 16-byte FIFO: the chardev must pause and resume, losing nothing. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (got->len < sizeof big && g_get_monotonic_time () < deadline)
    {
      while (g_main_context_iteration (context, FALSE))
        ;
      while (inb (f, COM1 + 5) & 0x01)
        g_string_append_c (got, (char) inb (f, COM1));
      g_usleep (1000);
    }
  g_assert_cmpuint (got->len, ==, sizeof big);
  g_assert_cmpint (strspn (got->str, "k"), ==, sizeof big);
  g_assert_cmpuint (inb (f, COM1 + 5) & 0x02, ==, 0);      /* no overrun */

  close (fd);
  /* The slave hung up: the pty keeps going, and nothing spins. */
  for (unsigned i = 0; i < 10; i++)
    g_main_context_iteration (context, FALSE);
  outb (f, COM1, 'p');

  vr_device_destroy (dev);
  vr_chardev_free (chr);
  g_string_free (got, TRUE);
}

/* ---- i8042 ------------------------------------------------------------------------------- */

static uint8_t
kbc_read (Fixture *f)
{
  g_assert_true (inb (f, VR_I8042_CMD) & 0x01);
  return inb (f, VR_I8042_DATA);
}

static void
kbc_expect_empty (Fixture *f)
{
  g_assert_false (inb (f, VR_I8042_CMD) & 0x01);
}

static void
test_i8042_controller (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_i8042_new (f->pio, f->irq, f->machine, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x10, ==, 0x10);  /* not keylocked */
  kbc_expect_empty (f);

  outb (f, VR_I8042_CMD, 0xaa);
  g_assert_cmpuint (kbc_read (f), ==, 0x55);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x04, ==, 0x04);  /* SYS */
  kbc_expect_empty (f);

  /* Command byte: the BIOS state, then written and read back. */
  outb (f, VR_I8042_CMD, 0x20);
  g_assert_cmpuint (kbc_read (f), ==, 0x65);
  outb (f, VR_I8042_CMD, 0x60);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x08, ==, 0x08);  /* last write was a command */
  outb (f, VR_I8042_DATA, 0x47);
  outb (f, VR_I8042_CMD, 0x20);
  g_assert_cmpuint (kbc_read (f), ==, 0x47);

  /* Aux disable/enable show in the command byte (Linux's i8042_check_aux). */
  outb (f, VR_I8042_CMD, 0xa7);
  outb (f, VR_I8042_CMD, 0x20);
  g_assert_cmpuint (kbc_read (f) & 0x20, ==, 0x20);
  outb (f, VR_I8042_CMD, 0xa8);
  outb (f, VR_I8042_CMD, 0x20);
  g_assert_cmpuint (kbc_read (f) & 0x20, ==, 0x00);

  outb (f, VR_I8042_CMD, 0xa9);
  g_assert_cmpuint (kbc_read (f), ==, 0x00);
  outb (f, VR_I8042_CMD, 0xab);
  g_assert_cmpuint (kbc_read (f), ==, 0x00);

  /* AUX loopback (0xd3) comes back from the aux port, even with the port disabled. */
  outb (f, VR_I8042_CMD, 0xa7);
  outb (f, VR_I8042_CMD, 0xd3);
  outb (f, VR_I8042_DATA, 0xa5);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x21, ==, 0x21);
  g_assert_cmpuint (kbc_read (f), ==, 0xa5);
  outb (f, VR_I8042_CMD, 0xad);
  outb (f, VR_I8042_CMD, 0xd2);
  outb (f, VR_I8042_DATA, 0x3c);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x21, ==, 0x01);
  g_assert_cmpuint (kbc_read (f), ==, 0x3c);
  outb (f, VR_I8042_CMD, 0xae);
  outb (f, VR_I8042_CMD, 0xa8);
  outb (f, VR_I8042_CMD, 0xd3);
  outb (f, VR_I8042_DATA, 0x5a);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x21, ==, 0x21);
  g_assert_cmpuint (kbc_read (f), ==, 0x5a);

  /* Output port: A20 and "not in reset". */
  outb (f, VR_I8042_CMD, 0xd0);
  g_assert_cmpuint (kbc_read (f) & 0x03, ==, 0x03);
  outb (f, VR_I8042_CMD, 0xd1);
  outb (f, VR_I8042_DATA, 0x01);
  outb (f, VR_I8042_CMD, 0xd0);
  g_assert_cmpuint (kbc_read (f) & 0x03, ==, 0x01);
  expect_no_stop (f);

  /* Unknown commands do nothing. */
  outb (f, VR_I8042_CMD, 0x99);
  kbc_expect_empty (f);

  /* Pulse the reset line. */
  outb (f, VR_I8042_CMD, 0xfe);
  expect_stop (f, VR_STOP_RESET);

  vr_device_destroy (dev);
}

static void
test_i8042_keyboard (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_i8042_new (f->pio, f->irq, f->machine, &error);
  static const uint8_t keys[] = { 0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8 };

  g_assert_no_error (error);

  /* Reset: ACK then BAT OK. */
  outb (f, VR_I8042_DATA, 0xff);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0xaa);
  kbc_expect_empty (f);

  /* Identify, translated: ab 41. */
  outb (f, VR_I8042_DATA, 0xf2);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0xab);
  g_assert_cmpuint (kbc_read (f), ==, 0x41);

  /* LEDs, typematic, echo, unknown. */
  outb (f, VR_I8042_DATA, 0xed);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  outb (f, VR_I8042_DATA, 0x07);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  outb (f, VR_I8042_DATA, 0xf3);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  outb (f, VR_I8042_DATA, 0x20);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  outb (f, VR_I8042_DATA, 0xee);
  g_assert_cmpuint (kbc_read (f), ==, 0xee);
  outb (f, VR_I8042_DATA, 0x01);
  g_assert_cmpuint (kbc_read (f), ==, 0xfe);

  /* Keys in set 1 with translation on. */
  vr_i8042_kbd_put (dev, keys, sizeof keys);
  for (unsigned i = 0; i < sizeof keys; i++)
    g_assert_cmpuint (kbc_read (f), ==, keys[i]);
  kbc_expect_empty (f);

  /* Disabled scanning drops keys. */
  outb (f, VR_I8042_DATA, 0xf5);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  vr_i8042_kbd_put (dev, keys, 2);
  kbc_expect_empty (f);
  outb (f, VR_I8042_DATA, 0xf4);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);

  /* Translation off: set 2 on the wire. */
  outb (f, VR_I8042_CMD, 0x60);
  outb (f, VR_I8042_DATA, 0x05);
  outb (f, VR_I8042_DATA, 0xf2);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0xab);
  g_assert_cmpuint (kbc_read (f), ==, 0x83);
  outb (f, VR_I8042_DATA, 0xf0);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  outb (f, VR_I8042_DATA, 0x00);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0x02);
  vr_i8042_kbd_put (dev, keys, sizeof keys);
  {
    static const uint8_t set2[] = { 0x1c, 0xf0, 0x1c, 0xe0, 0x75, 0xe0, 0xf0, 0x75 };
    for (unsigned i = 0; i < sizeof set2; i++)
      g_assert_cmpuint (kbc_read (f), ==, set2[i]);
  }

  /* A disabled keyboard port holds bytes back until it is enabled. */
  outb (f, VR_I8042_CMD, 0xad);
  vr_i8042_kbd_put (dev, keys, 1);
  kbc_expect_empty (f);
  outb (f, VR_I8042_CMD, 0xae);
  g_assert_cmpuint (kbc_read (f), ==, 0x1c);

  vr_device_destroy (dev);
}

static void
test_i8042_mouse (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_i8042_new (f->pio, f->irq, f->machine, &error);
  static const uint8_t knock[] = { 200, 100, 80 };

  g_assert_no_error (error);
  outb (f, VR_I8042_CMD, 0xa8);

#define AUX(b) do { outb (f, VR_I8042_CMD, 0xd4); outb (f, VR_I8042_DATA, (b)); } while (0)

  AUX (0xff);
  g_assert_cmpuint (inb (f, VR_I8042_CMD) & 0x20, ==, 0x20);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0xaa);
  g_assert_cmpuint (kbc_read (f), ==, 0x00);

  AUX (0xf2);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0x00);

  /* Resolution, scaling, status. */
  AUX (0xe8);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  AUX (0x03);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  AUX (0xe7);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  AUX (0xe9);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0x10);
  g_assert_cmpuint (kbc_read (f), ==, 0x03);
  g_assert_cmpuint (kbc_read (f), ==, 100);
  AUX (0xe6);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);

  /* IntelliMouse: 200, 100, 80 → ID 3. */
  for (unsigned i = 0; i < G_N_ELEMENTS (knock); i++)
    {
      AUX (0xf3);
      g_assert_cmpuint (kbc_read (f), ==, 0xfa);
      AUX (knock[i]);
      g_assert_cmpuint (kbc_read (f), ==, 0xfa);
    }
  AUX (0xf2);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);
  g_assert_cmpuint (kbc_read (f), ==, 0x03);

  /* Nothing is reported until enabled. */
  vr_i8042_mouse_move (dev, 5, 3, 0, 0);
  kbc_expect_empty (f);
  AUX (0xf4);
  g_assert_cmpuint (kbc_read (f), ==, 0xfa);

  /* Right 5, down 3 (PS/2: y = -3), wheel up 1 (packet -1), left button. */
  vr_i8042_mouse_move (dev, 5, 3, 1, 0x01);
  g_assert_cmpuint (kbc_read (f), ==, 0x08 | 0x20 | 0x01);
  g_assert_cmpuint (kbc_read (f), ==, 5);
  g_assert_cmpuint (kbc_read (f), ==, (uint8_t) -3);
  g_assert_cmpuint (kbc_read (f), ==, 0xff);
  kbc_expect_empty (f);

  /* Large motion splits into packets of at most 255. */
  vr_i8042_mouse_move (dev, 300, 0, 0, 0);
  g_assert_cmpuint (kbc_read (f), ==, 0x08);
  g_assert_cmpuint (kbc_read (f), ==, 255);
  kbc_read (f);
  kbc_read (f);
  g_assert_cmpuint (kbc_read (f), ==, 0x08);
  g_assert_cmpuint (kbc_read (f), ==, 45);
  kbc_read (f);
  kbc_read (f);
  kbc_expect_empty (f);

  /* Unknown command: resend. */
  AUX (0x01);
  g_assert_cmpuint (kbc_read (f), ==, 0xfe);

#undef AUX
  vr_device_destroy (dev);
}

/* ---- RTC --------------------------------------------------------------------------------- */

static uint8_t
cmos_read (Fixture *f, uint8_t index)
{
  outb (f, VR_RTC_BASE, index);
  return inb (f, VR_RTC_BASE + 1);
}

static void
cmos_write (Fixture *f, uint8_t index, uint8_t v)
{
  outb (f, VR_RTC_BASE, index);
  outb (f, VR_RTC_BASE + 1, v);
}

static int
bcd (uint8_t v)
{
  return (v >> 4) * 10 + (v & 0x0f);
}

/* Reads the clock as a guest does (waiting for UIP to clear); returns Unix seconds. */
static gint64
rtc_read_time (Fixture *f, bool binary)
{
  g_autoptr (GDateTime) dt = NULL;
  int v[7];
  static const uint8_t regs[7] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32 };

  while (cmos_read (f, 0x0a) & 0x80)
    ;
  for (unsigned i = 0; i < 7; i++)
    {
      uint8_t r = cmos_read (f, regs[i]);
      v[i] = binary ? r : bcd (r);
    }
  dt = g_date_time_new_utc (v[6] * 100 + v[5], v[4], v[3], v[2], v[1], v[0]);
  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt);
}

static void
test_rtc_time (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_rtc_new (f->pio, f->irq, f->memory, NULL, &error);
  gint64 host;
  bool uip = false;
  gint64 deadline;

  g_assert_no_error (error);
  g_assert_cmpuint (cmos_read (f, 0x0d), ==, 0x80);
  g_assert_cmpuint (cmos_read (f, 0x0b) & 0x06, ==, 0x02);  /* BCD, 24 h */

  host = g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpint (ABS (rtc_read_time (f, false) - host), <=, 2);

  cmos_write (f, 0x0b, 0x06);                                /* binary, 24 h */
  host = g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpint (ABS (rtc_read_time (f, true) - host), <=, 2);

  /* 12-hour mode: PM in bit 7, hours 1-12. */
  cmos_write (f, 0x0b, 0x04);
  {
    g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
    uint8_t h = cmos_read (f, 0x04);
    int hour = g_date_time_get_hour (now);
    int h12 = hour % 12 == 0 ? 12 : hour % 12;

    if (g_date_time_get_minute (now) < 59)  /* avoid the hour boundary */
      {
        g_assert_cmpint (h & 0x7f, ==, h12);
        g_assert_cmpint (!!(h & 0x80), ==, hour >= 12);
      }
  }

  /* Setting the time with SET moves the clock; it then keeps running from there. */
  cmos_write (f, 0x0b, 0x82);                                /* SET, BCD, 24 h */
  cmos_write (f, 0x00, 0x30);
  cmos_write (f, 0x02, 0x15);
  cmos_write (f, 0x04, 0x10);
  cmos_write (f, 0x07, 0x24);
  cmos_write (f, 0x08, 0x12);
  cmos_write (f, 0x09, 0x99);
  cmos_write (f, 0x32, 0x19);
  g_assert_cmpuint (cmos_read (f, 0x00), ==, 0x30);          /* frozen while SET */
  cmos_write (f, 0x0b, 0x02);
  {
    g_autoptr (GDateTime) want = g_date_time_new_utc (1999, 12, 24, 10, 15, 30);
    gint64 got = rtc_read_time (f, false);
    g_assert_cmpint (ABS (got - g_date_time_to_unix (want)), <=, 2);
  }
  /* The offset survives a reset. */
  vr_device_reset (dev);
  g_assert_cmpuint (cmos_read (f, 0x09), ==, 0x99);

  /* Garbage time does not break the clock. */
  cmos_write (f, 0x08, 0x99);
  cmos_write (f, 0x04, 0xff);
  g_assert_cmpuint (cmos_read (f, 0x09), ==, 0x99);

  /* UIP is seen before each second rollover. */
  deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;
  while (!uip && g_get_monotonic_time () < deadline)
    uip = cmos_read (f, 0x0a) & 0x80;
  g_assert_true (uip);

  vr_device_destroy (dev);
}

static void
test_rtc_nvram (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_rtc_new (f->pio, f->irq, f->memory, NULL, &error);

  g_assert_no_error (error);

  /* Memory sizes for 64 MiB. */
  g_assert_cmpuint (cmos_read (f, 0x15) | (cmos_read (f, 0x16) << 8), ==, 640);
  g_assert_cmpuint (cmos_read (f, 0x17) | (cmos_read (f, 0x18) << 8), ==, 63 * 1024);
  g_assert_cmpuint (cmos_read (f, 0x30) | (cmos_read (f, 0x31) << 8), ==, 63 * 1024);
  g_assert_cmpuint (cmos_read (f, 0x34) | (cmos_read (f, 0x35) << 8), ==, 48 * 16);
  g_assert_cmpuint (cmos_read (f, 0x5b) | cmos_read (f, 0x5c) | cmos_read (f, 0x5d), ==, 0);

  /* 0x40-0x4f is guest scratch: written, survives a reset. */
  for (unsigned i = 0x40; i < 0x50; i++)
    cmos_write (f, (uint8_t) i, (uint8_t) (i ^ 0xa5));
  cmos_write (f, 0x7f, 0x77);
  cmos_write (f, 0x0b, 0x72);                                /* PIE, AIE, UIE */
  vr_device_reset (dev);
  for (unsigned i = 0x40; i < 0x50; i++)
    g_assert_cmpuint (cmos_read (f, (uint8_t) i), ==, i ^ 0xa5);
  g_assert_cmpuint (cmos_read (f, 0x7f), ==, 0x77);
  g_assert_cmpuint (cmos_read (f, 0x0b) & 0x70, ==, 0);      /* reset clears the enables */

  /* The index wraps at 128 (bit 7 is the NMI mask). */
  outb (f, VR_RTC_BASE, 0x80 | 0x40);
  g_assert_cmpuint (inb (f, VR_RTC_BASE + 1), ==, 0x40 ^ 0xa5);

  /* Register C is clear-on-read; D is read-only. */
  g_usleep (1100 * 1000);
  g_assert_cmpuint (cmos_read (f, 0x0c) & 0x10, ==, 0x10);   /* UF after a second */
  g_assert_cmpuint (cmos_read (f, 0x0c), ==, 0);
  cmos_write (f, 0x0d, 0x00);
  g_assert_cmpuint (cmos_read (f, 0x0d), ==, 0x80);

  vr_device_destroy (dev);
}

static void
test_rtc_periodic (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainContext) context = g_main_context_new ();
  VrDevice *dev = vr_rtc_new (f->pio, f->irq, f->memory, context, &error);
  unsigned wakeups = 0;
  unsigned irqs = 0;
  gint64 end;

  g_assert_no_error (error);

  /* A guest asking for 8 kHz gets at most 1024 Hz of timer work. */
  cmos_write (f, 0x0a, 0x23);
  cmos_write (f, 0x0b, 0x42);
  end = g_get_monotonic_time () + 200 * 1000;
  while (g_get_monotonic_time () < end)
    {
      if (g_main_context_iteration (context, FALSE))
        wakeups++;
      if (cmos_read (f, 0x0c) & 0xc0)
        irqs++;
      g_usleep (200);
    }
  g_assert_cmpuint (irqs, >, 0);
  g_assert_cmpuint (wakeups, <=, 1024 / 5 + 20);

  /* Disabled: the timer goes quiet. */
  cmos_write (f, 0x0b, 0x02);
  cmos_read (f, 0x0c);
  while (g_main_context_iteration (context, FALSE))
    ;
  wakeups = 0;
  end = g_get_monotonic_time () + 50 * 1000;
  while (g_get_monotonic_time () < end)
    {
      if (g_main_context_iteration (context, FALSE))
        wakeups++;
      g_usleep (1000);
    }
  g_assert_cmpuint (wakeups, ==, 0);

  vr_device_destroy (dev);
}

/* ---- debug-exit, pc-misc ---------------------------------------------------------------- */

static void
test_debug_exit (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_debug_exit_new (f->pio, f->machine, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (in (f, VR_DEBUG_EXIT_BASE, 4), ==, 0);
  g_assert_cmpuint (in (f, VR_DEBUG_EXIT_BASE + 2, 1), ==, 0);
  expect_no_stop (f);
  out (f, VR_DEBUG_EXIT_BASE, 4, 0x21);
  expect_stop (f, VR_STOP_DEBUG_EXIT);
  if (f->machine && vr_machine_get_stop_reason (f->machine) == VR_STOP_DEBUG_EXIT)
    g_assert_cmpint (vr_machine_get_exit_status (f->machine), ==, (0x21 << 1) | 1);
  vr_device_destroy (dev);
}

static void
test_pc_misc (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_pc_misc_new (f->pio, f->machine, &error);

  g_assert_no_error (error);
  outb (f, 0x80, 0x42);
  g_assert_cmpuint (inb (f, 0x80), ==, 0xff);
  g_assert_cmpuint (inb (f, 0x92) & 0x02, ==, 0x02);
  outb (f, 0x92, 0x00);
  g_assert_cmpuint (inb (f, 0x92) & 0x02, ==, 0x00);
  outb (f, 0x92, 0x02);
  g_assert_cmpuint (inb (f, 0x92) & 0x02, ==, 0x02);
  g_assert_cmpuint (inb (f, 0x402), ==, 0xe9);
  for (const char *p = "SeaBIOS says hi\n\x01\xff"; *p; p++)
    outb (f, 0x402, (uint8_t) *p);
  expect_no_stop (f);
  outb (f, 0x92, 0x03);
  expect_stop (f, VR_STOP_RESET);
  vr_device_destroy (dev);
}

/* ---- PCI --------------------------------------------------------------------------------- */

static uint32_t
pci_read (Fixture *f, unsigned devfn, unsigned reg, unsigned len)
{
  out (f, 0xcf8, 4, 0x80000000u | (devfn << 8) | (reg & 0xfc));
  return (uint32_t) in (f, (uint16_t) (0xcfc + (reg & 3)), len);
}

static void
pci_write (Fixture *f, unsigned devfn, unsigned reg, unsigned len, uint32_t v)
{
  out (f, 0xcf8, 4, 0x80000000u | (devfn << 8) | (reg & 0xfc));
  out (f, (uint16_t) (0xcfc + (reg & 3)), len, v);
}

typedef struct
{
  VrPciFunction fn;
  uint8_t       regs[16];
  unsigned      updates;
  uint64_t      last_addr;
} TestFn;

static void
test_bar_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  TestFn *t = opaque;

  g_assert_cmpuint (offset + len, <=, sizeof t->regs);
  if (is_write)
    memcpy (t->regs + offset, data, len);
  else
    memcpy (data, t->regs + offset, len);
}

static void
test_bar_update (VrPciFunction *fn, unsigned bar, uint64_t addr)
{
  TestFn *t = (TestFn *) fn;

  t->updates++;
  t->last_addr = addr;
}

static const VrPciFunctionOps test_fn_ops = {
  .bar_update = test_bar_update,
};

static void
test_pci_host (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_pci_host_new (f->pio, f->machine, &error);
  TestFn t = { 0 };
  uint8_t cap_body[6] = { 1, 2, 3, 4, 5, 6 };

  g_assert_no_error (error);

  /* Linux's pci_check_type1(). */
  outb (f, 0xcfb, 0x01);
  out (f, 0xcf8, 4, 0x80000000);
  g_assert_cmphex (in (f, 0xcf8, 4), ==, 0x80000000);
  /* Byte/word accesses to 0xcf8 leave the address alone. */
  out (f, 0xcf8, 2, 0x1234);
  outb (f, 0xcfa, 0x55);
  g_assert_cmphex (in (f, 0xcf8, 4), ==, 0x80000000);

  g_assert_cmphex (pci_read (f, 0, 0x00, 4), ==, 0x12378086);
  g_assert_cmphex (pci_read (f, 0, 0x02, 2), ==, 0x1237);
  g_assert_cmphex (pci_read (f, 0, 0x03, 1), ==, 0x12);
  g_assert_cmphex (pci_read (f, 0, 0x08, 4) >> 8, ==, 0x060000);
  g_assert_cmphex (pci_read (f, 0, 0x0e, 1), ==, 0x00);

  /* Read-only IDs. */
  pci_write (f, 0, 0x00, 4, 0xffffffff);
  g_assert_cmphex (pci_read (f, 0, 0x00, 4), ==, 0x12378086);
  pci_write (f, 0, 0x04, 2, 0xffff);
  g_assert_cmphex (pci_read (f, 0, 0x04, 2), ==, 0x0407);

  /* Absent device, other bus, disabled address. */
  g_assert_cmphex (pci_read (f, 1 << 3, 0x00, 4), ==, 0xffffffff);
  out (f, 0xcf8, 4, 0x80010000);
  g_assert_cmphex (in (f, 0xcfc, 4), ==, 0xffffffff);
  out (f, 0xcf8, 4, 0x00000000);
  g_assert_cmphex (in (f, 0xcfc, 4), ==, 0xffffffff);
  /* A dword straddling the end of the data window is refused. */
  out (f, 0xcf8, 4, 0x80000000);
  g_assert_cmphex (in (f, 0xcfe, 4), ==, 0xffffffff);

  /* A function with an I/O BAR and a capability. */
  vr_pci_function_init (&t.fn, 0x1af4, 0x1000, 0x020000, 1, &test_fn_ops, NULL);
  g_assert_true (vr_pci_function_set_bar (&t.fn, 0, VR_PCI_BAR_IO, 16, false, test_bar_io, &t,
                                          &error));
  g_assert_no_error (error);
  g_assert_false (vr_pci_function_set_bar (&t.fn, 1, VR_PCI_BAR_IO, 24, false, test_bar_io, &t,
                                           NULL));
  g_assert_false (vr_pci_function_set_bar (&t.fn, 5, VR_PCI_BAR_MEM64, 4096, false, NULL, NULL,
                                           NULL));
  g_assert_cmpuint (vr_pci_function_add_capability (&t.fn, 0x09, cap_body, sizeof cap_body,
                                                    NULL), ==, 0x40);
  g_assert_cmpuint (vr_pci_function_add_capability (&t.fn, 0x11, cap_body, 2, NULL), ==, 0x48);
  g_assert_true (vr_pci_host_add_function (dev, &t.fn, 3, 0, &error));
  g_assert_no_error (error);
  {
    VrPciFunction other;

    vr_pci_function_init (&other, 0x1af4, 0x1001, 0x010000, 0, NULL, NULL);
    g_assert_false (vr_pci_host_add_function (dev, &other, 3, 0, &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
    g_clear_error (&error);
    g_assert_false (vr_pci_host_add_function (dev, &other, 32, 0, &error));
    g_clear_error (&error);
  }

  g_assert_cmphex (pci_read (f, 3 << 3, 0x00, 4), ==, 0x10001af4);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x06, 2) & 0x10, ==, 0x10);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x34, 1), ==, 0x40);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x41, 1), ==, 0x48);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x48, 1), ==, 0x11);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x49, 1), ==, 0x00);

  /* BAR sizing. */
  pci_write (f, 3 << 3, 0x10, 4, 0xffffffff);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x10, 4), ==, 0xfffffff1);
  pci_write (f, 3 << 3, 0x10, 4, 0xc000);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x10, 4), ==, 0xc001);
  g_assert_cmphex (in (f, 0xc004, 4), ==, 0xffffffff);      /* decoding off */
  g_assert_cmpuint (t.updates, ==, 0);

  pci_write (f, 3 << 3, 0x04, 2, 0x0001);
  g_assert_cmpuint (t.updates, ==, 1);
  g_assert_cmphex (t.last_addr, ==, 0xc000);
  g_assert_cmphex (vr_pci_function_bar_address (&t.fn, 0), ==, 0xc000);
  out (f, 0xc004, 4, 0xdeadbeef);
  g_assert_cmphex (in (f, 0xc004, 4), ==, 0xdeadbeef);
  g_assert_cmphex (t.regs[4], ==, 0xef);
  g_assert_cmphex (in (f, 0xc00e, 4), ==, 0xffffffff);      /* straddles the end */

  /* Reset turns decoding off again. */
  vr_device_reset (dev);
  g_assert_cmphex (t.last_addr, ==, VR_PCI_BAR_UNMAPPED);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x04, 2), ==, 0);

  /* Reset control register: bit 1 sticks, bit 2 resets. */
  outb (f, 0xcf9, 0x02);
  g_assert_cmphex (inb (f, 0xcf9), ==, 0x02);
  expect_no_stop (f);
  outb (f, 0xcf9, 0x06);
  expect_stop (f, VR_STOP_RESET);

  vr_pci_host_remove_function (dev, &t.fn);
  g_assert_cmphex (pci_read (f, 3 << 3, 0x00, 4), ==, 0xffffffff);
  vr_device_destroy (dev);
}

/* ---- ACPI PM ----------------------------------------------------------------------------- */

static void
test_acpi_pm (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_acpi_pm_new (f->pio, f->irq, f->machine, &error);
  uint32_t t0, t1, t2;

  g_assert_no_error (error);

  g_assert_cmphex (in (f, VR_ACPI_PM1_CNT, 2) & 1, ==, 1);   /* SCI_EN */
  out (f, VR_ACPI_PM1_CNT, 2, 0);
  g_assert_cmphex (in (f, VR_ACPI_PM1_CNT, 2) & 1, ==, 1);

  /* PM timer: 24 bits, counting at 3.58 MHz. */
  t0 = (uint32_t) in (f, VR_ACPI_PM_TMR, 4);
  g_usleep (10000);
  t1 = (uint32_t) in (f, VR_ACPI_PM_TMR, 4);
  g_usleep (10000);
  t2 = (uint32_t) in (f, VR_ACPI_PM_TMR, 4);
  g_assert_cmphex (t0 & 0xff000000, ==, 0);
  g_assert_cmpuint ((t1 - t0) & 0xffffff, >=, 30000);
  g_assert_cmpuint ((t1 - t0) & 0xffffff, <, 3579545);
  g_assert_cmpuint ((t2 - t1) & 0xffffff, >=, 30000);
  out (f, VR_ACPI_PM_TMR, 4, 0);                             /* read-only */

  /* Enable register, power button status, write-1-to-clear. */
  out (f, VR_ACPI_PM1_EVT + 2, 2, 0x0100);
  g_assert_cmphex (in (f, VR_ACPI_PM1_EVT + 2, 2), ==, 0x0100);
  vr_acpi_pm_power_button (dev);
  g_assert_cmphex (in (f, VR_ACPI_PM1_EVT, 2) & 0x0100, ==, 0x0100);
  g_assert_cmphex (in (f, VR_ACPI_PM1_EVT, 4) >> 16, ==, 0x0100);   /* dword: sts | en */
  out (f, VR_ACPI_PM1_EVT, 2, 0x0000);
  g_assert_cmphex (in (f, VR_ACPI_PM1_EVT, 2) & 0x0100, ==, 0x0100);
  outb (f, VR_ACPI_PM1_EVT + 1, 0x01);                       /* byte write to the high half */
  g_assert_cmphex (in (f, VR_ACPI_PM1_EVT, 2) & 0x0100, ==, 0x0000);

  /* GPE0: enable sticks, status stays clear. */
  outb (f, VR_ACPI_GPE0 + 2, 0xff);
  g_assert_cmphex (inb (f, VR_ACPI_GPE0 + 2), ==, 0xff);
  g_assert_cmphex (inb (f, VR_ACPI_GPE0), ==, 0x00);

  /* Sleep types other than S5 do nothing; S5 powers off. */
  out (f, VR_ACPI_PM1_CNT, 2, (1 << 10) | (1 << 13));
  expect_no_stop (f);
  out (f, VR_ACPI_PM1_CNT, 2, VR_ACPI_S5_TYP << 10);         /* SLP_TYP alone: nothing */
  expect_no_stop (f);
  g_assert_cmphex (in (f, VR_ACPI_PM1_CNT, 2), ==, (VR_ACPI_S5_TYP << 10) | 1);
  out (f, VR_ACPI_PM1_CNT, 2, (VR_ACPI_S5_TYP << 10) | (1 << 13));
  expect_stop (f, VR_STOP_POWER_OFF);

  vr_device_destroy (dev);
}

/* ---- fw_cfg ------------------------------------------------------------------------------ */

static void
fw_cfg_select (Fixture *f, uint16_t key)
{
  out (f, VR_FW_CFG_BASE, 2, key);
}

static void
fw_cfg_read (Fixture *f, void *buf, size_t len)
{
  uint8_t *p = buf;

  for (size_t i = 0; i < len; i++)
    p[i] = inb (f, VR_FW_CFG_BASE + 1);
}

/* Starts a DMA with the descriptor at @desc, as a guest does: two big-endian halves. */
static void
fw_cfg_dma (Fixture *f, uint64_t desc)
{
  out (f, VR_FW_CFG_BASE + 4, 4, GUINT32_TO_BE ((uint32_t) (desc >> 32)));
  out (f, VR_FW_CFG_BASE + 8, 4, GUINT32_TO_BE ((uint32_t) desc));
}

static void
write_desc (Fixture *f, uint64_t at, uint32_t control, uint32_t length, uint64_t address)
{
  uint32_t c = GUINT32_TO_BE (control);
  uint32_t l = GUINT32_TO_BE (length);
  uint64_t a = GUINT64_TO_BE (address);
  uint8_t raw[16];

  memcpy (raw, &c, 4);
  memcpy (raw + 4, &l, 4);
  memcpy (raw + 8, &a, 8);
  g_assert_true (vr_memory_write (f->memory, at, raw, sizeof raw));
}

static uint32_t
read_control (Fixture *f, uint64_t at)
{
  uint32_t c;

  g_assert_true (vr_memory_read (f->memory, at, &c, 4));
  return GUINT32_FROM_BE (c);
}

static void
test_fw_cfg (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *dev = vr_fw_cfg_new (f->pio, f->memory, &error);
  char sig[5] = { 0 };
  uint32_t id, count;
  uint8_t dir[4 + 3 * 64];
  uint8_t buf[64];
  uint64_t ram = 0x12345678;
  static const char payload[] = "the quick brown fox";

  g_assert_no_error (error);

  fw_cfg_select (f, 0x0000);
  fw_cfg_read (f, sig, 4);
  g_assert_cmpstr (sig, ==, "QEMU");
  g_assert_cmpuint (inb (f, VR_FW_CFG_BASE + 1), ==, 0);    /* past the end */

  fw_cfg_select (f, 0x0001);
  fw_cfg_read (f, &id, 4);
  g_assert_cmphex (GUINT32_FROM_LE (id), ==, 0x3);

  /* DMA signature. */
  {
    uint8_t s[8];
    vr_io_put (s, 8, in (f, VR_FW_CFG_BASE + 4, 8));
    g_assert_cmpmem (s, 8, "QEMU CFG", 8);
  }

  vr_fw_cfg_add_item (dev, 0x03, &ram, sizeof ram);
  vr_fw_cfg_add_file (dev, "etc/zeta", payload, sizeof payload);
  vr_fw_cfg_add_file (dev, "etc/alpha", "A", 1);
  vr_fw_cfg_add_file (dev, "bootorder", "", 0);

  fw_cfg_select (f, 0x0003);
  {
    uint64_t got;
    fw_cfg_read (f, &got, 8);
    g_assert_cmphex (got, ==, ram);
  }

  /* File directory: big-endian, sorted by name, selectors from 0x20 in that order. */
  fw_cfg_select (f, 0x0019);
  fw_cfg_read (f, dir, sizeof dir);
  memcpy (&count, dir, 4);
  g_assert_cmpuint (GUINT32_FROM_BE (count), ==, 3);
  g_assert_cmpstr ((char *) dir + 4 + 8, ==, "bootorder");
  g_assert_cmpstr ((char *) dir + 4 + 64 + 8, ==, "etc/alpha");
  g_assert_cmpstr ((char *) dir + 4 + 128 + 8, ==, "etc/zeta");
  g_assert_cmphex ((dir[4 + 128 + 4] << 8) | dir[4 + 128 + 5], ==, 0x22);
  g_assert_cmpuint (GUINT32_FROM_BE (*(uint32_t *) (void *) (dir + 4 + 128)), ==,
                    sizeof payload);

  /* Port read of a file. */
  fw_cfg_select (f, 0x0021);
  g_assert_cmpuint (inb (f, VR_FW_CFG_BASE + 1), ==, 'A');

  /* DMA: select + read into RAM. */
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x02, sizeof payload, 0x2000);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000), ==, 0);
  g_assert_true (vr_memory_read (f->memory, 0x2000, buf, sizeof payload));
  g_assert_cmpstr ((char *) buf, ==, payload);

  /* Skip then read the rest; reading past the end gives zeroes. */
  memset (buf, 0xaa, sizeof buf);
  g_assert_true (vr_memory_write (f->memory, 0x3000, buf, sizeof buf));
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x04, 4, 0);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000), ==, 0);
  write_desc (f, 0x1000, 0x02, 32, 0x3000);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000), ==, 0);
  g_assert_true (vr_memory_read (f->memory, 0x3000, buf, 32));
  g_assert_cmpmem (buf, sizeof payload - 4, payload + 4, sizeof payload - 4);
  for (size_t i = sizeof payload - 4; i < 32; i++)
    g_assert_cmpuint (buf[i], ==, 0);

  /* A 64-bit write of the address works too. */
  write_desc (f, 0x1000, (0x00u << 16) | 0x08 | 0x02, 4, 0x2000);
  out (f, VR_FW_CFG_BASE + 4, 8, GUINT64_TO_BE (0x1000));
  g_assert_cmphex (read_control (f, 0x1000), ==, 0);
  g_assert_true (vr_memory_read (f->memory, 0x2000, buf, 4));
  g_assert_cmpmem (buf, 4, "QEMU", 4);

  /* Hostile DMAs: a buffer outside RAM, a buffer that wraps, writes, a descriptor outside
   * RAM. Each fails with the error bit (or quietly), never crashes. */
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x02, 16, 0xf0000000);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000) & 0x01, ==, 0x01);
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x02, 16, G_MAXUINT64 - 4);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000) & 0x01, ==, 0x01);
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x02, 16, (64u << 20) - 8);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000) & 0x01, ==, 0x01);
  write_desc (f, 0x1000, (0x22u << 16) | 0x08 | 0x10, 4, 0x2000);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000) & 0x01, ==, 0x01);
  write_desc (f, 0x1000, (0x3fffu << 16) | 0x08 | 0x02, G_MAXUINT32, 0xe0000000);
  fw_cfg_dma (f, 0x1000);
  g_assert_cmphex (read_control (f, 0x1000) & 0x01, ==, 0x01);
  fw_cfg_dma (f, 0xfffffff8);
  fw_cfg_dma (f, G_MAXUINT64);
  fw_cfg_dma (f, (64u << 20) - 4);

  /* Unknown selectors read zeroes; odd-sized accesses are harmless. */
  fw_cfg_select (f, 0xffff);
  g_assert_cmpuint (inb (f, VR_FW_CFG_BASE + 1), ==, 0);
  fw_cfg_select (f, 0x3fff);
  g_assert_cmpuint (inb (f, VR_FW_CFG_BASE + 1), ==, 0);
  out (f, VR_FW_CFG_BASE, 1, 0x00);
  out (f, VR_FW_CFG_BASE + 1, 4, 0xffffffff);
  out (f, VR_FW_CFG_BASE + 2, 2, 0xffff);
  out (f, VR_FW_CFG_BASE + 6, 4, 0);
  in (f, VR_FW_CFG_BASE + 10, 4);
  in (f, VR_FW_CFG_BASE + 9, 3);

  vr_device_reset (dev);
  g_assert_cmpuint (inb (f, VR_FW_CFG_BASE + 1), ==, 0);
  vr_device_destroy (dev);
}

/* ---- Everything, with garbage ------------------------------------------------------------ */

static void
test_hostile (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  VrDevice *devs[8];
  static const struct { uint16_t base, len; } ranges[] = {
    { VR_COM1_BASE, 8 }, { 0x60, 5 }, { 0x70, 2 }, { VR_DEBUG_EXIT_BASE, 4 },
    { 0xcf8, 8 }, { 0x80, 1 }, { 0x92, 1 }, { 0x402, 1 }, { 0x510, 12 }, { 0x600, 0x40 },
  };
  unsigned n = 0;

  /* No machine: requests the garbage makes are dropped by the devices themselves. */
  devs[n++] = vr_serial_new (f->pio, COM1, f->irq, VR_COM1_IRQ, NULL, NULL, &error);
  devs[n++] = vr_i8042_new (f->pio, f->irq, NULL, &error);
  devs[n++] = vr_rtc_new (f->pio, f->irq, f->memory, NULL, &error);
  devs[n++] = vr_debug_exit_new (f->pio, NULL, &error);
  devs[n++] = vr_pci_host_new (f->pio, NULL, &error);
  devs[n++] = vr_pc_misc_new (f->pio, NULL, &error);
  devs[n++] = vr_acpi_pm_new (f->pio, f->irq, NULL, &error);
  devs[n++] = vr_fw_cfg_new (f->pio, f->memory, &error);
  g_assert_no_error (error);

  for (unsigned iter = 0; iter < 20000; iter++)
    {
      unsigned r = (unsigned) g_test_rand_int_range (0, G_N_ELEMENTS (ranges));
      uint16_t port = (uint16_t) (ranges[r].base + g_test_rand_int_range (-2, ranges[r].len + 2));
      uint32_t len = (uint32_t) g_test_rand_int_range (1, 9);
      uint8_t buf[8];

      for (unsigned i = 0; i < 8; i++)
        buf[i] = (uint8_t) g_test_rand_int ();
      vr_bus_dispatch (f->pio, port, buf, len, g_test_rand_bit ());
    }

  for (unsigned i = 0; i < n; i++)
    vr_device_reset (devs[i]);
  for (unsigned i = n; i > 0; i--)
    vr_device_destroy (devs[i - 1]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/devices/serial/autoconfig", test_serial_autoconfig);
  ADD ("/devices/serial/thre", test_serial_thre);
  ADD ("/devices/serial/fifo", test_serial_fifo);
  ADD ("/devices/serial/pty-input", test_serial_pty_input);
  ADD ("/devices/i8042/controller", test_i8042_controller);
  ADD ("/devices/i8042/keyboard", test_i8042_keyboard);
  ADD ("/devices/i8042/mouse", test_i8042_mouse);
  ADD ("/devices/rtc/time", test_rtc_time);
  ADD ("/devices/rtc/nvram", test_rtc_nvram);
  ADD ("/devices/rtc/periodic", test_rtc_periodic);
  ADD ("/devices/debug-exit", test_debug_exit);
  ADD ("/devices/pc-misc", test_pc_misc);
  ADD ("/devices/pci-host", test_pci_host);
  ADD ("/devices/acpi-pm", test_acpi_pm);
  ADD ("/devices/fw-cfg", test_fw_cfg);
  ADD ("/devices/hostile", test_hostile);

#undef ADD
  return g_test_run ();
}
