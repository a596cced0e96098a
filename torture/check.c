/*
 * torture, control plane checks: the frontend's xenbus states, its keys, and its rings after
 * it closed.
 *
 * States are judged once the watch events settle (TT_SETTLE_MS without one): xenstore delivers
 * one event per write, but a read returns only the latest value, so two quick writes can look
 * like one jump (Closed then Initialising read as Connected -> Initialising). A run of state
 * changes is judged only when the events counted match the changes seen, each write then being
 * one of them; otherwise it is left alone (a mistake can go unreported, a correct frontend is
 * never accused). The watch's initial event (xenstore fires a watch once when it is set, before
 * any event of a later write) is not counted.
 *
 * Keys are read when the frontend enters Initialised or Connected: what the protocol needs must
 * be there already (looked at again after TT_SETTLE_MS: then it was written late, or is
 * missing), within what the backend offered, at the right level; and while it stays connected
 * they are compared with that snapshot every TT_KEYS_RECHECK_MS.
 *
 * After Closed (or the device directory gone), each ring of the last connection is mapped again
 * TT_PROBE_DELAY_MS later: a page that still holds the indexes the connection left is a ring
 * the frontend kept granted.
 */
#define SX_LOG_MODULE "torture"
#include "torture/priv.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant/grant.h"
#include "log.h"
#include "xenbus/xenbus.h"

/* ------------------------------------------------------------------ states */

static bool legal(enum xenbus_state from, enum xenbus_state to)
{
    if (to == XenbusStateUnknown || to == XenbusStateClosing || to == XenbusStateClosed)
        return true;
    switch (from) {
    case XenbusStateUnknown:
        return true;
    case XenbusStateInitialising:
        return to == XenbusStateInitWait || to == XenbusStateInitialised ||
               to == XenbusStateConnected;
    case XenbusStateInitWait:
        return to == XenbusStateInitialised || to == XenbusStateConnected;
    case XenbusStateInitialised:
        return to == XenbusStateConnected;
    case XenbusStateConnected:
        return to == XenbusStateReconfiguring;
    case XenbusStateReconfiguring:
        return to == XenbusStateConnected || to == XenbusStateReconfigured;
    case XenbusStateReconfigured:
        return to == XenbusStateConnected;
    case XenbusStateClosed:
        return to == XenbusStateInitialising;
    default:
        return false;
    }
}

static const char *why_illegal(enum xenbus_state from, enum xenbus_state to)
{
    if (from == XenbusStateClosed)
        return "after Closed a new connection starts from Initialising";
    if (from == XenbusStateClosing)
        return "Closing is followed by Closed";
    if (to < from)
        return "a frontend state never goes back within a connection";
    return "not a step of the xenbus handshake";
}

static void judge(struct sx_tt_dev *d, enum xenbus_state from, enum xenbus_state to,
                  enum xenbus_state be)
{
    if (!legal(from, to)) {
        sx_tt_found(d, SX_TT_K_STATE, NULL, NULL,
                    "frontend state %s -> %s (backend %s): %s", sx_xenbus_state_name(from),
                    sx_xenbus_state_name(to), sx_xenbus_state_name(be), why_illegal(from, to));
        return;
    }
    /* blkif: the frontend reads the disk's properties once the backend is Connected. */
    if (d->proto == SX_TT_BLKIF && to == XenbusStateConnected && be != XenbusStateConnected &&
        from != XenbusStateReconfiguring && from != XenbusStateReconfigured)
        sx_tt_found(d, SX_TT_K_STATE, NULL,
                    "<xen/io/blkif.h> STATE DIAGRAMS: the backend goes XenbusStateConnected "
                    "after it connected to the ring and published the device properties; then "
                    "the frontend \"Query backend device properties\" and goes "
                    "XenbusStateConnected",
                    "frontend state %s -> Connected while the backend is %s",
                    sx_xenbus_state_name(from), sx_xenbus_state_name(be));
}

