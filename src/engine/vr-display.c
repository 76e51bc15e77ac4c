/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * VrDisplay: the machine's screen between its display devices (vr-display-private.h) and the
 * UI (vr-display.h).
 *
 * Threads and locks: @lock protects everything below it in the struct and is a leaf: no
 * source hook and no listener runs with it held. Change detection is a timer on the
 * machine's I/O thread (only while a listener is set): it polls the shown source (bochs:
 * the KVM dirty log) and decides whether what accumulated is worth a callback now; a post
 * is one idle source on the listener's context, and while one has not been delivered the
 * changes wait (at most one callback in flight). The display is reference-counted: the
 * machine holds one reference, the timer and each post another, so a late callback never
 * sees freed memory.
 *
 * Pacing. Every callback makes the UI draw a frame, and on a software rasterizer a frame
 * costs the same however small the damage (GTK repaints the whole window when the GL stack
 * cannot tell it what the back buffer holds). A guest that draws into a plain framebuffer
 * (bochs) says nothing about when a picture is finished, so polling at a fixed rate shows
 * every picture several times half drawn, each time at full price, and still shows the
 * finished one up to a period late. Instead the timer polls at @refresh_hz while the guest
 * is idle and eight times as fast while it draws (the dirty log is one ioctl), and posts
 *  - when a drawing pass ends: the guest paused (no new writes for QUIET_US, or longer if it
 *    had gaps that long while drawing this picture: a guest the host did not let run for a
 *    while has not paused), or it writes again rows it already wrote in this pass, other
 *    than those of the page it was writing (it started the next picture: what it drew is
 *    complete, show it before it is gone);
 *  - when changes have waited MAX_AGE_US (a guest that draws slowly and never pauses
 *    still shows its progress);
 *  - at once for damage a source reports itself (virtio-gpu's RESOURCE_FLUSH is the guest
 *    saying "show this"), mode and cursor changes.
 * So a finished picture is shown within a fast poll period, and a guest that redraws the
 * whole screen continuously costs about one UI frame per picture, not one per period.
 */

#include "config.h"

#include "vr-display-private.h"

#include <string.h>

#define MAX_RECTS       32
#define DEFAULT_HZ      60
#define MAX_HZ          240
#define FAST_FACTOR     8                       /* poll rate while the guest draws */
#define MIN_PERIOD_US   2000
#define ACTIVE_US       (G_USEC_PER_SEC / 2)    /* "draws": damage in the last half second */
#define MAX_AGE_US      (G_USEC_PER_SEC / 5)
#define QUIET_US        10000                   /* no writes for this long: a pause... */
#define QUIET_MAX_US    50000                   /* ...or at most this, after longer gaps */
#define ROW_WORDS       (VR_DISPLAY_MAX_HEIGHT / 64)

typedef struct
{
  bool                      registered;
  const VrDisplaySourceOps *ops;
  gpointer                  opaque;
  VrDisplayMode             mode;
  const uint8_t            *pixels;
  GBytes                   *keepalive;
} Source;

struct _VrDisplay
{
  gint               ref_count;
  GMainContext      *io_context;

  GMutex             lock;
  Source             sources[VR_DISPLAY_N_SOURCES];
  int                shown;          /* the source whose mode was last posted, -1: none */

  GMainContext      *context;        /* the listener's */
  VrDisplayListener  listener;
  gpointer           user_data;
  GDestroyNotify     destroy;
  unsigned           refresh_hz;
  GSource           *timer;
  gint64             period_us;      /* poll period while the guest is idle */
  unsigned           generation;     /* bumped when the listener changes: stale posts drop */
  bool               posting;        /* a post is waiting on the listener's context */

  VrDisplayUpdateFlags pending;
  GArray            *rects;          /* VrRect, pending damage */

  /* pacing (see the top of the file) */
  GThread           *polling;        /* the thread in a source's poll hook, else NULL */
  bool               flush;          /* damage a source reported itself: post now */
  bool               want_post;      /* a pass ended or damage is old: post when possible */
  bool               poll_damage;    /* the last poll found damage */
  gint64             pending_since;  /* when the oldest unposted damage came, 0: none */
  gint64             last_damage;    /* when a poll last found damage */
  gint64             pass_gap;       /* the longest gap (< QUIET_MAX_US) in this pass */
  uint64_t           pass_rows[ROW_WORDS];   /* rows written in the current drawing pass */
  uint64_t           poll_rows[ROW_WORDS];   /* rows written since the last poll */
  uint64_t           prev_rows[ROW_WORDS];   /* rows the poll before found */

  GPtrArray         *mapped;         /* GBytes * (or NULL) per vr_display_map() */

