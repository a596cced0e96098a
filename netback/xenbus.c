/*
 * netback control plane: watches /local/domain/<self>/backend/vif, and for every vif there
 * runs the xenbus handshake of Linux drivers/net/xen-netback/xenbus.c:
 *
 *   probe      read bridge/queues/rate, open the world side vif<fe>.<devid> (netdev/: a TAP
 *              joined to its world, or AF_XDP sockets on an uplink), write the feature keys
 *              (GSO and queues as the world side takes them) and hotplug-status=connected,
 *              switch to InitWait
 *   connect    (frontend Initialised/Connected) read and validate the frontend's keys, map
 *              every queue's rings, bind its event channels, start its thread, Connected
 *   disconnect (frontend Closing/Closed/gone, online=0) stop threads, unmap, unbind,
 *              exactly once; online=0 also closes the world side and ends in Closed
 *
 * Everything runs on the thread that calls nb_run. Watch callbacks only mark what an event
 * names (XSA-349: a guest may write under its own device directory as fast as xenstored lets
 * it, so nothing it writes there may cost more than the event itself, nor make another vif be
 * looked at):
 *
 *   backend/vif               an event below backend/vif/<fe>/<devid>/ marks that vif; one
 *                             naming a vif not known yet, a vif directory itself or anything
 *                             above asks for a listing (vifs added or removed)
 *   <fe>/state,               the frontend's two nodes netback reads on its own; events for
 *   <fe>/request-multicast-   nodes below them (a guest can create those) are counted and
 *   control                   dropped
 *
 * nb_step then lists the backend directory when asked and re-evaluates each marked vif once
 * from xenstore (level-triggered: events that arrive together cost one evaluation and lose
 * nothing). The daemon's counters (stats file netback-<domid>-0) count events, ignored ones,
 * evaluations, listings and rounds.
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netback/common.h"

const char *const nb_stat_names[] = {
    "tx_pkts", "tx_bytes", "tx_gso", "tx_mcast",
    "tx_drops", "tx_drop_runt", "tx_drop_slots", "tx_drop_oversize",
    "tx_drop_zero_frag", "tx_drop_grant", "tx_drop_hdr", "tx_errors", "tx_fatal",
    "tx_batches", "tx_notifies", "tx_throttled",
    "rx_pkts", "rx_bytes", "rx_gso",
    "rx_drops", "rx_drop_nosg", "rx_drop_conv", "rx_drop_grant", "rx_errors",
    "rx_fatal", "rx_batches", "rx_notifies", "rx_stalls", "rx_drop_mcast",
    "sleeps", "queues", "mapped_pages", "connects",
    "ctrl_reqs", "ctrl_errors", "ctrl_fatal", "rx_hash",
    "rx_steered", "rx_drop_steer",
    SX_EOI_STAT_NAMES,
    NULL,
};
_Static_assert(sizeof(nb_stat_names) / sizeof(nb_stat_names[0]) == NBS_NR + 1, "stat names");

/* Daemon-wide counters: $SPLITXEN_RUN/stats/netback-<domid>-0 */
enum { NBD_VIFS, NBD_CONNECTED, NBD_THREADS, NBD_MAPPED_PAGES, NBD_EVTCHNS, NBD_WATCH_EVENTS,
       NBD_WATCH_IGNORED, NBD_EVALS, NBD_RESCANS, NBD_ROUNDS, NBD_NR };
static const char *const nbd_names[] = { "vifs", "connected", "threads", "mapped_pages",
                                          "evtchns", "watch_events", "watch_ignored",
                                          "vif_evals", "rescans", "rounds", NULL };
/* Levels rather than counts (common/stats.h): the daemon's vifs, threads, mappings and event
 * channels (not its watch counters), and a vif's queues and mapped pages. */
static const char *const nbd_gauges[] = { "vifs", "connected", "threads", "mapped_pages",
                                          "evtchns", NULL };
static const char *const nb_stat_gauges[] = { "queues", "mapped_pages", NULL };

static struct nb_vif *vif_find(struct nb *nb, unsigned fe, unsigned devid)
{
    struct nb_vif *v = nb->vifs;
    while (v && !(v->fe_domid == fe && v->devid == devid))
        v = v->next;
    return v;
}

/* A decimal id of len characters at s, at most max. */
static bool parse_id_n(const char *s, size_t len, unsigned long max, unsigned *out)
{
    if (!len || len > 10)
        return false;
    unsigned long long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    if (x > max)
        return false;
    *out = (unsigned)x;
    return true;
}

/* backend/vif: mark the vif an event names, or ask for a listing. */
static void on_backend(void *arg, const char *path, const char *token)
{
    struct nb *nb = arg;
    size_t rl = strlen(nb->vif_dir);
    (void)token;
    sx_stats_add(&nb->stats, NBD_WATCH_EVENTS, 1);
    if (strncmp(path, nb->vif_dir, rl) || (path[rl] != '/' && path[rl] != '\0')) {
        sx_stats_add(&nb->stats, NBD_WATCH_IGNORED, 1);   /* not ours: cannot happen */
        return;
    }
    const char *fe_s = path + rl + (path[rl] == '/');
    const char *dev_s = strchr(fe_s, '/');
    if (path[rl] == '\0' || !dev_s) {
        nb->dirty = true;
        return;
    }
    dev_s++;
    const char *key = strchr(dev_s, '/');
    size_t dev_len = key ? (size_t)(key - dev_s) : strlen(dev_s);
    unsigned fe, devid;
    if (!parse_id_n(fe_s, (size_t)(dev_s - 1 - fe_s), DOMID_FIRST_RESERVED - 1, &fe) ||
        !parse_id_n(dev_s, dev_len, 0xffff, &devid)) {
        sx_stats_add(&nb->stats, NBD_WATCH_IGNORED, 1);   /* not a vif: the listing skips it */
        return;
    }
    struct nb_vif *v = vif_find(nb, fe, devid);
    if (v)
        v->dirty = true;
    if (!v || !key)
        nb->dirty = true;
}

