/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-details-page"

#include "config.h"

#include "vireo-details-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <string.h>

#include "vireo-window.h"

struct _VireoDetailsPage
{
  GtkWidget          parent_instance;

  VireoMachine      *machine;
  VireoLibrary      *library;
  GSignalGroup      *signals;
  gboolean           updating;   /* filling the rows from the config: no saving */
  guint              refresh_id;
  GPtrArray         *disk_rows;  /* rows added to disks_group */
  GPtrArray         *nic_rows;

  AdwPreferencesPage  *page;
  AdwPreferencesGroup *general_group;
  AdwPreferencesGroup *hardware_group;
  AdwPreferencesGroup *boot_group;
  AdwPreferencesGroup *disks_group;
  AdwPreferencesGroup *nics_group;
  AdwEntryRow       *name_row;
  AdwEntryRow       *source_row;
  AdwActionRow      *folder_row;
  AdwActionRow      *memory_row;
  GtkSpinButton     *memory_spin;
  GtkAdjustment     *memory_adjustment;
  AdwActionRow      *cpus_row;
  GtkSpinButton     *cpus_spin;
  GtkAdjustment     *cpus_adjustment;
  AdwComboRow       *display_row;
  AdwActionRow      *serial_log_row;
  GtkSwitch         *serial_log_switch;
  AdwComboRow       *boot_kind_row;
  AdwActionRow      *kernel_row;
  AdwActionRow      *initrd_row;
  AdwEntryRow       *cmdline_row;
  AdwComboRow       *boot_order_row;
  AdwPreferencesGroup *cdrom_group;
  AdwActionRow      *cdrom_row;
  GtkWidget         *eject_button;
  GtkWidget         *change_cdrom_button;
};

G_DEFINE_FINAL_TYPE (VireoDetailsPage, vireo_details_page, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void refresh (VireoDetailsPage *self);
static void queue_refresh (VireoDetailsPage *self);
static void update_cdrom (VireoDetailsPage *self);

/* The Boot Order row's items, in order. */
static const char *const boot_orders[] = { "cdrom,disk", "disk,cdrom", "disk", "cdrom" };

/* ---- editing ---------------------------------------------------------------------------- */

typedef void (*EditFunc) (VireoMachineConfig *config, gconstpointer data);

/* Copies the settings, lets @func change the copy, saves it. On failure the rows go back to
 * what is saved, and a toast says why. */
static gboolean
edit (VireoDetailsPage *self, EditFunc func, gconstpointer data)
{
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GError) error = NULL;

  if (self->updating || self->machine == NULL || vireo_machine_get_config (self->machine) == NULL)
    return FALSE;
  config = vireo_machine_config_copy (vireo_machine_get_config (self->machine));
  func (config, data);
  if (!vireo_machine_set_config (self->machine, config, FALSE, &error))
    {
      vireo_widget_show_error (GTK_WIDGET (self), _("The change was not saved"), error);
      refresh (self);
      return FALSE;
    }
  return TRUE;
}

static void
set_name (VireoMachineConfig *config, gconstpointer data)
{
  g_free (config->name);
  config->name = g_strstrip (g_strdup (data));
}

static void
name_apply_cb (VireoDetailsPage *self)
{
  const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));
  g_autofree char *trimmed = g_strstrip (g_strdup (name));
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_name_is_valid (trimmed, &error))
    {
      gtk_widget_add_css_class (GTK_WIDGET (self->name_row), "error");
      vireo_widget_show_error (GTK_WIDGET (self), _("The name was not changed"), error);
      return;
    }
  if (self->library && vireo_library_name_is_taken (self->library, trimmed, self->machine))
    {
      g_autofree char *msg =
        g_strdup_printf (_("Another machine is already called “%s”. Choose another name."),
                         trimmed);

      gtk_widget_add_css_class (GTK_WIDGET (self->name_row), "error");
      vireo_widget_show_toast (GTK_WIDGET (self), msg);
      return;
    }
  gtk_widget_remove_css_class (GTK_WIDGET (self->name_row), "error");
  edit (self, set_name, trimmed);
}

static void
set_source (VireoMachineConfig *config, gconstpointer data)
{
  g_free (config->source);
  config->source = *(const char *) data ? g_strdup (data) : NULL;
}

static void
source_apply_cb (VireoDetailsPage *self)
{
  edit (self, set_source, gtk_editable_get_text (GTK_EDITABLE (self->source_row)));
}

static void
set_memory (VireoMachineConfig *config, gconstpointer data)
{
  config->memory_mib = *(const guint64 *) data;
}

static void
memory_changed_cb (VireoDetailsPage *self)
{
  guint64 mib = (guint64) gtk_spin_button_get_value (self->memory_spin);

  edit (self, set_memory, &mib);
}

static void
set_cpus (VireoMachineConfig *config, gconstpointer data)
{
  config->cpus = *(const guint *) data;
}

static void
cpus_changed_cb (VireoDetailsPage *self)
{
  guint cpus = (guint) gtk_spin_button_get_value (self->cpus_spin);

  edit (self, set_cpus, &cpus);
}

static void
set_display (VireoMachineConfig *config, gconstpointer data)
{
  config->display = *(const VireoDisplayKind *) data;
}

static void
display_changed_cb (VireoDetailsPage *self)
{
  VireoDisplayKind kind = adw_combo_row_get_selected (self->display_row);

  edit (self, set_display, &kind);
}

static void
set_serial_log (VireoMachineConfig *config, gconstpointer data)
{
  config->serial_log = *(const gboolean *) data;
}

static void
serial_log_changed_cb (VireoDetailsPage *self)
{
  gboolean on = gtk_switch_get_active (self->serial_log_switch);

  edit (self, set_serial_log, &on);
}

