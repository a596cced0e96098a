/*
 * netfront receive path. The rx ring is kept full: the request at ring index i has id
 * i mod NF_RX_RING_SIZE and is backed by pool page id, and netif.h requires the backend to put
 * each response (data or extra info) in the slot of the request it consumed. Responses are
 * copied once into rx_stage (same index), a frame is parsed and validated on those copies,
 * its bytes copied out of the pages (recv) or pointed at where they lie (recv_peek), and then
 * every slot it used is reposted with the same id (page) at index i + NF_RX_RING_SIZE.
 *
 * Three indexes walk the staged responses: rx_done (first slot not reposted) <= rx_cur (first
 * slot not parsed) <= rsp_cons (first not staged). recv reposts a frame's slots as soon as it
 * copied it; recv_peek leaves them between rx_done and rx_cur until recv_release.
 */
#define SX_LOG_MODULE "netfront"
#include <errno.h>
#include <string.h>

#include "evtchn/evtchn.h"
#include "frontends/netfront/common.h"
#include "grant/grant.h"
#include "log.h"

SX_RING_CHECK_TYPES(netif_rx_request_t, netif_rx_response_t);
_Static_assert(sizeof(netif_extra_info_t) == sizeof(netif_rx_response_t),
               "an extra-info slot overlays an rx response");

#define NF_ETH_HLEN 14u
#define NF_RX_MASK (NF_RX_RING_SIZE - 1)
/* Slots one frame may use before we stop waiting for the rest of its chain. */
#define NF_RX_MAX_SLOTS (1 + NF_RX_MAX_EXTRAS + NF_RX_MAX_DATA_SLOTS)

int nf_rx_setup(struct nf_queue *q)
{
    struct sx_netfront *f = q->f;
    domid_t be = f->info.backend_id;

    int rc = sx_gntshr_share(f->shr, be, 1, true, &q->rx_ring_ref, &q->rx_sring);
    if (rc < 0)
        return rc;
    rc = sx_front_ring_init(&q->rx, q->rx_sring, NF_PAGE_SIZE, sizeof(netif_rx_request_t),
                            sizeof(netif_rx_response_t));
    if (rc < 0)
        return rc;
    if (q->rx.nr_ents != NF_RX_RING_SIZE)
        return -EINVAL;
    void *pool = NULL;
    rc = sx_gntshr_share(f->shr, be, NF_RX_RING_SIZE, true, q->rx_refs, &pool);
    if (rc < 0)
        return rc;
    q->rx_pool = pool;
    q->rx_done = 0;
    q->rx_cur = 0;
    q->rx_skip = false;
    for (unsigned i = 0; i < NF_RX_RING_SIZE; i++) {
        netif_rx_request_t req = { .id = (uint16_t)i, .gref = q->rx_refs[i] };
        if (sx_front_ring_put_req(&q->rx, &req) < 0)
            return -EIO;
    }
    /* Published before the backend connects: it finds a full ring, nobody to notify yet. */
    if (sx_front_ring_push(&q->rx) < 0)
        return -EIO;
    return 0;
}

void nf_rx_teardown(struct nf_queue *q)
{
    sx_front_ring_detach(&q->rx);
    nf_unshare(q->f, q->rx_pool, NF_RX_RING_SIZE, "rx buffers");
    q->rx_pool = NULL;
    nf_unshare(q->f, q->rx_sring, 1, "rx ring");
    q->rx_sring = NULL;
}

/* Publish reposted requests; notify once if the ring asks for it. */
static int rx_publish(struct nf_queue *q)
{
    if (q->rx_unpushed == 0)
        return 0;
    q->rx_unpushed = 0;
    int rc = sx_front_ring_push(&q->rx);
    if (rc < 0)
        return -EPROTO;
    q->st.rx_pushes++;
    if (rc > 0) {
        q->st.rx_notifies++;
        nf_notify(q, q->rx_port);
    }
    return 0;
}

