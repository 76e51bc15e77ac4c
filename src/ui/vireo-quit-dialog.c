/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-quit-dialog"

#include "config.h"

#include "vireo-quit-dialog.h"

#include <glib/gi18n.h>

typedef struct
{
  GtkWindow *parent;     /* weak */
  GPtrArray *machines;   /* the ones still active */
  GtkWidget *wait_dialog;
  guint      timeout_id;
  guint      timeout_s;
  gboolean   finished;
  /* Save State and Quit */
  guint      saving;     /* saves under way */
  GString   *save_errors;
} QuitData;

static void
quit_data_free (QuitData *data)
{
  g_clear_handle_id (&data->timeout_id, g_source_remove);
  g_clear_weak_pointer (&data->parent);
  g_clear_pointer (&data->machines, g_ptr_array_unref);
  if (data->save_errors != NULL)
    g_string_free (data->save_errors, TRUE);
  g_free (data);
}

GPtrArray *
vireo_library_dup_active_machines (VireoLibrary *library)
{
  GPtrArray *active = g_ptr_array_new_with_free_func (g_object_unref);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (library));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(VireoMachine) machine = g_list_model_get_item (G_LIST_MODEL (library), i);

      if (vireo_machine_is_active (machine))
        g_ptr_array_add (active, g_steal_pointer (&machine));
    }
  return active;
}

/* “A”, “A” and “B”, “A”, “B” and 3 others… */
static char *
names_of (GPtrArray *machines)
{
  const char *a = machines->len > 0 ? vireo_machine_get_name (machines->pdata[0]) : "";
  const char *b = machines->len > 1 ? vireo_machine_get_name (machines->pdata[1]) : "";

  if (machines->len <= 1)
    /* Translators: a machine's name */
    return g_strdup_printf (_("“%s”"), a);
  if (machines->len == 2)
    /* Translators: two machines' names */
    return g_strdup_printf (_("“%s” and “%s”"), a, b);
  return g_strdup_printf (ngettext ("“%s”, “%s” and %u other machine",
                                    "“%s”, “%s” and %u other machines", machines->len - 2),
                          a, b, machines->len - 2);
}

static gpointer
ref_copy (gconstpointer src, gpointer data)
{
  return g_object_ref ((gpointer) src);
}

static void
force_off_all (GPtrArray *machines)
{
  g_autoptr(GPtrArray) copy = g_ptr_array_copy (machines, ref_copy, NULL);

  g_ptr_array_set_free_func (copy, g_object_unref);
  for (guint i = 0; i < copy->len; i++)
    vireo_machine_force_off (copy->pdata[i]);
}

static void machine_state_cb (VireoMachine *machine, VireoMachineState state, GTask *task);

static void
finish (GTask *task, gboolean done)
{
  QuitData *data = g_task_get_task_data (task);

  if (data->finished)
    return;
  data->finished = TRUE;
  g_clear_handle_id (&data->timeout_id, g_source_remove);
  for (guint i = 0; i < data->machines->len; i++)
    g_signal_handlers_disconnect_by_func (data->machines->pdata[i], machine_state_cb, task);
  if (data->wait_dialog != NULL)
    {
      GtkWidget *dialog = g_steal_pointer (&data->wait_dialog);

      g_signal_handlers_disconnect_matched (dialog, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, task);
      gtk_window_destroy (GTK_WINDOW (dialog));
    }
  g_task_return_boolean (task, done);
  g_object_unref (task);   /* the reference the waiting held */
}

static void
machine_state_cb (VireoMachine      *machine,
                  VireoMachineState  state,
                  GTask             *task)
{
  QuitData *data = g_task_get_task_data (task);

  if (vireo_machine_is_active (machine))
    return;
  g_signal_handlers_disconnect_by_func (machine, machine_state_cb, task);
  g_ptr_array_remove (data->machines, machine);
  if (data->machines->len == 0)
    finish (task, TRUE);
  else if (data->wait_dialog != NULL)
    {
      g_autofree char *names = names_of (data->machines);
      g_autofree char *body = g_strdup_printf (_("Waiting for %s to turn off…"), names);

      adw_message_dialog_set_body (ADW_MESSAGE_DIALOG (data->wait_dialog), body);
    }
}

static gboolean
wait_timeout_cb (gpointer user_data)
{
  GTask *task = user_data;
  QuitData *data = g_task_get_task_data (task);
  g_autofree char *names = names_of (data->machines);
  g_autofree char *body = NULL;

  data->timeout_id = 0;
  body = g_strdup_printf (ngettext ("%s did not turn off within %u second. The system in it "
                                    "may be busy, or may not listen to the power button. Force "
                                    "it off to quit now: work not saved inside it is lost.",
                                    "%s did not turn off within %u seconds. The system in it "
                                    "may be busy, or may not listen to the power button. Force "
                                    "it off to quit now: work not saved inside it is lost.",
                                    data->timeout_s),
                          names, data->timeout_s);
  adw_message_dialog_set_heading (ADW_MESSAGE_DIALOG (data->wait_dialog),
                                  _("Still Running"));
  adw_message_dialog_set_body (ADW_MESSAGE_DIALOG (data->wait_dialog), body);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (data->wait_dialog),
                                              "force-off", ADW_RESPONSE_DESTRUCTIVE);
  return G_SOURCE_REMOVE;
}

