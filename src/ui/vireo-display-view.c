/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The guest picture. Two ways to draw it; either way the work happens in snapshot(), once
 * per frame of the widget's frame clock, for the damage that arrived since the last frame:
 *
 *  - GL (when the window renders with GSK's GL renderer): one GL texture of the guest mode,
 *    in a GdkGLContext of our own that shares objects with the renderer's. The damaged rows
 *    go from the engine's zero-copy mapping into it with glTexSubImage2D
 *    (GL_UNPACK_ROW_LENGTH = stride / 4; XRGB8888 is GL_BGRA on desktop GL, GL_RGBA plus a
 *    red/blue texture swizzle on GLES; a swizzle also reads the X byte as alpha 1), and GSK
 *    gets a new GdkGLTexture for the same GL texture, which it draws straight into the
 *    window: no offscreen pass, no copy. (GtkGLArea, used before, cost a full-size clear and
 *    draw into its own framebuffer on top of GSK's.) A frame without damage uploads nothing
 *    and keeps the previous GdkTexture, so GSK sees an unchanged node; while the guest is
 *    idle GTK does not redraw at all.
 *
 *  - Fallback (GSK renders without GL, GL fails, or force-fallback): a few XRGB8888 shadow
 *    buffers (alpha forced to 0xff), each remembering the rows it lacks. The damaged rows
 *    go into one that no live texture uses, and it becomes the next GdkMemoryTexture
 *    without another copy of the frame.
 *
 * Either way "uploaded-rows" counts the damaged guest rows that went to the texture, for the
 * tests.
 *
 * Only the letterbox bars are painted around the picture, never a background under it: GSK
 * (4.8) has no occlusion culling, and on a software rasterizer every full-size layer costs.
 *
 * Geometry: in FIT mode the picture is the largest rectangle with the guest's aspect ratio
 * that fits the widget, centred (black bars elsewhere), computed in device pixels so that
 * a picture that happens to fit exactly is drawn 1:1 (and then sampled GL_NEAREST). In
 * ORIGINAL mode one guest pixel is one device pixel (HiDPI: the widget asks for mode /
 * scale-factor logical pixels), centred when the widget is bigger.
 */

#define G_LOG_DOMAIN "vireo-display"

#include "config.h"

#include <epoxy/gl.h>
#include <string.h>

#include "vireo-display-view.h"

#define N_SHADOWS 3

/* A GL texture shared by the GdkGLTextures made of it; deleted with the last of them. */
typedef struct
{
  int           refs;
  GdkGLContext *context;
  GLuint        id;
} GlTexture;

/* A fallback shadow buffer: referenced by the view and by each GBytes that wraps it. */
typedef struct
{
  int      refs;
  gboolean busy;      /* a GBytes (so a GdkMemoryTexture) wraps the pixels */
  guint8  *pixels;    /* XRGB8888, stride 4 * width, alpha 0xff */
  guint8  *stale;     /* per row: TRUE when the guest changed it since it was copied here */
} Shadow;

typedef struct
{
  guint y0;
  guint y1;
} RowSpan;

struct _VireoDisplayView
{
  GtkWidget       parent_instance;

  VrDisplay      *display;
  GWeakRef       *listener_ref;
  VireoScaleMode  scale_mode;
  gboolean        force_fallback;

  VrDisplayMode   mode;         /* the mode the listener last reported */
  gboolean        full_damage;  /* everything must be uploaded */
  guint8         *dirty;        /* per row of the mode: damaged since the last upload */
  guint           dirty_height;
  gboolean        any_dirty;
  GArray         *spans;        /* RowSpan, scratch for one upload */
  guint64         uploaded_rows;
  gboolean        realized;

  /* GL */
  GdkGLContext   *gl_context;   /* NULL: drawing through the fallback */
  gboolean        gl_es;
  gboolean        gl_swizzle;   /* texture swizzles (GL 3.3, GLES 3.0) */
  gboolean        gl_row_length; /* GL_UNPACK_ROW_LENGTH (not in GLES 2) */
  GlTexture      *gl_tex;
  GLint           gl_filter;
  GdkTexture     *gl_frame;     /* the GdkGLTexture of the last upload */
  VrDisplayMode   tex_mode;     /* what gl_tex holds */
  guint8         *staging;      /* rows converted for GL when they cannot go as they are */
  gsize           staging_size;

  /* fallback */
  Shadow         *shadows[N_SHADOWS];
  VrDisplayMode   shadow_mode;
  GdkTexture     *texture_fb;
};

G_DEFINE_FINAL_TYPE (VireoDisplayView, vireo_display_view, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_UPDATE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum
{
  PROP_0,
  PROP_UPLOADED_ROWS,
  PROP_USES_GL,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* -------------------------------------------------------------------------------------------
 * Geometry
 */

/* The picture's rectangle in device pixels of a @dw x @dh drawing area. */
static gboolean
picture_rect (VireoDisplayView *self,
              int               dw,
              int               dh,
              int              *rx,
              int              *ry,
              int              *rw,
              int              *rh)
{
  int mw = (int) self->mode.width, mh = (int) self->mode.height;
  int pw, ph;

  if (self->mode.format == VR_PIXEL_FORMAT_NONE || mw <= 0 || mh <= 0 || dw <= 0 || dh <= 0)
    return FALSE;

  if (self->scale_mode == VIREO_SCALE_MODE_ORIGINAL)
    {
      pw = mw;
      ph = mh;
    }
  else if ((gint64) dw * mh > (gint64) dh * mw)
    {
      /* wider than the guest: bars left and right */
      ph = dh;
      pw = (int) (((gint64) dh * mw + mh / 2) / mh);
    }
  else
    {
      pw = dw;
      ph = (int) (((gint64) dw * mh + mw / 2) / mw);
    }

  *rw = MAX (pw, 1);
  *rh = MAX (ph, 1);
  *rx = (dw - *rw) / 2;
  *ry = (dh - *rh) / 2;
  return TRUE;
}

gboolean
vireo_display_view_get_picture_area (VireoDisplayView *self,
                                     graphene_rect_t  *area)
{
  int scale, rx, ry, rw, rh;

  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), FALSE);

  scale = gtk_widget_get_scale_factor (GTK_WIDGET (self));
  if (!picture_rect (self, gtk_widget_get_width (GTK_WIDGET (self)) * scale,
                     gtk_widget_get_height (GTK_WIDGET (self)) * scale, &rx, &ry, &rw, &rh))
    return FALSE;
  graphene_rect_init (area, (float) rx / scale, (float) ry / scale, (float) rw / scale,
                      (float) rh / scale);
  return TRUE;
}

gboolean
vireo_display_view_to_guest (VireoDisplayView *self,
                             double            x,
                             double            y,
                             double           *guest_x,
                             double           *guest_y)
{
  int scale, rx, ry, rw, rh;

  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), FALSE);

  scale = gtk_widget_get_scale_factor (GTK_WIDGET (self));
  if (!picture_rect (self, gtk_widget_get_width (GTK_WIDGET (self)) * scale,
                     gtk_widget_get_height (GTK_WIDGET (self)) * scale, &rx, &ry, &rw, &rh))
    return FALSE;
  *guest_x = (x * scale - rx) * self->mode.width / rw;
  *guest_y = (y * scale - ry) * self->mode.height / rh;
  return TRUE;
}

