/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-library"

#include "config.h"

#include "vireo-library.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>

#include "vireo-atomic-file.h"

/* A folder ".new-…" or ".clone-…" older than this was left by a crash: removed at load. */
#define STALE_WORK_DIR_S (60 * 60)

struct _VireoLibrary
{
  GObject       parent_instance;

  char         *dir;
  GPtrArray    *machines;      /* VireoMachine *, sorted */
  GHashTable   *by_uuid;       /* folder name → VireoMachine * (borrowed) */
  GFileMonitor *monitor;
  gboolean      loaded;
  gboolean      loading;
};

static void vireo_library_list_model_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (VireoLibrary, vireo_library, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL,
                                                      vireo_library_list_model_init))

enum
{
  PROP_0,
  PROP_DIR,
  PROP_LOADED,
  PROP_N_ITEMS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---- GListModel ------------------------------------------------------------------------- */

static GType
list_get_item_type (GListModel *model)
{
  return VIREO_TYPE_MACHINE;
}

static guint
list_get_n_items (GListModel *model)
{
  return VIREO_LIBRARY (model)->machines->len;
}

static gpointer
list_get_item (GListModel *model,
               guint       position)
{
  VireoLibrary *self = VIREO_LIBRARY (model);

  if (position >= self->machines->len)
    return NULL;
  return g_object_ref (g_ptr_array_index (self->machines, position));
}

static void
vireo_library_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = list_get_item_type;
  iface->get_n_items = list_get_n_items;
  iface->get_item = list_get_item;
}

/* ---- the sorted list -------------------------------------------------------------------- */

static int
machine_cmp (VireoMachine *a, VireoMachine *b)
{
  g_autofree char *ka = g_utf8_casefold (vireo_machine_get_name (a), -1);
  g_autofree char *kb = g_utf8_casefold (vireo_machine_get_name (b), -1);
  int r = g_utf8_collate (ka, kb);

  return r != 0 ? r : g_strcmp0 (vireo_machine_get_uuid (a), vireo_machine_get_uuid (b));
}

