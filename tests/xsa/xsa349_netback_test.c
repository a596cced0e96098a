/*
 * XSA-349 ("Frontends can trigger OOM in Backends by update a watched path") against netback:
 * a guest writes junk, as fast as xenstored lets it, under its own frontend directory
 * device/vif/<devid>/, including below the two nodes netback must watch there (state and
 * request-multicast-control: xenstore watches are recursive). netback used to mark itself
 * dirty on any event and then list backend/vif and re-evaluate every vif (a dozen xenstore
 * reads each): one guest's flood cost the control thread a share of a core proportional to
 * its write rate and to the number of vifs. Now an event below a watched node is counted and
 * dropped, and one on a watched node re-evaluates that vif only.
 *
 * In-process (tests/netguest.h): the netback daemon on a thread of its own in a private
 * network namespace, the test as the toolstack and two guests, A writing over its own xenstore
 * connection with libxl's permissions (its frontend directory is its own). The daemon's
 * counters (netback-0-0: watch_events, watch_ignored, vif_evals, rescans, rounds) show the
 * work done; the control thread's CPU time what it cost.
 *
 *   guest A: a connected vif; floods its own frontend directory
 *   guest B: a vif attached while A floods
 */
#include "tests/netguest.h"

#include <stdatomic.h>
#include <time.h>

static struct netenv E;
static struct netguest A, B;
static struct netvif va, vb;
static struct sx_xenbus *axb;      /* A's own xenstore connection */

static uint64_t ds(const char *name)
{
    return netenv_stat(&E, name);
}

static uint64_t daemon_cpu_ns(void)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(E.thr, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* owner `owner` with no access for others, read for `reader` (xenstore-chmod nOWNER rREADER) */
static int chmod_node(const char *path, unsigned owner, unsigned reader)
{
    struct xs_permissions p[2] = { { .id = owner, .perms = XS_PERM_NONE },
                                   { .id = reader, .perms = XS_PERM_READ } };
    return xs_set_permissions(sx_xenbus_xs(E.xb), XBT_NULL, path, p, 2) ? 0 : -EACCES;
}

/* libxl's permissions on a vif's frontend directory: the guest owns it, dom0 reads it. */
static int hand_over(struct netvif *t)
{
    char dev[64], vif[80], key[200];
    snprintf(dev, sizeof(dev), "/local/domain/%u/device", t->g->dom);
    snprintf(vif, sizeof(vif), "%s/vif", dev);
    static const char *const keys[] = { "backend", "backend-id", "mac", "state", "tx-ring-ref",
                                        "rx-ring-ref", "event-channel", "request-rx-copy",
                                        "feature-rx-notify", "feature-sg" };
    int rc;
    if ((rc = chmod_node(dev, 0, t->g->dom)) || (rc = chmod_node(vif, 0, t->g->dom)) ||
        (rc = chmod_node(t->fe, t->g->dom, 0)))
        return rc;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(key, sizeof(key), "%s/%s", t->fe, keys[i]);
        if ((rc = chmod_node(key, t->g->dom, 0)))
            return rc;
    }
    return 0;
}

#define JUNK_KEYS 16u   /* the flood rewrites these (no node quota is used up) */

enum where { ANYWHERE, BELOW_STATE, BELOW_MCAST };

/* One junk write by A under its frontend directory. */
static int junk_write(struct sx_xenbus *xb, enum where w, unsigned i)
{
    static const char *const pre[] = { "", "state/", "request-multicast-control/" };
    char key[64];
    snprintf(key, sizeof(key), "%sjunk-%u", pre[w], i % JUNK_KEYS);
    return sx_xenbus_printf(xb, XBT_NULL, va.fe, key, "%u", i);
}

/* Events this test made that netback counts as ignored. */
static uint64_t ignored_made;

/* Wait until netback has handled everything written so far: A writes below its state node
 * (one ignored event); events arrive in order, so once the ignored count covers it every
 * earlier event has been dispatched, and once the round that dispatched it ended every vif
 * those events named has been evaluated. False when netback never counted the barrier. */
