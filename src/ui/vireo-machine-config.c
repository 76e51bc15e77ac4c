/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-machine-config"

#include "config.h"

#include "vireo-machine-config.h"

#include <glib/gi18n.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vireo-atomic-file.h"

/*
 * The legacy format 0 (Vireo before the library had groups): one [Machine] group, memory
 * as a size with a suffix, disks and their formats as parallel lists.
 *
 *   [Vireo]            (optional in format 0)
 *   Version=0
 *   [Machine]
 *   Name=…  Uuid=…  Memory=512M  Cpus=1  Kernel=…  Initrd=…  Append=…
 *   Disks=disk.img;data.qcow2  DiskFormats=raw;qcow2  Network=user|none  Serial=true
 *
 * It is migrated to format 1 on load; the library then writes the new file, keeping the
 * old one as machine.conf.v0.
 */

G_DEFINE_QUARK (vireo-machine-config-error-quark, vireo_machine_config_error)

G_DEFINE_BOXED_TYPE (VireoMachineConfig, vireo_machine_config,
                     vireo_machine_config_ref, vireo_machine_config_unref)

#define GROUP_VIREO    "Vireo"
#define GROUP_GENERAL  "General"
#define GROUP_BOOT     "Boot"
#define GROUP_HARDWARE "Hardware"
#define GROUP_LEGACY   "Machine"
#define DISK_PREFIX    "Disk "
#define NIC_PREFIX     "Network "

static const char *const vireo_keys[] = { "Version", NULL };
static const char *const general_keys[] = { "Name", "Uuid", "Created", "Source", "Notes", NULL };
static const char *const boot_keys[] = { "Kind", "Kernel", "Initrd", "Cmdline", "Firmware",
                                         "BootOrder", NULL };
static const char *const hardware_keys[] = { "Memory", "Cpus", "Display", "Input", "Rng",
                                             "SerialLog", NULL };
static const char *const disk_keys[] = { "Path", "Format", "ReadOnly", "Media", "Ejected",
                                         "Serial", NULL };
static const char *const nic_keys[] = { "Kind", "Tap", "Mac", "HostForwards", NULL };

static const char *const boot_kind_names[] = { "kernel", "disk", "cdrom" };
static const char *const display_kind_names[] = { "std", "virtio", "none" };
static const char *const net_kind_names[] = { "user", "tap", "none" };
static const char *const media_names[] = { "disk", "cdrom" };

static gboolean set_error (GError **error, VireoMachineConfigError code, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

/* Always returns FALSE. */
static gboolean
set_error (GError **error, VireoMachineConfigError code, const char *format, ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, VIREO_MACHINE_CONFIG_ERROR, code, msg);
  return FALSE;
}

/* ---- small types ------------------------------------------------------------------------ */

static GHashTable *
extra_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static GHashTable *
extra_copy (GHashTable *src)
{
  GHashTable *dst = extra_new ();
  GHashTableIter iter;
  gpointer k, v;

  g_hash_table_iter_init (&iter, src);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_hash_table_insert (dst, g_strdup (k), g_strdup (v));
  return dst;
}

VireoDiskConfig *
vireo_disk_config_new (const char   *path,
                       VrDiskFormat  format)
{
  VireoDiskConfig *disk = g_new0 (VireoDiskConfig, 1);

  disk->path = g_strdup (path);
  disk->format = format;
  disk->media = VIREO_DISK_MEDIA_DISK;
  disk->extra = extra_new ();
  return disk;
}

VireoDiskConfig *
vireo_disk_config_copy (const VireoDiskConfig *disk)
{
  VireoDiskConfig *copy;

  g_return_val_if_fail (disk != NULL, NULL);

  copy = g_new0 (VireoDiskConfig, 1);
  copy->path = g_strdup (disk->path);
  copy->format = disk->format;
  copy->readonly = disk->readonly;
  copy->media = disk->media;
  copy->ejected = disk->ejected;
  copy->serial = g_strdup (disk->serial);
  copy->create_size = disk->create_size;
  copy->extra = extra_copy (disk->extra);
  return copy;
}

void
vireo_disk_config_free (VireoDiskConfig *disk)
{
  if (disk == NULL)
    return;
  g_free (disk->path);
  g_free (disk->serial);
  g_hash_table_unref (disk->extra);
  g_free (disk);
}

VireoNicConfig *
vireo_nic_config_new (VireoNetKind kind)
{
  VireoNicConfig *nic = g_new0 (VireoNicConfig, 1);

  nic->kind = kind;
  nic->extra = extra_new ();
  return nic;
}

VireoNicConfig *
vireo_nic_config_copy (const VireoNicConfig *nic)
{
  VireoNicConfig *copy;

  g_return_val_if_fail (nic != NULL, NULL);

  copy = g_new0 (VireoNicConfig, 1);
  copy->kind = nic->kind;
  copy->tap = g_strdup (nic->tap);
  copy->mac = g_strdup (nic->mac);
  copy->host_forwards = g_strdupv (nic->host_forwards);
  copy->extra = extra_copy (nic->extra);
  return copy;
}

void
vireo_nic_config_free (VireoNicConfig *nic)
{
  if (nic == NULL)
    return;
  g_free (nic->tap);
  g_free (nic->mac);
  g_strfreev (nic->host_forwards);
  g_hash_table_unref (nic->extra);
  g_free (nic);
}

char *
vireo_nic_config_to_net_spec (const VireoNicConfig *nic)
{
  GString *s;

  g_return_val_if_fail (nic != NULL, NULL);

  switch (nic->kind)
    {
    case VIREO_NET_USER:
      s = g_string_new ("user");
      for (guint i = 0; nic->host_forwards && nic->host_forwards[i]; i++)
        g_string_append_printf (s, ",hostfwd=%s", nic->host_forwards[i]);
      break;
    case VIREO_NET_TAP:
      s = g_string_new ("tap:");
      g_string_append (s, nic->tap ? nic->tap : "");
      break;
    case VIREO_NET_NONE:
    default:
      return NULL;
    }
  if (nic->mac && *nic->mac)
    g_string_append_printf (s, ",mac=%s", nic->mac);
  return g_string_free (s, FALSE);
}

