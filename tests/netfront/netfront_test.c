/*
 * sxnetfront against a scripted backend on the sim platform. The test acts as the toolstack and
 * the backend (dom0): it writes the libxl vif layout and the backend's features, checks the keys
 * netfront writes for several option combinations, maps the rings as a backend would
 * (sx_gnt_map + sx_back_ring_attach), checks the tx slots netfront queues (including with
 * netback's own parser) and copies their data through the grants, and produces rx responses
 * (single slot, two slots, GSO extra, hostile ones) that sx_netfront_recv must deliver or drop.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <string.h>
#include <xenstore.h>

#include "evtchn/evtchn.h"
#include "frontends/netfront/netfront.h"
#include "grant/grant.h"
#include "netback/pkt.h"
#include "ring/ring.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xenbus/xenbus.h"

#include <xen/io/netif.h>

#define PAGE 4096u

static struct simenv env;
static struct sx_plat *dom0, *guest;
static domid_t gid;
static struct sx_xenbus *xb0;
static struct sx_gnt *gnt;
static struct sx_evtchn *ev0;

static int setup(void)
{
    if (simenv_start(&env, true) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    if (!dom0)
        return 1;
    int d = sxc_domain_create(dom0->conn, "netfront-guest", SXD_TYPE_PV, 48, 1, false);
    if (d < 0)
        return 1;
    gid = (domid_t)d;
    guest = simenv_plat(&env, gid);
    char path[256];
    if (!guest || sx_xenstored_path(path, sizeof(path), 0) < 0 || sx_xenbus_open(&xb0, NULL, path) < 0 ||
        sx_gnt_open(&gnt, dom0) < 0 || sx_evtchn_open(&ev0, dom0) < 0)
        return 1;
    return 0;
}

static int teardown(void)
{
    sx_evtchn_close(ev0);
    sx_gnt_close(gnt);
    sx_xenbus_close(xb0);
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

/* ------------------------------------------------------------------ the scripted backend */

struct be_spec {
    bool no_rx_copy, split, sg, gso4, gso6, ipv6csum, xdp;
    unsigned mq_max;           /* 0: no multi-queue-max-queues key */
    bool no_initwait;          /* leave the backend in Initialising */
};

#define RXSZ 256u

struct tbq {
    void *txmem, *rxmem;
    struct sx_back_ring tx, rx;
    int tx_port, rx_port;      /* dom0's local ports (equal without split channels) */
    netif_rx_request_t rxreq[RXSZ];
    unsigned rx_nreq, rx_next; /* requests taken / used */
};

struct tb {
    unsigned devid;
    char fe[128], be[128];
    struct sx_netfront *f;
    unsigned nq;
    struct tbq q[SX_NETFRONT_MAX_QUEUES];
};

static void xs_put(const char *dir, const char *key, const char *val, unsigned owner,
                   unsigned reader)
{
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_write(xb0, XBT_NULL, dir, key, val), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s%s%s", dir, key ? "/" : "", key ? key : "");
    struct xs_permissions perms[2] = { { .id = owner, .perms = XS_PERM_NONE },
                                       { .id = reader, .perms = XS_PERM_READ } };
    CU_ASSERT_FATAL(xs_set_permissions(sx_xenbus_xs(xb0), XBT_NULL, path, perms, 2));
}

/* The libxl vif layout (see ../shared/xenstore-reference beside the checkout) plus the
 * backend's features. */
static void vif_create(struct tb *t, unsigned devid, const struct be_spec *s)
{
    memset(t, 0, sizeof(*t));
    t->devid = devid;
    sx_xenbus_frontend_path(t->fe, sizeof(t->fe), gid, "vif", devid);
    sx_xenbus_backend_path(t->be, sizeof(t->be), 0, "vif", gid, devid);
    char v[64];
    xs_put(t->fe, NULL, "", gid, 0);
    xs_put(t->fe, "backend", t->be, gid, 0);
    xs_put(t->fe, "backend-id", "0", gid, 0);
    xs_put(t->fe, "state", "1", gid, 0);
    snprintf(v, sizeof(v), "%u", devid);
    xs_put(t->fe, "handle", v, gid, 0);
    snprintf(v, sizeof(v), "00:16:3e:00:01:%02x", devid);
    xs_put(t->fe, "mac", v, gid, 0);
    xs_put(t->fe, "mtu", "1500", 0, gid);

    xs_put(t->be, NULL, "", 0, gid);
    xs_put(t->be, "frontend", t->fe, 0, gid);
    snprintf(v, sizeof(v), "%u", gid);
    xs_put(t->be, "frontend-id", v, 0, gid);
    xs_put(t->be, "online", "1", 0, gid);
    xs_put(t->be, "state", s->no_initwait ? "1" : "2", 0, gid);
    if (!s->no_rx_copy)
        xs_put(t->be, "feature-rx-copy", "1", 0, gid);
    xs_put(t->be, "feature-sg", s->sg ? "1" : "0", 0, gid);
    xs_put(t->be, "feature-gso-tcpv4", s->gso4 ? "1" : "0", 0, gid);
    xs_put(t->be, "feature-gso-tcpv6", s->gso6 ? "1" : "0", 0, gid);
    xs_put(t->be, "feature-ipv6-csum-offload", s->ipv6csum ? "1" : "0", 0, gid);
    xs_put(t->be, "feature-split-event-channels", s->split ? "1" : "0", 0, gid);
    if (s->xdp)
        xs_put(t->be, "feature-xdp-headroom", "1", 0, gid);
    if (s->mq_max) {
        snprintf(v, sizeof(v), "%u", s->mq_max);
        xs_put(t->be, "multi-queue-max-queues", v, 0, gid);
    }
}

static void vif_remove(struct tb *t)
{
    sx_xenbus_rm(xb0, XBT_NULL, t->fe, NULL);
    sx_xenbus_rm(xb0, XBT_NULL, t->be, NULL);
}

static int fe_uint(const char *dir, const char *key, uint64_t *v)
{
    return sx_xenbus_read_uint(xb0, XBT_NULL, dir, key, 0, UINT32_MAX, v);
}

static bool fe_has(const char *dir, const char *key)
{
    return sx_xenbus_exists(xb0, XBT_NULL, dir, key) == 1;
}

static void fe_expect(const char *dir, const char *key, const char *want)
{
    char buf[64];
    int rc = sx_xenbus_read_str(xb0, XBT_NULL, dir, key, buf, sizeof(buf));
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0 && strcmp(buf, want) != 0) {
        fprintf(stderr, "%s/%s = '%s', expected '%s'\n", dir, key, buf, want);
        CU_FAIL("unexpected xenstore value");
    }
}

static void be_state(struct tb *t, enum xenbus_state st)
{
    char v[8];
    snprintf(v, sizeof(v), "%d", (int)st);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb0, XBT_NULL, t->be, "state", v), 0);
}

