/*
 * The xenstored advisories of 2022 (XSA-414 to XSA-421), against splitxen's xenstored with
 * whole xs_wire messages (tests/xsraw.h); after each case the daemon's consistency check
 * (XS_CONTROL check: every node reachable once, owner counts right) passes.
 *
 *   414  a node creation that fails part of the way (here: the quota runs out between the
 *        ancestors a write creates) left accounting and nodes half done: nothing may change.
 *   415  the same inside a transaction: the transaction fails, no orphan node appears.
 *   416  memory for a request was held until its reply was read: a guest that reads no reply
 *        holds at most the reply backlog (tests/xsa/xsa326: replies bounded) and its requests
 *        wait; here, large directory replies.
 *   417  a permission entry for a domain that is gone passed to a new domain with its domid.
 *   418  deleting a deep tree recursed without bound: the deepest tree a path allows goes.
 *   419  nodes a gone domain owned outside its home passed to dom0, out of every quota, and
 *        piled up over its reboots: they are removed.
 *   420  a header with a "negative" (>= 2^31) length livelocked a reader: the connection is
 *        closed, others are served.
 *   421  a node created and deleted in one transaction broke the accounting, letting a guest
 *        create nodes without bound.
 */
#include "tests/sxtest.h"
#include "tests/xsraw.h"

static struct xsenv E;
static int d0, g1, g2;

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
    static const unsigned doms[] = { 1, 2 };
    if (xsenv_start(&E, doms, 2))
        return -1;
    d0 = xs_conn(&E, 0);
    g1 = xs_conn(&E, 1);
    g2 = xs_conn(&E, 2);
    return d0 < 0 || g1 < 0 || g2 < 0 || home(1) || home(2) ? -1 : 0;
}

static int suite_clean(void)
{
    close(d0);
    close(g1);
    close(g2);
    xsenv_stop(&E);
    return 0;
}

static unsigned nodes(void)
{
    struct sxs_stats st;
    sxs_get_stats(E.s, &st);
    return st.nodes;
}

