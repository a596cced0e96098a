/* Event channels on the sim hypervisor: binding, masking, delivery, across processes; late EOI
 * (the XSA-332 throttle) on a real pair of ports. */
#include <errno.h>
#include <poll.h>
#include <sys/wait.h>

#include "common/stats.h"
#include "evtchn/evtchn.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"

static struct simenv env;
static struct sx_plat *dom0, *guest;
static domid_t gid, other;

static int setup(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    if (!dom0)
        return 1;
    int d = sxc_domain_create(dom0->conn, "guest", SXD_TYPE_PV, 16, 1, false);
    int o = sxc_domain_create(dom0->conn, "other", SXD_TYPE_PV, 16, 1, false);
    if (d < 0 || o < 0)
        return 1;
    gid = (domid_t)d;
    other = (domid_t)o;
    guest = simenv_plat(&env, gid);
    return guest ? 0 : 1;
}

static int teardown(void)
{
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static bool readable(struct sx_evtchn *e, int ms)
{
    struct pollfd p = { .fd = sx_evtchn_fd(e), .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

/* guest allocates unbound for dom0, dom0 binds: returns both ports. */
static void pair(struct sx_evtchn *ge, struct sx_evtchn *be, int *gport, int *bport)
{
    *gport = sx_evtchn_bind_unbound(ge, 0);
    CU_ASSERT_FATAL(*gport > 0);
    *bport = sx_evtchn_bind_interdomain(be, gid, (evtchn_port_t)*gport);
    CU_ASSERT_FATAL(*bport > 0);
}

static void test_notify_delivers_once_and_masks_until_unmask(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int gp, bp;
    pair(ge, be, &gp, &bp);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), -EAGAIN);
    CU_ASSERT_FALSE(readable(ge, 0));
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    CU_ASSERT_TRUE(readable(ge, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), gp);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), -EAGAIN);
    /* Delivered ports are masked: a second event stays pending until unmask. */
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    CU_ASSERT_FALSE(readable(ge, 50));
    CU_ASSERT_EQUAL(sx_evtchn_unmask(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_TRUE(readable(ge, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), gp);
    CU_ASSERT_EQUAL(sx_evtchn_unmask(ge, (evtchn_port_t)gp), 0);
    /* And the other direction. */
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_TRUE(readable(be, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_pending(be), bp);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
}

static void test_explicit_mask_holds_events(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int gp, bp;
    pair(ge, be, &gp, &bp);
    CU_ASSERT_EQUAL(sx_evtchn_mask(ge, (evtchn_port_t)gp), 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    CU_ASSERT_FALSE(readable(ge, 50));
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), -EAGAIN);
    CU_ASSERT_EQUAL(sx_evtchn_unmask(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), gp);   /* five sends coalesce into one event */
    CU_ASSERT_EQUAL(sx_evtchn_unmask(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), -EAGAIN);
    CU_ASSERT_EQUAL(sx_evtchn_mask(ge, 4000), -EINVAL);   /* not ours */
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
}

/* sx_evtchn_drain takes every delivered event and unmasks its port (a later notify is
 * delivered again), stops at max, and reports nothing when nothing is pending. */
static void test_drain_takes_and_unmasks_up_to_max(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int gp[3], bp[3];
    for (int i = 0; i < 3; i++)
        pair(ge, be, &gp[i], &bp[i]);
    CU_ASSERT_EQUAL(sx_evtchn_drain(ge, 0), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp[i]), 0);
    CU_ASSERT_TRUE(readable(ge, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_drain(ge, 2), 2);   /* the bound holds */
    CU_ASSERT_EQUAL(sx_evtchn_drain(ge, 0), 1);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), -EAGAIN);
    /* Unmasked: each port delivers again. */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp[i]), 0);
    CU_ASSERT_TRUE(readable(ge, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_drain(ge, 0), 3);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
}

static void test_bind_checks_the_allowed_domain_and_port(void)
{
    struct sx_evtchn *ge, *be, *oe;
    struct sx_plat *op = simenv_plat(&env, other);
    CU_ASSERT_PTR_NOT_NULL_FATAL(op);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&oe, op), 0);
    int gp = sx_evtchn_bind_unbound(ge, 0);
    CU_ASSERT_FATAL(gp > 0);
    CU_ASSERT_EQUAL(sx_evtchn_bind_interdomain(oe, gid, (evtchn_port_t)gp), -EINVAL);  /* for dom0 only */
    CU_ASSERT_EQUAL(sx_evtchn_bind_interdomain(be, gid, 3999), -EINVAL);               /* free port */
    CU_ASSERT_EQUAL(sx_evtchn_bind_interdomain(be, 555, 1), -ESRCH);                   /* no domain */
    int bp = sx_evtchn_bind_interdomain(be, gid, (evtchn_port_t)gp);
    CU_ASSERT(bp > 0);
    CU_ASSERT_EQUAL(sx_evtchn_bind_interdomain(be, gid, (evtchn_port_t)gp), -EINVAL);  /* taken */
    CU_ASSERT_EQUAL(sx_evtchn_nr_bound(be), 1);
    sx_evtchn_close(oe);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
    sx_plat_close(op);
}