/* -------------------------------------------------------------------------------------------
 * Damage: one flag per row of the mode
 */

static void
reset_damage (VireoDisplayView *self)
{
  if (self->dirty != NULL && self->dirty_height > 0)
    memset (self->dirty, 0, self->dirty_height);
  self->any_dirty = FALSE;
  self->full_damage = TRUE;
}

static void
add_damage (VireoDisplayView *self,
            const VrRect     *r)
{
  guint height = self->mode.height;
  gint64 y0, y1;

  if (self->full_damage || r->width <= 0 || r->height <= 0)
    return;
  if (self->dirty_height != height)
    {
      g_free (self->dirty);
      self->dirty = g_malloc0 (height);
      self->dirty_height = height;
      self->full_damage = TRUE;
      return;
    }
  y0 = MAX (r->y, 0);
  y1 = MIN ((gint64) r->y + r->height, (gint64) height);
  if (y1 <= y0)
    return;
  memset (self->dirty + y0, 1, (gsize) (y1 - y0));
  self->any_dirty = TRUE;
}

/* The damaged rows (all of them after a mode change) as sorted, disjoint [y0, y1) spans
 * within @height, in self->spans; clears the damage. Returns the number of rows. */
static guint
take_damaged_rows (VireoDisplayView *self,
                   guint             height)
{
  guint rows = 0;

  g_array_set_size (self->spans, 0);
  if (self->full_damage || self->dirty_height != height)
    {
      RowSpan all = { 0, height };

      if (height > 0)
        g_array_append_val (self->spans, all);
      rows = height;
    }
  else if (self->any_dirty)
    {
      for (guint y = 0; y < height; y++)
        {
          RowSpan span;

          if (!self->dirty[y])
            continue;
          span.y0 = y;
          while (y < height && self->dirty[y])
            y++;
          span.y1 = y;
          g_array_append_val (self->spans, span);
          rows += span.y1 - span.y0;
        }
    }

  if (self->dirty_height != height)
    {
      g_free (self->dirty);
      self->dirty = g_malloc0 (height);
      self->dirty_height = height;
    }
  else if (self->any_dirty)
    memset (self->dirty, 0, height);
  self->any_dirty = FALSE;
  self->full_damage = FALSE;
  return rows;
}

