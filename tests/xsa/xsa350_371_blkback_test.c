/*
 * XSA-350 ("Use after free triggered by block frontend in Linux blkback") and XSA-371 ("Linux:
 * blkback driver may leak persistent grants"): a frontend that switches between Connected and
 * Closing/Closed quickly, with I/O in flight, made Linux blkback start a new ring thread while
 * the old one still ran and use what the old one freed (350); and the error paths of grant
 * mapping skipped freeing persistent grants, so a dead guest's pages stayed mapped and its
 * domain a zombie (371).
 *
 * Here a guest with persistent grants keeps its ring full of reads and writes from a thread of
 * its own while the test flaps its state: slowly (each backend state waited for) and as fast as
 * xenstore takes the writes, through Closing, Closed, Initialising and back to Connected, with
 * requests that fail their grant mapping among good persistent ones. After every flap that ends
 * in Closed, blkback holds no grant mapping, no ring thread and no event channel of the guest;
 * after the last reconnect the guest is served; the daemon stays up throughout; when the guest
 * is destroyed everything it had is let go (mappings, threads, fds counted before and after).
 */
#define SX_LOG_MODULE "xsa350_test"
#include "tests/blkguest.h"

#include <dirent.h>
#include <stdatomic.h>

static struct blkenv E;
static struct blkguest G;

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.engine = SX_BIO_SYNC;
    o.max_pgrants = 64;
    return blkenv_start(&E, &o) < 0 ? -1 : 0;
}

static int suite_clean(void)
{
    blkguest_destroy(&G);
    blkenv_stop(&E);
    return 0;
}

/* Threads of this process whose name starts with prefix. */
static unsigned threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    unsigned n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = de->d_name[0] == '.' ? NULL : fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f) && !strncmp(comm, prefix, strlen(prefix)))
            n++;
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

static unsigned open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* ------------------------------------------------------------------ the guest's I/O thread */

struct io {
    pthread_t thr;
    atomic_bool stop;
    atomic_uint_fast64_t sent, answered, ok, failed;
};
static struct io IO;

/* Keep the ring full: writes of pages 0..7 (persistent grants), reads of 8..15, and every
 * eighth request with a segment nobody granted (its mapping fails), all in the first 4096
 * sectors (the cases check reads beyond). Responses may come or not
 * (the backend disconnects under us): whatever comes is counted. */
static void *io_main(void *arg)
{
    struct io *io = arg;
    unsigned k = 0;
    while (!atomic_load(&io->stop)) {
        blkif_response_t rsp;
        int n;
        while ((n = sx_front_ring_take_rsp(&G.ring, &rsp, 1)) == 1) {
            atomic_fetch_add(&io->answered, 1);
            atomic_fetch_add(rsp.status == BLKIF_RSP_OKAY ? &io->ok : &io->failed, 1);
        }
        if (n < 0)
            break;   /* the ring is halted on our side: a response we did not ask for */
        unsigned put = 0;
        while (sx_front_ring_free_slots(&G.ring) > 0 && put < 8) {
            bool wr = k % 2;
            blkif_request_t r = blkguest_rw(&G, wr ? BLKIF_OP_WRITE : BLKIF_OP_READ,
                                            (uint64_t)(k % 512) * 8, 2,
                                            G.data_refs[(wr ? 0 : 8) + k % 7], 0, 7);
            r.seg[1].gref = k % 8 == 7 ? 9999 : G.data_refs[(wr ? 0 : 8) + (k + 1) % 7];
            if (sx_front_ring_put_req(&G.ring, &r) != 0)
                break;
            put++;
            k++;
        }
        if (put) {
            atomic_fetch_add(&io->sent, put);
            if (sx_front_ring_push(&G.ring) == 1)
                sx_evtchn_notify(G.evt, (evtchn_port_t)G.port);
        }
        sx_evtchn_drain(G.evt, 0);
        usleep(200);
    }
    return NULL;
}

static void io_start(void)
{
    memset(&IO, 0, sizeof(IO));
    atomic_store(&IO.stop, false);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&IO.thr, NULL, io_main, &IO), 0);
}

static void io_stop(void)
{
    atomic_store(&IO.stop, true);
    pthread_join(IO.thr, NULL);
}

/* ------------------------------------------------------------------ flapping */

