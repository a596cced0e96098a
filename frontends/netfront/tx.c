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
        q->tx_held[i] = false;
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

/* A frame's netif encoding, checked against what was negotiated. */
struct tx_enc {
    uint16_t txflags;
    uint8_t gso_type;
    uint16_t gso_size;
    unsigned ndata, nslots;
};

static int tx_check(const struct sx_netfront *f, size_t len, const struct sx_netfront_meta *meta,
                    struct tx_enc *e)
{
    if (len < NF_ETH_HLEN || len > SX_NETFRONT_MAX_FRAME)
        return -EMSGSIZE;
    if (len > NF_PAGE_SIZE && !f->info.tx_sg)
        return -EMSGSIZE;
    *e = (struct tx_enc){ .gso_type = XEN_NETIF_GSO_TYPE_NONE };
    if (meta) {
        if (meta->flags & ~(SX_NETFRONT_CSUM_BLANK | SX_NETFRONT_DATA_VALIDATED))
            return -EINVAL;
        if (meta->flags & SX_NETFRONT_CSUM_BLANK) {
            if (!f->info.tx_csum)
                return -EOPNOTSUPP;
            e->txflags |= NETTXF_csum_blank | NETTXF_data_validated;
        } else if (meta->flags & SX_NETFRONT_DATA_VALIDATED) {
            e->txflags |= NETTXF_data_validated;
        }
        switch (meta->gso_type) {
        case XEN_NETIF_GSO_TYPE_NONE:
            break;
        case XEN_NETIF_GSO_TYPE_TCPV4:
            if (!f->info.tx_gso_tcpv4)
                return -EOPNOTSUPP;
            e->gso_type = meta->gso_type;
            break;
        case XEN_NETIF_GSO_TYPE_TCPV6:
            if (!f->info.tx_gso_tcpv6)
                return -EOPNOTSUPP;
            e->gso_type = meta->gso_type;
            break;
        default:
            return -EINVAL;
        }
        if (e->gso_type != XEN_NETIF_GSO_TYPE_NONE && meta->gso_size == 0)
            return -EINVAL;
        e->gso_size = meta->gso_size;
    }
    e->ndata = (unsigned)((len + NF_PAGE_SIZE - 1) / NF_PAGE_SIZE);
    e->nslots = e->ndata + (e->gso_type != XEN_NETIF_GSO_TYPE_NONE ? 1 : 0);
    return 0;
}

/* Make room for nslots ring slots and ndata free pages: take responses; when that is not
 * enough, publish what is queued (the backend must see it to answer it), ask for an event on
 * the next response and look again (no lost wakeup). Each pass consumes at least one
 * response, and the backend cannot produce more than are outstanding, so this ends.
 * 0, -EAGAIN (the tx event is armed) or -EPROTO. */
static int tx_make_room(struct sx_netfront *f, unsigned qi, unsigned nslots, unsigned ndata)
{
    struct nf_queue *q = &f->q[qi];
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
    return 0;
}

/* Queue the slots of a frame whose data is in pages ids[0..e->ndata) (room was made): first
 * slot, the GSO extra, following slots; the pages go in flight. */
static int tx_queue(struct sx_netfront *f, unsigned qi, const uint16_t *ids, size_t len,
                    const struct tx_enc *e, unsigned flags)
{
    struct nf_queue *q = &f->q[qi];
    bool gso = e->gso_type != XEN_NETIF_GSO_TYPE_NONE;
    size_t off = 0;
    for (unsigned k = 0; k < e->ndata; k++) {
        uint16_t id = ids[k];
        q->tx_held[id] = false;
        q->tx_busy[id] = true;
        size_t chunk = len - off < NF_PAGE_SIZE ? len - off : NF_PAGE_SIZE;
        union { netif_tx_request_t req; netif_extra_info_t ex; } s;
        memset(&s, 0, sizeof(s));
        s.req.gref = q->tx_refs[id];
        s.req.offset = 0;
        s.req.id = id;
        if (k == 0) {
            s.req.size = (uint16_t)len;   /* the first slot's size is the whole frame */
            s.req.flags = e->txflags | (e->ndata > 1 ? NETTXF_more_data : 0) |
                          (gso ? NETTXF_extra_info : 0);
        } else {
            s.req.size = (uint16_t)chunk;
            s.req.flags = k + 1 < e->ndata ? NETTXF_more_data : 0;
        }
        if (sx_front_ring_put_req(&q->tx, &s) < 0)
            return -EPROTO;   /* room was checked: only a halted ring gets here */
        if (k == 0 && gso) {
            memset(&s, 0, sizeof(s));
            s.ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
            s.ex.flags = 0;
            s.ex.u.gso.size = e->gso_size;
            s.ex.u.gso.type = e->gso_type;
            s.ex.u.gso.features = 0;
            if (sx_front_ring_put_req(&q->tx, &s) < 0)
                return -EPROTO;
        }
        off += chunk;
    }
    q->st.tx_pkts++;
    q->st.tx_bytes += len;
    q->st.tx_slots += e->nslots;
    if (gso)
        q->st.tx_gso++;
    if (e->txflags & NETTXF_csum_blank)
        q->st.tx_csum_blank++;
    if (!(flags & SX_NETFRONT_SEND_MORE))
        return sx_netfront_tx_push(f, qi);
    return 0;
}

