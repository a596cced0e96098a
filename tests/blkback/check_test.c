/*
 * blkback --check against deliberately broken frontends: each case creates a guest of its own
 * (tests/blkguest.h) that makes one class of mistake; the device's check counter for that class
 * moves and its report names the request and quotes the rule. A well-behaved guest (handshake,
 * reads, writes, flush, discard, indirect, close with its ring grant ended) leaves no finding
 * at all. Each case destroys its guests at its end.
 */
#define SX_LOG_MODULE "check_test"
#include "tests/blkguest.h"
#include "tests/check_report.h"

#include <stdatomic.h>

#include "xen-core/shared.h"

static struct blkenv E;

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    o.tt.check = true;
    return blkenv_start(&E, &o) < 0 ? -1 : 0;
}

static void guests_down(void);

static int suite_clean(void)
{
    guests_down();
    blkenv_stop(&E);
    return 0;
}

/* ------------------------------------------------------------------ helpers */

/* The guests of one case: up to two, destroyed at its end whatever happened. */
static struct blkguest G[2];

/* Guest i of this case: connected (connect true) or left at the backend's InitWait. */
static struct blkguest *guest_ro(unsigned i, const char *name, bool connect, bool ro)
{
    struct blkguest_opts o = { .name = name, .ro = ro, .persistent = true };
    blkguest_destroy(&G[i]);   /* left by a case that failed fatally */
    int rc = blkguest_create(&E, &G[i], &o);
    if (rc == 0)
        rc = blkguest_toolstack(&G[i]);
    if (rc == 0 && connect)
        rc = blkguest_handshake(&G[i]);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return &G[i];
}

static struct blkguest *guest(unsigned i, const char *name, bool connect)
{
    return guest_ro(i, name, connect, false);
}

static void guests_down(void)
{
    for (unsigned i = 0; i < 2; i++)
        blkguest_destroy(&G[i]);
}

/* g's check counters and report (tests/check_report.h) */
#define chk(g, name) chk_stat("vbd", (g)->dom, (g)->devid, name)
#define chk_wait(g, name, want, ms) chk_stat_wait("vbd", (g)->dom, (g)->devid, name, want, ms)
#define report_has(g, ...) chk_report_has("vbd", (g)->dom, (g)->devid, __VA_ARGS__)

/* Put slots (each g->ring.req_size bytes), push, notify when asked; what the ring said about
 * notifying. */
static int put_push(struct blkguest *g, const void *slots, unsigned n, bool notify)
{
    for (unsigned i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&g->ring, (const uint8_t *)slots +
                                                    (size_t)i * g->ring.req_size), 0);
    int must = sx_front_ring_push(&g->ring);
    if (notify)
        sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    return must;
}

/* Collect n responses within ms; how many came. */
static unsigned take_rsps(struct blkguest *g, blkif_response_t *rsp, unsigned n, int ms)
{
    unsigned got = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    while (got < n && sx_now_ms() < end) {
        int k = sx_front_ring_take_rsp(&g->ring, rsp + got, n - got);
        if (k < 0)
            break;
        got += (unsigned)k;
        if (!k)
            usleep(1000);
    }
    return got;
}

/* Wait until g's queue thread went to sleep again (its sleeps counter moved past before). */
static void wait_asleep(struct blkguest *g, uint64_t before)
{
    uint64_t end = sx_now_ms() + 2000;
    while (blkguest_stat(g, "sleeps") <= before && sx_now_ms() < end)
        usleep(1000);
}

/* ------------------------------------------------------------------ the clean frontend */

static void test_good_frontend_has_no_findings(void)
{
    struct blkguest *g = guest(0, "chk-good", true);
    CU_ASSERT_TRUE(blkguest_good_read(g, 3));
    memset(g->data + SX_PAGE_SIZE, 0x6b, SX_PAGE_SIZE);
    blkif_request_t w = blkguest_rw(g, BLKIF_OP_WRITE, 64, 1, g->data_refs[1], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &w, NULL), BLKIF_RSP_OKAY);
    blkif_request_t f = blkguest_rw(g, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &f, NULL), BLKIF_RSP_OKAY);
    blkif_request_t d = blkguest_discard(g, 512, 8);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &d, NULL), BLKIF_RSP_OKAY);
    union { blkif_request_t slot; blkif_request_indirect_t r; } u;
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_INDIRECT;
    u.r.indirect_op = BLKIF_OP_READ;
    u.r.id = g->next_id++;
    u.r.nr_segments = 2;
    u.r.sector_number = 40;
    u.r.indirect_grefs[0] = g->data_refs[2];
    struct blkif_request_segment *seg = (void *)(g->data + 2 * SX_PAGE_SIZE);
    for (unsigned i = 0; i < 2; i++)
        seg[i] = (struct blkif_request_segment){ .gref = g->data_refs[i], .last_sect = 7 };
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &u, NULL), BLKIF_RSP_OKAY);
    /* Close as Linux's blkfront should: Closing, the backend lets go, the ring's grant ended,
     * Closed. */
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "5");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosing, 20000), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(g->shr, g->ring_mem, 1), 0);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "6");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosed, 20000), 0);
    /* The ring probe runs a second after Closed; the state judgement once events settled. */
    uint64_t end = sx_now_ms() + 1800;
    while (sx_now_ms() < end && chk(g, "findings") == 0)
        usleep(20000);
    CU_ASSERT_EQUAL(chk(g, "findings"), 0);
    CU_ASSERT_TRUE(report_has(g, "no findings", "check on; torture off", NULL));
    guests_down();
}

