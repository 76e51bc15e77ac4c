/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net: the network card (virtio 1.x, 5.1) behind user networking (slirp), with a tiny
 * network stack of its own: Ethernet, ARP (both ways), IPv4, UDP, a DHCP client and a TCP
 * that does one connection at a time (SYN, data, FIN; go-back-N after a timeout).
 *
 * Receive buffers are RXBUF bytes (default 1024), smaller than a full frame, so that large
 * frames exercise VIRTIO_NET_F_MRG_RXBUF; the transmit chains put the 12-byte header and
 * the frame in separate descriptors.
 *
 * Command line:
 *   udp=PORT tcp=PORT       (default mode) DHCP, ARP for the gateway, then
 *                           - UDP "ping" to 10.0.2.2:udp, expects "UDP:" + the message in
 *                             capitals; then "big", expects 1400 bytes i*7 & 0xff; then
 *                             "burst", expects 100 datagrams "BURST:000".."BURST:099" in
 *                             order (more than the receive ring holds: flow control);
 *                           - TCP to 10.0.2.2:tcp: sends a line, expects "TCP:" + the line
 *                             in capitals, then the server's FIN; closes.
 *   mode=echo port=PORT     DHCP, then listens on 10.0.2.15:PORT (reached by a hostfwd),
 *                           reads a line, answers "ECHO:" + the line in capitals, closes.
 *   mode=throughput tcp=PORT mb=N
 *                           DHCP, then sends N MiB (bytes 'a' + offset % 26) over TCP and
 *                           closes; the host measures.
 *   mode=bad                DHCP, then malformed buffers: a transmit chain shorter than the
 *                           header, a device-readable receive buffer, a receive buffer
 *                           smaller than the header; each must make the device ask for a
 *                           reset (DEVICE_NEEDS_RESET), and a reset must bring it back.
 *   mode=cpu                how fast this CPU makes segments (info lines only).
 *   rxbuf=N                 receive buffer size (at least 64, at most 2048).
 *   rxq=N                   receive queue size (a power of two, 2 to 128; default 128).
 *   nocsum                  do not use checksum offload even when offered.
 *   irq=msix|intx|poll      (default poll)
 */

#include "guest.h"
#include "virtio.h"

#define NET_HDR_LEN      12
#define RX_QUEUE_SIZE    128
#define TX_QUEUE_SIZE    128
#define RX_BUF_MAX       2048
#define FRAME_MAX        1514
#define MSS              1460
#define TIMEOUT_MS       20000
#define RTO_MS           1000
#define TCP_RX_MAX       8192
#define TCP_WINDOW       8192

#define ETH_ARP          0x0806
#define ETH_IP           0x0800
#define IP_UDP           17
#define IP_TCP           6

#define TCP_FIN          0x01
#define TCP_SYN          0x02
#define TCP_RST          0x04
#define TCP_PSH          0x08
#define TCP_ACK          0x10

#define IP(a, b, c, d)   ((uint32_t) (a) << 24 | (uint32_t) (b) << 16 | (uint32_t) (c) << 8 | (d))
#define GATEWAY          IP (10, 0, 2, 2)
#define BROADCAST        0xffffffffu

#define DHCP_XID         0x56697265u   /* "Vire" */
#define UDP_LOCAL_PORT   40000
#define TCP_LOCAL_PORT   40001
#define BURST_COUNT      100

static VirtioDevice dev;
static VirtQueue *rxq, *txq;
static unsigned rxbuf_size = 1024;
static unsigned rxq_size = RX_QUEUE_SIZE;
static uint8_t *frame_buf;            /* a received frame, reassembled */

typedef struct
{
  uint8_t hdr[NET_HDR_LEN];
  uint8_t frame[FRAME_MAX];
} TxBuf;

static TxBuf *tx_free[TX_QUEUE_SIZE];
static uint16_t tx_csum_start, tx_csum_offset;   /* for the next frame sent; 0: none */
static unsigned n_tx_free;

static uint8_t my_mac[6];
static uint32_t my_ip;                /* 0 until DHCP is done */
static uint32_t router_ip, dns_ip, netmask, dhcp_server;
static uint8_t gw_mac[6];
static bool gw_known;

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- helpers -------------------------------------------------------------------------- */

static inline void
put16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
}

static inline void
put32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

static inline uint16_t
get16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

static inline uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Word access to unaligned bytes (x86 allows it); every instruction counts on an emulating
 * host, so the hot loops go 4 or 8 bytes at a time. */
typedef uint64_t __attribute__ ((may_alias, aligned (1))) u64_any;
typedef uint32_t __attribute__ ((may_alias, aligned (1))) u32_any;
typedef uint16_t __attribute__ ((may_alias, aligned (1))) u16_any;

static void
copy_fast (uint8_t *d, const uint8_t *s, size_t len)
{
  for (; len >= 8; d += 8, s += 8, len -= 8)
    *(u64_any *) d = *(const u64_any *) s;
  while (len--)
    *d++ = *s++;
}

/* Adds the bytes at @p (starting at an even offset of the checksummed data) to @sum, a
 * ones' complement sum of big-endian 16-bit words. Sums little-endian words and swaps at the
 * end (RFC 1071: the sum is byte-order independent). */
static uint32_t
csum_add (uint32_t sum, const uint8_t *p, size_t len)
{
  uint64_t acc = 0;

  for (; len >= 4; p += 4, len -= 4)
    acc += *(const u32_any *) p;
  if (len >= 2)
    {
      acc += *(const u16_any *) p;
      p += 2;
      len -= 2;
    }
  if (len)
    acc += p[0];
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return sum + (uint32_t) (((acc & 0xff) << 8) | (acc >> 8));
}

static uint16_t
csum_fold (uint32_t sum)
{
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t) ~sum;
}

