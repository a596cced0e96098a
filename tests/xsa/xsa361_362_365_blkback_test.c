/*
 * The 2021 grant-mapping advisories, against blkback:
 *
 *   XSA-361 ("Linux: grant mapping error handling"): a batch of grant mappings where some fail
 *     and some succeed; Linux ignored some errors (taking a failed entry as mapped) and on
 *     others stopped looking, so the successful entries were never unmapped.
 *   XSA-362 ("Linux: backends treating grant mapping errors as bugs"): errors a guest can cause
 *     hit BUG_ON and crashed the backend's domain.
 *   XSA-365 ("Linux: error handling issues in blkback's grant mapping"): after a failed mapping
 *     blkback used handles it never got and lost the ones it had.
 *
 * splitxen maps a request's segments in one all-or-nothing sx_gnt_map (a failed entry leaves
 * nothing mapped), persistent grants one by one into a cache that unmaps everything at
 * disconnect, indirect pages one by one with the ones mapped unmapped on a failure; every
 * error answers the request and nothing else. The oracle beside the responses: the guest can
 * end its grants (sx_gntshr_unshare fails with -EBUSY while the backend still maps a page),
 * and blkback's count of mapped pages.
 */
#define SX_LOG_MODULE "xsa36x_test"
#include "tests/blkguest.h"

static struct blkenv E;
static struct blkguest G, P, B;   /* no persistent grants; persistent; a bystander */
#define MAX_INDIRECT 1024u          /* 2 indirect pages */
static int other_dom;

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    o.max_pgrants = 8;          /* a small cache: full soon, the rest mapped per request */
    o.max_indirect = MAX_INDIRECT;
    struct blkguest_opts og = { .name = "plain" }, ob = { .name = "bystander" };
    if (blkenv_start(&E, &o) < 0 || blkguest_up(&E, &G, &og) < 0 ||
        blkguest_up(&E, &B, &ob) < 0)
        return -1;
    other_dom = sxc_domain_create(E.ctl, "other", SXD_TYPE_PV, 8, 1, false);
    return other_dom > 0 ? 0 : -1;
}

static int suite_clean(void)
{
    blkguest_destroy(&G);
    blkguest_destroy(&P);
    blkguest_destroy(&B);
    if (other_dom > 0)
        sxc_domain_destroy(E.ctl, (domid_t)other_dom);
    blkenv_stop(&E);
    return 0;
}

static uint64_t mapped(void)
{
    return sx_gnt_mapped_pages(E.d->gnt);
}

/* Fresh pages granted to dom0 for one case (ended by the case: that is the check). */
static void *share(struct blkguest *g, unsigned n, grant_ref_t *refs)
{
    void *p = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(g->shr, 0, n, true, refs, &p), 0);
    return p;
}

/* XSA-361: 11 segments, the sixth a reference nobody granted: the request fails, nothing of
 * the other ten stays mapped (the guest can end their grants), the vbd goes on. */
static void test_xsa361_bad_entry_in_a_batch_leaves_nothing_mapped(void)
{
    grant_ref_t refs[11];
    void *pages = share(&G, 11, refs);
    uint64_t m0 = mapped();
    for (unsigned op = 0; op < 2; op++) {   /* a read (maps writable) and a write */
        blkif_request_t r = blkguest_rw(&G, op ? BLKIF_OP_WRITE : BLKIF_OP_READ, 64, 11, 0, 0, 7);
        for (unsigned i = 0; i < 11; i++)
            r.seg[i].gref = i == 5 ? 31337 : refs[i];
        CU_ASSERT_EQUAL(blkguest_roundtrip(&G, &r, NULL), BLKIF_RSP_ERROR);
        CU_ASSERT_EQUAL(mapped(), m0);
    }
    CU_ASSERT_EQUAL(sx_gntshr_unshare(G.shr, pages, 11), 0);   /* not -EBUSY: none pinned */
    CU_ASSERT_TRUE(blkguest_good_read(&G, 72));
    CU_ASSERT_EQUAL(blkguest_stat(&G, "grant_errors"), 2);
}

/* XSA-361/365 with persistent grants: cached pages, pages the full cache maps per request and
 * a bad one in the same request, over and over: the request fails each time, the mapping count
 * never grows past the ring and the cache (8), and at disconnect it falls back to what it was
 * before the guest came. */
static void test_xsa365_persistent_and_failed_mappings_do_not_leak(void)
{
    uint64_t m0 = mapped();
    struct blkguest_opts op = { .name = "pgrants", .persistent = true };
    blkguest_destroy(&P);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &P, &op), 0);
    grant_ref_t refs[11];
    void *pages = share(&P, 11, refs);
    for (unsigned k = 0; k < 200; k++) {
        blkif_request_t r = blkguest_rw(&P, k % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ, 128, 11, 0, 0,
                                        7);
        for (unsigned i = 0; i < 11; i++)
            r.seg[i].gref = i == 10 - k % 11 ? 424242 : refs[(i + k) % 11];
        CU_ASSERT_EQUAL(blkguest_roundtrip(&P, &r, NULL), BLKIF_RSP_ERROR);
        CU_ASSERT_TRUE(mapped() <= m0 + 1 + 8);
    }
    CU_ASSERT_TRUE(blkguest_good_read(&P, 136));
    uint64_t held = mapped() - m0;
    CU_ASSERT_EQUAL(held, 1 + 8);   /* the ring and a full cache */
    /* Disconnect: every page of the guest is let go; it can end every grant. */
    CU_ASSERT_EQUAL(sx_xenbus_write(E.xb, XBT_NULL, P.fep, "state", "6"), 0);
    CU_ASSERT_TRUE(blkguest_quiesce(&P));
    CU_ASSERT_EQUAL(blkguest_wait_be(&P, XenbusStateClosed, 20000), 0);
    printf("\n  200 failing requests over 11 pages with an 8-entry cache: %llu pages held, all "
           "released at Closed\n", (unsigned long long)held);
    CU_ASSERT_EQUAL(mapped(), m0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(P.shr, pages, 11), 0);
    CU_ASSERT_TRUE(blkguest_good_read(&B, 8));
    blkguest_destroy(&P);
}

