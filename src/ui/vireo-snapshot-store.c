/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-snapshot-store"

#include "config.h"

#include "vireo-snapshot-store.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>

#include "disk/vr-disk.h"
#include "snapshot/vr-snapshot.h"
#include "vireo-atomic-file.h"

#define GROUP_VIREO     "Vireo"
#define GROUP_PREFIX    "Snapshot "
#define KEY_VERSION     "Version"
#define KEY_CURRENT     "Current"
#define KEY_NAME        "Name"
#define KEY_DESCRIPTION "Description"
#define KEY_CREATED     "Created"
#define KEY_PARENT      "Parent"
#define KEY_MEMORY      "Memory"
#define KEY_THUMBNAIL   "Thumbnail"

#define STATE_FILE      "state"
#define RAM_FILE        "ram"
#define MAX_ID_LEN      64

/* The machine's saved state (see vireo-machine.h) lives beside snapshots/, under this disk
 * id: never one of ours to list. */
#define SAVED_STATE_DISK_ID "saved-state"

struct _VireoSnapshotStore
{
  GObject     parent_instance;

  char       *dir;
  char       *index_path;

  /* The index functions, the disks and what was seen on them. */
  GMutex      lock;
  char      **disks;
  GHashTable *disk_ids;      /* every id and name seen on the disks at the last scan */
  GPtrArray  *foreign;       /* Entry *, KIND_DISK, from the last scan */

  /* The model (main thread). */
  GPtrArray  *items;         /* VireoSnapshot *, oldest first */
  GListStore *roots;
  char       *current_id;
  char       *error;
};

static void vireo_snapshot_store_list_model_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (VireoSnapshotStore, vireo_snapshot_store, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL,
                                                      vireo_snapshot_store_list_model_init))

G_DEFINE_QUARK (vireo-snapshot-store-error-quark, vireo_snapshot_store_error)

/* What the index (or a disk) says about one snapshot, before it becomes a VireoSnapshot. */
typedef struct
{
  char              *id;
  VireoSnapshotKind  kind;
  char              *name;
  char              *description;
  GDateTime         *created;
  char              *parent_id;
  gboolean           memory;
  char              *thumbnail;   /* full path, or NULL */
  char              *broken;
  char              *disk_id;
  GPtrArray         *disks;       /* char *, for KIND_DISK */
} Entry;

static void
entry_free (Entry *e)
{
  g_free (e->id);
  g_free (e->name);
  g_free (e->description);
  g_clear_pointer (&e->created, g_date_time_unref);
  g_free (e->parent_id);
  g_free (e->thumbnail);
  g_free (e->broken);
  g_free (e->disk_id);
  g_clear_pointer (&e->disks, g_ptr_array_unref);
  g_free (e);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Entry, entry_free)

/* ---- GListModel ------------------------------------------------------------------------- */

static GType
list_get_item_type (GListModel *model)
{
  return VIREO_TYPE_SNAPSHOT;
}

static guint
list_get_n_items (GListModel *model)
{
  return VIREO_SNAPSHOT_STORE (model)->items->len;
}

static gpointer
list_get_item (GListModel *model,
               guint       position)
{
  VireoSnapshotStore *self = VIREO_SNAPSHOT_STORE (model);

  if (position >= self->items->len)
    return NULL;
  return g_object_ref (g_ptr_array_index (self->items, position));
}

static void
vireo_snapshot_store_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = list_get_item_type;
  iface->get_n_items = list_get_n_items;
  iface->get_item = list_get_item;
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
vireo_snapshot_store_finalize (GObject *object)
{
  VireoSnapshotStore *self = VIREO_SNAPSHOT_STORE (object);

  g_free (self->dir);
  g_free (self->index_path);
  g_mutex_clear (&self->lock);
  g_strfreev (self->disks);
  g_hash_table_unref (self->disk_ids);
  g_ptr_array_unref (self->foreign);
  g_ptr_array_unref (self->items);
  g_clear_object (&self->roots);
  g_free (self->current_id);
  g_free (self->error);

  G_OBJECT_CLASS (vireo_snapshot_store_parent_class)->finalize (object);
}

static void
vireo_snapshot_store_class_init (VireoSnapshotStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = vireo_snapshot_store_finalize;
}

static void
vireo_snapshot_store_init (VireoSnapshotStore *self)
{
  g_mutex_init (&self->lock);
  self->disk_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->foreign = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
  self->roots = g_list_store_new (VIREO_TYPE_SNAPSHOT);
}