static gboolean
mode_equal (const VrDisplayMode *a,
            const VrDisplayMode *b)
{
  return a->format == b->format && a->width == b->width && a->height == b->height
         && a->stride == b->stride;
}

/* One row of @mode at @src as 32-bit pixels into @dst: B G R A in memory, or R G B A with
 * @swap_rb; the fourth byte is 0xff with @force_alpha (else whatever the guest has there for
 * XRGB8888, 0xff for the other formats). */
static void
convert_row (const VrDisplayMode *mode,
             const guint8        *src,
             guint8              *dst,
             gboolean             force_alpha,
             gboolean             swap_rb)
{
  guint b = swap_rb ? 2 : 0, r = swap_rb ? 0 : 2;

  switch (mode->format)
    {
    case VR_PIXEL_FORMAT_XRGB8888:
      if (!swap_rb)
        {
          memcpy (dst, src, (gsize) mode->width * 4);
          if (force_alpha)
            for (guint x = 0; x < mode->width; x++)
              dst[x * 4 + 3] = 0xff;
          break;
        }
      for (guint x = 0; x < mode->width; x++)
        {
          dst[x * 4 + b] = src[x * 4 + 0];
          dst[x * 4 + 1] = src[x * 4 + 1];
          dst[x * 4 + r] = src[x * 4 + 2];
          dst[x * 4 + 3] = force_alpha ? 0xff : src[x * 4 + 3];
        }
      break;
    case VR_PIXEL_FORMAT_RGB888:
      for (guint x = 0; x < mode->width; x++)
        {
          dst[x * 4 + b] = src[x * 3 + 0];
          dst[x * 4 + 1] = src[x * 3 + 1];
          dst[x * 4 + r] = src[x * 3 + 2];
          dst[x * 4 + 3] = 0xff;
        }
      break;
    case VR_PIXEL_FORMAT_RGB565:
      for (guint x = 0; x < mode->width; x++)
        {
          guint16 p = (guint16) (src[x * 2] | (src[x * 2 + 1] << 8));
          guint pr = (p >> 11) & 0x1f, pg = (p >> 5) & 0x3f, pb = p & 0x1f;

          dst[x * 4 + b] = (guint8) ((pb << 3) | (pb >> 2));
          dst[x * 4 + 1] = (guint8) ((pg << 2) | (pg >> 4));
          dst[x * 4 + r] = (guint8) ((pr << 3) | (pr >> 2));
          dst[x * 4 + 3] = 0xff;
        }
      break;
    case VR_PIXEL_FORMAT_NONE:
    default:
      memset (dst, 0, (gsize) mode->width * 4);
      break;
    }
}

static gboolean
mode_is_sane (const VrDisplayMode *mode)
{
  guint bpp = mode->format == VR_PIXEL_FORMAT_XRGB8888 ? 4
              : mode->format == VR_PIXEL_FORMAT_RGB888 ? 3
              : mode->format == VR_PIXEL_FORMAT_RGB565 ? 2 : 0;

  return bpp != 0 && mode->width > 0 && mode->height > 0 && mode->width <= 16384
         && mode->height <= 16384 && mode->stride >= (guint64) mode->width * bpp;
}

/* -------------------------------------------------------------------------------------------
 * Fallback: GdkMemoryTexture over shadow buffers
 */

static Shadow *
shadow_new (const VrDisplayMode *mode)
{
  Shadow *s = g_new0 (Shadow, 1);

  s->refs = 1;
  s->pixels = g_malloc0 ((gsize) mode->width * mode->height * 4);
  s->stale = g_malloc (mode->height);
  memset (s->stale, 1, mode->height);
  return s;
}

