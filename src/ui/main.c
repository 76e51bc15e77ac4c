/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "vireo-application.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(VireoApplication) app = NULL;
  const char *localedir = g_getenv ("VIREO_LOCALEDIR");

  setlocale (LC_ALL, "");
  /* An uninstalled build (build-aux/run, the UI tests) sets VIREO_LOCALEDIR=<build>/po,
   * where i18n.gettext() leaves <lang>/LC_MESSAGES/vireo.mo. */
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  app = vireo_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
