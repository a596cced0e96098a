/*
 * blkback ring loop: one thread per queue (Linux xen_blkif_schedule / do_block_io_op).
 *
 * Per step: take a batch of requests off the ring (each slot copied once, sx_back_ring_take),
 * decode and validate the copies (request.c), map the grants (the persistent-grant cache, or
 * one map per segment), queue the I/O on the engine, submit the batch in one call, reap
 * whatever completed, unmap, write the responses and push them with at most one notification.
 * When there is nothing to do the thread goes idle through sx_idle (ring/): it spins up to the
 * spin budget on the ring (only after a step that found work), then ends the delivered events
 * (late EOI: notifications that bring no work keep the port masked for a growing, capped time,
 * XSA-332), arms the ring (final check) and sleeps in poll() on the event channel fd, the
 * engine's completion fd and its stop fd.
 *
 * Ordering: FLUSH_DISKCACHE and WRITE_BARRIER first drain everything in flight on this queue
 * (a flush is not ordered against writes the engine has in flight); if they carry data, the
 * write goes out and completes before the flush is queued; the response is written only when
 * the flush (fdatasync) completed. A ring the frontend overflowed halts (counted); the thread
 * then only finishes its in-flight I/O and waits to be stopped.
 */
#define SX_LOG_MODULE "blkback"
#include "blkback/common.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "clock.h"
#include "grant/grant.h"
#include "log.h"

const char *const bb_stat_names[BB_ST_NR + 1] = {
    [BB_ST_REQUESTS] = "requests",
    [BB_ST_READS] = "read_ops",
    [BB_ST_WRITES] = "write_ops",
    [BB_ST_FLUSHES] = "flush_ops",
    [BB_ST_DISCARDS] = "discard_ops",
    [BB_ST_SECT_READ] = "sectors_read",
    [BB_ST_SECT_WRITTEN] = "sectors_written",
    [BB_ST_ERRORS] = "errors",
    [BB_ST_INFLIGHT] = "in_flight",
    [BB_ST_HALTED] = "halted",
    [BB_ST_INDIRECT] = "indirect_ops",
    [BB_ST_PGRANT_HITS] = "pgrant_hits",
    [BB_ST_PGRANT_MAPS] = "pgrant_maps",
    [BB_ST_PGRANT_FULL] = "pgrant_full",
    [BB_ST_GRANT_MAPS] = "grant_maps",
    [BB_ST_GRANT_ERRORS] = "grant_errors",
    [BB_ST_NOTIFIES] = "notifies",
    [BB_ST_SLEEPS] = "sleeps",
    [BB_ST_SPIN_WINS] = "spin_wins",
    [BB_ST_BATCHES] = "batches",
    [BB_ST_ENGINE_FULL] = "engine_full",
    /* [BB_ST_SPURIOUS .. BB_ST_EOI_DELAYED_US] */
    [BB_ST_SPURIOUS] = SX_EOI_STAT_NAMES,
    [BB_ST_LAT_BACKEND_NS] = "lat_backend_ns",
    [BB_ST_LAT_BACKEND_N] = "lat_backend_n",
    [BB_ST_LAT_ENGINE_NS] = "lat_engine_ns",
    [BB_ST_LAT_ENGINE_N] = "lat_engine_n",
    [BB_ST_LAT_RESPONSE_NS] = "lat_response_ns",
    [BB_ST_LAT_RESPONSE_N] = "lat_response_n",
    /* [BB_ST_TARGET_DISCONNECTS .. BB_ST_TARGET_FAILED] */
    [BB_ST_TARGET_DISCONNECTS] = SX_BIO_TARGET_STAT_NAMES,
    [BB_ST_NR] = NULL,
};

/* Counters are added up in the queue (no atomic per request and segment) and published in
 * the stats file before responses are pushed and before the thread sleeps, so a counter is
 * never behind a response the frontend can see, nor behind an idle queue. */
_Static_assert(BB_ST_NR <= 64, "one dirty bit per counter");
#define STAT(q, i, n) ((q)->st_acc[(i)] += (uint64_t)(n), (q)->st_dirty |= 1ull << (i))

