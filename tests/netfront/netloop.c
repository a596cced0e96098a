/*
 * splitxen-test-netloop: a minimal netif backend for netfront tests, independent of netback's
 * data path. Acting as dom0 it serves vif <dom>.0 of two guests and crosses them over: every
 * frame one guest transmits is received by the other (a two-port wire), queue i onto queue
 * i mod the peer's count. Up to 4 queues per vif, split or shared event channels, SG, GSO extras and checksum flags passed through, grant copy
 * both ways, netback/pkt.h's parser validating the tx side.
 *
 *   splitxen-test-netloop DOM_A DOM_B      (SPLITXEN_RUN / SPLITXEN_CORE locate the core)
 *
 * Prints "netloop: connected" once both frontends are Connected; serves until SIGTERM/SIGINT;
 * answers a frontend's Closing with Closed (after unmapping its rings). Exit 0 on a signal.
 */
#define SX_LOG_MODULE "netloop"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "log.h"
#include "netback/pkt.h"
#include "ring/ring.h"
#include "platform/platform.h"
#include "xenbus/xenbus.h"

#define PAGE 4096u
#define NSLOT 256u

#define MAXQ 4u

struct vq {
    void *txmem, *rxmem;
    struct sx_back_ring tx, rx;
    int tx_port, rx_port;
    netif_tx_request_t treq[NSLOT];
    unsigned tn;
    netif_rx_request_t rreq[NSLOT];
    unsigned rn;
};

struct vif {
    domid_t dom;
    char fe[128], be[128];
    int fe_state, handled;     /* last state seen / acted on */
    bool connected;
    bool rx_sg, rx_gso4, rx_gso6;
    unsigned nq;
    struct vq q[MAXQ];
    uint64_t tx_pkts, tx_drops, rx_pkts, rx_drops;
};

static struct sx_plat *plat;
static struct sx_xenbus *xb;
static struct sx_gnt *gnt;
static struct sx_evtchn *ev;
static struct vif vifs[2];
static uint8_t frame[65536];

static void fe_state_cb(void *arg, const char *dir, int state)
{
    (void)dir;
    ((struct vif *)arg)->fe_state = state;
}

static int be_write_features(struct vif *v)
{
    static const char *const keys[][2] = {
        { "feature-rx-copy", "1" }, { "feature-sg", "1" }, { "feature-gso-tcpv4", "1" },
        { "feature-gso-tcpv6", "1" }, { "feature-ipv6-csum-offload", "1" },
        { "feature-split-event-channels", "1" }, { "feature-rx-flip", "0" },
        { "multi-queue-max-queues", "4" },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = sx_xenbus_write(xb, XBT_NULL, v->be, keys[i][0], keys[i][1]);
        if (rc)
            return rc;
    }
    return sx_xenbus_switch_state(xb, v->be, XenbusStateInitWait);
}

static bool fe_flag(struct vif *v, const char *key)
{
    uint64_t x;
    return sx_xenbus_read_uint(xb, XBT_NULL, v->fe, key, 0, 1, &x) == 0 && x;
}

