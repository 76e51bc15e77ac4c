/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The virtio test guests (blk, rng, console, input; see tests/guests/<guest>.c) on QEMU
 * (the oracle) and on Vireo, with the same devices on both:
 *
 *   blk      QEMU: -drive if=none,id=d0,file=F,format=FMT[,readonly=on]
 *                  -device virtio-blk-pci,drive=d0,disable-legacy=on,serial=vireo-blk-0
 *            Vireo: --disk F,format=FMT[,readonly],serial=vireo-blk-0
 *   rng      -device virtio-rng-pci,disable-legacy=on          / --rng
 *   console  -device virtio-serial-pci,disable-legacy=on -device virtconsole,chardev=c0
 *            -chardev stdio,id=c0,signal=off                   / --console stdio
 *   input    -device virtio-keyboard-pci,disable-legacy=on
 *            -device virtio-tablet-pci,disable-legacy=on, events through QMP
 *                                                              / the engine API (config.input,
 *                                                                vr_machine_input_*())
 *
 * Each run checks the guest's serial output (COM1, written to a file; "info: " lines left
 * out) against the expected text and, for Vireo, against QEMU's; plus what a user would
 * see on the host: the disk file's contents (sector patterns documented in blk.c; for
 * qcow2 also `qemu-img check` and `qemu-img convert -O raw`), the console's text on
 * stdout.  The input guest gets one injected packet at a time: the test waits for the
 * packet's SYN_REPORT line before it sends the next, so the lines come in a fixed order.
 *
 * Environment: VIREO_RUN, VIREO_GUEST_DIR, VIREO_QEMU as in test-guests.c; qemu-img is
 * looked up next to VIREO_QEMU, then on PATH.
 */

#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vr-machine.h"

#define RUN_TIMEOUT   150       /* seconds: what vireo-run is told */
#define KILL_TIMEOUT  240       /* seconds: when we give up on a child */
#define STEP_TIMEOUT  60        /* seconds: for one interaction with a running guest */

#define DISK_SECTORS  2048
#define SECTOR        512
#define BLK_SERIAL    "vireo-blk-0"

#define CONSOLE_GREETING "hello from the virtio console\n"
#define CONSOLE_LINE \
  "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Linux evdev codes. */
#define EV_SYN        0
#define EV_KEY        1
#define EV_REL        2
#define EV_ABS        3
#define KEY_ESC       1
#define KEY_1         2
#define KEY_ENTER     28
#define KEY_A         30
#define KEY_LEFTSHIFT 42
#define BTN_LEFT      0x110
#define BTN_RIGHT     0x111
#define REL_WHEEL     8

typedef enum
{
  ENGINE_QEMU,
  ENGINE_VIREO,
} Engine;

typedef enum
{
  KIND_BLK,
  KIND_RNG,
  KIND_CONSOLE,
  KIND_INPUT,
} Kind;

typedef struct
{
  const char *path;             /* "/group/name"; the engine is appended */
  const char *guest;
  Kind        kind;
  const char *append;
  const char *format;           /* blk: raw, qcow2 or vmdk */
  gboolean    readonly;         /* blk */
  const char *expect;           /* normalised serial output */
} VirtioCase;

typedef struct
{
  const VirtioCase *vc;
  Engine            engine;
} CaseData;

/* A temporary directory with the run's files. */
typedef struct
{
  char *dir;
  char *serial;                 /* COM1 log */
  char *out;                    /* the child's stdout (not for the console cases) */
  char *err;                    /* the child's stderr */
  char *disk;
  char *qmp;
} Files;

static GHashTable *oracle_outputs;      /* case path -> normalised QEMU output */

/* --------------------------------------------------------------- disk patterns */

/* Pattern A, written by the host: byte i of sector s (see blk.c). */
static guint8
pattern_a (guint64 s, unsigned i)
{
  return i < 4 ? (guint8) ((guint32) s >> (8 * i)) : (guint8) (s * 31 + i);
}

/* Pattern B, written by the guest to sectors 512..575. */
static guint8
pattern_b (guint64 s, unsigned i)
{
  return i < 4 ? (guint8) (~(guint32) s >> (8 * i)) : (guint8) (s * 17 + i * 3 + 0x5a);
}

static guint8 *
make_pattern_a (void)
{
  guint8 *d = g_malloc (DISK_SECTORS * SECTOR);

  for (unsigned s = 0; s < DISK_SECTORS; s++)
    for (unsigned i = 0; i < SECTOR; i++)
      d[s * SECTOR + i] = pattern_a (s, i);
  return d;
}

