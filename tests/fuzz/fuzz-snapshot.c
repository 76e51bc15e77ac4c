/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Fuzzes the snapshot files' parsers: the state file (header, length, checksum, GVariant
 * payload in normal form) and the RAM file header. The input is used twice: as a whole
 * file, and as a payload wrapped in a valid header with its correct checksum, so that the
 * mutations reach the GVariant checks behind the checksum. */

#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/vr-snapshot.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
walk (GVariant *v, unsigned depth)
{
  gsize n;

  if (depth > 64 || !g_variant_is_container (v))
    return;
  n = g_variant_n_children (v);
  for (gsize i = 0; i < MIN (n, (gsize) 4096); i++)
    {
      g_autoptr (GVariant) child = g_variant_get_child_value (v, i);

      walk (child, depth + 1);
    }
}

static void
read_file (const uint8_t *bytes, size_t len)
{
  int fd = memfd_create ("fuzz-snapshot", MFD_CLOEXEC);
  g_autofree char *path = NULL;
  g_autoptr (GVariant) v = NULL;
  const uint8_t id[VR_SNAPSHOT_ID_SIZE] = { 1, 2, 3 };

  if (fd < 0 || (len > 0 && write (fd, bytes, len) != (ssize_t) len))
    abort ();
  path = g_strdup_printf ("/proc/self/fd/%d", fd);
  v = vr_snapshot_read_state (path, NULL);
  if (v != NULL)
    {
      const char *layout;
      gboolean memory;

      g_assert_true (g_variant_is_of_type (v, G_VARIANT_TYPE_VARDICT));
      g_variant_lookup (v, "layout", "&s", &layout);
      g_variant_lookup (v, "memory", "b", &memory);
      walk (v, 0);
    }
  vr_snapshot_check_ram_header (fd, path, 64u << 20, id, NULL);
  close (fd);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree uint8_t *wrapped = g_malloc (56 + size);
  gsize n = 32;

  read_file (data, size);

  /* The same bytes as a payload behind a valid header. */
  memcpy (wrapped, "VIREOSNP", 8);
  wrapped[8] = VR_SNAPSHOT_FORMAT_VERSION;
  memset (wrapped + 9, 0, 7);
  for (unsigned i = 0; i < 8; i++)
    wrapped[16 + i] = (uint8_t) ((uint64_t) size >> (8 * i));
  g_checksum_update (c, data, (gssize) size);
  g_checksum_get_digest (c, wrapped + 24, &n);
  if (size)
    memcpy (wrapped + 56, data, size);
  read_file (wrapped, 56 + size);
  return 0;
}
