/*
 * SYNC engine: every queued operation is run by the submitting thread inside sx_bio_submit
 * (preadv/pwritev/fdatasync/fallocate, see sx_bio_exec_sync in engine.c), and its completion
 * waits in the inline completion queue, announced by one eventfd write per batch. For tmpfs
 * and page-cache targets this is the fastest engine by far (see sx_bio_kind_auto); on a slow
 * device it blocks the ring thread for the whole batch, which is why it is not the default
 * there.
 */
#include "blkio/blkio_impl.h"

static int sync_open(struct sx_bio *b, unsigned flags)
{
    (void)b;
    (void)flags;
    return 0;
}

static void sync_close(struct sx_bio *b)
{
    (void)b;
}

static int sync_queue(struct sx_bio *b, const struct sx_bio_op *op)
{
    (void)b;
    (void)op;
    return SX_BIO_INLINE;
}

static int sync_submit(struct sx_bio *b)
{
    (void)b;
    return 0;                   /* nothing is ever queued in the engine itself */
}

static int sync_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    (void)b;
    (void)out;
    (void)max;
    return 0;                   /* everything is in the inline completion queue */
}

static bool sync_ready(struct sx_bio *b)
{
    (void)b;
    return false;
}

const struct sx_bio_ops sx_bio_sync_ops = {
    .open = sync_open,
    .close = sync_close,
    .queue = sync_queue,
    .submit = sync_submit,
    .reap = sync_reap,
    .ready = sync_ready,
};