static void settle(struct sx_tt_dev *d)
{
    if (!d->obs_lost && d->events == d->nobs) {
        enum xenbus_state from = d->settled;
        for (unsigned i = 0; i < d->nobs; i++) {
            judge(d, from, d->obs[i], d->obs_be[i]);
            from = d->obs[i];
        }
    }
    if (d->nobs)
        d->settled = d->obs[d->nobs - 1];
    d->nobs = 0;
    d->events = 0;
    d->obs_lost = false;
}

void sx_tt_fe_event(struct sx_tt_dev *d)
{
    if (!d)
        return;
    d->last_event_ms = tt_now_ms();
    if (d->skip_events) {
        d->skip_events--;
        return;
    }
    d->events++;
}

/* ------------------------------------------------------------------ keys */

/* A growing text buffer: the snapshot ("path=value\n") and the missing keys ("path\n"). */
struct tbuf {
    char *s;
    size_t len, size;
};

static void tb_add(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_add(struct tbuf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->s ? vsnprintf(b->s + b->len, b->size - b->len, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && b->len + (size_t)n < b->size) {
            b->len += (size_t)n;
            return;
        }
        size_t want = (b->size ? b->size * 2 : 2048) + (n > 0 ? (size_t)n : 0);
        char *p = realloc(b->s, want);
        if (!p)
            return;   /* the snapshot is then shorter: checks on what it holds */
        b->s = p;
        b->size = want;
        b->s[b->len] = '\0';
    }
}

struct keyread {
    struct sx_xenbus *xb;
    struct tbuf snap, missing;
};

/* Read dir/key into buf (cleared when absent); a transport parameter (keep) goes into the
 * snapshot. 0 or -errno. */
static int rd_keep(struct keyread *kr, const char *dir, const char *key, char *buf, size_t size,
                   bool keep)
{
    int rc = sx_xenbus_read_str(kr->xb, XBT_NULL, dir, key, buf, size);
    if (rc < 0)
        buf[0] = '\0';
    if (keep)
        tb_add(&kr->snap, "%s/%s=%s\n", dir, key, rc < 0 ? "" : buf);
    return rc;
}

static int rd(struct keyread *kr, const char *dir, const char *key, char *buf, size_t size)
{
    return rd_keep(kr, dir, key, buf, size, true);
}

static void need(struct keyread *kr, const char *dir, const char *key)
{
    char v[64];
    if (rd(kr, dir, key, v, sizeof(v)) < 0)
        tb_add(&kr->missing, "%s/%s\n", dir, key);
}

static bool present(struct keyread *kr, const char *dir, const char *key)
{
    return sx_xenbus_exists(kr->xb, XBT_NULL, dir, key) == 1;
}

/* The decimal value of dir/key, dflt when absent, -1 when it is no number. Not a transport
 * parameter: a frontend may change it while connected (keep false). */
static int64_t num_keep(struct keyread *kr, const char *dir, const char *key, int64_t dflt,
                        bool keep)
{
    char v[32];
    if (rd_keep(kr, dir, key, v, sizeof(v), keep) < 0)
        return dflt;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!v[0] || *end || v[0] == '-' || x > INT64_MAX)
        return -1;
    return (int64_t)x;
}

static int64_t num(struct keyread *kr, const char *dir, const char *key, int64_t dflt)
{
    return num_keep(kr, dir, key, dflt, true);
}

static const char rule_mq_layout[] =
    "<xen/io/blkif.h>, <xen/io/netif.h>: \"Frontends requesting two or more queues must not "
    "write the toplevel event-channel and ring-ref keys, instead writing those keys under "
    "sub-keys having the name \"queue-N\"\"";
static const char rule_ring_ref[] =
    "<xen/io/blkif.h> note 6: \"When using a multi-page ring, the 'ring-ref' node is not "
    "created. Instead 'ring-ref0' - 'ring-refN' are used.\"";
