/*
 * Packet helpers of the world side: header parsing, Internet checksums, and conversion between
 * netif's offload metadata (NETTXF_/NETRXF_ flags, the GSO extra) and the virtio-net header a
 * TAP (and any world side behind netdev.h) carries in front of every frame. Pure functions: no
 * I/O, no allocation, no global state; safe on any thread.
 */
#ifndef SPLITXEN_NETDEV_VNET_H
#define SPLITXEN_NETDEV_VNET_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "barrier.h" /* xen_mb() and friends, before <xen/io/ring.h> (netif.h includes it) */
#include <xen/xen.h>
#include <xen/io/netif.h>

#define SX_NET_ETH_HLEN 14

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
 *   netback  guest tx  -> TAP write : sx_net_tx_vnet_hdr   (from a parsed packet's metadata)
 *   netback  TAP read  -> guest rx  : sx_net_vnet_to_netif (use .rx_flags, .gso)
 *   netfront TAP read  -> netif tx  : sx_net_vnet_to_netif (use .tx_flags, .gso)
 *   netfront netif rx  -> TAP write : sx_net_rx_vnet_hdr   (from the rx response flags + extra)
 */

/* A netif tx packet's offload metadata (netback: sx_net_txpkt_meta of a parsed packet). */
struct sx_net_tx_meta {
    unsigned total_len;  /* the whole packet */
    bool csum_blank;     /* NETTXF_csum_blank */
    bool data_validated; /* NETTXF_data_validated */
    uint8_t gso_type;    /* XEN_NETIF_GSO_TYPE_NONE / TCPV4 / TCPV6 */
    uint16_t gso_size;   /* MSS */
};

/*
 * Guest tx -> TAP write: the virtio-net header for a parsed OK packet. buf/len is the packet as
 * copied out of the grants (at least its headers; len may be the full total_len). For
 * csum_blank or GSO packets the headers are parsed to find csum_start/csum_offset; a GSO
 * packet without csum_blank gets its pseudo-header checksum rewritten in buf and NEEDS_CSUM
 * (Linux's rx_gso_checksum_fixup). Returns 0, 1 when that fixup was done, or -errno
 * (-EPROTONOSUPPORT/-EINVAL: drop the packet and count it, as Linux's checksum_setup failure).
 */
int sx_net_tx_vnet_hdr(const struct sx_net_tx_meta *m, uint8_t *buf, size_t len,
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

/*
 * A frame for a world side that carries no offload metadata (AF_XDP, DPDK): buf[0..len) is a
 * virtio-net header and an Ethernet frame; the frame is copied to dst (room bytes) and a partial
 * checksum (NEEDS_CSUM) completed there. Returns the frame's length, -EOPNOTSUPP for a GSO frame
 * (the world side offers none), or -EINVAL: shorter than a header and an Ethernet header,
 * longer than room, or a checksum offset outside the frame.
 */
int sx_net_frame_plain(const uint8_t *buf, size_t len, uint8_t *dst, size_t room);

/* Internet checksum helpers (RFC 1071), exposed for tests and the rx path. The partial sum is
 * over big-endian 16-bit words; sx_net_csum_fold returns the folded, uninverted 16 bits. */
uint32_t sx_net_csum_partial(const uint8_t *buf, size_t len, uint32_t sum);
uint16_t sx_net_csum_fold(uint32_t sum);

#endif
