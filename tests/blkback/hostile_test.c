/*
 * Hostile-frontend tests: the real blkback daemon code (bb_daemon_* from blkback/xenbus.c,
 * blkback.c, persistent.c) runs in-process on an in-process sim core with xenstored
 * (tests/blkguest.h); each case creates the guests it needs, plays their frontends by hand
 * (raw blkif requests straight into the shared ring) and destroys them, so no case depends on
 * another having run.
 *
 * Each bad request must get an error response, and the guest must keep being served after it;
 * a producer index past the ring must halt only that guest's ring (counted in its stats file);
 * a bystander guest keeps working throughout. The advisories' own attacks are in tests/xsa/.
 */
#define SX_LOG_MODULE "hostile_test"
#include "tests/blkguest.h"

#include <stdatomic.h>

static struct blkenv E;

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    return blkenv_start(&E, &o) < 0 ? -1 : 0;
}

static void guests_down(void);

static int suite_clean(void)
{
    guests_down();
    blkenv_stop(&E);
    return 0;
}

/* The guests of one case: up to three, destroyed at its end whatever happened. */
static struct blkguest G[3];

static struct blkguest *guest(unsigned i, const char *name, bool ro, bool x86_32)
{
    struct blkguest_opts o = { .name = name, .ro = ro, .x86_32 = x86_32, .persistent = true };
    blkguest_destroy(&G[i]);   /* left by a case that failed fatally */
    int rc = blkguest_up(&E, &G[i], &o);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return &G[i];
}

static void guests_down(void)
{
    for (unsigned i = 0; i < 3; i++)
        blkguest_destroy(&G[i]);
}

static void test_good_read_rw_and_ro_vbds(void)
{
    struct blkguest *a = guest(0, "good-a", false, false), *b = guest(1, "good-b", true, false);
    CU_ASSERT_TRUE(blkguest_good_read(a, 0));
    CU_ASSERT_TRUE(blkguest_good_read(a, 100));
    CU_ASSERT_TRUE(blkguest_good_read(b, 3));
    CU_ASSERT_EQUAL(blkguest_stat(a, "errors"), 0);
    guests_down();
}

/* Counters are added up per batch and published with the responses: after the answer to read
 * i, `requests` and `read_ops` count it, none lost or doubled. Latency is sampled on 1
 * read/write in BB_LAT_SAMPLE: 2 * BB_LAT_SAMPLE reads give exactly 2 samples of each stage
 * (the response stage lands when the thread publishes next: waited for with a deadline). */
static void test_batched_counters_and_one_latency_sample_in_8(void)
{
    struct blkguest *a = guest(0, "lat-sample", false, false);
    uint64_t req0 = blkguest_stat(a, "requests"), rd0 = blkguest_stat(a, "read_ops");
    uint64_t b0 = blkguest_stat(a, "lat_backend_n"), e0 = blkguest_stat(a, "lat_engine_n");
    uint64_t r0 = blkguest_stat(a, "lat_response_n"), ens0 = blkguest_stat(a, "lat_engine_ns");
    CU_ASSERT_NOT_EQUAL_FATAL(req0, UINT64_MAX);
    CU_ASSERT_NOT_EQUAL_FATAL(r0, UINT64_MAX);
    for (unsigned i = 0; i < 2 * BB_LAT_SAMPLE; i++) {
        CU_ASSERT_TRUE(blkguest_good_read(a, 8 * i));
        CU_ASSERT_EQUAL(blkguest_stat(a, "requests"), req0 + i + 1);
        CU_ASSERT_EQUAL(blkguest_stat(a, "read_ops"), rd0 + i + 1);
    }
    CU_ASSERT_EQUAL(blkguest_stat_wait(a, "lat_response_n", r0 + 2, 2000), r0 + 2);
    CU_ASSERT_EQUAL(blkguest_stat(a, "lat_backend_n"), b0 + 2);
    CU_ASSERT_EQUAL(blkguest_stat(a, "lat_engine_n"), e0 + 2);
    CU_ASSERT(blkguest_stat(a, "lat_engine_ns") > ens0);   /* a read takes some time */
    guests_down();
}

