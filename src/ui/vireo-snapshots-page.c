/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-snapshots-page"

#include "config.h"

#include "vireo-snapshots-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "vireo-thumbnailer.h"
#include "vr-display.h"

#define CLOCK_INTERVAL_S 30
#define ROW_THUMB_WIDTH  96
#define ROW_THUMB_HEIGHT 54

typedef enum
{
  BANNER_NONE,
  BANNER_NO_SNAPSHOTS,   /* a raw disk: explained, a qcow2 overlay offered */
  BANNER_SAVED_STATE,    /* offers to discard it */
  BANNER_RESUME_FAILED,  /* offers to start afresh */
} BannerKind;

struct _VireoSnapshotsPage
{
  GtkWidget            parent_instance;

  VireoMachine        *machine;
  VireoSnapshotStore  *store;
  GtkTreeListModel    *tree;
  GtkSingleSelection  *selection;
  char                *selected_id;   /* kept across changes of the tree */
  GPtrArray           *rows;          /* Row *, bound */
  guint                clock_id;
  guint                rebuild_id;
  gboolean             encoding;      /* the thumbnail of a snapshot to take */
  BannerKind           banner;
  GtkWindow           *dialog;        /* weak: the question on screen */
  char                *resume_error_shown;

  /* Template. */
  AdwToastOverlay     *toast_overlay;
  GtkRevealer         *banner_revealer;
  GtkLabel            *banner_label;
  GtkButton           *banner_button;
  GtkWidget           *busy_box;
  GtkSpinner          *busy_spinner;
  GtkLabel            *busy_label;
  GtkStack            *stack;
  GtkListView         *list_view;
  AdwStatusPage       *error_page;
};

G_DEFINE_FINAL_TYPE (VireoSnapshotsPage, vireo_snapshots_page, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void update_all (VireoSnapshotsPage *self);
static void update_actions (VireoSnapshotsPage *self);

/* ---- messages --------------------------------------------------------------------------- */

static void
show_toast (VireoSnapshotsPage *self, const char *text)
{
  AdwToast *toast = adw_toast_new (text);

  g_message ("%s", text);
  adw_toast_set_timeout (toast, 8);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

static void
show_error (VireoSnapshotsPage *self, const char *what, const GError *error)
{
  /* Translators: an error toast: what failed, then why (the why says what to do) */
  g_autofree char *text = g_strdup_printf (_("%s: %s"), what, error->message);

  show_toast (self, text);
}

/* An AdwMessageDialog over the window, remembered (only one at a time). */
static AdwMessageDialog *
new_dialog (VireoSnapshotsPage *self, const char *heading, const char *body)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  AdwMessageDialog *dialog;

  if (self->dialog != NULL)
    gtk_window_destroy (self->dialog);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root)
                                                                          : NULL,
                                                       heading, body));
  g_set_weak_pointer (&self->dialog, GTK_WINDOW (dialog));
  return dialog;
}

/* ---- formatting ------------------------------------------------------------------------- */

static char *
format_when (GDateTime *when)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  GTimeSpan ago = g_date_time_difference (now, when);

  if (ago < 0)
    ago = 0;
  if (ago < G_TIME_SPAN_MINUTE)
    return g_strdup (_("Just now"));
  if (ago < G_TIME_SPAN_HOUR)
    {
      guint n = (guint) (ago / G_TIME_SPAN_MINUTE);
      return g_strdup_printf (ngettext ("%u minute ago", "%u minutes ago", n), n);
    }
  if (ago < G_TIME_SPAN_DAY)
    {
      guint n = (guint) (ago / G_TIME_SPAN_HOUR);
      return g_strdup_printf (ngettext ("%u hour ago", "%u hours ago", n), n);
    }
  /* The locale's date. */
  return g_date_time_format (when, "%x");
}

static const char *
memory_label (VireoSnapshot *s)
{
  if (vireo_snapshot_get_kind (s) == VIREO_SNAPSHOT_KIND_DISK)
    /* Translators: a snapshot made by another program (qemu-img) that holds the disks only */
    return _("Disks only, made outside Vireo");
  return vireo_snapshot_get_memory (s) ? _("Memory and disks") : _("Disks only");
}

static const char *
memory_tooltip (VireoSnapshot *s)
{
  if (vireo_snapshot_get_memory (s))
    return _("Going back to it resumes the machine where it was.");
  return _("Going back to it starts the machine afresh from its disks.");
}

/* ---- rows ------------------------------------------------------------------------------- */

typedef struct
{
  VireoSnapshotsPage *page;        /* weak: the page outlives its rows */
  GtkWidget          *expander;
  GtkWidget          *box;
  GtkWidget          *picture;
  GtkWidget          *placeholder;
  GtkWidget          *name;
  GtkWidget          *current;
  GtkWidget          *description;
  GtkWidget          *broken;
  GtkWidget          *when;
  GtkWidget          *memory;
  VireoSnapshot      *snapshot;    /* bound */
  GFile              *thumb_file;  /* shown */
  gulong              notify_id;
} Row;

static void
row_free (Row *row)
{
  if (row->snapshot != NULL)
    g_clear_signal_handler (&row->notify_id, row->snapshot);
  g_clear_object (&row->snapshot);
  g_clear_object (&row->thumb_file);
  g_free (row);
}

static GtkWidget *
new_label (const char *css_class, gboolean wrap)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  if (wrap)
    {
      gtk_label_set_wrap (GTK_LABEL (label), TRUE);
      gtk_label_set_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
    }
  else
    gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  if (css_class != NULL)
    gtk_widget_add_css_class (label, css_class);
  return label;
}

static void
row_update_when (Row *row)
{
  g_autofree char *when = NULL;
  g_autofree char *full = NULL;

  if (row->snapshot == NULL)
    return;
  when = format_when (vireo_snapshot_get_created (row->snapshot));
  /* The locale's date and time. */
  full = g_date_time_format (vireo_snapshot_get_created (row->snapshot), "%c");
  gtk_label_set_text (GTK_LABEL (row->when), when);
  gtk_widget_set_tooltip_text (row->when, full);
}