static gboolean
sector_is (const guint8 *p, guint64 s, guint8 (*pat) (guint64, unsigned))
{
  for (unsigned i = 0; i < SECTOR; i++)
    if (p[i] != (pat ? pat (s, i) : 0))
      return FALSE;
  return TRUE;
}

/*
 * What the disk must hold after the blk guest: pattern A, but B in 512..575 (written),
 * zeroes in 1024..1039 (when the guest did WRITE_ZEROES), zeroes or A in 1536..1663
 * (when it did DISCARD).  Read-only disks: A everywhere.
 */
static void
check_disk_contents (const guint8 *d, gsize len, gboolean written, gboolean zeroed,
                     gboolean discarded)
{
  g_assert_cmpuint (len, ==, DISK_SECTORS * SECTOR);
  if (len != DISK_SECTORS * SECTOR)
    return;
  for (guint64 s = 0; s < DISK_SECTORS; s++)
    {
      const guint8 *p = d + s * SECTOR;
      gboolean ok;
      const char *want;

      if (written && s >= 512 && s < 576)
        ok = sector_is (p, s, pattern_b), want = "pattern B";
      else if (written && zeroed && s >= 1024 && s < 1040)
        ok = sector_is (p, s, NULL), want = "zeroes";
      else if (written && discarded && s >= 1536 && s < 1664)
        ok = sector_is (p, s, NULL) || sector_is (p, s, pattern_a), want = "zeroes or pattern A";
      else
        ok = sector_is (p, s, pattern_a), want = "pattern A";
      if (!ok)
        {
          g_test_message ("sector %" G_GUINT64_FORMAT " does not hold %s: %02x %02x %02x %02x "
                          "%02x %02x %02x %02x", s, want, p[0], p[1], p[2], p[3], p[4], p[5],
                          p[6], p[7]);
          g_test_fail ();
          return;
        }
    }
}

/* --------------------------------------------------------------- helpers */

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

static char *
find_qemu_img (void)
{
  g_autofree char *qemu = find_qemu ();

  if (qemu)
    {
      g_autofree char *dir = g_path_get_dirname (qemu);
      char *img = g_build_filename (dir, "qemu-img", NULL);

      if (g_file_test (img, G_FILE_TEST_IS_EXECUTABLE))
        return img;
      g_free (img);
    }
  return g_find_program_in_path ("qemu-img");
}

static void
files_init (Files *f)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("vireo-virtio-XXXXXX", &error);
  g_assert_no_error (error);
  f->serial = g_build_filename (f->dir, "serial.log", NULL);
  f->out = g_build_filename (f->dir, "stdout.log", NULL);
  f->err = g_build_filename (f->dir, "stderr.log", NULL);
  f->qmp = g_build_filename (f->dir, "qmp.sock", NULL);
}

static void
files_clear (Files *f)
{
  g_autoptr (GDir) d = f->dir ? g_dir_open (f->dir, 0, NULL) : NULL;
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (f->dir, name, NULL);
      g_unlink (p);
    }
  if (f->dir)
    g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->serial);
  g_free (f->out);
  g_free (f->err);
  g_free (f->disk);
  g_free (f->qmp);
  memset (f, 0, sizeof *f);
}

static char *
read_text (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!path || !g_file_get_contents (path, &text, &len, NULL))
    return g_strdup ("");
  return g_utf8_make_valid (text, len);
}

static void
dump (const char *who, const char *what, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (int i = 0; lines[i]; i++)
    if (lines[i][0])
      g_test_message ("%s %s| %s", who, what, lines[i]);
}

/* Runs a program to its end; returns its exit status (-1 when it did not exit). */
static int
run_sync (const char *const *argv, char **output)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv);
  g_autofree char *out = NULL;
  int status = -1;

  g_test_message ("run: %s", cmd);
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                &status, &error);
  g_assert_no_error (error);
  if (output)
    *output = g_steal_pointer (&out);
  return g_spawn_check_wait_status (status, NULL) ? 0
         : WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* The comparable part of the serial output: no "info: " lines, no empty ones, no '\r'. */
