/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * i8042 keyboard controller with an MF2 keyboard on the first port and a PS/2 mouse
 * (IntelliMouse and IntelliMouse Explorer protocols) on the aux port.
 *
 * Scan codes: vr_i8042_kbd_put() takes PC scan code set 1, which is what a guest sees when
 * the command byte's XLATE bit is set (the normal PC state, and our reset state, as left by
 * a BIOS). When a guest turns translation off, key bytes are converted to set 2 (break codes
 * become 0xf0 + make; prefixes stay; see scancodes.c) on their way into the keyboard's queue,
 * unless the guest selected set 1 on the keyboard (F0 01), which is then passed on as it is
 * (with translation on too, where a real controller would mangle it). Scan code set 3 is not
 * emulated: selecting it is acknowledged and set 2 keeps being sent. A key's bytes are queued
 * whole or dropped whole when the queue is full.
 *
 * Queues: the controller's own replies, the keyboard's and the mouse's bytes each have a
 * queue; whenever the output buffer is empty it is refilled in that order, skipping a port
 * that is disabled in the command byte. IRQ1/IRQ12 follow the output buffer's owner and the
 * command byte's interrupt enables (each new byte makes a new edge).
 *
 * Locking: `lock` protects everything; guest accesses come from vCPUs, injection from the
 * UI/I/O side. vr_machine_request_reset() returns at once and may be called with it held.
 */

#include "config.h"

#include "hw.h"
#include "scancodes.h"
#include "state.h"

#include <string.h>

/* Status register. */
#define STAT_OBF      0x01
#define STAT_IBF      0x02
#define STAT_SYS      0x04
#define STAT_CMD      0x08
#define STAT_UNLOCKED 0x10
#define STAT_AUX_OBF  0x20

/* Command byte (controller RAM byte 0). */
#define CTR_KBDINT    0x01
#define CTR_AUXINT    0x02
#define CTR_SYS       0x04
#define CTR_KBDDIS    0x10
#define CTR_AUXDIS    0x20
#define CTR_XLATE     0x40

/* Output port. */
#define OUT_RESET     0x01   /* low: CPU in reset */
#define OUT_A20       0x02
#define OUT_KBD_OBF   0x10
#define OUT_AUX_OBF   0x20

#define QUEUE_SIZE    256

#define KBD_ACK       0xfa
#define KBD_RESEND    0xfe
#define KBD_BAT_OK    0xaa

/* Bytes; bit 8 marks a controller-queue byte that appears to come from the aux port. */
#define FROM_AUX      0x100

typedef struct
{
  uint16_t data[QUEUE_SIZE];
  unsigned head;
  unsigned count;
} Queue;

typedef struct _VrI8042 VrI8042;

struct _VrI8042
{
  VrDevice    parent;
  GMutex      lock;
  VrBus      *pio;
  VrIrqChip  *irq;
  VrMachine  *machine;
  VrI8042    *data_tag[2];    /* bus opaque for 0x60: { self, NULL } */
  VrI8042    *cmd_tag[2];     /* bus opaque for 0x64: { self, self } */

  uint8_t     status;
  uint8_t     ctr;
  uint8_t     outport;
  uint8_t     pending_cmd;    /* controller command waiting for its data byte, or 0 */
  uint8_t     out_byte;
  bool        out_from_aux;
  bool        kbd_level;
  bool        aux_level;
  uint8_t     ram[32];        /* controller RAM 0x01-0x1f (0 is the command byte) */

  Queue       ctrl_q;         /* controller replies, not subject to port disables */
  Queue       kbd_q;
  Queue       aux_q;

  /* Keyboard. */
  bool        kbd_scanning;
  uint8_t     kbd_pending;    /* command waiting for a parameter, or 0 */
  uint8_t     kbd_set;
  uint8_t     kbd_leds;
  uint8_t     kbd_typematic;

  /* Mouse. */
  bool        aux_enabled;    /* data reporting */
  bool        aux_remote;
  bool        aux_wrap;
  uint8_t     aux_pending;
  uint8_t     aux_rate;
  uint8_t     aux_resolution;
  bool        aux_scaling21;
  uint8_t     aux_id;         /* 0, 3 (wheel) or 4 (5 buttons + wheel) */
  uint8_t     aux_rates[3];   /* last sample rates set, for the IntelliMouse knocks */
  unsigned    aux_buttons;
};

