/*
 * sx_idle, the idle step of a ring thread, on the sim platform's event channels: a wake that
 * brought no work buys no spin, the adaptive budget follows the sleeps, a port throttled by
 * late EOI never leaves the loop asleep past its delay (XSA-332), and a yielding spin gives the
 * CPU away only once it has lasted a few microseconds (sched_yield is counted here: this
 * program's definition stands in for libc's).
 */
#include "ring/ring.h"

#include <errno.h>

#include "tests/sxtest.h"
#include "clock.h"
#include "tests/simenv.h"

static struct simenv env;
static struct sx_plat *dom0, *guest;
static struct sx_evtchn *be, *ge;
static int bp, gp;

static int setup(void)
{
    domid_t gid;
    if (simenv_start_pair(&env, "idle-guest", &dom0, &guest, &gid) < 0 ||
        sx_evtchn_open(&be, dom0) < 0 || sx_evtchn_open(&ge, guest) < 0)
        return 1;
    gp = sx_evtchn_bind_unbound(ge, 0);
    bp = gp < 0 ? gp : sx_evtchn_bind_interdomain(be, gid, (evtchn_port_t)gp);
    return bp < 0;
}

static int teardown(void)
{
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static unsigned yields;
int sched_yield(void)
{
    yields++;
    return 0;
}

struct counting_pred {
    unsigned calls, true_at;   /* true on call true_at (0: never) */
};

static bool counting(void *arg)
{
    struct counting_pred *c = arg;
    return ++c->calls == c->true_at;
}

/* The spin runs only when the loop did work since the last arm. */
static void test_idle_no_spin_after_a_wake_without_work(void)
{
    struct sx_idle idle;
    const struct sx_idle_opts o = { .spin_ns = 2000000, .clock_rounds = 16 };
    sx_idle_init(&idle, be, &o, NULL, 0);
    struct counting_pred c = { 0 };
    /* Nothing done yet (a wake that found nothing): no spin, pred not even looked at. */
    CU_ASSERT_FALSE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT_EQUAL(c.calls, 0);
    sx_idle_did(&idle, false);
    CU_ASSERT_FALSE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT_EQUAL(c.calls, 0);
    /* After work: the whole budget (2 ms), many looks. */
    sx_idle_did(&idle, true);
    uint64_t t = sx_now_ns();
    CU_ASSERT_FALSE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT(sx_now_ns() - t >= o.spin_ns);
    CU_ASSERT(c.calls > 16);
    /* ... or until the predicate says work is there. */
    c = (struct counting_pred){ .true_at = 5 };
    CU_ASSERT_TRUE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT_EQUAL(c.calls, 5);
    /* The arm ends the "did work" period: the next wake starts without a spin again. */
    CU_ASSERT_EQUAL(sx_idle_arm(&idle), 0);
    c = (struct counting_pred){ 0 };
    CU_ASSERT_FALSE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT_EQUAL(c.calls, 0);
    sx_idle_fini(&idle);
}

/* The haltpoll rule: the budget doubles (up to spin_ns) after a sleep shorter than spin_ns,
 * halves after a longer one, and below spin_ns / 16 nothing spins until a short sleep. */
static void test_idle_adaptive_budget_follows_the_sleeps(void)
{
    /* A 50 ms budget, so that a "short" sleep (poll with no timeout) stays short on a busy
     * machine. */
    const uint64_t max = 50000000;
    struct sx_idle idle;
    const struct sx_idle_opts o = { .spin_ns = max, .adaptive = true, .clock_rounds = 16 };
    sx_idle_init(&idle, be, &o, NULL, 0);
    CU_ASSERT_EQUAL(idle.spin, max);
    for (int i = 0; i < 5; i++)   /* five long sleeps (60 ms each, nothing to wake us) */
        CU_ASSERT_EQUAL(sx_idle_poll(&idle, NULL, 0, 60), 0);
    CU_ASSERT_EQUAL(idle.spin, max / 32);   /* below the floor, max / 16 */
    sx_idle_did(&idle, true);
    struct counting_pred c = { 0 };
    CU_ASSERT_FALSE(sx_idle_spin(&idle, counting, &c));
    CU_ASSERT_EQUAL(c.calls, 0);
    CU_ASSERT_EQUAL(sx_idle_poll(&idle, NULL, 0, 0), 0);   /* a short sleep: back to the floor */
    CU_ASSERT_EQUAL(idle.spin, max / 16);
    CU_ASSERT_EQUAL(sx_idle_poll(&idle, NULL, 0, 0), 0);
    CU_ASSERT_EQUAL(idle.spin, max / 8);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(sx_idle_poll(&idle, NULL, 0, 0), 0);
    CU_ASSERT_EQUAL(idle.spin, max);   /* capped at spin_ns */
    sx_idle_fini(&idle);
}

/* A storm of empty notifications: the arm holds the port, the poll sleeps no longer than the
 * hold even with an infinite timeout, and an event sent during the hold wakes the loop right
 * after it. Work seen then releases the port at the next arm. */
static void test_idle_throttled_port_wakes_the_loop_when_its_delay_ends(void)
{
    struct sx_idle idle;
    const struct sx_idle_opts o = { .spin_ns = 0 };
    sx_idle_init(&idle, be, &o, NULL, 0);
    struct pollfd pfd = { .fd = sx_evtchn_fd(be), .events = POLLIN };
    int held = -1;   /* the current hold in ms, -1: none */
    for (int i = 0; i < 6; i++) {   /* spurious events 1..6: held 0, 1, 2, 4, 8, 16 ms */
        CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
        if (held >= 0) {
            /* Held: the event waits, and the poll, even with no timeout of its own, sleeps
             * only until the hold ends; then the port is unmasked. */
            uint64_t t = sx_now_ns();
            CU_ASSERT_EQUAL(sx_idle_poll(&idle, &pfd, 1, -1), 0);
            CU_ASSERT(sx_now_ns() - t >= (uint64_t)(held > 0 ? held - 1 : 0) * 1000000u);
            CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&idle.eoi, sx_now_ns()), -1);
        }
        CU_ASSERT_EQUAL(sx_idle_poll(&idle, &pfd, 1, 5000), 1);   /* the event wakes us */
        CU_ASSERT_EQUAL(sx_idle_arm(&idle), 1);                   /* and found nothing */
        held = sx_evtchn_eoi_timeout_ms(&idle.eoi, sx_now_ns());
        CU_ASSERT_EQUAL(held >= 0, i >= 1);
    }
    CU_ASSERT_EQUAL(idle.eoi.spurious, 6);
    CU_ASSERT(held >= 15);
    /* Work (a final check found requests): the next arm unmasks at once and resets. */
    sx_idle_did(&idle, true);
    CU_ASSERT_EQUAL(sx_idle_arm(&idle), 0);
    CU_ASSERT_EQUAL(idle.eoi.spurious, 0);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&idle.eoi, sx_now_ns()), -1);
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_EQUAL(sx_idle_poll(&idle, &pfd, 1, 5000), 1);
    CU_ASSERT_EQUAL(sx_idle_arm(&idle), 1);
    sx_idle_fini(&idle);
}

