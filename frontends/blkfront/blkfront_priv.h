/* sxblkfront internals: shared by the control plane (blkfront.c) and the data path (io.c). */
#ifndef SPLITXEN_BLKFRONT_PRIV_H
#define SPLITXEN_BLKFRONT_PRIV_H

#include "frontends/blkfront/blkfront.h"

#include <pthread.h>
#include <stdatomic.h>

#include "ring/ring.h"   /* first: barriers before <xen/io/ring.h> */
#include <xen/io/blkif.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "stats.h"

struct sx_xenbus;

/* Segments one indirect page holds, and the most one request can carry. */
#define BF_SEGS_PER_IND_PAGE (SX_PAGE_SIZE / sizeof(struct blkif_request_segment))
#define BF_MAX_INDIRECT_SEGS (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BF_SEGS_PER_IND_PAGE)
#define BF_RSP_BATCH 64u
#define BF_LAT_SAMPLE 8u        /* latency stamps on 1 caller request in this many */
#define BF_LAT_MAX 64u          /* sampled ring requests waiting for their kick stamp */
#define BF_PUBLISH_EVERY 64u    /* completions between stats file updates (and at each arm) */

SX_RING_CHECK_TYPES(blkif_request_t, blkif_response_t);
_Static_assert(sizeof(blkif_request_indirect_t) <= sizeof(blkif_request_t),
               "indirect request must fit a ring slot");
_Static_assert(sizeof(blkif_request_discard_t) <= sizeof(blkif_request_t),
               "discard request must fit a ring slot");

enum bf_slot_state { BF_SLOT_FREE = 0, BF_SLOT_INFLIGHT = 1, BF_SLOT_ZOMBIE = 2 };

/* One ring request in flight (Linux's shadow entry). The request id on the ring is
 * (gen << 32) | slot index, so a stale or repeated response id is recognised. */
struct bf_slot {
    uint32_t gen;
    uint8_t state;
    uint8_t op;                 /* the operation written to the ring */
    uint8_t data_op;            /* BLKIF_OP_READ/WRITE for data, else the op */
    uint16_t nseg;              /* data pages */
    uint16_t nind;              /* indirect pages */
    uint32_t ureq;              /* caller request this is part of */
    uint32_t len;               /* data bytes */
    size_t buf_off;             /* where in the caller's buffer */
    void *shr;                  /* non-persistent: base of the nseg + nind shared pages */
    uint32_t *pg;               /* persistent: pool page indices, data then indirect */
    uint64_t t_kick;            /* latency sample: when it was pushed (0: not sampled) */
    bool zc;                    /* data in a granted buffer (sx_blkfront_buf_alloc): only the
                                   indirect pages come from the pool, no copy either way */
};

/* One caller request; completes when its last ring request does. */
struct bf_ureq {
    void *cookie;
    uint8_t *buf;
    uint64_t offset;            /* kept to reissue it after a move */
    size_t len;
    uint32_t parts;             /* ring requests still outstanding */
    int res;                    /* first error */
    uint8_t op;                 /* enum sx_blkfront_op */
    uint64_t t_fe;              /* latency sample: ns spent in submit (0: not sampled) */
};

struct bf_page {
    uint8_t *va;
    grant_ref_t ref;
};

struct bf_chunk {
    void *addr;
    uint32_t count;
};

/* A caller request that was in flight when the guest suspended, to be issued again on the
 * new connection (Linux blkfront's shadow, requeued by blkif_recover). */
struct bf_requeue {
    void *cookie;
    uint8_t *buf;
    uint64_t offset;
    size_t len;
    uint8_t op;
};

/* A granted buffer (sx_blkfront_buf_alloc): caller memory the backend reaches directly. */
#define BF_MAX_BUFS 64u
struct bf_buf {
    uint8_t *addr;
    size_t len;                 /* whole pages */
    grant_ref_t *refs;          /* one per page */
};

