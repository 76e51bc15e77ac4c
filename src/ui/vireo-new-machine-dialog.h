/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * The New Machine wizard: five pages (source, memory and processors, storage, network,
 * name and summary) in one window. Every page checks what the user types as they type it
 * and says next to the field what is wrong; Next stays insensitive until the page is
 * valid. Slow checks (reading a kernel's header, probing a disk image) and copying an
 * image into the machine's folder run in GTask threads.
 *
 * What each source makes: an installer image, a machine that starts from its CD/DVD drive
 * (Kind=cdrom, BootOrder=cdrom,disk) with the image in it, used where it is (read-only,
 * never copied), and a new sparse qcow2 disk to install to; an existing disk image, one
 * that the firmware boots from that disk (Kind=disk); a kernel, one that boots it directly.
 *
 * Finishing creates the machine through vireo_library_create_machine_async(), emits
 * "machine-created" (machine, customize) and, unless "Customize before start" was chosen,
 * starts it (a start that fails is reported in a message dialog over the parent). When
 * the parent window has an action "win.show-machine" taking "(sb)", it is activated with
 * (uuid, customize) so that the window selects the new machine and, when customize is
 * TRUE, opens its Details.
 *
 * Actions (for buttons, shortcuts and tests): wizard.back, wizard.next, wizard.create,
 * wizard.cancel. Widgets a test drives carry a GtkWidget:name ("iso-entry", "name-entry" …,
 * see the .ui file).
 */

#define VIREO_TYPE_NEW_MACHINE_DIALOG (vireo_new_machine_dialog_get_type ())
G_DECLARE_FINAL_TYPE (VireoNewMachineDialog, vireo_new_machine_dialog, VIREO, NEW_MACHINE_DIALOG,
                      AdwWindow)

/* clang-format off */
/* Opens the wizard, modal over @parent (may be NULL), for a machine in @library. */
void                   vireo_new_machine_dialog_present       (GtkWindow             *parent,
                                                               VireoLibrary          *library);
/* The same, without presenting it: for callers that connect to its signals, and tests. */
VireoNewMachineDialog *vireo_new_machine_dialog_new           (GtkWindow             *parent,
                                                               VireoLibrary          *library);
VireoLibrary          *vireo_new_machine_dialog_get_library   (VireoNewMachineDialog *self);
/* The visible page: "source", "hardware", "storage", "network", "summary", "progress". */
const char            *vireo_new_machine_dialog_get_page      (VireoNewMachineDialog *self);
/* Whether a file check or a copy is still running (tests wait for it to end). */
gboolean               vireo_new_machine_dialog_is_busy       (VireoNewMachineDialog *self);
/* For tests: pretend the library's folder has @bytes free (G_MAXUINT64: ask the system). */
void                   vireo_new_machine_dialog_set_free_space (VireoNewMachineDialog *self,
                                                                guint64                bytes);
/* clang-format on */

G_END_DECLS
