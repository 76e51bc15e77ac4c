/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The guest picture. Two ways to draw it:
 *
 *  - GL (the normal case): a GtkGLArea child holds one texture of the guest mode. The
 *    engine's listener hands us damaged rectangles; we remember the rows they cover and, at
 *    the next render, upload exactly those rows from the zero-copy mapping with
 *    glTexSubImage2D (GL_UNPACK_ROW_LENGTH = stride / 4; XRGB8888 is GL_BGRA on desktop GL,
 *    GL_RGBA plus a swizzle in the shader on GLES). A render without damage uploads
 *    nothing, so an idle guest costs only what GTK's own redraws cost (and GTK does not
 *    redraw at all while nothing changes).
 *
 *  - Fallback (GtkGLArea could not realize, or force-fallback): the damaged rows are copied
 *    into a shadow XRGB buffer (alpha forced to 0xff) and the widget draws a new
 *    GdkMemoryTexture of it.
 *
 * Either way "uploaded-rows" counts the guest rows that went to the texture, for the tests.
 *
 * Geometry: in FIT mode the picture is the largest rectangle with the guest's aspect ratio
 * that fits the widget, centred (black bars elsewhere), computed in device pixels so that
 * a picture that happens to fit exactly is drawn 1:1. In ORIGINAL mode one guest pixel is
 * one device pixel (HiDPI: the widget asks for mode / scale-factor logical pixels), centred
 * when the widget is bigger.
 */

#define G_LOG_DOMAIN "vireo-display"

#include "config.h"

#include <epoxy/gl.h>
#include <string.h>

#include "vireo-display-view.h"

struct _VireoDisplayView
{
  GtkWidget       parent_instance;

  VrDisplay      *display;
  GWeakRef       *listener_ref;
  VireoScaleMode  scale_mode;
  gboolean        force_fallback;

  VrDisplayMode   mode;         /* the mode the listener last reported */
  gboolean        full_damage;  /* everything must be uploaded */
  GArray         *damage;       /* VrRect: damaged since the last upload */
  guint64         uploaded_rows;

  /* GL */
  GtkWidget      *gl_area;
  gboolean        gl_ready;
  gboolean        gl_es;
  GLuint          program;
  GLuint          vao;
  GLuint          vbo;
  GLuint          texture;
  GLint           swizzle_location;
  VrDisplayMode   tex_mode;     /* what the texture holds */
  guint8         *staging;      /* rows converted to XRGB for formats GL cannot take as is */
  gsize           staging_size;

