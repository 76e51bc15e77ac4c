/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * VireoDisplay: a machine's screen, keyboard and pointer in one widget.
 *
 * Drawing is VireoDisplayView's job (GL texture with damaged-row uploads, or a
 * GdkMemoryTexture fallback); this class puts it under two overlays (the capture hint and
 * the recording indicator), in a scrolled window in 1:1 mode (see place_view), and handles
 * input, the Send Key actions, screenshots and recording.
 *
 * Keyboard: GDK hands us hardware keycodes. On X11 (the evdev/libinput drivers, and Xvfb
 * with the default "evdev" XKB rules) and on Wayland (keycodes are evdev codes + 8 by the
 * protocol), the Linux evdev code is keycode - 8, which is what the engine takes; that is
 * the assumption here. Only for a keycode below 8 (a backend that does not follow it) do we
 * fall back to the keyval, for the common keys. Keys go to the guest while the widget has
 * focus; "capture" (a click in the picture) additionally inhibits the desktop's shortcuts
 * (gdk_toplevel_inhibit_system_shortcuts) so that Super, Alt+Tab and the like reach the
 * guest, and hides the pointer in relative mode. Pressing Ctrl+Alt (both, then letting one
 * go with nothing else pressed in between) releases. Keys held when focus leaves are
 * released in the guest, so that nothing stays stuck.
 *
 * Pointer: absolute through the tablet (widget position through the letterbox to
 * 0..VR_INPUT_ABS_MAX) unless the engine says the pointer goes to the PS/2 mouse
 * (vr_machine_input_get_routing), in which case motion deltas in guest pixels are sent while
 * captured. GTK 4 has no pointer grab or warp, so in relative mode the host pointer can
 * still reach the window's edge; the guest then sees no further motion in that direction.
 */

#define G_LOG_DOMAIN "vireo-display"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <linux/input-event-codes.h>
#include <string.h>

#include "vireo-display.h"
#include "vireo-display-view.h"
#include "vireo-recorder.h"

#define HINT_SECONDS         5
#define RECORD_IDLE_US       (G_USEC_PER_SEC / 2)
#define PREFERRED_SIZE_DELAY 250

struct _VireoDisplay
{
  GtkWidget         parent_instance;

  /* template */
  GtkWidget        *overlay;
  GtkScrolledWindow *scroller;
  GtkWidget        *scroller_ref;  /* kept while the view is not in it */
  VireoDisplayView *view;
  GtkRevealer      *hint_revealer;
  GtkWidget        *recording_box;
  GtkLabel         *recording_label;

  VrMachine        *machine;
  VireoScaleMode    scale_mode;
  VireoPointerMode  pointer_mode;
  GSimpleActionGroup *actions;

  /* keyboard */
  guint8            keys_down[(KEY_MAX + 1) / 8];
  gboolean          release_armed;
  gboolean          captured;
  guint             hint_timeout;

  /* pointer */
  guint             last_abs_x;
  guint             last_abs_y;
  gboolean          have_last;
  double            last_x;
  double            last_y;
  double            rel_rem_x;
  double            rel_rem_y;
  guint             buttons_down;
  GdkCursor        *guest_cursor;
  guint             preferred_size_timeout;
  int               preferred_width;
  int               preferred_height;

  /* recording */
  VireoRecorder    *recorder;
  guint             recording_timer;
  gint64            recording_start_us;
  gint64            last_push_us;
};

G_DEFINE_FINAL_TYPE (VireoDisplay, vireo_display, GTK_TYPE_WIDGET)

G_DEFINE_ENUM_TYPE (VireoScaleMode, vireo_scale_mode,
                    G_DEFINE_ENUM_VALUE (VIREO_SCALE_MODE_FIT, "fit"),
                    G_DEFINE_ENUM_VALUE (VIREO_SCALE_MODE_ORIGINAL, "original"))

G_DEFINE_ENUM_TYPE (VireoPointerMode, vireo_pointer_mode,
                    G_DEFINE_ENUM_VALUE (VIREO_POINTER_MODE_AUTO, "auto"),
                    G_DEFINE_ENUM_VALUE (VIREO_POINTER_MODE_ABSOLUTE, "absolute"),
                    G_DEFINE_ENUM_VALUE (VIREO_POINTER_MODE_RELATIVE, "relative"))

