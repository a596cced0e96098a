/*
 * netdev/vnet.c: virtio-net header conversion both ways on real packet bytes, header parsing and
 * checksums, checked against an independent byte-wise reference (tests/netdev/pktbuild.h).
 */
#include "netdev/vnet.h"
#include "tests/netdev/pktbuild.h"
#include "tests/sxtest.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

static struct sx_net_tx_meta tx_meta(unsigned len, bool csum_blank, uint8_t gso_type,
                                     uint16_t mss)
{
    return (struct sx_net_tx_meta){ .total_len = len, .csum_blank = csum_blank,
                                    .gso_type = gso_type, .gso_size = mss };
}

static void test_csum_rfc1071_vector(void)
{
    /* RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2. */
    const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CU_ASSERT_EQUAL(sx_net_csum_fold(sx_net_csum_partial(v, sizeof(v), 0)), 0xddf2);
    CU_ASSERT_EQUAL(sx_net_csum_fold(sx_net_csum_partial(v, 7, 0)), ref_fold(ref_sum(v, 7, 0)));
}

static void test_tx_vnet_ipv4_tcp_csum_blank(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 100, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 34);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    CU_ASSERT_EQUAL(le16toh(h.hdr_len), 34 + 32);
    /* headers-only buffers are enough */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 66, &h), 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 65, &h), -EINVAL);
}

static void test_tx_vnet_ipv6_tcp_gso(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 6, 6, 1000, false, true);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV6, 400);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    CU_ASSERT_EQUAL(le16toh(h.gso_size), 400);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 14 + 40 + 8);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    /* a TCPv4 GSO claim on an IPv6 packet cannot be passed on */
    t.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), -EPROTONOSUPPORT);
}

static void test_tx_vnet_ipv4_udp_and_vlan(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 17, 333, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 34);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 6);
    /* no UDP GSO in netif: a GSO extra on UDP is refused */
    t.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
    t.gso_size = 500;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), -EPROTONOSUPPORT);
    b = build(p, 4, 6, 10, true, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 38);
}

static void test_tx_vnet_no_offload(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    memset(&h, 0x5a, sizeof(h));
    struct built b = build(p, 4, 6, 10, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, 0);
    CU_ASSERT_EQUAL(h.gso_type, 0);
    CU_ASSERT_EQUAL(h.csum_start, 0);
    CU_ASSERT_EQUAL(h.num_buffers, 0);
    t.data_validated = true;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    /* neither flag needs the headers: garbage bytes pass untouched */
    memset(p, 0xee, 64);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 64, &h), 0);
}

static void test_tx_vnet_gso_without_csum_blank_is_fixed_up(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 1200, false, false);
    uint16_t want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = 0x12; /* a full (or stale) checksum where the pseudo-header sum belongs */
    p[b.l4 + 17] = 0x34;
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_TCPV4, 600);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
    /* and IPv6 */
    b = build(p, 6, 6, 1200, false, false);
    want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = p[b.l4 + 17] = 0;
    t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_TCPV6, 600);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
}

static void test_tx_vnet_hostile_headers(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 10, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    uint8_t q[2048];

    memcpy(q, p, b.len);
    q[b.l3 + 9] = 1; /* ICMP: no L4 checksum offload for it */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    memcpy(q, p, b.len);
    q[b.l3 + 6] = 0x20; /* MF: a fragment */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    memcpy(q, p, b.len);
    q[b.l3] = 0x4f; /* ihl 60 */
    q[b.l3 + 2] = 0; q[b.l3 + 3] = 30; /* total length below ihl */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l3] = 0x44; /* ihl below 20 */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l4 + 12] = 0xf0; /* doff 60 beyond the buffer end */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.l4 + 40, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[12] = 0x08; q[13] = 0x06; /* ARP */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, 10, &h), -EINVAL);
    /* IPv6: an endless chain of extension headers, and a real fragment */
    b = build(p, 6, 6, 10, false, true);
    memcpy(q, p, b.len);
    for (size_t o = b.l3 + 40; o + 8 <= 1500; o += 8) {
        q[o] = 0;     /* next: hop-by-hop again */
        q[o + 1] = 0; /* 8 bytes */
    }
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, 1500, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l3 + 6] = 44; /* fragment header, offset 8 */
    q[b.l3 + 40] = 6;
    q[b.l3 + 43] = 0x08;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
}

/* IPv6 with k 16-byte destination-options headers, then an AH (24 bytes) if ah, then TCP. */
static size_t build_v6_ext(uint8_t *p, int k, bool ah)
{
    memset(p, 0, 2048);
    p[12] = 0x86;
    p[13] = 0xdd;
    p[14] = 0x60;
    size_t o = 54;
    uint8_t *next = p + 14 + 6;
    for (int i = 0; i < k; i++) {
        *next = 60; /* destination options */
        next = p + o;
        p[o + 1] = 1;  /* (1 + 1) * 8 = 16 bytes */
        p[o + 2] = 1;  /* PadN */
        p[o + 3] = 12;
        o += 16;
    }
    if (ah) {
        *next = 51;
        next = p + o;
        p[o + 1] = 4; /* (4 + 2) * 4 = 24 bytes */
        o += 24;
    }
    *next = 6;
    p[o + 12] = 5 << 4;
    return o;
}

