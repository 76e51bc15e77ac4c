/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "vireo-machine-config.h"
#include "vireo-snapshot-store.h"
#include "vr-machine.h"

G_BEGIN_DECLS

/*
 * One machine of the library: its folder ($XDG_DATA_HOME/vireo/machines/<uuid>/), its
 * settings, and while it runs the engine's VrMachine (created by start, freed when it
 * stops). GTK-free; everything runs on the main thread except the slow parts of start,
 * delete, clone and the snapshot operations, which run in GTask threads.
 *
 * A machine whose machine.conf cannot be read is "broken": it is listed with the reason,
 * it cannot start, and it is never written over (it can be deleted).
 */

typedef enum
{
  VIREO_MACHINE_STATE_STOPPED,
  VIREO_MACHINE_STATE_STARTING,  /* the engine is building the machine */
  VIREO_MACHINE_STATE_RUNNING,
  VIREO_MACHINE_STATE_PAUSED,
  VIREO_MACHINE_STATE_STOPPING,  /* the power button was pressed: the guest decides */
  VIREO_MACHINE_STATE_BROKEN,    /* machine.conf could not be loaded: see broken-reason */
} VireoMachineState;

#define VIREO_TYPE_MACHINE_STATE (vireo_machine_state_get_type ())
GType vireo_machine_state_get_type (void) G_GNUC_CONST;

#define VIREO_MACHINE_THUMBNAIL_FILE "thumbnail.png"
#define VIREO_MACHINE_SERIAL_LOG     "serial.log"
#define VIREO_MACHINE_SNAPSHOT_DIR   "snapshots"
/* A live snapshot of a machine that was running when the user chose "Save State": its next
 * start resumes from it (and deletes it). Its disk snapshots are named like the folder. */
#define VIREO_MACHINE_SAVED_STATE_DIR "saved-state"

#define VIREO_MACHINE_ERROR (vireo_machine_error_quark ())
GQuark vireo_machine_error_quark (void);

typedef enum
{
  VIREO_MACHINE_ERROR_BUSY,         /* another snapshot operation is under way */
  VIREO_MACHINE_ERROR_SAVED_STATE,  /* the saved state could not be restored (it is kept) */
  VIREO_MACHINE_ERROR_NO_SNAPSHOTS, /* a writable disk cannot hold snapshots (raw) */
} VireoMachineError;

/* What the machine's snapshot work is doing (one thing at a time). */
typedef enum
{
  VIREO_SNAPSHOT_OP_NONE,
  VIREO_SNAPSHOT_OP_TAKE,
  VIREO_SNAPSHOT_OP_REVERT,
  VIREO_SNAPSHOT_OP_DELETE,
  VIREO_SNAPSHOT_OP_SAVE_STATE,
  VIREO_SNAPSHOT_OP_DISCARD_STATE,
} VireoSnapshotOp;

#define VIREO_TYPE_SNAPSHOT_OP (vireo_snapshot_op_get_type ())
GType vireo_snapshot_op_get_type (void) G_GNUC_CONST;

#define VIREO_TYPE_MACHINE (vireo_machine_get_type ())
G_DECLARE_FINAL_TYPE (VireoMachine, vireo_machine, VIREO, MACHINE, GObject)

/* clang-format off */
/* A machine for @config living in @dir (which must exist). */
VireoMachine       *vireo_machine_new              (VireoMachineConfig   *config,
                                                    const char           *dir);
/* Loads @dir/machine.conf: migrates an older format (writing the new file, the old one
 * kept as machine.conf.vN), validates, checks its files (see check_files), and removes
 * temporary files a crash left. Never NULL: a machine whose settings cannot be read or are
 * invalid comes back broken, with the reason. */
VireoMachine       *vireo_machine_load             (const char           *dir);

const char         *vireo_machine_get_name         (VireoMachine         *self);
const char         *vireo_machine_get_uuid         (VireoMachine         *self);
const char         *vireo_machine_get_dir          (VireoMachine         *self);
VireoMachineState   vireo_machine_get_state        (VireoMachine         *self);
gboolean            vireo_machine_is_broken        (VireoMachine         *self);
gboolean            vireo_machine_is_active        (VireoMachine         *self);
const char         *vireo_machine_get_broken_reason (VireoMachine        *self);
/* Whether the machine can start: every file it needs (kernel, initrd, firmware, disk and
 * CD/DVD images) exists, and it has what it boots from (see vireo_machine_config_validate()
 * with a folder); the answer is kept in the "problem" property (NULL when all is well),
 * checked at load, on set_config and when starting. A machine with a problem is listed
 * normally and can be edited. */
gboolean            vireo_machine_check_files      (VireoMachine         *self,
                                                    GError              **error);
