/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * VireoRecorder: frames in, a WebM file out (appsrc → videorate → videoconvert → videoscale
 * → vp8enc → webmmux → filesink). Plain GObject, no widgets; VireoDisplay feeds it.
 */

#include <gio/gio.h>

G_BEGIN_DECLS

#define VIREO_TYPE_RECORDER (vireo_recorder_get_type ())

G_DECLARE_FINAL_TYPE (VireoRecorder, vireo_recorder, VIREO, RECORDER, GObject)

/* Frames per second in the file (frames are repeated or dropped to that rate). */
#define VIREO_RECORDER_FPS 15

VireoRecorder  *vireo_recorder_new          (GFile          *file,
                                             GError        **error);
/* One frame: XRGB8888 (bytes B G R X), @stride bytes a row, shown from @time_us (monotonic
 * microseconds; the first frame's time is the file's zero). The output keeps the first
 * frame's size; later sizes are scaled into it (aspect kept). */
void            vireo_recorder_push         (VireoRecorder  *self,
                                             GBytes         *pixels,
                                             guint           width,
                                             guint           height,
                                             guint           stride,
                                             gint64          time_us);
/* Ends the stream, waits for the muxer to finish the file (a few seconds at most). */
gboolean        vireo_recorder_stop         (VireoRecorder  *self,
                                             GError        **error);
gboolean        vireo_recorder_get_running  (VireoRecorder  *self);
guint64         vireo_recorder_get_frames   (VireoRecorder  *self);
/* Microseconds from the first frame to the last one pushed. */
gint64          vireo_recorder_get_duration (VireoRecorder  *self);

G_END_DECLS