static guint
find_insert_position (VireoLibrary *self, VireoMachine *machine)
{
  guint lo = 0, hi = self->machines->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (machine_cmp (g_ptr_array_index (self->machines, mid), machine) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

static void machine_name_changed (VireoMachine *machine, GParamSpec *pspec, VireoLibrary *self);

static guint
insert_sorted (VireoLibrary *self, VireoMachine *machine)
{
  guint pos = find_insert_position (self, machine);

  g_ptr_array_insert (self->machines, (gint) pos, g_object_ref (machine));
  return pos;
}

/* Adds without notifying; returns the machine in the list (an existing one with the same
 * folder wins). */
static VireoMachine *
add_machine_quiet (VireoLibrary *self, VireoMachine *machine, guint *position)
{
  g_autofree char *key = g_path_get_basename (vireo_machine_get_dir (machine));
  VireoMachine *existing = g_hash_table_lookup (self->by_uuid, key);

  if (existing != NULL)
    {
      *position = G_MAXUINT;
      return existing;
    }
  *position = insert_sorted (self, machine);
  g_hash_table_insert (self->by_uuid, g_steal_pointer (&key), machine);
  g_signal_connect_object (machine, "notify::name", G_CALLBACK (machine_name_changed), self, 0);
  return machine;
}

static VireoMachine *
add_machine (VireoLibrary *self, VireoMachine *machine)
{
  guint pos;
  VireoMachine *m = add_machine_quiet (self, machine, &pos);

  if (pos != G_MAXUINT)
    {
      g_list_model_items_changed (G_LIST_MODEL (self), pos, 0, 1);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
    }
  return m;
}

static void
remove_machine (VireoLibrary *self, VireoMachine *machine)
{
  g_autofree char *key = g_path_get_basename (vireo_machine_get_dir (machine));
  guint pos;

  if (!g_ptr_array_find (self->machines, machine, &pos))
    return;
  g_hash_table_remove (self->by_uuid, key);
  g_signal_handlers_disconnect_by_func (machine, machine_name_changed, self);
  g_ptr_array_remove_index (self->machines, pos);
  g_list_model_items_changed (G_LIST_MODEL (self), pos, 1, 0);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
}

static void
machine_name_changed (VireoMachine *machine,
                      GParamSpec   *pspec,
                      VireoLibrary *self)
{
  g_autoptr(VireoMachine) keep = g_object_ref (machine);
  guint old_pos, new_pos;

  if (!g_ptr_array_find (self->machines, machine, &old_pos))
    return;
  g_ptr_array_remove_index (self->machines, old_pos);
  new_pos = insert_sorted (self, machine);
  if (old_pos == new_pos)
    {
      g_list_model_items_changed (G_LIST_MODEL (self), old_pos, 1, 1);
      return;
    }
  g_list_model_items_changed (G_LIST_MODEL (self), old_pos, 1, 0);
  g_list_model_items_changed (G_LIST_MODEL (self), new_pos, 0, 1);
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
vireo_library_dispose (GObject *object)
{
  VireoLibrary *self = VIREO_LIBRARY (object);

  if (self->monitor)
    g_file_monitor_cancel (self->monitor);
  g_clear_object (&self->monitor);
  for (guint i = 0; i < self->machines->len; i++)
    g_signal_handlers_disconnect_by_func (g_ptr_array_index (self->machines, i),
                                          machine_name_changed, self);
  g_hash_table_remove_all (self->by_uuid);
  g_ptr_array_set_size (self->machines, 0);

  G_OBJECT_CLASS (vireo_library_parent_class)->dispose (object);
}

static void
vireo_library_finalize (GObject *object)
{
  VireoLibrary *self = VIREO_LIBRARY (object);

  g_free (self->dir);
  g_ptr_array_unref (self->machines);
  g_hash_table_unref (self->by_uuid);

  G_OBJECT_CLASS (vireo_library_parent_class)->finalize (object);
}

static void
vireo_library_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  VireoLibrary *self = VIREO_LIBRARY (object);

  switch (prop_id)
    {
    case PROP_DIR:
      g_value_set_string (value, self->dir);
      break;
    case PROP_LOADED:
      g_value_set_boolean (value, self->loaded);
      break;
    case PROP_N_ITEMS:
      g_value_set_uint (value, self->machines->len);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_library_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  VireoLibrary *self = VIREO_LIBRARY (object);

  switch (prop_id)
    {
    case PROP_DIR:
      g_free (self->dir);
      self->dir = g_value_dup_string (value);
      if (self->dir == NULL)
        self->dir = vireo_library_default_dir ();
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_library_class_init (VireoLibraryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = vireo_library_dispose;
  object_class->finalize = vireo_library_finalize;
  object_class->get_property = vireo_library_get_property;
  object_class->set_property = vireo_library_set_property;

  properties[PROP_DIR] =
    g_param_spec_string ("dir", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS
                         | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_LOADED] =
    g_param_spec_boolean ("loaded", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_N_ITEMS] =
    g_param_spec_uint ("n-items", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
vireo_library_init (VireoLibrary *self)
{
  self->machines = g_ptr_array_new_with_free_func (g_object_unref);
  self->by_uuid = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

char *
vireo_library_default_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "vireo", "machines", NULL);
}

VireoLibrary *
vireo_library_new (const char *dir)
{
  return g_object_new (VIREO_TYPE_LIBRARY, "dir", dir, NULL);
}

const char *
vireo_library_get_dir (VireoLibrary *self)
{
  g_return_val_if_fail (VIREO_IS_LIBRARY (self), NULL);
  return self->dir;
}

gboolean
vireo_library_is_loaded (VireoLibrary *self)
{
  g_return_val_if_fail (VIREO_IS_LIBRARY (self), FALSE);
  return self->loaded;
}

VireoMachine *
vireo_library_find_by_uuid (VireoLibrary *self,
                            const char   *uuid)
{
  g_return_val_if_fail (VIREO_IS_LIBRARY (self), NULL);
  g_return_val_if_fail (uuid != NULL, NULL);

  return g_hash_table_lookup (self->by_uuid, uuid);
}

/* ---- watching --------------------------------------------------------------------------- */

static gboolean
is_machine_dir_name (const char *name)
{
  return name != NULL && name[0] != '.' && name[0] != '\0';
}

static void
child_appeared (VireoLibrary *self, GFile *file)
{
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *path = g_file_get_path (file);
  g_autoptr(VireoMachine) machine = NULL;

  if (!is_machine_dir_name (name) || g_hash_table_contains (self->by_uuid, name)
      || !g_file_test (path, G_FILE_TEST_IS_DIR))
    return;
  machine = vireo_machine_load (path);
  g_debug ("Machine folder appeared: %s", path);
  add_machine (self, machine);
}

static void
child_vanished (VireoLibrary *self, GFile *file)
{
  g_autofree char *name = g_file_get_basename (file);
  VireoMachine *machine = name ? g_hash_table_lookup (self->by_uuid, name) : NULL;
  g_autoptr(VireoMachine) keep = NULL;

  if (machine == NULL)
    return;
  g_debug ("Machine folder vanished: %s", vireo_machine_get_dir (machine));
  keep = g_object_ref (machine);
  vireo_machine_force_off (machine);
  remove_machine (self, machine);
}

static void
monitor_changed (GFileMonitor      *monitor,
                 GFile             *file,
                 GFile             *other,
                 GFileMonitorEvent  event,
                 VireoLibrary      *self)
{
  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
      child_appeared (self, file);
      break;
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
      child_vanished (self, file);
      break;
    case G_FILE_MONITOR_EVENT_RENAMED:
      child_vanished (self, file);
      if (other)
        child_appeared (self, other);
      break;
    case G_FILE_MONITOR_EVENT_CHANGED:
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
    case G_FILE_MONITOR_EVENT_PRE_UNMOUNT:
    case G_FILE_MONITOR_EVENT_UNMOUNTED:
    case G_FILE_MONITOR_EVENT_MOVED:
    default:
      break;
    }
}

/* ---- loading ---------------------------------------------------------------------------- */

static void
remove_stale_work_dir (const char *path)
{
  GStatBuf st;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileEnumerator) e = NULL;

  if (g_stat (path, &st) != 0 || !S_ISDIR (st.st_mode)
      || (gint64) st.st_mtime > g_get_real_time () / G_USEC_PER_SEC - STALE_WORK_DIR_S)
    return;
  /* Only flat folders: what create and clone leave (disks and machine.conf). */
  file = g_file_new_for_path (path);
  e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  for (;;)
    {
      GFile *child = NULL;

      if (e == NULL || !g_file_enumerator_iterate (e, NULL, &child, NULL, NULL) || child == NULL)
        break;
      g_file_delete (child, NULL, NULL);
    }
  if (g_rmdir (path) == 0)
    g_message ("Removed %s, left by an interrupted creation", path);
}

static void
load_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  const char *dir = task_data;
  g_autoptr(GPtrArray) machines = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GDir) d = NULL;
  GError *error = NULL;
  const char *name;

  if (g_mkdir_with_parents (dir, 0755) < 0)
    {
      int saved = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Cannot create the machine folder “%s”: %s"), dir,
                               g_strerror (saved));
      return;
    }
  d = g_dir_open (dir, 0, &error);
  if (d == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_cancellable_is_cancelled (cancellable))
        break;
      if (g_str_has_prefix (name, ".new-") || g_str_has_prefix (name, ".clone-"))
        {
          remove_stale_work_dir (path);
          continue;
        }
      if (!is_machine_dir_name (name) || !g_file_test (path, G_FILE_TEST_IS_DIR))
        continue;
      g_ptr_array_add (machines, vireo_machine_load (path));
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  g_task_return_pointer (task, g_steal_pointer (&machines), (GDestroyNotify) g_ptr_array_unref);
}

static void
load_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  VireoLibrary *self = VIREO_LIBRARY (source);
  g_autoptr(GTask) task = user_data;
  g_autoptr(GPtrArray) machines = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) dir = NULL;
  guint old_len = self->machines->len;

  self->loading = FALSE;
  machines = g_task_propagate_pointer (G_TASK (result), &error);
  if (machines == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  /* One items-changed for the whole library. */
  for (guint i = 0; i < machines->len; i++)
    {
      guint pos;
      add_machine_quiet (self, g_ptr_array_index (machines, i), &pos);
    }
  if (self->machines->len != old_len)
    {
      g_list_model_items_changed (G_LIST_MODEL (self), 0, old_len, self->machines->len);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
    }

  dir = g_file_new_for_path (self->dir);
  self->monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
  if (self->monitor == NULL)
    g_warning ("Cannot watch %s: %s", self->dir, error->message);
  else
    g_signal_connect_object (self->monitor, "changed", G_CALLBACK (monitor_changed), self, 0);

  self->loaded = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADED]);
  g_task_return_boolean (task, TRUE);
}