static void
shadow_unref (Shadow *s)
{
  if (--s->refs > 0)
    return;
  g_free (s->pixels);
  g_free (s->stale);
  g_free (s);
}

/* The GBytes that wrapped @data is gone: its texture is no more. */
static void
shadow_release (gpointer data)
{
  Shadow *s = data;

  s->busy = FALSE;
  shadow_unref (s);
}

static void
clear_shadows (VireoDisplayView *self)
{
  for (guint i = 0; i < N_SHADOWS; i++)
    g_clear_pointer (&self->shadows[i], shadow_unref);
  memset (&self->shadow_mode, 0, sizeof self->shadow_mode);
}

/* A shadow buffer no texture uses, or NULL. */
static Shadow *
free_shadow (VireoDisplayView *self)
{
  for (guint i = 0; i < N_SHADOWS; i++)
    {
      if (self->shadows[i] == NULL)
        self->shadows[i] = shadow_new (&self->shadow_mode);
      if (!self->shadows[i]->busy)
        return self->shadows[i];
    }
  return NULL;
}

/* Copies the damage into a free shadow buffer and makes it the new texture_fb. */
static void
update_fallback (VireoDisplayView *self)
{
  g_autoptr (GBytes) bytes = NULL;
  const guint8 *pixels;
  VrDisplayMode mode;
  Shadow *s;
  guint rows;

  pixels = vr_display_map (self->display, &mode);
  if (pixels == NULL || !mode_is_sane (&mode))
    {
      if (pixels)
        vr_display_unmap (self->display);
      g_clear_object (&self->texture_fb);
      return;
    }

  if (!mode_equal (&mode, &self->shadow_mode))
    {
      clear_shadows (self);
      g_clear_object (&self->texture_fb);
      self->shadow_mode = mode;
      self->full_damage = TRUE;
    }

  rows = take_damaged_rows (self, mode.height);
  if (rows == 0 && self->texture_fb != NULL)
    {
      vr_display_unmap (self->display);
      return;
    }

  /* Every buffer now lacks these rows; the one we fill gets them, and whatever else it
   * missed since it was last used. */
  for (guint i = 0; i < N_SHADOWS; i++)
    if (self->shadows[i] != NULL)
      for (guint k = 0; k < self->spans->len; k++)
        {
          const RowSpan *span = &g_array_index (self->spans, RowSpan, k);

          memset (self->shadows[i]->stale + span->y0, 1, span->y1 - span->y0);
        }

  s = free_shadow (self);
  if (s == NULL)
    {
      /* Every buffer is still on screen (a renderer that holds more frames than usual):
       * replace one; the old one lives on until its texture goes. */
      shadow_unref (self->shadows[0]);
      self->shadows[0] = shadow_new (&mode);
      s = self->shadows[0];
    }

  for (guint y = 0; y < mode.height; y++)
    if (s->stale[y])
      {
        convert_row (&mode, pixels + (gsize) y * mode.stride,
                     s->pixels + (gsize) y * mode.width * 4, TRUE, FALSE);
        s->stale[y] = FALSE;
      }
  vr_display_unmap (self->display);
  self->uploaded_rows += rows;

  s->busy = TRUE;
  s->refs++;
  bytes = g_bytes_new_with_free_func (s->pixels, (gsize) mode.width * mode.height * 4,
                                      shadow_release, s);
  g_clear_object (&self->texture_fb);
  self->texture_fb = gdk_memory_texture_new ((int) mode.width, (int) mode.height,
                                             GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes,
                                             (gsize) mode.width * 4);
  if (rows > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UPLOADED_ROWS]);
}

/* -------------------------------------------------------------------------------------------
 * GL
 */

static void
gl_texture_unref (gpointer data)
{
  GlTexture *t = data;

  if (--t->refs > 0)
    return;

  /* Possibly from inside GSK's render (it drops the previous frame's nodes there): put its
   * context back afterwards. */
  if (t->id != 0)
    {
      GdkGLContext *previous = gdk_gl_context_get_current ();

      if (previous != NULL)
        g_object_ref (previous);
      gdk_gl_context_make_current (t->context);
      glDeleteTextures (1, &t->id);
      if (previous != NULL)
        {
          gdk_gl_context_make_current (previous);
          g_object_unref (previous);
        }
      else
        gdk_gl_context_clear_current ();
    }
  g_object_unref (t->context);
  g_free (t);
}

static void
gl_drop_texture (VireoDisplayView *self)
{
  g_clear_object (&self->gl_frame);
  g_clear_pointer (&self->gl_tex, gl_texture_unref);
  memset (&self->tex_mode, 0, sizeof self->tex_mode);
}

