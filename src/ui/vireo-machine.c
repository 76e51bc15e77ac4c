/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-machine"

#include "config.h"

#include "vireo-machine.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/vr-snapshot.h"
#include "vireo-atomic-file.h"

/* serial.log grows across runs; past this size it moves to serial.log.old at the next
 * start, so at most about twice this is kept. */
#define SERIAL_LOG_MAX   (4 * 1024 * 1024)
#define STATS_INTERVAL_S 1

struct _VireoMachine
{
  GObject             parent_instance;

  char               *dir;
  char               *uuid;           /* the folder's name for a broken machine */
  VireoMachineConfig *config;         /* NULL when broken */
  char               *broken_reason;
  char               *problem;        /* a file it needs is missing, or NULL */
  GError             *problem_error;  /* the same, as the error that said so */
  char               *boot_failure;   /* the firmware found nothing to boot: its words */

  VireoMachineState   state;
  VrMachine          *vr;             /* while one exists */
  GCancellable       *start_cancellable;
  gboolean            stop_requested; /* force_off while starting */
  guint               teardown_id;

  VireoSnapshotStore *snapshots;      /* created when first asked for */
  VireoSnapshotOp     snapshot_op;
  gboolean            teardown_pending; /* the engine stopped during a snapshot operation */
  gboolean            has_saved_state;
  char               *saved_state_error;
  gboolean            resumed;

  guint               stats_id;
  gint64              stats_time;     /* monotonic, µs */
  guint64            *vcpu_times;     /* ns, at stats_time */
  double             *vcpu_usage;
  guint               n_vcpus;
  double              cpu_usage;
  guint64             memory_usage;
};

G_DEFINE_FINAL_TYPE (VireoMachine, vireo_machine, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (VireoMachineState, vireo_machine_state,
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_STOPPED, "stopped"),
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_STARTING, "starting"),
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_RUNNING, "running"),
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_PAUSED, "paused"),
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_STOPPING, "stopping"),
                    G_DEFINE_ENUM_VALUE (VIREO_MACHINE_STATE_BROKEN, "broken"))

G_DEFINE_ENUM_TYPE (VireoSnapshotOp, vireo_snapshot_op,
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_NONE, "none"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_TAKE, "take"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_REVERT, "revert"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_DELETE, "delete"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_SAVE_STATE, "save-state"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_OP_DISCARD_STATE, "discard-state"))

G_DEFINE_QUARK (vireo-machine-error-quark, vireo_machine_error)

enum
{
  PROP_0,
  PROP_NAME,
  PROP_UUID,
  PROP_DIR,
  PROP_STATE,
  PROP_BROKEN_REASON,
  PROP_PROBLEM,
  PROP_CONFIG,
  PROP_CPU_USAGE,
  PROP_MEMORY_USAGE,
  PROP_DISK_READ_BYTES,
  PROP_DISK_WRITE_BYTES,
  PROP_NET_RX_BYTES,
  PROP_NET_TX_BYTES,
  PROP_SERIAL_PTY,
  PROP_THUMBNAIL,
  PROP_VR_MACHINE,
  PROP_SNAPSHOT_OP,
  PROP_HAS_SAVED_STATE,
  PROP_SAVED_STATE_ERROR,
  PROP_RESUMED,
  PROP_BOOT_FAILURE,
  PROP_CDROM,
  N_PROPS
};

enum
{
  STATE_CHANGED,
  ERROR,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

const char *
vireo_machine_state_to_label (VireoMachineState state)
{
  switch (state)
    {
    case VIREO_MACHINE_STATE_STOPPED:
      return C_("machine state", "Stopped");
    case VIREO_MACHINE_STATE_STARTING:
      return C_("machine state", "Starting");
    case VIREO_MACHINE_STATE_RUNNING:
      return C_("machine state", "Running");
    case VIREO_MACHINE_STATE_PAUSED:
      return C_("machine state", "Paused");
    case VIREO_MACHINE_STATE_STOPPING:
      return C_("machine state", "Shutting down");
    case VIREO_MACHINE_STATE_BROKEN:
      return C_("machine state", "Broken");
    default:
      return "";
    }
}

/* ---- state ------------------------------------------------------------------------------ */

static void stats_stop (VireoMachine *self);
static void stats_start (VireoMachine *self);
static void set_boot_failure (VireoMachine *self, const char *message);
static void sync_cdrom (VireoMachine *self);

static void
set_state (VireoMachine *self, VireoMachineState state)
{
  if (self->state == state)
    return;
  g_debug ("%s: %s → %s", self->uuid, vireo_machine_state_to_label (self->state),
           vireo_machine_state_to_label (state));
  self->state = state;
  if (state == VIREO_MACHINE_STATE_RUNNING || state == VIREO_MACHINE_STATE_STOPPING
      || state == VIREO_MACHINE_STATE_PAUSED)
    stats_start (self);
  else
    stats_stop (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[STATE_CHANGED], 0, state);
  /* Off: the disks can be looked at for snapshots made elsewhere. */
  if (state == VIREO_MACHINE_STATE_STOPPED && self->snapshots != NULL)
    vireo_machine_reload_snapshots (self);
}

static void
emit_error (VireoMachine *self, const GError *error)
{
  g_signal_emit (self, signals[ERROR], 0, error);
}

/* Frees the engine's machine and goes to STOPPED. */
static void
teardown (VireoMachine *self)
{
  gboolean had_pty = vireo_machine_get_serial_pty (self) != NULL;
  VrMachine *vr;

  g_clear_handle_id (&self->teardown_id, g_source_remove);
  if (self->snapshot_op != VIREO_SNAPSHOT_OP_NONE && self->vr != NULL)
    {
      /* A snapshot thread uses the engine's machine: it goes when that is done. */
      self->teardown_pending = TRUE;
      return;
    }
  vr = g_steal_pointer (&self->vr);
  if (vr != NULL)
    {
      /* Whoever holds the engine's machine (a display, a thumbnail) lets go of it now,
       * while it still exists. */
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VR_MACHINE]);
      vr_machine_free (vr);
    }
  stats_stop (self);
  self->n_vcpus = 0;
  g_clear_pointer (&self->vcpu_times, g_free);
  g_clear_pointer (&self->vcpu_usage, g_free);
  self->cpu_usage = 0;
  self->memory_usage = 0;
  if (had_pty)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERIAL_PTY]);
  set_boot_failure (self, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CDROM]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CPU_USAGE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MEMORY_USAGE]);
  if (self->state != VIREO_MACHINE_STATE_BROKEN)
    set_state (self, VIREO_MACHINE_STATE_STOPPED);
}

static gboolean
teardown_idle (gpointer data)
{
  VireoMachine *self = data;

  self->teardown_id = 0;
  teardown (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_teardown (VireoMachine *self)
{
  /* Never free the engine's machine from inside its own event callback. */
  if (self->teardown_id == 0)
    self->teardown_id = g_idle_add_full (G_PRIORITY_DEFAULT, teardown_idle,
                                         g_object_ref (self), g_object_unref);
}

static void
vr_event_cb (VrMachine     *vr,
             const VrEvent *event,
             gpointer       user_data)
{
  VireoMachine *self = user_data;

  if (vr != self->vr)
    return;  /* an event of a machine already torn down */

  switch (event->type)
    {
    case VR_EVENT_STATE_CHANGED:
      if (event->state == VR_STATE_RUNNING)
        {
          if (self->state != VIREO_MACHINE_STATE_STOPPING)
            set_state (self, VIREO_MACHINE_STATE_RUNNING);
        }
      else if (event->state == VR_STATE_PAUSED)
        set_state (self, VIREO_MACHINE_STATE_PAUSED);
      else if (event->state == VR_STATE_STOPPED)
        schedule_teardown (self);
      break;

    case VR_EVENT_POWERED_OFF:
      g_debug ("%s: powered off (%s)", self->uuid, vr_stop_reason_to_string (event->reason));
      schedule_teardown (self);
      break;

    case VR_EVENT_GUEST_ERROR:
      {
        g_autoptr(GError) error = g_error_new (VR_ERROR, VR_ERROR_FAILED,
                                               _("The machine stopped because of an error: %s"),
                                               event->message ? event->message : "");
        emit_error (self, error);
        if (event->state == VR_STATE_STOPPED)
          schedule_teardown (self);
      }
      break;

    case VR_EVENT_BOOT_FAILED:
      {
        /* SeaBIOS: "No bootable device.  Retrying in 5 seconds." — one space is enough. */
        g_auto(GStrv) words = g_strsplit_set (event->message ? event->message : "", " \t\r\n",
                                              -1);
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
        g_auto(GStrv) kept = NULL;
        g_autofree char *message = NULL;

        for (guint i = 0; words[i] != NULL; i++)
          if (*words[i] != '\0')
            g_strv_builder_add (builder, words[i]);
        kept = g_strv_builder_end (builder);
        message = g_strjoinv (" ", kept);
        g_debug ("%s: nothing to boot: %s", self->uuid, message);
        /* The firmware tries again after a while, resetting the machine itself: the message
         * stays until the user changes something (a reset, another disc) or it stops. */
        set_boot_failure (self, message);
      }
      break;

    case VR_EVENT_CDROM_CHANGED:
      /* The guest may have ejected the disc itself: machine.conf follows the drive. */
      sync_cdrom (self);
      break;

    case VR_EVENT_RESET:
    default:
      break;
    }
}

/* ---- statistics ------------------------------------------------------------------------- */

static gboolean
stats_tick (gpointer data)
{
  VireoMachine *self = data;
  guint64 times[VR_MAX_CPUS];
  gint64 now = g_get_monotonic_time ();
  unsigned n;
  double total = 0;

  if (self->vr == NULL)
    return G_SOURCE_CONTINUE;

  n = vr_machine_get_vcpu_times (self->vr, times, G_N_ELEMENTS (times));
  n = MIN (n, G_N_ELEMENTS (times));
  if (n > 0)
    {
      if (n != self->n_vcpus)
        {
          self->n_vcpus = n;
          g_free (self->vcpu_times);
          g_free (self->vcpu_usage);
          self->vcpu_times = g_new0 (guint64, n);
          self->vcpu_usage = g_new0 (double, n);
          memcpy (self->vcpu_times, times, n * sizeof times[0]);
          self->stats_time = now;
        }
      else if (now > self->stats_time)
        {
          double wall_ns = (double) (now - self->stats_time) * 1000.0;

          for (unsigned i = 0; i < n; i++)
            {
              /* The counters restart with the VM (a reset): no sample then. */
              double d = times[i] >= self->vcpu_times[i]
                           ? (double) (times[i] - self->vcpu_times[i]) : 0;

              self->vcpu_usage[i] = CLAMP (d * 100.0 / wall_ns, 0.0, 100.0);
              total += self->vcpu_usage[i];
              self->vcpu_times[i] = times[i];
            }
          self->stats_time = now;
          self->cpu_usage = total / n;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CPU_USAGE]);
        }
    }

  self->memory_usage = vr_machine_get_memory_used (self->vr);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MEMORY_USAGE]);
  return G_SOURCE_CONTINUE;
}