  GBytes            *cursor;         /* NULL: no guest cursor */
  uint32_t           cursor_width;
  uint32_t           cursor_height;
  int32_t            cursor_hot_x;
  int32_t            cursor_hot_y;
  int32_t            cursor_x;
  int32_t            cursor_y;

  uint32_t           preferred_width;
  uint32_t           preferred_height;

  uint64_t           damaged_rows;
  uint64_t           updates;
  bool               disposed;
};

typedef struct
{
  VrDisplay       *display;
  unsigned         generation;
  VrDisplayUpdate  update;
  VrRect          *rects;
} Post;

static void
display_unref (VrDisplay *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  for (unsigned i = 0; i < VR_DISPLAY_N_SOURCES; i++)
    g_clear_pointer (&self->sources[i].keepalive, g_bytes_unref);
  g_clear_pointer (&self->cursor, g_bytes_unref);
  g_array_unref (self->rects);
  g_ptr_array_unref (self->mapped);
  g_main_context_unref (self->io_context);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static VrDisplay *
display_ref (VrDisplay *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

unsigned
vr_pixel_format_bpp (VrPixelFormat format)
{
  switch (format)
    {
    case VR_PIXEL_FORMAT_XRGB8888: return 4;
    case VR_PIXEL_FORMAT_RGB888:   return 3;
    case VR_PIXEL_FORMAT_RGB565:   return 2;
    case VR_PIXEL_FORMAT_NONE:
    default:                       return 0;
    }
}

/* ---- with @lock held -------------------------------------------------------------------- */

static int
active_source (VrDisplay *self)
{
  for (int i = VR_DISPLAY_N_SOURCES - 1; i >= 0; i--)
    if (self->sources[i].registered && self->sources[i].mode.format != VR_PIXEL_FORMAT_NONE
        && self->sources[i].pixels != NULL)
      return i;
  return -1;
}

static VrDisplayMode
active_mode (VrDisplay *self,
             int        active)
{
  VrDisplayMode none = { VR_PIXEL_FORMAT_NONE, 0, 0, 0 };

  return active >= 0 ? self->sources[active].mode : none;
}

static void
add_rect (VrDisplay    *self,
          const VrRect *r)
{
  if (self->rects->len >= MAX_RECTS)
    {
      /* Too many: one bounding box. */
      VrRect *b = &g_array_index (self->rects, VrRect, 0);
      int32_t x0 = b->x, y0 = b->y, x1 = b->x + b->width, y1 = b->y + b->height;

      for (guint i = 1; i < self->rects->len; i++)
        {
          VrRect *o = &g_array_index (self->rects, VrRect, i);

          x0 = MIN (x0, o->x);
          y0 = MIN (y0, o->y);
          x1 = MAX (x1, o->x + o->width);
          y1 = MAX (y1, o->y + o->height);
        }
      x0 = MIN (x0, r->x);
      y0 = MIN (y0, r->y);
      x1 = MAX (x1, r->x + r->width);
      y1 = MAX (y1, r->y + r->height);
      g_array_set_size (self->rects, 1);
      *b = (VrRect) { x0, y0, x1 - x0, y1 - y0 };
      return;
    }
  g_array_append_val (self->rects, *r);
}

/* Sets rows [@y0, @y1) (< VR_DISPLAY_MAX_HEIGHT) in @rows. */
static void
mark_rows (uint64_t *rows,
           uint32_t  y0,
           uint32_t  y1)
{
  y1 = MIN (y1, (uint32_t) VR_DISPLAY_MAX_HEIGHT);
  for (uint32_t y = y0; y < y1; )
    {
      if (y % 64 == 0 && y + 64 <= y1)
        {
          rows[y / 64] = ~(uint64_t) 0;
          y += 64;
        }
      else
        {
          rows[y / 64] |= (uint64_t) 1 << (y % 64);
          y++;
        }
    }
}

/* The shown source (or its mode) changed: everything is new. */
static void
mode_changed (VrDisplay *self)
{
  int active = active_source (self);
  VrDisplayMode mode = active_mode (self, active);

  self->shown = active;
  self->pending |= VR_DISPLAY_UPDATE_MODE;
  g_array_set_size (self->rects, 0);
  memset (self->pass_rows, 0, sizeof self->pass_rows);
  self->pass_gap = 0;
  if (active >= 0)
    {
      VrRect full = { 0, 0, (int32_t) mode.width, (int32_t) mode.height };

      self->pending |= VR_DISPLAY_UPDATE_DAMAGE;
      g_array_append_val (self->rects, full);
    }
  else
    self->pending &= ~VR_DISPLAY_UPDATE_DAMAGE;
}

static void
deliver_post_free (gpointer data)
{
  Post *post = data;

  display_unref (post->display);
  g_free (post->rects);
  g_free (post);
}

static gboolean
deliver_post (gpointer data)
{
  Post *post = data;
  VrDisplay *self = post->display;
  VrDisplayListener listener = NULL;
  gpointer user_data = NULL;
  uint64_t rows = 0;

  g_mutex_lock (&self->lock);
  if (post->generation == self->generation)
    {
      self->posting = false;
      if (!self->disposed && self->listener)
        {
          listener = self->listener;
          user_data = self->user_data;
          if (post->update.flags & VR_DISPLAY_UPDATE_DAMAGE)
            for (unsigned i = 0; i < post->update.n_rects; i++)
              rows += (uint64_t) post->rects[i].height;
          self->damaged_rows += rows;
          self->updates++;
        }
    }
  g_mutex_unlock (&self->lock);

  if (listener)
    listener (self, &post->update, user_data);
  return G_SOURCE_REMOVE;
}

static void
post_pending (VrDisplay *self)
{
  g_autoptr (GSource) source = NULL;
  Post *post;

  if (self->pending == 0 || self->posting || self->listener == NULL || self->disposed)
    return;

  post = g_new0 (Post, 1);
  post->display = display_ref (self);
  post->generation = self->generation;
  post->update.flags = self->pending;
  post->update.mode = active_mode (self, active_source (self));
  if (self->pending & VR_DISPLAY_UPDATE_DAMAGE)
    {
      post->rects = g_memdup2 (self->rects->data, self->rects->len * sizeof (VrRect));
      post->update.rects = post->rects;
      post->update.n_rects = self->rects->len;
    }
  self->pending = 0;
  g_array_set_size (self->rects, 0);
  self->posting = true;
  self->flush = false;
  self->want_post = false;
  self->pending_since = 0;

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deliver_post, post, deliver_post_free);
  g_source_set_static_name (source, "[vireo] display update");
  g_source_attach (source, self->context);
}

/* ---- change detection (I/O thread) ------------------------------------------------------- */

/* With @lock held, after a poll: whether the changes should reach the listener now.
 * @had_pending: damage was waiting before this poll. */
static bool
should_post (VrDisplay *self,
             gint64     now,
             bool       had_pending)
{
  bool pass_ended = false;

  if (self->poll_damage)
    {
      const VrDisplayMode *mode = self->shown >= 0 ? &self->sources[self->shown].mode : NULL;
      unsigned spill = 2 + (mode && mode->stride ? 4096 / mode->stride : 0);
      unsigned again = 0;
      gint64 gap;
      bool new_pass;

      /* The dirty log has page granularity: the rows of a page the guest was in the middle
       * of show up in the next poll too (hence prev_rows), and so do, whenever it is written,
       * the rows of a page that a region it drew earlier only began or ended in. More rows
       * than those, written before in this pass, are the guest coming back: a new picture.
       * What was pending of the old one is complete (drawn over already, if anything). */
      gap = now - self->last_damage;
      self->last_damage = now;
      for (unsigned i = 0; i < ROW_WORDS; i++)
        again += (unsigned) __builtin_popcountll (self->pass_rows[i] & ~self->prev_rows[i]
                                                  & self->poll_rows[i]);
      new_pass = again > spill;
      if (new_pass)
        {
          /* The new picture is what was written again; the other rows of this poll may be
           * the end of the old one. */
          for (unsigned i = 0; i < ROW_WORDS; i++)
            self->pass_rows[i] &= ~self->prev_rows[i] & self->poll_rows[i];
          self->pass_gap = 0;
        }
      else
        {
          for (unsigned i = 0; i < ROW_WORDS; i++)
            self->pass_rows[i] |= self->poll_rows[i];
          if (gap < QUIET_MAX_US)
            self->pass_gap = MAX (self->pass_gap, gap);
        }
      memcpy (self->prev_rows, self->poll_rows, sizeof self->prev_rows);
      memset (self->poll_rows, 0, sizeof self->poll_rows);
      self->poll_damage = false;
      pass_ended = new_pass && had_pending;
    }
  else if (now - self->last_damage >= CLAMP (self->pass_gap * 3 / 2, QUIET_US, QUIET_MAX_US))
    {
      /* The guest paused, longer than a scheduler's time slice (during which it may just
       * not have run). The pass stays: a guest that was only kept from running goes on
       * with it, and one that starts a new picture is seen doing so. */
      pass_ended = self->pending_since != 0;
    }

  if (pass_ended || self->flush || (self->pending & ~VR_DISPLAY_UPDATE_DAMAGE) != 0
      || (self->pending_since != 0 && now - self->pending_since >= MAX_AGE_US))
    self->want_post = true;
  return self->want_post;
}

static gboolean
refresh_tick (gpointer data)
{
  VrDisplay *self = data;
  const VrDisplaySourceOps *ops = NULL;
  gpointer opaque = NULL;
  gint64 now, period;
  bool had_pending;
  int active;

  g_mutex_lock (&self->lock);
  if (self->listener == NULL || self->disposed)
    {
      g_mutex_unlock (&self->lock);
      g_source_set_ready_time (g_main_current_source (), -1);
      return G_SOURCE_CONTINUE;
    }
  active = active_source (self);
  if (active != self->shown)
    mode_changed (self);
  if (active >= 0 && self->sources[active].ops && self->sources[active].ops->poll)
    {
      ops = self->sources[active].ops;
      opaque = self->sources[active].opaque;
    }
  self->polling = g_thread_self ();
  had_pending = self->pending_since != 0;
  g_mutex_unlock (&self->lock);

  if (ops)
    ops->poll (opaque, self);

  g_mutex_lock (&self->lock);
  self->polling = NULL;
  now = g_get_monotonic_time ();
  if (should_post (self, now, had_pending))
    post_pending (self);
  period = self->period_us;
  if (now - self->last_damage < ACTIVE_US)
    period = MAX (period / FAST_FACTOR, MIN_PERIOD_US);
  g_mutex_unlock (&self->lock);
  g_source_set_ready_time (g_main_current_source (), now + period);
  return G_SOURCE_CONTINUE;
}

static gboolean
timer_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  return callback (user_data);
}

