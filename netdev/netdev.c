/* netdev: open a device of the kind asked for (see netdev.h). */
#include "netdev/netdev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev/netdev_impl.h"

static const struct sx_netdev_ops *const kinds[] = { &sx_netdev_bridge_ops,
                                                     &sx_netdev_afxdp_ops,
                                                     &sx_netdev_dpdk_ops };

const char *sx_netdev_kind_for(const struct sx_world *w)
{
    if (w && w->mode == SX_WORLD_AFXDP)
        return "afxdp";
    return w && w->mode == SX_WORLD_DPDK ? "dpdk" : "bridge";
}

int sx_netdev_open(struct sx_netdev **out, const struct sx_netdev_config *cfg)
{
    if (!out || !cfg || !cfg->name || !cfg->nqueues || cfg->nqueues > SX_NETDEV_MAX_QUEUES)
        return -EINVAL;
    const char *kind = cfg->kind ? cfg->kind : "bridge";
    const struct sx_netdev_ops *ops = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kinds[i]->kind, kind))
            ops = kinds[i];
    if (!ops)
        return -EINVAL;
    struct sx_netdev *nd = calloc(1, sizeof(*nd));
    if (!nd)
        return -ENOMEM;
    nd->ops = ops;
    nd->nqueues = cfg->nqueues;
    if (cfg->err && cfg->errlen)
        cfg->err[0] = '\0';
    int rc = ops->open(nd, cfg);
    if (rc < 0) {
        if (cfg->err && cfg->errlen && !cfg->err[0])
            snprintf(cfg->err, cfg->errlen, "cannot create %s: %s", cfg->name, strerror(-rc));
        free(nd);
        return rc;
    }
    struct sx_world plain;
    const struct sx_world *w = cfg->world;
    if (!w) {
        memset(&plain, 0, sizeof(plain));
        snprintf(plain.bridge, sizeof(plain.bridge), "%s", cfg->bridge ? cfg->bridge : "");
        w = &plain;
    }
    if (w != &plain || plain.bridge[0]) {
        /* nd->ops from here on: a kind's open may hand the device to another table (dpdk) */
        rc = nd->ops->attach ? nd->ops->attach(nd, w, cfg->err, cfg->errlen) : 0;
        if (rc < 0) {
            nd->ops->close(nd);
            free(nd);
            return rc;
        }
    }
    *out = nd;
    return 0;
}

void sx_netdev_close(struct sx_netdev *nd)
{
    if (!nd)
        return;
    if (nd->ops->detach)
        nd->ops->detach(nd);
    nd->ops->close(nd);
    free(nd);
}
