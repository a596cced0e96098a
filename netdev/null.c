/*
 * netdev kind "null": a world side that takes every frame and gives none, with no kernel
 * device behind it. What netback's ring side alone can move (bench/net drives it with
 * splitxen-pktgen): the frames are grant-copied, validated and answered as for any world side,
 * then dropped here. It opens whatever world the vif's keys name and joins none: there is no
 * interface to attach (attach NULL), and the keys are still checked by whoever parsed them.
 */
#include "netdev/netdev_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct null_dev {
    int fd;   /* never readable: there is nothing to receive */
};

static int null_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    (void)cfg;
    struct null_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->fd < 0) {
        int err = -errno;
        free(d);
        return err;
    }
    nd->priv = d;
    return 0;
}

static void null_close(struct sx_netdev *nd)
{
    struct null_dev *d = nd->priv;
    if (!d)
        return;
    close(d->fd);
    free(d);
    nd->priv = NULL;
}

static int null_set_queues(struct sx_netdev *nd, unsigned n)
{
    (void)nd;
    (void)n;
    return 0;
}

static int null_set_offloads(struct sx_netdev *nd, const struct sx_net_peer_caps *caps)
{
    (void)nd;
    (void)caps;
    return 0;
}

static int null_poll_fd(struct sx_netdev *nd, unsigned q)
{
    (void)q;
    return ((struct null_dev *)nd->priv)->fd;
}

static int null_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n)
{
    (void)nd;
    (void)q;
    (void)b;
    return (int)n;
}

static int null_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                         uint32_t cap)
{
    (void)nd;
    (void)q;
    (void)b;
    (void)n;
    (void)cap;
    return 0;
}

static bool null_rx_ready(struct sx_netdev *nd, unsigned q)
{
    (void)nd;
    (void)q;
    return false;   /* nothing ever comes: a queue thread need not ask */
}

const struct sx_netdev_ops sx_netdev_null_ops = {
    .kind = "null",
    .open = null_open,
    .close = null_close,
    .set_queues = null_set_queues,
    .set_offloads = null_set_offloads,
    .poll_fd = null_poll_fd,
    .tx_burst = null_tx_burst,
    .rx_burst = null_rx_burst,
    .rx_ready = null_rx_ready,
};
