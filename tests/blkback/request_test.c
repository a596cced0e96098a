/*
 * blkif request decoding/validation: good requests of every operation in both ABIs, every
 * hostile shape a frontend can send, the x86_32 layout (from raw bytes), the response image.
 */
#include "tests/sxtest.h"

#include "blkback/request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct sx_blkif_x86_32_request) == 108, "x86_32 request slot");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.id) == 4, "x86_32 id at 4");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.seg) == 20, "x86_32 seg at 20");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.indirect.indirect_grefs) == 24,
               "x86_32 indirect grefs at 24");
_Static_assert(sizeof(struct sx_blkif_x86_32_response) == 12, "x86_32 response");

static const enum sx_blk_abi abis[] = { SX_BLK_ABI_NATIVE, SX_BLK_ABI_X86_32 };

static struct sx_blk_dev dev;
static struct sx_blk_req *req;
static uint8_t slot[128];

static void reset_dev(void)
{
    dev = (struct sx_blk_dev){
        .sectors = 1u << 20,            /* 512 MiB of 512-byte sectors */
        .sector_size = 512,
        .read_only = false,
        .max_indirect_segs = 1024,
        .features = SX_BLK_F_FLUSH | SX_BLK_F_BARRIER | SX_BLK_F_DISCARD,
    };
}

static int suite_init(void)
{
    reset_dev();
    struct sx_blk_dev big = dev;
    big.max_indirect_segs = SX_BLK_MAX_INDIRECT_SEGS;
    req = malloc(sx_blk_req_size(&big));
    return req ? 0 : 1;
}

static int suite_clean(void)
{
    free(req);
    return 0;
}

static struct blkif_request_segment seg(grant_ref_t g, uint8_t first, uint8_t last)
{
    struct blkif_request_segment s = { .gref = g, .first_sect = first, .last_sect = last };
    return s;
}

