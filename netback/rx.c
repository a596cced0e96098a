/*
 * netback rx data path (world -> guest).
 *
 * Frames are read from the world side's queue (netdev/: vnet header + frame, one burst) into
 * NB_RX_BATCH preallocated buffers, converted once (flags, GSO extra, software checksum when
 * the frontend cannot take a partial one), and grant-copied into the frontend's posted rx
 * buffers packed as Linux does: slot 0 = first page of data (+ NETRXF_extra_info), then the
 * GSO extra, then the remaining pages, NETRXF_more_data on every data slot but the last. One
 * sx_gnt_copy and one push per batch.
 *
 * Backlog: at most NB_RX_BATCH frames are held. When the frontend has not posted enough
 * buffers for the next frame, the world side is not read any more (rx_need_slots) until it
 * does: the world's own queue (a TAP's txqueuelen) then drops and counts, our memory never
 * grows. A batch is built (frames staged as copy segments and responses) and then submitted
 * (one grant copy, one push), as Linux's xenvif_rx_skb and xenvif_rx_copy_flush.
 *
 * Steering (steer.c): with a hash algorithm set on a multi-queue vif, frames read here that
 * the frontend's mapping gives to another queue are handed to its inbox (at most
 * NB_STEER_SLOTS more frames held per queue, drops counted), and frames other queues handed to
 * this one are taken from its inbox. Without an algorithm the path is the plain one plus one
 * relaxed load of the inbox count and one of the algorithm flag per call.
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <string.h>

#include "netback/common.h"

/* Slots a frame takes: data slots of (page - headroom) bytes, plus its extras. */
static unsigned rx_nslots(const struct nb_rxframe *f, unsigned hr)
{
    unsigned per = SX_NET_PAGE_SIZE - hr;
    unsigned data = f->len ? nb_rx_ndata(f->len, per, f->first_len) : 1;
    return data + f->meta.has_gso + f->has_hash;
}

static void stat_add(struct nb_queue *q, enum nb_stat i, uint64_t n)
{
    if (n)
        sx_stats_add(&q->vif->stats, i, n);
}

/* Make sure at least `need` rx requests are held; returns how many are. */
static unsigned rx_reqs(struct nb_queue *q, unsigned need)
{
    unsigned have = q->rxq_tail - q->rxq_head;
    if (have >= need || q->rx.halted)
        return have;
    if (q->rxq_head) {
        memmove(q->rxq, q->rxq + q->rxq_head, have * sizeof(*q->rxq));
        q->rxq_head = 0;
        q->rxq_tail = have;
    }
    int n = sx_back_ring_take(&q->rx, q->rxq + q->rxq_tail, NB_RXQ - q->rxq_tail);
    if (n < 0) {
        if (q->tt_rx)
            nb_tt_rx_taken(q, n);
        if (!q->halted)
            sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u q%u: rx producer index overflow: halted",
                               q->vif->fe_domid, q->vif->devid, q->id);
        q->halted = true;
        stat_add(q, NBS_RX_FATAL, 1);
        return have;
    }
    q->rxq_tail += (unsigned)n;
    if (q->tt_rx)
        nb_tt_rx_taken(q, n);
    return q->rxq_tail - q->rxq_head;
}

/* Read frames from the world side (one burst) until the batch is full or nothing is waiting.
 * A frame too short for a header and an Ethernet header is dropped; its buffer is reused. */
