/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The engine's public API, driven as the app drives it: lifecycle transitions, events on the
 * caller's GMainContext, the ACPI power button, guest errors, several machines at once.
 * The guests are tests/guests/lifecycle.c and hello.c; their serial output goes to a file the
 * test reads back.
 */

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "vr-machine.h"

typedef struct
{
  GMainContext *context;
  GArray       *events;  /* VrEvent, message not kept */
  GPtrArray    *messages;
  char         *dir;
  char         *log;
  VrMachine    *machine;
} Fixture;

static char *
guest_path (const char *name)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");

  return g_build_filename (dir ? dir : ".", name, NULL);
}

static void
on_event (VrMachine *machine, const VrEvent *event, gpointer user_data)
{
  Fixture *f = user_data;

  g_array_append_val (f->events, *event);
  g_ptr_array_add (f->messages, g_strdup (event->message ? event->message : ""));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
  f->events = g_array_new (FALSE, TRUE, sizeof (VrEvent));
  f->messages = g_ptr_array_new_with_free_func (g_free);
  f->dir = g_dir_make_tmp ("vireo-test-machine-XXXXXX", NULL);
  f->log = g_build_filename (f->dir, "serial.log", NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->machine, vr_machine_free);
  /* Deliver what is pending, so the machine's last reference goes. */
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_unlink (f->log);
  g_rmdir (f->dir);
  g_free (f->log);
  g_free (f->dir);
  g_array_unref (f->events);
  g_ptr_array_unref (f->messages);
  g_main_context_pop_thread_default (f->context);
  g_main_context_unref (f->context);
}

static VrMachine *
new_machine (Fixture *f, const char *guest, const char *cmdline, unsigned cpus, GError **error)
{
  g_autofree char *kernel = guest_path (guest);
  VrMachineConfig config;
  VrMachine *m;

  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.cmdline = g_strdup (cmdline);
  config.memory = 64u << 20;
  config.cpus = cpus;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->log);
  m = vr_machine_new (&config, error);
  vr_machine_config_clear (&config);
  if (m)
    vr_machine_set_event_func (m, f->context, on_event, f, NULL);
  return m;
}

