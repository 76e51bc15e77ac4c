/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-new-machine-dialog"

#include "config.h"

#include "vireo-new-machine-dialog.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "disk/vr-disk.h"
#include "net/vr-net.h"
#include "vireo-file-check.h"
#include "vireo-machine-config.h"

/*
 * How the pages decide:
 *
 * - File fields (installer image, disk image, kernel, initrd) are checked in a GTask thread
 *   300 ms after the last keystroke, or at once when a file is chosen. Until the answer
 *   comes the field is "checking" and Next stays off.
 * - A disk image's format is read from its contents when it is picked
 *   (vr_disk_probe_format), shown in the Format row, which the user can correct; the
 *   image is then opened in the chosen format (metadata only) to read its size. The format
 *   is stored in machine.conf and never guessed again. A file with no image header is a raw
 *   disk: accepted with a warning when its size is a whole number of 512-byte sectors,
 *   refused otherwise (a text file, say, is not a disk).
 * - A new disk is a sparse qcow2 image: a size beyond the free space is a warning (the
 *   image grows only as the guest writes). Copying an image into the machine's folder
 *   writes all of its data: more data than the free space is an error.
 * - Nothing is written before Create. A copy goes to a hidden ".new-copy-XXXXXX" folder in
 *   the library (cleaned up by the library if Vireo dies meanwhile), then into the
 *   machine's folder once vireo_library_create_machine_async() has made it.
 */

#define CHECK_DELAY_MS   300
#define DEFAULT_MEMORY   2048
#define DEFAULT_CPUS     2
#define DEFAULT_DISK_GIB 20
#define COPY_CHUNK       (1024 * 1024)

typedef enum
{
  SOURCE_ISO,
  SOURCE_DISK,
  SOURCE_KERNEL,
} SourceKind;

typedef enum
{
  SLOT_ISO,
  SLOT_DISK,
  SLOT_KERNEL,
  SLOT_INITRD,
  N_SLOTS
} FileSlot;

typedef enum
{
  CHECK_EMPTY,
  CHECK_PENDING,
  CHECK_OK,
  CHECK_WARNING,
  CHECK_ERROR,
} CheckState;

typedef enum
{
  MSG_NONE,
  MSG_INFO,
  MSG_WARNING,
  MSG_ERROR,
} MessageKind;

typedef struct
{
  CheckState    state;
  char         *message;     /* what to say under the field */
  char         *path;        /* the absolute path checked */
  guint         delay_id;
  GCancellable *cancellable;
  /* disk images */
  VrDiskFormat  detected;    /* from the contents */
  VrDiskFormat  format;      /* the one checked (detected, or chosen by the user) */
  guint64       virtual_size;
  guint64       data_size;   /* bytes allocated on the host */
  gboolean      writable;
  gboolean      one_file;    /* the whole image is in this file (a VMDK may have several) */
} FileCheck;

G_STATIC_ASSERT ((int) SLOT_ISO == (int) VIREO_FILE_INSTALLER);
G_STATIC_ASSERT ((int) SLOT_DISK == (int) VIREO_FILE_DISK_IMAGE);
G_STATIC_ASSERT ((int) SLOT_KERNEL == (int) VIREO_FILE_KERNEL);
G_STATIC_ASSERT ((int) SLOT_INITRD == (int) VIREO_FILE_INITRD);

static const char *const page_names[] = { "source", "hardware", "storage", "network", "summary" };

struct _VireoNewMachineDialog
{
  AdwWindow          parent_instance;

  VireoLibrary      *library;
  guint64            free_space_override;
  guint64            free_space;
  gboolean           free_space_known;

  FileCheck          checks[N_SLOTS];
  gboolean           format_chosen;     /* the user changed the Format row */
  gboolean           setting_format;
  gboolean           name_edited;
  gboolean           setting_name;
  gboolean           storage_chosen;
  gboolean           setting_storage;
  gboolean           disposed;
  gboolean           all_valid;
  gboolean           page_valid[G_N_ELEMENTS (page_names)];

  GPtrArray         *forward_rows;      /* AdwEntryRow * */
  guint              forward_serial;
  GtkNativeDialog   *chooser;

  /* Create */
  gboolean           working;
  gboolean           close_when_done;
  GCancellable      *work_cancellable;
  char              *copy_dir;
  char              *copy_path;
  guint              progress_id;
  guint              progress_ticks;
  GMutex             progress_lock;
  guint64            progress_done;
  guint64            progress_total;

  /* template */
  GtkWidget         *cancel_button;
  GtkWidget         *back_button;
  GtkWidget         *next_button;
  GtkWidget         *create_button;
  AdwWindowTitle    *window_title;
  GtkStack          *stack;

  GtkCheckButton    *iso_check;
  GtkCheckButton    *disk_check;
  GtkCheckButton    *kernel_check;
  GtkWidget         *iso_group;
  AdwEntryRow       *iso_entry;
  GtkLabel          *iso_message;
  GtkWidget         *disk_group;
  AdwEntryRow       *disk_entry;
  AdwComboRow       *disk_format_row;
  GtkStringList     *format_list;
  AdwActionRow      *in_place_row;
  GtkCheckButton    *in_place_check;
  GtkCheckButton    *copy_check;
  GtkLabel          *disk_message;
  GtkWidget         *disk_options_group;
  GtkLabel          *copy_message;
  GtkWidget         *kernel_group;
  AdwEntryRow       *kernel_entry;
  GtkLabel          *kernel_message;
  GtkWidget         *initrd_group;
  AdwEntryRow       *initrd_entry;
  GtkLabel          *initrd_message;
  GtkWidget         *cmdline_group;
  AdwEntryRow       *cmdline_entry;

  AdwActionRow      *memory_row;
  GtkSpinButton     *memory_spin;
  GtkAdjustment     *memory_adjustment;
  GtkLabel          *memory_message;
  AdwActionRow      *cpus_row;
  GtkSpinButton     *cpus_spin;
  GtkAdjustment     *cpus_adjustment;
  GtkLabel          *cpus_message;

  GtkCheckButton    *new_disk_check;
  GtkCheckButton    *no_disk_check;
  GtkWidget         *disk_size_group;
  GtkSpinButton     *disk_size_spin;
  GtkLabel          *disk_size_message;

  GtkCheckButton    *user_net_check;
  GtkCheckButton    *tap_net_check;
  GtkCheckButton    *no_net_check;
  AdwPreferencesGroup *forwards_group;
  GtkLabel          *forwards_message;
  GtkWidget         *tap_group;
  AdwEntryRow       *tap_entry;
  GtkLabel          *tap_message;

  AdwEntryRow       *name_entry;
  GtkLabel          *name_message;
  AdwActionRow      *summary_source_row;
  AdwActionRow      *summary_hardware_row;
  AdwActionRow      *summary_storage_row;
  AdwActionRow      *summary_network_row;
  GtkWidget         *customize_row;
  GtkSwitch         *customize_switch;
  GtkWidget         *summary_note;
  GtkLabel          *create_message;

  AdwStatusPage     *progress_page;
  GtkProgressBar    *progress_bar;
  GtkLabel          *progress_label;
  GtkWidget         *progress_cancel_button;
};

G_DEFINE_FINAL_TYPE (VireoNewMachineDialog, vireo_new_machine_dialog, ADW_TYPE_WINDOW)

