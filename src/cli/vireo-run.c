/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * vireo-run: one machine, headless, from the command line. For scripts, tests and benchmarks.
 */

#include "config.h"

#include <glib-unix.h>
#include <glib.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vr-cpuid.h"
#include "vr-machine.h"

#ifdef HAVE_RUN_WINDOW
#include <glib/gi18n.h>
#include <gtk/gtk.h>

#include "vireo-run-window.h"
#endif

/* Exit statuses; odd values are the guest's debug-exit status ((value << 1) | 1). */
enum
{
  EXIT_POWERED_OFF  = 0,
  EXIT_ENGINE_ERROR = 2,
  EXIT_GUEST_RESET  = 4,
  EXIT_TRIPLE_FAULT = 6,
  EXIT_GUEST_ERROR  = 8,
  EXIT_TIMEOUT      = 124,
  EXIT_INTERRUPTED  = 130,
};

typedef struct
{
  GMainLoop *loop;
  VrMachine *machine;
  int        status;
  bool       done;
  char      *snapshot_dir;  /* --snapshot-save */
  unsigned   n_snapshots;
} Run;

static void
finish (Run *run,
        int  status)
{
  if (run->done)
    return;
  run->done = true;
  run->status = status;
  g_main_loop_quit (run->loop);
}

/* --snapshot-save DIR: the first snapshot goes to DIR, the next ones to DIR-2, DIR-3 … */
static void
save_snapshot (Run *run)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  gint64 t0;

  if (run->snapshot_dir == NULL)
    {
      g_printerr ("vireo-run: a snapshot was asked for, but no --snapshot-save was given\n");
      return;
    }
  run->n_snapshots++;
  dir = run->n_snapshots == 1 ? g_strdup (run->snapshot_dir)
                              : g_strdup_printf ("%s-%u", run->snapshot_dir, run->n_snapshots);
  t0 = g_get_monotonic_time ();
  if (vr_machine_save_snapshot (run->machine, dir, NULL, &error))
    g_printerr ("vireo-run: snapshot saved to %s in %.1f ms\n", dir,
                (double) (g_get_monotonic_time () - t0) / 1000.0);
  else
    g_printerr ("vireo-run: %s\n", error->message);
}

static void
on_event (VrMachine     *machine,
          const VrEvent *event,
          gpointer       user_data)
{
  Run *run = user_data;

  switch (event->type)
    {
    case VR_EVENT_GUEST_ERROR:
      g_printerr ("vireo-run: guest error: %s\n", event->message ? event->message : "unknown");
      break;
    case VR_EVENT_RESET:
      g_debug ("guest reset: %s", event->message ? event->message : "");
      break;
    case VR_EVENT_POWERED_OFF:
      switch (event->reason)
        {
        case VR_STOP_POWER_OFF:    finish (run, EXIT_POWERED_OFF); break;
        case VR_STOP_DEBUG_EXIT:   finish (run, event->exit_status & 0xff); break;
        case VR_STOP_RESET:        finish (run, EXIT_GUEST_RESET); break;
        case VR_STOP_TRIPLE_FAULT: finish (run, EXIT_TRIPLE_FAULT); break;
        case VR_STOP_GUEST_ERROR:  finish (run, EXIT_GUEST_ERROR); break;
        case VR_STOP_REQUESTED:
        case VR_STOP_NONE:
        default:
          break;
        }
      break;
    case VR_EVENT_SNAPSHOT_REQUESTED:
      save_snapshot (run);
      break;
    case VR_EVENT_BOOT_FAILED:
      g_printerr ("vireo-run: the firmware found nothing to boot: %s\n",
                  event->message ? event->message : "No bootable device.");
      break;
    case VR_EVENT_CDROM_CHANGED:
      {
        g_autofree char *medium = vr_machine_get_cdrom (machine);

        g_printerr ("vireo-run: CD-ROM: %s\n", medium ? medium : "no disc (ejected)");
      }
      break;
    case VR_EVENT_STATE_CHANGED:
    default:
      break;
    }
}

static gboolean
on_snapshot_signal (gpointer user_data)
{
  save_snapshot (user_data);
  return G_SOURCE_CONTINUE;
}

