/*
 * splitxen blkback: private header shared by the control plane (xenbus.c), the ring loop
 * (blkback.c) and the persistent-grant cache (persistent.c). Modelled on Linux
 * drivers/block/xen-blkback/common.h.
 *
 * Threads: the control plane runs in one thread (the daemon's main loop: xenstore watches,
 * state machine, connect/disconnect). Each connected queue has its own ring thread that owns
 * its event channel handle, I/O engine, request contexts and persistent-grant cache; the
 * control plane touches a queue only before its thread starts and after it was joined.
 * The grant handle is shared (thread-safe on both platforms).
 *
 * Functions return 0 (or a count) on success and -errno on failure.
 */
#ifndef SPLITXEN_BLKBACK_COMMON_H
#define SPLITXEN_BLKBACK_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ring/ring.h"
#include <xen/event_channel.h>
#include "blkio/blkio.h"
#include "blkback/request.h"
#include "common/stats.h"
#include "platform/platform.h"
#include "torture/torture.h"

struct sx_gnt;
struct sx_evtchn;
struct sx_xenbus;

#define BB_MAX_QUEUES 16u
#define BB_DEFAULT_MAX_PGRANTS 1056u   /* per queue, Linux xen_blkif_max_pgrants */
#define BB_MAX_BATCH 64u               /* requests taken off the ring per step */
#define BB_LAT_SAMPLE 8u               /* latency stamps on 1 read/write in this many */
#define BB_LAT_MAX 64u                 /* sampled requests pending one stamp (more: not sampled) */

struct bb_opts {
    enum sx_plat_kind plat;
    domid_t domid;                 /* the backend domain we act as */
    enum sx_bio_kind engine;       /* SX_BIO_AUTO: per target */
    uint64_t spin_ns;              /* adaptive polling budget before sleeping */
    uint64_t turnaround_ns;        /* with I/O in flight, the spin after answering (the
                                      frontend's next request usually follows at once) */
    bool spin_inflight;            /* spin the whole budget with I/O in flight too */
    unsigned max_queues;           /* multi-queue-max-queues (1..BB_MAX_QUEUES) */
    unsigned max_ring_order;       /* max-ring-page-order (0..SX_RING_MAX_ORDER) */
    unsigned max_indirect;         /* feature-max-indirect-segments (0 = off) */
    unsigned max_pgrants;          /* persistent grants cached per queue (0 = no persistent) */
    bool sqpoll;                   /* io_uring SQPOLL (off by default) */
    bool no_regbuf;                /* do not register persistent pages with io_uring */
    bool spin_yield;               /* sched_yield() every 16 spin rounds once a spin has lasted
                                      5 us (default on: with more guests than CPUs a spinning
                                      queue thread holds the CPU its frontend needs) */
    struct sx_tt_opts tt;          /* --check, --torture (check.c) */
};