/* Slot builders: one per request shape, writing the layout of either ABI. */
static void put_rw(enum sx_blk_abi abi, uint8_t op, uint8_t nseg, uint64_t id, uint64_t sector,
                   const struct blkif_request_segment *segs, unsigned nsegs_given)
{
    memset(slot, 0, sizeof(slot));
    if (abi == SX_BLK_ABI_X86_32) {
        struct sx_blkif_x86_32_request q;
        memset(&q, 0, sizeof(q));
        q.operation = op;
        q.u.rw.nr_segments = nseg;
        q.u.rw.handle = 0x0301;
        q.u.rw.id = id;
        q.u.rw.sector_number = sector;
        for (unsigned i = 0; i < nsegs_given && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
            q.u.rw.seg[i] = segs[i];
        memcpy(slot, &q, sizeof(q));
    } else {
        blkif_request_t q;
        memset(&q, 0, sizeof(q));
        q.operation = op;
        q.nr_segments = nseg;
        q.handle = 0x0301;
        q.id = id;
        q.sector_number = sector;
        for (unsigned i = 0; i < nsegs_given && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
            q.seg[i] = segs[i];
        memcpy(slot, &q, sizeof(q));
    }
}

static void put_discard(enum sx_blk_abi abi, uint8_t flag, uint64_t id, uint64_t sector,
                        uint64_t nr)
{
    memset(slot, 0, sizeof(slot));
    if (abi == SX_BLK_ABI_X86_32) {
        struct sx_blkif_x86_32_request q;
        memset(&q, 0, sizeof(q));
        q.operation = BLKIF_OP_DISCARD;
        q.u.discard.flag = flag;
        q.u.discard.id = id;
        q.u.discard.sector_number = sector;
        q.u.discard.nr_sectors = nr;
        memcpy(slot, &q, sizeof(q));
    } else {
        blkif_request_discard_t q;
        memset(&q, 0, sizeof(q));
        q.operation = BLKIF_OP_DISCARD;
        q.flag = flag;
        q.id = id;
        q.sector_number = sector;
        q.nr_sectors = nr;
        memcpy(slot, &q, sizeof(q));
    }
}

static void put_indirect(enum sx_blk_abi abi, uint8_t iop, uint16_t nseg, uint64_t id,
                         uint64_t sector)
{
    memset(slot, 0, sizeof(slot));
    if (abi == SX_BLK_ABI_X86_32) {
        struct sx_blkif_x86_32_request q;
        memset(&q, 0, sizeof(q));
        q.operation = BLKIF_OP_INDIRECT;
        q.u.indirect.indirect_op = iop;
        q.u.indirect.nr_segments = nseg;
        q.u.indirect.id = id;
        q.u.indirect.sector_number = sector;
        q.u.indirect.handle = 0x0301;
        for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
            q.u.indirect.indirect_grefs[i] = 500 + i;
        memcpy(slot, &q, sizeof(q));
    } else {
        blkif_request_indirect_t q;
        memset(&q, 0, sizeof(q));
        q.operation = BLKIF_OP_INDIRECT;
        q.indirect_op = iop;
        q.nr_segments = nseg;
        q.id = id;
        q.sector_number = sector;
        q.handle = 0x0301;
        for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
            q.indirect_grefs[i] = 500 + i;
        memcpy(slot, &q, sizeof(q));
    }
}

static enum sx_blk_reason decode(enum sx_blk_abi abi)
{
    return sx_blk_req_decode(&dev, abi, slot, req);
}

/* ---- good requests ------------------------------------------------------------------- */

static void test_read_write_eleven_full_pages_both_abis(void)
{
    struct blkif_request_segment s[11];
    for (unsigned i = 0; i < 11; i++)
        s[i] = seg(100 + i, 0, 7);
    for (size_t a = 0; a < 2; a++) {
        for (uint8_t op = BLKIF_OP_READ; op <= BLKIF_OP_WRITE; op++) {
            put_rw(abis[a], op, 11, 0xABCDEF0123456789ull + op, 4096, s, 11);
            CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
            CU_ASSERT_EQUAL(req->op, op);
            CU_ASSERT_EQUAL(req->data_op, op);
            CU_ASSERT_EQUAL(req->id, 0xABCDEF0123456789ull + op);
            CU_ASSERT_EQUAL(req->handle, 0x0301);
            CU_ASSERT_EQUAL(req->sector, 4096);
            CU_ASSERT_EQUAL(sx_blk_req_byte_offset(&dev, req), 4096 * 512);
            CU_ASSERT_EQUAL(req->nr_segs, 11);
            CU_ASSERT_EQUAL(req->nr_sectors, 88);
            CU_ASSERT_TRUE(req->segs_ready);
            CU_ASSERT_EQUAL(req->segs[10].gref, 110);
            CU_ASSERT_EQUAL(sx_blk_seg_bytes(&dev, &req->segs[3]), 4096);
        }
    }
}

static void test_partial_segments_and_exact_end_of_device(void)
{
    struct blkif_request_segment s[2] = { seg(1, 3, 5), seg(2, 0, 0) };
    for (size_t a = 0; a < 2; a++) {
        /* 3 + 1 sectors ending exactly at the last sector */
        put_rw(abis[a], BLKIF_OP_READ, 2, 7, dev.sectors - 4, s, 2);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->nr_sectors, 4);
        CU_ASSERT_EQUAL(sx_blk_seg_offset(&dev, &req->segs[0]), 3 * 512);
        CU_ASSERT_EQUAL(sx_blk_seg_bytes(&dev, &req->segs[0]), 3 * 512);
    }
}

static void test_flush_barrier_discard_good_both_abis(void)
{
    struct blkif_request_segment s[1] = { seg(9, 0, 7) };
    for (size_t a = 0; a < 2; a++) {
        put_rw(abis[a], BLKIF_OP_FLUSH_DISKCACHE, 0, 11, 0, NULL, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->op, BLKIF_OP_FLUSH_DISKCACHE);
        CU_ASSERT_EQUAL(req->data_op, BLKIF_OP_WRITE);
        CU_ASSERT_EQUAL(req->nr_segs, 0);
        CU_ASSERT_EQUAL(req->id, 11);

        put_rw(abis[a], BLKIF_OP_WRITE_BARRIER, 1, 12, 64, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->nr_segs, 1);
        CU_ASSERT_EQUAL(req->nr_sectors, 8);

        put_discard(abis[a], 0, 13, 1000, 2048);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->op, BLKIF_OP_DISCARD);
        CU_ASSERT_EQUAL(req->id, 13);
        CU_ASSERT_EQUAL(req->sector, 1000);
        CU_ASSERT_EQUAL(req->discard.nr_sectors, 2048);
        CU_ASSERT_FALSE(req->discard.secure);

        /* zero-length discard is a no-op, as in Linux blkback */
        put_discard(abis[a], 0, 14, 5, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);

        dev.features |= SX_BLK_F_DISCARD_SECURE;
        put_discard(abis[a], BLKIF_DISCARD_SECURE, 15, 0, dev.sectors);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_TRUE(req->discard.secure);
        reset_dev();
    }
}