/* <fe>/state or <fe>/request-multicast-control of one vif (the token says which): that node
 * itself marks the vif, a node below it is counted and dropped. */
static void on_frontend(void *arg, const char *path, const char *token)
{
    struct nb_vif *v = arg;   /* valid: vif_free unwatches first, events look the token up */
    const char *node = strcmp(token, v->tok_fe) ? "request-multicast-control" : "state";
    size_t fl = strlen(v->fe_path);
    sx_stats_add(&v->nb->stats, NBD_WATCH_EVENTS, 1);
    if (strncmp(path, v->fe_path, fl) || path[fl] != '/' || strcmp(path + fl + 1, node)) {
        sx_stats_add(&v->nb->stats, NBD_WATCH_IGNORED, 1);
        return;
    }
    if (node[0] == 's')
        sx_tt_fe_event(v->tt);
    v->dirty = true;
}

static void daemon_stats(struct nb *nb)
{
    uint64_t vifs = 0, conn = 0, thr = 0, ev = 0;
    for (struct nb_vif *v = nb->vifs; v; v = v->next) {
        vifs += v->nd != NULL;
        if (v->connected) {
            conn++;
            for (unsigned i = 0; i < v->nqueues; i++) {
                thr += v->q[i].thr_started;
                ev += v->q[i].ev ? sx_evtchn_nr_bound(v->q[i].ev) : 0;
            }
        }
    }
    sx_stats_set(&nb->stats, NBD_VIFS, vifs);
    sx_stats_set(&nb->stats, NBD_CONNECTED, conn);
    sx_stats_set(&nb->stats, NBD_THREADS, thr);
    sx_stats_set(&nb->stats, NBD_MAPPED_PAGES, sx_gnt_mapped_pages(nb->gnt));
    sx_stats_set(&nb->stats, NBD_EVTCHNS, ev);
}

/* ---------------------------------------------------------------- connect / disconnect */

static void queue_teardown(struct nb *nb, struct nb_queue *q)
{
    nb_queue_stop(q);
    sx_evtchn_close(q->ev);               /* unbinds both ports */
    q->ev = NULL;
    if (q->tt_tx)
        sx_tt_q_stop(q->tt_tx, &q->tx);
    if (q->tt_rx)
        sx_tt_q_stop(q->tt_rx, &q->rx);
    q->tt_tx = q->tt_rx = NULL;
    sx_back_ring_detach(&q->tx);
    sx_back_ring_detach(&q->rx);
    if (q->tx_mem && sx_ring_unmap(nb->gnt, q->tx_mem, 0) < 0)
        sx_warn("vif%u.%u q%u: unmap tx ring failed", q->vif->fe_domid, q->vif->devid, q->id);
    if (q->rx_mem && sx_ring_unmap(nb->gnt, q->rx_mem, 0) < 0)
        sx_warn("vif%u.%u q%u: unmap rx ring failed", q->vif->fe_domid, q->vif->devid, q->id);
    q->tx_mem = q->rx_mem = NULL;
    nb_queue_free(q);
}

static void vif_disconnect(struct nb_vif *v)
{
    if (!v->connected && !v->nqueues)
        return;
    nb_ctrl_disconnect(v);
    /* Every queue thread stops before any queue is freed: they hand frames to each other's
     * steering inboxes. */
    for (unsigned i = 0; i < v->nqueues; i++)
        nb_queue_stop(&v->q[i]);
    for (unsigned i = 0; i < v->nqueues; i++)
        queue_teardown(v->nb, &v->q[i]);
    sx_stats_set(&v->stats, NBS_QUEUES, 0);
    sx_stats_set(&v->stats, NBS_MAPPED_PAGES, 0);
    if (v->connected)
        sx_info("vif%u.%u disconnected", v->fe_domid, v->devid);
    v->connected = false;
    v->nqueues = 0;
}

static int read_flag(struct nb_vif *v, const char *dir, const char *key, bool *out)
{
    uint64_t x;
    int rc = sx_xenbus_read_uint(v->nb->xb, XBT_NULL, dir, key, 0, 1, &x);
    if (rc == -ENOENT) {
        *out = false;
        return 0;
    }
    if (rc < 0) {
        sx_warn("vif%u.%u: %s/%s: bad value", v->fe_domid, v->devid, dir, key);
        return rc;
    }
    *out = x != 0;
    return 0;
}

/* xdp-headroom (Linux read_xenbus_frontend_xdp): absent is 0. Linux clamps to 0x7FFF; a value
 * that leaves no room for a frame in the page is refused here (-EINVAL). */
static int read_xdp_headroom(struct nb_vif *v, unsigned *out)
{
    uint64_t x = 0;
    int rc = sx_xenbus_read_uint(v->nb->xb, XBT_NULL, v->fe_path, "xdp-headroom", 0,
                                 NB_XDP_HEADROOM_MAX, &x);
    if (rc == -ENOENT) {
        *out = 0;
        return 0;
    }
    if (rc < 0 || x > NB_XDP_HEADROOM_PAGE_MAX) {
        sx_warn("vif%u.%u: xdp-headroom garbage or above %u", v->fe_domid, v->devid,
                NB_XDP_HEADROOM_PAGE_MAX);
        return -EINVAL;
    }
    *out = (unsigned)x;
    return 0;
}

