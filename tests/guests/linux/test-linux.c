/* test-linux.c — boot the tiny Linux test kernel and check its log, line by line.
 *
 * The same kernel (tests/guests/linux/build.sh) boots on Vireo (vireo-run) and on
 * QEMU (the oracle): as a PVH ELF (vmlinux) and as a bzImage. The kernel's log must
 * show the milestones below, in order; the run stops as soon as the last one (or a
 * panic) appears. A second kind of test panics the kernel on purpose (no root file
 * system, panic=-1) and checks that its reboot reaches the machine as a reset.
 *
 * User space cannot run on hosts whose KVM backend emulates instructions (syscall
 * faults), so these tests are kernel-side only: they end at "Run /init as init process".
 *
 * Environment:
 *   VIREO_LINUX_DIR      directory with bzImage, vmlinux, initramfs.cpio.gz
 *                        (default: the output of `build.sh --print-dir`)
 *   VIREO_LINUX_BUILD_SH path of tests/guests/linux/build.sh (meson sets it)
 *   VIREO_RUN            path of vireo-run (meson sets it)
 *   VIREO_QEMU           path of qemu-system-x86_64 (default: from PATH)
 *   VIREO_LINUX_APPEND   extra kernel command-line words, appended (debugging)
 *   VIREO_LINUX_TIMEOUT_SCALE  multiply every timeout (slow hosts), default 1
 *
 * Test paths: /linux/<machine>/<image>/milestones and /linux/<machine>/panic-reset,
 * with <machine> one of vireo, qemu-microvm, qemu-pc and <image> pvh or bzimage.
 * Every line the guest prints is written to <logdir>/<machine>-<test>.log, with
 * <logdir> = $G_TEST_BUILDDIR/linux-logs (or the temporary directory).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <string.h>

/* The kernel command line shared by every machine. noxsave and clearcpuid: the
 * emulating KVM backend cannot execute xrstor, stac/clac or popcnt. */
/* tsc_deadline_timer: with the in-kernel irqchip this host's emulated TSC-deadline timer
 * stalls the boot for minutes after "vgaarb: loaded" (QEMU -M pc too); the LAPIC one-shot
 * timer works. */
#define BASE_APPEND "console=ttyS0 earlyprintk=serial noxsave " \
  "clearcpuid=smap,smep,popcnt,tsc_deadline_timer"

/* ---------------------------------------------------------------------------------
 * Machines
 */

typedef enum {
  MACHINE_ACPI = 1 << 0,       /* has ACPI tables */
  MACHINE_ACPI_RSDT = 1 << 1,  /* root table is an RSDT (SeaBIOS), not an XSDT */
  MACHINE_I8042 = 1 << 2,      /* has an i8042 keyboard controller */
  MACHINE_CMOS_RTC = 1 << 3,   /* has a CMOS RTC that rtc_cmos accepts */
  MACHINE_GSI_COM1 = 1 << 4,   /* COM1's IRQ is not ISA IRQ 4 (QEMU microvm, ACPI) */
} MachineFlags;

typedef enum { HOST_VIREO, HOST_QEMU } HostKind;

typedef struct {
  const char *id;
  HostKind host;
  const char *qemu_machine; /* -M argument */
  guint flags;
  guint timeout_s;          /* for one boot to "Run /init" (before scaling) */
} Machine;

static const Machine machines[] = {
  /* Vireo's PC: ACPI with an XSDT, i8042, CMOS RTC, 16550A at 0x3f8. */
  { "vireo", HOST_VIREO, NULL, MACHINE_ACPI | MACHINE_I8042 | MACHINE_CMOS_RTC, 600 },
  /* microvm (QEMU 7.2) has no i8042; with acpi=on its tables use an XSDT, Linux finds
   * COM1 as PNP device 00:00 with "irq = 49", and says "rtc_cmos rtc_cmos: broken or
   * not accessible". (With acpi=off the guest stopped on an emulation failure at the
   * fwait in fpu__drop, so acpi=on it is.) */
  { "qemu-microvm", HOST_QEMU, "microvm,acpi=on", MACHINE_ACPI | MACHINE_GSI_COM1, 540 },
  /* pc: SeaBIOS builds the ACPI tables, with an RSDT. */
  { "qemu-pc", HOST_QEMU, "pc",
    MACHINE_ACPI | MACHINE_ACPI_RSDT | MACHINE_I8042 | MACHINE_CMOS_RTC, 900 },
};

/* microvm with a PCIe host bridge, for the virtio-pci devices. */
static const Machine machine_microvm_pcie = {
  "qemu-microvm", HOST_QEMU, "microvm,acpi=on,pcie=on", MACHINE_ACPI | MACHINE_GSI_COM1, 540
};

/* ---------------------------------------------------------------------------------
 * Milestones: the one list shared by every machine
 */

typedef struct _Run Run;
typedef gboolean (*MilestoneCheck) (Run *run, const char *line, GString *why);