/* Every parsed slot (up to rx_cur) is done with: repost their pages (same ids, see the top
 * comment), publishing once enough wait. */
static int rx_repost(struct nf_queue *q)
{
    unsigned n = q->rx_cur - q->rx_done;
    for (unsigned k = 0; k < n; k++) {
        uint16_t id = (uint16_t)(q->rx.req_prod_pvt & NF_RX_MASK);
        netif_rx_request_t req = { .id = id, .gref = q->rx_refs[id] };
        if (sx_front_ring_put_req(&q->rx, &req) < 0)
            return -EPROTO;
    }
    q->rx_done += n;
    q->rx_unpushed += n;
    q->st.rx_slots += n;
    if (q->rx_unpushed >= NF_RX_PUSH_BATCH)
        return rx_publish(q);
    return 0;
}

/* Copy newly produced responses into rx_stage. Returns the number taken or -EPROTO. */
static int rx_stage_more(struct nf_queue *q)
{
    int total = 0;
    for (;;) {
        unsigned staged = q->rx.rsp_cons - q->rx_done;
        if (staged >= NF_RX_RING_SIZE)
            break;
        unsigned pos = q->rx.rsp_cons & NF_RX_MASK;
        unsigned room = NF_RX_RING_SIZE - pos;
        if (room > NF_RX_RING_SIZE - staged)
            room = NF_RX_RING_SIZE - staged;
        int n = sx_front_ring_take_rsp(&q->rx, &q->rx_stage[pos], room);
        if (n < 0)
            return -EPROTO;
        total += n;
        if ((unsigned)n < room)
            break;
    }
    return total;
}

/* A frame's chain runs past what is staged. Wait for the rest, unless the frame already uses
 * more slots than any valid one: then drop it and skip its remaining slots as they come. */
static int rx_incomplete(struct nf_queue *q, unsigned nslots)
{
    if (nslots < NF_RX_MAX_SLOTS)
        return -EAGAIN;
    q->st.rx_bad++;
    sx_log_ratelimited(SX_LOG_WARN, "vif %u queue %u: rx frame spans more than %u slots",
                       q->f->info.devid, q->idx, NF_RX_MAX_SLOTS);
    q->rx_skip = true;
    q->rx_cur += nslots;
    return -EBADMSG;
}

/*
 * Parse the frame at rx_cur from the staged copies into fr (its segments point into the rx
 * pages) and move rx_cur past its slots. Returns its length, -EAGAIN when its chain is not all
 * staged yet (rx_cur stays), -EBADMSG when it was dropped (try the next), -EPROTO when the
 * ring is dead.
 */
