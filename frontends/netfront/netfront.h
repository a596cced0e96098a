/*
 * sxnetfront: a userspace netif frontend (Linux drivers/net/xen-netfront.c is the model,
 * <xen/io/netif.h> the specification). A process acting as guest domain <self> opens vif
 * <devid>, negotiates with the backend over xenstore, shares a tx and an rx ring per queue plus
 * a pool of granted pages per ring, and then moves Ethernet frames with send/recv.
 *
 * Control plane (open, wait_connected, ctrl_*, close) runs on one thread. Each queue's data
 * path (send, tx_push, tx_reap, recv, events) is owned by one thread; different queues may run
 * on different threads with no locking.
 *
 * Buffers: every queue owns NET_TX_RING_SIZE tx pages (granted read-only to the backend) and
 * NET_RX_RING_SIZE rx pages (granted writable), granted once at connect time. A tx request id
 * names its page; a frame is copied into as many pages as it needs (one slot each,
 * NETTXF_more_data between them). The rx ring is kept full: request id i is page i, posted at
 * every ring index with the same low bits, and reposted as soon as its response is consumed.
 * Responses are copied off the shared ring once and validated on the copy: a backend cannot
 * make us read outside a page or reuse a buffer that is not outstanding.
 *
 * Every call returns 0 (or a count / length) or -errno.
 */
#ifndef SPLITXEN_NETFRONT_H
#define SPLITXEN_NETFRONT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <xen/xen.h>

#include "platform/platform.h"

#define SX_NETFRONT_MAX_QUEUES 16u
/* Largest frame send accepts and recv can deliver: the 16-bit size of the first tx slot. */
#define SX_NETFRONT_MAX_FRAME 65535u

struct sx_netfront;

struct sx_netfront_opts {
    unsigned devid;             /* vif/<devid> */
    unsigned max_queues;        /* cap on multi-queue-num-queues; 0 = 1 */
    bool no_sg;                 /* neither send nor accept multi-slot frames (implies no_gso) */
    bool no_gso;                /* neither send nor accept GSO frames */
    bool no_csum_offload;       /* write feature-no-csum-offload=1; send refuses csum_blank */
    bool no_ipv6_csum_offload;  /* do not write feature-ipv6-csum-offload=1 */
    bool single_evtchn;         /* one event channel per queue even if the backend can split */
    int timeout_ms;             /* wait for the backend's InitWait in open; 0 = 10000, <0 = forever */
    int close_timeout_ms;       /* each of close's two waits; 0 = 5000 (Linux XENNET_TIMEOUT) */
    const char *xenstored_path; /* NULL: the platform's (sx_xenstored_path on sim) */
    uint64_t spin_ns;           /* sx_netfront_spin's budget; 0: never spin */
};

/* What was negotiated (valid after open). tx_* are what send may use (backend features),
 * rx_* what we advertised and recv may deliver. */
struct sx_netfront_info {
    domid_t self, backend_id;
    unsigned devid, nqueues;
    bool split_evtchn;
    bool tx_sg, tx_gso_tcpv4, tx_gso_tcpv6, tx_csum, tx_ipv6_csum;
    bool rx_sg, rx_gso_tcpv4, rx_gso_tcpv6, rx_csum, rx_ipv6_csum;
    uint8_t mac[6];
    unsigned mtu;               /* device/vif/<devid>/mtu, 1500 when absent */
    unsigned tx_ring_size, rx_ring_size;
    char frontend_path[128], backend_path[128];
};

/* Offload metadata of one frame, both directions. */
#define SX_NETFRONT_CSUM_BLANK     0x1u  /* checksum field holds the pseudo-header sum */
#define SX_NETFRONT_DATA_VALIDATED 0x2u  /* checksum already verified */
struct sx_netfront_meta {
    uint16_t flags;             /* SX_NETFRONT_CSUM_BLANK | SX_NETFRONT_DATA_VALIDATED */
    uint8_t gso_type;           /* XEN_NETIF_GSO_TYPE_NONE / _TCPV4 / _TCPV6 */
    uint16_t gso_size;          /* MSS when gso_type is set */
};

