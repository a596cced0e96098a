/*
 * sxblkfront: a userspace Xen block frontend (the blkif protocol of <xen/io/blkif.h>), modelled
 * on Linux drivers/block/xen-blkfront.c. A process acting as a guest domain (sx_plat) connects
 * to the vbd the toolstack set up under /local/domain/<self>/device/vbd/<devid>, negotiates
 * multi-page rings, multi-queue, indirect descriptors and persistent grants with the backend,
 * and then moves data between ordinary process memory and the disk.
 *
 * Data path: the caller's buffers are never granted; data is copied into granted pages.
 *   - persistent grants (both sides offer feature-persistent): each queue keeps a LIFO pool of
 *     pages granted once (writable, blkif.h note 8) and reused; it grows on demand up to what
 *     the ring can have in flight, so the backend can keep them mapped;
 *   - otherwise every ring request shares fresh pages (one sx_gntshr_share of all its data and
 *     indirect pages, read-only for writes) and ends access on completion (sx_gntshr_unshare).
 *     That costs a page + grant allocation, a 4 KiB clear per page and a grant-table update
 *     per request on this side, and a map + unmap per request on the backend's.
 * A request of more than BLKIF_MAX_SEGMENTS_PER_REQUEST pages goes out as one BLKIF_OP_INDIRECT
 * request when indirect descriptors were negotiated (up to the negotiated segment count);
 * larger I/O, or any I/O above 11 pages without indirect, is split into several ring requests
 * and completes once, when all parts did.
 *
 * Submission is batched: sx_blkfront_submit() only writes ring slots; sx_blkfront_kick() makes
 * them visible and notifies the backend at most once (when the ring's req_event asks for it).
 *
 * Threads: a queue is used by one thread at a time; different queues may be used from
 * different threads concurrently. open/close/info are not concurrent with anything else.
 *
 * Functions return 0 (or a count) on success and -errno on failure.
 */
#ifndef SPLITXEN_BLKFRONT_H
#define SPLITXEN_BLKFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>

#include "platform/platform.h"

struct sx_blkfront;

enum sx_blkfront_op {
    SX_BLKFRONT_READ = 0,
    SX_BLKFRONT_WRITE = 1,
    SX_BLKFRONT_FLUSH = 2,      /* BLKIF_OP_FLUSH_DISKCACHE, else an empty WRITE_BARRIER */
    SX_BLKFRONT_DISCARD = 3,    /* BLKIF_OP_DISCARD of [offset, offset + len) */
};

/* What the caller allows; the backend's offer caps each further. Fill with
 * sx_blkfront_opts_default() and change fields; NULL opts = the defaults. */
struct sx_blkfront_opts {
    bool persistent;            /* offer feature-persistent (default true) */
    unsigned max_indirect_segs; /* cap on indirect segments per request; 0 = never use
                                   indirect descriptors (default 256; at most 4096) */
    unsigned max_ring_order;    /* cap on ring-page-order (default 4 = SX_RING_MAX_ORDER) */
    unsigned max_queues;        /* queues wanted, capped by multi-queue-max-queues (default 1;
                                   at most SX_BLKFRONT_MAX_QUEUES) */
    unsigned timeout_ms;        /* each handshake wait (default 10000) */
    uint64_t spin_ns;           /* sx_blkfront_wait's spin before sleeping (default
                                   sx_ring_spin_ns(): $SPLITXEN_SPIN_NS or 20 us; 0 = never) */
    bool stats_file;            /* publish the counters of every queue, summed, in the stats
                                   file vbdfe-<self>-<devid> for `splitxen top` (default true;
                                   a file that cannot be created only leaves them unpublished) */
};

#define SX_BLKFRONT_MAX_QUEUES 16u

/* What was negotiated and what the backend said about the disk (valid once open returned). */
struct sx_blkfront_info {
    unsigned devid;
    domid_t backend_id;
    char frontend_path[128];
    char backend_path[128];
    uint64_t sectors;           /* in 512-byte units, whatever sector_size */
    uint32_t sector_size, physical_sector_size;
    uint32_t vdisk_info;        /* VDISK_* bits of "info" */
    uint64_t size_bytes;        /* sectors * 512 */
    bool readonly;              /* VDISK_READONLY or mode "r" */
    bool flush, barrier, discard, discard_secure;
    uint32_t discard_granularity, discard_alignment;
    bool persistent;            /* both sides offered it: grants are persistent */
    unsigned ring_order, nr_queues;
    unsigned ring_entries;      /* per queue */
    unsigned max_indirect_segs; /* 0: indirect descriptors not in use */
    unsigned max_req_bytes;     /* most data one ring request carries */
};

