/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The common part of the network backends: attachment to a device, flow control (the frames
 * a full device refused, kept in order until it has room again) and the parsers for the
 * --net option. See vr-net.h and vr-net-private.h.
 */

#include "config.h"

#include "vr-net-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../vr-machine.h"

/* Frames kept while the device is full; past this, new ones are dropped (TCP recovers). */
#define VR_NET_PENDING_MAX  512

static const uint8_t default_mac[6] = VR_NET_DEFAULT_MAC;

/* ---- lifetime ---------------------------------------------------------------------------- */

VrNetBackend *
vr_net_backend_alloc (size_t                 size,
                      const VrNetBackendOps *ops,
                      GMainContext          *context)
{
  VrNetBackend *nb;

  g_assert (size >= sizeof (VrNetBackend));
  nb = g_atomic_rc_box_alloc0 (size);
  nb->ops = ops;
  g_mutex_init (&nb->lock);
  g_mutex_init (&nb->cb_lock);
  g_queue_init (&nb->pending);
  if (context)
    nb->context = g_main_context_ref (context);
  return nb;
}

VrNetBackend *
vr_net_backend_ref (VrNetBackend *nb)
{
  return g_atomic_rc_box_acquire (nb);
}

static void
backend_release (gpointer data)
{
  VrNetBackend *nb = data;

  if (nb->ops->finalize)
    nb->ops->finalize (nb);
  g_queue_clear_full (&nb->pending, (GDestroyNotify) g_bytes_unref);
  g_clear_pointer (&nb->context, g_main_context_unref);
  g_mutex_clear (&nb->lock);
  g_mutex_clear (&nb->cb_lock);
}

void
vr_net_backend_unref (VrNetBackend *nb)
{
  g_atomic_rc_box_release_full (nb, backend_release);
}

const char *
vr_net_backend_get_kind (VrNetBackend *nb)
{
  g_return_val_if_fail (nb != NULL, NULL);
  return nb->ops->kind;
}

GMainContext *
vr_net_backend_dup_context (VrNetBackend *nb)
{
  GMainContext *ctx = NULL;

  g_mutex_lock (&nb->lock);
  if (!nb->closed && nb->context)
    ctx = g_main_context_ref (nb->context);
  g_mutex_unlock (&nb->lock);
  return ctx;
}

/* With nb->lock held. */
static void
clear_resume (VrNetBackend *nb)
{
  if (nb->resume)
    {
      g_source_destroy (nb->resume);
      g_clear_pointer (&nb->resume, g_source_unref);
    }
}

void
vr_net_backend_attach (VrNetBackend *nb,
                       GMainContext *context,
                       VrNetReceive  receive,
                       void         *opaque)
{
  g_return_if_fail (nb != NULL);
  g_return_if_fail (receive != NULL);

  g_mutex_lock (&nb->cb_lock);
  g_mutex_lock (&nb->lock);
  if (context && nb->context && nb->context != context && nb->ops->own_context)
    g_critical ("%s network: runs on the context it was made for", nb->ops->kind);
  else if (context && nb->context != context)
    {
      clear_resume (nb);
      g_clear_pointer (&nb->context, g_main_context_unref);
      nb->context = g_main_context_ref (context);
    }
  else if (!nb->context)
    nb->context = g_main_context_ref_thread_default ();
  nb->receive = receive;
  nb->opaque = opaque;
  g_mutex_unlock (&nb->lock);
  g_mutex_unlock (&nb->cb_lock);

  if (nb->ops->start)
    nb->ops->start (nb);
}

void
vr_net_backend_detach (VrNetBackend *nb)
{
  g_return_if_fail (nb != NULL);

  g_mutex_lock (&nb->cb_lock);
  g_mutex_lock (&nb->lock);
  nb->receive = NULL;
  nb->opaque = NULL;
  g_mutex_unlock (&nb->lock);
  g_mutex_unlock (&nb->cb_lock);
}

void
vr_net_backend_free (VrNetBackend *nb)
{
  if (!nb)
    return;

  vr_net_backend_detach (nb);
  g_mutex_lock (&nb->lock);
  nb->closed = true;
  clear_resume (nb);
  g_mutex_unlock (&nb->lock);
  if (nb->ops->stop)
    nb->ops->stop (nb);
  vr_net_backend_unref (nb);
}