/* XSA-365: an indirect request whose second indirect page is not granted: the one mapped
 * before it is unmapped and nothing stays pinned; then good indirect pages whose last segment
 * names a page nobody granted: the segments mapped are let go too. */
static void test_xsa365_failed_indirect_page_unmaps_the_others(void)
{
    grant_ref_t ind[2];
    struct blkif_request_segment *seg = share(&G, 2, ind);
    for (unsigned i = 0; i < MAX_INDIRECT; i++)
        seg[i] = (struct blkif_request_segment){ .gref = G.data_refs[i % BG_NDATA],
                                                 .last_sect = 0 };
    uint64_t m0 = mapped();
    union { blkif_request_t slot; blkif_request_indirect_t r; } u;
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_INDIRECT;
    u.r.indirect_op = BLKIF_OP_READ;
    u.r.id = G.next_id++;
    u.r.nr_segments = MAX_INDIRECT;
    u.r.indirect_grefs[0] = ind[0];
    u.r.indirect_grefs[1] = 777777;      /* not granted */
    CU_ASSERT_EQUAL(blkguest_roundtrip(&G, &u, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(mapped(), m0);
    seg[MAX_INDIRECT - 1].gref = 888888;
    u.r.id = G.next_id++;
    u.r.indirect_grefs[1] = ind[1];
    CU_ASSERT_EQUAL(blkguest_roundtrip(&G, &u, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(mapped(), m0);
    /* and the same request with every segment good is served */
    seg[MAX_INDIRECT - 1].gref = G.data_refs[0];
    u.r.id = G.next_id++;
    CU_ASSERT_EQUAL(blkguest_roundtrip(&G, &u, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(mapped(), m0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(G.shr, seg, 2), 0);
    CU_ASSERT_TRUE(blkguest_good_read(&G, 80));
}

/* XSA-362: errors a guest causes are answered, never taken for bugs: a grant ended before use,
 * one given to another domain, a read-only grant for a read (the backend must write it), refs
 * at the ends of the grant table. blkback, the guest and a bystander go on. */
static void test_xsa362_guest_caused_map_errors_are_answered(void)
{
    grant_ref_t r1, ro, foreign;
    void *p1, *pro, *pf;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(G.shr, 0, 1, true, &r1, &p1), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(G.shr, 0, 1, false, &ro, &pro), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(G.shr, (domid_t)other_dom, 1, true, &foreign, &pf), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(G.shr, p1, 1), 0);   /* ended before the request */
    const struct { uint8_t op; grant_ref_t gref; const char *what; } bad[] = {
        { BLKIF_OP_READ, r1, "ended" },          { BLKIF_OP_WRITE, r1, "ended" },
        { BLKIF_OP_READ, foreign, "foreign" },   { BLKIF_OP_WRITE, foreign, "foreign" },
        { BLKIF_OP_READ, ro, "read-only" },      { BLKIF_OP_READ, 0xffffffffu, "max" },
        { BLKIF_OP_WRITE, 0x7fffffffu, "huge" },
    };
    uint64_t m0 = mapped();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        blkif_request_t r = blkguest_rw(&G, bad[i].op, 96, 1, bad[i].gref, 0, 7);
        int st = blkguest_roundtrip(&G, &r, NULL);
        if (st != BLKIF_RSP_ERROR)
            printf("\n  %s grant, op %u: status %d\n", bad[i].what, bad[i].op, st);
        CU_ASSERT_EQUAL(st, BLKIF_RSP_ERROR);
    }
    CU_ASSERT_EQUAL(mapped(), m0);
    /* A read-only grant is fine for a write (the backend only reads the page). */
    blkif_request_t w = blkguest_rw(&G, BLKIF_OP_WRITE, 96, 1, ro, 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(&G, &w, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(G.shr, pro, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(G.shr, pf, 1), 0);
    CU_ASSERT_TRUE(blkguest_good_read(&G, 104));
    CU_ASSERT_TRUE(blkguest_good_read(&B, 104));
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa361_bad_entry_in_a_batch_leaves_nothing_mapped),
    SX_TEST(test_xsa365_persistent_and_failed_mappings_do_not_leak),
    SX_TEST(test_xsa365_failed_indirect_page_unmaps_the_others),
    SX_TEST(test_xsa362_guest_caused_map_errors_are_answered),
};

SX_TEST_MAIN("xsa361_362_365_blkback", cases, suite_init, suite_clean)