const char *
vireo_boot_kind_to_string (VireoBootKind kind)
{
  return (guint) kind < G_N_ELEMENTS (boot_kind_names) ? boot_kind_names[kind] : "kernel";
}

const char *
vireo_display_kind_to_string (VireoDisplayKind kind)
{
  return (guint) kind < G_N_ELEMENTS (display_kind_names) ? display_kind_names[kind] : "std";
}

const char *
vireo_net_kind_to_string (VireoNetKind kind)
{
  return (guint) kind < G_N_ELEMENTS (net_kind_names) ? net_kind_names[kind] : "user";
}

/* ---- the config ------------------------------------------------------------------------- */

VireoMachineConfig *
vireo_machine_config_new (void)
{
  VireoMachineConfig *config = g_new0 (VireoMachineConfig, 1);

  config->ref_count = 1;
  config->extra = g_key_file_new ();
  config->loaded_version = VIREO_MACHINE_CONFIG_VERSION;
  config->uuid = g_uuid_string_random ();
  config->created = g_date_time_new_now_utc ();
  config->boot_kind = VIREO_BOOT_KERNEL;
  config->memory_mib = 1024;
  config->cpus = 1;
  config->display = VIREO_DISPLAY_STD;
  config->input = TRUE;
  config->rng = TRUE;
  config->serial_log = TRUE;
  config->disks = g_ptr_array_new_with_free_func ((GDestroyNotify) vireo_disk_config_free);
  config->nics = g_ptr_array_new_with_free_func ((GDestroyNotify) vireo_nic_config_free);
  g_ptr_array_add (config->nics, vireo_nic_config_new (VIREO_NET_USER));
  return config;
}

VireoMachineConfig *
vireo_machine_config_ref (VireoMachineConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  g_atomic_int_inc (&config->ref_count);
  return config;
}

void
vireo_machine_config_unref (VireoMachineConfig *config)
{
  if (config == NULL || !g_atomic_int_dec_and_test (&config->ref_count))
    return;

  g_key_file_unref (config->extra);
  g_free (config->name);
  g_free (config->uuid);
  g_clear_pointer (&config->created, g_date_time_unref);
  g_free (config->source);
  g_free (config->notes);
  g_free (config->kernel);
  g_free (config->initrd);
  g_free (config->cmdline);
  g_free (config->firmware);
  g_free (config->boot_order);
  g_ptr_array_unref (config->disks);
  g_ptr_array_unref (config->nics);
  g_free (config);
}

VireoMachineConfig *
vireo_machine_config_copy (VireoMachineConfig *config)
{
  VireoMachineConfig *copy;
  g_autofree char *extra = NULL;

  g_return_val_if_fail (config != NULL, NULL);

  copy = vireo_machine_config_new ();
  extra = g_key_file_to_data (config->extra, NULL, NULL);
  g_key_file_load_from_data (copy->extra, extra, (gsize) -1,
                             G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS, NULL);
  copy->loaded_version = config->loaded_version;
  g_free (copy->uuid);
  copy->uuid = g_strdup (config->uuid);
  copy->name = g_strdup (config->name);
  g_clear_pointer (&copy->created, g_date_time_unref);
  copy->created = config->created ? g_date_time_ref (config->created) : NULL;
  copy->source = g_strdup (config->source);
  copy->notes = g_strdup (config->notes);
  copy->boot_kind = config->boot_kind;
  copy->kernel = g_strdup (config->kernel);
  copy->initrd = g_strdup (config->initrd);
  copy->cmdline = g_strdup (config->cmdline);
  copy->firmware = g_strdup (config->firmware);
  copy->boot_order = g_strdup (config->boot_order);
  copy->memory_mib = config->memory_mib;
  copy->cpus = config->cpus;
  copy->display = config->display;
  copy->input = config->input;
  copy->rng = config->rng;
  copy->serial_log = config->serial_log;
  g_ptr_array_set_size (copy->nics, 0);
  for (guint i = 0; i < config->disks->len; i++)
    g_ptr_array_add (copy->disks, vireo_disk_config_copy (g_ptr_array_index (config->disks, i)));
  for (guint i = 0; i < config->nics->len; i++)
    g_ptr_array_add (copy->nics, vireo_nic_config_copy (g_ptr_array_index (config->nics, i)));
  return copy;
}

/* ---- reading ---------------------------------------------------------------------------- */

static char *
get_string (GKeyFile *kf, const char *group, const char *key)
{
  char *s = g_key_file_get_string (kf, group, key, NULL);

  if (s != NULL && *s == '\0')
    g_clear_pointer (&s, g_free);
  return s;
}

static gboolean
get_bool (GKeyFile *kf, const char *group, const char *key, gboolean def, gboolean *out,
          GError **error)
{
  g_autoptr(GError) local = NULL;
  gboolean v;

  if (!g_key_file_has_key (kf, group, key, NULL))
    {
      *out = def;
      return TRUE;
    }
  v = g_key_file_get_boolean (kf, group, key, &local);
  if (local != NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      /* Translators: [%s] is a group of machine.conf, %s= a key in it */
                      _("[%s] %s= is not true or false."), group, key);
  *out = v;
  return TRUE;
}

static gboolean
get_uint (GKeyFile *kf, const char *group, const char *key, gboolean required, guint64 def,
          guint64 *out, GError **error)
{
  g_autoptr(GError) local = NULL;
  guint64 v;

  if (!g_key_file_has_key (kf, group, key, NULL))
    {
      if (required)
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                          _("The setting [%s] %s= is missing."), group, key);
      *out = def;
      return TRUE;
    }
  v = g_key_file_get_uint64 (kf, group, key, &local);
  if (local != NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("[%s] %s= is not a number."), group, key);
  *out = v;
  return TRUE;
}

static gboolean
get_enum (GKeyFile *kf, const char *group, const char *key, const char *const *names,
          guint n_names, guint def, guint *out, GError **error)
{
  g_autofree char *s = get_string (kf, group, key);

  if (s == NULL)
    {
      *out = def;
      return TRUE;
    }
  for (guint i = 0; i < n_names; i++)
    if (g_ascii_strcasecmp (s, names[i]) == 0)
      {
        *out = i;
        return TRUE;
      }
  return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                    _("[%s] %s=%s is not one of the known values."), group, key, s);
}