/* The 32-bit layout (id at offset 4, 108-byte slots, 12-byte responses) is decoded as such. */
static void test_x86_32_guest(void)
{
    struct blkguest *c = guest(0, "x86-32", false, true);
    union {
        struct sx_blkif_x86_32_request r;
        uint8_t raw[sizeof(struct sx_blkif_x86_32_request)];
    } u;
    memset(&u, 0, sizeof(u));
    CU_ASSERT_EQUAL(c->ring.req_size, 108);
    u.r.operation = BLKIF_OP_READ;
    u.r.u.rw.nr_segments = 2;
    u.r.u.rw.id = 0x1122334455667788ull;
    u.r.u.rw.sector_number = 24;
    for (unsigned i = 0; i < 2; i++)
        u.r.u.rw.seg[i] = (struct blkif_request_segment){ .gref = c->data_refs[i],
                                                          .first_sect = 0, .last_sect = 7 };
    memset(c->data, 0, 2 * SX_PAGE_SIZE);
    uint64_t id = 0;
    CU_ASSERT_EQUAL(blkguest_roundtrip(c, &u, &id), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(id, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(c->data[0], 24);
    CU_ASSERT_EQUAL(c->data[SX_PAGE_SIZE], 32);
    /* A bad one in this layout is refused and answered with the id. */
    u.r.u.rw.nr_segments = 12;
    u.r.u.rw.id = 77;
    CU_ASSERT_EQUAL(blkguest_roundtrip(c, &u, &id), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(id, 77);
    guests_down();
}

static void test_too_many_segments(void)
{
    struct blkguest *a = guest(0, "segs", false, false);
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_READ, 0, BLKIF_MAX_SEGMENTS_PER_REQUEST,
                                    a->data_refs[0], 0, 7);
    r.nr_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST + 1;
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    r = blkguest_rw(a, BLKIF_OP_WRITE, 0, 0, a->data_refs[0], 0, 7);   /* zero segments */
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_TRUE(blkguest_good_read(a, 1));
    CU_ASSERT_EQUAL(blkguest_stat(a, "errors"), 2);
    guests_down();
}

static void test_sector_past_end_and_wrap(void)
{
    struct blkguest *a = guest(0, "range", false, false);
    uint64_t sectors = BG_IMG_BYTES / 512;
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_READ, sectors - 4, 1, a->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);   /* crosses the end */
    r = blkguest_rw(a, BLKIF_OP_READ, sectors, 1, a->data_refs[0], 0, 0);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);   /* starts at the end */
    r = blkguest_rw(a, BLKIF_OP_WRITE, UINT64_MAX - 3, 1, a->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);   /* wraps around 2^64 */
    blkif_request_t d = blkguest_discard(a, 8, UINT64_MAX - 4);          /* discard that wraps */
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &d, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_TRUE(blkguest_good_read(a, sectors - 8));                  /* the last page is fine */
    guests_down();
}

static void test_last_before_first(void)
{
    struct blkguest *a = guest(0, "order", false, false);
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_READ, 0, 1, a->data_refs[0], 5, 2);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    r = blkguest_rw(a, BLKIF_OP_READ, 0, 1, a->data_refs[0], 0, 8);      /* past the page */
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_TRUE(blkguest_good_read(a, 2));
    guests_down();
}

static void test_unmapped_and_foreign_grant(void)
{
    struct blkguest *a = guest(0, "grants", false, false);
    int other = sxc_domain_create(E.ctl, "grants-other", SXD_TYPE_PV, 8, 1, false);
    CU_ASSERT_FATAL(other > 0);
    /* A reference nobody granted. */
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_READ, 0, 1, 7777, 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    /* A page the guest granted to another domain, not to dom0. */
    grant_ref_t foreign;
    void *fp;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(a->shr, (domid_t)other, 1, true, &foreign, &fp), 0);
    r = blkguest_rw(a, BLKIF_OP_WRITE, 0, 1, foreign, 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    /* The good segment next to a bad one does not get the data either. */
    r = blkguest_rw(a, BLKIF_OP_READ, 16, 2, a->data_refs[1], 0, 7);
    r.seg[1].gref = foreign;
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(a->shr, fp, 1), 0);   /* dom0 holds no mapping of it */
    CU_ASSERT_TRUE(blkguest_good_read(a, 4));
    sxc_domain_destroy(E.ctl, (domid_t)other);
    guests_down();
}

