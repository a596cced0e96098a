/*
 * sxblkfront against a scripted backend on the sim platform.
 *
 * The test is dom0: it writes the libxl vbd layout, plays the backend's side of the xenbus
 * handshake (features, InitWait, Connected, Closing, Closed), checks every key the frontend
 * writes for several option combinations, maps the rings and grants as a backend would, and
 * answers requests from a RAM disk. The frontend runs as a guest domain in the same process
 * (sx_blkfront_open blocks, so it runs on a thread while the test scripts the backend).
 */
#include "frontends/blkfront/blkfront.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring/ring.h"
#include <xen/io/blkif.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xenbus/xenbus.h"

#define DISK_BYTES (4u << 20)
#define DISK_SECTORS (DISK_BYTES / 512)
#define STATE_TMO 5000

static struct simenv env;
static struct sx_plat *dom0, *guest;
static struct sx_gnt *gnt;
static struct sx_evtchn *bevt;
static struct sx_xenbus *xb;
static domid_t gid;
static uint8_t *disk;

/* ------------------------------------------------------------------ scripted backend */

struct be_cfg {
    unsigned max_order, max_queues, max_indirect;   /* 0 = key not written */
    bool persistent, flush, discard, readonly;
};

struct be_queue {
    void *mem;
    struct sx_back_ring ring;
    int lport;
};

struct be {
    struct be_cfg cfg;
    unsigned devid;
    char fe[128], be[128];
    unsigned order, nq;
    struct be_queue q[4];
    /* frontend thread */
    pthread_t th;
    struct sx_blkfront *f;
    struct sx_blkfront_opts opts;
    char vdev[16];
    int open_rc;
};

static void xw(const char *dir, const char *key, const char *val)
{
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_write(xb, XBT_NULL, dir, key, val), 0);
}

static void xwu(const char *dir, const char *key, unsigned long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", v);
    xw(dir, key, buf);
}

static void xperm(const char *path, domid_t owner, domid_t reader)
{
    struct xs_permissions p[2] = { { .id = owner, .perms = XS_PERM_NONE },
                                   { .id = reader, .perms = XS_PERM_READ } };
    CU_ASSERT_TRUE_FATAL(xs_set_permissions(sx_xenbus_xs(xb), XBT_NULL, path, p, 2));
}

/* Is <dir>/<key> present? */
static bool has(const char *dir, const char *key)
{
    return sx_xenbus_exists(xb, XBT_NULL, dir, key) == 1;
}

static uint64_t rdu(const char *dir, const char *key)
{
    uint64_t v = UINT64_MAX;
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb, XBT_NULL, dir, key, 0, UINT64_MAX, &v), 0);
    return v;
}

/* The toolstack's part (libxl layout, as xenstore-paused.txt) and the backend's probe. */
static void be_create(struct be *b, unsigned devid, const char *vdev, const struct be_cfg *cfg)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->devid = devid;
    snprintf(b->vdev, sizeof(b->vdev), "%s", vdev);
    sx_xenbus_frontend_path(b->fe, sizeof(b->fe), gid, "vbd", devid);
    sx_xenbus_backend_path(b->be, sizeof(b->be), 0, "vbd", gid, devid);
    xw(b->fe, NULL, "");
    xperm(b->fe, gid, 0);
    xw(b->fe, "backend", b->be);
    xwu(b->fe, "backend-id", 0);
    xwu(b->fe, "state", XenbusStateInitialising);
    xwu(b->fe, "virtual-device", devid);
    xw(b->fe, "device-type", "disk");
    xw(b->fe, "protocol", "x86_64-abi");
    xw(b->be, NULL, "");
    xperm(b->be, 0, gid);
    xw(b->be, "frontend", b->fe);
    xwu(b->be, "frontend-id", gid);
    xw(b->be, "params", "/dev/null");
    xw(b->be, "type", "phy");
    xw(b->be, "mode", cfg->readonly ? "r" : "w");
    xwu(b->be, "online", 1);
    xw(b->be, "dev", vdev);
    xw(b->be, "device-type", "disk");
    xwu(b->be, "state", XenbusStateInitialising);
    /* Backend probe: features and transport limits, then InitWait. */
    if (cfg->max_indirect)
        xwu(b->be, "feature-max-indirect-segments", cfg->max_indirect);
    if (cfg->max_queues)
        xwu(b->be, "multi-queue-max-queues", cfg->max_queues);
    if (cfg->max_order)
        xwu(b->be, "max-ring-page-order", cfg->max_order);
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_switch_state(xb, b->be, XenbusStateInitWait), 0);
}

static void *open_thread(void *arg)
{
    struct be *b = arg;
    b->open_rc = sx_blkfront_open(&b->f, guest, b->vdev, &b->opts);
    return NULL;
}

static void fe_start(struct be *b, const struct sx_blkfront_opts *o)
{
    b->opts = *o;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&b->th, NULL, open_thread, b), 0);
}

static void map_queue(struct be *b, unsigned i, const char *dir)
{
    grant_ref_t refs[SX_RING_MAX_PAGES];
    if (b->order == 0) {
        refs[0] = (grant_ref_t)rdu(dir, "ring-ref");
    } else {
        for (unsigned k = 0; k < (1u << b->order); k++) {
            char key[32];
            snprintf(key, sizeof(key), "ring-ref%u", k);
            refs[k] = (grant_ref_t)rdu(dir, key);
        }
    }
    struct be_queue *q = &b->q[i];
    CU_ASSERT_EQUAL_FATAL(sx_ring_map(gnt, gid, b->order, refs, &q->mem), 0);
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&q->ring, q->mem, sx_ring_bytes(b->order),
                                              sizeof(blkif_request_t),
                                              sizeof(blkif_response_t)), 0);
    q->lport = sx_evtchn_bind_interdomain(bevt, gid, (evtchn_port_t)rdu(dir, "event-channel"));
    CU_ASSERT_TRUE_FATAL(q->lport >= 0);
}