static void test_unbind_leaves_far_end_unbound_and_sends_are_dropped(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int gp, bp;
    pair(ge, be, &gp, &bp);
    CU_ASSERT_EQUAL(sx_evtchn_unbind(ge, (evtchn_port_t)gp), 0);
    struct sxc_dom *d0;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, 0, &d0), 0);
    CU_ASSERT_EQUAL(atomic_load(&sxd_ports(d0->shared)[bp].state), SXD_PORT_UNBOUND);
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    CU_ASSERT_EQUAL(sx_evtchn_unbind(ge, (evtchn_port_t)gp), -EINVAL);
    /* The guest can rebind to the same port of dom0, as after a frontend restart. */
    int gp2 = sx_evtchn_bind_interdomain(ge, 0, (evtchn_port_t)bp);
    CU_ASSERT_FATAL(gp2 > 0);
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    CU_ASSERT_TRUE(readable(ge, 1000));
    CU_ASSERT_EQUAL(sx_evtchn_pending(ge), gp2);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
}

/* Both ports p1 and p2 of handle e have an event: each is delivered once. */
static void both_delivered(struct sx_evtchn *e, int p1, int p2)
{
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE(readable(e, 1000));
        int p = sx_evtchn_pending(e);
        if (p == p1) seen |= 1;
        if (p == p2) seen |= 2;
    }
    CU_ASSERT_EQUAL(seen, 3);
}

static void test_two_ports_on_one_handle_are_both_delivered(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int g1, b1, g2, b2;
    pair(ge, be, &g1, &b1);
    pair(ge, be, &g2, &b2);
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)b1), 0);
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)b2), 0);
    both_delivered(ge, g1, g2);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
}

static void test_closing_a_handle_unbinds_its_ports(void)
{
    struct sx_evtchn *ge, *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int gp, bp;
    pair(ge, be, &gp, &bp);
    sx_evtchn_close(ge);
    struct sxc_dom *d0;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, 0, &d0), 0);
    CU_ASSERT_EQUAL(atomic_load(&sxd_ports(d0->shared)[bp].state), SXD_PORT_UNBOUND);
    sx_evtchn_close(be);
}

/* The far end is another process: events cross without the daemon, in both directions. */
static void test_cross_process_ping_pong(void)
{
    struct sx_evtchn *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int bp = sx_evtchn_bind_unbound(be, gid);
    CU_ASSERT_FATAL(bp > 0);
    const int rounds = 2000;
    pid_t pid = fork();
    if (pid == 0) {
        struct sx_plat *p;
        struct sx_evtchn *ge;
        if (sx_plat_open(&p, SX_PLAT_SIM, gid, env.sock) < 0 || sx_evtchn_open(&ge, p) < 0)
            _exit(10);
        int gp = sx_evtchn_bind_interdomain(ge, 0, (evtchn_port_t)bp);
        if (gp < 0)
            _exit(11);
        for (int i = 0; i < rounds; i++) {
            struct pollfd pf = { .fd = sx_evtchn_fd(ge), .events = POLLIN };
            if (poll(&pf, 1, 5000) != 1)
                _exit(12);
            int port = sx_evtchn_pending(ge);
            if (port == -EAGAIN) {
                i--;
                continue;
            }
            if (port != gp)
                _exit(13);
            sx_evtchn_unmask(ge, (evtchn_port_t)gp);
            sx_evtchn_notify(ge, (evtchn_port_t)gp);
        }
        sx_evtchn_close(ge);
        sx_plat_close(p);
        _exit(0);
    }
    /* Wait until the child bound the port. */
    struct sxc_dom *d0;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, 0, &d0), 0);
    for (int i = 0; i < 5000 && atomic_load(&sxd_ports(d0->shared)[bp].state) != SXD_PORT_INTERDOMAIN; i++)
        usleep(1000);
    int got = 0;
    for (int i = 0; i < rounds; i++) {
        if (sx_evtchn_notify(be, (evtchn_port_t)bp) < 0)
            break;
        bool ok = false;
        while (readable(be, 5000)) {
            int port = sx_evtchn_pending(be);
            if (port == bp) {
                sx_evtchn_unmask(be, (evtchn_port_t)bp);
                ok = true;
                break;
            }
        }
        if (!ok)
            break;
        got++;
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT_EQUAL(got, rounds);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sx_evtchn_close(be);
}

