/*
 * AIO engine (libaio): one io_context of `depth` slots, a fixed pool of iocbs, io_submit for
 * the batch, io_getevents with a zero timeout to reap, completions announced on the engine's
 * eventfd through IOCB_FLAG_RESFD (io_set_eventfd).
 *
 * Kernel AIO has no discard command: discards run inline at submit time (blkio.c). Flushes use
 * IOCB_CMD_FDSYNC (kernel >= 4.18). On a buffered file io_submit does the copy itself, in the
 * submitting thread, which is still far cheaper than io_uring's worker punt on tmpfs.
 */
#include "blkio/blkio_impl.h"

#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>

struct aio_state {
    io_context_t ctx;
    struct iocb *iocbs;         /* depth entries */
    struct iocb **free_list;    /* stack of unused iocbs */
    unsigned nfree;
    struct iocb **batch;        /* queued, not yet submitted, in order */
    unsigned nbatch;
    struct io_event *events;    /* depth entries, reap scratch */
    bool ctx_ok;
};

static void aio_close_(struct sx_bio *b)
{
    struct aio_state *s = b->priv;

    if (!s)
        return;
    if (s->ctx_ok)
        io_destroy(s->ctx);     /* waits for (or cancels) what is still in flight */
    free(s->iocbs);
    free(s->free_list);
    free(s->batch);
    free(s->events);
    free(s);
    b->priv = NULL;
}

static int aio_open_(struct sx_bio *b, unsigned flags)
{
    struct aio_state *s = calloc(1, sizeof(*s));
    int rc;

    (void)flags;
    if (!s)
        return -ENOMEM;
    b->priv = s;
    s->iocbs = calloc(b->depth, sizeof(*s->iocbs));
    s->free_list = calloc(b->depth, sizeof(*s->free_list));
    s->batch = calloc(b->depth, sizeof(*s->batch));
    s->events = calloc(b->depth, sizeof(*s->events));
    if (!s->iocbs || !s->free_list || !s->batch || !s->events) {
        rc = -ENOMEM;
        goto err;
    }
    rc = io_setup((int)b->depth, &s->ctx);     /* libaio returns -errno */
    if (rc < 0)
        goto err;
    s->ctx_ok = true;
    for (unsigned i = 0; i < b->depth; i++)
        s->free_list[s->nfree++] = &s->iocbs[b->depth - 1 - i];
    return 0;
err:
    aio_close_(b);
    return rc;
}

static int aio_queue_(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct aio_state *s = b->priv;
    struct iocb *cb;

    if (op->opc == SX_BIO_OP_DISCARD)
        return SX_BIO_INLINE;   /* no kernel AIO command for it */
    if (s->nfree == 0)
        return -EAGAIN;         /* cannot happen under the depth rule */
    cb = s->free_list[--s->nfree];
    switch (op->opc) {
    case SX_BIO_OP_READ:
        io_prep_preadv(cb, b->fd, op->iov, op->iovcnt, (long long)op->off);
        break;
    case SX_BIO_OP_WRITE:
        io_prep_pwritev(cb, b->fd, op->iov, op->iovcnt, (long long)op->off);
        break;
    case SX_BIO_OP_FLUSH:
        io_prep_fdsync(cb, b->fd);
        break;
    case SX_BIO_OP_DISCARD:
        break;
    }
    cb->data = (void *)(uintptr_t)op->cookie;  /* cookie travels in the iocb */
    io_set_eventfd(cb, b->efd);
    s->batch[s->nbatch++] = cb;
    return 0;
}

static void aio_put(struct aio_state *s, struct iocb *cb)
{
    s->free_list[s->nfree++] = cb;
}

/* Complete cb in this thread with res (a refused submission) and release it. */
static void aio_inline(struct sx_bio *b, struct iocb *cb, int32_t res)
{
    sx_bio_icq_push(b, (uint64_t)(uintptr_t)cb->data, res);
    aio_put(b->priv, cb);
}

static int aio_submit_(struct sx_bio *b)
{
    struct aio_state *s = b->priv;
    unsigned sent = 0;
    int rc = 0;

    while (sent < s->nbatch) {
        int r = io_submit(s->ctx, (long)(s->nbatch - sent), s->batch + sent);
        if (r > 0) {
            sent += (unsigned)r;
            continue;
        }
        if (r == -EAGAIN || r == 0) {
            rc = -EAGAIN;       /* out of kernel resources: the rest stays queued */
            break;
        }
        if (r == -EINTR)
            continue;
        /* The first iocb of the remainder was refused (-EBADF, -EINVAL, ...): complete it
         * with that error, as io_uring would, and carry on with the rest. */
        aio_inline(b, s->batch[sent], r);
        sent++;
    }
    memmove(s->batch, s->batch + sent, (s->nbatch - sent) * sizeof(*s->batch));
    s->nbatch -= sent;
    return sent ? (int)sent : rc;
}

static int aio_reap_(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    struct aio_state *s = b->priv;
    struct timespec zero = { 0, 0 };
    int n;

    if (b->inflight == 0)
        return 0;
    if (max > b->depth)
        max = b->depth;
    do {
        n = io_getevents(s->ctx, 0, (long)max, s->events, &zero);
    } while (n == -EINTR);
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        struct iocb *cb = s->events[i].obj;
        long res = (long)s->events[i].res;
        out[i].cookie = (uint64_t)(uintptr_t)s->events[i].data;
        out[i].res = res < 0 ? (int32_t)res : (res > INT32_MAX ? -EOVERFLOW : (int32_t)res);
        out[i].pad_ = 0;
        aio_put(s, cb);
    }
    return n;
}

static bool aio_ready_(struct sx_bio *b)
{
    (void)b;
    return false;               /* unknown without a syscall: blkio.c polls the eventfd */
}

const struct sx_bio_ops sx_bio_aio_ops = {
    .open = aio_open_,
    .close = aio_close_,
    .queue = aio_queue_,
    .submit = aio_submit_,
    .reap = aio_reap_,
    .ready = aio_ready_,
};
