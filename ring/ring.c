/*
 * Shared-ring helpers: byte-sized entries laid out exactly as <xen/io/ring.h> lays them out.
 * See ring/ring.h for the contract. Each barrier below names both sides of what it orders,
 * following ring.h's own macros and Linux xen-blkback.
 */
#define SX_LOG_MODULE "ring"
#include "ring/ring.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"

/* The header we declare must be the one DEFINE_RING_TYPES declares. */
_Static_assert(sizeof(struct sx_sring_hdr) == 64, "sring header is 64 bytes");
_Static_assert(offsetof(struct sx_sring_hdr, req_prod) == 0, "req_prod at 0");
_Static_assert(offsetof(struct sx_sring_hdr, req_event) == 4, "req_event at 4");
_Static_assert(offsetof(struct sx_sring_hdr, rsp_prod) == 8, "rsp_prod at 8");
_Static_assert(offsetof(struct sx_sring_hdr, rsp_event) == 12, "rsp_event at 12");

unsigned sx_ring_nr_ents(size_t ring_bytes, size_t entry_size)
{
    if (entry_size == 0 || ring_bytes < SX_SRING_HDR_SIZE + entry_size)
        return 0;
    size_t n = (ring_bytes - SX_SRING_HDR_SIZE) / entry_size;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    /* Round down to a power of two with ring.h's own macro, so the count is __RING_SIZE's. */
    uint32_t n32 = (uint32_t)n;
    return __RD32(n32);
}

/* Common attach checks: 2^order pages, order 0..4, and at least one entry. */
static int ring_geometry(void *sring_mem, size_t ring_bytes, size_t req_size, size_t rsp_size,
                         unsigned *nr_ents, uint32_t *entry_size)
{
    if (!sring_mem || ((uintptr_t)sring_mem & (sizeof(RING_IDX) - 1)))
        return -EINVAL;
    bool ok = false;
    for (unsigned order = 0; order <= SX_RING_MAX_ORDER; order++)
        ok |= ring_bytes == sx_ring_bytes(order);
    if (!ok || req_size == 0 || rsp_size == 0)
        return -EINVAL;
    size_t esz = req_size > rsp_size ? req_size : rsp_size;
    unsigned n = sx_ring_nr_ents(ring_bytes, esz);
    if (n == 0)
        return -EINVAL;
    *nr_ents = n;
    *entry_size = (uint32_t)esz;
    return 0;
}

static inline uint8_t *ring_slot(uint8_t *ents, unsigned nr_ents, uint32_t entry_size,
                                 RING_IDX idx)
{
    return ents + (size_t)(idx & (nr_ents - 1)) * entry_size;
}

/* ---------------------------------------------------------------- back */

int sx_back_ring_attach(struct sx_back_ring *r, void *sring_mem, size_t ring_bytes,
                        size_t req_size, size_t rsp_size)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    unsigned n;
    uint32_t esz;
    int rc = ring_geometry(sring_mem, ring_bytes, req_size, rsp_size, &n, &esz);
    if (rc < 0)
        return rc;
    r->sring = sring_mem;
    r->ents = (uint8_t *)sring_mem + SX_SRING_HDR_SIZE;
    r->nr_ents = n;
    r->req_size = (uint32_t)req_size;
    r->rsp_size = (uint32_t)rsp_size;
    r->entry_size = esz;
    /* BACK_RING_INIT: both private indexes start at 0, like the frontend's SHARED_RING_INIT. */
    r->req_cons = 0;
    r->rsp_prod_pvt = 0;
    r->rsp_pushed = 0;
    return 0;
}

void sx_back_ring_detach(struct sx_back_ring *r)
{
    if (!r)
        return;
    r->sring = NULL;
    r->ents = NULL;
    r->nr_ents = 0;
    r->halted = true;   /* any later call fails instead of touching unmapped memory */
}

static int back_halt(struct sx_back_ring *r, RING_IDX rp)
{
    r->halted = true;
    r->stats.overflows++;
    sx_log_ratelimited(SX_LOG_WARN,
                       "frontend overflowed the ring: req_prod %u, req_cons %u, rsp_prod %u, "
                       "%u entries; ring halted", rp, r->req_cons, r->rsp_prod_pvt, r->nr_ents);
    return -EPROTO;
}