/* A read-only vbd refuses writes, and offers nothing else that writes: feature-flush-cache and
 * feature-barrier are 0 (as Linux blkback writes them; offered and then refused, Linux blkfront
 * logged "empty flush op failed" and turned its cache off), discard too; a flush, a barrier or
 * a discard sent anyway is not supported. */
static void test_write_to_read_only_vbd(void)
{
    struct blkguest *b = guest(0, "ro", true, false);
    static const char *const keys[] = { "feature-flush-cache", "feature-barrier",
                                        "feature-discard" };
    for (size_t i = 0; i < 3; i++) {
        char v[8] = "";
        CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, b->bep, keys[i], v, sizeof(v)), 0);
        CU_ASSERT_STRING_EQUAL(v, "0");
    }
    memset(b->data, 0xee, SX_PAGE_SIZE);
    blkif_request_t r = blkguest_rw(b, BLKIF_OP_WRITE, 0, 1, b->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(b, &r, NULL), BLKIF_RSP_ERROR);
    blkif_request_t f = blkguest_rw(b, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(blkguest_roundtrip(b, &f, NULL), BLKIF_RSP_EOPNOTSUPP);
    f = blkguest_rw(b, BLKIF_OP_WRITE_BARRIER, 0, 1, b->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(b, &f, NULL), BLKIF_RSP_EOPNOTSUPP);
    blkif_request_t d = blkguest_discard(b, 0, 8);
    CU_ASSERT_EQUAL(blkguest_roundtrip(b, &d, NULL), BLKIF_RSP_EOPNOTSUPP);
    CU_ASSERT_TRUE(blkguest_image_is(b, 0, -1));   /* unchanged */
    CU_ASSERT_TRUE(blkguest_good_read(b, 0));
    guests_down();
}

/* A read-write vbd offers flush, barrier and discard, with its granularity, and `sectors` in
 * 512-byte units (Xen 4.20's blkif.h) with sector-size the logical block size. */
static void test_rw_vbd_offers_flush_barrier_and_granular_discard(void)
{
    struct blkguest *a = guest(0, "rw-features", false, false);
    char v[32] = "";
    CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "feature-flush-cache", v,
                                       sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "1");
    CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "feature-barrier", v, sizeof(v)),
                    0);
    CU_ASSERT_STRING_EQUAL(v, "1");
    CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "sectors", v, sizeof(v)), 0);
    CU_ASSERT_EQUAL(strtoull(v, NULL, 10), BG_IMG_BYTES / 512);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "sector-size", v, sizeof(v)), 0);
    CU_ASSERT_STRING_EQUAL(v, "512");
    if (sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "feature-discard", v, sizeof(v)) == 0 &&
        !strcmp(v, "1")) {
        CU_ASSERT_EQUAL(sx_xenbus_read_str(E.xb, XBT_NULL, a->bep, "discard-granularity", v,
                                           sizeof(v)), 0);
        unsigned long gran = strtoul(v, NULL, 10);
        CU_ASSERT_TRUE(gran >= 512 && !(gran & (gran - 1)));
        /* A discard starting inside a granule is refused; one on it is served. */
        if (gran > 512) {
            blkif_request_t d = blkguest_discard(a, 1, gran / 512);
            CU_ASSERT_EQUAL(blkguest_roundtrip(a, &d, NULL), BLKIF_RSP_ERROR);
        }
        blkif_request_t d = blkguest_discard(a, 0, gran / 512);
        CU_ASSERT_EQUAL(blkguest_roundtrip(a, &d, NULL), BLKIF_RSP_OKAY);
    }
    guests_down();
}

