/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * timer: the PIT at 100 Hz through the IOAPIC (ISA IRQ 0, routed per the MADT's
 * overrides) and the LAPIC timer in periodic mode, both counted over two RTC second
 * boundaries; then the RTC date and time.
 */

#include "guest.h"

#define PIT_VECTOR   0x30
#define LAPIC_VECTOR 0x40
#define HZ           100
#define SECONDS      2

static volatile uint32_t pit_ticks;
static volatile uint32_t lapic_ticks;

static void
on_pit (IntFrame *f)
{
  pit_ticks++;
}

static void
on_lapic (IntFrame *f)
{
  lapic_ticks++;
}

/* Waits (halting) until the RTC seconds register changes; false on timeout. */
static bool
wait_rtc_edge (void)
{
  uint8_t s = cmos_read (0x00);
  uint32_t start = pit_ticks;

  while (cmos_read (0x00) == s)
    {
      if (pit_ticks - start > 5 * HZ)
        return false;
      wait_for_interrupt ();
    }
  return true;
}

static bool
in_range (uint32_t v, uint32_t expected)
{
  return v >= expected / 2 && v <= expected * 2;
}

int
guest_main (void)
{
  MadtInfo madt;
  RtcTime t;
  uint32_t p, l, gsi;

  printf ("timer test\n");
  printf ("boot: %s\n", boot_protocol_name ());
  if (!acpi_parse_madt (&madt) || !madt.ioapic_addr)
    guest_fail ("no valid MADT with an IOAPIC");
  gsi = madt.isa_gsi[0];
  printf ("info: pit: isa irq 0 -> gsi %u\n", gsi);

  pic_disable ();
  lapic_enable ();
  set_int_handler (PIT_VECTOR, on_pit);
  set_int_handler (LAPIC_VECTOR, on_lapic);
  pit_periodic (HZ);
  ioapic_route (madt.ioapic_addr, gsi - madt.ioapic_gsi_base, PIT_VECTOR, madt.isa_flags[0],
                (uint8_t) lapic_id (), false);

  /* Does the PIT tick at all? Give it one second by the RTC's clock, polled. */
  for (int i = 0; i < 200 && !pit_ticks; i++)
    {
      irq_enable ();
      pit_delay_ms (10);
      irq_disable ();
    }
  if (!pit_ticks)
    guest_fail ("no PIT interrupt");
  printf ("pit: interrupts arrive\n");

  /* LAPIC timer: 1/16 of the bus clock; KVM's LAPIC bus runs at 1 GHz, so 100 Hz. */
  lapic_timer_periodic (LAPIC_VECTOR, 1000000000u / 16 / HZ, 0x3);

  if (!wait_rtc_edge ())
    guest_fail ("the RTC does not tick");
  pit_ticks = 0;
  lapic_ticks = 0;
  for (int i = 0; i < SECONDS; i++)
    if (!wait_rtc_edge ())
      guest_fail ("the RTC stopped");
  p = pit_ticks;
  l = lapic_ticks;
  lapic_timer_stop ();
  printf ("info: pit %u ticks, lapic %u ticks in %d rtc seconds\n", p, l, SECONDS);
  if (!in_range (p, HZ * SECONDS))
    guest_fail ("PIT ran at %u ticks in %d s, expected about %d", p, SECONDS, HZ * SECONDS);
  printf ("pit: rate ok\n");
  if (!in_range (l, HZ * SECONDS))
    guest_fail ("LAPIC timer ran at %u ticks in %d s, expected about %d", l, SECONDS,
                HZ * SECONDS);
  printf ("lapic timer: rate ok\n");

  rtc_read (&t);
  printf ("rtc: %04u-%02u-%02u %02u:%02u:%02u\n", t.year, t.month, t.day, t.hour, t.minute,
          t.second);
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59
      || t.second > 59)
    guest_fail ("RTC date/time out of range");
  return 0;
}
