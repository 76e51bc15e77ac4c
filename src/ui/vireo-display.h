/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vr-display.h"
#include "vr-machine.h"

G_BEGIN_DECLS

typedef enum
{
  VIREO_SCALE_MODE_FIT,       /* scale to the widget, keeping the aspect ratio (letterbox) */
  VIREO_SCALE_MODE_ORIGINAL,  /* one guest pixel per device pixel; put it in a scrolled window */
} VireoScaleMode;

typedef enum
{
  VIREO_POINTER_MODE_AUTO,      /* absolute when the guest drives a tablet, else relative */
  VIREO_POINTER_MODE_ABSOLUTE,  /* the tablet: widget position → 0..VR_INPUT_ABS_MAX */
  VIREO_POINTER_MODE_RELATIVE,  /* a mouse: motion deltas, pointer hidden while captured */
} VireoPointerMode;

#define VIREO_TYPE_SCALE_MODE   (vireo_scale_mode_get_type ())
#define VIREO_TYPE_POINTER_MODE (vireo_pointer_mode_get_type ())
#define VIREO_TYPE_DISPLAY      (vireo_display_get_type ())

GType vireo_scale_mode_get_type   (void) G_GNUC_CONST;
GType vireo_pointer_mode_get_type (void) G_GNUC_CONST;

G_DECLARE_FINAL_TYPE (VireoDisplay, vireo_display, VIREO, DISPLAY, GtkWidget)

GtkWidget      *vireo_display_new                  (void);

/* The machine whose screen is shown and which gets the keyboard and pointer (not owned: it
 * must outlive the widget or be unset first). Its VrDisplay comes from
 * vr_machine_get_display(). */
void            vireo_display_set_machine          (VireoDisplay         *self,
                                                    VrMachine            *machine);
VrMachine      *vireo_display_get_machine          (VireoDisplay         *self);
/* Shows @display without a machine (no input), e.g. for tests and thumbnails. */
void            vireo_display_set_source           (VireoDisplay         *self,
                                                    VrDisplay            *display);
VrDisplay      *vireo_display_get_source           (VireoDisplay         *self);

void            vireo_display_set_scale_mode       (VireoDisplay         *self,
                                                    VireoScaleMode        mode);
VireoScaleMode  vireo_display_get_scale_mode       (VireoDisplay         *self);
void            vireo_display_set_pointer_mode     (VireoDisplay         *self,
                                                    VireoPointerMode      mode);
VireoPointerMode vireo_display_get_pointer_mode    (VireoDisplay         *self);
/* Whether pointer events are relative right now (pointer-mode, or AUTO resolved). */
gboolean        vireo_display_get_relative_pointer (VireoDisplay         *self);

/* Draw through GdkMemoryTexture even when GL works (tests; set before realize). */
void            vireo_display_set_force_fallback  (VireoDisplay         *self,
                                                    gboolean              force);
gboolean        vireo_display_get_force_fallback  (VireoDisplay         *self);
/* TRUE when frames go through GL (GSK's GL renderer; known once realized). */
gboolean        vireo_display_get_uses_gl          (VireoDisplay         *self);

/* Rows of guest pixels uploaded (GL: glTexSubImage2D; fallback: copied into the texture). */
guint64         vireo_display_get_uploaded_rows    (VireoDisplay         *self);
/* The guest mode shown (0x0 when the guest has not set one). */
void            vireo_display_get_mode_size        (VireoDisplay         *self,
                                                    guint                *width,
                                                    guint                *height);
/* Where the guest picture lies in widget coordinates (the letterbox). FALSE without a mode. */
gboolean        vireo_display_get_picture_area     (VireoDisplay         *self,
                                                    graphene_rect_t      *area);

/* Input capture: every key (Super, Alt+Tab …) goes to the guest, system shortcuts are
 * inhibited and, in relative mode, the pointer is hidden. Ctrl+Alt releases. */
void            vireo_display_capture              (VireoDisplay         *self,
                                                    GdkEvent             *event);
void            vireo_display_release              (VireoDisplay         *self);
gboolean        vireo_display_get_captured         (VireoDisplay         *self);

/* Keys, as Linux evdev codes: presses all in order, then releases in reverse. */
void            vireo_display_send_keys            (VireoDisplay         *self,
                                                    const guint          *codes,
                                                    gsize                 n_codes);
/* A combo name from the Send Key menu: "ctrl-alt-delete", "ctrl-alt-backspace",
 * "ctrl-alt-f1" … "ctrl-alt-f12", "print". FALSE for an unknown name. */
gboolean        vireo_display_send_key_combo       (VireoDisplay         *self,
                                                    const char           *combo);
/* A Send Key menu whose items activate "display.send-key" with a combo name; insert
 * vireo_display_get_action_group() as "display" on a widget above the menu's button. */
GMenuModel     *vireo_display_get_send_key_menu    (void);
GActionGroup   *vireo_display_get_action_group     (VireoDisplay         *self);

/* The current frame as a texture (a copy), or NULL without a mode. */
GdkTexture     *vireo_display_get_frame            (VireoDisplay         *self);
gboolean        vireo_display_screenshot           (VireoDisplay         *self,
                                                    GFile                *file,
                                                    GError              **error);
void            vireo_display_screenshot_async     (VireoDisplay         *self,
                                                    GFile                *file,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean        vireo_display_screenshot_finish    (VireoDisplay         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

/* Screen recording to WebM (VP8). Stop finalises the file (EOS); it also happens when the
 * machine or source is unset and when the widget is disposed. */
gboolean        vireo_display_start_recording      (VireoDisplay         *self,
                                                    GFile                *file,
                                                    GError              **error);
gboolean        vireo_display_stop_recording       (VireoDisplay         *self,
                                                    GError              **error);
gboolean        vireo_display_get_recording        (VireoDisplay         *self);
/* Seconds recorded so far (0 when not recording). */
double          vireo_display_get_recording_time   (VireoDisplay         *self);
/* Frames handed to the encoder since recording started. */
guint64         vireo_display_get_recorded_frames  (VireoDisplay         *self);

/* Linux evdev code for a GDK hardware keycode (see vireo-display.c), 0 when unknown. */
guint           vireo_display_keycode_to_evdev     (guint                 keycode,
                                                    guint                 keyval);

G_END_DECLS
