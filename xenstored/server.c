/*
 * xenstored server: UNIX sockets, connections, the xs_wire protocol, watches.
 *
 * One epoll set holds the listening sockets (dom0's and one per introduced guest), every client
 * connection and a wake eventfd. Requests are handled in arrival order per connection; replies
 * echo req_id and tx_id. Memory per connection is bounded: replies are produced only while less
 * than SXS_REPLY_BACKLOG bytes of them wait to be read (otherwise the connection is not read),
 * and at most quota.pending_events watch events (SXS_EVENT_BYTES bytes) are queued; further
 * ones are dropped and counted. A guest holds at most SXS_GUEST_CONNS connections.
 */
#define SX_LOG_MODULE "xenstored"
#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xen/xen.h>

#include "xenstored/store.h"
#include "xenstored/xenstored.h"

#define SXS_HDR ((unsigned)sizeof(struct xsd_sockmsg))
#define SXS_IN_CAP (2 * (SXS_HDR + XENSTORE_PAYLOAD_MAX))
#define SXS_REPLY_BACKLOG (64u * 1024)
#define SXS_DOM0_WATCHES 8192u      /* hard ceilings for the quota-exempt dom0 */
#define SXS_DOM0_TRANS 1024u
#define SXS_GUEST_CONNS 32u         /* connections one guest may hold open */
#define SXS_EVENT_BYTES (512u * 1024) /* queued watch event bytes per connection */

/* Message types newer than Debian's xs_wire.h (Xen 4.17): Xen 4.19's <xen/io/xs_wire.h> and
 * docs/misc/xenstore.txt number them so. */
#define SXS_GET_FEATURE 23u
#define SXS_SET_FEATURE 24u
#define SXS_GET_QUOTA 25u
#define SXS_SET_QUOTA 26u
#define SXS_TYPE_COUNT 27u
_Static_assert(XS_DIRECTORY_PART == 22, "xs_wire.h numbering");
/* XENSTORE_SERVER_FEATURE_* this daemon offers: none (they concern the shared ring page and
 * WATCH's depth parameter; connections here are sockets and WATCH takes two arguments). */
#define SXS_FEATURES 0u

enum ep_kind { EP_LISTEN, EP_CONN, EP_WAKE };

struct ep {
    enum ep_kind kind;
};

struct listener {
    struct ep ep;
    struct listener *next;
    int fd;
    unsigned domid;
    char path[];
};

struct outmsg {
    struct outmsg *next;
    unsigned len, off;
    bool event;
    char buf[];
};

struct watch {
    struct watch *next;
    char *node;
    char *token;
    size_t prefix_len;
};

struct txent {
    struct txent *next;
    uint32_t id;
    struct sxs_tx *tx;
};

struct conn {
    struct ep ep;
    struct conn *next;
    int fd;
    unsigned domid;
    uint32_t evmask;
    bool dead;
    size_t in_len;
    struct outmsg *oh, *ot;
    unsigned n_events;
    size_t event_bytes;
    size_t reply_bytes;
    struct watch *watches;
    unsigned nwatches;
    struct txent *txs;
    unsigned ntx;
    uint32_t next_txid;
    uint64_t dropped;
    char inbuf[SXS_IN_CAP];
};

struct domain {
    struct domain *next;
    unsigned domid;
    unsigned target;
    struct listener *l;
};

struct sxs {
    pthread_mutex_t lock;
    int epfd, wakefd;
    struct ep wake_ep;
    char *dir;
    struct listener *dom0;
    struct domain *domains;
    struct conn *conns;
    struct conn *dead_conns;
    struct listener *dead_listeners;
    struct sxs_store *st;
    struct sxs_quota q;
    struct sxs_stats stats;
    pthread_t thr;
    bool thr_running;
    atomic_bool stop;
    char req[XENSTORE_PAYLOAD_MAX + 1];    /* current request payload, NUL-terminated */
    char rep[XENSTORE_PAYLOAD_MAX + 64];   /* reply under construction */
};

void sxs_quota_default(struct sxs_quota *q)
{
    q->nodes_per_domain = 1000;
    q->max_node_size = 2048;
    q->perms_per_node = 5;
    q->watches_per_conn = 128;
    q->trans_per_conn = 10;
    q->trans_nodes = 1024;
    q->pending_events = 1024;
    q->path_max = XENSTORE_REL_PATH_MAX;
}

/* ---- domains -------------------------------------------------------------------------------- */

static struct domain *domain_find(struct sxs *s, unsigned domid)
{
    for (struct domain *d = s->domains; d; d = d->next)
        if (d->domid == domid)
            return d;
    return NULL;
}

static struct sxs_who conn_who(struct sxs *s, const struct conn *c)
{
    struct sxs_who w = { .domid = c->domid, .target = SXS_NO_TARGET, .priv = c->domid == 0 };
    struct domain *d = c->domid ? domain_find(s, c->domid) : NULL;
    if (d)
        w.target = d->target;
    return w;
}

/* ---- output --------------------------------------------------------------------------------- */

static int enqueue(struct sxs *s, struct conn *c, const struct xsd_sockmsg *hdr,
                   const void *p1, unsigned l1, const void *p2, unsigned l2, bool event)
{
    unsigned len = SXS_HDR + l1 + l2;
    struct outmsg *m = malloc(sizeof(*m) + len);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->len = len;
    m->off = 0;
    m->event = event;
    memcpy(m->buf, hdr, SXS_HDR);
    if (l1)
        memcpy(m->buf + SXS_HDR, p1, l1);
    if (l2)
        memcpy(m->buf + SXS_HDR + l1, p2, l2);
    if (c->ot)
        c->ot->next = m;
    else
        c->oh = m;
    c->ot = m;
    if (event) {
        c->n_events++;
        c->event_bytes += len;
        s->stats.events_queued++;
    } else {
        c->reply_bytes += len;
    }
    return 0;
}

static void reply(struct sxs *s, struct conn *c, const struct xsd_sockmsg *req,
                  uint32_t type, const void *data, unsigned len);

