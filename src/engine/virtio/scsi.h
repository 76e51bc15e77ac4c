/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * virtio-scsi with one CD/DVD-ROM drive (target 0, LUN 0); see scsi.c. The machine creates
 * it like the other virtio devices and owns it (vr_device_destroy()).
 */

#include "virtio.h"

G_BEGIN_DECLS

/* The medium changed other than by vr_virtio_scsi_change_medium(): the guest ejected it
 * (START STOP UNIT), or a snapshot was loaded with another medium than the drive had (or
 * its image was gone: the drive is empty). Ask vr_virtio_scsi_get_medium() what is in the
 * drive now. Called on the device's worker thread or the thread loading a snapshot, with no
 * lock of the device held. */
typedef void (*VrVirtioScsiMediumFunc) (gpointer data);

/* clang-format off */
/* @iso_path: the image in the drive at power-on (opened read-only), NULL for an empty drive.
 * Fails (VR_ERROR_IO) when it cannot be opened. */
VrDevice *vr_virtio_scsi_new           (const VrVirtioHost      *host,
                                        const char              *iso_path,
                                        VrVirtioScsiMediumFunc   medium_changed,
                                        gpointer                 data,
                                        GError                 **error);
/* Puts @path in the drive (NULL ejects); the guest sees a media change. On failure
 * (VR_ERROR_IO) the old medium stays. Any thread. */
bool      vr_virtio_scsi_change_medium (VrDevice                *dev,
                                        const char              *path,
                                        GError                 **error);
/* The image in the drive (a copy; g_free it), or NULL when empty. Any thread. */
char     *vr_virtio_scsi_get_medium    (VrDevice                *dev);
/* clang-format on */

G_END_DECLS
