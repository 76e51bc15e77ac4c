/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vr-display.h"

G_BEGIN_DECLS

#define VR_ERROR (vr_error_quark ())

typedef enum
{
  VR_ERROR_FAILED,
  VR_ERROR_NO_KVM,          /* /dev/kvm missing */
  VR_ERROR_KVM_PERMISSION,  /* /dev/kvm not accessible */
  VR_ERROR_KVM_CAPABILITY,  /* a required KVM capability is missing */
  VR_ERROR_INVALID_CONFIG,  /* the configuration asks for something impossible */
  VR_ERROR_NO_MEMORY,       /* guest memory cannot be allocated */
  VR_ERROR_BAD_KERNEL,      /* the kernel image cannot be booted */
  VR_ERROR_BAD_INITRD,
  VR_ERROR_BACKEND,         /* a host backend (pty, file) failed */
  VR_ERROR_STATE,           /* the call is not valid in the machine's current state */
  VR_ERROR_BAD_SNAPSHOT,    /* a snapshot is damaged, truncated, newer, or for another machine */
  VR_ERROR_IO,              /* reading or writing a file failed (disk full, permissions) */
} VrError;

GQuark vr_error_quark (void);

typedef enum
{
  VR_SERIAL_NONE,
  VR_SERIAL_STDIO,
  VR_SERIAL_PTY,
  VR_SERIAL_FILE,
} VrSerialBackend;

typedef enum
{
  VR_RESET_RESTART,  /* a guest reset reboots the machine (like a PC) */
  VR_RESET_STOP,     /* a guest reset stops the machine (like QEMU -no-reboot) */
} VrResetPolicy;

/* A virtio-blk disk. */
typedef struct
{
  char            *path;
  char            *format;       /* "raw", "qcow2" or "vmdk": never guessed from the image */
  bool             readonly;
  char            *serial;       /* optional; the guest sees at most 20 bytes */
} VrDiskConfig;

/* The machine's display card (see vr-display.h for what the UI sees). */
typedef enum
{
  VR_DISPLAY_DEVICE_NONE,        /* no screen (headless) */
  VR_DISPLAY_DEVICE_BOCHS,       /* a bochs-display PCI card: a linear framebuffer (QEMU's
                                  * `-device bochs-display`, Linux's bochs DRM driver) */
  VR_DISPLAY_DEVICE_VIRTIO_GPU,  /* virtio-gpu (2D, resizable) plus the bochs card for the
                                  * firmware and early boot; the guest's virtio-gpu scanout,
                                  * once set, is what the display shows */
} VrDisplayDevice;

#define VR_MAX_DISKS 16
#define VR_MAX_NICS  8

/* What the firmware tries to boot, in order (VrMachineConfig.boot_order). */
typedef enum
{
  VR_BOOT_DEVICE_END,        /* terminates the list */
  VR_BOOT_DEVICE_CDROM,      /* the CD-ROM drive (config.cdrom) */
  VR_BOOT_DEVICE_DISK,       /* the virtio-blk disks, first to last */
} VrBootDevice;

#define VR_MAX_BOOT_DEVICES 4

/* The firmware the machine boots through (instead of a kernel loaded by the engine). */
#define VR_SEABIOS_DEFAULT_PATH  "/usr/share/seabios/bios.bin"
#define VR_SEABIOS_VGA_ROM       "vgabios-bochs-display.bin"
#define VR_SEABIOS_VGA_ROM_PATH  "/usr/share/seabios/" VR_SEABIOS_VGA_ROM