static void
row_update (Row *row)
{
  VireoSnapshot *s = row->snapshot;
  const char *description, *broken;
  GFile *thumb;
  g_autofree char *when = NULL;
  g_autofree char *a11y = NULL;

  if (s == NULL)
    return;
  description = vireo_snapshot_get_description (s);
  broken = vireo_snapshot_get_broken_reason (s);

  gtk_label_set_text (GTK_LABEL (row->name), vireo_snapshot_get_name (s));
  gtk_widget_set_visible (row->current, vireo_snapshot_get_current (s));
  gtk_label_set_text (GTK_LABEL (row->description), description ? description : "");
  gtk_widget_set_visible (row->description, description != NULL);
  gtk_label_set_text (GTK_LABEL (row->broken), broken ? broken : "");
  gtk_widget_set_visible (row->broken, broken != NULL);
  gtk_label_set_text (GTK_LABEL (row->memory), memory_label (s));
  gtk_widget_set_tooltip_text (row->memory, memory_tooltip (s));
  row_update_when (row);

  thumb = vireo_snapshot_get_thumbnail (s);
  if (thumb == NULL || row->thumb_file == NULL || !g_file_equal (thumb, row->thumb_file))
    {
      g_autoptr(GdkTexture) texture = NULL;

      g_set_object (&row->thumb_file, thumb);
      if (thumb != NULL)
        texture = gdk_texture_new_from_file (thumb, NULL);
      gtk_picture_set_paintable (GTK_PICTURE (row->picture), GDK_PAINTABLE (texture));
      gtk_widget_set_visible (row->picture, texture != NULL);
      gtk_widget_set_visible (row->placeholder, texture == NULL);
      gtk_image_set_from_icon_name (GTK_IMAGE (row->placeholder),
                                    broken ? "dialog-warning-symbolic" : "camera-photo-symbolic");
    }

  when = format_when (vireo_snapshot_get_created (s));
  /* Translators: what a screen reader says for a snapshot: its name, when it was taken, and
   * what it holds ("Memory and disks", "Disks only") */
  a11y = g_strdup_printf (_("%s, %s, %s"), vireo_snapshot_get_name (s), when, memory_label (s));
  if (vireo_snapshot_get_current (s))
    {
      /* Translators: appended to the above for the current snapshot */
      g_autofree char *tmp = g_strdup_printf (_("%s, current"), a11y);
      g_free (a11y);
      a11y = g_steal_pointer (&tmp);
    }
  if (broken != NULL)
    {
      /* Translators: appended to the above for a damaged snapshot; %s says why */
      g_autofree char *tmp = g_strdup_printf (_("%s, damaged: %s"), a11y, broken);
      g_free (a11y);
      a11y = g_steal_pointer (&tmp);
    }
  gtk_accessible_update_property (GTK_ACCESSIBLE (row->box), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  a11y, -1);
}

static void
row_notify_cb (VireoSnapshot *snapshot, GParamSpec *pspec, Row *row)
{
  row_update (row);
}

static void
factory_setup_cb (GtkSignalListItemFactory *factory,
                  GtkListItem              *item,
                  VireoSnapshotsPage       *self)
{
  Row *row = g_new0 (Row, 1);
  GtkWidget *text, *title;

  row->page = self;
  row->expander = gtk_tree_expander_new ();
  row->box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_margin_top (row->box, 6);
  gtk_widget_set_margin_bottom (row->box, 6);
  gtk_accessible_update_property (GTK_ACCESSIBLE (row->box), GTK_ACCESSIBLE_PROPERTY_LABEL, "",
                                  -1);

  row->picture = gtk_picture_new ();
  gtk_picture_set_can_shrink (GTK_PICTURE (row->picture), TRUE);
  gtk_picture_set_content_fit (GTK_PICTURE (row->picture), GTK_CONTENT_FIT_COVER);
  gtk_widget_set_size_request (row->picture, ROW_THUMB_WIDTH, ROW_THUMB_HEIGHT);
  gtk_widget_set_valign (row->picture, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (row->picture, "machine-thumbnail");
  gtk_widget_set_visible (row->picture, FALSE);
  gtk_box_append (GTK_BOX (row->box), row->picture);

  row->placeholder = gtk_image_new_from_icon_name ("camera-photo-symbolic");
  gtk_image_set_pixel_size (GTK_IMAGE (row->placeholder), 24);
  gtk_widget_set_size_request (row->placeholder, ROW_THUMB_WIDTH, ROW_THUMB_HEIGHT);
  gtk_widget_set_valign (row->placeholder, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (row->placeholder, "machine-thumbnail");
  gtk_widget_add_css_class (row->placeholder, "dim-label");
  gtk_box_append (GTK_BOX (row->box), row->placeholder);

  text = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand (text, TRUE);
  gtk_widget_set_valign (text, GTK_ALIGN_CENTER);
  title = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  row->name = new_label ("heading", FALSE);
  gtk_box_append (GTK_BOX (title), row->name);
  /* Translators: marks the snapshot that the machine's present state comes from */
  row->current = gtk_label_new (C_("snapshot", "Current"));
  gtk_widget_add_css_class (row->current, "caption-heading");
  gtk_widget_add_css_class (row->current, "accent");
  gtk_widget_set_tooltip_text (row->current,
                               _("The machine’s present state comes from this snapshot"));
  gtk_box_append (GTK_BOX (title), row->current);
  gtk_box_append (GTK_BOX (text), title);
  row->description = new_label ("dim-label", TRUE);
  gtk_box_append (GTK_BOX (text), row->description);
  row->broken = new_label ("error", TRUE);
  gtk_box_append (GTK_BOX (text), row->broken);
  gtk_box_append (GTK_BOX (row->box), text);

  row->when = new_label ("dim-label", FALSE);
  gtk_label_set_xalign (GTK_LABEL (row->when), 1);
  gtk_widget_set_valign (row->when, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (row->box), row->when);
  row->memory = new_label ("dim-label", FALSE);
  gtk_widget_add_css_class (row->memory, "caption");
  gtk_label_set_xalign (GTK_LABEL (row->memory), 1);
  gtk_label_set_width_chars (GTK_LABEL (row->memory), 14);
  gtk_widget_set_valign (row->memory, GTK_ALIGN_CENTER);
  gtk_widget_set_margin_end (row->memory, 6);
  gtk_box_append (GTK_BOX (row->box), row->memory);

  gtk_tree_expander_set_child (GTK_TREE_EXPANDER (row->expander), row->box);
  gtk_list_item_set_child (item, row->expander);
  g_object_set_data_full (G_OBJECT (item), "vireo-row", row, (GDestroyNotify) row_free);
}

static void
factory_bind_cb (GtkSignalListItemFactory *factory,
                 GtkListItem              *item,
                 VireoSnapshotsPage       *self)
{
  Row *row = g_object_get_data (G_OBJECT (item), "vireo-row");
  GtkTreeListRow *list_row = gtk_list_item_get_item (item);

  gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (row->expander), list_row);
  row->snapshot = gtk_tree_list_row_get_item (list_row);
  row->notify_id = g_signal_connect (row->snapshot, "notify", G_CALLBACK (row_notify_cb), row);
  g_clear_object (&row->thumb_file);
  row_update (row);
  g_ptr_array_add (self->rows, row);
}

static void
factory_unbind_cb (GtkSignalListItemFactory *factory,
                   GtkListItem              *item,
                   VireoSnapshotsPage       *self)
{
  Row *row = g_object_get_data (G_OBJECT (item), "vireo-row");

  g_ptr_array_remove (self->rows, row);
  if (row->snapshot != NULL)
    g_clear_signal_handler (&row->notify_id, row->snapshot);
  g_clear_object (&row->snapshot);
  gtk_tree_expander_set_list_row (GTK_TREE_EXPANDER (row->expander), NULL);
}

static gboolean
clock_cb (gpointer user_data)
{
  VireoSnapshotsPage *self = user_data;

  for (guint i = 0; i < self->rows->len; i++)
    row_update_when (g_ptr_array_index (self->rows, i));
  return G_SOURCE_CONTINUE;
}

/* ---- the tree --------------------------------------------------------------------------- */

static GListModel *
create_children (gpointer item, gpointer user_data)
{
  GListModel *children = vireo_snapshot_get_children (item);

  /* A leaf has no expander. The tree is built again when the store changes. */
  if (g_list_model_get_n_items (children) == 0)
    return NULL;
  return g_object_ref (children);
}

static VireoSnapshot *
selected_snapshot (VireoSnapshotsPage *self)
{
  GtkTreeListRow *row;

  if (self->selection == NULL)
    return NULL;
  row = gtk_single_selection_get_selected_item (self->selection);
  if (row == NULL)
    return NULL;
  {
    g_autoptr(VireoSnapshot) s = gtk_tree_list_row_get_item (row);
    return s;  /* the store keeps it */
  }
}

static void
selection_changed_cb (VireoSnapshotsPage *self)
{
  VireoSnapshot *s = selected_snapshot (self);

  if (s != NULL)
    {
      g_free (self->selected_id);
      self->selected_id = g_strdup (vireo_snapshot_get_id (s));
    }
  update_actions (self);
}

gboolean
vireo_snapshots_page_select (VireoSnapshotsPage *self,
                             const char         *id)
{
  guint n;

  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), FALSE);

  if (self->tree == NULL || id == NULL)
    return FALSE;
  n = g_list_model_get_n_items (G_LIST_MODEL (self->tree));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GtkTreeListRow) row = g_list_model_get_item (G_LIST_MODEL (self->tree), i);
      g_autoptr(VireoSnapshot) s = gtk_tree_list_row_get_item (row);

      if (g_strcmp0 (vireo_snapshot_get_id (s), id) == 0)
        {
          gtk_single_selection_set_selected (self->selection, i);
          g_free (self->selected_id);
          self->selected_id = g_strdup (id);
          return TRUE;
        }
    }
  return FALSE;
}