static void stats_flush(struct bb_queue *q)
{
    for (uint64_t d = q->st_dirty; d; d &= d - 1) {
        unsigned i = (unsigned)__builtin_ctzll(d);
        sx_stats_add(&q->v->stats, i, q->st_acc[i]);
        q->st_acc[i] = 0;
    }
    q->st_dirty = 0;
}

/* ------------------------------------------------------------------ latency samples */

enum { LAT_BACKEND, LAT_ENGINE, LAT_RESPONSE };

/* Sample every BB_LAT_SAMPLE-th read/write: stamp it with the batch's take time (one clock
 * read a batch, only in a batch that holds a sample) and remember it for the submit stamp. */
static void lat_mark(struct bb_queue *q, struct bb_req *rq)
{
    if (++q->lat_ctr < BB_LAT_SAMPLE || q->lat_nunsub == BB_LAT_MAX)
        return;
    q->lat_ctr = 0;
    if (!q->lat_batch_ns)
        q->lat_batch_ns = sx_now_ns();
    rq->t_take = q->lat_batch_ns;
    rq->t_sub = 0;
    q->lat_unsub[q->lat_nunsub++] = rq;
}

/* A sampled request answered before it reached the engine: no sample. */
static void lat_drop(struct bb_queue *q, struct bb_req *rq)
{
    for (unsigned i = 0; i < q->lat_nunsub; i++)
        if (q->lat_unsub[i] == rq) {
            q->lat_unsub[i] = q->lat_unsub[--q->lat_nunsub];
            break;
        }
    rq->t_take = 0;
}

/* Just before the engine's submit: what it runs from here on is the engine's time. */
static void lat_submit(struct bb_queue *q)
{
    if (!q->lat_nunsub)
        return;
    uint64_t now = sx_now_ns();
    for (unsigned i = 0; i < q->lat_nunsub; i++)
        q->lat_unsub[i]->t_sub = now;
    q->lat_nunsub = 0;
}

/* A sampled request completed at *now (read on first use): backend and engine stages. */
static void lat_complete(struct bb_queue *q, struct bb_req *rq, uint64_t *now)
{
    if (!*now)
        *now = sx_now_ns();
    if (rq->t_sub && rq->t_sub >= rq->t_take && *now >= rq->t_sub) {
        q->lat_sum[LAT_BACKEND] += rq->t_sub - rq->t_take;
        q->lat_sum[LAT_ENGINE] += *now - rq->t_sub;
        q->lat_n[LAT_BACKEND]++;
        q->lat_n[LAT_ENGINE]++;
        if (q->lat_nunpushed < BB_LAT_MAX)
            q->lat_unpushed[q->lat_nunpushed++] = *now;
    }
    rq->t_take = 0;
}

/* Responses pushed: the response stage of the sampled ones, then publish the sums. */
static void lat_pushed(struct bb_queue *q)
{
    if (q->lat_nunpushed) {
        uint64_t now = sx_now_ns();
        for (unsigned i = 0; i < q->lat_nunpushed; i++)
            q->lat_sum[LAT_RESPONSE] += now - q->lat_unpushed[i];
        q->lat_n[LAT_RESPONSE] += q->lat_nunpushed;
        q->lat_nunpushed = 0;
    }
    if (!q->lat_n[LAT_BACKEND] && !q->lat_n[LAT_RESPONSE])
        return;
    for (unsigned i = 0; i < 3; i++) {
        if (!q->lat_n[i])
            continue;
        STAT(q, BB_ST_LAT_BACKEND_NS + 2 * i, q->lat_sum[i]);
        STAT(q, BB_ST_LAT_BACKEND_N + 2 * i, q->lat_n[i]);
        q->lat_sum[i] = q->lat_n[i] = 0;
    }
}

/* ------------------------------------------------------------------ contexts */

