/*
 * Event channels, shaped like libxenevtchn: one handle, one pollable fd, ports bound through it.
 * A port that fires is masked until sx_evtchn_unmask(); an event sent while masked stays pending
 * and is delivered at unmask. sim and xen implementations behind one opaque handle.
 * Notification on sim is a shared pending bit plus an eventfd write: no daemon round trip.
 *
 * All calls return >= 0 on success and -errno on failure.
 */
#ifndef SPLITXEN_EVTCHN_H
#define SPLITXEN_EVTCHN_H

#include <stdbool.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/event_channel.h>

#include "platform/platform.h"

struct sx_evtchn;

int sx_evtchn_open(struct sx_evtchn **out, struct sx_plat *p);
void sx_evtchn_close(struct sx_evtchn *e);               /* NULL-safe; unbinds every port */
/* Pollable: readable when a bound port has an event. */
int sx_evtchn_fd(struct sx_evtchn *e);

/* Allocate a port that `remote` may bind to. Returns the local port. */
int sx_evtchn_bind_unbound(struct sx_evtchn *e, domid_t remote);
/* Bind to `remote_port` of domain `remote` (which allocated it unbound for us).
 * Returns the local port. remote may be our own domain (a local loopback channel). */
int sx_evtchn_bind_interdomain(struct sx_evtchn *e, domid_t remote, evtchn_port_t remote_port);
int sx_evtchn_unbind(struct sx_evtchn *e, evtchn_port_t port);

/* Send an event to the other end of `port`. */
int sx_evtchn_notify(struct sx_evtchn *e, evtchn_port_t port);
/* Next port with an event (masked on return), or -EAGAIN when none. */
int sx_evtchn_pending(struct sx_evtchn *e);
int sx_evtchn_unmask(struct sx_evtchn *e, evtchn_port_t port);
int sx_evtchn_mask(struct sx_evtchn *e, evtchn_port_t port);
/* Take the events delivered on the handle and unmask each port at once: up to max of them
 * (0: until none is left; a peer that notifies without pause can keep that going). For a
 * consumer that trusts its peer (a frontend, a device model's own ports); a backend ends a
 * frontend's events through late EOI (sx_evtchn_eoi) instead. Returns the events taken, or
 * -errno when taking one failed (-EAGAIN only ends the loop). */
int sx_evtchn_drain(struct sx_evtchn *e, unsigned max);

/* Number of ports bound through this handle (leak checks, counters). */
unsigned sx_evtchn_nr_bound(const struct sx_evtchn *e);

/* The domain moved (sx_plat_move, sim): the handle follows it to p's connection and keeps its
 * fd, so a thread polling it needs no new one (it is woken once now). Its ports stay behind:
 * each is closed in the domain's new home, where it came back unbound with the domain, and
 * forgotten; bind again. -EOPNOTSUPP where the platform's own kernel does this (xen). */
int sx_evtchn_resume(struct sx_evtchn *e, struct sx_plat *p);

/* ------------------------------------------------------------ late EOI (lateeoi.c, XSA-332)
 *
 * Throttling of notifications that bring no work, as Linux's xen_irq_lateeoi does. A consumer
 * takes the events of its handle, does the work they announce, and only then ends them (the
 * "end of interrupt": the ports are unmasked), saying whether there was any work:
 *   - events that came with work: the ports are unmasked at once and the spurious count resets,
 *     so a well-behaved frontend never waits;
 *   - events that found nothing are spurious: the count grows, and from the second in a row on
 *     the ports stay masked for 1 << (count - 2) ms, at most SX_EOI_MAX_DELAY_MS (Linux's rule,
 *     with a 1 ms tick). What the frontend sends meanwhile stays pending and is delivered when
 *     the delay ends; work seen in the meantime (a final ring check, another fd) ends it.
 * Once its count has grown, a guest that notifies in a loop costs one wakeup per second.
 * One sx_evtchn_eoi covers every port of one handle (a queue's ports); one thread uses it.
 * Counters go to a stats file when one is given: SX_EOI_STAT_NAMES, consecutive from `base`.
 */
#define SX_EOI_MAX_DELAY_MS 1000u
#define SX_EOI_MAX_HELD 8u
#define SX_EOI_NR_STATS 3
#define SX_EOI_STAT_NAMES "spurious_events", "eoi_delays", "eoi_delayed_us"

struct sx_stats;

struct sx_evtchn_eoi {
    struct sx_evtchn *e;
    struct sx_stats *st;              /* NULL: no counters */
    unsigned st_base;
    unsigned spurious;                /* consecutive spurious events */
    unsigned nheld;
    evtchn_port_t held[SX_EOI_MAX_HELD];   /* taken, still masked */
    uint64_t until_ns;                /* CLOCK_MONOTONIC: when held ports are unmasked */
};

/* Start with nothing held. st may be NULL; else st's counters base .. base + 2 are
 * SX_EOI_STAT_NAMES. */
void sx_evtchn_eoi_init(struct sx_evtchn_eoi *l, struct sx_evtchn *e, struct sx_stats *st,
                        unsigned st_base);
/* Take every event delivered on the handle (sx_evtchn_pending masks each port) and end them:
 * `work` says whether anything was done since the last call. Returns the number of events
 * taken, or -errno from the platform (an unmask that failed). */
int sx_evtchn_eoi(struct sx_evtchn_eoi *l, bool work, uint64_t now_ns);
/* Milliseconds until the held ports are due (rounded up; 0: due now), or -1 when none is held:
 * cap a poll timeout with it. */
int sx_evtchn_eoi_timeout_ms(const struct sx_evtchn_eoi *l, uint64_t now_ns);
/* Unmask the held ports once their delay has passed (or now, with force: before the consumer
 * stops). Returns 0 or the first -errno. */
int sx_evtchn_eoi_expire(struct sx_evtchn_eoi *l, uint64_t now_ns, bool force);

#endif
