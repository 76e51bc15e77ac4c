/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Network backends: where a network card's frames go.
 *
 *  - user: libslirp (no root). The guest sits on 10.0.2.0/24 behind a NAT: gateway and host
 *    10.0.2.2 (which also reaches the host's loopback), DNS 10.0.2.3, DHCP hands out
 *    10.0.2.15 onwards; IPv6 fec0::/64 likewise. Host ports forward into the guest with
 *    QEMU's hostfwd syntax.
 *  - tap: an existing tap interface (/dev/net/tun, IFF_TAP | IFF_NO_PI). Creating one needs
 *    CAP_NET_ADMIN, or a persistent tap owned by the user (`ip tuntap add NAME mode tap
 *    user $USER`).
 *
 * Threads: a backend lives on one GMainContext, the machine's I/O thread. Frames from the
 * network reach the device through @receive on that thread; the device sends with
 * vr_net_backend_send() on that thread too (its queue kicks arrive there). Only
 * vr_net_backend_accept_input() and vr_net_backend_detach() / _free() may be called from
 * other threads.
 *
 * Flow control: @receive returns false when the device has no room (the guest has not
 * posted receive buffers). The backend then keeps that frame (and any it cannot help making
 * meanwhile, up to a bound) and stops reading from the network until the device calls
 * vr_net_backend_accept_input(): the pending frames go first, then reading resumes. A device
 * that the guest has not set up should accept and drop frames (return true).
 */

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

G_BEGIN_DECLS

typedef struct _VrNetBackend VrNetBackend;

/* Largest Ethernet frame a backend passes (without FCS): a 64 KiB IP packet plus headers. */
#define VR_NET_MAX_FRAME   (65536 + 14 + 4)

/* A frame for the device (I/O thread). Return false to refuse it for now: see above. */
typedef bool (*VrNetReceive) (void          *opaque,
                              const uint8_t *frame,
                              size_t         len);

typedef enum
{
  VR_NET_NONE,
  VR_NET_USER,
  VR_NET_TAP,
} VrNetKind;

/* One host port forward: [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT. */
typedef struct
{
  bool           is_udp;
  struct in_addr host_addr;    /* INADDR_ANY when left out */
  uint16_t       host_port;
  struct in_addr guest_addr;   /* 10.0.2.15 when left out */
  uint16_t       guest_port;
} VrNetHostFwd;

/* What `--net user[,hostfwd=RULE]...[,mac=MAC] | tap:NAME[,mac=MAC] | none` says. */
typedef struct
{
  VrNetKind  kind;
  char     **hostfwds;    /* user: NULL-terminated rules in QEMU syntax, or NULL */
  char      *tap_ifname;  /* tap */
  uint8_t    mac[6];      /* default 52:54:00:12:34:56 */
} VrNetConfig;

#define VR_NET_DEFAULT_MAC  { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }

/* clang-format off */
void          vr_net_config_init          (VrNetConfig        *config);
void          vr_net_config_clear         (VrNetConfig        *config);
/* Parses a --net value into @config (initialised or cleared first); every hostfwd rule and
 * the MAC address are checked here, so a typo is reported before the machine starts. */
bool          vr_net_config_parse         (VrNetConfig        *config,
                                           const char         *spec,
                                           GError            **error);
/* The backend @config asks for (not VR_NET_NONE), living on @io_context. */
VrNetBackend *vr_net_backend_new          (const VrNetConfig  *config,
                                           GMainContext       *io_context,
                                           GError            **error);

/* "52:54:00:12:34:56" (or with '-'): a unicast address, not all zeros. */
bool          vr_net_parse_mac            (const char         *s,
                                           uint8_t             mac[6],
                                           GError            **error);
bool          vr_net_parse_hostfwd        (const char         *s,
                                           VrNetHostFwd       *fwd,
                                           GError            **error);

/* User networking: @hostfwds (NULL-terminated, may be NULL) are set up at once, so a port
 * already in use is reported here. */
VrNetBackend *vr_net_user_new             (const char *const  *hostfwds,
                                           GMainContext       *io_context,
                                           GError            **error);
/* Attaches to the existing tap interface @ifname (or creates it, with CAP_NET_ADMIN). */
VrNetBackend *vr_net_tap_new              (const char         *ifname,
                                           GError            **error);

const char   *vr_net_backend_get_kind     (VrNetBackend       *nb);
/* Starts delivering frames to @receive on @context (NULL: the context the backend was made
 * for; the user backend always runs on its own). Replaces an earlier attachment. */
void          vr_net_backend_attach       (VrNetBackend       *nb,
                                           GMainContext       *context,
                                           VrNetReceive        receive,
                                           void               *opaque);
/* No @receive call runs after this returns; frames meanwhile are dropped. Any thread; call
 * it without holding a lock that @receive takes. */
void          vr_net_backend_detach       (VrNetBackend       *nb);
/* Sends one frame (gathered from @iov) to the network; false when the backend dropped it.
 * I/O thread. */
bool          vr_net_backend_send         (VrNetBackend       *nb,
                                           const struct iovec *iov,
                                           unsigned            n);
/* The device has room again (any thread): pending frames are delivered, reading resumes. */
void          vr_net_backend_accept_input (VrNetBackend       *nb);
/* Detaches and frees (sockets, forwarded ports). */
void          vr_net_backend_free         (VrNetBackend       *nb);
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VrNetBackend, vr_net_backend_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (VrNetConfig, vr_net_config_clear)

G_END_DECLS