#ifdef HAVE_RUN_WINDOW
static gboolean
on_close_request (GtkWindow *window,
                  gpointer   user_data)
{
  /* Closing the window pulls the plug, as Ctrl+C does. */
  finish (user_data, EXIT_INTERRUPTED);
  return TRUE;
}
#endif

static gboolean
on_signal (gpointer user_data)
{
  Run *run = user_data;

  finish (run, EXIT_INTERRUPTED);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_dump_signal (gpointer user_data)
{
  Run *run = user_data;
  g_autofree char *dump = vr_machine_dump_cpus (run->machine);

  g_printerr ("%s", dump);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_timeout (gpointer user_data)
{
  Run *run = user_data;

  g_printerr ("vireo-run: timed out\n");
  finish (run, EXIT_TIMEOUT);
  return G_SOURCE_REMOVE;
}

static bool
parse_backend (const char       *option,
               const char       *text,
               VrSerialBackend  *backend,
               char            **path,
               GError          **error)
{
  if (g_str_equal (text, "stdio"))
    *backend = VR_SERIAL_STDIO;
  else if (g_str_equal (text, "pty"))
    *backend = VR_SERIAL_PTY;
  else if (g_str_equal (text, "none"))
    *backend = VR_SERIAL_NONE;
  else if (g_str_has_prefix (text, "file:") && text[5] != '\0')
    {
      *backend = VR_SERIAL_FILE;
      g_free (*path);
      *path = g_strdup (text + 5);
    }
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--%s takes stdio, pty, file:PATH or none, not “%s”", option, text);
      return false;
    }
  return true;
}

/* --display: none, std (the bochs-display card) or virtio (virtio-gpu + the card); with
 * ",window" (or "window" alone: std) the screen is shown in a GTK window. */
static bool
parse_display (const char       *text,
               VrDisplayDevice  *device,
               bool             *window,
               GError          **error)
{
  g_autofree char *card = NULL;

  *window = false;
  if (g_str_equal (text, "window"))
    {
      *window = true;
      text = "std";
    }
  else if (g_str_has_suffix (text, ",window"))
    {
      *window = true;
      card = g_strndup (text, strlen (text) - strlen (",window"));
      text = card;
    }

  if (g_str_equal (text, "none") && !*window)
    *device = VR_DISPLAY_DEVICE_NONE;
  else if (g_str_equal (text, "std"))
    *device = VR_DISPLAY_DEVICE_BOCHS;
  else if (g_str_equal (text, "virtio"))
    *device = VR_DISPLAY_DEVICE_VIRTIO_GPU;
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--display takes none, std, virtio, window or std|virtio,window, "
                   "not “%s”", text);
      return false;
    }
  return true;
}

/* Splits at single commas; ",," stands for a comma (in file names), as in QEMU. */
static GPtrArray *
split_options (const char *text)
{
  GPtrArray *parts = g_ptr_array_new_with_free_func (g_free);
  GString *cur = g_string_new (NULL);

  for (const char *p = text; *p; p++)
    {
      if (*p == ',' && p[1] == ',')
        {
          g_string_append_c (cur, ',');
          p++;
        }
      else if (*p == ',')
        {
          g_ptr_array_add (parts, g_string_free (cur, FALSE));
          cur = g_string_new (NULL);
        }
      else
        g_string_append_c (cur, *p);
    }
  g_ptr_array_add (parts, g_string_free (cur, FALSE));
  return parts;
}

