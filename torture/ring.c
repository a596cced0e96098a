/*
 * torture, the rings: what the data path threads call. Each struct sx_tt_q belongs to the
 * thread that owns its ring; findings and log lines go through the device's lock, everything
 * else here is the thread's own.
 *
 * Ids in flight are an open-addressing set (linear probing, backward-shift deletion) of at
 * least twice the ring's entries: a ring never has more requests in flight than entries, held
 * responses included (the frontend cannot publish past rsp_prod_pvt + ring size).
 */
#define SX_LOG_MODULE "torture"
#include "torture/priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

struct sx_tt_q *sx_tt_q_get(struct sx_tt_dev *d, unsigned idx, int queue, const char *ring)
{
    if (!d || idx >= TT_MAX_RINGS)
        return NULL;
    struct sx_tt_q *q = d->q[idx];
    if (q)
        return q;
    q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->d = d;
    q->idx = idx;
    q->queue = queue;
    q->ring = ring;
    char stream[16];
    if (queue < 0)
        snprintf(stream, sizeof(stream), "%s", ring ? ring : "ring");
    else if (ring)
        snprintf(stream, sizeof(stream), "q%d.%s", queue, ring);
    else
        snprintf(stream, sizeof(stream), "q%d", queue);
    tt_rng_init(&q->rng, d->t->o.seed, d->name, stream);
    d->q[idx] = q;
    return q;
}

/* Drop the per-connection arrays (ids in flight, held responses). Idempotent. */
static void q_arrays_free(struct sx_tt_q *q)
{
    free(q->ids);
    free(q->ipos);
    free(q->used);
    free(q->held);
    q->ids = NULL;
    q->ipos = NULL;
    q->used = NULL;
    q->held = NULL;
    q->cap = q->nr_ents = 0;
}

void tt_q_free(struct sx_tt_q *q)
{
    if (!q)
        return;
    q_arrays_free(q);
    free(q);
}

struct sx_tt_dev *sx_tt_q_dev(const struct sx_tt_q *q)
{
    return q ? q->d : NULL;
}

struct sx_tt_where sx_tt_q_where(const struct sx_tt_q *q, uint64_t id, const char *op,
                                 RING_IDX pos)
{
    return (struct sx_tt_where){ .queue = q ? q->queue : -1, .ring = q ? q->ring : NULL,
                                 .has_req = true, .id = id, .op = op, .has_pos = true,
                                 .pos = pos };
}

int sx_tt_q_start(struct sx_tt_q *q, const struct sx_back_ring *r, const grant_ref_t *refs,
                  unsigned nrefs)
{
    if (!q)
        return 0;
    unsigned cap = 16;
    while (cap < 2 * r->nr_ents)
        cap *= 2;
    if (cap != q->cap || r->nr_ents != q->nr_ents) {
        q_arrays_free(q);
        q->ids = calloc(cap, sizeof(*q->ids));
        q->ipos = calloc(cap, sizeof(*q->ipos));
        q->used = calloc(cap, 1);
        q->held = calloc(r->nr_ents ? r->nr_ents : 1, sizeof(*q->held));
        q->cap = cap;
        q->nr_ents = r->nr_ents;
        if (!q->ids || !q->ipos || !q->used || !q->held) {
            q_arrays_free(q);
            return -ENOMEM;
        }
    } else {
        memset(q->used, 0, cap);
    }
    q->nheld = 0;
    q->pause_until = 0;
    q->burst_owed = 0;
    q->have_prod = false;
    q->suspect = false;
    q->have_ref = refs && nrefs;
    q->ref0 = q->have_ref ? refs[0] : 0;
    q->fp_valid = false;
    return 0;
}

void sx_tt_q_stop(struct sx_tt_q *q, const struct sx_back_ring *r)
{
    if (!q || !r->sring)
        return;
    /* rsp_prod is ours (never read back from the page); req_prod as the frontend left it */
    q->fp_rsp = r->rsp_pushed;
    q->fp_req = SX_READ_ONCE(r->sring->req_prod);
    q->fp_valid = q->have_ref && q->fp_rsp != 0;
}

/* ------------------------------------------------------------------ ids in flight */

static unsigned hslot(const struct sx_tt_q *q, uint64_t id)
{
    return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 32) & (q->cap - 1);
}