static void test_indirect_too_many_pages(void)
{
    struct blkguest *a = guest(0, "indirect", false, false);
    union { blkif_request_t slot; blkif_request_indirect_t r; } u;
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_INDIRECT;
    u.r.indirect_op = BLKIF_OP_READ;
    u.r.id = a->next_id++;
    u.r.nr_segments = 9 * 512;      /* needs 9 indirect pages: more than the protocol has */
    for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
        u.r.indirect_grefs[i] = a->data_refs[2 + i];
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &u, NULL), BLKIF_RSP_ERROR);
    u.r.id = a->next_id++;
    u.r.nr_segments = 257;          /* more than the backend's feature-max-indirect-segments */
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &u, NULL), BLKIF_RSP_ERROR);
    /* An indirect page full of bad segments (last < first) is refused too. */
    struct blkif_request_segment *seg = (void *)(a->data + 2 * SX_PAGE_SIZE);
    for (unsigned i = 0; i < 16; i++)
        seg[i] = (struct blkif_request_segment){ .gref = a->data_refs[0], .first_sect = 7,
                                                 .last_sect = 1 };
    u.r.id = a->next_id++;
    u.r.nr_segments = 16;
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &u, NULL), BLKIF_RSP_ERROR);
    /* and a good one works: 2 segments read sectors 40..55. */
    for (unsigned i = 0; i < 2; i++)
        seg[i] = (struct blkif_request_segment){ .gref = a->data_refs[i], .first_sect = 0,
                                                 .last_sect = 7 };
    u.r.id = a->next_id++;
    u.r.nr_segments = 2;
    u.r.sector_number = 40;
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &u, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(a->data[SX_PAGE_SIZE], (uint8_t)48);
    /* Regression (found by make lab: Linux blkfront said "response has wrong operation (6
     * instead of 0)" and disabled the disk): an indirect request is answered with its inner
     * operation, never BLKIF_OP_INDIRECT. */
    CU_ASSERT_EQUAL(a->last_op, BLKIF_OP_READ);
    guests_down();
}

/* The engine's queue calls, wrapped (-Wl,--wrap): while bio_refuse > 0 each call is refused
 * as a full engine would (-EAGAIN), as many times as asked. */
int __real_sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt,
                     uint64_t off, uint64_t cookie);
int __real_sx_bio_flush(struct sx_bio *b, uint64_t cookie);
int __real_sx_bio_discard(struct sx_bio *b, uint64_t off, uint64_t len, uint64_t cookie);
static _Atomic int bio_refuse, bio_refused;

static bool refuse_now(void)
{
    int n = atomic_load(&bio_refuse);
    while (n > 0)
        if (atomic_compare_exchange_weak(&bio_refuse, &n, n - 1)) {
            atomic_fetch_add(&bio_refused, 1);
            return true;
        }
    return false;
}

int __wrap_sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt,
                     uint64_t off, uint64_t cookie)
{
    return refuse_now() ? -EAGAIN : __real_sx_bio_rw(b, write, iov, iovcnt, off, cookie);
}

int __wrap_sx_bio_flush(struct sx_bio *b, uint64_t cookie)
{
    return refuse_now() ? -EAGAIN : __real_sx_bio_flush(b, cookie);
}

int __wrap_sx_bio_discard(struct sx_bio *b, uint64_t off, uint64_t len, uint64_t cookie)
{
    return refuse_now() ? -EAGAIN : __real_sx_bio_discard(b, off, len, cookie);
}

/* Regression (issue 11): blkback.c:queue_io said "reap and retry" for an engine that refused a
 * request as full (-EAGAIN: backpressure), but after draining it answered the request with
 * an error. A read, a write, a flush and a discard each refused once now complete. */