enum
{
  PROP_0,
  PROP_SCALE_MODE,
  PROP_POINTER_MODE,
  PROP_FORCE_FALLBACK,
  PROP_USES_GL,
  PROP_UPLOADED_ROWS,
  PROP_CAPTURED,
  PROP_RECORDING,
  PROP_RECORDING_TIME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* -------------------------------------------------------------------------------------------
 * Keys
 */

typedef struct
{
  const char *name;
  const char *label;
  guint       codes[3];
} KeyCombo;

static const KeyCombo key_combos[] = {
  { "ctrl-alt-delete", N_("Ctrl+Alt+Del"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE } },
  { "ctrl-alt-backspace", N_("Ctrl+Alt+Backspace"),
    { KEY_LEFTCTRL, KEY_LEFTALT, KEY_BACKSPACE } },
  { "ctrl-alt-f1", N_("Ctrl+Alt+F1"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F1 } },
  { "ctrl-alt-f2", N_("Ctrl+Alt+F2"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F2 } },
  { "ctrl-alt-f3", N_("Ctrl+Alt+F3"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F3 } },
  { "ctrl-alt-f4", N_("Ctrl+Alt+F4"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F4 } },
  { "ctrl-alt-f5", N_("Ctrl+Alt+F5"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F5 } },
  { "ctrl-alt-f6", N_("Ctrl+Alt+F6"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F6 } },
  { "ctrl-alt-f7", N_("Ctrl+Alt+F7"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F7 } },
  { "ctrl-alt-f8", N_("Ctrl+Alt+F8"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F8 } },
  { "ctrl-alt-f9", N_("Ctrl+Alt+F9"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F9 } },
  { "ctrl-alt-f10", N_("Ctrl+Alt+F10"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F10 } },
  { "ctrl-alt-f11", N_("Ctrl+Alt+F11"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F11 } },
  { "ctrl-alt-f12", N_("Ctrl+Alt+F12"), { KEY_LEFTCTRL, KEY_LEFTALT, KEY_F12 } },
  { "print", N_("Print Screen"), { KEY_SYSRQ } },
};

/* The keyval fallback, for backends whose keycodes are not evdev + 8. */
static const struct
{
  guint keyval;
  guint code;
} keyval_codes[] = {
  { GDK_KEY_Escape, KEY_ESC }, { GDK_KEY_Return, KEY_ENTER }, { GDK_KEY_Tab, KEY_TAB },
  { GDK_KEY_BackSpace, KEY_BACKSPACE }, { GDK_KEY_space, KEY_SPACE },
  { GDK_KEY_Delete, KEY_DELETE }, { GDK_KEY_Insert, KEY_INSERT }, { GDK_KEY_Home, KEY_HOME },
  { GDK_KEY_End, KEY_END }, { GDK_KEY_Page_Up, KEY_PAGEUP }, { GDK_KEY_Page_Down, KEY_PAGEDOWN },
  { GDK_KEY_Left, KEY_LEFT }, { GDK_KEY_Right, KEY_RIGHT }, { GDK_KEY_Up, KEY_UP },
  { GDK_KEY_Down, KEY_DOWN }, { GDK_KEY_Shift_L, KEY_LEFTSHIFT },
  { GDK_KEY_Shift_R, KEY_RIGHTSHIFT }, { GDK_KEY_Control_L, KEY_LEFTCTRL },
  { GDK_KEY_Control_R, KEY_RIGHTCTRL }, { GDK_KEY_Alt_L, KEY_LEFTALT },
  { GDK_KEY_Alt_R, KEY_RIGHTALT }, { GDK_KEY_Super_L, KEY_LEFTMETA },
  { GDK_KEY_Super_R, KEY_RIGHTMETA }, { GDK_KEY_minus, KEY_MINUS }, { GDK_KEY_equal, KEY_EQUAL },
  { GDK_KEY_comma, KEY_COMMA }, { GDK_KEY_period, KEY_DOT }, { GDK_KEY_slash, KEY_SLASH },
  { GDK_KEY_semicolon, KEY_SEMICOLON }, { GDK_KEY_apostrophe, KEY_APOSTROPHE },
  { GDK_KEY_bracketleft, KEY_LEFTBRACE }, { GDK_KEY_bracketright, KEY_RIGHTBRACE },
  { GDK_KEY_backslash, KEY_BACKSLASH }, { GDK_KEY_grave, KEY_GRAVE },
};

guint
vireo_display_keycode_to_evdev (guint keycode,
                                guint keyval)
{
  static const char letters[] = "qwertyuiopasdfghjklzxcvbnm";
  static const guint8 letter_codes[] = {
    KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U, KEY_I, KEY_O, KEY_P, KEY_A, KEY_S, KEY_D,
    KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L, KEY_Z, KEY_X, KEY_C, KEY_V, KEY_B, KEY_N, KEY_M,
  };
  guint lower;

  if (keycode >= 8 && keycode - 8 <= KEY_MAX)
    return keycode - 8;

  lower = gdk_keyval_to_lower (keyval);
  if (lower >= 'a' && lower <= 'z')
    return letter_codes[strchr (letters, (int) lower) - letters];
  if (keyval >= GDK_KEY_1 && keyval <= GDK_KEY_9)
    return KEY_1 + (keyval - GDK_KEY_1);
  if (keyval == GDK_KEY_0)
    return KEY_0;
  if (keyval >= GDK_KEY_F1 && keyval <= GDK_KEY_F10)
    return KEY_F1 + (keyval - GDK_KEY_F1);
  if (keyval == GDK_KEY_F11)
    return KEY_F11;
  if (keyval == GDK_KEY_F12)
    return KEY_F12;
  for (guint i = 0; i < G_N_ELEMENTS (keyval_codes); i++)
    if (keyval_codes[i].keyval == keyval)
      return keyval_codes[i].code;
  return 0;
}

static gboolean
key_is_down (VireoDisplay *self,
             guint         code)
{
  return code <= KEY_MAX && (self->keys_down[code / 8] & (1u << (code % 8))) != 0;
}

static void
send_key (VireoDisplay *self,
          guint         code,
          gboolean      pressed)
{
  if (code == 0 || code > KEY_MAX)
    return;
  if (pressed)
    self->keys_down[code / 8] |= (guint8) (1u << (code % 8));
  else
    self->keys_down[code / 8] &= (guint8) ~(1u << (code % 8));
  if (self->machine != NULL)
    vr_machine_input_key (self->machine, code, pressed);
}

static void
release_all_keys (VireoDisplay *self)
{
  for (guint code = 0; code <= KEY_MAX; code++)
    if (key_is_down (self, code))
      send_key (self, code, FALSE);
  self->release_armed = FALSE;
}

static void
release_all_buttons (VireoDisplay *self)
{
  static const guint codes[] = { BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA };

  for (guint i = 0; i < G_N_ELEMENTS (codes); i++)
    if (self->buttons_down & (1u << i))
      {
        if (self->machine != NULL)
          vr_machine_input_button (self->machine, codes[i], FALSE);
      }
  self->buttons_down = 0;
}

void
vireo_display_send_keys (VireoDisplay *self,
                         const guint  *codes,
                         gsize         n_codes)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));
  g_return_if_fail (codes != NULL || n_codes == 0);

  for (gsize i = 0; i < n_codes; i++)
    send_key (self, codes[i], TRUE);
  for (gsize i = n_codes; i > 0; i--)
    send_key (self, codes[i - 1], FALSE);
}