/* The slot holding id (true), or the empty slot where it would go (false). */
static bool ids_find(const struct sx_tt_q *q, uint64_t id, unsigned *at)
{
    unsigned i = hslot(q, id), n = 0;
    while (q->used[i] && n++ < q->cap) {
        if (q->ids[i] == id) {
            *at = i;
            return true;
        }
        i = (i + 1) & (q->cap - 1);
    }
    *at = i;
    return false;
}

static void ids_del(struct sx_tt_q *q, unsigned i)
{
    unsigned mask = q->cap - 1, j = i;
    q->used[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!q->used[j])
            return;
        unsigned k = hslot(q, q->ids[j]);
        /* j's entry may fill the hole at i unless its home k lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        q->ids[i] = q->ids[j];
        q->ipos[i] = q->ipos[j];
        q->used[i] = 1;
        q->used[j] = 0;
        i = j;
    }
}

/* ------------------------------------------------------------------ requests and responses */

static bool check_on(const struct sx_tt_q *q)
{
    return q->d->t->o.check && q->cap;
}

void sx_tt_q_id(struct sx_tt_q *q, uint64_t id, const char *op, RING_IDX pos)
{
    if (!q || !check_on(q))
        return;
    unsigned at;
    if (ids_find(q, id, &at)) {
        struct sx_tt_where w = sx_tt_q_where(q, id, op, pos);
        sx_tt_found(q->d, SX_TT_K_ID_REUSE, &w, NULL,
                    "id %" PRIu64 " is still in flight (taken at ring position %u)", id,
                    (unsigned)q->ipos[at]);
    } else if (!q->used[at]) {
        q->ids[at] = id;
        q->ipos[at] = pos;
        q->used[at] = 1;
    }
}

void sx_tt_q_req(struct sx_tt_q *q, uint64_t id, const char *op, RING_IDX pos, unsigned can,
                 int16_t status_err, int16_t status_notsupp, struct sx_tt_act *act)
{
    *act = (struct sx_tt_act){ 0 };
    if (!q)
        return;
    struct sx_tt_dev *d = q->d;
    tt_count(d);
    q->rng.n++;
    sx_tt_q_id(q, id, op, pos);
    if (!d->t->o.torture)
        return;
    uint64_t u = tt_rng_next(&q->rng), v = tt_rng_next(&q->rng);
    const char *o = op ? op : "?";
    if ((can & SX_TT_CAN_HOLD) && tt_fault_on(d, SX_TT_F_DELAY) && u % 1000 < 40) {
        act->delay_ms = (uint16_t)(1 + v % 20);
        tt_log_fault(d, SX_TT_F_DELAY, &q->rng, "%u ms (%s)", act->delay_ms, o);
    } else if ((can & SX_TT_CAN_HOLD) && tt_fault_on(d, SX_TT_F_REORDER) &&
               (u >> 10) % 1000 < 40) {
        act->reorder = (uint8_t)(1 + (v >> 8) % 3);
        tt_log_fault(d, SX_TT_F_REORDER, &q->rng, "after %u later responses (%s)", act->reorder, o);
    }
    if ((can & SX_TT_CAN_NOTSUPP) && tt_fault_on(d, SX_TT_F_EOPNOTSUPP) && (u >> 20) % 1000 < 250) {
        act->status = status_notsupp;
        tt_log_fault(d, SX_TT_F_EOPNOTSUPP, &q->rng, "(%s)", o);
    } else if (tt_fault_on(d, SX_TT_F_ERROR) && (u >> 30) % 1000 < 10) {
        act->status = status_err;
        tt_log_fault(d, SX_TT_F_ERROR, &q->rng, "(%s)", o);
    }
    if (tt_fault_on(d, SX_TT_F_PAUSE) && (u >> 40) % 1000 < 3) {
        unsigned ms = 10 + (unsigned)((v >> 16) % 191);
        q->pause_until = sx_now_ns() + (uint64_t)ms * 1000000u;
        tt_log_fault(d, SX_TT_F_PAUSE, &q->rng, "%u ms", ms);
    }
    if (tt_fault_on(d, SX_TT_F_BURST) && (u >> 50) % 1000 < 5) {
        act->burst = (uint8_t)(1 + (v >> 24) % 4);
        q->burst_owed += act->burst;
        tt_log_fault(d, SX_TT_F_BURST, &q->rng, "%u extra notifications", act->burst);
    }
}

void sx_tt_q_pkt(struct sx_tt_q *q, const char *what, unsigned max_first, struct sx_tt_pkt *p)
{
    *p = (struct sx_tt_pkt){ 0 };
    if (!q)
        return;
    struct sx_tt_dev *d = q->d;
    tt_count(d);
    q->rng.n++;
    if (!d->t->o.torture)
        return;
    uint64_t u = tt_rng_next(&q->rng), v = tt_rng_next(&q->rng);
    bool rx = q->ring && !strcmp(q->ring, "rx");
    if (rx && max_first > 1 && tt_fault_on(d, SX_TT_F_PARTIAL) && u % 1000 < 10) {
        p->first_len = (uint16_t)(1 + v % (max_first - 1));
        tt_log_fault(d, SX_TT_F_PARTIAL, &q->rng, "first slot %u bytes (%s)", p->first_len,
                     what);
    }
    /* A packet is a smaller thing than a block request: pauses are rarer and shorter. */
    if (!rx && tt_fault_on(d, SX_TT_F_PAUSE) && (u >> 10) % 4000 < 1) {
        p->pause_ms = (uint16_t)(5 + (v >> 16) % 46);
        q->pause_until = sx_now_ns() + (uint64_t)p->pause_ms * 1000000u;
        tt_log_fault(d, SX_TT_F_PAUSE, &q->rng, "%u ms", p->pause_ms);
    }
    if (tt_fault_on(d, SX_TT_F_BURST) && (u >> 20) % 1000 < 2) {
        p->burst = (uint8_t)(1 + (v >> 24) % 4);
        q->burst_owed += p->burst;
        tt_log_fault(d, SX_TT_F_BURST, &q->rng, "%u extra notifications", p->burst);
    }
    if (!rx && tt_fault_on(d, SX_TT_F_ERROR) && (u >> 30) % 1000 < 10) {
        p->error = true;
        tt_log_fault(d, SX_TT_F_ERROR, &q->rng, "(%s)", what);
    }
}

void sx_tt_q_rsp(struct sx_tt_q *q, uint64_t id)
{
    if (!q)
        return;
    unsigned at;
    if (check_on(q) && ids_find(q, id, &at))
        ids_del(q, at);
    for (unsigned i = 0; i < q->nheld; i++)
        if (q->held[i].after)
            q->held[i].after--;
}

void sx_tt_q_prod(struct sx_tt_q *q, RING_IDX prod, RING_IDX cons)
{
    if (!q || !q->d->t->o.check)
        return;
    if (q->have_prod && (int32_t)(prod - q->last_prod) < 0) {
        struct sx_tt_where w = { .queue = q->queue, .ring = q->ring, .has_pos = true,
                                 .pos = prod };
        sx_tt_found(q->d, SX_TT_K_PROD_BACK, &w, NULL,
                    "req_prod went back from %u to %u (req_cons %u)", (unsigned)q->last_prod,
                    (unsigned)prod, (unsigned)cons);
    }
    q->last_prod = prod;
    q->have_prod = true;
}

void sx_tt_q_overflow(struct sx_tt_q *q, const struct sx_back_ring *r)
{
    if (!q || !q->d->t->o.check || !r->sring)
        return;
    RING_IDX prod = SX_READ_ONCE(r->sring->req_prod);
    struct sx_tt_where w = { .queue = q->queue, .ring = q->ring, .has_pos = true, .pos = prod };
    sx_tt_found(q->d, SX_TT_K_PROD_OVERFLOW, &w, NULL,
                "req_prod %u is %d requests from the responses produced (rsp_prod_pvt %u, "
                "req_cons %u) on a ring of %u entries: the ring is halted", (unsigned)prod,
                (int32_t)(prod - r->rsp_prod_pvt), (unsigned)r->rsp_prod_pvt,
                (unsigned)r->req_cons, r->nr_ents);
}

/* ------------------------------------------------------------------ held responses */

bool sx_tt_q_hold(struct sx_tt_q *q, const struct sx_tt_act *act, const struct sx_tt_held *h)
{
    if (!q || !q->held || (!act->delay_ms && !act->reorder) || q->nheld >= q->nr_ents)
        return false;
    uint64_t now = sx_now_ns();
    struct tt_hold *x = &q->held[q->nheld++];
    x->h = *h;
    x->after = act->reorder;
    x->by_count = !act->delay_ms;
    x->due_ns = now + (uint64_t)(act->delay_ms ? act->delay_ms : TT_REORDER_MAX_MS) * 1000000u;
    return true;
}

unsigned sx_tt_q_release(struct sx_tt_q *q, bool all, struct sx_tt_held *out, unsigned max)
{
    if (!q || !q->nheld)
        return 0;
    uint64_t now = sx_now_ns();
    unsigned n = 0, keep = 0;
    for (unsigned i = 0; i < q->nheld; i++) {
        struct tt_hold *x = &q->held[i];
        /* due: its delay passed, or (reorder) its later responses went out, or the reorder
         * hold's cap passed */
        bool due = all || now >= x->due_ns || (x->by_count && x->after == 0);
        if (due && n < max)
            out[n++] = x->h;
        else
            q->held[keep++] = *x;
    }
    q->nheld = keep;
    return n;
}

/* ------------------------------------------------------------------ pauses and bursts */

uint64_t sx_tt_q_paused(struct sx_tt_q *q)
{
    if (!q || (!q->pause_until && !q->suspect))
        return 0;
    uint64_t now = sx_now_ns();
    if (q->pause_until && now >= q->pause_until)
        q->pause_until = 0;
    uint64_t until = q->pause_until;
    if (q->suspect && now < q->suspect_until && q->suspect_until > until)
        until = q->suspect_until;
    return until;
}

unsigned sx_tt_q_burst(struct sx_tt_q *q)
{
    if (!q || !q->burst_owed)
        return 0;
    unsigned n = q->burst_owed < 4 ? q->burst_owed : 4;
    q->burst_owed = 0;
    return n;
}

/* ------------------------------------------------------------------ sleeping */

static int cap_ms(int timeout, uint64_t until, uint64_t now)
{
    int ms = until > now ? (int)((until - now + 999999u) / 1000000u) : 0;
    return timeout < 0 || ms < timeout ? ms : timeout;
}

int sx_tt_q_poll_ms(struct sx_tt_q *q, int timeout_ms, bool armed)
{
    if (!q)
        return timeout_ms;
    uint64_t now = sx_now_ns();
    for (unsigned i = 0; i < q->nheld; i++)
        timeout_ms = cap_ms(timeout_ms, q->held[i].due_ns, now);
    if (q->pause_until)
        timeout_ms = cap_ms(timeout_ms, q->pause_until, now);
    if (q->suspect)
        timeout_ms = cap_ms(timeout_ms, q->suspect_until, now);
    else if (armed && q->d->t->o.check)
        timeout_ms = cap_ms(timeout_ms, now + (uint64_t)q->d->t->o.notify_ms * 1000000u, now);
    return timeout_ms;
}

void sx_tt_q_woke(struct sx_tt_q *q, int rc, bool evt, unsigned held,
                  const struct sx_back_ring *r)
{
    if (!q || !q->d->t->o.check)
        return;
    uint64_t now = sx_now_ns();
    if (q->suspect) {
        if (evt) {
            q->suspect = false;   /* the notification came, late */
            return;
        }
        if (now < q->suspect_until)
            return;
        q->suspect = false;
        if (held)
            return;   /* a masked port: the event may be pending behind it */
        struct sx_tt_where w = { .queue = q->queue, .ring = q->ring, .has_pos = true,
                                 .pos = q->suspect_cons };
        sx_tt_found(q->d, SX_TT_K_NOTIFY, &w, NULL,
                    "requests up to req_prod %u published after the backend set req_event %u "
                    "(req_cons %u), and no notification came within %u ms: the push from %u "
                    "to %u had to notify; the backend went on without it",
                    (unsigned)q->suspect_prod, (unsigned)q->suspect_event,
                    (unsigned)q->suspect_cons, 2 * q->d->t->o.notify_ms,
                    (unsigned)q->suspect_cons, (unsigned)q->suspect_prod);
        return;
    }
    if (evt || rc != 0 || !r || !r->sring || held)
        return;
    RING_IDX prod = SX_READ_ONCE(r->sring->req_prod), cons = r->req_cons;
    if (prod == cons || (RING_IDX)(prod - cons) > r->nr_ents)
        return;
    /* Published while we slept with req_event armed, and no event: give the notification one
     * more period before calling it missing (it may be on its way). */
    q->suspect = true;
    q->suspect_prod = prod;
    q->suspect_cons = cons;
    q->suspect_event = SX_READ_ONCE(r->sring->req_event);
    q->suspect_until = now + (uint64_t)q->d->t->o.notify_ms * 1000000u;
}