static char *
normalise (const char *out)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  GString *s = g_string_new (NULL);

  for (int i = 0; lines[i]; i++)
    {
      char *l = lines[i];

      g_strdelimit (l, "\r", ' ');
      g_strchomp (l);
      if (!*l || g_str_has_prefix (l, "info: "))
        continue;
      g_string_append (s, l);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

/* Complete lines of the serial log that are SYN_REPORTs printed by the input guest. */
static unsigned
count_syn_lines (const char *text)
{
  unsigned n = 0;
  const char *p = text, *nl;

  while ((nl = strchr (p, '\n')))
    {
      if (g_str_has_prefix (p, "event ") && nl - p >= 6 && !strncmp (nl - 6, " 0 0 0", 6))
        n++;
      p = nl + 1;
    }
  return n;
}

static gboolean
log_has (const char *path, const char *needle)
{
  g_autofree char *text = read_text (path);

  return strstr (text, needle) != NULL;
}

/* --------------------------------------------------------------- input sequence */

typedef enum
{
  STEP_KEY,
  STEP_ABS,
  STEP_BUTTON,
  STEP_WHEEL,
} StepKind;

typedef struct
{
  StepKind    kind;
  unsigned    code;             /* KEY/BUTTON: evdev code; ABS: x */
  int         value;            /* KEY/BUTTON: pressed; ABS: y; WHEEL: delta */
  const char *qcode;            /* QMP name of the key or button */
} Step;

/* The agreed sequence; it ends with the release of KEY_ESC. */
static const Step input_steps[] = {
  { STEP_KEY, KEY_A, 1, "a" },
  { STEP_KEY, KEY_A, 0, "a" },
  { STEP_KEY, KEY_LEFTSHIFT, 1, "shift" },
  { STEP_KEY, KEY_1, 1, "1" },
  { STEP_KEY, KEY_1, 0, "1" },
  { STEP_KEY, KEY_LEFTSHIFT, 0, "shift" },
  { STEP_ABS, 0, 0, NULL },
  { STEP_ABS, 16384, 8192, NULL },
  { STEP_ABS, 32767, 32767, NULL },
  { STEP_BUTTON, BTN_LEFT, 1, "left" },
  { STEP_BUTTON, BTN_LEFT, 0, "left" },
  { STEP_BUTTON, BTN_RIGHT, 1, "right" },
  { STEP_BUTTON, BTN_RIGHT, 0, "right" },
  { STEP_WHEEL, 0, 1, "wheel-up" },
  { STEP_WHEEL, 0, -1, "wheel-down" },
  { STEP_KEY, KEY_ENTER, 1, "ret" },
  { STEP_KEY, KEY_ENTER, 0, "ret" },
  { STEP_KEY, KEY_ESC, 1, "esc" },
  { STEP_KEY, KEY_ESC, 0, "esc" },
};

/* What the guest prints for the whole sequence. */
static char *
input_expected_events (void)
{
  GString *s = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (input_steps); i++)
    {
      const Step *st = &input_steps[i];
      const char *dev = st->kind == STEP_KEY ? "keyboard" : "tablet";

      switch (st->kind)
        {
        case STEP_KEY:
        case STEP_BUTTON:
          g_string_append_printf (s, "event %s %u %u %d\n", dev, EV_KEY, st->code, st->value);
          break;
        case STEP_ABS:
          g_string_append_printf (s, "event %s %u 0 %u\n", dev, EV_ABS, st->code);
          g_string_append_printf (s, "event %s %u 1 %d\n", dev, EV_ABS, st->value);
          break;
        case STEP_WHEEL:
          g_string_append_printf (s, "event %s %u %u %d\n", dev, EV_REL, REL_WHEEL, st->value);
          break;
        }
      g_string_append_printf (s, "event %s 0 0 0\n", dev);
    }
  return g_string_free (s, FALSE);
}

/* The QMP input-send-event arguments for one step. */
static char *
qmp_step (const Step *st)
{
  switch (st->kind)
    {
    case STEP_KEY:
      return g_strdup_printf ("[{\"type\":\"key\",\"data\":{\"down\":%s,"
                              "\"key\":{\"type\":\"qcode\",\"data\":\"%s\"}}}]",
                              st->value ? "true" : "false", st->qcode);
    case STEP_ABS:
      return g_strdup_printf ("[{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":%u}},"
                              "{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":%d}}]",
                              st->code, st->value);
    case STEP_BUTTON:
      return g_strdup_printf ("[{\"type\":\"btn\",\"data\":{\"down\":%s,\"button\":\"%s\"}}]",
                              st->value ? "true" : "false", st->qcode);
    case STEP_WHEEL:
      /* QEMU turns a wheel button press into REL_WHEEL ±1 (the release sends nothing). */
      return g_strdup_printf ("[{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"%s\"}}]",
                              st->qcode);
    }
  g_assert_not_reached ();
}

static void
vireo_step (VrMachine *m, const Step *st)
{
  switch (st->kind)
    {
    case STEP_KEY:
      vr_machine_input_key (m, st->code, st->value);
      break;
    case STEP_ABS:
      vr_machine_input_abs (m, st->code, (unsigned) st->value);
      break;
    case STEP_BUTTON:
      vr_machine_input_button (m, st->code, st->value);
      break;
    case STEP_WHEEL:
      vr_machine_input_wheel (m, st->value);
      break;
    }
}

