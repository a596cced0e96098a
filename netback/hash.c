/*
 * netback hashing and control ring (feature-ctrl-ring), after Linux
 * drivers/net/xen-netback/hash.c and the ctrl ring of interface.c.
 *
 * The frontend offers a control ring (ctrl-ring-ref, event-channel-ctrl) before Connected; a
 * thread per vif serves it. Every request is a private copy (sx_back_ring_take) and every
 * field is validated; statuses are those of <xen/io/netif.h> and Linux's choices where netif.h
 * leaves one open (mapping size above the maximum: INVALID_PARAMETER, as Linux). A producer
 * index past the ring halts this vif's ctrl ring only (counted in ctrl_fatal); the data path
 * keeps running.
 *
 * Toeplitz types: netif.h defines IPv4/IPv6 and their TCP variants only; like Linux, a UDP (or
 * fragmented, or other) packet is hashed with the address-only type when that flag is set.
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "netback/common.h"

SX_RING_CHECK_TYPES(struct xen_netif_ctrl_request, struct xen_netif_ctrl_response);

void nb_hash_init(struct nb_hash *h, unsigned nqueues)
{
    pthread_mutex_lock(&h->lock);
    memset(&h->cfg, 0, sizeof(h->cfg));
    h->cfg.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
    h->size = 0;
    memset(h->mapping, 0, sizeof(h->mapping));
    h->nqueues = nqueues ? nqueues : 1;
    atomic_store_explicit(&h->active, false, memory_order_relaxed);
    pthread_mutex_unlock(&h->lock);
}

void nb_hash_destroy(struct nb_hash *h)
{
    pthread_mutex_destroy(&h->lock);
}

uint32_t nb_toeplitz(const uint8_t *key, unsigned keylen, const uint8_t *buf, unsigned len)
{
    uint64_t prefix = 0, hash = 0;
    unsigned ki;
    for (ki = 0; ki < 8; ki++)
        prefix = (prefix << 8) | (ki < keylen ? key[ki] : 0);
    for (unsigned bi = 0; bi < len; bi++, ki++) {
        uint8_t byte = buf[bi];
        for (unsigned bit = 0; bit < 8; bit++) {
            if (byte & 0x80)
                hash ^= prefix;
            prefix <<= 1;
            byte = (uint8_t)(byte << 1);
        }
        prefix |= ki < keylen ? key[ki] : 0;   /* prefix moved by 8: the next key byte */
    }
    return (uint32_t)(hash >> 32);
}

bool nb_hash_frame(const struct nb_hash_cfg *cfg, const uint8_t *frame, uint32_t len,
                   uint32_t *hash, uint8_t *type)
{
    if (cfg->alg != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ || !cfg->flags || len < 14)
        return false;
    uint32_t off = 12;
    uint16_t et = (uint16_t)(frame[off] << 8 | frame[off + 1]);
    if (et == 0x8100 || et == 0x88a8) {            /* one VLAN tag */
        if (len < 18)
            return false;
        off += 4;
        et = (uint16_t)(frame[off] << 8 | frame[off + 1]);
    }
    off += 2;
    const uint8_t *ip = frame + off;
    uint32_t iplen = len - off;
    uint8_t buf[36];
    if (et == 0x0800) {
        if (iplen < 20 || (ip[0] >> 4) != 4)
            return false;
        uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
        bool frag = ((ip[6] << 8 | ip[7]) & 0x3fff) != 0;   /* MF or an offset */
        memcpy(buf, ip + 12, 8);
        if ((cfg->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP) && ip[9] == 6 && !frag &&
            ihl >= 20 && iplen >= ihl + 4) {
            memcpy(buf + 8, ip + ihl, 4);
            *hash = nb_toeplitz(cfg->key, NB_HASH_KEY_MAX, buf, 12);
            *type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
            return true;
        }
        if (cfg->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV4) {
            *hash = nb_toeplitz(cfg->key, NB_HASH_KEY_MAX, buf, 8);
            *type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4;
            return true;
        }
        return false;
    }
    if (et == 0x86dd) {
        if (iplen < 40 || (ip[0] >> 4) != 6)
            return false;
        memcpy(buf, ip + 8, 32);
        if ((cfg->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP) && ip[6] == 6 && iplen >= 44) {
            memcpy(buf + 32, ip + 40, 4);
            *hash = nb_toeplitz(cfg->key, NB_HASH_KEY_MAX, buf, 36);
            *type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
            return true;
        }
        if (cfg->flags & XEN_NETIF_CTRL_HASH_TYPE_IPV6) {
            *hash = nb_toeplitz(cfg->key, NB_HASH_KEY_MAX, buf, 32);
            *type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6;
            return true;
        }
    }
    return false;
}