int sx_back_ring_take(struct sx_back_ring *r, void *dst, unsigned max)
{
    if (r->halted)
        return -EPROTO;
    RING_IDX rp = SX_READ_ONCE(r->sring->req_prod);   /* read once: the frontend may change it */
    sx_rmb(); /* see requests up to rp: the slot loads below are ordered after the req_prod load
               * (pairs with the frontend's wmb between writing slots and publishing req_prod) */

    /* RING_REQUEST_PROD_OVERFLOW: more requests than the ring can hold beyond the responses
     * we produced; and req_prod moved backwards or jumped more than a ring past req_cons. */
    if ((RING_IDX)(rp - r->rsp_prod_pvt) > r->nr_ents ||
        (RING_IDX)(rp - r->req_cons) > r->nr_ents)
        return back_halt(r, rp);

    uint8_t *out = dst;
    RING_IDX rc = r->req_cons;
    unsigned n = 0;
    while (rc != rp && n < max) {
        /* RING_REQUEST_CONS_OVERFLOW: never reuse a slot whose response is not out yet.
         * Unreachable after the checks above; kept as the loop guard ring.h names it. */
        if ((RING_IDX)(rc - r->rsp_prod_pvt) >= r->nr_ents)
            break;
        memcpy(out, ring_slot(r->ents, r->nr_ents, r->entry_size, rc), r->req_size);
        out += r->req_size;
        rc++;
        n++;
    }
    r->req_cons = rc;
    r->stats.reqs += n;
    return (int)n;
}

/* XEN_RING_NR_UNCONSUMED_REQUESTS, with req_prod read once. */
static unsigned back_unconsumed(const struct sx_back_ring *r)
{
    RING_IDX rp = SX_READ_ONCE(r->sring->req_prod);
    unsigned req = rp - r->req_cons;
    unsigned rsp = r->nr_ents - (r->req_cons - r->rsp_prod_pvt);
    return req < rsp ? req : rsp;
}

int sx_back_ring_final_check(struct sx_back_ring *r)
{
    if (r->halted)
        return -EPROTO;
    r->stats.final_checks++;
    if (back_unconsumed(r))
        return 1;
    SX_WRITE_ONCE(r->sring->req_event, r->req_cons + 1);
    sx_mb(); /* the req_event store is visible before we re-read req_prod: pairs with the
              * frontend's push (req_prod store; mb; req_event load), so either it sees our
              * req_event and notifies, or we see its req_prod here. No lost wakeup. */
    if (back_unconsumed(r)) {
        r->stats.final_rechecks++;
        return 1;
    }
    return 0;
}

int sx_back_ring_put_rsp(struct sx_back_ring *r, const void *rsp)
{
    if (r->halted)
        return -EPROTO;
    if (r->rsp_prod_pvt == r->req_cons)   /* no taken request left to answer */
        return -ENOSPC;
    memcpy(ring_slot(r->ents, r->nr_ents, r->entry_size, r->rsp_prod_pvt), rsp, r->rsp_size);
    r->rsp_prod_pvt++;
    r->stats.rsps++;
    return 0;
}

int sx_back_ring_push(struct sx_back_ring *r)
{
    if (r->halted)
        return 0;
    RING_IDX old = r->rsp_pushed;   /* ours, not read back from the page a guest can scribble */
    RING_IDX new = r->rsp_prod_pvt;
    if (new == old)
        return 0;
    sx_wmb(); /* the frontend sees the response slots before the rsp_prod that publishes them */
    SX_WRITE_ONCE(r->sring->rsp_prod, new);
    r->rsp_pushed = new;
    sx_mb(); /* the rsp_prod store is visible before we read rsp_event: pairs with the
              * frontend's final check (rsp_event store; mb; rsp_prod load) */
    RING_IDX ev = SX_READ_ONCE(r->sring->rsp_event);
    r->stats.pushes++;
    /* Notify when rsp_event lies in (old, new]: the frontend asked to hear about one of these. */
    int notify = (RING_IDX)(new - ev) < (RING_IDX)(new - old);
    r->stats.notifies += (unsigned)notify;
    return notify;
}

/* ---------------------------------------------------------------- front */

int sx_front_ring_init(struct sx_front_ring *r, void *sring_mem, size_t ring_bytes,
                       size_t req_size, size_t rsp_size)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    unsigned n;
    uint32_t esz;
    int rc = ring_geometry(sring_mem, ring_bytes, req_size, rsp_size, &n, &esz);
    if (rc < 0)
        return rc;
    struct sx_sring_hdr *s = sring_mem;
    /* SHARED_RING_INIT */
    SX_WRITE_ONCE(s->req_prod, 0);
    SX_WRITE_ONCE(s->rsp_prod, 0);
    SX_WRITE_ONCE(s->req_event, 1);
    SX_WRITE_ONCE(s->rsp_event, 1);
    memset(s->pvt, 0, sizeof(s->pvt));
    r->sring = s;
    r->ents = (uint8_t *)sring_mem + SX_SRING_HDR_SIZE;
    r->nr_ents = n;
    r->req_size = (uint32_t)req_size;
    r->rsp_size = (uint32_t)rsp_size;
    r->entry_size = esz;
    return 0;
}