gboolean
vireo_display_send_key_combo (VireoDisplay *self,
                              const char   *combo)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  g_return_val_if_fail (combo != NULL, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (key_combos); i++)
    if (g_str_equal (key_combos[i].name, combo))
      {
        gsize n = 0;

        while (n < G_N_ELEMENTS (key_combos[i].codes) && key_combos[i].codes[n] != 0)
          n++;
        vireo_display_send_keys (self, key_combos[i].codes, n);
        return TRUE;
      }
  return FALSE;
}

GMenuModel *
vireo_display_get_send_key_menu (void)
{
  GMenu *menu = g_menu_new ();
  g_autoptr (GMenu) common = g_menu_new ();
  g_autoptr (GMenu) consoles = g_menu_new ();

  for (guint i = 0; i < G_N_ELEMENTS (key_combos); i++)
    {
      g_autoptr (GMenuItem) item = g_menu_item_new (_(key_combos[i].label), NULL);
      gboolean console = g_str_has_prefix (key_combos[i].name, "ctrl-alt-f");

      g_menu_item_set_action_and_target (item, "display.send-key", "s", key_combos[i].name);
      g_menu_append_item (console ? consoles : common, item);
    }
  g_menu_append_section (menu, NULL, G_MENU_MODEL (common));
  g_menu_append_section (menu, NULL, G_MENU_MODEL (consoles));
  return G_MENU_MODEL (menu);
}

/* -------------------------------------------------------------------------------------------
 * Capture
 */

static gboolean
hide_hint (gpointer user_data)
{
  VireoDisplay *self = user_data;

  self->hint_timeout = 0;
  gtk_revealer_set_reveal_child (self->hint_revealer, FALSE);
  return G_SOURCE_REMOVE;
}

static void
update_cursor (VireoDisplay *self)
{
  if (self->captured && vireo_display_get_relative_pointer (self))
    gtk_widget_set_cursor_from_name (GTK_WIDGET (self->view), "none");
  else
    gtk_widget_set_cursor (GTK_WIDGET (self->view), self->guest_cursor);
}

static GdkToplevel *
get_toplevel (VireoDisplay *self)
{
  GtkNative *native = gtk_widget_get_native (GTK_WIDGET (self));
  GdkSurface *surface = native ? gtk_native_get_surface (native) : NULL;

  return GDK_IS_TOPLEVEL (surface) ? GDK_TOPLEVEL (surface) : NULL;
}

void
vireo_display_capture (VireoDisplay *self,
                       GdkEvent     *event)
{
  GdkToplevel *toplevel;

  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (!gtk_widget_has_focus (GTK_WIDGET (self)))
    gtk_widget_grab_focus (GTK_WIDGET (self));
  if (self->captured)
    return;

  self->captured = TRUE;
  self->have_last = FALSE;
  if ((toplevel = get_toplevel (self)) != NULL)
    gdk_toplevel_inhibit_system_shortcuts (toplevel, event);

  gtk_revealer_set_reveal_child (self->hint_revealer, TRUE);
  g_clear_handle_id (&self->hint_timeout, g_source_remove);
  self->hint_timeout = g_timeout_add_seconds (HINT_SECONDS, hide_hint, self);
  update_cursor (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAPTURED]);
}

void
vireo_display_release (VireoDisplay *self)
{
  GdkToplevel *toplevel;

  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (!self->captured)
    return;
  self->captured = FALSE;
  if ((toplevel = get_toplevel (self)) != NULL)
    gdk_toplevel_restore_system_shortcuts (toplevel);
  g_clear_handle_id (&self->hint_timeout, g_source_remove);
  gtk_revealer_set_reveal_child (self->hint_revealer, FALSE);
  update_cursor (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CAPTURED]);
}

gboolean
vireo_display_get_captured (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  return self->captured;
}

static gboolean
is_ctrl (guint code)
{
  return code == KEY_LEFTCTRL || code == KEY_RIGHTCTRL;
}

static gboolean
is_alt (guint code)
{
  return code == KEY_LEFTALT || code == KEY_RIGHTALT;
}

static gboolean
on_key_pressed (GtkEventControllerKey *controller,
                guint                  keyval,
                guint                  keycode,
                GdkModifierType        state,
                VireoDisplay          *self)
{
  guint code = vireo_display_keycode_to_evdev (keycode, keyval);
  gboolean ctrl, alt;

  if (self->machine == NULL || code == 0)
    return FALSE;

  send_key (self, code, TRUE);

  ctrl = key_is_down (self, KEY_LEFTCTRL) || key_is_down (self, KEY_RIGHTCTRL);
  alt = key_is_down (self, KEY_LEFTALT) || key_is_down (self, KEY_RIGHTALT);
  if ((is_ctrl (code) || is_alt (code)) && ctrl && alt)
    self->release_armed = TRUE;
  else if (!is_ctrl (code) && !is_alt (code))
    self->release_armed = FALSE;
  return TRUE;
}

static void
on_key_released (GtkEventControllerKey *controller,
                 guint                  keyval,
                 guint                  keycode,
                 GdkModifierType        state,
                 VireoDisplay          *self)
{
  guint code = vireo_display_keycode_to_evdev (keycode, keyval);

  if (code == 0)
    return;
  if (key_is_down (self, code))
    send_key (self, code, FALSE);
  if (self->release_armed && (is_ctrl (code) || is_alt (code)))
    {
      self->release_armed = FALSE;
      vireo_display_release (self);
    }
}

static void
on_focus_leave (GtkEventControllerFocus *controller,
                VireoDisplay            *self)
{
  release_all_keys (self);
  release_all_buttons (self);
  vireo_display_release (self);
}

/* -------------------------------------------------------------------------------------------
 * Pointer
 */

gboolean
vireo_display_get_relative_pointer (VireoDisplay *self)
{
  VrInputRouting routing;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);

  if (self->pointer_mode == VIREO_POINTER_MODE_ABSOLUTE)
    return FALSE;
  if (self->pointer_mode == VIREO_POINTER_MODE_RELATIVE)
    return TRUE;
  if (self->machine == NULL)
    return FALSE;
  vr_machine_input_get_routing (self->machine, &routing);
  return !routing.pointer_absolute;
}

