/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * demo: the demo machine that Vireo offers on first start. It needs nothing but the
 * machine itself, so it works on any host, and it is cheap: it draws only what changes and
 * halts between frames.
 *
 *  - Screen: finds the bochs-display card (1234:1111; QEMU's `-device bochs-display` or
 *    `-vga std`), assigns its BARs when no firmware did, sets 1024x768x32 (else 800x600)
 *    through the dispi registers, and draws a dusk landscape once (sky gradient, sun, clouds,
 *    hills, the title) into a shadow buffer in RAM, row batches at a time. Then, paced by
 *    the PIT at 20 Hz, only small rectangles change: three birds flap across the sky, the
 *    clock and the uptime tick once a second, the text box shows what is typed.
 *    Without a card it prints "display: none" and runs on the serial console alone.
 *  - Keyboard: the i8042 (scan code set 1, translation on, as firmware leaves it) by IRQ 1:
 *    Shift, Caps Lock, Enter, Backspace, Tab, Esc (clears the box). Each line typed there is
 *    also printed on the serial console as "keyboard: TEXT".
 *  - Serial console (COM1, 115200 8N1, receive interrupts): a banner and the prompt
 *    "demo> "; commands help, uptime, time, mem, cpus, screen, echo TEXT, color NAME,
 *    clear, poweroff. Lines end in "\r\n" (a terminal on a raw pty needs the CR).
 *  - ACPI: the power button (PM1 PWRBTN_EN, the SCI through the IOAPIC, polled as well)
 *    prints "power button: shutting down", shows it, and powers off (S5).
 *
 * Everything is integer arithmetic (-mgeneral-regs-only). The font is this file's own: 8x16
 * cells, glyphs 7 pixels wide with 2-pixel stems; the larger text is the same glyphs scaled
 * by 2 and 4 with the Scale2x (EPX) rule, which rounds the diagonals.
 */

#include "guest.h"
#include "pci.h"

#define HZ            20
#define PIT_VECTOR    0x30
#define KBD_VECTOR    0x31
#define COM1_VECTOR   0x34
#define SCI_VECTOR    0x39

#define COM1          0x3f8
#define KBC_DATA      0x60
#define KBC_STATUS    0x64

#define MAX_W         1024
#define MAX_H         768

/* ==================================================================== text formatting */

static char *
put_uint (char *p, char *end, uint64_t v, unsigned base, int width, char pad)
{
  char tmp[24];
  int n = 0;

  do
    {
      tmp[n++] = "0123456789abcdef"[v % base];
      v /= base;
    }
  while (v);
  for (; width > n && p < end; width--)
    *p++ = pad;
  while (n && p < end)
    *p++ = tmp[--n];
  return p;
}

/* A small vsnprintf: %s %c %d %u %x with l, a width and '0' or '-'. */
static size_t
vfmt (char *buf, size_t size, const char *f, va_list ap)
{
  char *p = buf, *end = buf + size - 1;

  for (; *f && p < end; f++)
    {
      int width = 0;
      bool zero = false, left = false, lng = false;

      if (*f != '%')
        {
          *p++ = *f;
          continue;
        }
      f++;
      if (*f == '-')
        left = true, f++;
      if (*f == '0')
        zero = true, f++;
      while (*f >= '0' && *f <= '9')
        width = width * 10 + (*f++ - '0');
      while (*f == 'l')
        lng = true, f++;
      switch (*f)
        {
        case 'd':
          {
            long v = lng ? va_arg (ap, long) : va_arg (ap, int);
            if (v < 0 && p < end)
              *p++ = '-';
            p = put_uint (p, end, v < 0 ? -(uint64_t) v : (uint64_t) v, 10, width, zero ? '0' : ' ');
            break;
          }
        case 'u':
        case 'x':
          {
            uint64_t v = lng ? va_arg (ap, unsigned long) : va_arg (ap, unsigned);
            p = put_uint (p, end, v, *f == 'u' ? 10 : 16, width, zero ? '0' : ' ');
            break;
          }
        case 's':
          {
            const char *s = va_arg (ap, const char *);
            int n = (int) strlen (s);

            if (!left)
              for (; width > n && p < end; width--)
                *p++ = ' ';
            while (*s && p < end)
              *p++ = *s++;
            if (left)
              for (; width > n && p < end; width--)
                *p++ = ' ';
            break;
          }
        case 'c':
          *p++ = (char) va_arg (ap, int);
          break;
        case '\0':
          f--;
          break;
        default:
          *p++ = *f;
          break;
        }
    }
  *p = 0;
  return (size_t) (p - buf);
}

static size_t __attribute__ ((format (printf, 3, 4)))
fmt (char *buf, size_t size, const char *f, ...)
{
  va_list ap;
  size_t n;

  va_start (ap, f);
  n = vfmt (buf, size, f, ap);
  va_end (ap);
  return n;
}

static bool
streq (const char *a, const char *b)
{
  return strlen (a) == strlen (b) && !memcmp (a, b, strlen (a));
}

/* ==================================================================== serial console */

/* Writes @s with "\n" as "\r\n". */
static void
con_write (const char *s)
{
  for (; *s; s++)
    {
      if (*s == '\n')
        serial_putc ('\r');
      serial_putc (*s);
    }
}

static void __attribute__ ((format (printf, 1, 2)))
say (const char *f, ...)
{
  char buf[256];
  va_list ap;

  va_start (ap, f);
  vfmt (buf, sizeof buf, f, ap);
  va_end (ap);
  con_write (buf);
}

/* ==================================================================== interrupts */

#define RING 256

typedef struct
{
  uint8_t           buf[RING];
  volatile uint32_t head;       /* written by the handler */
  volatile uint32_t tail;       /* written by the main loop */
} Ring;

static Ring serial_rx, kbd_rx;
static volatile uint32_t ticks;
static volatile bool power_pressed;
static uint16_t pm1a_evt, pm1_en_port;

static void
ring_push (Ring *r, uint8_t b)
{
  if (r->head - r->tail < RING)
    {
      r->buf[r->head % RING] = b;
      r->head++;
    }
}

static int
ring_pop (Ring *r)
{
  int b;

  if (r->head == r->tail)
    return -1;
  b = r->buf[r->tail % RING];
  r->tail++;
  return b;
}

static void
on_pit (IntFrame *f)
{
  ticks++;
}

static void
on_serial (IntFrame *f)
{
  for (int i = 0; i < 64 && (inb (COM1 + 5) & 0x01); i++)
    ring_push (&serial_rx, inb (COM1));
}

static void
on_kbd (IntFrame *f)
{
  for (int i = 0; i < 16; i++)
    {
      uint8_t st = inb (KBC_STATUS);

      if (!(st & 0x01))
        break;
      if (st & 0x20)
        (void) inb (KBC_DATA);          /* a mouse byte: not ours */
      else
        ring_push (&kbd_rx, inb (KBC_DATA));
    }
}

#define PM1_PWRBTN 0x0100

static void
on_sci (IntFrame *f)
{
  uint16_t sts = inw (pm1a_evt);

  if (sts & PM1_PWRBTN)
    {
      outw (pm1a_evt, PM1_PWRBTN);      /* write 1 to clear: the SCI line drops */
      power_pressed = true;
    }
}

static uint32_t
uptime_s (void)
{
  return ticks / HZ;
}
/* ==================================================================== font */

/* ASCII 32..126; rows 2..13 of each 8x16 cell (rows 0, 1, 14 and 15 are empty). Bit 7 is
 * the leftmost pixel. Capitals span rows 2-11, the x-height starts at row 5, descenders
 * reach row 13. */
#define FONT_FIRST 32
#define FONT_LAST  126
#define FONT_ROW0  2
#define FONT_ROWS  12

