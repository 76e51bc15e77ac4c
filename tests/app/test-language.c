/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The real app in another language, in-process under Xvfb: meson runs this test once per
 * language with LANGUAGE=<lang> (LC_ALL=C.UTF-8, which gettext honours LANGUAGE under) and
 * VIREO_LOCALEDIR=<build>/po, where i18n.gettext() leaves the .mo files. Against a temporary
 * library with two stopped machines it shows the main window, the machine view's pages and
 * every page of the New Machine wizard, and checks what a user would read there:
 *
 *  - the translations are on screen: a set of strings the window always shows (page names,
 *    the wizard's buttons and headings) appear in the language's words;
 *  - no English is left over: no visible text is an English message that the language
 *    translates (the visible texts are every mapped GtkLabel, tooltip and window title);
 *  - every visible text draws with real glyphs (Pango finds a font for every character: a
 *    missing CJK font shows as boxes);
 *  - layouts survive long (German) and short (Chinese) strings: no visible label of the UI
 *    is cut short with "…", the main window's minimum width stays within MAX_WINDOW_MIN_WIDTH,
 *    and the wizard keeps the size it opens with (its pages do not push it wider).
 *
 * Screenshots go to $VIREO_TEST_LOG_DIR as language-<lang>-<what>.png, for a person to look at.
 */

#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include "vireo-application.h"
#include "vireo-library.h"
#include "vireo-machine-view.h"
#include "vireo-new-machine-dialog.h"
#include "vireo-window.h"

/* The narrowest the main window may need to be: a 1024-pixel screen with room to spare. */
#define MAX_WINDOW_MIN_WIDTH 720

static VireoApplication *app;
static VireoWindow *window;
static char *tmp_root;
static char *guest_dir;
static const char *lang;   /* "en", "de", "ja", "zh_CN" … */

/* ---- helpers ---------------------------------------------------------------------------- */

typedef gboolean (*CondFunc) (gpointer data);

static gboolean
wait_for (CondFunc cond, gpointer data, double timeout_s)
{
  gint64 end = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);

  while (!cond (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (5000);
    }
  return TRUE;
}

static gboolean
always_false (gpointer data)
{
  return FALSE;
}

static void
spin (double seconds)
{
  wait_for (always_false, NULL, seconds);
}

static gboolean
is_drawn (gpointer data)
{
  return gtk_widget_get_mapped (data) && gtk_widget_get_width (data) > 0;
}

static void
screenshot (GtkWidget *widget, const char *what)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR");
  g_autoptr(GdkPaintable) paintable = NULL;
  g_autoptr(GtkSnapshot) snapshot = NULL;
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *name = g_strdup_printf ("language-%s-%s.png", lang, what);
  g_autofree char *path = NULL;
  int w, h;

  if (dir == NULL)
    dir = g_get_tmp_dir ();
  g_assert_true (wait_for (is_drawn, widget, 10));
  spin (0.4);   /* let layout, transitions and frames settle */
  w = gtk_widget_get_width (widget);
  h = gtk_widget_get_height (widget);
  paintable = gtk_widget_paintable_new (widget);
  snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (gtk_widget_get_native (widget)),
                                         node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s (%dx%d)", path, w, h);
}

static GtkWidget *
find_named (GtkWidget *widget, const char *name)
{
  if (g_strcmp0 (gtk_widget_get_name (widget), name) == 0)
    return widget;
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_named (c, name);

      if (found != NULL)
        return found;
    }
  return NULL;
}

/* ---- what is on screen ------------------------------------------------------------------ */

/* Texts that come from the machines, not from the translations. */
static gboolean
is_user_data (const char *text)
{
  static const char *const data[] = { "Demo", "Hello", "Vireo test guest", "demo.elf",
                                      "hello.elf", NULL };

  if (strchr (text, '/') != NULL)   /* a path */
    return TRUE;
  for (guint i = 0; data[i]; i++)
    if (strstr (text, data[i]) != NULL)
      return TRUE;
  return FALSE;
}

/* Whether @text has a letter: "64", "—", "1 / 4" are not checked for translation. */
static gboolean
has_letters (const char *text)
{
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    if (g_unichar_isalpha (g_utf8_get_char (p)))
      return TRUE;
  return FALSE;
}

typedef struct
{
  GPtrArray *texts;       /* every visible text (owned strings) */
  GPtrArray *problems;    /* what is wrong, one line each */
  GHashTable *seen;       /* problems already reported */
} Screen;

