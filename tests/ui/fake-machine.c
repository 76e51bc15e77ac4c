/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "config.h"

#include <string.h>

#include "fake-machine.h"

struct _VrDisplay
{
  VrDisplayMode      mode;
  uint8_t           *pixels;
  VrDisplayListener  listener;
  gpointer           user_data;
  GDestroyNotify     destroy;
  uint64_t           damaged_rows;
  uint64_t           updates;
  uint32_t           preferred_width;
  uint32_t           preferred_height;
};

struct _VrMachine
{
  VrMachineConfig config;
  VrDisplay       display;
  GArray         *inputs;
  bool            absolute;
};

uint32_t
fake_pattern_pixel (unsigned x,
                    unsigned y)
{
  /* Every pixel differs from its neighbours in each channel: an offset or a filtered pixel
   * shows. Colour bars in the top quarter. */
  static const uint32_t bars[] = { 0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
                                   0xff00ff, 0xff0000, 0x0000ff, 0x000000 };

  if (y < 64)
    return bars[(x / 80) % 8];
  return (((x * 7) & 0xff) << 16) | (((y * 13) & 0xff) << 8) | (((x + y) * 3) & 0xff);
}

VrMachine *
fake_machine_new (const char *name)
{
  VrMachine *machine = g_new0 (VrMachine, 1);

  machine->config.name = g_strdup (name);
  machine->inputs = g_array_new (FALSE, TRUE, sizeof (FakeInput));
  machine->absolute = true;
  return machine;
}

void
fake_machine_free (VrMachine *machine)
{
  VrDisplay *d = &machine->display;

  if (d->destroy)
    d->destroy (d->user_data);
  g_free (d->pixels);
  g_array_unref (machine->inputs);
  g_free (machine->config.name);
  g_free (machine);
}

VrDisplay *
fake_machine_get_display (VrMachine *machine)
{
  return &machine->display;
}

GArray *
fake_machine_get_inputs (VrMachine *machine)
{
  return machine->inputs;
}

void
fake_machine_set_absolute (VrMachine *machine,
                           bool       absolute)
{
  machine->absolute = absolute;
}

static void
post (VrDisplay            *display,
      VrDisplayUpdateFlags  flags,
      const VrRect         *rect)
{
  VrDisplayUpdate update = {
    .flags = flags,
    .mode = display->mode,
    .rects = rect,
    .n_rects = rect ? 1 : 0,
  };

  if (rect)
    display->damaged_rows += (uint64_t) rect->height;
  display->updates++;
  if (display->listener)
    display->listener (display, &update, display->user_data);
}

void
fake_display_set_mode (VrDisplay *display,
                       unsigned   width,
                       unsigned   height,
                       unsigned   stride)
{
  VrRect all = { 0, 0, (int32_t) width, (int32_t) height };

  if (stride == 0)
    stride = width * 4;
  g_free (display->pixels);
  display->pixels = g_malloc0 ((gsize) stride * height);
  display->mode = (VrDisplayMode) { VR_PIXEL_FORMAT_XRGB8888, width, height, stride };
  for (unsigned y = 0; y < height; y++)
    for (unsigned x = 0; x < width; x++)
      {
        uint32_t p = fake_pattern_pixel (x, y);
        uint8_t *px = display->pixels + (gsize) y * stride + x * 4;

        px[0] = p & 0xff;
        px[1] = (p >> 8) & 0xff;
        px[2] = (p >> 16) & 0xff;
        px[3] = 0;   /* X: the UI must not take it for alpha */
      }
  post (display, VR_DISPLAY_UPDATE_MODE | VR_DISPLAY_UPDATE_DAMAGE, &all);
}

uint8_t *
fake_display_get_pixels (VrDisplay *display)
{
  return display->pixels;
}

void
fake_display_damage (VrDisplay *display,
                     int        x,
                     int        y,
                     int        width,
                     int        height)
{
  VrRect rect = { x, y, width, height };

  post (display, VR_DISPLAY_UPDATE_DAMAGE, &rect);
}

void
fake_display_fill (VrDisplay *display,
                   int        x,
                   int        y,
                   int        width,
                   int        height,
                   uint32_t   rgb)
{
  for (int j = y; j < y + height; j++)
    for (int i = x; i < x + width; i++)
      {
        uint8_t *px = display->pixels + (gsize) j * display->mode.stride + i * 4;

        px[0] = rgb & 0xff;
        px[1] = (rgb >> 8) & 0xff;
        px[2] = (rgb >> 16) & 0xff;
        px[3] = 0;
      }
  fake_display_damage (display, x, y, width, height);
}

