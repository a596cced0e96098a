/*
 * NBD engine (libnbd's asynchronous API): one connection per engine, driven from the owning
 * thread's poll loop. The engine's event fd is an epoll set holding the connection's socket
 * (with the directions libnbd asks for, nbd_aio_get_direction), a timerfd (reconnect backoff,
 * connect deadline) and the engine's eventfd (completions made in this thread). reap and wait
 * run libnbd's state machine (nbd_aio_notify_read/_write); its completion callbacks only record
 * the result (libnbd cannot be re-entered from them) and post the completion.
 *
 * Operations: read/write (libnbd takes one buffer per command: an operation of several iovecs
 * goes through the slot's bounce buffer as one command, copied in before a write and out after
 * a read; past NBD_BOUNCE_MAX bytes of bounce buffers per engine it is sent as one command per
 * iovec instead, completed when the last one is), flush (NBD_CMD_FLUSH, where the server has
 * a cache), discard (NBD_CMD_TRIM in pieces of at most 1 GiB).
 *
 * The connection's states:
 *   UP          commands go to the server. While any is in flight a 1 s tick checks the oldest:
 *               one unanswered for the request timeout (30 s as Linux's nbd driver, or
 *               $SPLITXEN_NBD_TIMEOUT_MS) means a server that hangs: the connection is
 *               dropped as if lost.
 *   DOWN        the connection was lost: what was in flight completed with -ENOTCONN, new
 *               operations fail at once with -ENOTCONN; the timer fires after the backoff
 *               (50 ms, doubling to 2 s) and starts a connect.
 *   CONNECTING  a non-blocking connect and handshake; ready -> UP (reconnects), failure or
 *               the 5 s deadline -> DOWN with the next backoff.
 *
 * libnbd is loaded (dlopen) when the first NBD target is opened, so that programs linking
 * blkio start as fast without it (its TLS and XML dependencies cost tens of ms at start).
 */
#define SX_LOG_MODULE "blkio"
#include "log.h"

#include "blkio/blkio_impl.h"

#include <dlfcn.h>
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u
#define CONNECT_DEADLINE_MS 5000u
#define TRIM_PIECE (1ull << 30)
#define NBD_BOUNCE_MAX (16u << 20)     /* bounce bytes per engine (one guest queue) */
#define REQUEST_TIMEOUT_MS 30000u

/* ---- libnbd, loaded on first use ------------------------------------------------------ */

static struct {
    __typeof__(&nbd_create) nbd_create;
    __typeof__(&nbd_close) nbd_close;
    __typeof__(&nbd_set_handle_name) nbd_set_handle_name;
    __typeof__(&nbd_set_export_name) nbd_set_export_name;
    __typeof__(&nbd_aio_connect_unix) nbd_aio_connect_unix;
    __typeof__(&nbd_aio_connect_tcp) nbd_aio_connect_tcp;
    __typeof__(&nbd_connect_unix) nbd_connect_unix;
    __typeof__(&nbd_connect_tcp) nbd_connect_tcp;
    __typeof__(&nbd_aio_get_fd) nbd_aio_get_fd;
    __typeof__(&nbd_aio_get_direction) nbd_aio_get_direction;
    __typeof__(&nbd_aio_notify_read) nbd_aio_notify_read;
    __typeof__(&nbd_aio_notify_write) nbd_aio_notify_write;
    __typeof__(&nbd_aio_is_dead) nbd_aio_is_dead;
    __typeof__(&nbd_aio_is_closed) nbd_aio_is_closed;
    __typeof__(&nbd_aio_is_ready) nbd_aio_is_ready;
    __typeof__(&nbd_get_size) nbd_get_size;
    __typeof__(&nbd_get_block_size) nbd_get_block_size;
    __typeof__(&nbd_is_read_only) nbd_is_read_only;
    __typeof__(&nbd_can_flush) nbd_can_flush;
    __typeof__(&nbd_can_trim) nbd_can_trim;
    __typeof__(&nbd_can_zero) nbd_can_zero;
    __typeof__(&nbd_can_multi_conn) nbd_can_multi_conn;
    __typeof__(&nbd_get_errno) nbd_get_errno;
    __typeof__(&nbd_get_error) nbd_get_error;
    __typeof__(&nbd_aio_pread) nbd_aio_pread;
    __typeof__(&nbd_aio_pwrite) nbd_aio_pwrite;
    __typeof__(&nbd_aio_flush) nbd_aio_flush;
    __typeof__(&nbd_aio_trim) nbd_aio_trim;
} N;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256];