/* Map every queue's rings and bind its event channels, as netback's connect does. */
static void be_connect(struct tb *t)
{
    uint64_t v;
    t->nq = 1;
    if (fe_uint(t->fe, "multi-queue-num-queues", &v) == 0)
        t->nq = (unsigned)v;
    CU_ASSERT_FATAL(t->nq >= 1 && t->nq <= SX_NETFRONT_MAX_QUEUES);
    for (unsigned i = 0; i < t->nq; i++) {
        struct tbq *q = &t->q[i];
        char qdir[160];
        if (t->nq == 1)
            snprintf(qdir, sizeof(qdir), "%s", t->fe);
        else
            snprintf(qdir, sizeof(qdir), "%s/queue-%u", t->fe, i);
        uint64_t txref, rxref, ptx, prx;
        CU_ASSERT_EQUAL_FATAL(fe_uint(qdir, "tx-ring-ref", &txref), 0);
        CU_ASSERT_EQUAL_FATAL(fe_uint(qdir, "rx-ring-ref", &rxref), 0);
        if (fe_uint(qdir, "event-channel-tx", &ptx) == 0) {
            CU_ASSERT_EQUAL_FATAL(fe_uint(qdir, "event-channel-rx", &prx), 0);
            CU_ASSERT_NOT_EQUAL(ptx, prx);
        } else {
            CU_ASSERT_EQUAL_FATAL(fe_uint(qdir, "event-channel", &ptx), 0);
            prx = ptx;
        }
        grant_ref_t r = (grant_ref_t)txref;
        CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &r, true, &q->txmem, NULL), 0);
        r = (grant_ref_t)rxref;
        CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &r, true, &q->rxmem, NULL), 0);
        CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&q->tx, q->txmem, PAGE,
                                                  sizeof(netif_tx_request_t),
                                                  sizeof(netif_tx_response_t)), 0);
        CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&q->rx, q->rxmem, PAGE,
                                                  sizeof(netif_rx_request_t),
                                                  sizeof(netif_rx_response_t)), 0);
        int p = sx_evtchn_bind_interdomain(ev0, gid, (evtchn_port_t)ptx);
        CU_ASSERT_FATAL(p >= 0);
        q->tx_port = q->rx_port = p;
        if (prx != ptx) {
            p = sx_evtchn_bind_interdomain(ev0, gid, (evtchn_port_t)prx);
            CU_ASSERT_FATAL(p >= 0);
            q->rx_port = p;
        }
        /* netfront posted the whole rx ring before connecting. */
        int n = sx_back_ring_take(&q->rx, q->rxreq, RXSZ);
        CU_ASSERT_EQUAL(n, (int)RXSZ);
        q->rx_nreq = n > 0 ? (unsigned)n : 0;
        q->rx_next = 0;
        for (unsigned k = 0; k < q->rx_nreq; k++)
            CU_ASSERT_EQUAL(q->rxreq[k].id, k);
    }
}

static void be_disconnect(struct tb *t)
{
    for (unsigned i = 0; i < t->nq; i++) {
        struct tbq *q = &t->q[i];
        sx_back_ring_detach(&q->tx);
        sx_back_ring_detach(&q->rx);
        if (q->txmem)
            CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, q->txmem, 1), 0);
        if (q->rxmem)
            CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, q->rxmem, 1), 0);
        q->txmem = q->rxmem = NULL;
        sx_evtchn_unbind(ev0, (evtchn_port_t)q->tx_port);
        if (q->rx_port != q->tx_port)
            sx_evtchn_unbind(ev0, (evtchn_port_t)q->rx_port);
    }
    t->nq = 0;
}

/* Open netfront on a vif the test created, let the backend connect, map the rings. */
static void connect_all(struct tb *t, unsigned devid, const struct be_spec *s,
                        const struct sx_netfront_opts *o_in)
{
    vif_create(t, devid, s);
    struct sx_netfront_opts o = *o_in;
    o.devid = devid;
    o.close_timeout_ms = 200;
    CU_ASSERT_EQUAL_FATAL(sx_netfront_open(&t->f, guest, &o), 0);
    fe_expect(t->fe, "state", "4");
    be_state(t, XenbusStateConnected);
    CU_ASSERT_EQUAL_FATAL(sx_netfront_wait_connected(t->f, 2000), 0);
    be_connect(t);
}

static void close_all(struct tb *t)
{
    be_disconnect(t);
    be_state(t, XenbusStateClosed);
    sx_netfront_close(t->f);
    t->f = NULL;
    fe_expect(t->fe, "state", "6");
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
    vif_remove(t);
}

static uint64_t guest_pages_used(void)
{
    struct sxc_dom *d = NULL;
    if (sxc_domain_get(dom0->conn, gid, &d) < 0)
        return UINT64_MAX;
    return d->shared->pages_used;
}

/* ------------------------------------------------------------------ negotiation */

static const struct be_spec be_full = { .split = true, .sg = true, .gso4 = true, .gso6 = true,
                                        .ipv6csum = true, .xdp = true, .mq_max = 4 };

static void test_negotiate_two_queues_split_all_features(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 2 };
    uint64_t pages0 = guest_pages_used();
    connect_all(&t, 1, &be_full, &o);
    const struct sx_netfront_info *in = sx_netfront_info(t.f);
    CU_ASSERT_EQUAL(in->nqueues, 2);
    CU_ASSERT_TRUE(in->split_evtchn);
    CU_ASSERT_TRUE(in->tx_sg && in->tx_gso_tcpv4 && in->tx_gso_tcpv6 && in->tx_csum &&
                   in->tx_ipv6_csum);
    CU_ASSERT_EQUAL(in->mtu, 1500);
    static const uint8_t mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x01, 0x01 };
    CU_ASSERT_EQUAL(memcmp(in->mac, mac, 6), 0);
    CU_ASSERT_EQUAL(in->backend_id, 0);
    CU_ASSERT_STRING_EQUAL(in->backend_path, t.be);

    fe_expect(t.fe, "multi-queue-num-queues", "2");
    fe_expect(t.fe, "request-rx-copy", "1");
    fe_expect(t.fe, "feature-rx-notify", "1");
    fe_expect(t.fe, "feature-sg", "1");
    fe_expect(t.fe, "feature-gso-tcpv4", "1");
    fe_expect(t.fe, "feature-gso-tcpv6", "1");
    fe_expect(t.fe, "feature-ipv6-csum-offload", "1");
    fe_expect(t.fe, "xdp-headroom", "0");
    CU_ASSERT_FALSE(fe_has(t.fe, "feature-no-csum-offload"));
    /* Two queues: ring keys only under queue-N (netif.h). */
    CU_ASSERT_FALSE(fe_has(t.fe, "tx-ring-ref"));
    CU_ASSERT_FALSE(fe_has(t.fe, "event-channel"));
    CU_ASSERT_FALSE(fe_has(t.fe, "event-channel-tx"));
    char qdir[160];
    for (unsigned i = 0; i < 2; i++) {
        snprintf(qdir, sizeof(qdir), "%s/queue-%u", t.fe, i);
        CU_ASSERT_TRUE(fe_has(qdir, "tx-ring-ref"));
        CU_ASSERT_TRUE(fe_has(qdir, "rx-ring-ref"));
        CU_ASSERT_TRUE(fe_has(qdir, "event-channel-tx"));
        CU_ASSERT_TRUE(fe_has(qdir, "event-channel-rx"));
        CU_ASSERT_FALSE(fe_has(qdir, "event-channel"));
    }
    snprintf(qdir, sizeof(qdir), "%s/queue-2", t.fe);
    CU_ASSERT_FALSE(fe_has(qdir, NULL));
    CU_ASSERT_EQUAL(t.nq, 2);
    /* 2 queues x (2 ring pages + 256 tx + 256 rx pages) */
    CU_ASSERT_EQUAL(guest_pages_used() - pages0, 2 * (2 + 256 + 256));
    close_all(&t);
    CU_ASSERT_EQUAL(guest_pages_used(), pages0);
}