/* Wait for Initialised, check the transport keys, connect the rings, go Connected. */
static void be_connect(struct be *b, unsigned want_order, unsigned want_nq, bool fe_persistent)
{
    enum xenbus_state st;
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_wait_state(xb, b->fe, XenbusStateInitialised, STATE_TMO,
                                               &st), 0);
    char proto[32] = "";
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb, XBT_NULL, b->fe, "protocol", proto, sizeof(proto)), 0);
    CU_ASSERT_STRING_EQUAL(proto, "x86_64-abi");
    CU_ASSERT_EQUAL(rdu(b->fe, "feature-persistent"), fe_persistent ? 1u : 0u);

    b->order = want_order;
    if (want_order == 0) {
        CU_ASSERT_FALSE(has(b->fe, "ring-page-order"));
    } else {
        CU_ASSERT_EQUAL(rdu(b->fe, "ring-page-order"), want_order);
    }
    b->nq = want_nq;
    if (want_nq == 1) {
        CU_ASSERT_FALSE(has(b->fe, "multi-queue-num-queues"));
        CU_ASSERT_FALSE(has(b->fe, "queue-0"));
        CU_ASSERT_TRUE(has(b->fe, "event-channel"));
        CU_ASSERT_EQUAL(has(b->fe, "ring-ref"), want_order == 0);
        CU_ASSERT_EQUAL(has(b->fe, "ring-ref0"), want_order > 0);
        if (want_order > 0) {
            char key[32];
            snprintf(key, sizeof(key), "ring-ref%u", (1u << want_order) - 1);
            CU_ASSERT_TRUE(has(b->fe, key));
            snprintf(key, sizeof(key), "ring-ref%u", 1u << want_order);
            CU_ASSERT_FALSE(has(b->fe, key));
        }
        map_queue(b, 0, b->fe);
    } else {
        CU_ASSERT_EQUAL(rdu(b->fe, "multi-queue-num-queues"), want_nq);
        CU_ASSERT_FALSE(has(b->fe, "ring-ref"));
        CU_ASSERT_FALSE(has(b->fe, "ring-ref0"));
        CU_ASSERT_FALSE(has(b->fe, "event-channel"));
        char qd[192];
        snprintf(qd, sizeof(qd), "%s/queue-%u", b->fe, want_nq);
        CU_ASSERT_EQUAL(sx_xenbus_exists(xb, XBT_NULL, qd, NULL), 0);
        for (unsigned i = 0; i < want_nq; i++) {
            snprintf(qd, sizeof(qd), "%s/queue-%u", b->fe, i);
            CU_ASSERT_EQUAL(has(qd, "ring-ref"), want_order == 0);
            CU_ASSERT_EQUAL(has(qd, "ring-ref0"), want_order > 0);
            map_queue(b, i, qd);
        }
        /* Different queues, different rings and ports. */
        CU_ASSERT_PTR_NOT_EQUAL(b->q[0].mem, b->q[1].mem);
        CU_ASSERT_NOT_EQUAL(b->q[0].lport, b->q[1].lport);
    }

    xwu(b->be, "sectors", DISK_SECTORS);
    xwu(b->be, "sector-size", 512);
    xwu(b->be, "physical-sector-size", 4096);
    xwu(b->be, "info", b->cfg.readonly ? VDISK_READONLY : 0);
    xwu(b->be, "feature-flush-cache", b->cfg.flush);
    xwu(b->be, "feature-persistent", b->cfg.persistent);
    if (b->cfg.discard) {
        xwu(b->be, "feature-discard", 1);
        xwu(b->be, "discard-granularity", 4096);
        xwu(b->be, "discard-alignment", 0);
        xwu(b->be, "discard-secure", 0);
    }
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_switch_state(xb, b->be, XenbusStateConnected), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_join(b->th, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(b->open_rc, 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb, XBT_NULL, b->fe, &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateConnected);
}

static void *close_thread(void *arg)
{
    struct be *b = arg;
    sx_blkfront_close(b->f);
    b->f = NULL;
    return NULL;
}

/* Closing/Closed from both sides; the backend unmaps between. keep: leave the vbd in place
 * for a reconnect. */
static void be_disconnect_keep(struct be *b, bool keep)
{
    CU_ASSERT_EQUAL_FATAL(pthread_create(&b->th, NULL, close_thread, b), 0);
    enum xenbus_state st;
    CU_ASSERT_EQUAL(sx_xenbus_wait_state(xb, b->fe, XenbusStateClosing, STATE_TMO, &st), 0);
    for (unsigned i = 0; i < b->nq; i++) {
        sx_back_ring_detach(&b->q[i].ring);
        CU_ASSERT_EQUAL(sx_ring_unmap(gnt, b->q[i].mem, b->order), 0);
        CU_ASSERT_EQUAL(sx_evtchn_unbind(bevt, (evtchn_port_t)b->q[i].lport), 0);
    }
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb, b->be, XenbusStateClosing), 0);
    CU_ASSERT_EQUAL(sx_xenbus_wait_state(xb, b->fe, XenbusStateClosed, STATE_TMO, &st), 0);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb, b->be, XenbusStateClosed), 0);
    CU_ASSERT_EQUAL(pthread_join(b->th, NULL), 0);
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
    if (keep)
        return;
    sx_xenbus_rm(xb, XBT_NULL, b->fe, NULL);
    sx_xenbus_rm(xb, XBT_NULL, b->be, NULL);
}

static void be_disconnect(struct be *b) { be_disconnect_keep(b, false); }

/* One request as the backend sees it, after validation, with its data mapped. */
struct seen {
    blkif_request_t raw;
    uint8_t op;                 /* data op (indirect_op for indirect) */
    bool indirect;
    unsigned nseg;
    uint64_t sector;
    struct blkif_request_segment seg[512];
};

/* Take one request, decode it (reading indirect pages through a mapping), move its data
 * between the RAM disk and the frontend's grants, and answer with `status`. */
