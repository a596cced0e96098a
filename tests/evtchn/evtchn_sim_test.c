/* Event channels on the sim hypervisor: binding, masking, delivery, across processes. */
#include <errno.h>
#include <poll.h>
#include <sys/wait.h>

#include "evtchn/evtchn.h"
#include "tests/sxtest.h"
#include "tests/xen-core/simenv.h"

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
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE(readable(ge, 1000));
        int p = sx_evtchn_pending(ge);
        if (p == g1) seen |= 1;
        if (p == g2) seen |= 2;
    }
    CU_ASSERT_EQUAL(seen, 3);
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

static const struct sx_test_case cases[] = {
    SX_TEST(test_notify_delivers_once_and_masks_until_unmask),
    SX_TEST(test_explicit_mask_holds_events),
    SX_TEST(test_bind_checks_the_allowed_domain_and_port),
    SX_TEST(test_unbind_leaves_far_end_unbound_and_sends_are_dropped),
    SX_TEST(test_two_ports_on_one_handle_are_both_delivered),
    SX_TEST(test_closing_a_handle_unbinds_its_ports),
    SX_TEST(test_cross_process_ping_pong),
};

SX_TEST_MAIN("evtchn_sim", cases, setup, teardown)