static void test_negotiate_legacy_backend_single_queue_flat_keys(void)
{
    /* No multi-queue, no split channels, no SG/GSO, no IPv6 csum: the oldest backends. */
    struct be_spec s = { 0 };
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 4 };
    connect_all(&t, 2, &s, &o);
    const struct sx_netfront_info *in = sx_netfront_info(t.f);
    CU_ASSERT_EQUAL(in->nqueues, 1);
    CU_ASSERT_FALSE(in->split_evtchn);
    CU_ASSERT_FALSE(in->tx_sg || in->tx_gso_tcpv4 || in->tx_gso_tcpv6 || in->tx_ipv6_csum);
    CU_ASSERT_TRUE(in->tx_csum);
    CU_ASSERT_FALSE(fe_has(t.fe, "multi-queue-num-queues"));
    CU_ASSERT_FALSE(fe_has(t.fe, "xdp-headroom"));
    CU_ASSERT_TRUE(fe_has(t.fe, "tx-ring-ref"));
    CU_ASSERT_TRUE(fe_has(t.fe, "rx-ring-ref"));
    CU_ASSERT_TRUE(fe_has(t.fe, "event-channel"));
    CU_ASSERT_FALSE(fe_has(t.fe, "event-channel-tx"));
    /* We still accept SG and GSO on rx: that is ours to say. */
    fe_expect(t.fe, "feature-sg", "1");
    fe_expect(t.fe, "feature-gso-tcpv4", "1");

    static uint8_t big[6000];
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, big, sizeof(big), NULL, 0), -EMSGSIZE);
    struct sx_netfront_meta m = { .flags = SX_NETFRONT_CSUM_BLANK,
                                  .gso_type = XEN_NETIF_GSO_TYPE_TCPV4, .gso_size = 1448 };
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, big, 1000, &m, 0), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 1, big, 100, NULL, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, big, 10, NULL, 0), -EMSGSIZE);
    close_all(&t);
}

static void test_negotiate_options_disable_offloads_and_split(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 1, .no_sg = true, .no_csum_offload = true,
                                  .single_evtchn = true };
    connect_all(&t, 3, &be_full, &o);
    const struct sx_netfront_info *in = sx_netfront_info(t.f);
    CU_ASSERT_EQUAL(in->nqueues, 1);
    CU_ASSERT_FALSE(in->split_evtchn);
    CU_ASSERT_FALSE(in->tx_sg || in->tx_gso_tcpv4 || in->tx_csum || in->tx_ipv6_csum);
    CU_ASSERT_FALSE(in->rx_sg || in->rx_gso_tcpv4 || in->rx_csum);
    /* The backend offers multi-queue: the count is written even for one queue (as Linux). */
    fe_expect(t.fe, "multi-queue-num-queues", "1");
    fe_expect(t.fe, "feature-sg", "0");
    fe_expect(t.fe, "feature-gso-tcpv4", "0");
    fe_expect(t.fe, "feature-gso-tcpv6", "0");
    fe_expect(t.fe, "feature-ipv6-csum-offload", "0");
    fe_expect(t.fe, "feature-no-csum-offload", "1");
    CU_ASSERT_TRUE(fe_has(t.fe, "event-channel"));
    CU_ASSERT_FALSE(fe_has(t.fe, "event-channel-tx"));
    CU_ASSERT_FALSE(fe_has(t.fe, "queue-0"));
    static uint8_t pkt[200];
    struct sx_netfront_meta m = { .flags = SX_NETFRONT_CSUM_BLANK };
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, pkt, sizeof(pkt), &m, 0), -EOPNOTSUPP);
    m = (struct sx_netfront_meta){ .gso_type = XEN_NETIF_GSO_TYPE_TCPV6, .gso_size = 1000 };
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, pkt, sizeof(pkt), &m, 0), -EOPNOTSUPP);
    close_all(&t);
}

static void test_negotiate_queue_cap_and_reconnect_removes_stale_queue_keys(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 8, .no_gso = true };
    connect_all(&t, 4, &be_full, &o);
    CU_ASSERT_EQUAL(sx_netfront_info(t.f)->nqueues, 4);   /* backend's max */
    fe_expect(t.fe, "feature-sg", "1");
    fe_expect(t.fe, "feature-gso-tcpv4", "0");
    char qdir[160];
    snprintf(qdir, sizeof(qdir), "%s/queue-3", t.fe);
    CU_ASSERT_TRUE(fe_has(qdir, "tx-ring-ref"));
    /* Disconnect the backend side but keep the nodes, then reconnect with one queue. */
    be_disconnect(&t);
    be_state(&t, XenbusStateClosed);
    sx_netfront_close(t.f);
    be_state(&t, XenbusStateInitWait);
    struct sx_netfront_opts o1 = { .devid = 4, .max_queues = 1, .close_timeout_ms = 200 };
    CU_ASSERT_EQUAL_FATAL(sx_netfront_open(&t.f, guest, &o1), 0);
    fe_expect(t.fe, "multi-queue-num-queues", "1");
    CU_ASSERT_FALSE(fe_has(t.fe, "queue-0"));
    CU_ASSERT_FALSE(fe_has(t.fe, "queue-3"));
    CU_ASSERT_TRUE(fe_has(t.fe, "tx-ring-ref"));
    CU_ASSERT_TRUE(fe_has(t.fe, "event-channel-tx"));
    be_state(&t, XenbusStateConnected);
    CU_ASSERT_EQUAL(sx_netfront_wait_connected(t.f, 2000), 0);
    be_connect(&t);
    CU_ASSERT_EQUAL(t.nq, 1);
    close_all(&t);
}

static void test_open_fails_without_rx_copy_or_initwait(void)
{
    struct tb t;
    struct be_spec s = be_full;
    s.no_rx_copy = true;
    vif_create(&t, 5, &s);
    struct sx_netfront *f = NULL;
    uint64_t pages0 = guest_pages_used();
    struct sx_netfront_opts o = { .devid = 5, .timeout_ms = 2000 };
    CU_ASSERT_EQUAL(sx_netfront_open(&f, guest, &o), -EPROTONOSUPPORT);
    CU_ASSERT_PTR_NULL(f);
    vif_remove(&t);

    s = be_full;
    s.no_initwait = true;
    vif_create(&t, 6, &s);
    o = (struct sx_netfront_opts){ .devid = 6, .timeout_ms = 300 };
    CU_ASSERT_EQUAL(sx_netfront_open(&f, guest, &o), -ETIMEDOUT);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_EQUAL(guest_pages_used(), pages0);
    vif_remove(&t);

    /* No such vif at all. */
    o = (struct sx_netfront_opts){ .devid = 77, .timeout_ms = 300 };
    int rc = sx_netfront_open(&f, guest, &o);
    CU_ASSERT_TRUE(rc == -ENOENT || rc == -EACCES);   /* xenstored hides absent nodes */
}

