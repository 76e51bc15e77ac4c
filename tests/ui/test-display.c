/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * VireoDisplay against a scripted stand-in for the engine (fake-machine.c), under Xvfb:
 * pixels at 1:1 (GL and the GdkMemoryTexture fallback), the letterbox in fit mode, damage
 * (nothing uploaded while idle, exactly the damaged rows otherwise), a mode change, keys and
 * clicks typed with xdotool, Send Key, screenshots and a WebM recording read back with
 * GstDiscoverer. The widget's rendering is taken as a user sees it: the widget's snapshot
 * rendered by the window's own GskRenderer. Screenshots of it are written to the test
 * log directory ($VIREO_TEST_LOG_DIR, else the build directory) so a person can look.
 */

#include "config.h"

#include <gdk/x11/gdkx.h>
#include <gst/pbutils/pbutils.h>
#include <gtk/gtk.h>
#include <linux/input-event-codes.h>

#include "fake-machine.h"
#include "vireo-display.h"

#define WAIT_MS 10000

typedef struct
{
  VrMachine    *machine;
  VrDisplay    *display;
  GtkWidget    *window;
  VireoDisplay *widget;
} Fixture;

static gboolean
wait_for (gboolean (*cond) (gpointer),
          gpointer   data,
          guint      timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (!cond (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  return TRUE;
}

static gboolean
never (gpointer data)
{
  return FALSE;
}

/* Runs the main loop for @ms milliseconds. */
static void
spin (guint ms)
{
  wait_for (never, NULL, ms);
}

static const char *
log_dir (void)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR");

  return dir ? dir : g_getenv ("G_TEST_BUILDDIR") ? g_getenv ("G_TEST_BUILDDIR") : ".";
}

static void
fixture_setup (Fixture  *f,
               gboolean  fallback,
               unsigned  width,
               unsigned  height)
{
  f->machine = fake_machine_new ("test-display");
  f->display = fake_machine_get_display (f->machine);
  fake_display_set_mode (f->display, 640, 480, 640 * 4 + 64);   /* a stride with padding */

  f->window = gtk_window_new ();
  gtk_window_set_title (GTK_WINDOW (f->window), "test-display");
  gtk_window_set_decorated (GTK_WINDOW (f->window), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (f->window), (int) width, (int) height);
  f->widget = VIREO_DISPLAY (vireo_display_new ());
  vireo_display_set_force_fallback (f->widget, fallback);
  vireo_display_set_machine (f->widget, f->machine);
  gtk_window_set_child (GTK_WINDOW (f->window), GTK_WIDGET (f->widget));
  gtk_window_present (GTK_WINDOW (f->window));
}

static gboolean
all_uploaded (gpointer data)
{
  Fixture *f = data;

  return gtk_widget_get_mapped (GTK_WIDGET (f->widget))
         && vireo_display_get_uploaded_rows (f->widget) >= 480;
}

static void
fixture_start (Fixture  *f,
               gboolean  fallback,
               unsigned  width,
               unsigned  height)
{
  fixture_setup (f, fallback, width, height);
  g_assert_true (wait_for (all_uploaded, f, WAIT_MS));
  g_assert_cmpint (vireo_display_get_uses_gl (f->widget), ==, !fallback);
  spin (200);
}

static void
fixture_teardown (Fixture *f)
{
  gtk_window_destroy (GTK_WINDOW (f->window));
  spin (50);
  fake_machine_free (f->machine);
}

static void
count_paint (GdkFrameClock *clock,
             guint         *painted)
{
  (*painted)++;
}

static gboolean
one_frame (gpointer data)
{
  return *(guint *) data >= 1;
}

/* Until the window has laid out and painted twice since now: no pending allocation. */
static void
wait_frames (Fixture *f)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (f->window);
  guint painted = 0;
  gulong id;

  g_assert_nonnull (clock);
  id = g_signal_connect (clock, "after-paint", G_CALLBACK (count_paint), &painted);
  /* A frame clock paints once for each request. */
  for (int i = 0; i < 2; i++)
    {
      painted = 0;
      gtk_widget_queue_draw (f->window);
      g_assert_true (wait_for (one_frame, &painted, WAIT_MS));
    }
  g_signal_handler_disconnect (clock, id);
}