void sx_front_ring_detach(struct sx_front_ring *r)
{
    if (!r)
        return;
    r->sring = NULL;
    r->ents = NULL;
    r->nr_ents = 0;
    r->halted = true;
}

int sx_front_ring_put_req(struct sx_front_ring *r, const void *req)
{
    if (r->halted)
        return -EPROTO;
    if (sx_front_ring_free_slots(r) == 0)
        return -EAGAIN;
    memcpy(ring_slot(r->ents, r->nr_ents, r->entry_size, r->req_prod_pvt), req, r->req_size);
    r->req_prod_pvt++;
    r->stats.reqs++;
    return 0;
}

int sx_front_ring_push(struct sx_front_ring *r)
{
    if (r->halted)
        return 0;
    RING_IDX old = r->req_pushed;
    RING_IDX new = r->req_prod_pvt;
    if (new == old)
        return 0;
    sx_wmb(); /* the backend sees the request slots before the req_prod that publishes them */
    SX_WRITE_ONCE(r->sring->req_prod, new);
    r->req_pushed = new;
    sx_mb(); /* the req_prod store is visible before we read req_event: pairs with the
              * backend's final check (req_event store; mb; req_prod load) */
    RING_IDX ev = SX_READ_ONCE(r->sring->req_event);
    r->stats.pushes++;
    int notify = (RING_IDX)(new - ev) < (RING_IDX)(new - old);
    r->stats.notifies += (unsigned)notify;
    return notify;
}

int sx_front_ring_take_rsp(struct sx_front_ring *r, void *dst, unsigned max)
{
    if (r->halted)
        return -EPROTO;
    RING_IDX rp = SX_READ_ONCE(r->sring->rsp_prod);   /* read once: the backend may change it */
    sx_rmb(); /* see responses up to rp: slot loads ordered after the rsp_prod load (pairs with
               * the backend's wmb between writing slots and publishing rsp_prod) */
    /* More responses than published requests outstanding (a tighter RING_RESPONSE_PROD_OVERFLOW;
     * also catches rsp_prod moving backwards). */
    if ((RING_IDX)(rp - r->rsp_cons) > (RING_IDX)(r->req_pushed - r->rsp_cons)) {
        r->halted = true;
        r->stats.overflows++;
        sx_log_ratelimited(SX_LOG_WARN,
                           "backend overflowed the ring: rsp_prod %u, rsp_cons %u, req_prod %u; "
                           "ring halted", rp, r->rsp_cons, r->req_pushed);
        return -EPROTO;
    }
    uint8_t *out = dst;
    RING_IDX rc = r->rsp_cons;
    unsigned n = 0;
    while (rc != rp && n < max) {
        memcpy(out, ring_slot(r->ents, r->nr_ents, r->entry_size, rc), r->rsp_size);
        out += r->rsp_size;
        rc++;
        n++;
    }
    r->rsp_cons = rc;
    r->stats.rsps += n;
    return (int)n;
}

int sx_front_ring_final_check(struct sx_front_ring *r)
{
    if (r->halted)
        return -EPROTO;
    r->stats.final_checks++;
    if (SX_READ_ONCE(r->sring->rsp_prod) != r->rsp_cons)
        return 1;
    SX_WRITE_ONCE(r->sring->rsp_event, r->rsp_cons + 1);
    sx_mb(); /* the rsp_event store is visible before we re-read rsp_prod: pairs with the
              * backend's push (rsp_prod store; mb; rsp_event load). No lost wakeup. */
    if (SX_READ_ONCE(r->sring->rsp_prod) != r->rsp_cons) {
        r->stats.final_rechecks++;
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- adaptive polling */

uint64_t sx_ring_spin_ns(void)
{
    static _Atomic int64_t cached = -1;
    int64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0)
        return (uint64_t)v;
    v = SX_RING_SPIN_NS_DEFAULT;
    const char *s = getenv("SPLITXEN_SPIN_NS");
    if (s && *s) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0' && x <= 10ull * 1000 * 1000 * 1000)
            v = (int64_t)x;
        else
            sx_warn("ignoring SPLITXEN_SPIN_NS=%s (want ns, at most 10 s)", s);
    }
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return (uint64_t)v;
}

bool sx_back_ring_pred(void *back_ring)
{
    return sx_back_ring_has_requests(back_ring);
}

bool sx_front_ring_pred(void *front_ring)
{
    return sx_front_ring_has_responses(front_ring);
}