unsigned nb_hash_queue(struct nb_hash *h, uint32_t hash)
{
    pthread_mutex_lock(&h->lock);
    unsigned q = nb_hash_pick(h->mapping, h->size, h->nqueues, hash);
    pthread_mutex_unlock(&h->lock);
    return q;
}

void nb_hash_snapshot(struct nb_hash *h, struct nb_hash_snap *s)
{
    pthread_mutex_lock(&h->lock);
    s->cfg = h->cfg;
    s->size = h->size;
    s->nqueues = h->nqueues;
    if (h->cfg.alg != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
        memcpy(s->mapping, h->mapping, h->size * sizeof(h->mapping[0]));
    pthread_mutex_unlock(&h->lock);
}

void nb_ctrl_handle(struct nb_hash *h, const struct xen_netif_ctrl_request *req,
                    struct xen_netif_ctrl_response *rsp, nb_ctrl_copy_fn *copy, void *arg)
{
    const uint32_t d0 = req->data[0], d1 = req->data[1], d2 = req->data[2];
    rsp->id = req->id;
    rsp->type = req->type;
    rsp->data = 0;
    uint32_t st = XEN_NETIF_CTRL_STATUS_SUCCESS;
    switch (req->type) {
    case XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM:
        if (d0 != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE &&
            d0 != XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        pthread_mutex_lock(&h->lock);
        h->cfg.alg = d0;
        /* a hint for the rx path's lock-free check; the locked snapshot decides */
        atomic_store_explicit(&h->active, d0 != XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
                              memory_order_relaxed);
        pthread_mutex_unlock(&h->lock);
        break;
    case XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS:
        pthread_mutex_lock(&h->lock);
        if (h->cfg.alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
            st = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
        else
            rsp->data = NB_HASH_FLAGS_ALL;
        pthread_mutex_unlock(&h->lock);
        break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS:
        if (d0 & ~(uint32_t)NB_HASH_FLAGS_ALL) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        pthread_mutex_lock(&h->lock);
        if (h->cfg.alg == XEN_NETIF_CTRL_HASH_ALGORITHM_NONE)
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;   /* Linux: no algorithm yet */
        else
            h->cfg.flags = d0;
        pthread_mutex_unlock(&h->lock);
        break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_KEY: {
        if (d1 > NB_HASH_KEY_MAX) {
            st = XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW;
            break;
        }
        uint8_t key[NB_HASH_KEY_MAX] = { 0 };   /* octets not given are zero */
        if (d1 && copy(arg, d0, key, d1) < 0) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        pthread_mutex_lock(&h->lock);
        memcpy(h->cfg.key, key, sizeof(key));
        pthread_mutex_unlock(&h->lock);
        break;
    }
    case XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE:
        rsp->data = NB_HASH_MAPPING_MAX;
        break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE:
        if (d0 > NB_HASH_MAPPING_MAX) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        pthread_mutex_lock(&h->lock);
        h->size = d0;
        memset(h->mapping, 0, sizeof(h->mapping));   /* a new table is zero filled */
        pthread_mutex_unlock(&h->lock);
        break;
    case XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING: {
        /* data[0] gref, data[1] entries, data[2] offset in entries */
        pthread_mutex_lock(&h->lock);
        uint32_t size = h->size, nq = h->nqueues;
        pthread_mutex_unlock(&h->lock);
        if (d2 + d1 < d2 || d2 + d1 > size || d1 > SX_NET_PAGE_SIZE / sizeof(uint32_t)) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        uint32_t tab[NB_HASH_MAPPING_MAX];
        if (d1 && copy(arg, d0, tab, d1 * (uint32_t)sizeof(uint32_t)) < 0) {
            st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
            break;
        }
        for (uint32_t i = 0; i < d1 && st == XEN_NETIF_CTRL_STATUS_SUCCESS; i++)
            if (tab[i] >= nq)
                st = XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
        if (st != XEN_NETIF_CTRL_STATUS_SUCCESS)
            break;
        pthread_mutex_lock(&h->lock);
        if (h->size == size)   /* only the ctrl thread writes it: always true */
            memcpy(h->mapping + d2, tab, d1 * sizeof(uint32_t));
        pthread_mutex_unlock(&h->lock);
        break;
    }
    default:   /* INVALID, the gref mapping messages, anything unknown */
        st = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
        break;
    }
    rsp->status = st;
}

/* ---------------------------------------------------------------- the ring */

static int ctrl_copy(void *arg, uint32_t gref, void *dst, uint32_t len)
{
    struct nb_vif *v = arg;
    if (len > SX_NET_PAGE_SIZE)
        return -EINVAL;
    xengnttab_grant_copy_segment_t seg;
    memset(&seg, 0, sizeof(seg));
    seg.source.foreign.ref = gref;
    seg.source.foreign.offset = 0;
    seg.source.foreign.domid = (uint16_t)v->fe_domid;
    seg.dest.virt = dst;
    seg.len = (uint16_t)len;
    seg.flags = GNTCOPY_source_gref;
    int rc = sx_gnt_copy(v->nb->gnt, 1, &seg);
    if (rc < 0)
        return rc;
    return seg.status == GNTST_okay ? 0 : -EIO;
}

static void ctrl_stat(struct nb_vif *v, enum nb_stat i, uint64_t n)
{
    if (n)
        sx_stats_add(&v->stats, i, n);
}

static void *ctrl_main(void *arg)
{
    struct nb_vif *v = arg;
    struct nb_ctrl *c = &v->ctrl;
    struct xen_netif_ctrl_request reqs[16];
    /* No spin (control messages are rare); notifications that bring no request are throttled
     * as the queues' are (late EOI, XSA-332). */
    const struct sx_idle_opts io = { .spin_ns = 0 };
    struct sx_idle idle;
    sx_idle_init(&idle, c->ev, &io, &v->stats, NBS_SPURIOUS);
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        if (!c->halted) {
            int n = sx_back_ring_take(&c->ring, reqs, 16);
            if (n < 0) {
                c->halted = true;
                ctrl_stat(v, NBS_CTRL_FATAL, 1);
                sx_log_ratelimited(SX_LOG_WARN, "vif%u.%u: ctrl producer index overflow: "
                                   "ctrl ring halted", v->fe_domid, v->devid);
                continue;
            }
            if (n > 0) {
                unsigned bad = 0;
                for (int i = 0; i < n; i++) {
                    struct xen_netif_ctrl_response rsp;
                    nb_ctrl_handle(&v->hash, &reqs[i], &rsp, ctrl_copy, v);
                    bad += rsp.status != XEN_NETIF_CTRL_STATUS_SUCCESS;
                    if (sx_back_ring_put_rsp(&c->ring, &rsp) < 0) {
                        c->halted = true;
                        ctrl_stat(v, NBS_CTRL_FATAL, 1);
                        break;
                    }
                }
                if (sx_back_ring_push(&c->ring) == 1)
                    sx_evtchn_notify(c->ev, c->port);
                ctrl_stat(v, NBS_CTRL_REQS, (uint64_t)n);
                ctrl_stat(v, NBS_CTRL_ERRORS, bad);
                sx_idle_did(&idle, true);
                continue;
            }
            /* End the events (late EOI), then ask for a notification and re-check (nothing
             * that arrives after this is missed: it shows in the re-check or wakes the poll,
             * at once or when a throttled port's delay ends). */
            sx_idle_arm(&idle);
            int f = sx_back_ring_final_check(&c->ring);
            if (f > 0)
                continue;
            if (f < 0) {
                c->halted = true;
                ctrl_stat(v, NBS_CTRL_FATAL, 1);
                continue;
            }
        }
        struct pollfd pf[2] = {
            { .fd = c->halted ? -1 : sx_evtchn_fd(c->ev), .events = POLLIN },
            { .fd = c->stopfd, .events = POLLIN },
        };
        int rc = sx_idle_poll(&idle, pf, 2, 1000);
        if (rc < 0 && rc != -EINTR)
            break;
    }
    sx_idle_fini(&idle);
    return NULL;
}

int nb_ctrl_connect(struct nb_vif *v)
{
    struct nb *nb = v->nb;
    struct nb_ctrl *c = &v->ctrl;
    uint64_t ref, port;
    memset(c, 0, sizeof(*c));
    c->stopfd = -1;
    nb_hash_init(&v->hash, v->nqueues);
    int rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, v->fe_path, "ctrl-ring-ref", 0, UINT32_MAX,
                                 &ref);
    if (rc == -ENOENT)
        return 0;   /* no control ring: fine (Linux connect_ctrl_ring) */
    if (rc < 0 ||
        (rc = sx_xenbus_read_uint(nb->xb, XBT_NULL, v->fe_path, "event-channel-ctrl", 0,
                                  UINT32_MAX, &port)) < 0) {
        sx_warn("vif%u.%u: bad ctrl-ring-ref or missing/bad event-channel-ctrl", v->fe_domid,
                v->devid);
        return rc < 0 ? rc : -EINVAL;
    }
    grant_ref_t r = (grant_ref_t)ref;
    if ((rc = sx_ring_map(nb->gnt, (domid_t)v->fe_domid, 0, &r, &c->mem)) < 0) {
        sx_warn("vif%u.%u: map ctrl ring ref %u: %s", v->fe_domid, v->devid, r, strerror(-rc));
        c->mem = NULL;
        goto fail;
    }
    if ((rc = sx_back_ring_attach(&c->ring, c->mem, SX_RING_PAGE_SIZE,
                                  sizeof(struct xen_netif_ctrl_request),
                                  sizeof(struct xen_netif_ctrl_response))) < 0)
        goto fail;
    RING_IDX start = SX_READ_ONCE(c->ring.sring->rsp_prod);
    c->ring.req_cons = c->ring.rsp_prod_pvt = c->ring.rsp_pushed = start;
    if ((rc = sx_evtchn_open(&c->ev, nb->plat)) < 0)
        goto fail;
    if ((rc = sx_evtchn_bind_interdomain(c->ev, (domid_t)v->fe_domid,
                                         (evtchn_port_t)port)) < 0) {
        sx_warn("vif%u.%u: bind ctrl event channel %" PRIu64 ": %s", v->fe_domid, v->devid,
                port, strerror(-rc));
        goto fail;
    }
    c->port = (evtchn_port_t)rc;
    c->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->stopfd < 0) {
        rc = -errno;
        goto fail;
    }
    atomic_store(&c->stop, false);
    if ((rc = -pthread_create(&c->thr, NULL, ctrl_main, v)) < 0)
        goto fail;
    c->thr_started = true;
    char name[16];
    snprintf(name, sizeof(name), "nb%u.%u-ctrl", v->fe_domid, v->devid);
    pthread_setname_np(c->thr, name);
    return 0;
fail:
    nb_ctrl_disconnect(v);
    return rc;
}

void nb_ctrl_disconnect(struct nb_vif *v)
{
    struct nb_ctrl *c = &v->ctrl;
    if (c->thr_started) {
        atomic_store_explicit(&c->stop, true, memory_order_release);
        uint64_t one = 1;
        if (write(c->stopfd, &one, sizeof(one)) < 0)
            sx_warn("vif%u.%u: ctrl stop eventfd: %s", v->fe_domid, v->devid, strerror(errno));
        pthread_join(c->thr, NULL);
        c->thr_started = false;
    }
    if (c->stopfd >= 0)
        close(c->stopfd);
    c->stopfd = -1;
    sx_evtchn_close(c->ev);
    c->ev = NULL;
    sx_back_ring_detach(&c->ring);
    if (c->mem && sx_ring_unmap(v->nb->gnt, c->mem, 0) < 0)
        sx_warn("vif%u.%u: unmap ctrl ring failed", v->fe_domid, v->devid);
    c->mem = NULL;
    c->halted = false;
}
