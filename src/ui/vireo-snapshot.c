/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-snapshot"

#include "config.h"

#include "vireo-snapshot.h"

struct _VireoSnapshot
{
  GObject            parent_instance;

  char              *id;
  VireoSnapshotKind  kind;
  char              *name;
  char              *description;
  GDateTime         *created;
  char              *parent_id;
  gboolean           memory;
  GFile             *thumbnail;
  char              *broken_reason;
  gboolean           current;
  char              *disk_id;
  char             **disks;
  GListStore        *children;
};

G_DEFINE_FINAL_TYPE (VireoSnapshot, vireo_snapshot, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (VireoSnapshotKind, vireo_snapshot_kind,
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_KIND_VIREO, "vireo"),
                    G_DEFINE_ENUM_VALUE (VIREO_SNAPSHOT_KIND_DISK, "disk"))

enum
{
  PROP_0,
  PROP_ID,
  PROP_KIND,
  PROP_NAME,
  PROP_DESCRIPTION,
  PROP_CREATED,
  PROP_PARENT_ID,
  PROP_MEMORY,
  PROP_THUMBNAIL,
  PROP_BROKEN_REASON,
  PROP_CURRENT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
vireo_snapshot_finalize (GObject *object)
{
  VireoSnapshot *self = VIREO_SNAPSHOT (object);

  g_free (self->id);
  g_free (self->name);
  g_free (self->description);
  g_clear_pointer (&self->created, g_date_time_unref);
  g_free (self->parent_id);
  g_clear_object (&self->thumbnail);
  g_free (self->broken_reason);
  g_free (self->disk_id);
  g_strfreev (self->disks);
  g_clear_object (&self->children);

  G_OBJECT_CLASS (vireo_snapshot_parent_class)->finalize (object);
}

static void
vireo_snapshot_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  VireoSnapshot *self = VIREO_SNAPSHOT (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_KIND:
      g_value_set_enum (value, self->kind);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_DESCRIPTION:
      g_value_set_string (value, self->description);
      break;
    case PROP_CREATED:
      g_value_set_boxed (value, self->created);
      break;
    case PROP_PARENT_ID:
      g_value_set_string (value, self->parent_id);
      break;
    case PROP_MEMORY:
      g_value_set_boolean (value, self->memory);
      break;
    case PROP_THUMBNAIL:
      g_value_set_object (value, self->thumbnail);
      break;
    case PROP_BROKEN_REASON:
      g_value_set_string (value, self->broken_reason);
      break;
    case PROP_CURRENT:
      g_value_set_boolean (value, self->current);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_snapshot_class_init (VireoSnapshotClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->finalize = vireo_snapshot_finalize;
  object_class->get_property = vireo_snapshot_get_property;

  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, ro);
  properties[PROP_KIND] = g_param_spec_enum ("kind", NULL, NULL, VIREO_TYPE_SNAPSHOT_KIND,
                                             VIREO_SNAPSHOT_KIND_VIREO, ro);
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, ro);
  properties[PROP_DESCRIPTION] = g_param_spec_string ("description", NULL, NULL, NULL, ro);
  properties[PROP_CREATED] = g_param_spec_boxed ("created", NULL, NULL, G_TYPE_DATE_TIME, ro);
  properties[PROP_PARENT_ID] = g_param_spec_string ("parent-id", NULL, NULL, NULL, ro);
  properties[PROP_MEMORY] = g_param_spec_boolean ("memory", NULL, NULL, FALSE, ro);
  properties[PROP_THUMBNAIL] = g_param_spec_object ("thumbnail", NULL, NULL, G_TYPE_FILE, ro);
  properties[PROP_BROKEN_REASON] = g_param_spec_string ("broken-reason", NULL, NULL, NULL, ro);
  properties[PROP_CURRENT] = g_param_spec_boolean ("current", NULL, NULL, FALSE, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
vireo_snapshot_init (VireoSnapshot *self)
{
  self->children = g_list_store_new (VIREO_TYPE_SNAPSHOT);
}

VireoSnapshot *
vireo_snapshot_new (const char        *id,
                    VireoSnapshotKind  kind)
{
  VireoSnapshot *self;

  g_return_val_if_fail (id != NULL, NULL);

  self = g_object_new (VIREO_TYPE_SNAPSHOT, NULL);
  self->id = g_strdup (id);
  self->kind = kind;
  self->name = g_strdup (id);
  self->created = g_date_time_new_now_local ();
  return self;
}

static gboolean
set_string (char **field, const char *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

void
vireo_snapshot_set_fields (VireoSnapshot      *self,
                           const char         *name,
                           const char         *description,
                           GDateTime          *created,
                           const char         *parent_id,
                           gboolean            memory,
                           GFile              *thumbnail,
                           const char         *broken_reason,
                           const char         *disk_id,
                           const char *const  *disks)
{
  GObject *object = G_OBJECT (self);

  g_return_if_fail (VIREO_IS_SNAPSHOT (self));

  g_object_freeze_notify (object);
  if (set_string (&self->name, name ? name : self->id))
    g_object_notify_by_pspec (object, properties[PROP_NAME]);
  if (set_string (&self->description, description))
    g_object_notify_by_pspec (object, properties[PROP_DESCRIPTION]);
  if (created != NULL && (self->created == NULL || !g_date_time_equal (created, self->created)))
    {
      g_clear_pointer (&self->created, g_date_time_unref);
      self->created = g_date_time_to_local (created);
      g_object_notify_by_pspec (object, properties[PROP_CREATED]);
    }
  if (set_string (&self->parent_id, parent_id))
    g_object_notify_by_pspec (object, properties[PROP_PARENT_ID]);
  if (self->memory != memory)
    {
      self->memory = memory;
      g_object_notify_by_pspec (object, properties[PROP_MEMORY]);
    }
  if (!(thumbnail == NULL && self->thumbnail == NULL))
    {
      /* Also when the path is the same: the file may be new. */
      g_set_object (&self->thumbnail, thumbnail);
      g_object_notify_by_pspec (object, properties[PROP_THUMBNAIL]);
    }
  if (set_string (&self->broken_reason, broken_reason))
    g_object_notify_by_pspec (object, properties[PROP_BROKEN_REASON]);
  set_string (&self->disk_id, disk_id ? disk_id : self->id);
  g_strfreev (self->disks);
  self->disks = g_strdupv ((char **) disks);
  g_object_thaw_notify (object);
}

void
vireo_snapshot_set_current (VireoSnapshot *self,
                            gboolean       current)
{
  g_return_if_fail (VIREO_IS_SNAPSHOT (self));

  current = !!current;
  if (self->current == current)
    return;
  self->current = current;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CURRENT]);
}

const char *
vireo_snapshot_get_id (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->id;
}

VireoSnapshotKind
vireo_snapshot_get_kind (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), VIREO_SNAPSHOT_KIND_VIREO);
  return self->kind;
}

const char *
vireo_snapshot_get_name (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->name;
}

const char *
vireo_snapshot_get_description (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->description;
}

GDateTime *
vireo_snapshot_get_created (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->created;
}

const char *
vireo_snapshot_get_parent_id (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->parent_id;
}

gboolean
vireo_snapshot_get_memory (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), FALSE);
  return self->memory;
}

GFile *
vireo_snapshot_get_thumbnail (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->thumbnail;
}

const char *
vireo_snapshot_get_broken_reason (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->broken_reason;
}

gboolean
vireo_snapshot_is_broken (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), TRUE);
  return self->broken_reason != NULL;
}

gboolean
vireo_snapshot_get_current (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), FALSE);
  return self->current;
}

GListModel *
vireo_snapshot_get_children (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return G_LIST_MODEL (self->children);
}

const char *
vireo_snapshot_get_disk_id (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return self->disk_id ? self->disk_id : self->id;
}

const char *const *
vireo_snapshot_get_disks (VireoSnapshot *self)
{
  g_return_val_if_fail (VIREO_IS_SNAPSHOT (self), NULL);
  return (const char *const *) self->disks;
}
