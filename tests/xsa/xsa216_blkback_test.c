/*
 * XSA-216 ("blkif responses leak backend stack data"): struct blkif_response has holes (one
 * byte after operation and four after status in the native 16 bytes, one byte after operation
 * in the x86_32 layout's 12), and backends that filled the fields of
 * an uninitialised response on their stack copied those holes, and with them stack contents,
 * into the guest's ring. splitxen builds every response byte by byte in a zeroed image
 * (blkback/request.c:sx_blk_rsp_write) and copies exactly the ABI's response size.
 *
 * The guest writes its requests with ids whose bytes under the response's holes are 0xa5 (the
 * response overlays the request slot), so a backend that wrote only the fields would leave
 * them, and one that copied an uninitialised image would leave its garbage. For each kind of
 * response (data read, error, EOPNOTSUPP, an indirect read, a flush, a discard) in both ABIs,
 * the holes must read zero and the bytes past the response must be the request's own.
 */
#define SX_LOG_MODULE "xsa216_test"
#include "tests/blkguest.h"

static struct blkenv E;
static struct blkguest N, X;    /* native and x86_32 guests */

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    struct blkguest_opts on = { .name = "native" }, ox = { .name = "x86-32", .x86_32 = true };
    if (blkenv_start(&E, &o) < 0 || blkguest_up(&E, &N, &on) < 0 ||
        blkguest_up(&E, &X, &ox) < 0)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    blkguest_destroy(&N);
    blkguest_destroy(&X);
    blkenv_stop(&E);
    return 0;
}

/* An id whose every byte is 0xa5 but the lowest (a sequence number). */
static uint64_t canary_id(unsigned seq)
{
    return 0xa5a5a5a5a5a5a500ull | (seq & 0xff);
}

/* Put a request slot (slot_size bytes), push, wait for its response, and return a copy of the
 * whole ring slot as the response left it. */
static bool exchange(struct blkguest *g, const void *req, uint8_t *slot_out, size_t slot_size)
{
    RING_IDX at = g->ring.req_prod_pvt;
    uint8_t *slot = g->ring.ents + (size_t)(at & (g->ring.nr_ents - 1)) * g->ring.entry_size;
    if (sx_front_ring_put_req(&g->ring, req) != 0)
        return false;
    if (sx_front_ring_push(&g->ring) == 1)
        sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    uint8_t rsp[16];
    for (uint64_t end = sx_now_ms() + 2000; sx_now_ms() < end;) {
        if (sx_front_ring_take_rsp(&g->ring, rsp, 1) == 1) {
            memcpy(slot_out, slot, slot_size);
            return true;
        }
        usleep(200);
    }
    return false;
}

/* Check one response slot: fields, zero holes, the request's bytes past the response. */
static void check_native(const uint8_t *req, const uint8_t *slot, uint64_t id, uint8_t op,
                         int16_t status, const char *what)
{
    blkif_response_t r;
    memcpy(&r, slot, sizeof(r));
    bool holes = slot[9] == 0 && slot[12] == 0 && slot[13] == 0 && slot[14] == 0 &&
                 slot[15] == 0;
    bool tail = !memcmp(slot + sizeof(r), req + sizeof(r), sizeof(blkif_request_t) - sizeof(r));
    if (!holes || !tail || r.id != id || r.operation != op || r.status != status)
        printf("\n  native %s: id %llx op %u status %d, holes %02x %02x%02x%02x%02x, tail %s\n",
               what, (unsigned long long)r.id, r.operation, r.status, slot[9], slot[12],
               slot[13], slot[14], slot[15], tail ? "kept" : "changed");
    CU_ASSERT_EQUAL(r.id, id);
    CU_ASSERT_EQUAL(r.operation, op);
    CU_ASSERT_EQUAL(r.status, status);
    CU_ASSERT_TRUE(holes);
    CU_ASSERT_TRUE(tail);
}