static void be_serve_one(struct be *b, unsigned qi, struct seen *sn, int16_t status,
                         bool check_ro_writes)
{
    struct be_queue *q = &b->q[qi];
    memset(sn, 0, sizeof(*sn));
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&q->ring, &sn->raw, 1), 1);
    sn->op = sn->raw.operation;
    if (sn->raw.operation == BLKIF_OP_INDIRECT) {
        blkif_request_indirect_t ind;
        memcpy(&ind, &sn->raw, sizeof(ind));
        sn->indirect = true;
        sn->op = ind.indirect_op;
        sn->nseg = ind.nr_segments;
        sn->sector = ind.sector_number;
        CU_ASSERT_EQUAL(ind.handle, b->devid & 0xffff);
        unsigned npg = (sn->nseg + 511) / 512;
        CU_ASSERT_FATAL(npg >= 1 && npg <= BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
        void *ip;
        CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, npg, ind.indirect_grefs, false, &ip, NULL), 0);
        memcpy(sn->seg, ip, sn->nseg * sizeof(sn->seg[0]));
        CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, ip, npg), 0);
    } else {
        sn->nseg = sn->raw.nr_segments;
        sn->sector = sn->raw.sector_number;
        CU_ASSERT_FATAL(sn->nseg <= BLKIF_MAX_SEGMENTS_PER_REQUEST);
        memcpy(sn->seg, sn->raw.seg, sn->nseg * sizeof(sn->seg[0]));
        if (sn->op == BLKIF_OP_READ || sn->op == BLKIF_OP_WRITE)
            CU_ASSERT_EQUAL(sn->raw.handle, b->devid & 0xffff);
    }
    if (status == BLKIF_RSP_OKAY && (sn->op == BLKIF_OP_READ || sn->op == BLKIF_OP_WRITE)) {
        uint64_t pos = sn->sector * 512;
        for (unsigned i = 0; i < sn->nseg; i++) {
            struct blkif_request_segment *s = &sn->seg[i];
            CU_ASSERT_FATAL(s->first_sect <= s->last_sect && s->last_sect < 8);
            size_t off = s->first_sect * 512u, n = (s->last_sect - s->first_sect + 1u) * 512u;
            CU_ASSERT_FATAL(pos + n <= DISK_BYTES);
            bool w = sn->op == BLKIF_OP_READ;
            if (check_ro_writes && sn->op == BLKIF_OP_WRITE) {
                /* Without persistent grants a write's pages are granted read-only. */
                void *tmp;
                CU_ASSERT_NOT_EQUAL(sx_gnt_map(gnt, gid, 1, &s->gref, true, &tmp, NULL), 0);
            }
            if (w) {
                /* Reads go back by grant copy (as a copying backend does), writes are read
                 * through a mapping: both ways must work on the frontend's grants. */
                xengnttab_grant_copy_segment_t cs = {
                    .source.virt = disk + pos,
                    .dest.foreign = { .ref = s->gref, .offset = (uint16_t)off, .domid = gid },
                    .len = (uint16_t)n, .flags = GNTCOPY_dest_gref,
                };
                CU_ASSERT_EQUAL(sx_gnt_copy(gnt, 1, &cs), 0);
                CU_ASSERT_EQUAL(cs.status, GNTST_okay);
            } else {
                void *pg;
                CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &s->gref, false, &pg, NULL), 0);
                memcpy(disk + pos, (uint8_t *)pg + off, n);
                CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, pg, 1), 0);
            }
            pos += n;
        }
    }
    /* Answered with the data operation, indirect_op for an indirect request, as Linux
     * blkback does. */
    blkif_response_t r = { .id = sn->raw.id, .operation = sn->op, .status = status };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&q->ring, &r), 0);
}

static void be_push(struct be *b, unsigned qi)
{
    if (sx_back_ring_push(&b->q[qi].ring) == 1)
        CU_ASSERT_EQUAL(sx_evtchn_notify(bevt, (evtchn_port_t)b->q[qi].lport), 0);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* Wait for exactly one completion on queue qi. */
static struct sx_blkfront_cpl wait_one(struct be *b, unsigned qi)
{
    struct sx_blkfront_cpl c = { .res = -9999 };
    CU_ASSERT_EQUAL(sx_blkfront_wait(b->f, qi, &c, 1, 1, 2000), 1);
    return c;
}

/* Write then read back `len` bytes at `off` through queue qi; the backend serves each ring
 * request. Returns the number of ring requests the write took. */
static unsigned roundtrip(struct be *b, unsigned qi, uint64_t off, size_t len, unsigned seed,
                          bool check_ro, bool expect_indirect)
{
    uint8_t *wbuf = malloc(len), *rbuf = calloc(1, len);
    CU_ASSERT_FATAL(wbuf && rbuf);
    fill(wbuf, len, seed);
    static struct seen sn;
    int cookie_w, cookie_r;
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_submit(b->f, qi, SX_BLKFRONT_WRITE, off, wbuf, len,
                                             &cookie_w), 0);
    CU_ASSERT_EQUAL(sx_blkfront_inflight(b->f, qi), 1);
    CU_ASSERT_TRUE(sx_blkfront_kick(b->f, qi) >= 0);
    unsigned parts = 0;
    uint64_t expect_sector = off / 512;
    while (sx_back_ring_has_requests(&b->q[qi].ring)) {
        be_serve_one(b, qi, &sn, BLKIF_RSP_OKAY, check_ro);
        CU_ASSERT_EQUAL(sn.op, BLKIF_OP_WRITE);
        CU_ASSERT_EQUAL(sn.indirect, expect_indirect);
        CU_ASSERT_EQUAL(sn.sector, expect_sector);
        expect_sector += sn.nseg * 8;
        parts++;
    }
    be_push(b, qi);
    CU_ASSERT_EQUAL(memcmp(disk + off, wbuf, len), 0);
    struct sx_blkfront_cpl c = wait_one(b, qi);
    CU_ASSERT_PTR_EQUAL(c.cookie, &cookie_w);
    CU_ASSERT_EQUAL(c.res, (int)len);

    CU_ASSERT_EQUAL_FATAL(sx_blkfront_submit(b->f, qi, SX_BLKFRONT_READ, off, rbuf, len,
                                             &cookie_r), 0);
    sx_blkfront_kick(b->f, qi);
    while (sx_back_ring_has_requests(&b->q[qi].ring)) {
        be_serve_one(b, qi, &sn, BLKIF_RSP_OKAY, false);
        CU_ASSERT_EQUAL(sn.op, BLKIF_OP_READ);
    }
    be_push(b, qi);
    c = wait_one(b, qi);
    CU_ASSERT_PTR_EQUAL(c.cookie, &cookie_r);
    CU_ASSERT_EQUAL(c.res, (int)len);
    CU_ASSERT_EQUAL(memcmp(rbuf, wbuf, len), 0);
    CU_ASSERT_EQUAL(sx_blkfront_inflight(b->f, qi), 0);
    free(wbuf);
    free(rbuf);
    return parts;
}

