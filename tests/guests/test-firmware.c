/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Firmware boot (suite 'firmware'): unmodified boot media through SeaBIOS, on Vireo and on
 * QEMU (the oracle) side by side, with the same firmware image (SEABIOS_DIR/bios.bin).
 *
 * The media are made at build time by firmware/make-media.sh (see there and
 * firmware/bootsect.S); qcow2 and VMDK copies of the MBR disk are made here with qemu-img.
 *
 *   /mbr/raw, /mbr/qcow2, /mbr/vmdk   boot-mbr.img on a virtio-blk disk: the boot sector
 *                                     prints through int 10h and on COM1, reads LBA 1 through
 *                                     int 13h and prints the magic string there, exits
 *                                     through the debug-exit port (status 33)
 *   /cd/eltorito                      boot-cd.iso in a virtio-scsi CD-ROM drive: the El
 *                                     Torito no-emulation image reads its own second 2048-byte
 *                                     sector through int 13h AH=42h (status 35)
 *   /grub/menu                        grub.iso (grub-mkrescue) reaches its menu: its entry's
 *                                     title on the serial console; on Vireo (through the
 *                                     engine's API) also on the screen, saved as
 *                                     firmware-grub-vireo.png in VIREO_TEST_LOG_DIR
 *   /bad/notboot-iso, /bad/empty-disk nothing to boot: "No bootable device" (Vireo: on
 *                                     stderr, then status 4 with --no-reboot when the firmware
 *                                     reboots; QEMU: on its debug console, then status 0)
 *   /bad/missing-firmware             vireo-run --firmware FILE with no such FILE: status 2
 *                                     and a message naming it
 *
 * The two engines of one case run at the same time (the build hosts' KVM emulates
 * instructions: SeaBIOS alone takes 5-20 s, GRUB 1-3 minutes).
 *
 * QEMU: qemu-system-x86_64 -enable-kvm -M pc -m 128 -bios SEABIOS -nodefaults
 *   -display none -serial file:LOG -device isa-debug-exit,iobase=0xf4,iosize=4
 *   -device bochs-display -no-reboot -boot reboot-timeout=5000
 *   -chardev file,id=dbg,path=DBG -device isa-debugcon,iobase=0x402,chardev=dbg
 *   disk: -drive file=F,if=none,id=d0,format=FMT -device virtio-blk-pci,drive=d0,bootindex=1
 *   CD:   -device virtio-scsi-pci -drive file=F,if=none,id=cd,media=cdrom,format=raw
 *         -device scsi-cd,drive=cd,bootindex=0
 * Vireo: vireo-run --firmware seabios --memory 128M --serial file:LOG --display std
 *   --no-reboot --timeout 120 (--disk F,format=FMT --boot disk | --cdrom F --boot cd),
 *   with G_MESSAGES_DEBUG=vireo-engine so that SeaBIOS's debug console is in its log.
 *
 * Environment: VIREO_RUN, VIREO_GUEST_DIR (where the media are), VIREO_QEMU (empty: no
 * oracle) as in test-guests.c; VIREO_TEST_LOG_DIR for the screenshot.
 */

#include "config.h"

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <zlib.h>

#include "vr-machine.h"

#define VIREO_TIMEOUT  120      /* seconds: what vireo-run is told */
#define KILL_TIMEOUT   240      /* seconds: when we give up on a child */
#define GRUB_WAIT      420      /* seconds: until GRUB's menu is on the serial console */
#define SCREEN_WAIT    60       /* seconds: then until the screen shows it */

#define SEABIOS        SEABIOS_DIR "/bios.bin"
#define GRUB_TITLE     "Vireo firmware test"

/* The boot sector's exit values (bootsect.S), as the host sees them: (value << 1) | 1. */
#define STATUS_MBR     ((0x10 << 1) | 1)
#define STATUS_CD      ((0x11 << 1) | 1)

#define MBR_OUTPUT                                                                           \
  "Vireo MBR boot sector\ndrive: 80\nread: ext\nmagic: VIREO-MBR-LBA1-MAGIC\n"
#define CD_OUTPUT                                                                            \
  "Vireo El Torito boot image\ndrive: e0\nread: ext\nmagic: VIREO-CD-SECTOR-MAGIC\n"

typedef enum
{
  MEDIUM_DISK,
  MEDIUM_CD,
} MediumKind;

typedef struct
{
  MediumKind  kind;
  const char *file;       /* in VIREO_GUEST_DIR */
  const char *format;     /* "raw", or what qemu-img makes of the file first */
  int         qemu_status;
  int         vireo_status;
  const char *expect;     /* the serial output, normalised; NULL: none at all */
  gboolean    no_boot;    /* "No bootable device" expected */
} BootCase;

/* One engine's run of one case. */
typedef struct
{
  const char  *who;
  GSubprocess *proc;
  char        *serial_path;
  char        *debugcon_path;   /* QEMU */
  const char  *stop_at;         /* force the child out once its serial log holds this */
  gint64       started;
  gint64       deadline;
  gboolean     done;
  gboolean     timed_out;
  gboolean     stopped;         /* by us, after stop_at */
  GBytes      *out;
  GBytes      *err;
  int          status;          /* -1: killed by a signal */
  double       seconds;
  char        *serial;
  char        *debugcon;
  char        *errtext;
} Run;

/* ------------------------------------------------------------------------- helpers */

static const char *
media_dir (void)
{
  const char *d = g_getenv ("VIREO_GUEST_DIR");

  if (d && *d)
    return d;
  d = g_getenv ("G_TEST_BUILDDIR");
  return d && *d ? d : ".";
}

static const char *
log_dir (void)
{
  const char *d = g_getenv ("VIREO_TEST_LOG_DIR");

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

static char *
find_vireo_run (void)
{
  const char *v = g_getenv ("VIREO_RUN");

  return v && *v ? g_strdup (v) : NULL;
}

static char *
read_text (const char *path)
{
  char *data = NULL;
  gsize len = 0;
  char *text;

  if (!path || !g_file_get_contents (path, &data, &len, NULL))
    return g_strdup ("");
  text = g_utf8_make_valid (data, (gssize) len);
  g_free (data);
  return text;
}

static char *
bytes_to_string (GBytes *b)
{
  gsize len = 0;
  const char *data = b ? g_bytes_get_data (b, &len) : NULL;

  return g_utf8_make_valid (data ? data : "", (gssize) len);
}

/* Lines without '\r' and without empty lines: what the boot sector printed. */
static char *
normalise (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *s = g_string_new (NULL);

  for (int i = 0; lines[i]; i++)
    {
      g_strdelimit (lines[i], "\r", ' ');
      g_strchomp (lines[i]);
      if (!lines[i][0])
        continue;
      g_string_append (s, lines[i]);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

/* GRUB's serial console is a VT100: drop the escape sequences, for the log. */
static char *
strip_escapes (const char *text)
{
  GString *s = g_string_new (NULL);

  for (const char *p = text; *p; p++)
    {
      if (*p == '\033')
        {
          if (p[1] == '[')
            {
              /* CSI: parameters up to the final letter. */
              for (p += 2; *p && !g_ascii_isalpha (*p); p++)
                ;
            }
          else if (p[1])
            p++;
          if (!*p)
            break;
          g_string_append_c (s, ' ');
          continue;
        }
      if (*p == '\r')
        continue;
      g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}

static void
dump_lines (const char *prefix, const char *text, gboolean all)
{
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);

  for (int i = 0; lines[i]; i++)
    {
      g_strchomp (lines[i]);
      if (!lines[i][0])
        continue;
      /* SeaBIOS's debug console, through the engine's debug log: only when it matters. */
      if (!all && strstr (lines[i], "guest debug console: "))
        continue;
      g_test_message ("%s| %s", prefix, lines[i]);
    }
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* ------------------------------------------------------------------------ children */

static void
communicate_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_subprocess_communicate_finish (G_SUBPROCESS (source), res, &r->out, &r->err, &error))
    g_test_message ("%s: %s", r->who, error->message);
  r->seconds = (g_get_monotonic_time () - r->started) / 1e6;
  r->done = TRUE;
}

static void
run_start (Run *r, GPtrArray *argv, gboolean engine_debug)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr (GError) error = NULL;
  g_autofree char *cmd = NULL;

  g_ptr_array_add (argv, NULL);
  cmd = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("%s: %s", r->who, cmd);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE
                                        | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  if (engine_debug)
    g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", "vireo-engine", TRUE);
  r->started = g_get_monotonic_time ();
  r->deadline = r->started + (gint64) KILL_TIMEOUT * G_USEC_PER_SEC;
  r->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  if (!r->proc)
    {
      r->done = TRUE;
      return;
    }
  g_subprocess_communicate_async (r->proc, empty, NULL, communicate_cb, r);
}

/* One look at a running child: stop it when its serial log shows r->stop_at, kill it when
 * it overstays. */
static void
run_poll (Run *r)
{
  if (r->done || !r->proc)
    return;
  if (r->stop_at && !r->stopped)
    {
      g_autofree char *text = read_text (r->serial_path);

      if (strstr (text, r->stop_at))
        {
          g_test_message ("%s: \"%s\" after %.1f s: stopping it", r->who, r->stop_at,
                          (g_get_monotonic_time () - r->started) / 1e6);
          r->stopped = TRUE;
          g_subprocess_force_exit (r->proc);
          return;
        }
    }
  if (!r->timed_out && g_get_monotonic_time () > r->deadline)
    {
      g_test_message ("%s: still running after %.0f s: killing it", r->who,
                      (r->deadline - r->started) / 1e6);
      r->timed_out = TRUE;
      g_subprocess_force_exit (r->proc);
    }
}

static void
run_finish (Run *r)
{
  if (r->proc)
    {
      g_subprocess_wait (r->proc, NULL, NULL);
      r->status = g_subprocess_get_if_exited (r->proc) ? g_subprocess_get_exit_status (r->proc)
                                                       : -1;
    }
  else
    r->status = -1;
  r->serial = read_text (r->serial_path);
  r->debugcon = read_text (r->debugcon_path);
  r->errtext = bytes_to_string (r->err);
  g_test_message ("%s: exit status %d after %.1f s%s%s", r->who, r->status, r->seconds,
                  r->timed_out ? " (killed: timeout)" : "", r->stopped ? " (stopped)" : "");
}

/* Runs the children of one case at the same time, until all have exited. */
static void
run_all (Run **runs, guint n)
{
  for (;;)
    {
      gboolean all_done = TRUE;

      for (guint i = 0; i < n; i++)
        {
          run_poll (runs[i]);
          all_done &= runs[i]->done;
        }
      if (all_done)
        break;
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (50 * 1000);
    }
  for (guint i = 0; i < n; i++)
    run_finish (runs[i]);
}

static void
run_clear (Run *r)
{
  g_clear_object (&r->proc);
  g_clear_pointer (&r->out, g_bytes_unref);
  g_clear_pointer (&r->err, g_bytes_unref);
  g_clear_pointer (&r->serial_path, g_free);
  g_clear_pointer (&r->debugcon_path, g_free);
  g_clear_pointer (&r->serial, g_free);
  g_clear_pointer (&r->debugcon, g_free);
  g_clear_pointer (&r->errtext, g_free);
}

static void
add (GPtrArray *argv, const char *arg)
{
  g_ptr_array_add (argv, g_strdup (arg));
}

static GPtrArray *
qemu_argv (const char *qemu, Run *r)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  const char *fixed[] = {
    "-enable-kvm", "-M", "pc", "-m", "128", "-bios", SEABIOS, "-nodefaults", "-no-user-config",
    "-display", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    "-device", "bochs-display", "-no-reboot",
    /* SeaBIOS retries after "No bootable device" in 5 s, as on Vireo (QEMU: never). */
    "-boot", "reboot-timeout=5000",
  };

  add (argv, qemu);
  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    add (argv, fixed[i]);
  add (argv, "-serial");
  g_ptr_array_add (argv, g_strconcat ("file:", r->serial_path, NULL));
  add (argv, "-chardev");
  g_ptr_array_add (argv, g_strconcat ("file,id=dbg,path=", r->debugcon_path, NULL));
  add (argv, "-device");
  add (argv, "isa-debugcon,iobase=0x402,chardev=dbg");
  return argv;
}

static void
qemu_add_medium (GPtrArray *argv, MediumKind kind, const char *path, const char *format)
{
  add (argv, "-drive");
  if (kind == MEDIUM_CD)
    {
      g_ptr_array_add (argv, g_strdup_printf ("file=%s,if=none,id=cd,media=cdrom,format=raw",
                                              path));
      add (argv, "-device");
      add (argv, "virtio-scsi-pci");
      add (argv, "-device");
      add (argv, "scsi-cd,drive=cd,bootindex=0");
    }
  else
    {
      /* Vireo reads VMDK only; both get it read-only. */
      g_ptr_array_add (argv, g_strdup_printf ("file=%s,if=none,id=d0,format=%s%s", path, format,
                                              g_str_equal (format, "vmdk") ? ",readonly=on" : ""));
      add (argv, "-device");
      add (argv, "virtio-blk-pci,drive=d0,bootindex=1");
    }
}

static GPtrArray *
vireo_argv (const char *vireo_run, const char *firmware, Run *r)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  add (argv, vireo_run);
  add (argv, "--firmware");
  add (argv, firmware);
  add (argv, "--memory");
  add (argv, "128M");
  add (argv, "--serial");
  g_ptr_array_add (argv, g_strconcat ("file:", r->serial_path, NULL));
  add (argv, "--display");
  add (argv, "std");
  add (argv, "--no-reboot");
  add (argv, "--timeout");
  g_ptr_array_add (argv, g_strdup_printf ("%d", VIREO_TIMEOUT));
  return argv;
}

