/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Input: the evdev → scan code table (hw/scancodes.c), the i8042's set 1 → set 2 conversion
 * and the input router (vr-input.c) with no virtio devices, driven through a port bus as a
 * guest reads the controller.
 *
 * The set 1 table is checked against an independent one written here in set 2 (IBM's
 * PS/2 set 2 codes): each key's set 1 bytes, passed through the i8042 with translation off,
 * must give exactly the key's set 2 bytes, and with translation on the set 1 bytes unchanged.
 */

#include "config.h"

#include <linux/input-event-codes.h>
#include <string.h>

#include "hw/hw.h"
#include "hw/scancodes.h"
#include "vr-input.h"
#include "vr-machine.h"

#define E0(c) (0xe000 | (c))

/* Every key of a 105-key PC keyboard and the extra keys, in set 2 (0xe0xx: extended). */
static const struct
{
  unsigned code;
  uint16_t set2;
} keys[] = {
  { KEY_ESC, 0x76 }, { KEY_F1, 0x05 }, { KEY_F2, 0x06 }, { KEY_F3, 0x04 }, { KEY_F4, 0x0c },
  { KEY_F5, 0x03 }, { KEY_F6, 0x0b }, { KEY_F7, 0x83 }, { KEY_F8, 0x0a }, { KEY_F9, 0x01 },
  { KEY_F10, 0x09 }, { KEY_F11, 0x78 }, { KEY_F12, 0x07 }, { KEY_SCROLLLOCK, 0x7e },
  { KEY_GRAVE, 0x0e }, { KEY_1, 0x16 }, { KEY_2, 0x1e }, { KEY_3, 0x26 }, { KEY_4, 0x25 },
  { KEY_5, 0x2e }, { KEY_6, 0x36 }, { KEY_7, 0x3d }, { KEY_8, 0x3e }, { KEY_9, 0x46 },
  { KEY_0, 0x45 }, { KEY_MINUS, 0x4e }, { KEY_EQUAL, 0x55 }, { KEY_BACKSPACE, 0x66 },
  { KEY_TAB, 0x0d }, { KEY_Q, 0x15 }, { KEY_W, 0x1d }, { KEY_E, 0x24 }, { KEY_R, 0x2d },
  { KEY_T, 0x2c }, { KEY_Y, 0x35 }, { KEY_U, 0x3c }, { KEY_I, 0x43 }, { KEY_O, 0x44 },
  { KEY_P, 0x4d }, { KEY_LEFTBRACE, 0x54 }, { KEY_RIGHTBRACE, 0x5b }, { KEY_BACKSLASH, 0x5d },
  { KEY_CAPSLOCK, 0x58 }, { KEY_A, 0x1c }, { KEY_S, 0x1b }, { KEY_D, 0x23 }, { KEY_F, 0x2b },
  { KEY_G, 0x34 }, { KEY_H, 0x33 }, { KEY_J, 0x3b }, { KEY_K, 0x42 }, { KEY_L, 0x4b },
  { KEY_SEMICOLON, 0x4c }, { KEY_APOSTROPHE, 0x52 }, { KEY_ENTER, 0x5a },
  { KEY_LEFTSHIFT, 0x12 }, { KEY_102ND, 0x61 }, { KEY_Z, 0x1a }, { KEY_X, 0x22 },
  { KEY_C, 0x21 }, { KEY_V, 0x2a }, { KEY_B, 0x32 }, { KEY_N, 0x31 }, { KEY_M, 0x3a },
  { KEY_COMMA, 0x41 }, { KEY_DOT, 0x49 }, { KEY_SLASH, 0x4a }, { KEY_RIGHTSHIFT, 0x59 },
  { KEY_LEFTCTRL, 0x14 }, { KEY_LEFTMETA, E0 (0x1f) }, { KEY_LEFTALT, 0x11 },
  { KEY_SPACE, 0x29 }, { KEY_RIGHTALT, E0 (0x11) }, { KEY_RIGHTMETA, E0 (0x27) },
  { KEY_COMPOSE, E0 (0x2f) }, { KEY_RIGHTCTRL, E0 (0x14) },
  { KEY_INSERT, E0 (0x70) }, { KEY_HOME, E0 (0x6c) }, { KEY_PAGEUP, E0 (0x7d) },
  { KEY_DELETE, E0 (0x71) }, { KEY_END, E0 (0x69) }, { KEY_PAGEDOWN, E0 (0x7a) },
  { KEY_UP, E0 (0x75) }, { KEY_LEFT, E0 (0x6b) }, { KEY_DOWN, E0 (0x72) },
  { KEY_RIGHT, E0 (0x74) },
  { KEY_NUMLOCK, 0x77 }, { KEY_KPSLASH, E0 (0x4a) }, { KEY_KPASTERISK, 0x7c },
  { KEY_KPMINUS, 0x7b }, { KEY_KP7, 0x6c }, { KEY_KP8, 0x75 }, { KEY_KP9, 0x7d },
  { KEY_KPPLUS, 0x79 }, { KEY_KP4, 0x6b }, { KEY_KP5, 0x73 }, { KEY_KP6, 0x74 },
  { KEY_KP1, 0x69 }, { KEY_KP2, 0x72 }, { KEY_KP3, 0x7a }, { KEY_KPENTER, E0 (0x5a) },
  { KEY_KP0, 0x70 }, { KEY_KPDOT, 0x71 },
  /* Beyond the 105 keys. */
  { KEY_KPEQUAL, 0x0f }, { KEY_KPCOMMA, 0x6d }, { KEY_RO, 0x51 }, { KEY_YEN, 0x6a },
  { KEY_HENKAN, 0x64 }, { KEY_MUHENKAN, 0x67 }, { KEY_KATAKANAHIRAGANA, 0x13 },
  { KEY_POWER, E0 (0x37) }, { KEY_SLEEP, E0 (0x3f) }, { KEY_WAKEUP, E0 (0x5e) },
  { KEY_MUTE, E0 (0x23) }, { KEY_VOLUMEDOWN, E0 (0x21) }, { KEY_VOLUMEUP, E0 (0x32) },
  { KEY_PLAYPAUSE, E0 (0x34) }, { KEY_STOPCD, E0 (0x3b) }, { KEY_PREVIOUSSONG, E0 (0x15) },
  { KEY_NEXTSONG, E0 (0x4d) }, { KEY_MEDIA, E0 (0x50) }, { KEY_MAIL, E0 (0x48) },
  { KEY_CALC, E0 (0x2b) }, { KEY_COMPUTER, E0 (0x40) }, { KEY_SEARCH, E0 (0x10) },
  { KEY_HOMEPAGE, E0 (0x3a) }, { KEY_BACK, E0 (0x38) }, { KEY_FORWARD, E0 (0x30) },
  { KEY_STOP, E0 (0x28) }, { KEY_REFRESH, E0 (0x20) }, { KEY_BOOKMARKS, E0 (0x18) },
};