static void test_wait_connected_reports_closing_backend(void)
{
    struct tb t;
    vif_create(&t, 7, &be_full);
    struct sx_netfront_opts o = { .devid = 7, .close_timeout_ms = 100 };
    CU_ASSERT_EQUAL_FATAL(sx_netfront_open(&t.f, guest, &o), 0);
    be_state(&t, XenbusStateClosing);
    CU_ASSERT_EQUAL(sx_netfront_wait_connected(t.f, 2000), -ENOTCONN);
    /* The backend stays Closing: close waits for Closed, gives up after its timeout and still
     * leaves the frontend Closed. */
    sx_netfront_close(t.f);
    fe_expect(t.fe, "state", "6");
    vif_remove(&t);
}

/* ------------------------------------------------------------------ tx */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

/* Copy a slot's bytes out of the guest's grant, as netback's grant copy does. */
static void copy_from_grant(grant_ref_t ref, uint16_t off, uint16_t len, uint8_t *dst)
{
    xengnttab_grant_copy_segment_t seg = { 0 };
    seg.source.foreign.ref = ref;
    seg.source.foreign.offset = off;
    seg.source.foreign.domid = gid;
    seg.dest.virt = dst;
    seg.len = len;
    seg.flags = GNTCOPY_source_gref;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_copy(gnt, 1, &seg), 0);
    CU_ASSERT_EQUAL(seg.status, GNTST_okay);
}

static void copy_to_grant(grant_ref_t ref, uint16_t off, uint16_t len, const uint8_t *src)
{
    xengnttab_grant_copy_segment_t seg = { 0 };
    seg.source.virt = (void *)src;
    seg.dest.foreign.ref = ref;
    seg.dest.foreign.offset = off;
    seg.dest.foreign.domid = gid;
    seg.len = len;
    seg.flags = GNTCOPY_dest_gref;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_copy(gnt, 1, &seg), 0);
    CU_ASSERT_EQUAL(seg.status, GNTST_okay);
}

/* Take one packet off the tx ring, parse it with netback's parser, copy its data out through
 * the grants and answer it. Returns the number of slots; *pkt gets the parse. */
static unsigned be_tx_packet(struct tbq *q, netif_tx_request_t *slots, uint8_t *data,
                             struct sx_net_txpkt *pkt)
{
    int n = sx_back_ring_take(&q->tx, slots, 32);
    CU_ASSERT_FATAL(n > 0);
    enum sx_net_tx_verdict v = sx_net_tx_parse(slots, (unsigned)n, true, pkt);
    CU_ASSERT_EQUAL_FATAL(v, SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt->nr_slots, (unsigned)n);
    size_t pos = 0;
    for (unsigned i = 0; i < pkt->nr_frags; i++) {
        copy_from_grant(pkt->frags[i].gref, pkt->frags[i].offset, pkt->frags[i].len, data + pos);
        pos += pkt->frags[i].len;
    }
    CU_ASSERT_EQUAL(pos, pkt->total_len);
    netif_tx_response_t rsp[SX_NET_TX_MAX_SLOTS];
    unsigned nr = sx_net_tx_responses(pkt, NETIF_RSP_OKAY, rsp);
    for (unsigned i = 0; i < nr; i++)
        CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->tx, &rsp[i]), 0);
    if (sx_back_ring_push(&q->tx) > 0)
        sx_evtchn_notify(ev0, (evtchn_port_t)q->tx_port);
    return (unsigned)n;
}

static bool fd_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

/* Drain dom0's pending ports; returns a bitmask of the ones seen among a and b. */
static unsigned be_events(int a, int b)
{
    unsigned seen = 0;
    int p;
    while ((p = sx_evtchn_pending(ev0)) >= 0) {
        if (p == a)
            seen |= 1;
        if (p == b)
            seen |= 2;
        sx_evtchn_unmask(ev0, (evtchn_port_t)p);
    }
    return seen;
}

static void test_tx_small_multi_slot_and_gso_frames(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 2 };
    connect_all(&t, 10, &be_full, &o);
    struct tbq *q = &t.q[1];
    static uint8_t src[20000], got[20000];
    netif_tx_request_t slots[32];
    struct sx_net_txpkt pkt;
    be_events(q->tx_port, q->rx_port);

    /* 100 bytes: one slot, no flags; the backend's tx port is notified. */
    fill(src, 100, 1);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 1, src, 100, NULL, 0), 0);
    CU_ASSERT_EQUAL(be_events(q->tx_port, q->rx_port), 1);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 1);
    CU_ASSERT_EQUAL(slots[0].size, 100);
    CU_ASSERT_EQUAL(slots[0].flags, 0);
    CU_ASSERT_EQUAL(slots[0].offset, 0);
    CU_ASSERT_EQUAL(memcmp(got, src, 100), 0);

    /* 3000 bytes fit one whole-page slot; 6000 bytes take two: 4096 + 1904. */
    fill(src, 3000, 2);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 1, src, 3000, NULL, 0), 0);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 1);
    CU_ASSERT_EQUAL(slots[0].size, 3000);
    CU_ASSERT_EQUAL(memcmp(got, src, 3000), 0);
    fill(src, 6000, 3);
    struct sx_netfront_meta dv = { .flags = SX_NETFRONT_DATA_VALIDATED };
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 1, src, 6000, &dv, 0), 0);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 2);
    CU_ASSERT_EQUAL(slots[0].size, 6000);
    CU_ASSERT_EQUAL(slots[0].flags, NETTXF_more_data | NETTXF_data_validated);
    CU_ASSERT_EQUAL(slots[1].size, 6000 - PAGE);
    CU_ASSERT_EQUAL(slots[1].flags, 0);
    CU_ASSERT_NOT_EQUAL(slots[0].gref, slots[1].gref);
    CU_ASSERT_EQUAL(memcmp(got, src, 6000), 0);
    CU_ASSERT_TRUE(pkt.data_validated);

    /* GSO 20000 bytes: first slot, a GSO extra, four more data slots. */
    fill(src, 20000, 4);
    struct sx_netfront_meta gm = { .flags = SX_NETFRONT_CSUM_BLANK,
                                   .gso_type = XEN_NETIF_GSO_TYPE_TCPV4, .gso_size = 1448 };
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 1, src, 20000, &gm, 0), 0);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 6);
    CU_ASSERT_EQUAL(slots[0].size, 20000);
    CU_ASSERT_EQUAL(slots[0].flags, NETTXF_csum_blank | NETTXF_data_validated |
                                    NETTXF_more_data | NETTXF_extra_info);
    const netif_extra_info_t *ex = (const netif_extra_info_t *)&slots[1];
    CU_ASSERT_EQUAL(ex->type, XEN_NETIF_EXTRA_TYPE_GSO);
    CU_ASSERT_EQUAL(ex->flags, 0);
    CU_ASSERT_EQUAL(ex->u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(ex->u.gso.size, 1448);
    for (unsigned i = 2; i < 6; i++) {
        CU_ASSERT_EQUAL(slots[i].size, i < 5 ? PAGE : 20000 - 4 * PAGE);
        CU_ASSERT_EQUAL(slots[i].flags, i < 5 ? NETTXF_more_data : 0);
    }
    CU_ASSERT_EQUAL(pkt.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(pkt.gso.size, 1448);
    CU_ASSERT_TRUE(pkt.csum_blank);
    CU_ASSERT_EQUAL(memcmp(got, src, 20000), 0);

    /* Responses free every page (extras answered NETIF_RSP_NULL carry no id). */
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 1), 1 + 1 + 2 + 5);
    CU_ASSERT_EQUAL(sx_netfront_tx_reap(t.f, 1), 1 + 1 + 2 + 5);
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 1), 0);
    struct sx_netfront_stats st;
    CU_ASSERT_EQUAL(sx_netfront_stats(t.f, 1, &st), 0);
    CU_ASSERT_EQUAL(st.tx_pkts, 4);
    CU_ASSERT_EQUAL(st.tx_bytes, 100 + 3000 + 6000 + 20000);
    CU_ASSERT_EQUAL(st.tx_gso, 1);
    CU_ASSERT_EQUAL(st.tx_slots, 1 + 1 + 2 + 6);
    CU_ASSERT_EQUAL(st.tx_bad_rsp, 0);
    CU_ASSERT_EQUAL(sx_netfront_stats(t.f, 0, &st), 0);
    CU_ASSERT_EQUAL(st.tx_pkts, 0);
    close_all(&t);
}