static bool quiesce(void)
{
    static unsigned seq;
    if (sx_xenbus_printf(axb, XBT_NULL, va.fe, "state/barrier", "%u", seq++) < 0)
        return false;
    ignored_made++;
    if (netenv_stat_wait(&E, "watch_ignored", ignored_made, 5000) < ignored_made) {
        fprintf(stderr, "  netback did not count the barrier below state as ignored\n");
        return false;
    }
    uint64_t r = ds("rounds");
    return netenv_stat_wait(&E, "rounds", r + 1, 5000) > r;
}

struct counts {
    uint64_t events, ignored, evals, rescans;
};

static struct counts counts_now(void)
{
    return (struct counts){ ds("watch_events"), ds("watch_ignored"), ds("vif_evals"),
                            ds("rescans") };
}

static void flood(enum where w, unsigned n, uint64_t *writes, uint64_t *errors, uint64_t *ms,
                  uint64_t *cpu)
{
    uint64_t c0 = daemon_cpu_ns(), t0 = sx_now_ms();
    *writes = *errors = 0;
    for (unsigned i = 0; i < n; i++) {
        if (junk_write(axb, w, i) < 0) {
            (*errors)++;
            continue;
        }
        (*writes)++;
        ignored_made += w != ANYWHERE;
    }
    *ms = sx_now_ms() - t0;
    *cpu = daemon_cpu_ns() - c0;
}

static void report(const char *what, uint64_t writes, uint64_t ms, uint64_t cpu,
                   const struct counts *c0, const struct counts *c1)
{
    printf("\n  %s: %llu writes in %llu ms; netback control thread %.1f ms CPU (%.1f%% of a "
           "core); watch events %llu (ignored %llu), vif evaluations %llu, rescans %llu\n", what,
           (unsigned long long)writes, (unsigned long long)ms, (double)cpu / 1e6,
           ms ? (double)cpu / 1e4 / (double)ms : 0.0,
           (unsigned long long)(c1->events - c0->events),
           (unsigned long long)(c1->ignored - c0->ignored),
           (unsigned long long)(c1->evals - c0->evals),
           (unsigned long long)(c1->rescans - c0->rescans));
}

static void test_flood_under_own_device_dir_costs_netback_nothing(void)
{
    /* Nothing netback reads on its own lives in these keys: it is not even told. */
    CU_ASSERT_TRUE_FATAL(quiesce());
    struct counts c0 = counts_now(), c1;
    uint64_t writes, errors, ms, cpu;
    flood(ANYWHERE, 3000, &writes, &errors, &ms, &cpu);
    CU_ASSERT_EQUAL(errors, 0);   /* the guest may write there: the flood is real */
    CU_ASSERT_TRUE(quiesce());
    c1 = counts_now();
    report("junk under device/vif/N", writes, ms, cpu, &c0, &c1);
    CU_ASSERT_EQUAL(c1.events - c0.events, 1);     /* the barrier */
    CU_ASSERT_EQUAL(c1.evals - c0.evals, 0);
    CU_ASSERT_EQUAL(c1.rescans - c0.rescans, 0);
}

static void flood_below(enum where w, const char *what)
{
    const unsigned n = 500;   /* well inside xenstored's 1024 queued events per connection */
    CU_ASSERT_TRUE_FATAL(quiesce());
    struct counts c0 = counts_now(), c1;
    uint64_t writes, errors, ms, cpu;
    flood(w, n, &writes, &errors, &ms, &cpu);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_TRUE(quiesce());
    c1 = counts_now();
    report(what, writes, ms, cpu, &c0, &c1);
    CU_ASSERT_EQUAL(c1.events - c0.events, n + 1);
    CU_ASSERT_EQUAL(c1.ignored - c0.ignored, n + 1);
    CU_ASSERT_EQUAL(c1.evals - c0.evals, 0);
    CU_ASSERT_EQUAL(c1.rescans - c0.rescans, 0);
    /* A's vif still passes traffic. */
    CU_ASSERT_TRUE(nv_send_ok(&va));
}

/* Children of the watched nodes do reach the watches (recursive): counted, dropped. */
static void test_flood_below_state_node_evaluates_nothing(void)
{
    flood_below(BELOW_STATE, "junk under device/vif/N/state");
}

static void test_flood_below_mcast_node_evaluates_nothing(void)
{
    flood_below(BELOW_MCAST, "junk under device/vif/N/request-multicast-control");
}

