/*
 * blkio: the I/O engines of blkback's rings and the AHCI disk. One opaque engine per thread,
 * four local implementations behind it and two network ones (see "network targets" below).
 *
 *   SX_BIO_URING  io_uring (liburing): batched submission in one syscall, registered file
 *                 always, registered buffers (read/write_fixed) on request, optional SQPOLL /
 *                 IOPOLL. The default for O_DIRECT files and block devices.
 *   SX_BIO_AIO    libaio: io_submit batches, IOCB_CMD_FDSYNC flushes, eventfd via
 *                 io_set_eventfd. A fallback where io_uring is unavailable.
 *   SX_BIO_SYNC   preadv/pwritev/fdatasync executed in the submitting thread during
 *                 sx_bio_submit. The right engine for tmpfs and page-cache-only targets, where
 *                 io_uring punts every request to a worker thread (see sx_bio_kind_auto).
 *   SX_BIO_MEM    the file mapped once; reads and writes are memcpy in the submitting thread
 *                 during sx_bio_submit, no system call per request (a fault of the mapping
 *                 fails that operation with -EIO). The engine for tmpfs and ramfs files.
 *
 * Ownership, not locks: an engine belongs to one thread (the ring thread that opened it or
 * was handed it); no call is thread-safe against another call on the same engine.
 *
 * Usage per batch:
 *     sx_bio_readv/_writev/_flush/_discard(...)   queue, nothing reaches the kernel yet
 *     sx_bio_submit(b)                            the whole batch in one syscall
 *     poll(sx_bio_event_fd(b)) or sx_bio_wait(b)  sleep until something completed
 *     sx_bio_event_ack(b); sx_bio_reap(b, ...)    ack first, then reap until it returns 0
 *
 * Capacity: `depth` bounds queued + in-flight (submitted, not yet reaped) operations. A queue
 * call on a full engine returns -EAGAIN and counts it (backpressure: reap, then retry); any
 * other negative return is a real error. An operation that the kernel rejects is never lost:
 * its error comes back as the completion's res.
 *
 * Lifetimes: the iovec array passed to a queue call and the buffers it points at must stay
 * valid until that operation's completion is reaped (with SQPOLL the kernel reads the SQE, and
 * so the iovec array, after sx_bio_submit has returned).
 *
 * Every function returning int returns 0 (or a count) on success and -errno on failure.
 */
#ifndef SPLITXEN_BLKIO_H
#define SPLITXEN_BLKIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct sx_bio;

enum sx_bio_kind {
    SX_BIO_AUTO = 0,            /* sx_bio_kind_auto() picks one of the four local kinds */
    SX_BIO_URING,
    SX_BIO_AIO,
    SX_BIO_SYNC,
    SX_BIO_MEM,
    SX_BIO_RBD,                 /* a Ceph RBD image (librbd): sx_bio_open_target only */
    SX_BIO_NBD,                 /* an NBD export (libnbd): sx_bio_open_target only */
};

/* sx_bio_open flags */
#define SX_BIO_F_SQPOLL  (1u << 0)   /* io_uring: kernel SQ polling thread (burns a CPU while busy) */
#define SX_BIO_F_IOPOLL  (1u << 1)   /* io_uring: completion polling; O_DIRECT on a bdev with poll queues */
/* Any kind: operations completed inline (SYNC, MEM, discards of block devices) do not make the
 * event fd readable. For a caller that reaps after every submit (they are there at once), and
 * acks and reaps before it sleeps on the fd: a system call saved per batch. */
#define SX_BIO_F_QUIET_INLINE (1u << 2)

/* Largest depth an engine accepts, and the most iovecs one operation may carry (IOV_MAX). */
#define SX_BIO_MAX_DEPTH   4096u
#define SX_BIO_MAX_IOVCNT  1024

struct sx_bio_cpl {
    uint64_t cookie;            /* as given to the queue call */
    int32_t res;                /* bytes transferred (read/write), 0 (flush/discard), or -errno */
    uint32_t pad_;
};