static void test_tx_batch_one_notify_and_ring_full(void)
{
    struct tb t;
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 11, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[PAGE * 2];
    fill(src, sizeof(src), 5);
    be_events(q->tx_port, q->rx_port);
    /* Ten frames with SEND_MORE are invisible until tx_push, which notifies once. */
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, src, 60 + i, NULL, SX_NETFRONT_SEND_MORE), 0);
    CU_ASSERT_FALSE(sx_back_ring_has_requests(&q->tx));
    CU_ASSERT_EQUAL(be_events(q->tx_port, q->rx_port), 0);
    CU_ASSERT_EQUAL(sx_netfront_tx_push(t.f, 0), 0);
    CU_ASSERT_EQUAL(be_events(q->tx_port, q->rx_port), 1);
    netif_tx_request_t slots[256];
    CU_ASSERT_EQUAL(sx_back_ring_take(&q->tx, slots, 256), 10);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(slots[i].size, 60 + i);

    /* Fill the ring with two-slot frames: the backend answers nothing. 10 slots are taken but
     * unanswered, so 246 remain: 123 frames fit, the next one gets -EAGAIN and arms the tx
     * event. */
    int sent = 0, rc;
    while ((rc = sx_netfront_send(t.f, 0, src, PAGE + 10, NULL, 0)) == 0)
        sent++;
    CU_ASSERT_EQUAL(rc, -EAGAIN);
    CU_ASSERT_EQUAL(sent, 123);
    struct sx_netfront_stats st;
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.tx_full, 1);
    int fd = sx_netfront_fd(t.f, 0);
    sx_netfront_events(t.f, 0);
    CU_ASSERT_FALSE(fd_readable(fd, 0));
    /* The backend answers the first ten: the armed event fires and room comes back. */
    for (int i = 0; i < 10; i++) {
        netif_tx_response_t r = { .id = slots[i].id, .status = NETIF_RSP_OKAY };
        CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->tx, &r), 0);
    }
    CU_ASSERT_EQUAL(sx_back_ring_push(&q->tx), 1);
    sx_evtchn_notify(ev0, (evtchn_port_t)q->tx_port);
    CU_ASSERT_TRUE(fd_readable(fd, 1000));
    CU_ASSERT_TRUE(sx_netfront_events(t.f, 0) >= 1);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, src, PAGE + 10, NULL, 0), 0);

    /* A response naming an id that is not in flight is counted and ignored. */
    int n = sx_back_ring_take(&q->tx, slots, 256);
    CU_ASSERT_EQUAL(n, 248);
    unsigned before = sx_netfront_tx_inflight(t.f, 0);
    CU_ASSERT_EQUAL(before, 248);
    /* 248 of 256 ids are in flight; answer one taken request with one of the 8 free ids. */
    bool busy[256] = { false };
    for (int i = 0; i < n; i++)
        busy[slots[i].id] = true;
    netif_tx_response_t bogus = { .id = 0, .status = NETIF_RSP_OKAY };
    while (bogus.id < 255 && busy[bogus.id])
        bogus.id++;
    CU_ASSERT_FALSE(busy[bogus.id]);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->tx, &bogus), 0);
    sx_back_ring_push(&q->tx);
    CU_ASSERT_EQUAL(sx_netfront_tx_reap(t.f, 0), 0);
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.tx_bad_rsp, 1);
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 0), before);
    close_all(&t);
}

/* Zero-copy tx: frames written into pages taken with tx_get and queued with send_pages arrive
 * as send's would (the same slots, the bytes where they were written); pages not held are
 * refused; pages put back are free again; the held count shows in tx_inflight. */
static void test_tx_pages_zero_copy(void)
{
    struct tb t;
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 14, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[3 * PAGE], got[3 * PAGE];
    netif_tx_request_t slots[32];
    struct sx_net_txpkt pkt;

    struct sx_netfront_page pg[4];
    CU_ASSERT_EQUAL_FATAL(sx_netfront_tx_get(t.f, 0, pg, 4), 4);
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 0), 4);   /* held pages are not free */
    /* a 9000-byte frame over three held pages, written where they lie */
    fill(src, 9000, 21);
    for (unsigned k = 0; k < 3; k++)
        memcpy(pg[k].addr, src + k * PAGE, k < 2 ? PAGE : 9000 - 2 * PAGE);
    /* wrong page count, and a page not held (put back first), are refused */
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, pg, 2, 9000, NULL, 0), -EINVAL);
    sx_netfront_tx_put(t.f, 0, &pg[3], 1);
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 0), 3);
    struct sx_netfront_page twice[3] = { pg[0], pg[3], pg[2] };
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, twice, 3, 9000, NULL, 0), -EINVAL);
    struct sx_netfront_page dup[3] = { pg[0], pg[0], pg[2] };
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, dup, 3, 9000, NULL, 0), -EINVAL);
    CU_ASSERT_FALSE(sx_back_ring_has_requests(&q->tx));

    struct sx_netfront_meta gm = { .flags = SX_NETFRONT_CSUM_BLANK,
                                   .gso_type = XEN_NETIF_GSO_TYPE_TCPV4, .gso_size = 1448 };
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, pg, 3, 9000, &gm, 0), 0);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 4);   /* 3 data slots + the GSO extra */
    CU_ASSERT_EQUAL(slots[0].id, pg[0].id);
    CU_ASSERT_EQUAL(slots[2].id, pg[1].id);
    CU_ASSERT_EQUAL(slots[3].id, pg[2].id);
    CU_ASSERT_EQUAL(pkt.gso.size, 1448);
    CU_ASSERT_EQUAL(memcmp(got, src, 9000), 0);
    /* once sent the pages are the ring's: a second send of them is refused */
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, pg, 3, 9000, NULL, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_netfront_tx_reap(t.f, 0), 3);
    CU_ASSERT_EQUAL(sx_netfront_tx_inflight(t.f, 0), 0);

    /* a page's contents survive its round trip (pktgen builds its frames once) */
    CU_ASSERT_EQUAL_FATAL(sx_netfront_tx_get(t.f, 0, pg, 1), 1);
    memcpy(pg[0].addr, src, 60);
    uint16_t id = pg[0].id;
    CU_ASSERT_EQUAL(sx_netfront_send_pages(t.f, 0, pg, 1, 60, NULL, 0), 0);
    CU_ASSERT_EQUAL(be_tx_packet(q, slots, got, &pkt), 1);
    CU_ASSERT_EQUAL(memcmp(got, src, 60), 0);
    CU_ASSERT_EQUAL(sx_netfront_tx_reap(t.f, 0), 1);
    CU_ASSERT_EQUAL_FATAL(sx_netfront_tx_get(t.f, 0, pg, 1), 1);
    CU_ASSERT_EQUAL(pg[0].id, id);   /* the page just freed comes back first */
    CU_ASSERT_EQUAL(memcmp(pg[0].addr, src, 60), 0);
    sx_netfront_tx_put(t.f, 0, pg, 1);

    struct sx_netfront_stats st;
    CU_ASSERT_EQUAL(sx_netfront_stats(t.f, 0, &st), 0);
    CU_ASSERT_EQUAL(st.tx_pkts, 2);
    CU_ASSERT_EQUAL(st.tx_bytes, 9060);
    CU_ASSERT_EQUAL(st.tx_gso, 1);
    close_all(&t);
}

