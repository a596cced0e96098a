/*
 * blkif request decoding (blkback/request.c): a device description, one request slot in
 * either ABI, and the indirect pages a BLKIF_OP_INDIRECT request names, all from the input.
 * Beside memory safety, what a decoded request promises blkback: every segment within its
 * page and aligned to the logical block, the sum of the segments' sectors, the whole range on
 * the device without wrap; an indirect request's pages as many as its segments need; and a
 * response image that sets exactly the ABI's response bytes.
 */
#include "tests/fuzz/fuzz.h"

#include "blkback/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint8_t flags = fuzz_u8(&in);
    struct sx_blk_dev dev = {
        .sector_size = 512u << (fuzz_u8(&in) % 4),
        .read_only = flags & 2,
        .max_indirect_segs = fuzz_u32(&in) % (SX_BLK_MAX_INDIRECT_SEGS + 1),
        .features = (flags >> 2) & 15,
    };
    uint32_t g = fuzz_u8(&in) % 8;
    dev.discard_granularity = g ? dev.sector_size << (g - 1) : 0;
    uint64_t blocks = fuzz_u64(&in) % ((uint64_t)INT64_MAX / 4096);
    dev.sectors = blocks * (dev.sector_size / SX_BLK_SECTOR);
    if (sx_blk_dev_check(&dev))
        return 0;
    enum sx_blk_abi abi = flags & 1 ? SX_BLK_ABI_X86_32 : SX_BLK_ABI_NATIVE;
    uint8_t slot[sizeof(blkif_request_t)];
    fuzz_take(&in, slot, sx_blk_req_slot_size(abi));
    struct sx_blk_req *r = malloc(sx_blk_req_size(&dev));
    if (!r)
        return 0;
    enum sx_blk_reason why = sx_blk_req_decode(&dev, abi, slot, r);
    FUZZ_CHECK(why < SX_BLK_NR_REASONS);
    FUZZ_CHECK(sx_blk_reason_name(why) != NULL);
    if (why == SX_BLK_OK && r->op == BLKIF_OP_INDIRECT) {
        FUZZ_CHECK(!r->segs_ready);
        FUZZ_CHECK(r->nr_segs >= 1 && r->nr_segs <= dev.max_indirect_segs);
        FUZZ_CHECK(r->indirect.nr_pages == SX_BLK_INDIRECT_PAGES(r->nr_segs));
        static uint8_t pages[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST][SX_BLK_PAGE_SIZE];
        const void *pp[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
        for (unsigned i = 0; i < r->indirect.nr_pages; i++) {
            fuzz_take(&in, pages[i], SX_BLK_PAGE_SIZE);
            pp[i] = pages[i];
        }
        why = sx_blk_req_decode_indirect(&dev, r, pp, r->indirect.nr_pages);
        FUZZ_CHECK(why < SX_BLK_NR_REASONS);
    }
    if (why == SX_BLK_OK && r->op != BLKIF_OP_DISCARD) {
        FUZZ_CHECK(r->segs_ready);
        uint64_t total = 0;
        unsigned blk = dev.sector_size / SX_BLK_SECTOR;
        for (uint32_t i = 0; i < r->nr_segs; i++) {
            const struct sx_blk_seg *s = &r->segs[i];
            uint32_t off = sx_blk_seg_offset(&dev, s), len = sx_blk_seg_bytes(&dev, s);
            FUZZ_CHECK(len > 0 && off + len <= SX_BLK_PAGE_SIZE);
            FUZZ_CHECK(off % dev.sector_size == 0 && len % dev.sector_size == 0);
            total += len / SX_BLK_SECTOR;
        }
        FUZZ_CHECK(total == r->nr_sectors);
        if (r->nr_segs) {
            FUZZ_CHECK(r->sector % blk == 0);
            FUZZ_CHECK(r->sector <= dev.sectors && r->nr_sectors <= dev.sectors - r->sector);
            FUZZ_CHECK(sx_blk_req_byte_offset(&dev, r) <= (uint64_t)INT64_MAX);
        }
        FUZZ_CHECK(!dev.read_only || r->data_op == BLKIF_OP_READ);
    }
    if (why == SX_BLK_OK && r->op == BLKIF_OP_DISCARD) {
        FUZZ_CHECK(!dev.read_only && (dev.features & SX_BLK_F_DISCARD));
        FUZZ_CHECK(r->sector <= dev.sectors &&
                   r->discard.nr_sectors <= dev.sectors - r->sector);
        uint64_t gran = (dev.discard_granularity ? dev.discard_granularity : dev.sector_size) /
                        SX_BLK_SECTOR;
        FUZZ_CHECK(r->sector % gran == 0 && r->discard.nr_sectors % gran == 0);
    }
    /* The response image: exactly its ABI's size, nothing past it touched. */
    uint8_t img[sizeof(blkif_response_t) + 8];
    memset(img, 0xa5, sizeof(img));
    size_t n = sx_blk_rsp_write(abi, img, r->id, r->op, sx_blk_reason_status(why));
    FUZZ_CHECK(n == sx_blk_rsp_slot_size(abi));
    for (size_t i = n; i < sizeof(img); i++)
        FUZZ_CHECK(img[i] == 0xa5);
    free(r);
    return 0;
}