static void
set_boot_kind (VireoMachineConfig *config, gconstpointer data)
{
  VireoBootKind kind = *(const VireoBootKind *) data;

  if (config->boot_kind == kind)
    return;
  config->boot_kind = kind;
  /* The new kind's own order: a CD/DVD first for an installer, the disks first else. */
  g_clear_pointer (&config->boot_order, g_free);
}

static void
boot_kind_changed_cb (VireoDetailsPage *self)
{
  VireoBootKind kind = adw_combo_row_get_selected (self->boot_kind_row);

  edit (self, set_boot_kind, &kind);
}

static void
set_cmdline (VireoMachineConfig *config, gconstpointer data)
{
  g_free (config->cmdline);
  config->cmdline = *(const char *) data ? g_strdup (data) : NULL;
}

static void
cmdline_apply_cb (VireoDetailsPage *self)
{
  edit (self, set_cmdline, gtk_editable_get_text (GTK_EDITABLE (self->cmdline_row)));
}

static void
set_boot_order (VireoMachineConfig *config, gconstpointer data)
{
  const char *order = data;

  g_free (config->boot_order);
  config->boot_order = g_strdup (order);
  /* What the machine starts from is what the firmware tries first. */
  if (config->boot_kind != VIREO_BOOT_KERNEL)
    config->boot_kind = g_str_has_prefix (order, "cdrom") ? VIREO_BOOT_CDROM : VIREO_BOOT_DISK;
}

static void
boot_order_changed_cb (VireoDetailsPage *self)
{
  guint i = adw_combo_row_get_selected (self->boot_order_row);

  if (i < G_N_ELEMENTS (boot_orders))
    edit (self, set_boot_order, boot_orders[i]);
}

/* The row's item for @order (a BootOrder as stored), or GTK_INVALID_LIST_POSITION. */
static guint
boot_order_index (const char *order)
{
  VrBootDevice parsed[VR_MAX_BOOT_DEVICES];
  VrBootDevice item[VR_MAX_BOOT_DEVICES];

  if (order == NULL || !vireo_boot_order_parse (order, parsed, NULL))
    return GTK_INVALID_LIST_POSITION;
  for (guint i = 0; i < G_N_ELEMENTS (boot_orders); i++)
    if (vireo_boot_order_parse (boot_orders[i], item, NULL)
        && memcmp (parsed, item, sizeof parsed) == 0)
      return i;
  return GTK_INVALID_LIST_POSITION;
}

/* ---- files ------------------------------------------------------------------------------ */

typedef void (*FileChosenFunc) (VireoDetailsPage *self, GFile *file);

static void
file_chosen_cb (GtkNativeDialog *dialog,
                int              response,
                gpointer         user_data)
{
  VireoDetailsPage *self = user_data;
  FileChosenFunc func = g_object_get_data (G_OBJECT (dialog), "func");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      G_GNUC_BEGIN_IGNORE_DEPRECATIONS
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      G_GNUC_END_IGNORE_DEPRECATIONS

      if (file != NULL && self->machine != NULL)
        func (self, file);
    }
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
  g_object_unref (self);
}

static void
choose_file_filtered (VireoDetailsPage *self, const char *title, GtkFileFilter *filter,
                      FileChosenFunc func)
{
  GtkFileChooserNative *dialog;

  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  dialog = gtk_file_chooser_native_new (title,
                                        GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self))),
                                        GTK_FILE_CHOOSER_ACTION_OPEN, _("_Select"), _("_Cancel"));
  if (filter != NULL)
    {
      g_autoptr(GtkFileFilter) all = gtk_file_filter_new ();

      gtk_file_filter_set_name (all, _("All Files"));
      gtk_file_filter_add_pattern (all, "*");
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), all);
      gtk_file_chooser_set_filter (GTK_FILE_CHOOSER (dialog), filter);
    }
  G_GNUC_END_IGNORE_DEPRECATIONS
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_object_set_data (G_OBJECT (dialog), "func", func);
  g_signal_connect (dialog, "response", G_CALLBACK (file_chosen_cb), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
choose_file (VireoDetailsPage *self, const char *title, FileChosenFunc func)
{
  choose_file_filtered (self, title, NULL, func);
}

static void
set_kernel (VireoMachineConfig *config, gconstpointer data)
{
  g_free (config->kernel);
  config->kernel = g_strdup (data);
}

static void
kernel_chosen (VireoDetailsPage *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);

  if (path == NULL)
    {
      vireo_widget_show_toast (GTK_WIDGET (self),
                               _("Choose a file on this computer: the kernel must be readable "
                                 "by path."));
      return;
    }
  edit (self, set_kernel, path);
}

static void
set_initrd (VireoMachineConfig *config, gconstpointer data)
{
  g_free (config->initrd);
  config->initrd = data ? g_strdup (data) : NULL;
}

static void
initrd_chosen (VireoDetailsPage *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);

  if (path != NULL)
    edit (self, set_initrd, path);
}

static void
choose_kernel_action (GtkWidget *widget, const char *name, GVariant *param)
{
  choose_file (VIREO_DETAILS_PAGE (widget), _("Choose a Linux Kernel"), kernel_chosen);
}

static void
choose_initrd_action (GtkWidget *widget, const char *name, GVariant *param)
{
  choose_file (VIREO_DETAILS_PAGE (widget), _("Choose an Initial RAM Disk"), initrd_chosen);
}

static void
clear_initrd_action (GtkWidget *widget, const char *name, GVariant *param)
{
  edit (VIREO_DETAILS_PAGE (widget), set_initrd, NULL);
}

/* ---- the CD/DVD drive ------------------------------------------------------------------- */

static gboolean
is_iso_name (const char *path)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);

  return g_str_has_suffix (lower, ".iso");
}

