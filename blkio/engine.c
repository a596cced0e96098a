/*
 * What every engine of blkio shares and calls back into: the inline completion queue, the
 * synchronous executor, the event fd's signal and the registered-buffer lookup. The engines
 * (uring.c, aio.c, sync.c) and the engine-neutral API (blkio.c) build on this file; it calls
 * neither.
 */
#define SX_LOG_MODULE "blkio"
#include "log.h"

#include "blkio/blkio_impl.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

void sx_bio_event_signal(struct sx_bio *b)
{
    uint64_t one = 1;
    /* Still readable from our last write (nobody acked): a second write changes nothing a
     * poller can see, so a loop that reaps without acking pays for one write, not one a
     * batch. Only this thread writes or acks, so the flag needs no atomics. */
    if (b->efd_signaled)
        return;
    b->efd_signaled = true;
    ssize_t r = write(b->efd, &one, sizeof(one));
    (void)r;                    /* EAGAIN only at counter overflow, when it is readable anyway */
}

/* ---- inline completions and the synchronous executor ---------------------------------- */

void sx_bio_icq_push(struct sx_bio *b, uint64_t cookie, int32_t res)
{
    if (b->icq_count >= b->depth) {
        /* Cannot happen under the depth rule; losing a completion would hang a request. */
        sx_err("inline completion queue overflow (depth %u)", b->depth);
        return;
    }
    unsigned tail = (b->icq_head + b->icq_count) % b->depth;
    b->icq[tail] = (struct sx_bio_cpl){ .cookie = cookie, .res = res };
    b->icq_count++;
}

unsigned sx_bio_icq_pop(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    unsigned n = 0;

    while (n < max && b->icq_count) {
        out[n++] = b->icq[b->icq_head];
        b->icq_head = (b->icq_head + 1) % b->depth;
        b->icq_count--;
    }
    return n;
}

static int32_t exec_rw(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct iovec local[SX_BIO_MAX_IOVCNT];
    const struct iovec *iov = op->iov;
    int iovcnt = op->iovcnt;
    uint64_t off = op->off;
    int64_t done = 0;

    for (;;) {
        ssize_t r = op->opc == SX_BIO_OP_WRITE ? pwritev(b->fd, iov, iovcnt, (off_t)off)
                                               : preadv(b->fd, iov, iovcnt, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return done ? (int32_t)done : -errno;
        }
        if (r == 0)
            break;              /* end of file: report what we have, as the kernel engines do */
        done += r;
        off += (uint64_t)r;
        if (done > INT32_MAX)
            return -EOVERFLOW;
        /* Short transfer: skip what was done and go again (the rest of the file may be there). */
        size_t skip = (size_t)r;
        while (iovcnt > 0 && skip >= iov->iov_len) {
            skip -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0)
            break;
        if (skip) {
            /* Only a partially done first iovec needs a private copy of the array. */
            if (iov != local) {
                memcpy(local, iov, sizeof(*iov) * (size_t)iovcnt);
                iov = local;
            }
            local[0].iov_base = (char *)local[0].iov_base + skip;
            local[0].iov_len -= skip;
        }
    }
    return (int32_t)done;
}

int32_t sx_bio_exec_sync(struct sx_bio *b, const struct sx_bio_op *op)
{
    switch (op->opc) {
    case SX_BIO_OP_READ:
    case SX_BIO_OP_WRITE:
        return exec_rw(b, op);
    case SX_BIO_OP_FLUSH:
        return fdatasync(b->fd) < 0 ? -errno : 0;
    case SX_BIO_OP_DISCARD:
        if (b->blkdev) {
            uint64_t range[2] = { op->off, op->len };
            return ioctl(b->fd, BLKDISCARD, range) < 0 ? -errno : 0;
        }
        return fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)op->off,
                         (off_t)op->len) < 0 ? -errno : 0;
    }
    return -EINVAL;
}

/* ---- engines that run everything inline (sync, mem) ---------------------------------- */

int sx_bio_inline_queue(struct sx_bio *b, const struct sx_bio_op *op)
{
    (void)b;
    (void)op;
    return SX_BIO_INLINE;
}

int sx_bio_inline_submit(struct sx_bio *b)
{
    (void)b;
    return 0;                   /* nothing is ever queued in the engine itself */
}

int sx_bio_inline_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    (void)b;
    (void)out;
    (void)max;
    return 0;                   /* everything is in the inline completion queue */
}

bool sx_bio_inline_ready(struct sx_bio *b)
{
    (void)b;
    return false;
}

/* ---- registered buffers ---------------------------------------------------------------- */

int sx_bio_reg_find(const struct sx_bio *b, const void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    unsigned lo = 0, hi = b->reg_idx_n;

    /* Last entry with base <= a. */
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (b->reg_idx[mid].base <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct sx_bio_reg *r = &b->reg_idx[lo - 1];
    if (a - r->base > r->len || len > r->len - (a - r->base))
        return -1;
    return (int)r->slot;
}

/* ---- network targets ------------------------------------------------------------------- */

void sx_bio_count(struct sx_bio *b, unsigned which, uint64_t n)
{
    switch (which) {
    case SX_BIO_TST_DISCONNECTS: b->st.disconnects += n; break;
    case SX_BIO_TST_RECONNECTS: b->st.reconnects += n; break;
    case SX_BIO_TST_FAILED: b->st.failed += n; break;
    default: return;
    }
    if (b->tstats)
        sx_stats_add(b->tstats, b->tstats_base + which, n);
}

bool sx_bio_err_is_link(int32_t res)
{
    switch (-res) {
    case ENOTCONN: case ECONNRESET: case ECONNREFUSED: case ECONNABORTED: case EPIPE:
    case ESHUTDOWN: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
        return true;
    }
    return false;
}