/* Xen 4.20's blkif.h: sectors are 512 bytes whatever sector-size; with 4 KiB logical blocks
 * each segment's offset and length and each start are multiples of 8 of them. */
static void test_4k_sector_device_512_byte_units(void)
{
    dev.sector_size = 4096;
    dev.sectors = 8000;                          /* 1000 logical blocks */
    CU_ASSERT_EQUAL(sx_blk_dev_check(&dev), 0);
    struct blkif_request_segment ok[2] = { seg(1, 0, 7), seg(2, 0, 7) };
    struct blkif_request_segment part[1] = { seg(1, 0, 3) };
    struct blkif_request_segment mid[1] = { seg(1, 4, 7) };
    struct blkif_request_segment beyond[1] = { seg(1, 0, 8) };
    for (size_t a = 0; a < 2; a++) {
        put_rw(abis[a], BLKIF_OP_WRITE, 2, 1, 7984, ok, 2);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->nr_sectors, 16);
        CU_ASSERT_EQUAL(sx_blk_seg_bytes(&dev, &req->segs[1]), 4096);
        CU_ASSERT_EQUAL(sx_blk_req_byte_offset(&dev, req), 7984u * 512);
        put_rw(abis[a], BLKIF_OP_WRITE, 2, 1, 7992, ok, 2);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 4, ok, 1);          /* start inside a block */
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_ALIGN);
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, part, 1);        /* half a block */
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_ALIGN);
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, mid, 1);         /* from the middle */
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_ALIGN);
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, beyond, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SEG_BEYOND_PAGE);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_ALIGN), BLKIF_RSP_ERROR);
    }
    reset_dev();
}

/* A discard starts on discard-granularity and discards the whole granules it covers. */
static void test_discard_aligned_to_granularity(void)
{
    dev.discard_granularity = 4096;              /* 8 sectors */
    for (size_t a = 0; a < 2; a++) {
        put_discard(abis[a], 0, 21, 16, 20);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->discard.nr_sectors, 16);            /* the partial granule left */
        put_discard(abis[a], 0, 22, 16, 7);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(req->discard.nr_sectors, 0);             /* nothing to do */
        put_discard(abis[a], 0, 23, 12, 8);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_ALIGN);
        CU_ASSERT_EQUAL(req->id, 23);
        put_discard(abis[a], 0, 24, dev.sectors - 8, 16);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);        /* the range first */
    }
    dev.discard_granularity = 0;                 /* sector-size, here 512: any start */
    put_discard(SX_BLK_ABI_NATIVE, 0, 25, 3, 5);
    CU_ASSERT_EQUAL(decode(SX_BLK_ABI_NATIVE), SX_BLK_OK);
    CU_ASSERT_EQUAL(req->discard.nr_sectors, 5);
    reset_dev();
}

/* ---- hostile requests ---------------------------------------------------------------- */

