/* Private to evtchn/: the per-platform operations behind struct sx_evtchn. */
#ifndef SPLITXEN_EVTCHN_IMPL_H
#define SPLITXEN_EVTCHN_IMPL_H

#include "evtchn/evtchn.h"

struct sx_evtchn_ops {
    int (*open)(void **priv, struct sx_plat *p);
    void (*close)(void *priv);
    int (*fd)(void *priv);
    int (*bind_unbound)(void *priv, domid_t remote);
    int (*bind_interdomain)(void *priv, domid_t remote, evtchn_port_t rport);
    int (*unbind)(void *priv, evtchn_port_t port);
    int (*notify)(void *priv, evtchn_port_t port);
    int (*pending)(void *priv);
    int (*unmask)(void *priv, evtchn_port_t port);
    int (*mask)(void *priv, evtchn_port_t port);
    int (*resume)(void *priv, struct sx_plat *p);   /* NULL: the platform cannot */
};

extern const struct sx_evtchn_ops sx_evtchn_sim_ops;
extern const struct sx_evtchn_ops sx_evtchn_xen_ops;

#endif