/* Per-vbd counters (the stats file; `splitxen top` reads it). Order = bb_stat_names. */
enum bb_stat {
    BB_ST_REQUESTS,
    BB_ST_READS,
    BB_ST_WRITES,
    BB_ST_FLUSHES,
    BB_ST_DISCARDS,
    BB_ST_SECT_READ,
    BB_ST_SECT_WRITTEN,
    BB_ST_ERRORS,
    BB_ST_INFLIGHT,
    BB_ST_HALTED,
    BB_ST_INDIRECT,
    BB_ST_PGRANT_HITS,
    BB_ST_PGRANT_MAPS,
    BB_ST_PGRANT_FULL,          /* segments mapped non-persistently because the cache was full */
    BB_ST_GRANT_MAPS,           /* non-persistent map calls */
    BB_ST_GRANT_ERRORS,         /* segments whose grant could not be mapped */
    BB_ST_NOTIFIES,
    BB_ST_SLEEPS,
    BB_ST_SPIN_WINS,
    BB_ST_BATCHES,
    BB_ST_ENGINE_FULL,          /* queue calls the engine refused as full (reaped, retried) */
    BB_ST_SPURIOUS,             /* late EOI (SX_EOI_STAT_NAMES, in this order): notifications */
    BB_ST_EOI_DELAYS,           /* that found no work, unmasks delayed, and for how long */
    BB_ST_EOI_DELAYED_US,
    /* Latency breakdown of sampled read/write requests (1 in BB_LAT_SAMPLE), sums in ns and
     * sample counts: taken off the ring -> queued on the engine (decode, map, queue), ->
     * completed (the engine's time), -> response pushed (answer, push, notify). `splitxen top`
     * divides the deltas of each pair; the frontend's own counters (vbdfe, blkfront) add the
     * ring's two transits and the frontend's work. */
    BB_ST_LAT_BACKEND_NS,
    BB_ST_LAT_BACKEND_N,
    BB_ST_LAT_ENGINE_NS,
    BB_ST_LAT_ENGINE_N,
    BB_ST_LAT_RESPONSE_NS,
    BB_ST_LAT_RESPONSE_N,
    BB_ST_TARGET_DISCONNECTS,   /* network targets (SX_BIO_TARGET_STAT_NAMES, in this order): */
    BB_ST_TARGET_RECONNECTS,    /* connections lost and regained, requests failed for want */
    BB_ST_TARGET_FAILED,        /* of the target */
    BB_ST_NR
};
_Static_assert(BB_ST_TARGET_FAILED - BB_ST_TARGET_DISCONNECTS + 1 == SX_BIO_TST_NR,
               "target counters");
_Static_assert(BB_ST_EOI_DELAYED_US - BB_ST_SPURIOUS + 1 == SX_EOI_NR_STATS, "eoi counters");
extern const char *const bb_stat_names[BB_ST_NR + 1];

/* ---- persistent-grant cache (persistent.c): one per queue, owned by the ring thread ---- */

struct bb_pgrant {
    grant_ref_t gref;
    uint32_t next;              /* hash chain / free list (index, UINT32_MAX = end) */
    void *addr;                 /* writable mapping of the page */
    uint64_t last_use;
};

struct bb_pcache {
    struct bb_pgrant *ents;
    uint32_t *hash;
    uint32_t cap, n, hmask;
    uint32_t free_head;
    struct sx_gnt *gnt;
    domid_t dom;
    struct sx_bio *bio;         /* registered-buffer table slot i = ents[i] (or NULL) */
    bool regbuf;
};

/* cap 0: a cache that never holds anything. 0 or -ENOMEM. */
int bb_pcache_init(struct bb_pcache *pc, struct sx_gnt *gnt, domid_t dom, uint32_t cap,
                   struct sx_bio *bio);
/* Drop the engine's registered-buffer table (before the engine is closed; operations in flight
 * keep their pages pinned). NULL-safe, idempotent. */
void bb_pcache_unregister(struct bb_pcache *pc);
/* Unmap every cached grant and free the cache (after the engine that writes into them is
 * closed). NULL-safe, idempotent. Returns how many grants could not be unmapped (the caller
 * logs them with the device's name). */
unsigned bb_pcache_destroy(struct bb_pcache *pc);
/* The mapping of gref: a hit, or a new writable map added to the cache. Returns the address,
 * or NULL with *err: -ENOSPC (the cache is full: map it non-persistently) or the map's -errno
 * (bad grant). */
void *bb_pcache_get(struct bb_pcache *pc, grant_ref_t gref, uint64_t now, bool *hit, int *err);

/* ---- ring data path (blkback.c) ---- */

struct bb_vbd;

/* One in-flight request. */
struct bb_req {
    struct bb_req *next_free;
    uint32_t map_count;         /* non-persistent segments, mapped together at map_addr */
    void *map_addr;
    int iovcnt;
    int16_t status;
    bool barrier_flush;         /* a barrier's write completed: flush before answering */
    grant_ref_t *mrefs;         /* scratch: the grants of one sx_gnt_map of the request */
    uint32_t *midx;             /* scratch: which segment each of mrefs is */
    struct iovec *iov;
    struct sx_blk_req *r;       /* decoded copy, sx_blk_req_size(dev) bytes */
    struct sx_tt_act tt;        /* what torture does to it (check.c) */
    uint64_t t_take, t_sub;     /* latency sample: taken, submitted (ns; t_take 0 = none) */
};

