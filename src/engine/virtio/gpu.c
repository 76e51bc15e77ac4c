/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-gpu, 2D (virtio spec 5.7): a control queue and a cursor queue, one scanout.
 *
 * Resources live in host memory, always as XRGB8888 (bytes B G R X): TRANSFER_TO_HOST_2D
 * copies (and, for the other 32-bit formats, reorders) pixels from the guest's backing pages.
 * SET_SCANOUT points the display at a rectangle of a resource; RESOURCE_FLUSH becomes
 * damage. GET_DISPLAY_INFO and GET_EDID report the display's preferred size; when it changes
 * the device raises VIRTIO_GPU_EVENT_DISPLAY through a configuration change.
 *
 * Guest input is checked everywhere: a short command or an unknown resource answers
 * VIRTIO_GPU_RESP_ERR_*, sizes and counts are bounded (GPU_MAX_*), every backing entry must
 * lie in RAM, and transfers and scanouts must fit their resource. A chain without room for
 * a response header breaks the device.
 *
 * Threads and locks: both queues are served on the I/O thread; @lock protects the resources
 * and the scanout and is held while one command runs, so a reset (which takes it) waits for
 * it. Under @lock the device calls into the display (a leaf). The display's preferred-size
 * hook takes VrVirtio.lock only.
 */

#include "config.h"

#include "virtio.h"

#include <linux/virtio_gpu.h>
#include <string.h>

#include "../vr-display-private.h"
#include "../hw/state.h"

#define GPU_MAX_RESOURCES      1024
#define GPU_MAX_HOST_MEMORY    (256u << 20)
#define GPU_MAX_BACKING        65536
#define GPU_MAX_CURSOR         64
#define GPU_QUEUE_SIZE         256

typedef struct
{
  uint32_t       id;
  uint32_t       format;
  uint32_t       width;
  uint32_t       height;
  uint8_t        order[4];    /* guest byte index for each of B, G, R, X */
  GBytes        *bytes;       /* host copy, XRGB8888, stride width * 4 */
  uint8_t       *data;        /* the same, writable */
  struct iovec  *backing;     /* host pointers into RAM */
  uint64_t      *backing_gpa; /* the same entries' guest addresses (snapshots) */
  unsigned       n_backing;
  uint64_t       backing_len;
} GpuResource;

typedef struct
{
  VrVirtio       vio;
  VrDisplay     *display;

  GMutex         lock;
  GHashTable    *resources;   /* id → GpuResource */
  uint64_t       host_memory;
  uint32_t       scanout_resource;   /* 0: scanout disabled */
  struct virtio_gpu_rect scanout_rect;
  uint32_t       cursor_resource;    /* the last UPDATE_CURSOR's (0: none), for snapshots */
  uint32_t       cursor_hot_x;
  uint32_t       cursor_hot_y;
  uint32_t       cursor_x;           /* the last position sent */
  uint32_t       cursor_y;
  uint32_t       events;      /* events_read (VrVirtio.lock) */
} VrVirtioGpu;

static void
resource_free (gpointer data)
{
  GpuResource *res = data;

  g_bytes_unref (res->bytes);
  g_free (res->backing);
  g_free (res->backing_gpa);
  g_free (res);
}