static const uint8_t font[FONT_LAST - FONT_FIRST + 1][FONT_ROWS] = {
  /* ' ' */ { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '!' */ { 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x00, 0x18, 0x18, 0x00, 0x00 },
  /* '"' */ { 0x6c, 0x6c, 0x48, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '#' */ { 0x00, 0x6c, 0x6c, 0xfe, 0x6c, 0x6c, 0xfe, 0x6c, 0x6c, 0x00, 0x00, 0x00 },
  /* '$' */ { 0x10, 0x7c, 0xd6, 0xd0, 0x78, 0x1c, 0x16, 0xd6, 0x7c, 0x10, 0x00, 0x00 },
  /* '%' */ { 0x00, 0x00, 0xc2, 0xc6, 0x0c, 0x18, 0x30, 0x60, 0xc6, 0x86, 0x00, 0x00 },
  /* '&' */ { 0x38, 0x6c, 0x6c, 0x38, 0x76, 0xdc, 0xcc, 0xcc, 0xdc, 0x76, 0x00, 0x00 },
  /* '\'' */ { 0x18, 0x18, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '(' */ { 0x0c, 0x18, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x18, 0x0c, 0x00, 0x00 },
  /* ')' */ { 0x60, 0x30, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x30, 0x60, 0x00, 0x00 },
  /* '*' */ { 0x00, 0x00, 0x00, 0x6c, 0x38, 0xfe, 0x38, 0x6c, 0x00, 0x00, 0x00, 0x00 },
  /* '+' */ { 0x00, 0x00, 0x00, 0x18, 0x18, 0x7e, 0x18, 0x18, 0x00, 0x00, 0x00, 0x00 },
  /* ',' */ { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x18, 0x30, 0x00 },
  /* '-' */ { 0x00, 0x00, 0x00, 0x00, 0x00, 0x7e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '.' */ { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x18, 0x00, 0x00 },
  /* '/' */ { 0x02, 0x06, 0x0c, 0x0c, 0x18, 0x30, 0x60, 0x60, 0xc0, 0x80, 0x00, 0x00 },
  /* '0' */ { 0x38, 0x6c, 0xc6, 0xce, 0xd6, 0xd6, 0xe6, 0xc6, 0x6c, 0x38, 0x00, 0x00 },
  /* '1' */ { 0x18, 0x38, 0x78, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x7e, 0x00, 0x00 },
  /* '2' */ { 0x7c, 0xc6, 0x06, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0xc6, 0xfe, 0x00, 0x00 },
  /* '3' */ { 0x7c, 0xc6, 0x06, 0x06, 0x3c, 0x06, 0x06, 0x06, 0xc6, 0x7c, 0x00, 0x00 },
  /* '4' */ { 0x0c, 0x1c, 0x3c, 0x6c, 0xcc, 0xfe, 0x0c, 0x0c, 0x0c, 0x1e, 0x00, 0x00 },
  /* '5' */ { 0xfe, 0xc0, 0xc0, 0xc0, 0xfc, 0x06, 0x06, 0x06, 0xc6, 0x7c, 0x00, 0x00 },
  /* '6' */ { 0x38, 0x60, 0xc0, 0xc0, 0xfc, 0xc6, 0xc6, 0xc6, 0xc6, 0x7c, 0x00, 0x00 },
  /* '7' */ { 0xfe, 0xc6, 0x06, 0x0c, 0x18, 0x30, 0x30, 0x30, 0x30, 0x30, 0x00, 0x00 },
  /* '8' */ { 0x7c, 0xc6, 0xc6, 0xc6, 0x7c, 0xc6, 0xc6, 0xc6, 0xc6, 0x7c, 0x00, 0x00 },
  /* '9' */ { 0x7c, 0xc6, 0xc6, 0xc6, 0x7e, 0x06, 0x06, 0x06, 0x0c, 0x78, 0x00, 0x00 },
  /* ':' */ { 0x00, 0x00, 0x00, 0x18, 0x18, 0x00, 0x00, 0x18, 0x18, 0x00, 0x00, 0x00 },
  /* ';' */ { 0x00, 0x00, 0x00, 0x18, 0x18, 0x00, 0x00, 0x18, 0x18, 0x30, 0x00, 0x00 },
  /* '<' */ { 0x00, 0x00, 0x06, 0x0c, 0x18, 0x30, 0x18, 0x0c, 0x06, 0x00, 0x00, 0x00 },
  /* '=' */ { 0x00, 0x00, 0x00, 0x00, 0x7e, 0x00, 0x7e, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '>' */ { 0x00, 0x00, 0xc0, 0x60, 0x30, 0x18, 0x30, 0x60, 0xc0, 0x00, 0x00, 0x00 },
  /* '?' */ { 0x7c, 0xc6, 0x06, 0x0c, 0x18, 0x18, 0x18, 0x00, 0x18, 0x18, 0x00, 0x00 },
  /* '@' */ { 0x7c, 0xc6, 0xc6, 0xde, 0xde, 0xde, 0xdc, 0xc0, 0xc0, 0x7c, 0x00, 0x00 },
  /* 'A' */ { 0x38, 0x6c, 0xc6, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'B' */ { 0xfc, 0xc6, 0xc6, 0xc6, 0xfc, 0xc6, 0xc6, 0xc6, 0xc6, 0xfc, 0x00, 0x00 },
  /* 'C' */ { 0x3c, 0x66, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0x66, 0x3c, 0x00, 0x00 },
  /* 'D' */ { 0xf8, 0xcc, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xcc, 0xf8, 0x00, 0x00 },
  /* 'E' */ { 0xfe, 0xc0, 0xc0, 0xc0, 0xfc, 0xc0, 0xc0, 0xc0, 0xc0, 0xfe, 0x00, 0x00 },
  /* 'F' */ { 0xfe, 0xc0, 0xc0, 0xc0, 0xfc, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0x00, 0x00 },
  /* 'G' */ { 0x3c, 0x66, 0xc0, 0xc0, 0xc0, 0xde, 0xc6, 0xc6, 0x66, 0x3c, 0x00, 0x00 },
  /* 'H' */ { 0xc6, 0xc6, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'I' */ { 0x3c, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x3c, 0x00, 0x00 },
  /* 'J' */ { 0x1e, 0x06, 0x06, 0x06, 0x06, 0x06, 0xc6, 0xc6, 0x6c, 0x38, 0x00, 0x00 },
  /* 'K' */ { 0xc6, 0xcc, 0xd8, 0xf0, 0xe0, 0xf0, 0xd8, 0xcc, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'L' */ { 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xfe, 0x00, 0x00 },
  /* 'M' */ { 0xc6, 0xee, 0xfe, 0xd6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'N' */ { 0xc6, 0xc6, 0xe6, 0xf6, 0xde, 0xce, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'O' */ { 0x38, 0x6c, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x6c, 0x38, 0x00, 0x00 },
  /* 'P' */ { 0xfc, 0xc6, 0xc6, 0xc6, 0xfc, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0x00, 0x00 },
  /* 'Q' */ { 0x38, 0x6c, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xd6, 0x6c, 0x3c, 0x06, 0x00 },
  /* 'R' */ { 0xfc, 0xc6, 0xc6, 0xc6, 0xfc, 0xf0, 0xd8, 0xcc, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'S' */ { 0x7c, 0xc6, 0xc0, 0xc0, 0x7c, 0x06, 0x06, 0x06, 0xc6, 0x7c, 0x00, 0x00 },
  /* 'T' */ { 0x7e, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x00, 0x00 },
  /* 'U' */ { 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x6c, 0x38, 0x00, 0x00 },
  /* 'V' */ { 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x6c, 0x6c, 0x38, 0x10, 0x00, 0x00 },
  /* 'W' */ { 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xd6, 0xd6, 0xfe, 0xee, 0xc6, 0x00, 0x00 },
  /* 'X' */ { 0xc6, 0xc6, 0x6c, 0x6c, 0x38, 0x38, 0x6c, 0x6c, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'Y' */ { 0xc6, 0xc6, 0xc6, 0x6c, 0x38, 0x18, 0x18, 0x18, 0x18, 0x3c, 0x00, 0x00 },
  /* 'Z' */ { 0xfe, 0x06, 0x06, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0xc0, 0xfe, 0x00, 0x00 },
  /* '[' */ { 0x3c, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x3c, 0x00, 0x00 },
  /* '\\' */ { 0x80, 0xc0, 0x60, 0x60, 0x30, 0x18, 0x0c, 0x0c, 0x06, 0x02, 0x00, 0x00 },
  /* ']' */ { 0x78, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x78, 0x00, 0x00 },
  /* '^' */ { 0x10, 0x38, 0x6c, 0xc6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* '_' */ { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe },
  /* '`' */ { 0x30, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
  /* 'a' */ { 0x00, 0x00, 0x00, 0x78, 0x0c, 0x7c, 0xcc, 0xcc, 0xcc, 0x76, 0x00, 0x00 },
  /* 'b' */ { 0xc0, 0xc0, 0xc0, 0xfc, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xfc, 0x00, 0x00 },
  /* 'c' */ { 0x00, 0x00, 0x00, 0x7c, 0xc6, 0xc0, 0xc0, 0xc0, 0xc6, 0x7c, 0x00, 0x00 },
  /* 'd' */ { 0x06, 0x06, 0x06, 0x7e, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x7e, 0x00, 0x00 },
  /* 'e' */ { 0x00, 0x00, 0x00, 0x7c, 0xc6, 0xc6, 0xfe, 0xc0, 0xc6, 0x7c, 0x00, 0x00 },
  /* 'f' */ { 0x3c, 0x66, 0x60, 0xf0, 0x60, 0x60, 0x60, 0x60, 0x60, 0xf0, 0x00, 0x00 },
  /* 'g' */ { 0x00, 0x00, 0x00, 0x7e, 0xc6, 0xc6, 0xc6, 0xc6, 0x7e, 0x06, 0xc6, 0x7c },
  /* 'h' */ { 0xc0, 0xc0, 0xc0, 0xdc, 0xe6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'i' */ { 0x00, 0x18, 0x00, 0x38, 0x18, 0x18, 0x18, 0x18, 0x18, 0x3c, 0x00, 0x00 },
  /* 'j' */ { 0x00, 0x06, 0x00, 0x0e, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0xc6, 0x7c },
  /* 'k' */ { 0xc0, 0xc0, 0xc0, 0xcc, 0xd8, 0xf0, 0xf0, 0xd8, 0xcc, 0xc6, 0x00, 0x00 },
  /* 'l' */ { 0x38, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x3c, 0x00, 0x00 },
  /* 'm' */ { 0x00, 0x00, 0x00, 0xec, 0xfe, 0xd6, 0xd6, 0xd6, 0xd6, 0xc6, 0x00, 0x00 },
  /* 'n' */ { 0x00, 0x00, 0x00, 0xdc, 0xe6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00 },
  /* 'o' */ { 0x00, 0x00, 0x00, 0x7c, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x7c, 0x00, 0x00 },
  /* 'p' */ { 0x00, 0x00, 0x00, 0xfc, 0xc6, 0xc6, 0xc6, 0xc6, 0xfc, 0xc0, 0xc0, 0xc0 },
  /* 'q' */ { 0x00, 0x00, 0x00, 0x7e, 0xc6, 0xc6, 0xc6, 0xc6, 0x7e, 0x06, 0x06, 0x06 },
  /* 'r' */ { 0x00, 0x00, 0x00, 0xdc, 0xe6, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0x00, 0x00 },
  /* 's' */ { 0x00, 0x00, 0x00, 0x7c, 0xc6, 0x60, 0x38, 0x0c, 0xc6, 0x7c, 0x00, 0x00 },
  /* 't' */ { 0x00, 0x30, 0x30, 0xfc, 0x30, 0x30, 0x30, 0x30, 0x36, 0x1c, 0x00, 0x00 },
  /* 'u' */ { 0x00, 0x00, 0x00, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x7e, 0x00, 0x00 },
  /* 'v' */ { 0x00, 0x00, 0x00, 0xc6, 0xc6, 0xc6, 0x6c, 0x6c, 0x38, 0x10, 0x00, 0x00 },
  /* 'w' */ { 0x00, 0x00, 0x00, 0xc6, 0xc6, 0xd6, 0xd6, 0xd6, 0xfe, 0x6c, 0x00, 0x00 },
  /* 'x' */ { 0x00, 0x00, 0x00, 0xc6, 0x6c, 0x38, 0x38, 0x38, 0x6c, 0xc6, 0x00, 0x00 },
  /* 'y' */ { 0x00, 0x00, 0x00, 0xc6, 0xc6, 0xc6, 0xc6, 0xc6, 0x7e, 0x06, 0x0c, 0xf8 },
  /* 'z' */ { 0x00, 0x00, 0x00, 0xfe, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0xfe, 0x00, 0x00 },
  /* '{' */ { 0x0e, 0x18, 0x18, 0x18, 0x70, 0x18, 0x18, 0x18, 0x18, 0x0e, 0x00, 0x00 },
  /* '|' */ { 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x00 },
  /* '}' */ { 0xe0, 0x30, 0x30, 0x30, 0x1c, 0x30, 0x30, 0x30, 0x30, 0xe0, 0x00, 0x00 },
  /* '~' */ { 0x76, 0xdc, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

static uint8_t
glyph_row (char c, int row)
{
  if ((uint8_t) c < FONT_FIRST || (uint8_t) c > FONT_LAST || row < FONT_ROW0
      || row >= FONT_ROW0 + FONT_ROWS)
    return 0;
  return font[(uint8_t) c - FONT_FIRST][row - FONT_ROW0];
}

/*
 * Scale2x (EPX) on a byte-per-pixel mask: each pixel becomes 2x2, and a corner takes the
 * colour of its two neighbours when they agree (and the other two do not), which rounds
 * staircases into diagonals.
 */
static void
scale2x (const uint8_t *src, int w, int h, uint8_t *dst)
{
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        uint8_t p = src[y * w + x];
        uint8_t a = y > 0 ? src[(y - 1) * w + x] : 0;
        uint8_t b = x < w - 1 ? src[y * w + x + 1] : 0;
        uint8_t c = x > 0 ? src[y * w + x - 1] : 0;
        uint8_t d = y < h - 1 ? src[(y + 1) * w + x] : 0;
        uint8_t *o = dst + (2 * y) * (2 * w) + 2 * x;

        o[0] = (c == a && c != d && a != b) ? a : p;
        o[1] = (a == b && a != c && b != d) ? b : p;
        o[2 * w] = (d == c && d != b && c != a) ? c : p;
        o[2 * w + 1] = (b == d && b != a && d != c) ? d : p;
      }
}

/* The font at twice the size, smoothed: 16x32 cells as 16-bit rows (bit 15 leftmost). */
static uint16_t font2x[FONT_LAST - FONT_FIRST + 1][32];

static void
font2x_init (void)
{
  static uint8_t src[16 * 8], dst[32 * 16];

  for (int g = 0; g <= FONT_LAST - FONT_FIRST; g++)
    {
      for (int y = 0; y < 16; y++)
        for (int x = 0; x < 8; x++)
          src[y * 8 + x] = (glyph_row ((char) (g + FONT_FIRST), y) >> (7 - x)) & 1;
      scale2x (src, 8, 16, dst);
      for (int y = 0; y < 32; y++)
        {
          uint16_t bits = 0;

          for (int x = 0; x < 16; x++)
            bits |= (uint16_t) (dst[y * 16 + x] << (15 - x));
          font2x[g][y] = bits;
        }
    }
}

/* ==================================================================== small maths */

static const int16_t sin_quarter[65] = {
  0, 25, 50, 75, 100, 125, 150, 175, 200, 224, 249, 273, 297, 321, 345, 369, 392, 415, 438,
  460, 483, 505, 526, 548, 569, 590, 610, 630, 650, 669, 688, 706, 724, 742, 759, 775, 792,
  807, 822, 837, 851, 865, 878, 891, 903, 915, 926, 936, 946, 955, 964, 972, 980, 987, 993,
  999, 1004, 1009, 1013, 1016, 1019, 1021, 1023, 1024, 1024,
};

/* sin (2 pi a / 256) * 1024 */
static int
isin (unsigned a)
{
  a &= 255;
  if (a < 64)
    return sin_quarter[a];
  if (a < 128)
    return sin_quarter[128 - a];
  if (a < 192)
    return -sin_quarter[a - 128];
  return -sin_quarter[256 - a];
}

static uint32_t
isqrt (uint32_t v)
{
  uint32_t r = 0, bit = 1u << 30;

  while (bit > v)
    bit >>= 2;
  while (bit)
    {
      if (v >= r + bit)
        {
          v -= r + bit;
          r = (r >> 1) + bit;
        }
      else
        r >>= 1;
      bit >>= 2;
    }
  return r;
}

/* a + (b - a) * t / 256 per channel, t in 0..256 */
static uint32_t
mix (uint32_t a, uint32_t b, uint32_t t)
{
  uint32_t rb = (((a & 0xff00ff) * (256 - t) + (b & 0xff00ff) * t) >> 8) & 0xff00ff;
  uint32_t g = (((a & 0x00ff00) * (256 - t) + (b & 0x00ff00) * t) >> 8) & 0x00ff00;

  return rb | g;
}

static int
imin (int a, int b)
{
  return a < b ? a : b;
}

static int
imax (int a, int b)
{
  return a > b ? a : b;
}

/* ==================================================================== the display card */

#define VBE_ID          0x0
#define VBE_XRES        0x1
#define VBE_YRES        0x2
#define VBE_BPP         0x3
#define VBE_ENABLE      0x4
#define VBE_BANK        0x5
#define VBE_VIRT_WIDTH  0x6
#define VBE_VIRT_HEIGHT 0x7
#define VBE_X_OFFSET    0x8
#define VBE_Y_OFFSET    0x9
#define VBE_VIDEO_MEMORY_64K 0xa
#define VBE_ENABLED     0x01
#define VBE_LFB_ENABLED 0x40

static uintptr_t dispi_mmio;            /* BAR2 + 0x500; 0: the 0x1ce/0x1cf ports */
static volatile uint32_t *fb;
static uint64_t fb_phys;
static int W, H;                        /* the mode; rows are W pixels apart */
static const char *card_name = "none";

static uint16_t
dispi_read (unsigned index)
{
  if (dispi_mmio)
    return *(volatile uint16_t *) (dispi_mmio + 0x500 + index * 2);
  outw (0x1ce, (uint16_t) index);
  return inw (0x1cf);
}

static void
dispi_write (unsigned index, uint16_t v)
{
  if (dispi_mmio)
    *(volatile uint16_t *) (dispi_mmio + 0x500 + index * 2) = v;
  else
    {
      outw (0x1ce, (uint16_t) index);
      outw (0x1cf, v);
    }
}

static bool
dispi_set_mode (int w, int h)
{
  if ((uint32_t) dispi_read (VBE_VIDEO_MEMORY_64K) * 65536u < (uint32_t) (w * h * 4))
    return false;
  /* The sequence Linux's bochs DRM driver uses. */
  dispi_write (VBE_ENABLE, 0);
  dispi_write (VBE_BPP, 32);
  dispi_write (VBE_XRES, (uint16_t) w);
  dispi_write (VBE_YRES, (uint16_t) h);
  dispi_write (VBE_BANK, 0);
  dispi_write (VBE_VIRT_WIDTH, (uint16_t) w);
  dispi_write (VBE_VIRT_HEIGHT, (uint16_t) h);
  dispi_write (VBE_X_OFFSET, 0);
  dispi_write (VBE_Y_OFFSET, 0);
  dispi_write (VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
  return dispi_read (VBE_XRES) == w && dispi_read (VBE_YRES) == h
         && dispi_read (VBE_BPP) == 32 && dispi_read (VBE_VIRT_WIDTH) == w;
}

static bool
display_init (void)
{
  PciDevice devs[32];
  const PciDevice *d = NULL;
  int n = pci_scan (devs, 32);
  uint64_t mmio;

  for (int i = 0; i < n && !d; i++)
    if (devs[i].vendor_id == 0x1234 && devs[i].device_id == 0x1111)
      d = &devs[i];
  if (!d)
    return false;
  card_name = (d->class_code >> 8) == 0x0300 ? "std-vga" : "bochs-display";
  fb_phys = pci_bar_map (d, 0);
  mmio = 0;
  {
    PciBar bar;
    if (pci_bar_probe (d, 2, &bar) && bar.type != PCI_BAR_NONE && bar.size >= 0x1000)
      mmio = pci_bar_map (d, 2);
  }
  if (!fb_phys || (!mmio && card_name[0] == 'b'))
    return false;
  dispi_mmio = (uintptr_t) mmio;
  if ((dispi_read (VBE_ID) & 0xfff0) != 0xb0c0)
    return false;
  if (dispi_set_mode (1024, 768))
    W = 1024, H = 768;
  else if (dispi_set_mode (800, 600))
    W = 800, H = 600;
  else
    return false;
  fb = phys ((uintptr_t) fb_phys);
  return true;
}

/* ==================================================================== the scene */

typedef struct
{
  const char *name;
  uint32_t    top, horizon, sun;
  bool        stars;
} Sky;

static const Sky skies[] = {
  { "dusk",   0x1b2557, 0xf59c6e, 0xffd889, false },
  { "blue",   0x2764c8, 0xbfe0fb, 0xfff6c8, false },
  { "dawn",   0x4a5fa8, 0xffc7a6, 0xfff1cf, false },
  { "night",  0x040817, 0x1c2c5e, 0xe6ebff, true },
  { "teal",   0x0d4656, 0x96d8c9, 0xfbf3c6, false },
  { "purple", 0x2a1045, 0xd77bb2, 0xffd3a4, true },
  { "red",    0x3b0a10, 0xff7043, 0xffe08a, false },
  { "green",  0x0c3a2c, 0xb3df90, 0xfff7bd, false },
  { "grey",   0x373b44, 0xc8ccd3, 0xf4f4f4, false },
};

static const Sky *sky = &skies[0];

/* Colours that follow the sky. */
static uint32_t far_colour, near_top_colour, near_bottom_colour, rim_colour, cloud_colour;
static uint32_t bird_colour[3], title_shadow;

/* Layout (depends on the mode). */
static int horizon;
static uint16_t far_top[MAX_W], near_top[MAX_W];

/* A hill's outline split where it turns, so that each piece is monotonic and the columns
 * a row covers can be found by binary search. */
typedef struct
{
  int16_t a, b;                 /* columns [a, b) */
  bool    rising;               /* top[x] decreases with x (the hill goes up) */
} Piece;

#define MAX_PIECES 32
static Piece far_pieces[MAX_PIECES], near_pieces[MAX_PIECES];
static int n_far_pieces, n_near_pieces;
static int far_min, near_min;
static int sun_x, sun_y, sun_r;
static int panel_x, panel_y, panel_w, panel_h;
static uint32_t panel_tint;             /* 3/4 of the panel colour, pre-multiplied */
static uint16_t star_x[MAX_H];
static uint8_t star_b[MAX_H];

#define TITLE         "Vireo demo machine"
#define TITLE_LEN     18
#define TITLE_W       (TITLE_LEN * 32)
#define TITLE_H       64
#define TITLE_RUNS    96
static uint8_t title_mask[TITLE_H * TITLE_W];
/* The title's rows as runs of lit pixels: start and length. */
static uint16_t title_runs[TITLE_H][TITLE_RUNS][2];
static uint8_t title_nruns[TITLE_H];
static int title_x, title_y;

/* One-line static texts drawn into the background. */
typedef struct
{
  int         x, y;
  const char *text;
  uint32_t    colour;
} Label;

static Label labels[4];
static int n_labels;

/* A cloud: discs (dx, dy, r) around (x, y), cut flat at y + base. */
typedef struct
{
  int x, y, base;
  int8_t discs[5][3];
} Cloud;

static Cloud clouds[3];

/* The text box. */
#define TB_ROWS       6
#define TB_COLS_MAX   96
#define TB_LINE_H     18
static int tb_x, tb_y, tb_cols, tb_rows;
static char tb_text[TB_ROWS][TB_COLS_MAX];
static int tb_row, tb_col;
static bool tb_cursor_on;

static int clock_x, clock_y, clock_scale = 2, uptime_x, uptime_y;

/* The background, without anything that moves or changes: what a moving thing leaves. */
static uint32_t shadow[MAX_W * MAX_H];

static void
sky_colours (void)
{
  far_colour = mix (mix (sky->horizon, sky->top, 110), 0x101828, 90);
  near_top_colour = mix (sky->top, 0x0a0f14, 150);
  near_bottom_colour = mix (sky->top, 0x000000, 215);
  rim_colour = mix (near_top_colour, sky->horizon, 110);
  cloud_colour = mix (sky->horizon, 0xffffff, 140);
  bird_colour[0] = mix (sky->top, 0x000000, 170);
  bird_colour[1] = mix (sky->top, 0x000000, 120);
  bird_colour[2] = mix (sky->top, 0x000000, 90);
  title_shadow = mix (sky->top, 0x000000, 140);
}

/* Splits @top into monotonic pieces, turning only where the outline has moved 3 pixels
 * back from its last extreme (rounding makes small wobbles), and then flattens the wobbles
 * inside each piece so that it is strictly monotonic. */
static int
split_pieces (uint16_t *top, Piece *out)
{
  int n = 0, a = 0, dir = 0, ext = top[0], ext_x = 0;

  for (int x = 1; x < W; x++)
    {
      int v = top[x];

      if (dir == 0)
        {
          if (v != top[0])
            dir = v > top[0] ? 1 : -1, ext = v, ext_x = x;
          continue;
        }
      if (dir > 0 ? v >= ext : v <= ext)
        ext = v, ext_x = x;
      else if ((dir > 0 ? ext - v : v - ext) >= 3 && n < MAX_PIECES - 1)
        {
          out[n++] = (Piece) { (int16_t) a, (int16_t) (ext_x + 1), dir < 0 };
          a = ext_x + 1;
          dir = -dir;
          ext = v;
          ext_x = x;
        }
    }
  out[n++] = (Piece) { (int16_t) a, (int16_t) W, dir < 0 };
  for (int i = 0; i < n; i++)
    for (int x = out[i].a + 1; x < out[i].b; x++)
      if (out[i].rising ? top[x] > top[x - 1] : top[x] < top[x - 1])
        top[x] = top[x - 1];
  return n;
}

static void
layout (void)
{
  uint32_t seed = 12345;

  horizon = H * 72 / 100;
  far_min = near_min = H;
  for (int x = 0; x < W; x++)
    {
      int f = horizon - H / 22 + (isin ((unsigned) (x * 256 / 380 + 20)) * (H / 26)
                                  + isin ((unsigned) (x * 256 / 150 + 90)) * (H / 70)) / 1024;
      int n = horizon + H / 30 + (isin ((unsigned) (x * 256 / 610 + 170)) * (H / 24)
                                  + isin ((unsigned) (x * 256 / 230 + 40)) * (H / 90)) / 1024;

      far_top[x] = (uint16_t) f;
      near_top[x] = (uint16_t) n;
      far_min = imin (far_min, f);
      near_min = imin (near_min, n);
    }
  n_far_pieces = split_pieces (far_top, far_pieces);
  n_near_pieces = split_pieces (near_top, near_pieces);
  sun_x = W * 71 / 100;
  sun_y = horizon - H / 28;
  sun_r = H / 17;

  panel_w = W - 2 * (W / 9);
  tb_rows = H >= 700 ? TB_ROWS : 4;
  panel_h = tb_rows * TB_LINE_H + 58;
  panel_x = (W - panel_w) / 2;
  panel_y = H - panel_h - H / 40;
  panel_tint = ((0x0b1020 >> 2) & 0x3f3f3f) * 3;
  tb_x = panel_x + 20;
  tb_y = panel_y + 46;
  tb_cols = imin ((panel_w - 40) / 8, TB_COLS_MAX - 1);

  title_x = (W - TITLE_W) / 2;
  title_y = H / 22;

  n_labels = 0;
  labels[n_labels++] = (Label) { 0, title_y + 66, "a bare-metal guest, drawn pixel by pixel by its own code", 0xe8ecf8 };
  labels[0].x = (W - (int) strlen (labels[0].text) * 8) / 2;
  labels[n_labels++] = (Label) { panel_x + 20, panel_y + 12, "Keyboard", 0x9fd0ff };
  labels[n_labels++] = (Label) { panel_x + 20 + 10 * 8, panel_y + 12,
                                 W >= 1000 ? "type here, Esc clears  -  serial console on COM1: 'help'"
                                           : "type here  -  COM1: 'help'",
                                 0x7d88a3 };
  /* The clock, top right: large where the title leaves room for it. */
  clock_scale = W - (title_x + TITLE_W) >= 8 * 16 + 40 ? 2 : 1;
  clock_x = W - 16 - 8 * 8 * clock_scale;
  clock_y = 12;
  uptime_x = panel_x + panel_w - 20 - 15 * 8;
  uptime_y = panel_y + 12;

  clouds[0] = (Cloud) { W * 18 / 100, H * 27 / 100, 10,
                        { { -40, 0, 22 }, { -12, -12, 30 }, { 22, -6, 26 }, { 48, 2, 18 }, { 4, 4, 20 } } };
  clouds[1] = (Cloud) { W * 56 / 100, imax (H * 20 / 100, title_y + 66 + 16 + 36), 8,
                        { { -30, 0, 16 }, { -6, -10, 22 }, { 20, -2, 18 }, { 40, 4, 12 }, { 0, 2, 14 } } };
  clouds[2] = (Cloud) { W * 86 / 100, H * 36 / 100, 8,
                        { { -26, 0, 14 }, { -4, -8, 20 }, { 18, 0, 15 }, { 0, 0, 0 }, { 0, 0, 0 } } };

  /* At most one star per row, in the upper sky (xorshift32 for the scatter). */
  for (int y = 0; y < H; y++)
    {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      star_x[y] = 0xffff;
      if (y < horizon * 2 / 3 && (seed & 3) != 0)
        {
          star_x[y] = (uint16_t) ((seed >> 8) % (uint32_t) W);
          star_b[y] = (uint8_t) (60 + ((seed >> 2) & 63) + 100 * (horizon - y) / horizon);
        }
    }
}

/* The title at four times the font size: Scale2x twice; then its rows as runs. */
static void
title_init (void)
{
  static uint8_t a[32 * TITLE_W / 2];   /* 2x: 288 x 32 */

  for (int y = 0; y < 32; y++)
    for (int i = 0; i < TITLE_LEN; i++)
      for (int x = 0; x < 16; x++)
        a[y * (TITLE_W / 2) + i * 16 + x] =
          (font2x[TITLE[i] - FONT_FIRST][y] >> (15 - x)) & 1;
  scale2x (a, TITLE_W / 2, 32, title_mask);
  for (int y = 0; y < TITLE_H; y++)
    {
      const uint8_t *m = &title_mask[y * TITLE_W];
      int n = 0;

      for (int x = 0; x < TITLE_W && n < TITLE_RUNS;)
        {
          int x0;

          while (x < TITLE_W && !m[x])
            x++;
          x0 = x;
          while (x < TITLE_W && m[x])
            x++;
          if (x > x0)
            {
              title_runs[y][n][0] = (uint16_t) x0;
              title_runs[y][n][1] = (uint16_t) (x - x0);
              n++;
            }
        }
      title_nruns[y] = (uint8_t) n;
    }
}

static uint32_t
sky_at (int y)
{
  uint32_t t;

  if (y >= horizon)
    return sky->horizon;
  /* Eased: dark for longer at the top, a warm band near the horizon. */
  t = (uint32_t) (y * 256 / horizon);
  t = t * t / 256;
  return mix (sky->top, sky->horizon, t);
}

static void
fill32 (uint32_t *p, uint32_t v, size_t n)
{
  __asm__ volatile ("rep stosl" : "+D"(p), "+c"(n) : "a"(v) : "memory");
}

static void
copy32 (volatile uint32_t *d, const uint32_t *s, size_t n)
{
  __asm__ volatile ("rep movsl" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

/* Fills row[x0, x1) clipped to the screen. */
static void
span (uint32_t *row, int x0, int x1, uint32_t c)
{
  x0 = imax (x0, 0);
  x1 = imin (x1, W);
  if (x1 > x0)
    fill32 (row + x0, c, (size_t) (x1 - x0));
}

/* Fills the columns whose hill top is at or above row @y (top[x] <= y). */
static void
fill_hill (uint32_t *row, const uint16_t *top, const Piece *pieces, int n, int y, uint32_t c)
{
  for (int i = 0; i < n; i++)
    {
      const Piece *p = &pieces[i];
      int lo = p->a, hi = p->b;

      /* First column in [a, b) where the covered state flips. */
      while (lo < hi)
        {
          int mid = (lo + hi) / 2;
          bool covered = top[mid] <= y;

          if (covered == p->rising)
            hi = mid;
          else
            lo = mid + 1;
        }
      if (p->rising)
        span (row, lo, p->b, c);        /* covered from lo on */
      else
        span (row, p->a, lo, c);        /* covered up to lo */
    }
}

static void
text_into_row (uint32_t *row, int y, const Label *l)
{
  int gy = y - l->y;

  if (gy < 0 || gy >= 16)
    return;
  for (int i = 0; l->text[i]; i++)
    {
      uint8_t bits = glyph_row (l->text[i], gy);
      int x0 = l->x + i * 8;

      for (int b = 0; bits && b < 8; b++, bits = (uint8_t) (bits << 1))
        if ((bits & 0x80) && x0 + b >= 0 && x0 + b < W)
          row[x0 + b] = l->colour;
    }
}

/* How far row @py of the panel is cut in at its rounded corners. */
static int
panel_inset (int py)
{
  const int r = 12;
  int dy;

  if (py < 0 || py >= panel_h)
    return r;
  if (py < r)
    dy = r - py;
  else if (py >= panel_h - r)
    dy = py - (panel_h - r - 1);
  else
    return 0;
  return r - (int) isqrt ((uint32_t) (r * r - dy * dy));
}

/* Builds background row @y into @row (W pixels), out of spans of one colour. */
static void
build_row (int y, uint32_t *row)
{
  uint32_t c = sky_at (y);

  fill32 (row, c, (size_t) W);

  if (sky->stars && star_x[y] != 0xffff)
    row[star_x[y]] = mix (c, 0xffffff, star_b[y]);

  /* Sun (or moon): a glow of 24 rings, each a little brighter, then the disc. */
  {
    int dy = y - sun_y, ro = sun_r * 5 / 2;

    if (dy > -ro && dy < ro)
      {
        for (int k = 0; k < 24; k++)
          {
            int r = ro - (ro - sun_r) * k / 24, s;
            uint32_t t = (uint32_t) ((k + 1) * (k + 1)) * 100 / 576;

            if (dy <= -r || dy >= r)
              continue;
            s = (int) isqrt ((uint32_t) (r * r - dy * dy));
            span (row, sun_x - s, sun_x + s + 1, mix (c, sky->sun, t));
          }
        if (dy > -sun_r && dy < sun_r)
          {
            int s = (int) isqrt ((uint32_t) (sun_r * sun_r - dy * dy));
            span (row, sun_x - s, sun_x + s + 1, sky->sun);
          }
      }
  }

  /* Clouds: the union of their discs, flat at the bottom, more opaque at the top. */
  for (unsigned k = 0; k < ARRAY_SIZE (clouds); k++)
    {
      const Cloud *cl = &clouds[k];
      int lo = W, hi = -1;

      if (y > cl->y + cl->base)
        continue;
      for (int i = 0; i < 5; i++)
        {
          int r = cl->discs[i][2], dy = y - (cl->y + cl->discs[i][1]), s;

          if (r == 0 || dy <= -r || dy >= r)
            continue;
          s = (int) isqrt ((uint32_t) (r * r - dy * dy));
          lo = imin (lo, cl->x + cl->discs[i][0] - s);
          hi = imax (hi, cl->x + cl->discs[i][0] + s);
        }
      /* The discs overlap into one span per row for these shapes. */
      span (row, lo, hi, mix (c, cloud_colour,
                              (uint32_t) imin (256, 150 + (cl->y + cl->base - y) * 2)));
    }

  /* Hills: far, then near with a lit rim (its top two rows) and a darkening slope. */
  if (y >= far_min)
    fill_hill (row, far_top, far_pieces, n_far_pieces, y, far_colour);
  if (y >= near_min)
    {
      uint32_t nc = mix (near_top_colour, near_bottom_colour,
                         (uint32_t) imin (256, (y - near_min) * 256 / imax (1, H - near_min)));

      fill_hill (row, near_top, near_pieces, n_near_pieces, y, rim_colour);
      if (y - 2 >= near_min)
        fill_hill (row, near_top, near_pieces, n_near_pieces, y - 2, nc);
    }

  /* The title, with a shadow 3 px right and down. */
  if (y >= title_y && y < title_y + TITLE_H + 3)
    {
      int ty = y - title_y;

      if (ty >= 3)
        for (int i = 0; i < title_nruns[ty - 3]; i++)
          span (row, title_x + 3 + title_runs[ty - 3][i][0],
                title_x + 3 + title_runs[ty - 3][i][0] + title_runs[ty - 3][i][1],
                mix (c, title_shadow, 170));
      if (ty < TITLE_H)
        for (int i = 0; i < title_nruns[ty]; i++)
          span (row, title_x + title_runs[ty][i][0],
                title_x + title_runs[ty][i][0] + title_runs[ty][i][1], 0xffffff);
    }

  /* The text box: a rounded panel with a thin light edge and a rule under its header. */
  if (y >= panel_y && y < panel_y + panel_h)
    {
      int py = y - panel_y, inset = panel_inset (py);
      int inner = imax (inset, imax (panel_inset (py - 1), panel_inset (py + 1))) + 1;
      uint32_t body = mix (0x141c34, 0x0a0e1c, (uint32_t) (py * 256 / panel_h));
      uint32_t edge = mix (body, 0x9fb4e0, 80);

      span (row, panel_x + inset, panel_x + panel_w - inset, edge);
      span (row, panel_x + inner, panel_x + panel_w - inner, body);
      if (py == 36)
        span (row, panel_x + 16, panel_x + panel_w - 16, mix (body, 0x8090b0, 70));
    }

  for (int i = 0; i < n_labels; i++)
    text_into_row (row, y, &labels[i]);
}

/* ==================================================================== drawing on screen */

static bool scene_ready;                /* the first picture is complete */

typedef struct
{
  int x, y, w, h;
} Rect;

static bool
rect_clip (Rect *r)
{
  int x1 = imin (W, r->x + r->w), y1 = imin (H, r->y + r->h);

  r->x = imax (0, r->x);
  r->y = imax (0, r->y);
  r->w = x1 - r->x;
  r->h = y1 - r->y;
  return r->w > 0 && r->h > 0;
}

/* Text composed over the background: cells of 8x16 (scale 1) or 16x32 (scale 2). Each
 * row of the string is restored from the background with one copy, then its lit pixels
 * are set. */
static void
draw_text (int x, int y, const char *s, uint32_t colour, int scale)
{
  int cw = 8 * scale, ch = 16 * scale, n = (int) strlen (s);

  if (!fb || !scene_ready || x < 0 || y < 0 || x + n * cw > W || y + ch > H)
    return;
  for (int gy = 0; gy < ch; gy++)
    {
      volatile uint32_t *d = fb + (y + gy) * W + x;

      copy32 (d, shadow + (y + gy) * W + x, (size_t) (n * cw));
      for (int i = 0; i < n; i++, d += cw)
        {
          uint32_t bits;

          if (scale == 1)
            bits = (uint32_t) glyph_row (s[i], gy) << 24;
          else if ((uint8_t) s[i] >= FONT_FIRST && (uint8_t) s[i] <= FONT_LAST)
            bits = (uint32_t) font2x[s[i] - FONT_FIRST][gy] << 16;
          else
            bits = 0;
          while (bits)
            {
              int b = __builtin_clz (bits);

              d[b] = colour;
              bits &= ~(0x80000000u >> b);
            }
        }
    }
}

/* Rows [y0, y1) of the background onto the screen. */
static void
blit_rows (int y0, int y1)
{
  copy32 (fb + y0 * W, shadow + y0 * W, (size_t) ((y1 - y0) * W));
}

/* ---- the text box */

static void
tb_draw_cell (int row, int col)
{
  char s[2] = { tb_text[row][col] ? tb_text[row][col] : ' ', 0 };
  int x = tb_x + col * 8, y = tb_y + row * TB_LINE_H;

  draw_text (x, y, s, 0xf4f6ff, 1);
  if (fb && scene_ready && row == tb_row && col == tb_col && tb_cursor_on)
    for (int gy = 13; gy < 15; gy++)
      for (int gx = 0; gx < 8; gx++)
        fb[(y + gy) * W + x + gx] = 0x9fd0ff;
}

static void
tb_draw_all (void)
{
  for (int r = 0; r < tb_rows; r++)
    for (int c = 0; c < tb_cols; c++)
      tb_draw_cell (r, c);
}

static void
tb_newline (void)
{
  int old_row = tb_row, old_col = tb_col;

  tb_col = 0;
  if (tb_row + 1 < tb_rows)
    {
      tb_row++;
      tb_draw_cell (old_row, old_col);
      tb_draw_cell (tb_row, tb_col);
      return;
    }
  memcpy (tb_text[0], tb_text[1], (size_t) (tb_rows - 1) * sizeof tb_text[0]);
  memset (tb_text[tb_rows - 1], 0, sizeof tb_text[0]);
  tb_draw_all ();
}

static void
tb_put (char c)
{
  tb_text[tb_row][tb_col] = c;
  if (tb_col + 1 < tb_cols)
    {
      tb_col++;
      tb_draw_cell (tb_row, tb_col - 1);
      tb_draw_cell (tb_row, tb_col);
    }
  else
    tb_newline ();
}

static void
tb_backspace (void)
{
  if (tb_col == 0)
    return;
  tb_col--;
  tb_text[tb_row][tb_col] = 0;
  tb_draw_cell (tb_row, tb_col + 1);
  tb_draw_cell (tb_row, tb_col);
}

static void
tb_clear (void)
{
  memset (tb_text, 0, sizeof tb_text);
  tb_row = tb_col = 0;
  tb_draw_all ();
}

static void
tb_blink (bool on)
{
  tb_cursor_on = on;
  tb_draw_cell (tb_row, tb_col);
}

/* ---- clock and uptime */

static uint32_t clock_base;             /* RTC seconds of the day at boot */

static void
draw_changed (int x, int y, const char *now, char *shown, uint32_t colour, int scale)
{
  for (int i = 0; now[i]; i++)
    if (now[i] != shown[i])
      {
        char one[2] = { now[i], 0 };

        draw_text (x + i * 8 * scale, y, one, colour, scale);
        shown[i] = now[i];
      }
}

static char clock_shown[16], uptime_shown[24];

/* The clock and the uptime; only the characters that changed are drawn. */
static void
draw_clock (bool all)
{
  char buf[24];
  uint32_t s = (clock_base + uptime_s ()) % 86400, up = uptime_s ();

  if (all)
    {
      memset (clock_shown, 0, sizeof clock_shown);
      memset (uptime_shown, 0, sizeof uptime_shown);
    }
  fmt (buf, sizeof buf, "%02u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
  draw_changed (clock_x, clock_y, buf, clock_shown, 0xffffff, clock_scale);
  fmt (buf, sizeof buf, "uptime %u:%02u:%02u", up / 3600, up / 60 % 60, up % 60);
  draw_changed (uptime_x, uptime_y, buf, uptime_shown, 0x9fd0ff, 1);
}

/* ---- birds */

/* Four wing positions, 24x10; drawn 1:1 for the far birds and by Scale2x for the near one. */
#define BIRD_W 24
#define BIRD_H 10
static const char *const bird_art[4][BIRD_H] = {
  { "##....................##",
    ".##..................##.",
    "..##................##..",
    "...###............###...",
    "....####........####....",
    "......####.##.####......",
    "........########........",
    "..........####..........",
    "...........##...........",
    "........................" },
  { "........................",
    "........................",
    "###..................###",
    ".#####............#####.",
    "...######......######...",
    "......####.##.####......",
    "........########........",
    "..........####..........",
    "...........##...........",
    "........................" },
  { "........................",
    "........................",
    "........................",
    "........................",
    "#######..........#######",
    "..########.##.########..",
    "......############......",
    "..........####..........",
    "...........##...........",
    "........................" },
  { "........................",
    "........................",
    "........................",
    "........................",
    "..........####..........",
    ".....##############.....",
    "...####...####...####...",
    "..###......##......###..",
    ".##..................##.",
    "##....................##" },
};

/* The flap: up, half, level, down, level, half. */
static const uint8_t flap_cycle[6] = { 0, 1, 2, 3, 2, 1 };

static uint64_t bird_mask[2][4][2 * BIRD_H];    /* [scale-1][frame][row], bit 63 leftmost */

typedef struct
{
  int      scale;
  int      y;                   /* height of the flight line, per mille of H */
  int      speed;               /* pixels per 4 ticks */
  int      offset;              /* start position, pixels */
  int      bob;                 /* pixels up and down */
  int      flap_ticks;          /* ticks per wing position */
  Rect     last;
  bool     shown;
} Bird;

static Bird birds[3] = {
  { 2, 330, 9, 0, 7, 2, { 0, 0, 0, 0 }, false },
  { 1, 250, 6, 420, 4, 1, { 0, 0, 0, 0 }, false },
  { 1, 290, 5, 700, 5, 1, { 0, 0, 0, 0 }, false },
};

static void
birds_init (void)
{
  static uint8_t src[BIRD_H * BIRD_W], dst[4 * BIRD_H * BIRD_W];

  for (int f = 0; f < 4; f++)
    {
      for (int y = 0; y < BIRD_H; y++)
        {
          bird_mask[0][f][y] = 0;
          for (int x = 0; x < BIRD_W; x++)
            {
              src[y * BIRD_W + x] = bird_art[f][y][x] == '#';
              if (src[y * BIRD_W + x])
                bird_mask[0][f][y] |= 1ull << (63 - x);
            }
        }
      scale2x (src, BIRD_W, BIRD_H, dst);
      for (int y = 0; y < 2 * BIRD_H; y++)
        {
          bird_mask[1][f][y] = 0;
          for (int x = 0; x < 2 * BIRD_W; x++)
            if (dst[y * 2 * BIRD_W + x])
              bird_mask[1][f][y] |= 1ull << (63 - x);
        }
    }
}

/* Moves bird @i to where it is at @t and redraws the union of its old and new places. */
static void
bird_draw (int i, uint32_t t, bool force)
{
  Bird *b = &birds[i];
  int w = BIRD_W * b->scale, h = BIRD_H * b->scale, range = W + 2 * w;
  int x = (int) ((t * (uint32_t) b->speed / 4 + (uint32_t) b->offset) % (uint32_t) range) - w;
  int y = H * b->y / 1000 + isin (t * 3 + (uint32_t) i * 80) * b->bob / 1024;
  int frame = flap_cycle[(t / (uint32_t) b->flap_ticks + (uint32_t) i * 2) % 6];
  const uint64_t *mask = bird_mask[b->scale - 1][frame];
  uint32_t colour = bird_colour[i];
  Rect now = { x, y, w, h }, u = now;

  if (!fb || !scene_ready)
    return;
  if (!force && b->shown && b->last.x == x && b->last.y == y)
    return;
  if (b->shown)
    {
      int x1 = imax (u.x + u.w, b->last.x + b->last.w), y1 = imax (u.y + u.h, b->last.y + b->last.h);

      /* Wrapping around: the two places are far apart; draw them separately. */
      if (b->last.x > x + w)
        {
          Rect old = b->last;

          if (rect_clip (&old))
            for (int yy = old.y; yy < old.y + old.h; yy++)
              copy32 (fb + yy * W + old.x, shadow + yy * W + old.x, (size_t) old.w);
        }
      else
        {
          u.x = imin (u.x, b->last.x);
          u.y = imin (u.y, b->last.y);
          u.w = x1 - u.x;
          u.h = y1 - u.y;
        }
    }
  b->last = now;
  b->shown = true;
  if (!rect_clip (&u))
    return;
  /* Row by row: the background back, then the bird's pixels. */
  for (int yy = u.y; yy < u.y + u.h; yy++)
    {
      volatile uint32_t *d = fb + yy * W;
      uint64_t bits = yy >= y && yy < y + h ? mask[yy - y] : 0;

      copy32 (d + u.x, shadow + yy * W + u.x, (size_t) u.w);
      while (bits)
        {
          int bx = __builtin_clzll (bits);

          if (x + bx >= 0 && x + bx < W)
            d[x + bx] = colour;
          bits &= ~(0x8000000000000000ull >> bx);
        }
    }
}

/* ---- repainting the background in batches of rows */

static int wipe_row = -1;               /* next row to rebuild; -1: none pending */

static void
redraw_overlays (int y0, int y1)
{
  if ((y0 < clock_y + 16 * clock_scale && y1 > clock_y) || (y0 < panel_y + panel_h && y1 > panel_y))
    draw_clock (true);
  if (y0 < panel_y + panel_h && y1 > panel_y)
    tb_draw_all ();
  for (unsigned i = 0; i < ARRAY_SIZE (birds); i++)
    if (birds[i].shown && y0 < birds[i].last.y + birds[i].last.h && y1 > birds[i].last.y)
      bird_draw ((int) i, ticks, true);
}

/* Rebuilds and shows up to @rows rows; true when the picture is complete. */
static bool
wipe_step (int rows)
{
  int y0 = wipe_row, y1 = imin (H, wipe_row + rows);

  if (wipe_row < 0)
    return true;
  for (int y = y0; y < y1; y++)
    build_row (y, shadow + y * W);
  blit_rows (y0, y1);
  wipe_row = y1 < H ? y1 : -1;
  if (scene_ready)
    redraw_overlays (y0, y1);
  else if (wipe_row < 0)
    {
      scene_ready = true;
      redraw_overlays (0, H);
    }
  return wipe_row < 0;
}

static void
set_sky (const Sky *s)
{
  sky = s;
  sky_colours ();
  if (fb)
    wipe_row = 0;
}

/* A box in the middle of the screen, for the last words before power-off. */
static void
banner (const char *big, const char *small)
{
  int bw = imax ((int) strlen (big) * 16, (int) strlen (small) * 8) + 64, bh = 96;
  int x0 = (W - bw) / 2, y0 = (H - bh) / 2;

  if (!fb)
    return;
  for (int y = y0; y < y0 + bh; y++)
    for (int x = x0; x < x0 + bw; x++)
      {
        bool edge = y < y0 + 2 || y >= y0 + bh - 2 || x < x0 + 2 || x >= x0 + bw - 2;
        uint32_t c = edge ? 0x9fd0ff : ((shadow[y * W + x] >> 2) & 0x3f3f3f) + panel_tint;

        shadow[y * W + x] = c;
        fb[y * W + x] = c;
      }
  draw_text ((W - (int) strlen (big) * 16) / 2, y0 + 16, big, 0xffffff, 2);
  draw_text ((W - (int) strlen (small) * 8) / 2, y0 + 60, small, 0xc8d0e8, 1);
}

/* ==================================================================== keyboard */

static bool kbd_present;

static bool
kbc_wait_write (void)
{
  for (int i = 0; i < 100000; i++)
    if (!(inb (KBC_STATUS) & 0x02))
      return true;
  return false;
}

static void
kbd_init (void)
{
  if (inb (KBC_STATUS) == 0xff)
    return;                             /* no controller */
  for (int i = 0; i < 32 && (inb (KBC_STATUS) & 0x01); i++)
    (void) inb (KBC_DATA);
  /* Keyboard interrupt, system flag, mouse port off, translation to set 1. */
  if (!kbc_wait_write ())
    return;
  outb (KBC_STATUS, 0x60);
  if (!kbc_wait_write ())
    return;
  outb (KBC_DATA, 0x65);
  if (!kbc_wait_write ())
    return;
  outb (KBC_STATUS, 0xae);              /* keyboard port on */
  kbd_present = true;
}

/* Scan code set 1, US layout: unshifted and shifted. */
static const char keymap[2][0x3a] = {
  { 0, 27, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', '\b', '\t',
    'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n', 0, 'a', 's',
    'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0, '\\', 'z', 'x', 'c', 'v',
    'b', 'n', 'm', ',', '.', '/', 0, '*', 0, ' ' },
  { 0, 27, '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+', '\b', '\t',
    'Q', 'W', 'E', 'R', 'T', 'Y', 'U', 'I', 'O', 'P', '{', '}', '\n', 0, 'A', 'S',
    'D', 'F', 'G', 'H', 'J', 'K', 'L', ':', '"', '~', 0, '|', 'Z', 'X', 'C', 'V',
    'B', 'N', 'M', '<', '>', '?', 0, '*', 0, ' ' },
};
static const char keypad[] = "789-456+1230.";   /* 0x47..0x53 */

static bool shift_l, shift_r, caps, ctrl, e0;
static int e1_skip;
static char kbd_line[TB_COLS_MAX + 1];
static int kbd_len;
static char serial_line[128];
static size_t serial_len;

static void prompt (void);

static void
kbd_char (char c)
{
  if (c == '\n')
    {
      kbd_line[kbd_len] = 0;
      /* Over the prompt line, then the prompt and what was typed there again. */
      say ("\rkeyboard: %s\n", kbd_line);
      serial_line[serial_len] = 0;
      prompt ();
      con_write (serial_line);
      kbd_len = 0;
      tb_newline ();
    }
  else if (c == '\b')
    {
      if (kbd_len > 0)
        kbd_len--;
      tb_backspace ();
    }
  else if (c == 27)
    {
      kbd_len = 0;
      tb_clear ();
    }
  else if (c == '\t')
    for (int i = 0; i < 4; i++)
      kbd_char (' ');
  else
    {
      if (kbd_len < TB_COLS_MAX)
        kbd_line[kbd_len++] = c;
      tb_put (c);
    }
}

static void
kbd_byte (uint8_t b)
{
  bool up = b & 0x80;
  uint8_t code = b & 0x7f;
  bool ext = e0;

  if (e1_skip)
    {
      e1_skip--;
      return;
    }
  if (b == 0xe0)
    {
      e0 = true;
      return;
    }
  if (b == 0xe1)
    {
      e1_skip = 5;                      /* Pause: E1 1D 45 E1 9D C5 */
      return;
    }
  e0 = false;
  if (b == 0xfa || b == 0xfe || b == 0xee || b == 0x00 || b == 0xff)
    return;                             /* replies and errors (0xaa is also Shift released) */
  if (ext)
    {
      if (code == 0x1d)
        ctrl = !up;
      else if (!up && code == 0x1c)
        kbd_char ('\n');                /* keypad Enter */
      else if (!up && code == 0x35)
        kbd_char ('/');
      return;                           /* fake shifts, arrows, ...: nothing to show */
    }
  switch (code)
    {
    case 0x2a: shift_l = !up; return;
    case 0x36: shift_r = !up; return;
    case 0x1d: ctrl = !up; return;
    case 0x3a: if (!up) caps = !caps; return;
    default: break;
    }
  if (up)
    return;
  if (code < sizeof keymap[0])
    {
      bool shift = shift_l || shift_r;
      char c = keymap[shift][code];

      if (c >= 'a' && c <= 'z' && caps)
        c = (char) (c - 'a' + 'A');
      else if (c >= 'A' && c <= 'Z' && caps)
        c = (char) (c - 'A' + 'a');
      if (ctrl && (c == 'l' || c == 'L'))
        c = 27;
      if (c)
        kbd_char (c);
    }
  else if (code >= 0x47 && code <= 0x53)
    kbd_char (keypad[code - 0x47]);
}

/* ==================================================================== ACPI */

#define FADT_SCI_INT      46
#define FADT_SMI_CMD      48
#define FADT_ACPI_ENABLE  52
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM1_EVT_LEN  88

static int sci_irq = -1;

/* Enables the fixed power button; false when the machine has none we can use. */
static bool
power_button_init (const MadtInfo *madt)
{
  const AcpiHeader *fadt = acpi_find_table ("FACP", 0);
  const uint8_t *f = (const uint8_t *) fadt;
  uint32_t evt = 0, cnt = 0, smi = 0;
  uint16_t sci = 0;
  uint8_t len, enable;

  if (!fadt || fadt->length < 89)
    return false;
  memcpy (&sci, f + FADT_SCI_INT, 2);
  memcpy (&smi, f + FADT_SMI_CMD, 4);
  enable = f[FADT_ACPI_ENABLE];
  memcpy (&evt, f + FADT_PM1A_EVT_BLK, 4);
  memcpy (&cnt, f + FADT_PM1A_CNT_BLK, 4);
  len = f[FADT_PM1_EVT_LEN];
  if (!evt || evt > 0xffff || len < 4)
    return false;
  pm1a_evt = (uint16_t) evt;
  pm1_en_port = (uint16_t) (evt + len / 2);

  /* Into ACPI mode, if the firmware left the machine in legacy mode. */
  if (cnt && !(inw ((uint16_t) cnt) & 1) && smi && enable)
    {
      outb ((uint16_t) smi, enable);
      for (int i = 0; i < 300 && !(inw ((uint16_t) cnt) & 1); i++)
        pit_delay_ms (1);
    }

  outw (pm1a_evt, PM1_PWRBTN);                          /* clear a stale press */
  outw (pm1_en_port, inw (pm1_en_port) | PM1_PWRBTN);

  if (sci < 16 && madt->ioapic_addr)
    {
      uint16_t flags = madt->isa_flags[sci];

      if (!flags)
        flags = 0x000f;                 /* the SCI's default: level, active low */
      sci_irq = sci;
      set_int_handler (SCI_VECTOR, on_sci);
      ioapic_route (madt->ioapic_addr, madt->isa_gsi[sci] - madt->ioapic_gsi_base, SCI_VECTOR,
                    flags, (uint8_t) lapic_id (), false);
    }
  return true;
}

static void
power_off (const char *why)
{
  banner ("Shutting down", why);
  say ("%s: shutting down\n", why);
  /* A moment for the screen to show it. */
  pit_delay_ms (300);
  acpi_poweroff ();
  say ("%s: ACPI power-off did not happen\n", why);
}

/* ==================================================================== commands */

static MadtInfo madt;
static bool have_madt;
static bool animate = true;

static void
prompt (void)
{
  con_write ("demo> ");
}

static void
cmd_help (void)
{
  con_write ("commands:\n"
             "  help        this list\n"
             "  uptime      time since boot\n"
             "  time        the clock (the RTC, UTC)\n"
             "  mem         the memory map\n"
             "  cpus        processors the ACPI tables list\n"
             "  screen      the display card and mode\n"
             "  echo TEXT   prints TEXT\n"
             "  color NAME  paints the sky: ");
  for (unsigned i = 0; i < ARRAY_SIZE (skies); i++)
    say ("%s%s", i ? " " : "", skies[i].name);
  con_write ("\n"
             "  animate on|off  the birds (off: the guest draws once a second)\n"
             "  clear       empties the text box on the screen\n"
             "  poweroff    ACPI power-off (S5)\n");
}

static void
cmd_uptime (void)
{
  uint32_t t = ticks, s = t / HZ;

  say ("up %u:%02u:%02u (%u.%02u s)\n", s / 3600, s / 60 % 60, s % 60, s, t % HZ * (100 / HZ));
}

static void
cmd_time (void)
{
  RtcTime t;

  rtc_read (&t);
  say ("%04u-%02u-%02u %02u:%02u:%02u UTC\n", t.year, t.month, t.day, t.hour, t.minute,
       t.second);
}

static void
cmd_mem (void)
{
  static const char *const types[] = { "?", "usable", "reserved", "ACPI data", "ACPI NVS",
                                       "unusable" };
  MemRegion r[32];
  int n = boot_memmap (r, 32);
  uint64_t usable = 0;

  say ("memory map (%s boot, %d entries):\n", boot_protocol_name (), n);
  for (int i = 0; i < n; i++)
    {
      say ("  %016lx-%016lx  %s\n", (unsigned long) r[i].addr,
           (unsigned long) (r[i].addr + r[i].size - 1), r[i].type < 6 ? types[r[i].type] : "?");
      if (r[i].type == 1)
        usable += r[i].size;
    }
  say ("usable: %lu MiB\n", (unsigned long) (usable >> 20));
}

static void
cmd_cpus (void)
{
  if (!have_madt)
    {
      con_write ("cpus: no MADT\n");
      return;
    }
  say ("cpus: %d (APIC ids", madt.ncpus);
  for (int i = 0; i < madt.ncpus; i++)
    say (" %u", madt.apic_ids[i]);
  say ("); the demo runs on APIC id %u\n", lapic_id ());
}

static void
cmd_screen (void)
{
  if (!fb)
    con_write ("screen: none\n");
  else
    say ("screen: %s, %dx%d, 32 bpp, framebuffer at 0x%lx\n", card_name, W, H,
         (unsigned long) fb_phys);
}

static void
cmd_color (const char *name)
{
  if (*name)
    for (unsigned i = 0; i < ARRAY_SIZE (skies); i++)
      if (streq (name, skies[i].name))
        {
          set_sky (&skies[i]);
          say ("sky: %s%s\n", skies[i].name, fb ? "" : " (no screen)");
          return;
        }
  say ("color: %s%s%s; one of:", *name ? "no colour called '" : "which colour",
       name, *name ? "'" : "");
  for (unsigned i = 0; i < ARRAY_SIZE (skies); i++)
    say (" %s", skies[i].name);
  con_write ("\n");
}

static void
run_command (char *line)
{
  char *cmd = line, *arg;

  while (*cmd == ' ')
    cmd++;
  arg = cmd;
  while (*arg && *arg != ' ')
    arg++;
  if (*arg)
    *arg++ = 0;
  while (*arg == ' ')
    arg++;
  {
    size_t n = strlen (arg);
    while (n && arg[n - 1] == ' ')
      arg[--n] = 0;
  }

  if (!*cmd)
    return;
  if (streq (cmd, "help") || streq (cmd, "?"))
    cmd_help ();
  else if (streq (cmd, "uptime"))
    cmd_uptime ();
  else if (streq (cmd, "time") || streq (cmd, "date"))
    cmd_time ();
  else if (streq (cmd, "mem"))
    cmd_mem ();
  else if (streq (cmd, "cpus"))
    cmd_cpus ();
  else if (streq (cmd, "screen"))
    cmd_screen ();
  else if (streq (cmd, "echo"))
    say ("%s\n", arg);
  else if (streq (cmd, "color") || streq (cmd, "colour"))
    cmd_color (arg);
  else if (streq (cmd, "animate") && (streq (arg, "on") || streq (arg, "off")))
    {
      animate = streq (arg, "on");
      say ("animation: %s\n", arg);
    }
  else if (streq (cmd, "clear"))
    {
      kbd_len = 0;
      tb_clear ();
    }
  else if (streq (cmd, "poweroff") || streq (cmd, "shutdown"))
    power_off ("poweroff");
  else
    say ("unknown command '%s'; 'help' lists the commands\n", cmd);
}

static int esc_state;                   /* 1 after ESC, 2 inside ESC [ ... */
static bool last_cr;

static void
serial_byte (uint8_t c)
{
  if (esc_state == 1)
    {
      esc_state = c == '[' || c == 'O' ? 2 : 0;
      return;
    }
  if (esc_state == 2)
    {
      if (c >= 0x40 && c <= 0x7e)
        esc_state = 0;
      return;
    }
  if (c == '\n' && last_cr)
    {
      last_cr = false;
      return;
    }
  last_cr = c == '\r';
  switch (c)
    {
    case '\r':
    case '\n':
      con_write ("\n");
      serial_line[serial_len] = 0;
      run_command (serial_line);
      serial_len = 0;
      prompt ();
      return;
    case 0x7f:
    case '\b':
      if (serial_len)
        {
          serial_len--;
          con_write ("\b \b");
        }
      return;
    case 0x03:                          /* ^C */
      con_write ("^C\n");
      serial_len = 0;
      prompt ();
      return;
    case 0x15:                          /* ^U */
      for (; serial_len; serial_len--)
        con_write ("\b \b");
      return;
    case 0x1b:
      esc_state = 1;
      return;
    default:
      break;
    }
  if (c < 0x20 || c > 0x7e || serial_len + 1 >= sizeof serial_line)
    return;
  serial_line[serial_len++] = (char) c;
  serial_putc ((char) c);
}

/* ==================================================================== main */

int
guest_main (void)
{
  RtcTime now;
  bool pwrbtn;
  uint32_t last_tick = 0;

  have_madt = acpi_parse_madt (&madt) && madt.ioapic_addr;
  animate = !cmdline_has ("still");
  con_write ("\n"
             "Vireo demo machine\n"
             "------------------\n");
  if (!have_madt)
    {
      con_write ("no MADT with an IOAPIC: this machine cannot run the demo\n");
      for (;;)
        __asm__ volatile ("cli; hlt");
    }

  pic_disable ();
  lapic_enable ();

  /* Screen. */
  if (display_init ())
    {
      font2x_init ();
      title_init ();
      birds_init ();
      layout ();
      sky_colours ();
      wipe_row = 0;
      say ("display: %s %dx%d\n", card_name, W, H);
    }
  else
    {
      fb = NULL;
      con_write ("display: none\n");
    }
  rtc_read (&now);
  clock_base = now.hour * 3600 + now.minute * 60 + now.second;

  /* Timer: the PIT at HZ through the IOAPIC. */
  set_int_handler (PIT_VECTOR, on_pit);
  pit_periodic (HZ);
  ioapic_route (madt.ioapic_addr, madt.isa_gsi[0] - madt.ioapic_gsi_base, PIT_VECTOR,
                madt.isa_flags[0], (uint8_t) lapic_id (), false);

  /* Keyboard. */
  kbd_init ();
  if (kbd_present)
    {
      set_int_handler (KBD_VECTOR, on_kbd);
      ioapic_route (madt.ioapic_addr, madt.isa_gsi[1] - madt.ioapic_gsi_base, KBD_VECTOR,
                    madt.isa_flags[1], (uint8_t) lapic_id (), false);
    }
  say ("keyboard: %s\n", kbd_present ? "i8042" : "none");

  /* Serial input: received-data interrupts (OUT2 gates the IRQ line on a PC). */
  set_int_handler (COM1_VECTOR, on_serial);
  ioapic_route (madt.ioapic_addr, madt.isa_gsi[4] - madt.ioapic_gsi_base, COM1_VECTOR,
                madt.isa_flags[4], (uint8_t) lapic_id (), false);
  outb (COM1 + 4, 0x0b);
  outb (COM1 + 1, 0x01);
  while (inb (COM1 + 5) & 0x01)
    (void) inb (COM1);

  pwrbtn = power_button_init (&madt);
  if (pwrbtn)
    say ("power button: ready (SCI on IRQ %d)\n", sci_irq);
  else
    con_write ("power button: not available\n");
  con_write ("Type 'help' for the commands.\n");
  prompt ();

  for (;;)
    {
      int b;
      uint32_t t;

      irq_disable ();
      while (ticks == last_tick && serial_rx.head == serial_rx.tail
             && kbd_rx.head == kbd_rx.tail && !power_pressed && wipe_row < 0)
        wait_for_interrupt ();
      irq_enable ();

      while ((b = ring_pop (&serial_rx)) >= 0)
        serial_byte ((uint8_t) b);
      while ((b = ring_pop (&kbd_rx)) >= 0)
        kbd_byte ((uint8_t) b);

      /* The button's status, also when no SCI arrives. */
      if (pwrbtn && !power_pressed && (inw (pm1a_evt) & PM1_PWRBTN))
        {
          outw (pm1a_evt, PM1_PWRBTN);
          power_pressed = true;
        }
      if (power_pressed)
        {
          power_pressed = false;
          power_off ("power button");
        }

      t = ticks;
      if (wipe_row >= 0)
        {
          wipe_step (scene_ready ? 48 : 64);
          if (!scene_ready)
            continue;
        }
      if (t == last_tick || !scene_ready)
        {
          last_tick = t;
          continue;
        }
      /* Birds at 10 frames a second: smooth enough, and half the cost of 20. */
      if (animate && t / 2 != last_tick / 2)
        for (unsigned i = 0; i < ARRAY_SIZE (birds); i++)
          bird_draw ((int) i, t & ~1u, false);
      if (t / HZ != last_tick / HZ)
        draw_clock (false);
      if (kbd_present && (t / (HZ / 2)) != (last_tick / (HZ / 2)))
        tb_blink ((t / (HZ / 2)) % 2 == 0);
      last_tick = t;
    }
}