static void
rebuild_tree (VireoSnapshotsPage *self)
{
  g_autofree char *keep = g_strdup (self->selected_id);
  GtkTreeListModel *tree;

  g_clear_handle_id (&self->rebuild_id, g_source_remove);
  if (self->selection != NULL)
    g_signal_handlers_disconnect_by_func (self->selection, selection_changed_cb, self);
  g_clear_object (&self->selection);
  g_clear_object (&self->tree);
  if (self->store == NULL)
    {
      gtk_list_view_set_model (self->list_view, NULL);
      update_all (self);
      return;
    }

  tree = gtk_tree_list_model_new (g_object_ref (vireo_snapshot_store_get_tree (self->store)),
                                  FALSE, TRUE, create_children, NULL, NULL);
  self->tree = tree;
  self->selection = gtk_single_selection_new (g_object_ref (G_LIST_MODEL (tree)));
  gtk_list_view_set_model (self->list_view, GTK_SELECTION_MODEL (self->selection));
  if (!vireo_snapshots_page_select (self, keep)
      && !vireo_snapshots_page_select (self, vireo_snapshot_store_get_current_id (self->store)))
    selection_changed_cb (self);
  g_signal_connect_swapped (self->selection, "notify::selected",
                            G_CALLBACK (selection_changed_cb), self);
  update_all (self);
}

static gboolean
rebuild_idle (gpointer user_data)
{
  VireoSnapshotsPage *self = user_data;

  self->rebuild_id = 0;
  rebuild_tree (self);
  return G_SOURCE_REMOVE;
}

static void
store_items_changed_cb (GListModel         *model,
                        guint               position,
                        guint               removed,
                        guint               added,
                        VireoSnapshotsPage *self)
{
  if (self->rebuild_id == 0)
    self->rebuild_id = g_idle_add (rebuild_idle, self);
}

/* ---- state ------------------------------------------------------------------------------ */

static gboolean
is_busy (VireoSnapshotsPage *self)
{
  return self->encoding
         || (self->machine != NULL
             && vireo_machine_get_snapshot_op (self->machine) != VIREO_SNAPSHOT_OP_NONE);
}

static void
update_actions (VireoSnapshotsPage *self)
{
  VireoMachine *m = self->machine;
  VireoSnapshot *s = selected_snapshot (self);
  VireoMachineState state = m ? vireo_machine_get_state (m) : VIREO_MACHINE_STATE_BROKEN;
  gboolean usable = m != NULL && state != VIREO_MACHINE_STATE_BROKEN
                    && state != VIREO_MACHINE_STATE_STARTING && !is_busy (self)
                    && self->store != NULL && vireo_snapshot_store_get_error (self->store) == NULL;
  gboolean off = state == VIREO_MACHINE_STATE_STOPPED;
  gboolean foreign = s != NULL && vireo_snapshot_get_kind (s) == VIREO_SNAPSHOT_KIND_DISK;
  gboolean editable = usable && s != NULL && !foreign;

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.take",
                                 usable && vireo_machine_can_snapshot (m, NULL));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.revert",
                                 usable && s != NULL && !vireo_snapshot_is_broken (s)
                                 && (!foreign || off));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.delete",
                                 usable && s != NULL && (!foreign || off));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.rename", editable);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.edit-description", editable);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.start-afresh",
                                 off && !is_busy (self)
                                 && vireo_machine_get_saved_state_error (m) != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.discard-saved-state",
                                 off && !is_busy (self) && vireo_machine_has_saved_state (m));
  /* Overlays change the disks: only while the machine is off. */
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "snapshots.add-overlays",
                                 usable && off && !vireo_machine_can_snapshot (m, NULL));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->banner_button),
                               self->banner == BANNER_NO_SNAPSHOTS && !off
                                 ? _("Shut down the machine to add the overlays.") : NULL);
}