int bb_queue_alloc(struct bb_queue *q)
{
    struct bb_vbd *v = q->v;
    unsigned n = q->ring.nr_ents;
    unsigned maxsegs = sx_blk_req_max_segs(&v->dev);
    size_t rsz = (sx_blk_req_size(&v->dev) + 15) & ~(size_t)15;
    size_t per = rsz + maxsegs * (sizeof(struct iovec) + sizeof(grant_ref_t) + sizeof(uint32_t));
    /* The decoded copies and their scratch arrays, sized for the largest indirect request in
     * every slot of the ring (4 MiB a queue at order 4 with 256 segments): mapped, not
     * allocated, so only the pages requests actually use are ever backed. From the heap
     * (calloc) they were cleared page by page once glibc's mmap threshold had grown past them
     * (after the first disconnect freed a mapped block): about 4 MiB resident per
     * reconnected queue. The free list is LIFO, so a light load keeps reusing a few contexts. */
    q->req_mem_len = (n * per + 4095) & ~(size_t)4095;
    q->req_mem = mmap(NULL, q->req_mem_len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (q->req_mem == MAP_FAILED)
        q->req_mem = NULL;
    q->reqs = calloc(n, sizeof(*q->reqs));
    q->slots = malloc(BB_MAX_BATCH * sx_blk_req_slot_size(v->abi));
    q->pages = calloc(maxsegs, sizeof(*q->pages));
    if (!q->reqs || !q->req_mem || !q->slots || !q->pages) {
        bb_queue_free(q);
        return -ENOMEM;
    }
    q->nr_reqs = n;
    q->free_reqs = NULL;
    for (unsigned i = n; i-- > 0;) {
        struct bb_req *rq = &q->reqs[i];
        uint8_t *m = (uint8_t *)q->req_mem + i * per;
        rq->r = (struct sx_blk_req *)m;
        rq->iov = (struct iovec *)(m + rsz);
        rq->mrefs = (grant_ref_t *)(m + rsz + maxsegs * sizeof(struct iovec));
        rq->midx = (uint32_t *)(m + rsz + maxsegs * (sizeof(struct iovec) + sizeof(grant_ref_t)));
        rq->next_free = q->free_reqs;
        q->free_reqs = rq;
    }
    q->inflight = 0;
    return 0;
}

void bb_queue_forget(struct bb_queue *q)
{
    q->pages = NULL;
    q->reqs = NULL;
    q->req_mem = NULL;
    q->req_mem_len = 0;
    q->slots = NULL;
    q->free_reqs = NULL;
    q->nr_reqs = 0;
}

void bb_queue_free(struct bb_queue *q)
{
    if (!q)
        return;
    free(q->reqs);
    if (q->req_mem)
        munmap(q->req_mem, q->req_mem_len);
    free(q->slots);
    free(q->pages);
    bb_queue_forget(q);
}

static struct bb_req *req_get(struct bb_queue *q)
{
    struct bb_req *rq = q->free_reqs;
    if (rq) {
        q->free_reqs = rq->next_free;
        rq->map_count = 0;
        rq->map_addr = NULL;
        rq->iovcnt = 0;
        rq->status = BLKIF_RSP_OKAY;
        rq->barrier_flush = false;
        rq->t_take = 0;
        q->inflight++;
    }
    return rq;
}

static void req_put(struct bb_queue *q, struct bb_req *rq)
{
    rq->next_free = q->free_reqs;
    q->free_reqs = rq;
    q->inflight--;
}

/* ------------------------------------------------------------------ responses */

static void respond(struct bb_queue *q, uint64_t id, uint8_t op, int16_t status)
{
    union {
        blkif_response_t n;
        struct sx_blkif_x86_32_response x;
    } rsp;
    sx_blk_rsp_write(q->v->abi, &rsp, id, op, status);
    if (status != BLKIF_RSP_OKAY)
        STAT(q, BB_ST_ERRORS, 1);
    if (sx_back_ring_put_rsp(&q->ring, &rsp) == 0)
        q->rsps_unpushed++;
    if (q->tt)
        sx_tt_q_rsp(q->tt, id);
}

static void push_responses(struct bb_queue *q)
{
    if (!q->rsps_unpushed)
        return;
    q->rsps_unpushed = 0;
    q->answered = true;
    stats_flush(q);
    if (sx_back_ring_push(&q->ring) == 1) {
        sx_evtchn_notify(q->evt, (evtchn_port_t)q->lport);
        STAT(q, BB_ST_NOTIFIES, 1);
    }
    if (q->tt)
        bb_tt_burst(q);
    lat_pushed(q);
}

static void unmap_req(struct bb_queue *q, struct bb_req *rq)
{
    if (rq->map_count)
        sx_gnt_unmap(q->v->d->gnt, rq->map_addr, rq->map_count);
    rq->map_count = 0;
    rq->map_addr = NULL;
}

/* Answer the responses torture held back that are due now (all: every one). */
static unsigned release_held(struct bb_queue *q, bool all)
{
    struct sx_tt_held h[32];
    unsigned total = 0, n;
    while ((n = sx_tt_q_release(q->tt, all, h, 32)) > 0) {
        for (unsigned i = 0; i < n; i++)
            respond(q, h[i].id, h[i].op, h[i].status);
        total += n;
    }
    return total;
}

/* Answer and recycle a request. */
static void finish(struct bb_queue *q, struct bb_req *rq)
{
    if (q->tt)
        bb_tt_grants(q, rq);
    if (rq->t_take)
        lat_drop(q, rq);
    unmap_req(q, rq);
    struct sx_blk_req *r = rq->r;
    if (rq->status == BLKIF_RSP_OKAY && r->nr_sectors) {
        if (r->data_op == BLKIF_OP_READ)
            STAT(q, BB_ST_SECT_READ, r->nr_sectors);
        else
            STAT(q, BB_ST_SECT_WRITTEN, r->nr_sectors);
    }
    /* As Linux blkback (and as Linux blkfront checks): an indirect request is answered with
     * its inner operation, not BLKIF_OP_INDIRECT. */
    uint8_t op = r->op == BLKIF_OP_INDIRECT ? r->data_op : r->op;
    if (!(q->tt && bb_tt_hold(q, rq, op)))
        respond(q, r->id, op, rq->status);
    STAT(q, BB_ST_INFLIGHT, -1);
    req_put(q, rq);
}

/* ------------------------------------------------------------------ completions */

static unsigned reap(struct bb_queue *q)
{
    struct sx_bio_cpl cpl[64];
    unsigned total = 0;
    uint64_t now = 0;
    int n;
    while ((n = sx_bio_reap(q->bio, cpl, 64)) > 0) {
        total += (unsigned)n;
        for (int i = 0; i < n; i++) {
            if (cpl[i].cookie >= q->nr_reqs)
                continue;
            struct bb_req *rq = &q->reqs[cpl[i].cookie];
            struct sx_blk_req *r = rq->r;
            int32_t res = cpl[i].res;
            bool rw = r->op == BLKIF_OP_READ || r->op == BLKIF_OP_WRITE ||
                      r->op == BLKIF_OP_INDIRECT || rq->barrier_flush;
            if (res < 0 ||
                (rw && (uint64_t)res != r->nr_sectors * SX_BLK_SECTOR)) {
                sx_log_ratelimited(SX_LOG_WARN, "dom%u/%u q%u: op %u at sector %llu: %s",
                                   q->v->fe, q->v->devid, q->idx, r->op,
                                   (unsigned long long)r->sector,
                                   res < 0 ? strerror(-res) : "short transfer");
                rq->status = (res == -EOPNOTSUPP) ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
                rq->barrier_flush = false;
            }
            if (rq->t_take)
                lat_complete(q, rq, &now);
            if (rq->barrier_flush) {
                /* The data of a flush/barrier request is written: now make it durable. */
                rq->barrier_flush = false;
                if (sx_bio_flush(q->bio, cpl[i].cookie) == 0)
                    continue;
                rq->status = BLKIF_RSP_ERROR;
            }
            finish(q, rq);
        }
    }
    return total;
}

static void submit(struct bb_queue *q)
{
    lat_submit(q);
    int rc = sx_bio_submit(q->bio);
    if (rc < 0 && rc != -EAGAIN)
        sx_log_ratelimited(SX_LOG_WARN, "dom%u/%u q%u: submit: %s", q->v->fe, q->v->devid,
                           q->idx, strerror(-rc));
}

/* Submit and complete everything queued or in flight on this queue. */
static void drain(struct bb_queue *q)
{
    while (sx_bio_busy(q->bio) > 0) {
        submit(q);
        if (reap(q) == 0)
            sx_bio_wait(q->bio, 100);
    }
}

enum bb_io { BB_IO_READ, BB_IO_WRITE, BB_IO_FLUSH, BB_IO_DISCARD };

/* Hand rq's operation to the engine: 0 or the queue call's -errno. */
static int bio_queue(struct bb_queue *q, struct bb_req *rq, enum bb_io op, uint64_t off,
                     uint64_t len)
{
    uint64_t cookie = (uint64_t)(rq - q->reqs);
    switch (op) {
    case BB_IO_READ:
    case BB_IO_WRITE:
        return sx_bio_rw(q->bio, op == BB_IO_WRITE, rq->iov, rq->iovcnt, off, cookie);
    case BB_IO_FLUSH:
        return sx_bio_flush(q->bio, cookie);
    case BB_IO_DISCARD:
        return sx_bio_discard(q->bio, off, len, cookie);
    }
    return -EINVAL;
}

/* Queue an engine operation for rq. A full engine (-EAGAIN) is backpressure, not a failure:
 * reap what is in flight and queue it again. Anything else, or a second refusal, answers rq
 * with an error. */
static void queue_io(struct bb_queue *q, struct bb_req *rq, enum bb_io op, uint64_t off,
                     uint64_t len)
{
    int rc = bio_queue(q, rq, op, off, len);
    if (rc == -EAGAIN) {
        /* Depth covers every context, so something held the engine full: reap and retry. */
        STAT(q, BB_ST_ENGINE_FULL, 1);
        drain(q);
        rc = bio_queue(q, rq, op, off, len);
    }
    if (rc < 0) {
        rq->status = BLKIF_RSP_ERROR;
        finish(q, rq);
    }
}

/* ------------------------------------------------------------------ requests */

/* Map the indirect pages and decode the segments they hold. */
static enum sx_blk_reason decode_indirect(struct bb_queue *q, struct sx_blk_req *r)
{
    struct bb_vbd *v = q->v;
    unsigned np = r->indirect.nr_pages;
    const void *pages[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    void *maps[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    unsigned nmaps = 0;
    enum sx_blk_reason why = SX_BLK_OK;
    for (unsigned i = 0; i < np; i++) {
        void *p = NULL;
        if (v->persistent) {
            bool hit;
            int err;
            p = bb_pcache_get(&q->pc, r->indirect.grefs[i], ++q->now, &hit, &err);
            if (!p && err != -ENOSPC)
                goto bad;
        }
        if (!p) {
            if (sx_gnt_map(v->d->gnt, v->fe, 1, &r->indirect.grefs[i], false, &p, NULL) < 0)
                goto bad;
            maps[nmaps++] = p;
        }
        pages[i] = p;
    }
    why = sx_blk_req_decode_indirect(&v->dev, r, pages, np);
    goto out;
bad:
    STAT(q, BB_ST_GRANT_ERRORS, 1);
    sx_log_ratelimited(SX_LOG_WARN, "dom%u/%u q%u: cannot map indirect page", v->fe, v->devid,
                       q->idx);
    why = SX_BLK_E_INVALID;
out:
    for (unsigned i = 0; i < nmaps; i++)
        sx_gnt_unmap(v->d->gnt, maps[i], 1);
    return why;
}

/* Map rq's data segments into rq->iov: cached persistent grants from the cache, the rest
 * with one sx_gnt_map call for the whole request (one ioctl on Xen; on sim the pages of one
 * frontend allocation are usually contiguous, so no stitching either).
 * 0, or -EINVAL when a grant cannot be mapped. */
static int map_segments(struct bb_queue *q, struct bb_req *rq)
{
    struct bb_vbd *v = q->v;
    struct sx_blk_req *r = rq->r;
    bool to_guest = r->data_op == BLKIF_OP_READ;
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->nr_segs; i++) {
        const struct sx_blk_seg *s = &r->segs[i];
        uint8_t *page = NULL;
        if (v->persistent) {
            bool hit;
            int err;
            page = bb_pcache_get(&q->pc, s->gref, ++q->now, &hit, &err);
            if (page)
                STAT(q, hit ? BB_ST_PGRANT_HITS : BB_ST_PGRANT_MAPS, 1);
            else if (err == -ENOSPC)
                STAT(q, BB_ST_PGRANT_FULL, 1);
            else
                goto bad;
        }
        if (!page) {
            rq->mrefs[k] = s->gref;
            rq->midx[k++] = i;
        }
        q->pages[i] = page;
    }
    if (k) {
        void *addr;
        if (sx_gnt_map(v->d->gnt, v->fe, k, rq->mrefs, to_guest, &addr, NULL) < 0)
            goto bad;
        STAT(q, BB_ST_GRANT_MAPS, 1);
        rq->map_addr = addr;
        rq->map_count = k;
        for (uint32_t j = 0; j < k; j++)
            q->pages[rq->midx[j]] = (uint8_t *)addr + (size_t)j * SX_BLK_PAGE_SIZE;
    }
    int iovcnt = 0;
    for (uint32_t i = 0; i < r->nr_segs; i++) {
        const struct sx_blk_seg *s = &r->segs[i];
        uint8_t *base = q->pages[i] + sx_blk_seg_offset(&v->dev, s);
        size_t len = sx_blk_seg_bytes(&v->dev, s);
        /* Merge with the previous iovec when it ends where this one starts. */
        if (iovcnt > 0 &&
            (uint8_t *)rq->iov[iovcnt - 1].iov_base + rq->iov[iovcnt - 1].iov_len == base)
            rq->iov[iovcnt - 1].iov_len += len;
        else
            rq->iov[iovcnt++] = (struct iovec){ base, len };
    }
    rq->iovcnt = iovcnt;
    return 0;
bad:
    STAT(q, BB_ST_GRANT_ERRORS, 1);
    if (q->tt)
        bb_tt_grant_bad(q, r);
    sx_log_ratelimited(SX_LOG_WARN, "dom%u/%u q%u: request %llu: cannot map a grant",
                       v->fe, v->devid, q->idx, (unsigned long long)r->id);
    return -EINVAL;
}

static void handle_one(struct bb_queue *q, const void *slot, RING_IDX pos)
{
    struct bb_vbd *v = q->v;
    struct bb_req *rq = req_get(q);
    if (!rq)
        return;   /* cannot happen: take is bounded by free contexts */
    STAT(q, BB_ST_INFLIGHT, 1);
    STAT(q, BB_ST_REQUESTS, 1);
    struct sx_blk_req *r = rq->r;
    enum sx_blk_reason why = sx_blk_req_decode(&v->dev, v->abi, slot, r);
    if (why == SX_BLK_OK && r->op == BLKIF_OP_INDIRECT) {
        STAT(q, BB_ST_INDIRECT, 1);
        why = decode_indirect(q, r);
    }
    if (q->tt) {
        bb_tt_request(q, rq, pos, why);
        if (rq->tt.status) {   /* torture: answered, not done */
            rq->status = rq->tt.status;
            r->nr_sectors = 0;
            finish(q, rq);
            return;
        }
    }
    if (why != SX_BLK_OK) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u/%u q%u: request %llu op %u refused: %s", v->fe,
                           v->devid, q->idx, (unsigned long long)r->id, r->op,
                           sx_blk_reason_name(why));
        r->nr_sectors = 0;
        rq->status = sx_blk_reason_status(why);
        finish(q, rq);
        return;
    }
    uint64_t off = sx_blk_req_byte_offset(&v->dev, r);
    switch (r->op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_INDIRECT:
        STAT(q, r->data_op == BLKIF_OP_READ ? BB_ST_READS : BB_ST_WRITES, 1);
        if (map_segments(q, rq) < 0) {
            rq->status = BLKIF_RSP_ERROR;
            r->nr_sectors = 0;
            finish(q, rq);
            return;
        }
        lat_mark(q, rq);
        queue_io(q, rq, r->data_op == BLKIF_OP_WRITE ? BB_IO_WRITE : BB_IO_READ, off, 0);
        return;
    case BLKIF_OP_FLUSH_DISKCACHE:
    case BLKIF_OP_WRITE_BARRIER:
        STAT(q, BB_ST_FLUSHES, 1);
        /* Everything before it completes first: the flush covers completed writes only. */
        drain(q);
        if (r->nr_segs > 0) {
            r->data_op = BLKIF_OP_WRITE;
            if (map_segments(q, rq) < 0) {
                rq->status = BLKIF_RSP_ERROR;
                r->nr_sectors = 0;
                finish(q, rq);
                return;
            }
            rq->barrier_flush = true;
            queue_io(q, rq, BB_IO_WRITE, off, 0);
        } else {
            r->nr_sectors = 0;
            queue_io(q, rq, BB_IO_FLUSH, 0, 0);
        }
        return;
    case BLKIF_OP_DISCARD:
        STAT(q, BB_ST_DISCARDS, 1);
        if (r->discard.nr_sectors == 0) {
            finish(q, rq);
            return;
        }
        r->nr_sectors = 0;
        queue_io(q, rq, BB_IO_DISCARD, off, r->discard.nr_sectors * SX_BLK_SECTOR);
        return;
    default:
        rq->status = BLKIF_RSP_EOPNOTSUPP;
        r->nr_sectors = 0;
        finish(q, rq);
        return;
    }
}

