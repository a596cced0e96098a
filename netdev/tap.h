/*
 * TAP devices for netback's world side (vif<domid>.<devid> on a bridge) and for the TAP
 * netfront (eth0 inside a guest network namespace).
 *
 * Every queue fd is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (plus IFF_MULTI_QUEUE when
 * more than one queue), O_NONBLOCK | O_CLOEXEC. Each frame read or written on a queue fd is
 *
 *     struct virtio_net_hdr_v1 (SX_TAP_VNET_HDR_LEN = 12 bytes, little-endian) | Ethernet frame
 *
 * The 12-byte layout is the virtio 1.0 / mergeable-rx-buffers header (the one vhost-net and QEMU
 * use); its trailing num_buffers field is meaningless here: written as 0, ignored on read.
 * netdev/vnet.h converts this header to and from netif flags and GSO extras.
 *
 * Offloads (TUNSETOFFLOAD) describe what the reader of the TAP accepts, i.e. what the kernel
 * may hand us on read(): TUN_F_CSUM (partial checksums, IPv4 and IPv6 alike), TUN_F_TSO4,
 * TUN_F_TSO6 (both require TUN_F_CSUM). No UFO/USO/ECN: netif has no GSO type for them, so the
 * kernel segments those before we see them. Writes may always carry GSO and partial checksums.
 * For netback the offloads mirror the frontend's rx features (sx_tap_offload_for); for the TAP
 * netfront they mirror the backend's tx features.
 *
 * Closing the last queue fd removes the device (never made persistent).
 */
#ifndef SPLITXEN_NETDEV_TAP_H
#define SPLITXEN_NETDEV_TAP_H

#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stdint.h>

#define SX_TAP_VNET_HDR_LEN 12 /* sizeof(struct virtio_net_hdr_v1) */
#define SX_TAP_MAX_QUEUES 16
#define SX_TAP_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)

_Static_assert(sizeof(struct virtio_net_hdr_v1) == SX_TAP_VNET_HDR_LEN, "vnet header layout");

struct sx_tap;

struct sx_tap_config {
    const char *name;      /* required, e.g. "vif5.0" or "eth0" (< IFNAMSIZ) */
    unsigned nqueues;      /* 0 or 1: one queue; up to SX_TAP_MAX_QUEUES (IFF_MULTI_QUEUE) */
    const uint8_t *mac;    /* 6 bytes, or NULL to keep the kernel's random one */
    unsigned mtu;          /* 0: keep the default (1500) */
    unsigned offload;      /* TUN_F_* subset of SX_TAP_OFFLOADS */
    const char *bridge;    /* attach to this bridge (created if missing, brought up); or NULL */
    bool up;               /* bring the TAP up */
    bool use_netns;        /* create the TAP inside netns_fd instead of the thread's namespace */
    int netns_fd;          /* only read when use_netns */
};

/* Create and configure the TAP. On failure nothing is left behind. 0 or -errno. */
int sx_tap_open(const struct sx_tap_config *cfg, struct sx_tap **out);
/* Close every queue fd (the kernel removes the device). NULL-safe. */
void sx_tap_close(struct sx_tap *tap);

/* Non-blocking fd of queue q (< sx_tap_nqueues), or -EINVAL. */
int sx_tap_fd(const struct sx_tap *tap, unsigned q);
unsigned sx_tap_nqueues(const struct sx_tap *tap);
int sx_tap_ifindex(const struct sx_tap *tap);   /* in the namespace the TAP lives in now */
const char *sx_tap_name(const struct sx_tap *tap);

/* Change the offloads (e.g. when the frontend connects and its features are known). 0/-errno */
int sx_tap_set_offload(struct sx_tap *tap, unsigned offload);
/* Set the MTU (e.g. from the frontend's "mtu" key). 0 or -errno. */
int sx_tap_set_mtu(struct sx_tap *tap, unsigned mtu);
/* Move the TAP into netns_fd, renamed to newname (NULL keeps the name), and bring it up again
 * if cfg.up was set. The queue fds stay valid. 0 or -errno. */
int sx_tap_move(struct sx_tap *tap, int netns_fd, const char *newname);

/*
 * The offloads a TAP read side may use for a receiver with these features (netif's
 * feature-no-csum-offload inverted, feature-gso-tcpv4, feature-gso-tcpv6). TUN_F_CSUM covers
 * IPv6 too: for a receiver without feature-ipv6-csum-offload, fill IPv6 checksums in software
 * (sx_net_rx_from_vnet does it given its caps).
 */
static inline unsigned sx_tap_offload_for(bool csum, bool gso_tcpv4, bool gso_tcpv6)
{
    if (!csum)
        return 0;
    return TUN_F_CSUM | (gso_tcpv4 ? TUN_F_TSO4 : 0) | (gso_tcpv6 ? TUN_F_TSO6 : 0);
}

#endif