static void
vireo_add_medium (GPtrArray *argv, MediumKind kind, const char *path, const char *format)
{
  if (kind == MEDIUM_CD)
    {
      add (argv, "--cdrom");
      add (argv, path);
      add (argv, "--boot");
      add (argv, "cd");
    }
  else
    {
      add (argv, "--disk");
      g_ptr_array_add (argv, g_strdup_printf ("%s,format=%s%s", path, format,
                                              g_str_equal (format, "vmdk") ? ",readonly" : ""));
      add (argv, "--boot");
      add (argv, "disk");
    }
}

/* The medium's path, converted to bc->format in @dir when that is not raw; NULL (and the
 * test skipped) when it cannot be had. */
static char *
prepare_medium (const BootCase *bc, const char *dir)
{
  g_autofree char *src = g_build_filename (media_dir (), bc->file, NULL);
  g_autofree char *qemu_img = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *dst = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;

  if (!g_file_test (src, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *msg = g_strdup_printf ("%s was not built (make-media.sh needs xorriso, "
                                              "grub-mkrescue and grub-pc-bin)", src);
      g_test_skip (msg);
      return NULL;
    }
  if (g_str_equal (bc->format, "raw"))
    return g_steal_pointer (&src);

  qemu_img = find_qemu_img ();
  if (!qemu_img)
    {
      g_test_skip ("qemu-img not found (Debian: qemu-utils)");
      return NULL;
    }
  dst = g_strdup_printf ("%s/medium.%s", dir, bc->format);
  {
    const char *argv[] = { qemu_img, "convert", "-f", "raw", "-O", bc->format, src, dst, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                  &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_test_message ("qemu-img convert: %s%s", out ? out : "", err ? err : "");
      g_test_fail ();
      return NULL;
    }
  return g_steal_pointer (&dst);
}

/* A line of vireo-run's own on stderr (not SeaBIOS's debug console in the engine's log)
 * that says so. */
static gboolean
has_no_bootable_line (const char *err)
{
  g_auto (GStrv) lines = g_strsplit (err, "\n", -1);

  for (int i = 0; lines[i]; i++)
    if (strstr (lines[i], "No bootable device") && !strstr (lines[i], "guest debug console: "))
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------------ the boot cases */

static void
test_boot (gconstpointer data)
{
  const BootCase *bc = data;
  g_autofree char *qemu = find_qemu ();
  g_autofree char *vireo_run = find_vireo_run ();
  g_autofree char *dir = g_dir_make_tmp ("vireo-firmware-XXXXXX", NULL);
  g_autofree char *medium = NULL;
  g_autofree char *want = bc->expect ? g_strdup (bc->expect) : g_strdup ("");
  Run q = { .who = "qemu" }, v = { .who = "vireo" };
  Run *runs[2];
  guint n = 0;

  g_assert_nonnull (dir);
  medium = prepare_medium (bc, dir);
  if (!medium)
    {
      remove_tree (dir);
      return;
    }
  if (!qemu)
    g_test_message ("no QEMU oracle (qemu_oracle disabled or qemu-system-x86_64 missing)");
  if (!vireo_run)
    g_test_message ("VIREO_RUN not set: no Vireo run");
  if (!qemu && !vireo_run)
    {
      g_test_skip ("neither QEMU nor vireo-run");
      remove_tree (dir);
      return;
    }

  if (qemu)
    {
      g_autoptr (GPtrArray) argv = NULL;

      q.serial_path = g_build_filename (dir, "qemu-serial.log", NULL);
      q.debugcon_path = g_build_filename (dir, "qemu-debugcon.log", NULL);
      argv = qemu_argv (qemu, &q);
      qemu_add_medium (argv, bc->kind, medium, bc->format);
      run_start (&q, argv, FALSE);
      runs[n++] = &q;
    }
  if (vireo_run)
    {
      g_autoptr (GPtrArray) argv = NULL;

      v.serial_path = g_build_filename (dir, "vireo-serial.log", NULL);
      argv = vireo_argv (vireo_run, "seabios", &v);
      vireo_add_medium (argv, bc->kind, medium, bc->format);
      run_start (&v, argv, TRUE);
      runs[n++] = &v;
    }
  run_all (runs, n);

  for (guint i = 0; i < n; i++)
    {
      Run *r = runs[i];
      g_autofree char *got = normalise (r->serial);
      int want_status = r == &q ? bc->qemu_status : bc->vireo_status;

      g_test_message ("%s: serial output:", r->who);
      dump_lines (r->who, got, TRUE);
      g_assert_false (r->timed_out);
      g_assert_cmpint (r->status, ==, want_status);
      g_assert_cmpstr (got, ==, want);
      if (bc->no_boot)
        {
          if (r == &q)
            g_assert_nonnull (strstr (r->debugcon, "No bootable device"));
          else
            g_assert_true (has_no_bootable_line (r->errtext));
        }
      if (r == &v && qemu)
        {
          g_autofree char *oracle = normalise (q.serial);
          g_assert_cmpstr (got, ==, oracle);
        }
    }

  /* The logs, for whoever reads a failure: vireo-run's stderr (with SeaBIOS's debug console
   * when something failed), QEMU's debug console. */
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *prefix = g_strconcat (runs[i]->who, " stderr", NULL);

      dump_lines (prefix, runs[i]->errtext, g_test_failed ());
      if (g_test_failed () && runs[i]->debugcon && runs[i]->debugcon[0])
        {
          g_autofree char *p2 = g_strconcat (runs[i]->who, " debugcon", NULL);
          dump_lines (p2, runs[i]->debugcon, TRUE);
        }
    }

  run_clear (&q);
  run_clear (&v);
  remove_tree (dir);
}

static const BootCase mbr_raw = {
  MEDIUM_DISK, "boot-mbr.img", "raw", STATUS_MBR, STATUS_MBR, MBR_OUTPUT, FALSE
};
static const BootCase mbr_qcow2 = {
  MEDIUM_DISK, "boot-mbr.img", "qcow2", STATUS_MBR, STATUS_MBR, MBR_OUTPUT, FALSE
};
static const BootCase mbr_vmdk = {
  MEDIUM_DISK, "boot-mbr.img", "vmdk", STATUS_MBR, STATUS_MBR, MBR_OUTPUT, FALSE
};
static const BootCase cd_eltorito = {
  MEDIUM_CD, "boot-cd.iso", "raw", STATUS_CD, STATUS_CD, CD_OUTPUT, FALSE
};
/* Nothing to boot: SeaBIOS says so, waits 5 s and reboots; with -no-reboot QEMU exits 0,
 * vireo-run --no-reboot 4. */
static const BootCase bad_notboot = {
  MEDIUM_CD, "notboot.iso", "raw", 0, 4, NULL, TRUE
};
static const BootCase bad_empty = {
  MEDIUM_DISK, "empty.img", "raw", 0, 4, NULL, TRUE
};

/* --------------------------------------------------------------------------- GRUB */

static void
put_be32 (guint8 *p, guint32 v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static void
png_chunk (GByteArray *png, const char *type, const guint8 *data, guint32 len)
{
  guint8 head[8];
  guint8 tail[4];
  uLong crc;

  put_be32 (head, len);
  memcpy (head + 4, type, 4);
  g_byte_array_append (png, head, 8);
  if (len)
    g_byte_array_append (png, data, len);
  crc = crc32 (0, head + 4, 4);
  if (len)
    crc = crc32 (crc, data, len);
  put_be32 (tail, (guint32) crc);
  g_byte_array_append (png, tail, 4);
}

/* A PNG (8-bit RGB) of an XRGB8888 frame. */
static gboolean
save_png (const guint8 *pixels, const VrDisplayMode *mode, const char *path)
{
  static const guint8 signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  g_autoptr (GByteArray) png = g_byte_array_new ();
  g_autofree guint8 *raw = NULL;
  g_autofree guint8 *packed = NULL;
  guint8 ihdr[13];
  gsize row = 1 + (gsize) mode->width * 3;
  gsize raw_len = row * mode->height;
  uLongf packed_len = compressBound (raw_len);

  raw = g_malloc (raw_len);
  for (guint32 y = 0; y < mode->height; y++)
    {
      const guint8 *src = pixels + (gsize) y * mode->width * 4;
      guint8 *dst = raw + y * row;

      *dst++ = 0;                       /* filter: none */
      for (guint32 x = 0; x < mode->width; x++, src += 4)
        {
          *dst++ = src[2];
          *dst++ = src[1];
          *dst++ = src[0];
        }
    }
  packed = g_malloc (packed_len);
  if (compress2 (packed, &packed_len, raw, raw_len, 6) != Z_OK)
    return FALSE;

  put_be32 (ihdr, mode->width);
  put_be32 (ihdr + 4, mode->height);
  ihdr[8] = 8;                          /* bit depth */
  ihdr[9] = 2;                          /* colour type: RGB */
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  g_byte_array_append (png, signature, sizeof signature);
  png_chunk (png, "IHDR", ihdr, sizeof ihdr);
  png_chunk (png, "IDAT", packed, (guint32) packed_len);
  png_chunk (png, "IEND", NULL, 0);
  return g_file_set_contents (path, (const char *) png->data, (gssize) png->len, NULL);
}

/* How many pixels differ from the top left one (the background), from row @y0 down. */
static gsize
count_foreground (const guint8 *pixels, const VrDisplayMode *mode, guint32 y0)
{
  const guint32 *p = (const guint32 *) pixels;
  guint32 bg = p[0] & 0xffffff;
  gsize n = 0;

  for (gsize i = (gsize) y0 * mode->width; i < (gsize) mode->width * mode->height; i++)
    n += (p[i] & 0xffffff) != bg;
  return n;
}

typedef struct
{
  gboolean stopped;
  VrStopReason reason;
  gboolean boot_failed;
} GrubEvents;

static void
grub_event (VrMachine *machine, const VrEvent *event, gpointer user_data)
{
  GrubEvents *e = user_data;

  if (event->type == VR_EVENT_POWERED_OFF)
    {
      e->stopped = TRUE;
      e->reason = event->reason;
    }
  else if (event->type == VR_EVENT_BOOT_FAILED)
    e->boot_failed = TRUE;
  else if (event->type == VR_EVENT_GUEST_ERROR || event->type == VR_EVENT_RESET)
    g_test_message ("vireo: event %d: %s", event->type, event->message ? event->message : "");
}

/* Vireo's side of the GRUB case, in this process: the engine's API gives the screen. */
static VrMachine *
grub_machine_new (const char *iso, const char *log, GError **error)
{
  VrMachineConfig config;
  VrMachine *m;

  vr_machine_config_init (&config);
  config.name = g_strdup ("firmware-grub");
  config.memory = 128u << 20;
  config.cpus = 1;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (log);
  config.display = VR_DISPLAY_DEVICE_BOCHS;
  config.on_reset = VR_RESET_STOP;
  config.firmware = g_strdup (SEABIOS);
  config.cdrom = g_strdup (iso);
  config.boot_order[0] = VR_BOOT_DEVICE_CDROM;
  m = vr_machine_new (&config, error);
  vr_machine_config_clear (&config);
  return m;
}

/*
 * Waits (main loop running) until GRUB's menu is on the screen and the picture has settled,
 * saves it as a PNG; *@all gets the number of pixels that differ from the background, the
 * return value those below the first four text rows (16 pixels each). Before its menu,
 * GRUB's screen holds SeaBIOS's "Booting from DVD/CD..." and "Welcome to GRUB!" on the first
 * two rows only; the menu's frame starts on the fourth.
 */
static gsize
grub_screenshot (VrMachine *m, const char *name, gsize *all)
{
  VrDisplay *display = vr_machine_get_display (m);
  gint64 end = g_get_monotonic_time () + (gint64) SCREEN_WAIT * G_USEC_PER_SEC;
  g_autoptr (GBytes) pixels = NULL;
  g_autofree char *path = g_build_filename (log_dir (), name, NULL);
  VrDisplayMode mode = { 0 };
  gsize fg = 0, menu = 0, last = 0;
  guint same = 0;

  *all = 0;
  g_assert_nonnull (display);
  if (!display)
    return 0;
  for (;;)
    {
      g_clear_pointer (&pixels, g_bytes_unref);
      pixels = vr_display_snapshot (display, &mode);
      if (pixels)
        {
          fg = count_foreground (g_bytes_get_data (pixels, NULL), &mode, 0);
          menu = mode.height > 64 ? count_foreground (g_bytes_get_data (pixels, NULL), &mode, 64)
                                  : 0;
        }
      /* The menu is drawn character by character through the VGA BIOS: wait until it has
       * been the same for 2 s. */
      same = fg == last ? same + 1 : 0;
      last = fg;
      if ((menu > 0 && same >= 4) || g_get_monotonic_time () > end)
        break;
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (500 * 1000);
    }
  if (!pixels)
    {
      g_test_message ("vireo: no display mode set: no screenshot");
      return 0;
    }
  g_test_message ("vireo: screen %ux%u, %" G_GSIZE_FORMAT " pixels not background, %"
                  G_GSIZE_FORMAT " below the first four text rows", mode.width, mode.height, fg,
                  menu);
  if (save_png (g_bytes_get_data (pixels, NULL), &mode, path))
    g_test_message ("vireo: screenshot saved to %s", path);
  else
    g_test_message ("vireo: could not save %s", path);
  *all = fg;
  return menu;
}

static void
test_grub (void)
{
  g_autofree char *qemu = find_qemu ();
  g_autofree char *iso = g_build_filename (media_dir (), "grub.iso", NULL);
  g_autofree char *dir = g_dir_make_tmp ("vireo-firmware-XXXXXX", NULL);
  g_autofree char *vlog = NULL;
  g_autofree char *vtext = NULL;
  g_autoptr (GError) error = NULL;
  GrubEvents ev = { 0 };
  Run q = { .who = "qemu" };
  VrMachine *m = NULL;
  gint64 vstart, vend;
  gboolean vseen = FALSE;

  g_assert_nonnull (dir);
  if (!g_file_test (iso, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("grub.iso was not built (make-media.sh needs grub-mkrescue, grub-pc-bin "
                   "and xorriso)");
      remove_tree (dir);
      return;
    }

  if (qemu)
    {
      g_autoptr (GPtrArray) argv = NULL;

      q.serial_path = g_build_filename (dir, "qemu-serial.log", NULL);
      q.debugcon_path = g_build_filename (dir, "qemu-debugcon.log", NULL);
      q.stop_at = GRUB_TITLE;
      argv = qemu_argv (qemu, &q);
      qemu_add_medium (argv, MEDIUM_CD, iso, "raw");
      run_start (&q, argv, FALSE);
      q.deadline = q.started + (gint64) GRUB_WAIT * G_USEC_PER_SEC;
    }
  else
    g_test_message ("no QEMU oracle (qemu_oracle disabled or qemu-system-x86_64 missing)");

  vlog = g_build_filename (dir, "vireo-serial.log", NULL);
  m = grub_machine_new (iso, vlog, &error);
  g_assert_no_error (error);
  if (m)
    {
      vr_machine_set_event_func (m, NULL, grub_event, &ev, NULL);
      vr_machine_start (m, &error);
      g_assert_no_error (error);
    }
  vstart = g_get_monotonic_time ();
  vend = vstart + (gint64) GRUB_WAIT * G_USEC_PER_SEC;

  /* Both at once: QEMU is stopped by run_poll() at the title, Vireo here. */
  for (;;)
    {
      gboolean vireo_busy = m && !vseen && !ev.stopped && g_get_monotonic_time () < vend;

      if (qemu)
        run_poll (&q);
      if (vireo_busy)
        {
          g_autofree char *text = read_text (vlog);

          if (strstr (text, GRUB_TITLE))
            {
              vseen = TRUE;
              g_test_message ("vireo: \"%s\" after %.1f s", GRUB_TITLE,
                              (g_get_monotonic_time () - vstart) / 1e6);
            }
        }
      if (!vireo_busy && (!qemu || q.done))
        break;
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (100 * 1000);
    }
  if (qemu)
    run_finish (&q);

  /* Vireo: the menu on the serial console, and on the screen. */
  if (m)
    {
      gsize fg = 0, menu = 0;

      if (vseen)
        menu = grub_screenshot (m, "firmware-grub-vireo.png", &fg);
      else if (ev.stopped)
        g_test_message ("vireo: the machine stopped (%s) before GRUB's menu",
                        vr_stop_reason_to_string (ev.reason));
      else
        g_test_message ("vireo: no GRUB menu after %d s", GRUB_WAIT);
      if (!vseen)
        {
          g_autofree char *dump = vr_machine_dump_cpus (m);
          g_test_message ("vireo: CPU state:\n%s", dump);
        }
      vr_machine_stop (m);
      vtext = read_text (vlog);
      {
        g_autofree char *plain = strip_escapes (vtext);
        dump_lines ("vireo serial", plain, TRUE);
      }
      g_assert_false (ev.boot_failed);
      g_assert_true (vseen);
      g_assert_nonnull (strstr (vtext, "GNU GRUB"));
      /* The screenshot is not all one colour, and the menu is on it. */
      g_assert_cmpuint (fg, >, 0);
      g_assert_cmpuint (menu, >, 0);
      g_clear_pointer (&m, vr_machine_free);
    }

  if (qemu)
    {
      g_autofree char *plain = strip_escapes (q.serial);

      dump_lines ("qemu serial", plain, TRUE);
      if (g_test_failed () || !q.stopped)
        dump_lines ("qemu debugcon", q.debugcon, TRUE);
      g_assert_false (q.timed_out);
      g_assert_true (q.stopped);
      g_assert_nonnull (strstr (q.serial, GRUB_TITLE));
      g_assert_nonnull (strstr (q.serial, "GNU GRUB"));
    }

  while (g_main_context_iteration (NULL, FALSE))
    ;
  run_clear (&q);
  remove_tree (dir);
}

/* ----------------------------------------------------------------- missing firmware */

static void
test_missing_firmware (void)
{
  g_autofree char *vireo_run = find_vireo_run ();
  g_autofree char *dir = g_dir_make_tmp ("vireo-firmware-XXXXXX", NULL);
  g_autofree char *firmware = NULL;
  g_autofree char *disk = g_build_filename (media_dir (), "boot-mbr.img", NULL);
  g_autoptr (GPtrArray) argv = NULL;
  Run v = { .who = "vireo" };
  Run *runs[] = { &v };

  g_assert_nonnull (dir);
  if (!vireo_run)
    {
      g_test_skip ("VIREO_RUN not set");
      remove_tree (dir);
      return;
    }
  firmware = g_build_filename (dir, "no-such-bios.bin", NULL);
  v.serial_path = g_build_filename (dir, "vireo-serial.log", NULL);
  argv = vireo_argv (vireo_run, firmware, &v);
  vireo_add_medium (argv, MEDIUM_DISK, disk, "raw");
  run_start (&v, argv, FALSE);
  run_all (runs, 1);
  dump_lines ("vireo stderr", v.errtext, TRUE);

  g_assert_false (v.timed_out);
  g_assert_cmpint (v.status, ==, 2);
  /* The message names the file the user gave. */
  g_assert_nonnull (strstr (v.errtext, firmware));
  g_assert_cmpstr (v.serial, ==, "");
  g_assert_cmpfloat (v.seconds, <, 30);

  run_clear (&v);
  remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* One failing engine or case must not hide the others' results. */
  g_test_set_nonfatal_assertions ();

  g_test_add_data_func ("/mbr/raw", &mbr_raw, test_boot);
  g_test_add_data_func ("/mbr/qcow2", &mbr_qcow2, test_boot);
  g_test_add_data_func ("/mbr/vmdk", &mbr_vmdk, test_boot);
  g_test_add_data_func ("/cd/eltorito", &cd_eltorito, test_boot);
  g_test_add_func ("/grub/menu", test_grub);
  g_test_add_data_func ("/bad/notboot-iso", &bad_notboot, test_boot);
  g_test_add_data_func ("/bad/empty-disk", &bad_empty, test_boot);
  g_test_add_func ("/bad/missing-firmware", test_missing_firmware);

  return g_test_run ();
}
