/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

/*
 * The files of a machine snapshot, in one directory:
 *
 *   state   "VIREOSNP", u32 format version, u32 flags (0), u64 payload length, the SHA-256
 *           of the payload, then the payload: a GVariant a{sv} in normal form (header keys
 *           "engine-version", "layout", "created", "memory" …, the VM, vCPU and device
 *           states). Little-endian throughout.
 *   ram     only for snapshots with memory: a 4 KiB header ("VIREORAM", u32 version, u32
 *           page size, u64 RAM size, u64 data offset, a 16-byte id that the state file
 *           names too, the SHA-256 of the header fields), then guest RAM from the data
 *           offset on, with a hole for every zero page. Restore maps it copy-on-write, so it
 *           is never read as a whole and has no checksum of its own.
 *
 * A directory is written under a temporary name (`NAME.partial-XXXXXX`), each file
 * fsynced, the directory fsynced, then renamed to its final name and the parent fsynced:
 * a snapshot is complete or absent. Reading refuses a file from a newer format, a truncated
 * file, a bad checksum, or a payload that is not in normal form, each with its own message.
 */

#define VR_SNAPSHOT_FORMAT_VERSION 1
#define VR_SNAPSHOT_RAM_OFFSET     4096u
#define VR_SNAPSHOT_ID_SIZE        16

bool      vr_snapshot_write_state      (int            dir_fd,
                                        const char    *name,
                                        GVariant      *payload,
                                        GError       **error);
GVariant *vr_snapshot_read_state       (const char    *path,
                                        GError       **error);

bool      vr_snapshot_write_ram_header (int            fd,
                                        uint64_t       ram_size,
                                        const uint8_t *id,
                                        GError       **error);
bool      vr_snapshot_check_ram_header (int            fd,
                                        const char    *path,
                                        uint64_t       ram_size,
                                        const uint8_t *id,
                                        GError       **error);

/* A new empty directory next to @final (its parent must exist). */
char     *vr_snapshot_make_temp_dir    (const char    *final,
                                        GError       **error);
/* fsyncs @tmp, renames it to @final (never replacing an existing one), fsyncs the parent. */
bool      vr_snapshot_commit_dir       (const char    *tmp,
                                        const char    *final,
                                        GError       **error);
/* Removes a snapshot directory and the files Vireo puts in it (best effort). */
void      vr_snapshot_remove_dir       (const char    *path);
bool      vr_snapshot_fsync            (int            fd,
                                        const char    *what,
                                        GError       **error);

G_END_DECLS