VireoSnapshotStore *
vireo_snapshot_store_new (const char *dir)
{
  VireoSnapshotStore *self;

  g_return_val_if_fail (dir != NULL, NULL);

  self = g_object_new (VIREO_TYPE_SNAPSHOT_STORE, NULL);
  self->dir = g_strdup (dir);
  self->index_path = g_build_filename (dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);
  return self;
}

const char *
vireo_snapshot_store_get_dir (VireoSnapshotStore *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);
  return self->dir;
}

void
vireo_snapshot_store_set_disks (VireoSnapshotStore *self,
                                const char *const  *paths)
{
  g_return_if_fail (VIREO_IS_SNAPSHOT_STORE (self));

  g_mutex_lock (&self->lock);
  g_strfreev (self->disks);
  self->disks = g_strdupv ((char **) paths);
  g_mutex_unlock (&self->lock);
}

static gboolean
id_is_valid (const char *id)
{
  if (id == NULL || *id == '\0' || strlen (id) > MAX_ID_LEN || !g_ascii_isalnum (id[0]))
    return FALSE;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

char *
vireo_snapshot_store_dup_path (VireoSnapshotStore *self,
                               const char         *id)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);
  g_return_val_if_fail (id_is_valid (id), NULL);

  return g_build_filename (self->dir, id, NULL);
}

gboolean
vireo_snapshot_name_is_valid (const char  *name,
                              GError     **error)
{
  g_autofree char *trimmed = NULL;

  if (name == NULL || !g_utf8_validate (name, -1, NULL))
    {
      g_set_error_literal (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID,
                           _("A snapshot needs a name."));
      return FALSE;
    }
  trimmed = g_strstrip (g_strdup (name));
  if (*trimmed == '\0')
    {
      g_set_error_literal (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID,
                           _("A snapshot needs a name."));
      return FALSE;
    }
  for (const char *p = name; *p; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      {
        g_set_error_literal (error, VIREO_SNAPSHOT_STORE_ERROR,
                             VIREO_SNAPSHOT_STORE_ERROR_INVALID,
                             _("A snapshot’s name cannot contain control characters."));
        return FALSE;
      }
  return TRUE;
}

/* ---- the index -------------------------------------------------------------------------- */

/* The index as a key file; an empty one when there is none. @self->lock held. */
static GKeyFile *
read_index (VireoSnapshotStore *self, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  int version;

  if (!g_key_file_load_from_file (kf, self->index_path,
                                  G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS,
                                  &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_key_file_set_integer (kf, GROUP_VIREO, KEY_VERSION, VIREO_SNAPSHOT_STORE_VERSION);
          return g_steal_pointer (&kf);
        }
      g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_PARSE,
                   _("The list of snapshots (%s) cannot be read: %s"), self->index_path,
                   local->message);
      return NULL;
    }

  version = g_key_file_get_integer (kf, GROUP_VIREO, KEY_VERSION, &local);
  if (local != NULL || version < 1)
    {
      g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_PARSE,
                   _("The list of snapshots (%s) cannot be read: it has no valid format "
                     "version."),
                   self->index_path);
      return NULL;
    }
  if (version > VIREO_SNAPSHOT_STORE_VERSION)
    {
      g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NEWER,
                   _("The list of snapshots was written by a newer version of Vireo (format "
                     "%d; this version knows format %d). Update Vireo to use these snapshots: "
                     "this version leaves them as they are."),
                   version, VIREO_SNAPSHOT_STORE_VERSION);
      return NULL;
    }
  return g_steal_pointer (&kf);
}

static gboolean
write_index (VireoSnapshotStore *self, GKeyFile *kf, GError **error)
{
  g_autofree char *data = NULL;
  gsize len;

  if (g_mkdir_with_parents (self->dir, 0755) < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create the folder “%s”: %s"), self->dir, g_strerror (saved));
      return FALSE;
    }
  g_key_file_set_integer (kf, GROUP_VIREO, KEY_VERSION, VIREO_SNAPSHOT_STORE_VERSION);
  data = g_key_file_to_data (kf, &len, NULL);
  return vireo_atomic_file_write (self->index_path, data, len, error);
}

static char *
group_of (const char *id)
{
  return g_strconcat (GROUP_PREFIX, id, NULL);
}

