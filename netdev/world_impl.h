/* Private to netdev's worlds (world.c, ovs.c, route.c). */
#ifndef SPLITXEN_NETDEV_WORLD_IMPL_H
#define SPLITXEN_NETDEV_WORLD_IMPL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "netdev/nl.h"
#include "netdev/world.h"

struct sx_world_link {
    struct sx_world w;
    char ifname[IFNAMSIZ];
    int ifindex;
    struct sx_nl *nl;              /* in the caller's namespace */
    char bridge_spec[64];          /* the bridge key as spelled, for messages */
    bool ovs_port;                 /* an OVS port was (maybe) added: detach deletes it */
    bool routed;                   /* route/nat state was (maybe) made: detach removes it */
};

/* Write a message into err (NULL-safe) and return rc. (Here, not in world.c: ovs.c and route.c
 * use it, and world.c calls them.) */
static inline __attribute__((format(printf, 4, 5)))
int sx_world_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ovs.c: 1 if Open vSwitch has a bridge of that name, 0 if not, -errno when ovsdb cannot be
 * asked (err says why; may be NULL). */
int sx_ovs_bridge_exists(const char *bridge, char *err, size_t errlen);
int sx_ovs_attach(struct sx_world_link *l, const struct sx_world *w, char *err, size_t errlen);
void sx_ovs_detach(struct sx_world_link *l);

/* route.c: vif-route and vif-nat. */
int sx_route_attach(struct sx_world_link *l, const struct sx_world *w, char *err,
                    size_t errlen);
void sx_route_detach(struct sx_world_link *l);

#endif
