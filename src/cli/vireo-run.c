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

#include "vr-cpuid.h"
#include "vr-machine.h"

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
    case VR_EVENT_STATE_CHANGED:
    default:
      break;
    }
}

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
parse_serial (const char       *text,
              VrMachineConfig  *config,
              GError          **error)
{
  if (g_str_equal (text, "stdio"))
    config->serial = VR_SERIAL_STDIO;
  else if (g_str_equal (text, "pty"))
    config->serial = VR_SERIAL_PTY;
  else if (g_str_equal (text, "none"))
    config->serial = VR_SERIAL_NONE;
  else if (g_str_has_prefix (text, "file:") && text[5] != '\0')
    {
      config->serial = VR_SERIAL_FILE;
      config->serial_path = g_strdup (text + 5);
    }
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--serial takes stdio, pty, file:PATH or none, not “%s”", text);
      return false;
    }
  return true;
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *kernel = NULL, *initrd = NULL, *append = NULL, *memory = NULL;
  g_autofree char *serial = NULL, *cpuid_mask = NULL;
  int cpus = 1, timeout = 0;
  gboolean no_reboot = FALSE;
  const GOptionEntry entries[] = {
    { "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &kernel,
      "Kernel to boot: a Linux bzImage, a PVH ELF or a Multiboot kernel", "FILE" },
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
    { NULL }
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  VrMachineConfig config;
  Run run = { 0 };
  guint sigint, sigterm, sigusr2, timer = 0;

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
  if (kernel == NULL)
    {
      g_printerr ("vireo-run: --kernel is required\nTry “vireo-run --help”.\n");
      return EXIT_ENGINE_ERROR;
    }
  if (timeout < 0)
    {
      g_printerr ("vireo-run: --timeout must be positive\n");
      return EXIT_ENGINE_ERROR;
    }

  vr_machine_config_init (&config);
  config.kernel = g_steal_pointer (&kernel);
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
      || (serial && !parse_serial (serial, &config, &error)))
    {
      g_printerr ("vireo-run: %s\n", error->message);
      vr_machine_config_clear (&config);
      return EXIT_ENGINE_ERROR;
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
  signal (SIGPIPE, SIG_IGN);

  if (vr_machine_get_serial_pty (run.machine))
    g_printerr ("vireo-run: serial port on %s\n", vr_machine_get_serial_pty (run.machine));

  if (!vr_machine_start (run.machine, &error))
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
  vr_machine_stop (run.machine);
  vr_machine_free (run.machine);
  fflush (stdout);
  return run.status;
}
