/*
 * The 2021 grant advisories, against netback:
 *
 *   XSA-367 ("Linux: netback fails to honor grant mapping errors"): a tx batch in which one
 *     packet's grant operation failed went on as if it had succeeded (the frame handed on with
 *     whatever the buffer held).
 *   XSA-361 ("Linux: grant mapping error handling"): in a batch, errors of some entries were
 *     ignored or stopped the inspection of the others.
 *   XSA-362 ("Linux: backends treating grant mapping errors as bugs"): errors a guest can cause
 *     crashed the backend.
 *
 * netback grant-copies a whole tx (or rx) batch in one sx_gnt_copy and then checks every
 * segment's status: a packet any of whose segments failed is answered with an error and never
 * reaches the world side, the batch's other packets go on; an rx frame whose buffer's copy
 * failed reports the error in its slots and the next frames are delivered. A world-side TAP of
 * the test's own on the bridge sees exactly what netback sends.
 */
#include "tests/netguest.h"

static struct netenv E;
static struct netguest G, H;
static struct netvif good, hv;
static struct sx_tap *world;
static unsigned next_dev = 1;
static int other_dom;

#define ET 0x88b5

static void good_still_works(void)
{
    uint64_t before = nv_stat(&good, "tx_pkts");
    CU_ASSERT_TRUE(nv_send_ok(&good));
    CU_ASSERT_TRUE(nv_stat_wait(&good, "tx_pkts", before + 1, 2000) >= before + 1);
}

static bool hostile_open(void)
{
    nv_close(&hv);
    int rc = nv_open(&hv, &H, next_dev++);
    CU_ASSERT_EQUAL(rc, 0);
    return rc == 0;
}

/* Mark the 60-byte frame in page p of t: "X367" and a number after the Ethernet header. */
static void mark(struct netvif *t, unsigned p, uint8_t n)
{
    uint8_t *f = (uint8_t *)t->data + p * 4096;
    memcpy(f + 14, "X367", 4);
    f[18] = n;
}

/* Marked frames arriving at the world side within ms: a bit per number seen; stops early once
 * every bit of `want` was seen and nothing else. */
static unsigned world_marks(unsigned want, int ms)
{
    unsigned seen = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    uint8_t f[128];
    while (sx_now_ms() < end) {
        int n = nv_world_recv(world, ET, f, sizeof(f), (int)(end - sx_now_ms()));
        if (n >= 19 && !memcmp(f + 14, "X367", 4) && f[18] < 32)
            seen |= 1u << f[18];
        if (seen == want)
            break;
    }
    return seen;
}

static void drain_world(void)
{
    uint8_t f[128];
    while (nv_world_recv(world, ET, f, sizeof(f), 50) > 0)
        ;
}

/* XSA-367: five packets in one batch, the third with a grant nobody gave: it alone fails and
 * never reaches the world; the other four arrive there intact. */
static void test_xsa367_failed_copy_in_a_batch_fails_that_packet_only(void)
{
    if (!hostile_open())
        return;
    drain_world();
    for (unsigned p = 0; p < 4; p++)
        mark(&hv, p, (uint8_t)(p < 2 ? p : p + 1));   /* pages hold packets 0, 1, 3, 4 */
    nv_put(&hv, hv.drefs[0], 0, 60, 0);
    nv_put(&hv, hv.drefs[1], 0, 60, 0);
    nv_put(&hv, 31337, 0, 60, 0);                      /* packet 2 */
    nv_put(&hv, hv.drefs[2], 0, 60, 0);
    nv_put(&hv, hv.drefs[3], 0, 60, 0);
    nv_push(&hv);
    netif_tx_response_t r[5];
    CU_ASSERT_EQUAL_FATAL(nv_rsp(&hv, r, 5, 2000), 5);
    for (unsigned i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(r[i].status, i == 2 ? NETIF_RSP_ERROR : NETIF_RSP_OKAY);
    unsigned seen = world_marks(0x1b, 3000);
    seen |= world_marks(1u << 2, 300);                 /* and packet 2 never comes */
    CU_ASSERT_EQUAL(seen, 0x1b);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_drop_grant"), 1);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_fatal"), 0);
    CU_ASSERT_TRUE(nv_send_ok(&hv));
    good_still_works();
}

