/*
 * netback's side of --check and --torture (torture/): what a queue thread's hooks do, a tx
 * chain Linux netback rejects read as a finding with what Linux does with it, and the features
 * offered at InitWait. The hooks in netback.c and rx.c are one branch each (q->tt_tx, q->tt_rx)
 * when the mode is off.
 */
#define SX_LOG_MODULE "netback"
#include "netback/common.h"

#include <string.h>

/* What Linux netback (drivers/net/xen-netback/netback.c) does with the chain, by reason. */
static const char *linux_verdict(enum sx_net_tx_reason r)
{
    switch (r) {
    case SX_NET_TXR_RUNT:
        return "its first slot holds less than an Ethernet header: Linux netback drops the "
               "packet (xenvif_tx_build_gops: \"Bad packet size\")";
    case SX_NET_TXR_TOO_MANY_SLOTS:
        return "more than XEN_NETBK_LEGACY_SLOTS_MAX (18) slots after the first: Linux netback "
               "drops it (\"Too many slots ... exceeding limit ..., dropping packet\")";
    case SX_NET_TXR_SLOT_OVERSIZE:
        return "a following slot larger than what the first slot's size leaves: Linux netback "
               "drops it (\"Invalid tx request, slot size ... > remaining size\")";
    case SX_NET_TXR_ZERO_FRAG:
        return "a following slot of size 0: Linux netback copies nothing for it; splitxen "
               "drops the packet";
    case SX_NET_TXR_MALICIOUS_SLOTS:
        return "more than fatal_skb_slots (20) slots after the first: Linux netback disables "
               "the vif (\"Malicious frontend using ... slots\")";
    case SX_NET_TXR_CROSS_PAGE:
        return "a slot's offset + size crosses its 4 KiB page: Linux netback disables the vif "
               "(\"Cross page boundary\")";
    case SX_NET_TXR_EXTRA_TYPE:
        return "an extra-info slot of type NONE or beyond XEN_NETIF_EXTRA_TYPE_MAX: Linux "
               "netback disables the vif (\"Invalid extra type\")";
    case SX_NET_TXR_TOO_MANY_EXTRAS:
        return "a chain of more extra-info slots than there are types: Linux netback "
               "disables the vif";
    case SX_NET_TXR_MISSING_EXTRA:
        return "the extra-info chain runs past the published requests: Linux netback disables "
               "the vif (\"Missing extra info\")";
    case SX_NET_TXR_MISSING_SLOTS:
        return "NETTXF_more_data runs past the published requests: Linux netback disables the "
               "vif (\"Asked for ... slots but exceeds this limit\")";
    case SX_NET_TXR_GSO_SIZE:
        return "a GSO extra with size 0: Linux netback disables the vif (\"GSO size must not "
               "be zero\")";
    case SX_NET_TXR_GSO_TYPE:
        return "a GSO extra of an unknown type: Linux netback disables the vif (\"Bad GSO "
               "type\")";
    case SX_NET_TXR_INCOMPLETE:
        return "a packet that never completes within the requests held";
    default:
        return "rejected";
    }
}

static const char rule_sg[] =
    "<xen/io/netif.h> Guest transmit: a packet in several slots (NETTXF_more_data) needs the "
    "backend's feature-sg; \"feature-gso-tcpv4\" and \"feature-gso-tcpv6\" advertise the "
    "capability to handle large TCP packets ... Neither frontends nor backends are assumed to "
    "be capable unless the flags are present.";

/* The ring position of txq's head: requests taken but not parsed sit between it and req_cons. */
static RING_IDX txq_pos(const struct nb_queue *q)
{
    return q->tx.req_cons - (q->txq_tail - q->txq_head);
}

bool nb_tt_tx_pkt(struct nb_queue *q, enum sx_net_tx_verdict vd, const struct sx_net_txpkt *pkt)
{
    struct sx_tt_dev *d = sx_tt_q_dev(q->tt_tx);
    struct nb_vif *v = q->vif;
    RING_IDX pos = txq_pos(q);
    unsigned n = pkt->nr_slots <= SX_NET_TX_MAX_SLOTS ? pkt->nr_slots : SX_NET_TX_MAX_SLOTS;
    for (unsigned i = 0; i < n; i++)
        if (!pkt->resp_is_extra[i])
            sx_tt_q_id(q->tt_tx, pkt->resp_id[i], "tx", pos + i);
    struct sx_tt_where w = sx_tt_q_where(q->tt_tx, pkt->resp_id[0], "tx", pos);
    if (vd == SX_NET_TX_DROP || vd == SX_NET_TX_FATAL || vd == SX_NET_TX_NEED_MORE) {
        enum sx_net_tx_reason r = vd == SX_NET_TX_NEED_MORE ? SX_NET_TXR_INCOMPLETE : pkt->reason;
        sx_tt_found(d, SX_TT_K_SLOTS, &w, NULL, "a packet of %u bytes in %u slots (%u extra): %s",
                    pkt->total_len, pkt->nr_slots, pkt->nr_extras, linux_verdict(r));
        return false;
    }
    if (vd != SX_NET_TX_OK)
        return false;
    if (pkt->nr_frags > 1 && !v->off_sg)
        sx_tt_found(d, SX_TT_K_FEATURE, &w, rule_sg,
                    "a packet in %u data slots; the backend offered feature-sg = 0",
                    pkt->nr_frags);
    if ((pkt->gso.type == XEN_NETIF_GSO_TYPE_TCPV4 && !v->off_gso4) ||
        (pkt->gso.type == XEN_NETIF_GSO_TYPE_TCPV6 && !v->off_gso6))
        sx_tt_found(d, SX_TT_K_FEATURE, &w, rule_sg,
                    "a GSO packet (type %u); the backend offered feature-gso-tcpv%c = 0",
                    pkt->gso.type, pkt->gso.type == XEN_NETIF_GSO_TYPE_TCPV4 ? '4' : '6');
    struct sx_tt_pkt p;
    sx_tt_q_pkt(q->tt_tx, "tx", 0, &p);
    return p.error;
}

