/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Application processor bring-up: INIT-SIPI-SIPI, one AP at a time. */

#include "guest.h"

#define TRAMP_BASE 0x8000
#define AP_STACK   8192

extern char tramp_start[], tramp_end[];
extern uint64_t ap_stack_top;

static uint8_t ap_stacks[MAX_CPUS][AP_STACK] __attribute__ ((aligned (16)));
static volatile int ap_cpu;
static volatile int ap_alive;
static ApMain ap_fn;

void ap_start (void);

void
ap_start (void)
{
  int cpu = ap_cpu;

  idt_load ();
  lapic_enable ();
  __atomic_store_n (&ap_alive, 1, __ATOMIC_RELEASE);
  if (ap_fn)
    ap_fn (cpu);
  for (;;)
    __asm__ volatile ("cli; hlt");
}

/*
 * Starts every enabled processor of the MADT but ourselves, in MADT order; AP n
 * (n >= 1) runs fn (n).  Records the APIC ids in started_ids[0..], BSP first.
 * Returns the number of processors running, BSP included.
 */
int
smp_start_aps (const MadtInfo *madt, ApMain fn, uint8_t *started_ids)
{
  uint32_t self = lapic_id ();
  int n = 1;

  started_ids[0] = (uint8_t) self;
  ap_fn = fn;
  memcpy ((void *) TRAMP_BASE, tramp_start, (size_t) (tramp_end - tramp_start));
  for (int i = 0; i < madt->ncpus; i++)
    {
      uint8_t id = madt->apic_ids[i];

      if (id == self)
        continue;
      ap_cpu = n;
      ap_alive = 0;
      ap_stack_top = (uintptr_t) ap_stacks[n] + AP_STACK;
      __atomic_thread_fence (__ATOMIC_SEQ_CST);

      lapic_send_ipi (id, 0x4500);                      /* INIT */
      pit_delay_ms (10);
      lapic_send_ipi (id, 0x4600 | (TRAMP_BASE >> 12)); /* SIPI */
      pit_delay_ms (1);
      if (!ap_alive)
        lapic_send_ipi (id, 0x4600 | (TRAMP_BASE >> 12));
      for (int ms = 0; ms < 2000 && !__atomic_load_n (&ap_alive, __ATOMIC_ACQUIRE); ms++)
        pit_delay_ms (1);
      if (!ap_alive)
        {
          printf ("info: apic id %u did not start\n", id);
          continue;
        }
      started_ids[n++] = id;
    }
  return n;
}
