/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Input routing: the host's keys, pointer, buttons and wheel to the guest's virtio keyboard
 * and tablet when its drivers have set them up, else to the i8042 (scan code set 1 through
 * hw/scancodes.c, PS/2 mouse packets). The rules are documented at vr_machine_input_key().
 *
 * State kept here: which modifiers are held (PrintScreen's and Pause's sequences depend on
 * them), which keys were pressed on which device (a release goes where its press went, so
 * that a driver starting between the two cannot leave a key stuck down in the guest), the
 * buttons held (a PS/2 packet carries them all), and the last absolute position in nominal
 * screen pixels (for the PS/2 fallback).
 *
 * Locking: `lock` protects that state and is held while an event is handed to a device, so
 * that the events of concurrent callers reach the guest in one order. The devices take
 * their own locks inside and never call back here.
 */

#include "config.h"

#include "vr-input.h"

#include <linux/input-event-codes.h>
#include <string.h>

#include "hw/hw.h"
#include "hw/scancodes.h"
#include "virtio/virtio.h"

#define KEY_BITMAP_BYTES ((KEY_CNT + 7) / 8)

struct _VrInput
{
  GMutex    lock;
  VrDevice *i8042;
  VrDevice *keyboard;
  VrDevice *tablet;

  uint8_t   down_ps2[KEY_BITMAP_BYTES];     /* keys whose press went to the i8042 */
  uint8_t   down_virtio[KEY_BITMAP_BYTES];  /* … to the virtio keyboard */
  unsigned  mod_keys;                       /* bit per modifier key held, see mod_key_bit() */
  unsigned  ps2_buttons;                    /* bit 0 left, 1 right, 2 middle, 3 side, 4 extra */
  bool      have_pos;
  int       pos_x;                          /* last absolute position, nominal pixels */
  int       pos_y;
};

VrInputRouting
vr_input_choose_routing (bool keyboard_active,
                         bool tablet_active)
{
  VrInputRouting r = {
    .keyboard = keyboard_active ? VR_INPUT_ROUTE_VIRTIO : VR_INPUT_ROUTE_PS2,
    .pointer = tablet_active ? VR_INPUT_ROUTE_VIRTIO : VR_INPUT_ROUTE_PS2,
    .pointer_absolute = tablet_active,
  };

  return r;
}

static bool
keyboard_active (VrInput *self)
{
  return self->keyboard != NULL && vr_virtio_input_is_active (self->keyboard);
}

static bool
tablet_active (VrInput *self)
{
  return self->tablet != NULL && vr_virtio_input_is_active (self->tablet);
}

static bool
bit_test (const uint8_t *map, unsigned bit)
{
  return map[bit / 8] & (1u << (bit % 8));
}

