/*
 * XSA-155 ("paravirtualized drivers incautious about shared memory contents"): a backend that
 * reads a request field from the shared ring twice (once to check it, once to use it) lets the
 * frontend change it in between: Linux blkback re-read nr_segments and the operation, and a
 * value that passed the check could be replaced by one that overruns the backend's arrays.
 * splitxen copies each slot off the ring once (ring/ring.c) and decodes the private copy once
 * (blkback/request.c:raw_load): whatever the frontend does to the slot meanwhile, the backend
 * acts on one snapshot, checked and used alike.
 *
 * The attack, in a thread: while blkback takes a request, a writer rewrites its slot as fast as
 * it can, cycling through three versions that differ in nr_segments, the last sector of
 * segment 0 and the rest of the segments (the id, operation and handle never change, so the
 * response, which blkback writes over the same slot, stays readable):
 *
 *   X  read 1 segment, 512 bytes (0..0) of the device's last sector       valid
 *   Y  read 1 segment, 4 KiB (0..7) from the last sector: past the end     refused (range)
 *   Z  read 11 segments from the last sector                              refused (range)
 *
 * Every mix of their bytes is either exactly X or refused before any I/O (every segment 1..10
 * of each version covers a page, so 11 segments always run past the end). So a response is
 * OKAY with 512 bytes of the last sector at the start of page 0 and nothing else written, or an
 * error with no page written at all. A backend that checked one value and used another
 * (nr_segments 1 checked, 11 used; last_sect 0 checked, 7 used) writes pages it refused or
 * writes past 512 bytes: the pages are canaried.
 */
#define SX_LOG_MODULE "xsa155_test"
#include "tests/blkguest.h"

#include <stdatomic.h>

#define CANARY 0xa5

static struct blkenv E;
static struct blkguest G;

struct racer {
    pthread_t thr;
    _Atomic(uint8_t *) slot;        /* the slot to rewrite, NULL: idle */
    atomic_bool stop;
    blkif_request_t v[3];           /* X, Y, Z */
    atomic_uint_fast64_t writes;
};
static struct racer R;

#if defined(__SANITIZE_THREAD__)
void __tsan_ignore_thread_begin(void);   /* libtsan; not in gcc's tsan_interface.h */
void __tsan_ignore_thread_end(void);
#endif

/* Rewrites byte 1 (nr_segments) and bytes 16.. (sector, segments) of the slot: never the
 * operation, handle or id, and never bytes 8..15 (the response's operation and status). */
static void *racer_main(void *arg)
{
    struct racer *r = arg;
    unsigned k = 0;
#if defined(__SANITIZE_THREAD__)
    /* This thread is the data race under test: a guest vCPU rewriting the slot while blkback
     * copies it, and while this test's frontend (same mapping) reads responses from it. The
     * ThreadSanitizer build does not watch its accesses; its own synchronisation (the slot
     * pointer, the counters) is atomics. */
    __tsan_ignore_thread_begin();
#endif
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        uint8_t *s = atomic_load_explicit(&r->slot, memory_order_acquire);
        if (!s) {
            sched_yield();
            continue;
        }
        const uint8_t *src = (const uint8_t *)&r->v[k++ % 3];
        /* volatile stores: each byte goes to shared memory, as a guest's writes would */
        volatile uint8_t *d = s;
        d[1] = src[1];
        for (size_t i = 16; i < sizeof(blkif_request_t); i++)
            d[i] = src[i];
        atomic_fetch_add_explicit(&r->writes, 1, memory_order_relaxed);
    }
#if defined(__SANITIZE_THREAD__)
    __tsan_ignore_thread_end();
#endif
    return NULL;
}

/* The versions, at sector `last` (the device's last sector); id 0 (each request sets its
 * own in the slot, which the writer never touches). Written before the writer starts. */
static void versions(uint64_t last)
{
    for (unsigned k = 0; k < 3; k++) {
        blkif_request_t *r = &R.v[k];
        memset(r, 0, sizeof(*r));
        r->operation = BLKIF_OP_READ;
        r->sector_number = last;
        r->nr_segments = k == 2 ? 11 : 1;
        for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
            r->seg[i] = (struct blkif_request_segment){ .gref = G.data_refs[i], .first_sect = 0,
                                                        .last_sect = 7 };
        r->seg[0].last_sect = k == 0 ? 0 : 7;
    }
}

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    struct blkguest_opts go = { .name = "racer" };
    if (blkenv_start(&E, &o) < 0 || blkguest_up(&E, &G, &go) < 0)
        return -1;
    versions(BG_IMG_BYTES / 512 - 1);
    atomic_store(&R.stop, false);
    atomic_store(&R.slot, NULL);
    return pthread_create(&R.thr, NULL, racer_main, &R) ? -1 : 0;
}

