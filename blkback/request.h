/*
 * blkif request decoding and validation: pure functions, no I/O, no allocation.
 *
 * The ring step copies a request slot off the shared ring once (ring/ring.h) and hands the
 * private copy here. sx_blk_req_decode() converts it, in either ABI the xenstore `protocol`
 * key can name, into one normalised struct sx_blk_req and validates it against the device;
 * for BLKIF_OP_INDIRECT, sx_blk_req_decode_indirect() then reads the segment arrays out of
 * the (mapped or copied) indirect pages and validates each segment the same way.
 * sx_blk_rsp_write() produces a response slot image for either ABI with no byte left
 * uninitialised.
 *
 * Units: every sector quantity (sector_number, first_sect/last_sect, nr_sectors, the device
 * size and the `sectors` node) is in 512-byte units whatever the device's sector-size, as
 * blkif.h says since Xen 4.20 (feature-large-sector-size is deprecated); sector-size is the
 * logical block size, to which each segment's offset and length and each request's start
 * must be aligned (SX_BLK_E_ALIGN otherwise), and a discard's start to discard-granularity.
 * A 4 KiB page holds 8 of them.
 */
#ifndef SPLITXEN_BLKBACK_REQUEST_H
#define SPLITXEN_BLKBACK_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>

/* Grant pages are always 4 KiB; an indirect page holds 512 struct blkif_request_segment. */
#define SX_BLK_PAGE_SIZE 4096u
#define SX_BLK_SEGS_PER_INDIRECT_PAGE (SX_BLK_PAGE_SIZE / sizeof(struct blkif_request_segment))
#define SX_BLK_INDIRECT_PAGES(nsegs) \
    (((nsegs) + SX_BLK_SEGS_PER_INDIRECT_PAGE - 1) / SX_BLK_SEGS_PER_INDIRECT_PAGE)
/* The most indirect segments the protocol can carry: 8 pages of 512. */
#define SX_BLK_MAX_INDIRECT_SEGS \
    (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * SX_BLK_SEGS_PER_INDIRECT_PAGE)

/* ---- the x86_32 ABI ------------------------------------------------------------------------
 * Xen's public headers declare only the native layout. A 32-bit x86 guest lays the same
 * requests out with 4-byte alignment for uint64_t, so `id` sits at offset 4, not 8, and a
 * request slot is 108 bytes, not 112; a response is 12 bytes, not 16. Linux blkback
 * (drivers/block/xen-blkback/common.h) and QEMU (hw/block/xen_blkif.h) declare this layout
 * themselves for the same reason; this is the one
 * declaration in splitxen, and sx_blk_req_decode()'s accessor is the only reader.
 * (The native layout is x86_64-abi on an x86_64 host.) */
struct sx_blkif_x86_32_request_rw {
    uint8_t nr_segments;
    blkif_vdev_t handle;
    uint64_t id;
    blkif_sector_t sector_number;
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
} __attribute__((__packed__));

struct sx_blkif_x86_32_request_discard {
    uint8_t flag;
    blkif_vdev_t handle;
    uint64_t id;
    blkif_sector_t sector_number;
    uint64_t nr_sectors;
} __attribute__((__packed__));

struct sx_blkif_x86_32_request_other {
    uint8_t pad1;
    blkif_vdev_t pad2;
    uint64_t id;
} __attribute__((__packed__));

struct sx_blkif_x86_32_request_indirect {
    uint8_t indirect_op;
    uint16_t nr_segments;
    uint64_t id;
    blkif_sector_t sector_number;
    blkif_vdev_t handle;
    uint16_t pad1;
    grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    uint64_t pad2;              /* i386 pads the indirect request to 64 bytes */
} __attribute__((__packed__));

struct sx_blkif_x86_32_request {
    uint8_t operation;
    union {
        struct sx_blkif_x86_32_request_rw rw;
        struct sx_blkif_x86_32_request_discard discard;
        struct sx_blkif_x86_32_request_other other;
        struct sx_blkif_x86_32_request_indirect indirect;
    } u;
} __attribute__((__packed__));

#pragma pack(push, 4)
struct sx_blkif_x86_32_response {
    uint64_t id;
    uint8_t operation;
    int16_t status;
};
#pragma pack(pop)