/* A texture for @mode, bound; the whole picture is to be uploaded. */
static void
gl_new_texture (VireoDisplayView    *self,
                const VrDisplayMode *mode)
{
  GlTexture *t = g_new0 (GlTexture, 1);

  gl_drop_texture (self);
  t->refs = 1;
  t->context = g_object_ref (self->gl_context);
  glGenTextures (1, &t->id);
  self->gl_tex = t;
  self->tex_mode = *mode;
  self->full_damage = TRUE;

  glActiveTexture (GL_TEXTURE0);
  glBindTexture (GL_TEXTURE_2D, t->id);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  self->gl_filter = GL_NEAREST;
  if (self->gl_swizzle)
    {
      /* The X byte is not alpha; GLES takes the bytes as R G B A, so red and blue swap. */
      glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_SWIZZLE_R, self->gl_es ? GL_BLUE : GL_RED);
      glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_SWIZZLE_B, self->gl_es ? GL_RED : GL_BLUE);
      glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_SWIZZLE_A, GL_ONE);
    }
  glTexImage2D (GL_TEXTURE_2D, 0, GL_RGBA8, (GLsizei) mode->width, (GLsizei) mode->height, 0,
                self->gl_es ? GL_RGBA : GL_BGRA, GL_UNSIGNED_BYTE, NULL);
}

/* Uploads the damaged rows (all of them after a mode change) from the mapped scanout and
 * makes a new gl_frame when anything changed. Called with nothing current; leaves
 * self->gl_context current. */
static void
gl_update (VireoDisplayView *self)
{
  const guint8 *pixels;
  VrDisplayMode mode;
  GLenum format;
  gboolean direct, swap_rb;
  guint rows;

  pixels = vr_display_map (self->display, &mode);
  if (pixels == NULL || !mode_is_sane (&mode))
    {
      if (pixels)
        vr_display_unmap (self->display);
      g_clear_object (&self->gl_frame);
      return;
    }

  gdk_gl_context_make_current (self->gl_context);
  if (self->gl_tex == NULL || !mode_equal (&mode, &self->tex_mode))
    gl_new_texture (self, &mode);

  rows = take_damaged_rows (self, mode.height);
  if (rows == 0 && self->gl_frame != NULL)
    {
      vr_display_unmap (self->display);
      return;
    }

  glActiveTexture (GL_TEXTURE0);
  glBindTexture (GL_TEXTURE_2D, self->gl_tex->id);
  format = self->gl_es ? GL_RGBA : GL_BGRA;
  swap_rb = self->gl_es && !self->gl_swizzle;
  direct = mode.format == VR_PIXEL_FORMAT_XRGB8888 && mode.stride % 4 == 0 && self->gl_swizzle
           && (self->gl_row_length || mode.stride == mode.width * 4);
  glPixelStorei (GL_UNPACK_ALIGNMENT, 4);
  if (self->gl_row_length)
    glPixelStorei (GL_UNPACK_ROW_LENGTH, direct ? (GLint) (mode.stride / 4) : 0);
  for (guint i = 0; i < self->spans->len; i++)
    {
      const RowSpan *s = &g_array_index (self->spans, RowSpan, i);
      guint n = s->y1 - s->y0;
      const guint8 *src;

      if (direct)
        src = pixels + (gsize) s->y0 * mode.stride;
      else
        {
          gsize need = (gsize) n * mode.width * 4;

          if (self->staging_size < need)
            {
              g_free (self->staging);
              self->staging = g_malloc (need);
              self->staging_size = need;
            }
          for (guint y = 0; y < n; y++)
            convert_row (&mode, pixels + (gsize) (s->y0 + y) * mode.stride,
                         self->staging + (gsize) y * mode.width * 4, !self->gl_swizzle,
                         swap_rb);
          src = self->staging;
        }
      glTexSubImage2D (GL_TEXTURE_2D, 0, 0, (GLint) s->y0, (GLsizei) mode.width, (GLsizei) n,
                       format, GL_UNSIGNED_BYTE, src);
    }
  if (self->gl_row_length)
    glPixelStorei (GL_UNPACK_ROW_LENGTH, 0);
  vr_display_unmap (self->display);
  /* The renderer's context reads the texture next. */
  glFlush ();

  self->uploaded_rows += rows;
  self->gl_tex->refs++;
  g_clear_object (&self->gl_frame);
  self->gl_frame = gdk_gl_texture_new (self->gl_context, self->gl_tex->id, (int) mode.width,
                                       (int) mode.height, gl_texture_unref, self->gl_tex);
  if (rows > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UPLOADED_ROWS]);
}