struct bf_queue {
    struct sx_blkfront *f;
    unsigned idx;
    /* transport (set up before Initialised) */
    void *ring_mem;
    grant_ref_t ring_refs[SX_RING_MAX_PAGES];
    struct sx_front_ring ring;
    bool ring_live;
    struct sx_evtchn *evt;
    int port;                   /* -1 until bound */
    /* data path (set up at Connected) */
    unsigned nr_ents;
    struct bf_slot *slots;
    uint32_t *slot_free;
    unsigned nslot_free;
    uint32_t *slot_pg;          /* nr_ents * pages_per_slot, carved into slots[i].pg */
    struct bf_ureq *ureqs;
    uint32_t *ureq_free;
    unsigned nureq_free;
    unsigned zombies;           /* slots waiting for the backend to unmap */
    grant_ref_t *gref_scratch;  /* pages_per_slot refs for the request being built */
    /* persistent page pool: LIFO free stack of indices into pool[] */
    struct bf_page *pool;
    unsigned pool_n, pool_cap;
    uint32_t *pool_free;
    unsigned npool_free;
    struct bf_chunk *chunks;
    unsigned nchunks;
    blkif_response_t rsp[BF_RSP_BATCH];
    struct sx_idle idle;        /* sx_blkfront_wait's spin, arm, sleep (events ended at once) */
    struct sx_blkfront_stats st;
    /* requests in flight at a suspend, not issued again yet (the new ring had no room) */
    struct bf_requeue *requeue;
    unsigned nrequeue;
    unsigned nrequeue_pre;      /* of them, from before the last suspend */
    struct sx_blkfront_stats pub;   /* what of st the stats file has already */
    unsigned lat_ctr;
    uint32_t unkicked[BF_LAT_MAX];  /* sampled slots put on the ring, not yet pushed */
    unsigned nunkicked;
};

struct sx_blkfront {
    struct sx_plat *plat;
    struct sx_blkfront_opts opts;
    struct sx_blkfront_info info;
    struct sx_xenbus *xb;
    pthread_mutex_t xb_lock;    /* xb from data-path threads (sx_blkfront_backend_state) */
    struct sx_gntshr *shr;
    bool announced;             /* we went Initialised: close must run the handshake */
    bool data_ready;
    bool suspended;             /* between sx_blkfront_suspend and _resume */
    unsigned segs_per_req;      /* data pages one ring request may carry */
    unsigned pages_per_slot;    /* segs_per_req + its indirect pages */
    uint16_t handle;            /* blkif_vdev_t written in requests */
    /* The backend answered a flush / discard BLKIF_RSP_EOPNOTSUPP: not sent again on this
     * connection (as Linux blkfront clears feature_flush / feature_discard). */
    atomic_bool no_flush, no_discard;
    struct sx_stats stats;      /* vbdfe-<self>-<devid> (opts.stats_file), every queue summed */
    domid_t stats_dom;          /* the <self> in its name */
    /* Granted buffers: entries are filled, then published by nbufs (release); never changed
     * or removed before close, so submit reads them without a lock. */
    struct bf_buf bufs[BF_MAX_BUFS];
    _Atomic unsigned nbufs;
    pthread_mutex_t buf_lock;   /* between allocators */
    struct bf_queue q[SX_BLKFRONT_MAX_QUEUES];
};

/* io.c */
int bf_data_setup(struct sx_blkfront *f);      /* after Connected: slots, pools */
/* Idempotent. With `unshare`, ends the grants of the pools and request pages; without, only
 * forgets them (a move gave them up already: sx_gntshr_resume). */
void bf_data_teardown(struct sx_blkfront *f, bool unshare);
/* At a suspend: copy every caller request in flight to its queue's requeue list. */
int bf_inflight_save(struct sx_blkfront *f);
/* Issue the requeued requests again (as many as the ring takes; the rest on later polls) and
 * kick. 0 or -errno. */
int bf_requeue_drain(struct sx_blkfront *f, struct bf_queue *q);
void bf_bufs_release(struct sx_blkfront *f);   /* the granted buffers, after disconnect */
/* A move gave the granted buffers up (sx_gntshr_resume ended their grants): forget them, so
 * no request names their old references; later requests in them are copied. */
void bf_bufs_forget(struct sx_blkfront *f);
/* The counters the stats file shows, in this order (NULL-terminated). */
extern const char *const bf_stat_names[];
/* Add what queue q counted since its last publication to the stats file. */
void bf_stats_publish(struct sx_blkfront *f, struct bf_queue *q);

#endif
