/*
 * The hostile-frontend fixture of netback's in-process tests (netback_hostile_test.c,
 * check_test.c): the real daemon (nb_open/nb_run) on an in-process sim core with xenstored,
 * inside a private network namespace, and guests that play the toolstack and the frontend by
 * hand: write the vif directories and keys, share ring and data pages, put raw netif requests
 * on the rings. Needs root (TAP, unshare): nb_hostile_start skips (exit 77) otherwise.
 */
#ifndef SPLITXEN_TESTS_NETBACK_HOSTILE_H
#define SPLITXEN_TESTS_NETBACK_HOSTILE_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "netback/common.h"
#include "clock.h"
#include "xen-core/core.h"

static struct simenv env;
static struct nb *nb;
static pthread_t nb_thr;
static struct sx_xenbus *xb;       /* dom0's: plays the toolstack and writes frontend keys */
static struct sxc_conn *ctl;

struct guest {
    domid_t dom;
    struct sx_plat *p;
    struct sx_gntshr *gs;
    struct sx_evtchn *ev;
};

#define TF_DATA_PAGES 4
#define TF_RX_PAGES 8
struct tf {
    struct guest *g;
    unsigned dev;
    char be[128], fe[128];
    void *txmem, *rxmem, *data, *rxbuf;
    grant_ref_t txref, rxref, drefs[TF_DATA_PAGES], rxrefs[TF_RX_PAGES];
    struct sx_front_ring tx, rx;
    int port;
    struct sx_stats st;
    uint16_t next_id;
};
/* Called by tf_open_ex just before the frontend says Connected (extra setup), when set. */
static int (*tf_pre_connect)(struct tf *t);

static inline void *nb_main(void *arg)
{
    (void)arg;
    nb_run(nb);
    return NULL;
}

static inline int guest_open(struct guest *g, const char *name)
{
    int d = sxc_domain_create(ctl, name, SXD_TYPE_PV, 16, 1, false);
    if (d < 0)
        return d;
    g->dom = (domid_t)d;
    if (!(g->p = simenv_plat(&env, g->dom)))
        return -1;
    if (sx_gntshr_open(&g->gs, g->p) || sx_evtchn_open(&g->ev, g->p))
        return -1;
    return 0;
}

static inline void guest_close(struct guest *g)
{
    sx_evtchn_close(g->ev);
    sx_gntshr_close(g->gs);
    sx_plat_close(g->p);
}

static inline int wait_state(const char *dir, enum xenbus_state want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    enum xenbus_state s = XenbusStateUnknown;
    do {
        if (sx_xenbus_read_state(xb, XBT_NULL, dir, &s) == 0 && s == want)
            return 0;
        usleep(5000);
    } while (sx_now_ms() < end);
    fprintf(stderr, "%s/state: %s, wanted %s\n", dir, sx_xenbus_state_name((int)s),
            sx_xenbus_state_name((int)want));
    return -ETIMEDOUT;
}

static inline uint64_t st_get(struct tf *t, const char *name)
{
    return sx_stats_get(&t->st, name);
}

/* Wait until counter name reaches at least want. */
static inline uint64_t st_wait(struct tf *t, const char *name, uint64_t want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while ((v = st_get(t, name)) < want && sx_now_ms() < end)
        usleep(2000);
    return v;
}

/* Toolstack + frontend handshake for vif dom/dev. extra_key/extra_val (may be NULL) are
 * written into the frontend directory last, before Connected; want is the backend state to
 * wait for (Connected for a good handshake). */
static inline int tf_open_ex(struct tf *t, struct guest *g, unsigned dev, const char *extra_key,
                      const char *extra_val, enum xenbus_state want)
{
    memset(t, 0, sizeof(*t));
    t->g = g;
    t->dev = dev;
    sx_xenbus_backend_path(t->be, sizeof(t->be), 0, "vif", g->dom, dev);
    sx_xenbus_frontend_path(t->fe, sizeof(t->fe), g->dom, "vif", dev);
    int rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "backend", t->be)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "backend-id", "0")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "mac", "00:16:3e:00:00:01")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "state", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "frontend", t->fe)) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, t->be, "frontend-id", "%u", g->dom)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "online", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "bridge", "sxhbr0")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "queues", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, t->be, "state", "1")))
        return rc;
    if ((rc = wait_state(t->be, XenbusStateInitWait, 20000)))
        return rc;
    char path[256];
    snprintf(path, sizeof(path), "%s/stats/vif-%u-%u", env.dir, g->dom, dev);
    if ((rc = sx_stats_open_ro(&t->st, path)))
        return rc;
    if ((rc = sx_gntshr_share(g->gs, 0, 1, true, &t->txref, &t->txmem)) ||
        (rc = sx_gntshr_share(g->gs, 0, 1, true, &t->rxref, &t->rxmem)) ||
        (rc = sx_gntshr_share(g->gs, 0, TF_DATA_PAGES, false, t->drefs, &t->data)) ||
        (rc = sx_gntshr_share(g->gs, 0, TF_RX_PAGES, true, t->rxrefs, &t->rxbuf)))
        return rc;
    sx_front_ring_init(&t->tx, t->txmem, 4096, sizeof(netif_tx_request_t),
                       sizeof(netif_tx_response_t));
    sx_front_ring_init(&t->rx, t->rxmem, 4096, sizeof(netif_rx_request_t),
                       sizeof(netif_rx_response_t));
    if ((t->port = sx_evtchn_bind_unbound(g->ev, 0)) < 0)
        return t->port;
    /* A valid frame in every data page: broadcast, local experimental ethertype. */
    for (unsigned i = 0; i < TF_DATA_PAGES; i++) {
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
    if (tf_pre_connect && (rc = tf_pre_connect(t)))
        return rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, t->fe, "state", "4")))
        return rc;
    return wait_state(t->be, want, 20000);
}