bool
vr_net_backend_send (VrNetBackend       *nb,
                     const struct iovec *iov,
                     unsigned            n)
{
  g_return_val_if_fail (nb != NULL, false);

  return nb->ops->send (nb, iov, n);
}

/* ---- flow control ------------------------------------------------------------------------ */

bool
vr_net_backend_is_paused (VrNetBackend *nb)
{
  bool paused;

  g_mutex_lock (&nb->lock);
  paused = nb->paused;
  g_mutex_unlock (&nb->lock);
  return paused;
}

/* With nb->lock held. */
static void
keep_frame (VrNetBackend *nb, const uint8_t *frame, size_t len)
{
  if (g_queue_get_length (&nb->pending) >= VR_NET_PENDING_MAX)
    {
      if (nb->dropped++ == 0)
        g_message ("%s network: the guest is not taking frames; dropping some",
                   nb->ops->kind);
      return;
    }
  g_queue_push_tail (&nb->pending, g_bytes_new (frame, len));
}

bool
vr_net_backend_deliver (VrNetBackend  *nb,
                        const uint8_t *frame,
                        size_t         len)
{
  VrNetReceive receive;
  void *opaque;
  bool ok = true;

  g_mutex_lock (&nb->cb_lock);
  g_mutex_lock (&nb->lock);
  receive = nb->receive;
  opaque = nb->opaque;
  if (nb->closed || !receive)
    {
      /* Nobody listens: the frame goes nowhere, like a cable to no card. */
      g_mutex_unlock (&nb->lock);
      g_mutex_unlock (&nb->cb_lock);
      return true;
    }
  if (nb->paused)
    {
      keep_frame (nb, frame, len);
      g_mutex_unlock (&nb->lock);
      g_mutex_unlock (&nb->cb_lock);
      return false;
    }
  g_mutex_unlock (&nb->lock);

  if (!receive (opaque, frame, len))
    {
      g_mutex_lock (&nb->lock);
      nb->paused = true;
      keep_frame (nb, frame, len);
      g_mutex_unlock (&nb->lock);
      ok = false;
    }
  g_mutex_unlock (&nb->cb_lock);
  return ok;
}

static gboolean
resume_cb (gpointer data)
{
  VrNetBackend *nb = data;
  VrNetReceive receive;
  void *opaque;
  bool resumed = false;

  g_mutex_lock (&nb->cb_lock);
  g_mutex_lock (&nb->lock);
  if (nb->resume == g_main_current_source ())
    g_clear_pointer (&nb->resume, g_source_unref);
  receive = nb->receive;
  opaque = nb->opaque;
  if (nb->closed)
    goto out;
  for (;;)
    {
      GBytes *b = g_queue_peek_head (&nb->pending);
      gsize len;
      const uint8_t *data_;

      if (!b)
        break;
      if (receive)
        {
          /* receive() is called without nb->lock: the frame stays referenced by us. */
          g_bytes_ref (b);
          g_mutex_unlock (&nb->lock);
          data_ = g_bytes_get_data (b, &len);
          if (!receive (opaque, data_, len))
            {
              g_bytes_unref (b);
              g_mutex_lock (&nb->lock);
              goto out;   /* still full: the next accept_input tries again */
            }
          g_bytes_unref (b);
          g_mutex_lock (&nb->lock);
        }
      /* Only we (on this thread, under cb_lock) remove from the head. */
      g_bytes_unref (g_queue_pop_head (&nb->pending));
    }
  if (nb->paused)
    {
      nb->paused = false;
      resumed = true;
    }

out:
  g_mutex_unlock (&nb->lock);
  g_mutex_unlock (&nb->cb_lock);
  if (resumed && nb->ops->resume)
    nb->ops->resume (nb);
  return G_SOURCE_REMOVE;
}

void
vr_net_backend_accept_input (VrNetBackend *nb)
{
  g_return_if_fail (nb != NULL);

  g_mutex_lock (&nb->lock);
  if (nb->paused && !nb->closed && !nb->resume && nb->context)
    {
      nb->resume = g_idle_source_new ();
      g_source_set_priority (nb->resume, G_PRIORITY_DEFAULT);
      g_source_set_callback (nb->resume, resume_cb, vr_net_backend_ref (nb),
                             (GDestroyNotify) vr_net_backend_unref);
      g_source_set_static_name (nb->resume, "vireo-net-resume");
      g_source_attach (nb->resume, nb->context);
    }
  g_mutex_unlock (&nb->lock);
}

