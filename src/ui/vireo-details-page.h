/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "vireo-library.h"

G_BEGIN_DECLS

/*
 * The Details page: every setting of a machine, saved as soon as it changes (entries when
 * their apply button or Enter is pressed). Settings the engine reads only at start are
 * insensitive while the machine runs, with a tooltip that says so. Clone and Delete.
 */

#define VIREO_TYPE_DETAILS_PAGE (vireo_details_page_get_type ())
G_DECLARE_FINAL_TYPE (VireoDetailsPage, vireo_details_page, VIREO, DETAILS_PAGE, GtkWidget)

/* clang-format off */
GtkWidget    *vireo_details_page_new           (void);
VireoMachine *vireo_details_page_get_machine   (VireoDetailsPage *self);
void          vireo_details_page_set_machine   (VireoDetailsPage *self,
                                                VireoMachine     *machine);
void          vireo_details_page_set_library   (VireoDetailsPage *self,
                                                VireoLibrary     *library);
/* clang-format on */

G_END_DECLS
