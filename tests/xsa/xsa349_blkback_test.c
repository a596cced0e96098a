/*
 * XSA-349 ("Frontends can trigger OOM in Backends by update a watched path"): a backend's
 * watch on a node the frontend may write lets the frontend create events as fast as xenstored
 * accepts its writes; Linux queued them without bound. Here a guest writes junk, as fast as it
 * can, under its own frontend directory device/vbd/<devid>/ (and below its state node, which
 * blkback must watch: xenstore watches are recursive). blkback used to watch that whole subtree and, on
 * every event, list the backend directory and re-evaluate every vbd: the flood cost its single
 * control thread a third to a half of a core and delayed other guests' attach. blkback must
 * watch only what it needs (the frontend's state node, as Linux blkback) and re-evaluate only
 * the vbd an event names, so such a flood costs it (next to) nothing.
 *
 * In-process: a sim core with xenstored, the blkback daemon (bb_daemon_* from blkback/) on a
 * thread of its own, the test as the toolstack (dom0) and two guests, each guest writing over
 * its own xenstore connection with its own permissions (the toolstack hands it its frontend
 * directory, as libxl does). The daemon's counters (stats file blkback-0-0) show the work done.
 *
 *   guest A: a connected vbd; floods its own frontend directory
 *   guest B: attaches a vbd while A floods
 */
#define SX_LOG_MODULE "xsa349_test"
#include "tests/blkguest.h"

#include <stdatomic.h>
#include <time.h>

static struct blkenv E;
static struct blkguest A, B;