typedef struct {
  const char *text;          /* a substring of the kernel's line */
  const char *text2;         /* and this one too, if set */
  guint needs;               /* MachineFlags the machine must have, else skipped */
  guint alt_when;            /* on machines with these flags... */
  const char *alt_text;      /* ...look for this instead of text */
  MilestoneCheck check;      /* further check of the matched line */
} Milestone;

static gboolean check_rtc_date (Run *run, const char *line, GString *why);
static gboolean check_cpu_count (Run *run, const char *line, GString *why);

static const Milestone milestones[] = {
  { "Linux version ", NULL, 0, 0, NULL, NULL },
  { "BIOS-provided physical RAM map", NULL, 0, 0, NULL, NULL },
  { "BIOS-e820: [mem ", NULL, 0, 0, NULL, NULL },
  { "ACPI: RSDP ", NULL, MACHINE_ACPI, 0, NULL, NULL },
  { "ACPI: XSDT ", NULL, MACHINE_ACPI, MACHINE_ACPI_RSDT, "ACPI: RSDT ", NULL },
  { "ACPI: FACP ", NULL, MACHINE_ACPI, 0, NULL, NULL },
  { "ACPI: DSDT ", NULL, MACHINE_ACPI, 0, NULL, NULL },
  { "ACPI: APIC ", NULL, MACHINE_ACPI, 0, NULL, NULL },
  { "smp: Brought up 1 node, ", NULL, 0, 0, NULL, check_cpu_count },
  { "ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A", NULL, 0,
    MACHINE_GSI_COM1, "ttyS0 at I/O 0x3f8 (irq = ", NULL },
  /* drivers/Makefile links input/serio/ before rtc/: i8042 probes first. */
  { "serio: i8042 KBD port at 0x60,0x64 irq 1", NULL, MACHINE_I8042, 0, NULL, NULL },
  { "rtc_cmos ", "setting system clock to ", MACHINE_CMOS_RTC, 0, NULL, check_rtc_date },
  { "Run /init as init process", NULL, 0, 0, NULL, NULL },
};

static const char *const panic_markers[] = {
  "Kernel panic - not syncing",
  "BUG: ",
  "Oops: ",
  "general protection fault",
  "invalid opcode: ",
};

/* ---------------------------------------------------------------------------------
 * One run of a guest
 */

typedef gboolean (*LineHandler) (Run *run, const char *line);

struct _Run {
  const Machine *machine;
  guint cpus;                /* vCPUs the guest was given: "Brought up 1 node, N CPU(s)" */
  const char *name;          /* e.g. "vireo-pvh" */
  GSubprocess *proc;
  GDataInputStream *in;
  GOutputStream *stdin_pipe;
  GMainLoop *loop;
  FILE *log;
  char *log_path;
  GPtrArray *tail;           /* the last lines, for failure messages */
  gint64 t0;
  GDateTime *start_utc;
  guint timeout_id;
  guint kill_id;
  guint panic_grace_id;
  gboolean eof;
  gboolean exited;
  gboolean timed_out;
  gboolean stop_sent;        /* we sent SIGTERM because we had what we wanted */
  gboolean panicked;
  gboolean stop_on_panic;    /* stop the guest shortly after a panic */
  int exit_status;           /* exit code, or 128 + signal */
  LineHandler on_line;
  const char *debug_domains; /* G_MESSAGES_DEBUG for the VMM, or NULL */
  /* milestones */
  guint next;                /* index into milestones[] */
  GString *failure;          /* non-empty: a check failed */
  char *panic_line;
};

static double
run_elapsed (Run *run)
{
  return (g_get_monotonic_time () - run->t0) / 1e6;
}

static double
timeout_scale (void)
{
  const char *s = g_getenv ("VIREO_LINUX_TIMEOUT_SCALE");
  double v = s ? g_ascii_strtod (s, NULL) : 1.0;
  return v > 0 ? v : 1.0;
}

static void
run_stop (Run *run)
{
  if (run->stop_sent || run->exited)
    return;
  run->stop_sent = TRUE;
  g_subprocess_send_signal (run->proc, SIGTERM);
}

static gboolean
on_kill_timeout (gpointer data)
{
  Run *run = data;
  run->kill_id = 0;
  if (!run->exited)
    {
      g_test_message ("%s: still running 20 s after SIGTERM; sending SIGKILL", run->name);
      g_subprocess_force_exit (run->proc);
    }
  return G_SOURCE_REMOVE;
}

static gboolean
on_run_timeout (gpointer data)
{
  Run *run = data;
  run->timeout_id = 0;
  run->timed_out = TRUE;
  g_test_message ("%s: timed out after %.1f s", run->name, run_elapsed (run));
  run_stop (run);
  run->kill_id = g_timeout_add_seconds (20, on_kill_timeout, run);
  return G_SOURCE_REMOVE;
}

static gboolean
on_panic_grace (gpointer data)
{
  Run *run = data;
  run->panic_grace_id = 0;
  run_stop (run);
  return G_SOURCE_REMOVE;
}