/* FILE,format=raw|qcow2|vmdk[,readonly][,serial=STR] */
static bool
parse_disk (const char    *text,
            VrDiskConfig  *disk,
            GError       **error)
{
  g_autoptr (GPtrArray) parts = split_options (text);

  if (*(char *) parts->pdata[0] == '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--disk needs a file name first: FILE,format=raw|qcow2|vmdk");
      return false;
    }
  disk->path = g_strdup (parts->pdata[0]);
  for (guint i = 1; i < parts->len; i++)
    {
      const char *opt = parts->pdata[i];

      if (g_str_has_prefix (opt, "format="))
        {
          const char *f = opt + 7;

          if (!g_str_equal (f, "raw") && !g_str_equal (f, "qcow2") && !g_str_equal (f, "vmdk"))
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--disk %s: the format is raw, qcow2 or vmdk, not “%s”",
                           disk->path, f);
              return false;
            }
          g_free (disk->format);
          disk->format = g_strdup (f);
        }
      else if (g_str_equal (opt, "readonly") || g_str_equal (opt, "readonly=on"))
        disk->readonly = true;
      else if (g_str_has_prefix (opt, "serial="))
        {
          g_free (disk->serial);
          disk->serial = g_strdup (opt + 7);
        }
      else
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--disk %s: unknown option “%s” (format=, readonly, serial=)",
                       disk->path, opt);
          return false;
        }
    }
  if (disk->format == NULL)
    {
      /* The engine never guesses a format from a file the guest can write. */
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--disk %s: say which format it is: %s,format=raw|qcow2|vmdk", disk->path,
                   disk->path);
      return false;
    }
  return true;
}

/* "cd,disk" → { CDROM, DISK, END }. */
static bool
parse_boot_order (const char    *text,
                  VrBootDevice  *order,
                  GError       **error)
{
  g_auto (GStrv) words = g_strsplit (text, ",", -1);
  guint n = g_strv_length (words);

  if (n == 0 || n >= VR_MAX_BOOT_DEVICES)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--boot %s: give cd, disk, or both in order (cd,disk)", text);
      return false;
    }
  for (guint i = 0; i < n; i++)
    {
      if (g_str_equal (words[i], "cd") || g_str_equal (words[i], "cdrom"))
        order[i] = VR_BOOT_DEVICE_CDROM;
      else if (g_str_equal (words[i], "disk"))
        order[i] = VR_BOOT_DEVICE_DISK;
      else
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--boot %s: “%s” is not cd or disk", text, words[i]);
          return false;
        }
    }
  order[n] = VR_BOOT_DEVICE_END;
  return true;
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *kernel = NULL, *initrd = NULL, *append = NULL, *memory = NULL;
  g_autofree char *serial = NULL, *cpuid_mask = NULL, *console = NULL, *display = NULL;
  g_autofree char *snapshot_save = NULL, *restore = NULL;
  g_autofree char *firmware = NULL, *cdrom = NULL, *boot = NULL, *vga_rom = NULL;
  g_auto (GStrv) disks = NULL, nets = NULL;
  gboolean prefault = FALSE, io_stats = FALSE;
  int cpus = 1, timeout = 0;
  gboolean no_reboot = FALSE, rng = FALSE, input = FALSE;
  bool show_window = false;
  const GOptionEntry entries[] = {
    { "snapshot-save", 0, 0, G_OPTION_ARG_FILENAME, &snapshot_save,
      "Save a snapshot to DIR (then DIR-2 …) when the guest asks or on SIGHUP", "DIR" },
    { "restore", 0, 0, G_OPTION_ARG_FILENAME, &restore,
      "Resume from the snapshot in DIR instead of booting (same options as when saved)", "DIR" },
    { "io-stats", 0, 0, G_OPTION_ARG_NONE, &io_stats,
      "At exit, print the guest's disk and network I/O on standard error", NULL },
    { "prefault", 0, 0, G_OPTION_ARG_NONE, &prefault,
      "With --restore: read the whole memory file in the background", NULL },
    { "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &kernel,
      "Kernel to boot: a Linux bzImage, a PVH ELF or a Multiboot kernel", "FILE" },
    { "firmware", 0, 0, G_OPTION_ARG_FILENAME, &firmware,
      "Boot through PC firmware instead of a kernel: SeaBIOS from Debian's seabios package "
      "(" SEABIOS_DIR "/bios.bin), or a firmware image", "seabios|FILE" },
    { "vga-rom", 0, 0, G_OPTION_ARG_FILENAME, &vga_rom,
      "With --firmware: the display's option ROM (default " VR_SEABIOS_VGA_ROM " beside the "
      "firmware)",
      "FILE" },
    { "cdrom", 0, 0, G_OPTION_ARG_FILENAME, &cdrom,
      "A CD-ROM drive (virtio-scsi) holding an ISO image; “empty” for an empty drive",
      "FILE|empty" },
    { "boot", 0, 0, G_OPTION_ARG_STRING, &boot,
      "With --firmware: what to boot, in order (default cd,disk)", "cd|disk|cd,disk|disk,cd" },
    { "initrd", 'i', 0, G_OPTION_ARG_FILENAME, &initrd, "Initial ramdisk (or module)", "FILE" },
    { "append", 'a', 0, G_OPTION_ARG_STRING, &append, "Kernel command line", "STR" },
    { "memory", 'm', 0, G_OPTION_ARG_STRING, &memory, "Guest memory (default 256M)", "SIZE" },
    { "cpus", 'c', 0, G_OPTION_ARG_INT, &cpus, "Number of vCPUs, 1–64 (default 1)", "N" },
    { "serial", 's', 0, G_OPTION_ARG_STRING, &serial,
      "Serial port backend: stdio (default), pty, file:PATH or none", "BACKEND" },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
      "Stop the machine after SEC seconds (exit status 124)", "SEC" },
    { "no-reboot", 0, 0, G_OPTION_ARG_NONE, &no_reboot,
      "Stop instead of rebooting when the guest resets (exit status 4, or 6 on a triple fault)",
      NULL },
    { "cpuid-mask", 0, 0, G_OPTION_ARG_STRING, &cpuid_mask,
      "CPUID features to hide, comma-separated (“help” lists them)", "LIST" },
    { "disk", 'd', 0, G_OPTION_ARG_FILENAME_ARRAY, &disks,
      "A virtio disk (repeatable); “,,” in FILE stands for a comma",
      "FILE,format=raw|qcow2|vmdk[,readonly][,serial=ID]" },
    { "net", 'n', 0, G_OPTION_ARG_STRING_ARRAY, &nets,
      "A virtio network card (repeatable): user networking with optional port forwards such as "
      "hostfwd=tcp:127.0.0.1:2222-:22, a tap interface, or none",
      "user[,hostfwd=RULE]…[,mac=MAC]|tap:NAME[,mac=MAC]|none" },
    { "rng", 0, 0, G_OPTION_ARG_NONE, &rng, "A virtio random number generator", NULL },
    { "input", 0, 0, G_OPTION_ARG_NONE, &input, "A virtio keyboard and tablet", NULL },
    { "console", 0, 0, G_OPTION_ARG_STRING, &console,
      "A virtio console on stdio, pty, file:PATH (default: none)", "BACKEND" },
    { "display", 0, 0, G_OPTION_ARG_STRING, &display,
      "A display card: std (bochs-display), virtio (virtio-gpu) or none (default); "
      "“window” (std) or “std,window” / “virtio,window” also show it in a window",
      "none|std|virtio[,window]|window" },
    { NULL }
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
#ifdef HAVE_RUN_WINDOW
  GtkWidget *window = NULL;