  /* fallback */
  guint8         *shadow;       /* XRGB8888, stride 4 * width, alpha forced to 0xff */
  guint           fallback_tick; /* the next frame copies the damage in (coalesced) */
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

static void vireo_display_view_use_fallback (VireoDisplayView *self);

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
 * Damage
 */

typedef struct
{
  guint y0;
  guint y1;
} RowSpan;

static int
compare_spans (gconstpointer a,
               gconstpointer b)
{
  const RowSpan *sa = a, *sb = b;

  return (sa->y0 > sb->y0) - (sa->y0 < sb->y0);
}

/* The damaged rows as sorted, disjoint [y0, y1) spans within @height; clears the damage. */
static GArray *
take_damaged_rows (VireoDisplayView *self,
                   guint             height)
{
  GArray *spans = g_array_new (FALSE, FALSE, sizeof (RowSpan));
  guint out = 0;

  if (self->full_damage)
    {
      RowSpan all = { 0, height };

      if (height > 0)
        g_array_append_val (spans, all);
      self->full_damage = FALSE;
      g_array_set_size (self->damage, 0);
      return spans;
    }

  for (guint i = 0; i < self->damage->len; i++)
    {
      const VrRect *r = &g_array_index (self->damage, VrRect, i);
      gint64 y0 = MAX (r->y, 0), y1 = MIN ((gint64) r->y + MAX (r->height, 0), (gint64) height);
      RowSpan s;

      if (y1 <= y0 || r->width <= 0)
        continue;
      s.y0 = (guint) y0;
      s.y1 = (guint) y1;
      g_array_append_val (spans, s);
    }
  g_array_set_size (self->damage, 0);
  g_array_sort (spans, compare_spans);

  for (guint i = 0; i < spans->len; i++)
    {
      RowSpan *s = &g_array_index (spans, RowSpan, i);

      if (out > 0 && s->y0 <= g_array_index (spans, RowSpan, out - 1).y1)
        {
          RowSpan *last = &g_array_index (spans, RowSpan, out - 1);

          last->y1 = MAX (last->y1, s->y1);
        }
      else
        g_array_index (spans, RowSpan, out++) = *s;
    }
  g_array_set_size (spans, out);
  return spans;
}

static gboolean
mode_equal (const VrDisplayMode *a,
            const VrDisplayMode *b)
{
  return a->format == b->format && a->width == b->width && a->height == b->height
         && a->stride == b->stride;
}

/* One row of @mode at @src as XRGB8888 with alpha 0xff into @dst. */
static void
convert_row (const VrDisplayMode *mode,
             const guint8        *src,
             guint8              *dst,
             gboolean             force_alpha)
{
  switch (mode->format)
    {
    case VR_PIXEL_FORMAT_XRGB8888:
      memcpy (dst, src, (gsize) mode->width * 4);
      if (force_alpha)
        for (guint x = 0; x < mode->width; x++)
          dst[x * 4 + 3] = 0xff;
      break;
    case VR_PIXEL_FORMAT_RGB888:
      for (guint x = 0; x < mode->width; x++)
        {
          dst[x * 4 + 0] = src[x * 3 + 0];
          dst[x * 4 + 1] = src[x * 3 + 1];
          dst[x * 4 + 2] = src[x * 3 + 2];
          dst[x * 4 + 3] = 0xff;
        }
      break;
    case VR_PIXEL_FORMAT_RGB565:
      for (guint x = 0; x < mode->width; x++)
        {
          guint16 p = (guint16) (src[x * 2] | (src[x * 2 + 1] << 8));
          guint r = (p >> 11) & 0x1f, g = (p >> 5) & 0x3f, b = p & 0x1f;

          dst[x * 4 + 0] = (guint8) ((b << 3) | (b >> 2));
          dst[x * 4 + 1] = (guint8) ((g << 2) | (g >> 4));
          dst[x * 4 + 2] = (guint8) ((r << 3) | (r >> 2));
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
 * Fallback: GdkMemoryTexture
 */

static void
update_fallback (VireoDisplayView *self)
{
  g_autoptr (GArray) spans = NULL;
  g_autoptr (GBytes) bytes = NULL;
  const guint8 *pixels;
  VrDisplayMode mode;
  gsize size;

  if (self->display == NULL)
    return;

  pixels = vr_display_map (self->display, &mode);
  if (pixels == NULL || !mode_is_sane (&mode))
    {
      if (pixels)
        vr_display_unmap (self->display);
      g_clear_object (&self->texture_fb);
      gtk_widget_queue_draw (GTK_WIDGET (self));
      return;
    }

  if (!mode_equal (&mode, &self->shadow_mode) || self->shadow == NULL)
    {
      g_free (self->shadow);
      self->shadow = g_malloc0 ((gsize) mode.width * mode.height * 4);
      self->shadow_mode = mode;
      self->full_damage = TRUE;
    }

  spans = take_damaged_rows (self, mode.height);
  for (guint i = 0; i < spans->len; i++)
    {
      const RowSpan *s = &g_array_index (spans, RowSpan, i);

      for (guint y = s->y0; y < s->y1; y++)
        convert_row (&mode, pixels + (gsize) y * mode.stride,
                     self->shadow + (gsize) y * mode.width * 4, TRUE);
      self->uploaded_rows += s->y1 - s->y0;
    }
  vr_display_unmap (self->display);

  if (spans->len == 0 && self->texture_fb != NULL)
    return;

  /* GTK 4.16 could update the previous texture in place (GdkMemoryTextureBuilder with
   * update-texture and update-region); 4.8 needs a whole new immutable texture. */
  size = (gsize) mode.width * mode.height * 4;
  bytes = g_bytes_new (self->shadow, size);
  g_clear_object (&self->texture_fb);
  self->texture_fb = gdk_memory_texture_new ((int) mode.width, (int) mode.height,
                                             GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes,
                                             (gsize) mode.width * 4);
  if (spans->len > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UPLOADED_ROWS]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
fallback_tick (GtkWidget     *widget,
               GdkFrameClock *clock,
               gpointer       user_data)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  self->fallback_tick = 0;
  update_fallback (self);
  return G_SOURCE_REMOVE;
}

/* Damage that arrives within one frame is copied once, at the frame (as GL does). */
static void
queue_fallback_update (VireoDisplayView *self)
{
  if (self->fallback_tick == 0 && gtk_widget_get_realized (GTK_WIDGET (self)))
    self->fallback_tick = gtk_widget_add_tick_callback (GTK_WIDGET (self), fallback_tick,
                                                        NULL, NULL);
}

/* -------------------------------------------------------------------------------------------
 * GL
 */

static const char vertex_body[] =
  "in vec2 position;\n"
  "in vec2 uv;\n"
  "out vec2 v_uv;\n"
  "void main () { v_uv = uv; gl_Position = vec4 (position, 0.0, 1.0); }\n";

static const char fragment_body[] =
  "in vec2 v_uv;\n"
  "out vec4 color;\n"
  "uniform sampler2D tex;\n"
  "uniform int swizzle;\n"
  "void main () {\n"
  "  vec4 c = texture (tex, v_uv);\n"
  "  color = vec4 (swizzle != 0 ? c.bgr : c.rgb, 1.0);\n"
  "}\n";

static GLuint
compile_shader (GLenum       type,
                gboolean     es,
                const char  *body,
                GError     **error)
{
  const char *sources[2] = {
    es ? "#version 300 es\nprecision mediump float;\n" : "#version 150\n",
    body,
  };
  GLuint shader = glCreateShader (type);
  GLint ok = 0;

  glShaderSource (shader, 2, sources, NULL);
  glCompileShader (shader);
  glGetShaderiv (shader, GL_COMPILE_STATUS, &ok);
  if (!ok)
    {
      char log[1024] = "";

      glGetShaderInfoLog (shader, sizeof log, NULL, log);
      g_set_error (error, GDK_GL_ERROR, GDK_GL_ERROR_COMPILATION_FAILED,
                   "shader: %s", log);
      glDeleteShader (shader);
      return 0;
    }
  return shader;
}

static gboolean
gl_setup (VireoDisplayView  *self,
          GError           **error)
{
  /* x, y, u, v: a triangle strip over the viewport; the guest's top row at the top. */
  static const float quad[] = {
    -1.f, -1.f, 0.f, 1.f,
     1.f, -1.f, 1.f, 1.f,
    -1.f,  1.f, 0.f, 0.f,
     1.f,  1.f, 1.f, 0.f,
  };
  GdkGLContext *context = gtk_gl_area_get_context (GTK_GL_AREA (self->gl_area));
  GLuint vs, fs;
  GLint ok = 0, pos, uv;

  self->gl_es = gdk_gl_context_get_use_es (context);
  vs = compile_shader (GL_VERTEX_SHADER, self->gl_es, vertex_body, error);
  if (vs == 0)
    return FALSE;
  fs = compile_shader (GL_FRAGMENT_SHADER, self->gl_es, fragment_body, error);
  if (fs == 0)
    {
      glDeleteShader (vs);
      return FALSE;
    }
  self->program = glCreateProgram ();
  glAttachShader (self->program, vs);
  glAttachShader (self->program, fs);
  glBindAttribLocation (self->program, 0, "position");
  glBindAttribLocation (self->program, 1, "uv");
  glLinkProgram (self->program);
  glDeleteShader (vs);
  glDeleteShader (fs);
  glGetProgramiv (self->program, GL_LINK_STATUS, &ok);
  if (!ok)
    {
      g_set_error (error, GDK_GL_ERROR, GDK_GL_ERROR_LINK_FAILED, "cannot link the shaders");
      return FALSE;
    }
  glUseProgram (self->program);
  glUniform1i (glGetUniformLocation (self->program, "tex"), 0);
  self->swizzle_location = glGetUniformLocation (self->program, "swizzle");

  glGenVertexArrays (1, &self->vao);
  glBindVertexArray (self->vao);
  glGenBuffers (1, &self->vbo);
  glBindBuffer (GL_ARRAY_BUFFER, self->vbo);
  glBufferData (GL_ARRAY_BUFFER, sizeof quad, quad, GL_STATIC_DRAW);
  pos = 0;
  uv = 1;
  glEnableVertexAttribArray ((GLuint) pos);
  glVertexAttribPointer ((GLuint) pos, 2, GL_FLOAT, GL_FALSE, 4 * sizeof (float), NULL);
  glEnableVertexAttribArray ((GLuint) uv);
  glVertexAttribPointer ((GLuint) uv, 2, GL_FLOAT, GL_FALSE, 4 * sizeof (float),
                         (const void *) (2 * sizeof (float)));
  glBindVertexArray (0);

  glGenTextures (1, &self->texture);
  memset (&self->tex_mode, 0, sizeof self->tex_mode);
  return TRUE;
}

static void
on_gl_realize (GtkGLArea        *area,
               VireoDisplayView *self)
{
  g_autoptr (GError) error = NULL;

  gtk_gl_area_make_current (area);
  if (gtk_gl_area_get_error (area) != NULL)
    {
      g_info ("no GL (%s): drawing through GdkMemoryTexture",
              gtk_gl_area_get_error (area)->message);
      vireo_display_view_use_fallback (self);
      return;
    }
  if (!gl_setup (self, &error))
    {
      g_info ("cannot set up GL (%s): drawing through GdkMemoryTexture", error->message);
      vireo_display_view_use_fallback (self);
      return;
    }
  self->gl_ready = TRUE;
  self->full_damage = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
}

static void
on_gl_unrealize (GtkGLArea        *area,
                 VireoDisplayView *self)
{
  gtk_gl_area_make_current (area);
  if (gtk_gl_area_get_error (area) == NULL)
    {
      if (self->texture)
        glDeleteTextures (1, &self->texture);
      if (self->vbo)
        glDeleteBuffers (1, &self->vbo);
      if (self->vao)
        glDeleteVertexArrays (1, &self->vao);
      if (self->program)
        glDeleteProgram (self->program);
    }
  self->texture = self->vbo = self->vao = self->program = 0;
  self->gl_ready = FALSE;
  memset (&self->tex_mode, 0, sizeof self->tex_mode);
}

/* Uploads the damaged rows (all of them after a mode change) from the mapped scanout. */
static void
gl_upload (VireoDisplayView *self)
{
  g_autoptr (GArray) spans = NULL;
  const guint8 *pixels;
  VrDisplayMode mode;
  GLenum format;
  gboolean direct;

  if (self->display == NULL)
    return;
  pixels = vr_display_map (self->display, &mode);
  if (pixels == NULL || !mode_is_sane (&mode))
    {
      if (pixels)
        vr_display_unmap (self->display);
      memset (&self->tex_mode, 0, sizeof self->tex_mode);
      return;
    }

  glActiveTexture (GL_TEXTURE0);
  glBindTexture (GL_TEXTURE_2D, self->texture);
  /* Desktop GL takes B G R X bytes as GL_BGRA; GLES gets them as RGBA and the shader swaps. */
  format = self->gl_es ? GL_RGBA : GL_BGRA;
  if (!mode_equal (&mode, &self->tex_mode))
    {
      glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
      glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
      glTexImage2D (GL_TEXTURE_2D, 0, GL_RGBA8, (GLsizei) mode.width, (GLsizei) mode.height, 0,
                    format, GL_UNSIGNED_BYTE, NULL);
      self->tex_mode = mode;
      self->full_damage = TRUE;
    }

  spans = take_damaged_rows (self, mode.height);
  direct = mode.format == VR_PIXEL_FORMAT_XRGB8888 && mode.stride % 4 == 0;
  glPixelStorei (GL_UNPACK_ALIGNMENT, 4);
  glPixelStorei (GL_UNPACK_ROW_LENGTH, direct ? (GLint) (mode.stride / 4) : 0);
  for (guint i = 0; i < spans->len; i++)
    {
      const RowSpan *s = &g_array_index (spans, RowSpan, i);
      guint rows = s->y1 - s->y0;
      const guint8 *src;

      if (direct)
        src = pixels + (gsize) s->y0 * mode.stride;
      else
        {
          gsize need = (gsize) rows * mode.width * 4;

          if (self->staging_size < need)
            {
              g_free (self->staging);
              self->staging = g_malloc (need);
              self->staging_size = need;
            }
          for (guint y = 0; y < rows; y++)
            convert_row (&mode, pixels + (gsize) (s->y0 + y) * mode.stride,
                         self->staging + (gsize) y * mode.width * 4, FALSE);
          src = self->staging;
        }
      glTexSubImage2D (GL_TEXTURE_2D, 0, 0, (GLint) s->y0, (GLsizei) mode.width,
                       (GLsizei) rows, format, GL_UNSIGNED_BYTE, src);
      self->uploaded_rows += rows;
    }
  glPixelStorei (GL_UNPACK_ROW_LENGTH, 0);
  vr_display_unmap (self->display);
  if (spans->len > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UPLOADED_ROWS]);
}

static gboolean
on_gl_render (GtkGLArea        *area,
              GdkGLContext     *context,
              VireoDisplayView *self)
{
  GLint viewport[4];
  int rx, ry, rw, rh;

  glClearColor (0.f, 0.f, 0.f, 1.f);
  glClear (GL_COLOR_BUFFER_BIT);
  if (!self->gl_ready)
    return TRUE;

  gl_upload (self);
  if (self->tex_mode.format == VR_PIXEL_FORMAT_NONE)
    return TRUE;

  glGetIntegerv (GL_VIEWPORT, viewport);
  if (!picture_rect (self, viewport[2], viewport[3], &rx, &ry, &rw, &rh))
    return TRUE;

  /* GL's origin is the bottom left corner. */
  glViewport (rx, viewport[3] - ry - rh, rw, rh);
  glUseProgram (self->program);
  glUniform1i (self->swizzle_location, self->gl_es ? 1 : 0);
  glActiveTexture (GL_TEXTURE0);
  glBindTexture (GL_TEXTURE_2D, self->texture);
  {
    /* Exactly 1:1: nearest, so that the pixels are the guest's bit for bit. */
    GLint filter = (rw == (int) self->tex_mode.width && rh == (int) self->tex_mode.height)
                   ? GL_NEAREST : GL_LINEAR;

    glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
  }
  glBindVertexArray (self->vao);
  glDrawArrays (GL_TRIANGLE_STRIP, 0, 4);
  glBindVertexArray (0);
  glViewport (viewport[0], viewport[1], viewport[2], viewport[3]);
  return TRUE;
}

static gboolean
unparent_on_idle (gpointer data)
{
  if (gtk_widget_get_parent (data) != NULL)
    gtk_widget_unparent (data);
  return G_SOURCE_REMOVE;
}

static void
vireo_display_view_use_fallback (VireoDisplayView *self)
{
  if (self->gl_area != NULL)
    {
      /* Not from inside the GL area's own realize: on idle. */
      GtkWidget *area = g_steal_pointer (&self->gl_area);

      g_signal_handlers_disconnect_by_data (area, self);
      g_idle_add_full (G_PRIORITY_HIGH, unparent_on_idle, g_object_ref (area), g_object_unref);
    }
  self->gl_ready = FALSE;
  self->full_damage = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
  update_fallback (self);
}

static void
ensure_gl_area (VireoDisplayView *self)
{
  if (self->gl_area != NULL || self->force_fallback)
    return;

  self->gl_area = gtk_gl_area_new ();
  gtk_gl_area_set_auto_render (GTK_GL_AREA (self->gl_area), TRUE);
  gtk_gl_area_set_has_depth_buffer (GTK_GL_AREA (self->gl_area), FALSE);
  gtk_widget_set_can_target (self->gl_area, FALSE);
  g_signal_connect_after (self->gl_area, "realize", G_CALLBACK (on_gl_realize), self);
  g_signal_connect (self->gl_area, "unrealize", G_CALLBACK (on_gl_unrealize), self);
  g_signal_connect (self->gl_area, "render", G_CALLBACK (on_gl_render), self);
  gtk_widget_set_parent (self->gl_area, GTK_WIDGET (self));
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
      self->full_damage = TRUE;
      if (size_changed)
        gtk_widget_queue_resize (GTK_WIDGET (self));
    }
  if ((update->flags & VR_DISPLAY_UPDATE_DAMAGE) && update->rects != NULL)
    g_array_append_vals (self->damage, update->rects, update->n_rects);

  if (update->flags & (VR_DISPLAY_UPDATE_MODE | VR_DISPLAY_UPDATE_DAMAGE))
    {
      if (self->gl_area != NULL)
        gtk_gl_area_queue_render (GTK_GL_AREA (self->gl_area));
      else
        queue_fallback_update (self);
    }

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
  g_array_set_size (self->damage, 0);
  self->full_damage = TRUE;
  g_clear_object (&self->texture_fb);

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
  if (self->gl_area != NULL)
    gtk_gl_area_queue_render (GTK_GL_AREA (self->gl_area));
  else if (gtk_widget_get_realized (GTK_WIDGET (self)))
    update_fallback (self);
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

static void
vireo_display_view_size_allocate (GtkWidget *widget,
                                  int        width,
                                  int        height,
                                  int        baseline)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  if (self->gl_area != NULL)
    gtk_widget_size_allocate (self->gl_area, &(GtkAllocation) { 0, 0, width, height }, -1);
}

static void
vireo_display_view_snapshot (GtkWidget   *widget,
                             GtkSnapshot *snapshot)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);
  graphene_rect_t area;