static gboolean
is_numbered_group (const char *group, const char *prefix, guint *index)
{
  const char *rest;
  guint64 n;

  if (!g_str_has_prefix (group, prefix))
    return FALSE;
  rest = group + strlen (prefix);
  if (!g_ascii_string_to_unsigned (rest, 10, 0, 1000, &n, NULL))
    return FALSE;
  *index = (guint) n;
  return TRUE;
}

/* Keeps the keys of @group that are not in @known: into @extra_kf under @group, or into
 * @extra_table. */
static void
keep_unknown_keys (GKeyFile *kf, const char *group, const char *const *known,
                   GKeyFile *extra_kf, GHashTable *extra_table)
{
  g_auto(GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);

  for (guint i = 0; keys && keys[i]; i++)
    {
      g_autofree char *value = NULL;

      if (known && g_strv_contains (known, keys[i]))
        continue;
      value = g_key_file_get_value (kf, group, keys[i], NULL);
      if (value == NULL)
        continue;
      if (extra_kf)
        g_key_file_set_value (extra_kf, group, keys[i], value);
      else
        g_hash_table_insert (extra_table, g_strdup (keys[i]), g_steal_pointer (&value));
    }
}

typedef struct
{
  guint  index;
  char  *group;
} Numbered;

static int
numbered_cmp (gconstpointer a, gconstpointer b)
{
  const Numbered *x = a, *y = b;

  return x->index < y->index ? -1 : x->index > y->index;
}

static void
numbered_clear (gpointer p)
{
  g_free (((Numbered *) p)->group);
}

static gboolean
load_disk (GKeyFile *kf, const char *group, VireoMachineConfig *config, GError **error)
{
  g_autoptr(VireoDiskConfig) disk = NULL;
  g_autofree char *path = get_string (kf, group, "Path");
  g_autofree char *format = get_string (kf, group, "Format");
  VrDiskFormat fmt;
  guint media = VIREO_DISK_MEDIA_DISK;

  if (path == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), group, "Path");
  if (format == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), group, "Format");
  if (!vr_disk_format_from_string (format, &fmt, NULL))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("[%s] %s=%s is not one of the known values."), group, "Format", format);

  disk = vireo_disk_config_new (path, fmt);
  if (!get_bool (kf, group, "ReadOnly", FALSE, &disk->readonly, error)
      || !get_enum (kf, group, "Media", media_names, G_N_ELEMENTS (media_names),
                    VIREO_DISK_MEDIA_DISK, &media, error)
      || !get_bool (kf, group, "Ejected", FALSE, &disk->ejected, error))
    return FALSE;
  disk->media = media;
  /* Only a drive can be empty. */
  if (disk->media != VIREO_DISK_MEDIA_CDROM)
    disk->ejected = FALSE;
  disk->serial = get_string (kf, group, "Serial");
  keep_unknown_keys (kf, group, disk_keys, NULL, disk->extra);
  g_ptr_array_add (config->disks, g_steal_pointer (&disk));
  return TRUE;
}

static gboolean
load_nic (GKeyFile *kf, const char *group, VireoMachineConfig *config, GError **error)
{
  g_autoptr(VireoNicConfig) nic = NULL;
  guint kind = VIREO_NET_USER;

  if (!get_enum (kf, group, "Kind", net_kind_names, G_N_ELEMENTS (net_kind_names),
                 VIREO_NET_USER, &kind, error))
    return FALSE;
  nic = vireo_nic_config_new (kind);
  nic->tap = get_string (kf, group, "Tap");
  nic->mac = get_string (kf, group, "Mac");
  if (g_key_file_has_key (kf, group, "HostForwards", NULL))
    nic->host_forwards = g_key_file_get_string_list (kf, group, "HostForwards", NULL, NULL);
  if (nic->host_forwards && nic->host_forwards[0] == NULL)
    g_clear_pointer (&nic->host_forwards, g_strfreev);
  if (kind == VIREO_NET_TAP && nic->tap == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), group, "Tap");
  keep_unknown_keys (kf, group, nic_keys, NULL, nic->extra);
  g_ptr_array_add (config->nics, g_steal_pointer (&nic));
  return TRUE;
}

static gboolean
load_numbered_groups (GKeyFile *kf, char **groups, const char *prefix,
                      gboolean (*load) (GKeyFile *, const char *, VireoMachineConfig *, GError **),
                      VireoMachineConfig *config, GError **error)
{
  g_autoptr(GArray) found = g_array_new (FALSE, FALSE, sizeof (Numbered));

  g_array_set_clear_func (found, numbered_clear);
  for (guint i = 0; groups[i]; i++)
    {
      Numbered n;

      if (!is_numbered_group (groups[i], prefix, &n.index))
        continue;
      n.group = g_strdup (groups[i]);
      g_array_append_val (found, n);
    }
  g_array_sort (found, numbered_cmp);
  for (guint i = 0; i < found->len; i++)
    if (!load (kf, g_array_index (found, Numbered, i).group, config, error))
      return FALSE;
  return TRUE;
}