static const char rule_order[] =
    "<xen/io/blkif.h> ring-page-order: \"Maximum Value: MAX(ffs(max-ring-pages) - 1, "
    "max-ring-page-order)\"";
static const char rule_early[] =
    "<xen/io/blkif.h>: \"A frontend may transition to XenbusStateInitialised without waiting "
    "for the backend to enter XenbusStateInitWait. In this case, default transport parameters "
    "are in effect and any transport parameters published by the frontend must contain their "
    "default values.\"";
static const char rule_rx_notify[] =
    "<xen/io/netif.h>: \"If the client sends notification for rx requests then it should "
    "specify feature 'feature-rx-notify' via xenbus. Otherwise the backend will assume that it "
    "cannot safely queue packets (as it may not be kicked to send them).\"";
static const char rule_rx_copy[] =
    "request-rx-copy = 1: Linux netback refuses a frontend without it (\"frontend does not "
    "support rx-copy\"), as splitxen-netback does: the page-flipping receive path is gone";
static const char rule_split[] =
    "<xen/io/netif.h>: \"feature-split-event-channels\" ... \"Backend either doesn't support "
    "this feature or advertises it via xenstore as 0 (disabled) or 1 (enabled)\"; a frontend "
    "that does not use it \"just writes \"event-channel\" node as before\"";
static const char rule_ctrl[] =
    "<xen/io/netif.h> Control ring: \"The ability of the backend to use a control ring is "
    "advertised by setting ... feature-ctrl-ring = \"1\"\"; ctrl-ring-ref and "
    "event-channel-ctrl \"must be set before the frontend moves into the connected state\"";
static const char rule_mcast[] =
    "<xen/io/netif.h>: \"feature-multicast-control\" and \"feature-dynamic-multicast-control\" "
    "advertise the capability to filter ethernet multicast packets in the backend. If the "
    "frontend wishes to take advantage of this feature then it may set "
    "\"request-multicast-control\"";
static const char rule_late[] =
    "<xen/io/blkif.h> STATE DIAGRAMS: \"Publish transport parameters that will be in effect "
    "during this connection\", then XenbusStateInitialised: the backend reads them as soon as "
    "it sees the state";
static const char rule_changed[] =
    "<xen/io/blkif.h>: the transport parameters published before Initialised \"will be in "
    "effect during this connection\"; the backend does not read them again";

/* The queue directories of a frontend with nq queues: the top one, or queue-N. */
static void qdir(const struct sx_tt_dev *d, int64_t nq, int64_t i, char *dir, size_t len)
{
    if (nq == 1)
        snprintf(dir, len, "%s", d->fe_path);
    else
        snprintf(dir, len, "%s/queue-%" PRId64, d->fe_path, i);
}

