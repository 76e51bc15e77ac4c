/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * vireo-img: disk image tool with qemu-img's syntax for create, info, check, convert, snapshot
 * and resize.
 * Unlike the engine (which always uses the format stored in a machine's configuration), this
 * user tool guesses the format from the file's header when -f is not given.
 */

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk/vr-disk.h"

#define EXIT_CHECK_ERROR      1
#define EXIT_CHECK_CORRUPT    2
#define EXIT_CHECK_LEAKS      3
#define EXIT_CHECK_NOT_SUPP   63

static void
usage (FILE *out)
{
  fprintf (out,
           "Usage: vireo-img COMMAND [OPTIONS]\n"
           "\n"
           "Commands (qemu-img syntax):\n"
           "  create -f raw|qcow2 [-b BACKING [-F FMT]] FILE [SIZE]\n"
           "      SIZE in bytes, or with a k, M, G, T, P or E suffix; optional with -b\n"
           "      (the backing file's size). qcow2 images are v3, 64 KiB clusters.\n"
           "  info [-f FMT] [--output=human|json] FILE\n"
           "  check [-f FMT] [-r leaks|all] [--output=human|json] FILE\n"
           "      exit status: 0 clean, 1 check failed, 2 corruptions, 3 leaked clusters\n"
           "  convert [-f FMT] -O raw|qcow2 INPUT OUTPUT\n"
           "      zero regions are skipped: the output is sparse\n"
           "  snapshot [-f FMT] [-q] -l | -c NAME | -a NAME | -d NAME FILE\n"
           "      internal snapshots of a qcow2 image: list, create, apply (revert the disk\n"
           "      to it), delete; NAME may also be a snapshot's ID for -a and -d\n"
           "  resize [-f FMT] [-q] [--shrink] FILE [+|-]SIZE\n"
           "      qcow2 images only grow; raw images shrink with --shrink (data past the\n"
           "      new end is lost)\n"
           "\n"
           "Formats: raw, qcow2, vmdk (read-only). Without -f the format is guessed from the\n"
           "file's header; Vireo's engine never guesses: a machine's disk format is part of\n"
           "its configuration.\n");
}

static int
die (const char *fmt,
     ...) G_GNUC_PRINTF (1, 2);

static int
die (const char *fmt,
     ...)
{
  va_list ap;

  fputs ("vireo-img: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return 1;
}

static bool
parse_size (const char *s,
            uint64_t   *out)
{
  char *end;
  uint64_t v, mul = 1;
  double d;

  if (s == NULL || *s == '\0' || *s == '-')
    return false;
  errno = 0;
  v = g_ascii_strtoull (s, &end, 10);
  if (errno != 0 || end == s)
    return false;
  if (*end == '.')
    {
      d = g_ascii_strtod (s, &end);
      v = 0;
    }
  else
    d = -1;
  switch (*end)
    {
    case '\0': break;
    case 'b': case 'B': mul = 1; end++; break;
    case 'k': case 'K': mul = UINT64_C (1) << 10; end++; break;
    case 'm': case 'M': mul = UINT64_C (1) << 20; end++; break;
    case 'g': case 'G': mul = UINT64_C (1) << 30; end++; break;
    case 't': case 'T': mul = UINT64_C (1) << 40; end++; break;
    case 'p': case 'P': mul = UINT64_C (1) << 50; end++; break;
    case 'e': case 'E': mul = UINT64_C (1) << 60; end++; break;
    default: return false;
    }
  if (*end == 'i' || *end == 'B')
    end += *end == 'i' && end[1] == 'B' ? 2 : 1;
  if (*end != '\0')
    return false;
  if (d >= 0)
    {
      if (d * (double) mul >= 18446744073709551615.0)
        return false;
      *out = (uint64_t) (d * (double) mul);
      return true;
    }
  if (v > UINT64_MAX / mul)
    return false;
  *out = v * mul;
  return true;
}

static char *
size_to_str (uint64_t v)
{
  static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  double d = (double) v;
  unsigned u = 0;

  while (d >= 1024 && u + 1 < G_N_ELEMENTS (units))
    {
      d /= 1024;
      u++;
    }
  return g_strdup_printf ("%0.3g %s", d, units[u]);
}

static bool
resolve_format (const char    *path,
                const char    *name,
                VrDiskFormat  *fmt,
                GError       **error)
{
  if (name != NULL)
    return vr_disk_format_from_string (name, fmt, error);
  return vr_disk_probe_format (path, fmt, error);
}

static void
json_string (GString    *s,
             const char *v)
{
  g_string_append_c (s, '"');
  for (const char *p = v; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (s, "\\%c", *p);
      else if ((unsigned char) *p < 0x20)
        g_string_append_printf (s, "\\u%04x", *p);
      else
        g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

static int
cmd_create (int argc, char **argv)
{
  const char *fmt_name = "raw", *backing = NULL, *backing_fmt_name = NULL;
  VrDiskFormat fmt, backing_fmt = VR_DISK_FORMAT_RAW;
  uint64_t size = 0;
  g_autoptr (GError) error = NULL;
  int c;

  optind = 1;
  while ((c = getopt (argc, argv, "f:b:F:o:qh")) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'b': backing = optarg; break;
      case 'F': backing_fmt_name = optarg; break;
      case 'q': break;
      case 'o':
        return die ("create: -o options are not supported");
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (optind >= argc)
    return die ("create: expecting a file name");
  if (!vr_disk_format_from_string (fmt_name, &fmt, &error))
    return die ("%s", error->message);
  if (optind + 1 < argc && !parse_size (argv[optind + 1], &size))
    return die ("create: invalid size “%s” (bytes, or a k, M, G, T, P or E suffix)",
                argv[optind + 1]);
  if (optind + 1 >= argc && backing == NULL)
    return die ("create: expecting a size");
  if (backing != NULL)
    {
      if (backing_fmt_name != NULL)
        {
          if (!vr_disk_format_from_string (backing_fmt_name, &backing_fmt, &error))
            return die ("%s", error->message);
        }
      else
        {
          g_autofree char *dir = g_path_get_dirname (argv[optind]);
          g_autofree char *full = g_path_is_absolute (backing)
                                  ? g_strdup (backing) : g_build_filename (dir, backing, NULL);

          if (!vr_disk_probe_format (full, &backing_fmt, &error))
            return die ("%s", error->message);
        }
    }
  if (!vr_disk_create (argv[optind], fmt, size, backing, backing_fmt, &error))
    return die ("%s", error->message);
  return 0;
}

static void
print_snapshot (const VrDiskSnapshot *sn)
{
  g_autofree char *vm_size = size_to_str (sn->vm_state_size);
  g_autofree char *clock = NULL;
  char date[64] = "", icount[32] = "";
  time_t ti = (time_t) sn->date_sec;
  uint64_t secs = sn->vm_clock_nsec / 1000000000;
  struct tm tm;

  if (localtime_r (&ti, &tm) != NULL)
    strftime (date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  clock = g_strdup_printf ("%02d:%02d:%02d.%03d", (int) (secs / 3600), (int) ((secs / 60) % 60),
                           (int) (secs % 60), (int) ((sn->vm_clock_nsec / 1000000) % 1000));
  if (sn->icount != UINT64_MAX)
    g_snprintf (icount, sizeof icount, "%" G_GINT64_FORMAT, (int64_t) sn->icount);
  /* The columns of `qemu-img snapshot -l`. */
  printf ("%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name, vm_size, date, clock, icount);
}

/* Prints the table of `qemu-img snapshot -l` (nothing without snapshots). */
static void
print_snapshot_list (GPtrArray *list)
{
  if (list == NULL || list->len == 0)
    return;
  printf ("Snapshot list:\n");
  printf ("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
  for (guint i = 0; i < list->len; i++)
    print_snapshot (list->pdata[i]);
}

static int
cmd_info (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "output", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *fmt_name = NULL, *output = "human";
  g_autoptr (GError) error = NULL;
  g_autoptr (VrDisk) disk = NULL;
  g_autoptr (VrDiskInfo) info = NULL;
  VrDiskFormat fmt;
  int c;

  optind = 1;
  while ((c = getopt_long (argc, argv, "f:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'o': output = optarg; break;
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (optind >= argc)
    return die ("info: expecting a file name");
  if (!resolve_format (argv[optind], fmt_name, &fmt, &error))
    return die ("%s", error->message);
  disk = vr_disk_open (argv[optind], fmt, VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY,
                       &error);
  if (disk == NULL)
    return die ("%s", error->message);
  info = vr_disk_get_info (disk, &error);
  if (info == NULL)
    return die ("%s", error->message);

  if (g_strcmp0 (output, "json") == 0)
    {
      g_autoptr (GString) s = g_string_new ("{\n    \"virtual-size\": ");

      g_string_append_printf (s, "%" G_GUINT64_FORMAT ",\n    \"filename\": ",
                              info->virtual_size);
      json_string (s, info->filename);
      g_string_append (s, ",\n    \"format\": ");
      json_string (s, vr_disk_format_to_string (info->format));
      g_string_append_printf (s, ",\n    \"actual-size\": %" G_GUINT64_FORMAT,
                              info->actual_size);
      if (info->cluster_size)
        g_string_append_printf (s, ",\n    \"cluster-size\": %u", info->cluster_size);
      if (info->backing_file)
        {
          g_string_append (s, ",\n    \"backing-filename\": ");
          json_string (s, info->backing_file);
          g_string_append (s, ",\n    \"full-backing-filename\": ");
          json_string (s, info->backing_file_full);
          if (info->has_backing_format)
            {
              g_string_append (s, ",\n    \"backing-filename-format\": ");
              json_string (s, vr_disk_format_to_string (info->backing_format));
            }
        }
      if (info->format == VR_DISK_FORMAT_QCOW2)
        g_string_append_printf (s, ",\n    \"format-specific\": {\n        \"type\": \"qcow2\",\n"
                                "        \"data\": {\n            \"compat\": \"%s\",\n"
                                "            \"lazy-refcounts\": %s,\n"
                                "            \"refcount-bits\": %u,\n"
                                "            \"corrupt\": %s\n        }\n    }",
                                info->qcow2_version >= 3 ? "1.1" : "0.10",
                                info->lazy_refcounts ? "true" : "false", info->refcount_bits,
                                info->corrupt ? "true" : "false");
      if (info->format == VR_DISK_FORMAT_VMDK)
        {
          g_string_append (s, ",\n    \"format-specific\": {\n        \"type\": \"vmdk\",\n"
                              "        \"data\": {\n            \"create-type\": ");
          json_string (s, info->vmdk_create_type ? info->vmdk_create_type : "");
          g_string_append_printf (s, ",\n            \"extents\": %u\n        }\n    }",
                                  info->vmdk_extents);
        }
      g_string_append_printf (s, ",\n    \"dirty-flag\": %s\n}\n",
                              info->dirty ? "true" : "false");
      fputs (s->str, stdout);
      return 0;
    }

  {
    g_autofree char *vs = size_to_str (info->virtual_size);
    g_autofree char *ds = size_to_str (info->actual_size);

    printf ("image: %s\n", info->filename);
    printf ("file format: %s\n", vr_disk_format_to_string (info->format));
    printf ("virtual size: %s (%" G_GUINT64_FORMAT " bytes)\n", vs, info->virtual_size);
    printf ("disk size: %s\n", ds);
    if (info->cluster_size)
      printf ("cluster_size: %u\n", info->cluster_size);
    if (info->backing_file)
      {
        printf ("backing file: %s", info->backing_file);
        if (g_strcmp0 (info->backing_file, info->backing_file_full) != 0)
          printf (" (actual path: %s)", info->backing_file_full);
        printf ("\n");
        if (info->has_backing_format)
          printf ("backing file format: %s\n", vr_disk_format_to_string (info->backing_format));
      }
    if (info->nb_snapshots > 0)
      {
        g_autoptr (GPtrArray) list = vr_disk_snapshot_list (disk, NULL);

        print_snapshot_list (list);
      }
    if (info->format == VR_DISK_FORMAT_QCOW2)
      {
        printf ("Format specific information:\n");
        printf ("    compat: %s\n", info->qcow2_version >= 3 ? "1.1" : "0.10");
        if (info->qcow2_version >= 3)
          {
            printf ("    compression type: zlib\n");
            printf ("    lazy refcounts: %s\n", info->lazy_refcounts ? "true" : "false");
          }
        printf ("    refcount bits: %u\n", info->refcount_bits);
        if (info->qcow2_version >= 3)
          printf ("    corrupt: %s\n", info->corrupt ? "true" : "false");
        if (info->encrypted)
          printf ("    encrypted: yes\n");
        if (info->dirty)
          printf ("    dirty: true\n");
        if (info->nb_snapshots)
          printf ("    internal snapshots: %u\n", info->nb_snapshots);
      }
    else if (info->format == VR_DISK_FORMAT_VMDK)
      {
        printf ("Format specific information:\n");
        printf ("    create type: %s\n", info->vmdk_create_type ? info->vmdk_create_type : "");
        printf ("    extents: %u\n", info->vmdk_extents);
        if (info->vmdk_compressed)
          printf ("    compressed: true\n");
      }
  }
  return 0;
}

static int
cmd_check (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "output", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *fmt_name = NULL, *output = "human";
  VrDiskRepairMode repair = VR_DISK_REPAIR_NONE;
  g_autoptr (GError) error = NULL;
  VrDiskCheckResult r;
  VrDiskFormat fmt;
  int c, ret;

  optind = 1;
  while ((c = getopt_long (argc, argv, "f:r:qh", longopts, NULL)) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'o': output = optarg; break;
      case 'q': break;
      case 'r':
        if (strcmp (optarg, "leaks") == 0)
          repair = VR_DISK_REPAIR_LEAKS;
        else if (strcmp (optarg, "all") == 0)
          repair = VR_DISK_REPAIR_ALL;
        else
          return die ("check: -r takes “leaks” or “all”");
        break;
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (optind >= argc)
    return die ("check: expecting a file name");
  if (!resolve_format (argv[optind], fmt_name, &fmt, &error))
    return die ("%s", error->message);
  if (!vr_disk_check (argv[optind], fmt, repair, &r, &error))
    {
      vr_disk_check_result_clear (&r);
      die ("%s", error->message);
      return EXIT_CHECK_ERROR;
    }
  if (!r.checked)
    {
      vr_disk_check_result_clear (&r);
      fprintf (stderr, "vireo-img: This image format does not support checks\n");
      return EXIT_CHECK_NOT_SUPP;
    }

  if (r.check_errors > 0)
    ret = EXIT_CHECK_ERROR;
  else if (r.corruptions > 0)
    ret = EXIT_CHECK_CORRUPT;
  else if (r.leaks > 0)
    ret = EXIT_CHECK_LEAKS;
  else
    ret = 0;

  if (g_strcmp0 (output, "json") == 0)
    {
      printf ("{\n    \"image-end-offset\": %" G_GUINT64_FORMAT ",\n"
              "    \"total-clusters\": %" G_GUINT64_FORMAT ",\n"
              "    \"check-errors\": %" G_GUINT64_FORMAT ",\n"
              "    \"leaks\": %" G_GUINT64_FORMAT ",\n"
              "    \"leaks-fixed\": %" G_GUINT64_FORMAT ",\n"
              "    \"corruptions\": %" G_GUINT64_FORMAT ",\n"
              "    \"corruptions-fixed\": %" G_GUINT64_FORMAT ",\n"
              "    \"allocated-clusters\": %" G_GUINT64_FORMAT ",\n"
              "    \"filename\": \"%s\",\n    \"format\": \"qcow2\"\n}\n",
              r.image_end_offset, r.total_clusters, r.check_errors, r.leaks, r.leaks_fixed,
              r.corruptions, r.corruptions_fixed, r.allocated_clusters, argv[optind]);
      vr_disk_check_result_clear (&r);
      return ret;
    }

  for (guint i = 0; i < r.messages->len; i++)
    fprintf (stderr, "%s\n", (char *) r.messages->pdata[i]);
  if (r.leaks_fixed > 0 || r.corruptions_fixed > 0)
    printf ("The following inconsistencies were found and repaired:\n\n"
            "    %" G_GUINT64_FORMAT " leaked clusters\n"
            "    %" G_GUINT64_FORMAT " corruptions\n\n"
            "Double checking the fixed image now...\n", r.leaks_fixed, r.corruptions_fixed);
  if (ret == 0)
    printf ("No errors were found on the image.\n");
  if (r.corruptions > 0)
    printf ("\n%" G_GUINT64_FORMAT " errors were found on the image.\n"
            "Data may be corrupted, or further writes to the image may corrupt it.\n",
            r.corruptions);
  if (r.leaks > 0)
    printf ("\n%" G_GUINT64_FORMAT " leaked clusters were found on the image.\n"
            "This means waste of disk space, but no harm to data.\n", r.leaks);
  if (r.check_errors > 0)
    printf ("\n%" G_GUINT64_FORMAT " internal errors have occurred during the check.\n",
            r.check_errors);
  if (r.total_clusters > 0)
    printf ("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " = %.2f%% allocated, %.2f%% fragmented, "
            "%.2f%% compressed clusters\n", r.allocated_clusters, r.total_clusters,
            100.0 * (double) r.allocated_clusters / (double) r.total_clusters,
            r.allocated_clusters ? 100.0 * (double) r.fragmented_clusters
                                   / (double) r.allocated_clusters : 0.0,
            r.allocated_clusters ? 100.0 * (double) r.compressed_clusters
                                   / (double) r.allocated_clusters : 0.0);
  printf ("Image end offset: %" G_GUINT64_FORMAT "\n", r.image_end_offset);
  vr_disk_check_result_clear (&r);
  return ret;
}

static bool
is_zero_buf (const uint8_t *p,
             size_t         n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

static int
cmd_convert (int argc, char **argv)
{
  const char *fmt_name = NULL, *out_name = "raw";
  g_autoptr (GError) error = NULL;
  g_autoptr (VrDisk) in = NULL;
  g_autoptr (VrDisk) out = NULL;
  g_autofree uint8_t *buf = NULL;
  VrDiskFormat fmt, out_fmt;
  uint64_t size, off = 0;
  const size_t chunk = 1u << 20;
  int c;

  optind = 1;
  while ((c = getopt (argc, argv, "f:O:pqh")) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'O': out_name = optarg; break;
      case 'p': case 'q': break;
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (optind + 2 != argc)
    return die ("convert: expecting an input and an output file name");
  if (!resolve_format (argv[optind], fmt_name, &fmt, &error)
      || !vr_disk_format_from_string (out_name, &out_fmt, &error))
    return die ("%s", error->message);
  in = vr_disk_open (argv[optind], fmt, VR_DISK_OPEN_READONLY, &error);
  if (in == NULL)
    return die ("%s", error->message);
  size = vr_disk_get_size (in);
  if (!vr_disk_create (argv[optind + 1], out_fmt, size, NULL, VR_DISK_FORMAT_RAW, &error))
    return die ("%s", error->message);
  out = vr_disk_open (argv[optind + 1], out_fmt, 0, &error);
  if (out == NULL)
    return die ("%s", error->message);

  buf = g_malloc (chunk);
  while (off < size)
    {
      uint64_t n = MIN (chunk, size - off), pnum;
      bool zero;

      if (!vr_disk_block_status (in, off, n, &zero, &pnum, &error))
        return die ("%s", error->message);
      if (!zero)
        {
          if (!vr_disk_pread (in, buf, pnum, off, &error))
            return die ("%s", error->message);
          /* Skip zero blocks of 64 KiB inside the data too. */
          for (uint64_t p = 0; p < pnum;)
            {
              uint64_t m = MIN (pnum - p, 65536 - ((off + p) & 65535));

              if (!is_zero_buf (buf + p, m)
                  && !vr_disk_pwrite (out, buf + p, m, off + p, &error))
                return die ("%s", error->message);
              p += m;
            }
        }
      off += pnum;
    }
  if (!vr_disk_flush (out, &error))
    return die ("%s", error->message);
  return 0;
}

static int
cmd_snapshot (int argc, char **argv)
{
  const char *fmt_name = NULL, *name = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (VrDisk) disk = NULL;
  VrDiskFormat fmt;
  char action = 0;
  int c;

  optind = 1;
  while ((c = getopt (argc, argv, "f:lc:a:d:qUh")) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'q': case 'U': break;
      case 'l': case 'c': case 'a': case 'd':
        if (action != 0)
          return die ("snapshot: use exactly one of -l, -c, -a and -d");
        action = (char) c;
        name = optarg;
        break;
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (action == 0)
    return die ("snapshot: expecting -l, -c NAME, -a NAME or -d NAME");
  if (optind + 1 != argc)
    return die ("snapshot: expecting one file name");
  if (!resolve_format (argv[optind], fmt_name, &fmt, &error))
    return die ("%s", error->message);
  disk = vr_disk_open (argv[optind], fmt,
                       action == 'l' ? VR_DISK_OPEN_READONLY | VR_DISK_OPEN_METADATA_ONLY : 0,
                       &error);
  if (disk == NULL)
    return die ("%s", error->message);

  switch (action)
    {
    case 'l':
      {
        g_autoptr (GPtrArray) list = vr_disk_snapshot_list (disk, &error);

        if (list == NULL)
          return die ("%s", error->message);
        print_snapshot_list (list);
        return 0;
      }
    case 'c':
      if (!vr_disk_snapshot_create (disk, NULL, name, 0, &error))
        return die ("Could not create snapshot '%s': %s", name, error->message);
      break;
    case 'a':
      if (!vr_disk_snapshot_apply (disk, name, &error))
        return die ("Could not apply snapshot '%s': %s", name, error->message);
      break;
    default:
      if (!vr_disk_snapshot_delete (disk, name, &error))
        return die ("Could not delete snapshot '%s': %s", name, error->message);
      break;
    }
  return 0;
}

static int
cmd_resize (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "shrink", no_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *fmt_name = NULL, *size_arg;
  g_autoptr (GError) error = NULL;
  g_autoptr (VrDisk) disk = NULL;
  uint64_t size, cur, delta;
  bool shrink = false, quiet = false;
  VrDiskFormat fmt;
  int c;

  /* The size goes first, as in qemu-img: "-1G" must not look like an option. */
  if (argc < 3)
    return die ("resize: expecting a file name and a size");
  size_arg = argv[--argc];
  optind = 1;
  while ((c = getopt_long (argc, argv, "f:qh", longopts, NULL)) != -1)
    switch (c)
      {
      case 'f': fmt_name = optarg; break;
      case 'q': quiet = true; break;
      case 's': shrink = true; break;
      case 'h': usage (stdout); return 0;
      default: usage (stderr); return 1;
      }
  if (optind + 1 != argc)
    return die ("resize: expecting a file name and a size");
  if (!parse_size (size_arg + (*size_arg == '+' || *size_arg == '-'), &delta))
    return die ("resize: invalid size “%s” (bytes, or a k, M, G, T, P or E suffix, with an "
                "optional + or -)", size_arg);
  if (!resolve_format (argv[optind], fmt_name, &fmt, &error))
    return die ("%s", error->message);
  disk = vr_disk_open (argv[optind], fmt, 0, &error);
  if (disk == NULL)
    return die ("%s", error->message);
  cur = vr_disk_get_size (disk);
  if (*size_arg == '+')
    {
      if (delta > UINT64_MAX - cur)
        return die ("resize: the new size is too large");
      size = cur + delta;
    }
  else if (*size_arg == '-')
    {
      if (delta > cur)
        return die ("resize: the new size would be negative");
      size = cur - delta;
    }
  else
    size = delta;
  if (size < cur && !shrink)
    return die ("Use the --shrink option to perform a shrink operation.");
  if (!vr_disk_resize (disk, size, shrink, &error))
    return die ("%s", error->message);
  if (!quiet)
    printf ("Image resized.\n");
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 1 : 0;
    }
  if (strcmp (argv[1], "create") == 0)
    return cmd_create (argc - 1, argv + 1);
  if (strcmp (argv[1], "info") == 0)
    return cmd_info (argc - 1, argv + 1);
  if (strcmp (argv[1], "check") == 0)
    return cmd_check (argc - 1, argv + 1);
  if (strcmp (argv[1], "convert") == 0)
    return cmd_convert (argc - 1, argv + 1);
  if (strcmp (argv[1], "snapshot") == 0)
    return cmd_snapshot (argc - 1, argv + 1);
  if (strcmp (argv[1], "resize") == 0)
    return cmd_resize (argc - 1, argv + 1);
  die ("unknown command “%s” (try --help)", argv[1]);
  return 1;
}
