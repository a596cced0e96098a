/*
 * sxblkfront data path: caller requests -> ring requests (direct, indirect, split), grants
 * (persistent pool or per request), responses -> completions (Linux blkif_queue_rw_req and
 * blkif_interrupt/blkif_completion).
 *
 * Everything a queue needs is allocated at connect time (bf_data_setup); the hot path does
 * not malloc, except inside sx_gntshr_share when persistent grants are off or the persistent
 * pool grows.
 */
#define SX_LOG_MODULE "blkfront"
#include "frontends/blkfront/blkfront_priv.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "xenbus/xenbus.h"

#define POOL_GROW_MIN 64u
#define BF_LIVENESS_MS 1000     /* sx_blkfront_wait checks the backend after this much silence */

static bool valid_queue(const struct sx_blkfront *f, unsigned queue)
{
    return f && f->data_ready && queue < f->info.nr_queues;
}

/* ------------------------------------------------------------------ counters */

#define BF_STAT(name, field) { name, offsetof(struct sx_blkfront_stats, field) }
static const struct { const char *name; size_t off; } bf_stat_fields[] = {
    BF_STAT("requests", submitted),
    BF_STAT("completed", completed),
    BF_STAT("errors", errors),
    BF_STAT("ring_reqs", ring_reqs),
    BF_STAT("indirect_reqs", indirect_reqs),
    BF_STAT("kicks", kicks),
    BF_STAT("notifies", notifies),
    BF_STAT("sleeps", sleeps),
    BF_STAT("waits", waits),
    BF_STAT("spins_won", spins_won),
    BF_STAT("eagain", eagain),
    BF_STAT("zero_copy", zero_copy),
    BF_STAT("pool_pages", pool_pages),
    BF_STAT("lat_total_ns", lat_total_ns),
    BF_STAT("lat_total_n", lat_total_n),
    BF_STAT("lat_frontend_ns", lat_frontend_ns),
    BF_STAT("lat_frontend_n", lat_frontend_n),
};
#define BF_NR_STATS (sizeof(bf_stat_fields) / sizeof(bf_stat_fields[0]))

const char *const bf_stat_names[BF_NR_STATS + 1] = {
    "requests", "completed", "errors", "ring_reqs", "indirect_reqs", "kicks", "notifies",
    "sleeps", "waits", "spins_won", "eagain", "zero_copy", "pool_pages", "lat_total_ns",
    "lat_total_n", "lat_frontend_ns", "lat_frontend_n", NULL,
};

void bf_stats_publish(struct sx_blkfront *f, struct bf_queue *q)
{
    if (!f->stats.v)
        return;
    for (unsigned i = 0; i < BF_NR_STATS; i++) {
        uint64_t *cur = (uint64_t *)((uint8_t *)&q->st + bf_stat_fields[i].off);
        uint64_t *pub = (uint64_t *)((uint8_t *)&q->pub + bf_stat_fields[i].off);
        if (*cur != *pub)
            sx_stats_add(&f->stats, i, *cur - *pub);
    }
    q->pub = q->st;
}

/* ------------------------------------------------------------------ setup / teardown */

static void queue_data_teardown(struct sx_blkfront *f, struct bf_queue *q, bool unshare)
{
    if (q->slots && unshare) {
        for (unsigned i = 0; i < q->nr_ents; i++) {
            struct bf_slot *s = &q->slots[i];
            if (s->shr) {
                int rc = sx_gntshr_unshare(f->shr, s->shr, s->nseg + s->nind);
                if (rc < 0)
                    sx_warn("queue %u: request pages still mapped by the backend (%s)",
                            q->idx, strerror(-rc));
                s->shr = NULL;
            }
        }
    }
    for (unsigned i = 0; unshare && i < q->nchunks; i++) {
        int rc = sx_gntshr_unshare(f->shr, q->chunks[i].addr, q->chunks[i].count);
        if (rc < 0)
            sx_warn("queue %u: %u persistent pages still mapped by the backend (%s)", q->idx,
                    q->chunks[i].count, strerror(-rc));
    }
    free(q->chunks);
    free(q->pool);
    free(q->pool_free);
    free(q->slots);
    free(q->slot_free);
    free(q->slot_pg);
    free(q->ureqs);
    free(q->ureq_free);
    free(q->gref_scratch);
    q->gref_scratch = NULL;
    q->chunks = NULL;
    q->pool = NULL;
    q->pool_free = NULL;
    q->slots = NULL;
    q->slot_free = NULL;
    q->slot_pg = NULL;
    q->ureqs = NULL;
    q->ureq_free = NULL;
    q->nchunks = q->pool_n = q->npool_free = q->nslot_free = q->nureq_free = 0;
    q->zombies = 0;
}

void bf_data_teardown(struct sx_blkfront *f, bool unshare)
{
    f->data_ready = false;
    for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++)
        queue_data_teardown(f, &f->q[i], unshare);
}