static void
stats_start (VireoMachine *self)
{
  if (self->stats_id != 0)
    return;
  self->stats_id = g_timeout_add_seconds (STATS_INTERVAL_S, stats_tick, self);
  stats_tick (self);
}

static void
stats_stop (VireoMachine *self)
{
  g_clear_handle_id (&self->stats_id, g_source_remove);
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
vireo_machine_dispose (GObject *object)
{
  VireoMachine *self = VIREO_MACHINE (object);

  if (self->start_cancellable)
    g_cancellable_cancel (self->start_cancellable);
  g_clear_object (&self->start_cancellable);
  stats_stop (self);
  g_clear_handle_id (&self->teardown_id, g_source_remove);
  g_clear_pointer (&self->vr, vr_machine_free);
  g_clear_object (&self->snapshots);

  G_OBJECT_CLASS (vireo_machine_parent_class)->dispose (object);
}

static void
vireo_machine_finalize (GObject *object)
{
  VireoMachine *self = VIREO_MACHINE (object);

  g_free (self->dir);
  g_free (self->uuid);
  g_clear_pointer (&self->config, vireo_machine_config_unref);
  g_free (self->broken_reason);
  g_free (self->problem);
  g_clear_error (&self->problem_error);
  g_free (self->boot_failure);
  g_free (self->saved_state_error);
  g_free (self->vcpu_times);
  g_free (self->vcpu_usage);

  G_OBJECT_CLASS (vireo_machine_parent_class)->finalize (object);
}

static void
vireo_machine_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  VireoMachine *self = VIREO_MACHINE (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, vireo_machine_get_name (self));
      break;
    case PROP_UUID:
      g_value_set_string (value, self->uuid);
      break;
    case PROP_DIR:
      g_value_set_string (value, self->dir);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_BROKEN_REASON:
      g_value_set_string (value, self->broken_reason);
      break;
    case PROP_PROBLEM:
      g_value_set_string (value, self->problem);
      break;
    case PROP_CONFIG:
      g_value_set_boxed (value, self->config);
      break;
    case PROP_CPU_USAGE:
      g_value_set_double (value, self->cpu_usage);
      break;
    case PROP_MEMORY_USAGE:
      g_value_set_uint64 (value, self->memory_usage);
      break;
    case PROP_DISK_READ_BYTES:
    case PROP_DISK_WRITE_BYTES:
    case PROP_NET_RX_BYTES:
    case PROP_NET_TX_BYTES:
      g_value_set_uint64 (value, 0);
      break;
    case PROP_SERIAL_PTY:
      g_value_set_string (value, vireo_machine_get_serial_pty (self));
      break;
    case PROP_THUMBNAIL:
      g_value_take_object (value, vireo_machine_get_thumbnail (self));
      break;
    case PROP_VR_MACHINE:
      g_value_set_pointer (value, self->vr);
      break;
    case PROP_SNAPSHOT_OP:
      g_value_set_enum (value, self->snapshot_op);
      break;
    case PROP_HAS_SAVED_STATE:
      g_value_set_boolean (value, self->has_saved_state);
      break;
    case PROP_SAVED_STATE_ERROR:
      g_value_set_string (value, self->saved_state_error);
      break;
    case PROP_RESUMED:
      g_value_set_boolean (value, self->resumed);
      break;
    case PROP_BOOT_FAILURE:
      g_value_set_string (value, self->boot_failure);
      break;
    case PROP_CDROM:
      g_value_take_string (value, vireo_machine_dup_cdrom (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_machine_class_init (VireoMachineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->dispose = vireo_machine_dispose;
  object_class->finalize = vireo_machine_finalize;
  object_class->get_property = vireo_machine_get_property;

  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, ro);
  properties[PROP_UUID] = g_param_spec_string ("uuid", NULL, NULL, NULL, ro);
  properties[PROP_DIR] = g_param_spec_string ("dir", NULL, NULL, NULL, ro);
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, VIREO_TYPE_MACHINE_STATE,
                                              VIREO_MACHINE_STATE_STOPPED, ro);
  properties[PROP_BROKEN_REASON] = g_param_spec_string ("broken-reason", NULL, NULL, NULL, ro);
  properties[PROP_PROBLEM] = g_param_spec_string ("problem", NULL, NULL, NULL, ro);
  properties[PROP_CONFIG] = g_param_spec_boxed ("config", NULL, NULL,
                                                VIREO_TYPE_MACHINE_CONFIG, ro);
  properties[PROP_CPU_USAGE] = g_param_spec_double ("cpu-usage", NULL, NULL,
                                                    0, 100, 0, ro);
  properties[PROP_MEMORY_USAGE] = g_param_spec_uint64 ("memory-usage", NULL, NULL,
                                                       0, G_MAXUINT64, 0, ro);
  properties[PROP_DISK_READ_BYTES] = g_param_spec_uint64 ("disk-read-bytes", NULL, NULL,
                                                          0, G_MAXUINT64, 0, ro);
  properties[PROP_DISK_WRITE_BYTES] = g_param_spec_uint64 ("disk-write-bytes", NULL, NULL,
                                                           0, G_MAXUINT64, 0, ro);
  properties[PROP_NET_RX_BYTES] = g_param_spec_uint64 ("net-rx-bytes", NULL, NULL,
                                                       0, G_MAXUINT64, 0, ro);
  properties[PROP_NET_TX_BYTES] = g_param_spec_uint64 ("net-tx-bytes", NULL, NULL,
                                                       0, G_MAXUINT64, 0, ro);
  properties[PROP_SERIAL_PTY] = g_param_spec_string ("serial-pty", NULL, NULL, NULL, ro);
  properties[PROP_THUMBNAIL] = g_param_spec_object ("thumbnail", NULL, NULL, G_TYPE_FILE, ro);
  /* The engine's VrMachine (vireo_machine_get_vr_machine()), notified when it is created and
   * just before it is freed (the getter already returns NULL then). */
  properties[PROP_VR_MACHINE] = g_param_spec_pointer ("vr-machine", NULL, NULL, ro);
  properties[PROP_SNAPSHOT_OP] = g_param_spec_enum ("snapshot-op", NULL, NULL,
                                                    VIREO_TYPE_SNAPSHOT_OP,
                                                    VIREO_SNAPSHOT_OP_NONE, ro);
  properties[PROP_HAS_SAVED_STATE] = g_param_spec_boolean ("has-saved-state", NULL, NULL,
                                                           FALSE, ro);
  properties[PROP_SAVED_STATE_ERROR] = g_param_spec_string ("saved-state-error", NULL, NULL,
                                                            NULL, ro);
  properties[PROP_RESUMED] = g_param_spec_boolean ("resumed", NULL, NULL, FALSE, ro);
  /* The firmware's words when it found nothing to boot (while that lasts), else NULL. */
  properties[PROP_BOOT_FAILURE] = g_param_spec_string ("boot-failure", NULL, NULL, NULL, ro);
  /* The image in the CD/DVD drive (vireo_machine_dup_cdrom()). */
  properties[PROP_CDROM] = g_param_spec_string ("cdrom", NULL, NULL, NULL, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * VireoMachine::state-changed:
   * @state: the new #VireoMachineState
   */
  signals[STATE_CHANGED] = g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass),
                                         G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, VIREO_TYPE_MACHINE_STATE);
  /**
   * VireoMachine::error:
   * @error: what went wrong while the machine ran (a #GError)
   */
  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                 NULL, NULL, NULL, G_TYPE_NONE, 1,
                                 G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
vireo_machine_init (VireoMachine *self)
{
  self->state = VIREO_MACHINE_STATE_STOPPED;
}

/* ---- construction ----------------------------------------------------------------------- */

VireoMachine *
vireo_machine_new (VireoMachineConfig *config,
                   const char         *dir)
{
  VireoMachine *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (dir != NULL, NULL);

  self = g_object_new (VIREO_TYPE_MACHINE, NULL);
  self->config = vireo_machine_config_ref (config);
  self->dir = g_strdup (dir);
  self->uuid = g_strdup (config->uuid);
  {
    g_autofree char *saved = g_build_filename (dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);

    self->has_saved_state = g_file_test (saved, G_FILE_TEST_IS_DIR);
  }
  return self;
}

static gboolean refuse_broken (VireoMachine *self, GError **error);

static VireoMachine *
new_broken (const char *dir, const char *reason)
{
  VireoMachine *self = g_object_new (VIREO_TYPE_MACHINE, NULL);

  self->dir = g_strdup (dir);
  self->uuid = g_path_get_basename (dir);
  self->state = VIREO_MACHINE_STATE_BROKEN;
  self->broken_reason = g_strdup (reason);
  return self;
}

VireoMachine *
vireo_machine_load (const char *dir)
{
  g_autofree char *path = NULL;
  g_autofree char *base = NULL;
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (dir != NULL, NULL);

  vireo_atomic_file_clean_temps (dir);
  path = g_build_filename (dir, VIREO_MACHINE_CONFIG_FILE, NULL);
  base = g_path_get_basename (dir);

  config = vireo_machine_config_load (path, &error);
  if (config == NULL)
    return new_broken (dir, error->message);

  if (g_strcmp0 (config->uuid, base) != 0)
    {
      g_autofree char *reason =
        g_strdup_printf (_("The settings file belongs to another machine (%s)."), config->uuid);
      return new_broken (dir, reason);
    }
  if (!vireo_machine_config_validate (config, NULL, &error))
    return new_broken (dir, error->message);

  if (config->loaded_version < VIREO_MACHINE_CONFIG_VERSION)
    {
      g_autofree char *backup = g_strdup_printf ("%s.v%d", path, config->loaded_version);
      g_autofree char *old = NULL;
      gsize len;

      /* Keep the old file for an older Vireo (or a person) to find, then write the new. */
      if (!g_file_get_contents (path, &old, &len, &error)
          || !vireo_atomic_file_write (backup, old, len, &error)
          || !vireo_machine_config_save (config, path, &error))
        {
          g_warning ("Cannot migrate %s to format %d: %s", path, VIREO_MACHINE_CONFIG_VERSION,
                     error->message);
          g_clear_error (&error);
        }
      else
        g_message ("Migrated %s from format %d to %d", path, config->loaded_version,
                   VIREO_MACHINE_CONFIG_VERSION);
    }

  {
    VireoMachine *self = vireo_machine_new (config, dir);

    vireo_machine_check_files (self, NULL);
    return self;
  }
}

gboolean
vireo_machine_check_files (VireoMachine  *self,
                           GError       **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *problem = NULL;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  if (!vireo_machine_config_validate (self->config, self->dir, &local))
    problem = g_strdup (local->message);
  g_clear_error (&self->problem_error);
  if (local != NULL)
    self->problem_error = g_error_copy (local);
  if (g_strcmp0 (problem, self->problem) != 0)
    {
      g_free (self->problem);
      self->problem = g_strdup (problem);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROBLEM]);
    }
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