struct sx_netfront_stats {
    uint64_t tx_pkts, tx_bytes, tx_slots, tx_gso, tx_csum_blank;
    uint64_t tx_rsp_errors;     /* responses with NETIF_RSP_ERROR / _DROPPED */
    uint64_t tx_bad_rsp;        /* responses naming an id that is not in flight */
    uint64_t tx_full;           /* send returned -EAGAIN */
    uint64_t tx_pushes, tx_notifies;
    uint64_t rx_pkts, rx_bytes, rx_slots, rx_gso, rx_csum_blank;
    uint64_t rx_rsp_errors;     /* frames the backend answered with a negative status */
    uint64_t rx_bad;            /* malformed frames dropped (id, offset/size, extras, GSO) */
    uint64_t rx_oversize;       /* frames larger than the caller's buffer, dropped */
    uint64_t rx_pushes, rx_notifies;
    uint64_t events;            /* event channel deliveries acknowledged */
};

/*
 * Open vif opts->devid as domain p->self: read backend/backend-id/mac/mtu from
 * /local/domain/<self>/device/vif/<devid>, wait for the backend's InitWait, read its features,
 * negotiate, share rings and buffer pools, bind event channels, write the frontend keys in one
 * transaction and switch to Connected (as Linux does: the backend connects on that). Returns
 * 0, -ETIMEDOUT (no InitWait), -EPROTONOSUPPORT (no feature-rx-copy), -EINVAL (bad xenstore
 * values) or another -errno. On failure nothing is left shared or bound.
 */
int sx_netfront_open(struct sx_netfront **out, struct sx_plat *p,
                     const struct sx_netfront_opts *opts);
/* Wait until the backend is Connected. 0, -ETIMEDOUT, or -ENOTCONN when it went to Closing or
 * Closed instead. timeout_ms < 0 waits forever. */
int sx_netfront_wait_connected(struct sx_netfront *f, int timeout_ms);
/* Disconnect (Closing, wait for the backend, Closed, wait), unbind and unshare everything.
 * NULL-safe. */
void sx_netfront_close(struct sx_netfront *f);

const struct sx_netfront_info *sx_netfront_info(const struct sx_netfront *f);

/*
 * After a suspend (frontends/control). The caller has stopped every queue's thread and the
 * control plane's use of f before the suspend hypercall. moved = false (cancelled): go on;
 * -ENOTCONN if the backend left Connected meanwhile. moved = true (f's platform handle was
 * moved: sx_plat_move): as Linux's netfront_resume, the rings and buffers are given up in the
 * domain's new home (frames that were on them are lost, as on Linux: the network recovers),
 * and the vif is connected anew on its new paths, features negotiated again; the backend must
 * offer as many queues as before (-EPROTO). Waits for the backend to be Connected. The queue
 * fds stay the same; the control fd (sx_netfront_ctrl_fd) changes.
 */
int sx_netfront_resume(struct sx_netfront *f, bool moved);

/* Control events: a pollable fd (xenstore watches) and a handler that drains them and returns
 * the backend's current XenbusState (or -errno). Control-plane thread only. */
int sx_netfront_ctrl_fd(struct sx_netfront *f);
int sx_netfront_ctrl_handle(struct sx_netfront *f);

/* ---- data path: one thread per queue ---- */

/* Readable when queue q has an event (tx completions or rx frames). -EINVAL for a bad q. */
int sx_netfront_fd(struct sx_netfront *f, unsigned q);
/* Acknowledge and unmask queue q's pending events; call before processing, or as the arm
 * step of sx_netfront_spin/_sleep's loop. Returns the number of ports that had an event (0
 * when none). */
int sx_netfront_events(struct sx_netfront *f, unsigned q);