static void
update_busy (VireoSnapshotsPage *self)
{
  const char *text = NULL;

  if (self->encoding)
    text = _("Taking snapshot…");
  else if (self->machine != NULL)
    switch (vireo_machine_get_snapshot_op (self->machine))
      {
      case VIREO_SNAPSHOT_OP_TAKE:
        text = _("Taking snapshot…");
        break;
      case VIREO_SNAPSHOT_OP_REVERT:
        text = _("Reverting…");
        break;
      case VIREO_SNAPSHOT_OP_DELETE:
        text = _("Deleting snapshot…");
        break;
      case VIREO_SNAPSHOT_OP_SAVE_STATE:
        text = _("Saving state…");
        break;
      case VIREO_SNAPSHOT_OP_DISCARD_STATE:
        text = _("Discarding the saved state…");
        break;
      case VIREO_SNAPSHOT_OP_NONE:
      default:
        break;
      }
  gtk_label_set_text (self->busy_label, text ? text : "");
  gtk_widget_set_visible (self->busy_box, text != NULL);
  gtk_spinner_set_spinning (self->busy_spinner, text != NULL);
  if (text != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (self->busy_box),
                                    GTK_ACCESSIBLE_PROPERTY_LABEL, text, -1);
}

static void
update_banner (VireoSnapshotsPage *self)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  const char *button = NULL;
  const char *action = NULL;
  BannerKind kind = BANNER_NONE;

  if (self->machine == NULL || vireo_machine_is_broken (self->machine))
    ;
  else if (vireo_machine_get_saved_state_error (self->machine) != NULL)
    {
      kind = BANNER_RESUME_FAILED;
      text = g_strdup (vireo_machine_get_saved_state_error (self->machine));
      button = _("_Start Afresh…");
      action = "snapshots.start-afresh";
    }
  else if (vireo_machine_has_saved_state (self->machine))
    {
      kind = BANNER_SAVED_STATE;
      text = g_strdup (_("This machine’s state was saved when it last ran: starting it resumes "
                         "it from there."));
      button = _("_Discard…");
      action = "snapshots.discard-saved-state";
    }
  else if (!vireo_machine_can_snapshot (self->machine, &error))
    {
      kind = BANNER_NO_SNAPSHOTS;
      text = g_strdup (error->message);
      button = _("Add _Overlays…");
      action = "snapshots.add-overlays";
    }

  self->banner = kind;
  gtk_label_set_text (self->banner_label, text ? text : "");
  gtk_button_set_label (self->banner_button, button ? button : "");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->banner_button), action);
  gtk_widget_set_visible (GTK_WIDGET (self->banner_button), button != NULL);
  gtk_revealer_set_reveal_child (self->banner_revealer, kind != BANNER_NONE);
}

static void
update_view (VireoSnapshotsPage *self)
{
  const char *error = self->store ? vireo_snapshot_store_get_error (self->store) : NULL;

  if (error != NULL)
    {
      adw_status_page_set_description (self->error_page, error);
      gtk_stack_set_visible_child_name (self->stack, "error");
    }
  else if (self->tree != NULL && g_list_model_get_n_items (G_LIST_MODEL (self->tree)) > 0)
    gtk_stack_set_visible_child_name (self->stack, "list");
  else
    gtk_stack_set_visible_child_name (self->stack, "empty");
}

static void
update_all (VireoSnapshotsPage *self)
{
  update_view (self);
  update_banner (self);
  update_busy (self);
  update_actions (self);
}

static void offer_start_afresh (VireoSnapshotsPage *self);

static void
machine_changed_cb (VireoSnapshotsPage *self)
{
  update_all (self);
}

static void
saved_state_error_cb (VireoSnapshotsPage *self)
{
  const char *error = vireo_machine_get_saved_state_error (self->machine);

  update_all (self);
  /* Resuming failed just now: ask at once (once per failure). */
  if (error != NULL && g_strcmp0 (error, self->resume_error_shown) != 0
      && gtk_widget_get_root (GTK_WIDGET (self)) != NULL)
    {
      g_free (self->resume_error_shown);
      self->resume_error_shown = g_strdup (error);
      offer_start_afresh (self);
    }
}

/* ---- taking ----------------------------------------------------------------------------- */

typedef struct
{
  VireoSnapshotsPage *self;
  char               *name;
  char               *description;
  char               *then_revert;  /* revert to this one when the snapshot is taken */
} TakeData;

static void
take_data_free (TakeData *data)
{
  g_clear_object (&data->self);
  g_free (data->name);
  g_free (data->description);
  g_free (data->then_revert);
  g_free (data);
}

static void start_revert (VireoSnapshotsPage *self, const char *id);

static void
take_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TakeData *data = user_data;
  VireoSnapshotsPage *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;

  id = vireo_machine_take_snapshot_finish (VIREO_MACHINE (source), result, &error);
  if (id == NULL)
    show_error (self, _("The snapshot could not be taken"), error);
  else
    {
      g_free (self->selected_id);
      self->selected_id = g_strdup (id);
      vireo_snapshots_page_select (self, id);
      if (data->then_revert != NULL)
        start_revert (self, data->then_revert);
    }
  update_all (self);
  take_data_free (data);
}

static void
take_now (VireoSnapshotsPage *self, TakeData *data, GBytes *png)
{
  if (self->machine == NULL)
    {
      take_data_free (data);
      return;
    }
  vireo_machine_take_snapshot_async (self->machine, data->name, data->description, png, NULL,
                                     take_done_cb, data);
  update_all (self);
}

typedef struct
{
  GBytes *frame;
  guint   width;
  guint   height;
} Frame;

static void
frame_free (Frame *frame)
{
  g_bytes_unref (frame->frame);
  g_free (frame);
}