/* The ids of the index's entries, in file order. */
static GPtrArray *
index_ids (GKeyFile *kf)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);

  for (guint i = 0; groups[i]; i++)
    {
      const char *id;

      if (!g_str_has_prefix (groups[i], GROUP_PREFIX))
        continue;
      id = groups[i] + strlen (GROUP_PREFIX);
      if (!id_is_valid (id))
        {
          g_warning ("Ignoring the snapshot entry [%s]: not a valid id", groups[i]);
          continue;
        }
      g_ptr_array_add (ids, g_strdup (id));
    }
  return ids;
}

static gboolean
index_has (GKeyFile *kf, const char *id)
{
  g_autofree char *group = id_is_valid (id) ? group_of (id) : NULL;

  return group != NULL && g_key_file_has_group (kf, group);
}

static char *
get_string_or_null (GKeyFile *kf, const char *group, const char *key)
{
  g_autofree char *s = g_key_file_get_string (kf, group, key, NULL);

  if (s == NULL || *s == '\0')
    return NULL;
  return g_steal_pointer (&s);
}

static gboolean
not_found (GError **error, const char *id)
{
  g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NOT_FOUND,
               _("There is no snapshot “%s”."), id);
  return FALSE;
}

/* ---- reading the folders ---------------------------------------------------------------- */

static Entry *
entry_from_index (VireoSnapshotStore *self, GKeyFile *kf, const char *id)
{
  g_autofree char *group = group_of (id);
  g_autofree char *path = g_build_filename (self->dir, id, NULL);
  g_autofree char *state_path = g_build_filename (path, STATE_FILE, NULL);
  g_autofree char *created = NULL;
  g_autofree char *thumb = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) state = NULL;
  Entry *e = g_new0 (Entry, 1);

  e->id = g_strdup (id);
  e->kind = VIREO_SNAPSHOT_KIND_VIREO;
  e->disk_id = g_strdup (id);
  e->name = get_string_or_null (kf, group, KEY_NAME);
  if (e->name == NULL)
    e->name = g_strdup (id);
  e->description = get_string_or_null (kf, group, KEY_DESCRIPTION);
  e->parent_id = get_string_or_null (kf, group, KEY_PARENT);
  e->memory = g_key_file_get_boolean (kf, group, KEY_MEMORY, NULL);
  created = get_string_or_null (kf, group, KEY_CREATED);
  if (created != NULL)
    e->created = g_date_time_new_from_iso8601 (created, NULL);

  thumb = get_string_or_null (kf, group, KEY_THUMBNAIL);
  if (thumb != NULL && strchr (thumb, '/') == NULL && thumb[0] != '.')
    {
      g_autofree char *full = g_build_filename (path, thumb, NULL);

      if (g_file_test (full, G_FILE_TEST_IS_REGULAR))
        e->thumbnail = g_steal_pointer (&full);
    }

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      e->broken = g_strdup (_("Its files are missing: the folder was deleted or moved."));
      goto out;
    }
  state = vr_snapshot_read_state (state_path, &local);
  if (state == NULL)
    {
      /* Translators: %s says what is wrong with the file (from the engine, in English) */
      e->broken = g_strdup_printf (_("It is damaged and cannot be restored: %s"),
                                   local->message);
      goto out;
    }
  {
    gboolean memory;
    gint64 when;
    const char *disk_id;

    if (g_variant_lookup (state, "memory", "b", &memory))
      e->memory = memory;
    if (e->created == NULL && g_variant_lookup (state, "created", "x", &when))
      e->created = g_date_time_new_from_unix_utc (when);
    if (g_variant_lookup (state, "disk-snapshot", "&s", &disk_id))
      {
        g_free (e->disk_id);
        e->disk_id = g_strdup (disk_id);
      }
  }
  if (e->memory)
    {
      g_autofree char *ram = g_build_filename (path, RAM_FILE, NULL);

      if (!g_file_test (ram, G_FILE_TEST_IS_REGULAR))
        e->broken = g_strdup (_("Its memory file is missing."));
    }

out:
  if (e->created == NULL)
    e->created = g_date_time_new_from_unix_utc (0);
  return e;
}

static gint64
id_number (const char *name)
{
  guint64 v = 0;
  const char *p = name;

  if (!g_ascii_isdigit (*p))
    return -1;
  while (g_ascii_isdigit (*p) && v < G_MAXINT64 / 10)
    v = v * 10 + (guint64) (*p++ - '0');
  return (gint64) v;
}