/* ---- parsers ----------------------------------------------------------------------------- */

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool
vr_net_parse_mac (const char *s,
                  uint8_t     mac[6],
                  GError    **error)
{
  uint8_t m[6];
  const char *p = s;

  g_return_val_if_fail (s != NULL, false);

  for (unsigned i = 0; i < 6; i++)
    {
      int hi = hex_digit (p[0]);
      int lo = hi >= 0 ? hex_digit (p[1]) : -1;

      if (hi < 0 || lo < 0)
        goto syntax;
      m[i] = (uint8_t) (hi << 4 | lo);
      p += 2;
      if (i < 5)
        {
          if (*p != ':' && *p != '-')
            goto syntax;
          p++;
        }
    }
  if (*p)
    goto syntax;
  if (m[0] & 1)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The MAC address “%s” is a multicast address; the first byte must be even "
                   "(for example 52:54:00:12:34:56)", s);
      return false;
    }
  if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The MAC address “%s” is all zeros", s);
      return false;
    }
  memcpy (mac, m, 6);
  return true;

syntax:
  g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
               "“%s” is not a MAC address: expected six hexadecimal bytes such as "
               "52:54:00:12:34:56", s);
  return false;
}

/* A port 1..65535 spanning exactly [s, end). */
static bool
parse_port (const char *s, const char *end, uint16_t *port)
{
  unsigned long v = 0;

  if (s == end || end - s > 5)
    return false;
  for (const char *p = s; p < end; p++)
    {
      if (*p < '0' || *p > '9')
        return false;
      v = v * 10 + (unsigned long) (*p - '0');
    }
  if (v == 0 || v > 65535)
    return false;
  *port = (uint16_t) v;
  return true;
}

/* An IPv4 address spanning [s, end), or INADDR_ANY when empty. */
static bool
parse_addr (const char *s, const char *end, struct in_addr *addr)
{
  char buf[INET_ADDRSTRLEN];

  if (s == end)
    {
      addr->s_addr = htonl (INADDR_ANY);
      return true;
    }
  if ((size_t) (end - s) >= sizeof buf)
    return false;
  memcpy (buf, s, (size_t) (end - s));
  buf[end - s] = '\0';
  return inet_pton (AF_INET, buf, addr) == 1;
}

#define HOSTFWD_SYNTAX "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"

bool
vr_net_parse_hostfwd (const char   *s,
                      VrNetHostFwd *fwd,
                      GError      **error)
{
  VrNetHostFwd f = { 0 };
  const char *p = s;
  const char *colon;
  const char *dash;
  const char *end;
  uint32_t guest;

  g_return_val_if_fail (s != NULL, false);

  /* Protocol (empty means tcp). */
  colon = strchr (p, ':');
  if (!colon)
    goto syntax;
  if (colon == p || (colon - p == 3 && g_ascii_strncasecmp (p, "tcp", 3) == 0))
    f.is_udp = false;
  else if (colon - p == 3 && g_ascii_strncasecmp (p, "udp", 3) == 0)
    f.is_udp = true;
  else
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: the protocol must be tcp or udp (" HOSTFWD_SYNTAX ")", s);
      return false;
    }
  p = colon + 1;

  /* Host side: [ADDR]:PORT up to the '-'. */
  dash = strchr (p, '-');
  if (!dash)
    goto syntax;
  colon = memchr (p, ':', (size_t) (dash - p));
  if (!colon)
    goto syntax;
  if (!parse_addr (p, colon, &f.host_addr))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: “%.*s” is not an IPv4 address", s, (int) (colon - p), p);
      return false;
    }
  if (!parse_port (colon + 1, dash, &f.host_port))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: the host port must be a number from 1 to 65535", s);
      return false;
    }
  p = dash + 1;

  /* Guest side: [ADDR]:PORT. */
  end = p + strlen (p);
  colon = strrchr (p, ':');
  if (!colon)
    goto syntax;
  if (!parse_addr (p, colon, &f.guest_addr))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: “%.*s” is not an IPv4 address", s, (int) (colon - p), p);
      return false;
    }
  if (!parse_port (colon + 1, end, &f.guest_port))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: the guest port must be a number from 1 to 65535", s);
      return false;
    }
  if (f.guest_addr.s_addr == htonl (INADDR_ANY))
    f.guest_addr.s_addr = htonl (0x0a00020f);   /* 10.0.2.15, the first DHCP address */
  guest = ntohl (f.guest_addr.s_addr);
  if ((guest & 0xffffff00u) != 0x0a000200u || (guest & 0xff) < 4 || (guest & 0xff) == 255)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Port forward “%s”: the guest address must lie in the guest network, "
                   "10.0.2.4 to 10.0.2.254 (the default is 10.0.2.15)", s);
      return false;
    }

  if (fwd)
    *fwd = f;
  return true;

