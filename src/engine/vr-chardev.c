/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Character backends for the serial port.
 *
 * Output: vr_chardev_write() runs on the device's thread (a vCPU) and writes straight to the
 * output fd. The pty master is non-blocking: when its buffer is full (nobody reads the slave)
 * the rest is dropped, so the guest never stalls. We keep our own slave fd open for the
 * pty's whole life, so the master never sees HUP/EIO when a client detaches or has not
 * attached yet: output written meanwhile is kept by the tty layer up to its buffer size
 * (about 4 KiB) and shown to the next client, the rest is dropped.
 *
 * Input: a GUnixFDSource on the I/O thread's context reads the input fd. Before each read it
 * asks the device how much it can take; at 0 the source is removed, and
 * vr_chardev_accept_input() (any thread) schedules an idle source on that context which
 * installs the watch again. On HUP or EIO the watch is replaced by a 250 ms timer that tries
 * again, so a hung-up fd never spins.
 *
 * Locking:
 *   cb_lock: held by the I/O thread while it calls into the device (can_receive/receive);
 *            vr_chardev_detach() and vr_chardev_free() take it so that no callback runs
 *            after they return. Never call detach/free with the device's own lock held.
 *   lock:    protects the attachment (callbacks, context) and the sources. Never held while
 *            calling into the device. Order: cb_lock, then lock.
 * The sources keep a reference on the shared state, so a source that is dispatching while
 * the chardev is freed still touches valid memory (it sees `closed` and stops).
 */

#include "config.h"

#include "vr-chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define VR_CHARDEV_READ_MAX  256
#define VR_CHARDEV_RETRY_MS  250

typedef struct
{
  GMutex               lock;
  GMutex               cb_lock;
  bool                 closed;
  int                  in_fd;       /* -1: no input */
  int                  out_fd;      /* -1: output discarded */
  bool                 close_in;    /* we own in_fd */
  bool                 eof_is_final; /* stdin that is not a terminal: EOF ends input */
  bool                 close_out;   /* we own out_fd */
  bool                 drop_on_full; /* non-blocking output (pty) */
  int                  slave_fd;    /* pty: our own slave reference, -1 otherwise */
  int                  log_fd;      /* pty: a log file that also gets all output, or -1 */

  GMainContext        *context;
  VrChardevCanReceive  can_receive;
  VrChardevReceive     receive;
  void                *opaque;
  GSource             *watch;       /* fd source, or NULL */
  GSource             *retry;       /* timer after HUP/EIO, or NULL */
  GSource             *resume;      /* idle scheduled by accept_input, or NULL */
  bool                 paused;      /* the device was full */
} VrChardevState;

struct _VrChardev
{
  VrSerialBackend  backend;
  VrChardevState  *state;
  char            *pty_path;
  bool             restore_tty;
  struct termios   saved_tty;
};

static void
state_release (VrChardevState *st)
{
  if (st->close_in && st->in_fd >= 0)
    close (st->in_fd);
  if (st->close_out && st->out_fd >= 0 && st->out_fd != st->in_fd)
    close (st->out_fd);
  if (st->slave_fd >= 0)
    close (st->slave_fd);
  if (st->log_fd >= 0)
    close (st->log_fd);
  g_clear_pointer (&st->context, g_main_context_unref);
  g_mutex_clear (&st->lock);
  g_mutex_clear (&st->cb_lock);
}

static VrChardevState *
state_ref (VrChardevState *st)
{
  return g_atomic_rc_box_acquire (st);
}

static void
state_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, (GDestroyNotify) state_release);
}

/* With st->lock held. */
static void
state_clear_sources (VrChardevState *st)
{
  if (st->watch)
    {
      g_source_destroy (st->watch);
      g_clear_pointer (&st->watch, g_source_unref);
    }
  if (st->retry)
    {
      g_source_destroy (st->retry);
      g_clear_pointer (&st->retry, g_source_unref);
    }
  if (st->resume)
    {
      g_source_destroy (st->resume);
      g_clear_pointer (&st->resume, g_source_unref);
    }
}

