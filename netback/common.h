/*
 * splitxen-netback: private header shared by the control plane (xenbus.c), the tx data path
 * (netback.c), the rx data path (rx.c) and the credit limiter (rate.c).
 *
 * Layout follows Linux drivers/net/xen-netback: one struct nb per daemon, one nb_vif per
 * backend/vif/<fe>/<devid> node, one nb_queue per negotiated queue with its own thread, event
 * channel handle, rings and preallocated buffers. The control plane runs on the main thread
 * only; a queue's data is touched only by its thread between nb_queue_start and nb_queue_stop,
 * except its steering inbox (nb_steer), which the vif's other queue threads fill under its lock.
 *
 * Functions return 0 (or a count) or -errno.
 */
#ifndef SPLITXEN_NETBACK_COMMON_H
#define SPLITXEN_NETBACK_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ring/ring.h"
#include "netback/pkt.h"
#include "netdev/netdev.h"
#include "common/stats.h"
#include "grant/grant.h"
#include "evtchn/evtchn.h"
#include "xenbus/xenbus.h"
#include "torture/torture.h"

SX_RING_CHECK_TYPES(netif_tx_request_t, netif_tx_response_t);
SX_RING_CHECK_TYPES(netif_rx_request_t, netif_rx_response_t);

#define NB_MAX_QUEUES 16u                /* <= SX_NETDEV_MAX_QUEUES */
#define NB_TX_BATCH 64u                  /* packets per tx grant-copy batch */
#define NB_TX_SEGS 512u                  /* copy segments per tx batch */
#define NB_TX_ARENA (1u << 20)           /* bytes of packet buffers per tx batch */
#define NB_TX_PKT_MAX (SX_NETDEV_HDR_LEN + 65536u)
#define NB_TXQ (2u * 256u)               /* copied-but-unparsed tx requests */
#define NB_RX_BATCH 32u                  /* frames per rx batch (and the rx backlog bound) */
#define NB_RX_FRAME_MAX (SX_NETDEV_HDR_LEN + 65536u + 4096u)
#define NB_RX_SEGS (NB_RX_BATCH * 18u)
#define NB_RXQ 256u                      /* rx requests held (power of two) */

/* Per-vif counters (the stats file). Order matches nb_stat_names in xenbus.c. */
enum nb_stat {
    NBS_TX_PKTS, NBS_TX_BYTES, NBS_TX_GSO, NBS_TX_MCAST,
    NBS_TX_DROPS, NBS_TX_DROP_RUNT, NBS_TX_DROP_SLOTS, NBS_TX_DROP_OVERSIZE,
    NBS_TX_DROP_ZERO_FRAG, NBS_TX_DROP_GRANT, NBS_TX_DROP_HDR, NBS_TX_ERRORS, NBS_TX_FATAL,
    NBS_TX_BATCHES, NBS_TX_NOTIFIES, NBS_TX_THROTTLED,
    NBS_RX_PKTS, NBS_RX_BYTES, NBS_RX_GSO,
    NBS_RX_DROPS, NBS_RX_DROP_NOSG, NBS_RX_DROP_CONV, NBS_RX_DROP_GRANT, NBS_RX_ERRORS,
    NBS_RX_FATAL, NBS_RX_BATCHES, NBS_RX_NOTIFIES, NBS_RX_STALLS, NBS_RX_DROP_MCAST,
    NBS_SLEEPS, NBS_QUEUES, NBS_MAPPED_PAGES, NBS_CONNECTS,
    NBS_CTRL_REQS, NBS_CTRL_ERRORS, NBS_CTRL_FATAL, NBS_RX_HASH,
    NBS_RX_STEERED, NBS_RX_DROP_STEER,
    NBS_SPURIOUS, NBS_EOI_DELAYS, NBS_EOI_DELAYED_US,   /* late EOI: SX_EOI_STAT_NAMES */
    NBS_NR
};
_Static_assert(NBS_EOI_DELAYED_US - NBS_SPURIOUS + 1 == SX_EOI_NR_STATS, "eoi counters");
extern const char *const nb_stat_names[];