static int queue_data_setup(struct sx_blkfront *f, struct bf_queue *q)
{
    unsigned n = q->ring.nr_ents;
    q->nr_ents = n;
    q->slots = calloc(n, sizeof(*q->slots));
    q->slot_free = calloc(n, sizeof(*q->slot_free));
    q->ureqs = calloc(n, sizeof(*q->ureqs));
    q->ureq_free = calloc(n, sizeof(*q->ureq_free));
    q->gref_scratch = calloc(f->pages_per_slot, sizeof(*q->gref_scratch));
    if (!q->slots || !q->slot_free || !q->ureqs || !q->ureq_free || !q->gref_scratch)
        return -ENOMEM;
    if (f->info.persistent) {
        /* Never more pages in flight than every slot carrying a maximal request. */
        q->pool_cap = n * f->pages_per_slot;
        q->slot_pg = calloc((size_t)n * f->pages_per_slot, sizeof(*q->slot_pg));
        q->pool = calloc(q->pool_cap, sizeof(*q->pool));
        q->pool_free = calloc(q->pool_cap, sizeof(*q->pool_free));
        q->chunks = calloc(q->pool_cap / POOL_GROW_MIN + q->pool_cap % POOL_GROW_MIN + 1,
                           sizeof(*q->chunks));
        if (!q->slot_pg || !q->pool || !q->pool_free || !q->chunks)
            return -ENOMEM;
    }
    /* Free stacks hand out low indices first (LIFO keeps the hot set small, blkif.h note 7). */
    for (unsigned i = 0; i < n; i++) {
        q->slots[i].pg = q->slot_pg ? &q->slot_pg[(size_t)i * f->pages_per_slot] : NULL;
        q->slot_free[i] = n - 1 - i;
        q->ureq_free[i] = n - 1 - i;
    }
    q->nslot_free = n;
    q->nureq_free = n;
    const struct sx_idle_opts io = { .spin_ns = f->opts.spin_ns, .eoi_now = true };
    sx_idle_init(&q->idle, q->evt, &io, NULL, 0);
    return 0;
}

int bf_data_setup(struct sx_blkfront *f)
{
    for (unsigned i = 0; i < f->info.nr_queues; i++) {
        int rc = queue_data_setup(f, &f->q[i]);
        if (rc < 0) {
            bf_data_teardown(f, true);
            return rc;
        }
    }
    f->data_ready = true;
    return 0;
}

/* ------------------------------------------------------------------ pages */

/* Make sure `need` pool pages are free, granting a new chunk if allowed. */
static int pool_reserve(struct sx_blkfront *f, struct bf_queue *q, unsigned need)
{
    if (q->npool_free >= need)
        return 0;
    unsigned want = need - q->npool_free;
    unsigned room = q->pool_cap - q->pool_n;
    if (want > room)
        return -EAGAIN;                     /* only when slots would free pages: retry later */
    unsigned count = want < POOL_GROW_MIN ? POOL_GROW_MIN : want;
    if (count > room)
        count = room;
    grant_ref_t refs[POOL_GROW_MIN];
    grant_ref_t *r = count <= POOL_GROW_MIN ? refs : malloc(count * sizeof(*r));
    if (!r)
        return -ENOMEM;
    void *addr;
    int rc = sx_gntshr_share(f->shr, f->info.backend_id, count, true, r, &addr);
    if (rc == 0) {
        q->chunks[q->nchunks++] = (struct bf_chunk){ .addr = addr, .count = count };
        for (unsigned i = 0; i < count; i++) {
            q->pool[q->pool_n] = (struct bf_page){ .va = (uint8_t *)addr + (size_t)i * SX_PAGE_SIZE,
                                                   .ref = r[i] };
            q->pool_free[q->npool_free++] = q->pool_n++;
        }
        q->st.pool_pages += count;
    }
    if (r != refs)
        free(r);
    return rc;
}

static inline uint8_t *slot_page(const struct sx_blkfront *f, const struct bf_slot *s, unsigned i,
                                 const struct bf_queue *q)
{
    return f->info.persistent ? q->pool[s->pg[i]].va
                              : (uint8_t *)s->shr + (size_t)i * SX_PAGE_SIZE;
}

/* ------------------------------------------------------------------ submit */

static void slot_release_pages(struct sx_blkfront *f, struct bf_queue *q, struct bf_slot *s);

static void slot_free(struct bf_queue *q, struct bf_slot *s)
{
    s->gen++;
    s->t_kick = 0;
    s->state = BF_SLOT_FREE;
    q->slot_free[q->nslot_free++] = (uint32_t)(s - q->slots);
}

/* Grant the pages of one ring request; fill `grefs` (data then indirect). */
static int slot_get_pages(struct sx_blkfront *f, struct bf_queue *q, struct bf_slot *s,
                          bool readonly, grant_ref_t *grefs)
{
    unsigned total = s->nseg + s->nind;
    if (f->info.persistent) {
        /* A granted buffer brings its own data grants: only indirect pages from the pool. */
        for (unsigned i = s->zc ? s->nseg : 0; i < total; i++) {
            s->pg[i] = q->pool_free[--q->npool_free];
            grefs[i] = q->pool[s->pg[i]].ref;
        }
        return 0;
    }
    int rc = sx_gntshr_share(f->shr, f->info.backend_id, total, !readonly, grefs, &s->shr);
    if (rc < 0) {
        s->shr = NULL;
        return rc;
    }
    q->st.grants_shared += total;
    return 0;
}

