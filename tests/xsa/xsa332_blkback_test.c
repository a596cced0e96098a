/*
 * XSA-332 ("Linux: Event processing can cause a denial of service"): a guest notifies its event
 * channel in a loop with nothing on its ring, and each notification costs the backend a
 * wakeup; Linux fixed it with late EOI (xen_irq_lateeoi): an event that found no work is
 * spurious, and spurious events in a row keep the port masked for a growing, capped time.
 * blkback's queue threads end their events the same way (sx_idle, ring/idle.c).
 *
 * Here, against blkback's daemon code in-process (tests/blkguest.h): one guest storms, then
 * two at once. Each storm must cost the storming guest's queue thread a small share of a core
 * (before late EOI: 18-44%), be counted in its stats file (spurious_events, eoi_delays), leave
 * its own real request served during the storm, and never delay another guest's reads.
 */
#define SX_LOG_MODULE "xsa332_test"
#include "tests/blkguest.h"
#include "tests/storm.h"

static struct blkenv E;
static struct blkguest G[3];

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    /* The default spin budget: an empty notification must buy none of it. */
    o.spin_ns = SX_RING_SPIN_NS_DEFAULT;
    o.engine = SX_BIO_SYNC;
    return blkenv_start(&E, &o) < 0 ? -1 : 0;
}

static int suite_clean(void)
{
    for (unsigned i = 0; i < 3; i++)
        blkguest_destroy(&G[i]);
    blkenv_stop(&E);
    return 0;
}

static struct blkguest *guest(unsigned i, const char *name)
{
    struct blkguest_opts o = { .name = name, .persistent = true };
    blkguest_destroy(&G[i]);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G[i], &o), 0);
    return &G[i];
}

static const char *const names[] = { "sleeps", "spurious_events", "eoi_delays",
                                     "eoi_delayed_us" };

/* Put a request and push it without notifying (only the storm thread may use the storming
 * guest's handle; its notifications carry the request); wait up to ms for the response.
 * Returns the status, 100 when no response came, 101 for a response to another id. */
static int put_and_wait(struct blkguest *g, const blkif_request_t *r, int ms)
{
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&g->ring, r), 0);
    sx_front_ring_push(&g->ring);
    uint64_t end = sx_now_ns() + (uint64_t)ms * 1000000u;
    blkif_response_t rsp;
    do {
        if (sx_front_ring_take_rsp(&g->ring, &rsp, 1) == 1)
            return rsp.id == r->id ? rsp.status : 101;
        usleep(1000);
    } while (sx_now_ns() < end);
    return 100;
}

struct storming {
    struct blkguest *g;
    struct sx_test_storm st;
    uint64_t before[4];
    uint64_t own_ns;                  /* its own read, during the storm */
    int own_status;
};

static void storm_start(struct storming *s, struct blkguest *g)
{
    char victim[16];
    snprintf(victim, sizeof(victim), "bb%u.%u-q0", g->dom, g->devid);
    s->g = g;
    CU_ASSERT_TRUE(blkguest_good_read(g, 5));   /* served before the storm */
    for (int i = 0; i < 4; i++)
        s->before[i] = blkguest_stat(g, names[i]);
    CU_ASSERT_EQUAL_FATAL(sx_test_storm_start(&s->st, g->evt, (evtchn_port_t)g->port, victim), 0);
}

/* The storming guest's own read, pushed without a notification of its own: its port is masked
 * for hundreds of ms by now, and the read is served when the delay ends, at the latest. */
static void storm_own_read(struct storming *s)
{
    struct blkguest *g = s->g;
    memset(g->data, 0, SX_PAGE_SIZE);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 7, 1, g->data_refs[0], 0, 7);
    uint64_t t = sx_now_ns();
    s->own_status = put_and_wait(g, &r, 5000);
    s->own_ns = sx_now_ns() - t;
    CU_ASSERT_EQUAL(s->own_status, BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(g->data[0], 7);
}

/* Stop at window_ns after the start; print and check what it cost and what was counted. */
static void storm_check(struct storming *s, const char *what, uint64_t window_ns)
{
    uint64_t d[4];
    sx_test_storm_stop(&s->st, window_ns);
    for (int i = 0; i < 4; i++)
        d[i] = blkguest_stat(s->g, names[i]) - s->before[i];
    sx_test_storm_print(&s->st, what, d[0], d[1], d[2], d[3]);
    printf("  the storming guest's own read took %.1f ms\n", (double)s->own_ns / 1e6);
    CU_ASSERT(s->st.share < 0.15);
    CU_ASSERT(s->before[1] != UINT64_MAX && d[1] >= 5);
    CU_ASSERT(s->before[2] != UINT64_MAX && d[2] >= 3);
    /* After the storm the guest is served again (its port unmasked within the delay cap). */
    CU_ASSERT_TRUE(blkguest_good_read(s->g, 8));
}

/* Reads of g for window_ns: how many, the slowest one (ns). Each must succeed. */
static unsigned bystander_reads(struct blkguest *g, uint64_t window_ns, uint64_t *worst_ns)
{
    unsigned n = 0;
    uint64_t end = sx_now_ns() + window_ns;
    *worst_ns = 0;
    while (sx_now_ns() < end) {
        uint64_t t = sx_now_ns();
        CU_ASSERT_TRUE(blkguest_good_read(g, 16 + n % 64));
        t = sx_now_ns() - t;
        *worst_ns = t > *worst_ns ? t : *worst_ns;
        n++;
    }
    return n;
}

static void test_xsa332_event_storm_costs_bounded_cpu(void)
{
    struct blkguest *d = guest(0, "storm"), *a = guest(1, "bystander");
    struct storming s;
    storm_start(&s, d);
    CU_ASSERT_TRUE(blkguest_good_read(a, 6));    /* another guest: served as usual */
    sx_test_storm_wait(&s.st, 1000000000ull);
    storm_own_read(&s);
    storm_check(&s, "blkback storm", 2000000000ull);
    blkguest_destroy(d);
    blkguest_destroy(a);
}

/* Two guests storm at once while a third reads: both storms stay bounded and counted, the
 * reader's every read completes, none slowed to a storm's delay (hundreds of ms). */
static void test_xsa332_two_storms_and_a_reader(void)
{
    struct blkguest *d1 = guest(0, "storm1"), *d2 = guest(1, "storm2"), *a = guest(2, "reader");
    struct storming s1, s2;
    storm_start(&s1, d1);
    storm_start(&s2, d2);
    uint64_t worst;
    unsigned n = bystander_reads(a, 1500000000ull, &worst);
    printf("\n  reader during two storms: %u reads, slowest %.1f ms\n", n, (double)worst / 1e6);
    CU_ASSERT_TRUE(n >= 10);
    CU_ASSERT_TRUE(worst < 250000000ull);
    storm_own_read(&s1);
    storm_own_read(&s2);
    storm_check(&s1, "blkback storm 1 of 2", 2500000000ull);
    storm_check(&s2, "blkback storm 2 of 2", 2500000000ull);
    for (unsigned i = 0; i < 3; i++)
        blkguest_destroy(&G[i]);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa332_event_storm_costs_bounded_cpu),
    SX_TEST(test_xsa332_two_storms_and_a_reader),
};

SX_TEST_MAIN("xsa332_blkback", cases, suite_init, suite_clean)
