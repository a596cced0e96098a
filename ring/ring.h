/*
 * Shared-ring helpers over <xen/io/ring.h>, generic over the entry type.
 *
 * One implementation serves every split-driver ring (blkif, netif tx/rx, netif ctrl): it works
 * on byte sizes, but the memory it reads and writes is laid out exactly as DEFINE_RING_TYPES
 * lays out a `struct <name>_sring`:
 *
 *   offset 0   RING_IDX req_prod, req_event, rsp_prod, rsp_event;
 *   offset 16  pvt (4 bytes) + __pad (44 bytes)
 *   offset 64  ring[nr_ents] of union { req; rsp; }, each max(sizeof req, sizeof rsp) bytes
 *
 * and nr_ents is __RD32((ring_bytes - 64) / entry_size), as __RING_SIZE computes it. The unit
 * tests check all of this against RING_SIZE()/offsetof of real blkif and netif rings.
 *
 * The back side never hands out a pointer into the shared ring: sx_back_ring_take() copies each
 * request once into caller memory (validate the copy, never the slot), and a frontend that moves
 * req_prod past what the ring can hold halts that ring (-EPROTO) and nothing else. The front side
 * does the same for a backend that produces more responses than requests are outstanding.
 *
 * Notification follows ring.h's event-index protocol: put N entries, push once, notify when the
 * push says so; before sleeping, run the final check (no lost wakeups). sx_idle (idle.c) is the
 * one idle step of every ring loop, backends' and frontends': spin on the ring for a bounded
 * time, arm the event channel (a backend throttles notifications that bring no work: late EOI,
 * XSA-332), re-check, sleep.
 *
 * A ring is owned by one thread on each side; no locking inside.
 * Functions return 0 (or a count / boolean) on success and -errno on failure.
 */
#ifndef SPLITXEN_RING_H
#define SPLITXEN_RING_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "evtchn/evtchn.h"
#include "barrier.h"   /* must precede <xen/io/ring.h>: defines xen_mb/xen_rmb/xen_wmb */
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/ring.h>

/* <xen/io/ring.h> redefines xen_mb/xen_rmb/xen_wmb as the kernel's mb()/rmb()/wmb() unless
 * __XEN_INTERFACE_VERSION__ >= 0x00030208 (a userspace build gets 0 by default), silently
 * replacing barrier.h's definitions. Restore them, so ring.h's own macros (RING_PUSH_*,
 * RING_FINAL_CHECK_*) use the C11 fences too. */
#undef xen_mb
#undef xen_rmb
#undef xen_wmb
#define xen_mb()  sx_mb()
#define xen_rmb() sx_rmb()
#define xen_wmb() sx_wmb()

#define SX_RING_PAGE_SIZE 4096u
/* Largest ring a frontend may offer: 2^4 pages (Linux XENBUS_MAX_RING_GRANT_ORDER). */
#define SX_RING_MAX_ORDER 4u
#define SX_RING_MAX_PAGES (1u << SX_RING_MAX_ORDER)

/* The indexes page header, as DEFINE_RING_TYPES lays it out (checked against blkif_sring). */
struct sx_sring_hdr {
    RING_IDX req_prod, req_event;
    RING_IDX rsp_prod, rsp_event;
    uint8_t pvt[48];          /* ring.h: pvt union (4 bytes) + __pad[44] */
};
#define SX_SRING_HDR_SIZE sizeof(struct sx_sring_hdr)   /* 64 == offsetof(struct x_sring, ring) */

/* The entry size of a ring of (req_t, rsp_t): sizeof the union DEFINE_RING_TYPES declares.
 * The functions below take max(req_size, rsp_size); SX_RING_CHECK_TYPES proves at compile time
 * that this equals the union size (it differs only if alignment pads the union). */
#define SX_RING_ENTRY_SIZE(req_t, rsp_t) sizeof(union { req_t sx_q_; rsp_t sx_s_; })
#define SX_RING_CHECK_TYPES(req_t, rsp_t)                                               \
    _Static_assert(SX_RING_ENTRY_SIZE(req_t, rsp_t) ==                                  \
                   (sizeof(req_t) > sizeof(rsp_t) ? sizeof(req_t) : sizeof(rsp_t)),     \
                   "ring entry union is padded: sx_ring would mis-size it")