static void reply_err(struct sxs *s, struct conn *c, const struct xsd_sockmsg *req, int err)
{
    size_t i;
    for (i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
        if (xsd_errors[i].errnum == err)
            break;
    if (i == sizeof(xsd_errors) / sizeof(xsd_errors[0]))
        i = 0; /* EINVAL, as C xenstored does for untranslatable errors */
    s->stats.errors++;
    reply(s, c, req, XS_ERROR, xsd_errors[i].errstring,
          (unsigned)strlen(xsd_errors[i].errstring) + 1);
}

static void reply(struct sxs *s, struct conn *c, const struct xsd_sockmsg *req,
                  uint32_t type, const void *data, unsigned len)
{
    if (len > XENSTORE_PAYLOAD_MAX) {
        reply_err(s, c, req, E2BIG);
        return;
    }
    struct xsd_sockmsg h = { .type = type, .req_id = req->req_id, .tx_id = req->tx_id,
                             .len = len };
    if (enqueue(s, c, &h, data, len, NULL, 0, false))
        sx_log_ratelimited(SX_LOG_WARN, "out of memory queueing a reply for domain %u",
                           c->domid);
}

static void reply_ok(struct sxs *s, struct conn *c, const struct xsd_sockmsg *req)
{
    reply(s, c, req, req->type, "OK", 3);
}

static void queue_event(struct sxs *s, struct conn *c, const char *path, const char *token)
{
    size_t pl = strlen(path) + 1, tl = strlen(token) + 1;
    if (pl + tl > XENSTORE_PAYLOAD_MAX)
        return;
    if (c->n_events >= s->q.pending_events ||
        c->event_bytes + SXS_HDR + pl + tl > SXS_EVENT_BYTES) {
        c->dropped++;
        s->stats.events_dropped++;
        sx_log_ratelimited(SX_LOG_WARN, "domain %u is not reading its watch events: dropped %"
                           PRIu64 " so far", c->domid, c->dropped);
        return;
    }
    struct xsd_sockmsg h = { .type = XS_WATCH_EVENT, .len = (uint32_t)(pl + tl) };
    if (enqueue(s, c, &h, path, (unsigned)pl, token, (unsigned)tl, true)) {
        c->dropped++;
        s->stats.events_dropped++;
    }
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_set_mask(struct sxs *s, struct conn *c)
{
    if (c->dead)
        return;
    uint32_t want = (c->reply_bytes < SXS_REPLY_BACKLOG ? EPOLLIN : 0) |
                    (c->oh ? EPOLLOUT : 0);
    if (want == c->evmask)
        return;
    struct epoll_event ev = { .events = want, .data.ptr = &c->ep };
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->evmask = want;
}

static void watch_free(struct watch *w)
{
    free(w->node);
    free(w->token);
    free(w);
}

static void conn_drop_watches(struct sxs *s, struct conn *c)
{
    while (c->watches) {
        struct watch *w = c->watches;
        c->watches = w->next;
        watch_free(w);
        s->stats.watches--;
    }
    c->nwatches = 0;
}

static void conn_drop_transactions(struct sxs *s, struct conn *c)
{
    struct sxs_who who = conn_who(s, c);
    while (c->txs) {
        struct txent *t = c->txs;
        c->txs = t->next;
        sxs_store_tx_end(s->st, &who, t->tx, false);
        free(t);
        s->stats.transactions--;
    }
    c->ntx = 0;
}

/* Close now, free later (an epoll batch may still name it). */
static void conn_close(struct sxs *s, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    conn_drop_transactions(s, c);
    conn_drop_watches(s, c);
    while (c->oh) {
        struct outmsg *m = c->oh;
        c->oh = m->next;
        free(m);
    }
    c->ot = NULL;
    for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->next = s->dead_conns;
    s->dead_conns = c;
    s->stats.connections--;
}

static void conn_flush(struct sxs *s, struct conn *c)
{
    while (!c->dead && c->oh) {
        struct outmsg *m = c->oh;
        ssize_t w = send(c->fd, m->buf + m->off, m->len - m->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(s, c);
            return;
        }
        m->off += (unsigned)w;
        if (m->off < m->len)
            return;
        c->oh = m->next;
        if (!c->oh)
            c->ot = NULL;
        if (m->event) {
            c->n_events--;
            c->event_bytes -= m->len;
        }
        else
            c->reply_bytes -= m->len;
        free(m);
    }
}

static void conn_accept(struct sxs *s, struct listener *l)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                sx_log_ratelimited(SX_LOG_WARN, "accept on %s: %s", l->path, strerror(errno));
            return;
        }
        if (l->domid) {
            unsigned n = 0;
            for (struct conn *o = s->conns; o; o = o->next)
                n += o->domid == l->domid;
            if (n >= SXS_GUEST_CONNS) {
                sx_log_ratelimited(SX_LOG_WARN, "domain %u has %u connections: refusing more",
                                   l->domid, n);
                close(fd);
                continue;
            }
        }
        struct conn *c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        memset(c, 0, offsetof(struct conn, inbuf));
        c->ep.kind = EP_CONN;
        c->fd = fd;
        c->domid = l->domid;
        c->next_txid = 1;
        c->evmask = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->ep };
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            close(fd);
            free(c);
            return;
        }
        c->next = s->conns;
        s->conns = c;
        s->stats.connections++;
    }
}

/* ---- request handlers ----------------------------------------------------------------------- */

struct req {
    const struct xsd_sockmsg *hdr;
    const char *p;     /* payload, NUL-terminated one past len */
    unsigned len;
    struct sxs_who who;
    struct sxs_tx *tx;
    struct txent *te;
};

static unsigned count_strings(const char *p, unsigned len)
{
    unsigned n = 0;
    for (unsigned i = 0; i < len; i++)
        n += p[i] == '\0';
    return n;
}

/* The payload is exactly one NUL-terminated string. */
static const char *onearg(const struct req *r)
{
    if (!r->len || memchr(r->p, 0, r->len) != r->p + r->len - 1)
        return NULL;
    return r->p;
}

static int parse_domid(const char *s, unsigned *out)
{
    unsigned long v = 0;
    if (!s || !*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 5)
            return -EINVAL;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 0xffff)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static int canon(struct sxs *s, const struct req *r, const char *in, bool special, char **out,
                 size_t *prefix)
{
    return sxs_canon(s->st, &r->who, in, special, out, prefix);
}