static GSourceFuncs timer_funcs = {
  .dispatch = timer_dispatch,
};

static void
timer_destroy_notify (gpointer data)
{
  display_unref (data);
}

/* With @lock held; returns the old listener's destroy call to make after unlocking. */
static void
clear_listener (VrDisplay      *self,
                GDestroyNotify *destroy,
                gpointer       *user_data)
{
  *destroy = self->destroy;
  *user_data = self->user_data;
  if (self->timer)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  g_clear_pointer (&self->context, g_main_context_unref);
  self->listener = NULL;
  self->user_data = NULL;
  self->destroy = NULL;
  self->generation++;
  self->posting = false;
  self->pending = 0;
  self->flush = false;
  self->want_post = false;
  self->poll_damage = false;
  self->pending_since = 0;
  self->pass_gap = 0;
  memset (self->pass_rows, 0, sizeof self->pass_rows);
  memset (self->poll_rows, 0, sizeof self->poll_rows);
  memset (self->prev_rows, 0, sizeof self->prev_rows);
  g_array_set_size (self->rects, 0);
}

/* ---- machine side ------------------------------------------------------------------------ */

VrDisplay *
vr_display_new (GMainContext *io_context)
{
  VrDisplay *self;

  g_return_val_if_fail (io_context != NULL, NULL);

  self = g_new0 (VrDisplay, 1);
  self->ref_count = 1;
  self->io_context = g_main_context_ref (io_context);
  g_mutex_init (&self->lock);
  self->shown = -1;
  self->rects = g_array_new (FALSE, FALSE, sizeof (VrRect));
  self->mapped = g_ptr_array_new ();
  self->preferred_width = VR_DISPLAY_DEFAULT_WIDTH;
  self->preferred_height = VR_DISPLAY_DEFAULT_HEIGHT;
  return self;
}