/* Credit limiter (rate.c), Linux netback's tx_credit: `bytes` per `usecs`. */
struct nb_rate {
    uint64_t bytes;       /* 0: unlimited */
    uint64_t usecs;
    uint64_t remaining;
    uint64_t next_ns;     /* when the next replenish is due */
};
/* Parse the libxl "BYTES,USECS" form. 0 or -EINVAL. */
int nb_rate_parse(const char *s, uint64_t *bytes, uint64_t *usecs);
void nb_rate_init(struct nb_rate *r, uint64_t bytes, uint64_t usecs);
#define NB_RATE_MIN_BURST 131072u
/* Take len bytes of credit at now_ns: true when allowed. When not, *wait_ns says how long until
 * the next replenish. Credit carries over up to max(bytes, NB_RATE_MIN_BURST), so any packet
 * (<= 64 KiB) passes eventually (Linux's tx_add_credit). */
bool nb_rate_take(struct nb_rate *r, uint64_t len, uint64_t now_ns, uint64_t *wait_ns);

/* Multicast control (mcast.c), Linux's xenvif_mcast_*. */
#define NB_MCAST_MAX 64                  /* XEN_NETBK_MCAST_MAX */
struct nb_mcast {
    pthread_mutex_t lock;
    atomic_bool enabled;                 /* the frontend's request-multicast-control */
    unsigned n;
    uint8_t addr[NB_MCAST_MAX][6];
};
void nb_mcast_init(struct nb_mcast *m);
void nb_mcast_destroy(struct nb_mcast *m);
void nb_mcast_reset(struct nb_mcast *m);
/* Apply an MCAST_ADD / MCAST_DEL request. 0, or -ENOSPC when the list is full (ADD). */
int nb_mcast_update(struct nb_mcast *m, uint8_t op, const uint8_t addr[6]);
/* Whether a frame for Ethernet destination dst goes to the frontend (unicast, broadcast, or
 * control off: always). */
bool nb_mcast_pass(struct nb_mcast *m, const uint8_t *dst);

/* Hashing and the control ring (hash.c), Linux's xen-netback hash.c + the ctrl ring of
 * interface.c. The state is written by the ctrl thread and read per rx batch, under lock. */
#define NB_HASH_KEY_MAX 40u                 /* XEN_NETBK_MAX_HASH_KEY_SIZE */
#define NB_HASH_MAPPING_MAX 128u            /* XEN_NETBK_MAX_HASH_MAPPING_SIZE */
#define NB_HASH_FLAGS_ALL (XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP | \
                           XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)
#define NB_XDP_HEADROOM_MAX 0x7FFFu         /* XEN_NETIF_MAX_XDP_HEADROOM */
/* A headroom must leave room in the page for a 1514-byte frame (Linux clamps to 0x7FFF only,
 * which leaves no room at all: we refuse instead). */
#define NB_XDP_HEADROOM_PAGE_MAX (SX_NET_PAGE_SIZE - 1514u)

struct nb_hash_cfg {                     /* what the rx path needs, snapshot per batch */
    uint32_t alg, flags;
    uint8_t key[NB_HASH_KEY_MAX];
};
struct nb_hash {
    pthread_mutex_t lock;
    atomic_bool active;                  /* cfg.alg != NONE; read without the lock (rx path) */
    struct nb_hash_cfg cfg;
    uint32_t size;                       /* mapping entries; 0: hash % nqueues */
    uint32_t mapping[NB_HASH_MAPPING_MAX];
    unsigned nqueues;                    /* entries must be below it */
};
void nb_hash_init(struct nb_hash *h, unsigned nqueues);   /* also resets: alg NONE, no key */
void nb_hash_destroy(struct nb_hash *h);
/* Toeplitz (netif.h's definition) of buf[0..len) with key[0..keylen). */
uint32_t nb_toeplitz(const uint8_t *key, unsigned keylen, const uint8_t *buf, unsigned len);
/* Hash an Ethernet frame per cfg (alg TOEPLITZ, the 'maximal' type the flags allow). true with
 * *hash and *type (_XEN_NETIF_CTRL_HASH_TYPE_*) when a type applies. */
bool nb_hash_frame(const struct nb_hash_cfg *cfg, const uint8_t *frame, uint32_t len,
                   uint32_t *hash, uint8_t *type);
/* The frontend queue for hash (Linux xenvif_select_queue): mapping[hash % size], or
 * hash % nqueues without a table. */