struct bb_queue {
    struct bb_vbd *v;
    unsigned idx;
    /* transport, read from xenstore by the control plane */
    grant_ref_t ring_refs[SX_RING_MAX_PAGES];
    evtchn_port_t remote_port;
    void *ring_mem;
    struct sx_back_ring ring;
    struct sx_evtchn *evt;
    int lport;
    /* data path */
    struct sx_bio *bio;
    int stop_fd;                /* eventfd: the control plane asks the thread to stop */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    bool halted;
    unsigned nr_reqs;           /* contexts = ring entries */
    struct bb_req *reqs;
    struct bb_req *free_reqs;
    unsigned inflight;
    void *req_mem;              /* backing of the contexts (mapped, req_mem_len bytes) */
    size_t req_mem_len;
    uint8_t *slots;             /* BB_MAX_BATCH ring slots copied by take */
    uint8_t **pages;            /* scratch: the page of each segment of the request at hand */
    struct bb_pcache pc;
    uint64_t now;               /* a counter for LRU */
    /* rsp pending notification */
    unsigned rsps_unpushed;
    struct sx_tt_q *tt;         /* --check / --torture: this ring's side (NULL: off) */
    bool answered;              /* the last step that did work pushed responses */
    /* latency sampling (the lat_* counters): one clock read per phase of a batch that holds a
     * sampled request, none otherwise */
    unsigned lat_ctr;
    uint64_t lat_batch_ns;                  /* this batch's take stamp, 0 until read */
    struct bb_req *lat_unsub[BB_LAT_MAX];   /* sampled, queued, not yet submitted */
    unsigned lat_nunsub;
    uint64_t lat_unpushed[BB_LAT_MAX];      /* completion stamps of sampled answers not pushed */
    unsigned lat_nunpushed;
    uint64_t lat_sum[3], lat_n[3];          /* backend, engine, response: not yet published */
    uint64_t st_acc[BB_ST_NR];              /* counters not yet in the stats file */
    uint64_t st_dirty;                      /* bit i: st_acc[i] holds something */
};

/* Prepare per-queue resources once the ring is attached and the engine opened
 * (contexts, cache). 0 or -errno. */
int bb_queue_alloc(struct bb_queue *q);
void bb_queue_free(struct bb_queue *q);          /* NULL-safe, idempotent */
/* Drop the queue's request memory without freeing it: what the engine may still write into. */
void bb_queue_forget(struct bb_queue *q);
/* Start / stop the ring thread. stop waits for in-flight I/O to complete, answers it, and
 * joins. Idempotent. */
int bb_queue_start(struct bb_queue *q);
void bb_queue_stop(struct bb_queue *q);

/* ---- --check and --torture (check.c): the ring thread's hooks, called when q->tt ---- */

/* A request decoded (why: its verdict): ids in flight, findings, torture's draws in rq->tt. */
void bb_tt_request(struct bb_queue *q, struct bb_req *rq, RING_IDX pos, enum sx_blk_reason why);
/* A grant of r's could not be mapped. */
void bb_tt_grant_bad(struct bb_queue *q, const struct sx_blk_req *r);
/* rq completed: were its grants ended while it was in flight (sim)? */
void bb_tt_grants(struct bb_queue *q, const struct bb_req *rq);
/* Hold rq's response back (torture), or false: answer now. */
bool bb_tt_hold(struct bb_queue *q, const struct bb_req *rq, uint8_t op);
/* After a push: the extra notifications torture owes. */
void bb_tt_burst(struct bb_queue *q);
/* The ring index the loop just read, or the ring's overflow (n < 0). */
void bb_tt_taken(struct bb_queue *q, int n);

/* ---- vbd and daemon (xenbus.c) ---- */