static void
problem (Screen *s, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
problem (Screen *s, const char *format, ...)
{
  va_list args;
  char *msg;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  if (g_hash_table_contains (s->seen, msg))
    {
      g_free (msg);
      return;
    }
  g_hash_table_add (s->seen, g_strdup (msg));
  g_ptr_array_add (s->problems, msg);
}

static void
check_text (Screen *s, GtkWidget *widget, const char *text, const char *what)
{
  g_autoptr(PangoLayout) layout = NULL;
  const char *translated;
  int unknown;

  if (text == NULL || *text == '\0')
    return;
  g_ptr_array_add (s->texts, g_strdup (text));

  /* Real glyphs for every character. */
  layout = gtk_widget_create_pango_layout (widget, text);
  unknown = pango_layout_get_unknown_glyphs_count (layout);
  if (unknown > 0)
    problem (s, "%s “%s” (%s) draws %d character(s) without a font", what, text,
             G_OBJECT_TYPE_NAME (widget), unknown);

  /* No English left over: an English message shown as is, although the language has it. */
  if (strcmp (lang, "en") != 0 && has_letters (text) && !is_user_data (text))
    {
      translated = g_dgettext (GETTEXT_PACKAGE, text);
      if (translated != text && strcmp (translated, text) != 0)
        problem (s, "%s shows English “%s” (%s) instead of “%s”", what, text,
                 G_OBJECT_TYPE_NAME (widget), translated);
    }
}

static void
walk (Screen *s, GtkWidget *widget)
{
  if (!gtk_widget_get_mapped (widget))
    return;

  if (GTK_IS_LABEL (widget))
    {
      const char *text = gtk_label_get_text (GTK_LABEL (widget));

      /* A mnemonic label shows "Cancel" for the message "_Cancel": check the message. */
      if (gtk_label_get_use_underline (GTK_LABEL (widget)))
        check_text (s, widget, gtk_label_get_label (GTK_LABEL (widget)), "a label");
      else
        check_text (s, widget, text, "a label");
      /* Cut short with "…": fine for a machine's name or a path, not for the UI's words. */
      if (gtk_label_get_ellipsize (GTK_LABEL (widget)) != PANGO_ELLIPSIZE_NONE
          && pango_layout_is_ellipsized (gtk_label_get_layout (GTK_LABEL (widget)))
          && !is_user_data (text))
        problem (s, "the label “%s” is cut short (%d px wide)", text,
                 gtk_widget_get_width (widget));
    }
  if (gtk_widget_get_has_tooltip (widget))
    {
      const char *tip = gtk_widget_get_tooltip_text (widget);

      check_text (s, widget, tip, "a tooltip");
    }
  if (GTK_IS_WINDOW (widget))
    check_text (s, widget, gtk_window_get_title (GTK_WINDOW (widget)), "a window title");

  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    walk (s, c);
}

static Screen *
screen_new (void)
{
  Screen *s = g_new0 (Screen, 1);

  s->texts = g_ptr_array_new_with_free_func (g_free);
  s->problems = g_ptr_array_new_with_free_func (g_free);
  s->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return s;
}

static void
screen_free (Screen *s)
{
  g_ptr_array_unref (s->texts);
  g_ptr_array_unref (s->problems);
  g_hash_table_unref (s->seen);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Screen, screen_free)

/* Compares without mnemonic underscores ("_Cancel", "キャンセル(_C)"). */
static gboolean
screen_has (Screen *s, const char *text)
{
  g_autoptr(GString) want = g_string_new (text);

  g_string_replace (want, "_", "", 0);
  for (guint i = 0; i < s->texts->len; i++)
    {
      g_autoptr(GString) have = g_string_new (g_ptr_array_index (s->texts, i));

      g_string_replace (have, "_", "", 0);
      if (strcmp (have->str, want->str) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Looks at @widget's visible texts: @expected (English messages, NULL-terminated) must be
 * there in this language, and nothing may be wrong. */
static void
check_screen (GtkWidget *widget, const char *where, const char *const *expected)
{
  g_autoptr(Screen) s = screen_new ();

  g_assert_true (wait_for (is_drawn, widget, 10));
  spin (0.3);
  walk (s, widget);
  g_test_message ("%s: %u visible texts", where, s->texts->len);
  for (guint i = 0; expected && expected[i]; i++)
    {
      const char *want = g_dgettext (GETTEXT_PACKAGE, expected[i]);

      if (!screen_has (s, want))
        problem (s, "“%s” (“%s”) is not on screen", want, expected[i]);
    }
  for (guint i = 0; i < s->problems->len; i++)
    g_test_message ("%s: %s", where, (char *) g_ptr_array_index (s->problems, i));
  if (s->problems->len > 0)
    {
      g_test_fail_printf ("%s in %s: %u problem(s), the first: %s", where, lang,
                          s->problems->len, (char *) g_ptr_array_index (s->problems, 0));
    }
}

/* ---- the library before the app opens it ------------------------------------------------ */

static void
created_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  VireoMachine **out = user_data;

  *out = vireo_library_create_machine_finish (VIREO_LIBRARY (object), result, &error);
  g_assert_no_error (error);
}

static gboolean
nonnull (gpointer data)
{
  return *(gpointer *) data != NULL;
}

static void
make_machine (VireoLibrary *library, const char *name, const char *guest,
              VireoDisplayKind display)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_new ();
  VireoMachine *machine = NULL;

  config->name = g_strdup (name);
  config->source = g_strdup ("Vireo test guest");
  config->boot_kind = VIREO_BOOT_KERNEL;
  config->kernel = g_build_filename (guest_dir, guest, NULL);
  config->memory_mib = 64;
  config->display = display;
  vireo_library_create_machine_async (library, config, NULL, created_cb, &machine);
  g_assert_true (wait_for (nonnull, &machine, 30));
  g_object_unref (machine);
}

static void
loaded_cb (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_assert_true (vireo_library_load_finish (VIREO_LIBRARY (object), result, NULL));
  *(gboolean *) user_data = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *) data;
}

static void
prepare_library (const char *dir)
{
  g_autoptr(VireoLibrary) library = vireo_library_new (dir);
  gboolean loaded = FALSE;

  vireo_library_load_async (library, NULL, loaded_cb, &loaded);
  g_assert_true (wait_for (is_true, &loaded, 30));
  make_machine (library, "Demo", "demo.elf", VIREO_DISPLAY_STD);
  make_machine (library, "Hello", "hello.elf", VIREO_DISPLAY_NONE);
}

static VireoMachine *
find_machine (const char *name)
{
  VireoLibrary *library = vireo_application_get_library (app);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (library));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) m = g_list_model_get_item (G_LIST_MODEL (library), i);

      if (g_strcmp0 (vireo_machine_get_name (m), name) == 0)
        return m;   /* the library keeps it */
    }
  return NULL;
}