static unsigned rx_fill(struct nb_queue *q)
{
    unsigned first = q->rxf_pending, room = NB_RX_BATCH - first;
    if (!room)
        return 0;
    struct sx_netdev_buf b[NB_RX_BATCH];
    for (unsigned i = 0; i < room; i++)
        b[i] = (struct sx_netdev_buf){ q->rxf[first + i].buf, 0 };
    int n = sx_netdev_rx_burst(q->vif->nd, q->id, b, room, NB_RX_FRAME_MAX);
    if (n < 0) {
        stat_add(q, NBS_RX_ERRORS, 1);
        return 0;
    }
    unsigned got = 0;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        if (b[i].len < SX_NETDEV_HDR_LEN + SX_NET_ETH_HLEN) {
            stat_add(q, NBS_RX_DROPS, 1);
            stat_add(q, NBS_RX_DROP_CONV, 1);
            continue;
        }
        struct nb_rxframe *f = &q->rxf[first + got];
        if (i != got) {   /* close the gap a runt left: swap buffers, copy nothing */
            uint8_t *t = f->buf;
            f->buf = q->rxf[first + i].buf;
            q->rxf[first + i].buf = t;
        }
        f->len = b[i].len - SX_NETDEV_HDR_LEN;
        f->ready = false;
        f->hashed = false;
        got++;
    }
    q->rxf_pending += got;
    return got;
}

/* What one rx batch stages (build) and then copies and answers (submit). */
struct nb_rxbatch {
    unsigned nframes;                    /* frames looked at, from the front of rxf */
    unsigned nsegs, nrsp, dropped;
    unsigned hr;                         /* xdp headroom of every data slot */
    uint16_t seg0[NB_RX_BATCH], fsegs[NB_RX_BATCH], rsp0[NB_RX_BATCH];
    bool deliver[NB_RX_BATCH];
};

/* Stage frame f for the frontend: its rx requests, one copy segment a data slot, the responses
 * (data slots, then the GSO and hash extras). */
static void rx_build_frame(struct nb_queue *q, struct nb_rxframe *f, struct nb_rxbatch *rb,
                           unsigned ndata, unsigned slots)
{
    const unsigned hr = rb->hr, per = SX_NET_PAGE_SIZE - hr;
    const unsigned nextra = f->meta.has_gso + f->has_hash;
    uint8_t *frame = f->buf + SX_NETDEV_HDR_LEN;
    for (unsigned s = 0, k = 0; s < slots; s++) {
        netif_rx_request_t req = q->rxq[q->rxq_head++];
        netif_rx_response_t *r = &q->rxrsp[rb->nrsp++];
        if (q->tt_rx)
            sx_tt_q_rsp(q->tt_rx, req.id);
        if (s >= 1 && s <= nextra) {
            /* extras: GSO first (when there), then the hash; MORE on all but the last */
            netif_extra_info_t ex;
            if (s == 1 && f->meta.has_gso) {
                ex = f->meta.gso;
            } else {
                memset(&ex, 0, sizeof(ex));
                ex.type = XEN_NETIF_EXTRA_TYPE_HASH;
                ex.u.hash.type = f->htype;
                ex.u.hash.algorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
                memcpy(ex.u.hash.value, &f->hash, sizeof(f->hash));
            }
            ex.flags = s < nextra ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
            memset(r, 0, sizeof(*r));
            memcpy(r, &ex, sizeof(ex) < sizeof(*r) ? sizeof(ex) : sizeof(*r));
            continue;
        }
        /* torture may fill the first data slot only partly (first_len) */
        uint32_t first = f->first_len ? f->first_len : per, room = k ? per : first;
        uint32_t off = k ? first + (k - 1) * per : 0;
        uint32_t len = f->len - off < room ? f->len - off : room;
        xengnttab_grant_copy_segment_t *g = &q->rxsegs[rb->nsegs++];
        g->source.virt = frame + off;
        g->dest.foreign.ref = req.gref;
        g->dest.foreign.offset = (uint16_t)hr;
        g->dest.foreign.domid = (uint16_t)q->vif->fe_domid;
        g->len = (uint16_t)len;
        g->flags = GNTCOPY_dest_gref;
        g->status = GNTST_okay;
        r->id = req.id;
        r->offset = (uint16_t)hr;
        r->flags = (uint16_t)((k == 0 ? f->meta.rx_flags | (nextra ? NETRXF_extra_info : 0) : 0) |
                              (k + 1 < ndata ? NETRXF_more_data : 0));
        r->status = (int16_t)len;
        k++;
    }
}