static void
pointer_moved (VireoDisplay *self,
               double        x,
               double        y)
{
  double gx, gy;
  VrDisplayMode mode = vireo_display_view_get_mode (self->view);

  if (self->machine == NULL || mode.width == 0 || mode.height == 0)
    return;
  if (!vireo_display_view_to_guest (self->view, x, y, &gx, &gy))
    return;

  if (vireo_display_get_relative_pointer (self))
    {
      double lx, ly, dx, dy;
      int ix, iy;

      if (!self->captured)
        {
          self->have_last = FALSE;
          return;
        }
      if (!self->have_last)
        {
          self->have_last = TRUE;
          self->last_x = gx;
          self->last_y = gy;
          return;
        }
      lx = self->last_x;
      ly = self->last_y;
      self->last_x = gx;
      self->last_y = gy;
      dx = gx - lx + self->rel_rem_x;
      dy = gy - ly + self->rel_rem_y;
      ix = (int) dx;
      iy = (int) dy;
      self->rel_rem_x = dx - ix;
      self->rel_rem_y = dy - iy;
      if (ix != 0 || iy != 0)
        vr_machine_input_rel (self->machine, ix, iy);
    }
  else
    {
      double fx = CLAMP (gx * (VR_INPUT_ABS_MAX + 1.0) / mode.width, 0, VR_INPUT_ABS_MAX);
      double fy = CLAMP (gy * (VR_INPUT_ABS_MAX + 1.0) / mode.height, 0, VR_INPUT_ABS_MAX);
      guint ax = (guint) fx, ay = (guint) fy;

      if (self->have_last && ax == self->last_abs_x && ay == self->last_abs_y)
        return;
      self->have_last = TRUE;
      self->last_abs_x = ax;
      self->last_abs_y = ay;
      vr_machine_input_abs (self->machine, ax, ay);
    }
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           VireoDisplay             *self)
{
  pointer_moved (self, x, y);
}

static guint
button_index (guint button)
{
  switch (button)
    {
    case GDK_BUTTON_PRIMARY:   return 0;
    case GDK_BUTTON_SECONDARY: return 1;
    case GDK_BUTTON_MIDDLE:    return 2;
    case 8:                    return 3;
    case 9:                    return 4;
    default:                   return G_MAXUINT;
    }
}

static void
send_button (VireoDisplay *self,
             guint         button,
             gboolean      pressed)
{
  static const guint codes[] = { BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA };
  guint i = button_index (button);

  if (i == G_MAXUINT || self->machine == NULL)
    return;
  if (pressed)
    self->buttons_down |= 1u << i;
  else if (self->buttons_down & (1u << i))
    self->buttons_down &= ~(1u << i);
  else
    return;
  vr_machine_input_button (self->machine, codes[i], pressed);
}

static void
on_pressed (GtkGestureClick *gesture,
            int              n_press,
            double           x,
            double           y,
            VireoDisplay    *self)
{
  guint button = gtk_gesture_single_get_current_button (GTK_GESTURE_SINGLE (gesture));
  GdkEvent *event = gtk_event_controller_get_current_event (GTK_EVENT_CONTROLLER (gesture));
  gboolean was_captured = self->captured;

  gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_CLAIMED);
  if (self->machine == NULL)
    {
      gtk_widget_grab_focus (GTK_WIDGET (self));
      return;
    }
  vireo_display_capture (self, event);
  /* In relative mode the click that captures is not the guest's. */
  if (!was_captured && vireo_display_get_relative_pointer (self))
    return;
  pointer_moved (self, x, y);
  send_button (self, button, TRUE);
}

static void
on_released (GtkGestureClick *gesture,
             int              n_press,
             double           x,
             double           y,
             VireoDisplay    *self)
{
  guint button = gtk_gesture_single_get_current_button (GTK_GESTURE_SINGLE (gesture));

  pointer_moved (self, x, y);
  send_button (self, button, FALSE);
}

static gboolean
on_scroll (GtkEventControllerScroll *controller,
           double                    dx,
           double                    dy,
           VireoDisplay             *self)
{
  int clicks = (int) (dy > 0 ? dy + 0.5 : dy - 0.5);

  if (self->machine == NULL)
    return FALSE;
  if (clicks != 0)
    vr_machine_input_wheel (self->machine, -clicks);
  return TRUE;
}

/* -------------------------------------------------------------------------------------------
 * Frames: screenshots, recording, cursor
 */

static GBytes *
snapshot_frame (VireoDisplay  *self,
                VrDisplayMode *mode)
{
  VrDisplay *display = vireo_display_view_get_source (self->view);

  if (display == NULL)
    return NULL;
  return vr_display_snapshot (display, mode);
}

GdkTexture *
vireo_display_get_frame (VireoDisplay *self)
{
  g_autoptr (GBytes) bytes = NULL;
  VrDisplayMode mode;
  guint8 *data;
  gsize size;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), NULL);

  bytes = snapshot_frame (self, &mode);
  if (bytes == NULL || mode.width == 0 || mode.height == 0)
    return NULL;
  /* XRGB: make the X byte an opaque alpha for GDK_MEMORY_B8G8R8A8_PREMULTIPLIED (GTK 4.8
   * has no B8G8R8X8). */
  data = g_bytes_unref_to_data (g_steal_pointer (&bytes), &size);
  if (size < (gsize) mode.width * 4 * mode.height)
    {
      g_free (data);
      return NULL;
    }
  for (gsize i = 3; i < (gsize) mode.width * 4 * mode.height; i += 4)
    data[i] = 0xff;
  bytes = g_bytes_new_take (data, size);
  return gdk_memory_texture_new ((int) mode.width, (int) mode.height,
                                 GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes,
                                 (gsize) mode.width * 4);
}