/*
 * The idle step of queue q's thread, over ring/'s sx_idle (events are ended at once: a
 * frontend trusts its backend):
 *
 *     for (;;) {
 *         bool work = <send and receive a batch>;
 *         if (sx_netfront_spin(f, q, work) || work)     // responses within opts.spin_ns
 *             continue;
 *         sx_netfront_events(f, q);                     // arm
 *         if (sx_netfront_has_work(f, q))               // re-check
 *             continue;
 *         sx_netfront_sleep(f, q, pfd, n, -1);          // pfd[0].fd = sx_netfront_fd(f, q)
 *     }
 *
 * spin: records whether the round did work and, after a round that did not, spins if one
 * since the last arm did (a wake that found nothing buys no spin); true when responses showed
 * up. sleep: poll(2) on pfd[0..n); returns poll's count or -errno.
 */
bool sx_netfront_spin(struct sx_netfront *f, unsigned q, bool work);
int sx_netfront_sleep(struct sx_netfront *f, unsigned q, struct pollfd *pfd, unsigned n,
                      int timeout_ms);

#define SX_NETFRONT_SEND_MORE 0x1u  /* more frames follow: do not publish yet (tx_push later) */
/*
 * Copy frame pkt[0..len) into granted pages and queue it on queue q's tx ring. meta may be
 * NULL. Returns 0; -EAGAIN when the ring has no room for the frame even after reaping
 * responses (the tx event is then armed: poll the fd and retry); -EMSGSIZE for len < 14,
 * len > 65535, or len > one page without tx_sg; -EOPNOTSUPP for GSO or csum_blank the
 * negotiation does not allow; -EINVAL for a bad meta; -EPROTO when the ring is halted.
 * send does not parse frames: csum_blank on an IPv6 frame is the caller's to check against
 * info.tx_ipv6_csum (sx_netfront_meta_from_vnet does).
 */
int sx_netfront_send(struct sx_netfront *f, unsigned q, const void *pkt, size_t len,
                     const struct sx_netfront_meta *meta, unsigned flags);
/*
 * Zero-copy transmit, as a guest kernel's netfront grants the skb's own pages: the caller takes
 * free tx pages (already granted to the backend), puts the frame straight into them (e.g. reads
 * a TAP into them), and queues it without a copy.
 *
 *   tx_get     take up to n free pages of queue q (reaping responses first when fewer are
 *              free); returns how many (0: none free now). They are the caller's until sent
 *              or put back.
 *   tx_put     give pages back unused.
 *   send_pages queue the frame of len bytes held in pg[0..npages): every page full but the
 *              last, npages = ceil(len / SX_NETFRONT_PAGE_SIZE). Returns as sx_netfront_send
 *              (-EINVAL also for pages the caller does not hold); on success the pages are the
 *              ring's until their responses come back (tx_reap), on failure still the caller's.
 */
#define SX_NETFRONT_PAGE_SIZE 4096u
#define SX_NETFRONT_MAX_PAGES ((SX_NETFRONT_MAX_FRAME + SX_NETFRONT_PAGE_SIZE - 1) / \
                               SX_NETFRONT_PAGE_SIZE)
struct sx_netfront_page {
    uint16_t id;
    uint8_t *addr;              /* SX_NETFRONT_PAGE_SIZE bytes */
};
int sx_netfront_tx_get(struct sx_netfront *f, unsigned q, struct sx_netfront_page *pg,
                       unsigned n);
void sx_netfront_tx_put(struct sx_netfront *f, unsigned q, const struct sx_netfront_page *pg,
                        unsigned n);
int sx_netfront_send_pages(struct sx_netfront *f, unsigned q, const struct sx_netfront_page *pg,
                           unsigned npages, size_t len, const struct sx_netfront_meta *meta,
                           unsigned flags);
/* Before sleeping for want of tx pages: publish what is queued, ask for an event on queue q's
 * next tx response and look once more. 1 when responses are there already (reap them rather
 * than sleep), 0 when the event is armed, -EPROTO. */
