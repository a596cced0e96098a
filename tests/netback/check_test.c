/*
 * netback --check against deliberately broken frontends (tests/netguest.h): each case opens
 * vifs of its own, one making one class of mistake; the vif's check counter for that class
 * moves and its report names the request and quotes the rule. The daemon also runs --torture
 * with only the `features` fault, so some vifs are offered feature-sg = 0 and a frontend that
 * sends a packet in several slots anyway is caught. A well-behaved frontend leaves no finding.
 * Each case closes its vifs at its end.
 *
 * Needs root (TAP, network namespace): skips otherwise.
 */

#include "tests/netguest.h"
#include "tests/check_report.h"

static struct netenv E;
static struct netguest G;
static unsigned next_dev = 1;
static struct netvif V[20];          /* the vifs of one case */
static unsigned nvifs;

static void vifs_down(void)
{
    for (unsigned i = 0; i < nvifs; i++)
        nv_close(&V[i]);
    nvifs = 0;
}

static int suite_init(void)
{
    struct nb_opts o = netenv_opts(20000);
    o.tt.check = true;
    o.tt.torture = true;
    o.tt.seed = 11;
    o.tt.faults = 1u << SX_TT_F_FEATURES;
    if (netenv_start_opts(&E, &o) < 0)
        return 1;
    return netguest_open(&E, &G, "chk") < 0 ? 1 : 0;
}

static int suite_clean(void)
{
    vifs_down();
    netguest_close(&G);
    netenv_stop(&E);
    return 0;
}

/* ------------------------------------------------------------------ helpers */

/* A vif of this case's own, not opened yet. */
static struct netvif *new_vif(void)
{
    CU_ASSERT_FATAL(nvifs < sizeof(V) / sizeof(V[0]));
    return &V[nvifs++];
}

/* A connected vif of this case's own. */
static struct netvif *vif(void)
{
    struct netvif *t = new_vif();
    CU_ASSERT_EQUAL_FATAL(nv_open(t, &G, next_dev++), 0);
    return t;
}

/* t's check counters and report (tests/check_report.h) */
#define chk(t, name) chk_stat("vif", (t)->g->dom, (t)->dev, name)
#define chk_wait(t, name, want, ms) chk_stat_wait("vif", (t)->g->dom, (t)->dev, name, want, ms)
#define report_has(t, ...) chk_report_has("vif", (t)->g->dom, (t)->dev, __VA_ARGS__)

static bool offered(struct netvif *t, const char *key)
{
    uint64_t v = 1;
    sx_xenbus_read_uint(E.xb, XBT_NULL, t->be, key, 0, 1, &v);
    return v != 0;
}

/* ------------------------------------------------------------------ cases */

