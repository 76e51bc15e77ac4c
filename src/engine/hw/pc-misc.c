/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Small PC ports a guest pokes early:
 *   0x80        POST codes; also Linux's I/O delay port. Writes ignored, reads 0xff.
 *   0x92        system control port A: bit 1 A20 gate (kept and read back), bit 0 fast reset.
 *   0x402       QEMU/SeaBIOS debug console: bytes are collected into lines and logged with
 *               g_debug(); reads return 0xe9, the signature SeaBIOS and others probe for.
 *
 * The remaining ISA legacy (PIC, PIT, speaker port 0x61, ELCR) lives in KVM.
 *
 * Locking: `lock` protects the A20 state and the debug console's line buffer.
 */

#include "config.h"

#include "hw.h"
#include "state.h"

#include <string.h>

#define PORT_POST       0x80
#define PORT_A          0x92
#define PORT_DEBUGCON   0x402

#define PORT_A_RESET    0x01
#define PORT_A_A20      0x02

#define DEBUGCON_LINE   512

typedef struct
{
  VrDevice   parent;
  GMutex     lock;
  VrBus     *pio;
  VrMachine *machine;
  uint8_t    port_a;
  GString   *line;
} VrPcMisc;

static void
post_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  if (!is_write)
    memset (data, 0xff, len);
}

static void
port_a_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrPcMisc *s = opaque;

  g_mutex_lock (&s->lock);
  if (is_write)
    {
      s->port_a = data[0] & PORT_A_A20;
      if ((data[0] & PORT_A_RESET) && s->machine)
        vr_machine_request_reset (s->machine, "fast reset through port 0x92");
    }
  else
    {
      memset (data, 0xff, len);
      data[0] = s->port_a;
    }
  g_mutex_unlock (&s->lock);
}

static void
debugcon_flush (VrPcMisc *s)
{
  if (s->line->len > 0)
    {
      g_debug ("guest debug console: %s", s->line->str);
      if (s->machine)
        vr_machine_firmware_line (s->machine, s->line->str);
      g_string_truncate (s->line, 0);
    }
}

static void
debugcon_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrPcMisc *s = opaque;

  if (!is_write)
    {
      memset (data, 0xff, len);
      data[0] = 0xe9;
      return;
    }

  g_mutex_lock (&s->lock);
  for (uint32_t i = 0; i < len; i++)
    {
      uint8_t c = data[i];

      if (c == '\n')
        debugcon_flush (s);
      else if (c == '\r' || c == 0)
        continue;
      else
        {
          /* Keep the log readable whatever the guest sends. */
          if (c < 0x20 || c >= 0x7f)
            g_string_append_printf (s->line, "\\x%02x", c);
          else
            g_string_append_c (s->line, (char) c);
          if (s->line->len >= DEBUGCON_LINE)
            debugcon_flush (s);
        }
    }
  g_mutex_unlock (&s->lock);
}

static void
pc_misc_reset (VrDevice *dev)
{
  VrPcMisc *s = (VrPcMisc *) dev;

  g_mutex_lock (&s->lock);
  s->port_a = PORT_A_A20;
  debugcon_flush (s);
  g_mutex_unlock (&s->lock);
}

/* Snapshot state, version 1: (version, port 0x92). The debug console's partial line is a
 * host log buffer, not state. */
#define PC_MISC_STATE_VERSION 1
#define PC_MISC_STATE_TYPE    "(qy)"

static GVariant *
pc_misc_save (VrDevice *dev)
{
  VrPcMisc *s = (VrPcMisc *) dev;
  GVariant *v;

  g_mutex_lock (&s->lock);
  v = g_variant_new (PC_MISC_STATE_TYPE, PC_MISC_STATE_VERSION, s->port_a);
  g_mutex_unlock (&s->lock);
  return v;
}

static bool
pc_misc_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrPcMisc *s = (VrPcMisc *) dev;
  uint16_t version;
  uint8_t port_a;

  if (!vr_state_check (state, "pc-misc", PC_MISC_STATE_TYPE, PC_MISC_STATE_VERSION, error))
    return false;
  g_variant_get (state, PC_MISC_STATE_TYPE, &version, &port_a);
  if (port_a & ~PORT_A_A20)
    return vr_state_fail (error, "pc-misc", "port 0x92 value %#x (only A20 is kept)", port_a);

  g_mutex_lock (&s->lock);
  s->port_a = port_a;
  g_mutex_unlock (&s->lock);
  return true;
}

static void
pc_misc_destroy (VrDevice *dev)
{
  VrPcMisc *s = (VrPcMisc *) dev;

  vr_bus_unregister (s->pio, PORT_POST);
  vr_bus_unregister (s->pio, PORT_A);
  vr_bus_unregister (s->pio, PORT_DEBUGCON);
  debugcon_flush (s);
  g_string_free (s->line, TRUE);
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps pc_misc_ops = {
  .name = "pc-misc",
  .reset = pc_misc_reset,
  .save = pc_misc_save,
  .load = pc_misc_load,
  .destroy = pc_misc_destroy,
};

VrDevice *
vr_pc_misc_new (VrBus      *pio,
                VrMachine  *machine,
                GError    **error)
{
  VrPcMisc *s;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrPcMisc, 1);
  s->parent.ops = &pc_misc_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->machine = machine;
  s->port_a = PORT_A_A20;
  s->line = g_string_new (NULL);

  if (!vr_bus_register (pio, PORT_POST, 1, post_io, s, "post", error))
    goto fail;
  if (!vr_bus_register (pio, PORT_A, 1, port_a_io, s, "port-a", error))
    {
      vr_bus_unregister (pio, PORT_POST);
      goto fail;
    }
  if (!vr_bus_register (pio, PORT_DEBUGCON, 1, debugcon_io, s, "debugcon", error))
    {
      vr_bus_unregister (pio, PORT_POST);
      vr_bus_unregister (pio, PORT_A);
      goto fail;
    }
  return &s->parent;

fail:
  g_string_free (s->line, TRUE);
  g_mutex_clear (&s->lock);
  g_free (s);
  return NULL;
}