static void
wait_response_cb (AdwMessageDialog *dialog,
                  const char       *response,
                  GTask            *task)
{
  g_autoptr(GTask) keep = g_object_ref (task);  /* finish() may drop the last other one */
  QuitData *data = g_task_get_task_data (task);

  data->wait_dialog = NULL;  /* it closes itself */
  if (data->finished)
    return;
  if (g_strcmp0 (response, "force-off") == 0)
    {
      force_off_all (data->machines);
      /* force_off stops at once (finish() ran), except for a machine still starting. */
      if (data->finished || data->machines->len == 0)
        return;
    }
  finish (task, FALSE);
}

static guint
quit_timeout (void)
{
  const char *env = g_getenv ("VIREO_QUIT_TIMEOUT");
  guint64 v;

  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 1, 3600, &v, NULL))
    return (guint) v;
  return VIREO_QUIT_TIMEOUT_S;
}

static void
shut_down_all (GTask *task)
{
  QuitData *data = g_task_get_task_data (task);
  g_autoptr(GPtrArray) copy = g_ptr_array_copy (data->machines, ref_copy, NULL);
  g_autofree char *names = NULL;
  g_autofree char *body = NULL;
  AdwMessageDialog *dialog;

  g_ptr_array_set_free_func (copy, g_object_unref);
  g_object_ref (task);   /* until finish() */
  for (guint i = 0; i < copy->len; i++)
    g_signal_connect (copy->pdata[i], "state-changed", G_CALLBACK (machine_state_cb), task);

  names = names_of (data->machines);
  body = g_strdup_printf (_("Waiting for %s to turn off…"), names);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (data->parent, _("Shutting Down"), body));
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Keep Running"),
                                    "force-off", _("_Force Off"),
                                    NULL);
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect (dialog, "response", G_CALLBACK (wait_response_cb), task);
  data->wait_dialog = GTK_WIDGET (dialog);
  data->timeout_s = quit_timeout ();
  data->timeout_id = g_timeout_add_seconds (data->timeout_s, wait_timeout_cb, task);
  gtk_window_present (GTK_WINDOW (dialog));

  for (guint i = 0; i < copy->len; i++)
    {
      VireoMachine *machine = copy->pdata[i];
      g_autoptr(GError) error = NULL;

      switch (vireo_machine_get_state (machine))
        {
        case VIREO_MACHINE_STATE_PAUSED:
          /* A paused system cannot hear the button. */
          if (!vireo_machine_resume (machine, &error) || !vireo_machine_shutdown (machine, &error))
            vireo_machine_force_off (machine);
          break;
        case VIREO_MACHINE_STATE_RUNNING:
        case VIREO_MACHINE_STATE_STOPPING:
          if (!vireo_machine_shutdown (machine, &error))
            vireo_machine_force_off (machine);
          break;
        case VIREO_MACHINE_STATE_STARTING:
        default:
          vireo_machine_force_off (machine);
          break;
        }
    }
}

/* ---- Save State and Quit ---------------------------------------------------------------- */

static void
save_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* the reference save_all() took for this machine */
  QuitData *data = g_task_get_task_data (task);
  VireoMachine *machine = VIREO_MACHINE (object);
  g_autoptr(GError) error = NULL;

  if (!vireo_machine_save_state_finish (machine, result, &error))
    {
      if (data->save_errors->len > 0)
        g_string_append (data->save_errors, "\n\n");
      g_string_append (data->save_errors, error->message);
      g_message ("%s", error->message);
    }

  if (--data->saving > 0)
    return;

  if (data->wait_dialog != NULL)
    gtk_window_destroy (GTK_WINDOW (g_steal_pointer (&data->wait_dialog)));
  if (data->save_errors->len > 0)
    {
      AdwMessageDialog *dialog;
      g_autofree char *body = NULL;

      /* Quitting stops here: what could not be saved still runs. */
      body = g_strdup_printf ("%s\n\n%s", data->save_errors->str,
                              _("The machines whose state was saved are off; the others still "
                                "run. Vireo stays open: shut them down or try again."));
      dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (data->parent,
                                                           _("The State Could Not Be Saved"),
                                                           body));
      adw_message_dialog_add_responses (dialog, "close", _("_Close"), NULL);
      adw_message_dialog_set_close_response (dialog, "close");
      gtk_window_present (GTK_WINDOW (dialog));
      g_task_return_boolean (task, FALSE);
    }
  else
    g_task_return_boolean (task, TRUE);
}

