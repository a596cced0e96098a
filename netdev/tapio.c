/* Batched frame I/O on a TAP queue fd through io_uring; see tap.h. */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/tap.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POLL_TAG UINT64_MAX          /* user_data of the multishot poll on the fd */
#define CANCEL_TAG (UINT64_MAX - 1)  /* ... and of its removal */

struct sx_tap_io {
    int fd;
    int epfd;              /* an epoll set holding fd: what the ring's poll watches */
    bool syscalls;         /* SX_TAP_IO_SYSCALLS, or io_uring refused: never a ring */
    bool uring;            /* the ring below is set up (by thread `owner`) */
    bool hint;             /* the ring can tell of new frames (DEFER_TASKRUN + TASKRUN_FLAG) */
    bool polling;          /* the multishot poll on fd is armed */
    bool drained;          /* the last read burst found the queue empty, and no wake since */
    pid_t owner;
    unsigned rhint;        /* reads to ask for next time */
    struct io_uring ring;
    struct sx_tap_io_stats st;
};

static pid_t self_tid(void)
{
    static __thread pid_t tid;
    if (!tid)
        tid = (pid_t)syscall(SYS_gettid);
    return tid;
}

int sx_tap_io_open(struct sx_tap_io **out, int fd, unsigned flags)
{
    *out = NULL;
    if (fd < 0 || (flags & ~SX_TAP_IO_SYSCALLS))
        return -EINVAL;
    struct sx_tap_io *io = calloc(1, sizeof(*io));
    if (!io)
        return -ENOMEM;
    io->fd = fd;
    io->epfd = -1;
    io->rhint = 1;
    io->syscalls = flags & SX_TAP_IO_SYSCALLS;
    *out = io;
    return 0;
}

/* Arm the multishot poll that tells sx_tap_io_rx_ready about new frames (submitted with the
 * next burst). It watches the epoll set, not the TAP: a request holds its file until the ring
 * lets it go, and a ring's teardown is deferred to a kernel worker (for a process that dies,
 * or a ring dropped from another thread), while an epoll set holds no reference on the files
 * in it: the TAP goes as soon as its fds close. */
static void arm_poll(struct sx_tap_io *io)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    if (!sqe)
        return;
    io_uring_prep_poll_multishot(sqe, io->epfd, POLLIN);
    io_uring_sqe_set_data64(sqe, POLL_TAG);
    io->polling = true;
}

/* Set the ring up for the calling thread. The ring defers its task work to this thread's own
 * io_uring_enter calls (DEFER_TASKRUN, hence one submitter) and raises IORING_SQ_TASKRUN in
 * shared memory when some is pending: the multishot poll on the TAP then says "a frame came"
 * without a system call, and never interrupts the thread's other sleeps. Kernels without
 * those get a plain ring and no hint. */
static int ring_setup(struct sx_tap_io *io)
{
    struct io_uring_params p = { .flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                                          IORING_SETUP_DEFER_TASKRUN |
                                          IORING_SETUP_TASKRUN_FLAG };
    bool hint = true;
    int rc = io_uring_queue_init_params(SX_TAP_IO_MAX + 2, &io->ring, &p);
    if (rc == -EINVAL) {
        hint = false;
        rc = io_uring_queue_init(SX_TAP_IO_MAX + 2, &io->ring, 0);
    }
    if (rc < 0)
        return rc;
    io->uring = true;
    io->owner = self_tid();
    io->drained = false;
    io->polling = false;
    io->hint = false;
    if (hint) {
        struct epoll_event ev = { .events = EPOLLIN };
        io->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (io->epfd >= 0 && epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0) {
            io->hint = true;
            arm_poll(io);
        }
    }
    return 0;
}

/* Tear the ring down. From its own thread the poll is removed first (from another one that
 * cannot be done: one submitter; the kernel's deferred teardown does it). Either way nothing
 * of the ring holds the TAP: requests name it only while a burst runs, the poll watches the
 * epoll set. */