static void
run_maybe_quit (Run *run)
{
  if (run->eof && run->exited)
    g_main_loop_quit (run->loop);
}

static void on_line_read (GObject *source, GAsyncResult *res, gpointer data);

static void
read_next_line (Run *run)
{
  g_data_input_stream_read_line_async (run->in, G_PRIORITY_DEFAULT, NULL, on_line_read, run);
}

static void
on_line_read (GObject *source, GAsyncResult *res, gpointer data)
{
  Run *run = data;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  g_autofree char *raw = g_data_input_stream_read_line_finish (run->in, res, &len, &error);

  if (raw == NULL)
    {
      if (error)
        g_test_message ("%s: reading the guest's output: %s", run->name, error->message);
      run->eof = TRUE;
      run_maybe_quit (run);
      return;
    }

  /* Serial output has CR LF line ends and may carry stray control bytes. */
  g_autofree char *line = g_utf8_make_valid (raw, len);
  g_strchomp (line);
  for (char *p = line; *p; p++)
    if ((guchar) *p < 0x20 && *p != '\t')
      *p = ' ';

  if (run->log)
    fprintf (run->log, "[%8.3f] %s\n", run_elapsed (run), line);
  g_ptr_array_add (run->tail, g_strdup (line));
  if (run->tail->len > 60)
    g_ptr_array_remove_index (run->tail, 0);

  /* (A VMM's own log line, "…-DEBUG: …", is not a kernel "BUG: ".) */
  if (!run->panicked && strstr (line, "-DEBUG: ") == NULL)
    for (guint i = 0; i < G_N_ELEMENTS (panic_markers); i++)
      if (strstr (line, panic_markers[i]))
        {
          run->panicked = TRUE;
          run->panic_line = g_strdup (line);
          g_test_message ("%7.2f s  %s: PANIC: %s", run_elapsed (run), run->name, line);
          /* keep reading the panic's report (registers, call trace) for a moment */
          if (run->stop_on_panic)
            run->panic_grace_id = g_timeout_add_seconds (5, on_panic_grace, run);
          break;
        }

  if (!run->stop_sent && run->on_line (run, line))
    run_stop (run);

  if (run->panicked && run->stop_on_panic && strstr (line, "---[ end Kernel panic") != NULL)
    run_stop (run);

  read_next_line (run);
}

static void
on_proc_exited (GObject *source, GAsyncResult *res, gpointer data)
{
  Run *run = data;
  g_autoptr(GError) error = NULL;

  if (!g_subprocess_wait_finish (run->proc, res, &error))
    g_test_message ("%s: waiting for the process: %s", run->name, error->message);
  run->exited = TRUE;
  if (g_subprocess_get_if_exited (run->proc))
    run->exit_status = g_subprocess_get_exit_status (run->proc);
  else if (g_subprocess_get_if_signaled (run->proc))
    run->exit_status = 128 + g_subprocess_get_term_sig (run->proc);
  else
    run->exit_status = -1;
  run_maybe_quit (run);
}

static char *
log_dir (void)
{
  const char *builddir = g_getenv ("G_TEST_BUILDDIR");
  char *dir = g_build_filename (builddir ? builddir : g_get_tmp_dir (), "linux-logs", NULL);
  g_mkdir_with_parents (dir, 0755);
  return dir;
}

