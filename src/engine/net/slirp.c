/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * User networking through libslirp.
 *
 * libslirp is not thread-safe: every call into it happens on the backend's context (the
 * machine's I/O thread) or, at the end, in finalize when nothing else is left. A custom
 * GSource drives it: prepare() asks slirp_pollfds_fill() which sockets to watch and how long
 * the TCP timers allow us to sleep; the source keeps one unix-fd tag per socket (added,
 * modified or removed only when the set changes, so a quiet network costs no wake-ups);
 * dispatch() hands the results to slirp_pollfds_poll(). libslirp's own timers (IPv6 router
 * advertisements) are GLib timeout sources on the same context.
 *
 * While the device is full (vr_net_backend_is_paused()) prepare() watches nothing: the host
 * sockets are not read, the kernel's buffers and TCP windows push back on the peers, and
 * nothing is lost. Reading resumes when the device takes the pending frames.
 *
 * slirp_lock guards the Slirp against teardown from another thread (vr_net_backend_free()
 * stops the sources; a callback already running finishes first). Order: slirp_lock, then the
 * common cb_lock/lock (slirp may emit a frame inside any call).
 */

#include "config.h"

#include "vr-net-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libslirp.h>
#include <string.h>

#include "../vr-machine.h"

typedef struct _UserSource UserSource;
typedef struct _UserTimer  UserTimer;

typedef struct
{
  VrNetBackend  parent;
  GMutex        slirp_lock;
  Slirp        *slirp;
  bool          stopped;
  UserSource   *source;     /* the poll source, owned (a reference) */
  GPtrArray    *timers;     /* UserTimer*, alive until slirp frees them */
  uint64_t      guest_errors;
} VrNetUser;

struct _UserTimer
{
  VrNetUser    *user;
  SlirpTimerId  id;
  void         *cb_opaque;
  GSource      *source;     /* the pending expiry, or NULL */
};

typedef struct
{
  void         *tag;
  GIOCondition  events;
  bool          used;
} UserFd;

struct _UserSource
{
  GSource     base;
  VrNetUser  *user;       /* a reference */
  GHashTable *fds;        /* fd -> UserFd */
  GPtrArray  *polled;     /* index given to slirp -> UserFd */
  gint64      deadline;   /* monotonic µs, or -1 */
  bool        filled;     /* slirp_pollfds_fill ran for this iteration */
};

static const VrNetBackendOps user_ops;

/* ---- the poll source --------------------------------------------------------------------- */

static GIOCondition
slirp_to_gio (int events)
{
  GIOCondition c = 0;

  if (events & SLIRP_POLL_IN)
    c |= G_IO_IN;
  if (events & SLIRP_POLL_OUT)
    c |= G_IO_OUT;
  if (events & SLIRP_POLL_PRI)
    c |= G_IO_PRI;
  if (events & SLIRP_POLL_ERR)
    c |= G_IO_ERR;
  if (events & SLIRP_POLL_HUP)
    c |= G_IO_HUP;
  return c;
}

static int
gio_to_slirp (GIOCondition c)
{
  int events = 0;

  if (c & G_IO_IN)
    events |= SLIRP_POLL_IN;
  if (c & G_IO_OUT)
    events |= SLIRP_POLL_OUT;
  if (c & G_IO_PRI)
    events |= SLIRP_POLL_PRI;
  if (c & (G_IO_ERR | G_IO_NVAL))
    events |= SLIRP_POLL_ERR;
  if (c & G_IO_HUP)
    events |= SLIRP_POLL_HUP;
  return events;
}

static int
add_poll_cb (int fd, int events, void *opaque)
{
  UserSource *src = opaque;
  GIOCondition cond = slirp_to_gio (events);
  UserFd *e = g_hash_table_lookup (src->fds, GINT_TO_POINTER (fd));

  if (!e)
    {
      e = g_new0 (UserFd, 1);
      e->tag = g_source_add_unix_fd (&src->base, fd, cond);
      e->events = cond;
      g_hash_table_insert (src->fds, GINT_TO_POINTER (fd), e);
    }
  else if (e->events != cond)
    {
      g_source_modify_unix_fd (&src->base, e->tag, cond);
      e->events = cond;
    }
  e->used = true;
  g_ptr_array_add (src->polled, e);
  return (int) src->polled->len - 1;
}