static void ring_teardown(struct sx_tap_io *io)
{
    if (!io->uring)
        return;
    if (io->owner == self_tid()) {
        if (io->polling) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
            if (sqe) {
                io_uring_prep_poll_remove(sqe, POLL_TAG);
                io_uring_sqe_set_data64(sqe, CANCEL_TAG);
                /* two completions: the removal's and the poll's last */
                int rc;
                do {
                    rc = io_uring_submit_and_wait(&io->ring, 2);
                } while (rc == -EINTR);
            }
        }
    }
    io_uring_queue_exit(&io->ring);
    if (io->epfd >= 0)
        close(io->epfd);
    io->epfd = -1;
    io->uring = io->polling = io->hint = false;
}

void sx_tap_io_release(struct sx_tap_io *io)
{
    if (io)
        ring_teardown(io);
}

void sx_tap_io_close(struct sx_tap_io *io)
{
    if (!io)
        return;
    ring_teardown(io);
    free(io);
}

/* The ring of the calling thread: set up on first use, and again when the handle moved to
 * another thread. false: a system call a frame. */
static bool ring_ready(struct sx_tap_io *io)
{
    if (io->syscalls)
        return false;
    if (io->uring && io->owner != self_tid())
        ring_teardown(io);
    if (!io->uring) {
        int rc = ring_setup(io);
        if (rc < 0) {
            sx_log_ratelimited(SX_LOG_INFO, "io_uring unavailable (%s): a system call per "
                               "frame", strerror(-rc));
            io->syscalls = true;
            return false;
        }
    }
    return true;
}

bool sx_tap_io_batched(struct sx_tap_io *io)
{
    return ring_ready(io);
}

const struct sx_tap_io_stats *sx_tap_io_stats(const struct sx_tap_io *io)
{
    return &io->st;
}

bool sx_tap_io_rx_ready(struct sx_tap_io *io)
{
    if (!io->uring || !io->polling || !io->drained || io->owner != self_tid())
        return true;
    /* Task work pending (the poll woke: a frame came), or a completion not yet taken. */
    return (IO_URING_READ_ONCE(*io->ring.sq.kflags) & IORING_SQ_TASKRUN) ||
           io_uring_cq_ready(&io->ring) > 0;
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
            return -EBUSY;   /* cannot happen: n <= entries - 2 and every call drains */
        if (wr)
            io_uring_prep_writev(sqe, io->fd, f[i].iov, f[i].niov, 0);
        else
            io_uring_prep_readv(sqe, io->fd, f[i].iov, f[i].niov, 0);
        sqe->rw_flags = RWF_NOWAIT;
        io_uring_sqe_set_data64(sqe, i);
        f[i].res = -EINPROGRESS;
    }
    /* One enter submits them all; each is issued inline (RWF_NOWAIT never sleeps), so the wait
     * for n completions returns at once. The same enter runs the deferred work of the poll. A
     * signal may cut the wait short: wait again. */
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
            k++;
            if (i == POLL_TAG) {
                io->drained = false;   /* a frame came since the last read burst */
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    io->polling = false;   /* the poll ended (overflow, error): re-arm */
            } else if (i < n) {
                f[i].res = cqe->res;
                seen++;
            }
        }
        io_uring_cq_advance(r, k);
        if (seen < n) {
            do {
                rc = io_uring_wait_cqe(r, &cqe);
            } while (rc == -EINTR);
            io->st.calls++;
            if (rc < 0)
                return rc;
        }
    }
    if (!io->polling && io->hint)
        arm_poll(io);   /* goes with the next submission */
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
    ring_teardown(io);
    io->syscalls = true;
}

int sx_tap_io_write(struct sx_tap_io *io, struct sx_tap_frame *f, unsigned n)
{
    if (n > SX_TAP_IO_MAX)
        return -EINVAL;
    if (!n)
        return 0;
    if (ring_ready(io)) {
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
    if (ring_ready(io)) {
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
            /* A short burst emptied the queue: rx_ready stays false until the poll says a
             * frame came. A full one may have left frames behind: ask for twice as many next
             * time; else for one more than this burst found. */
            io->drained = got < k;
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
