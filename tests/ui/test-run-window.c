/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * `vireo-run --display window` as a person uses it, under Xvfb: the real engine runs a test
 * guest, xdotool finds the window by its title (the kernel's file name) and types into it,
 * and the window is captured from the X server (GStreamer's ximagesrc) into a PNG in the
 * test log directory.
 *
 *   /run-window/pattern  the `display` guest: the window shows its colour bars and
 *                        checkerboard (display-pattern.h) at 1024x768, scaled to fit
 *   /run-window/keys     the `input` guest (--input): keys typed with xdotool arrive, in
 *                        order, through the virtio keyboard; Esc ends the guest (PASS)
 *
 * Environment: VIREO_RUN, VIREO_GUEST_DIR, VIREO_TEST_LOG_DIR (set by tests/ui/meson.build).
 */

#include "config.h"

#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtk/gtk.h>
#include <string.h>

#define WAIT_S 120

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  GString          *log;
} Run;

static const char *
log_dir (void)
{
  return g_getenv ("VIREO_TEST_LOG_DIR") ? g_getenv ("VIREO_TEST_LOG_DIR") : ".";
}

static void
run_start (Run        *run,
           const char *guest,
           const char *first_arg,
           ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  va_list ap;

  g_ptr_array_add (argv, g_strdup (g_getenv ("VIREO_RUN")));
  g_ptr_array_add (argv, g_strdup ("--display"));
  g_ptr_array_add (argv, g_strdup ("window"));
  g_ptr_array_add (argv, g_strdup ("--serial"));
  g_ptr_array_add (argv, g_strdup ("stdio"));
  g_ptr_array_add (argv, g_strdup ("--timeout"));
  g_ptr_array_add (argv, g_strdup_printf ("%d", WAIT_S));
  g_ptr_array_add (argv, g_strdup ("--kernel"));
  g_ptr_array_add (argv, g_build_filename (g_getenv ("VIREO_GUEST_DIR"), guest, NULL));
  va_start (ap, first_arg);
  for (const char *a = first_arg; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, g_strdup (a));
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  run->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  run->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (run->process));
  run->log = g_string_new (NULL);
}

/* Reads serial lines until one starts with @prefix; FALSE at the end of the output. */
static gboolean
run_wait_line (Run        *run,
               const char *prefix)
{
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *line = g_data_input_stream_read_line_utf8 (run->out, NULL, NULL, &error);

      if (line == NULL)
        {
          g_test_message ("serial ended before “%s”:\n%s", prefix, run->log->str);
          return FALSE;
        }
      g_string_append_printf (run->log, "%s\n", line);
      if (g_str_has_prefix (line, prefix))
        return TRUE;
    }
}

static int
run_finish (Run *run)
{
  g_autoptr (GError) error = NULL;
  int status;

  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (run->out, NULL, NULL, NULL);

      if (line == NULL)
        break;
      g_string_append_printf (run->log, "%s\n", line);
    }
  g_subprocess_wait (run->process, NULL, &error);
  g_assert_no_error (error);
  if (g_test_verbose ())
    g_test_message ("serial:\n%s", run->log->str);
  status = g_subprocess_get_if_exited (run->process) ? g_subprocess_get_exit_status (run->process)
                                                      : -1;
  g_clear_object (&run->out);
  g_clear_object (&run->process);
  g_string_free (run->log, TRUE);
  return status;
}

static char *
xdotool (const char *first,
         ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  int status = 0;
  va_list ap;

  g_ptr_array_add (argv, (char *) "xdotool");
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL,
                               NULL, &out, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_strstrip (g_steal_pointer (&out));
}

/* The window's content as B G R x bytes, from the X server. */
static guint8 *
capture_window (const char *xid,
                int        *width,
                int        *height,
                const char *png)
{
  g_autofree char *description = g_strdup_printf (
    "ximagesrc xid=%s num-buffers=1 use-damage=false ! videoconvert "
    "! video/x-raw,format=BGRx ! appsink name=sink", xid);
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = gst_parse_launch (description, &error);
  g_autoptr (GstElement) sink = NULL;
  g_autoptr (GstSample) sample = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autofree char *path = NULL;
  GstStructure *s;
  GstMapInfo map;
  guint8 *data;

  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND);
  g_assert_nonnull (sample);
  s = gst_caps_get_structure (gst_sample_get_caps (sample), 0);
  gst_structure_get_int (s, "width", width);
  gst_structure_get_int (s, "height", height);
  gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ);
  data = g_memdup2 (map.data, (gsize) *width * 4 * *height);
  gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
  gst_element_set_state (pipeline, GST_STATE_NULL);

  for (gsize i = 3; i < (gsize) *width * 4 * *height; i += 4)
    data[i] = 0xff;
  bytes = g_bytes_new (data, (gsize) *width * 4 * *height);
  texture = gdk_memory_texture_new (*width, *height, GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes,
                                    (gsize) *width * 4);
  path = g_build_filename (log_dir (), png, NULL);
  gdk_texture_save_to_png (texture, path);
  g_test_message ("window captured to %s", path);
  return data;
}