static void test_unknown_op_is_eopnotsupp_with_id_echoed(void)
{
    static const uint8_t ops[] = { BLKIF_OP_RESERVED_1, 7, 8, 0x80, 0xff };
    for (size_t a = 0; a < 2; a++) {
        for (size_t i = 0; i < sizeof(ops); i++) {
            put_rw(abis[a], ops[i], 1, 0x5555000000000000ull + i, 0, NULL, 0);
            enum sx_blk_reason r = decode(abis[a]);
            CU_ASSERT_EQUAL(r, SX_BLK_E_BAD_OP);
            CU_ASSERT_EQUAL(sx_blk_reason_status(r), BLKIF_RSP_EOPNOTSUPP);
            CU_ASSERT_EQUAL(req->op, ops[i]);
            CU_ASSERT_EQUAL(req->id, 0x5555000000000000ull + i);
        }
    }
}

static void test_features_not_offered_are_eopnotsupp(void)
{
    struct blkif_request_segment s[1] = { seg(9, 0, 7) };
    for (size_t a = 0; a < 2; a++) {
        dev.features = 0;
        dev.max_indirect_segs = 0;
        put_rw(abis[a], BLKIF_OP_FLUSH_DISKCACHE, 0, 1, 0, NULL, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_UNSUPPORTED);
        put_rw(abis[a], BLKIF_OP_WRITE_BARRIER, 1, 1, 0, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_UNSUPPORTED);
        put_discard(abis[a], 0, 1, 0, 8);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_UNSUPPORTED);
        put_indirect(abis[a], BLKIF_OP_READ, 20, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_UNSUPPORTED);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_UNSUPPORTED), BLKIF_RSP_EOPNOTSUPP);
        reset_dev();
        put_discard(abis[a], BLKIF_DISCARD_SECURE, 1, 0, 8);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SECURE_DISCARD);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_SECURE_DISCARD), BLKIF_RSP_EOPNOTSUPP);
    }
}

static void test_segment_count_limits(void)
{
    struct blkif_request_segment s[11];
    for (unsigned i = 0; i < 11; i++)
        s[i] = seg(i, 0, 7);
    for (size_t a = 0; a < 2; a++) {
        put_rw(abis[a], BLKIF_OP_READ, 12, 1, 0, s, 11);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_NR_SEGS), BLKIF_RSP_ERROR);
        put_rw(abis[a], BLKIF_OP_WRITE, 255, 1, 0, s, 11);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        put_rw(abis[a], BLKIF_OP_READ, 0, 1, 0, s, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        put_rw(abis[a], BLKIF_OP_WRITE, 0, 1, 0, s, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        put_rw(abis[a], BLKIF_OP_FLUSH_DISKCACHE, 12, 1, 0, s, 11);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
    }
}

static void test_segment_sector_bounds(void)
{
    for (size_t a = 0; a < 2; a++) {
        struct blkif_request_segment order[2] = { seg(1, 0, 7), seg(2, 5, 4) };
        put_rw(abis[a], BLKIF_OP_READ, 2, 1, 0, order, 2);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SEG_ORDER);
        struct blkif_request_segment beyond[1] = { seg(1, 0, 8) };
        put_rw(abis[a], BLKIF_OP_WRITE, 1, 1, 0, beyond, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SEG_BEYOND_PAGE);
        struct blkif_request_segment way[1] = { seg(1, 200, 255) };
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, way, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SEG_BEYOND_PAGE);
        /* a bad segment after good ones is still caught */
        struct blkif_request_segment late[11];
        for (unsigned i = 0; i < 10; i++)
            late[i] = seg(i, 0, 7);
        late[10] = seg(10, 7, 6);
        put_rw(abis[a], BLKIF_OP_READ, 11, 1, 0, late, 11);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_SEG_ORDER);
    }
}

static void test_range_past_end_and_wrapping(void)
{
    struct blkif_request_segment s[1] = { seg(1, 0, 7) };
    for (size_t a = 0; a < 2; a++) {
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, dev.sectors - 7, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, dev.sectors, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);
        put_rw(abis[a], BLKIF_OP_WRITE, 1, 1, UINT64_MAX - 3, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_WRAP);
        put_rw(abis[a], BLKIF_OP_WRITE, 1, 1, UINT64_MAX, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_WRAP);
        put_discard(abis[a], 0, 1, 2, UINT64_MAX);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_WRAP);
        put_discard(abis[a], 0, 1, dev.sectors - 1, 2);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);
        put_discard(abis[a], 0, 1, dev.sectors + 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_WRAP), BLKIF_RSP_ERROR);
    }
}

