/*
 * netback tx data path (guest -> world) and the per-queue loop.
 *
 * Per batch, in two phases as Linux's xenvif_tx_build_gops / xenvif_tx_submit:
 *   build   copy requests off the tx ring once, parse and validate each packet on the copy
 *           (netback/pkt.c), lay the accepted packets out in a preallocated arena (vnet
 *           header, frame) with their grant-copy segments;
 *   submit  grant-copy every fragment of the whole batch in one sx_gnt_copy, hand the frames
 *           to the world side (netdev/: a TAP queue on a bridge) in one burst, then respond
 *           to every slot and push once (one notification per batch).
 *
 * The loop (nb_queue_main) alternates tx and rx batches and goes idle through sx_idle (ring/):
 * it spins up to spin_ns on the rings and the world side (only after a batch that found work),
 * ends the delivered events (late EOI: notifications that bring nothing new keep the port
 * masked for a growing, capped time, XSA-332), arms the rings (final check) and sleeps in
 * poll() on the event channel, the world side's queue fd and the stop eventfd (and, on a vif
 * that can steer rx frames between queues, the eventfd other queues kick when they hand this
 * one frames: steer.c).
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "netback/common.h"

static void stat_add(struct nb_queue *q, enum nb_stat i, uint64_t n)
{
    if (n)
        sx_stats_add(&q->vif->stats, i, n);
}

int nb_queue_alloc(struct nb_queue *q)
{
    q->worldfd = -1;
    q->stopfd = -1;
    q->txq = calloc(NB_TXQ, sizeof(*q->txq));
    q->txs = calloc(NB_TX_BATCH, sizeof(*q->txs));
    q->txsegs = calloc(NB_TX_SEGS, sizeof(*q->txsegs));
    q->arena = malloc(NB_TX_ARENA + NB_TX_PKT_MAX);
    q->rxq = calloc(NB_RXQ, sizeof(*q->rxq));
    q->rxf = calloc(NB_RX_BATCH, sizeof(*q->rxf));
    q->rxsegs = calloc(NB_RX_SEGS, sizeof(*q->rxsegs));
    q->rxrsp = calloc(NB_RX_SEGS + NB_RX_BATCH, sizeof(*q->rxrsp));
    if (!q->txq || !q->txs || !q->txsegs || !q->arena || !q->rxq || !q->rxf || !q->rxsegs ||
        !q->rxrsp)
        goto fail;
    for (unsigned i = 0; i < NB_RX_BATCH; i++)
        if (!(q->rxf[i].buf = malloc(NB_RX_FRAME_MAX)))
            goto fail;
    q->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->stopfd < 0)
        goto fail;
    return 0;
fail:
    nb_queue_free(q);
    return -ENOMEM;
}

void nb_queue_free(struct nb_queue *q)
{
    if (!q)
        return;
    if (q->rxf)
        for (unsigned i = 0; i < NB_RX_BATCH; i++)
            free(q->rxf[i].buf);
    free(q->txq);
    free(q->txs);
    free(q->txsegs);
    free(q->arena);
    free(q->rxq);
    free(q->rxf);
    free(q->rxsegs);
    free(q->rxrsp);
    q->txq = NULL;
    q->txs = NULL;
    q->txsegs = NULL;
    q->arena = NULL;
    q->rxq = NULL;
    q->rxf = NULL;
    q->rxsegs = NULL;
    q->rxrsp = NULL;
    nb_steer_free(q);
    if (q->stopfd >= 0)
        close(q->stopfd);
    q->stopfd = -1;
}

static void tx_halt(struct nb_queue *q, enum sx_net_tx_reason r)
{
    q->halted = true;
    stat_add(q, NBS_TX_FATAL, 1);
    sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u q%u: fatal tx error (%s): queue halted",
                       q->vif->fe_domid, q->vif->devid, q->id, sx_net_tx_reason_str(r));
}

static enum nb_stat drop_stat(enum sx_net_tx_reason r)
{
    switch (r) {
    case SX_NET_TXR_RUNT: return NBS_TX_DROP_RUNT;
    case SX_NET_TXR_TOO_MANY_SLOTS: return NBS_TX_DROP_SLOTS;
    case SX_NET_TXR_SLOT_OVERSIZE: return NBS_TX_DROP_OVERSIZE;
    case SX_NET_TXR_ZERO_FRAG: return NBS_TX_DROP_ZERO_FRAG;
    default: return NBS_TX_DROPS;
    }
}

/* Respond to the packets of a batch and publish once. */
static void tx_respond(struct nb_queue *q, unsigned npkts)
{
    netif_tx_response_t rsp[SX_NET_TX_MAX_SLOTS];
    for (unsigned p = 0; p < npkts; p++) {
        unsigned n = sx_net_tx_responses(&q->txs[p].pkt, q->txs[p].status, rsp);
        if (q->tt_tx)
            nb_tt_tx_rsp(q, rsp, n);
        for (unsigned i = 0; i < n; i++)
            if (sx_back_ring_put_rsp(&q->tx, &rsp[i]) < 0) {
                q->halted = true;   /* cannot happen for requests we took; do not loop */
                return;
            }
    }
    if (sx_back_ring_push(&q->tx) == 1) {
        sx_evtchn_notify(q->ev, q->tx_port);
        stat_add(q, NBS_TX_NOTIFIES, 1);
    }
    if (q->tt_tx)
        nb_tt_burst(q, q->tt_tx, q->tx_port);
}