static struct sx_blkfront_opts opts_of(bool persistent, unsigned indirect, unsigned order,
                                       unsigned queues)
{
    struct sx_blkfront_opts o;
    sx_blkfront_opts_default(&o);
    o.persistent = persistent;
    o.max_indirect_segs = indirect;
    o.max_ring_order = order;
    o.max_queues = queues;
    o.timeout_ms = STATE_TMO;
    o.spin_ns = 0;
    return o;
}

/* ------------------------------------------------------------------ tests */

static void test_parse_vdev_names_and_numbers(void)
{
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvda"), 51712);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("51712"), 51712);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvdb"), 51728);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvda1"), 51713);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvdp"), (202 << 8) | (15 << 4));
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvdq"), (1 << 28) | (16 << 8));
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvdaa"), (1 << 28) | (26 << 8));
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("hda"), 768);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("hdc"), 22 << 8);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("sdb2"), (8 << 8) | (1 << 4) | 2);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvd"), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvda0"), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("xvdA"), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("vda"), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev("12x"), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_parse_vdev(""), -EINVAL);
}

/* Order 0, one queue, persistent on both sides, indirect 32: ring-ref + event-channel at the
 * top; direct I/O from the persistent pool, then an indirect request. */
static void test_order0_one_queue_persistent(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 4, .max_queues = 4, .max_indirect = 32,
                          .persistent = true, .flush = true };
    be_create(&b, 51712, "xvda", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 32, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    const struct sx_blkfront_info *in = sx_blkfront_info(b.f);
    CU_ASSERT_EQUAL(in->devid, 51712);
    CU_ASSERT_EQUAL(in->backend_id, 0);
    CU_ASSERT_EQUAL(in->sectors, DISK_SECTORS);
    CU_ASSERT_EQUAL(in->size_bytes, DISK_BYTES);
    CU_ASSERT_EQUAL(in->physical_sector_size, 4096);
    CU_ASSERT_TRUE(in->persistent);
    CU_ASSERT_TRUE(in->flush);
    CU_ASSERT_FALSE(in->discard);
    CU_ASSERT_EQUAL(in->ring_order, 0);
    CU_ASSERT_EQUAL(in->nr_queues, 1);
    CU_ASSERT_EQUAL(in->ring_entries, 32);
    CU_ASSERT_EQUAL(in->max_indirect_segs, 32);
    CU_ASSERT_EQUAL(in->max_req_bytes, 32 * 4096);

    CU_ASSERT_EQUAL(roundtrip(&b, 0, 4096, 8192, 1, false, false), 1);
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 512 * 3, 1536, 2, false, false), 1);   /* partial page */
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 65536, 20 * 4096 + 512, 3, false, true), 1);
    struct sx_blkfront_stats st;
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.indirect_reqs, 2);
    CU_ASSERT_EQUAL(st.completed, 6);
    CU_ASSERT_EQUAL(st.grants_shared, 0);
    /* One 64-page chunk served every request: the pool reuses pages. */
    CU_ASSERT_EQUAL(st.pool_pages, 64);
    be_disconnect(&b);
}

/* A granted buffer (sx_blkfront_buf_alloc): requests inside it name its own pages, at any
 * sector offset within a page, so nothing is copied: what the backend reads is what the buffer
 * holds when the backend serves the request (changed after submit here), and a read lands in
 * the buffer with no copy-out. Ordinary memory, and a granted buffer that is not
 * sector-aligned, still go through the pool's pages. */
