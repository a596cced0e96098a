/*
 * netdev kind "bridge": a multi-queue TAP (tap.c), joined to its world by world.c (a Linux
 * or Open vSwitch bridge, a route, a NAT: see world.h). One TAP queue fd per netdev queue, each
 * with its batched I/O handle (sx_tap_io): a burst is one io_uring submission (or, with
 * per_frame_io or without io_uring, a read or write a frame), and rx_ready knows without a
 * system call whether a read can find anything. Every world goes through the same bursts.
 */
#define SX_LOG_MODULE "netdev"
#include "netdev/netdev_impl.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netdev/tap.h"

_Static_assert(SX_NETDEV_HDR_LEN == SX_TAP_VNET_HDR_LEN, "the TAP's frames are netdev's");
_Static_assert(SX_NETDEV_MAX_QUEUES <= SX_TAP_MAX_QUEUES, "a TAP queue per netdev queue");

struct bridge {
    struct sx_tap *tap;
    struct sx_tap_io *io[SX_NETDEV_MAX_QUEUES];
};

static void bridge_close(struct sx_netdev *nd)
{
    struct bridge *b = nd->priv;
    if (!b)
        return;
    for (unsigned q = 0; q < SX_NETDEV_MAX_QUEUES; q++)
        sx_tap_io_close(b->io[q]);
    sx_tap_close(b->tap);
    free(b);
    nd->priv = NULL;
}

static int bridge_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    struct sx_tap_config tc = { .name = cfg->name, .nqueues = cfg->nqueues, .mac = cfg->mac,
                                .mtu = cfg->mtu, .up = true };
    struct bridge *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    nd->priv = b;
    int rc = sx_tap_open(&tc, &b->tap);
    for (unsigned q = 0; rc == 0 && q < sx_tap_nqueues(b->tap); q++)
        rc = sx_tap_io_open(&b->io[q], sx_tap_fd(b->tap, q),
                            cfg->per_frame_io ? SX_TAP_IO_SYSCALLS : 0);
    if (rc < 0)
        bridge_close(nd);
    return rc;
}

static int bridge_attach(struct sx_netdev *nd, const struct sx_world *w, char *err,
                         size_t errlen)
{
    return sx_netdev_link_attach(nd, w, sx_tap_name(((struct bridge *)nd->priv)->tap), err,
                                 errlen);
}

static int bridge_set_queues(struct sx_netdev *nd, unsigned n)
{
    struct sx_tap *tap = ((struct bridge *)nd->priv)->tap;
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
    return sx_tap_set_offload(((struct bridge *)nd->priv)->tap,
                              sx_tap_offload_for(caps->csum, caps->gso_tcpv4, caps->gso_tcpv6));
}

static int bridge_poll_fd(struct sx_netdev *nd, unsigned q)
{
    return sx_tap_fd(((struct bridge *)nd->priv)->tap, q);
}

static struct sx_tap_io *queue_io(struct sx_netdev *nd, unsigned q)
{
    return q < nd->nqueues ? ((struct bridge *)nd->priv)->io[q] : NULL;
}

static int bridge_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n)
{
    struct sx_tap_io *io = queue_io(nd, q);
    if (!io)
        return -EINVAL;
    struct iovec iov[SX_TAP_IO_MAX];
    struct sx_tap_frame f[SX_TAP_IO_MAX];
    int sent = 0;
    for (unsigned done = 0; done < n;) {
        unsigned k = n - done < SX_TAP_IO_MAX ? n - done : SX_TAP_IO_MAX;
        for (unsigned i = 0; i < k; i++) {
            iov[i] = (struct iovec){ b[done + i].data, b[done + i].len };
            f[i] = (struct sx_tap_frame){ .iov = &iov[i], .niov = 1 };
        }
        sent += sx_tap_io_write(io, f, k);
        for (unsigned i = 0; i < k; i++)
            if (f[i].res < 0)
                b[done + i].len = 0;
        done += k;
    }
    return sent;
}

static int bridge_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                           uint32_t cap)
{
    struct sx_tap_io *io = queue_io(nd, q);
    if (!io)
        return -EINVAL;
    if (n > SX_TAP_IO_MAX)
        n = SX_TAP_IO_MAX;
    struct iovec iov[SX_TAP_IO_MAX];
    struct sx_tap_frame f[SX_TAP_IO_MAX];
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){ b[i].data, cap };
        f[i] = (struct sx_tap_frame){ .iov = &iov[i], .niov = 1 };
    }
    int got = sx_tap_io_read(io, f, n);
    /* The frames' buffers may have been exchanged among f[]: hand them back the same way. */
    for (unsigned i = 0; i < n; i++) {
        b[i].data = f[i].iov->iov_base;
        b[i].len = got > 0 && i < (unsigned)got ? (uint32_t)f[i].res : 0;
    }
    return got;
}

static bool bridge_rx_ready(struct sx_netdev *nd, unsigned q)
{
    struct sx_tap_io *io = queue_io(nd, q);
    return !io || sx_tap_io_rx_ready(io);
}

static void bridge_queue_stop(struct sx_netdev *nd, unsigned q)
{
    sx_tap_io_release(queue_io(nd, q));
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
    .rx_ready = bridge_rx_ready,
    .queue_stop = bridge_queue_stop,
};