static void blkif_keys(struct sx_tt_dev *d, struct keyread *kr, enum xenbus_state be)
{
    const char *fe = d->fe_path;
    int64_t nq = num(kr, fe, "multi-queue-num-queues", 1);
    int64_t order = num(kr, fe, "ring-page-order", 0);
    uint64_t maxq = sx_tt_offered(d, "multi-queue-max-queues", 1);
    uint64_t maxo = sx_tt_offered(d, "max-ring-page-order", 0);
    char proto[32];
    if (rd(kr, fe, "protocol", proto, sizeof(proto)) == 0 && strcmp(proto, "x86_32-abi") &&
        strcmp(proto, "x86_64-abi") && strcmp(proto, "arm-abi"))
        sx_tt_found(d, SX_TT_K_KEY_VALUE, NULL,
                    "<xen/io/blkif.h> protocol: \"Values: string (XEN_IO_PROTO_ABI_*)\" "
                    "(<xen/io/protocols.h>: x86_32-abi, x86_64-abi, arm-abi)",
                    "protocol = '%s'", proto);
    if (nq < 1 || (uint64_t)nq > maxq) {
        sx_tt_found(d, SX_TT_K_KEY_VALUE, NULL, NULL,
                    "multi-queue-num-queues = %" PRId64 " (the backend offered up to %" PRIu64 ")",
                    nq, maxq);
        return;
    }
    if (order < 0 || (uint64_t)order > maxo) {
        sx_tt_found(d, SX_TT_K_KEY_VALUE, NULL, rule_order,
                    "ring-page-order = %" PRId64 " (the backend offered max-ring-page-order %"
                    PRIu64 ")", order, maxo);
        return;
    }
    if ((nq > 1 || order > 0) && be != XenbusStateInitWait && be != XenbusStateConnected)
        sx_tt_found(d, SX_TT_K_STATE, NULL, rule_early,
                    "Initialised while the backend is %s, with ring-page-order %" PRId64
                    " and multi-queue-num-queues %" PRId64, sx_xenbus_state_name(be), order, nq);
    if (nq > 1 && (present(kr, fe, "ring-ref") || present(kr, fe, "ring-ref0") ||
                   present(kr, fe, "event-channel")))
        sx_tt_found(d, SX_TT_K_KEY_STATE, NULL, rule_mq_layout,
                    "%" PRId64 " queues, and ring-ref or event-channel at the top level too", nq);
    for (int64_t i = 0; i < nq; i++) {
        char dir[192];
        qdir(d, nq, i, dir, sizeof(dir));
        if (order == 0) {
            need(kr, dir, "ring-ref");
        } else {
            if (present(kr, dir, "ring-ref"))
                sx_tt_found(d, SX_TT_K_KEY_STATE, NULL, rule_ring_ref,
                            "%s/ring-ref written with ring-page-order %" PRId64,
                            dir + strlen(fe), order);
            for (int64_t k = 0; k < ((int64_t)1 << order); k++) {
                char key[32];
                snprintf(key, sizeof(key), "ring-ref%" PRId64, k);
                need(kr, dir, key);
            }
        }
        need(kr, dir, "event-channel");
    }
}