static void load_lib(void)
{
    void *h = dlopen("libnbd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof(load_err), "%s", dlerror());
        return;
    }
#define SYM(f) do { if (!(*(void **)&N.f = dlsym(h, #f))) { \
        snprintf(load_err, sizeof(load_err), "libnbd: no %s", #f); return; } } while (0)
    SYM(nbd_create);
    SYM(nbd_close);
    SYM(nbd_set_handle_name);
    SYM(nbd_set_export_name);
    SYM(nbd_aio_connect_unix);
    SYM(nbd_aio_connect_tcp);
    SYM(nbd_connect_unix);
    SYM(nbd_connect_tcp);
    SYM(nbd_aio_get_fd);
    SYM(nbd_aio_get_direction);
    SYM(nbd_aio_notify_read);
    SYM(nbd_aio_notify_write);
    SYM(nbd_aio_is_dead);
    SYM(nbd_aio_is_closed);
    SYM(nbd_aio_is_ready);
    SYM(nbd_get_size);
    SYM(nbd_get_block_size);
    SYM(nbd_is_read_only);
    SYM(nbd_can_flush);
    SYM(nbd_can_trim);
    SYM(nbd_can_zero);
    SYM(nbd_can_multi_conn);
    SYM(nbd_get_errno);
    SYM(nbd_get_error);
    SYM(nbd_aio_pread);
    SYM(nbd_aio_pwrite);
    SYM(nbd_aio_flush);
    SYM(nbd_aio_trim);
#undef SYM
}

enum nbd_state { NBD_DOWN, NBD_CONNECTING, NBD_UP };

struct nbd_eng;

/* One engine operation: its commands complete into it. */
struct nbd_op {
    struct nbd_eng *e;
    struct nbd_op *next_free;
    uint64_t cookie;
    uint64_t t0_ms;             /* sent at */
    uint32_t pending;           /* commands not completed yet (0: slot free or finishing) */
    int32_t err;                /* first error, -errno */
    int32_t len;                /* bytes, for read/write */
    bool used;
    bool bounced_read;          /* copy the bounce buffer out to iov when done */
    const struct iovec *iov;    /* the operation's (valid until it completes) */
    int iovcnt;
    void *bounce;               /* kept with the slot, grown on demand */
    size_t bounce_cap;
};

struct nbd_eng {
    struct sx_bio *b;
    const struct sx_bio_target *t;
    struct nbd_handle *h;
    enum nbd_state state;
    int epfd, tfd;
    int sock;                   /* h's socket while in the epoll set, else -1 */
    uint32_t sock_ev;           /* its registered events */
    unsigned backoff_ms;
    bool closing;               /* cancel: no reconnect */
    struct sx_bio_op *staged;   /* queued, not yet submitted (depth entries) */
    unsigned nstaged;
    struct nbd_op *slots;       /* depth entries */
    struct nbd_op *free_slots;
    size_t bounce_total;        /* bytes held in the slots' bounce buffers */
    unsigned nused;             /* slots in use (operations sent, not completed) */
    bool ticking;               /* UP: the timer ticks to check the oldest request */
    unsigned timeout_ms;        /* request timeout */
};

/* ---- timer and epoll -------------------------------------------------------------------- */

/* One shot after ms (0 disarms); every ms after that when periodic. */
static void timer_set(struct nbd_eng *e, unsigned ms, bool periodic)
{
    struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    struct itimerspec its = { .it_value = t };
    if (periodic)
        its.it_interval = t;
    timerfd_settime(e->tfd, 0, &its, NULL);
    e->ticking = periodic && ms;
}

static void timer_arm(struct nbd_eng *e, unsigned ms)
{
    timer_set(e, ms, false);
}

static unsigned tick_ms(const struct nbd_eng *e)
{
    return e->timeout_ms / 2 < 1000 ? e->timeout_ms / 2 + 1 : 1000;
}

static void sock_update(struct nbd_eng *e)
{
    if (!e->h || e->sock < 0)
        return;
    unsigned dir = N.nbd_aio_get_direction(e->h);
    uint32_t ev = (dir & LIBNBD_AIO_DIRECTION_READ ? EPOLLIN : 0) |
                  (dir & LIBNBD_AIO_DIRECTION_WRITE ? EPOLLOUT : 0);
    if (ev == e->sock_ev)
        return;
    struct epoll_event ee = { .events = ev, .data.u32 = 1 };
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, e->sock, &ee) == 0)
        e->sock_ev = ev;
}