const char *
vireo_machine_get_problem (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->problem;
}

const GError *
vireo_machine_get_problem_error (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->problem_error;
}

/* ---- accessors -------------------------------------------------------------------------- */

const char *
vireo_machine_get_name (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);

  return self->config ? self->config->name : self->uuid;
}

const char *
vireo_machine_get_uuid (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->uuid;
}

const char *
vireo_machine_get_dir (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->dir;
}

VireoMachineState
vireo_machine_get_state (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), VIREO_MACHINE_STATE_BROKEN);
  return self->state;
}

gboolean
vireo_machine_is_broken (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), TRUE);
  return self->state == VIREO_MACHINE_STATE_BROKEN;
}

gboolean
vireo_machine_is_active (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  return self->state != VIREO_MACHINE_STATE_STOPPED && self->state != VIREO_MACHINE_STATE_BROKEN;
}

const char *
vireo_machine_get_broken_reason (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->broken_reason;
}

VireoMachineConfig *
vireo_machine_get_config (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->config;
}

static gboolean
refuse_broken (VireoMachine *self, GError **error)
{
  if (self->state != VIREO_MACHINE_STATE_BROKEN)
    return FALSE;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
               _("“%s” cannot be used: %s"), self->uuid, self->broken_reason);
  return TRUE;
}

gboolean
vireo_machine_save (VireoMachine  *self,
                    GError       **error)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  path = g_build_filename (self->dir, VIREO_MACHINE_CONFIG_FILE, NULL);
  return vireo_machine_config_save (self->config, path, error);
}

gboolean
vireo_machine_set_config (VireoMachine        *self,
                          VireoMachineConfig  *config,
                          gboolean             check_files,
                          GError             **error)
{
  g_autoptr(VireoMachineConfig) old = NULL;
  gboolean name_changed;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  g_return_val_if_fail (config != NULL, FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  if (g_strcmp0 (config->uuid, self->uuid) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "The settings belong to another machine");
      return FALSE;
    }
  if (!vireo_machine_config_validate (config, check_files ? self->dir : NULL, error))
    return FALSE;

  old = g_steal_pointer (&self->config);
  self->config = vireo_machine_config_ref (config);
  if (!vireo_machine_save (self, error))
    {
      g_clear_pointer (&self->config, vireo_machine_config_unref);
      self->config = g_steal_pointer (&old);
      return FALSE;
    }
  name_changed = g_strcmp0 (old->name, config->name) != 0;
  vireo_machine_check_files (self, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONFIG]);
  if (name_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NAME]);
  return TRUE;
}

double
vireo_machine_get_cpu_usage (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), 0);
  return self->cpu_usage;
}

const double *
vireo_machine_get_vcpu_usage (VireoMachine *self,
                              guint        *n_vcpus)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);

  if (n_vcpus)
    *n_vcpus = self->vcpu_usage ? self->n_vcpus : 0;
  return self->vcpu_usage;
}

guint64
vireo_machine_get_memory_usage (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), 0);
  return self->memory_usage;
}

/* TODO: the engine does not count disk and network bytes per device yet. */
/* The engine's counters since the machine's engine object was created (a new start
 * creates a new one: the counters then start from 0 again, which the performance page takes
 * as no sample). */
static VrIoStats
io_stats (VireoMachine *self)
{
  VrIoStats st = { 0 };

  g_return_val_if_fail (VIREO_IS_MACHINE (self), st);
  if (self->vr != NULL)
    vr_machine_get_io_stats (self->vr, &st);
  return st;
}

guint64
vireo_machine_get_disk_read_bytes (VireoMachine *self)
{
  return io_stats (self).disk_read_bytes;
}

guint64
vireo_machine_get_disk_write_bytes (VireoMachine *self)
{
  return io_stats (self).disk_write_bytes;
}

guint64
vireo_machine_get_net_rx_bytes (VireoMachine *self)
{
  return io_stats (self).net_rx_bytes;
}

guint64
vireo_machine_get_net_tx_bytes (VireoMachine *self)
{
  return io_stats (self).net_tx_bytes;
}

const char *
vireo_machine_get_serial_pty (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->vr ? vr_machine_get_serial_pty (self->vr) : NULL;
}

char *
vireo_machine_dup_serial_log_path (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return g_build_filename (self->dir, VIREO_MACHINE_SERIAL_LOG, NULL);
}

VrMachine *
vireo_machine_get_vr_machine (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->vr;
}

GFile *
vireo_machine_get_thumbnail (VireoMachine *self)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);

  path = g_build_filename (self->dir, VIREO_MACHINE_THUMBNAIL_FILE, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return NULL;
  return g_file_new_for_path (path);
}

gboolean
vireo_machine_save_thumbnail (VireoMachine  *self,
                              GBytes        *png,
                              GError       **error)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  g_return_val_if_fail (png != NULL, FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  path = g_build_filename (self->dir, VIREO_MACHINE_THUMBNAIL_FILE, NULL);
  if (!vireo_atomic_file_write_bytes (path, png, error))
    return FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_THUMBNAIL]);
  return TRUE;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

#define STATE_BIT(s) (1u << (s))
#define IN_RUNNING   STATE_BIT (VIREO_MACHINE_STATE_RUNNING)
#define IN_PAUSED    STATE_BIT (VIREO_MACHINE_STATE_PAUSED)
#define IN_STOPPING  STATE_BIT (VIREO_MACHINE_STATE_STOPPING)
#define IN_STOPPED   STATE_BIT (VIREO_MACHINE_STATE_STOPPED)

/* Fails unless the state is in @allowed (STATE_BIT()s). */
static gboolean
check_state (VireoMachine *self, GError **error, guint allowed)
{
  if (refuse_broken (self, error))
    return FALSE;
  if (allowed & STATE_BIT (self->state))
    return TRUE;
  g_set_error (error, VR_ERROR, VR_ERROR_STATE,
               /* Translators: the second %s is a machine state as the list shows it */
               _("This is not possible while “%s” is in the state “%s”."),
               vireo_machine_get_name (self), vireo_machine_state_to_label (self->state));
  return FALSE;
}

static gboolean
check_not_busy (VireoMachine *self, GError **error)
{
  if (self->snapshot_op == VIREO_SNAPSHOT_OP_NONE)
    return TRUE;
  g_set_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_BUSY,
               _("“%s” is busy with a snapshot. Try again when it is done."),
               vireo_machine_get_name (self));
  return FALSE;
}

/* Removes what is left of a snapshot folder after the engine deleted its files (the
 * thumbnail, temporary files), then the folder. */
static void
remove_snapshot_leftovers (const char *path)
{
  g_autofree char *thumb = g_build_filename (path, VIREO_SNAPSHOT_THUMBNAIL_FILE, NULL);

  g_unlink (thumb);
  vireo_atomic_file_clean_temps (path);
  g_rmdir (path);
}

/* After a successful resume: the saved state must never be used again (it would take the
 * disks back in time). It is renamed out of the way first, then deleted with its disk
 * snapshots; a leftover of the renamed one is deleted at the next save. */
static void
consume_saved_state (VrMachine *vr, const char *path)
{
  g_autofree char *used = g_strconcat (path, ".used", NULL);
  g_autoptr(GError) error = NULL;

  if (g_file_test (used, G_FILE_TEST_IS_DIR))
    {
      vr_machine_delete_snapshot (vr, used, NULL);
      remove_snapshot_leftovers (used);
    }
  if (g_rename (path, used) != 0)
    {
      g_warning ("Cannot move the used saved state %s aside: %s", path, g_strerror (errno));
      if (!vr_machine_delete_snapshot (vr, path, &error))
        g_warning ("Cannot delete the used saved state %s: %s", path, error->message);
      remove_snapshot_leftovers (path);
      return;
    }
  if (!vr_machine_delete_snapshot (vr, used, &error))
    g_warning ("Cannot delete the used saved state %s: %s", used, error->message);
  remove_snapshot_leftovers (used);
}

typedef struct
{
  VrMachineConfig  vr_config;
  GMainContext    *context;
  VireoMachine    *machine;   /* for the event callback's reference */
  char            *name;
  char            *saved_state;  /* the saved state to resume from, or NULL */
  gboolean         resumed;
} StartData;

static void
start_data_free (StartData *data)
{
  vr_machine_config_clear (&data->vr_config);
  g_free (data->name);
  g_free (data->saved_state);
  g_clear_pointer (&data->context, g_main_context_unref);
  g_clear_object (&data->machine);
  g_free (data);
}

