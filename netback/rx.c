/*
 * netback rx data path (world -> guest).
 *
 * Frames are read from the TAP queue (vnet header + frame) into NB_RX_BATCH preallocated
 * buffers, converted once (flags, GSO extra, software checksum when the frontend cannot take a
 * partial one), and grant-copied into the frontend's posted rx buffers packed as Linux does:
 * slot 0 = first page of data (+ NETRXF_extra_info), then the GSO extra, then the remaining
 * pages, NETRXF_more_data on every data slot but the last. One sx_gnt_copy and one push per
 * batch.
 *
 * Backlog: at most NB_RX_BATCH frames are held. When the frontend has not posted enough
 * buffers for the next frame, the TAP is not read any more (rx_need_slots) until it does: the
 * kernel's TAP queue (txqueuelen) then drops and counts, our memory never grows.
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
#include <unistd.h>

#include "netback/common.h"

/* Slots a frame takes: data slots of (page - headroom) bytes, plus its extras. */
static unsigned rx_nslots(const struct nb_rxframe *f, unsigned hr)
{
    unsigned per = SX_NET_PAGE_SIZE - hr;
    unsigned data = f->len ? (f->len + per - 1) / per : 1;
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
        if (!q->halted)
            sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u q%u: rx producer index overflow: halted",
                               q->vif->fe_domid, q->vif->devid, q->id);
        q->halted = true;
        stat_add(q, NBS_RX_FATAL, 1);
        return have;
    }
    q->rxq_tail += (unsigned)n;
    return q->rxq_tail - q->rxq_head;
}

