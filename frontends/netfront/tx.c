/*
 * netfront transmit path: copy each frame into granted pages (one page per request id), queue
 * the slots (first slot, optional GSO extra, following slots), publish once per batch, take
 * responses and free their ids.
 */
#define SX_LOG_MODULE "netfront"
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "frontends/netfront/common.h"
#include "grant/grant.h"
#include "log.h"

SX_RING_CHECK_TYPES(netif_tx_request_t, netif_tx_response_t);
_Static_assert(sizeof(netif_extra_info_t) <= sizeof(netif_tx_request_t),
               "an extra-info slot overlays a tx request");

#define NF_ETH_HLEN 14u
#define NF_TX_REAP_BATCH 64u

void nf_unshare(struct sx_netfront *f, void *addr, uint32_t count, const char *what)
{
    if (!addr)
        return;
    for (int tries = 0;; tries++) {
        int rc = sx_gntshr_unshare(f->shr, addr, count);
        if (rc == 0)
            return;
        if (rc != -EBUSY || tries >= 100) {
            /* The backend still maps the pages: leave them granted rather than free memory a
             * peer can write. */
            sx_warn("vif %u: cannot unshare %s (%u pages): %s", f->info.devid, what, count,
                    strerror(-rc));
            return;
        }
        usleep(10000);
    }
}

void nf_notify(struct nf_queue *q, int port)
{
    if (port < 0)
        return;
    int rc = sx_evtchn_notify(q->ev, (evtchn_port_t)port);
    if (rc < 0 && rc != -ENOTCONN)
        sx_log_ratelimited(SX_LOG_WARN, "vif %u queue %u: notify port %d: %s", q->f->info.devid,
                           q->idx, port, strerror(-rc));
}

int nf_tx_setup(struct nf_queue *q)
{
    struct sx_netfront *f = q->f;
    domid_t be = f->info.backend_id;

    int rc = sx_gntshr_share(f->shr, be, 1, true, &q->tx_ring_ref, &q->tx_sring);
    if (rc < 0)
        return rc;
    rc = sx_front_ring_init(&q->tx, q->tx_sring, NF_PAGE_SIZE, sizeof(netif_tx_request_t),
                            sizeof(netif_tx_response_t));
    if (rc < 0)
        return rc;
    if (q->tx.nr_ents != NF_TX_RING_SIZE)
        return -EINVAL;
    void *pool = NULL;
    rc = sx_gntshr_share(f->shr, be, NF_TX_RING_SIZE, false, q->tx_refs, &pool);
    if (rc < 0)
        return rc;
    q->tx_pool = pool;
    q->tx_nfree = NF_TX_RING_SIZE;
    for (unsigned i = 0; i < NF_TX_RING_SIZE; i++) {
        q->tx_free[i] = (uint16_t)(NF_TX_RING_SIZE - 1 - i);   /* pop hands out 0 first */
        q->tx_busy[i] = false;
    }
    return 0;
}

void nf_tx_teardown(struct nf_queue *q)
{
    sx_front_ring_detach(&q->tx);
    nf_unshare(q->f, q->tx_pool, NF_TX_RING_SIZE, "tx buffers");
    q->tx_pool = NULL;
    nf_unshare(q->f, q->tx_sring, 1, "tx ring");
    q->tx_sring = NULL;
}

static struct nf_queue *queue_of(struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return NULL;
    return &f->q[qi];
}

int sx_netfront_tx_push(struct sx_netfront *f, unsigned qi)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q)
        return -EINVAL;
    if (q->tx.req_prod_pvt == q->tx.req_pushed)
        return q->tx.halted ? -EPROTO : 0;
    int rc = sx_front_ring_push(&q->tx);
    if (rc < 0)
        return -EPROTO;
    q->st.tx_pushes++;
    if (rc > 0) {
        q->st.tx_notifies++;
        nf_notify(q, q->tx_port);
    }
    return 0;
}

int sx_netfront_tx_reap(struct sx_netfront *f, unsigned qi)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q)
        return -EINVAL;
    netif_tx_response_t rsp[NF_TX_REAP_BATCH];
    int freed = 0;
    for (;;) {
        int n = sx_front_ring_take_rsp(&q->tx, rsp, NF_TX_REAP_BATCH);
        if (n < 0)
            return -EPROTO;
        for (int i = 0; i < n; i++) {
            if (rsp[i].status == NETIF_RSP_NULL)
                continue;           /* an extra-info slot's answer: carries no id */
            uint16_t id = rsp[i].id;
            if (id >= NF_TX_RING_SIZE || !q->tx_busy[id]) {
                q->st.tx_bad_rsp++;
                sx_log_ratelimited(SX_LOG_WARN, "vif %u queue %u: tx response for id %u not in "
                                   "flight", f->info.devid, qi, id);
                continue;
            }
            if (rsp[i].status != NETIF_RSP_OKAY)
                q->st.tx_rsp_errors++;
            q->tx_busy[id] = false;
            q->tx_free[q->tx_nfree++] = id;
            freed++;
        }
        if ((unsigned)n < NF_TX_REAP_BATCH)
            break;
    }
    return freed;
}

unsigned sx_netfront_tx_inflight(const struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return 0;
    return NF_TX_RING_SIZE - f->q[qi].tx_nfree;
}

