/*
 * Event channels on real Xen, over libxenevtchn (/dev/xen/evtchn, Linux module xen-evtchn).
 * The `xen` entry of the ops table in evtchn_impl.h; evtchn/evtchn.c owns the generic handle,
 * the bound-port count and the idempotent close. Every op returns >= 0 or -errno: the
 * library's -1 + errno is converted here, once.
 *
 * Masking. The kernel already gives the API's "a port that fires is masked until unmask": the
 * evtchn driver disables a port when it queues it and re-enables it on xenevtchn_unmask.
 * libxenevtchn has no call to mask a port that has not fired, so sx_evtchn_mask is emulated:
 *  - mask(port) sets a bit here; nothing is asked of the kernel.
 *  - pending() takes ports from the kernel; a port whose bit is set is not returned but
 *    recorded as deferred (the kernel keeps it disabled, so nothing more arrives for it).
 *  - unmask(port) of a port with a deferred event does not re-enable it in the kernel: it puts
 *    the port on a local ready set, and the next pending() returns it, still disabled, exactly
 *    as if it had fired then. Otherwise unmask is xenevtchn_unmask.
 * So that a deferred event delivered by unmask also wakes a poller, the pollable fd is an
 * epoll set holding the driver's fd and an eventfd raised while the ready set is non-empty.
 *
 * pending() never blocks: the driver's fd is set O_NONBLOCK at open (Linux's evtchn_read has
 * honoured O_NONBLOCK since the 3.x days the libxenevtchn header warns about), so "nothing
 * queued" is -EAGAIN. -EFBIG means the driver's ring overflowed (events were lost): rescan.
 *
 * One handle belongs to one thread, as with libxenevtchn.
 */
#define SX_LOG_MODULE "evtchn-xen"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xenevtchn.h>

#include "evtchn/evtchn_impl.h"

/* Largest port count of any event channel ABI (FIFO: 2^17). Ports at or above it are refused
 * by the emulated mask set; the kernel refuses them anyway. */
#define EVX_NR_PORTS ((unsigned)EVTCHN_FIFO_NR_CHANNELS)
#define EVX_WORD_BITS 64u
#define EVX_WORDS (EVX_NR_PORTS / EVX_WORD_BITS)

struct evtchn_xen {
    xenevtchn_handle *xce;
    int xce_fd;             /* owned by xce */
    int ready_fd;           /* eventfd: readable while nr_ready > 0 */
    int epoll_fd;           /* what fd() returns: xce_fd + ready_fd */
    unsigned nr_ready;
    unsigned ready_cursor;  /* word to resume the ready scan from */
    uint64_t *masked;       /* EVX_WORDS each: masked by sx_evtchn_mask */
    uint64_t *deferred;     /*   fired while masked, still disabled in the kernel */
    uint64_t *ready;        /*   deferred and since unmasked: pending() returns it */
};

static int neg_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

static bool bit_test(const uint64_t *map, evtchn_port_t port)
{
    return map[port / EVX_WORD_BITS] & (1ull << (port % EVX_WORD_BITS));
}

static void bit_set(uint64_t *map, evtchn_port_t port)
{
    map[port / EVX_WORD_BITS] |= 1ull << (port % EVX_WORD_BITS);
}

static void bit_clear(uint64_t *map, evtchn_port_t port)
{
    map[port / EVX_WORD_BITS] &= ~(1ull << (port % EVX_WORD_BITS));
}

static void ready_signal(struct evtchn_xen *e)
{
    uint64_t one = 1;

    /* Cannot fail short of a counter overflow (it is reset when the set empties). */
    if (write(e->ready_fd, &one, sizeof(one)) != sizeof(one))
        sx_warn("ready eventfd write: errno %d", errno);
}

