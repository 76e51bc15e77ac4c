/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A tap interface: frames as plain Ethernet (IFF_TAP | IFF_NO_PI) on a non-blocking fd.
 *
 * Reading: a unix-fd source on the backend's context reads up to a batch of frames per
 * wake-up and delivers them; when the device refuses one, the source goes away (the kernel
 * queues, then drops, what arrives meanwhile, like a real card's full ring) and comes back
 * when the common code resumes us. Writing: writev() from the I/O thread; a full tap queue
 * drops the frame (the kernel does the same for a real link).
 *
 * Locks: `lock` guards the watch source (start/stop/resume may come from different
 * threads). The fd is closed only in finalize, when no source is left.
 */

#include "config.h"

#include "vr-net-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../vr-machine.h"

#define TAP_BATCH  64

typedef struct
{
  VrNetBackend  parent;
  GMutex        lock;
  int           fd;
  char         *ifname;
  GSource      *watch;
  bool          stopped;
} VrNetTap;

static gboolean tap_watch_cb (gint fd, GIOCondition cond, gpointer data);

/* With tap->lock held. */
static void
tap_clear_watch (VrNetTap *tap)
{
  if (tap->watch)
    {
      g_source_destroy (tap->watch);
      g_clear_pointer (&tap->watch, g_source_unref);
    }
}

/* With tap->lock held. */
static void
tap_start_watch (VrNetTap *tap)
{
  GMainContext *ctx;

  if (tap->stopped || tap->watch)
    return;
  ctx = vr_net_backend_dup_context (&tap->parent);
  if (!ctx)
    return;
  tap->watch = g_unix_fd_source_new (tap->fd, G_IO_IN);
  g_source_set_callback (tap->watch, G_SOURCE_FUNC (tap_watch_cb),
                         vr_net_backend_ref (&tap->parent),
                         (GDestroyNotify) vr_net_backend_unref);
  g_source_set_static_name (tap->watch, "vireo-tap");
  g_source_attach (tap->watch, ctx);
  g_main_context_unref (ctx);
}

static gboolean
tap_watch_cb (gint fd, GIOCondition cond, gpointer data)
{
  VrNetTap *tap = data;
  g_autofree uint8_t *buf = g_malloc (VR_NET_MAX_FRAME);

  for (unsigned i = 0; i < TAP_BATCH; i++)
    {
      ssize_t n = read (fd, buf, VR_NET_MAX_FRAME);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;   /* EAGAIN: drained. Other errors: the next wake-up tries again. */
      if (!vr_net_backend_deliver (&tap->parent, buf, (size_t) n))
        {
          g_mutex_lock (&tap->lock);
          if (tap->watch == g_main_current_source ())
            g_clear_pointer (&tap->watch, g_source_unref);
          g_mutex_unlock (&tap->lock);
          return G_SOURCE_REMOVE;
        }
    }
  return G_SOURCE_CONTINUE;
}

static void
tap_start (VrNetBackend *nb)
{
  VrNetTap *tap = (VrNetTap *) nb;

  g_mutex_lock (&tap->lock);
  tap_clear_watch (tap);
  if (!vr_net_backend_is_paused (nb))
    tap_start_watch (tap);
  g_mutex_unlock (&tap->lock);
}

static void
tap_stop (VrNetBackend *nb)
{
  VrNetTap *tap = (VrNetTap *) nb;

  g_mutex_lock (&tap->lock);
  tap->stopped = true;
  tap_clear_watch (tap);
  g_mutex_unlock (&tap->lock);
}

static void
tap_resume (VrNetBackend *nb)
{
  VrNetTap *tap = (VrNetTap *) nb;

  g_mutex_lock (&tap->lock);
  tap_start_watch (tap);
  g_mutex_unlock (&tap->lock);
}

static bool
tap_send (VrNetBackend       *nb,
          const struct iovec *iov,
          unsigned            n)
{
  VrNetTap *tap = (VrNetTap *) nb;
  ssize_t r;

  do
    r = writev (tap->fd, iov, (int) n);
  while (r < 0 && errno == EINTR);
  return r >= 0;
}

static void
tap_finalize (VrNetBackend *nb)
{
  VrNetTap *tap = (VrNetTap *) nb;

  if (tap->fd >= 0)
    close (tap->fd);
  g_free (tap->ifname);
  g_mutex_clear (&tap->lock);
}

static const VrNetBackendOps tap_ops = {
  .kind = "tap",
  .start = tap_start,
  .stop = tap_stop,
  .resume = tap_resume,
  .send = tap_send,
  .finalize = tap_finalize,
};

VrNetBackend *
vr_net_tap_new (const char *ifname,
                GError    **error)
{
  VrNetTap *tap;
  struct ifreq ifr = { 0 };
  int fd;

  g_return_val_if_fail (ifname != NULL, NULL);

  if (!*ifname || strlen (ifname) >= IFNAMSIZ)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "“%s” is not a network interface name (1 to %d characters)", ifname,
                   IFNAMSIZ - 1);
      return NULL;
    }

  fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                   "Cannot open /dev/net/tun for the tap interface “%s”: %s%s", ifname,
                   g_strerror (saved),
                   saved == ENOENT ? " (is the tun module loaded?)" : "");
      return NULL;
    }

  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  g_strlcpy (ifr.ifr_name, ifname, IFNAMSIZ);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    {
      int saved = errno;

      close (fd);
      if (saved == EPERM || saved == EACCES)
        g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                     "Not allowed to use the tap interface “%s”. Create it for your user "
                     "first (ip tuntap add %s mode tap user $USER) or use --net user",
                     ifname, ifname);
      else if (saved == EBUSY)
        g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                     "The tap interface “%s” is in use by another program", ifname);
      else if (saved == EINVAL)
        g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                     "“%s” exists but is not a tap interface", ifname);
      else
        g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                     "Cannot attach to the tap interface “%s”: %s", ifname,
                     g_strerror (saved));
      return NULL;
    }

  tap = (VrNetTap *) vr_net_backend_alloc (sizeof (VrNetTap), &tap_ops, NULL);
  g_mutex_init (&tap->lock);
  tap->fd = fd;
  tap->ifname = g_strdup (ifr.ifr_name);
  return &tap->parent;
}