static int sock_add(struct nbd_eng *e)
{
    int fd = N.nbd_aio_get_fd(e->h);
    if (fd < 0)
        return -(N.nbd_get_errno() ? N.nbd_get_errno() : EIO);
    struct epoll_event ee = { .events = 0, .data.u32 = 1 };
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
        return -errno;
    e->sock = fd;
    e->sock_ev = 0;
    sock_update(e);
    return 0;
}

/* ---- operations ----------------------------------------------------------------------- */

static void op_finish(struct nbd_eng *e, struct nbd_op *op)
{
    int32_t res = op->err ? op->err : op->len;
    if (op->bounced_read && !op->err) {
        const uint8_t *src = op->bounce;
        for (int i = 0; i < op->iovcnt; i++) {
            memcpy(op->iov[i].iov_base, src, op->iov[i].iov_len);
            src += op->iov[i].iov_len;
        }
    }
    op->bounced_read = false;
    e->nused--;
    if (op->err && sx_bio_err_is_link(op->err))
        sx_bio_count(e->b, SX_BIO_TST_FAILED, 1);
    sx_bio_icq_push(e->b, op->cookie, res);
    op->used = false;
    op->next_free = e->free_slots;
    e->free_slots = op;
}

/* One command of op is done (error: its errno, 0 on success). */
static void op_cmd_done(struct nbd_op *op, int error)
{
    if (error && !op->err)
        op->err = -error;
    if (op->pending && --op->pending == 0)
        op_finish(op->e, op);
}

/* libnbd's completion callback: record and retire (return 1). No nbd_* call in here. */
static int cmd_cb(void *user_data, int *error)
{
    op_cmd_done(user_data, *error);
    return 1;
}

/* ---- the connection ------------------------------------------------------------------- */

static int start_connect(struct nbd_eng *e)
{
    const struct sx_bio_spec *sp = &e->t->spec;
    int rc;

    e->h = N.nbd_create();
    if (!e->h)
        return -(N.nbd_get_errno() ? N.nbd_get_errno() : ENOMEM);
    N.nbd_set_handle_name(e->h, "splitxen");
    if (N.nbd_set_export_name(e->h, sp->export_name) < 0)
        goto fail;
    rc = sp->unix_socket ? N.nbd_aio_connect_unix(e->h, sp->socket)
                         : N.nbd_aio_connect_tcp(e->h, sp->host, sp->port);
    if (rc < 0)
        goto fail;
    if ((rc = sock_add(e)) < 0) {
        N.nbd_close(e->h);
        e->h = NULL;
        return rc;
    }
    e->state = NBD_CONNECTING;
    return 0;
fail:
    rc = -(N.nbd_get_errno() ? N.nbd_get_errno() : ECONNREFUSED);
    N.nbd_close(e->h);
    e->h = NULL;
    return rc;
}

/* Close the connection; every operation still in flight completes with -ENOTCONN (libnbd
 * has already failed the commands of a dead connection through their callbacks; those of a
 * live one are dropped by nbd_close without a callback). */
static void conn_close(struct nbd_eng *e)
{
    if (e->sock >= 0)
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->sock, NULL);
    e->sock = -1;
    e->sock_ev = 0;
    if (e->h)
        N.nbd_close(e->h);
    e->h = NULL;
    for (unsigned i = 0; i < e->b->depth; i++) {
        struct nbd_op *op = &e->slots[i];
        if (op->used && op->pending) {
            op->pending = 1;
            op_cmd_done(op, ENOTCONN);
        }
    }
}

