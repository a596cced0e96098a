/*
 * netfront control plane: read the vif's configuration, follow the backend's XenbusState,
 * negotiate features and queues, write the frontend keys (Linux talk_to_netback), connect and
 * disconnect (Linux xennet_remove).
 */
#define SX_LOG_MODULE "netfront"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evtchn/evtchn.h"
#include "frontends/netfront/common.h"
#include "grant/grant.h"
#include "clock.h"
#include "log.h"
#include "xenbus/xenbus.h"

#define NF_OPEN_TIMEOUT_MS 10000
#define NF_CLOSE_TIMEOUT_MS 5000
#define NF_XS_RETRIES 16
#define NF_BE_WATCH_TOKEN "sx-netfront-be-state"

#define STATE_BIT(s) (1u << (s))

/* "00:16:3e:00:00:01": exactly six two-digit hex bytes. */
static int parse_mac(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
            (i < 5 && p[2] != ':'))
            return -EINVAL;
        char hex[3] = { p[0], p[1], 0 };
        mac[i] = (uint8_t)strtoul(hex, NULL, 16);
    }
    return 0;
}

/* A backend feature flag: missing -> dflt; garbage -> dflt with a warning (as Linux's
 * xenbus_read_unsigned); any other error is returned. */
static int read_flag(struct sx_netfront *f, const char *key, bool dflt, bool *out)
{
    uint64_t v;
    int rc = sx_xenbus_read_uint(f->xb, XBT_NULL, f->info.backend_path, key, 0, UINT32_MAX, &v);
    if (rc == -ENOENT || rc == -EINVAL) {
        if (rc == -EINVAL)
            sx_warn("vif %u: backend %s/%s is not a number; taking %d", f->info.devid,
                    f->info.backend_path, key, dflt);
        *out = dflt;
        return 0;
    }
    if (rc < 0)
        return rc;
    *out = v != 0;
    return 0;
}

static void be_state_cb(void *arg, const char *dir, int state)
{
    (void)dir;
    struct sx_netfront *f = arg;
    f->be_state = state;
}

/* Wait until the backend's state is in ok (0) or in fail (-ENOTCONN); -ETIMEDOUT otherwise. */
static int wait_backend(struct sx_netfront *f, unsigned ok, unsigned fail, int timeout_ms,
                        enum xenbus_state *seen)
{
    long long deadline = timeout_ms < 0 ? -1 : (long long)sx_now_ms() + timeout_ms;
    enum xenbus_state st = XenbusStateUnknown;
    for (;;) {
        int rc = sx_xenbus_read_state(f->xb, XBT_NULL, f->info.backend_path, &st);
        if (seen)
            *seen = st;
        if (rc == 0 && (unsigned)st < 32) {
            if (ok & STATE_BIT(st))
                return 0;
            if (fail & STATE_BIT(st))
                return -ENOTCONN;
        } else if (rc < 0 && rc != -EINVAL) {
            return rc;
        }
        long long left = deadline < 0 ? 1000 : deadline - (long long)sx_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        rc = sx_xenbus_dispatch(f->xb, left > 1000 ? 1000 : (int)left);
        if (rc < 0)
            return rc;
    }
}

