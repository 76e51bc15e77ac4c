/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "disk/vr-disk.h"
#include "vr-machine.h"

G_BEGIN_DECLS

/*
 * A machine's settings as stored in its machine.conf (a GKeyFile), with no GTK.
 *
 *   [Vireo]      Version (the format, VIREO_MACHINE_CONFIG_VERSION)
 *   [General]    Name, Uuid, Created (ISO 8601), Source (what it was made from, for the
 *                list: "Debian 12 installer", "Linux kernel"), Notes
 *   [Boot]       Kind = kernel|disk|cdrom, Kernel, Initrd, Cmdline, Firmware, BootOrder
 *   [Hardware]   Memory (MiB), Cpus, Display = std|virtio|none, Input, Rng, SerialLog
 *   [Disk N]     Path (relative to the machine's folder when inside it), Format, ReadOnly,
 *                Media = disk|cdrom, Ejected (cdrom: the drive is empty), Serial
 *
 * Booting: Kind=kernel loads Kernel (+ Initrd, Cmdline) directly. Kind=disk and Kind=cdrom
 * boot through the PC firmware (Firmware, or SeaBIOS where Vireo was built to find it), in
 * the order BootOrder gives ("cdrom,disk", "disk,cdrom", "disk", "cdrom"); without one,
 * Kind=cdrom tries the CD/DVD drive, then the disks, and Kind=disk the disks, then the
 * drive. The machine has one CD/DVD drive: the one disk with Media=cdrom (an ISO image,
 * used where it is, never copied); Ejected=true keeps its Path (the last image) but leaves
 * the drive empty. Every other disk is a virtio-blk disk.
 *   [Network N]  Kind = user|tap|none, Tap, Mac, HostForwards (a list of QEMU hostfwd rules)
 *
 * Keys and groups this version does not know are kept and written back unchanged, so a
 * setting added by a newer Vireo of the same format survives an edit here. A file of an
 * older format is migrated when loaded; one of a newer format is refused
 * (VIREO_MACHINE_CONFIG_ERROR_NEWER) and must never be written over.
 *
 * The struct is reference counted; its fields are public: the wizard and the Details page
 * edit them directly, then call vireo_machine_config_validate().
 */

#define VIREO_MACHINE_CONFIG_VERSION 1
#define VIREO_MACHINE_CONFIG_FILE    "machine.conf"

#define VIREO_MACHINE_CONFIG_ERROR (vireo_machine_config_error_quark ())
GQuark vireo_machine_config_error_quark (void);

typedef enum
{
  VIREO_MACHINE_CONFIG_ERROR_PARSE,    /* not a key file, or truncated */
  VIREO_MACHINE_CONFIG_ERROR_NEWER,    /* written by a newer Vireo: refused, left alone */
  VIREO_MACHINE_CONFIG_ERROR_MISSING,  /* a required group or key is missing */
  VIREO_MACHINE_CONFIG_ERROR_INVALID,  /* a value out of range or malformed */
  VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND /* a file the machine needs does not exist */
} VireoMachineConfigError;

typedef enum
{
  VIREO_BOOT_KERNEL,  /* a Linux kernel (bzImage), PVH or Multiboot ELF: Kernel, Initrd… */
  VIREO_BOOT_DISK,    /* firmware from the first bootable disk */
  VIREO_BOOT_CDROM,   /* firmware from the first cdrom, for installers */
} VireoBootKind;

typedef enum
{
  VIREO_DISPLAY_STD,     /* the bochs display (a linear framebuffer) */
  VIREO_DISPLAY_VIRTIO,  /* virtio-gpu, resizable */
  VIREO_DISPLAY_NONE,    /* headless: the serial console only */
} VireoDisplayKind;

typedef enum
{
  VIREO_NET_USER,  /* slirp: no root, NAT, host port forwards */
  VIREO_NET_TAP,   /* an existing tap interface */
  VIREO_NET_NONE,  /* a card without a cable */
} VireoNetKind;

typedef enum
{
  VIREO_DISK_MEDIA_DISK,
  VIREO_DISK_MEDIA_CDROM,
} VireoDiskMedia;

typedef struct
{
  char           *path;         /* as stored: relative to the machine's folder, or absolute */
  VrDiskFormat    format;       /* never guessed when the machine starts */
  gboolean        readonly;
  VireoDiskMedia  media;
  gboolean        ejected;      /* cdrom: the drive is empty; @path is the last image */
  char           *serial;       /* optional */
  /* Not stored: when creating a machine, a new image of this size (bytes) is made at @path
   * (relative to the new machine's folder). */
  guint64         create_size;
  GHashTable     *extra;        /* unknown keys of the group → raw values */
} VireoDiskConfig;

typedef struct
{
  VireoNetKind    kind;
  char           *tap;          /* for VIREO_NET_TAP */
  char           *mac;          /* "52:54:00:xx:xx:xx", or NULL for the engine's default */
  char          **host_forwards; /* user: QEMU hostfwd rules, NULL-terminated, or NULL */
  GHashTable     *extra;
} VireoNicConfig;