/* The segment covering the start of [addr, addr + left) in granted buffer zb. */
static struct blkif_request_segment zc_segment(const struct bf_buf *zb, const uint8_t *addr,
                                               size_t left, size_t *n)
{
    size_t off = (size_t)(addr - zb->addr), in_page = off % SX_PAGE_SIZE;
    *n = left < SX_PAGE_SIZE - in_page ? left : SX_PAGE_SIZE - in_page;
    return (struct blkif_request_segment){
        .gref = zb->refs[off / SX_PAGE_SIZE],
        .first_sect = (uint8_t)(in_page / 512),
        .last_sect = (uint8_t)((in_page + *n) / 512 - 1),
    };
}

/* Build the ring request for slot s into req. Data is copied into the granted pages (src for
 * a write), or, with zb, the segments name zb's pages holding [zaddr, zaddr + s->len). */
static void build_rw(struct sx_blkfront *f, struct bf_queue *q, struct bf_slot *s, uint64_t id,
                     uint64_t sector, const uint8_t *src, const grant_ref_t *grefs,
                     const struct bf_buf *zb, const uint8_t *zaddr, blkif_request_t *req)
{
    memset(req, 0, sizeof(*req));
    size_t left = s->len;
    struct blkif_request_segment *segs = req->seg;
    struct blkif_request_segment *ind_page = NULL;
    if (s->nind) {
        blkif_request_indirect_t *ind = (blkif_request_indirect_t *)req;
        ind->operation = BLKIF_OP_INDIRECT;
        ind->indirect_op = s->data_op;
        ind->nr_segments = s->nseg;
        ind->id = id;
        ind->sector_number = sector;
        ind->handle = f->handle;
        for (unsigned j = 0; j < s->nind; j++)
            ind->indirect_grefs[j] = grefs[s->nseg + j];
    } else {
        req->operation = s->data_op;
        req->nr_segments = (uint8_t)s->nseg;
        req->handle = f->handle;
        req->id = id;
        req->sector_number = sector;
    }
    for (unsigned i = 0; i < s->nseg; i++) {
        size_t n = left < SX_PAGE_SIZE ? left : SX_PAGE_SIZE;
        struct blkif_request_segment seg = {
            .gref = grefs[i], .first_sect = 0, .last_sect = (uint8_t)(n / 512 - 1),
        };
        if (zb) {
            seg = zc_segment(zb, zaddr, left, &n);
            zaddr += n;
        }
        if (s->nind) {
            if (i % BF_SEGS_PER_IND_PAGE == 0)
                ind_page = (struct blkif_request_segment *)
                    slot_page(f, s, s->nseg + (unsigned)(i / BF_SEGS_PER_IND_PAGE), q);
            ind_page[i % BF_SEGS_PER_IND_PAGE] = seg;
        } else {
            segs[i] = seg;
        }
        if (src && !zb)
            memcpy(slot_page(f, s, i, q), src + (size_t)i * SX_PAGE_SIZE, n);
        left -= n;
    }
}

/* The granted buffer holding all of [buf, buf + len) when it starts on a sector boundary, or
 * NULL (then the data is copied). */
static const struct bf_buf *zc_find(struct sx_blkfront *f, const void *buf, size_t len)
{
    unsigned n = atomic_load_explicit(&f->nbufs, memory_order_acquire);
    uintptr_t a = (uintptr_t)buf;
    if (!n || (a & 511))
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        uintptr_t base = (uintptr_t)f->bufs[i].addr;
        if (a >= base && a - base <= f->bufs[i].len && len <= f->bufs[i].len - (a - base))
            return &f->bufs[i];
    }
    return NULL;
}

int sx_blkfront_buf_alloc(struct sx_blkfront *f, size_t len, void **buf)
{
    if (!f || !buf || !len || len > (size_t)UINT32_MAX * SX_PAGE_SIZE)
        return -EINVAL;
    if (!f->info.persistent)
        return -EOPNOTSUPP;
    size_t pages = (len + SX_PAGE_SIZE - 1) / SX_PAGE_SIZE;
    pthread_mutex_lock(&f->buf_lock);
    unsigned n = atomic_load_explicit(&f->nbufs, memory_order_relaxed);
    int rc = -ENOSPC;
    if (n < BF_MAX_BUFS) {
        struct bf_buf *b = &f->bufs[n];
        b->refs = calloc(pages, sizeof(*b->refs));
        void *addr = NULL;
        rc = b->refs ? sx_gntshr_share_buf(f->shr, f->info.backend_id, (uint32_t)pages, true,
                                           b->refs, &addr)
                     : -ENOMEM;
        if (rc == 0) {
            b->addr = addr;
            b->len = pages * SX_PAGE_SIZE;
            /* release: the entry is complete before a submitter can see it */
            atomic_store_explicit(&f->nbufs, n + 1, memory_order_release);
            *buf = addr;
        } else {
            free(b->refs);
            b->refs = NULL;
        }
    }
    pthread_mutex_unlock(&f->buf_lock);
    return rc;
}

