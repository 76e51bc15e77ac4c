/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * Keeps every machine's thumbnail.png current: every few seconds while it runs (from
 * vr_display_snapshot()), and once more with its last frame just before it stops. Scaling and
 * PNG encoding run in a thread; the file is written atomically by
 * vireo_machine_save_thumbnail(), whose notify::thumbnail the list follows.
 */

#define VIREO_THUMBNAIL_INTERVAL_S 4
#define VIREO_THUMBNAIL_MAX_WIDTH  480

#define VIREO_TYPE_THUMBNAILER (vireo_thumbnailer_get_type ())
G_DECLARE_FINAL_TYPE (VireoThumbnailer, vireo_thumbnailer, VIREO, THUMBNAILER, GObject)

/* clang-format off */
VireoThumbnailer *vireo_thumbnailer_new      (VireoLibrary   *library);
/* Takes a thumbnail of @machine now (if it runs and shows something). */
void              vireo_thumbnailer_refresh  (VireoThumbnailer *self,
                                              VireoMachine     *machine);
/* Scales an XRGB8888 frame down to at most @max_width pixels wide and encodes it as PNG. */
GBytes           *vireo_thumbnail_encode     (GBytes         *xrgb,
                                              guint           width,
                                              guint           height,
                                              guint           max_width,
                                              GError        **error);
/* clang-format on */

G_END_DECLS