static void
cdrom_chosen (VireoDetailsPage *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    {
      vireo_widget_show_toast (GTK_WIDGET (self),
                               _("Choose a file on this computer: the CD/DVD image must be "
                                 "readable by path."));
      return;
    }
  if (!vireo_machine_change_cdrom (self->machine, path, &error))
    vireo_widget_show_error (GTK_WIDGET (self), _("The CD/DVD was not changed"), error);
  update_cdrom (self);
}

static void
change_cdrom_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (widget);
  GtkFileFilter *filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, _("CD/DVD Images"));
  gtk_file_filter_add_pattern (filter, "*.iso");
  gtk_file_filter_add_pattern (filter, "*.ISO");
  gtk_file_filter_add_mime_type (filter, "application/x-cd-image");
  choose_file_filtered (self, _("Choose a CD/DVD Image"), filter, cdrom_chosen);
  g_object_unref (filter);
}

static void
eject_cdrom_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (widget);
  g_autoptr(GError) error = NULL;

  if (self->machine == NULL)
    return;
  if (!vireo_machine_change_cdrom (self->machine, NULL, &error))
    vireo_widget_show_error (GTK_WIDGET (self), _("The CD/DVD was not ejected"), error);
  update_cdrom (self);
}

/* The drive's row and buttons: what is in it, and what can be done now. */
static void
update_cdrom (VireoDetailsPage *self)
{
  VireoMachineConfig *config = self->machine ? vireo_machine_get_config (self->machine) : NULL;
  gboolean active, starting, drive, can_change, can_eject;
  g_autofree char *iso = NULL;
  g_autofree char *title = NULL;
  const char *subtitle, *change_tip = NULL, *eject_tip = NULL;

  if (config == NULL)
    {
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->cdrom_row), "");
      adw_action_row_set_subtitle (self->cdrom_row, "");
      gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.change-cdrom", FALSE);
      gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.eject-cdrom", FALSE);
      return;
    }
  active = vireo_machine_is_active (self->machine);
  starting = vireo_machine_get_state (self->machine) == VIREO_MACHINE_STATE_STARTING;
  drive = vireo_machine_has_cdrom_drive (self->machine);
  iso = vireo_machine_dup_cdrom (self->machine);

  if (iso != NULL)
    {
      title = g_path_get_basename (iso);
      subtitle = iso;
    }
  else if (drive)
    {
      title = g_strdup (C_("cdrom", "Empty"));
      subtitle = _("Choose an ISO image to put in the drive");
    }
  else
    {
      title = g_strdup (_("No CD/DVD drive"));
      subtitle = active ? _("Shut down the machine to add one")
                        : _("Choose an ISO image to add a drive");
    }
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->cdrom_row), title);
  adw_action_row_set_subtitle (self->cdrom_row, subtitle);

  can_change = !starting && (drive || !active);
  can_eject = !starting && iso != NULL;
  if (starting)
    change_tip = eject_tip = _("Wait until the machine has started");
  else
    {
      if (!can_change)
        change_tip = _("This machine has no CD/DVD drive. Shut it down to add one.");
      if (!can_eject)
        eject_tip = drive ? _("The drive is empty") : _("This machine has no CD/DVD drive");
    }
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.change-cdrom", can_change);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.eject-cdrom", can_eject);
  gtk_widget_set_tooltip_text (self->change_cdrom_button, change_tip);
  gtk_widget_set_tooltip_text (self->eject_button, eject_tip);
}

/* ---- disks ------------------------------------------------------------------------------ */

static void
add_disk (VireoMachineConfig *config, gconstpointer data)
{
  g_ptr_array_add (config->disks, vireo_disk_config_copy (data));
}

static void
disk_chosen (VireoDetailsPage *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autoptr(GError) error = NULL;
  g_autoptr(VireoDiskConfig) disk = NULL;
  VrDiskFormat format;

  if (path == NULL)
    return;
  /* The format is read from the file now, when the user picks it, and stored: never
   * guessed again from an image the guest can write. */
  if (!vr_disk_probe_format (path, &format, &error))
    {
      vireo_widget_show_error (GTK_WIDGET (self), _("This file cannot be used as a disk"),
                               error);
      return;
    }
  if (is_iso_name (path))
    {
      /* An ISO image goes in the CD/DVD drive (a machine without one gets one). */
      if (!vireo_machine_change_cdrom (self->machine, path, &error))
        vireo_widget_show_error (GTK_WIDGET (self), _("The CD/DVD was not changed"), error);
      return;
    }
  disk = vireo_disk_config_new (path, format);
  edit (self, add_disk, disk);
}

static void
add_disk_action (GtkWidget *widget, const char *name, GVariant *param)
{
  choose_file (VIREO_DETAILS_PAGE (widget), _("Add a Disk Image"), disk_chosen);
}

static void
remove_disk (VireoMachineConfig *config, gconstpointer data)
{
  guint i = GPOINTER_TO_UINT (data);

  if (i < config->disks->len)
    g_ptr_array_remove_index (config->disks, i);
}

static void
remove_disk_clicked_cb (GtkButton *button, VireoDetailsPage *self)
{
  edit (self, remove_disk, g_object_get_data (G_OBJECT (button), "index"));
}

typedef struct
{
  guint    index;
  gboolean value;
} IndexBool;

static void
set_disk_readonly (VireoMachineConfig *config, gconstpointer data)
{
  const IndexBool *ib = data;

  if (ib->index < config->disks->len)
    ((VireoDiskConfig *) config->disks->pdata[ib->index])->readonly = ib->value;
}

static void
disk_readonly_cb (GtkSwitch *sw, GParamSpec *pspec, VireoDetailsPage *self)
{
  IndexBool ib = { GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (sw), "index")),
                   gtk_switch_get_active (sw) };

  edit (self, set_disk_readonly, &ib);
}

