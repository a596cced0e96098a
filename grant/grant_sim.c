/*
 * Grant tables on the sim hypervisor. Mapping validates and pins the entry in the granting
 * domain's shared table exactly as Xen does (sxd_grant_pin), then hands out a pointer into this
 * process's view of that domain's memory: the read-only view for read-only mappings, so a
 * write through it faults. Frames that are not contiguous are stitched into one range with
 * MAP_FIXED page mappings, as gntdev would give them. Copies pin, memcpy and unpin.
 */
#define SX_LOG_MODULE "grant"
#include "grant/grant_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "barrier.h"
#include "xen-core/core.h"

#define MAP_BUCKETS 1024
#define MAX_MAP_COUNT 4096u

struct mapping {
    struct mapping *next;
    void *addr;
    struct sxc_dom *dom;
    uint32_t count;
    bool writable;
    bool stitched;          /* own VA range made of per-page mappings */
    grant_ref_t refs[];
};

struct sim_gnt {
    struct sxc_conn *conn;
    domid_t self;
    pthread_mutex_t lock;
    struct mapping *buckets[MAP_BUCKETS];
};

static unsigned bucket_of(const void *addr) { return (unsigned)(((uintptr_t)addr >> 12) % MAP_BUCKETS); }

static int gsim_open(void **priv, struct sx_plat *p)
{
    if (!p->conn)
        return -EINVAL;
    struct sim_gnt *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->conn = p->conn;
    g->self = sxc_self(p->conn);
    pthread_mutex_init(&g->lock, NULL);
    *priv = g;
    return 0;
}

static void release(struct sim_gnt *g, struct mapping *m)
{
    for (uint32_t i = 0; i < m->count; i++)
        sxd_grant_unpin(m->dom->shared, m->refs[i], m->writable);
    if (m->stitched)
        munmap(m->addr, (size_t)m->count * SX_PAGE_SIZE);
    sxc_domain_put(g->conn, m->dom);   /* the mapping's reference on the granting domain */
    free(m);
}