static void
bit_set (uint8_t *map, unsigned bit, bool on)
{
  if (on)
    map[bit / 8] |= (uint8_t) (1u << (bit % 8));
  else
    map[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

/* Left and right modifiers each have their own bit, so that releasing one of two held
 * Shift keys leaves Shift held. */
static unsigned
mod_key_bit (unsigned code)
{
  switch (code)
    {
    case KEY_LEFTCTRL:
      return 1u << 0;
    case KEY_RIGHTCTRL:
      return 1u << 1;
    case KEY_LEFTSHIFT:
      return 1u << 2;
    case KEY_RIGHTSHIFT:
      return 1u << 3;
    case KEY_LEFTALT:
      return 1u << 4;
    case KEY_RIGHTALT:
      return 1u << 5;
    default:
      return 0;
    }
}

static unsigned
held_modifiers (VrInput *self)
{
  unsigned mods = 0;

  if (self->mod_keys & 0x03)
    mods |= VR_SCANCODE_MOD_CTRL;
  if (self->mod_keys & 0x0c)
    mods |= VR_SCANCODE_MOD_SHIFT;
  if (self->mod_keys & 0x30)
    mods |= VR_SCANCODE_MOD_ALT;
  return mods;
}

VrInput *
vr_input_new (VrDevice *i8042,
              VrDevice *keyboard,
              VrDevice *tablet)
{
  VrInput *self;

  g_return_val_if_fail (i8042 != NULL, NULL);

  self = g_new0 (VrInput, 1);
  g_mutex_init (&self->lock);
  self->i8042 = i8042;
  self->keyboard = keyboard;
  self->tablet = tablet;
  return self;
}

void
vr_input_free (VrInput *self)
{
  if (self == NULL)
    return;
  g_mutex_clear (&self->lock);
  g_free (self);
}

void
vr_input_key (VrInput  *self,
              unsigned  code,
              bool      pressed)
{
  bool to_virtio;

  g_return_if_fail (self != NULL);
  if (code >= KEY_CNT)
    return;

  g_mutex_lock (&self->lock);
  if (!pressed && bit_test (self->down_ps2, code))
    to_virtio = false;
  else if (!pressed && bit_test (self->down_virtio, code))
    to_virtio = true;
  else
    to_virtio = keyboard_active (self);
  bit_set (self->down_ps2, code, pressed && !to_virtio);
  bit_set (self->down_virtio, code, pressed && to_virtio);

  if (to_virtio)
    {
      VrInputEvent ev = { EV_KEY, (uint16_t) code, pressed ? 1 : 0 };

      vr_virtio_input_send (self->keyboard, &ev, 1);
    }
  else
    {
      uint8_t bytes[VR_SCANCODE_MAX];
      size_t n = vr_scancode_set1_sequence (code, pressed, held_modifiers (self), bytes);

      if (n > 0)
        vr_i8042_kbd_put (self->i8042, bytes, n);
    }

  /* After the key's own bytes: a modifier's state changes with its event. */
  if (pressed)
    self->mod_keys |= mod_key_bit (code);
  else
    self->mod_keys &= ~mod_key_bit (code);
  g_mutex_unlock (&self->lock);
}

/* lock held: motion and buttons to the PS/2 mouse. */
static void
ps2_motion (VrInput *self,
            int      dx,
            int      dy,
            int      dz)
{
  vr_i8042_mouse_move (self->i8042, dx, dy, dz, self->ps2_buttons);
}

void
vr_input_abs (VrInput  *self,
              unsigned  x,
              unsigned  y)
{
  int px, py;

  g_return_if_fail (self != NULL);
  x = MIN (x, VR_INPUT_ABS_MAX);
  y = MIN (y, VR_INPUT_ABS_MAX);
  px = (int) ((uint64_t) x * VR_INPUT_PS2_SCREEN_WIDTH / (VR_INPUT_ABS_MAX + 1));
  py = (int) ((uint64_t) y * VR_INPUT_PS2_SCREEN_HEIGHT / (VR_INPUT_ABS_MAX + 1));

  g_mutex_lock (&self->lock);
  if (tablet_active (self))
    {
      VrInputEvent ev[2] = {
        { EV_ABS, ABS_X, (int32_t) x },
        { EV_ABS, ABS_Y, (int32_t) y },
      };

      vr_virtio_input_send (self->tablet, ev, 2);
    }
  else if (self->have_pos && (px != self->pos_x || py != self->pos_y))
    ps2_motion (self, px - self->pos_x, py - self->pos_y, 0);
  /* The first position only says where the pointer is: no motion. */
  self->have_pos = true;
  self->pos_x = px;
  self->pos_y = py;
  g_mutex_unlock (&self->lock);
}

void
vr_input_rel (VrInput *self,
              int      dx,
              int      dy)
{
  g_return_if_fail (self != NULL);
  if (dx == 0 && dy == 0)
    return;
  g_mutex_lock (&self->lock);
  ps2_motion (self, dx, dy, 0);
  g_mutex_unlock (&self->lock);
}

void
vr_input_button (VrInput  *self,
                 unsigned  code,
                 bool      pressed)
{
  bool tablet;

  g_return_if_fail (self != NULL);
  if (code >= KEY_CNT)
    return;

  g_mutex_lock (&self->lock);
  tablet = tablet_active (self);
  if (tablet)
    {
      VrInputEvent ev = { EV_KEY, (uint16_t) code, pressed ? 1 : 0 };

      vr_virtio_input_send (self->tablet, &ev, 1);
    }
  if (code >= BTN_LEFT && code <= BTN_EXTRA)
    {
      /* BTN_LEFT, RIGHT, MIDDLE, SIDE, EXTRA are consecutive, as are the packet's bits. */
      unsigned bit = 1u << (code - BTN_LEFT);
      unsigned old = self->ps2_buttons;

      if (pressed)
        self->ps2_buttons |= bit;
      else
        self->ps2_buttons &= ~bit;
      if (!tablet && self->ps2_buttons != old)
        ps2_motion (self, 0, 0, 0);
    }
  g_mutex_unlock (&self->lock);
}

void
vr_input_wheel (VrInput *self,
                int      delta)
{
  g_return_if_fail (self != NULL);
  if (delta == 0)
    return;

  g_mutex_lock (&self->lock);
  if (tablet_active (self))
    {
      VrInputEvent ev = { EV_REL, REL_WHEEL, delta };

      vr_virtio_input_send (self->tablet, &ev, 1);
    }
  else
    ps2_motion (self, 0, 0, delta);
  g_mutex_unlock (&self->lock);
}

void
vr_input_get_routing (VrInput        *self,
                      VrInputRouting *routing)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (routing != NULL);

  *routing = vr_input_choose_routing (keyboard_active (self), tablet_active (self));
}