/* The widget as drawn by the window's renderer, B8G8R8A8 premultiplied (memory order B G R A). */
static guint8 *
render_widget (Fixture *f,
               int     *width,
               int     *height,
               gsize   *stride)
{
  GtkWidget *w = GTK_WIDGET (f->widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (w));
  guint8 *data;

  wait_frames (f);
  *width = gtk_widget_get_width (w);
  *height = gtk_widget_get_height (w);
  /* What the window draws for the widget: its children (the widget itself draws nothing). */
  GTK_WIDGET_GET_CLASS (w)->snapshot (w, snapshot);
  node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (renderer, node,
                                         &GRAPHENE_RECT_INIT (0, 0, *width, *height));
  *stride = (gsize) *width * 4;
  data = g_malloc (*stride * *height);
  gdk_texture_download (texture, data, *stride);
  return data;
}

static void
save_rendering (Fixture    *f,
                const char *name)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autofree char *path = NULL;
  g_autofree guint8 *data = NULL;
  int width, height;
  gsize stride;

  data = render_widget (f, &width, &height, &stride);
  bytes = g_bytes_new (data, stride * height);
  texture = gdk_memory_texture_new (width, height, GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes,
                                    stride);
  path = g_build_filename (log_dir (), name, NULL);
  gdk_texture_save_to_png (texture, path);
  g_test_message ("rendering saved to %s", path);
}

static guint32
rgb_at (const guint8 *data,
        gsize         stride,
        int           x,
        int           y)
{
  const guint8 *p = data + (gsize) y * stride + (gsize) x * 4;

  return ((guint32) p[2] << 16) | ((guint32) p[1] << 8) | p[0];
}

static guint32
guest_rgb_at (Fixture *f,
              int      x,
              int      y)
{
  const guint8 *p = fake_display_get_pixels (f->display)
                    + (gsize) y * vr_display_get_mode (f->display).stride + (gsize) x * 4;

  return ((guint32) p[2] << 16) | ((guint32) p[1] << 8) | p[0];
}

/* Every guest pixel appears unchanged at the picture's place in the rendering. */
static void
check_one_to_one (Fixture    *f,
                  const char *png)
{
  g_autofree guint8 *data = NULL;
  graphene_rect_t area;
  guint mw, mh;
  int width, height, ox, oy;
  gsize stride;
  guint bad = 0;

  vireo_display_set_scale_mode (f->widget, VIREO_SCALE_MODE_ORIGINAL);
  spin (300);
  wait_frames (f);
  vireo_display_get_mode_size (f->widget, &mw, &mh);
  g_assert_true (vireo_display_get_picture_area (f->widget, &area));
  g_assert_cmpfloat (area.size.width, ==, mw);
  g_assert_cmpfloat (area.size.height, ==, mh);
  ox = (int) area.origin.x;
  oy = (int) area.origin.y;
  g_assert_cmpfloat (area.origin.x, ==, ox);

  data = render_widget (f, &width, &height, &stride);
  save_rendering (f, png);
  g_assert_cmpint (width, >=, (int) mw);
  g_assert_cmpint (height, >=, (int) mh);
  for (guint y = 0; y < mh; y++)
    for (guint x = 0; x < mw; x++)
      if (rgb_at (data, stride, ox + (int) x, oy + (int) y) != guest_rgb_at (f, (int) x, (int) y))
        {
          if (bad++ < 5)
            g_test_message ("pixel %u,%u: %06x, guest %06x", x, y,
                            rgb_at (data, stride, ox + (int) x, oy + (int) y),
                            guest_rgb_at (f, (int) x, (int) y));
        }
  g_assert_cmpuint (bad, ==, 0);
}

static void
test_pixels (gconstpointer data)
{
  gboolean fallback = GPOINTER_TO_INT (data);
  Fixture f;

  fixture_start (&f, fallback, 700, 520);
  check_one_to_one (&f, fallback ? "display-fallback-640x480.png" : "display-gl-640x480.png");

  /* A mode change: the new mode, pixel for pixel. */
  fake_display_set_mode (f.display, 1024, 768, 0);
  gtk_window_set_default_size (GTK_WINDOW (f.window), 1100, 800);
  spin (500);
  check_one_to_one (&f, fallback ? "display-fallback-1024x768.png" : "display-gl-1024x768.png");
  fixture_teardown (&f);
}