static gboolean watch_cb (gint fd, GIOCondition cond, gpointer data);

/* With st->lock held. */
static void
state_start_watch (VrChardevState *st)
{
  if (st->closed || st->watch || st->retry || !st->context || st->in_fd < 0)
    return;

  st->watch = g_unix_fd_source_new (st->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (st->watch, G_SOURCE_FUNC (watch_cb), state_ref (st), state_unref);
  g_source_set_name (st->watch, "vireo-chardev-input");
  g_source_attach (st->watch, st->context);
}

static gboolean
retry_cb (gpointer data)
{
  VrChardevState *st = data;

  g_mutex_lock (&st->lock);
  if (st->retry == g_main_current_source ())
    g_clear_pointer (&st->retry, g_source_unref);
  if (!st->paused)
    state_start_watch (st);
  g_mutex_unlock (&st->lock);

  return G_SOURCE_REMOVE;
}

/* With st->lock held: stop watching for a while (hang-up or a persistent error). */
static void
state_back_off (VrChardevState *st)
{
  if (st->watch)
    {
      g_source_destroy (st->watch);
      g_clear_pointer (&st->watch, g_source_unref);
    }
  if (st->retry || st->closed || !st->context)
    return;
  st->retry = g_timeout_source_new (VR_CHARDEV_RETRY_MS);
  g_source_set_callback (st->retry, retry_cb, state_ref (st), state_unref);
  g_source_attach (st->retry, st->context);
}

static gboolean
watch_cb (gint fd, GIOCondition cond, gpointer data)
{
  VrChardevState *st = data;
  uint8_t buf[VR_CHARDEV_READ_MAX];
  VrChardevCanReceive can_receive;
  VrChardevReceive receive;
  void *opaque;
  size_t room;
  ssize_t n;
  gboolean ret = G_SOURCE_CONTINUE;

  g_mutex_lock (&st->cb_lock);

  g_mutex_lock (&st->lock);
  if (st->closed || !st->receive || st->watch != g_main_current_source ())
    {
      g_mutex_unlock (&st->lock);
      g_mutex_unlock (&st->cb_lock);
      return G_SOURCE_REMOVE;
    }
  can_receive = st->can_receive;
  receive = st->receive;
  opaque = st->opaque;
  g_mutex_unlock (&st->lock);

  room = can_receive ? can_receive (opaque) : sizeof buf;
  if (room == 0)
    {
      g_mutex_lock (&st->lock);
      st->paused = true;
      if (st->watch)
        {
          g_source_destroy (st->watch);
          g_clear_pointer (&st->watch, g_source_unref);
        }
      g_mutex_unlock (&st->lock);
      g_mutex_unlock (&st->cb_lock);
      return G_SOURCE_REMOVE;
    }

  n = read (fd, buf, MIN (room, sizeof buf));
  if (n > 0)
    receive (opaque, buf, (size_t) n);
  else if (n == 0 && st->eof_is_final)
    {
      /* The end of a pipe or file given as input: nothing more will come. */
      g_mutex_lock (&st->lock);
      if (st->watch)
        g_clear_pointer (&st->watch, g_source_unref);
      st->in_fd = -1;   /* not ours to close: standard input */
      g_mutex_unlock (&st->lock);
      ret = G_SOURCE_REMOVE;
    }
  else if (n == 0 || (errno != EAGAIN && errno != EINTR))
    {
      /* EOF, EIO (pty without a slave) or another error: retry later, never spin. */
      g_mutex_lock (&st->lock);
      state_back_off (st);
      g_mutex_unlock (&st->lock);
      ret = G_SOURCE_REMOVE;
    }
  else if (cond & (G_IO_HUP | G_IO_ERR))
    {
      g_mutex_lock (&st->lock);
      state_back_off (st);
      g_mutex_unlock (&st->lock);
      ret = G_SOURCE_REMOVE;
    }

  g_mutex_unlock (&st->cb_lock);
  return ret;
}

static gboolean
resume_cb (gpointer data)
{
  VrChardevState *st = data;

  g_mutex_lock (&st->lock);
  if (st->resume == g_main_current_source ())
    g_clear_pointer (&st->resume, g_source_unref);
  st->paused = false;
  state_start_watch (st);
  g_mutex_unlock (&st->lock);

  return G_SOURCE_REMOVE;
}

static bool
set_nonblock (int fd)
{
  int flags = fcntl (fd, F_GETFL);

  return flags >= 0 && fcntl (fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static bool
open_pty (VrChardev *chr, VrChardevState *st, GError **error)
{
  struct termios tio;
  char name[256];
  int master;
  int slave;

  master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    goto fail;
  if (grantpt (master) < 0 || unlockpt (master) < 0 || ptsname_r (master, name, sizeof name) != 0)
    {
      int saved = errno;
      close (master);
      errno = saved;
      goto fail;
    }

  slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    {
      int saved = errno;
      close (master);
      errno = saved;
      goto fail;
    }
  if (tcgetattr (slave, &tio) == 0)
    {
      cfmakeraw (&tio);
      tcsetattr (slave, TCSANOW, &tio);
    }
  if (!set_nonblock (master))
    {
      int saved = errno;
      close (master);
      close (slave);
      errno = saved;
      goto fail;
    }

  st->in_fd = master;
  st->out_fd = master;
  st->close_in = true;
  st->close_out = true;
  st->slave_fd = slave;
  st->drop_on_full = true;
  chr->pty_path = g_strdup (name);
  return true;

fail:
  g_set_error (error, VR_ERROR, VR_ERROR_BACKEND, "Cannot create a pseudo-terminal: %s",
               g_strerror (errno));
  return false;
}

VrChardev *
vr_chardev_new (VrSerialBackend   backend,
                const char       *path,
                GError          **error)
{
  g_autofree VrChardev *chr = g_new0 (VrChardev, 1);
  VrChardevState *st = g_atomic_rc_box_new0 (VrChardevState);

  g_mutex_init (&st->lock);
  g_mutex_init (&st->cb_lock);
  st->in_fd = -1;
  st->out_fd = -1;
  st->slave_fd = -1;
  st->log_fd = -1;
  chr->backend = backend;

  switch (backend)
    {
    case VR_SERIAL_NONE:
      break;

    case VR_SERIAL_STDIO:
      st->out_fd = STDOUT_FILENO;
      if (isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &chr->saved_tty) == 0)
        {
          struct termios tio = chr->saved_tty;

          /* Raw input, but keep output processing and signals so Ctrl-C still works. */
          cfmakeraw (&tio);
          tio.c_oflag |= OPOST | ONLCR;
          tio.c_lflag |= ISIG;
          if (tcsetattr (STDIN_FILENO, TCSANOW, &tio) == 0)
            chr->restore_tty = true;
        }
      else
        st->eof_is_final = true;
      /* A terminal, or a pipe or file (`echo … | vireo-run`), as QEMU's stdio does. */
      st->in_fd = STDIN_FILENO;
      break;

    case VR_SERIAL_PTY:
      if (!open_pty (chr, st, error))
        goto fail;
      /* A log file as well (the app keeps a machine's serial.log across runs). */
      if (path && *path)
        {
          st->log_fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
          if (st->log_fd < 0)
            {
              int saved = errno;
              g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                           "Cannot open the serial log “%s”: %s", path, g_strerror (saved));
              g_clear_pointer (&chr->pty_path, g_free);
              goto fail;
            }
        }
      break;

    case VR_SERIAL_FILE:
      if (!path || !*path)
        {
          g_set_error_literal (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                               "The serial log needs a file name");
          goto fail;
        }
      st->out_fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
      if (st->out_fd < 0)
        {
          int saved = errno;
          g_set_error (error, VR_ERROR, VR_ERROR_BACKEND, "Cannot open the serial log “%s”: %s",
                       path, g_strerror (saved));
          goto fail;
        }
      st->close_out = true;
      break;

    default:
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG, "Unknown serial backend %d",
                   (int) backend);
      goto fail;
    }

  chr->state = st;
  return g_steal_pointer (&chr);

fail:
  state_unref (st);
  return NULL;
}

