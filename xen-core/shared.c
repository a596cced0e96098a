/* The sim hypervisor's per-domain shared state: layout, guest page and grant-ref allocators,
 * and grant pinning with Xen's semantics. */
#define SX_LOG_MODULE "xen-core"
#include "xen-core/shared.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "barrier.h"

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

uint64_t sxd_layout(struct sxd_shared *s, uint64_t nr_pages, uint32_t nr_grant, uint32_t nr_ports)
{
    uint64_t off = align_up(sizeof(struct sxd_shared), 64);
    uint64_t page_bm = off;
    off = align_up(off + align_up(nr_pages, 64) / 8, 64);
    uint64_t gref_bm = off;
    off = align_up(off + align_up(nr_grant, 64) / 8, SXD_PAGE_SIZE);
    uint64_t grant = off;
    off = align_up(off + (uint64_t)nr_grant * sizeof(grant_entry_v1_t), 64);
    uint64_t active = off;
    off = align_up(off + (uint64_t)nr_grant * sizeof(struct sxd_active), 64);
    uint64_t ports = off;
    off = align_up(off + (uint64_t)nr_ports * sizeof(struct sxd_port), 64);
    uint64_t dirty = off;
    off = align_up(off + align_up(nr_pages, 64) / 8, 64);
    uint64_t round = off;
    off = align_up(off + align_up(nr_pages, 64) / 8, SXD_PAGE_SIZE);
    if (s) {
        s->nr_pages = nr_pages;
        s->nr_grant = nr_grant;
        s->nr_ports = nr_ports;
        s->off_page_bitmap = page_bm;
        s->off_gref_bitmap = gref_bm;
        s->off_grant = grant;
        s->off_active = active;
        s->off_ports = ports;
        s->off_dirty = dirty;
        s->off_round = round;
        s->total_size = off;
    }
    return off;
}

static int alloc_lock(struct sxd_shared *s)
{
    int rc = pthread_mutex_lock(&s->alloc_lock);
    if (rc == EOWNERDEAD) {
        /* A process died holding the lock; the bitmaps are updated word by word, so the
         * state is consistent enough to continue (at worst a few pages leak). */
        pthread_mutex_consistent(&s->alloc_lock);
        rc = 0;
    }
    return rc ? -rc : 0;
}

static int bm_test(const uint64_t *bm, uint64_t i) { return (bm[i / 64] >> (i % 64)) & 1; }
static void bm_set(uint64_t *bm, uint64_t i) { bm[i / 64] |= 1ull << (i % 64); }
static void bm_clear(uint64_t *bm, uint64_t i) { bm[i / 64] &= ~(1ull << (i % 64)); }

int64_t sxd_pages_alloc(struct sxd_shared *s, uint32_t count)
{
    if (count == 0 || count > s->nr_pages)
        return -EINVAL;
    if (alloc_lock(s))
        return -EIO;
    uint64_t *bm = sxd_page_bitmap(s);
    int64_t found = -ENOMEM;
    uint64_t run = 0;
    for (uint64_t i = 0; i < s->nr_pages; i++) {
        if (bm[i / 64] == ~0ull && i % 64 == 0) {   /* skip full words quickly */
            run = 0;
            i += 63;
            continue;
        }
        if (bm_test(bm, i)) {
            run = 0;
            continue;
        }
        if (++run == count) {
            found = (int64_t)(i + 1 - count);
            break;
        }
    }
    if (found >= 0) {
        for (uint64_t i = 0; i < count; i++)
            bm_set(bm, (uint64_t)found + i);
        s->pages_used += count;
    }
    pthread_mutex_unlock(&s->alloc_lock);
    return found;
}

void sxd_pages_free(struct sxd_shared *s, uint64_t frame, uint32_t count)
{
    if (frame + count > s->nr_pages || alloc_lock(s))
        return;
    uint64_t *bm = sxd_page_bitmap(s);
    for (uint64_t i = 0; i < count; i++) {
        if (bm_test(bm, frame + i)) {
            bm_clear(bm, frame + i);
            s->pages_used--;
        }
    }
    pthread_mutex_unlock(&s->alloc_lock);
}

int64_t sxd_gref_alloc(struct sxd_shared *s)
{
    if (alloc_lock(s))
        return -EIO;
    uint64_t *bm = sxd_gref_bitmap(s);
    int64_t found = -ENOSPC;
    for (uint64_t i = SXD_GNTTAB_RESERVED; i < s->nr_grant; i++) {
        if (i % 64 == 0 && bm[i / 64] == ~0ull) {
            i += 63;
            continue;
        }
        if (!bm_test(bm, i)) {
            bm_set(bm, i);
            s->grefs_used++;
            found = (int64_t)i;
            break;
        }
    }
    pthread_mutex_unlock(&s->alloc_lock);
    return found;
}