void
vr_display_free (VrDisplay *self)
{
  GDestroyNotify destroy;
  gpointer user_data;

  if (self == NULL)
    return;
  g_mutex_lock (&self->lock);
  self->disposed = true;
  clear_listener (self, &destroy, &user_data);
  for (unsigned i = 0; i < VR_DISPLAY_N_SOURCES; i++)
    self->sources[i].registered = false;
  g_mutex_unlock (&self->lock);
  if (destroy)
    destroy (user_data);
  display_unref (self);
}

void
vr_display_add_source (VrDisplay                *self,
                       VrDisplaySourceId         id,
                       const VrDisplaySourceOps *ops,
                       gpointer                  opaque)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail ((unsigned) id < VR_DISPLAY_N_SOURCES);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->sources[id].keepalive, g_bytes_unref);
  self->sources[id] = (Source) { .registered = true, .ops = ops, .opaque = opaque };
  g_mutex_unlock (&self->lock);
}

void
vr_display_remove_source (VrDisplay         *self,
                          VrDisplaySourceId  id)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail ((unsigned) id < VR_DISPLAY_N_SOURCES);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->sources[id].keepalive, g_bytes_unref);
  self->sources[id] = (Source) { .registered = false };
  if (active_source (self) != self->shown)
    mode_changed (self);
  g_mutex_unlock (&self->lock);
}

