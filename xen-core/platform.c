#define SX_LOG_MODULE "platform"
#include "xen-core/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xen-core/core.h"

const char *sx_run_dir(void)
{
    const char *e = getenv("SPLITXEN_RUN");
    return e && *e ? e : "/run/splitxen";
}

int sx_xenstored_path(char *buf, size_t len, domid_t domid)
{
    int n = domid == 0 ? snprintf(buf, len, "%s/xenstored/socket", sx_run_dir())
                       : snprintf(buf, len, "%s/xenstored/domain/%u.sock", sx_run_dir(), domid);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int sx_plat_kind_from_name(const char *name)
{
    if (!name || !*name || !strcmp(name, "auto"))
        return access("/dev/xen/privcmd", F_OK) == 0 ? SX_PLAT_XEN : SX_PLAT_SIM;
    if (!strcmp(name, "sim"))
        return SX_PLAT_SIM;
    if (!strcmp(name, "xen"))
        return SX_PLAT_XEN;
    return -EINVAL;
}

int sx_plat_open(struct sx_plat **out, enum sx_plat_kind kind, domid_t self, const char *core_path)
{
    struct sx_plat *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->kind = kind;
    p->self = self;
    if (kind == SX_PLAT_SIM) {
        int rc = sxc_connect(&p->conn, core_path, self);
        if (rc < 0) {
            free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

void sx_plat_close(struct sx_plat *p)
{
    if (!p)
        return;
    sxc_disconnect(p->conn);
    free(p);
}
