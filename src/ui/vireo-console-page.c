/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-console-page"

#include "config.h"

#include "vireo-console-page.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <vte/vte.h>

/* How much of serial.log is shown when the page opens. */
#define LOG_TAIL (256 * 1024)

struct _VireoConsolePage
{
  GtkWidget     parent_instance;

  VireoMachine *machine;
  GSignalGroup *signals;
  GCancellable *cancellable;

  int           fd;          /* the pty while connected, else -1 */
  guint         watch_id;
  goffset       log_offset;  /* how much of serial.log the terminal has shown */
  gboolean      last_cr;     /* the last byte fed was '\r' (for LF → CRLF) */

  VteTerminal  *terminal;
  GtkLabel     *status_label;
};

G_DEFINE_FINAL_TYPE (VireoConsolePage, vireo_console_page, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  PROP_CONNECTED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Serial output is raw: a guest that ends lines with "\n" alone would draw a staircase.
 * Lone LFs become CRLF, as a serial terminal program does. */
static void
feed (VireoConsolePage *self, const char *data, gsize len)
{
  g_autoptr(GByteArray) out = g_byte_array_sized_new (len + len / 8 + 2);
  static const guint8 crlf[] = { '\r', '\n' };

  for (gsize i = 0; i < len; i++)
    {
      if (data[i] == '\n' && !self->last_cr)
        g_byte_array_append (out, crlf, 2);
      else
        g_byte_array_append (out, (const guint8 *) &data[i], 1);
      self->last_cr = data[i] == '\r';
    }
  vte_terminal_feed (self->terminal, (const char *) out->data, out->len);
}

static void
feed_note (VireoConsolePage *self, const char *note)
{
  g_autofree char *line = g_strdup_printf ("%s\033[2m── %s ──\033[0m\r\n",
                                           self->last_cr ? "" : "\r\n", note);

  vte_terminal_feed (self->terminal, line, -1);
  self->last_cr = FALSE;
}

/* Feeds serial.log from @from (or its last LOG_TAIL bytes when @from is negative) to its
 * end. Small reads, on the main thread: the file is local and the tail is bounded. */
static void
feed_log (VireoConsolePage *self, goffset from)
{
  g_autofree char *path = NULL;
  g_autofree char *buf = NULL;
  int fd;
  struct stat st;
  gsize len;
  gssize n;

  if (self->machine == NULL)
    return;
  path = vireo_machine_dup_serial_log_path (self->machine);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      self->log_offset = 0;
      return;
    }
  if (fstat (fd, &st) < 0)
    {
      close (fd);
      return;
    }
  if (from < 0 || from > st.st_size)   /* first time, or the log was rotated */
    from = MAX (0, st.st_size - LOG_TAIL);
  len = (gsize) (st.st_size - from);
  buf = g_malloc (len + 1);
  n = len > 0 ? pread (fd, buf, len, from) : 0;
  close (fd);
  if (n > 0)
    feed (self, buf, (gsize) n);
  self->log_offset = from + MAX (n, 0);
}

static void
update_status (VireoConsolePage *self)
{
  const char *text;

  if (self->machine == NULL)
    text = "";
  else if (self->fd >= 0)
    text = _("Connected to the serial port. What you type goes to the machine.");
  else if (vireo_machine_is_active (self->machine))
    text = _("The machine has no serial port to connect to.");
  else
    text = _("The machine is off. Start it to use its serial console; what it printed "
             "before is shown above.");
  gtk_label_set_label (self->status_label, text);
}

static void
disconnect_pty (VireoConsolePage *self)
{
  if (self->fd < 0)
    return;
  g_clear_handle_id (&self->watch_id, g_source_remove);
  close (self->fd);
  self->fd = -1;
  update_status (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTED]);
}