static int queue_connect(struct nb_vif *v, struct nb_queue *q, const char *dir)
{
    struct nb *nb = v->nb;
    uint64_t txref, rxref, evtx, evrx;
    int rc;
    if ((rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, dir, "tx-ring-ref", 0, UINT32_MAX, &txref)) ||
        (rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, dir, "rx-ring-ref", 0, UINT32_MAX, &rxref))) {
        sx_warn("vif%u.%u: %s: missing or bad ring refs", v->fe_domid, v->devid, dir);
        return rc;
    }
    rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, dir, "event-channel-tx", 0, UINT32_MAX, &evtx);
    if (rc == 0) {
        rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, dir, "event-channel-rx", 0, UINT32_MAX, &evrx);
        v->split = true;
    } else if (rc == -ENOENT) {
        rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, dir, "event-channel", 0, UINT32_MAX, &evtx);
        evrx = evtx;
        v->split = false;
    }
    if (rc < 0) {
        sx_warn("vif%u.%u: %s: missing or bad event channel", v->fe_domid, v->devid, dir);
        return rc;
    }

    if ((rc = nb_queue_alloc(q)) < 0)
        return rc;
    if ((rc = sx_evtchn_open(&q->ev, nb->plat)) < 0)
        return rc;
    rc = sx_evtchn_bind_interdomain(q->ev, (domid_t)v->fe_domid, (evtchn_port_t)evtx);
    if (rc < 0) {
        sx_warn("vif%u.%u q%u: bind event channel %" PRIu64 ": %s", v->fe_domid, v->devid,
                q->id, evtx, strerror(-rc));
        return rc;
    }
    q->tx_port = q->rx_port = (evtchn_port_t)rc;
    if (v->split) {
        rc = sx_evtchn_bind_interdomain(q->ev, (domid_t)v->fe_domid, (evtchn_port_t)evrx);
        if (rc < 0) {
            sx_warn("vif%u.%u q%u: bind rx event channel %" PRIu64 ": %s", v->fe_domid,
                    v->devid, q->id, evrx, strerror(-rc));
            return rc;
        }
        q->rx_port = (evtchn_port_t)rc;
    }
    grant_ref_t r = (grant_ref_t)txref;
    if ((rc = sx_ring_map(nb->gnt, (domid_t)v->fe_domid, 0, &r, &q->tx_mem)) < 0) {
        sx_warn("vif%u.%u q%u: map tx ring ref %u: %s", v->fe_domid, v->devid, q->id, r,
                strerror(-rc));
        q->tx_mem = NULL;
        return rc;
    }
    r = (grant_ref_t)rxref;
    if ((rc = sx_ring_map(nb->gnt, (domid_t)v->fe_domid, 0, &r, &q->rx_mem)) < 0) {
        sx_warn("vif%u.%u q%u: map rx ring ref %u: %s", v->fe_domid, v->devid, q->id, r,
                strerror(-rc));
        q->rx_mem = NULL;
        return rc;
    }
    if ((rc = sx_back_ring_attach(&q->tx, q->tx_mem, SX_RING_PAGE_SIZE,
                                  sizeof(netif_tx_request_t), sizeof(netif_tx_response_t))) ||
        (rc = sx_back_ring_attach(&q->rx, q->rx_mem, SX_RING_PAGE_SIZE,
                                  sizeof(netif_rx_request_t), sizeof(netif_rx_response_t))))
        return rc;
    /* Start where the frontend's ring is: past every published response. A fresh ring says 0;
     * after a backend restart, requests it published and we never answered are taken again
     * (a tx packet may be sent twice, as after a NIC reset) and posted rx buffers stay
     * posted. Any value is only a starting point: overflow checks are relative to it. */
    RING_IDX start = SX_READ_ONCE(q->tx.sring->rsp_prod);
    q->tx.req_cons = q->tx.rsp_prod_pvt = q->tx.rsp_pushed = start;
    start = SX_READ_ONCE(q->rx.sring->rsp_prod);
    q->rx.req_cons = q->rx.rsp_prod_pvt = q->rx.rsp_pushed = start;
    q->worldfd = sx_netdev_poll_fd(v->nd, q->id);
    if (q->worldfd < 0)
        return q->worldfd;
    nb_rate_init(&q->rate, v->rate_bytes, v->rate_usecs);
    q->txq_head = q->txq_tail = 0;
    q->rxq_head = q->rxq_tail = 0;
    q->rxf_pending = 0;
    q->rx_need_slots = false;
    q->halted = false;
    q->rate_wait_ns = 0;
    if (v->tt) {
        grant_ref_t tr = (grant_ref_t)txref, rr = (grant_ref_t)rxref;
        q->tt_tx = sx_tt_q_get(v->tt, 2 * q->id, (int)q->id, "tx");
        q->tt_rx = sx_tt_q_get(v->tt, 2 * q->id + 1, (int)q->id, "rx");
        if (sx_tt_q_start(q->tt_tx, &q->tx, &tr, 1) < 0)
            q->tt_tx = NULL;
        if (sx_tt_q_start(q->tt_rx, &q->rx, &rr, 1) < 0)
            q->tt_rx = NULL;
    }
    return 0;
}

