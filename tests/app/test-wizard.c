/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The New Machine wizard, driven in-process under Xvfb: fields are filled through the
 * widgets (found by their GtkWidget:name), pages are turned and the machine created through
 * the dialog's actions, exactly as the buttons do. Each source kind ends in a machine.conf
 * that is loaded back and compared; each kind of bad input must show an error on its page,
 * keep Next (or Create) off, and leave the library's folder empty.
 *
 * Screenshots of every page (and of the error states) go to $VIREO_TEST_LOG_DIR as
 * wizard-*.png, for a person to look at.
 *
 * Environment: VIREO_GUEST_DIR (the built test guests: hello.elf is the kernel),
 * VIREO_TEST_LOG_DIR.
 */

#include "config.h"

#include <adwaita.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <string.h>

#include "disk/vr-disk.h"
#include "vireo-library.h"
#include "vireo-machine-config.h"
#include "vireo-new-machine-dialog.h"

typedef struct
{
  char                  *root;     /* the test's XDG_DATA_HOME-like scratch folder */
  char                  *lib_dir;
  VireoLibrary          *library;
  VireoNewMachineDialog *dialog;
  VireoMachine          *created;
  gboolean               customize;
} Fixture;

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *
log_dir (void)
{
  const char *dir = g_getenv ("VIREO_TEST_LOG_DIR");

  return dir ? dir : g_getenv ("G_TEST_BUILDDIR") ? g_getenv ("G_TEST_BUILDDIR") : ".";
}

static gboolean
timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
spin (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, timeout_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* Runs the loop until the dialog's file checks (or its copy) are over. */
static void
wait_idle (Fixture *f)
{
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  spin (20);
  while (f->dialog != NULL && vireo_new_machine_dialog_is_busy (f->dialog))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      spin (20);
    }
  spin (20);
}

static GtkWidget *
find_in (GtkWidget  *widget,
         const char *name)
{
  if (g_strcmp0 (gtk_widget_get_name (widget), name) == 0)
    return widget;
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = find_in (child, name);

      if (found != NULL)
        return found;
    }
  return NULL;
}

static GtkWidget *
find (Fixture    *f,
      const char *name)
{
  GtkWidget *w = find_in (GTK_WIDGET (f->dialog), name);

  if (w == NULL)
    g_error ("no widget named %s", name);
  return w;
}

static void
set_text (Fixture    *f,
          const char *name,
          const char *text)
{
  gtk_editable_set_text (GTK_EDITABLE (find (f, name)), text);
}

static void
set_active (Fixture    *f,
            const char *name)
{
  GtkWidget *w = find (f, name);

  if (GTK_IS_SWITCH (w))
    gtk_switch_set_active (GTK_SWITCH (w), TRUE);
  else
    gtk_check_button_set_active (GTK_CHECK_BUTTON (w), TRUE);
}

static gboolean
button_enabled (Fixture    *f,
                const char *name)
{
  GtkWidget *w = find (f, name);

  return gtk_widget_get_visible (w) && gtk_widget_is_sensitive (w);
}

static const char *
message (Fixture    *f,
         const char *name)
{
  GtkWidget *label = find (f, name);

  return gtk_widget_get_visible (label) ? gtk_label_get_text (GTK_LABEL (label)) : "";
}

/* The message under a field is shown, styled as an error, and says @words. */
static void
assert_error (Fixture    *f,
              const char *label_name,
              const char *words)
{
  GtkWidget *label = find (f, label_name);

  g_test_message ("%s: %s", label_name, message (f, label_name));
  g_assert_true (gtk_widget_get_visible (label));
  g_assert_true (gtk_widget_has_css_class (label, "error"));
  if (words != NULL)
    g_assert_nonnull (strstr (gtk_label_get_text (GTK_LABEL (label)), words));
}

static void
assert_page (Fixture    *f,
             const char *page)
{
  g_assert_cmpstr (vireo_new_machine_dialog_get_page (f->dialog), ==, page);
}

static void
next (Fixture *f)
{
  wait_idle (f);
  g_assert_true (button_enabled (f, "next-button"));
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.next", NULL);
  spin (50);
}

static void
painted_cb (GdkFrameClock *clock,
            gboolean      *painted)
{
  *painted = TRUE;
}

/* Until the window has drawn a frame: then every widget has its allocation. */
static void
wait_painted (GtkWidget *w)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (w);
  gboolean painted = FALSE;
  gulong id;

  g_assert_nonnull (clock);
  id = g_signal_connect (clock, "after-paint", G_CALLBACK (painted_cb), &painted);
  gtk_widget_queue_draw (w);
  while (!painted)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (clock, id);
}