  if (self->gl_area != NULL)
    {
      gtk_widget_snapshot_child (widget, self->gl_area, snapshot);
      return;
    }

  gtk_snapshot_append_color (snapshot, &(GdkRGBA) { 0, 0, 0, 1 },
                             &GRAPHENE_RECT_INIT (0, 0, gtk_widget_get_width (widget),
                                                  gtk_widget_get_height (widget)));
  if (self->texture_fb != NULL && vireo_display_view_get_picture_area (self, &area))
    {
#if GTK_CHECK_VERSION(4, 10, 0)
      GskScalingFilter filter =
        (area.size.width * gtk_widget_get_scale_factor (widget) == self->shadow_mode.width)
        ? GSK_SCALING_FILTER_NEAREST : GSK_SCALING_FILTER_LINEAR;

      gtk_snapshot_append_scaled_texture (snapshot, self->texture_fb, filter, &area);
#else
      gtk_snapshot_append_texture (snapshot, self->texture_fb, &area);
#endif
    }
}

static void
vireo_display_view_realize (GtkWidget *widget)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  GTK_WIDGET_CLASS (vireo_display_view_parent_class)->realize (widget);
  if (self->gl_area == NULL)
    {
      self->full_damage = TRUE;
      update_fallback (self);
    }
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
vireo_display_view_unrealize (GtkWidget *widget)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (widget);

  if (self->fallback_tick)
    gtk_widget_remove_tick_callback (widget, self->fallback_tick);
  self->fallback_tick = 0;
  GTK_WIDGET_CLASS (vireo_display_view_parent_class)->unrealize (widget);
}

