/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Helpers for the devices' snapshot state (the save()/load() ops of vr-device.h).
 *
 * Every device's state is a GVariant tuple whose first member is its format version (`q`);
 * the tuple's type is fixed for a version. load() checks the whole type first
 * (vr_state_check()), then every value, and fails with VR_ERROR_BAD_SNAPSHOT and a message
 * that names the device and the field (vr_state_fail()). The saved state comes from a file:
 * GVariant reads hostile serialised data safely, and everything it yields is checked here
 * before use.
 */

#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>

#include "../vr-machine.h"

G_BEGIN_DECLS

/* Always returns false, after setting @error to "@device: <message>". */
G_GNUC_PRINTF (3, 4)
static inline bool
vr_state_fail (GError    **error,
               const char *device,
               const char *format,
               ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT, "%s: %s", device, msg);
  return false;
}

/* Is @state of @format's type (a tuple starting with the version) and of @version? @format
 * may be the g_variant_new()/g_variant_get() format string of the state ('@' marks are
 * dropped). */
static inline bool
vr_state_check (GVariant   *state,
                const char *device,
                const char *format,
                guint16     version,
                GError    **error)
{
  g_autofree char *type = g_strdup (format);
  guint16 saved;
  char *to = type;

  for (const char *from = format; *from; from++)
    if (*from != '@')
      *to++ = *from;
  *to = '\0';

  if (state == NULL)
    return vr_state_fail (error, device, "the snapshot has no state for this device");
  /* A tuple starting with the version, whatever the rest: say which version it is. */
  if (g_variant_is_of_type (state, G_VARIANT_TYPE_TUPLE) && g_variant_n_children (state) > 0)
    {
      g_autoptr (GVariant) first = g_variant_get_child_value (state, 0);

      if (g_variant_is_of_type (first, G_VARIANT_TYPE_UINT16)
          && (saved = g_variant_get_uint16 (first)) != version)
        return vr_state_fail (error, device,
                              "state version %u, this version of Vireo reads version %u",
                              saved, version);
    }
  if (!g_variant_is_of_type (state, G_VARIANT_TYPE (type)))
    return vr_state_fail (error, device, "the state has type %s, expected %s",
                          g_variant_get_type_string (state), type);
  return true;
}

G_END_DECLS
