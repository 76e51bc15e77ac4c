/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * lifecycle: a guest for the engine's API tests (test-machine.c), chosen by command line:
 *   count        prints "tick N" forever, N counting up, so pause/resume/reset are visible
 *   powerbutton  enables the ACPI fixed power button, waits for it, then powers off (S5)
 *   crash        jumps into the MMIO hole, where no RAM is: KVM cannot fetch the
 *                instruction and stops with an internal error (on any host)
 */

#include "guest.h"

/* FADT offsets (ACPI 6.x) */
#define FADT_PM1A_EVT_BLK 56
#define PM1_PWRBTN        (1u << 8)

static uint16_t
pm1a_evt (void)
{
  const AcpiHeader *fadt = acpi_find_table ("FACP", 0);
  uint32_t port = 0;

  if (!fadt)
    guest_fail ("no FADT");
  memcpy (&port, (const uint8_t *) fadt + FADT_PM1A_EVT_BLK, 4);
  if (port == 0 || port > 0xffff)
    guest_fail ("no PM1a event block");
  return (uint16_t) port;
}

static void
count (void)
{
  for (unsigned long n = 0;; n++)
    {
      printf ("tick %lu\n", n);
      pit_delay_ms (20);
    }
}

static void
power_button (void)
{
  uint16_t evt = pm1a_evt ();

  /* Clear a stale status, enable the button, then poll the status bit. */
  outw (evt, PM1_PWRBTN);
  outw (evt + 2, inw (evt + 2) | PM1_PWRBTN);
  printf ("waiting for the power button\n");
  while (!(inw (evt) & PM1_PWRBTN))
    pit_delay_ms (5);
  outw (evt, PM1_PWRBTN);
  if (inw (evt) & PM1_PWRBTN)
    guest_fail ("PWRBTN_STS does not clear");
  printf ("power button pressed\n");
  if (!acpi_poweroff ())
    guest_fail ("power-off did not happen");
  guest_fail ("still running after power-off");
}

static void
crash (void)
{
  void (*nowhere) (void) = (void (*) (void)) phys (0xd0000000u);

  printf ("jumping into the MMIO hole\n");
  nowhere ();
  guest_fail ("came back from the MMIO hole");
}

int
guest_main (void)
{
  printf ("lifecycle guest\n");
  if (cmdline_has ("powerbutton"))
    power_button ();
  else if (cmdline_has ("crash"))
    crash ();
  else
    count ();
  return 0;
}