/* Format 0 → 1. */
static gboolean
migrate_from_v0 (GKeyFile *kf, VireoMachineConfig *config, GError **error)
{
  const char *g = GROUP_LEGACY;
  g_autofree char *memory = get_string (kf, g, "Memory");
  g_autofree char *network = get_string (kf, g, "Network");
  g_auto(GStrv) disks = NULL;
  g_auto(GStrv) formats = NULL;
  guint64 cpus = 1;
  guint64 bytes = 0;

  config->name = get_string (kf, g, "Name");
  if (config->name == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), g, "Name");
  {
    g_autofree char *uuid = get_string (kf, g, "Uuid");

    if (uuid != NULL)
      {
        g_free (config->uuid);
        config->uuid = g_steal_pointer (&uuid);
      }
  }
  if (memory == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), g, "Memory");
  if (!vr_parse_size (memory, &bytes, NULL))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("[%s] %s= is not a number."), g, "Memory");
  config->memory_mib = (bytes + (1 << 20) - 1) >> 20;
  if (!get_uint (kf, g, "Cpus", FALSE, 1, &cpus, error))
    return FALSE;
  config->cpus = (guint) MIN (cpus, G_MAXUINT);

  config->kernel = get_string (kf, g, "Kernel");
  config->initrd = get_string (kf, g, "Initrd");
  config->cmdline = get_string (kf, g, "Append");
  config->boot_kind = config->kernel ? VIREO_BOOT_KERNEL : VIREO_BOOT_DISK;
  if (!get_bool (kf, g, "Serial", TRUE, &config->serial_log, error))
    return FALSE;
  /* Format 0 machines had no screen, keyboard or rng. */
  config->display = VIREO_DISPLAY_NONE;
  config->input = FALSE;
  config->rng = FALSE;
  config->source = g_strdup (config->kernel ? "Linux kernel" : NULL);

  disks = g_key_file_get_string_list (kf, g, "Disks", NULL, NULL);
  formats = g_key_file_get_string_list (kf, g, "DiskFormats", NULL, NULL);
  for (guint i = 0; disks && disks[i]; i++)
    {
      const char *fs = formats && i < g_strv_length (formats) ? formats[i] : "raw";
      VrDiskFormat fmt;

      if (*disks[i] == '\0')
        continue;
      if (!vr_disk_format_from_string (fs, &fmt, NULL))
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                          _("[%s] %s=%s is not one of the known values."), g, "DiskFormats", fs);
      g_ptr_array_add (config->disks, vireo_disk_config_new (disks[i], fmt));
    }

  g_ptr_array_set_size (config->nics, 0);
  if (network == NULL || g_ascii_strcasecmp (network, "user") == 0)
    g_ptr_array_add (config->nics, vireo_nic_config_new (VIREO_NET_USER));
  else if (g_ascii_strcasecmp (network, "none") != 0)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("[%s] %s=%s is not one of the known values."), g, "Network", network);
  return TRUE;
}

static gboolean
load_v1 (GKeyFile *kf, VireoMachineConfig *config, GError **error)
{
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
  g_autofree char *uuid = NULL;
  g_autofree char *created = NULL;
  guint64 memory = 0, cpus = 0;
  guint kind = VIREO_BOOT_KERNEL, display = VIREO_DISPLAY_STD;

  for (const char *const *req = (const char *const[]) { GROUP_GENERAL, GROUP_HARDWARE, NULL };
       *req; req++)
    if (!g_key_file_has_group (kf, *req))
      return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                        _("The group [%s] is missing."), *req);

  config->name = get_string (kf, GROUP_GENERAL, "Name");
  if (config->name == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), GROUP_GENERAL, "Name");
  uuid = get_string (kf, GROUP_GENERAL, "Uuid");
  if (uuid == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The setting [%s] %s= is missing."), GROUP_GENERAL, "Uuid");
  g_free (config->uuid);
  config->uuid = g_steal_pointer (&uuid);
  created = get_string (kf, GROUP_GENERAL, "Created");
  g_clear_pointer (&config->created, g_date_time_unref);
  if (created != NULL)
    config->created = g_date_time_new_from_iso8601 (created, NULL);
  config->source = get_string (kf, GROUP_GENERAL, "Source");
  config->notes = get_string (kf, GROUP_GENERAL, "Notes");

  if (!get_enum (kf, GROUP_BOOT, "Kind", boot_kind_names, G_N_ELEMENTS (boot_kind_names),
                 VIREO_BOOT_KERNEL, &kind, error))
    return FALSE;
  config->boot_kind = kind;
  config->kernel = get_string (kf, GROUP_BOOT, "Kernel");
  config->initrd = get_string (kf, GROUP_BOOT, "Initrd");
  config->cmdline = get_string (kf, GROUP_BOOT, "Cmdline");
  config->firmware = get_string (kf, GROUP_BOOT, "Firmware");
  config->boot_order = get_string (kf, GROUP_BOOT, "BootOrder");

  if (!get_uint (kf, GROUP_HARDWARE, "Memory", TRUE, 0, &memory, error)
      || !get_uint (kf, GROUP_HARDWARE, "Cpus", TRUE, 0, &cpus, error)
      || !get_enum (kf, GROUP_HARDWARE, "Display", display_kind_names,
                    G_N_ELEMENTS (display_kind_names), VIREO_DISPLAY_STD, &display, error)
      || !get_bool (kf, GROUP_HARDWARE, "Input", TRUE, &config->input, error)
      || !get_bool (kf, GROUP_HARDWARE, "Rng", TRUE, &config->rng, error)
      || !get_bool (kf, GROUP_HARDWARE, "SerialLog", TRUE, &config->serial_log, error))
    return FALSE;
  config->memory_mib = memory;
  config->cpus = (guint) MIN (cpus, G_MAXUINT);
  config->display = display;

  g_ptr_array_set_size (config->nics, 0);
  if (!load_numbered_groups (kf, groups, DISK_PREFIX, load_disk, config, error)
      || !load_numbered_groups (kf, groups, NIC_PREFIX, load_nic, config, error))
    return FALSE;

  /* Everything else is kept as it was. */
  for (guint i = 0; groups[i]; i++)
    {
      const char *const *known = NULL;
      guint index;

      if (is_numbered_group (groups[i], DISK_PREFIX, &index)
          || is_numbered_group (groups[i], NIC_PREFIX, &index))
        continue;
      if (g_str_equal (groups[i], GROUP_VIREO))
        known = vireo_keys;
      else if (g_str_equal (groups[i], GROUP_GENERAL))
        known = general_keys;
      else if (g_str_equal (groups[i], GROUP_BOOT))
        known = boot_keys;
      else if (g_str_equal (groups[i], GROUP_HARDWARE))
        known = hardware_keys;
      keep_unknown_keys (kf, groups[i], known, config->extra, NULL);
    }
  return TRUE;
}

