/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Helpers shared by the disk tests. */

#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

#include "disk/vr-disk.h"

static inline char *
dt_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("vireo-disk-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static inline void
dt_rmdir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);

      g_unlink (p);
    }
  g_rmdir (dir);
}

/* Runs a command (NULL-terminated argv); returns the exit status, stdout in *out. */
static inline int
dt_run (char **out, char **err, const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out, err,
                     &status, &error))
    {
      g_test_message ("spawn %s: %s", argv[0], error->message);
      return -1;
    }
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return -1;
}

#define DT_RUN(out, ...) \
  dt_run (out, NULL, (const char *const[]) { __VA_ARGS__, NULL })

static inline void
dt_pattern (uint8_t *buf, size_t len, uint64_t offset, uint32_t seed)
{
  for (size_t i = 0; i < len; i++)
    {
      uint64_t x = (offset + i) / 8 * 0x9e3779b97f4a7c15ull + seed;

      buf[i] = (uint8_t) ((x >> 29) ^ (x >> ((offset + i) % 8 * 4)));
    }
}

static inline char *
dt_qemu_img (void)
{
  return g_find_program_in_path ("qemu-img");
}
