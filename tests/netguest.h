/*
 * Test fixture: splitxen-netback's daemon (netback/xenbus.c and the data path) running
 * in-process on an in-process sim core with xenstored, inside a private network namespace, and
 * guests that play netfront by hand against it: each vif's tx and rx rings, data pages and
 * event channel are the test's, requests go straight into the shared rings.
 *
 * A vif is opened (nv_open: the toolstack's directory, the frontend's handshake) and closed
 * (nv_close: unplugged with online=0, both directories removed) by the test that uses it, so
 * no test depends on another one's vifs. Waits are on the event expected (a state seen through
 * a watch, a response, a counter) with a deadline; kernel operations (a TAP, a bridge port)
 * take the rtnl lock, which other tests' namespace teardown can hold for seconds, hence the
 * generous deadlines.
 *
 * Needs root (TAP devices, a network namespace): netenv_start skips (exit 77) otherwise.
 */
#ifndef SPLITXEN_TEST_NETGUEST_H
#define SPLITXEN_TEST_NETGUEST_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "netback/common.h"
#include "tests/simenv.h"
#include "tests/sxtest.h"
#include "xen-core/core.h"

/* ------------------------------------------------------------------ the daemon */

#define NV_BRIDGE "sxhbr0"

struct netenv;

/* Writes more toolstack keys into vif dom/dev's backend directory be (0 or -errno): called by
 * nv_be_keys after the default ones (bridge=NV_BRIDGE, queues) and before state=1. */
typedef int nv_be_keys_fn(struct netenv *e, const char *be, domid_t dom, unsigned dev,
                          void *arg);

struct netenv {
    struct simenv env;
    struct sxc_conn *ctl;          /* dom0 on the core: creates and destroys domains */
    struct sx_xenbus *xb;          /* dom0's xenstore: the toolstack (and frontend keys) */
    struct nb *nb;
    pthread_t thr;
    bool started;
    struct sx_stats dst;           /* the daemon's counters (netback-0-0) */
    bool dst_open;
    /* Every vif's extra backend keys (e.g. another world: script=vif-route, ip=, gatewaydev=),
     * NULL for none: set after netenv_start, before the first vif is opened. */
    nv_be_keys_fn *be_keys;
    void *be_keys_arg;
};

static inline void *netenv_main(void *arg)
{
    nb_run(((struct netenv *)arg)->nb);
    return NULL;
}

/* Tear down what netenv_start built (also a failed start). Idempotent. */
static inline void netenv_stop(struct netenv *e)
{
    if (e->started) {
        atomic_store(&e->nb->stop, true);
        pthread_join(e->thr, NULL);
        e->started = false;
    }
    nb_close(e->nb);
    e->nb = NULL;
    if (e->dst_open)
        sx_stats_close_ro(&e->dst);
    e->dst_open = false;
    sx_xenbus_close(e->xb);
    e->xb = NULL;
    sxc_disconnect(e->ctl);
    e->ctl = NULL;
    if (e->env.srv)
        simenv_stop(&e->env);
}

/* The daemon's options the fixture starts from: sim, dom0, bridge xenbr0, spin_ns of polling,
 * --check/--torture off (the core's socket is filled in by netenv_start_opts). */
static inline struct nb_opts netenv_opts(uint64_t spin_ns)
{
    struct nb_opts o = { .platform = SX_PLAT_SIM, .domid = 0, .bridge_default = "xenbr0",
                         .spin_ns = spin_ns };
    sx_tt_opts_default(&o.tt);
    return o;
}

/* Enter a private network namespace (skips without root or TAP), start the core, xenstored
 * and the daemon with options o on a thread of its own. 0 or -errno (everything released on
 * failure). */
