/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * hello: the smallest guest.  Prints a greeting and the boot protocol, checks the
 * memory map covers the image, then exits with the status from "exit=N" (default 0)
 * or powers off through ACPI with "poweroff".
 */

#include "guest.h"

extern char __image_start[], __image_end[];

int
guest_main (void)
{
  MemRegion map[32];
  int n = boot_memmap (map, ARRAY_SIZE (map));
  uint64_t usable = 0;
  bool covered = false;
  unsigned long code = 0;

  printf ("Hello from a Vireo test guest\n");
  printf ("boot: %s\n", boot_protocol_name ());
  printf ("info: cmdline '%s'\n", cmdline ());

  for (int i = 0; i < n; i++)
    {
      printf ("info: mem %016lx-%016lx type %u\n", map[i].addr,
              map[i].addr + map[i].size - 1, map[i].type);
      if (map[i].type != 1)
        continue;
      usable += map[i].size;
      if (map[i].addr <= (uintptr_t) __image_start
          && map[i].addr + map[i].size >= (uintptr_t) __image_end)
        covered = true;
    }
  printf ("info: %lu KiB usable\n", usable >> 10);
  if (n == 0)
    guest_fail ("no memory map");
  if (!covered)
    guest_fail ("the image is not in usable RAM");
  printf ("memory map: ok\n");

  if (cmdline_has ("poweroff"))
    {
      printf ("powering off\n");
      acpi_poweroff ();
      guest_fail ("ACPI power-off did not stop the machine");
    }
  cmdline_uint ("exit", &code);
  printf ("exit code: %lu\n", code);
  printf ("PASS\n");
  guest_exit ((uint32_t) code);
}