static gboolean
library_loaded (gpointer data)
{
  VireoLibrary *library = vireo_application_get_library (app);

  return vireo_library_is_loaded (library)
         && g_list_model_get_n_items (G_LIST_MODEL (library)) == 2;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_translation_loaded (void)
{
  /* English: the messages themselves. Any other language: its .mo must be there. */
  const char *t = g_dgettext (GETTEXT_PACKAGE, "New Machine");

  g_test_message ("LANGUAGE=%s: “New Machine” is “%s”", g_getenv ("LANGUAGE"), t);
  if (strcmp (lang, "en") == 0)
    g_assert_cmpstr (t, ==, "New Machine");
  else if (strcmp (t, "New Machine") == 0)
    g_test_fail_printf ("no translation for %s: is %s/%s/LC_MESSAGES/%s.mo built?", lang,
                        g_getenv ("VIREO_LOCALEDIR"), lang, GETTEXT_PACKAGE);
}

static void
test_window (void)
{
  static const char *const expected[] = { "Display", "Console", "Details", "Performance", NULL };
  VireoMachineView *view;
  int min_w = 0, nat_w = 0;

  g_assert_true (wait_for (library_loaded, NULL, 30));
  vireo_window_select_machine (window, find_machine ("Demo"));
  view = vireo_window_get_machine_view (window);
  g_assert_nonnull (view);
  vireo_machine_view_show_page (view, "display");
  screenshot (GTK_WIDGET (window), "window");
  check_screen (GTK_WIDGET (window), "the main window", expected);

  gtk_widget_measure (GTK_WIDGET (window), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, &nat_w,
                      NULL, NULL);
  g_test_message ("the main window: minimum width %d px, natural %d px", min_w, nat_w);
  if (min_w > MAX_WINDOW_MIN_WIDTH)
    g_test_fail_printf ("in %s the main window needs %d px, more than %d", lang, min_w,
                        MAX_WINDOW_MIN_WIDTH);
}

static void
test_machine_view (void)
{
  static const char *const pages[] = { "details", "console", "snapshots", "performance", NULL };
  VireoMachineView *view;

  vireo_window_select_machine (window, find_machine ("Demo"));
  view = vireo_window_get_machine_view (window);
  for (guint i = 0; pages[i]; i++)
    {
      g_autofree char *where = g_strdup_printf ("the %s page", pages[i]);

      vireo_machine_view_show_page (view, pages[i]);
      screenshot (GTK_WIDGET (window), pages[i]);
      check_screen (GTK_WIDGET (window), where, NULL);
    }
  vireo_machine_view_show_page (view, "display");
}

static gboolean
dialog_idle (gpointer data)
{
  return !vireo_new_machine_dialog_is_busy (data);
}

static void
wizard_next (VireoNewMachineDialog *dialog)
{
  g_assert_true (wait_for (dialog_idle, dialog, 30));
  spin (0.1);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (dialog), "wizard.next", NULL));
  spin (0.2);
}