int sx_netfront_tx_arm(struct sx_netfront *f, unsigned q);

/* Publish queued tx requests; notify the backend once if the ring asks for it. 0 or -EPROTO. */
int sx_netfront_tx_push(struct sx_netfront *f, unsigned q);
/* Take tx responses and free their pages. Returns the number of frames' slots freed. */
int sx_netfront_tx_reap(struct sx_netfront *f, unsigned q);
/* Tx requests published or queued and not yet answered (0 = everything completed). */
unsigned sx_netfront_tx_inflight(const struct sx_netfront *f, unsigned q);

/*
 * Receive the next frame of queue q into buf[0..cap) with its metadata (meta may be NULL).
 * Returns its length; -EAGAIN when no complete frame is there (the rx event is armed and the
 * consumed buffers are reposted: poll the fd); -EPROTO when the ring is halted. Malformed
 * frames and frames larger than cap are dropped and counted, never returned.
 */
int sx_netfront_recv(struct sx_netfront *f, unsigned q, void *buf, size_t cap,
                     struct sx_netfront_meta *meta);

/*
 * Zero-copy receive: the next frame of queue q left where the backend put it. fr->seg[] point
 * into the rx pages (the caller may read and write them) until sx_netfront_recv_release, which
 * hands back every frame peeked so far on q and publishes the buffers to the backend. Several
 * frames may be held between the two (each holds its slots: release before the ring runs
 * dry). Returns the frame's length, -EAGAIN (as recv), -EPROTO. sx_netfront_recv returns
 * -EBUSY while frames are held.
 */
#define SX_NETFRONT_RX_MAX_SEGS 18u     /* data slots a received frame may span */
struct sx_netfront_rxframe {
    size_t len;
    unsigned nseg;
    struct iovec seg[SX_NETFRONT_RX_MAX_SEGS];
    struct sx_netfront_meta meta;
};
int sx_netfront_recv_peek(struct sx_netfront *f, unsigned q, struct sx_netfront_rxframe *fr);
int sx_netfront_recv_release(struct sx_netfront *f, unsigned q);

/* Cheap check for the adaptive spin: new responses are visible on queue q's rx or tx ring.
 * No barrier, no side effect; may be stale. */
bool sx_netfront_has_work(const struct sx_netfront *f, unsigned q);

/* Queue q's counters (q < nqueues), or the sum over all queues with q = ~0u. Reads another
 * thread's counters without synchronisation: fine for reporting. 0 or -EINVAL. */
int sx_netfront_stats(const struct sx_netfront *f, unsigned q, struct sx_netfront_stats *out);

/* ---- virtio-net header conversion for TAP users (vnet.c; link sxnetback) ---- */
struct virtio_net_hdr_v1;
/*
 * A frame read from an IFF_VNET_HDR TAP -> meta for send, under the negotiated tx features.
 * A partial checksum the backend cannot take (IPv6 without its feature-ipv6-csum-offload, or
 * any with csum offload disabled) is completed in buf. 0 or -errno (drop the frame):
 * -EOPNOTSUPP for a GSO type the backend did not advertise, -EINVAL for a header that does not
 * fit the frame.
 */
int sx_netfront_meta_from_vnet(const struct sx_netfront *f, const struct virtio_net_hdr_v1 *vh,
                               uint8_t *buf, size_t len, struct sx_netfront_meta *meta);
/* A received frame's meta -> the virtio-net header to write to the TAP (csum_start/offset
 * found by parsing buf). 0 or -errno (drop the frame). */
int sx_netfront_vnet_from_meta(const struct sx_netfront_meta *meta, uint8_t *buf, size_t len,
                               struct virtio_net_hdr_v1 *vh);
/* The same for a peeked frame: its headers must lie in its first segment (they do for any
 * backend that fills whole pages, as netif asks). */
int sx_netfront_vnet_from_frame(const struct sx_netfront_rxframe *fr,
                                struct virtio_net_hdr_v1 *vh);

#endif
