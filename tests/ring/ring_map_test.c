/*
 * sx_ring_map/sx_ring_unmap on the sim platform: a guest shares a 2^order-page ring, dom0 maps
 * it from the grant-reference list and both sides run the ring through their own mappings.
 */
#include "ring/ring.h"

#include <errno.h>
#include <xen/io/blkif.h>

#include "grant/grant.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"

static struct simenv env;
static struct sx_plat *dom0, *guest;
static struct sx_gnt *gnt;
static struct sx_gntshr *shr;
static domid_t gid;

static int setup(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    if (!dom0)
        return 1;
    int d = sxc_domain_create(dom0->conn, "ring-map-guest", SXD_TYPE_PV, 16, 1, false);
    if (d < 0)
        return 1;
    gid = (domid_t)d;
    guest = simenv_plat(&env, gid);
    if (!guest || sx_gnt_open(&gnt, dom0) < 0 || sx_gntshr_open(&shr, guest) < 0)
        return 1;
    return 0;
}

static int teardown(void)
{
    sx_gnt_close(gnt);
    sx_gntshr_close(shr);
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static void test_map_orders_0_to_4_and_run_the_ring(void)
{
    for (unsigned order = 0; order <= SX_RING_MAX_ORDER; order++) {
        unsigned pages = 1u << order;
        grant_ref_t refs[SX_RING_MAX_PAGES];
        void *gmem = NULL, *bmem = NULL;
        CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, pages, true, refs, &gmem), 0);
        struct sx_front_ring f;
        CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&f, gmem, sx_ring_bytes(order),
                                                 sizeof(blkif_request_t),
                                                 sizeof(blkif_response_t)), 0);

        CU_ASSERT_EQUAL_FATAL(sx_ring_map(gnt, gid, order, refs, &bmem), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(bmem);
        CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), pages);
        struct sx_back_ring b;
        CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&b, bmem, sx_ring_bytes(order),
                                                  sizeof(blkif_request_t),
                                                  sizeof(blkif_response_t)), 0);
        CU_ASSERT_EQUAL(b.nr_ents, 32u << order);

        /* Fill the whole ring so the last slots (on the last granted page) are used. */
        for (unsigned i = 0; i < b.nr_ents; i++) {
            blkif_request_t q = { .operation = BLKIF_OP_READ, .id = order * 1000 + i };
            CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&f, &q), 0);
        }
        CU_ASSERT_EQUAL(sx_front_ring_push(&f), 1);
        blkif_request_t q[SX_RING_MAX_PAGES * 32];
        CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&b, q, b.nr_ents), (int)b.nr_ents);
        for (unsigned i = 0; i < b.nr_ents; i++) {
            CU_ASSERT_EQUAL(q[i].id, order * 1000 + i);
            blkif_response_t r = { .id = q[i].id, .status = BLKIF_RSP_OKAY };
            CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b, &r), 0);
        }
        CU_ASSERT_EQUAL(sx_back_ring_push(&b), 1);
        blkif_response_t r[SX_RING_MAX_PAGES * 32];
        CU_ASSERT_EQUAL(sx_front_ring_take_rsp(&f, r, f.nr_ents), (int)f.nr_ents);
        CU_ASSERT_EQUAL(r[f.nr_ents - 1].id, order * 1000 + f.nr_ents - 1);

        sx_back_ring_detach(&b);
        CU_ASSERT_EQUAL(sx_ring_unmap(gnt, bmem, order), 0);
        CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
        CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gmem, pages), 0);
    }
}

static void test_map_rejects_order_5_and_bad_arguments(void)
{
    grant_ref_t refs[32] = { 0 };
    void *gmem = NULL, *bmem = (void *)1;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, refs, &gmem), 0);
    CU_ASSERT_EQUAL(sx_ring_map(gnt, gid, 5, refs, &bmem), -EINVAL);
    CU_ASSERT_EQUAL(sx_ring_map(gnt, gid, 0, NULL, &bmem), -EINVAL);
    CU_ASSERT_EQUAL(sx_ring_map(gnt, gid, 0, refs, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sx_ring_map(NULL, gid, 0, refs, &bmem), -EINVAL);
    /* Order 1 with only one page granted: the second ref is not ours; nothing stays mapped. */
    refs[1] = refs[0] + 1000;
    bmem = NULL;
    CU_ASSERT_TRUE(sx_ring_map(gnt, gid, 1, refs, &bmem) < 0);
    CU_ASSERT_PTR_NULL(bmem);
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
    CU_ASSERT_EQUAL(sx_ring_unmap(gnt, NULL, 0), 0);          /* NULL-safe */
    CU_ASSERT_EQUAL(sx_ring_unmap(gnt, gmem, 5), -EINVAL);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gmem, 1), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_map_orders_0_to_4_and_run_the_ring),
    SX_TEST(test_map_rejects_order_5_and_bad_arguments),
};

SX_TEST_MAIN("ring_map", cases, setup, teardown)