static void test_good_frontend_has_no_findings(void)
{
    struct netvif *t = vif();
    for (int i = 0; i < 10; i++)
        CU_ASSERT_TRUE(nv_send_ok(t));
    if (offered(t, "feature-sg")) {
        nv_put(t, t->drefs[0], 0, 100, NETTXF_more_data);
        nv_put(t, t->drefs[1], 0, 40, 0);
        nv_push(t);
        netif_tx_response_t r[2];
        CU_ASSERT_EQUAL(nv_rsp(t, r, 2, 2000), 2);
    }
    nv_post_rx(t);
    /* Close: Closing, the backend lets go of the rings, their grants ended, Closed. */
    sx_xenbus_write(E.xb, XBT_NULL, t->fe, "state", "5");
    CU_ASSERT_EQUAL(nv_wait_state(&E, t->be, XenbusStateClosing, 20000), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(t->g->gs, t->txmem, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(t->g->gs, t->rxmem, 1), 0);
    sx_xenbus_write(E.xb, XBT_NULL, t->fe, "state", "6");
    CU_ASSERT_EQUAL(nv_wait_state(&E, t->be, XenbusStateClosed, 20000), 0);
    uint64_t end = sx_now_ms() + 1800;
    while (sx_now_ms() < end && chk(t, "findings") == 0)
        usleep(20000);
    CU_ASSERT_EQUAL(chk(t, "findings"), 0);
    CU_ASSERT_TRUE(report_has(t, "no findings", "check on; torture on, seed 11", NULL));
    vifs_down();
}

/* Chains Linux netback rejects: each reported with what Linux does with it. */
static void test_tx_chains_linux_rejects(void)
{
    struct netvif *t = vif();                             /* 22 slots after the first */
    nv_put(t, t->drefs[0], 0, 14 + 22 * 10, NETTXF_more_data);
    for (int i = 0; i < 22; i++)
        nv_put(t, t->drefs[1], (uint16_t)(i * 10), 10, i < 21 ? NETTXF_more_data : 0);
    nv_push(t);
    CU_ASSERT_EQUAL(chk_wait(t, "tx_slot_chain", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "queue 0 tx, request id 0 (tx) at ring position 0",
                              "in 21 slots", "Malicious frontend using", "XEN_NETIF_NR_SLOTS_MIN",
                              NULL));
    struct netvif *u = vif();                             /* 4000 + 200 > 4096 */
    nv_put(u, u->drefs[0], 4000, 200, 0);
    nv_push(u);
    CU_ASSERT_EQUAL(chk_wait(u, "tx_slot_chain", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(u, "Cross page boundary", NULL));
    struct netvif *w = vif();                             /* a first slot of 10 bytes */
    nv_put(w, w->drefs[0], 0, 10, 0);
    nv_push(w);
    netif_tx_response_t r;
    CU_ASSERT_EQUAL(nv_rsp(w, &r, 1, 2000), 1);
    CU_ASSERT_EQUAL(r.status, NETIF_RSP_ERROR);
    CU_ASSERT_EQUAL(chk_wait(w, "tx_slot_chain", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(w, "a packet of 10 bytes in 1 slots",
                              "Linux netback drops the packet", NULL));
    vifs_down();
}

static void test_tx_id_reused_while_in_flight(void)
{
    struct netvif *t = vif();
    nv_put(t, t->drefs[0], 0, 60, 0);
    t->next_id--;                                     /* the same id again */
    nv_put(t, t->drefs[1], 0, 60, 0);
    nv_push(t);
    netif_tx_response_t r[2];
    CU_ASSERT_EQUAL(nv_rsp(t, r, 2, 2000), 2);
    CU_ASSERT_EQUAL(chk_wait(t, "id_reused_in_flight", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "request id 0 (tx) at ring position 1: id 0 is still in flight",
                              "id: request identifier, echoed in response", NULL));
    vifs_down();
}

static void test_tx_published_without_notification(void)
{
    struct netvif *t = vif();
    uint64_t sleeps = nv_stat(t, "sleeps");
    CU_ASSERT_TRUE(nv_send_ok(t));
    nv_stat_wait(t, "sleeps", sleeps + 1, 2000);
    nv_put(t, t->drefs[0], 0, 60, 0);
    CU_ASSERT_EQUAL(sx_front_ring_push(&t->tx), 1);   /* must notify; does not */
    netif_tx_response_t r;
    CU_ASSERT_EQUAL(nv_rsp(t, &r, 1, 3000), 1);
    CU_ASSERT_EQUAL(chk(t, "notify_missing"), 1);
    CU_ASSERT_TRUE(report_has(t, "queue 0 tx at ring position 1", "no notification came",
                              "conditional on the appropriate req_event", NULL));
    vifs_down();
}

static void test_tx_producer_index_past_the_ring(void)
{
    struct netvif *t = vif();
    struct sx_sring_hdr *s = t->txmem;
    SX_WRITE_ONCE(s->req_prod, s->rsp_prod + t->tx.nr_ents + 17);
    sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
    CU_ASSERT_EQUAL(chk_wait(t, "req_prod_overflow", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "req_prod 273 is 273 requests from the responses produced",
                              "on a ring of 256 entries: the ring is halted", NULL));
    vifs_down();
}

static void test_tx_grant_unusable(void)
{
    struct netvif *t = vif();
    nv_put(t, 31337, 0, 60, 0);
    nv_push(t);
    netif_tx_response_t r;
    CU_ASSERT_EQUAL(nv_rsp(t, &r, 1, 2000), 1);
    CU_ASSERT_EQUAL(chk_wait(t, "grant_unusable", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "queue 0 tx, request id 0: a grant copy failed",
                              "grant ref: Reference to buffer page.", NULL));
    vifs_down();
}

static void test_rx_id_reused_while_posted(void)
{
    struct netvif *t = vif();
    for (unsigned i = 0; i < 2; i++) {
        netif_rx_request_t q = { .id = 5, .gref = t->rxrefs[i] };   /* one id, two buffers */
        CU_ASSERT_EQUAL(sx_front_ring_put_req(&t->rx, &q), 0);
    }
    sx_front_ring_push(&t->rx);
    sx_evtchn_notify(t->g->ev, (evtchn_port_t)t->port);
    /* The backend takes rx buffers when a frame is there for them: another vif broadcasts. */
    struct netvif *src = vif();
    uint64_t end = sx_now_ms() + 20000;
    while (chk(t, "id_reused_in_flight") < 1 && sx_now_ms() < end) {
        CU_ASSERT_TRUE(nv_send_ok(src));
        usleep(50000);
    }
    CU_ASSERT_EQUAL(chk(t, "id_reused_in_flight"), 1);
    CU_ASSERT_TRUE(report_has(t, "queue 0 rx, request id 5 (rx) at ring position 1", NULL));
    vifs_down();
}

static void test_sg_packet_the_backend_did_not_offer(void)
{
    struct netvif *t = NULL;
    for (int i = 0; i < 16 && !t; i++) {             /* a vif offered feature-sg = 0 */
        struct netvif *c = vif();
        if (!offered(c, "feature-sg"))
            t = c;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    nv_put(t, t->drefs[0], 0, 100, NETTXF_more_data);
    nv_put(t, t->drefs[1], 0, 40, 0);
    nv_push(t);
    netif_tx_response_t r[2];
    CU_ASSERT_EQUAL(nv_rsp(t, r, 2, 2000), 2);
    CU_ASSERT_EQUAL(chk_wait(t, "feature_not_offered", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "a packet in 2 data slots; the backend offered feature-sg = 0",
                              "Neither frontends nor backends are assumed to be capable",
                              "reproduce: --torture=11", NULL));
    vifs_down();
}

static void test_rx_notify_key_missing(void)
{
    struct netvif *t = new_vif();
    CU_ASSERT_EQUAL(nv_open_ex(t, &G, next_dev++, "feature-rx-notify", "0", NULL, NULL,
                               XenbusStateClosing), 0);
    CU_ASSERT_EQUAL(chk_wait(t, "key_missing", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "feature-rx-notify is not 1",
                              "it cannot safely queue packets", NULL));
    vifs_down();
}

static void test_queues_beyond_the_offer(void)
{
    struct netvif *t = new_vif();
    CU_ASSERT_EQUAL(nv_open_ex(t, &G, next_dev++, "multi-queue-num-queues", "5", NULL, NULL,
                               XenbusStateClosing), 0);
    CU_ASSERT_EQUAL(chk_wait(t, "key_bad_value", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(t, "multi-queue-num-queues = 5 (the backend offered up to 1)",
                              NULL));
    vifs_down();
}

/* xl network-detach: the toolstack writes online=0 and Closing, the backend closes at once,
 * then the frontend goes Closed. A frontend still granting its rings a second later is caught
 * (the tx ring here: the rx ring never carried a response, so its page holds nothing that
 * tells it from a fresh one); one that ended the grants first is not. */
static void toolstack_unplug(struct netvif *t)
{
    sx_xenbus_write(E.xb, XBT_NULL, t->be, "online", "0");
    sx_xenbus_write(E.xb, XBT_NULL, t->be, "state", "5");
    CU_ASSERT_EQUAL(nv_wait_state(&E, t->be, XenbusStateClosed, 20000), 0);
}

static void test_rings_granted_after_toolstack_unplug(void)
{
    struct netvif *t = vif(), *u = vif();
    CU_ASSERT_TRUE(nv_send_ok(t));
    CU_ASSERT_TRUE(nv_send_ok(u));
    toolstack_unplug(t);
    sx_xenbus_write(E.xb, XBT_NULL, t->fe, "state", "6");   /* the rings stay granted */
    CU_ASSERT_EQUAL(chk_wait(t, "granted_after_closed", 1, 3000), 1);
    char want[64];
    snprintf(want, sizeof(want), "the queue 0 tx ring (grant %u) is still granted", t->txref);
    CU_ASSERT_TRUE(report_has(t, want, "Invalidating an unused GTF_permit_access entry", NULL));
    toolstack_unplug(u);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(u->g->gs, u->txmem, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(u->g->gs, u->rxmem, 1), 0);
    sx_xenbus_write(E.xb, XBT_NULL, u->fe, "state", "6");
    uint64_t end = sx_now_ms() + 1800;
    while (sx_now_ms() < end && chk(u, "findings") == 0)
        usleep(20000);
    CU_ASSERT_EQUAL(chk(u, "findings"), 0);
    vifs_down();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_good_frontend_has_no_findings),
    SX_TEST(test_tx_chains_linux_rejects),
    SX_TEST(test_tx_id_reused_while_in_flight),
    SX_TEST(test_tx_published_without_notification),
    SX_TEST(test_tx_producer_index_past_the_ring),
    SX_TEST(test_tx_grant_unusable),
    SX_TEST(test_rx_id_reused_while_posted),
    SX_TEST(test_sg_packet_the_backend_did_not_offer),
    SX_TEST(test_rx_notify_key_missing),
    SX_TEST(test_queues_beyond_the_offer),
    SX_TEST(test_rings_granted_after_toolstack_unplug),
};

SX_TEST_MAIN("netback_check", cases, suite_init, suite_clean)