static int do_read(struct sxs *s, struct conn *c, struct req *r)
{
    char *path;
    int rc = canon(s, r, onearg(r), false, &path, NULL);
    if (rc)
        return rc;
    const char *data;
    unsigned len;
    rc = sxs_store_read(s->st, &r->who, r->tx, path, &data, &len);
    free(path);
    if (!rc)
        reply(s, c, r->hdr, XS_READ, data, len);
    return rc;
}

static int do_directory(struct sxs *s, struct conn *c, struct req *r)
{
    char *path;
    int rc = canon(s, r, onearg(r), false, &path, NULL);
    if (rc)
        return rc;
    const char *ch;
    unsigned len;
    rc = sxs_store_directory(s->st, &r->who, r->tx, path, &ch, &len, NULL);
    free(path);
    if (!rc)
        reply(s, c, r->hdr, XS_DIRECTORY, ch, len);
    return rc;
}

/* Reply: "<generation>\0" then as many whole child names from offset as fit, and an extra
 * "\0" once the list is complete (libxenstore's xs_directory_part stops on that). */
static int do_directory_part(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) != 2)
        return -EINVAL;
    const char *offs = r->p + strlen(r->p) + 1;
    unsigned long off = 0;
    if (!*offs)
        return -EINVAL;
    for (const char *q = offs; *q; q++) {
        if (*q < '0' || *q > '9' || off > XENSTORE_PAYLOAD_MAX * 16ul)
            return -EINVAL;
        off = off * 10 + (unsigned)(*q - '0');
    }
    char *path;
    int rc = canon(s, r, r->p, false, &path, NULL);
    if (rc)
        return rc;
    const char *ch;
    unsigned clen;
    uint64_t gen;
    rc = sxs_store_directory(s->st, &r->who, r->tx, path, &ch, &clen, &gen);
    free(path);
    if (rc)
        return rc;
    int gl = snprintf(s->rep, sizeof(s->rep), "%" PRIu64, gen) + 1;
    unsigned len = 0, maxlen = XENSTORE_PAYLOAD_MAX - (unsigned)gl - 1;
    if (off < clen) {
        const char *child = ch + off;
        while (len + strlen(child) < maxlen) {
            len += (unsigned)strlen(child) + 1;
            child += strlen(child) + 1;
            if (off + len >= clen)
                break;
        }
        memcpy(s->rep + gl, ch + off, len);
    }
    if (off + len >= clen)
        s->rep[gl + len++] = '\0';
    reply(s, c, r->hdr, XS_DIRECTORY_PART, s->rep, (unsigned)gl + len);
    return 0;
}

static int do_get_perms(struct sxs *s, struct conn *c, struct req *r)
{
    char *path;
    int rc = canon(s, r, onearg(r), true, &path, NULL);
    if (rc)
        return rc;
    const struct xs_permissions *p;
    unsigned n;
    rc = sxs_store_get_perms(s->st, &r->who, r->tx, path, &p, &n);
    free(path);
    if (rc)
        return rc;
    unsigned len = 0;
    for (unsigned i = 0; i < n; i++) {
        int l = sxs_perm_format(&p[i], s->rep + len, sizeof(s->rep) - len);
        if (l < 0)
            return -E2BIG;
        len += (unsigned)l + 1;
    }
    reply(s, c, r->hdr, XS_GET_PERMS, s->rep, len);
    return 0;
}

/* A permission list naming domains: as C xenstored, an owner that does not exist is ENOENT
 * (a domain exists once introduced; dom0 always), and other entries naming one that does not
 * exist are dropped (C keeps them flagged as ignored and never shows them), so a later domain
 * with that domid gets no access from them. Returns the entries kept, or -ENOENT. */
static int perms_existing(struct sxs *s, struct xs_permissions *p, unsigned n)
{
    if (p[0].id && !domain_find(s, p[0].id))
        return -ENOENT;
    unsigned k = 1;
    for (unsigned i = 1; i < n; i++)
        if (!p[i].id || domain_find(s, p[i].id))
            p[k++] = p[i];
    return (int)k;
}

static int do_set_perms(struct sxs *s, struct conn *c, struct req *r)
{
    unsigned n = count_strings(r->p, r->len);
    if (n < 2)
        return -EINVAL;
    n--;
    struct xs_permissions *p = malloc(n * sizeof(*p));
    if (!p)
        return -ENOMEM;
    const char *q = r->p + strlen(r->p) + 1;
    int rc = 0;
    for (unsigned i = 0; i < n && !rc; i++) {
        rc = sxs_perm_parse(q, &p[i]);
        q += strlen(q) + 1;
    }
    char *path = NULL;
    if (!rc && (rc = perms_existing(s, p, n)) > 0) {
        n = (unsigned)rc;
        rc = canon(s, r, r->p, true, &path, NULL);
    }
    if (!rc)
        rc = sxs_store_set_perms(s->st, &r->who, r->tx, path, p, n);
    free(path);
    free(p);
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

static int do_write(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) < 1)
        return -EINVAL;
    size_t pl = strlen(r->p) + 1;
    char *path;
    int rc = canon(s, r, r->p, false, &path, NULL);
    if (rc)
        return rc;
    rc = sxs_store_write(s->st, &r->who, r->tx, path, r->p + pl, r->len - (unsigned)pl);
    free(path);
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

