/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The ps2 guest (tests/guests/ps2.c): keyboard scan codes in set 1 and set 2 and PS/2 mouse
 * packets, on QEMU -M pc (the oracle; events through QMP input-send-event) and on Vireo
 * (events through the engine's vr_machine_input_*()). Vireo's machine has the virtio
 * keyboard and tablet too (config.input), which the guest never sets up: the input must fall
 * back to the i8042, and vr_machine_input_get_routing() must say so.
 *
 * The host sends one group of events at a time and waits for the guest's line for it (a
 * "kbd: …" or "aux: …" line per burst of bytes), so the output is deterministic. The
 * serial output ("info: " lines left out) must equal the expected text below and, for
 * Vireo, QEMU's.
 *
 * Environment: VIREO_GUEST_DIR, VIREO_QEMU as in test-guests.c.
 */

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/input-event-codes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vr-machine.h"

#define KILL_TIMEOUT  300       /* seconds: when we give up on a run */
#define STEP_TIMEOUT  60        /* seconds: for one group's line */

typedef enum
{
  ACT_END,
  ACT_KEY,                      /* code, down; qcode */
  ACT_BTN,                      /* code, down; QMP button name */
  ACT_REL,                      /* dx, dy */
  ACT_WHEEL,                    /* delta (±1); QMP wheel-up / wheel-down */
} ActKind;

typedef struct
{
  ActKind     kind;
  int         a;                /* KEY/BTN: evdev code; REL: dx; WHEEL: delta */
  int         b;                /* KEY/BTN: pressed; REL: dy */
  const char *qcode;
} Act;

typedef struct
{
  Act         acts[8];
  const char *line;             /* what the guest prints for it */
} Group;

#define KEY(code, q)  { ACT_KEY, code, 1, q }, { ACT_KEY, code, 0, q }
#define DOWN(code, q) { ACT_KEY, code, 1, q }
#define UP(code, q)   { ACT_KEY, code, 0, q }

/* The keyboard groups; the line is filled per phase (set 1 / set 2). */
typedef struct
{
  Act         acts[8];
  const char *set1;
  const char *set2;
} KeyGroup;

static const KeyGroup key_groups[] = {
  { { KEY (KEY_A, "a") }, "1e 9e", "1c f0 1c" },
  { { KEY (KEY_UP, "up") }, "e0 48 e0 c8", "e0 75 e0 f0 75" },
  { { KEY (KEY_RIGHTCTRL, "ctrl_r") }, "e0 1d e0 9d", "e0 14 e0 f0 14" },
  { { KEY (KEY_LEFTMETA, "meta_l") }, "e0 5b e0 db", "e0 1f e0 f0 1f" },
  { { KEY (KEY_RIGHTMETA, "meta_r") }, "e0 5c e0 dc", "e0 27 e0 f0 27" },
  { { KEY (KEY_COMPOSE, "compose") }, "e0 5d e0 dd", "e0 2f e0 f0 2f" },
  { { KEY (KEY_RIGHTALT, "alt_r") }, "e0 38 e0 b8", "e0 11 e0 f0 11" },
  { { KEY (KEY_KPENTER, "kp_enter"), KEY (KEY_KPSLASH, "kp_divide") },
    "e0 1c e0 9c e0 35 e0 b5", "e0 5a e0 f0 5a e0 4a e0 f0 4a" },
  { { KEY (KEY_LEFT, "left"), KEY (KEY_RIGHT, "right"), KEY (KEY_DOWN, "down") },
    "e0 4b e0 cb e0 4d e0 cd e0 50 e0 d0",
    "e0 6b e0 f0 6b e0 74 e0 f0 74 e0 72 e0 f0 72" },
  { { KEY (KEY_HOME, "home"), KEY (KEY_DELETE, "delete") },
    "e0 47 e0 c7 e0 53 e0 d3", "e0 6c e0 f0 6c e0 71 e0 f0 71" },
  { { KEY (KEY_SYSRQ, "print") }, "e0 2a e0 37 e0 b7 e0 aa",
    "e0 12 e0 7c e0 f0 7c e0 f0 12" },
  { { DOWN (KEY_LEFTSHIFT, "shift"), KEY (KEY_SYSRQ, "print"), UP (KEY_LEFTSHIFT, "shift") },
    "2a e0 37 e0 b7 aa", "12 e0 7c e0 f0 7c f0 12" },
  { { KEY (KEY_PAUSE, "pause") }, "e1 1d 45 e1 9d c5", "e1 14 77 e1 f0 14 f0 77" },
  { { DOWN (KEY_LEFTCTRL, "ctrl"), KEY (KEY_PAUSE, "pause"), UP (KEY_LEFTCTRL, "ctrl") },
    "1d e0 46 e0 c6 9d", "14 e0 7e e0 f0 7e f0 14" },
  { { KEY (KEY_MUTE, "audiomute"), KEY (KEY_VOLUMEUP, "volumeup") },
    "e0 20 e0 a0 e0 30 e0 b0", "e0 23 e0 f0 23 e0 32 e0 f0 32" },
  { { KEY (KEY_F1, "f1"), KEY (KEY_F12, "f12"), KEY (KEY_102ND, "less") },
    "3b bb 58 d8 56 d6", "05 f0 05 07 f0 07 61 f0 61" },
  { { KEY (KEY_KP7, "kp_7"), KEY (KEY_NUMLOCK, "num_lock") }, "47 c7 45 c5",
    "6c f0 6c 77 f0 77" },
  { { KEY (KEY_ESC, "esc") }, "01 81", "76 f0 76" },
};

