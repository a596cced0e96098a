/*
 * XSA-349 class (issue 14, "watch flood"): a guest writes junk, as fast as it can, under its
 * own frontend directory device/vbd/<devid>/. blkback used to watch that whole subtree and, on
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
#include "blkback/common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "clock.h"
#include "log.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"
#include "xenbus/xenbus.h"

#define DEVID 51712u

struct guest {
    domid_t dom;
    struct sx_plat *p;
    struct sx_gntshr *shr;
    struct sx_evtchn *evt;
    struct sx_xenbus *xb;          /* the guest's own xenstore connection */
    grant_ref_t ring_ref;
    void *ring_mem;
    int port;
    char fep[128], bep[128], img[256];
};

static struct simenv env;
static struct sxc_conn *ctl;
static struct bb_daemon *daemon_;
static pthread_t daemon_thr;
static bool daemon_started;
static volatile int daemon_stop;
static struct sx_xenbus *xb;       /* dom0: the toolstack */
static struct sx_stats dst;        /* the daemon's counters */
static struct guest A, B;

static void *daemon_main(void *arg)
{
    (void)arg;
    bb_daemon_run(daemon_, &daemon_stop);
    return NULL;
}

/* CPU time the daemon's control thread has used, in ns. */
static uint64_t daemon_cpu_ns(void)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(daemon_thr, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ds(const char *name)
{
    return sx_stats_get(&dst, name);
}

/* Wait until counter name reaches at least want (deadline ms); its value. */
static uint64_t ds_wait(const char *name, uint64_t want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while ((v = ds(name)) < want && sx_now_ms() < end)
        usleep(2000);
    return v;
}

static int wait_be_state(struct guest *g, enum xenbus_state want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    enum xenbus_state st = XenbusStateUnknown;
    do {
        if (sx_xenbus_read_state(xb, XBT_NULL, g->bep, &st) == 0 && st == want)
            return 0;
        usleep(2000);
    } while (sx_now_ms() < end);
    fprintf(stderr, "%s/state: %s, wanted %s\n", g->bep, sx_xenbus_state_name((int)st),
            sx_xenbus_state_name((int)want));
    return -ETIMEDOUT;
}

/* owner `owner` with no access for others, read for `reader` (xenstore-chmod nOWNER rREADER) */
static int chmod_node(const char *dir, const char *key, unsigned owner, unsigned reader)
{
    char path[256];
    snprintf(path, sizeof(path), "%s%s%s", dir, key ? "/" : "", key ? key : "");
    struct xs_permissions p[2] = { { .id = owner, .perms = XS_PERM_NONE },
                                   { .id = reader, .perms = XS_PERM_READ } };
    return xs_set_permissions(sx_xenbus_xs(xb), XBT_NULL, path, p, 2) ? 0 : -EACCES;
}

/* A domain with its own xenstore connection, its image, ring page and event channel. */
static int guest_create(struct guest *g, const char *name)
{
    int rc = sxc_domain_create(ctl, name, SXD_TYPE_PV, 16, 1, false);
    if (rc < 0)
        return rc;
    g->dom = (domid_t)rc;
    sx_xenbus_frontend_path(g->fep, sizeof(g->fep), g->dom, "vbd", DEVID);
    sx_xenbus_backend_path(g->bep, sizeof(g->bep), 0, "vbd", g->dom, DEVID);
    snprintf(g->img, sizeof(g->img), "%s/%s.img", env.dir, name);
    int fd = open(g->img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = ftruncate(fd, 1 << 20) < 0 ? -errno : 0;
    close(fd);
    if (rc)
        return rc;
    if (!(g->p = simenv_plat(&env, g->dom)))
        return -EIO;
    if ((rc = sx_gntshr_open(&g->shr, g->p)) < 0 || (rc = sx_evtchn_open(&g->evt, g->p)) < 0)
        return rc;
    if ((rc = sx_gntshr_share(g->shr, 0, 1, true, &g->ring_ref, &g->ring_mem)) < 0)
        return rc;
    struct sx_front_ring ring;
    if ((rc = sx_front_ring_init(&ring, g->ring_mem, SX_RING_PAGE_SIZE, sizeof(blkif_request_t),
                                 sizeof(blkif_response_t))) < 0)
        return rc;
    if ((g->port = sx_evtchn_bind_unbound(g->evt, 0)) < 0)
        return g->port;
    char xsp[256];
    sx_xenstored_path(xsp, sizeof(xsp), g->dom);
    return sx_xenbus_open(&g->xb, NULL, xsp);
}

static void guest_destroy(struct guest *g)
{
    sx_xenbus_close(g->xb);
    sx_evtchn_close(g->evt);
    sx_gntshr_close(g->shr);
    sx_plat_close(g->p);
    g->xb = NULL;
    g->evt = NULL;
    g->shr = NULL;
    g->p = NULL;
}

/* The toolstack's part of a vbd (libxl's layout and permissions: the frontend directory is the
 * guest's, the backend reads it), then the frontend's handshake over the guest's own
 * connection, up to Connected. */
static int vbd_attach(struct guest *g)
{
    int rc;
    char dev[64], vbd[80];
    snprintf(dev, sizeof(dev), "/local/domain/%u/device", g->dom);
    snprintf(vbd, sizeof(vbd), "%s/vbd", dev);
    if ((rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "backend", g->bep)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "backend-id", "0")) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, g->fep, "virtual-device", "%u", DEVID)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "state", "1")) ||
        (rc = chmod_node(dev, NULL, 0, g->dom)) || (rc = chmod_node(vbd, NULL, 0, g->dom)) ||
        (rc = chmod_node(g->fep, NULL, g->dom, 0)) ||
        (rc = chmod_node(g->fep, "backend", g->dom, 0)) ||
        (rc = chmod_node(g->fep, "backend-id", g->dom, 0)) ||
        (rc = chmod_node(g->fep, "virtual-device", g->dom, 0)) ||
        (rc = chmod_node(g->fep, "state", g->dom, 0)))
        return rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "frontend", g->fep)) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, g->bep, "frontend-id", "%u", g->dom)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "params", g->img)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "type", "phy")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "mode", "w")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "online", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "state", "1")))
        return rc;
    if ((rc = wait_be_state(g, XenbusStateInitWait, 20000)))
        return rc;
    if ((rc = sx_xenbus_printf(g->xb, XBT_NULL, g->fep, "ring-ref", "%u", g->ring_ref)) ||
        (rc = sx_xenbus_printf(g->xb, XBT_NULL, g->fep, "event-channel", "%d", g->port)) ||
        (rc = sx_xenbus_write(g->xb, XBT_NULL, g->fep, "protocol", "x86_64-abi")) ||
        (rc = sx_xenbus_write(g->xb, XBT_NULL, g->fep, "state", "3")))
        return rc;
    if ((rc = wait_be_state(g, XenbusStateConnected, 20000)))
        return rc;
    return sx_xenbus_write(g->xb, XBT_NULL, g->fep, "state", "4");
}

