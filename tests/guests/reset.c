/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * reset: three boots in one run, counted in CMOS NVRAM byte 0x4e (which survives a
 * reset): boot 1 resets through the i8042, boot 2 by a triple fault, boot 3 passes.
 * With "skip-i8042" on the command line, boot 1 goes straight to the triple fault.
 */

#include "guest.h"

#define STAGE 0x4e

static void
triple_fault (void)
{
  struct __attribute__ ((packed))
  {
    uint16_t limit;
    uint64_t base;
  } empty = { 0, 0 };

  /* #UD with no IDT: #GP, #DF, shutdown. */
  __asm__ volatile ("cli; lidt %0; ud2" : : "m"(empty));
}

int
guest_main (void)
{
  uint8_t stage = cmos_read (STAGE);

  printf ("reset test\n");
  printf ("boot: %s\n", boot_protocol_name ());
  printf ("stage: %u\n", stage);
  if (stage == 0 && cmdline_has ("skip-i8042"))
    stage = 1;
  switch (stage)
    {
    case 0:
      cmos_write (STAGE, 1);
      printf ("reset: i8042\n");
      outb (0x64, 0xfe);
      pit_delay_ms (500);
      cmos_write (STAGE, 0);
      guest_fail ("the i8042 did not reset the machine");
    case 1:
      cmos_write (STAGE, 2);
      printf ("reset: triple fault\n");
      triple_fault ();
      cmos_write (STAGE, 0);
      guest_fail ("still running after a triple fault");
    case 2:
      cmos_write (STAGE, 0);
      printf ("reset: done\n");
      return 0;
    default:
      cmos_write (STAGE, 0);
      guest_fail ("bad stage %u in CMOS byte 0x%x", stage, STAGE);
    }
}