/* Number of entries of a ring of ring_bytes with entries of entry_size bytes, as __RING_SIZE
 * computes it; 0 when not even one entry fits. */
unsigned sx_ring_nr_ents(size_t ring_bytes, size_t entry_size);

/* ring_bytes for a ring of 2^order pages; 0 for an order above SX_RING_MAX_ORDER. */
static inline size_t sx_ring_bytes(unsigned order)
{
    return order <= SX_RING_MAX_ORDER ? (size_t)SX_RING_PAGE_SIZE << order : 0;
}

/* ---------------------------------------------------------------- back (request consumer) */

struct sx_back_ring_stats {
    uint64_t reqs;            /* requests copied off the ring */
    uint64_t rsps;            /* responses written */
    uint64_t pushes;          /* sx_back_ring_push calls that published something */
    uint64_t notifies;        /* pushes that asked for a notification */
    uint64_t final_checks;    /* sx_back_ring_final_check calls */
    uint64_t final_rechecks;  /* ... that found work only after arming req_event */
    uint64_t overflows;       /* producer overflows detected (the ring is halted) */
};

struct sx_back_ring {
    struct sx_sring_hdr *sring;   /* shared: the other side writes req_prod and rsp_event */
    uint8_t *ents;                /* shared: first entry */
    unsigned nr_ents;             /* power of two */
    uint32_t req_size, rsp_size, entry_size;
    RING_IDX req_cons;            /* next request to copy */
    RING_IDX rsp_prod_pvt;        /* next response slot to write */
    RING_IDX rsp_pushed;          /* rsp_prod as we last published it (never read back) */
    bool halted;                  /* a producer overflow was seen; the ring is dead */
    struct sx_back_ring_stats stats;
};

/* Attach to a ring the frontend initialised. ring_bytes must be 4096 << order, order 0..4;
 * req_size/rsp_size are the entry types' sizes (see SX_RING_CHECK_TYPES).
 * Returns 0 or -EINVAL. */
int sx_back_ring_attach(struct sx_back_ring *r, void *sring_mem, size_t ring_bytes,
                        size_t req_size, size_t rsp_size);
/* Forget the ring (no shared access); NULL-safe, idempotent. */
void sx_back_ring_detach(struct sx_back_ring *r);

/* Copy up to `max` new requests, each exactly once, into dst (max * req_size bytes), advance
 * req_cons. Returns the number copied (0: nothing new), or -EPROTO when the frontend moved
 * req_prod past what the ring can hold: the ring is then halted and every later call returns
 * -EPROTO without touching shared memory. */
int sx_back_ring_take(struct sx_back_ring *r, void *dst, unsigned max);

/* Requests visible but not yet taken (hint for polling; no barrier, may be stale or bogus). */
static inline bool sx_back_ring_has_requests(const struct sx_back_ring *r)
{
    return !r->halted && SX_READ_ONCE(r->sring->req_prod) != r->req_cons;
}

/* RING_FINAL_CHECK_FOR_REQUESTS: call when take() returned 0, before sleeping. Asks for a
 * notification on the next request (req_event = req_cons + 1) and re-checks. Returns 1 when
 * requests are there (do not sleep, take again), 0 when it is safe to sleep, -EPROTO if halted. */
int sx_back_ring_final_check(struct sx_back_ring *r);

/* Write the next response slot from rsp (rsp_size bytes); not visible until push. Returns 0, or
 * -ENOSPC if that slot still holds an untaken request (more responses than requests taken),
 * -EPROTO if halted. */
int sx_back_ring_put_rsp(struct sx_back_ring *r, const void *rsp);

/* RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish every response put so far. Returns 1 when the
 * frontend must be notified, 0 when not (or nothing new / halted). Put a batch, push once. */
int sx_back_ring_push(struct sx_back_ring *r);

/* ---------------------------------------------------------------- front (request producer) */

struct sx_front_ring_stats {
    uint64_t reqs;            /* requests written */
    uint64_t rsps;            /* responses copied off the ring */
    uint64_t pushes;
    uint64_t notifies;
    uint64_t final_checks;
    uint64_t final_rechecks;
    uint64_t overflows;       /* backend produced more responses than requests outstanding */
};