/* Take and start one batch. Returns the number of requests taken. */
static unsigned take_batch(struct bb_queue *q)
{
    if (q->halted || !q->free_reqs || (q->tt && sx_tt_q_paused(q->tt)))
        return 0;
    unsigned room = q->nr_reqs - q->inflight;
    if (room > BB_MAX_BATCH)
        room = BB_MAX_BATCH;
    int n = sx_back_ring_take(&q->ring, q->slots, room);
    if (q->tt)
        bb_tt_taken(q, n);
    if (n < 0) {
        q->halted = true;
        STAT(q, BB_ST_HALTED, 1);
        sx_warn("dom%u/%u queue %u: frontend overflowed the ring (req_prod past the ring): "
                "ring halted", q->v->fe, q->v->devid, q->idx);
        return 0;
    }
    size_t ss = sx_blk_req_slot_size(q->v->abi);
    RING_IDX pos = q->ring.req_cons - (RING_IDX)n;
    q->lat_batch_ns = 0;
    for (int i = 0; i < n; i++)
        handle_one(q, q->slots + (size_t)i * ss, pos + (RING_IDX)i);
    if (n > 0)
        STAT(q, BB_ST_BATCHES, 1);
    return (unsigned)n;
}

static bool has_work(struct bb_queue *q)
{
    return !q->halted && q->free_reqs && sx_back_ring_has_requests(&q->ring) &&
           !(q->tt && sx_tt_q_paused(q->tt));
}