/* The names of the folders in @dir (not following symbolic links). */
static GPtrArray *
list_folders (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        g_ptr_array_add (names, g_strdup (name));
    }
  return names;
}

static gpointer
copy_string (gconstpointer src, gpointer data)
{
  return g_strdup (src);
}

static gboolean
str_in (GPtrArray *array, const char *s)
{
  for (guint i = 0; i < array->len; i++)
    if (g_strcmp0 (g_ptr_array_index (array, i), s) == 0)
      return TRUE;
  return FALSE;
}

/* Reads the snapshot tables of the disks: fills self->disk_ids with every id and name seen,
 * and self->foreign with the snapshots that the index (@ids) and the folders do not know.
 * @self->lock held. */
static void
scan_disks (VireoSnapshotStore *self, GPtrArray *ids, GPtrArray *folders)
{
  g_hash_table_remove_all (self->disk_ids);
  g_ptr_array_set_size (self->foreign, 0);

  for (guint d = 0; self->disks && self->disks[d]; d++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(VrDisk) disk = NULL;
      g_autoptr(GPtrArray) snaps = NULL;

      disk = vr_disk_open (self->disks[d], VR_DISK_FORMAT_QCOW2,
                           VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY, &error);
      if (disk != NULL)
        snaps = vr_disk_snapshot_list (disk, &error);
      if (snaps == NULL)
        {
          g_debug ("No snapshot table for %s: %s", self->disks[d], error->message);
          continue;
        }
      for (guint i = 0; i < snaps->len; i++)
        {
          VrDiskSnapshot *s = g_ptr_array_index (snaps, i);
          Entry *found = NULL;

          if (s->id == NULL || !g_utf8_validate (s->id, -1, NULL))
            continue;
          g_hash_table_add (self->disk_ids, g_strdup (s->id));
          if (s->name != NULL && g_utf8_validate (s->name, -1, NULL))
            g_hash_table_add (self->disk_ids, g_strdup (s->name));

          /* Ours (listed, an orphan's, or the saved state's): not a foreign one. */
          if (str_in (ids, s->id) || str_in (folders, s->id)
              || g_str_equal (s->id, SAVED_STATE_DISK_ID)
              || g_strcmp0 (s->name, SAVED_STATE_DISK_ID) == 0)
            continue;

          for (guint j = 0; j < self->foreign->len && found == NULL; j++)
            {
              Entry *e = g_ptr_array_index (self->foreign, j);

              if (g_str_equal (e->disk_id, s->id))
                found = e;
            }
          if (found == NULL)
            {
              found = g_new0 (Entry, 1);
              found->kind = VIREO_SNAPSHOT_KIND_DISK;
              found->id = g_strconcat (VIREO_SNAPSHOT_DISK_ID_PREFIX, s->id, NULL);
              found->disk_id = g_strdup (s->id);
              found->name = g_strdup (s->name && *s->name && g_utf8_validate (s->name, -1, NULL)
                                        ? s->name : s->id);
              found->created = g_date_time_new_from_unix_utc (s->date_sec);
              found->disks = g_ptr_array_new_with_free_func (g_free);
              g_ptr_array_add (self->foreign, found);
            }
          g_ptr_array_add (found->disks, g_strdup (self->disks[d]));
        }
    }
}

/* ---- the model -------------------------------------------------------------------------- */

static int
compare_snapshots (gconstpointer a, gconstpointer b)
{
  VireoSnapshot *sa = *(VireoSnapshot **) a;
  VireoSnapshot *sb = *(VireoSnapshot **) b;
  int c = g_date_time_compare (vireo_snapshot_get_created (sa), vireo_snapshot_get_created (sb));
  gint64 na, nb;

  if (c != 0)
    return c;
  na = id_number (vireo_snapshot_get_id (sa));
  nb = id_number (vireo_snapshot_get_id (sb));
  if (na != nb)
    return na < nb ? -1 : 1;
  return g_strcmp0 (vireo_snapshot_get_id (sa), vireo_snapshot_get_id (sb));
}