/* tx_arm: nothing answered -> 0 (armed: the next response notifies); answered -> 1. */
static void test_tx_arm_reports_responses_or_arms(void)
{
    struct tb t;
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 15, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[64];
    fill(src, sizeof(src), 22);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, src, 60, NULL, SX_NETFRONT_SEND_MORE), 0);
    CU_ASSERT_EQUAL(sx_netfront_tx_arm(t.f, 0), 0);   /* publishes the request, arms */
    netif_tx_request_t r;
    CU_ASSERT_EQUAL(sx_back_ring_take(&q->tx, &r, 1), 1);
    int fd = sx_netfront_fd(t.f, 0);
    sx_netfront_events(t.f, 0);
    netif_tx_response_t rsp = { .id = r.id, .status = NETIF_RSP_OKAY };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->tx, &rsp), 0);
    CU_ASSERT_EQUAL(sx_back_ring_push(&q->tx), 1);   /* the armed event asks for a notify */
    sx_evtchn_notify(ev0, (evtchn_port_t)q->tx_port);
    CU_ASSERT_TRUE(fd_readable(fd, 1000));
    CU_ASSERT_EQUAL(sx_netfront_tx_arm(t.f, 0), 1);   /* the response is there */
    CU_ASSERT_EQUAL(sx_netfront_tx_reap(t.f, 0), 1);
    close_all(&t);
}

/* ------------------------------------------------------------------ rx */

struct rxslot {
    uint16_t off, len, flags;
    int16_t status_override;   /* 0: use len */
    bool extra;                /* this slot is a GSO extra */
    bool bad_id;
};

/* Produce one frame's responses from the next posted requests; data from src. */
static void be_rx_frame(struct tbq *q, const struct rxslot *s, unsigned n, const uint8_t *src,
                        bool push)
{
    size_t pos = 0;
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_FATAL(q->rx_next < q->rx_nreq);
        const netif_rx_request_t *req = &q->rxreq[q->rx_next++];
        union { netif_rx_response_t r; netif_extra_info_t e; } u;
        memset(&u, 0, sizeof(u));
        if (s[i].extra) {
            u.e.type = XEN_NETIF_EXTRA_TYPE_GSO;
            u.e.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
            u.e.u.gso.size = 1448;
        } else {
            if (s[i].len && s[i].off + s[i].len <= PAGE)
                copy_to_grant(req->gref, s[i].off, s[i].len, src + pos);
            pos += s[i].len;
            u.r.id = (uint16_t)(req->id + (s[i].bad_id ? 1 : 0));
            u.r.offset = s[i].off;
            u.r.flags = s[i].flags;
            u.r.status = s[i].status_override ? s[i].status_override : (int16_t)s[i].len;
        }
        CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->rx, &u), 0);
    }
    if (push && sx_back_ring_push(&q->rx) > 0)
        sx_evtchn_notify(ev0, (evtchn_port_t)q->rx_port);
}

static void test_rx_single_two_slot_and_gso_frames(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .max_queues = 2 };
    connect_all(&t, 12, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[8000], buf[SX_NETFRONT_MAX_FRAME];
    struct sx_netfront_meta m;
    int fd = sx_netfront_fd(t.f, 0);

    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);
    sx_netfront_events(t.f, 0);

    /* 100 bytes in one slot, data_validated. */
    fill(src, 100, 9);
    struct rxslot s1[] = { { .off = 0, .len = 100, .flags = NETRXF_data_validated } };
    be_rx_frame(q, s1, 1, src, true);
    CU_ASSERT_TRUE(fd_readable(fd, 1000));
    CU_ASSERT_TRUE(sx_netfront_events(t.f, 0) >= 1);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 100);
    CU_ASSERT_EQUAL(memcmp(buf, src, 100), 0);
    CU_ASSERT_EQUAL(m.flags, SX_NETFRONT_DATA_VALIDATED);
    CU_ASSERT_EQUAL(m.gso_type, XEN_NETIF_GSO_TYPE_NONE);

    /* 3000 bytes in two slots (2000 at offset 64, then 1000), published one slot at a time: the
     * first half alone is not a frame. */
    fill(src, 3000, 10);
    struct rxslot s2a[] = { { .off = 64, .len = 2000,
                              .flags = NETRXF_more_data | NETRXF_csum_blank |
                                       NETRXF_data_validated } };
    struct rxslot s2b[] = { { .off = 0, .len = 1000 } };
    be_rx_frame(q, s2a, 1, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);
    be_rx_frame(q, s2b, 1, src + 2000, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 3000);
    CU_ASSERT_EQUAL(memcmp(buf, src, 3000), 0);
    CU_ASSERT_EQUAL(m.flags, SX_NETFRONT_CSUM_BLANK | SX_NETFRONT_DATA_VALIDATED);

    /* GSO: first slot 4096 bytes with extra_info + more_data, the GSO extra in the next slot,
     * then 904 bytes. */
    fill(src, 5000, 11);
    struct rxslot s3[] = {
        { .off = 0, .len = PAGE,
          .flags = NETRXF_extra_info | NETRXF_more_data | NETRXF_csum_blank |
                   NETRXF_data_validated },
        { .extra = true },
        { .off = 0, .len = 904 },
    };
    be_rx_frame(q, s3, 3, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 5000);
    CU_ASSERT_EQUAL(memcmp(buf, src, 5000), 0);
    CU_ASSERT_EQUAL(m.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(m.gso_size, 1448);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);

    /* Every consumed slot (1 + 2 + 3) is reposted with the same id (= page), published on the
     * -EAGAIN, and the backend is told on its rx port when it asked for it. */
    be_events(q->tx_port, q->rx_port);
    netif_rx_request_t more[RXSZ];
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&q->rx), 1);
    int n = sx_back_ring_take(&q->rx, more, RXSZ);
    CU_ASSERT_EQUAL(n, 6);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(more[i].id, i);
        CU_ASSERT_EQUAL(more[i].gref, q->rxreq[i].gref);
    }
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&q->rx), 0);   /* arms req_event */
    fill(src, 60, 12);
    struct rxslot s4[] = { { .off = 0, .len = 60 } };
    be_rx_frame(q, s4, 1, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 60);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);
    CU_ASSERT_EQUAL(be_events(q->tx_port, q->rx_port), 2);   /* rx port, not tx */

    struct sx_netfront_stats st;
    CU_ASSERT_EQUAL(sx_netfront_stats(t.f, ~0u, &st), 0);
    CU_ASSERT_EQUAL(st.rx_pkts, 4);
    CU_ASSERT_EQUAL(st.rx_bytes, 100 + 3000 + 5000 + 60);
    CU_ASSERT_EQUAL(st.rx_gso, 1);
    CU_ASSERT_EQUAL(st.rx_slots, 7);
    CU_ASSERT_EQUAL(st.rx_bad, 0);
    close_all(&t);
}

