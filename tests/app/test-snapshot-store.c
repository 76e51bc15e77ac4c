/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * VireoSnapshotStore (GTK-free, no guest): the index round trip and the tree it makes,
 * atomic updates (a crash's temporary file is ignored, nothing half-written), a folder the
 * index does not name (an orphan: never listed, its id never reused), an entry whose folder
 * is missing or whose state file is damaged (listed as broken with the reason, the others
 * usable), deleting re-parents the children and moves "current", an index of a newer format
 * is refused with a message and left alone, and qcow2 snapshots made outside Vireo are
 * listed as disk-only ones.
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/vr-disk.h"
#include "snapshot/vr-snapshot.h"
#include "vireo-atomic-file.h"
#include "vireo-snapshot-store.h"

typedef struct
{
  char               *root;   /* a temporary folder */
  char               *dir;    /* root/snapshots */
  VireoSnapshotStore *store;
} Fixture;

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->root = g_dir_make_tmp ("vireo-test-snapshot-store-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->dir = g_build_filename (f->root, "snapshots", NULL);
  f->store = vireo_snapshot_store_new (f->dir);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->store);
  rm_rf (f->root);
  g_free (f->root);
  g_free (f->dir);
}

/* A snapshot folder as the engine leaves it: a valid state file (and a RAM file). */
static void
make_snapshot_dir (Fixture *f, const char *id, gboolean memory)
{
  g_autofree char *path = g_build_filename (f->dir, id, NULL);
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GError) error = NULL;
  int fd;

  g_assert_cmpint (g_mkdir_with_parents (path, 0755), ==, 0);
  g_variant_builder_add (&b, "{sv}", "engine-version", g_variant_new_string ("test"));
  g_variant_builder_add (&b, "{sv}", "layout", g_variant_new_string ("test"));
  g_variant_builder_add (&b, "{sv}", "created", g_variant_new_int64 (1700000000));
  g_variant_builder_add (&b, "{sv}", "disk-snapshot", g_variant_new_string (id));
  g_variant_builder_add (&b, "{sv}", "memory", g_variant_new_boolean (memory));
  payload = g_variant_ref_sink (g_variant_builder_end (&b));
  fd = open (path, O_RDONLY | O_DIRECTORY);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (vr_snapshot_write_state (fd, "state", payload, &error));
  g_assert_no_error (error);
  close (fd);
  if (memory)
    {
      g_autofree char *ram = g_build_filename (path, "ram", NULL);

      g_assert_true (g_file_set_contents (ram, "RAM", -1, NULL));
    }
}

static void
add (Fixture *f, const char *id, const char *name, gboolean memory)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) when = g_date_time_new_utc (2026, 1, 1, 12, 0, (double) atoi (id));

  make_snapshot_dir (f, id, memory);
  g_assert_true (vireo_snapshot_store_add (f->store, id, name, NULL, when, memory, NULL, &error));
  g_assert_no_error (error);
}

static void
reload (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (vireo_snapshot_store_reload (f->store, TRUE, &error));
  g_assert_no_error (error);
}

static VireoSnapshot *
get (Fixture *f, const char *id)
{
  VireoSnapshot *s = vireo_snapshot_store_lookup (f->store, id);

  g_assert_nonnull (s);
  return s;
}

