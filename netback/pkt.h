/*
 * netif packet parsing and validation, and conversion between netif's offload metadata and the
 * TAP's virtio-net header. Pure functions: no I/O, no allocation, no global state; safe on any
 * thread. Everything a frontend controls arrives as a private copy (the ring loop copies the
 * requests off the shared ring once, then hands the copies here).
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

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ring/barrier.h" /* xen_mb() and friends, before <xen/io/ring.h> */
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/netif.h>

#define SX_NET_PAGE_SIZE 4096u             /* XEN_PAGE_SIZE: grants are 4 KiB pages */
#define SX_NET_TX_LEGACY_SLOTS 18          /* XEN_NETBK_LEGACY_SLOTS_MAX: following slots
                                              beyond which a packet is dropped */
#define SX_NET_TX_FATAL_SLOTS 20           /* following slots before the vif is halted */
#define SX_NET_TX_MAX_EXTRAS (XEN_NETIF_EXTRA_TYPE_MAX - 1)
#define SX_NET_TX_MAX_FRAGS (1 + SX_NET_TX_LEGACY_SLOTS)
#define SX_NET_TX_MAX_SLOTS (1 + SX_NET_TX_MAX_EXTRAS + SX_NET_TX_FATAL_SLOTS)
#define SX_NET_ETH_HLEN 14

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

/* Where the headers are, as found by sx_net_hdr_parse. */
struct sx_net_hdrs {
    uint16_t ethertype;  /* after at most two VLAN tags (0x0800 / 0x86dd / other) */
    uint16_t l3_off;
    uint8_t l4_proto;    /* IPPROTO_TCP / IPPROTO_UDP / other; 0 if not reached */
    uint16_t l4_off;
    uint16_t l4_hlen;    /* TCP: doff * 4; UDP: 8 */
    bool fragment;       /* IPv4 MF/offset or an IPv6 fragment header */
};
/* Parse Ethernet (+ up to 2 VLAN tags), IPv4 (with options) or IPv6 (hop-by-hop, routing,
 * destination options, fragment and AH headers), and the TCP or UDP header, all within
 * buf[0..len). 0, -EPROTONOSUPPORT (not IPv4/IPv6 carrying TCP/UDP, or a fragment), or -EINVAL
 * (truncated or inconsistent headers). */
int sx_net_hdr_parse(const uint8_t *buf, size_t len, struct sx_net_hdrs *h);

/*
 * Conversions between netif offload metadata and the TAP's virtio-net header. The same four
 * directions serve both ends:
 *
 *   netback  guest tx  -> TAP write : sx_net_tx_vnet_hdr   (from a parsed sx_net_txpkt)
 *   netback  TAP read  -> guest rx  : sx_net_vnet_to_netif (use .rx_flags, .gso)
 *   netfront TAP read  -> netif tx  : sx_net_vnet_to_netif (use .tx_flags, .gso)
 *   netfront netif rx  -> TAP write : sx_net_rx_vnet_hdr   (from the rx response flags + extra)
 */

/*
 * Guest tx -> TAP write: the virtio-net header for a parsed OK packet. buf/len is the packet as
 * copied out of the grants (at least its headers; len may be the full total_len). For
 * csum_blank or GSO packets the headers are parsed to find csum_start/csum_offset; a GSO
 * packet without csum_blank gets its pseudo-header checksum rewritten in buf and NEEDS_CSUM
 * (Linux's rx_gso_checksum_fixup). Returns 0, 1 when that fixup was done, or -errno
 * (-EPROTONOSUPPORT/-EINVAL: drop the packet and count it, as Linux's checksum_setup failure).
 */
int sx_net_tx_vnet_hdr(const struct sx_net_txpkt *pkt, uint8_t *buf, size_t len,
                       struct virtio_net_hdr_v1 *hdr);

/*
 * Netif rx (frontend side) -> TAP write: the same from the first rx response's NETRXF_* flags
 * and its GSO extra (NULL when none) for a received packet buf[0..len). The extra is
 * validated (type GSO, size > 0, TCPV4/TCPV6: -EINVAL otherwise). Returns as above.
 */
int sx_net_rx_vnet_hdr(uint16_t rx_flags, const netif_extra_info_t *gso, uint8_t *buf,
                       size_t len, struct virtio_net_hdr_v1 *hdr);

/* What the receiving peer accepts. netback: the frontend's rx features; TAP netfront: what
 * the backend takes on tx (Linux netback: csum and csum_v6 always, GSO per its
 * feature-gso-tcpv4/-tcpv6). */
struct sx_net_peer_caps {
    bool csum;      /* partial IPv4 checksums (!feature-no-csum-offload) */
    bool csum_v6;   /* partial IPv6 checksums (feature-ipv6-csum-offload) */
    bool gso_tcpv4; /* feature-gso-tcpv4 */
    bool gso_tcpv6; /* feature-gso-tcpv6 */
};

struct sx_net_netif_meta {
    uint16_t rx_flags;       /* NETRXF_csum_blank / NETRXF_data_validated / NETRXF_extra_info */
    uint16_t tx_flags;       /* NETTXF_csum_blank / NETTXF_data_validated / NETTXF_extra_info */
    bool has_gso;
    netif_extra_info_t gso;  /* XEN_NETIF_EXTRA_TYPE_GSO, flags 0, chained after the first
                                slot when has_gso (the *_extra_info flag is already set) */
    bool sw_csum;            /* the checksum was completed in software in buf */
};

/*
 * TAP read -> netif: flags (in both the rx and the tx encodings: their bits differ) and the
 * GSO extra from the virtio-net header of a frame buf[0..len) (the Ethernet frame after the
 * header). Partial checksums the peer cannot take are completed in buf (then no csum flag, as
 * Linux after skb_checksum_help). 0 or -errno: -EOPNOTSUPP for a GSO type the peer did not
 * advertise or netif cannot express (UDP, ECN) or a super-packet whose checksum the peer
 * cannot take, -EINVAL for a header that does not fit the frame. Drop on error.
 */
int sx_net_vnet_to_netif(const struct virtio_net_hdr_v1 *hdr, uint8_t *buf, size_t len,
                         const struct sx_net_peer_caps *caps, struct sx_net_netif_meta *meta);

/*
 * Complete a partial checksum in software: buf[csum_start + csum_offset] holds the
 * pseudo-header sum (CHECKSUM_PARTIAL convention, what NEEDS_CSUM / csum_blank mean); the
 * ones'-complement sum of buf[csum_start..len) is folded, inverted and stored there (UDP: 0
 * becomes 0xffff). 0 or -EINVAL when the field does not fit.
 */
int sx_net_csum_fill(uint8_t *buf, size_t len, size_t csum_start, size_t csum_offset);

/* Internet checksum helpers (RFC 1071), exposed for tests and the rx path. The partial sum is
 * over big-endian 16-bit words; sx_net_csum_fold returns the folded, uninverted 16 bits. */
uint32_t sx_net_csum_partial(const uint8_t *buf, size_t len, uint32_t sum);
uint16_t sx_net_csum_fold(uint32_t sum);

#endif
