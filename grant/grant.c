/* Grant handles: dispatch to the platform's implementation, count what is mapped. */
#include "grant/grant_impl.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

struct sx_gnt {
    const struct sx_gnt_ops *ops;
    void *priv;
    _Atomic uint64_t mapped;
};

struct sx_gntshr {
    const struct sx_gntshr_ops *ops;
    void *priv;
};

int sx_gnt_open(struct sx_gnt **out, struct sx_plat *p)
{
    const struct sx_gnt_ops *ops = p->kind == SX_PLAT_XEN ? &sx_gnt_xen_ops : &sx_gnt_sim_ops;
    struct sx_gnt *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->ops = ops;
    int rc = ops->open(&g->priv, p);
    if (rc < 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void sx_gnt_close(struct sx_gnt *g)
{
    if (!g)
        return;
    g->ops->close(g->priv);
    free(g);
}

int sx_gnt_map(struct sx_gnt *g, domid_t domid, uint32_t count, const grant_ref_t *refs,
               bool writable, void **addr, int16_t *status)
{
    if (count == 0 || !refs || !addr)
        return -EINVAL;
    int rc = g->ops->map(g->priv, domid, count, refs, writable, addr, status);
    if (rc == 0)
        atomic_fetch_add_explicit(&g->mapped, count, memory_order_relaxed);
    return rc;
}

int sx_gnt_unmap(struct sx_gnt *g, void *addr, uint32_t count)
{
    if (!addr || count == 0)
        return -EINVAL;
    int rc = g->ops->unmap(g->priv, addr, count);
    if (rc == 0)
        atomic_fetch_sub_explicit(&g->mapped, count, memory_order_relaxed);
    return rc;
}

int sx_gnt_copy(struct sx_gnt *g, uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
    if (count == 0)
        return 0;
    if (!segs)
        return -EINVAL;
    return g->ops->copy(g->priv, count, segs);
}

uint64_t sx_gnt_mapped_pages(const struct sx_gnt *g)
{
    return atomic_load_explicit(&((struct sx_gnt *)g)->mapped, memory_order_relaxed);
}

int sx_gnt_query(struct sx_gnt *g, domid_t domid, grant_ref_t ref)
{
    return g->ops->query ? g->ops->query(g->priv, domid, ref) : -EOPNOTSUPP;
}

int sx_gntshr_open(struct sx_gntshr **out, struct sx_plat *p)
{
    const struct sx_gntshr_ops *ops =
        p->kind == SX_PLAT_XEN ? &sx_gntshr_xen_ops : &sx_gntshr_sim_ops;
    struct sx_gntshr *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->ops = ops;
    int rc = ops->open(&s->priv, p);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sx_gntshr_close(struct sx_gntshr *s)
{
    if (!s)
        return;
    s->ops->close(s->priv);
    free(s);
}

int sx_gntshr_share(struct sx_gntshr *s, domid_t domid, uint32_t count, bool writable,
                    grant_ref_t *refs, void **addr)
{
    if (count == 0 || !refs || !addr)
        return -EINVAL;
    return s->ops->share(s->priv, domid, count, writable, refs, addr);
}

int sx_gntshr_share_buf(struct sx_gntshr *s, domid_t domid, uint32_t count, bool writable,
                        grant_ref_t *refs, void **addr)
{
    if (count == 0 || !refs || !addr)
        return -EINVAL;
    if (!s->ops->share_buf)
        return s->ops->share(s->priv, domid, count, writable, refs, addr);
    return s->ops->share_buf(s->priv, domid, count, writable, refs, addr);
}

int sx_gntshr_unshare(struct sx_gntshr *s, void *addr, uint32_t count)
{
    if (!addr || count == 0)
        return -EINVAL;
    return s->ops->unshare(s->priv, addr, count);
}

int sx_gntshr_resume(struct sx_gntshr *s, struct sx_plat *p)
{
    if (!s || !p)
        return -EINVAL;
    return s->ops->resume ? s->ops->resume(s->priv, p) : -EOPNOTSUPP;
}
