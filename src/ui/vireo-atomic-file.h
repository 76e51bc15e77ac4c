/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * Atomic file replacement: the data goes to a temporary file in the same directory
 * (".NAME.tmp-XXXXXX"), which is fsync()ed and renamed over NAME; then the directory is
 * fsync()ed so that the rename itself is durable. After a crash NAME holds either the old
 * or the new contents, never a mix; a leftover temporary file is ignored by readers and
 * removed by vireo_atomic_file_clean_temps().
 */

/* clang-format off */
gboolean  vireo_atomic_file_write        (const char   *path,
                                          const void   *data,
                                          gsize         len,
                                          GError      **error);
gboolean  vireo_atomic_file_write_bytes  (const char   *path,
                                          GBytes       *bytes,
                                          GError      **error);
/* Whether @name (a base name) is one of our temporary files. */
gboolean  vireo_atomic_file_is_temp_name (const char   *name);
/* Removes the temporary files a crash left in @dir; returns how many. */
guint     vireo_atomic_file_clean_temps  (const char   *dir);
/* fsync()s a directory, making renames and creations in it durable. */
gboolean  vireo_fsync_dir                (const char   *dir,
                                          GError      **error);
/* clang-format on */

G_END_DECLS