/* ------------------------------------------------------------------ the ring */

static void test_id_reused_while_in_flight(void)
{
    struct blkguest *g = guest(0, "chk-id", true);
    blkif_request_t r[2] = { blkguest_rw(g, BLKIF_OP_READ, 8, 1, g->data_refs[0], 0, 7),
                             blkguest_rw(g, BLKIF_OP_READ, 16, 1, g->data_refs[1], 0, 7) };
    r[1].id = r[0].id;                              /* the same id, both in flight */
    put_push(g, r, 2, true);
    blkif_response_t rsp[2];
    CU_ASSERT_EQUAL(take_rsps(g, rsp, 2, 2000), 2);
    CU_ASSERT_EQUAL(chk_wait(g, "id_reused_in_flight", 1, 2000), 1);
    char want[64];
    snprintf(want, sizeof(want), "id %llu is still in flight", (unsigned long long)r[0].id);
    CU_ASSERT_TRUE(report_has(g, "id_reused_in_flight: 1 time", want, "(read) at ring position 1",
                              "echoed in resp", NULL));
    guests_down();
}

static void test_req_prod_moved_backwards(void)
{
    struct blkguest *g = guest(0, "chk-back", true);
    CU_ASSERT_TRUE(blkguest_good_read(g, 1));
    CU_ASSERT_TRUE(blkguest_good_read(g, 2));
    /* req_prod back below what the backend consumed: the ring halts; both are reported. */
    struct sx_sring_hdr *h = g->ring.sring;
    atomic_store_explicit((_Atomic RING_IDX *)&h->req_prod, g->ring.req_prod_pvt - 1,
                          memory_order_release);
    sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    CU_ASSERT_EQUAL(chk_wait(g, "req_prod_backwards", 1, 2000), 1);
    CU_ASSERT_EQUAL(chk_wait(g, "req_prod_overflow", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "req_prod went back from 2 to 1", "only moves forward",
                              "the ring is halted", NULL));
    guests_down();
}

static void test_req_prod_past_the_ring(void)
{
    struct blkguest *g = guest(0, "chk-over", true);
    CU_ASSERT_TRUE(blkguest_good_read(g, 1));
    struct sx_sring_hdr *h = g->ring.sring;
    atomic_store_explicit((_Atomic RING_IDX *)&h->req_prod,
                          g->ring.req_prod_pvt + g->ring.nr_ents + 3, memory_order_release);
    sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    CU_ASSERT_EQUAL(chk_wait(g, "req_prod_overflow", 1, 2000), 1);
    char want[80];
    snprintf(want, sizeof(want), "is %u requests from the responses produced",
             g->ring.nr_ents + 3);
    CU_ASSERT_TRUE(report_has(g, want, "RING_REQUEST_PROD_OVERFLOW", NULL));
    guests_down();
}

/* The backend sleeps with req_event armed; the frontend publishes a request that must be
 * notified and does not notify. The timer finds it (and the backend serves it anyway). */
static void test_request_published_without_notification(void)
{
    struct blkguest *g = guest(0, "chk-notify", true);
    uint64_t sleeps = blkguest_stat(g, "sleeps");
    CU_ASSERT_TRUE(blkguest_good_read(g, 5));
    wait_asleep(g, sleeps);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 6, 1, g->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(put_push(g, &r, 1, false), 1);  /* the ring says: notify */
    blkif_response_t rsp;
    CU_ASSERT_EQUAL(take_rsps(g, &rsp, 1, 3000), 1);
    CU_ASSERT_EQUAL(rsp.id, r.id);
    CU_ASSERT_EQUAL(chk(g, "notify_missing"), 1);
    CU_ASSERT_TRUE(report_has(g, "no notification came within 500 ms", "had to notify",
                              "RING_PUSH_REQUESTS_AND_CHECK_NOTIFY", NULL));
    /* Notified properly, the next one costs no finding. */
    CU_ASSERT_TRUE(blkguest_good_read(g, 7));
    CU_ASSERT_EQUAL(chk(g, "notify_missing"), 1);
    guests_down();
}