void
vr_display_source_set_scanout (VrDisplay           *self,
                               VrDisplaySourceId    id,
                               const VrDisplayMode *mode,
                               const uint8_t       *pixels,
                               GBytes              *keepalive)
{
  VrDisplayMode none = { VR_PIXEL_FORMAT_NONE, 0, 0, 0 };
  Source *s;
  bool changed;

  g_return_if_fail (self != NULL);
  g_return_if_fail ((unsigned) id < VR_DISPLAY_N_SOURCES);

  if (mode == NULL || mode->format == VR_PIXEL_FORMAT_NONE || pixels == NULL)
    {
      mode = &none;
      pixels = NULL;
      keepalive = NULL;
    }

  g_mutex_lock (&self->lock);
  s = &self->sources[id];
  changed = memcmp (&s->mode, mode, sizeof *mode) != 0 || s->pixels != pixels;
  s->mode = *mode;
  s->pixels = pixels;
  if (keepalive != s->keepalive)
    {
      g_clear_pointer (&s->keepalive, g_bytes_unref);
      s->keepalive = keepalive ? g_bytes_ref (keepalive) : NULL;
    }
  if (active_source (self) != self->shown || (changed && (int) id == self->shown))
    mode_changed (self);
  g_mutex_unlock (&self->lock);
}

void
vr_display_source_damage (VrDisplay         *self,
                          VrDisplaySourceId  id,
                          const VrRect      *rects,
                          unsigned           n_rects)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail ((unsigned) id < VR_DISPLAY_N_SOURCES);

  g_mutex_lock (&self->lock);
  if ((int) id == self->shown && (int) id == active_source (self))
    {
      const VrDisplayMode *m = &self->sources[id].mode;

      for (unsigned i = 0; i < n_rects; i++)
        {
          int64_t x0 = CLAMP ((int64_t) rects[i].x, 0, (int64_t) m->width);
          int64_t y0 = CLAMP ((int64_t) rects[i].y, 0, (int64_t) m->height);
          int64_t x1 = CLAMP ((int64_t) rects[i].x + rects[i].width, 0, (int64_t) m->width);
          int64_t y1 = CLAMP ((int64_t) rects[i].y + rects[i].height, 0, (int64_t) m->height);
          VrRect r = { (int32_t) x0, (int32_t) y0, (int32_t) (x1 - x0), (int32_t) (y1 - y0) };

          if (x1 <= x0 || y1 <= y0)
            continue;
          add_rect (self, &r);
          self->pending |= VR_DISPLAY_UPDATE_DAMAGE;
          if (self->pending_since == 0)
            self->pending_since = g_get_monotonic_time ();
          if (self->polling == g_thread_self ())
            {
              mark_rows (self->poll_rows, (uint32_t) y0, (uint32_t) y1);
              self->poll_damage = true;
            }
          else
            self->flush = true;
        }
    }
  g_mutex_unlock (&self->lock);
}

void
vr_display_source_damage_rows (VrDisplay         *self,
                               VrDisplaySourceId  id,
                               uint32_t           first,
                               uint32_t           count)
{
  VrRect r = { 0, (int32_t) MIN (first, (uint32_t) G_MAXINT32),
               G_MAXINT32, (int32_t) MIN (count, (uint32_t) G_MAXINT32) };

  vr_display_source_damage (self, id, &r, 1);
}

void
vr_display_source_set_cursor (VrDisplay *self,
                              GBytes    *pixels,
                              uint32_t   width,
                              uint32_t   height,
                              int32_t    hot_x,
                              int32_t    hot_y)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->cursor, g_bytes_unref);
  if (pixels && width > 0 && height > 0 && width <= 64 && height <= 64
      && g_bytes_get_size (pixels) >= (gsize) width * height * 4)
    {
      self->cursor = g_bytes_ref (pixels);
      self->cursor_width = width;
      self->cursor_height = height;
      self->cursor_hot_x = hot_x;
      self->cursor_hot_y = hot_y;
    }
  self->pending |= VR_DISPLAY_UPDATE_CURSOR;
  g_mutex_unlock (&self->lock);
}

void
vr_display_source_move_cursor (VrDisplay *self,
                               int32_t    x,
                               int32_t    y)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  if (x != self->cursor_x || y != self->cursor_y)
    {
      self->cursor_x = x;
      self->cursor_y = y;
      self->pending |= VR_DISPLAY_UPDATE_CURSOR_POSITION;
    }
  g_mutex_unlock (&self->lock);
}

void
vr_display_get_preferred_size (VrDisplay *self,
                               uint32_t  *width,
                               uint32_t  *height)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  *width = self->preferred_width;
  *height = self->preferred_height;
  g_mutex_unlock (&self->lock);
}

/* ---- UI side ----------------------------------------------------------------------------- */