void
vireo_library_load_async (VireoLibrary        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GTask) inner = NULL;

  g_return_if_fail (VIREO_IS_LIBRARY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_library_load_async);
  if (self->loaded || self->loading)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The library is already loaded");
      return;
    }
  self->loading = TRUE;
  inner = g_task_new (self, cancellable, load_done, g_steal_pointer (&task));
  g_task_set_task_data (inner, g_strdup (self->dir), g_free);
  g_task_run_in_thread (inner, load_thread);
}

gboolean
vireo_library_load_finish (VireoLibrary  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- names and disks -------------------------------------------------------------------- */

gboolean
vireo_library_name_is_taken (VireoLibrary *self,
                             const char   *name,
                             VireoMachine *except)
{
  g_autofree char *trimmed = NULL;
  g_autofree char *key = NULL;

  g_return_val_if_fail (VIREO_IS_LIBRARY (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  trimmed = g_strstrip (g_strdup (name));
  key = g_utf8_casefold (trimmed, -1);
  for (guint i = 0; i < self->machines->len; i++)
    {
      VireoMachine *m = g_ptr_array_index (self->machines, i);
      g_autofree char *other = NULL;

      if (m == except || vireo_machine_is_broken (m))
        continue;
      other = g_utf8_casefold (vireo_machine_get_name (m), -1);
      g_strstrip (other);
      if (g_str_equal (key, other))
        return TRUE;
    }
  return FALSE;
}

char *
vireo_library_suggest_name (VireoLibrary *self,
                            const char   *base)
{
  g_return_val_if_fail (VIREO_IS_LIBRARY (self), NULL);
  g_return_val_if_fail (base != NULL, NULL);

  if (!vireo_library_name_is_taken (self, base, NULL))
    return g_strdup (base);
  for (guint n = 2;; n++)
    {
      /* Translators: a machine's name made unique: "Debian 2" */
      g_autofree char *name = g_strdup_printf (C_("machine name", "%s %u"), base, n);

      if (!vireo_library_name_is_taken (self, name, NULL))
        return g_steal_pointer (&name);
    }
}

char *
vireo_library_get_default_disk_dir (VireoLibrary *self)
{
  g_return_val_if_fail (VIREO_IS_LIBRARY (self), NULL);
  return g_strdup (self->dir);
}

const char *
vireo_library_default_disk_name (VrDiskFormat format)
{
  switch (format)
    {
    case VR_DISK_FORMAT_QCOW2:
      return "disk.qcow2";
    case VR_DISK_FORMAT_VMDK:
      return "disk.vmdk";
    case VR_DISK_FORMAT_RAW:
    default:
      return "disk.img";
    }
}

gboolean
vireo_library_query_free_space (VireoLibrary  *self,
                                guint64       *bytes,
                                GError       **error)
{
  g_autoptr(GFile) dir = NULL;
  g_autoptr(GFileInfo) info = NULL;

  g_return_val_if_fail (VIREO_IS_LIBRARY (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);

  g_mkdir_with_parents (self->dir, 0755);
  dir = g_file_new_for_path (self->dir);
  info = g_file_query_filesystem_info (dir, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, error);
  if (info == NULL)
    return FALSE;
  *bytes = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  return TRUE;
}

/* ---- creating --------------------------------------------------------------------------- */

static void
create_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  VireoLibrary *self = source_object;
  VireoMachineConfig *config = task_data;
  g_autofree char *tmp = NULL;
  g_autofree char *final = NULL;
  g_autofree char *conf = NULL;
  GError *error = NULL;

  if (g_mkdir_with_parents (self->dir, 0755) < 0)
    {
      int saved = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Cannot create the machine folder “%s”: %s"), self->dir,
                               g_strerror (saved));
      return;
    }
  tmp = g_build_filename (self->dir, ".new-XXXXXX", NULL);
  if (g_mkdtemp (tmp) == NULL)
    {
      int saved = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               _("Cannot create the machine folder “%s”: %s"), self->dir,
                               g_strerror (saved));
      return;
    }

  for (guint i = 0; i < config->disks->len; i++)
    {
      VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);
      g_autofree char *path = NULL;

      if (disk->create_size == 0)
        continue;
      if (g_path_is_absolute (disk->path) || strstr (disk->path, "..") != NULL)
        {
          g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "A new disk goes inside the machine's folder, not to %s", disk->path);
          goto fail;
        }
      path = g_build_filename (tmp, disk->path, NULL);
      if (!vr_disk_create (path, disk->format, disk->create_size, NULL, VR_DISK_FORMAT_RAW,
                           &error))
        goto fail;
      disk->create_size = 0;
    }

  if (!vireo_machine_config_validate (config, tmp, &error))
    goto fail;
  conf = g_build_filename (tmp, VIREO_MACHINE_CONFIG_FILE, NULL);
  if (!vireo_machine_config_save (config, conf, &error))
    goto fail;
  final = g_build_filename (self->dir, config->uuid, NULL);
  if (g_rename (tmp, final) < 0)
    {
      int saved = errno;
      g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create the machine folder “%s”: %s"), final, g_strerror (saved));
      goto fail;
    }
  vireo_fsync_dir (self->dir, NULL);
  g_task_return_pointer (task, vireo_machine_new (config, final), g_object_unref);
  return;