static void
screenshot_now (Fixture    *f,
                const char *name)
{
  GtkWidget *w = GTK_WIDGET (f->dialog);
  GtkSnapshot *snapshot = NULL;
  g_autoptr(GskRenderNode) node = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *file = g_strdup_printf ("wizard-%s.png", name);
  g_autofree char *path = g_build_filename (log_dir (), file, NULL);
  int width, height;

  wait_painted (w);
  width = gtk_widget_get_width (w);
  height = gtk_widget_get_height (w);
  /* What the window draws now (its own snapshot, not a cached node from the last frame). */
  snapshot = gtk_snapshot_new ();
  GTK_WIDGET_GET_CLASS (w)->snapshot (w, snapshot);
  node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (w)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot saved to %s", path);
}

static void
screenshot (Fixture    *f,
            const char *name)
{
  spin (150);
  screenshot_now (f, name);
}

/* Whether the library's folder holds nothing (hidden work folders included). */
static void
assert_library_empty (Fixture *f)
{
  g_autoptr(GDir) dir = g_dir_open (f->lib_dir, 0, NULL);
  const char *name = dir ? g_dir_read_name (dir) : NULL;

  if (name != NULL)
    g_error ("the library's folder is not empty: %s", name);
}

static void
machine_created_cb (VireoNewMachineDialog *dialog,
                    VireoMachine          *machine,
                    gboolean               customize,
                    Fixture               *f)
{
  g_assert_null (f->created);
  f->created = g_object_ref (machine);
  f->customize = customize;
}