static gboolean
save_png (GdkTexture    *texture,
          GFile         *file,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr (GBytes) png = gdk_texture_save_to_png_bytes (texture);

  return g_file_replace_contents (file, g_bytes_get_data (png, NULL), g_bytes_get_size (png),
                                  NULL, FALSE, G_FILE_CREATE_REPLACE_DESTINATION, NULL,
                                  cancellable, error);
}

static GdkTexture *
frame_or_error (VireoDisplay  *self,
                GError       **error)
{
  GdkTexture *texture = vireo_display_get_frame (self);

  if (texture == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 _("The machine shows nothing yet: there is no screen to save"));
  return texture;
}

gboolean
vireo_display_screenshot (VireoDisplay  *self,
                          GFile         *file,
                          GError       **error)
{
  g_autoptr (GdkTexture) texture = NULL;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);

  texture = frame_or_error (self, error);
  return texture != NULL && save_png (texture, file, NULL, error);
}

typedef struct
{
  GdkTexture *texture;
  GFile      *file;
} ScreenshotData;

static void
screenshot_data_free (gpointer data)
{
  ScreenshotData *sd = data;

  g_clear_object (&sd->texture);
  g_clear_object (&sd->file);
  g_free (sd);
}

static void
screenshot_thread (GTask        *task,
                   gpointer      source_object,
                   gpointer      task_data,
                   GCancellable *cancellable)
{
  ScreenshotData *sd = task_data;
  g_autoptr (GError) error = NULL;

  if (save_png (sd->texture, sd->file, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
}

void
vireo_display_screenshot_async (VireoDisplay        *self,
                                GFile               *file,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GError) error = NULL;
  ScreenshotData *sd;
  GdkTexture *texture;

  g_return_if_fail (VIREO_IS_DISPLAY (self));
  g_return_if_fail (G_IS_FILE (file));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_display_screenshot_async);
  /* The frame is taken now, on this thread; encoding and writing happen on a worker. */
  texture = frame_or_error (self, &error);
  if (texture == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  sd = g_new0 (ScreenshotData, 1);
  sd->texture = texture;
  sd->file = g_object_ref (file);
  g_task_set_task_data (task, sd, screenshot_data_free);
  g_task_run_in_thread (task, screenshot_thread);
}

gboolean
vireo_display_screenshot_finish (VireoDisplay  *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                        == vireo_display_screenshot_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
record_frame (VireoDisplay *self)
{
  g_autoptr (GBytes) bytes = NULL;
  VrDisplayMode mode;
  gint64 now = g_get_monotonic_time ();

  if (self->recorder == NULL)
    return;
  bytes = snapshot_frame (self, &mode);
  if (bytes == NULL || mode.width == 0 || mode.height == 0)
    return;
  vireo_recorder_push (self->recorder, bytes, mode.width, mode.height, mode.width * 4, now);
  self->last_push_us = now;
}

static void
update_recording_label (VireoDisplay *self)
{
  g_autofree char *text = NULL;
  gint64 seconds = (g_get_monotonic_time () - self->recording_start_us) / G_USEC_PER_SEC;

  /* Translators: elapsed recording time, minutes:seconds */
  text = g_strdup_printf (_("%d:%02d"), (int) (seconds / 60), (int) (seconds % 60));
  gtk_label_set_label (self->recording_label, text);
}

static gboolean
on_recording_tick (gpointer user_data)
{
  VireoDisplay *self = user_data;

  /* A guest that draws nothing still gets a frame now and then, so that players show the
   * right duration and the picture. */
  if (g_get_monotonic_time () - self->last_push_us >= RECORD_IDLE_US)
    record_frame (self);
  update_recording_label (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING_TIME]);
  return G_SOURCE_CONTINUE;
}

gboolean
vireo_display_start_recording (VireoDisplay  *self,
                               GFile         *file,
                               GError       **error)
{
  g_autoptr (VireoRecorder) recorder = NULL;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);

  if (self->recorder != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("A recording is already running"));
      return FALSE;
    }
  if (vireo_display_view_get_source (self->view) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("This machine has no screen to record"));
      return FALSE;
    }
  recorder = vireo_recorder_new (file, error);
  if (recorder == NULL)
    return FALSE;

  self->recorder = g_steal_pointer (&recorder);
  self->recording_start_us = g_get_monotonic_time ();
  self->last_push_us = 0;
  record_frame (self);
  self->recording_timer = g_timeout_add (250, on_recording_tick, self);
  update_recording_label (self);
  gtk_widget_set_visible (self->recording_box, TRUE);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
  return TRUE;
}

gboolean
vireo_display_stop_recording (VireoDisplay  *self,
                              GError       **error)
{
  g_autoptr (VireoRecorder) recorder = NULL;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);

  if (self->recorder == NULL)
    return TRUE;
  /* The picture as it is now closes the recording. */
  record_frame (self);
  recorder = g_steal_pointer (&self->recorder);
  g_clear_handle_id (&self->recording_timer, g_source_remove);
  ok = vireo_recorder_stop (recorder, error);
  if (self->recording_box != NULL)
    gtk_widget_set_visible (self->recording_box, FALSE);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECORDING_TIME]);
  return ok;
}

gboolean
vireo_display_get_recording (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  return self->recorder != NULL;
}

double
vireo_display_get_recording_time (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), 0);
  if (self->recorder == NULL)
    return 0;
  return (g_get_monotonic_time () - self->recording_start_us) / (double) G_USEC_PER_SEC;
}

guint64
vireo_display_get_recorded_frames (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), 0);
  return self->recorder ? vireo_recorder_get_frames (self->recorder) : 0;
}

