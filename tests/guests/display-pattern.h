/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The picture the `display` guest draws (display.c), shared with the host tests that check
 * it pixel for pixel (tests/display/test-display.c, the UI tests). Plain C, no libc: the
 * guest is freestanding.
 *
 * For a mode of W x H pixels (XRGB8888, 0x00RRGGBB) and a counter value C:
 *
 *   rows [0, H/2):  eight vertical colour bars, bar i = x * 8 / W, colours in order
 *                   white ffffff, yellow ffff00, cyan 00ffff, green 00ff00,
 *                   magenta ff00ff, red ff0000, blue 0000ff, black 000000
 *   rows [H/2, H):  a checkerboard of 16x16 squares: ((x / 16 + y / 16) odd) c0c0c0,
 *                   else 404040
 *   the counter:    8 cells of 16x16, cell i (0..7) at x in [32 + 16 i, 48 + 16 i),
 *                   y in [H/2 + 32, H/2 + 48): bit 7 - i of C set ff8000 (orange),
 *                   clear 000080 (navy)
 *
 * The guest draws 640x480 with C = 1, then 1024x768 with C = 2, and later changes C to 3:
 * only cell 7 changes, the 16x16 square at x 144..159, y H/2 + 32 .. H/2 + 47 (at 1024x768:
 * rows 416..431; with a 4096-byte stride, exactly 16 pages).
 */
#pragma once

#include <stdint.h>

#define DISPLAY_PATTERN_CELL       16
#define DISPLAY_PATTERN_COUNTER_X  32
#define DISPLAY_PATTERN_COUNTER_DY 32    /* below H/2 */
#define DISPLAY_PATTERN_BITS       8

static inline uint32_t
display_pattern_bar (uint32_t x, uint32_t w)
{
  static const uint32_t bars[8] = {
    0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
  };

  return bars[(x * 8 / w) & 7];
}

static inline uint32_t
display_pattern_checker (uint32_t x, uint32_t y)
{
  return ((x / 16 + y / 16) & 1) ? 0xc0c0c0 : 0x404040;
}

/* The counter cell covering (x, y), or -1. */
static inline int
display_pattern_cell (uint32_t x, uint32_t y, uint32_t h)
{
  uint32_t y0 = h / 2 + DISPLAY_PATTERN_COUNTER_DY;

  if (y < y0 || y >= y0 + DISPLAY_PATTERN_CELL || x < DISPLAY_PATTERN_COUNTER_X
      || x >= DISPLAY_PATTERN_COUNTER_X + DISPLAY_PATTERN_BITS * DISPLAY_PATTERN_CELL)
    return -1;
  return (int) ((x - DISPLAY_PATTERN_COUNTER_X) / DISPLAY_PATTERN_CELL);
}

static inline uint32_t
display_pattern_cell_colour (int cell, uint32_t counter)
{
  return (counter >> (DISPLAY_PATTERN_BITS - 1 - cell)) & 1 ? 0xff8000 : 0x000080;
}

static inline uint32_t
display_pattern_pixel (uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t counter)
{
  int cell = display_pattern_cell (x, y, h);

  if (cell >= 0)
    return display_pattern_cell_colour (cell, counter);
  if (y < h / 2)
    return display_pattern_bar (x, w);
  return display_pattern_checker (x, y);
}