void bf_bufs_release(struct sx_blkfront *f)
{
    unsigned n = atomic_load_explicit(&f->nbufs, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        struct bf_buf *b = &f->bufs[i];
        int rc = sx_gntshr_unshare(f->shr, b->addr, (uint32_t)(b->len / SX_PAGE_SIZE));
        if (rc < 0)
            sx_warn("granted buffer of %zu bytes still mapped by the backend (%s)", b->len,
                    strerror(-rc));
        free(b->refs);
        b->refs = NULL;
    }
    atomic_store_explicit(&f->nbufs, 0, memory_order_relaxed);
}

void bf_bufs_forget(struct sx_blkfront *f)
{
    unsigned n = atomic_load_explicit(&f->nbufs, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        free(f->bufs[i].refs);
        f->bufs[i] = (struct bf_buf){ 0 };
    }
    atomic_store_explicit(&f->nbufs, 0, memory_order_release);
}

/* Check a caller request against the device and the queue's room: the ring requests it splits
 * into (*nparts) and its data pages (*pages). 0 or -errno (-EAGAIN: no room now). */
static int submit_check(struct sx_blkfront *f, struct bf_queue *q, enum sx_blkfront_op op,
                        uint64_t offset, const void *buf, size_t len, size_t pgoff,
                        unsigned *nparts, unsigned *pages)
{
    if (q->ring.halted)
        return -EPROTO;
    if ((offset | len) & 511)
        return -EINVAL;
    if (op != SX_BLKFRONT_FLUSH &&
        (len == 0 || offset > f->info.size_bytes || len > f->info.size_bytes - offset))
        return -EINVAL;
    *nparts = 1;
    *pages = 0;
    switch (op) {
    case SX_BLKFRONT_READ:
    case SX_BLKFRONT_WRITE:
        if (!buf)
            return -EINVAL;
        if (op == SX_BLKFRONT_WRITE && f->info.readonly)
            return -EROFS;
        if (len > INT_MAX)          /* the completion reports bytes as an int */
            return -E2BIG;
        *pages = (unsigned)((pgoff + len + SX_PAGE_SIZE - 1) / SX_PAGE_SIZE);
        *nparts = (*pages + f->segs_per_req - 1) / f->segs_per_req;
        break;
    case SX_BLKFRONT_FLUSH:
        if ((!f->info.flush && !f->info.barrier) || atomic_load(&f->no_flush))
            return -EOPNOTSUPP;
        if (f->info.readonly)
            return -EROFS;
        break;
    case SX_BLKFRONT_DISCARD:
        if (!f->info.discard || atomic_load(&f->no_discard))
            return -EOPNOTSUPP;
        if (f->info.readonly)
            return -EROFS;
        break;
    default:
        return -EINVAL;
    }
    if (*nparts > q->nr_ents)
        return -E2BIG;
    if (*nparts > q->nslot_free || *nparts > sx_front_ring_free_slots(&q->ring) ||
        !q->nureq_free) {
        q->st.eagain++;
        return -EAGAIN;
    }
    return 0;
}

/* With persistent grants: pool pages enough for every part of a data request (its data pages
 * and the indirect pages that list them). 0 or -errno. */
static int submit_reserve(struct sx_blkfront *f, struct bf_queue *q, unsigned nparts,
                          unsigned pages, bool zc)
{
    unsigned need = 0;
    for (unsigned k = 0, left = pages; k < nparts; k++) {
        unsigned n = left < f->segs_per_req ? left : f->segs_per_req;
        need += (zc ? 0 : n) + (n > BLKIF_MAX_SEGMENTS_PER_REQUEST
                         ? (unsigned)((n + BF_SEGS_PER_IND_PAGE - 1) / BF_SEGS_PER_IND_PAGE)
                         : 0);
        left -= n;
    }
    int rc = pool_reserve(f, q, need);
    q->st.eagain += rc == -EAGAIN;
    return rc;
}

/* Fill slot s (index si) with part of the request starting at *off and put its ring request:
 * a data part takes its pages (granted, or from the pool) and a write's data is copied in; in
 * a granted buffer (zb) the part names the buffer's own pages, the first part starting at
 * page offset pgoff. 0 or -errno (nothing of this part is on the ring then). */