/* Take responses until every request the guest published is answered (deadline 5 s): blkback
 * answers what it took before a disconnect, and takes the rest again after the reconnect. */
static bool all_answered(void)
{
    uint64_t end = sx_now_ms() + 5000;
    blkif_response_t rsp;
    while (G.ring.rsp_cons != G.ring.req_prod_pvt && sx_now_ms() < end) {
        if (sx_front_ring_take_rsp(&G.ring, &rsp, 1) == 1)
            IO.answered++;
        else
            usleep(500);
    }
    if (G.ring.rsp_cons != G.ring.req_prod_pvt)
        printf("\n  %u requests never answered\n", G.ring.req_prod_pvt - G.ring.rsp_cons);
    return G.ring.rsp_cons == G.ring.req_prod_pvt;
}

static int fe_state(const char *s)
{
    return sx_xenbus_write(E.xb, XBT_NULL, G.fep, "state", s);
}

/* What blkback holds for the guest once it wrote Closed: nothing. */
static void check_released(const char *when)
{
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "bb%u.", G.dom);
    uint64_t mapped = sx_gnt_mapped_pages(E.d->gnt);
    unsigned thr = threads_named(prefix);
    if (mapped || thr)
        printf("\n  %s: %llu grant pages still mapped, %u ring threads\n", when,
               (unsigned long long)mapped, thr);
    CU_ASSERT_EQUAL(mapped, 0);
    CU_ASSERT_EQUAL(thr, 0);
}

/* Back to Connected (the ring as the guest left it: blkback continues from its responses). */
static void reconnect(void)
{
    CU_ASSERT_EQUAL(fe_state("1"), 0);
    CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateInitWait, 20000), 0);
    CU_ASSERT_EQUAL(fe_state("3"), 0);
    CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateConnected, 20000), 0);
    CU_ASSERT_EQUAL(fe_state("4"), 0);
}

static void test_xsa350_slow_flaps_during_io_release_everything(void)
{
    struct blkguest_opts o = { .name = "flapper", .persistent = true };
    blkguest_destroy(&G);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G, &o), 0);
    io_start();
    for (unsigned i = 0; i < 10; i++) {
        uint64_t a = atomic_load(&IO.answered);
        for (uint64_t end = sx_now_ms() + 2000;
             atomic_load(&IO.answered) < a + 16 && sx_now_ms() < end;)
            usleep(1000);                                  /* I/O is flowing */
        CU_ASSERT_EQUAL(fe_state("5"), 0);                 /* Closing, requests in flight */
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosing, 20000), 0);
        CU_ASSERT_EQUAL(fe_state("6"), 0);
        CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosed, 20000), 0);
        check_released("after a slow flap");
        reconnect();
    }
    io_stop();
    printf("\n  10 slow flaps: %llu requests sent, %llu answered (%llu okay, %llu failed)\n",
           (unsigned long long)IO.sent, (unsigned long long)IO.answered,
           (unsigned long long)IO.ok, (unsigned long long)IO.failed);
    CU_ASSERT_TRUE(IO.ok > 0 && IO.failed > 0);
    /* Every request is answered after the last reconnect, then the guest is served. */
    CU_ASSERT_TRUE(all_answered());
    CU_ASSERT_TRUE(blkguest_good_read(&G, 6000));
}

static void test_xsa350_fast_flaps_during_io_leave_blkback_consistent(void)
{
    struct blkguest_opts o = { .name = "fast-flapper", .persistent = true };
    blkguest_destroy(&G);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G, &o), 0);
    uint64_t ev0 = blkenv_stat(&E, "vbd_evals");
    io_start();
    /* As fast as xenstore takes them: connect, disconnect, back, without waiting. */
    static const char *const seq[] = { "5", "6", "1", "3", "4", "5", "4", "6", "3", "5", "1",
                                       "4" };
    for (unsigned round = 0; round < 40; round++)
        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
            CU_ASSERT_EQUAL(fe_state(seq[i]), 0);
    /* Settle: Closed (once blkback has seen every write: an earlier Closed may still be
     * there), then a clean reconnect. */
    CU_ASSERT_EQUAL(fe_state("6"), 0);
    CU_ASSERT_TRUE(blkguest_quiesce(&G));
    CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateClosed, 20000), 0);
    io_stop();
    check_released("after 480 fast state writes");
    printf("\n  480 fast state writes: %llu vbd evaluations, %llu requests sent, %llu answered\n",
           (unsigned long long)(blkenv_stat(&E, "vbd_evals") - ev0),
           (unsigned long long)IO.sent, (unsigned long long)IO.answered);
    reconnect();
    CU_ASSERT_TRUE(all_answered());
    CU_ASSERT_TRUE(blkguest_good_read(&G, 6008));
}