void nb_tt_tx_rsp(struct nb_queue *q, const netif_tx_response_t *rsp, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (rsp[i].status != NETIF_RSP_NULL)
            sx_tt_q_rsp(q->tt_tx, rsp[i].id);
}

void nb_tt_tx_taken(struct nb_queue *q, int n)
{
    if (!q->tx.sring)
        return;
    sx_tt_q_prod(q->tt_tx, SX_READ_ONCE(q->tx.sring->req_prod), q->tx.req_cons);
    if (n < 0)
        sx_tt_q_overflow(q->tt_tx, &q->tx);
}

void nb_tt_rx_taken(struct nb_queue *q, int n)
{
    if (!q->rx.sring)
        return;
    sx_tt_q_prod(q->tt_rx, SX_READ_ONCE(q->rx.sring->req_prod), q->rx.req_cons);
    if (n < 0) {
        sx_tt_q_overflow(q->tt_rx, &q->rx);
        return;
    }
    RING_IDX pos = q->rx.req_cons - (RING_IDX)n;
    for (int i = 0; i < n; i++)
        sx_tt_q_id(q->tt_rx, q->rxq[q->rxq_tail - (unsigned)n + (unsigned)i].id, "rx",
                   pos + (RING_IDX)i);
}

uint16_t nb_tt_rx_first(struct nb_queue *q, const struct nb_rxframe *f, unsigned per)
{
    struct sx_tt_pkt p;
    /* A partial first slot needs the frontend to take a frame in several slots (feature-sg),
     * and Linux netfront at most XEN_NETIF_NR_SLOTS_MIN - 1 of them with the extras. */
    unsigned max = f->len < per ? f->len : per;
    bool ok = q->vif->sg && max > 1 &&
              nb_rx_ndata(f->len, per, 1) + f->meta.has_gso + f->has_hash < XEN_NETIF_NR_SLOTS_MIN;
    sx_tt_q_pkt(q->tt_rx, f->meta.has_gso ? "gso frame" : "frame", ok ? max : 0, &p);
    return p.first_len;
}

void nb_tt_grant_bad(struct sx_tt_q *tt, uint16_t id, int st)
{
    struct sx_tt_where w = sx_tt_q_where(tt, id, NULL, 0);
    w.has_pos = false;
    sx_tt_found(sx_tt_q_dev(tt), SX_TT_K_GRANT_BAD, &w, NULL,
                "a grant copy failed (%d): the grant is not the backend domain's to use, or it "
                "was ended while the request was in flight", st);
}

void nb_tt_burst(struct nb_queue *q, struct sx_tt_q *tt, evtchn_port_t port)
{
    for (unsigned n = sx_tt_q_burst(tt); n; n--)
        sx_evtchn_notify(q->ev, port);
}

void nb_offer_pick(struct nb_vif *v, const char *const *keys, unsigned *vals, unsigned n,
                   unsigned *maxq)
{
    static const uint64_t bits[] = { 0, 1 };
    uint64_t qs[NB_MAX_QUEUES];
    for (unsigned i = 0; i < *maxq && i < NB_MAX_QUEUES; i++)
        qs[i] = i + 1;
    for (unsigned i = 0; i < n; i++)
        vals[i] = (unsigned)sx_tt_feature(v->tt, keys[i], 1, bits, 2);
    *maxq = (unsigned)sx_tt_feature(v->tt, "multi-queue-max-queues", *maxq, qs,
                                    *maxq <= NB_MAX_QUEUES ? *maxq : NB_MAX_QUEUES);
    v->mq_offered = *maxq;
    v->off_sg = sx_tt_offered(v->tt, "feature-sg", 1);
    v->off_gso4 = sx_tt_offered(v->tt, "feature-gso-tcpv4", 1);
    v->off_gso6 = sx_tt_offered(v->tt, "feature-gso-tcpv6", 1);
}