VireoMachineConfig *
vireo_machine_config_load_from_data (const char  *data,
                                     gsize        len,
                                     GError     **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(VireoMachineConfig) config = NULL;
  g_autoptr(GError) local = NULL;
  gint64 version;

  g_return_val_if_fail (data != NULL, NULL);

  if (len == 0 || !g_key_file_load_from_data (kf, data, len, G_KEY_FILE_KEEP_TRANSLATIONS,
                                              &local))
    {
      set_error (error, VIREO_MACHINE_CONFIG_ERROR_PARSE,
                 _("The settings file is damaged: %s"),
                 local ? local->message : _("it is empty"));
      return NULL;
    }

  if (g_key_file_has_key (kf, GROUP_VIREO, "Version", NULL))
    {
      g_autofree char *v = g_key_file_get_string (kf, GROUP_VIREO, "Version", NULL);

      if (v == NULL || !g_ascii_string_to_signed (v, 10, 0, G_MAXINT, &version, NULL))
        {
          set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                     _("[%s] %s= is not a number."), GROUP_VIREO, "Version");
          return NULL;
        }
    }
  else if (g_key_file_has_group (kf, GROUP_LEGACY))
    version = 0;
  else
    {
      set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                 _("The settings file is damaged: it has no format version."));
      return NULL;
    }

  if (version > VIREO_MACHINE_CONFIG_VERSION)
    {
      set_error (error, VIREO_MACHINE_CONFIG_ERROR_NEWER,
                 _("This machine was made by a newer Vireo (format %d); this version reads up "
                   "to %d. Update Vireo to use it."),
                 (int) version, VIREO_MACHINE_CONFIG_VERSION);
      return NULL;
    }

  config = vireo_machine_config_new ();
  config->loaded_version = (int) version;
  if (version == 0)
    {
      if (!migrate_from_v0 (kf, config, error))
        return NULL;
    }
  else if (!load_v1 (kf, config, error))
    return NULL;

  return g_steal_pointer (&config);
}

VireoMachineConfig *
vireo_machine_config_load (const char  *path,
                           GError     **error)
{
  g_autofree char *data = NULL;
  g_autoptr(GError) local = NULL;
  VireoMachineConfig *config;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);

  if (!g_file_get_contents (path, &data, &len, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                   _("The settings file “%s” is missing."), path);
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  config = vireo_machine_config_load_from_data (data, len, error);
  return config;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void
set_string_maybe (GKeyFile *kf, const char *group, const char *key, const char *value)
{
  if (value != NULL && *value)
    g_key_file_set_string (kf, group, key, value);
}

static void
set_extra_table (GKeyFile *kf, const char *group, GHashTable *extra)
{
  g_autoptr(GList) keys = g_hash_table_get_keys (extra);

  keys = g_list_sort (keys, (GCompareFunc) strcmp);
  for (GList *l = keys; l; l = l->next)
    g_key_file_set_value (kf, group, l->data, g_hash_table_lookup (extra, l->data));
}

char *
vireo_machine_config_to_data (VireoMachineConfig *config,
                              gsize              *len)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_auto(GStrv) extra_groups = NULL;

  g_return_val_if_fail (config != NULL, NULL);

  g_key_file_set_integer (kf, GROUP_VIREO, "Version", VIREO_MACHINE_CONFIG_VERSION);

  set_string_maybe (kf, GROUP_GENERAL, "Name", config->name);
  set_string_maybe (kf, GROUP_GENERAL, "Uuid", config->uuid);
  if (config->created)
    {
      g_autofree char *s = g_date_time_format_iso8601 (config->created);
      g_key_file_set_string (kf, GROUP_GENERAL, "Created", s);
    }
  set_string_maybe (kf, GROUP_GENERAL, "Source", config->source);
  set_string_maybe (kf, GROUP_GENERAL, "Notes", config->notes);

  g_key_file_set_string (kf, GROUP_BOOT, "Kind", vireo_boot_kind_to_string (config->boot_kind));
  set_string_maybe (kf, GROUP_BOOT, "Kernel", config->kernel);
  set_string_maybe (kf, GROUP_BOOT, "Initrd", config->initrd);
  set_string_maybe (kf, GROUP_BOOT, "Cmdline", config->cmdline);
  set_string_maybe (kf, GROUP_BOOT, "Firmware", config->firmware);
  set_string_maybe (kf, GROUP_BOOT, "BootOrder", config->boot_order);

  g_key_file_set_uint64 (kf, GROUP_HARDWARE, "Memory", config->memory_mib);
  g_key_file_set_uint64 (kf, GROUP_HARDWARE, "Cpus", config->cpus);
  g_key_file_set_string (kf, GROUP_HARDWARE, "Display",
                         vireo_display_kind_to_string (config->display));
  g_key_file_set_boolean (kf, GROUP_HARDWARE, "Input", config->input);
  g_key_file_set_boolean (kf, GROUP_HARDWARE, "Rng", config->rng);
  g_key_file_set_boolean (kf, GROUP_HARDWARE, "SerialLog", config->serial_log);

  /* Unknown keys of the known groups, then the unknown groups (after the disks and cards,
   * below, would also do; before keeps each known group in one piece). */
  extra_groups = g_key_file_get_groups (config->extra, NULL);
  for (guint i = 0; extra_groups[i]; i++)
    {
      g_auto(GStrv) keys = NULL;

      if (!g_key_file_has_group (kf, extra_groups[i]))
        continue;
      keys = g_key_file_get_keys (config->extra, extra_groups[i], NULL, NULL);
      for (guint j = 0; keys && keys[j]; j++)
        {
          g_autofree char *v = g_key_file_get_value (config->extra, extra_groups[i], keys[j],
                                                     NULL);
          g_key_file_set_value (kf, extra_groups[i], keys[j], v);
        }
    }

  for (guint i = 0; i < config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);
      g_autofree char *group = g_strdup_printf (DISK_PREFIX "%u", i);

      g_key_file_set_string (kf, group, "Path", disk->path ? disk->path : "");
      g_key_file_set_string (kf, group, "Format", vr_disk_format_to_string (disk->format));
      g_key_file_set_boolean (kf, group, "ReadOnly", disk->readonly);
      g_key_file_set_string (kf, group, "Media",
                             media_names[disk->media == VIREO_DISK_MEDIA_CDROM]);
      if (disk->media == VIREO_DISK_MEDIA_CDROM && disk->ejected)
        g_key_file_set_boolean (kf, group, "Ejected", TRUE);
      set_string_maybe (kf, group, "Serial", disk->serial);
      set_extra_table (kf, group, disk->extra);
    }

  for (guint i = 0; i < config->nics->len; i++)
    {
      const VireoNicConfig *nic = g_ptr_array_index (config->nics, i);
      g_autofree char *group = g_strdup_printf (NIC_PREFIX "%u", i);

      g_key_file_set_string (kf, group, "Kind", vireo_net_kind_to_string (nic->kind));
      set_string_maybe (kf, group, "Tap", nic->tap);
      set_string_maybe (kf, group, "Mac", nic->mac);
      if (nic->host_forwards && nic->host_forwards[0])
        g_key_file_set_string_list (kf, group, "HostForwards",
                                    (const char *const *) nic->host_forwards,
                                    g_strv_length (nic->host_forwards));
      set_extra_table (kf, group, nic->extra);
    }

  for (guint i = 0; extra_groups[i]; i++)
    {
      g_auto(GStrv) keys = NULL;
      guint index;

      if (g_key_file_has_group (kf, extra_groups[i])
          || is_numbered_group (extra_groups[i], DISK_PREFIX, &index)
          || is_numbered_group (extra_groups[i], NIC_PREFIX, &index))
        continue;
      keys = g_key_file_get_keys (config->extra, extra_groups[i], NULL, NULL);
      for (guint j = 0; keys && keys[j]; j++)
        {
          g_autofree char *v = g_key_file_get_value (config->extra, extra_groups[i], keys[j],
                                                     NULL);
          g_key_file_set_value (kf, extra_groups[i], keys[j], v);
        }
    }

  return g_key_file_to_data (kf, len, NULL);
}

