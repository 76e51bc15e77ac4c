/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The machine's screen, as the UI sees it (plain C + GLib; never GTK).
 *
 * One VrDisplay per machine that has a display device (config.display). Its source is the
 * device the guest is using: the bochs-display-compatible PCI card (a linear framebuffer in
 * its own KVM memory slot with dirty logging) or virtio-gpu's scanout once the guest's
 * virtio-gpu driver has set one. The UI never needs to know which.
 *
 * Updates: while a listener is set, the engine looks for changes on the machine's I/O
 * thread, once per refresh period (vr_display_set_listener's @refresh_hz, 60 by default)
 * while the guest is idle and eight times as often while it draws:
 *  - bochs-display: KVM_GET_DIRTY_LOG on the framebuffer slot; dirty pages become damaged
 *    rectangles (whole rows of the current mode: a page covers stride-sized rows);
 *  - virtio-gpu: the RESOURCE_FLUSH rectangles.
 * When nothing changed, nothing is posted and nothing is copied: an idle guest costs one
 * ioctl per period. Changes are posted to the listener on the GMainContext given to
 * vr_display_set_listener(), coalesced, one callback in flight at a time, when a picture is
 * complete: the guest paused drawing, or started over on rows it had drawn, or flushed
 * (virtio-gpu); a guest that draws without pause is still shown every 200 ms. Each callback
 * makes the UI draw a frame, so a guest redrawing its whole screen costs about one UI frame
 * per picture, not one per period (see vr-display.c).
 *
 * Pixels: vr_display_map() gives read access to the current scanout without a copy; the
 * pointer stays valid until the listener sees a mode change (VR_DISPLAY_UPDATE_MODE) or the
 * mapping is released. Reading while the guest writes gives a frame that may be torn, as on
 * real hardware; the damage that follows repairs it.
 *
 * Thread-safety: every function may be called from any thread; the listener runs on its
 * context.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct _VrDisplay VrDisplay;

typedef enum
{
  VR_PIXEL_FORMAT_NONE,      /* no mode set: the guest has not turned the display on */
  VR_PIXEL_FORMAT_XRGB8888,  /* 32 bpp, bytes B G R X in memory (DRM_FORMAT_XRGB8888) */
  VR_PIXEL_FORMAT_RGB565,    /* 16 bpp little-endian */
  VR_PIXEL_FORMAT_RGB888,    /* 24 bpp, bytes B G R in memory */
} VrPixelFormat;

typedef struct
{
  VrPixelFormat format;
  uint32_t      width;
  uint32_t      height;
  uint32_t      stride;      /* bytes per row */
} VrDisplayMode;

typedef struct
{
  int32_t x;
  int32_t y;
  int32_t width;
  int32_t height;
} VrRect;

typedef enum
{
  VR_DISPLAY_UPDATE_MODE   = 1 << 0,  /* new mode: re-map, redraw everything */
  VR_DISPLAY_UPDATE_DAMAGE = 1 << 1,  /* rects changed */
  VR_DISPLAY_UPDATE_CURSOR = 1 << 2,  /* cursor image or hotspot changed */
  VR_DISPLAY_UPDATE_CURSOR_POSITION = 1 << 3,
} VrDisplayUpdateFlags;

typedef struct
{
  VrDisplayUpdateFlags  flags;
  VrDisplayMode         mode;       /* the current mode */
  const VrRect         *rects;      /* damage (VR_DISPLAY_UPDATE_DAMAGE), in mode pixels */
  unsigned              n_rects;
} VrDisplayUpdate;

typedef void (*VrDisplayListener) (VrDisplay             *display,
                                   const VrDisplayUpdate *update,
                                   gpointer               user_data);

/* Starts change detection and delivery on @context (NULL: the thread-default context).
 * @refresh_hz 0 means 60. The first callback carries MODE (and full damage). Replaces an
 * earlier listener; @listener NULL stops detection (the guest then costs nothing at all). */
void        vr_display_set_listener  (VrDisplay         *display,
                                      GMainContext      *context,
                                      unsigned           refresh_hz,
                                      VrDisplayListener  listener,
                                      gpointer           user_data,
                                      GDestroyNotify     destroy);

VrDisplayMode vr_display_get_mode    (VrDisplay         *display);

/* Read access to the current scanout: *mode gets its mode; returns NULL when there is none.
 * Release with vr_display_unmap() (cheap; pairs may nest). */
const uint8_t *vr_display_map        (VrDisplay         *display,
                                      VrDisplayMode     *mode);
void        vr_display_unmap         (VrDisplay         *display);

/* A copy of the whole current frame as XRGB8888 (stride = 4 * width), e.g. for screenshots
 * and thumbnails; NULL without a mode. */
GBytes     *vr_display_snapshot      (VrDisplay         *display,
                                      VrDisplayMode     *mode);

/* The guest's cursor (virtio-gpu cursor queue): ARGB8888 premultiplied, 64x64 at most;
 * returns false when the guest shows no cursor of its own. */
bool        vr_display_get_cursor    (VrDisplay         *display,
                                      GBytes           **pixels,
                                      uint32_t          *width,
                                      uint32_t          *height,
                                      int32_t           *hot_x,
                                      int32_t           *hot_y);
void        vr_display_get_cursor_position (VrDisplay   *display,
                                            int32_t     *x,
                                            int32_t     *y);

/* The host window's size changed: virtio-gpu reports it to the guest (display info and a
 * config-change event) so a guest desktop can follow; the bochs card ignores it. */
void        vr_display_set_preferred_size (VrDisplay    *display,
                                           uint32_t      width,
                                           uint32_t      height);

/* Statistics for tests and benchmarks: rows reported damaged and listener calls so far. */
uint64_t    vr_display_get_damaged_rows (VrDisplay      *display);
uint64_t    vr_display_get_updates      (VrDisplay      *display);

G_END_DECLS