struct sx_front_ring {
    struct sx_sring_hdr *sring;
    uint8_t *ents;
    unsigned nr_ents;
    uint32_t req_size, rsp_size, entry_size;
    RING_IDX req_prod_pvt;        /* next request slot to write */
    RING_IDX rsp_cons;            /* next response to copy */
    RING_IDX req_pushed;          /* req_prod as we last published it (never read back) */
    bool halted;
    struct sx_front_ring_stats stats;
};

/* Initialise the shared header (SHARED_RING_INIT: req_prod = rsp_prod = 0, req_event =
 * rsp_event = 1, pvt zeroed) and attach. Same size rules as sx_back_ring_attach.
 * Returns 0 or -EINVAL. */
int sx_front_ring_init(struct sx_front_ring *r, void *sring_mem, size_t ring_bytes,
                       size_t req_size, size_t rsp_size);
void sx_front_ring_detach(struct sx_front_ring *r);           /* NULL-safe, idempotent */

/* Slots a new request may use (RING_FREE_REQUESTS). */
static inline unsigned sx_front_ring_free_slots(const struct sx_front_ring *r)
{
    return r->nr_ents - (r->req_prod_pvt - r->rsp_cons);
}

/* Write the next request slot from req (req_size bytes); not visible until push.
 * Returns 0, -EAGAIN when the ring is full (take responses first), -EPROTO if halted. */
int sx_front_ring_put_req(struct sx_front_ring *r, const void *req);

/* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY. Returns 1 when the backend must be notified. */
int sx_front_ring_push(struct sx_front_ring *r);

/* Copy up to `max` responses, each once, into dst (max * rsp_size bytes). Returns the count,
 * or -EPROTO (ring halted) when rsp_prod claims more responses than requests are outstanding
 * (published requests not yet answered: the backend cannot have seen unpushed ones). */
int sx_front_ring_take_rsp(struct sx_front_ring *r, void *dst, unsigned max);

static inline bool sx_front_ring_has_responses(const struct sx_front_ring *r)
{
    return !r->halted && SX_READ_ONCE(r->sring->rsp_prod) != r->rsp_cons;
}

/* RING_FINAL_CHECK_FOR_RESPONSES: 1 = responses there, 0 = safe to sleep, -EPROTO if halted. */
int sx_front_ring_final_check(struct sx_front_ring *r);

/* ---------------------------------------------------------------- adaptive polling */

/* The spin budget in ns: $SPLITXEN_SPIN_NS (read once, 0 disables spinning), default 20000. */
#define SX_RING_SPIN_NS_DEFAULT 20000u
uint64_t sx_ring_spin_ns(void);

/* Ready-made spin predicates for sx_idle_spin and sx_idle_spin_budget (arg is the ring). */
bool sx_back_ring_pred(void *back_ring);
bool sx_front_ring_pred(void *front_ring);

/* ---------------------------------------------------------------- idle loop (idle.c) */

/*
 * The idle half of a ring thread's loop: spin, arm, sleep, with late EOI (evtchn.h) built in,
 * so an event storm costs every consumer the same bounded share of a CPU. A loop reads:
 *
 *     sx_idle_init(&idle, evt, &opts, stats, first_eoi_counter);
 *     while (!stop) {
 *         bool work = <one batch: take requests, reap completions, respond>;
 *         sx_idle_did(&idle, work);
 *         if (work)
 *             continue;
 *         if (sx_idle_spin(&idle, pred, arg))  // work showed up within the spin budget
 *             continue;
 *         sx_idle_arm(&idle);                  // take the events and end them (late EOI)
 *         if (<the rings' final checks find work>)
 *             continue;
 *         sx_idle_poll(&idle, pfd, n, timeout_ms);   // pfd holds the event channel's fd
 *     }
 *     sx_idle_fini(&idle);
 *
 * spin: calls pred until it is true or the budget ran out, but only when the loop did work
 *   since the last arm: a wake that found nothing (an empty notification, a timeout) goes
 *   straight to arm, so a notification never buys a spin. With `adaptive` (the haltpoll
 *   governor's rule) the budget doubles after a sleep shorter than spin_ns (a longer spin
 *   would have caught the work) and halves after a longer one, and below spin_ns / 16 there is
 *   no spin until a short sleep. With `yield`, sched_yield() every 16 rounds once the spin has
 *   lasted SX_SPIN_YIELD_AFTER_NS lets a peer that shares the CPU produce. The clock is read every `clock_rounds` rounds (a power of
 *   two; 0 or 1: every round), as a look at a ring is cheaper than a vDSO clock call.
 * arm: with work since the last arm the delivered events' ports are unmasked at once (and a
 *   throttled port released); events that found nothing are spurious and, in a row, keep the
 *   ports masked for 1, 2, 4 ... up to 1000 ms, counted in the stats file (SX_EOI_STAT_NAMES).
 *   The final ring checks still run, so requests already published are always seen. With
 *   `eoi_now` (a frontend, which trusts its backend) every event is ended at once
 *   (sx_evtchn_drain) and nothing is throttled or counted.
 * poll: poll(2) with the timeout cut to when held ports are due; then the ports are unmasked
 *   if due (an event sent meanwhile makes the fd readable again) and the sleep's length feeds
 *   the adaptive budget. Returns poll's count or -errno.
 */
