/* Event channel handle: dispatch to the platform's implementation. */
#include "evtchn/evtchn_impl.h"

#include <errno.h>
#include <stdlib.h>

struct sx_evtchn {
    const struct sx_evtchn_ops *ops;
    void *priv;
    unsigned nr_bound;
};

int sx_evtchn_open(struct sx_evtchn **out, struct sx_plat *p)
{
    const struct sx_evtchn_ops *ops =
        p->kind == SX_PLAT_XEN ? &sx_evtchn_xen_ops : &sx_evtchn_sim_ops;
    struct sx_evtchn *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->ops = ops;
    int rc = ops->open(&e->priv, p);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void sx_evtchn_close(struct sx_evtchn *e)
{
    if (!e)
        return;
    e->ops->close(e->priv);
    free(e);
}

int sx_evtchn_fd(struct sx_evtchn *e) { return e->ops->fd(e->priv); }

int sx_evtchn_bind_unbound(struct sx_evtchn *e, domid_t remote)
{
    int rc = e->ops->bind_unbound(e->priv, remote);
    if (rc >= 0)
        e->nr_bound++;
    return rc;
}

int sx_evtchn_bind_interdomain(struct sx_evtchn *e, domid_t remote, evtchn_port_t rport)
{
    int rc = e->ops->bind_interdomain(e->priv, remote, rport);
    if (rc >= 0)
        e->nr_bound++;
    return rc;
}

int sx_evtchn_unbind(struct sx_evtchn *e, evtchn_port_t port)
{
    int rc = e->ops->unbind(e->priv, port);
    if (rc == 0 && e->nr_bound)
        e->nr_bound--;
    return rc;
}

int sx_evtchn_notify(struct sx_evtchn *e, evtchn_port_t port) { return e->ops->notify(e->priv, port); }
int sx_evtchn_pending(struct sx_evtchn *e) { return e->ops->pending(e->priv); }
int sx_evtchn_unmask(struct sx_evtchn *e, evtchn_port_t port) { return e->ops->unmask(e->priv, port); }
int sx_evtchn_mask(struct sx_evtchn *e, evtchn_port_t port) { return e->ops->mask(e->priv, port); }
unsigned sx_evtchn_nr_bound(const struct sx_evtchn *e) { return e->nr_bound; }

int sx_evtchn_resume(struct sx_evtchn *e, struct sx_plat *p)
{
    if (!e || !p)
        return -EINVAL;
    if (!e->ops->resume)
        return -EOPNOTSUPP;
    int rc = e->ops->resume(e->priv, p);
    if (rc == 0)
        e->nr_bound = 0;
    return rc;
}

int sx_evtchn_drain(struct sx_evtchn *e, unsigned max)
{
    int n = 0;
    while (!max || (unsigned)n < max) {
        int port = e->ops->pending(e->priv);
        if (port == -EAGAIN)
            break;
        if (port < 0)
            return port;
        e->ops->unmask(e->priv, (evtchn_port_t)port);
        n++;
    }
    return n;
}