static int vq_connect(struct vif *v, struct vq *q, const char *dir)
{
    uint64_t txref, rxref, ptx, prx;
    int rc;
    if ((rc = sx_xenbus_read_uint(xb, XBT_NULL, dir, "tx-ring-ref", 0, UINT32_MAX, &txref)) ||
        (rc = sx_xenbus_read_uint(xb, XBT_NULL, dir, "rx-ring-ref", 0, UINT32_MAX, &rxref)))
        return rc;
    if (sx_xenbus_read_uint(xb, XBT_NULL, dir, "event-channel-tx", 0, UINT32_MAX, &ptx) == 0) {
        if ((rc = sx_xenbus_read_uint(xb, XBT_NULL, dir, "event-channel-rx", 0, UINT32_MAX,
                                      &prx)))
            return rc;
    } else {
        if ((rc = sx_xenbus_read_uint(xb, XBT_NULL, dir, "event-channel", 0, UINT32_MAX, &ptx)))
            return rc;
        prx = ptx;
    }
    grant_ref_t r = (grant_ref_t)txref;
    if ((rc = sx_gnt_map(gnt, v->dom, 1, &r, true, &q->txmem, NULL)))
        return rc;
    r = (grant_ref_t)rxref;
    if ((rc = sx_gnt_map(gnt, v->dom, 1, &r, true, &q->rxmem, NULL)))
        return rc;
    if ((rc = sx_back_ring_attach(&q->tx, q->txmem, PAGE, sizeof(netif_tx_request_t),
                                  sizeof(netif_tx_response_t))) ||
        (rc = sx_back_ring_attach(&q->rx, q->rxmem, PAGE, sizeof(netif_rx_request_t),
                                  sizeof(netif_rx_response_t))))
        return rc;
    if ((rc = sx_evtchn_bind_interdomain(ev, v->dom, (evtchn_port_t)ptx)) < 0)
        return rc;
    q->tx_port = q->rx_port = rc;
    if (prx != ptx) {
        if ((rc = sx_evtchn_bind_interdomain(ev, v->dom, (evtchn_port_t)prx)) < 0)
            return rc;
        q->rx_port = rc;
    }
    q->tn = q->rn = 0;
    return 0;
}

static int vif_connect(struct vif *v)
{
    uint64_t nq = 1;
    int rc = sx_xenbus_read_uint(xb, XBT_NULL, v->fe, "multi-queue-num-queues", 1, MAXQ, &nq);
    if (rc == -EINVAL)
        return rc;
    v->nq = (unsigned)nq;
    v->rx_sg = fe_flag(v, "feature-sg");
    v->rx_gso4 = v->rx_sg && fe_flag(v, "feature-gso-tcpv4");
    v->rx_gso6 = v->rx_sg && fe_flag(v, "feature-gso-tcpv6");
    for (unsigned i = 0; i < v->nq; i++) {
        char dir[160];
        if (v->nq == 1)
            snprintf(dir, sizeof(dir), "%s", v->fe);
        else
            snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe, i);
        if ((rc = vq_connect(v, &v->q[i], dir)) < 0)
            return rc;
    }
    v->connected = true;
    return sx_xenbus_switch_state(xb, v->be, XenbusStateConnected);
}

static void vif_disconnect(struct vif *v)
{
    for (unsigned i = 0; i < MAXQ; i++) {
        struct vq *q = &v->q[i];
        if (q->tx_port >= 0)
            sx_evtchn_unbind(ev, (evtchn_port_t)q->tx_port);
        if (q->rx_port >= 0 && q->rx_port != q->tx_port)
            sx_evtchn_unbind(ev, (evtchn_port_t)q->rx_port);
        q->tx_port = q->rx_port = -1;
        sx_back_ring_detach(&q->tx);
        sx_back_ring_detach(&q->rx);
        if (q->txmem)
            sx_gnt_unmap(gnt, q->txmem, 1);
        if (q->rxmem)
            sx_gnt_unmap(gnt, q->rxmem, 1);
        q->txmem = q->rxmem = NULL;
    }
    v->connected = false;
}

