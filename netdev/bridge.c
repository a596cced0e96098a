/*
 * netdev kind "bridge": a multi-queue TAP (tap.c), joined to its world by world.c (a Linux
 * or Open vSwitch bridge, a route, a NAT: see world.h). One TAP queue fd per netdev queue; a
 * burst is a write or read a frame (the TAP has no batched call).
 */
#define SX_LOG_MODULE "netdev"
#include "netdev/netdev_impl.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netdev/tap.h"

_Static_assert(SX_NETDEV_HDR_LEN == SX_TAP_VNET_HDR_LEN, "the TAP's frames are netdev's");
_Static_assert(SX_NETDEV_MAX_QUEUES <= SX_TAP_MAX_QUEUES, "a TAP queue per netdev queue");

static int bridge_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    struct sx_tap_config tc = { .name = cfg->name, .nqueues = cfg->nqueues, .mac = cfg->mac,
                                .mtu = cfg->mtu, .up = true };
    struct sx_tap *tap;
    int rc = sx_tap_open(&tc, &tap);
    if (rc < 0)
        return rc;
    nd->priv = tap;
    return 0;
}

static int bridge_attach(struct sx_netdev *nd, const struct sx_world *w, char *err,
                         size_t errlen)
{
    return sx_netdev_link_attach(nd, w, sx_tap_name(nd->priv), err, errlen);
}

static void bridge_close(struct sx_netdev *nd)
{
    sx_tap_close(nd->priv);
    nd->priv = NULL;
}

static int bridge_set_queues(struct sx_netdev *nd, unsigned n)
{
    struct sx_tap *tap = nd->priv;
    if (sx_tap_nqueues(tap) <= 1)
        return 0;
    for (unsigned i = 0; i < sx_tap_nqueues(tap); i++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_flags = i < n ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
        /* Attaching an attached queue (or detaching a detached one) is EINVAL: not an error. */
        if (ioctl(sx_tap_fd(tap, i), TUNSETQUEUE, &ifr) < 0 && errno != EINVAL)
            return -errno;
    }
    return 0;
}

static int bridge_set_offloads(struct sx_netdev *nd, const struct sx_net_peer_caps *caps)
{
    return sx_tap_set_offload(nd->priv,
                              sx_tap_offload_for(caps->csum, caps->gso_tcpv4, caps->gso_tcpv6));
}

static int bridge_poll_fd(struct sx_netdev *nd, unsigned q)
{
    return sx_tap_fd(nd->priv, q);
}

static int bridge_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n)
{
    int fd = sx_tap_fd(nd->priv, q);
    if (fd < 0)
        return fd;
    int sent = 0;
    for (unsigned i = 0; i < n; i++) {
        if (write(fd, b[i].data, b[i].len) < 0)
            b[i].len = 0;
        else
            sent++;
    }
    return sent;
}

static int bridge_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                           uint32_t cap)
{
    int fd = sx_tap_fd(nd->priv, q);
    if (fd < 0)
        return fd;
    unsigned got = 0;
    while (got < n) {
        ssize_t r = read(fd, b[got].data, cap);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || got)
                break;
            return -errno;
        }
        b[got++].len = (uint32_t)r;
    }
    return (int)got;
}

const struct sx_netdev_ops sx_netdev_bridge_ops = {
    .kind = "bridge",
    .open = bridge_open,
    .close = bridge_close,
    .attach = bridge_attach,
    .detach = sx_netdev_link_detach,
    .set_queues = bridge_set_queues,
    .set_offloads = bridge_set_offloads,
    .poll_fd = bridge_poll_fd,
    .tx_burst = bridge_tx_burst,
    .rx_burst = bridge_rx_burst,
};