/* A frontend's idle step (eoi_now): every arm ends the events at once, work or not, so a
 * backend's notifications are never held; nothing is counted as spurious. */
static void test_idle_eoi_now_never_holds_a_port(void)
{
    struct sx_idle idle;
    const struct sx_idle_opts o = { .spin_ns = 0, .eoi_now = true };
    sx_idle_init(&idle, ge, &o, NULL, 0);
    struct pollfd pfd = { .fd = sx_evtchn_fd(ge), .events = POLLIN };
    for (int i = 0; i < 6; i++) {   /* six wakes in a row that found nothing */
        CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
        uint64_t t = sx_now_ns();
        CU_ASSERT_EQUAL(sx_idle_poll(&idle, &pfd, 1, 5000), 1);
        CU_ASSERT(sx_now_ns() - t < 1000000000u);
        CU_ASSERT_EQUAL(sx_idle_arm(&idle), 1);
        CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&idle.eoi, sx_now_ns()), -1);
    }
    CU_ASSERT_EQUAL(idle.eoi.spurious, 0);
    CU_ASSERT_EQUAL(sx_idle_arm(&idle), 0);   /* nothing pending: nothing taken */
    sx_idle_fini(&idle);
}

/* Work that shows up within the first microseconds of a yielding spin costs no yield (before,
 * every 16th round yielded: 2 system calls for 33 rounds); a spin that goes on yields. */
static void test_spin_yields_only_once_it_has_lasted(void)
{
    struct counting_pred c = { .true_at = 33 };
    yields = 0;
    uint64_t t0 = sx_now_ns();
    CU_ASSERT_TRUE(sx_idle_spin_budget_yield(counting, &c, 1000000));
    uint64_t took = sx_now_ns() - t0;
    CU_ASSERT_EQUAL(c.calls, 33);
    if (took < SX_SPIN_YIELD_AFTER_NS - 1000) {
        CU_ASSERT_EQUAL(yields, 0);
    } else {
        printf("  (33 rounds took %llu ns here: the no-yield check needs them faster)\n",
               (unsigned long long)took);
    }
    struct counting_pred never = { .true_at = 0 };
    yields = 0;
    CU_ASSERT_FALSE(sx_idle_spin_budget_yield(counting, &never, 200000));
    CU_ASSERT(yields > 0);
    yields = 0;
    CU_ASSERT_FALSE(sx_idle_spin_budget(counting, &never, 200000));   /* the plain one never */
    CU_ASSERT_EQUAL(yields, 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_idle_no_spin_after_a_wake_without_work),
    SX_TEST(test_idle_adaptive_budget_follows_the_sleeps),
    SX_TEST(test_idle_throttled_port_wakes_the_loop_when_its_delay_ends),
    SX_TEST(test_idle_eoi_now_never_holds_a_port),
    SX_TEST(test_spin_yields_only_once_it_has_lasted),
};

SX_TEST_MAIN("ring_idle", cases, setup, teardown)