static void netif_keys(struct sx_tt_dev *d, struct keyread *kr)
{
    const char *fe = d->fe_path;
    int64_t nq = num(kr, fe, "multi-queue-num-queues", 1);
    uint64_t maxq = sx_tt_offered(d, "multi-queue-max-queues", 1);
    if (nq < 1 || (uint64_t)nq > maxq) {
        sx_tt_found(d, SX_TT_K_KEY_VALUE, NULL, NULL,
                    "multi-queue-num-queues = %" PRId64 " (the backend offered up to %" PRIu64 ")",
                    nq, maxq);
        return;
    }
    if (num(kr, fe, "request-rx-copy", 0) != 1)
        sx_tt_found(d, SX_TT_K_KEY_MISSING, NULL, rule_rx_copy, "request-rx-copy is not 1");
    if (num(kr, fe, "feature-rx-notify", 0) != 1)
        sx_tt_found(d, SX_TT_K_KEY_MISSING, NULL, rule_rx_notify, "feature-rx-notify is not 1");
    if (nq > 1 && (present(kr, fe, "tx-ring-ref") || present(kr, fe, "event-channel") ||
                   present(kr, fe, "event-channel-tx")))
        sx_tt_found(d, SX_TT_K_KEY_STATE, NULL, rule_mq_layout,
                    "%" PRId64 " queues, and ring refs or event channels at the top level too",
                    nq);
    bool split_offered = sx_tt_offered(d, "feature-split-event-channels", 1) != 0;
    for (int64_t i = 0; i < nq; i++) {
        char dir[192];
        qdir(d, nq, i, dir, sizeof(dir));
        need(kr, dir, "tx-ring-ref");
        need(kr, dir, "rx-ring-ref");
        if (present(kr, dir, "event-channel-tx") || present(kr, dir, "event-channel-rx")) {
            need(kr, dir, "event-channel-tx");
            need(kr, dir, "event-channel-rx");
            if (!split_offered)
                sx_tt_found(d, SX_TT_K_FEATURE, NULL, rule_split,
                            "%s: split event channels used; the backend offered "
                            "feature-split-event-channels = 0", nq > 1 ? dir + strlen(fe) + 1 : ".");
        } else {
            need(kr, dir, "event-channel");
        }
    }
    char v[32];
    if (rd(kr, fe, "ctrl-ring-ref", v, sizeof(v)) == 0) {
        need(kr, fe, "event-channel-ctrl");
        if (!sx_tt_offered(d, "feature-ctrl-ring", 1))
            sx_tt_found(d, SX_TT_K_FEATURE, NULL, rule_ctrl,
                        "ctrl-ring-ref written; the backend offered feature-ctrl-ring = 0");
    }
    if (num_keep(kr, fe, "request-multicast-control", 0, false) == 1 &&
        !sx_tt_offered(d, "feature-multicast-control", 1))
        sx_tt_found(d, SX_TT_K_FEATURE, NULL, rule_mcast,
                    "request-multicast-control = 1; the backend offered "
                    "feature-multicast-control = 0");
    if (sx_xenbus_read_str(kr->xb, XBT_NULL, fe, "xdp-headroom", v, sizeof(v)) == 0 &&
        strcmp(v, "0") && !sx_tt_offered(d, "feature-xdp-headroom", 1))
        sx_tt_found(d, SX_TT_K_FEATURE, NULL,
                    "xdp-headroom is for a backend that advertised feature-xdp-headroom "
                    "(Linux netback: read_xenbus_frontend_xdp)",
                    "xdp-headroom = %s; the backend offered feature-xdp-headroom = 0", v);
}

/* The frontend entered Initialised or Connected (state): check its keys now, remember what is
 * missing for a second look and what was read for the comparisons while it stays. */
static void keys_enter(struct sx_tt_dev *d, struct sx_xenbus *xb, enum xenbus_state state,
                       enum xenbus_state be)
{
    struct keyread kr = { .xb = xb };
    if (d->proto == SX_TT_BLKIF)
        blkif_keys(d, &kr, be);
    else
        netif_keys(d, &kr);
    free(d->missing);
    free(d->snap);
    d->missing = kr.missing.s;
    d->missing_due_ms = tt_now_ms() + TT_SETTLE_MS;
    d->missing_state = state;
    d->snap = kr.snap.s;
    d->snap_due_ms = tt_now_ms() + TT_KEYS_RECHECK_MS;
}

static void keys_forget(struct sx_tt_dev *d)
{
    free(d->missing);
    free(d->snap);
    d->missing = d->snap = NULL;
}

static void keys_compare(struct sx_tt_dev *d, struct sx_xenbus *xb, bool report);

/* Second look at the keys missing at Initialised: written late, or still missing. */
static void keys_missing_again(struct sx_tt_dev *d, struct sx_xenbus *xb)
{
    char late[300] = "", still[300] = "";
    size_t nl = 0, ns = 0;
    size_t plen = strlen(d->fe_path);
    for (char *line = d->missing; line && *line;) {
        char *nl_ = strchr(line, '\n');
        if (nl_)
            *nl_ = '\0';
        const char *rel = strncmp(line, d->fe_path, plen) ? line : line + plen + (line[plen] == '/');
        bool now = sx_xenbus_exists(xb, XBT_NULL, line, NULL) == 1;
        char *buf = now ? late : still;
        size_t *n = now ? &nl : &ns;
        if (*n < 300) {
            int k = snprintf(buf + *n, 300 - *n, "%s%s", *n ? ", " : "", rel);
            if (k > 0)
                *n += (size_t)k;
        }
        if (!nl_)
            break;
        line = nl_ + 1;
    }
    if (late[0]) {
        keys_compare(d, xb, false);   /* the late ones are no change while connected */
        sx_tt_found(d, SX_TT_K_KEY_STATE, NULL, rule_late,
                    "%s written after the frontend went %s", late,
                    sx_xenbus_state_name(d->missing_state));
    }
    if (still[0])
        sx_tt_found(d, SX_TT_K_KEY_MISSING, NULL, NULL, "%s missing in state %s", still,
                    sx_xenbus_state_name(d->missing_state));
    free(d->missing);
    d->missing = NULL;
}

