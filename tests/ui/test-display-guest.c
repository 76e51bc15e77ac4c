/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * VireoDisplay on the real engine with the `display` guest (tests/guests/display.c) on the
 * bochs-display card, under Xvfb:
 *  - at 1:1 the widget's rendering equals display-pattern.h pixel for pixel, at 640x480 and
 *    at 1024x768;
 *  - while the guest idles (2 s), the widget uploads no row at all;
 *  - when the guest changes one 16x16 square (the counter's last cell), exactly its 16 rows
 *    are uploaded.
 * The renderings go to the test log directory.
 */

#include "config.h"

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "display-pattern.h"
#include "vireo-display.h"
#include "vr-machine.h"

#define WAIT_MS 120000

typedef struct
{
  VrMachine    *machine;
  GtkWidget    *window;
  VireoDisplay *widget;
  char         *serial_path;
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

static void
spin (guint ms)
{
  wait_for (never, NULL, ms);
}

typedef struct
{
  Fixture    *f;
  const char *line;
} LineWait;

static gboolean
serial_has (gpointer data)
{
  LineWait *w = data;
  g_autofree char *text = NULL;
  g_autofree char *needle = g_strdup_printf ("%s\n", w->line);

  return g_file_get_contents (w->f->serial_path, &text, NULL, NULL) && strstr (text, needle);
}

static void
wait_serial (Fixture    *f,
             const char *line)
{
  LineWait w = { f, line };

  if (!wait_for (serial_has, &w, WAIT_MS))
    {
      g_autofree char *text = NULL;

      g_file_get_contents (f->serial_path, &text, NULL, NULL);
      g_error ("no “%s” from the guest; serial:\n%s", line, text ? text : "");
    }
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

static void
wait_frames (Fixture *f)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (f->window);
  guint painted = 0;
  gulong id = g_signal_connect (clock, "after-paint", G_CALLBACK (count_paint), &painted);

  for (int i = 0; i < 2; i++)
    {
      painted = 0;
      gtk_widget_queue_draw (f->window);
      g_assert_true (wait_for (one_frame, &painted, 10000));
    }
  g_signal_handler_disconnect (clock, id);
}

static guint8 *
render_widget (Fixture *f,
               int     *width,
               int     *height)
{
  GtkWidget *w = GTK_WIDGET (f->widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  guint8 *data;

  wait_frames (f);
  *width = gtk_widget_get_width (w);
  *height = gtk_widget_get_height (w);
  GTK_WIDGET_GET_CLASS (w)->snapshot (w, snapshot);
  node = gtk_snapshot_free_to_node (snapshot);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (gtk_widget_get_native (w)),
                                         node, &GRAPHENE_RECT_INIT (0, 0, *width, *height));
  data = g_malloc ((gsize) *width * 4 * *height);
  gdk_texture_download (texture, data, (gsize) *width * 4);
  return data;
}

static void
save_png (const guint8 *data,
          int           width,
          int           height,
          const char   *name)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR") ? g_getenv ("VIREO_TEST_LOG_DIR") : ".";
  g_autoptr (GBytes) bytes = g_bytes_new (data, (gsize) width * 4 * height);
  g_autoptr (GdkTexture) texture = gdk_memory_texture_new (width, height,
                                                           GDK_MEMORY_B8G8R8A8_PREMULTIPLIED,
                                                           bytes, (gsize) width * 4);
  g_autofree char *path = g_build_filename (dir, name, NULL);

  gdk_texture_save_to_png (texture, path);
  g_test_message ("rendering saved to %s", path);
}

typedef struct
{
  Fixture *f;
  guint    width;
} ModeWait;

static gboolean
mode_is (gpointer data)
{
  ModeWait *w = data;
  guint width;

  vireo_display_get_mode_size (w->f->widget, &width, NULL);
  return width == w->width;
}

static void
check_pattern (Fixture    *f,
               guint       mw,
               guint       mh,
               guint       counter,
               const char *png)
{
  g_autofree guint8 *data = NULL;
  ModeWait mode_wait = { f, mw };
  graphene_rect_t area;
  int width, height, ox, oy;
  guint bad = 0;

  g_assert_true (wait_for (mode_is, &mode_wait, WAIT_MS));
  spin (500);
  data = render_widget (f, &width, &height);
  save_png (data, width, height, png);
  g_assert_true (vireo_display_get_picture_area (f->widget, &area));
  g_assert_cmpfloat (area.size.width, ==, mw);
  g_assert_cmpfloat (area.size.height, ==, mh);
  ox = (int) area.origin.x;
  oy = (int) area.origin.y;
  for (guint y = 0; y < mh; y++)
    for (guint x = 0; x < mw; x++)
      {
        const guint8 *p = data + ((gsize) (oy + (int) y) * width + (gsize) (ox + (int) x)) * 4;
        guint32 got = ((guint32) p[2] << 16) | ((guint32) p[1] << 8) | p[0];
        guint32 want = display_pattern_pixel (x, y, mw, mh, counter);

        if (got != want && bad++ < 5)
          g_test_message ("%ux%u: pixel %u,%u is %06x, the pattern says %06x", mw, mh, x, y,
                          got, want);
      }
  g_assert_cmpuint (bad, ==, 0);
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
test_guest (gconstpointer data)
{
  gboolean fallback = GPOINTER_TO_INT (data);
  g_autoptr (GError) error = NULL;
  VrMachineConfig config;
  RowsWait rows_wait;
  guint64 rows, engine_rows;
  Fixture f = { 0 };
  int fd;

  fd = g_file_open_tmp ("vireo-display-guest-XXXXXX.log", &f.serial_path, &error);
  g_assert_no_error (error);
  close (fd);

  vr_machine_config_init (&config);
  config.name = g_strdup ("display");
  config.kernel = g_build_filename (g_getenv ("VIREO_GUEST_DIR"), "display.elf", NULL);
  /* hold: time to look at each mode; idle: 3 s of nothing, the change, 3 s of nothing */
  /* idle=6: the host measures 2 s of it, with room for a slow (loaded) host to notice the
   * "idle" line late. */
  config.cmdline = g_strdup ("hold=4 idle=6");
  config.memory = 64 << 20;
  config.display = VR_DISPLAY_DEVICE_BOCHS;
  config.serial = VR_SERIAL_FILE;
  config.serial_path = g_strdup (f.serial_path);
  f.machine = vr_machine_new (&config, &error);
  vr_machine_config_clear (&config);
  g_assert_no_error (error);

  f.window = gtk_window_new ();
  gtk_window_set_title (GTK_WINDOW (f.window), "test-display-guest");
  gtk_window_set_decorated (GTK_WINDOW (f.window), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (f.window), 1100, 820);
  f.widget = VIREO_DISPLAY (vireo_display_new ());
  vireo_display_set_force_fallback (f.widget, fallback);
  vireo_display_set_scale_mode (f.widget, VIREO_SCALE_MODE_ORIGINAL);
  vireo_display_set_machine (f.widget, f.machine);
  gtk_window_set_child (GTK_WINDOW (f.window), GTK_WIDGET (f.widget));
  gtk_window_present (GTK_WINDOW (f.window));
  spin (300);

  g_assert_true (vr_machine_start (f.machine, &error));
  g_assert_no_error (error);

  wait_serial (&f, "mode 640x480: drawn");
  check_pattern (&f, 640, 480, 1,
                 fallback ? "guest-fallback-640x480.png" : "guest-gl-640x480.png");
  g_assert_cmpint (vireo_display_get_uses_gl (f.widget), ==, !fallback);
  wait_serial (&f, "mode 1024x768: drawn");
  check_pattern (&f, 1024, 768, 2,
                 fallback ? "guest-fallback-1024x768.png" : "guest-gl-1024x768.png");

  /* The guest idles: two seconds without a single row uploaded. */
  wait_serial (&f, "idle");
  spin (300);
  rows = vireo_display_get_uploaded_rows (f.widget);
  engine_rows = vr_display_get_damaged_rows (vr_machine_get_display (f.machine));
  spin (2000);
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - rows, ==, 0);

  /* One 16x16 square changes: 16 rows, no more. */
  wait_serial (&f, "changed");
  rows_wait = (RowsWait) { &f, rows + 16 };
  g_assert_true (wait_for (rows_reached, &rows_wait, 10000));
  spin (1000);
  g_test_message ("after the change: %" G_GUINT64_FORMAT " rows uploaded, the engine reported "
                  "%" G_GUINT64_FORMAT " damaged",
                  vireo_display_get_uploaded_rows (f.widget) - rows,
                  vr_display_get_damaged_rows (vr_machine_get_display (f.machine)) - engine_rows);
  /* The 16 rows the square covers; a refresh that lands while the guest is still drawing
   * the square uploads some of them twice (the engine test checks that the damaged rows
   * are exactly 416-431), but never a row outside it: at most 2 x 16. */
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - rows, >=, 16);
  g_assert_cmpuint (vireo_display_get_uploaded_rows (f.widget) - rows, <=, 32);
  check_pattern (&f, 1024, 768, 3,
                 fallback ? "guest-fallback-changed.png" : "guest-gl-changed.png");

  wait_serial (&f, "PASS");
  gtk_window_destroy (GTK_WINDOW (f.window));
  spin (100);
  vr_machine_stop (f.machine);
  vr_machine_free (f.machine);
  g_unlink (f.serial_path);
  g_free (f.serial_path);
}

int
main (int   argc,
      char *argv[])
{
  gtk_test_init (&argc, &argv, NULL);

  if (g_getenv ("VIREO_GUEST_DIR") == NULL)
    {
      g_printerr ("set VIREO_GUEST_DIR\n");
      return 77;
    }
  g_test_add_data_func ("/display-guest/gl", GINT_TO_POINTER (FALSE), test_guest);
  g_test_add_data_func ("/display-guest/fallback", GINT_TO_POINTER (TRUE), test_guest);
  return g_test_run ();
}