typedef struct
{
  /*< private >*/
  gint              ref_count;
  GKeyFile         *extra;        /* unknown groups, and unknown keys of known ones */
  /*< public >*/
  int               loaded_version; /* the format the file had (< VERSION: migrated) */

  /* General */
  char             *name;
  char             *uuid;
  GDateTime        *created;
  char             *source;       /* a description of the OS or what it was made from */
  char             *notes;

  /* Boot */
  VireoBootKind     boot_kind;
  char             *kernel;
  char             *initrd;
  char             *cmdline;
  char             *firmware;     /* NULL: the default (SeaBIOS) */
  char             *boot_order;   /* e.g. "cdrom,disk", or NULL: the kind's default */

  /* Hardware */
  guint64           memory_mib;
  guint             cpus;
  VireoDisplayKind  display;
  gboolean          input;
  gboolean          rng;
  gboolean          serial_log;

  GPtrArray        *disks;        /* VireoDiskConfig * */
  GPtrArray        *nics;         /* VireoNicConfig * */
} VireoMachineConfig;

#define VIREO_TYPE_MACHINE_CONFIG (vireo_machine_config_get_type ())

/* clang-format off */
GType               vireo_machine_config_get_type      (void) G_GNUC_CONST;
/* Defaults: a new uuid, 1024 MiB, 1 vCPU, std display, input, rng, serial log, no disks,
 * one user-networking card. */
VireoMachineConfig *vireo_machine_config_new           (void);
VireoMachineConfig *vireo_machine_config_ref           (VireoMachineConfig  *config);
void                vireo_machine_config_unref         (VireoMachineConfig  *config);
/* A deep copy (extras included) with the same uuid. */
VireoMachineConfig *vireo_machine_config_copy          (VireoMachineConfig  *config);

/* Parses and migrates; does not validate (see below). */
VireoMachineConfig *vireo_machine_config_load_from_data (const char         *data,
                                                         gsize               len,
                                                         GError            **error);
VireoMachineConfig *vireo_machine_config_load          (const char          *path,
                                                         GError            **error);
char               *vireo_machine_config_to_data       (VireoMachineConfig  *config,
                                                         gsize              *len);
/* Atomic (see vireo-atomic-file.h). */
gboolean            vireo_machine_config_save          (VireoMachineConfig  *config,
                                                         const char         *path,
                                                         GError            **error);

/* Names and ranges; with @machine_dir also what is checked when the machine starts: that
 * what it boots from is there (a kernel, a disk, one CD/DVD drive, a valid BootOrder) and
 * that every file it needs exists (the firmware, images; not an ejected one). */
gboolean            vireo_machine_config_validate      (VireoMachineConfig  *config,
                                                         const char         *machine_dir,
                                                         GError            **error);
/* Fills @out (initialised with vr_machine_config_init() by the caller) for the engine:
 * relative paths resolved against @machine_dir, the network cards as --net strings, the
 * serial port on a pty (logged to serial.log when SerialLog is on); for Kind=disk|cdrom the
 * firmware and boot order, the CD/DVD drive as @out->cdrom (the other disks virtio-blk).
 * Fails as validate() does for what it cannot express (a second CD/DVD drive). */
gboolean            vireo_machine_config_to_vr         (VireoMachineConfig  *config,
                                                         const char         *machine_dir,
                                                         VrMachineConfig    *out,
                                                         GError            **error);
/* The CD/DVD drive (the first disk with Media=cdrom), or NULL. */
VireoDiskConfig    *vireo_machine_config_get_cdrom     (VireoMachineConfig  *config);
/* The firmware image the machine boots through (Firmware, or the default SeaBIOS), or NULL
 * for Kind=kernel (g_free it). */
char               *vireo_machine_config_dup_firmware  (VireoMachineConfig  *config);
/* The boot order in effect: BootOrder, or the kind's default ("cdrom,disk"; "disk,cdrom"
 * with a CD/DVD drive, else "disk"); NULL for Kind=kernel. */
const char         *vireo_machine_config_get_boot_order (VireoMachineConfig *config);
/* Parses a BootOrder ("cdrom,disk"…: each of cdrom and disk at most once, case and spaces
 * ignored) into @out (VR_MAX_BOOT_DEVICES entries), VR_BOOT_DEVICE_END-terminated. */
gboolean            vireo_boot_order_parse             (const char          *text,
                                                         VrBootDevice       *out,
                                                         GError            **error);
/* A path from the file resolved against @machine_dir (g_free it). */
char               *vireo_machine_config_resolve_path  (const char          *path,
                                                         const char         *machine_dir);

/* A valid machine name: non-empty after trimming, no '/', no control characters. */
gboolean            vireo_machine_name_is_valid        (const char          *name,
                                                         GError            **error);
/* Host limits the wizard and validation use. */
guint               vireo_host_cpu_count               (void);
guint64             vireo_host_memory_mib              (void);

VireoDiskConfig    *vireo_disk_config_new              (const char          *path,
                                                         VrDiskFormat        format);
VireoDiskConfig    *vireo_disk_config_copy             (const VireoDiskConfig *disk);
void                vireo_disk_config_free             (VireoDiskConfig     *disk);
VireoNicConfig     *vireo_nic_config_new               (VireoNetKind         kind);
VireoNicConfig     *vireo_nic_config_copy              (const VireoNicConfig *nic);
void                vireo_nic_config_free              (VireoNicConfig      *nic);
/* The nic in vireo-run's --net syntax ("user,hostfwd=…,mac=…", "tap:NAME,mac=…"), or NULL
 * for VIREO_NET_NONE. */
char               *vireo_nic_config_to_net_spec       (const VireoNicConfig *nic);

const char         *vireo_boot_kind_to_string          (VireoBootKind        kind);
const char         *vireo_display_kind_to_string       (VireoDisplayKind     kind);
const char         *vireo_net_kind_to_string           (VireoNetKind         kind);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VireoMachineConfig, vireo_machine_config_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VireoDiskConfig, vireo_disk_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (VireoNicConfig, vireo_nic_config_free)

G_END_DECLS