/* Runs argv until it exits, with on_line called for every line of its output. */
static void
run_guest (Run *run, const char *name, GStrv argv, guint timeout_s, gboolean stop_on_panic)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *dir = log_dir ();
  g_autofree char *cmdline = g_strjoinv ("' '", argv);

  run->name = name;
  run->stop_on_panic = stop_on_panic;
  run->tail = g_ptr_array_new_with_free_func (g_free);
  run->failure = g_string_new (NULL);
  run->loop = g_main_loop_new (NULL, FALSE);
  run->log_path = g_strdup_printf ("%s/%s.log", dir, name);
  run->log = fopen (run->log_path, "w");
  if (run->log)
    {
      setvbuf (run->log, NULL, _IOLBF, 0);
      fprintf (run->log, "# '%s'\n", cmdline);
    }
  g_test_message ("%s: '%s'", name, cmdline);
  g_test_message ("%s: serial log in %s", name, run->log_path);

  /* stdin: a pipe kept open and never written, so that neither QEMU nor vireo-run
   * puts the test runner's terminal in raw mode or sees end-of-file. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_MERGE);
  if (run->debug_domains)
    g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", run->debug_domains, TRUE);
  run->start_utc = g_date_time_new_now_utc ();
  run->t0 = g_get_monotonic_time ();
  run->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv, &error);
  g_assert_no_error (error);
  run->stdin_pipe = g_object_ref (g_subprocess_get_stdin_pipe (run->proc));
  run->in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (run->proc));
  g_data_input_stream_set_newline_type (run->in, G_DATA_STREAM_NEWLINE_TYPE_ANY);

  read_next_line (run);
  g_subprocess_wait_async (run->proc, NULL, on_proc_exited, run);
  run->timeout_id = g_timeout_add_seconds ((guint) (timeout_s * timeout_scale ()), on_run_timeout, run);
  g_main_loop_run (run->loop);

  g_clear_handle_id (&run->timeout_id, g_source_remove);
  g_clear_handle_id (&run->kill_id, g_source_remove);
  g_clear_handle_id (&run->panic_grace_id, g_source_remove);
  if (run->log)
    fprintf (run->log, "# exit status %d after %.3f s%s%s\n", run->exit_status, run_elapsed (run),
             run->stop_sent ? " (stopped by the test)" : "", run->timed_out ? " (timed out)" : "");
  g_test_message ("%s: exit status %d after %.1f s%s%s", name, run->exit_status, run_elapsed (run),
                  run->stop_sent ? " (stopped by the test with SIGTERM)" : "",
                  run->timed_out ? " (timed out)" : "");
}

static void
run_dump_tail (Run *run, guint n)
{
  guint start = run->tail->len > n ? run->tail->len - n : 0;
  g_test_message ("%s: last %u lines of the guest's output:", run->name, run->tail->len - start);
  for (guint i = start; i < run->tail->len; i++)
    g_test_message ("  | %s", (char *) g_ptr_array_index (run->tail, i));
}

static void
run_clear (Run *run)
{
  if (run->log)
    fclose (run->log);
  g_free (run->log_path);
  g_clear_pointer (&run->tail, g_ptr_array_unref);
  g_clear_object (&run->in);
  g_clear_object (&run->stdin_pipe);
  g_clear_object (&run->proc);
  g_clear_pointer (&run->loop, g_main_loop_unref);
  g_clear_pointer (&run->start_utc, g_date_time_unref);
  if (run->failure)
    g_string_free (run->failure, TRUE);
  g_free (run->panic_line);
}

/* ---------------------------------------------------------------------------------
 * Finding the kernel, vireo-run and QEMU
 */

static char *
find_build_sh (void)
{
  const char *env = g_getenv ("VIREO_LINUX_BUILD_SH");
  if (env)
    return g_strdup (env);
  if (g_getenv ("G_TEST_SRCDIR"))
    {
      /* G_TEST_SRCDIR is tests/ when run by meson */
      char *p = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "guests", "linux", "build.sh", NULL);
      if (g_file_test (p, G_FILE_TEST_IS_EXECUTABLE))
        return p;
      g_free (p);
    }
  return g_build_filename ("tests", "guests", "linux", "build.sh", NULL);
}

/* Returns the kernel directory, or NULL after failing the test with the reason. */
static char *
kernel_dir (void)
{
  static char *cached;
  const char *env = g_getenv ("VIREO_LINUX_DIR");
  g_autofree char *build_sh = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (cached)
    return g_strdup (cached);
  if (env)
    {
      cached = g_strdup (env);
      return g_strdup (cached);
    }

  build_sh = find_build_sh ();
  const char *argv[] = { build_sh, "--print-dir", NULL };
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                     &status, &error))
    {
      g_test_fail_printf ("cannot run '%s --print-dir': %s", build_sh, error->message);
      return NULL;
    }
  g_strstrip (out);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_test_fail_printf ("the test kernel is not built (%s): run tests/guests/linux/build.sh "
                          "(or set VIREO_LINUX_DIR)", out);
      return NULL;
    }
  /* the last line of the output is the directory */
  char *nl = strrchr (out, '\n');
  cached = g_strdup (nl ? nl + 1 : out);
  return g_strdup (cached);
}

typedef enum { IMAGE_PVH, IMAGE_BZIMAGE } ImageKind;

static char *
kernel_file (const char *dir, ImageKind image)
{
  return g_build_filename (dir, image == IMAGE_PVH ? "vmlinux" : "bzImage", NULL);
}

static char *
find_qemu (void)
{
  const char *env = g_getenv ("VIREO_QEMU");
  if (env && *env)
    return g_strdup (env);
  return g_find_program_in_path ("qemu-system-x86_64");
}

static char *
find_vireo_run (void)
{
  const char *env = g_getenv ("VIREO_RUN");
  if (env && *env)
    return g_strdup (env);
  return g_find_program_in_path ("vireo-run");
}

static char *
make_append (const char *extra)
{
  const char *user = g_getenv ("VIREO_LINUX_APPEND");
  return g_strjoin (" ", BASE_APPEND, extra ? extra : "", user ? user : "", NULL);
}

/* Builds the command line that boots kernel (+ initrd) on machine, or returns NULL
 * after skipping or failing the test. */