static void test_read_only_vbd_refuses_everything_but_reads(void)
{
    struct blkif_request_segment s[1] = { seg(1, 0, 7) };
    dev.read_only = true;
    for (size_t a = 0; a < 2; a++) {
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        put_rw(abis[a], BLKIF_OP_WRITE, 1, 1, 0, s, 1);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_READ_ONLY);
        put_rw(abis[a], BLKIF_OP_FLUSH_DISKCACHE, 0, 1, 0, NULL, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_READ_ONLY);
        put_rw(abis[a], BLKIF_OP_WRITE_BARRIER, 0, 1, 0, NULL, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_READ_ONLY);
        put_discard(abis[a], 0, 1, 0, 8);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_READ_ONLY);
        put_indirect(abis[a], BLKIF_OP_WRITE, 20, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_READ_ONLY);
        put_indirect(abis[a], BLKIF_OP_READ, 20, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(sx_blk_reason_status(SX_BLK_E_READ_ONLY), BLKIF_RSP_ERROR);
    }
    reset_dev();
}

/* ---- indirect ------------------------------------------------------------------------ */

static struct blkif_request_segment ipages[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST]
                                         [SX_BLK_SEGS_PER_INDIRECT_PAGE];

static void fill_ipages(unsigned nsegs)
{
    memset(ipages, 0, sizeof(ipages));
    for (unsigned i = 0; i < nsegs; i++)
        ipages[i / SX_BLK_SEGS_PER_INDIRECT_PAGE][i % SX_BLK_SEGS_PER_INDIRECT_PAGE] =
            seg(10000 + i, (uint8_t)(i % 4), (uint8_t)(4 + i % 4));
}

static const void *const page_ptrs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST] = {
    ipages[0], ipages[1], ipages[2], ipages[3], ipages[4], ipages[5], ipages[6], ipages[7],
};

static void test_indirect_good_both_abis(void)
{
    static const uint16_t counts[] = { 1, 12, 512, 513, 1024 };
    for (size_t a = 0; a < 2; a++) {
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            unsigned n = counts[c];
            put_indirect(abis[a], c % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ, (uint16_t)n, 77 + c, 8);
            CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
            CU_ASSERT_EQUAL(req->op, BLKIF_OP_INDIRECT);
            CU_ASSERT_EQUAL(req->data_op, c % 2 ? BLKIF_OP_WRITE : BLKIF_OP_READ);
            CU_ASSERT_EQUAL(req->id, 77 + c);
            CU_ASSERT_EQUAL(req->handle, 0x0301);
            CU_ASSERT_EQUAL(req->nr_segs, n);
            CU_ASSERT_EQUAL(req->indirect.nr_pages, (n + 511) / 512);
            CU_ASSERT_EQUAL(req->indirect.grefs[0], 500);
            CU_ASSERT_FALSE(req->segs_ready);
            fill_ipages(n);
            CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, req->indirect.nr_pages),
                            SX_BLK_OK);
            CU_ASSERT_TRUE(req->segs_ready);
            uint64_t want = 0;
            for (unsigned i = 0; i < n; i++)
                want += 5;      /* first i%4, last 4+i%4: 5 sectors each */
            CU_ASSERT_EQUAL(req->nr_sectors, want);
            CU_ASSERT_EQUAL(req->segs[n - 1].gref, 10000 + n - 1);
            CU_ASSERT_EQUAL(req->segs[n - 1].first_sect, (n - 1) % 4);
        }
    }
}