typedef struct
{
  char            *name;
  char            *kernel;       /* bzImage, PVH ELF or Multiboot v1 kernel */
  char            *initrd;       /* optional */
  char            *cmdline;      /* optional */
  uint64_t         memory;       /* bytes */
  unsigned         cpus;         /* 1..VR_MAX_CPUS */
  VrSerialBackend  serial;
  char            *serial_path;  /* the log file for VR_SERIAL_FILE; with VR_SERIAL_PTY, when
                                  * set, output is also appended there */
  VrResetPolicy    on_reset;
  /*
   * CPUID features to hide from the guest, as a comma-separated list of names such as
   * "x2apic,avx512f,pdpe1gb" (see vr-cpuid.c for the table), or NULL.
   */
  char            *cpuid_mask;

  /* virtio devices. */
  VrDiskConfig    *disks;        /* n_disks entries */
  unsigned         n_disks;
  /* Network cards, each as `user[,hostfwd=RULE]…[,mac=MAC]`, `tap:NAME[,mac=MAC]` (see
   * net/vr-net.h); NULL-terminated, or NULL for none. */
  char           **nics;
  bool             rng;          /* virtio-rng fed by the host's getrandom() */
  bool             input;        /* virtio keyboard + absolute tablet */
  VrSerialBackend  console;      /* virtio-console; VR_SERIAL_NONE: no console device */
  char            *console_path; /* for VR_SERIAL_FILE */
  VrDisplayDevice  display;      /* default VR_DISPLAY_DEVICE_NONE */

  /*
   * PC firmware (SeaBIOS): a path to its image (VR_SEABIOS_DEFAULT_PATH for Debian's
   * package), or NULL to boot @kernel directly. With firmware the machine gets the PC
   * chipset SeaBIOS expects and boots what @boot_order names; @kernel must then be NULL
   * (a kernel is booted by the engine itself). The display's option ROM is read from
   * @vga_rom (NULL: VR_SEABIOS_VGA_ROM in the firmware's directory, as SeaBIOS installs
   * them; a missing ROM only costs the firmware's screen output).
   */
  char            *firmware;
  char            *vga_rom;
  /* A CD-ROM drive (virtio-scsi, target 0 LUN 0) holding this ISO image; NULL: no drive.
   * An empty drive: set @cdrom_drive with @cdrom NULL. */
  char            *cdrom;
  bool             cdrom_drive;
  VrBootDevice     boot_order[VR_MAX_BOOT_DEVICES];  /* VR_BOOT_DEVICE_END-terminated;
                                                      * all END: CD-ROM, then disks */
  char            *uuid;         /* the machine's UUID (text) for the firmware's SMBIOS
                                  * tables, or NULL */
} VrMachineConfig;

#define VR_MAX_CPUS      64
#define VR_MIN_MEMORY    (2u << 20)
#define VR_MAX_MEMORY    (1024ull << 30)

void             vr_machine_config_init  (VrMachineConfig       *config);
void             vr_machine_config_clear (VrMachineConfig       *config);

typedef enum
{
  VR_STATE_CREATED,   /* built, never started */
  VR_STATE_RUNNING,
  VR_STATE_PAUSED,
  VR_STATE_STOPPED,   /* powered off, exited or stopped; start() boots it again */
} VrMachineState;

typedef enum
{
  VR_STOP_NONE,
  VR_STOP_POWER_OFF,     /* ACPI S5 */
  VR_STOP_DEBUG_EXIT,    /* the isa-debug-exit port; see exit_status */
  VR_STOP_RESET,         /* a guest reset with VR_RESET_STOP */
  VR_STOP_TRIPLE_FAULT,  /* a triple fault with VR_RESET_STOP */
  VR_STOP_GUEST_ERROR,   /* KVM could not run the guest: internal error, bad exit */
  VR_STOP_REQUESTED,     /* vr_machine_stop() */
} VrStopReason;

typedef enum
{
  VR_EVENT_STATE_CHANGED,
  VR_EVENT_POWERED_OFF,
  VR_EVENT_RESET,
  VR_EVENT_GUEST_ERROR,
  VR_EVENT_SNAPSHOT_REQUESTED, /* the guest asked for a snapshot (VR_SNAPSHOT_PORT) */
  VR_EVENT_BOOT_FAILED,        /* the firmware found nothing to boot (message: its words);
                                * it retries after a while, as a PC does */
  VR_EVENT_CDROM_CHANGED,      /* the medium changed (the guest ejected it, or a call) */
} VrEventType;

typedef struct
{
  VrEventType     type;
  VrMachineState  state;       /* the state after the event */
  VrStopReason    reason;      /* for POWERED_OFF */
  int             exit_status; /* for VR_STOP_DEBUG_EXIT: (value << 1) | 1 */
  const char     *message;     /* for GUEST_ERROR and RESET: human-readable */
} VrEvent;

typedef struct _VrMachine VrMachine;

typedef void (*VrEventFunc) (VrMachine     *machine,
                             const VrEvent *event,
                             gpointer       user_data);

VrMachine      *vr_machine_new              (const VrMachineConfig  *config,
                                             GError                **error);
void            vr_machine_free             (VrMachine              *machine);
/* Events are delivered on @context (NULL: the thread-default context at the time of call). */
void            vr_machine_set_event_func   (VrMachine              *machine,
                                             GMainContext           *context,
                                             VrEventFunc             func,
                                             gpointer                user_data,
                                             GDestroyNotify          destroy);
bool            vr_machine_start            (VrMachine              *machine,
                                             GError                **error);