/* ------------------------------------------------------------------------------ flooding */

#define JUNK_KEYS 16u   /* the flood rewrites these (no node quota is used up) */

/* One junk write by g under its frontend directory (under its state node when below_state). */
static int junk_write(struct sx_xenbus *gxb, const struct guest *g, bool below_state,
                      unsigned i)
{
    char key[48];
    snprintf(key, sizeof(key), "%sjunk-%u", below_state ? "state/" : "", i % JUNK_KEYS);
    return sx_xenbus_printf(gxb, XBT_NULL, g->fep, key, "%u", i);
}

/* The guest rewrites its own state (Connected, unchanged): one event on the node blkback
 * watches, one evaluation of its vbd. */
static int guest_state_sentinel(struct guest *g)
{
    return sx_xenbus_write(g->xb, XBT_NULL, g->fep, "state", "4");
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
    if (sx_xenbus_printf(A.xb, XBT_NULL, A.fep, "state/barrier", "%u", seq++) < 0)
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
        if (junk_write(A.xb, &A, below_state, i) < 0) {
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
        if (sx_xenbus_rm(A.xb, XBT_NULL, A.fep, key) == 0)
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
    int rc = vbd_attach(&B);
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
    if (daemon_started) {
        daemon_stop = 1;
        pthread_join(daemon_thr, NULL);
        daemon_started = false;
    }
    bb_daemon_close(daemon_);
    daemon_ = NULL;
    sx_stats_close_ro(&dst);
    guest_destroy(&A);
    guest_destroy(&B);
    sx_xenbus_close(xb);
    xb = NULL;
    sxc_disconnect(ctl);
    ctl = NULL;
    if (env.srv)
        simenv_stop(&env);
    return 0;
}

static int suite_init(void)
{
    int rc = -1;
    char p[256];
    if (simenv_start(&env, true) < 0 || sxc_connect(&ctl, env.sock, 0) < 0)
        goto fail;
    sx_xenstored_path(p, sizeof(p), 0);
    if ((rc = sx_xenbus_open(&xb, NULL, p)) < 0)
        goto fail;
    struct bb_opts o;
    bb_opts_default(&o);
    o.spin_ns = 0;
    o.engine = SX_BIO_SYNC;
    if ((rc = bb_daemon_open(&daemon_, &o)) < 0)
        goto fail;
    if ((rc = -pthread_create(&daemon_thr, NULL, daemon_main, NULL)) < 0)
        goto fail;
    daemon_started = true;
    snprintf(p, sizeof(p), "%s/stats/blkback-0-0", env.dir);
    if ((rc = sx_stats_open_ro(&dst, p)) < 0 || (rc = guest_create(&A, "flooder")) < 0 ||
        (rc = guest_create(&B, "bystander")) < 0 || (rc = vbd_attach(&A)) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "xsa349_test setup: %s\n", strerror(rc < 0 ? -rc : EIO));
    suite_clean();   /* CUnit does not call it when init fails */
    return -1;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_flood_under_own_device_dir_costs_blkback_nothing),
    SX_TEST(test_flood_below_state_node_evaluates_nothing),
    SX_TEST(test_other_guest_attaches_during_flood),
};

SX_TEST_MAIN("xsa349", cases, suite_init, suite_clean)