/* ------------------------------------------------------------------ requests */

static void test_segment_and_indirect_limits(void)
{
    struct blkguest *g = guest(0, "chk-segs", true);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 0, BLKIF_MAX_SEGMENTS_PER_REQUEST, g->data_refs[0],
                               0, 7);
    r.nr_segments = 12;
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    union { blkif_request_t slot; blkif_request_indirect_t r; } u;
    memset(&u, 0, sizeof(u));
    u.r.operation = BLKIF_OP_INDIRECT;
    u.r.indirect_op = BLKIF_OP_WRITE;
    u.r.id = g->next_id++;
    u.r.nr_segments = 257;                          /* the backend offered 256 */
    for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
        u.r.indirect_grefs[i] = g->data_refs[i];
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &u, NULL), BLKIF_RSP_ERROR);
    u.r.id = g->next_id++;
    u.r.nr_segments = 9 * 512;                      /* nine indirect pages */
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &u, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(chk_wait(g, "segment_limit", 3, 2000), 3);
    CU_ASSERT_TRUE(report_has(g, "segment_limit: 3 times", "12 segments",
                              "BLKIF_MAX_SEGMENTS_PER_REQUEST 11",
                              "4608 indirect segments take 9 indirect pages", NULL));
    CU_ASSERT_EQUAL(chk(g, "findings"), 3);
    guests_down();
}

static void test_segment_bounds_and_sector_range(void)
{
    struct blkguest *g = guest(0, "chk-bounds", true);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 0, 1, g->data_refs[0], 5, 2);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    r = blkguest_rw(g, BLKIF_OP_READ, 0, 1, g->data_refs[0], 0, 8);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    r = blkguest_rw(g, BLKIF_OP_WRITE, BG_IMG_BYTES / 512 - 4, 1, g->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(chk_wait(g, "segment_bounds", 2, 2000), 2);
    CU_ASSERT_EQUAL(chk_wait(g, "sector_range", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "ends before it starts", "ends past its page",
                              "@first_sect: first sector in frame",
                              "plus its length ends past the disk (the disk has 8192 sectors",
                              NULL));
    guests_down();
}

static void test_unknown_operation_and_feature_not_offered(void)
{
    struct blkguest *g = guest(0, "chk-op", true);
    blkif_request_t r = blkguest_rw(g, 77, 0, 1, g->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_EOPNOTSUPP);
    union { blkif_request_t slot; blkif_request_discard_t d; } u = { .slot = blkguest_discard(g, 64, 8) };
    u.d.flag = BLKIF_DISCARD_SECURE;                /* discard-secure is 0 */
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &u, NULL), BLKIF_RSP_EOPNOTSUPP);
    CU_ASSERT_EQUAL(chk_wait(g, "bad_operation", 1, 2000), 1);
    CU_ASSERT_EQUAL(chk_wait(g, "feature_not_offered", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "operation 77 is no blkif request code",
                              "BLKIF_DISCARD_SECURE, which the backend did not offer",
                              "discard-secure: \"A value of", NULL));
    guests_down();
}

static void test_write_to_a_read_only_disk(void)
{
    struct blkguest *g = guest_ro(0, "chk-ro", true, true);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_WRITE, 0, 1, g->data_refs[0], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(chk_wait(g, "bad_operation", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "write to a read-only vbd", "VDISK_READONLY", NULL));
    guests_down();
}

/* ------------------------------------------------------------------ grants */

static void test_grant_that_cannot_be_mapped(void)
{
    struct blkguest *g = guest(0, "chk-gbad", true);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 0, 1, 7777, 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(chk_wait(g, "grant_unusable", 1, 2000), 1);
    char want[96];
    snprintf(want, sizeof(want), "request id %llu (read): a segment's grant cannot be mapped",
             (unsigned long long)r.id);
    CU_ASSERT_TRUE(report_has(g, want, "reference to I/O buffer frame", NULL));
    guests_down();
}

/* The engine's read/write call, wrapped: when asked, the guest ends a grant of the request the
 * backend has just mapped for it, the way a frontend that ignores GTF_reading/GTF_writing
 * does (it writes the entry's flags to 0), before the I/O runs. */
int __real_sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt,
                     uint64_t off, uint64_t cookie);
