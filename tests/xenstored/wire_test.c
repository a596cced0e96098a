/*
 * xenstored's protocol as of Xen 4.19-4.22 (docs/misc/xenstore.txt), with whole xs_wire
 * messages (tests/xsraw.h): GET_FEATURE / SET_FEATURE, GET_QUOTA / SET_QUOTA (global and per
 * domain), and SET_PERMS naming domains that do not exist (ENOENT for the owner, as C
 * xenstored; other entries dropped).
 */
#include "tests/sxtest.h"
#include "tests/xsraw.h"

#define GET_FEATURE 23u
#define SET_FEATURE 24u
#define GET_QUOTA 25u
#define SET_QUOTA 26u

static struct xsenv E;
static int d0, g1;

static int suite_init(void)
{
    static const unsigned doms[] = { 1, 2 };
    if (xsenv_start(&E, doms, 2))
        return -1;
    d0 = xs_conn(&E, 0);
    g1 = xs_conn(&E, 1);
    if (d0 < 0 || g1 < 0)
        return -1;
    return xs_strs(d0, XS_MKDIR, 0, NULL, 0, 1, "/local/domain/1") ||
           xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 2, "/local/domain/1", "n1") ? -1 : 0;
}

static int suite_clean(void)
{
    close(d0);
    close(g1);
    xsenv_stop(&E);
    return 0;
}

static void test_get_and_set_feature(void)
{
    char v[64];
    /* No domid: the features offered to the caller (none here: sockets, no ring page). */
    CU_ASSERT_EQUAL(xs_msg(g1, GET_FEATURE, 0, NULL, 0, v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "0");
    CU_ASSERT_EQUAL(xs_msg(d0, GET_FEATURE, 0, NULL, 0, v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "0");
    /* With a domid: dom0 only; an unknown domain is ENOENT. */
    CU_ASSERT_EQUAL(xs_strs(d0, GET_FEATURE, 0, v, sizeof(v), 1, "1"), 0);
    CU_ASSERT_STRING_EQUAL(v, "0");
    CU_ASSERT_EQUAL(xs_strs(g1, GET_FEATURE, 0, v, sizeof(v), 1, "1"), -EACCES);
    CU_ASSERT_EQUAL(xs_strs(d0, GET_FEATURE, 0, v, sizeof(v), 1, "7"), -ENOENT);
    CU_ASSERT_EQUAL(xs_strs(d0, GET_FEATURE, 0, v, sizeof(v), 2, "1", "2"), -EINVAL);
    /* SET_FEATURE: dom0 only; a domain already introduced is EBUSY, an unknown one ENOENT. */
    CU_ASSERT_EQUAL(xs_strs(g1, SET_FEATURE, 0, NULL, 0, 2, "1", "0"), -EACCES);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_FEATURE, 0, NULL, 0, 2, "1", "0"), -EBUSY);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_FEATURE, 0, NULL, 0, 2, "9", "0"), -ENOENT);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_FEATURE, 0, NULL, 0, 1, "1"), -EINVAL);
}

static void test_get_and_set_quota(void)
{
    char v[256];
    CU_ASSERT_EQUAL(xs_msg(d0, GET_QUOTA, 0, NULL, 0, v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "nodes watches transactions transaction-nodes node-permissions "
                              "path-max node-size");
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 1, "nodes"), 0);
    CU_ASSERT_STRING_EQUAL(v, "1000");
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 2, "1", "node-size"), 0);
    CU_ASSERT_STRING_EQUAL(v, "2048");
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 1, "bogus"), -EINVAL);
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 2, "9", "nodes"), -ENOENT);
    CU_ASSERT_EQUAL(xs_strs(g1, GET_QUOTA, 0, v, sizeof(v), 1, "nodes"), -EACCES);
    /* Domain 1's own quota: 3 nodes (its home counts one). */
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 3, "1", "nodes", "3"), 0);
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 2, "1", "nodes"), 0);
    CU_ASSERT_STRING_EQUAL(v, "3");
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 1, "nodes"), 0);
    CU_ASSERT_STRING_EQUAL(v, "1000");                        /* the global one unchanged */
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "a", ""), 0);
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "b", ""), 0);
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "c", ""), -ENOSPC);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 3, "1", "nodes", "1000"), 0);
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "c", ""), 0);
    /* Watches per domain. */
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 3, "1", "watches", "1"), 0);
    CU_ASSERT_EQUAL(xs_strs(g1, XS_WATCH, 0, NULL, 0, 2, "a", "t1"), 0);
    CU_ASSERT_EQUAL(xs_strs(g1, XS_WATCH, 0, NULL, 0, 2, "b", "t2"), -E2BIG);
    CU_ASSERT_EQUAL(xs_strs(g1, XS_RESET_WATCHES, 0, NULL, 0, 1, ""), 0);
    /* Global: the default of domains introduced later. */
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 2, "node-size", "4096"), 0);
    CU_ASSERT_EQUAL(sxs_domain_add(E.s, 3), 0);
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 2, "3", "node-size"), 0);
    CU_ASSERT_STRING_EQUAL(v, "4096");
    CU_ASSERT_EQUAL(xs_strs(d0, GET_QUOTA, 0, v, sizeof(v), 2, "1", "node-size"), 0);
    CU_ASSERT_STRING_EQUAL(v, "2048");
    /* Bad values: 0 (would disable the check), garbage, unknown names, too many args. */
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 2, "nodes", "0"), -EINVAL);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 2, "nodes", "12x"), -EINVAL);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 2, "bogus", "5"), -EINVAL);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 3, "9", "nodes", "5"), -ENOENT);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 4, "1", "nodes", "5", "6"), -EINVAL);
    CU_ASSERT_EQUAL(xs_strs(g1, SET_QUOTA, 0, NULL, 0, 3, "1", "nodes", "5000"), -EACCES);
    CU_ASSERT_EQUAL(xs_strs(d0, SET_QUOTA, 0, NULL, 0, 2, "node-size", "2048"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_set_perms_naming_a_domain_that_does_not_exist(void)
{
    char v[256];
    CU_ASSERT_EQUAL(xs_write_(d0, 0, "/perm/k", "v"), 0);
    /* An owner that does not exist: ENOENT, the node unchanged. */
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 3, "/perm/k", "n42", "r1"), -ENOENT);
    CU_ASSERT_EQUAL(xs_strs(d0, XS_GET_PERMS, 0, v, sizeof(v), 1, "/perm/k"), 0);
    CU_ASSERT_STRING_EQUAL(v, "n0");
    /* Others that do not exist are dropped; those that do are kept. */
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 4, "/perm/k", "n1", "r42", "r2"), 0);
    struct xsd_sockmsg h = { .type = XS_GET_PERMS, .len = 8 };
    char buf[64];
    CU_ASSERT_TRUE(xs_send_all(d0, &h, sizeof(h)) && xs_send_all(d0, "/perm/k", 8));
    CU_ASSERT_TRUE(xs_recv_all(d0, &h, sizeof(h), 2000));
    CU_ASSERT_TRUE(h.len < sizeof(buf) && xs_recv_all(d0, buf, h.len, 2000));
    CU_ASSERT_EQUAL(h.len, 6);
    CU_ASSERT_EQUAL(memcmp(buf, "n1\0r2\0", 6), 0);
    /* Domain 0 always exists. */
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 3, "/perm/k", "n0", "r0"), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_get_and_set_feature),
    SX_TEST(test_get_and_set_quota),
    SX_TEST(test_set_perms_naming_a_domain_that_does_not_exist),
};

SX_TEST_MAIN("xenstored_wire", cases, suite_init, suite_clean)
