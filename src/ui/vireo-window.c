/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-window"

#include "config.h"

#include "vireo-window.h"

#include <glib/gi18n.h>
#include <string.h>

#include "vireo-machine-row.h"
#include "vireo-quit-dialog.h"

#include "vireo-new-machine-dialog.h"

/* Start-up (see "the first frame" below). */
#define ROW_HEIGHT_MIN      64     /* logical pixels: a machine row is taller than this */
#define ROWS_PER_STEP       16     /* rows added to the list per idle step afterwards */
#define WIDE_ENOUGH         900    /* no page of a machine view is wider than this minus the
                                    * sidebar, so the leaflet cannot fold on its account */
#define STARTUP_LIMIT_S     5      /* the latest end of the start-up phase */

struct _VireoWindow
{
  AdwApplicationWindow  parent_instance;

  VireoLibrary         *library;
  GSettings            *settings;
  GtkCustomFilter      *filter;
  GtkFilterListModel   *filter_model;
  GtkSingleSelection   *selection;
  GHashTable           *views;          /* uuid → VireoMachineView (owned by view_stack) */
  VireoMachineView     *current;
  GSignalGroup         *machine_signals; /* the selected machine */
  char                 *search;          /* casefolded, or NULL */
  gboolean              restored_selection;
  gboolean              close_confirmed;
  gboolean              asking;
  gboolean              bench_painted;   /* bench/app: the first frame was reported */

  /* start-up: until the first frame with the library has been painted */
  GtkSliceListModel    *slice;           /* the list's first rows, then all of them */
  gboolean              starting;
  gulong                after_paint_id;
  guint                 startup_timeout_id;
  guint                 grow_id;         /* tick callback: the put-off work */

  AdwToastOverlay      *toast_overlay;
  GtkStack             *main_stack;
  AdwLeaflet           *leaflet;
  GtkWidget            *sidebar;
  GtkWidget            *sidebar_separator;
  GtkWidget            *content;
  AdwHeaderBar         *content_header;
  AdwViewSwitcherTitle *switcher_title;
  AdwViewSwitcherBar   *switcher_bar;
  GtkButton            *pause_button;
  GtkMenuButton        *send_key_button;
  GtkToggleButton      *record_button;
  GtkSearchBar         *search_bar;
  GtkSearchEntry       *search_entry;
  GtkStack             *list_stack;
  GtkListView          *machine_list;
  GtkStack             *view_stack;
};

G_DEFINE_FINAL_TYPE (VireoWindow, vireo_window, ADW_TYPE_APPLICATION_WINDOW)

enum
{
  PROP_0,
  PROP_RECORDING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void update_actions (VireoWindow *self);

/* ---- the first frame ---------------------------------------------------------------------
 * What the first frame needs, and nothing more (the rest right after it):
 *  - GTK 4.8's GtkListView makes, binds and measures a row for up to 200 items as soon as
 *    its model has them, on screen or not. The list's model is therefore a slice of the
 *    library, as long as the tallest screen can show; the other rows are added in small
 *    steps at low priority once the first frame with the library is on screen.
 *  - An AdwViewStack is homogeneous: it measures every page, so the selected machine's
 *    Details form, terminal (font loading), snapshots and plots would all be laid out for a
 *    frame that shows its Display page. For the first frame the stack measures only the
 *    page it shows (when the window is so wide that the pages' minimum widths cannot change
 *    whether the leaflet folds); right after it, it is homogeneous again, as always. */

static int
first_frame_height (VireoWindow *self)
{
  GListModel *monitors = gdk_display_get_monitors (gtk_widget_get_display (GTK_WIDGET (self)));
  int width = 0, height = 0;

  /* (GTK 4.8 wants both pointers.) */
  gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  /* Maximized, fullscreen or resized before the first frame: at most a monitor's height. */
  for (guint i = 0; i < g_list_model_get_n_items (monitors); i++)
    {
      g_autoptr(GdkMonitor) monitor = g_list_model_get_item (monitors, i);
      GdkRectangle geometry;

      gdk_monitor_get_geometry (monitor, &geometry);
      height = MAX (height, geometry.height);
    }
  return height;
}

static gboolean
first_frame_is_wide (VireoWindow *self)
{
  int width = 0, height = 0;

  gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  return width >= WIDE_ENOUGH
         || (self->settings != NULL && g_settings_get_boolean (self->settings, "window-maximized"));
}

static void
set_view_homogeneous (VireoMachineView *view,
                      gboolean          homogeneous)
{
  AdwViewStack *stack = vireo_machine_view_get_stack (view);

  adw_view_stack_set_hhomogeneous (stack, homogeneous);
  adw_view_stack_set_vhomogeneous (stack, homogeneous);
}

/* One step of adding the list's remaining rows; TRUE when they are all there. */
static gboolean
grow_list (VireoWindow *self)
{
  guint size = gtk_slice_list_model_get_size (self->slice);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->filter_model));

  if (size == G_MAXUINT)
    return TRUE;
  if (size >= n)
    {
      gtk_slice_list_model_set_size (self->slice, G_MAXUINT);
      return TRUE;
    }
  gtk_slice_list_model_set_size (self->slice, size + ROWS_PER_STEP);
  return FALSE;
}