unsigned nb_hash_queue(struct nb_hash *h, uint32_t hash);
static inline unsigned nb_hash_pick(const uint32_t *mapping, uint32_t size, unsigned nqueues,
                                    uint32_t hash)
{
    return size ? mapping[hash % size] : hash % nqueues;
}
/* What a steering rx reader needs, copied once per batch (the table only when one is set). */
struct nb_hash_snap {
    struct nb_hash_cfg cfg;
    uint32_t size, nqueues;
    uint32_t mapping[NB_HASH_MAPPING_MAX];
};
void nb_hash_snapshot(struct nb_hash *h, struct nb_hash_snap *s);
/* Grant copy of len bytes from the frontend's gref (offset 0) into dst: 0 or -errno. */
typedef int nb_ctrl_copy_fn(void *arg, uint32_t gref, void *dst, uint32_t len);
/* Serve one control request (a private copy). rsp gets id, type, status and data. */
void nb_ctrl_handle(struct nb_hash *h, const struct xen_netif_ctrl_request *req,
                    struct xen_netif_ctrl_response *rsp, nb_ctrl_copy_fn *copy, void *arg);

struct nb_ctrl {                         /* the control ring of one vif */
    struct sx_evtchn *ev;
    evtchn_port_t port;
    void *mem;
    struct sx_back_ring ring;
    int stopfd;
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    bool halted;
};

struct nb_vif;
/* Map the frontend's ctrl ring (ctrl-ring-ref, event-channel-ctrl in fe dir) if it offers one
 * and start serving it. 0 (also without a ctrl ring) or -errno. */
int nb_ctrl_connect(struct nb_vif *v);
void nb_ctrl_disconnect(struct nb_vif *v);   /* idempotent */

struct nb_txslot {                       /* one packet of a tx batch */
    struct sx_net_txpkt pkt;
    uint32_t off;                        /* in the arena: vnet header, then the frame */
    uint32_t len;                        /* frame bytes */
    uint16_t seg0, nsegs;
    int16_t status;                      /* NETIF_RSP_* */
};

struct nb_rxframe {                      /* a frame from the world side */
    uint8_t *buf;                        /* NB_RX_FRAME_MAX: vnet header + frame */
    uint32_t len;                        /* frame bytes after the header */
    bool ready;                          /* meta computed (never convert twice: sw csum) */
    struct sx_net_netif_meta meta;
    bool hashed;                         /* has_hash/htype/hash computed (by a steering
                                            reader: the hash that chose the queue) */
    uint16_t first_len;                  /* torture: bytes of the first data slot (0: full) */
    bool has_hash;                       /* a XEN_NETIF_EXTRA_TYPE_HASH extra follows */
    uint8_t htype;
    uint32_t hash;
};

/*
 * Rx steering (steer.c), Linux xenvif_select_queue: with a hash algorithm set, the frontend's
 * mapping table, not the world side's queue choice, decides which rx ring a frame goes to.
 * The queue thread that reads a frame from its netdev queue hashes it; a frame for another queue
 * is handed to that queue's inbox: NB_STEER_SLOTS frame slots, each always owning one
 * NB_RX_FRAME_MAX buffer (full, or a spare), so a handoff swaps buffers and copies nothing.
 * Producers (the vif's other queue threads) and the owner take the short mutex; `count` is
 * also read without it. A full inbox drops (rx_drop_steer). The owner sleeps with `sleeping`
 * set and kickfd in its poll set; a producer that added frames kicks it only then.
 * Inboxes exist only for a vif with more than one queue and a ctrl ring (nothing else can set
 * an algorithm), allocated at connect time.
 */
#define NB_STEER_SLOTS NB_RX_BATCH       /* frames an inbox holds (power of two) */
struct nb_steer {
    pthread_mutex_t lock;
    atomic_uint count;                   /* full slots, from head (written under lock) */
    unsigned head;                       /* under lock */
    atomic_bool sleeping;                /* the owner is (about to be) asleep in poll */
    int kickfd;                          /* eventfd in the owner's poll set */
    struct nb_rxframe slot[NB_STEER_SLOTS];
};