/* What send and send_pages check first: the arguments, the ring, the frame's encoding. */
static int tx_begin(struct sx_netfront *f, unsigned qi, const void *data, size_t len,
                    const struct sx_netfront_meta *meta, unsigned flags, struct nf_queue **qp,
                    struct tx_enc *e)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q || !data || (flags & ~SX_NETFRONT_SEND_MORE))
        return -EINVAL;
    if (q->tx.halted)
        return -EPROTO;
    *qp = q;
    return tx_check(f, len, meta, e);
}

int sx_netfront_send(struct sx_netfront *f, unsigned qi, const void *pkt, size_t len,
                     const struct sx_netfront_meta *meta, unsigned flags)
{
    struct nf_queue *q;
    struct tx_enc e;
    int rc = tx_begin(f, qi, pkt, len, meta, flags, &q, &e);
    if (rc < 0)
        return rc;
    if ((rc = tx_make_room(f, qi, e.nslots, e.ndata)) < 0)
        return rc;
    uint16_t ids[NF_TX_MAX_DATA_SLOTS];
    const uint8_t *src = pkt;
    for (unsigned k = 0; k < e.ndata; k++) {
        ids[k] = q->tx_free[--q->tx_nfree];
        size_t off = (size_t)k * NF_PAGE_SIZE;
        size_t chunk = len - off < NF_PAGE_SIZE ? len - off : NF_PAGE_SIZE;
        memcpy(q->tx_pool + (size_t)ids[k] * NF_PAGE_SIZE, src + off, chunk);
    }
    return tx_queue(f, qi, ids, len, &e, flags);
}

int sx_netfront_tx_get(struct sx_netfront *f, unsigned qi, struct sx_netfront_page *pg,
                       unsigned n)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q || (n && !pg))
        return -EINVAL;
    if (q->tx.halted)
        return -EPROTO;
    if (q->tx_nfree < n && sx_netfront_tx_reap(f, qi) < 0)
        return -EPROTO;
    unsigned k = 0;
    for (; k < n && q->tx_nfree; k++) {
        uint16_t id = q->tx_free[--q->tx_nfree];
        q->tx_held[id] = true;
        pg[k] = (struct sx_netfront_page){ .id = id,
                                           .addr = q->tx_pool + (size_t)id * NF_PAGE_SIZE };
    }
    return (int)k;
}

void sx_netfront_tx_put(struct sx_netfront *f, unsigned qi, const struct sx_netfront_page *pg,
                        unsigned n)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q)
        return;
    for (unsigned k = 0; k < n; k++) {
        uint16_t id = pg[k].id;
        if (id >= NF_TX_RING_SIZE || !q->tx_held[id])
            continue;   /* not one the caller holds: ignore rather than corrupt the stack */
        q->tx_held[id] = false;
        q->tx_free[q->tx_nfree++] = id;
    }
}

int sx_netfront_send_pages(struct sx_netfront *f, unsigned qi, const struct sx_netfront_page *pg,
                           unsigned npages, size_t len, const struct sx_netfront_meta *meta,
                           unsigned flags)
{
    struct nf_queue *q;
    struct tx_enc e;
    int rc = tx_begin(f, qi, pg, len, meta, flags, &q, &e);
    if (rc < 0)
        return rc;
    if (npages != e.ndata)
        return -EINVAL;
    uint16_t ids[NF_TX_MAX_DATA_SLOTS];
    for (unsigned k = 0; k < npages; k++) {
        ids[k] = pg[k].id;
        if (ids[k] >= NF_TX_RING_SIZE || !q->tx_held[ids[k]])
            return -EINVAL;
        for (unsigned j = 0; j < k; j++)
            if (ids[j] == ids[k])
                return -EINVAL;
    }
    if ((rc = tx_make_room(f, qi, e.nslots, 0)) < 0)
        return rc;
    return tx_queue(f, qi, ids, len, &e, flags);
}

int sx_netfront_tx_arm(struct sx_netfront *f, unsigned qi)
{
    struct nf_queue *q = queue_of(f, qi);
    if (!q)
        return -EINVAL;
    if (sx_netfront_tx_push(f, qi) < 0)
        return -EPROTO;
    int fc = sx_front_ring_final_check(&q->tx);
    return fc < 0 ? -EPROTO : fc;
}
