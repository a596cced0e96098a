/*
 * torture/ on its own: option parsing, the generators' keys, the judgement of xenbus state
 * changes once their events settle (coalesced writes never accused), the ids-in-flight set
 * against a reference under random churn, held responses (delay, reorder, release order), and
 * the report files. No backend, no xenstore: a daemon context without a grant handle, devices
 * fed by hand. Time-based steps wait on the counter they expect, with a deadline.
 */
#include "torture/priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "tests/sxtest.h"

static char dir[64];
static struct sx_tt *tt;

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sx-tt-test-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(dir))
        return -1;
    setenv("SPLITXEN_RUN", dir, 1);
    struct sx_tt_opts o;
    sx_tt_opts_default(&o);
    o.check = true;
    o.torture = true;
    o.seed = 99;
    return sx_tt_open(&tt, &o, NULL) < 0 ? -1 : 0;
}

static int suite_clean(void)
{
    sx_tt_close(tt);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static unsigned devid = 100;

static struct sx_tt_dev *dev(enum sx_tt_proto p)
{
    unsigned id = devid++;
    char fe[64], be[64];
    snprintf(fe, sizeof(fe), "/local/domain/7/device/x/%u", id);
    snprintf(be, sizeof(be), "/local/domain/0/backend/x/7/%u", id);
    struct sx_tt_dev *d = sx_tt_dev_open(tt, p, 7, id, fe, be);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return d;
}

static uint64_t count(struct sx_tt_dev *d, enum sx_tt_kind k)
{
    pthread_mutex_lock(&d->lock);
    uint64_t n = d->f[k].count;
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* ------------------------------------------------------------------ options */

static void test_options_parse_faults_and_seeds(void)
{
    struct sx_tt_opts o;
    sx_tt_opts_default(&o);
    CU_ASSERT_FALSE(sx_tt_on(&o));
    CU_ASSERT_EQUAL(o.faults, SX_TT_FAULTS_DEFAULT);
    CU_ASSERT_FALSE(o.faults & (1u << SX_TT_F_ERROR));
    CU_ASSERT_EQUAL(sx_tt_parse_faults(&o, "delay,error"), 0);
    CU_ASSERT_EQUAL(o.faults, (1u << SX_TT_F_DELAY) | (1u << SX_TT_F_ERROR));
    CU_ASSERT_EQUAL(sx_tt_parse_faults(&o, "all"), 0);
    CU_ASSERT_EQUAL(o.faults, SX_TT_FAULTS_ALL);
    CU_ASSERT_EQUAL(sx_tt_parse_faults(&o, "default,error"), 0);
    CU_ASSERT_EQUAL(o.faults, SX_TT_FAULTS_ALL);
    CU_ASSERT_EQUAL(sx_tt_parse_faults(&o, "delay,nonsense"), -EINVAL);
    CU_ASSERT_EQUAL(o.faults, SX_TT_FAULTS_ALL);          /* untouched on error */
    CU_ASSERT_EQUAL(sx_tt_parse_faults(&o, ""), -EINVAL);
    CU_ASSERT_EQUAL(sx_tt_parse_torture(&o, "12345"), 0);
    CU_ASSERT_TRUE(o.torture);
    CU_ASSERT_EQUAL(o.seed, 12345);
    CU_ASSERT_EQUAL(sx_tt_parse_torture(&o, "-1"), -EINVAL);
    CU_ASSERT_EQUAL(sx_tt_parse_torture(&o, "12x"), -EINVAL);
    CU_ASSERT_EQUAL(sx_tt_parse_torture(&o, NULL), 0);     /* from the clock */
    CU_ASSERT_STRING_EQUAL(sx_tt_fault_name(SX_TT_F_PARTIAL), "partial");
    CU_ASSERT_STRING_EQUAL(sx_tt_kind_name(SX_TT_K_NOTIFY), "notify_missing");
    CU_ASSERT_PTR_NOT_NULL(strstr(sx_tt_usage, "--torture-faults=LIST"));
}

/* ------------------------------------------------------------------ generators */

static void test_generators_are_keyed_by_seed_device_and_stream(void)
{
    struct tt_rng a, b, c, e, f;
    tt_rng_init(&a, 5, "vbd-51712", "q0");
    tt_rng_init(&b, 5, "vbd-51712", "q0");
    tt_rng_init(&c, 5, "vbd-51712", "q1");
    tt_rng_init(&e, 6, "vbd-51712", "q0");
    tt_rng_init(&f, 5, "vbd-51728", "q0");
    unsigned same_c = 0, same_e = 0, same_f = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = tt_rng_next(&a);
        CU_ASSERT_EQUAL(x, tt_rng_next(&b));
        same_c += x == tt_rng_next(&c);
        same_e += x == tt_rng_next(&e);
        same_f += x == tt_rng_next(&f);
    }
    CU_ASSERT_EQUAL(same_c + same_e + same_f, 0);
    CU_ASSERT_STRING_EQUAL(a.name, "q0");
}

/* ------------------------------------------------------------------ states */

/* Feed a write of state s: its watch event, then the backend's read of it. */
static void write_state(struct sx_tt_dev *d, enum xenbus_state s, enum xenbus_state be)
{
    sx_tt_fe_event(d);
    sx_tt_fe_state(d, NULL, s, be);
}

/* Tick until the device's events settled (or 2 s). */
static void settle_now(struct sx_tt_dev *d)
{
    uint64_t end = sx_now_ms() + 2000;
    while ((d->nobs || d->events) && sx_now_ms() < end) {
        sx_tt_tick(tt, NULL);
        usleep(10000);
    }
}

static void test_state_changes_judged_once_settled(void)
{
    /* The usual life: the initial watch event, then 1 -> 3 -> 4 -> 5 -> 6 -> 1 -> 3 -> 4. */
    struct sx_tt_dev *d = dev(SX_TT_BLKIF);
    sx_tt_fe_state(d, NULL, XenbusStateInitialising, XenbusStateInitWait);
    sx_tt_fe_event(d);                                   /* the watch's initial event */
    write_state(d, XenbusStateInitialised, XenbusStateInitWait);
    write_state(d, XenbusStateConnected, XenbusStateConnected);
    write_state(d, XenbusStateClosing, XenbusStateConnected);
    write_state(d, XenbusStateClosed, XenbusStateClosing);
    write_state(d, XenbusStateInitialising, XenbusStateClosed);
    write_state(d, XenbusStateInitialised, XenbusStateInitWait);
    write_state(d, XenbusStateConnected, XenbusStateConnected);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 0);
    CU_ASSERT_EQUAL(d->connections, 2);
    /* Connected -> Initialised, one write: reported. */
    write_state(d, XenbusStateInitialised, XenbusStateConnected);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 1);
    /* Two writes read as one jump (Closed, then Initialising read as Initialised ->
     * Initialising): two events, one change seen; never accused. */
    sx_tt_fe_event(d);
    sx_tt_fe_event(d);
    sx_tt_fe_state(d, NULL, XenbusStateInitialising, XenbusStateConnected);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 1);
    /* Closed -> Connected in one write: reported. */
    write_state(d, XenbusStateClosed, XenbusStateConnected);
    write_state(d, XenbusStateConnected, XenbusStateClosed);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 2);
    /* blkif: Connected before the backend is: reported; netif (netfront does it): not. */
    write_state(d, XenbusStateClosed, XenbusStateClosed);
    write_state(d, XenbusStateInitialising, XenbusStateClosed);
    write_state(d, XenbusStateConnected, XenbusStateInitWait);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 3);
    struct sx_tt_dev *n = dev(SX_TT_NETIF);
    sx_tt_fe_state(n, NULL, XenbusStateInitialising, XenbusStateInitWait);
    sx_tt_fe_event(n);
    write_state(n, XenbusStateConnected, XenbusStateInitWait);
    write_state(n, XenbusStateReconfiguring, XenbusStateConnected);
    write_state(n, XenbusStateConnected, XenbusStateReconfigured);
    settle_now(n);
    CU_ASSERT_EQUAL(count(n, SX_TT_K_STATE), 0);
    sx_tt_dev_close(d);
    sx_tt_dev_close(n);
}

