/*
 * blkback's side of --check and --torture (torture/): what a ring thread's hooks do, blkif's
 * reading of a refused request as a finding with its rule, and the features offered at
 * InitWait. The hooks in blkback.c are one branch each (q->tt) when the mode is off.
 */
#define SX_LOG_MODULE "blkback"
#include "blkback/common.h"

#include <errno.h>
#include <string.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"

static const char *op_name(const struct sx_blk_req *r)
{
    switch (r->op) {
    case BLKIF_OP_READ: return "read";
    case BLKIF_OP_WRITE: return "write";
    case BLKIF_OP_WRITE_BARRIER: return "write barrier";
    case BLKIF_OP_FLUSH_DISKCACHE: return "flush";
    case BLKIF_OP_DISCARD: return "discard";
    case BLKIF_OP_INDIRECT:
        return r->indirect.op == BLKIF_OP_READ ? "indirect read"
               : r->indirect.op == BLKIF_OP_WRITE ? "indirect write" : "indirect";
    default: return "unknown";
    }
}

static const char rule_indirect_max[] =
    "<xen/io/blkif.h> BLKIF_OP_INDIRECT: \"the frontend can issue requests with any number of "
    "indirect segments as long as it's less than the number provided by the backend\" "
    "(feature-max-indirect-segments)";
static const char rule_pages[] =
    "<xen/io/blkif.h>: \"#define BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8\"; \"Every indirect page "
    "can contain a maximum of (PAGE_SIZE / sizeof(struct blkif_request_segment)) segments\"";
static const char rule_direct[] =
    "<xen/io/blkif.h>: \"#define BLKIF_MAX_SEGMENTS_PER_REQUEST 11\"; a read or write moves at "
    "least one segment";
static const char rule_unsupported[] =
    "<xen/io/blkif.h>: feature-flush-cache, feature-barrier, feature-discard: \"A value of "
    "\"1\" indicates that the backend can process requests containing the ... request "
    "opcode\"; BLKIF_OP_INDIRECT: \"Recognized if feature-max-indirect-segments in present in "
    "the backend xenbus info\"";
static const char rule_secure[] =
    "<xen/io/blkif.h> discard-secure: \"A value of \"1\" indicates that the backend can process "
    "BLKIF_OP_DISCARD requests with the BLKIF_DISCARD_SECURE flag set.\"";
static const char rule_ro[] =
    "<xen/io/blkif.h> mode: \"The read or write access permissions to the backing store to be "
    "granted to the frontend\"; info VDISK_READONLY";
static const char rule_indirect_op[] =
    "<xen/io/blkif.h> blkif_request_indirect: \"uint8_t indirect_op; /* BLKIF_OP_{READ/WRITE} "
    "*/\"";

/* A refused request as a finding: which limit or rule it broke. */
static void refused(struct bb_queue *q, const struct sx_blk_req *r, RING_IDX pos,
                    enum sx_blk_reason why)
{
    struct sx_tt_dev *d = sx_tt_q_dev(q->tt);
    const struct sx_blk_dev *dev = &q->v->dev;
    struct sx_tt_where w = sx_tt_q_where(q->tt, r->id, op_name(r), pos);
    switch (why) {
    case SX_BLK_E_BAD_OP:
        sx_tt_found(d, SX_TT_K_OP, &w, NULL, "operation %u is no blkif request code", r->op);
        break;
    case SX_BLK_E_UNSUPPORTED:
        sx_tt_found(d, SX_TT_K_FEATURE, &w, rule_unsupported,
                    "%s, which the backend did not offer on this connection", op_name(r));
        break;
    case SX_BLK_E_SECURE_DISCARD:
        sx_tt_found(d, SX_TT_K_FEATURE, &w, rule_secure,
                    "BLKIF_DISCARD_SECURE, which the backend did not offer (discard-secure 0)");
        break;
    case SX_BLK_E_READ_ONLY:
        sx_tt_found(d, SX_TT_K_OP, &w, rule_ro, "%s to a read-only vbd", op_name(r));
        break;
    case SX_BLK_E_NR_SEGS:
        if (r->op == BLKIF_OP_INDIRECT)
            sx_tt_found(d, SX_TT_K_SEGMENTS, &w, rule_indirect_max,
                        "%u indirect segments; the backend offered "
                        "feature-max-indirect-segments %u", r->nr_segs, dev->max_indirect_segs);
        else
            sx_tt_found(d, SX_TT_K_SEGMENTS, &w, rule_direct, "%u segments", r->nr_segs);
        break;
    case SX_BLK_E_INDIRECT_PAGES:
        sx_tt_found(d, SX_TT_K_SEGMENTS, &w, rule_pages,
                    "%u indirect segments take %u indirect pages", r->nr_segs,
                    (unsigned)SX_BLK_INDIRECT_PAGES(r->nr_segs));
        break;
    case SX_BLK_E_INDIRECT_OP:
        sx_tt_found(d, SX_TT_K_OP, &w, rule_indirect_op, "indirect_op %u", r->indirect.op);
        break;
    case SX_BLK_E_SEG_ORDER:
    case SX_BLK_E_SEG_BEYOND_PAGE:
        sx_tt_found(d, SX_TT_K_SEG_BOUNDS, &w, NULL,
                    "a segment %s (sector size %u: %u sectors a page)",
                    why == SX_BLK_E_SEG_ORDER ? "ends before it starts (last_sect < first_sect)"
                                              : "ends past its page",
                    dev->sector_size, SX_BLK_PAGE_SIZE / dev->sector_size);
        break;
    case SX_BLK_E_RANGE:
    case SX_BLK_E_WRAP:
        sx_tt_found(d, SX_TT_K_RANGE, &w, NULL,
                    "sector %llu %s (the disk has %llu sectors of %u bytes)",
                    (unsigned long long)r->sector,
                    why == SX_BLK_E_WRAP ? "plus its length wraps around 2^64"
                                         : "plus its length ends past the disk",
                    (unsigned long long)dev->sectors, dev->sector_size);
        break;
    case SX_BLK_E_INVALID:
        sx_tt_found(d, SX_TT_K_GRANT_BAD, &w, NULL, "an indirect page's grant cannot be mapped");
        break;
    default:
        break;
    }
}