static void
start_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  StartData *data = task_data;
  g_autoptr(VrMachine) vr = NULL;
  GError *error = NULL;

  vr = vr_machine_new (&data->vr_config, &error);
  if (vr == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  vr_machine_set_event_func (vr, data->context, vr_event_cb, g_object_ref (data->machine),
                             g_object_unref);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (data->saved_state != NULL)
    {
      if (!vr_machine_restore_snapshot (vr, data->saved_state, 0, &error))
        {
          /* The saved state stays: only the user may throw it away. */
          g_task_return_new_error (task, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_SAVED_STATE,
                                   _("“%s” could not resume from its saved state: %s"),
                                   data->name, error->message);
          g_error_free (error);
          return;
        }
      data->resumed = TRUE;
      consume_saved_state (vr, data->saved_state);
      if (vr_machine_get_state (vr) == VR_STATE_RUNNING
          || vr_machine_get_state (vr) == VR_STATE_PAUSED)
        {
          g_task_return_pointer (task, g_steal_pointer (&vr), (GDestroyNotify) vr_machine_free);
          return;
        }
      /* A saved state without memory (never written so): boot from its disks. */
      data->resumed = FALSE;
    }
  if (!vr_machine_start (vr, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&vr), (GDestroyNotify) vr_machine_free);
}

static void
rotate_serial_log (VireoMachine *self)
{
  g_autofree char *log = vireo_machine_dup_serial_log_path (self);
  g_autofree char *old = g_strconcat (log, ".old", NULL);
  GStatBuf st;

  if (g_stat (log, &st) == 0 && st.st_size > SERIAL_LOG_MAX)
    g_rename (log, old);
}

/* @vr (running or paused, with the event callback set) becomes the machine's. */
static void
install_vr (VireoMachine *self, VrMachine *vr)
{
  g_assert (self->vr == NULL);

  self->vr = vr;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VR_MACHINE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERIAL_PTY]);
  switch (vr_machine_get_state (vr))
    {
    case VR_STATE_RUNNING:
      set_state (self, VIREO_MACHINE_STATE_RUNNING);
      break;
    case VR_STATE_PAUSED:
      set_state (self, VIREO_MACHINE_STATE_PAUSED);
      break;
    case VR_STATE_CREATED:
    case VR_STATE_STOPPED:
    default:
      /* It already stopped (a guest that exits at once); its event tears it down. */
      schedule_teardown (self);
      break;
    }
}

static void
set_saved_state (VireoMachine *self, gboolean has, const char *error)
{
  has = !!has;
  if (self->has_saved_state != has)
    {
      self->has_saved_state = has;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HAS_SAVED_STATE]);
    }
  if (g_strcmp0 (self->saved_state_error, error) != 0)
    {
      g_free (self->saved_state_error);
      self->saved_state_error = g_strdup (error);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SAVED_STATE_ERROR]);
    }
}

static void
set_resumed (VireoMachine *self, gboolean resumed)
{
  resumed = !!resumed;
  if (self->resumed == resumed)
    return;
  self->resumed = resumed;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESUMED]);
}

static gboolean
saved_state_exists (VireoMachine *self)
{
  g_autofree char *path = g_build_filename (self->dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);

  return g_file_test (path, G_FILE_TEST_IS_DIR);
}

static void
start_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  StartData *data = g_task_get_task_data (G_TASK (result));
  VrMachine *vr;

  vr = g_task_propagate_pointer (G_TASK (result), &error);
  g_clear_object (&self->start_cancellable);
  if (data->saved_state != NULL)
    {
      if (g_error_matches (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_SAVED_STATE))
        set_saved_state (self, TRUE, error->message);
      else
        set_saved_state (self, saved_state_exists (self), NULL);
    }
  if (vr == NULL)
    {
      set_state (self, VIREO_MACHINE_STATE_STOPPED);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  set_resumed (self, data->resumed);
  if (self->stop_requested)
    {
      self->stop_requested = FALSE;
      vr_machine_free (vr);
      set_state (self, VIREO_MACHINE_STATE_STOPPED);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The machine was turned off while it started."));
      return;
    }

  install_vr (self, vr);
  g_task_return_boolean (task, TRUE);
}

void
vireo_machine_start_async (VireoMachine        *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GTask) inner = NULL;
  g_autoptr(GError) error = NULL;
  StartData *data;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_start_async);

  if (!check_state (self, &error, IN_STOPPED) || !check_not_busy (self, &error)
      || !vireo_machine_check_files (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  data = g_new0 (StartData, 1);
  data->name = g_strdup (vireo_machine_get_name (self));
  if (saved_state_exists (self))
    data->saved_state = g_build_filename (self->dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);
  vr_machine_config_init (&data->vr_config);
  if (!vireo_machine_config_to_vr (self->config, self->dir, &data->vr_config, &error))
    {
      start_data_free (data);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  data->context = g_main_context_ref_thread_default ();
  data->machine = g_object_ref (self);
  rotate_serial_log (self);

  self->stop_requested = FALSE;
  set_state (self, VIREO_MACHINE_STATE_STARTING);
  g_set_object (&self->start_cancellable, cancellable);

  inner = g_task_new (self, cancellable, start_done, g_steal_pointer (&task));
  g_task_set_source_tag (inner, start_thread);
  g_task_set_task_data (inner, data, (GDestroyNotify) start_data_free);
  g_task_run_in_thread (inner, start_thread);
}

gboolean
vireo_machine_start_finish (VireoMachine  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == vireo_machine_start_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
vireo_machine_pause (VireoMachine  *self,
                     GError       **error)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (!check_state (self, error, IN_RUNNING | IN_STOPPING))
    return FALSE;
  if (!vr_machine_pause (self->vr, error))
    return FALSE;
  set_state (self, VIREO_MACHINE_STATE_PAUSED);
  return TRUE;
}

gboolean
vireo_machine_resume (VireoMachine  *self,
                      GError       **error)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (!check_state (self, error, IN_PAUSED))
    return FALSE;
  if (!vr_machine_resume (self->vr, error))
    return FALSE;
  set_state (self, VIREO_MACHINE_STATE_RUNNING);
  return TRUE;
}

gboolean
vireo_machine_shutdown (VireoMachine  *self,
                        GError       **error)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (!check_state (self, error, IN_RUNNING | IN_STOPPING))
    return FALSE;
  vr_machine_power_button (self->vr);
  set_state (self, VIREO_MACHINE_STATE_STOPPING);
  return TRUE;
}

void
vireo_machine_force_off (VireoMachine *self)
{
  g_return_if_fail (VIREO_IS_MACHINE (self));

  if (self->state == VIREO_MACHINE_STATE_STARTING)
    {
      /* The thread finishes building it; start_done frees it. */
      self->stop_requested = TRUE;
      if (self->start_cancellable)
        g_cancellable_cancel (self->start_cancellable);
      return;
    }
  if (self->vr != NULL)
    teardown (self);
}

gboolean
vireo_machine_reset (VireoMachine  *self,
                     GError       **error)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (!check_state (self, error, IN_RUNNING | IN_PAUSED | IN_STOPPING))
    return FALSE;
  if (!vr_machine_reset (self->vr, error))
    return FALSE;
  set_boot_failure (self, NULL);
  set_state (self, VIREO_MACHINE_STATE_RUNNING);
  return TRUE;
}

/* ---- booting and the CD/DVD drive ------------------------------------------------------- */

static void
set_boot_failure (VireoMachine *self, const char *message)
{
  if (g_strcmp0 (self->boot_failure, message) == 0)
    return;
  g_free (self->boot_failure);
  self->boot_failure = g_strdup (message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BOOT_FAILURE]);
}

const char *
vireo_machine_get_boot_failure (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->boot_failure;
}

gboolean
vireo_machine_has_cdrom_drive (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  /* While it runs, the drive it was started with (settings change at the next start). */
  if (self->vr != NULL)
    return vr_machine_get_config (self->vr)->cdrom_drive;
  return self->config != NULL && vireo_machine_config_get_cdrom (self->config) != NULL;
}

char *
vireo_machine_dup_cdrom (VireoMachine *self)
{
  VireoDiskConfig *drive;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);

  if (self->vr != NULL)
    return vr_machine_get_cdrom (self->vr);
  drive = self->config ? vireo_machine_config_get_cdrom (self->config) : NULL;
  if (drive == NULL || drive->ejected)
    return NULL;
  return vireo_machine_config_resolve_path (drive->path, self->dir);
}

/* Writes what is in the drive (@path, NULL: empty) into the settings. */
static gboolean
save_cdrom (VireoMachine *self, const char *path, GError **error)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_copy (self->config);
  VireoDiskConfig *drive = vireo_machine_config_get_cdrom (config);

  if (drive == NULL)
    {
      if (path == NULL)
        return TRUE;
      /* A machine without a drive gets one (it is off: see change_cdrom). */
      drive = vireo_disk_config_new (path, VR_DISK_FORMAT_RAW);
      drive->media = VIREO_DISK_MEDIA_CDROM;
      drive->readonly = TRUE;
      g_ptr_array_add (config->disks, drive);
    }
  else if (path != NULL)
    {
      g_free (drive->path);
      drive->path = g_strdup (path);
      drive->format = VR_DISK_FORMAT_RAW;
      drive->readonly = TRUE;
      drive->ejected = FALSE;
    }
  else
    drive->ejected = TRUE;   /* the path stays: the last image, for the next Change… */
  return vireo_machine_set_config (self, config, FALSE, error);
}

/* After the engine's drive changed (the guest ejected the disc, a snapshot was restored):
 * machine.conf says what is in it. */