/* The work put off, from the frame clock's update phase: laid out and drawn in the same
 * frame, so that the window is never left waiting with stale contents between two frames. */
static gboolean
startup_tick (GtkWidget     *widget,
              GdkFrameClock *clock,
              gpointer       user_data)
{
  VireoWindow *self = VIREO_WINDOW (widget);

  if (self->starting)
    {
      GHashTableIter iter;
      gpointer view;

      self->starting = FALSE;
      g_hash_table_iter_init (&iter, self->views);
      while (g_hash_table_iter_next (&iter, NULL, &view))
        set_view_homogeneous (view, TRUE);
      return G_SOURCE_CONTINUE;   /* the rows in the next frames */
    }
  if (!grow_list (self))
    return G_SOURCE_CONTINUE;
  self->grow_id = 0;
  return G_SOURCE_REMOVE;
}

static void
end_startup (VireoWindow *self)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (self));

  g_clear_handle_id (&self->startup_timeout_id, g_source_remove);
  if (self->after_paint_id != 0 && clock != NULL)
    g_signal_handler_disconnect (clock, self->after_paint_id);
  self->after_paint_id = 0;
  if (self->starting && self->grow_id == 0)
    self->grow_id = gtk_widget_add_tick_callback (GTK_WIDGET (self), startup_tick, NULL, NULL);
}

static gboolean
startup_timeout_cb (gpointer user_data)
{
  VireoWindow *self = user_data;

  /* The library never loaded (an error was shown): stop waiting for it. */
  self->startup_timeout_id = 0;
  end_startup (self);
  return G_SOURCE_REMOVE;
}

static void
startup_after_paint_cb (GdkFrameClock *clock,
                        VireoWindow   *self)
{
  if (self->startup_timeout_id == 0)
    self->startup_timeout_id = g_timeout_add_seconds (STARTUP_LIMIT_S, startup_timeout_cb, self);
  if (vireo_library_is_loaded (self->library))
    end_startup (self);
}

static void
startup_realize_cb (VireoWindow *self)
{
  if (self->starting && self->after_paint_id == 0)
    self->after_paint_id = g_signal_connect (gtk_widget_get_frame_clock (GTK_WIDGET (self)),
                                             "after-paint",
                                             G_CALLBACK (startup_after_paint_cb), self);
}

/* The shortcuts window, built the first time it is asked for (Ctrl+?, the main menu). */
static void
show_help_overlay (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       user_data)
{
  GtkApplicationWindow *window = user_data;
  GtkShortcutsWindow *overlay = gtk_application_window_get_help_overlay (window);

  if (overlay == NULL)
    {
      g_autoptr(GtkBuilder) builder = gtk_builder_new_from_resource ("/org/vireo/Vireo/help-overlay.ui");

      overlay = GTK_SHORTCUTS_WINDOW (gtk_builder_get_object (builder, "help_overlay"));
      gtk_application_window_set_help_overlay (window, overlay);
    }
  gtk_window_present (GTK_WINDOW (overlay));
}

/* ---- messages --------------------------------------------------------------------------- */