/* More changes than a device remembers before they settle (back-to-back connections, as fio
 * runs make them, with no quiet time between): every connection is still counted, and the
 * change after them is judged from the state the frontend is really in. (The device used to
 * stop at the 16th change: connections went uncounted and the next change was judged from a
 * stale state, "Initialised -> Initialising", in tests/torture/blk_check.itest.) */
static void test_long_runs_of_changes_keep_the_latest_state(void)
{
    struct sx_tt_dev *d = dev(SX_TT_BLKIF);
    sx_tt_fe_state(d, NULL, XenbusStateInitialising, XenbusStateInitWait);
    sx_tt_fe_event(d);                                   /* the watch's initial event */
    for (int i = 0; i < 6; i++) {                        /* 29 changes, never settled */
        if (i)
            write_state(d, XenbusStateInitialising, XenbusStateClosed);
        write_state(d, XenbusStateInitialised, XenbusStateInitWait);
        write_state(d, XenbusStateConnected, XenbusStateConnected);
        write_state(d, XenbusStateClosing, XenbusStateConnected);
        write_state(d, XenbusStateClosed, XenbusStateClosing);
    }
    CU_ASSERT_EQUAL(d->connections, 6);
    settle_now(d);
    write_state(d, XenbusStateInitialising, XenbusStateClosed);
    write_state(d, XenbusStateInitialised, XenbusStateInitWait);
    settle_now(d);
    CU_ASSERT_EQUAL(count(d, SX_TT_K_STATE), 0);
    CU_ASSERT_EQUAL(d->connections, 7);
    sx_tt_dev_close(d);
}