bool            vr_machine_pause            (VrMachine              *machine,
                                             GError                **error);
bool            vr_machine_resume           (VrMachine              *machine,
                                             GError                **error);
bool            vr_machine_reset            (VrMachine              *machine,
                                             GError                **error);
/* Stops at once (pulling the plug). Blocks until every vCPU thread has returned. */
void            vr_machine_stop             (VrMachine              *machine);
/* Presses the ACPI power button: the guest decides what to do. */
void            vr_machine_power_button     (VrMachine              *machine);

/* Guest I/O since the machine was created, summed over its disks and network cards (bytes
 * and requests of completed reads and writes; frames delivered to and sent by the guest).
 * Any thread; cheap enough to poll. */
typedef struct
{
  uint64_t disk_read_bytes;
  uint64_t disk_write_bytes;
  uint64_t disk_reads;
  uint64_t disk_writes;
  uint64_t net_rx_bytes;
  uint64_t net_tx_bytes;
  uint64_t net_rx_packets;
  uint64_t net_tx_packets;
} VrIoStats;

void            vr_machine_get_io_stats     (VrMachine              *machine,
                                             VrIoStats              *stats);

/* Every vCPU's registers and the bytes at its RIP, for diagnosis (g_free it). Briefly pauses
 * a running machine. */
char           *vr_machine_dump_cpus        (VrMachine              *machine);

VrMachineState  vr_machine_get_state        (VrMachine              *machine);
VrStopReason    vr_machine_get_stop_reason  (VrMachine              *machine);
int             vr_machine_get_exit_status  (VrMachine              *machine);
/*
 * Snapshots (files: see snapshot/vr-snapshot.h). vr_machine_save_snapshot() writes the
 * snapshot directory @dir (which must not exist yet; its parent must). A running or paused
 * machine is saved whole: its vCPUs are parked at an instruction boundary, devices finish
 * their I/O in flight, then every vCPU, the irqchip, PIT, clock, each device and all of RAM
 * are written, and every writable qcow2 disk gets an internal snapshot named @disk_id
 * (default: the basename of @dir). A machine that is not running gets a disk-only snapshot.
 * Writable raw disks cannot be snapshotted (VR_ERROR_INVALID_CONFIG: convert them or add a
 * qcow2 overlay first). The machine then runs on (or stays paused). Blocks while it writes.
 *
 * vr_machine_restore_snapshot() checks the whole snapshot first (a damaged, truncated or
 * newer file, or one taken of a machine with another layout, is refused and the machine is
 * untouched), then reverts the disks and, for a snapshot with memory, resumes the guest
 * exactly where it was (RAM mapped copy-on-write from the snapshot: no copy) — running, or
 * paused with VR_RESTORE_PAUSED. A disk-only snapshot leaves the machine stopped (it boots
 * fresh). An error after the machine was touched leaves it stopped.
 *
 * vr_machine_delete_snapshot() drops the disks' internal snapshots and removes @dir.
 * All three may be called from any thread (the event callback too); they run on the
 * machine's I/O thread and block the caller until done.
 */
typedef enum
{
  VR_RESTORE_PAUSED   = 1 << 0,  /* stay paused after the restore */
  VR_RESTORE_PREFAULT = 1 << 1,  /* start reading all of the RAM file in the background */
} VrRestoreFlags;

/* A guest asks for a snapshot by writing 1 to this port (VR_EVENT_SNAPSHOT_REQUESTED); a
 * read returns a byte that changes after every snapshot saved or restored. */
#define VR_SNAPSHOT_PORT 0x6f0

bool            vr_machine_save_snapshot    (VrMachine              *machine,
                                             const char             *dir,
                                             const char             *disk_id,
                                             GError                **error);
bool            vr_machine_restore_snapshot (VrMachine              *machine,
                                             const char             *dir,
                                             VrRestoreFlags          flags,
                                             GError                **error);
bool            vr_machine_delete_snapshot  (VrMachine              *machine,
                                             const char             *dir,
                                             GError                **error);

/*
 * Input: keys as Linux evdev codes (KEY_*), buttons as BTN_LEFT/RIGHT/MIDDLE/SIDE/EXTRA.
 * Each call is one report. Thread-safe (the UI calls these from its main thread).
 *
 * Routing, decided per event: the keyboard goes to the virtio keyboard (config.input) once
 * the guest's driver has set it up, else to the i8042's keyboard as PC scan codes (set 1, or
 * set 2 when the guest turned translation off), so that firmware and early boot have a
 * keyboard. A key's release goes where its press went. The pointer goes to the virtio
 * tablet (absolute) once its driver is up, else to the i8042's PS/2 mouse (relative):
 * absolute positions then become motion by the difference from the last position, scaled to
 * a nominal 1024x768 screen (the guest's pointer acceleration makes this approximate: a UI
 * should switch to relative mode, see vr_machine_input_get_routing()). Relative motion
 * always goes to the PS/2 mouse, the only relative device. Buttons and the wheel follow
 * the pointer's routing. Events for a PS/2 device the guest has not enabled are dropped.
 */