/* Spin predicate: new requests, a completion to reap, or the control plane asks us to stop. */
static bool spin_pred(void *arg)
{
    struct bb_queue *q = arg;
    return has_work(q) || (q->inflight && sx_bio_ready(q->bio)) ||
           atomic_load_explicit(&q->stop, memory_order_relaxed);
}

static void *queue_thread(void *arg)
{
    struct bb_queue *q = arg;
    /* Adaptive spin budget (as the haltpoll cpuidle governor): at most --spin-us, doubled
     * after a sleep shorter than that (spinning longer would have caught the work), halved
     * after a longer one (a slow disk or an idle frontend: spinning only burns a CPU the I/O
     * completion path and the frontend need). A wake that brought no work buys no spin, and
     * repeated ones keep the event channel masked for a while (late EOI, XSA-332). */
    const struct sx_idle_opts io = { .spin_ns = q->v->d->o.spin_ns, .adaptive = true,
                                     .yield = q->v->d->o.spin_yield, .clock_rounds = 16 };
    struct sx_idle idle;
    sx_idle_init(&idle, q->evt, &io, &q->v->stats, BB_ST_SPURIOUS);
    int efd = sx_evtchn_fd(q->evt), bfd = sx_bio_event_fd(q->bio);
    /* acquire: pairs with bb_queue_stop's release store (nothing else is published with it;
     * the join orders the rest). */
    while (!atomic_load_explicit(&q->stop, memory_order_acquire)) {
        unsigned did = take_batch(q);
        if (q->tt)
            did += release_held(q, false);
        if (sx_bio_busy(q->bio) > 0)
            submit(q);
        did += reap(q);
        if (did)
            q->answered = false;
        push_responses(q);
        sx_idle_did(&idle, did > 0);
        if (did)
            continue;
        /* Adaptive polling: new requests within the budget avoid a sleep. With nothing in
         * flight, spin for the frontend. With I/O in flight on an asynchronous engine the
         * wait is a device's (tens of us and more), and a thread spinning through it takes the
         * CPU the completion path and the frontend need (measured: disk 4k QD1 p50 130 us
         * spinning, 73 us not): spin only for the turnaround after answering, when the
         * frontend's next requests usually follow within microseconds, and would otherwise
         * cost a notification and a wakeup each. */
        const struct bb_opts *o = &q->v->d->o;
        bool answered = q->answered, won;
        q->answered = false;
        if (q->inflight == 0 || o->spin_inflight)
            won = sx_idle_spin(&idle, spin_pred, q);
        else if (answered && o->turnaround_ns)
            /* A budget of its own: the adaptive one shrinks through every device wait. */
            won = o->spin_yield ? sx_idle_spin_budget_yield(spin_pred, q, o->turnaround_ns)
                                : sx_idle_spin_budget(spin_pred, q, o->turnaround_ns);
        else
            won = false;
        if (won) {
            STAT(q, BB_ST_SPIN_WINS, 1);
            continue;
        }
        /* Arm: end the delivered events (late EOI), ack the engine, then the final checks. */
        sx_idle_arm(&idle);
        sx_bio_event_ack(q->bio);
        if (reap(q) > 0) {
            sx_idle_did(&idle, true);
            push_responses(q);
            continue;
        }
        int fc = q->halted || !q->free_reqs || (q->tt && sx_tt_q_paused(q->tt))
                     ? -1 : sx_back_ring_final_check(&q->ring);
        if (fc == 1)
            continue;
        STAT(q, BB_ST_SLEEPS, 1);
        stats_flush(q);
        struct pollfd pfd[3] = {
            { .fd = efd, .events = POLLIN },
            { .fd = bfd, .events = POLLIN },
            { .fd = q->stop_fd, .events = POLLIN },
        };
        /* (poll skips a negative fd: the stop fd is always watched.) */
        unsigned held = idle.eoi.nheld;
        int rc = sx_idle_poll(&idle, pfd, 3, q->tt ? sx_tt_q_poll_ms(q->tt, -1, fc == 0) : -1);
        if (q->tt)
            sx_tt_q_woke(q->tt, rc, rc > 0 && (pfd[0].revents & POLLIN), held,
                         fc == 0 ? &q->ring : NULL);
        if (rc < 0 && rc != -EINTR) {
            sx_err("dom%u/%u q%u: poll: %s", q->v->fe, q->v->devid, q->idx, strerror(-rc));
            break;
        }
    }
    sx_idle_fini(&idle);
    /* Stop: finish what is in flight, answer it, leave the ring as the frontend sees it. */
    drain(q);
    if (q->tt)
        release_held(q, true);
    push_responses(q);
    stats_flush(q);
    return NULL;
}

int bb_queue_start(struct bb_queue *q)
{
    atomic_store(&q->stop, false);
    q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->stop_fd < 0)
        return -errno;
    int rc = pthread_create(&q->thread, NULL, queue_thread, q);
    if (rc) {
        close(q->stop_fd);
        q->stop_fd = -1;
        return -rc;
    }
    q->thread_started = true;
    char name[16];   /* for top -H, perf and tests: bb<fe>.<devid>-q<n> */
    snprintf(name, sizeof(name), "bb%u.%u-q%u", q->v->fe, q->v->devid, q->idx);
    pthread_setname_np(q->thread, name);
    return 0;
}

void bb_queue_stop(struct bb_queue *q)
{
    if (!q || !q->thread_started)
        return;
    atomic_store_explicit(&q->stop, true, memory_order_release);
    uint64_t one = 1;
    if (write(q->stop_fd, &one, sizeof(one)) < 0)
        sx_warn("dom%u/%u q%u: stop eventfd write: %s", q->v->fe, q->v->devid, q->idx,
                strerror(errno));
    pthread_join(q->thread, NULL);
    q->thread_started = false;
    close(q->stop_fd);
    q->stop_fd = -1;
}
