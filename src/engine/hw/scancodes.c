/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Linux evdev key codes to PC/AT keyboard scan codes.
 *
 * Set 1 is what a PC guest reads from port 0x60 in the normal state (an MF2 keyboard in set
 * 2 behind an i8042 that translates); a key's break code is its make code with bit 7 set,
 * extended keys carry an 0xe0 prefix before both. The table covers every key of a 105-key
 * PC keyboard (the 104-key US layout plus the ISO key next to the left Shift), the Japanese
 * and Korean keys, the keypad's '=' and ',' and the multimedia/ACPI keys that keyboards
 * send in set 1 (Microsoft's "Keyboard Scan Code Specification", rev. 1.3a). Keys that exist
 * only on exotic keyboards (F13-F24, Sun keys, …) have no code here: their set 1 codes are
 * not standard (the usual tables disagree), so they are dropped rather than guessed.
 *
 * Special cases, as a real keyboard sends them:
 *  - PrintScreen (KEY_SYSRQ): E0 2A E0 37 / E0 B7 E0 AA; with Shift or Ctrl held E0 37 /
 *    E0 B7; with Alt held (SysRq) 54 / D4.
 *  - Pause (KEY_PAUSE): E1 1D 45 E1 9D C5 on press and nothing on release; with Ctrl held
 *    (Break) E0 46 E0 C6 on press, nothing on release.
 *  - Hangeul and Hanja (KEY_HANGEUL F2, KEY_HANJA F1): a make code only, no break code.
 *  - The "fake shifts" a real keyboard wraps around the navigation keys when Num Lock or
 *    Shift is on (E0 2A / E0 AA …) are not sent: the keyboard does not know the guest's Num
 *    Lock state, and QEMU does not send them either; guests do not need them.
 *
 * Set 2 (translation off) is derived per byte from set 1: prefixes stay, a break code is 0xf0
 * followed by the make code, and the make code maps through set1_to_set2 below (the inverse
 * of the i8042's translation table).
 */

#include "config.h"

#include "scancodes.h"

#include <linux/input-event-codes.h>

#define E0(c) (0xe000 | (c))

/* evdev code → set 1 make code (0xe0xx: extended). */
static const uint16_t evdev_to_set1[] = {
  /* Main block, row by row. */
  [KEY_ESC] = 0x01,
  [KEY_1] = 0x02, [KEY_2] = 0x03, [KEY_3] = 0x04, [KEY_4] = 0x05, [KEY_5] = 0x06,
  [KEY_6] = 0x07, [KEY_7] = 0x08, [KEY_8] = 0x09, [KEY_9] = 0x0a, [KEY_0] = 0x0b,
  [KEY_MINUS] = 0x0c, [KEY_EQUAL] = 0x0d, [KEY_BACKSPACE] = 0x0e,
  [KEY_TAB] = 0x0f,
  [KEY_Q] = 0x10, [KEY_W] = 0x11, [KEY_E] = 0x12, [KEY_R] = 0x13, [KEY_T] = 0x14,
  [KEY_Y] = 0x15, [KEY_U] = 0x16, [KEY_I] = 0x17, [KEY_O] = 0x18, [KEY_P] = 0x19,
  [KEY_LEFTBRACE] = 0x1a, [KEY_RIGHTBRACE] = 0x1b, [KEY_ENTER] = 0x1c,
  [KEY_LEFTCTRL] = 0x1d,
  [KEY_A] = 0x1e, [KEY_S] = 0x1f, [KEY_D] = 0x20, [KEY_F] = 0x21, [KEY_G] = 0x22,
  [KEY_H] = 0x23, [KEY_J] = 0x24, [KEY_K] = 0x25, [KEY_L] = 0x26,
  [KEY_SEMICOLON] = 0x27, [KEY_APOSTROPHE] = 0x28, [KEY_GRAVE] = 0x29,
  [KEY_LEFTSHIFT] = 0x2a, [KEY_BACKSLASH] = 0x2b,
  [KEY_Z] = 0x2c, [KEY_X] = 0x2d, [KEY_C] = 0x2e, [KEY_V] = 0x2f, [KEY_B] = 0x30,
  [KEY_N] = 0x31, [KEY_M] = 0x32, [KEY_COMMA] = 0x33, [KEY_DOT] = 0x34, [KEY_SLASH] = 0x35,
  [KEY_RIGHTSHIFT] = 0x36,
  [KEY_LEFTALT] = 0x38, [KEY_SPACE] = 0x39, [KEY_CAPSLOCK] = 0x3a,
  [KEY_102ND] = 0x56,           /* the ISO key between left Shift and Z */
  [KEY_LEFTMETA] = E0 (0x5b), [KEY_RIGHTMETA] = E0 (0x5c), [KEY_COMPOSE] = E0 (0x5d),
  [KEY_RIGHTALT] = E0 (0x38), [KEY_RIGHTCTRL] = E0 (0x1d),

  /* Function keys. */
  [KEY_F1] = 0x3b, [KEY_F2] = 0x3c, [KEY_F3] = 0x3d, [KEY_F4] = 0x3e, [KEY_F5] = 0x3f,
  [KEY_F6] = 0x40, [KEY_F7] = 0x41, [KEY_F8] = 0x42, [KEY_F9] = 0x43, [KEY_F10] = 0x44,
  [KEY_F11] = 0x57, [KEY_F12] = 0x58,
  [KEY_SYSRQ] = E0 (0x37),      /* PrintScreen: a sequence, see set1_sequence() */
  [KEY_SCROLLLOCK] = 0x46,
  /* KEY_PAUSE: a sequence only. */

  /* Navigation block and arrows. */
  [KEY_INSERT] = E0 (0x52), [KEY_HOME] = E0 (0x47), [KEY_PAGEUP] = E0 (0x49),
  [KEY_DELETE] = E0 (0x53), [KEY_END] = E0 (0x4f), [KEY_PAGEDOWN] = E0 (0x51),
  [KEY_UP] = E0 (0x48), [KEY_LEFT] = E0 (0x4b), [KEY_DOWN] = E0 (0x50), [KEY_RIGHT] = E0 (0x4d),

  /* Keypad. */
  [KEY_NUMLOCK] = 0x45, [KEY_KPSLASH] = E0 (0x35), [KEY_KPASTERISK] = 0x37,
  [KEY_KPMINUS] = 0x4a, [KEY_KP7] = 0x47, [KEY_KP8] = 0x48, [KEY_KP9] = 0x49,
  [KEY_KPPLUS] = 0x4e, [KEY_KP4] = 0x4b, [KEY_KP5] = 0x4c, [KEY_KP6] = 0x4d,
  [KEY_KP1] = 0x4f, [KEY_KP2] = 0x50, [KEY_KP3] = 0x51, [KEY_KPENTER] = E0 (0x1c),
  [KEY_KP0] = 0x52, [KEY_KPDOT] = 0x53,
  [KEY_KPEQUAL] = 0x59, [KEY_KPCOMMA] = 0x7e,

  /* Japanese (106/109-key) and Korean keyboards. */
  [KEY_RO] = 0x73, [KEY_YEN] = 0x7d, [KEY_HENKAN] = 0x79, [KEY_MUHENKAN] = 0x7b,
  [KEY_KATAKANAHIRAGANA] = 0x70,
  [KEY_HANGEUL] = 0xf2, [KEY_HANJA] = 0xf1,     /* no break codes */

  /* ACPI power keys. */
  [KEY_POWER] = E0 (0x5e), [KEY_SLEEP] = E0 (0x5f), [KEY_WAKEUP] = E0 (0x63),

  /* Multimedia and application-launch keys. */
  [KEY_MUTE] = E0 (0x20), [KEY_VOLUMEDOWN] = E0 (0x2e), [KEY_VOLUMEUP] = E0 (0x30),
  [KEY_PLAYPAUSE] = E0 (0x22), [KEY_STOPCD] = E0 (0x24),
  [KEY_PREVIOUSSONG] = E0 (0x10), [KEY_NEXTSONG] = E0 (0x19),
  [KEY_MEDIA] = E0 (0x6d), [KEY_MAIL] = E0 (0x6c), [KEY_CALC] = E0 (0x21),
  [KEY_COMPUTER] = E0 (0x6b),
  [KEY_SEARCH] = E0 (0x65), [KEY_HOMEPAGE] = E0 (0x32), [KEY_BACK] = E0 (0x6a),
  [KEY_FORWARD] = E0 (0x69), [KEY_STOP] = E0 (0x68), [KEY_REFRESH] = E0 (0x67),
  [KEY_BOOKMARKS] = E0 (0x66),
};

/* Set 1 make code (0x00-0x7f) → set 2 make code; 0 when the key has no set 2 code here. */
static const uint8_t set1_to_set2[128] = {
  [0x01] = 0x76, [0x02] = 0x16, [0x03] = 0x1e, [0x04] = 0x26, [0x05] = 0x25, [0x06] = 0x2e,
  [0x07] = 0x36, [0x08] = 0x3d, [0x09] = 0x3e, [0x0a] = 0x46, [0x0b] = 0x45, [0x0c] = 0x4e,
  [0x0d] = 0x55, [0x0e] = 0x66, [0x0f] = 0x0d, [0x10] = 0x15, [0x11] = 0x1d, [0x12] = 0x24,
  [0x13] = 0x2d, [0x14] = 0x2c, [0x15] = 0x35, [0x16] = 0x3c, [0x17] = 0x43, [0x18] = 0x44,
  [0x19] = 0x4d, [0x1a] = 0x54, [0x1b] = 0x5b, [0x1c] = 0x5a, [0x1d] = 0x14, [0x1e] = 0x1c,
  [0x1f] = 0x1b, [0x20] = 0x23, [0x21] = 0x2b, [0x22] = 0x34, [0x23] = 0x33, [0x24] = 0x3b,
  [0x25] = 0x42, [0x26] = 0x4b, [0x27] = 0x4c, [0x28] = 0x52, [0x29] = 0x0e, [0x2a] = 0x12,
  [0x2b] = 0x5d, [0x2c] = 0x1a, [0x2d] = 0x22, [0x2e] = 0x21, [0x2f] = 0x2a, [0x30] = 0x32,
  [0x31] = 0x31, [0x32] = 0x3a, [0x33] = 0x41, [0x34] = 0x49, [0x35] = 0x4a, [0x36] = 0x59,
  [0x37] = 0x7c, [0x38] = 0x11, [0x39] = 0x29, [0x3a] = 0x58, [0x3b] = 0x05, [0x3c] = 0x06,
  [0x3d] = 0x04, [0x3e] = 0x0c, [0x3f] = 0x03, [0x40] = 0x0b, [0x41] = 0x83, [0x42] = 0x0a,
  [0x43] = 0x01, [0x44] = 0x09, [0x45] = 0x77, [0x46] = 0x7e, [0x47] = 0x6c, [0x48] = 0x75,
  [0x49] = 0x7d, [0x4a] = 0x7b, [0x4b] = 0x6b, [0x4c] = 0x73, [0x4d] = 0x74, [0x4e] = 0x79,
  [0x4f] = 0x69, [0x50] = 0x72, [0x51] = 0x7a, [0x52] = 0x70, [0x53] = 0x71, [0x54] = 0x84,
  [0x56] = 0x61, [0x57] = 0x78, [0x58] = 0x07, [0x59] = 0x0f, [0x5b] = 0x1f, [0x5c] = 0x27,
  [0x5d] = 0x2f, [0x5e] = 0x37, [0x5f] = 0x3f, [0x63] = 0x5e, [0x64] = 0x08, [0x65] = 0x10,
  [0x66] = 0x18, [0x67] = 0x20, [0x68] = 0x28, [0x69] = 0x30, [0x6a] = 0x38, [0x6b] = 0x40,
  [0x6c] = 0x48, [0x6d] = 0x50, [0x6e] = 0x57, [0x70] = 0x13, [0x73] = 0x51, [0x76] = 0x5f,
  [0x79] = 0x64, [0x7b] = 0x67, [0x7d] = 0x6a, [0x7e] = 0x6d,
};

uint16_t
vr_scancode_set1 (unsigned code)
{
  return code < G_N_ELEMENTS (evdev_to_set1) ? evdev_to_set1[code] : 0;
}

uint8_t
vr_scancode_set1_to_set2 (uint8_t make)
{
  return make < G_N_ELEMENTS (set1_to_set2) ? set1_to_set2[make] : 0;
}

unsigned
vr_scancode_modifier (unsigned code)
{
  switch (code)
    {
    case KEY_LEFTCTRL:
    case KEY_RIGHTCTRL:
      return VR_SCANCODE_MOD_CTRL;
    case KEY_LEFTSHIFT:
    case KEY_RIGHTSHIFT:
      return VR_SCANCODE_MOD_SHIFT;
    case KEY_LEFTALT:
    case KEY_RIGHTALT:
      return VR_SCANCODE_MOD_ALT;
    default:
      return 0;
    }
}

static size_t
put (uint8_t *out, const uint8_t *bytes, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = bytes[i];
  return n;
}

size_t
vr_scancode_set1_sequence (unsigned code,
                           bool     pressed,
                           unsigned mods,
                           uint8_t  out[VR_SCANCODE_MAX])
{
  uint16_t sc;
  size_t n = 0;

  g_return_val_if_fail (out != NULL, 0);

  if (code == KEY_PAUSE)
    {
      static const uint8_t pause[] = { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 };
      static const uint8_t brk[] = { 0xe0, 0x46, 0xe0, 0xc6 };

      /* Make and break at once on the press, nothing on the release. */
      if (!pressed)
        return 0;
      return (mods & VR_SCANCODE_MOD_CTRL) ? put (out, brk, sizeof brk)
                                           : put (out, pause, sizeof pause);
    }

  if (code == KEY_SYSRQ)
    {
      static const uint8_t make[] = { 0xe0, 0x2a, 0xe0, 0x37 };
      static const uint8_t brk[] = { 0xe0, 0xb7, 0xe0, 0xaa };

      if (mods & VR_SCANCODE_MOD_ALT)
        {
          out[0] = pressed ? 0x54 : 0xd4;
          return 1;
        }
      if (mods & (VR_SCANCODE_MOD_CTRL | VR_SCANCODE_MOD_SHIFT))
        {
          out[0] = 0xe0;
          out[1] = pressed ? 0x37 : 0xb7;
          return 2;
        }
      return pressed ? put (out, make, sizeof make) : put (out, brk, sizeof brk);
    }

  sc = vr_scancode_set1 (code);
  if (sc == 0)
    return 0;
  if (sc >= 0xf0 && sc <= 0xff)
    {
      /* Hangeul/Hanja: a single byte on the press. */
      if (!pressed)
        return 0;
      out[0] = (uint8_t) sc;
      return 1;
    }
  if (sc & 0xff00)
    out[n++] = (uint8_t) (sc >> 8);
  out[n++] = (uint8_t) ((sc & 0x7f) | (pressed ? 0 : 0x80));
  return n;
}