static void test_indirect_hostile(void)
{
    for (size_t a = 0; a < 2; a++) {
        /* more segments than feature-max-indirect-segments */
        put_indirect(abis[a], BLKIF_OP_READ, 1025, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        put_indirect(abis[a], BLKIF_OP_READ, 0, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_NR_SEGS);
        /* more segments than 8 indirect pages can hold */
        put_indirect(abis[a], BLKIF_OP_READ, SX_BLK_MAX_INDIRECT_SEGS + 1, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_INDIRECT_PAGES);
        put_indirect(abis[a], BLKIF_OP_WRITE, 0xffff, 1, 0);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_INDIRECT_PAGES);
        /* indirect_op other than READ/WRITE */
        static const uint8_t bad_iops[] = { BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE,
                                            BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT, 0x42 };
        for (size_t i = 0; i < sizeof(bad_iops); i++) {
            put_indirect(abis[a], bad_iops[i], 20, 1, 0);
            CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_INDIRECT_OP);
        }
        /* start past the end */
        put_indirect(abis[a], BLKIF_OP_READ, 20, 1, dev.sectors);
        CU_ASSERT_EQUAL(decode(abis[a]), SX_BLK_E_RANGE);

        /* step two: a bad segment on the second page */
        put_indirect(abis[a], BLKIF_OP_READ, 600, 1, 0);
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        fill_ipages(600);
        ipages[1][1] = seg(1, 6, 2);                       /* segment 513 */
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 2), SX_BLK_E_SEG_ORDER);
        CU_ASSERT_FALSE(req->segs_ready);
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        fill_ipages(600);
        ipages[1][87] = seg(1, 0, 8);                      /* segment 599, the last */
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 2),
                        SX_BLK_E_SEG_BEYOND_PAGE);
        /* wrong page count from the caller */
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        fill_ipages(600);
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 1),
                        SX_BLK_E_INDIRECT_PAGES);
        /* range past the end only visible once the segments are summed */
        put_indirect(abis[a], BLKIF_OP_WRITE, 600, 1, dev.sectors - 100);
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        fill_ipages(600);
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 2), SX_BLK_E_RANGE);
        /* wrapping around 2^64, also only visible in step two */
        dev.sectors = UINT64_MAX;
        put_indirect(abis[a], BLKIF_OP_WRITE, 600, 1, UINT64_MAX - 100);
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 2), SX_BLK_E_WRAP);
        reset_dev();
        /* step two on a request that is not indirect */
        struct blkif_request_segment s[1] = { seg(1, 0, 7) };
        put_rw(abis[a], BLKIF_OP_READ, 1, 1, 0, s, 1);
        CU_ASSERT_EQUAL_FATAL(decode(abis[a]), SX_BLK_OK);
        CU_ASSERT_EQUAL(sx_blk_req_decode_indirect(&dev, req, page_ptrs, 1), SX_BLK_E_INVALID);
    }
}