static gboolean
pty_readable_cb (int          fd,
                 GIOCondition condition,
                 gpointer     user_data)
{
  VireoConsolePage *self = user_data;
  char buf[4096];

  for (int i = 0; i < 16; i++)
    {
      gssize n = read (fd, buf, sizeof buf);

      if (n > 0)
        {
          feed (self, buf, (gsize) n);
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
      /* EOF or EIO: the machine went away. */
      self->watch_id = 0;
      disconnect_pty (self);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
connect_pty (VireoConsolePage *self, const char *pty)
{
  VireoMachineConfig *config = vireo_machine_get_config (self->machine);
  g_autofree char *started = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *time = g_date_time_format (now, "%X");
  int fd;

  disconnect_pty (self);
  fd = open (pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      g_autofree char *msg = g_strdup_printf (_("Cannot open the serial port %s: %s"), pty,
                                              g_strerror (saved));

      gtk_label_set_label (self->status_label, msg);
      return;
    }

  /* Translators: a line in the console when the machine starts; %s is the time */
  started = g_strdup_printf (_("Started at %s"), time);
  feed_note (self, started);
  if (config != NULL && config->serial_log)
    {
      /* What the guest printed before we got here is in the log: drop the pty's copy. */
      tcflush (fd, TCIFLUSH);
      feed_log (self, self->log_offset);
    }
  self->fd = fd;
  self->watch_id = g_unix_fd_add (fd, G_IO_IN | G_IO_HUP | G_IO_ERR, pty_readable_cb, self);
  update_status (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTED]);
}

static void
serial_pty_changed_cb (VireoConsolePage *self)
{
  const char *pty = self->machine ? vireo_machine_get_serial_pty (self->machine) : NULL;

  if (pty != NULL)
    connect_pty (self, pty);
  else if (self->fd >= 0)
    {
      /* Whatever was still in the pty is in the log too. */
      pty_readable_cb (self->fd, G_IO_IN, self);
      disconnect_pty (self);
      feed_note (self, _("The machine stopped"));
      {
        g_autofree char *path = vireo_machine_dup_serial_log_path (self->machine);
        struct stat st;

        if (stat (path, &st) == 0)
          self->log_offset = st.st_size;
      }
    }
  update_status (self);
}

static void
terminal_commit_cb (VireoConsolePage *self,
                    const char       *text,
                    guint             size,
                    VteTerminal      *terminal)
{
  if (self->fd < 0 || size == 0)
    return;
  /* A pty takes a line at once; if it is full, the rest is dropped as a UART would. */
  if (write (self->fd, text, size) < 0 && errno != EAGAIN)
    g_debug ("Serial write: %s", g_strerror (errno));
}

void
vireo_console_page_send_text (VireoConsolePage *self,
                              const char       *text)
{
  g_return_if_fail (VIREO_IS_CONSOLE_PAGE (self));
  terminal_commit_cb (self, text, strlen (text), self->terminal);
}

GtkWidget *
vireo_console_page_new (void)
{
  return g_object_new (VIREO_TYPE_CONSOLE_PAGE, NULL);
}

VireoMachine *
vireo_console_page_get_machine (VireoConsolePage *self)
{
  g_return_val_if_fail (VIREO_IS_CONSOLE_PAGE (self), NULL);
  return self->machine;
}

gboolean
vireo_console_page_get_connected (VireoConsolePage *self)
{
  g_return_val_if_fail (VIREO_IS_CONSOLE_PAGE (self), FALSE);
  return self->fd >= 0;
}

char *
vireo_console_page_dup_text (VireoConsolePage *self)
{
  g_return_val_if_fail (VIREO_IS_CONSOLE_PAGE (self), NULL);
  return vte_terminal_get_text (self->terminal, NULL, NULL, NULL);
}

void
vireo_console_page_set_machine (VireoConsolePage *self,
                                VireoMachine     *machine)
{
  g_return_if_fail (VIREO_IS_CONSOLE_PAGE (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (self->machine == machine)
    return;
  disconnect_pty (self);
  g_set_object (&self->machine, machine);
  g_signal_group_set_target (self->signals, machine);
  vte_terminal_reset (self->terminal, TRUE, TRUE);
  self->last_cr = TRUE;
  self->log_offset = -1;
  feed_log (self, -1);
  serial_pty_changed_cb (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

static void
copy_action (GtkWidget  *widget,
             const char *name,
             GVariant   *param)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (widget);

  vte_terminal_copy_clipboard_format (self->terminal, VTE_FORMAT_TEXT);
}

static void
paste_action (GtkWidget  *widget,
              const char *name,
              GVariant   *param)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (widget);

  vte_terminal_paste_clipboard (self->terminal);
}

static void
clear_action (GtkWidget  *widget,
              const char *name,
              GVariant   *param)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (widget);

  vte_terminal_reset (self->terminal, TRUE, TRUE);
  self->last_cr = TRUE;
}

static void
vireo_console_page_dispose (GObject *object)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (object);

  disconnect_pty (self);
  g_signal_group_set_target (self->signals, NULL);
  g_clear_object (&self->signals);
  g_clear_object (&self->machine);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_CONSOLE_PAGE);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_console_page_parent_class)->dispose (object);
}

static void
vireo_console_page_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      g_value_set_object (value, self->machine);
      break;
    case PROP_CONNECTED:
      g_value_set_boolean (value, self->fd >= 0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_console_page_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  VireoConsolePage *self = VIREO_CONSOLE_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_console_page_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_console_page_class_init (VireoConsolePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_console_page_dispose;
  object_class->get_property = vireo_console_page_get_property;
  object_class->set_property = vireo_console_page_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (VTE_TYPE_TERMINAL);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-console-page.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoConsolePage, terminal);
  gtk_widget_class_bind_template_child (widget_class, VireoConsolePage, status_label);
  gtk_widget_class_bind_template_callback (widget_class, terminal_commit_cb);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);

  gtk_widget_class_install_action (widget_class, "console.copy", NULL, copy_action);
  gtk_widget_class_install_action (widget_class, "console.paste", NULL, paste_action);
  gtk_widget_class_install_action (widget_class, "console.clear", NULL, clear_action);
}

static void
vireo_console_page_init (VireoConsolePage *self)
{
  GtkEventController *shortcuts;

  self->fd = -1;
  self->last_cr = TRUE;
  gtk_widget_init_template (GTK_WIDGET (self));

  /* In the capture phase: the terminal would otherwise take the keys for the guest. */
  shortcuts = gtk_shortcut_controller_new ();
  gtk_event_controller_set_propagation_phase (shortcuts, GTK_PHASE_CAPTURE);
  gtk_shortcut_controller_add_shortcut (
    GTK_SHORTCUT_CONTROLLER (shortcuts),
    gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_C, GDK_CONTROL_MASK | GDK_SHIFT_MASK),
                      gtk_named_action_new ("console.copy")));
  gtk_shortcut_controller_add_shortcut (
    GTK_SHORTCUT_CONTROLLER (shortcuts),
    gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_V, GDK_CONTROL_MASK | GDK_SHIFT_MASK),
                      gtk_named_action_new ("console.paste")));
  gtk_widget_add_controller (GTK_WIDGET (self), shortcuts);

  self->signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->signals, "notify::serial-pty",
                                  G_CALLBACK (serial_pty_changed_cb), self);
  g_signal_group_connect_swapped (self->signals, "notify::state", G_CALLBACK (update_status),
                                  self);
}