/* ------------------------------------------------------------------ rings */

struct fake_ring {
    uint8_t page[4096];
    struct sx_back_ring r;
};

static struct sx_tt_q *ring_of(struct sx_tt_dev *d, struct fake_ring *f)
{
    memset(f, 0, sizeof(*f));
    CU_ASSERT_EQUAL_FATAL(sx_back_ring_attach(&f->r, f->page, 4096, 112, 16), 0);
    struct sx_tt_q *q = sx_tt_q_get(d, 0, 0, NULL);
    grant_ref_t ref = 8;
    CU_ASSERT_EQUAL_FATAL(sx_tt_q_start(q, &f->r, &ref, 1), 0);
    return q;
}

static void test_ids_in_flight_under_churn(void)
{
    struct sx_tt_dev *d = dev(SX_TT_BLKIF);
    static struct fake_ring f;
    struct sx_tt_q *q = ring_of(d, &f);
    CU_ASSERT_EQUAL(q->cap, 64);                          /* 32 entries: twice, a power of 2 */
    /* A reference of what is in flight; ids from a pool of 48 random ones, so that they share
     * home slots and probe chains form (small consecutive ids would not: the multiplicative
     * hash spreads them over distinct slots). */
    uint64_t in[32], pool[48];
    unsigned n = 0;
    uint64_t s = 7, reuse = 0;
    for (unsigned k = 0; k < 48; k++)
        pool[k] = s = s * 2862933555777941757ull + 3037000493ull;
    struct sx_tt_act act;
    for (int i = 0; i < 20000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        if (n < 32 && (n == 0 || (s >> 33) % 3)) {
            uint64_t id = pool[(s >> 40) % 48];           /* collisions with ids in flight */
            bool dup = false;
            for (unsigned k = 0; k < n; k++)
                dup |= in[k] == id;
            sx_tt_q_req(q, id, "read", (RING_IDX)i, 0, 0, 0, &act);
            if (dup)
                reuse++;
            else
                in[n++] = id;
        } else {
            unsigned k = (unsigned)((s >> 20) % n);
            sx_tt_q_rsp(q, in[k]);
            in[k] = in[--n];
        }
        /* the set holds exactly the reference */
        unsigned used = 0;
        for (unsigned k = 0; k < q->cap; k++)
            used += q->used[k];
        if (used != n) {
            CU_FAIL("the set lost or kept an id");
            break;
        }
    }
    CU_ASSERT_EQUAL(count(d, SX_TT_K_ID_REUSE), reuse);
    CU_ASSERT_TRUE(reuse > 100);
    sx_tt_dev_close(d);
}