/* A refill leaves txq with room for a whole packet, so a parse that is not complete always
 * sees at least SX_NET_TX_MAX_SLOTS requests (see the NEED_MORE case below). */
_Static_assert(NB_TXQ >= 2 * SX_NET_TX_MAX_SLOTS, "txq holds a packet after a refill");

/* Arena bytes a packet takes: vnet header and frame, 64-byte aligned. */
static uint32_t tx_arena_need(const struct nb_txslot *s)
{
    return (SX_NETDEV_HDR_LEN + s->pkt.total_len + 63u) & ~63u;
}

/* Lay out an accepted packet in the arena at *aoff (vnet header, frame) with one grant-copy
 * segment a fragment (the caller checked the room). */
static void tx_build_copy(struct nb_queue *q, struct nb_txslot *s, unsigned *nsegs,
                          uint32_t *aoff)
{
    s->status = NETIF_RSP_OKAY;
    s->off = *aoff;
    s->seg0 = (uint16_t)*nsegs;
    uint32_t pos = *aoff + SX_NETDEV_HDR_LEN;
    for (unsigned f = 0; f < s->pkt.nr_frags; f++) {
        const struct sx_net_txfrag *fr = &s->pkt.frags[f];
        xengnttab_grant_copy_segment_t *g = &q->txsegs[(*nsegs)++];
        g->source.foreign.ref = fr->gref;
        g->source.foreign.offset = fr->offset;
        g->source.foreign.domid = (uint16_t)q->vif->fe_domid;
        g->dest.virt = q->arena + pos;
        g->len = fr->len;
        g->flags = GNTCOPY_source_gref;
        g->status = GNTST_okay;
        pos += fr->len;
    }
    s->nsegs = (uint16_t)(*nsegs - s->seg0);
    s->len = pos - *aoff - SX_NETDEV_HDR_LEN;
    *aoff += tx_arena_need(s);
}

/*
 * Build (Linux's xenvif_tx_build_gops): take requests off the ring into txq (copied once),
 * parse and validate each packet on the copy, settle drops and multicast requests at once,
 * and lay the accepted packets out with their grant-copy segments, up to a batch. Returns the
 * batch's packets; *nsegs gets its copy segments. A fatal error halts the queue (q->halted)
 * after the packets before it.
 */
