/*
 * blkif request decoding and validation (see request.h). Every field a frontend controls is
 * read from the caller's private copy exactly once, through raw_load(), the one place that
 * knows the two ABIs; validation then works on the ABI-free struct raw_req.
 */
#include "blkback/request.h"

#include <errno.h>
#include <string.h>

/* ---- layouts: the native one is Xen's, the x86_32 one is ours; pin both ---------------- */
_Static_assert(sizeof(struct blkif_request_segment) == 8, "blkif segment is 8 bytes");
_Static_assert(sizeof(blkif_request_t) == 112, "native blkif request is 112 bytes");
_Static_assert(offsetof(blkif_request_t, id) == 8, "native id at 8");
_Static_assert(offsetof(blkif_request_t, sector_number) == 16, "native sector at 16");
_Static_assert(offsetof(blkif_request_t, seg) == 24, "native segments at 24");
_Static_assert(sizeof(blkif_request_indirect_t) == 64, "native indirect request is 64 bytes");
_Static_assert(offsetof(blkif_request_indirect_t, indirect_grefs) == 28, "native grefs at 28");
_Static_assert(offsetof(blkif_request_discard_t, nr_sectors) == 24, "native nr_sectors at 24");
_Static_assert(sizeof(blkif_response_t) == 16, "native response is 16 bytes");

_Static_assert(sizeof(struct sx_blkif_x86_32_request) == 108, "x86_32 request is 108 bytes");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.nr_segments) == 1, "x86_32 nseg");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.handle) == 2, "x86_32 handle");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.id) == 4, "x86_32 id at 4");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.sector_number) == 12, "x86_32 sector");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.rw.seg) == 20, "x86_32 segs at 20");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.discard.id) == 4, "x86_32 discard id");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.discard.nr_sectors) == 20,
               "x86_32 discard nr_sectors at 20");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.indirect.nr_segments) == 2,
               "x86_32 indirect nr_segments at 2");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.indirect.id) == 4, "x86_32 ind id");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.indirect.handle) == 20,
               "x86_32 indirect handle at 20");
_Static_assert(offsetof(struct sx_blkif_x86_32_request, u.indirect.indirect_grefs) == 24,
               "x86_32 indirect grefs at 24");
_Static_assert(sizeof(struct sx_blkif_x86_32_request_indirect) + 1 == 64,
               "x86_32 indirect request is 64 bytes");
_Static_assert(sizeof(struct sx_blkif_x86_32_response) == 12, "x86_32 response is 12 bytes");
_Static_assert(offsetof(struct sx_blkif_x86_32_response, status) == 10, "x86_32 status at 10");

int sx_blk_abi_from_protocol(const char *protocol, enum sx_blk_abi *out)
{
    if (!protocol || !*protocol || strcmp(protocol, "x86_64-abi") == 0) {
        *out = SX_BLK_ABI_NATIVE;
        return 0;
    }
    if (strcmp(protocol, "x86_32-abi") == 0) {
        *out = SX_BLK_ABI_X86_32;
        return 0;
    }
    return -EINVAL;
}

size_t sx_blk_req_slot_size(enum sx_blk_abi abi)
{
    return abi == SX_BLK_ABI_X86_32 ? sizeof(struct sx_blkif_x86_32_request)
                                    : sizeof(blkif_request_t);
}

size_t sx_blk_rsp_slot_size(enum sx_blk_abi abi)
{
    return abi == SX_BLK_ABI_X86_32 ? sizeof(struct sx_blkif_x86_32_response)
                                    : sizeof(blkif_response_t);
}