void
vr_display_set_listener (VrDisplay         *self,
                         GMainContext      *context,
                         unsigned           refresh_hz,
                         VrDisplayListener  listener,
                         gpointer           user_data,
                         GDestroyNotify     destroy)
{
  GDestroyNotify old_destroy;
  gpointer old_data;

  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  clear_listener (self, &old_destroy, &old_data);
  if (listener && !self->disposed)
    {
      self->listener = listener;
      self->user_data = user_data;
      self->destroy = destroy;
      self->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
      self->refresh_hz = refresh_hz ? MIN (refresh_hz, MAX_HZ) : DEFAULT_HZ;
      self->period_us = G_USEC_PER_SEC / self->refresh_hz;
      mode_changed (self);
      if (self->cursor)
        self->pending |= VR_DISPLAY_UPDATE_CURSOR | VR_DISPLAY_UPDATE_CURSOR_POSITION;
      /* The first tick at once: it delivers the mode. */
      self->timer = g_source_new (&timer_funcs, sizeof (GSource));
      g_source_set_ready_time (self->timer, 0);
      g_source_set_callback (self->timer, refresh_tick, display_ref (self), timer_destroy_notify);
      g_source_set_static_name (self->timer, "[vireo] display refresh");
      g_source_attach (self->timer, self->io_context);
    }
  else if (listener && destroy)
    {
      /* Disposed: nothing will ever call it. */
      g_mutex_unlock (&self->lock);
      destroy (user_data);
      g_mutex_lock (&self->lock);
    }
  g_mutex_unlock (&self->lock);
  if (old_destroy)
    old_destroy (old_data);
}

VrDisplayMode
vr_display_get_mode (VrDisplay *self)
{
  VrDisplayMode mode;

  g_mutex_lock (&self->lock);
  mode = active_mode (self, active_source (self));
  g_mutex_unlock (&self->lock);
  return mode;
}

const uint8_t *
vr_display_map (VrDisplay     *self,
                VrDisplayMode *mode)
{
  const uint8_t *pixels = NULL;
  GBytes *keep = NULL;
  int active;

  g_return_val_if_fail (self != NULL, NULL);

  g_mutex_lock (&self->lock);
  active = active_source (self);
  if (mode)
    *mode = active_mode (self, active);
  if (active >= 0)
    {
      pixels = self->sources[active].pixels;
      keep = self->sources[active].keepalive;
    }
  g_ptr_array_add (self->mapped, keep ? g_bytes_ref (keep) : NULL);
  g_mutex_unlock (&self->lock);
  return pixels;
}

void
vr_display_unmap (VrDisplay *self)
{
  GBytes *keep = NULL;

  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  if (self->mapped->len > 0)
    keep = g_ptr_array_steal_index (self->mapped, self->mapped->len - 1);
  g_mutex_unlock (&self->lock);
  if (keep)
    g_bytes_unref (keep);
}

GBytes *
vr_display_snapshot (VrDisplay     *self,
                     VrDisplayMode *mode)
{
  VrDisplayMode m;
  const uint8_t *src;
  uint8_t *out;
  unsigned bpp;
  int active;

  g_return_val_if_fail (self != NULL, NULL);

  g_mutex_lock (&self->lock);
  active = active_source (self);
  m = active_mode (self, active);
  if (active < 0)
    {
      g_mutex_unlock (&self->lock);
      if (mode)
        *mode = m;
      return NULL;
    }
  src = self->sources[active].pixels;
  bpp = vr_pixel_format_bpp (m.format);
  out = g_malloc ((gsize) m.width * m.height * 4);
  for (uint32_t y = 0; y < m.height; y++)
    {
      const uint8_t *s = src + (gsize) y * m.stride;
      uint8_t *d = out + (gsize) y * m.width * 4;

      if (m.format == VR_PIXEL_FORMAT_XRGB8888)
        {
          memcpy (d, s, (gsize) m.width * 4);
          continue;
        }
      for (uint32_t x = 0; x < m.width; x++, s += bpp, d += 4)
        {
          if (m.format == VR_PIXEL_FORMAT_RGB888)
            {
              d[0] = s[0];
              d[1] = s[1];
              d[2] = s[2];
            }
          else
            {
              unsigned v = s[0] | (s[1] << 8);
              unsigned r = (v >> 11) & 0x1f, g = (v >> 5) & 0x3f, b = v & 0x1f;

              d[0] = (uint8_t) ((b << 3) | (b >> 2));
              d[1] = (uint8_t) ((g << 2) | (g >> 4));
              d[2] = (uint8_t) ((r << 3) | (r >> 2));
            }
          d[3] = 0xff;
        }
    }
  g_mutex_unlock (&self->lock);

  m.stride = m.width * 4;
  if (mode)
    {
      *mode = m;
      mode->format = VR_PIXEL_FORMAT_XRGB8888;
    }
  return g_bytes_new_take (out, (gsize) m.width * m.height * 4);
}