static void
load_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (vireo_library_load_finish (VIREO_LIBRARY (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  gboolean loaded = FALSE;

  f->root = g_dir_make_tmp ("vireo-wizard-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->lib_dir = g_build_filename (f->root, "machines", NULL);
  f->library = vireo_library_new (f->lib_dir);
  vireo_library_load_async (f->library, NULL, load_done, &loaded);
  while (!loaded)
    g_main_context_iteration (NULL, TRUE);

  f->dialog = vireo_new_machine_dialog_new (NULL, f->library);
  g_object_add_weak_pointer (G_OBJECT (f->dialog), (gpointer *) &f->dialog);
  g_signal_connect (f->dialog, "machine-created", G_CALLBACK (machine_created_cb), f);
  gtk_window_present (GTK_WINDOW (f->dialog));
  /* No slide between pages: screenshots show one page. */
  gtk_stack_set_transition_type (GTK_STACK (find (f, "stack")), GTK_STACK_TRANSITION_TYPE_NONE);
  spin (200);
  assert_page (f, "source");
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->dialog != NULL)
    gtk_window_destroy (GTK_WINDOW (f->dialog));
  spin (50);
  g_assert_null (f->dialog);
  g_clear_object (&f->created);
  g_clear_object (&f->library);
  remove_tree (f->root);
  g_free (f->root);
  g_free (f->lib_dir);
}

static char *
write_file (Fixture    *f,
            const char *name,
            const void *contents,
            gsize       len)
{
  char *path = g_build_filename (f->root, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, (gssize) len, &error);
  g_assert_no_error (error);
  return path;
}

/* A file that looks like an installer disc: ISO 9660's "CD001" at 0x8001. */
static char *
make_iso (Fixture *f)
{
  gsize len = 0x10000;
  g_autofree char *data = g_malloc0 (len);

  data[0x8000] = 1;
  memcpy (data + 0x8001, "CD001", 5);
  return write_file (f, "debian-12-netinst.iso", data, len);
}

static char *
make_qcow2 (Fixture    *f,
            const char *name,
            guint64     size)
{
  char *path = g_build_filename (f->root, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(VrDisk) disk = NULL;
  char data[4096];

  g_assert_true (vr_disk_create (path, VR_DISK_FORMAT_QCOW2, size, NULL, VR_DISK_FORMAT_RAW,
                                 &error));
  g_assert_no_error (error);
  /* Some data, so that a copy has something to carry. */
  disk = vr_disk_open (path, VR_DISK_FORMAT_QCOW2, 0, &error);
  g_assert_no_error (error);
  memset (data, 0x5a, sizeof data);
  for (guint64 off = 0; off < 8u << 20; off += 1u << 20)
    g_assert_true (vr_disk_pwrite (disk, data, sizeof data, off, NULL));
  return path;
}

static char *
guest_kernel (void)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");
  char *path = g_build_filename (dir ? dir : ".", "hello.elf", NULL);

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    g_clear_pointer (&path, g_free);
  return path;
}

/* Create on the summary page, then wait until the machine exists and the dialog closed. */
static VireoMachineConfig *
create (Fixture *f)
{
  g_autofree char *conf = NULL;
  g_autoptr(GError) error = NULL;
  VireoMachineConfig *config;
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  wait_idle (f);
  assert_page (f, "summary");
  g_assert_true (button_enabled (f, "create-button"));
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.create", NULL);
  while (f->dialog != NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_nonnull (f->created);
  g_assert_true (vireo_library_find_by_uuid (f->library, vireo_machine_get_uuid (f->created))
                 == f->created);
  conf = g_build_filename (vireo_machine_get_dir (f->created), VIREO_MACHINE_CONFIG_FILE, NULL);
  config = vireo_machine_config_load (conf, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config);
  g_assert_true (vireo_machine_config_validate (config, vireo_machine_get_dir (f->created),
                                                &error));
  g_assert_no_error (error);
  return config;
}

static VireoDiskConfig *
disk_at (VireoMachineConfig *config,
         guint               i)
{
  g_assert_cmpuint (i, <, config->disks->len);
  return g_ptr_array_index (config->disks, i);
}

static VireoNicConfig *
nic_at (VireoMachineConfig *config,
        guint               i)
{
  g_assert_cmpuint (i, <, config->nics->len);
  return g_ptr_array_index (config->nics, i);
}

/* ---- one machine per source kind --------------------------------------------------------- */

static void
test_iso (Fixture       *f,
          gconstpointer  data)
{
  g_autofree char *iso = make_iso (f);
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autofree char *disk_path = NULL;
  g_autoptr(VrDisk) disk = NULL;
  g_autoptr(GError) error = NULL;

  screenshot (f, "1-source-empty");
  g_assert_false (button_enabled (f, "next-button"));
  set_text (f, "iso-entry", iso);
  wait_idle (f);
  g_assert_nonnull (strstr (message (f, "iso-message"), "Installer disc image"));
  screenshot (f, "1-source-iso");
  next (f);

  assert_page (f, "hardware");
  set_text (f, "memory-spin", "1536");
  set_text (f, "cpus-spin", "1");
  screenshot (f, "2-hardware");
  next (f);

  assert_page (f, "storage");
  g_assert_true (gtk_check_button_get_active (GTK_CHECK_BUTTON (find (f, "new-disk-check"))));
  set_text (f, "disk-size-spin", "8");
  screenshot (f, "3-storage");
  next (f);

  assert_page (f, "network");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.add-forward", NULL);
  set_text (f, "forward-entry-0", "tcp::2222-:22");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.add-forward", NULL);
  set_text (f, "forward-entry-1", "udp:127.0.0.1:5353-:53");
  screenshot (f, "4-network");
  next (f);

  assert_page (f, "summary");
  /* The name is suggested from the file. */
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (find (f, "name-entry"))), ==,
                   "debian-12-netinst");
  set_text (f, "name-entry", "Debian 12");
  /* An installer starts when made (Customize is off by default, and can be turned on); the
   * note says the image is used where it is. Customize: keep the test away from /dev/kvm. */
  g_assert_false (gtk_switch_get_active (GTK_SWITCH (find (f, "customize-switch"))));
  g_assert_true (gtk_widget_is_sensitive (find (f, "customize-switch")));
  g_assert_true (gtk_widget_get_visible (find (f, "summary-note")));
  screenshot (f, "5-summary");
  set_active (f, "customize-switch");
  config = create (f);
  g_assert_true (f->customize);

  g_assert_cmpstr (config->name, ==, "Debian 12");
  g_assert_cmpint (config->boot_kind, ==, VIREO_BOOT_CDROM);
  g_assert_cmpstr (config->boot_order, ==, "cdrom,disk");
  g_assert_cmpuint (config->memory_mib, ==, 1536);
  g_assert_cmpuint (config->cpus, ==, 1);
  g_assert_cmpuint (config->disks->len, ==, 2);
  g_assert_cmpstr (disk_at (config, 0)->path, ==, "disk.qcow2");
  g_assert_cmpint (disk_at (config, 0)->format, ==, VR_DISK_FORMAT_QCOW2);
  g_assert_cmpint (disk_at (config, 0)->media, ==, VIREO_DISK_MEDIA_DISK);
  g_assert_false (disk_at (config, 0)->readonly);
  g_assert_cmpstr (disk_at (config, 1)->path, ==, iso);
  g_assert_cmpint (disk_at (config, 1)->format, ==, VR_DISK_FORMAT_RAW);
  g_assert_cmpint (disk_at (config, 1)->media, ==, VIREO_DISK_MEDIA_CDROM);
  g_assert_true (disk_at (config, 1)->readonly);
  g_assert_cmpuint (config->nics->len, ==, 1);
  g_assert_cmpint (nic_at (config, 0)->kind, ==, VIREO_NET_USER);
  g_assert_cmpuint (g_strv_length (nic_at (config, 0)->host_forwards), ==, 2);
  g_assert_cmpstr (nic_at (config, 0)->host_forwards[0], ==, "tcp::2222-:22");
  g_assert_cmpstr (nic_at (config, 0)->host_forwards[1], ==, "udp:127.0.0.1:5353-:53");

  /* The new disk: a qcow2 image of 8 GiB. */
  disk_path = g_build_filename (vireo_machine_get_dir (f->created), "disk.qcow2", NULL);
  disk = vr_disk_open (disk_path, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vr_disk_get_size (disk), ==, 8ull << 30);
}

static void
test_disk (Fixture       *f,
           gconstpointer  data)
{
  gboolean copy = GPOINTER_TO_INT (data);
  g_autofree char *image = make_qcow2 (f, "fedora.qcow2", 1ull << 30);
  g_autoptr(VireoMachineConfig) config = NULL;
  GtkWidget *format_row;

  set_active (f, "disk-check");
  set_text (f, "disk-entry", image);
  wait_idle (f);
  /* The format comes from the file's contents, shown in the Format row. */
  format_row = find (f, "disk-format-row");
  g_assert_true (gtk_widget_is_sensitive (format_row));
  g_assert_cmpuint (adw_combo_row_get_selected (ADW_COMBO_ROW (format_row)), ==,
                    VR_DISK_FORMAT_QCOW2);
  g_assert_nonnull (strstr (message (f, "disk-message"), "qcow2"));
  if (copy)
    set_active (f, "copy-check");
  screenshot (f, copy ? "1-source-disk-copy" : "1-source-disk");
  next (f);
  set_text (f, "memory-spin", "512");
  next (f);
  /* An existing image needs no new disk by default. */
  g_assert_true (gtk_check_button_get_active (GTK_CHECK_BUTTON (find (f, "no-disk-check"))));
  next (f);
  set_active (f, "no-net-check");
  next (f);
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (find (f, "name-entry"))), ==, "fedora");
  /* A disk image starts too (through the firmware); not here: keep away from /dev/kvm. */
  g_assert_false (gtk_switch_get_active (GTK_SWITCH (find (f, "customize-switch"))));
  g_assert_false (gtk_widget_get_visible (find (f, "summary-note")));
  set_active (f, "customize-switch");
  config = create (f);
  g_assert_true (f->customize);

  g_assert_cmpstr (config->name, ==, "fedora");
  g_assert_cmpint (config->boot_kind, ==, VIREO_BOOT_DISK);
  g_assert_cmpuint (config->memory_mib, ==, 512);
  g_assert_cmpuint (config->disks->len, ==, 1);
  g_assert_cmpint (disk_at (config, 0)->format, ==, VR_DISK_FORMAT_QCOW2);
  g_assert_false (disk_at (config, 0)->readonly);
  g_assert_cmpuint (config->nics->len, ==, 0);
  if (copy)
    {
      g_autofree char *copied = g_build_filename (vireo_machine_get_dir (f->created),
                                                  "fedora.qcow2", NULL);
      g_autoptr(VrDisk) disk = NULL;
      g_autoptr(GError) error = NULL;
      char buf[4096], want[4096];
      g_autoptr(GDir) dir = NULL;
      const char *name;

      /* Stored relative to the machine's folder, and the copy reads like the original. */
      g_assert_cmpstr (disk_at (config, 0)->path, ==, "fedora.qcow2");
      disk = vr_disk_open (copied, VR_DISK_FORMAT_QCOW2, VR_DISK_OPEN_READONLY, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (vr_disk_get_size (disk), ==, 1ull << 30);
      memset (want, 0x5a, sizeof want);
      g_assert_true (vr_disk_pread (disk, buf, sizeof buf, 3u << 20, NULL));
      g_assert_cmpmem (buf, sizeof buf, want, sizeof want);
      /* No work folder is left behind. */
      dir = g_dir_open (f->lib_dir, 0, NULL);
      while ((name = g_dir_read_name (dir)) != NULL)
        g_assert_false (name[0] == '.');
    }
  else
    g_assert_cmpstr (disk_at (config, 0)->path, ==, image);
}