static bool
format_order (uint32_t format,
              uint8_t  order[4])
{
  static const struct { uint32_t format; uint8_t order[4]; } formats[] = {
    { VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, { 0, 1, 2, 3 } },
    { VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, { 0, 1, 2, 3 } },
    { VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, { 3, 2, 1, 0 } },
    { VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, { 3, 2, 1, 0 } },
    { VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, { 2, 1, 0, 3 } },
    { VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, { 2, 1, 0, 3 } },
    { VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, { 1, 2, 3, 0 } },
    { VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, { 1, 2, 3, 0 } },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    if (formats[i].format == format)
      {
        memcpy (order, formats[i].order, 4);
        return true;
      }
  return false;
}

/* Does [x, x + w) x [y, y + h) lie inside a @width x @height resource (and is it non-empty)? */
static bool
rect_inside (const struct virtio_gpu_rect *r,
             uint32_t                      width,
             uint32_t                      height)
{
  return r->width > 0 && r->height > 0 && (uint64_t) r->x + r->width <= width
         && (uint64_t) r->y + r->height <= height;
}

/* ---- scanout (with @lock held) ------------------------------------------------------------ */

static void
scanout_publish (VrVirtioGpu *self)
{
  GpuResource *res = self->scanout_resource
                     ? g_hash_table_lookup (self->resources,
                                            GUINT_TO_POINTER (self->scanout_resource))
                     : NULL;
  VrDisplayMode mode;

  if (res == NULL)
    {
      self->scanout_resource = 0;
      vr_display_source_set_scanout (self->display, VR_DISPLAY_SOURCE_VIRTIO_GPU, NULL, NULL,
                                     NULL);
      return;
    }
  mode = (VrDisplayMode) {
    .format = VR_PIXEL_FORMAT_XRGB8888,
    .width = self->scanout_rect.width,
    .height = self->scanout_rect.height,
    .stride = res->width * 4,
  };
  vr_display_source_set_scanout (self->display, VR_DISPLAY_SOURCE_VIRTIO_GPU, &mode,
                                 res->data + (gsize) self->scanout_rect.y * res->width * 4
                                 + (gsize) self->scanout_rect.x * 4,
                                 res->bytes);
}

/* ---- commands (with @lock held) ----------------------------------------------------------- */

typedef struct
{
  VrVirtqElem             *elem;
  struct virtio_gpu_ctrl_hdr hdr;
} Cmd;

/* Reads the whole command struct @len bytes; false (the caller answers ERR_UNSPEC) when the
 * guest sent less. */
static bool
cmd_read (Cmd    *cmd,
          void   *out,
          size_t  len)
{
  return vr_iov_to_buf (cmd->elem->out, cmd->elem->n_out, 0, out, len) == len;
}

static uint32_t
cmd_get_display_info (VrVirtioGpu *self,
                      Cmd         *cmd,
                      struct virtio_gpu_resp_display_info *resp)
{
  uint32_t w, h;

  vr_display_get_preferred_size (self->display, &w, &h);
  memset (resp->pmodes, 0, sizeof resp->pmodes);
  resp->pmodes[0].r.width = w;
  resp->pmodes[0].r.height = h;
  resp->pmodes[0].enabled = 1;
  return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
}

static uint32_t
cmd_get_edid (VrVirtioGpu *self,
              Cmd         *cmd,
              struct virtio_gpu_resp_edid *resp)
{
  struct virtio_gpu_cmd_get_edid req;
  uint32_t w, h;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (!vr_virtio_has_feature (&self->vio, VIRTIO_GPU_F_EDID))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (req.scanout != 0)
    return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
  vr_display_get_preferred_size (self->display, &w, &h);
  memset (resp->edid, 0, sizeof resp->edid);
  vr_display_make_edid (w, h, resp->edid);
  resp->size = VR_EDID_SIZE;
  return VIRTIO_GPU_RESP_OK_EDID;
}

static uint32_t
cmd_resource_create_2d (VrVirtioGpu *self,
                        Cmd         *cmd)
{
  struct virtio_gpu_resource_create_2d req;
  GpuResource *res;
  uint64_t size;
  uint8_t order[4];

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (req.resource_id == 0
      || g_hash_table_contains (self->resources, GUINT_TO_POINTER (req.resource_id)))
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (!format_order (req.format, order) || req.width == 0 || req.height == 0
      || req.width > VR_DISPLAY_MAX_WIDTH || req.height > VR_DISPLAY_MAX_HEIGHT)
    return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
  size = (uint64_t) req.width * req.height * 4;
  if (g_hash_table_size (self->resources) >= GPU_MAX_RESOURCES
      || size > GPU_MAX_HOST_MEMORY - self->host_memory)
    return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;

  res = g_new0 (GpuResource, 1);
  res->id = req.resource_id;
  res->format = req.format;
  res->width = req.width;
  res->height = req.height;
  memcpy (res->order, order, 4);
  res->data = g_try_malloc0 (size);
  if (res->data == NULL)
    {
      g_free (res);
      return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
  res->bytes = g_bytes_new_take (res->data, size);
  self->host_memory += size;
  g_hash_table_insert (self->resources, GUINT_TO_POINTER (res->id), res);
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static GpuResource *
lookup (VrVirtioGpu *self,
        uint32_t     id)
{
  return id ? g_hash_table_lookup (self->resources, GUINT_TO_POINTER (id)) : NULL;
}

static uint32_t
cmd_resource_unref (VrVirtioGpu *self,
                    Cmd         *cmd)
{
  struct virtio_gpu_resource_unref req;
  GpuResource *res;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (self->scanout_resource == res->id)
    {
      self->scanout_resource = 0;
      scanout_publish (self);
    }
  self->host_memory -= (uint64_t) res->width * res->height * 4;
  g_hash_table_remove (self->resources, GUINT_TO_POINTER (req.resource_id));
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_attach_backing (VrVirtioGpu *self,
                    Cmd         *cmd)
{
  struct virtio_gpu_resource_attach_backing req;
  g_autofree struct iovec *iov = NULL;
  g_autofree uint64_t *gpa = NULL;
  GpuResource *res;
  uint64_t total = 0;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  /* As QEMU answers: a bad page list is ERR_UNSPEC. */
  if (res->backing != NULL || req.nr_entries == 0 || req.nr_entries > GPU_MAX_BACKING)
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (cmd->elem->out_len < sizeof req + (uint64_t) req.nr_entries
                                        * sizeof (struct virtio_gpu_mem_entry))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;

  iov = g_new0 (struct iovec, req.nr_entries);
  gpa = g_new0 (uint64_t, req.nr_entries);
  for (uint32_t i = 0; i < req.nr_entries; i++)
    {
      struct virtio_gpu_mem_entry e;
      void *host;

      vr_iov_to_buf (cmd->elem->out, cmd->elem->n_out, sizeof req + i * sizeof e, &e, sizeof e);
      host = e.length ? vr_memory_translate (self->vio.host.memory, e.addr, e.length) : NULL;
      if (host == NULL)
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
      iov[i].iov_base = host;
      iov[i].iov_len = e.length;
      gpa[i] = e.addr;
      total += e.length;
    }
  res->backing = g_steal_pointer (&iov);
  res->backing_gpa = g_steal_pointer (&gpa);
  res->n_backing = req.nr_entries;
  res->backing_len = total;
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_detach_backing (VrVirtioGpu *self,
                    Cmd         *cmd)
{
  struct virtio_gpu_resource_detach_backing req;
  GpuResource *res;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (res->backing == NULL)
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  g_clear_pointer (&res->backing, g_free);
  g_clear_pointer (&res->backing_gpa, g_free);
  res->n_backing = 0;
  res->backing_len = 0;
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_set_scanout (VrVirtioGpu *self,
                 Cmd         *cmd)
{
  struct virtio_gpu_set_scanout req;
  GpuResource *res;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (req.scanout_id != 0)
    return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
  if (req.resource_id == 0)
    {
      self->scanout_resource = 0;
      scanout_publish (self);
      return VIRTIO_GPU_RESP_OK_NODATA;
    }
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (!rect_inside (&req.r, res->width, res->height) || req.r.width < 16 || req.r.height < 16)
    return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
  self->scanout_resource = res->id;
  self->scanout_rect = req.r;
  scanout_publish (self);
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_transfer_to_host_2d (VrVirtioGpu *self,
                         Cmd         *cmd)
{
  struct virtio_gpu_transfer_to_host_2d req;
  GpuResource *res;
  uint64_t stride, row_len;
  bool direct;
  g_autofree uint8_t *row = NULL;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (res->backing == NULL)
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if (!rect_inside (&req.r, res->width, res->height))
    return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
  stride = (uint64_t) res->width * 4;
  row_len = (uint64_t) req.r.width * 4;
  /* The last byte read must lie in the backing (checked without overflow: all < 2^40). */
  if (req.offset > res->backing_len
      || stride * (req.r.height - 1) + row_len > res->backing_len - req.offset)
    return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;

  direct = res->order[0] == 0 && res->order[1] == 1 && res->order[2] == 2 && res->order[3] == 3;
  if (!direct)
    row = g_malloc (row_len);
  for (uint32_t h = 0; h < req.r.height; h++)
    {
      uint64_t src = req.offset + stride * h;
      uint8_t *dst = res->data + ((uint64_t) req.r.y + h) * stride + (uint64_t) req.r.x * 4;

      if (direct)
        {
          vr_iov_to_buf (res->backing, res->n_backing, src, dst, row_len);
          continue;
        }
      vr_iov_to_buf (res->backing, res->n_backing, src, row, row_len);
      for (uint64_t p = 0; p < row_len; p += 4)
        for (unsigned c = 0; c < 4; c++)
          dst[p + c] = row[p + res->order[c]];
    }
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_resource_flush (VrVirtioGpu *self,
                    Cmd         *cmd)
{
  struct virtio_gpu_resource_flush req;
  GpuResource *res;
  int64_t x0, y0, x1, y1;
  VrRect damage;

  if (!cmd_read (cmd, &req, sizeof req))
    return VIRTIO_GPU_RESP_ERR_UNSPEC;
  if ((res = lookup (self, req.resource_id)) == NULL)
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
  if (!rect_inside (&req.r, res->width, res->height))
    return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
  if (self->scanout_resource != res->id)
    return VIRTIO_GPU_RESP_OK_NODATA;

  /* The flushed rectangle, in scanout coordinates. */
  x0 = MAX ((int64_t) req.r.x, (int64_t) self->scanout_rect.x) - self->scanout_rect.x;
  y0 = MAX ((int64_t) req.r.y, (int64_t) self->scanout_rect.y) - self->scanout_rect.y;
  x1 = MIN ((int64_t) req.r.x + req.r.width,
            (int64_t) self->scanout_rect.x + self->scanout_rect.width) - self->scanout_rect.x;
  y1 = MIN ((int64_t) req.r.y + req.r.height,
            (int64_t) self->scanout_rect.y + self->scanout_rect.height) - self->scanout_rect.y;
  if (x1 > x0 && y1 > y0)
    {
      damage = (VrRect) { (int32_t) x0, (int32_t) y0, (int32_t) (x1 - x0), (int32_t) (y1 - y0) };
      vr_display_source_damage (self->display, VR_DISPLAY_SOURCE_VIRTIO_GPU, &damage, 1);
    }
  return VIRTIO_GPU_RESP_OK_NODATA;
}

static void
cursor_command (VrVirtioGpu *self,
                Cmd         *cmd)
{
  struct virtio_gpu_update_cursor req;
  GpuResource *res;

  if (!cmd_read (cmd, &req, sizeof req) || req.pos.scanout_id != 0)
    return;
  if (cmd->hdr.type == VIRTIO_GPU_CMD_UPDATE_CURSOR)
    {
      res = lookup (self, req.resource_id);
      if (res && res->width <= GPU_MAX_CURSOR && res->height <= GPU_MAX_CURSOR)
        {
          g_autoptr (GBytes) copy = g_bytes_new (res->data, (gsize) res->width * res->height * 4);

          vr_display_source_set_cursor (self->display, copy, res->width, res->height,
                                        (int32_t) MIN (req.hot_x, res->width),
                                        (int32_t) MIN (req.hot_y, res->height));
          self->cursor_resource = res->id;
          self->cursor_hot_x = MIN (req.hot_x, res->width);
          self->cursor_hot_y = MIN (req.hot_y, res->height);
        }
      else
        {
          vr_display_source_set_cursor (self->display, NULL, 0, 0, 0, 0);
          self->cursor_resource = 0;
          self->cursor_hot_x = self->cursor_hot_y = 0;
        }
    }
  else if (cmd->hdr.type != VIRTIO_GPU_CMD_MOVE_CURSOR)
    return;
  vr_display_source_move_cursor (self->display, (int32_t) req.pos.x, (int32_t) req.pos.y);
  self->cursor_x = req.pos.x;
  self->cursor_y = req.pos.y;
}

/* ---- queues ------------------------------------------------------------------------------- */

static void
control_command (VrVirtioGpu *self,
                 Cmd         *cmd)
{
  union
  {
    struct virtio_gpu_ctrl_hdr          hdr;
    struct virtio_gpu_resp_display_info display_info;
    struct virtio_gpu_resp_edid         edid;
  } resp;
  size_t resp_len = sizeof resp.hdr;
  uint32_t type;

  memset (&resp.hdr, 0, sizeof resp.hdr);
  switch (cmd->hdr.type)
    {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
      type = cmd_get_display_info (self, cmd, &resp.display_info);
      resp_len = sizeof resp.display_info;
      break;
    case VIRTIO_GPU_CMD_GET_EDID:
      type = cmd_get_edid (self, cmd, &resp.edid);
      if (type == VIRTIO_GPU_RESP_OK_EDID)
        resp_len = sizeof resp.edid;
      break;
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
      type = cmd_resource_create_2d (self, cmd);
      break;
    case VIRTIO_GPU_CMD_RESOURCE_UNREF:
      type = cmd_resource_unref (self, cmd);
      break;
    case VIRTIO_GPU_CMD_SET_SCANOUT:
      type = cmd_set_scanout (self, cmd);
      break;
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
      type = cmd_resource_flush (self, cmd);
      break;
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
      type = cmd_transfer_to_host_2d (self, cmd);
      break;
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
      type = cmd_attach_backing (self, cmd);
      break;
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
      type = cmd_detach_backing (self, cmd);
      break;
    default:
      type = VIRTIO_GPU_RESP_ERR_UNSPEC;
      break;
    }
  if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC)
    resp_len = sizeof resp.hdr;

  resp.hdr.type = type;
  if (cmd->hdr.flags & VIRTIO_GPU_FLAG_FENCE)
    {
      resp.hdr.flags = VIRTIO_GPU_FLAG_FENCE;
      resp.hdr.fence_id = cmd->hdr.fence_id;
      resp.hdr.ctx_id = cmd->hdr.ctx_id;
    }
  resp_len = MIN (resp_len, cmd->elem->in_len);
  vr_iov_from_buf (cmd->elem->in, cmd->elem->n_in, 0, &resp, resp_len);
  vr_virtq_push (vr_virtio_get_queue (&self->vio, 0), cmd->elem, (uint32_t) resp_len);
}

static void
gpu_queue_notify (VrVirtio *vio,
                  unsigned  queue)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;
  VrVirtqueue *vq = vr_virtio_get_queue (vio, queue);
  VrVirtqElem *elem;
  bool pushed = false;

  while ((elem = vr_virtq_pop (vq)) != NULL)
    {
      Cmd cmd = { .elem = elem };

      if (vr_iov_to_buf (elem->out, elem->n_out, 0, &cmd.hdr, sizeof cmd.hdr) != sizeof cmd.hdr
          || (queue == 0 && elem->in_len < sizeof (struct virtio_gpu_ctrl_hdr)))
        {
          vr_virtio_set_broken (vio, "virtio-gpu: a request without room for its header");
          g_free (elem);
          break;
        }
      g_mutex_lock (&self->lock);
      if (queue == 0)
        control_command (self, &cmd);
      else
        {
          cursor_command (self, &cmd);
          vr_virtq_push (vq, elem, 0);
        }
      g_mutex_unlock (&self->lock);
      pushed = true;
      g_free (elem);
    }
  if (pushed)
    vr_virtq_notify (vq);
}

static void
publish_config (VrVirtioGpu *self)
{
  vr_virtio_config_put32 (&self->vio, offsetof (struct virtio_gpu_config, events_read),
                          self->events);
  vr_virtio_config_put32 (&self->vio, offsetof (struct virtio_gpu_config, events_clear), 0);
  vr_virtio_config_put32 (&self->vio, offsetof (struct virtio_gpu_config, num_scanouts), 1);
  vr_virtio_config_put32 (&self->vio, offsetof (struct virtio_gpu_config, num_capsets), 0);
}

static void
gpu_config_write (VrVirtio *vio,
                  uint32_t  offset,
                  uint32_t  len)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;
  uint32_t clear = vr_pci_get_long (vio->config, offsetof (struct virtio_gpu_config, events_clear));

  /* Only events_clear is writable: it clears bits of events_read. */
  self->events &= ~clear;
  publish_config (self);
}

static void
gpu_preferred_size (gpointer opaque,
                    uint32_t width,
                    uint32_t height)
{
  VrVirtioGpu *self = opaque;

  g_mutex_lock (&self->vio.lock);
  self->events |= VIRTIO_GPU_EVENT_DISPLAY;
  publish_config (self);
  vr_virtio_config_changed (&self->vio);
  g_mutex_unlock (&self->vio.lock);
}

static const VrDisplaySourceOps source_ops = {
  .preferred_size = gpu_preferred_size,
};

static void
gpu_reset (VrVirtio *vio)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;

  g_mutex_lock (&self->lock);
  self->scanout_resource = 0;
  scanout_publish (self);
  g_hash_table_remove_all (self->resources);
  self->host_memory = 0;
  vr_display_source_set_cursor (self->display, NULL, 0, 0, 0, 0);
  self->cursor_resource = 0;
  self->cursor_hot_x = self->cursor_hot_y = 0;
  self->cursor_x = self->cursor_y = 0;
  g_mutex_unlock (&self->lock);

  g_mutex_lock (&vio->lock);
  self->events = 0;
  publish_config (self);
  g_mutex_unlock (&vio->lock);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/*
 * State, version 1: (version, resources as (id, format, width, height, backing entries as
 * (guest address, length)), the scanout as (resource, (x, y, width, height)), the cursor as
 * (resource of the last UPDATE_CURSOR or 0, hot x, hot y, x, y)). events_read comes through
 * the transport's copy of the configuration.
 *
 * The host copies of the resources are not saved: they are rebuilt from their backing pages
 * in the restored RAM, as a TRANSFER_TO_HOST_2D of each whole resource would. The guest cannot
 * read a host copy back (2D has no TRANSFER_FROM_HOST), so nothing it sees changes; only the
 * picture, until the guest's next flush, may show pixels it had drawn but not yet transferred
 * rather than the older ones. A resource without backing comes back black, and the cursor
 * image is taken again from its resource. This keeps snapshots small (a 1080p scanout alone
 * is 8 MiB, double-buffered 16).
 *
 * Loading checks everything as the commands do (IDs, formats, sizes, the host memory budget,
 * every backing entry in RAM, the scanout and cursor inside their resources).
 */
#define GPU_STATE_VERSION 1
#define GPU_STATE_TYPE    "(qa(uuuua(tu))(u(uuuu))(uuuuu))"

static int
compare_ids (gconstpointer a,
             gconstpointer b)
{
  unsigned x = GPOINTER_TO_UINT (a), y = GPOINTER_TO_UINT (b);

  return x < y ? -1 : x > y;
}

static GVariant *
gpu_save (VrVirtio *vio)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;
  GVariantBuilder resources;
  g_autoptr (GList) ids = NULL;
  GVariant *v;

  g_variant_builder_init (&resources, G_VARIANT_TYPE ("a(uuuua(tu))"));
  g_mutex_lock (&self->lock);
  /* In ID order, so that equal states save equal. */
  ids = g_list_sort (g_hash_table_get_keys (self->resources), compare_ids);
  for (GList *l = ids; l; l = l->next)
    {
      GpuResource *res = g_hash_table_lookup (self->resources, l->data);
      GVariantBuilder backing;

      g_variant_builder_init (&backing, G_VARIANT_TYPE ("a(tu)"));
      for (unsigned i = 0; i < res->n_backing; i++)
        g_variant_builder_add (&backing, "(tu)", res->backing_gpa[i],
                               (uint32_t) res->backing[i].iov_len);
      g_variant_builder_add (&resources, "(uuuua(tu))", res->id, res->format, res->width,
                             res->height, &backing);
    }
  v = g_variant_new (GPU_STATE_TYPE, GPU_STATE_VERSION, &resources, self->scanout_resource,
                     self->scanout_rect.x, self->scanout_rect.y, self->scanout_rect.width,
                     self->scanout_rect.height, self->cursor_resource, self->cursor_hot_x,
                     self->cursor_hot_y, self->cursor_x, self->cursor_y);
  g_mutex_unlock (&self->lock);
  return v;
}

/* The whole resource from its backing, as TRANSFER_TO_HOST_2D of (0, 0, width, height) at
 * offset 0 would copy it; rows the backing does not hold stay black. */
static void
resource_refill (GpuResource *res)
{
  uint64_t stride = (uint64_t) res->width * 4;
  g_autofree uint8_t *row = g_malloc (stride);

  for (uint32_t h = 0; h < res->height && stride * (h + 1) <= res->backing_len; h++)
    {
      uint8_t *dst = res->data + stride * h;

      vr_iov_to_buf (res->backing, res->n_backing, stride * h, row, stride);
      for (uint64_t p = 0; p < stride; p += 4)
        for (unsigned c = 0; c < 4; c++)
          dst[p + c] = row[p + res->order[c]];
    }
}

static bool
gpu_load (VrVirtio      *vio,
          GVariant      *state,
          const uint8_t *config,
          GError       **error)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;
  g_autoptr (GVariant) list = NULL;
  g_autoptr (GHashTable) loaded = NULL;
  struct virtio_gpu_rect rect;
  uint32_t scanout, cursor, hot_x, hot_y, cursor_x, cursor_y, events;
  uint64_t memory = 0;
  uint16_t version;
  uint8_t expect[sizeof (struct virtio_gpu_config)];
  GpuResource *res;
  gsize n;

  if (!vr_state_check (state, "virtio-gpu", GPU_STATE_TYPE, GPU_STATE_VERSION, error))
    return false;
  g_variant_get (state, GPU_STATE_TYPE, &version, NULL, &scanout, &rect.x, &rect.y, &rect.width,
                 &rect.height, &cursor, &hot_x, &hot_y, &cursor_x, &cursor_y);
  list = g_variant_get_child_value (state, 1);

  /* The configuration: only events_read is ours to take. */
  events = vr_pci_get_long (config, offsetof (struct virtio_gpu_config, events_read));
  if (events & ~(uint32_t) VIRTIO_GPU_EVENT_DISPLAY)
    return vr_state_fail (error, "virtio-gpu", "events %#x", events);
  memcpy (expect, config, sizeof expect);
  g_mutex_lock (&vio->lock);
  vr_pci_set_long (expect, offsetof (struct virtio_gpu_config, events_read), self->events);
  if (memcmp (expect, vio->config, sizeof expect) != 0)
    {
      g_mutex_unlock (&vio->lock);
      return vr_state_fail (error, "virtio-gpu", "the configuration differs from the "
                            "snapshot's");
    }
  g_mutex_unlock (&vio->lock);

  /* The resources, checked as RESOURCE_CREATE_2D and ATTACH_BACKING check them. */
  n = g_variant_n_children (list);
  if (n > GPU_MAX_RESOURCES)
    return vr_state_fail (error, "virtio-gpu", "%" G_GSIZE_FORMAT " resources, at most %u", n,
                          GPU_MAX_RESOURCES);
  loaded = g_hash_table_new_full (NULL, NULL, NULL, resource_free);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) backing = NULL;
      uint32_t id, format, width, height;
      uint64_t size;
      gsize nb;

      g_variant_get_child (list, i, "(uuuu@a(tu))", &id, &format, &width, &height, &backing);
      if (id == 0 || g_hash_table_contains (loaded, GUINT_TO_POINTER (id)))
        return vr_state_fail (error, "virtio-gpu", "resource ID %u (zero or twice)", id);
      res = g_new0 (GpuResource, 1);
      res->id = id;
      g_hash_table_insert (loaded, GUINT_TO_POINTER (id), res);
      if (!format_order (format, res->order) || width == 0 || height == 0
          || width > VR_DISPLAY_MAX_WIDTH || height > VR_DISPLAY_MAX_HEIGHT)
        return vr_state_fail (error, "virtio-gpu", "resource %u: format %u, %ux%u", id, format,
                              width, height);
      size = (uint64_t) width * height * 4;
      if (size > GPU_MAX_HOST_MEMORY - memory)
        return vr_state_fail (error, "virtio-gpu", "resources of more than %u MiB",
                              GPU_MAX_HOST_MEMORY >> 20);
      memory += size;
      res->format = format;
      res->width = width;
      res->height = height;
      nb = g_variant_n_children (backing);
      if (nb > GPU_MAX_BACKING)
        return vr_state_fail (error, "virtio-gpu", "resource %u: %" G_GSIZE_FORMAT " backing "
                              "entries, at most %u", id, nb, GPU_MAX_BACKING);
      if (nb > 0)
        {
          res->backing = g_new0 (struct iovec, nb);
          res->backing_gpa = g_new0 (uint64_t, nb);
          res->n_backing = (unsigned) nb;
        }
      for (gsize b = 0; b < nb; b++)
        {
          uint64_t addr;
          uint32_t len;
          void *host;

          g_variant_get_child (backing, b, "(tu)", &addr, &len);
          host = len ? vr_memory_translate (vio->host.memory, addr, len) : NULL;
          if (host == NULL)
            return vr_state_fail (error, "virtio-gpu", "resource %u: backing entry %"
                                  G_GSIZE_FORMAT " (%#" G_GINT64_MODIFIER "x, %u bytes) is not "
                                  "in RAM", id, b, addr, len);
          res->backing[b] = (struct iovec) { .iov_base = host, .iov_len = len };
          res->backing_gpa[b] = addr;
          res->backing_len += len;
        }
    }
  if (scanout != 0)
    {
      res = g_hash_table_lookup (loaded, GUINT_TO_POINTER (scanout));
      if (res == NULL || !rect_inside (&rect, res->width, res->height) || rect.width < 16
          || rect.height < 16)
        return vr_state_fail (error, "virtio-gpu", "scanout of resource %u at %ux%u+%u+%u",
                              scanout, rect.width, rect.height, rect.x, rect.y);
    }
  if (cursor != 0)
    {
      res = g_hash_table_lookup (loaded, GUINT_TO_POINTER (cursor));
      if (res == NULL || res->width > GPU_MAX_CURSOR || res->height > GPU_MAX_CURSOR
          || hot_x > res->width || hot_y > res->height)
        return vr_state_fail (error, "virtio-gpu", "cursor resource %u, hot spot %u,%u",
                              cursor, hot_x, hot_y);
    }
  else if (hot_x || hot_y)
    return vr_state_fail (error, "virtio-gpu", "a hot spot without a cursor");

  /* The host copies, from the backing pages. */
  {
    GHashTableIter iter;

    g_hash_table_iter_init (&iter, loaded);
    while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &res))
      {
        gsize size = (gsize) res->width * res->height * 4;

        res->data = g_try_malloc0 (size);
        if (res->data == NULL)
          return vr_state_fail (error, "virtio-gpu", "no memory for resource %u (%ux%u)",
                                res->id, res->width, res->height);
        res->bytes = g_bytes_new_take (res->data, size);
        if (res->backing)
          resource_refill (res);
      }
  }

  g_mutex_lock (&self->lock);
  g_hash_table_remove_all (self->resources);   /* empty already: the device was reset */
  g_clear_pointer (&self->resources, g_hash_table_unref);
  self->resources = g_steal_pointer (&loaded);
  self->host_memory = memory;
  self->scanout_resource = scanout;
  self->scanout_rect = rect;
  scanout_publish (self);
  self->cursor_resource = cursor;
  self->cursor_hot_x = hot_x;
  self->cursor_hot_y = hot_y;
  self->cursor_x = cursor_x;
  self->cursor_y = cursor_y;
  if (cursor != 0)
    {
      g_autoptr (GBytes) copy = NULL;

      res = g_hash_table_lookup (self->resources, GUINT_TO_POINTER (cursor));
      copy = g_bytes_new (res->data, (gsize) res->width * res->height * 4);
      vr_display_source_set_cursor (self->display, copy, res->width, res->height,
                                    (int32_t) hot_x, (int32_t) hot_y);
    }
  vr_display_source_move_cursor (self->display, (int32_t) cursor_x, (int32_t) cursor_y);
  g_mutex_unlock (&self->lock);

  g_mutex_lock (&vio->lock);
  self->events = events;
  publish_config (self);
  g_mutex_unlock (&vio->lock);
  return true;
}