static char *
disk_subtitle (VireoDetailsPage *self, VireoDiskConfig *disk)
{
  g_autofree char *full = vireo_machine_config_resolve_path (disk->path,
                                                             vireo_machine_get_dir (self->machine));
  g_autoptr(GString) s = g_string_new (vr_disk_format_to_string (disk->format));
  g_autoptr(GError) error = NULL;
  g_autoptr(VrDisk) vd = NULL;

  if (disk->media == VIREO_DISK_MEDIA_CDROM && disk->ejected)
    /* Translators: a CD/DVD drive with no disc in it */
    return g_strdup_printf ("%s · %s", _("CD/DVD"), C_("cdrom", "empty"));
  /* Reading the header of a local image: quick. */
  vd = vr_disk_open (full, disk->format, VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY,
                     &error);
  if (vd != NULL)
    {
      g_autofree char *size = g_format_size_full (vr_disk_get_size (vd), G_FORMAT_SIZE_IEC_UNITS);

      g_string_append_printf (s, " · %s", size);
    }
  else
    /* Translators: after a disk's format, when the image cannot be opened */
    g_string_append_printf (s, " · %s", _("cannot be opened"));
  if (disk->media == VIREO_DISK_MEDIA_CDROM)
    g_string_append_printf (s, " · %s", _("CD/DVD"));
  if (disk->readonly)
    g_string_append_printf (s, " · %s", _("read-only"));
  g_string_append_printf (s, "\n%s", full);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

#define DISK_MAX_GIB (64.0 * 1024)   /* 64 TiB */

/* The disk's virtual size in whole GiB (rounded up), 0 when it cannot be read. */
static guint64
disk_size_gib (VireoDetailsPage *self, VireoDiskConfig *disk)
{
  g_autofree char *full = vireo_machine_config_resolve_path (disk->path,
                                                             vireo_machine_get_dir (self->machine));
  g_autoptr(VrDisk) vd = vr_disk_open (full, disk->format,
                                       VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY, NULL);

  return vd ? (vr_disk_get_size (vd) + (1ull << 30) - 1) >> 30 : 0;
}

static void
resize_disk_clicked_cb (GtkButton *button, VireoDetailsPage *self)
{
  VireoMachineConfig *config = vireo_machine_get_config (self->machine);
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "index"));
  GtkSpinButton *spin = g_object_get_data (G_OBJECT (button), "spin");
  guint64 size = (guint64) gtk_spin_button_get_value_as_int (spin) << 30;
  g_autoptr(GError) error = NULL;
  g_autofree char *full = NULL;
  g_autoptr(VrDisk) vd = NULL;
  VireoDiskConfig *disk;

  if (config == NULL || index >= config->disks->len || vireo_machine_is_active (self->machine))
    return;
  disk = config->disks->pdata[index];
  full = vireo_machine_config_resolve_path (disk->path, vireo_machine_get_dir (self->machine));
  vd = vr_disk_open (full, disk->format, 0, &error);
  if (vd != NULL && size > vr_disk_get_size (vd))
    vr_disk_resize (vd, size, FALSE, &error);
  if (vd != NULL && error == NULL)
    vr_disk_flush (vd, &error);
  if (error != NULL)
    vireo_widget_show_error (GTK_WIDGET (self), _("The disk cannot be resized"), error);
  queue_refresh (self);
}

static GtkWidget *
make_disk_row (VireoDetailsPage *self, guint index, VireoDiskConfig *disk)
{
  g_autofree char *base = g_path_get_basename (disk->path);
  g_autofree char *subtitle = disk_subtitle (self, disk);
  GtkWidget *expander = adw_expander_row_new ();
  GtkWidget *row, *sw, *button;

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (expander),
                                 disk->media == VIREO_DISK_MEDIA_CDROM && disk->ejected
                                   ? _("CD/DVD drive")
                                   : base);
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (expander), subtitle);
  adw_expander_row_add_prefix (ADW_EXPANDER_ROW (expander),
                               gtk_image_new_from_icon_name (disk->media == VIREO_DISK_MEDIA_CDROM
                                                               ? "media-optical-symbolic"
                                                               : "drive-harddisk-symbolic"));

  if (disk->media == VIREO_DISK_MEDIA_CDROM)
    goto remove;   /* a disc is read-only, and cannot grow */

  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Read Only"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row),
                               _("The machine can read the disk but not change it"));
  sw = gtk_switch_new ();
  gtk_widget_set_valign (sw, GTK_ALIGN_CENTER);
  gtk_switch_set_active (GTK_SWITCH (sw), disk->readonly);
  g_object_set_data (G_OBJECT (sw), "index", GUINT_TO_POINTER (index));
  g_signal_connect (sw, "notify::active", G_CALLBACK (disk_readonly_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), sw);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), sw);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), row);

  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Size"));
  if ((disk->format == VR_DISK_FORMAT_QCOW2 || disk->format == VR_DISK_FORMAT_RAW)
      && disk->media != VIREO_DISK_MEDIA_CDROM)
    {
      guint64 gib = disk_size_gib (self, disk);
      GtkWidget *spin = gtk_spin_button_new_with_range ((double) MAX (gib, 1), DISK_MAX_GIB, 1);

      adw_action_row_set_subtitle (ADW_ACTION_ROW (row),
                                   _("Grow the image, in GiB; the guest sees the new size the "
                                     "next time it starts, and its partitions stay as they are"));
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (spin), (double) MAX (gib, 1));
      gtk_widget_set_valign (spin, GTK_ALIGN_CENTER);
      gtk_accessible_update_property (GTK_ACCESSIBLE (spin), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      _("Disk size in GiB"), -1);
      button = gtk_button_new_with_mnemonic (_("Re_size"));
      gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
      g_object_set_data (G_OBJECT (button), "index", GUINT_TO_POINTER (index));
      g_object_set_data (G_OBJECT (button), "spin", spin);
      g_signal_connect (button, "clicked", G_CALLBACK (resize_disk_clicked_cb), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), spin);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
    }
  else
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row),
                                 _("Only qcow2 and raw disk images can be resized"));
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), row);