static void
queue_push (Queue *q, uint16_t byte)
{
  if (q->count >= QUEUE_SIZE)
    return;  /* full: the byte is lost, as with a real keyboard's buffer */
  q->data[(q->head + q->count) % QUEUE_SIZE] = byte;
  q->count++;
}

static uint16_t
queue_pop (Queue *q)
{
  uint16_t byte = q->data[q->head];

  q->head = (q->head + 1) % QUEUE_SIZE;
  q->count--;
  return byte;
}

static void
queue_clear (Queue *q)
{
  q->head = 0;
  q->count = 0;
}

/* The levels IRQ1 and IRQ12 should have. */
static void
i8042_compute_irq (VrI8042 *s,
                   bool    *kbd,
                   bool    *aux)
{
  bool full = s->status & STAT_OBF;

  *kbd = full && !s->out_from_aux && (s->ctr & CTR_KBDINT);
  *aux = full && s->out_from_aux && (s->ctr & CTR_AUXINT);
}

static void
i8042_update_irq (VrI8042 *s)
{
  bool kbd, aux;

  i8042_compute_irq (s, &kbd, &aux);
  if (kbd != s->kbd_level)
    {
      s->kbd_level = kbd;
      if (s->irq)
        vr_irq_set_level (s->irq, VR_I8042_KBD_IRQ, kbd);
    }
  if (aux != s->aux_level)
    {
      s->aux_level = aux;
      if (s->irq)
        vr_irq_set_level (s->irq, VR_I8042_AUX_IRQ, aux);
    }
}

/* Fills the output buffer when it is empty. */
static void
i8042_refill (VrI8042 *s)
{
  if (s->status & STAT_OBF)
    return;

  if (s->ctrl_q.count > 0)
    {
      uint16_t v = queue_pop (&s->ctrl_q);

      s->out_byte = (uint8_t) v;
      s->out_from_aux = v & FROM_AUX;
    }
  else if (s->kbd_q.count > 0 && !(s->ctr & CTR_KBDDIS))
    {
      s->out_byte = (uint8_t) queue_pop (&s->kbd_q);
      s->out_from_aux = false;
    }
  else if (s->aux_q.count > 0 && !(s->ctr & CTR_AUXDIS))
    {
      s->out_byte = (uint8_t) queue_pop (&s->aux_q);
      s->out_from_aux = true;
    }
  else
    return;

  s->status |= STAT_OBF;
  if (s->out_from_aux)
    s->status |= STAT_AUX_OBF;
  else
    s->status &= ~STAT_AUX_OBF;
}

static void
i8042_kick (VrI8042 *s)
{
  i8042_refill (s);
  i8042_update_irq (s);
}

/* A byte the keyboard sends as a key event, in set 1 as given. */
static void
kbd_queue_key (VrI8042 *s, uint8_t code)
{
  uint8_t make;

  /* Translation on, or the guest chose set 1: it reads set 1. */
  if ((s->ctr & CTR_XLATE) || s->kbd_set == 1)
    {
      queue_push (&s->kbd_q, code);
      return;
    }

  /* Translation off: the guest reads what the keyboard sends, set 2. The prefixes and the
   * single-byte Hanja/Hangeul keys are the same in both sets. */
  if (code == 0xe0 || code == 0xe1 || code == 0xf1 || code == 0xf2)
    {
      queue_push (&s->kbd_q, code);
      return;
    }
  make = vr_scancode_set1_to_set2 (code & 0x7f);
  if (make == 0)
    return;
  if (code & 0x80)
    queue_push (&s->kbd_q, 0xf0);
  queue_push (&s->kbd_q, make);
}

static void
kbd_reset_state (VrI8042 *s)
{
  s->kbd_scanning = true;
  s->kbd_pending = 0;
  s->kbd_set = 2;
  s->kbd_leds = 0;
  s->kbd_typematic = 0x2b;
}

