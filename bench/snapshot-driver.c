/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * bench/snapshot's Vireo side: the engine's API driven as a running VMM is, the way QEMU's
 * savevm/loadvm are driven through its monitor. Boots the guest, waits for --ready in its
 * serial output, lets it run for --wait seconds, saves a live snapshot to --dir, lets it run on for 0.2 s, restores the snapshot
 * into the same running machine, and prints
 *
 *   save_ms=<ms> restore_ms=<ms>
 *
 * each measured around the API call alone (save: from the request to the snapshot complete
 * on disk and the guest running again; restore: from the request to the vCPUs running the
 * restored guest).
 */

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vr-machine.h"

int
main (int   argc,
      char *argv[])
{
  g_autofree char *kernel = NULL, *initrd = NULL, *memory = NULL, *disk = NULL, *dir = NULL;
  g_autofree char *append = NULL, *serial = NULL, *ready = NULL;
  double wait_s = 0.5;
  const GOptionEntry entries[] = {
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel, "Guest kernel", "FILE" },
    { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &initrd, "Initial ramdisk", "FILE" },
    { "append", 0, 0, G_OPTION_ARG_STRING, &append, "Kernel command line", "STR" },
    { "memory", 0, 0, G_OPTION_ARG_STRING, &memory, "Guest memory", "SIZE" },
    { "disk", 0, 0, G_OPTION_ARG_FILENAME, &disk, "A qcow2 disk", "FILE" },
    { "dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "Snapshot directory (must not exist)", "DIR" },
    { "serial", 0, 0, G_OPTION_ARG_FILENAME, &serial, "Serial output file", "FILE" },
    { "ready", 0, 0, G_OPTION_ARG_STRING, &ready, "Wait for TEXT in the serial output", "TEXT" },
    { "wait", 0, 0, G_OPTION_ARG_DOUBLE, &wait_s, "Seconds to run (after TEXT) before saving",
      "S" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- snapshot benchmark driver");
  g_autoptr (GError) error = NULL;
  VrMachineConfig config;
  VrMachine *m;
  gint64 t0, t1, t2;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !kernel || !dir)
    {
      fprintf (stderr, "snapshot-driver: %s\n", error ? error->message : "--kernel and --dir");
      return 2;
    }
  vr_machine_config_init (&config);
  config.name = g_strdup ("bench");
  config.kernel = g_strdup (kernel);
  config.initrd = g_strdup (initrd);
  config.cmdline = g_strdup (append);
  config.serial = serial ? VR_SERIAL_FILE : VR_SERIAL_NONE;
  config.serial_path = g_strdup (serial);
  if (memory && !vr_parse_size (memory, &config.memory, &error))
    goto fail_config;
  if (disk)
    {
      config.n_disks = 1;
      config.disks = g_new0 (VrDiskConfig, 1);
      config.disks[0].path = g_strdup (disk);
      config.disks[0].format = g_strdup ("qcow2");
    }
  m = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  if (m == NULL || !vr_machine_start (m, &error))
    goto fail;
  for (gint64 end = g_get_monotonic_time () + 600 * G_USEC_PER_SEC; ready && serial;)
    {
      g_autofree char *text = NULL;

      if (g_file_get_contents (serial, &text, NULL, NULL) && strstr (text, ready))
        break;
      if (g_get_monotonic_time () > end)
        {
          fprintf (stderr, "snapshot-driver: the guest never printed “%s”\n", ready);
          return 1;
        }
      g_usleep (10000);
    }
  g_usleep ((gulong) (wait_s * G_USEC_PER_SEC));

  t0 = g_get_monotonic_time ();
  if (!vr_machine_save_snapshot (m, dir, NULL, &error))
    goto fail;
  t1 = g_get_monotonic_time ();
  g_usleep (200000);
  t2 = g_get_monotonic_time ();
  if (!vr_machine_restore_snapshot (m, dir, 0, &error))
    goto fail;
  printf ("save_ms=%.3f restore_ms=%.3f\n", (double) (t1 - t0) / 1000.0,
          (double) (g_get_monotonic_time () - t2) / 1000.0);
  vr_machine_free (m);
  return 0;

fail_config:
  vr_machine_config_clear (&config);
fail:
  fprintf (stderr, "snapshot-driver: %s\n", error->message);
  return 1;
}