static void test_held_responses_delay_and_reorder(void)
{
    struct sx_tt_dev *d = dev(SX_TT_BLKIF);
    static struct fake_ring f;
    struct sx_tt_q *q = ring_of(d, &f);
    struct sx_tt_act delay = { .delay_ms = 30 }, reorder = { .reorder = 2 }, none = { 0 };
    struct sx_tt_held h1 = { .id = 1, .op = 0, .status = 0 }, h2 = { .id = 2 }, out[4];
    CU_ASSERT_FALSE(sx_tt_q_hold(q, &none, &h1));
    CU_ASSERT_TRUE(sx_tt_q_hold(q, &delay, &h1));
    CU_ASSERT_TRUE(sx_tt_q_hold(q, &reorder, &h2));
    CU_ASSERT_EQUAL(sx_tt_q_release(q, false, out, 4), 0);
    int ms = sx_tt_q_poll_ms(q, -1, false);
    CU_ASSERT_TRUE(ms > 0 && ms <= 30);
    /* two later responses go out: the reorder hold is due, the delay not yet */
    sx_tt_q_rsp(q, 10);
    sx_tt_q_rsp(q, 11);
    CU_ASSERT_EQUAL(sx_tt_q_release(q, false, out, 4), 1);
    CU_ASSERT_EQUAL(out[0].id, 2);
    uint64_t end = sx_now_ms() + 2000;
    unsigned got = 0;
    while (!got && sx_now_ms() < end) {
        got = sx_tt_q_release(q, false, out, 4);
        if (!got)
            usleep(1000);
    }
    CU_ASSERT_EQUAL(got, 1);
    CU_ASSERT_EQUAL(out[0].id, 1);
    /* all: everything held, in arrival order */
    CU_ASSERT_TRUE(sx_tt_q_hold(q, &delay, &h2));
    CU_ASSERT_TRUE(sx_tt_q_hold(q, &delay, &h1));
    CU_ASSERT_EQUAL(sx_tt_q_release(q, true, out, 4), 2);
    CU_ASSERT_EQUAL(out[0].id, 2);
    CU_ASSERT_EQUAL(out[1].id, 1);
    sx_tt_dev_close(d);
}

/* ------------------------------------------------------------------ reports */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_reports_name_the_request_rule_and_seed(void)
{
    struct sx_tt_dev *d = dev(SX_TT_NETIF);
    struct sx_tt_where w = { .queue = 1, .ring = "tx", .has_req = true, .id = 9, .op = "tx",
                             .has_pos = true, .pos = 77 };
    uint64_t v = sx_tt_feature(d, "feature-sg", 1, (const uint64_t[]){ 0, 1 }, 2);
    sx_tt_found(d, SX_TT_K_SLOTS, &w, NULL, "a \"quoted\" detail");
    sx_tt_found(d, SX_TT_K_SLOTS, &w, "my rule", "second");
    CU_ASSERT_EQUAL(sx_tt_offered(d, "feature-sg", 7), v);
    CU_ASSERT_EQUAL(sx_tt_offered(d, "feature-gso-tcpv4", 7), 7);
    char file[40];
    snprintf(file, sizeof(file), "%s", d->file);
    sx_tt_dev_close(d);                                   /* writes the report one last time */
    char path[200];
    snprintf(path, sizeof(path), "%s/check/%s.txt", dir, file);
    char *txt = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(txt);
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "tx_slot_chain: 2 times"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "first: queue 1 tx, request id 9 (tx) at ring position 77: "
                                       "a \"quoted\" detail"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "last:  queue 1 tx, request id 9 (tx) at ring position 77: "
                                       "second"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "rule:  <xen/io/netif.h> Guest transmit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "reproduce: --torture=99 (first seen after fault feat#"));
    free(txt);
    snprintf(path, sizeof(path), "%s/check/%s.json", dir, file);
    char *js = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(js);
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"kind\":\"tx_slot_chain\",\"count\":2,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "a \\\"quoted\\\" detail"));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"seed\":99"));
    CU_ASSERT_EQUAL(js[strlen(js) - 2], '}');
    free(js);
    /* the stats file went with the device */
    snprintf(path, sizeof(path), "%s/stats/vifchk-7-%u", dir, devid - 1);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_options_parse_faults_and_seeds),
    SX_TEST(test_generators_are_keyed_by_seed_device_and_stream),
    SX_TEST(test_state_changes_judged_once_settled),
    SX_TEST(test_long_runs_of_changes_keep_the_latest_state),
    SX_TEST(test_ids_in_flight_under_churn),
    SX_TEST(test_held_responses_delay_and_reorder),
    SX_TEST(test_reports_name_the_request_rule_and_seed),
};

SX_TEST_MAIN("torture", cases, suite_init, suite_clean)