/* ---- a controller on a port bus ---------------------------------------------------------- */

typedef struct
{
  VrBus     *pio;
  VrDevice  *kbc;
  VrInput   *input;
} Fixture;

static uint8_t
port_in (Fixture *f, uint16_t port)
{
  uint8_t v = 0xff;

  vr_bus_dispatch (f->pio, port, &v, 1, false);
  return v;
}

static void
port_out (Fixture *f, uint16_t port, uint8_t v)
{
  vr_bus_dispatch (f->pio, port, &v, 1, true);
}

/* Everything waiting in the output buffer, and from which port (bit 8: aux). */
static GByteArray *
drain (Fixture *f, bool *from_aux)
{
  GByteArray *a = g_byte_array_new ();
  uint8_t st;

  while ((st = port_in (f, VR_I8042_CMD)) & 0x01)
    {
      uint8_t b = port_in (f, VR_I8042_DATA);

      if (from_aux)
        *from_aux = st & 0x20;
      g_byte_array_append (a, &b, 1);
    }
  return a;
}

static void
expect_bytes (Fixture *f, const uint8_t *want, size_t n)
{
  g_autoptr (GByteArray) got = drain (f, NULL);
  g_autofree char *g = g_strdup (""), *w = g_strdup ("");

  for (guint i = 0; i < got->len; i++)
    {
      char *t = g_strdup_printf ("%s %02x", g, got->data[i]);
      g_free (g);
      g = t;
    }
  for (size_t i = 0; i < n; i++)
    {
      char *t = g_strdup_printf ("%s %02x", w, want[i]);
      g_free (w);
      w = t;
    }
  g_assert_cmpstr (g, ==, w);
}