static void test_granted_buffer_is_used_without_copies(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 4, .max_queues = 1, .max_indirect = 32,
                          .persistent = true, .flush = true };
    be_create(&b, 51712, "xvda", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 32, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    uint8_t *gb = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_buf_alloc(b.f, 40 * 4096 - 100, (void **)&gb), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gb);
    CU_ASSERT_EQUAL((uintptr_t)gb % 4096, 0);
    static struct seen sn;
    struct sx_blkfront_stats st;
    int cookie;

    /* A write of 20 pages + 512 bytes starting 1536 bytes into a page: 21 segments, indirect. */
    const size_t len = 20 * 4096 + 512, at = 1536;
    fill(gb + at, len, 31);
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_WRITE, 8192, gb + at, len,
                                             &cookie), 0);
    sx_blkfront_kick(b.f, 0);
    fill(gb + at, len, 32);                 /* after submit: the backend must see this */
    be_serve_one(&b, 0, &sn, BLKIF_RSP_OKAY, false);
    CU_ASSERT_TRUE(sn.indirect);
    CU_ASSERT_EQUAL(sn.nseg, 21);
    CU_ASSERT_EQUAL(sn.seg[0].first_sect, 3);
    CU_ASSERT_EQUAL(sn.seg[20].last_sect, 3);
    be_push(&b, 0);
    CU_ASSERT_EQUAL(memcmp(disk + 8192, gb + at, len), 0);
    struct sx_blkfront_cpl c = wait_one(&b, 0);
    CU_ASSERT_EQUAL(c.res, (int)len);

    /* A read into the buffer at another offset: the data is there without a copy-out. */
    fill(disk + 300 * 512, 3 * 4096, 33);
    memset(gb, 0, 40 * 4096 - 100);
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 300 * 512, gb + 512,
                                             3 * 4096, &cookie), 0);
    sx_blkfront_kick(b.f, 0);
    be_serve_one(&b, 0, &sn, BLKIF_RSP_OKAY, false);
    CU_ASSERT_FALSE(sn.indirect);
    CU_ASSERT_EQUAL(sn.nseg, 4);
    /* Served, not yet answered: the data is in the caller's buffer already. */
    CU_ASSERT_EQUAL(memcmp(gb + 512, disk + 300 * 512, 3 * 4096), 0);
    be_push(&b, 0);
    c = wait_one(&b, 0);
    CU_ASSERT_EQUAL(c.res, 3 * 4096);
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.zero_copy, 2);

    /* Not sector-aligned inside the granted buffer, and ordinary memory: copied, correct. */
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 4096, 8192, 34, false, false), 1);
    memcpy(gb + 7, disk + 4096, 4096);
    int cw;
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_WRITE, 0, gb + 7, 4096, &cw), 0);
    sx_blkfront_kick(b.f, 0);
    fill(gb + 7, 4096, 35);                 /* copied at submit: the backend must not see this */
    be_serve_one(&b, 0, &sn, BLKIF_RSP_OKAY, false);
    be_push(&b, 0);
    c = wait_one(&b, 0);
    CU_ASSERT_EQUAL(c.res, 4096);
    CU_ASSERT_EQUAL(memcmp(disk, disk + 4096, 4096), 0);
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.zero_copy, 2);
    CU_ASSERT_EQUAL(st.completed, 5);
    be_disconnect(&b);
}

/* Without persistent grants there are no granted buffers: the caller's memory is copied. */
static void test_granted_buffer_needs_persistent_grants(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .max_queues = 1, .persistent = false };
    be_create(&b, 51776, "xvde", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    void *gb = NULL;
    CU_ASSERT_EQUAL(sx_blkfront_buf_alloc(b.f, 4096, &gb), -EOPNOTSUPP);
    CU_ASSERT_PTR_NULL(gb);
    be_disconnect(&b);
}

/* Order 2, two queues, persistent off: ring-ref0..3 under queue-N, multi-queue-num-queues;
 * per-request grants that writes get read-only and that end on completion. */
static void test_order2_two_queues_nonpersistent(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 4, .max_queues = 4, .max_indirect = 256,
                          .persistent = true };
    be_create(&b, 51728, "xvdb", &cfg);
    struct sx_blkfront_opts o = opts_of(false, 256, 2, 2);
    fe_start(&b, &o);
    be_connect(&b, 2, 2, false);
    const struct sx_blkfront_info *in = sx_blkfront_info(b.f);
    CU_ASSERT_FALSE(in->persistent);
    CU_ASSERT_EQUAL(in->ring_entries, 128);
    CU_ASSERT_EQUAL(in->nr_queues, 2);
    CU_ASSERT_EQUAL(in->max_indirect_segs, 256);

    CU_ASSERT_EQUAL(roundtrip(&b, 1, 0, 4096 * 3, 4, true, false), 1);
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 1 << 20, 4096 * 16, 5, true, true), 1);
    /* 2 MiB at 256 segments per request: two indirect requests of 1 MiB, one completion. */
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 0, 2 << 20, 6, false, true), 2);
    struct sx_blkfront_stats st0, st1;
    sx_blkfront_get_stats(b.f, 0, &st0);
    sx_blkfront_get_stats(b.f, 1, &st1);
    CU_ASSERT_EQUAL(st0.split_reqs, 2);            /* the 2 MiB write and read */
    CU_ASSERT_EQUAL(st1.completed, 2);
    CU_ASSERT_EQUAL(st0.pool_pages, 0);
    CU_ASSERT_TRUE(st0.grants_shared >= 2 * (16 + 1));
    CU_ASSERT_EQUAL(st0.ungrant_busy, 0);

    /* Grants end with the request: a completed write's grant is no longer mappable. */
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 9);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 1, SX_BLKFRONT_WRITE, 8192, buf, 4096, NULL), 0);
    sx_blkfront_kick(b.f, 1);
    static struct seen sn;
    be_serve_one(&b, 1, &sn, BLKIF_RSP_OKAY, true);
    be_push(&b, 1);
    wait_one(&b, 1);
    void *pg;
    CU_ASSERT_NOT_EQUAL(sx_gnt_map(gnt, gid, 1, &sn.seg[0].gref, false, &pg, NULL), 0);
    be_disconnect(&b);
}

/* Reconnect (Closed -> Initialising -> InitWait) with smaller options: no key of the first
 * connection (ring-ref0.., ring-page-order, queue-N, multi-queue-num-queues) survives, and
 * data still moves. */
static void test_reconnect_drops_stale_keys(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 4, .max_queues = 4, .max_indirect = 64,
                          .persistent = true };
    be_create(&b, 51808, "xvdg", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 64, 3, 3);
    fe_start(&b, &o);
    be_connect(&b, 3, 3, true);
    CU_ASSERT_EQUAL(roundtrip(&b, 2, 0, 65536, 11, false, true), 1);
    be_disconnect_keep(&b, true);
    enum xenbus_state st;
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb, XBT_NULL, b.fe, &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateClosed);

    o = opts_of(false, 0, 0, 1);
    fe_start(&b, &o);
    CU_ASSERT_EQUAL(sx_xenbus_wait_state(xb, b.fe, XenbusStateInitialising, STATE_TMO, &st), 0);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb, b.be, XenbusStateInitWait), 0);
    be_connect(&b, 0, 1, false);
    CU_ASSERT_FALSE(has(b.fe, "queue-2"));
    CU_ASSERT_FALSE(has(b.fe, "ring-ref7"));
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 4096, 8192, 12, true, false), 1);
    be_disconnect(&b);
}