static inline int tf_open(struct tf *t, struct guest *g, unsigned dev)
{
    return tf_open_ex(t, g, dev, NULL, NULL, XenbusStateConnected);
}

static inline void tf_put(struct tf *t, grant_ref_t gref, uint16_t off, uint16_t size, uint16_t flags)
{
    netif_tx_request_t r = { .gref = gref, .offset = off, .flags = flags, .id = t->next_id++,
                             .size = size };
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->tx, &r), 0);
}

static inline void tf_put_raw(struct tf *t, const void *req)
{
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->tx, req), 0);
}

static inline void tf_push(struct tf *t)
{
    if (sx_front_ring_push(&t->tx) == 1)
        sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
    else   /* the backend may be spinning or asleep with req_event armed: either way a kick */
        sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
}

/* Collect up to n tx responses within ms; returns how many. */
static inline int tf_rsp(struct tf *t, netif_tx_response_t *rsp, int n, int ms)
{
    int got = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    while (got < n && sx_now_ms() < end) {
        int k = sx_front_ring_take_rsp(&t->tx, rsp + got, (unsigned)(n - got));
        if (k < 0)
            break;
        got += k;
        if (!k)
            usleep(1000);
    }
    return got;
}

/* A well-formed 60-byte packet: one OKAY response. */
static inline bool tf_send_ok(struct tf *t)
{
    tf_put(t, t->drefs[0], 0, 60, 0);
    tf_push(t);
    netif_tx_response_t r;
    return tf_rsp(t, &r, 1, 2000) == 1 && r.status == NETIF_RSP_OKAY;
}

/* Post rx buffer i (id i, page i) for every i; the backend fills them with frames. */
static inline void tf_post_rx(struct tf *t)
{
    for (unsigned i = 0; i < TF_RX_PAGES; i++) {
        netif_rx_request_t r = { .id = (uint16_t)i, .gref = t->rxrefs[i] };
        CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->rx, &r), 0);
    }
    if (sx_front_ring_push(&t->rx) >= 0)
        sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
}

/* The daemon's options every fixture user starts from: sim, dom0, bridge xenbr0, 20 us spin,
 * --check/--torture off. */
static inline struct nb_opts nb_hostile_opts(void)
{
    struct nb_opts o = { .platform = SX_PLAT_SIM, .domid = 0, .bridge_default = "xenbr0",
                         .spin_ns = 20000 };
    sx_tt_opts_default(&o.tt);
    return o;
}

/* The netns, the core with xenstored, dom0's handles and the daemon with o, on a thread.
 * 0, or 1 on failure; skips (exit 77) without TAP or the right to unshare. */
static inline int nb_hostile_start(struct nb_opts *o)
{
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        sx_test_skip("no /dev/net/tun");
    if (unshare(CLONE_NEWNET) != 0)
        sx_test_skip("cannot unshare a network namespace (need root)");
    /* quieten the bridge: no IPv6 autoconfiguration chatter flooded to every vif */
    for (int i = 0; i < 2; i++) {
        int fd = open(i ? "/proc/sys/net/ipv6/conf/default/disable_ipv6"
                        : "/proc/sys/net/ipv6/conf/all/disable_ipv6", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0) { /* best effort */
            }
            close(fd);
        }
    }
    if (simenv_start(&env, true) < 0)
        return 1;
    if (sxc_connect(&ctl, env.sock, 0) < 0)
        return 1;
    char xsp[256];
    sx_xenstored_path(xsp, sizeof(xsp), 0);
    if (sx_xenbus_open(&xb, NULL, xsp) < 0)
        return 1;
    o->core_path = env.sock;
    if (nb_open(&nb, o) < 0)
        return 1;
    if (pthread_create(&nb_thr, NULL, nb_main, NULL))
        return 1;
    return 0;
}

/* The daemon stopped and closed, dom0's handles closed (the core is simenv_stop's). */
static inline void nb_hostile_stop(void)
{
    if (nb) {
        atomic_store(&nb->stop, true);
        pthread_join(nb_thr, NULL);
        nb_close(nb);
        nb = NULL;
    }
    sx_xenbus_close(xb);
    sxc_disconnect(ctl);
}

#endif