static int submit_part(struct sx_blkfront *f, struct bf_queue *q, uint32_t si,
                       enum sx_blkfront_op op, uint64_t offset, const uint8_t *buf, size_t len,
                       const struct bf_buf *zb, size_t pgoff, size_t *off)
{
    struct bf_slot *s = &q->slots[si];
    uint64_t id = ((uint64_t)s->gen << 32) | si;
    union {
        blkif_request_t rw;
        blkif_request_discard_t d;
    } req;
    memset(&req, 0, sizeof(req));
    if (op == SX_BLKFRONT_READ || op == SX_BLKFRONT_WRITE) {
        /* Parts split at page boundaries: segs_per_req pages each (only the first part of a
         * granted buffer can start inside a page). */
        size_t in_page = (pgoff + *off) % SX_PAGE_SIZE;
        size_t plen = len - *off;
        if (plen > (size_t)f->segs_per_req * SX_PAGE_SIZE - in_page)
            plen = (size_t)f->segs_per_req * SX_PAGE_SIZE - in_page;
        s->len = (uint32_t)plen;
        s->zc = zb != NULL;
        s->nseg = (uint16_t)((in_page + plen + SX_PAGE_SIZE - 1) / SX_PAGE_SIZE);
        s->nind = s->nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST
                      ? (uint16_t)((s->nseg + BF_SEGS_PER_IND_PAGE - 1) / BF_SEGS_PER_IND_PAGE)
                      : 0;
        s->data_op = op == SX_BLKFRONT_READ ? BLKIF_OP_READ : BLKIF_OP_WRITE;
        s->op = s->nind ? BLKIF_OP_INDIRECT : s->data_op;
        int rc = slot_get_pages(f, q, s, op == SX_BLKFRONT_WRITE, q->gref_scratch);
        if (rc < 0) {
            s->nseg = s->nind = 0;
            return rc;
        }
        build_rw(f, q, s, id, (offset + *off) / 512,
                 op == SX_BLKFRONT_WRITE ? buf + *off : NULL, q->gref_scratch, zb, buf + *off,
                 &req.rw);
        *off += plen;
    } else if (op == SX_BLKFRONT_DISCARD) {
        s->len = 0;
        s->zc = false;
        s->op = s->data_op = BLKIF_OP_DISCARD;
        req.d.operation = BLKIF_OP_DISCARD;
        req.d.handle = f->handle;
        req.d.id = id;
        req.d.sector_number = offset / 512;
        req.d.nr_sectors = len / 512;
    } else {
        s->len = 0;
        s->zc = false;
        s->op = s->data_op = f->info.flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER;
        req.rw.operation = s->op;
        req.rw.handle = f->handle;
        req.rw.id = id;
    }
    int rc = sx_front_ring_put_req(&q->ring, &req);
    if (rc < 0)                 /* cannot happen after the free-slot check; stay safe */
        slot_release_pages(f, q, s);
    return rc;
}

/* Undo a submit whose part ntaken - 1 failed: the parts before it were put but not pushed, so
 * the ring's private producer goes back; slots return to the free stack in reverse order,
 * which puts every index back where it was. Returns what the caller gets. */
static int submit_unwind(struct sx_blkfront *f, struct bf_queue *q, unsigned ntaken,
                         unsigned nfree_before, uint32_t ui, int rc)
{
    unsigned written = ntaken - 1;
    for (unsigned k = ntaken; k-- > 0;) {
        struct bf_slot *s = &q->slots[q->slot_free[nfree_before - 1 - k]];
        if (k < written)
            slot_release_pages(f, q, s);
        slot_free(q, s);
    }
    q->ring.req_prod_pvt -= written;
    q->ring.stats.reqs -= written;
    q->ureq_free[q->nureq_free++] = ui;
    if ((rc == -ENOMEM || rc == -ENOSPC) && q->nslot_free < q->nr_ents) {
        q->st.eagain++;
        return -EAGAIN;         /* grant space frees up as requests complete */
    }
    return rc;
}

int sx_blkfront_submit(struct sx_blkfront *f, unsigned queue, enum sx_blkfront_op op,
                       uint64_t offset, void *buf, size_t len, void *cookie)
{
    if (!valid_queue(f, queue))
        return -EINVAL;
    struct bf_queue *q = &f->q[queue];
    unsigned nparts, pages;
    uint64_t t0 = 0;
    if (++q->lat_ctr >= BF_LAT_SAMPLE) {
        q->lat_ctr = 0;
        t0 = sx_now_ns();
    }
    const struct bf_buf *zb = op == SX_BLKFRONT_READ || op == SX_BLKFRONT_WRITE
                                  ? zc_find(f, buf, len) : NULL;
    size_t pgoff = zb ? (size_t)((const uint8_t *)buf - zb->addr) % SX_PAGE_SIZE : 0;
    int rc = submit_check(f, q, op, offset, buf, len, pgoff, &nparts, &pages);
    if (rc < 0)
        return rc;
    if (f->info.persistent && pages && (rc = submit_reserve(f, q, nparts, pages, zb)) < 0)
        return rc;

    uint32_t ui = q->ureq_free[--q->nureq_free];
    struct bf_ureq *u = &q->ureqs[ui];
    *u = (struct bf_ureq){ .cookie = cookie, .buf = buf, .offset = offset, .len = len,
                           .parts = nparts, .res = 0, .op = (uint8_t)op, .t_fe = 0 };
    /* Slots come off the free stack; nothing is pushed, so unwritten slots are invisible. */
    unsigned nfree_before = q->nslot_free, ntaken = 0;
    size_t off = 0;
    for (unsigned k = 0; k < nparts; k++) {
        uint32_t si = q->slot_free[--q->nslot_free];
        struct bf_slot *s = &q->slots[si];
        ntaken++;
        s->state = BF_SLOT_INFLIGHT;
        s->ureq = ui;
        s->buf_off = off;
        s->shr = NULL;
        s->nseg = s->nind = 0;
        s->zc = false;
        rc = submit_part(f, q, si, op, offset, buf, len, zb, pgoff, &off);
        if (rc < 0)
            return submit_unwind(f, q, ntaken, nfree_before, ui, rc);
    }
    for (unsigned k = 0; k < ntaken; k++)
        q->st.indirect_reqs += q->slots[q->slot_free[nfree_before - 1 - k]].nind != 0;
    if (t0) {
        /* Sampled: its submit work now, its first ring request's round trip from the kick. */
        u->t_fe = sx_now_ns() - t0 + 1;
        uint32_t first = q->slot_free[nfree_before - 1];
        if (q->nunkicked < BF_LAT_MAX) {
            q->slots[first].t_kick = 1;
            q->unkicked[q->nunkicked++] = first;
        }
    }
    q->st.ring_reqs += ntaken;
    q->st.zero_copy += zb != NULL;
    q->st.submitted++;
    q->st.split_reqs += nparts > 1;
    return 0;
}