bool
vr_display_get_cursor (VrDisplay  *self,
                       GBytes    **pixels,
                       uint32_t   *width,
                       uint32_t   *height,
                       int32_t    *hot_x,
                       int32_t    *hot_y)
{
  bool has;

  g_return_val_if_fail (self != NULL, false);

  g_mutex_lock (&self->lock);
  has = self->cursor != NULL;
  if (pixels)
    *pixels = has ? g_bytes_ref (self->cursor) : NULL;
  if (width)
    *width = has ? self->cursor_width : 0;
  if (height)
    *height = has ? self->cursor_height : 0;
  if (hot_x)
    *hot_x = has ? self->cursor_hot_x : 0;
  if (hot_y)
    *hot_y = has ? self->cursor_hot_y : 0;
  g_mutex_unlock (&self->lock);
  return has;
}

void
vr_display_get_cursor_position (VrDisplay *self,
                                int32_t   *x,
                                int32_t   *y)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->lock);
  if (x)
    *x = self->cursor_x;
  if (y)
    *y = self->cursor_y;
  g_mutex_unlock (&self->lock);
}

void
vr_display_set_preferred_size (VrDisplay *self,
                               uint32_t   width,
                               uint32_t   height)
{
  const VrDisplaySourceOps *ops[VR_DISPLAY_N_SOURCES] = { NULL };
  gpointer opaque[VR_DISPLAY_N_SOURCES] = { NULL };

  g_return_if_fail (self != NULL);

  width = CLAMP (width, 64u, (uint32_t) VR_DISPLAY_MAX_WIDTH);
  height = CLAMP (height, 64u, (uint32_t) VR_DISPLAY_MAX_HEIGHT);
  g_mutex_lock (&self->lock);
  if (width == self->preferred_width && height == self->preferred_height)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->preferred_width = width;
  self->preferred_height = height;
  for (unsigned i = 0; i < VR_DISPLAY_N_SOURCES; i++)
    if (self->sources[i].registered && self->sources[i].ops
        && self->sources[i].ops->preferred_size)
      {
        ops[i] = self->sources[i].ops;
        opaque[i] = self->sources[i].opaque;
      }
  g_mutex_unlock (&self->lock);

  for (unsigned i = 0; i < VR_DISPLAY_N_SOURCES; i++)
    if (ops[i])
      ops[i]->preferred_size (opaque[i], width, height);
}

uint64_t
vr_display_get_damaged_rows (VrDisplay *self)
{
  uint64_t v;

  g_mutex_lock (&self->lock);
  v = self->damaged_rows;
  g_mutex_unlock (&self->lock);
  return v;
}

uint64_t
vr_display_get_updates (VrDisplay *self)
{
  uint64_t v;

  g_mutex_lock (&self->lock);
  v = self->updates;
  g_mutex_unlock (&self->lock);
  return v;
}

/* ---- EDID -------------------------------------------------------------------------------- */

static void
edid_detailed_timing (uint8_t  *d,
                      uint32_t  width,
                      uint32_t  height)
{
  uint32_t hfront, hsync, hblank, vfront, vsync, vblank, clock;
  bool dmt = width == 1024 && height == 768;

  if (dmt)
    {
      /* VESA DMT 1024x768@60: 65 MHz, negative syncs. */
      hfront = 24, hsync = 136, hblank = 320;
      vfront = 3, vsync = 6, vblank = 38;
      clock = 6500;
    }
  else
    {
      /* CVT reduced blanking, roughly: fixed horizontal blank, vertical blank ≥ 460 µs. */
      hfront = 48, hsync = 32, hblank = 160;
      vfront = 3, vsync = 6;
      vblank = MAX (23u, (height * 3 + 99) / 100 + 12);
      clock = (uint32_t) (((uint64_t) (width + hblank) * (height + vblank) * 60 + 5000) / 10000);
      clock = MIN (clock, 65535u);
    }

  d[0] = (uint8_t) clock;
  d[1] = (uint8_t) (clock >> 8);
  d[2] = (uint8_t) width;
  d[3] = (uint8_t) hblank;
  d[4] = (uint8_t) (((width >> 8) & 0xf) << 4 | ((hblank >> 8) & 0xf));
  d[5] = (uint8_t) height;
  d[6] = (uint8_t) vblank;
  d[7] = (uint8_t) (((height >> 8) & 0xf) << 4 | ((vblank >> 8) & 0xf));
  d[8] = (uint8_t) hfront;
  d[9] = (uint8_t) hsync;
  d[10] = (uint8_t) ((vfront & 0xf) << 4 | (vsync & 0xf));
  d[11] = (uint8_t) (((hfront >> 8) & 3) << 6 | ((hsync >> 8) & 3) << 4
                     | ((vfront >> 4) & 3) << 2 | ((vsync >> 4) & 3));
  /* Image size in mm at about 96 dpi. */
  {
    uint32_t wmm = MIN (width * 254 / 960, 4095u), hmm = MIN (height * 254 / 960, 4095u);

    d[12] = (uint8_t) wmm;
    d[13] = (uint8_t) hmm;
    d[14] = (uint8_t) (((wmm >> 8) & 0xf) << 4 | ((hmm >> 8) & 0xf));
  }
  d[15] = 0;
  d[16] = 0;
  d[17] = dmt ? 0x18 : 0x1a;   /* digital separate sync; CVT-RB: +hsync, -vsync */
}

