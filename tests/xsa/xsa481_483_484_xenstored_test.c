/*
 * The xenstored advisories of 2026, against splitxen's xenstored (tests/xsraw.h):
 *
 *   481  canonicalize() could fail without an errno for "/local/domain/", and C xenstored then
 *        hit an assert: every malformed path is EINVAL, the connection goes on.
 *   483  a domain's node usage count outlived the domain (oxenstored): a later domain with its
 *        domid could create fewer nodes. The count, and a quota set for the old domain, start
 *        afresh.
 *   484  transaction state was not reset by XS_RESET_WATCHES inside a transaction (or a
 *        connection dropped mid-transaction), and an assert fired later: the transactions go,
 *        their quota is free again, the daemon's check passes.
 */
#include "tests/sxtest.h"
#include "tests/xsraw.h"

static struct xsenv E;
static int d0, g1;

static int home(unsigned domid)
{
    char path[40], owner[8];
    snprintf(path, sizeof(path), "/local/domain/%u", domid);
    snprintf(owner, sizeof(owner), "n%u", domid);
    return xs_strs(d0, XS_MKDIR, 0, NULL, 0, 1, path) ||
           xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 2, path, owner);
}

static int suite_init(void)
{
    static const unsigned doms[] = { 1 };
    if (xsenv_start(&E, doms, 1))
        return -1;
    d0 = xs_conn(&E, 0);
    g1 = xs_conn(&E, 1);
    return d0 < 0 || g1 < 0 || home(1) ? -1 : 0;
}

static int suite_clean(void)
{
    close(d0);
    close(g1);
    xsenv_stop(&E);
    return 0;
}

static void test_xsa481_malformed_paths_are_einval(void)
{
    static const char *const bad[] = {
        "/local/domain/", "/local/domain//", "/local/domain//1", "/local/domain/1/",
        "//", "/a//b", "/a/", "a//b", "a/", "/local/domain/1/x\x7f", "/local/domain/1/x y",
        "/local/domain/99999999999/x/", "@releaseDomain", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fds[2] = { d0, g1 };
        for (int k = 0; k < 2; k++) {
            int rc = xs_write_(fds[k], 0, bad[i], "x");
            if (rc != -EINVAL)
                printf("\n  write \"%s\" as %s: %d\n", bad[i], k ? "guest" : "dom0", rc);
            CU_ASSERT_EQUAL(rc, -EINVAL);
            CU_ASSERT_EQUAL(xs_read_(fds[k], 0, bad[i], NULL, 0), -EINVAL);
        }
    }
    /* Both connections still work. */
    char v[8];
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "ok", "1"), 0);
    CU_ASSERT_EQUAL(xs_read_(d0, 0, "/local/domain/1/ok", v, sizeof(v)), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa483_domid_reuse_starts_with_fresh_counts(void)
{
    /* Domain 7 uses its whole quota (1000 nodes), goes, and comes back with the same domid:
     * it may create 1000 nodes again, with the global quota, not one set for the old 7. */
    CU_ASSERT_EQUAL(sxs_domain_add(E.s, 7), 0);
    CU_ASSERT_EQUAL(home(7), 0);
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "7", "nodes", "400"), 0);
    int g7 = xs_conn(&E, 7);
    CU_ASSERT_FATAL(g7 >= 0);
    char name[32];
    unsigned made = 0;
    for (unsigned i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n/%u/%u", i / 40, i % 40);
        made += xs_write_(g7, 0, name, "") == 0;
    }
    CU_ASSERT_TRUE(made > 350 && made < 400);
    close(g7);
    CU_ASSERT_EQUAL(sxs_domain_remove(E.s, 7), 0);
    CU_ASSERT_EQUAL(sxs_domain_add(E.s, 7), 0);
    char v[16];
    CU_ASSERT_EQUAL(xs_strs(d0, 25, 0, v, sizeof(v), 2, "7", "nodes"), 0);
    CU_ASSERT_STRING_EQUAL(v, "1000");
    CU_ASSERT_EQUAL(home(7), 0);
    g7 = xs_conn(&E, 7);
    CU_ASSERT_FATAL(g7 >= 0);
    made = 0;
    for (unsigned i = 0; i < 900; i++) {
        snprintf(name, sizeof(name), "m/%u/%u", i / 40, i % 40);
        made += xs_write_(g7, 0, name, "") == 0;
    }
    CU_ASSERT_EQUAL(made, 900);
    close(g7);
    CU_ASSERT_EQUAL(sxs_domain_remove(E.s, 7), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa484_reset_watches_inside_a_transaction(void)
{
    for (unsigned round = 0; round < 3; round++) {
        long t[10];
        for (unsigned i = 0; i < 10; i++) {
            t[i] = xs_tx_start_(g1);
            CU_ASSERT_FATAL(t[i] > 0);
        }
        CU_ASSERT_EQUAL(xs_tx_start_(g1), -ENOSPC);                 /* the quota: 10 */
        CU_ASSERT_EQUAL(xs_write_(g1, (uint32_t)t[3], "in484", "x"), 0);
        CU_ASSERT_EQUAL(xs_strs(g1, XS_WATCH, 0, NULL, 0, 2, "in484", "tok"), 0);
        /* RESET_WATCHES sent with a transaction's id. */
        CU_ASSERT_EQUAL(xs_strs(g1, XS_RESET_WATCHES, (uint32_t)t[3], NULL, 0, 1, ""), 0);
        /* The transactions are gone; their work was not committed; the quota is free. */
        CU_ASSERT_EQUAL(xs_tx_end_(g1, (uint32_t)t[3], true), -ENOENT);
        CU_ASSERT_EQUAL(xs_read_(g1, 0, "in484", NULL, 0), -ENOENT);
        CU_ASSERT_EQUAL(xs_strs(g1, XS_UNWATCH, 0, NULL, 0, 2, "in484", "tok"), -ENOENT);
    }
    /* A connection dropped with transactions open gives them back too. */
    int g1b = xs_conn(&E, 1);
    CU_ASSERT_FATAL(g1b >= 0);
    for (unsigned i = 0; i < 10; i++)
        CU_ASSERT_TRUE(xs_tx_start_(g1b) > 0);
    CU_ASSERT_EQUAL(xs_tx_start_(g1), -ENOSPC);
    close(g1b);
    long t = -1;
    for (uint64_t end = sx_now_ms() + 2000; t < 0 && sx_now_ms() < end;)
        if ((t = xs_tx_start_(g1)) < 0)
            usleep(1000);                                   /* the daemon sees the close */
    CU_ASSERT_TRUE(t > 0);
    CU_ASSERT_EQUAL(xs_tx_end_(g1, (uint32_t)t, false), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa481_malformed_paths_are_einval),
    SX_TEST(test_xsa483_domid_reuse_starts_with_fresh_counts),
    SX_TEST(test_xsa484_reset_watches_inside_a_transaction),
};

SX_TEST_MAIN("xsa481_483_484_xenstored", cases, suite_init, suite_clean)
