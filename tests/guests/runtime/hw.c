/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Local APIC, IOAPIC, 8259 PIC, 8254 PIT and CMOS RTC for the test guests. */

#include "guest.h"

#define LAPIC_ID      0x020
#define LAPIC_EOI     0x0b0
#define LAPIC_SVR     0x0f0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define LAPIC_LVT_TMR 0x320
#define LAPIC_TMR_ICR 0x380
#define LAPIC_TMR_DCR 0x3e0

static uintptr_t
lapic_base (void)
{
  return (uintptr_t) (rdmsr (0x1b) & 0xfffff000u);
}

uint32_t
lapic_id (void)
{
  return mmio_read32 (lapic_base () + LAPIC_ID) >> 24;
}

void
lapic_enable (void)
{
  mmio_write32 (lapic_base () + LAPIC_SVR, 0x100 | 0xff);
}

void
lapic_eoi (void)
{
  mmio_write32 (lapic_base () + LAPIC_EOI, 0);
}

void
lapic_timer_periodic (uint8_t vector, uint32_t initial, uint32_t divide_code)
{
  uintptr_t b = lapic_base ();

  mmio_write32 (b + LAPIC_TMR_DCR, divide_code);
  mmio_write32 (b + LAPIC_LVT_TMR, vector | (1u << 17));
  mmio_write32 (b + LAPIC_TMR_ICR, initial);
}

void
lapic_timer_stop (void)
{
  uintptr_t b = lapic_base ();

  mmio_write32 (b + LAPIC_LVT_TMR, 1u << 16);
  mmio_write32 (b + LAPIC_TMR_ICR, 0);
}

void
lapic_send_ipi (uint32_t apic_id, uint32_t icr_low)
{
  uintptr_t b = lapic_base ();
  unsigned spins = 0;

  mmio_write32 (b + LAPIC_ICR_HI, apic_id << 24);
  mmio_write32 (b + LAPIC_ICR_LO, icr_low);
  while ((mmio_read32 (b + LAPIC_ICR_LO) & (1u << 12)) && spins++ < 100000)
    cpu_relax ();
}

static void
ioapic_write (uint32_t base, uint32_t reg, uint32_t v)
{
  mmio_write32 (base, reg);
  mmio_write32 (base + 0x10, v);
}

void
ioapic_route (uint32_t ioapic, uint32_t gsi, uint8_t vector, uint16_t flags, uint8_t dest,
              bool masked)
{
  uint32_t lo = vector;

  if ((flags & 3) == 3)                 /* active low */
    lo |= 1u << 13;
  if (((flags >> 2) & 3) == 3)          /* level triggered */
    lo |= 1u << 15;
  if (masked)
    lo |= 1u << 16;
  ioapic_write (ioapic, 0x11 + 2 * gsi, (uint32_t) dest << 24);
  ioapic_write (ioapic, 0x10 + 2 * gsi, lo);
}

void
pic_disable (void)
{
  /* Remap to 0x20/0x28 so that a stray interrupt is recognisable, then mask all. */
  outb (0x20, 0x11);
  outb (0xa0, 0x11);
  outb (0x21, 0x20);
  outb (0xa1, 0x28);
  outb (0x21, 0x04);
  outb (0xa1, 0x02);
  outb (0x21, 0x01);
  outb (0xa1, 0x01);
  outb (0x21, 0xff);
  outb (0xa1, 0xff);
}

#define PIT_HZ 1193182u

void
pit_periodic (unsigned hz)
{
  unsigned div = (PIT_HZ + hz / 2) / hz;

  outb (0x43, 0x34);                    /* channel 0, lo/hi, mode 2 */
  outb (0x40, div & 0xff);
  outb (0x40, div >> 8);
}

/* Busy-waits on PIT channel 2 (gated by port 0x61), independent of interrupts. */
void
pit_delay_ms (unsigned ms)
{
  while (ms)
    {
      unsigned chunk = ms > 50 ? 50 : ms;
      unsigned count = chunk * (PIT_HZ / 1000);
      uint8_t p61 = inb (0x61);

      outb (0x61, (p61 & ~0x03) | 0x00);  /* gate low, speaker off */
      outb (0x43, 0xb0);                  /* channel 2, lo/hi, mode 0 */
      outb (0x42, count & 0xff);
      outb (0x42, count >> 8);
      outb (0x61, (p61 & ~0x03) | 0x01);  /* gate high: start counting */
      while (!(inb (0x61) & 0x20))
        cpu_relax ();
      ms -= chunk;
    }
}

uint8_t
cmos_read (uint8_t index)
{
  outb (0x70, index & 0x7f);
  return inb (0x71);
}

void
cmos_write (uint8_t index, uint8_t value)
{
  outb (0x70, index & 0x7f);
  outb (0x71, value);
}

static unsigned
bcd (uint8_t v, bool binary)
{
  return binary ? v : (v >> 4) * 10 + (v & 0xf);
}

static void
rtc_read_once (RtcTime *t, uint8_t regb)
{
  bool bin = regb & 0x04;
  uint8_t hour;

  while (cmos_read (0x0a) & 0x80)       /* update in progress */
    cpu_relax ();
  t->second = bcd (cmos_read (0x00), bin);
  t->minute = bcd (cmos_read (0x02), bin);
  hour = cmos_read (0x04);
  t->day = bcd (cmos_read (0x07), bin);
  t->month = bcd (cmos_read (0x08), bin);
  t->year = bcd (cmos_read (0x09), bin);
  if (!(regb & 0x02))                   /* 12-hour mode: bit 7 is PM */
    {
      bool pm = hour & 0x80;
      t->hour = bcd (hour & 0x7f, bin) % 12 + (pm ? 12 : 0);
    }
  else
    t->hour = bcd (hour, bin);
}

void
rtc_read (RtcTime *t)
{
  uint8_t regb = cmos_read (0x0b);
  RtcTime again;

  /* Read until two reads agree, so that no update happened in between. */
  rtc_read_once (t, regb);
  for (int i = 0; i < 10; i++)
    {
      rtc_read_once (&again, regb);
      if (!memcmp (&again, t, sizeof again))
        break;
      *t = again;
    }
  t->year += 2000;
}