static void test_queue_io_retries_a_full_engine(void)
{
    struct blkguest *a = guest(0, "engine-full", false, false);
    atomic_store(&bio_refused, 0);
    atomic_store(&bio_refuse, 1);
    CU_ASSERT_TRUE(blkguest_good_read(a, 40));
    CU_ASSERT_EQUAL(atomic_load(&bio_refused), 1);
    memset(a->data + SX_PAGE_SIZE, 0xc3, SX_PAGE_SIZE);
    blkif_request_t w = blkguest_rw(a, BLKIF_OP_WRITE, 300, 1, a->data_refs[1], 0, 7);
    atomic_store(&bio_refuse, 1);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &w, NULL), BLKIF_RSP_OKAY);
    blkif_request_t f = blkguest_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, 0);
    atomic_store(&bio_refuse, 1);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &f, NULL), BLKIF_RSP_OKAY);
    blkif_request_t d = blkguest_discard(a, 1024, 8);
    atomic_store(&bio_refuse, 1);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &d, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(atomic_load(&bio_refused), 4);
    CU_ASSERT_EQUAL(blkguest_stat(a, "engine_full"), 4);
    CU_ASSERT_TRUE(blkguest_image_is(a, 300, 0xc3));
    /* Refused again after the drain: that request fails, and only that one. */
    atomic_store(&bio_refuse, 2);
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_READ, 8, 1, a->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(atomic_load(&bio_refuse), 0);
    CU_ASSERT_TRUE(blkguest_good_read(a, 41));
    guests_down();
}

/* The good side of the special operations: a barrier carrying data is written and flushed, a
 * flush without data answers OKAY, a discard punches the range (reads back zeros). */