struct sx_blkfront_cpl {
    void *cookie;               /* as given to sx_blkfront_submit */
    int res;                    /* bytes transferred (0 for flush/discard) or -errno:
                                   -EIO (BLKIF_RSP_ERROR), -EOPNOTSUPP (BLKIF_RSP_EOPNOTSUPP) */
};

/* Per-queue counters, for tests and benchmarks. */
struct sx_blkfront_stats {
    uint64_t submitted;         /* caller requests accepted */
    uint64_t completed;         /* caller requests completed (any result) */
    uint64_t errors;            /* ... completed with an error */
    uint64_t ring_reqs;         /* ring requests written */
    uint64_t indirect_reqs;     /* ... of them BLKIF_OP_INDIRECT */
    uint64_t split_reqs;        /* caller requests that needed more than one ring request */
    uint64_t kicks;             /* sx_blkfront_kick calls that published requests */
    uint64_t notifies;          /* event channel notifications sent */
    uint64_t waits;             /* sleeps on the event channel in sx_blkfront_wait */
    uint64_t spins_won;         /* waits that found responses while spinning */
    uint64_t eagain;            /* submits refused for lack of ring slots or pages */
    uint64_t bad_rsps;          /* responses with an id not outstanding or a wrong operation */
    uint64_t pool_pages;        /* persistent pages granted so far */
    uint64_t grants_shared;     /* non-persistent: pages shared per request */
    uint64_t ungrant_busy;      /* non-persistent: unshare found the backend still mapping */
    uint64_t resumes;           /* connections made again after a move */
    uint64_t reissued;          /* caller requests issued again after a move */
    uint64_t sleeps;            /* sx_blkfront_arm calls that found no response: the caller
                                   sleeps next (sx_blkfront_wait's own sleeps are `waits`) */
    uint64_t zero_copy;         /* caller requests served from a granted buffer, no copy */
    /* Latency of sampled requests (1 in 8), sums in ns and counts: a ring request from its kick
     * to its response being seen (the ring both ways, the backend, the engine: everything the
     * frontend waits for); a caller request's frontend work (submit: build and copy in;
     * completion: response to completion, copy out). */
    uint64_t lat_total_ns, lat_total_n;
    uint64_t lat_frontend_ns, lat_frontend_n;
};

void sx_blkfront_opts_default(struct sx_blkfront_opts *o);

/* Parse "xvda", "xvdb1", "hda", "sda", "xvdaa" or a number ("51712") into a vbd devid
 * (Xen docs/misc/vbd-interface.txt). Returns the devid (>= 0) or -EINVAL. */
long sx_blkfront_parse_vdev(const char *vdev);

/* Connect as domain p->self to its vbd `vdev_or_devid`: wait for the backend's InitWait, share
 * rings and bind event channels, publish them, go Initialised, wait for the backend's
 * Connected, read the disk properties, go Connected. Blocks up to opts->timeout_ms per wait.
 * Returns 0, -ENOENT (no such vbd), -EBUSY (another frontend is connected to it), -ETIMEDOUT
 * (logged with the path waited on), -ECONNREFUSED (the backend closed), -EPROTO (bad values
 * from the backend), or the -errno of a platform call. */
int sx_blkfront_open(struct sx_blkfront **out, struct sx_plat *p, const char *vdev_or_devid,
                     const struct sx_blkfront_opts *opts);
/* Closing/Closed handshake with the backend, then end every grant and unbind every port.
 * Outstanding requests are dropped. NULL-safe. */
void sx_blkfront_close(struct sx_blkfront *f);

const struct sx_blkfront_info *sx_blkfront_info(const struct sx_blkfront *f);

/* Queue one request on `queue`: offset and len multiples of 512 (len 0 only for FLUSH), within
 * the disk. buf is caller memory (len bytes; unused for FLUSH/DISCARD) and must stay valid
 * until the completion: a READ's data is copied into it when its last part completes. Nothing
 * is visible to the backend before sx_blkfront_kick(). All or nothing.
 * Returns 0, -EAGAIN (no room in the ring or page pool now: reap completions, then retry),
 * -EINVAL (alignment, range, queue), -EOPNOTSUPP (the backend does not offer the operation),
 * -EROFS (write to a read-only disk), -E2BIG (larger than the ring could ever carry at once),
 * -EPROTO (the queue halted on a misbehaving backend), -ENOMEM. */
int sx_blkfront_submit(struct sx_blkfront *f, unsigned queue, enum sx_blkfront_op op,
                       uint64_t offset, void *buf, size_t len, void *cookie);