/* Zero-copy rx: peeked frames point at the bytes where the backend put them and keep their
 * slots until release (recv says -EBUSY meanwhile); release reposts every held slot, in order,
 * with the same ids, and publishes them. */
static void test_rx_peek_holds_frames_until_release(void)
{
    struct tb t;
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 16, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[3][6000], buf[SX_NETFRONT_MAX_FRAME];
    fill(src[0], 200, 31);
    fill(src[1], 6000, 32);
    fill(src[2], 5000, 33);
    struct rxslot a[] = { { .off = 0, .len = 200, .flags = NETRXF_data_validated } };
    struct rxslot b[] = { { .off = 128, .len = 3000, .flags = NETRXF_more_data },
                          { .off = 0, .len = 3000 } };
    struct rxslot c[] = {
        { .off = 0, .len = PAGE, .flags = NETRXF_extra_info | NETRXF_more_data |
                                           NETRXF_csum_blank | NETRXF_data_validated },
        { .extra = true },
        { .off = 0, .len = 5000 - PAGE },
    };
    be_rx_frame(q, a, 1, src[0], false);
    be_rx_frame(q, b, 2, src[1], false);
    be_rx_frame(q, c, 3, src[2], true);

    struct sx_netfront_rxframe fr[3];
    const size_t want_len[3] = { 200, 6000, 5000 };
    const unsigned want_seg[3] = { 1, 2, 2 };
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(sx_netfront_recv_peek(t.f, 0, &fr[i]), (int)want_len[i]);
        CU_ASSERT_EQUAL(fr[i].len, want_len[i]);
        CU_ASSERT_EQUAL(fr[i].nseg, want_seg[i]);
        size_t pos = 0;
        for (unsigned k = 0; k < fr[i].nseg; k++) {
            CU_ASSERT_EQUAL(memcmp(fr[i].seg[k].iov_base, src[i] + pos, fr[i].seg[k].iov_len), 0);
            pos += fr[i].seg[k].iov_len;
        }
        CU_ASSERT_EQUAL(pos, want_len[i]);
    }
    CU_ASSERT_EQUAL(fr[0].meta.flags, SX_NETFRONT_DATA_VALIDATED);
    CU_ASSERT_EQUAL(fr[2].meta.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(fr[2].meta.gso_size, 1448);
    struct virtio_net_hdr_v1 vh;
    CU_ASSERT_EQUAL(sx_netfront_vnet_from_frame(&fr[0], &vh), 0);
    CU_ASSERT_EQUAL(vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    CU_ASSERT_EQUAL(sx_netfront_recv_peek(t.f, 0, &fr[0]), -EAGAIN);
    /* held: nothing reposted yet, and the copying recv refuses to jump the queue */
    CU_ASSERT_EQUAL(sx_back_ring_final_check(&q->rx), 0);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), NULL), -EBUSY);
    /* release: all six slots come back, same ids (= pages), published */
    CU_ASSERT_EQUAL(sx_netfront_recv_release(t.f, 0), 0);
    netif_rx_request_t more[RXSZ];
    int n = sx_back_ring_take(&q->rx, more, RXSZ);
    CU_ASSERT_EQUAL(n, 6);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(more[i].id, i);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), NULL), -EAGAIN);
    struct sx_netfront_stats st;
    CU_ASSERT_EQUAL(sx_netfront_stats(t.f, 0, &st), 0);
    CU_ASSERT_EQUAL(st.rx_pkts, 3);
    CU_ASSERT_EQUAL(st.rx_bytes, 11200);
    CU_ASSERT_EQUAL(st.rx_slots, 6);
    close_all(&t);
}

static void test_rx_hostile_responses_are_dropped(void)
{
    struct tb t;
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 13, &be_full, &o);
    struct tbq *q = &t.q[0];
    static uint8_t src[PAGE], buf[SX_NETFRONT_MAX_FRAME];
    struct sx_netfront_meta m;
    fill(src, sizeof(src), 13);

    /* offset + size past the page */
    struct rxslot a[] = { { .off = 4000, .len = 200 } };
    be_rx_frame(q, a, 1, src, false);
    /* a response in the wrong slot (id of another request) */
    struct rxslot b[] = { { .off = 0, .len = 100, .bad_id = true } };
    be_rx_frame(q, b, 1, src, false);
    /* an error status */
    struct rxslot c[] = { { .off = 0, .len = 0, .status_override = NETIF_RSP_ERROR } };
    be_rx_frame(q, c, 1, src, false);
    /* a runt */
    struct rxslot d[] = { { .off = 0, .len = 10 } };
    be_rx_frame(q, d, 1, src, false);
    /* a frame larger than the caller's buffer (dropped, counted) */
    struct rxslot e[] = { { .off = 0, .len = 1000 } };
    be_rx_frame(q, e, 1, src, false);
    /* and then a good one */
    struct rxslot g[] = { { .off = 100, .len = 300 } };
    be_rx_frame(q, g, 1, src, true);

    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, 500, &m), 300);
    CU_ASSERT_EQUAL(memcmp(buf, src, 300), 0);
    struct sx_netfront_stats st;
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.rx_bad, 3);
    CU_ASSERT_EQUAL(st.rx_rsp_errors, 1);
    CU_ASSERT_EQUAL(st.rx_oversize, 1);
    CU_ASSERT_EQUAL(st.rx_pkts, 1);

    /* An endless more_data chain: once it spans more slots than any valid frame it is dropped
     * (without waiting for its end), the rest of the chain is skipped as it arrives, and the
     * next frame is delivered. */
    struct rxslot chain[30];
    for (unsigned i = 0; i < 30; i++)
        chain[i] = (struct rxslot){ .off = 0, .len = 100,
                                    .flags = i < 29 ? NETRXF_more_data : 0 };
    be_rx_frame(q, chain, 25, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.rx_bad, 4);
    be_rx_frame(q, chain + 25, 5, src, false);
    struct rxslot h[] = { { .off = 0, .len = 64 } };
    be_rx_frame(q, h, 1, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 64);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EAGAIN);
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.rx_bad, 4);
    CU_ASSERT_EQUAL(st.rx_pkts, 2);

    /* An extra-info slot of an unknown type: the frame is dropped. */
    struct rxslot x[] = { { .off = 0, .len = 100, .flags = NETRXF_extra_info }, { .extra = true } };
    be_rx_frame(q, x, 2, src, false);
    /* Overwrite the extra's type with garbage through the shared ring: it was put at index
     * rsp_prod_pvt - 1. */
    netif_extra_info_t *slot = (netif_extra_info_t *)(q->rx.ents +
        ((q->rx.rsp_prod_pvt - 1) & (RXSZ - 1)) * q->rx.entry_size);
    slot->type = 9;
    be_rx_frame(q, h, 1, src, true);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), 64);
    sx_netfront_stats(t.f, 0, &st);
    CU_ASSERT_EQUAL(st.rx_bad, 5);

    /* A backend that answers more than was posted halts the ring. */
    q->rx.rsp_prod_pvt += 300;
    sx_back_ring_push(&q->rx);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), &m), -EPROTO);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, src, 100, NULL, 0), 0);   /* tx unaffected */
    close_all(&t);
}

