/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * "Install from ISO" in the real app (VireoApplication, VireoWindow), in-process under Xvfb,
 * against an empty temporary library and a GRUB rescue ISO (tests/guests/firmware/
 * make-media.sh grub: its menu, on the serial line and the screen, has the entry "Vireo
 * firmware test", and starts it after 30 s, which ends the machine through the debug-exit
 * port). As a user would:
 *
 *  - the New Machine wizard from the window, with the ISO as the source, a new 2 GiB disk,
 *    Start (not Customize): machine.conf says Kind=cdrom, BootOrder=cdrom,disk, a new
 *    qcow2 disk in the machine's folder and the ISO where it is (read-only, never copied);
 *  - the machine boots through SeaBIOS to GRUB's menu: the menu's entry on the serial line,
 *    the guest's screen no longer black and not one colour (a key then stops the countdown);
 *  - Details: Eject while it runs (the engine's drive is empty, machine.conf says so); a
 *    reset then finds nothing to boot (the blank disk, the empty drive): the machine view's
 *    banner says so, with what to do; Change… through the file chooser puts another ISO in
 *    the drive (the engine has it, the banner goes, machine.conf follows) and the firmware,
 *    trying again, boots GRUB from it;
 *  - off: the new disk passes `qemu-img check`.
 *
 * Screenshots (install-iso-*.png) of the wizard's pages, the menu on the display, the
 * Details page and the banner go to $VIREO_TEST_LOG_DIR. Under emulated KVM (~2-3 M
 * instructions/s) SeaBIOS and GRUB take one to four minutes to the menu (the host's load
 * counts); SeaBIOS alone about half a minute to "No bootable device".
 *
 * Environment: VIREO_GRUB_ISO (the GRUB ISO), VIREO_TEST_LOG_DIR.
 */

#include "config.h"

#include <adwaita.h>
#include <glib/gstdio.h>
#include <linux/input-event-codes.h>
#include <string.h>
#include <unistd.h>

#include "vireo-application.h"
#include "vireo-library.h"
#include "vireo-machine-view.h"
#include "vireo-new-machine-dialog.h"
#include "vireo-window.h"

#define BOOT_TIMEOUT_S 480   /* 2-4 min to the menu on the screen, more on a busy host */
#define MENU_ENTRY     "Vireo firmware test"

static VireoApplication *app;
static VireoWindow *window;
static char *tmp_root;
static char *installer_iso;   /* a copy of the GRUB ISO, the wizard's source */
static char *other_iso;       /* another copy, for Change… */
static VireoMachine *machine; /* the new machine (the library keeps it) */

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
        g_usleep (10000);
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
save_texture (GdkTexture *texture, const char *name)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : g_get_tmp_dir (), name, NULL);

  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s (%dx%d)", path, gdk_texture_get_width (texture),
                  gdk_texture_get_height (texture));
}

static void
screenshot (GtkWidget *widget, const char *name)
{
  g_autoptr(GdkPaintable) paintable = NULL;
  g_autoptr(GtkSnapshot) snapshot = NULL;
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  GskRenderer *renderer;
  int w = 0, h = 0;

  g_assert_true (wait_for (is_drawn, widget, 10));
  spin (0.5);   /* let layout and frames settle */
  paintable = gtk_widget_paintable_new (widget);
  for (guint tries = 0; node == NULL && tries < 50; tries++)
    {
      w = gtk_widget_get_width (widget);
      h = gtk_widget_get_height (widget);
      snapshot = gtk_snapshot_new ();
      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
      if (node == NULL)
        spin (0.2);
    }
  g_assert_nonnull (node);
  renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  save_texture (texture, name);
}

static GtkWidget *
find_named (GtkWidget *widget, const char *name)
{
  if (g_strcmp0 (gtk_widget_get_name (widget), name) == 0)
    return widget;
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = find_named (child, name);

      if (found != NULL)
        return found;
    }
  return NULL;
}

static GtkWidget *
find (GtkWidget *root, const char *name)
{
  GtkWidget *w = find_named (root, name);

  if (w == NULL)
    g_error ("no widget named %s", name);
  return w;
}

