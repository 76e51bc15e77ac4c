/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-net behind user networking (libslirp), from both sides: the `net` test guest
 * (tests/guests/net.c) runs on qemu-system-x86_64 (the oracle) and on vireo-run, while this
 * program plays the host's servers on 127.0.0.1.
 *
 *  /net/basic-*      DHCP, ARP, a UDP exchange with our UDP server (one reply larger than a
 *                    receive buffer; a burst larger than the receive ring, which must arrive
 *                    whole and in order), a TCP exchange with our TCP server. The serial lines
 *                    must be the expected ones on both engines, and the servers must have
 *                    seen exactly the guest's messages.
 *  /net/hostfwd-*    --net user,hostfwd=tcp:127.0.0.1:PORT-:7: the guest listens, we
 *                    connect to the host port and get our line back transformed.
 *  /net/throughput-* 1 MiB from the guest over TCP; we check every byte and report the rate.
 *  /net/bad-buffers-vireo
 *                    malformed chains (a transmit chain shorter than the header, receive
 *                    buffers that are device-readable or smaller than the header) make the
 *                    device ask for a reset, and a reset brings it back. Vireo only: QEMU 7.2
 *                    aborts on the first one (iov_copy: Assertion `offset == 0' failed).
 *  /net/bad-*        vireo-run refuses a malformed hostfwd rule and a host port in use, with
 *                    a message that names the problem (status 2).
 *
 * Environment: VIREO_RUN, VIREO_GUEST_DIR, VIREO_QEMU as for test-guests.c.
 */

#include <gio/gio.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define RUN_TIMEOUT   200       /* seconds: what vireo-run is told */
#define KILL_TIMEOUT  300       /* seconds: when we give up on a child */
#define GUEST_MAC     "52:54:00:12:34:56"
#define UDP_MESSAGE   "ping from the vireo test guest"
#define TCP_MESSAGE   "hello from the vireo test guest over tcp\n"
#define ECHO_MESSAGE  "hello through a forwarded port\n"
#define THROUGHPUT_MB 1
#define BURST_COUNT   100

typedef enum
{
  ENGINE_QEMU,
  ENGINE_VIREO,
} Engine;

typedef enum
{
  CASE_BASIC,
  CASE_BASIC_MSIX,
  CASE_HOSTFWD,
  CASE_THROUGHPUT,
  CASE_BAD,
} CaseKind;

typedef struct
{
  CaseKind kind;
  Engine   engine;
} CaseData;

/* ---------------------------------------------------------------- servers */

typedef struct
{
  GSocket   *udp;
  GSocket   *tcp;
  guint16    udp_port;
  guint16    tcp_port;
  GThread   *udp_thread;
  GThread   *tcp_thread;
  gint       stop;

  GMutex     lock;
  GPtrArray *udp_seen;          /* char *: datagrams received */
  GPtrArray *tcp_seen;          /* char *: lines received */
  guint64    stream_bytes;      /* the last connection without a line: bytes */
  gboolean   stream_ok;         /* ... all in the expected pattern */
  double     stream_seconds;
} Servers;

static char *
upper_dup (const char *s, gsize len)
{
  char *u = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    u[i] = g_ascii_toupper (s[i]);
  u[len] = 0;
  return u;
}

static gpointer
udp_server (gpointer data)
{
  Servers *s = data;

  while (!g_atomic_int_get (&s->stop))
    {
      g_autoptr (GSocketAddress) from = NULL;
      g_autoptr (GError) error = NULL;
      char buf[2048];
      gssize n = g_socket_receive_from (s->udp, &from, buf, sizeof buf - 1, NULL, &error);

      if (n < 0)
        continue;   /* timeout: look at stop */
      buf[n] = 0;
      g_mutex_lock (&s->lock);
      g_ptr_array_add (s->udp_seen, g_strndup (buf, (gsize) n));
      g_mutex_unlock (&s->lock);
      if (n == 5 && memcmp (buf, "burst", 5) == 0)
        {
          /* All at once: far more than the guest's receive ring holds. */
          for (guint i = 0; i < BURST_COUNT; i++)
            {
              char b[16];

              g_snprintf (b, sizeof b, "BURST:%03u", i);
              g_socket_send_to (s->udp, from, b, strlen (b), NULL, NULL);
            }
        }
      else if (n == 3 && memcmp (buf, "big", 3) == 0)
        {
          guint8 big[1400];

          for (guint i = 0; i < sizeof big; i++)
            big[i] = (guint8) (i * 7);
          g_socket_send_to (s->udp, from, (const char *) big, sizeof big, NULL, NULL);
        }
      else
        {
          g_autofree char *u = upper_dup (buf, (gsize) n);
          g_autofree char *reply = g_strconcat ("UDP:", u, NULL);

          g_socket_send_to (s->udp, from, reply, strlen (reply), NULL, NULL);
        }
    }
  return NULL;
}

/* One connection: a line gets "TCP:" + the line in capitals and a close; anything else is
 * a stream, counted and checked against the guest's pattern until end-of-file. */
static void
serve_tcp (Servers *s, GSocket *c)
{
  g_autoptr (GString) line = g_string_new (NULL);
  guint64 total = 0;
  gboolean ok = TRUE;
  gint64 t0 = 0;

  g_socket_set_timeout (c, 120);
  for (;;)
    {
      char buf[65536];
      gssize n = g_socket_receive (c, buf, sizeof buf, NULL, NULL);

      if (n <= 0)
        break;
      if (total == 0)
        t0 = g_get_monotonic_time ();
      for (gssize i = 0; i < n; i++)
        if (buf[i] != 'a' + (char) ((total + (guint64) i) % 26))
          ok = FALSE;
      if (total < 1024)
        g_string_append_len (line, buf, MIN (n, (gssize) (1024 - total)));
      total += (guint64) n;
      if (total < 1024 && line->len && line->str[line->len - 1] == '\n')
        {
          g_autofree char *u = upper_dup (line->str, line->len);
          g_autofree char *reply = g_strconcat ("TCP:", u, NULL);

          g_mutex_lock (&s->lock);
          g_ptr_array_add (s->tcp_seen, g_strdup (line->str));
          g_mutex_unlock (&s->lock);
          g_socket_send (c, reply, strlen (reply), NULL, NULL);
          g_socket_shutdown (c, FALSE, TRUE, NULL);
          /* Wait for the guest's FIN, then close. */
          while (g_socket_receive (c, buf, sizeof buf, NULL, NULL) > 0)
            ;
          return;
        }
    }
  g_mutex_lock (&s->lock);
  s->stream_bytes = total;
  s->stream_ok = ok;
  s->stream_seconds = (g_get_monotonic_time () - t0) / 1e6;
  g_mutex_unlock (&s->lock);
}

static gpointer
tcp_server (gpointer data)
{
  Servers *s = data;

  while (!g_atomic_int_get (&s->stop))
    {
      g_autoptr (GSocket) c = g_socket_accept (s->tcp, NULL, NULL);

      if (c)
        {
          serve_tcp (s, c);
          g_socket_close (c, NULL);
        }
    }
  return NULL;
}

static GSocket *
bind_local (GSocketType type, guint16 *port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, type,
                                type == G_SOCKET_TYPE_STREAM ? G_SOCKET_PROTOCOL_TCP
                                                             : G_SOCKET_PROTOCOL_UDP,
                                &error);

  g_assert_no_error (error);
  g_socket_bind (sock, any, TRUE, &error);
  g_assert_no_error (error);
  if (type == G_SOCKET_TYPE_STREAM)
    {
      g_socket_listen (sock, &error);
      g_assert_no_error (error);
    }
  bound = g_socket_get_local_address (sock, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  /* Threads wake up once a second to look at the stop flag. */
  g_socket_set_timeout (sock, 1);
  return sock;
}

static void
servers_start (Servers *s)
{
  memset (s, 0, sizeof *s);
  g_mutex_init (&s->lock);
  s->udp_seen = g_ptr_array_new_with_free_func (g_free);
  s->tcp_seen = g_ptr_array_new_with_free_func (g_free);
  s->udp = bind_local (G_SOCKET_TYPE_DATAGRAM, &s->udp_port);
  s->tcp = bind_local (G_SOCKET_TYPE_STREAM, &s->tcp_port);
  s->udp_thread = g_thread_new ("udp-server", udp_server, s);
  s->tcp_thread = g_thread_new ("tcp-server", tcp_server, s);
}

static void
servers_stop (Servers *s)
{
  g_atomic_int_set (&s->stop, 1);
  g_thread_join (s->udp_thread);
  g_thread_join (s->tcp_thread);
  g_clear_object (&s->udp);
  g_clear_object (&s->tcp);
  g_clear_pointer (&s->udp_seen, g_ptr_array_unref);
  g_clear_pointer (&s->tcp_seen, g_ptr_array_unref);
  g_mutex_clear (&s->lock);
}

/* A free TCP port on 127.0.0.1 (free a moment ago). */
static guint16
free_port (void)
{
  guint16 port;
  g_autoptr (GSocket) s = bind_local (G_SOCKET_TYPE_STREAM, &port);

  g_socket_close (s, NULL);
  return port;
}

/* ------------------------------------------------------- the hostfwd client */

typedef struct
{
  guint16  port;
  gint     stop;
  char    *reply;
  int      attempts;
} EchoClient;

/* Connects to the forwarded port until the guest answers (slirp accepts at once and
 * retries its SYN towards the guest until the guest listens). */
static gpointer
echo_client (gpointer data)
{
  EchoClient *ec = data;
  gint64 end = g_get_monotonic_time () + (KILL_TIMEOUT - 20) * G_USEC_PER_SEC;

  while (!g_atomic_int_get (&ec->stop) && g_get_monotonic_time () < end)
    {
      g_autoptr (GSocketClient) client = g_socket_client_new ();
      g_autoptr (GSocketConnection) conn = NULL;
      g_autoptr (GString) got = g_string_new (NULL);
      GSocket *sock;

      ec->attempts++;
      g_socket_client_set_timeout (client, 90);
      conn = g_socket_client_connect_to_host (client, "127.0.0.1", ec->port, NULL, NULL);
      if (!conn)
        {
          g_usleep (G_USEC_PER_SEC / 2);
          continue;
        }
      sock = g_socket_connection_get_socket (conn);
      g_socket_send (sock, ECHO_MESSAGE, strlen (ECHO_MESSAGE), NULL, NULL);
      for (;;)
        {
          char buf[1024];
          gssize n = g_socket_receive (sock, buf, sizeof buf, NULL, NULL);

          if (n <= 0)
            break;
          g_string_append_len (got, buf, n);
        }
      if (got->len)
        {
          ec->reply = g_string_free (g_steal_pointer (&got), FALSE);
          break;
        }
      g_usleep (G_USEC_PER_SEC / 2);
    }
  return NULL;
}

/* ------------------------------------------------------------- running */

typedef struct
{
  int       status;
  gboolean  timed_out;
  char     *out;
  char     *err;
  double    seconds;
} RunResult;

typedef struct
{
  gboolean  done;
  GBytes   *out;
  GBytes   *err;
  GError   *error;
} Wait;

static void
communicate_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Wait *w = user_data;

  g_subprocess_communicate_finish (G_SUBPROCESS (source), res, &w->out, &w->err, &w->error);
  w->done = TRUE;
}

static gboolean
timeout_cb (gpointer user_data)
{
  GSubprocess *proc = user_data;

  g_object_set_data (G_OBJECT (proc), "timed-out", GINT_TO_POINTER (1));
  g_subprocess_force_exit (proc);
  return G_SOURCE_REMOVE;
}

static char *
bytes_to_string (GBytes *b)
{
  gsize len = 0;
  const char *data = b ? g_bytes_get_data (b, &len) : NULL;

  return g_utf8_make_valid (data ? data : "", (gssize) len);
}

static void
run_command (GPtrArray *argv, RunResult *r)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSource) timeout = NULL;
  g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
  g_autofree char *cmd = NULL;
  Wait w = { 0 };
  gint64 t0;

  memset (r, 0, sizeof *r);
  g_ptr_array_add (argv, NULL);
  cmd = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("run: %s", cmd);

  g_main_context_push_thread_default (ctx);
  t0 = g_get_monotonic_time ();
  proc = g_subprocess_newv ((const char *const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                            | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  timeout = g_timeout_source_new_seconds (KILL_TIMEOUT);
  g_source_set_callback (timeout, timeout_cb, proc, NULL);
  g_source_attach (timeout, ctx);
  g_subprocess_communicate_async (proc, empty, NULL, communicate_cb, &w);
  while (!w.done)
    g_main_context_iteration (ctx, TRUE);
  g_subprocess_wait (proc, NULL, NULL);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (ctx);

  r->seconds = (g_get_monotonic_time () - t0) / 1e6;
  r->timed_out = g_object_get_data (G_OBJECT (proc), "timed-out") != NULL;
  r->status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  r->out = bytes_to_string (w.out);
  r->err = bytes_to_string (w.err);
  g_clear_pointer (&w.out, g_bytes_unref);
  g_clear_pointer (&w.err, g_bytes_unref);
  if (w.error)
    g_test_message ("communicate: %s", w.error->message);
  g_clear_error (&w.error);
  g_test_message ("exit status %d after %.1f s%s", r->status, r->seconds,
                  r->timed_out ? " (killed: timeout)" : "");
}

static void
run_result_clear (RunResult *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

static void
dump_output (const char *who, const RunResult *r)
{
  g_auto (GStrv) out = g_strsplit (r->out, "\n", -1);
  g_auto (GStrv) err = g_strsplit (r->err, "\n", -1);

  for (int i = 0; out[i]; i++)
    if (out[i][0])
      g_test_message ("%s serial| %s", who, out[i]);
  for (int i = 0; err[i]; i++)
    if (err[i][0])
      g_test_message ("%s stderr| %s", who, err[i]);
}

/* Serial output without "info: " lines, empty lines and '\r'. */
static char *
normalise (const char *out)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  GString *s = g_string_new (NULL);

  for (int i = 0; lines[i]; i++)
    {
      char *l = lines[i];

      g_strdelimit (l, "\r", ' ');
      g_strchomp (l);
      if (!*l || g_str_has_prefix (l, "info: "))
        continue;
      g_string_append (s, l);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

static const char *
guest_dir (void)
{
  const char *d = g_getenv ("VIREO_GUEST_DIR");

  if (d && *d)
    return d;
  d = g_getenv ("G_TEST_BUILDDIR");
  return d && *d ? d : ".";
}

static char *
find_qemu (void)
{
  const char *q = g_getenv ("VIREO_QEMU");

  if (q)
    return *q ? g_strdup (q) : NULL;
  return g_find_program_in_path ("qemu-system-x86_64");
}

/* The program for @engine, or NULL (and the test skipped). */
static char *
engine_program (Engine engine)
{
  if (engine == ENGINE_QEMU)
    {
      char *q = find_qemu ();

      if (!q)
        g_test_skip ("qemu-system-x86_64 not found");
      return q;
    }
  else
    {
      const char *v = g_getenv ("VIREO_RUN");

      if (!v || !*v)
        {
          g_test_skip ("VIREO_RUN not set");
          return NULL;
        }
      return g_strdup (v);
    }
}

/* Runs the net guest; @hostfwd is a QEMU/Vireo rule or NULL. */
static void
run_net_guest (Engine engine, const char *program, const char *append, const char *hostfwd,
               RunResult *r)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *kernel = g_strdup_printf ("%s/net%s", guest_dir (),
                                             engine == ENGINE_QEMU ? "-pvh.elf" : ".elf");

  g_assert_true (g_file_test (kernel, G_FILE_TEST_IS_REGULAR));
  g_ptr_array_add (argv, g_strdup (program));
  if (engine == ENGINE_QEMU)
    {
      const char *fixed[] = {
        "-enable-kvm", "-nodefaults", "-no-user-config", "-display", "none", "-M", "pc",
        "-m", "128", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-serial", "stdio",
      };

      for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
        g_ptr_array_add (argv, g_strdup (fixed[i]));
      g_ptr_array_add (argv, g_strdup ("-kernel"));
      g_ptr_array_add (argv, g_strdup (kernel));
      g_ptr_array_add (argv, g_strdup ("-append"));
      g_ptr_array_add (argv, g_strdup (append));
      g_ptr_array_add (argv, g_strdup ("-netdev"));
      g_ptr_array_add (argv, hostfwd ? g_strconcat ("user,id=n0,hostfwd=", hostfwd, NULL)
                                     : g_strdup ("user,id=n0"));
      g_ptr_array_add (argv, g_strdup ("-device"));
      g_ptr_array_add (argv, g_strdup ("virtio-net-pci,netdev=n0,disable-legacy=on,mac="
                                       GUEST_MAC));
    }
  else
    {
      g_ptr_array_add (argv, g_strdup ("--kernel"));
      g_ptr_array_add (argv, g_strdup (kernel));
      g_ptr_array_add (argv, g_strdup ("--memory"));
      g_ptr_array_add (argv, g_strdup ("128M"));
      g_ptr_array_add (argv, g_strdup ("--serial"));
      g_ptr_array_add (argv, g_strdup ("stdio"));
      g_ptr_array_add (argv, g_strdup ("--timeout"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", RUN_TIMEOUT));
      g_ptr_array_add (argv, g_strdup ("--append"));
      g_ptr_array_add (argv, g_strdup (append));
      g_ptr_array_add (argv, g_strdup ("--net"));
      g_ptr_array_add (argv, hostfwd ? g_strconcat ("user,hostfwd=", hostfwd, NULL)
                                     : g_strdup ("user"));
      g_ptr_array_add (argv, g_strdup ("--io-stats"));
    }
  run_command (argv, r);
}

/* --------------------------------------------------------------- the tests */

#define NET_HEAD(irq)                                                                         \
  "net test\nirq: " irq "\nfeatures: ok\nmac: " GUEST_MAC "\nlink: up\n"                     \
  "dhcp: 10.0.2.15 router 10.0.2.2 dns 10.0.2.3\narp: gateway 10.0.2.2 ok\n"
#define NET_BASIC(irq)                                                                        \
  NET_HEAD (irq) "udp: reply ok\nudp: big reply ok\nudp: burst of 100 ok\ntcp: connected\n"    \
  "tcp: reply ok\n"                                                                           \
  "tcp: closed\nPASS\n"
#define NET_ECHO                                                                              \
  NET_HEAD ("poll") "echo: listening on 7\necho: connected\necho: served ok\nPASS\n"
#define NET_BAD                                                                               \
  NET_HEAD ("poll") "bad tx header: needs reset\nbad rx buffer (readable): needs reset\n"     \
  "bad rx buffer (8 bytes): needs reset\narp: gateway 10.0.2.2 ok\nbad: recovered\nPASS\n"
#define NET_THROUGHPUT                                                                        \
  NET_HEAD ("poll") "throughput: connected\nthroughput: sent %u bytes\nPASS\n"

static GHashTable *oracle;   /* case kind -> normalised QEMU output */

static void
check_output (const CaseData *cd, const RunResult *r, const char *want)
{
  const char *who = cd->engine == ENGINE_QEMU ? "qemu" : "vireo";
  g_autofree char *got = normalise (r->out);
  const char *qemu;

  dump_output (who, r);
  g_assert_false (r->timed_out);
  g_assert_cmpint (r->status, ==, 1);
  g_assert_cmpstr (got, ==, want);
  if (cd->engine == ENGINE_QEMU)
    g_hash_table_insert (oracle, GINT_TO_POINTER (cd->kind + 1), g_steal_pointer (&got));
  else if ((qemu = g_hash_table_lookup (oracle, GINT_TO_POINTER (cd->kind + 1))))
    g_assert_cmpstr (got, ==, qemu);
}

static void
test_basic (gconstpointer data)
{
  const CaseData *cd = data;
  g_autofree char *program = engine_program (cd->engine);
  g_autofree char *append = NULL;
  gboolean msix = cd->kind == CASE_BASIC_MSIX;
  Servers s;
  RunResult r;

  if (!program)
    return;
  servers_start (&s);
  /* The msix run also leaves out checksum offload (QEMU does not offer it with slirp), and
   * has a small receive ring of small buffers: frames span many buffers, bursts wait. */
  append = g_strdup_printf ("udp=%u tcp=%u%s", s.udp_port, s.tcp_port,
                            msix ? " irq=msix nocsum rxq=8 rxbuf=256" : "");
  run_net_guest (cd->engine, program, append, NULL, &r);
  check_output (cd, &r, msix ? NET_BASIC ("msix") : NET_BASIC ("poll"));

  /* What the servers saw: exactly the guest's messages (UDP may repeat after a loss). */
  g_mutex_lock (&s.lock);
  g_assert_cmpuint (s.udp_seen->len, >=, 2);
  g_assert_cmpstr (g_ptr_array_index (s.udp_seen, 0), ==, UDP_MESSAGE);
  g_assert_cmpstr (g_ptr_array_index (s.udp_seen, s.udp_seen->len - 1), ==, "burst");
  g_assert_cmpuint (s.tcp_seen->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (s.tcp_seen, 0), ==, TCP_MESSAGE);
  g_mutex_unlock (&s.lock);

  servers_stop (&s);
  run_result_clear (&r);
}

static void
test_hostfwd (gconstpointer data)
{
  const CaseData *cd = data;
  g_autofree char *program = engine_program (cd->engine);
  g_autofree char *rule = NULL;
  g_autofree char *want = NULL;
  EchoClient ec = { 0 };
  GThread *client;
  RunResult r;

  if (!program)
    return;
  ec.port = free_port ();
  rule = g_strdup_printf ("tcp:127.0.0.1:%u-:7", ec.port);
  client = g_thread_new ("echo-client", echo_client, &ec);
  run_net_guest (cd->engine, program, "mode=echo port=7", rule, &r);
  g_atomic_int_set (&ec.stop, 1);
  g_thread_join (client);
  check_output (cd, &r, NET_ECHO);

  want = g_strconcat ("ECHO:", ECHO_MESSAGE, NULL);
  for (char *p = want; *p; p++)
    *p = g_ascii_toupper (*p);
  g_test_message ("echo client: %d attempts", ec.attempts);
  g_assert_cmpstr (ec.reply, ==, want);
  g_free (ec.reply);
  run_result_clear (&r);
}

static void
test_throughput (gconstpointer data)
{
  const CaseData *cd = data;
  g_autofree char *program = engine_program (cd->engine);
  g_autofree char *append = NULL;
  g_autofree char *want = NULL;
  guint64 bytes = (guint64) THROUGHPUT_MB << 20;
  Servers s;
  RunResult r;

  if (!program)
    return;
  servers_start (&s);
  append = g_strdup_printf ("mode=throughput tcp=%u mb=%u", s.tcp_port, THROUGHPUT_MB);
  run_net_guest (cd->engine, program, append, NULL, &r);
  want = g_strdup_printf (NET_THROUGHPUT, (unsigned) bytes);
  check_output (cd, &r, want);

  /* The server thread finishes the stream when the guest's FIN arrives. */
  for (int i = 0; i < 100; i++)
    {
      gboolean done;

      g_mutex_lock (&s.lock);
      done = s.stream_bytes != 0;
      g_mutex_unlock (&s.lock);
      if (done)
        break;
      g_usleep (G_USEC_PER_SEC / 10);
    }
  g_mutex_lock (&s.lock);
  g_assert_cmpuint (s.stream_bytes, ==, bytes);
  g_assert_true (s.stream_ok);
  if (cd->engine != ENGINE_QEMU)
    {
      /* The engine's counters saw the stream go out (frames carry headers too) and the
       * server's acknowledgements come in. */
      const char *io = strstr (r.err ? r.err : "", "vireo-run: io:");
      guint64 rx_bytes = 0, rx_frames = 0, tx_bytes = 0, tx_frames = 0;

      g_assert_nonnull (io);
      g_assert_cmpint (sscanf (io, "vireo-run: io: disk read %*u bytes in %*u requests, "
                                   "written %*u bytes in %*u requests; net received %"
                                   G_GUINT64_FORMAT " bytes in %" G_GUINT64_FORMAT
                                   " frames, sent %" G_GUINT64_FORMAT " bytes in %"
                                   G_GUINT64_FORMAT " frames", &rx_bytes, &rx_frames,
                               &tx_bytes, &tx_frames), ==, 4);
      g_test_message ("io counters: rx %" G_GUINT64_FORMAT " bytes / %" G_GUINT64_FORMAT
                      " frames, tx %" G_GUINT64_FORMAT " bytes / %" G_GUINT64_FORMAT " frames",
                      rx_bytes, rx_frames, tx_bytes, tx_frames);
      g_assert_cmpuint (tx_bytes, >, bytes);
      g_assert_cmpuint (tx_frames, >=, bytes / 1514);
      g_assert_cmpuint (rx_frames, >, 0);
    }
  g_test_message ("%s: %" G_GUINT64_FORMAT " bytes in %.2f s: %.1f KiB/s",
                  cd->engine == ENGINE_QEMU ? "qemu" : "vireo", s.stream_bytes,
                  s.stream_seconds, s.stream_bytes / 1024.0 / MAX (s.stream_seconds, 0.001));
  g_mutex_unlock (&s.lock);
  servers_stop (&s);
  run_result_clear (&r);
}

static void
test_bad_buffers (void)
{
  CaseData cd = { CASE_BAD, ENGINE_VIREO };
  g_autofree char *program = engine_program (ENGINE_VIREO);
  RunResult r;

  if (!program)
    return;
  run_net_guest (ENGINE_VIREO, program, "mode=bad", NULL, &r);
  check_output (&cd, &r, NET_BAD);
  /* Each is reported once, saying what the guest did. */
  g_assert_nonnull (strstr (r.err, "a transmit chain of 4 bytes"));
  g_assert_nonnull (strstr (r.err, "0 writable bytes"));
  g_assert_nonnull (strstr (r.err, "8 writable bytes"));
  run_result_clear (&r);
}

/* vireo-run refuses a bad --net with status 2 and a message containing @needle. */
static void
expect_net_error (const char *net, const char *needle)
{
  const char *v = g_getenv ("VIREO_RUN");
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *kernel = g_build_filename (guest_dir (), "net.elf", NULL);
  RunResult r;

  if (!v || !*v)
    {
      g_test_skip ("VIREO_RUN not set");
      return;
    }
  g_ptr_array_add (argv, g_strdup (v));
  g_ptr_array_add (argv, g_strdup ("--kernel"));
  g_ptr_array_add (argv, g_strdup (kernel));
  g_ptr_array_add (argv, g_strdup ("--serial"));
  g_ptr_array_add (argv, g_strdup ("stdio"));
  g_ptr_array_add (argv, g_strdup ("--timeout"));
  g_ptr_array_add (argv, g_strdup ("30"));
  g_ptr_array_add (argv, g_strdup ("--net"));
  g_ptr_array_add (argv, g_strdup (net));
  run_command (argv, &r);
  dump_output ("vireo", &r);
  g_assert_false (r.timed_out);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_nonnull (strstr (r.err, needle));
  run_result_clear (&r);
}

static void
test_bad_hostfwd (void)
{
  expect_net_error ("user,hostfwd=tcp:127.0.0.1:99999-:22", "host port");
  expect_net_error ("user,hostfwd=sctp::2222-:22", "tcp or udp");
  expect_net_error ("user,hostfwd=tcp::2222-10.0.3.5:22", "guest network");
  expect_net_error ("user,hostfwd=tcp:2222:22", "port forward");
  expect_net_error ("user,mac=01:00:00:00:00:01", "multicast");
  expect_net_error ("slirp", "expected user");
}

static void
test_bad_port_in_use (void)
{
  guint16 port;
  g_autoptr (GSocket) busy = bind_local (G_SOCKET_TYPE_STREAM, &port);
  g_autofree char *net = g_strdup_printf ("user,hostfwd=tcp:127.0.0.1:%u-:22", port);
  g_autofree char *needle = g_strdup_printf ("127.0.0.1:%u", port);

  expect_net_error (net, needle);
}

int
main (int argc, char **argv)
{
  static const struct
  {
    const char *name;
    CaseKind    kind;
    GTestDataFunc func;
  } cases[] = {
    { "basic", CASE_BASIC, test_basic },
    { "basic-msix", CASE_BASIC_MSIX, test_basic },
    { "hostfwd", CASE_HOSTFWD, test_hostfwd },
    { "throughput", CASE_THROUGHPUT, test_throughput },
  };

  g_test_init (&argc, &argv, NULL);
  g_test_set_nonfatal_assertions ();
  oracle = g_hash_table_new_full (NULL, NULL, NULL, g_free);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (Engine e = ENGINE_QEMU; e <= ENGINE_VIREO; e++)
      {
        CaseData *cd = g_new0 (CaseData, 1);
        g_autofree char *path = g_strdup_printf ("/net/%s-%s", cases[i].name,
                                                 e == ENGINE_QEMU ? "qemu" : "vireo");

        cd->kind = cases[i].kind;
        cd->engine = e;
        g_test_add_data_func_full (path, cd, cases[i].func, g_free);
      }
  g_test_add_func ("/net/bad-buffers-vireo", test_bad_buffers);
  g_test_add_func ("/net/bad-hostfwd", test_bad_hostfwd);
  g_test_add_func ("/net/bad-port-in-use", test_bad_port_in_use);

  return g_test_run ();
}
