/*
 * MEM engine: the target file mapped (MAP_SHARED) once at open; reads and writes are memcpy
 * between the mapping and the caller's iovecs, run by the submitting thread inside
 * sx_bio_submit like the SYNC engine's, with no system call per request. For tmpfs and ramfs
 * targets the mapping is the file's memory itself: a 4 KiB read is one page copy instead of a
 * preadv (a system call costs 0.5-3 us on these machines; the copy a tenth of that). Flush is
 * fdatasync (it writes back pages dirtied through the mapping too), discard punches a hole
 * (the pages leave the mapping and read back as zeros).
 *
 * A mapped file can fault where a read/write call would return an error: pages past a
 * shrunken end, a hole that tmpfs has no room to fill (a guest writing into a sparse image on a
 * full tmpfs), a page the kernel cannot read in. Each copy runs under a SIGBUS guard (a
 * per-thread jump buffer the process-wide handler jumps back to), so such a fault fails that
 * one operation with -EIO and nothing else; a SIGBUS outside a guarded copy goes to whatever
 * handled SIGBUS before (by default: the process dies, as it would have anyway). The jump
 * back does not restore the signal mask (that would be a system call per copy); after a fault
 * the mask of the faulting moment, from the signal frame, is set again, since a handler
 * interposed on ours (ThreadSanitizer's) runs it with every signal blocked.
 *
 * Ranges past the mapped length (the file grew after open) go to preadv/pwritev instead.
 */
#define SX_LOG_MODULE "blkio"
#include "log.h"

#include "blkio/blkio_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

struct mem_state {
    uint8_t *map;
    size_t len;
    bool writable;
};

/* ---- the SIGBUS guard ------------------------------------------------------------------ */

static __thread sigjmp_buf *mem_guard;
static __thread sigset_t mem_fault_mask;    /* the mask when the guarded copy faulted */
static __thread bool mem_fault_mask_ok;
static struct sigaction mem_prev_bus;
static pthread_once_t mem_bus_once = PTHREAD_ONCE_INIT;
static int mem_bus_err;

static void mem_on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    sigjmp_buf *g = mem_guard;
    if (g) {
        mem_guard = NULL;
        mem_fault_mask_ok = ctx != NULL;
        if (ctx)
            mem_fault_mask = ((const ucontext_t *)ctx)->uc_sigmask;
        siglongjmp(*g, 1);
    }
    /* Not a fault of a guarded copy: what the process did before the engine came. */
    if (mem_prev_bus.sa_flags & SA_SIGINFO) {
        if (mem_prev_bus.sa_sigaction) {
            mem_prev_bus.sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (mem_prev_bus.sa_handler != SIG_DFL && mem_prev_bus.sa_handler != SIG_IGN) {
        mem_prev_bus.sa_handler(sig);
        return;
    }
    /* Default (and "ignore", which cannot help a faulting instruction): die of it. */
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
}

static void mem_bus_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = mem_on_sigbus;
    /* NODEFER: the jump leaves the handler without sigreturn, which would unblock SIGBUS. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &mem_prev_bus) < 0)
        mem_bus_err = -errno;
}

/* The copies themselves, kept out of the function that calls sigsetjmp (nothing of theirs
 * needs to survive the jump). Returns the bytes copied. */
static __attribute__((noinline)) size_t mem_copy_iov(uint8_t *map, bool write,
                                                     const struct iovec *iov, int iovcnt)
{
    size_t done = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (write)
            memcpy(map + done, iov[i].iov_base, iov[i].iov_len);
        else
            memcpy(iov[i].iov_base, map + done, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    return done;
}

/* Copy under the guard: the byte count, or -EIO when the copy faulted. */
static int64_t mem_copy_guarded(uint8_t *map, bool write, const struct iovec *iov, int iovcnt)
{
    sigjmp_buf env;
    if (sigsetjmp(env, 0)) {
        mem_guard = NULL;
        /* Back from the handler without sigreturn: the mask as it was when the copy faulted. */
        if (mem_fault_mask_ok) {
            pthread_sigmask(SIG_SETMASK, &mem_fault_mask, NULL);
        } else {
            sigset_t bus;
            sigemptyset(&bus);
            sigaddset(&bus, SIGBUS);
            pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
        }
        return -EIO;
    }
    mem_guard = &env;
    /* The guard is set before the first access: a compiler barrier keeps the store here. */
    __asm__ __volatile__("" ::: "memory");
    size_t n = mem_copy_iov(map, write, iov, iovcnt);
    __asm__ __volatile__("" ::: "memory");
    mem_guard = NULL;
    return (int64_t)n;
}

/* ---- the engine ------------------------------------------------------------------------ */

static void mem_close(struct sx_bio *b)
{
    struct mem_state *m = b->priv;
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->len);
    free(m);
    b->priv = NULL;
}

static int mem_open(struct sx_bio *b, unsigned flags)
{
    struct stat st;
    (void)flags;
    if (b->blkdev)
        return -EINVAL;         /* a block device is served asynchronously (io_uring) */
    if (fstat(b->fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size <= 0)
        return -EINVAL;
    int fl = fcntl(b->fd, F_GETFL);
    if (fl < 0)
        return -errno;
    pthread_once(&mem_bus_once, mem_bus_install);
    if (mem_bus_err)
        return mem_bus_err;
    struct mem_state *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->writable = (fl & O_ACCMODE) != O_RDONLY;
    m->len = (size_t)st.st_size;
    void *p = mmap(NULL, m->len, PROT_READ | (m->writable ? PROT_WRITE : 0), MAP_SHARED, b->fd, 0);
    if (p == MAP_FAILED) {
        int rc = -errno;
        free(m);
        return rc;
    }
    m->map = p;
    b->priv = m;
    return 0;
}

static int32_t mem_exec(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct mem_state *m = b->priv;
    bool write = op->opc == SX_BIO_OP_WRITE;
    if (op->opc != SX_BIO_OP_READ && !write)
        return sx_bio_exec_sync(b, op);         /* flush, discard: the system calls */
    uint64_t len = 0;
    for (int i = 0; i < op->iovcnt; i++)
        len += op->iov[i].iov_len;
    if (len > INT32_MAX)
        return -EOVERFLOW;
    if ((write && !m->writable) || op->off > m->len || len > m->len - op->off)
        return sx_bio_exec_sync(b, op);         /* the kernel says what this is */
    int64_t n = mem_copy_guarded(m->map + op->off, write, op->iov, op->iovcnt);
    if (n < 0)
        sx_log_ratelimited(SX_LOG_WARN, "%s at %llu: the mapped file faulted (SIGBUS)",
                           write ? "write" : "read", (unsigned long long)op->off);
    return (int32_t)n;
}

const struct sx_bio_ops sx_bio_mem_ops = {
    .open = mem_open,
    .close = mem_close,
    .queue = sx_bio_inline_queue,
    .exec = mem_exec,
    .submit = sx_bio_inline_submit,
    .reap = sx_bio_inline_reap,
    .ready = sx_bio_inline_ready,
};