/* The first visible toplevel of @type, or NULL. */
static GtkWindow *
find_toplevel (GType type)
{
  GListModel *toplevels = gtk_window_get_toplevels ();
  guint n = g_list_model_get_n_items (toplevels);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GObject) w = g_list_model_get_item (toplevels, i);

      if (G_TYPE_CHECK_INSTANCE_TYPE (w, type) && gtk_widget_get_visible (GTK_WIDGET (w)))
        return GTK_WINDOW (w);
    }
  return NULL;
}

static gboolean
toplevel_shown (gpointer data)
{
  return find_toplevel (GPOINTER_TO_SIZE (data)) != NULL;
}

/* A start failure shows a message dialog over the window: fail with what it says. */
static void
assert_no_message_dialog (void)
{
  GtkWindow *dialog = find_toplevel (ADW_TYPE_MESSAGE_DIALOG);

  if (dialog != NULL)
    g_error ("a message dialog appeared: %s: %s",
             adw_message_dialog_get_heading (ADW_MESSAGE_DIALOG (dialog)),
             adw_message_dialog_get_body (ADW_MESSAGE_DIALOG (dialog)));
}

static char *
read_file (const char *path)
{
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static char *
read_serial_log (void)
{
  g_autofree char *path = vireo_machine_dup_serial_log_path (machine);

  return read_file (path);
}

static guint
count_occurrences (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

static char *
machine_conf (void)
{
  g_autofree char *path = g_build_filename (vireo_machine_get_dir (machine),
                                            VIREO_MACHINE_CONFIG_FILE, NULL);

  return read_file (path);
}

static char *
conf_value (const char *group, const char *key)
{
  g_autofree char *text = machine_conf ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();

  g_assert_true (g_key_file_load_from_data (kf, text, (gsize) -1, G_KEY_FILE_NONE, NULL));
  return g_key_file_get_value (kf, group, key, NULL);
}

static VireoMachineView *
view (void)
{
  VireoMachineView *v = vireo_window_get_machine_view (window);

  g_assert_nonnull (v);
  return v;
}

static VrMachine *
vr (void)
{
  VrMachine *m = vireo_machine_get_vr_machine (machine);

  g_assert_nonnull (m);
  return m;
}

static gboolean
state_is (gpointer data)
{
  return vireo_machine_get_state (machine) == (VireoMachineState) GPOINTER_TO_INT (data);
}

/* Copies @src to @dst (a few MiB). */
static void
copy_file (const char *src, const char *dst)
{
  g_autoptr(GFile) from = g_file_new_for_path (src);
  g_autoptr(GFile) to = g_file_new_for_path (dst);
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* ---- the guest's screen ----------------------------------------------------------------- */

typedef struct
{
  guint    width;
  guint    height;
  guint    colours;    /* distinct colours, counted up to 64 */
  gboolean non_black;  /* a pixel that is not black */
  guint    light_run;  /* the longest run of light pixels in a row */
  guint    light_rows; /* rows with a run of light pixels at least MENU_MIN_RUN long */
} FrameStats;

/* GRUB's menu on an 80-column text screen (8-pixel characters, 640 pixels): its box is a
 * light line across 76 columns at the top and the bottom, and the highlighted entry a light
 * bar as wide (inverse video: whole rows of light pixels above and below its letters).
 * "Welcome to GRUB!" is 16 characters. */
#define MENU_MIN_RUN  400
#define MENU_MIN_ROWS 5

static gboolean
frame_stats (FrameStats *st)
{
  VireoDisplay *display = vireo_machine_view_get_display (view ());
  g_autoptr(GdkTexture) frame = vireo_display_get_frame (display);
  g_autofree guint32 *pixels = NULL;
  guint32 seen[64];
  gsize stride;

  memset (st, 0, sizeof *st);
  if (frame == NULL)
    return FALSE;
  st->width = gdk_texture_get_width (frame);
  st->height = gdk_texture_get_height (frame);
  stride = st->width * 4;
  pixels = g_malloc (stride * st->height);
  gdk_texture_download (frame, (guchar *) pixels, stride);
  for (gsize y = 0; y < st->height; y++)
    {
      guint run = 0;

      for (gsize x = 0; x < st->width; x++)
        {
          /* GDK_MEMORY_DEFAULT: B G R A in memory */
          guint32 p = pixels[y * st->width + x] & 0x00ffffff;
          gboolean known = FALSE;

          if (p != 0)
            st->non_black = TRUE;
          for (guint j = 0; j < st->colours && !known; j++)
            known = seen[j] == p;
          if (!known && st->colours < G_N_ELEMENTS (seen))
            seen[st->colours++] = p;
          run = (p & 0x808080) == 0x808080 ? run + 1 : 0;
          st->light_run = MAX (st->light_run, run);
          if (run == MENU_MIN_RUN)
            st->light_rows++;
        }
    }
  return TRUE;
}

typedef struct
{
  gboolean on_screen;     /* wait for the menu on the screen too, not only the serial line */
  guint    menus_before;  /* the menu's entry in serial.log before this boot */
  gboolean saw_black;     /* a frame, or no mode at all, that was all black */
  gint64   next_look;     /* looking costs CPU time the emulated guest needs: twice a second */
} BootWatch;

/* GRUB's menu is on the serial line (once more than before) and on the screen: a picture
 * that is not black, not one colour, with the menu's box and its highlighted entry. (The
 * screen comes later than the serial line: the firmware draws text into the framebuffer
 * character by character, slowly under emulation.) */
static gboolean
menu_shown (gpointer data)
{
  BootWatch *w = data;
  g_autofree char *log = NULL;
  FrameStats st;

  if (g_get_monotonic_time () < w->next_look)
    return FALSE;
  w->next_look = g_get_monotonic_time () + G_USEC_PER_SEC / 2;
  assert_no_message_dialog ();
  log = read_serial_log ();
  if (!frame_stats (&st) || !st.non_black)
    w->saw_black = TRUE;
  if (count_occurrences (log, MENU_ENTRY) <= w->menus_before)
    return FALSE;
  return !w->on_screen || (st.non_black && st.colours >= 2 && st.light_rows >= MENU_MIN_ROWS);
}

/* ---- the library and the app ------------------------------------------------------------ */

static gboolean
library_loaded (gpointer data)
{
  return vireo_library_is_loaded (vireo_application_get_library (app));
}

static void
open_app (void)
{
  g_autoptr(GError) error = NULL;

  app = vireo_application_new ();
  g_application_set_flags (G_APPLICATION (app),
                           g_application_get_flags (G_APPLICATION (app))
                             | G_APPLICATION_NON_UNIQUE);
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);
  g_application_activate (G_APPLICATION (app));
  window = VIREO_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);
  g_assert_true (wait_for (library_loaded, NULL, 30));
}

/* ---- the wizard ------------------------------------------------------------------------- */

typedef struct
{
  VireoNewMachineDialog *dialog;
} Wizard;

static gboolean
wizard_idle (gpointer data)
{
  Wizard *w = data;

  return !vireo_new_machine_dialog_is_busy (w->dialog);
}

static void
wizard_next (Wizard *w, const char *page, const char *shot)
{
  GtkWidget *root = GTK_WIDGET (w->dialog);

  g_assert_true (wait_for (wizard_idle, w, 30));
  spin (0.1);
  g_assert_cmpstr (vireo_new_machine_dialog_get_page (w->dialog), ==, page);
  if (shot != NULL)
    screenshot (root, shot);
  g_assert_true (gtk_widget_is_sensitive (find (root, "next-button")));
  gtk_widget_activate_action (root, "wizard.next", NULL);
  spin (0.1);
}

static void
set_text (Wizard *w, const char *name, const char *text)
{
  gtk_editable_set_text (GTK_EDITABLE (find (GTK_WIDGET (w->dialog), name)), text);
}

static void
created_cb (VireoNewMachineDialog *dialog,
            VireoMachine          *created,
            gboolean               customize,
            gpointer               user_data)
{
  g_assert_false (customize);
  machine = created;
}

static gboolean
dialog_gone (gpointer data)
{
  return *(gpointer *) data == NULL;
}

static void
test_wizard (void)
{
  Wizard w = { NULL };
  GtkWidget *root;
  g_autofree char *kind = NULL, *order = NULL;
  g_autofree char *path0 = NULL, *format0 = NULL, *media0 = NULL;
  g_autofree char *path1 = NULL, *media1 = NULL, *readonly1 = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  g_assert_cmpstr (vireo_window_get_page (window), ==, "empty");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.new-machine", NULL));
  g_assert_true (wait_for (toplevel_shown, GSIZE_TO_POINTER (VIREO_TYPE_NEW_MACHINE_DIALOG),
                           10));
  w.dialog = VIREO_NEW_MACHINE_DIALOG (find_toplevel (VIREO_TYPE_NEW_MACHINE_DIALOG));
  g_object_add_weak_pointer (G_OBJECT (w.dialog), (gpointer *) &w.dialog);
  g_signal_connect (w.dialog, "machine-created", G_CALLBACK (created_cb), NULL);
  root = GTK_WIDGET (w.dialog);
  /* No slide between pages: a screenshot shows one page. */
  gtk_stack_set_transition_type (GTK_STACK (find (root, "stack")),
                                 GTK_STACK_TRANSITION_TYPE_NONE);

  /* The installer image is the default source. */
  g_assert_true (gtk_check_button_get_active (GTK_CHECK_BUTTON (find (root, "iso-check"))));
  set_text (&w, "iso-entry", installer_iso);
  g_assert_true (wait_for (wizard_idle, &w, 30));
  g_test_message ("source: %s", gtk_label_get_text (GTK_LABEL (find (root, "iso-message"))));
  wizard_next (&w, "source", "install-iso-wizard-1-source.png");

  set_text (&w, "memory-spin", "256");
  set_text (&w, "cpus-spin", "1");
  wizard_next (&w, "hardware", "install-iso-wizard-2-hardware.png");

  /* An installer gets a new disk to install to. */
  g_assert_true (gtk_check_button_get_active (GTK_CHECK_BUTTON (find (root,
                                                                      "new-disk-check"))));
  set_text (&w, "disk-size-spin", "2");
  wizard_next (&w, "storage", "install-iso-wizard-3-storage.png");

  gtk_check_button_set_active (GTK_CHECK_BUTTON (find (root, "no-net-check")), TRUE);
  wizard_next (&w, "network", "install-iso-wizard-4-network.png");

  g_assert_true (wait_for (wizard_idle, &w, 30));
  g_assert_cmpstr (vireo_new_machine_dialog_get_page (w.dialog), ==, "summary");
  set_text (&w, "name-entry", "GRUB Installer");
  /* It starts when made: Customize Before Start is off, and can be turned on. */
  g_assert_false (gtk_switch_get_active (GTK_SWITCH (find (root, "customize-switch"))));
  g_assert_true (gtk_widget_is_sensitive (find (root, "customize-switch")));
  /* The note says the image is used where it is. */
  g_assert_true (gtk_widget_get_visible (find (root, "summary-note")));
  screenshot (root, "install-iso-wizard-5-summary.png");
  g_assert_true (gtk_widget_is_sensitive (find (root, "create-button")));
  gtk_widget_activate_action (root, "wizard.create", NULL);
  g_assert_true (wait_for (dialog_gone, &w.dialog, 60));
  g_assert_nonnull (machine);

  /* machine.conf: starts from the CD/DVD drive, the ISO in it, a new qcow2 disk. */
  kind = conf_value ("Boot", "Kind");
  order = conf_value ("Boot", "BootOrder");
  path0 = conf_value ("Disk 0", "Path");
  format0 = conf_value ("Disk 0", "Format");
  media0 = conf_value ("Disk 0", "Media");
  path1 = conf_value ("Disk 1", "Path");
  media1 = conf_value ("Disk 1", "Media");
  readonly1 = conf_value ("Disk 1", "ReadOnly");
  {
    g_autofree char *conf = machine_conf ();

    g_test_message ("machine.conf:\n%s", conf);
  }
  g_assert_cmpstr (kind, ==, "cdrom");
  g_assert_cmpstr (order, ==, "cdrom,disk");
  g_assert_cmpstr (path0, ==, "disk.qcow2");
  g_assert_cmpstr (format0, ==, "qcow2");
  g_assert_cmpstr (media0, ==, "disk");
  g_assert_cmpstr (path1, ==, installer_iso);
  g_assert_cmpstr (media1, ==, "cdrom");
  g_assert_cmpstr (readonly1, ==, "true");
  /* The ISO is used where it is: the machine's folder holds no copy. */
  dir = g_dir_open (vireo_machine_get_dir (machine), 0, NULL);
  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_test_message ("in the machine's folder: %s", name);
      g_assert_false (g_str_has_suffix (name, ".iso"));
    }
  {
    g_autofree char *qcow2 = g_build_filename (vireo_machine_get_dir (machine), "disk.qcow2",
                                               NULL);
    GStatBuf st;

    /* Sparse: a 2 GiB disk takes next to nothing. */
    g_assert_cmpint (g_stat (qcow2, &st), ==, 0);
    g_assert_cmpint (st.st_blocks * 512, <, 4 << 20);
  }
  /* The window shows the new machine's screen. */
  g_assert_true (vireo_window_get_selected_machine (window) == machine);
}

