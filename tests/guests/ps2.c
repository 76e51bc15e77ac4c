/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * ps2: the i8042 keyboard controller, its keyboard and its PS/2 mouse, by polling (no
 * interrupts).
 *
 * Sets the controller up (self-tests, command byte), resets and identifies the keyboard,
 * resets the mouse and knocks it into an IntelliMouse Explorer (ids 3 then 4), then prints
 * what arrives, one line per burst of bytes:
 *     kbd: e0 2a e0 37     or     aux: 08 0a fb 00
 * A burst ends when nothing more arrives for IDLE_MS. Three phases, each announced by a
 * "ready …" line and ended by the release of Esc:
 *     set1   translation on (the keyboard sends set 2, the controller translates to set 1)
 *     set2   translation off (set 2 as the keyboard sends it)
 *     mouse  translation on again; mouse packets (4 bytes) and, to end, Esc.
 *
 * The host (test-ps2.c) sends one group of events at a time (QMP input-send-event on QEMU,
 * vr_machine_input_*() on Vireo) and waits for its line before the next, so the output is
 * deterministic and compared byte for byte between the two.
 */

#include "guest.h"

#define KBC_DATA     0x60
#define KBC_CMD      0x64
#define ST_OBF       0x01
#define ST_IBF       0x02
#define ST_AUX       0x20

#define IDLE_MS      150
#define REPLY_MS     2000
#define WAIT_MS      300000

#define CTR_XLATE_ON   0x44   /* SYS, translation, both ports enabled, no interrupts */
#define CTR_XLATE_OFF  0x04

/* A byte from the controller within @ms, or -1; *aux says which port it came from. */
static int
kbc_read (unsigned ms, bool *aux)
{
  for (unsigned t = 0;; t++)
    {
      uint8_t st = inb (KBC_CMD);

      if (st & ST_OBF)
        {
          if (aux)
            *aux = st & ST_AUX;
          return inb (KBC_DATA);
        }
      if (t >= ms)
        return -1;
      pit_delay_ms (1);
    }
}

static void
kbc_wait_input (void)
{
  for (unsigned t = 0; inb (KBC_CMD) & ST_IBF; t++)
    {
      if (t > REPLY_MS)
        guest_fail ("the controller's input buffer stays full");
      pit_delay_ms (1);
    }
}

static void
kbc_command (uint8_t cmd)
{
  kbc_wait_input ();
  outb (KBC_CMD, cmd);
}

static void
kbc_data (uint8_t val)
{
  kbc_wait_input ();
  outb (KBC_DATA, val);
}

static void
kbc_flush (void)
{
  while (kbc_read (50, NULL) >= 0)
    ;
}

/* Reads @n bytes of a reply into @out (or fails). */
static void
read_reply (const char *what, uint8_t *out, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    {
      int b = kbc_read (REPLY_MS, NULL);

      if (b < 0)
        guest_fail ("%s: no reply byte %u", what, i);
      out[i] = (uint8_t) b;
    }
}

static void
print_bytes (const char *what, const uint8_t *b, unsigned n)
{
  printf ("%s:", what);
  for (unsigned i = 0; i < n; i++)
    printf (" %02x", b[i]);
  printf ("\n");
}

/* A controller command with a reply of @n bytes. */
static void
kbc_query (const char *what, uint8_t cmd, unsigned n)
{
  uint8_t r[4];

  kbc_command (cmd);
  read_reply (what, r, n);
  print_bytes (what, r, n);
}

/*
 * Sends the @n bytes of a keyboard (or, @aux, mouse) command and its parameters, reading the
 * acknowledgement of each before sending the next (as drivers do: a device may drop an
 * unread reply when the next byte arrives), then @extra more bytes; prints all it read.
 */
static void
dev_command (const char *what, bool aux, const uint8_t *bytes, unsigned n, unsigned extra)
{
  uint8_t r[16];
  unsigned got = 0;

  for (unsigned i = 0; i < n; i++)
    {
      if (aux)
        kbc_command (0xd4);
      kbc_data (bytes[i]);
      read_reply (what, &r[got++], 1);
    }
  read_reply (what, &r[got], extra);
  print_bytes (what, r, got + extra);
}