static char *
read_log (Fixture *f)
{
  char *text = NULL;

  if (!g_file_get_contents (f->log, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

/* Iterates the context until @pred holds or @seconds pass. */
static bool
wait_until (Fixture *f, bool (*pred) (Fixture *, gconstpointer), gconstpointer arg, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (!pred (f, arg))
    {
      if (g_get_monotonic_time () > end)
        return false;
      g_main_context_iteration (f->context, FALSE);
      g_usleep (2000);
    }
  return true;
}

static bool
log_contains (Fixture *f, gconstpointer needle)
{
  g_autofree char *text = read_log (f);

  return strstr (text, needle) != NULL;
}

/* The banner twice, and the second boot counting from 0 again. */
static bool
log_has_second_boot (Fixture *f, gconstpointer unused)
{
  g_autofree char *text = read_log (f);
  const char *first = strstr (text, "lifecycle guest\n");
  const char *second = first ? strstr (first + 1, "lifecycle guest\n") : NULL;

  return second && strstr (second, "tick 0\ntick 1\n");
}

static bool
has_event (Fixture *f, gconstpointer type)
{
  for (guint i = 0; i < f->events->len; i++)
    if ((int) g_array_index (f->events, VrEvent, i).type == GPOINTER_TO_INT (type))
      return true;
  return false;
}

static unsigned
count_events (Fixture *f, VrEventType type)
{
  unsigned n = 0;

  for (guint i = 0; i < f->events->len; i++)
    n += g_array_index (f->events, VrEvent, i).type == type;
  return n;
}

static const VrEvent *
last_event (Fixture *f, VrEventType type)
{
  for (guint i = f->events->len; i > 0; i--)
    if (g_array_index (f->events, VrEvent, i - 1).type == type)
      return &g_array_index (f->events, VrEvent, i - 1);
  return NULL;
}

static unsigned
last_tick (Fixture *f)
{
  g_autofree char *text = read_log (f);
  const char *p = g_strrstr (text, "tick ");

  return p ? (unsigned) atoi (p + 5) : 0;
}

static void
test_lifecycle (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *frozen = NULL, *later = NULL;

  f->machine = new_machine (f, "lifecycle.elf", "count", 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_CREATED);

  /* Only a running machine can be paused, resumed or reset. */
  g_assert_false (vr_machine_pause (f->machine, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
  g_clear_error (&error);
  g_assert_false (vr_machine_resume (f->machine, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
  g_clear_error (&error);

  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  g_assert_false (vr_machine_start (f->machine, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
  g_clear_error (&error);
  g_assert_true (wait_until (f, log_contains, "tick 3\n", 30));
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_STATE_CHANGED), 5));
  g_assert_cmpint (g_array_index (f->events, VrEvent, 0).state, ==, VR_STATE_RUNNING);

  /* Paused: not one more line. */
  g_assert_true (vr_machine_pause (f->machine, &error));
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_PAUSED);
  frozen = read_log (f);
  g_usleep (400 * 1000);
  later = read_log (f);
  g_assert_cmpstr (frozen, ==, later);

  /* Resumed: it goes on counting from where it was. */
  {
    unsigned before = last_tick (f);
    g_autofree char *next = g_strdup_printf ("tick %u\n", before + 3);

    g_assert_true (vr_machine_resume (f->machine, &error));
    g_assert_true (wait_until (f, log_contains, next, 30));
  }

  /* Reset: the guest starts over (a second banner) and counts from 0 again. */
  g_assert_true (vr_machine_reset (f->machine, &error));
  g_assert_no_error (error);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_RESET), 5));
  g_assert_true (wait_until (f, log_has_second_boot, NULL, 30));

  /* Stop: powered off, by request; then a cold start boots it again. */
  vr_machine_stop (f->machine);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_STOPPED);
  g_assert_cmpint (vr_machine_get_stop_reason (f->machine), ==, VR_STOP_REQUESTED);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_POWERED_OFF), 5));
  g_assert_cmpint (last_event (f, VR_EVENT_POWERED_OFF)->reason, ==, VR_STOP_REQUESTED);

  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_RUNNING);
  vr_machine_stop (f->machine);
  vr_machine_stop (f->machine);  /* twice is harmless */
}

static void
test_power_button (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->machine = new_machine (f, "lifecycle.elf", "powerbutton", 1, &error);
  g_assert_no_error (error);
  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_true (wait_until (f, log_contains, "waiting for the power button\n", 30));
  vr_machine_power_button (f->machine);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_POWERED_OFF), 30));
  g_assert_true (log_contains (f, "power button pressed\n"));
  g_assert_cmpint (last_event (f, VR_EVENT_POWERED_OFF)->reason, ==, VR_STOP_POWER_OFF);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_STOPPED);
}

static void
test_guest_error (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *message;

  f->machine = new_machine (f, "lifecycle.elf", "crash", 1, &error);
  g_assert_no_error (error);
  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_POWERED_OFF), 30));
  g_assert_true (log_contains (f, "jumping into the MMIO hole\n"));

  /* A guest error event with the reason, the registers and the bytes (or their absence). */
  g_assert_true (has_event (f, GINT_TO_POINTER (VR_EVENT_GUEST_ERROR)));
  for (guint i = 0; i < f->events->len; i++)
    if (g_array_index (f->events, VrEvent, i).type == VR_EVENT_GUEST_ERROR)
      {
        message = g_ptr_array_index (f->messages, i);
        g_test_message ("guest error: %s", message);
        g_assert_nonnull (strstr (message, "RIP="));
        g_assert_nonnull (strstr (message, "code at"));
      }
  g_assert_cmpint (last_event (f, VR_EVENT_POWERED_OFF)->reason, ==, VR_STOP_GUEST_ERROR);

  /* The machine can be started again after its guest broke. */
  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_GUEST_ERROR), 30));
}

static bool
three_powered_off (Fixture *f, gconstpointer unused)
{
  return count_events (f, VR_EVENT_POWERED_OFF) >= 3;
}