/* The TCP/UDP pseudo-header sum. */
static uint32_t
csum_pseudo (uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

static const char *
ip_str (uint32_t ip)
{
  static char buf[4][16];
  static int which;
  char *s = buf[which++ & 3];
  char *p = s;

  for (int i = 3; i >= 0; i--)
    {
      unsigned v = (ip >> (8 * i)) & 0xff;

      if (v >= 100)
        *p++ = (char) ('0' + v / 100);
      if (v >= 10)
        *p++ = (char) ('0' + v / 10 % 10);
      *p++ = (char) ('0' + v % 10);
      if (i)
        *p++ = '.';
    }
  *p = 0;
  return s;
}

static void
upper (char *d, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    d[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char) (s[i] - 32) : s[i];
}

static uint64_t
now_ms (void)
{
  return virtio_now_ms ();
}

/* ---- the card ------------------------------------------------------------------------- */

static void
rx_post (uint8_t *buf)
{
  VirtioBuf b = { buf, rxbuf_size, true };

  if (virtq_add (rxq, &b, 0, 1, buf, false) < 0)
    guest_fail ("receive queue full");
}

static void net_input (const uint8_t *f, size_t len);

static void
tx_reap (void)
{
  TxBuf *b;

  while ((b = virtq_get_used (txq, NULL)) != NULL)
    tx_free[n_tx_free++] = b;
}

/* Takes what the device has received and sent; returns whether anything arrived. */
static bool
net_poll (void)
{
  bool any = false;
  bool reposted = false;
  uint8_t *buf;
  uint32_t len;

  tx_reap ();
  while ((buf = virtq_get_used (rxq, &len)) != NULL)
    {
      uint16_t nbufs;
      size_t total;

      if (len < NET_HDR_LEN)
        guest_fail ("receive: %u bytes, less than the header", len);
      nbufs = (uint16_t) (buf[10] | buf[11] << 8);
      if (nbufs == 0 || (nbufs > 1 && !virtio_has_feature (&dev, 15)))
        guest_fail ("receive: num_buffers %u", nbufs);
      total = len - NET_HDR_LEN;
      if (total > FRAME_MAX + 4)
        guest_fail ("receive: %u bytes in the first buffer", len);
      copy_fast (frame_buf, buf + NET_HDR_LEN, total);
      rx_post (buf);
      reposted = true;
      for (unsigned i = 1; i < nbufs; i++)
        {
          /* The rest of the frame: the next used buffers, already there. */
          buf = virtq_get_used (rxq, &len);
          if (!buf)
            guest_fail ("receive: buffer %u of %u missing", i + 1, nbufs);
          if (total + len > FRAME_MAX + 4)
            guest_fail ("receive: merged frame longer than %u bytes", FRAME_MAX);
          copy_fast (frame_buf + total, buf, len);
          total += len;
          rx_post (buf);
        }
      if (nbufs > 1)
        printf ("info: a %u-byte frame in %u buffers\n", (unsigned) total, nbufs);
      net_input (frame_buf, total);
      any = true;
    }
  if (reposted)
    virtq_kick (rxq);
  return any;
}

static TxBuf *
tx_get (void)
{
  uint64_t end = now_ms () + TIMEOUT_MS;

  /* Only the transmit side: this may run in the middle of handling a received frame. */
  while (n_tx_free == 0)
    {
      tx_reap ();
      if (n_tx_free)
        break;
      if (now_ms () > end)
        guest_fail ("transmit: the device does not return buffers");
      virtio_idle (dev.irq_mode);
    }
  return tx_free[--n_tx_free];
}

/* Sends the frame in @b: Ethernet header (dst, our source, @type) + @payload_len bytes. */
static void
eth_send (TxBuf *b, const uint8_t *dst, uint16_t type, size_t payload_len)
{
  VirtioBuf bufs[2];
  size_t len = 14 + payload_len;

  memset (b->hdr, 0, NET_HDR_LEN);
  if (tx_csum_start)
    {
      /* VIRTIO_NET_HDR_F_NEEDS_CSUM: the device sums from csum_start to the end. */
      b->hdr[0] = 1;
      b->hdr[6] = (uint8_t) tx_csum_start;
      b->hdr[7] = (uint8_t) (tx_csum_start >> 8);
      b->hdr[8] = (uint8_t) tx_csum_offset;
      b->hdr[9] = (uint8_t) (tx_csum_offset >> 8);
      tx_csum_start = 0;
    }
  memcpy (b->frame, dst, 6);
  memcpy (b->frame + 6, my_mac, 6);
  put16 (b->frame + 12, type);
  if (len < 60)
    {
      memset (b->frame + len, 0, 60 - len);
      len = 60;
    }
  bufs[0] = (VirtioBuf) { b->hdr, NET_HDR_LEN, false };
  bufs[1] = (VirtioBuf) { b->frame, (uint32_t) len, false };
  if (virtq_add (txq, bufs, 2, 0, b, false) < 0)
    guest_fail ("transmit queue full");
  virtq_kick (txq);
}

/* ---- setting the card up -------------------------------------------------------------- */

typedef enum
{
  BAD_NONE,
  BAD_RX_READABLE,         /* the first receive buffer is device-readable */
  BAD_RX_TINY,             /* the first receive buffer is smaller than the header */
} BadRx;

static bool use_csum;

/* Finds (first time), initialises and starts the card; @bad puts a broken receive buffer
 * first in the ring. */
static void
net_setup (VirtioIrqMode mode, BadRx bad, bool report)
{
  uint16_t status;
  unsigned first = 0;

  /* The runtime's virtio_init() wants a fresh VirtioDevice, also after a reset. */
  memset (&dev, 0, sizeof dev);
  if (!virtio_find (VIRTIO_ID_NET, 0, &dev))
    guest_fail ("no virtio-net device");
  if (!virtio_init (&dev, mode))
    guest_fail ("virtio-net: initialisation failed");
  if (!virtio_negotiate (&dev, VIRTIO_F (5) | VIRTIO_F (16) | VIRTIO_F (15) | VIRTIO_F (0)
                                 | VIRTIO_F (VIRTIO_RING_F_EVENT_IDX)))
    guest_fail ("virtio-net: feature negotiation failed");
  if (!virtio_has_feature (&dev, 5) || !virtio_has_feature (&dev, 16)
      || !virtio_has_feature (&dev, 15))
    guest_fail ("virtio-net: MAC, STATUS or MRG_RXBUF not offered");
  /* QEMU offers checksum offload only with a backend that takes it; Vireo always does. */
  use_csum = virtio_has_feature (&dev, 0) && !cmdline_has ("nocsum");
  virtio_config_read (&dev, 0, my_mac, 6);
  status = virtio_config_read16 (&dev, 6);
  if (report)
    {
      printf ("features: ok\n");
      printf ("info: checksum offload: %s\n", use_csum ? "used" : "not offered");
      printf ("mac: %02x:%02x:%02x:%02x:%02x:%02x\n", my_mac[0], my_mac[1], my_mac[2],
              my_mac[3], my_mac[4], my_mac[5]);
      printf ("link: %s\n", (status & 1) ? "up" : "down");
    }

  rxq = virtio_queue_setup (&dev, 0, rxq_size);
  txq = virtio_queue_setup (&dev, 1, TX_QUEUE_SIZE);
  if (!rxq || !txq)
    guest_fail ("virtio-net: queue setup failed");
  if (!frame_buf)
    frame_buf = virtio_alloc (FRAME_MAX + 64, 64);
  if (bad == BAD_RX_READABLE)
    {
      VirtioBuf b = { virtio_alloc (rxbuf_size, 64), rxbuf_size, false };

      if (virtq_add (rxq, &b, 1, 0, (void *) b.addr, false) < 0)
        guest_fail ("receive queue full");
      first = 1;
    }
  else if (bad == BAD_RX_TINY)
    {
      VirtioBuf b = { virtio_alloc (64, 64), 8, true };

      if (virtq_add (rxq, &b, 0, 1, (void *) b.addr, false) < 0)
        guest_fail ("receive queue full");
      first = 1;
    }
  for (unsigned i = first; i < rxq->size; i++)
    rx_post (virtio_alloc (rxbuf_size, 64));
  n_tx_free = 0;
  for (unsigned i = 0; i < txq->size && i < TX_QUEUE_SIZE; i++)
    tx_free[n_tx_free++] = virtio_alloc (sizeof (TxBuf), 64);
  virtio_driver_ok (&dev);
  virtq_kick (rxq);
  if (report)
    printf ("info: rx %u x %u bytes, tx %u\n", rxq->size, rxbuf_size, txq->size);
}

/* ---- ARP ------------------------------------------------------------------------------ */

static void
arp_send (uint16_t op, const uint8_t *dst_mac, const uint8_t *tha, uint32_t tip)
{
  TxBuf *b = tx_get ();
  uint8_t *a = b->frame + 14;

  put16 (a, 1);
  put16 (a + 2, ETH_IP);
  a[4] = 6;
  a[5] = 4;
  put16 (a + 6, op);
  memcpy (a + 8, my_mac, 6);
  put32 (a + 14, my_ip);
  memcpy (a + 18, tha, 6);
  put32 (a + 24, tip);
  eth_send (b, dst_mac, ETH_ARP, 28);
}

static void
arp_input (const uint8_t *a, size_t len)
{
  static const uint8_t zero[6];
  uint16_t op;
  uint32_t sip, tip;

  if (len < 28 || get16 (a) != 1 || get16 (a + 2) != ETH_IP || a[4] != 6 || a[5] != 4)
    return;
  op = get16 (a + 6);
  sip = get32 (a + 14);
  tip = get32 (a + 24);
  if (op == 1 && my_ip && tip == my_ip)
    arp_send (2, a + 8, a + 8, sip);
  else if (op == 2 && sip == router_ip && router_ip)
    {
      memcpy (gw_mac, a + 8, 6);
      gw_known = true;
    }
  (void) zero;
}

/* ---- IPv4, UDP ------------------------------------------------------------------------ */

static uint16_t ip_id = 1;

/* Fills the IP header in @b for @l4_len bytes of @proto and sends it. */
static void
ip_send (TxBuf *b, uint32_t dst, uint8_t proto, size_t l4_len)
{
  uint8_t *ip = b->frame + 14;
  const uint8_t *mac;

  ip[0] = 0x45;
  ip[1] = 0;
  put16 (ip + 2, (uint16_t) (20 + l4_len));
  put16 (ip + 4, ip_id++);
  put16 (ip + 6, 0x4000);   /* don't fragment */
  ip[8] = 64;
  ip[9] = proto;
  put16 (ip + 10, 0);
  put32 (ip + 12, my_ip);
  put32 (ip + 16, dst);
  put16 (ip + 10, csum_fold (csum_add (0, ip, 20)));
  if (dst == BROADCAST)
    mac = bcast_mac;
  else
    {
      if (!gw_known)
        guest_fail ("IP to %s before the gateway's MAC is known", ip_str (dst));
      mac = gw_mac;
    }
  eth_send (b, mac, ETH_IP, 20 + l4_len);
}

/* A UDP datagram from @sport to @dst:@dport. */
static void
udp_send (uint32_t dst, uint16_t sport, uint16_t dport, const void *data, size_t len)
{
  TxBuf *b = tx_get ();
  uint8_t *u = b->frame + 14 + 20;
  uint16_t sum;

  put16 (u, sport);
  put16 (u + 2, dport);
  put16 (u + 4, (uint16_t) (8 + len));
  put16 (u + 6, 0);
  memcpy (u + 8, data, len);
  sum = csum_fold (csum_add (csum_pseudo (my_ip, dst, IP_UDP, (uint16_t) (8 + len)), u, 8 + len));
  put16 (u + 6, sum ? sum : 0xffff);
  ip_send (b, dst, IP_UDP, 8 + len);
}

/* The last datagram for UDP_LOCAL_PORT. */
static uint8_t udp_reply[1500];
static size_t udp_reply_len;
static bool udp_reply_ready;
static unsigned burst_next;           /* the next "BURST:NNN" expected */

static void dhcp_input (const uint8_t *d, size_t len);
static void tcp_input (uint32_t src, uint32_t dst, const uint8_t *t, size_t len);

static void
udp_input (uint32_t src, uint32_t dst, const uint8_t *u, size_t len)
{
  uint16_t ulen;

  if (len < 8)
    return;
  ulen = get16 (u + 4);
  if (ulen < 8 || ulen > len)
    return;
  if (get16 (u + 6) && csum_fold (csum_add (csum_pseudo (src, dst, IP_UDP, ulen), u, ulen)))
    guest_fail ("UDP checksum error from %s", ip_str (src));
  switch (get16 (u + 2))
    {
    case 68:
      dhcp_input (u + 8, ulen - 8u);
      break;
    case UDP_LOCAL_PORT:
      if (ulen - 8u == 9 && !memcmp (u + 8, "BURST:", 6))
        {
          unsigned n = (unsigned) (u[14] - '0') * 100 + (unsigned) (u[15] - '0') * 10
                       + (unsigned) (u[16] - '0');

          if (n != burst_next)
            guest_fail ("udp: burst datagram %u arrived after %u", n, burst_next);
          burst_next++;
          break;
        }
      if (ulen - 8u <= sizeof udp_reply)
        {
          memcpy (udp_reply, u + 8, ulen - 8u);
          udp_reply_len = ulen - 8u;
          udp_reply_ready = true;
        }
      break;
    default:
      break;
    }
}

static void
ip_input (const uint8_t *ip, size_t len)
{
  size_t ihl, total;
  uint32_t src, dst;

  if (len < 20 || (ip[0] >> 4) != 4)
    return;
  ihl = (size_t) (ip[0] & 15) * 4;
  total = get16 (ip + 2);
  if (ihl < 20 || total < ihl || total > len)
    return;
  if (csum_fold (csum_add (0, ip, ihl)))
    guest_fail ("IP header checksum error");
  if (get16 (ip + 6) & 0x3fff)
    return;   /* fragments: not for us */
  src = get32 (ip + 12);
  dst = get32 (ip + 16);
  if (my_ip && dst != my_ip && dst != BROADCAST)
    return;
  if (ip[9] == IP_UDP)
    udp_input (src, dst, ip + ihl, total - ihl);
  else if (ip[9] == IP_TCP && my_ip)
    tcp_input (src, dst, ip + ihl, total - ihl);
}

static void
net_input (const uint8_t *f, size_t len)
{
  if (len < 14)
    return;
  if (memcmp (f, my_mac, 6) && memcmp (f, bcast_mac, 6))
    return;
  switch (get16 (f + 12))
    {
    case ETH_ARP:
      arp_input (f + 14, len - 14);
      break;
    case ETH_IP:
      ip_input (f + 14, len - 14);
      break;
    default:
      break;
    }
}

/* ---- DHCP ----------------------------------------------------------------------------- */

static int dhcp_state;          /* 0 discover, 1 offered, 2 requested, 3 bound */
static uint32_t offered_ip;

static void
dhcp_send (uint8_t type)
{
  uint8_t m[300];
  uint8_t *o = m + 240;

  memset (m, 0, sizeof m);
  m[0] = 1;                      /* BOOTREQUEST */
  m[1] = 1;                      /* Ethernet */
  m[2] = 6;
  put32 (m + 4, DHCP_XID);
  memcpy (m + 28, my_mac, 6);
  put32 (m + 236, 0x63825363);   /* magic cookie */
  *o++ = 53, *o++ = 1, *o++ = type;
  if (type == 3)
    {
      *o++ = 50, *o++ = 4;
      put32 (o, offered_ip);
      o += 4;
      *o++ = 54, *o++ = 4;
      put32 (o, dhcp_server);
      o += 4;
    }
  *o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 6;
  *o++ = 255;
  udp_send (BROADCAST, 68, 67, m, sizeof m);
}

static void
dhcp_input (const uint8_t *d, size_t len)
{
  uint8_t type = 0;
  uint32_t router = 0, dns = 0, mask = 0, server = 0;
  size_t i = 240;

  if (len < 240 || d[0] != 2 || get32 (d + 4) != DHCP_XID || memcmp (d + 28, my_mac, 6)
      || get32 (d + 236) != 0x63825363)
    return;
  while (i < len && d[i] != 255)
    {
      uint8_t code = d[i], olen;
      const uint8_t *v;

      if (code == 0)
        {
          i++;
          continue;
        }
      if (i + 2 > len)
        break;
      olen = d[i + 1];
      v = d + i + 2;
      if (i + 2 + olen > len)
        guest_fail ("DHCP option %u runs past the message", code);
      if (code == 53 && olen >= 1)
        type = v[0];
      else if (code == 1 && olen >= 4)
        mask = get32 (v);
      else if (code == 3 && olen >= 4)
        router = get32 (v);
      else if (code == 6 && olen >= 4)
        dns = get32 (v);
      else if (code == 54 && olen >= 4)
        server = get32 (v);
      i += 2u + olen;
    }

  if (type == 2 && dhcp_state == 0)
    {
      offered_ip = get32 (d + 16);
      dhcp_server = server;
      dhcp_state = 1;
    }
  else if (type == 5 && dhcp_state == 2)
    {
      if (get32 (d + 16) != offered_ip)
        guest_fail ("DHCP: ACK for %s, offered %s", ip_str (get32 (d + 16)),
                    ip_str (offered_ip));
      my_ip = offered_ip;
      router_ip = router;
      dns_ip = dns;
      netmask = mask;
      dhcp_state = 3;
    }
  else if (type == 6)
    guest_fail ("DHCP: NAK");
}

static void
dhcp (void)
{
  for (int attempt = 0; attempt < 10 && dhcp_state != 3; attempt++)
    {
      uint64_t end;

      if (dhcp_state < 2)
        {
          dhcp_state = 0;
          dhcp_send (1);
          end = now_ms () + RTO_MS * 2;
          while (dhcp_state == 0 && now_ms () < end)
            if (!net_poll ())
              virtio_idle (dev.irq_mode);
          if (dhcp_state != 1)
            continue;
          printf ("info: DHCP offer %s from %s\n", ip_str (offered_ip), ip_str (dhcp_server));
        }
      dhcp_state = 2;
      dhcp_send (3);
      end = now_ms () + RTO_MS * 2;
      while (dhcp_state == 2 && now_ms () < end)
        if (!net_poll ())
          virtio_idle (dev.irq_mode);
    }
  if (dhcp_state != 3)
    guest_fail ("DHCP: no lease");
  printf ("dhcp: %s router %s dns %s\n", ip_str (my_ip), ip_str (router_ip), ip_str (dns_ip));
  printf ("info: netmask %s\n", ip_str (netmask));
}

static void
arp_gateway (void)
{
  for (int attempt = 0; attempt < 10 && !gw_known; attempt++)
    {
      uint64_t end = now_ms () + RTO_MS;
      static const uint8_t zero[6];

      arp_send (1, bcast_mac, zero, router_ip);
      while (!gw_known && now_ms () < end)
        if (!net_poll ())
          virtio_idle (dev.irq_mode);
    }
  if (!gw_known)
    guest_fail ("ARP: the gateway %s does not answer", ip_str (router_ip));
  printf ("arp: gateway %s ok\n", ip_str (router_ip));
  printf ("info: gateway MAC %02x:%02x:%02x:%02x:%02x:%02x\n", gw_mac[0], gw_mac[1], gw_mac[2],
          gw_mac[3], gw_mac[4], gw_mac[5]);
}

/* ---- UDP test ------------------------------------------------------------------------- */

static void
udp_exchange (uint16_t port, const char *msg, size_t len, const char *what)
{
  for (int attempt = 0; attempt < 10; attempt++)
    {
      uint64_t end = now_ms () + RTO_MS * 2;

      udp_reply_ready = false;
      udp_send (router_ip, UDP_LOCAL_PORT, port, msg, len);
      while (!udp_reply_ready && now_ms () < end)
        if (!net_poll ())
          virtio_idle (dev.irq_mode);
      if (udp_reply_ready)
        return;
    }
  guest_fail ("udp: no reply to %s from %s:%u", what, ip_str (router_ip), port);
}

static void
udp_test (uint16_t port)
{
  static const char msg[] = "ping from the vireo test guest";
  char want[64];

  udp_exchange (port, msg, sizeof msg - 1, "ping");
  memcpy (want, "UDP:", 4);
  upper (want + 4, msg, sizeof msg - 1);
  if (udp_reply_len != sizeof msg - 1 + 4 || memcmp (udp_reply, want, udp_reply_len))
    guest_fail ("udp: unexpected reply (%u bytes)", (unsigned) udp_reply_len);
  printf ("udp: reply ok\n");

  /* A reply larger than a receive buffer: merged buffers. */
  udp_exchange (port, "big", 3, "big");
  if (udp_reply_len != 1400)
    guest_fail ("udp: big reply of %u bytes, expected 1400", (unsigned) udp_reply_len);
  for (unsigned i = 0; i < 1400; i++)
    if (udp_reply[i] != (uint8_t) (i * 7))
      guest_fail ("udp: big reply differs at byte %u", i);
  printf ("udp: big reply ok\n");

  /* A burst much larger than the receive ring (rxq=N makes it small): the device waits for
   * buffers, nothing is lost, the order holds. */
  {
    uint64_t end;

    burst_next = 0;
    udp_send (router_ip, UDP_LOCAL_PORT, port, "burst", 5);
    end = now_ms () + TIMEOUT_MS;
    while (burst_next < BURST_COUNT && now_ms () < end)
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
    if (burst_next != BURST_COUNT)
      guest_fail ("udp: %u of %u burst datagrams arrived", burst_next, BURST_COUNT);
    printf ("udp: burst of %u ok\n", BURST_COUNT);
  }
}

/* ---- TCP ------------------------------------------------------------------------------ */

enum
{
  TCP_CLOSED,
  TCP_LISTEN,
  TCP_SYN_SENT,
  TCP_SYN_RCVD,
  TCP_ESTABLISHED,
};

typedef struct
{
  int      state;
  uint32_t remote_ip;
  uint16_t lport, rport;
  uint32_t iss;
  uint32_t snd_una, snd_nxt;
  uint32_t snd_wnd;
  uint32_t rcv_nxt;
  bool     fin_sent;           /* our FIN is at snd_nxt - 1 */
  bool     fin_rcvd;
  bool     reset;
  uint8_t  rx[TCP_RX_MAX];
  uint32_t rx_len;
} Tcp;

static Tcp tcp;
static unsigned tcp_go_backs, tcp_window_waits;

static inline int32_t
seq_diff (uint32_t a, uint32_t b)
{
  return (int32_t) (a - b);
}

typedef void (*TcpFill) (uint8_t *dst, uint32_t offset, uint32_t len, const void *ctx);

/* A segment at @seq with @flags and @len bytes from @fill (offset @off). */
static void
tcp_send_seg (uint32_t seq, uint8_t flags, uint32_t len, TcpFill fill, uint32_t off,
              const void *ctx)
{
  TxBuf *b = tx_get ();
  uint8_t *t = b->frame + 14 + 20;
  size_t hlen = (flags & TCP_SYN) ? 24 : 20;
  uint16_t sum;

  put16 (t, tcp.lport);
  put16 (t + 2, tcp.rport);
  put32 (t + 4, seq);
  put32 (t + 8, (flags & TCP_ACK) ? tcp.rcv_nxt : 0);
  t[12] = (uint8_t) ((hlen / 4) << 4);
  t[13] = flags;
  put16 (t + 14, (uint16_t) (TCP_RX_MAX - tcp.rx_len < TCP_WINDOW ? TCP_RX_MAX - tcp.rx_len
                                                                  : TCP_WINDOW));
  put16 (t + 16, 0);
  put16 (t + 18, 0);
  if (hlen == 24)
    {
      t[20] = 2;   /* MSS */
      t[21] = 4;
      put16 (t + 22, MSS);
    }
  if (len)
    fill (t + hlen, off, len, ctx);
  if (use_csum)
    {
      /* The pseudo-header sum (not complemented) in the field; the device does the rest. */
      sum = (uint16_t) ~csum_fold (csum_pseudo (my_ip, tcp.remote_ip, IP_TCP,
                                                (uint16_t) (hlen + len)));
      tx_csum_start = 14 + 20;
      tx_csum_offset = 16;
    }
  else
    sum = csum_fold (csum_add (csum_pseudo (my_ip, tcp.remote_ip, IP_TCP,
                                            (uint16_t) (hlen + len)), t, hlen + len));
  put16 (t + 16, sum);
  ip_send (b, tcp.remote_ip, IP_TCP, hlen + len);
}

static void
tcp_send_ctl (uint32_t seq, uint8_t flags)
{
  tcp_send_seg (seq, flags, 0, NULL, 0, NULL);
}

static void
tcp_input (uint32_t src, uint32_t dst, const uint8_t *t, size_t len)
{
  size_t hlen;
  uint32_t seq, ack, dlen;
  uint8_t flags;
  bool need_ack = false;

  if (len < 20)
    return;
  hlen = (size_t) (t[12] >> 4) * 4;
  if (hlen < 20 || hlen > len)
    return;
  if (csum_fold (csum_add (csum_pseudo (src, dst, IP_TCP, (uint16_t) len), t, len)))
    guest_fail ("TCP checksum error from %s", ip_str (src));
  if (get16 (t + 2) != tcp.lport)
    return;
  seq = get32 (t + 4);
  ack = get32 (t + 8);
  flags = t[13];
  dlen = (uint32_t) (len - hlen);

  if (tcp.state == TCP_LISTEN)
    {
      if ((flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
        return;
      tcp.remote_ip = src;
      tcp.rport = get16 (t);
      tcp.rcv_nxt = seq + 1;
      tcp.snd_una = tcp.iss;
      tcp.snd_nxt = tcp.iss + 1;
      tcp.snd_wnd = get16 (t + 14);
      tcp.state = TCP_SYN_RCVD;
      tcp_send_ctl (tcp.iss, TCP_SYN | TCP_ACK);
      return;
    }
  if (src != tcp.remote_ip || get16 (t) != tcp.rport || tcp.state == TCP_CLOSED)
    return;
  if (flags & TCP_RST)
    {
      tcp.reset = true;
      tcp.state = TCP_CLOSED;
      return;
    }
  if (tcp.state == TCP_SYN_SENT)
    {
      if ((flags & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK) || ack != tcp.iss + 1)
        return;
      tcp.rcv_nxt = seq + 1;
      tcp.snd_una = ack;
      tcp.snd_wnd = get16 (t + 14);
      tcp.state = TCP_ESTABLISHED;
      tcp_send_ctl (tcp.snd_nxt, TCP_ACK);
      return;
    }
  if (tcp.state == TCP_SYN_RCVD)
    {
      if (flags & TCP_SYN)
        {
          /* Our SYN/ACK was lost: again. */
          tcp_send_ctl (tcp.iss, TCP_SYN | TCP_ACK);
          return;
        }
      if (!(flags & TCP_ACK) || ack != tcp.iss + 1)
        return;
      tcp.state = TCP_ESTABLISHED;
    }

  if (flags & TCP_SYN)
    {
      /* A retransmitted SYN/ACK: our ACK was lost. */
      tcp_send_ctl (tcp.snd_nxt, TCP_ACK);
      return;
    }
  if (flags & TCP_ACK)
    {
      if (seq_diff (ack, tcp.snd_una) > 0 && seq_diff (ack, tcp.snd_nxt) <= 0)
        tcp.snd_una = ack;
      tcp.snd_wnd = get16 (t + 14);
    }
  if (dlen)
    {
      if (seq == tcp.rcv_nxt && tcp.rx_len + dlen <= TCP_RX_MAX)
        {
          memcpy (tcp.rx + tcp.rx_len, t + hlen, dlen);
          tcp.rx_len += dlen;
          tcp.rcv_nxt += dlen;
        }
      need_ack = true;   /* in order or not: say where we are */
    }
  if ((flags & TCP_FIN) && seq + dlen == tcp.rcv_nxt && !tcp.fin_rcvd)
    {
      tcp.rcv_nxt++;
      tcp.fin_rcvd = true;
      need_ack = true;
    }
  else if (flags & TCP_FIN)
    need_ack = true;
  if (need_ack)
    tcp_send_ctl (tcp.snd_nxt, TCP_ACK);
}

static void
tcp_wait_established (const char *what)
{
  uint64_t end = now_ms () + RTO_MS;
  int tries = 0;

  while (tcp.state != TCP_ESTABLISHED)
    {
      if (tcp.reset)
        guest_fail ("tcp: %s: connection refused (RST)", what);
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
      if (now_ms () > end && tcp.state == TCP_SYN_SENT)
        {
          if (++tries == 10)
            guest_fail ("tcp: %s: no answer to SYN", what);
          tcp_send_ctl (tcp.iss, TCP_SYN);
          end = now_ms () + RTO_MS;
        }
    }
}

static void
tcp_connect (uint32_t ip, uint16_t port)
{
  memset (&tcp, 0, sizeof tcp);
  tcp.remote_ip = ip;
  tcp.lport = TCP_LOCAL_PORT;
  tcp.rport = port;
  tcp.iss = 0x1000000;
  tcp.snd_una = tcp.iss;
  tcp.snd_nxt = tcp.iss + 1;
  tcp.state = TCP_SYN_SENT;
  tcp_send_ctl (tcp.iss, TCP_SYN);
  tcp_wait_established ("connect");
}

/* Sends @total bytes made by @fill, with go-back-N after RTO_MS without progress. */
static void
tcp_send_stream (uint32_t total, TcpFill fill, const void *ctx)
{
  uint32_t base = tcp.snd_nxt;
  uint32_t off = 0;
  uint64_t last = now_ms ();
  uint32_t una = tcp.snd_una;
  int stalls = 0;

  while (seq_diff (tcp.snd_una, base + total) < 0)
    {
      uint32_t in_flight = tcp.snd_nxt - tcp.snd_una;
      uint32_t wnd = tcp.snd_wnd;

      if (tcp.reset || tcp.state != TCP_ESTABLISHED)
        guest_fail ("tcp: connection reset while sending");
      if (off < total && in_flight < wnd)
        {
          uint32_t n = total - off;

          if (n > MSS)
            n = MSS;
          if (n > wnd - in_flight)
            n = wnd - in_flight;
          tcp_send_seg (base + off, TCP_ACK | TCP_PSH, n, fill, off, ctx);
          off += n;
          tcp.snd_nxt = base + off;
          net_poll ();
          continue;
        }
      if (off < total)
        tcp_window_waits++;
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
      if (tcp.snd_una != una)
        {
          una = tcp.snd_una;
          last = now_ms ();
          stalls = 0;
        }
      else if (now_ms () - last > RTO_MS)
        {
          if (++stalls == 20)
            guest_fail ("tcp: no progress sending (%u of %u bytes acknowledged)",
                        tcp.snd_una - base, total);
          /* Go back to the first unacknowledged byte; probe a closed window. */
          tcp_go_backs++;
          off = tcp.snd_una - base;
          tcp.snd_nxt = tcp.snd_una;
          if (tcp.snd_wnd == 0 && off < total)
            {
              tcp_send_seg (base + off, TCP_ACK, 1, fill, off, ctx);
              off++;
              tcp.snd_nxt = base + off;
            }
          last = now_ms ();
        }
    }
}

/* Sends our FIN and waits until it is acknowledged (and, with @want_fin, the peer's FIN). */
static void
tcp_close (bool want_fin)
{
  uint32_t fin_seq = tcp.snd_nxt;
  int tries = 0;

  tcp.snd_nxt = fin_seq + 1;
  tcp.fin_sent = true;
  tcp_send_ctl (fin_seq, TCP_FIN | TCP_ACK);
  for (;;)
    {
      uint64_t end = now_ms () + RTO_MS;

      while (now_ms () < end)
        {
          if (tcp.snd_una == fin_seq + 1 && (!want_fin || tcp.fin_rcvd))
            return;
          if (tcp.reset)
            guest_fail ("tcp: reset while closing");
          if (!net_poll ())
            virtio_idle (dev.irq_mode);
        }
      if (++tries == 10)
        guest_fail ("tcp: close: FIN %sacknowledged, peer FIN %sreceived",
                    tcp.snd_una == fin_seq + 1 ? "" : "not ", tcp.fin_rcvd ? "" : "not ");
      if (tcp.snd_una != fin_seq + 1)
        tcp_send_ctl (fin_seq, TCP_FIN | TCP_ACK);
    }
}

/* Waits until @n bytes or a line ending in '\n' arrived (or the peer's FIN). */
static void
tcp_wait_line (const char *what)
{
  uint64_t end = now_ms () + TIMEOUT_MS;

  while (!tcp.fin_rcvd && !(tcp.rx_len && tcp.rx[tcp.rx_len - 1] == '\n'))
    {
      if (tcp.reset)
        guest_fail ("tcp: %s: connection reset", what);
      if (now_ms () > end)
        guest_fail ("tcp: %s: timeout (%u bytes so far)", what, tcp.rx_len);
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
    }
}

static void
fill_copy (uint8_t *dst, uint32_t off, uint32_t len, const void *ctx)
{
  copy_fast (dst, (const uint8_t *) ctx + off, len);
}

static void
fill_pattern (uint8_t *dst, uint32_t off, uint32_t len, const void *ctx)
{
  static uint8_t pattern[MSS + 26];
  static bool made;

  if (!made)
    {
      for (unsigned i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t) ('a' + i % 26);
      made = true;
    }
  while (len)
    {
      uint32_t n = len > MSS ? MSS : len;

      copy_fast (dst, pattern + off % 26, n);
      dst += n;
      off += n;
      len -= n;
    }
}

static void
tcp_test (uint16_t port)
{
  static const char msg[] = "hello from the vireo test guest over tcp\n";
  char want[64];
  uint64_t end;

  tcp_connect (router_ip, port);
  printf ("tcp: connected\n");
  tcp_send_stream (sizeof msg - 1, fill_copy, msg);
  /* The server answers, then closes: wait for its FIN. */
  end = now_ms () + TIMEOUT_MS;
  while (!tcp.fin_rcvd)
    {
      if (tcp.reset)
        guest_fail ("tcp: reset before the reply");
      if (now_ms () > end)
        guest_fail ("tcp: no FIN from the server (%u bytes received)", tcp.rx_len);
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
    }
  memcpy (want, "TCP:", 4);
  upper (want + 4, msg, sizeof msg - 1);
  if (tcp.rx_len != sizeof msg - 1 + 4 || memcmp (tcp.rx, want, tcp.rx_len))
    guest_fail ("tcp: unexpected reply (%u bytes)", tcp.rx_len);
  printf ("tcp: reply ok\n");
  tcp_close (true);
  printf ("tcp: closed\n");
}

static void
echo_server (uint16_t port)
{
  char reply[TCP_RX_MAX];
  uint64_t end = now_ms () + 10 * TIMEOUT_MS;
  uint32_t n;

  memset (&tcp, 0, sizeof tcp);
  tcp.lport = port;
  tcp.iss = 0x2000000;
  tcp.state = TCP_LISTEN;
  printf ("echo: listening on %u\n", port);
  while (tcp.state != TCP_ESTABLISHED)
    {
      if (now_ms () > end)
        guest_fail ("echo: nobody connected");
      if (tcp.state == TCP_SYN_RCVD && tcp.reset)
        {
          tcp.reset = false;
          tcp.state = TCP_LISTEN;
        }
      if (!net_poll ())
        virtio_idle (dev.irq_mode);
    }
  printf ("echo: connected\n");
  printf ("info: from %s:%u\n", ip_str (tcp.remote_ip), tcp.rport);
  tcp_wait_line ("echo");
  n = tcp.rx_len;
  if (n + 5 > sizeof reply)
    guest_fail ("echo: line too long");
  memcpy (reply, "ECHO:", 5);
  upper (reply + 5, (const char *) tcp.rx, n);
  tcp_send_stream (n + 5, fill_copy, reply);
  tcp_close (true);
  printf ("echo: served ok\n");
}

static void
throughput (uint16_t port, uint32_t mb)
{
  uint32_t total = mb << 20;
  uint64_t t0;

  tcp_connect (router_ip, port);
  printf ("throughput: connected\n");
  t0 = now_ms ();
  tcp_send_stream (total, fill_pattern, NULL);
  tcp_close (false);
  printf ("throughput: sent %u bytes\n", total);
  printf ("info: %u ms, %u go-backs, %u window waits, tx %u kicks (%u suppressed), rx %u\n",
          (unsigned) (now_ms () - t0), tcp_go_backs, tcp_window_waits, txq->kicks,
          txq->kicks_suppressed, rxq->completed);
}

/* ---- malformed buffers ---------------------------------------------------------------- */

/* Waits for DEVICE_NEEDS_RESET; prints what happened. Never looks at the receive ring (it
 * may hold the broken buffer). */
static void
expect_needs_reset (const char *what)
{
  uint64_t end = now_ms () + 5000;

  while (!(virtio_status (&dev) & VIRTIO_STATUS_NEEDS_RESET))
    {
      if (now_ms () > end)
        {
          printf ("%s: ignored\n", what);
          return;
        }
      tx_reap ();
      virtio_idle (dev.irq_mode);
    }
  printf ("%s: needs reset\n", what);
}

static void
recover (VirtioIrqMode mode, BadRx bad)
{
  if (!virtio_reset (&dev))
    guest_fail ("the device does not reset");
  net_setup (mode, bad, false);
}

static void
bad_buffers (VirtioIrqMode mode)
{
  static const uint8_t zero[6];
  TxBuf *b = tx_get ();
  VirtioBuf x = { b->hdr, 4, false };

  /* A transmit chain shorter than the header. */
  if (virtq_add (txq, &x, 1, 0, b, false) < 0)
    guest_fail ("transmit queue full");
  virtq_kick (txq);
  expect_needs_reset ("bad tx header");

  /* A device-readable receive buffer, then one smaller than the header: an ARP reply from
   * the gateway lands in it. */
  recover (mode, BAD_RX_READABLE);
  arp_send (1, bcast_mac, zero, router_ip);
  expect_needs_reset ("bad rx buffer (readable)");
  recover (mode, BAD_RX_TINY);
  arp_send (1, bcast_mac, zero, router_ip);
  expect_needs_reset ("bad rx buffer (8 bytes)");

  /* A reset brings it back. */
  recover (mode, BAD_NONE);
  gw_known = false;
  arp_gateway ();
  printf ("bad: recovered\n");
}

/* ---- main ----------------------------------------------------------------------------- */

int
guest_main (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_POLL);
  unsigned long udp_port = 0, tcp_port = 0, port = 0, mb = 1, v;

  printf ("net test\n");
  printf ("irq: %s\n", virtio_irq_mode_name (mode));
  if (cmdline_uint ("rxbuf", &v))
    {
      if (v < 64 || v > RX_BUF_MAX)
        guest_fail ("rxbuf=%lu: 64 to %u", v, RX_BUF_MAX);
      rxbuf_size = (unsigned) v;
    }
  if (cmdline_uint ("rxq", &v))
    {
      if (v < 2 || v > RX_QUEUE_SIZE || (v & (v - 1)))
        guest_fail ("rxq=%lu: a power of two from 2 to %u", v, RX_QUEUE_SIZE);
      rxq_size = (unsigned) v;
    }
  cmdline_uint ("udp", &udp_port);
  cmdline_uint ("tcp", &tcp_port);
  cmdline_uint ("port", &port);
  cmdline_uint ("mb", &mb);
  if (udp_port > 65535 || tcp_port > 65535 || port > 65535 || mb == 0 || mb > 1024)
    guest_fail ("bad command line");

  net_setup (mode, BAD_NONE, true);

  if (cmdline_has ("mode=cpu"))
    {
      /* How fast this CPU makes segments, without the card (for comparing hosts). */
      uint64_t t0 = now_ms ();
      uint8_t *seg = virtio_alloc (MSS, 64);
      uint32_t sum = 0;

      for (uint32_t off = 0; off < (1u << 20); off += MSS)
        {
          fill_pattern (seg, off, MSS, NULL);
          sum += csum_add (0, seg, MSS);
        }
      printf ("info: cpu: 1 MiB of segments in %u ms (%x)\n", (unsigned) (now_ms () - t0), sum);
      t0 = now_ms ();
      for (int i = 0; i < 200; i++)
        *txq->notify = txq->index;
      printf ("info: cpu: 200 kicks in %u ms\n", (unsigned) (now_ms () - t0));
      return 0;
    }
  dhcp ();
  arp_gateway ();
  if (cmdline_has ("mode=echo"))
    {
      if (!port)
        guest_fail ("mode=echo needs port=N");
      echo_server ((uint16_t) port);
      return 0;
    }
  if (cmdline_has ("mode=bad"))
    {
      bad_buffers (mode);
      return 0;
    }
  if (cmdline_has ("mode=throughput"))
    {
      if (!tcp_port)
        guest_fail ("mode=throughput needs tcp=N");
      throughput ((uint16_t) tcp_port, (uint32_t) mb);
      return 0;
    }
  if (!udp_port || !tcp_port)
    guest_fail ("udp=N and tcp=N are needed");
  udp_test ((uint16_t) udp_port);
  tcp_test ((uint16_t) tcp_port);
  printf ("info: rx %u completed, tx %u completed, %u kicks\n", rxq->completed, txq->completed,
          txq->kicks);
  return 0;
}