static void gsim_close(void *priv)
{
    struct sim_gnt *g = priv;
    if (!g)
        return;
    /* Whatever is still mapped is released with the handle, as closing gntdev does. */
    for (unsigned b = 0; b < MAP_BUCKETS; b++)
        while (g->buckets[b]) {
            struct mapping *m = g->buckets[b];
            g->buckets[b] = m->next;
            release(g, m);
        }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static int gsim_map(void *priv, domid_t domid, uint32_t count, const grant_ref_t *refs,
                    bool writable, void **addr, int16_t *status)
{
    struct sim_gnt *g = priv;
    struct sxc_dom *d;
    if (count > MAX_MAP_COUNT)
        return -EINVAL;
    int rc = sxc_domain_get(g->conn, domid, &d);
    if (rc < 0) {
        if (status)
            for (uint32_t i = 0; i < count; i++)
                status[i] = GNTST_bad_domain;
        return -ESRCH;
    }
    struct mapping *m = malloc(sizeof(*m) + count * sizeof(grant_ref_t));
    uint32_t *frames = malloc(count * sizeof(uint32_t));
    if (!m || !frames) {
        free(m);
        free(frames);
        sxc_domain_put(g->conn, d);
        return -ENOMEM;
    }
    m->dom = d;
    m->count = count;
    m->writable = writable;
    m->stitched = false;
    bool failed = false, contiguous = true;
    for (uint32_t i = 0; i < count; i++) {
        m->refs[i] = refs[i];
        int16_t st = sxd_grant_pin(d->shared, refs[i], g->self, writable, &frames[i]);
        if (status)
            status[i] = st;
        if (st != GNTST_okay) {
            failed = true;
            m->refs[i] = UINT32_MAX;   /* not pinned */
        } else if (i > 0 && frames[i] != frames[i - 1] + 1) {
            contiguous = false;
        }
    }
    if (failed) {
        for (uint32_t i = 0; i < count; i++)
            if (m->refs[i] != UINT32_MAX)
                sxd_grant_unpin(d->shared, m->refs[i], writable);
        free(m);
        free(frames);
        sxc_domain_put(g->conn, d);
        return -EINVAL;
    }
    const uint8_t *base = writable ? d->mem : d->mem_ro;
    if (contiguous) {
        m->addr = (void *)(base + (uint64_t)frames[0] * SX_PAGE_SIZE);
    } else {
        size_t len = (size_t)count * SX_PAGE_SIZE;
        void *va = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        rc = va == MAP_FAILED ? -errno : 0;
        int prot = PROT_READ | (writable ? PROT_WRITE : 0);
        for (uint32_t i = 0; rc == 0 && i < count; i++)
            if (mmap((char *)va + (size_t)i * SX_PAGE_SIZE, SX_PAGE_SIZE, prot,
                     MAP_SHARED | MAP_FIXED, d->mem_fd, (off_t)frames[i] * SX_PAGE_SIZE) == MAP_FAILED)
                rc = -errno;
        if (rc < 0) {
            if (va != MAP_FAILED)
                munmap(va, len);
            for (uint32_t i = 0; i < count; i++)
                sxd_grant_unpin(d->shared, m->refs[i], writable);
            free(m);
            free(frames);
            sxc_domain_put(g->conn, d);
            return rc;
        }
        m->addr = va;
        m->stitched = true;
    }
    free(frames);
    atomic_fetch_add_explicit(&d->shared->stat_grant_maps, count, memory_order_relaxed);
    pthread_mutex_lock(&g->lock);
    unsigned b = bucket_of(m->addr);
    m->next = g->buckets[b];
    g->buckets[b] = m;
    pthread_mutex_unlock(&g->lock);
    *addr = m->addr;
    return 0;
}

static int gsim_unmap(void *priv, void *addr, uint32_t count)
{
    struct sim_gnt *g = priv;
    pthread_mutex_lock(&g->lock);
    struct mapping **pp = &g->buckets[bucket_of(addr)];
    while (*pp && !((*pp)->addr == addr && (*pp)->count == count))
        pp = &(*pp)->next;
    struct mapping *m = *pp;
    if (m)
        *pp = m->next;
    pthread_mutex_unlock(&g->lock);
    if (!m)
        return -EINVAL;
    release(g, m);
    return 0;
}

/* The foreign domains one copy call touches, each referenced once for the whole call (a
 * batch usually names one or two). */
#define COPY_DOMS 4
struct copy_doms {
    struct sxc_dom *d[COPY_DOMS];
    unsigned n;
};

static struct sxc_dom *copy_dom(struct sim_gnt *g, struct copy_doms *cd, domid_t domid)
{
    for (unsigned i = 0; i < cd->n; i++)
        if (cd->d[i]->domid == domid)
            return cd->d[i];
    struct sxc_dom *d;
    if (sxc_domain_get(g->conn, domid, &d) < 0)
        return NULL;
    if (cd->n == COPY_DOMS) {   /* a fifth domain in one call: let the oldest go */
        sxc_domain_put(g->conn, cd->d[0]);
        memmove(cd->d, cd->d + 1, (COPY_DOMS - 1) * sizeof(cd->d[0]));
        cd->n--;
    }
    cd->d[cd->n++] = d;
    return d;
}

/* Resolve one side of a copy segment to a pointer, pinning a foreign grant. */
static int16_t copy_side(struct sim_gnt *g, struct copy_doms *cd, union xengnttab_copy_ptr *p,
                         bool is_gref, bool writable, uint16_t len, uint8_t **out,
                         struct sxc_dom **dom)
{
    *dom = NULL;
    if (!is_gref) {
        *out = p->virt;
        return GNTST_okay;
    }
    if ((uint32_t)p->foreign.offset + len > SX_PAGE_SIZE)
        return GNTST_bad_copy_arg;
    struct sxc_dom *d = copy_dom(g, cd, p->foreign.domid);
    if (!d)
        return GNTST_bad_domain;
    uint32_t frame;
    int16_t st = sxd_grant_pin(d->shared, p->foreign.ref, g->self, writable, &frame);
    if (st != GNTST_okay)
        return st;
    *dom = d;
    *out = d->mem + (uint64_t)frame * SX_PAGE_SIZE + p->foreign.offset;
    return GNTST_okay;
}

static int gsim_copy(void *priv, uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
    struct sim_gnt *g = priv;
    struct copy_doms cd = { .n = 0 };
    for (uint32_t i = 0; i < count; i++) {
        xengnttab_grant_copy_segment_t *s = &segs[i];
        uint8_t *src, *dst;
        struct sxc_dom *sd, *dd;
        bool sg = s->flags & GNTCOPY_source_gref, dg = s->flags & GNTCOPY_dest_gref;
        if (s->flags & ~(GNTCOPY_source_gref | GNTCOPY_dest_gref)) {
            s->status = GNTST_bad_copy_arg;
            continue;
        }
        s->status = copy_side(g, &cd, &s->source, sg, false, s->len, &src, &sd);
        if (s->status != GNTST_okay)
            continue;
        s->status = copy_side(g, &cd, &s->dest, dg, true, s->len, &dst, &dd);
        if (s->status == GNTST_okay) {
            memcpy(dst, src, s->len);
            if (dd)
                sxd_grant_unpin(dd->shared, s->dest.foreign.ref, true);
        }
        if (sd)
            sxd_grant_unpin(sd->shared, s->source.foreign.ref, false);
        if (sd || dd)
            atomic_fetch_add_explicit(&(sd ? sd : dd)->shared->stat_grant_copies, 1,
                                      memory_order_relaxed);
    }
    for (unsigned i = 0; i < cd.n; i++)
        sxc_domain_put(g->conn, cd.d[i]);
    return 0;
}

/* The entry as the granting domain's table holds it now: permit_access for us? */
static int gsim_query(void *priv, domid_t domid, grant_ref_t ref)
{
    struct sim_gnt *g = priv;
    struct sxc_dom *d;
    if (sxc_domain_get(g->conn, domid, &d) < 0)
        return -ESRCH;
    int rc = -EINVAL;
    if (ref < d->shared->nr_grant) {
        const grant_entry_v1_t *e = &sxd_grant_table(d->shared)[ref];
        uint16_t flags = SX_READ_ONCE(e->flags), gdom = SX_READ_ONCE(e->domid);
        rc = (flags & GTF_type_mask) == GTF_permit_access && gdom == g->self;
    }
    sxc_domain_put(g->conn, d);
    return rc;
}

const struct sx_gnt_ops sx_gnt_sim_ops = {
    .open = gsim_open,
    .close = gsim_close,
    .map = gsim_map,
    .unmap = gsim_unmap,
    .copy = gsim_copy,
    .query = gsim_query,
};

/* ---------------- frontend side ---------------- */

struct share {
    struct share *next;
    void *addr;
    void *alias;                /* share_buf: the caller's own mapping of the pages, or NULL */
    uint64_t frame;
    uint32_t count;
    grant_ref_t refs[];
};

/* A share_buf mapping whose grants a move ended: still the caller's memory, unmapped at close. */
struct kept {
    struct kept *next;
    void *addr;
    size_t len;
};

struct sim_gntshr {
    struct sxc_conn *conn;
    struct sxc_dom *self;
    pthread_mutex_t lock;
    struct share *list;
    struct kept *kept;
};

static int ssim_open(void **priv, struct sx_plat *p)
{
    if (!p->conn)
        return -EINVAL;
    struct sim_gntshr *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->conn = p->conn;
    int rc = sxc_domain_get(p->conn, sxc_self(p->conn), &s->self);
    if (rc < 0) {
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    *priv = s;
    return 0;
}

/* End foreign access as a guest kernel does: clear the entry unless the peer is using it. */
static bool end_access(grant_entry_v1_t *e)
{
    _Atomic uint32_t *combo = (_Atomic uint32_t *)(void *)&e->flags;
    uint32_t old = atomic_load(combo);
    do {
        if (old & (GTF_reading | GTF_writing))
            return false;
    } while (!atomic_compare_exchange_weak(combo, &old, old & 0xffff0000u));
    return true;
}

static int unshare_one(struct sim_gntshr *s, struct share *sh)
{
    grant_entry_v1_t *gt = sxd_grant_table(s->self->shared);
    bool busy = false;
    for (uint32_t i = 0; i < sh->count; i++)
        if (sh->refs[i] != 0 && !end_access(&gt[sh->refs[i]]))
            busy = true;
    if (busy)
        return -EBUSY;
    for (uint32_t i = 0; i < sh->count; i++)
        sxd_gref_free(s->self->shared, sh->refs[i]);
    sxd_pages_free(s->self->shared, sh->frame, sh->count);
    if (sh->alias)
        munmap(sh->alias, (size_t)sh->count * SX_PAGE_SIZE);
    return 0;
}

static void ssim_close(void *priv)
{
    struct sim_gntshr *s = priv;
    if (!s)
        return;
    while (s->list) {
        struct share *sh = s->list;
        s->list = sh->next;
        if (unshare_one(s, sh) < 0)
            /* A peer still maps these pages: leave them granted rather than hand the frames
             * back for reuse under its feet (Linux defers the same way). */
            sx_warn("closing with %u pages still mapped by a peer; leaving them granted",
                    sh->count);
        free(sh);
    }
    while (s->kept) {
        struct kept *k = s->kept;
        s->kept = k->next;
        munmap(k->addr, k->len);
        free(k);
    }
    /* Pages left granted stay in our domain's memory, which lives on without this mapping. */
    sxc_domain_put(s->conn, s->self);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int ssim_share(void *priv, domid_t domid, uint32_t count, bool writable, grant_ref_t *refs,
                      void **addr)
{
    struct sim_gntshr *s = priv;
    struct sxd_shared *sh = s->self->shared;
    struct share *rec = calloc(1, sizeof(*rec) + count * sizeof(grant_ref_t));
    if (!rec)
        return -ENOMEM;
    int64_t frame = sxd_pages_alloc(sh, count);
    if (frame < 0) {
        free(rec);
        return (int)frame;
    }
    rec->frame = (uint64_t)frame;
    rec->count = count;
    rec->addr = s->self->mem + (uint64_t)frame * SX_PAGE_SIZE;
    memset(rec->addr, 0, (size_t)count * SX_PAGE_SIZE);
    grant_entry_v1_t *gt = sxd_grant_table(sh);
    for (uint32_t i = 0; i < count; i++) {
        int64_t ref = sxd_gref_alloc(sh);
        if (ref < 0) {
            for (uint32_t j = 0; j < i; j++) {
                end_access(&gt[rec->refs[j]]);
                sxd_gref_free(sh, rec->refs[j]);
            }
            sxd_pages_free(sh, rec->frame, count);
            free(rec);
            return (int)ref;
        }
        grant_entry_v1_t *e = &gt[ref];
        e->frame = (uint32_t)(rec->frame + i);
        e->domid = domid;
        /* Frame and domid are visible before the flags that make the entry valid. */
        sx_wmb();
        SX_WRITE_ONCE(e->flags, (uint16_t)(GTF_permit_access | (writable ? 0 : GTF_readonly)));
        rec->refs[i] = (grant_ref_t)ref;
        refs[i] = (grant_ref_t)ref;
    }
    pthread_mutex_lock(&s->lock);
    rec->next = s->list;
    s->list = rec;
    pthread_mutex_unlock(&s->lock);
    *addr = rec->addr;
    return 0;
}

static int ssim_unshare(void *priv, void *addr, uint32_t count)
{
    struct sim_gntshr *s = priv;
    pthread_mutex_lock(&s->lock);
    struct share **pp = &s->list;
    while (*pp && !(((*pp)->alias ? (*pp)->alias : (*pp)->addr) == addr &&
                    (*pp)->count == count))
        pp = &(*pp)->next;
    struct share *sh = *pp;
    int rc = -EINVAL;
    if (sh) {
        rc = unshare_one(s, sh);
        if (rc == 0)
            *pp = sh->next;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        free(sh);
    return rc;
}

/* The domain lives on elsewhere (its memory, allocator and grant table copied there): share
 * from there, and give up what was shared, in the new home. */
static int ssim_resume(void *priv, struct sx_plat *p)
{
    struct sim_gntshr *s = priv;
    struct sxc_dom *nd;
    int rc = sxc_domain_get(p->conn, p->self, &nd);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    sxc_domain_put(s->conn, s->self);
    s->conn = p->conn;
    s->self = nd;
    unsigned busy = 0;
    while (s->list) {
        struct share *sh = s->list;
        s->list = sh->next;
        /* A buffer's own mapping stays: the caller's memory, no longer shared. */
        void *alias = sh->alias;
        sh->alias = NULL;
        busy += unshare_one(s, sh) < 0;
        struct kept *k = alias ? malloc(sizeof(*k)) : NULL;
        if (k) {
            *k = (struct kept){ .next = s->kept, .addr = alias,
                                .len = (size_t)sh->count * SX_PAGE_SIZE };
            s->kept = k;
        } else if (alias) {
            sx_warn("resume: no memory to keep a buffer of %u pages; it stays mapped",
                    sh->count);
        }
        free(sh);
    }
    pthread_mutex_unlock(&s->lock);
    if (busy)
        sx_warn("resume: %u shares still mapped in the new home; left granted", busy);
    return 0;
}

/* A share the caller uses as its own memory: mapped apart from the domain's memory, so the
 * mapping outlives the domain's old home after a move (ssim_resume keeps it). */
static int ssim_share_buf(void *priv, domid_t domid, uint32_t count, bool writable,
                          grant_ref_t *refs, void **addr)
{
    struct sim_gntshr *s = priv;
    void *base;
    int rc = ssim_share(priv, domid, count, writable, refs, &base);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    struct share *sh = s->list;
    while (sh && sh->addr != base)
        sh = sh->next;
    void *m = MAP_FAILED;
    if (sh)
        m = mmap(NULL, (size_t)count * SX_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 s->self->mem_fd, (off_t)(sh->frame * SX_PAGE_SIZE));
    if (m != MAP_FAILED)
        sh->alias = m;
    else
        rc = sh ? -errno : -ENOENT;
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        ssim_unshare(priv, base, count);
        return rc;
    }
    *addr = m;
    return 0;
}

const struct sx_gntshr_ops sx_gntshr_sim_ops = {
    .open = ssim_open,
    .close = ssim_close,
    .share = ssim_share,
    .share_buf = ssim_share_buf,
    .unshare = ssim_unshare,
    .resume = ssim_resume,
};
