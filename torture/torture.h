/*
 * torture: a frontend author's test bench inside splitxen's backends. Two modes, both off
 * unless the daemon is started with them (off, the data paths pay one branch a hook):
 *
 *   --check            a protocol checker. Every frontend mistake a backend can see is reported
 *                      per device, with the request it came with (queue, id, operation, ring
 *                      position) and what the protocol says, quoted from <xen/io/blkif.h>,
 *                      <xen/io/netif.h>, <xen/io/ring.h>, <xen/grant_table.h>.
 *   --torture[=SEED]   seeded fault injection within the protocol's rules: delayed and
 *                      reordered responses, EOPNOTSUPP for flush and discard, ring-full
 *                      backpressure, bursts of notifications, partly filled rx slots, a
 *                      backend that drops and takes back its rings mid-I/O, state rewrites,
 *                      a new feature set at every InitWait (and, when asked for, error
 *                      responses). Each fault is logged with the seed and its place in a
 *                      per-device, per-stream sequence: the same frontend I/O sees the same
 *                      faults again with the same seed.
 *
 * Objects and threads:
 *   struct sx_tt       one per daemon (options, the grant handle, every device). Its owner's
 *                      control thread calls sx_tt_tick() once per round.
 *   struct sx_tt_dev   one per vbd or vif, opened and closed by the control thread, which also
 *                      feeds it the frontend's xenbus states (it reads the frontend's keys
 *                      itself through the daemon's xenstore handle).
 *   struct sx_tt_q     one per ring (a blkif queue; a netif queue's tx and rx rings), used only
 *                      by the thread that owns the ring, between sx_tt_q_start() and the
 *                      thread's end.
 * Findings may come from any of these threads; they are counted in a stats file
 * ($SPLITXEN_RUN/stats/<kind>chk-<domid>-<devid>, shown by `splitxen top`) and kept, first and
 * last occurrence of each kind, in a report: $SPLITXEN_RUN/check/<kind>-<domid>-<devid>.txt and
 * .json, rewritten at most once a second while the device lives and when it goes. Faults go to
 * $SPLITXEN_RUN/check/<kind>-<domid>-<devid>.torture.log, one line each.
 *
 * Determinism: every stream (the control plane's, one per ring) has its own generator seeded
 * from SEED and the device's name without its domain ("vbd-51712", "vif-0"), and draws a fixed
 * number of values per decision point (a request taken, a packet, a frame, an InitWait, a
 * threshold passed), whatever the clock says. Times only say when a decision takes effect.
 *
 * Functions return 0 (or a count) or -errno unless they say otherwise. Every function taking
 * a device or queue pointer is a no-op on NULL (mode off).
 */
#ifndef SPLITXEN_TORTURE_H
#define SPLITXEN_TORTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "ring/ring.h"
#include <xen/io/xenbus.h>

struct sx_gnt;
struct sx_xenbus;

/* ---- options ----------------------------------------------------------------------------- */

/* Fault classes, and how often each comes (per request, tx packet or rx frame drawn). */
enum sx_tt_fault {
    SX_TT_F_DELAY,          /* blkif: a response held back 1..20 ms (4%) */
    SX_TT_F_REORDER,        /* blkif: a response held until 1..3 later ones went out (4%) */
    SX_TT_F_EOPNOTSUPP,     /* blkif: a flush or discard answered BLKIF_RSP_EOPNOTSUPP, not
                               done (25% of them) */
    SX_TT_F_ERROR,          /* BLKIF_RSP_ERROR / NETIF_RSP_ERROR, the request not done (1%;
                               opt-in: a frontend passes it on to its user as an I/O error) */
    SX_TT_F_PAUSE,          /* ring-full backpressure: no request taken for 10..200 ms (0.3%;
                               netif tx: 5..50 ms, 1 in 4000 packets) */
    SX_TT_F_BURST,          /* 1..4 extra notifications after a response push (0.5%; netif
                               0.2%) */
    SX_TT_F_PARTIAL,        /* netif rx: a frame's first slot only partly filled (1%) */
    SX_TT_F_RECONNECT,      /* rings, event channels and grant mappings dropped and taken again
                               from the frontend's keys, as a restarted backend does; with
                               FLAP, one of the two after every 300..3000 requests (35%) */
    SX_TT_F_FLAP,           /* the backend's state node rewritten with the state it holds */
    SX_TT_F_FEATURES,       /* a new feature set each time the backend goes to InitWait */
    SX_TT_F_NR
};
#define SX_TT_FAULTS_ALL ((1u << SX_TT_F_NR) - 1)
#define SX_TT_FAULTS_DEFAULT (SX_TT_FAULTS_ALL & ~(1u << SX_TT_F_ERROR))