static char *
read_index (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_empty (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_auto(GStrv) orphans = NULL;

  /* No folder at all: an empty list, not an error. */
  reload (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (vireo_snapshot_store_get_tree (f->store)), ==, 0);
  g_assert_null (vireo_snapshot_store_get_current_id (f->store));
  g_assert_null (vireo_snapshot_store_get_error (f->store));
  id = vireo_snapshot_store_next_id (f->store, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, "1");
  orphans = vireo_snapshot_store_list_orphans (f->store);
  g_assert_cmpuint (g_strv_length (orphans), ==, 0);
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(VireoSnapshotStore) again = NULL;
  g_autoptr(VireoSnapshot) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *id = NULL;
  VireoSnapshot *s;
  GListModel *tree;

  add (f, "1", "Fresh install", FALSE);
  add (f, "2", "Updates done", TRUE);
  g_assert_true (vireo_snapshot_store_update (f->store, "2", NULL, "Before the big upgrade\n"
                                              "(kernel 6.1)", &error));
  g_assert_no_error (error);
  /* Back to 1, then a branch: 3 is 1's child beside 2. */
  g_assert_true (vireo_snapshot_store_set_current (f->store, "1", &error));
  add (f, "3", "Ünïcödé “quotes” = [brackets]", TRUE);

  text = read_index (f);
  g_test_message ("%s", text);
  g_assert_nonnull (strstr (text, "[Vireo]\nVersion=1\n"));
  g_assert_nonnull (strstr (text, "Current=3"));

  /* A new store reads exactly what was written. */
  again = vireo_snapshot_store_new (f->dir);
  g_assert_true (vireo_snapshot_store_reload (again, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (again)), ==, 3);
  g_assert_cmpstr (vireo_snapshot_store_get_current_id (again), ==, "3");

  s = vireo_snapshot_store_lookup (again, "1");
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "Fresh install");
  g_assert_null (vireo_snapshot_get_description (s));
  g_assert_false (vireo_snapshot_get_memory (s));
  g_assert_null (vireo_snapshot_get_parent_id (s));
  g_assert_false (vireo_snapshot_get_current (s));
  g_assert_false (vireo_snapshot_is_broken (s));
  g_assert_cmpint (vireo_snapshot_get_kind (s), ==, VIREO_SNAPSHOT_KIND_VIREO);
  g_assert_cmpstr (vireo_snapshot_get_disk_id (s), ==, "1");
  {
    g_autoptr(GDateTime) expected = g_date_time_new_utc (2026, 1, 1, 12, 0, 1);

    g_assert_cmpint (g_date_time_to_unix (vireo_snapshot_get_created (s)), ==,
                     g_date_time_to_unix (expected));
  }

  s = vireo_snapshot_store_lookup (again, "2");
  g_assert_cmpstr (vireo_snapshot_get_description (s), ==, "Before the big upgrade\n(kernel 6.1)");
  g_assert_true (vireo_snapshot_get_memory (s));
  g_assert_cmpstr (vireo_snapshot_get_parent_id (s), ==, "1");

  s = vireo_snapshot_store_lookup (again, "3");
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "Ünïcödé “quotes” = [brackets]");
  g_assert_cmpstr (vireo_snapshot_get_parent_id (s), ==, "1");
  g_assert_true (vireo_snapshot_get_current (s));

  /* The tree: 1 with the children 2 and 3, oldest first. */
  tree = vireo_snapshot_store_get_tree (again);
  g_assert_cmpuint (g_list_model_get_n_items (tree), ==, 1);
  root = g_list_model_get_item (tree, 0);
  g_assert_cmpstr (vireo_snapshot_get_id (root), ==, "1");
  g_assert_cmpuint (g_list_model_get_n_items (vireo_snapshot_get_children (root)), ==, 2);
  {
    g_autoptr(VireoSnapshot) c0 = g_list_model_get_item (vireo_snapshot_get_children (root), 0);
    g_autoptr(VireoSnapshot) c1 = g_list_model_get_item (vireo_snapshot_get_children (root), 1);

    g_assert_cmpstr (vireo_snapshot_get_id (c0), ==, "2");
    g_assert_cmpstr (vireo_snapshot_get_id (c1), ==, "3");
  }

  /* Rename. Reloading keeps the same objects (a view keeps its rows). */
  reload (f);
  s = get (f, "1");
  g_assert_true (vireo_snapshot_store_update (f->store, "1", "  Clean system  ", NULL, &error));
  reload (f);
  g_assert_true (get (f, "1") == s);
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "Clean system");

  /* Bad names and unknown ids are refused. */
  g_assert_false (vireo_snapshot_store_update (f->store, "1", "   ", NULL, &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vireo_snapshot_store_update (f->store, "1", "a\tb", NULL, &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vireo_snapshot_store_set_current (f->store, "42", &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (vireo_snapshot_store_add (f->store, "../x", "x", NULL, NULL, FALSE, NULL,
                                            &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (vireo_snapshot_store_add (f->store, "2", "again", NULL, NULL, FALSE, NULL,
                                            &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_INVALID);
  g_clear_error (&error);

  id = vireo_snapshot_store_next_id (f->store, &error);
  g_assert_cmpstr (id, ==, "4");
}

static void
test_unknown_keys_kept (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  make_snapshot_dir (f, "1", FALSE);
  g_assert_true (g_file_set_contents (path,
                                      "[Vireo]\nVersion=1\nCurrent=1\nFutureKey=x\n\n"
                                      "[Snapshot 1]\nName=One\nCreated=2026-01-01T00:00:00Z\n"
                                      "Memory=false\nColour=blue\n\n[Extra]\nA=b\n", -1, NULL));
  reload (f);
  g_assert_cmpstr (vireo_snapshot_get_name (get (f, "1")), ==, "One");
  g_assert_true (vireo_snapshot_store_update (f->store, "1", "Uno", NULL, &error));
  text = read_index (f);
  g_assert_nonnull (strstr (text, "FutureKey=x"));
  g_assert_nonnull (strstr (text, "Colour=blue"));
  g_assert_nonnull (strstr (text, "[Extra]"));
  g_assert_nonnull (strstr (text, "Name=Uno"));
}

static void
test_atomic (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);
  g_autofree char *temp = g_build_filename (f->dir, "." VIREO_SNAPSHOT_INDEX_FILE ".tmp-AbC123",
                                            NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  add (f, "1", "One", FALSE);
  before = read_index (f);

  /* A crash while writing left a half-written temporary file: it is not the index. */
  g_assert_true (vireo_atomic_file_is_temp_name ("." VIREO_SNAPSHOT_INDEX_FILE ".tmp-AbC123"));
  g_assert_true (g_file_set_contents (temp, "[Vireo]\nVersion=1\n[Snapshot 9", -1, NULL));
  reload (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 1);
  g_assert_cmpstr (vireo_snapshot_get_name (get (f, "1")), ==, "One");
  /* Nor a snapshot folder. */
  {
    g_auto(GStrv) orphans = vireo_snapshot_store_list_orphans (f->store);
    g_assert_cmpuint (g_strv_length (orphans), ==, 0);
  }
  g_assert_cmpuint (vireo_atomic_file_clean_temps (f->dir), ==, 1);

  /* Each change replaces the whole file: no temporary file stays behind. */
  add (f, "2", "Two", FALSE);
  after = read_index (f);
  g_assert_cmpstr (before, !=, after);
  g_assert_nonnull (strstr (after, "[Snapshot 1]"));
  g_assert_nonnull (strstr (after, "[Snapshot 2]"));
  dir = g_dir_open (f->dir, 0, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_assert_false (vireo_atomic_file_is_temp_name (name));

  /* A folder is written before its entry: the entry names a complete folder. A failed add
   * (an id taken) leaves the index as it was. */
  g_clear_pointer (&before, g_free);
  before = read_index (f);
  g_assert_false (vireo_snapshot_store_add (f->store, "2", "Dup", NULL, NULL, FALSE, NULL, NULL));
  g_clear_pointer (&after, g_free);
  after = read_index (f);
  g_assert_cmpstr (before, ==, after);
  (void) path;
}

static void
test_orphan (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_auto(GStrv) orphans = NULL;
  g_autofree char *partial = g_build_filename (f->dir, "9.partial-XyZ", NULL);

  add (f, "1", "One", FALSE);
  /* A crash after the engine finished the folder, before the index named it, and one in
   * the middle of writing a folder. */
  make_snapshot_dir (f, "7", TRUE);
  g_assert_cmpint (g_mkdir_with_parents (partial, 0755), ==, 0);

  reload (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 1);
  g_assert_null (vireo_snapshot_store_lookup (f->store, "7"));

  orphans = vireo_snapshot_store_list_orphans (f->store);
  g_assert_cmpuint (g_strv_length (orphans), ==, 2);
  g_assert_true (g_strv_contains ((const char *const *) orphans, "7"));
  g_assert_true (g_strv_contains ((const char *const *) orphans, "9.partial-XyZ"));

  /* Their ids are not given out again (their disk snapshots may still exist). */
  id = vireo_snapshot_store_next_id (f->store, NULL);
  g_assert_cmpstr (id, ==, "10");
}

static void
test_broken (Fixture *f, gconstpointer data)
{
  g_autofree char *dir2 = g_build_filename (f->dir, "2", NULL);
  g_autofree char *state3 = g_build_filename (f->dir, "3", "state", NULL);
  g_autofree char *ram4 = g_build_filename (f->dir, "4", "ram", NULL);
  g_autofree char *data3 = NULL;
  gsize len3;
  VireoSnapshot *s;

  add (f, "1", "Good", TRUE);
  add (f, "2", "Folder gone", TRUE);
  add (f, "3", "Truncated", TRUE);
  add (f, "4", "No memory file", TRUE);
  add (f, "5", "Also good", FALSE);

  rm_rf (dir2);
  g_assert_false (g_file_test (dir2, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_get_contents (state3, &data3, &len3, NULL));
  g_assert_true (g_file_set_contents (state3, data3, (gssize) len3 / 2, NULL));
  g_assert_cmpint (g_unlink (ram4), ==, 0);

  reload (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 5);
  g_assert_false (vireo_snapshot_is_broken (get (f, "1")));
  g_assert_false (vireo_snapshot_is_broken (get (f, "5")));

  s = get (f, "2");
  g_assert_true (vireo_snapshot_is_broken (s));
  g_test_message ("2: %s", vireo_snapshot_get_broken_reason (s));
  g_assert_nonnull (strstr (vireo_snapshot_get_broken_reason (s), "missing"));

  s = get (f, "3");
  g_assert_true (vireo_snapshot_is_broken (s));
  g_test_message ("3: %s", vireo_snapshot_get_broken_reason (s));
  g_assert_nonnull (strstr (vireo_snapshot_get_broken_reason (s), "damaged"));

  s = get (f, "4");
  g_assert_true (vireo_snapshot_is_broken (s));
  g_test_message ("4: %s", vireo_snapshot_get_broken_reason (s));
  g_assert_nonnull (strstr (vireo_snapshot_get_broken_reason (s), "memory"));

  /* A broken one can be removed; the others are untouched. */
  g_assert_true (vireo_snapshot_store_remove (f->store, "2", NULL));
  reload (f);
  g_assert_null (vireo_snapshot_store_lookup (f->store, "2"));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 4);
}

static void
test_reparent (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  /* 1 ─ 2 ─ 3 (current)
   *      └─ 4
   * 1 ─ 5 */
  add (f, "1", "One", FALSE);
  add (f, "2", "Two", FALSE);
  add (f, "3", "Three", FALSE);
  g_assert_true (vireo_snapshot_store_set_current (f->store, "2", NULL));
  add (f, "4", "Four", FALSE);
  g_assert_true (vireo_snapshot_store_set_current (f->store, "1", NULL));
  add (f, "5", "Five", FALSE);
  g_assert_true (vireo_snapshot_store_set_current (f->store, "3", NULL));
  reload (f);
  g_assert_cmpstr (vireo_snapshot_get_parent_id (get (f, "4")), ==, "2");
  g_assert_cmpstr (vireo_snapshot_get_parent_id (get (f, "5")), ==, "1");

  /* Deleting 2: 3 and 4 move up to 1. */
  g_assert_true (vireo_snapshot_store_remove (f->store, "2", &error));
  g_assert_no_error (error);
  reload (f);
  g_assert_cmpstr (vireo_snapshot_get_parent_id (get (f, "3")), ==, "1");
  g_assert_cmpstr (vireo_snapshot_get_parent_id (get (f, "4")), ==, "1");
  g_assert_cmpuint (g_list_model_get_n_items (vireo_snapshot_get_children (get (f, "1"))), ==, 3);
  g_assert_cmpstr (vireo_snapshot_store_get_current_id (f->store), ==, "3");

  /* Deleting the current one: its parent becomes current. */
  g_assert_true (vireo_snapshot_store_remove (f->store, "3", &error));
  reload (f);
  g_assert_cmpstr (vireo_snapshot_store_get_current_id (f->store), ==, "1");
  g_assert_true (vireo_snapshot_get_current (get (f, "1")));

  /* Deleting a root: its children become roots. */
  g_assert_true (vireo_snapshot_store_remove (f->store, "1", &error));
  reload (f);
  g_assert_null (vireo_snapshot_get_parent_id (get (f, "4")));
  g_assert_null (vireo_snapshot_get_parent_id (get (f, "5")));
  g_assert_null (vireo_snapshot_store_get_current_id (f->store));
  g_assert_cmpuint (g_list_model_get_n_items (vireo_snapshot_store_get_tree (f->store)), ==, 2);

  g_assert_false (vireo_snapshot_store_remove (f->store, "1", &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NOT_FOUND);
}

static void
test_loop (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);

  /* A hand-edited file with a parent loop and a parent that does not exist. */
  make_snapshot_dir (f, "1", FALSE);
  make_snapshot_dir (f, "2", FALSE);
  make_snapshot_dir (f, "3", FALSE);
  g_assert_true (g_file_set_contents (path,
                                      "[Vireo]\nVersion=1\n"
                                      "[Snapshot 1]\nName=A\nParent=2\n"
                                      "[Snapshot 2]\nName=B\nParent=1\n"
                                      "[Snapshot 3]\nName=C\nParent=99\n", -1, NULL));
  reload (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 3);
  /* Every snapshot is reachable from the roots. */
  g_assert_cmpuint (g_list_model_get_n_items (vireo_snapshot_store_get_tree (f->store)), >=, 2);
}

static void
test_newer (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, VIREO_SNAPSHOT_INDEX_FILE, NULL);
  const char *newer = "[Vireo]\nVersion=7\nCurrent=1\n\n[Snapshot 1]\nName=From the future\n";
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *id = NULL;

  make_snapshot_dir (f, "1", FALSE);
  g_assert_true (g_file_set_contents (path, newer, -1, NULL));

  g_assert_false (vireo_snapshot_store_reload (f->store, TRUE, &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NEWER);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "newer version of Vireo"));
  g_assert_cmpstr (vireo_snapshot_store_get_error (f->store), ==, error->message);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 0);
  g_clear_error (&error);

  /* Nothing is written over it, and no new snapshot can be started. */
  g_assert_false (vireo_snapshot_store_add (f->store, "2", "x", NULL, NULL, FALSE, NULL, &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NEWER);
  g_clear_error (&error);
  g_assert_false (vireo_snapshot_store_remove (f->store, "1", &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NEWER);
  g_clear_error (&error);
  id = vireo_snapshot_store_next_id (f->store, &error);
  g_assert_null (id);
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_NEWER);
  g_clear_error (&error);
  {
    /* Its folders are not orphans to clean either. */
    g_auto(GStrv) orphans = vireo_snapshot_store_list_orphans (f->store);
    g_assert_cmpuint (g_strv_length (orphans), ==, 0);
  }
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, newer);

  /* Garbage is refused the same way, with another message. */
  g_assert_true (g_file_set_contents (path, "\x01\x02 not a key file", -1, NULL));
  g_assert_false (vireo_snapshot_store_reload (f->store, TRUE, &error));
  g_assert_error (error, VIREO_SNAPSHOT_STORE_ERROR, VIREO_SNAPSHOT_STORE_ERROR_PARSE);
  g_test_message ("%s", error->message);
}

static void
test_disk_snapshots (Fixture *f, gconstpointer data)
{
  g_autofree char *image = g_build_filename (f->root, "disk.qcow2", NULL);
  const char *disks[] = { image, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  VireoSnapshot *s;

  g_assert_true (vr_disk_create (image, VR_DISK_FORMAT_QCOW2, 16 << 20, NULL,
                                 VR_DISK_FORMAT_RAW, &error));
  g_assert_no_error (error);
  {
    g_autoptr(VrDisk) disk = vr_disk_open (image, VR_DISK_FORMAT_QCOW2, 0, &error);

    g_assert_no_error (error);
    /* Vireo's own (the index names it), the saved state, and two made elsewhere. */
    g_assert_true (vr_disk_snapshot_create (disk, "1", "1", 0, &error));
    g_assert_true (vr_disk_snapshot_create (disk, "saved-state", "saved-state", 0, &error));
    g_assert_true (vr_disk_snapshot_create (disk, NULL, "before-upgrade", 0, &error));
    g_assert_true (vr_disk_snapshot_create (disk, "17", "clean", 0, &error));
    g_assert_no_error (error);
  }
  add (f, "1", "Ours", FALSE);
  vireo_snapshot_store_set_disks (f->store, disks);
  reload (f);

  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->store)), ==, 3);
  g_assert_cmpint (vireo_snapshot_get_kind (get (f, "1")), ==, VIREO_SNAPSHOT_KIND_VIREO);
  g_assert_null (vireo_snapshot_store_lookup (f->store, "disk:saved-state"));
  g_assert_null (vireo_snapshot_store_lookup (f->store, "disk:1"));

  s = get (f, "disk:17");
  g_assert_cmpint (vireo_snapshot_get_kind (s), ==, VIREO_SNAPSHOT_KIND_DISK);
  g_assert_cmpstr (vireo_snapshot_get_name (s), ==, "clean");
  g_assert_cmpstr (vireo_snapshot_get_disk_id (s), ==, "17");
  g_assert_false (vireo_snapshot_get_memory (s));
  g_assert_null (vireo_snapshot_get_parent_id (s));
  g_assert_cmpuint (g_strv_length ((char **) vireo_snapshot_get_disks (s)), ==, 1);
  g_assert_cmpstr (vireo_snapshot_get_disks (s)[0], ==, image);
  for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (f->store)); i++)
    {
      g_autoptr(VireoSnapshot) item = g_list_model_get_item (G_LIST_MODEL (f->store), i);

      if (g_strcmp0 (vireo_snapshot_get_name (item), "before-upgrade") == 0)
        g_assert_cmpint (vireo_snapshot_get_kind (item), ==, VIREO_SNAPSHOT_KIND_DISK);
    }

  /* The next id skips the ids the disk uses. */
  id = vireo_snapshot_store_next_id (f->store, &error);
  g_assert_cmpstr (id, ==, "18");

  /* Without a scan (the machine runs), the last findings stay. */
  g_assert_true (vireo_snapshot_store_reload (f->store, FALSE, NULL));
  g_assert_nonnull (vireo_snapshot_store_lookup (f->store, "disk:17"));
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/snapshot-store/empty", test_empty);
  ADD ("/snapshot-store/round-trip", test_round_trip);
  ADD ("/snapshot-store/unknown-keys-kept", test_unknown_keys_kept);
  ADD ("/snapshot-store/atomic", test_atomic);
  ADD ("/snapshot-store/orphan", test_orphan);
  ADD ("/snapshot-store/broken", test_broken);
  ADD ("/snapshot-store/reparent", test_reparent);
  ADD ("/snapshot-store/loop", test_loop);
  ADD ("/snapshot-store/newer", test_newer);
  ADD ("/snapshot-store/disk-snapshots", test_disk_snapshots);
#undef ADD

  return g_test_run ();
}