remove:
  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Remove From This Machine"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row),
                               _("The image file stays where it is"));
  button = gtk_button_new_with_mnemonic (_("_Remove"));
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (button, "destructive-action");
  g_object_set_data (G_OBJECT (button), "index", GUINT_TO_POINTER (index));
  g_signal_connect (button, "clicked", G_CALLBACK (remove_disk_clicked_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), row);
  return expander;
}

/* ---- network cards ---------------------------------------------------------------------- */

static void
add_nic (VireoMachineConfig *config, gconstpointer data)
{
  g_ptr_array_add (config->nics, vireo_nic_config_new (VIREO_NET_USER));
}

static void
add_nic_action (GtkWidget *widget, const char *name, GVariant *param)
{
  edit (VIREO_DETAILS_PAGE (widget), add_nic, NULL);
}

static void
remove_nic (VireoMachineConfig *config, gconstpointer data)
{
  guint i = GPOINTER_TO_UINT (data);

  if (i < config->nics->len)
    g_ptr_array_remove_index (config->nics, i);
}

static void
remove_nic_clicked_cb (GtkButton *button, VireoDetailsPage *self)
{
  edit (self, remove_nic, g_object_get_data (G_OBJECT (button), "index"));
}

typedef struct
{
  guint       index;
  const char *what;
  const char *text;
  guint       kind;
} NicEdit;

static void
set_nic (VireoMachineConfig *config, gconstpointer data)
{
  const NicEdit *e = data;
  VireoNicConfig *nic;

  if (e->index >= config->nics->len)
    return;
  nic = config->nics->pdata[e->index];
  if (g_str_equal (e->what, "kind"))
    nic->kind = e->kind;
  else if (g_str_equal (e->what, "mac"))
    {
      g_free (nic->mac);
      nic->mac = *e->text ? g_strdup (e->text) : NULL;
    }
  else if (g_str_equal (e->what, "tap"))
    {
      g_free (nic->tap);
      nic->tap = *e->text ? g_strdup (e->text) : NULL;
    }
  else if (g_str_equal (e->what, "forwards"))
    {
      g_auto(GStrv) parts = g_strsplit_set (e->text, ", ", -1);
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

      for (guint i = 0; parts[i]; i++)
        if (*parts[i])
          g_strv_builder_add (b, parts[i]);
      g_strfreev (nic->host_forwards);
      nic->host_forwards = g_strv_builder_end (b);
      if (nic->host_forwards[0] == NULL)
        g_clear_pointer (&nic->host_forwards, g_strfreev);
    }
}

static void
nic_entry_apply_cb (AdwEntryRow *row, VireoDetailsPage *self)
{
  NicEdit e = { GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (row), "index")),
                g_object_get_data (G_OBJECT (row), "what"),
                gtk_editable_get_text (GTK_EDITABLE (row)), 0 };

  edit (self, set_nic, &e);
}

static void
nic_kind_cb (AdwComboRow *row, GParamSpec *pspec, VireoDetailsPage *self)
{
  NicEdit e = { GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (row), "index")), "kind", NULL,
                adw_combo_row_get_selected (row) };

  edit (self, set_nic, &e);
}

static GtkWidget *
nic_entry_row (VireoDetailsPage *self, guint index, const char *what, const char *title,
               const char *text)
{
  GtkWidget *row = adw_entry_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_entry_row_set_show_apply_button (ADW_ENTRY_ROW (row), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (row), text ? text : "");
  g_object_set_data (G_OBJECT (row), "index", GUINT_TO_POINTER (index));
  g_object_set_data (G_OBJECT (row), "what", (gpointer) what);
  g_signal_connect (row, "apply", G_CALLBACK (nic_entry_apply_cb), self);
  return row;
}

static GtkWidget *
make_nic_row (VireoDetailsPage *self, guint index, VireoNicConfig *nic)
{
  static const char *kinds[] = { N_("User networking (NAT)"), N_("Tap interface"),
                                 N_("Not connected"), NULL };
  const char *translated[G_N_ELEMENTS (kinds)];
  g_autofree char *title = g_strdup_printf (_("Network Card %u"), index + 1);
  g_autofree char *forwards = nic->host_forwards ? g_strjoinv (", ", nic->host_forwards) : NULL;
  GtkWidget *expander = adw_expander_row_new ();
  GtkWidget *row, *button;
  g_autoptr(GtkStringList) model = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    translated[i] = kinds[i] ? _(kinds[i]) : NULL;
  model = gtk_string_list_new (translated);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (expander), title);
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (expander),
                                 nic->kind < G_N_ELEMENTS (kinds) - 1 ? _(kinds[nic->kind]) : "");
  adw_expander_row_add_prefix (ADW_EXPANDER_ROW (expander),
                               gtk_image_new_from_icon_name ("network-wired-symbolic"));

  row = adw_combo_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Connection"));
  adw_combo_row_set_model (ADW_COMBO_ROW (row), G_LIST_MODEL (model));
  adw_combo_row_set_selected (ADW_COMBO_ROW (row), nic->kind);
  g_object_set_data (G_OBJECT (row), "index", GUINT_TO_POINTER (index));
  g_signal_connect (row, "notify::selected", G_CALLBACK (nic_kind_cb), self);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), row);

  if (nic->kind == VIREO_NET_TAP)
    adw_expander_row_add_row (ADW_EXPANDER_ROW (expander),
                              nic_entry_row (self, index, "tap", _("Tap Interface"), nic->tap));
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander),
                            nic_entry_row (self, index, "mac",
                                           _("MAC Address (empty: chosen by Vireo)"), nic->mac));
  if (nic->kind == VIREO_NET_USER)
    adw_expander_row_add_row (ADW_EXPANDER_ROW (expander),
                              nic_entry_row (self, index, "forwards",
                                             _("Port Forwards (for example “tcp::2222-:22”)"),
                                             forwards));

  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Remove This Network Card"));
  button = gtk_button_new_with_mnemonic (_("_Remove"));
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (button, "destructive-action");
  g_object_set_data (G_OBJECT (button), "index", GUINT_TO_POINTER (index));
  g_signal_connect (button, "clicked", G_CALLBACK (remove_nic_clicked_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), row);
  return expander;
}