/*
 * Build (Linux's xenvif_rx_skb): for each pending frame, from the front, apply the multicast
 * filter, convert its vnet header once (flags, GSO extra, software checksum) and hash it,
 * then stage it if the frontend has posted buffers enough. Stops at a frame that waits for
 * buffers (rx_need_slots) or when staging is full.
 */
static void rx_build(struct nb_queue *q, const struct nb_hash_cfg *hc, struct nb_rxbatch *rb)
{
    struct nb_vif *v = q->vif;
    const unsigned per = SX_NET_PAGE_SIZE - rb->hr;
    for (; rb->nframes < q->rxf_pending; rb->nframes++) {
        struct nb_rxframe *f = &q->rxf[rb->nframes];
        uint8_t *frame = f->buf + SX_NETDEV_HDR_LEN;
        rb->deliver[rb->nframes] = false;
        if (!nb_mcast_pass(&v->mcast, frame)) {
            stat_add(q, NBS_RX_DROP_MCAST, 1);
            rb->dropped++;
            continue;
        }
        if (!f->ready) {
            const struct virtio_net_hdr_v1 *vh = (const struct virtio_net_hdr_v1 *)f->buf;
            if (sx_net_vnet_to_netif(vh, frame, f->len, &v->rx_caps, &f->meta) < 0) {
                stat_add(q, NBS_RX_DROP_CONV, 1);
                rb->dropped++;
                continue;
            }
            if (!f->hashed)   /* a steering reader's hash is the one that chose the queue */
                f->has_hash = nb_hash_frame(hc, frame, f->len, &f->hash, &f->htype);
            f->hashed = true;
            f->ready = true;
            f->first_len = q->tt_rx ? nb_tt_rx_first(q, f, per) : 0;
        }
        if (f->len > per && !v->sg) {
            stat_add(q, NBS_RX_DROP_NOSG, 1);
            rb->dropped++;
            continue;
        }
        unsigned ndata = nb_rx_ndata(f->len, per, f->first_len);
        unsigned slots = rx_nslots(f, rb->hr);
        if (rb->nsegs + ndata > NB_RX_SEGS || rb->nrsp + slots > NB_RX_SEGS + NB_RX_BATCH)
            break;   /* staging full (small slots with a big headroom): next batch */
        if (rx_reqs(q, slots) < slots) {
            q->rx_need_slots = true;   /* wait for the frontend to post buffers */
            stat_add(q, NBS_RX_STALLS, 1);
            break;
        }
        rb->deliver[rb->nframes] = true;
        rb->seg0[rb->nframes] = (uint16_t)rb->nsegs;
        rb->fsegs[rb->nframes] = (uint16_t)ndata;
        rb->rsp0[rb->nframes] = (uint16_t)rb->nrsp;
        rx_build_frame(q, f, rb, ndata, slots);
    }
}

/*
 * Submit (Linux's xenvif_rx_copy_flush): one grant copy for the whole batch, every data slot
 * of a frame whose copy failed answered with an error, all responses put and pushed once.
 * -EPROTO when the rx ring cannot take them (the queue halts).
 */
