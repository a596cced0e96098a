/*
 * Event channels on the sim hypervisor.
 *
 * Binding goes through splitxen-core (control plane). Delivery does not: a port's pending and
 * masked bits live in the domain's shared region, and each handle has one eventfd that the far
 * end writes when it raises a pending bit on an unmasked port. The far end's eventfd is fetched
 * from the core once per connection and cached, checked against the far port's generation.
 *
 * Ordering: notify sets pending then reads masked; unmask clears masked then reads pending. Both
 * are sequentially consistent, so at least one side sees the other and the event is never lost.
 */
#define SX_LOG_MODULE "evtchn"
#include "evtchn/evtchn_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "xen-core/core.h"

#define MAX_BOUND 64

struct bound {
    uint32_t port;
    uint32_t lgen;          /* our port's gen when the peer was cached */
    struct sxc_dom *rd;     /* far end's domain, referenced while cached here */
    struct sxd_port *rp;    /* far end's port in its domain's shared region */
    uint32_t rgen;
    int peer_efd;
};

struct sim_evtchn {
    struct sxc_conn *conn;
    struct sxc_dom *self;
    int efd;
    uint32_t handle;
    unsigned nbound, rr;
    struct bound b[MAX_BOUND];
};

static struct bound *find(struct sim_evtchn *s, uint32_t port)
{
    for (unsigned i = 0; i < s->nbound; i++)
        if (s->b[i].port == port)
            return &s->b[i];
    return NULL;
}

static void sim_close(void *priv);