/* A frontend that starts over without closing (a guest kernel kexec'd or crashed and booted
 * again in the same domain, or Closed and Initialising written back to back and read by
 * blkback as one change) says Initialising while connected, then offers a new ring. blkback
 * must let go of the old ring (its mapping, persistent grants, thread) and wait in InitWait,
 * then serve the new ring. Before: it stayed Connected to the ring the frontend had left and
 * never mapped the new one (the guest hung in Initialised). */
static void test_xsa350_frontend_restarts_without_closing(void)
{
    struct blkguest_opts o = { .name = "restarts", .persistent = true };
    blkguest_destroy(&G);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G, &o), 0);
    CU_ASSERT_TRUE(blkguest_good_read(&G, 6000));
    CU_ASSERT_TRUE(sx_gnt_mapped_pages(E.d->gnt) > 1);   /* the ring and persistent grants */
    CU_ASSERT_EQUAL(fe_state("1"), 0);
    CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateInitWait, 20000), 0);
    check_released("after Initialising while connected");
    /* The new frontend's ring. */
    grant_ref_t ref;
    void *mem;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(G.shr, 0, 1, true, &ref, &mem), 0);
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_init(&G.ring, mem, SX_RING_PAGE_SIZE,
                                             sizeof(blkif_request_t), sizeof(blkif_response_t)),
                          0);
    CU_ASSERT_EQUAL(sx_xenbus_printf(E.xb, XBT_NULL, G.fep, "ring-ref", "%u", ref), 0);
    CU_ASSERT_EQUAL(fe_state("3"), 0);
    CU_ASSERT_EQUAL(blkguest_wait_be(&G, XenbusStateConnected, 20000), 0);
    CU_ASSERT_EQUAL(fe_state("4"), 0);
    CU_ASSERT_TRUE(blkguest_good_read(&G, 6008));
}

/* XSA-371: persistent grants in use (and mappings that failed beside them) when the guest dies:
 * every page is unmapped, every thread and fd the vbd had is gone. */
static void test_xsa371_guest_destroyed_with_persistent_grants_lets_go(void)
{
    struct blkguest_opts o = { .name = "pgrants", .persistent = true };
    blkguest_destroy(&G);
    unsigned fds0 = open_fds();
    uint64_t mapped0 = sx_gnt_mapped_pages(E.d->gnt);
    CU_ASSERT_EQUAL_FATAL(blkguest_up(&E, &G, &o), 0);
    io_start();
    for (uint64_t end = sx_now_ms() + 5000; atomic_load(&IO.ok) < 64 && sx_now_ms() < end;)
        usleep(1000);
    CU_ASSERT_TRUE(atomic_load(&IO.failed) > 0);            /* failed mappings happened */
    uint64_t pg = blkguest_stat(&G, "pgrant_maps");
    CU_ASSERT_TRUE(pg != UINT64_MAX && pg >= 8);             /* persistent grants cached */
    CU_ASSERT_TRUE(sx_gnt_mapped_pages(E.d->gnt) > mapped0);
    io_stop();
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "bb%u.", G.dom);
    blkguest_destroy(&G);                                    /* I/O still queued on its ring */
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(E.d->gnt), mapped0);
    CU_ASSERT_EQUAL(threads_named(prefix), 0);
    CU_ASSERT_EQUAL(open_fds(), fds0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa350_slow_flaps_during_io_release_everything),
    SX_TEST(test_xsa350_fast_flaps_during_io_leave_blkback_consistent),
    SX_TEST(test_xsa350_frontend_restarts_without_closing),
    SX_TEST(test_xsa371_guest_destroyed_with_persistent_grants_lets_go),
};

SX_TEST_MAIN("xsa350_371_blkback", cases, suite_init, suite_clean)