int sx_blk_dev_check(const struct sx_blk_dev *dev)
{
    if (!dev || dev->sector_size < 512 || dev->sector_size > SX_BLK_PAGE_SIZE ||
        (dev->sector_size & (dev->sector_size - 1)))
        return -EINVAL;
    if (dev->max_indirect_segs > SX_BLK_MAX_INDIRECT_SEGS)
        return -EINVAL;
    uint32_t g = dev->discard_granularity;
    if (g && ((g & (g - 1)) || g % dev->sector_size))
        return -EINVAL;
    if (dev->sectors % (dev->sector_size / SX_BLK_SECTOR))
        return -EINVAL;
    /* Every byte offset of the device must fit an off_t (see sx_blk_req_byte_offset). */
    if (dev->sectors > (uint64_t)INT64_MAX / SX_BLK_SECTOR)
        return -EINVAL;
    return 0;
}

unsigned sx_blk_req_max_segs(const struct sx_blk_dev *dev)
{
    return dev->max_indirect_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ? dev->max_indirect_segs
                                                                   : BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

size_t sx_blk_req_size(const struct sx_blk_dev *dev)
{
    return sizeof(struct sx_blk_req) + sx_blk_req_max_segs(dev) * sizeof(struct sx_blk_seg);
}

int16_t sx_blk_reason_status(enum sx_blk_reason r)
{
    switch (r) {
    case SX_BLK_OK:
        return BLKIF_RSP_OKAY;
    case SX_BLK_E_BAD_OP:
    case SX_BLK_E_UNSUPPORTED:
    case SX_BLK_E_SECURE_DISCARD:
        return BLKIF_RSP_EOPNOTSUPP;
    default:
        return BLKIF_RSP_ERROR;
    }
}

const char *sx_blk_reason_name(enum sx_blk_reason r)
{
    static const char *const names[SX_BLK_NR_REASONS] = {
        [SX_BLK_OK] = "ok",
        [SX_BLK_E_BAD_OP] = "bad_op",
        [SX_BLK_E_UNSUPPORTED] = "unsupported",
        [SX_BLK_E_SECURE_DISCARD] = "secure_discard",
        [SX_BLK_E_READ_ONLY] = "read_only",
        [SX_BLK_E_NR_SEGS] = "nr_segs",
        [SX_BLK_E_INDIRECT_PAGES] = "indirect_pages",
        [SX_BLK_E_INDIRECT_OP] = "indirect_op",
        [SX_BLK_E_SEG_ORDER] = "seg_order",
        [SX_BLK_E_SEG_BEYOND_PAGE] = "seg_beyond_page",
        [SX_BLK_E_RANGE] = "range",
        [SX_BLK_E_WRAP] = "wrap",
        [SX_BLK_E_ALIGN] = "unaligned",
        [SX_BLK_E_INVALID] = "invalid",
    };
    return (unsigned)r < SX_BLK_NR_REASONS && names[r] ? names[r] : "?";
}

/* ---- the one accessor that knows the ABIs ------------------------------------------------ */

/* Everything a request slot can say, ABI-free. */
struct raw_req {
    uint8_t op;
    uint64_t id;
    blkif_vdev_t handle;
    uint64_t sector;
    uint16_t nr_segs;           /* rw: u8 on the wire; indirect: u16 */
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    uint8_t indirect_op;
    grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    uint8_t discard_flag;
    uint64_t nr_sectors;
};

/* Copy what op says the slot holds out of the private slot copy (memcpy: no alignment or
 * aliasing assumptions about the caller's buffer). */
static void raw_load(enum sx_blk_abi abi, const void *slot, struct raw_req *r)
{
    memset(r, 0, sizeof(*r));
    if (abi == SX_BLK_ABI_X86_32) {
        struct sx_blkif_x86_32_request q;
        memcpy(&q, slot, sizeof(q));
        r->op = q.operation;
        r->id = q.u.other.id;               /* id sits at offset 4 in every x86_32 variant */
        switch (q.operation) {
        case BLKIF_OP_DISCARD:
            r->handle = q.u.discard.handle;
            r->sector = q.u.discard.sector_number;
            r->discard_flag = q.u.discard.flag;
            r->nr_sectors = q.u.discard.nr_sectors;
            break;
        case BLKIF_OP_INDIRECT:
            r->indirect_op = q.u.indirect.indirect_op;
            r->nr_segs = q.u.indirect.nr_segments;
            r->sector = q.u.indirect.sector_number;
            r->handle = q.u.indirect.handle;
            memcpy(r->indirect_grefs, q.u.indirect.indirect_grefs, sizeof(r->indirect_grefs));
            break;
        default:
            r->nr_segs = q.u.rw.nr_segments;
            r->handle = q.u.rw.handle;
            r->sector = q.u.rw.sector_number;
            memcpy(r->seg, q.u.rw.seg, sizeof(r->seg));
            break;
        }
        return;
    }
    union {
        blkif_request_t rw;
        blkif_request_discard_t discard;
        blkif_request_indirect_t indirect;
    } q;
    memcpy(&q, slot, sizeof(blkif_request_t));
    r->op = q.rw.operation;
    r->id = q.rw.id;                        /* id sits at offset 8 in every native variant */
    switch (q.rw.operation) {
    case BLKIF_OP_DISCARD:
        r->handle = q.discard.handle;
        r->sector = q.discard.sector_number;
        r->discard_flag = q.discard.flag;
        r->nr_sectors = q.discard.nr_sectors;
        break;
    case BLKIF_OP_INDIRECT:
        r->indirect_op = q.indirect.indirect_op;
        r->nr_segs = q.indirect.nr_segments;
        r->sector = q.indirect.sector_number;
        r->handle = q.indirect.handle;
        memcpy(r->indirect_grefs, q.indirect.indirect_grefs, sizeof(r->indirect_grefs));
        break;
    default:
        r->nr_segs = q.rw.nr_segments;
        r->handle = q.rw.handle;
        r->sector = q.rw.sector_number;
        memcpy(r->seg, q.rw.seg, sizeof(r->seg));
        break;
    }
}

/* ---- validation ------------------------------------------------------------------------ */

/* 512-byte sectors per logical block: offsets and lengths on the ring are multiples of it. */
static unsigned per_block(const struct sx_blk_dev *dev)
{
    return dev->sector_size / SX_BLK_SECTOR;
}

/* One segment, already copied: order, page bounds, alignment to the logical block; adds its
 * sectors to *total. */
static enum sx_blk_reason seg_check(const struct sx_blk_dev *dev, const struct blkif_request_segment *in,
                                    struct sx_blk_seg *out, uint64_t *total)
{
    const unsigned per_page = SX_BLK_PAGE_SIZE / SX_BLK_SECTOR, blk = per_block(dev);

    out->gref = in->gref;
    out->first_sect = in->first_sect;
    out->last_sect = in->last_sect;
    if (out->first_sect > out->last_sect)
        return SX_BLK_E_SEG_ORDER;
    if (out->last_sect >= per_page)
        return SX_BLK_E_SEG_BEYOND_PAGE;
    if (out->first_sect % blk || (out->last_sect + 1u) % blk)
        return SX_BLK_E_ALIGN;
    *total += (uint64_t)(out->last_sect - out->first_sect) + 1;
    return SX_BLK_OK;
}

/* [sector, sector + count) must neither wrap nor pass the end of the device. */
static enum sx_blk_reason range_check(const struct sx_blk_dev *dev, uint64_t sector, uint64_t count)
{
    if (count == 0)
        return sector <= dev->sectors ? SX_BLK_OK : SX_BLK_E_RANGE;
    if (sector > UINT64_MAX - count)
        return SX_BLK_E_WRAP;
    if (sector + count > dev->sectors)
        return SX_BLK_E_RANGE;
    return SX_BLK_OK;
}

enum sx_blk_reason sx_blk_req_decode(const struct sx_blk_dev *dev, enum sx_blk_abi abi,
                                     const void *slot, struct sx_blk_req *out)
{
    struct raw_req r;
    enum sx_blk_reason why;
    bool writes;

    raw_load(abi, slot, &r);
    memset(out, 0, sizeof(*out));
    out->op = r.op;
    out->id = r.id;
    out->handle = r.handle;
    out->sector = r.sector;
    if (abi != SX_BLK_ABI_NATIVE && abi != SX_BLK_ABI_X86_32)
        return SX_BLK_E_INVALID;

    /* 1. Known operation, and offered to this frontend. */
    switch (r.op) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
        break;
    case BLKIF_OP_WRITE_BARRIER:
        if (!(dev->features & SX_BLK_F_BARRIER))
            return SX_BLK_E_UNSUPPORTED;
        break;
    case BLKIF_OP_FLUSH_DISKCACHE:
        if (!(dev->features & SX_BLK_F_FLUSH))
            return SX_BLK_E_UNSUPPORTED;
        break;
    case BLKIF_OP_DISCARD:
        if (!(dev->features & SX_BLK_F_DISCARD))
            return SX_BLK_E_UNSUPPORTED;
        break;
    case BLKIF_OP_INDIRECT:
        if (dev->max_indirect_segs == 0)
            return SX_BLK_E_UNSUPPORTED;
        if (r.indirect_op != BLKIF_OP_READ && r.indirect_op != BLKIF_OP_WRITE)
            return SX_BLK_E_INDIRECT_OP;
        break;
    default:
        return SX_BLK_E_BAD_OP;
    }
    out->data_op = (r.op == BLKIF_OP_READ ||
                    (r.op == BLKIF_OP_INDIRECT && r.indirect_op == BLKIF_OP_READ))
                       ? BLKIF_OP_READ : BLKIF_OP_WRITE;

    /* 2. Read-only vbd: anything but a read is refused. Flush and barrier too, as Linux
     * blkback does (they are REQ_OP_WRITE there, and xen_vbd_translate refuses any
     * non-read on a read-only vbd with -EACCES -> BLKIF_RSP_ERROR). */
    writes = out->data_op == BLKIF_OP_WRITE;
    if (writes && dev->read_only)
        return SX_BLK_E_READ_ONLY;

    /* 3. Discard: a range, no segments; it starts on a granule (blkif.h) and discards the
     * whole granules it covers (a partial one at its end is left alone: a discard is a hint,
     * and discarding past what was asked would lose data). */
    if (r.op == BLKIF_OP_DISCARD) {
        out->data_op = BLKIF_OP_WRITE;
        out->discard.secure = r.discard_flag & BLKIF_DISCARD_SECURE;
        if (out->discard.secure && !(dev->features & SX_BLK_F_DISCARD_SECURE))
            return SX_BLK_E_SECURE_DISCARD;
        out->segs_ready = true;
        why = range_check(dev, r.sector, r.nr_sectors);
        if (why != SX_BLK_OK)
            return why;
        uint64_t gran = (dev->discard_granularity ? dev->discard_granularity
                                                  : dev->sector_size) / SX_BLK_SECTOR;
        if (r.sector % gran)
            return SX_BLK_E_ALIGN;
        out->discard.nr_sectors = r.nr_sectors - r.nr_sectors % gran;
        return SX_BLK_OK;
    }

    /* 4. Indirect: segment count and page count; the segments come in step two. */
    if (r.op == BLKIF_OP_INDIRECT) {
        out->indirect.op = r.indirect_op;
        out->nr_segs = r.nr_segs;
        if (SX_BLK_INDIRECT_PAGES(r.nr_segs) > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST)
            return SX_BLK_E_INDIRECT_PAGES;
        if (r.nr_segs == 0 || r.nr_segs > dev->max_indirect_segs)
            return SX_BLK_E_NR_SEGS;
        out->indirect.nr_pages = (uint8_t)SX_BLK_INDIRECT_PAGES(r.nr_segs);
        memcpy(out->indirect.grefs, r.indirect_grefs,
               out->indirect.nr_pages * sizeof(grant_ref_t));
        /* The start must at least be on the device; the end is checked in step two. */
        if (r.sector >= dev->sectors)
            return SX_BLK_E_RANGE;
        return r.sector % per_block(dev) ? SX_BLK_E_ALIGN : SX_BLK_OK;
    }

    /* 5. Direct read/write/flush/barrier: up to 11 segments; read and write need one. */
    out->nr_segs = r.nr_segs;
    if (r.nr_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ||
        (r.nr_segs == 0 && (r.op == BLKIF_OP_READ || r.op == BLKIF_OP_WRITE)))
        return SX_BLK_E_NR_SEGS;
    uint64_t total = 0;
    for (unsigned i = 0; i < r.nr_segs; i++) {
        why = seg_check(dev, &r.seg[i], &out->segs[i], &total);
        if (why != SX_BLK_OK)
            return why;
    }
    if (r.nr_segs) {
        why = range_check(dev, r.sector, total);
        if (why != SX_BLK_OK)
            return why;
        if (r.sector % per_block(dev))
            return SX_BLK_E_ALIGN;
    }
    out->nr_sectors = total;
    out->segs_ready = true;
    return SX_BLK_OK;
}