static const Group mouse_groups[] = {
  { { { ACT_REL, 10, 5, NULL } }, "28 0a fb 00" },
  { { { ACT_REL, -20, -7, NULL } }, "18 ec 07 00" },
  { { { ACT_BTN, BTN_LEFT, 1, "left" } }, "09 00 00 00" },
  { { { ACT_BTN, BTN_LEFT, 0, "left" } }, "08 00 00 00" },
  { { { ACT_BTN, BTN_RIGHT, 1, "right" } }, "0a 00 00 00" },
  { { { ACT_REL, 3, 0, NULL } }, "0a 03 00 00" },
  { { { ACT_BTN, BTN_RIGHT, 0, "right" } }, "08 00 00 00" },
  { { { ACT_BTN, BTN_MIDDLE, 1, "middle" } }, "0c 00 00 00" },
  { { { ACT_BTN, BTN_MIDDLE, 0, "middle" } }, "08 00 00 00" },
  { { { ACT_BTN, BTN_SIDE, 1, "side" } }, "08 00 00 10" },
  { { { ACT_BTN, BTN_SIDE, 0, "side" } }, "08 00 00 00" },
  { { { ACT_BTN, BTN_EXTRA, 1, "extra" } }, "08 00 00 20" },
  { { { ACT_BTN, BTN_EXTRA, 0, "extra" } }, "08 00 00 00" },
  { { { ACT_WHEEL, 1, 0, "wheel-up" } }, "08 00 00 0f" },
  { { { ACT_WHEEL, -1, 0, "wheel-down" } }, "08 00 00 01" },
  { { { ACT_REL, -100, 100, NULL } }, "38 9c 9c 00" },
};

#define HEAD                                                                                  \
  "ps2 test\ncontroller self-test: 55\nkeyboard port test: 00\naux port test: 00\n"           \
  "command byte: 44\nkeyboard reset: fa aa\nkeyboard id: fa ab 41\n"                          \
  "scan code set: fa fa 41\nleds: fa fa\nkeyboard enable: fa\nmouse reset: fa aa 00\n"        \
  "mouse rates: fa fa fa fa fa fa\nmouse id: fa 03\nmouse rates: fa fa fa fa fa fa\n"         \
  "mouse id: fa 04\nmouse enable: fa\nready set1\n"
#define SET2_HEAD "keyboard id: fa ab 83\nscan code set: fa fa 02\nready set2\n"

typedef enum
{
  ENGINE_QEMU,
  ENGINE_VIREO,
} Engine;