static void test_xsa414_failed_creation_changes_nothing(void)
{
    /* Guest 1 may own 5 nodes (its home is one); a write that would create 6 fails whole. */
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "5"), 0);
    unsigned n0 = nodes();
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "a/b/c/d/e/f", "x"), -ENOSPC);
    CU_ASSERT_EQUAL(nodes(), n0);
    CU_ASSERT_EQUAL(xs_read_(g1, 0, "a", NULL, 0), -ENOENT);
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "a/b/c/d", "x"), 0);          /* 4 fit */
    CU_ASSERT_EQUAL(nodes(), n0 + 4);
    CU_ASSERT_EQUAL(xs_rm_(g1, 0, "a"), 0);
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "1000"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa415_failed_creation_in_a_transaction_fails_it(void)
{
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "5"), 0);
    unsigned n0 = nodes();
    long t = xs_tx_start_(g1);
    CU_ASSERT_FATAL(t > 0);
    CU_ASSERT_EQUAL(xs_write_(g1, (uint32_t)t, "x/y", "1"), 0);
    CU_ASSERT_EQUAL(xs_write_(g1, (uint32_t)t, "p/q/r/s", "1"), -ENOSPC);
    int rc = xs_tx_end_(g1, (uint32_t)t, true);
    CU_ASSERT_TRUE(rc == 0 || rc == -ENOSPC || rc == -ENOMEM || rc == -EAGAIN);
    /* committed: only what succeeded inside it; failed: nothing */
    CU_ASSERT_EQUAL(nodes(), rc == 0 ? n0 + 2 : n0);
    CU_ASSERT_EQUAL(xs_read_(g1, 0, "p", NULL, 0), -ENOENT);        /* no orphan */
    xs_rm_(g1, 0, "x");
    /* The transaction's quota check at commit: each write fits, together they do not. */
    t = xs_tx_start_(g1);
    CU_ASSERT_FATAL(t > 0);
    CU_ASSERT_EQUAL(xs_write_(g1, (uint32_t)t, "m/1", ""), 0);
    CU_ASSERT_EQUAL(xs_write_(d0, 0, "/local/domain/1/z", ""), 0);   /* dom0's, not counted */
    CU_ASSERT_EQUAL(xs_tx_end_(g1, (uint32_t)t, true), -EAGAIN);     /* home changed: retry */
    CU_ASSERT_EQUAL(nodes(), n0 + 1);
    xs_rm_(d0, 0, "/local/domain/1/z");
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "1000"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static uint64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtoull(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void test_xsa416_unread_directory_replies_hold_little(void)
{
    char name[64];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "/dir416/child-with-a-longish-name-%04u", i);
        CU_ASSERT_EQUAL(xs_write_(d0, 0, name, ""), 0);
    }
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 3, "/dir416", "n0", "r1"), 0);
    int g1r = xs_conn(&E, 1);
    CU_ASSERT_FATAL(g1r >= 0);
    struct { struct xsd_sockmsg h; char p[8]; } m = { .h = { .type = XS_DIRECTORY, .len = 8 } };
    memcpy(m.p, "/dir416", 8);
    uint64_t rss0 = rss_kb(), sent = 0;
    for (uint64_t end = sx_now_ms() + 1500; sx_now_ms() < end;) {
        ssize_t n = send(g1r, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(m)) {
            sent++;
            continue;
        }
        if (n >= 0 || errno != EAGAIN)
            break;
        struct pollfd pf = { .fd = g1r, .events = POLLOUT };
        poll(&pf, 1, 50);
    }
    uint64_t rss1 = rss_kb();
    printf("\n  %llu directory requests (4 KB replies) sent, none read; RSS %llu -> %llu kB\n",
           (unsigned long long)sent, (unsigned long long)rss0, (unsigned long long)rss1);
    CU_ASSERT_TRUE(sent < 5000);
    CU_ASSERT_TRUE(rss1 < rss0 + 4096);
    CU_ASSERT_EQUAL(xs_write_(g2, 0, "served", "1"), 0);
    close(g1r);
    CU_ASSERT_EQUAL(xs_rm_(d0, 0, "/dir416"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa417_gone_domains_permissions_not_inherited(void)
{
    CU_ASSERT_EQUAL(sxs_domain_add(E.s, 5), 0);
    CU_ASSERT_EQUAL(xs_write_(d0, 0, "/secret417", "s"), 0);
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 3, "/secret417", "n0", "r5"), 0);
    int g5 = xs_conn(&E, 5);
    CU_ASSERT_FATAL(g5 >= 0);
    char v[16];
    CU_ASSERT_EQUAL(xs_read_(g5, 0, "/secret417", v, sizeof(v)), 0);
    close(g5);
    CU_ASSERT_EQUAL(sxs_domain_remove(E.s, 5), 0);
    /* While 5 does not exist, naming it as owner is ENOENT. */
    CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 2, "/secret417", "n5"), -ENOENT);
    CU_ASSERT_EQUAL(sxs_domain_add(E.s, 5), 0);                      /* the domid reused */
    g5 = xs_conn(&E, 5);
    CU_ASSERT_FATAL(g5 >= 0);
    CU_ASSERT_EQUAL(xs_read_(g5, 0, "/secret417", v, sizeof(v)), -EACCES);
    close(g5);
    CU_ASSERT_EQUAL(sxs_domain_remove(E.s, 5), 0);
    CU_ASSERT_EQUAL(xs_rm_(d0, 0, "/secret417"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa418_deepest_tree_deleted(void)
{
    /* "a/a/a/..." as deep as the relative path limit (2048) allows, by guest 1 in its home. */
    char path[2100];
    size_t len = 0;
    for (unsigned i = 0; i < 1024; i++) {   /* 1024 levels: 2047 characters */
        path[len++] = 'a';
        path[len++] = '/';
    }
    path[len - 1] = '\0';
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "5000"), 0);
    unsigned n0 = nodes();
    CU_ASSERT_EQUAL(xs_write_(g1, 0, path, "deep"), 0);
    CU_ASSERT_EQUAL(nodes(), n0 + 1024);
    /* Any deeper is a longer path: refused, so deletion never goes further down. */
    char deeper[2200];
    snprintf(deeper, sizeof(deeper), "%s/a", path);
    CU_ASSERT_EQUAL(xs_write_(g1, 0, deeper, "x"), -EINVAL);
    CU_ASSERT_EQUAL(xs_rm_(g1, 0, "a"), 0);
    CU_ASSERT_EQUAL(nodes(), n0);
    CU_ASSERT_EQUAL(xs_strs(d0, 26, 0, NULL, 0, 3, "1", "nodes", "1000"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa419_gone_domains_nodes_removed(void)
{
    /* dom0 offers a directory guest 6 may write; guest 6 fills it, then goes: its nodes go.
     * Three reboots with the same domid leave nothing behind. */
    CU_ASSERT_EQUAL(xs_write_(d0, 0, "/shared419", ""), 0);
    unsigned n0 = nodes();
    for (unsigned boot = 0; boot < 3; boot++) {
        CU_ASSERT_EQUAL(sxs_domain_add(E.s, 6), 0);
        CU_ASSERT_EQUAL(xs_strs(d0, XS_SET_PERMS, 0, NULL, 0, 3, "/shared419", "n0", "b6"), 0);
        int g6 = xs_conn(&E, 6);
        CU_ASSERT_FATAL(g6 >= 0);
        char name[64];
        unsigned made = 0;
        for (unsigned i = 0; i < 200; i++) {
            snprintf(name, sizeof(name), "/shared419/b%u-%u/x", boot, i);
            made += xs_write_(g6, 0, name, "v") == 0;
        }
        CU_ASSERT_EQUAL(made, 200);
        close(g6);
        CU_ASSERT_EQUAL(sxs_domain_remove(E.s, 6), 0);
        CU_ASSERT_EQUAL(nodes(), n0);
    }
    CU_ASSERT_EQUAL(xs_rm_(d0, 0, "/shared419"), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa420_negative_length_closes_the_connection(void)
{
    static const uint32_t lens[] = { 0x80000000u, 0xffffffffu, 4097 };
    for (size_t i = 0; i < 3; i++) {
        int g = xs_conn(&E, 1);
        CU_ASSERT_FATAL(g >= 0);
        struct xsd_sockmsg h = { .type = XS_WRITE, .len = lens[i] };
        CU_ASSERT_TRUE(xs_send_all(g, &h, sizeof(h)));
        char c;
        CU_ASSERT_FALSE(xs_recv_all(g, &c, 1, 2000));               /* closed, no reply */
        close(g);
    }
    char v[16];
    CU_ASSERT_EQUAL(xs_write_(g1, 0, "after420", "ok"), 0);
    CU_ASSERT_EQUAL(xs_read_(d0, 0, "/local/domain/1/after420", v, sizeof(v)), 0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static void test_xsa421_create_and_delete_in_a_transaction(void)
{
    unsigned n0 = nodes();
    char name[32];
    for (unsigned i = 0; i < 2000; i++) {
        long t = xs_tx_start_(g1);
        CU_ASSERT_FATAL(t > 0);
        snprintf(name, sizeof(name), "t421/%u", i);
        CU_ASSERT_EQUAL(xs_write_(g1, (uint32_t)t, name, "x"), 0);
        CU_ASSERT_EQUAL(xs_rm_(g1, (uint32_t)t, name), 0);
        CU_ASSERT_EQUAL(xs_tx_end_(g1, (uint32_t)t, true), 0);
    }
    /* Each left t421 itself at most; the accounting agrees (the check), and the quota still
     * lets the guest create what it could before. */
    CU_ASSERT_TRUE(nodes() <= n0 + 1);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
    CU_ASSERT_EQUAL(xs_rm_(g1, 0, "t421"), 0);
    CU_ASSERT_EQUAL(nodes(), n0);
    CU_ASSERT_EQUAL(xs_check_(d0), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa414_failed_creation_changes_nothing),
    SX_TEST(test_xsa415_failed_creation_in_a_transaction_fails_it),
    SX_TEST(test_xsa416_unread_directory_replies_hold_little),
    SX_TEST(test_xsa417_gone_domains_permissions_not_inherited),
    SX_TEST(test_xsa418_deepest_tree_deleted),
    SX_TEST(test_xsa419_gone_domains_nodes_removed),
    SX_TEST(test_xsa420_negative_length_closes_the_connection),
    SX_TEST(test_xsa421_create_and_delete_in_a_transaction),
};

SX_TEST_MAIN("xsa414_421_xenstored", cases, suite_init, suite_clean)