/* Indirect disabled by the caller: 64 KiB (16 pages) goes out as 11 + 5 direct segments. */
static void test_no_indirect_splits_large_io(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .max_queues = 0, .max_indirect = 256,
                          .persistent = true };
    be_create(&b, 51744, "xvdc", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 0, 4, 4);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);           /* backend offers neither order nor queues */
    CU_ASSERT_EQUAL(sx_blkfront_info(b.f)->max_indirect_segs, 0);
    CU_ASSERT_EQUAL(sx_blkfront_info(b.f)->max_req_bytes, 11 * 4096);
    CU_ASSERT_EQUAL(roundtrip(&b, 0, 0, 16 * 4096, 7, false, false), 2);
    struct sx_blkfront_stats st;
    sx_blkfront_get_stats(&*b.f, 0, &st);
    CU_ASSERT_EQUAL(st.split_reqs, 2);
    CU_ASSERT_EQUAL(st.ring_reqs, 4);
    be_disconnect(&b);
}

/* The frontend offers persistent grants, the backend does not: not in use. Errors and
 * unsupported answers reach the caller; a bogus response id is counted and ignored; a batch
 * of three requests costs one notification; flush and discard go out as their own ops. */
static void test_errors_bad_ids_batching_flush_discard(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 1, .max_queues = 1, .persistent = false, .flush = true,
                          .discard = true };
    be_create(&b, 51760, "xvdd", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 256, 4, 1);
    fe_start(&b, &o);
    be_connect(&b, 1, 1, true);
    const struct sx_blkfront_info *in = sx_blkfront_info(b.f);
    CU_ASSERT_FALSE(in->persistent);
    CU_ASSERT_TRUE(in->discard);
    CU_ASSERT_EQUAL(in->discard_granularity, 4096);
    CU_ASSERT_EQUAL(in->max_indirect_segs, 0);

    uint8_t buf[3][4096];
    int ck[3];
    struct sx_blkfront_stats st0, st;
    sx_blkfront_get_stats(b.f, 0, &st0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, (uint64_t)i * 4096, buf[i],
                                           4096, &ck[i]), 0);
    CU_ASSERT_FALSE(sx_back_ring_has_requests(&b.q[0].ring));       /* not before the kick */
    CU_ASSERT_EQUAL(sx_blkfront_kick(b.f, 0), 1);
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.notifies - st0.notifies, 1);
    static struct seen sn[3];
    be_serve_one(&b, 0, &sn[0], BLKIF_RSP_OKAY, false);
    be_serve_one(&b, 0, &sn[1], BLKIF_RSP_ERROR, false);
    be_serve_one(&b, 0, &sn[2], BLKIF_RSP_OKAY, false);
    /* A response nobody asked for: take the slot of a real one and answer twice. */
    be_push(&b, 0);
    struct sx_blkfront_cpl c[4];
    int n = sx_blkfront_wait(b.f, 0, c, 3, 4, 2000);
    CU_ASSERT_EQUAL(n, 3);
    for (int i = 0; i < n; i++) {
        int k = (int *)c[i].cookie - ck;
        CU_ASSERT_EQUAL(c[i].res, k == 1 ? -EIO : 4096);
    }
    /* Replay sn[0]'s id (completed) plus a garbage id: both counted, no completion. The
     * ring only accepts as many responses as requests are outstanding, so the bogus ones
     * stand in for two reads that are never answered. */
    blkif_response_t bogus[2] = { { .id = sn[0].raw.id, .operation = BLKIF_OP_READ },
                                  { .id = 0xdead0000beefull, .operation = BLKIF_OP_READ } };
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_FLUSH, 0, NULL, 0, &ck[0]), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_DISCARD, 8192, NULL, 16384, &ck[1]), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[2], 4096, &ck[2]), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[1], 4096, NULL), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[0], 4096, NULL), 0);
    sx_blkfront_kick(b.f, 0);
    blkif_request_t rq[5];
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&b.q[0].ring, rq, 5), 5);
    CU_ASSERT_EQUAL(rq[0].operation, BLKIF_OP_FLUSH_DISKCACHE);
    CU_ASSERT_EQUAL(rq[0].nr_segments, 0);
    blkif_request_discard_t d;
    memcpy(&d, &rq[1], sizeof(d));
    CU_ASSERT_EQUAL(d.operation, BLKIF_OP_DISCARD);
    CU_ASSERT_EQUAL(d.sector_number, 16);
    CU_ASSERT_EQUAL(d.nr_sectors, 32);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &bogus[0]), 0);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &bogus[1]), 0);
    blkif_response_t ok = { .id = rq[0].id, .operation = BLKIF_OP_FLUSH_DISKCACHE,
                            .status = BLKIF_RSP_OKAY };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &ok), 0);
    be_push(&b, 0);
    n = sx_blkfront_wait(b.f, 0, c, 1, 4, 2000);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_EQUAL(c[0].cookie, &ck[0]);
    CU_ASSERT_EQUAL(c[0].res, 0);
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.bad_rsps, 2);
    /* Discard: unsupported; read: answered with the wrong operation -> -EIO. */
    blkif_response_t r2[2] = { { .id = rq[1].id, .operation = BLKIF_OP_DISCARD,
                                 .status = BLKIF_RSP_EOPNOTSUPP },
                               { .id = rq[2].id, .operation = BLKIF_OP_WRITE } };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &r2[0]), 0);
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &r2[1]), 0);
    be_push(&b, 0);
    n = sx_blkfront_wait(b.f, 0, c, 2, 4, 2000);
    CU_ASSERT_EQUAL(n, 2);
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(c[i].res, c[i].cookie == &ck[1] ? -EOPNOTSUPP : -EIO);
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.bad_rsps, 3);
    CU_ASSERT_EQUAL(sx_blkfront_inflight(b.f, 0), 2);    /* the two never answered */

    /* Argument checks. */
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 100, buf[0], 512, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[0], 100, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, DISK_BYTES, buf[0], 512, NULL),
                    -EINVAL);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 1, SX_BLKFRONT_READ, 0, buf[0], 512, NULL), -EINVAL);
    be_disconnect(&b);
}