static int read_config(struct sx_netfront *f)
{
    struct sx_netfront_info *in = &f->info;
    const char *fe = in->frontend_path;
    int rc = sx_xenbus_read_str(f->xb, XBT_NULL, fe, "backend", in->backend_path,
                                sizeof(in->backend_path));
    if (rc < 0) {
        sx_err("vif %u: cannot read %s/backend: %s", in->devid, fe, strerror(-rc));
        return rc == -E2BIG ? -EINVAL : rc;
    }
    if (in->backend_path[0] != '/') {
        sx_err("vif %u: %s/backend is not an absolute path", in->devid, fe);
        return -EINVAL;
    }
    uint64_t v;
    rc = sx_xenbus_read_uint(f->xb, XBT_NULL, fe, "backend-id", 0, DOMID_FIRST_RESERVED - 1, &v);
    if (rc < 0) {
        sx_err("vif %u: cannot read %s/backend-id: %s", in->devid, fe, strerror(-rc));
        return rc;
    }
    in->backend_id = (domid_t)v;
    char mac[32];
    rc = sx_xenbus_read_str(f->xb, XBT_NULL, fe, "mac", mac, sizeof(mac));
    if (rc == 0)
        rc = parse_mac(mac, in->mac);
    if (rc < 0) {
        sx_err("vif %u: no valid %s/mac: %s", in->devid, fe, strerror(-rc));
        return rc == -E2BIG ? -EINVAL : rc;
    }
    rc = sx_xenbus_read_uint(f->xb, XBT_NULL, fe, "mtu", 68, 65535, &v);
    if (rc == -ENOENT)
        v = 1500;
    else if (rc < 0) {
        sx_err("vif %u: bad %s/mtu: %s", in->devid, fe, strerror(-rc));
        return rc;
    }
    in->mtu = (unsigned)v;
    return 0;
}

struct be_features {
    bool rx_copy, split, sg, gso_tcpv4, gso_tcpv6, ipv6_csum, xdp_headroom, mq;
    unsigned max_queues;
};

static int read_backend_features(struct sx_netfront *f, struct be_features *b)
{
    int rc;
    if ((rc = read_flag(f, "feature-rx-copy", false, &b->rx_copy)) ||
        (rc = read_flag(f, "feature-split-event-channels", false, &b->split)) ||
        (rc = read_flag(f, "feature-sg", false, &b->sg)) ||
        (rc = read_flag(f, "feature-gso-tcpv4", false, &b->gso_tcpv4)) ||
        (rc = read_flag(f, "feature-gso-tcpv6", false, &b->gso_tcpv6)) ||
        (rc = read_flag(f, "feature-ipv6-csum-offload", false, &b->ipv6_csum)) ||
        (rc = read_flag(f, "feature-xdp-headroom", false, &b->xdp_headroom)))
        return rc;
    uint64_t v;
    rc = sx_xenbus_read_uint(f->xb, XBT_NULL, f->info.backend_path, "multi-queue-max-queues", 1,
                             UINT32_MAX, &v);
    if (rc == 0) {
        b->mq = true;
        b->max_queues = (unsigned)(v > SX_NETFRONT_MAX_QUEUES ? SX_NETFRONT_MAX_QUEUES : v);
    } else if (rc == -ENOENT || rc == -EINVAL) {
        b->mq = false;
        b->max_queues = 1;
    } else {
        return rc;
    }
    return 0;
}

static void negotiate(struct sx_netfront *f, const struct be_features *b)
{
    const struct sx_netfront_opts *o = &f->opts;
    struct sx_netfront_info *in = &f->info;
    unsigned want = o->max_queues ? o->max_queues : 1;
    in->nqueues = want < b->max_queues ? want : b->max_queues;
    in->split_evtchn = b->split && !o->single_evtchn;
    bool sg = !o->no_sg, gso = sg && !o->no_gso;
    /* What we send is bounded by what the backend accepts. Linux netback takes partial IPv4
     * checksums from every frontend; IPv6 only where it says so. */
    in->tx_sg = sg && b->sg;
    in->tx_gso_tcpv4 = gso && in->tx_sg && b->gso_tcpv4;
    in->tx_gso_tcpv6 = gso && in->tx_sg && b->gso_tcpv6;
    in->tx_csum = !o->no_csum_offload;
    in->tx_ipv6_csum = in->tx_csum && !o->no_ipv6_csum_offload && b->ipv6_csum;
    /* What we accept is ours to say. */
    in->rx_sg = sg;
    in->rx_gso_tcpv4 = gso;
    in->rx_gso_tcpv6 = gso;
    in->rx_csum = !o->no_csum_offload;
    in->rx_ipv6_csum = in->rx_csum && !o->no_ipv6_csum_offload;
    in->tx_ring_size = NF_TX_RING_SIZE;
    in->rx_ring_size = NF_RX_RING_SIZE;
}