static void
encode_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Frame *frame = task_data;
  GError *error = NULL;
  GBytes *png = vireo_thumbnail_encode (frame->frame, frame->width, frame->height,
                                        VIREO_THUMBNAIL_MAX_WIDTH, &error);

  if (png == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, png, (GDestroyNotify) g_bytes_unref);
}

static void
encode_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (source);
  TakeData *data = user_data;
  g_autoptr(GBytes) png = g_task_propagate_pointer (G_TASK (result), NULL);

  self->encoding = FALSE;
  take_now (self, data, png);
}

/* Takes a snapshot, with the screen as it is now for its thumbnail. */
static void
start_take (VireoSnapshotsPage *self,
            const char         *name,
            const char         *description,
            const char         *then_revert)
{
  TakeData *data = g_new0 (TakeData, 1);
  VrMachine *vr = vireo_machine_get_vr_machine (self->machine);
  VrDisplay *display = vr ? vr_machine_get_display (vr) : NULL;
  VrDisplayMode mode = { 0 };
  GBytes *bytes = display ? vr_display_snapshot (display, &mode) : NULL;

  data->self = g_object_ref (self);
  data->name = g_strdup (name);
  data->description = g_strdup (description);
  data->then_revert = g_strdup (then_revert);

  if (bytes != NULL && mode.width > 0 && mode.height > 0)
    {
      g_autoptr(GTask) task = g_task_new (self, NULL, encode_done_cb, data);
      Frame *frame = g_new0 (Frame, 1);

      frame->frame = bytes;
      frame->width = mode.width;
      frame->height = mode.height;
      g_task_set_source_tag (task, start_take);
      g_task_set_task_data (task, frame, (GDestroyNotify) frame_free);
      self->encoding = TRUE;
      update_all (self);
      g_task_run_in_thread (task, encode_thread);
      return;
    }
  g_clear_pointer (&bytes, g_bytes_unref);
  take_now (self, data, NULL);
}

/* "Snapshot N", the first N not taken. */
static char *
default_name (VireoSnapshotsPage *self)
{
  guint n = self->store ? g_list_model_get_n_items (G_LIST_MODEL (self->store)) : 0;

  for (guint i = n + 1;; i++)
    {
      /* Translators: the name a new snapshot gets, %u counts up */
      g_autofree char *name = g_strdup_printf (_("Snapshot %u"), i);
      gboolean taken = FALSE;

      for (guint j = 0; j < n && !taken; j++)
        {
          g_autoptr(VireoSnapshot) s = g_list_model_get_item (G_LIST_MODEL (self->store), j);

          taken = g_strcmp0 (vireo_snapshot_get_name (s), name) == 0;
        }
      if (!taken)
        return g_steal_pointer (&name);
    }
}

/* A boxed list with a name and a description row, for the take and edit dialogs. */
static GtkWidget *
name_fields (const char *name, const char *description, GtkWidget **name_row,
             GtkWidget **description_row)
{
  GtkWidget *list = gtk_list_box_new ();

  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  *name_row = adw_entry_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (*name_row), _("Name"));
  gtk_editable_set_text (GTK_EDITABLE (*name_row), name ? name : "");
  gtk_list_box_append (GTK_LIST_BOX (list), *name_row);
  *description_row = adw_entry_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (*description_row), _("Description"));
  gtk_editable_set_text (GTK_EDITABLE (*description_row), description ? description : "");
  gtk_list_box_append (GTK_LIST_BOX (list), *description_row);
  return list;
}

static void
name_changed_cb (GtkEditable *name_row, AdwMessageDialog *dialog)
{
  const char *response = g_object_get_data (G_OBJECT (dialog), "vireo-ok");

  adw_message_dialog_set_response_enabled (dialog, response,
                                           vireo_snapshot_name_is_valid (
                                             gtk_editable_get_text (name_row), NULL));
}

static void
entry_activated_cb (AdwEntryRow *row, AdwMessageDialog *dialog)
{
  const char *response = g_object_get_data (G_OBJECT (dialog), "vireo-ok");

  if (adw_message_dialog_get_response_enabled (dialog, response))
    {
      adw_message_dialog_response (dialog, response);
      gtk_window_close (GTK_WINDOW (dialog));
    }
}

static void
take_response_cb (AdwMessageDialog   *dialog,
                  const char         *response,
                  VireoSnapshotsPage *self)
{
  GtkEditable *name = g_object_get_data (G_OBJECT (dialog), "vireo-name");
  GtkEditable *description = g_object_get_data (G_OBJECT (dialog), "vireo-description");

  if (g_strcmp0 (response, "take") != 0 || self->machine == NULL)
    return;
  start_take (self, gtk_editable_get_text (name), gtk_editable_get_text (description), NULL);
}

/* The dialog's name and description rows, wired to its "ok" response. */
static void
add_name_fields (AdwMessageDialog *dialog, const char *ok, const char *name,
                 const char *description)
{
  GtkWidget *name_row, *description_row;
  GtkWidget *list = name_fields (name, description, &name_row, &description_row);

  g_object_set_data_full (G_OBJECT (dialog), "vireo-ok", g_strdup (ok), g_free);
  g_object_set_data (G_OBJECT (dialog), "vireo-name", name_row);
  g_object_set_data (G_OBJECT (dialog), "vireo-description", description_row);
  g_signal_connect (name_row, "changed", G_CALLBACK (name_changed_cb), dialog);
  g_signal_connect (name_row, "entry-activated", G_CALLBACK (entry_activated_cb), dialog);
  g_signal_connect (description_row, "entry-activated", G_CALLBACK (entry_activated_cb), dialog);
  adw_message_dialog_set_extra_child (dialog, list);
}

static void
take_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);
  g_autofree char *name = default_name (self);
  gboolean live = vireo_machine_get_vr_machine (self->machine) != NULL;
  AdwMessageDialog *dialog;

  dialog = new_dialog (self, _("Take Snapshot"),
                       live ? _("The machine’s memory, devices and disks are kept: going back "
                                "to this snapshot resumes the machine exactly where it is now. "
                                "A picture of its screen is kept with it.")
                            : _("The machine is off, so the snapshot keeps its disks only: "
                                "going back to it starts the machine afresh from them."));
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "take", _("_Take Snapshot"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "take", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "take");
  adw_message_dialog_set_close_response (dialog, "cancel");
  add_name_fields (dialog, "take", name, NULL);
  g_signal_connect_object (dialog, "response", G_CALLBACK (take_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_widget_grab_focus (g_object_get_data (G_OBJECT (dialog), "vireo-name"));
}

/* ---- reverting -------------------------------------------------------------------------- */

static void
revert_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(VireoSnapshotsPage) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_revert_snapshot_finish (VIREO_MACHINE (source), result, &error))
    show_error (self, _("The machine could not go back to the snapshot"), error);
  update_all (self);
}