static GStrv
guest_argv (const Machine *machine, const char *kernel, const char *initrd, const char *append,
            guint timeout_s, gboolean no_reboot, guint cpus)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *ncpus = g_strdup_printf ("%u", MAX (cpus, 1u));

  if (machine->host == HOST_VIREO)
    {
      g_autofree char *vireo_run = find_vireo_run ();
      g_autofree char *t = g_strdup_printf ("%u", (guint) (timeout_s * timeout_scale ()) + 60);
      if (!vireo_run)
        {
          g_test_fail_printf ("vireo-run not found (set VIREO_RUN)");
          return NULL;
        }
      g_strv_builder_add_many (b, vireo_run, "--kernel", kernel, NULL);
      if (initrd)
        g_strv_builder_add_many (b, "--initrd", initrd, NULL);
      g_strv_builder_add_many (b, "--append", append, "--memory", "256M", "--cpus", ncpus,
                               "--serial", "stdio", "--timeout", t, NULL);
      /* SMP Linux sends IPIs and yields by hypercall when KVM offers it; this host's
       * emulating backend cannot execute vmcall (CPU 0 spins on it in kvm_hypercall4). */
      if (cpus > 1)
        g_strv_builder_add_many (b, "--cpuid-mask", "kvm-pv-ipi,kvm-pv-sched-yield,kvm-pv-unhalt",
                                 NULL);
      if (no_reboot)
        g_strv_builder_add (b, "--no-reboot");
    }
  else
    {
      g_autofree char *qemu = find_qemu ();
      if (!qemu)
        {
          g_test_skip ("qemu-system-x86_64 not found");
          return NULL;
        }
      if (!g_file_test ("/dev/kvm", G_FILE_TEST_EXISTS))
        {
          g_test_skip ("no /dev/kvm");
          return NULL;
        }
      g_strv_builder_add_many (b, qemu, "-M", machine->qemu_machine, "-enable-kvm", "-m", "256",
                               "-smp", ncpus, "-nodefaults", "-display", "none", "-serial", "stdio",
                               "-kernel", kernel, "-append", append, NULL);
      if (initrd)
        g_strv_builder_add_many (b, "-initrd", initrd, NULL);
      if (no_reboot)
        g_strv_builder_add (b, "-no-reboot");
    }
  return g_strv_builder_end (b);
}

/* ---------------------------------------------------------------------------------
 * The milestones test
 */

static gboolean
milestone_applies (const Machine *machine, const Milestone *m)
{
  return (machine->flags & m->needs) == m->needs;
}

static const char *
milestone_text (const Machine *machine, const Milestone *m)
{
  if (m->alt_text && (machine->flags & m->alt_when) == m->alt_when)
    return m->alt_text;
  return m->text;
}

static gboolean
milestone_matches (const Machine *machine, const Milestone *m, const char *line)
{
  return strstr (line, milestone_text (machine, m)) != NULL &&
         (m->text2 == NULL || strstr (line, m->text2) != NULL);
}

static gboolean
check_rtc_date (Run *run, const char *line, GString *why)
{
  const char *p = strstr (line, "setting system clock to ");
  int y, mo, d;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  if (!p || sscanf (p + strlen ("setting system clock to "), "%4d-%2d-%2d", &y, &mo, &d) != 3)
    {
      g_string_append_printf (why, "no date in the rtc_cmos line: %s", line);
      return FALSE;
    }
  /* today (UTC) when the guest started or now: a run may straddle midnight */
  if ((y == g_date_time_get_year (run->start_utc) && mo == g_date_time_get_month (run->start_utc) &&
       d == g_date_time_get_day_of_month (run->start_utc)) ||
      (y == g_date_time_get_year (now) && mo == g_date_time_get_month (now) &&
       d == g_date_time_get_day_of_month (now)))
    return TRUE;
  g_string_append_printf (why, "the guest's RTC says %04d-%02d-%02d but the host's UTC date is "
                          "%04d-%02d-%02d: %s", y, mo, d, g_date_time_get_year (now),
                          g_date_time_get_month (now), g_date_time_get_day_of_month (now), line);
  return FALSE;
}

static gboolean
check_cpu_count (Run *run, const char *line, GString *why)
{
  g_autofree char *want = g_strdup_printf ("smp: Brought up 1 node, %u CPU%s", MAX (run->cpus, 1u),
                                           run->cpus > 1 ? "s" : "");

  if (strstr (line, want))
    return TRUE;
  g_string_append_printf (why, "expected \"%s\": %s", want, line);
  return FALSE;
}

static guint
skip_inapplicable (const Machine *machine, guint i)
{
  while (i < G_N_ELEMENTS (milestones) && !milestone_applies (machine, &milestones[i]))
    i++;
  return i;
}

static gboolean
milestones_on_line (Run *run, const char *line)
{
  const Machine *machine = run->machine;

  if (run->panicked)
    return FALSE; /* let the panic's report come out, then stop (see on_line_read) */

  /* A milestone that comes before one it should follow is logged here and
   * reported as missing when the run ends. */
  run->next = skip_inapplicable (machine, run->next);
  if (run->next >= G_N_ELEMENTS (milestones))
    return TRUE;

  const Milestone *m = &milestones[run->next];
  if (milestone_matches (machine, m, line))
    {
      g_test_message ("%7.2f s  %-13s  %s", run_elapsed (run), run->machine->id, line);
      if (m->check && !m->check (run, line, run->failure))
        return TRUE;
      run->next = skip_inapplicable (machine, run->next + 1);
      return run->next >= G_N_ELEMENTS (milestones);
    }

  /* a later milestone before this one: out of order */
  for (guint j = run->next + 1; j < G_N_ELEMENTS (milestones); j++)
    if (milestone_applies (machine, &milestones[j]) && milestone_matches (machine, &milestones[j], line))
      g_test_message ("%7.2f s  %-13s  (out of order, still waiting for \"%s\") %s",
                      run_elapsed (run), run->machine->id, milestone_text (machine, m), line);
  return FALSE;
}