void sxd_gref_free(struct sxd_shared *s, grant_ref_t ref)
{
    if (ref < SXD_GNTTAB_RESERVED || ref >= s->nr_grant || alloc_lock(s))
        return;
    uint64_t *bm = sxd_gref_bitmap(s);
    if (bm_test(bm, ref)) {
        bm_clear(bm, ref);
        s->grefs_used--;
    }
    pthread_mutex_unlock(&s->alloc_lock);
}

/* The first 32 bits of a v1 entry: flags in the low half, domid in the high half. Xen updates
 * them together with one cmpxchg so a guest changing the entry races cleanly with a pin. */
static _Atomic uint32_t *grant_combo(grant_entry_v1_t *e)
{
    return (_Atomic uint32_t *)(void *)&e->flags;
}

static void act_lock(struct sxd_active *a)
{
    while (atomic_exchange_explicit(&a->lock, 1, memory_order_acquire))
        sx_cpu_relax();
}
static void act_unlock(struct sxd_active *a)
{
    atomic_store_explicit(&a->lock, 0, memory_order_release);
}

int16_t sxd_grant_pin(struct sxd_shared *s, grant_ref_t ref, domid_t mapper, int writable,
                      uint32_t *frame)
{
    if (ref >= s->nr_grant)
        return GNTST_bad_gntref;
    grant_entry_v1_t *e = &sxd_grant_table(s)[ref];
    struct sxd_active *a = &sxd_active_table(s)[ref];
    _Atomic uint32_t *combo = grant_combo(e);
    int16_t st = GNTST_okay;

    act_lock(a);
    uint32_t pins = a->rd_pins + a->wr_pins;
    if (pins && a->mapper != mapper) {
        st = GNTST_general_error;   /* pinned by another domain: Xen's "bad domain" pin fail */
        goto out;
    }
    uint32_t old = atomic_load(combo);
    for (;;) {
        uint16_t flags = (uint16_t)old, gdom = (uint16_t)(old >> 16);
        if (!pins && (((flags & (GTF_type_mask | GTF_sub_page)) != GTF_permit_access) ||
                      gdom != mapper)) {
            st = GNTST_general_error;   /* bad flags or wrong domain */
            goto out;
        }
        uint32_t nflags = flags | GTF_reading;
        if (writable) {
            if (flags & GTF_readonly) {
                st = GNTST_general_error;   /* write-pin of a read-only grant */
                goto out;
            }
            nflags |= GTF_writing;
        }
        uint32_t nw = (nflags & 0xffffu) | ((uint32_t)gdom << 16);
        if (nw == old || atomic_compare_exchange_weak(combo, &old, nw))
            break;
        /* The guest changed the entry under us: re-validate the new value. */
    }
    if (!pins) {
        /* The frame is latched at first pin, after the flags say we own it. */
        uint32_t f = SX_READ_ONCE(e->frame);
        if (f >= s->nr_pages) {
            /* Undo our status bits: nothing else holds this entry. */
            atomic_fetch_and(combo, ~(uint32_t)(GTF_reading | GTF_writing));
            st = GNTST_bad_page;
            goto out;
        }
        a->frame = f;
        a->mapper = mapper;
    }
    if (writable)
        a->wr_pins++;
    else
        a->rd_pins++;
    *frame = a->frame;
out:
    act_unlock(a);
    return st;
}

void sxd_grant_unpin(struct sxd_shared *s, grant_ref_t ref, int writable)
{
    if (ref >= s->nr_grant)
        return;
    grant_entry_v1_t *e = &sxd_grant_table(s)[ref];
    struct sxd_active *a = &sxd_active_table(s)[ref];
    act_lock(a);
    /* The backend may have written the frame through this pin: in log-dirty mode it must be
     * sent again. Marked before the pin goes, so a round that no longer sees the pin sees the
     * mark (the toolstack scans pins, then takes the bitmap). */
    if (writable && a->wr_pins && atomic_load_explicit(&s->logdirty, memory_order_relaxed))
        sxd_dirty_mark(s, a->frame);
    if (writable && a->wr_pins)
        a->wr_pins--;
    else if (!writable && a->rd_pins)
        a->rd_pins--;
    uint32_t clear = 0;
    if (!a->wr_pins)
        clear |= GTF_writing;
    if (!a->wr_pins && !a->rd_pins)
        clear |= GTF_reading;
    if (clear)
        atomic_fetch_and(grant_combo(e), ~clear);
    act_unlock(a);
}