static void
start_revert (VireoSnapshotsPage *self, const char *id)
{
  if (self->machine == NULL)
    return;
  vireo_machine_revert_snapshot_async (self->machine, id, NULL, revert_done_cb,
                                       g_object_ref (self));
  update_all (self);
}

static void
revert_response_cb (AdwMessageDialog   *dialog,
                    const char         *response,
                    VireoSnapshotsPage *self)
{
  const char *id = g_object_get_data (G_OBJECT (dialog), "vireo-id");
  const char *name = g_object_get_data (G_OBJECT (dialog), "vireo-snapshot-name");

  if (g_strcmp0 (response, "revert") == 0)
    start_revert (self, id);
  else if (g_strcmp0 (response, "snapshot-first") == 0)
    {
      /* Translators: the name of the snapshot taken just before going back to another one */
      g_autofree char *before = g_strdup_printf (_("Before reverting to “%s”"), name);

      start_take (self, before, NULL, id);
    }
}

static void
revert_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);
  VireoSnapshot *s = selected_snapshot (self);
  g_autofree char *heading = NULL;
  g_autofree char *body = NULL;
  gboolean running;
  const char *then;
  AdwMessageDialog *dialog;

  if (s == NULL)
    return;
  running = vireo_machine_get_vr_machine (self->machine) != NULL;
  if (vireo_snapshot_get_memory (s))
    then = _("The machine then runs on from the moment the snapshot was taken.");
  else if (running)
    then = _("This snapshot keeps the disks only: the machine then starts afresh from them.");
  else
    then = _("This snapshot keeps the disks only: the machine stays off.");

  /* Translators: %s is a snapshot's name */
  heading = g_strdup_printf (_("Revert to “%s”?"), vireo_snapshot_get_name (s));
  body = g_strdup_printf ("%s %s",
                          _("The current state will be lost: everything that changed since "
                            "this snapshot was taken, in the machine’s memory and on its disks. "
                            "To keep it, take a snapshot first."),
                          then);
  dialog = new_dialog (self, heading, body);
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "snapshot-first", _("Take Snapshot _First"),
                                    "revert", _("_Revert"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "revert", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_response_enabled (dialog, "snapshot-first",
                                           gtk_widget_is_sensitive (widget)
                                           && vireo_machine_can_snapshot (self->machine, NULL));
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_object_set_data_full (G_OBJECT (dialog), "vireo-id", g_strdup (vireo_snapshot_get_id (s)),
                          g_free);
  g_object_set_data_full (G_OBJECT (dialog), "vireo-snapshot-name",
                          g_strdup (vireo_snapshot_get_name (s)), g_free);
  g_signal_connect_object (dialog, "response", G_CALLBACK (revert_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
list_activate_cb (VireoSnapshotsPage *self, guint position)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "snapshots.revert", NULL);
}

/* ---- deleting --------------------------------------------------------------------------- */

static void
delete_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(VireoSnapshotsPage) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_delete_snapshot_finish (VIREO_MACHINE (source), result, &error))
    show_error (self, _("The snapshot could not be deleted"), error);
  update_all (self);
}

static void
delete_response_cb (AdwMessageDialog   *dialog,
                    const char         *response,
                    VireoSnapshotsPage *self)
{
  const char *id = g_object_get_data (G_OBJECT (dialog), "vireo-id");

  if (g_strcmp0 (response, "delete") != 0 || self->machine == NULL)
    return;
  /* The selection moves to its parent (or the current one) once it is gone. */
  if (g_strcmp0 (self->selected_id, id) == 0)
    {
      VireoSnapshot *s = vireo_snapshot_store_lookup (self->store, id);

      g_free (self->selected_id);
      self->selected_id = g_strdup (s ? vireo_snapshot_get_parent_id (s) : NULL);
    }
  vireo_machine_delete_snapshot_async (self->machine, id, NULL, delete_done_cb,
                                       g_object_ref (self));
  update_all (self);
}

static void
delete_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);
  VireoSnapshot *s = selected_snapshot (self);
  guint children;
  g_autofree char *heading = NULL;
  g_autoptr(GString) body = NULL;
  AdwMessageDialog *dialog;

  if (s == NULL)
    return;
  children = g_list_model_get_n_items (vireo_snapshot_get_children (s));
  /* Translators: %s is a snapshot's name */
  heading = g_strdup_printf (C_("snapshot", "Delete “%s”?"), vireo_snapshot_get_name (s));
  body = g_string_new (_("The snapshot is deleted for good, with the memory and disk state it "
                         "keeps. The machine as it is now does not change."));
  if (children > 0)
    {
      g_string_append_c (body, ' ');
      g_string_append_printf (body,
                              ngettext ("The %u snapshot taken after it stays, and moves up "
                                        "to its parent.",
                                        "The %u snapshots taken after it stay, and move up to "
                                        "its parent.", children),
                              children);
    }
  dialog = new_dialog (self, heading, body->str);
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "delete", _("_Delete"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "delete", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_object_set_data_full (G_OBJECT (dialog), "vireo-id", g_strdup (vireo_snapshot_get_id (s)),
                          g_free);
  g_signal_connect_object (dialog, "response", G_CALLBACK (delete_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- rename and describe ---------------------------------------------------------------- */

static void
edit_response_cb (AdwMessageDialog   *dialog,
                  const char         *response,
                  VireoSnapshotsPage *self)
{
  const char *id = g_object_get_data (G_OBJECT (dialog), "vireo-id");
  GtkEditable *name = g_object_get_data (G_OBJECT (dialog), "vireo-name");
  GtkEditable *description = g_object_get_data (G_OBJECT (dialog), "vireo-description");
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (response, "save") != 0 || self->machine == NULL)
    return;
  if (!vireo_machine_update_snapshot (self->machine, id, gtk_editable_get_text (name),
                                      gtk_editable_get_text (description), &error))
    show_error (self, _("The snapshot could not be changed"), error);
}

static void
edit (VireoSnapshotsPage *self, gboolean description)
{
  VireoSnapshot *s = selected_snapshot (self);
  AdwMessageDialog *dialog;

  if (s == NULL)
    return;
  dialog = new_dialog (self, description ? _("Edit Description") : _("Rename Snapshot"), NULL);
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "save", _("_Save"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "save", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "save");
  adw_message_dialog_set_close_response (dialog, "cancel");
  add_name_fields (dialog, "save", vireo_snapshot_get_name (s),
                   vireo_snapshot_get_description (s));
  g_object_set_data_full (G_OBJECT (dialog), "vireo-id", g_strdup (vireo_snapshot_get_id (s)),
                          g_free);
  g_signal_connect_object (dialog, "response", G_CALLBACK (edit_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_widget_grab_focus (g_object_get_data (G_OBJECT (dialog),
                                            description ? "vireo-description" : "vireo-name"));
}

static void
rename_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  edit (VIREO_SNAPSHOTS_PAGE (widget), FALSE);
}

static void
edit_description_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  edit (VIREO_SNAPSHOTS_PAGE (widget), TRUE);
}

/* ---- the saved state -------------------------------------------------------------------- */

static void
fresh_start_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(VireoSnapshotsPage) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_start_finish (VIREO_MACHINE (source), result, &error))
    show_error (self, _("The machine did not start"), error);
}