typedef struct
{
  char *dir;
  char *serial;
  char *err;
  char *qmp;
} Files;

typedef struct
{
  int   fd;
  FILE *in;
} Qmp;

/* The sender of one run: QMP or the engine. */
typedef struct
{
  Engine     engine;
  Qmp        qmp;
  VrMachine *machine;
} Sender;

static char *expected_output;
static char *oracle_output;

/* ---- helpers ------------------------------------------------------------------------------- */

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
read_text (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!path || !g_file_get_contents (path, &text, &len, NULL))
    return g_strdup ("");
  return g_utf8_make_valid (text, len);
}

static void
dump (const char *who, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (int i = 0; lines[i]; i++)
    if (lines[i][0])
      g_test_message ("%s| %s", who, lines[i]);
}

/* No "info: " lines, no empty ones, no '\r'. */
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

/* Complete "kbd: " and "aux: " lines in the log. */
static unsigned
count_input_lines (const char *text)
{
  unsigned n = 0;
  const char *p = text, *nl;

  while ((nl = strchr (p, '\n')))
    {
      if (g_str_has_prefix (p, "kbd: ") || g_str_has_prefix (p, "aux: "))
        n++;
      p = nl + 1;
    }
  return n;
}

static char *
build_expected (void)
{
  GString *s = g_string_new (HEAD);

  for (gsize i = 0; i < G_N_ELEMENTS (key_groups); i++)
    g_string_append_printf (s, "kbd: %s\n", key_groups[i].set1);
  g_string_append (s, SET2_HEAD);
  for (gsize i = 0; i < G_N_ELEMENTS (key_groups); i++)
    g_string_append_printf (s, "kbd: %s\n", key_groups[i].set2);
  g_string_append (s, "ready mouse\n");
  for (gsize i = 0; i < G_N_ELEMENTS (mouse_groups); i++)
    g_string_append_printf (s, "aux: %s\n", mouse_groups[i].line);
  g_string_append (s, "kbd: 01 81\nPASS\n");
  return g_string_free (s, FALSE);
}

/* ---- QMP ----------------------------------------------------------------------------------- */

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

/* ---- sending ------------------------------------------------------------------------------- */

static void
qmp_event (GString *s, const Act *a)
{
  if (s->len > 1)
    g_string_append_c (s, ',');
  switch (a->kind)
    {
    case ACT_KEY:
      g_string_append_printf (s, "{\"type\":\"key\",\"data\":{\"down\":%s,"
                              "\"key\":{\"type\":\"qcode\",\"data\":\"%s\"}}}",
                              a->b ? "true" : "false", a->qcode);
      break;
    case ACT_BTN:
      g_string_append_printf (s, "{\"type\":\"btn\",\"data\":{\"down\":%s,\"button\":\"%s\"}}",
                              a->b ? "true" : "false", a->qcode);
      break;
    case ACT_REL:
      g_string_append_printf (s, "{\"type\":\"rel\",\"data\":{\"axis\":\"x\",\"value\":%d}},"
                              "{\"type\":\"rel\",\"data\":{\"axis\":\"y\",\"value\":%d}}",
                              a->a, a->b);
      break;
    case ACT_WHEEL:
      /* QEMU acts on a wheel "button" press only. */
      g_string_append_printf (s, "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"%s\"}}",
                              a->qcode);
      break;
    case ACT_END:
      g_assert_not_reached ();
    }
}

static gboolean
send_group (Sender *snd, const Act *acts)
{
  if (snd->engine == ENGINE_QEMU)
    {
      g_autoptr (GString) s = g_string_new ("[");
      g_autofree char *cmd = NULL;

      for (const Act *a = acts; a->kind != ACT_END; a++)
        qmp_event (s, a);
      g_string_append_c (s, ']');
      cmd = g_strdup_printf ("{\"execute\":\"input-send-event\",\"arguments\":{\"events\":%s}}",
                             s->str);
      return qmp_command (&snd->qmp, cmd);
    }

  for (const Act *a = acts; a->kind != ACT_END; a++)
    switch (a->kind)
      {
      case ACT_KEY:
        vr_machine_input_key (snd->machine, (unsigned) a->a, a->b);
        break;
      case ACT_BTN:
        vr_machine_input_button (snd->machine, (unsigned) a->a, a->b);
        break;
      case ACT_REL:
        vr_machine_input_rel (snd->machine, a->a, a->b);
        break;
      case ACT_WHEEL:
        vr_machine_input_wheel (snd->machine, a->a);
        break;
      case ACT_END:
        break;
      }
  return TRUE;
}