static unsigned tx_build(struct nb_queue *q, unsigned *nsegs)
{
    struct nb_vif *v = q->vif;
    unsigned npkts = 0;
    uint32_t aoff = 0;
    bool drained = false;
    *nsegs = 0;
    while (npkts < NB_TX_BATCH) {
        unsigned avail = q->txq_tail - q->txq_head;
        if (avail < SX_NET_TX_MAX_SLOTS && !drained) {
            if (q->txq_head) {
                memmove(q->txq, q->txq + q->txq_head, avail * sizeof(*q->txq));
                q->txq_head = 0;
                q->txq_tail = avail;
            }
            unsigned space = NB_TXQ - q->txq_tail;
            int n = sx_back_ring_take(&q->tx, q->txq + q->txq_tail, space);
            if (q->tt_tx)
                nb_tt_tx_taken(q, n);
            if (n < 0) {
                q->halted = true;
                stat_add(q, NBS_TX_FATAL, 1);
                sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u q%u: tx producer index overflow: "
                                   "queue halted", v->fe_domid, v->devid, q->id);
                break;
            }
            q->txq_tail += (unsigned)n;
            drained = (unsigned)n < space;
            avail = q->txq_tail - q->txq_head;
        }
        if (!avail)
            break;
        struct nb_txslot *s = &q->txs[npkts];
        enum sx_net_tx_verdict vd = sx_net_tx_parse(q->txq + q->txq_head, avail, drained, &s->pkt);
        if (vd == SX_NET_TX_NEED_MORE) {
            /* Cannot be satisfied: with fewer than SX_NET_TX_MAX_SLOTS held we refilled above
             * and either drained the ring (then the parse was complete: no NEED_MORE) or
             * filled txq; with that many held the parser always decides. Waiting would leave
             * these slots unanswered while tx_pending_pred and final_check keep the thread
             * awake for them: halt the queue instead. */
            if (q->tt_tx)
                nb_tt_tx_pkt(q, vd, &s->pkt);
            tx_halt(q, SX_NET_TXR_INCOMPLETE);
            break;
        }
        if (vd == SX_NET_TX_FATAL) {
            if (q->tt_tx)
                nb_tt_tx_pkt(q, vd, &s->pkt);
            tx_halt(q, s->pkt.reason);
            break;
        }
        s->nsegs = 0;
        s->len = 0;
        if (vd == SX_NET_TX_DROP) {
            s->status = NETIF_RSP_ERROR;
            stat_add(q, NBS_TX_DROPS, 1);
            stat_add(q, drop_stat(s->pkt.reason), 1);
            sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u: tx packet dropped (%s)", v->fe_domid,
                               v->devid, sx_net_tx_reason_str(s->pkt.reason));
        } else if (vd == SX_NET_TX_MCAST) {
            s->status = nb_mcast_update(&v->mcast, s->pkt.mcast_op, s->pkt.mcast_addr) == 0
                            ? NETIF_RSP_OKAY : NETIF_RSP_ERROR;
            stat_add(q, NBS_TX_MCAST, 1);
        } else {
            if (*nsegs + s->pkt.nr_frags > NB_TX_SEGS || aoff + tx_arena_need(s) > NB_TX_ARENA)
                break;   /* batch full: this packet starts the next one */
            if (q->rate.bytes) {
                uint64_t wait;
                if (!nb_rate_take(&q->rate, s->pkt.total_len, sx_now_ns(), &wait)) {
                    q->rate_wait_ns = sx_now_ns() + wait;
                    stat_add(q, NBS_TX_THROTTLED, 1);
                    break;
                }
            }
            tx_build_copy(q, s, nsegs, &aoff);
        }
        if (q->tt_tx && nb_tt_tx_pkt(q, vd, &s->pkt) && vd == SX_NET_TX_OK) {
            s->status = NETIF_RSP_ERROR;   /* torture: answered, not sent */
            s->nsegs = 0;
        }
        q->txq_head += s->pkt.nr_slots;
        npkts++;
    }
    return npkts;
}

/*
 * Submit (Linux's xenvif_tx_submit): one grant copy for the whole batch, a virtio-net header
 * for every packet whose fragments all arrived, the packets to the world side in one burst,
 * then every slot answered and the responses pushed once.
 */
static void tx_submit(struct nb_queue *q, unsigned npkts, unsigned nsegs)
{
    struct nb_vif *v = q->vif;
    struct sx_netdev_buf out[NB_TX_BATCH];
    uint16_t out_pkt[NB_TX_BATCH];
    unsigned nout = 0;
    int crc = nsegs ? sx_gnt_copy(v->nb->gnt, nsegs, q->txsegs) : 0;
    for (unsigned p = 0; p < npkts; p++) {
        struct nb_txslot *s = &q->txs[p];
        if (!s->nsegs)
            continue;
        bool ok = crc == 0;
        for (unsigned i = 0; ok && i < s->nsegs; i++)
            ok = q->txsegs[s->seg0 + i].status == GNTST_okay;
        if (!ok) {
            int16_t st = 0;
            for (unsigned i = 0; !st && i < s->nsegs; i++)
                st = q->txsegs[s->seg0 + i].status;
            s->status = NETIF_RSP_ERROR;
            stat_add(q, NBS_TX_DROPS, 1);
            stat_add(q, NBS_TX_DROP_GRANT, 1);
            sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u: tx grant copy failed (%d)",
                               v->fe_domid, v->devid, crc ? crc : st);
            if (q->tt_tx)
                nb_tt_grant_bad(q->tt_tx, s->pkt.resp_id[0], crc ? crc : st);
            continue;
        }
        uint8_t *frame = q->arena + s->off + SX_NETDEV_HDR_LEN;
        struct virtio_net_hdr_v1 *vh = (struct virtio_net_hdr_v1 *)(q->arena + s->off);
        const struct sx_net_tx_meta tm = sx_net_txpkt_meta(&s->pkt);
        if (sx_net_tx_vnet_hdr(&tm, frame, s->len, vh) < 0) {
            s->status = NETIF_RSP_ERROR;
            stat_add(q, NBS_TX_DROPS, 1);
            stat_add(q, NBS_TX_DROP_HDR, 1);
            continue;
        }
        out[nout] = (struct sx_netdev_buf){ q->arena + s->off, SX_NETDEV_HDR_LEN + s->len };
        out_pkt[nout++] = (uint16_t)p;
    }
    int sent = nout ? sx_netdev_tx_burst(v->nd, q->id, out, nout) : 0;
    uint64_t pkts = 0, bytes = 0, gso = 0;
    for (unsigned i = 0; i < nout; i++) {
        const struct nb_txslot *s = &q->txs[out_pkt[i]];
        if (sent < 0 || out[i].len == 0) {
            /* The world side refused it (queue full, link down): the guest's packet was
             * accepted and lost on the wire, as a NIC would; count it. */
            stat_add(q, NBS_TX_ERRORS, 1);
            continue;
        }
        pkts++;
        bytes += s->len;
        gso += s->pkt.gso.type != XEN_NETIF_GSO_TYPE_NONE;
    }
    tx_respond(q, npkts);
    stat_add(q, NBS_TX_PKTS, pkts);
    stat_add(q, NBS_TX_BYTES, bytes);
    stat_add(q, NBS_TX_GSO, gso);
    stat_add(q, NBS_TX_BATCHES, 1);
}