enum
{
  PROP_0,
  PROP_LIBRARY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  MACHINE_CREATED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void update_state (VireoNewMachineDialog *self);
static void start_check (VireoNewMachineDialog *self, FileSlot slot);

/* ---- small helpers ---------------------------------------------------------------------- */

static SourceKind
get_source_kind (VireoNewMachineDialog *self)
{
  if (gtk_check_button_get_active (self->disk_check))
    return SOURCE_DISK;
  if (gtk_check_button_get_active (self->kernel_check))
    return SOURCE_KERNEL;
  return SOURCE_ISO;
}

static AdwEntryRow *
slot_entry (VireoNewMachineDialog *self, FileSlot slot)
{
  switch (slot)
    {
    case SLOT_ISO:
      return self->iso_entry;
    case SLOT_DISK:
      return self->disk_entry;
    case SLOT_KERNEL:
      return self->kernel_entry;
    case SLOT_INITRD:
    case N_SLOTS:
    default:
      return self->initrd_entry;
    }
}

static GtkLabel *
slot_label (VireoNewMachineDialog *self, FileSlot slot)
{
  switch (slot)
    {
    case SLOT_ISO:
      return self->iso_message;
    case SLOT_DISK:
      return self->disk_message;
    case SLOT_KERNEL:
      return self->kernel_message;
    case SLOT_INITRD:
    case N_SLOTS:
    default:
      return self->initrd_message;
    }
}

/* Shows @text under a field, styled by @kind; @field (may be NULL) gets the error or warning
 * style too, and the text as its accessible description. */
static void
show_message (GtkLabel    *label,
              GtkWidget   *field,
              MessageKind  kind,
              const char  *text)
{
  gboolean visible = kind != MSG_NONE && text != NULL && *text != '\0';

  gtk_widget_set_visible (GTK_WIDGET (label), visible);
  gtk_label_set_text (label, visible ? text : "");
  gtk_widget_remove_css_class (GTK_WIDGET (label), "error");
  gtk_widget_remove_css_class (GTK_WIDGET (label), "warning");
  gtk_widget_remove_css_class (GTK_WIDGET (label), "dim-label");
  if (field != NULL)
    {
      gtk_widget_remove_css_class (field, "error");
      gtk_widget_remove_css_class (field, "warning");
    }
  switch (kind)
    {
    case MSG_ERROR:
      gtk_widget_add_css_class (GTK_WIDGET (label), "error");
      if (field != NULL)
        gtk_widget_add_css_class (field, "error");
      break;
    case MSG_WARNING:
      gtk_widget_add_css_class (GTK_WIDGET (label), "warning");
      if (field != NULL)
        gtk_widget_add_css_class (field, "warning");
      break;
    case MSG_INFO:
      gtk_widget_add_css_class (GTK_WIDGET (label), "dim-label");
      break;
    case MSG_NONE:
    default:
      break;
    }
  if (field != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (field), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                    visible ? text : "", -1);
}

/* A path as typed: "~/…" and file:// URIs are accepted; NULL when empty. */
static char *
normalize_path (const char *text)
{
  g_autofree char *s = g_strstrip (g_strdup (text ? text : ""));

  if (*s == '\0')
    return NULL;
  if (g_str_has_prefix (s, "file://"))
    {
      char *path = g_filename_from_uri (s, NULL, NULL);

      if (path != NULL)
        return path;
    }
  if (s[0] == '~' && (s[1] == '/' || s[1] == '\0'))
    return g_build_filename (g_get_home_dir (), s + 1, NULL);
  return g_steal_pointer (&s);
}

/* A whole number typed in a spin button, or FALSE. */
static gboolean
parse_count (GtkSpinButton *spin,
             guint64       *out)
{
  g_autofree char *s = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (spin))));

  return *s != '\0' && g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT32, out, NULL);
}

static char *
format_size (guint64 size)
{
  return g_format_size_full (size, G_FORMAT_SIZE_IEC_UNITS);
}

static char *
format_mib (guint64 mib)
{
  return g_format_size_full (mib << 20, G_FORMAT_SIZE_IEC_UNITS);
}


static gboolean
get_free_space (VireoNewMachineDialog *self,
                guint64               *bytes)
{
  if (self->free_space_override != G_MAXUINT64)
    {
      *bytes = self->free_space_override;
      return TRUE;
    }
  *bytes = self->free_space;
  return self->free_space_known;
}

static void
refresh_free_space (VireoNewMachineDialog *self)
{
  g_autoptr(GError) error = NULL;

  self->free_space_known = vireo_library_query_free_space (self->library, &self->free_space,
                                                           &error);
  if (!self->free_space_known)
    g_debug ("Cannot tell the free space of the library: %s", error->message);
}

/* ---- file checks ------------------------------------------------------------------------ */

static void
set_format_row (VireoNewMachineDialog *self,
                VrDiskFormat           format)
{
  self->setting_format = TRUE;
  adw_combo_row_set_selected (self->disk_format_row, (guint) format);
  self->setting_format = FALSE;
}

static void
check_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(VireoNewMachineDialog) self = user_data;
  g_autoptr(VireoFileCheck) data = NULL;
  g_autoptr(GError) error = NULL;
  FileCheck *check;

  data = vireo_file_check_finish (result, &error);
  if (data == NULL || self->disposed)
    return;  /* cancelled: the field changed meanwhile */
  check = &self->checks[data->kind];
  g_clear_object (&check->cancellable);

  switch (data->state)
    {
    case VIREO_FILE_CHECK_OK:
      check->state = CHECK_OK;
      break;
    case VIREO_FILE_CHECK_WARNING:
      check->state = CHECK_WARNING;
      break;
    case VIREO_FILE_CHECK_ERROR:
    default:
      check->state = CHECK_ERROR;
      break;
    }
  g_free (check->message);
  check->message = g_strdup (data->message);
  check->detected = data->detected;
  check->format = data->format;
  check->virtual_size = data->virtual_size;
  check->data_size = data->data_size;
  check->writable = data->writable;
  check->one_file = data->one_file;

  if (data->kind == VIREO_FILE_DISK_IMAGE)
    {
      g_autofree char *subtitle = NULL;

      set_format_row (self, data->format);
      gtk_widget_set_sensitive (GTK_WIDGET (self->disk_format_row), data->probed);
      if (data->probed)
        subtitle = g_strdup_printf (_("The file’s contents say: %s"),
                                    vireo_disk_format_label (data->detected));
      adw_action_row_set_subtitle (ADW_ACTION_ROW (self->disk_format_row),
                                   subtitle ? subtitle : "");
    }
  update_state (self);
}

static void
start_check (VireoNewMachineDialog *self,
             FileSlot               slot)
{
  FileCheck *check = &self->checks[slot];
  VrDiskFormat format = (VrDiskFormat) adw_combo_row_get_selected (self->disk_format_row);

  g_clear_handle_id (&check->delay_id, g_source_remove);
  if (check->cancellable)
    g_cancellable_cancel (check->cancellable);
  g_clear_object (&check->cancellable);

  if (check->path == NULL)
    {
      check->state = CHECK_EMPTY;
      g_clear_pointer (&check->message, g_free);
      update_state (self);
      return;
    }

  /* The slots are in VireoFileKind's order. */
  check->state = CHECK_PENDING;
  check->cancellable = g_cancellable_new ();
  vireo_file_check_async ((VireoFileKind) slot, check->path,
                          slot == SLOT_DISK && self->format_chosen ? &format : NULL,
                          check->cancellable, check_done, g_object_ref (self));
  update_state (self);
}

typedef struct
{
  VireoNewMachineDialog *self;
  FileSlot               slot;
} DelayData;

static gboolean
check_delay_cb (gpointer user_data)
{
  DelayData *d = user_data;

  d->self->checks[d->slot].delay_id = 0;
  start_check (d->self, d->slot);
  return G_SOURCE_REMOVE;
}

static void
file_entry_changed_cb (VireoNewMachineDialog *self,
                       GtkEditable           *editable)
{
  FileSlot slot = SLOT_ISO;
  FileCheck *check;
  DelayData *d;

  for (guint i = 0; i < N_SLOTS; i++)
    if (GTK_EDITABLE (slot_entry (self, i)) == editable)
      slot = i;
  check = &self->checks[slot];

  g_free (check->path);
  check->path = normalize_path (gtk_editable_get_text (editable));
  if (check->cancellable)
    g_cancellable_cancel (check->cancellable);
  g_clear_object (&check->cancellable);
  g_clear_handle_id (&check->delay_id, g_source_remove);
  if (slot == SLOT_DISK)
    {
      self->format_chosen = FALSE;
      gtk_widget_set_sensitive (GTK_WIDGET (self->disk_format_row), FALSE);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (self->disk_format_row), "");
    }
  if (check->path == NULL)
    {
      start_check (self, slot);
      return;
    }
  check->state = CHECK_PENDING;
  d = g_new (DelayData, 1);
  d->self = self;
  d->slot = slot;
  check->delay_id = g_timeout_add_full (G_PRIORITY_DEFAULT, CHECK_DELAY_MS, check_delay_cb, d,
                                        g_free);
  update_state (self);
}

static void
disk_format_changed_cb (VireoNewMachineDialog *self)
{
  if (self->setting_format || self->checks[SLOT_DISK].path == NULL)
    return;
  self->format_chosen = TRUE;
  start_check (self, SLOT_DISK);
}

/* ---- validation ------------------------------------------------------------------------- */

static MessageKind
check_message_kind (const FileCheck *check)
{
  switch (check->state)
    {
    case CHECK_ERROR:
      return MSG_ERROR;
    case CHECK_WARNING:
      return MSG_WARNING;
    case CHECK_OK:
    case CHECK_PENDING:
      return MSG_INFO;
    case CHECK_EMPTY:
    default:
      return MSG_NONE;
    }
}

/* Shows a file check's answer under its field; TRUE when the file can be used (or, when
 * @optional, when the field is empty). */
static gboolean
show_file_check (VireoNewMachineDialog *self,
                 FileSlot               slot,
                 gboolean               optional)
{
  const FileCheck *check = &self->checks[slot];
  const char *text = check->state == CHECK_PENDING ? _("Checking the file…") : check->message;

  show_message (slot_label (self, slot), GTK_WIDGET (slot_entry (self, slot)),
                check_message_kind (check), text);
  return check->state == CHECK_OK || check->state == CHECK_WARNING
         || (optional && check->state == CHECK_EMPTY);
}