/* XSA-367/361: a three-slot packet whose last slot's grant fails: every slot answered with an
 * error, nothing of it reaches the world, the next packet does. */
static void test_xsa367_failed_copy_in_a_following_slot_fails_the_packet(void)
{
    if (!hostile_open())
        return;
    drain_world();
    mark(&hv, 0, 7);
    mark(&hv, 1, 8);
    nv_put(&hv, hv.drefs[0], 0, 60 + 40 + 40, NETTXF_more_data);
    nv_put(&hv, hv.drefs[2], 100, 40, NETTXF_more_data);
    nv_put(&hv, 424242, 0, 40, 0);
    nv_put(&hv, hv.drefs[1], 0, 60, 0);
    nv_push(&hv);
    netif_tx_response_t r[4];
    CU_ASSERT_EQUAL_FATAL(nv_rsp(&hv, r, 4, 2000), 4);
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(r[i].status, NETIF_RSP_ERROR);
    CU_ASSERT_EQUAL(r[3].status, NETIF_RSP_OKAY);
    unsigned seen = world_marks(1u << 8, 3000);
    seen |= world_marks(1u << 7, 300);
    CU_ASSERT_EQUAL(seen, 1u << 8);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_fatal"), 0);
    good_still_works();
}

/* XSA-362: grant errors a guest causes are answered: an ended grant, one given to another
 * domain, refs at the table's ends; a read-only grant is enough for tx (netback only reads). */
static void test_xsa362_guest_caused_grant_errors_are_answered(void)
{
    if (!hostile_open())
        return;
    grant_ref_t ended, foreign, ro;
    void *pe, *pf, *pro;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(H.gs, 0, 1, false, &ended, &pe), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(H.gs, (domid_t)other_dom, 1, false, &foreign, &pf), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(H.gs, 0, 1, false, &ro, &pro), 0);
    memcpy(pro, hv.data, 60);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(H.gs, pe, 1), 0);
    const grant_ref_t bad[] = { ended, foreign, 0xffffffffu, 0x7fffffffu };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nv_put(&hv, bad[i], 0, 60, 0);
        nv_push(&hv);
        netif_tx_response_t r;
        CU_ASSERT_EQUAL(nv_rsp(&hv, &r, 1, 2000), 1);
        CU_ASSERT_EQUAL(r.status, NETIF_RSP_ERROR);
    }
    nv_put(&hv, ro, 0, 60, 0);
    nv_push(&hv);
    netif_tx_response_t r;
    CU_ASSERT_EQUAL(nv_rsp(&hv, &r, 1, 2000), 1);
    CU_ASSERT_EQUAL(r.status, NETIF_RSP_OKAY);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_drop_grant"), 4);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(H.gs, pf, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(H.gs, pro, 1), 0);
    CU_ASSERT_TRUE(nv_send_ok(&hv));
    good_still_works();
}

/* XSA-361 on rx: of four posted buffers the third names a grant nobody gave. Four frames from
 * the world: the one copied into the bad buffer reports an error, the three others arrive
 * intact, and the vif goes on (no halt). */