#endif
  VrMachineConfig config;
  Run run = { 0 };
  guint sigint, sigterm, sigusr2, sighup, timer = 0;

  setlocale (LC_ALL, "");

  context = g_option_context_new ("— run a virtual machine headless");
  g_option_context_set_summary (context,
    "Boots one machine with Vireo's KVM engine, without a window.");
  g_option_context_set_description (context,
    "Exit status:\n"
    "  0    the guest powered off (ACPI S5)\n"
    "  odd  the guest wrote V to the debug-exit port 0xf4: (V << 1) | 1\n"
    "  2    the machine could not be created or started (bad option, kernel, /dev/kvm)\n"
    "  4    the guest reset itself and --no-reboot was given\n"
    "  6    the guest triple-faulted and --no-reboot was given\n"
    "  8    the guest stopped on an error KVM could not handle\n"
    "  124  --timeout expired\n"
    "  130  interrupted by SIGINT or SIGTERM\n"
    "\n"
    "SIGUSR2 prints every vCPU's registers on standard error.\n");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("vireo-run: %s\nTry “vireo-run --help”.\n", error->message);
      return EXIT_ENGINE_ERROR;
    }
  if (cpuid_mask && g_str_equal (cpuid_mask, "help"))
    {
      g_auto (GStrv) names = vr_cpuid_feature_names ();

      for (guint i = 0; names[i]; i++)
        g_print ("%s\n", names[i]);
      return 0;
    }
  if (argc > 1)
    {
      g_printerr ("vireo-run: unexpected argument “%s”\n", argv[1]);
      return EXIT_ENGINE_ERROR;
    }
  if (kernel == NULL && firmware == NULL)
    {
      g_printerr ("vireo-run: --kernel or --firmware is required\nTry “vireo-run --help”.\n");
      return EXIT_ENGINE_ERROR;
    }
  if (timeout < 0)
    {
      g_printerr ("vireo-run: --timeout must be positive\n");
      return EXIT_ENGINE_ERROR;
    }

  vr_machine_config_init (&config);
  /* The machine is named after its kernel (a window's title, log lines). */
  if (kernel)
    config.name = g_path_get_basename (kernel);
  else if (cdrom && !g_str_equal (cdrom, "empty"))
    config.name = g_path_get_basename (cdrom);
  else if (disks && disks[0])
    {
      /* FILE,format=…: the file's name. */
      g_autofree char *file = g_strndup (disks[0], strcspn (disks[0], ","));

      config.name = g_path_get_basename (file);
    }
  else
    config.name = g_strdup ("firmware");
  config.kernel = g_steal_pointer (&kernel);
  if (firmware)
    config.firmware = g_str_equal (firmware, "seabios") ? g_strdup (SEABIOS_DIR "/bios.bin")
                                                         : g_steal_pointer (&firmware);
  config.vga_rom = g_steal_pointer (&vga_rom);
  if (cdrom)
    {
      config.cdrom_drive = true;
      if (!g_str_equal (cdrom, "empty"))
        config.cdrom = g_steal_pointer (&cdrom);
    }
  if (boot && !parse_boot_order (boot, config.boot_order, &error))
    {
      g_printerr ("vireo-run: %s\n", error->message);
      vr_machine_config_clear (&config);
      return EXIT_ENGINE_ERROR;
    }
  config.initrd = g_steal_pointer (&initrd);
  config.cmdline = g_steal_pointer (&append);
  config.cpuid_mask = g_steal_pointer (&cpuid_mask);
  config.on_reset = no_reboot ? VR_RESET_STOP : VR_RESET_RESTART;
  if (cpus < 1 || cpus > VR_MAX_CPUS)
    {
      g_printerr ("vireo-run: --cpus must be between 1 and %d\n", VR_MAX_CPUS);
      vr_machine_config_clear (&config);
      return EXIT_ENGINE_ERROR;
    }
  config.cpus = (unsigned) cpus;
  if ((memory && !vr_parse_size (memory, &config.memory, &error))
      || (serial && !parse_backend ("serial", serial, &config.serial, &config.serial_path,
                                    &error))
      || (console && !parse_backend ("console", console, &config.console,
                                     &config.console_path, &error))
      || (display && !parse_display (display, &config.display, &show_window, &error)))
    {
      g_printerr ("vireo-run: %s\n", error->message);
      vr_machine_config_clear (&config);
      return EXIT_ENGINE_ERROR;
    }

  config.rng = rng;
  config.input = input;
  config.n_disks = disks ? g_strv_length (disks) : 0;
  config.disks = config.n_disks ? g_new0 (VrDiskConfig, config.n_disks) : NULL;
  for (unsigned i = 0; i < config.n_disks; i++)
    if (!parse_disk (disks[i], &config.disks[i], &error))
      {
        g_printerr ("vireo-run: %s\n", error->message);
        vr_machine_config_clear (&config);
        return EXIT_ENGINE_ERROR;
      }
  /* "none" cards are left out; the engine checks the rest. */
  if (nets)
    {
      g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

      for (guint i = 0; nets[i]; i++)
        if (!g_str_equal (nets[i], "none"))
          g_strv_builder_add (builder, nets[i]);
      config.nics = g_strv_builder_end (builder);
    }

  run.machine = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  if (run.machine == NULL)
    {
      g_printerr ("vireo-run: %s\n", error->message);
      return EXIT_ENGINE_ERROR;
    }

  loop = g_main_loop_new (NULL, FALSE);
  run.loop = loop;
  vr_machine_set_event_func (run.machine, NULL, on_event, &run, NULL);
  sigint = g_unix_signal_add (SIGINT, on_signal, &run);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, &run);
  sigusr2 = g_unix_signal_add (SIGUSR2, on_dump_signal, &run);
  sighup = g_unix_signal_add (SIGHUP, on_snapshot_signal, &run);
  run.snapshot_dir = snapshot_save;
  signal (SIGPIPE, SIG_IGN);

  /* GTK is only initialised for a window: the headless path never touches the display. */
  if (show_window)
    {
#ifdef HAVE_RUN_WINDOW
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      textdomain (GETTEXT_PACKAGE);
      if (!gtk_init_check ())
        {
          g_printerr ("vireo-run: cannot open a window: no graphical display (is DISPLAY or "
                      "WAYLAND_DISPLAY set?)\n");
          vr_machine_free (run.machine);
          return EXIT_ENGINE_ERROR;
        }
      window = vireo_run_window_new (run.machine);
      g_signal_connect (window, "close-request", G_CALLBACK (on_close_request), &run);
      gtk_window_present (GTK_WINDOW (window));
#else
      g_printerr ("vireo-run: this vireo-run was built without GTK: no --display window\n");
      vr_machine_free (run.machine);
      return EXIT_ENGINE_ERROR;
#endif
    }

  if (vr_machine_get_serial_pty (run.machine))
    g_printerr ("vireo-run: serial port on %s\n", vr_machine_get_serial_pty (run.machine));
  if (vr_machine_get_console_pty (run.machine))
    g_printerr ("vireo-run: console on %s\n", vr_machine_get_console_pty (run.machine));

  if (restore)
    {
      gint64 t0 = g_get_monotonic_time ();

      if (vr_machine_restore_snapshot (run.machine, restore,
                                       prefault ? VR_RESTORE_PREFAULT : 0, &error))
        {
          g_printerr ("vireo-run: restored %s in %.2f ms\n", restore,
                      (double) (g_get_monotonic_time () - t0) / 1000.0);
          /* A disk-only snapshot: the machine boots from the reverted disks. */
          if (vr_machine_get_state (run.machine) == VR_STATE_STOPPED)
            vr_machine_start (run.machine, &error);
        }
    }
  if (restore ? error != NULL : !vr_machine_start (run.machine, &error))
    {
      g_printerr ("vireo-run: %s\n", error->message);
      run.status = EXIT_ENGINE_ERROR;
    }
  else
    {
      if (timeout > 0)
        timer = g_timeout_add_seconds ((guint) timeout, on_timeout, &run);
      g_main_loop_run (loop);
    }

  if (timer && !run.done)
    g_source_remove (timer);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (sigusr2);
  g_source_remove (sighup);
#ifdef HAVE_RUN_WINDOW
  if (window != NULL)
    {
      VireoDisplay *screen = vireo_run_window_get_display (VIREO_RUN_WINDOW (window));
      g_autoptr (GError) record_error = NULL;

      /* A recording in progress is finished (EOS, complete file) before the machine goes. */
      if (!vireo_display_stop_recording (screen, &record_error))
        g_printerr ("vireo-run: %s\n", record_error->message);
      gtk_window_destroy (GTK_WINDOW (window));
    }
#endif
  vr_machine_stop (run.machine);
  if (io_stats)
    {
      VrIoStats st;

      vr_machine_get_io_stats (run.machine, &st);
      g_printerr ("vireo-run: io: disk read %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
                  " requests, written %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
                  " requests; net received %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
                  " frames, sent %" G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT " frames\n",
                  st.disk_read_bytes, st.disk_reads, st.disk_write_bytes, st.disk_writes,
                  st.net_rx_bytes, st.net_rx_packets, st.net_tx_bytes, st.net_tx_packets);
    }
  vr_machine_free (run.machine);
  fflush (stdout);
  return run.status;
}
