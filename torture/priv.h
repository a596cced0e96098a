/* Private to torture/: the objects behind torture.h and what the three files share. */
#ifndef SPLITXEN_TORTURE_PRIV_H
#define SPLITXEN_TORTURE_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "common/stats.h"
#include "torture/torture.h"

#define TT_MAX_RINGS (2 * 16 + 1)      /* netif: tx and rx of 16 queues, and the ctrl ring */
#define TT_MAX_OFFERS 32
#define TT_MAX_PROBES (TT_MAX_RINGS)
#define TT_DETAIL 320
#define TT_SETTLE_MS 300               /* quiet time after the last state event */
#define TT_KEYS_RECHECK_MS 2000        /* transport keys re-read while connected */
#define TT_PROBE_DELAY_MS 1000         /* after Closed, before the rings are probed */
#define TT_REORDER_MAX_MS 50           /* a reorder hold ends after this at the latest */
#define TT_MAX_OBS 16                  /* state changes remembered until they settle */

/* A stream of draws: splitmix64 over a state seeded from SEED, the device and the stream. */
struct tt_rng {
    uint64_t s;
    uint64_t n;                        /* decision points so far (the #n of the log) */
    char name[16];
};
void tt_rng_init(struct tt_rng *r, uint64_t seed, const char *dev, const char *stream);
uint64_t tt_rng_next(struct tt_rng *r);

struct tt_finding {
    uint64_t count;
    char first[TT_DETAIL];
    char last[TT_DETAIL];
    char first_fault[32];              /* the last fault injected before the first one */
    const char *rule;
};

struct tt_probe {
    bool used;
    grant_ref_t ref;
    RING_IDX rsp_prod, req_prod;
    uint64_t due_ms;
    char label[24];
};

enum { TT_EV_NONE, TT_EV_RECONNECT, TT_EV_FLAP };

struct sx_tt_q {
    struct sx_tt_dev *d;
    unsigned idx;
    int queue;
    const char *ring;
    struct tt_rng rng;
    unsigned nr_ents;
    /* ids in flight: open addressing, cap a power of two >= 2 * nr_ents */
    unsigned cap;
    uint64_t *ids;
    RING_IDX *ipos;
    uint8_t *used;
    /* held responses, in arrival order */
    struct tt_hold {
        struct sx_tt_held h;
        uint64_t due_ns;               /* delay: due then; reorder: the latest release */
        unsigned after;                /* reorder: responses still to go out first */
        bool by_count;                 /* a reorder hold (else a delay) */
    } *held;
    unsigned nheld;
    uint64_t pause_until;
    unsigned burst_owed;
    /* the index history and the notification check */
    bool have_prod;
    RING_IDX last_prod;
    bool suspect;
    RING_IDX suspect_prod, suspect_cons, suspect_event;
    uint64_t suspect_until;
    /* this connection's ring, for the probe after Closed */
    grant_ref_t ref0;
    bool have_ref;
    RING_IDX fp_rsp, fp_req;
    bool fp_valid;
};

struct sx_tt_dev {
    struct sx_tt *t;
    struct sx_tt_dev *next;
    enum sx_tt_proto proto;
    domid_t fe;
    unsigned devid;
    char name[24];                     /* "vbd-51712": the generators' key */
    char file[40];                     /* "vbd-5-51712": reports, stats, log */
    char fe_path[128], be_path[128];
    bool closing;                      /* closed by its owner, waiting for its probes */
    pthread_mutex_t lock;              /* findings, log, last_fault */
    struct tt_finding f[SX_TT_K_NR];
    uint64_t faults[SX_TT_F_NR];
    bool dirty;
    uint64_t written_ms;
    char last_fault[32];
    int log_fd;
    struct sx_stats st;
    /* torture: the control plane's streams */
    struct tt_rng ctl, feat;
    _Atomic uint64_t reqs;             /* requests, packets and frames taken: the clock of ctl */
    pthread_mutex_t ctl_lock;          /* ctl, next_ev */
    _Atomic uint64_t next_ev_at;       /* the request after which the next one is due */
    int next_ev;
    _Atomic unsigned due_reconnect, due_flap;   /* decided, not done yet by the control plane */
    unsigned connections;
    struct {
        char key[48];
        uint64_t val;
    } offers[TT_MAX_OFFERS];
    unsigned noffers;
    /* xenbus: the frontend's states, judged once the events settle */
    bool seen_fe;
    enum xenbus_state be;              /* the backend's state as last written */
    enum xenbus_state settled;         /* the value before obs[0] */
    enum xenbus_state obs[TT_MAX_OBS];
    enum xenbus_state obs_be[TT_MAX_OBS];
    unsigned nobs;
    bool obs_lost;
    unsigned events;                   /* state events since the last settle */
    uint64_t last_event_ms;
    unsigned skip_events;              /* the watch's initial event, not a write: not counted */
    /* keys */
    char *missing;                     /* "path\n" each: needed at Initialised, not there */
    uint64_t missing_due_ms;
    enum xenbus_state missing_state;
    char *snap;                        /* "path=value\n" each: the keys read at Initialised */
    uint64_t snap_due_ms;
    bool closed;                       /* the frontend closed: probe the rings once stopped */
    uint64_t closed_ms;
    struct tt_probe probes[TT_MAX_PROBES];
    struct sx_tt_q *q[TT_MAX_RINGS];
};

struct sx_tt {
    struct sx_tt_opts o;
    struct sx_gnt *gnt;
    struct sx_tt_dev *devs;
    pthread_mutex_t lock;              /* the device list */
};

/* report.c */
void tt_log_fault(struct sx_tt_dev *d, enum sx_tt_fault f, const struct tt_rng *r,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool tt_fault_on(const struct sx_tt_dev *d, enum sx_tt_fault f);
uint64_t tt_now_ms(void);
void tt_write_reports(struct sx_tt_dev *d);
/* A request, packet or frame was taken: count it; the one that crosses the control stream's
 * next threshold decides (and logs) a reconnect or a state rewrite for the control plane. */
void tt_count(struct sx_tt_dev *d);
/* Draw the control stream's next threshold after `from` (ctl_lock held, or before use). */
void tt_ctl_draw(struct sx_tt_dev *d, uint64_t from);
/* $SPLITXEN_RUN/check, created: 0 or -errno. */
int tt_check_dir(char *buf, size_t len);
void tt_faults_list(unsigned mask, char *buf, size_t len);
const char *const *tt_stat_names(void);
/* check.c */
void tt_check_tick(struct sx_tt_dev *d, struct sx_xenbus *xb, uint64_t now_ms);
void tt_probe_run(struct sx_tt_dev *d, bool all, uint64_t now_ms);
/* After the frontend closed: a probe for each ring stopped since (the backend tears a
 * connection down after it read Closed). */
void tt_probe_collect(struct sx_tt_dev *d);
bool tt_probes_pending(const struct sx_tt_dev *d);
/* ring.c */
void tt_q_free(struct sx_tt_q *q);

#endif