/* Waits until the serial log shows @n SYN_REPORT lines; FALSE on timeout or @alive false. */
static gboolean
wait_syn (const char *log, unsigned n, gboolean (*alive) (gpointer), gpointer data)
{
  gint64 end = g_get_monotonic_time () + STEP_TIMEOUT * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *text = read_text (log);

      if (count_syn_lines (text) >= n)
        return TRUE;
      if (g_get_monotonic_time () > end || (alive && !alive (data)))
        return FALSE;
      g_usleep (20000);
    }
}

/* --------------------------------------------------------------- QMP */

typedef struct
{
  int   fd;
  FILE *in;
} Qmp;

static gboolean
qmp_command (Qmp *q, const char *json)
{
  char line[4096];
  gsize len = strlen (json);

  if (write (q->fd, json, len) != (gssize) len || write (q->fd, "\n", 1) != 1)
    return FALSE;
  while (fgets (line, sizeof line, q->in))
    {
      if (strstr (line, "\"return\""))
        return TRUE;
      if (strstr (line, "\"error\""))
        {
          g_test_message ("qmp: %s -> %s", json, line);
          return FALSE;
        }
    }
  return FALSE;
}

static gboolean
qmp_connect (Qmp *q, const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  char line[4096];
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  g_assert_cmpuint (strlen (path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, path);
  for (;;)
    {
      q->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      g_assert_cmpint (q->fd, >=, 0);
      if (connect (q->fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        break;
      close (q->fd);
      q->fd = -1;
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_usleep (50000);
    }
  q->in = fdopen (dup (q->fd), "r");
  if (!q->in || !fgets (line, sizeof line, q->in) || !strstr (line, "\"QMP\""))
    return FALSE;
  return qmp_command (q, "{\"execute\":\"qmp_capabilities\"}");
}

static void
qmp_close (Qmp *q)
{
  if (q->in)
    fclose (q->in);
  if (q->fd >= 0)
    close (q->fd);
  q->in = NULL;
  q->fd = -1;
}

/* --------------------------------------------------------------- child processes */

static gboolean
proc_alive (gpointer data)
{
  return g_subprocess_get_identifier (G_SUBPROCESS (data)) != NULL;
}

/* Waits for the child to exit; kills it after @seconds. Returns its status or -1. */
static int
proc_wait (GSubprocess *proc, int seconds, gboolean *timed_out)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;

  *timed_out = FALSE;
  while (proc_alive (proc))
    {
      if (g_get_monotonic_time () > end)
        {
          *timed_out = TRUE;
          g_subprocess_force_exit (proc);
          break;
        }
      g_usleep (20000);
    }
  g_subprocess_wait (proc, NULL, NULL);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

static void
add (GPtrArray *argv, const char *arg)
{
  g_ptr_array_add (argv, g_strdup (arg));
}

static void
addf (GPtrArray *argv, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
addf (GPtrArray *argv, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_ptr_array_add (argv, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

static GPtrArray *
build_argv (const VirtioCase *vc, Engine engine, const char *program, const Files *f)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *kernel = NULL;

  add (argv, program);
  if (engine == ENGINE_QEMU)
    {
      const char *fixed[] = {
        "-enable-kvm", "-nodefaults", "-no-user-config", "-display", "none", "-M", "pc",
        "-m", "128", "-smp", "1", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
      };

      kernel = g_strdup_printf ("%s/%s-pvh.elf", guest_dir (), vc->guest);
      for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
        add (argv, fixed[i]);
      add (argv, "-serial");
      addf (argv, "file:%s", f->serial);
      add (argv, "-kernel");
      add (argv, kernel);
      if (vc->append)
        {
          add (argv, "-append");
          add (argv, vc->append);
        }
      switch (vc->kind)
        {
        case KIND_BLK:
          add (argv, "-drive");
          addf (argv, "if=none,id=d0,file=%s,format=%s%s", f->disk, vc->format,
                vc->readonly ? ",readonly=on" : "");
          add (argv, "-device");
          add (argv, "virtio-blk-pci,drive=d0,disable-legacy=on,serial=" BLK_SERIAL);
          break;
        case KIND_RNG:
          add (argv, "-device");
          add (argv, "virtio-rng-pci,disable-legacy=on");
          break;
        case KIND_CONSOLE:
          add (argv, "-chardev");
          add (argv, "stdio,id=c0,signal=off");
          add (argv, "-device");
          add (argv, "virtio-serial-pci,disable-legacy=on");
          add (argv, "-device");
          add (argv, "virtconsole,chardev=c0");
          break;
        case KIND_INPUT:
          add (argv, "-device");
          add (argv, "virtio-keyboard-pci,disable-legacy=on");
          add (argv, "-device");
          add (argv, "virtio-tablet-pci,disable-legacy=on");
          add (argv, "-qmp");
          addf (argv, "unix:%s,server=on,wait=off", f->qmp);
          break;
        }
    }
  else
    {
      kernel = g_strdup_printf ("%s/%s.elf", guest_dir (), vc->guest);
      add (argv, "--kernel");
      add (argv, kernel);
      add (argv, "--memory");
      add (argv, "128M");
      add (argv, "--cpus");
      add (argv, "1");
      add (argv, "--serial");
      addf (argv, "file:%s", f->serial);
      add (argv, "--timeout");
      addf (argv, "%d", RUN_TIMEOUT);
      if (vc->append)
        {
          add (argv, "--append");
          add (argv, vc->append);
        }
      switch (vc->kind)
        {
        case KIND_BLK:
          add (argv, "--disk");
          addf (argv, "%s,format=%s%s,serial=" BLK_SERIAL, f->disk, vc->format,
                vc->readonly ? ",readonly" : "");
          break;
        case KIND_RNG:
          add (argv, "--rng");
          break;
        case KIND_CONSOLE:
          add (argv, "--console");
          add (argv, "stdio");
          break;
        case KIND_INPUT:
          g_assert_not_reached ();      /* through the engine API */
        }
    }
  g_ptr_array_add (argv, NULL);
  return argv;
}

static GSubprocess *
spawn (GPtrArray *argv, const Files *f, gboolean console)
{
  g_autoptr (GSubprocessLauncher) l = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv->pdata);
  GSubprocess *proc;

  g_test_message ("run: %s", cmd);
  l = g_subprocess_launcher_new (console ? G_SUBPROCESS_FLAGS_STDIN_PIPE
                                           | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                         : G_SUBPROCESS_FLAGS_NONE);
  if (!console)
    {
      g_subprocess_launcher_set_stdout_file_path (l, f->out);
      /* No stdin: the guest's serial input (if any) sees end-of-file. */
      g_subprocess_launcher_set_stdin_file_path (l, "/dev/null");
    }
  g_subprocess_launcher_set_stderr_file_path (l, f->err);
  proc = g_subprocess_launcher_spawnv (l, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

/* --------------------------------------------------------------- per-kind interaction */

/* Reads what is available on @in into @acc without blocking. */
static void
drain (GInputStream *in, GString *acc)
{
  char buf[512];

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in), buf,
                                                           sizeof buf, NULL, &error);
      if (n <= 0)
        return;
      g_string_append_len (acc, buf, n);
    }
}

/* The console: wait for the greeting on stdout, send the line, collect the rest. */
static void
console_interact (GSubprocess *proc, GString *out)
{
  GInputStream *in = g_subprocess_get_stdout_pipe (proc);
  GOutputStream *o = g_subprocess_get_stdin_pipe (proc);
  gint64 end = g_get_monotonic_time () + KILL_TIMEOUT * G_USEC_PER_SEC;
  gboolean sent = FALSE;

  while (proc_alive (proc) && g_get_monotonic_time () < end)
    {
      drain (in, out);
      if (!sent && strstr (out->str, CONSOLE_GREETING))
        {
          g_autoptr (GError) error = NULL;

          g_output_stream_write_all (o, CONSOLE_LINE "\n", strlen (CONSOLE_LINE "\n"), NULL,
                                     NULL, &error);
          g_output_stream_flush (o, NULL, NULL);
          g_assert_no_error (error);
          sent = TRUE;
        }
      g_usleep (20000);
    }
  drain (in, out);
  g_assert_true (sent);
}

/* The input guest on QEMU: the sequence through QMP. */
static void
qemu_input_interact (GSubprocess *proc, const Files *f)
{
  Qmp q = { -1, NULL };
  gint64 end = g_get_monotonic_time () + KILL_TIMEOUT * G_USEC_PER_SEC;

  while (!log_has (f->serial, "\nready\n") && proc_alive (proc) && g_get_monotonic_time () < end)
    g_usleep (20000);
  g_assert_true (log_has (f->serial, "\nready\n"));
  g_assert_true (qmp_connect (&q, f->qmp));
  for (gsize i = 0; i < G_N_ELEMENTS (input_steps); i++)
    {
      g_autofree char *events = qmp_step (&input_steps[i]);
      g_autofree char *cmd = g_strdup_printf ("{\"execute\":\"input-send-event\","
                                              "\"arguments\":{\"events\":%s}}", events);

      g_assert_true (qmp_command (&q, cmd));
      if (!wait_syn (f->serial, (unsigned) i + 1, proc_alive, proc))
        {
          g_test_message ("no SYN_REPORT line for step %" G_GSIZE_FORMAT, i);
          g_test_fail ();
          break;
        }
    }
  qmp_close (&q);
}

/* --------------------------------------------------------------- blk disks */

static void
write_file (const char *path, const void *data, gsize len)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, data, (gssize) len, &error);
  g_assert_no_error (error);
}

/* Creates the disk in the case's format, filled with pattern A. */
static gboolean
prepare_disk (const VirtioCase *vc, Files *f)
{
  g_autofree guint8 *a = make_pattern_a ();
  g_autofree char *raw = g_build_filename (f->dir, "pattern.raw", NULL);

  f->disk = g_strdup_printf ("%s/disk.%s", f->dir, vc->format);
  if (g_str_equal (vc->format, "raw"))
    {
      write_file (f->disk, a, DISK_SECTORS * SECTOR);
      return TRUE;
    }
  else
    {
      g_autofree char *img = find_qemu_img ();
      const char *argv[] = { img, "convert", "-f", "raw", "-O", vc->format, raw, f->disk, NULL };

      if (!img)
        {
          g_test_skip ("qemu-img not found");
          return FALSE;
        }
      write_file (raw, a, DISK_SECTORS * SECTOR);
      g_assert_cmpint (run_sync (argv, NULL), ==, 0);
      g_unlink (raw);
      return TRUE;
    }
}

static void
check_disk (const VirtioCase *vc, Files *f, const char *serial_text)
{
  g_autofree char *data = NULL;
  g_autofree char *raw = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  gboolean written = !vc->readonly;

  if (!g_str_equal (vc->format, "raw"))
    {
      g_autofree char *img = find_qemu_img ();
      g_autofree char *out = NULL;

      raw = g_build_filename (f->dir, "converted.raw", NULL);
      if (g_str_equal (vc->format, "qcow2"))
        {
          const char *check[] = { img, "check", "-f", "qcow2", f->disk, NULL };
          int st = run_sync (check, &out);

          dump ("qemu-img", "check", out);
          g_assert_cmpint (st, ==, 0);
        }
      {
        const char *convert[] = { img, "convert", "-f", vc->format, "-O", "raw", f->disk, raw,
                                  NULL };
        g_assert_cmpint (run_sync (convert, NULL), ==, 0);
      }
    }
  g_file_get_contents (raw ? raw : f->disk, &data, &len, &error);
  g_assert_no_error (error);
  if (data)
    check_disk_contents ((const guint8 *) data, len, written,
                         strstr (serial_text, "info: write zeroes: done") != NULL,
                         strstr (serial_text, "info: discard: done") != NULL);
}

/* --------------------------------------------------------------- the test */

static void
compare_output (const CaseData *cd, const char *serial)
{
  g_autofree char *got = normalise (serial);

  g_assert_cmpstr (got, ==, cd->vc->expect);
  if (cd->engine == ENGINE_QEMU)
    g_hash_table_insert (oracle_outputs, g_strdup (cd->vc->path), g_strdup (got));
  else
    {
      const char *oracle = g_hash_table_lookup (oracle_outputs, cd->vc->path);
      if (oracle)
        g_assert_cmpstr (got, ==, oracle);
    }
}

/* The input guest on Vireo, through the engine's API. */
static void
vireo_input (const CaseData *cd, Files *f)
{
  const VirtioCase *vc = cd->vc;
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (VrMachine) m = NULL;
  g_autofree char *serial = NULL;
  VrMachineConfig config;
  gint64 end;

  g_main_context_push_thread_default (ctx);
  vr_machine_config_init (&config);
  config.kernel = g_strdup_printf ("%s/%s.elf", guest_dir (), vc->guest);
  config.cmdline = g_strdup (vc->append);
  config.memory = 128u << 20;
  config.cpus = 1;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->serial);
  config.input = true;
  m = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  if (!m)
    goto out;
  vr_machine_start (m, &error);
  g_assert_no_error (error);

  end = g_get_monotonic_time () + KILL_TIMEOUT * G_USEC_PER_SEC;
  while (!log_has (f->serial, "\nready\n") && vr_machine_get_state (m) == VR_STATE_RUNNING
         && g_get_monotonic_time () < end)
    {
      g_main_context_iteration (ctx, FALSE);
      g_usleep (20000);
    }
  if (log_has (f->serial, "\nready\n"))
    {
      VrInputRouting routing;

      /* The guest's drivers are up: input goes to the virtio devices, the pointer absolute. */
      vr_machine_input_get_routing (m, &routing);
      g_assert_cmpint (routing.keyboard, ==, VR_INPUT_ROUTE_VIRTIO);
      g_assert_cmpint (routing.pointer, ==, VR_INPUT_ROUTE_VIRTIO);
      g_assert_true (routing.pointer_absolute);
      for (gsize i = 0; i < G_N_ELEMENTS (input_steps); i++)
        {
          vireo_step (m, &input_steps[i]);
          if (!wait_syn (f->serial, (unsigned) i + 1, NULL, NULL))
            {
              g_test_message ("no SYN_REPORT line for step %" G_GSIZE_FORMAT, i);
              g_test_fail ();
              break;
            }
        }
    }
  else
    {
      g_test_message ("the guest never printed \"ready\"");
      g_test_fail ();
    }

  end = g_get_monotonic_time () + STEP_TIMEOUT * G_USEC_PER_SEC;
  while (vr_machine_get_state (m) == VR_STATE_RUNNING && g_get_monotonic_time () < end)
    {
      g_main_context_iteration (ctx, FALSE);
      g_usleep (20000);
    }
  g_assert_cmpint (vr_machine_get_state (m), ==, VR_STATE_STOPPED);
  g_assert_cmpint (vr_machine_get_stop_reason (m), ==, VR_STOP_DEBUG_EXIT);
  g_assert_cmpint (vr_machine_get_exit_status (m), ==, 1);
  vr_machine_stop (m);

out:
  g_clear_pointer (&m, vr_machine_free);
  while (g_main_context_iteration (ctx, FALSE))
    ;
  g_main_context_pop_thread_default (ctx);
  serial = read_text (f->serial);
  dump ("vireo", "serial", serial);
  compare_output (cd, serial);
}