static void go_down(struct nbd_eng *e, const char *why)
{
    bool was_up = e->state == NBD_UP;
    conn_close(e);
    e->state = NBD_DOWN;
    if (was_up) {
        sx_bio_count(e->b, SX_BIO_TST_DISCONNECTS, 1);
        sx_log_ratelimited(SX_LOG_WARN, "%s: connection lost (%s): reconnecting",
                           e->t->info.name, why);
        e->backoff_ms = BACKOFF_MIN_MS;
    }
    if (e->closing)
        return;
    timer_arm(e, e->backoff_ms);
    e->backoff_ms = e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : e->backoff_ms * 2;
}

static void went_up(struct nbd_eng *e, bool reconnect)
{
    e->state = NBD_UP;
    e->backoff_ms = BACKOFF_MIN_MS;
    timer_arm(e, 0);
    int64_t size = N.nbd_get_size(e->h);
    if (reconnect) {
        sx_bio_count(e->b, SX_BIO_TST_RECONNECTS, 1);
        sx_log_ratelimited(SX_LOG_INFO, "%s: reconnected", e->t->info.name);
    }
    if (size >= 0 && (uint64_t)size != e->t->info.bytes)
        sx_log_ratelimited(SX_LOG_WARN, "%s: the export is now %lld bytes, was %llu",
                           e->t->info.name, (long long)size,
                           (unsigned long long)e->t->info.bytes);
}

/* After libnbd ran: note a dead connection or a finished handshake, follow its direction. */
static void conn_check(struct nbd_eng *e)
{
    if (!e->h)
        return;
    if (N.nbd_aio_is_dead(e->h) || N.nbd_aio_is_closed(e->h)) {
        const char *msg = N.nbd_get_error();
        go_down(e, msg && *msg ? msg : "closed by the server");
        return;
    }
    if (e->state == NBD_CONNECTING && N.nbd_aio_is_ready(e->h))
        went_up(e, true);
    sock_update(e);
}

/* The tick while requests are in flight: a request unanswered for the timeout means a server
 * that hangs (connected, silent): drop the connection, which fails what is in flight. */
static void check_oldest(struct nbd_eng *e)
{
    uint64_t now = sx_now_ms(), oldest = now;
    for (unsigned i = 0; i < e->b->depth; i++)
        if (e->slots[i].used && e->slots[i].t0_ms < oldest)
            oldest = e->slots[i].t0_ms;
    if (now - oldest >= e->timeout_ms) {
        char why[64];
        snprintf(why, sizeof(why), "a request unanswered for %u ms", e->timeout_ms);
        go_down(e, why);
    } else if (!e->nused) {
        timer_arm(e, 0);
    }
}

/* Run whatever is ready: socket events, the timer. Never blocks. */
static void pump(struct nbd_eng *e)
{
    struct epoll_event ev[4];
    int n = epoll_wait(e->epfd, ev, 4, 0);

    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == 2) {              /* timer */
            uint64_t x;
            if (read(e->tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
                continue;
            if (e->state == NBD_DOWN && !e->closing) {
                int rc = start_connect(e);
                if (rc < 0)
                    go_down(e, strerror(-rc));
                else
                    timer_arm(e, CONNECT_DEADLINE_MS);
            } else if (e->state == NBD_CONNECTING) {
                go_down(e, "connect timed out");
            } else if (e->state == NBD_UP) {
                check_oldest(e);
            }
        } else if (ev[i].data.u32 == 1 && e->h) {  /* socket */
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                N.nbd_aio_notify_read(e->h);
            else if (ev[i].events & EPOLLOUT)
                N.nbd_aio_notify_write(e->h);
            conn_check(e);
        }
    }
}