int nb_tx_action(struct nb_queue *q)
{
    if (q->halted)
        return -EPROTO;
    if (q->tt_tx) {   /* torture's backpressure, the notification check's hold-off */
        uint64_t until = sx_tt_q_paused(q->tt_tx);
        if (until > q->rate_wait_ns)
            q->rate_wait_ns = until;
    }
    if (q->rate_wait_ns) {
        if (sx_now_ns() < q->rate_wait_ns)
            return 0;
        q->rate_wait_ns = 0;
    }
    unsigned nsegs;
    unsigned npkts = tx_build(q, &nsegs);
    if (npkts)
        tx_submit(q, npkts, nsegs);
    return q->halted ? -EPROTO : (int)npkts;
}

/* ---------------------------------------------------------------- queue loop */

/* Held requests count as work: nb_tx_action leaves some held without consuming any only
 * while the credit limiter makes it wait (rate_wait_ns, which the callers check) or once it
 * halted the queue, never for a packet it waits to complete (that is fatal there). */
static bool tx_pending_pred(void *arg)
{
    struct nb_queue *q = arg;
    return sx_back_ring_has_requests(&q->tx) || q->txq_tail > q->txq_head;
}

/* Spin predicate: tx requests we may act on (not while the credit limiter holds tx back), rx
 * buffers a waiting frame needs, or frames from the world side (retried, and delivered, here). */
static bool spin_pred(void *arg)
{
    struct nb_queue *q = arg;
    if (tx_pending_pred(q) && !q->rate_wait_ns)
        return true;
    if (q->rx_need_slots)
        return sx_back_ring_has_requests(&q->rx);
    return nb_rx_action(q) > 0;
}