/* A VMDK image (made by qemu-img when there is one): detected, and stored read-only. */
static void
test_vmdk (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *qemu_img = g_find_program_in_path ("qemu-img");
  g_autofree char *image = g_build_filename (f->root, "appliance.vmdk", NULL);
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { NULL, "create", "-q", "-f", "vmdk", NULL, "64M", NULL };
  int status = -1;

  if (qemu_img == NULL)
    {
      g_test_skip ("qemu-img is not installed");
      return;
    }
  argv[0] = qemu_img;
  argv[5] = image;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status,
                &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));

  set_active (f, "disk-check");
  set_text (f, "disk-entry", image);
  wait_idle (f);
  g_assert_cmpuint (adw_combo_row_get_selected (ADW_COMBO_ROW (find (f, "disk-format-row"))),
                    ==, VR_DISK_FORMAT_VMDK);
  g_assert_nonnull (strstr (message (f, "disk-message"), "read-only"));
  screenshot (f, "1-source-vmdk");
  next (f);
  next (f);
  next (f);
  next (f);
  set_active (f, "customize-switch");
  config = create (f);
  g_assert_cmpint (disk_at (config, 0)->format, ==, VR_DISK_FORMAT_VMDK);
  g_assert_true (disk_at (config, 0)->readonly);
  g_assert_cmpstr (disk_at (config, 0)->path, ==, image);
}