static int rx_one(struct nf_queue *q, struct sx_netfront_rxframe *fr)
{
    const struct sx_netfront_info *info = &q->f->info;
    RING_IDX i = q->rx_cur, end = q->rx.rsp_cons;
    if (i == end)
        return -EAGAIN;

    if (q->rx_skip) {
        /* Resynchronise after a dropped over-long chain: its data slots end at the first one
         * without more_data. */
        RING_IDX j = i;
        while (j != end) {
            const netif_rx_response_t *r = &q->rx_stage[j & NF_RX_MASK];
            j++;
            if (!(r->flags & NETRXF_more_data)) {
                q->rx_skip = false;
                break;
            }
        }
        q->rx_cur = j;
        return q->rx_skip ? -EAGAIN : -EBADMSG;
    }

    const netif_rx_response_t *r0 = &q->rx_stage[i & NF_RX_MASK];
    const uint16_t flags0 = r0->flags;
    unsigned nslots = 1;
    bool bad = false, rsp_err = false;
    struct sx_netfront_meta m = { 0 };

    if (flags0 & NETRXF_extra_info) {
        bool more = true;
        unsigned nex = 0;
        while (more) {
            if (i + nslots == end)
                return rx_incomplete(q, nslots);
            const netif_extra_info_t *ex =
                (const netif_extra_info_t *)&q->rx_stage[(i + nslots) & NF_RX_MASK];
            nslots++;
            if (++nex > NF_RX_MAX_EXTRAS || ex->type == XEN_NETIF_EXTRA_TYPE_NONE ||
                ex->type >= XEN_NETIF_EXTRA_TYPE_MAX) {
                bad = true;
                break;   /* what follows cannot be trusted to be extras */
            }
            if (ex->type == XEN_NETIF_EXTRA_TYPE_GSO) {
                m.gso_type = ex->u.gso.type;
                m.gso_size = ex->u.gso.size;
                if (m.gso_type == XEN_NETIF_GSO_TYPE_NONE)
                    bad = true;
            }
            more = ex->flags & XEN_NETIF_EXTRA_FLAG_MORE;
        }
    }

    unsigned nseg = 0;
    size_t total = 0;
    RING_IDX ri = i;
    const netif_rx_response_t *r = r0;
    for (;;) {
        if (r->id != (ri & NF_RX_MASK)) {
            bad = true;
        } else if (r->status < 0) {
            rsp_err = true;
        } else if ((unsigned)r->offset + (unsigned)r->status > NF_PAGE_SIZE) {
            bad = true;
        } else if (nseg == NF_RX_MAX_DATA_SLOTS) {
            bad = true;
        } else {
            fr->seg[nseg++] = (struct iovec){
                .iov_base = q->rx_pool + (size_t)(ri & NF_RX_MASK) * NF_PAGE_SIZE + r->offset,
                .iov_len = (size_t)r->status };
            total += (size_t)r->status;
        }
        if (!(r->flags & NETRXF_more_data))
            break;
        if (i + nslots == end)
            return rx_incomplete(q, nslots);
        ri = i + nslots;
        r = &q->rx_stage[ri & NF_RX_MASK];
        nslots++;
    }

    if (flags0 & NETRXF_gso_prefix)
        bad = true;   /* never requested (no feature-gso-tcpv4-prefix) */
    if (m.gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && !info->rx_gso_tcpv4)
        bad = true;
    else if (m.gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && !info->rx_gso_tcpv6)
        bad = true;
    else if (m.gso_type > XEN_NETIF_GSO_TYPE_TCPV6 ||
             (m.gso_type != XEN_NETIF_GSO_TYPE_NONE && m.gso_size == 0))
        bad = true;
    if (!bad && !rsp_err && total < NF_ETH_HLEN)
        bad = true;

    int ret;
    if (bad) {
        q->st.rx_bad++;
        sx_log_ratelimited(SX_LOG_WARN, "vif %u queue %u: malformed rx frame at %u dropped",
                           info->devid, q->idx, (unsigned)i);
        ret = -EBADMSG;
    } else if (rsp_err) {
        q->st.rx_rsp_errors++;
        ret = -EBADMSG;
    } else if (total > SX_NETFRONT_MAX_FRAME) {
        q->st.rx_oversize++;
        ret = -EBADMSG;
    } else {
        if (flags0 & NETRXF_csum_blank)
            m.flags |= SX_NETFRONT_CSUM_BLANK;
        if (flags0 & NETRXF_data_validated)
            m.flags |= SX_NETFRONT_DATA_VALIDATED;
        fr->len = total;
        fr->nseg = nseg;
        fr->meta = m;
        ret = (int)total;
    }
    q->rx_cur += nslots;
    return ret;
}

static void rx_count(struct nf_queue *q, const struct sx_netfront_rxframe *fr)
{
    q->st.rx_pkts++;
    q->st.rx_bytes += fr->len;
    if (fr->meta.gso_type != XEN_NETIF_GSO_TYPE_NONE)
        q->st.rx_gso++;
    if (fr->meta.flags & SX_NETFRONT_CSUM_BLANK)
        q->st.rx_csum_blank++;
}

/* The next good frame into fr (staging more responses as needed), or -EAGAIN with the rx event
 * armed and the reposted buffers published, or -EPROTO. */
