/*
 * io_uring engine (liburing 2.3).
 *
 * - The target fd is registered as fixed file 0 and every SQE uses IOSQE_FIXED_FILE (saves
 *   the fget/fput per request; required for SQPOLL before 5.11).
 * - IORING_SETUP_SUBMIT_ALL: one bad SQE does not stop the rest of the batch; its error comes
 *   back in its CQE.
 * - The SQ has at least `depth` entries and the CQ twice that; the depth rule in blkio.c keeps
 *   queued + in-flight <= depth, so neither io_uring_get_sqe nor the CQ can run out.
 * - Completions are announced on the engine's eventfd (io_uring_register_eventfd).
 * - Registered buffers use the tagged/updatable table (IORING_REGISTER_BUFFERS2 and
 *   IORING_REGISTER_BUFFERS_UPDATE, kernel 5.13+): a slot can be replaced while others are in
 *   use. Single-iovec I/O inside a registered buffer goes out as READ/WRITE_FIXED; multi-iovec
 *   I/O inside one registered buffer as READV/WRITEV_FIXED where the kernel has them (6.15+;
 *   liburing 2.3 predates them, so their opcode numbers are defined here and probed).
 * - Discard: IORING_OP_FALLOCATE(PUNCH_HOLE|KEEP_SIZE) on files; block devices take
 *   BLKDISCARD inline (fallocate on a bdev means "zero out", not "discard").
 */
#define SX_LOG_MODULE "blkio"
#include "clock.h"
#include "log.h"

#include "blkio/blkio_impl.h"

#include <errno.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Kernel 6.15 uapi, not in liburing 2.3's copy of io_uring.h. */
#define SX_IORING_OP_READV_FIXED  60
#define SX_IORING_OP_WRITEV_FIXED 61

struct uring_state {
    struct io_uring ring;
    bool ring_ok;
    bool iopoll;
};

static void uring_close(struct sx_bio *b)
{
    struct uring_state *s = b->priv;

    if (!s)
        return;
    if (s->ring_ok)
        io_uring_queue_exit(&s->ring);   /* after sx_bio_close's drain and cancel */
    free(s);
    b->priv = NULL;
}

static int uring_open(struct sx_bio *b, unsigned flags)
{
    struct uring_state *s = calloc(1, sizeof(*s));
    struct io_uring_params p;
    struct io_uring_probe *probe;
    int rc;

    if (!s)
        return -ENOMEM;
    b->priv = s;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    p.cq_entries = 2 * b->depth;
    if (flags & SX_BIO_F_SQPOLL) {
        p.flags |= IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 100;                 /* ms of idle spinning before it sleeps */
    }
    if (flags & SX_BIO_F_IOPOLL) {
        p.flags |= IORING_SETUP_IOPOLL;
        s->iopoll = true;
    }
    rc = io_uring_queue_init_params(b->depth, &s->ring, &p);
    if (rc == -EINVAL && (p.flags & IORING_SETUP_SUBMIT_ALL)) {
        /* Kernels before 5.18 do not know SUBMIT_ALL; submission errors then cut the batch
         * short, which submit handles by retrying the remainder. */
        p.flags &= ~IORING_SETUP_SUBMIT_ALL;
        rc = io_uring_queue_init_params(b->depth, &s->ring, &p);
    }
    if (rc < 0) {
        sx_debug("io_uring_queue_init_params(%u, flags %#x): %s", b->depth, p.flags,
                 strerror(-rc));
        goto err;
    }
    s->ring_ok = true;
    rc = io_uring_register_files(&s->ring, &b->fd, 1);
    if (rc < 0)
        goto err;
    rc = io_uring_register_eventfd(&s->ring, b->efd);
    if (rc < 0)
        goto err;
    probe = io_uring_get_probe_ring(&s->ring);
    if (probe) {
        b->vec_fixed = io_uring_opcode_supported(probe, SX_IORING_OP_READV_FIXED) &&
                       io_uring_opcode_supported(probe, SX_IORING_OP_WRITEV_FIXED);
        io_uring_free_probe(probe);
    }
    return 0;
err:
    uring_close(b);
    return rc;
}