struct sx_tt_opts {
    bool check;
    bool torture;
    uint64_t seed;
    unsigned faults;        /* bit (1 << enum sx_tt_fault) per fault class */
    unsigned notify_ms;     /* missing-notification timer (default 250) */
};

void sx_tt_opts_default(struct sx_tt_opts *o);
/* --torture[=SEED]: SEED decimal; NULL or "" picks one from the clock (logged, to replay).
 * Returns 0 or -EINVAL. */
int sx_tt_parse_torture(struct sx_tt_opts *o, const char *arg);
/* --torture-faults=LIST: comma-separated fault names (sx_tt_fault_name), "all", "default".
 * Returns 0 or -EINVAL (the bad name is not applied). */
int sx_tt_parse_faults(struct sx_tt_opts *o, const char *list);
const char *sx_tt_fault_name(enum sx_tt_fault f);
/* The options' lines of a daemon's --help. */
extern const char sx_tt_usage[];

static inline bool sx_tt_on(const struct sx_tt_opts *o)
{
    return o->check || o->torture;
}

/* ---- findings ---------------------------------------------------------------------------- */

enum sx_tt_kind {
    SX_TT_K_STATE,          /* a xenbus state transition out of order */
    SX_TT_K_KEY_MISSING,    /* a key the protocol needs in this state is not there */
    SX_TT_K_KEY_STATE,      /* a key written in the wrong state, at the wrong level, or changed
                               while connected */
    SX_TT_K_KEY_VALUE,      /* a value out of range, or beyond what the backend offered */
    SX_TT_K_FEATURE,        /* a feature used that the backend did not offer */
    SX_TT_K_GRANT_CLOSED,   /* a ring still granted to the backend after Closed */
    SX_TT_K_ID_REUSE,       /* a request id reused while a request with it is in flight */
    SX_TT_K_PROD_BACK,      /* the request producer index moved backwards */
    SX_TT_K_PROD_OVERFLOW,  /* the request producer index more than a ring ahead */
    SX_TT_K_NOTIFY,         /* requests published without the notification req_event asked for */
    SX_TT_K_GRANT_REVOKED,  /* a grant ended while a request using it was in flight */
    SX_TT_K_GRANT_BAD,      /* a grant a request names cannot be mapped or copied */
    SX_TT_K_SLOTS,          /* a netif tx slot chain Linux netback rejects */
    SX_TT_K_SEGMENTS,       /* blkif segment or indirect limits exceeded */
    SX_TT_K_SEG_BOUNDS,     /* a segment's first/last sector out of order or past its page */
    SX_TT_K_RANGE,          /* a sector range past the end of the disk */
    SX_TT_K_OP,             /* an unknown operation, or a write to a read-only disk */
    SX_TT_K_NR
};
const char *sx_tt_kind_name(enum sx_tt_kind k);

/* Where a finding was seen; queue < 0: not on a ring (the control plane). */
struct sx_tt_where {
    int queue;
    const char *ring;       /* "tx", "rx", "ctrl" or NULL (blkif) */
    bool has_req;           /* id and op say which request */
    uint64_t id;
    const char *op;         /* operation name, may be NULL */
    bool has_pos;
    RING_IDX pos;           /* ring position of the request */
};

/* ---- daemon and devices ----------------------------------------------------------------- */

struct sx_tt;
struct sx_tt_dev;
struct sx_tt_q;

enum sx_tt_proto { SX_TT_BLKIF, SX_TT_NETIF };