static void
load_guest_cursor (VireoDisplay *self)
{
  VrDisplay *display = vireo_display_view_get_source (self->view);
  g_autoptr (GBytes) pixels = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  uint32_t width = 0, height = 0;
  int32_t hot_x = 0, hot_y = 0;

  g_clear_object (&self->guest_cursor);
  if (display != NULL
      && vr_display_get_cursor (display, &pixels, &width, &height, &hot_x, &hot_y)
      && pixels != NULL && width > 0 && height > 0 && width <= 256 && height <= 256
      && g_bytes_get_size (pixels) >= (gsize) width * height * 4)
    {
      /* ARGB8888 premultiplied, little endian: B G R A in memory. */
      texture = gdk_memory_texture_new ((int) width, (int) height,
                                        GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, pixels,
                                        (gsize) width * 4);
      self->guest_cursor = gdk_cursor_new_from_texture (texture,
                                                        CLAMP (hot_x, 0, (int) width - 1),
                                                        CLAMP (hot_y, 0, (int) height - 1),
                                                        NULL);
    }
  update_cursor (self);
}

static void
on_view_update (VireoDisplayView *view,
                guint             flags,
                VireoDisplay     *self)
{
  if (flags & VR_DISPLAY_UPDATE_CURSOR)
    load_guest_cursor (self);
  if (self->recorder != NULL && (flags & (VR_DISPLAY_UPDATE_MODE | VR_DISPLAY_UPDATE_DAMAGE))
      && g_get_monotonic_time () - self->last_push_us >= G_USEC_PER_SEC / VIREO_RECORDER_FPS)
    record_frame (self);
}

static void
on_view_notify (GObject      *object,
                GParamSpec   *pspec,
                VireoDisplay *self)
{
  if (g_str_equal (pspec->name, "uploaded-rows"))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UPLOADED_ROWS]);
  else if (g_str_equal (pspec->name, "uses-gl"))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USES_GL]);
}

/* -------------------------------------------------------------------------------------------
 * Actions
 */

static void
action_send_key (GSimpleAction *action,
                 GVariant      *parameter,
                 gpointer       user_data)
{
  VireoDisplay *self = user_data;

  if (!vireo_display_send_key_combo (self, g_variant_get_string (parameter, NULL)))
    g_warning ("send-key: unknown combo “%s”", g_variant_get_string (parameter, NULL));
}

static void
action_release (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  vireo_display_release (VIREO_DISPLAY (user_data));
}

static void
action_scale_mode (GSimpleAction *action,
                   GVariant      *value,
                   gpointer       user_data)
{
  VireoDisplay *self = user_data;
  const char *mode = g_variant_get_string (value, NULL);

  g_simple_action_set_state (action, value);
  vireo_display_set_scale_mode (self, g_str_equal (mode, "original")
                                      ? VIREO_SCALE_MODE_ORIGINAL : VIREO_SCALE_MODE_FIT);
}

static const GActionEntry action_entries[] = {
  { .name = "send-key", .activate = action_send_key, .parameter_type = "s" },
  { .name = "release", .activate = action_release },
  { .name = "scale-mode", .parameter_type = "s", .state = "'fit'",
    .change_state = action_scale_mode },
};

GActionGroup *
vireo_display_get_action_group (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), NULL);
  return G_ACTION_GROUP (self->actions);
}

/* -------------------------------------------------------------------------------------------
 * Machine and source
 */

void
vireo_display_set_source (VireoDisplay *self,
                          VrDisplay    *display)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (display != vireo_display_view_get_source (self->view))
    {
      vireo_display_stop_recording (self, NULL);
      vireo_display_view_set_source (self->view, display);
      load_guest_cursor (self);
    }
}

VrDisplay *
vireo_display_get_source (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), NULL);
  return vireo_display_view_get_source (self->view);
}

void
vireo_display_set_machine (VireoDisplay *self,
                           VrMachine    *machine)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (self->machine == machine)
    return;
  release_all_keys (self);
  release_all_buttons (self);
  vireo_display_release (self);
  vireo_display_set_source (self, NULL);
  self->machine = machine;
  self->have_last = FALSE;
  if (machine != NULL)
    vireo_display_set_source (self, vr_machine_get_display (machine));
}

VrMachine *
vireo_display_get_machine (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), NULL);
  return self->machine;
}

/* -------------------------------------------------------------------------------------------
 * Properties
 */

/* The view goes in the scrolled window only when it can be bigger than the widget (1:1);
 * fitted, straight in the overlay: a clip around the picture (the scrolled window's
 * viewport) makes GSK draw it with a slower shader, and a fitted picture needs none. */
static void
place_view (VireoDisplay *self)
{
  GtkWidget *view = GTK_WIDGET (self->view);
  GtkWidget *scroller = GTK_WIDGET (self->scroller);
  gboolean scroll = self->scale_mode == VIREO_SCALE_MODE_ORIGINAL;
  g_autoptr (GtkWidget) keep = NULL;

  if (scroll == (gtk_widget_get_parent (view) != self->overlay))
    return;
  keep = g_object_ref (view);
  if (scroll)
    {
      gtk_overlay_set_child (GTK_OVERLAY (self->overlay), NULL);
      gtk_scrolled_window_set_child (self->scroller, view);
      gtk_overlay_set_child (GTK_OVERLAY (self->overlay), scroller);
    }
  else
    {
      gtk_scrolled_window_set_child (self->scroller, NULL);
      gtk_overlay_set_child (GTK_OVERLAY (self->overlay), view);
    }
}

void
vireo_display_set_scale_mode (VireoDisplay   *self,
                              VireoScaleMode  mode)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (self->scale_mode == mode)
    return;
  self->scale_mode = mode;
  vireo_display_view_set_scale_mode (self->view, mode);
  gtk_scrolled_window_set_policy (self->scroller,
                                  mode == VIREO_SCALE_MODE_ORIGINAL ? GTK_POLICY_AUTOMATIC
                                                                    : GTK_POLICY_NEVER,
                                  mode == VIREO_SCALE_MODE_ORIGINAL ? GTK_POLICY_AUTOMATIC
                                                                    : GTK_POLICY_NEVER);
  place_view (self);
  g_simple_action_set_state (G_SIMPLE_ACTION (g_action_map_lookup_action (
                               G_ACTION_MAP (self->actions), "scale-mode")),
                             g_variant_new_string (mode == VIREO_SCALE_MODE_ORIGINAL
                                                   ? "original" : "fit"));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SCALE_MODE]);
}