typedef struct {
  const Machine *machine;
  ImageKind image;
  guint cpus;
} BootCase;

static void
test_milestones (gconstpointer data)
{
  const BootCase *bc = data;
  const Machine *machine = bc->machine;
  g_autofree char *dir = kernel_dir ();
  if (!dir)
    return;
  g_autofree char *kernel = kernel_file (dir, bc->image);
  g_autofree char *initrd = g_build_filename (dir, "initramfs.cpio.gz", NULL);
  g_autofree char *append = make_append (NULL);
  g_autofree char *name = g_strdup_printf ("%s-%s%s", machine->id,
                                           bc->image == IMAGE_PVH ? "pvh" : "bzimage",
                                           bc->cpus > 1 ? "-smp" : "");
  g_auto(GStrv) argv = guest_argv (machine, kernel, initrd, append, machine->timeout_s, FALSE,
                                   bc->cpus);
  Run run = { .machine = machine, .on_line = milestones_on_line, .cpus = bc->cpus };

  if (!argv)
    return;
  run_guest (&run, name, argv, machine->timeout_s, TRUE);

  gboolean all = skip_inapplicable (machine, run.next) >= G_N_ELEMENTS (milestones);
  if (run.failure->len > 0)
    {
      run_dump_tail (&run, 40);
      g_test_fail_printf ("%s: %s", name, run.failure->str);
    }
  else if (!all)
    {
      run_dump_tail (&run, 40);
      g_test_fail_printf ("%s: milestone \"%s\" never appeared (%s; exit status %d after %.1f s; "
                          "log: %s)", name, milestone_text (machine, &milestones[run.next]),
                          run.panicked ? run.panic_line
                          : run.timed_out ? "timed out"
                          : "the machine stopped", run.exit_status, run_elapsed (&run), run.log_path);
    }
  else if (machine->host == HOST_VIREO && run.exit_status != 130)
    {
      /* vireo-run must turn SIGTERM into an orderly stop with status 130 */
      g_test_fail_printf ("%s: all milestones seen, but vireo-run exited with status %d after "
                          "SIGTERM (expected 130)", name, run.exit_status);
    }
  else
    g_test_message ("%s: all milestones in %.1f s", name, run_elapsed (&run));
  run_clear (&run);
}

/* ---------------------------------------------------------------------------------
 * The panic test: no root file system, panic=-1, the reboot must reach the machine
 */

static gboolean
panic_on_line (Run *run, const char *line)
{
  if (strstr (line, "Linux version ") || strstr (line, "Kernel panic - not syncing") ||
      strstr (line, "Rebooting in") || strstr (line, "VFS: Cannot open root device"))
    g_test_message ("%7.2f s  %-13s  %s", run_elapsed (run), run->machine->id, line);
  return FALSE; /* never stop the guest: it must reset by itself */
}

static void
test_panic_reset (gconstpointer data)
{
  const Machine *machine = data;
  g_autofree char *dir = kernel_dir ();
  if (!dir)
    return;
  g_autofree char *kernel = kernel_file (dir, IMAGE_PVH);
  g_autofree char *append = make_append ("panic=-1 root=/dev/nothing");
  g_autofree char *name = g_strdup_printf ("%s-panic", machine->id);
  g_auto(GStrv) argv = guest_argv (machine, kernel, NULL, append, machine->timeout_s, TRUE, 1);
  Run run = { .machine = machine, .on_line = panic_on_line };
  /* vireo-run --no-reboot: 4 = the guest reset; QEMU -no-reboot exits 0 */
  int expected = machine->host == HOST_VIREO ? 4 : 0;

  if (!argv)
    return;
  run_guest (&run, name, argv, machine->timeout_s, FALSE);

  if (!run.panic_line || !strstr (run.panic_line, "VFS: Unable to mount root fs"))
    {
      run_dump_tail (&run, 40);
      g_test_fail_printf ("%s: expected \"Kernel panic - not syncing: VFS: Unable to mount root "
                          "fs\", got %s (exit status %d; log: %s)", name,
                          run.panic_line ? run.panic_line : "no panic", run.exit_status, run.log_path);
    }
  else if (run.timed_out || run.stop_sent)
    {
      run_dump_tail (&run, 20);
      g_test_fail_printf ("%s: the kernel panicked but the machine did not reset by itself", name);
    }
  else if (run.exit_status != expected)
    {
      run_dump_tail (&run, 20);
      g_test_fail_printf ("%s: the kernel panicked; exit status %d, expected %d (%s)", name,
                          run.exit_status, expected,
                          machine->host == HOST_VIREO
                            ? "4 = reset with --no-reboot; 6 would be a triple fault"
                            : "QEMU -no-reboot exits 0 when the guest resets");
    }
  else
    g_test_message ("%s: panic, then reset, in %.1f s", name, run_elapsed (&run));
  run_clear (&run);
}

