/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The tiny freestanding runtime of Vireo's bare-metal test guests.
 *
 * Conventions shared with tests/guests/test-guests.c:
 *  - serial output on COM1, '\n' line ends; the last line is "PASS" or "FAIL: reason";
 *  - lines starting with "info: " carry values that legitimately differ between
 *    machines (counts, addresses, table lists) and are left out of comparisons;
 *  - exit through the isa-debug-exit port 0xf4: guest_exit (code) makes the host see
 *    status (code << 1) | 1, so a passing guest (code 0) gives host status 1;
 *  - ACPI power-off gives host status 0.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_PVH       1
#define BOOT_MULTIBOOT 2

#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))
#define MAX_CPUS      16

/* Provided by each guest. */
int  guest_main (void);

/* boot.S */
extern uint32_t boot_protocol;
extern uint32_t boot_info_paddr;

/* --- port and memory I/O --- */
static inline void
outb (uint16_t port, uint8_t v)
{
  __asm__ volatile ("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void
outw (uint16_t port, uint16_t v)
{
  __asm__ volatile ("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void
outl (uint16_t port, uint32_t v)
{
  __asm__ volatile ("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t
inb (uint16_t port)
{
  uint8_t v;
  __asm__ volatile ("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline uint16_t
inw (uint16_t port)
{
  uint16_t v;
  __asm__ volatile ("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline uint32_t
inl (uint16_t port)
{
  uint32_t v;
  __asm__ volatile ("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/* A pointer to a fixed physical address, hidden from the compiler's bounds checks. */
static inline void *
phys (uintptr_t addr)
{
  __asm__ ("" : "+r"(addr));
  return (void *) addr;
}

static inline uint32_t
mmio_read32 (uintptr_t addr)
{
  return *(volatile uint32_t *) addr;
}

static inline void
mmio_write32 (uintptr_t addr, uint32_t v)
{
  *(volatile uint32_t *) addr = v;
}

static inline void
cpu_relax (void)
{
  __asm__ volatile ("pause" ::: "memory");
}

static inline void
irq_enable (void)
{
  __asm__ volatile ("sti" ::: "memory");
}

static inline void
irq_disable (void)
{
  __asm__ volatile ("cli" ::: "memory");
}

/* Enable interrupts and halt atomically (sti's shadow covers hlt), then disable. */
static inline void
wait_for_interrupt (void)
{
  __asm__ volatile ("sti; hlt; cli" ::: "memory");
}

static inline uint64_t
rdmsr (uint32_t msr)
{
  uint32_t lo, hi;
  __asm__ volatile ("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t) hi << 32) | lo;
}

/* --- libc bits --- */
void  *memset  (void *s, int c, size_t n);
void  *memcpy  (void *d, const void *s, size_t n);
int    memcmp  (const void *a, const void *b, size_t n);
size_t strlen  (const char *s);
int    strncmp (const char *a, const char *b, size_t n);

/* --- console --- */
void serial_init (void);
void serial_putc (char c);
int  printf      (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
int  vprintf     (const char *fmt, va_list ap);

/* --- exit --- */
void guest_exit     (uint32_t code) __attribute__ ((noreturn));
void guest_pass     (void) __attribute__ ((noreturn));
void guest_fail     (const char *fmt, ...) __attribute__ ((noreturn, format (printf, 1, 2)));
bool acpi_poweroff  (void);

/* --- boot information --- */
const char *boot_protocol_name (void);
const char *cmdline            (void);
bool        cmdline_has        (const char *word);
bool        cmdline_uint       (const char *key, unsigned long *out);
uint64_t    boot_rsdp_hint     (void);

typedef struct
{
  uint64_t addr;
  uint64_t size;
  uint32_t type;
} MemRegion;

int  boot_memmap (MemRegion *out, int max);

/* --- interrupts --- */
typedef struct
{
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;
} IntFrame;

typedef void (*IntHandler) (IntFrame *frame);

void idt_init        (void);
void idt_load        (void);
void set_int_handler (int vector, IntHandler handler);

/* --- ACPI --- */
typedef struct __attribute__ ((packed))
{
  char     signature[4];
  uint32_t length;
  uint8_t  revision;
  uint8_t  checksum;
  char     oem_id[6];
  char     oem_table_id[8];
  uint32_t oem_revision;
  uint32_t creator_id;
  uint32_t creator_revision;
} AcpiHeader;

typedef struct
{
  int      ncpus;
  uint8_t  apic_ids[MAX_CPUS];
  uint32_t lapic_addr;
  uint32_t ioapic_addr;
  uint32_t ioapic_gsi_base;
  uint32_t isa_gsi[16];         /* ISA IRQ -> GSI, after overrides */
  uint16_t isa_flags[16];       /* MPS INTI flags per ISA IRQ */
} MadtInfo;

uint8_t           acpi_checksum   (const void *p, size_t len);
uint64_t          acpi_find_rsdp  (void);
const AcpiHeader *acpi_find_table (const char sig[4], int index);
bool              acpi_parse_madt (MadtInfo *info);
bool              acpi_s5         (uint8_t *slp_typa, uint8_t *slp_typb);

/* --- local APIC, IOAPIC, PIC, PIT, RTC --- */
#define LAPIC_DEFAULT 0xfee00000u

uint32_t lapic_id            (void);
void     lapic_enable        (void);
void     lapic_eoi           (void);
void     lapic_timer_periodic (uint8_t vector, uint32_t initial, uint32_t divide_code);
void     lapic_timer_stop    (void);
void     lapic_send_ipi      (uint32_t apic_id, uint32_t icr_low);
void     ioapic_route        (uint32_t ioapic, uint32_t gsi, uint8_t vector, uint16_t flags,
                              uint8_t dest, bool masked);
void     pic_disable         (void);
void     pit_periodic        (unsigned hz);
void     pit_delay_ms        (unsigned ms);

typedef struct
{
  unsigned year, month, day, hour, minute, second;
} RtcTime;

uint8_t  cmos_read  (uint8_t index);
void     cmos_write (uint8_t index, uint8_t value);
void     rtc_read   (RtcTime *t);

/* --- SMP --- */
typedef void (*ApMain) (int cpu);

int  smp_start_aps (const MadtInfo *madt, ApMain fn, uint8_t *started_ids);

/* --- locks --- */
typedef volatile uint32_t Spinlock;

static inline void
spin_lock (Spinlock *l)
{
  while (__atomic_exchange_n (l, 1, __ATOMIC_ACQUIRE))
    while (*l)
      cpu_relax ();
}

static inline void
spin_unlock (Spinlock *l)
{
  __atomic_store_n (l, 0, __ATOMIC_RELEASE);
}