static int rx_next(struct nf_queue *q, struct sx_netfront_rxframe *fr)
{
    for (;;) {
        if (q->rx.halted)
            return -EPROTO;
        int r = rx_one(q, fr);
        if (r >= 0 || r == -EPROTO)
            return r;
        if (r == -EBADMSG)
            continue;
        /* -EAGAIN: need more responses. */
        int n = rx_stage_more(q);
        if (n < 0)
            return n;
        if (n > 0)
            continue;
        if (rx_publish(q) < 0)
            return -EPROTO;
        int fc = sx_front_ring_final_check(&q->rx);
        if (fc < 0)
            return -EPROTO;
        if (fc == 0)
            return -EAGAIN;
    }
}

int sx_netfront_recv(struct sx_netfront *f, unsigned qi, void *buf, size_t cap,
                     struct sx_netfront_meta *meta)
{
    if (!f || qi >= f->info.nqueues || (!buf && cap))
        return -EINVAL;
    struct nf_queue *q = &f->q[qi];
    if (q->rx_cur != q->rx_done)
        return -EBUSY;   /* frames peeked and not released: their order comes first */
    for (;;) {
        struct sx_netfront_rxframe fr;
        int r = rx_next(q, &fr);
        if (r < 0) {
            /* dropped frames' slots were parsed: repost them with the rest */
            int rc = rx_repost(q);
            return rc < 0 ? rc : r;
        }
        bool fits = fr.len <= cap;
        if (fits) {
            size_t pos = 0;
            for (unsigned k = 0; k < fr.nseg; k++) {
                memcpy((uint8_t *)buf + pos, fr.seg[k].iov_base, fr.seg[k].iov_len);
                pos += fr.seg[k].iov_len;
            }
            if (meta)
                *meta = fr.meta;
            rx_count(q, &fr);
        } else {
            q->st.rx_oversize++;
        }
        int rc = rx_repost(q);
        if (rc < 0)
            return rc;
        if (fits)
            return (int)fr.len;
    }
}

int sx_netfront_recv_peek(struct sx_netfront *f, unsigned qi, struct sx_netfront_rxframe *fr)
{
    if (!f || qi >= f->info.nqueues || !fr)
        return -EINVAL;
    int r = rx_next(&f->q[qi], fr);
    if (r >= 0)
        rx_count(&f->q[qi], fr);
    return r;
}

int sx_netfront_recv_release(struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return -EINVAL;
    struct nf_queue *q = &f->q[qi];
    int rc = rx_repost(q);
    if (rc < 0)
        return rc;
    return rx_publish(q) < 0 ? -EPROTO : 0;
}

int sx_netfront_events(struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return -EINVAL;
    struct nf_queue *q = &f->q[qi];
    int n = sx_idle_arm(&q->idle);
    if (n < 0)
        return n;
    q->st.events += (unsigned)n;
    return n;
}

static bool queue_has_work(void *arg)
{
    const struct nf_queue *q = arg;
    return sx_front_ring_has_responses(&q->rx) || sx_front_ring_has_responses(&q->tx);
}

bool sx_netfront_spin(struct sx_netfront *f, unsigned qi, bool work)
{
    if (!f || qi >= f->info.nqueues)
        return false;
    sx_idle_did(&f->q[qi].idle, work);
    return !work && sx_idle_spin(&f->q[qi].idle, queue_has_work, &f->q[qi]);
}

int sx_netfront_sleep(struct sx_netfront *f, unsigned qi, struct pollfd *pfd, unsigned n,
                      int timeout_ms)
{
    if (!f || qi >= f->info.nqueues)
        return -EINVAL;
    return sx_idle_poll(&f->q[qi].idle, pfd, n, timeout_ms);
}

int sx_netfront_fd(struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return -EINVAL;
    return sx_evtchn_fd(f->q[qi].ev);
}

bool sx_netfront_has_work(const struct sx_netfront *f, unsigned qi)
{
    if (!f || qi >= f->info.nqueues)
        return false;
    return queue_has_work((void *)&f->q[qi]);
}