/* ---- booting ---------------------------------------------------------------------------- */

static gboolean
shows_screen (gpointer data)
{
  assert_no_message_dialog ();
  return g_strcmp0 (vireo_machine_view_get_display_state (view ()), "screen") == 0;
}

static void
test_boot_to_menu (void)
{
  BootWatch watch = { TRUE, 0, FALSE, 0 };
  g_autoptr(GdkTexture) frame = NULL;
  g_autofree char *log = NULL;
  FrameStats st;
  gint64 start = g_get_monotonic_time ();
  guint code = KEY_DOWN;

  g_assert_true (wait_for (state_is, GINT_TO_POINTER (VIREO_MACHINE_STATE_RUNNING), 60));
  g_assert_true (wait_for (shows_screen, NULL, 30));
  g_assert_cmpstr (vireo_machine_view_get_banner (view ()), ==, NULL);
  g_assert_true (wait_for (menu_shown, &watch, BOOT_TIMEOUT_S));
  g_test_message ("GRUB's menu on the screen after %.1f s",
                  (g_get_monotonic_time () - start) / 1e6);
  /* The guest's screen changed from black to a picture. */
  g_assert_true (watch.saw_black);
  g_assert_true (frame_stats (&st));
  g_test_message ("frame %ux%u, %u colours, light lines up to %u pixels long in %u rows",
                  st.width, st.height, st.colours, st.light_run, st.light_rows);
  g_assert_true (st.non_black);
  g_assert_cmpuint (st.colours, >=, 2);

  /* A key: GRUB stops counting down (its entry would end the machine). */
  vireo_display_send_keys (vireo_machine_view_get_display (view ()), &code, 1);
  spin (10);   /* the help text under the box comes last */
  frame = vireo_display_get_frame (vireo_machine_view_get_display (view ()));
  g_assert_nonnull (frame);
  save_texture (frame, "install-iso-grub-frame.png");
  screenshot (GTK_WIDGET (window), "install-iso-grub-menu.png");
  log = read_serial_log ();
  g_assert_cmpuint (count_occurrences (log, "entry started"), ==, 0);
  g_assert_nonnull (vireo_machine_get_vr_machine (machine));
}