/* Sampling: nearest when the picture is exactly the mode's size (the guest's pixels bit for
 * bit), else linear. */
static void
gl_set_filter (VireoDisplayView *self,
               GLint             filter)
{
  if (self->gl_tex == NULL || self->gl_filter == filter)
    return;
  gdk_gl_context_make_current (self->gl_context);
  glBindTexture (GL_TEXTURE_2D, self->gl_tex->id);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
  glFlush ();
  self->gl_filter = filter;
}

static void
gl_teardown (VireoDisplayView *self)
{
  if (self->gl_context == NULL)
    return;
  gl_drop_texture (self);
  if (gdk_gl_context_get_current () == self->gl_context)
    gdk_gl_context_clear_current ();
  g_clear_object (&self->gl_context);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
}

/* GSK's GL renderer? (Its header cannot be included on its own with GTK 4.8.) */
static gboolean
renderer_is_gl (GskRenderer *renderer)
{
  GType gl = g_type_from_name ("GskGLRenderer");

  return renderer != NULL && gl != 0 && G_TYPE_CHECK_INSTANCE_TYPE (renderer, gl);
}

/* On a realized widget: GL when the window's renderer is GSK's GL renderer (another
 * renderer would have to read every GdkGLTexture back). FALSE: use the fallback. */
static gboolean
gl_setup (VireoDisplayView *self)
{
  GtkNative *native = gtk_widget_get_native (GTK_WIDGET (self));
  GskRenderer *renderer = native ? gtk_native_get_renderer (native) : NULL;
  g_autoptr (GdkGLContext) context = NULL;
  g_autoptr (GError) error = NULL;
  int major = 0, minor = 0, version;

  if (self->force_fallback || !renderer_is_gl (renderer))
    return FALSE;

  context = gdk_surface_create_gl_context (gtk_native_get_surface (native), &error);
  if (context == NULL || !gdk_gl_context_realize (context, &error))
    {
      g_info ("no GL (%s): drawing through GdkMemoryTexture", error->message);
      return FALSE;
    }
  gdk_gl_context_make_current (context);
  gdk_gl_context_get_version (context, &major, &minor);
  version = major * 10 + minor;
  self->gl_es = gdk_gl_context_get_use_es (context);
  self->gl_swizzle = self->gl_es ? version >= 30
                                 : version >= 33 || epoxy_has_gl_extension ("GL_ARB_texture_swizzle");
  self->gl_row_length = !self->gl_es || version >= 30;
  gdk_gl_context_clear_current ();

  self->gl_context = g_steal_pointer (&context);
  self->full_damage = TRUE;
  g_clear_object (&self->texture_fb);
  clear_shadows (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
  return TRUE;
}

/* -------------------------------------------------------------------------------------------
 * The engine's listener
 */

static void
on_display_update (VrDisplay             *display,
                   const VrDisplayUpdate *update,
                   gpointer               user_data)
{
  g_autoptr (VireoDisplayView) self = g_weak_ref_get (user_data);

  if (self == NULL || self->display != display)
    return;

  if (update->flags & VR_DISPLAY_UPDATE_MODE)
    {
      gboolean size_changed = self->mode.width != update->mode.width
                              || self->mode.height != update->mode.height
                              || self->mode.format != update->mode.format;

      self->mode = update->mode;
      reset_damage (self);
      if (size_changed)
        gtk_widget_queue_resize (GTK_WIDGET (self));
    }
  if ((update->flags & VR_DISPLAY_UPDATE_DAMAGE) && update->rects != NULL)
    for (unsigned i = 0; i < update->n_rects; i++)
      add_damage (self, &update->rects[i]);

  /* The upload happens at the next frame, however many updates come before it. */
  if (update->flags & (VR_DISPLAY_UPDATE_MODE | VR_DISPLAY_UPDATE_DAMAGE))
    gtk_widget_queue_draw (GTK_WIDGET (self));

  g_signal_emit (self, signals[SIGNAL_UPDATE], 0, (guint) update->flags);
}

static void
free_weak_ref (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

static void
disconnect_source (VireoDisplayView *self)
{
  if (self->display != NULL)
    vr_display_set_listener (self->display, NULL, 0, NULL, NULL, NULL);
  self->display = NULL;
  self->listener_ref = NULL;
}

void
vireo_display_view_set_source (VireoDisplayView *self,
                               VrDisplay        *display)
{
  g_return_if_fail (VIREO_IS_DISPLAY_VIEW (self));

  if (self->display == display)
    return;

  disconnect_source (self);
  memset (&self->mode, 0, sizeof self->mode);
  reset_damage (self);
  g_clear_object (&self->texture_fb);
  g_clear_object (&self->gl_frame);

  if (display != NULL)
    {
      GWeakRef *ref = g_new0 (GWeakRef, 1);

      g_weak_ref_init (ref, self);
      self->display = display;
      self->listener_ref = ref;
      self->mode = vr_display_get_mode (display);
      vr_display_set_listener (display, g_main_context_get_thread_default (), 0,
                               on_display_update, ref, free_weak_ref);
    }

  gtk_widget_queue_resize (GTK_WIDGET (self));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

VrDisplay *
vireo_display_view_get_source (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), NULL);
  return self->display;
}

/* -------------------------------------------------------------------------------------------
 * GtkWidget
 */

static void
vireo_display_view_measure (GtkWidget      *widget,
                            GtkOrientation  orientation,
                            int             for_size,
                            int            *minimum,
                            int            *natural,
                            int            *minimum_baseline,
                            int            *natural_baseline)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);
  int scale = gtk_widget_get_scale_factor (widget);
  guint size = orientation == GTK_ORIENTATION_HORIZONTAL ? self->mode.width : self->mode.height;
  int logical = self->mode.format == VR_PIXEL_FORMAT_NONE ? 0 : (int) ((size + scale - 1) / scale);

  /* The natural size is the mode (one guest pixel per device pixel); in FIT mode the view
   * can shrink to anything. */
  *natural = logical;
  *minimum = self->scale_mode == VIREO_SCALE_MODE_ORIGINAL ? logical : 0;
}