static int vif_connect(struct nb_vif *v)
{
    struct nb *nb = v->nb;
    const char *fe = v->fe_path;
    bool rx_copy;
    int rc;
    if ((rc = read_flag(v, fe, "request-rx-copy", &rx_copy)) < 0)
        return rc;
    if (!rx_copy) {
        sx_warn("vif%u.%u: frontend does not request rx-copy (flip is not supported)",
                v->fe_domid, v->devid);
        return -EOPNOTSUPP;
    }
    bool no_csum;
    if ((rc = read_flag(v, fe, "feature-rx-notify", &v->rx_notify)) ||
        (rc = read_flag(v, fe, "feature-sg", &v->sg)) ||
        (rc = read_flag(v, fe, "feature-gso-tcpv4", &v->gso4)) ||
        (rc = read_flag(v, fe, "feature-gso-tcpv6", &v->gso6)) ||
        (rc = read_flag(v, fe, "feature-no-csum-offload", &no_csum)) ||
        (rc = read_flag(v, fe, "feature-ipv6-csum-offload", &v->csum6)))
        return rc;
    if (!v->rx_notify) {
        /* Without it the frontend never tells us it posted rx buffers (Linux: mandatory). */
        sx_warn("vif%u.%u: frontend lacks feature-rx-notify", v->fe_domid, v->devid);
        return -EOPNOTSUPP;
    }
    v->csum = !no_csum;
    unsigned hr;
    if ((rc = read_xdp_headroom(v, &hr)) < 0)
        return rc;
    atomic_store(&v->xdp_headroom, hr);
    bool mc;
    if ((rc = read_flag(v, fe, "request-multicast-control", &mc)))
        return rc;
    nb_mcast_reset(&v->mcast);
    atomic_store(&v->mcast.enabled, mc);
    /* Linux netback: GSO needs SG (a super-packet never fits one page). */
    v->rx_caps = (struct sx_net_peer_caps){ .csum = v->csum, .csum_v6 = v->csum && v->csum6,
                                            .gso_tcpv4 = v->sg && v->gso4 && v->csum,
                                            .gso_tcpv6 = v->sg && v->gso6 && v->csum && v->csum6 };
    uint64_t nq = 1;
    rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, fe, "multi-queue-num-queues", 1, v->mq_offered,
                             &nq);
    if (rc == -ENOENT) {
        nq = 1;
    } else if (rc < 0) {
        sx_warn("vif%u.%u: multi-queue-num-queues missing, 0, garbage or above %u",
                v->fe_domid, v->devid, v->mq_offered);
        return -EINVAL;
    }

    v->nqueues = (unsigned)nq;
    for (unsigned i = 0; i < v->nqueues; i++) {
        struct nb_queue *q = &v->q[i];
        memset(q, 0, sizeof(*q));
        q->vif = v;
        q->id = i;
        q->worldfd = q->stopfd = -1;
    }
    for (unsigned i = 0; i < v->nqueues; i++) {
        char dir[200];
        if (v->nqueues == 1)
            snprintf(dir, sizeof(dir), "%s", fe);
        else
            snprintf(dir, sizeof(dir), "%s/queue-%u", fe, i);
        if ((rc = queue_connect(v, &v->q[i], dir)) < 0)
            goto fail;
    }
    if ((rc = nb_ctrl_connect(v)) < 0)
        goto fail;
    /* Rx steering inboxes: only a frontend with a ctrl ring can set a hash algorithm, and
     * one queue has nowhere to steer to. */
    for (unsigned i = 0; v->nqueues > 1 && v->ctrl.mem && i < v->nqueues; i++)
        if ((rc = nb_steer_alloc(&v->q[i])) < 0)
            goto fail;
    /* Only the negotiated queues receive: the world sends the others no frames. */
    if ((rc = sx_netdev_set_queues(v->nd, v->nqueues)) < 0) {
        sx_warn("vif%u.%u: world side queues: %s", v->fe_domid, v->devid, strerror(-rc));
        goto fail;
    }
    if ((rc = sx_netdev_set_offloads(v->nd, &v->rx_caps)) < 0) {
        sx_warn("vif%u.%u: world side offloads: %s", v->fe_domid, v->devid, strerror(-rc));
        goto fail;
    }
    for (unsigned i = 0; i < v->nqueues; i++)
        if ((rc = nb_queue_start(&v->q[i])) < 0)
            goto fail;
    v->connected = true;
    sx_stats_set(&v->stats, NBS_QUEUES, v->nqueues);
    sx_stats_set(&v->stats, NBS_MAPPED_PAGES, 2ull * v->nqueues);
    sx_stats_add(&v->stats, NBS_CONNECTS, 1);
    sx_info("vif%u.%u connected: %u queue(s), %s event channels, sg=%d gso4=%d gso6=%d csum=%d "
            "csum6=%d rate=%" PRIu64 "/%" PRIu64 "us",
            v->fe_domid, v->devid, v->nqueues, v->split ? "split" : "shared", v->sg, v->gso4,
            v->gso6, v->csum, v->csum6, v->rate_bytes, v->rate_usecs);
    return 0;
fail:
    vif_disconnect(v);
    return rc;
}

/* ---------------------------------------------------------------- probe / remove */

static int write_features(struct nb_vif *v)
{
    struct sx_xenbus *xb = v->nb->xb;
    /* Offered 1 unless --torture draws others (feature-rx-copy stays: netback copies). */
    static const char *const one[] = { "feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
                                       "feature-ipv6-csum-offload",
                                       "feature-split-event-channels",
                                       "feature-multicast-control",
                                       "feature-dynamic-multicast-control",
                                       "feature-ctrl-ring", "feature-xdp-headroom" };
    enum { N = sizeof(one) / sizeof(one[0]) };
    unsigned val[N], maxq = v->max_queues;
    nb_offer_pick(v, one, val, N, &maxq);
    /* GSO only where the world side takes super-frames (an uplink through AF_XDP or DPDK does
     * not: the guest segments) */
    if (v->nd->tx_no_gso)
        val[1] = val[2] = 0;
    for (int attempt = 0; attempt < 16; attempt++) {
        xs_transaction_t t;
        int rc = sx_xenbus_transaction_start(xb, &t);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < N && !rc; i++)
            rc = sx_xenbus_printf(xb, t, v->be_path, one[i], "%u", val[i]);
        if (!rc)
            rc = sx_xenbus_write(xb, t, v->be_path, "feature-rx-copy", "1");
        if (!rc)
            rc = sx_xenbus_write(xb, t, v->be_path, "feature-rx-flip", "0");
        if (!rc)
            rc = sx_xenbus_printf(xb, t, v->be_path, "multi-queue-max-queues", "%u", maxq);
        if (rc) {
            sx_xenbus_transaction_end(xb, t, true);
            return rc;
        }
        rc = sx_xenbus_transaction_end(xb, t, false);
        if (rc != -EAGAIN)
            return rc;
    }
    return -EAGAIN;
}