/* ---- clone and delete ------------------------------------------------------------------- */

static void
clone_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GtkWidget) widget = user_data;
  g_autoptr(VireoMachine) clone = NULL;
  g_autoptr(GError) error = NULL;

  clone = vireo_library_clone_machine_finish (VIREO_LIBRARY (object), result, &error);
  if (clone == NULL)
    {
      vireo_widget_show_error (widget, _("The machine was not cloned"), error);
      return;
    }
  {
    g_autofree char *msg = g_strdup_printf (_("“%s” is ready"), vireo_machine_get_name (clone));
    GtkRoot *root = gtk_widget_get_root (widget);

    vireo_widget_show_toast (widget, msg);
    if (VIREO_IS_WINDOW (root))
      vireo_window_select_machine (VIREO_WINDOW (root), clone);
  }
}

static void
clone_response_cb (AdwMessageDialog *dialog,
                   const char       *response,
                   VireoDetailsPage *self)
{
  GtkEditable *entry = g_object_get_data (G_OBJECT (dialog), "name");
  GtkSwitch *linked = g_object_get_data (G_OBJECT (dialog), "linked");
  g_autofree char *name = NULL;

  if (g_strcmp0 (response, "clone") != 0 || self->machine == NULL || self->library == NULL)
    return;
  name = g_strstrip (g_strdup (gtk_editable_get_text (entry)));
  vireo_library_clone_machine_async (self->library, self->machine, name,
                                     gtk_switch_get_active (linked), NULL, clone_done_cb,
                                     g_object_ref (self));
}

static void
clone_name_changed_cb (GtkEditable *entry, AdwMessageDialog *dialog)
{
  VireoDetailsPage *self = g_object_get_data (G_OBJECT (dialog), "page");
  g_autofree char *name = g_strstrip (g_strdup (gtk_editable_get_text (entry)));
  gboolean ok = vireo_machine_name_is_valid (name, NULL)
                && !(self->library && vireo_library_name_is_taken (self->library, name, NULL));

  adw_message_dialog_set_response_enabled (dialog, "clone", ok);
  if (ok)
    gtk_widget_remove_css_class (GTK_WIDGET (entry), "error");
  else
    gtk_widget_add_css_class (GTK_WIDGET (entry), "error");
}

static void
clone_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (widget);
  g_autofree char *base = NULL;
  g_autofree char *name = NULL;
  g_autofree char *body = NULL;
  GtkWidget *dialog, *list, *entry, *row, *linked;

  if (self->machine == NULL || self->library == NULL)
    return;
  /* Translators: the default name of a clone; %s is the original's name */
  base = g_strdup_printf (_("%s (clone)"), vireo_machine_get_name (self->machine));
  name = vireo_library_suggest_name (self->library, base);
  body = g_strdup_printf (_("A new machine with the settings of “%s” and a copy of its disks. "
                            "Disk images outside its folder are shared, not copied."),
                          vireo_machine_get_name (self->machine));
  dialog = adw_message_dialog_new (GTK_WINDOW (gtk_widget_get_root (widget)),
                                   _("Clone Machine"), body);

  list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  entry = adw_entry_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (entry), _("Name"));
  gtk_editable_set_text (GTK_EDITABLE (entry), name);
  gtk_list_box_append (GTK_LIST_BOX (list), entry);
  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("Linked Clone"));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row),
                               _("Quick and small: the clone's qcow2 disks start from this "
                                 "machine's, which must then stay unchanged"));
  linked = gtk_switch_new ();
  gtk_widget_set_valign (linked, GTK_ALIGN_CENTER);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), linked);
  adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), linked);
  gtk_list_box_append (GTK_LIST_BOX (list), row);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), list);

  g_object_set_data (G_OBJECT (dialog), "name", entry);
  g_object_set_data (G_OBJECT (dialog), "linked", linked);
  g_object_set_data (G_OBJECT (dialog), "page", self);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "clone", _("C_lone"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "clone",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "clone");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect (entry, "changed", G_CALLBACK (clone_name_changed_cb), dialog);
  g_signal_connect_object (dialog, "response", G_CALLBACK (clone_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
delete_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GtkWidget) widget = user_data;
  g_autoptr(GError) error = NULL;

  if (!vireo_library_delete_machine_finish (VIREO_LIBRARY (object), result, &error))
    vireo_widget_show_error (widget, _("The machine was not deleted"), error);
}

static void
delete_response_cb (AdwMessageDialog *dialog,
                    const char       *response,
                    VireoDetailsPage *self)
{
  GtkCheckButton *trash = g_object_get_data (G_OBJECT (dialog), "trash");

  if (g_strcmp0 (response, "delete") != 0 || self->machine == NULL || self->library == NULL)
    return;
  vireo_library_delete_machine_async (self->library, self->machine,
                                      gtk_check_button_get_active (trash), NULL, delete_done_cb,
                                      g_object_ref (self));
}