/* ---- the CD/DVD drive in Details -------------------------------------------------------- */

static GtkWidget *
details (void)
{
  return GTK_WIDGET (vireo_machine_view_get_details (view ()));
}

/* Scrolls the Details page to the CD/DVD drive (for a screenshot that shows it). */
static void
show_cdrom_group (void)
{
  gtk_widget_grab_focus (find (details (), "change-cdrom-button"));
  spin (0.5);
}

static const char *
cdrom_row_title (void)
{
  return adw_preferences_row_get_title (ADW_PREFERENCES_ROW (find (details (), "cdrom-row")));
}

static void
test_eject (void)
{
  g_autofree char *ejected = NULL;
  g_autofree char *path = NULL;
  GtkWidget *eject, *change;

  vireo_machine_view_show_page (view (), "details");
  spin (0.5);
  eject = find (details (), "eject-cdrom-button");
  change = find (details (), "change-cdrom-button");
  /* The disc's name; both buttons work while the machine runs. */
  g_assert_cmpstr (cdrom_row_title (), ==, "installer.iso");
  g_assert_true (gtk_widget_is_sensitive (eject));
  g_assert_true (gtk_widget_is_sensitive (change));
  /* What it boots from can change only while it is off. */
  g_assert_false (gtk_widget_is_sensitive (find (details (), "boot-order-row")));
  g_assert_cmpuint (adw_combo_row_get_selected (ADW_COMBO_ROW (find (details (),
                                                                     "boot-order-row"))),
                    ==, 0);   /* CD/DVD, then disk */
  {
    g_autofree char *in_drive = vr_machine_get_cdrom (vr ());

    g_assert_cmpstr (in_drive, ==, installer_iso);
  }
  show_cdrom_group ();
  screenshot (GTK_WIDGET (window), "install-iso-details-running.png");

  g_assert_true (gtk_widget_activate_action (details (), "details.eject-cdrom", NULL));
  spin (0.5);
  /* The engine's drive is empty, machine.conf says so, the row too. */
  g_assert_null (vr_machine_get_cdrom (vr ()));
  g_assert_null (vireo_machine_dup_cdrom (machine));
  ejected = conf_value ("Disk 1", "Ejected");
  path = conf_value ("Disk 1", "Path");
  g_assert_cmpstr (ejected, ==, "true");
  g_assert_cmpstr (path, ==, installer_iso);   /* kept: the last image */
  g_assert_cmpstr (cdrom_row_title (), ==, "Empty");
  /* Nothing to eject now: the button says why it is off. */
  g_assert_false (gtk_widget_is_sensitive (eject));
  g_assert_cmpstr (gtk_widget_get_tooltip_text (eject), ==, "The drive is empty");
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (find (details (),
                                                                             "cdrom-row"))),
                            "ISO"));
  g_assert_true (gtk_widget_is_sensitive (change));
  show_cdrom_group ();
  screenshot (GTK_WIDGET (window), "install-iso-details-ejected.png");
}