void
vireo_window_show_toast (VireoWindow *self,
                         const char  *text)
{
  AdwToast *toast;

  g_return_if_fail (VIREO_IS_WINDOW (self));

  toast = adw_toast_new (text);
  adw_toast_set_timeout (toast, 5);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

void
vireo_window_show_error (VireoWindow  *self,
                         const char   *what,
                         const GError *error)
{
  g_autofree char *text = NULL;

  g_return_if_fail (VIREO_IS_WINDOW (self));

  /* Translators: an error toast: what failed, then why (the why says what to do) */
  text = g_strdup_printf (_("%s: %s"), what, error ? error->message : _("unknown error"));
  g_message ("%s", text);
  vireo_window_show_toast (self, text);
}

void
vireo_widget_show_toast (GtkWidget  *widget,
                         const char *text)
{
  GtkRoot *root = gtk_widget_get_root (widget);

  if (VIREO_IS_WINDOW (root))
    vireo_window_show_toast (VIREO_WINDOW (root), text);
  else
    g_warning ("%s", text);
}

void
vireo_widget_show_error (GtkWidget    *widget,
                         const char   *what,
                         const GError *error)
{
  GtkRoot *root = gtk_widget_get_root (widget);

  if (VIREO_IS_WINDOW (root))
    vireo_window_show_error (VIREO_WINDOW (root), what, error);
  else
    g_warning ("%s: %s", what, error ? error->message : "?");
}

/* ---- the selected machine --------------------------------------------------------------- */

VireoMachine *
vireo_window_get_selected_machine (VireoWindow *self)
{
  g_return_val_if_fail (VIREO_IS_WINDOW (self), NULL);
  return self->current ? vireo_machine_view_get_machine (self->current) : NULL;
}

VireoMachineView *
vireo_window_get_machine_view (VireoWindow *self)
{
  g_return_val_if_fail (VIREO_IS_WINDOW (self), NULL);
  return self->current;
}

const char *
vireo_window_get_page (VireoWindow *self)
{
  g_return_val_if_fail (VIREO_IS_WINDOW (self), NULL);
  return gtk_stack_get_visible_child_name (self->main_stack);
}

static void
machine_error_cb (VireoMachine *machine,
                  const GError *error,
                  VireoWindow  *self)
{
  g_autofree char *what = g_strdup_printf (_("“%s” stopped"), vireo_machine_get_name (machine));

  vireo_window_show_error (self, what, error);
}

static void
show_machine (VireoWindow *self, VireoMachine *machine)
{
  VireoMachineView *view = NULL;

  if (machine != NULL)
    {
      view = g_hash_table_lookup (self->views, vireo_machine_get_uuid (machine));
      if (view == NULL)
        {
          view = VIREO_MACHINE_VIEW (vireo_machine_view_new (machine, self->library));
          if (self->starting && first_frame_is_wide (self))
            set_view_homogeneous (view, FALSE);
          gtk_stack_add_named (self->view_stack, GTK_WIDGET (view),
                               vireo_machine_get_uuid (machine));
          g_hash_table_insert (self->views, g_strdup (vireo_machine_get_uuid (machine)), view);
        }
    }
  if (view == self->current)
    return;
  self->current = view;
  g_signal_group_set_target (self->machine_signals, machine);

  if (view != NULL)
    {
      VireoDisplay *display = vireo_machine_view_get_display (view);

      gtk_stack_set_visible_child (self->view_stack, GTK_WIDGET (view));
      adw_view_switcher_title_set_stack (self->switcher_title,
                                         vireo_machine_view_get_stack (view));
      adw_view_switcher_bar_set_stack (self->switcher_bar, vireo_machine_view_get_stack (view));
      adw_view_switcher_title_set_title (self->switcher_title, vireo_machine_get_name (machine));
      gtk_widget_insert_action_group (GTK_WIDGET (self), "display",
                                      vireo_display_get_action_group (display));
    }
  else
    {
      gtk_stack_set_visible_child_name (self->view_stack, "none");
      adw_view_switcher_title_set_stack (self->switcher_title, NULL);
      adw_view_switcher_bar_set_stack (self->switcher_bar, NULL);
      adw_view_switcher_title_set_title (self->switcher_title, _("Vireo"));
      gtk_widget_insert_action_group (GTK_WIDGET (self), "display", NULL);
    }
  update_actions (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
}

static void
selection_changed_cb (VireoWindow *self)
{
  VireoMachine *machine = gtk_single_selection_get_selected_item (self->selection);

  show_machine (self, machine);
}

void
vireo_window_select_machine (VireoWindow  *self,
                             VireoMachine *machine)
{
  guint n;

  g_return_if_fail (VIREO_IS_WINDOW (self));
  g_return_if_fail (VIREO_IS_MACHINE (machine));

  /* Its row may not be in the list yet (start-up): put the rows up to it there. */
  n = g_list_model_get_n_items (G_LIST_MODEL (self->filter_model));
  for (guint i = gtk_slice_list_model_get_size (self->slice); i < n; i++)
    {
      g_autoptr(VireoMachine) item = g_list_model_get_item (G_LIST_MODEL (self->filter_model), i);

      if (item == machine)
        {
          gtk_slice_list_model_set_size (self->slice, i + 1);
          break;
        }
    }

  n = g_list_model_get_n_items (G_LIST_MODEL (self->selection));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) item = g_list_model_get_item (G_LIST_MODEL (self->selection), i);

      if (item == machine)
        {
          gtk_single_selection_set_selected (self->selection, i);
          show_machine (self, machine);
          adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_FORWARD);
          return;
        }
    }
  /* Hidden by the search: show it anyway. */
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), "");
  show_machine (self, machine);
}

static void
machine_name_changed_cb (VireoWindow *self)
{
  VireoMachine *machine = vireo_window_get_selected_machine (self);

  if (machine != NULL)
    adw_view_switcher_title_set_title (self->switcher_title, vireo_machine_get_name (machine));
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
}

/* ---- the list --------------------------------------------------------------------------- */

static gboolean
filter_func (gpointer item, gpointer user_data)
{
  VireoWindow *self = user_data;
  VireoMachine *machine = item;
  VireoMachineConfig *config;
  g_autofree char *name = NULL;
  g_autofree char *source = NULL;

  if (self->search == NULL)
    return TRUE;
  config = vireo_machine_get_config (machine);
  name = g_utf8_casefold (vireo_machine_get_name (machine), -1);
  if (strstr (name, self->search) != NULL)
    return TRUE;
  if (config != NULL && config->source != NULL)
    {
      source = g_utf8_casefold (config->source, -1);
      return strstr (source, self->search) != NULL;
    }
  return FALSE;
}

static void
update_list_page (VireoWindow *self)
{
  gboolean loaded = vireo_library_is_loaded (self->library);
  guint n_all = g_list_model_get_n_items (G_LIST_MODEL (self->library));
  guint n_shown = g_list_model_get_n_items (G_LIST_MODEL (self->filter_model));

  gtk_stack_set_visible_child_name (self->main_stack, loaded && n_all == 0 ? "empty" : "machines");
  gtk_stack_set_visible_child_name (self->list_stack, n_all > 0 && n_shown == 0 ? "no-results"
                                                                                : "list");
}

static void
search_changed_cb (VireoWindow *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search_entry));

  g_clear_pointer (&self->search, g_free);
  if (text != NULL && *text)
    self->search = g_utf8_casefold (text, -1);
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_list_page (self);
}

