/*
 * Private to blkio (blkio.c over uring.c, aio.c, sync.c, mem.c over engine.c; target.c over
 * rbd.c and nbd.c): the engine struct, the per-kind ops table, the pieces every kind shares
 * (engine.c: the inline completion queue for operations finished in the submitting thread,
 * the synchronous executor, the network counters) and a network target's parsed spec.
 */
#ifndef SPLITXEN_BLKIO_IMPL_H
#define SPLITXEN_BLKIO_IMPL_H

#include "blkio/blkio.h"

enum sx_bio_opc { SX_BIO_OP_READ, SX_BIO_OP_WRITE, SX_BIO_OP_FLUSH, SX_BIO_OP_DISCARD };

/* One queued operation, as the engines see it. */
struct sx_bio_op {
    enum sx_bio_opc opc;
    int iovcnt;
    const struct iovec *iov;
    uint64_t off;
    uint64_t len;               /* discard only */
    uint64_t cookie;
};

struct sx_bio_ops {
    int (*open)(struct sx_bio *b, unsigned flags);
    void (*close)(struct sx_bio *b);            /* idempotent; after drain */
    /* 0 queued in the engine, SX_BIO_INLINE: blkio.c runs it in this thread at submit time. */
    int (*queue)(struct sx_bio *b, const struct sx_bio_op *op);
    /* Runs an SX_BIO_INLINE operation: bytes or 0, or -errno. NULL: sx_bio_exec_sync. */
    int32_t (*exec)(struct sx_bio *b, const struct sx_bio_op *op);
    int (*submit)(struct sx_bio *b);            /* >= 0 of the engine's queued ops sent */
    int (*reap)(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max);
    bool (*ready)(struct sx_bio *b);            /* a reap now would find something (cheap) */
    int (*wait)(struct sx_bio *b, int timeout_ms);   /* NULL: poll the event fd */
    /* Optional, at close only: make every operation in flight complete soon (cancelled or
     * done); their completions are reaped as usual. NULL: nothing can be cancelled. */
    void (*cancel)(struct sx_bio *b);
};

#define SX_BIO_INLINE 1

struct sx_bio_reg {                             /* registered-buffer index, sorted by base */
    uintptr_t base;
    size_t len;
    unsigned slot;
};

struct sx_bio {
    const struct sx_bio_ops *ops;
    enum sx_bio_kind kind;
    int fd;                     /* caller's, not owned */
    bool blkdev;
    unsigned depth;
    unsigned queued;            /* queued, not yet submitted (engine's + inline ones) */
    unsigned inflight;          /* submitted (or completed inline), not yet reaped */
    int efd;                    /* eventfd, owned */
    bool efd_signaled;          /* we wrote it and nobody acked since: writing again is moot */
    bool maybe_more;            /* last reap filled its array: more may be waiting */
    bool quiet_inline;          /* SX_BIO_F_QUIET_INLINE */
    struct sx_bio_stats st;

    /* Operations to run in this thread at submit time (SYNC engine, discards the engine
     * has no command for), in queue order. */
    struct sx_bio_op *inl;
    unsigned inl_n;

    /* Completions produced in this thread (inline operations, submit-time errors). */
    struct sx_bio_cpl *icq;
    unsigned icq_head, icq_count;

    /* Registered buffers (io_uring). */
    struct iovec *reg_slots;    /* by slot */
    struct sx_bio_reg *reg_idx; /* non-empty slots sorted by base */
    unsigned reg_n, reg_idx_n;
    bool vec_fixed;             /* kernel has IORING_OP_READV/WRITEV_FIXED */

    void *priv;                 /* engine state */

    /* Network engines (rbd.c, nbd.c). */
    struct sx_bio_target *target;   /* not owned */
    int poll_fd;                /* what sx_bio_event_fd returns when >= 0 (else efd) */
    struct sx_stats *tstats;    /* sx_bio_set_stats */
    unsigned tstats_base;
};

/* ---- network targets (target.c parses, rbd.c / nbd.c connect and serve) ---------------- */