const char         *vireo_machine_get_problem      (VireoMachine         *self);
/* The problem as the error that described it (VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND: a file is
 * missing), or NULL. */
const GError       *vireo_machine_get_problem_error (VireoMachine        *self);
/* The settings (NULL when broken). Do not change them in place: copy, edit, set_config. */
VireoMachineConfig *vireo_machine_get_config       (VireoMachine         *self);
/* Validates (names, ranges; files only when @check_files), takes @config and saves it
 * atomically. Changes reach a running machine at its next start. */
gboolean            vireo_machine_set_config       (VireoMachine         *self,
                                                    VireoMachineConfig   *config,
                                                    gboolean              check_files,
                                                    GError              **error);
/* Writes machine.conf atomically; refused for a broken machine. */
gboolean            vireo_machine_save             (VireoMachine         *self,
                                                    GError              **error);

/* Activity, refreshed once a second while running. */
double              vireo_machine_get_cpu_usage    (VireoMachine         *self);
/* Per vCPU, in percent of one host CPU; @n_vcpus gets the count (0 while stopped). */
const double       *vireo_machine_get_vcpu_usage   (VireoMachine         *self,
                                                    guint                *n_vcpus);
guint64             vireo_machine_get_memory_usage (VireoMachine         *self);
guint64             vireo_machine_get_disk_read_bytes  (VireoMachine     *self);
guint64             vireo_machine_get_disk_write_bytes (VireoMachine     *self);
guint64             vireo_machine_get_net_rx_bytes (VireoMachine         *self);
guint64             vireo_machine_get_net_tx_bytes (VireoMachine         *self);

/* The serial port's pty while running (attach a VTE), else NULL. */
const char         *vireo_machine_get_serial_pty   (VireoMachine         *self);
/* @dir/serial.log: what the serial port printed, kept across runs (g_free it). */
char               *vireo_machine_dup_serial_log_path (VireoMachine      *self);
/* The engine's machine while one exists (display, input), else NULL. notify::vr-machine
 * fires when it appears and just before it is freed (this returns NULL by then): let go of
 * it there. */
VrMachine          *vireo_machine_get_vr_machine   (VireoMachine         *self);

/* @dir/thumbnail.png if it exists, else NULL. Changes (notify::thumbnail) when saved. */
GFile              *vireo_machine_get_thumbnail    (VireoMachine         *self);
gboolean            vireo_machine_save_thumbnail   (VireoMachine         *self,
                                                    GBytes               *png,
                                                    GError              **error);

/*
 * Booting through the firmware (Kind=disk|cdrom). When it finds nothing to boot (an empty
 * disk, no disc in the drive), "boot-failure" holds its words ("No bootable device.") until
 * something changes: a reset, another disc, the machine stops. The firmware itself tries
 * again after a while, as a PC does.
 */
const char         *vireo_machine_get_boot_failure (VireoMachine         *self);

/*
 * The CD/DVD drive: the machine's disk with Media=cdrom (see vireo-machine-config.h). While
 * the machine runs, the drive it started with (a drive added meanwhile comes at the next
 * start). dup_cdrom: the image in the drive now (an absolute path; g_free it), NULL when
 * empty or there is no drive; notify::cdrom when it changes, also when the guest ejects the
 * disc itself (machine.conf follows). change_cdrom: puts @path (an absolute path to an ISO
 * image) in the drive, or ejects with NULL; at once while the machine runs (the guest sees a
 * media change), and saved to machine.conf. A stopped machine without a drive gets one.
 * Refused while the machine starts, and for a running machine without a drive.
 */
gboolean            vireo_machine_has_cdrom_drive  (VireoMachine         *self);
char               *vireo_machine_dup_cdrom        (VireoMachine         *self);
gboolean            vireo_machine_change_cdrom     (VireoMachine         *self,
                                                    const char           *path,
                                                    GError              **error);

/* Lifecycle. start: the engine builds the machine in a thread (and resumes it from its
 * saved state when it has one: see save_state below). */