static void
expect_empty (Fixture *f)
{
  expect_bytes (f, NULL, 0);
}

#define EXPECT(f, ...)                                                                        \
  G_STMT_START                                                                                \
  {                                                                                           \
    static const uint8_t want_[] = { __VA_ARGS__ };                                           \
    expect_bytes (f, want_, sizeof want_);                                                    \
  }                                                                                           \
  G_STMT_END

static void
kbc_command (Fixture *f, uint8_t cmd, int data)
{
  port_out (f, VR_I8042_CMD, cmd);
  if (data >= 0)
    port_out (f, VR_I8042_DATA, (uint8_t) data);
}

static void
set_translation (Fixture *f, bool on)
{
  /* Keyboard interrupt, SYS, aux disabled; XLATE as asked. */
  kbc_command (f, 0x60, on ? 0x65 : 0x25);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pio = vr_bus_new ("test port I/O");
  f->kbc = vr_i8042_new (f->pio, NULL, NULL, &error);
  g_assert_no_error (error);
  f->input = vr_input_new (f->kbc, NULL, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  vr_input_free (f->input);
  vr_device_destroy (f->kbc);
  vr_bus_free (f->pio);
}

/* ---- the table ---------------------------------------------------------------------------- */

static void
test_table_coverage (void)
{
  GHashTable *seen = g_hash_table_new (NULL, NULL);

  g_assert_cmpuint (G_N_ELEMENTS (keys), >=, 105);
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      uint16_t sc = vr_scancode_set1 (keys[i].code);

      g_assert_cmpuint (sc, !=, 0);
      /* A make code has bit 7 clear: the break code is make | 0x80. */
      g_assert_cmpuint (sc & 0x80, ==, 0);
      g_assert_true ((sc >> 8) == 0 || (sc >> 8) == 0xe0);
      /* Extended or not like the set 2 code. */
      g_assert_cmpuint (sc >> 8, ==, keys[i].set2 >> 8);
      /* No two keys share a code. */
      g_assert_false (g_hash_table_contains (seen, GUINT_TO_POINTER (sc)));
      g_hash_table_add (seen, GUINT_TO_POINTER (sc));
    }
  g_hash_table_unref (seen);

  /* No code: nothing sent. */
  {
    uint8_t out[VR_SCANCODE_MAX];

    g_assert_cmpuint (vr_scancode_set1 (KEY_RESERVED), ==, 0);
    g_assert_cmpuint (vr_scancode_set1 (KEY_F13), ==, 0);
    g_assert_cmpuint (vr_scancode_set1 (KEY_MAX), ==, 0);
    g_assert_cmpuint (vr_scancode_set1 (~0u), ==, 0);
    g_assert_cmpuint (vr_scancode_set1_sequence (KEY_F13, true, 0, out), ==, 0);
    g_assert_cmpuint (vr_scancode_set1_sequence (BTN_LEFT, true, 0, out), ==, 0);
    g_assert_cmpuint (vr_scancode_set1_sequence (100000, false, 0, out), ==, 0);
    g_assert_cmpuint (vr_scancode_set1_to_set2 (0x80), ==, 0);
    g_assert_cmpuint (vr_scancode_set1_to_set2 (0xff), ==, 0);
  }
  g_assert_cmpuint (vr_scancode_modifier (KEY_RIGHTCTRL), ==, VR_SCANCODE_MOD_CTRL);
  g_assert_cmpuint (vr_scancode_modifier (KEY_LEFTSHIFT), ==, VR_SCANCODE_MOD_SHIFT);
  g_assert_cmpuint (vr_scancode_modifier (KEY_RIGHTALT), ==, VR_SCANCODE_MOD_ALT);
  g_assert_cmpuint (vr_scancode_modifier (KEY_LEFTMETA), ==, 0);
}

