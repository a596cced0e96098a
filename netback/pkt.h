/*
 * netif tx packet parsing and validation: netback's side of the tx ring (the world-side
 * conversions to and from virtio-net headers are netdev/vnet.h). Pure functions: no I/O, no
 * allocation, no global state; safe on any thread. Everything a frontend controls arrives as a
 * private copy (the ring loop copies the requests off the shared ring once, then hands the
 * copies here).
 *
 * Tx validation follows Linux drivers/net/xen-netback/netback.c (xenvif_tx_build_gops,
 * xenvif_get_extras, xenvif_count_requests, xenvif_set_skb_gso, checksum_setup):
 *
 *   FATAL (xenvif_fatal_tx_err: halt this vif, keep everything else)
 *     - an extra-info slot of type NONE or >= XEN_NETIF_EXTRA_TYPE_MAX
 *     - more than SX_NET_TX_MAX_EXTRAS extra-info slots in one chain
 *     - a slot whose offset + size crosses its page (SX_NET_PAGE_SIZE, 4 KiB)
 *     - more than SX_NET_TX_FATAL_SLOTS (20, Linux's fatal_skb_slots default) slots after the
 *       first one ("malicious frontend")
 *     - a GSO extra with size 0 or a type other than TCPV4/TCPV6
 *     - with complete=true: a packet whose extras or more_data chain runs past the published
 *       requests (Linux: "Missing extra info" / "Asked for %d slots but exceeds this limit")
 *   DROP (xenvif_tx_err: NETIF_RSP_ERROR for every slot, vif keeps running)
 *     - more than SX_NET_TX_LEGACY_SLOTS (18, Linux XEN_NETBK_LEGACY_SLOTS_MAX) slots after
 *       the first one, up to 20
 *     - a following slot larger than what remains of the first slot's total size (the first
 *       slot's size is the packet length; it covers every following slot)
 *     - a zero-length following slot (stricter than Linux, which copies nothing for it)
 *     - less than ETH_HLEN (14) bytes left in the first slot itself, which includes a first
 *       slot of size 0
 *   A packet is at most 0xffff bytes (XEN_NETIF_MAX_TX_SIZE): the first slot's size is 16 bits.
 *
 * Slot budget per packet: 1 + 4 extras + 20 following = SX_NET_TX_MAX_SLOTS. The limits are
 * checked before the parser asks for the next slot, so with avail >= SX_NET_TX_MAX_SLOTS it
 * never answers NEED_MORE, whatever the slots hold: a packet that would need more is FATAL
 * (a ring loop holding that many copied requests can always decide; waiting for more would
 * hold them unanswered for ever).
 */
#ifndef SPLITXEN_NETBACK_PKT_H
#define SPLITXEN_NETBACK_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "netdev/vnet.h" /* and through it barrier.h before <xen/io/netif.h> */
#include <xen/grant_table.h>

#define SX_NET_PAGE_SIZE 4096u             /* XEN_PAGE_SIZE: grants are 4 KiB pages */
#define SX_NET_TX_LEGACY_SLOTS 18          /* XEN_NETBK_LEGACY_SLOTS_MAX: following slots
                                              beyond which a packet is dropped */
#define SX_NET_TX_FATAL_SLOTS 20           /* following slots before the vif is halted */
#define SX_NET_TX_MAX_EXTRAS (XEN_NETIF_EXTRA_TYPE_MAX - 1)
#define SX_NET_TX_MAX_FRAGS (1 + SX_NET_TX_LEGACY_SLOTS)
#define SX_NET_TX_MAX_SLOTS (1 + SX_NET_TX_MAX_EXTRAS + SX_NET_TX_FATAL_SLOTS)

enum sx_net_tx_verdict {
    SX_NET_TX_OK,        /* frags[] describe a packet to transmit */
    SX_NET_TX_MCAST,     /* a multicast filter request (no data): apply it, respond */
    SX_NET_TX_DROP,      /* respond NETIF_RSP_ERROR (sx_net_tx_responses), consume nr_slots */
    SX_NET_TX_FATAL,     /* halt this vif: stop consuming, disconnect */
    SX_NET_TX_NEED_MORE, /* the packet continues past `avail` (< SX_NET_TX_MAX_SLOTS):
                            call again with more */
};