static void test_ipv6_extension_headers(void)
{
    uint8_t p[2048];
    struct sx_net_hdrs h;
    for (int k = 0; k <= 7; k++) {
        size_t l4 = build_v6_ext(p, k, k == 3);
        CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 20, &h), 0);
        CU_ASSERT_EQUAL(h.l4_off, l4);
        CU_ASSERT_EQUAL(h.l4_proto, 6);
        CU_ASSERT_EQUAL(h.l4_hlen, 20);
        CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 19, &h), -EINVAL);
    }
    /* more than 8 extension headers is not a packet anyone needs offloads for */
    size_t l4 = build_v6_ext(p, 9, false);
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 20, &h), -EINVAL);
    /* an atomic fragment (offset 0, no M flag) is still a whole packet */
    memset(p, 0, 128);
    p[12] = 0x86; p[13] = 0xdd; p[14] = 0x60; p[20] = 44;
    p[54] = 17;
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, 54 + 8 + 8, &h), 0);
    CU_ASSERT_EQUAL(h.l4_off, 62);
    CU_ASSERT_EQUAL(h.l4_proto, 17);
    p[57] = 1; /* M flag */
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, 54 + 8 + 8, &h), -EPROTONOSUPPORT);
    CU_ASSERT_TRUE(h.fragment);
}

static const struct sx_net_peer_caps all_caps = {true, true, true, true};

static void test_rx_vnet_gso_and_csum(void)
{
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 1400, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV4, 700);
    /* round trip: what we would write to the TAP comes back as the same netif metadata */
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info);
    CU_ASSERT_EQUAL(m.tx_flags, NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info);
    CU_ASSERT_TRUE(m.has_gso);
    CU_ASSERT_EQUAL(m.gso.type, XEN_NETIF_EXTRA_TYPE_GSO);
    CU_ASSERT_EQUAL(m.gso.flags, 0);
    CU_ASSERT_EQUAL(m.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(m.gso.u.gso.size, 700);
    CU_ASSERT_FALSE(m.sw_csum);

    b = build(p, 6, 6, 1400, false, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV6, 1000);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
    CU_ASSERT_EQUAL(m.gso.u.gso.size, 1000);
    struct sx_net_peer_caps no6 = all_caps;
    no6.gso_tcpv6 = false;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &no6, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    h.gso_size = 0;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EINVAL);

    memset(&h, 0, sizeof(h));
    h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_data_validated);
    CU_ASSERT_EQUAL(m.tx_flags, NETTXF_data_validated);
    CU_ASSERT_FALSE(m.has_gso);
    h.flags = 0;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, 0);
    /* a partial checksum pointing past the frame */
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.csum_start = htole16((uint16_t)b.len - 10);
    h.csum_offset = htole16(16);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EINVAL);
}

/* The software checksum matches the reference for each protocol, wherever it is needed. */
static void check_sw_csum(int family, int proto, size_t payload, const struct sx_net_peer_caps *caps)
{
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, family, proto, payload, false, false);
    uint16_t want = ref_l4_csum(p, &b);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, caps, &m), 0);
    CU_ASSERT_TRUE(m.sw_csum);
    CU_ASSERT_EQUAL(m.rx_flags, 0);
    CU_ASSERT_EQUAL(get16(p + b.l4 + b.csum_off), want);
    /* and the receiver's check: the sum over pseudo-header and segment is all ones */
    CU_ASSERT_EQUAL(ref_fold(ref_sum(p + b.l4, b.len - b.l4,
                                     ref_pseudo(p, &b))), 0xffff);
}

static void test_rx_sw_csum_when_frontend_lacks_offload(void)
{
    const struct sx_net_peer_caps none = {false, false, false, false};
    const struct sx_net_peer_caps v4only = {true, false, true, false};
    check_sw_csum(4, 6, 1000, &none);
    check_sw_csum(4, 6, 1001, &none); /* odd length */
    check_sw_csum(4, 17, 333, &none);
    check_sw_csum(6, 6, 777, &none);
    check_sw_csum(6, 17, 1200, &v4only); /* v4 offload does not cover IPv6 */

    /* with the offload, the partial checksum is passed on untouched */
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 17, 100, false, false);
    uint16_t partial = get16(p + b.l4 + 6);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &v4only, &m), 0);
    CU_ASSERT_FALSE(m.sw_csum);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_csum_blank | NETRXF_data_validated);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 6), partial);
    /* a GSO super-packet cannot be completed in software */
    b = build(p, 4, 6, 1400, false, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV4, 700);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    struct sx_net_peer_caps gso_nocsum = {false, false, true, true};
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &gso_nocsum, &m), -EOPNOTSUPP);
}