static void
stop_search_cb (VireoWindow *self)
{
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), "");
  gtk_search_bar_set_search_mode (self->search_bar, FALSE);
}

static void
list_activate_cb (VireoWindow *self,
                  guint        position)
{
  g_autoptr(VireoMachine) machine = g_list_model_get_item (G_LIST_MODEL (self->selection),
                                                           position);

  if (machine != NULL)
    vireo_window_select_machine (self, machine);
}

static void
restore_selection (VireoWindow *self)
{
  g_autofree char *uuid = NULL;
  VireoMachine *machine;

  if (self->restored_selection || !vireo_library_is_loaded (self->library))
    return;
  self->restored_selection = TRUE;
  uuid = g_settings_get_string (self->settings, "last-selected-machine");
  machine = *uuid ? vireo_library_find_by_uuid (self->library, uuid) : NULL;
  if (machine != NULL)
    vireo_window_select_machine (self, machine);
}

static void
library_items_changed_cb (GListModel  *model,
                          guint        position,
                          guint        removed,
                          guint        added,
                          VireoWindow *self)
{
  GHashTableIter iter;
  gpointer key, value;
  guint n = g_list_model_get_n_items (model);

  /* Views of machines that left the library go too. */
  g_hash_table_iter_init (&iter, self->views);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      VireoMachine *machine = vireo_machine_view_get_machine (value);
      gboolean found = FALSE;

      for (guint i = 0; i < n && !found; i++)
        {
          g_autoptr(VireoMachine) item = g_list_model_get_item (model, i);

          found = item == machine;
        }
      if (!found)
        {
          if (value == (gpointer) self->current)
            show_machine (self, NULL);
          gtk_stack_remove (self->view_stack, value);
          g_hash_table_iter_remove (&iter);
        }
    }

  for (guint i = position; i < position + added; i++)
    {
      g_autoptr(VireoMachine) machine = g_list_model_get_item (model, i);

      if (g_object_get_data (G_OBJECT (machine), "vireo-window-watched") == NULL)
        {
          g_object_set_data (G_OBJECT (machine), "vireo-window-watched", GINT_TO_POINTER (1));
          g_signal_connect_object (machine, "error", G_CALLBACK (machine_error_cb), self, 0);
        }
    }

  update_list_page (self);
  restore_selection (self);
  selection_changed_cb (self);
}

/* ---- benchmark hooks (bench/app) --------------------------------------------------------
 * Only for bench/app; nothing happens unless these variables are set.
 *  - VIREO_BENCH_FIRST_FRAME=1: after the frame clock paints the window's first frame, and
 *    again after the first frame painted once the library has loaded, print to stderr
 *      vireo-bench: frame first|loaded <g_get_monotonic_time () µs> machines=<n>
 *    (CLOCK_MONOTONIC, the clock of Python's time.monotonic_ns ()); then stop listening.
 *  - VIREO_BENCH_START_ALL=1: start every machine of the library once it has loaded. */

static void
bench_after_paint_cb (GdkFrameClock *clock,
                      VireoWindow   *self)
{
  gboolean loaded = vireo_library_is_loaded (self->library);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->library));

  if (!self->bench_painted)
    {
      self->bench_painted = TRUE;
      g_printerr ("vireo-bench: frame first %" G_GINT64_FORMAT " machines=%u\n",
                  g_get_monotonic_time (), n);
    }
  if (loaded)
    {
      g_printerr ("vireo-bench: frame loaded %" G_GINT64_FORMAT " machines=%u\n",
                  g_get_monotonic_time (), n);
      g_signal_handlers_disconnect_by_func (clock, bench_after_paint_cb, self);
    }
}

static void
bench_realize_cb (GtkWidget *widget)
{
  g_signal_connect_object (gtk_widget_get_frame_clock (widget), "after-paint",
                           G_CALLBACK (bench_after_paint_cb), widget, 0);
}

static void
bench_start_all (VireoWindow *self)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->library));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) machine = g_list_model_get_item (G_LIST_MODEL (self->library), i);

      if (vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_STOPPED)
        vireo_window_start_machine (self, machine);
    }
}

static void
library_loaded_cb (VireoWindow *self)
{
  update_list_page (self);
  restore_selection (self);
  if (vireo_library_is_loaded (self->library) && g_getenv ("VIREO_BENCH_START_ALL") != NULL)
    bench_start_all (self);
}

static void
setup_row_cb (GtkSignalListItemFactory *factory,
              GtkListItem              *item,
              gpointer                  user_data)
{
  gtk_list_item_set_child (item, vireo_machine_row_new ());
}

static void
bind_row_cb (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             gpointer                  user_data)
{
  vireo_machine_row_set_machine (VIREO_MACHINE_ROW (gtk_list_item_get_child (item)),
                                 gtk_list_item_get_item (item));
}

static void
unbind_row_cb (GtkSignalListItemFactory *factory,
               GtkListItem              *item,
               gpointer                  user_data)
{
  vireo_machine_row_set_machine (VIREO_MACHINE_ROW (gtk_list_item_get_child (item)), NULL);
}

/* ---- machine actions -------------------------------------------------------------------- */