/*
 * Granted buffers, for I/O without copies: len bytes (rounded up to whole pages) of zeroed
 * memory granted to the backend (writable) for as long as the device is connected. A READ or
 * WRITE whose buffer lies inside one of them and starts on a 512-byte boundary puts these
 * grants in its segments directly: nothing is copied in or out (counted as zero_copy), and
 * with persistent grants the backend keeps them mapped, so the data moves once, between the
 * backend's engine and this memory. The backend can read and write the buffer at any time:
 * keep only I/O data in it. Needs persistent grants (-EOPNOTSUPP otherwise: use ordinary
 * memory, which is copied). Released by sx_blkfront_close; at most 64 per device.
 * Safe to call while other threads submit. Returns 0, -EOPNOTSUPP, -ENOSPC (64 already), -EINVAL
 * or a grant error (-ENOMEM/-ENOSPC when the guest is out of memory or grant entries).
 */
int sx_blkfront_buf_alloc(struct sx_blkfront *f, size_t len, void **buf);

/* Publish everything submitted on `queue` and notify the backend if the ring asks for it.
 * Returns 1 when a notification was sent, 0 when none was needed, or -errno. */
int sx_blkfront_kick(struct sx_blkfront *f, unsigned queue);
/* Reap up to max completions without blocking. Returns the count, or -EPROTO once the queue
 * halted (the backend produced more responses than requests were outstanding). */
int sx_blkfront_poll(struct sx_blkfront *f, unsigned queue, struct sx_blkfront_cpl *cpl,
                     unsigned max);
/* Kick, then reap until at least min_nr (<= max) completions: spin on the ring up to the spin
 * budget, then sleep on the event channel. timeout_ms < 0 waits forever. After each second
 * without a response it checks that the backend is still Connected. Returns the count
 * (possibly < min_nr on timeout, or when nothing is in flight) or -errno (-ENOTCONN: the
 * backend left Connected with requests outstanding). */
int sx_blkfront_wait(struct sx_blkfront *f, unsigned queue, struct sx_blkfront_cpl *cpl,
                     unsigned min_nr, unsigned max, int timeout_ms);
/* The queue's event channel fd (readable when the backend notified). For an external poll
 * loop: call sx_blkfront_arm(); if it returns 0, poll() the fd, then sx_blkfront_poll(). */
int sx_blkfront_fd(struct sx_blkfront *f, unsigned queue);
/* Consume delivered events, unmask, and ask the ring for a notification on the next response.
 * Returns 1 when responses are already there (do not sleep), 0 when sleeping is safe. */
int sx_blkfront_arm(struct sx_blkfront *f, unsigned queue);
/* Spin up to budget_ns until the backend has published a response on `queue` (true) or the
 * budget ran out (false), yielding the CPU now and then once it has spun a few microseconds
 * (sx_idle_spin_budget_yield: a backend sharing this CPU gets to answer). Only reads the
 * ring's shared index: it may run concurrently with a thread that owns the queue. For external
 * loops doing their own adaptive polling. */
bool sx_blkfront_spin(struct sx_blkfront *f, unsigned queue, uint64_t budget_ns);
/* The backend's xenbus state as it is now (XenbusState*), or -errno. Thread-safe; a xenstore
 * round trip. */
int sx_blkfront_backend_state(struct sx_blkfront *f);
/* Requests submitted and not yet completed on `queue`. */
unsigned sx_blkfront_inflight(const struct sx_blkfront *f, unsigned queue);
void sx_blkfront_get_stats(const struct sx_blkfront *f, unsigned queue,
                           struct sx_blkfront_stats *st);

/*
 * Suspend and resume (frontends/control runs them around the suspend hypercall). The caller
 * keeps every other thread off f from suspend to the end of resume.
 * suspend: nothing more goes on the rings; every caller request in flight is remembered (its
 * buffer must stay valid: it completes after the resume).
 * resume, moved = false (the suspend was cancelled): the rings and requests go on as they
 * were; -ENOTCONN if the backend left Connected meanwhile.
 * resume, moved = true (f's platform handle was moved: sx_plat_move): as Linux's
 * blkfront_resume, the old rings and persistent grants are given up in the domain's new home,
 * the vbd is connected anew on its new paths with everything negotiated again (it must offer
 * as many queues as before: -EPROTO otherwise), and the requests that were in flight are issued
 * again on the queue they were on; their completions arrive as if nothing happened (reads
 * read again; writes write the same data again).
 */
int sx_blkfront_suspend(struct sx_blkfront *f);
int sx_blkfront_resume(struct sx_blkfront *f, bool moved);

#endif
