/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The network backends without a guest: the --net parsers (every rule they refuse), and the
 * user backend (libslirp) driven on this thread's context: DHCP and ARP answers, flow control
 * (frames a full device refused come back in order), the forwarded port released by free.
 */

#include <arpa/inet.h>
#include <gio/gio.h>
#include <string.h>

#include "net/vr-net.h"
#include "vr-machine.h"

/* ---- parsers ----------------------------------------------------------------------------- */

static void
test_parse_mac (void)
{
  static const char *bad[] = {
    "", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54:00:12:34:5", "52:54:00:12:34:5g",
    "52-54-00-12-34-56x", "5254.0012.3456", "01:00:5e:00:00:01", "00:00:00:00:00:00",
    "52:54:00:12:34:56 ", " 52:54:00:12:34:56", "52::54:00:12:34:56",
  };
  uint8_t mac[6] = { 0 };
  const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

  g_assert_true (vr_net_parse_mac ("52:54:00:ab:cd:ef", mac, NULL));
  g_assert_cmpmem (mac, 6, want, 6);
  memset (mac, 0, 6);
  g_assert_true (vr_net_parse_mac ("52-54-00-AB-CD-EF", mac, NULL));
  g_assert_cmpmem (mac, 6, want, 6);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      uint8_t before[6];

      memcpy (before, mac, 6);
      g_assert_false (vr_net_parse_mac (bad[i], mac, &error));
      g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
      g_assert_cmpmem (mac, 6, before, 6);   /* untouched on failure */
    }
}

static void
test_parse_hostfwd (void)
{
  static const struct
  {
    const char *rule;
    bool        udp;
    const char *host;
    unsigned    host_port;
    const char *guest;
    unsigned    guest_port;
  } good[] = {
    { "tcp:127.0.0.1:2222-:22", false, "127.0.0.1", 2222, "10.0.2.15", 22 },
    { "udp::5555-10.0.2.15:5555", true, "0.0.0.0", 5555, "10.0.2.15", 5555 },
    { "::8080-10.0.2.20:80", false, "0.0.0.0", 8080, "10.0.2.20", 80 },
    { "TCP:0.0.0.0:65535-:1", false, "0.0.0.0", 65535, "10.0.2.15", 1 },
  };
  static const char *bad[] = {
    "", "tcp", "tcp:", "tcp:2222-:22", "tcp::2222", "tcp::2222-", "tcp::2222-:",
    "tcp::0-:22", "tcp::2222-:0", "tcp::65536-:22", "tcp::2222-:99999", "tcp::-1-:22",
    "tcp::22a-:22", "sctp::2222-:22", "tcp:localhost:2222-:22", "tcp:1.2.3:2222-:22",
    "tcp::2222-10.0.3.15:22", "tcp::2222-10.0.2.2:22", "tcp::2222-10.0.2.255:22",
    "tcp::2222-:22-", "tcp:[::1]:2222-:22", "tcp::2222-10.0.2.15:22:1",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      VrNetHostFwd f;
      char a[INET_ADDRSTRLEN];

      g_assert_true (vr_net_parse_hostfwd (good[i].rule, &f, &error));
      g_assert_no_error (error);
      g_assert_cmpint (f.is_udp, ==, good[i].udp);
      g_assert_cmpuint (f.host_port, ==, good[i].host_port);
      g_assert_cmpuint (f.guest_port, ==, good[i].guest_port);
      g_assert_cmpstr (inet_ntop (AF_INET, &f.host_addr, a, sizeof a), ==, good[i].host);
      g_assert_cmpstr (inet_ntop (AF_INET, &f.guest_addr, a, sizeof a), ==, good[i].guest);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;

      g_test_message ("rule “%s”", bad[i]);
      g_assert_false (vr_net_parse_hostfwd (bad[i], NULL, &error));
      g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
      /* The message quotes the rule, so the user sees which one. */
      g_assert_nonnull (strstr (error->message, bad[i]));
    }
}