static int queue_setup(struct sx_netfront *f, struct nf_queue *q)
{
    /* A resumed queue keeps its event handle (and the fd its thread polls). */
    int rc = q->ev ? 0 : sx_evtchn_open(&q->ev, f->plat);
    if (rc < 0)
        return rc;
    rc = sx_evtchn_bind_unbound(q->ev, f->info.backend_id);
    if (rc < 0)
        return rc;
    q->tx_port = q->rx_port = rc;
    if (f->info.split_evtchn) {
        rc = sx_evtchn_bind_unbound(q->ev, f->info.backend_id);
        if (rc < 0)
            return rc;
        q->rx_port = rc;
    }
    if ((rc = nf_tx_setup(q)) < 0 || (rc = nf_rx_setup(q)) < 0)
        return rc;
    const struct sx_idle_opts io = { .spin_ns = f->opts.spin_ns, .eoi_now = true };
    sx_idle_init(&q->idle, q->ev, &io, NULL, 0);
    return 0;
}

static void queue_teardown(struct nf_queue *q)
{
    nf_rx_teardown(q);
    nf_tx_teardown(q);
    sx_evtchn_close(q->ev);   /* unbinds both ports */
    q->ev = NULL;
    q->tx_port = q->rx_port = -1;
}

static const char *const stale_keys[] = {
    "tx-ring-ref", "rx-ring-ref", "event-channel", "event-channel-tx", "event-channel-rx",
    "multi-queue-num-queues", "feature-no-csum-offload", "xdp-headroom",
};

static bool stale_key(const char *k)
{
    if (!strncmp(k, "queue-", 6))
        return true;
    for (size_t i = 0; i < sizeof(stale_keys) / sizeof(stale_keys[0]); i++)
        if (!strcmp(k, stale_keys[i]))
            return true;
    return false;
}

/* Remove ring and queue keys an earlier connection left behind. */
static int remove_stale(struct sx_netfront *f, xs_transaction_t t)
{
    return sx_xenbus_rm_if(f->xb, t, f->info.frontend_path, stale_key);
}

static int write_keys(struct sx_netfront *f, xs_transaction_t t, const struct be_features *b)
{
    const struct sx_netfront_info *in = &f->info;
    const char *fe = in->frontend_path;
    struct sx_xenbus *xb = f->xb;
    int rc = remove_stale(f, t);
    if (rc)
        return rc;
    if (b->mq && (rc = sx_xenbus_printf(xb, t, fe, "multi-queue-num-queues", "%u", in->nqueues)))
        return rc;
    for (unsigned i = 0; i < in->nqueues; i++) {
        const struct nf_queue *q = &f->q[i];
        char qdir[sizeof(in->frontend_path) + 32];
        if (in->nqueues == 1)
            snprintf(qdir, sizeof(qdir), "%s", fe);
        else
            snprintf(qdir, sizeof(qdir), "%s/queue-%u", fe, i);
        if ((rc = sx_xenbus_printf(xb, t, qdir, "tx-ring-ref", "%u", q->tx_ring_ref)) ||
            (rc = sx_xenbus_printf(xb, t, qdir, "rx-ring-ref", "%u", q->rx_ring_ref)))
            return rc;
        if (in->split_evtchn) {
            if ((rc = sx_xenbus_printf(xb, t, qdir, "event-channel-tx", "%d", q->tx_port)) ||
                (rc = sx_xenbus_printf(xb, t, qdir, "event-channel-rx", "%d", q->rx_port)))
                return rc;
        } else if ((rc = sx_xenbus_printf(xb, t, qdir, "event-channel", "%d", q->tx_port))) {
            return rc;
        }
    }
    if ((rc = sx_xenbus_write(xb, t, fe, "request-rx-copy", "1")) ||
        (rc = sx_xenbus_write(xb, t, fe, "feature-rx-notify", "1")) ||
        (rc = sx_xenbus_write(xb, t, fe, "feature-sg", in->rx_sg ? "1" : "0")) ||
        (rc = sx_xenbus_write(xb, t, fe, "feature-gso-tcpv4", in->rx_gso_tcpv4 ? "1" : "0")) ||
        (rc = sx_xenbus_write(xb, t, fe, "feature-gso-tcpv6", in->rx_gso_tcpv6 ? "1" : "0")) ||
        (rc = sx_xenbus_write(xb, t, fe, "feature-ipv6-csum-offload",
                              in->rx_ipv6_csum ? "1" : "0")))
        return rc;
    if (!in->rx_csum && (rc = sx_xenbus_write(xb, t, fe, "feature-no-csum-offload", "1")))
        return rc;
    if (b->xdp_headroom && (rc = sx_xenbus_write(xb, t, fe, "xdp-headroom", "0")))
        return rc;
    return 0;
}