static void
kbd_write (VrI8042 *s, uint8_t val)
{
  if (s->kbd_pending)
    {
      uint8_t cmd = s->kbd_pending;

      s->kbd_pending = 0;
      switch (cmd)
        {
        case 0xed:  /* LEDs */
          s->kbd_leds = val & 0x07;
          queue_push (&s->kbd_q, KBD_ACK);
          return;

        case 0xf3:  /* typematic rate/delay */
          s->kbd_typematic = val & 0x7f;
          queue_push (&s->kbd_q, KBD_ACK);
          return;

        case 0xf0:  /* scan code set */
          queue_push (&s->kbd_q, KBD_ACK);
          if (val == 0)
            {
              /* Sets 1, 2, 3 as the translating controller passes them on. */
              static const uint8_t translated[4] = { 0, 0x43, 0x41, 0x3f };

              queue_push (&s->kbd_q, (s->ctr & CTR_XLATE) ? translated[s->kbd_set & 3]
                                                          : s->kbd_set);
            }
          else if (val <= 3)
            s->kbd_set = val;
          return;

        default:
          break;
        }
      /* Not a parameter after all: fall back to treating it as a command. */
    }

  switch (val)
    {
    case 0xed:
    case 0xf3:
    case 0xf0:
      s->kbd_pending = val;
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xee:  /* echo */
      queue_push (&s->kbd_q, 0xee);
      break;

    case 0xf2:  /* identify: MF2 keyboard */
      queue_push (&s->kbd_q, KBD_ACK);
      queue_push (&s->kbd_q, 0xab);
      queue_push (&s->kbd_q, (s->ctr & CTR_XLATE) ? 0x41 : 0x83);
      break;

    case 0xf4:
      s->kbd_scanning = true;
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xf5:  /* disable: also restores defaults */
      s->kbd_scanning = false;
      s->kbd_typematic = 0x2b;
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xf6:  /* set defaults */
      s->kbd_typematic = 0x2b;
      s->kbd_set = 2;
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xf7: case 0xf8: case 0xf9: case 0xfa:
    case 0xfb: case 0xfc: case 0xfd:
      /* Set 3 key type commands: acknowledged, no effect. */
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xfe:  /* resend: our last byte was received fine, send an ACK */
      queue_push (&s->kbd_q, KBD_ACK);
      break;

    case 0xff:  /* reset and self-test */
      queue_clear (&s->kbd_q);
      kbd_reset_state (s);
      queue_push (&s->kbd_q, KBD_ACK);
      queue_push (&s->kbd_q, KBD_BAT_OK);
      break;

    default:
      queue_push (&s->kbd_q, KBD_RESEND);
      break;
    }
}

static void
aux_reset_state (VrI8042 *s)
{
  s->aux_enabled = false;
  s->aux_remote = false;
  s->aux_wrap = false;
  s->aux_pending = 0;
  s->aux_rate = 100;
  s->aux_resolution = 2;
  s->aux_scaling21 = false;
  memset (s->aux_rates, 0, sizeof s->aux_rates);
}

static void
aux_queue_packet (VrI8042 *s, int dx, int dy, int dz, unsigned buttons)
{
  uint8_t b0 = 0x08 | (buttons & 0x07);
  unsigned need = s->aux_id ? 4 : 3;

  if (QUEUE_SIZE - s->aux_q.count < need)
    return;  /* queue full: drop this motion rather than a part of a packet */

  if (dx < 0)
    b0 |= 0x10;
  if (dy < 0)
    b0 |= 0x20;
  queue_push (&s->aux_q, b0);
  queue_push (&s->aux_q, (uint8_t) dx);
  queue_push (&s->aux_q, (uint8_t) dy);
  if (s->aux_id == 3)
    queue_push (&s->aux_q, (uint8_t) (int8_t) dz);
  else if (s->aux_id == 4)
    queue_push (&s->aux_q, (uint8_t) ((dz & 0x0f) | ((buttons & 0x18) << 1)));
}