enum sx_blk_reason sx_blk_req_decode_indirect(const struct sx_blk_dev *dev,
                                              struct sx_blk_req *req,
                                              const void *const *pages, unsigned npages)
{
    uint64_t total = 0;
    enum sx_blk_reason why;

    if (req->op != BLKIF_OP_INDIRECT || req->segs_ready || !pages ||
        req->nr_segs == 0 || req->nr_segs > sx_blk_req_max_segs(dev) ||
        req->indirect.nr_pages != SX_BLK_INDIRECT_PAGES(req->nr_segs))
        return SX_BLK_E_INVALID;
    if (npages != req->indirect.nr_pages)
        return SX_BLK_E_INDIRECT_PAGES;
    for (unsigned i = 0; i < req->nr_segs; i++) {
        const uint8_t *page = pages[i / SX_BLK_SEGS_PER_INDIRECT_PAGE];
        struct blkif_request_segment s;
        if (!page)
            return SX_BLK_E_INVALID;
        /* The page may be guest-shared memory: copy the entry once, check the copy. */
        memcpy(&s, page + (i % SX_BLK_SEGS_PER_INDIRECT_PAGE) * sizeof(s), sizeof(s));
        why = seg_check(dev, &s, &req->segs[i], &total);
        if (why != SX_BLK_OK)
            return why;
    }
    why = range_check(dev, req->sector, total);
    if (why != SX_BLK_OK)
        return why;
    req->nr_sectors = total;
    req->segs_ready = true;
    return SX_BLK_OK;
}

/* Built byte by byte into a zeroed image rather than through a struct: C leaves padding
 * bytes unspecified after a member store, and those bytes go to the guest. */
#define RSP_PUT(img, type, field, val)                                                    \
    do {                                                                                  \
        __typeof__(((type *)0)->field) v_ = (val);                                        \
        memcpy((img) + offsetof(type, field), &v_, sizeof(v_));                           \
    } while (0)

size_t sx_blk_rsp_write(enum sx_blk_abi abi, void *slot, uint64_t id, uint8_t op,
                        int16_t status)
{
    uint8_t img[sizeof(blkif_response_t)];
    size_t n = sx_blk_rsp_slot_size(abi);

    memset(img, 0, sizeof(img));
    if (abi == SX_BLK_ABI_X86_32) {
        RSP_PUT(img, struct sx_blkif_x86_32_response, id, id);
        RSP_PUT(img, struct sx_blkif_x86_32_response, operation, op);
        RSP_PUT(img, struct sx_blkif_x86_32_response, status, status);
    } else {
        RSP_PUT(img, blkif_response_t, id, id);
        RSP_PUT(img, blkif_response_t, operation, op);
        RSP_PUT(img, blkif_response_t, status, status);
    }
    memcpy(slot, img, n);
    return n;
}