static void
test_letterbox (gconstpointer data)
{
  gboolean fallback = GPOINTER_TO_INT (data);
  g_autofree guint8 *pixels = NULL;
  graphene_rect_t area;
  int width, height, left, right;
  gsize stride;
  Fixture f;

  /* 900x400 is wider than 4:3: bars left and right. */
  fixture_start (&f, fallback, 900, 400);
  wait_frames (&f);
  g_assert_cmpint (vireo_display_get_scale_mode (f.widget), ==, VIREO_SCALE_MODE_FIT);
  pixels = render_widget (&f, &width, &height, &stride);
  save_rendering (&f, fallback ? "display-fallback-fit.png" : "display-gl-fit.png");
  g_assert_cmpint (width, ==, 900);
  g_assert_cmpint (height, ==, 400);
  g_assert_true (vireo_display_get_picture_area (f.widget, &area));
  /* 400 * 4 / 3 = 533 wide, centred */
  g_assert_cmpfloat_with_epsilon (area.size.height, 400, 0.01);
  g_assert_cmpfloat_with_epsilon (area.size.width, 533, 1);
  g_assert_cmpfloat_with_epsilon (area.origin.x, (900 - 533) / 2.0, 1);

  /* The bars are black; the picture starts where the letterbox says: the colour bars
   * (white first) in its top rows. */
  left = (int) area.origin.x;
  right = (int) (area.origin.x + area.size.width);
  for (int y = 0; y < 400; y += 7)
    {
      g_assert_cmphex (rgb_at (pixels, stride, 0, y), ==, 0);
      g_assert_cmphex (rgb_at (pixels, stride, left - 2, y), ==, 0);
      g_assert_cmphex (rgb_at (pixels, stride, right + 1, y), ==, 0);
      g_assert_cmphex (rgb_at (pixels, stride, 899, y), ==, 0);
    }
  g_assert_cmphex (rgb_at (pixels, stride, left + 4, 10), ==, 0xffffff);
  g_assert_cmphex (rgb_at (pixels, stride, right - 4, 10), ==, 0x000000);
  /* The second bar (yellow) at guest x 80..159 → 1/8 of the picture's width further. */
  g_assert_cmphex (rgb_at (pixels, stride, left + (int) (area.size.width * 1.5 / 8), 10), ==,
                   0xffff00);
  g_clear_pointer (&pixels, g_free);

  /* Taller than 4:3: bars above and below. */
  gtk_window_set_default_size (GTK_WINDOW (f.window), 400, 600);
  spin (500);
  wait_frames (&f);
  g_assert_true (vireo_display_get_picture_area (f.widget, &area));
  g_assert_cmpfloat_with_epsilon (area.size.width, 400, 0.01);
  g_assert_cmpfloat_with_epsilon (area.size.height, 300, 1);
  g_assert_cmpfloat_with_epsilon (area.origin.y, 150, 1);
  pixels = render_widget (&f, &width, &height, &stride);
  g_assert_cmpint (height, ==, 600);
  g_assert_cmphex (rgb_at (pixels, stride, 200, 140), ==, 0);
  g_assert_cmphex (rgb_at (pixels, stride, 200, 460), ==, 0);
  g_assert_cmphex (rgb_at (pixels, stride, 5, 155), ==, 0xffffff);
  fixture_teardown (&f);
}

typedef struct
{
  Fixture *f;
  guint64  rows;
} RowsWait;

static gboolean
rows_reached (gpointer data)
{
  RowsWait *w = data;

  return vireo_display_get_uploaded_rows (w->f->widget) >= w->rows;
}