/* Read frames from the TAP until the batch is full or the TAP is empty. */
static unsigned rx_fill(struct nb_queue *q)
{
    unsigned n = 0;
    while (q->rxf_pending < NB_RX_BATCH) {
        struct nb_rxframe *f = &q->rxf[q->rxf_pending];
        ssize_t r = read(q->tapfd, f->buf, NB_RX_FRAME_MAX);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                stat_add(q, NBS_RX_ERRORS, 1);
            break;
        }
        if (r < (ssize_t)(SX_TAP_VNET_HDR_LEN + SX_NET_ETH_HLEN)) {
            stat_add(q, NBS_RX_DROPS, 1);
            stat_add(q, NBS_RX_DROP_CONV, 1);
            continue;
        }
        f->len = (uint32_t)(r - SX_TAP_VNET_HDR_LEN);
        f->ready = false;
        f->hashed = false;
        q->rxf_pending++;
        n++;
    }
    return n;
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

    unsigned nframes = 0, nsegs = 0, nrsp = 0, dropped = 0;
    uint16_t seg0[NB_RX_BATCH], fsegs[NB_RX_BATCH], rsp0[NB_RX_BATCH];
    bool deliver[NB_RX_BATCH];
    q->rx_need_slots = false;
    /* Per batch: the xdp headroom (every data slot starts there, as Linux's rx data slots
     * do) and the hash configuration the ctrl ring set. */
    const unsigned hr = atomic_load(&v->xdp_headroom);
    const unsigned per = SX_NET_PAGE_SIZE - hr;
    if (!have_hc) {
        pthread_mutex_lock(&v->hash.lock);
        hc = v->hash.cfg;
        pthread_mutex_unlock(&v->hash.lock);
    }

    for (; nframes < q->rxf_pending; nframes++) {
        struct nb_rxframe *f = &q->rxf[nframes];
        uint8_t *frame = f->buf + SX_TAP_VNET_HDR_LEN;
        deliver[nframes] = false;
        if (!nb_mcast_pass(&v->mcast, frame)) {
            stat_add(q, NBS_RX_DROP_MCAST, 1);
            dropped++;
            continue;
        }
        if (!f->ready) {
            const struct virtio_net_hdr_v1 *vh = (const struct virtio_net_hdr_v1 *)f->buf;
            if (sx_net_vnet_to_netif(vh, frame, f->len, &v->rx_caps, &f->meta) < 0) {
                stat_add(q, NBS_RX_DROP_CONV, 1);
                dropped++;
                continue;
            }
            if (!f->hashed)   /* a steering reader's hash is the one that chose the queue */
                f->has_hash = nb_hash_frame(&hc, frame, f->len, &f->hash, &f->htype);
            f->hashed = true;
            f->ready = true;
        }
        if (f->len > per && !v->sg) {
            stat_add(q, NBS_RX_DROP_NOSG, 1);
            dropped++;
            continue;
        }
        unsigned ndata = (f->len + per - 1) / per;
        unsigned nextra = f->meta.has_gso + f->has_hash;
        unsigned slots = rx_nslots(f, hr);
        if (nsegs + ndata > NB_RX_SEGS || nrsp + slots > NB_RX_SEGS + NB_RX_BATCH)
            break;   /* staging full (small slots with a big headroom): next batch */
        if (rx_reqs(q, slots) < slots) {
            q->rx_need_slots = true;   /* wait for the frontend to post buffers */
            stat_add(q, NBS_RX_STALLS, 1);
            break;
        }
        deliver[nframes] = true;
        seg0[nframes] = (uint16_t)nsegs;
        fsegs[nframes] = (uint16_t)ndata;
        rsp0[nframes] = (uint16_t)nrsp;
        for (unsigned s = 0, k = 0; s < slots; s++) {
            netif_rx_request_t req = q->rxq[q->rxq_head++];
            netif_rx_response_t *r = &q->rxrsp[nrsp++];
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
            uint32_t off = k * per;
            uint32_t len = f->len - off < per ? f->len - off : per;
            xengnttab_grant_copy_segment_t *g = &q->rxsegs[nsegs++];
            g->source.virt = frame + off;
            g->dest.foreign.ref = req.gref;
            g->dest.foreign.offset = (uint16_t)hr;
            g->dest.foreign.domid = (uint16_t)v->fe_domid;
            g->len = (uint16_t)len;
            g->flags = GNTCOPY_dest_gref;
            g->status = GNTST_okay;
            r->id = req.id;
            r->offset = (uint16_t)hr;
            r->flags = (uint16_t)((k == 0 ? f->meta.rx_flags |
                                            (nextra ? NETRXF_extra_info : 0) : 0) |
                                  (k + 1 < ndata ? NETRXF_more_data : 0));
            r->status = (int16_t)len;
            k++;
        }
    }

    unsigned delivered = 0;
    if (nrsp) {
        int crc = sx_gnt_copy(v->nb->gnt, nsegs, q->rxsegs);
        uint64_t bytes = 0, gso = 0, hashed = 0;
        for (unsigned i = 0; i < nframes; i++) {
            if (!deliver[i])
                continue;
            bool ok = crc == 0;
            for (unsigned s = 0; ok && s < fsegs[i]; s++)
                ok = q->rxsegs[seg0[i] + s].status == GNTST_okay;
            if (!ok) {
                /* Every data slot of this frame reports the error (the extra keeps its
                 * layout: it carries no status). */
                unsigned slots = rx_nslots(&q->rxf[i], hr);
                unsigned nx = q->rxf[i].meta.has_gso + q->rxf[i].has_hash;
                for (unsigned s = 0; s < slots; s++)
                    if (!(s >= 1 && s <= nx))
                        q->rxrsp[rsp0[i] + s].status = NETIF_RSP_ERROR;
                stat_add(q, NBS_RX_DROP_GRANT, 1);
                dropped++;
                sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u: rx grant copy failed", v->fe_domid,
                                   v->devid);
                continue;
            }
            delivered++;
            bytes += q->rxf[i].len;
            gso += q->rxf[i].meta.has_gso;
            hashed += q->rxf[i].has_hash;
        }
        for (unsigned i = 0; i < nrsp; i++)
            if (sx_back_ring_put_rsp(&q->rx, &q->rxrsp[i]) < 0) {
                q->halted = true;
                stat_add(q, NBS_RX_FATAL, 1);
                return -EPROTO;
            }
        if (sx_back_ring_push(&q->rx) == 1) {
            sx_evtchn_notify(q->ev, q->rx_port);
            stat_add(q, NBS_RX_NOTIFIES, 1);
        }
        stat_add(q, NBS_RX_PKTS, delivered);
        stat_add(q, NBS_RX_BYTES, bytes);
        stat_add(q, NBS_RX_GSO, gso);
        stat_add(q, NBS_RX_HASH, hashed);
        stat_add(q, NBS_RX_BATCHES, 1);
    }
    stat_add(q, NBS_RX_DROPS, dropped);

    /* Keep the undelivered frames (from the one that waits for buffers on) at the front,
     * rotating buffer pointers: nothing is copied, nothing allocated. */
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
