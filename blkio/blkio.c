/*
 * blkio's engine-neutral API: which kind for which target, argument checks, capacity, the
 * event fd, registered-buffer bookkeeping. It picks a kind's ops table (uring.c, aio.c,
 * sync.c); what those call back into is engine.c.
 */
#define SX_LOG_MODULE "blkio"
#include "clock.h"
#include "log.h"

#include "blkio/blkio_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

/*
 * Which engine for which target. Measured on this machine (2 cores, kernel 6.18, fio 3.33,
 * 4 KiB randread QD1 unless said otherwise; DESIGN.md has the table):
 *
 *   tmpfs file:                 psync 837 k  libaio 473 k  io_uring 20 k IOPS (QD32: 669 k);
 *                               fio's mmap engine ~1.5x psync (no system call at all)
 *     shmem reads cannot be issued non-blocking, so io_uring punts every one to an io-wq
 *     worker thread: ~43 us of cross-core wakeups per request at QD1. A copy from the mapped
 *     file is cheaper still than preadv in the ring thread: no system call, which costs
 *     0.5-3 us here (page-table isolation in a VM), against ~0.3 us for the 4 KiB copy.
 *   ext4 file, buffered, in the page cache: psync 606 k  io_uring 379 k IOPS;
 *     4 KiB randwrite buffered: psync 103 k  io_uring 17.5 k (ext4 punts buffered writes).
 *   ext4 file, buffered, NOT cached: psync 13 k  io_uring 12 k at QD1, io_uring 62 k at QD32:
 *     the one case where a buffered file wants io_uring. A backend that serves a disk file
 *     should open it O_DIRECT (then it is io_uring, below); buffered means "page cache".
 *   O_DIRECT file on the virtio disk: io_uring 15 k QD1 / 69 k QD32; the request really
 *     waits for the device, so it must be asynchronous, and io_uring completes it inline
 *     without a worker (libaio is the fallback if io_uring cannot be set up).
 *   block device: the same as O_DIRECT (a backend opens block devices O_DIRECT).
 *
 * So: io_uring for block devices and O_DIRECT files, MEM for tmpfs and ramfs files (memory
 * already: mapping them costs nothing and nothing can block), SYNC for buffered files on disk
 * filesystems (their cached reads are memcpys, their writes land in the page cache; flushes
 * are the only blocking call, and blkback's flush waits for its writes anyway; a mapping
 * would turn a disk error or a full filesystem into a fault instead of an error code, and a
 * page-cache miss into a fault the ring thread sleeps in all the same).
 */
enum sx_bio_kind sx_bio_kind_auto(int fd, const char *path)
{
    struct stat st;
    struct statfs sfs;
    int flags = 0;

    if (fd >= 0) {
        if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
            return SX_BIO_URING;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
            flags = 0;
    } else if (path) {
        if (stat(path, &st) < 0 || statfs(path, &sfs) < 0)
            return SX_BIO_URING;
    } else {
        return SX_BIO_URING;
    }
    if (S_ISBLK(st.st_mode))
        return SX_BIO_URING;
    if ((unsigned long)sfs.f_type == TMPFS_MAGIC || (unsigned long)sfs.f_type == RAMFS_MAGIC)
        return S_ISREG(st.st_mode) && st.st_size > 0 ? SX_BIO_MEM : SX_BIO_SYNC;
    if (fd >= 0 && (flags & O_DIRECT))
        return SX_BIO_URING;
    /* A buffered regular file (or a path we will presumably open buffered): page cache. */
    if (S_ISREG(st.st_mode))
        return SX_BIO_SYNC;
    return SX_BIO_URING;
}

const char *sx_bio_kind_name(enum sx_bio_kind kind)
{
    switch (kind) {
    case SX_BIO_AUTO: return "auto";
    case SX_BIO_URING: return "io_uring";
    case SX_BIO_AIO: return "aio";
    case SX_BIO_SYNC: return "sync";
    case SX_BIO_MEM: return "mem";
    case SX_BIO_RBD: return "rbd";
    case SX_BIO_NBD: return "nbd";
    }
    return "?";
}

enum sx_bio_kind sx_bio_kind(const struct sx_bio *b)
{
    return b->kind;
}

/* How long close waits for operations in flight: while they keep completing, at most
 * DRAIN_IDLE_MS without a completion and DRAIN_TOTAL_MS in all (a dead device must not hang
 * the caller forever). */