static void
sync_cdrom (VireoMachine *self)
{
  g_autofree char *now = NULL;
  g_autofree char *saved = NULL;
  g_autoptr(GError) error = NULL;
  VireoDiskConfig *drive;

  if (self->vr == NULL || self->config == NULL)
    return;
  drive = vireo_machine_config_get_cdrom (self->config);
  if (drive == NULL)
    return;
  now = vr_machine_get_cdrom (self->vr);
  saved = drive->ejected ? NULL : vireo_machine_config_resolve_path (drive->path, self->dir);
  if (g_strcmp0 (now, saved) != 0)
    {
      g_debug ("%s: the CD/DVD drive now holds %s", self->uuid, now ? now : "nothing");
      if (now != NULL)
        set_boot_failure (self, NULL);
      if (!save_cdrom (self, now, &error))
        g_warning ("Cannot save the CD/DVD drive of %s: %s", self->uuid, error->message);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CDROM]);
}

gboolean
vireo_machine_change_cdrom (VireoMachine  *self,
                            const char    *path,
                            GError       **error)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  if (self->state == VIREO_MACHINE_STATE_STARTING)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_STATE,
                   _("“%s” is starting. Change the CD/DVD once it runs."),
                   vireo_machine_get_name (self));
      return FALSE;
    }
  if (!vireo_machine_has_cdrom_drive (self) && (self->vr != NULL || path == NULL))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   _("“%s” has no CD/DVD drive. Shut it down to add one: choose an ISO "
                     "image in Details."),
                   vireo_machine_get_name (self));
      return FALSE;
    }
  if (path != NULL)
    {
      int fd;

      if (!g_path_is_absolute (path) || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("%s “%s” does not exist."),
                       _("The CD/DVD image"), path);
          return FALSE;
        }
      fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
      if (fd < 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       _("“%s” cannot be read: %s"), path, g_strerror (saved_errno));
          return FALSE;
        }
      close (fd);
    }

  /* The engine first: when it cannot open the image, the old one stays and nothing is
   * saved. */
  if (self->vr != NULL && !vr_machine_change_cdrom (self->vr, path, error))
    return FALSE;
  set_boot_failure (self, NULL);
  if (!save_cdrom (self, path, error))
    return FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CDROM]);
  return TRUE;
}

/* ---- snapshots -------------------------------------------------------------------------- */

/* The writable disk images (resolved paths) in the format @format, or in any format but it
 * when @other. */
static GPtrArray *
writable_disks (VireoMachine *self, VrDiskFormat format, gboolean other)
{
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; self->config && i < self->config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (self->config->disks, i);

      if (disk->readonly || disk->media == VIREO_DISK_MEDIA_CDROM)
        continue;
      if ((disk->format == format) != !other)
        continue;
      g_ptr_array_add (paths, vireo_machine_config_resolve_path (disk->path, self->dir));
    }
  return paths;
}

VireoSnapshotStore *
vireo_machine_get_snapshot_store (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);

  if (self->snapshots == NULL)
    {
      g_autofree char *dir = g_build_filename (self->dir, VIREO_MACHINE_SNAPSHOT_DIR, NULL);

      self->snapshots = vireo_snapshot_store_new (dir);
      vireo_machine_reload_snapshots (self);
    }
  return self->snapshots;
}

void
vireo_machine_reload_snapshots (VireoMachine *self)
{
  g_autoptr(GPtrArray) disks = NULL;
  g_autoptr(GError) error = NULL;
  gboolean scan;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  if (self->snapshots == NULL)
    {
      vireo_machine_get_snapshot_store (self);
      return;
    }
  disks = writable_disks (self, VR_DISK_FORMAT_QCOW2, FALSE);
  g_ptr_array_add (disks, NULL);
  vireo_snapshot_store_set_disks (self->snapshots, (const char *const *) disks->pdata);
  /* The disks' snapshot tables are read only while nothing else has them open. */
  scan = self->state == VIREO_MACHINE_STATE_STOPPED && self->vr == NULL
         && self->snapshot_op == VIREO_SNAPSHOT_OP_NONE;
  if (!vireo_snapshot_store_reload (self->snapshots, scan, &error))
    g_debug ("%s: snapshots: %s", self->uuid, error->message);
}

VireoSnapshotOp
vireo_machine_get_snapshot_op (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), VIREO_SNAPSHOT_OP_NONE);
  return self->snapshot_op;
}

gboolean
vireo_machine_add_disk_overlays (VireoMachine  *self,
                                 GError       **error)
{
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  if (self->state != VIREO_MACHINE_STATE_STOPPED || self->vr != NULL
      || self->snapshot_op != VIREO_SNAPSHOT_OP_NONE)
    {
      g_set_error_literal (error, VR_ERROR, VR_ERROR_STATE,
                           _("Shut down the machine to add the overlays."));
      return FALSE;
    }
  config = vireo_machine_config_copy (self->config);
  for (guint i = 0; i < config->disks->len; i++)
    {
      VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);
      g_autofree char *raw = NULL, *base = NULL, *stem = NULL, *overlay = NULL;

      if (disk->readonly || disk->media == VIREO_DISK_MEDIA_CDROM
          || disk->format != VR_DISK_FORMAT_RAW)
        continue;
      raw = vireo_machine_config_resolve_path (disk->path, self->dir);
      base = g_path_get_basename (raw);
      stem = g_strndup (base, strcspn (base, "."));
      for (guint n = 1; overlay == NULL || g_file_test (overlay, G_FILE_TEST_EXISTS); n++)
        {
          g_autofree char *name = n == 1 ? g_strdup_printf ("%s-overlay.qcow2", stem)
                                         : g_strdup_printf ("%s-overlay-%u.qcow2", stem, n);

          g_free (overlay);
          overlay = g_build_filename (self->dir, name, NULL);
        }
      if (!vr_disk_create (overlay, VR_DISK_FORMAT_QCOW2, 0, raw, VR_DISK_FORMAT_RAW, error))
        goto fail;
      g_ptr_array_add (made, g_strdup (overlay));
      g_free (disk->path);
      disk->path = g_path_get_basename (overlay);
      disk->format = VR_DISK_FORMAT_QCOW2;
    }
  if (vireo_machine_set_config (self, config, TRUE, error))
    {
      vireo_machine_reload_snapshots (self);
      return TRUE;
    }

fail:
  for (guint i = 0; i < made->len; i++)
    g_unlink (g_ptr_array_index (made, i));
  return FALSE;
}

gboolean
vireo_machine_can_snapshot (VireoMachine  *self,
                            GError       **error)
{
  g_autoptr(GPtrArray) others = NULL;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  others = writable_disks (self, VR_DISK_FORMAT_QCOW2, TRUE);
  if (others->len > 0)
    {
      g_autofree char *base = g_path_get_basename (g_ptr_array_index (others, 0));

      g_set_error (error, VIREO_MACHINE_ERROR, VIREO_MACHINE_ERROR_NO_SNAPSHOTS,
                   /* Translators: %s is a disk image's file name */
                   _("The disk “%s” is a raw image, which cannot hold snapshots. To take "
                     "snapshots of this machine, convert the disk to qcow2 (for example with "
                     "“qemu-img convert -O qcow2”) or make it read-only."),
                   base);
      return FALSE;
    }
  return TRUE;
}

gboolean
vireo_machine_has_saved_state (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  return self->has_saved_state;
}

const char *
vireo_machine_get_saved_state_error (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), NULL);
  return self->saved_state_error;
}

gboolean
vireo_machine_get_resumed (VireoMachine *self)
{
  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  return self->resumed;
}

static void
set_snapshot_op (VireoMachine *self, VireoSnapshotOp op)
{
  if (self->snapshot_op == op)
    return;
  self->snapshot_op = op;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SNAPSHOT_OP]);
}

static void drop_old_saved_state (VrMachine *vr, const char *path);

/* One snapshot operation: what its thread needs, and what it found. */
typedef struct
{
  VireoSnapshotOp     op;
  VireoMachine       *machine;     /* the event callback's reference, for a machine it builds */
  char               *name_of_machine;
  char               *dir;
  VireoSnapshotStore *store;
  GMainContext       *context;
  /* The running machine's engine (borrowed: teardown waits until the operation is over), or
   * a configuration to build one (stopped: it never runs unless a revert resumes it). */
  VrMachine          *vr;
  VrMachine          *temp;
  VrMachineConfig     vr_config;
  gboolean            have_config;
  gboolean            live;        /* a running or paused machine */

  char               *id;
  char               *name;
  char               *description;
  GBytes             *thumbnail;
  VireoSnapshotKind   kind;
  char               *disk_id;
  char              **disks;       /* KIND_DISK: the images that have it */
  gboolean            memory;      /* revert: the snapshot has memory */

  /* Results. */
  VrMachine          *resumed_vr;  /* a machine that a revert started (it was off) */
  gboolean            boot;        /* a disk-only revert stopped a running machine */
} SnapOp;

