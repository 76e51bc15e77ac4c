/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The display devices' side of VrDisplay (see vr-display.h for the UI's side).
 *
 * A display device registers itself as a source with a priority; the display shows the
 * active source (one with a mode) of highest priority: virtio-gpu's scanout once the guest's
 * driver has set one, else the bochs card's framebuffer. A source reports its scanout with
 * vr_display_source_set_scanout() whenever it changes, and damage with
 * vr_display_source_damage() (or from its poll hook, called once per refresh period on the
 * I/O thread while a listener is set and the source is the active one).
 *
 * Locking: the display's lock is a leaf. The hooks are called without it, so a source may
 * call every function here from them, and from any thread.
 */

#include "vr-display.h"

G_BEGIN_DECLS

#define VR_DISPLAY_MAX_WIDTH   4096
#define VR_DISPLAY_MAX_HEIGHT  4096
#define VR_DISPLAY_DEFAULT_WIDTH  1024
#define VR_DISPLAY_DEFAULT_HEIGHT 768
#define VR_EDID_SIZE           128

typedef enum
{
  VR_DISPLAY_SOURCE_BOCHS      = 0,   /* lowest priority */
  VR_DISPLAY_SOURCE_VIRTIO_GPU = 1,
  VR_DISPLAY_N_SOURCES
} VrDisplaySourceId;

typedef struct
{
  /* I/O thread, once per refresh period while a listener is set and the source is active. */
  void (*poll)           (gpointer  opaque,
                          VrDisplay *display);
  /* vr_display_set_preferred_size() was called (any thread). */
  void (*preferred_size) (gpointer  opaque,
                          uint32_t  width,
                          uint32_t  height);
} VrDisplaySourceOps;

/* @io_context: where change detection runs (the machine's I/O thread). */
VrDisplay *vr_display_new                (GMainContext             *io_context);
/* Stops detection and drops the machine's reference; the UI's pending callbacks are
 * dropped. The sources must be gone (or never touch the display again). */
void       vr_display_free               (VrDisplay                *display);

void       vr_display_add_source         (VrDisplay                *display,
                                          VrDisplaySourceId         id,
                                          const VrDisplaySourceOps *ops,
                                          gpointer                  opaque);
void       vr_display_remove_source      (VrDisplay                *display,
                                          VrDisplaySourceId         id);
/* The source's scanout: @mode->format NONE (or @mode NULL) when it shows nothing. @pixels
 * must stay valid until the next call; @keepalive (may be NULL), when given, is referenced
 * for as long as the display or a vr_display_map() user needs the pixels. */
void       vr_display_source_set_scanout (VrDisplay                *display,
                                          VrDisplaySourceId         id,
                                          const VrDisplayMode      *mode,
                                          const uint8_t            *pixels,
                                          GBytes                   *keepalive);
/* Damage in the source's mode pixels (clipped; ignored when the source is not shown). */
void       vr_display_source_damage      (VrDisplay                *display,
                                          VrDisplaySourceId         id,
                                          const VrRect             *rects,
                                          unsigned                  n_rects);
/* Damage as whole rows [first, first + count) of the source's mode. */
void       vr_display_source_damage_rows (VrDisplay                *display,
                                          VrDisplaySourceId         id,
                                          uint32_t                  first,
                                          uint32_t                  count);
/* The guest's cursor image (ARGB8888, @width x @height ≤ 64x64), or @pixels NULL: none. */
void       vr_display_source_set_cursor  (VrDisplay                *display,
                                          GBytes                   *pixels,
                                          uint32_t                  width,
                                          uint32_t                  height,
                                          int32_t                   hot_x,
                                          int32_t                   hot_y);
void       vr_display_source_move_cursor (VrDisplay                *display,
                                          int32_t                   x,
                                          int32_t                   y);
void       vr_display_get_preferred_size (VrDisplay                *display,
                                          uint32_t                 *width,
                                          uint32_t                 *height);

/* Bytes per pixel of @format (0 for NONE). */
unsigned   vr_pixel_format_bpp           (VrPixelFormat             format);

/* A 128-byte EDID 1.4 block naming @width x @height (clamped to 64..4095) at 60 Hz as the
 * preferred mode, with the usual VESA modes besides. */
void       vr_display_make_edid          (uint32_t                  width,
                                          uint32_t                  height,
                                          uint8_t                   edid[VR_EDID_SIZE]);

G_END_DECLS