static void
discard_finish (VireoSnapshotsPage *self, GObject *source, GAsyncResult *result,
                gboolean then_start)
{
  VireoMachine *machine = VIREO_MACHINE (source);
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_discard_saved_state_finish (machine, result, &error))
    show_error (self, _("The saved state could not be discarded"), error);
  else if (then_start)
    vireo_machine_start_async (machine, NULL, fresh_start_done_cb, g_object_ref (self));
  update_all (self);
}

static void
discard_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(VireoSnapshotsPage) self = user_data;

  discard_finish (self, source, result, FALSE);
}

static void
discard_then_start_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(VireoSnapshotsPage) self = user_data;

  discard_finish (self, source, result, TRUE);
}

static void
discard_saved_state (VireoSnapshotsPage *self, gboolean then_start)
{
  if (self->machine == NULL)
    return;
  vireo_machine_discard_saved_state_async (self->machine, NULL,
                                           then_start ? discard_then_start_cb : discard_done_cb,
                                           g_object_ref (self));
  update_all (self);
}

static void
discard_response_cb (AdwMessageDialog   *dialog,
                     const char         *response,
                     VireoSnapshotsPage *self)
{
  if (g_strcmp0 (response, "discard") == 0)
    discard_saved_state (self, FALSE);
  else if (g_strcmp0 (response, "start-afresh") == 0)
    discard_saved_state (self, TRUE);
}

static void
offer_start_afresh (VireoSnapshotsPage *self)
{
  g_autofree char *heading = NULL;
  g_autofree char *body = NULL;
  AdwMessageDialog *dialog;

  /* Translators: %s is a machine's name */
  heading = g_strdup_printf (_("Cannot Resume “%s”"), vireo_machine_get_name (self->machine));
  body = g_strdup_printf ("%s\n\n%s", vireo_machine_get_saved_state_error (self->machine),
                          _("You can start the machine afresh instead. Its saved state is then "
                            "deleted: whatever was open in it is lost. Or keep the saved state "
                            "and try again later."));
  dialog = new_dialog (self, heading, body);
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Keep Saved State"),
                                    "start-afresh", _("_Start Afresh"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "start-afresh", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (discard_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
start_afresh_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);

  if (self->machine != NULL && vireo_machine_get_saved_state_error (self->machine) != NULL)
    offer_start_afresh (self);
}

static void
discard_saved_state_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);
  g_autofree char *body = NULL;
  AdwMessageDialog *dialog;

  if (self->machine == NULL || !vireo_machine_has_saved_state (self->machine))
    return;
  body = g_strdup_printf (_("“%s” then starts afresh the next time: whatever was open in it "
                            "is lost."),
                          vireo_machine_get_name (self->machine));
  dialog = new_dialog (self, _("Discard the Saved State?"), body);
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "discard", _("_Discard"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "discard", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (discard_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
overlays_response_cb (AdwMessageDialog   *dialog,
                      const char         *response,
                      VireoSnapshotsPage *self)
{
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (response, "add") != 0 || self->machine == NULL)
    return;
  if (!vireo_machine_add_disk_overlays (self->machine, &error))
    show_error (self, _("The overlays cannot be added"), error);
  update_all (self);
}

static void
add_overlays_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (widget);
  AdwMessageDialog *dialog;

  if (self->machine == NULL)
    return;
  dialog = new_dialog (self, _("Add qcow2 Overlays?"),
                       _("Snapshots need qcow2 disks. Vireo puts a new qcow2 overlay on each raw "
                         "disk of this machine: from now on the machine writes its changes to "
                         "the overlay, and the raw image stays as it is now. Do not change the "
                         "raw image elsewhere afterwards, or the overlay no longer matches it."));
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "add", _("_Add Overlays"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "add", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "add");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (overlays_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- public ----------------------------------------------------------------------------- */

GtkWidget *
vireo_snapshots_page_new (void)
{
  return g_object_new (VIREO_TYPE_SNAPSHOTS_PAGE, NULL);
}

VireoMachine *
vireo_snapshots_page_get_machine (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);
  return self->machine;
}

void
vireo_snapshots_page_set_machine (VireoSnapshotsPage *self,
                                  VireoMachine       *machine)
{
  g_return_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (self->machine == machine)
    return;
  if (self->machine != NULL)
    g_signal_handlers_disconnect_by_data (self->machine, self);
  if (self->store != NULL)
    g_signal_handlers_disconnect_by_data (self->store, self);
  g_clear_object (&self->store);
  g_set_object (&self->machine, machine);
  g_clear_pointer (&self->resume_error_shown, g_free);
  g_clear_pointer (&self->selected_id, g_free);

  if (machine != NULL && !vireo_machine_is_broken (machine))
    {
      self->store = g_object_ref (vireo_machine_get_snapshot_store (machine));
      g_signal_connect (self->store, "items-changed", G_CALLBACK (store_items_changed_cb), self);
    }
  if (machine != NULL)
    {
      g_signal_connect_swapped (machine, "notify::state", G_CALLBACK (machine_changed_cb), self);
      g_signal_connect_swapped (machine, "notify::snapshot-op",
                                G_CALLBACK (machine_changed_cb), self);
      g_signal_connect_swapped (machine, "notify::has-saved-state",
                                G_CALLBACK (machine_changed_cb), self);
      g_signal_connect_swapped (machine, "notify::config", G_CALLBACK (machine_changed_cb), self);
      g_signal_connect_swapped (machine, "notify::vr-machine",
                                G_CALLBACK (machine_changed_cb), self);
      g_signal_connect_swapped (machine, "notify::saved-state-error",
                                G_CALLBACK (saved_state_error_cb), self);
    }
  rebuild_tree (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

const char *
vireo_snapshots_page_get_view (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);
  return gtk_stack_get_visible_child_name (self->stack);
}

guint
vireo_snapshots_page_get_n_rows (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), 0);
  return self->tree ? g_list_model_get_n_items (G_LIST_MODEL (self->tree)) : 0;
}