/* Regression (found by blkback --torture): <xen/io/blkif.h> lets a backend answer a flush
 * BLKIF_RSP_EOPNOTSUPP "at any time"; blkfront handed that to its caller as an error, and
 * fio's fsync failed the job. An empty flush answered so is done (the backend has no cache to
 * flush) and none is sent again on the connection, as Linux blkfront does; a discard answered
 * so still reports -EOPNOTSUPP to its caller, and discards stop too. */
static void test_flush_eopnotsupp_completes_and_stops_flushing(void)
{
    struct be b;
    struct be_cfg cfg = { .max_queues = 1, .flush = true, .discard = true };
    be_create(&b, 51776, "xvde", &cfg);
    struct sx_blkfront_opts o = opts_of(false, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, false);
    CU_ASSERT_TRUE(sx_blkfront_info(b.f)->flush);
    int ck[2];
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_FLUSH, 0, NULL, 0, &ck[0]), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_DISCARD, 0, NULL, 4096, &ck[1]), 0);
    sx_blkfront_kick(b.f, 0);
    static struct seen sn[2];
    be_serve_one(&b, 0, &sn[0], BLKIF_RSP_EOPNOTSUPP, false);
    be_serve_one(&b, 0, &sn[1], BLKIF_RSP_EOPNOTSUPP, false);
    CU_ASSERT_EQUAL(sn[0].op, BLKIF_OP_FLUSH_DISKCACHE);
    CU_ASSERT_EQUAL(sn[1].op, BLKIF_OP_DISCARD);
    be_push(&b, 0);
    struct sx_blkfront_cpl c[2];
    CU_ASSERT_EQUAL_FATAL(sx_blkfront_wait(b.f, 0, c, 2, 2, 2000), 2);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(c[i].res, c[i].cookie == &ck[0] ? 0 : -EOPNOTSUPP);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_FLUSH, 0, NULL, 0, NULL), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_DISCARD, 0, NULL, 4096, NULL),
                    -EOPNOTSUPP);
    CU_ASSERT_FALSE(sx_back_ring_has_requests(&b.q[0].ring));
    be_disconnect(&b);
}

/* A full ring refuses with -EAGAIN; the sleeping wait is woken by the backend's event. */
struct late_answer {
    struct be *b;
    unsigned n;
};

static void *late_answer_thread(void *arg)
{
    struct late_answer *la = arg;
    usleep(50000);
    static struct seen sn;
    for (unsigned i = 0; i < la->n; i++)
        be_serve_one(la->b, 0, &sn, BLKIF_RSP_OKAY, false);
    be_push(la->b, 0);
    return NULL;
}

static void test_full_ring_eagain_and_event_wakeup(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .persistent = true };
    be_create(&b, 51776, "xvde", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    static uint8_t buf[33][4096];
    for (unsigned i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, i * 4096ull, buf[i], 4096,
                                           NULL), 0);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[32], 4096, NULL), -EAGAIN);
    /* Larger than the ring could ever carry without indirect: 33 * 11 pages. */
    static uint8_t big[33 * 11 * 4096];
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, big, sizeof(big), NULL),
                    -E2BIG);
    sx_blkfront_kick(b.f, 0);
    struct late_answer la = { .b = &b, .n = 32 };
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, late_answer_thread, &la), 0);
    struct sx_blkfront_cpl c[32];
    unsigned got = 0;
    while (got < 32) {
        int n = sx_blkfront_wait(b.f, 0, c, 1, 32, 3000);
        CU_ASSERT_FATAL(n > 0);
        got += (unsigned)n;
    }
    pthread_join(th, NULL);
    struct sx_blkfront_stats st;
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_TRUE(st.waits >= 1);
    CU_ASSERT_EQUAL(st.eagain, 1);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[32], 4096, NULL), 0);
    be_disconnect(&b);
}

/* The backend leaves Connected with a request outstanding: a wait without timeout returns
 * -ENOTCONN after its one-second liveness check instead of sleeping forever. */
static void test_wait_reports_backend_gone(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .persistent = true };
    be_create(&b, 51824, "xvdh", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    static uint8_t buf[4096];
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf, 4096, NULL), 0);
    CU_ASSERT_EQUAL(sx_blkfront_kick(b.f, 0), 1);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb, b.be, XenbusStateClosing), 0);
    CU_ASSERT_EQUAL(sx_blkfront_backend_state(b.f), XenbusStateClosing);
    struct sx_blkfront_cpl c;
    CU_ASSERT_EQUAL(sx_blkfront_wait(b.f, 0, &c, 1, 1, -1), -ENOTCONN);
    CU_ASSERT_EQUAL(sx_blkfront_inflight(b.f, 0), 1);
    be_disconnect(&b);
}

/* Without persistent grants, a backend that answers while still mapping the pages: the caller
 * gets the completion, the slot waits (ungrant_busy) and is reused only after the unmap. */
