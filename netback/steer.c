/*
 * netback rx steering (Linux xenvif_select_queue): when the frontend set a hash algorithm over
 * the ctrl ring, a frame from the world side goes to the rx ring of the queue its hash selects
 * (mapping[hash % size], or hash % queues without a table), whichever world-side queue it came
 * in on. A frame no hash type applies to has hash 0, as Linux's cleared skb hash.
 *
 * The queue thread that reads a frame hashes it; frames for another queue are handed to that
 * queue's inbox (struct nb_steer in common.h): one lock round per target queue per batch, a
 * buffer swap per frame (no copy, no allocation), a kick of the target's eventfd only when it
 * sleeps. A full inbox drops the frame (rx_drops, rx_drop_steer): a queue never holds more
 * than rx_nbuf frames of its own plus NB_STEER_SLOTS handed to it.
 *
 * Per-flow order holds: a flow's frames share a world-side queue (a TAP: the kernel hashes flows)
 * and a target, so they travel one reader, one inbox, in order.
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "netback/common.h"

_Static_assert((NB_STEER_SLOTS & (NB_STEER_SLOTS - 1)) == 0, "NB_STEER_SLOTS: a power of two");
_Static_assert(NB_MAX_QUEUES <= 32, "one bit per target queue");

int nb_steer_alloc(struct nb_queue *q)
{
    struct nb_steer *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->kickfd = -1;
    pthread_mutex_init(&s->lock, NULL);
    q->steer = s;   /* from here nb_steer_free unwinds */
    int rc = -ENOMEM;
    /* Each slot owns a buffer of the queue's size: a handoff swaps it with one of a queue's
     * entries (whose first rx_nbuf own one), never copies. */
    for (unsigned i = 0; i < NB_STEER_SLOTS; i++)
        if (!(s->slot[i].buf = malloc(q->rx_cap)))
            goto fail;
    s->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->kickfd < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;
fail:
    nb_steer_free(q);
    return rc;
}