static void vif_free(struct nb_vif *v)
{
    struct nb *nb = v->nb;
    vif_disconnect(v);
    if (v->watching_fe)
        sx_xenbus_unwatch(nb->xb, v->tok_fe);
    if (v->watching_mc)
        sx_xenbus_unwatch(nb->xb, v->tok_mc);
    nb_mcast_destroy(&v->mcast);
    nb_hash_destroy(&v->hash);
    sx_netdev_close(v->nd);
    sx_stats_destroy(&v->stats);
    sx_tt_dev_close(v->tt);
    sx_info("vif%u.%u removed", v->fe_domid, v->devid);
    free(v);
}

static void switch_state(struct nb_vif *v, enum xenbus_state s)
{
    if (v->be_state == s)
        return;
    int rc = sx_xenbus_switch_state(v->nb->xb, v->be_path, s);
    if (rc < 0 && rc != -ENOENT)
        sx_warn("vif%u.%u: switch to %s: %s", v->fe_domid, v->devid, sx_xenbus_state_name(s),
                strerror(-rc));
    v->be_state = s;
}

/* The world side's keys as libxl writes them (script, bridge, ip, gatewaydev, mac), parsed:
 * -EINVAL with why naming the key and value. */
static int read_world(struct nb_vif *v, struct sx_world *w, char *why, size_t whylen)
{
    struct sx_xenbus *xb = v->nb->xb;
    char script[256] = "", bridge[64] = "", ip[512] = "", gw[64] = "", mac[32] = "";
    struct { const char *key; char *buf; size_t len; } keys[] = {
        { "script", script, sizeof(script) }, { "bridge", bridge, sizeof(bridge) },
        { "ip", ip, sizeof(ip) }, { "gatewaydev", gw, sizeof(gw) }, { "mac", mac, sizeof(mac) },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = sx_xenbus_read_str(xb, XBT_NULL, v->be_path, keys[i].key, keys[i].buf,
                                    keys[i].len);
        if (rc == -ENOENT) {
            keys[i].buf[0] = '\0';
        } else if (rc < 0) {
            snprintf(why, whylen, "%s: unreadable or longer than %zu bytes", keys[i].key,
                     keys[i].len - 1);
            return rc == -ERANGE || rc == -E2BIG ? -EINVAL : rc;
        }
    }
    const struct sx_world_keys k = { .script = script, .bridge = bridge, .ip = ip,
                                     .gatewaydev = gw, .mac = mac, .domid = v->fe_domid,
                                     .devid = v->devid };
    return sx_world_parse(w, &k, v->nb->o.bridge_default, why, whylen);
}

/*
 * A vif whose world side cannot be made: hotplug-error and hotplug-status=error (what Xen's
 * hotplug scripts write on failure, which libxl reports and `splitxen create -w` waits for),
 * the error node, and Closing (Linux's xenbus_dev_fatal), so the frontend gives up. The vif
 * stays listed, failed, until the toolstack removes or re-adds it; nothing else is affected.
 */
static void vif_fail_probe(struct nb_vif *v, int rc, const char *why)
{
    struct sx_xenbus *xb = v->nb->xb;
    char msg[300];
    snprintf(msg, sizeof(msg), "%s", why && *why ? why : strerror(-rc));
    sx_err("vif%u.%u: %s", v->fe_domid, v->devid, msg);
    sx_xenbus_write(xb, XBT_NULL, v->be_path, "hotplug-error", msg);
    sx_xenbus_write(xb, XBT_NULL, v->be_path, "hotplug-status", "error");
    sx_xenbus_printf(xb, XBT_NULL, v->be_path, "error", "%d %s", -rc, msg);
    v->failed = true;
    switch_state(v, XenbusStateClosing);
}