static void
aux_write (VrI8042 *s, uint8_t val)
{
  if (s->aux_wrap && val != 0xec && val != 0xff)
    {
      queue_push (&s->aux_q, val);
      return;
    }

  if (s->aux_pending)
    {
      uint8_t cmd = s->aux_pending;

      s->aux_pending = 0;
      switch (cmd)
        {
        case 0xf3:  /* sample rate: also the IntelliMouse detection knocks */
          s->aux_rate = val;
          s->aux_rates[0] = s->aux_rates[1];
          s->aux_rates[1] = s->aux_rates[2];
          s->aux_rates[2] = val;
          if (s->aux_rates[0] == 200 && s->aux_rates[1] == 100 && s->aux_rates[2] == 80)
            s->aux_id = 3;
          else if (s->aux_rates[0] == 200 && s->aux_rates[1] == 200 && s->aux_rates[2] == 80
                   && s->aux_id == 3)
            s->aux_id = 4;
          queue_push (&s->aux_q, KBD_ACK);
          return;

        case 0xe8:  /* resolution */
          s->aux_resolution = val & 0x03;
          queue_push (&s->aux_q, KBD_ACK);
          return;

        default:
          break;
        }
    }

  switch (val)
    {
    case 0xe6:
      s->aux_scaling21 = false;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xe7:
      s->aux_scaling21 = true;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xe8:
    case 0xf3:
      s->aux_pending = val;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xe9:  /* status request */
      queue_push (&s->aux_q, KBD_ACK);
      queue_push (&s->aux_q, (s->aux_remote ? 0x40 : 0) | (s->aux_enabled ? 0x20 : 0)
                               | (s->aux_scaling21 ? 0x10 : 0)
                               | ((s->aux_buttons & 0x01) ? 0x04 : 0)
                               | ((s->aux_buttons & 0x04) ? 0x02 : 0)
                               | ((s->aux_buttons & 0x02) ? 0x01 : 0));
      queue_push (&s->aux_q, s->aux_resolution);
      queue_push (&s->aux_q, s->aux_rate);
      break;

    case 0xea:  /* stream mode */
      s->aux_remote = false;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xeb:  /* read data: one packet with no motion */
      queue_push (&s->aux_q, KBD_ACK);
      aux_queue_packet (s, 0, 0, 0, s->aux_buttons);
      break;

    case 0xec:  /* reset wrap mode */
      s->aux_wrap = false;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xee:  /* wrap mode */
      s->aux_wrap = true;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xf0:  /* remote mode */
      s->aux_remote = true;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xf2:  /* identify */
      queue_push (&s->aux_q, KBD_ACK);
      queue_push (&s->aux_q, s->aux_id);
      break;

    case 0xf4:
      s->aux_enabled = true;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xf5:
      s->aux_enabled = false;
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xf6:  /* defaults */
      aux_reset_state (s);
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xfe:
      queue_push (&s->aux_q, KBD_ACK);
      break;

    case 0xff:  /* reset: BAT result and the standard mouse ID */
      queue_clear (&s->aux_q);
      aux_reset_state (s);
      s->aux_id = 0;
      queue_push (&s->aux_q, KBD_ACK);
      queue_push (&s->aux_q, KBD_BAT_OK);
      queue_push (&s->aux_q, 0x00);
      break;

    default:
      queue_push (&s->aux_q, KBD_RESEND);
      break;
    }
}

static void
i8042_write_outport (VrI8042 *s, uint8_t val)
{
  s->outport = val;
  if (!(val & OUT_RESET) && s->machine)
    vr_machine_request_reset (s->machine, "i8042 output port reset line");
}

static void
i8042_command (VrI8042 *s, uint8_t cmd)
{
  s->status |= STAT_CMD;

  if (cmd == 0x20)
    {
      queue_push (&s->ctrl_q, s->ctr);
      return;
    }
  if (cmd > 0x20 && cmd < 0x40)
    {
      queue_push (&s->ctrl_q, s->ram[cmd & 0x1f]);
      return;
    }
  if (cmd >= 0x60 && cmd < 0x80)
    {
      s->pending_cmd = cmd;
      return;
    }
  if (cmd >= 0xf0)
    {
      /* Pulse output port bits 0-3 low for those clear in the command: bit 0 is reset. */
      if (!(cmd & 0x01) && s->machine)
        vr_machine_request_reset (s->machine, "i8042 reset pulse");
      return;
    }

  switch (cmd)
    {
    case 0xa7:
      s->ctr |= CTR_AUXDIS;
      break;

    case 0xa8:
      s->ctr &= ~CTR_AUXDIS;
      break;

    case 0xa9:  /* aux interface test: OK */
      queue_push (&s->ctrl_q, 0x00);
      break;

    case 0xaa:  /* controller self-test */
      queue_push (&s->ctrl_q, 0x55);
      s->status |= STAT_SYS;
      break;

    case 0xab:  /* keyboard interface test: OK */
      queue_push (&s->ctrl_q, 0x00);
      break;

    case 0xad:
      s->ctr |= CTR_KBDDIS;
      break;

    case 0xae:
      s->ctr &= ~CTR_KBDDIS;
      break;

    case 0xc0:  /* input port */
      queue_push (&s->ctrl_q, 0x80);  /* keyboard not inhibited */
      break;

    case 0xd0:
      queue_push (&s->ctrl_q, (s->outport & ~(OUT_KBD_OBF | OUT_AUX_OBF))
                                | ((s->status & STAT_OBF) && !s->out_from_aux ? OUT_KBD_OBF : 0)
                                | ((s->status & STAT_OBF) && s->out_from_aux ? OUT_AUX_OBF : 0));
      break;

    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xd4:
      s->pending_cmd = cmd;
      break;

    case 0xdd:  /* A20 off (some controllers) */
      s->outport &= ~OUT_A20;
      break;

    case 0xdf:  /* A20 on */
      s->outport |= OUT_A20;
      break;

    case 0xe0:  /* test inputs */
      queue_push (&s->ctrl_q, 0x00);
      break;

    default:
      /* Unknown commands are ignored, as by most controllers. */
      break;
    }
}