enum sx_blk_abi {
    SX_BLK_ABI_NATIVE = 0,      /* "x86_64-abi" (or no protocol key): <xen/io/blkif.h> */
    SX_BLK_ABI_X86_32,          /* "x86_32-abi": struct sx_blkif_x86_32_request */
};

/* The xenstore `protocol` value (NULL or "" = native) -> ABI. 0 or -EINVAL. */
int sx_blk_abi_from_protocol(const char *protocol, enum sx_blk_abi *out);
/* Ring entry sizes for sx_back_ring_attach: request and response slot bytes. */
size_t sx_blk_req_slot_size(enum sx_blk_abi abi);
size_t sx_blk_rsp_slot_size(enum sx_blk_abi abi);

/* ---- the device a request is checked against ----------------------------------------- */

#define SX_BLK_F_FLUSH          (1u << 0)   /* feature-flush-cache: BLKIF_OP_FLUSH_DISKCACHE */
#define SX_BLK_F_BARRIER        (1u << 1)   /* feature-barrier: BLKIF_OP_WRITE_BARRIER */
#define SX_BLK_F_DISCARD        (1u << 2)   /* feature-discard: BLKIF_OP_DISCARD */
#define SX_BLK_F_DISCARD_SECURE (1u << 3)   /* discard-secure: BLKIF_DISCARD_SECURE honoured */

#define SX_BLK_SECTOR 512u          /* the unit of every sector quantity on the ring */

struct sx_blk_dev {
    uint64_t sectors;           /* size, in 512-byte units (a whole number of sector_size) */
    uint32_t sector_size;       /* logical block size: 512 .. 4096, a power of two */
    /* discard-granularity in bytes: a power of two, a multiple of sector_size; 0 means
     * sector_size. A discard starts on it and discards the whole granules it covers. */
    uint32_t discard_granularity;
    bool read_only;
    /* feature-max-indirect-segments: 0 = BLKIF_OP_INDIRECT not offered (EOPNOTSUPP);
     * at most SX_BLK_MAX_INDIRECT_SEGS. */
    uint32_t max_indirect_segs;
    unsigned features;          /* SX_BLK_F_* */
};

/* 0 when dev is a description sx_blk_req_decode accepts (sector_size a power of two in
 * 512..4096, the size a whole number of them, discard_granularity 0 or a power of two multiple
 * of sector_size, max_indirect_segs <= SX_BLK_MAX_INDIRECT_SEGS, the size in bytes fits an
 * off_t), else -EINVAL. */
int sx_blk_dev_check(const struct sx_blk_dev *dev);

/* ---- the normalised request ------------------------------------------------------------ */

struct sx_blk_seg {
    grant_ref_t gref;
    uint8_t first_sect, last_sect;  /* inclusive, 512-byte units within the page */
};

struct sx_blk_req {
    uint8_t op;                 /* BLKIF_OP_* as received (an INDIRECT one is answered as data_op) */
    uint8_t data_op;            /* BLKIF_OP_READ or _WRITE: direction of the data segments */
    blkif_vdev_t handle;
    uint64_t id;                /* echo in the response; set even when decoding fails */
    uint64_t sector;            /* start, 512-byte units */
    uint32_t nr_segs;           /* data segments (for INDIRECT: as claimed, then decoded) */
    uint64_t nr_sectors;        /* data sectors of all segments (0 until segments are decoded) */
    bool segs_ready;            /* segs[0..nr_segs) are decoded and valid */
    struct {
        uint8_t op;             /* BLKIF_OP_READ / _WRITE */
        uint8_t nr_pages;       /* SX_BLK_INDIRECT_PAGES(nr_segs) */
        grant_ref_t grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    } indirect;                 /* op == BLKIF_OP_INDIRECT only */
    struct {
        uint64_t nr_sectors;    /* the whole granules the request covers (512-byte units);
                                   0 is valid: nothing to do (as Linux blkback) */
        bool secure;
    } discard;                  /* op == BLKIF_OP_DISCARD only */
    struct sx_blk_seg segs[];   /* room for sx_blk_req_max_segs(dev) entries */
};

/* Segments a struct sx_blk_req must have room for on this device, and its size in bytes:
 * allocate each in-flight request this big once, at connect time. */
unsigned sx_blk_req_max_segs(const struct sx_blk_dev *dev);
size_t sx_blk_req_size(const struct sx_blk_dev *dev);