static int suite_clean(void)
{
    atomic_store(&R.stop, true);
    if (R.thr)
        pthread_join(R.thr, NULL);
    blkguest_destroy(&G);
    blkenv_stop(&E);
    return 0;
}

/* Page i untouched (all canary) from byte `from` on. */
static bool untouched(unsigned i, unsigned from)
{
    const uint8_t *p = G.data + (size_t)i * SX_PAGE_SIZE;
    for (unsigned b = from; b < SX_PAGE_SIZE; b++)
        if (p[b] != CANARY)
            return false;
    return true;
}

/* Requests raced. The ThreadSanitizer build runs this some 20 times slower, beside a writer
 * thread it also instruments: fewer there, in the same 20 s. */
#if defined(__SANITIZE_THREAD__)
#define RACED 150u
#else
#define RACED 500u
#endif

static void test_xsa155_slot_rewritten_during_the_copy(void)
{
    const uint64_t last = BG_IMG_BYTES / 512 - 1;
    unsigned ok = 0, refused = 0, bad = 0, n = 0;
    uint64_t end = sx_now_ms() + 20000;
    /* Until both outcomes were seen (the writer did race the copy) and RACED requests went by. */
    while ((n < RACED || !ok || !refused) && sx_now_ms() < end) {
        uint64_t id = 0x0101010101010100ull | (n & 0xff);   /* byte 1 is 0x01 in every id */
        blkif_request_t x = R.v[0];
        x.id = id;
        memset(G.data, CANARY, BLKIF_MAX_SEGMENTS_PER_REQUEST * SX_PAGE_SIZE);
        RING_IDX at = G.ring.req_prod_pvt;
        uint8_t *slot = G.ring.ents + (size_t)(at & (G.ring.nr_ents - 1)) * G.ring.entry_size;
        CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&G.ring, &x), 0);
        uint64_t w0 = atomic_load(&R.writes);
        atomic_store_explicit(&R.slot, slot, memory_order_release);
        while (atomic_load(&R.writes) < w0 + 2)   /* the writer is at it */
            sched_yield();
        if (sx_front_ring_push(&G.ring) == 1)
            sx_evtchn_notify(G.evt, (evtchn_port_t)G.port);
        blkif_response_t rsp;
        int got = 0;
        for (uint64_t t = sx_now_ms() + 2000; got != 1 && sx_now_ms() < t;)
            got = sx_front_ring_take_rsp(&G.ring, &rsp, 1);
        atomic_store_explicit(&R.slot, NULL, memory_order_release);
        CU_ASSERT_EQUAL_FATAL(got, 1);
        /* The writer may have rewritten byte 1 of the response (the id's second byte). */
        CU_ASSERT_EQUAL(rsp.id & ~0xff00ull, id & ~0xff00ull);
        bool rest_untouched = true;
        for (unsigned i = 1; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
            rest_untouched &= untouched(i, 0);
        if (rsp.status == BLKIF_RSP_OKAY) {
            bool data = true;
            for (unsigned b = 0; b < 512; b++)
                data &= G.data[b] == blkguest_pattern(last, b);
            if (data && untouched(0, 512) && rest_untouched)
                ok++;
            else
                bad++;
        } else if (rsp.status == BLKIF_RSP_ERROR && untouched(0, 0) && rest_untouched) {
            refused++;
        } else {
            bad++;
        }
        n++;
        sx_evtchn_drain(G.evt, 0);
    }
    printf("\n  %u requests raced by %llu slot rewrites: %u served as X, %u refused, %u "
           "inconsistent\n", n, (unsigned long long)atomic_load(&R.writes), ok, refused, bad);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(ok > 0 && refused > 0);   /* the writer did race the copy */
    CU_ASSERT_TRUE(n >= RACED);
    /* The vbd serves as before. */
    CU_ASSERT_TRUE(blkguest_good_read(&G, 8));
    CU_ASSERT_EQUAL(blkguest_stat(&G, "halted"), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa155_slot_rewritten_during_the_copy),
};

SX_TEST_MAIN("xsa155_blkback", cases, suite_init, suite_clean)