fail:
  {
    g_autoptr(GFile) t = g_file_new_for_path (tmp);
    g_autoptr(GFileEnumerator) e = g_file_enumerate_children (t, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                              G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                                              NULL, NULL);
    for (;;)
      {
        GFile *child = NULL;

        if (e == NULL || !g_file_enumerator_iterate (e, NULL, &child, NULL, NULL) || !child)
          break;
        g_file_delete (child, NULL, NULL);
      }
    g_rmdir (tmp);
  }
  g_task_return_error (task, error);
}

static void
created_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  VireoLibrary *self = VIREO_LIBRARY (source);
  g_autoptr(GTask) task = user_data;
  g_autoptr(VireoMachine) machine = NULL;
  GError *error = NULL;

  machine = g_task_propagate_pointer (G_TASK (result), &error);
  if (machine == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_object_ref (add_machine (self, machine)), g_object_unref);
}

void
vireo_library_create_machine_async (VireoLibrary        *self,
                                    VireoMachineConfig  *config,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GTask) inner = NULL;
  g_autoptr(GError) error = NULL;
  VireoMachineConfig *copy;

  g_return_if_fail (VIREO_IS_LIBRARY (self));
  g_return_if_fail (config != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_library_create_machine_async);

  if (!vireo_machine_config_validate (config, NULL, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (vireo_library_name_is_taken (self, config->name, NULL))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_EXISTS,
                               _("A machine named “%s” already exists."), config->name);
      return;
    }

  copy = vireo_machine_config_copy (config);
  if (copy->uuid == NULL || g_hash_table_contains (self->by_uuid, copy->uuid))
    {
      g_free (copy->uuid);
      copy->uuid = g_uuid_string_random ();
    }
  if (copy->created == NULL)
    copy->created = g_date_time_new_now_utc ();
  copy->loaded_version = VIREO_MACHINE_CONFIG_VERSION;

  inner = g_task_new (self, cancellable, created_cb, g_steal_pointer (&task));
  g_task_set_task_data (inner, copy, (GDestroyNotify) vireo_machine_config_unref);
  g_task_run_in_thread (inner, create_thread);
}