static void
delete_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (widget);
  g_autofree char *heading = NULL;
  GtkWidget *dialog, *trash;

  if (self->machine == NULL)
    return;
  heading = g_strdup_printf (_("Delete “%s”?"), vireo_machine_get_name (self->machine));
  dialog = adw_message_dialog_new (GTK_WINDOW (gtk_widget_get_root (widget)), heading,
                                   _("Its settings, serial log and thumbnail are deleted. Disk "
                                     "images you added from elsewhere are left where they are."));
  trash = gtk_check_button_new_with_mnemonic (_("Move its disk images to the _trash, where "
                                                "they can be restored"));
  gtk_check_button_set_active (GTK_CHECK_BUTTON (trash), TRUE);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), trash);
  g_object_set_data (G_OBJECT (dialog), "trash", trash);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "delete", _("_Delete"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "delete",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (delete_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- showing the settings --------------------------------------------------------------- */

static void
clear_rows (AdwPreferencesGroup *group, GPtrArray *rows)
{
  for (guint i = 0; i < rows->len; i++)
    adw_preferences_group_remove (group, rows->pdata[i]);
  g_ptr_array_set_size (rows, 0);
}

static void
update_sensitivity (VireoDetailsPage *self)
{
  gboolean active = self->machine && vireo_machine_is_active (self->machine);
  gboolean usable = self->machine && vireo_machine_get_config (self->machine) != NULL;
  const char *tip = active ? _("Shut down the machine to change this") : NULL;
  GtkWidget *stopped_only[] = {
    GTK_WIDGET (self->memory_row), GTK_WIDGET (self->cpus_row), GTK_WIDGET (self->display_row),
    GTK_WIDGET (self->boot_group), GTK_WIDGET (self->disks_group), GTK_WIDGET (self->nics_group),
  };

  for (guint i = 0; i < G_N_ELEMENTS (stopped_only); i++)
    {
      gtk_widget_set_sensitive (stopped_only[i], usable && !active);
      gtk_widget_set_tooltip_text (stopped_only[i], tip);
    }
  gtk_widget_set_sensitive (GTK_WIDGET (self->general_group), usable);
  gtk_widget_set_sensitive (GTK_WIDGET (self->serial_log_row), usable);
  /* The disc can be changed while the machine runs. */
  gtk_widget_set_sensitive (GTK_WIDGET (self->cdrom_group), usable);
  update_cdrom (self);
  adw_preferences_group_set_description (self->hardware_group,
                                         active ? _("Most settings can be changed only while "
                                                    "the machine is off.")
                                                : NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.clone", usable && !active);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "details.delete",
                                 self->machine != NULL && !active);
}

static void
refresh (VireoDetailsPage *self)
{
  VireoMachineConfig *config = self->machine ? vireo_machine_get_config (self->machine) : NULL;
  const char *none = _("None");

  self->updating = TRUE;
  clear_rows (self->disks_group, self->disk_rows);
  clear_rows (self->nics_group, self->nic_rows);
  if (config != NULL)
    {
      gtk_editable_set_text (GTK_EDITABLE (self->name_row), config->name);
      gtk_widget_remove_css_class (GTK_WIDGET (self->name_row), "error");
      gtk_editable_set_text (GTK_EDITABLE (self->source_row), config->source ? config->source : "");
      adw_action_row_set_subtitle (self->folder_row, vireo_machine_get_dir (self->machine));

      gtk_adjustment_set_upper (self->memory_adjustment,
                                MAX (vireo_host_memory_mib (), config->memory_mib));
      gtk_spin_button_set_value (self->memory_spin, config->memory_mib);
      gtk_adjustment_set_upper (self->cpus_adjustment,
                                MAX (vireo_host_cpu_count (), config->cpus));
      gtk_spin_button_set_value (self->cpus_spin, config->cpus);
      adw_combo_row_set_selected (self->display_row, config->display);
      gtk_switch_set_active (self->serial_log_switch, config->serial_log);

      adw_combo_row_set_selected (self->boot_kind_row, config->boot_kind);
      adw_combo_row_set_selected (self->boot_order_row,
                                  boot_order_index (vireo_machine_config_get_boot_order (config)));
      adw_action_row_set_subtitle (self->kernel_row, config->kernel ? config->kernel : none);
      adw_action_row_set_subtitle (self->initrd_row, config->initrd ? config->initrd : none);
      gtk_editable_set_text (GTK_EDITABLE (self->cmdline_row),
                             config->cmdline ? config->cmdline : "");
      gtk_widget_set_visible (GTK_WIDGET (self->kernel_row),
                              config->boot_kind == VIREO_BOOT_KERNEL);
      gtk_widget_set_visible (GTK_WIDGET (self->initrd_row),
                              config->boot_kind == VIREO_BOOT_KERNEL);
      gtk_widget_set_visible (GTK_WIDGET (self->cmdline_row),
                              config->boot_kind == VIREO_BOOT_KERNEL);
      gtk_widget_set_visible (GTK_WIDGET (self->boot_order_row),
                              config->boot_kind != VIREO_BOOT_KERNEL);

      for (guint i = 0; i < config->disks->len; i++)
        {
          GtkWidget *row = make_disk_row (self, i, config->disks->pdata[i]);

          adw_preferences_group_add (self->disks_group, row);
          g_ptr_array_add (self->disk_rows, row);
        }
      if (config->disks->len == 0)
        {
          GtkWidget *row = adw_action_row_new ();

          adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("No disks"));
          gtk_widget_add_css_class (row, "dim-label");
          adw_preferences_group_add (self->disks_group, row);
          g_ptr_array_add (self->disk_rows, row);
        }
      for (guint i = 0; i < config->nics->len; i++)
        {
          GtkWidget *row = make_nic_row (self, i, config->nics->pdata[i]);

          adw_preferences_group_add (self->nics_group, row);
          g_ptr_array_add (self->nic_rows, row);
        }
      if (config->nics->len == 0)
        {
          GtkWidget *row = adw_action_row_new ();

          adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), _("No network cards"));
          gtk_widget_add_css_class (row, "dim-label");
          adw_preferences_group_add (self->nics_group, row);
          g_ptr_array_add (self->nic_rows, row);
        }
    }
  else if (self->machine != NULL)
    {
      gtk_editable_set_text (GTK_EDITABLE (self->name_row), vireo_machine_get_name (self->machine));
      adw_action_row_set_subtitle (self->folder_row, vireo_machine_get_dir (self->machine));
    }
  update_sensitivity (self);
  self->updating = FALSE;
}