/* Black wherever the picture is not. */
static void
append_bars (GtkSnapshot           *snapshot,
             float                  width,
             float                  height,
             const graphene_rect_t *pic)
{
  static const GdkRGBA black = { 0, 0, 0, 1 };
  float x0 = CLAMP (pic->origin.x, 0, width), y0 = CLAMP (pic->origin.y, 0, height);
  float x1 = CLAMP (pic->origin.x + pic->size.width, x0, width);
  float y1 = CLAMP (pic->origin.y + pic->size.height, y0, height);

  if (y0 > 0)
    gtk_snapshot_append_color (snapshot, &black, &GRAPHENE_RECT_INIT (0, 0, width, y0));
  if (y1 < height)
    gtk_snapshot_append_color (snapshot, &black, &GRAPHENE_RECT_INIT (0, y1, width, height - y1));
  if (x0 > 0)
    gtk_snapshot_append_color (snapshot, &black, &GRAPHENE_RECT_INIT (0, y0, x0, y1 - y0));
  if (x1 < width)
    gtk_snapshot_append_color (snapshot, &black, &GRAPHENE_RECT_INIT (x1, y0, width - x1, y1 - y0));
}

static void
vireo_display_view_snapshot (GtkWidget   *widget,
                             GtkSnapshot *snapshot)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);
  float width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  int scale = gtk_widget_get_scale_factor (widget);
  GdkTexture *texture = NULL;
  graphene_rect_t area;

  if (self->display != NULL && self->realized)
    {
      if (self->gl_context != NULL)
        {
          gl_update (self);
          texture = self->gl_frame;
        }
      else
        {
          update_fallback (self);
          texture = self->texture_fb;
        }
    }

  if (texture == NULL || !vireo_display_view_get_picture_area (self, &area))
    {
      gtk_snapshot_append_color (snapshot, &(GdkRGBA) { 0, 0, 0, 1 },
                                 &GRAPHENE_RECT_INIT (0, 0, width, height));
      return;
    }

  append_bars (snapshot, width, height, &area);
  if (self->gl_context != NULL)
    {
      gboolean exact = area.size.width * scale == gdk_texture_get_width (texture)
                       && area.size.height * scale == gdk_texture_get_height (texture);

      gl_set_filter (self, exact ? GL_NEAREST : GL_LINEAR);
      gtk_snapshot_append_texture (snapshot, texture, &area);
      return;
    }
