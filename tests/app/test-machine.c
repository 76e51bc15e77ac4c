/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * VireoMachine with real guests (tests/guests: hello, lifecycle) when /dev/kvm is usable:
 * start in a thread, the serial pty and serial.log (kept across runs), pause/resume, CPU
 * and memory use, the ACPI power button, force off, and errors a user would see.
 *
 * Environment: VIREO_GUEST_DIR, the built guests (set by meson).
 */

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "vireo-library.h"

typedef struct
{
  VireoLibrary *library;
  GArray       *states;  /* VireoMachineState, as state-changed reported them */
  GPtrArray    *errors;
} Fixture;

static char *
guest_path (const char *name)
{
  const char *dir = g_getenv ("VIREO_GUEST_DIR");

  return g_build_filename (dir ? dir : ".", name, NULL);
}

static gboolean
kvm_usable (void)
{
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    return FALSE;
  close (fd);
  return TRUE;
}

static gboolean
skip_without_guests (void)
{
  g_autofree char *hello = guest_path ("hello.elf");

  if (!kvm_usable ())
    {
      g_test_skip ("/dev/kvm is not usable");
      return TRUE;
    }
  if (!g_file_test (hello, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("the test guests are not built (VIREO_GUEST_DIR)");
      return TRUE;
    }
  return FALSE;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  f->states = g_array_new (FALSE, FALSE, sizeof (VireoMachineState));
  f->errors = g_ptr_array_new_with_free_func (g_free);
  f->library = vireo_library_new (NULL);
  vireo_library_load_async (f->library, NULL, store_result, &res);
  g_assert_true (vireo_library_load_finish (f->library, wait_result (&res), &error));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->library);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_array_unref (f->states);
  g_ptr_array_unref (f->errors);
}

static void
on_state_changed (VireoMachine *m, VireoMachineState state, Fixture *f)
{
  g_array_append_val (f->states, state);
}

static void
on_error (VireoMachine *m, const GError *error, Fixture *f)
{
  g_ptr_array_add (f->errors, g_strdup (error->message));
}

static VireoMachine *
make_machine (Fixture *f, const char *name, const char *guest, const char *cmdline, guint cpus)
{
  g_autoptr(VireoMachineConfig) c = vireo_machine_config_new ();
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  VireoMachine *m;

  c->name = g_strdup (name);
  c->kernel = guest_path (guest);
  c->cmdline = g_strdup (cmdline);
  c->memory_mib = 64;
  c->cpus = MIN (cpus, vireo_host_cpu_count ());
  c->display = VIREO_DISPLAY_NONE;
  c->input = FALSE;
  c->rng = FALSE;
  g_ptr_array_set_size (c->nics, 0);
  vireo_library_create_machine_async (f->library, c, NULL, store_result, &res);
  m = vireo_library_create_machine_finish (f->library, wait_result (&res), &error);
  g_assert_no_error (error);
  g_signal_connect (m, "state-changed", G_CALLBACK (on_state_changed), f);
  g_signal_connect (m, "error", G_CALLBACK (on_error), f);
  return m;
}

static void
start (VireoMachine *m)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  vireo_machine_start_async (m, NULL, store_result, &res);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STARTING);
  g_assert_true (vireo_machine_start_finish (m, wait_result (&res), &error));
  g_assert_no_error (error);
}