/* Every key, pressed and released, through the controller in both modes. */
static void
test_table_round_trip (Fixture *f, gconstpointer data)
{
  for (int xlate = 1; xlate >= 0; xlate--)
    {
      set_translation (f, xlate);
      for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
        for (int pressed = 1; pressed >= 0; pressed--)
          {
            uint8_t seq[VR_SCANCODE_MAX], want[4];
            size_t n = vr_scancode_set1_sequence (keys[i].code, pressed, 0, seq), m = 0;
            uint16_t sc = vr_scancode_set1 (keys[i].code);

            /* Set 1: [e0] make, [e0] make | 0x80. */
            g_assert_cmpuint (n, ==, (sc >> 8) ? 2 : 1);
            g_assert_cmpuint (seq[n - 1], ==, (sc & 0xff) | (pressed ? 0 : 0x80));
            if (xlate)
              memcpy (want, seq, m = n);
            else
              {
                /* Set 2: [e0] [f0] make. */
                if (keys[i].set2 >> 8)
                  want[m++] = 0xe0;
                if (!pressed)
                  want[m++] = 0xf0;
                want[m++] = (uint8_t) keys[i].set2;
              }
            vr_i8042_kbd_put (f->kbc, seq, n);
            g_test_message ("key %u %s, translation %s", keys[i].code,
                            pressed ? "down" : "up", xlate ? "on" : "off");
            expect_bytes (f, want, m);
          }
    }
}

static void
put_key (Fixture *f, unsigned code, bool pressed, unsigned mods)
{
  uint8_t seq[VR_SCANCODE_MAX];
  size_t n = vr_scancode_set1_sequence (code, pressed, mods, seq);

  if (n)
    vr_i8042_kbd_put (f->kbc, seq, n);
}

