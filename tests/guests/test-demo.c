/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The demo machine's guest (tests/guests/demo.c), as a user meets it: its serial console
 * answers commands and powers off on `poweroff`; the ACPI power button shuts it down; keys
 * typed on the keyboard come back as "keyboard: TEXT". Each case runs on QEMU -M pc with a
 * bochs-display card (the oracle) and on Vireo (vireo-run --display std with stdio serial,
 * and the engine's API for the power button and the keyboard).
 *
 * Environment: VIREO_RUN, VIREO_GUEST_DIR, VIREO_QEMU as in test-guests.c. The Vireo
 * keyboard case saves the screen as demo-vireo.ppm in G_TEST_BUILDDIR (or the current
 * directory) for a person to look at.
 */

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <linux/input-event-codes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vr-machine.h"

#define WAIT_S 180              /* boot to prompt takes 15-20 s under QEMU on emulated KVM */

static const char *
guest_dir (void)
{
  const char *d = g_getenv ("VIREO_GUEST_DIR");

  if (d && *d)
    return d;
  d = g_getenv ("G_TEST_BUILDDIR");
  return d && *d ? d : ".";
}

static char *
find_qemu (void)
{
  const char *q = g_getenv ("VIREO_QEMU");

  if (q)
    return *q ? g_strdup (q) : NULL;
  return g_find_program_in_path ("qemu-system-x86_64");
}

/* ---- a child with its serial port on stdin/stdout ----------------------------------------- */

typedef struct
{
  GPid     pid;
  int      in;                  /* the guest's serial input */
  int      out;                 /* its serial output */
  GString *text;                /* everything read so far, '\r' removed */
  gsize    mark;                /* where the next wait_for() starts looking */
  int      status;              /* exit status once reaped, else -1 */
  char    *dir;
  char    *qmp;
} Child;

static void
child_start (Child *c, GPtrArray *argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *cmd = NULL;

  g_ptr_array_add (argv, NULL);
  cmd = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("run: %s", cmd);
  c->text = g_string_new (NULL);
  c->status = -1;
  /* The child's stderr stays ours: it shows up in the test log. */
  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv->pdata, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &c->pid,
                                           &c->in, &c->out, NULL, &error));
  g_assert_no_error (error);
  g_unix_set_fd_nonblocking (c->out, TRUE, NULL);
}

static bool
child_reap (Child *c)
{
  int st;

  if (c->status >= 0)
    return true;
  if (waitpid (c->pid, &st, WNOHANG) == c->pid)
    {
      c->status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
      return true;
    }
  return false;
}

/* Reads what is there within @ms; false at end of file. */
static bool
child_read (Child *c, int ms)
{
  struct pollfd p = { c->out, POLLIN, 0 };
  char buf[4096];
  ssize_t n;

  if (poll (&p, 1, ms) <= 0)
    return true;
  n = read (c->out, buf, sizeof buf);
  if (n == 0)
    return false;
  if (n < 0)
    return errno == EAGAIN || errno == EINTR;
  for (ssize_t i = 0; i < n; i++)
    if (buf[i] != '\r')
      g_string_append_c (c->text, buf[i]);
  return true;
}

/* Waits until @needle appears after the mark; moves the mark past it. */
static bool
wait_for (Child *c, const char *needle, int seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;
  bool open = true;

  for (;;)
    {
      const char *hit = strstr (c->text->str + c->mark, needle);

      if (hit)
        {
          c->mark = (gsize) (hit - c->text->str) + strlen (needle);
          return true;
        }
      if (g_get_monotonic_time () > end || (!open && child_reap (c)))
        {
          g_test_message ("waited for \"%s\" in vain", needle);
          return false;
        }
      open = child_read (c, 100) && open;
      if (!open)
        g_usleep (50 * 1000);
    }
}

static void
send_text (Child *c, const char *text)
{
  g_assert_cmpint (write (c->in, text, strlen (text)), ==, (gssize) strlen (text));
}

/* Waits for the child to exit; returns its status (-1: killed after @seconds). */
static int
child_wait (Child *c, int seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;

  while (!child_reap (c))
    {
      if (g_get_monotonic_time () > end)
        {
          kill (c->pid, SIGKILL);
          waitpid (c->pid, NULL, 0);
          c->status = -1;
          break;
        }
      child_read (c, 100);
    }
  while (child_read (c, 0) && poll (&(struct pollfd) { c->out, POLLIN, 0 }, 1, 0) > 0)
    ;
  return c->status;
}