/* Why a request was refused (for counters); SX_BLK_OK when it was not. */
enum sx_blk_reason {
    SX_BLK_OK = 0,
    SX_BLK_E_BAD_OP,            /* unknown operation                          -> EOPNOTSUPP */
    SX_BLK_E_UNSUPPORTED,       /* operation whose feature is not offered     -> EOPNOTSUPP */
    SX_BLK_E_SECURE_DISCARD,    /* secure discard without discard-secure      -> EOPNOTSUPP */
    SX_BLK_E_READ_ONLY,         /* write/flush/barrier/discard on a read-only vbd */
    SX_BLK_E_NR_SEGS,           /* 0 data segments for read/write, or more than the limit */
    SX_BLK_E_INDIRECT_PAGES,    /* indirect segments need more than 8 indirect pages */
    SX_BLK_E_INDIRECT_OP,       /* indirect_op is not READ or WRITE */
    SX_BLK_E_SEG_ORDER,         /* first_sect > last_sect */
    SX_BLK_E_SEG_BEYOND_PAGE,   /* last_sect past the end of the 4 KiB page */
    SX_BLK_E_RANGE,             /* sector range ends past the end of the device */
    SX_BLK_E_WRAP,              /* sector + count wraps around 2^64 */
    SX_BLK_E_ALIGN,             /* start or segment not aligned to sector-size, or a discard's
                                   start to discard-granularity */
    SX_BLK_E_INVALID,           /* caller error: bad arguments (e.g. wrong page count) */
    SX_BLK_NR_REASONS
};

/* BLKIF_RSP_OKAY / BLKIF_RSP_ERROR / BLKIF_RSP_EOPNOTSUPP for a reason. */
int16_t sx_blk_reason_status(enum sx_blk_reason r);
const char *sx_blk_reason_name(enum sx_blk_reason r);

/*
 * Decode the private copy of one request slot (sx_blk_req_slot_size(abi) bytes) into out
 * (sx_blk_req_size(dev) bytes) and validate it against dev (sx_blk_dev_check'ed).
 * out->op and out->id are always set, so a refused request can be answered. For direct
 * read/write/flush/barrier requests out->segs is filled and checked (segs_ready); for
 * BLKIF_OP_INDIRECT everything but the segments is checked and the caller continues with
 * sx_blk_req_decode_indirect once it has the indirect pages.
 */
enum sx_blk_reason sx_blk_req_decode(const struct sx_blk_dev *dev, enum sx_blk_abi abi,
                                     const void *slot, struct sx_blk_req *out);

/*
 * Second step for BLKIF_OP_INDIRECT: pages[0..npages) are the contents of the request's
 * indirect pages (npages == req->indirect.nr_pages, each SX_BLK_PAGE_SIZE bytes, in
 * indirect_grefs order). Each segment is copied once into req->segs and the copy validated;
 * then the whole range is checked against the device.
 */
enum sx_blk_reason sx_blk_req_decode_indirect(const struct sx_blk_dev *dev,
                                              struct sx_blk_req *req,
                                              const void *const *pages, unsigned npages);

/* Data bytes of segment i: (last - first + 1) * 512, at page offset first * 512. */
static inline uint32_t sx_blk_seg_offset(const struct sx_blk_dev *dev, const struct sx_blk_seg *s)
{
    (void)dev;
    return (uint32_t)s->first_sect * SX_BLK_SECTOR;
}
static inline uint32_t sx_blk_seg_bytes(const struct sx_blk_dev *dev, const struct sx_blk_seg *s)
{
    (void)dev;
    return ((uint32_t)s->last_sect - s->first_sect + 1) * SX_BLK_SECTOR;
}

/* Byte offset of a validated request's first sector on the device: fits an off_t, because
 * the range check keeps sector <= dev->sectors and sx_blk_dev_check keeps
 * dev->sectors * 512 <= INT64_MAX. */
static inline uint64_t sx_blk_req_byte_offset(const struct sx_blk_dev *dev,
                                              const struct sx_blk_req *req)
{
    (void)dev;
    return req->sector * SX_BLK_SECTOR;
}

/*
 * Write a response slot image for abi into slot (sx_blk_rsp_slot_size(abi) bytes): every byte
 * is set, padding zeroed, so nothing of the backend's memory reaches the guest.
 * Returns the number of bytes written.
 */
size_t sx_blk_rsp_write(enum sx_blk_abi abi, void *slot, uint64_t id, uint8_t op,
                        int16_t status);

#endif
