/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * smp: starts every processor of the MADT with INIT-SIPI-SIPI.  Each AP checks in
 * from long mode on its own stack; the BSP then prints "cpu N up" in order and
 * checks the count against the MADT and against "cpus=N" from the command line.
 */

#include "guest.h"

static volatile uint32_t checked_in[MAX_CPUS];
static volatile uint32_t seen_apic_id[MAX_CPUS];
static Spinlock count_lock;
static volatile int count;

static void
ap_main (int cpu)
{
  uint64_t rsp;

  __asm__ volatile ("mov %%rsp, %0" : "=r"(rsp));
  seen_apic_id[cpu] = lapic_id ();
  spin_lock (&count_lock);
  count++;
  spin_unlock (&count_lock);
  checked_in[cpu] = (uint32_t) (rsp >> 12);     /* proof of a private stack */
}

int
guest_main (void)
{
  MadtInfo madt;
  uint8_t ids[MAX_CPUS];
  unsigned long expected = 0;
  int n;

  printf ("smp test\n");
  printf ("boot: %s\n", boot_protocol_name ());
  if (!acpi_parse_madt (&madt))
    guest_fail ("no valid MADT");
  printf ("madt: %d cpus\n", madt.ncpus);
  for (int i = 0; i < madt.ncpus; i++)
    printf ("info: madt apic id %u\n", madt.apic_ids[i]);
  pic_disable ();
  lapic_enable ();
  count = 1;

  n = smp_start_aps (&madt, ap_main, ids);
  for (int spins = 0; count < n && spins < 1000; spins++)
    pit_delay_ms (1);

  printf ("cpu 0 up (bsp), apic id %u\n", ids[0]);
  for (int i = 1; i < n; i++)
    {
      if (!checked_in[i])
        guest_fail ("cpu %d did not check in", i);
      if (seen_apic_id[i] != ids[i])
        guest_fail ("cpu %d reports apic id %u, expected %u", i, seen_apic_id[i], ids[i]);
      for (int j = 1; j < i; j++)
        if (checked_in[j] == checked_in[i])
          guest_fail ("cpus %d and %d share a stack", i, j);
      printf ("cpu %d up, apic id %u\n", i, ids[i]);
    }
  printf ("cpus running: %d\n", count);
  if (count != n || n != madt.ncpus)
    guest_fail ("%d of %d cpus started", count, madt.ncpus);
  if (cmdline_uint ("cpus", &expected) && expected != (unsigned long) n)
    guest_fail ("expected %lu cpus, found %d", expected, n);
  return 0;
}