static void ready_drain(struct evtchn_xen *e)
{
    uint64_t v;

    if (read(e->ready_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        sx_warn("ready eventfd read: errno %d", errno);
}

static void ready_add(struct evtchn_xen *e, evtchn_port_t port)
{
    bit_set(e->ready, port);
    if (e->nr_ready++ == 0)
        ready_signal(e);
}

static void ready_del(struct evtchn_xen *e, evtchn_port_t port)
{
    bit_clear(e->ready, port);
    if (--e->nr_ready == 0)
        ready_drain(e);
}

/* Any port in the ready set (nr_ready > 0). Rare path: only deferred events get here. */
static evtchn_port_t ready_pick(struct evtchn_xen *e)
{
    for (unsigned n = 0; n < EVX_WORDS; n++) {
        unsigned w = (e->ready_cursor + n) % EVX_WORDS;
        if (e->ready[w]) {
            e->ready_cursor = w;
            return w * EVX_WORD_BITS + (evtchn_port_t)__builtin_ctzll(e->ready[w]);
        }
    }
    return 0; /* unreachable while nr_ready > 0 */
}

static void evx_close(void *priv)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return;
    if (e->epoll_fd >= 0)
        close(e->epoll_fd);
    if (e->ready_fd >= 0)
        close(e->ready_fd);
    /* Closing the driver handle unbinds every port bound through it. */
    if (e->xce)
        xenevtchn_close(e->xce);
    free(e->masked);
    free(e);
}

static int epoll_add(int epfd, int fd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int evx_open(void **priv, struct sx_plat *p)
{
    struct evtchn_xen *e;
    int rc, fl;

    (void)p;
    *priv = NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->xce_fd = e->ready_fd = e->epoll_fd = -1;

    e->masked = calloc(3 * EVX_WORDS, sizeof(uint64_t));
    if (!e->masked) {
        rc = -ENOMEM;
        goto err_close;
    }
    e->deferred = e->masked + EVX_WORDS;
    e->ready = e->masked + 2 * EVX_WORDS;

    e->xce = xenevtchn_open(NULL, 0);
    if (!e->xce) {
        rc = neg_errno();
        sx_err("xenevtchn_open (/dev/xen/evtchn): %d (is xen-evtchn loaded?)", rc);
        goto err_close;
    }
    e->xce_fd = xenevtchn_fd(e->xce);
    if (e->xce_fd < 0) {
        rc = neg_errno();
        goto err_close;
    }
    fl = fcntl(e->xce_fd, F_GETFL);
    if (fl < 0 || fcntl(e->xce_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        rc = -errno;
        sx_err("O_NONBLOCK on the evtchn fd: %d", rc);
        goto err_close;
    }
    e->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->ready_fd < 0) {
        rc = -errno;
        goto err_close;
    }
    e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epoll_fd < 0) {
        rc = -errno;
        goto err_close;
    }
    rc = epoll_add(e->epoll_fd, e->xce_fd);
    if (rc == 0)
        rc = epoll_add(e->epoll_fd, e->ready_fd);
    if (rc < 0)
        goto err_close;
    *priv = e;
    return 0;

err_close:
    evx_close(e);
    return rc;
}

static int evx_fd(void *priv)
{
    struct evtchn_xen *e = priv;

    return e ? e->epoll_fd : -EINVAL;
}

static int port_or_errno(xenevtchn_port_or_error_t r)
{
    if (r < 0)
        return neg_errno();
    return r;
}

static int evx_bind_unbound(void *priv, domid_t remote)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return -EINVAL;
    return port_or_errno(xenevtchn_bind_unbound_port(e->xce, remote));
}

static int evx_bind_interdomain(void *priv, domid_t remote, evtchn_port_t rport)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return -EINVAL;
    return port_or_errno(xenevtchn_bind_interdomain(e->xce, remote, rport));
}

static int evx_unbind(void *priv, evtchn_port_t port)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return -EINVAL;
    if (xenevtchn_unbind(e->xce, port) < 0)
        return neg_errno();
    /* The port number may be reused by a later bind: forget its emulated mask state. */
    if (port < EVX_NR_PORTS) {
        if (bit_test(e->ready, port))
            ready_del(e, port);
        bit_clear(e->masked, port);
        bit_clear(e->deferred, port);
    }
    return 0;
}

static int evx_notify(void *priv, evtchn_port_t port)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return -EINVAL;
    if (xenevtchn_notify(e->xce, port) < 0)
        return neg_errno();
    return 0;
}

static int evx_pending(void *priv)
{
    struct evtchn_xen *e = priv;
    xenevtchn_port_or_error_t r;

    if (!e)
        return -EINVAL;
    if (e->nr_ready) {
        evtchn_port_t port = ready_pick(e);
        ready_del(e, port);
        return (int)port;
    }
    for (;;) {
        r = xenevtchn_pending(e->xce);
        if (r < 0)
            return neg_errno();        /* -EAGAIN: nothing queued */
        if ((unsigned)r >= EVX_NR_PORTS || !bit_test(e->masked, (evtchn_port_t)r))
            return r;
        /* Masked by sx_evtchn_mask: hold it (the kernel keeps it disabled) until unmask. */
        bit_set(e->deferred, (evtchn_port_t)r);
    }
}

static int evx_unmask(void *priv, evtchn_port_t port)
{
    struct evtchn_xen *e = priv;

    if (!e)
        return -EINVAL;
    if (port < EVX_NR_PORTS && bit_test(e->masked, port)) {
        bit_clear(e->masked, port);
        if (bit_test(e->deferred, port)) {
            /* Deliver the event that arrived while masked; the port stays disabled in the
             * kernel until the caller unmasks it after pending() returned it. */
            bit_clear(e->deferred, port);
            ready_add(e, port);
            return 0;
        }
    }
    if (xenevtchn_unmask(e->xce, port) < 0)
        return neg_errno();
    return 0;
}

static int evx_mask(void *priv, evtchn_port_t port)
{
    struct evtchn_xen *e = priv;

    if (!e || port >= EVX_NR_PORTS)
        return -EINVAL;
    bit_set(e->masked, port);
    if (bit_test(e->ready, port)) {
        /* Delivered by an unmask but not yet taken by pending(): hold it again. */
        ready_del(e, port);
        bit_set(e->deferred, port);
    }
    return 0;
}

const struct sx_evtchn_ops sx_evtchn_xen_ops = {
    .open = evx_open,
    .close = evx_close,
    .fd = evx_fd,
    .bind_unbound = evx_bind_unbound,
    .bind_interdomain = evx_bind_interdomain,
    .unbind = evx_unbind,
    .notify = evx_notify,
    .pending = evx_pending,
    .unmask = evx_unmask,
    .mask = evx_mask,
};