struct nb_queue {
    struct nb_vif *vif;
    unsigned id;
    /* connect-time state */
    struct sx_evtchn *ev;
    evtchn_port_t tx_port, rx_port;      /* local ports; equal without split channels */
    void *tx_mem, *rx_mem;               /* mapped ring pages */
    struct sx_back_ring tx, rx;
    int worldfd;                         /* the netdev queue's poll fd */
    int stopfd;                          /* eventfd: wakes the thread to stop */
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    bool halted;                         /* a fatal frontend error: stop consuming */
    /* tx */
    netif_tx_request_t *txq;             /* NB_TXQ copied requests, [txq_head, txq_tail) */
    unsigned txq_head, txq_tail;
    struct nb_txslot *txs;               /* NB_TX_BATCH */
    xengnttab_grant_copy_segment_t *txsegs;   /* NB_TX_SEGS */
    uint8_t *arena;                      /* NB_TX_ARENA + NB_TX_PKT_MAX */
    struct nb_rate rate;
    uint64_t rate_wait_ns;               /* > 0: throttled until now + this */
    /* rx */
    netif_rx_request_t *rxq;             /* NB_RXQ held rx requests, ring of [rxq_head,rxq_tail) */
    unsigned rxq_head, rxq_tail;
    struct nb_rxframe *rxf;              /* NB_RX_BATCH frame buffers */
    unsigned rxf_pending;                /* frames read but not yet delivered (at the front) */
    xengnttab_grant_copy_segment_t *rxsegs;
    netif_rx_response_t *rxrsp;          /* NB_RX_SEGS + NB_RX_BATCH staged responses */
    bool rx_need_slots;                  /* a frame waits for rx buffers: do not read the world */
    struct nb_steer *steer;              /* this queue's inbox; NULL: the vif never steers */
    struct sx_tt_q *tt_tx, *tt_rx;       /* --check / --torture: the rings' side (NULL: off) */
};

struct nb;

struct nb_vif {
    struct nb *nb;
    struct nb_vif *next;
    unsigned fe_domid, devid;
    char be_path[128], fe_path[128];
    char tok_fe[48], tok_mc[48];
    bool watching_fe, watching_mc;
    enum xenbus_state be_state;
    bool connected;                      /* queues running */
    bool online;
    bool gone;                           /* backend dir removed: free at the next sweep */
    bool failed;                         /* a bad frontend config: wait for it to reset */
    bool dirty;                          /* a watch event named it: evaluate it this round */
    unsigned max_queues, nqueues;
    /* frontend features */
    bool split, rx_notify, sg, gso4, gso6, csum, csum6;
    struct sx_net_peer_caps rx_caps;
    uint64_t rate_bytes, rate_usecs;
    struct sx_netdev *nd;                /* the world side (netdev/), NULL: probe failed */
    struct nb_mcast mcast;
    struct nb_hash hash;
    struct nb_ctrl ctrl;
    atomic_uint xdp_headroom;            /* the frontend's xdp-headroom (validated) */
    struct sx_stats stats;
    struct nb_queue q[NB_MAX_QUEUES];
    struct sx_tt_dev *tt;                /* --check / --torture (NULL: off) */
    unsigned mq_offered;                 /* multi-queue-max-queues as last written */
    bool off_sg, off_gso4, off_gso6;     /* feature-sg / -gso-tcpv4 / -gso-tcpv6 as written */
};

struct nb_opts {
    int platform;                        /* enum sx_plat_kind */
    unsigned domid;
    const char *bridge_default;
    uint64_t spin_ns;
    const char *core_path;               /* sim: NULL = default */
    const char *xenstored_path;          /* NULL: the platform's */
    struct sx_tt_opts tt;                /* --check, --torture (check.c) */
};

struct nb {
    struct nb_opts o;
    struct sx_plat *plat;
    struct sx_gnt *gnt;
    struct sx_xenbus *xb;
    char vif_dir[64];
    struct nb_vif *vifs;
    unsigned ncpus;
    struct sx_stats stats;               /* daemon-wide: vifs, threads, mapped pages */
    bool dirty;                          /* list backend/vif: vifs came or went (control thread) */
    atomic_bool stop;
    struct sx_tt *tt;                    /* --check / --torture (NULL: off) */
};

/* xenbus.c: the daemon. nb_open connects and watches; nb_run dispatches until nb->stop;
 * nb_close tears every vif down. */
int nb_open(struct nb **out, const struct nb_opts *o);
int nb_run(struct nb *nb);
/* One control-plane step: dispatch watches for up to timeout_ms, then bring every vif in line
 * with xenstore. 0 or -ENOTCONN. (Tests drive the daemon with it.) */