/* ---------------------------------------------------------------------------------
 * The virtio test: the kernel's own drivers on every virtio device. The root file system is
 * an ext2 image (mkfs.ext2 -d) on virtio-blk, the address comes from slirp's DHCP through
 * virtio-net, the kernel log also goes to virtio-console (console=hvc0), the keyboard and
 * tablet are virtio-input, and virtio-rng feeds the kernel's entropy pool (seen from the
 * host side: QEMU's virtio_rng_pushed trace event, Vireo's debug message).
 */

typedef struct {
  const char *what;
  const char *text;
  const char *text2;
  const char *vireo_text;    /* instead of text on Vireo */
} VirtioLine;

static const VirtioLine virtio_lines[] = {
  { "virtio-blk", "virtio_blk virtio", "[vda] 16384 512-byte logical blocks", NULL },
  { "virtio-input keyboard", "input: ", "Virtio Keyboard as /devices/pci", NULL },
  { "virtio-input tablet", "input: ", "Virtio Tablet as /devices/pci", NULL },
  { "virtio-console", "printk: console [hvc0] enabled", NULL, NULL },
  { "virtio-net DHCP", "IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15",
    NULL, NULL },
  { "virtio-net address", "device=eth0, hwaddr=52:54:00:12:34:56, ipaddr=10.0.2.15", NULL,
    NULL },
  { "virtio-rng", "virtio_rng_pushed", NULL, "virtio-rng: the guest's driver asked for" },
  { "ext2 root on virtio-blk", "VFS: Mounted root (ext2 filesystem)", NULL, NULL },
  /* The CD-ROM drive on virtio-scsi: the SCSI scan's INQUIRY, then sr's probe (MODE SENSE
   * page 0x2a, GET CONFIGURATION, READ CAPACITY of the disc in it). */
  { "virtio-scsi CD-ROM", "scsi 0:0:0:0: CD-ROM", NULL, NULL },
  { "sr on the CD-ROM", "[sr0] scsi3-mmc drive", NULL, NULL },
};

typedef struct {
  Run run;
  gboolean seen[G_N_ELEMENTS (virtio_lines)];
} VirtioRun;

static gboolean
virtio_on_line (Run *run, const char *line)
{
  VirtioRun *vr = (VirtioRun *) run;
  gboolean all = TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (virtio_lines); i++)
    {
      const VirtioLine *l = &virtio_lines[i];
      const char *text = run->machine->host == HOST_VIREO && l->vireo_text ? l->vireo_text
                                                                            : l->text;

      if (!vr->seen[i] && strstr (line, text) && (!l->text2 || strstr (line, l->text2)))
        {
          vr->seen[i] = TRUE;
          g_test_message ("%7.2f s  %-13s  %-24s %s", run_elapsed (run), run->machine->id,
                          l->what, line);
        }
      all = all && vr->seen[i];
    }
  return all;
}