/* Transport keys compared with the snapshot taken at Initialised (report): each change reported
 * once, the snapshot takes the new values. */
static void keys_compare(struct sx_tt_dev *d, struct sx_xenbus *xb, bool report)
{
    size_t plen = strlen(d->fe_path);
    struct tbuf next = { 0 };
    for (char *line = d->snap; line && *line;) {
        char *eol = strchr(line, '\n');
        char *eq = strchr(line, '=');
        if (!eol || !eq || eq > eol)
            break;
        *eq = '\0';
        *eol = '\0';
        char now[64] = "";
        if (sx_xenbus_read_str(xb, XBT_NULL, line, NULL, now, sizeof(now)) < 0)
            now[0] = '\0';
        if (report && strcmp(now, eq + 1)) {
            const char *rel = strncmp(line, d->fe_path, plen) ? line : line + plen + 1;
            sx_tt_found(d, SX_TT_K_KEY_STATE, NULL, rule_changed,
                        "%s changed from '%s' to '%s' while the frontend is %s", rel, eq + 1,
                        now[0] ? now : "<removed>",
                        sx_xenbus_state_name(d->nobs ? d->obs[d->nobs - 1] : d->settled));
        }
        tb_add(&next, "%s=%s\n", line, now);
        line = eol + 1;
    }
    free(d->snap);
    d->snap = next.s;
}

/* ------------------------------------------------------------------ after Closed */

bool tt_probes_pending(const struct sx_tt_dev *d)
{
    for (unsigned i = 0; i < TT_MAX_PROBES; i++)
        if (d->probes[i].used)
            return true;
    return false;
}

void tt_probe_collect(struct sx_tt_dev *d)
{
    if (!d->closed)
        return;
    d->closed = false;
    if (!d->t->o.check)
        return;
    for (unsigned i = 0; i < TT_MAX_RINGS && i < TT_MAX_PROBES; i++) {
        struct sx_tt_q *q = d->q[i];
        if (!q || !q->fp_valid)
            continue;
        struct tt_probe *p = &d->probes[i];
        *p = (struct tt_probe){ .used = true, .ref = q->ref0, .rsp_prod = q->fp_rsp,
                                .req_prod = q->fp_req,
                                .due_ms = d->closed_ms + TT_PROBE_DELAY_MS };
        if (q->queue >= 0)
            snprintf(p->label, sizeof(p->label), "queue %d%s%s", q->queue, q->ring ? " " : "",
                     q->ring ? q->ring : "");
        else
            snprintf(p->label, sizeof(p->label), "%s", q->ring ? q->ring : "ring");
        q->fp_valid = false;
    }
}

void tt_probe_run(struct sx_tt_dev *d, bool all, uint64_t now_ms)
{
    for (unsigned i = 0; i < TT_MAX_PROBES; i++) {
        struct tt_probe *p = &d->probes[i];
        if (!p->used || (!all && now_ms < p->due_ms))
            continue;
        p->used = false;
        void *m = NULL;
        if (!d->t->gnt || sx_gnt_map(d->t->gnt, d->fe, 1, &p->ref, false, &m, NULL) < 0)
            continue;   /* ended (or the domain is gone): as it should be */
        const struct sx_sring_hdr *h = m;
        RING_IDX rsp = SX_READ_ONCE(h->rsp_prod), req = SX_READ_ONCE(h->req_prod);
        if (rsp == p->rsp_prod && req == p->req_prod)
            sx_tt_found(d, SX_TT_K_GRANT_CLOSED, NULL, NULL,
                        "the %s ring (grant %u) is still granted to the backend domain %s "
                        "after the frontend closed; the page holds the indexes the connection "
                        "left (req_prod %u, rsp_prod %u)", p->label, (unsigned)p->ref,
                        all ? "when the backend stopped" : "a second",
                        (unsigned)req, (unsigned)rsp);
        sx_gnt_unmap(d->t->gnt, m, 1);
    }
}