static void vif_probe(struct nb *nb, unsigned fe, unsigned devid)
{
    struct nb_vif *v = calloc(1, sizeof(*v));
    if (!v)
        return;
    v->nb = nb;
    v->fe_domid = fe;
    v->devid = devid;
    v->online = true;
    v->be_state = XenbusStateInitialising;
    nb_mcast_init(&v->mcast);
    pthread_mutex_init(&v->hash.lock, NULL);
    v->ctrl.stopfd = -1;
    v->dirty = true;
    v->next = nb->vifs;
    nb->vifs = v;   /* listed even if probing fails, so it is not retried on every scan */
    sx_xenbus_backend_path(v->be_path, sizeof(v->be_path), nb->o.domid, "vif", fe, devid);

    int rc = sx_xenbus_read_str(nb->xb, XBT_NULL, v->be_path, "frontend", v->fe_path,
                                sizeof(v->fe_path));
    if (rc < 0) {
        /* The toolstack writes the whole directory in one transaction; a vif dir without it
         * is half-removed or not ours. Build the conventional path. */
        sx_xenbus_frontend_path(v->fe_path, sizeof(v->fe_path), fe, "vif", devid);
    }
    v->tt = sx_tt_dev_open(nb->tt, SX_TT_NETIF, (domid_t)fe, devid, v->fe_path, v->be_path);
    uint64_t qmax = 0;
    v->max_queues = nb->ncpus < NB_MAX_QUEUES ? nb->ncpus : NB_MAX_QUEUES;
    if (sx_xenbus_read_uint(nb->xb, XBT_NULL, v->be_path, "queues", 1, NB_MAX_QUEUES, &qmax) == 0)
        v->max_queues = (unsigned)qmax;
    if (!v->max_queues)
        v->max_queues = 1;
    uint64_t mtu = 0;
    if (sx_xenbus_read_uint(nb->xb, XBT_NULL, v->be_path, "mtu", 68, 65535, &mtu) < 0)
        mtu = 0;   /* absent (libxl omits 1500) or bad: the world side's default */
    char rate[64];
    if (sx_xenbus_read_str(nb->xb, XBT_NULL, v->be_path, "rate", rate, sizeof(rate)) == 0 &&
        nb_rate_parse(rate, &v->rate_bytes, &v->rate_usecs) < 0) {
        sx_warn("vif%u.%u: ignoring bad rate '%s'", fe, devid, rate);
        v->rate_bytes = v->rate_usecs = 0;
    }

    if ((rc = sx_stats_create_with_gauges(&v->stats, "vif", fe, devid, nb_stat_names,
                                          nb_stat_gauges)) < 0)
        sx_warn("vif%u.%u: stats file: %s", fe, devid, strerror(-rc));

    char name[IFNAMSIZ], world[160], why[256] = "";
    snprintf(name, sizeof(name), "vif%u.%u", fe, devid);
    struct sx_world w;
    if ((rc = read_world(v, &w, why, sizeof(why))) < 0) {
        vif_fail_probe(v, rc, why);
        return;
    }
    sx_world_describe(&w, world, sizeof(world));
    static const uint8_t mac[6] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff };
    const struct sx_netdev_config nc = { .kind = sx_netdev_kind_for(&w), .name = name,
                                         .nqueues = v->max_queues, .mac = mac,
                                         .mtu = (unsigned)mtu, .world = &w, .err = why,
                                         .errlen = sizeof(why) };
    if ((rc = sx_netdev_open(&v->nd, &nc)) < 0) {
        v->nd = NULL;
        vif_fail_probe(v, rc, why);
        return;
    }
    /* the world side may offer fewer queues (an AF_XDP uplink's own) */
    if (v->nd->nqueues < v->max_queues)
        v->max_queues = v->nd->nqueues;
    if ((rc = write_features(v)) < 0 ||
        (rc = sx_xenbus_write(nb->xb, XBT_NULL, v->be_path, "hotplug-status", "connected")) < 0) {
        sx_err("vif%u.%u: writing backend keys: %s", fe, devid, strerror(-rc));
        v->failed = true;
        return;
    }
    snprintf(v->tok_fe, sizeof(v->tok_fe), "nb-fe-%u-%u", fe, devid);
    char fe_state[200];
    snprintf(fe_state, sizeof(fe_state), "%s/state", v->fe_path);
    if (sx_xenbus_watch(nb->xb, fe_state, v->tok_fe, on_frontend, v) == 0)
        v->watching_fe = true;
    /* feature-dynamic-multicast-control: the frontend may flip request-multicast-control
     * while connected (Linux xen_mcast_ctrl_changed) */
    snprintf(v->tok_mc, sizeof(v->tok_mc), "nb-mc-%u-%u", fe, devid);
    snprintf(fe_state, sizeof(fe_state), "%s/request-multicast-control", v->fe_path);
    if (sx_xenbus_watch(nb->xb, fe_state, v->tok_mc, on_frontend, v) == 0)
        v->watching_mc = true;
    /* A restarted backend finds its vif Connected with a live, Connected frontend: reconnect
     * to the rings it published without a state change (a frontend never expects Connected
     * -> InitWait). Anything else starts the handshake over from InitWait. */
    enum xenbus_state bs = XenbusStateUnknown, fs = XenbusStateUnknown;
    if (sx_xenbus_read_state(nb->xb, XBT_NULL, v->be_path, &bs) == 0 &&
        bs == XenbusStateConnected &&
        sx_xenbus_read_state(nb->xb, XBT_NULL, v->fe_path, &fs) == 0 &&
        fs == XenbusStateConnected) {
        v->be_state = XenbusStateInitWait;   /* vif_eval connects and keeps Connected */
        sx_info("vif%u.%u: %s, %s: frontend already connected, reconnecting", fe, devid,
                name, world);
        return;
    }
    rc = sx_xenbus_switch_state(nb->xb, v->be_path, XenbusStateInitWait);
    if (rc == 0)
        v->be_state = XenbusStateInitWait;
    sx_info("vif%u.%u: %s, %s, up to %u queue(s), InitWait", fe, devid, name, world,
            v->max_queues);
}