void
vr_chardev_attach (VrChardev            *chr,
                   GMainContext         *context,
                   VrChardevCanReceive   can_receive,
                   VrChardevReceive      receive,
                   void                 *opaque)
{
  VrChardevState *st;

  g_return_if_fail (chr != NULL);
  g_return_if_fail (receive != NULL);

  st = chr->state;
  g_mutex_lock (&st->cb_lock);
  g_mutex_lock (&st->lock);
  state_clear_sources (st);
  g_clear_pointer (&st->context, g_main_context_unref);
  st->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  st->can_receive = can_receive;
  st->receive = receive;
  st->opaque = opaque;
  st->paused = false;
  state_start_watch (st);
  g_mutex_unlock (&st->lock);
  g_mutex_unlock (&st->cb_lock);
}

void
vr_chardev_detach (VrChardev *chr)
{
  VrChardevState *st;

  if (!chr)
    return;

  st = chr->state;
  g_mutex_lock (&st->cb_lock);
  g_mutex_lock (&st->lock);
  state_clear_sources (st);
  st->can_receive = NULL;
  st->receive = NULL;
  st->opaque = NULL;
  g_mutex_unlock (&st->lock);
  g_mutex_unlock (&st->cb_lock);
}

void
vr_chardev_accept_input (VrChardev *chr)
{
  VrChardevState *st;

  g_return_if_fail (chr != NULL);

  st = chr->state;
  g_mutex_lock (&st->lock);
  if (!st->closed && st->paused && !st->resume && st->context && st->receive)
    {
      /* Always through an idle: never re-enter the device from its own call. */
      st->resume = g_idle_source_new ();
      g_source_set_callback (st->resume, resume_cb, state_ref (st), state_unref);
      g_source_attach (st->resume, st->context);
    }
  g_mutex_unlock (&st->lock);
}