static gboolean
validate_source (VireoNewMachineDialog *self)
{
  SourceKind kind = get_source_kind (self);
  gboolean ok;

  gtk_widget_set_visible (self->iso_group, kind == SOURCE_ISO);
  gtk_widget_set_visible (self->disk_group, kind == SOURCE_DISK);
  gtk_widget_set_visible (self->disk_options_group, kind == SOURCE_DISK);
  gtk_widget_set_visible (self->kernel_group, kind == SOURCE_KERNEL);
  gtk_widget_set_visible (self->initrd_group, kind == SOURCE_KERNEL);
  gtk_widget_set_visible (self->cmdline_group, kind == SOURCE_KERNEL);

  switch (kind)
    {
    case SOURCE_ISO:
      return show_file_check (self, SLOT_ISO, FALSE);

    case SOURCE_DISK:
      {
        const FileCheck *check = &self->checks[SLOT_DISK];
        gboolean copy = gtk_check_button_get_active (self->copy_check);
        guint64 free_bytes;

        show_message (self->copy_message, NULL, MSG_NONE, NULL);
        adw_action_row_set_subtitle (self->in_place_row,
                                     check->format == VR_DISK_FORMAT_VMDK
                                       && check->state != CHECK_EMPTY
                                       ? _("The machine only reads this file")
                                       : _("The machine writes to this file"));
        ok = show_file_check (self, SLOT_DISK, FALSE);
        if (!ok)
          return FALSE;
        if (copy && !check->one_file)
          {
            show_message (self->copy_message, NULL, MSG_ERROR,
                          _("This VMDK image is spread over several files, which Vireo cannot "
                            "copy. Use the file where it is."));
            return FALSE;
          }
        if (copy && get_free_space (self, &free_bytes) && check->data_size > free_bytes)
          {
            g_autofree char *need = format_size (check->data_size);
            g_autofree char *have = format_size (free_bytes);
            g_autofree char *text = g_strdup_printf (_("Not enough free space to copy this "
                                                       "image: it holds %s of data, and the "
                                                       "machines’ folder has %s free. Use the "
                                                       "file where it is, or free some space."),
                                                     need, have);

            show_message (self->copy_message, NULL, MSG_ERROR, text);
            return FALSE;
          }
        if (!copy && !check->writable && check->format != VR_DISK_FORMAT_VMDK)
          {
            show_message (self->copy_message, NULL, MSG_ERROR,
                          _("Vireo cannot write to this file. Copy it into the machine’s "
                            "folder, or make the file writable."));
            return FALSE;
          }
        return TRUE;
      }

    case SOURCE_KERNEL:
    default:
      ok = show_file_check (self, SLOT_KERNEL, FALSE);
      return show_file_check (self, SLOT_INITRD, TRUE) && ok;
    }
}

static gboolean
validate_hardware (VireoNewMachineDialog *self)
{
  guint64 host_mib = vireo_host_memory_mib ();
  guint host_cpus = vireo_host_cpu_count ();
  guint64 min_mib = MAX (1u, VR_MIN_MEMORY >> 20);
  g_autofree char *host_text = format_mib (host_mib);
  g_autofree char *text = NULL;
  guint64 mib, cpus;
  gboolean ok = TRUE;

  if (!parse_count (self->memory_spin, &mib))
    {
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_ERROR,
                    _("Enter the memory size as a whole number of MiB."));
      ok = FALSE;
    }
  else if (mib < min_mib)
    {
      text = g_strdup_printf (_("A machine needs at least %u MiB of memory."), (guint) min_mib);
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_ERROR, text);
      ok = FALSE;
    }
  else if (mib > host_mib)
    {
      text = g_strdup_printf (_("This computer has only %s (%u MiB) of memory. Enter a smaller "
                                "size."),
                              host_text, (guint) host_mib);
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_ERROR, text);
      ok = FALSE;
    }
  else if (mib > host_mib / 4 * 3)
    {
      text = g_strdup_printf (_("This leaves little memory for this computer, which has %s in "
                                "all."),
                              host_text);
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_WARNING, text);
    }
  else if (mib < 512 && get_source_kind (self) != SOURCE_KERNEL)
    {
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_WARNING,
                    _("Most operating systems need at least 512 MiB to install and run."));
    }
  else
    {
      g_autofree char *size = format_mib (mib);

      /* Translators: "2 GiB, of the 16 GiB this computer has" */
      text = g_strdup_printf (_("%s, of the %s this computer has"), size, host_text);
      show_message (self->memory_message, GTK_WIDGET (self->memory_spin), MSG_INFO, text);
    }

  g_clear_pointer (&text, g_free);
  if (!parse_count (self->cpus_spin, &cpus) || cpus < 1)
    {
      show_message (self->cpus_message, GTK_WIDGET (self->cpus_spin), MSG_ERROR,
                    _("A machine needs at least one processor."));
      ok = FALSE;
    }
  else if (cpus > host_cpus)
    {
      text = g_strdup_printf (ngettext ("This computer has only %u processor.",
                                        "This computer has only %u processors.", host_cpus),
                              host_cpus);
      show_message (self->cpus_message, GTK_WIDGET (self->cpus_spin), MSG_ERROR, text);
      ok = FALSE;
    }
  else
    {
      text = g_strdup_printf (ngettext ("This computer has %u processor.",
                                        "This computer has %u processors.", host_cpus),
                              host_cpus);
      show_message (self->cpus_message, GTK_WIDGET (self->cpus_spin), MSG_INFO, text);
    }
  return ok;
}

static gboolean
validate_storage (VireoNewMachineDialog *self)
{
  gboolean new_disk = gtk_check_button_get_active (self->new_disk_check);
  guint64 gib, free_bytes;
  g_autofree char *text = NULL;

  gtk_widget_set_visible (self->disk_size_group, new_disk);
  if (!new_disk)
    {
      show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_NONE, NULL);
      return TRUE;
    }
  if (!parse_count (self->disk_size_spin, &gib) || gib < 1)
    {
      show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_ERROR,
                    _("Enter the disk’s size as a whole number of GiB, 1 or more."));
      return FALSE;
    }
  if (gib > (guint64) gtk_adjustment_get_upper (gtk_spin_button_get_adjustment (
                                                  self->disk_size_spin)))
    {
      text = g_strdup_printf (_("A new disk can have at most %.0f GiB."),
                              gtk_adjustment_get_upper (
                                gtk_spin_button_get_adjustment (self->disk_size_spin)));
      show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_ERROR, text);
      return FALSE;
    }
  if (get_free_space (self, &free_bytes))
    {
      g_autofree char *have = NULL;
      g_autofree char *size = g_format_size_full (gib << 30, G_FORMAT_SIZE_IEC_UNITS);

      /* A copied image takes its space first. */
      if (get_source_kind (self) == SOURCE_DISK && gtk_check_button_get_active (self->copy_check))
        free_bytes -= MIN (free_bytes, self->checks[SLOT_DISK].data_size);
      have = g_format_size_full (free_bytes, G_FORMAT_SIZE_IEC_UNITS);
      if ((gib << 30) > free_bytes)
        {
          text = g_strdup_printf (_("The disk can grow to %s, but the folder it goes in has "
                                    "only %s free: the machine will fail to write once that "
                                    "is full. Choose a smaller disk, or free some space."),
                                  size, have);
          show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_WARNING,
                        text);
        }
      else
        {
          text = g_strdup_printf (_("The disk takes space only as the machine fills it. %s "
                                    "free in the machines’ folder."),
                                  have);
          show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_INFO,
                        text);
        }
    }
  else
    show_message (self->disk_size_message, GTK_WIDGET (self->disk_size_spin), MSG_NONE, NULL);
  return TRUE;
}

static gboolean
tap_name_is_valid (const char *name)
{
  if (*name == '\0' || strlen (name) > 15 || g_str_equal (name, ".") || g_str_equal (name, ".."))
    return FALSE;
  for (const char *p = name; *p; p++)
    if (*p == '/' || *p == ':' || g_ascii_isspace (*p) || !g_ascii_isprint (*p))
      return FALSE;
  return TRUE;
}

