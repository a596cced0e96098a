/* The served domain's ports, bound and unbound by both implementations (ioreq_sim.c,
 * ioreq_xen.c) and at close (ioreq.c); this file calls neither. */
#include "ioreq/ioreq_impl.h"

void sx_ioreq_unbind_all(struct sx_ioreq *r)
{
    for (unsigned i = 0; i < SX_IOREQ_MAX_VCPUS; i++)
        if (r->vcpu_port[i] >= 0) {
            sx_evtchn_unbind(r->evt, (evtchn_port_t)r->vcpu_port[i]);
            r->vcpu_port[i] = -1;
        }
    if (r->buf_port >= 0) {
        sx_evtchn_unbind(r->evt, (evtchn_port_t)r->buf_port);
        r->buf_port = -1;
    }
}

int sx_ioreq_bind_vcpu(struct sx_ioreq *r, unsigned v, evtchn_port_t remote)
{
    int p = sx_evtchn_bind_interdomain(r->evt, r->domid, remote);
    if (p < 0)
        return p;
    r->vcpu_port[v] = p;
    return 0;
}

int sx_ioreq_bind_buf(struct sx_ioreq *r, evtchn_port_t remote)
{
    int p = sx_evtchn_bind_interdomain(r->evt, r->domid, remote);
    if (p < 0)
        return p;
    r->buf_port = p;
    return 0;
}