static void test_watched_node_evaluates_only_its_vif(void)
{
    /* A flips request-multicast-control (a node netback must read): one event, one
     * evaluation, of A's vif only (B's is connected too). */
    CU_ASSERT_EQUAL_FATAL(nv_wait_state(&E, vb.be, XenbusStateConnected, 20000), 0);
    CU_ASSERT_TRUE_FATAL(quiesce());
    struct counts c0 = counts_now(), c1;
    CU_ASSERT_EQUAL(sx_xenbus_write(axb, XBT_NULL, va.fe, "request-multicast-control", "1"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_write(axb, XBT_NULL, va.fe, "request-multicast-control", "0"), 0);
    CU_ASSERT_TRUE(quiesce());
    c1 = counts_now();
    CU_ASSERT_EQUAL(c1.events - c0.events, 3);                 /* two writes, the barrier */
    CU_ASSERT_TRUE(c1.evals - c0.evals >= 1 && c1.evals - c0.evals <= 2);
    CU_ASSERT_EQUAL(c1.rescans - c0.rescans, 0);
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
        if (junk_write(ft->xb, BELOW_STATE, i) < 0)
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
    nv_close(&vb);
    sx_xenstored_path(xsp, sizeof(xsp), A.dom);
    CU_ASSERT_EQUAL_FATAL(sx_xenbus_open(&ft.xb, NULL, xsp), 0);
    atomic_store(&ft.stop, false);
    atomic_store(&ft.writes, 0);
    atomic_store(&ft.errors, 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ft.thr, NULL, flood_main, &ft), 0);
    uint64_t end = sx_now_ms() + 10000;
    while (atomic_load(&ft.writes) < 200 && sx_now_ms() < end)
        usleep(1000);
    uint64_t w0 = atomic_load(&ft.writes), c0 = daemon_cpu_ns(), t0 = sx_now_ms();
    int rc = nv_open(&vb, &B, 0);
    uint64_t attach_ms = sx_now_ms() - t0, cpu = daemon_cpu_ns() - c0;
    uint64_t w1 = atomic_load(&ft.writes);
    bool b_ok = rc == 0 && nv_send_ok(&vb);
    atomic_store(&ft.stop, true);
    pthread_join(ft.thr, NULL);
    sx_xenbus_close(ft.xb);
    ignored_made += atomic_load(&ft.writes);
    printf("\n  guest B attached in %llu ms while guest A wrote %llu junk keys below its state; "
           "netback control thread %.1f ms CPU (%.1f%% of a core)\n",
           (unsigned long long)attach_ms, (unsigned long long)(w1 - w0), (double)cpu / 1e6,
           attach_ms ? (double)cpu / 1e4 / (double)attach_ms : 0.0);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(b_ok);
    CU_ASSERT_TRUE(w1 > w0);   /* the flood did run during the attach */
    CU_ASSERT_EQUAL(atomic_load(&ft.errors), 0);
}

static int suite_clean(void)
{
    nv_close(&va);
    nv_close(&vb);
    sx_xenbus_close(axb);
    axb = NULL;
    netguest_close(&A);
    netguest_close(&B);
    netenv_stop(&E);
    return 0;
}

static int suite_init(void)
{
    char xsp[256];
    if (netenv_start(&E, 20000) < 0 || netguest_open(&E, &A, "flooder") < 0 ||
        netguest_open(&E, &B, "bystander") < 0 || nv_open(&va, &A, 0) < 0 ||
        hand_over(&va) < 0 || nv_open(&vb, &B, 0) < 0)
        goto fail;
    sx_xenstored_path(xsp, sizeof(xsp), A.dom);
    if (sx_xenbus_open(&axb, NULL, xsp) < 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "xsa349 netback setup failed\n");
    suite_clean();
    return -1;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_flood_under_own_device_dir_costs_netback_nothing),
    SX_TEST(test_flood_below_state_node_evaluates_nothing),
    SX_TEST(test_flood_below_mcast_node_evaluates_nothing),
    SX_TEST(test_watched_node_evaluates_only_its_vif),
    SX_TEST(test_other_guest_attaches_during_flood),
};

SX_TEST_MAIN("xsa349_netback", cases, suite_init, suite_clean)