static void test_xsa216_native_response_holes_are_zero(void)
{
    unsigned seq = 1;
    uint8_t slot[sizeof(blkif_request_t)];
    /* a read that succeeds */
    blkif_request_t r = blkguest_rw(&N, BLKIF_OP_READ, 8, 1, N.data_refs[0], 0, 7);
    r.id = canary_id(seq++);
    CU_ASSERT_FATAL(exchange(&N, &r, slot, sizeof(slot)));
    check_native((uint8_t *)&r, slot, r.id, BLKIF_OP_READ, BLKIF_RSP_OKAY, "read");
    /* a refused write (segment order) */
    r = blkguest_rw(&N, BLKIF_OP_WRITE, 8, 1, N.data_refs[0], 7, 1);
    r.id = canary_id(seq++);
    CU_ASSERT_FATAL(exchange(&N, &r, slot, sizeof(slot)));
    check_native((uint8_t *)&r, slot, r.id, BLKIF_OP_WRITE, BLKIF_RSP_ERROR, "error");
    /* an unknown operation: EOPNOTSUPP */
    r = blkguest_rw(&N, 0x7f, 8, 1, N.data_refs[0], 0, 7);
    r.id = canary_id(seq++);
    CU_ASSERT_FATAL(exchange(&N, &r, slot, sizeof(slot)));
    check_native((uint8_t *)&r, slot, r.id, 0x7f, BLKIF_RSP_EOPNOTSUPP, "eopnotsupp");
    /* an indirect read: answered with its inner operation */
    union { blkif_request_t slot; blkif_request_indirect_t ind; } u;
    memset(&u, 0, sizeof(u));
    u.ind.operation = BLKIF_OP_INDIRECT;
    u.ind.indirect_op = BLKIF_OP_READ;
    u.ind.nr_segments = 2;
    u.ind.id = canary_id(seq++);
    u.ind.sector_number = 16;
    u.ind.indirect_grefs[0] = N.data_refs[4];
    struct blkif_request_segment *seg = (void *)(N.data + 4 * SX_PAGE_SIZE);
    for (unsigned i = 0; i < 2; i++)
        seg[i] = (struct blkif_request_segment){ .gref = N.data_refs[i], .last_sect = 7 };
    CU_ASSERT_FATAL(exchange(&N, &u, slot, sizeof(slot)));
    check_native((uint8_t *)&u, slot, u.ind.id, BLKIF_OP_READ, BLKIF_RSP_OKAY, "indirect");
    /* a flush and a discard */
    r = blkguest_rw(&N, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, 0);
    r.id = canary_id(seq++);
    CU_ASSERT_FATAL(exchange(&N, &r, slot, sizeof(slot)));
    check_native((uint8_t *)&r, slot, r.id, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY, "flush");
    r = blkguest_discard(&N, 64, 8);
    ((blkif_request_discard_t *)&r)->id = canary_id(seq);
    CU_ASSERT_FATAL(exchange(&N, &r, slot, sizeof(slot)));
    check_native((uint8_t *)&r, slot, canary_id(seq), BLKIF_OP_DISCARD, BLKIF_RSP_OKAY,
                 "discard");
}

static void check_x86_32(const uint8_t *req, const uint8_t *slot, uint64_t id, uint8_t op,
                         int16_t status, const char *what)
{
    struct sx_blkif_x86_32_response r;
    memcpy(&r, slot, sizeof(r));
    const size_t rs = sizeof(r), qs = sizeof(struct sx_blkif_x86_32_request);
    bool tail = !memcmp(slot + rs, req + rs, qs - rs);
    if (slot[9] != 0 || !tail || r.id != id || r.operation != op || r.status != status)
        printf("\n  x86_32 %s: id %llx op %u status %d, hole %02x, tail %s\n", what,
               (unsigned long long)r.id, r.operation, r.status, slot[9],
               tail ? "kept" : "changed");
    CU_ASSERT_EQUAL(r.id, id);
    CU_ASSERT_EQUAL(r.operation, op);
    CU_ASSERT_EQUAL(r.status, status);
    CU_ASSERT_EQUAL(slot[9], 0);
    CU_ASSERT_TRUE(tail);   /* 12 bytes, not the native 16 */
}

static void test_xsa216_x86_32_response_hole_is_zero(void)
{
    union {
        struct sx_blkif_x86_32_request r;
        uint8_t raw[sizeof(struct sx_blkif_x86_32_request)];
    } u;
    uint8_t slot[sizeof(u)];
    unsigned seq = 1;
    /* a read that succeeds, then one that is refused */
    for (unsigned bad = 0; bad < 2; bad++) {
        memset(&u, 0, sizeof(u));
        u.r.operation = BLKIF_OP_READ;
        u.r.u.rw.nr_segments = 1;
        u.r.u.rw.id = canary_id(seq++);
        u.r.u.rw.sector_number = 24;
        u.r.u.rw.seg[0] = (struct blkif_request_segment){ .gref = X.data_refs[0],
                                                          .first_sect = bad ? 5 : 0,
                                                          .last_sect = bad ? 1 : 7 };
        CU_ASSERT_FATAL(exchange(&X, &u, slot, sizeof(slot)));
        check_x86_32(u.raw, slot, u.r.u.rw.id, BLKIF_OP_READ,
                     bad ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, bad ? "error" : "read");
    }
    /* a flush */
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_FLUSH_DISKCACHE;
    u.r.u.rw.id = canary_id(seq);
    CU_ASSERT_FATAL(exchange(&X, &u, slot, sizeof(slot)));
    check_x86_32(u.raw, slot, u.r.u.rw.id, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY, "flush");
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa216_native_response_holes_are_zero),
    SX_TEST(test_xsa216_x86_32_response_hole_is_zero),
};

SX_TEST_MAIN("xsa216_blkback", cases, suite_init, suite_clean)