void
vr_chardev_write (VrChardev     *chr,
                  const uint8_t *buf,
                  size_t         len)
{
  VrChardevState *st;
  int fd;

  if (!chr || !buf)
    return;

  st = chr->state;
  if (st->log_fd >= 0)
    {
      const uint8_t *p = buf;
      size_t left = len;

      while (left > 0)
        {
          ssize_t n = write (st->log_fd, p, left);

          if (n > 0)
            {
              p += n;
              left -= (size_t) n;
            }
          else if (n < 0 && errno == EINTR)
            continue;
          else
            break;  /* disk full or an I/O error: the log misses this, the guest goes on */
        }
    }

  fd = st->out_fd;
  if (fd < 0)
    return;

  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);

      if (n > 0)
        {
          buf += n;
          len -= (size_t) n;
        }
      else if (n < 0 && errno == EINTR)
        continue;
      else
        break;  /* EAGAIN (full pty: drop), EIO (no reader), or a real error: drop */
    }
}

const char *
vr_chardev_get_pty_path (VrChardev *chr)
{
  g_return_val_if_fail (chr != NULL, NULL);

  return chr->pty_path;
}

void
vr_chardev_free (VrChardev *chr)
{
  VrChardevState *st;

  if (!chr)
    return;

  st = chr->state;
  g_mutex_lock (&st->cb_lock);
  g_mutex_lock (&st->lock);
  st->closed = true;
  state_clear_sources (st);
  st->can_receive = NULL;
  st->receive = NULL;
  g_mutex_unlock (&st->lock);
  g_mutex_unlock (&st->cb_lock);

  if (chr->restore_tty)
    tcsetattr (STDIN_FILENO, TCSANOW, &chr->saved_tty);

  g_free (chr->pty_path);
  state_unref (st);
  g_free (chr);
}