VireoMachine *
vireo_library_create_machine_finish (VireoLibrary  *self,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the demo machine ------------------------------------------------------------------- */

char *
vireo_library_get_demo_guest_path (void)
{
  const char *env = g_getenv ("VIREO_DEMO_GUEST");

  if (env != NULL && *env)
    return g_strdup (env);
  return g_build_filename (VIREO_DATADIR, "demo", "demo.elf", NULL);
}

void
vireo_library_create_demo_machine_async (VireoLibrary        *self,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(VireoMachineConfig) config = vireo_machine_config_new ();
  g_autofree char *guest = vireo_library_get_demo_guest_path ();

  g_return_if_fail (VIREO_IS_LIBRARY (self));

  if (!g_file_test (guest, G_FILE_TEST_IS_REGULAR))
    {
      g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

      g_task_set_source_tag (task, vireo_library_create_machine_async);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("The demo machine is not installed (“%s” is missing)."),
                               guest);
      return;
    }

  config->name = vireo_library_suggest_name (self, _("Demo Machine"));
  config->source = g_strdup (_("Vireo demo guest"));
  config->notes = g_strdup (_("A small guest that comes with Vireo: it draws on the screen, "
                              "echoes what you type, and answers a few commands on the serial "
                              "console (type “help”)."));
  config->boot_kind = VIREO_BOOT_KERNEL;
  config->kernel = g_steal_pointer (&guest);
  config->memory_mib = 64;
  config->cpus = 1;
  config->display = VIREO_DISPLAY_STD;
  config->input = TRUE;
  config->rng = FALSE;
  config->serial_log = TRUE;
  g_ptr_array_set_size (config->nics, 0);

  vireo_library_create_machine_async (self, config, cancellable, callback, user_data);
}

