/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Runs the bare-metal test guests on vireo-run and on qemu-system-x86_64 (the oracle)
 * and checks what a user would see: the exit status and the lines on the serial port.
 *
 * Environment:
 *   VIREO_RUN        path of vireo-run (set by meson); Vireo cases skip without it
 *   VIREO_GUEST_DIR  where the guest images are (default: G_TEST_BUILDDIR, then ".")
 *   VIREO_QEMU       path of qemu-system-x86_64; empty disables the QEMU cases;
 *                    unset means: look on PATH
 *
 * Images: <guest>.elf (ELF64, PVH note + Multiboot header) runs on Vireo and must
 * boot by PVH; <guest>-mb.elf (ELF32, Multiboot only) runs on both; <guest>-pvh.elf
 * (no Multiboot header) is for QEMU, which tries Multiboot first and refuses a 64-bit
 * Multiboot ELF.
 *
 * Exit statuses (both engines): 0 ACPI power-off; (code << 1) | 1 debug-exit, so a
 * guest's PASS (code 0) is 1.  vireo-run also: 2 engine error, 4 reset with
 * --no-reboot, 6 triple fault with --no-reboot, 8 guest error, 124 timeout.
 */

#include <glib.h>
#include <signal.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define RUN_TIMEOUT   150       /* seconds: what vireo-run is told */
#define KILL_TIMEOUT  240       /* seconds: when we give up on a child */

typedef enum
{
  PROTO_PVH,
  PROTO_MULTIBOOT,
} Proto;

typedef enum
{
  ENGINE_QEMU,
  ENGINE_VIREO,
} Engine;

typedef struct
{
  const char *path;             /* test path without the engine part */
  const char *guest;
  Proto       proto;
  const char *append;
  int         cpus;
  gboolean    no_reboot;
  int         qemu_status;
  int         vireo_status;
  const char *expect;           /* normalised serial lines; "@" stands for the protocol */
  gboolean    check_rtc;
} GuestCase;

typedef struct
{
  const GuestCase *gc;
  Engine           engine;
} CaseData;

typedef struct
{
  gboolean done;
  gboolean timed_out;
  GBytes  *out;
  GBytes  *err;
  GError  *error;
} Wait;

typedef struct
{
  int        status;            /* exit status, or -1 when killed by a signal */
  gboolean   timed_out;
  char      *out;
  char      *err;
  double     seconds;
  GDateTime *started;
  GDateTime *ended;
} RunResult;

static GHashTable *oracle_outputs;      /* case path -> normalised QEMU output */

static void
run_result_clear (RunResult *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
  g_clear_pointer (&r->started, g_date_time_unref);
  g_clear_pointer (&r->ended, g_date_time_unref);
}

static void
communicate_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Wait *w = user_data;

  g_subprocess_communicate_finish (G_SUBPROCESS (source), res, &w->out, &w->err, &w->error);
  w->done = TRUE;
}

static gboolean
timeout_cb (gpointer user_data)
{
  GSubprocess *proc = user_data;

  g_object_set_data (G_OBJECT (proc), "timed-out", GINT_TO_POINTER (1));
  g_subprocess_force_exit (proc);
  return G_SOURCE_REMOVE;
}

static char *
bytes_to_string (GBytes *b)
{
  gsize len = 0;
  const char *data = b ? g_bytes_get_data (b, &len) : NULL;

  /* Serial output is bytes; keep it printable for assertions and logs. */
  return g_utf8_make_valid (data ? data : "", len);
}

static void
run_command (GPtrArray *argv, RunResult *r)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSource) timeout = NULL;
  g_autofree char *cmd = NULL;
  g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
  Wait w = { 0 };
  gint64 t0;

  memset (r, 0, sizeof *r);
  g_ptr_array_add (argv, NULL);
  cmd = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("run: %s", cmd);

  g_main_context_push_thread_default (ctx);
  t0 = g_get_monotonic_time ();
  r->started = g_date_time_new_now_utc ();
  proc = g_subprocess_newv ((const char *const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                            | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);

  timeout = g_timeout_source_new_seconds (KILL_TIMEOUT);
  g_source_set_callback (timeout, timeout_cb, proc, NULL);
  g_source_attach (timeout, ctx);

  /* Empty stdin: the guest's serial input sees end-of-file. */
  g_subprocess_communicate_async (proc, empty, NULL, communicate_cb, &w);
  while (!w.done)
    g_main_context_iteration (ctx, TRUE);
  g_subprocess_wait (proc, NULL, NULL);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (ctx);

  r->seconds = (g_get_monotonic_time () - t0) / 1e6;
  r->ended = g_date_time_new_now_utc ();
  r->timed_out = g_object_get_data (G_OBJECT (proc), "timed-out") != NULL;
  r->status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  r->out = bytes_to_string (w.out);
  r->err = bytes_to_string (w.err);
  g_clear_pointer (&w.out, g_bytes_unref);
  g_clear_pointer (&w.err, g_bytes_unref);
  if (w.error)
    g_test_message ("communicate: %s", w.error->message);
  g_clear_error (&w.error);

  g_test_message ("exit status %d after %.1f s%s", r->status, r->seconds,
                  r->timed_out ? " (killed: timeout)" : "");
}