static gboolean
banner_shown (gpointer data)
{
  const char *banner = vireo_machine_view_get_banner (view ());

  assert_no_message_dialog ();
  return banner != NULL && strstr (banner, "nothing to boot") != NULL;
}

static void
test_boot_failed (void)
{
  g_autoptr(GError) error = NULL;
  const char *banner;
  gint64 start = g_get_monotonic_time ();

  /* A reset with the drive empty and a blank disk: the firmware finds nothing. */
  g_assert_true (vireo_machine_reset (machine, &error));
  g_assert_no_error (error);
  vireo_machine_view_show_page (view (), "display");
  g_assert_true (wait_for (banner_shown, NULL, BOOT_TIMEOUT_S));
  g_test_message ("nothing to boot after %.1f s", (g_get_monotonic_time () - start) / 1e6);
  banner = vireo_machine_view_get_banner (view ());
  g_test_message ("banner: %s", banner);
  g_assert_nonnull (strstr (banner, "No bootable device"));
  g_assert_nonnull (strstr (banner, "Insert an installer ISO or choose another boot device in "
                                    "Details"));
  g_assert_nonnull (vireo_machine_get_boot_failure (machine));
  g_assert_cmpint (vireo_machine_get_state (machine), ==, VIREO_MACHINE_STATE_RUNNING);
  screenshot (GTK_WIDGET (window), "install-iso-boot-failed.png");
}