static int
get_revents_cb (int idx, void *opaque)
{
  UserSource *src = opaque;
  UserFd *e;

  if (idx < 0 || (guint) idx >= src->polled->len)
    return 0;
  e = g_ptr_array_index (src->polled, idx);
  return gio_to_slirp (g_source_query_unix_fd (&src->base, e->tag));
}

static gboolean
forget_unused (gpointer key, gpointer value, gpointer user_data)
{
  UserSource *src = user_data;
  UserFd *e = value;

  if (e->used)
    return FALSE;
  g_source_remove_unix_fd (&src->base, e->tag);
  return TRUE;
}

static gboolean
user_source_prepare (GSource *source, gint *timeout)
{
  UserSource *src = (UserSource *) source;
  VrNetUser *user = src->user;
  GHashTableIter iter;
  gpointer value;
  uint32_t t = UINT32_MAX;

  g_hash_table_iter_init (&iter, src->fds);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((UserFd *) value)->used = false;
  g_ptr_array_set_size (src->polled, 0);
  src->filled = false;
  src->deadline = -1;

  g_mutex_lock (&user->slirp_lock);
  if (!user->stopped && !vr_net_backend_is_paused (&user->parent))
    {
      slirp_pollfds_fill (user->slirp, &t, add_poll_cb, src);
      src->filled = true;
    }
  g_mutex_unlock (&user->slirp_lock);

  g_hash_table_foreach_remove (src->fds, forget_unused, src);

  if (!src->filled || t == UINT32_MAX)
    {
      *timeout = -1;
      return FALSE;
    }
  *timeout = (gint) MIN (t, (uint32_t) G_MAXINT);
  src->deadline = g_source_get_time (source) + (gint64) t * 1000;
  return t == 0;
}

static gboolean
user_source_check (GSource *source)
{
  UserSource *src = (UserSource *) source;

  if (!src->filled)
    return FALSE;
  for (guint i = 0; i < src->polled->len; i++)
    {
      UserFd *e = g_ptr_array_index (src->polled, i);

      if (g_source_query_unix_fd (source, e->tag))
        return TRUE;
    }
  return src->deadline >= 0 && g_source_get_time (source) >= src->deadline;
}

static gboolean
user_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  UserSource *src = (UserSource *) source;
  VrNetUser *user = src->user;

  g_mutex_lock (&user->slirp_lock);
  if (!user->stopped && src->filled)
    slirp_pollfds_poll (user->slirp, 0, get_revents_cb, src);
  src->filled = false;
  g_mutex_unlock (&user->slirp_lock);
  return G_SOURCE_CONTINUE;
}

static void
user_source_finalize (GSource *source)
{
  UserSource *src = (UserSource *) source;

  g_clear_pointer (&src->fds, g_hash_table_unref);
  g_clear_pointer (&src->polled, g_ptr_array_unref);
  vr_net_backend_unref (&src->user->parent);
}

static GSourceFuncs user_source_funcs = {
  .prepare = user_source_prepare,
  .check = user_source_check,
  .dispatch = user_source_dispatch,
  .finalize = user_source_finalize,
};

/* ---- libslirp callbacks (I/O thread, slirp_lock held) ------------------------------------ */

static ssize_t
send_packet_cb (const void *buf, size_t len, void *opaque)
{
  VrNetUser *user = opaque;

  /* A refused frame is kept by the common code; slirp must not retry it. */
  vr_net_backend_deliver (&user->parent, buf, len);
  return (ssize_t) len;
}

static void
guest_error_cb (const char *msg, void *opaque)
{
  VrNetUser *user = opaque;

  if (user->guest_errors++ < 10)
    g_message ("user network: the guest sent something slirp refuses: %s", msg);
}

static int64_t
clock_get_ns_cb (void *opaque)
{
  return g_get_monotonic_time () * 1000;
}

static gboolean
timer_cb (gpointer data)
{
  UserTimer *t = data;
  VrNetUser *user = t->user;

  g_mutex_lock (&user->slirp_lock);
  if (t->source == g_main_current_source ())
    g_clear_pointer (&t->source, g_source_unref);
  if (!user->stopped)
    slirp_handle_timer (user->slirp, t->id, t->cb_opaque);
  g_mutex_unlock (&user->slirp_lock);
  return G_SOURCE_REMOVE;
}

static void
timer_source_unref_backend (gpointer data)
{
  UserTimer *t = data;

  vr_net_backend_unref (&t->user->parent);
}