static void
test_config_parse (void)
{
  static const char *bad[] = {
    "", "slirp", "user,", "user,mac", "user,mac=zz", "user,foo=bar", "none,mac=52:54:00:00:00:01",
    "tap:", "tap:a/b", "tap:0123456789abcdef", "tap:tap0,hostfwd=tcp::1-:2",
    "user,hostfwd=tcp::1", "tap",
  };
  g_auto (VrNetConfig) c = { 0 };
  const uint8_t def[6] = VR_NET_DEFAULT_MAC;
  const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x09 };

  vr_net_config_init (&c);
  g_assert_cmpint (c.kind, ==, VR_NET_NONE);
  g_assert_cmpmem (c.mac, 6, def, 6);

  g_assert_true (vr_net_config_parse (&c, "user", NULL));
  g_assert_cmpint (c.kind, ==, VR_NET_USER);
  g_assert_null (c.hostfwds);
  g_assert_cmpmem (c.mac, 6, def, 6);

  g_assert_true (vr_net_config_parse (&c, "user,hostfwd=tcp::2222-:22,mac=52:54:00:00:00:09,"
                                      "hostfwd=udp:127.0.0.1:53-:53", NULL));
  g_assert_cmpint (c.kind, ==, VR_NET_USER);
  g_assert_cmpuint (g_strv_length (c.hostfwds), ==, 2);
  g_assert_cmpstr (c.hostfwds[0], ==, "tcp::2222-:22");
  g_assert_cmpstr (c.hostfwds[1], ==, "udp:127.0.0.1:53-:53");
  g_assert_cmpmem (c.mac, 6, other, 6);

  g_assert_true (vr_net_config_parse (&c, "tap:vireo0,mac=52:54:00:00:00:09", NULL));
  g_assert_cmpint (c.kind, ==, VR_NET_TAP);
  g_assert_cmpstr (c.tap_ifname, ==, "vireo0");
  g_assert_null (c.hostfwds);
  g_assert_cmpmem (c.mac, 6, other, 6);

  g_assert_true (vr_net_config_parse (&c, "none", NULL));
  g_assert_cmpint (c.kind, ==, VR_NET_NONE);
  g_assert_null (c.tap_ifname);

  g_assert_true (vr_net_config_parse (&c, "tap:vireo0", NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;

      g_test_message ("spec “%s”", bad[i]);
      g_assert_false (vr_net_config_parse (&c, bad[i], &error));
      g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
      /* A failed parse leaves the configuration as it was. */
      g_assert_cmpint (c.kind, ==, VR_NET_TAP);
      g_assert_cmpstr (c.tap_ifname, ==, "vireo0");
    }
}

static void
test_tap_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (VrNetBackend) nb = NULL;

  g_assert_null (vr_net_tap_new ("", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_null (vr_net_tap_new ("0123456789abcdef", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_clear_error (&error);

  /* Without CAP_NET_ADMIN (or /dev/net/tun) this fails, and says which interface. */
  nb = vr_net_tap_new ("vireo-test-tap", &error);
  if (nb)
    {
      g_assert_no_error (error);
      g_assert_cmpstr (vr_net_backend_get_kind (nb), ==, "tap");
    }
  else
    {
      g_test_message ("%s", error->message);
      g_assert_error (error, VR_ERROR, VR_ERROR_BACKEND);
      g_assert_nonnull (strstr (error->message, "vireo-test-tap"));
    }
}

/* ---- the user backend -------------------------------------------------------------------- */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

typedef struct
{
  GPtrArray *frames;       /* GBytes received */
  unsigned   refuse;       /* refuse this many more frames */
  unsigned   refused;
} Sink;

static bool
sink_receive (void *opaque, const uint8_t *frame, size_t len)
{
  Sink *s = opaque;

  if (s->refuse)
    {
      s->refuse--;
      s->refused++;
      return false;
    }
  g_ptr_array_add (s->frames, g_bytes_new (frame, len));
  return true;
}

static void
put16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
}

static void
put32 (uint8_t *p, uint32_t v)
{
  put16 (p, (uint16_t) (v >> 16));
  put16 (p + 2, (uint16_t) v);
}

static uint16_t
get16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t) get16 (p) << 16 | get16 (p + 2);
}

static void
send_frame (VrNetBackend *nb, const uint8_t *frame, size_t len)
{
  struct iovec iov[2] = {
    { (void *) frame, 10 },
    { (void *) (frame + 10), len - 10 },
  };

  /* Two pieces: the backend gathers. */
  g_assert_true (vr_net_backend_send (nb, iov, 2));
}