/* Connect now, waiting up to ms (the first connection of an engine). 0 or -errno. */
static int connect_wait(struct nbd_eng *e, unsigned ms)
{
    uint64_t end = sx_now_ms() + ms;
    int rc = start_connect(e);
    if (rc < 0)
        return rc;
    while (!N.nbd_aio_is_ready(e->h)) {
        if (N.nbd_aio_is_dead(e->h) || N.nbd_aio_is_closed(e->h)) {
            rc = -(N.nbd_get_errno() ? N.nbd_get_errno() : ECONNREFUSED);
            goto fail;
        }
        uint64_t now = sx_now_ms();
        if (now >= end) {
            rc = -ETIMEDOUT;
            goto fail;
        }
        unsigned dir = N.nbd_aio_get_direction(e->h);
        struct pollfd p = { .fd = e->sock, .events = (short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                                                     (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)) };
        int r = poll(&p, 1, (int)(end - now));
        if (r < 0 && errno != EINTR) {
            rc = -errno;
            goto fail;
        }
        if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
            N.nbd_aio_notify_read(e->h);
        else if (r > 0 && (p.revents & POLLOUT))
            N.nbd_aio_notify_write(e->h);
    }
    e->state = NBD_UP;
    sock_update(e);
    return 0;
fail:
    conn_close(e);
    e->state = NBD_DOWN;
    return rc;
}

/* ---- ops table ------------------------------------------------------------------------- */

static void nbd_close_(struct sx_bio *b)
{
    struct nbd_eng *e = b->priv;
    if (!e)
        return;
    e->closing = true;
    conn_close(e);
    if (e->tfd >= 0)
        close(e->tfd);
    if (e->epfd >= 0)
        close(e->epfd);
    b->poll_fd = -1;
    free(e->staged);
    for (unsigned i = 0; e->slots && i < b->depth; i++)
        free(e->slots[i].bounce);
    free(e->slots);
    free(e);
    b->priv = NULL;
}

static int nbd_open_(struct sx_bio *b, unsigned flags)
{
    struct nbd_eng *e = calloc(1, sizeof(*e));
    int rc;

    (void)flags;
    if (!e)
        return -ENOMEM;
    b->priv = e;
    e->b = b;
    e->t = b->target;
    e->epfd = e->tfd = e->sock = -1;
    e->backoff_ms = BACKOFF_MIN_MS;
    e->timeout_ms = REQUEST_TIMEOUT_MS;
    const char *env = getenv("SPLITXEN_NBD_TIMEOUT_MS");
    if (env && strtoul(env, NULL, 10) >= 100 && strtoul(env, NULL, 10) <= 3600000)
        e->timeout_ms = (unsigned)strtoul(env, NULL, 10);
    e->staged = calloc(b->depth, sizeof(*e->staged));
    e->slots = calloc(b->depth, sizeof(*e->slots));
    if (!e->staged || !e->slots) {
        rc = -ENOMEM;
        goto err;
    }
    for (unsigned i = b->depth; i-- > 0;) {
        e->slots[i].e = e;
        e->slots[i].next_free = e->free_slots;
        e->free_slots = &e->slots[i];
    }
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (e->epfd < 0 || e->tfd < 0) {
        rc = -errno;
        goto err;
    }
    struct epoll_event te = { .events = EPOLLIN, .data.u32 = 2 };
    struct epoll_event ee = { .events = EPOLLIN, .data.u32 = 0 };
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &te) < 0 ||
        epoll_ctl(e->epfd, EPOLL_CTL_ADD, b->efd, &ee) < 0) {
        rc = -errno;
        goto err;
    }
    rc = connect_wait(e, CONNECT_DEADLINE_MS);
    if (rc < 0) {
        sx_warn("%s: connect: %s", e->t->info.name, strerror(-rc));
        goto err;
    }
    b->poll_fd = e->epfd;
    return 0;
err:
    nbd_close_(b);
    return rc;
}

static int nbd_queue_(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct nbd_eng *e = b->priv;
    if (e->nstaged >= b->depth)
        return -EAGAIN;         /* cannot happen under the depth rule */
    e->staged[e->nstaged++] = *op;
    return 0;
}

/* A bounce buffer of len bytes in op's slot, or NULL when the engine's budget is spent. */
static void *bounce_get(struct nbd_eng *e, struct nbd_op *op, size_t len)
{
    if (len <= op->bounce_cap)
        return op->bounce;
    if (e->bounce_total - op->bounce_cap + len > NBD_BOUNCE_MAX)
        return NULL;
    void *p = realloc(op->bounce, len);
    if (!p)
        return NULL;
    e->bounce_total += len - op->bounce_cap;
    op->bounce = p;
    op->bounce_cap = len;
    return p;
}