static void *
timer_new_opaque_cb (SlirpTimerId id, void *cb_opaque, void *opaque)
{
  VrNetUser *user = opaque;
  UserTimer *t = g_new0 (UserTimer, 1);

  t->user = user;
  t->id = id;
  t->cb_opaque = cb_opaque;
  g_ptr_array_add (user->timers, t);
  return t;
}

static void
timer_cancel (UserTimer *t)
{
  if (t->source)
    {
      g_source_destroy (t->source);
      g_clear_pointer (&t->source, g_source_unref);
    }
}

static void
timer_free_cb (void *timer, void *opaque)
{
  VrNetUser *user = opaque;
  UserTimer *t = timer;

  timer_cancel (t);
  g_ptr_array_remove_fast (user->timers, t);
  g_free (t);
}

static void
timer_mod_cb (void *timer, int64_t expire_ms, void *opaque)
{
  VrNetUser *user = opaque;
  UserTimer *t = timer;
  int64_t now_ms = g_get_monotonic_time () / 1000;
  int64_t delay = expire_ms - now_ms;

  timer_cancel (t);
  if (user->stopped || !user->parent.context)
    return;
  t->source = g_timeout_source_new ((guint) CLAMP (delay, 0, G_MAXUINT));
  /* The source keeps the backend alive while it dispatches; user_stop() cancels it. */
  vr_net_backend_ref (&user->parent);
  g_source_set_callback (t->source, timer_cb, t, timer_source_unref_backend);
  g_source_set_static_name (t->source, "vireo-slirp-timer");
  g_source_attach (t->source, user->parent.context);
}

static void
register_poll_fd_cb (int fd, void *opaque)
{
}

static void
unregister_poll_fd_cb (int fd, void *opaque)
{
}

static void
notify_cb (void *opaque)
{
  VrNetUser *user = opaque;

  if (user->parent.context)
    g_main_context_wakeup (user->parent.context);
}

static const SlirpCb slirp_callbacks = {
  .send_packet = send_packet_cb,
  .guest_error = guest_error_cb,
  .clock_get_ns = clock_get_ns_cb,
  .timer_free = timer_free_cb,
  .timer_mod = timer_mod_cb,
  .register_poll_fd = register_poll_fd_cb,
  .unregister_poll_fd = unregister_poll_fd_cb,
  .notify = notify_cb,
  .timer_new_opaque = timer_new_opaque_cb,
};

/* ---- backend ops ------------------------------------------------------------------------- */

static void
user_resume (VrNetBackend *nb)
{
  if (nb->context)
    g_main_context_wakeup (nb->context);
}

static void
user_stop (VrNetBackend *nb)
{
  VrNetUser *user = (VrNetUser *) nb;
  UserSource *src;

  g_mutex_lock (&user->slirp_lock);
  user->stopped = true;
  for (guint i = 0; i < user->timers->len; i++)
    timer_cancel (g_ptr_array_index (user->timers, i));
  src = g_steal_pointer (&user->source);
  g_mutex_unlock (&user->slirp_lock);

  if (src)
    {
      g_source_destroy (&src->base);
      g_source_unref (&src->base);
    }
}

static bool
user_send (VrNetBackend       *nb,
           const struct iovec *iov,
           unsigned            n)
{
  VrNetUser *user = (VrNetUser *) nb;
  g_autofree uint8_t *flat = NULL;
  const uint8_t *frame;
  size_t len = 0;

  for (unsigned i = 0; i < n; i++)
    len += iov[i].iov_len;
  if (len < 14 || len > VR_NET_MAX_FRAME)
    return false;
  if (n == 1)
    frame = iov[0].iov_base;
  else
    {
      size_t off = 0;

      flat = g_malloc (len);
      for (unsigned i = 0; i < n; i++)
        {
          memcpy (flat + off, iov[i].iov_base, iov[i].iov_len);
          off += iov[i].iov_len;
        }
      frame = flat;
    }

  g_mutex_lock (&user->slirp_lock);
  if (!user->stopped)
    slirp_input (user->slirp, frame, (int) len);
  g_mutex_unlock (&user->slirp_lock);
  return true;
}