static void
i8042_data (VrI8042 *s, uint8_t val)
{
  uint8_t cmd = s->pending_cmd;

  s->status &= ~STAT_CMD;
  s->pending_cmd = 0;

  if (cmd >= 0x60 && cmd < 0x80)
    {
      if (cmd == 0x60)
        {
          s->ctr = val;
          if (val & CTR_SYS)
            s->status |= STAT_SYS;
          else
            s->status &= ~STAT_SYS;
        }
      else
        s->ram[cmd & 0x1f] = val;
      return;
    }

  switch (cmd)
    {
    case 0xd1:
      i8042_write_outport (s, val);
      break;

    case 0xd2:  /* into the output buffer as if from the keyboard, whatever the disables */
      queue_push (&s->ctrl_q, val);
      break;

    case 0xd3:  /* the same as if from the mouse (Linux's AUX loopback test) */
      queue_push (&s->ctrl_q, FROM_AUX | val);
      break;

    case 0xd4:  /* to the mouse; talking to it re-enables the port */
      s->ctr &= ~CTR_AUXDIS;
      aux_write (s, val);
      break;

    default:
      /* To the keyboard; talking to it re-enables the port. */
      s->ctr &= ~CTR_KBDDIS;
      kbd_write (s, val);
      break;
    }
}

static void
i8042_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrI8042 *s = ((VrI8042 **) opaque)[0];
  bool cmd_port = ((VrI8042 **) opaque)[1] != NULL;

  if (offset != 0)
    return;

  g_mutex_lock (&s->lock);
  if (is_write)
    {
      if (cmd_port)
        i8042_command (s, data[0]);
      else
        i8042_data (s, data[0]);
      i8042_kick (s);
    }
  else if (cmd_port)
    {
      data[0] = s->status | STAT_UNLOCKED;
      for (uint32_t i = 1; i < len; i++)
        data[i] = 0xff;
    }
  else
    {
      data[0] = s->out_byte;
      for (uint32_t i = 1; i < len; i++)
        data[i] = 0xff;
      if (s->status & STAT_OBF)
        {
          s->status &= ~(STAT_OBF | STAT_AUX_OBF);
          /* Drop the line first so that the next byte makes a new edge. */
          i8042_update_irq (s);
        }
      i8042_kick (s);
    }
  g_mutex_unlock (&s->lock);
}

void
vr_i8042_kbd_put (VrDevice      *dev,
                  const uint8_t *scancodes,
                  size_t         len)
{
  VrI8042 *s = (VrI8042 *) dev;

  g_return_if_fail (dev != NULL);
  g_return_if_fail (scancodes != NULL || len == 0);

  g_mutex_lock (&s->lock);
  /* A key's bytes go in whole or not at all (each set 1 byte is at most two in set 2). */
  if (s->kbd_scanning && len <= QUEUE_SIZE / 2 && QUEUE_SIZE - s->kbd_q.count >= 2 * len)
    {
      for (size_t i = 0; i < len; i++)
        kbd_queue_key (s, scancodes[i]);
      i8042_kick (s);
    }
  g_mutex_unlock (&s->lock);
}

