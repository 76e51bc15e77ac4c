/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * A stand-in for the engine's display and input API (vr-display.h, vr_machine_input_*), so
 * that VireoDisplay can be tested with exact, scripted frames and damage and with every
 * input call recorded. Test programs that use it do not link the engine.
 */

#include <glib.h>

#include "vr-display.h"
#include "vr-machine.h"

typedef struct
{
  char     type;     /* 'k' key, 'a' abs, 'r' rel, 'b' button, 'w' wheel */
  unsigned code;     /* key or button code */
  int      value;    /* pressed, or wheel delta */
  int      x;
  int      y;
} FakeInput;

VrMachine      *fake_machine_new             (const char *name);
void            fake_machine_free            (VrMachine  *machine);
VrDisplay      *fake_machine_get_display     (VrMachine  *machine);
/* The recorded input calls (FakeInput); clear with g_array_set_size (…, 0). */
GArray         *fake_machine_get_inputs      (VrMachine  *machine);
void            fake_machine_set_absolute    (VrMachine  *machine,
                                              bool        absolute);

/* A new XRGB8888 mode with @stride (0: 4 * width) filled by the test pattern; the listener
 * sees MODE and full damage. */
void            fake_display_set_mode        (VrDisplay  *display,
                                              unsigned    width,
                                              unsigned    height,
                                              unsigned    stride);
uint8_t        *fake_display_get_pixels      (VrDisplay  *display);
/* Reports @rect as damaged to the listener (now, on the caller's thread). */
void            fake_display_damage          (VrDisplay  *display,
                                              int         x,
                                              int         y,
                                              int         width,
                                              int         height);
/* Fills a rectangle with a colour (0xRRGGBB) and reports it damaged. */
void            fake_display_fill            (VrDisplay  *display,
                                              int         x,
                                              int         y,
                                              int         width,
                                              int         height,
                                              uint32_t    rgb);
/* The pattern's pixel (0xRRGGBB) at x, y. */
uint32_t        fake_pattern_pixel           (unsigned    x,
                                              unsigned    y);