/* Replaces @store's items with @items unless they are the same already. */
static void
set_list (GListStore *store, GPtrArray *items)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (store));
  gboolean same = n == items->len;

  for (guint i = 0; same && i < n; i++)
    {
      g_autoptr(GObject) item = g_list_model_get_item (G_LIST_MODEL (store), i);

      same = item == g_ptr_array_index (items, i);
    }
  if (!same)
    g_list_store_splice (store, 0, n, items->pdata, items->len);
}

static void
apply_entries (VireoSnapshotStore *self, GPtrArray *entries, const char *current_id)
{
  g_autoptr(GHashTable) old = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                     g_object_unref);
  g_autoptr(GHashTable) by_id = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) roots = g_ptr_array_new ();
  g_autoptr(GHashTable) children = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                                          (GDestroyNotify) g_ptr_array_unref);
  gboolean same;

  for (guint i = 0; i < self->items->len; i++)
    {
      VireoSnapshot *s = g_ptr_array_index (self->items, i);

      g_hash_table_insert (old, (gpointer) vireo_snapshot_get_id (s), g_object_ref (s));
    }

  for (guint i = 0; i < entries->len; i++)
    {
      Entry *e = g_ptr_array_index (entries, i);
      VireoSnapshot *s = g_hash_table_lookup (old, e->id);
      g_autoptr(GFile) thumb = e->thumbnail ? g_file_new_for_path (e->thumbnail) : NULL;
      g_autoptr(GPtrArray) disks = NULL;

      if (s != NULL && vireo_snapshot_get_kind (s) == e->kind)
        g_object_ref (s);
      else
        s = vireo_snapshot_new (e->id, e->kind);
      if (e->disks != NULL)
        {
          disks = g_ptr_array_copy (e->disks, copy_string, NULL);
          g_ptr_array_set_free_func (disks, g_free);
          g_ptr_array_add (disks, NULL);
        }
      vireo_snapshot_set_fields (s, e->name, e->description, e->created, e->parent_id,
                                 e->memory, thumb, e->broken, e->disk_id,
                                 disks ? (const char *const *) disks->pdata : NULL);
      vireo_snapshot_set_current (s, g_strcmp0 (current_id, e->id) == 0);
      g_ptr_array_add (items, s);
      g_hash_table_insert (by_id, (gpointer) vireo_snapshot_get_id (s), s);
    }
  g_ptr_array_sort (items, compare_snapshots);

  /* The tree: a parent that is not there (or a loop in a hand-edited file) makes a root. */
  for (guint i = 0; i < items->len; i++)
    {
      VireoSnapshot *s = g_ptr_array_index (items, i);
      const char *pid = vireo_snapshot_get_parent_id (s);
      VireoSnapshot *parent = pid ? g_hash_table_lookup (by_id, pid) : NULL;
      GPtrArray *list;

      if (parent != NULL)
        {
          VireoSnapshot *p = parent;

          for (guint depth = 0; p != NULL; depth++)
            {
              const char *ppid = vireo_snapshot_get_parent_id (p);

              if (p == s || depth > items->len)
                {
                  parent = NULL;
                  break;
                }
              p = ppid ? g_hash_table_lookup (by_id, ppid) : NULL;
            }
        }
      if (parent == NULL)
        {
          g_ptr_array_add (roots, s);
          continue;
        }
      list = g_hash_table_lookup (children, parent);
      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (children, parent, list);
        }
      g_ptr_array_add (list, s);
    }
  for (guint i = 0; i < items->len; i++)
    {
      VireoSnapshot *s = g_ptr_array_index (items, i);
      GPtrArray *list = g_hash_table_lookup (children, s);
      g_autoptr(GPtrArray) none = g_ptr_array_new ();

      set_list (G_LIST_STORE (vireo_snapshot_get_children (s)), list ? list : none);
    }
  set_list (self->roots, roots);

  same = items->len == self->items->len;
  for (guint i = 0; same && i < items->len; i++)
    same = g_ptr_array_index (items, i) == g_ptr_array_index (self->items, i);
  if (!same)
    {
      guint removed = self->items->len;

      g_ptr_array_unref (self->items);
      self->items = g_steal_pointer (&items);
      g_list_model_items_changed (G_LIST_MODEL (self), 0, removed, self->items->len);
    }

  g_free (self->current_id);
  self->current_id = g_strdup (current_id);
}