static void
test_virtio (gconstpointer user_data)
{
  const CaseData *cd = user_data;
  const VirtioCase *vc = cd->vc;
  const char *who = cd->engine == ENGINE_QEMU ? "qemu" : "vireo";
  g_autofree char *program = NULL;
  g_autoptr (GPtrArray) argv = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GString) console_out = g_string_new (NULL);
  g_autofree char *serial = NULL;
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  Files f = { 0 };
  gboolean timed_out;
  gint64 t0;
  int status;

  if (cd->engine == ENGINE_QEMU)
    {
      program = find_qemu ();
      if (!program)
        {
          g_test_skip ("qemu-system-x86_64 not found");
          return;
        }
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
    }

  files_init (&f);
  if (vc->kind == KIND_BLK && !prepare_disk (vc, &f))
    goto out;
  if (vc->kind == KIND_INPUT && cd->engine == ENGINE_VIREO)
    {
      vireo_input (cd, &f);
      goto out;
    }

  argv = build_argv (vc, cd->engine, program, &f);
  t0 = g_get_monotonic_time ();
  proc = spawn (argv, &f, vc->kind == KIND_CONSOLE);
  if (vc->kind == KIND_CONSOLE)
    console_interact (proc, console_out);
  else if (vc->kind == KIND_INPUT)
    qemu_input_interact (proc, &f);
  status = proc_wait (proc, KILL_TIMEOUT, &timed_out);
  g_test_message ("%s: exit status %d after %.1f s%s", who, status,
                  (g_get_monotonic_time () - t0) / 1e6, timed_out ? " (killed: timeout)" : "");

  serial = read_text (f.serial);
  err = read_text (f.err);
  out = vc->kind == KIND_CONSOLE ? g_strdup (console_out->str) : read_text (f.out);
  dump (who, "serial", serial);
  dump (who, "stdout", out);
  dump (who, "stderr", err);

  g_assert_false (timed_out);
  g_assert_cmpint (status, ==, 1);
  compare_output (cd, serial);

  switch (vc->kind)
    {
    case KIND_BLK:
      check_disk (vc, &f, serial);
      break;
    case KIND_CONSOLE:
      /* What a user at the console sees: the greeting, then the echo of the line. */
      g_assert_cmpstr (out, ==, CONSOLE_GREETING "echo: " CONSOLE_LINE "\n");
      break;
    default:
      break;
    }