/* Keep o, the backend domain and its grant handle (for probing a closed frontend's rings).
 * Logs the seed. 0 or -errno. */
int sx_tt_open(struct sx_tt **out, const struct sx_tt_opts *o, struct sx_gnt *gnt);
/* Finish pending probes, write every report, free. NULL-safe. */
void sx_tt_close(struct sx_tt *t);

/* A device appears: its stats file, report and torture log. fe_path/be_path are the xenbus
 * directories. NULL when t is NULL (mode off) or on failure (logged; the device is served as
 * without the mode). */
struct sx_tt_dev *sx_tt_dev_open(struct sx_tt *t, enum sx_tt_proto proto, domid_t fe,
                                 unsigned devid, const char *fe_path, const char *be_path);
/* The device goes: the report is written and stays; the stats file goes. Grant probes still
 * pending are kept by t until they ran. */
void sx_tt_dev_close(struct sx_tt_dev *d);

/* Once per control round: pending state judgements, late-key checks, grant probes, reports. */
void sx_tt_tick(struct sx_tt *t, struct sx_xenbus *xb);

/* A watch event for the frontend's state node arrived (from the watch callback). */
void sx_tt_fe_event(struct sx_tt_dev *d);
/* The control plane read the frontend's state `fe` while its own was `be` (as last written).
 * Checks the transition and, entering Initialised or Connected, the frontend's keys. */
void sx_tt_fe_state(struct sx_tt_dev *d, struct sx_xenbus *xb, enum xenbus_state fe,
                    enum xenbus_state be);

/* A backend feature key the control plane is about to write: returns the value to write, dflt
 * unless torture changes feature sets (then one of choices[0..n), drawn and logged). The value
 * is remembered to check the frontend against it. n may be 0 (dflt only). */
uint64_t sx_tt_feature(struct sx_tt_dev *d, const char *key, uint64_t dflt,
                       const uint64_t *choices, unsigned n);
/* The value last written for key, or dflt when none was. */
uint64_t sx_tt_offered(const struct sx_tt_dev *d, const char *key, uint64_t dflt);

/* A finding. rule NULL: the kind's own quote. Rate-limited log line, counted, reported; nothing
 * without --check. */