static int do_mkdir_rm(struct sxs *s, struct conn *c, struct req *r)
{
    char *path;
    int rc = canon(s, r, onearg(r), false, &path, NULL);
    if (rc)
        return rc;
    if (r->hdr->type == XS_MKDIR)
        rc = sxs_store_mkdir(s->st, &r->who, r->tx, path);
    else
        rc = sxs_store_rm(s->st, &r->who, r->tx, path);
    free(path);
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

/* Watches (or transactions) held by all of a guest's connections: a guest's quota is per
 * domain, as in C xenstored, so opening more connections does not multiply it. */
static unsigned domain_sum(struct sxs *s, unsigned domid, bool watches)
{
    unsigned n = 0;
    for (struct conn *o = s->conns; o; o = o->next)
        if (o->domid == domid)
            n += watches ? o->nwatches : o->ntx;
    return n;
}

static int do_watch(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) != 2)
        return -EINVAL;
    const char *token = r->p + strlen(r->p) + 1;
    char *path;
    size_t prefix;
    int rc = canon(s, r, r->p, true, &path, &prefix);
    if (rc)
        return rc;
    for (struct watch *w = c->watches; w; w = w->next) {
        if (!strcmp(w->node, path) && !strcmp(w->token, token)) {
            free(path);
            return -EEXIST;
        }
    }
    if (r->who.priv ? c->nwatches >= SXS_DOM0_WATCHES
                    : domain_sum(s, c->domid, true) >=
                          sxs_store_quota(s->st, c->domid)->watches_per_conn) {
        free(path);
        return -E2BIG;
    }
    struct watch *w = calloc(1, sizeof(*w));
    char *tok = strdup(token);
    if (!w || !tok) {
        free(w);
        free(tok);
        free(path);
        return -ENOMEM;
    }
    w->node = path;
    w->token = tok;
    w->prefix_len = prefix;
    /* Append: events for one change go out in registration order. */
    struct watch **pp = &c->watches;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    c->nwatches++;
    s->stats.watches++;
    reply_ok(s, c, r->hdr);
    /* Fire once at registration (clients rely on it to read initial state). */
    queue_event(s, c, w->node + w->prefix_len, w->token);
    return 0;
}

static int do_unwatch(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) != 2)
        return -EINVAL;
    const char *token = r->p + strlen(r->p) + 1;
    char *path;
    int rc = canon(s, r, r->p, true, &path, NULL);
    if (rc)
        return rc;
    rc = -ENOENT;
    for (struct watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
        struct watch *w = *pp;
        if (!strcmp(w->node, path) && !strcmp(w->token, token)) {
            *pp = w->next;
            watch_free(w);
            c->nwatches--;
            s->stats.watches--;
            rc = 0;
            break;
        }
    }
    free(path);
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

static int do_transaction_start(struct sxs *s, struct conn *c, struct req *r)
{
    if (r->tx)
        return -EBUSY; /* no nesting */
    if (r->who.priv ? c->ntx >= SXS_DOM0_TRANS
                    : domain_sum(s, c->domid, false) >=
                          sxs_store_quota(s->st, c->domid)->trans_per_conn)
        return -ENOSPC;
    struct txent *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc = sxs_store_tx_start(s->st, &r->who, &t->tx);
    if (rc) {
        free(t);
        return rc;
    }
    /* Pick an unused non-zero id. */
    for (;;) {
        uint32_t id = c->next_txid++;
        if (!id)
            continue;
        struct txent *e = c->txs;
        while (e && e->id != id)
            e = e->next;
        if (!e) {
            t->id = id;
            break;
        }
    }
    t->next = c->txs;
    c->txs = t;
    c->ntx++;
    s->stats.transactions++;
    int l = snprintf(s->rep, sizeof(s->rep), "%u", t->id);
    reply(s, c, r->hdr, XS_TRANSACTION_START, s->rep, (unsigned)l + 1);
    return 0;
}

static int do_transaction_end(struct sxs *s, struct conn *c, struct req *r)
{
    const char *arg = onearg(r);
    if (!arg || (strcmp(arg, "T") && strcmp(arg, "F")))
        return -EINVAL;
    if (!r->te)
        return -ENOENT;
    for (struct txent **pp = &c->txs; *pp; pp = &(*pp)->next) {
        if (*pp == r->te) {
            *pp = r->te->next;
            break;
        }
    }
    c->ntx--;
    s->stats.transactions--;
    int rc = sxs_store_tx_end(s->st, &r->who, r->te->tx, arg[0] == 'T');
    free(r->te);
    r->te = NULL;
    r->tx = NULL;
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

static int do_get_domain_path(struct sxs *s, struct conn *c, struct req *r)
{
    unsigned domid;
    int rc = parse_domid(onearg(r), &domid);
    if (rc)
        return rc;
    int l = snprintf(s->rep, sizeof(s->rep), "/local/domain/%u", domid);
    reply(s, c, r->hdr, XS_GET_DOMAIN_PATH, s->rep, (unsigned)l + 1);
    return 0;
}

static int domain_add_locked(struct sxs *s, unsigned domid);
static int domain_remove_locked(struct sxs *s, unsigned domid);

static int do_introduce(struct sxs *s, struct conn *c, struct req *r)
{
    /* domid, mfn, event channel: the ring page and port mean nothing on sim. */
    if (count_strings(r->p, r->len) < 3)
        return -EINVAL;
    unsigned domid;
    int rc = parse_domid(r->p, &domid);
    if (rc || domid == 0 || domid >= DOMID_FIRST_RESERVED)
        return -EINVAL;
    rc = domain_add_locked(s, domid);
    if (rc && rc != -EEXIST)
        return rc;
    reply_ok(s, c, r->hdr);
    return 0;
}

static int do_release(struct sxs *s, struct conn *c, struct req *r)
{
    unsigned domid;
    int rc = parse_domid(onearg(r), &domid);
    if (rc || domid == 0)
        return -EINVAL;
    rc = domain_remove_locked(s, domid);
    if (!rc && !c->dead)
        reply_ok(s, c, r->hdr);
    return rc;
}

static int do_is_domain_introduced(struct sxs *s, struct conn *c, struct req *r)
{
    unsigned domid;
    int rc = parse_domid(onearg(r), &domid);
    if (rc)
        return rc;
    bool in = domid == 0 || domain_find(s, domid);
    reply(s, c, r->hdr, XS_IS_DOMAIN_INTRODUCED, in ? "T" : "F", 2);
    return 0;
}

static int do_resume(struct sxs *s, struct conn *c, struct req *r)
{
    unsigned domid;
    int rc = parse_domid(onearg(r), &domid);
    if (rc)
        return rc;
    if (domid && !domain_find(s, domid))
        return -ENOENT;
    reply_ok(s, c, r->hdr);
    return 0;
}

static int do_set_target(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) < 2)
        return -EINVAL;
    unsigned domid, target;
    if (parse_domid(r->p, &domid) || parse_domid(r->p + strlen(r->p) + 1, &target))
        return -EINVAL;
    struct domain *d = domain_find(s, domid);
    if (!d || (target && !domain_find(s, target)))
        return -ENOENT;
    d->target = target;
    reply_ok(s, c, r->hdr);
    return 0;
}

