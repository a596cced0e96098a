/* netif tx packet parsing and validation; see pkt.h. */
#include "netback/pkt.h"

#include <stddef.h>
#include <string.h>

const char *sx_net_tx_reason_str(enum sx_net_tx_reason r)
{
    static const char *const names[SX_NET_TXR_NR] = {
        [SX_NET_TXR_NONE] = "none",
        [SX_NET_TXR_RUNT] = "runt",
        [SX_NET_TXR_TOO_MANY_SLOTS] = "too_many_slots",
        [SX_NET_TXR_SLOT_OVERSIZE] = "slot_oversize",
        [SX_NET_TXR_ZERO_FRAG] = "zero_frag",
        [SX_NET_TXR_MALICIOUS_SLOTS] = "malicious_slots",
        [SX_NET_TXR_CROSS_PAGE] = "cross_page",
        [SX_NET_TXR_EXTRA_TYPE] = "extra_type",
        [SX_NET_TXR_TOO_MANY_EXTRAS] = "too_many_extras",
        [SX_NET_TXR_MISSING_EXTRA] = "missing_extra",
        [SX_NET_TXR_MISSING_SLOTS] = "missing_slots",
        [SX_NET_TXR_GSO_SIZE] = "gso_size",
        [SX_NET_TXR_GSO_TYPE] = "gso_type",
        [SX_NET_TXR_INCOMPLETE] = "incomplete",
    };
    return (unsigned)r < SX_NET_TXR_NR && names[r] ? names[r] : "unknown";
}

static enum sx_net_tx_verdict tx_fail(struct sx_net_txpkt *pkt, enum sx_net_tx_verdict v,
                                      enum sx_net_tx_reason r)
{
    pkt->reason = r;
    pkt->nr_frags = 0;
    return v;
}