static int publish(struct sx_netfront *f, const struct be_features *b)
{
    for (int attempt = 0;; attempt++) {
        xs_transaction_t t;
        int rc = sx_xenbus_transaction_start(f->xb, &t);
        if (rc)
            return rc;
        rc = write_keys(f, t, b);
        if (rc) {
            sx_xenbus_transaction_end(f->xb, t, true);
            return rc;
        }
        rc = sx_xenbus_transaction_end(f->xb, t, false);
        if (rc != -EAGAIN || attempt + 1 >= NF_XS_RETRIES)
            return rc;
    }
}

/* Release everything open acquired; the handle is freed. */
static void nf_free(struct sx_netfront *f)
{
    if (f->be_watch)
        sx_xenbus_unwatch(f->xb, NF_BE_WATCH_TOKEN);
    for (unsigned i = 0; f->q && i < f->nq_alloc; i++)
        queue_teardown(&f->q[i]);
    free(f->q);
    sx_gntshr_close(f->shr);
    sx_xenbus_close(f->xb);
    free(f);
}

/* From Initialising to our Connected (Linux talk_to_netback): wait for the backend's InitWait,
 * negotiate, set up the queues, publish. nq_want: the queue count it must come out with (a
 * resume), 0 to take what the negotiation gives. */
static int connect_vif(struct sx_netfront *f, unsigned nq_want)
{
    const struct sx_netfront_opts *opts = &f->opts;
    /* A frontend left Closed by an earlier run: Initialising makes the backend start over. */
    int rc = sx_xenbus_switch_state(f->xb, f->info.frontend_path, XenbusStateInitialising);
    if (rc < 0)
        return rc;
    rc = sx_xenbus_watch_state(f->xb, f->info.backend_path, NF_BE_WATCH_TOKEN, be_state_cb, f);
    if (rc < 0)
        return rc;
    f->be_watch = true;
    int tmo = opts->timeout_ms ? opts->timeout_ms : NF_OPEN_TIMEOUT_MS;
    enum xenbus_state seen;
    rc = wait_backend(f, STATE_BIT(XenbusStateInitWait), 0, tmo, &seen);
    if (rc < 0) {
        sx_err("vif %u: backend %s did not reach InitWait (last %s): %s", opts->devid,
               f->info.backend_path, sx_xenbus_state_name(seen), strerror(-rc));
        return rc;
    }

    struct be_features b;
    if ((rc = read_backend_features(f, &b)) < 0)
        return rc;
    if (!b.rx_copy) {
        sx_err("vif %u: backend does not offer feature-rx-copy", opts->devid);
        return -EPROTONOSUPPORT;
    }
    negotiate(f, &b);
    if (nq_want && f->info.nqueues != nq_want) {
        sx_err("vif %u: the backend offers %u queue(s), the guest runs %u", opts->devid,
               f->info.nqueues, nq_want);
        return -EPROTO;
    }

    if (!f->shr && (rc = sx_gntshr_open(&f->shr, f->plat)) < 0) {
        f->shr = NULL;
        return rc;
    }
    if (!f->q) {
        f->q = calloc(f->info.nqueues, sizeof(*f->q));
        if (!f->q)
            return -ENOMEM;
        f->nq_alloc = f->info.nqueues;
        for (unsigned i = 0; i < f->nq_alloc; i++) {
            f->q[i].f = f;
            f->q[i].idx = i;
            f->q[i].tx_port = f->q[i].rx_port = -1;
        }
    }
    for (unsigned i = 0; i < f->nq_alloc; i++) {
        if ((rc = queue_setup(f, &f->q[i])) < 0) {
            sx_err("vif %u: queue %u setup: %s", opts->devid, i, strerror(-rc));
            return rc;
        }
    }
    if ((rc = publish(f, &b)) < 0) {
        sx_err("vif %u: writing %s: %s", opts->devid, f->info.frontend_path, strerror(-rc));
        return rc;
    }
    /* As Linux netfront: Connected right after the keys; the backend connects on that. */
    if ((rc = sx_xenbus_switch_state(f->xb, f->info.frontend_path, XenbusStateConnected)) < 0)
        return rc;
    f->connected_keys = true;
    sx_info("vif %u: %u queue(s), %s event channels, tx sg=%d gso4=%d gso6=%d csum=%d/%d",
            opts->devid, f->info.nqueues, f->info.split_evtchn ? "split" : "shared",
            f->info.tx_sg, f->info.tx_gso_tcpv4, f->info.tx_gso_tcpv6, f->info.tx_csum,
            f->info.tx_ipv6_csum);
    return 0;
}