static void
test_damage (gconstpointer data)
{
  gboolean fallback = GPOINTER_TO_INT (data);
  RowsWait w;
  guint64 before;
  Fixture f;

  fixture_start (&f, fallback, 700, 520);
  vireo_display_set_scale_mode (f.widget, VIREO_SCALE_MODE_ORIGINAL);
  spin (300);

  /* Idle for 2 s, with redraws for other reasons (the window is resized): nothing. */
  before = vireo_display_get_uploaded_rows (f.widget);
  gtk_widget_queue_draw (GTK_WIDGET (f.widget));
  spin (1000);
  gtk_window_set_default_size (GTK_WINDOW (f.window), 720, 540);
  spin (1000);
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - before, ==, 0);

  /* One 16x16 square: its 16 rows. */
  fake_display_fill (f.display, 200, 100, 16, 16, 0x123456);
  w = (RowsWait) { &f, before + 16 };
  g_assert_true (wait_for (rows_reached, &w, WAIT_MS));
  spin (500);
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - before, ==, 16);
  check_one_to_one (&f, fallback ? "display-fallback-damage.png" : "display-gl-damage.png");

  /* Two overlapping squares in one period, and one elsewhere: the union of their rows. */
  before = vireo_display_get_uploaded_rows (f.widget);
  fake_display_fill (f.display, 10, 300, 16, 16, 0xff0000);
  fake_display_fill (f.display, 40, 308, 16, 16, 0x00ff00);
  fake_display_fill (f.display, 600, 460, 16, 16, 0x0000ff);
  w = (RowsWait) { &f, before + 24 + 16 };
  g_assert_true (wait_for (rows_reached, &w, WAIT_MS));
  spin (500);
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - before, ==, 24 + 16);
  check_one_to_one (&f, fallback ? "display-fallback-damage2.png" : "display-gl-damage2.png");
  fixture_teardown (&f);
}

/* xdotool, for real X events into the window. */
static gboolean
xdotool (const char *first,
         ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  int status = 0;
  va_list ap;

  g_ptr_array_add (argv, (char *) "xdotool");
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                     NULL, &status, &error))
    {
      g_test_message ("xdotool: %s", error->message);
      return FALSE;
    }
  return g_spawn_check_wait_status (status, NULL);
}

static char *
window_xid (Fixture *f)
{
  GdkSurface *surface = gtk_native_get_surface (GTK_NATIVE (f->window));

  return g_strdup_printf ("%lu", (unsigned long) gdk_x11_surface_get_xid (surface));
}