#define DRAIN_IDLE_MS 1000
#define DRAIN_TOTAL_MS 10000

static _Atomic uint64_t abandoned_ops;

/* Reap and drop completions until nothing is in flight or they stop coming. */
static void bio_drain(struct sx_bio *b)
{
    struct sx_bio_cpl c[64];
    int64_t start = (int64_t)sx_now_ms(), last = start;

    while (b->inflight > 0) {
        if (sx_bio_reap(b, c, 64) > 0) {
            last = (int64_t)sx_now_ms();
            continue;
        }
        int64_t now = (int64_t)sx_now_ms();
        if (now - last >= DRAIN_IDLE_MS || now - start >= DRAIN_TOTAL_MS)
            break;
        sx_bio_wait(b, 100);
    }
}

unsigned sx_bio_close(struct sx_bio *b)
{
    unsigned left = 0;

    if (!b)
        return 0;
    if (b->ops) {
        /* Operations in flight reference caller memory: let them finish, then cancel what
         * does not, and wait for the cancellations. */
        bio_drain(b);
        if (b->inflight && b->ops->cancel) {
            sx_warn("closing %s engine: cancelling %u operations still in flight",
                    sx_bio_kind_name(b->kind), b->inflight);
            b->ops->cancel(b);
            bio_drain(b);
        }
        left = b->inflight;
        if (left) {
            /* Never hand their buffers back: the caller leaks them (see io.h). */
            atomic_fetch_add(&abandoned_ops, left);
            sx_err("closing %s engine with %u operations still running: their buffers stay "
                   "allocated", sx_bio_kind_name(b->kind), left);
        }
        b->ops->close(b);
    }
    if (b->efd >= 0)
        close(b->efd);
    free(b->reg_slots);
    free(b->reg_idx);
    free(b->icq);
    free(b->inl);
    free(b);
    return left;
}

uint64_t sx_bio_abandoned(void)
{
    return atomic_load(&abandoned_ops);
}

int sx_bio_open(struct sx_bio **out, enum sx_bio_kind kind, int fd, unsigned depth,
                unsigned flags)
{
    /* Network kinds have no fd: sx_bio_open_target. */
    if (kind == SX_BIO_AUTO && fd >= 0)
        kind = sx_bio_kind_auto(fd, NULL);
    const struct sx_bio_ops *ops = kind == SX_BIO_URING ? &sx_bio_uring_ops
                                 : kind == SX_BIO_AIO ? &sx_bio_aio_ops
                                 : kind == SX_BIO_SYNC ? &sx_bio_sync_ops
                                 : kind == SX_BIO_MEM ? &sx_bio_mem_ops : NULL;
    return sx_bio_open_ops(out, ops, kind, fd, depth, flags);
}

/* The engine-neutral part of every open: the struct, its completion queues and event fd.
 * fd is the caller's (-1 for a network target). Then ops->open. */
static int bio_open(struct sx_bio **out, const struct sx_bio_ops *ops, enum sx_bio_kind kind,
                    int fd, bool blkdev, struct sx_bio_target *t, unsigned depth,
                    unsigned flags)
{
    struct sx_bio *b;
    int rc;

    *out = NULL;
    if (depth == 0 || depth > SX_BIO_MAX_DEPTH || !ops)
        return -EINVAL;
    if (kind != SX_BIO_URING && (flags & (SX_BIO_F_SQPOLL | SX_BIO_F_IOPOLL)))
        return -EINVAL;
    if (flags & ~(SX_BIO_F_SQPOLL | SX_BIO_F_IOPOLL | SX_BIO_F_QUIET_INLINE))
        return -EINVAL;

    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->efd = -1;
    b->poll_fd = -1;
    b->fd = fd;
    b->kind = kind;
    b->depth = depth;
    b->blkdev = blkdev;
    b->target = t;
    b->icq = calloc(depth, sizeof(*b->icq));
    b->inl = calloc(depth, sizeof(*b->inl));
    if (!b->icq || !b->inl) {
        rc = -ENOMEM;
        goto err_free;
    }
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0) {
        rc = -errno;
        goto err_free;
    }
    b->quiet_inline = flags & SX_BIO_F_QUIET_INLINE;
    b->ops = ops;
    rc = b->ops->open(b, flags & ~SX_BIO_F_QUIET_INLINE);
    if (rc < 0) {
        b->ops = NULL;          /* open unwound itself */
        goto err_free;
    }
    *out = b;
    return 0;