gboolean
vireo_machine_config_save (VireoMachineConfig  *config,
                           const char          *path,
                           GError             **error)
{
  g_autofree char *data = NULL;
  gsize len;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  data = vireo_machine_config_to_data (config, &len);
  return vireo_atomic_file_write (path, data, len, error);
}

/* ---- validation and the engine's config --------------------------------------------- */

guint
vireo_host_cpu_count (void)
{
  return MAX (1u, MIN ((guint) g_get_num_processors (), (guint) VR_MAX_CPUS));
}

guint64
vireo_host_memory_mib (void)
{
  long pages = sysconf (_SC_PHYS_PAGES);
  long size = sysconf (_SC_PAGESIZE);

  if (pages <= 0 || size <= 0)
    return VR_MAX_MEMORY >> 20;
  return MIN (((guint64) pages * (guint64) size) >> 20, VR_MAX_MEMORY >> 20);
}

gboolean
vireo_machine_name_is_valid (const char  *name,
                             GError     **error)
{
  g_autofree char *trimmed = NULL;

  if (name == NULL || !g_utf8_validate (name, -1, NULL))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID, _("The name is empty."));
  trimmed = g_strstrip (g_strdup (name));
  if (*trimmed == '\0')
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID, _("The name is empty."));
  if (strchr (name, '/') != NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("A name cannot contain “/”."));
  for (const char *p = name; *p; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                        _("A name cannot contain control characters."));
  return TRUE;
}

char *
vireo_machine_config_resolve_path (const char *path,
                                   const char *machine_dir)
{
  g_return_val_if_fail (path != NULL, NULL);

  if (g_path_is_absolute (path) || machine_dir == NULL)
    return g_strdup (path);
  return g_build_filename (machine_dir, path, NULL);
}

static gboolean
check_file (const char *what, const char *path, const char *machine_dir, GError **error)
{
  g_autofree char *full = vireo_machine_config_resolve_path (path, machine_dir);

  if (!g_file_test (full, G_FILE_TEST_EXISTS))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND,
                      /* Translators: the first %s is "The kernel", "The disk image"… */
                      _("%s “%s” does not exist."), what, full);
  if (g_file_test (full, G_FILE_TEST_IS_DIR))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("%s “%s” is a folder, not a file."), what, full);
  return TRUE;
}

/* ---- booting ---------------------------------------------------------------------------- */

VireoDiskConfig *
vireo_machine_config_get_cdrom (VireoMachineConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  for (guint i = 0; i < config->disks->len; i++)
    {
      VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

      if (disk->media == VIREO_DISK_MEDIA_CDROM)
        return disk;
    }
  return NULL;
}

char *
vireo_machine_config_dup_firmware (VireoMachineConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  if (config->boot_kind == VIREO_BOOT_KERNEL)
    return NULL;
  if (config->firmware != NULL)
    return g_strdup (config->firmware);
  return g_build_filename (SEABIOS_DIR, "bios.bin", NULL);
}

const char *
vireo_machine_config_get_boot_order (VireoMachineConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  switch (config->boot_kind)
    {
    case VIREO_BOOT_KERNEL:
      return NULL;
    case VIREO_BOOT_CDROM:
      return config->boot_order ? config->boot_order : "cdrom,disk";
    case VIREO_BOOT_DISK:
    default:
      if (config->boot_order != NULL)
        return config->boot_order;
      return vireo_machine_config_get_cdrom (config) ? "disk,cdrom" : "disk";
    }
}

gboolean
vireo_boot_order_parse (const char    *text,
                        VrBootDevice  *out,
                        GError       **error)
{
  g_auto(GStrv) parts = NULL;
  guint n = 0;

  g_return_val_if_fail (out != NULL, FALSE);

  for (guint i = 0; i < VR_MAX_BOOT_DEVICES; i++)
    out[i] = VR_BOOT_DEVICE_END;
  if (text == NULL)
    goto bad;
  parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      g_autofree char *word = g_strstrip (g_strdup (parts[i]));
      VrBootDevice device;

      if (g_ascii_strcasecmp (word, "cdrom") == 0)
        device = VR_BOOT_DEVICE_CDROM;
      else if (g_ascii_strcasecmp (word, "disk") == 0)
        device = VR_BOOT_DEVICE_DISK;
      else
        goto bad;
      for (guint j = 0; j < n; j++)
        if (out[j] == device)
          goto bad;
      if (n + 1 >= VR_MAX_BOOT_DEVICES)
        goto bad;
      out[n++] = device;
    }
  if (n > 0)
    return TRUE;