static gboolean
chooser_has_file (gpointer data)
{
  GtkWindow *chooser = find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG);
  g_autoptr(GFile) file = NULL;

  if (chooser == NULL)
    return FALSE;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
  G_GNUC_END_IGNORE_DEPRECATIONS
  return file != NULL && g_file_equal (file, data);
}

static gboolean
drive_holds (gpointer data)
{
  g_autofree char *in_drive = vr_machine_get_cdrom (vr ());

  return g_strcmp0 (in_drive, data) == 0;
}

static void
test_change (void)
{
  g_autoptr(GFile) other = g_file_new_for_path (other_iso);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *ejected = NULL;
  g_autofree char *log = NULL;
  BootWatch watch = { FALSE, 0, FALSE, 0 };
  GtkWindow *chooser;

  vireo_machine_view_show_page (view (), "details");
  spin (0.3);
  g_assert_true (gtk_widget_activate_action (details (), "details.change-cdrom", NULL));
  /* Not a portal here: GTK's own file chooser dialog. */
  g_assert_true (wait_for (toplevel_shown, GSIZE_TO_POINTER (GTK_TYPE_FILE_CHOOSER_DIALOG), 10));
  chooser = find_toplevel (GTK_TYPE_FILE_CHOOSER_DIALOG);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  g_assert_true (gtk_file_chooser_set_file (GTK_FILE_CHOOSER (chooser), other, &error));
  g_assert_no_error (error);
  G_GNUC_END_IGNORE_DEPRECATIONS
  g_assert_true (wait_for (chooser_has_file, other, 10));
  screenshot (GTK_WIDGET (chooser), "install-iso-change-chooser.png");
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_dialog_response (GTK_DIALOG (chooser), GTK_RESPONSE_ACCEPT);
  G_GNUC_END_IGNORE_DEPRECATIONS

  /* The engine has the new disc, the banner went, machine.conf and the row follow. */
  g_assert_true (wait_for (drive_holds, other_iso, 10));
  spin (0.3);
  g_assert_null (vireo_machine_view_get_banner (view ()));
  g_assert_null (vireo_machine_get_boot_failure (machine));
  path = conf_value ("Disk 1", "Path");
  ejected = conf_value ("Disk 1", "Ejected");
  g_assert_cmpstr (path, ==, other_iso);
  g_assert_null (ejected);
  g_assert_cmpstr (cdrom_row_title (), ==, "other.iso");
  show_cdrom_group ();
  screenshot (GTK_WIDGET (window), "install-iso-details-changed.png");

  /* The firmware tries again and boots GRUB from the new disc (its menu on the serial line:
   * the screen was seen above, and takes minutes more to draw). */
  vireo_machine_view_show_page (view (), "display");
  log = read_serial_log ();
  watch.menus_before = count_occurrences (log, MENU_ENTRY);
  g_assert_true (wait_for (menu_shown, &watch, BOOT_TIMEOUT_S));
  screenshot (GTK_WIDGET (window), "install-iso-grub-menu-again.png");
}