static void
child_finish (Child *c)
{
  if (c->status < 0 && c->pid)
    {
      kill (c->pid, SIGKILL);
      waitpid (c->pid, NULL, 0);
    }
  if (c->text)
    {
      g_auto (GStrv) lines = g_strsplit (c->text->str, "\n", -1);

      for (int i = 0; lines[i]; i++)
        if (lines[i][0])
          g_test_message ("serial| %s", lines[i]);
      g_string_free (c->text, TRUE);
    }
  /* A case that was skipped never started a child: its zeroed descriptors are not ours (0 is
   * our own standard input, which the next child's pipes would then reuse). */
  if (c->pid > 0 && c->in >= 0)
    close (c->in);
  if (c->pid > 0 && c->out >= 0)
    close (c->out);
  if (c->qmp)
    g_unlink (c->qmp);
  if (c->dir)
    g_rmdir (c->dir);
  g_free (c->qmp);
  g_free (c->dir);
  g_spawn_close_pid (c->pid);
  memset (c, 0, sizeof *c);
}

/* ---- starting the demo ------------------------------------------------------------------- */

static bool
start_qemu (Child *c)
{
  g_autofree char *qemu = find_qemu ();
  g_autofree char *kernel = g_build_filename (guest_dir (), "demo-pvh.elf", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *fixed[] = {
    "-enable-kvm", "-nodefaults", "-no-user-config", "-display", "none", "-M", "pc",
    "-m", "128", "-device", "bochs-display", "-serial", "stdio", "-no-reboot",
  };

  if (!qemu)
    {
      g_test_skip ("qemu-system-x86_64 not found");
      return false;
    }
  c->dir = g_dir_make_tmp ("vireo-test-demo-XXXXXX", NULL);
  c->qmp = g_build_filename (c->dir, "qmp.sock", NULL);
  g_ptr_array_add (argv, g_strdup (qemu));
  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (argv, g_strdup (fixed[i]));
  g_ptr_array_add (argv, g_strdup ("-qmp"));
  g_ptr_array_add (argv, g_strdup_printf ("unix:%s,server=on,wait=off", c->qmp));
  g_ptr_array_add (argv, g_strdup ("-kernel"));
  g_ptr_array_add (argv, g_strdup (kernel));
  child_start (c, argv);
  return true;
}

static bool
start_vireo (Child *c)
{
  const char *run = g_getenv ("VIREO_RUN");
  g_autofree char *kernel = g_build_filename (guest_dir (), "demo.elf", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);

  if (!run || !*run)
    {
      g_test_skip ("VIREO_RUN not set");
      return false;
    }
  g_ptr_array_add (argv, g_strdup (run));
  g_ptr_array_add (argv, g_strdup ("--kernel"));
  g_ptr_array_add (argv, g_strdup (kernel));
  g_ptr_array_add (argv, g_strdup ("--memory"));
  g_ptr_array_add (argv, g_strdup ("128M"));
  g_ptr_array_add (argv, g_strdup ("--serial"));
  g_ptr_array_add (argv, g_strdup ("stdio"));
  g_ptr_array_add (argv, g_strdup ("--display"));
  g_ptr_array_add (argv, g_strdup ("std"));
  g_ptr_array_add (argv, g_strdup ("--timeout"));
  g_ptr_array_add (argv, g_strdup_printf ("%d", 2 * WAIT_S));
  child_start (c, argv);
  return true;
}

/* The banner: a screen (or, on an engine without a card, "display: none"), then the prompt. */
static void
expect_banner (Child *c)
{
  g_assert_true (wait_for (c, "Vireo demo machine\n", WAIT_S));
  g_assert_true (wait_for (c, "display: ", WAIT_S));
  g_assert_true (wait_for (c, "\n", 10));
  {
    g_autofree char *line = g_strndup (c->text->str, c->mark);
    const char *d = g_strrstr (line, "display: ");

    g_test_message ("%s", d);
    g_assert_true (g_str_has_prefix (d, "display: bochs-display 1024x768\n")
                   || g_str_has_prefix (d, "display: none\n"));
  }
  g_assert_true (wait_for (c, "keyboard: i8042\n", 30));
  g_assert_true (wait_for (c, "power button: ready", 30));
  g_assert_true (wait_for (c, "demo> ", 30));
}

/* help, echo, uptime, an unknown command, then poweroff: ACPI S5, status 0. */
static void
serial_session (Child *c)
{
  expect_banner (c);

  send_text (c, "help\n");
  g_assert_true (wait_for (c, "help\ncommands:\n", 30));
  g_assert_true (wait_for (c, "  poweroff    ACPI power-off (S5)\ndemo> ", 30));

  send_text (c, "echo hello\n");
  g_assert_true (wait_for (c, "echo hello\nhello\ndemo> ", 30));

  send_text (c, "uptime\n");
  g_assert_true (wait_for (c, "uptime\nup 0:", 30));
  g_assert_true (wait_for (c, " s)\ndemo> ", 30));

  /* Typing mistakes: a backspace is taken back. */
  send_text (c, "frob\n");
  g_assert_true (wait_for (c, "unknown command 'frob'; 'help' lists the commands\ndemo> ", 30));
  send_text (c, "echo abX\x7f" "c\n");
  g_assert_true (wait_for (c, "\nabc\ndemo> ", 30));

  send_text (c, "poweroff\n");
  g_assert_true (wait_for (c, "poweroff\npoweroff: shutting down\n", 30));
  g_assert_cmpint (child_wait (c, 60), ==, 0);
}

static void
test_qemu_serial (void)
{
  Child c = { 0 };

  if (start_qemu (&c))
    serial_session (&c);
  child_finish (&c);
}

static void
test_vireo_serial (void)
{
  Child c = { 0 };

  if (start_vireo (&c))
    serial_session (&c);
  child_finish (&c);
}

/* ---- QMP --------------------------------------------------------------------------------- */

static bool
qmp_line (FILE *f, const char *want)
{
  char line[4096];

  while (fgets (line, sizeof line, f))
    {
      g_test_message ("qmp: %s", g_strchomp (line));
      if (strstr (line, want))
        return true;
    }
  return false;
}

static void
qmp (Child *c, const char *command)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FILE *f;

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (addr.sun_path, c->qmp, sizeof addr.sun_path);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  f = fdopen (fd, "r+");
  g_assert_true (qmp_line (f, "\"QMP\""));
  fputs ("{\"execute\":\"qmp_capabilities\"}\n", f);
  fflush (f);
  g_assert_true (qmp_line (f, "\"return\""));
  fprintf (f, "%s\n", command);
  fflush (f);
  g_assert_true (qmp_line (f, "\"return\""));
  fclose (f);
}