bad:
  for (guint i = 0; i < VR_MAX_BOOT_DEVICES; i++)
    out[i] = VR_BOOT_DEVICE_END;
  return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                    _("The boot order “%s” is not valid. List “cdrom” and “disk” in the order "
                      "to try them, separated by a comma, like “cdrom,disk”."),
                    text ? text : "");
}

/* That the machine has what it boots from: one CD/DVD drive at most, a disk or a drive for
 * the firmware kinds, a boot order that parses. */
static gboolean
check_boot (VireoMachineConfig *config, GError **error)
{
  VrBootDevice order[VR_MAX_BOOT_DEVICES];
  guint n_disks = 0, cdrom = 0;
  gboolean has_cdrom = FALSE;

  for (guint i = 0; i < config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

      if (disk->media != VIREO_DISK_MEDIA_CDROM)
        n_disks++;
      else if (!has_cdrom)
        {
          has_cdrom = TRUE;
          cdrom = i;
        }
      else
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                          _("A machine has one CD/DVD drive, but disks %u and %u are both "
                            "CD/DVD images. Remove one of them in Details."),
                          cdrom + 1, i + 1);
    }

  switch (config->boot_kind)
    {
    case VIREO_BOOT_DISK:
      if (n_disks == 0)
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                          _("The machine starts from a disk, but it has none. Add a disk "
                            "image in Details, or start it from something else."));
      break;
    case VIREO_BOOT_CDROM:
      if (!has_cdrom)
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                          _("The machine starts from a CD/DVD image, but it has no CD/DVD "
                            "drive. Add an ISO image in Details, or start it from something "
                            "else."));
      break;
    case VIREO_BOOT_KERNEL:
    default:
      return TRUE;
    }
  return vireo_boot_order_parse (vireo_machine_config_get_boot_order (config), order, error);
}

static gboolean
check_firmware (VireoMachineConfig *config, const char *machine_dir, GError **error)
{
  g_autofree char *firmware = vireo_machine_config_dup_firmware (config);
  g_autofree char *full = vireo_machine_config_resolve_path (firmware, machine_dir);

  if (config->firmware != NULL)
    return check_file (_("The firmware"), config->firmware, machine_dir, error);
  if (!g_file_test (full, G_FILE_TEST_IS_REGULAR))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The PC firmware “%s” is missing. Install SeaBIOS (the “seabios” "
                        "package) to start machines from a disk or a CD/DVD image."),
                      full);
  return TRUE;
}