syntax:
  g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
               "“%s” is not a port forward: expected " HOSTFWD_SYNTAX
               ", for example tcp:127.0.0.1:2222-:22", s);
  return false;
}

void
vr_net_config_init (VrNetConfig *config)
{
  memset (config, 0, sizeof *config);
  config->kind = VR_NET_NONE;
  memcpy (config->mac, default_mac, 6);
}

void
vr_net_config_clear (VrNetConfig *config)
{
  g_clear_pointer (&config->hostfwds, g_strfreev);
  g_clear_pointer (&config->tap_ifname, g_free);
  vr_net_config_init (config);
}

bool
vr_net_config_parse (VrNetConfig *config,
                     const char  *spec,
                     GError     **error)
{
  g_auto (GStrv) parts = NULL;
  g_autoptr (GStrvBuilder) fwds = g_strv_builder_new ();
  VrNetConfig c;
  bool any_fwd = false;

  g_return_val_if_fail (config != NULL, false);
  g_return_val_if_fail (spec != NULL, false);

  vr_net_config_init (&c);
  parts = g_strsplit (spec, ",", -1);
  if (!parts[0] || !*parts[0])
    goto syntax;

  if (g_str_equal (parts[0], "none"))
    c.kind = VR_NET_NONE;
  else if (g_str_equal (parts[0], "user"))
    c.kind = VR_NET_USER;
  else if (g_str_has_prefix (parts[0], "tap:"))
    {
      const char *name = parts[0] + 4;

      if (!*name || strlen (name) >= 16 || strchr (name, '/'))
        {
          g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                       "--net %s: a tap interface name has 1 to 15 characters", spec);
          goto fail;
        }
      c.kind = VR_NET_TAP;
      c.tap_ifname = g_strdup (name);
    }
  else
    goto syntax;

  for (unsigned i = 1; parts[i]; i++)
    {
      const char *opt = parts[i];

      if (c.kind == VR_NET_NONE)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                       "--net none takes no options (got “%s”)", opt);
          goto fail;
        }
      if (g_str_has_prefix (opt, "mac="))
        {
          if (!vr_net_parse_mac (opt + 4, c.mac, error))
            goto fail;
        }
      else if (g_str_has_prefix (opt, "hostfwd="))
        {
          if (c.kind != VR_NET_USER)
            {
              g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                           "--net %s: port forwards (hostfwd=) need user networking", spec);
              goto fail;
            }
          if (!vr_net_parse_hostfwd (opt + 8, NULL, error))
            goto fail;
          g_strv_builder_add (fwds, opt + 8);
          any_fwd = true;
        }
      else
        {
          g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                       "--net: unknown option “%s” (known: hostfwd=RULE, mac=MAC)", opt);
          goto fail;
        }
    }

  if (any_fwd)
    c.hostfwds = g_strv_builder_end (fwds);
  vr_net_config_clear (config);
  *config = c;
  return true;

syntax:
  g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
               "--net “%s”: expected user[,hostfwd=RULE]...[,mac=MAC], tap:NAME[,mac=MAC] "
               "or none", spec);
fail:
  vr_net_config_clear (&c);
  return false;
}

VrNetBackend *
vr_net_backend_new (const VrNetConfig *config,
                    GMainContext      *io_context,
                    GError           **error)
{
  g_return_val_if_fail (config != NULL, NULL);

  switch (config->kind)
    {
    case VR_NET_USER:
      return vr_net_user_new ((const char *const *) config->hostfwds, io_context, error);
    case VR_NET_TAP:
      {
        VrNetBackend *nb = vr_net_tap_new (config->tap_ifname, error);

        if (nb && io_context)
          {
            g_mutex_lock (&nb->lock);
            nb->context = g_main_context_ref (io_context);
            g_mutex_unlock (&nb->lock);
          }
        return nb;
      }
    case VR_NET_NONE:
    default:
      g_set_error_literal (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                           "No network backend was asked for");
      return NULL;
    }
}