/* Send one operation's commands (state UP). Completes it here when nothing could be sent. */
static void issue(struct nbd_eng *e, const struct sx_bio_op *o)
{
    struct nbd_op *op = e->free_slots;
    const struct sx_bio_target_info *in = &e->t->info;
    unsigned ncmd = 0, sent = 0;
    int64_t r = 0;

    e->free_slots = op->next_free;       /* depth bounds queued + in flight: never NULL */
    op->used = true;
    op->t0_ms = sx_now_ms();
    if (e->nused++ == 0 && !e->ticking)
        timer_set(e, tick_ms(e), true);
    op->cookie = o->cookie;
    op->err = 0;
    op->len = 0;
    void *bb = NULL;
    size_t total = 0;
    switch (o->opc) {
    case SX_BIO_OP_READ:
    case SX_BIO_OP_WRITE:
        ncmd = (unsigned)o->iovcnt;
        for (int i = 0; i < o->iovcnt; i++)
            total += o->iov[i].iov_len;
        if (o->iovcnt > 1 && (bb = bounce_get(e, op, total)))
            ncmd = 1;
        break;
    case SX_BIO_OP_FLUSH:
        ncmd = in->flush ? 1 : 0;
        break;
    case SX_BIO_OP_DISCARD:
        ncmd = in->discard ? (unsigned)((o->len + TRIM_PIECE - 1) / TRIM_PIECE) : 0;
        if (!in->discard)
            op->err = -EOPNOTSUPP;
        break;
    }
    op->pending = ncmd + 1;              /* + 1: held until every command is sent */
    uint64_t off = o->off;
    for (unsigned i = 0; i < ncmd; i++) {
        nbd_completion_callback cb = { .callback = cmd_cb, .user_data = op };
        if (bb) {                        /* the whole operation, one command */
            op->iov = o->iov;
            op->iovcnt = o->iovcnt;
            op->len = (int32_t)total;
            if (o->opc == SX_BIO_OP_WRITE) {
                uint8_t *dst = bb;
                for (int k = 0; k < o->iovcnt; k++) {
                    memcpy(dst, o->iov[k].iov_base, o->iov[k].iov_len);
                    dst += o->iov[k].iov_len;
                }
                r = N.nbd_aio_pwrite(e->h, bb, total, off, cb, 0);
            } else {
                op->bounced_read = true;
                r = N.nbd_aio_pread(e->h, bb, total, off, cb, 0);
            }
        } else if (o->opc == SX_BIO_OP_READ || o->opc == SX_BIO_OP_WRITE) {
            const struct iovec *v = &o->iov[i];
            r = o->opc == SX_BIO_OP_READ
                    ? N.nbd_aio_pread(e->h, v->iov_base, v->iov_len, off, cb, 0)
                    : N.nbd_aio_pwrite(e->h, v->iov_base, v->iov_len, off, cb, 0);
            off += v->iov_len;
            op->len += (int32_t)v->iov_len;
        } else if (o->opc == SX_BIO_OP_FLUSH) {
            r = N.nbd_aio_flush(e->h, cb, 0);
        } else {
            uint64_t piece = o->len - (uint64_t)i * TRIM_PIECE;
            if (piece > TRIM_PIECE)
                piece = TRIM_PIECE;
            r = N.nbd_aio_trim(e->h, piece, o->off + (uint64_t)i * TRIM_PIECE, cb, 0);
        }
        if (r < 0)
            break;
        sent++;
    }
    if (sent < ncmd) {
        int err = N.nbd_get_errno();
        op->bounced_read = false;
        /* The commands not sent will never call back: count them done with the error. */
        op->pending -= ncmd - sent;
        if (!op->err)
            op->err = -(err ? err : EIO);
    }
    op_cmd_done(op, 0);                  /* drop the hold */
}