static void
update_actions (VireoWindow *self)
{
  VireoMachine *machine = vireo_window_get_selected_machine (self);
  VireoMachineState state = machine ? vireo_machine_get_state (machine)
                                    : VIREO_MACHINE_STATE_BROKEN;
  gboolean running = state == VIREO_MACHINE_STATE_RUNNING;
  gboolean paused = state == VIREO_MACHINE_STATE_PAUSED;
  gboolean stopping = state == VIREO_MACHINE_STATE_STOPPING;
  gboolean has_vr = machine && vireo_machine_get_vr_machine (machine) != NULL;
  VireoMachineConfig *config = machine ? vireo_machine_get_config (machine) : NULL;
  gboolean has_screen = has_vr && config && config->display != VIREO_DISPLAY_NONE;
  gboolean recording = self->current
                       && vireo_display_get_recording (vireo_machine_view_get_display (self->current));
  GtkWidget *widget = GTK_WIDGET (self);

  gtk_widget_action_set_enabled (widget, "machine.start", state == VIREO_MACHINE_STATE_STOPPED);
  gtk_widget_action_set_enabled (widget, "machine.pause", running || stopping);
  gtk_widget_action_set_enabled (widget, "machine.resume", paused);
  gtk_widget_action_set_enabled (widget, "machine.shutdown", running || stopping);
  gtk_widget_action_set_enabled (widget, "machine.force-off",
                                 machine && vireo_machine_is_active (machine));
  gtk_widget_action_set_enabled (widget, "machine.reset", running || paused || stopping);
  gtk_widget_action_set_enabled (widget, "machine.screenshot", has_screen);
  gtk_widget_action_set_enabled (widget, "machine.record", has_screen || recording);
  gtk_widget_set_sensitive (GTK_WIDGET (self->send_key_button), has_screen && !paused);

  if (paused)
    {
      gtk_actionable_set_action_name (GTK_ACTIONABLE (self->pause_button), "machine.resume");
      gtk_button_set_icon_name (self->pause_button, "media-playback-start-symbolic");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->pause_button), _("Resume"));
    }
  else
    {
      gtk_actionable_set_action_name (GTK_ACTIONABLE (self->pause_button), "machine.pause");
      gtk_button_set_icon_name (self->pause_button, "media-playback-pause-symbolic");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->pause_button), _("Pause"));
    }
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->pause_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  paused ? _("Resume") : _("Pause"), -1);
  /* Recording also ends by itself when the machine stops. */
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
}

static void
start_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(VireoWindow) self = user_data;
  VireoMachine *machine = VIREO_MACHINE (object);
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_start_finish (machine, result, &error)
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree char *what = g_strdup_printf (_("“%s” did not start"),
                                               vireo_machine_get_name (machine));

      vireo_window_show_error (self, what, error);
    }
}

void
vireo_window_start_machine (VireoWindow  *self,
                            VireoMachine *machine)
{
  g_return_if_fail (VIREO_IS_WINDOW (self));
  g_return_if_fail (VIREO_IS_MACHINE (machine));

  vireo_machine_start_async (machine, NULL, start_done_cb, g_object_ref (self));
}

static void
start_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoWindow *self = VIREO_WINDOW (widget);
  VireoMachine *machine = vireo_window_get_selected_machine (self);

  if (machine != NULL)
    {
      vireo_window_start_machine (self, machine);
      vireo_machine_view_show_page (self->current, "display");
    }
}

typedef gboolean (*MachineFunc) (VireoMachine *machine, GError **error);

static void
run_machine_func (VireoWindow *self, MachineFunc func, const char *action)
{
  VireoMachine *machine = vireo_window_get_selected_machine (self);
  g_autoptr(GError) error = NULL;

  if (machine != NULL && !func (machine, &error))
    {
      const char *name = vireo_machine_get_name (machine);
      g_autofree char *what = NULL;

      if (g_str_equal (action, "pause"))
        what = g_strdup_printf (_("“%s” was not paused"), name);
      else if (g_str_equal (action, "resume"))
        what = g_strdup_printf (_("“%s” did not resume"), name);
      else if (g_str_equal (action, "shutdown"))
        what = g_strdup_printf (_("The power button of “%s” could not be pressed"), name);
      else
        what = g_strdup_printf (_("“%s” was not reset"), name);
      vireo_window_show_error (self, what, error);
    }
}

static void
pause_action (GtkWidget *widget, const char *name, GVariant *param)
{
  run_machine_func (VIREO_WINDOW (widget), vireo_machine_pause, "pause");
}

static void
resume_action (GtkWidget *widget, const char *name, GVariant *param)
{
  run_machine_func (VIREO_WINDOW (widget), vireo_machine_resume, "resume");
}

static void
shutdown_action (GtkWidget *widget, const char *name, GVariant *param)
{
  run_machine_func (VIREO_WINDOW (widget), vireo_machine_shutdown, "shutdown");
}

static void
reset_action (GtkWidget *widget, const char *name, GVariant *param)
{
  run_machine_func (VIREO_WINDOW (widget), vireo_machine_reset, "reset");
}

static void
force_off_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoMachine *machine = vireo_window_get_selected_machine (VIREO_WINDOW (widget));

  if (machine != NULL)
    vireo_machine_force_off (machine);
}

