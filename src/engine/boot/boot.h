/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vr-memory.h"

G_BEGIN_DECLS

/*
 * Kernel loading. vr_boot_image_new() reads and validates the kernel (and initrd) once, when
 * the machine is created, so a bad file is reported before anything runs; vr_boot_image_load()
 * writes it into guest RAM on every (re)boot and says how the boot vCPU must start.
 *
 * Formats, tried in this order: a Linux bzImage (64-bit boot protocol, 2.12+), an ELF with a
 * PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), a Multiboot v1 kernel (ELF or a.out kludge).
 * Every offset and size read from an image is checked against the file and against RAM.
 */

typedef enum
{
  VR_BOOT_LINUX,
  VR_BOOT_PVH,
  VR_BOOT_MULTIBOOT,
} VrBootProtocol;

typedef enum
{
  VR_CPU_MODE_PROTECTED32,  /* flat 32-bit protected mode, paging off */
  VR_CPU_MODE_LONG64,       /* 64-bit mode on identity page tables at cr3 */
} VrCpuMode;

/* The boot vCPU's initial state. The loader also writes a GDT at VR_BOOT_GDT_ADDR whose
 * selector 0x10 is the code and 0x18 the data segment for @mode. */
typedef struct
{
  VrCpuMode mode;
  uint64_t  rip;
  uint64_t  rax;
  uint64_t  rbx;
  uint64_t  rsi;
  uint64_t  cr3;
} VrBootCpuState;

typedef struct _VrBootImage VrBootImage;

/* A linear framebuffer already switched on (XRGB8888), for kernels that take one from the
 * boot loader: Linux's screen_info (VIDEO_TYPE_VLFB, read by simplefb/efifb). */
typedef struct
{
  uint64_t addr;
  uint64_t size;     /* of the whole aperture */
  uint32_t width;
  uint32_t height;
  uint32_t stride;
} VrBootFramebuffer;

VrBootImage    *vr_boot_image_new          (const char           *kernel_path,
                                            const char           *initrd_path,
                                            uint64_t              ram_size,
                                            GError              **error);
void            vr_boot_image_free         (VrBootImage          *image);
VrBootProtocol  vr_boot_image_get_protocol (VrBootImage          *image);
const char     *vr_boot_protocol_to_string (VrBootProtocol        protocol);
/* Hands @fb (copied; NULL: none) to the kernel at every later load. */
void            vr_boot_image_set_framebuffer (VrBootImage             *image,
                                               const VrBootFramebuffer *fb);
bool            vr_boot_image_load         (VrBootImage          *image,
                                            VrMemory             *memory,
                                            const char           *cmdline,
                                            uint64_t              rsdp_addr,
                                            VrBootCpuState       *cpu,
                                            GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrBootImage, vr_boot_image_free)

/* Internal to boot/: shared by the loaders. */
typedef struct
{
  const uint8_t *data;
  gsize          size;
  const char    *path;  /* for messages */
  int            fd;    /* the same file, for bulk copies (-1: copy from @data) */
} VrBootFile;

/* Copies [offset, offset + len) of @file (already checked to lie inside it) to guest RAM at
 * @dst with pread(), so the image's pages never become resident in the VMM. */
void vr_boot_file_copy   (const VrBootFile  *file,
                          uint64_t           offset,
                          void              *dst,
                          uint64_t           len);

bool vr_elf_check         (const VrBootFile  *file,
                           uint64_t           ram_low,
                           uint64_t          *entry,
                           uint64_t          *end,
                           GError           **error);
bool vr_elf_load          (const VrBootFile  *file,
                           VrMemory          *memory,
                           GError           **error);
bool vr_elf_find_note     (const VrBootFile  *file,
                           const char        *name,
                           uint32_t           type,
                           const uint8_t    **desc,
                           uint32_t          *desc_size);
bool vr_elf_is_elf        (const VrBootFile  *file);

/* Per-protocol: probe (is this my format?), validate, load. */
bool vr_linux_probe       (const VrBootFile  *file);
bool vr_linux_check       (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           uint64_t           ram_low,
                           GError           **error);
bool vr_linux_load        (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           VrMemory          *memory,
                           const char        *cmdline,
                           uint64_t           rsdp_addr,
                           const VrBootFramebuffer *fb,
                           VrBootCpuState    *cpu,
                           GError           **error);
bool vr_pvh_probe         (const VrBootFile  *file);
bool vr_pvh_check         (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           uint64_t           ram_low,
                           GError           **error);
bool vr_pvh_load          (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           VrMemory          *memory,
                           const char        *cmdline,
                           uint64_t           rsdp_addr,
                           VrBootCpuState    *cpu,
                           GError           **error);
bool vr_multiboot_probe   (const VrBootFile  *file);
bool vr_multiboot_check   (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           uint64_t           ram_low,
                           GError           **error);
bool vr_multiboot_load    (const VrBootFile  *file,
                           const VrBootFile  *initrd,
                           VrMemory          *memory,
                           const char        *cmdline,
                           uint64_t           rsdp_addr,
                           VrBootCpuState    *cpu,
                           GError           **error);

/* Helpers shared by the loaders (elf.c). */
void     vr_boot_write_gdt       (VrMemory *memory,
                                  VrCpuMode mode);
bool     vr_boot_write_cmdline   (VrMemory    *memory,
                                  const char  *cmdline,
                                  gsize        max_len,
                                  GError     **error);
/* Where an initrd (or module) of @size goes: page-aligned, as high as possible below @limit
 * and above @floor. Returns false when it does not fit. */
bool     vr_boot_place_initrd    (uint64_t  size,
                                  uint64_t  floor,
                                  uint64_t  limit,
                                  uint64_t *addr);

/* True when there is no initrd or it fits between @floor and @limit; else a clear error. */
bool     vr_boot_check_initrd    (const VrBootFile  *initrd,
                                  uint64_t           floor,
                                  uint64_t           limit,
                                  GError           **error);

G_END_DECLS