enum sx_net_tx_reason {
    SX_NET_TXR_NONE,
    /* drops */
    SX_NET_TXR_RUNT,            /* first slot's own data < ETH_HLEN (incl. size 0) */
    SX_NET_TXR_TOO_MANY_SLOTS,  /* > 18 following slots */
    SX_NET_TXR_SLOT_OVERSIZE,   /* following slots add up to more than the first slot's size */
    SX_NET_TXR_ZERO_FRAG,       /* a zero-length following slot */
    /* fatal */
    SX_NET_TXR_MALICIOUS_SLOTS, /* > 20 following slots */
    SX_NET_TXR_CROSS_PAGE,      /* offset + size > XEN_PAGE_SIZE */
    SX_NET_TXR_EXTRA_TYPE,      /* extra type NONE or unknown */
    SX_NET_TXR_TOO_MANY_EXTRAS, /* extra chain longer than SX_NET_TX_MAX_EXTRAS */
    SX_NET_TXR_MISSING_EXTRA,   /* complete: extra chain runs past the published requests */
    SX_NET_TXR_MISSING_SLOTS,   /* complete: more_data runs past the published requests */
    SX_NET_TXR_GSO_SIZE,        /* GSO extra with size 0 */
    SX_NET_TXR_GSO_TYPE,        /* GSO extra with an unknown type */
    SX_NET_TXR_INCOMPLETE,      /* ring loop, not the parser: NEED_MORE with nothing more to
                                   give (the held slots can never complete the packet) */
    SX_NET_TXR_NR
};

/* Short name of a reason, for counters and logs ("runt", "cross_page", ...). */
const char *sx_net_tx_reason_str(enum sx_net_tx_reason r);

struct sx_net_txfrag {
    grant_ref_t gref;
    uint16_t offset;
    uint16_t len;
    uint16_t id;
};

struct sx_net_txpkt {
    unsigned nr_slots;   /* requests consumed (first + extras + following): OK, MCAST and
                            DROP; for FATAL only as far as parsing got */
    unsigned nr_extras;  /* of which extra-info slots (slots 1..nr_extras) */
    unsigned total_len;  /* first slot's size: the whole packet */
    unsigned nr_frags;   /* OK only: frags[0] is the first slot's own data */
    bool csum_blank;     /* NETTXF_csum_blank */
    bool data_validated; /* NETTXF_data_validated */
    struct {
        uint8_t type;    /* XEN_NETIF_GSO_TYPE_NONE / TCPV4 / TCPV6 */
        uint16_t size;   /* MSS */
    } gso;
    bool has_hash;
    struct {
        uint8_t type;    /* _XEN_NETIF_CTRL_HASH_TYPE_* bit number */
        uint8_t algorithm;
        uint8_t value[4];
    } hash;
    uint8_t mcast_op;    /* MCAST verdict: XEN_NETIF_EXTRA_TYPE_MCAST_ADD or _DEL */
    uint8_t mcast_addr[6];
    enum sx_net_tx_reason reason;
    /* Arrays last (the parser clears only the fields above). */
    struct sx_net_txfrag frags[SX_NET_TX_MAX_FRAGS];
    /* Response ids in ring order; resp_is_extra[i] marks the NETIF_RSP_NULL slots. */
    uint16_t resp_id[SX_NET_TX_MAX_SLOTS];
    bool resp_is_extra[SX_NET_TX_MAX_SLOTS];
};

/*
 * Parse the packet starting at slots[0], with avail (>= 1) copied requests available.
 * complete: slots[avail-1] is the last request the frontend published (req_prod), so a packet
 * running past it is broken (FATAL, as Linux) rather than NEED_MORE. NEED_MORE only with
 * !complete and avail < SX_NET_TX_MAX_SLOTS. Fills *pkt; returns the verdict (pkt->reason says
 * why for DROP and FATAL).
 */
enum sx_net_tx_verdict sx_net_tx_parse(const netif_tx_request_t *slots, unsigned avail,
                                       bool complete, struct sx_net_txpkt *pkt);

/* Fill the pkt->nr_slots responses for a parsed packet, in ring order: status for each data
 * slot, NETIF_RSP_NULL for each extra (as Linux's make_tx_response). Returns the count. */
unsigned sx_net_tx_responses(const struct sx_net_txpkt *pkt, int16_t status,
                             netif_tx_response_t *rsp);

/* Rx requests a packet of len bytes takes on the frontend's rx ring when packed as Linux does
 * (each slot a full 4 KiB page from offset 0), plus one per extra (GSO, hash). */
static inline unsigned sx_net_rx_slots(size_t len, bool gso, bool hash)
{
    size_t data = len ? (len + SX_NET_PAGE_SIZE - 1) / SX_NET_PAGE_SIZE : 1;
    return (unsigned)data + (gso ? 1u : 0u) + (hash ? 1u : 0u);
}

/* The offload metadata of a parsed packet, as netdev/vnet.h takes it (sx_net_tx_vnet_hdr). */
static inline struct sx_net_tx_meta sx_net_txpkt_meta(const struct sx_net_txpkt *pkt)
{
    return (struct sx_net_tx_meta){ .total_len = pkt->total_len, .csum_blank = pkt->csum_blank,
                                    .data_validated = pkt->data_validated,
                                    .gso_type = pkt->gso.type, .gso_size = pkt->gso.size };
}

#endif