static gboolean
validate_network (VireoNewMachineDialog *self)
{
  gboolean user = gtk_check_button_get_active (self->user_net_check);
  gboolean tap = gtk_check_button_get_active (self->tap_net_check);
  gboolean ok = TRUE;

  gtk_widget_set_visible (GTK_WIDGET (self->forwards_group), user);
  gtk_widget_set_visible (self->tap_group, tap);

  if (user)
    {
      g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
      g_autofree char *error_text = NULL;
      g_autofree char *warning_text = NULL;

      for (guint i = 0; i < self->forward_rows->len; i++)
        {
          GtkWidget *row = g_ptr_array_index (self->forward_rows, i);
          g_autofree char *rule = g_strstrip (g_strdup (gtk_editable_get_text (
                                                GTK_EDITABLE (row))));
          VrNetHostFwd fwd;
          guint key;

          gtk_widget_remove_css_class (row, "error");
          gtk_widget_remove_css_class (row, "warning");
          if (*rule == '\0')
            continue;
          if (!vr_net_parse_hostfwd (rule, &fwd, NULL))
            {
              gtk_widget_add_css_class (row, "error");
              if (error_text == NULL)
                error_text = g_strdup_printf (_("“%s” is not a port forward. Write the "
                                                "protocol, this computer’s port and the "
                                                "machine’s port like this: tcp::2222-:22."),
                                              rule);
              continue;
            }
          key = ((guint) fwd.host_port << 1) | (fwd.is_udp ? 1u : 0u);
          if (g_hash_table_contains (seen, GUINT_TO_POINTER (key)))
            {
              gtk_widget_add_css_class (row, "error");
              if (error_text == NULL)
                error_text = g_strdup_printf (_("Two rules use %s port %u of this computer. "
                                                "Give each rule its own port."),
                                              fwd.is_udp ? "udp" : "tcp", fwd.host_port);
              continue;
            }
          g_hash_table_add (seen, GUINT_TO_POINTER (key));
          if (fwd.host_port != 0 && fwd.host_port < 1024)
            {
              gtk_widget_add_css_class (row, "warning");
              if (warning_text == NULL)
                warning_text = g_strdup_printf (_("Port %u of this computer is below 1024, "
                                                  "which usually needs administrator "
                                                  "rights. A port from 1024 up always "
                                                  "works."),
                                                fwd.host_port);
            }
        }
      if (error_text != NULL)
        {
          show_message (self->forwards_message, NULL, MSG_ERROR, error_text);
          ok = FALSE;
        }
      else
        show_message (self->forwards_message, NULL, warning_text ? MSG_WARNING : MSG_NONE,
                      warning_text);
    }
  else if (tap)
    {
      g_autofree char *name = g_strstrip (g_strdup (gtk_editable_get_text (
                                            GTK_EDITABLE (self->tap_entry))));
      g_autofree char *sys = NULL;

      if (*name == '\0')
        {
          show_message (self->tap_message, GTK_WIDGET (self->tap_entry), MSG_NONE, NULL);
          ok = FALSE;
        }
      else if (!tap_name_is_valid (name))
        {
          show_message (self->tap_message, GTK_WIDGET (self->tap_entry), MSG_ERROR,
                        _("An interface name has at most 15 characters, without spaces, "
                          "“/” or “:”, like tap0."));
          ok = FALSE;
        }
      else if (!g_file_test ((sys = g_build_filename ("/sys/class/net", name, NULL)),
                             G_FILE_TEST_EXISTS))
        {
          g_autofree char *text = g_strdup_printf (_("There is no interface named “%s” now. "
                                                     "Create it before the machine starts, "
                                                     "with: ip tuntap add %s mode tap user "
                                                     "%s"),
                                                   name, name, g_get_user_name ());

          show_message (self->tap_message, GTK_WIDGET (self->tap_entry), MSG_WARNING, text);
        }
      else
        show_message (self->tap_message, GTK_WIDGET (self->tap_entry), MSG_NONE, NULL);
    }
  return ok;
}

static char *
dup_name (VireoNewMachineDialog *self)
{
  return g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->name_entry))));
}

static gboolean
validate_name (VireoNewMachineDialog *self)
{
  g_autofree char *name = dup_name (self);
  g_autoptr(GError) error = NULL;

  if (*name == '\0')
    {
      show_message (self->name_message, GTK_WIDGET (self->name_entry),
                    self->name_edited ? MSG_ERROR : MSG_NONE, _("Enter a name for the machine."));
      return FALSE;
    }
  if (!vireo_machine_name_is_valid (gtk_editable_get_text (GTK_EDITABLE (self->name_entry)),
                                    &error))
    {
      g_autofree char *text = g_strdup_printf (_("%s Choose another name."), error->message);

      show_message (self->name_message, GTK_WIDGET (self->name_entry), MSG_ERROR, text);
      return FALSE;
    }
  if (vireo_library_name_is_taken (self->library, name, NULL))
    {
      g_autofree char *text = g_strdup_printf (_("There is already a machine named “%s”. "
                                                 "Choose another name."),
                                               name);

      show_message (self->name_message, GTK_WIDGET (self->name_entry), MSG_ERROR, text);
      return FALSE;
    }
  show_message (self->name_message, GTK_WIDGET (self->name_entry), MSG_NONE, NULL);
  return TRUE;
}

static int
page_index (VireoNewMachineDialog *self)
{
  const char *name = gtk_stack_get_visible_child_name (self->stack);

  for (guint i = 0; i < G_N_ELEMENTS (page_names); i++)
    if (g_strcmp0 (name, page_names[i]) == 0)
      return (int) i;
  return -1;
}

static gboolean
is_busy (VireoNewMachineDialog *self)
{
  if (self->working)
    return TRUE;
  for (guint i = 0; i < N_SLOTS; i++)
    if (self->checks[i].state == CHECK_PENDING)
      return TRUE;
  return FALSE;
}

/* Validates every page (each shows its messages), then sets the buttons. */
static void
update_state (VireoNewMachineDialog *self)
{
  gboolean valid[G_N_ELEMENTS (page_names)];
  gboolean all = TRUE;
  int index;

  if (self->disposed)
    return;
  valid[0] = validate_source (self);
  valid[1] = validate_hardware (self);
  valid[2] = validate_storage (self);
  valid[3] = validate_network (self);
  valid[4] = validate_name (self);
  for (guint i = 0; i < G_N_ELEMENTS (valid); i++)
    all = all && valid[i];
  self->all_valid = all;
  memcpy (self->page_valid, valid, sizeof valid);

  index = page_index (self);
  gtk_widget_set_visible (self->next_button, index >= 0 && index < 4);
  gtk_widget_set_visible (self->create_button, index == 4);
  gtk_widget_set_visible (self->back_button, index > 0);
  gtk_widget_set_visible (self->cancel_button, index <= 0);
  /* An installer image is used in place: say so before the machine is made. */
  gtk_widget_set_visible (self->summary_note, get_source_kind (self) == SOURCE_ISO);
  gtk_window_set_default_widget (GTK_WINDOW (self),
                                 index == 4 ? self->create_button : self->next_button);

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "wizard.next",
                                 !self->working && index >= 0 && index < 4 && valid[index]);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "wizard.create",
                                 !self->working && index == 4 && all);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "wizard.back", !self->working && index > 0);
}

static void
revalidate_cb (VireoNewMachineDialog *self)
{
  update_state (self);
}

static void
storage_toggled_cb (VireoNewMachineDialog *self)
{
  if (!self->setting_storage)
    self->storage_chosen = TRUE;
  update_state (self);
}

static void
name_changed_cb (VireoNewMachineDialog *self)
{
  if (!self->setting_name)
    self->name_edited = TRUE;
  update_state (self);
}

static void
source_kind_toggled_cb (VireoNewMachineDialog *self,
                        GtkCheckButton        *button)
{
  SourceKind kind;

  if (!gtk_check_button_get_active (button))
    return;
  kind = get_source_kind (self);
  /* An installer needs a disk to install to; an existing image or a kernel usually not. */
  if (!self->storage_chosen)
    {
      self->setting_storage = TRUE;
      gtk_check_button_set_active (kind == SOURCE_ISO ? self->new_disk_check
                                                      : self->no_disk_check, TRUE);
      self->setting_storage = FALSE;
    }
  update_state (self);
}

/* ---- the summary ------------------------------------------------------------------------ */

static char *
basename_without_extension (const char *path)
{
  char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');

  if (dot != NULL && dot != base)
    *dot = '\0';
  return base;
}

static char *
describe_source (VireoNewMachineDialog *self)
{
  switch (get_source_kind (self))
    {
    case SOURCE_ISO:
      {
        g_autofree char *base = g_path_get_basename (self->checks[SLOT_ISO].path);

        /* Translators: %s is a file name */
        return g_strdup_printf (_("Installer image %s"), base);
      }
    case SOURCE_DISK:
      {
        g_autofree char *base = g_path_get_basename (self->checks[SLOT_DISK].path);

        return g_strdup_printf (gtk_check_button_get_active (self->copy_check)
                                  /* Translators: %s is a file name */
                                  ? _("Disk image %s, copied")
                                  /* Translators: %s is a file name */
                                  : _("Disk image %s"),
                                base);
      }
    case SOURCE_KERNEL:
    default:
      {
        g_autofree char *base = g_path_get_basename (self->checks[SLOT_KERNEL].path);

        /* Translators: %s is a file name */
        return g_strdup_printf (_("Linux kernel %s"), base);
      }
    }
}

static char *
suggest_base_name (VireoNewMachineDialog *self)
{
  switch (get_source_kind (self))
    {
    case SOURCE_ISO:
      return basename_without_extension (self->checks[SLOT_ISO].path);
    case SOURCE_DISK:
      return basename_without_extension (self->checks[SLOT_DISK].path);
    case SOURCE_KERNEL:
    default:
      return g_strdup (_("Linux"));
    }
}