static int nbd_submit_(struct sx_bio *b)
{
    struct nbd_eng *e = b->priv;
    unsigned n = e->nstaged;

    e->nstaged = 0;
    for (unsigned i = 0; i < n; i++) {
        if (e->state != NBD_UP) {
            /* Down or reconnecting: fail at once rather than hold the request. */
            sx_bio_icq_push(b, e->staged[i].cookie, -ENOTCONN);
            sx_bio_count(b, SX_BIO_TST_FAILED, 1);
            continue;
        }
        issue(e, &e->staged[i]);
        if (N.nbd_aio_is_dead(e->h) || N.nbd_aio_is_closed(e->h))
            conn_check(e);
    }
    if (e->state == NBD_UP)
        sock_update(e);         /* commands waiting to be written want POLLOUT */
    return (int)n;
}

static int nbd_reap_(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    struct nbd_eng *e = b->priv;
    pump(e);
    return (int)sx_bio_icq_pop(b, out, max);
}

static bool nbd_ready_(struct sx_bio *b)
{
    (void)b;
    return false;
}

static int nbd_wait_(struct sx_bio *b, int timeout_ms)
{
    struct nbd_eng *e = b->priv;
    struct epoll_event ev;
    int rc;
    do {
        rc = epoll_wait(e->epfd, &ev, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    return rc == 0 ? -ETIMEDOUT : 0;
}

/* At close: drop the connection, which completes everything in flight with -ENOTCONN. */
static void nbd_cancel_(struct sx_bio *b)
{
    struct nbd_eng *e = b->priv;
    e->closing = true;
    conn_close(e);
    e->state = NBD_DOWN;
}

const struct sx_bio_ops sx_bio_nbd_ops = {
    .open = nbd_open_,
    .close = nbd_close_,
    .queue = nbd_queue_,
    .submit = nbd_submit_,
    .reap = nbd_reap_,
    .ready = nbd_ready_,
    .wait = nbd_wait_,
    .cancel = nbd_cancel_,
};

/* ---- the target: one connection to learn the export ----------------------------------- */

int sx_bio_nbd_target_open(struct sx_bio_target *t, bool read_only, char *err, size_t errlen)
{
    const struct sx_bio_spec *sp = &t->spec;
    int rc;

    pthread_once(&load_once, load_lib);
    if (load_err[0]) {
        snprintf(err, errlen, "nbd: libnbd cannot be loaded (install libnbd0): %s", load_err);
        return -ENOSYS;
    }
    struct nbd_handle *h = N.nbd_create();

    if (!h) {
        snprintf(err, errlen, "nbd: %s", N.nbd_get_error());
        return -ENOMEM;
    }
    N.nbd_set_handle_name(h, "splitxen");
    if (N.nbd_set_export_name(h, sp->export_name) < 0 ||
        (sp->unix_socket ? N.nbd_connect_unix(h, sp->socket)
                         : N.nbd_connect_tcp(h, sp->host, sp->port)) < 0) {
        rc = -(N.nbd_get_errno() ? N.nbd_get_errno() : ECONNREFUSED);
        snprintf(err, errlen, "nbd: %s: %s", sp->name, N.nbd_get_error());
        goto out;
    }
    int64_t size = N.nbd_get_size(h);
    int64_t minb = N.nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    if (size < 0) {
        rc = -EIO;
        snprintf(err, errlen, "nbd: %s: size: %s", sp->name, N.nbd_get_error());
        goto out;
    }
    struct sx_bio_target_info *in = &t->info;
    in->bytes = (uint64_t)size;
    in->block_size = 512;
    while (minb > 0 && in->block_size < (uint64_t)minb && in->block_size < 4096)
        in->block_size <<= 1;
    if (minb > 4096) {
        rc = -EINVAL;
        snprintf(err, errlen, "nbd: %s: minimum block size %lld is above 4096", sp->name,
                 (long long)minb);
        goto out;
    }
    in->read_only = read_only || N.nbd_is_read_only(h) == 1;
    in->flush = N.nbd_can_flush(h) == 1;
    in->discard = N.nbd_can_trim(h) == 1;
    in->write_zeroes = N.nbd_can_zero(h) == 1;
    in->discard_granularity = in->block_size < 4096 ? 4096 : in->block_size;
    /* Commands on different connections see each other's writes, and one flush covers them
     * all, only where the server says so (NBD_FLAG_CAN_MULTI_CONN). */
    in->max_queues = N.nbd_can_multi_conn(h) == 1 ? 16 : 1;
    rc = 0;
out:
    N.nbd_close(h);
    return rc;
}