/* Level-triggered: bring the vif in line with xenstore. Returns true when it should be freed. */
static bool vif_eval(struct nb_vif *v)
{
    struct nb *nb = v->nb;
    int ex = sx_xenbus_exists(nb->xb, XBT_NULL, v->be_path, NULL);
    if (ex == 0)
        return true;            /* the toolstack removed the device */
    uint64_t online = 1;
    enum xenbus_state fs = XenbusStateUnknown;
    int rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, v->be_path, "online", 0, 1, &online);
    if (rc == 0 && online == 0) {
        if (v->online) {
            sx_info("vif%u.%u: online=0: unplugging", v->fe_domid, v->devid);
            vif_disconnect(v);
            sx_netdev_close(v->nd);
            v->nd = NULL;
            v->online = false;
            v->be_state = XenbusStateUnknown;   /* force the write */
            switch_state(v, XenbusStateClosed);
        }
        /* --check: the frontend closes after this; its rings are probed a second later */
        if (v->tt && sx_xenbus_read_state(nb->xb, XBT_NULL, v->fe_path, &fs) == 0)
            sx_tt_fe_state(v->tt, nb->xb, fs, v->be_state);
        return false;
    }
    if (!v->online) {
        /* Unplugged, then the toolstack re-added the device before we saw it go (removal
         * and re-creation coalesced into one scan): drop this one and probe afresh. */
        v->nb->dirty = true;
        return true;
    }
    if (!v->nd)
        return false;           /* probe failed: nothing to serve */

    if (sx_xenbus_read_state(nb->xb, XBT_NULL, v->fe_path, &fs) < 0)
        fs = XenbusStateUnknown;   /* garbage: treat like a vanished frontend */
    sx_tt_fe_state(v->tt, nb->xb, fs, v->be_state);
    switch (fs) {
    case XenbusStateUnknown:
        /* No frontend (yet, or any more: its domain vanished). */
        if (v->connected) {
            vif_disconnect(v);
            switch_state(v, XenbusStateClosed);
        }
        break;
    case XenbusStateInitialising:
    case XenbusStateInitWait:
        /* After Closed: prepare for a reconnect. While connected: a frontend starting over
         * (kexec, a reboot in the same domain, or Closed and Initialising read as one change)
         * has left the rings we map: let go of them too. */
        if (v->be_state == XenbusStateClosed || v->be_state == XenbusStateClosing ||
            v->connected) {
            vif_disconnect(v);
            v->failed = false;
            if (v->tt && write_features(v) < 0)   /* torture: a new feature set a connection */
                sx_warn("vif%u.%u: writing the features", v->fe_domid, v->devid);
            switch_state(v, XenbusStateInitWait);
        }
        break;
    case XenbusStateInitialised:
    case XenbusStateConnected:
        if (v->connected) {
            bool mc;
            if (read_flag(v, v->fe_path, "request-multicast-control", &mc) == 0)
                atomic_store(&v->mcast.enabled, mc);
            /* back from Reconfiguring (Reconfigured -> Connected) */
            if (v->be_state == XenbusStateReconfigured)
                switch_state(v, XenbusStateConnected);
        }
        if (!v->connected && !v->failed && v->be_state == XenbusStateInitWait) {
            rc = vif_connect(v);
            if (rc == 0) {
                switch_state(v, XenbusStateConnected);
            } else {
                v->failed = true;
                sx_xenbus_printf(nb->xb, XBT_NULL, v->be_path, "error", "%d connecting: %s",
                                 -rc, strerror(-rc));
                switch_state(v, XenbusStateClosing);
            }
        }
        break;
    case XenbusStateReconfiguring:
        /* Linux netfront toggling XDP: re-read xdp-headroom, answer Reconfigured. */
        if (v->connected && v->be_state != XenbusStateReconfigured) {
            unsigned hr;
            if (read_xdp_headroom(v, &hr) < 0) {
                vif_disconnect(v);
                v->failed = true;
                sx_xenbus_printf(nb->xb, XBT_NULL, v->be_path, "error",
                                 "%d reconfiguring: bad xdp-headroom", EINVAL);
                switch_state(v, XenbusStateClosing);
                break;
            }
            atomic_store(&v->xdp_headroom, hr);
            switch_state(v, XenbusStateReconfigured);
        }
        break;
    case XenbusStateClosing:
        vif_disconnect(v);
        switch_state(v, XenbusStateClosing);
        break;
    case XenbusStateClosed:
    default:
        vif_disconnect(v);
        switch_state(v, XenbusStateClosed);
        break;
    }
    return false;
}

static void scan(struct nb *nb)
{
    struct xs_handle *xs = sx_xenbus_xs(nb->xb);
    for (struct nb_vif *v = nb->vifs; v; v = v->next)
        v->gone = true;
    unsigned nfe = 0;
    char **fes = xs_directory(xs, XBT_NULL, nb->vif_dir, &nfe);
    for (unsigned i = 0; fes && i < nfe; i++) {
        char *end;
        unsigned long fe = strtoul(fes[i], &end, 10);
        if (*end || end == fes[i] || fe >= DOMID_FIRST_RESERVED)
            continue;
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/%lu", nb->vif_dir, fe);
        unsigned ndev = 0;
        char **devs = xs_directory(xs, XBT_NULL, dir, &ndev);
        for (unsigned j = 0; devs && j < ndev; j++) {
            unsigned long dev = strtoul(devs[j], &end, 10);
            if (*end || end == devs[j] || dev > 0xffff)
                continue;
            struct nb_vif *v = vif_find(nb, (unsigned)fe, (unsigned)dev);
            if (v) {
                v->gone = false;
                continue;
            }
            /* The toolstack writes the device directory in one transaction, state included;
             * a writer that does not is done only once state is there (it comes last). */
            char be[128];
            sx_xenbus_backend_path(be, sizeof(be), nb->o.domid, "vif", (unsigned)fe,
                                   (unsigned)dev);
            if (sx_xenbus_exists(nb->xb, XBT_NULL, be, "state") == 1)
                vif_probe(nb, (unsigned)fe, (unsigned)dev);
        }
        free(devs);
    }
    free(fes);
}

/* Evaluate the vifs an event named (each once), free those that are gone. */
static void sweep(struct nb *nb)
{
    struct nb_vif **pp = &nb->vifs;
    bool changed = false;
    while (*pp) {
        struct nb_vif *v = *pp;
        bool gone = v->gone;
        if (!gone && v->dirty) {
            v->dirty = false;   /* an event from here on marks it again */
            sx_stats_add(&nb->stats, NBD_EVALS, 1);
            gone = vif_eval(v);
            changed = true;
        }
        if (gone) {
            *pp = v->next;
            vif_free(v);
            changed = true;
            continue;
        }
        pp = &v->next;
    }
    if (changed)
        daemon_stats(nb);
}