/* PrintScreen and Pause, with and without modifiers, in both sets. */
static void
test_table_special (Fixture *f, gconstpointer data)
{
  set_translation (f, true);
  put_key (f, KEY_SYSRQ, true, 0);
  EXPECT (f, 0xe0, 0x2a, 0xe0, 0x37);
  put_key (f, KEY_SYSRQ, false, 0);
  EXPECT (f, 0xe0, 0xb7, 0xe0, 0xaa);
  put_key (f, KEY_SYSRQ, true, VR_SCANCODE_MOD_SHIFT);
  EXPECT (f, 0xe0, 0x37);
  put_key (f, KEY_SYSRQ, false, VR_SCANCODE_MOD_CTRL);
  EXPECT (f, 0xe0, 0xb7);
  put_key (f, KEY_SYSRQ, true, VR_SCANCODE_MOD_ALT | VR_SCANCODE_MOD_SHIFT);
  EXPECT (f, 0x54);
  put_key (f, KEY_SYSRQ, false, VR_SCANCODE_MOD_ALT);
  EXPECT (f, 0xd4);
  put_key (f, KEY_PAUSE, true, 0);
  EXPECT (f, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
  put_key (f, KEY_PAUSE, false, 0);
  expect_empty (f);
  put_key (f, KEY_PAUSE, true, VR_SCANCODE_MOD_CTRL);
  EXPECT (f, 0xe0, 0x46, 0xe0, 0xc6);
  put_key (f, KEY_PAUSE, false, VR_SCANCODE_MOD_CTRL);
  expect_empty (f);
  put_key (f, KEY_HANGEUL, true, 0);
  put_key (f, KEY_HANGEUL, false, 0);
  put_key (f, KEY_HANJA, true, 0);
  put_key (f, KEY_HANJA, false, 0);
  EXPECT (f, 0xf2, 0xf1);

  set_translation (f, false);
  put_key (f, KEY_SYSRQ, true, 0);
  EXPECT (f, 0xe0, 0x12, 0xe0, 0x7c);
  put_key (f, KEY_SYSRQ, false, 0);
  EXPECT (f, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
  put_key (f, KEY_SYSRQ, true, VR_SCANCODE_MOD_CTRL);
  EXPECT (f, 0xe0, 0x7c);
  put_key (f, KEY_SYSRQ, true, VR_SCANCODE_MOD_ALT);
  EXPECT (f, 0x84);
  put_key (f, KEY_SYSRQ, false, VR_SCANCODE_MOD_ALT);
  EXPECT (f, 0xf0, 0x84);
  put_key (f, KEY_PAUSE, true, 0);
  EXPECT (f, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
  put_key (f, KEY_PAUSE, true, VR_SCANCODE_MOD_CTRL);
  EXPECT (f, 0xe0, 0x7e, 0xe0, 0xf0, 0x7e);
  put_key (f, KEY_HANGEUL, true, 0);
  put_key (f, KEY_HANJA, true, 0);
  EXPECT (f, 0xf2, 0xf1);
}

/* The keyboard's scan code set as the guest selects and reads it (F0 xx). */
static void
test_i8042_sets (Fixture *f, gconstpointer data)
{
  static const uint8_t a_down[] = { 0x1e };

  /* Translation on: set 2 reads as 0x41 (translated 0x02); set 1 as 0x43. */
  set_translation (f, true);
  port_out (f, VR_I8042_DATA, 0xf0);
  port_out (f, VR_I8042_DATA, 0x00);
  EXPECT (f, 0xfa, 0xfa, 0x41);
  port_out (f, VR_I8042_DATA, 0xf0);
  port_out (f, VR_I8042_DATA, 0x01);
  port_out (f, VR_I8042_DATA, 0xf0);
  port_out (f, VR_I8042_DATA, 0x00);
  EXPECT (f, 0xfa, 0xfa, 0xfa, 0xfa, 0x43);

  /* Translation off with set 1 selected: set 1 on the wire. */
  set_translation (f, false);
  vr_i8042_kbd_put (f->kbc, a_down, 1);
  EXPECT (f, 0x1e);
  port_out (f, VR_I8042_DATA, 0xf0);
  port_out (f, VR_I8042_DATA, 0x00);
  EXPECT (f, 0xfa, 0xfa, 0x01);

  /* Set 2 again. */
  port_out (f, VR_I8042_DATA, 0xf0);
  port_out (f, VR_I8042_DATA, 0x02);
  EXPECT (f, 0xfa, 0xfa);
  vr_i8042_kbd_put (f->kbc, a_down, 1);
  EXPECT (f, 0x1c);
}

/* A full queue drops whole keys, never a part of one. */
static void
test_i8042_full (Fixture *f, gconstpointer data)
{
  static const uint8_t up[] = { 0xe0, 0xc8 };
  g_autoptr (GByteArray) got = NULL;

  set_translation (f, false);
  /* Disable the keyboard port so that nothing leaves the queue. */
  port_out (f, VR_I8042_CMD, 0xad);
  for (int i = 0; i < 200; i++)
    vr_i8042_kbd_put (f->kbc, up, sizeof up);
  port_out (f, VR_I8042_CMD, 0xae);
  got = drain (f, NULL);
  g_assert_cmpuint (got->len % 3, ==, 0);
  g_assert_cmpuint (got->len, >=, 3 * 60);
  for (guint i = 0; i < got->len; i += 3)
    {
      g_assert_cmpuint (got->data[i], ==, 0xe0);
      g_assert_cmpuint (got->data[i + 1], ==, 0xf0);
      g_assert_cmpuint (got->data[i + 2], ==, 0x75);
    }
}

/* ---- routing ------------------------------------------------------------------------------ */

static void
test_routing_rule (void)
{
  VrInputRouting r;

  r = vr_input_choose_routing (false, false);
  g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_PS2);
  g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_PS2);
  g_assert_false (r.pointer_absolute);
  r = vr_input_choose_routing (true, false);
  g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_VIRTIO);
  g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_PS2);
  g_assert_false (r.pointer_absolute);
  r = vr_input_choose_routing (false, true);
  g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_PS2);
  g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_VIRTIO);
  g_assert_true (r.pointer_absolute);
  r = vr_input_choose_routing (true, true);
  g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_VIRTIO);
  g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_VIRTIO);
  g_assert_true (r.pointer_absolute);
}