err_free:
    sx_bio_close(b);
    return rc;
}

int sx_bio_open_ops(struct sx_bio **out, const struct sx_bio_ops *ops, enum sx_bio_kind kind,
                    int fd, unsigned depth, unsigned flags)
{
    struct stat st;

    *out = NULL;
    if (fd < 0)
        return -EINVAL;
    if (fstat(fd, &st) < 0)
        return -errno;
    return bio_open(out, ops, kind, fd, S_ISBLK(st.st_mode), NULL, depth, flags);
}

int sx_bio_open_target(struct sx_bio **out, struct sx_bio_target *t, unsigned depth)
{
    *out = NULL;
    if (!t)
        return -EINVAL;
    return bio_open(out, t->ops, t->info.kind, -1, false, t, depth, 0);
}

void sx_bio_set_stats(struct sx_bio *b, struct sx_stats *st, unsigned base)
{
    b->tstats = st;
    b->tstats_base = base;
}

static int bio_queue(struct sx_bio *b, const struct sx_bio_op *op)
{
    int rc;

    if (b->queued + b->inflight >= b->depth) {
        b->st.eagain++;
        return -EAGAIN;
    }
    rc = b->ops->queue(b, op);
    if (rc == -EAGAIN)
        b->st.eagain++;
    if (rc < 0)
        return rc;
    if (rc == SX_BIO_INLINE)
        b->inl[b->inl_n++] = *op;   /* room: inl_n <= queued < depth */
    b->queued++;
    return 0;
}

int sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt, uint64_t off,
              uint64_t cookie)
{
    if (!iov || iovcnt <= 0 || iovcnt > SX_BIO_MAX_IOVCNT || off > (uint64_t)INT64_MAX)
        return -EINVAL;
    struct sx_bio_op op = {
        .opc = write ? SX_BIO_OP_WRITE : SX_BIO_OP_READ,
        .iov = iov, .iovcnt = iovcnt, .off = off, .cookie = cookie,
    };
    return bio_queue(b, &op);
}

int sx_bio_flush(struct sx_bio *b, uint64_t cookie)
{
    struct sx_bio_op op = { .opc = SX_BIO_OP_FLUSH, .cookie = cookie };
    return bio_queue(b, &op);
}

int sx_bio_discard(struct sx_bio *b, uint64_t off, uint64_t len, uint64_t cookie)
{
    if (len == 0 || off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
        return -EINVAL;
    struct sx_bio_op op = { .opc = SX_BIO_OP_DISCARD, .off = off, .len = len, .cookie = cookie };
    return bio_queue(b, &op);
}

int sx_bio_submit(struct sx_bio *b)
{
    unsigned icq_before = b->icq_count;
    unsigned ninl = b->inl_n;
    int n = 0;

    if (b->queued == 0)
        return 0;
    /* Inline operations first: they complete here, into the inline completion queue. */
    for (unsigned i = 0; i < ninl; i++)
        sx_bio_icq_push(b, b->inl[i].cookie, b->ops->exec ? b->ops->exec(b, &b->inl[i])
                                                          : sx_bio_exec_sync(b, &b->inl[i]));
    b->inl_n = 0;
    b->queued -= ninl;
    b->inflight += ninl;
    b->st.submitted += ninl;
    if (b->queued)
        n = b->ops->submit(b);
    if (n == -EAGAIN)
        b->st.eagain++;
    if (n > 0) {
        b->queued -= (unsigned)n;
        b->inflight += (unsigned)n;
        b->st.submitted += (unsigned)n;
    }
    if (ninl)
        n = n < 0 ? (int)ninl : n + (int)ninl;
    /* Completions made in this thread wake a poller like kernel ones do: one write a batch
     * (none for a caller that reaps them at once). */
    if (b->icq_count > icq_before && !b->quiet_inline)
        sx_bio_event_signal(b);
    return n;
}

int sx_bio_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    unsigned n = sx_bio_icq_pop(b, out, max);

    if (n < max) {
        int k = b->ops->reap(b, out + n, max - n);
        if (k > 0)
            n += (unsigned)k;
    }
    for (unsigned i = 0; i < n; i++)
        if (out[i].res < 0)
            b->st.errors++;
    b->st.completed += n;
    b->inflight -= n <= b->inflight ? n : b->inflight;
    b->maybe_more = n == max && max > 0;
    return (int)n;
}

