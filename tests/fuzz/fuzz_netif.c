/*
 * netif tx chains and extras (netback/pkt.c), then the virtio-net header conversions of both
 * directions (netdev/vnet.c) on a frame from the input. What the parser promises netback: a
 * verdict within its enum; NEED_MORE only when the slots given could not decide (not complete,
 * fewer than SX_NET_TX_MAX_SLOTS); an accepted packet's fragments within their pages, the
 * first holding at least an Ethernet header, their lengths adding up to the first slot's size,
 * no more slots consumed than given; a response for every slot consumed.
 */
#include "tests/fuzz/fuzz.h"

#include "netback/pkt.h"

static void check_parse(const netif_tx_request_t *slots, unsigned avail, bool complete)
{
    struct sx_net_txpkt pkt;
    enum sx_net_tx_verdict v = sx_net_tx_parse(slots, avail, complete, &pkt);
    FUZZ_CHECK(v <= SX_NET_TX_NEED_MORE);
    FUZZ_CHECK(pkt.reason < SX_NET_TXR_NR);
    FUZZ_CHECK(sx_net_tx_reason_str(pkt.reason) != NULL);
    if (v == SX_NET_TX_NEED_MORE) {
        FUZZ_CHECK(!complete && avail < SX_NET_TX_MAX_SLOTS);
        return;
    }
    FUZZ_CHECK(pkt.nr_slots <= avail && pkt.nr_slots <= SX_NET_TX_MAX_SLOTS);
    FUZZ_CHECK(pkt.nr_extras <= SX_NET_TX_MAX_EXTRAS);
    if (v == SX_NET_TX_FATAL)
        return;   /* the queue halts: nothing is consumed or answered */
    FUZZ_CHECK(pkt.nr_slots >= 1);
    if (v == SX_NET_TX_OK) {
        FUZZ_CHECK(pkt.nr_frags >= 1 && pkt.nr_frags <= SX_NET_TX_MAX_FRAGS);
        unsigned sum = 0;
        for (unsigned i = 0; i < pkt.nr_frags; i++) {
            FUZZ_CHECK(pkt.frags[i].len > 0);
            FUZZ_CHECK((unsigned)pkt.frags[i].offset + pkt.frags[i].len <= SX_NET_PAGE_SIZE);
            sum += pkt.frags[i].len;
        }
        FUZZ_CHECK(pkt.frags[0].len >= SX_NET_ETH_HLEN);
        FUZZ_CHECK(sum == pkt.total_len);
        FUZZ_CHECK(pkt.nr_slots == 1 + pkt.nr_extras + pkt.nr_frags - 1);
        if (pkt.gso.type != XEN_NETIF_GSO_TYPE_NONE)
            FUZZ_CHECK(pkt.gso.size > 0);
    }
    netif_tx_response_t rsp[SX_NET_TX_MAX_SLOTS];
    unsigned n = sx_net_tx_responses(&pkt, NETIF_RSP_OKAY, rsp);
    FUZZ_CHECK(n == pkt.nr_slots);
    for (unsigned i = 0; i < n; i++)
        FUZZ_CHECK(rsp[i].status == (pkt.resp_is_extra[i] ? NETIF_RSP_NULL : NETIF_RSP_OKAY));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    uint8_t flags = fuzz_u8(&in);
    unsigned nslots = flags % 64 + 1;
    netif_tx_request_t slots[64];
    fuzz_take(&in, slots, nslots * sizeof(slots[0]));
    check_parse(slots, nslots, flags & 64);
    /* Every shorter view of the same slots, as a ring loop sees them arrive. */
    if (flags & 128)
        for (unsigned a = 1; a < nslots; a++)
            check_parse(slots, a, false);

    /* The frame that follows, through the header conversions. */
    struct sx_net_tx_meta m = { .csum_blank = fuzz_u8(&in) & 1 };
    uint8_t g = fuzz_u8(&in);
    m.gso_type = g % 3 == 1 ? XEN_NETIF_GSO_TYPE_TCPV4 : g % 3 == 2 ? XEN_NETIF_GSO_TYPE_TCPV6 : 0;
    m.gso_size = (uint16_t)fuzz_u32(&in);
    m.data_validated = g & 128;
    static uint8_t frame[65536];
    size_t len = in.n < sizeof(frame) ? in.n : sizeof(frame);
    fuzz_take(&in, frame, len);
    m.total_len = (unsigned)len;
    struct virtio_net_hdr_v1 vh;
    memset(&vh, 0, sizeof(vh));
    int rc = sx_net_tx_vnet_hdr(&m, frame, len, &vh);
    if (rc >= 0 && (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        FUZZ_CHECK((size_t)vh.csum_start + vh.csum_offset + 2 <= len);
    /* And back: the same header read as a TAP would hand it (peer caps from the flags). */
    struct sx_net_peer_caps caps = { .csum = g & 1, .csum_v6 = g & 2, .gso_tcpv4 = g & 4,
                                     .gso_tcpv6 = g & 8 };
    struct virtio_net_hdr_v1 raw;
    memcpy(&raw, data, size < sizeof(raw) ? size : sizeof(raw));
    struct sx_net_netif_meta nm;
    sx_net_vnet_to_netif(rc >= 0 && (g & 16) ? &vh : &raw, frame, len, &caps, &nm);
    return 0;
}