static void
snap_op_free (SnapOp *op)
{
  g_clear_pointer (&op->temp, vr_machine_free);
  g_clear_pointer (&op->resumed_vr, vr_machine_free);
  if (op->have_config)
    vr_machine_config_clear (&op->vr_config);
  g_clear_object (&op->machine);
  g_free (op->name_of_machine);
  g_free (op->dir);
  g_clear_object (&op->store);
  g_clear_pointer (&op->context, g_main_context_unref);
  g_free (op->id);
  g_free (op->name);
  g_free (op->description);
  g_clear_pointer (&op->thumbnail, g_bytes_unref);
  g_free (op->disk_id);
  g_strfreev (op->disks);
  g_free (op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SnapOp, snap_op_free)

/* Starts an operation on the main thread: checks, then marks the machine busy. */
static SnapOp *
snap_op_begin (VireoMachine     *self,
               VireoSnapshotOp   kind,
               guint             allowed,
               GError          **error)
{
  g_autoptr(SnapOp) op = NULL;

  if (!check_state (self, error, allowed) || !check_not_busy (self, error))
    return NULL;

  op = g_new0 (SnapOp, 1);
  op->op = kind;
  op->machine = g_object_ref (self);
  op->name_of_machine = g_strdup (vireo_machine_get_name (self));
  op->dir = g_strdup (self->dir);
  op->store = g_object_ref (vireo_machine_get_snapshot_store (self));
  op->context = g_main_context_ref_thread_default ();
  if (self->vr != NULL)
    {
      op->vr = self->vr;
      op->live = self->state == VIREO_MACHINE_STATE_RUNNING
                 || self->state == VIREO_MACHINE_STATE_PAUSED
                 || self->state == VIREO_MACHINE_STATE_STOPPING;
    }
  else
    {
      vr_machine_config_init (&op->vr_config);
      op->have_config = TRUE;
      if (!vireo_machine_check_files (self, error)
          || !vireo_machine_config_to_vr (self->config, self->dir, &op->vr_config, error))
        return NULL;
    }
  set_snapshot_op (self, kind);
  return g_steal_pointer (&op);
}

/* The engine's machine for the operation: the running one, or one built (not started). */
static VrMachine *
snap_op_get_vr (SnapOp *op, GError **error)
{
  if (op->vr != NULL)
    return op->vr;
  if (op->temp == NULL)
    {
      op->temp = vr_machine_new (&op->vr_config, error);
      if (op->temp == NULL)
        return NULL;
      vr_machine_set_event_func (op->temp, op->context, vr_event_cb, g_object_ref (op->machine),
                                 g_object_unref);
    }
  return op->temp;
}

/* Ends an operation on the main thread. */
static void
snap_op_end (VireoMachine *self, SnapOp *op)
{
  gboolean saved = saved_state_exists (self);

  set_saved_state (self, saved, saved ? self->saved_state_error : NULL);
  set_snapshot_op (self, VIREO_SNAPSHOT_OP_NONE);
  if (self->teardown_pending)
    {
      self->teardown_pending = FALSE;
      teardown (self);
    }
  if (op->resumed_vr != NULL)
    {
      if (self->vr == NULL && self->state == VIREO_MACHINE_STATE_STOPPED)
        {
          rotate_serial_log (self);
          set_resumed (self, FALSE);
          install_vr (self, g_steal_pointer (&op->resumed_vr));
        }
      else
        g_clear_pointer (&op->resumed_vr, vr_machine_free);
    }
  vireo_machine_reload_snapshots (self);
}

/* Runs @func in a thread; when done, snap_op_end() and then @task (the caller's) returns
 * what @func returned. */
static void
snap_op_run (VireoMachine    *self,
             GTask           *task,
             SnapOp          *op,
             GTaskThreadFunc  func,
             GAsyncReadyCallback done)
{
  GTask *inner = g_task_new (self, NULL, done, g_object_ref (task));

  g_task_set_source_tag (inner, func);
  g_task_set_task_data (inner, op, (GDestroyNotify) snap_op_free);
  g_task_run_in_thread (inner, func);
  g_object_unref (inner);
}

static void
snap_op_done_boolean (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  SnapOp *op = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  snap_op_end (self, op);
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* Deletes the snapshot folders a crash left behind (and their disk snapshots). */
static void
clean_orphans (SnapOp *op, VrMachine *vr)
{
  g_auto(GStrv) orphans = vireo_snapshot_store_list_orphans (op->store);

  for (guint i = 0; orphans[i]; i++)
    {
      g_autofree char *path = g_build_filename (vireo_snapshot_store_get_dir (op->store),
                                                orphans[i], NULL);
      g_autoptr(GError) error = NULL;

      g_message ("Deleting the unfinished snapshot %s", path);
      if (!vr_machine_delete_snapshot (vr, path, &error))
        g_warning ("Cannot delete %s: %s", path, error->message);
      else
        remove_snapshot_leftovers (path);
    }
}

/* Whether the snapshot folder @path holds memory (from its state file). */
static gboolean
snapshot_has_memory (const char *path, gboolean fallback)
{
  g_autofree char *state_path = g_build_filename (path, "state", NULL);
  g_autoptr(GVariant) state = vr_snapshot_read_state (state_path, NULL);
  gboolean memory;

  if (state != NULL && g_variant_lookup (state, "memory", "b", &memory))
    return memory;
  return fallback;
}

static void
take_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  SnapOp *op = task_data;
  g_autofree char *path = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  const char *thumb_name = NULL;
  GError *error = NULL;
  gboolean memory;
  VrMachine *vr;

  vr = snap_op_get_vr (op, &error);
  if (vr == NULL)
    goto fail;
  clean_orphans (op, vr);
  /* The index must be readable before anything is written. */
  op->id = vireo_snapshot_store_next_id (op->store, &error);
  if (op->id == NULL)
    goto fail;
  if (g_mkdir_with_parents (vireo_snapshot_store_get_dir (op->store), 0755) < 0)
    {
      int saved = errno;
      g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create the folder “%s”: %s"),
                   vireo_snapshot_store_get_dir (op->store), g_strerror (saved));
      goto fail;
    }
  path = vireo_snapshot_store_dup_path (op->store, op->id);
  if (!vr_machine_save_snapshot (vr, path, op->id, &error))
    goto fail;
  memory = snapshot_has_memory (path, op->live);

  if (op->thumbnail == NULL && !op->live)
    {
      /* Off: the last frame it showed. */
      g_autofree char *last = g_build_filename (op->dir, VIREO_MACHINE_THUMBNAIL_FILE, NULL);
      g_autoptr(GMappedFile) file = g_mapped_file_new (last, FALSE, NULL);

      if (file != NULL)
        op->thumbnail = g_mapped_file_get_bytes (file);
    }
  if (op->thumbnail != NULL)
    {
      g_autofree char *thumb = g_build_filename (path, VIREO_SNAPSHOT_THUMBNAIL_FILE, NULL);
      g_autoptr(GError) local = NULL;

      if (vireo_atomic_file_write_bytes (thumb, op->thumbnail, &local))
        thumb_name = VIREO_SNAPSHOT_THUMBNAIL_FILE;
      else
        g_warning ("No thumbnail for the snapshot %s: %s", path, local->message);
    }

  /* Last: the index names the complete snapshot. */
  if (!vireo_snapshot_store_add (op->store, op->id, op->name, op->description, now, memory,
                                 thumb_name, &error))
    {
      vr_machine_delete_snapshot (vr, path, NULL);
      remove_snapshot_leftovers (path);
      goto fail;
    }
  g_task_return_boolean (task, TRUE);
  return;

fail:
  g_task_return_error (task, error);
}

static void
take_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  SnapOp *op = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  snap_op_end (self, op);
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_strdup (op->id), g_free);
}