static void test_barrier_flush_discard(void)
{
    struct blkguest *a = guest(0, "flush", false, false);
    memset(a->data + 3 * SX_PAGE_SIZE, 0x5a, SX_PAGE_SIZE);
    blkif_request_t r = blkguest_rw(a, BLKIF_OP_WRITE_BARRIER, 200, 1, a->data_refs[3], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &r, NULL), BLKIF_RSP_OKAY);
    blkif_request_t f = blkguest_rw(a, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &f, NULL), BLKIF_RSP_OKAY);
    blkif_request_t d = blkguest_discard(a, 512, 16);
    CU_ASSERT_EQUAL(blkguest_roundtrip(a, &d, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_TRUE(blkguest_image_is(a, 200, 0x5a));
    CU_ASSERT_TRUE(blkguest_image_is(a, 512, 0));
    CU_ASSERT_EQUAL(blkguest_stat(a, "flush_ops"), 2);
    CU_ASSERT_EQUAL(blkguest_stat(a, "discard_ops"), 1);
    guests_down();
}

static void test_producer_past_ring_halts_only_that_ring(void)
{
    struct blkguest *a = guest(0, "overflow", false, false), *b = guest(1, "bystander", false, false);
    CU_ASSERT_TRUE(blkguest_good_read(a, 3));
    CU_ASSERT_EQUAL(blkguest_stat(a, "halted"), 0);
    /* req_prod claims a full ring and more beyond what was answered. */
    struct sx_sring_hdr *h = a->ring.sring;
    RING_IDX bogus = a->ring.req_prod_pvt + a->ring.nr_ents + 5;
    atomic_store_explicit((_Atomic RING_IDX *)&h->req_prod, bogus, memory_order_release);
    sx_evtchn_notify(a->evt, (evtchn_port_t)a->port);
    CU_ASSERT_EQUAL(blkguest_stat_wait(a, "halted", 1, 2000), 1);
    /* No response was produced from the garbage. */
    CU_ASSERT_EQUAL(SX_READ_ONCE(h->rsp_prod), a->ring.rsp_cons);
    CU_ASSERT_EQUAL(blkguest_stat(a, "errors"), 0);
    /* The other guest's vbd is served as before, and the daemon is alive. */
    CU_ASSERT_TRUE(blkguest_good_read(b, 9));
    CU_ASSERT_EQUAL(blkguest_stat(b, "halted"), 0);
    enum xenbus_state st;
    CU_ASSERT_EQUAL(sx_xenbus_read_state(E.xb, XBT_NULL, b->bep, &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateConnected);
    guests_down();
}

static void test_bad_xenstore_values_fail_only_that_vbd(void)
{
    /* The guest reconnects with a ring-page-order above the maximum: its vbd fails (error
     * node, Closing), the bystander is unaffected. */
    struct blkguest *a = guest(0, "badkeys", false, false), *b = guest(1, "bystander", false, false);
    sx_xenbus_write(E.xb, XBT_NULL, a->fep, "state", "5");
    CU_ASSERT_EQUAL(blkguest_wait_be(a, XenbusStateClosing, 20000), 0);
    sx_xenbus_write(E.xb, XBT_NULL, a->fep, "state", "6");
    CU_ASSERT_EQUAL(blkguest_wait_be(a, XenbusStateClosed, 20000), 0);
    CU_ASSERT_EQUAL(blkguest_stat(a, "halted"), UINT64_MAX);   /* stats file removed at Closed */
    sx_xenbus_write(E.xb, XBT_NULL, a->fep, "state", "1");
    CU_ASSERT_EQUAL(blkguest_wait_be(a, XenbusStateInitWait, 20000), 0);
    sx_xenbus_write(E.xb, XBT_NULL, a->fep, "ring-page-order", "99");
    sx_xenbus_write(E.xb, XBT_NULL, a->fep, "state", "3");
    CU_ASSERT_EQUAL(blkguest_wait_be(a, XenbusStateClosing, 20000), 0);
    char *err = NULL;
    CU_ASSERT_EQUAL(sx_xenbus_read(E.xb, XBT_NULL, a->bep, "error", &err, NULL), 0);
    CU_ASSERT(err && strstr(err, "ring-page-order"));
    free(err);
    CU_ASSERT_TRUE(blkguest_good_read(b, 11));
    guests_down();
}

/* The frontend domain dies while connected (@releaseDomain): its vbd is torn down and Closed,
 * its stats file removed; the daemon keeps serving the others. */
static void test_frontend_domain_destroyed(void)
{
    struct blkguest *a = guest(0, "dies", false, false), *c = guest(1, "bystander32", false, true);
    CU_ASSERT_TRUE(blkguest_good_read(a, 1));
    CU_ASSERT_NOT_EQUAL(blkguest_stat(a, "requests"), UINT64_MAX);
    CU_ASSERT_EQUAL(sxc_domain_destroy(E.ctl, a->dom), 0);
    a->alive = false;
    CU_ASSERT_EQUAL(blkguest_wait_be(a, XenbusStateClosed, 20000), 0);
    CU_ASSERT_EQUAL(blkguest_stat(a, "requests"), UINT64_MAX);
    /* Still alive: the 32-bit guest is served. */
    union {
        struct sx_blkif_x86_32_request r;
        uint8_t raw[sizeof(struct sx_blkif_x86_32_request)];
    } u;
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_READ;
    u.r.u.rw.nr_segments = 1;
    u.r.u.rw.id = 5;
    u.r.u.rw.sector_number = 64;
    u.r.u.rw.seg[0] = (struct blkif_request_segment){ .gref = c->data_refs[0], .last_sect = 7 };
    CU_ASSERT_EQUAL(blkguest_roundtrip(c, &u, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(c->data[0], 64);
    guests_down();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_good_read_rw_and_ro_vbds),
    SX_TEST(test_batched_counters_and_one_latency_sample_in_8),
    SX_TEST(test_x86_32_guest),
    SX_TEST(test_too_many_segments),
    SX_TEST(test_sector_past_end_and_wrap),
    SX_TEST(test_last_before_first),
    SX_TEST(test_unmapped_and_foreign_grant),
    SX_TEST(test_write_to_read_only_vbd),
    SX_TEST(test_rw_vbd_offers_flush_barrier_and_granular_discard),
    SX_TEST(test_indirect_too_many_pages),
    SX_TEST(test_barrier_flush_discard),
    SX_TEST(test_queue_io_retries_a_full_engine),
    SX_TEST(test_producer_past_ring_halts_only_that_ring),
    SX_TEST(test_bad_xenstore_values_fail_only_that_vbd),
    SX_TEST(test_frontend_domain_destroyed),
};

SX_TEST_MAIN("blkback_hostile", cases, suite_init, suite_clean)
