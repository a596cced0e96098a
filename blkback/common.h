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

struct sx_gnt;
struct sx_evtchn;
struct sx_xenbus;

#define BB_MAX_QUEUES 16u
#define BB_DEFAULT_MAX_PGRANTS 1056u   /* per queue, Linux xen_blkif_max_pgrants */
#define BB_MAX_BATCH 64u               /* requests taken off the ring per step */

struct bb_opts {
    enum sx_plat_kind plat;
    domid_t domid;                 /* the backend domain we act as */
    enum sx_bio_kind engine;       /* SX_BIO_AUTO: per target */
    uint64_t spin_ns;              /* adaptive polling budget before sleeping */
    unsigned max_queues;           /* multi-queue-max-queues (1..BB_MAX_QUEUES) */
    unsigned max_ring_order;       /* max-ring-page-order (0..SX_RING_MAX_ORDER) */
    unsigned max_indirect;         /* feature-max-indirect-segments (0 = off) */
    unsigned max_pgrants;          /* persistent grants cached per queue (0 = no persistent) */
    bool sqpoll;                   /* io_uring SQPOLL (off by default) */
    bool no_regbuf;                /* do not register persistent pages with io_uring */
    bool spin_yield;               /* sched_yield() every 16 spin rounds (default off: measured no gain) */
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
    void *req_mem;              /* backing of the contexts */
    uint8_t *slots;             /* BB_MAX_BATCH ring slots copied by take */
    uint8_t **pages;            /* scratch: the page of each segment of the request at hand */
    struct bb_pcache pc;
    uint64_t now;               /* a counter for LRU */
    /* rsp pending notification */
    unsigned rsps_unpushed;
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

/* ---- vbd and daemon (xenbus.c) ---- */

enum bb_vbd_phase {
    BB_NEW = 0,                 /* seen, not prepared */
    BB_READY,                   /* target open, features written, InitWait */
    BB_CONNECTED,               /* rings mapped, threads running */
    BB_CLOSED,                  /* torn down, Closed written */
    BB_FAILED,                  /* a bad frontend value or target: Closing + error node */
};

struct bb_daemon;

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
};

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
