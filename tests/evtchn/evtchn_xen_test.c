/*
 * evtchn/evtchn_xen.c against a fake libxenevtchn (tests/fakes/fake_xenevtchn.c): errno
 * conversion, pending/-EAGAIN without blocking, a pollable fd, the emulated mask, open failure
 * and NULL-safe close.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>   /* platform/platform.h uses size_t without including it */

#include "evtchn/evtchn_impl.h"
#include "tests/fakes/fake_xenevtchn.h"
#include "tests/sxtest.h"

static const struct sx_evtchn_ops *E = &sx_evtchn_xen_ops;
static struct sx_plat plat = { .kind = SX_PLAT_XEN, .self = 0 };

static void *open_ev(void)
{
    void *priv = NULL;

    fake_evtchn_reset();
    CU_ASSERT_EQUAL_FATAL(E->open(&priv, &plat), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(priv);
    return priv;
}

static bool readable(void *priv)
{
    struct pollfd pfd = { .fd = E->fd(priv), .events = POLLIN };

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void test_open_failure_returns_neg_errno(void)
{
    void *priv = (void *)&plat;

    fake_evtchn_reset();
    fake_evtchn.open_errno = ENOENT;
    CU_ASSERT_EQUAL(E->open(&priv, &plat), -ENOENT);
    CU_ASSERT_PTR_NULL(priv);
    CU_ASSERT_EQUAL(fake_evtchn.live_handles, 0);
}

static void test_close_is_null_safe_and_releases_handle(void)
{
    void *priv = open_ev();

    CU_ASSERT_EQUAL(fake_evtchn.live_handles, 1);
    E->close(priv);
    CU_ASSERT_EQUAL(fake_evtchn.closes, 1);
    CU_ASSERT_EQUAL(fake_evtchn.live_handles, 0);
    E->close(NULL);
    CU_ASSERT_EQUAL(fake_evtchn.closes, 1);
}

static void test_pending_empty_is_eagain_without_blocking(void)
{
    void *priv = open_ev();

    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    CU_ASSERT_EQUAL(fake_evtchn.pending_calls, 1);
    CU_ASSERT_EQUAL(fake_evtchn.would_block, 0);       /* the driver fd was made O_NONBLOCK */
    E->close(priv);
}

static void test_pending_returns_fake_port_and_fd_polls(void)
{
    void *priv = open_ev();

    CU_ASSERT(E->fd(priv) >= 0);
    CU_ASSERT_FALSE(readable(priv));
    CU_ASSERT_EQUAL_FATAL(fake_evtchn_fire(9), 0);
    CU_ASSERT_EQUAL_FATAL(fake_evtchn_fire(12), 0);
    CU_ASSERT_TRUE(readable(priv));
    CU_ASSERT_EQUAL(E->pending(priv), 9);
    CU_ASSERT_EQUAL(E->pending(priv), 12);
    CU_ASSERT_FALSE(readable(priv));
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    E->close(priv);
}

static void test_pending_error_passthrough(void)
{
    void *priv = open_ev();

    fake_evtchn.pending_errno = EFBIG;                 /* driver ring overflow */
    CU_ASSERT_EQUAL(E->pending(priv), -EFBIG);
    E->close(priv);
}

static void test_bind_returns_port_and_passes_arguments(void)
{
    void *priv = open_ev();

    fake_evtchn.next_port = 33;
    CU_ASSERT_EQUAL(E->bind_unbound(priv, 4), 33);
    CU_ASSERT_EQUAL(fake_evtchn.bind_domid, 4);
    CU_ASSERT_EQUAL(E->bind_interdomain(priv, 5, 71), 34);
    CU_ASSERT_EQUAL(fake_evtchn.bind_domid, 5);
    CU_ASSERT_EQUAL(fake_evtchn.bind_rport, 71);
    fake_evtchn.bind_errno = EINVAL;
    CU_ASSERT_EQUAL(E->bind_unbound(priv, 4), -EINVAL);
    fake_evtchn.bind_errno = ESRCH;
    CU_ASSERT_EQUAL(E->bind_interdomain(priv, 99, 1), -ESRCH);
    E->close(priv);
}

static void test_unbind_unknown_port_error_passthrough(void)
{
    void *priv = open_ev();
    int port = E->bind_unbound(priv, 1);

    CU_ASSERT_FATAL(port > 0);
    CU_ASSERT_EQUAL(E->unbind(priv, 500), -ENOTCONN);
    CU_ASSERT_EQUAL(fake_evtchn.unbind_port, 500);
    CU_ASSERT_EQUAL(E->unbind(priv, (evtchn_port_t)port), 0);
    CU_ASSERT_EQUAL(E->unbind(priv, (evtchn_port_t)port), -ENOTCONN);
    E->close(priv);
}

static void test_notify_and_unmask_pass_port_and_errno(void)
{
    void *priv = open_ev();

    CU_ASSERT_EQUAL(E->notify(priv, 17), 0);
    CU_ASSERT_EQUAL(fake_evtchn.notify_port, 17);
    fake_evtchn.notify_errno = EINVAL;
    CU_ASSERT_EQUAL(E->notify(priv, 17), -EINVAL);
    CU_ASSERT_EQUAL(E->unmask(priv, 18), 0);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_port, 18);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_calls, 1);
    fake_evtchn.unmask_errno = EBADF;
    CU_ASSERT_EQUAL(E->unmask(priv, 18), -EBADF);
    E->close(priv);
}