static int do_reset_watches(struct sxs *s, struct conn *c, struct req *r)
{
    conn_drop_watches(s, c);
    conn_drop_transactions(s, c);
    r->tx = NULL;
    r->te = NULL;
    reply_ok(s, c, r->hdr);
    return 0;
}

static int do_control(struct sxs *s, struct conn *c, struct req *r)
{
    if (count_strings(r->p, r->len) < 1)
        return -EINVAL;
    if (!strcmp(r->p, "check")) {
        int rc = sxs_store_check(s->st);
        if (rc)
            return rc == -ENOMEM ? rc : -EIO;
        reply_ok(s, c, r->hdr);
        return 0;
    }
    if (!strcmp(r->p, "help")) {
        static const char help[] = "check\nhelp\n";
        reply(s, c, r->hdr, XS_CONTROL, help, sizeof(help));
        return 0;
    }
    return -EINVAL;
}

/* The strings of a payload, up to max, in v; their count (more than max: max + 1). */
static unsigned get_strings(const struct req *r, const char **v, unsigned max)
{
    unsigned n = 0;
    for (unsigned off = 0; off < r->len;) {
        const char *p = r->p + off;
        size_t l = strnlen(p, r->len - off);
        if (off + l >= r->len)
            break;   /* not NUL-terminated: not a string */
        if (n < max)
            v[n] = p;
        n++;
        off += (unsigned)l + 1;
    }
    return n > max ? max + 1 : n;
}

static int do_get_feature(struct sxs *s, struct conn *c, struct req *r)
{
    const char *v[1];
    unsigned n = get_strings(r, v, 1);
    if (n > 1)
        return -EINVAL;
    if (n == 1) {
        unsigned domid;
        if (!r->who.priv)
            return -EACCES;
        if (parse_domid(v[0], &domid))
            return -EINVAL;
        if (domid && !domain_find(s, domid))
            return -ENOENT;
    }
    int l = snprintf(s->rep, sizeof(s->rep), "%u", SXS_FEATURES);
    reply(s, c, r->hdr, SXS_GET_FEATURE, s->rep, (unsigned)l + 1);
    return 0;
}

/* A domain's features may be set only before it is introduced; here a domain exists only once
 * introduced, so this is EBUSY for every domain there is. */
static int do_set_feature(struct sxs *s, struct conn *c, struct req *r)
{
    const char *v[2];
    unsigned domid;
    (void)c;
    if (get_strings(r, v, 2) != 2 || parse_domid(v[0], &domid))
        return -EINVAL;
    if (domid && !domain_find(s, domid))
        return -ENOENT;
    return -EBUSY;
}

/* The quotas XS_GET_QUOTA and XS_SET_QUOTA know, with C xenstored's names. */
static const struct {
    const char *name;
    size_t off;
} quota_names[] = {
    { "nodes", offsetof(struct sxs_quota, nodes_per_domain) },
    { "watches", offsetof(struct sxs_quota, watches_per_conn) },
    { "transactions", offsetof(struct sxs_quota, trans_per_conn) },
    { "transaction-nodes", offsetof(struct sxs_quota, trans_nodes) },
    { "node-permissions", offsetof(struct sxs_quota, perms_per_node) },
    { "path-max", offsetof(struct sxs_quota, path_max) },
    { "node-size", offsetof(struct sxs_quota, max_node_size) },
};

static unsigned *quota_field(struct sxs_quota *q, const char *name)
{
    for (size_t i = 0; i < sizeof(quota_names) / sizeof(quota_names[0]); i++)
        if (!strcmp(name, quota_names[i].name))
            return (unsigned *)((char *)q + quota_names[i].off);
    return NULL;
}

/* The quotas of domid (0: the global ones) into *q. */
static int quota_of(struct sxs *s, const char *dom_s, struct sxs_quota *q)
{
    unsigned domid = 0;
    if (dom_s) {
        if (parse_domid(dom_s, &domid))
            return -EINVAL;
        if (domid && !domain_find(s, domid))
            return -ENOENT;
    }
    *q = domid ? *sxs_store_quota(s->st, domid) : s->q;
    return (int)domid;
}

static int do_get_quota(struct sxs *s, struct conn *c, struct req *r)
{
    const char *v[2];
    unsigned n = get_strings(r, v, 2);
    if (n > 2)
        return -EINVAL;
    int l = 0;
    if (n == 0) {
        for (size_t i = 0; i < sizeof(quota_names) / sizeof(quota_names[0]); i++)
            l += snprintf(s->rep + l, sizeof(s->rep) - (size_t)l, "%s%s", i ? " " : "",
                          quota_names[i].name);
    } else {
        struct sxs_quota q;
        int rc = quota_of(s, n == 2 ? v[0] : NULL, &q);
        if (rc < 0)
            return rc;
        unsigned *f = quota_field(&q, v[n - 1]);
        if (!f)
            return -EINVAL;
        l = snprintf(s->rep, sizeof(s->rep), "%u", *f);
    }
    reply(s, c, r->hdr, SXS_GET_QUOTA, s->rep, (unsigned)l + 1);
    return 0;
}

static int do_set_quota(struct sxs *s, struct conn *c, struct req *r)
{
    const char *v[3];
    unsigned n = get_strings(r, v, 3);
    if (n < 2 || n > 3)
        return -EINVAL;
    struct sxs_quota q;
    int domid = quota_of(s, n == 3 ? v[0] : NULL, &q);
    if (domid < 0)
        return domid;
    unsigned *f = quota_field(&q, v[n - 2]);
    unsigned long val;
    char *end;
    errno = 0;
    val = strtoul(v[n - 1], &end, 10);
    /* 0 would mean "no check" (xenstore.txt); C xenstored refuses it too. */
    if (!f || errno || *end || end == v[n - 1] || !val || val > UINT32_MAX ||
        (f == &q.path_max && val > XENSTORE_ABS_PATH_MAX))
        return -EINVAL;
    *f = (unsigned)val;
    int rc = 0;
    if (domid) {
        rc = sxs_store_domain_quota_set(s->st, (unsigned)domid, &q);
    } else {
        s->q = q;
        sxs_store_set_quota(s->st, &q);
    }
    if (!rc)
        reply_ok(s, c, r->hdr);
    return rc;
}