static void
update_summary (VireoNewMachineDialog *self)
{
  g_autofree char *source = describe_source (self);
  g_autofree char *hardware = NULL;
  g_autofree char *storage = NULL;
  g_autofree char *memory = NULL;
  guint64 mib = 0, cpus = 0, gib = 0;
  const char *network;

  parse_count (self->memory_spin, &mib);
  parse_count (self->cpus_spin, &cpus);
  memory = format_mib (mib);
  /* Translators: "2 GiB of memory, 2 processors" */
  hardware = g_strdup_printf (ngettext ("%s of memory, %u processor",
                                        "%s of memory, %u processors", (gulong) cpus),
                              memory, (guint) cpus);
  if (gtk_check_button_get_active (self->new_disk_check) && parse_count (self->disk_size_spin,
                                                                         &gib))
    /* Translators: %u is a size in GiB */
    storage = g_strdup_printf (_("A new %u GiB disk (qcow2)"), (guint) gib);
  else
    storage = g_strdup (_("No new disk"));

  if (gtk_check_button_get_active (self->tap_net_check))
    network = _("Tap interface");
  else if (gtk_check_button_get_active (self->no_net_check))
    network = _("None");
  else
    network = _("User networking");

  adw_action_row_set_subtitle (self->summary_source_row, source);
  adw_action_row_set_subtitle (self->summary_hardware_row, hardware);
  adw_action_row_set_subtitle (self->summary_storage_row, storage);
  adw_action_row_set_subtitle (self->summary_network_row, network);

  if (!self->name_edited)
    {
      g_autofree char *base = suggest_base_name (self);
      g_autofree char *name = vireo_library_suggest_name (self->library, base);

      self->setting_name = TRUE;
      gtk_editable_set_text (GTK_EDITABLE (self->name_entry), name);
      self->setting_name = FALSE;
    }
}

/* ---- pages ------------------------------------------------------------------------------ */

static void
show_page (VireoNewMachineDialog *self,
           guint                  index)
{
  const char *name = page_names[index];
  GtkWidget *page = gtk_stack_get_child_by_name (self->stack, name);
  g_autofree char *subtitle = NULL;

  if (g_str_equal (name, "storage"))
    refresh_free_space (self);
  if (g_str_equal (name, "summary"))
    update_summary (self);
  gtk_stack_set_visible_child_name (self->stack, name);
  /* Translators: "Step 2 of 5: Memory and Processors" */
  subtitle = g_strdup_printf (_("Step %u of %u: %s"), index + 1,
                              (guint) G_N_ELEMENTS (page_names),
                              gtk_stack_page_get_title (gtk_stack_get_page (self->stack, page)));
  adw_window_title_set_subtitle (self->window_title, subtitle);
  update_state (self);
  if (g_str_equal (name, "summary"))
    gtk_widget_grab_focus (GTK_WIDGET (self->name_entry));
  else
    gtk_widget_child_focus (page, GTK_DIR_TAB_FORWARD);
}

static void
next_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);
  int index = page_index (self);

  if (index < 0 || index >= 4)
    return;
  /* What was typed in a spin button becomes its value (the text was checked already). */
  gtk_spin_button_update (self->memory_spin);
  gtk_spin_button_update (self->cpus_spin);
  gtk_spin_button_update (self->disk_size_spin);
  update_state (self);
  if (!self->page_valid[index])
    return;
  show_page (self, (guint) index + 1);
}

static void
back_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);
  int index = page_index (self);

  if (index <= 0 || self->working)
    return;
  show_page (self, (guint) index - 1);
}

static void
cancel_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  gtk_window_close (GTK_WINDOW (widget));
}

/* ---- choosing files --------------------------------------------------------------------- */

static void
chooser_response_cb (GtkNativeDialog       *chooser,
                     int                    response,
                     VireoNewMachineDialog *self)
{
  FileSlot slot = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (chooser), "slot"));

  if (response == GTK_RESPONSE_ACCEPT && !self->disposed)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = file ? g_file_get_path (file) : NULL;

      if (path != NULL)
        {
          gtk_editable_set_text (GTK_EDITABLE (slot_entry (self, slot)), path);
          start_check (self, slot);
        }
    }
  if (self->chooser == chooser)
    g_clear_object (&self->chooser);
}

static void add_filter (GtkFileChooser *chooser, const char *name, const char *mime_type, ...)
  G_GNUC_NULL_TERMINATED;

static void
add_filter (GtkFileChooser *chooser,
            const char     *name,
            const char     *mime_type,
            ...)
{
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();
  const char *pattern;
  va_list args;

  gtk_file_filter_set_name (filter, name);
  if (mime_type != NULL)
    gtk_file_filter_add_mime_type (filter, mime_type);
  va_start (args, mime_type);
  while ((pattern = va_arg (args, const char *)) != NULL)
    gtk_file_filter_add_suffix (filter, pattern);
  va_end (args);
  gtk_file_chooser_add_filter (chooser, filter);
}

static void
choose_file_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);
  const char *which = g_variant_get_string (parameter, NULL);
  FileSlot slot;
  const char *title;
  GtkFileChooserNative *chooser;
  g_autoptr(GtkFileFilter) all = gtk_file_filter_new ();

  if (g_str_equal (which, "iso"))
    slot = SLOT_ISO, title = _("Choose an Installer Image");
  else if (g_str_equal (which, "disk"))
    slot = SLOT_DISK, title = _("Choose a Disk Image");
  else if (g_str_equal (which, "kernel"))
    slot = SLOT_KERNEL, title = _("Choose a Kernel");
  else
    slot = SLOT_INITRD, title = _("Choose an Initial RAM Disk");

  if (self->chooser != NULL)
    gtk_native_dialog_destroy (self->chooser);
  g_clear_object (&self->chooser);

  /* GtkFileDialog arrives with GTK 4.10; Debian 12 has 4.8. */
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  chooser = gtk_file_chooser_native_new (title, GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Choose"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  if (slot == SLOT_ISO)
    add_filter (GTK_FILE_CHOOSER (chooser), _("Installer images"), "application/x-cd-image",
                "iso", NULL);
  else if (slot == SLOT_DISK)
    add_filter (GTK_FILE_CHOOSER (chooser), _("Disk images"), NULL, "qcow2", "img", "raw",
                "vmdk", NULL);
  gtk_file_filter_set_name (all, _("All files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
  if (self->checks[slot].path != NULL)
    {
      g_autoptr(GFile) file = g_file_new_for_path (self->checks[slot].path);
      g_autoptr(GFile) parent = g_file_get_parent (file);

      if (parent != NULL)
        gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), parent, NULL);
    }
  G_GNUC_END_IGNORE_DEPRECATIONS
  g_object_set_data (G_OBJECT (chooser), "slot", GUINT_TO_POINTER (slot));
  g_signal_connect (chooser, "response", G_CALLBACK (chooser_response_cb), self);
  self->chooser = GTK_NATIVE_DIALOG (chooser);
  gtk_native_dialog_show (self->chooser);
}

/* ---- port forwards ---------------------------------------------------------------------- */

static void
remove_forward_clicked_cb (GtkButton             *button,
                           VireoNewMachineDialog *self)
{
  GtkWidget *row = g_object_get_data (G_OBJECT (button), "row");

  g_ptr_array_remove (self->forward_rows, row);
  adw_preferences_group_remove (self->forwards_group, row);
  update_state (self);
}

static void
add_forward_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);
  GtkWidget *row = adw_entry_row_new ();
  GtkWidget *remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
  g_autofree char *name = g_strdup_printf ("forward-entry-%u", self->forward_serial++);

  gtk_widget_set_name (row, name);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row),
                                 _("Rule, such as tcp::2222-:22"));
  gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (remove, "flat");
  gtk_widget_set_tooltip_text (remove, _("Remove This Port Forward"));
  g_object_set_data (G_OBJECT (remove), "row", row);
  g_signal_connect (remove, "clicked", G_CALLBACK (remove_forward_clicked_cb), self);
  adw_entry_row_add_suffix (ADW_ENTRY_ROW (row), remove);
  adw_entry_row_set_activates_default (ADW_ENTRY_ROW (row), TRUE);
  g_signal_connect_swapped (row, "changed", G_CALLBACK (revalidate_cb), self);
  g_ptr_array_add (self->forward_rows, row);
  adw_preferences_group_add (self->forwards_group, row);
  gtk_widget_grab_focus (row);
  update_state (self);
}

/* ---- creating --------------------------------------------------------------------------- */

static const char *
new_disk_name (void)
{
  return vireo_library_default_disk_name (VR_DISK_FORMAT_QCOW2);
}

/* The name a copied image gets in the machine's folder: its own, unless that is taken. */
static char *
copy_file_name (const char *source)
{
  g_autofree char *base = g_path_get_basename (source);

  if (g_str_equal (base, new_disk_name ()) || g_str_equal (base, VIREO_MACHINE_CONFIG_FILE)
      || g_str_equal (base, VIREO_MACHINE_THUMBNAIL_FILE)
      || g_str_equal (base, VIREO_MACHINE_SERIAL_LOG)
      || g_str_equal (base, VIREO_MACHINE_SNAPSHOT_DIR) || base[0] == '.')
    return g_strconcat ("image-", base[0] == '.' ? base + 1 : base, NULL);
  return g_steal_pointer (&base);
}