gboolean
vireo_machine_config_validate (VireoMachineConfig  *config,
                               const char          *machine_dir,
                               GError             **error)
{
  guint64 host_mib = vireo_host_memory_mib ();
  guint host_cpus = vireo_host_cpu_count ();
  guint64 min_mib = VR_MIN_MEMORY >> 20;

  g_return_val_if_fail (config != NULL, FALSE);

  if (!vireo_machine_name_is_valid (config->name, error))
    return FALSE;
  if (config->uuid == NULL || !g_uuid_string_is_valid (config->uuid))
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("The machine’s identifier “%s” is not a valid UUID."),
                      config->uuid ? config->uuid : "");
  if (config->memory_mib < min_mib)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      /* (plain %llu: xgettext cannot see through G_GUINT64_FORMAT) */
                      _("The memory size, %llu MiB, is below the minimum of %llu MiB."),
                      (unsigned long long) config->memory_mib, (unsigned long long) min_mib);
  if (config->memory_mib > host_mib)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("The memory size, %llu MiB, is more than this computer can give "
                        "(%llu MiB)."),
                      (unsigned long long) config->memory_mib, (unsigned long long) host_mib);
  if (config->cpus < 1)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("The machine needs at least one processor."));
  if (config->cpus > host_cpus)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      ngettext ("This computer has only %2$u processor; the machine asks for "
                                "%1$u.",
                                "This computer has only %2$u processors; the machine asks for "
                                "%1$u.",
                                host_cpus),
                      config->cpus, host_cpus);
  if (config->disks->len > VR_MAX_DISKS)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("A machine can have at most %d disks."), VR_MAX_DISKS);
  if (config->nics->len > VR_MAX_NICS)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                      _("A machine can have at most %d network cards."), VR_MAX_NICS);

  if (config->boot_kind == VIREO_BOOT_KERNEL && config->kernel == NULL)
    return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      _("The machine boots a Linux kernel, but none is chosen."));

  for (guint i = 0; i < config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

      if (disk->path == NULL || *disk->path == '\0')
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                          _("Disk %u has no image file."), i + 1);
      if (disk->format == VR_DISK_FORMAT_VMDK && !disk->readonly)
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                          _("Disk %u is a VMDK image, which Vireo can only read: mark it "
                            "read-only or convert it to qcow2."), i + 1);
    }
  for (guint i = 0; i < config->nics->len; i++)
    {
      const VireoNicConfig *nic = g_ptr_array_index (config->nics, i);
      g_autofree char *spec = vireo_nic_config_to_net_spec (nic);

      if (nic->kind == VIREO_NET_TAP && (nic->tap == NULL || *nic->tap == '\0'))
        return set_error (error, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                          _("Network card %u uses a tap interface, but none is named."), i + 1);
      if (nic->mac != NULL)
        {
          guint b[6];
          char end;

          if (sscanf (nic->mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                      &b[5], &end) != 6)
            return set_error (error, VIREO_MACHINE_CONFIG_ERROR_INVALID,
                              _("The MAC address “%s” of network card %u is not valid."),
                              nic->mac, i + 1);
        }
    }

  /* What follows is checked when the machine starts (and shown as the machine's problem),
   * not when the settings are edited: a change that takes two steps (start from a CD/DVD
   * image, then choose the image) is not refused halfway. */
  if (machine_dir == NULL)
    return TRUE;

  if (!check_boot (config, error))
    return FALSE;
  if (config->boot_kind == VIREO_BOOT_KERNEL)
    {
      if (!check_file (_("The kernel"), config->kernel, machine_dir, error))
        return FALSE;
      if (config->initrd && !check_file (_("The initial RAM disk"), config->initrd, machine_dir,
                                         error))
        return FALSE;
    }
  else if (!check_firmware (config, machine_dir, error))
    return FALSE;
  for (guint i = 0; i < config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

      if (disk->media == VIREO_DISK_MEDIA_CDROM)
        {
          if (!disk->ejected && !check_file (_("The CD/DVD image"), disk->path, machine_dir,
                                             error))
            return FALSE;
        }
      else if (!check_file (_("The disk image"), disk->path, machine_dir, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
vireo_machine_config_to_vr (VireoMachineConfig  *config,
                            const char          *machine_dir,
                            VrMachineConfig     *out,
                            GError             **error)
{
  g_autoptr(GPtrArray) nics = g_ptr_array_new_with_free_func (g_free);
  VrBootDevice order[VR_MAX_BOOT_DEVICES];
  const VireoDiskConfig *cdrom;
  gboolean firmware;
  guint n_disks, n;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (machine_dir != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);

  if (!check_boot (config, error))
    return FALSE;
  firmware = config->boot_kind != VIREO_BOOT_KERNEL;
  for (guint i = 0; i < VR_MAX_BOOT_DEVICES; i++)
    order[i] = VR_BOOT_DEVICE_END;
  if (firmware
      && !vireo_boot_order_parse (vireo_machine_config_get_boot_order (config), order, error))
    return FALSE;
  cdrom = vireo_machine_config_get_cdrom (config);
  n_disks = config->disks->len - (cdrom != NULL);

  g_free (out->name);
  out->name = g_strdup (config->name);
  g_clear_pointer (&out->kernel, g_free);
  g_clear_pointer (&out->initrd, g_free);
  g_clear_pointer (&out->cmdline, g_free);
  g_clear_pointer (&out->firmware, g_free);
  g_clear_pointer (&out->vga_rom, g_free);
  g_clear_pointer (&out->uuid, g_free);
  if (!firmware)
    {
      out->kernel = vireo_machine_config_resolve_path (config->kernel, machine_dir);
      out->initrd = config->initrd
                      ? vireo_machine_config_resolve_path (config->initrd, machine_dir)
                      : NULL;
      out->cmdline = g_strdup (config->cmdline);
    }
  else
    {
      g_autofree char *path = vireo_machine_config_dup_firmware (config);
      g_autofree char *rom_dir = g_path_get_dirname (VR_SEABIOS_VGA_ROM_PATH);

      out->firmware = vireo_machine_config_resolve_path (path, machine_dir);
      /* The firmware's SMBIOS tables give the guest the machine's UUID (dmidecode, the
       * product_uuid some installers and licence checks read). */
      out->uuid = g_strdup (config->uuid);
      /* SeaBIOS installed elsewhere (a Flatpak): its display ROM is beside it. */
      if (config->firmware == NULL && g_strcmp0 (SEABIOS_DIR, rom_dir) != 0)
        {
          g_autofree char *rom = g_path_get_basename (VR_SEABIOS_VGA_ROM_PATH);

          out->vga_rom = g_build_filename (SEABIOS_DIR, rom, NULL);
        }
    }

  /* The CD/DVD drive, then what the firmware tries, in order: devices the machine lacks
   * are left out (with nothing left, the engine's default). */
  g_clear_pointer (&out->cdrom, g_free);
  out->cdrom_drive = cdrom != NULL;
  if (cdrom != NULL && !cdrom->ejected)
    out->cdrom = vireo_machine_config_resolve_path (cdrom->path, machine_dir);
  n = 0;
  for (guint i = 0; i < VR_MAX_BOOT_DEVICES; i++)
    out->boot_order[i] = VR_BOOT_DEVICE_END;
  for (guint i = 0; i < VR_MAX_BOOT_DEVICES && order[i] != VR_BOOT_DEVICE_END; i++)
    if ((order[i] == VR_BOOT_DEVICE_CDROM && cdrom != NULL)
        || (order[i] == VR_BOOT_DEVICE_DISK && n_disks > 0))
      out->boot_order[n++] = order[i];
  out->memory = config->memory_mib << 20;
  out->cpus = config->cpus;
  out->serial = VR_SERIAL_PTY;
  g_free (out->serial_path);
  out->serial_path = config->serial_log ? g_build_filename (machine_dir, "serial.log", NULL)
                                        : NULL;
  out->on_reset = VR_RESET_RESTART;
  out->rng = config->rng;
  out->input = config->input;
  switch (config->display)
    {
    case VIREO_DISPLAY_STD:
      out->display = VR_DISPLAY_DEVICE_BOCHS;
      break;
    case VIREO_DISPLAY_VIRTIO:
      out->display = VR_DISPLAY_DEVICE_VIRTIO_GPU;
      break;
    case VIREO_DISPLAY_NONE:
    default:
      out->display = VR_DISPLAY_DEVICE_NONE;
      break;
    }

  for (unsigned i = 0; out->disks && i < out->n_disks; i++)
    {
      g_free (out->disks[i].path);
      g_free (out->disks[i].format);
      g_free (out->disks[i].serial);
    }
  g_clear_pointer (&out->disks, g_free);
  out->n_disks = n_disks;
  out->disks = n_disks ? g_new0 (VrDiskConfig, n_disks) : NULL;
  n = 0;
  for (guint i = 0; i < config->disks->len; i++)
    {
      const VireoDiskConfig *disk = g_ptr_array_index (config->disks, i);

      if (disk == cdrom)
        continue;
      out->disks[n].path = vireo_machine_config_resolve_path (disk->path, machine_dir);
      out->disks[n].format = g_strdup (vr_disk_format_to_string (disk->format));
      out->disks[n].readonly = disk->readonly || disk->format == VR_DISK_FORMAT_VMDK;
      out->disks[n].serial = g_strdup (disk->serial);
      n++;
    }

  for (guint i = 0; i < config->nics->len; i++)
    {
      char *spec = vireo_nic_config_to_net_spec (g_ptr_array_index (config->nics, i));

      if (spec != NULL)
        g_ptr_array_add (nics, spec);
    }
  g_clear_pointer (&out->nics, g_strfreev);
  if (nics->len > 0)
    {
      g_ptr_array_add (nics, NULL);
      out->nics = (char **) g_ptr_array_steal (nics, NULL);
    }
  return TRUE;
}