static void test_nonpersistent_grant_still_mapped_is_deferred(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .persistent = false };
    be_create(&b, 51840, "xvdi", &cfg);
    struct sx_blkfront_opts o = opts_of(false, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, false);
    static uint8_t buf[33][4096];
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[0], 4096, &buf[0]), 0);
    sx_blkfront_kick(b.f, 0);
    blkif_request_t rq;
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_take(&b.q[0].ring, &rq, 1), 1);
    void *pg;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &rq.seg[0].gref, true, &pg, NULL), 0);
    memset(pg, 0x5a, 4096);
    blkif_response_t r = { .id = rq.id, .operation = BLKIF_OP_READ, .status = BLKIF_RSP_OKAY };
    CU_ASSERT_EQUAL(sx_back_ring_put_rsp(&b.q[0].ring, &r), 0);
    be_push(&b, 0);
    struct sx_blkfront_cpl c;
    CU_ASSERT_EQUAL(sx_blkfront_wait(b.f, 0, &c, 1, 1, 2000), 1);
    CU_ASSERT_EQUAL(c.res, 4096);
    CU_ASSERT_EQUAL(buf[0][4095], 0x5a);
    struct sx_blkfront_stats st;
    sx_blkfront_get_stats(b.f, 0, &st);
    CU_ASSERT_EQUAL(st.ungrant_busy, 1);
    /* 31 slots left while the backend holds the mapping. */
    unsigned ok = 0;
    for (unsigned i = 1; i < 33; i++)
        ok += sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[i], 4096, NULL) == 0;
    CU_ASSERT_EQUAL(ok, 31);
    sx_blkfront_kick(b.f, 0);
    static struct seen sn;
    for (unsigned i = 0; i < 31; i++)
        be_serve_one(&b, 0, &sn, BLKIF_RSP_OKAY, false);
    be_push(&b, 0);
    struct sx_blkfront_cpl cs[32];
    unsigned got = 0;
    while (got < 31) {
        int n = sx_blkfront_wait(b.f, 0, cs, 1, 32, 2000);
        CU_ASSERT_FATAL(n > 0);
        got += (unsigned)n;
    }
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, pg, 1), 0);
    CU_ASSERT_EQUAL(sx_blkfront_poll(b.f, 0, cs, 32), 0);    /* retries the ungrant */
    /* The slot is back: the whole ring can be in flight again. */
    ok = 0;
    for (unsigned i = 1; i < 33; i++)
        ok += sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf[i], 4096, NULL) == 0;
    CU_ASSERT_EQUAL(ok, 32);
    be_disconnect(&b);
}

/* A backend that publishes more responses than requests are outstanding halts the queue:
 * poll and submit report -EPROTO, nothing crashes, close still works. */
static void test_response_overflow_halts_queue(void)
{
    struct be b;
    struct be_cfg cfg = { .max_order = 0, .persistent = true };
    be_create(&b, 51856, "xvdj", &cfg);
    struct sx_blkfront_opts o = opts_of(true, 0, 0, 1);
    fe_start(&b, &o);
    be_connect(&b, 0, 1, true);
    static uint8_t buf[4096];
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf, 4096, NULL), 0);
    sx_blkfront_kick(b.f, 0);
    SX_WRITE_ONCE(b.q[0].ring.sring->rsp_prod, 5);       /* 5 answers to 1 request */
    struct sx_blkfront_cpl c[8];
    CU_ASSERT_EQUAL(sx_blkfront_poll(b.f, 0, c, 8), -EPROTO);
    CU_ASSERT_EQUAL(sx_blkfront_submit(b.f, 0, SX_BLKFRONT_READ, 0, buf, 4096, NULL), -EPROTO);
    be_disconnect(&b);
}

/* No backend ever reaches InitWait: open times out (and says where it waited). */
static void test_open_times_out_without_backend(void)
{
    struct be b;
    struct be_cfg cfg = { 0 };
    be_create(&b, 51792, "xvdf", &cfg);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb, b.be, XenbusStateInitialising), 0);
    struct sx_blkfront_opts o = opts_of(true, 0, 0, 1);
    o.timeout_ms = 300;
    struct sx_blkfront *f = (struct sx_blkfront *)1;
    CU_ASSERT_EQUAL(sx_blkfront_open(&f, guest, "xvdf", &o), -ETIMEDOUT);
    CU_ASSERT_PTR_EQUAL(f, (struct sx_blkfront *)1);
    CU_ASSERT_EQUAL(sx_blkfront_open(&f, guest, "xvdz", &o), -ENOENT);
    sx_xenbus_rm(xb, XBT_NULL, b.fe, NULL);
    sx_xenbus_rm(xb, XBT_NULL, b.be, NULL);
    sx_blkfront_close(NULL);
}

/* ------------------------------------------------------------------ fixture */

static int setup(void)
{
    if (simenv_start(&env, true) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    if (!dom0)
        return 1;
    int d = sxc_domain_create(dom0->conn, "blkfront-guest", SXD_TYPE_PV, 64, 1, false);
    if (d < 0)
        return 1;
    gid = (domid_t)d;
    guest = simenv_plat(&env, gid);
    char path[256];
    snprintf(path, sizeof(path), "%s/xenstored/socket", env.dir);
    if (!guest || sx_gnt_open(&gnt, dom0) < 0 || sx_evtchn_open(&bevt, dom0) < 0 ||
        sx_xenbus_open(&xb, NULL, path) < 0)
        return 1;
    disk = calloc(1, DISK_BYTES);
    return disk ? 0 : 1;
}

static int teardown(void)
{
    sx_xenbus_close(xb);
    sx_evtchn_close(bevt);
    sx_gnt_close(gnt);
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    free(disk);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_parse_vdev_names_and_numbers),
    SX_TEST(test_order0_one_queue_persistent),
    SX_TEST(test_granted_buffer_is_used_without_copies),
    SX_TEST(test_granted_buffer_needs_persistent_grants),
    SX_TEST(test_order2_two_queues_nonpersistent),
    SX_TEST(test_reconnect_drops_stale_keys),
    SX_TEST(test_no_indirect_splits_large_io),
    SX_TEST(test_errors_bad_ids_batching_flush_discard),
    SX_TEST(test_flush_eopnotsupp_completes_and_stops_flushing),
    SX_TEST(test_full_ring_eagain_and_event_wakeup),
    SX_TEST(test_wait_reports_backend_gone),
    SX_TEST(test_nonpersistent_grant_still_mapped_is_deferred),
    SX_TEST(test_response_overflow_halts_queue),
    SX_TEST(test_open_times_out_without_backend),
};

SX_TEST_MAIN("blkfront", cases, setup, teardown)