static void
user_finalize (VrNetBackend *nb)
{
  VrNetUser *user = (VrNetUser *) nb;

  /* Last reference: no source of ours is alive, no other thread uses slirp. */
  if (user->slirp)
    slirp_cleanup (user->slirp);
  if (user->timers)
    {
      /* slirp_cleanup() frees its timers; anything left is ours to drop. */
      for (guint i = 0; i < user->timers->len; i++)
        {
          UserTimer *t = g_ptr_array_index (user->timers, i);
          timer_cancel (t);
          g_free (t);
        }
      g_ptr_array_unref (user->timers);
    }
  g_mutex_clear (&user->slirp_lock);
}

static const VrNetBackendOps user_ops = {
  .kind = "user",
  .own_context = true,
  .stop = user_stop,
  .resume = user_resume,
  .send = user_send,
  .finalize = user_finalize,
};

/* ---- construction ------------------------------------------------------------------------ */

static struct in_addr
ipv4 (uint32_t host_order)
{
  struct in_addr a = { .s_addr = htonl (host_order) };
  return a;
}

static struct in6_addr
ipv6_fec0 (uint8_t last)
{
  struct in6_addr a = { 0 };

  a.s6_addr[0] = 0xfe;
  a.s6_addr[1] = 0xc0;
  a.s6_addr[15] = last;
  return a;
}

static bool
add_hostfwd (VrNetUser *user, const char *rule, GError **error)
{
  VrNetHostFwd f;
  char host[INET_ADDRSTRLEN];

  if (!vr_net_parse_hostfwd (rule, &f, error))
    return false;
  if (slirp_add_hostfwd (user->slirp, f.is_udp, f.host_addr, f.host_port, f.guest_addr,
                         f.guest_port) < 0)
    {
      int saved = errno;

      inet_ntop (AF_INET, &f.host_addr, host, sizeof host);
      g_set_error (error, VR_ERROR, VR_ERROR_BACKEND,
                   "Cannot forward host port %s:%u (%s) into the guest: %s", host,
                   f.host_port, f.is_udp ? "udp" : "tcp",
                   saved ? g_strerror (saved) : "the port is in use or not allowed");
      return false;
    }
  return true;
}

VrNetBackend *
vr_net_user_new (const char *const *hostfwds,
                 GMainContext      *io_context,
                 GError           **error)
{
  VrNetUser *user;
  UserSource *src;
  SlirpConfig cfg = { 0 };

  g_return_val_if_fail (io_context != NULL, NULL);

  user = (VrNetUser *) vr_net_backend_alloc (sizeof (VrNetUser), &user_ops, io_context);
  g_mutex_init (&user->slirp_lock);
  user->timers = g_ptr_array_new ();

  cfg.version = 4;
  cfg.restricted = 0;
  cfg.in_enabled = true;
  cfg.vnetwork = ipv4 (0x0a000200);       /* 10.0.2.0/24 */
  cfg.vnetmask = ipv4 (0xffffff00);
  cfg.vhost = ipv4 (0x0a000202);          /* 10.0.2.2: gateway, and the host */
  cfg.vdhcp_start = ipv4 (0x0a00020f);    /* 10.0.2.15 */
  cfg.vnameserver = ipv4 (0x0a000203);    /* 10.0.2.3 */
  cfg.in6_enabled = true;
  cfg.vprefix_addr6 = ipv6_fec0 (0);
  cfg.vprefix_len = 64;
  cfg.vhost6 = ipv6_fec0 (2);
  cfg.vnameserver6 = ipv6_fec0 (3);
  cfg.disable_host_loopback = false;
  cfg.enable_emu = false;

  user->slirp = slirp_new (&cfg, &slirp_callbacks, user);
  if (!user->slirp)
    {
      g_set_error_literal (error, VR_ERROR, VR_ERROR_BACKEND,
                           "Cannot start user networking (libslirp refused the configuration)");
      goto fail;
    }

  for (unsigned i = 0; hostfwds && hostfwds[i]; i++)
    if (!add_hostfwd (user, hostfwds[i], error))
      goto fail;

  src = (UserSource *) g_source_new (&user_source_funcs, sizeof (UserSource));
  src->user = (VrNetUser *) vr_net_backend_ref (&user->parent);
  src->fds = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  src->polled = g_ptr_array_new ();
  src->deadline = -1;
  g_source_set_static_name (&src->base, "vireo-slirp");
  user->source = src;
  g_source_attach (&src->base, io_context);

  return &user->parent;

fail:
  vr_net_backend_free (&user->parent);
  return NULL;
}