static VireoMachineConfig *
build_config (VireoNewMachineDialog *self)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_new ();
  SourceKind kind = get_source_kind (self);
  VireoDiskConfig *disk;
  guint64 mib = 0, cpus = 0, gib = 0;

  config->name = dup_name (self);
  config->source = describe_source (self);
  parse_count (self->memory_spin, &mib);
  parse_count (self->cpus_spin, &cpus);
  config->memory_mib = mib;
  config->cpus = (guint) cpus;

  if (gtk_check_button_get_active (self->new_disk_check)
      && parse_count (self->disk_size_spin, &gib))
    {
      disk = vireo_disk_config_new (new_disk_name (), VR_DISK_FORMAT_QCOW2);
      disk->create_size = gib << 30;
      g_ptr_array_add (config->disks, disk);
    }

  switch (kind)
    {
    case SOURCE_ISO:
      config->boot_kind = VIREO_BOOT_CDROM;
      config->boot_order = g_strdup ("cdrom,disk");
      disk = vireo_disk_config_new (self->checks[SLOT_ISO].path, VR_DISK_FORMAT_RAW);
      disk->media = VIREO_DISK_MEDIA_CDROM;
      disk->readonly = TRUE;
      g_ptr_array_add (config->disks, disk);
      break;

    case SOURCE_DISK:
      config->boot_kind = VIREO_BOOT_DISK;
      disk = vireo_disk_config_new (self->copy_path ? self->copy_path
                                                    : self->checks[SLOT_DISK].path,
                                    self->checks[SLOT_DISK].format);
      disk->readonly = disk->format == VR_DISK_FORMAT_VMDK;
      /* The machine boots from the image, so it comes first. */
      g_ptr_array_insert (config->disks, 0, disk);
      break;

    case SOURCE_KERNEL:
    default:
      {
        g_autofree char *cmdline = g_strstrip (g_strdup (gtk_editable_get_text (
                                                 GTK_EDITABLE (self->cmdline_entry))));

        config->boot_kind = VIREO_BOOT_KERNEL;
        config->kernel = g_strdup (self->checks[SLOT_KERNEL].path);
        config->initrd = g_strdup (self->checks[SLOT_INITRD].path);
        config->cmdline = *cmdline ? g_steal_pointer (&cmdline) : NULL;
        break;
      }
    }

  g_ptr_array_set_size (config->nics, 0);
  if (gtk_check_button_get_active (self->user_net_check))
    {
      VireoNicConfig *nic = vireo_nic_config_new (VIREO_NET_USER);
      g_autoptr(GStrvBuilder) rules = g_strv_builder_new ();

      for (guint i = 0; i < self->forward_rows->len; i++)
        {
          g_autofree char *rule = g_strstrip (g_strdup (gtk_editable_get_text (
                                                GTK_EDITABLE (g_ptr_array_index (
                                                  self->forward_rows, i)))));

          if (*rule != '\0')
            g_strv_builder_add (rules, rule);
        }
      nic->host_forwards = g_strv_builder_end (rules);
      if (nic->host_forwards[0] == NULL)
        g_clear_pointer (&nic->host_forwards, g_strfreev);
      g_ptr_array_add (config->nics, nic);
    }
  else if (gtk_check_button_get_active (self->tap_net_check))
    {
      VireoNicConfig *nic = vireo_nic_config_new (VIREO_NET_TAP);

      nic->tap = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->tap_entry))));
      g_ptr_array_add (config->nics, nic);
    }
  return g_steal_pointer (&config);
}

static void
set_working (VireoNewMachineDialog *self,
             gboolean               working)
{
  self->working = working;
  gtk_widget_set_sensitive (self->back_button, !working);
  update_state (self);
}

static void
remove_copy (VireoNewMachineDialog *self)
{
  if (self->copy_path != NULL)
    g_unlink (self->copy_path);
  if (self->copy_dir != NULL)
    g_rmdir (self->copy_dir);
  g_clear_pointer (&self->copy_path, g_free);
  g_clear_pointer (&self->copy_dir, g_free);
}

static void
stop_progress (VireoNewMachineDialog *self)
{
  g_clear_handle_id (&self->progress_id, g_source_remove);
}

/* Back on the summary page, with @error (NULL: cancelled) under the name. */
static void
creation_failed (VireoNewMachineDialog *self,
                 const GError          *error)
{
  stop_progress (self);
  remove_copy (self);
  g_clear_object (&self->work_cancellable);
  set_working (self, FALSE);
  if (self->close_when_done)
    {
      gtk_window_destroy (GTK_WINDOW (self));
      return;
    }
  gtk_stack_set_visible_child_name (self->stack, "summary");
  update_state (self);
  if (error == NULL)
    show_message (self->create_message, NULL, MSG_INFO,
                  _("Copying stopped. Nothing was created."));
  else
    {
      g_autofree char *text = g_strdup_printf (_("The machine could not be created: %s"),
                                               error->message);

      show_message (self->create_message, NULL, MSG_ERROR, text);
    }
}

typedef struct
{
  GWeakRef  parent;
  char     *name;
} StartData;

static void
start_data_free (StartData *data)
{
  g_weak_ref_clear (&data->parent);
  g_free (data->name);
  g_free (data);
}

static void
start_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  StartData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GtkWindow) parent = NULL;
  GtkWidget *dialog;

  if (vireo_machine_start_finish (VIREO_MACHINE (source), result, &error))
    {
      start_data_free (data);
      return;
    }
  parent = g_weak_ref_get (&data->parent);
  if (parent == NULL)
    g_message ("The new machine “%s” could not start: %s", data->name, error->message);
  else
    {
      dialog = adw_message_dialog_new (parent, NULL, error->message);
      adw_message_dialog_format_heading (ADW_MESSAGE_DIALOG (dialog),
                                         _("“%s” Was Created but Could Not Start"), data->name);
      adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
      gtk_window_present (GTK_WINDOW (dialog));
    }
  start_data_free (data);
}

static void
machine_created_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(VireoNewMachineDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(VireoMachine) machine = NULL;
  GtkWindow *parent;
  gboolean customize;

  machine = vireo_library_create_machine_finish (VIREO_LIBRARY (source), result, &error);
  if (machine == NULL)
    {
      if (!self->disposed)
        creation_failed (self, error);
      else
        remove_copy (self);
      return;
    }

  /* A copied image moves from its work folder into the machine's own. */
  if (self->copy_path != NULL)
    {
      g_autofree char *file_name = g_path_get_basename (self->copy_path);
      g_autofree char *dest = g_build_filename (vireo_machine_get_dir (machine), file_name, NULL);
      g_autoptr(VireoMachineConfig) config = vireo_machine_config_copy (
        vireo_machine_get_config (machine));
      g_autoptr(GError) move_error = NULL;

      for (guint i = 0; i < config->disks->len; i++)
        {
          VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

          if (g_strcmp0 (disk->path, self->copy_path) == 0)
            {
              g_free (disk->path);
              disk->path = g_strdup (file_name);
            }
        }
      if (g_rename (self->copy_path, dest) != 0)
        g_warning ("Cannot move %s into %s: %s", self->copy_path, dest, g_strerror (errno));
      else if (!vireo_machine_set_config (machine, config, TRUE, &move_error))
        g_warning ("Cannot update the new machine's settings: %s", move_error->message);
      else
        g_clear_pointer (&self->copy_path, g_free);
      if (self->copy_path == NULL)
        remove_copy (self);
    }

  customize = self->disposed || gtk_switch_get_active (self->customize_switch);
  g_signal_emit (self, signals[MACHINE_CREATED], 0, machine, customize);

  parent = gtk_window_get_transient_for (GTK_WINDOW (self));
  if (parent != NULL && GTK_IS_WIDGET (parent))
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.show-machine", "(sb)",
                                vireo_machine_get_uuid (machine), customize);
  if (!customize)
    {
      StartData *data = g_new0 (StartData, 1);

      g_weak_ref_init (&data->parent, parent);
      data->name = g_strdup (vireo_machine_get_name (machine));
      vireo_machine_start_async (machine, NULL, start_done, data);
    }

  stop_progress (self);
  g_clear_object (&self->work_cancellable);
  self->working = FALSE;
  if (!self->disposed)
    gtk_window_destroy (GTK_WINDOW (self));
}

static void
create_machine (VireoNewMachineDialog *self)
{
  g_autoptr(VireoMachineConfig) config = build_config (self);

  adw_status_page_set_title (self->progress_page, _("Creating the Machine"));
  gtk_widget_set_visible (self->progress_cancel_button, FALSE);
  gtk_progress_bar_pulse (self->progress_bar);
  gtk_label_set_text (self->progress_label, "");
  vireo_library_create_machine_async (self->library, config, NULL, machine_created_cb,
                                      g_object_ref (self));
}

