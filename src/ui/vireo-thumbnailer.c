/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-thumbnailer"

#include "config.h"

#include "vireo-thumbnailer.h"

#include <string.h>

#include "vr-display.h"

struct _VireoThumbnailer
{
  GObject       parent_instance;

  VireoLibrary *library;
  GPtrArray    *machines;   /* watched VireoMachine (strong) */
  guint         timer_id;
};

G_DEFINE_FINAL_TYPE (VireoThumbnailer, vireo_thumbnailer, G_TYPE_OBJECT)

GBytes *
vireo_thumbnail_encode (GBytes  *xrgb,
                        guint    width,
                        guint    height,
                        guint    max_width,
                        GError **error)
{
  const guint8 *src;
  gsize len;
  guint factor, w, h;
  g_autofree guint8 *dst = NULL;
  g_autoptr(GBytes) rgb = NULL;
  g_autoptr(GdkTexture) texture = NULL;

  g_return_val_if_fail (xrgb != NULL, NULL);
  g_return_val_if_fail (width > 0 && height > 0, NULL);

  src = g_bytes_get_data (xrgb, &len);
  g_return_val_if_fail (len >= (gsize) width * height * 4, NULL);

  /* A box filter by a whole factor: cheap, and smooth enough for text and photos. */
  factor = MAX (1u, (width + max_width - 1) / MAX (max_width, 1u));
  w = MAX (1u, width / factor);
  h = MAX (1u, height / factor);
  dst = g_malloc ((gsize) w * h * 3);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      {
        guint sum[3] = { 0, 0, 0 };

        for (guint dy = 0; dy < factor; dy++)
          {
            const guint8 *p = src + ((gsize) (y * factor + dy) * width + x * factor) * 4;

            for (guint dx = 0; dx < factor; dx++, p += 4)
              {
                /* XRGB8888 is B G R X in memory. */
                sum[0] += p[2];
                sum[1] += p[1];
                sum[2] += p[0];
              }
          }
        for (guint c = 0; c < 3; c++)
          dst[((gsize) y * w + x) * 3 + c] = (guint8) (sum[c] / (factor * factor));
      }

  rgb = g_bytes_new_take (g_steal_pointer (&dst), (gsize) w * h * 3);
  texture = gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8, rgb, (gsize) w * 3);
  return gdk_texture_save_to_png_bytes (texture);
}

typedef struct
{
  GBytes *frame;
  guint   width;
  guint   height;
} EncodeData;

static void
encode_data_free (EncodeData *data)
{
  g_bytes_unref (data->frame);
  g_free (data);
}

static void
encode_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  EncodeData *data = task_data;
  GError *error = NULL;
  GBytes *png;

  png = vireo_thumbnail_encode (data->frame, data->width, data->height,
                                VIREO_THUMBNAIL_MAX_WIDTH, &error);
  if (png == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, png, (GDestroyNotify) g_bytes_unref);
}

static void
encode_done (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  VireoMachine *machine = VIREO_MACHINE (object);
  g_autoptr(GBytes) png = NULL;
  g_autoptr(GError) error = NULL;

  png = g_task_propagate_pointer (G_TASK (result), &error);
  if (png == NULL || !vireo_machine_save_thumbnail (machine, png, &error))
    g_debug ("No thumbnail for %s: %s", vireo_machine_get_uuid (machine),
             error ? error->message : "?");
}

static void
take_thumbnail (VrMachine *vr, VireoMachine *machine)
{
  VrDisplay *display = vr_machine_get_display (vr);
  VrDisplayMode mode;
  GBytes *frame;
  EncodeData *data;
  g_autoptr(GTask) task = NULL;

  if (display == NULL)
    return;
  frame = vr_display_snapshot (display, &mode);
  if (frame == NULL || mode.width == 0 || mode.height == 0)
    {
      g_clear_pointer (&frame, g_bytes_unref);
      return;
    }
  data = g_new0 (EncodeData, 1);
  data->frame = frame;
  data->width = mode.width;
  data->height = mode.height;
  task = g_task_new (machine, NULL, encode_done, NULL);
  g_task_set_source_tag (task, take_thumbnail);
  g_task_set_task_data (task, data, (GDestroyNotify) encode_data_free);
  g_task_run_in_thread (task, encode_thread);
}