int sx_blkfront_kick(struct sx_blkfront *f, unsigned queue)
{
    if (!valid_queue(f, queue))
        return -EINVAL;
    struct bf_queue *q = &f->q[queue];
    if (q->ring.req_prod_pvt == q->ring.req_pushed)
        return 0;
    int rc = sx_front_ring_push(&q->ring);
    if (rc < 0)
        return rc;
    q->st.kicks++;
    if (q->nunkicked) {
        uint64_t now = sx_now_ns();
        for (unsigned i = 0; i < q->nunkicked; i++)
            if (q->slots[q->unkicked[i]].t_kick == 1)
                q->slots[q->unkicked[i]].t_kick = now;
        q->nunkicked = 0;
    }
    if (rc == 1) {
        int nrc = sx_evtchn_notify(q->evt, (evtchn_port_t)q->port);
        if (nrc < 0)
            return nrc;
        q->st.notifies++;
    }
    return rc;
}

/* ------------------------------------------------------------------ completion */

static void slot_release_pages(struct sx_blkfront *f, struct bf_queue *q, struct bf_slot *s)
{
    if (f->info.persistent) {
        for (unsigned i = s->nseg + s->nind; i-- > (s->zc ? s->nseg : 0);)
            q->pool_free[q->npool_free++] = s->pg[i];
        s->nseg = s->nind = 0;
        return;
    }
    if (s->shr) {
        if (sx_gntshr_unshare(f->shr, s->shr, s->nseg + s->nind) == 0)
            s->shr = NULL;
    }
}

/* Retry ending access to pages the backend still mapped when their response came. */
static void reap_zombies(struct sx_blkfront *f, struct bf_queue *q)
{
    for (unsigned i = 0; q->zombies && i < q->nr_ents; i++) {
        struct bf_slot *s = &q->slots[i];
        if (s->state != BF_SLOT_ZOMBIE)
            continue;
        slot_release_pages(f, q, s);
        if (!s->shr) {
            q->zombies--;
            slot_free(q, s);
        }
    }
}

static int status_to_errno(int16_t st)
{
    switch (st) {
    case BLKIF_RSP_OKAY:
        return 0;
    case BLKIF_RSP_EOPNOTSUPP:
        return -EOPNOTSUPP;
    default:
        return -EIO;
    }
}

/* The clock once per reap, for sampled requests only. */
static uint64_t seen_at(uint64_t *seen)
{
    if (!*seen)
        *seen = sx_now_ns();
    return *seen;
}

/* Handle one response (a private copy) seen at *seen (read on first use); returns 1 when it
 * completed a caller request. */
static int complete_one(struct sx_blkfront *f, struct bf_queue *q, const blkif_response_t *r,
                        struct sx_blkfront_cpl *out, uint64_t *seen)
{
    uint64_t id = r->id;
    uint32_t si = (uint32_t)id;
    if (si >= q->nr_ents || q->slots[si].state != BF_SLOT_INFLIGHT ||
        q->slots[si].gen != (uint32_t)(id >> 32)) {
        q->st.bad_rsps++;
        sx_log_ratelimited(SX_LOG_WARN, "queue %u: response for id %#llx that is not "
                           "outstanding; ignored", q->idx, (unsigned long long)id);
        return 0;
    }
    struct bf_slot *s = &q->slots[si];
    struct bf_ureq *u = &q->ureqs[s->ureq];
    int res = status_to_errno(r->status);
    if (res == -EOPNOTSUPP && u->op == SX_BLKFRONT_FLUSH) {
        /* blkif.h: a flush "may still be returned at any time with the BLKIF_RSP_EOPNOTSUPP
         * result code": the backend has no cache to flush. The flush is done, and none is
         * sent again on this connection (Linux blkfront: BLK_STS_OK, feature_flush off). */
        atomic_store(&f->no_flush, true);
        res = 0;
    } else if (res == -EOPNOTSUPP && u->op == SX_BLKFRONT_DISCARD) {
        atomic_store(&f->no_discard, true);   /* the caller hears of it; no more discards */
    }
    if (s->t_kick > 1 && seen_at(seen) >= s->t_kick) {
        q->st.lat_total_ns += *seen - s->t_kick;
        q->st.lat_total_n++;
    }
    /* The response names the data operation, also for an indirect request (Linux blkback
     * answers with indirect_op, and Linux blkfront refuses anything else). */
    if (r->operation != s->data_op) {
        q->st.bad_rsps++;
        sx_log_ratelimited(SX_LOG_WARN, "queue %u: response op %u for a request of op %u",
                           q->idx, r->operation, s->op);
        res = -EIO;
    }
    if (res == 0 && s->data_op == BLKIF_OP_READ && s->nseg && !s->zc) {
        size_t left = s->len;
        for (unsigned i = 0; i < s->nseg; i++) {
            size_t n = left < SX_PAGE_SIZE ? left : SX_PAGE_SIZE;
            memcpy(u->buf + s->buf_off + (size_t)i * SX_PAGE_SIZE, slot_page(f, s, i, q), n);
            left -= n;
        }
    }
    if (res < 0 && u->res == 0)
        u->res = res;
    slot_release_pages(f, q, s);
    if (s->shr) {
        /* The backend answered but still maps the pages: keep the slot until it lets go. */
        s->state = BF_SLOT_ZOMBIE;
        q->zombies++;
        q->st.ungrant_busy++;
        sx_log_ratelimited(SX_LOG_WARN, "queue %u: backend still maps the grants of a "
                           "completed request", q->idx);
    } else {
        slot_free(q, s);
    }
    if (--u->parts)
        return 0;
    if (u->t_fe) {
        uint64_t done = sx_now_ns();
        q->st.lat_frontend_ns += u->t_fe - 1 + (done - seen_at(seen));
        q->st.lat_frontend_n++;
    }
    out->cookie = u->cookie;
    out->res = u->res ? u->res
                      : (u->op == SX_BLKFRONT_READ || u->op == SX_BLKFRONT_WRITE) ? (int)u->len : 0;
    q->st.completed++;
    q->st.errors += u->res != 0;
    q->ureq_free[q->nureq_free++] = (uint32_t)(u - q->ureqs);
    return 1;
}

