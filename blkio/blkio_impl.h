/*
 * Private to blkio (blkio.c over uring.c, aio.c, sync.c, mem.c over engine.c): the engine struct,
 * the per-kind ops table, and the pieces every kind shares (engine.c: the inline completion
 * queue for operations finished in the submitting thread, the synchronous executor).
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
};

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