static void
test_kernel (Fixture       *f,
             gconstpointer  data)
{
  g_autofree char *kernel = guest_kernel ();
  g_autofree char *initrd = NULL;
  g_autoptr(VireoMachineConfig) config = NULL;

  if (kernel == NULL)
    {
      g_test_skip ("the test guests are not built (VIREO_GUEST_DIR)");
      return;
    }
  initrd = write_file (f, "initrd.img", "initrd", 6);

  set_active (f, "kernel-check");
  set_text (f, "kernel-entry", kernel);
  set_text (f, "initrd-entry", initrd);
  set_text (f, "cmdline-entry", "console=ttyS0 quiet");
  wait_idle (f);
  g_assert_nonnull (strstr (message (f, "kernel-message"), "kernel"));
  screenshot (f, "1-source-kernel");
  next (f);
  set_text (f, "memory-spin", "64");
  next (f);
  set_active (f, "new-disk-check");
  set_text (f, "disk-size-spin", "2");
  next (f);
  set_active (f, "tap-net-check");
  wait_idle (f);
  g_assert_false (button_enabled (f, "next-button"));  /* no interface named yet */
  set_text (f, "tap-entry", "vireotap0");
  wait_idle (f);
  screenshot (f, "4-network-tap");
  next (f);
  /* A kernel starts: Customize is off by default; keep the test away from /dev/kvm. */
  g_assert_false (gtk_switch_get_active (GTK_SWITCH (find (f, "customize-switch"))));
  set_active (f, "customize-switch");
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (find (f, "name-entry"))), ==, "Linux");
  config = create (f);

  g_assert_cmpstr (config->name, ==, "Linux");
  g_assert_cmpint (config->boot_kind, ==, VIREO_BOOT_KERNEL);
  g_assert_cmpstr (config->kernel, ==, kernel);
  g_assert_cmpstr (config->initrd, ==, initrd);
  g_assert_cmpstr (config->cmdline, ==, "console=ttyS0 quiet");
  g_assert_cmpuint (config->memory_mib, ==, 64);
  g_assert_cmpuint (config->disks->len, ==, 1);
  g_assert_cmpstr (disk_at (config, 0)->path, ==, "disk.qcow2");
  g_assert_cmpuint (config->nics->len, ==, 1);
  g_assert_cmpint (nic_at (config, 0)->kind, ==, VIREO_NET_TAP);
  g_assert_cmpstr (nic_at (config, 0)->tap, ==, "vireotap0");
}

static void
state_changed_cb (VireoMachine *machine,
                  GParamSpec   *pspec,
                  gboolean     *started)
{
  if (vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_RUNNING)
    *started = TRUE;
}