void bb_tt_request(struct bb_queue *q, struct bb_req *rq, RING_IDX pos, enum sx_blk_reason why)
{
    const struct sx_blk_req *r = rq->r;
    unsigned can = SX_TT_CAN_HOLD;
    if ((r->op == BLKIF_OP_FLUSH_DISKCACHE || r->op == BLKIF_OP_WRITE_BARRIER) && !r->nr_segs)
        can |= SX_TT_CAN_NOTSUPP;   /* an empty flush: nothing is lost by not doing it */
    if (r->op == BLKIF_OP_DISCARD)
        can |= SX_TT_CAN_NOTSUPP;
    sx_tt_q_req(q->tt, r->id, op_name(r), pos, can, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP,
                &rq->tt);
    if (why != SX_BLK_OK) {
        refused(q, r, pos, why);
        rq->tt.status = 0;   /* refused anyway */
    }
}

void bb_tt_grant_bad(struct bb_queue *q, const struct sx_blk_req *r)
{
    struct sx_tt_where w = sx_tt_q_where(q->tt, r->id, op_name(r), 0);
    w.has_pos = false;
    sx_tt_found(sx_tt_q_dev(q->tt), SX_TT_K_GRANT_BAD, &w, NULL,
                "a segment's grant cannot be mapped: not granted to the backend domain, or "
                "ended");
}

void bb_tt_grants(struct bb_queue *q, const struct bb_req *rq)
{
    const struct sx_blk_req *r = rq->r;
    if (!r->segs_ready || r->op == BLKIF_OP_DISCARD)
        return;
    for (uint32_t i = 0; i < r->nr_segs; i++) {
        if (i && r->segs[i].gref == r->segs[i - 1].gref)
            continue;
        int rc = sx_gnt_query(q->v->d->gnt, q->v->fe, r->segs[i].gref);
        if (rc == -EOPNOTSUPP)
            return;   /* xen: another domain's grant table is not ours to read */
        if (rc == 0) {
            struct sx_tt_where w = sx_tt_q_where(q->tt, r->id, op_name(r), 0);
            w.has_pos = false;
            sx_tt_found(sx_tt_q_dev(q->tt), SX_TT_K_GRANT_REVOKED, &w, NULL,
                        "segment %u's grant %u was ended while the backend mapped it for the "
                        "request", i, r->segs[i].gref);
            return;
        }
    }
}

bool bb_tt_hold(struct bb_queue *q, const struct bb_req *rq, uint8_t op)
{
    const struct sx_tt_held h = { .id = rq->r->id, .op = op, .status = rq->status };
    return sx_tt_q_hold(q->tt, &rq->tt, &h);
}

void bb_tt_burst(struct bb_queue *q)
{
    for (unsigned n = sx_tt_q_burst(q->tt); n; n--)
        sx_evtchn_notify(q->evt, (evtchn_port_t)q->lport);
}

void bb_tt_taken(struct bb_queue *q, int n)
{
    if (!q->ring.sring)
        return;
    sx_tt_q_prod(q->tt, SX_READ_ONCE(q->ring.sring->req_prod), q->ring.req_cons);
    if (n < 0)
        sx_tt_q_overflow(q->tt, &q->ring);
}

/* ------------------------------------------------------------------ InitWait */

void bb_offer_pick(struct bb_vbd *v, bool discard)
{
    const struct bb_opts *o = &v->d->o;
    struct sx_tt_dev *t = v->tt;
    static const uint64_t bits[] = { 0, 1 };
    uint64_t ind[3] = { 0, 32, o->max_indirect }, ord[SX_RING_MAX_ORDER + 1];
    uint64_t qs[BB_MAX_QUEUES];
    for (unsigned i = 0; i <= o->max_ring_order; i++)
        ord[i] = i;
    for (unsigned i = 0; i < v->max_queues; i++)
        qs[i] = i + 1;
    struct bb_offer *f = &v->offer;
    f->persistent = sx_tt_feature(t, "feature-persistent", o->max_pgrants != 0, bits,
                                  o->max_pgrants ? 2 : 0);
    f->max_indirect = (unsigned)sx_tt_feature(t, "feature-max-indirect-segments", o->max_indirect,
                                              ind, o->max_indirect > 32 ? 3 : 0);
    f->max_ring_order = (unsigned)sx_tt_feature(t, "max-ring-page-order", o->max_ring_order, ord,
                                                o->max_ring_order + 1);
    f->max_queues = (unsigned)sx_tt_feature(t, "multi-queue-max-queues", v->max_queues, qs,
                                            v->max_queues);
    f->flush = sx_tt_feature(t, "feature-flush-cache", v->flush, bits, v->flush ? 2 : 0);
    f->barrier = sx_tt_feature(t, "feature-barrier", v->flush, bits, v->flush ? 2 : 0);
    f->discard = sx_tt_feature(t, "feature-discard", discard, bits, discard ? 2 : 0);
}