struct sx_bio_stats {
    uint64_t submitted;         /* operations handed to the kernel (or executed, for SYNC) */
    uint64_t completed;         /* completions reaped */
    uint64_t errors;            /* completions with res < 0 */
    uint64_t eagain;            /* queue calls refused with -EAGAIN, submits that hit -EAGAIN */
    uint64_t fixed;             /* read/writes that used a registered buffer (io_uring) */
    /* Network targets only (SX_BIO_TST_* below): */
    uint64_t disconnects;       /* the target's connection was lost (or stopped answering) */
    uint64_t reconnects;        /* ... and came back */
    uint64_t failed;            /* operations failed because the target was unreachable */
};

/*
 * Open an engine of `kind` on `fd` (not owned: the caller keeps and closes it after
 * sx_bio_close). depth: 1..SX_BIO_MAX_DEPTH. flags: SX_BIO_F_* (SQPOLL and IOPOLL io_uring
 * only: -EINVAL for other kinds). Returns 0 or -errno (-ENOSYS/-EPERM/-ENOMEM when the kernel refuses io_uring
 * or aio contexts; the caller may fall back to another kind).
 */
int sx_bio_open(struct sx_bio **out, enum sx_bio_kind kind, int fd, unsigned depth,
                unsigned flags);
/*
 * Close the engine (NULL-safe; 0 for NULL) so that it never touches caller memory again:
 *   1. operations in flight are waited for while they keep completing (their completions are
 *      dropped): until none is left, or none completed for 1 s, or 10 s in all;
 *   2. what is left is cancelled (io_uring: a synchronous cancel of every request; one already
 *      running in the kernel cannot be cancelled) and waited for the same way.
 * Returns how many operations may still be running after that (a hung device): 0 means no
 * buffer, and no iovec array, given to a queue call is read or written after this call. Any
 * other value means the kernel may still complete those operations into their buffers: the
 * engine itself is freed (the kernel never writes into it), but the caller must never free,
 * unmap or reuse any buffer or iovec array of an operation it has not seen complete; it leaks
 * them instead. sx_bio_abandoned() counts such operations over the whole process.
 * libaio: io_destroy waits for everything in flight, so its engine always returns 0.
 */
unsigned sx_bio_close(struct sx_bio *b);
/* Operations sx_bio_close left running (and whose buffers their callers leaked), process-wide. */
uint64_t sx_bio_abandoned(void);

/*
 * The engine for a target: fd if >= 0, else path (stat'ed). Never returns SX_BIO_AUTO;
 * returns SX_BIO_URING when the target cannot be examined.
 */
enum sx_bio_kind sx_bio_kind_auto(int fd, const char *path);
enum sx_bio_kind sx_bio_kind(const struct sx_bio *b);
const char *sx_bio_kind_name(enum sx_bio_kind kind);

/* Queue without submitting. 0, -EAGAIN (engine full: reap and retry) or -EINVAL. */
int sx_bio_rw(struct sx_bio *b, bool write, const struct iovec *iov, int iovcnt, uint64_t off,
              uint64_t cookie);
static inline int sx_bio_readv(struct sx_bio *b, const struct iovec *iov, int iovcnt,
                               uint64_t off, uint64_t cookie)
{
    return sx_bio_rw(b, false, iov, iovcnt, off, cookie);
}
static inline int sx_bio_writev(struct sx_bio *b, const struct iovec *iov, int iovcnt,
                                uint64_t off, uint64_t cookie)
{
    return sx_bio_rw(b, true, iov, iovcnt, off, cookie);
}
/* fdatasync semantics: durable once the completion arrives. Not ordered against writes queued
 * in the same batch; a caller that needs "after these writes" reaps them first (blkif
 * FLUSH_DISKCACHE / WRITE_BARRIER semantics are the ring loop's business). */
int sx_bio_flush(struct sx_bio *b, uint64_t cookie);
/* Deallocate [off, off+len): fallocate(PUNCH_HOLE|KEEP_SIZE) on files (reads back zeros),
 * BLKDISCARD on block devices (executed inline at submit time on every engine). */
int sx_bio_discard(struct sx_bio *b, uint64_t off, uint64_t len, uint64_t cookie);