/* Netfront side: rx response flags + GSO extra -> the header for a TAP write. */
static void test_netfront_rx_vnet_hdr(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 6, 6, 1400, false, false);
    netif_extra_info_t e;
    memset(&e, 0, sizeof(e));
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    e.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV6;
    e.u.gso.size = 1200;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank | NETRXF_data_validated |
                                       NETRXF_extra_info, &e, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    CU_ASSERT_EQUAL(le16toh(h.gso_size), 1200);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 54);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_data_validated, NULL, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(0, NULL, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, 0);
    /* a backend's bad extras are refused, not passed to the kernel */
    e.u.gso.size = 0;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    e.u.gso.size = 1200;
    e.u.gso.type = 7;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    e.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV6;
    e.type = XEN_NETIF_EXTRA_TYPE_HASH;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    /* GSO without csum_blank: the pseudo-header sum is put in place */
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    uint16_t want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = p[b.l4 + 17] = 0xee;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(0, &e, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
}



static void test_csum_fill_bounds(void)
{
    uint8_t p[64] = {0};
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 62, 0), 0);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 62, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 70, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), (size_t)-1, 4), -EINVAL);
    /* all zeroes sums to 0: stored as 0xffff, never 0 */
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 0, 6), 0);
    CU_ASSERT_EQUAL(get16(p + 6), 0xffff);
}

/* A world side without offloads: the frame behind the header, its partial checksum completed
 * (the reference's), GSO and frames that do not fit refused. */
static void test_frame_plain_completes_checksum_refuses_gso(void)
{
    uint8_t in[2048 + 12], out[2048];
    struct virtio_net_hdr_v1 h;
    for (int fam = 4; fam <= 6; fam += 2) {
        struct built b = build(in + 12, fam, 6, 999, false, false);
        uint16_t want = ref_l4_csum(in + 12, &b);
        struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
        CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, in + 12, b.len, &h), 0);
        memcpy(in, &h, 12);
        CU_ASSERT_EQUAL(sx_net_frame_plain(in, b.len + 12, out, sizeof(out)), (int)b.len);
        CU_ASSERT_EQUAL(get16(out + b.l4 + b.csum_off), want);
        CU_ASSERT_EQUAL(memcmp(out, in + 12, b.l4 + b.csum_off), 0);
        /* no room, no frame */
        CU_ASSERT_EQUAL(sx_net_frame_plain(in, b.len + 12, out, b.len - 1), -EINVAL);
    }
    /* a frame without offloads is copied as it is */
    struct built b = build(in + 12, 4, 17, 100, false, false);
    memset(in, 0, 12);
    CU_ASSERT_EQUAL(sx_net_frame_plain(in, b.len + 12, out, sizeof(out)), (int)b.len);
    CU_ASSERT_EQUAL(memcmp(out, in + 12, b.len), 0);
    /* GSO: the world side offers none */
    b = build(in + 12, 4, 6, 1400, false, false);
    struct sx_net_tx_meta t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV4, 700);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, in + 12, b.len, &h), 0);
    memcpy(in, &h, 12);
    CU_ASSERT_EQUAL(sx_net_frame_plain(in, b.len + 12, out, sizeof(out)), -EOPNOTSUPP);
    /* a runt, and a checksum offset past the frame (a hostile guest's) */
    memset(in, 0, 12);
    CU_ASSERT_EQUAL(sx_net_frame_plain(in, 12 + 13, out, sizeof(out)), -EINVAL);
    h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    h.csum_start = htole16(60);
    h.csum_offset = htole16(100);
    memcpy(in, &h, 12);
    CU_ASSERT_EQUAL(sx_net_frame_plain(in, 12 + 100, out, sizeof(out)), -EINVAL);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_csum_rfc1071_vector),
    SX_TEST(test_tx_vnet_ipv4_tcp_csum_blank),
    SX_TEST(test_tx_vnet_ipv6_tcp_gso),
    SX_TEST(test_tx_vnet_ipv4_udp_and_vlan),
    SX_TEST(test_tx_vnet_no_offload),
    SX_TEST(test_tx_vnet_gso_without_csum_blank_is_fixed_up),
    SX_TEST(test_tx_vnet_hostile_headers),
    SX_TEST(test_ipv6_extension_headers),
    SX_TEST(test_rx_vnet_gso_and_csum),
    SX_TEST(test_rx_sw_csum_when_frontend_lacks_offload),
    SX_TEST(test_netfront_rx_vnet_hdr),
    SX_TEST(test_csum_fill_bounds),
    SX_TEST(test_frame_plain_completes_checksum_refuses_gso),
};

SX_TEST_MAIN("netdev_vnet", cases, NULL, NULL)