void sx_tt_found(struct sx_tt_dev *d, enum sx_tt_kind k, const struct sx_tt_where *w,
                 const char *rule, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Control plane, torture: a reconnect or a state rewrite to do now. The request that crosses
 * each threshold of the device's control stream decides and logs one; this hands each out
 * once. Call it only while connected (a decision then waits for the next connection). */
enum sx_tt_ctl { SX_TT_CTL_NONE, SX_TT_CTL_RECONNECT, SX_TT_CTL_FLAP };
enum sx_tt_ctl sx_tt_ctl_due(struct sx_tt_dev *d);
/* A flap: write <dir>/state = state again (the frontend's watch fires, the value is the same),
 * in a transaction that writes nothing once the node is gone (the toolstack removed the
 * device). 0 or -errno. */
int sx_tt_flap(struct sx_xenbus *xb, const char *dir, enum xenbus_state state);

/* ---- rings (data path) --------------------------------------------------------------------- */

/* Ring `idx` of the device (blkif: the queue; netif: 2 * queue for tx, + 1 for rx), created
 * on first use (control plane, before the ring thread starts). NULL for a NULL d. */
struct sx_tt_q *sx_tt_q_get(struct sx_tt_dev *d, unsigned idx, int queue, const char *ring);
/* A connection of this ring starts: nr_ents entries, the ring's grant refs (the first holds the
 * indexes), for the after-Closed probe. Resets the in-flight ids and the index history; holds
 * nothing. Allocates here. 0 or -ENOMEM. */
int sx_tt_q_start(struct sx_tt_q *q, const struct sx_back_ring *r, const grant_ref_t *refs,
                  unsigned nrefs);
/* The connection ends (rings still mapped): remembers the ring page's fingerprint to probe
 * after the frontend closed. */
void sx_tt_q_stop(struct sx_tt_q *q, const struct sx_back_ring *r);
struct sx_tt_dev *sx_tt_q_dev(const struct sx_tt_q *q);
/* A where for a request on this ring. */
struct sx_tt_where sx_tt_q_where(const struct sx_tt_q *q, uint64_t id, const char *op,
                                 RING_IDX pos);

/* What torture does to one request (zero: nothing). */
struct sx_tt_act {
    int16_t status;         /* != 0: answer with this status, do not do the request */
    uint16_t delay_ms;      /* hold the response this long */
    uint8_t reorder;        /* hold the response until this many later ones went out */
    uint8_t burst;          /* extra notifications after its response's push */
};
#define SX_TT_CAN_NOTSUPP 1u    /* the request may be answered EOPNOTSUPP (flush, discard) */
#define SX_TT_CAN_HOLD    2u    /* its response may be held back (delay, reorder) */

/* A request taken off the ring (check: id reuse; torture: draws its faults into *act, which
 * gets status_err / status_notsupp as the error statuses to use). Always two draws. */
void sx_tt_q_req(struct sx_tt_q *q, uint64_t id, const char *op, RING_IDX pos, unsigned can,
                 int16_t status_err, int16_t status_notsupp, struct sx_tt_act *act);
/* A request taken, for the checks only (no draws): netif's slots, whose faults are drawn per
 * packet (sx_tt_q_pkt). */
void sx_tt_q_id(struct sx_tt_q *q, uint64_t id, const char *op, RING_IDX pos);
/* Its response is written to the ring (held responses when they are released). */
void sx_tt_q_rsp(struct sx_tt_q *q, uint64_t id);
/* The producer index the data path just read, and its consumer index. */
void sx_tt_q_prod(struct sx_tt_q *q, RING_IDX prod, RING_IDX cons);
/* The ring halted on a producer overflow (the index read again, for the report). */
void sx_tt_q_overflow(struct sx_tt_q *q, const struct sx_back_ring *r);

/* A response to hold back, or false (not held: write it now). */
struct sx_tt_held {
    uint64_t id;
    uint8_t op;
    int16_t status;
};
bool sx_tt_q_hold(struct sx_tt_q *q, const struct sx_tt_act *act, const struct sx_tt_held *h);
/* Responses due now (all: every one held), in release order, up to max. A response pushed to
 * the ring counts for the reorder holds (sx_tt_q_rsp). */
unsigned sx_tt_q_release(struct sx_tt_q *q, bool all, struct sx_tt_held *out, unsigned max);
/* Backpressure and the notification check's hold-off: do not take requests now. Returns when
 * that ends (CLOCK_MONOTONIC ns), 0 when not paused. */
uint64_t sx_tt_q_paused(struct sx_tt_q *q);
/* Draws for one netif packet or frame (always two), `what` in the log lines: tx, a pause
 * (started here), extra notifications, an error answer; rx, extra notifications and a partly
 * filled first slot (first_len in 1..max_first - 1; 0: a full one; max_first < 2: never). */
struct sx_tt_pkt {
    uint16_t first_len;
    uint16_t pause_ms;
    uint8_t burst;
    bool error;
};
void sx_tt_q_pkt(struct sx_tt_q *q, const char *what, unsigned max_first, struct sx_tt_pkt *p);
/* Extra notifications owed after the next push (consumes them). */
unsigned sx_tt_q_burst(struct sx_tt_q *q);

/* The sleep of a ring thread: the poll timeout (ms, -1 forever) capped for held responses,
 * a pause's end and (check) the notification timer when `armed` (the thread set req_event). */
int sx_tt_q_poll_ms(struct sx_tt_q *q, int timeout_ms, bool armed);
/* After the poll: rc its result, evt whether the event channel fd was readable, held the late
 * EOI's masked ports (events may be pending behind them), r the ring armed before the sleep
 * (NULL: not armed). Requests visible after a quiet timeout are held off for one more period;
 * an event ends that; a second quiet period reports the missing notification. */
void sx_tt_q_woke(struct sx_tt_q *q, int rc, bool evt, unsigned held,
                  const struct sx_back_ring *r);

#endif