typedef gboolean (*AliveFunc) (gpointer data);

static gboolean
wait_for (const char *log, const char *needle, unsigned lines, AliveFunc alive, gpointer data)
{
  gint64 end = g_get_monotonic_time () + (needle ? KILL_TIMEOUT : STEP_TIMEOUT) * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *text = read_text (log);

      if (needle ? strstr (text, needle) != NULL : count_input_lines (text) >= lines)
        return TRUE;
      if (g_get_monotonic_time () > end || !alive (data))
        return FALSE;
      g_usleep (20000);
    }
}

/* The whole interaction: waits for each phase's "ready" line, then sends its groups. */
static void
interact (Sender *snd, const char *log, AliveFunc alive, gpointer data)
{
  static const char *const phases[] = { "\nready set1\n", "\nready set2\n", "\nready mouse\n" };
  static const Act esc[] = { KEY (KEY_ESC, "esc"), { ACT_END } };
  unsigned lines = 0;

  for (gsize p = 0; p < G_N_ELEMENTS (phases); p++)
    {
      gsize n = p < 2 ? G_N_ELEMENTS (key_groups) : G_N_ELEMENTS (mouse_groups) + 1;

      if (!wait_for (log, phases[p], 0, alive, data))
        {
          g_test_message ("the guest never got ready for phase %" G_GSIZE_FORMAT, p);
          g_test_fail ();
          return;
        }
      if (snd->engine == ENGINE_VIREO)
        {
          VrInputRouting r;

          /* The virtio devices are there, but the guest has no driver for them. */
          vr_machine_input_get_routing (snd->machine, &r);
          g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_PS2);
          g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_PS2);
          g_assert_false (r.pointer_absolute);
        }
      for (gsize i = 0; i < n; i++)
        {
          const Act *acts = p < 2 ? key_groups[i].acts
                            : i < G_N_ELEMENTS (mouse_groups) ? mouse_groups[i].acts : esc;

          if (!send_group (snd, acts) || !wait_for (log, NULL, ++lines, alive, data))
            {
              g_test_message ("phase %" G_GSIZE_FORMAT ", group %" G_GSIZE_FORMAT
                              ": no line from the guest", p, i);
              g_test_fail ();
              return;
            }
        }
    }
}

/* ---- the runs ------------------------------------------------------------------------------ */

static gboolean
proc_alive (gpointer data)
{
  return g_subprocess_get_identifier (G_SUBPROCESS (data)) != NULL;
}

static gboolean
machine_alive (gpointer data)
{
  return vr_machine_get_state (data) == VR_STATE_RUNNING;
}

static void
files_init (Files *f)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("vireo-ps2-XXXXXX", &error);
  g_assert_no_error (error);
  f->serial = g_build_filename (f->dir, "serial.log", NULL);
  f->err = g_build_filename (f->dir, "stderr.log", NULL);
  f->qmp = g_build_filename (f->dir, "qmp.sock", NULL);
}