enum sx_net_tx_verdict sx_net_tx_parse(const netif_tx_request_t *slots, unsigned avail,
                                       bool complete, struct sx_net_txpkt *pkt)
{
    netif_extra_info_t extras[SX_NET_TX_MAX_EXTRAS];
    unsigned present = 0; /* bit n: an extra of type n was seen */
    unsigned i = 1, nfollow = 0, remaining;
    enum sx_net_tx_reason drop = SX_NET_TXR_NONE;
    netif_tx_request_t first, tx;
    bool more;

    /* Every scalar field precedes the arrays; the arrays are valid only up to their counts. */
    memset(pkt, 0, offsetof(struct sx_net_txpkt, frags));
    if (avail == 0)
        return SX_NET_TX_NEED_MORE;

    first = slots[0]; /* one read of each slot; only the local copy is used after this */
    pkt->total_len = first.size;
    pkt->csum_blank = (first.flags & NETTXF_csum_blank) != 0;
    pkt->data_validated = (first.flags & NETTXF_data_validated) != 0;
    pkt->resp_id[0] = first.id;
    pkt->resp_is_extra[0] = false;

    /* xenvif_get_extras */
    if (first.flags & NETTXF_extra_info) {
        netif_extra_info_t ex;
        do {
            /* Bounds that do not depend on the slots still to come are checked before asking
             * for them: a chain already over its limit is fatal whatever follows, so the
             * parser never waits for slots that could not make the packet valid. */
            if (pkt->nr_extras == SX_NET_TX_MAX_EXTRAS) {
                pkt->nr_slots = i;
                return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_TOO_MANY_EXTRAS);
            }
            if (i >= avail)
                return complete ? tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_MISSING_EXTRA)
                                : SX_NET_TX_NEED_MORE;
            _Static_assert(sizeof(ex) <= sizeof(slots[0]), "extra fits a tx slot");
            memcpy(&ex, &slots[i], sizeof(ex));
            pkt->resp_id[i] = 0;
            pkt->resp_is_extra[i] = true;
            i++;
            pkt->nr_extras++;
            if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
                pkt->nr_slots = i;
                return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_EXTRA_TYPE);
            }
            extras[ex.type - 1] = ex; /* a repeated type overrides, as Linux */
            present |= 1u << ex.type;
        } while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
    }

    /* A multicast control request carries no packet: Linux answers it and moves on without
     * looking at more_data. ADD wins over DEL, as there. */
    if (present & ((1u << XEN_NETIF_EXTRA_TYPE_MCAST_ADD) | (1u << XEN_NETIF_EXTRA_TYPE_MCAST_DEL))) {
        uint8_t op = (present & (1u << XEN_NETIF_EXTRA_TYPE_MCAST_ADD))
                         ? XEN_NETIF_EXTRA_TYPE_MCAST_ADD
                         : XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
        pkt->mcast_op = op;
        memcpy(pkt->mcast_addr, extras[op - 1].u.mcast.addr, sizeof(pkt->mcast_addr));
        pkt->nr_slots = i;
        return SX_NET_TX_MCAST;
    }

    /* xenvif_count_requests: the first slot's size is the whole packet; each following slot
     * takes its share of it. */
    remaining = first.size;
    more = (first.flags & NETTXF_more_data) != 0;
    while (more) {
        /* As for the extras: the 21st following slot is fatal before it is looked at. This
         * keeps NEED_MORE below SX_NET_TX_MAX_SLOTS: at that slot (1 + 4 extras + 20
         * following, more_data still set) the packet is already malicious. */
        if (nfollow >= SX_NET_TX_FATAL_SLOTS) {
            pkt->nr_slots = i;
            return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_MALICIOUS_SLOTS);
        }
        if (i >= avail)
            return complete ? tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_MISSING_SLOTS)
                            : SX_NET_TX_NEED_MORE;
        if (!drop && nfollow >= SX_NET_TX_LEGACY_SLOTS)
            drop = SX_NET_TXR_TOO_MANY_SLOTS;
        tx = slots[i];
        /* A frame >= 64 KiB overflows the first slot's 16-bit size and its following slots
         * look too big: buggy, not malicious, so drop (consuming every slot) rather than halt */
        if (!drop && tx.size > remaining)
            drop = SX_NET_TXR_SLOT_OVERSIZE;
        if (!drop && tx.size == 0)
            drop = SX_NET_TXR_ZERO_FRAG;
        remaining = tx.size <= remaining ? remaining - tx.size : 0;
        pkt->resp_id[i] = tx.id;
        pkt->resp_is_extra[i] = false;
        i++;
        nfollow++;
        if ((unsigned)tx.offset + tx.size > SX_NET_PAGE_SIZE) {
            pkt->nr_slots = i;
            return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_CROSS_PAGE);
        }
        if (!drop)
            pkt->frags[nfollow] = (struct sx_net_txfrag){
                .gref = tx.gref, .offset = tx.offset, .len = tx.size, .id = tx.id};
        more = (tx.flags & NETTXF_more_data) != 0;
    }
    pkt->nr_slots = i;
    if (drop)
        return tx_fail(pkt, SX_NET_TX_DROP, drop);

    /* xenvif_tx_build_gops, after counting: what is left is the first slot's own data. */
    if (remaining < SX_NET_ETH_HLEN)
        return tx_fail(pkt, SX_NET_TX_DROP, SX_NET_TXR_RUNT);
    if ((unsigned)first.offset + remaining > SX_NET_PAGE_SIZE)
        return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_CROSS_PAGE);

    /* xenvif_set_skb_gso */
    if (present & (1u << XEN_NETIF_EXTRA_TYPE_GSO)) {
        const netif_extra_info_t *g = &extras[XEN_NETIF_EXTRA_TYPE_GSO - 1];
        if (g->u.gso.size == 0)
            return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_GSO_SIZE);
        if (g->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 && g->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)
            return tx_fail(pkt, SX_NET_TX_FATAL, SX_NET_TXR_GSO_TYPE);
        pkt->gso.type = g->u.gso.type;
        pkt->gso.size = g->u.gso.size;
    }
    if (present & (1u << XEN_NETIF_EXTRA_TYPE_HASH)) {
        const netif_extra_info_t *h = &extras[XEN_NETIF_EXTRA_TYPE_HASH - 1];
        pkt->has_hash = true;
        pkt->hash.type = h->u.hash.type;
        pkt->hash.algorithm = h->u.hash.algorithm;
        memcpy(pkt->hash.value, h->u.hash.value, sizeof(pkt->hash.value));
    }
    pkt->frags[0] = (struct sx_net_txfrag){
        .gref = first.gref, .offset = first.offset, .len = (uint16_t)remaining, .id = first.id};
    pkt->nr_frags = nfollow + 1;
    return SX_NET_TX_OK;
}

unsigned sx_net_tx_responses(const struct sx_net_txpkt *pkt, int16_t status,
                             netif_tx_response_t *rsp)
{
    unsigned n = pkt->nr_slots <= SX_NET_TX_MAX_SLOTS ? pkt->nr_slots : SX_NET_TX_MAX_SLOTS;
    for (unsigned i = 0; i < n; i++) {
        rsp[i].id = pkt->resp_id[i];
        rsp[i].status = pkt->resp_is_extra[i] ? NETIF_RSP_NULL : status;
    }
    return n;
}