static GFile *
media_file (VireoMachine *machine, GUserDirectory kind, const char *extension)
{
  const char *dir = g_get_user_special_dir (kind);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%d %H-%M-%S");
  g_autofree char *base = NULL;
  g_autofree char *safe = g_strdup (vireo_machine_get_name (machine));

  g_strdelimit (safe, "/", '-');
  if (dir == NULL)
    dir = g_get_home_dir ();
  /* Translators: a screenshot or recording file name: machine name, then date and time */
  base = g_strdup_printf (_("%s %s.%s"), safe, stamp, extension);
  return g_file_new_build_filename (dir, base, NULL);
}

static void
screenshot_done_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(VireoWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GFile *file = g_object_get_data (G_OBJECT (self), "vireo-last-screenshot");

  if (!vireo_display_screenshot_finish (VIREO_DISPLAY (object), result, &error))
    vireo_window_show_error (self, _("The screenshot was not saved"), error);
  else
    {
      g_autofree char *path = file ? g_file_get_path (file) : NULL;
      g_autofree char *text = g_strdup_printf (_("Screenshot saved as %s"), path ? path : "");

      vireo_window_show_toast (self, text);
    }
}

static void
screenshot_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoWindow *self = VIREO_WINDOW (widget);
  VireoMachine *machine = vireo_window_get_selected_machine (self);
  g_autoptr(GFile) file = NULL;

  if (machine == NULL)
    return;
  file = media_file (machine, G_USER_DIRECTORY_PICTURES, "png");
  g_object_set_data_full (G_OBJECT (self), "vireo-last-screenshot", g_object_ref (file),
                          g_object_unref);
  vireo_display_screenshot_async (vireo_machine_view_get_display (self->current), file, NULL,
                                  screenshot_done_cb, g_object_ref (self));
}

static gboolean
get_recording (VireoWindow *self)
{
  return self->current
         && vireo_display_get_recording (vireo_machine_view_get_display (self->current));
}

static void
set_recording (VireoWindow *self, gboolean recording)
{
  VireoMachine *machine = vireo_window_get_selected_machine (self);
  VireoDisplay *display;
  g_autoptr(GError) error = NULL;

  if (machine == NULL || recording == get_recording (self))
    return;
  display = vireo_machine_view_get_display (self->current);
  if (recording)
    {
      g_autoptr(GFile) file = media_file (machine, G_USER_DIRECTORY_VIDEOS, "webm");

      if (!vireo_display_start_recording (display, file, &error))
        vireo_window_show_error (self, _("Recording did not start"), error);
      else
        {
          g_autofree char *path = g_file_get_path (file);
          g_autofree char *text = g_strdup_printf (_("Recording to %s"), path);

          vireo_window_show_toast (self, text);
        }
    }
  else if (!vireo_display_stop_recording (display, &error))
    vireo_window_show_error (self, _("The recording may be incomplete"), error);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
  update_actions (self);
}

/* ---- window actions --------------------------------------------------------------------- */

static void
new_machine_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoWindow *self = VIREO_WINDOW (widget);

  vireo_new_machine_dialog_present (GTK_WINDOW (self), self->library);
}

/* (uuid, customize): the wizard made a machine; show it, at Details to customize it. */
static void
show_machine_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoWindow *self = VIREO_WINDOW (widget);
  const char *uuid = NULL;
  gboolean customize = FALSE;
  VireoMachine *machine;

  g_variant_get (param, "(&sb)", &uuid, &customize);
  machine = vireo_library_find_by_uuid (self->library, uuid);
  if (machine == NULL)
    return;
  vireo_window_select_machine (self, machine);
  if (self->current != NULL)
    vireo_machine_view_show_page (self->current, customize ? "details" : "display");
}

static void
demo_machine_action (GtkWidget *widget, const char *name, GVariant *param)
{
  GApplication *app = g_application_get_default ();

  if (VIREO_IS_APPLICATION (app))
    vireo_application_open_demo (VIREO_APPLICATION (app), GTK_WINDOW (widget));
}

static void
fullscreen_action (GtkWidget *widget, const char *name, GVariant *param)
{
  GtkWindow *window = GTK_WINDOW (widget);

  if (gtk_window_is_fullscreen (window))
    gtk_window_unfullscreen (window);
  else
    gtk_window_fullscreen (window);
}

static void
fullscreened_cb (VireoWindow *self)
{
  gboolean full = gtk_window_is_fullscreen (GTK_WINDOW (self));

  /* Full screen is for the guest's screen: no list, no header bar. */
  gtk_widget_set_visible (self->sidebar, !full);
  gtk_widget_set_visible (self->sidebar_separator, !full);
  gtk_widget_set_visible (GTK_WIDGET (self->content_header), !full);
  gtk_widget_set_visible (GTK_WIDGET (self->switcher_bar), !full);
  if (full && self->current != NULL)
    {
      vireo_machine_view_show_page (self->current, "display");
      vireo_window_show_toast (self, _("Press F11 to leave full screen (Ctrl+Alt first if the "
                                        "machine has the keyboard)"));
    }
}