void                vireo_machine_start_async      (VireoMachine         *self,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_start_finish     (VireoMachine         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
gboolean            vireo_machine_pause            (VireoMachine         *self,
                                                    GError              **error);
gboolean            vireo_machine_resume           (VireoMachine         *self,
                                                    GError              **error);
/* Presses the ACPI power button (state STOPPING until the guest powers off). */
gboolean            vireo_machine_shutdown         (VireoMachine         *self,
                                                    GError              **error);
/* Pulls the plug. Nothing happens when stopped. */
void                vireo_machine_force_off        (VireoMachine         *self);
gboolean            vireo_machine_reset            (VireoMachine         *self,
                                                    GError              **error);

/* Deletes the machine's folder. Its disk images (those inside the folder: never a file the
 * user picked elsewhere) go to the trash when @trash_disks, else are deleted too. The
 * machine must be stopped. */
void                vireo_machine_delete_async     (VireoMachine         *self,
                                                    gboolean              trash_disks,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_delete_finish    (VireoMachine         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
/* A new machine named @name next to this one (same parent folder), with a new uuid: disks
 * inside the folder copied (sparse), or with @linked as qcow2 overlays whose backing files
 * are this machine's images (which must then stay unchanged). Disks outside the folder are
 * shared. The machine must be stopped. */
void                vireo_machine_clone_async      (VireoMachine         *self,
                                                    const char           *name,
                                                    gboolean              linked,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
VireoMachine       *vireo_machine_clone_finish     (VireoMachine         *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

/*
 * Snapshots (see vireo-snapshot-store.h for the files). Each operation runs the engine in a
 * GTask thread and keeps the engine's machine alive meanwhile: a power-off or force_off that
 * comes in the middle takes effect when it is done; a second operation, start and delete
 * are refused (VIREO_MACHINE_ERROR_BUSY) until then. "snapshot-op" says what runs.
 *
 * Take: while the machine runs (or is paused) a live snapshot (vCPUs, devices, memory and
 * disks); while it is off, its disks only. @thumbnail_png (optional) is kept as the
 * snapshot's thumbnail.png; without it a stopped machine's last thumbnail is used. Finishes
 * with the new snapshot's id (g_free it).
 * Revert: to a snapshot with memory, the machine runs on from there (started if it was off);
 * to a disk-only one, the disks go back and a machine that was running boots afresh from
 * them (one that was off stays off). A disk-only snapshot made outside Vireo
 * (VIREO_SNAPSHOT_KIND_DISK) can be reverted to and deleted only while the machine is off.
 * Delete: the entry goes first, then its files and disk snapshots; its children move up.
 * A machine with a writable raw disk cannot take snapshots (can_snapshot()).
 */
VireoSnapshotStore *vireo_machine_get_snapshot_store (VireoMachine       *self);
/* Reads the snapshot index (and, while the machine is off, its disks) again. */
void                vireo_machine_reload_snapshots (VireoMachine         *self);
VireoSnapshotOp     vireo_machine_get_snapshot_op  (VireoMachine         *self);
/* Whether every writable disk can hold snapshots; if not, the error says which and what to
 * do (VIREO_MACHINE_ERROR_NO_SNAPSHOTS). */
/* Puts a new qcow2 overlay (backing file: the raw image, which is not written again) on
 * every writable raw disk of a stopped machine, so that it can take snapshots; the machine's
 * settings then name the overlays. Nothing changes on failure. */
gboolean            vireo_machine_add_disk_overlays (VireoMachine        *self,
                                                     GError             **error);
gboolean            vireo_machine_can_snapshot     (VireoMachine         *self,
                                                    GError              **error);
void                vireo_machine_take_snapshot_async (VireoMachine      *self,
                                                    const char           *name,
                                                    const char           *description,
                                                    GBytes               *thumbnail_png,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
char               *vireo_machine_take_snapshot_finish (VireoMachine     *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
void                vireo_machine_revert_snapshot_async (VireoMachine    *self,
                                                    const char           *id,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_revert_snapshot_finish (VireoMachine   *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
void                vireo_machine_delete_snapshot_async (VireoMachine    *self,
                                                    const char           *id,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_delete_snapshot_finish (VireoMachine   *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
/* Rename and describe (NULL: unchanged); a small atomic write, on the calling thread. */
gboolean            vireo_machine_update_snapshot  (VireoMachine         *self,
                                                    const char           *id,
                                                    const char           *name,
                                                    const char           *description,
                                                    GError              **error);

/*
 * Save state (like a laptop's hibernation): a live snapshot into @dir/saved-state/, then the
 * machine stops. Its next start resumes from there instead of booting, then deletes the
 * saved state. When that fails, start fails with VIREO_MACHINE_ERROR_SAVED_STATE and the
 * saved state stays ("saved-state-error" says why) until the user discards it
 * (discard_saved_state, then start boots normally).
 */
gboolean            vireo_machine_has_saved_state  (VireoMachine         *self);
const char         *vireo_machine_get_saved_state_error (VireoMachine    *self);
/* Whether the current (or last) run resumed from a saved state rather than booting. */
gboolean            vireo_machine_get_resumed      (VireoMachine         *self);
void                vireo_machine_save_state_async (VireoMachine         *self,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_save_state_finish (VireoMachine        *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
void                vireo_machine_discard_saved_state_async (VireoMachine *self,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
gboolean            vireo_machine_discard_saved_state_finish (VireoMachine *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);

/* "Running", "Stopped"… for the list. */
const char         *vireo_machine_state_to_label   (VireoMachineState     state);
/* clang-format on */

G_END_DECLS
