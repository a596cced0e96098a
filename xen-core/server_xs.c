/* splitxen-core hosts xenstored in its own loop: domains it creates are introduced to xenstored
 * (their socket appears, @introduceDomain fires) and released when destroyed. */
#define SX_LOG_MODULE "xen-core"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "xen-core/server_hooks.h"
#include "xenstored/xenstored.h"

static void xs_step(void *ctx) { sxs_step(ctx, 0); }

static void xs_created(void *ctx, domid_t domid)
{
    if (domid != 0) {
        int rc = sxs_domain_add(ctx, domid);
        if (rc < 0)
            sx_warn("xenstored: introduce domain %u: %d", domid, rc);
    }
}

static void xs_destroyed(void *ctx, domid_t domid)
{
    if (domid != 0)
        sxs_domain_remove(ctx, domid);
}

static void xs_close(void *ctx) { sxs_close(ctx); }

int sxc_server_hooks_xenstored(struct sxc_server_hooks *h, const char *run_dir)
{
    char dir[512];
    if (snprintf(dir, sizeof(dir), "%s/xenstored", run_dir) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    struct sxs *s;
    int rc = sxs_open(&s, dir);
    if (rc < 0)
        return rc;
    *h = (struct sxc_server_hooks){ .ctx = s, .fd = sxs_fd(s), .step = xs_step,
                                    .domain_created = xs_created,
                                    .domain_destroyed = xs_destroyed, .close = xs_close };
    return 0;
}
