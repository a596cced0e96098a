/* netback/rate.c: the libxl "BYTES,USECS" rate key and the tx credit limiter. */
#include <errno.h>
#include <string.h>

#include "tests/sxtest.h"
#include "netback/common.h"

static void test_rate_parse_accepts_libxl_form(void)
{
    uint64_t b = 0, u = 0;
    CU_ASSERT_EQUAL(nb_rate_parse("100000,20000", &b, &u), 0);
    CU_ASSERT_EQUAL(b, 100000);
    CU_ASSERT_EQUAL(u, 20000);
    CU_ASSERT_EQUAL(nb_rate_parse("0,1", &b, &u), 0);
    CU_ASSERT_EQUAL(b, 0);
}

static void test_rate_parse_rejects_garbage(void)
{
    uint64_t b = 7, u = 7;
    const char *bad[] = { "", ",", "100", "100,", ",100", "-1,100", "100,-1", "100,0",
                          "1x,100", "100,100x", " 100,100", "100, 100",
                          "99999999999999999999999,1", "1,99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(nb_rate_parse(bad[i], &b, &u), -EINVAL);
    CU_ASSERT_EQUAL(nb_rate_parse(NULL, &b, &u), -EINVAL);
    CU_ASSERT_EQUAL(b, 7);
    CU_ASSERT_EQUAL(u, 7);
}

static void test_credit_spent_then_replenished(void)
{
    struct nb_rate r;
    uint64_t wait = 0, t = 1000000000ull;
    nb_rate_init(&r, 3000, 10000);                  /* 3000 bytes per 10 ms */
    CU_ASSERT_TRUE(nb_rate_take(&r, 1500, t, &wait));
    CU_ASSERT_TRUE(nb_rate_take(&r, 1500, t + 1000, &wait));
    CU_ASSERT_FALSE(nb_rate_take(&r, 100, t + 2000, &wait));
    CU_ASSERT_EQUAL(wait, 10000000ull - 2000);       /* until the interval ends */
    CU_ASSERT_FALSE(nb_rate_take(&r, 100, t + 9999999, &wait));
    CU_ASSERT_TRUE(nb_rate_take(&r, 100, t + 10000000, &wait));
    /* 2900 left + 3000 of the next interval */
    CU_ASSERT_TRUE(nb_rate_take(&r, 5900, t + 20000000, &wait));
    CU_ASSERT_FALSE(nb_rate_take(&r, 1, t + 20000000, &wait));
}

static void test_credit_carry_over_is_capped(void)
{
    struct nb_rate r;
    uint64_t wait = 0, t = 0;
    nb_rate_init(&r, 100000, 1000);                 /* 100 kB per ms, burst 128 KiB */
    for (int i = 0; i < 10; i++)                    /* idle for 10 intervals */
        CU_ASSERT_TRUE(nb_rate_take(&r, 0, t += 1000000, &wait));
    CU_ASSERT_TRUE(nb_rate_take(&r, NB_RATE_MIN_BURST, t, &wait));
    CU_ASSERT_FALSE(nb_rate_take(&r, 1, t, &wait));
}

static void test_packet_above_rate_passes_after_carry_over(void)
{
    struct nb_rate r;
    uint64_t wait = 0, t = 5000;
    nb_rate_init(&r, 1000, 1000);                   /* 1000 bytes per ms, a 60 kB GSO frame */
    int intervals = 0;
    while (!nb_rate_take(&r, 60000, t, &wait) && intervals < 100) {
        CU_ASSERT_TRUE(wait > 0 && wait <= 1000000);
        t += wait;
        intervals++;
    }
    CU_ASSERT_EQUAL(intervals, 59);                 /* credit accumulated over 60 intervals */
}

static void test_unlimited_never_waits(void)
{
    struct nb_rate r;
    uint64_t wait = 0;
    nb_rate_init(&r, 0, 0);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_TRUE(nb_rate_take(&r, 65535, (uint64_t)i, &wait));
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_rate_parse_accepts_libxl_form),
    SX_TEST(test_rate_parse_rejects_garbage),
    SX_TEST(test_credit_spent_then_replenished),
    SX_TEST(test_credit_carry_over_is_capped),
    SX_TEST(test_packet_above_rate_passes_after_carry_over),
    SX_TEST(test_unlimited_never_waits),
};

SX_TEST_MAIN("netback_rate", cases, NULL, NULL)
