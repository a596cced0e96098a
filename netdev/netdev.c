/* netdev: open a device of the kind asked for (see netdev.h). */
#include "netdev/netdev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev/netdev_impl.h"

static const struct sx_netdev_ops *const kinds[] = { &sx_netdev_bridge_ops };

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
    int rc = ops->open(nd, cfg);
    if (rc < 0) {
        if (cfg->err && cfg->errlen)
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
        rc = ops->attach ? ops->attach(nd, w, cfg->err, cfg->errlen) : -EOPNOTSUPP;
        if (rc < 0) {
            ops->close(nd);
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