static gboolean
have_x11_and_xdotool (Fixture *f)
{
  if (!GDK_IS_X11_DISPLAY (gtk_widget_get_display (f->window)))
    {
      g_test_skip ("not an X11 display");
      return FALSE;
    }
  if (g_find_program_in_path ("xdotool") == NULL)
    {
      g_test_skip ("xdotool is not installed");
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  Fixture *f;
  guint    n;
} InputWait;

static guint
count_keys (GArray *inputs)
{
  guint n = 0;

  for (guint i = 0; i < inputs->len; i++)
    n += g_array_index (inputs, FakeInput, i).type == 'k';
  return n;
}

/* Only the key events (the pointer entering the window moves the guest's). */
static void
keep_keys (GArray *inputs)
{
  guint out = 0;

  for (guint i = 0; i < inputs->len; i++)
    if (g_array_index (inputs, FakeInput, i).type == 'k')
      g_array_index (inputs, FakeInput, out++) = g_array_index (inputs, FakeInput, i);
  g_array_set_size (inputs, out);
}

static gboolean
keys_reached (gpointer data)
{
  InputWait *w = data;

  return count_keys (fake_machine_get_inputs (w->f->machine)) >= w->n;
}

static gboolean
inputs_reached (gpointer data)
{
  InputWait *w = data;

  return fake_machine_get_inputs (w->f->machine)->len >= w->n;
}

static void
test_keys (void)
{
  g_autofree char *xid = NULL;
  GArray *inputs;
  InputWait w;
  Fixture f;
  static const struct
  {
    unsigned code;
    int      pressed;
  } expected[] = {
    /* xdotool lets Shift go before the letter */
    { KEY_A, 1 }, { KEY_A, 0 }, { KEY_LEFTSHIFT, 1 }, { KEY_B, 1 }, { KEY_LEFTSHIFT, 0 },
    { KEY_B, 0 }, { KEY_TAB, 1 }, { KEY_TAB, 0 }, { KEY_LEFTMETA, 1 },
    { KEY_LEFTMETA, 0 }, { KEY_ENTER, 1 }, { KEY_ENTER, 0 },
  };

  fixture_start (&f, FALSE, 700, 520);
  if (!have_x11_and_xdotool (&f))
    {
      fixture_teardown (&f);
      return;
    }
  xid = window_xid (&f);
  gtk_widget_grab_focus (GTK_WIDGET (f.widget));
  g_assert_true (xdotool ("windowfocus", "--sync", xid, NULL));
  spin (200);
  g_array_set_size (fake_machine_get_inputs (f.machine), 0);

  /* Tab would move GTK's focus and Super is a desktop shortcut: both reach the guest. */
  g_assert_true (xdotool ("key", "--delay", "20", "a", "B", "Tab", "Super_L", "Return", NULL));
  w = (InputWait) { &f, G_N_ELEMENTS (expected) };
  g_assert_true (wait_for (keys_reached, &w, WAIT_MS));
  spin (200);
  inputs = fake_machine_get_inputs (f.machine);
  keep_keys (inputs);
  for (guint i = 0; i < inputs->len; i++)
    g_test_message ("input %c %u %d", g_array_index (inputs, FakeInput, i).type,
                    g_array_index (inputs, FakeInput, i).code,
                    g_array_index (inputs, FakeInput, i).value);
  g_assert_cmpuint (inputs->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      FakeInput *in = &g_array_index (inputs, FakeInput, i);

      g_assert_cmpint (in->type, ==, 'k');
      g_assert_cmpuint (in->code, ==, expected[i].code);
      g_assert_cmpint (in->value, ==, expected[i].pressed);
    }
  g_assert_true (gtk_widget_has_focus (GTK_WIDGET (f.widget)));

  /* A key held when focus leaves is released in the guest. */
  g_array_set_size (inputs, 0);
  g_assert_true (xdotool ("keydown", "x", NULL));
  w = (InputWait) { &f, 1 };
  g_assert_true (wait_for (keys_reached, &w, WAIT_MS));
  gtk_window_set_focus (GTK_WINDOW (f.window), NULL);
  spin (200);
  g_assert_true (xdotool ("keyup", "x", NULL));
  spin (200);
  keep_keys (inputs);
  g_assert_cmpuint (inputs->len, ==, 2);
  g_assert_cmpuint (g_array_index (inputs, FakeInput, 0).code, ==, KEY_X);
  g_assert_cmpint (g_array_index (inputs, FakeInput, 0).value, ==, 1);
  g_assert_cmpuint (g_array_index (inputs, FakeInput, 1).code, ==, KEY_X);
  g_assert_cmpint (g_array_index (inputs, FakeInput, 1).value, ==, 0);
  fixture_teardown (&f);
}

static void
test_pointer (void)
{
  g_autofree char *xid = NULL;
  GArray *inputs;
  InputWait w;
  Fixture f;
  FakeInput *abs = NULL;
  gboolean pressed = FALSE, released = FALSE;

  /* 800x600 for a 640x480 guest: 1.25 window pixels a guest pixel; window (500, 250) is
   * guest (400, 200), i.e. 400 * 32768 / 640 = 20480 and 200 * 32768 / 480 = 13653. */
  fixture_start (&f, FALSE, 800, 600);
  if (!have_x11_and_xdotool (&f))
    {
      fixture_teardown (&f);
      return;
    }
  xid = window_xid (&f);
  g_array_set_size (fake_machine_get_inputs (f.machine), 0);
  g_assert_true (xdotool ("mousemove", "--window", xid, "--sync", "500", "250", NULL));
  g_assert_true (xdotool ("click", "1", NULL));
  w = (InputWait) { &f, 3 };
  g_assert_true (wait_for (inputs_reached, &w, WAIT_MS));
  spin (300);
  inputs = fake_machine_get_inputs (f.machine);
  for (guint i = 0; i < inputs->len; i++)
    {
      FakeInput *in = &g_array_index (inputs, FakeInput, i);

      if (in->type == 'a' && !pressed)
        abs = in;
      else if (in->type == 'b' && in->code == BTN_LEFT)
        {
          if (in->value)
            pressed = TRUE;
          else
            released = TRUE;
        }
    }
  g_assert_nonnull (abs);
  g_assert_cmpint (abs->x, >=, 20480 - 60);
  g_assert_cmpint (abs->x, <=, 20480 + 60);
  g_assert_cmpint (abs->y, >=, 13653 - 80);
  g_assert_cmpint (abs->y, <=, 13653 + 80);
  g_assert_true (pressed);
  g_assert_true (released);
  /* The click captured the input; the hint says how to release. */
  g_assert_true (vireo_display_get_captured (f.widget));
  save_rendering (&f, "display-captured.png");

  /* Ctrl+Alt releases. */
  g_assert_true (xdotool ("key", "ctrl+alt", NULL));
  spin (300);
  g_assert_false (vireo_display_get_captured (f.widget));
  fixture_teardown (&f);
}

static void
test_send_key (void)
{
  g_autoptr (GMenuModel) menu = vireo_display_get_send_key_menu ();
  GArray *inputs;
  Fixture f;
  static const unsigned cad[] = { KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE };

  fixture_start (&f, FALSE, 700, 520);
  inputs = fake_machine_get_inputs (f.machine);
  g_array_set_size (inputs, 0);
  g_action_group_activate_action (vireo_display_get_action_group (f.widget), "send-key",
                                  g_variant_new_string ("ctrl-alt-delete"));
  g_assert_cmpuint (inputs->len, ==, 6);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpuint (g_array_index (inputs, FakeInput, i).code, ==, cad[i]);
      g_assert_cmpint (g_array_index (inputs, FakeInput, i).value, ==, 1);
      g_assert_cmpuint (g_array_index (inputs, FakeInput, 5 - i).code, ==, cad[i]);
      g_assert_cmpint (g_array_index (inputs, FakeInput, 5 - i).value, ==, 0);
    }
  g_array_set_size (inputs, 0);
  g_assert_true (vireo_display_send_key_combo (f.widget, "ctrl-alt-f12"));
  g_assert_cmpuint (g_array_index (inputs, FakeInput, 2).code, ==, KEY_F12);
  g_assert_true (vireo_display_send_key_combo (f.widget, "print"));
  g_assert_cmpuint (g_array_index (inputs, FakeInput, 6).code, ==, KEY_SYSRQ);
  g_assert_false (vireo_display_send_key_combo (f.widget, "ctrl-alt-f13"));

  /* Two sections: Ctrl+Alt+Del and Backspace, Print Screen; the twelve consoles. */
  g_assert_cmpint (g_menu_model_get_n_items (menu), ==, 2);
  g_assert_cmpint (g_menu_model_get_n_items (g_menu_model_get_item_link (menu, 1, "section")),
                   ==, 12);
  fixture_teardown (&f);
}