int nb_step(struct nb *nb, int timeout_ms);
void nb_close(struct nb *nb);
int nb_count_vifs(const struct nb *nb);

/* netback.c: queue lifecycle and the per-queue loop. */
int nb_queue_alloc(struct nb_queue *q);      /* buffers; 0 or -ENOMEM */
void nb_queue_free(struct nb_queue *q);      /* NULL-safe, idempotent */
int nb_queue_start(struct nb_queue *q);      /* thread */
void nb_queue_stop(struct nb_queue *q);      /* join; idempotent */
/* tx: one batch. Returns packets handled (>= 0) or -EPROTO when the vif was halted. */
int nb_tx_action(struct nb_queue *q);
/* rx.c: one batch. Returns frames handled (>= 0) or -EPROTO. */
int nb_rx_action(struct nb_queue *q);
/* steer.c: the inbox of q, allocated before any queue thread of the vif starts and freed
 * after all of them stopped. 0 or -errno. */
int nb_steer_alloc(struct nb_queue *q);
void nb_steer_free(struct nb_queue *q);     /* NULL-safe, idempotent */
/* rx (reader): hash the frames q->rxf[first..rxf_pending) per hs, hand those another queue
 * is to get to its inbox and keep q's own (in order) at the front. Returns frames handed. */
unsigned nb_steer_route(struct nb_queue *q, unsigned first, const struct nb_hash_snap *hs);
/* rx (owner): move frames from q's inbox into q->rxf while there is room. Returns frames. */
unsigned nb_steer_pull(struct nb_queue *q);
/* Loop (owner), before sleeping: announce it; false when frames arrived meanwhile (do not
 * sleep). After poll: nb_steer_wake (kicked: kickfd was readable). */
bool nb_steer_sleep(struct nb_queue *q);
void nb_steer_wake(struct nb_queue *q, bool kicked);
/* --check and --torture (check.c): the queue thread's hooks, called when q->tt_tx/tt_rx. */
/* A tx packet parsed at txq_head (vd its verdict): ids, findings, torture's draws. True when
 * torture answers it with an error instead of sending it (an accepted packet only). */
bool nb_tt_tx_pkt(struct nb_queue *q, enum sx_net_tx_verdict vd, const struct sx_net_txpkt *pkt);
/* The tx ring's n responses rsp (written to the ring). */
void nb_tt_tx_rsp(struct nb_queue *q, const netif_tx_response_t *rsp, unsigned n);
/* n rx requests were taken into rxq ending at rxq_tail (n < 0: the ring overflowed). */
void nb_tt_rx_taken(struct nb_queue *q, int n);
/* The tx ring was read (n requests taken, or its overflow). */
void nb_tt_tx_taken(struct nb_queue *q, int n);
/* A frame is ready to go to the frontend: its first slot's length (torture), 0 for a full one. */
uint16_t nb_tt_rx_first(struct nb_queue *q, const struct nb_rxframe *f, unsigned per);
/* A grant copy of request id on ring tt failed (st: its GNTST_* code). */
void nb_tt_grant_bad(struct sx_tt_q *tt, uint16_t id, int st);
/* After a push on ring tt: the extra notifications torture owes, on port. */
void nb_tt_burst(struct nb_queue *q, struct sx_tt_q *tt, evtchn_port_t port);
/* Data slots of a frame of len bytes in slots of per bytes, the first first_len (0: per). */
static inline unsigned nb_rx_ndata(uint32_t len, unsigned per, unsigned first_len)
{
    unsigned first = first_len && first_len < per ? first_len : per;
    return len <= first ? 1 : 1 + (len - first + per - 1) / per;
}
/* The features to offer at InitWait: for each of the n boolean feature keys 1, and maxq
 * (in: configured, out: offered), unless torture draws others; remembered for the checks. */
void nb_offer_pick(struct nb_vif *v, const char *const *keys, unsigned *vals, unsigned n,
                   unsigned *maxq);

/* rx: true when the loop should poll the world side for input. */
static inline bool nb_rx_wants_world(const struct nb_queue *q)
{
    return !q->rx_need_slots && q->rxf_pending < NB_RX_BATCH;
}

#endif