/* The registered buffer all of iov lies in, or -1. */
static int uring_fixed_index(struct sx_bio *b, const struct iovec *iov, int iovcnt)
{
    if (b->reg_idx_n == 0)
        return -1;
    int idx = sx_bio_reg_find(b, iov[0].iov_base, iov[0].iov_len);
    if (idx < 0 || iovcnt == 1)
        return idx;
    if (!b->vec_fixed)
        return -1;
    const struct iovec *r = &b->reg_slots[idx];
    for (int i = 1; i < iovcnt; i++) {
        uintptr_t a = (uintptr_t)iov[i].iov_base, base = (uintptr_t)r->iov_base;
        if (a < base || a - base > r->iov_len || iov[i].iov_len > r->iov_len - (a - base))
            return -1;
    }
    return idx;
}

static int uring_queue(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct uring_state *s = b->priv;
    struct io_uring_sqe *sqe;
    bool wr = op->opc == SX_BIO_OP_WRITE;
    int idx;

    if (op->opc == SX_BIO_OP_DISCARD && b->blkdev)
        return SX_BIO_INLINE;   /* BLKDISCARD at submit time, see the top of the file */
    sqe = io_uring_get_sqe(&s->ring);
    if (!sqe)
        return -EAGAIN;         /* cannot happen under the depth rule */
    switch (op->opc) {
    case SX_BIO_OP_READ:
    case SX_BIO_OP_WRITE:
        idx = uring_fixed_index(b, op->iov, op->iovcnt);
        if (idx >= 0 && op->iovcnt == 1) {
            if (wr)
                io_uring_prep_write_fixed(sqe, 0, op->iov[0].iov_base,
                                          (unsigned)op->iov[0].iov_len, op->off, idx);
            else
                io_uring_prep_read_fixed(sqe, 0, op->iov[0].iov_base,
                                         (unsigned)op->iov[0].iov_len, op->off, idx);
            b->st.fixed++;
        } else if (idx >= 0) {
            io_uring_prep_rw(wr ? SX_IORING_OP_WRITEV_FIXED : SX_IORING_OP_READV_FIXED, sqe, 0,
                             op->iov, (unsigned)op->iovcnt, op->off);
            sqe->buf_index = (__u16)idx;
            b->st.fixed++;
        } else if (wr) {
            io_uring_prep_writev(sqe, 0, op->iov, (unsigned)op->iovcnt, op->off);
        } else {
            io_uring_prep_readv(sqe, 0, op->iov, (unsigned)op->iovcnt, op->off);
        }
        break;
    case SX_BIO_OP_FLUSH:
        io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
        break;
    case SX_BIO_OP_DISCARD:
        io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                op->off, op->len);
        break;
    }
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, op->cookie);
    return 0;
}

static int uring_submit(struct sx_bio *b)
{
    struct uring_state *s = b->priv;
    int r;

    do {
        r = io_uring_submit(&s->ring);
    } while (r == -EINTR);
    if (r == -EBUSY)
        r = -EAGAIN;            /* CQ overflow backlog: reap first */
    if (r < 0)
        return r;
    /* Never more than the engine holds (blkio.c has already taken the inline ones off queued). */
    return r > (int)b->queued ? (int)b->queued : r;
}

static int uring_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    struct uring_state *s = b->priv;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0, seen = 0;

    if (s->iopoll && io_uring_cq_ready(&s->ring) == 0 && b->inflight)
        (void)io_uring_get_events(&s->ring);   /* IOPOLL: completions only appear when polled */
    io_uring_for_each_cqe(&s->ring, head, cqe) {
        if (n == max)
            break;
        seen++;
        out[n].cookie = cqe->user_data;
        out[n].res = cqe->res;
        out[n].pad_ = 0;
        n++;
    }
    io_uring_cq_advance(&s->ring, seen);
    return (int)n;
}

static bool uring_ready(struct sx_bio *b)
{
    struct uring_state *s = b->priv;
    return io_uring_cq_ready(&s->ring) > 0;
}

