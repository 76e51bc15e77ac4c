/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Core of the guest runtime: libc bits, serial console, printf, boot info, IDT, exit. */

#include "guest.h"

#define COM1         0x3f8
#define DEBUG_EXIT   0xf4
#define HVM_MAGIC    0x336ec578u

/* --------------------------------------------------------------- libc */

void *
memset (void *s, int c, size_t n)
{
  uint8_t *p = s;
  while (n--)
    *p++ = (uint8_t) c;
  return s;
}

void *
memcpy (void *d, const void *s, size_t n)
{
  uint8_t *dp = d;
  const uint8_t *sp = s;
  while (n--)
    *dp++ = *sp++;
  return d;
}

int
memcmp (const void *a, const void *b, size_t n)
{
  const uint8_t *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

size_t
strlen (const char *s)
{
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

int
strncmp (const char *a, const char *b, size_t n)
{
  for (; n; n--, a++, b++)
    {
      if (*a != *b)
        return (uint8_t) *a - (uint8_t) *b;
      if (!*a)
        return 0;
    }
  return 0;
}

/* --------------------------------------------------------------- serial */

void
serial_init (void)
{
  outb (COM1 + 1, 0x00);        /* IER: no interrupts */
  outb (COM1 + 3, 0x80);        /* LCR: DLAB */
  outb (COM1 + 0, 0x01);        /* 115200 baud */
  outb (COM1 + 1, 0x00);
  outb (COM1 + 3, 0x03);        /* 8N1 */
  outb (COM1 + 2, 0xc7);        /* FIFO on, cleared */
  outb (COM1 + 4, 0x03);        /* DTR | RTS */
}

void
serial_putc (char c)
{
  unsigned spins = 0;

  /* Wait for THRE, but never hang forever on a broken UART. */
  while (!(inb (COM1 + 5) & 0x20) && spins++ < 100000)
    cpu_relax ();
  outb (COM1, (uint8_t) c);
}

/* --------------------------------------------------------------- printf */

static Spinlock print_lock;

static void
put_str (const char *s, int width, bool left)
{
  int len = (int) strlen (s);

  if (!left)
    for (; width > len; width--)
      serial_putc (' ');
  while (*s)
    serial_putc (*s++);
  if (left)
    for (; width > len; width--)
      serial_putc (' ');
}

static void
put_num (uint64_t v, unsigned base, bool neg, int width, bool zero, bool upper)
{
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char buf[24];
  int n = 0;

  do
    {
      buf[n++] = digits[v % base];
      v /= base;
    }
  while (v);
  if (neg)
    {
      if (zero)
        {
          serial_putc ('-');
          width--;
        }
      else
        buf[n++] = '-';
    }
  for (; width > n; width--)
    serial_putc (zero ? '0' : ' ');
  while (n)
    serial_putc (buf[--n]);
}

int
vprintf (const char *fmt, va_list ap)
{
  spin_lock (&print_lock);
  for (; *fmt; fmt++)
    {
      int width = 0, lng = 0;
      bool zero = false, left = false;

      if (*fmt != '%')
        {
          serial_putc (*fmt);
          continue;
        }
      fmt++;
      if (*fmt == '-')
        {
          left = true;
          fmt++;
        }
      if (*fmt == '0')
        {
          zero = true;
          fmt++;
        }
      while (*fmt >= '0' && *fmt <= '9')
        width = width * 10 + (*fmt++ - '0');
      while (*fmt == 'l' || *fmt == 'z')
        {
          lng++;
          fmt++;
        }

      switch (*fmt)
        {
        case 'd':
        case 'i':
          {
            int64_t v = lng ? va_arg (ap, long) : va_arg (ap, int);
            put_num (v < 0 ? -(uint64_t) v : (uint64_t) v, 10, v < 0, width, zero, false);
            break;
          }
        case 'u':
        case 'x':
        case 'X':
          {
            uint64_t v = lng ? va_arg (ap, unsigned long) : va_arg (ap, unsigned);
            put_num (v, *fmt == 'u' ? 10 : 16, false, width, zero, *fmt == 'X');
            break;
          }
        case 'p':
          serial_putc ('0');
          serial_putc ('x');
          put_num ((uintptr_t) va_arg (ap, void *), 16, false, width, zero, false);
          break;
        case 's':
          {
            const char *s = va_arg (ap, const char *);
            put_str (s ? s : "(null)", width, left);
            break;
          }
        case 'c':
          serial_putc ((char) va_arg (ap, int));
          break;
        case '%':
          serial_putc ('%');
          break;
        case '\0':
          fmt--;
          break;
        default:
          serial_putc ('%');
          serial_putc (*fmt);
          break;
        }
    }
  spin_unlock (&print_lock);
  return 0;
}

int
printf (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  return 0;
}

/* --------------------------------------------------------------- exit */

void
guest_exit (uint32_t code)
{
  outl (DEBUG_EXIT, code);
  /* No debug-exit device: stop here. */
  for (;;)
    __asm__ volatile ("cli; hlt");
}

void
guest_pass (void)
{
  printf ("PASS\n");
  guest_exit (0);
}

void
guest_fail (const char *fmt, ...)
{
  va_list ap;

  printf ("FAIL: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  guest_exit (1);
}

/* --------------------------------------------------------------- boot information */

typedef struct __attribute__ ((packed))
{
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
} HvmStartInfo;

typedef struct __attribute__ ((packed))
{
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
} HvmMemmapEntry;

typedef struct __attribute__ ((packed))
{
  uint32_t flags;
  uint32_t mem_lower;
  uint32_t mem_upper;
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
} MultibootInfo;

typedef struct __attribute__ ((packed))
{
  uint32_t size;
  uint64_t addr;
  uint64_t len;
  uint32_t type;
} MultibootMmap;

static const char *the_cmdline = "";

const char *
boot_protocol_name (void)
{
  return boot_protocol == BOOT_PVH ? "pvh"
         : boot_protocol == BOOT_MULTIBOOT ? "multiboot" : "unknown";
}

const char *
cmdline (void)
{
  return the_cmdline;
}

static bool
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Finds word as a whole token, or "key=" at the start of a token. */
static const char *
cmdline_find (const char *word, bool prefix)
{
  const char *p = the_cmdline;
  size_t n = strlen (word);

  while (*p)
    {
      while (is_space (*p))
        p++;
      if (!strncmp (p, word, n) && (prefix || is_space (p[n]) || !p[n]))
        return p + n;
      while (*p && !is_space (*p))
        p++;
    }
  return NULL;
}

bool
cmdline_has (const char *word)
{
  return cmdline_find (word, false) != NULL;
}

bool
cmdline_uint (const char *key, unsigned long *out)
{
  char k[32];
  size_t n = strlen (key);
  const char *v;
  unsigned long r = 0;

  if (n + 2 > sizeof k)
    return false;
  memcpy (k, key, n);
  k[n] = '=';
  k[n + 1] = 0;
  v = cmdline_find (k, true);
  if (!v || *v < '0' || *v > '9')
    return false;
  while (*v >= '0' && *v <= '9')
    r = r * 10 + (unsigned long) (*v++ - '0');
  *out = r;
  return true;
}

uint64_t
boot_rsdp_hint (void)
{
  if (boot_protocol == BOOT_PVH)
    return ((const HvmStartInfo *) (uintptr_t) boot_info_paddr)->rsdp_paddr;
  return 0;
}

int
boot_memmap (MemRegion *out, int max)
{
  int n = 0;

  if (boot_protocol == BOOT_PVH)
    {
      const HvmStartInfo *si = (const void *) (uintptr_t) boot_info_paddr;
      const HvmMemmapEntry *e;

      if (si->version < 1 || !si->memmap_paddr)
        return 0;
      e = (const void *) (uintptr_t) si->memmap_paddr;
      for (uint32_t i = 0; i < si->memmap_entries && n < max; i++, n++)
        {
          out[n].addr = e[i].addr;
          out[n].size = e[i].size;
          out[n].type = e[i].type;
        }
    }
  else if (boot_protocol == BOOT_MULTIBOOT)
    {
      const MultibootInfo *mi = (const void *) (uintptr_t) boot_info_paddr;
      uintptr_t p, end;

      if (!(mi->flags & (1 << 6)))
        return 0;
      p = mi->mmap_addr;
      end = p + mi->mmap_length;
      while (p < end && n < max)
        {
          const MultibootMmap *m = (const void *) p;
          out[n].addr = m->addr;
          out[n].size = m->len;
          out[n].type = m->type;
          n++;
          p += m->size + 4;
        }
    }
  return n;
}

static bool
parse_boot_info (void)
{
  if (boot_protocol == BOOT_PVH)
    {
      const HvmStartInfo *si = (const void *) (uintptr_t) boot_info_paddr;

      if (si->magic != HVM_MAGIC)
        return false;
      if (si->cmdline_paddr)
        the_cmdline = (const char *) (uintptr_t) si->cmdline_paddr;
      return true;
    }
  if (boot_protocol == BOOT_MULTIBOOT)
    {
      const MultibootInfo *mi = (const void *) (uintptr_t) boot_info_paddr;

      if ((mi->flags & (1 << 2)) && mi->cmdline)
        the_cmdline = (const char *) (uintptr_t) mi->cmdline;
      return true;
    }
  return false;
}

/* --------------------------------------------------------------- IDT */

typedef struct __attribute__ ((packed))
{
  uint16_t off_lo;
  uint16_t sel;
  uint8_t  ist;
  uint8_t  type;
  uint16_t off_mid;
  uint32_t off_hi;
  uint32_t zero;
} IdtGate;

extern char isr_stubs[];
static IdtGate idt[256] __attribute__ ((aligned (16)));
static IntHandler handlers[256];

void
idt_init (void)
{
  for (int i = 0; i < 256; i++)
    {
      uintptr_t a = (uintptr_t) isr_stubs + 16 * i;

      idt[i].off_lo = a & 0xffff;
      idt[i].sel = 0x18;
      idt[i].ist = 0;
      idt[i].type = 0x8e;
      idt[i].off_mid = (a >> 16) & 0xffff;
      idt[i].off_hi = a >> 32;
      idt[i].zero = 0;
    }
  idt_load ();
}

void
idt_load (void)
{
  struct __attribute__ ((packed))
  {
    uint16_t limit;
    uint64_t base;
  } d = { sizeof idt - 1, (uintptr_t) idt };

  __asm__ volatile ("lidt %0" : : "m"(d));
}

void
set_int_handler (int vector, IntHandler handler)
{
  handlers[vector & 0xff] = handler;
}

void isr_dispatch (IntFrame *f);

void
isr_dispatch (IntFrame *f)
{
  IntHandler h = handlers[f->vector & 0xff];

  if (h)
    {
      h (f);
      if (f->vector >= 32 && f->vector != 0xff)
        lapic_eoi ();
      return;
    }
  if (f->vector == 0xff)
    return;                     /* spurious */
  printf ("exception: vector %lu error 0x%lx rip 0x%lx\n", f->vector, f->error, f->rip);
  guest_fail ("unexpected exception %lu", f->vector);
}

/* --------------------------------------------------------------- start */

void runtime_start (void);

void
runtime_start (void)
{
  int r;

  serial_init ();
  idt_init ();
  if (!parse_boot_info ())
    guest_fail ("bad boot information (protocol %u, info at 0x%x)",
                boot_protocol, boot_info_paddr);
  r = guest_main ();
  if (r == 0)
    guest_pass ();
  guest_fail ("guest_main returned %d", r);
}