static inline int netenv_start_opts(struct netenv *e, const struct nb_opts *opts)
{
    memset(e, 0, sizeof(*e));
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        sx_test_skip("no /dev/net/tun");
    if (unshare(CLONE_NEWNET) != 0)
        sx_test_skip("cannot unshare a network namespace (need root)");
    /* quieten the bridge: no IPv6 autoconfiguration chatter flooded to every vif */
    static const char *const v6[] = { "/proc/sys/net/ipv6/conf/all/disable_ipv6",
                                       "/proc/sys/net/ipv6/conf/default/disable_ipv6" };
    for (int i = 0; i < 2; i++) {
        int fd = open(v6[i], O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0) { /* best effort */
            }
            close(fd);
        }
    }
    int rc = -EIO;
    char p[256];
    if (simenv_start(&e->env, true) < 0 || sxc_connect(&e->ctl, e->env.sock, 0) < 0)
        goto fail;
    sx_xenstored_path(p, sizeof(p), 0);
    if ((rc = sx_xenbus_open(&e->xb, NULL, p)) < 0)
        goto fail;
    struct nb_opts o = *opts;
    o.core_path = e->env.sock;
    if ((rc = nb_open(&e->nb, &o)) < 0)
        goto fail;
    if ((rc = -pthread_create(&e->thr, NULL, netenv_main, e)) < 0)
        goto fail;
    e->started = true;
    snprintf(p, sizeof(p), "%s/stats/netback-0-0", e->env.dir);
    if ((rc = sx_stats_open_ro(&e->dst, p)) < 0)
        goto fail;
    e->dst_open = true;
    return 0;
fail:
    fprintf(stderr, "netenv_start: %s\n", strerror(rc < 0 ? -rc : EIO));
    netenv_stop(e);
    return rc < 0 ? rc : -EIO;
}

/* netenv_start_opts with netenv_opts(spin_ns). */
static inline int netenv_start(struct netenv *e, uint64_t spin_ns)
{
    struct nb_opts o = netenv_opts(spin_ns);
    return netenv_start_opts(e, &o);
}

static inline uint64_t netenv_stat(const struct netenv *e, const char *name)
{
    return sx_stats_get(&e->dst, name);
}

/* Wait until the daemon's counter name reaches at least want (deadline ms); its value. */
static inline uint64_t netenv_stat_wait(const struct netenv *e, const char *name, uint64_t want,
                                        int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while ((v = netenv_stat(e, name)) < want && sx_now_ms() < end)
        usleep(1000);
    return v;
}

/* ------------------------------------------------------------------ a guest */

struct netguest {
    struct netenv *e;
    domid_t dom;
    struct sx_plat *p;
    struct sx_gntshr *gs;
    struct sx_evtchn *ev;
    bool alive;
};

static inline int netguest_open(struct netenv *e, struct netguest *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    g->e = e;
    int d = sxc_domain_create(e->ctl, name, SXD_TYPE_PV, 16, 1, false);
    if (d < 0)
        return d;
    g->dom = (domid_t)d;
    g->alive = true;
    if (!(g->p = simenv_plat(&e->env, g->dom)))
        return -EIO;
    int rc;
    if ((rc = sx_gntshr_open(&g->gs, g->p)) < 0 || (rc = sx_evtchn_open(&g->ev, g->p)) < 0)
        return rc;
    return 0;
}

/* Destroy the domain, then close its handles. NULL-safe, idempotent. */
static inline void netguest_close(struct netguest *g)
{
    if (!g || !g->e)
        return;
    if (g->alive)
        sxc_domain_destroy(g->e->ctl, g->dom);
    g->alive = false;
    sx_evtchn_close(g->ev);
    sx_gntshr_close(g->gs);
    sx_plat_close(g->p);
    g->ev = NULL;
    g->gs = NULL;
    g->p = NULL;
    g->e = NULL;
}

/* ------------------------------------------------------------------ a vif */

#define NV_DATA_PAGES 4
#define NV_RX_PAGES 8

struct netvif {
    struct netguest *g;
    unsigned dev;
    char be[128], fe[128];
    void *txmem, *rxmem, *data, *rxbuf;
    grant_ref_t txref, rxref, drefs[NV_DATA_PAGES], rxrefs[NV_RX_PAGES];
    struct sx_front_ring tx, rx;
    int port;
    struct sx_stats st;
    bool st_open;
    uint16_t next_id;
};

/* The backend state of dir, waited for through a watch (deadline ms). 0 or -ETIMEDOUT. */
static inline int nv_wait_state(struct netenv *e, const char *dir, enum xenbus_state want, int ms)
{
    enum xenbus_state seen = XenbusStateUnknown;
    int rc = sx_xenbus_wait_state(e->xb, dir, want, ms, &seen);
    if (rc < 0)
        fprintf(stderr, "%s/state: %s, wanted %s\n", dir, sx_xenbus_state_name((int)seen),
                sx_xenbus_state_name((int)want));
    return rc;
}

static inline uint64_t nv_stat(const struct netvif *t, const char *name)
{
    return sx_stats_get(&t->st, name);
}