static int rx_submit(struct nb_queue *q, struct nb_rxbatch *rb)
{
    struct nb_vif *v = q->vif;
    unsigned delivered = 0;
    int crc = sx_gnt_copy(v->nb->gnt, rb->nsegs, q->rxsegs);
    uint64_t bytes = 0, gso = 0, hashed = 0;
    for (unsigned i = 0; i < rb->nframes; i++) {
        if (!rb->deliver[i])
            continue;
        const struct nb_rxframe *f = &q->rxf[i];
        bool ok = crc == 0;
        for (unsigned s = 0; ok && s < rb->fsegs[i]; s++)
            ok = q->rxsegs[rb->seg0[i] + s].status == GNTST_okay;
        if (!ok) {
            /* Every data slot of this frame reports the error (the extra keeps its layout: it
             * carries no status). */
            unsigned slots = rx_nslots(f, rb->hr), nx = f->meta.has_gso + f->has_hash;
            for (unsigned s = 0; s < slots; s++)
                if (!(s >= 1 && s <= nx))
                    q->rxrsp[rb->rsp0[i] + s].status = NETIF_RSP_ERROR;
            stat_add(q, NBS_RX_DROP_GRANT, 1);
            if (q->tt_rx)
                nb_tt_grant_bad(q->tt_rx, q->rxrsp[rb->rsp0[i]].id, crc);
            rb->dropped++;
            sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u: rx grant copy failed", v->fe_domid,
                               v->devid);
            continue;
        }
        delivered++;
        bytes += f->len;
        gso += f->meta.has_gso;
        hashed += f->has_hash;
    }
    for (unsigned i = 0; i < rb->nrsp; i++)
        if (sx_back_ring_put_rsp(&q->rx, &q->rxrsp[i]) < 0) {
            q->halted = true;
            stat_add(q, NBS_RX_FATAL, 1);
            return -EPROTO;
        }
    if (sx_back_ring_push(&q->rx) == 1) {
        sx_evtchn_notify(q->ev, q->rx_port);
        stat_add(q, NBS_RX_NOTIFIES, 1);
    }
    if (q->tt_rx)
        nb_tt_burst(q, q->tt_rx, q->rx_port);
    stat_add(q, NBS_RX_PKTS, delivered);
    stat_add(q, NBS_RX_BYTES, bytes);
    stat_add(q, NBS_RX_GSO, gso);
    stat_add(q, NBS_RX_HASH, hashed);
    stat_add(q, NBS_RX_BATCHES, 1);
    return 0;
}

int nb_rx_action(struct nb_queue *q)
{
    struct nb_vif *v = q->vif;
    if (q->halted)
        return -EPROTO;
    unsigned nread = 0;
    struct nb_hash_cfg hc;
    bool have_hc = false;
    if (q->steer)
        nread += nb_steer_pull(q);   /* frames other queues steered here (hashed already) */
    if (!q->rx_need_slots) {
        unsigned first = q->rxf_pending;
        nread += rx_fill(q);
        if (q->steer && q->rxf_pending > first &&
            atomic_load_explicit(&v->hash.active, memory_order_relaxed)) {
            struct nb_hash_snap hs;
            nb_hash_snapshot(&v->hash, &hs);
            if (hs.cfg.alg != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
                nb_steer_route(q, first, &hs);
            hc = hs.cfg;
            have_hc = true;
        }
    }
    if (!q->rxf_pending)
        return (int)nread;   /* 0, or every frame read went to another queue */

    q->rx_need_slots = false;
    /* Per batch: the xdp headroom (every data slot starts there, as Linux's rx data slots
     * do) and the hash configuration the ctrl ring set. */
    struct nb_rxbatch rb = { .hr = atomic_load(&v->xdp_headroom) };
    if (!have_hc) {
        pthread_mutex_lock(&v->hash.lock);
        hc = v->hash.cfg;
        pthread_mutex_unlock(&v->hash.lock);
    }
    rx_build(q, &hc, &rb);
    if (rb.nrsp && rx_submit(q, &rb) < 0)
        return -EPROTO;
    stat_add(q, NBS_RX_DROPS, rb.dropped);

    /* Keep the undelivered frames (from the one that waits for buffers on) at the front,
     * rotating buffer pointers: nothing is copied, nothing allocated. */
    unsigned nframes = rb.nframes;
    if (nframes) {
        struct nb_rxframe tmp[NB_RX_BATCH];
        unsigned left = q->rxf_pending - nframes;
        memcpy(tmp, q->rxf, nframes * sizeof(*tmp));
        memmove(q->rxf, q->rxf + nframes, left * sizeof(*q->rxf));
        memcpy(q->rxf + left, tmp, nframes * sizeof(*tmp));
        q->rxf_pending = left;
    }
    return (int)(nframes + nread);
}