static void test_single_event_channel_carries_both_directions(void)
{
    struct tb t;
    struct sx_netfront_opts o = { .single_evtchn = true };
    connect_all(&t, 14, &be_full, &o);
    struct tbq *q = &t.q[0];
    CU_ASSERT_EQUAL(q->tx_port, q->rx_port);
    static uint8_t src[200], buf[2048];
    fill(src, sizeof(src), 14);
    be_events(q->tx_port, -1);
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, src, 200, NULL, 0), 0);
    CU_ASSERT_EQUAL(be_events(q->tx_port, -1), 1);
    struct rxslot s[] = { { .off = 0, .len = 200 } };
    be_rx_frame(q, s, 1, src, true);
    int fd = sx_netfront_fd(t.f, 0);
    CU_ASSERT_TRUE(fd_readable(fd, 1000));
    CU_ASSERT_EQUAL(sx_netfront_events(t.f, 0), 1);
    CU_ASSERT_EQUAL(sx_netfront_recv(t.f, 0, buf, sizeof(buf), NULL), 200);
    close_all(&t);
}

/* ------------------------------------------------------------------ vnet headers */

/* Ethernet + IPv4 (192.0.2.2 -> 192.0.2.3) + TCP, payload bytes of pattern. */
static size_t mk_tcp4(uint8_t *b, size_t payload)
{
    memset(b, 0, 54);
    b[12] = 0x08;
    uint8_t *ip = b + 14;
    ip[0] = 0x45;
    uint16_t tot = (uint16_t)(40 + payload);
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t a[8] = { 192, 0, 2, 2, 192, 0, 2, 3 };
    memcpy(ip + 12, a, 8);
    ip[34 - 14 + 12] = 5 << 4;   /* TCP data offset */
    fill(b + 54, payload, 21);
    return 54 + payload;
}

static struct virtio_net_hdr_v1 tso4_hdr(void)
{
    struct virtio_net_hdr_v1 vh = { 0 };
    vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    vh.hdr_len = htole16(54);
    vh.gso_size = htole16(1448);
    vh.csum_start = htole16(34);
    vh.csum_offset = htole16(16);
    return vh;
}

static void test_vnet_conversion_follows_negotiation(void)
{
    static uint8_t frame[8000];
    size_t len = mk_tcp4(frame, 5000);
    struct sx_netfront_meta m;
    struct virtio_net_hdr_v1 vh = tso4_hdr(), back;
    struct tb t;

    /* Everything offered: a TSO frame stays whole, and converts back to the same header. */
    struct sx_netfront_opts o = { 0 };
    connect_all(&t, 15, &be_full, &o);
    CU_ASSERT_EQUAL(sx_netfront_meta_from_vnet(t.f, &vh, frame, len, &m), 0);
    CU_ASSERT_EQUAL(m.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(m.gso_size, 1448);
    CU_ASSERT_EQUAL(m.flags, SX_NETFRONT_CSUM_BLANK | SX_NETFRONT_DATA_VALIDATED);
    CU_ASSERT_EQUAL(sx_netfront_vnet_from_meta(&m, frame, len, &back), 0);
    CU_ASSERT_EQUAL(back.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    CU_ASSERT_EQUAL(le16toh(back.gso_size), 1448);
    CU_ASSERT_TRUE(back.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(le16toh(back.csum_start), 34);
    CU_ASSERT_EQUAL(le16toh(back.csum_offset), 16);
    close_all(&t);

    /* A backend without GSO: the TSO frame cannot go; a partial checksum still can. */
    struct be_spec legacy = { 0 };
    connect_all(&t, 16, &legacy, &o);
    CU_ASSERT_EQUAL(sx_netfront_meta_from_vnet(t.f, &vh, frame, len, &m), -EOPNOTSUPP);
    len = mk_tcp4(frame, 1000);
    vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    vh.gso_size = 0;
    CU_ASSERT_EQUAL(sx_netfront_meta_from_vnet(t.f, &vh, frame, len, &m), 0);
    CU_ASSERT_EQUAL(m.flags & SX_NETFRONT_CSUM_BLANK, SX_NETFRONT_CSUM_BLANK);
    CU_ASSERT_EQUAL(m.gso_type, XEN_NETIF_GSO_TYPE_NONE);
    close_all(&t);

    /* Checksum offload disabled: the checksum is completed in the frame, no flag goes out. */
    struct sx_netfront_opts nocsum = { .no_csum_offload = true };
    connect_all(&t, 17, &be_full, &nocsum);
    len = mk_tcp4(frame, 1000);
    CU_ASSERT_EQUAL(sx_netfront_meta_from_vnet(t.f, &vh, frame, len, &m), 0);
    CU_ASSERT_EQUAL(m.flags & SX_NETFRONT_CSUM_BLANK, 0);
    CU_ASSERT_NOT_EQUAL(frame[50] | frame[51], 0);   /* the TCP checksum field was filled */
    CU_ASSERT_EQUAL(sx_netfront_send(t.f, 0, frame, len, &m, 0), 0);
    close_all(&t);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_negotiate_two_queues_split_all_features),
    SX_TEST(test_negotiate_legacy_backend_single_queue_flat_keys),
    SX_TEST(test_negotiate_options_disable_offloads_and_split),
    SX_TEST(test_negotiate_queue_cap_and_reconnect_removes_stale_queue_keys),
    SX_TEST(test_open_fails_without_rx_copy_or_initwait),
    SX_TEST(test_wait_connected_reports_closing_backend),
    SX_TEST(test_tx_small_multi_slot_and_gso_frames),
    SX_TEST(test_tx_batch_one_notify_and_ring_full),
    SX_TEST(test_tx_pages_zero_copy),
    SX_TEST(test_tx_arm_reports_responses_or_arms),
    SX_TEST(test_rx_single_two_slot_and_gso_frames),
    SX_TEST(test_rx_peek_holds_frames_until_release),
    SX_TEST(test_rx_hostile_responses_are_dropped),
    SX_TEST(test_single_event_channel_carries_both_directions),
    SX_TEST(test_vnet_conversion_follows_negotiation),
};

SX_TEST_MAIN("netfront", cases, setup, teardown)