/* Wait until t's counter name reaches at least want (deadline ms); its value. */
static inline uint64_t nv_stat_wait(const struct netvif *t, const char *name, uint64_t want,
                                    int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while ((v = nv_stat(t, name)) < want && sx_now_ms() < end)
        usleep(1000);
    return v;
}

/* The toolstack's keys for vif dom/dev in backend directory be, offering `queues` queues:
 * frontend, online, bridge, queues, then e->be_keys' own. state=1, which makes the daemon
 * look at the vif, is left to the caller. 0 or -errno. */
static inline int nv_be_keys(struct netenv *e, const char *be, const char *fe, domid_t dom,
                             unsigned dev, unsigned queues)
{
    int rc;
    if ((rc = sx_xenbus_write(e->xb, XBT_NULL, be, "frontend", fe)) ||
        (rc = sx_xenbus_printf(e->xb, XBT_NULL, be, "frontend-id", "%u", dom)) ||
        (rc = sx_xenbus_write(e->xb, XBT_NULL, be, "online", "1")) ||
        (rc = sx_xenbus_write(e->xb, XBT_NULL, be, "bridge", NV_BRIDGE)) ||
        (rc = sx_xenbus_printf(e->xb, XBT_NULL, be, "queues", "%u", queues)))
        return rc;
    return e->be_keys ? e->be_keys(e, be, dom, dev, e->be_keys_arg) : 0;
}

/* Called by nv_open_ex just before the frontend says Connected (extra setup), when set. */
typedef int nv_pre_connect_fn(struct netvif *t, void *arg);

/* Toolstack + frontend handshake for vif g->dom/dev, one queue offered (nv_be_keys). extra_key /
 * extra_val (may be NULL) are written into the frontend directory last, then pre (may be
 * NULL) runs, then Connected; want is the backend state to wait for (Connected for a good
 * handshake). 0 or -errno. */
static inline int nv_open_ex(struct netvif *t, struct netguest *g, unsigned dev,
                             const char *extra_key, const char *extra_val,
                             nv_pre_connect_fn *pre, void *pre_arg, enum xenbus_state want)
{
    struct sx_xenbus *xb = g->e->xb;
    memset(t, 0, sizeof(*t));
    t->g = g;
    t->dev = dev;
    t->port = -1;
    sx_xenbus_backend_path(t->be, sizeof(t->be), 0, "vif", g->dom, dev);
    sx_xenbus_frontend_path(t->fe, sizeof(t->fe), g->dom, "vif", dev);
    int rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "backend", t->be)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "backend-id", "0")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "mac", "00:16:3e:00:00:01")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "state", "1")) ||
        (rc = nv_be_keys(g->e, t->be, t->fe, g->dom, dev, 1)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "state", "1")))
        return rc;
    if ((rc = nv_wait_state(g->e, t->be, XenbusStateInitWait, 20000)))
        return rc;
    char path[256];
    snprintf(path, sizeof(path), "%s/stats/vif-%u-%u", g->e->env.dir, g->dom, dev);
    if ((rc = sx_stats_open_ro(&t->st, path)))
        return rc;
    t->st_open = true;
    if ((rc = sx_gntshr_share(g->gs, 0, 1, true, &t->txref, &t->txmem)) ||
        (rc = sx_gntshr_share(g->gs, 0, 1, true, &t->rxref, &t->rxmem)) ||
        (rc = sx_gntshr_share(g->gs, 0, NV_DATA_PAGES, false, t->drefs, &t->data)) ||
        (rc = sx_gntshr_share(g->gs, 0, NV_RX_PAGES, true, t->rxrefs, &t->rxbuf)))
        return rc;
    sx_front_ring_init(&t->tx, t->txmem, 4096, sizeof(netif_tx_request_t),
                       sizeof(netif_tx_response_t));
    sx_front_ring_init(&t->rx, t->rxmem, 4096, sizeof(netif_rx_request_t),
                       sizeof(netif_rx_response_t));
    if ((t->port = sx_evtchn_bind_unbound(g->ev, 0)) < 0)
        return t->port;
    /* A valid frame in every data page: broadcast, local experimental ethertype. */
    for (unsigned i = 0; i < NV_DATA_PAGES; i++) {
        uint8_t *f = (uint8_t *)t->data + i * 4096;
        memset(f, 0xff, 6);
        memcpy(f + 6, (uint8_t[]){ 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 }, 6);
        f[12] = 0x88;
        f[13] = 0xb5;
        for (unsigned j = 14; j < 4096; j++)
            f[j] = (uint8_t)j;
    }
    if ((rc = sx_xenbus_printf(xb, XBT_NULL, t->fe, "tx-ring-ref", "%u", t->txref)) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, t->fe, "rx-ring-ref", "%u", t->rxref)) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, t->fe, "event-channel", "%d", t->port)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "request-rx-copy", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "feature-rx-notify", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "feature-sg", "1")))
        return rc;
    if (extra_key && (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, extra_key, extra_val)))
        return rc;
    if (pre && (rc = pre(t, pre_arg)))
        return rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "state", "4")))
        return rc;
    return nv_wait_state(g->e, t->be, want, 20000);
}