/* ---- the x86_32 layout, from raw bytes ------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_x86_32_decodes_from_raw_bytes(void)
{
    uint8_t raw[108];
    memset(raw, 0, sizeof(raw));
    raw[0] = BLKIF_OP_WRITE;
    raw[1] = 2;                                 /* nr_segments */
    put_le(raw + 2, 0x0302, 2);                 /* handle */
    put_le(raw + 4, 0x1122334455667788ull, 8);  /* id: offset 4, not 8 */
    put_le(raw + 12, 0x100, 8);                 /* sector_number */
    put_le(raw + 20, 7, 4);                     /* seg[0].gref */
    raw[24] = 0;                                /* seg[0].first_sect */
    raw[25] = 7;                                /* seg[0].last_sect */
    put_le(raw + 28, 9, 4);                     /* seg[1].gref */
    raw[32] = 2;
    raw[33] = 3;
    CU_ASSERT_EQUAL(sx_blk_req_decode(&dev, SX_BLK_ABI_X86_32, raw, req), SX_BLK_OK);
    CU_ASSERT_EQUAL(req->op, BLKIF_OP_WRITE);
    CU_ASSERT_EQUAL(req->handle, 0x0302);
    CU_ASSERT_EQUAL(req->id, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(req->sector, 0x100);
    CU_ASSERT_EQUAL(req->nr_segs, 2);
    CU_ASSERT_EQUAL(req->segs[0].gref, 7);
    CU_ASSERT_EQUAL(req->segs[0].last_sect, 7);
    CU_ASSERT_EQUAL(req->segs[1].gref, 9);
    CU_ASSERT_EQUAL(req->segs[1].first_sect, 2);
    CU_ASSERT_EQUAL(req->segs[1].last_sect, 3);
    CU_ASSERT_EQUAL(req->nr_sectors, 10);

    /* indirect, raw: nr_segments u16 at 2, id at 4, sector at 12, handle at 20, grefs at 24 */
    memset(raw, 0, sizeof(raw));
    raw[0] = BLKIF_OP_INDIRECT;
    raw[1] = BLKIF_OP_READ;
    put_le(raw + 2, 513, 2);
    put_le(raw + 4, 0xCAFEull, 8);
    put_le(raw + 12, 64, 8);
    put_le(raw + 20, 0x0303, 2);
    put_le(raw + 24, 4242, 4);
    put_le(raw + 28, 4343, 4);
    CU_ASSERT_EQUAL(sx_blk_req_decode(&dev, SX_BLK_ABI_X86_32, raw, req), SX_BLK_OK);
    CU_ASSERT_EQUAL(req->id, 0xCAFE);
    CU_ASSERT_EQUAL(req->nr_segs, 513);
    CU_ASSERT_EQUAL(req->sector, 64);
    CU_ASSERT_EQUAL(req->handle, 0x0303);
    CU_ASSERT_EQUAL(req->indirect.nr_pages, 2);
    CU_ASSERT_EQUAL(req->indirect.grefs[0], 4242);
    CU_ASSERT_EQUAL(req->indirect.grefs[1], 4343);

    /* discard, raw: flag at 1, id at 4, sector at 12, nr_sectors at 20 */
    memset(raw, 0, sizeof(raw));
    raw[0] = BLKIF_OP_DISCARD;
    put_le(raw + 4, 0xD15Cull, 8);
    put_le(raw + 12, 10, 8);
    put_le(raw + 20, 30, 8);
    CU_ASSERT_EQUAL(sx_blk_req_decode(&dev, SX_BLK_ABI_X86_32, raw, req), SX_BLK_OK);
    CU_ASSERT_EQUAL(req->id, 0xD15C);
    CU_ASSERT_EQUAL(req->sector, 10);
    CU_ASSERT_EQUAL(req->discard.nr_sectors, 30);

    /* an unknown op still yields the id from offset 4 */
    memset(raw, 0, sizeof(raw));
    raw[0] = 0x77;
    put_le(raw + 4, 0xBEEF, 8);
    CU_ASSERT_EQUAL(sx_blk_req_decode(&dev, SX_BLK_ABI_X86_32, raw, req), SX_BLK_E_BAD_OP);
    CU_ASSERT_EQUAL(req->id, 0xBEEF);

    CU_ASSERT_EQUAL(sx_blk_req_slot_size(SX_BLK_ABI_X86_32), 108);
    CU_ASSERT_EQUAL(sx_blk_req_slot_size(SX_BLK_ABI_NATIVE), 112);
    CU_ASSERT_EQUAL(sx_blk_rsp_slot_size(SX_BLK_ABI_X86_32), 12);
    CU_ASSERT_EQUAL(sx_blk_rsp_slot_size(SX_BLK_ABI_NATIVE), 16);
}

/* ---- responses, protocol names, device descriptions ----------------------------------- */

static void test_response_image_fully_initialised(void)
{
    uint8_t img[32];
    memset(img, 0xAA, sizeof(img));
    CU_ASSERT_EQUAL(sx_blk_rsp_write(SX_BLK_ABI_NATIVE, img, 0x0102030405060708ull,
                                     BLKIF_OP_INDIRECT, BLKIF_RSP_EOPNOTSUPP), 16);
    static const uint8_t native[16] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                        BLKIF_OP_INDIRECT, 0, 0xfe, 0xff, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(memcmp(img, native, 16), 0);
    CU_ASSERT_EQUAL(img[16], 0xAA);

    memset(img, 0xAA, sizeof(img));
    CU_ASSERT_EQUAL(sx_blk_rsp_write(SX_BLK_ABI_X86_32, img, 0x1112131415161718ull,
                                     BLKIF_OP_READ, BLKIF_RSP_ERROR), 12);
    static const uint8_t x32[12] = { 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                                     BLKIF_OP_READ, 0, 0xff, 0xff };
    CU_ASSERT_EQUAL(memcmp(img, x32, 12), 0);
    CU_ASSERT_EQUAL(img[12], 0xAA);                 /* nothing past the 12-byte slot */
}