VireoScaleMode
vireo_display_get_scale_mode (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), VIREO_SCALE_MODE_FIT);
  return self->scale_mode;
}

void
vireo_display_set_pointer_mode (VireoDisplay     *self,
                                VireoPointerMode  mode)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (self->pointer_mode == mode)
    return;
  self->pointer_mode = mode;
  self->have_last = FALSE;
  update_cursor (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_POINTER_MODE]);
}

VireoPointerMode
vireo_display_get_pointer_mode (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), VIREO_POINTER_MODE_AUTO);
  return self->pointer_mode;
}

void
vireo_display_set_force_fallback (VireoDisplay *self,
                                  gboolean      force)
{
  g_return_if_fail (VIREO_IS_DISPLAY (self));

  if (vireo_display_view_get_force_fallback (self->view) == !!force)
    return;
  vireo_display_view_set_force_fallback (self->view, force);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FORCE_FALLBACK]);
}

gboolean
vireo_display_get_force_fallback (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  return vireo_display_view_get_force_fallback (self->view);
}

gboolean
vireo_display_get_uses_gl (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  return vireo_display_view_get_uses_gl (self->view);
}

guint64
vireo_display_get_uploaded_rows (VireoDisplay *self)
{
  g_return_val_if_fail (VIREO_IS_DISPLAY (self), 0);
  return vireo_display_view_get_uploaded_rows (self->view);
}

void
vireo_display_get_mode_size (VireoDisplay *self,
                             guint        *width,
                             guint        *height)
{
  VrDisplayMode mode;

  g_return_if_fail (VIREO_IS_DISPLAY (self));

  mode = vireo_display_view_get_mode (self->view);
  if (width)
    *width = mode.format == VR_PIXEL_FORMAT_NONE ? 0 : mode.width;
  if (height)
    *height = mode.format == VR_PIXEL_FORMAT_NONE ? 0 : mode.height;
}

gboolean
vireo_display_get_picture_area (VireoDisplay    *self,
                                graphene_rect_t *area)
{
  graphene_rect_t view_area;
  graphene_point_t origin;

  g_return_val_if_fail (VIREO_IS_DISPLAY (self), FALSE);
  g_return_val_if_fail (area != NULL, FALSE);

  if (!vireo_display_view_get_picture_area (self->view, &view_area))
    return FALSE;
#if GTK_CHECK_VERSION(4, 12, 0)
  if (!gtk_widget_compute_point (GTK_WIDGET (self->view), GTK_WIDGET (self),
                                 &view_area.origin, &origin))
    return FALSE;
#else
  {
    double x, y;

    if (!gtk_widget_translate_coordinates (GTK_WIDGET (self->view), GTK_WIDGET (self),
                                           view_area.origin.x, view_area.origin.y, &x, &y))
      return FALSE;
    graphene_point_init (&origin, (float) x, (float) y);
  }
#endif
  graphene_rect_init (area, origin.x, origin.y, view_area.size.width, view_area.size.height);
  return TRUE;
}

/* -------------------------------------------------------------------------------------------
 * GtkWidget
 */

static gboolean
send_preferred_size (gpointer user_data)
{
  VireoDisplay *self = user_data;
  VrDisplay *display = vireo_display_view_get_source (self->view);

  self->preferred_size_timeout = 0;
  if (display != NULL && self->preferred_width > 0 && self->preferred_height > 0)
    vr_display_set_preferred_size (display, (uint32_t) self->preferred_width,
                                   (uint32_t) self->preferred_height);
  return G_SOURCE_REMOVE;
}

static void
vireo_display_size_allocate (GtkWidget *widget,
                             int        width,
                             int        height,
                             int        baseline)
{
  VireoDisplay *self = VIREO_DISPLAY (widget);
  int scale = gtk_widget_get_scale_factor (widget);

  gtk_widget_size_allocate (self->overlay, &(GtkAllocation) { 0, 0, width, height }, baseline);

  /* A guest that can follow the window (virtio-gpu) learns its size in device pixels, once
   * the user has stopped resizing. */
  if (width * scale != self->preferred_width || height * scale != self->preferred_height)
    {
      self->preferred_width = width * scale;
      self->preferred_height = height * scale;
      g_clear_handle_id (&self->preferred_size_timeout, g_source_remove);
      self->preferred_size_timeout = g_timeout_add (PREFERRED_SIZE_DELAY, send_preferred_size,
                                                    self);
    }
}

static void
vireo_display_measure (GtkWidget      *widget,
                       GtkOrientation  orientation,
                       int             for_size,
                       int            *minimum,
                       int            *natural,
                       int            *minimum_baseline,
                       int            *natural_baseline)
{
  VireoDisplay *self = VIREO_DISPLAY (widget);

  gtk_widget_measure (self->overlay, orientation, for_size, minimum, natural, NULL, NULL);
}