void
vr_i8042_mouse_move (VrDevice *dev,
                     int       dx,
                     int       dy,
                     int       dz,
                     unsigned  buttons)
{
  VrI8042 *s = (VrI8042 *) dev;

  g_return_if_fail (dev != NULL);

  g_mutex_lock (&s->lock);
  s->aux_buttons = buttons & 0x1f;
  if (s->aux_enabled && !s->aux_remote && !s->aux_wrap)
    {
      /* PS/2 y grows upwards; the wheel's packet value is negative for "up". */
      dy = -dy;
      dz = -dz;
      do
        {
          int px = CLAMP (dx, -255, 255);
          int py = CLAMP (dy, -255, 255);
          int pz = s->aux_id == 4 ? CLAMP (dz, -8, 7) : CLAMP (dz, -128, 127);

          aux_queue_packet (s, px, py, pz, buttons);
          dx -= px;
          dy -= py;
          dz -= pz;
        }
      while ((dx != 0 || dy != 0 || dz != 0) && s->aux_q.count < QUEUE_SIZE - 8);
      i8042_kick (s);
    }
  g_mutex_unlock (&s->lock);
}

static void
i8042_reset_locked (VrI8042 *s)
{
  /* The state a PC BIOS leaves: translation on, keyboard interrupt on, mouse disabled. */
  s->status = STAT_SYS;
  s->ctr = CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE;
  s->outport = OUT_RESET | OUT_A20;
  s->pending_cmd = 0;
  s->out_byte = 0;
  s->out_from_aux = false;
  memset (s->ram, 0, sizeof s->ram);
  queue_clear (&s->ctrl_q);
  queue_clear (&s->kbd_q);
  queue_clear (&s->aux_q);
  kbd_reset_state (s);
  aux_reset_state (s);
  s->aux_id = 0;
  s->aux_buttons = 0;
  i8042_update_irq (s);
}

static void
i8042_reset (VrDevice *dev)
{
  VrI8042 *s = (VrI8042 *) dev;

  g_mutex_lock (&s->lock);
  i8042_reset_locked (s);
  g_mutex_unlock (&s->lock);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/*
 * State, version 1: (version,
 *   controller: status, command byte, output port, command awaiting data, output buffer byte,
 *               output buffer from aux, RAM 0x00-0x1f (32 bytes; byte 0 unused),
 *   queues: controller replies (bit 8: as if from aux), keyboard bytes, mouse bytes,
 *   keyboard: scanning, command awaiting its parameter, scan code set, LEDs, typematic,
 *   mouse: reporting, remote mode, wrap mode, command awaiting its parameter, sample rate,
 *          resolution, 2:1 scaling, ID, last three sample rates, buttons)
 */
#define I8042_STATE_VERSION 1
#define I8042_STATE_TYPE    "(qyyyyyb@ay@aq@ay@aybyyyybbbyyyby@ayu)"

static GVariant *
queue_to_variant (const Queue *q,
                  bool         words)
{
  uint16_t w[QUEUE_SIZE];
  uint8_t b[QUEUE_SIZE];

  for (unsigned i = 0; i < q->count; i++)
    {
      w[i] = q->data[(q->head + i) % QUEUE_SIZE];
      b[i] = (uint8_t) w[i];
    }
  if (words)
    return g_variant_new_fixed_array (G_VARIANT_TYPE_UINT16, w, q->count, sizeof w[0]);
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, b, q->count, 1);
}

static GVariant *
i8042_save (VrDevice *dev)
{
  VrI8042 *s = (VrI8042 *) dev;
  GVariant *v;

  g_mutex_lock (&s->lock);
  v = g_variant_new (I8042_STATE_TYPE, I8042_STATE_VERSION,
                     s->status, s->ctr, s->outport, s->pending_cmd, s->out_byte, s->out_from_aux,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, s->ram, sizeof s->ram, 1),
                     queue_to_variant (&s->ctrl_q, true), queue_to_variant (&s->kbd_q, false),
                     queue_to_variant (&s->aux_q, false),
                     s->kbd_scanning, s->kbd_pending, s->kbd_set, s->kbd_leds, s->kbd_typematic,
                     s->aux_enabled, s->aux_remote, s->aux_wrap, s->aux_pending, s->aux_rate,
                     s->aux_resolution, s->aux_scaling21, s->aux_id,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, s->aux_rates,
                                                sizeof s->aux_rates, 1),
                     s->aux_buttons);
  g_mutex_unlock (&s->lock);
  return v;
}