/* IOPOLL: nothing raises an interrupt-driven wakeup, and on this kernel a GETEVENTS wait with
 * a timeout (IORING_ENTER_EXT_ARG) never sees requests that io-wq completed (measured: -ETIME
 * forever for an O_DIRECT write into a file hole, while a plain wait_cqe returns at once).
 * Polling is what IOPOLL is for: spin on GETEVENTS until something shows up or time is up. */
static int uring_wait_iopoll(struct sx_bio *b, int timeout_ms)
{
    struct uring_state *s = b->priv;
    uint64_t t0 = sx_now_ns();
    int rc;

    for (;;) {
        rc = io_uring_get_events(&s->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
            return rc;
        if (io_uring_cq_ready(&s->ring))
            return 0;
        if (timeout_ms >= 0 && sx_now_ns() - t0 >= (uint64_t)timeout_ms * 1000000u)
            return -ETIMEDOUT;
    }
}

static int uring_wait(struct sx_bio *b, int timeout_ms)
{
    struct uring_state *s = b->priv;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
                                    .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
    int rc;

    if (s->iopoll)
        return uring_wait_iopoll(b, timeout_ms);
    do {
        rc = io_uring_wait_cqe_timeout(&s->ring, &cqe, timeout_ms < 0 ? NULL : &ts);
    } while (rc == -EINTR);
    if (rc == -ETIME)
        return -ETIMEDOUT;
    if (rc < 0)
        return rc;
    /* The CQE stays for reap. The event fd is left readable: a caller that polls it later
     * gets at most one spurious wakeup, and a caller that only waits here saves a read()
     * per wakeup. */
    return 0;
}

/* At close: cancel every request of this ring, whoever submitted it, and wait (1 s at most)
 * while some are still running. Cancelled ones complete with -ECANCELED; a request already
 * under way in the kernel (a read a device is serving) cannot be cancelled and completes when
 * it completes. Closing the ring fd is no substitute: the kernel tears a ring down in a
 * worker after close() has returned, and io-wq may still copy into user memory meanwhile. */
static void uring_cancel(struct sx_bio *b)
{
    struct uring_state *s = b->priv;
    struct io_uring_sync_cancel_reg reg = {
        .fd = -1,
        .flags = IORING_ASYNC_CANCEL_ANY,
        .timeout = { .tv_sec = 1, .tv_nsec = 0 },
    };
    int rc = io_uring_register_sync_cancel(&s->ring, &reg);
    if (rc < 0 && rc != -ENOENT && rc != -ETIME)
        sx_warn("io_uring sync cancel: %s", strerror(-rc));   /* before 6.0: -EINVAL */
}

const struct sx_bio_ops sx_bio_uring_ops = {
    .open = uring_open,
    .close = uring_close,
    .queue = uring_queue,
    .submit = uring_submit,
    .reap = uring_reap,
    .ready = uring_ready,
    .wait = uring_wait,
    .cancel = uring_cancel,
};

/* ---- registered buffers ---------------------------------------------------------------- */

int sx_bio_uring_register(struct sx_bio *b, const struct iovec *iov, unsigned n)
{
    struct uring_state *s = b->priv;
    /* Tagged registration (REGISTER_BUFFERS2) makes every slot updatable and accepts
     * {NULL, 0} as an empty slot. Tags are unused (0: no tag CQE). */
    __u64 *tags = calloc(n, sizeof(*tags));
    int rc;

    if (!tags)
        return -ENOMEM;
    rc = io_uring_register_buffers_tags(&s->ring, iov, tags, n);
    free(tags);
    return rc < 0 ? rc : 0;
}

int sx_bio_uring_update(struct sx_bio *b, unsigned slot, const struct iovec *iov)
{
    struct uring_state *s = b->priv;
    __u64 tag = 0;
    int rc = io_uring_register_buffers_update_tag(&s->ring, slot, iov, &tag, 1);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : -EIO;
}

void sx_bio_uring_unregister(struct sx_bio *b)
{
    struct uring_state *s = b->priv;
    if (s && s->ring_ok)
        (void)io_uring_unregister_buffers(&s->ring);
}