/* Deliver a frame to v's rx ring (drop when it cannot take it). */
static void deliver(struct vif *v, struct vq *q, size_t len, const struct sx_net_txpkt *pkt)
{
    if (!v->connected) {
        v->rx_drops++;
        return;
    }
    bool gso = pkt->gso.type != XEN_NETIF_GSO_TYPE_NONE;
    if ((gso && !((pkt->gso.type == XEN_NETIF_GSO_TYPE_TCPV4 && v->rx_gso4) ||
                  (pkt->gso.type == XEN_NETIF_GSO_TYPE_TCPV6 && v->rx_gso6))) ||
        (len > PAGE && !v->rx_sg)) {
        v->rx_drops++;
        return;
    }
    unsigned ndata = (unsigned)((len + PAGE - 1) / PAGE), need = ndata + (gso ? 1 : 0);
    if (q->rn < need) {   /* rx_room said there was room */
        v->rx_drops++;
        return;
    }
    xengnttab_grant_copy_segment_t segs[SX_NET_TX_MAX_SLOTS];
    unsigned k = 0, slot = 0;
    size_t off = 0;
    union { netif_rx_response_t r; netif_extra_info_t e; } rsp[SX_NET_TX_MAX_SLOTS];
    memset(rsp, 0, sizeof(rsp));
    for (unsigned d = 0; d < ndata; d++) {
        const netif_rx_request_t *req = &q->rreq[slot];
        size_t chunk = len - off < PAGE ? len - off : PAGE;
        segs[k] = (xengnttab_grant_copy_segment_t){ 0 };
        segs[k].source.virt = frame + off;
        segs[k].dest.foreign.ref = req->gref;
        segs[k].dest.foreign.offset = 0;
        segs[k].dest.foreign.domid = v->dom;
        segs[k].len = (uint16_t)chunk;
        segs[k].flags = GNTCOPY_dest_gref;
        k++;
        rsp[slot].r.id = req->id;
        rsp[slot].r.offset = 0;
        rsp[slot].r.status = (int16_t)chunk;
        rsp[slot].r.flags = d + 1 < ndata ? NETRXF_more_data : 0;
        if (d == 0) {
            if (pkt->csum_blank)
                rsp[slot].r.flags |= NETRXF_csum_blank | NETRXF_data_validated;
            else if (pkt->data_validated)
                rsp[slot].r.flags |= NETRXF_data_validated;
            if (gso) {
                rsp[slot].r.flags |= NETRXF_extra_info;
                slot++;
                rsp[slot].e.type = XEN_NETIF_EXTRA_TYPE_GSO;
                rsp[slot].e.u.gso.type = pkt->gso.type;
                rsp[slot].e.u.gso.size = pkt->gso.size;
            }
        }
        slot++;
        off += chunk;
    }
    if (sx_gnt_copy(gnt, k, segs) < 0) {
        v->rx_drops++;
        return;
    }
    for (unsigned i = 0; i < k; i++)
        if (segs[i].status != GNTST_okay) {
            /* Answer every slot anyway (the requests are used up), with an error. */
            rsp[0].r.status = NETIF_RSP_ERROR;
            v->rx_drops++;
        }
    for (unsigned i = 0; i < slot; i++)
        sx_back_ring_put_rsp(&q->rx, &rsp[i]);
    memmove(q->rreq, q->rreq + slot, (q->rn - slot) * sizeof(q->rreq[0]));
    q->rn -= slot;
    v->rx_pkts++;
}

/* Enough posted rx buffers on q for a frame of len bytes? Takes newly posted requests; when
 * still short, asks for a notification on the next post (feature-rx-notify) and looks again. */
static bool rx_room(struct vq *q, size_t len, bool gso)
{
    unsigned need = (unsigned)((len + PAGE - 1) / PAGE) + (gso ? 1 : 0);
    for (;;) {
        if (q->rn >= need)
            return true;
        int n = sx_back_ring_take(&q->rx, q->rreq + q->rn, NSLOT - q->rn);
        if (n < 0)
            return false;
        q->rn += (unsigned)n;
        if (q->rn >= need)
            return true;
        if (sx_back_ring_final_check(&q->rx) <= 0)
            return false;
    }
}

/* Move queue qi of v's transmitted frames to its peer (same queue index modulo the peer's
 * count). Returns frames moved. */