static bool tx_room(const struct nf_queue *q, unsigned nslots, unsigned ndata)
{
    return sx_front_ring_free_slots(&q->tx) >= nslots && q->tx_nfree >= ndata;
}

int sx_netfront_send(struct sx_netfront *f, unsigned qi, const void *pkt, size_t len,
                     const struct sx_netfront_meta *meta, unsigned flags)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q || !pkt || (flags & ~SX_NETFRONT_SEND_MORE))
        return -EINVAL;
    if (q->tx.halted)
        return -EPROTO;
    if (len < NF_ETH_HLEN || len > SX_NETFRONT_MAX_FRAME)
        return -EMSGSIZE;
    if (len > NF_PAGE_SIZE && !f->info.tx_sg)
        return -EMSGSIZE;

    uint16_t txflags = 0;
    uint8_t gso_type = XEN_NETIF_GSO_TYPE_NONE;
    if (meta) {
        if (meta->flags & ~(SX_NETFRONT_CSUM_BLANK | SX_NETFRONT_DATA_VALIDATED))
            return -EINVAL;
        if (meta->flags & SX_NETFRONT_CSUM_BLANK) {
            if (!f->info.tx_csum)
                return -EOPNOTSUPP;
            txflags |= NETTXF_csum_blank | NETTXF_data_validated;
        } else if (meta->flags & SX_NETFRONT_DATA_VALIDATED) {
            txflags |= NETTXF_data_validated;
        }
        switch (meta->gso_type) {
        case XEN_NETIF_GSO_TYPE_NONE:
            break;
        case XEN_NETIF_GSO_TYPE_TCPV4:
            if (!f->info.tx_gso_tcpv4)
                return -EOPNOTSUPP;
            gso_type = meta->gso_type;
            break;
        case XEN_NETIF_GSO_TYPE_TCPV6:
            if (!f->info.tx_gso_tcpv6)
                return -EOPNOTSUPP;
            gso_type = meta->gso_type;
            break;
        default:
            return -EINVAL;
        }
        if (gso_type != XEN_NETIF_GSO_TYPE_NONE && meta->gso_size == 0)
            return -EINVAL;
    }
    bool gso = gso_type != XEN_NETIF_GSO_TYPE_NONE;
    unsigned ndata = (unsigned)((len + NF_PAGE_SIZE - 1) / NF_PAGE_SIZE);
    unsigned nslots = ndata + (gso ? 1 : 0);

    /* Make room: take responses; when that is not enough, publish what is queued (the
     * backend must see it to answer it), ask for an event on the next response and look
     * again (no lost wakeup). Each pass consumes at least one response, and the backend
     * cannot produce more than are outstanding, so this ends. */
    while (!tx_room(q, nslots, ndata)) {
        if (sx_netfront_tx_reap(f, qi) < 0)
            return -EPROTO;
        if (tx_room(q, nslots, ndata))
            break;
        if (sx_netfront_tx_push(f, qi) < 0)
            return -EPROTO;
        int fc = sx_front_ring_final_check(&q->tx);
        if (fc < 0)
            return -EPROTO;
        if (fc == 0) {
            q->st.tx_full++;
            return -EAGAIN;
        }
    }

    const uint8_t *src = pkt;
    size_t off = 0;
    for (unsigned k = 0; k < ndata; k++) {
        uint16_t id = q->tx_free[--q->tx_nfree];
        q->tx_busy[id] = true;
        size_t chunk = len - off < NF_PAGE_SIZE ? len - off : NF_PAGE_SIZE;
        memcpy(q->tx_pool + (size_t)id * NF_PAGE_SIZE, src + off, chunk);

        union { netif_tx_request_t req; netif_extra_info_t ex; } s;
        memset(&s, 0, sizeof(s));
        s.req.gref = q->tx_refs[id];
        s.req.offset = 0;
        s.req.id = id;
        if (k == 0) {
            s.req.size = (uint16_t)len;   /* the first slot's size is the whole frame */
            s.req.flags = txflags | (ndata > 1 ? NETTXF_more_data : 0) |
                          (gso ? NETTXF_extra_info : 0);
        } else {
            s.req.size = (uint16_t)chunk;
            s.req.flags = k + 1 < ndata ? NETTXF_more_data : 0;
        }
        if (sx_front_ring_put_req(&q->tx, &s) < 0)
            return -EPROTO;   /* room was checked: only a halted ring gets here */
        if (k == 0 && gso) {
            memset(&s, 0, sizeof(s));
            s.ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
            s.ex.flags = 0;
            s.ex.u.gso.size = meta->gso_size;
            s.ex.u.gso.type = gso_type;
            s.ex.u.gso.features = 0;
            if (sx_front_ring_put_req(&q->tx, &s) < 0)
                return -EPROTO;
        }
        off += chunk;
    }
    q->st.tx_pkts++;
    q->st.tx_bytes += len;
    q->st.tx_slots += nslots;
    if (gso)
        q->st.tx_gso++;
    if (txflags & NETTXF_csum_blank)
        q->st.tx_csum_blank++;
    if (!(flags & SX_NETFRONT_SEND_MORE))
        return sx_netfront_tx_push(f, qi);
    return 0;
}