#define KBD(what, extra, ...)                                                                 \
  do                                                                                          \
    {                                                                                         \
      static const uint8_t b_[] = { __VA_ARGS__ };                                            \
      dev_command (what, false, b_, sizeof b_, extra);                                        \
    }                                                                                         \
  while (0)
#define AUX(what, extra, ...)                                                                 \
  do                                                                                          \
    {                                                                                         \
      static const uint8_t b_[] = { __VA_ARGS__ };                                            \
      dev_command (what, true, b_, sizeof b_, extra);                                         \
    }                                                                                         \
  while (0)

static void
set_ctr (uint8_t ctr)
{
  kbc_command (0x60);
  kbc_data (ctr);
}

static void
setup (void)
{
  int ctr;

  /* Quiet both ports, drop what the firmware left. */
  kbc_command (0xad);
  kbc_command (0xa7);
  kbc_flush ();
  kbc_command (0x20);
  ctr = kbc_read (REPLY_MS, NULL);
  printf ("info: command byte at start: %02x\n", ctr);

  kbc_query ("controller self-test", 0xaa, 1);
  kbc_query ("keyboard port test", 0xab, 1);
  kbc_query ("aux port test", 0xa9, 1);
  set_ctr (CTR_XLATE_ON);
  kbc_query ("command byte", 0x20, 1);

  KBD ("keyboard reset", 1, 0xff);
  KBD ("keyboard id", 2, 0xf2);
  KBD ("scan code set", 1, 0xf0, 0x00);
  KBD ("leds", 0, 0xed, 0x00);
  KBD ("keyboard enable", 0, 0xf4);

  AUX ("mouse reset", 2, 0xff);
  AUX ("mouse rates", 0, 0xf3, 200, 0xf3, 100, 0xf3, 80);
  AUX ("mouse id", 1, 0xf2);
  AUX ("mouse rates", 0, 0xf3, 200, 0xf3, 200, 0xf3, 80);
  AUX ("mouse id", 1, 0xf2);
  AUX ("mouse enable", 0, 0xf4);
}

/*
 * Prints bursts until one from the keyboard ends with Esc's break code (@set 1: 81; 2:
 * f0 76).
 */
static void
phase (int set)
{
  uint8_t buf[64];
  unsigned n = 0, bursts = 0;
  bool aux = false;

  for (;;)
    {
      bool from_aux;
      int b = kbc_read (n ? IDLE_MS : WAIT_MS, &from_aux);

      if (b >= 0 && (n == 0 || from_aux == aux) && n < sizeof buf)
        {
          aux = from_aux;
          buf[n++] = (uint8_t) b;
          continue;
        }
      if (n == 0)
        guest_fail ("timeout: no input after %u bursts", bursts);

      /* The burst is complete (or the other port spoke up): print it. */
      printf ("%s:", aux ? "aux" : "kbd");
      for (unsigned i = 0; i < n; i++)
        printf (" %02x", buf[i]);
      printf ("\n");
      bursts++;
      if (!aux && ((set == 1 && buf[n - 1] == 0x81)
                   || (set == 2 && n >= 2 && buf[n - 2] == 0xf0 && buf[n - 1] == 0x76)))
        return;
      n = 0;
      if (b >= 0)
        {
          aux = from_aux;
          buf[n++] = (uint8_t) b;
        }
    }
}

int
guest_main (void)
{
  printf ("ps2 test\n");
  setup ();

  printf ("ready set1\n");
  phase (1);

  set_ctr (CTR_XLATE_OFF);
  KBD ("keyboard id", 2, 0xf2);
  KBD ("scan code set", 1, 0xf0, 0x00);
  printf ("ready set2\n");
  phase (2);

  set_ctr (CTR_XLATE_ON);
  printf ("ready mouse\n");
  phase (1);
  return 0;
}