VireoSnapshot *
vireo_snapshots_page_get_row (VireoSnapshotsPage *self,
                              guint               position)
{
  g_autoptr(GtkTreeListRow) row = NULL;

  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);

  if (self->tree == NULL)
    return NULL;
  row = g_list_model_get_item (G_LIST_MODEL (self->tree), position);
  return row ? gtk_tree_list_row_get_item (row) : NULL;
}

char *
vireo_snapshots_page_dup_row_text (VireoSnapshotsPage *self,
                                   guint               position)
{
  g_autoptr(VireoSnapshot) s = vireo_snapshots_page_get_row (self, position);

  for (guint i = 0; s != NULL && i < self->rows->len; i++)
    {
      Row *row = g_ptr_array_index (self->rows, i);

      if (row->snapshot != s)
        continue;
      return g_strjoin (" | ", gtk_label_get_text (GTK_LABEL (row->name)),
                        gtk_widget_get_visible (row->current)
                          ? gtk_label_get_text (GTK_LABEL (row->current)) : "",
                        gtk_label_get_text (GTK_LABEL (row->when)),
                        gtk_label_get_text (GTK_LABEL (row->memory)),
                        gtk_label_get_text (GTK_LABEL (row->description)),
                        gtk_label_get_text (GTK_LABEL (row->broken)), NULL);
    }
  return NULL;
}

const char *
vireo_snapshots_page_get_selected_id (VireoSnapshotsPage *self)
{
  VireoSnapshot *s;

  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);
  s = selected_snapshot (self);
  return s ? vireo_snapshot_get_id (s) : NULL;
}

gboolean
vireo_snapshots_page_get_busy (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), FALSE);
  return is_busy (self);
}

const char *
vireo_snapshots_page_get_banner (VireoSnapshotsPage *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOTS_PAGE (self), NULL);
  return self->banner == BANNER_NONE ? NULL : gtk_label_get_text (self->banner_label);
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
vireo_snapshots_page_dispose (GObject *object)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  g_clear_handle_id (&self->clock_id, g_source_remove);
  g_clear_handle_id (&self->rebuild_id, g_source_remove);
  if (self->dialog != NULL)
    gtk_window_destroy (self->dialog);
  g_clear_weak_pointer (&self->dialog);
  if (self->machine != NULL)
    g_signal_handlers_disconnect_by_data (self->machine, self);
  if (self->store != NULL)
    g_signal_handlers_disconnect_by_data (self->store, self);
  if (self->selection != NULL)
    g_signal_handlers_disconnect_by_func (self->selection, selection_changed_cb, self);
  if (self->list_view != NULL)
    gtk_list_view_set_model (self->list_view, NULL);
  g_clear_object (&self->selection);
  g_clear_object (&self->tree);
  g_clear_object (&self->store);
  g_clear_object (&self->machine);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_SNAPSHOTS_PAGE);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_snapshots_page_parent_class)->dispose (object);
}

static void
vireo_snapshots_page_finalize (GObject *object)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  g_free (self->selected_id);
  g_free (self->resume_error_shown);
  g_ptr_array_unref (self->rows);

  G_OBJECT_CLASS (vireo_snapshots_page_parent_class)->finalize (object);
}

static void
vireo_snapshots_page_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

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
vireo_snapshots_page_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  VireoSnapshotsPage *self = VIREO_SNAPSHOTS_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_snapshots_page_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_snapshots_page_class_init (VireoSnapshotsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_snapshots_page_dispose;
  object_class->finalize = vireo_snapshots_page_finalize;
  object_class->get_property = vireo_snapshots_page_get_property;
  object_class->set_property = vireo_snapshots_page_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-snapshots-page.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, banner_revealer);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, banner_label);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, banner_button);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, busy_box);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, busy_spinner);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, busy_label);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, stack);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, list_view);
  gtk_widget_class_bind_template_child (widget_class, VireoSnapshotsPage, error_page);
  gtk_widget_class_bind_template_callback (widget_class, list_activate_cb);

  gtk_widget_class_install_action (widget_class, "snapshots.take", NULL, take_action);
  gtk_widget_class_install_action (widget_class, "snapshots.add-overlays", NULL,
                                   add_overlays_action);
  gtk_widget_class_install_action (widget_class, "snapshots.revert", NULL, revert_action);
  gtk_widget_class_install_action (widget_class, "snapshots.delete", NULL, delete_action);
  gtk_widget_class_install_action (widget_class, "snapshots.rename", NULL, rename_action);
  gtk_widget_class_install_action (widget_class, "snapshots.edit-description", NULL,
                                   edit_description_action);
  gtk_widget_class_install_action (widget_class, "snapshots.start-afresh", NULL,
                                   start_afresh_action);
  gtk_widget_class_install_action (widget_class, "snapshots.discard-saved-state", NULL,
                                   discard_saved_state_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "snapshots.delete",
                                       NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Delete, 0, "snapshots.delete",
                                       NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F2, 0, "snapshots.rename", NULL);

  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
vireo_snapshots_page_init (VireoSnapshotsPage *self)
{
  GtkListItemFactory *factory;

  self->rows = g_ptr_array_new ();
  gtk_widget_init_template (GTK_WIDGET (self));

  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (factory_setup_cb), self);
  g_signal_connect (factory, "bind", G_CALLBACK (factory_bind_cb), self);
  g_signal_connect (factory, "unbind", G_CALLBACK (factory_unbind_cb), self);
  gtk_list_view_set_factory (self->list_view, factory);
  g_object_unref (factory);

  self->clock_id = g_timeout_add_seconds (CLOCK_INTERVAL_S, clock_cb, self);
  update_all (self);
}
