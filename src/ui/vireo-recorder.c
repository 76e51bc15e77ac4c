/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Screen recording. The pipeline:
 *
 *   appsrc (BGRx, variable rate, our timestamps) ! videorate ! framerate=15/1
 *     ! videoscale add-borders ! capsfilter (the first frame's size) ! videoconvert
 *     ! vp8enc (realtime) ! webmmux ! filesink
 *
 * Frames come in when the guest draws (and, from VireoDisplay, once a second while it is
 * idle); videorate turns that into a constant 15 frames a second. A size change in the
 * middle of a recording is scaled into the first size. Stopping sends EOS and waits for it
 * to reach the sink, so that webmmux writes its cues and the file is complete.
 */

#define G_LOG_DOMAIN "vireo-display"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <string.h>

#include "vireo-recorder.h"

struct _VireoRecorder
{
  GObject     parent_instance;

  GstElement *pipeline;
  GstElement *src;
  GstElement *size_filter;
  guint       width;
  guint       height;
  gint64      start_us;
  gint64      last_us;
  guint64     frames;
  GBytes     *last_pixels;
  guint       last_width;
  guint       last_height;
  guint       last_stride;
  gboolean    running;
};

G_DEFINE_FINAL_TYPE (VireoRecorder, vireo_recorder, G_TYPE_OBJECT)

static void
vireo_recorder_dispose (GObject *object)
{
  VireoRecorder *self = VIREO_RECORDER (object);

  if (self->running)
    vireo_recorder_stop (self, NULL);
  if (self->pipeline)
    gst_element_set_state (self->pipeline, GST_STATE_NULL);
  gst_clear_object (&self->src);
  gst_clear_object (&self->size_filter);
  gst_clear_object (&self->pipeline);
  g_clear_pointer (&self->last_pixels, g_bytes_unref);

  G_OBJECT_CLASS (vireo_recorder_parent_class)->dispose (object);
}

static void
vireo_recorder_class_init (VireoRecorderClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = vireo_recorder_dispose;
}

static void
vireo_recorder_init (VireoRecorder *self)
{
}

VireoRecorder *
vireo_recorder_new (GFile   *file,
                    GError **error)
{
  g_autoptr (VireoRecorder) self = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *description = NULL;
  GstElement *sink;

  g_return_val_if_fail (G_IS_FILE (file), NULL);

  path = g_file_get_path (file);
  if (path == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Recordings can only be saved to local files"));
      return NULL;
    }
  if (!gst_init_check (NULL, NULL, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Cannot start GStreamer: %s"), local_error->message);
      return NULL;
    }

  description = g_strdup_printf (
    "appsrc name=src format=time is-live=false max-bytes=67108864 leaky-type=downstream "
    "! videorate ! video/x-raw,framerate=%d/1 "
    "! videoscale add-borders=true ! capsfilter name=size "
    "! videoconvert ! vp8enc deadline=1 cpu-used=8 threads=2 target-bitrate=2000000 "
    "! webmmux ! filesink name=sink",
    VIREO_RECORDER_FPS);

  self = g_object_new (VIREO_TYPE_RECORDER, NULL);
  self->pipeline = gst_parse_launch (description, &local_error);
  if (self->pipeline == NULL || local_error != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Cannot record the screen: %s (are GStreamer’s “good” plugins "
                     "installed?)"),
                   local_error ? local_error->message : "?");
      return NULL;
    }
  gst_object_ref_sink (self->pipeline);
  self->src = gst_bin_get_by_name (GST_BIN (self->pipeline), "src");
  self->size_filter = gst_bin_get_by_name (GST_BIN (self->pipeline), "size");
  sink = gst_bin_get_by_name (GST_BIN (self->pipeline), "sink");
  g_object_set (sink, "location", path, NULL);
  gst_object_unref (sink);

  if (gst_element_set_state (self->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Cannot start recording to “%s”"), path);
      return NULL;
    }
  self->running = TRUE;
  return g_steal_pointer (&self);
}

static void
push_buffer (VireoRecorder *self,
             GBytes        *pixels,
             guint          width,
             guint          height,
             guint          stride,
             gint64         time_us)
{
  GstBuffer *buffer;

  if (self->width == 0)
    {
      g_autoptr (GstCaps) size = gst_caps_new_simple ("video/x-raw",
                                                      "width", G_TYPE_INT, (int) width,
                                                      "height", G_TYPE_INT, (int) height,
                                                      "pixel-aspect-ratio", GST_TYPE_FRACTION,
                                                      1, 1, NULL);

      g_object_set (self->size_filter, "caps", size, NULL);
      self->width = width;
      self->height = height;
      self->start_us = time_us;
    }
  if (width != self->last_width || height != self->last_height || stride != self->last_stride)
    {
      g_autoptr (GstCaps) caps = NULL;

      caps = gst_caps_new_simple ("video/x-raw",
                                  "format", G_TYPE_STRING, "BGRx",
                                  "width", G_TYPE_INT, (int) width,
                                  "height", G_TYPE_INT, (int) height,
                                  "framerate", GST_TYPE_FRACTION, 0, 1,
                                  "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);
      gst_app_src_set_caps (GST_APP_SRC (self->src), caps);
      self->last_width = width;
      self->last_height = height;
      self->last_stride = stride;
    }

  if (time_us < self->last_us)
    time_us = self->last_us;
  buffer = gst_buffer_new_wrapped_bytes (pixels);  /* takes its own reference */
  GST_BUFFER_PTS (buffer) = (GstClockTime) (time_us - self->start_us) * GST_USECOND;
  GST_BUFFER_DURATION (buffer) = GST_CLOCK_TIME_NONE;
  gst_app_src_push_buffer (GST_APP_SRC (self->src), buffer);
  self->last_us = time_us;
  self->frames++;
}

void
vireo_recorder_push (VireoRecorder *self,
                     GBytes        *pixels,
                     guint          width,
                     guint          height,
                     guint          stride,
                     gint64         time_us)
{
  g_return_if_fail (VIREO_IS_RECORDER (self));
  g_return_if_fail (pixels != NULL);

  if (!self->running || width == 0 || height == 0 || stride < width * 4
      || g_bytes_get_size (pixels) < (gsize) stride * height)
    return;

  /* Frames are packed (stride = 4 * width) for GStreamer's default video layout. */
  if (stride != width * 4)
    {
      gsize size = (gsize) width * 4 * height;
      guint8 *packed = g_malloc (size);
      const guint8 *src = g_bytes_get_data (pixels, NULL);

      for (guint y = 0; y < height; y++)
        memcpy (packed + (gsize) y * width * 4, src + (gsize) y * stride, (gsize) width * 4);
      g_clear_pointer (&self->last_pixels, g_bytes_unref);
      self->last_pixels = g_bytes_new_take (packed, size);
    }
  else if (self->last_pixels != pixels)
    {
      g_clear_pointer (&self->last_pixels, g_bytes_unref);
      self->last_pixels = g_bytes_ref (pixels);
    }
  push_buffer (self, self->last_pixels, width, height, width * 4, time_us);
}

gboolean
vireo_recorder_stop (VireoRecorder  *self,
                     GError        **error)
{
  g_autoptr (GstBus) bus = NULL;
  g_autoptr (GstMessage) message = NULL;
  gboolean ok = TRUE;

  g_return_val_if_fail (VIREO_IS_RECORDER (self), FALSE);

  if (!self->running)
    return TRUE;
  self->running = FALSE;

  /* The last picture lasts until now. */
  if (self->last_pixels != NULL)
    push_buffer (self, self->last_pixels, self->last_width, self->last_height,
                 self->last_width * 4, g_get_monotonic_time ());

  gst_app_src_end_of_stream (GST_APP_SRC (self->src));
  bus = gst_element_get_bus (self->pipeline);
  message = gst_bus_timed_pop_filtered (bus, 20 * GST_SECOND,
                                        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (message == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   _("The recording did not finish in time; the file may be incomplete"));
      ok = FALSE;
    }
  else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR)
    {
      g_autoptr (GError) gst_error = NULL;

      gst_message_parse_error (message, &gst_error, NULL);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Recording failed: %s"),
                   gst_error ? gst_error->message : "?");
      ok = FALSE;
    }
  gst_element_set_state (self->pipeline, GST_STATE_NULL);
  return ok;
}

gboolean
vireo_recorder_get_running (VireoRecorder *self)
{
  g_return_val_if_fail (VIREO_IS_RECORDER (self), FALSE);
  return self->running;
}

guint64
vireo_recorder_get_frames (VireoRecorder *self)
{
  g_return_val_if_fail (VIREO_IS_RECORDER (self), 0);
  return self->frames;
}

gint64
vireo_recorder_get_duration (VireoRecorder *self)
{
  g_return_val_if_fail (VIREO_IS_RECORDER (self), 0);
  return self->width ? self->last_us - self->start_us : 0;
}