#define SX_BIO_SPEC_MAX_OPTS 16

struct sx_bio_spec {
    enum sx_bio_kind kind;      /* SX_BIO_RBD or SX_BIO_NBD */
    /* rbd: POOL[/NAMESPACE]/IMAGE[@SNAP], conf=, id=, other options in order */
    char pool[128], ns[128], image[128], snap[128];
    char conf[256], id[64];
    unsigned nopts;
    char opt_key[SX_BIO_SPEC_MAX_OPTS][64];
    char opt_val[SX_BIO_SPEC_MAX_OPTS][256];
    /* nbd: host and port (TCP) or socket (UNIX), and the export name */
    bool unix_socket;
    char host[256], port[8], socket[108], export_name[256];
    char name[640];             /* printable: the spec without options */
};

/* Parse a network target spec. 0, or -EINVAL with a message naming the part at fault. */
int sx_bio_spec_parse(const char *spec, struct sx_bio_spec *out, char *err, size_t errlen);

struct sx_bio_target {
    struct sx_bio_spec spec;
    struct sx_bio_target_info info;
    const struct sx_bio_ops *ops;   /* the engine kind that serves it */
    void *priv;                     /* rbd: the cluster connection and pool */
};

/* Per kind: connect and fill t->info (read_only as asked); close releases t->priv. */
int sx_bio_rbd_target_open(struct sx_bio_target *t, bool read_only, char *err, size_t errlen);
void sx_bio_rbd_target_close(struct sx_bio_target *t);
int sx_bio_nbd_target_open(struct sx_bio_target *t, bool read_only, char *err, size_t errlen);

extern const struct sx_bio_ops sx_bio_rbd_ops;
extern const struct sx_bio_ops sx_bio_nbd_ops;

/* Bump network counter `which` (SX_BIO_TST_*) in the engine's stats and the caller's file. */
void sx_bio_count(struct sx_bio *b, unsigned which, uint64_t n);
/* Whether -errno res means the target could not be reached (not an error of the operation). */
bool sx_bio_err_is_link(int32_t res);

extern const struct sx_bio_ops sx_bio_uring_ops;
extern const struct sx_bio_ops sx_bio_aio_ops;
extern const struct sx_bio_ops sx_bio_sync_ops;
extern const struct sx_bio_ops sx_bio_mem_ops;

/* sx_bio_open with an ops table of the caller's choosing (engines under test). */
int sx_bio_open_ops(struct sx_bio **out, const struct sx_bio_ops *ops, enum sx_bio_kind kind,
                    int fd, unsigned depth, unsigned flags);

/* Post a completion produced in this thread (capacity is guaranteed by the depth rule). */
void sx_bio_icq_push(struct sx_bio *b, uint64_t cookie, int32_t res);
/* Move up to max inline completions to out; returns the count. */
unsigned sx_bio_icq_pop(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max);
/* Execute op now in this thread: bytes or 0 on success, -errno on failure. */
int32_t sx_bio_exec_sync(struct sx_bio *b, const struct sx_bio_op *op);
/* The ops of an engine that runs every operation inline (SYNC, MEM): queue says
 * SX_BIO_INLINE, submit and reap find nothing of their own, ready is false. */
int sx_bio_inline_queue(struct sx_bio *b, const struct sx_bio_op *op);
int sx_bio_inline_submit(struct sx_bio *b);
int sx_bio_inline_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max);
bool sx_bio_inline_ready(struct sx_bio *b);
/* Make the event fd readable. */
void sx_bio_event_signal(struct sx_bio *b);
/* Registered buffer holding [addr, addr+len), or -1. */
int sx_bio_reg_find(const struct sx_bio *b, const void *addr, size_t len);

/* io_uring-only hooks behind sx_bio_register_buffers / sx_bio_update_buffer. */
int sx_bio_uring_register(struct sx_bio *b, const struct iovec *iov, unsigned n);
int sx_bio_uring_update(struct sx_bio *b, unsigned slot, const struct iovec *iov);
void sx_bio_uring_unregister(struct sx_bio *b);

#endif
