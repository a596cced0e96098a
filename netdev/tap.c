/* TAP devices with vnet headers; see tap.h. */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/tap.h"
#include "netdev/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct sx_tap {
    char name[IFNAMSIZ];
    int ifindex;
    bool up;
    unsigned nqueues;
    int fds[SX_TAP_MAX_QUEUES];
    struct sx_nl *nl; /* route socket in the TAP's current namespace */
};

/* Open one queue of the TAP called name in the calling thread's namespace. fd or -errno. */
static int tap_open_queue(const char *name, bool multi, bool first)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), err;

    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
    /* The first queue must create the device: refuse to share an existing TAP of that name. */
    if (first)
        ifr.ifr_flags |= IFF_TUN_EXCL;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int tap_offload(int fd, unsigned offload)
{
    if (offload & ~SX_TAP_OFFLOADS)
        return -EINVAL;
    if ((offload & (TUN_F_TSO4 | TUN_F_TSO6)) && !(offload & TUN_F_CSUM))
        return -EINVAL;
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offload) < 0)
        return -errno;
    return 0;
}

/* Create the queues; runs in whichever namespace the TAP is to live in. */
static int tap_create_queues(struct sx_tap *tap, const struct sx_tap_config *cfg)
{
    bool multi = tap->nqueues > 1;
    int hdrsz = SX_TAP_VNET_HDR_LEN, le = 1, err;

    for (unsigned q = 0; q < tap->nqueues; q++) {
        int fd = tap_open_queue(tap->name, multi, q == 0);
        if (fd < 0)
            return fd;
        tap->fds[q] = fd;
    }
    /* Header size, endianness and offloads are per device; set them through queue 0. */
    if (ioctl(tap->fds[0], TUNSETVNETHDRSZ, &hdrsz) < 0)
        return -errno;
    /* Fix the header's byte order to little-endian (a no-op on x86, explicit elsewhere). */
    if (ioctl(tap->fds[0], TUNSETVNETLE, &le) < 0 && errno != EINVAL)
        return -errno;
    err = tap_offload(tap->fds[0], cfg->offload);
    if (err)
        return err;
    return 0;
}

static int tap_configure(struct sx_tap *tap, const struct sx_tap_config *cfg)
{
    int err = sx_nl_ifindex(tap->nl, tap->name, &tap->ifindex);
    if (err)
        return err;
    if (cfg->mac && (err = sx_nl_link_set_mac(tap->nl, tap->ifindex, cfg->mac)))
        return err;
    if (cfg->mtu && (err = sx_nl_link_set_mtu(tap->nl, tap->ifindex, cfg->mtu)))
        return err;
    if (cfg->bridge) {
        int br;
        if ((err = sx_nl_bridge_ensure(tap->nl, cfg->bridge, &br)))
            return err;
        if ((err = sx_nl_link_set_up(tap->nl, br, true)))
            return err;
        if ((err = sx_nl_link_set_master(tap->nl, tap->ifindex, br)))
            return err;
    }
    if (cfg->up && (err = sx_nl_link_set_up(tap->nl, tap->ifindex, true)))
        return err;
    return 0;
}

int sx_tap_open(const struct sx_tap_config *cfg, struct sx_tap **out)
{
    struct sx_tap *tap;
    int err, saved = -1;

    *out = NULL;
    if (!cfg->name || !cfg->name[0] || strlen(cfg->name) >= IFNAMSIZ ||
        cfg->nqueues > SX_TAP_MAX_QUEUES || (cfg->offload & ~SX_TAP_OFFLOADS))
        return -EINVAL;
    tap = calloc(1, sizeof(*tap));
    if (!tap)
        return -ENOMEM;
    for (unsigned q = 0; q < SX_TAP_MAX_QUEUES; q++)
        tap->fds[q] = -1;
    snprintf(tap->name, sizeof(tap->name), "%s", cfg->name);
    tap->nqueues = cfg->nqueues ? cfg->nqueues : 1;
    tap->up = cfg->up;

    if (cfg->use_netns) {
        /* /dev/net/tun binds the device to the namespace of the thread that opens it: step
         * this thread into the target for the opens, then straight back. */
        err = sx_nl_netns_enter(cfg->netns_fd, &saved);
        if (err)
            goto err_close;
        err = tap_create_queues(tap, cfg);
        if (!err)
            err = sx_nl_open(&tap->nl);
        int err2 = sx_nl_netns_leave(saved);
        if (!err)
            err = err2;
    } else {
        err = tap_create_queues(tap, cfg);
        if (!err)
            err = sx_nl_open(&tap->nl);
    }
    if (err)
        goto err_close;
    err = tap_configure(tap, cfg);
    if (err)
        goto err_close;
    *out = tap;
    return 0;

err_close:
    sx_warn("cannot create TAP %s: %s", cfg->name, strerror(-err));
    sx_tap_close(tap);
    return err;
}

void sx_tap_close(struct sx_tap *tap)
{
    if (!tap)
        return;
    for (unsigned q = 0; q < SX_TAP_MAX_QUEUES; q++)
        if (tap->fds[q] >= 0) {
            close(tap->fds[q]);
            tap->fds[q] = -1;
        }
    sx_nl_close(tap->nl);
    free(tap);
}

int sx_tap_fd(const struct sx_tap *tap, unsigned q)
{
    return q < tap->nqueues ? tap->fds[q] : -EINVAL;
}

unsigned sx_tap_nqueues(const struct sx_tap *tap)
{
    return tap->nqueues;
}

int sx_tap_ifindex(const struct sx_tap *tap)
{
    return tap->ifindex;
}

const char *sx_tap_name(const struct sx_tap *tap)
{
    return tap->name;
}

int sx_tap_set_offload(struct sx_tap *tap, unsigned offload)
{
    return tap_offload(tap->fds[0], offload);
}

int sx_tap_set_mtu(struct sx_tap *tap, unsigned mtu)
{
    return sx_nl_link_set_mtu(tap->nl, tap->ifindex, mtu);
}

int sx_tap_move(struct sx_tap *tap, int netns_fd, const char *newname)
{
    struct sx_nl *nl = NULL;
    const char *name = newname ? newname : tap->name;
    int err;

    if (newname && (!newname[0] || strlen(newname) >= IFNAMSIZ))
        return -EINVAL;
    /* Open the target namespace's socket first, so a failure leaves the TAP where it was. */
    err = sx_nl_open_netns(netns_fd, &nl);
    if (err)
        return err;
    err = sx_nl_link_set_netns(tap->nl, tap->ifindex, netns_fd, newname);
    if (err)
        goto err_nl;
    sx_nl_close(tap->nl);
    tap->nl = nl;
    snprintf(tap->name, sizeof(tap->name), "%s", name);
    err = sx_nl_ifindex(tap->nl, tap->name, &tap->ifindex);
    if (err)
        return err;
    if (tap->up)
        return sx_nl_link_set_up(tap->nl, tap->ifindex, true);
    return 0;

err_nl:
    sx_nl_close(nl);
    return err;
}