out:
  files_clear (&f);
}

/* --------------------------------------------------------------- the cases */

#define BLK_HEAD(irq, ro)                                                                     \
  "blk test\nirq: " irq "\nfeatures: ok\nindirect descriptors: yes\nevent idx: yes\n"        \
  "read-only: " ro "\ncapacity: 2048 sectors\nserial: " BLK_SERIAL "\n"                       \
  "read: 64 sectors in 8 requests: ok\nread: last sector: ok\nread at the end: ioerr\n"       \
  "read across the end: ioerr\n"
#define BLK_RW(irq, irqs)                                                                     \
  BLK_HEAD (irq, "no") "write: 64 sectors in 8 requests: ok\nflush: ok\n"                    \
  "write: read back: ok\n" irqs "PASS\n"
#define BLK_RO(irq, irqs)                                                                     \
  BLK_HEAD (irq, "yes") "write to a read-only disk: ioerr\nread-only disk unchanged: ok\n"   \
  irqs "PASS\n"
#define IRQS_OK "interrupts: ok\n"
#define RNG(irq, irqs)                                                                        \
  "rng test\nirq: " irq "\nfeatures: ok\nread 0: 64 bytes\nread 1: 64 bytes\n"               \
  "read 2: 64 bytes\nread 3: 64 bytes\nrandom: ok\n" irqs "PASS\n"