static void test_masked_port_event_is_held_until_unmask(void)
{
    void *priv = open_ev();
    int p = E->bind_unbound(priv, 1);

    CU_ASSERT_FATAL(p > 0);
    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL_FATAL(fake_evtchn_fire((evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);      /* taken from the driver, held */
    CU_ASSERT_FALSE(readable(priv));

    /* Unmask delivers the held event; the port stays disabled in the driver. */
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_calls, 0);
    CU_ASSERT_TRUE(readable(priv));
    CU_ASSERT_EQUAL(E->pending(priv), p);
    CU_ASSERT_FALSE(readable(priv));
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);

    /* The caller's unmask after handling it reaches the driver. */
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_calls, 1);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_port, (evtchn_port_t)p);
    E->close(priv);
}

static void test_masked_port_does_not_hide_other_ports(void)
{
    void *priv = open_ev();
    int p = E->bind_unbound(priv, 1), q = E->bind_unbound(priv, 1);

    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)p), 0);
    fake_evtchn_fire((evtchn_port_t)p);
    fake_evtchn_fire((evtchn_port_t)q);
    CU_ASSERT_EQUAL(E->pending(priv), q);
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    /* Masked without an event: unmask goes straight to the driver. */
    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)q), 0);
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)q), 0);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_port, (evtchn_port_t)q);
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL(E->pending(priv), p);
    E->close(priv);
}

static void test_mask_again_before_pending_holds_event_again(void)
{
    void *priv = open_ev();
    int p = E->bind_unbound(priv, 1);

    E->mask(priv, (evtchn_port_t)p);
    fake_evtchn_fire((evtchn_port_t)p);
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_TRUE(readable(priv));
    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_FALSE(readable(priv));
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    CU_ASSERT_EQUAL(E->unmask(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_EQUAL(E->pending(priv), p);
    E->close(priv);
}

static void test_mask_rejects_out_of_range_port(void)
{
    void *priv = open_ev();

    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)EVTCHN_FIFO_NR_CHANNELS), -EINVAL);
    CU_ASSERT_EQUAL(E->mask(priv, (evtchn_port_t)EVTCHN_FIFO_NR_CHANNELS - 1), 0);
    E->close(priv);
}

static void test_unbind_forgets_mask_state_for_reused_port(void)
{
    void *priv = open_ev();
    int p = E->bind_unbound(priv, 1);

    E->mask(priv, (evtchn_port_t)p);
    fake_evtchn_fire((evtchn_port_t)p);
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);
    E->unmask(priv, (evtchn_port_t)p);               /* on the ready set */
    CU_ASSERT_EQUAL(E->unbind(priv, (evtchn_port_t)p), 0);
    CU_ASSERT_FALSE(readable(priv));                 /* nothing delivered for a dead port */
    CU_ASSERT_EQUAL(E->pending(priv), -EAGAIN);

    fake_evtchn.next_port = (evtchn_port_t)p;        /* the driver reuses the number */
    CU_ASSERT_EQUAL(E->bind_unbound(priv, 2), p);
    fake_evtchn_fire((evtchn_port_t)p);
    CU_ASSERT_EQUAL(E->pending(priv), p);            /* not masked any more */
    E->close(priv);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_open_failure_returns_neg_errno),
    SX_TEST(test_close_is_null_safe_and_releases_handle),
    SX_TEST(test_pending_empty_is_eagain_without_blocking),
    SX_TEST(test_pending_returns_fake_port_and_fd_polls),
    SX_TEST(test_pending_error_passthrough),
    SX_TEST(test_bind_returns_port_and_passes_arguments),
    SX_TEST(test_unbind_unknown_port_error_passthrough),
    SX_TEST(test_notify_and_unmask_pass_port_and_errno),
    SX_TEST(test_masked_port_event_is_held_until_unmask),
    SX_TEST(test_masked_port_does_not_hide_other_ports),
    SX_TEST(test_mask_again_before_pending_holds_event_again),
    SX_TEST(test_mask_rejects_out_of_range_port),
    SX_TEST(test_unbind_forgets_mask_state_for_reused_port),
};

SX_TEST_MAIN("evtchn_xen", cases, NULL, NULL)
