/*
 * SYNC engine: every queued operation is run by the submitting thread inside sx_bio_submit
 * (preadv/pwritev/fdatasync/fallocate, see sx_bio_exec_sync in engine.c), and its completion
 * waits in the inline completion queue, announced by one eventfd write per batch (unless the
 * engine was opened SX_BIO_F_QUIET_INLINE). For page-cache targets this is the fastest engine
 * with a system call per request (see sx_bio_kind_auto; tmpfs files are mapped: mem.c); on a
 * slow device it blocks the ring thread for the whole batch, which is why it is not the default
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

const struct sx_bio_ops sx_bio_sync_ops = {
    .open = sync_open,
    .close = sync_close,
    .queue = sx_bio_inline_queue,
    .submit = sx_bio_inline_submit,
    .reap = sx_bio_inline_reap,
    .ready = sx_bio_inline_ready,
};