/* Submit everything queued in one syscall. Returns the number submitted (>= 0), or -EAGAIN
 * (kernel out of resources: reap, retry) or -errno. Queued operations not submitted stay
 * queued for the next call. */
int sx_bio_submit(struct sx_bio *b);

/* Non-blocking: up to max completions into out. Returns the count (0..max). */
int sx_bio_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max);

/* Pollable fd (POLLIN) that becomes readable when a completion is posted. After it polls
 * readable call sx_bio_event_ack() (clears it) and then reap until reap returns 0: a
 * completion posted after the ack makes the fd readable again, so no wakeup is lost. */
int sx_bio_event_fd(const struct sx_bio *b);
void sx_bio_event_ack(struct sx_bio *b);
/* Block until at least one completion can be reaped: timeout_ms < 0 waits forever.
 * 0, -ETIMEDOUT (also at once when nothing is in flight), or -errno. May leave the event fd
 * readable (a later poll then wakes once spuriously, which is harmless). */
int sx_bio_wait(struct sx_bio *b, int timeout_ms);

/* Whether a reap now would find a completion, without a system call where the engine allows
 * (io_uring's completion ring, the inline queue); libaio only tells through the event fd
 * (false here). For spin loops. */
bool sx_bio_ready(const struct sx_bio *b);

/* Queued plus in-flight operations (what counts against depth). */
unsigned sx_bio_busy(const struct sx_bio *b);
void sx_bio_get_stats(const struct sx_bio *b, struct sx_bio_stats *out);

/*
 * io_uring registered buffers (e.g. a persistent-grant page pool, registered once per
 * connection). Slot i holds iov[i]; an entry {NULL, 0} is an empty slot to fill later with
 * sx_bio_update_buffer. Calling it again replaces the whole table. Afterwards a read/write
 * whose single iovec lies inside one registered buffer goes out as READ/WRITE_FIXED, and,
 * where the kernel has IORING_OP_READV/WRITEV_FIXED (6.15+), a multi-iovec one whose iovecs
 * all lie inside one registered buffer goes out as READV/WRITEV_FIXED; anything else as a
 * plain readv/writev. Registration pins the pages (RLIMIT_MEMLOCK unless CAP_IPC_LOCK).
 * The kernel keeps the PAGES mapped at registration time, not the addresses: after anything
 * is mapped anew at a registered address (a persistent grant replaced), update that slot, or
 * fixed I/O keeps going to the old page. n: 1..SX_BIO_MAX_BUFFERS. Other engines: -EOPNOTSUPP.
 */
#define SX_BIO_MAX_BUFFERS 16384u
int sx_bio_register_buffers(struct sx_bio *b, const struct iovec *iov, unsigned n);
/* Replace slot `slot` (iov == NULL or {NULL,0} empties it). Operations in flight on the old
 * buffer keep it pinned until they complete. 0 or -errno. */
int sx_bio_update_buffer(struct sx_bio *b, unsigned slot, const struct iovec *iov);
void sx_bio_unregister_buffers(struct sx_bio *b);
/* Whether multi-iovec fixed-buffer I/O (READV/WRITEV_FIXED) is available on this engine. */
bool sx_bio_has_vec_fixed(const struct sx_bio *b);