/* ---- off -------------------------------------------------------------------------------- */

static void
test_off (void)
{
  g_autofree char *qemu_img = g_find_program_in_path ("qemu-img");
  g_autofree char *qcow2 = g_build_filename (vireo_machine_get_dir (machine), "disk.qcow2",
                                             NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = -1;

  vireo_machine_force_off (machine);
  g_assert_true (wait_for (state_is, GINT_TO_POINTER (VIREO_MACHINE_STATE_STOPPED), 30));
  g_assert_null (vireo_machine_get_vr_machine (machine));
  g_assert_null (vireo_machine_get_boot_failure (machine));
  if (qemu_img == NULL)
    {
      g_test_skip ("qemu-img is not installed");
      return;
    }
  {
    const char *argv[] = { qemu_img, "check", "-f", "qcow2", qcow2, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                  &error);
  }
  g_assert_no_error (error);
  g_test_message ("qemu-img check: %s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* Off, what it boots from can be changed in Details, and the disc too. */
static void
test_details_stopped (void)
{
  GtkWidget *kind_row, *order_row;
  g_autofree char *kind = NULL, *order = NULL, *ejected = NULL;

  vireo_machine_view_show_page (view (), "details");
  spin (0.5);
  kind_row = find (details (), "boot-kind-row");
  order_row = find (details (), "boot-order-row");
  g_assert_true (gtk_widget_is_sensitive (order_row));
  g_assert_true (gtk_widget_is_sensitive (kind_row));
  g_assert_cmpstr (cdrom_row_title (), ==, "other.iso");

  /* The disk first: the machine now starts from its disk. */
  adw_combo_row_set_selected (ADW_COMBO_ROW (order_row), 1);
  spin (0.3);
  kind = conf_value ("Boot", "Kind");
  order = conf_value ("Boot", "BootOrder");
  g_assert_cmpstr (kind, ==, "disk");
  g_assert_cmpstr (order, ==, "disk,cdrom");
  g_assert_cmpuint (adw_combo_row_get_selected (ADW_COMBO_ROW (kind_row)), ==, 1);
  screenshot (GTK_WIDGET (window), "install-iso-details-stopped.png");

  /* Back to the CD/DVD: its own order, CD/DVD first. */
  adw_combo_row_set_selected (ADW_COMBO_ROW (kind_row), 2);
  spin (0.3);
  g_clear_pointer (&kind, g_free);
  g_clear_pointer (&order, g_free);
  kind = conf_value ("Boot", "Kind");
  order = conf_value ("Boot", "BootOrder");
  g_assert_cmpstr (kind, ==, "cdrom");
  g_assert_null (order);
  g_assert_cmpuint (adw_combo_row_get_selected (ADW_COMBO_ROW (order_row)), ==, 0);

  /* Eject works while off too. */
  g_assert_true (gtk_widget_activate_action (details (), "details.eject-cdrom", NULL));
  spin (0.3);
  ejected = conf_value ("Disk 1", "Ejected");
  g_assert_cmpstr (ejected, ==, "true");
  g_assert_cmpstr (cdrom_row_title (), ==, "Empty");
  g_assert_null (vireo_machine_get_problem (machine));
}

/* ---- main ------------------------------------------------------------------------------- */

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
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
  const char *grub_iso = g_getenv ("VIREO_GRUB_ISO");
  g_autofree char *seabios = g_build_filename (SEABIOS_DIR, "bios.bin", NULL);
  g_autofree char *lib_dir = NULL;
  int ret;

  tmp_root = g_dir_make_tmp ("vireo-test-install-iso-XXXXXX", NULL);
  g_assert_nonnull (tmp_root);
  /* Nothing of the user's: data, config, trash and settings all in the temporary folder. */
  g_setenv ("XDG_DATA_HOME", tmp_root, TRUE);
  g_setenv ("XDG_CONFIG_HOME", tmp_root, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_setenv ("GTK_USE_PORTAL", "0", TRUE);
  g_setenv ("LANGUAGE", "C", TRUE);
  lib_dir = g_build_filename (tmp_root, "vireo", "machines", NULL);
  g_setenv ("VIREO_LIBRARY_DIR", lib_dir, TRUE);
  g_setenv ("VIREO_QUIT_TIMEOUT", "5", TRUE);

  g_test_init (&argc, &argv, NULL);

  if (grub_iso == NULL || !g_file_test (grub_iso, G_FILE_TEST_IS_REGULAR)
      || access ("/dev/kvm", R_OK | W_OK) != 0 || !g_file_test (seabios, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("needs VIREO_GRUB_ISO (the GRUB test ISO), SeaBIOS and a usable /dev/kvm");
      rm_rf (tmp_root);
      return g_test_run ();
    }
  installer_iso = g_build_filename (tmp_root, "installer.iso", NULL);
  other_iso = g_build_filename (tmp_root, "other.iso", NULL);
  copy_file (grub_iso, installer_iso);
  copy_file (grub_iso, other_iso);

  open_app ();

  /* One machine, step after step: each test goes on from where the last one left it. */
  g_test_add_func ("/install-iso/wizard", test_wizard);
  g_test_add_func ("/install-iso/boot-to-menu", test_boot_to_menu);
  g_test_add_func ("/install-iso/eject", test_eject);
  g_test_add_func ("/install-iso/boot-failed", test_boot_failed);
  g_test_add_func ("/install-iso/change", test_change);
  g_test_add_func ("/install-iso/off", test_off);
  g_test_add_func ("/install-iso/details-stopped", test_details_stopped);
  ret = g_test_run ();

  if (machine != NULL)
    vireo_machine_force_off (machine);
  if (window != NULL)
    gtk_window_destroy (GTK_WINDOW (window));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&app);
  rm_rf (tmp_root);
  g_free (tmp_root);
  g_free (installer_iso);
  g_free (other_iso);
  return ret;
}