static inline int nv_open(struct netvif *t, struct netguest *g, unsigned dev)
{
    return nv_open_ex(t, g, dev, NULL, NULL, NULL, NULL, XenbusStateConnected);
}

/* Unplug as the toolstack does (online=0, state 5), wait for Closed, remove both directories,
 * give the rings and pages back. A vif the test unplugged itself (online=0, Closed) is only
 * removed. NULL-safe, idempotent. */
static inline void nv_close(struct netvif *t)
{
    if (!t || !t->g)
        return;
    struct netenv *e = t->g->e;
    if (e && t->be[0] && sx_xenbus_exists(e->xb, XBT_NULL, t->be, "state") == 1) {
        uint64_t online = 1;
        enum xenbus_state st = XenbusStateUnknown;
        bool unplugged =
            sx_xenbus_read_uint(e->xb, XBT_NULL, t->be, "online", 0, 1, &online) == 0 &&
            online == 0 && sx_xenbus_read_state(e->xb, XBT_NULL, t->be, &st) == 0 &&
            st == XenbusStateClosed;
        if (!unplugged) {
            sx_xenbus_write(e->xb, XBT_NULL, t->be, "online", "0");
            sx_xenbus_write(e->xb, XBT_NULL, t->be, "state", "5");
            nv_wait_state(e, t->be, XenbusStateClosed, 20000);
        }
        sx_xenbus_rm(e->xb, XBT_NULL, t->be, NULL);
        sx_xenbus_rm(e->xb, XBT_NULL, t->fe, NULL);
    }
    if (t->st_open)
        sx_stats_close_ro(&t->st);
    t->st_open = false;
    if (t->g->ev && t->port >= 0)
        sx_evtchn_unbind(t->g->ev, (evtchn_port_t)t->port);
    t->port = -1;
    t->g = NULL;
}

static inline void nv_put(struct netvif *t, grant_ref_t gref, uint16_t off, uint16_t size,
                          uint16_t flags)
{
    netif_tx_request_t r = { .gref = gref, .offset = off, .flags = flags, .id = t->next_id++,
                             .size = size };
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->tx, &r), 0);
}

static inline void nv_put_raw(struct netvif *t, const void *req)
{
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->tx, req), 0);
}

/* An extra-info slot (one netif_extra_info_t in a tx request slot). */
static inline void nv_put_extra(struct netvif *t, const netif_extra_info_t *ex)
{
    netif_tx_request_t raw;
    memset(&raw, 0, sizeof(raw));
    memcpy(&raw, ex, sizeof(*ex));
    nv_put_raw(t, &raw);
}

/* Publish and kick: the backend may be spinning or asleep with req_event armed, a kick
 * covers both. */
static inline void nv_push(struct netvif *t)
{
    sx_front_ring_push(&t->tx);
    sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
}

/* Collect up to n tx responses within ms; returns how many. */
static inline int nv_rsp(struct netvif *t, netif_tx_response_t *rsp, int n, int ms)
{
    int got = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    while (got < n && sx_now_ms() < end) {
        int k = sx_front_ring_take_rsp(&t->tx, rsp + got, (unsigned)(n - got));
        if (k < 0)
            break;
        got += k;
        if (!k)
            usleep(500);
    }
    return got;
}

/* A well-formed 60-byte packet from data page 0: one OKAY response. */
static inline bool nv_send_ok(struct netvif *t)
{
    nv_put(t, t->drefs[0], 0, 60, 0);
    nv_push(t);
    netif_tx_response_t r;
    return nv_rsp(t, &r, 1, 2000) == 1 && r.status == NETIF_RSP_OKAY;
}

/* Post rx buffer i (id i, page i) for every i; the backend fills them with frames. */
static inline void nv_post_rx(struct netvif *t)
{
    for (unsigned i = 0; i < NV_RX_PAGES; i++) {
        netif_rx_request_t r = { .id = (uint16_t)i, .gref = t->rxrefs[i] };
        CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->rx, &r), 0);
    }
    sx_front_ring_push(&t->rx);
    sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
}