static int sim_open(void **priv, struct sx_plat *p)
{
    if (!p->conn)
        return -EINVAL;
    struct sim_evtchn *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->conn = p->conn;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc;
    if (s->efd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = sxc_domain_get(s->conn, sxc_self(s->conn), &s->self);
    if (rc < 0)
        goto fail;
    rc = sxc_evtchn_register(s->conn, s->efd);
    if (rc < 0)
        goto fail;
    s->handle = (uint32_t)rc;
    *priv = s;
    return 0;
fail:
    sim_close(s);
    return rc;
}

static void unbind_slot(struct sim_evtchn *s, struct bound *b)
{
    if (b->peer_efd >= 0)
        close(b->peer_efd);
    sxc_domain_put(s->conn, b->rd);
    *b = s->b[--s->nbound];
}

static void sim_close(void *priv)
{
    struct sim_evtchn *s = priv;
    if (!s)
        return;
    while (s->nbound) {
        sxc_evtchn_close(s->conn, s->b[0].port);
        unbind_slot(s, &s->b[0]);
    }
    if (s->handle)
        sxc_evtchn_unregister(s->conn, s->handle);
    if (s->efd >= 0)
        close(s->efd);
    sxc_domain_put(s->conn, s->self);
    free(s);
}

static int sim_fd(void *priv) { return ((struct sim_evtchn *)priv)->efd; }

static int add_bound(struct sim_evtchn *s, int port)
{
    if (port < 0)
        return port;
    if (s->nbound == MAX_BOUND) {
        sxc_evtchn_close(s->conn, (uint32_t)port);
        return -ENOSPC;
    }
    s->b[s->nbound++] = (struct bound){ .port = (uint32_t)port, .peer_efd = -1 };
    return port;
}

static int sim_bind_unbound(void *priv, domid_t remote)
{
    struct sim_evtchn *s = priv;
    if (s->nbound == MAX_BOUND)
        return -ENOSPC;
    return add_bound(s, sxc_evtchn_alloc_unbound(s->conn, s->handle, remote));
}

static int sim_bind_interdomain(void *priv, domid_t remote, evtchn_port_t rport)
{
    struct sim_evtchn *s = priv;
    if (s->nbound == MAX_BOUND)
        return -ENOSPC;
    return add_bound(s, sxc_evtchn_bind_interdomain(s->conn, s->handle, remote, rport));
}

static int sim_unbind(void *priv, evtchn_port_t port)
{
    struct sim_evtchn *s = priv;
    struct bound *b = find(s, port);
    if (!b)
        return -EINVAL;
    int rc = sxc_evtchn_close(s->conn, port);
    unbind_slot(s, b);
    return rc;
}

/* Refresh the cached far end of `b`. */
static int resolve_peer(struct sim_evtchn *s, struct bound *b, struct sxd_port *lp)
{
    domid_t rdom;
    uint32_t rport, rgen;
    int efd;
    uint32_t lgen = atomic_load(&lp->gen);
    int rc = sxc_evtchn_peer(s->conn, b->port, &rdom, &rport, &rgen, &efd);
    if (rc < 0)
        return rc;
    struct sxc_dom *rd;
    rc = sxc_domain_get(s->conn, rdom, &rd);
    if (rc < 0 || rport >= rd->shared->nr_ports) {
        close(efd);
        if (rc == 0)
            sxc_domain_put(s->conn, rd);
        return rc < 0 ? rc : -EPROTO;
    }
    if (b->peer_efd >= 0)
        close(b->peer_efd);
    sxc_domain_put(s->conn, b->rd);   /* the previous far end, if any */
    b->rd = rd;
    b->peer_efd = efd;
    b->rp = &sxd_ports(rd->shared)[rport];
    b->rgen = rgen;
    b->lgen = lgen;
    return 0;
}

static int sim_notify(void *priv, evtchn_port_t port)
{
    struct sim_evtchn *s = priv;
    struct bound *b = find(s, port);
    if (!b)
        return -EINVAL;
    struct sxd_port *lp = &sxd_ports(s->self->shared)[port];
    if (atomic_load(&lp->state) != SXD_PORT_INTERDOMAIN)
        return 0;   /* as Xen: sending on an unbound port is silently dropped */
    if (b->peer_efd < 0 || b->lgen != atomic_load(&lp->gen) || atomic_load(&b->rp->gen) != b->rgen) {
        int rc = resolve_peer(s, b, lp);
        if (rc == -ENOTCONN)
            return 0;
        if (rc < 0)
            return rc;
    }
    atomic_fetch_add_explicit(&s->self->shared->stat_evtchn_sends, 1, memory_order_relaxed);
    /* Set pending, then look at masked (seq_cst pairs with unmask's store-then-load). */
    if (atomic_exchange(&b->rp->pending, 1) == 0 && !atomic_load(&b->rp->masked)) {
        uint64_t one = 1;
        if (write(b->peer_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            return -errno;
    }
    return 0;
}

/* Take the event of one of our ports: mask it as the Linux evtchn driver does on delivery. */
static int claim_one(struct sim_evtchn *s)
{
    struct sxd_port *ports = sxd_ports(s->self->shared);
    for (unsigned k = 0; k < s->nbound; k++) {
        unsigned i = (s->rr + k) % s->nbound;
        struct sxd_port *p = &ports[s->b[i].port];
        if (!atomic_load(&p->masked) && atomic_load(&p->pending)) {
            atomic_store(&p->masked, 1);
            atomic_store(&p->pending, 0);
            s->rr = i + 1;
            return (int)s->b[i].port;
        }
    }
    return -EAGAIN;
}

static int sim_pending(void *priv)
{
    struct sim_evtchn *s = priv;
    int port = claim_one(s);
    if (port >= 0)
        return port;   /* the fd stays readable while more may be pending */
    uint64_t v;
    if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return -errno;
    /* An event may have landed between the scan and the drain: look again, and keep the fd
     * readable if we return one, since others may still be pending. */
    port = claim_one(s);
    if (port >= 0) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof(one));
        (void)w;
    }
    return port;
}

static int sim_unmask(void *priv, evtchn_port_t port)
{
    struct sim_evtchn *s = priv;
    if (!find(s, port))
        return -EINVAL;
    struct sxd_port *p = &sxd_ports(s->self->shared)[port];
    /* Clear masked, then look at pending (seq_cst pairs with notify's store-then-load). */
    atomic_store(&p->masked, 0);
    if (atomic_load(&p->pending)) {
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            return -errno;
    }
    return 0;
}

static int sim_mask(void *priv, evtchn_port_t port)
{
    struct sim_evtchn *s = priv;
    if (!find(s, port))
        return -EINVAL;
    atomic_store(&sxd_ports(s->self->shared)[port].masked, 1);
    return 0;
}

/* Register the same eventfd with the new core; close the old port numbers in the domain's new
 * home (restored unbound, owned by nobody) and forget them. The old core's handle and ports go
 * with the old connection. */
static int sim_resume(void *priv, struct sx_plat *p)
{
    struct sim_evtchn *s = priv;
    struct sxc_dom *nself;
    int rc = sxc_domain_get(p->conn, p->self, &nself);
    if (rc < 0)
        return rc;
    int h = sxc_evtchn_register(p->conn, s->efd);
    if (h < 0) {
        sxc_domain_put(p->conn, nself);
        return h;
    }
    while (s->nbound) {
        int r = sxc_evtchn_close(p->conn, s->b[0].port);
        if (r < 0 && r != -EINVAL)
            sx_warn("resume: close port %u in the new home: %s", s->b[0].port, strerror(-r));
        unbind_slot(s, &s->b[0]);      /* the cached peer, on the old connection */
    }
    sxc_domain_put(s->conn, s->self);
    s->conn = p->conn;
    s->self = nself;
    s->handle = (uint32_t)h;
    s->rr = 0;
    uint64_t one = 1;
    if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

const struct sx_evtchn_ops sx_evtchn_sim_ops = {
    .open = sim_open,
    .close = sim_close,
    .fd = sim_fd,
    .bind_unbound = sim_bind_unbound,
    .bind_interdomain = sim_bind_interdomain,
    .unbind = sim_unbind,
    .notify = sim_notify,
    .pending = sim_pending,
    .unmask = sim_unmask,
    .mask = sim_mask,
    .resume = sim_resume,
};