/* Connect to xenstore as the domain p acts as now and read the vif's configuration. */
static int attach_vif(struct sx_netfront *f)
{
    const char *xsp = f->opts.xenstored_path;
    int rc = sx_xenbus_open(&f->xb, f->plat, xsp);
    if (rc < 0) {
        f->xb = NULL;
        sx_err("vif %u: cannot connect to xenstored%s%s as dom%u: %s", f->opts.devid,
               xsp ? " at " : "", xsp ? xsp : "", f->plat->self, strerror(-rc));
        return rc;
    }
    f->info.self = f->plat->self;
    rc = sx_xenbus_frontend_path(f->info.frontend_path, sizeof(f->info.frontend_path),
                                 f->plat->self, "vif", f->opts.devid);
    return rc < 0 ? rc : read_config(f);
}

int sx_netfront_open(struct sx_netfront **out, struct sx_plat *p,
                     const struct sx_netfront_opts *opts)
{
    if (!out || !p || !opts)
        return -EINVAL;
    *out = NULL;
    struct sx_netfront *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->plat = p;
    f->opts = *opts;
    f->be_state = XenbusStateUnknown;
    f->info.devid = opts->devid;
    int rc = attach_vif(f);
    if (rc == 0)
        rc = connect_vif(f, 0);
    if (rc < 0) {
        nf_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* A queue after a move: its rings and buffers were given up with the domain's old grants
 * (sx_gntshr_resume), its ports with the event handle's (sx_evtchn_resume). */
static void queue_forget(struct nf_queue *q)
{
    sx_front_ring_detach(&q->tx);
    sx_front_ring_detach(&q->rx);
    q->tx_sring = q->rx_sring = NULL;
    q->tx_pool = q->rx_pool = NULL;
    q->rx_unpushed = 0;
    q->tx_port = q->rx_port = -1;
}

int sx_netfront_resume(struct sx_netfront *f, bool moved)
{
    if (!f)
        return -EINVAL;
    if (!moved) {
        enum xenbus_state st;
        int rc = sx_xenbus_read_state(f->xb, XBT_NULL, f->info.backend_path, &st);
        return rc < 0 ? rc : st == XenbusStateConnected ? 0 : -ENOTCONN;
    }
    unsigned nq = f->info.nqueues;
    int rc = sx_gntshr_resume(f->shr, f->plat);
    for (unsigned i = 0; rc == 0 && i < f->nq_alloc; i++)
        rc = sx_evtchn_resume(f->q[i].ev, f->plat);
    if (rc < 0) {
        sx_err("vif %u: cannot follow the domain to its new home: %s", f->info.devid,
               strerror(-rc));
        return rc;
    }
    for (unsigned i = 0; i < f->nq_alloc; i++)
        queue_forget(&f->q[i]);
    /* The old host's xenstore, watch and all. */
    sx_xenbus_close(f->xb);
    f->xb = NULL;
    f->be_watch = false;
    f->connected_keys = false;
    f->be_state = XenbusStateUnknown;
    rc = attach_vif(f);
    if (rc == 0)
        rc = connect_vif(f, nq);
    if (rc == 0)
        rc = sx_netfront_wait_connected(f, f->opts.timeout_ms ? f->opts.timeout_ms
                                                              : NF_OPEN_TIMEOUT_MS);
    if (rc < 0)
        sx_err("vif %u: reconnect after the move: %s", f->info.devid, strerror(-rc));
    return rc;
}

int sx_netfront_wait_connected(struct sx_netfront *f, int timeout_ms)
{
    if (!f)
        return -EINVAL;
    enum xenbus_state seen;
    int rc = wait_backend(f, STATE_BIT(XenbusStateConnected),
                          STATE_BIT(XenbusStateClosing) | STATE_BIT(XenbusStateClosed),
                          timeout_ms, &seen);
    if (rc < 0)
        sx_err("vif %u: backend %s not Connected (last %s): %s", f->info.devid,
               f->info.backend_path, sx_xenbus_state_name(seen), strerror(-rc));
    return rc;
}

void sx_netfront_close(struct sx_netfront *f)
{
    if (!f)
        return;
    if (f->connected_keys) {
        int tmo = f->opts.close_timeout_ms ? f->opts.close_timeout_ms : NF_CLOSE_TIMEOUT_MS;
        const char *fe = f->info.frontend_path;
        enum xenbus_state st = XenbusStateUnknown;
        int rc = sx_xenbus_read_state(f->xb, XBT_NULL, f->info.backend_path, &st);
        if (rc == 0 && st != XenbusStateClosed && st != XenbusStateUnknown) {
            /* Linux xennet_remove: Closing, wait for the backend to let go of the rings,
             * Closed, wait for it to be Closed. */
            if (sx_xenbus_switch_state(f->xb, fe, XenbusStateClosing) == 0)
                (void)wait_backend(f, STATE_BIT(XenbusStateClosing) |
                                      STATE_BIT(XenbusStateClosed) |
                                      STATE_BIT(XenbusStateUnknown), 0, tmo, NULL);
            if (sx_xenbus_switch_state(f->xb, fe, XenbusStateClosed) == 0)
                (void)wait_backend(f, STATE_BIT(XenbusStateClosed) |
                                      STATE_BIT(XenbusStateUnknown), 0, tmo, NULL);
        } else {
            (void)sx_xenbus_switch_state(f->xb, fe, XenbusStateClosed);
        }
    }
    nf_free(f);
}

const struct sx_netfront_info *sx_netfront_info(const struct sx_netfront *f)
{
    return f ? &f->info : NULL;
}

int sx_netfront_ctrl_fd(struct sx_netfront *f)
{
    return f ? sx_xenbus_fd(f->xb) : -EINVAL;
}

int sx_netfront_ctrl_handle(struct sx_netfront *f)
{
    if (!f)
        return -EINVAL;
    int rc = sx_xenbus_dispatch(f->xb, 0);
    if (rc < 0)
        return rc;
    enum xenbus_state st;
    rc = sx_xenbus_read_state(f->xb, XBT_NULL, f->info.backend_path, &st);
    return rc < 0 ? rc : (int)st;
}

_Static_assert(sizeof(struct sx_netfront_stats) % sizeof(uint64_t) == 0,
               "sx_netfront_stats is summed as an array of uint64_t");

int sx_netfront_stats(const struct sx_netfront *f, unsigned qi, struct sx_netfront_stats *out)
{
    if (!f || !out || (qi != ~0u && qi >= f->info.nqueues))
        return -EINVAL;
    if (qi != ~0u) {
        *out = f->q[qi].st;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < f->info.nqueues; i++) {
        const uint64_t *src = (const uint64_t *)&f->q[i].st;
        uint64_t *dst = (uint64_t *)out;
        for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
            dst[k] += src[k];
    }
    return 0;
}