static void
vireo_display_view_dispose (GObject *object)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (object);

  disconnect_source (self);
  g_clear_pointer (&self->gl_area, gtk_widget_unparent);
  g_clear_object (&self->texture_fb);

  G_OBJECT_CLASS (vireo_display_view_parent_class)->dispose (object);
}

static void
vireo_display_view_finalize (GObject *object)
{
  VireoDisplayView *self = VIREO_DISPLAY_VIEW (object);

  g_array_unref (self->damage);
  g_free (self->staging);
  g_free (self->shadow);

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
  widget_class->size_allocate = vireo_display_view_size_allocate;
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
  self->damage = g_array_new (FALSE, FALSE, sizeof (VrRect));
  self->full_damage = TRUE;
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);
  ensure_gl_area (self);
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
  if (self->gl_area != NULL)
    gtk_gl_area_queue_render (GTK_GL_AREA (self->gl_area));
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
  if (force && self->gl_area != NULL)
    {
      g_clear_pointer (&self->gl_area, gtk_widget_unparent);
      self->gl_ready = FALSE;
      self->full_damage = TRUE;
      if (gtk_widget_get_realized (GTK_WIDGET (self)))
        update_fallback (self);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
    }
  else if (!force)
    {
      self->full_damage = TRUE;
      ensure_gl_area (self);
      g_clear_object (&self->texture_fb);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
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
  return self->gl_area != NULL && self->gl_ready;
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