static void test_protocol_names(void)
{
    enum sx_blk_abi abi = SX_BLK_ABI_X86_32;
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol(NULL, &abi), 0);
    CU_ASSERT_EQUAL(abi, SX_BLK_ABI_NATIVE);
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol("x86_32-abi", &abi), 0);
    CU_ASSERT_EQUAL(abi, SX_BLK_ABI_X86_32);
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol("x86_64-abi", &abi), 0);
    CU_ASSERT_EQUAL(abi, SX_BLK_ABI_NATIVE);
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol("", &abi), 0);
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol("x86_32-abi ", &abi), -EINVAL);
    CU_ASSERT_EQUAL(sx_blk_abi_from_protocol("arm-abi", &abi), -EINVAL);
}

static void test_device_description_checks(void)
{
    struct sx_blk_dev d = dev;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), 0);
    d.sector_size = 4096;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), 0);
    d.sectors += 4;                                  /* not a whole number of 4 KiB blocks */
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.sectors -= 4;
    d.discard_granularity = 2048;                    /* below the logical block */
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.discard_granularity = 12288;                   /* not a power of two */
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.discard_granularity = 65536;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), 0);
    d.discard_granularity = 0;
    d.sector_size = 1000;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.sector_size = 256;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.sector_size = 8192;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.sector_size = 512;
    d.max_indirect_segs = SX_BLK_MAX_INDIRECT_SEGS + 1;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    CU_ASSERT_EQUAL(sx_blk_dev_check(NULL), -EINVAL);
    d.max_indirect_segs = 0;
    d.sectors = (uint64_t)INT64_MAX / 512;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), 0);
    d.sectors++;
    CU_ASSERT_EQUAL(sx_blk_dev_check(&d), -EINVAL);
    d.sectors = 100;
    d.max_indirect_segs = 0;
    CU_ASSERT_EQUAL(sx_blk_req_max_segs(&d), BLKIF_MAX_SEGMENTS_PER_REQUEST);
    d.max_indirect_segs = 256;
    CU_ASSERT_EQUAL(sx_blk_req_size(&d), sizeof(struct sx_blk_req) + 256 * sizeof(struct sx_blk_seg));
    for (int r = 0; r < SX_BLK_NR_REASONS; r++)
        CU_ASSERT_STRING_NOT_EQUAL(sx_blk_reason_name((enum sx_blk_reason)r), "?");
    CU_ASSERT_STRING_EQUAL(sx_blk_reason_name(SX_BLK_NR_REASONS), "?");
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_read_write_eleven_full_pages_both_abis),
    SX_TEST(test_partial_segments_and_exact_end_of_device),
    SX_TEST(test_flush_barrier_discard_good_both_abis),
    SX_TEST(test_4k_sector_device_512_byte_units),
    SX_TEST(test_discard_aligned_to_granularity),
    SX_TEST(test_unknown_op_is_eopnotsupp_with_id_echoed),
    SX_TEST(test_features_not_offered_are_eopnotsupp),
    SX_TEST(test_segment_count_limits),
    SX_TEST(test_segment_sector_bounds),
    SX_TEST(test_range_past_end_and_wrapping),
    SX_TEST(test_read_only_vbd_refuses_everything_but_reads),
    SX_TEST(test_indirect_good_both_abis),
    SX_TEST(test_indirect_hostile),
    SX_TEST(test_x86_32_decodes_from_raw_bytes),
    SX_TEST(test_response_image_fully_initialised),
    SX_TEST(test_protocol_names),
    SX_TEST(test_device_description_checks),
};

SX_TEST_MAIN("blkback_request", cases, suite_init, suite_clean)
