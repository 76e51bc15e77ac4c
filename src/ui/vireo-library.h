/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "vireo-machine.h"

G_BEGIN_DECLS

/*
 * The machine library: a GListModel of VireoMachine, sorted by name (then uuid), of every
 * folder in $XDG_DATA_HOME/vireo/machines/ (or the folder given). A machine that cannot be
 * loaded is listed as broken. Folders that appear or vanish (another Vireo, a person) are
 * picked up through a GFileMonitor. Folders whose name starts with '.' are work in progress
 * (a machine being created or cloned) and are ignored.
 */

#define VIREO_TYPE_LIBRARY (vireo_library_get_type ())
G_DECLARE_FINAL_TYPE (VireoLibrary, vireo_library, VIREO, LIBRARY, GObject)

/* clang-format off */
/* $XDG_DATA_HOME/vireo/machines (g_free it). */
char         *vireo_library_default_dir            (void);
/* @dir: NULL for the default. Nothing is read before vireo_library_load_async(). */
VireoLibrary *vireo_library_new                    (const char           *dir);
const char   *vireo_library_get_dir                (VireoLibrary         *self);
gboolean      vireo_library_is_loaded              (VireoLibrary         *self);

/* Creates the folder if needed, reads every machine in a thread, then starts watching. */
void          vireo_library_load_async             (VireoLibrary         *self,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean      vireo_library_load_finish            (VireoLibrary         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

VireoMachine *vireo_library_find_by_uuid           (VireoLibrary         *self,
                                                    const char           *uuid);
/* Whether another machine than @except (may be NULL) has @name (case-insensitively). */
gboolean      vireo_library_name_is_taken          (VireoLibrary         *self,
                                                    const char           *name,
                                                    VireoMachine         *except);
/* @base, or "@base 2", "@base 3"… the first name not taken (g_free it). */
char         *vireo_library_suggest_name           (VireoLibrary         *self,
                                                    const char           *base);

/* For the wizard's storage page: new disks go into the new machine's folder, inside this
 * one (g_free it). */
char         *vireo_library_get_default_disk_dir   (VireoLibrary         *self);
/* A file name for a machine's first new disk: "disk.qcow2", "disk.img". */
const char   *vireo_library_default_disk_name      (VrDiskFormat          format);
/* Free space where new disks go, in bytes. */
gboolean      vireo_library_query_free_space       (VireoLibrary         *self,
                                                    guint64              *bytes,
                                                    GError              **error);

/* Makes the machine's folder from @config (copied; the uuid is kept unless taken or NULL):
 * creates the disks that have a create_size, writes machine.conf, and adds the machine. The
 * folder appears complete or not at all. */
void          vireo_library_create_machine_async   (VireoLibrary         *self,
                                                    VireoMachineConfig   *config,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
VireoMachine *vireo_library_create_machine_finish  (VireoLibrary         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

/* The demo guest installed with Vireo ($VIREO_DEMO_GUEST overrides it; g_free it). */
char         *vireo_library_get_demo_guest_path    (void);
/* A machine that boots the demo guest: a screen, a keyboard, a serial console. */
void          vireo_library_create_demo_machine_async  (VireoLibrary     *self,
                                                        GCancellable     *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer          user_data);
VireoMachine *vireo_library_create_demo_machine_finish (VireoLibrary     *self,
                                                        GAsyncResult     *result,
                                                        GError          **error);

/* vireo_machine_delete_async(), then the machine leaves the list. */
void          vireo_library_delete_machine_async   (VireoLibrary         *self,
                                                    VireoMachine         *machine,
                                                    gboolean              trash_disks,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean      vireo_library_delete_machine_finish  (VireoLibrary         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
/* vireo_machine_clone_async() (the name must not be taken), then the clone joins the list. */
void          vireo_library_clone_machine_async    (VireoLibrary         *self,
                                                    VireoMachine         *machine,
                                                    const char           *name,
                                                    gboolean              linked,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
VireoMachine *vireo_library_clone_machine_finish   (VireoLibrary         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
/* clang-format on */

G_END_DECLS