static void
test_keymap (void)
{
  /* evdev + 8 (X11 evdev, Wayland) */
  g_assert_cmpuint (vireo_display_keycode_to_evdev (38, GDK_KEY_a), ==, KEY_A);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (9, GDK_KEY_Escape), ==, KEY_ESC);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (133, GDK_KEY_Super_L), ==, KEY_LEFTMETA);
  /* no usable keycode: by keyval */
  g_assert_cmpuint (vireo_display_keycode_to_evdev (0, GDK_KEY_Q), ==, KEY_Q);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (0, GDK_KEY_Return), ==, KEY_ENTER);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (0, GDK_KEY_F11), ==, KEY_F11);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (0, GDK_KEY_0), ==, KEY_0);
  g_assert_cmpuint (vireo_display_keycode_to_evdev (0, GDK_KEY_VoidSymbol), ==, 0);
}

static void
test_screenshot (void)
{
  g_autofree char *path = g_build_filename (log_dir (), "display-screenshot.png", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) png = NULL;
  g_autofree guint8 *data = NULL;
  Fixture f;

  fixture_start (&f, FALSE, 700, 520);
  fake_display_fill (f.display, 300, 300, 16, 16, 0xabcdef);
  g_assert_true (vireo_display_screenshot (f.widget, file, &error));
  g_assert_no_error (error);

  png = gdk_texture_new_from_file (file, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_texture_get_width (png), ==, 640);
  g_assert_cmpint (gdk_texture_get_height (png), ==, 480);
  data = g_malloc (640 * 4 * 480);
  gdk_texture_download (png, data, 640 * 4);
  for (int y = 0; y < 480; y++)
    for (int x = 0; x < 640; x++)
      {
        g_assert_cmphex (rgb_at (data, 640 * 4, x, y), ==, guest_rgb_at (&f, x, y));
        g_assert_cmpuint (data[(gsize) y * 640 * 4 + x * 4 + 3], ==, 0xff);
      }
  fixture_teardown (&f);
}