static void
search_action (GtkWidget *widget, const char *name, GVariant *param)
{
  VireoWindow *self = VIREO_WINDOW (widget);

  gtk_search_bar_set_search_mode (self->search_bar, TRUE);
  adw_leaflet_navigate (self->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

static void
go_back_action (GtkWidget *widget, const char *name, GVariant *param)
{
  adw_leaflet_navigate (VIREO_WINDOW (widget)->leaflet, ADW_NAVIGATION_DIRECTION_BACK);
}

static void
leaflet_folded_cb (VireoWindow *self)
{
  /* Unfolded, both sides show; folded, the list shows first unless a machine is open. */
  if (adw_leaflet_get_folded (self->leaflet) && self->current != NULL)
    adw_leaflet_set_visible_child (self->leaflet, self->content);
}

/* ---- closing ---------------------------------------------------------------------------- */

void
vireo_window_save_state (VireoWindow *self)
{
  int width, height;
  VireoMachine *machine;

  g_return_if_fail (VIREO_IS_WINDOW (self));

  gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  g_settings_delay (self->settings);
  if (!gtk_window_is_maximized (GTK_WINDOW (self)) && !gtk_window_is_fullscreen (GTK_WINDOW (self)))
    {
      g_settings_set_int (self->settings, "window-width", width);
      g_settings_set_int (self->settings, "window-height", height);
    }
  g_settings_set_boolean (self->settings, "window-maximized",
                          gtk_window_is_maximized (GTK_WINDOW (self)));
  machine = vireo_window_get_selected_machine (self);
  g_settings_set_string (self->settings, "last-selected-machine",
                         machine ? vireo_machine_get_uuid (machine) : "");
  g_settings_apply (self->settings);
}

static void
close_dialog_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(VireoWindow) self = user_data;

  self->asking = FALSE;
  if (!vireo_quit_dialog_run_finish (result, NULL))
    return;
  self->close_confirmed = TRUE;
  gtk_window_close (GTK_WINDOW (self));
}

static gboolean
vireo_window_close_request (GtkWindow *window)
{
  VireoWindow *self = VIREO_WINDOW (window);
  g_autoptr(GPtrArray) active = vireo_library_dup_active_machines (self->library);

  if (!self->close_confirmed && active->len > 0)
    {
      if (!self->asking)
        {
          self->asking = TRUE;
          vireo_quit_dialog_run_async (window, self->library, NULL, close_dialog_cb,
                                       g_object_ref (self));
        }
      return TRUE;
    }
  vireo_window_save_state (self);
  return GTK_WINDOW_CLASS (vireo_window_parent_class)->close_request (window);
}

/* ---- GObject ---------------------------------------------------------------------------- */

/* Once the window belongs to @app (GtkWindow:application is not a construct property). */
static void
setup (VireoWindow *self, VireoApplication *app)
{
  GtkListItemFactory *factory;
  g_autoptr(GMenuModel) send_keys = vireo_display_get_send_key_menu ();

  self->library = g_object_ref (vireo_application_get_library (app));
  self->settings = g_object_ref (vireo_application_get_settings (app));

  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));

  gtk_menu_button_set_menu_model (self->send_key_button, send_keys);

  self->filter = gtk_custom_filter_new (filter_func, self, NULL);
  self->filter_model = gtk_filter_list_model_new (g_object_ref (G_LIST_MODEL (self->library)),
                                                  g_object_ref (GTK_FILTER (self->filter)));
  self->slice = gtk_slice_list_model_new (g_object_ref (G_LIST_MODEL (self->filter_model)), 0,
                                          (guint) (first_frame_height (self) / ROW_HEIGHT_MIN + 1));
  self->selection = gtk_single_selection_new (g_object_ref (G_LIST_MODEL (self->slice)));
  gtk_single_selection_set_autoselect (self->selection, TRUE);
  g_signal_connect_swapped (self->selection, "notify::selected-item",
                            G_CALLBACK (selection_changed_cb), self);

  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_row_cb), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_row_cb), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_row_cb), NULL);
  gtk_list_view_set_factory (self->machine_list, factory);
  g_object_unref (factory);
  gtk_list_view_set_model (self->machine_list, GTK_SELECTION_MODEL (self->selection));

  g_signal_connect_object (self->library, "items-changed",
                           G_CALLBACK (library_items_changed_cb), self, 0);
  g_signal_connect_object (self->library, "notify::loaded", G_CALLBACK (library_loaded_cb), self,
                           G_CONNECT_SWAPPED);
  library_items_changed_cb (G_LIST_MODEL (self->library), 0, 0,
                            g_list_model_get_n_items (G_LIST_MODEL (self->library)), self);
  if (g_getenv ("VIREO_BENCH_FIRST_FRAME") != NULL)   /* bench/app, see above */
    g_signal_connect (self, "realize", G_CALLBACK (bench_realize_cb), NULL);
  g_signal_connect (self, "realize", G_CALLBACK (startup_realize_cb), NULL);

#if DEVELOPMENT_BUILD
  gtk_widget_add_css_class (GTK_WIDGET (self), "devel");
#endif
}

VireoWindow *
vireo_window_new (VireoApplication *app)
{
  VireoWindow *self;

  g_return_val_if_fail (VIREO_IS_APPLICATION (app), NULL);

  self = g_object_new (VIREO_TYPE_WINDOW, "application", app, NULL);
  setup (self, app);
  return self;
}