void
vireo_machine_take_snapshot_async (VireoMachine        *self,
                                   const char          *name,
                                   const char          *description,
                                   GBytes              *thumbnail_png,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  SnapOp *op;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_take_snapshot_async);

  if (!vireo_snapshot_name_is_valid (name, &error) || !vireo_machine_can_snapshot (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  op = snap_op_begin (self, VIREO_SNAPSHOT_OP_TAKE,
                      IN_RUNNING | IN_PAUSED | IN_STOPPING | IN_STOPPED, &error);
  if (op == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  op->name = g_strstrip (g_strdup (name));
  op->description = g_strdup (description);
  op->thumbnail = thumbnail_png ? g_bytes_ref (thumbnail_png) : NULL;
  snap_op_run (self, task, op, take_thread, take_done);
}

char *
vireo_machine_take_snapshot_finish (VireoMachine  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Applies (or deletes) a qcow2 snapshot made outside Vireo on each image that has it. */
static gboolean
disk_snapshot_do (SnapOp *op, gboolean apply, GError **error)
{
  for (guint i = 0; op->disks && op->disks[i]; i++)
    {
      g_autoptr(VrDisk) disk = vr_disk_open (op->disks[i], VR_DISK_FORMAT_QCOW2, 0, error);
      gboolean ok;

      if (disk == NULL)
        return FALSE;
      ok = apply ? vr_disk_snapshot_apply (disk, op->disk_id, error)
                 : vr_disk_snapshot_delete (disk, op->disk_id, error);
      if (!ok || !vr_disk_flush (disk, error))
        return FALSE;
    }
  return TRUE;
}

static void
revert_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  SnapOp *op = task_data;
  g_autofree char *path = NULL;
  g_autofree char *saved = g_build_filename (op->dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);
  GError *error = NULL;
  VrMachine *vr;

  if (op->kind == VIREO_SNAPSHOT_KIND_DISK)
    {
      /* The saved state (the state being left) goes first: its machine has the disks open. */
      if (g_file_test (saved, G_FILE_TEST_IS_DIR))
        {
          vr = snap_op_get_vr (op, &error);
          if (vr == NULL)
            goto fail;
          drop_old_saved_state (vr, saved);
          g_clear_pointer (&op->temp, vr_machine_free);
        }
      if (!disk_snapshot_do (op, TRUE, &error)
          || !vireo_snapshot_store_set_current (op->store, NULL, &error))
        goto fail;
      g_task_return_boolean (task, TRUE);
      return;
    }

  vr = snap_op_get_vr (op, &error);
  if (vr == NULL)
    goto fail;
  path = vireo_snapshot_store_dup_path (op->store, op->id);
  if (!vr_machine_restore_snapshot (vr, path, 0, &error))
    goto fail;
  /* A saved state was the present the revert leaves: it must not come back at the next
   * start (it would take the disks back to it). */
  drop_old_saved_state (vr, saved);
  if (vr == op->temp && (vr_machine_get_state (vr) == VR_STATE_RUNNING
                         || vr_machine_get_state (vr) == VR_STATE_PAUSED))
    op->resumed_vr = g_steal_pointer (&op->temp);
  else if (vr == op->vr && vr_machine_get_state (vr) == VR_STATE_STOPPED)
    op->boot = TRUE;   /* disk-only: it boots afresh from the disks */
  if (!vireo_snapshot_store_set_current (op->store, op->id, &error))
    goto fail;
  g_task_return_boolean (task, TRUE);
  return;

fail:
  g_task_return_error (task, error);
}

static void
revert_boot_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!vireo_machine_start_finish (VIREO_MACHINE (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
revert_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  SnapOp *op = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  snap_op_end (self, op);
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (op->boot)
    {
      /* The engine stopped it; its teardown ran in snap_op_end() or is on its way. */
      if (self->vr != NULL)
        teardown (self);
      vireo_machine_start_async (self, NULL, revert_boot_done, g_steal_pointer (&task));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

/* Looks snapshot @id up and begins an operation of @type on it. On failure @task has
 * returned its error and NULL comes back. A snapshot made outside Vireo (disks only) needs
 * the machine off; a broken one cannot be reverted to (but can be deleted). */
static SnapOp *
begin_snapshot_op (VireoMachine     *self,
                   GTask            *task,
                   const char       *id,
                   VireoSnapshotOp   type)
{
  g_autoptr(GError) error = NULL;
  guint allowed = IN_RUNNING | IN_PAUSED | IN_STOPPING | IN_STOPPED;
  VireoSnapshot *snapshot;
  SnapOp *op;

  snapshot = vireo_snapshot_store_lookup (vireo_machine_get_snapshot_store (self), id);
  if (snapshot == NULL)
    {
      g_task_return_new_error (task, VIREO_SNAPSHOT_STORE_ERROR,
                               VIREO_SNAPSHOT_STORE_ERROR_NOT_FOUND,
                               _("There is no snapshot “%s”."), id);
      return NULL;
    }
  if (type == VIREO_SNAPSHOT_OP_REVERT && vireo_snapshot_is_broken (snapshot))
    {
      g_task_return_new_error (task, VIREO_SNAPSHOT_STORE_ERROR,
                               VIREO_SNAPSHOT_STORE_ERROR_INVALID, "%s",
                               vireo_snapshot_get_broken_reason (snapshot));
      return NULL;
    }
  if (vireo_snapshot_get_kind (snapshot) == VIREO_SNAPSHOT_KIND_DISK)
    {
      if (self->state != VIREO_MACHINE_STATE_STOPPED)
        {
          if (type == VIREO_SNAPSHOT_OP_REVERT)
            g_task_return_new_error (task, VR_ERROR, VR_ERROR_STATE,
                                     _("“%s” was made outside Vireo and holds the disks only: "
                                       "turn the machine off to go back to it."),
                                     vireo_snapshot_get_name (snapshot));
          else
            g_task_return_new_error (task, VR_ERROR, VR_ERROR_STATE,
                                     _("“%s” was made outside Vireo: turn the machine off to "
                                       "delete it."),
                                     vireo_snapshot_get_name (snapshot));
          return NULL;
        }
      allowed = IN_STOPPED;
    }

  op = snap_op_begin (self, type, allowed, &error);
  if (op == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return NULL;
    }
  op->id = g_strdup (id);
  op->kind = vireo_snapshot_get_kind (snapshot);
  op->disk_id = g_strdup (vireo_snapshot_get_disk_id (snapshot));
  op->disks = g_strdupv ((char **) vireo_snapshot_get_disks (snapshot));
  op->memory = vireo_snapshot_get_memory (snapshot);
  return op;
}

void
vireo_machine_revert_snapshot_async (VireoMachine        *self,
                                     const char          *id,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SnapOp *op;

  g_return_if_fail (VIREO_IS_MACHINE (self));
  g_return_if_fail (id != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_revert_snapshot_async);
  op = begin_snapshot_op (self, task, id, VIREO_SNAPSHOT_OP_REVERT);
  if (op != NULL)
    snap_op_run (self, task, op, revert_thread, revert_done);
}

gboolean
vireo_machine_revert_snapshot_finish (VireoMachine  *self,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
delete_snapshot_thread (GTask        *task,
                        gpointer      source_object,
                        gpointer      task_data,
                        GCancellable *cancellable)
{
  SnapOp *op = task_data;
  g_autofree char *path = NULL;
  GError *error = NULL;
  VrMachine *vr;

  if (op->kind == VIREO_SNAPSHOT_KIND_DISK)
    {
      if (!disk_snapshot_do (op, FALSE, &error))
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }

  /* The entry first: a crash after this leaves an orphan, which is cleaned later, never a
   * listed snapshot with half its files. */
  if (!vireo_snapshot_store_remove (op->store, op->id, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  path = vireo_snapshot_store_dup_path (op->store, op->id);
  vr = snap_op_get_vr (op, &error);
  if (vr == NULL || !vr_machine_delete_snapshot (vr, path, &error))
    {
      g_task_return_new_error (task, error->domain, error->code,
                               _("The snapshot was removed from the list, but its files could "
                                 "not all be deleted (Vireo tries again the next time it takes "
                                 "a snapshot): %s"),
                               error->message);
      g_error_free (error);
      return;
    }
  remove_snapshot_leftovers (path);
  g_task_return_boolean (task, TRUE);
}

void
vireo_machine_delete_snapshot_async (VireoMachine        *self,
                                     const char          *id,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SnapOp *op;

  g_return_if_fail (VIREO_IS_MACHINE (self));
  g_return_if_fail (id != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_delete_snapshot_async);
  op = begin_snapshot_op (self, task, id, VIREO_SNAPSHOT_OP_DELETE);
  if (op != NULL)
    snap_op_run (self, task, op, delete_snapshot_thread, snap_op_done_boolean);
}

gboolean
vireo_machine_delete_snapshot_finish (VireoMachine  *self,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
vireo_machine_update_snapshot (VireoMachine  *self,
                               const char    *id,
                               const char    *name,
                               const char    *description,
                               GError       **error)
{
  VireoSnapshotStore *store;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_MACHINE (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  if (refuse_broken (self, error))
    return FALSE;
  store = vireo_machine_get_snapshot_store (self);
  ok = vireo_snapshot_store_update (store, id, name, description, error);
  vireo_machine_reload_snapshots (self);
  return ok;
}

/* Deletes a leftover saved state (and its disk snapshots, which would stand in the way of a
 * new one). */
static void
drop_old_saved_state (VrMachine *vr, const char *path)
{
  g_autofree char *used = g_strconcat (path, ".used", NULL);
  const char *paths[] = { used, path };

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    if (g_file_test (paths[i], G_FILE_TEST_IS_DIR))
      {
        g_autoptr(GError) error = NULL;

        g_message ("Deleting the old saved state %s", paths[i]);
        if (!vr_machine_delete_snapshot (vr, paths[i], &error))
          g_warning ("Cannot delete %s: %s", paths[i], error->message);
        remove_snapshot_leftovers (paths[i]);
      }
}

static void
save_state_thread (GTask        *task,
                   gpointer      source_object,
                   gpointer      task_data,
                   GCancellable *cancellable)
{
  SnapOp *op = task_data;
  g_autofree char *path = g_build_filename (op->dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);
  gboolean paused = FALSE;
  GError *error = NULL;

  drop_old_saved_state (op->vr, path);
  /* Paused first, so nothing reaches the disks between the snapshot and the stop. */
  if (vr_machine_get_state (op->vr) == VR_STATE_RUNNING)
    paused = vr_machine_pause (op->vr, NULL);
  if (!vr_machine_save_snapshot (op->vr, path, VIREO_MACHINE_SAVED_STATE_DIR, &error))
    {
      if (paused)
        vr_machine_resume (op->vr, NULL);
      g_task_return_new_error (task, error->domain, error->code,
                               _("The state of “%s” could not be saved: %s"),
                               op->name_of_machine, error->message);
      g_error_free (error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
save_state_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  SnapOp *op = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;
  gboolean ok;

  ok = g_task_propagate_boolean (G_TASK (result), &error);
  if (ok)
    {
      /* Saved: it stops now (the state on its disks is in the snapshot). */
      self->teardown_pending = TRUE;
      set_saved_state (self, TRUE, NULL);
    }
  snap_op_end (self, op);
  if (!ok)
    {
      if (self->vr != NULL && vr_machine_get_state (self->vr) == VR_STATE_PAUSED
          && self->state == VIREO_MACHINE_STATE_RUNNING)
        set_state (self, VIREO_MACHINE_STATE_PAUSED);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

void
vireo_machine_save_state_async (VireoMachine        *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  SnapOp *op;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_save_state_async);

  if (!vireo_machine_can_snapshot (self, &error))
    {
      g_task_return_new_error (task, error->domain, error->code,
                               _("The state of “%s” could not be saved: %s"),
                               vireo_machine_get_name (self), error->message);
      return;
    }
  op = snap_op_begin (self, VIREO_SNAPSHOT_OP_SAVE_STATE, IN_RUNNING | IN_PAUSED | IN_STOPPING,
                      &error);
  if (op == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  snap_op_run (self, task, op, save_state_thread, save_state_done);
}

gboolean
vireo_machine_save_state_finish (VireoMachine  *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
discard_state_thread (GTask        *task,
                      gpointer      source_object,
                      gpointer      task_data,
                      GCancellable *cancellable)
{
  SnapOp *op = task_data;
  g_autofree char *path = g_build_filename (op->dir, VIREO_MACHINE_SAVED_STATE_DIR, NULL);
  GError *error = NULL;
  VrMachine *vr;

  vr = snap_op_get_vr (op, &error);
  if (vr == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!vr_machine_delete_snapshot (vr, path, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  remove_snapshot_leftovers (path);
  drop_old_saved_state (vr, path);
  g_task_return_boolean (task, TRUE);
}

static void
discard_state_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  VireoMachine *self = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  SnapOp *op = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  snap_op_end (self, op);
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      set_saved_state (self, saved_state_exists (self), self->saved_state_error);
      g_task_return_error (task, error);
      return;
    }
  set_saved_state (self, saved_state_exists (self), NULL);
  g_task_return_boolean (task, TRUE);
}

void
vireo_machine_discard_saved_state_async (VireoMachine        *self,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  SnapOp *op;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_discard_saved_state_async);

  op = snap_op_begin (self, VIREO_SNAPSHOT_OP_DISCARD_STATE, IN_STOPPED, &error);
  if (op == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  snap_op_run (self, task, op, discard_state_thread, discard_state_done);
}

gboolean
vireo_machine_discard_saved_state_finish (VireoMachine  *self,
                                          GAsyncResult  *result,
                                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- files ------------------------------------------------------------------------------ */

/* @path (from the config) relative to @dir when the file is inside @dir, else NULL. */
static char *
path_inside_dir (const char *path, const char *dir)
{
  g_autoptr(GFile) d = g_file_new_for_path (dir);
  g_autofree char *full = vireo_machine_config_resolve_path (path, dir);
  g_autoptr(GFile) f = g_file_new_for_path (full);

  return g_file_get_relative_path (d, f);
}

/* Removes @dir and everything in it, never following symbolic links. */
static gboolean
remove_tree (GFile *dir, GCancellable *cancellable, GError **error)
{
  g_autoptr(GFileEnumerator) e = NULL;
  g_autoptr(GError) local = NULL;

  e = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                 G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, &local);
  if (e == NULL)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  for (;;)
    {
      GFileInfo *info;
      GFile *child;

      if (!g_file_enumerator_iterate (e, &info, &child, cancellable, error))
        return FALSE;
      if (info == NULL)
        break;
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        {
          if (!remove_tree (child, cancellable, error))
            return FALSE;
        }
      else if (!g_file_delete (child, cancellable, error))
        return FALSE;
    }
  return g_file_delete (dir, cancellable, error);
}

typedef struct
{
  char               *dir;
  VireoMachineConfig *config;   /* NULL for a broken machine */
  gboolean            trash_disks;
  /* clone */
  char               *name;
  gboolean            linked;
} FilesData;

static void
files_data_free (FilesData *data)
{
  g_free (data->dir);
  g_clear_pointer (&data->config, vireo_machine_config_unref);
  g_free (data->name);
  g_free (data);
}

static void
delete_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  FilesData *data = task_data;
  g_autoptr(GFile) dir = g_file_new_for_path (data->dir);
  GError *error = NULL;

  if (data->trash_disks && data->config == NULL)
    {
      /* A broken machine: nobody knows which files are disks; all of it goes to the trash. */
      if (!g_file_trash (dir, cancellable, &error))
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }

  for (guint i = 0; data->trash_disks && i < data->config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (data->config->disks, i);
      g_autofree char *rel = path_inside_dir (disk->path, data->dir);
      g_autoptr(GFile) file = NULL;
      g_autoptr(GError) local = NULL;

      if (rel == NULL)
        continue;  /* the user's own file (an ISO, an image used in place): not ours */
      file = g_file_get_child (dir, rel);
      if (!g_file_query_exists (file, cancellable))
        continue;
      /* Any failure stops here: a disk is never deleted when it should go to the trash. */
      if (!g_file_trash (file, cancellable, &local))
        {
          g_task_return_new_error (task, local->domain, local->code,
                                   _("Cannot move the disk image “%s” to the trash: %s"),
                                   rel, local->message);
          return;
        }
    }

  if (!remove_tree (dir, cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  {
    g_autofree char *parent = g_path_get_dirname (data->dir);
    vireo_fsync_dir (parent, NULL);
  }
  g_task_return_boolean (task, TRUE);
}

void
vireo_machine_delete_async (VireoMachine        *self,
                            gboolean             trash_disks,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  FilesData *data;

  g_return_if_fail (VIREO_IS_MACHINE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_delete_async);

  if (vireo_machine_is_active (self))
    {
      g_task_return_new_error (task, VR_ERROR, VR_ERROR_STATE,
                               _("“%s” is running: turn it off before deleting it."),
                               vireo_machine_get_name (self));
      return;
    }
  {
    g_autoptr(GError) error = NULL;

    if (!check_not_busy (self, &error))
      {
        g_task_return_error (task, g_steal_pointer (&error));
        return;
      }
  }

  data = g_new0 (FilesData, 1);
  data->dir = g_strdup (self->dir);
  data->config = self->config ? vireo_machine_config_ref (self->config) : NULL;
  data->trash_disks = trash_disks;
  g_task_set_task_data (task, data, (GDestroyNotify) files_data_free);
  g_task_run_in_thread (task, delete_thread);
}

gboolean
vireo_machine_delete_finish (VireoMachine  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Copies @src to @dst (created, must not exist) keeping holes: a reflink when the file
 * system can, else the data extents only. */
static gboolean
copy_sparse (const char *src, const char *dst, GCancellable *cancellable, GError **error)
{
  int in = -1, out = -1;
  struct stat st;
  off_t pos = 0;
  gboolean ok = FALSE;

  in = open (src, O_RDONLY | O_CLOEXEC);
  if (in < 0 || fstat (in, &st) < 0)
    goto fail;
  out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
  if (out < 0)
    goto fail;

  if (ioctl (out, FICLONE, in) == 0)
    goto done;

  while (pos < st.st_size)
    {
      off_t data = lseek (in, pos, SEEK_DATA);
      off_t hole;

      if (data < 0 && errno == ENXIO)
        break;  /* only a hole is left */
      if (data < 0)
        {
          data = pos;  /* no SEEK_DATA: copy everything */
          hole = st.st_size;
        }
      else
        {
          hole = lseek (in, data, SEEK_HOLE);
          if (hole < 0)
            hole = st.st_size;
        }

      while (data < hole)
        {
          off_t in_off = data, out_off = data;
          ssize_t n;

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            goto out;
          n = copy_file_range (in, &in_off, out, &out_off, MIN ((size_t) (hole - data),
                                                                 (size_t) 64 << 20), 0);
          if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
            {
              char buf[64 * 1024];

              n = pread (in, buf, MIN (sizeof buf, (size_t) (hole - data)), data);
              if (n > 0 && pwrite (out, buf, (size_t) n, data) != n)
                goto fail;
            }
          if (n < 0)
            goto fail;
          if (n == 0)
            break;
          data += n;
        }
      pos = hole;
    }
  if (ftruncate (out, st.st_size) < 0)
    goto fail;

done:
  if (fsync (out) < 0)
    goto fail;
  ok = TRUE;
  goto out;

fail:
  {
    int saved = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                 _("Cannot copy “%s”: %s"), src, g_strerror (saved));
  }
out:
  if (in >= 0)
    close (in);
  if (out >= 0)
    close (out);
  if (!ok && out >= 0)
    g_unlink (dst);
  return ok;
}

static void
clone_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  FilesData *data = task_data;
  g_autofree char *parent = g_path_get_dirname (data->dir);
  g_autofree char *src_uuid = g_path_get_basename (data->dir);
  g_autofree char *tmp = g_build_filename (parent, ".clone-XXXXXX", NULL);
  g_autofree char *final = NULL;
  g_autofree char *conf = NULL;
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_copy (data->config);
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GError *error = NULL;

  if (g_mkdtemp (tmp) == NULL)
    {
      int saved = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Cannot create the folder for the clone: %s"),
                               g_strerror (saved));
      return;
    }

  g_free (config->uuid);
  config->uuid = g_uuid_string_random ();
  g_free (config->name);
  config->name = g_strdup (data->name);
  g_clear_pointer (&config->created, g_date_time_unref);
  config->created = g_date_time_new_now_utc ();

  for (guint i = 0; i < config->disks->len; i++)
    {
      VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);
      g_autofree char *rel = path_inside_dir (disk->path, data->dir);
      g_autofree char *src = NULL;
      g_autofree char *dst = NULL;

      if (rel == NULL || disk->readonly || disk->media == VIREO_DISK_MEDIA_CDROM)
        {
          /* Shared: the user's own file, or one no machine writes. A relative path inside
           * the source folder becomes absolute. */
          g_autofree char *full = vireo_machine_config_resolve_path (disk->path, data->dir);
          g_free (disk->path);
          disk->path = g_steal_pointer (&full);
          continue;
        }

      src = g_build_filename (data->dir, rel, NULL);
      if (!data->linked)
        {
          g_autofree char *subdir = NULL;

          dst = g_build_filename (tmp, rel, NULL);
          subdir = g_path_get_dirname (dst);
          g_mkdir_with_parents (subdir, 0755);
          if (!copy_sparse (src, dst, cancellable, &error))
            goto fail;
          g_free (disk->path);
          disk->path = g_steal_pointer (&rel);
        }
      else
        {
          g_autofree char *base = g_path_get_basename (rel);
          g_autofree char *stem = NULL;
          g_autofree char *name = NULL;
          g_autofree char *backing = NULL;
          char *dot = strrchr (base, '.');

          if (dot && dot != base)
            *dot = '\0';
          stem = g_strdup (base);
          name = g_strdup_printf ("%s.qcow2", stem);
          for (guint n = 2; g_hash_table_contains (used, name); n++)
            {
              g_free (name);
              name = g_strdup_printf ("%s-%u.qcow2", stem, n);
            }
          g_hash_table_add (used, g_strdup (name));
          dst = g_build_filename (tmp, name, NULL);
          /* Relative to the overlay's folder, so the library can move as a whole. */
          backing = g_build_filename ("..", src_uuid, rel, NULL);
          if (!vr_disk_create (dst, VR_DISK_FORMAT_QCOW2, 0, backing, disk->format, &error))
            goto fail;
          g_free (disk->path);
          disk->path = g_strdup (name);
          disk->format = VR_DISK_FORMAT_QCOW2;
        }
    }

  conf = g_build_filename (tmp, VIREO_MACHINE_CONFIG_FILE, NULL);
  if (!vireo_machine_config_save (config, conf, &error))
    goto fail;
  final = g_build_filename (parent, config->uuid, NULL);
  if (g_rename (tmp, final) < 0)
    {
      int saved = errno;
      g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create the folder for the clone: %s"), g_strerror (saved));
      goto fail;
    }
  vireo_fsync_dir (parent, NULL);
  g_task_return_pointer (task, vireo_machine_new (config, final), g_object_unref);
  return;

fail:
  {
    g_autoptr(GFile) t = g_file_new_for_path (tmp);
    remove_tree (t, NULL, NULL);
  }
  g_task_return_error (task, error);
}

void
vireo_machine_clone_async (VireoMachine        *self,
                           const char          *name,
                           gboolean             linked,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  FilesData *data;

  g_return_if_fail (VIREO_IS_MACHINE (self));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_machine_clone_async);

  if (!check_state (self, &error, IN_STOPPED)
      || !vireo_machine_name_is_valid (name, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  data = g_new0 (FilesData, 1);
  data->dir = g_strdup (self->dir);
  data->config = vireo_machine_config_ref (self->config);
  data->name = g_strdup (name);
  data->linked = linked;
  g_task_set_task_data (task, data, (GDestroyNotify) files_data_free);
  g_task_run_in_thread (task, clone_thread);
}

VireoMachine *
vireo_machine_clone_finish (VireoMachine  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