gboolean
vireo_snapshot_store_reload (VireoSnapshotStore  *self,
                             gboolean             scan,
                             GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  g_autoptr(GPtrArray) ids = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *current = NULL;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), FALSE);

  g_mutex_lock (&self->lock);
  kf = read_index (self, &local);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      g_free (self->error);
      self->error = g_strdup (local->message);
      apply_entries (self, entries, NULL);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_clear_pointer (&self->error, g_free);

  ids = index_ids (kf);
  folders = list_folders (self->dir);
  for (guint i = 0; i < ids->len; i++)
    g_ptr_array_add (entries, entry_from_index (self, kf, g_ptr_array_index (ids, i)));
  current = get_string_or_null (kf, GROUP_VIREO, KEY_CURRENT);
  if (current != NULL && !str_in (ids, current))
    g_clear_pointer (&current, g_free);

  if (scan)
    scan_disks (self, ids, folders);
  for (guint i = 0; i < self->foreign->len; i++)
    {
      Entry *f = g_ptr_array_index (self->foreign, i);
      Entry *e;

      /* Taken by Vireo since the scan (while the machine ran): not foreign any more. */
      if (str_in (ids, f->disk_id) || str_in (folders, f->disk_id))
        continue;
      e = g_new0 (Entry, 1);
      e->id = g_strdup (f->id);
      e->kind = f->kind;
      e->name = g_strdup (f->name);
      e->created = g_date_time_ref (f->created);
      e->disk_id = g_strdup (f->disk_id);
      e->disks = g_ptr_array_copy (f->disks, copy_string, NULL);
      g_ptr_array_set_free_func (e->disks, g_free);
      g_ptr_array_add (entries, e);
    }
  g_mutex_unlock (&self->lock);

  apply_entries (self, entries, current);
  return TRUE;
}

const char *
vireo_snapshot_store_get_error (VireoSnapshotStore *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);
  return self->error;
}

GListModel *
vireo_snapshot_store_get_tree (VireoSnapshotStore *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);
  return G_LIST_MODEL (self->roots);
}

VireoSnapshot *
vireo_snapshot_store_lookup (VireoSnapshotStore *self,
                             const char         *id)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);

  for (guint i = 0; id != NULL && i < self->items->len; i++)
    if (g_str_equal (vireo_snapshot_get_id (g_ptr_array_index (self->items, i)), id))
      return g_ptr_array_index (self->items, i);
  return NULL;
}

const char *
vireo_snapshot_store_get_current_id (VireoSnapshotStore *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);
  return self->current_id;
}

/* ---- changing the index ----------------------------------------------------------------- */

char *
vireo_snapshot_store_next_id (VireoSnapshotStore  *self,
                              GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  GHashTableIter iter;
  gpointer key;
  gint64 max = 0;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);

  g_mutex_lock (&self->lock);
  kf = read_index (self, error);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      return NULL;
    }
  ids = index_ids (kf);
  folders = list_folders (self->dir);
  for (guint i = 0; i < ids->len; i++)
    max = MAX (max, id_number (g_ptr_array_index (ids, i)));
  for (guint i = 0; i < folders->len; i++)
    max = MAX (max, id_number (g_ptr_array_index (folders, i)));
  g_hash_table_iter_init (&iter, self->disk_ids);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    max = MAX (max, id_number (key));
  g_mutex_unlock (&self->lock);

  return g_strdup_printf ("%" G_GINT64_FORMAT, max + 1);
}