/* ------------------------------------------------------------------ late EOI */

#define MS 1000000ull

/* A guest handle and a dom0 handle with `n` (1 or 2) channels between them. */
struct chans {
    struct sx_evtchn *ge, *be;
    int gp[2], bp[2];
};

static void chans_open(struct chans *c, int n)
{
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&c->ge, guest), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&c->be, dom0), 0);
    for (int i = 0; i < n; i++)
        pair(c->ge, c->be, &c->gp[i], &c->bp[i]);
}

static void chans_close(struct chans *c)
{
    sx_evtchn_close(c->ge);
    sx_evtchn_close(c->be);
}

static uint64_t counter(struct sx_stats *st, const char *name)
{
    return sx_stats_get(st, name);
}

/* Notify from the guest, then end the event at `now` as the backend would after a look that
 * found nothing (work false) or something. Returns what sx_evtchn_eoi returned. */
static int event_then_eoi(struct sx_evtchn *ge, int gp, struct sx_evtchn_eoi *l, bool work,
                          uint64_t now)
{
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
    return sx_evtchn_eoi(l, work, now);
}

/* One spurious event (sent, then ended without work at *now), then time runs to the end of
 * the delay it caused and the port is unmasked. Returns the delay in ms. */
static int spurious_round(struct sx_evtchn *ge, int gp, struct sx_evtchn_eoi *l, uint64_t *now)
{
    CU_ASSERT_EQUAL(event_then_eoi(ge, gp, l, false, *now), 1);
    int d = sx_evtchn_eoi_timeout_ms(l, *now);
    if (d > 0)
        *now += (uint64_t)d * MS;
    CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(l, *now, false), 0);
    return d;
}

/* Linux's rule: the first spurious event is free, then the port stays masked 1, 2, 4 ... ms,
 * at most 1000 ms; an event sent while it is masked waits and is delivered when the delay
 * ends; every spurious event and delay is counted. */
static void test_lateeoi_spurious_events_delay_the_unmask_up_to_the_cap(void)
{
    static const char *const names[] = { "other", SX_EOI_STAT_NAMES, NULL };
    struct sx_stats st;
    CU_ASSERT_EQUAL_FATAL(sx_stats_create(&st, "test", gid, 1, names), 0);
    struct chans c;
    chans_open(&c, 1);
    struct sx_evtchn *ge = c.ge, *be = c.be;
    int gp = c.gp[0], bp = c.bp[0];
    struct sx_evtchn_eoi l;
    sx_evtchn_eoi_init(&l, be, &st, 1);
    uint64_t now = 1000 * MS, want_us = 0;
    /* First spurious event: no delay, the port is unmasked at once. */
    CU_ASSERT_EQUAL(event_then_eoi(ge, gp, &l, false, now), 1);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), -1);
    static const unsigned delays[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000 };
    for (unsigned i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        CU_ASSERT_EQUAL(event_then_eoi(ge, gp, &l, false, now), 1);
        CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), (int)delays[i]);
        want_us += delays[i] * 1000u;
        /* Held: a new event stays pending, nothing is delivered before the delay ends. */
        CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
        CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(&l, now + delays[i] * MS - 1, false), 0);
        CU_ASSERT_FALSE(readable(be, 0));
        CU_ASSERT_EQUAL(sx_evtchn_pending(be), -EAGAIN);
        now += delays[i] * MS;
        CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), 0);
        CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(&l, now, false), 0);
        CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), -1);
        CU_ASSERT_TRUE(readable(be, 1000));   /* the held event, delivered at the unmask */
        CU_ASSERT_EQUAL(sx_evtchn_pending(be), bp);
        CU_ASSERT_EQUAL(sx_evtchn_unmask(be, (evtchn_port_t)bp), 0);
    }
    CU_ASSERT_EQUAL(counter(&st, "spurious_events"), 14);
    CU_ASSERT_EQUAL(counter(&st, "eoi_delays"), 13);
    CU_ASSERT_EQUAL(counter(&st, "eoi_delayed_us"), want_us);
    CU_ASSERT_EQUAL(counter(&st, "other"), 0);
    chans_close(&c);
    sx_stats_destroy(&st);
}

/* An event that came with work ends the throttle at once: a held port is unmasked without
 * waiting for its delay, and the count starts over (the next spurious event is free again). A
 * look with no event at all decides nothing. */