/* --torture: what is due now on a connected vif. A reconnect is what a restarted daemon does to
 * the data queues (rings, event channels and buffers dropped and taken again from the
 * frontend's keys; the ctrl ring, hashing and multicast state stay); a flap rewrites the state
 * node with the state it holds. */
static void vif_torture(struct nb_vif *v)
{
    switch (sx_tt_ctl_due(v->tt)) {
    case SX_TT_CTL_RECONNECT: {
        int rc = 0;
        for (unsigned i = 0; i < v->nqueues; i++)
            nb_queue_stop(&v->q[i]);
        for (unsigned i = 0; i < v->nqueues; i++)
            queue_teardown(v->nb, &v->q[i]);
        for (unsigned i = 0; i < v->nqueues && rc == 0; i++) {
            struct nb_queue *q = &v->q[i];
            char dir[200];
            memset(q, 0, sizeof(*q));
            q->vif = v;
            q->id = i;
            q->worldfd = q->stopfd = -1;
            if (v->nqueues == 1)
                snprintf(dir, sizeof(dir), "%s", v->fe_path);
            else
                snprintf(dir, sizeof(dir), "%s/queue-%u", v->fe_path, i);
            rc = queue_connect(v, q, dir);
        }
        for (unsigned i = 0; rc == 0 && v->nqueues > 1 && v->ctrl.mem && i < v->nqueues; i++)
            rc = nb_steer_alloc(&v->q[i]);
        for (unsigned i = 0; rc == 0 && i < v->nqueues; i++)
            rc = nb_queue_start(&v->q[i]);
        if (rc < 0) {
            sx_warn("vif%u.%u: torture reconnect: %s", v->fe_domid, v->devid, strerror(-rc));
            vif_disconnect(v);
            v->failed = true;
            switch_state(v, XenbusStateClosing);
        }
        return;
    }
    case SX_TT_CTL_FLAP:
        sx_tt_flap(v->nb->xb, v->be_path, v->be_state);
        return;
    default:
        return;
    }
}

/* ---------------------------------------------------------------- daemon */

int nb_open(struct nb **out, const struct nb_opts *o)
{
    struct nb *nb = calloc(1, sizeof(*nb));
    if (!nb)
        return -ENOMEM;
    nb->o = *o;
    if (!nb->o.bridge_default)
        nb->o.bridge_default = "xenbr0";
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nb->ncpus = n > 0 ? (unsigned)n : 1;
    int rc = sx_plat_open(&nb->plat, (enum sx_plat_kind)o->platform, (domid_t)o->domid,
                          o->core_path);
    if (rc < 0) {
        sx_err("platform open: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = sx_gnt_open(&nb->gnt, nb->plat)) < 0) {
        sx_err("grant handle: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = sx_xenbus_open(&nb->xb, nb->plat, o->xenstored_path)) < 0) {
        sx_err("xenstore: %s", strerror(-rc));
        goto fail;
    }
    if (sx_tt_on(&o->tt) && (rc = sx_tt_open(&nb->tt, &o->tt, nb->gnt)) < 0)
        goto fail;
    snprintf(nb->vif_dir, sizeof(nb->vif_dir), "/local/domain/%u/backend/vif", o->domid);
    if ((rc = sx_stats_create_with_gauges(&nb->stats, "netback", o->domid, 0, nbd_names,
                                          nbd_gauges)) < 0)
        sx_warn("daemon stats file: %s", strerror(-rc));
    if ((rc = sx_xenbus_watch(nb->xb, nb->vif_dir, "nb-vifs", on_backend, nb)) < 0) {
        sx_err("watch %s: %s", nb->vif_dir, strerror(-rc));
        goto fail;
    }
    nb->dirty = true;
    *out = nb;
    return 0;
fail:
    nb_close(nb);
    return rc;
}

int nb_step(struct nb *nb, int timeout_ms)
{
    int rc = sx_xenbus_dispatch(nb->xb, timeout_ms);
    if (rc == -ENOTCONN) {
        sx_err("lost the connection to xenstored");
        return rc;
    }
    if (nb->dirty) {
        nb->dirty = false;
        sx_stats_add(&nb->stats, NBD_RESCANS, 1);
        scan(nb);   /* new vifs come marked */
    }
    sweep(nb);
    if (nb->tt) {
        for (struct nb_vif *v = nb->vifs; v; v = v->next)
            if (v->connected)
                vif_torture(v);
        sx_tt_tick(nb->tt, nb->xb);
    }
    sx_stats_add(&nb->stats, NBD_ROUNDS, 1);   /* after the evaluations: tests wait for it */
    return 0;
}

int nb_run(struct nb *nb)
{
    while (!atomic_load(&nb->stop)) {
        int rc = nb_step(nb, 200);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int nb_count_vifs(const struct nb *nb)
{
    int n = 0;
    for (const struct nb_vif *v = nb->vifs; v; v = v->next)
        n++;
    return n;
}

void nb_close(struct nb *nb)
{
    if (!nb)
        return;
    while (nb->vifs) {
        struct nb_vif *v = nb->vifs;
        nb->vifs = v->next;
        vif_free(v);
    }
    sx_tt_close(nb->tt);
    sx_stats_destroy(&nb->stats);
    sx_xenbus_close(nb->xb);
    sx_gnt_close(nb->gnt);
    sx_plat_close(nb->plat);
    free(nb);
}
