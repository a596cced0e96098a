#define SX_LOG_MODULE "platform"
#include "platform/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenstore.h>

#include "log.h"
#include "rundir.h"
#include "xen-core/core.h"

static const struct sx_plat_traits traits[] = {
    [SX_PLAT_SIM] = { .name = "sim", .vcpus_known = true, .guest_suspend = true },
    [SX_PLAT_XEN] = { .name = "xen", .hotplug_scripts = true, .companion_dm = true,
                      .dma_mapcache = true },
};

const struct sx_plat_traits *sx_plat_traits(enum sx_plat_kind kind)
{
    return kind == SX_PLAT_XEN ? &traits[SX_PLAT_XEN] : &traits[SX_PLAT_SIM];
}

static int xenstored_path_in(char *buf, size_t len, const char *dir, domid_t domid)
{
    int n = domid == 0 ? snprintf(buf, len, "%s/xenstored/socket", dir)
                       : snprintf(buf, len, "%s/xenstored/domain/%u.sock", dir, domid);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int sx_xenstored_path(char *buf, size_t len, domid_t domid)
{
    return xenstored_path_in(buf, len, sx_run_dir(), domid);
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
    sx_plat_move_done(p);
    sxc_disconnect(p->conn);
    free(p);
}

int sx_plat_move(struct sx_plat *p, const char *core_path, domid_t domid)
{
    if (!p || !p->conn || !core_path || p->old_conn)
        return -EINVAL;
    const char *slash = strrchr(core_path, '/');
    size_t dlen = slash ? (size_t)(slash - core_path) : 0;
    if (!slash || dlen == 0 || dlen >= sizeof(p->run_dir))
        return -EINVAL;
    struct sxc_conn *c;
    int rc = sxc_connect(&c, core_path, domid);
    if (rc < 0)
        return rc;
    p->old_conn = p->conn;
    p->conn = c;
    p->self = domid;
    memcpy(p->run_dir, core_path, dlen);
    p->run_dir[dlen] = 0;
    return 0;
}

int sx_plat_guest_join(struct sx_plat *p)
{
    if (!p || !sx_plat_traits(p->kind)->guest_suspend || !p->conn)
        return -EOPNOTSUPP;
    return sxc_domain_join(p->conn);
}

int sx_plat_guest_suspend(struct sx_plat *p, struct sx_plat_resume *out)
{
    if (!p || !sx_plat_traits(p->kind)->guest_suspend || !p->conn)
        return -EOPNOTSUPP;
    struct sxc_resume r;
    int rc = sxc_domain_suspend(p->conn, &r);
    if (rc < 0)
        return rc;
    out->moved = r.moved;
    out->domid = r.domid;
    snprintf(out->core_path, sizeof(out->core_path), "%s", r.core_path);
    return 0;
}

void sx_plat_move_done(struct sx_plat *p)
{
    if (!p || !p->old_conn)
        return;
    sxc_disconnect(p->old_conn);
    p->old_conn = NULL;
}

/* xs_open takes no path: it reads $XENSTORED_PATH. Set it around the call and put back what
 * was there. */
static int xs_open_at(const char *path, struct xs_handle **out)
{
    char *saved = NULL;
    const char *old = getenv("XENSTORED_PATH");
    if (path && old && !(saved = strdup(old)))
        return -ENOMEM;
    if (path)
        setenv("XENSTORED_PATH", path, 1);
    errno = 0;
    struct xs_handle *xs = xs_open(0);
    int rc = xs ? 0 : (errno ? -errno : -EIO);
    if (path) {
        if (saved)
            setenv("XENSTORED_PATH", saved, 1);
        else
            unsetenv("XENSTORED_PATH");
    }
    free(saved);
    if (rc == 0)
        *out = xs;
    return rc;
}

int sx_plat_xs_open(const struct sx_plat *p, const char *path, struct xs_handle **out)
{
    char buf[256];
    if (!path && p && p->kind == SX_PLAT_SIM) {
        int rc = xenstored_path_in(buf, sizeof(buf), p->run_dir[0] ? p->run_dir : sx_run_dir(),
                                   p->self);
        if (rc < 0)
            return rc;
        path = buf;
    }
    return xs_open_at(path, out);
}