/* CPU time the daemon's control thread has used, in ns. */
static uint64_t daemon_cpu_ns(void)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(E.thr, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ds(const char *name)
{
    return blkenv_stat(&E, name);
}

/* Wait until counter name reaches at least want (deadline ms); its value. */
static uint64_t ds_wait(const char *name, uint64_t want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while ((v = ds(name)) < want && sx_now_ms() < end)
        usleep(500);
    return v;
}

/* ------------------------------------------------------------------------------ flooding */

#define JUNK_KEYS 16u   /* the flood rewrites these (no node quota is used up) */

/* One junk write by g under its frontend directory (under its state node when below_state). */
static int junk_write(struct sx_xenbus *gxb, const struct blkguest *g, bool below_state,
                      unsigned i)
{
    char key[48];
    snprintf(key, sizeof(key), "%sjunk-%u", below_state ? "state/" : "", i % JUNK_KEYS);
    return sx_xenbus_printf(gxb, XBT_NULL, g->fep, key, "%u", i);
}

/* The guest rewrites its own state (Connected, unchanged): one event on the node blkback
 * watches, one evaluation of its vbd. */
static int guest_state_sentinel(struct blkguest *g)
{
    return sx_xenbus_write(g->gxb, XBT_NULL, g->fep, "state", "4");
}

/* Events this test made that blkback counts as ignored: writes and removals below A's state
 * node (nothing else in the test makes any). */
static uint64_t ignored_made;

/*
 * Wait until blkback has handled everything written so far. A writes a node below its state
 * node: one event, which blkback counts as ignored and evaluates nothing for. Events reach
 * blkback in order, so once the ignored count covers it every earlier event has been
 * dispatched; once the round that dispatched it has ended (a round dispatches, then evaluates),
 * every vbd those events named has been evaluated. Returns false when blkback never counted
 * the barrier (a blkback that does not tell these events apart).
 */
static bool quiesce(void)
{
    static unsigned seq;
    if (sx_xenbus_printf(A.gxb, XBT_NULL, A.fep, "state/barrier", "%u", seq++) < 0)
        return false;
    ignored_made++;
    if (ds_wait("watch_ignored", ignored_made, 5000) < ignored_made) {
        fprintf(stderr, "  blkback did not count the barrier below state as ignored\n");
        return false;
    }
    uint64_t r = ds("rounds");
    return ds_wait("rounds", r + 1, 5000) > r;
}

struct counts {
    uint64_t events, ignored, evals, rescans;
};

static struct counts counts_now(void)
{
    return (struct counts){ ds("watch_events"), ds("watch_ignored"), ds("vbd_evals"),
                            ds("rescans") };
}

struct flood_run {
    uint64_t writes, errors, wall_ms, cpu_ns;
};

/* n junk writes by A, back to back; the daemon thread's CPU time over them. */
static void flood(bool below_state, unsigned n, struct flood_run *fr)
{
    uint64_t c0 = daemon_cpu_ns(), t0 = sx_now_ms();
    memset(fr, 0, sizeof(*fr));
    for (unsigned i = 0; i < n; i++) {
        if (junk_write(A.gxb, &A, below_state, i) < 0) {
            fr->errors++;
            continue;
        }
        fr->writes++;
        ignored_made += below_state;
    }
    fr->wall_ms = sx_now_ms() - t0;
    fr->cpu_ns = daemon_cpu_ns() - c0;
}

static void flood_report(const char *what, const struct flood_run *fr, const struct counts *c0,
                         const struct counts *c1)
{
    fprintf(stderr, "%s: %llu writes in %llu ms; blkback control thread %.1f ms CPU (%.1f%% of "
            "a core)\n  then: watch events %llu (ignored %llu), vbd evaluations %llu, "
            "rescans %llu\n", what, (unsigned long long)fr->writes,
            (unsigned long long)fr->wall_ms, (double)fr->cpu_ns / 1e6,
            fr->wall_ms ? (double)fr->cpu_ns / 1e4 / (double)fr->wall_ms : 0.0,
            (unsigned long long)(c1->events - c0->events),
            (unsigned long long)(c1->ignored - c0->ignored),
            (unsigned long long)(c1->evals - c0->evals),
            (unsigned long long)(c1->rescans - c0->rescans));
}

/* ------------------------------------------------------------------------------ cases */

static void test_flood_under_own_device_dir_costs_blkback_nothing(void)
{
    /* Nothing blkback needs lives in these keys: it must not even be told about them. The
     * guest's state write after the flood is handled as always: one event, one evaluation. */
    quiesce();
    struct counts c0 = counts_now(), c1;
    struct flood_run fr;
    flood(false, 3000, &fr);
    CU_ASSERT_EQUAL(fr.errors, 0);   /* the guest may write there: the flood is real */
    CU_ASSERT_EQUAL(guest_state_sentinel(&A), 0);
    quiesce();
    c1 = counts_now();
    flood_report("junk under device/vbd/N", &fr, &c0, &c1);
    CU_ASSERT_EQUAL(c1.events - c0.events, 2);     /* the state write and the barrier */
    CU_ASSERT_EQUAL(c1.ignored - c0.ignored, 1);   /* the barrier */
    CU_ASSERT_EQUAL(c1.evals - c0.evals, 1);       /* for the state write */
    CU_ASSERT_EQUAL(c1.rescans - c0.rescans, 0);
}

static void test_flood_below_state_node_evaluates_nothing(void)
{
    /* Children of the state node do reach the watch on it (xenstore watches are recursive):
     * they are counted and dropped, nothing is read or evaluated for them. */
    const unsigned n = 500;   /* well inside xenstored's 1024 queued events per connection */
    quiesce();
    struct counts c0 = counts_now(), c1;
    struct flood_run fr;
    flood(true, n, &fr);
    CU_ASSERT_EQUAL(fr.errors, 0);
    quiesce();
    c1 = counts_now();
    flood_report("junk under device/vbd/N/state", &fr, &c0, &c1);
    CU_ASSERT_EQUAL(c1.events - c0.events, n + 1);
    CU_ASSERT_EQUAL(c1.ignored - c0.ignored, n + 1);
    CU_ASSERT_EQUAL(c1.evals - c0.evals, 0);
    CU_ASSERT_EQUAL(c1.rescans - c0.rescans, 0);
    /* tidy up (as the guest); the removals are ignored the same way */
    for (unsigned i = 0; i < JUNK_KEYS; i++) {
        char key[48];
        snprintf(key, sizeof(key), "state/junk-%u", i);
        if (sx_xenbus_rm(A.gxb, XBT_NULL, A.fep, key) == 0)
            ignored_made++;
    }
}

struct flood_thread {
    pthread_t thr;
    struct sx_xenbus *xb;          /* A's second connection: a handle is one thread's */
    atomic_bool stop;
    atomic_uint_fast64_t writes, errors;
};

static void *flood_main(void *arg)
{
    struct flood_thread *ft = arg;
    for (unsigned i = 0; !atomic_load(&ft->stop); i++) {
        if (junk_write(ft->xb, &A, false, i) < 0)
            atomic_fetch_add(&ft->errors, 1);
        else
            atomic_fetch_add(&ft->writes, 1);
    }
    return NULL;
}

static void test_other_guest_attaches_during_flood(void)
{
    static struct flood_thread ft;
    char xsp[256];
    sx_xenstored_path(xsp, sizeof(xsp), A.dom);
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_open(&ft.xb, NULL, xsp), 0);
    atomic_store(&ft.stop, false);
    atomic_store(&ft.writes, 0);
    atomic_store(&ft.errors, 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ft.thr, NULL, flood_main, &ft), 0);
    /* in full swing first */
    uint64_t end = sx_now_ms() + 10000;
    while (atomic_load(&ft.writes) < 200 && sx_now_ms() < end)
        usleep(1000);
    uint64_t w0 = atomic_load(&ft.writes), c0 = daemon_cpu_ns(), t0 = sx_now_ms();
    int rc = blkguest_connect(&B);
    uint64_t attach_ms = sx_now_ms() - t0, cpu = daemon_cpu_ns() - c0;
    uint64_t w1 = atomic_load(&ft.writes);
    atomic_store(&ft.stop, true);
    pthread_join(ft.thr, NULL);
    sx_xenbus_close(ft.xb);
    fprintf(stderr, "guest B attached in %llu ms while guest A wrote %llu junk keys; blkback "
            "control thread %.1f ms CPU (%.1f%% of a core)\n", (unsigned long long)attach_ms,
            (unsigned long long)(w1 - w0), (double)cpu / 1e6,
            attach_ms ? (double)cpu / 1e4 / (double)attach_ms : 0.0);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(w1 > w0);   /* the flood did run during the attach */
    CU_ASSERT_EQUAL(atomic_load(&ft.errors), 0);
    CU_ASSERT_EQUAL(ds_wait("connected", 2, 5000), 2);   /* the gauge follows the round */
}

/* ------------------------------------------------------------------------------ suite */

static int suite_clean(void)
{
    blkguest_destroy(&A);
    blkguest_destroy(&B);
    blkenv_stop(&E);
    return 0;
}

static int suite_init(void)
{
    struct bb_opts o;
    bb_opts_default(&o);
    o.spin_ns = 0;
    o.engine = SX_BIO_SYNC;
    const struct blkguest_opts oa = { .name = "flooder", .own_xs = true },
                               ob = { .name = "bystander", .own_xs = true };
    if (blkenv_start(&E, &o) < 0 || blkguest_create(&E, &A, &oa) < 0 ||
        blkguest_create(&E, &B, &ob) < 0 || blkguest_connect(&A) < 0) {
        fprintf(stderr, "xsa349 setup failed\n");
        suite_clean();   /* CUnit does not call it when init fails */
        return -1;
    }
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_flood_under_own_device_dir_costs_blkback_nothing),
    SX_TEST(test_flood_below_state_node_evaluates_nothing),
    SX_TEST(test_other_guest_attaches_during_flood),
};

SX_TEST_MAIN("xsa349", cases, suite_init, suite_clean)