/* Keys through the router: modifiers held change PrintScreen and Pause. */
static void
test_router_keys (Fixture *f, gconstpointer data)
{
  VrInputRouting r;

  vr_input_get_routing (f->input, &r);
  g_assert_cmpint (r.keyboard, ==, VR_INPUT_ROUTE_PS2);
  g_assert_cmpint (r.pointer, ==, VR_INPUT_ROUTE_PS2);
  g_assert_false (r.pointer_absolute);

  set_translation (f, true);
  vr_input_key (f->input, KEY_A, true);
  vr_input_key (f->input, KEY_A, false);
  vr_input_key (f->input, KEY_RIGHTCTRL, true);
  vr_input_key (f->input, KEY_PAUSE, true);
  vr_input_key (f->input, KEY_PAUSE, false);
  vr_input_key (f->input, KEY_RIGHTCTRL, false);
  vr_input_key (f->input, KEY_PAUSE, true);
  vr_input_key (f->input, KEY_PAUSE, false);
  EXPECT (f, 0x1e, 0x9e, 0xe0, 0x1d, 0xe0, 0x46, 0xe0, 0xc6, 0xe0, 0x9d,
          0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);

  /* Two Shifts held, one released: still shifted. */
  vr_input_key (f->input, KEY_LEFTSHIFT, true);
  vr_input_key (f->input, KEY_RIGHTSHIFT, true);
  vr_input_key (f->input, KEY_RIGHTSHIFT, false);
  vr_input_key (f->input, KEY_SYSRQ, true);
  vr_input_key (f->input, KEY_SYSRQ, false);
  vr_input_key (f->input, KEY_LEFTSHIFT, false);
  vr_input_key (f->input, KEY_SYSRQ, true);
  vr_input_key (f->input, KEY_SYSRQ, false);
  EXPECT (f, 0x2a, 0x36, 0xb6, 0xe0, 0x37, 0xe0, 0xb7, 0xaa,
          0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa);

  /* Translation off: the same keys in set 2. */
  set_translation (f, false);
  vr_input_key (f->input, KEY_LEFTMETA, true);
  vr_input_key (f->input, KEY_LEFTMETA, false);
  vr_input_key (f->input, KEY_KPENTER, true);
  vr_input_key (f->input, KEY_KPENTER, false);
  EXPECT (f, 0xe0, 0x1f, 0xe0, 0xf0, 0x1f, 0xe0, 0x5a, 0xe0, 0xf0, 0x5a);

  /* Codes out of range and keys with no scan code are dropped. */
  vr_input_key (f->input, KEY_CNT, true);
  vr_input_key (f->input, ~0u, true);
  vr_input_key (f->input, KEY_F20, true);
  expect_empty (f);
}

/* The aux port on, data reporting on, IntelliMouse (wheel) if asked. */
static void
mouse_enable (Fixture *f, bool wheel)
{
  kbc_command (f, 0x60, 0x47);     /* both interrupts, translation, both ports enabled */
  kbc_command (f, 0xd4, 0xf4);
  EXPECT (f, 0xfa);
  if (wheel)
    {
      static const uint8_t knock[] = { 200, 100, 80 };

      for (int i = 0; i < 3; i++)
        {
          kbc_command (f, 0xd4, 0xf3);
          kbc_command (f, 0xd4, knock[i]);
        }
      EXPECT (f, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa);
      kbc_command (f, 0xd4, 0xf2);
      EXPECT (f, 0xfa, 0x03);
    }
}