/* vr-display.h */

void
vr_display_set_listener (VrDisplay         *display,
                         GMainContext      *context,
                         unsigned           refresh_hz,
                         VrDisplayListener  listener,
                         gpointer           user_data,
                         GDestroyNotify     destroy)
{
  if (display->destroy)
    display->destroy (display->user_data);
  display->listener = listener;
  display->user_data = user_data;
  display->destroy = destroy;
  if (listener && display->mode.format != VR_PIXEL_FORMAT_NONE)
    {
      VrRect all = { 0, 0, (int32_t) display->mode.width, (int32_t) display->mode.height };

      post (display, VR_DISPLAY_UPDATE_MODE | VR_DISPLAY_UPDATE_DAMAGE, &all);
    }
}

VrDisplayMode
vr_display_get_mode (VrDisplay *display)
{
  return display->mode;
}

const uint8_t *
vr_display_map (VrDisplay     *display,
                VrDisplayMode *mode)
{
  *mode = display->mode;
  return display->pixels;
}

void
vr_display_unmap (VrDisplay *display)
{
}

GBytes *
vr_display_snapshot (VrDisplay     *display,
                     VrDisplayMode *mode)
{
  VrDisplayMode m = display->mode;
  guint8 *copy;

  if (display->pixels == NULL)
    return NULL;
  copy = g_malloc ((gsize) m.width * 4 * m.height);
  for (unsigned y = 0; y < m.height; y++)
    memcpy (copy + (gsize) y * m.width * 4, display->pixels + (gsize) y * m.stride,
            (gsize) m.width * 4);
  m.stride = m.width * 4;
  *mode = m;
  return g_bytes_new_take (copy, (gsize) m.width * 4 * m.height);
}

bool
vr_display_get_cursor (VrDisplay  *display,
                       GBytes    **pixels,
                       uint32_t   *width,
                       uint32_t   *height,
                       int32_t    *hot_x,
                       int32_t    *hot_y)
{
  return false;
}

void
vr_display_get_cursor_position (VrDisplay *display,
                                int32_t   *x,
                                int32_t   *y)
{
  *x = *y = 0;
}

void
vr_display_set_preferred_size (VrDisplay *display,
                               uint32_t   width,
                               uint32_t   height)
{
  display->preferred_width = width;
  display->preferred_height = height;
}

uint64_t
vr_display_get_damaged_rows (VrDisplay *display)
{
  return display->damaged_rows;
}

uint64_t
vr_display_get_updates (VrDisplay *display)
{
  return display->updates;
}

/* vr-machine.h: the parts the widgets use */

static void
record (VrMachine *machine,
        FakeInput  input)
{
  g_array_append_val (machine->inputs, input);
}

void
vr_machine_input_key (VrMachine *machine,
                      unsigned   code,
                      bool       pressed)
{
  record (machine, (FakeInput) { 'k', code, pressed, 0, 0 });
}

void
vr_machine_input_abs (VrMachine *machine,
                      unsigned   x,
                      unsigned   y)
{
  record (machine, (FakeInput) { 'a', 0, 0, (int) x, (int) y });
}

void
vr_machine_input_rel (VrMachine *machine,
                      int        dx,
                      int        dy)
{
  record (machine, (FakeInput) { 'r', 0, 0, dx, dy });
}

void
vr_machine_input_button (VrMachine *machine,
                         unsigned   code,
                         bool       pressed)
{
  record (machine, (FakeInput) { 'b', code, pressed, 0, 0 });
}

void
vr_machine_input_wheel (VrMachine *machine,
                        int        delta)
{
  record (machine, (FakeInput) { 'w', 0, delta, 0, 0 });
}

void
vr_machine_input_get_routing (VrMachine      *machine,
                              VrInputRouting *routing)
{
  routing->keyboard = VR_INPUT_ROUTE_VIRTIO;
  routing->pointer = machine->absolute ? VR_INPUT_ROUTE_VIRTIO : VR_INPUT_ROUTE_PS2;
  routing->pointer_absolute = machine->absolute;
}

VrDisplay *
vr_machine_get_display (VrMachine *machine)
{
  return &machine->display;
}

const VrMachineConfig *
vr_machine_get_config (VrMachine *machine)
{
  return &machine->config;
}