int sx_bio_event_fd(const struct sx_bio *b)
{
    return b->poll_fd >= 0 ? b->poll_fd : b->efd;
}

void sx_bio_event_ack(struct sx_bio *b)
{
    uint64_t v;
    /* Clear the flag first: an inline completion after this point must write again. */
    b->efd_signaled = false;
    ssize_t r = read(b->efd, &v, sizeof(v));
    (void)r;                    /* EAGAIN: nothing to clear */
}

int sx_bio_wait(struct sx_bio *b, int timeout_ms)
{
    struct pollfd p = { .fd = b->efd, .events = POLLIN };
    int rc;

    if (b->inflight == 0)
        return -ETIMEDOUT;      /* nothing submitted can complete: do not sleep */
    if (b->icq_count || b->maybe_more || b->ops->ready(b))
        return 0;
    if (b->ops->wait)
        return b->ops->wait(b, timeout_ms);
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return -ETIMEDOUT;
    sx_bio_event_ack(b);
    return 0;
}

bool sx_bio_ready(const struct sx_bio *b)
{
    return b->icq_count || b->maybe_more || b->ops->ready((struct sx_bio *)b);
}

unsigned sx_bio_busy(const struct sx_bio *b)
{
    return b->queued + b->inflight;
}

void sx_bio_get_stats(const struct sx_bio *b, struct sx_bio_stats *out)
{
    *out = b->st;
}

/* ---- registered buffers ---------------------------------------------------------------- */

static int reg_cmp(const void *x, const void *y)
{
    const struct sx_bio_reg *a = x, *c = y;
    return a->base < c->base ? -1 : a->base > c->base;
}

/* Rebuild the sorted index from reg_slots (registration and slot updates only, not hot). */
static void reg_reindex(struct sx_bio *b)
{
    unsigned n = 0;

    for (unsigned i = 0; i < b->reg_n; i++) {
        if (!b->reg_slots[i].iov_base || !b->reg_slots[i].iov_len)
            continue;
        b->reg_idx[n++] = (struct sx_bio_reg){ (uintptr_t)b->reg_slots[i].iov_base,
                                               b->reg_slots[i].iov_len, i };
    }
    qsort(b->reg_idx, n, sizeof(*b->reg_idx), reg_cmp);
    b->reg_idx_n = n;
}

int sx_bio_register_buffers(struct sx_bio *b, const struct iovec *iov, unsigned n)
{
    int rc;

    if (b->kind != SX_BIO_URING)
        return -EOPNOTSUPP;
    if (!iov || n == 0 || n > SX_BIO_MAX_BUFFERS)
        return -EINVAL;
    sx_bio_unregister_buffers(b);
    b->reg_slots = calloc(n, sizeof(*b->reg_slots));
    b->reg_idx = calloc(n, sizeof(*b->reg_idx));
    if (!b->reg_slots || !b->reg_idx) {
        rc = -ENOMEM;
        goto err;
    }
    rc = sx_bio_uring_register(b, iov, n);
    if (rc < 0)
        goto err;
    memcpy(b->reg_slots, iov, n * sizeof(*iov));
    b->reg_n = n;
    reg_reindex(b);
    return 0;
err:
    free(b->reg_slots);
    free(b->reg_idx);
    b->reg_slots = NULL;
    b->reg_idx = NULL;
    return rc;
}

int sx_bio_update_buffer(struct sx_bio *b, unsigned slot, const struct iovec *iov)
{
    static const struct iovec empty = { NULL, 0 };
    int rc;

    if (b->kind != SX_BIO_URING)
        return -EOPNOTSUPP;
    if (slot >= b->reg_n)
        return -EINVAL;
    if (!iov)
        iov = &empty;
    rc = sx_bio_uring_update(b, slot, iov);
    if (rc < 0)
        return rc;
    b->reg_slots[slot] = *iov;
    reg_reindex(b);
    return 0;
}

void sx_bio_unregister_buffers(struct sx_bio *b)
{
    if (!b || !b->reg_slots)
        return;
    sx_bio_uring_unregister(b);
    free(b->reg_slots);
    free(b->reg_idx);
    b->reg_slots = NULL;
    b->reg_idx = NULL;
    b->reg_n = b->reg_idx_n = 0;
}

bool sx_bio_has_vec_fixed(const struct sx_bio *b)
{
    return b->kind == SX_BIO_URING && b->vec_fixed;
}