static void
test_router_pointer (Fixture *f, gconstpointer data)
{
  bool aux = false;

  /* Nothing reaches a mouse that has not enabled reporting. */
  vr_input_rel (f->input, 10, 10);
  expect_empty (f);

  mouse_enable (f, false);
  /* Relative: right 5, down 3 (PS/2 y grows upwards). */
  vr_input_rel (f->input, 5, 3);
  {
    g_autoptr (GByteArray) got = drain (f, &aux);

    g_assert_true (aux);
    g_assert_cmpuint (got->len, ==, 3);
    g_assert_cmpuint (got->data[0], ==, 0x28);
    g_assert_cmpuint (got->data[1], ==, 5);
    g_assert_cmpuint (got->data[2], ==, 0xfd);
  }
  vr_input_rel (f->input, 0, 0);
  expect_empty (f);

  /* Absolute: the first position only places the pointer; then deltas on 1024x768. */
  vr_input_abs (f->input, 16384, 16384);
  expect_empty (f);
  vr_input_abs (f->input, 16384 + 32 * 10, 16384 - 128 * 4);
  EXPECT (f, 0x08, 10, 12);
  vr_input_abs (f->input, 16384 + 32 * 10, 16384 - 128 * 4);
  expect_empty (f);
  vr_input_abs (f->input, 100000, 100000);   /* clamped to the corner */
  /* From (522, 372) to (1023, 767): two packets, each at most 255 on an axis. */
  EXPECT (f, 0x28, 0xff, 0x01, 0x28, 246, 0x74);
}

static void
test_router_buttons (Fixture *f, gconstpointer data)
{
  mouse_enable (f, true);
  vr_input_button (f->input, BTN_LEFT, true);
  EXPECT (f, 0x09, 0, 0, 0);
  vr_input_button (f->input, BTN_LEFT, true);       /* no change: no packet */
  expect_empty (f);
  vr_input_button (f->input, BTN_RIGHT, true);
  EXPECT (f, 0x0b, 0, 0, 0);
  vr_input_button (f->input, BTN_LEFT, false);
  vr_input_button (f->input, BTN_RIGHT, false);
  vr_input_button (f->input, BTN_MIDDLE, true);
  vr_input_button (f->input, BTN_MIDDLE, false);
  EXPECT (f, 0x0a, 0, 0, 0, 0x08, 0, 0, 0, 0x0c, 0, 0, 0, 0x08, 0, 0, 0);
  /* The wheel: away from the user is negative in the packet. */
  vr_input_wheel (f->input, 1);
  vr_input_wheel (f->input, -2);
  vr_input_wheel (f->input, 0);
  EXPECT (f, 0x08, 0, 0, 0xff, 0x08, 0, 0, 0x02);
  /* Buttons the PS/2 mouse does not have, or not buttons at all: nothing. */
  vr_input_button (f->input, BTN_TOUCH, true);
  vr_input_button (f->input, KEY_CNT + 5, true);
  expect_empty (f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  g_test_add_func ("/input/table/coverage", test_table_coverage);
  ADD ("/input/table/round-trip", test_table_round_trip);
  ADD ("/input/table/special", test_table_special);
  ADD ("/input/i8042/sets", test_i8042_sets);
  ADD ("/input/i8042/full", test_i8042_full);
  g_test_add_func ("/input/routing/rule", test_routing_rule);
  ADD ("/input/routing/keys", test_router_keys);
  ADD ("/input/routing/pointer", test_router_pointer);
  ADD ("/input/routing/buttons", test_router_buttons);
#undef ADD

  return g_test_run ();
}