void            vr_machine_input_key        (VrMachine              *machine,
                                             unsigned                code,
                                             bool                    pressed);
/* Absolute pointer position, 0..VR_INPUT_ABS_MAX on each axis. */
#define VR_INPUT_ABS_MAX 32767
void            vr_machine_input_abs        (VrMachine              *machine,
                                             unsigned                x,
                                             unsigned                y);
/* Relative pointer motion in pixels: @dx right, @dy down. */
void            vr_machine_input_rel        (VrMachine              *machine,
                                             int                     dx,
                                             int                     dy);
void            vr_machine_input_button     (VrMachine              *machine,
                                             unsigned                code,
                                             bool                    pressed);
/* Wheel clicks: > 0 away from the user. */
void            vr_machine_input_wheel      (VrMachine              *machine,
                                             int                     delta);

typedef enum
{
  VR_INPUT_ROUTE_PS2,     /* the i8042: scan codes, relative PS/2 mouse packets */
  VR_INPUT_ROUTE_VIRTIO,  /* the virtio keyboard / the virtio tablet (absolute) */
} VrInputRoute;

typedef struct
{
  VrInputRoute     keyboard;
  VrInputRoute     pointer;
  bool             pointer_absolute;  /* pointer == VR_INPUT_ROUTE_VIRTIO: send positions */
} VrInputRouting;

/* Where input goes now. It changes when the guest's virtio-input drivers start or stop (a
 * reset, a reboot): ask again before choosing absolute or relative pointer mode. */
void            vr_machine_input_get_routing (VrMachine             *machine,
                                              VrInputRouting        *routing);
/*
 * The CD-ROM drive (config.cdrom or cdrom_drive). Puts @path (an ISO image, opened read-only)
 * in the drive, replacing what is there; NULL ejects. The guest sees a media change (a UNIT
 * ATTENTION) as with a real drive. Fails with VR_ERROR_INVALID_CONFIG when the machine has
 * no drive, and with VR_ERROR_IO when @path cannot be opened (the old medium stays).
 * Any thread, any state.
 */
bool            vr_machine_change_cdrom     (VrMachine              *machine,
                                             const char             *path,
                                             GError                **error);
/* The ISO image in the drive now (a copy; g_free it), or NULL when empty or no drive. The
 * guest may have ejected it itself (START STOP UNIT). */
char           *vr_machine_get_cdrom        (VrMachine              *machine);

/* The virtio console's pty path with console VR_SERIAL_PTY, else NULL. */
const char     *vr_machine_get_console_pty  (VrMachine              *machine);

/* The machine's screen, or NULL without a display device (config.display NONE). Owned by
 * the machine: valid until vr_machine_free(). */
VrDisplay      *vr_machine_get_display      (VrMachine              *machine);

/* The pty's path with VR_SERIAL_PTY, else NULL. */
const char     *vr_machine_get_serial_pty   (VrMachine              *machine);
const VrMachineConfig *vr_machine_get_config (VrMachine             *machine);

/* For the app's performance page. The CPU time (user + system) each vCPU thread has used,
 * in nanoseconds, into up to @n entries of @times_ns; returns the number of vCPUs (0 while no
 * VM exists, or when a lifecycle transition is in progress: try again later). The counts
 * start from 0 whenever the VM is re-created (start, reset). Any thread. */
unsigned        vr_machine_get_vcpu_times   (VrMachine              *machine,
                                             uint64_t               *times_ns,
                                             unsigned                n);
/* Guest RAM the host has allocated so far (pages the guest has touched), in bytes. */
uint64_t        vr_machine_get_memory_used  (VrMachine              *machine);

/* Parses "512M", "2G", "1048576" (bytes; K/M/G/T suffixes are binary). */
bool            vr_parse_size               (const char             *text,
                                             uint64_t               *out,
                                             GError                **error);

const char     *vr_machine_state_to_string  (VrMachineState          state);
const char     *vr_stop_reason_to_string    (VrStopReason            reason);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrMachine, vr_machine_free)

G_END_DECLS
