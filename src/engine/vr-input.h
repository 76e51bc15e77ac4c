/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The machine's input router: host keyboard and pointer events to the virtio keyboard and
 * tablet, or to the i8042 (see vr_machine_input_key() in vr-machine.h for the rules).
 */

#include "vr-device.h"
#include "vr-machine.h"

G_BEGIN_DECLS

typedef struct _VrInput VrInput;

/* clang-format off */
/* @i8042 is required; @keyboard and @tablet (virtio-input) may be NULL. None is owned. */
VrInput *vr_input_new            (VrDevice       *i8042,
                                  VrDevice       *keyboard,
                                  VrDevice       *tablet);
void     vr_input_free           (VrInput        *input);

void     vr_input_key            (VrInput        *input,
                                  unsigned        code,
                                  bool            pressed);
void     vr_input_abs            (VrInput        *input,
                                  unsigned        x,
                                  unsigned        y);
void     vr_input_rel            (VrInput        *input,
                                  int             dx,
                                  int             dy);
void     vr_input_button         (VrInput        *input,
                                  unsigned        code,
                                  bool            pressed);
void     vr_input_wheel          (VrInput        *input,
                                  int             delta);
void     vr_input_get_routing    (VrInput        *input,
                                  VrInputRouting *routing);

/* The routing rule itself: which device is present and set up by the guest's driver. */
VrInputRouting vr_input_choose_routing (bool      keyboard_active,
                                        bool      tablet_active);
/* clang-format on */

/* The nominal screen that absolute positions are scaled to when they go to the PS/2 mouse. */
#define VR_INPUT_PS2_SCREEN_WIDTH  1024
#define VR_INPUT_PS2_SCREEN_HEIGHT 768

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrInput, vr_input_free)

G_END_DECLS