#define CONSOLE(irq)                                                                          \
  "console test\nirq: " irq "\nfeatures: ok\nconsole: sent greeting\n"                        \
  "console: received: " CONSOLE_LINE "\nconsole: echoed\n" IRQS_OK "PASS\n"
#define INPUT_HEAD(irq)                                                                       \
  "input test\nirq: " irq "\nkeyboard: found\nkeyboard: keys esc 1 a enter leftshift: yes\n" \
  "keyboard: abs bits: no\ntablet: found\ntablet: abs x 0..32767\ntablet: abs y 0..32767\n"   \
  "tablet: buttons left right middle: yes\ntablet: wheel: yes\nready\n"

static VirtioCase cases[] = {
  { "/blk/raw", "blk", KIND_BLK, "irq=msix", "raw", FALSE, BLK_RW ("msix", IRQS_OK) },
  { "/blk/qcow2", "blk", KIND_BLK, "irq=intx", "qcow2", FALSE, BLK_RW ("intx", IRQS_OK) },
  { "/blk/readonly", "blk", KIND_BLK, "ro irq=poll", "raw", TRUE, BLK_RO ("poll", "") },
  { "/blk/vmdk", "blk", KIND_BLK, "ro irq=msix", "vmdk", TRUE, BLK_RO ("msix", IRQS_OK) },
  /* The guest clears the BARs first and assigns them itself, on QEMU too. */
  { "/blk/unassigned", "blk", KIND_BLK, "pci-unassign irq=msix", "raw", FALSE,
    BLK_RW ("msix", IRQS_OK) },
  { "/rng/poll", "rng", KIND_RNG, "irq=poll", NULL, FALSE, RNG ("poll", "") },
  { "/rng/intx", "rng", KIND_RNG, "irq=intx", NULL, FALSE, RNG ("intx", IRQS_OK) },
  { "/console/intx", "console", KIND_CONSOLE, "irq=intx", NULL, FALSE, CONSOLE ("intx") },
  { "/console/msix", "console", KIND_CONSOLE, "irq=msix", NULL, FALSE, CONSOLE ("msix") },
  /* The events are appended in main(). */
  { "/input/msix", "input", KIND_INPUT, "irq=msix", NULL, FALSE, INPUT_HEAD ("msix") },
  { "/input/intx", "input", KIND_INPUT, "irq=intx", NULL, FALSE, INPUT_HEAD ("intx") },
};

int
main (int argc, char **argv)
{
  g_autofree char *events = input_expected_events ();

  g_test_init (&argc, &argv, NULL);
  /* One failing case must not hide the others' results. */
  g_test_set_nonfatal_assertions ();
  oracle_outputs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      if (cases[i].kind == KIND_INPUT)
        cases[i].expect = g_strconcat (cases[i].expect, events, IRQS_OK "PASS\n", NULL);
      for (Engine e = ENGINE_QEMU; e <= ENGINE_VIREO; e++)
        {
          CaseData *cd = g_new0 (CaseData, 1);
          g_autofree char *path = NULL;

          cd->vc = &cases[i];
          cd->engine = e;
          path = g_strconcat (cases[i].path, e == ENGINE_QEMU ? "/qemu" : "/vireo", NULL);
          /* Two levels only, "/group/rest-of-it": GLib's -p does not select deeper trees. */
          for (char *c = strchr (path + 1, '/') + 1; *c; c++)
            if (*c == '/')
              *c = '-';
          g_test_add_data_func_full (path, cd, test_virtio, g_free);
        }
    }
  return g_test_run ();
}