/* Prints the child's output as TAP comments, for whoever reads a failure. */
static void
dump_output (const char *who, const RunResult *r)
{
  g_auto (GStrv) out = g_strsplit (r->out, "\n", -1);
  g_auto (GStrv) err = g_strsplit (r->err, "\n", -1);

  for (int i = 0; out[i]; i++)
    if (out[i][0])
      g_test_message ("%s serial| %s", who, out[i]);
  for (int i = 0; err[i]; i++)
    if (err[i][0])
      g_test_message ("%s stderr| %s", who, err[i]);
}

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
image_path (const char *guest, Proto proto, Engine engine)
{
  const char *suffix;

  if (proto == PROTO_MULTIBOOT)
    suffix = "-mb.elf";
  else
    suffix = engine == ENGINE_QEMU ? "-pvh.elf" : ".elf";
  return g_strdup_printf ("%s/%s%s", guest_dir (), guest, suffix);
}

static char *
find_qemu (void)
{
  const char *q = g_getenv ("VIREO_QEMU");

  if (q)
    return *q ? g_strdup (q) : NULL;
  return g_find_program_in_path ("qemu-system-x86_64");
}

static void
run_guest (const GuestCase *gc, Engine engine, const char *program, RunResult *r)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *kernel = image_path (gc->guest, gc->proto, engine);
  int cpus = gc->cpus ? gc->cpus : 1;

  g_assert_true (g_file_test (kernel, G_FILE_TEST_IS_REGULAR));
  g_ptr_array_add (argv, g_strdup (program));
  if (engine == ENGINE_QEMU)
    {
      const char *fixed[] = {
        "-enable-kvm", "-nodefaults", "-no-user-config", "-display", "none", "-M", "pc",
        "-m", "128", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-serial", "stdio",
      };
      for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
        g_ptr_array_add (argv, g_strdup (fixed[i]));
      g_ptr_array_add (argv, g_strdup ("-smp"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", cpus));
      g_ptr_array_add (argv, g_strdup ("-kernel"));
      g_ptr_array_add (argv, g_strdup (kernel));
      if (gc->append)
        {
          g_ptr_array_add (argv, g_strdup ("-append"));
          g_ptr_array_add (argv, g_strdup (gc->append));
        }
      if (gc->no_reboot)
        g_ptr_array_add (argv, g_strdup ("-no-reboot"));
    }
  else
    {
      g_ptr_array_add (argv, g_strdup ("--kernel"));
      g_ptr_array_add (argv, g_strdup (kernel));
      g_ptr_array_add (argv, g_strdup ("--memory"));
      g_ptr_array_add (argv, g_strdup ("128M"));
      g_ptr_array_add (argv, g_strdup ("--cpus"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", cpus));
      g_ptr_array_add (argv, g_strdup ("--serial"));
      g_ptr_array_add (argv, g_strdup ("stdio"));
      g_ptr_array_add (argv, g_strdup ("--timeout"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", RUN_TIMEOUT));
      if (gc->append)
        {
          g_ptr_array_add (argv, g_strdup ("--append"));
          g_ptr_array_add (argv, g_strdup (gc->append));
        }
      if (gc->no_reboot)
        g_ptr_array_add (argv, g_strdup ("--no-reboot"));
    }
  run_command (argv, r);
}

/*
 * The comparable part of a guest's serial output: no "info: " lines (values that
 * legitimately differ between machines), no empty lines, no '\r', no "rtc: " line
 * (checked against the host's clock instead).
 */
static char *
normalise (const char *out, char **rtc_line)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  GString *s = g_string_new (NULL);

  if (rtc_line)
    *rtc_line = NULL;
  for (int i = 0; lines[i]; i++)
    {
      char *l = lines[i];
      gsize n;

      g_strdelimit (l, "\r", ' ');
      g_strchomp (l);
      n = strlen (l);
      if (n == 0 || g_str_has_prefix (l, "info: "))
        continue;
      if (g_str_has_prefix (l, "rtc: ") && rtc_line)
        {
          g_free (*rtc_line);
          *rtc_line = g_strdup (l);
          continue;
        }
      g_string_append (s, l);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

static char *
expected_output (const GuestCase *gc)
{
  g_auto (GStrv) parts = g_strsplit (gc->expect, "@", -1);

  return g_strjoinv (gc->proto == PROTO_PVH ? "pvh" : "multiboot", parts);
}

/* "rtc: YYYY-MM-DD HH:MM:SS" must lie between the run's start and end, give or take. */
static void
check_rtc (const char *line, const RunResult *r)
{
  unsigned y, mo, d, h, mi, s;
  g_autoptr (GDateTime) t = NULL;
  GTimeSpan before, after;

  g_assert_nonnull (line);
  if (!line)
    return;
  g_assert_cmpint (sscanf (line, "rtc: %u-%u-%u %u:%u:%u", &y, &mo, &d, &h, &mi, &s), ==, 6);
  t = g_date_time_new_utc (y, mo, d, h, mi, s);
  g_assert_nonnull (t);
  if (!t)
    return;
  before = g_date_time_difference (t, r->started);
  after = g_date_time_difference (r->ended, t);
  {
    g_autofree char *from = g_date_time_format (r->started, "%F %T");
    g_autofree char *to = g_date_time_format (r->ended, "%F %T");
    g_test_message ("rtc %s; run from %s to %s", line + 5, from, to);
  }
  /* The RTC has one-second resolution; allow 5 s of slack on either side. */
  g_assert_cmpint (before, >=, -5 * G_TIME_SPAN_SECOND);
  g_assert_cmpint (after, >=, -5 * G_TIME_SPAN_SECOND);
}

static void
test_guest (gconstpointer user_data)
{
  const CaseData *cd = user_data;
  const GuestCase *gc = cd->gc;
  const char *who = cd->engine == ENGINE_QEMU ? "qemu" : "vireo";
  g_autofree char *program = NULL;
  g_autofree char *got = NULL;
  g_autofree char *want = expected_output (gc);
  g_autofree char *rtc = NULL;
  RunResult r;
  int want_status;

  if (cd->engine == ENGINE_QEMU)
    {
      program = find_qemu ();
      if (!program)
        {
          g_test_skip ("qemu-system-x86_64 not found");
          return;
        }
      want_status = gc->qemu_status;
    }
  else
    {
      const char *v = g_getenv ("VIREO_RUN");
      if (!v || !*v)
        {
          g_test_skip ("VIREO_RUN not set");
          return;
        }
      program = g_strdup (v);
      want_status = gc->vireo_status;
    }

  run_guest (gc, cd->engine, program, &r);
  dump_output (who, &r);
  got = normalise (r.out, gc->check_rtc ? &rtc : NULL);

  g_assert_false (r.timed_out);
  g_assert_cmpint (r.status, ==, want_status);
  g_assert_cmpstr (got, ==, want);
  g_test_message ("%s: %s %s, status %d in %.1f s", who, gc->guest,
                  gc->proto == PROTO_PVH ? "pvh" : "multiboot", r.status, r.seconds);
  if (gc->check_rtc)
    check_rtc (rtc, &r);

  if (cd->engine == ENGINE_QEMU)
    g_hash_table_insert (oracle_outputs, g_strdup (gc->path), g_strdup (got));
  else
    {
      const char *oracle = g_hash_table_lookup (oracle_outputs, gc->path);
      if (oracle)
        g_assert_cmpstr (got, ==, oracle);
    }
  run_result_clear (&r);
}

/* --------------------------------------------------------------- bad input */

static void
expect_engine_error (const char *kernel, const char *name)
{
  const char *v = g_getenv ("VIREO_RUN");
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *base = g_path_get_basename (kernel);
  RunResult r;

  if (!v || !*v)
    {
      g_test_skip ("VIREO_RUN not set");
      return;
    }
  g_ptr_array_add (argv, g_strdup (v));
  g_ptr_array_add (argv, g_strdup ("--kernel"));
  g_ptr_array_add (argv, g_strdup (kernel));
  g_ptr_array_add (argv, g_strdup ("--serial"));
  g_ptr_array_add (argv, g_strdup ("stdio"));
  g_ptr_array_add (argv, g_strdup ("--timeout"));
  g_ptr_array_add (argv, g_strdup ("30"));
  run_command (argv, &r);
  dump_output (name, &r);
  g_assert_false (r.timed_out);
  g_assert_cmpint (r.status, ==, 2);
  /* The message names the file the user gave. */
  g_assert_nonnull (strstr (r.err, base));
  g_assert_cmpstr (r.out, ==, "");
  run_result_clear (&r);
}

static char *
make_temp_file (const char *name, const void *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("vireo-guest-XXXXXX", &error);
  char *path;

  g_assert_no_error (error);
  path = g_build_filename (dir, name, NULL);
  g_file_set_contents (path, data, (gssize) len, &error);
  g_assert_no_error (error);
  return path;
}

static void
remove_temp_file (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  g_unlink (path);
  g_rmdir (dir);
}

static void
test_bad_missing (void)
{
  g_autofree char *dir = g_dir_make_tmp ("vireo-guest-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "no-such-kernel.elf", NULL);

  expect_engine_error (path, "missing");
  g_rmdir (dir);
}

static void
test_bad_empty (void)
{
  g_autofree char *path = make_temp_file ("empty-kernel.elf", "", 0);

  expect_engine_error (path, "empty");
  remove_temp_file (path);
}

static void
test_bad_garbage (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (0x5eed);
  guint32 data[1024];
  g_autofree char *path = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (data); i++)
    data[i] = g_rand_int (rand);
  path = make_temp_file ("garbage-kernel.elf", data, sizeof data);
  expect_engine_error (path, "garbage");
  remove_temp_file (path);
}

static void
test_bad_truncated (void)
{
  g_autofree char *hello = g_build_filename (guest_dir (), "hello.elf", NULL);
  g_autofree char *data = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;

  g_file_get_contents (hello, &data, &len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (len, >, 200);
  path = make_temp_file ("truncated-hello.elf", data, 200);
  expect_engine_error (path, "truncated");
  remove_temp_file (path);
}

/* --------------------------------------------------------------- the cases */

#define HELLO(code)                                                                           \
  "Hello from a Vireo test guest\nboot: @\nmemory map: ok\nexit code: " code "\nPASS\n"
#define HELLO_OFF "Hello from a Vireo test guest\nboot: @\nmemory map: ok\npowering off\n"
#define SMP1 "smp test\nboot: @\nmadt: 1 cpus\ncpu 0 up (bsp), apic id 0\ncpus running: 1\nPASS\n"
#define SMP2                                                                                  \
  "smp test\nboot: @\nmadt: 2 cpus\ncpu 0 up (bsp), apic id 0\ncpu 1 up, apic id 1\n"        \
  "cpus running: 2\nPASS\n"
#define SMP4                                                                                  \
  "smp test\nboot: @\nmadt: 4 cpus\ncpu 0 up (bsp), apic id 0\ncpu 1 up, apic id 1\n"        \
  "cpu 2 up, apic id 2\ncpu 3 up, apic id 3\ncpus running: 4\nPASS\n"
#define TIMER                                                                                 \
  "timer test\nboot: @\npit: interrupts arrive\npit: rate ok\nlapic timer: rate ok\nPASS\n"
#define ACPI                                                                                  \
  "acpi test\nboot: @\nrsdp: found\nroot table: ok\nFACP: ok\nAPIC: ok\nDSDT: ok\n"          \
  "FACS: ok\n_S5: ok\npowering off\n"
#define RESET_HEAD(stage) "reset test\nboot: @\nstage: " stage "\n"
#define RESET                                                                                 \
  RESET_HEAD ("0") "reset: i8042\n" RESET_HEAD ("1") "reset: triple fault\n"                  \
  RESET_HEAD ("2") "reset: done\nPASS\n"
#define PCI "pci test\nboot: @\n00:00.0 class 0600\nhost bridge: ok\nPASS\n"

#define BOTH(path, guest, append, cpus, noreboot, qs, vs, expect, rtc)                        \
  { path "/pvh", guest, PROTO_PVH, append, cpus, noreboot, qs, vs, expect, rtc },             \
  { path "/multiboot", guest, PROTO_MULTIBOOT, append, cpus, noreboot, qs, vs, expect, rtc }

static const GuestCase cases[] = {
  BOTH ("/hello", "hello", NULL, 1, FALSE, 1, 1, HELLO ("0"), FALSE),
  BOTH ("/hello/exit", "hello", "exit=3", 1, FALSE, 7, 7, HELLO ("3"), FALSE),
  BOTH ("/hello/poweroff", "hello", "poweroff", 1, FALSE, 0, 0, HELLO_OFF, FALSE),
  BOTH ("/smp/1", "smp", "cpus=1", 1, FALSE, 1, 1, SMP1, FALSE),
  BOTH ("/smp/2", "smp", "cpus=2", 2, FALSE, 1, 1, SMP2, FALSE),
  BOTH ("/smp/4", "smp", "cpus=4", 4, FALSE, 1, 1, SMP4, FALSE),
  BOTH ("/timer", "timer", NULL, 1, FALSE, 1, 1, TIMER, TRUE),
  BOTH ("/acpi", "acpi", NULL, 1, FALSE, 0, 0, ACPI, FALSE),
  BOTH ("/reset", "reset", NULL, 1, FALSE, 1, 1, RESET, FALSE),
  /* With no reboot the first reset stops the machine: QEMU exits 0, vireo-run 4 or 6. */
  BOTH ("/reset/no-reboot/i8042", "reset", NULL, 1, TRUE, 0, 4,
        RESET_HEAD ("0") "reset: i8042\n", FALSE),
  BOTH ("/reset/no-reboot/triple-fault", "reset", "skip-i8042", 1, TRUE, 0, 6,
        RESET_HEAD ("0") "reset: triple fault\n", FALSE),
  BOTH ("/pci", "pci", NULL, 1, FALSE, 1, 1, PCI, FALSE),
};

/* ----------------------------------------------------------------- signals */

/* Ctrl+C (SIGINT) and SIGTERM stop a running machine cleanly: status 130, at once. */
static void
test_signal (gconstpointer data)
{
  int signo = GPOINTER_TO_INT (data);
  const char *v = g_getenv ("VIREO_RUN");
  g_autofree char *kernel = g_build_filename (guest_dir (), "lifecycle.elf", NULL);
  g_autofree char *dir = g_dir_make_tmp ("vireo-signal-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "serial.log", NULL);
  g_autofree char *serial = g_strconcat ("file:", log, NULL);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  gint64 deadline, sent;

  if (!v || !*v)
    {
      g_test_skip ("VIREO_RUN not set");
      return;
    }
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error, v, "--kernel", kernel,
                           "--append", "count", "--cpus", "2", "--memory", "64M",
                           "--serial", serial, "--timeout", "120", NULL);
  g_assert_no_error (error);

  /* Wait until the guest is visibly running. */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *text = NULL;

      if (g_file_get_contents (log, &text, NULL, NULL) && strstr (text, "tick 2\n"))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }

  sent = g_get_monotonic_time ();
  g_subprocess_send_signal (proc, signo);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("stopped %.3f s after signal %d", (g_get_monotonic_time () - sent) / 1e6, signo);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 130);
  g_assert_cmpint (g_get_monotonic_time () - sent, <, 10 * G_USEC_PER_SEC);
  g_unlink (log);
  g_rmdir (dir);
}

/* Without /dev/kvm the user is told what to do, and vireo-run exits 2. */
static void
test_bad_no_kvm (void)
{
  const char *v = g_getenv ("VIREO_RUN");
  g_autofree char *kernel = g_build_filename (guest_dir (), "hello.elf", NULL);
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;

  if (!v || !*v)
    {
      g_test_skip ("VIREO_RUN not set");
      return;
    }
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "VIREO_KVM_DEVICE", "/nonexistent/kvm", TRUE);
  proc = g_subprocess_launcher_spawn (launcher, &error, v, "--kernel", kernel, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  g_test_message ("%s", err);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 2);
  g_assert_nonnull (strstr (err, "/dev/kvm"));
  g_assert_nonnull (strstr (err, "virtualization"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* One failing case must not hide the others' results. */
  g_test_set_nonfatal_assertions ();
  oracle_outputs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (Engine e = ENGINE_QEMU; e <= ENGINE_VIREO; e++)
      {
        CaseData *cd = g_new0 (CaseData, 1);
        g_autofree char *path = NULL;

        cd->gc = &cases[i];
        cd->engine = e;
        path = g_strconcat (cases[i].path, e == ENGINE_QEMU ? "/qemu" : "/vireo", NULL);
        /* Two levels only, "/group/rest-of-it": GLib's -p does not select deeper trees. */
        for (char *c = strchr (path + 1, '/') + 1; *c; c++)
          if (*c == '/')
            *c = '-';
        g_test_add_data_func_full (path, cd, test_guest, g_free);
      }

  g_test_add_func ("/bad-input/missing", test_bad_missing);
  g_test_add_func ("/bad-input/empty", test_bad_empty);
  g_test_add_func ("/bad-input/garbage", test_bad_garbage);
  g_test_add_func ("/bad-input/truncated", test_bad_truncated);
  g_test_add_func ("/bad-input/no-kvm", test_bad_no_kvm);
  g_test_add_data_func ("/signals/sigint", GINT_TO_POINTER (SIGINT), test_signal);
  g_test_add_data_func ("/signals/sigterm", GINT_TO_POINTER (SIGTERM), test_signal);

  return g_test_run ();
}