static void
files_clear (Files *f)
{
  g_autoptr (GDir) d = g_dir_open (f->dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (f->dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->serial);
  g_free (f->err);
  g_free (f->qmp);
}

static char *
run_qemu (const char *qemu, Files *f)
{
  g_autofree char *kernel = g_strdup_printf ("%s/ps2-pvh.elf", guest_dir ());
  g_autofree char *serial = g_strdup_printf ("file:%s", f->serial);
  g_autofree char *qmp = g_strdup_printf ("unix:%s,server=on,wait=off", f->qmp);
  const char *argv[] = {
    qemu, "-enable-kvm", "-nodefaults", "-no-user-config", "-display", "none", "-M", "pc",
    "-m", "128", "-smp", "1", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4",
    "-serial", serial, "-kernel", kernel, "-qmp", qmp, NULL,
  };
  g_autoptr (GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv);
  Sender snd = { ENGINE_QEMU, { -1, NULL }, NULL };
  gint64 end;

  g_test_message ("run: %s", cmd);
  g_subprocess_launcher_set_stdin_file_path (l, "/dev/null");
  g_subprocess_launcher_set_stderr_file_path (l, f->err);
  proc = g_subprocess_launcher_spawnv (l, argv, &error);
  g_assert_no_error (error);
  if (!proc)
    return g_strdup ("");

  if (wait_for (f->serial, "\nready set1\n", 0, proc_alive, proc)
      && qmp_connect (&snd.qmp, f->qmp))
    interact (&snd, f->serial, proc_alive, proc);
  else
    {
      g_test_message ("no QMP connection, or the guest never got ready");
      g_test_fail ();
    }
  qmp_close (&snd.qmp);

  end = g_get_monotonic_time () + STEP_TIMEOUT * G_USEC_PER_SEC;
  while (proc_alive (proc) && g_get_monotonic_time () < end)
    g_usleep (20000);
  if (proc_alive (proc))
    {
      g_test_message ("QEMU did not exit: killed");
      g_subprocess_force_exit (proc);
      g_test_fail ();
    }
  g_subprocess_wait (proc, NULL, NULL);
  if (g_subprocess_get_if_exited (proc))
    g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
  {
    g_autofree char *err = read_text (f->err);
    dump ("qemu stderr", err);
  }
  return read_text (f->serial);
}

static char *
run_vireo (Files *f)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  VrMachine *m;
  VrMachineConfig config;
  Sender snd = { ENGINE_VIREO, { -1, NULL }, NULL };
  gint64 end;

  g_main_context_push_thread_default (ctx);
  vr_machine_config_init (&config);
  config.kernel = g_strdup_printf ("%s/ps2.elf", guest_dir ());
  config.memory = 128u << 20;
  config.cpus = 1;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f->serial);
  config.input = true;
  m = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);
  if (m && vr_machine_start (m, &error))
    {
      snd.machine = m;
      interact (&snd, f->serial, machine_alive, m);
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
    }
  g_assert_no_error (error);
  g_clear_pointer (&m, vr_machine_free);
  while (g_main_context_iteration (ctx, FALSE))
    ;
  g_main_context_pop_thread_default (ctx);
  return read_text (f->serial);
}

static void
test_ps2 (gconstpointer data)
{
  Engine engine = GPOINTER_TO_INT (data);
  g_autofree char *serial = NULL;
  g_autofree char *got = NULL;
  Files f = { 0 };

  if (engine == ENGINE_QEMU)
    {
      const char *q = g_getenv ("VIREO_QEMU");
      g_autofree char *qemu = q ? g_strdup (q) : g_find_program_in_path ("qemu-system-x86_64");

      if (!qemu || !*qemu)
        {
          g_test_skip ("qemu-system-x86_64 not found");
          return;
        }
      files_init (&f);
      serial = run_qemu (qemu, &f);
    }
  else
    {
      files_init (&f);
      serial = run_vireo (&f);
    }
  dump (engine == ENGINE_QEMU ? "qemu" : "vireo", serial);
  got = normalise (serial);
  g_assert_cmpstr (got, ==, expected_output);
  if (engine == ENGINE_QEMU)
    oracle_output = g_strdup (got);
  else if (oracle_output)
    g_assert_cmpstr (got, ==, oracle_output);
  files_clear (&f);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_test_set_nonfatal_assertions ();
  expected_output = build_expected ();
  g_test_add_data_func ("/ps2/qemu", GINT_TO_POINTER (ENGINE_QEMU), test_ps2);
  g_test_add_data_func ("/ps2/vireo", GINT_TO_POINTER (ENGINE_VIREO), test_ps2);
  ret = g_test_run ();
  g_free (expected_output);
  g_free (oracle_output);
  return ret;
}