static int pump(struct vif *v, unsigned qi, struct vif *peer)
{
    if (!v->connected || qi >= v->nq)
        return 0;
    struct vq *q = &v->q[qi];
    struct vq *pq = peer->connected ? &peer->q[qi % peer->nq] : NULL;
    int moved = 0;
    int n = sx_back_ring_take(&q->tx, q->treq + q->tn, NSLOT - q->tn);
    if (n < 0) {
        sx_err("domain %u: tx ring halted", v->dom);
        vif_disconnect(v);
        return 0;
    }
    q->tn += (unsigned)n;
    while (q->tn) {
        static struct sx_net_txpkt pkt;
        enum sx_net_tx_verdict vd = sx_net_tx_parse(q->treq, q->tn, false, &pkt);
        if (vd == SX_NET_TX_NEED_MORE)
            break;
        if (vd == SX_NET_TX_FATAL) {
            sx_err("domain %u: fatal tx (%s)", v->dom, sx_net_tx_reason_str(pkt.reason));
            vif_disconnect(v);
            return moved;
        }
        int16_t status = NETIF_RSP_OKAY;
        /* Backpressure: a frame waits on the ring until the peer has posted room for it. */
        if (vd == SX_NET_TX_OK && pq &&
            !rx_room(pq, pkt.total_len, pkt.gso.type != XEN_NETIF_GSO_TYPE_NONE))
            break;
        if (vd == SX_NET_TX_OK) {
            xengnttab_grant_copy_segment_t segs[SX_NET_TX_MAX_FRAGS];
            size_t pos = 0;
            for (unsigned i = 0; i < pkt.nr_frags; i++) {
                segs[i] = (xengnttab_grant_copy_segment_t){ 0 };
                segs[i].source.foreign.ref = pkt.frags[i].gref;
                segs[i].source.foreign.offset = pkt.frags[i].offset;
                segs[i].source.foreign.domid = v->dom;
                segs[i].dest.virt = frame + pos;
                segs[i].len = pkt.frags[i].len;
                segs[i].flags = GNTCOPY_source_gref;
                pos += pkt.frags[i].len;
            }
            bool ok = sx_gnt_copy(gnt, pkt.nr_frags, segs) == 0;
            for (unsigned i = 0; ok && i < pkt.nr_frags; i++)
                ok = segs[i].status == GNTST_okay;
            if (ok) {
                v->tx_pkts++;
                if (pq)
                    deliver(peer, pq, pos, &pkt);
                else
                    peer->rx_drops++;
                moved++;
            } else {
                status = NETIF_RSP_ERROR;
                v->tx_drops++;
            }
        } else if (vd == SX_NET_TX_DROP) {
            status = NETIF_RSP_ERROR;
            v->tx_drops++;
        }
        netif_tx_response_t rsp[SX_NET_TX_MAX_SLOTS];
        unsigned nr = sx_net_tx_responses(&pkt, status, rsp);
        for (unsigned i = 0; i < nr; i++)
            sx_back_ring_put_rsp(&q->tx, &rsp[i]);
        memmove(q->treq, q->treq + pkt.nr_slots, (q->tn - pkt.nr_slots) * sizeof(q->treq[0]));
        q->tn -= pkt.nr_slots;
    }
    if (sx_back_ring_push(&q->tx) > 0)
        sx_evtchn_notify(ev, (evtchn_port_t)q->tx_port);
    if (pq && sx_back_ring_push(&pq->rx) > 0)
        sx_evtchn_notify(ev, (evtchn_port_t)pq->rx_port);
    return moved;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: splitxen-test-netloop DOM_A DOM_B\n");
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    char xsp[256];
    int rc;
    if (sfd < 0 || (rc = sx_plat_open(&plat, SX_PLAT_SIM, 0, NULL)) < 0 ||
        (rc = sx_xenstored_path(xsp, sizeof(xsp), 0)) < 0 || (rc = sx_xenbus_open(&xb, NULL, xsp)) < 0 ||
        (rc = sx_gnt_open(&gnt, plat)) < 0 || (rc = sx_evtchn_open(&ev, plat)) < 0) {
        fprintf(stderr, "netloop: cannot start as dom0\n");
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        struct vif *v = &vifs[i];
        v->dom = (domid_t)atoi(argv[1 + i]);
        for (unsigned k = 0; k < MAXQ; k++)
            v->q[k].tx_port = v->q[k].rx_port = -1;
        v->handled = -1;
        sx_xenbus_frontend_path(v->fe, sizeof(v->fe), v->dom, "vif", 0);
        sx_xenbus_backend_path(v->be, sizeof(v->be), 0, "vif", v->dom, 0);
        char tok[32];
        snprintf(tok, sizeof(tok), "fe-%d", i);
        if ((rc = be_write_features(v)) < 0 ||
            (rc = sx_xenbus_watch_state(xb, v->fe, tok, fe_state_cb, v)) < 0) {
            fprintf(stderr, "netloop: vif %u.0: %s\n", v->dom, strerror(-rc));
            return 1;
        }
    }
    int status = 0, announced = 0;
    for (;;) {
        /* Control: connect on the frontend's Connected, let go on its Closing/Closed. */
        for (int i = 0; i < 2; i++) {
            struct vif *v = &vifs[i];
            if (v->fe_state == v->handled)
                continue;
            v->handled = v->fe_state;
            if (!v->connected && v->fe_state == XenbusStateConnected) {
                if ((rc = vif_connect(v)) < 0) {
                    fprintf(stderr, "netloop: vif %u.0 connect: %s\n", v->dom, strerror(-rc));
                    vif_disconnect(v);
                    sx_xenbus_switch_state(xb, v->be, XenbusStateClosed);
                }
            } else if (v->fe_state == XenbusStateClosing || v->fe_state == XenbusStateClosed) {
                vif_disconnect(v);
                sx_xenbus_switch_state(xb, v->be, XenbusStateClosed);
            } else if (v->fe_state == XenbusStateInitialising) {
                sx_xenbus_switch_state(xb, v->be, XenbusStateInitWait);
            }
        }
        if (!announced && vifs[0].connected && vifs[1].connected) {
            printf("netloop: connected\n");
            fflush(stdout);
            announced = 1;
        }
        sx_evtchn_drain(ev, 0);
        int moved = 0;
        for (unsigned qi = 0; qi < MAXQ; qi++)
            moved += pump(&vifs[0], qi, &vifs[1]) + pump(&vifs[1], qi, &vifs[0]);
        if (moved)
            continue;
        /* Arm req_event on every ring before sleeping (no lost wakeups). */
        bool again = false;
        for (int i = 0; i < 2; i++)
            for (unsigned qi = 0; vifs[i].connected && qi < vifs[i].nq; qi++)
                if (sx_back_ring_final_check(&vifs[i].q[qi].tx) > 0)
                    again = true;
        if (again)
            continue;
        struct pollfd pf[3] = { { .fd = sfd, .events = POLLIN },
                                { .fd = sx_evtchn_fd(ev), .events = POLLIN },
                                { .fd = sx_xenbus_fd(xb), .events = POLLIN } };
        if (poll(pf, 3, -1) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[2].revents && sx_xenbus_dispatch(xb, 0) < 0) {
            status = 1;
            break;
        }
    }
    for (int i = 0; i < 2; i++) {
        struct vif *v = &vifs[i];
        fprintf(stderr, "netloop: dom %u: tx_pkts=%lu tx_drops=%lu rx_pkts=%lu rx_drops=%lu\n",
                v->dom, v->tx_pkts, v->tx_drops, v->rx_pkts, v->rx_drops);
        vif_disconnect(v);
        sx_xenbus_switch_state(xb, v->be, XenbusStateClosed);
    }
    sx_evtchn_close(ev);
    sx_gnt_close(gnt);
    sx_xenbus_close(xb);
    sx_plat_close(plat);
    return status;
}