static void
queue_load (Queue          *q,
            const uint16_t *words,
            const uint8_t  *bytes,
            gsize           n)
{
  queue_clear (q);
  for (gsize i = 0; i < n; i++)
    queue_push (q, words ? words[i] : bytes[i]);
}

static bool
i8042_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrI8042 *s = (VrI8042 *) dev;
  g_autoptr (GVariant) ram = NULL, ctrl_q = NULL, kbd_q = NULL, aux_q = NULL, rates = NULL;
  uint8_t status, ctr, outport, pending_cmd, out_byte, kbd_pending, kbd_set, kbd_leds;
  uint8_t kbd_typematic, aux_pending, aux_rate, aux_resolution, aux_id;
  gboolean out_from_aux, kbd_scanning, aux_enabled, aux_remote, aux_wrap, aux_scaling21;
  const uint8_t *ram_bytes, *kbd_bytes, *aux_bytes, *rate_bytes;
  const uint16_t *ctrl_words;
  gsize n_ram, n_ctrl, n_kbd, n_aux, n_rates;
  uint32_t aux_buttons;
  uint16_t version;
  bool kbd, aux;

  if (!vr_state_check (state, "i8042", I8042_STATE_TYPE, I8042_STATE_VERSION, error))
    return false;
  g_variant_get (state, I8042_STATE_TYPE, &version, &status, &ctr, &outport, &pending_cmd,
                 &out_byte, &out_from_aux, &ram, &ctrl_q, &kbd_q, &aux_q, &kbd_scanning,
                 &kbd_pending, &kbd_set, &kbd_leds, &kbd_typematic, &aux_enabled, &aux_remote,
                 &aux_wrap, &aux_pending, &aux_rate, &aux_resolution, &aux_scaling21, &aux_id,
                 &rates, &aux_buttons);
  ram_bytes = g_variant_get_fixed_array (ram, &n_ram, 1);
  ctrl_words = g_variant_get_fixed_array (ctrl_q, &n_ctrl, sizeof (uint16_t));
  kbd_bytes = g_variant_get_fixed_array (kbd_q, &n_kbd, 1);
  aux_bytes = g_variant_get_fixed_array (aux_q, &n_aux, 1);
  rate_bytes = g_variant_get_fixed_array (rates, &n_rates, 1);

  /* Only what the controller and its devices can get into. */
  if (status & ~(STAT_OBF | STAT_SYS | STAT_CMD | STAT_AUX_OBF))
    return vr_state_fail (error, "i8042", "status %#x has bits the controller never sets",
                          status);
  if ((status & STAT_AUX_OBF) && !((status & STAT_OBF) && out_from_aux))
    return vr_state_fail (error, "i8042", "status %#x: aux data without an aux byte", status);
  if ((status & STAT_OBF) && !out_from_aux != !(status & STAT_AUX_OBF))
    return vr_state_fail (error, "i8042", "status %#x does not say where the output byte "
                          "came from", status);
  if (pending_cmd != 0 && !(pending_cmd >= 0x60 && pending_cmd < 0x80)
      && !(pending_cmd >= 0xd1 && pending_cmd <= 0xd4))
    return vr_state_fail (error, "i8042", "command %#x cannot await data", pending_cmd);
  if (n_ram != sizeof s->ram)
    return vr_state_fail (error, "i8042", "%" G_GSIZE_FORMAT " bytes of controller RAM, "
                          "expected %zu", n_ram, sizeof s->ram);
  if (n_ctrl > QUEUE_SIZE || n_kbd > QUEUE_SIZE || n_aux > QUEUE_SIZE)
    return vr_state_fail (error, "i8042", "a queue of more than %u bytes", QUEUE_SIZE);
  for (gsize i = 0; i < n_ctrl; i++)
    if (ctrl_words[i] & ~(FROM_AUX | 0xff))
      return vr_state_fail (error, "i8042", "controller queue entry %#x", ctrl_words[i]);
  if (kbd_pending != 0 && kbd_pending != 0xed && kbd_pending != 0xf3 && kbd_pending != 0xf0)
    return vr_state_fail (error, "i8042", "keyboard command %#x takes no parameter",
                          kbd_pending);
  if (kbd_set < 1 || kbd_set > 3)
    return vr_state_fail (error, "i8042", "scan code set %u", kbd_set);
  if (kbd_leds & ~0x07 || kbd_typematic & ~0x7f)
    return vr_state_fail (error, "i8042", "keyboard LEDs %#x or typematic %#x out of range",
                          kbd_leds, kbd_typematic);
  if (aux_pending != 0 && aux_pending != 0xe8 && aux_pending != 0xf3)
    return vr_state_fail (error, "i8042", "mouse command %#x takes no parameter", aux_pending);
  if (aux_resolution > 3)
    return vr_state_fail (error, "i8042", "mouse resolution %u", aux_resolution);
  if (aux_id != 0 && aux_id != 3 && aux_id != 4)
    return vr_state_fail (error, "i8042", "mouse ID %u", aux_id);
  if (n_rates != sizeof s->aux_rates)
    return vr_state_fail (error, "i8042", "%" G_GSIZE_FORMAT " saved sample rates, expected %zu",
                          n_rates, sizeof s->aux_rates);
  if (aux_buttons & ~0x1fu)
    return vr_state_fail (error, "i8042", "mouse buttons %#x", aux_buttons);

  g_mutex_lock (&s->lock);
  s->status = status;
  s->ctr = ctr;
  s->outport = outport;
  s->pending_cmd = pending_cmd;
  s->out_byte = out_byte;
  s->out_from_aux = out_from_aux;
  memcpy (s->ram, ram_bytes, sizeof s->ram);
  queue_load (&s->ctrl_q, ctrl_words, NULL, n_ctrl);
  queue_load (&s->kbd_q, NULL, kbd_bytes, n_kbd);
  queue_load (&s->aux_q, NULL, aux_bytes, n_aux);
  s->kbd_scanning = kbd_scanning;
  s->kbd_pending = kbd_pending;
  s->kbd_set = kbd_set;
  s->kbd_leds = kbd_leds;
  s->kbd_typematic = kbd_typematic;
  s->aux_enabled = aux_enabled;
  s->aux_remote = aux_remote;
  s->aux_wrap = aux_wrap;
  s->aux_pending = aux_pending;
  s->aux_rate = aux_rate;
  s->aux_resolution = aux_resolution;
  s->aux_scaling21 = aux_scaling21;
  s->aux_id = aux_id;
  memcpy (s->aux_rates, rate_bytes, sizeof s->aux_rates);
  s->aux_buttons = aux_buttons;
  /* The lines at the levels the output buffer gives them (no refill: a byte waiting behind a
   * full buffer waits on, as it did). */
  i8042_compute_irq (s, &kbd, &aux);
  s->kbd_level = kbd;
  s->aux_level = aux;
  if (s->irq)
    {
      vr_irq_restore_level (s->irq, VR_I8042_KBD_IRQ, kbd);
      vr_irq_restore_level (s->irq, VR_I8042_AUX_IRQ, aux);
    }
  g_mutex_unlock (&s->lock);
  return true;
}