int sx_blkfront_poll(struct sx_blkfront *f, unsigned queue, struct sx_blkfront_cpl *cpl,
                     unsigned max)
{
    if (!valid_queue(f, queue) || (!cpl && max))
        return -EINVAL;
    struct bf_queue *q = &f->q[queue];
    if (q->zombies)
        reap_zombies(f, q);
    if (q->nrequeue)
        bf_requeue_drain(f, q);
    unsigned n = 0;
    uint64_t seen = 0;
    while (n < max) {
        unsigned want = max - n < BF_RSP_BATCH ? max - n : BF_RSP_BATCH;
        /* Each response completes at most one caller request: `want` bounds the output. */
        int k = sx_front_ring_take_rsp(&q->ring, q->rsp, want);
        if (k < 0) {
            sx_log_ratelimited(SX_LOG_ERR, "queue %u halted: the backend produced more "
                               "responses than requests were outstanding", q->idx);
            return n ? (int)n : k;
        }
        if (k == 0)
            break;
        for (int i = 0; i < k; i++)
            n += (unsigned)complete_one(f, q, &q->rsp[i], &cpl[n], &seen);
    }
    if (q->st.completed - q->pub.completed >= BF_PUBLISH_EVERY)
        bf_stats_publish(f, q);
    return (int)n;
}

int sx_blkfront_arm(struct sx_blkfront *f, unsigned queue)
{
    if (!valid_queue(f, queue))
        return -EINVAL;
    struct bf_queue *q = &f->q[queue];
    /* Consume what was delivered; the port is masked until we unmask it. */
    sx_idle_arm(&q->idle);
    int rc = sx_front_ring_final_check(&q->ring);
    if (rc == 0) {
        q->st.sleeps++;
        bf_stats_publish(f, q);     /* going idle: the file catches up for free */
    }
    return rc;
}

/* The data path's liveness check (sx_blkfront_wait) and the caller's. */
int sx_blkfront_backend_state(struct sx_blkfront *f)
{
    if (!f)
        return -EINVAL;
    enum xenbus_state st;
    pthread_mutex_lock(&f->xb_lock);
    /* A resume replaces xb under this lock. */
    int rc = f->xb ? sx_xenbus_read_state(f->xb, XBT_NULL, f->info.backend_path, &st) : -ENOTCONN;
    pthread_mutex_unlock(&f->xb_lock);
    return rc < 0 ? rc : (int)st;
}