#define F_PRIV 1u   /* privileged connections only */
#define F_NOTID 2u  /* tx_id is ignored */

static const struct {
    int (*fn)(struct sxs *, struct conn *, struct req *);
    unsigned flags;
} handlers[SXS_TYPE_COUNT] = {
    [XS_CONTROL] = { do_control, F_PRIV },
    [XS_DIRECTORY] = { do_directory, 0 },
    [XS_READ] = { do_read, 0 },
    [XS_GET_PERMS] = { do_get_perms, 0 },
    [XS_WATCH] = { do_watch, F_NOTID },
    [XS_UNWATCH] = { do_unwatch, F_NOTID },
    [XS_TRANSACTION_START] = { do_transaction_start, 0 },
    [XS_TRANSACTION_END] = { do_transaction_end, 0 },
    [XS_INTRODUCE] = { do_introduce, F_PRIV },
    [XS_RELEASE] = { do_release, F_PRIV },
    [XS_GET_DOMAIN_PATH] = { do_get_domain_path, 0 },
    [XS_WRITE] = { do_write, 0 },
    [XS_MKDIR] = { do_mkdir_rm, 0 },
    [XS_RM] = { do_mkdir_rm, 0 },
    [XS_SET_PERMS] = { do_set_perms, 0 },
    [XS_IS_DOMAIN_INTRODUCED] = { do_is_domain_introduced, F_PRIV },
    [XS_RESUME] = { do_resume, F_PRIV },
    [XS_SET_TARGET] = { do_set_target, F_PRIV },
    [XS_RESET_WATCHES] = { do_reset_watches, 0 },
    [XS_DIRECTORY_PART] = { do_directory_part, 0 },
    [SXS_GET_FEATURE] = { do_get_feature, F_NOTID },
    [SXS_SET_FEATURE] = { do_set_feature, F_PRIV | F_NOTID },
    [SXS_GET_QUOTA] = { do_get_quota, F_PRIV | F_NOTID },
    [SXS_SET_QUOTA] = { do_set_quota, F_PRIV | F_NOTID },
};

static void handle_msg(struct sxs *s, struct conn *c, const struct xsd_sockmsg *hdr)
{
    struct req r = { .hdr = hdr, .p = s->req, .len = hdr->len, .who = conn_who(s, c) };
    s->stats.requests++;
    if (hdr->type >= SXS_TYPE_COUNT || !handlers[hdr->type].fn) {
        reply_err(s, c, hdr, ENOSYS);
        return;
    }
    if ((handlers[hdr->type].flags & F_PRIV) && !r.who.priv) {
        reply_err(s, c, hdr, EACCES);
        return;
    }
    if (!(handlers[hdr->type].flags & F_NOTID) && hdr->tx_id) {
        for (r.te = c->txs; r.te && r.te->id != hdr->tx_id; r.te = r.te->next)
            ;
        if (!r.te) {
            reply_err(s, c, hdr, ENOENT);
            return;
        }
        r.tx = r.te->tx;
    }
    int rc = handlers[hdr->type].fn(s, c, &r);
    if (rc && !c->dead)
        reply_err(s, c, hdr, -rc);
}

/* Handle the complete messages in the input buffer while replies may be queued. */
static void conn_parse(struct sxs *s, struct conn *c)
{
    size_t off = 0;
    while (!c->dead && c->in_len - off >= SXS_HDR && c->reply_bytes < SXS_REPLY_BACKLOG) {
        struct xsd_sockmsg hdr;
        memcpy(&hdr, c->inbuf + off, SXS_HDR);
        if (hdr.len > XENSTORE_PAYLOAD_MAX) {
            sx_log_ratelimited(SX_LOG_WARN, "domain %u sent a %u-byte payload: closing",
                               c->domid, hdr.len);
            s->stats.bad_clients++;
            conn_close(s, c);
            return;
        }
        if (c->in_len - off < SXS_HDR + hdr.len)
            break;
        memcpy(s->req, c->inbuf + off + SXS_HDR, hdr.len);
        s->req[hdr.len] = '\0';
        off += SXS_HDR + hdr.len;
        handle_msg(s, c, &hdr);
    }
    if (!c->dead && off) {
        memmove(c->inbuf, c->inbuf + off, c->in_len - off);
        c->in_len -= off;
    }
}

static void conn_input(struct sxs *s, struct conn *c)
{
    for (int round = 0; round < 16 && !c->dead; round++) {
        conn_parse(s, c);
        if (c->dead || c->reply_bytes >= SXS_REPLY_BACKLOG || c->in_len == SXS_IN_CAP)
            break;
        ssize_t n = recv(c->fd, c->inbuf + c->in_len, SXS_IN_CAP - c->in_len, MSG_DONTWAIT);
        if (n == 0) {
            conn_close(s, c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(s, c);
            break;
        }
        c->in_len += (size_t)n;
    }
}

/* ---- watches -------------------------------------------------------------------------------- */

static bool watch_permitted(const struct sxs_who *who, const struct sxs_change *ch)
{
    for (int i = 0; i < 3; i++)
        if (ch->perms[i] && (sxs_perm_for(who, ch->perms[i], ch->nperms[i]) & XS_PERM_READ))
            return true;
    return false;
}

static void on_fire(void *arg, const struct sxs_change *ch)
{
    struct sxs *s = arg;
    for (struct conn *c = s->conns; c; c = c->next) {
        int permitted = -1;
        for (struct watch *w = c->watches; w; w = w->next) {
            bool match = ch->exact ? !strcmp(ch->path, w->node)
                                   : sxs_path_is_child(ch->path, w->node);
            if (!match)
                continue;
            if (permitted < 0) {
                struct sxs_who who = conn_who(s, c);
                permitted = watch_permitted(&who, ch);
            }
            if (!permitted)
                break;
            queue_event(s, c, ch->path + w->prefix_len, w->token);
        }
    }
}

/* ---- listeners and domains ------------------------------------------------------------------ */

static void listener_close(struct sxs *s, struct listener *l)
{
    if (!l)
        return;
    if (l->fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        close(l->fd);
        l->fd = -1;
        unlink(l->path);
    }
    l->next = s->dead_listeners;
    s->dead_listeners = l;
}

static int listener_open(struct sxs *s, const char *path, unsigned domid, struct listener **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct listener *l = calloc(1, sizeof(*l) + strlen(path) + 1);
    if (!l)
        return -ENOMEM;
    l->ep.kind = EP_LISTEN;
    l->domid = domid;
    strcpy(l->path, path);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (l->fd < 0) {
        rc = -errno;
        goto err_free;
    }
    unlink(path); /* a stale socket from an earlier run */
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->ep };
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(l->fd, 64) ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, l->fd, &ev)) {
        rc = -errno;
        goto err_close;
    }
    *out = l;
    return 0;