static void test_xsa361_rx_copy_into_a_bad_buffer_fails_that_frame_only(void)
{
    if (!hostile_open())
        return;
    for (unsigned i = 0; i < 4; i++) {
        netif_rx_request_t q = { .id = (uint16_t)i, .gref = i == 2 ? 31337 : hv.rxrefs[i] };
        CU_ASSERT_EQUAL(sx_front_ring_put_req(&hv.rx, &q), 0);
    }
    sx_front_ring_push(&hv.rx);
    sx_evtchn_notify(H.ev, (evtchn_port_t)hv.port);
    /* The new bridge port may need a moment: the world sends until four responses came. */
    uint8_t f[SX_TAP_VNET_HDR_LEN + 60];
    memset(f, 0, sizeof(f));
    uint8_t *e = f + SX_TAP_VNET_HDR_LEN;
    memset(e, 0xff, 6);
    memcpy(e + 6, (uint8_t[]){ 0x02, 0, 0, 0, 0, 0x99 }, 6);
    e[12] = ET >> 8;
    e[13] = ET & 0xff;
    memcpy(e + 14, "X361", 4);
    /* A frame the bridge flooded before this test (another vif's broadcast still on its way
     * under load) may take a good buffer first: it is answered, not counted, and its buffer
     * posted again; the test wants its own four. */
    netif_rx_response_t rsp[4];
    unsigned got = 0, ok = 0, err = 0, foreign = 0;
    uint64_t end = sx_now_ms() + 20000;
    for (uint8_t n = 0; got < 4 && sx_now_ms() < end; n++) {
        e[18] = n;
        CU_ASSERT_EQUAL(write(sx_tap_fd(world, 0), f, sizeof(f)), (ssize_t)sizeof(f));
        usleep(20000);
        netif_rx_response_t r;
        while (got < 4 && sx_front_ring_take_rsp(&hv.rx, &r, 1) == 1) {
            const uint8_t *pg = (const uint8_t *)hv.rxbuf + (r.id & 3) * 4096 + r.offset;
            if (r.status >= 0 && memcmp(pg + 14, "X361", 4) && foreign < 8) {
                foreign++;
                netif_rx_request_t q = { .id = r.id, .gref = hv.rxrefs[r.id & 3] };
                CU_ASSERT_EQUAL(sx_front_ring_put_req(&hv.rx, &q), 0);
                sx_front_ring_push(&hv.rx);
                sx_evtchn_notify(H.ev, (evtchn_port_t)hv.port);
                continue;
            }
            rsp[got++] = r;
        }
    }
    if (foreign)
        fprintf(stderr, "xsa361 rx: %u frame(s) from before the test answered first\n", foreign);
    CU_ASSERT_EQUAL_FATAL(got, 4);
    for (unsigned i = 0; i < 4; i++) {
        if (rsp[i].status < 0) {
            err++;
            CU_ASSERT_EQUAL(rsp[i].id, 2);
            continue;
        }
        const uint8_t *pg = (const uint8_t *)hv.rxbuf + rsp[i].id * 4096 + rsp[i].offset;
        ok += rsp[i].status == 60 && rsp[i].id != 2 && !memcmp(pg + 14, "X361", 4);
    }
    CU_ASSERT_EQUAL(err, 1);
    CU_ASSERT_EQUAL(ok, 3);
    CU_ASSERT_EQUAL(nv_stat(&hv, "rx_drop_grant"), 1);
    CU_ASSERT_EQUAL(nv_stat(&hv, "rx_fatal"), 0);
    CU_ASSERT_TRUE(nv_send_ok(&hv));
    good_still_works();
}

static int suite_init(void)
{
    if (netenv_start(&E, 20000) < 0)
        return 1;
    other_dom = sxc_domain_create(E.ctl, "other", SXD_TYPE_PV, 8, 1, false);
    if (other_dom < 0 || netguest_open(&E, &G, "good") || netguest_open(&E, &H, "hostile") ||
        nv_open(&good, &G, 0))
        return 1;
    world = nv_world_open("sxworld0");
    return world ? 0 : 1;
}

static int suite_clean(void)
{
    nv_close(&hv);
    nv_close(&good);
    sx_tap_close(world);
    world = NULL;
    netguest_close(&G);
    netguest_close(&H);
    if (other_dom > 0)
        sxc_domain_destroy(E.ctl, (domid_t)other_dom);
    netenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa367_failed_copy_in_a_batch_fails_that_packet_only),
    SX_TEST(test_xsa367_failed_copy_in_a_following_slot_fails_the_packet),
    SX_TEST(test_xsa362_guest_caused_grant_errors_are_answered),
    SX_TEST(test_xsa361_rx_copy_into_a_bad_buffer_fails_that_frame_only),
};

SX_TEST_MAIN("xsa361_362_367_netback", cases, suite_init, suite_clean)
