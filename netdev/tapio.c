/* Batched frame I/O on a TAP queue fd through io_uring; see tap.h. */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/tap.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sx_tap_io {
    int fd;
    bool uring;            /* bursts through ring; false: a system call a frame */
    bool fixed;            /* fd registered as fixed file 0 */
    unsigned rhint;        /* reads to ask for next time */
    struct io_uring ring;
    struct sx_tap_io_stats st;
};

int sx_tap_io_open(struct sx_tap_io **out, int fd, unsigned flags)
{
    *out = NULL;
    if (fd < 0 || (flags & ~SX_TAP_IO_SYSCALLS))
        return -EINVAL;
    struct sx_tap_io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    io->fd = fd;
    io->rhint = 1;
    if (!(flags & SX_TAP_IO_SYSCALLS)) {
        /* Every request is issued inline by the submitting call and nothing runs later: no
         * task work to interrupt the thread for. Older kernels lack the flags: try without. */
        int rc = io_uring_queue_init(SX_TAP_IO_MAX, &io->ring,
                                     IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN);
        if (rc == -EINVAL)
            rc = io_uring_queue_init(SX_TAP_IO_MAX, &io->ring, 0);
        if (rc == 0) {
            io->uring = true;
            io->fixed = io_uring_register_files(&io->ring, &fd, 1) == 0;
        } else {
            sx_log_ratelimited(SX_LOG_INFO, "io_uring unavailable (%s): a system call per frame",
                               strerror(-rc));
        }
    }
    *out = io;
    return 0;
}

void sx_tap_io_close(struct sx_tap_io *io)
{
    if (!io)
        return;
    if (io->uring) {
        /* The ring's teardown runs later in a kernel worker: drop its reference on the TAP
         * now, or closing the TAP's fds would leave the device alive for a while (and its
         * name taken). */
        if (io->fixed)
            io_uring_unregister_files(&io->ring);
        io_uring_queue_exit(&io->ring);
    }
    free(io);
}

bool sx_tap_io_batched(const struct sx_tap_io *io)
{
    return io->uring;
}

const struct sx_tap_io_stats *sx_tap_io_stats(const struct sx_tap_io *io)
{
    return &io->st;
}

/* Issue n reads or writes of f[] in one submission and collect every result in f[i].res.
 * 0, or -EOPNOTSUPP when the fd refuses RWF_NOWAIT (nothing was moved then), or -errno when
 * the submission itself failed. */
static int uring_burst(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n, bool wr)
{
    struct io_uring *r = &io->ring;
    for (unsigned i = 0; i < n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(r);
        if (!sqe)
            return -EBUSY;   /* cannot happen: n <= entries and every call drains the ring */
        int fd = io->fixed ? 0 : io->fd;
        if (wr)
            io_uring_prep_writev(sqe, fd, f[i].iov, f[i].niov, 0);
        else
            io_uring_prep_readv(sqe, fd, f[i].iov, f[i].niov, 0);
        if (io->fixed)
            sqe->flags |= IOSQE_FIXED_FILE;
        sqe->rw_flags = RWF_NOWAIT;
        io_uring_sqe_set_data64(sqe, i);
        f[i].res = -EINPROGRESS;
    }
    /* One enter submits them all; each is issued inline (RWF_NOWAIT never sleeps), so the wait
     * for n completions returns at once. A signal may cut the wait short: wait again. */
    int rc;
    do {
        rc = io_uring_submit_and_wait(r, n);
    } while (rc == -EINTR);
    io->st.calls++;
    if (rc < 0)
        return rc;
    unsigned seen = 0;
    while (seen < n) {
        struct io_uring_cqe *cqe;
        unsigned head, k = 0;
        io_uring_for_each_cqe(r, head, cqe) {
            uint64_t i = io_uring_cqe_get_data64(cqe);
            if (i < n)
                f[i].res = cqe->res;
            k++;
        }
        io_uring_cq_advance(r, k);
        seen += k;
        if (seen < n) {
            do {
                rc = io_uring_wait_cqe_nr(r, &cqe, n - seen);
            } while (rc == -EINTR);
            io->st.calls++;
            if (rc < 0)
                return rc;
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (f[i].res == -EOPNOTSUPP)
            return -EOPNOTSUPP;
    return 0;
}

/* io_uring cannot serve this fd (or the ring broke): a system call a frame from now on. */
static void uring_give_up(struct sx_tap_io *io, int why)
{
    sx_log_ratelimited(SX_LOG_WARN, "TAP batched I/O unavailable (%s): a system call per frame",
                       strerror(-why));
    if (io->fixed)
        io_uring_unregister_files(&io->ring);
    io_uring_queue_exit(&io->ring);
    io->uring = false;
    io->fixed = false;
}

int sx_tap_io_write(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n)
{
    if (n > SX_TAP_IO_MAX)
        return -EINVAL;
    if (!n)
        return 0;
    if (io->uring) {
        int rc = uring_burst(io, f, n, true);
        if (rc == 0) {
            int sent = 0;
            for (unsigned i = 0; i < n; i++)
                sent += f[i].res >= 0;
            io->st.writes += (uint64_t)sent;
            return sent;
        }
        uring_give_up(io, rc);
    }
    int sent = 0;
    for (unsigned i = 0; i < n; i++) {
        ssize_t w;
        do {
            w = writev(io->fd, f[i].iov, (int)f[i].niov);
        } while (w < 0 && errno == EINTR);
        io->st.calls++;
        f[i].res = w < 0 ? -errno : (int)w;
        sent += w >= 0;
    }
    io->st.writes += (uint64_t)sent;
    return sent;
}

static void frame_swap(struct sx_tap_frame *a, struct sx_tap_frame *b)
{
    struct sx_tap_frame t = *a;
    *a = *b;
    *b = t;
}

int sx_tap_io_read(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n)
{
    if (n > SX_TAP_IO_MAX)
        return -EINVAL;
    if (!n)
        return 0;
    if (io->uring) {
        unsigned k = io->rhint < n ? io->rhint : n;
        int rc = uring_burst(io, f, k, false);
        if (rc == 0) {
            /* Frames to the front, in order; the first error counts only when nothing came. */
            unsigned got = 0;
            int err = 0;
            for (unsigned i = 0; i < k; i++) {
                if (f[i].res >= 0) {
                    if (i != got)
                        frame_swap(&f[got], &f[i]);
                    got++;
                } else if (f[i].res != -EAGAIN && !err) {
                    err = f[i].res;
                }
            }
            io->st.reads += got;
            io->st.empty_reads += k - got;
            /* A full burst may have left frames behind: ask for twice as many next time; else
             * for one more than this burst found. */
            io->rhint = got == k ? (2 * k < SX_TAP_IO_MAX ? 2 * k : SX_TAP_IO_MAX) : got + 1;
            return got || !err ? (int)got : err;
        }
        uring_give_up(io, rc);
    }
    unsigned got = 0;
    while (got < n) {
        ssize_t r = readv(io->fd, f[got].iov, (int)f[got].niov);
        io->st.calls++;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            if (err == -EAGAIN)
                io->st.empty_reads++;
            if (err == -EAGAIN || got)
                break;
            return err;
        }
        f[got++].res = (int)r;
    }
    io->st.reads += got;
    return (int)got;
}