int sx_tt_flap(struct sx_xenbus *xb, const char *dir, enum xenbus_state state)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        xs_transaction_t t;
        int rc = sx_xenbus_transaction_start(xb, &t);
        if (rc < 0)
            return rc;
        rc = sx_xenbus_exists(xb, t, dir, "state");
        if (rc == 1)
            rc = sx_xenbus_printf(xb, t, dir, "state", "%d", (int)state);
        else if (rc == 0)
            rc = -ENOENT;
        if (rc < 0) {
            sx_xenbus_transaction_end(xb, t, true);
            return rc;
        }
        rc = sx_xenbus_transaction_end(xb, t, false);
        if (rc != -EAGAIN)
            return rc;
    }
    return -EAGAIN;
}

/* ------------------------------------------------------------------ the frontend's states */

static bool connecting(enum xenbus_state s)
{
    return s == XenbusStateInitialised || s == XenbusStateConnected;
}

void sx_tt_fe_state(struct sx_tt_dev *d, struct sx_xenbus *xb, enum xenbus_state fe,
                    enum xenbus_state be)
{
    if (!d)
        return;
    d->be = be;
    enum xenbus_state cur;
    if (!d->seen_fe) {
        d->seen_fe = true;
        d->settled = fe;
        d->last_event_ms = tt_now_ms();
        cur = XenbusStateUnknown;
    } else {
        cur = d->nobs ? d->obs[d->nobs - 1] : d->settled;
        if (fe == cur)
            return;
        if (d->nobs < TT_MAX_OBS) {
            d->obs[d->nobs] = fe;
            d->obs_be[d->nobs] = be;
            d->nobs++;
        } else {
            /* More changes than remembered before they settle: the run is not judged, but its
             * last slot follows the latest state, which connections and the next run are
             * counted and judged from. */
            d->obs_lost = true;
            d->obs[TT_MAX_OBS - 1] = fe;
            d->obs_be[TT_MAX_OBS - 1] = be;
        }
    }
    if (connecting(fe) && !connecting(cur)) {
        d->connections++;
        if (xb && d->t->o.check)
            keys_enter(d, xb, fe, be);
    } else if (!connecting(fe)) {
        keys_forget(d);
    }
    if ((fe == XenbusStateClosed || fe == XenbusStateUnknown) && cur != fe) {
        d->closed = true;   /* the rings are probed once the backend stopped them */
        d->closed_ms = tt_now_ms();
    }
}

void tt_check_tick(struct sx_tt_dev *d, struct sx_xenbus *xb, uint64_t now)
{
    tt_probe_collect(d);
    if (d->seen_fe && (d->nobs || d->events) && now - d->last_event_ms >= TT_SETTLE_MS)
        settle(d);
    if (!xb)
        return;
    if (d->missing && now >= d->missing_due_ms) {
        if (d->missing[0])
            keys_missing_again(d, xb);
        else {
            free(d->missing);
            d->missing = NULL;
        }
    }
    enum xenbus_state cur = d->nobs ? d->obs[d->nobs - 1] : d->settled;
    if (d->snap && connecting(cur) && now >= d->snap_due_ms) {
        keys_compare(d, xb, true);
        d->snap_due_ms = now + TT_KEYS_RECHECK_MS;
    }
}