static guint32
rgb (const guint8 *data,
     int           width,
     int           x,
     int           y)
{
  const guint8 *p = data + ((gsize) y * width + x) * 4;

  return ((guint32) p[2] << 16) | ((guint32) p[1] << 8) | p[0];
}

static void
test_pattern (void)
{
  static const guint32 bars[] = { 0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000,
                                  0x0000ff };
  g_autofree char *xid = NULL;
  g_autofree guint8 *data = NULL;
  gboolean found_bars = FALSE, found_checker = FALSE;
  int width, height;
  Run run;

  run_start (&run, "display.elf", "--append", "hold=3 idle=1", NULL);
  g_assert_true (run_wait_line (&run, "mode 1024x768: drawn"));
  xid = xdotool ("search", "--sync", "--onlyvisible", "--name", "^display\\.elf$", NULL);
  g_assert_cmpstr (xid, !=, "");
  g_usleep (G_USEC_PER_SEC);
  data = capture_window (xid, &width, &height, "run-window-display.png");

  /* Some row shows the eight bars in order, and some lower row the c0c0c0 / 404040
   * checkerboard. */
  for (int y = 0; y < height && !(found_bars && found_checker); y++)
    {
      guint next = 0, flips = 0;
      guint32 last = 0;

      for (int x = 0; x < width; x++)
        {
          guint32 c = rgb (data, width, x, y);

          if (next < G_N_ELEMENTS (bars) && c == bars[next])
            next++;
          if ((c == 0xc0c0c0 || c == 0x404040) && c != last)
            flips++;
          last = c;
        }
      found_bars |= next == G_N_ELEMENTS (bars);
      found_checker |= flips >= 40;
    }
  g_assert_true (found_bars);
  g_assert_true (found_checker);

  g_assert_true (run_wait_line (&run, "changed"));
  g_assert_cmpint (run_finish (&run), ==, 1);   /* PASS: debug-exit 0 */
}

static void
test_keys (void)
{
  static const char *expected[] = {
    "event keyboard 1 30 1", "event keyboard 1 30 0",     /* a */
    "event keyboard 1 42 1", "event keyboard 1 48 1",     /* B: Shift, b */
    "event keyboard 1 42 0", "event keyboard 1 48 0",
    "event keyboard 1 28 1", "event keyboard 1 28 0",     /* Return */
    "event keyboard 1 1 1", "event keyboard 1 1 0",       /* Esc: the guest ends */
  };
  g_autofree char *xid = NULL;
  Run run;

  run_start (&run, "input.elf", "--input", NULL);
  g_assert_true (run_wait_line (&run, "ready"));
  xid = xdotool ("search", "--sync", "--onlyvisible", "--name", "^input\\.elf$", NULL);
  g_free (xdotool ("windowfocus", "--sync", xid, NULL));
  /* The guest wants to hear from its tablet too: a click in the screen (which also captures
   * the keyboard). */
  g_free (xdotool ("mousemove", "--window", xid, "--sync", "400", "300", NULL));
  g_free (xdotool ("click", "1", NULL));
  g_usleep (G_USEC_PER_SEC / 2);
  g_free (xdotool ("key", "--delay", "150", "a", "B", "Return", "Escape", NULL));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *line = NULL;

      do
        {
          g_clear_pointer (&line, g_free);
          line = g_data_input_stream_read_line_utf8 (run.out, NULL, NULL, &error);
          g_assert_nonnull (line);
        }
      while (!g_str_has_prefix (line, "event keyboard 1 "));   /* SYN and tablet lines */
      g_assert_cmpstr (line, ==, expected[i]);
    }
  g_assert_cmpint (run_finish (&run), ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);

  if (g_getenv ("VIREO_RUN") == NULL || g_getenv ("VIREO_GUEST_DIR") == NULL)
    {
      g_printerr ("set VIREO_RUN and VIREO_GUEST_DIR\n");
      return 77;
    }
  g_test_add_func ("/run-window/pattern", test_pattern);
  g_test_add_func ("/run-window/keys", test_keys);
  return g_test_run ();
}