static void test_lateeoi_work_unmasks_at_once_and_resets(void)
{
    struct chans c;
    chans_open(&c, 1);
    struct sx_evtchn *ge = c.ge, *be = c.be;
    int gp = c.gp[0];
    struct sx_evtchn_eoi l;
    sx_evtchn_eoi_init(&l, be, NULL, 0);
    uint64_t now = 5000 * MS;
    for (int i = 0; i < 7; i++)
        spurious_round(ge, gp, &l, &now);
    CU_ASSERT_EQUAL(event_then_eoi(ge, gp, &l, false, now), 1);
    CU_ASSERT_EQUAL(l.spurious, 8);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), 64);
    /* No event, no work: nothing changes while the delay runs. */
    CU_ASSERT_EQUAL(sx_evtchn_eoi(&l, false, now + MS), 0);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now + MS), 63);
    /* The frontend publishes real work while its port is held; the backend sees it (a final
     * ring check) and ends the events with work: unmasked now, count reset. */
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_EQUAL(sx_evtchn_eoi(&l, true, now + 2 * MS), 0);
    CU_ASSERT_EQUAL(l.spurious, 0);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now + 2 * MS), -1);
    CU_ASSERT_TRUE(readable(be, 1000));
    /* That event, taken with work: not spurious. */
    CU_ASSERT_EQUAL(sx_evtchn_eoi(&l, true, now + 3 * MS), 1);
    CU_ASSERT_EQUAL(l.spurious, 0);
    /* Spurious again: the first is free. */
    CU_ASSERT_EQUAL(event_then_eoi(ge, gp, &l, false, now + 4 * MS), 1);
    CU_ASSERT_EQUAL(l.spurious, 1);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now + 4 * MS), -1);
    /* Before a consumer stops, force releases what is held. */
    CU_ASSERT_EQUAL(event_then_eoi(ge, gp, &l, false, now + 5 * MS), 1);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now + 5 * MS), 1);
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)gp), 0);
    CU_ASSERT_FALSE(readable(be, 0));
    CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(&l, 0, true), 0);
    CU_ASSERT_TRUE(readable(be, 1000));
    chans_close(&c);
}

/* A storm on one handle with two ports (split tx/rx channels): taking the events ends even
 * while the frontend keeps notifying (each port comes back masked), and both ports are held. */
static void test_lateeoi_holds_every_port_of_the_handle(void)
{
    struct chans c;
    chans_open(&c, 2);
    struct sx_evtchn *ge = c.ge, *be = c.be;
    int g1 = c.gp[0], b1 = c.bp[0], g2 = c.gp[1], b2 = c.bp[1];
    struct sx_evtchn_eoi l;
    sx_evtchn_eoi_init(&l, be, NULL, 0);
    uint64_t now = 9000 * MS;
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 100; k++) {   /* a storm: many sends, one event per port */
            CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)g1), 0);
            CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)g2), 0);
        }
        CU_ASSERT_EQUAL(sx_evtchn_eoi(&l, false, now), 2);
        if (i < 2) {
            now += (uint64_t)i * MS;   /* the first is free, the second held 1 ms */
            CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(&l, now, false), 0);
        }
    }
    CU_ASSERT_EQUAL(l.nheld, 2);
    CU_ASSERT_EQUAL(sx_evtchn_eoi_timeout_ms(&l, now), 2);
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)g1), 0);
    CU_ASSERT_EQUAL(sx_evtchn_notify(ge, (evtchn_port_t)g2), 0);
    CU_ASSERT_FALSE(readable(be, 0));
    CU_ASSERT_EQUAL(sx_evtchn_eoi_expire(&l, now + 2 * MS, false), 0);
    both_delivered(be, b1, b2);
    chans_close(&c);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_notify_delivers_once_and_masks_until_unmask),
    SX_TEST(test_explicit_mask_holds_events),
    SX_TEST(test_drain_takes_and_unmasks_up_to_max),
    SX_TEST(test_bind_checks_the_allowed_domain_and_port),
    SX_TEST(test_unbind_leaves_far_end_unbound_and_sends_are_dropped),
    SX_TEST(test_two_ports_on_one_handle_are_both_delivered),
    SX_TEST(test_closing_a_handle_unbinds_its_ports),
    SX_TEST(test_cross_process_ping_pong),
    SX_TEST(test_lateeoi_spurious_events_delay_the_unmask_up_to_the_cap),
    SX_TEST(test_lateeoi_work_unmasks_at_once_and_resets),
    SX_TEST(test_lateeoi_holds_every_port_of_the_handle),
};

SX_TEST_MAIN("evtchn_sim", cases, setup, teardown)