gboolean
vireo_snapshot_store_add (VireoSnapshotStore  *self,
                          const char          *id,
                          const char          *name,
                          const char          *description,
                          GDateTime           *created,
                          gboolean             memory,
                          const char          *thumbnail,
                          GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autofree char *group = NULL;
  g_autofree char *current = NULL;
  g_autofree char *when = NULL;
  g_autoptr(GDateTime) now = NULL;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), FALSE);

  if (!id_is_valid (id))
    {
      g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID,
                   "“%s” is not a valid snapshot id", id ? id : "");
      return FALSE;
    }
  if (!vireo_snapshot_name_is_valid (name, error))
    return FALSE;

  g_mutex_lock (&self->lock);
  kf = read_index (self, error);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (index_has (kf, id))
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID,
                   "The snapshot id “%s” is taken", id);
      return FALSE;
    }

  group = group_of (id);
  current = get_string_or_null (kf, GROUP_VIREO, KEY_CURRENT);
  if (current != NULL && !index_has (kf, current))
    g_clear_pointer (&current, g_free);
  if (created == NULL)
    created = now = g_date_time_new_now_utc ();
  when = g_date_time_format_iso8601 (created);

  g_key_file_set_string (kf, group, KEY_NAME, name);
  if (description != NULL && *description != '\0')
    g_key_file_set_string (kf, group, KEY_DESCRIPTION, description);
  g_key_file_set_string (kf, group, KEY_CREATED, when);
  g_key_file_set_string (kf, group, KEY_PARENT, current ? current : "");
  g_key_file_set_boolean (kf, group, KEY_MEMORY, memory);
  if (thumbnail != NULL)
    g_key_file_set_string (kf, group, KEY_THUMBNAIL, thumbnail);
  g_key_file_set_string (kf, GROUP_VIREO, KEY_CURRENT, id);
  ok = write_index (self, kf, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

gboolean
vireo_snapshot_store_set_current (VireoSnapshotStore  *self,
                                  const char          *id,
                                  GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), FALSE);

  g_mutex_lock (&self->lock);
  kf = read_index (self, error);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (id != NULL && !index_has (kf, id))
    {
      g_mutex_unlock (&self->lock);
      return not_found (error, id);
    }
  g_key_file_set_string (kf, GROUP_VIREO, KEY_CURRENT, id ? id : "");
  ok = write_index (self, kf, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

gboolean
vireo_snapshot_store_update (VireoSnapshotStore  *self,
                             const char          *id,
                             const char          *name,
                             const char          *description,
                             GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autofree char *group = NULL;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  if (name != NULL && !vireo_snapshot_name_is_valid (name, error))
    return FALSE;

  g_mutex_lock (&self->lock);
  kf = read_index (self, error);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (!index_has (kf, id))
    {
      g_mutex_unlock (&self->lock);
      return not_found (error, id);
    }
  group = group_of (id);
  if (name != NULL)
    {
      g_autofree char *trimmed = g_strstrip (g_strdup (name));

      g_key_file_set_string (kf, group, KEY_NAME, trimmed);
    }
  if (description != NULL && *description != '\0')
    g_key_file_set_string (kf, group, KEY_DESCRIPTION, description);
  else if (description != NULL)
    g_key_file_remove_key (kf, group, KEY_DESCRIPTION, NULL);
  ok = write_index (self, kf, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

gboolean
vireo_snapshot_store_remove (VireoSnapshotStore  *self,
                             const char          *id,
                             GError             **error)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autofree char *group = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *current = NULL;
  gboolean ok;

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  g_mutex_lock (&self->lock);
  kf = read_index (self, error);
  if (kf == NULL)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (!index_has (kf, id))
    {
      g_mutex_unlock (&self->lock);
      return not_found (error, id);
    }

  group = group_of (id);
  parent = get_string_or_null (kf, group, KEY_PARENT);
  if (parent != NULL && (g_str_equal (parent, id) || !index_has (kf, parent)))
    g_clear_pointer (&parent, g_free);

  /* Its children move up to its parent. */
  ids = index_ids (kf);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *g = group_of (g_ptr_array_index (ids, i));
      g_autofree char *p = get_string_or_null (kf, g, KEY_PARENT);

      if (g_strcmp0 (p, id) == 0)
        g_key_file_set_string (kf, g, KEY_PARENT, parent ? parent : "");
    }
  current = get_string_or_null (kf, GROUP_VIREO, KEY_CURRENT);
  if (g_strcmp0 (current, id) == 0)
    g_key_file_set_string (kf, GROUP_VIREO, KEY_CURRENT, parent ? parent : "");
  g_key_file_remove_group (kf, group, NULL);
  ok = write_index (self, kf, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

GStrv
vireo_snapshot_store_list_orphans (VireoSnapshotStore *self)
{
  g_autoptr(GKeyFile) kf = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  g_autoptr(GStrvBuilder) orphans = g_strv_builder_new ();

  g_return_val_if_fail (VIREO_IS_SNAPSHOT_STORE (self), NULL);

  g_mutex_lock (&self->lock);
  kf = read_index (self, NULL);
  if (kf != NULL)
    {
      ids = index_ids (kf);
      folders = list_folders (self->dir);
      for (guint i = 0; i < folders->len; i++)
        if (!str_in (ids, g_ptr_array_index (folders, i)))
          g_strv_builder_add (orphans, g_ptr_array_index (folders, i));
    }
  g_mutex_unlock (&self->lock);
  return g_strv_builder_end (orphans);
}
