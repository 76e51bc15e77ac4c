/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * VireoDisplayView: the drawing half of VireoDisplay (private to src/ui). It listens to a
 * VrDisplay, keeps the guest picture in a GL texture (damaged rows only, drawn by GSK as a
 * GdkGLTexture) or, when the window does not render with GL, in a GdkMemoryTexture, and draws
 * it letterboxed (fit) or 1:1.
 */

#include <gtk/gtk.h>

#include "vr-display.h"
#include "vireo-display.h"

G_BEGIN_DECLS

#define VIREO_TYPE_DISPLAY_VIEW (vireo_display_view_get_type ())

G_DECLARE_FINAL_TYPE (VireoDisplayView, vireo_display_view, VIREO, DISPLAY_VIEW, GtkWidget)

GtkWidget      *vireo_display_view_new                (void);
void            vireo_display_view_set_source         (VireoDisplayView  *self,
                                                       VrDisplay         *display);
VrDisplay      *vireo_display_view_get_source         (VireoDisplayView  *self);
void            vireo_display_view_set_scale_mode     (VireoDisplayView  *self,
                                                       VireoScaleMode     mode);
VireoScaleMode  vireo_display_view_get_scale_mode     (VireoDisplayView  *self);
void            vireo_display_view_set_force_fallback (VireoDisplayView  *self,
                                                       gboolean           force);
gboolean        vireo_display_view_get_force_fallback (VireoDisplayView  *self);
gboolean        vireo_display_view_get_uses_gl        (VireoDisplayView  *self);
guint64         vireo_display_view_get_uploaded_rows  (VireoDisplayView  *self);
VrDisplayMode   vireo_display_view_get_mode           (VireoDisplayView  *self);
gboolean        vireo_display_view_get_picture_area   (VireoDisplayView  *self,
                                                       graphene_rect_t   *area);
/* Widget coordinates → guest pixels (not clamped). FALSE without a mode. */
gboolean        vireo_display_view_to_guest           (VireoDisplayView  *self,
                                                       double             x,
                                                       double             y,
                                                       double            *guest_x,
                                                       double            *guest_y);

G_END_DECLS
