/*
 * The idle step of a ring thread: spin on the rings, arm (late EOI of the event channel), then
 * sleep in poll(2). See ring/ring.h (sx_idle) for the loop it belongs in.
 */
#define SX_LOG_MODULE "ring"
#include "clock.h"
#include "ring/ring.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

void sx_idle_init(struct sx_idle *s, struct sx_evtchn *e, const struct sx_idle_opts *o,
                  struct sx_stats *st, unsigned st_base)
{
    *s = (struct sx_idle){ .o = *o, .spin = o->spin_ns };
    sx_evtchn_eoi_init(&s->eoi, e, st, st_base);
}

/* The one spin loop: pred until it holds or budget_ns passed, the clock read every mask + 1
 * rounds (a power of two). With yield, once the spin has lasted SX_SPIN_YIELD_AFTER_NS it
 * calls sched_yield() every 16 rounds: work that comes at once (a peer on another CPU) is
 * caught without a system call, and a spin that goes on is likely waiting for a peer that
 * needs this very CPU (more runnable threads than CPUs: many guests, a busy machine), which
 * the yield lets run. pred runs at least once. */
static bool spin(bool (*pred)(void *arg), void *arg, uint64_t budget_ns, unsigned mask,
                 bool yield)
{
    uint64_t now = sx_now_ns(), end = now + budget_ns, late = now + SX_SPIN_YIELD_AFTER_NS;
    unsigned it = 0;
    do {
        if (pred(arg))
            return true;
        sx_cpu_relax();
        if ((++it & 15) == 0 && yield && now >= late)
            sched_yield();
        if (!(it & mask))
            now = sx_now_ns();
    } while ((it & mask) || now < end);
    return false;
}

bool sx_idle_spin_budget_yield(bool (*pred)(void *arg), void *arg, uint64_t budget_ns)
{
    if (budget_ns == 0)
        return pred(arg);
    return spin(pred, arg, budget_ns, 7, true);
}

bool sx_idle_spin_budget(bool (*pred)(void *arg), void *arg, uint64_t budget_ns)
{
    if (budget_ns == 0)
        return pred(arg);
    return spin(pred, arg, budget_ns, 7, false);
}

bool sx_idle_spin(struct sx_idle *s, bool (*pred)(void *arg), void *arg)
{
    const uint64_t spin_min = s->o.spin_ns / 16;
    /* No work since the last arm: this wake was an empty notification or a timeout, and
     * spinning would only hand a storming frontend our CPU. */
    if (!s->worked || !s->spin || (s->o.adaptive && s->spin < spin_min))
        return false;
    return spin(pred, arg, s->spin, s->o.clock_rounds > 1 ? s->o.clock_rounds - 1 : 0,
                s->o.yield);
}

int sx_idle_arm(struct sx_idle *s)
{
    int rc = s->o.eoi_now ? sx_evtchn_drain(s->eoi.e, 0)
                          : sx_evtchn_eoi(&s->eoi, s->worked, sx_now_ns());
    s->worked = false;
    return rc;
}

int sx_idle_poll(struct sx_idle *s, struct pollfd *pfd, unsigned n, int timeout_ms)
{
    uint64_t t0 = sx_now_ns();
    int held = sx_evtchn_eoi_timeout_ms(&s->eoi, t0);
    if (held >= 0 && (timeout_ms < 0 || held < timeout_ms))
        timeout_ms = held;
    int rc = poll(pfd, n, timeout_ms);
    if (rc < 0)
        rc = -errno;
    uint64_t t1 = sx_now_ns();
    if (s->o.adaptive && s->o.spin_ns) {
        const uint64_t max = s->o.spin_ns, min = max / 16;
        if (t1 - t0 < max)
            s->spin = s->spin < min ? min : (s->spin * 2 > max ? max : s->spin * 2);
        else
            s->spin /= 2;
    }
    sx_evtchn_eoi_expire(&s->eoi, t1, false);
    return rc;
}

void sx_idle_fini(struct sx_idle *s)
{
    sx_evtchn_eoi_expire(&s->eoi, 0, true);
}
