/*
 * CVE-2026-45890's attack against blkback (the Linux fix for netback cites blkback's guard as
 * the model): multi-queue-num-queues "0" (or any spelling of zero, or past the maximum) fails
 * that vbd alone (Closing, an error node naming the key, nothing mapped), and the same vbd is
 * served once the frontend starts over with a valid count.
 */
#define SX_LOG_MODULE "cve_test"
#include "tests/blkguest.h"

static struct blkenv E;
static struct blkguest G, B;

static void test_cve_2026_45890_zero_queues_refused(void)
{
    static const char *const zeros[] = { "0", "00", "-0", "0x0", "99" };
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "zero-%zu", i);
        struct blkguest_opts o = { .name = name };
        blkguest_destroy(&G);
        CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G, &o), 0);
        /* Start over with the bad count. */
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "6"), 0);
        CU_ASSERT_TRUE(blkguest_quiesce(&G));
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosed, 20000), 0);
        uint64_t mapped = sx_gnt_mapped_pages(E.d->gnt);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "multi-queue-num-queues",
                                        zeros[i]), 0);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "1"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateInitWait, 20000), 0);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "3"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosing, 20000), 0);
        char *err = NULL;
        CU_ASSERT_EQUAL(sx_xenbus_read(E.xb, XBT_NULL, G.bep, "error", &err, NULL), 0);
        CU_ASSERT(err && strstr(err, "multi-queue-num-queues"));
        free(err);
        CU_ASSERT_EQUAL(sx_gnt_mapped_pages(E.d->gnt), mapped);
        /* Valid again: served. */
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "6"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosed, 20000), 0);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "multi-queue-num-queues", "1"), 0);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "1"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateInitWait, 20000), 0);
        CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", "3"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateConnected, 20000), 0);
        CU_ASSERT_TRUE(blkguest_good_read(&G, 16));
        CU_ASSERT_TRUE(blkguest_good_read(&B, 16));
    }
}

static int suite_init(void)
{
    struct blkguest_opts ob = { .name = "bystander" };
    return blkenv_start(&E, NULL) < 0 || blkguest_up(&E, &B, &ob) < 0 ? -1 : 0;
}

static int suite_clean(void)
{
    blkguest_destroy(&G);
    blkguest_destroy(&B);
    blkenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_cve_2026_45890_zero_queues_refused),
};

SX_TEST_MAIN("cve_2026_45890_blkback", cases, suite_init, suite_clean)