err_close:
    close(l->fd);
    unlink(path);
err_free:
    free(l);
    return rc;
}

static int domain_add_locked(struct sxs *s, unsigned domid)
{
    if (domid == 0 || domid >= DOMID_FIRST_RESERVED)
        return -EINVAL;
    if (domain_find(s, domid))
        return -EEXIST;
    struct domain *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->domid = domid;
    d->target = SXS_NO_TARGET;
    char path[4096];
    int rc = sxs_socket_path(s, domid, path, sizeof(path));
    if (!rc)
        rc = listener_open(s, path, domid, &d->l);
    if (rc) {
        free(d);
        return rc;
    }
    if ((rc = sxs_store_domain_quota_set(s->st, domid, &s->q))) {
        listener_close(s, d->l);
        free(d);
        return rc;
    }
    d->next = s->domains;
    s->domains = d;
    sxs_store_fire_special(s->st, "@introduceDomain");
    return 0;
}

static int domain_remove_locked(struct sxs *s, unsigned domid)
{
    struct domain **pp = &s->domains;
    while (*pp && (*pp)->domid != domid)
        pp = &(*pp)->next;
    struct domain *d = *pp;
    if (!d)
        return -ENOENT;
    *pp = d->next;
    listener_close(s, d->l);
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->domid == domid)
            conn_close(s, c);
    }
    for (struct domain *o = s->domains; o; o = o->next)
        if (o->target == domid)
            o->target = SXS_NO_TARGET;
    free(d);
    sxs_store_domain_quota_drop(s->st, domid);
    if (sxs_store_domain_gone(s->st, domid) < 0)
        sx_warn("out of memory reassigning domain %u's nodes", domid);
    sxs_store_fire_special(s->st, "@releaseDomain");
    return 0;
}