/* Copying an image: sparse (holes stay holes), in a thread, with progress. */

typedef struct
{
  VireoNewMachineDialog *self;  /* for the progress counters only (the task holds a ref) */
  char                  *src;
  char                  *dst;
} CopyData;

static void
copy_data_free (CopyData *data)
{
  g_free (data->src);
  g_free (data->dst);
  g_free (data);
}

static void
copy_progress (VireoNewMachineDialog *self,
               guint64                done,
               guint64                total)
{
  g_mutex_lock (&self->progress_lock);
  self->progress_done = done;
  self->progress_total = total;
  g_mutex_unlock (&self->progress_lock);
}

static void
copy_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  CopyData *data = task_data;
  g_autofree char *buf = g_malloc (COPY_CHUNK);
  struct stat st;
  guint64 data_bytes = 0, done = 0;
  off_t pos;
  int in, out;
  int saved = 0;

  in = g_open (data->src, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0 || fstat (in, &st) != 0)
    {
      saved = errno;
      if (in >= 0)
        close (in);
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Cannot read “%s”: %s"), data->src, g_strerror (saved));
      return;
    }
  out = g_open (data->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0 || ftruncate (out, st.st_size) != 0)
    {
      saved = errno;
      goto io_error_out;
    }

  /* The data to copy, for the progress bar: the extents SEEK_DATA finds. */
  for (pos = 0; pos < st.st_size;)
    {
      off_t start = lseek (in, pos, SEEK_DATA);
      off_t end;

      if (start < 0)
        break;
      end = lseek (in, start, SEEK_HOLE);
      if (end < 0)
        end = st.st_size;
      data_bytes += (guint64) (end - start);
      pos = end;
    }
  copy_progress (data->self, 0, MAX (data_bytes, 1));

  for (pos = 0; pos < st.st_size;)
    {
      off_t start = lseek (in, pos, SEEK_DATA);
      off_t end;

      if (start < 0)
        {
          if (errno == ENXIO)
            break;  /* only a hole is left */
          start = pos;  /* no SEEK_DATA here: copy everything */
          end = st.st_size;
        }
      else
        {
          end = lseek (in, start, SEEK_HOLE);
          if (end < 0)
            end = st.st_size;
        }
      while (start < end)
        {
          size_t want = (size_t) MIN ((off_t) COPY_CHUNK, end - start);
          ssize_t n;

          if (g_cancellable_is_cancelled (cancellable))
            {
              close (in);
              close (out);
              g_unlink (data->dst);
              g_task_return_error_if_cancelled (task);
              return;
            }
          n = pread (in, buf, want, start);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              saved = n < 0 ? errno : EIO;
              goto io_error_in;
            }
          for (ssize_t w = 0; w < n;)
            {
              ssize_t m = pwrite (out, buf + w, (size_t) (n - w), start + w);

              if (m < 0 && errno == EINTR)
                continue;
              if (m <= 0)
                {
                  saved = m < 0 ? errno : EIO;
                  goto io_error_out;
                }
              w += m;
            }
          start += n;
          done += (guint64) n;
          copy_progress (data->self, done, MAX (data_bytes, done));
        }
      pos = end;
    }
  if (fsync (out) != 0)
    {
      saved = errno;
      goto io_error_out;
    }
  close (in);
  close (out);
  g_task_return_boolean (task, TRUE);
  return;

io_error_in:
  close (in);
  close (out);
  g_unlink (data->dst);
  g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                           _("Cannot read “%s”: %s"), data->src, g_strerror (saved));
  return;

io_error_out:
  close (in);
  if (out >= 0)
    close (out);
  g_unlink (data->dst);
  g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                           _("Cannot copy the image into the machines’ folder: %s"),
                           g_strerror (saved));
}

static gboolean
progress_tick_cb (gpointer user_data)
{
  VireoNewMachineDialog *self = user_data;
  g_autofree char *done_text = NULL;
  g_autofree char *total_text = NULL;
  g_autofree char *text = NULL;
  guint64 done, total;

  g_mutex_lock (&self->progress_lock);
  done = self->progress_done;
  total = self->progress_total;
  g_mutex_unlock (&self->progress_lock);

  /* A work folder untouched for an hour is taken for a crash's leftover (vireo-library.c):
   * keep a long copy's folder fresh. */
  if (++self->progress_ticks % 600 == 0 && self->copy_dir != NULL)
    g_utime (self->copy_dir, NULL);

  if (total == 0)
    {
      gtk_progress_bar_pulse (self->progress_bar);
      return G_SOURCE_CONTINUE;
    }
  gtk_progress_bar_set_fraction (self->progress_bar, (double) done / (double) total);
  done_text = format_size (done);
  total_text = format_size (total);
  /* Translators: "1.2 GB of 3.4 GB" */
  text = g_strdup_printf (_("%s of %s"), done_text, total_text);
  gtk_label_set_text (self->progress_label, text);
  return G_SOURCE_CONTINUE;
}

static void
copy_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (source);
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      creation_failed (self, g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? NULL
                                                                                        : error);
      return;
    }
  if (self->close_when_done)
    {
      creation_failed (self, NULL);
      return;
    }
  create_machine (self);
}

static void
start_copy (VireoNewMachineDialog *self)
{
  g_autofree char *lib_dir = vireo_library_get_default_disk_dir (self->library);
  g_autofree char *file_name = copy_file_name (self->checks[SLOT_DISK].path);
  g_autoptr(GTask) task = NULL;
  CopyData *data;

  g_mkdir_with_parents (lib_dir, 0755);
  self->copy_dir = g_build_filename (lib_dir, ".new-copy-XXXXXX", NULL);
  if (g_mkdtemp (self->copy_dir) == NULL)
    {
      int saved = errno;
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, g_io_error_from_errno (saved),
                                             "%s", g_strerror (saved));

      g_clear_pointer (&self->copy_dir, g_free);
      creation_failed (self, error);
      return;
    }
  self->copy_path = g_build_filename (self->copy_dir, file_name, NULL);

  adw_status_page_set_title (self->progress_page, _("Copying the Disk Image"));
  gtk_widget_set_visible (self->progress_cancel_button, TRUE);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_label_set_text (self->progress_label, "");
  copy_progress (self, 0, 0);
  self->progress_id = g_timeout_add (100, progress_tick_cb, self);

  data = g_new0 (CopyData, 1);
  data->self = self;
  data->src = g_strdup (self->checks[SLOT_DISK].path);
  data->dst = g_strdup (self->copy_path);
  task = g_task_new (self, self->work_cancellable, copy_done, NULL);
  g_task_set_source_tag (task, start_copy);
  g_task_set_task_data (task, data, (GDestroyNotify) copy_data_free);
  g_task_run_in_thread (task, copy_thread);
}

static void
create_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);

  update_state (self);
  if (self->working || !self->all_valid || page_index (self) != 4)
    return;

  show_message (self->create_message, NULL, MSG_NONE, NULL);
  self->work_cancellable = g_cancellable_new ();
  set_working (self, TRUE);
  gtk_stack_set_visible_child_name (self->stack, "progress");
  gtk_widget_set_visible (self->create_button, FALSE);
  gtk_widget_set_visible (self->back_button, FALSE);
  gtk_widget_set_visible (self->cancel_button, FALSE);

  if (get_source_kind (self) == SOURCE_DISK && gtk_check_button_get_active (self->copy_check))
    start_copy (self);
  else
    create_machine (self);
}

static void
stop_copy_action (GtkWidget  *widget,
                  const char *action_name,
                  GVariant   *parameter)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (widget);

  if (self->work_cancellable != NULL)
    g_cancellable_cancel (self->work_cancellable);
}

static gboolean
vireo_new_machine_dialog_close_request (GtkWindow *window)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (window);

  if (!self->working)
    return FALSE;
  /* A copy stops (and cleans up) first; a creation in progress finishes. */
  self->close_when_done = TRUE;
  if (self->work_cancellable != NULL)
    g_cancellable_cancel (self->work_cancellable);
  return TRUE;
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
vireo_new_machine_dialog_dispose (GObject *object)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (object);

  self->disposed = TRUE;
  for (guint i = 0; i < N_SLOTS; i++)
    {
      g_clear_handle_id (&self->checks[i].delay_id, g_source_remove);
      if (self->checks[i].cancellable)
        g_cancellable_cancel (self->checks[i].cancellable);
      g_clear_object (&self->checks[i].cancellable);
    }
  if (self->work_cancellable)
    g_cancellable_cancel (self->work_cancellable);
  stop_progress (self);
  if (self->chooser != NULL)
    gtk_native_dialog_destroy (self->chooser);
  g_clear_object (&self->chooser);

  G_OBJECT_CLASS (vireo_new_machine_dialog_parent_class)->dispose (object);
}