static void
test_many_machines (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *kernel = guest_path ("hello.elf");
  VrMachine *m[3];

  /* Three machines in one process, each with its own devices: each exit status is its own. */
  for (unsigned i = 0; i < G_N_ELEMENTS (m); i++)
    {
      g_autofree char *cmdline = g_strdup_printf ("exit=%u", 10 + i);
      VrMachineConfig config;

      vr_machine_config_init (&config);
      config.kernel = g_strdup (kernel);
      config.cmdline = g_strdup (cmdline);
      config.memory = 32u << 20;
      config.serial = VR_SERIAL_NONE;
      m[i] = vr_machine_new (&config, &error);
      vr_machine_config_clear (&config);
      g_assert_no_error (error);
      vr_machine_set_event_func (m[i], f->context, on_event, f, NULL);
    }
  for (unsigned i = 0; i < G_N_ELEMENTS (m); i++)
    g_assert_true (vr_machine_start (m[i], &error));

  for (unsigned i = 0; i < G_N_ELEMENTS (m); i++)
    {
      gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

      while (vr_machine_get_state (m[i]) != VR_STATE_STOPPED && g_get_monotonic_time () < end)
        g_main_context_iteration (f->context, FALSE), g_usleep (2000);
      g_assert_cmpint (vr_machine_get_stop_reason (m[i]), ==, VR_STOP_DEBUG_EXIT);
      g_assert_cmpint (vr_machine_get_exit_status (m[i]), ==, ((10 + i) << 1) | 1);
    }
  g_assert_true (wait_until (f, three_powered_off, NULL, 10));
  for (unsigned i = 0; i < G_N_ELEMENTS (m); i++)
    vr_machine_free (m[i]);
  /* After vr_machine_free() no event reaches the caller. */
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_assert_cmpuint (count_events (f, VR_EVENT_POWERED_OFF), ==, 3);
}

static void
test_64_cpus (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->machine = new_machine (f, "hello.elf", "exit=0", 64, &error);
  if (error && g_error_matches (error, VR_ERROR, VR_ERROR_INVALID_CONFIG)
      && strstr (error->message, "at most"))
    {
      g_test_skip (error->message);
      return;
    }
  g_assert_no_error (error);
  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_POWERED_OFF), 60));
  g_assert_cmpint (vr_machine_get_exit_status (f->machine), ==, 1);
  g_assert_true (log_contains (f, "PASS\n"));
}

static void
test_stop_while_running (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  /* Freeing a running machine stops it cleanly; nothing is left behind. */
  for (unsigned i = 0; i < 5; i++)
    {
      VrMachine *m = new_machine (f, "lifecycle.elf", "count", 4, &error);

      g_assert_no_error (error);
      g_assert_true (vr_machine_start (m, &error));
      g_usleep (20000 * i);
      if (i % 2)
        vr_machine_pause (m, NULL);
      vr_machine_free (m);
    }
}