void nb_steer_free(struct nb_queue *q)
{
    struct nb_steer *s = q ? q->steer : NULL;
    if (!s)
        return;
    for (unsigned i = 0; i < NB_STEER_SLOTS; i++)
        free(s->slot[i].buf);
    if (s->kickfd >= 0)
        close(s->kickfd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    q->steer = NULL;
}

static void stat_add(struct nb_queue *q, enum nb_stat i, uint64_t n)
{
    if (n)
        sx_stats_add(&q->vif->stats, i, n);
}

static void rxf_swap(struct nb_rxframe *a, struct nb_rxframe *b)
{
    struct nb_rxframe t = *a;
    *a = *b;
    *b = t;
}

/* Hand src->rxf[idx[0..n)] to dst's inbox. A handed entry of src->rxf now holds the slot's
 * spare buffer; a dropped one keeps its own: both are free entries for src afterwards. */
static void steer_push(struct nb_queue *src, struct nb_queue *dst, const uint8_t *idx,
                       unsigned n)
{
    struct nb_steer *in = dst->steer;
    unsigned added = 0;
    pthread_mutex_lock(&in->lock);
    unsigned cnt = atomic_load_explicit(&in->count, memory_order_relaxed);
    for (; added < n && cnt < NB_STEER_SLOTS; added++, cnt++)
        rxf_swap(&in->slot[(in->head + cnt) & (NB_STEER_SLOTS - 1)], &src->rxf[idx[added]]);
    /* the slots themselves are ordered by the lock; count is also polled without it */
    atomic_store_explicit(&in->count, cnt, memory_order_relaxed);
    pthread_mutex_unlock(&in->lock);
    stat_add(src, NBS_RX_STEERED, added);
    stat_add(src, NBS_RX_DROPS, n - added);
    stat_add(src, NBS_RX_DROP_STEER, n - added);
    if (!added)
        return;
    /* Order the count store above before the sleeping load below (pairs with the barrier in
     * nb_steer_sleep): either the owner sees the frames before it sleeps, or we see it
     * asleep and kick it. */
    sx_mb();
    if (atomic_load_explicit(&in->sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&in->sleeping, false, memory_order_relaxed)) {
        uint64_t one = 1;
        if (write(in->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            stat_add(src, NBS_RX_ERRORS, 1);
    }
}

unsigned nb_steer_route(struct nb_queue *q, unsigned first, const struct nb_hash_snap *hs)
{
    struct nb_vif *v = q->vif;
    const unsigned self = q->id, end = q->rxf_pending;
    uint8_t tgt[NB_RX_BATCH];
    uint32_t away = 0;   /* one bit per target queue other than self */
    for (unsigned k = first; k < end; k++) {
        struct nb_rxframe *f = &q->rxf[k];
        f->has_hash = nb_hash_frame(&hs->cfg, f->buf + SX_NETDEV_HDR_LEN, f->len, &f->hash,
                                    &f->htype);
        f->hashed = true;
        unsigned t = nb_hash_pick(hs->mapping, hs->size, hs->nqueues, f->has_hash ? f->hash : 0);
        if (t >= v->nqueues)
            t = self;   /* entries were checked against the queue count when set */
        tgt[k] = (uint8_t)t;
        if (t != self)
            away |= 1u << t;
    }
    if (!away)
        return 0;
    unsigned handed = 0;
    while (away) {
        unsigned t = (unsigned)__builtin_ctz(away);
        away &= away - 1;
        uint8_t idx[NB_RX_BATCH];
        unsigned n = 0;
        for (unsigned k = first; k < end; k++)
            if (tgt[k] == t)
                idx[n++] = (uint8_t)k;
        steer_push(q, &v->q[t], idx, n);
        handed += n;
    }
    /* Keep our own frames in arrival order at the front; the rest become free entries. */
    struct nb_rxframe spare[NB_RX_BATCH];
    unsigned keep = first, nspare = 0;
    for (unsigned k = first; k < end; k++) {
        if (tgt[k] != self)
            spare[nspare++] = q->rxf[k];
        else if (keep++ != k)
            q->rxf[keep - 1] = q->rxf[k];
    }
    memcpy(q->rxf + keep, spare, nspare * sizeof(spare[0]));
    q->rxf_pending = keep;
    return handed;
}

unsigned nb_steer_pull(struct nb_queue *q)
{
    struct nb_steer *in = q->steer;
    if (!in || q->rxf_pending >= q->rx_nbuf ||
        !atomic_load_explicit(&in->count, memory_order_relaxed))
        return 0;
    pthread_mutex_lock(&in->lock);
    unsigned cnt = atomic_load_explicit(&in->count, memory_order_relaxed);
    unsigned n = q->rx_nbuf - q->rxf_pending;
    if (n > cnt)
        n = cnt;
    for (unsigned i = 0; i < n; i++) {
        /* our free entry's buffer becomes the slot's spare */
        rxf_swap(&q->rxf[q->rxf_pending++], &in->slot[in->head]);
        in->head = (in->head + 1) & (NB_STEER_SLOTS - 1);
    }
    atomic_store_explicit(&in->count, cnt - n, memory_order_relaxed);
    pthread_mutex_unlock(&in->lock);
    return n;
}

bool nb_steer_sleep(struct nb_queue *q)
{
    struct nb_steer *in = q->steer;
    atomic_store_explicit(&in->sleeping, true, memory_order_relaxed);
    /* Order the sleeping store above before the count load below (pairs with the barrier in
     * steer_push). */
    sx_mb();
    if (atomic_load_explicit(&in->count, memory_order_relaxed)) {
        atomic_store_explicit(&in->sleeping, false, memory_order_relaxed);
        return false;
    }
    return true;
}

void nb_steer_wake(struct nb_queue *q, bool kicked)
{
    struct nb_steer *in = q->steer;
    atomic_store_explicit(&in->sleeping, false, memory_order_relaxed);
    uint64_t x;
    if (kicked && read(in->kickfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
        stat_add(q, NBS_RX_ERRORS, 1);
}