enum bb_vbd_phase {
    BB_NEW = 0,                 /* seen, not prepared */
    BB_READY,                   /* target open, features written, InitWait */
    BB_CONNECTED,               /* rings mapped, threads running */
    BB_CLOSED,                  /* torn down, Closed written */
    BB_FAILED,                  /* a bad frontend value or target: Closing + error node */
};

struct bb_daemon;

/* What this vbd offered at its last InitWait (the configuration, or torture's draw). */
struct bb_offer {
    unsigned max_indirect, max_ring_order, max_queues;
    bool persistent, flush, barrier, discard;
};

struct bb_vbd {
    struct bb_daemon *d;
    struct bb_vbd *next;
    domid_t fe;
    unsigned devid;
    char bep[128];
    char fep[128];
    char fe_token[64];
    char fe_state[140];         /* <fep>/state: the one frontend node watched */
    bool fe_watched;
    bool dirty;                 /* a watch named this vbd: evaluate it on this step */
    enum bb_vbd_phase phase;
    int fd;
    struct sx_bio_target *target;   /* a network target (then fd is -1) */
    bool direct;
    bool flush;                 /* feature-flush-cache / feature-barrier offered */
    unsigned max_queues;        /* multi-queue-max-queues offered (the target may lower it) */
    enum sx_bio_kind kind;
    struct sx_blk_dev dev;
    char physdev[32];
    uint32_t pss;               /* physical-sector-size */
    int written;                /* the backend state we last wrote (enum xenbus_state) */
    bool fe_dead;               /* @releaseDomain: the frontend domain is gone */
    unsigned nq, order;
    enum sx_blk_abi abi;
    bool persistent;
    struct bb_queue q[BB_MAX_QUEUES];
    struct sx_stats stats;
    bool stats_ok;
    bool seen;                  /* mark for the rescan */
    struct bb_offer offer;
    struct sx_tt_dev *tt;       /* --check / --torture (NULL: off) */
};

/* The features to offer at InitWait: what the configuration and the target allow (v->flush,
 * v->max_queues, discard), or (torture) a new draw within that. */
void bb_offer_pick(struct bb_vbd *v, bool discard);

/* Daemon-wide counters: the stats file blkback-<domid>-0. Order = bb_dstat_names. */
enum bb_dstat {
    BB_DS_WATCH_EVENTS,         /* watch events handled (backend tree, frontend state, release) */
    BB_DS_WATCH_IGNORED,        /* ... that named nothing to re-evaluate (below a watched node) */
    BB_DS_EVALS,                /* vbd state evaluations */
    BB_DS_RESCANS,              /* listings of the backend directory */
    BB_DS_VBDS,                 /* vbds known now */
    BB_DS_CONNECTED,            /* vbds connected now */
    BB_DS_ROUNDS,               /* control loop rounds (bb_daemon_step), idle ones included:
                                   at least one per 500 ms, so a frozen value is a stuck thread */
    BB_DS_NR
};

struct bb_daemon {
    struct bb_opts o;
    struct sx_plat *p;
    struct sx_gnt *gnt;
    struct sx_xenbus *xb;
    char root[96];              /* /local/domain/<domid>/backend/vbd */
    struct bb_vbd *vbds;
    bool rescan;                /* list the backend directory (vbds added or removed) */
    unsigned nr_vbds;
    struct sx_stats stats;      /* bb_dstat; not there when it could not be created */
    struct sx_tt *tt;           /* --check / --torture (NULL: off) */
};

/* Open the platform, xenstore, grants; watch the backend directory. 0 or -errno. */
int bb_daemon_open(struct bb_daemon **out, const struct bb_opts *o);
/* Serve until *stop becomes non-zero (signal handler) or xenstore goes away. 0 or -errno. */
int bb_daemon_run(struct bb_daemon *d, atomic_int *stop);
/* Tear every vbd down (Closed), release everything. NULL-safe. */
void bb_daemon_close(struct bb_daemon *d);
/* Run one round of watch dispatch (timeout_ms) and state evaluation: for tests that drive the
 * daemon in-process. Returns the number of events or -errno. */
int bb_daemon_step(struct bb_daemon *d, int timeout_ms);

void bb_opts_default(struct bb_opts *o);

#endif
