/* sxnetfront private header: the handle, per-queue state, shared between xenbus.c (control
 * plane), tx.c and rx.c (data plane). */
#ifndef SPLITXEN_NETFRONT_COMMON_H
#define SPLITXEN_NETFRONT_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "ring/ring.h"   /* barrier.h before <xen/io/ring.h> */
#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "frontends/netfront/netfront.h"

#define NF_PAGE_SIZE 4096u
#define NF_TX_RING_SIZE __CONST_RING_SIZE(netif_tx, NF_PAGE_SIZE)   /* 256 */
#define NF_RX_RING_SIZE __CONST_RING_SIZE(netif_rx, NF_PAGE_SIZE)   /* 256 */
/* Data slots of the largest frame: 65535 bytes in whole pages. */
#define NF_TX_MAX_DATA_SLOTS ((SX_NETFRONT_MAX_FRAME + NF_PAGE_SIZE - 1) / NF_PAGE_SIZE)
/* Slots a received frame may span (Linux: MAX_SKB_FRAGS + 1 = 18) and extras it may carry. */
#define NF_RX_MAX_DATA_SLOTS 18u
#define NF_RX_MAX_EXTRAS (XEN_NETIF_EXTRA_TYPE_MAX - 1)
/* Repost this many consumed rx buffers before publishing them without waiting for -EAGAIN. */
#define NF_RX_PUSH_BATCH 16u

_Static_assert(NF_TX_RING_SIZE == 256 && NF_RX_RING_SIZE == 256, "netif ring sizes");
_Static_assert(NF_PAGE_SIZE == SX_NETFRONT_PAGE_SIZE && NF_TX_MAX_DATA_SLOTS ==
               SX_NETFRONT_MAX_PAGES, "the public page constants");
_Static_assert(NF_RX_MAX_DATA_SLOTS == SX_NETFRONT_RX_MAX_SEGS, "rx segments");
_Static_assert(NF_TX_MAX_DATA_SLOTS + 1 <= XEN_NETIF_NR_SLOTS_MIN,
               "a maximal frame must fit in the slots every backend accepts");

struct sx_gntshr;
struct sx_evtchn;

struct nf_queue {
    struct sx_netfront *f;
    unsigned idx;

    struct sx_evtchn *ev;
    int tx_port, rx_port;         /* equal without split event channels; -1 = not bound */

    /* tx: ring page, one page per request id */
    void *tx_sring;
    grant_ref_t tx_ring_ref;
    struct sx_front_ring tx;
    uint8_t *tx_pool;
    grant_ref_t tx_refs[NF_TX_RING_SIZE];
    uint16_t tx_free[NF_TX_RING_SIZE];   /* stack of free ids */
    unsigned tx_nfree;
    bool tx_busy[NF_TX_RING_SIZE];       /* id is in flight */
    bool tx_held[NF_TX_RING_SIZE];       /* id is the caller's (sx_netfront_tx_get) */

    /* rx: ring page, page i backs request id i (posted at ring indexes == i mod size) */
    void *rx_sring;
    grant_ref_t rx_ring_ref;
    struct sx_front_ring rx;
    uint8_t *rx_pool;
    grant_ref_t rx_refs[NF_RX_RING_SIZE];
    netif_rx_response_t rx_stage[NF_RX_RING_SIZE]; /* copies of responses [rx_done, rsp_cons) */
    RING_IDX rx_done;             /* first staged response not yet reposted */
    RING_IDX rx_cur;              /* first staged response not yet parsed (>= rx_done) */
    unsigned rx_unpushed;         /* reposted requests not yet published */
    bool rx_skip;                 /* dropping the rest of an over-long chain */

    struct sx_idle idle;          /* the queue thread's spin, arm, sleep */
    struct sx_netfront_stats st;
};

struct sx_netfront {
    struct sx_plat *plat;
    struct sx_netfront_opts opts;
    struct sx_netfront_info info;
    struct sx_xenbus *xb;
    struct sx_gntshr *shr;
    int be_state;                 /* last backend state seen by the watch (-errno if garbage) */
    bool be_watch;
    bool connected_keys;          /* our keys are written and state was switched */
    unsigned nq_alloc;
    struct nf_queue *q;           /* nq_alloc entries */
};

/* tx.c / rx.c: set up a queue's rings and pools (called from open), and release them. */
int nf_tx_setup(struct nf_queue *q);
void nf_tx_teardown(struct nf_queue *q);
int nf_rx_setup(struct nf_queue *q);
void nf_rx_teardown(struct nf_queue *q);
/* Unshare pages, retrying while the backend still maps them (up to ~1 s). */
void nf_unshare(struct sx_netfront *f, void *addr, uint32_t count, const char *what);
/* Notify the backend on port (ignore a not-yet-connected channel). */
void nf_notify(struct nf_queue *q, int port);

#endif