static void
vireo_window_dispose (GObject *object)
{
  VireoWindow *self = VIREO_WINDOW (object);

  if (self->grow_id != 0)
    gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->grow_id);
  self->grow_id = 0;
  g_clear_handle_id (&self->startup_timeout_id, g_source_remove);
  if (self->after_paint_id != 0 && gtk_widget_get_frame_clock (GTK_WIDGET (self)) != NULL)
    g_signal_handler_disconnect (gtk_widget_get_frame_clock (GTK_WIDGET (self)),
                                 self->after_paint_id);
  self->after_paint_id = 0;
  self->starting = FALSE;
  if (self->machine_signals != NULL)
    g_signal_group_set_target (self->machine_signals, NULL);
  g_clear_object (&self->machine_signals);
  self->current = NULL;
  if (self->machine_list != NULL)
    gtk_list_view_set_model (self->machine_list, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_WINDOW);
  g_clear_pointer (&self->views, g_hash_table_unref);
  g_clear_object (&self->selection);
  g_clear_object (&self->slice);
  g_clear_object (&self->filter_model);
  g_clear_object (&self->filter);
  g_clear_object (&self->library);
  g_clear_object (&self->settings);
  g_clear_pointer (&self->search, g_free);

  G_OBJECT_CLASS (vireo_window_parent_class)->dispose (object);
}

static void
vireo_window_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  VireoWindow *self = VIREO_WINDOW (object);

  switch (prop_id)
    {
    case PROP_RECORDING:
      g_value_set_boolean (value, get_recording (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_window_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  VireoWindow *self = VIREO_WINDOW (object);

  switch (prop_id)
    {
    case PROP_RECORDING:
      set_recording (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_window_class_init (VireoWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = vireo_window_dispose;
  object_class->get_property = vireo_window_get_property;
  object_class->set_property = vireo_window_set_property;
  window_class->close_request = vireo_window_close_request;

  properties[PROP_RECORDING] =
    g_param_spec_boolean ("recording", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (VIREO_TYPE_MACHINE_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-window.ui");
#define BIND(x) gtk_widget_class_bind_template_child (widget_class, VireoWindow, x)
  BIND (toast_overlay);
  BIND (main_stack);
  BIND (leaflet);
  BIND (sidebar);
  BIND (sidebar_separator);
  BIND (content);
  BIND (content_header);
  BIND (switcher_title);
  BIND (switcher_bar);
  BIND (pause_button);
  BIND (send_key_button);
  BIND (record_button);
  BIND (search_bar);
  BIND (search_entry);
  BIND (list_stack);
  BIND (machine_list);
  BIND (view_stack);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, search_changed_cb);
  gtk_widget_class_bind_template_callback (widget_class, stop_search_cb);
  gtk_widget_class_bind_template_callback (widget_class, list_activate_cb);
  gtk_widget_class_bind_template_callback (widget_class, leaflet_folded_cb);

  gtk_widget_class_install_action (widget_class, "win.new-machine", NULL, new_machine_action);
  gtk_widget_class_install_action (widget_class, "win.demo-machine", NULL, demo_machine_action);
  gtk_widget_class_install_action (widget_class, "win.show-machine", "(sb)", show_machine_action);
  gtk_widget_class_install_action (widget_class, "win.fullscreen", NULL, fullscreen_action);
  gtk_widget_class_install_action (widget_class, "win.search", NULL, search_action);
  gtk_widget_class_install_action (widget_class, "win.go-back", NULL, go_back_action);
  gtk_widget_class_install_action (widget_class, "machine.start", NULL, start_action);
  gtk_widget_class_install_action (widget_class, "machine.pause", NULL, pause_action);
  gtk_widget_class_install_action (widget_class, "machine.resume", NULL, resume_action);
  gtk_widget_class_install_action (widget_class, "machine.shutdown", NULL, shutdown_action);
  gtk_widget_class_install_action (widget_class, "machine.force-off", NULL, force_off_action);
  gtk_widget_class_install_action (widget_class, "machine.reset", NULL, reset_action);
  gtk_widget_class_install_action (widget_class, "machine.screenshot", NULL, screenshot_action);
  gtk_widget_class_install_property_action (widget_class, "machine.record", "recording");
}

static void
vireo_window_init (VireoWindow *self)
{
  static const GActionEntry actions[] = {
    { "show-help-overlay", show_help_overlay },
  };

  gtk_widget_init_template (GTK_WIDGET (self));
  g_action_map_add_action_entries (G_ACTION_MAP (self), actions, G_N_ELEMENTS (actions), self);

  self->starting = TRUE;
  self->views = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->machine_signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->machine_signals, "notify::state",
                                  G_CALLBACK (update_actions), self);
  g_signal_group_connect_swapped (self->machine_signals, "notify::vr-machine",
                                  G_CALLBACK (update_actions), self);
  g_signal_group_connect_swapped (self->machine_signals, "notify::config",
                                  G_CALLBACK (update_actions), self);
  g_signal_group_connect_swapped (self->machine_signals, "notify::name",
                                  G_CALLBACK (machine_name_changed_cb), self);
  g_signal_connect (self, "notify::fullscreened", G_CALLBACK (fullscreened_cb), NULL);
  update_actions (self);
}