static void
discover (const char *path,
          guint       width,
          guint       height,
          double      min_seconds,
          double      max_seconds)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstDiscoverer) discoverer = gst_discoverer_new (10 * GST_SECOND, &error);
  g_autoptr (GstDiscovererInfo) info = NULL;
  g_autofree char *uri = g_filename_to_uri (path, NULL, NULL);
  GList *videos;
  GstDiscovererVideoInfo *video;
  double seconds;

  g_assert_no_error (error);
  info = gst_discoverer_discover_uri (discoverer, uri, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gst_discoverer_info_get_result (info), ==, GST_DISCOVERER_OK);
  videos = gst_discoverer_info_get_video_streams (info);
  g_assert_cmpuint (g_list_length (videos), ==, 1);
  video = videos->data;
  g_assert_cmpuint (gst_discoverer_video_info_get_width (video), ==, width);
  g_assert_cmpuint (gst_discoverer_video_info_get_height (video), ==, height);
  seconds = gst_discoverer_info_get_duration (info) / (double) GST_SECOND;
  g_test_message ("%s: %ux%u, %.2f s", path, width, height, seconds);
  g_assert_cmpfloat (seconds, >=, min_seconds);
  g_assert_cmpfloat (seconds, <=, max_seconds);
  {
    GstCaps *caps = gst_discoverer_stream_info_get_caps (GST_DISCOVERER_STREAM_INFO (video));
    const char *name = gst_structure_get_name (gst_caps_get_structure (caps, 0));

    g_assert_cmpstr (name, ==, "video/x-vp8");
    gst_caps_unref (caps);
  }
  gst_discoverer_stream_info_list_free (videos);
}

static void
test_recording (void)
{
  g_autofree char *path = g_build_filename (log_dir (), "display-recording.webm", NULL);
  g_autofree char *path2 = g_build_filename (log_dir (), "display-recording-destroy.webm",
                                             NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFile) file2 = g_file_new_for_path (path2);
  g_autoptr (GError) error = NULL;
  double seconds;
  Fixture f;

  fixture_start (&f, FALSE, 700, 520);
  g_assert_true (vireo_display_start_recording (f.widget, file, &error));
  g_assert_no_error (error);
  g_assert_true (vireo_display_get_recording (f.widget));
  save_rendering (&f, "display-recording.png");
  /* A square moving for 1.5 s, then an idle guest for 1.5 s. */
  for (int i = 0; i < 15; i++)
    {
      fake_display_fill (f.display, 100 + i * 20, 200, 16, 16, 0xff0000);
      spin (100);
    }
  spin (1500);
  g_assert_cmpfloat (vireo_display_get_recording_time (f.widget), >=, 3.0);
  seconds = vireo_display_get_recording_time (f.widget);
  g_test_message ("recorded %.2f s, %" G_GUINT64_FORMAT " frames pushed", seconds,
                  vireo_display_get_recorded_frames (f.widget));
  g_assert_cmpuint (vireo_display_get_recorded_frames (f.widget), >=, 10);
  g_assert_true (vireo_display_stop_recording (f.widget, &error));
  g_assert_no_error (error);
  g_assert_false (vireo_display_get_recording (f.widget));
  /* The file lasts as long as the recording (to a frame or two, and the time stop took). */
  discover (path, 640, 480, seconds - 0.2, seconds + 0.6);

  /* Destroying the widget finishes the file too. */
  g_assert_true (vireo_display_start_recording (f.widget, file2, &error));
  spin (1200);
  seconds = vireo_display_get_recording_time (f.widget);
  fixture_teardown (&f);
  discover (path2, 640, 480, seconds - 0.2, seconds + 0.6);
}

int
main (int   argc,
      char *argv[])
{
  g_setenv ("GSK_RENDERER", g_getenv ("GSK_RENDERER") ? g_getenv ("GSK_RENDERER") : "gl", TRUE);
  gtk_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  g_test_add_func ("/display/keymap", test_keymap);
  g_test_add_data_func ("/display/gl/pixels", GINT_TO_POINTER (FALSE), test_pixels);
  g_test_add_data_func ("/display/fallback/pixels", GINT_TO_POINTER (TRUE), test_pixels);
  g_test_add_data_func ("/display/gl/letterbox", GINT_TO_POINTER (FALSE), test_letterbox);
  g_test_add_data_func ("/display/fallback/letterbox", GINT_TO_POINTER (TRUE), test_letterbox);
  g_test_add_data_func ("/display/gl/damage", GINT_TO_POINTER (FALSE), test_damage);
  g_test_add_data_func ("/display/fallback/damage", GINT_TO_POINTER (TRUE), test_damage);
  g_test_add_func ("/display/input/keys", test_keys);
  g_test_add_func ("/display/input/pointer", test_pointer);
  g_test_add_func ("/display/input/send-key", test_send_key);
  g_test_add_func ("/display/screenshot", test_screenshot);
  g_test_add_func ("/display/recording", test_recording);
  return g_test_run ();
}