static void
edid_text (uint8_t    *d,
           uint8_t     tag,
           const char *text)
{
  size_t len = strlen (text);

  memset (d, 0, 18);
  d[3] = tag;
  memset (d + 5, ' ', 13);
  memcpy (d + 5, text, MIN (len, 13u));
  if (len < 13)
    d[5 + len] = '\n';
}

void
vr_display_make_edid (uint32_t width,
                      uint32_t height,
                      uint8_t  edid[VR_EDID_SIZE])
{
  /* sRGB primaries and D65 white, as 10-bit fractions: rx ry gx gy bx by wx wy. */
  static const uint16_t chroma[8] = { 655, 338, 307, 614, 154, 61, 320, 337 };
  /* Standard timings: width / 8 - 31, aspect << 6 | (refresh - 60). */
  static const uint8_t standard[16] = {
    0x81, 0x80,   /* 1280x1024 5:4 */
    0x81, 0x00,   /* 1280x800 16:10 */
    0x95, 0x00,   /* 1440x900 16:10 */
    0xa9, 0x40,   /* 1600x1200 4:3 */
    0xb3, 0x00,   /* 1680x1050 16:10 */
    0xd1, 0xc0,   /* 1920x1080 16:9 */
    0xd1, 0x00,   /* 1920x1200 16:10 */
    0x81, 0xc0,   /* 1280x720 16:9 */
  };
  uint8_t sum = 0;

  width = CLAMP (width, 64u, 4095u);
  height = CLAMP (height, 64u, 4095u);

  memset (edid, 0, VR_EDID_SIZE);
  memcpy (edid, "\x00\xff\xff\xff\xff\xff\xff\x00", 8);
  edid[8] = 0x59;    /* manufacturer "VIR" */
  edid[9] = 0x32;
  edid[10] = 0x01;   /* product 0x0001 */
  edid[12] = 0x01;   /* serial 1 */
  edid[16] = 1;      /* week 1 of 2024 */
  edid[17] = 2024 - 1990;
  edid[18] = 1;      /* EDID 1.4 */
  edid[19] = 4;
  edid[20] = 0x80;   /* digital input */
  edid[21] = (uint8_t) MAX (1u, width * 254 / 96000);   /* cm, at about 96 dpi */
  edid[22] = (uint8_t) MAX (1u, height * 254 / 96000);
  edid[23] = 120;    /* gamma 2.2 */
  edid[24] = 0x06;   /* sRGB, preferred timing is native */
  edid[25] = (uint8_t) ((chroma[0] & 3) << 6 | (chroma[1] & 3) << 4 | (chroma[2] & 3) << 2
                        | (chroma[3] & 3));
  edid[26] = (uint8_t) ((chroma[4] & 3) << 6 | (chroma[5] & 3) << 4 | (chroma[6] & 3) << 2
                        | (chroma[7] & 3));
  for (unsigned i = 0; i < 8; i++)
    edid[27 + i] = (uint8_t) (chroma[i] >> 2);
  edid[35] = 0x21;   /* 640x480@60, 800x600@60 */
  edid[36] = 0x08;   /* 1024x768@60 */
  memcpy (edid + 38, standard, sizeof standard);

  edid_detailed_timing (edid + 54, width, height);
  /* Range limits: 50-125 Hz vertical, 30-160 kHz horizontal, 650 MHz; no formula. */
  memcpy (edid + 72, "\x00\x00\x00\xfd\x00\x32\x7d\x1e\xa0\x41\x00\x0a\x20\x20\x20\x20\x20\x20",
          18);
  edid_text (edid + 90, 0xfc, "Vireo");
  edid_text (edid + 108, 0xff, "1");
  edid[126] = 0;     /* no extensions */
  for (unsigned i = 0; i < VR_EDID_SIZE - 1; i++)
    sum = (uint8_t) (sum + edid[i]);
  edid[127] = (uint8_t) (0x100 - sum);
}