/*
 * ---- network targets ------------------------------------------------------------------
 *
 * A target string names what a guest disk is served from. Besides a path (a file or block
 * device, opened by the caller and served by the engines above) blkio serves:
 *
 *   rbd:POOL/IMAGE[@SNAP][:KEY=VALUE]...      a Ceph RBD image (POOL/NAMESPACE/IMAGE too)
 *       conf=PATH   the ceph.conf to read (default: Ceph's own search, /etc/ceph/ceph.conf)
 *       id=USER     the client name without "client." (default admin)
 *       any other KEY is a Ceph client option (rados_osd_op_timeout=5, mon_host=...), set
 *       with rados_conf_set; `\` escapes a ':' or '\' inside a value.
 *       Defaults that differ from Ceph's: rados_osd_op_timeout=10, rados_mon_op_timeout=10,
 *       client_mount_timeout=10 (an unreachable OSD fails requests instead of hanging them)
 *       and rbd_cache=false (each engine has its own image handle, so several queues of one
 *       disk stay coherent; rbd_cache=true limits the disk to one queue).
 *   nbd://HOST[:PORT][/EXPORT]                 an NBD server over TCP (port 10809)
 *   nbd+unix:///[EXPORT]?socket=PATH           an NBD server on a UNIX socket
 *
 * sx_bio_target_open connects once to check the target and learn its size and abilities
 * (blocking, bounded by the timeouts above; a control thread calls it). Each engine opened on
 * it with sx_bio_open_target has its own connection (NBD) or image handle (RBD), owned by its
 * thread like any engine; its event fd folds the connection's socket and timers in, so the
 * caller's poll loop is the same as for a file. Completions come through that fd: librbd's
 * image eventfd (rbd_set_image_notification), libnbd's socket (nbd_aio_notify_*).
 *
 * Losing the target: an operation in flight when the connection drops (NBD) or that the
 * cluster does not answer within rados_osd_op_timeout (RBD) completes with -ENOTCONN /
 * -ETIMEDOUT, never hangs. An NBD engine then fails new operations at once (-ENOTCONN) while
 * it reconnects in the background with exponential backoff (50 ms doubling to 2 s), and
 * serves again once connected (a request unanswered for 30 s, $SPLITXEN_NBD_TIMEOUT_MS, counts
 * as a lost connection); an RBD image keeps librados's own session, which reconnects by
 * itself. Counted in sx_bio_stats (disconnects, reconnects, failed) and, after
 * sx_bio_set_stats, in the caller's stats file.
 */
struct sx_bio_target;
struct sx_stats;

struct sx_bio_target_info {
    enum sx_bio_kind kind;      /* SX_BIO_RBD or SX_BIO_NBD */
    uint64_t bytes;             /* size */
    uint32_t block_size;        /* smallest I/O unit the target takes: 512..4096 */
    uint32_t discard_granularity;
    bool read_only;             /* asked for, a snapshot, or the server allows no writes */
    bool flush;                 /* the target takes flushes (volatile cache) */
    bool discard;               /* the target takes discards (trim) */
    bool write_zeroes;          /* the target can write zeroes without data */
    unsigned max_queues;        /* how many engines may serve one disk coherently */
    char name[640];             /* the spec without its options, for logs */
};

/* Whether spec is a network target (rbd:, nbd://, nbd+unix://) rather than a path. */
bool sx_bio_target_is_net(const char *spec);
/* Check a network target's syntax without connecting (a toolstack reading a config):
 * 0, or -EINVAL with the message sx_bio_target_open would give. */
int sx_bio_target_check(const char *spec, char *err, size_t errlen);
/*
 * Parse spec, connect, read the target's size and abilities. read_only opens it read-only.
 * 0 or -errno; on failure err holds a message naming the part of the spec at fault
 * ("rbd: option 'rados_osd_op_timeot': not a Ceph option", "nbd: port: '99999' ...").
 */
int sx_bio_target_open(struct sx_bio_target **out, const char *spec, bool read_only, char *err,
                       size_t errlen);
/* After every engine opened on it was closed. NULL-safe. */
void sx_bio_target_close(struct sx_bio_target *t);
const struct sx_bio_target_info *sx_bio_target_info(const struct sx_bio_target *t);
/* An engine with its own connection to t (blocking connect, bounded). depth as sx_bio_open.
 * 0 or -errno. */
int sx_bio_open_target(struct sx_bio **out, struct sx_bio_target *t, unsigned depth);

/* The network counters in a stats file: SX_BIO_TST_NR counters from `base` on, named as
 * SX_BIO_TARGET_STAT_NAMES (splice it into the names list at that place). */
enum { SX_BIO_TST_DISCONNECTS, SX_BIO_TST_RECONNECTS, SX_BIO_TST_FAILED, SX_BIO_TST_NR };
#define SX_BIO_TARGET_STAT_NAMES "target_disconnects", "target_reconnects", "target_failed"
/* Mirror the engine's network counters into st (not owned; NULL stops it). */
void sx_bio_set_stats(struct sx_bio *b, struct sx_stats *st, unsigned base);

#endif