#if GTK_CHECK_VERSION(4, 10, 0)
  {
    GskScalingFilter filter = area.size.width * scale == gdk_texture_get_width (texture)
                              ? GSK_SCALING_FILTER_NEAREST : GSK_SCALING_FILTER_LINEAR;

    gtk_snapshot_append_scaled_texture (snapshot, texture, filter, &area);
  }
#else
  gtk_snapshot_append_texture (snapshot, texture, &area);
#endif
}

static void
vireo_display_view_realize (GtkWidget *widget)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  GTK_WIDGET_CLASS (vireo_display_view_parent_class)->realize (widget);
  self->realized = TRUE;
  self->full_damage = TRUE;
  gl_setup (self);
  gtk_widget_queue_draw (widget);
}

static void
vireo_display_view_unrealize (GtkWidget *widget)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  gl_teardown (self);
  g_clear_object (&self->texture_fb);
  self->realized = FALSE;
  self->full_damage = TRUE;
  GTK_WIDGET_CLASS (vireo_display_view_parent_class)->unrealize (widget);
}

static void
vireo_display_view_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (object);

  switch (prop_id)
    {
    case PROP_UPLOADED_ROWS:
      g_value_set_uint64 (value, self->uploaded_rows);
      break;
    case PROP_USES_GL:
      g_value_set_boolean (value, vireo_display_view_get_uses_gl (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_display_view_dispose (GObject *object)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (object);

  disconnect_source (self);
  gl_teardown (self);
  g_clear_object (&self->texture_fb);
  clear_shadows (self);

  G_OBJECT_CLASS (vireo_display_view_parent_class)->dispose (object);
}

static void
vireo_display_view_finalize (GObject *object)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (object);

  g_array_unref (self->spans);
  g_free (self->dirty);
  g_free (self->staging);

  G_OBJECT_CLASS (vireo_display_view_parent_class)->finalize (object);
}

static void
vireo_display_view_class_init (VireoDisplayViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = vireo_display_view_get_property;
  object_class->dispose = vireo_display_view_dispose;
  object_class->finalize = vireo_display_view_finalize;

  widget_class->measure = vireo_display_view_measure;
  widget_class->snapshot = vireo_display_view_snapshot;
  widget_class->realize = vireo_display_view_realize;
  widget_class->unrealize = vireo_display_view_unrealize;

  properties[PROP_UPLOADED_ROWS] =
    g_param_spec_uint64 ("uploaded-rows", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_USES_GL] =
    g_param_spec_boolean ("uses-gl", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* After each engine update, with its VrDisplayUpdateFlags. */
  signals[SIGNAL_UPDATE] =
    g_signal_new ("update", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_UINT);

  gtk_widget_class_set_css_name (widget_class, "vireo-display-view");
}

static void
vireo_display_view_init (VireoDisplayView *self)
{
  self->spans = g_array_new (FALSE, FALSE, sizeof (RowSpan));
  self->full_damage = TRUE;
}

GtkWidget *
vireo_display_view_new (void)
{
  return g_object_new (VIREO_TYPE_DISPLAY_VIEW, NULL);
}

void
vireo_display_view_set_scale_mode (VireoDisplayView *self,
                                   VireoScaleMode    mode)
{
  g_return_if_fail (VIREO_IS_DISPLAY_VIEW (self));

  if (self->scale_mode == mode)
    return;
  self->scale_mode = mode;
  gtk_widget_queue_resize (GTK_WIDGET (self));
}

VireoScaleMode
vireo_display_view_get_scale_mode (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), VIREO_SCALE_MODE_FIT);
  return self->scale_mode;
}

void
vireo_display_view_set_force_fallback (VireoDisplayView *self,
                                       gboolean          force)
{
  g_return_if_fail (VIREO_IS_DISPLAY_VIEW (self));

  force = !!force;
  if (self->force_fallback == force)
    return;
  self->force_fallback = force;
  if (self->realized)
    {
      gl_teardown (self);
      g_clear_object (&self->texture_fb);
      clear_shadows (self);
      self->full_damage = TRUE;
      gl_setup (self);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
vireo_display_view_get_force_fallback (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), FALSE);
  return self->force_fallback;
}

gboolean
vireo_display_view_get_uses_gl (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), FALSE);
  return self->gl_context != NULL;
}

guint64
vireo_display_view_get_uploaded_rows (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), 0);
  return self->uploaded_rows;
}

VrDisplayMode
vireo_display_view_get_mode (VireoDisplayView *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY_VIEW (self), (VrDisplayMode) { 0 });
  return self->mode;
}