/* An ARP request from the guest (10.0.2.15) for @ip. */
static void
send_arp_request (VrNetBackend *nb, uint32_t ip)
{
  uint8_t f[60] = { 0 };

  memset (f, 0xff, 6);
  memcpy (f + 6, guest_mac, 6);
  put16 (f + 12, 0x0806);
  put16 (f + 14, 1);
  put16 (f + 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  put16 (f + 20, 1);
  memcpy (f + 22, guest_mac, 6);
  put32 (f + 28, 0x0a00020f);
  put32 (f + 38, ip);
  send_frame (nb, f, sizeof f);
}

/* The sender IP of an ARP reply to us, or 0. */
static uint32_t
arp_reply_sender (GBytes *b)
{
  gsize len;
  const uint8_t *f = g_bytes_get_data (b, &len);

  if (len < 42 || get16 (f + 12) != 0x0806 || get16 (f + 20) != 2 || memcmp (f, guest_mac, 6))
    return 0;
  return get32 (f + 28);
}

static void
iterate_until (GMainContext *ctx, Sink *s, unsigned n)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (s->frames->len < n && g_get_monotonic_time () < end)
    if (!g_main_context_iteration (ctx, FALSE))
      g_usleep (1000);
}

static void
test_user_arp_dhcp (void)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (VrNetBackend) nb = NULL;
  Sink s = { .frames = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref) };
  uint8_t f[14 + 20 + 8 + 300] = { 0 };
  uint8_t *ip = f + 14, *udp = ip + 20, *d = udp + 8;
  const uint8_t *r;
  gsize len;
  bool offer = false;

  nb = vr_net_user_new (NULL, ctx, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (vr_net_backend_get_kind (nb), ==, "user");
  vr_net_backend_attach (nb, NULL, sink_receive, &s);

  /* The gateway answers ARP with slirp's MAC. */
  send_arp_request (nb, 0x0a000202);
  iterate_until (ctx, &s, 1);
  g_assert_cmpuint (s.frames->len, ==, 1);
  g_assert_cmphex (arp_reply_sender (g_ptr_array_index (s.frames, 0)), ==, 0x0a000202);

  /* DHCP DISCOVER (no checksum) gets an OFFER of 10.0.2.15. */
  memset (f, 0xff, 6);
  memcpy (f + 6, guest_mac, 6);
  put16 (f + 12, 0x0800);
  ip[0] = 0x45;
  put16 (ip + 2, 20 + 8 + 300);
  ip[8] = 64;
  ip[9] = 17;
  put32 (ip + 16, 0xffffffff);
  {
    uint32_t sum = 0;

    for (int i = 0; i < 20; i += 2)
      sum += get16 (ip + i);
    while (sum >> 16)
      sum = (sum & 0xffff) + (sum >> 16);
    put16 (ip + 10, (uint16_t) ~sum);
  }
  put16 (udp, 68);
  put16 (udp + 2, 67);
  put16 (udp + 4, 8 + 300);
  d[0] = 1;
  d[1] = 1;
  d[2] = 6;
  put32 (d + 4, 0x12345678);
  memcpy (d + 28, guest_mac, 6);
  put32 (d + 236, 0x63825363);
  d[240] = 53;
  d[241] = 1;
  d[242] = 1;
  d[243] = 255;
  send_frame (nb, f, sizeof f);
  iterate_until (ctx, &s, 2);
  g_assert_cmpuint (s.frames->len, ==, 2);
  r = g_bytes_get_data (g_ptr_array_index (s.frames, 1), &len);
  g_assert_cmpuint (len, >=, 14 + 20 + 8 + 240);
  g_assert_cmpuint (get16 (r + 12), ==, 0x0800);
  g_assert_cmpuint (r[14 + 9], ==, 17);
  g_assert_cmpuint (get16 (r + 14 + 20 + 2), ==, 68);
  d = (uint8_t *) r + 14 + 20 + 8;
  g_assert_cmphex (get32 (d + 4), ==, 0x12345678);
  g_assert_cmphex (get32 (d + 16), ==, 0x0a00020f);
  for (gsize i = 240; i + 2 < len - 42 && d[i] != 255; i += d[i] ? 2u + d[i + 1] : 1)
    if (d[i] == 53 && d[i + 2] == 2)
      offer = true;
  g_assert_true (offer);

  vr_net_backend_free (g_steal_pointer (&nb));
  g_ptr_array_unref (s.frames);
}

