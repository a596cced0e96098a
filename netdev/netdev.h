/*
 * netdev: the world side of a network device, behind one ops table, for netback's vifs and
 * the device model's e1000. Kinds: a TAP (kind "bridge", bridge.c) and AF_XDP sockets on an
 * uplink (kind "afxdp", afxdp.c) and a port of a switch on a DPDK uplink (kind "dpdk",
 * dpdk.c, loaded on first use by dpdk_kind.c).
 *
 * The control half of the table also joins the device to its world: a mode chosen per vif
 * with xl's keys (world.h: vif-bridge with VLANs, vif-openvswitch, vif-route, vif-nat). A kind
 * whose device is a Linux interface (the TAP) hands that interface to world.c; a kind that
 * is not gives its own attach, or refuses the modes it cannot do (-EOPNOTSUPP).
 *
 * Frames cross in bursts. Every frame handed to tx_burst or filled in by rx_burst is a
 * virtio-net header (SX_NETDEV_HDR_LEN bytes, little-endian; vnet.h converts it to and from
 * netif's offload flags) followed by the Ethernet frame. A burst is one indirect call; what an
 * implementation does per frame is its own affair.
 *
 * Threads: queue q (< nqueues) belongs to one thread at a time (tx_burst, rx_burst, poll_fd);
 * the control calls (open, set_queues, set_offloads, close) come from the control thread while
 * no queue thread runs. Every int is 0 (or a count) or -errno.
 */
#ifndef SPLITXEN_NETDEV_H
#define SPLITXEN_NETDEV_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "netdev/vnet.h"
#include "netdev/world.h"

#define SX_NETDEV_HDR_LEN 12u          /* sizeof(struct virtio_net_hdr_v1) */
#define SX_NETDEV_MAX_QUEUES 16u

struct sx_netdev_config {
    const char *kind;      /* "bridge" (NULL: the same), "afxdp" or "dpdk" (world modes
                              SX_WORLD_AFXDP, _DPDK; sx_netdev_kind_for picks it) */
    const char *name;      /* the device as the world sees it, e.g. "vif5.0" (< IFNAMSIZ) */
    unsigned nqueues;      /* queues to open: the most the guest may use (1..MAX_QUEUES) */
    const uint8_t *mac;    /* 6 bytes, or NULL to keep the kernel's */
    unsigned mtu;          /* 0: the default */
    const char *bridge;    /* no world: the Linux bridge to join (created if missing) */
    const struct sx_world *world;   /* the world to join (world.h); NULL: `bridge` above */
    char *err;             /* when open fails, why (naming the key at fault); may be NULL */
    size_t errlen;
};

/* One frame of a burst: header + Ethernet frame in data[0..len). */
struct sx_netdev_buf {
    uint8_t *data;
    uint32_t len;
};

struct sx_netdev;

struct sx_netdev_ops {
    const char *kind;
    /* Set nd->priv up; on failure leave nothing behind (close is not called). */
    int (*open)(struct sx_netdev *nd, const struct sx_netdev_config *cfg);
    void (*close)(struct sx_netdev *nd);
    /* Join the device to world w (after open), and leave it (before close). attach leaves
     * nothing behind when it fails and says why in err; detach is idempotent. Idempotent
     * too over what a previous backend left for a device of the same name (restart). Both
     * NULL for a kind whose open joins its world itself (afxdp, dpdk). */
    int (*attach)(struct sx_netdev *nd, const struct sx_world *w, char *err, size_t errlen);
    void (*detach)(struct sx_netdev *nd);
    /* Only queues [0, n) carry traffic now (the guest negotiated n); the world sends the others
     * nothing. */
    int (*set_queues)(struct sx_netdev *nd, unsigned n);
    /* What the receiver behind the device accepts: the world may hand rx_burst partial
     * checksums and GSO frames of those kinds only. NULL: the world hands it neither. */
    int (*set_offloads)(struct sx_netdev *nd, const struct sx_net_peer_caps *caps);
    /* Readable when queue q has frames for rx_burst. */
    int (*poll_fd)(struct sx_netdev *nd, unsigned q);
    /* Send b[0..n) on queue q. Returns how many the world took; each frame it refused (a full
     * queue, a link down: lost as on a wire) gets len 0. */
    int (*tx_burst)(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n);
    /* Fill up to n buffers of cap bytes each (b[i].data set by the caller) with the frames
     * waiting on queue q, setting b[i].len. Returns how many (0: none waiting), or -errno when
     * reading failed before the first. A frame may be shorter than a header: the caller
     * checks. */
    int (*rx_burst)(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                    uint32_t cap);
};

/* Public so that the burst calls below inline to one indirect call. */
struct sx_netdev {
    const struct sx_netdev_ops *ops;
    void *priv;
    unsigned nqueues;              /* open may lower it: the queues the world side offers */
    bool tx_no_gso;                /* tx_burst refuses GSO frames: offer the guest no GSO */
    struct sx_world_link *world;   /* the kind's attach state (world.c's, for a TAP) */
};

/* Open a device of cfg->kind and join it to its world: -EINVAL for an unknown kind or a bad
 * config, else the kind's open or attach (with cfg->err filled). */
int sx_netdev_open(struct sx_netdev **out, const struct sx_netdev_config *cfg);
/* The kind that serves world w: "afxdp" for vif-afxdp, "dpdk" for vif-dpdk, else "bridge"
 * (a TAP). */
const char *sx_netdev_kind_for(const struct sx_world *w);
/* Leave the world, close the device. NULL-safe. */
void sx_netdev_close(struct sx_netdev *nd);

/* For kinds whose device is a Linux interface in the caller's namespace: attach through
 * world.c (sx_world_attach on ifname), and its detach. */
int sx_netdev_link_attach(struct sx_netdev *nd, const struct sx_world *w, const char *ifname,
                          char *err, size_t errlen);
void sx_netdev_link_detach(struct sx_netdev *nd);

static inline int sx_netdev_set_queues(struct sx_netdev *nd, unsigned n)
{
    return nd->ops->set_queues(nd, n);
}

static inline int sx_netdev_set_offloads(struct sx_netdev *nd, const struct sx_net_peer_caps *c)
{
    return nd->ops->set_offloads ? nd->ops->set_offloads(nd, c) : 0;
}

static inline int sx_netdev_poll_fd(struct sx_netdev *nd, unsigned q)
{
    return q < nd->nqueues ? nd->ops->poll_fd(nd, q) : -EINVAL;
}

static inline int sx_netdev_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b,
                                     unsigned n)
{
    return nd->ops->tx_burst(nd, q, b, n);
}

static inline int sx_netdev_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b,
                                     unsigned n, uint32_t cap)
{
    return nd->ops->rx_burst(nd, q, b, n, cap);
}

#endif