/* Without "Customize before start", finishing starts the machine. */
static void
test_kernel_start (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *kernel = guest_kernel ();
  g_autoptr(VireoMachineConfig) config = NULL;
  gboolean started = FALSE;
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  gint64 end;

  if (fd < 0)
    {
      g_test_skip ("/dev/kvm is not usable");
      return;
    }
  close (fd);
  if (kernel == NULL)
    {
      g_test_skip ("the test guests are not built (VIREO_GUEST_DIR)");
      return;
    }
  set_active (f, "kernel-check");
  set_text (f, "kernel-entry", kernel);
  next (f);
  set_text (f, "memory-spin", "32");
  set_text (f, "cpus-spin", "1");
  next (f);
  next (f);
  set_active (f, "no-net-check");
  next (f);
  g_assert_false (gtk_switch_get_active (GTK_SWITCH (find (f, "customize-switch"))));
  config = create (f);
  g_assert_false (f->customize);
  g_signal_connect (f->created, "notify::state", G_CALLBACK (state_changed_cb), &started);
  state_changed_cb (f->created, NULL, &started);
  end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!started && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (started);
  vireo_machine_force_off (f->created);
  end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (vireo_machine_is_active (f->created) && g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handlers_disconnect_by_func (f->created, state_changed_cb, &started);
}

/* ---- bad input --------------------------------------------------------------------------- */

/* Turns to the summary page with a valid kernel source (or skips). */
static gboolean
walk_to_summary (Fixture *f)
{
  g_autofree char *kernel = guest_kernel ();

  if (kernel == NULL)
    {
      g_test_skip ("the test guests are not built (VIREO_GUEST_DIR)");
      return FALSE;
    }
  set_active (f, "kernel-check");
  set_text (f, "kernel-entry", kernel);
  next (f);
  next (f);
  next (f);
  next (f);
  assert_page (f, "summary");
  return TRUE;
}

static void
test_bad_iso (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *missing = g_build_filename (f->root, "no-such.iso", NULL);

  set_text (f, "iso-entry", missing);
  wait_idle (f);
  assert_error (f, "iso-message", "no file");
  g_assert_true (gtk_widget_has_css_class (find (f, "iso-entry"), "error"));
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-iso-missing");
  /* The action does nothing while the page is wrong. */
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.next", NULL);
  assert_page (f, "source");

  /* A relative path and a folder are refused too. */
  set_text (f, "iso-entry", "debian.iso");
  wait_idle (f);
  assert_error (f, "iso-message", "/");
  set_text (f, "iso-entry", f->root);
  wait_idle (f);
  assert_error (f, "iso-message", "folder");
  assert_library_empty (f);
}

static void
test_bad_disk (Fixture       *f,
               gconstpointer  data)
{
  const char *text = "This is a text file, not a disk image.\n";
  g_autofree char *path = write_file (f, "notes.txt", text, strlen (text));
  g_autofree char *sectors = NULL;
  g_autofree char *block = g_malloc0 (1024);

  set_active (f, "disk-check");
  set_text (f, "disk-entry", path);
  wait_idle (f);
  assert_error (f, "disk-message", "does not look like a disk image");
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-disk-text");

  /* Whole sectors with no header: a raw disk, accepted with a warning. */
  memcpy (block, text, strlen (text));
  sectors = write_file (f, "blank.img", block, 1024);
  set_text (f, "disk-entry", sectors);
  wait_idle (f);
  g_assert_true (gtk_widget_has_css_class (find (f, "disk-message"), "warning"));
  g_assert_nonnull (strstr (message (f, "disk-message"), "raw"));
  g_assert_true (button_enabled (f, "next-button"));

  /* Read as qcow2, it is not valid. */
  adw_combo_row_set_selected (ADW_COMBO_ROW (find (f, "disk-format-row")), VR_DISK_FORMAT_QCOW2);
  wait_idle (f);
  assert_error (f, "disk-message", "qcow2");
  g_assert_false (button_enabled (f, "next-button"));
  assert_library_empty (f);
}

static void
test_bad_kernel (Fixture       *f,
                 gconstpointer  data)
{
  const char *text = "#!/bin/sh\necho not a kernel\n";
  g_autofree char *path = write_file (f, "vmlinuz", text, strlen (text));

  set_active (f, "kernel-check");
  set_text (f, "kernel-entry", path);
  wait_idle (f);
  assert_error (f, "kernel-message", "not a kernel");
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-kernel");
  assert_library_empty (f);
}

static void
test_bad_name (Fixture       *f,
               gconstpointer  data)
{
  if (!walk_to_summary (f))
    return;
  set_text (f, "name-entry", "a/b");
  wait_idle (f);
  assert_error (f, "name-message", "/");
  g_assert_true (gtk_widget_has_css_class (find (f, "name-entry"), "error"));
  g_assert_false (button_enabled (f, "create-button"));
  screenshot (f, "error-name");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.create", NULL);
  spin (300);
  g_assert_nonnull (f->dialog);
  g_assert_null (f->created);

  set_text (f, "name-entry", "   ");
  wait_idle (f);
  assert_error (f, "name-message", NULL);
  g_assert_false (button_enabled (f, "create-button"));

  set_text (f, "name-entry", "Fine name");
  wait_idle (f);
  g_assert_true (button_enabled (f, "create-button"));
  assert_library_empty (f);
}

static void
test_name_taken (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(VireoMachineConfig) first = NULL;

  if (!walk_to_summary (f))
    return;
  set_text (f, "name-entry", "Twin");
  first = create (f);
  g_clear_object (&f->created);

  /* A second wizard: the same name is refused as it is typed, in any case. */
  f->dialog = vireo_new_machine_dialog_new (NULL, f->library);
  g_object_add_weak_pointer (G_OBJECT (f->dialog), (gpointer *) &f->dialog);
  g_signal_connect (f->dialog, "machine-created", G_CALLBACK (machine_created_cb), f);
  gtk_window_present (GTK_WINDOW (f->dialog));
  spin (100);
  walk_to_summary (f);
  set_text (f, "name-entry", "twin");
  wait_idle (f);
  assert_error (f, "name-message", "already");
  g_assert_false (button_enabled (f, "create-button"));
  screenshot (f, "error-name-taken");
}

static void
test_bad_memory (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *iso = make_iso (f);
  g_autofree char *too_much = g_strdup_printf ("%u", (guint) vireo_host_memory_mib () + 1);

  set_text (f, "iso-entry", iso);
  next (f);
  assert_page (f, "hardware");
  set_text (f, "memory-spin", "0");
  wait_idle (f);
  assert_error (f, "memory-message", "at least");
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-memory");

  set_text (f, "memory-spin", too_much);
  wait_idle (f);
  assert_error (f, "memory-message", "only");
  g_assert_false (button_enabled (f, "next-button"));

  set_text (f, "memory-spin", "lots");
  wait_idle (f);
  assert_error (f, "memory-message", "number");

  set_text (f, "memory-spin", "1024");
  set_text (f, "cpus-spin", "0");
  wait_idle (f);
  assert_error (f, "cpus-message", NULL);
  g_assert_false (button_enabled (f, "next-button"));
  set_text (f, "cpus-spin", "1");
  wait_idle (f);
  g_assert_true (button_enabled (f, "next-button"));
  assert_library_empty (f);
}

static void
test_no_space (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *image = make_qcow2 (f, "big.qcow2", 1ull << 30);
  g_autofree char *iso = make_iso (f);

  /* Copying an image with more data than the free space: an error on the source page. */
  vireo_new_machine_dialog_set_free_space (f->dialog, 64 << 10);
  set_active (f, "disk-check");
  set_text (f, "disk-entry", image);
  set_active (f, "copy-check");
  wait_idle (f);
  assert_error (f, "copy-message", "free space");
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-no-space-copy");
  /* Used where it is, it needs no space. */
  set_active (f, "in-place-check");
  wait_idle (f);
  g_assert_true (button_enabled (f, "next-button"));

  /* A new sparse disk bigger than the free space: a warning (it grows as it is written),
   * the machine can still be made. */
  set_active (f, "iso-check");
  set_text (f, "iso-entry", iso);
  next (f);
  next (f);
  assert_page (f, "storage");
  set_text (f, "disk-size-spin", "100");
  wait_idle (f);
  g_assert_true (gtk_widget_has_css_class (find (f, "disk-size-message"), "warning"));
  g_assert_nonnull (strstr (message (f, "disk-size-message"), "free"));
  g_assert_true (button_enabled (f, "next-button"));
  screenshot (f, "warning-no-space-new-disk");
  assert_library_empty (f);
}

static void
test_bad_forward (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *iso = make_iso (f);

  set_text (f, "iso-entry", iso);
  next (f);
  next (f);
  next (f);
  assert_page (f, "network");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.add-forward", NULL);
  set_text (f, "forward-entry-0", "tcp:2222:22");
  wait_idle (f);
  assert_error (f, "forwards-message", "tcp::2222-:22");
  g_assert_true (gtk_widget_has_css_class (find (f, "forward-entry-0"), "error"));
  g_assert_false (button_enabled (f, "next-button"));
  screenshot (f, "error-forward");

  set_text (f, "forward-entry-0", "tcp::2222-:22");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.add-forward", NULL);
  set_text (f, "forward-entry-1", "tcp::2222-:80");
  wait_idle (f);
  assert_error (f, "forwards-message", "2222");
  g_assert_false (button_enabled (f, "next-button"));
  set_text (f, "forward-entry-1", "");
  wait_idle (f);
  g_assert_true (button_enabled (f, "next-button"));

  set_active (f, "tap-net-check");
  set_text (f, "tap-entry", "bad/name");
  wait_idle (f);
  assert_error (f, "tap-message", NULL);
  g_assert_false (button_enabled (f, "next-button"));
  assert_library_empty (f);
}

/* Stopping a copy writes nothing. */
static void
test_copy_cancel (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *image = g_build_filename (f->root, "raw.img", NULL);
  g_autofree char *chunk = g_malloc (1 << 20);
  FILE *fp;

  /* 128 MiB of data. */
  memset (chunk, 0x33, 1 << 20);
  fp = fopen (image, "wb");
  g_assert_nonnull (fp);
  for (int i = 0; i < 128; i++)
    g_assert_cmpuint (fwrite (chunk, 1, 1 << 20, fp), ==, 1 << 20);
  fclose (fp);

  set_active (f, "disk-check");
  set_text (f, "disk-entry", image);
  set_active (f, "copy-check");
  next (f);
  next (f);
  next (f);
  next (f);
  wait_idle (f);
  set_active (f, "customize-switch");   /* the machine would start: keep away from /dev/kvm */
  /* Stopped at once: the thread sees it before its last chunk. */
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.create", NULL);
  assert_page (f, "progress");
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.stop-copy", NULL);
  wait_idle (f);
  assert_page (f, "summary");
  g_assert_null (f->created);
  g_assert_nonnull (strstr (message (f, "create-message"), "Nothing was created"));
  screenshot (f, "5-summary-copy-stopped");
  assert_library_empty (f);

  /* Again, to the end this time (with a look at the progress page if it lasts). */
  gtk_widget_activate_action (GTK_WIDGET (f->dialog), "wizard.create", NULL);
  assert_page (f, "progress");
  spin (100);
  if (f->dialog != NULL && g_str_equal (vireo_new_machine_dialog_get_page (f->dialog),
                                        "progress"))
    screenshot_now (f, "6-progress");
  while (f->dialog != NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (f->created);
  {
    g_autofree char *copied = g_build_filename (vireo_machine_get_dir (f->created), "raw.img",
                                                NULL);
    GStatBuf st;

    g_assert_cmpint (g_stat (copied, &st), ==, 0);
    g_assert_cmpint (st.st_size, ==, 128 << 20);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *data_home = g_dir_make_tmp ("vireo-wizard-home-XXXXXX", NULL);

  /* Nothing of the person's own library is ever touched. */
  g_setenv ("XDG_DATA_HOME", data_home, TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_setenv ("LANGUAGE", "C", TRUE);
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();

  g_test_add ("/wizard/iso", Fixture, NULL, fixture_setup, test_iso, fixture_teardown);
  g_test_add ("/wizard/disk/in-place", Fixture, GINT_TO_POINTER (FALSE), fixture_setup,
              test_disk, fixture_teardown);
  g_test_add ("/wizard/disk/copy", Fixture, GINT_TO_POINTER (TRUE), fixture_setup, test_disk,
              fixture_teardown);
  g_test_add ("/wizard/disk/vmdk", Fixture, NULL, fixture_setup, test_vmdk, fixture_teardown);
  g_test_add ("/wizard/kernel", Fixture, NULL, fixture_setup, test_kernel, fixture_teardown);
  g_test_add ("/wizard/kernel-start", Fixture, NULL, fixture_setup, test_kernel_start,
              fixture_teardown);
  g_test_add ("/wizard/bad/iso", Fixture, NULL, fixture_setup, test_bad_iso, fixture_teardown);
  g_test_add ("/wizard/bad/disk", Fixture, NULL, fixture_setup, test_bad_disk, fixture_teardown);
  g_test_add ("/wizard/bad/kernel", Fixture, NULL, fixture_setup, test_bad_kernel,
              fixture_teardown);
  g_test_add ("/wizard/bad/name", Fixture, NULL, fixture_setup, test_bad_name, fixture_teardown);
  g_test_add ("/wizard/bad/name-taken", Fixture, NULL, fixture_setup, test_name_taken,
              fixture_teardown);
  g_test_add ("/wizard/bad/memory", Fixture, NULL, fixture_setup, test_bad_memory,
              fixture_teardown);
  g_test_add ("/wizard/bad/no-space", Fixture, NULL, fixture_setup, test_no_space,
              fixture_teardown);
  g_test_add ("/wizard/bad/forward", Fixture, NULL, fixture_setup, test_bad_forward,
              fixture_teardown);
  g_test_add ("/wizard/copy-cancel", Fixture, NULL, fixture_setup, test_copy_cancel,
              fixture_teardown);
  return g_test_run ();
}