static gboolean
refresh_idle_cb (gpointer user_data)
{
  VireoDetailsPage *self = user_data;

  self->refresh_id = 0;
  refresh (self);
  return G_SOURCE_REMOVE;
}

/* Not from inside the handler of a row that refresh() is about to remove. */
static void
queue_refresh (VireoDetailsPage *self)
{
  if (self->refresh_id == 0)
    self->refresh_id = g_idle_add (refresh_idle_cb, self);
}

GtkWidget *
vireo_details_page_new (void)
{
  return g_object_new (VIREO_TYPE_DETAILS_PAGE, NULL);
}

VireoMachine *
vireo_details_page_get_machine (VireoDetailsPage *self)
{
  g_return_val_if_fail (VIREO_IS_DETAILS_PAGE (self), NULL);
  return self->machine;
}

void
vireo_details_page_set_machine (VireoDetailsPage *self,
                                VireoMachine     *machine)
{
  g_return_if_fail (VIREO_IS_DETAILS_PAGE (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (!g_set_object (&self->machine, machine))
    return;
  g_signal_group_set_target (self->signals, machine);
  refresh (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

void
vireo_details_page_set_library (VireoDetailsPage *self,
                                VireoLibrary     *library)
{
  g_return_if_fail (VIREO_IS_DETAILS_PAGE (self));
  g_set_object (&self->library, library);
}

static void
vireo_details_page_dispose (GObject *object)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (object);

  g_clear_handle_id (&self->refresh_id, g_source_remove);
  if (self->signals != NULL)
    g_signal_group_set_target (self->signals, NULL);
  g_clear_object (&self->signals);
  g_clear_object (&self->machine);
  g_clear_object (&self->library);
  g_clear_pointer (&self->disk_rows, g_ptr_array_unref);
  g_clear_pointer (&self->nic_rows, g_ptr_array_unref);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_DETAILS_PAGE);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_details_page_parent_class)->dispose (object);
}

static void
vireo_details_page_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      g_value_set_object (value, self->machine);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_details_page_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  VireoDetailsPage *self = VIREO_DETAILS_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_details_page_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_details_page_class_init (VireoDetailsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_details_page_dispose;
  object_class->get_property = vireo_details_page_get_property;
  object_class->set_property = vireo_details_page_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-details-page.ui");
#define BIND(x) gtk_widget_class_bind_template_child (widget_class, VireoDetailsPage, x)
  BIND (page);
  BIND (general_group);
  BIND (hardware_group);
  BIND (boot_group);
  BIND (disks_group);
  BIND (nics_group);
  BIND (name_row);
  BIND (source_row);
  BIND (folder_row);
  BIND (memory_row);
  BIND (memory_spin);
  BIND (memory_adjustment);
  BIND (cpus_row);
  BIND (cpus_spin);
  BIND (cpus_adjustment);
  BIND (display_row);
  BIND (serial_log_row);
  BIND (serial_log_switch);
  BIND (boot_kind_row);
  BIND (kernel_row);
  BIND (initrd_row);
  BIND (cmdline_row);
  BIND (boot_order_row);
  BIND (cdrom_group);
  BIND (cdrom_row);
  BIND (eject_button);
  BIND (change_cdrom_button);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, name_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, source_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, memory_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, cpus_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, display_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, serial_log_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, boot_kind_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, cmdline_apply_cb);
  gtk_widget_class_bind_template_callback (widget_class, boot_order_changed_cb);

  gtk_widget_class_install_action (widget_class, "details.choose-kernel", NULL,
                                   choose_kernel_action);
  gtk_widget_class_install_action (widget_class, "details.choose-initrd", NULL,
                                   choose_initrd_action);
  gtk_widget_class_install_action (widget_class, "details.clear-initrd", NULL,
                                   clear_initrd_action);
  gtk_widget_class_install_action (widget_class, "details.add-disk", NULL, add_disk_action);
  gtk_widget_class_install_action (widget_class, "details.change-cdrom", NULL,
                                   change_cdrom_action);
  gtk_widget_class_install_action (widget_class, "details.eject-cdrom", NULL,
                                   eject_cdrom_action);
  gtk_widget_class_install_action (widget_class, "details.add-nic", NULL, add_nic_action);
  gtk_widget_class_install_action (widget_class, "details.clone", NULL, clone_action);
  gtk_widget_class_install_action (widget_class, "details.delete", NULL, delete_action);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
vireo_details_page_init (VireoDetailsPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->disk_rows = g_ptr_array_new ();
  self->nic_rows = g_ptr_array_new ();
  self->signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->signals, "notify::config", G_CALLBACK (queue_refresh),
                                  self);
  g_signal_group_connect_swapped (self->signals, "notify::state",
                                  G_CALLBACK (update_sensitivity), self);
  /* The guest may eject the disc itself. */
  g_signal_group_connect_swapped (self->signals, "notify::cdrom", G_CALLBACK (queue_refresh),
                                  self);
}