static void
vireo_new_machine_dialog_finalize (GObject *object)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (object);

  for (guint i = 0; i < N_SLOTS; i++)
    {
      g_free (self->checks[i].message);
      g_free (self->checks[i].path);
    }
  remove_copy (self);
  g_clear_object (&self->work_cancellable);
  g_clear_pointer (&self->forward_rows, g_ptr_array_unref);
  g_clear_object (&self->library);
  g_mutex_clear (&self->progress_lock);

  G_OBJECT_CLASS (vireo_new_machine_dialog_parent_class)->finalize (object);
}

static void
vireo_new_machine_dialog_get_property (GObject    *object,
                                       guint       prop_id,
                                       GValue     *value,
                                       GParamSpec *pspec)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (object);

  switch (prop_id)
    {
    case PROP_LIBRARY:
      g_value_set_object (value, self->library);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_new_machine_dialog_set_property (GObject      *object,
                                       guint         prop_id,
                                       const GValue *value,
                                       GParamSpec   *pspec)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (object);

  switch (prop_id)
    {
    case PROP_LIBRARY:
      g_set_object (&self->library, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_new_machine_dialog_constructed (GObject *object)
{
  VireoNewMachineDialog *self = VIREO_NEW_MACHINE_DIALOG (object);

  G_OBJECT_CLASS (vireo_new_machine_dialog_parent_class)->constructed (object);

  g_assert (self->library != NULL);
  refresh_free_space (self);
  show_page (self, 0);
}

static void
vireo_new_machine_dialog_class_init (VireoNewMachineDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = vireo_new_machine_dialog_dispose;
  object_class->finalize = vireo_new_machine_dialog_finalize;
  object_class->get_property = vireo_new_machine_dialog_get_property;
  object_class->set_property = vireo_new_machine_dialog_set_property;
  object_class->constructed = vireo_new_machine_dialog_constructed;
  window_class->close_request = vireo_new_machine_dialog_close_request;

  properties[PROP_LIBRARY] =
    g_param_spec_object ("library", NULL, NULL, VIREO_TYPE_LIBRARY,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS
                         | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * VireoNewMachineDialog::machine-created:
   * @machine: the new machine, already in the library
   * @customize: whether the user asked to see its details instead of starting it
   */
  signals[MACHINE_CREATED] =
    g_signal_new ("machine-created", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 2, VIREO_TYPE_MACHINE, G_TYPE_BOOLEAN);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-new-machine-dialog.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, VireoNewMachineDialog, name)
  BIND (cancel_button);
  BIND (back_button);
  BIND (next_button);
  BIND (create_button);
  BIND (window_title);
  BIND (stack);
  BIND (iso_check);
  BIND (disk_check);
  BIND (kernel_check);
  BIND (iso_group);
  BIND (iso_entry);
  BIND (iso_message);
  BIND (disk_group);
  BIND (disk_entry);
  BIND (disk_format_row);
  BIND (format_list);
  BIND (in_place_row);
  BIND (in_place_check);
  BIND (copy_check);
  BIND (disk_message);
  BIND (disk_options_group);
  BIND (copy_message);
  BIND (kernel_group);
  BIND (kernel_entry);
  BIND (kernel_message);
  BIND (initrd_group);
  BIND (initrd_entry);
  BIND (initrd_message);
  BIND (cmdline_group);
  BIND (cmdline_entry);
  BIND (memory_row);
  BIND (memory_spin);
  BIND (memory_adjustment);
  BIND (memory_message);
  BIND (cpus_row);
  BIND (cpus_spin);
  BIND (cpus_adjustment);
  BIND (cpus_message);
  BIND (new_disk_check);
  BIND (no_disk_check);
  BIND (disk_size_group);
  BIND (disk_size_spin);
  BIND (disk_size_message);
  BIND (user_net_check);
  BIND (tap_net_check);
  BIND (no_net_check);
  BIND (forwards_group);
  BIND (forwards_message);
  BIND (tap_group);
  BIND (tap_entry);
  BIND (tap_message);
  BIND (name_entry);
  BIND (name_message);
  BIND (summary_source_row);
  BIND (summary_hardware_row);
  BIND (summary_storage_row);
  BIND (summary_network_row);
  BIND (customize_row);
  BIND (customize_switch);
  BIND (summary_note);
  BIND (create_message);
  BIND (progress_page);
  BIND (progress_bar);
  BIND (progress_label);
  BIND (progress_cancel_button);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, file_entry_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, disk_format_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, revalidate_cb);
  gtk_widget_class_bind_template_callback (widget_class, storage_toggled_cb);
  gtk_widget_class_bind_template_callback (widget_class, name_changed_cb);

  gtk_widget_class_install_action (widget_class, "wizard.next", NULL, next_action);
  gtk_widget_class_install_action (widget_class, "wizard.back", NULL, back_action);
  gtk_widget_class_install_action (widget_class, "wizard.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "wizard.create", NULL, create_action);
  gtk_widget_class_install_action (widget_class, "wizard.stop-copy", NULL, stop_copy_action);
  gtk_widget_class_install_action (widget_class, "wizard.add-forward", NULL,
                                   add_forward_action);
  gtk_widget_class_install_action (widget_class, "wizard.choose-file", "s", choose_file_action);

  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "wizard.cancel", NULL);
}

static void
vireo_new_machine_dialog_init (VireoNewMachineDialog *self)
{
  guint host_cpus = vireo_host_cpu_count ();
  guint64 host_mib = vireo_host_memory_mib ();
  guint64 memory = MIN ((guint64) DEFAULT_MEMORY, host_mib / 2 / 256 * 256);

  self->free_space_override = G_MAXUINT64;
  self->forward_rows = g_ptr_array_new ();
  g_mutex_init (&self->progress_lock);

  gtk_widget_init_template (GTK_WIDGET (self));

  /* The order is VrDiskFormat's: the row's index is the format. */
  gtk_string_list_append (self->format_list, C_("disk format", "Raw"));
  gtk_string_list_append (self->format_list, "qcow2");
  gtk_string_list_append (self->format_list, C_("disk format", "VMDK (read-only)"));

  gtk_adjustment_set_upper (self->memory_adjustment, (double) host_mib);
  gtk_adjustment_set_value (self->memory_adjustment,
                            (double) MAX (memory, (guint64) MAX (1u, VR_MIN_MEMORY >> 20)));
  gtk_adjustment_set_upper (self->cpus_adjustment, host_cpus);
  gtk_adjustment_set_value (self->cpus_adjustment, MIN (DEFAULT_CPUS, host_cpus));

  g_signal_connect_swapped (self->iso_check, "toggled", G_CALLBACK (source_kind_toggled_cb),
                            self);
  g_signal_connect_swapped (self->disk_check, "toggled", G_CALLBACK (source_kind_toggled_cb),
                            self);
  g_signal_connect_swapped (self->kernel_check, "toggled", G_CALLBACK (source_kind_toggled_cb),
                            self);
  g_signal_connect_swapped (self->stack, "notify::visible-child", G_CALLBACK (revalidate_cb),
                            self);
}

/* ---- public ----------------------------------------------------------------------------- */

VireoNewMachineDialog *
vireo_new_machine_dialog_new (GtkWindow    *parent,
                              VireoLibrary *library)
{
  g_return_val_if_fail (parent == NULL || GTK_IS_WINDOW (parent), NULL);
  g_return_val_if_fail (VIREO_IS_LIBRARY (library), NULL);

  return g_object_new (VIREO_TYPE_NEW_MACHINE_DIALOG,
                       "library", library,
                       "transient-for", parent,
                       NULL);
}

void
vireo_new_machine_dialog_present (GtkWindow    *parent,
                                  VireoLibrary *library)
{
  VireoNewMachineDialog *self;

  g_return_if_fail (parent == NULL || GTK_IS_WINDOW (parent));
  g_return_if_fail (VIREO_IS_LIBRARY (library));

  self = vireo_new_machine_dialog_new (parent, library);
  gtk_window_present (GTK_WINDOW (self));
}

VireoLibrary *
vireo_new_machine_dialog_get_library (VireoNewMachineDialog *self)
{
  g_return_val_if_fail (VIREO_IS_NEW_MACHINE_DIALOG (self), NULL);
  return self->library;
}

const char *
vireo_new_machine_dialog_get_page (VireoNewMachineDialog *self)
{
  g_return_val_if_fail (VIREO_IS_NEW_MACHINE_DIALOG (self), NULL);
  return gtk_stack_get_visible_child_name (self->stack);
}

gboolean
vireo_new_machine_dialog_is_busy (VireoNewMachineDialog *self)
{
  g_return_val_if_fail (VIREO_IS_NEW_MACHINE_DIALOG (self), FALSE);
  return is_busy (self);
}

void
vireo_new_machine_dialog_set_free_space (VireoNewMachineDialog *self,
                                         guint64                bytes)
{
  g_return_if_fail (VIREO_IS_NEW_MACHINE_DIALOG (self));

  self->free_space_override = bytes;
  update_state (self);
}