VireoMachine *
vireo_library_create_demo_machine_finish (VireoLibrary  *self,
                                          GAsyncResult  *result,
                                          GError       **error)
{
  return vireo_library_create_machine_finish (self, result, error);
}

/* ---- delete and clone ------------------------------------------------------------------- */

static void
deleted_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  VireoMachine *machine = VIREO_MACHINE (source);
  g_autoptr(GTask) task = user_data;
  VireoLibrary *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!vireo_machine_delete_finish (machine, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  remove_machine (self, machine);
  g_task_return_boolean (task, TRUE);
}

void
vireo_library_delete_machine_async (VireoLibrary        *self,
                                    VireoMachine        *machine,
                                    gboolean             trash_disks,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (VIREO_IS_LIBRARY (self));
  g_return_if_fail (VIREO_IS_MACHINE (machine));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_library_delete_machine_async);
  g_task_set_task_data (task, g_object_ref (machine), g_object_unref);
  vireo_machine_delete_async (machine, trash_disks, cancellable, deleted_cb, task);
}

gboolean
vireo_library_delete_machine_finish (VireoLibrary  *self,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
cloned_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  VireoLibrary *self = g_task_get_source_object (task);
  g_autoptr(VireoMachine) clone = NULL;
  GError *error = NULL;

  clone = vireo_machine_clone_finish (VIREO_MACHINE (source), result, &error);
  if (clone == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_object_ref (add_machine (self, clone)), g_object_unref);
}

void
vireo_library_clone_machine_async (VireoLibrary        *self,
                                   VireoMachine        *machine,
                                   const char          *name,
                                   gboolean             linked,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (VIREO_IS_LIBRARY (self));
  g_return_if_fail (VIREO_IS_MACHINE (machine));
  g_return_if_fail (name != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_library_clone_machine_async);
  if (vireo_library_name_is_taken (self, name, NULL))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_EXISTS,
                               _("A machine named “%s” already exists."), name);
      g_object_unref (task);
      return;
    }
  vireo_machine_clone_async (machine, name, linked, cancellable, cloned_cb, task);
}

VireoMachine *
vireo_library_clone_machine_finish (VireoLibrary  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