/* ------------------------------------------------------------------ the world side */

#include <poll.h>
#include "netdev/tap.h"

/* A TAP of the test's own on the bridge: it sees what the vifs send (flooded broadcasts) and
 * can send them frames. NULL on failure. */
static inline struct sx_tap *nv_world_open(const char *name)
{
    struct sx_tap_config tc = { .name = name, .nqueues = 1, .bridge = NV_BRIDGE, .up = true };
    struct sx_tap *t = NULL;
    return sx_tap_open(&tc, &t) == 0 ? t : NULL;
}

/* Read frames off the world TAP for up to ms: each with ethertype `et` is copied to out (up to
 * max bytes, the frame without its vnet header) and its length returned; frames of other types
 * are skipped. 0 when none came. */
static inline int nv_world_recv(struct sx_tap *w, uint16_t et, uint8_t *out, size_t max, int ms)
{
    static uint8_t buf[SX_TAP_VNET_HDR_LEN + 65536];
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    int fd = sx_tap_fd(w, 0);
    for (;;) {
        uint64_t now = sx_now_ms();
        if (now >= end)
            return 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < SX_TAP_VNET_HDR_LEN + 14)
            continue;
        const uint8_t *f = buf + SX_TAP_VNET_HDR_LEN;
        size_t len = (size_t)n - SX_TAP_VNET_HDR_LEN;
        if (f[12] != (et >> 8) || f[13] != (et & 0xff))
            continue;
        memcpy(out, f, len < max ? len : max);
        return (int)len;
    }
}

/* ------------------------------------------------------------------ a ctrl ring */

struct nv_ctrl {
    struct netguest *g;
    void *mem, *pg;
    grant_ref_t ref, pgref;
    struct sx_front_ring r;
    int port;
    uint16_t id;
};

/* Offer a ctrl ring in frontend directory fe of guest g (before Connected). 0 or -errno. */
static inline int nv_ctrl_offer(struct nv_ctrl *c, struct netguest *g, const char *fe)
{
    int rc;
    memset(c, 0, sizeof(*c));
    c->g = g;
    if ((rc = sx_gntshr_share(g->gs, 0, 1, true, &c->ref, &c->mem)) ||
        (rc = sx_gntshr_share(g->gs, 0, 1, false, &c->pgref, &c->pg)))
        return rc;
    if ((rc = sx_front_ring_init(&c->r, c->mem, 4096, sizeof(struct xen_netif_ctrl_request),
                                 sizeof(struct xen_netif_ctrl_response))))
        return rc;
    if ((c->port = sx_evtchn_bind_unbound(g->ev, 0)) < 0)
        return c->port;
    if ((rc = sx_xenbus_printf(g->e->xb, XBT_NULL, fe, "ctrl-ring-ref", "%u", c->ref)) ||
        (rc = sx_xenbus_printf(g->e->xb, XBT_NULL, fe, "event-channel-ctrl", "%d", c->port)))
        return rc;
    return 0;
}

/* For nv_open_ex: offer the ctrl ring arg (a struct nv_ctrl). */
static inline int nv_ctrl_pre_connect(struct netvif *t, void *arg)
{
    return nv_ctrl_offer(arg, t->g, t->fe);
}

/* One control request; the response's status (data in *data), or 0xdead on no answer within
 * 2 s, 0xbad on an answer that does not match the request. */
static inline uint32_t nv_ctrl_req(struct nv_ctrl *c, uint16_t type, uint32_t d0, uint32_t d1,
                                   uint32_t d2, uint32_t *data)
{
    struct xen_netif_ctrl_request rq = { .id = ++c->id, .type = type, .data = { d0, d1, d2 } };
    if (sx_front_ring_put_req(&c->r, &rq) != 0)
        return 0xbad;
    sx_front_ring_push(&c->r);
    sx_evtchn_notify(c->g->ev, (evtchn_port_t)c->port);
    struct xen_netif_ctrl_response rs;
    uint64_t end = sx_now_ms() + 2000;
    while (sx_now_ms() < end) {
        if (sx_front_ring_take_rsp(&c->r, &rs, 1) == 1) {
            if (rs.id != c->id || rs.type != type)
                return 0xbad;
            if (data)
                *data = rs.data;
            return rs.status;
        }
        usleep(500);
    }
    return 0xdead;
}

#endif