static char *
read_serial_log (VireoMachine *m)
{
  g_autofree char *path = vireo_machine_dup_serial_log_path (m);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static guint
count_occurrences (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

typedef gboolean (*Pred) (VireoMachine *m, gconstpointer arg);

static gboolean
wait_until (VireoMachine *m, Pred pred, gconstpointer arg, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (!pred (m, arg))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
  return TRUE;
}

static gboolean
is_state (VireoMachine *m, gconstpointer state)
{
  return vireo_machine_get_state (m) == (VireoMachineState) GPOINTER_TO_INT (state);
}

static gboolean
log_has (VireoMachine *m, gconstpointer needle)
{
  g_autofree char *text = read_serial_log (m);
  return strstr (text, needle) != NULL;
}

static gboolean
log_has_ticks (VireoMachine *m, gconstpointer n)
{
  g_autofree char *text = read_serial_log (m);
  return count_occurrences (text, "tick ") >= GPOINTER_TO_UINT (n);
}

static void
test_hello (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autofree char *text = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Hello", "hello.elf", "exit=0", 1);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_null (vireo_machine_get_serial_pty (m));

  start (m);
  /* The guest prints and exits through the debug port: the machine stops by itself. */
  g_assert_true (wait_until (m, is_state, GINT_TO_POINTER (VIREO_MACHINE_STATE_STOPPED), 120));
  g_assert_null (vireo_machine_get_vr_machine (m));
  g_assert_null (vireo_machine_get_serial_pty (m));
  text = read_serial_log (m);
  g_test_message ("serial.log:\n%s", text);
  g_assert_cmpuint (count_occurrences (text, "Hello from a Vireo test guest"), ==, 1);
  g_assert_cmpuint (f->states->len, >=, 2);
  g_assert_cmpint (g_array_index (f->states, VireoMachineState, 0), ==,
                   VIREO_MACHINE_STATE_STARTING);
  g_assert_cmpint (g_array_index (f->states, VireoMachineState, f->states->len - 1), ==,
                   VIREO_MACHINE_STATE_STOPPED);

  /* A second run: the log keeps the first one. */
  start (m);
  g_assert_true (wait_until (m, is_state, GINT_TO_POINTER (VIREO_MACHINE_STATE_STOPPED), 120));
  g_free (text);
  text = read_serial_log (m);
  g_assert_cmpuint (count_occurrences (text, "Hello from a Vireo test guest"), ==, 2);
}

static void
test_lifecycle (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;
  const char *pty;
  int pty_fd;
  char buf[4096];
  GString *seen = g_string_new (NULL);
  gint64 end;
  guint n_vcpus = 0;
  const double *usage;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Counter", "lifecycle.elf", "count", 2);
  start (m);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_RUNNING);
  g_assert_nonnull (vireo_machine_get_vr_machine (m));

  /* The console page's pty shows the same output as serial.log. */
  pty = vireo_machine_get_serial_pty (m);
  g_assert_nonnull (pty);
  g_assert_true (g_str_has_prefix (pty, "/dev/pts/"));
  pty_fd = open (pty, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  g_assert_cmpint (pty_fd, >=, 0);
  end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (strstr (seen->str, "tick 3\n") == NULL && g_get_monotonic_time () < end)
    {
      ssize_t n = read (pty_fd, buf, sizeof buf);

      if (n > 0)
        g_string_append_len (seen, buf, n);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
  close (pty_fd);
  g_assert_nonnull (strstr (seen->str, "tick 3\n"));
  g_string_free (seen, TRUE);
  g_assert_true (wait_until (m, log_has, "tick 3\n", 30));

  /* Activity: the stats tick once a second. */
  g_assert_true (wait_until (m, log_has_ticks, GUINT_TO_POINTER (10), 60));
  {
    gint64 t = g_get_monotonic_time () + 2500 * 1000;
    while (g_get_monotonic_time () < t)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (10000);
      }
  }
  usage = vireo_machine_get_vcpu_usage (m, &n_vcpus);
  g_assert_cmpuint (n_vcpus, ==, MIN (2, vireo_host_cpu_count ()));
  g_test_message ("cpu %.1f%% (vCPU 0 %.1f%%), memory %" G_GUINT64_FORMAT " KiB",
                  vireo_machine_get_cpu_usage (m), usage[0],
                  vireo_machine_get_memory_usage (m) >> 10);
  g_assert_cmpfloat (vireo_machine_get_cpu_usage (m), >=, 0);
  g_assert_cmpfloat (vireo_machine_get_cpu_usage (m), <=, 100);
  g_assert_cmpuint (vireo_machine_get_memory_usage (m), >, 0);
  g_assert_cmpuint (vireo_machine_get_memory_usage (m), <=, 64 << 20);

  /* Pause: the ticks stop; resume: they go on. */
  g_assert_true (vireo_machine_pause (m, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_PAUSED);
  {
    g_autofree char *before = read_serial_log (m);
    g_autofree char *after = NULL;

    g_usleep (300 * 1000);
    g_main_context_iteration (NULL, FALSE);
    after = read_serial_log (m);
    g_assert_cmpstr (before, ==, after);
    /* Not in this state: a clear error. */
    g_assert_false (vireo_machine_pause (m, &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
    g_test_message ("%s", error->message);
    g_clear_error (&error);
    g_assert_true (vireo_machine_resume (m, &error));
    g_assert_no_error (error);
    g_assert_true (wait_until (m, log_has_ticks,
                               GUINT_TO_POINTER (count_occurrences (after, "tick ") + 3), 60));
  }

  /* Cannot be deleted or cloned while it runs. */
  {
    g_autoptr(GAsyncResult) res = NULL;

    vireo_machine_delete_async (m, TRUE, NULL, store_result, &res);
    g_assert_false (vireo_machine_delete_finish (m, wait_result (&res), &error));
    g_assert_error (error, VR_ERROR, VR_ERROR_STATE);
    g_clear_error (&error);
  }

  vireo_machine_force_off (m);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_assert_null (vireo_machine_get_vr_machine (m));
  g_assert_cmpfloat (vireo_machine_get_cpu_usage (m), ==, 0);
  vireo_machine_get_vcpu_usage (m, &n_vcpus);
  g_assert_cmpuint (n_vcpus, ==, 0);
}

static void
test_power_button (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Button", "lifecycle.elf", "powerbutton", 1);
  g_assert_false (vireo_machine_shutdown (m, &error));  /* stopped */
  g_clear_error (&error);
  start (m);
  g_assert_true (wait_until (m, log_has, "waiting for the power button", 60));
  g_assert_true (vireo_machine_shutdown (m, &error));
  g_assert_no_error (error);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPING);
  g_assert_true (wait_until (m, is_state, GINT_TO_POINTER (VIREO_MACHINE_STATE_STOPPED), 60));
  g_assert_true (log_has (m, "power button pressed"));
  g_assert_cmpuint (f->errors->len, ==, 0);
}

static void
test_guest_error (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;

  if (skip_without_guests ())
    return;

  m = make_machine (f, "Crash", "lifecycle.elf", "crash", 1);
  start (m);
  g_assert_true (wait_until (m, is_state, GINT_TO_POINTER (VIREO_MACHINE_STATE_STOPPED), 60));
  g_assert_cmpuint (f->errors->len, >=, 1);
  g_test_message ("error: %s", (char *) g_ptr_array_index (f->errors, 0));
}

static void
test_start_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(VireoMachine) m = NULL;
  g_autoptr(VireoMachineConfig) c = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *kernel = g_build_filename (g_get_user_data_dir (), "kernel", NULL);

  /* A kernel that vanished after the machine was made: the start fails with the path, the
   * machine stays stopped. */
  g_file_set_contents (kernel, "not a kernel", -1, NULL);
  c = vireo_machine_config_new ();
  c->name = g_strdup ("Vanishing");
  c->kernel = g_strdup (kernel);
  c->memory_mib = 16;
  {
    g_autoptr(GAsyncResult) r = NULL;
    vireo_library_create_machine_async (f->library, c, NULL, store_result, &r);
    m = vireo_library_create_machine_finish (f->library, wait_result (&r), &error);
    g_assert_no_error (error);
  }
  g_unlink (kernel);
  vireo_machine_start_async (m, NULL, store_result, &res);
  g_assert_false (vireo_machine_start_finish (m, wait_result (&res), &error));
  g_assert_nonnull (strstr (error->message, kernel));
  g_test_message ("%s", error->message);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
  g_clear_error (&error);
  g_clear_object (&res);

  /* Not a kernel at all: the engine says so; back to stopped. */
  if (!kvm_usable ())
    return;
  g_file_set_contents (kernel, "not a kernel", -1, NULL);
  vireo_machine_start_async (m, NULL, store_result, &res);
  g_assert_false (vireo_machine_start_finish (m, wait_result (&res), &error));
  g_test_message ("%s", error->message);
  g_assert_cmpint (vireo_machine_get_state (m), ==, VIREO_MACHINE_STATE_STOPPED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/machine/start-errors", test_start_errors);
  ADD ("/machine/hello", test_hello);
  ADD ("/machine/lifecycle", test_lifecycle);
  ADD ("/machine/power-button", test_power_button);
  ADD ("/machine/guest-error", test_guest_error);
#undef ADD
  return g_test_run ();
}