static void
test_wizard (void)
{
  static const char *const source_expected[] = { "_Cancel", "_Next", NULL };
  static const char *const pages[] = { "hardware", "storage", "network", "summary", NULL };
  VireoNewMachineDialog *dialog;
  g_autofree char *kernel = g_build_filename (guest_dir, "hello.elf", NULL);
  int open_w, open_h;

  dialog = vireo_new_machine_dialog_new (GTK_WINDOW (window),
                                         vireo_application_get_library (app));
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_stack_set_transition_type (GTK_STACK (find_named (GTK_WIDGET (dialog), "stack")),
                                 GTK_STACK_TRANSITION_TYPE_NONE);
  screenshot (GTK_WIDGET (dialog), "wizard-1-source");
  open_w = gtk_widget_get_width (GTK_WIDGET (dialog));
  open_h = gtk_widget_get_height (GTK_WIDGET (dialog));
  check_screen (GTK_WIDGET (dialog), "the wizard's source page", source_expected);

  /* A Linux kernel as the source, so that every page can be reached. */
  gtk_check_button_set_active (GTK_CHECK_BUTTON (find_named (GTK_WIDGET (dialog),
                                                             "kernel-check")), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (find_named (GTK_WIDGET (dialog), "kernel-entry")),
                         kernel);
  g_assert_true (wait_for (dialog_idle, dialog, 30));
  screenshot (GTK_WIDGET (dialog), "wizard-1-source-kernel");
  check_screen (GTK_WIDGET (dialog), "the wizard's source page with a kernel", NULL);
  for (guint i = 0; pages[i]; i++)
    {
      g_autofree char *what = g_strdup_printf ("wizard-%u-%s", i + 2, pages[i]);
      g_autofree char *where = g_strdup_printf ("the wizard's %s page", pages[i]);

      wizard_next (dialog);
      g_assert_cmpstr (vireo_new_machine_dialog_get_page (dialog), ==, pages[i]);
      screenshot (GTK_WIDGET (dialog), what);
      check_screen (GTK_WIDGET (dialog), where, NULL);
      /* Long words do not push the wizard wider (or taller) than it opened. */
      if (gtk_widget_get_width (GTK_WIDGET (dialog)) > open_w
          || gtk_widget_get_height (GTK_WIDGET (dialog)) > open_h)
        g_test_fail_printf ("in %s the wizard grew from %dx%d to %dx%d on its %s page", lang,
                            open_w, open_h, gtk_widget_get_width (GTK_WIDGET (dialog)),
                            gtk_widget_get_height (GTK_WIDGET (dialog)), pages[i]);
    }
  gtk_window_destroy (GTK_WINDOW (dialog));
  spin (0.2);
}

/* ---- main ------------------------------------------------------------------------------- */

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

int
main (int argc, char *argv[])
{
  const char *localedir = g_getenv ("VIREO_LOCALEDIR");
  g_autofree char *lib_dir = NULL;
  int ret;

  /* What main.c does, with the build tree's translations. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  lang = g_getenv ("LANGUAGE");
  if (lang == NULL || *lang == '\0')
    lang = "en";

  guest_dir = g_strdup (g_getenv ("VIREO_GUEST_DIR"));
  tmp_root = g_dir_make_tmp ("vireo-test-language-XXXXXX", NULL);
  g_assert_nonnull (tmp_root);
  g_setenv ("XDG_DATA_HOME", tmp_root, TRUE);
  g_setenv ("XDG_CONFIG_HOME", tmp_root, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  lib_dir = g_build_filename (tmp_root, "vireo", "machines", NULL);
  g_setenv ("VIREO_LIBRARY_DIR", lib_dir, TRUE);

  g_test_init (&argc, &argv, NULL);

  if (guest_dir == NULL || !g_file_test (guest_dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("needs VIREO_GUEST_DIR with the test guests");
      rm_rf (tmp_root);
      return g_test_run ();
    }

  prepare_library (lib_dir);

  app = vireo_application_new ();
  g_application_set_flags (G_APPLICATION (app),
                           g_application_get_flags (G_APPLICATION (app))
                             | G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, NULL));
  g_application_activate (G_APPLICATION (app));
  window = VIREO_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);

  g_test_add_func ("/language/translation-loaded", test_translation_loaded);
  g_test_add_func ("/language/window", test_window);
  g_test_add_func ("/language/machine-view", test_machine_view);
  g_test_add_func ("/language/wizard", test_wizard);
  ret = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (window));
  spin (0.2);
  g_clear_object (&app);
  rm_rf (tmp_root);
  return ret;
}