static void *queue_main(void *arg)
{
    struct nb_queue *q = arg;
    struct nb_vif *v = q->vif;
    bool halted_logged = false;
    /* A fixed spin budget, the clock read every round (a spin round retries the world side: a
     * syscall). A wake that brought no work buys no spin, and repeated ones keep the event
     * channel masked for a while (late EOI, XSA-332). */
    const struct sx_idle_opts io = { .spin_ns = v->nb->o.spin_ns, .clock_rounds = 1 };
    struct sx_idle idle;
    sx_idle_init(&idle, q->ev, &io, &v->stats, NBS_SPURIOUS);

    while (!atomic_load_explicit(&q->stop, memory_order_acquire)) {
        int tx = 0, rx = 0;
        uint64_t taken = q->tx.stats.reqs + q->rx.stats.reqs;
        if (!q->halted) {
            tx = nb_tx_action(q);
            rx = nb_rx_action(q);
        }
        if (q->halted) {
            if (!halted_logged)
                sx_warn("vif%u.%u q%u halted: waiting for disconnect", v->fe_domid, v->devid,
                        q->id);
            halted_logged = true;
            struct pollfd pf = { .fd = q->stopfd, .events = POLLIN };
            poll(&pf, 1, 1000);
            continue;
        }
        /* Work: packets or frames moved, or new requests taken off either ring (a frontend
         * that publishes requests, even part of a packet, is not notifying for nothing). */
        sx_idle_did(&idle, tx > 0 || rx > 0 || q->tx.stats.reqs + q->rx.stats.reqs != taken);
        if (tx > 0 || rx > 0)
            continue;
        /* Adaptive polling: spin on the tx ring (and retry the world side / rx ring via the
         * actions) before paying for a sleeping wakeup. */
        if (sx_idle_spin(&idle, spin_pred, q))
            continue;
        /* Arm: take and end the delivered events (late EOI; events are only looked at before
         * sleeping: while busy a masked port costs the frontend nothing), ask for a
         * notification on the next tx request (and rx buffers when a frame waits for them),
         * then re-check, so nothing that arrives from here on is missed: it either shows in
         * the re-check or makes the event fd readable (at once, or when a throttled port's
         * delay ends). */
        sx_idle_arm(&idle);
        int f = sx_back_ring_final_check(&q->tx);
        if (f < 0) {
            tx_halt(q, SX_NET_TXR_NONE);
            continue;
        }
        if (f > 0 && !q->rate_wait_ns)
            continue;
        bool tx_armed = f == 0, rx_armed = false;
        if (q->rx_need_slots) {
            f = sx_back_ring_final_check(&q->rx);
            rx_armed = f == 0;
            if (f < 0) {
                q->halted = true;
                stat_add(q, NBS_RX_FATAL, 1);
                continue;
            }
            if (f > 0 && q->rx_need_slots)
                continue;
        }
        /* Steering: frames other queues hand us wake us too, when we can take them. */
        bool kick = q->steer && nb_rx_wants_world(q);
        if (kick && !nb_steer_sleep(q))
            continue;
        struct pollfd pf[4] = {
            { .fd = sx_evtchn_fd(q->ev), .events = POLLIN },
            { .fd = q->stopfd, .events = POLLIN },
            { .fd = q->worldfd, .events = nb_rx_wants_world(q) ? POLLIN : 0 },
            { .fd = kick ? q->steer->kickfd : -1, .events = POLLIN },
        };
        int timeout = -1;
        if (q->rate_wait_ns) {
            uint64_t now = sx_now_ns();
            timeout = q->rate_wait_ns > now ? (int)((q->rate_wait_ns - now) / 1000000u) + 1 : 0;
        }
        if (q->tt_tx)
            timeout = sx_tt_q_poll_ms(q->tt_tx, timeout, tx_armed);
        if (q->tt_rx)
            timeout = sx_tt_q_poll_ms(q->tt_rx, timeout, rx_armed);
        stat_add(q, NBS_SLEEPS, 1);
        unsigned held = idle.eoi.nheld;
        int prc = sx_idle_poll(&idle, pf, kick ? 4 : 3, timeout);
        if (q->tt_tx || q->tt_rx) {
            bool evt = prc > 0 && (pf[0].revents & POLLIN);
            sx_tt_q_woke(q->tt_tx, prc, evt, held, tx_armed ? &q->tx : NULL);
            sx_tt_q_woke(q->tt_rx, prc, evt, held, rx_armed ? &q->rx : NULL);
        }
        if (kick)
            nb_steer_wake(q, prc > 0 && (pf[3].revents & POLLIN));
        if (prc < 0 && prc != -EINTR) {
            sx_err("vif%u.%u q%u: poll: %s", v->fe_domid, v->devid, q->id, strerror(-prc));
            break;
        }
    }
    sx_idle_fini(&idle);
    return NULL;
}

int nb_queue_start(struct nb_queue *q)
{
    atomic_store(&q->stop, false);
    int rc = pthread_create(&q->thr, NULL, queue_main, q);
    if (rc)
        return -rc;
    q->thr_started = true;
    char name[16];
    snprintf(name, sizeof(name), "nb%u.%u-q%u", q->vif->fe_domid, q->vif->devid, q->id);
    pthread_setname_np(q->thr, name);
    return 0;
}

void nb_queue_stop(struct nb_queue *q)
{
    if (!q->thr_started)
        return;
    atomic_store_explicit(&q->stop, true, memory_order_release);
    uint64_t one = 1;
    if (write(q->stopfd, &one, sizeof(one)) < 0)
        sx_warn("vif%u.%u q%u: stop eventfd: %s", q->vif->fe_domid, q->vif->devid, q->id,
                strerror(errno));
    pthread_join(q->thr, NULL);
    q->thr_started = false;
    uint64_t junk;
    if (read(q->stopfd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        sx_warn("vif%u.%u q%u: stop eventfd drain: %s", q->vif->fe_domid, q->vif->devid, q->id,
                strerror(errno));
}