struct sx_idle_opts {
    uint64_t spin_ns;        /* spin budget (the most, when adaptive); 0: never spin */
    bool adaptive;
    bool yield;
    bool eoi_now;            /* no late EOI: arm unmasks every port at once */
    unsigned clock_rounds;
};

struct sx_idle {
    struct sx_idle_opts o;
    uint64_t spin;           /* the current budget */
    bool worked;             /* work since the last arm */
    struct sx_evtchn_eoi eoi;
};

/* st may be NULL (no counters); else its counters st_base .. + SX_EOI_NR_STATS - 1 are
 * SX_EOI_STAT_NAMES. */
void sx_idle_init(struct sx_idle *s, struct sx_evtchn *e, const struct sx_idle_opts *o,
                  struct sx_stats *st, unsigned st_base);
static inline void sx_idle_did(struct sx_idle *s, bool work)
{
    s->worked |= work;
}
bool sx_idle_spin(struct sx_idle *s, bool (*pred)(void *arg), void *arg);
/* The same spin loop alone, for a caller without a loop of its own to keep state in (it holds
 * no state, so it may run beside the thread that owns the ring): pred until it is true (true)
 * or budget_ns passed (false), the clock read every 8 rounds. pred runs at least once; budget
 * 0 is one look. */
bool sx_idle_spin_budget(bool (*pred)(void *arg), void *arg, uint64_t budget_ns);
/* The same, yielding the CPU (sched_yield every 16 rounds) once it has spun
 * SX_SPIN_YIELD_AFTER_NS: a peer that needs this CPU to produce gets it (more runnable
 * threads than CPUs), while work that comes within microseconds costs no system call. */
bool sx_idle_spin_budget_yield(bool (*pred)(void *arg), void *arg, uint64_t budget_ns);
#define SX_SPIN_YIELD_AFTER_NS 5000u
/* Returns the number of events taken, or -errno (an unmask failed). */
int sx_idle_arm(struct sx_idle *s);
int sx_idle_poll(struct sx_idle *s, struct pollfd *pfd, unsigned n, int timeout_ms);
/* Unmask what is still held (the loop is stopping). */
void sx_idle_fini(struct sx_idle *s);

/* ---------------------------------------------------------------- multi-page rings (ring_map.c) */

struct sx_gnt;

/* Map the 2^order pages of a ring the frontend granted as refs[0 .. 2^order - 1] (writable,
 * contiguous) through sx_gnt_map. Returns 0, -EINVAL (order above SX_RING_MAX_ORDER, NULL
 * argument, a bad grant) or sx_gnt_map's -errno. */
int sx_ring_map(struct sx_gnt *g, domid_t dom, unsigned order, const grant_ref_t *refs,
                void **mem);
/* Unmap what sx_ring_map mapped (same order). NULL-safe: mem NULL returns 0.
 * Returns 0, -EINVAL for a bad order, or sx_gnt_unmap's -errno. */
int sx_ring_unmap(struct sx_gnt *g, void *mem, unsigned order);

#endif