static void
vireo_display_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  VireoDisplay *self = VIREO_DISPLAY (object);

  switch (prop_id)
    {
    case PROP_SCALE_MODE:
      g_value_set_enum (value, self->scale_mode);
      break;
    case PROP_POINTER_MODE:
      g_value_set_enum (value, self->pointer_mode);
      break;
    case PROP_FORCE_FALLBACK:
      g_value_set_boolean (value, vireo_display_get_force_fallback (self));
      break;
    case PROP_USES_GL:
      g_value_set_boolean (value, vireo_display_get_uses_gl (self));
      break;
    case PROP_UPLOADED_ROWS:
      g_value_set_uint64 (value, vireo_display_get_uploaded_rows (self));
      break;
    case PROP_CAPTURED:
      g_value_set_boolean (value, self->captured);
      break;
    case PROP_RECORDING:
      g_value_set_boolean (value, self->recorder != NULL);
      break;
    case PROP_RECORDING_TIME:
      g_value_set_double (value, vireo_display_get_recording_time (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_display_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  VireoDisplay *self = VIREO_DISPLAY (object);

  switch (prop_id)
    {
    case PROP_SCALE_MODE:
      vireo_display_set_scale_mode (self, g_value_get_enum (value));
      break;
    case PROP_POINTER_MODE:
      vireo_display_set_pointer_mode (self, g_value_get_enum (value));
      break;
    case PROP_FORCE_FALLBACK:
      vireo_display_set_force_fallback (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_display_dispose (GObject *object)
{
  VireoDisplay *self = VIREO_DISPLAY (object);
  g_autoptr (GError) error = NULL;

  if (!vireo_display_stop_recording (self, &error))
    g_warning ("%s", error->message);
  if (self->machine != NULL)
    {
      release_all_keys (self);
      release_all_buttons (self);
    }
  vireo_display_release (self);
  if (self->view != NULL)
    vireo_display_view_set_source (self->view, NULL);
  self->machine = NULL;
  g_clear_handle_id (&self->hint_timeout, g_source_remove);
  g_clear_handle_id (&self->preferred_size_timeout, g_source_remove);
  g_clear_object (&self->guest_cursor);
  g_clear_object (&self->actions);

  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_DISPLAY);
  self->recording_box = NULL;
  g_clear_object (&self->scroller_ref);

  G_OBJECT_CLASS (vireo_display_parent_class)->dispose (object);
}

static void
vireo_display_class_init (VireoDisplayClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = vireo_display_get_property;
  object_class->set_property = vireo_display_set_property;
  object_class->dispose = vireo_display_dispose;

  widget_class->measure = vireo_display_measure;
  widget_class->size_allocate = vireo_display_size_allocate;

  properties[PROP_SCALE_MODE] =
    g_param_spec_enum ("scale-mode", NULL, NULL, VIREO_TYPE_SCALE_MODE, VIREO_SCALE_MODE_FIT,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_POINTER_MODE] =
    g_param_spec_enum ("pointer-mode", NULL, NULL, VIREO_TYPE_POINTER_MODE,
                       VIREO_POINTER_MODE_AUTO,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_FORCE_FALLBACK] =
    g_param_spec_boolean ("force-fallback", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_USES_GL] =
    g_param_spec_boolean ("uses-gl", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_UPLOADED_ROWS] =
    g_param_spec_uint64 ("uploaded-rows", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_CAPTURED] =
    g_param_spec_boolean ("captured", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_RECORDING] =
    g_param_spec_boolean ("recording", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_RECORDING_TIME] =
    g_param_spec_double ("recording-time", NULL, NULL, 0, G_MAXDOUBLE, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (VIREO_TYPE_DISPLAY_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-display.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, overlay);
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, scroller);
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, view);
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, hint_revealer);
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, recording_box);
  gtk_widget_class_bind_template_child (widget_class, VireoDisplay, recording_label);

  gtk_widget_class_set_css_name (widget_class, "vireo-display");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
ensure_css (void)
{
  static gsize loaded = 0;

  if (g_once_init_enter (&loaded))
    {
      g_autoptr (GtkCssProvider) provider = gtk_css_provider_new ();

      gtk_css_provider_load_from_resource (provider, "/org/vireo/Vireo/ui/vireo-display.css");
      gtk_style_context_add_provider_for_display (gdk_display_get_default (),
                                                  GTK_STYLE_PROVIDER (provider),
                                                  GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
      g_once_init_leave (&loaded, 1);
    }
}

static void
vireo_display_init (VireoDisplay *self)
{
  GtkEventController *controller;
  GtkGesture *click;

  gtk_widget_init_template (GTK_WIDGET (self));
  ensure_css ();

  gtk_scrolled_window_set_policy (self->scroller, GTK_POLICY_NEVER, GTK_POLICY_NEVER);
  self->scroller_ref = g_object_ref (GTK_WIDGET (self->scroller));
  place_view (self);
  g_signal_connect (self->view, "update", G_CALLBACK (on_view_update), self);
  g_signal_connect (self->view, "notify", G_CALLBACK (on_view_notify), self);

  self->actions = g_simple_action_group_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self->actions), action_entries,
                                   G_N_ELEMENTS (action_entries), self);
  gtk_widget_insert_action_group (GTK_WIDGET (self), "display", G_ACTION_GROUP (self->actions));

  /* Keys in the capture phase, before the window's shortcuts and focus keys see them. */
  controller = gtk_event_controller_key_new ();
  gtk_event_controller_set_propagation_phase (controller, GTK_PHASE_CAPTURE);
  g_signal_connect (controller, "key-pressed", G_CALLBACK (on_key_pressed), self);
  g_signal_connect (controller, "key-released", G_CALLBACK (on_key_released), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  controller = gtk_event_controller_focus_new ();
  g_signal_connect (controller, "leave", G_CALLBACK (on_focus_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), controller);

  controller = gtk_event_controller_motion_new ();
  g_signal_connect (controller, "enter", G_CALLBACK (on_motion), self);
  g_signal_connect (controller, "motion", G_CALLBACK (on_motion), self);
  gtk_widget_add_controller (GTK_WIDGET (self->view), controller);

  click = gtk_gesture_click_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (click), 0);
  g_signal_connect (click, "pressed", G_CALLBACK (on_pressed), self);
  g_signal_connect (click, "released", G_CALLBACK (on_released), self);
  gtk_widget_add_controller (GTK_WIDGET (self->view), GTK_EVENT_CONTROLLER (click));

  controller = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL
                                                | GTK_EVENT_CONTROLLER_SCROLL_DISCRETE);
  g_signal_connect (controller, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self->view), controller);
}

GtkWidget *
vireo_display_new (void)
{
  return g_object_new (VIREO_TYPE_DISPLAY, NULL);
}
