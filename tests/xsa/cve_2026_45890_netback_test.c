/*
 * CVE-2026-45890 ("xen-netback: reject zero-queue configuration from guest"): a frontend writes
 * "0" to multi-queue-num-queues; Linux netback checked only the upper bound and went on to an
 * allocation of zero queues (a WARN, a host panic with panic_on_warn). The netif protocol
 * requires more than zero. netback must refuse it for that vif alone (Closing with an error
 * node, nothing mapped, no queue thread) and serve the same vif once the frontend offers a
 * valid count, while other vifs pass traffic throughout. Other ways of saying zero ("00", "-0",
 * "0x0") and values past the maximum are refused the same way.
 */
#include "tests/netguest.h"
#include "tests/storm.h"

static struct netenv E;
static struct netguest G, H;
static struct netvif good;
static unsigned next_dev = 1;

static unsigned queue_threads(const struct netvif *t)
{
    char name[16];
    snprintf(name, sizeof(name), "nb%u.%u-q0", t->g->dom, t->dev);
    return sx_test_thread_by_name(name) > 0;
}

static void test_cve_2026_45890_zero_queues_refused(void)
{
    static const char *const zeros[] = { "0", "00", "-0", "0x0", "+0", "99" };
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        uint64_t mapped = sx_gnt_mapped_pages(E.nb->gnt);
        struct netvif t;
        CU_ASSERT_EQUAL(nv_open_ex(&t, &H, next_dev++, "multi-queue-num-queues", zeros[i], NULL,
                                   NULL, XenbusStateClosing), 0);
        CU_ASSERT_EQUAL(sx_xenbus_exists(E.xb, XBT_NULL, t.be, "error"), 1);
        CU_ASSERT_EQUAL(sx_gnt_mapped_pages(E.nb->gnt), mapped);
        CU_ASSERT_EQUAL(nv_stat(&t, "queues"), 0);
        CU_ASSERT_EQUAL(queue_threads(&t), 0);
        /* The frontend starts over with one queue: served. */
        if (i == 0) {
            CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, t.fe, "state", "6"), 0);
            CU_ASSERT_EQUAL(nv_wait_state(&E, t.be, XenbusStateClosed, 20000), 0);
            CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, t.fe, "multi-queue-num-queues", "1"),
                            0);
            CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, t.fe, "state", "1"), 0);
            CU_ASSERT_EQUAL(nv_wait_state(&E, t.be, XenbusStateInitWait, 20000), 0);
            CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, t.fe, "state", "4"), 0);
            CU_ASSERT_EQUAL(nv_wait_state(&E, t.be, XenbusStateConnected, 20000), 0);
            CU_ASSERT_TRUE(nv_send_ok(&t));
            CU_ASSERT_EQUAL(nv_stat(&t, "queues"), 1);
        }
        nv_close(&t);
        CU_ASSERT_TRUE(nv_send_ok(&good));
    }
}

static int suite_init(void)
{
    if (netenv_start(&E, 20000) < 0)
        return 1;
    if (netguest_open(&E, &G, "good") || netguest_open(&E, &H, "hostile"))
        return 1;
    return nv_open(&good, &G, 0) ? 1 : 0;
}

static int suite_clean(void)
{
    nv_close(&good);
    netguest_close(&G);
    netguest_close(&H);
    netenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_cve_2026_45890_zero_queues_refused),
};

SX_TEST_MAIN("cve_2026_45890_netback", cases, suite_init, suite_clean)
