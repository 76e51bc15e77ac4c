/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Linux evdev key codes (KEY_*) to the bytes a PC/AT keyboard sends in scan code set 1, the
 * set a guest reads from an i8042 with translation on; and set 1 to set 2 (what it reads with
 * translation off). See scancodes.c for the table and the keys' special cases.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Modifier keys held down: PrintScreen and Pause send other sequences with them. */
#define VR_SCANCODE_MOD_CTRL  (1u << 0)
#define VR_SCANCODE_MOD_SHIFT (1u << 1)
#define VR_SCANCODE_MOD_ALT   (1u << 2)

/* The longest sequence of one key event (Pause: 6 bytes). */
#define VR_SCANCODE_MAX       8

/* clang-format off */
/* The set 1 make code of @code: 0x00xx, 0xe0xx for an extended key (sent as 0xe0, xx), or 0
 * when the key has none (or only a sequence: KEY_PAUSE and KEY_SYSRQ answer their plain
 * forms, 0xe145 and 0xe037). */
uint16_t vr_scancode_set1          (unsigned        code);
/* The bytes the keyboard sends when @code is pressed (@pressed) or released, with the
 * modifiers @mods (VR_SCANCODE_MOD_*) held; returns how many were stored in @out (0: the key
 * has no set 1 code, or sends nothing on this transition, like Pause's release). */
size_t   vr_scancode_set1_sequence (unsigned        code,
                                    bool            pressed,
                                    unsigned        mods,
                                    uint8_t         out[VR_SCANCODE_MAX]);
/* The set 2 make code for the set 1 make code @make (0x00-0x7f, without a prefix; the set 2
 * prefixes are the same, 0xe0 and 0xe1), or 0 when there is none. */
uint8_t  vr_scancode_set1_to_set2  (uint8_t         make);
/* The modifier bit that evdev key @code is (VR_SCANCODE_MOD_*), or 0. */
unsigned vr_scancode_modifier      (unsigned        code);
/* clang-format on */

G_END_DECLS