/* Make the loop run (and flush queued events) after a change made outside it. */
static void wake(struct sxs *s)
{
    uint64_t one = 1;
    if (write(s->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        sx_warn("wake eventfd: %s", strerror(errno));
}

int sxs_domain_add(struct sxs *s, unsigned domid)
{
    pthread_mutex_lock(&s->lock);
    int rc = domain_add_locked(s, domid);
    pthread_mutex_unlock(&s->lock);
    wake(s);
    return rc;
}

int sxs_domain_remove(struct sxs *s, unsigned domid)
{
    pthread_mutex_lock(&s->lock);
    int rc = domain_remove_locked(s, domid);
    pthread_mutex_unlock(&s->lock);
    wake(s);
    return rc;
}

static const struct sxs_who sxs_dom0 = { .domid = 0, .target = SXS_NO_TARGET, .priv = true };

enum api_op { API_WRITE, API_READ, API_MKDIR, API_RM, API_PERMS };

static int api(struct sxs *s, enum api_op op, const char *in, const void *val, unsigned len,
               char **out, unsigned *outlen, const struct xs_permissions *p, unsigned np)
{
    if (!in || in[0] != '/')
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    char *path;
    int rc = sxs_canon(s->st, &sxs_dom0, in, op == API_PERMS, &path, NULL);
    if (!rc) {
        const char *d;
        unsigned l;
        switch (op) {
        case API_WRITE: rc = sxs_store_write(s->st, &sxs_dom0, NULL, path, val, len); break;
        case API_MKDIR: rc = sxs_store_mkdir(s->st, &sxs_dom0, NULL, path); break;
        case API_RM: rc = sxs_store_rm(s->st, &sxs_dom0, NULL, path); break;
        case API_PERMS: {
            struct xs_permissions kept[256];
            memcpy(kept, p, np * sizeof(*p));
            int k = perms_existing(s, kept, np);
            rc = k < 0 ? k : sxs_store_set_perms(s->st, &sxs_dom0, NULL, path, kept, (unsigned)k);
            break;
        }
        case API_READ:
            rc = sxs_store_read(s->st, &sxs_dom0, NULL, path, &d, &l);
            if (!rc) {
                *out = malloc(l + 1);
                if (!*out) {
                    rc = -ENOMEM;
                    break;
                }
                memcpy(*out, d, l);
                (*out)[l] = '\0';
                if (outlen)
                    *outlen = l;
            }
            break;
        }
        free(path);
    }
    pthread_mutex_unlock(&s->lock);
    if (!rc && op != API_READ)
        wake(s);
    return rc;
}

int sxs_write(struct sxs *s, const char *path, const void *val, unsigned len)
{
    if (len > XENSTORE_PAYLOAD_MAX)
        return -E2BIG;
    return api(s, API_WRITE, path, val, len, NULL, NULL, NULL, 0);
}

int sxs_read(struct sxs *s, const char *path, char **val, unsigned *len)
{
    return api(s, API_READ, path, NULL, 0, val, len, NULL, 0);
}

int sxs_mkdir(struct sxs *s, const char *path)
{
    return api(s, API_MKDIR, path, NULL, 0, NULL, NULL, NULL, 0);
}

int sxs_rm(struct sxs *s, const char *path)
{
    return api(s, API_RM, path, NULL, 0, NULL, NULL, NULL, 0);
}

int sxs_set_perms(struct sxs *s, const char *path, const char *const *perms, unsigned n)
{
    if (!n || n > 256)
        return -EINVAL;
    struct xs_permissions p[256];
    for (unsigned i = 0; i < n; i++)
        if (!perms[i] || sxs_perm_parse(perms[i], &p[i]))
            return -EINVAL;
    return api(s, API_PERMS, path, NULL, 0, NULL, NULL, p, n);
}

int sxs_socket_path(const struct sxs *s, unsigned domid, char *buf, unsigned long len)
{
    int r = domid ? snprintf(buf, len, "%s/domain/%u.sock", s->dir, domid)
                  : snprintf(buf, len, "%s/socket", s->dir);
    return (r < 0 || (unsigned long)r >= len) ? -ENAMETOOLONG : 0;
}

/* ---- the loop ------------------------------------------------------------------------------- */

static void reap(struct sxs *s)
{
    while (s->dead_conns) {
        struct conn *c = s->dead_conns;
        s->dead_conns = c->next;
        free(c);
    }
    while (s->dead_listeners) {
        struct listener *l = s->dead_listeners;
        s->dead_listeners = l->next;
        free(l);
    }
}

int sxs_fd(const struct sxs *s)
{
    return s->epfd;
}

int sxs_step(struct sxs *s, int timeout_ms)
{
    struct epoll_event evs[64];
    int n = epoll_wait(s->epfd, evs, 64, timeout_ms);
    if (n < 0)
        return -errno;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < n; i++) {
        struct ep *ep = evs[i].data.ptr;
        if (ep->kind == EP_WAKE) {
            uint64_t v;
            if (read(s->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                sx_warn("wake eventfd: %s", strerror(errno));
        } else if (ep->kind == EP_LISTEN) {
            struct listener *l = (struct listener *)ep;
            if (l->fd >= 0)
                conn_accept(s, l);
        } else {
            struct conn *c = (struct conn *)ep;
            if (c->dead)
                continue;
            if (evs[i].events & EPOLLOUT)
                conn_flush(s, c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                if (c->reply_bytes >= SXS_REPLY_BACKLOG &&
                    (evs[i].events & (EPOLLHUP | EPOLLERR)))
                    conn_close(s, c); /* gone while we waited for it to read */
                else
                    conn_input(s, c);
            }
            if (!c->dead && c->reply_bytes < SXS_REPLY_BACKLOG && c->in_len >= SXS_HDR)
                conn_parse(s, c); /* requests held back while replies were queued */
        }
    }
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->oh)
            conn_flush(s, c);
        if (!c->dead && c->reply_bytes < SXS_REPLY_BACKLOG && c->in_len >= SXS_HDR) {
            conn_parse(s, c);
            if (!c->dead && c->oh)
                conn_flush(s, c);
        }
        conn_set_mask(s, c);
    }
    reap(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void *sxs_thread(void *arg)
{
    struct sxs *s = arg;
    while (!atomic_load(&s->stop)) {
        int rc = sxs_step(s, -1);
        if (rc < 0 && rc != -EINTR) {
            sx_err("xenstored loop: %s", strerror(-rc));
            break;
        }
    }
    return NULL;
}

int sxs_start_thread(struct sxs *s)
{
    if (s->thr_running)
        return -EBUSY;
    atomic_store(&s->stop, false);
    int rc = pthread_create(&s->thr, NULL, sxs_thread, s);
    if (rc)
        return -rc;
    s->thr_running = true;
    return 0;
}

void sxs_stop_thread(struct sxs *s)
{
    if (!s || !s->thr_running)
        return;
    atomic_store(&s->stop, true);
    wake(s);
    pthread_join(s->thr, NULL);
    s->thr_running = false;
}

void sxs_get_stats(struct sxs *s, struct sxs_stats *st)
{
    pthread_mutex_lock(&s->lock);
    *st = s->stats;
    st->nodes = sxs_store_node_count(s->st);
    pthread_mutex_unlock(&s->lock);
}

int sxs_set_quota(struct sxs *s, const struct sxs_quota *q)
{
    if (!q->nodes_per_domain || !q->max_node_size || !q->perms_per_node || !q->path_max ||
        q->path_max > XENSTORE_ABS_PATH_MAX)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->q = *q;
    sxs_store_set_quota(s->st, q);
    for (struct domain *d = s->domains; d; d = d->next)
        sxs_store_domain_quota_set(s->st, d->domid, q);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int sxs_open(struct sxs **out, const char *dir)
{
    int rc;
    struct sxs *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->epfd = s->wakefd = -1;
    s->wake_ep.kind = EP_WAKE;
    sxs_quota_default(&s->q);
    s->dir = strdup(dir);
    if (!s->dir) {
        rc = -ENOMEM;
        goto err;
    }
    char sub[4096];
    if (snprintf(sub, sizeof(sub), "%s/domain", dir) >= (int)sizeof(sub)) {
        rc = -ENAMETOOLONG;
        goto err;
    }
    if ((rc = mkdir_p(dir, 0755)) || (rc = mkdir_p(sub, 0755)))
        goto err;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->wakefd < 0) {
        rc = -errno;
        goto err;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->wake_ep };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev)) {
        rc = -errno;
        goto err;
    }
    if ((rc = sxs_store_open(&s->st, &s->q)))
        goto err;
    sxs_store_set_fire(s->st, on_fire, s);
    if ((rc = sxs_socket_path(s, 0, sub, sizeof(sub))) ||
        (rc = listener_open(s, sub, 0, &s->dom0)))
        goto err;
    *out = s;
    return 0;
err:
    sxs_close(s);
    return rc;
}

void sxs_close(struct sxs *s)
{
    if (!s)
        return;
    sxs_stop_thread(s);
    pthread_mutex_lock(&s->lock);
    while (s->conns)
        conn_close(s, s->conns);
    while (s->domains) {
        struct domain *d = s->domains;
        s->domains = d->next;
        listener_close(s, d->l);
        free(d);
    }
    listener_close(s, s->dom0);
    s->dom0 = NULL;
    reap(s);
    sxs_store_close(s->st);
    s->st = NULL;
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wakefd >= 0)
        close(s->wakefd);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
}