void
vireo_thumbnailer_refresh (VireoThumbnailer *self,
                           VireoMachine     *machine)
{
  VrMachine *vr;

  g_return_if_fail (VIREO_IS_THUMBNAILER (self));
  g_return_if_fail (VIREO_IS_MACHINE (machine));

  vr = vireo_machine_get_vr_machine (machine);
  if (vr != NULL && vireo_machine_get_state (machine) != VIREO_MACHINE_STATE_STARTING)
    take_thumbnail (vr, machine);
}

static gboolean
timer_cb (gpointer user_data)
{
  VireoThumbnailer *self = user_data;

  for (guint i = 0; i < self->machines->len; i++)
    {
      VireoMachine *machine = g_ptr_array_index (self->machines, i);

      /* A paused machine's screen does not change. */
      if (vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_RUNNING
          || vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_STOPPING)
        vireo_thumbnailer_refresh (self, machine);
    }
  return G_SOURCE_CONTINUE;
}

static void
vr_machine_changed_cb (VireoMachine *machine,
                       GParamSpec   *pspec,
                       gpointer      user_data)
{
  VrMachine *last = g_object_get_data (G_OBJECT (machine), "vireo-thumbnailer-vr");
  VrMachine *vr = vireo_machine_get_vr_machine (machine);

  /* The engine's machine is about to go: its last frame becomes the thumbnail. */
  if (vr == NULL && last != NULL)
    take_thumbnail (last, machine);
  g_object_set_data (G_OBJECT (machine), "vireo-thumbnailer-vr", vr);
}

static void
items_changed_cb (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  gpointer    user_data)
{
  VireoThumbnailer *self = user_data;
  guint n = g_list_model_get_n_items (model);

  for (guint i = 0; i < self->machines->len; i++)
    g_signal_handlers_disconnect_by_func (g_ptr_array_index (self->machines, i),
                                          vr_machine_changed_cb, self);
  g_ptr_array_set_size (self->machines, 0);
  for (guint i = 0; i < n; i++)
    {
      VireoMachine *machine = g_list_model_get_item (model, i);

      g_object_set_data (G_OBJECT (machine), "vireo-thumbnailer-vr",
                         vireo_machine_get_vr_machine (machine));
      g_signal_connect (machine, "notify::vr-machine", G_CALLBACK (vr_machine_changed_cb),
                        self);
      g_ptr_array_add (self->machines, machine);
    }
}

static void
vireo_thumbnailer_dispose (GObject *object)
{
  VireoThumbnailer *self = VIREO_THUMBNAILER (object);

  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (self->machines != NULL)
    for (guint i = 0; i < self->machines->len; i++)
      g_signal_handlers_disconnect_by_func (g_ptr_array_index (self->machines, i),
                                            vr_machine_changed_cb, self);
  g_clear_pointer (&self->machines, g_ptr_array_unref);
  if (self->library != NULL)
    g_signal_handlers_disconnect_by_func (self->library, items_changed_cb, self);
  g_clear_object (&self->library);

  G_OBJECT_CLASS (vireo_thumbnailer_parent_class)->dispose (object);
}

static void
vireo_thumbnailer_class_init (VireoThumbnailerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = vireo_thumbnailer_dispose;
}

static void
vireo_thumbnailer_init (VireoThumbnailer *self)
{
  self->machines = g_ptr_array_new_with_free_func (g_object_unref);
}

VireoThumbnailer *
vireo_thumbnailer_new (VireoLibrary *library)
{
  VireoThumbnailer *self;

  g_return_val_if_fail (VIREO_IS_LIBRARY (library), NULL);

  self = g_object_new (VIREO_TYPE_THUMBNAILER, NULL);
  self->library = g_object_ref (library);
  g_signal_connect (library, "items-changed", G_CALLBACK (items_changed_cb), self);
  items_changed_cb (G_LIST_MODEL (library), 0, 0, 0, self);
  self->timer_id = g_timeout_add_seconds (VIREO_THUMBNAIL_INTERVAL_S, timer_cb, self);
  return self;
}
