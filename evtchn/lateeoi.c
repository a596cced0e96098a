/*
 * Late EOI: notifications that bring no work are throttled (XSA-332), with the rule of Linux's
 * xen_irq_lateeoi_locked (drivers/xen/events/events_base.c) on a 1 ms tick. The contract is in
 * evtchn/evtchn.h. Built only on the handle's own calls (pending, unmask), so it works the same
 * on both platforms: a port sx_evtchn_pending returned stays masked until it is unmasked here,
 * and an event the frontend sends while it is masked stays pending until then.
 */
#define SX_LOG_MODULE "evtchn"
#include "evtchn/evtchn.h"

#include "common/stats.h"

enum { ST_SPURIOUS, ST_DELAYS, ST_DELAYED_US };

/* The count stops growing once 1 << count reaches four times the cap (Linux: HZ << 2): the
 * delay is at the cap long before, and the shift cannot overflow. */
#define COUNT_LIMIT (4u * SX_EOI_MAX_DELAY_MS)

static void stat_add(struct sx_evtchn_eoi *l, unsigned i, uint64_t n)
{
    if (l->st)
        sx_stats_add(l->st, l->st_base + i, n);
}

void sx_evtchn_eoi_init(struct sx_evtchn_eoi *l, struct sx_evtchn *e, struct sx_stats *st,
                        unsigned st_base)
{
    *l = (struct sx_evtchn_eoi){ .e = e, .st = st, .st_base = st_base };
}

/* Unmask every held port. Returns 0 or the first -errno. */
static int release(struct sx_evtchn_eoi *l)
{
    int rc = 0;
    for (unsigned i = 0; i < l->nheld; i++) {
        int r = sx_evtchn_unmask(l->e, l->held[i]);
        if (r < 0 && rc == 0)
            rc = r;
    }
    l->nheld = 0;
    l->until_ns = 0;
    return rc;
}

/* The delay in ms after `count` spurious events in a row: none for the first, then 1, 2, 4, ...
 * up to the cap (Linux: 1 << (count - 2) jiffies, at most HZ). */
static uint64_t delay_ms(unsigned count)
{
    if (count < 2)
        return 0;
    uint64_t d = 1ull << (count - 2);
    return d < SX_EOI_MAX_DELAY_MS ? d : SX_EOI_MAX_DELAY_MS;
}

int sx_evtchn_eoi(struct sx_evtchn_eoi *l, bool work, uint64_t now_ns)
{
    int n = 0, rc = 0, port;
    /* Take what was delivered; each port comes back masked, so this ends even while the
     * frontend keeps notifying. */
    while ((port = sx_evtchn_pending(l->e)) >= 0) {
        n++;
        if (l->nheld < SX_EOI_MAX_HELD) {
            l->held[l->nheld++] = (evtchn_port_t)port;
        } else {
            /* More ports than a consumer binds: never held. */
            int r = sx_evtchn_unmask(l->e, (evtchn_port_t)port);
            if (r < 0 && rc == 0)
                rc = r;
        }
    }
    int r = 0;
    if (work) {
        l->spurious = 0;
        r = release(l);
    } else if (n == 0) {
        r = sx_evtchn_eoi_expire(l, now_ns, false);
    } else {
        if ((1u << l->spurious) < COUNT_LIMIT)
            l->spurious++;
        stat_add(l, ST_SPURIOUS, 1);
        uint64_t d = delay_ms(l->spurious);
        if (d && l->nheld) {
            l->until_ns = now_ns + d * 1000000u;
            stat_add(l, ST_DELAYS, 1);
            stat_add(l, ST_DELAYED_US, d * 1000u);
        } else {
            r = release(l);
        }
    }
    if (r < 0 && rc == 0)
        rc = r;
    return rc < 0 ? rc : n;
}

int sx_evtchn_eoi_timeout_ms(const struct sx_evtchn_eoi *l, uint64_t now_ns)
{
    if (!l->nheld)
        return -1;
    if (l->until_ns <= now_ns)
        return 0;
    return (int)((l->until_ns - now_ns + 999999u) / 1000000u);
}

int sx_evtchn_eoi_expire(struct sx_evtchn_eoi *l, uint64_t now_ns, bool force)
{
    if (!l->nheld || (!force && now_ns < l->until_ns))
        return 0;
    return release(l);
}