/* A live snapshot of every running machine into its saved-state folder; each stops once
 * saved. Finishes TRUE when all are saved, FALSE (after saying why) when one could not be. */
static void
save_all (GTask *task)
{
  QuitData *data = g_task_get_task_data (task);
  g_autoptr(GPtrArray) copy = g_ptr_array_copy (data->machines, ref_copy, NULL);
  g_autofree char *names = NULL;
  g_autofree char *body = NULL;
  AdwMessageDialog *dialog;
  GtkWidget *spinner;

  g_ptr_array_set_free_func (copy, g_object_unref);
  data->save_errors = g_string_new (NULL);

  names = names_of (data->machines);
  body = g_strdup_printf (_("Saving the state of %s…"), names);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (data->parent, _("Saving State"), body));
  spinner = gtk_spinner_new ();
  gtk_spinner_start (GTK_SPINNER (spinner));
  gtk_widget_set_size_request (spinner, 32, 32);
  adw_message_dialog_set_extra_child (dialog, spinner);
  data->wait_dialog = GTK_WIDGET (dialog);
  gtk_window_present (GTK_WINDOW (dialog));

  data->saving = 0;
  for (guint i = 0; i < copy->len; i++)
    {
      VireoMachine *machine = copy->pdata[i];

      if (vireo_machine_get_state (machine) == VIREO_MACHINE_STATE_STARTING)
        {
          /* Nothing to save yet. */
          vireo_machine_force_off (machine);
          continue;
        }
      /* Each save holds the task; the last one to finish answers (in a later main loop
       * iteration, even when it fails at once). */
      data->saving++;
      vireo_machine_save_state_async (machine, NULL, save_done_cb, g_object_ref (task));
    }
  if (data->saving == 0)
    {
      gtk_window_destroy (GTK_WINDOW (g_steal_pointer (&data->wait_dialog)));
      g_task_return_boolean (task, TRUE);
    }
}

static void
ask_response_cb (AdwMessageDialog *dialog,
                 const char       *response,
                 gpointer          user_data)
{
  g_autoptr(GTask) task = user_data;
  QuitData *data = g_task_get_task_data (task);

  /* Some may have stopped while the question was on screen. */
  for (guint i = data->machines->len; i > 0; i--)
    if (!vireo_machine_is_active (data->machines->pdata[i - 1]))
      g_ptr_array_remove_index (data->machines, i - 1);

  if (g_strcmp0 (response, "save") == 0)
    {
      if (data->machines->len == 0)
        g_task_return_boolean (task, TRUE);
      else
        save_all (task);
    }
  else if (g_strcmp0 (response, "shutdown") == 0)
    {
      if (data->machines->len == 0)
        g_task_return_boolean (task, TRUE);
      else
        shut_down_all (task);
    }
  else if (g_strcmp0 (response, "force-off") == 0)
    {
      force_off_all (data->machines);
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_boolean (task, FALSE);
}

void
vireo_quit_dialog_run_async (GtkWindow           *parent,
                             VireoLibrary        *library,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *names = NULL;
  g_autofree char *body = NULL;
  QuitData *data;
  AdwMessageDialog *dialog;
  guint n;

  g_return_if_fail (parent == NULL || GTK_IS_WINDOW (parent));
  g_return_if_fail (VIREO_IS_LIBRARY (library));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, vireo_quit_dialog_run_async);
  data = g_new0 (QuitData, 1);
  g_set_weak_pointer (&data->parent, parent);
  data->machines = vireo_library_dup_active_machines (library);
  g_task_set_task_data (task, data, (GDestroyNotify) quit_data_free);

  n = data->machines->len;
  if (n == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  names = names_of (data->machines);
  body = g_strdup_printf (ngettext ("%s is still running. Save its state to resume it exactly "
                                    "where it is the next time you start it. Or shut it down: "
                                    "that presses its power button, so the system inside can "
                                    "close its programs and turn off.",
                                    "%s are still running. Save their state to resume them "
                                    "exactly where they are the next time you start them. Or "
                                    "shut them down: that presses their power buttons, so the "
                                    "systems inside can close their programs and turn off.", n),
                          names);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (parent,
                                                       ngettext ("Quit With a Running Machine?",
                                                                 "Quit With Running Machines?",
                                                                 n),
                                                       body));
  adw_message_dialog_add_responses (dialog,
                                    "cancel", _("_Cancel"),
                                    "shutdown", _("Shut _Down"),
                                    "save", _("_Save State and Quit"),
                                    NULL);
  adw_message_dialog_set_response_appearance (dialog, "save", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "save");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect (dialog, "response", G_CALLBACK (ask_response_cb), g_steal_pointer (&task));
  gtk_window_present (GTK_WINDOW (dialog));
}

gboolean
vireo_quit_dialog_run_finish (GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