static void
test_bad_config (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *kernel = guest_path ("hello.elf");
  VrMachineConfig config;
  struct { unsigned cpus; uint64_t memory; const char *kernel; const char *mask; VrError code; }
    cases[] = {
      { 0, 64u << 20, kernel, NULL, VR_ERROR_INVALID_CONFIG },
      { 65, 64u << 20, kernel, NULL, VR_ERROR_INVALID_CONFIG },
      { 1, 1u << 20, kernel, NULL, VR_ERROR_INVALID_CONFIG },
      { 1, (64u << 20) + 1, kernel, NULL, VR_ERROR_INVALID_CONFIG },
      { 1, 1ull << 40, kernel, NULL, VR_ERROR_INVALID_CONFIG },
      { 1, 64u << 20, "/nonexistent/kernel", NULL, VR_ERROR_BAD_KERNEL },
      { 1, 64u << 20, kernel, "x2apic,no-such-feature", VR_ERROR_INVALID_CONFIG },
    };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      VrMachine *m;

      vr_machine_config_init (&config);
      config.kernel = g_strdup (cases[i].kernel);
      config.cpus = cases[i].cpus;
      config.memory = cases[i].memory;
      config.cpuid_mask = g_strdup (cases[i].mask);
      config.serial = VR_SERIAL_NONE;
      m = vr_machine_new (&config, &error);
      vr_machine_config_clear (&config);
      g_assert_null (m);
      g_assert_error (error, VR_ERROR, (gint) cases[i].code);
      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, error->message);
      g_clear_error (&error);
    }

  /* A kernel and firmware at once. */
  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.firmware = g_strdup (VR_SEABIOS_DEFAULT_PATH);
  config.serial = VR_SERIAL_NONE;
  g_assert_null (vr_machine_new (&config, &error));
  vr_machine_config_clear (&config);
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);

  /* A machine without a kernel exists (the devices work) but says why it cannot start. */
  vr_machine_config_init (&config);
  config.serial = VR_SERIAL_NONE;
  f->machine = vr_machine_new (&config, &error);
  g_assert_no_error (error);
  g_assert_false (vr_machine_start (f->machine, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
}

/* Writes an ISO-sized file (whole 2048-byte blocks of @fill). */
static char *
make_iso (Fixture *f, const char *name, char fill)
{
  g_autofree char *data = g_malloc (16 * 2048);
  char *path = g_build_filename (f->dir, name, NULL);

  memset (data, fill, 16 * 2048);
  g_assert_true (g_file_set_contents (path, data, 16 * 2048, NULL));
  return path;
}

/* The CD-ROM drive through the engine API: change, eject, a bad file, no drive, the
 * events; with and without firmware, running or not. */
static void
test_cdrom (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *a = make_iso (f, "a.iso", 'a');
  g_autofree char *b = make_iso (f, "b.iso", 'b');
  g_autofree char *kernel = guest_path ("lifecycle.elf");
  g_autofree char *medium = NULL;
  VrMachineConfig config;

  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.cmdline = g_strdup ("count");
  config.memory = 64u << 20;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->log);
  config.cdrom = g_strdup (a);
  f->machine = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  vr_machine_set_event_func (f->machine, f->context, on_event, f, NULL);

  medium = vr_machine_get_cdrom (f->machine);
  g_assert_cmpstr (medium, ==, a);
  g_clear_pointer (&medium, g_free);

  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_no_error (error);
  g_assert_true (vr_machine_change_cdrom (f->machine, b, &error));
  g_assert_no_error (error);
  medium = vr_machine_get_cdrom (f->machine);
  g_assert_cmpstr (medium, ==, b);
  g_clear_pointer (&medium, g_free);
  g_assert_true (wait_until (f, has_event, GINT_TO_POINTER (VR_EVENT_CDROM_CHANGED), 10));

  /* A file that is not there: refused, the disc stays. */
  g_assert_false (vr_machine_change_cdrom (f->machine, "/nonexistent/x.iso", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  medium = vr_machine_get_cdrom (f->machine);
  g_assert_cmpstr (medium, ==, b);
  g_clear_pointer (&medium, g_free);

  /* Eject, then insert again. */
  g_assert_true (vr_machine_change_cdrom (f->machine, NULL, &error));
  g_assert_null (vr_machine_get_cdrom (f->machine));
  g_assert_true (vr_machine_change_cdrom (f->machine, a, &error));
  g_assert_no_error (error);
  g_assert_true (wait_until (f, log_contains, "tick 2", 60));
  vr_machine_stop (f->machine);
  g_assert_cmpuint (count_events (f, VR_EVENT_CDROM_CHANGED), >=, 1);
  g_clear_pointer (&f->machine, vr_machine_free);

  /* No drive. */
  f->machine = new_machine (f, "hello.elf", NULL, 1, &error);
  g_assert_no_error (error);
  g_assert_null (vr_machine_get_cdrom (f->machine));
  g_assert_false (vr_machine_change_cdrom (f->machine, a, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_clear_pointer (&f->machine, vr_machine_free);

  /* An empty drive, and an ISO that cannot be opened at creation. */
  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.serial = VR_SERIAL_NONE;
  config.cdrom_drive = true;
  f->machine = vr_machine_new (&config, &error);
  g_assert_no_error (error);
  g_assert_null (vr_machine_get_cdrom (f->machine));
  g_assert_true (vr_machine_change_cdrom (f->machine, a, &error));
  g_clear_pointer (&f->machine, vr_machine_free);
  config.cdrom = g_strdup ("/nonexistent/y.iso");
  g_assert_null (vr_machine_new (&config, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_IO);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  vr_machine_config_clear (&config);
  g_unlink (a);
  g_unlink (b);
}

/* Firmware images that cannot be used: refused with the file's name in the message. */
static void
test_bad_firmware (Fixture *f, gconstpointer data)
{
  g_autofree char *small = g_build_filename (f->dir, "small.bin", NULL);
  g_autofree char *odd = g_build_filename (f->dir, "odd.bin", NULL);
  g_autofree char *zeros = g_malloc0 (100 * 1024);
  const char *paths[] = { "/nonexistent/bios.bin", small, odd, f->dir };

  g_assert_true (g_file_set_contents (small, zeros, 4096, NULL));
  g_assert_true (g_file_set_contents (odd, zeros, 100 * 1024, NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr (GError) error = NULL;
      VrMachineConfig config;

      vr_machine_config_init (&config);
      config.firmware = g_strdup (paths[i]);
      config.serial = VR_SERIAL_NONE;
      g_assert_null (vr_machine_new (&config, &error));
      vr_machine_config_clear (&config);
      g_assert_error (error, VR_ERROR, VR_ERROR_BAD_KERNEL);
      g_assert_nonnull (strstr (error->message, paths[i]));
      g_test_message ("%s", error->message);
    }
  g_unlink (small);
  g_unlink (odd);
}

/* A boot sector for the firmware: prints lines of A-Z on COM1, forever, with a delay loop
 * between characters (cli; bl = 'A'; loop: out bl to 0x3f8; bl++; after 'Z' a newline and
 * bl = 'A'; 200000 x loopl; jmp loop). */
static const uint8_t alphabet_boot_sector[] = {
  0xfa, 0xb3, 0x41, 0xba, 0xf8, 0x03, 0x88, 0xd8, 0xee, 0xfe, 0xc3, 0x80, 0xfb, 0x5b, 0x75, 0x05,
  0xb0, 0x0a, 0xee, 0xb3, 0x41, 0x66, 0xb9, 0x40, 0x0d, 0x03, 0x00, 0x67, 0xe2, 0xfd, 0xeb, 0xe3,
};

static char
alphabet_next (char c)
{
  return c == 'Z' ? '\n' : c == '\n' ? 'A' : (char) (c + 1);
}

/* The log, read while the machine is paused (so that it is exactly what the guest wrote). */
static char *
read_log_paused (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (vr_machine_pause (f->machine, &error));
  g_assert_no_error (error);
  return read_log (f);
}

/* A machine booted through SeaBIOS takes and restores snapshots like any other (the ROM, the
 * low mirror, the PIIX functions, the CD drive), and a reset runs the firmware again. */
static void
test_firmware_snapshot (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *disk = g_build_filename (f->dir, "boot.img", NULL);
  g_autofree char *snap = g_build_filename (f->dir, "snap", NULL);
  g_autofree char *image = g_malloc0 (1 << 20);
  g_autofree char *at_save = NULL, *before_restore = NULL, *after = NULL, *at_reset = NULL;
  VrMachineConfig config;
  size_t n;

  if (!g_file_test (VR_SEABIOS_DEFAULT_PATH, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no " VR_SEABIOS_DEFAULT_PATH " (Debian's seabios package)");
      return;
    }
  memcpy (image, alphabet_boot_sector, sizeof alphabet_boot_sector);
  image[510] = 0x55;
  image[511] = (char) 0xaa;
  g_assert_true (g_file_set_contents (disk, image, 1 << 20, NULL));

  vr_machine_config_init (&config);
  config.firmware = g_strdup (VR_SEABIOS_DEFAULT_PATH);
  config.memory = 64u << 20;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->log);
  config.n_disks = 1;
  config.disks = g_new0 (VrDiskConfig, 1);
  config.disks[0].path = g_strdup (disk);
  config.disks[0].format = g_strdup ("raw");
  config.disks[0].readonly = true;   /* a writable raw disk cannot be snapshotted */
  config.cdrom_drive = true;
  config.boot_order[0] = VR_BOOT_DEVICE_DISK;
  f->machine = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  vr_machine_set_event_func (f->machine, f->context, on_event, f, NULL);

  g_assert_true (vr_machine_start (f->machine, &error));
  g_assert_true (wait_until (f, log_contains, "ABCDEFGHIJKLMNOPQRSTUVWXYZ\n", 240));

  /* Snapshot a paused machine, so that the log then is the guest's state. */
  at_save = read_log_paused (f);
  g_assert_true (vr_machine_save_snapshot (f->machine, snap, NULL, &error));
  g_assert_no_error (error);
  n = strlen (at_save);
  g_assert_cmpuint (n, >, 0);
  g_assert_true (vr_machine_resume (f->machine, &error));
  g_assert_true (wait_until (f, log_contains, "ABCDEFGHIJKLMNOPQRSTUVWXYZ\nABC", 120));

  /* Back to it: the next character is the one after the last written at the snapshot. */
  before_restore = read_log_paused (f);
  g_assert_true (vr_machine_restore_snapshot (f->machine, snap, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_RUNNING);
  while (strlen (after = read_log (f)) <= strlen (before_restore))
    {
      g_clear_pointer (&after, g_free);
      g_main_context_iteration (f->context, FALSE);
      g_usleep (10000);
    }
  g_assert_cmpint (after[strlen (before_restore)], ==, alphabet_next (at_save[n - 1]));
  g_test_message ("restored: '%c' follows '%c'", after[strlen (before_restore)],
                  at_save[n - 1]);

  /* A reset runs SeaBIOS from its ROM again: the boot sector starts over at 'A'. */
  g_clear_pointer (&after, g_free);
  at_reset = read_log_paused (f);
  g_assert_true (vr_machine_reset (f->machine, &error));   /* a paused machine runs again */
  g_assert_no_error (error);
  g_assert_cmpint (vr_machine_get_state (f->machine), ==, VR_STATE_RUNNING);
  {
    gint64 end = g_get_monotonic_time () + 240 * G_USEC_PER_SEC;

    while (strlen (after = read_log (f)) < strlen (at_reset) + 27
           && g_get_monotonic_time () < end)
      {
        g_clear_pointer (&after, g_free);
        g_main_context_iteration (f->context, FALSE);
        g_usleep (20000);
      }
    g_assert_true (g_str_has_prefix (after + strlen (at_reset), "ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"));
  }
  vr_machine_stop (f->machine);
  g_assert_true (vr_machine_delete_snapshot (f->machine, snap, &error));
  g_assert_no_error (error);
  g_unlink (disk);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/machine/lifecycle", Fixture, NULL, fixture_setup, test_lifecycle,
              fixture_teardown);
  g_test_add ("/machine/power-button", Fixture, NULL, fixture_setup, test_power_button,
              fixture_teardown);
  g_test_add ("/machine/guest-error", Fixture, NULL, fixture_setup, test_guest_error,
              fixture_teardown);
  g_test_add ("/machine/many", Fixture, NULL, fixture_setup, test_many_machines,
              fixture_teardown);
  g_test_add ("/machine/64-cpus", Fixture, NULL, fixture_setup, test_64_cpus,
              fixture_teardown);
  g_test_add ("/machine/stop-while-running", Fixture, NULL, fixture_setup,
              test_stop_while_running, fixture_teardown);
  g_test_add ("/machine/bad-config", Fixture, NULL, fixture_setup, test_bad_config,
              fixture_teardown);
  g_test_add ("/machine/cdrom", Fixture, NULL, fixture_setup, test_cdrom, fixture_teardown);
  g_test_add ("/machine/bad-firmware", Fixture, NULL, fixture_setup, test_bad_firmware,
              fixture_teardown);
  g_test_add ("/machine/firmware-snapshot", Fixture, NULL, fixture_setup,
              test_firmware_snapshot, fixture_teardown);
  return g_test_run ();
}
