/* See fake_xenevtchn.h. Single-threaded, like the tests that use it. */
#include "tests/fakes/fake_xenevtchn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct xenevtchn_handle {
    int fd;
};

struct fake_evtchn_state fake_evtchn;
static xenevtchn_handle *fake_last;

void fake_evtchn_reset(void)
{
    memset(&fake_evtchn, 0, sizeof(fake_evtchn));
    fake_evtchn.next_port = 5;
    fake_last = NULL;
}

static int fail(int err)
{
    errno = err;
    return -1;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
    xenevtchn_handle *h;

    (void)logger;
    (void)flags;
    fake_evtchn.opens++;
    if (fake_evtchn.open_errno) {
        errno = fake_evtchn.open_errno;
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    /* Blocking, like the device node libxenevtchn opens. */
    h->fd = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
    if (h->fd < 0) {
        free(h);
        return NULL;
    }
    fake_evtchn.live_handles++;
    fake_last = h;
    return h;
}

int xenevtchn_close(xenevtchn_handle *xce)
{
    fake_evtchn.closes++;
    if (!xce)
        return 0;
    close(xce->fd);
    free(xce);
    if (fake_last == xce)
        fake_last = NULL;
    fake_evtchn.live_handles--;
    memset(fake_evtchn.bound, 0, sizeof(fake_evtchn.bound));  /* close unbinds everything */
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    return xce->fd;
}

static xenevtchn_port_or_error_t bind_port(void)
{
    evtchn_port_t p;

    fake_evtchn.bind_calls++;
    if (fake_evtchn.bind_errno)
        return fail(fake_evtchn.bind_errno);
    p = fake_evtchn.next_port++;
    if (p >= FAKE_EVTCHN_PORTS)
        return fail(ENOSPC);
    fake_evtchn.bound[p] = true;
    return (xenevtchn_port_or_error_t)p;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce, uint32_t domid)
{
    (void)xce;
    fake_evtchn.bind_domid = domid;
    return bind_port();
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    (void)xce;
    fake_evtchn.bind_domid = domid;
    fake_evtchn.bind_rport = remote_port;
    return bind_port();
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce;
    fake_evtchn.unbind_calls++;
    fake_evtchn.unbind_port = port;
    if (fake_evtchn.unbind_errno)
        return fail(fake_evtchn.unbind_errno);
    if (port >= FAKE_EVTCHN_PORTS || !fake_evtchn.bound[port])
        return fail(ENOTCONN);
    fake_evtchn.bound[port] = false;
    return 0;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce;
    fake_evtchn.notify_calls++;
    fake_evtchn.notify_port = port;
    if (fake_evtchn.notify_errno)
        return fail(fake_evtchn.notify_errno);
    return 0;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce;
    fake_evtchn.unmask_calls++;
    fake_evtchn.unmask_port = port;
    if (fake_evtchn.unmask_errno)
        return fail(fake_evtchn.unmask_errno);
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    uint64_t v;
    evtchn_port_t p;

    fake_evtchn.pending_calls++;
    if (fake_evtchn.pending_errno)
        return fail(fake_evtchn.pending_errno);
    if (fake_evtchn.qlen == 0) {
        int fl = fcntl(xce->fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK))
            fake_evtchn.would_block++;
        return fail(EAGAIN);
    }
    if (read(xce->fd, &v, sizeof(v)) != sizeof(v))
        return fail(EIO);
    p = fake_evtchn.queue[fake_evtchn.qhead];
    fake_evtchn.qhead = (fake_evtchn.qhead + 1) % FAKE_EVTCHN_QUEUE;
    fake_evtchn.qlen--;
    return (xenevtchn_port_or_error_t)p;
}

int fake_evtchn_fire(evtchn_port_t port)
{
    uint64_t one = 1;

    if (!fake_last || fake_evtchn.qlen == FAKE_EVTCHN_QUEUE)
        return -ENOSPC;
    fake_evtchn.queue[(fake_evtchn.qhead + fake_evtchn.qlen) % FAKE_EVTCHN_QUEUE] = port;
    fake_evtchn.qlen++;
    if (write(fake_last->fd, &one, sizeof(one)) != sizeof(one))
        return -EIO;
    return 0;
}