static void
test_qemu_power_button (void)
{
  Child c = { 0 };

  if (start_qemu (&c))
    {
      expect_banner (&c);
      /* Keys through the PS/2 keyboard: Shift, then a line. */
      qmp (&c, "{\"execute\":\"send-key\",\"arguments\":{\"keys\":"
               "[{\"type\":\"qcode\",\"data\":\"shift\"},{\"type\":\"qcode\",\"data\":\"h\"}]}}");
      qmp (&c, "{\"execute\":\"send-key\",\"arguments\":{\"keys\":"
               "[{\"type\":\"qcode\",\"data\":\"i\"}]}}");
      qmp (&c, "{\"execute\":\"send-key\",\"arguments\":{\"keys\":"
               "[{\"type\":\"qcode\",\"data\":\"ret\"}]}}");
      g_assert_true (wait_for (&c, "keyboard: Hi\n", 60));

      qmp (&c, "{\"execute\":\"system_powerdown\"}");
      g_assert_true (wait_for (&c, "power button: shutting down\n", 60));
      g_assert_cmpint (child_wait (&c, 60), ==, 0);
    }
  child_finish (&c);
}

/* ---- Vireo through the engine's API ------------------------------------------------------ */

typedef struct
{
  GMainContext *context;
  bool          powered_off;
  VrStopReason  reason;
} Events;

static void
on_event (VrMachine *machine, const VrEvent *event, gpointer user_data)
{
  Events *e = user_data;

  if (event->type == VR_EVENT_POWERED_OFF)
    {
      e->powered_off = true;
      e->reason = event->reason;
    }
}

/* The serial log without its '\r's. */
static char *
read_file (const char *path)
{
  char *text = NULL, *o;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  o = text;
  for (const char *i = text; *i; i++)
    if (*i != '\r')
      *o++ = *i;
  *o = 0;
  return text;
}

static bool
wait_log (Events *e, const char *log, const char *needle, int seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *text = read_file (log);

      if (strstr (text, needle))
        return true;
      if (g_get_monotonic_time () > end)
        {
          g_test_message ("waited for \"%s\" in vain", needle);
          return false;
        }
      while (g_main_context_iteration (e->context, FALSE))
        ;
      g_usleep (20 * 1000);
    }
}