static struct blkguest *revoke_g;
static _Atomic grant_ref_t revoke_ref = UINT32_MAX;

int __wrap_sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt,
                     uint64_t off, uint64_t cookie)
{
    grant_ref_t ref = atomic_exchange(&revoke_ref, UINT32_MAX);
    if (ref != UINT32_MAX && revoke_g) {
        struct sxc_dom *d;
        if (sxc_domain_get(revoke_g->p->conn, revoke_g->dom, &d) == 0) {
            grant_entry_v1_t *e = &sxd_grant_table(d->shared)[ref];
            atomic_store((_Atomic uint16_t *)&e->flags, 0);
            sxc_domain_put(revoke_g->p->conn, d);
        }
    }
    return __real_sx_bio_rw(b, write, iov, iovcnt, off, cookie);
}

static void test_grant_ended_while_in_flight(void)
{
    struct blkguest *g = guest(0, "chk-revoke", true);
    revoke_g = g;
    atomic_store(&revoke_ref, g->data_refs[3]);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, 24, 1, g->data_refs[3], 0, 7);
    CU_ASSERT_EQUAL(blkguest_roundtrip(g, &r, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(atomic_load(&revoke_ref), UINT32_MAX);   /* the wrapper ran */
    CU_ASSERT_EQUAL(chk_wait(g, "grant_revoked_in_flight", 1, 2000), 1);
    char want[128];
    snprintf(want, sizeof(want), "segment 0's grant %u was ended while the backend mapped it",
             g->data_refs[3]);
    CU_ASSERT_TRUE(report_has(g, want, "Observe that !(flags & (GTF_reading|GTF_writing))",
                              NULL));
    revoke_g = NULL;
    guests_down();
}

static void test_ring_still_granted_after_closed(void)
{
    struct blkguest *g = guest(0, "chk-leak", true);
    CU_ASSERT_TRUE(blkguest_good_read(g, 9));
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "5");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosing, 20000), 0);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "6");   /* the ring stays granted */
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosed, 20000), 0);
    CU_ASSERT_EQUAL(chk_wait(g, "granted_after_closed", 1, 3000), 1);
    char want[96];
    snprintf(want, sizeof(want), "the queue 0 ring (grant %u) is still granted", g->ring_ref);
    CU_ASSERT_TRUE(report_has(g, want, "(req_prod 1, rsp_prod 1)",
                              "Invalidating an unused GTF_permit_access entry", NULL));
    guests_down();
}

/* Linux's blkfront goes Connected -> Closed in one step when its backend closes: the backend
 * tears the rings down only after it read Closed, and the probe must still see them. */
static void test_ring_granted_after_closed_straight_from_connected(void)
{
    struct blkguest *g = guest(0, "chk-leak2", true);
    CU_ASSERT_TRUE(blkguest_good_read(g, 10));
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "6");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosed, 20000), 0);
    CU_ASSERT_EQUAL(chk_wait(g, "granted_after_closed", 1, 3000), 1);
    CU_ASSERT_TRUE(report_has(g, "(req_prod 1, rsp_prod 1)", NULL));
    guests_down();
}

/* ------------------------------------------------------------------ xenbus */

/* The daemon's control rounds so far (a round dispatches the watch events waiting, then
 * evaluates): two more rounds after a write, and the daemon has read what was written. */
static void wait_rounds(unsigned n)
{
    uint64_t r = blkenv_stat(&E, "rounds"), end = sx_now_ms() + 3000;
    while (blkenv_stat(&E, "rounds") < r + n && sx_now_ms() < end)
        usleep(2000);
}

static void test_state_goes_backwards_and_skips_initialising(void)
{
    struct blkguest *g = guest(0, "chk-state", true);
    wait_rounds(2);                                          /* Connected is read */
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "3");   /* Connected -> Initialised */
    CU_ASSERT_EQUAL(chk_wait(g, "state_order", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "frontend state Connected -> Initialised (backend Connected): "
                              "a frontend state never goes back", "STATE DIAGRAMS", NULL));
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "6");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosed, 20000), 0);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "4");   /* Closed -> Connected */
    CU_ASSERT_EQUAL(chk_wait(g, "state_order", 2, 2000), 2);
    CU_ASSERT_TRUE(report_has(g, "Closed -> Connected",
                              "after Closed a new connection starts from Initialising", NULL));
    guests_down();
}