static void
test_virtio (gconstpointer data)
{
  const Machine *machine = data;
  g_autofree char *dir = kernel_dir ();
  g_autofree char *tmp = NULL, *root = NULL, *rootdir = NULL, *console = NULL, *motd = NULL;
  g_autofree char *iso = NULL, *iso_data = NULL;
  /* hvc0 first: the last console= is the preferred one, and only when that is ttyS0 does
   * the early serial console stop when the real one starts (else every line comes twice). */
  g_autofree char *common = make_append ("root=/dev/vda ip=dhcp");
  g_autofree char *append = g_strconcat ("console=hvc0 ", common, NULL);
  g_autofree char *name = g_strdup_printf ("%s-virtio", machine->id);
  g_autofree char *kernel = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) base = NULL, argv = NULL;
  VirtioRun vr = { .run = { .machine = machine, .on_line = virtio_on_line, .cpus = 1 } };
  int status;

  if (!dir)
    return;
  kernel = kernel_file (dir, IMAGE_PVH);
  tmp = g_dir_make_tmp ("vireo-linux-virtio-XXXXXX", &error);
  g_assert_no_error (error);
  root = g_build_filename (tmp, "root.ext2", NULL);
  rootdir = g_build_filename (tmp, "root", NULL);
  console = g_build_filename (tmp, "console.log", NULL);
  motd = g_build_filename (rootdir, "motd", NULL);
  /* A disc for the CD-ROM drive: 512 blocks of 2048 bytes (sr only reads its capacity). */
  iso = g_build_filename (tmp, "cd.iso", NULL);
  iso_data = g_malloc0 (512 * 2048);
  g_file_set_contents (iso, iso_data, 512 * 2048, &error);
  g_assert_no_error (error);
  g_mkdir_with_parents (rootdir, 0755);
  g_file_set_contents (motd, "Vireo\n", -1, &error);
  g_assert_no_error (error);
  {
    const char *mkfs[] = { "mkfs.ext2", "-q", "-F", "-d", rootdir, root, "8M", NULL };

    if (!g_spawn_sync (NULL, (char **) mkfs, NULL, G_SPAWN_SEARCH_PATH
                       | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, &error)
        || !g_spawn_check_wait_status (status, &error))
      {
        g_test_skip_printf ("mkfs.ext2 -d failed: %s", error->message);
        return;
      }
  }

  base = guest_argv (machine, kernel, NULL, append, machine->timeout_s, FALSE, 1);
  if (!base)
    return;
  g_strv_builder_addv (b, (const char **) base);
  if (machine->host == HOST_VIREO)
    {
      g_autofree char *disk = g_strdup_printf ("%s,format=raw", root);
      g_autofree char *con = g_strdup_printf ("file:%s", console);

      g_strv_builder_add_many (b, "--disk", disk, "--net", "user", "--rng", "--input",
                               "--console", con, "--cdrom", iso, NULL);
      vr.run.debug_domains = "vireo-virtio";
    }
  else
    {
      g_autofree char *drive = g_strdup_printf ("if=none,id=d0,file=%s,format=raw", root);
      g_autofree char *con = g_strdup_printf ("file,id=c0,path=%s", console);
      g_autofree char *cd = g_strdup_printf ("if=none,id=cd0,file=%s,format=raw,media=cdrom",
                                             iso);

      g_strv_builder_add_many (b, "-drive", drive, "-device", "virtio-blk-pci,drive=d0",
                               "-drive", cd, "-device", "virtio-scsi-pci,id=scsi0",
                               "-device", "scsi-cd,drive=cd0,bus=scsi0.0",
                               "-netdev", "user,id=n0",
                               "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
                               "-device", "virtio-rng-pci", "-trace", "virtio_rng_pushed",
                               "-device", "virtio-serial-pci", "-chardev", con,
                               "-device", "virtconsole,chardev=c0",
                               "-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci",
                               NULL);
    }
  argv = g_strv_builder_end (b);
  run_guest (&vr.run, name, argv, machine->timeout_s, TRUE);

  for (guint i = 0; i < G_N_ELEMENTS (virtio_lines); i++)
    if (!vr.seen[i])
      {
        run_dump_tail (&vr.run, 40);
        g_test_fail_printf ("%s: no sign of %s (\"%s\"; %s, exit status %d; log: %s)", name,
                            virtio_lines[i].what, virtio_lines[i].text,
                            vr.run.panicked ? vr.run.panic_line
                            : vr.run.timed_out ? "timed out" : "the machine stopped",
                            vr.run.exit_status, vr.run.log_path);
        break;
      }
  if (!g_test_failed ())
    {
      g_autofree char *text = NULL;

      /* The kernel's log reached the virtio console too (its last lines may still be on
       * their way when the test stops the machine). */
      g_file_get_contents (console, &text, NULL, NULL);
      if (text == NULL || strstr (text, "IP-Config: Complete") == NULL)
        g_test_fail_printf ("%s: the virtio console's log %s lacks the kernel's messages", name,
                            console);
      else
        g_test_message ("%s: every virtio device driven by Linux in %.1f s", name,
                        run_elapsed (&vr.run));
    }
  run_clear (&vr.run);
  if (!g_test_failed ())
    {
      g_unlink (motd);
      g_rmdir (rootdir);
      g_unlink (root);
      g_unlink (console);
      g_unlink (iso);
      g_rmdir (tmp);
    }
}

/* ---------------------------------------------------------------------------------
 */

int
main (int argc, char **argv)
{
  static BootCase cases[G_N_ELEMENTS (machines) * 2];
  /* SMP Linux on Vireo: 2 vCPUs brought up through the MADT and INIT/SIPI. */
  static BootCase smp = { &machines[0], IMAGE_PVH, 2 };

  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (machines); i++)
    {
      const Machine *m = &machines[i];
      for (guint k = 0; k < 2; k++)
        {
          BootCase *bc = &cases[i * 2 + k];
          bc->machine = m;
          bc->image = k == 0 ? IMAGE_PVH : IMAGE_BZIMAGE;
          bc->cpus = 1;
          g_autofree char *path = g_strdup_printf ("/linux/%s/%s/milestones", m->id,
                                                   k == 0 ? "pvh" : "bzimage");
          g_test_add_data_func (path, bc, test_milestones);
        }
      g_autofree char *path = g_strdup_printf ("/linux/%s/panic-reset", m->id);
      g_test_add_data_func (path, m, test_panic_reset);
    }

  g_test_add_data_func ("/linux/vireo/smp/milestones", &smp, test_milestones);
  g_test_add_data_func ("/linux/vireo/virtio", &machines[0], test_virtio);
  g_test_add_data_func ("/linux/qemu-microvm/virtio", &machine_microvm_pcie, test_virtio);

  return g_test_run ();
}
