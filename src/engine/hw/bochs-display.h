/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * A bochs-display-compatible PCI display card (QEMU's `-device bochs-display`): 1234:1111,
 * class 0x0380, revision 2.
 *
 *   BAR0  the framebuffer, VR_BOCHS_FB_SIZE bytes, prefetchable: a memfd of its own, mapped
 *         into the VM as its own KVM memory slot with dirty logging wherever the BAR is
 *         decoded (guest accesses never exit); damage comes from KVM_GET_DIRTY_LOG
 *   BAR2  4 KiB of registers: EDID at 0x000 (128 bytes, 0x400 bytes of window), the VBE
 *         "dispi" registers at 0x500 (16-bit, index * 2), QEMU's extended registers at 0x600
 *         (0x600 size of the block, 0x604 framebuffer byte order)
 *
 * Both BARs start assigned and decoded at @fb_addr and @mmio_addr (as firmware would leave
 * them), so boot code can tell a kernel where the framebuffer is.
 */

#include "hw.h"
#include "pci.h"
#include "../vr-display-private.h"

G_BEGIN_DECLS

#define VR_BOCHS_FB_SIZE      (16u << 20)
#define VR_BOCHS_MMIO_SIZE    0x1000u

#define VR_VBE_DISPI_INDEX_ID           0x0
#define VR_VBE_DISPI_INDEX_XRES         0x1
#define VR_VBE_DISPI_INDEX_YRES         0x2
#define VR_VBE_DISPI_INDEX_BPP          0x3
#define VR_VBE_DISPI_INDEX_ENABLE       0x4
#define VR_VBE_DISPI_INDEX_BANK         0x5
#define VR_VBE_DISPI_INDEX_VIRT_WIDTH   0x6
#define VR_VBE_DISPI_INDEX_VIRT_HEIGHT  0x7
#define VR_VBE_DISPI_INDEX_X_OFFSET     0x8
#define VR_VBE_DISPI_INDEX_Y_OFFSET     0x9
#define VR_VBE_DISPI_INDEX_VIDEO_MEMORY_64K 0xa
#define VR_VBE_DISPI_ID5                0xb0c5
#define VR_VBE_DISPI_ENABLED            0x01
#define VR_VBE_DISPI_GETCAPS            0x02
#define VR_VBE_DISPI_LFB_ENABLED        0x40

VrDevice *vr_bochs_display_new           (VrDevice   *pci_host,
                                          VrMemory   *memory,
                                          VrDisplay  *display,
                                          VrMachine  *machine,
                                          unsigned    slot,
                                          uint64_t    fb_addr,
                                          uint64_t    mmio_addr,
                                          GBytes     *rom,
                                          GError    **error);
/* Makes every reset turn on @width x @height x 32 (what a direct Linux boot's screen_info
 * promises the kernel); 0 x 0: resets leave the display off, as on real hardware. */
void      vr_bochs_display_set_boot_mode (VrDevice   *dev,
                                          uint32_t    width,
                                          uint32_t    height);

G_END_DECLS