static void test_keys_missing_or_written_late(void)
{
    struct blkguest *g = guest(0, "chk-keys", false);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "3");   /* no ring-ref, no event-channel */
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosing, 20000), 0);
    CU_ASSERT_EQUAL(chk_wait(g, "key_missing", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "ring-ref, event-channel missing in state Initialised",
                              "Publish transport parameters", NULL));

    struct blkguest *h = guest(1, "chk-late", false);
    sx_xenbus_write(E.xb, XBT_NULL, h->fep, "state", "3");
    CU_ASSERT_EQUAL(blkguest_wait_be(h, XenbusStateClosing, 20000), 0);
    sx_xenbus_printf(E.xb, XBT_NULL, h->fep, "ring-ref", "%u", h->ring_ref);
    sx_xenbus_printf(E.xb, XBT_NULL, h->fep, "event-channel", "%d", h->port);
    CU_ASSERT_EQUAL(chk_wait(h, "key_wrong_state", 1, 2000), 1);
    CU_ASSERT_EQUAL(chk(h, "key_missing"), 0);
    CU_ASSERT_TRUE(report_has(h, "ring-ref, event-channel written after the frontend went "
                              "Initialised", NULL));
    guests_down();
}

static void test_key_values_beyond_the_offer(void)
{
    struct blkguest *g = guest(0, "chk-val", false);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "multi-queue-num-queues", "9");   /* offered 4 */
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "state", "3");
    CU_ASSERT_EQUAL(blkguest_wait_be(g, XenbusStateClosing, 20000), 0);   /* the backend refuses it */
    CU_ASSERT_EQUAL(chk_wait(g, "key_bad_value", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "multi-queue-num-queues = 9 (the backend offered up to 4)",
                              "no more than the value reported by the backend", NULL));
    guests_down();
}

static void test_key_changed_while_connected(void)
{
    struct blkguest *g = guest(0, "chk-chg", true);
    sx_xenbus_printf(E.xb, XBT_NULL, g->fep, "ring-ref", "%u", g->data_refs[5]);
    CU_ASSERT_EQUAL(chk_wait(g, "key_wrong_state", 1, 4000), 1);
    char want[96];
    snprintf(want, sizeof(want), "ring-ref changed from '%u' to '%u' while the frontend is "
             "Connected", g->ring_ref, g->data_refs[5]);
    CU_ASSERT_TRUE(report_has(g, want, "the backend does not read them again", NULL));
    guests_down();
}

static void test_queue_keys_also_at_the_top_level(void)
{
    struct blkguest *g = guest(0, "chk-mq", false);
    char dir[200];
    int port2 = sx_evtchn_bind_unbound(g->evt, 0);
    CU_ASSERT_TRUE_FATAL(port2 >= 0);
    sx_xenbus_write(E.xb, XBT_NULL, g->fep, "multi-queue-num-queues", "2");
    for (unsigned i = 0; i < 2; i++) {
        snprintf(dir, sizeof(dir), "%s/queue-%u", g->fep, i);
        sx_xenbus_printf(E.xb, XBT_NULL, dir, "ring-ref", "%u", i ? g->data_refs[8] : g->ring_ref);
        sx_xenbus_printf(E.xb, XBT_NULL, dir, "event-channel", "%d", i ? port2 : g->port);
    }
    CU_ASSERT_EQUAL(blkguest_handshake(g), 0);             /* and the top-level keys too */
    CU_ASSERT_EQUAL(chk_wait(g, "key_wrong_state", 1, 2000), 1);
    CU_ASSERT_TRUE(report_has(g, "2 queues, and ring-ref or event-channel at the top level",
                              "must not write the toplevel event-channel and ring-ref", NULL));
    guests_down();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_good_frontend_has_no_findings),
    SX_TEST(test_id_reused_while_in_flight),
    SX_TEST(test_req_prod_moved_backwards),
    SX_TEST(test_req_prod_past_the_ring),
    SX_TEST(test_request_published_without_notification),
    SX_TEST(test_segment_and_indirect_limits),
    SX_TEST(test_segment_bounds_and_sector_range),
    SX_TEST(test_unknown_operation_and_feature_not_offered),
    SX_TEST(test_write_to_a_read_only_disk),
    SX_TEST(test_grant_that_cannot_be_mapped),
    SX_TEST(test_grant_ended_while_in_flight),
    SX_TEST(test_ring_still_granted_after_closed),
    SX_TEST(test_ring_granted_after_closed_straight_from_connected),
    SX_TEST(test_state_goes_backwards_and_skips_initialising),
    SX_TEST(test_keys_missing_or_written_late),
    SX_TEST(test_key_values_beyond_the_offer),
    SX_TEST(test_key_changed_while_connected),
    SX_TEST(test_queue_keys_also_at_the_top_level),
};

SX_TEST_MAIN("blkback_check", cases, suite_init, suite_clean)