int sx_blkfront_wait(struct sx_blkfront *f, unsigned queue, struct sx_blkfront_cpl *cpl,
                     unsigned min_nr, unsigned max, int timeout_ms)
{
    if (!valid_queue(f, queue) || min_nr > max || (!cpl && max))
        return -EINVAL;
    struct bf_queue *q = &f->q[queue];
    int rc = sx_blkfront_kick(f, queue);
    if (rc < 0)
        return rc;
    long long deadline =
        timeout_ms < 0 ? -1 : (long long)sx_now_ns() + (long long)timeout_ms * 1000000;
    unsigned n = 0;
    for (;;) {
        rc = sx_blkfront_poll(f, queue, cpl + n, max - n);
        if (rc < 0)
            return n ? (int)n : rc;
        n += (unsigned)rc;
        if (n >= min_nr || q->st.submitted == q->st.completed)
            break;
        /* Requests in flight are the work a spin can catch: their responses are on the way. */
        sx_idle_did(&q->idle, true);
        if (sx_idle_spin(&q->idle, sx_front_ring_pred, &q->ring)) {
            q->st.spins_won++;
            continue;
        }
        rc = sx_blkfront_arm(f, queue);
        if (rc < 0)
            return n ? (int)n : rc;
        if (rc == 1)
            continue;
        int left = BF_LIVENESS_MS;
        if (deadline >= 0) {
            long long l = (deadline - (long long)sx_now_ns() + 999999) / 1000000;
            if (l <= 0)
                break;
            if (l < left)
                left = (int)l;
        }
        struct pollfd pfd = { .fd = sx_evtchn_fd(q->evt), .events = POLLIN };
        q->st.waits++;
        int pr = sx_idle_poll(&q->idle, &pfd, 1, left);
        if (pr < 0 && pr != -EINTR)
            return n ? (int)n : pr;
        if (pr == 0 && left == BF_LIVENESS_MS && !sx_front_ring_has_responses(&q->ring)) {
            /* A second of silence: is anybody still there? */
            int st = sx_blkfront_backend_state(f);
            if (st != XenbusStateConnected) {
                sx_log_ratelimited(SX_LOG_ERR, "queue %u: backend %s is %s with %u requests "
                                   "outstanding", q->idx, f->info.backend_path,
                                   st < 0 ? "unreadable" : "no longer Connected",
                                   sx_blkfront_inflight(f, queue));
                return n ? (int)n : -ENOTCONN;
            }
        }
    }
    return (int)n;
}

bool sx_blkfront_spin(struct sx_blkfront *f, unsigned queue, uint64_t budget_ns)
{
    if (!valid_queue(f, queue))
        return false;
    return sx_idle_spin_budget_yield(sx_front_ring_pred, &f->q[queue].ring, budget_ns);
}

int sx_blkfront_fd(struct sx_blkfront *f, unsigned queue)
{
    /* Not tied to the data path being up: the handle, and its fd, outlive a resume, and a
     * caller about to poll during one must get the fd the resume wakes. */
    if (!f || queue >= f->info.nr_queues || !f->q[queue].evt)
        return -EINVAL;
    return sx_evtchn_fd(f->q[queue].evt);
}

unsigned sx_blkfront_inflight(const struct sx_blkfront *f, unsigned queue)
{
    if (!valid_queue(f, queue))
        return 0;
    return (unsigned)(f->q[queue].st.submitted - f->q[queue].st.completed);
}

void sx_blkfront_get_stats(const struct sx_blkfront *f, unsigned queue,
                           struct sx_blkfront_stats *st)
{
    if (!f || queue >= SX_BLKFRONT_MAX_QUEUES) {
        memset(st, 0, sizeof(*st));
        return;
    }
    *st = f->q[queue].st;
}

/* ------------------------------------------------------------------ suspend and resume */

int bf_inflight_save(struct sx_blkfront *f)
{
    for (unsigned qi = 0; qi < f->info.nr_queues; qi++) {
        struct bf_queue *q = &f->q[qi];
        q->nrequeue_pre = q->nrequeue;
        unsigned busy = q->nr_ents - q->nureq_free;
        if (!busy)
            continue;
        bool *free_ = calloc(q->nr_ents, sizeof(*free_));
        struct bf_requeue *rq = realloc(q->requeue, (q->nrequeue + busy) * sizeof(*rq));
        if (!free_ || !rq) {
            free(free_);
            if (rq)
                q->requeue = rq;
            return -ENOMEM;
        }
        q->requeue = rq;
        for (unsigned i = 0; i < q->nureq_free; i++)
            free_[q->ureq_free[i]] = true;
        for (unsigned u = 0; u < q->nr_ents; u++) {
            if (free_[u])
                continue;
            const struct bf_ureq *r = &q->ureqs[u];
            q->requeue[q->nrequeue++] = (struct bf_requeue){ .cookie = r->cookie, .buf = r->buf,
                                                              .offset = r->offset, .len = r->len,
                                                              .op = r->op };
        }
        free(free_);
    }
    return 0;
}

int bf_requeue_drain(struct sx_blkfront *f, struct bf_queue *q)
{
    unsigned done = 0;
    int rc = 0;
    while (done < q->nrequeue) {
        const struct bf_requeue *r = &q->requeue[done];
        /* Counted once when the caller submitted it: its second issue is not a new one. */
        q->st.submitted--;
        rc = sx_blkfront_submit(f, q->idx, (enum sx_blkfront_op)r->op, r->offset, r->buf,
                                r->len, r->cookie);
        if (rc < 0) {
            q->st.submitted++;
            if (rc == -EAGAIN)
                rc = 0;     /* the rest when completions make room */
            else
                sx_err("queue %u: reissue of a request at %llu: %s", q->idx,
                       (unsigned long long)r->offset, strerror(-rc));
            break;
        }
        q->st.reissued++;
        done++;
    }
    memmove(q->requeue, q->requeue + done, (q->nrequeue - done) * sizeof(*q->requeue));
    q->nrequeue -= done;
    if (done) {
        int k = sx_blkfront_kick(f, q->idx);
        if (k < 0 && rc == 0)
            rc = k;
    }
    return rc;
}