static void
i8042_destroy (VrDevice *dev)
{
  VrI8042 *s = (VrI8042 *) dev;

  vr_bus_unregister (s->pio, VR_I8042_DATA);
  vr_bus_unregister (s->pio, VR_I8042_CMD);
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps i8042_ops = {
  .name = "i8042",
  .reset = i8042_reset,
  .save = i8042_save,
  .load = i8042_load,
  .destroy = i8042_destroy,
};

VrDevice *
vr_i8042_new (VrBus      *pio,
              VrIrqChip  *irq,
              VrMachine  *machine,
              GError    **error)
{
  VrI8042 *s;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrI8042, 1);
  s->parent.ops = &i8042_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->irq = irq;
  s->machine = machine;
  i8042_reset_locked (s);

  s->data_tag[0] = s;
  s->cmd_tag[0] = s;
  s->cmd_tag[1] = s;
  if (!vr_bus_register (pio, VR_I8042_DATA, 1, i8042_io, s->data_tag, "i8042", error))
    goto fail;
  if (!vr_bus_register (pio, VR_I8042_CMD, 1, i8042_io, s->cmd_tag, "i8042", error))
    {
      vr_bus_unregister (pio, VR_I8042_DATA);
      goto fail;
    }

  return &s->parent;

fail:
  g_mutex_clear (&s->lock);
  g_free (s);
  return NULL;
}