static void
gpu_destroy (VrVirtio *vio)
{
  VrVirtioGpu *self = (VrVirtioGpu *) vio;

  if (self->display)
    vr_display_remove_source (self->display, VR_DISPLAY_SOURCE_VIRTIO_GPU);
  g_clear_pointer (&self->resources, g_hash_table_unref);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static const VrVirtioOps gpu_ops = {
  .name = "virtio-gpu",
  .device_id = VIRTIO_ID_GPU,
  .pci_class = 0x038000,   /* display, other */
  .config_write = gpu_config_write,
  .queue_notify = gpu_queue_notify,
  .reset = gpu_reset,
  .save = gpu_save,
  .load = gpu_load,
  .destroy = gpu_destroy,
};

VrDevice *
vr_virtio_gpu_new (const VrVirtioHost *host,
                   VrDisplay          *display,
                   GError            **error)
{
  VrVirtioGpu *self;

  g_return_val_if_fail (display != NULL, NULL);

  self = g_new0 (VrVirtioGpu, 1);
  g_mutex_init (&self->lock);
  self->resources = g_hash_table_new_full (NULL, NULL, NULL, resource_free);
  if (!vr_virtio_init (&self->vio, &gpu_ops, host, 1ull << VIRTIO_GPU_F_EDID, 2, GPU_QUEUE_SIZE,
                       sizeof (struct virtio_gpu_config), error))
    {
      vr_device_destroy (&self->vio.parent);
      return NULL;
    }
  publish_config (self);
  self->display = display;
  vr_display_add_source (display, VR_DISPLAY_SOURCE_VIRTIO_GPU, &source_ops, self);
  if (!vr_virtio_plug (&self->vio, error))
    {
      vr_device_destroy (&self->vio.parent);
      return NULL;
    }
  return &self->vio.parent;
}