static void
key (VrMachine *m, unsigned code)
{
  vr_machine_input_key (m, code, true);
  vr_machine_input_key (m, code, false);
}

/* The screen as a PPM, for a person to look at. */
static void
save_screen (VrMachine *m)
{
  VrDisplay *display = vr_machine_get_display (m);
  g_autoptr (GBytes) pixels = NULL;
  g_autoptr (GString) ppm = NULL;
  g_autofree char *path = NULL;
  const char *dir = g_getenv ("G_TEST_BUILDDIR");
  VrDisplayMode mode;
  const uint8_t *p;

  if (!display || !(pixels = vr_display_snapshot (display, &mode)))
    {
      g_test_message ("no screen to save");
      return;
    }
  ppm = g_string_new (NULL);
  g_string_append_printf (ppm, "P6\n%u %u\n255\n", mode.width, mode.height);
  p = g_bytes_get_data (pixels, NULL);
  for (gsize i = 0; i < (gsize) mode.width * mode.height; i++)
    {
      g_string_append_c (ppm, (char) p[4 * i + 2]);
      g_string_append_c (ppm, (char) p[4 * i + 1]);
      g_string_append_c (ppm, (char) p[4 * i]);
    }
  path = g_build_filename (dir && *dir ? dir : ".", "demo-vireo.ppm", NULL);
  g_assert_true (g_file_set_contents (path, ppm->str, (gssize) ppm->len, NULL));
  g_test_message ("screen %ux%u saved to %s", mode.width, mode.height, path);
}

static void
test_vireo_power_button (void)
{
  g_autofree char *kernel = g_build_filename (guest_dir (), "demo.elf", NULL);
  g_autofree char *dir = g_dir_make_tmp ("vireo-test-demo-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "serial.log", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  Events e = { g_main_context_new (), false, 0 };
  VrMachineConfig config;
  VrMachine *m;

  g_main_context_push_thread_default (e.context);
  vr_machine_config_init (&config);
  config.kernel = g_strdup (kernel);
  config.memory = 128u << 20;
  config.cpus = 1;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (log);
  config.display = VR_DISPLAY_DEVICE_BOCHS;
  m = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  vr_machine_set_event_func (m, e.context, on_event, &e, NULL);
  g_assert_true (vr_machine_start (m, &error));
  g_assert_no_error (error);
  g_assert_true (wait_log (&e, log, "demo> ", WAIT_S));

  /* Keys: the engine sends them to the i8042 (the guest drives no virtio keyboard). */
  vr_machine_input_key (m, KEY_LEFTSHIFT, true);
  key (m, KEY_H);
  vr_machine_input_key (m, KEY_LEFTSHIFT, false);
  key (m, KEY_I);
  key (m, KEY_ENTER);
  g_assert_true (wait_log (&e, log, "keyboard: Hi\n", 60));
  g_usleep (8 * G_USEC_PER_SEC);        /* the first picture takes ~5 s on emulated KVM */
  save_screen (m);

  vr_machine_power_button (m);
  g_assert_true (wait_log (&e, log, "power button: shutting down\n", 60));
  {
    gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

    while (!e.powered_off && g_get_monotonic_time () < end)
      {
        g_main_context_iteration (e.context, FALSE);
        g_usleep (20 * 1000);
      }
  }
  g_assert_true (e.powered_off);
  g_assert_cmpint (e.reason, ==, VR_STOP_POWER_OFF);

  text = read_file (log);
  {
    g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
    for (int i = 0; lines[i]; i++)
      if (lines[i][0])
        g_test_message ("serial| %s", lines[i]);
  }
  g_assert_true (strstr (text, "display: bochs-display 1024x768") || strstr (text, "display: none"));

  vr_machine_free (m);
  while (g_main_context_iteration (e.context, FALSE))
    ;
  g_main_context_pop_thread_default (e.context);
  g_main_context_unref (e.context);
  g_unlink (log);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  signal (SIGPIPE, SIG_IGN);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/demo/qemu/serial", test_qemu_serial);
  g_test_add_func ("/demo/qemu/power-button", test_qemu_power_button);
  g_test_add_func ("/demo/vireo/serial", test_vireo_serial);
  g_test_add_func ("/demo/vireo/power-button", test_vireo_power_button);
  return g_test_run ();
}