/* Frames the device refused are kept, nothing new is read meanwhile, and all come back in
 * order once the device has room. */
static void
test_user_flow_control (void)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  VrNetBackend *nb;
  Sink s = { .frames = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref) };
  static const uint32_t order[] = { 0x0a000202, 0x0a000203, 0x0a000202, 0x0a000203 };

  nb = vr_net_user_new (NULL, ctx, &error);
  g_assert_no_error (error);
  vr_net_backend_attach (nb, ctx, sink_receive, &s);

  s.refuse = 1;
  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    send_arp_request (nb, order[i]);
  while (g_main_context_iteration (ctx, FALSE))
    ;
  /* The first reply was refused; the others were kept behind it, not offered. */
  g_assert_cmpuint (s.refused, ==, 1);
  g_assert_cmpuint (s.frames->len, ==, 0);

  /* Still full: one more refusal, still nothing lost. */
  s.refuse = 1;
  vr_net_backend_accept_input (nb);
  while (g_main_context_iteration (ctx, FALSE))
    ;
  g_assert_cmpuint (s.refused, ==, 2);
  g_assert_cmpuint (s.frames->len, ==, 0);

  vr_net_backend_accept_input (nb);
  iterate_until (ctx, &s, G_N_ELEMENTS (order));
  g_assert_cmpuint (s.frames->len, ==, G_N_ELEMENTS (order));
  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    g_assert_cmphex (arp_reply_sender (g_ptr_array_index (s.frames, i)), ==, order[i]);

  /* Detached: frames go nowhere, and nothing is called. */
  vr_net_backend_detach (nb);
  send_arp_request (nb, 0x0a000202);
  while (g_main_context_iteration (ctx, FALSE))
    ;
  g_assert_cmpuint (s.frames->len, ==, G_N_ELEMENTS (order));

  vr_net_backend_free (nb);
  g_ptr_array_unref (s.frames);
}

/* A forwarded port is listening while the backend lives, and free releases it. */
static void
test_user_hostfwd_lifetime (void)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) addr = NULL;
  g_autoptr (GSocket) probe = NULL;
  g_autofree char *rule = NULL;
  const char *rules[2] = { NULL, NULL };
  VrNetBackend *nb;
  guint16 port;

  /* A port that was free a moment ago. */
  probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                        &error);
  g_assert_no_error (error);
  g_socket_bind (probe, any, FALSE, &error);
  g_assert_no_error (error);
  addr = g_socket_get_local_address (probe, &error);
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr));
  g_socket_close (probe, NULL);
  g_clear_object (&probe);

  rule = g_strdup_printf ("tcp:127.0.0.1:%u-:22", port);
  rules[0] = rule;
  nb = vr_net_user_new (rules, ctx, &error);
  g_assert_no_error (error);

  /* A second one on the same port fails, and the message names the port. */
  {
    g_autoptr (GError) busy = NULL;
    g_autofree char *needle = g_strdup_printf ("127.0.0.1:%u", port);

    g_assert_null (vr_net_user_new (rules, ctx, &busy));
    g_assert_error (busy, VR_ERROR, VR_ERROR_BACKEND);
    g_assert_nonnull (strstr (busy->message, needle));
  }

  vr_net_backend_free (nb);
  g_clear_object (&addr);
  addr = g_inet_socket_address_new (lo, port);
  probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                        &error);
  g_assert_no_error (error);
  g_socket_bind (probe, addr, TRUE, &error);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/net/parse-mac", test_parse_mac);
  g_test_add_func ("/net/parse-hostfwd", test_parse_hostfwd);
  g_test_add_func ("/net/config-parse", test_config_parse);
  g_test_add_func ("/net/tap-errors", test_tap_errors);
  g_test_add_func ("/net/user-arp-dhcp", test_user_arp_dhcp);
  g_test_add_func ("/net/user-flow-control", test_user_flow_control);
  g_test_add_func ("/net/user-hostfwd-lifetime", test_user_hostfwd_lifetime);

  return g_test_run ();
}
