/*
 * blkback I/O engines: every engine (io_uring, aio, sync, mem) on every target this machine offers
 * (a tmpfs file in /dev/shm, a buffered file in /tmp, an O_DIRECT file in /var/tmp): data
 * round trips, batching, flush, discard, error completions, backpressure, registered buffers.
 * Completions are driven by an explicit pump (reap, then sx_bio_wait), never by sleeps.
 */
#include "tests/sxtest.h"

#include "blkio/blkio.h"
#include "blkio/blkio_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#endif

#define PAGE 4096u
#define FILE_SIZE (1024u * 1024u)

struct target {
    const char *name;
    char path[256];
    bool direct;
    int fd;                     /* -1: target unavailable on this machine */
    bool blkdev;
};

static struct target targets[] = {
    { "tmpfs(/dev/shm)", "", false, -1, false },
    { "/tmp buffered", "", false, -1, false },
    { "/var/tmp O_DIRECT", "", true, -1, false },
    { "loop block device O_DIRECT", "", true, -1, true },
};
static int loop_hold_fd = -1;  /* keeps the auto-clearing loop device attached */
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

/* The engines this kernel lets us open (io_uring can be disabled by sysctl, aio limited). */
static enum sx_bio_kind kinds[4];
static size_t nkinds;
static bool uring_ok;
#define NKINDS nkinds

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(PAGE, (n + PAGE - 1) / PAGE * PAGE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memset(p, 0xEE, n);
    return p;
}

static void fill(void *buf, size_t n, uint64_t seed)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) & 0xff);
}

static int open_target(struct target *t, const char *dir, const char *tag)
{
    snprintf(t->path, sizeof(t->path), "%s/sx-io-test.%d.%s", dir, (int)getpid(), tag);
    int fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (t->direct ? O_DIRECT : 0),
                  0600);
    if (fd < 0) {
        printf("note: target %s unavailable: open(%s%s): %s\n", t->name, t->path,
               t->direct ? ", O_DIRECT" : "", strerror(errno));
        unlink(t->path);
        return -1;
    }
    if (ftruncate(fd, FILE_SIZE) < 0) {
        printf("note: target %s unavailable: ftruncate: %s\n", t->name, strerror(errno));
        close(fd);
        unlink(t->path);
        return -1;
    }
    struct statfs sfs;
    if (fstatfs(fd, &sfs) == 0)
        printf("note: target %s: %s (%s)\n", t->name, t->path,
               (unsigned long)sfs.f_type == TMPFS_MAGIC ? "tmpfs" : "not tmpfs");
    return fd;
}

/* A loop device over a sparse file in /var/tmp, LO_FLAGS_AUTOCLEAR so that it detaches by
 * itself when this process closes it (even if the test crashes): the block-device path
 * (BLKDISCARD, S_ISBLK) without touching a real disk. */
static int open_loop_target(struct target *t)
{
    char backing[256];
    int bfd, ctl = -1, lfd = -1, fd = -1;

    snprintf(backing, sizeof(backing), "/var/tmp/sx-io-test.%d.loop", (int)getpid());
    bfd = open(backing, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    unlink(backing);
    if (bfd < 0 || ftruncate(bfd, FILE_SIZE) < 0)
        goto out;
    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        goto out;
    for (int tries = 0; tries < 5 && lfd < 0; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            goto out;
        snprintf(t->path, sizeof(t->path), "/dev/loop%d", n);
        lfd = open(t->path, O_RDWR | O_CLOEXEC);
        if (lfd < 0)
            goto out;
        struct loop_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.fd = (unsigned)bfd;
        cfg.block_size = 512;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
            close(lfd);             /* raced with another user of that loop device: next */
            lfd = -1;
        }
    }
    if (lfd < 0)
        goto out;
    fd = open(t->path, O_RDWR | O_CLOEXEC | O_DIRECT);
    if (fd < 0) {
        close(lfd);
        lfd = -1;
        goto out;
    }
    loop_hold_fd = lfd;
    printf("note: target %s: %s\n", t->name, t->path);
out:
    if (fd < 0)
        printf("note: target %s unavailable: %s\n", t->name, strerror(errno));
    if (ctl >= 0)
        close(ctl);
    if (bfd >= 0)
        close(bfd);                 /* the loop device holds its own reference */
    return fd;
}

static int suite_init(void)
{
    targets[0].fd = open_target(&targets[0], "/dev/shm", "shm");
    targets[1].fd = open_target(&targets[1], "/tmp", "tmp");
    targets[2].fd = open_target(&targets[2], "/var/tmp", "direct");
    targets[3].fd = open_loop_target(&targets[3]);
    static const enum sx_bio_kind all[] = { SX_BIO_URING, SX_BIO_AIO, SX_BIO_SYNC, SX_BIO_MEM };
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < NTARGETS; i++) {
            struct sx_bio *b = NULL;
            if (targets[i].fd < 0)
                continue;
            int rc = sx_bio_open(&b, all[k], targets[i].fd, 4, 0);
            if (rc < 0) {
                printf("note: engine %s unavailable here: %s\n", sx_bio_kind_name(all[k]),
                       strerror(-rc));
            } else {
                kinds[nkinds++] = all[k];
                uring_ok |= all[k] == SX_BIO_URING;
            }
            sx_bio_close(b);
            break;
        }
    }
    for (size_t i = 0; i < NTARGETS; i++)
        if (targets[i].fd >= 0)
            return 0;
    return 1;
}

static int suite_clean(void)
{
    for (size_t i = 0; i < NTARGETS; i++) {
        if (targets[i].fd >= 0) {
            close(targets[i].fd);
            if (!targets[i].blkdev)
                unlink(targets[i].path);
            targets[i].fd = -1;
        }
    }
    if (loop_hold_fd >= 0)
        close(loop_hold_fd);    /* last close: AUTOCLEAR detaches the loop device */
    loop_hold_fd = -1;
    return 0;
}

/* Collect exactly n completions (pump: reap, else wait), FATAL on a 5 s stall. */
static void reap_n(struct sx_bio *b, struct sx_bio_cpl *out, unsigned n)
{
    unsigned got = 0;
    while (got < n) {
        int k = sx_bio_reap(b, out + got, n - got);
        CU_ASSERT_FATAL(k >= 0);
        got += (unsigned)k;
        if (got < n && k == 0)
            CU_ASSERT_EQUAL_FATAL(sx_bio_wait(b, 5000), 0);
    }
}

static int32_t do_one(struct sx_bio *b, int rc_queue)
{
    struct sx_bio_cpl c;
    CU_ASSERT_EQUAL_FATAL(rc_queue, 0);
    CU_ASSERT_EQUAL_FATAL(sx_bio_submit(b), 1);
    reap_n(b, &c, 1);
    return c.res;
}

#define FOR_EACH_ENGINE(b, t, depth)                                                      \
    for (size_t ti_ = 0; ti_ < NTARGETS; ti_++)                                          \
        for (size_t ki_ = 0; ki_ < NKINDS; ki_++)                                        \
            for (struct target *t = &targets[ti_]; t && t->fd >= 0; t = NULL)            \
                for (struct sx_bio *b = open_engine(t, kinds[ki_], depth); b;            \
                     sx_bio_close(b), b = NULL)

static struct sx_bio *open_engine(struct target *t, enum sx_bio_kind k, unsigned depth)
{
    struct sx_bio *b = NULL;
    if (k == SX_BIO_MEM && t->blkdev)
        return NULL;            /* block devices are never mapped (-EINVAL) */
    int rc = sx_bio_open(&b, k, t->fd, depth, 0);
    if (rc < 0)
        printf("open %s on %s: %s\n", sx_bio_kind_name(k), t->name, strerror(-rc));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sx_bio_kind(b), k);
    return b;
}

/* Patterns written with 3-iovec writevs at several offsets read back through a different
 * iovec split. */
static void test_writev_readv_roundtrip(void)
{
    static const uint64_t offs[] = { 0, 8 * PAGE, 100 * PAGE, FILE_SIZE - 3 * PAGE };
    FOR_EACH_ENGINE(b, t, 8) {
        uint8_t *w = xalloc(3 * PAGE), *r = xalloc(3 * PAGE);
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            fill(w, 3 * PAGE, offs[i] + ki_ * 7 + ti_);
            struct iovec wv[3] = { { w, PAGE }, { w + PAGE, 2 * PAGE - PAGE }, { w + 2 * PAGE, PAGE } };
            CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, wv, 3, offs[i], 100 + i)), 3 * PAGE);
            memset(r, 0, 3 * PAGE);
            struct iovec rv[2] = { { r, 2 * PAGE }, { r + 2 * PAGE, PAGE } };
            CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, rv, 2, offs[i], 200 + i)), 3 * PAGE);
            CU_ASSERT_EQUAL(memcmp(w, r, 3 * PAGE), 0);
        }
        struct sx_bio_stats st;
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.submitted, 8);
        CU_ASSERT_EQUAL(st.completed, 8);
        CU_ASSERT_EQUAL(st.errors, 0);
        CU_ASSERT_EQUAL(sx_bio_busy(b), 0);
        free(w);
        free(r);
    }
}

/* 64 writes queued and submitted in one call; every cookie comes back exactly once; then the
 * same for 64 reads, which see what the writes wrote. */
static void test_batch_of_64_in_one_submit(void)
{
    enum { N = 64 };
    FOR_EACH_ENGINE(b, t, N) {
        uint8_t *buf = xalloc(N * PAGE), *rd = xalloc(N * PAGE);
        struct iovec iov[N], riov[N];
        struct sx_bio_cpl c[N];
        bool seen[N];
        for (int pass = 0; pass < 2; pass++) {
            for (unsigned i = 0; i < N; i++) {
                if (pass == 0) {
                    fill(buf + i * PAGE, PAGE, i + 1000 * ki_);
                    iov[i] = (struct iovec){ buf + i * PAGE, PAGE };
                    /* scattered offsets: page i goes to page (i * 37) % 256 */
                    CU_ASSERT_EQUAL(sx_bio_writev(b, &iov[i], 1, (uint64_t)((i * 37) % 256) * PAGE,
                                                  0xB000 + i), 0);
                } else {
                    riov[i] = (struct iovec){ rd + i * PAGE, PAGE };
                    CU_ASSERT_EQUAL(sx_bio_readv(b, &riov[i], 1, (uint64_t)((i * 37) % 256) * PAGE,
                                                 0xB000 + i), 0);
                }
            }
            CU_ASSERT_EQUAL(sx_bio_busy(b), N);
            CU_ASSERT_EQUAL(sx_bio_submit(b), N);
            reap_n(b, c, N);
            memset(seen, 0, sizeof(seen));
            for (unsigned i = 0; i < N; i++) {
                CU_ASSERT_EQUAL(c[i].res, (int32_t)PAGE);
                uint64_t k = c[i].cookie - 0xB000;
                CU_ASSERT_FATAL(k < N);
                CU_ASSERT_FALSE(seen[k]);
                seen[k] = true;
            }
        }
        CU_ASSERT_EQUAL(memcmp(buf, rd, N * PAGE), 0);
        struct sx_bio_cpl extra;
        CU_ASSERT_EQUAL(sx_bio_reap(b, &extra, 1), 0);
        free(buf);
        free(rd);
    }
}

static void test_flush_completes(void)
{
    FOR_EACH_ENGINE(b, t, 4) {
        uint8_t *w = xalloc(PAGE);
        fill(w, PAGE, 9);
        struct iovec v = { w, PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &v, 1, 0, 1)), PAGE);
        CU_ASSERT_EQUAL(do_one(b, sx_bio_flush(b, 2)), 0);
        free(w);
    }
}

/* A discarded range reads back as zeros; its neighbours keep their data. */
static void test_discard_zeroes_range(void)
{
    FOR_EACH_ENGINE(b, t, 4) {
        const size_t n = 16 * PAGE;
        uint8_t *w = xalloc(n), *r = xalloc(n), *zero = xalloc(8 * PAGE);
        memset(zero, 0, 8 * PAGE);
        fill(w, n, 77 + ki_);
        struct iovec v = { w, n };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &v, 1, 32 * PAGE, 1)), (int32_t)n);
        int32_t res = do_one(b, sx_bio_discard(b, 36 * PAGE, 8 * PAGE, 2));
        if (res < 0)
            printf("discard on %s with %s: %s\n", t->name, sx_bio_kind_name(kinds[ki_]),
                   strerror(-res));
        CU_ASSERT_EQUAL(res, 0);
        struct iovec rv = { r, n };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rv, 1, 32 * PAGE, 3)), (int32_t)n);
        CU_ASSERT_EQUAL(memcmp(r, w, 4 * PAGE), 0);
        CU_ASSERT_EQUAL(memcmp(r + 4 * PAGE, zero, 8 * PAGE), 0);
        CU_ASSERT_EQUAL(memcmp(r + 12 * PAGE, w + 12 * PAGE, 4 * PAGE), 0);
        /* The file keeps its size (KEEP_SIZE). */
        struct stat st;
        CU_ASSERT_EQUAL(fstat(t->fd, &st), 0);
        if (!t->blkdev) {
            CU_ASSERT_EQUAL(st.st_size, FILE_SIZE);
        }
        free(w);
        free(r);
        free(zero);
    }
}

/* Reads at and across the end of a short file: 0 bytes at EOF, the short count across it. */
static void test_read_past_end_of_short_file(void)
{
    for (size_t ti = 0; ti < NTARGETS; ti++) {
        if (targets[ti].fd < 0 || targets[ti].blkdev)
            continue;               /* a block device cannot be made short */
        struct target t = targets[ti];
        int fd = open_target(&t, strncmp(t.path, "/dev/shm", 8) == 0 ? "/dev/shm" :
                                 strncmp(t.path, "/tmp", 4) == 0 ? "/tmp" : "/var/tmp", "short");
        CU_ASSERT_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(ftruncate(fd, 2 * PAGE), 0);
        for (size_t ki = 0; ki < NKINDS; ki++) {
            struct sx_bio *b = NULL;
            CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, kinds[ki], fd, 4, 0), 0);
            uint8_t *r = xalloc(2 * PAGE);
            struct iovec v = { r, 2 * PAGE };
            CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &v, 1, 8 * PAGE, 1)), 0);
            CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &v, 1, PAGE, 2)), (int32_t)PAGE);
            struct sx_bio_stats st;
            sx_bio_get_stats(b, &st);
            CU_ASSERT_EQUAL(st.errors, 0);
            sx_bio_close(b);
            free(r);
        }
        close(fd);
        unlink(t.path);
    }
}

/* A write to an O_RDONLY fd is refused by the kernel: -EBADF arrives in the completion, the
 * engine keeps working, and the error is counted. */
static void test_write_to_rdonly_fd_completes_with_ebadf(void)
{
    for (size_t ti = 0; ti < NTARGETS; ti++) {
        if (targets[ti].fd < 0)
            continue;
        int fd = open(targets[ti].path, O_RDONLY | O_CLOEXEC | (targets[ti].direct ? O_DIRECT : 0));
        CU_ASSERT_FATAL(fd >= 0);
        for (size_t ki = 0; ki < NKINDS; ki++) {
            struct sx_bio *b = NULL;
            if (kinds[ki] == SX_BIO_MEM && targets[ti].blkdev)
                continue;
            CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, kinds[ki], fd, 4, 0), 0);
            uint8_t *w = xalloc(PAGE);
            struct iovec v = { w, PAGE };
            /* A batch of bad write + good read: the read still succeeds. */
            CU_ASSERT_EQUAL(sx_bio_writev(b, &v, 1, 0, 1), 0);
            uint8_t *r = xalloc(PAGE);
            struct iovec rv = { r, PAGE };
            CU_ASSERT_EQUAL(sx_bio_readv(b, &rv, 1, 0, 2), 0);
            CU_ASSERT_EQUAL(sx_bio_submit(b), 2);
            struct sx_bio_cpl c[2];
            reap_n(b, c, 2);
            for (int i = 0; i < 2; i++) {
                if (c[i].cookie == 1) {
                    CU_ASSERT_EQUAL(c[i].res, -EBADF);
                } else {
                    CU_ASSERT_EQUAL(c[i].res, (int32_t)PAGE);
                }
            }
            CU_ASSERT_NOT_EQUAL(c[0].cookie, c[1].cookie);
            struct sx_bio_stats st;
            sx_bio_get_stats(b, &st);
            CU_ASSERT_EQUAL(st.errors, 1);
            CU_ASSERT_EQUAL(st.completed, 2);
            sx_bio_close(b);
            free(w);
            free(r);
        }
        close(fd);
    }
}

/* depth 4: the fifth operation is refused with -EAGAIN (counted), before and after submit;
 * once one completion is reaped the retry succeeds. */
static void test_queue_full_eagain_then_success_after_reap(void)
{
    FOR_EACH_ENGINE(b, t, 4) {
        uint8_t *r = xalloc(5 * PAGE);
        struct iovec v[5];
        for (int i = 0; i < 5; i++)
            v[i] = (struct iovec){ r + i * PAGE, PAGE };
        for (int i = 0; i < 4; i++)
            CU_ASSERT_EQUAL(sx_bio_readv(b, &v[i], 1, (uint64_t)i * PAGE, (uint64_t)i), 0);
        CU_ASSERT_EQUAL(sx_bio_readv(b, &v[4], 1, 4 * PAGE, 4), -EAGAIN);
        CU_ASSERT_EQUAL(sx_bio_flush(b, 5), -EAGAIN);
        CU_ASSERT_EQUAL(sx_bio_submit(b), 4);
        CU_ASSERT_EQUAL(sx_bio_readv(b, &v[4], 1, 4 * PAGE, 4), -EAGAIN);
        struct sx_bio_cpl c[4];
        reap_n(b, c, 1);
        CU_ASSERT_EQUAL(sx_bio_readv(b, &v[4], 1, 4 * PAGE, 4), 0);
        CU_ASSERT_EQUAL(sx_bio_submit(b), 1);
        reap_n(b, c, 4);
        struct sx_bio_stats st;
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.eagain, 3);
        CU_ASSERT_EQUAL(st.completed, 5);
        CU_ASSERT_EQUAL(st.errors, 0);
        free(r);
    }
}

/* The event fd turns readable after a submit completes, and ack clears it. */
static void test_event_fd_signals_completion(void)
{
    FOR_EACH_ENGINE(b, t, 4) {
        uint8_t *r = xalloc(PAGE);
        struct iovec v = { r, PAGE };
        struct pollfd p = { .fd = sx_bio_event_fd(b), .events = POLLIN };
        sx_bio_event_ack(b);
        CU_ASSERT_EQUAL(poll(&p, 1, 0), 0);
        CU_ASSERT_EQUAL(sx_bio_readv(b, &v, 1, 0, 1), 0);
        CU_ASSERT_EQUAL(sx_bio_submit(b), 1);
        CU_ASSERT_EQUAL(poll(&p, 1, 5000), 1);
        sx_bio_event_ack(b);
        struct sx_bio_cpl c;
        CU_ASSERT_EQUAL(sx_bio_reap(b, &c, 1), 1);
        CU_ASSERT_EQUAL(c.res, (int32_t)PAGE);
        CU_ASSERT_EQUAL(poll(&p, 1, 0), 0);
        /* Nothing in flight: wait does not sleep. */
        CU_ASSERT_EQUAL(sx_bio_wait(b, 10000), -ETIMEDOUT);
        free(r);
    }
}

/* SX_BIO_F_QUIET_INLINE: a completion made inside submit (SYNC, MEM) does not touch the
 * event fd, and is there for the next reap all the same; an asynchronous engine's completions
 * still signal it. */
static void test_quiet_inline_completions_skip_the_event_fd(void)
{
    for (size_t ti = 0; ti < NTARGETS; ti++) {
        if (targets[ti].fd < 0)
            continue;
        for (size_t ki = 0; ki < NKINDS; ki++) {
            if (kinds[ki] == SX_BIO_MEM && targets[ti].blkdev)
                continue;
            struct sx_bio *b = NULL;
            CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, kinds[ki], targets[ti].fd, 4,
                                              SX_BIO_F_QUIET_INLINE), 0);
            uint8_t *r = xalloc(PAGE);
            struct iovec v = { r, PAGE };
            struct pollfd p = { .fd = sx_bio_event_fd(b), .events = POLLIN };
            sx_bio_event_ack(b);
            CU_ASSERT_EQUAL(sx_bio_readv(b, &v, 1, 0, 7), 0);
            CU_ASSERT_EQUAL(sx_bio_submit(b), 1);
            bool inl = kinds[ki] == SX_BIO_SYNC || kinds[ki] == SX_BIO_MEM;
            if (inl) {
                CU_ASSERT_EQUAL(poll(&p, 1, 0), 0);
                CU_ASSERT_TRUE(sx_bio_ready(b));
            } else {
                CU_ASSERT_EQUAL(poll(&p, 1, 5000), 1);  /* the kernel's completion signals */
            }
            struct sx_bio_cpl c;
            reap_n(b, &c, 1);
            CU_ASSERT_EQUAL(c.cookie, 7);
            CU_ASSERT_EQUAL(c.res, (int32_t)PAGE);
            sx_bio_close(b);
            free(r);
        }
    }
}

/* Registered buffers (io_uring): single-iovec I/O inside a registered buffer goes out fixed,
 * multi-iovec inside one buffer too where the kernel has READV/WRITEV_FIXED; a slot can be
 * emptied and refilled; unregistered memory still works (plain readv). */
static void test_registered_buffers(void)
{
    for (size_t ti = 0; ti < NTARGETS && uring_ok; ti++) {
        struct target *t = &targets[ti];
        if (t->fd < 0)
            continue;
        struct sx_bio *b = open_engine(t, SX_BIO_URING, 8);
        uint8_t *pool = xalloc(8 * PAGE), *other = xalloc(4 * PAGE), *chk = xalloc(4 * PAGE);
        struct iovec slots[4] = { { pool, 4 * PAGE }, { pool + 4 * PAGE, PAGE }, { NULL, 0 },
                                  { pool + 6 * PAGE, 2 * PAGE } };
        CU_ASSERT_EQUAL_FATAL(sx_bio_register_buffers(b, slots, 4), 0);
        struct sx_bio_stats st;

        /* single iovec in slot 0 -> WRITE_FIXED, read back through slot 3 -> READ_FIXED */
        fill(pool + PAGE, PAGE, 5);
        struct iovec w1 = { pool + PAGE, PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &w1, 1, 10 * PAGE, 1)), PAGE);
        struct iovec r1 = { pool + 7 * PAGE, PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &r1, 1, 10 * PAGE, 2)), PAGE);
        CU_ASSERT_EQUAL(memcmp(pool + PAGE, pool + 7 * PAGE, PAGE), 0);
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.fixed, 2);

        /* an iovec straddling two registered buffers is not fixed, and still correct */
        struct iovec straddle = { pool + 3 * PAGE, 2 * PAGE };
        fill(pool + 3 * PAGE, 2 * PAGE, 6);
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &straddle, 1, 20 * PAGE, 3)), 2 * PAGE);
        struct iovec rc1 = { chk, 2 * PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rc1, 1, 20 * PAGE, 4)), 2 * PAGE);
        CU_ASSERT_EQUAL(memcmp(chk, pool + 3 * PAGE, 2 * PAGE), 0);
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.fixed, 2);

        /* multi-iovec inside slot 0 (out of order pages) */
        fill(pool, 4 * PAGE, 8);
        struct iovec mv[3] = { { pool + 2 * PAGE, PAGE }, { pool, PAGE }, { pool + 3 * PAGE, PAGE } };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, mv, 3, 30 * PAGE, 5)), 3 * PAGE);
        struct iovec rc2 = { chk, 3 * PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rc2, 1, 30 * PAGE, 6)), 3 * PAGE);
        CU_ASSERT_EQUAL(memcmp(chk, pool + 2 * PAGE, PAGE), 0);
        CU_ASSERT_EQUAL(memcmp(chk + PAGE, pool, PAGE), 0);
        CU_ASSERT_EQUAL(memcmp(chk + 2 * PAGE, pool + 3 * PAGE, PAGE), 0);
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.fixed, sx_bio_has_vec_fixed(b) ? 3u : 2u);
        printf("\n  %s: READV/WRITEV_FIXED %s\n", t->name,
               sx_bio_has_vec_fixed(b) ? "available" : "not available");

        /* fill the empty slot 2 with other memory; I/O from it is fixed */
        struct iovec s2 = { other, 4 * PAGE };
        CU_ASSERT_EQUAL(sx_bio_update_buffer(b, 2, &s2), 0);
        fill(other, PAGE, 11);
        struct iovec w2 = { other, PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &w2, 1, 40 * PAGE, 7)), PAGE);
        sx_bio_get_stats(b, &st);
        uint64_t fixed_before = st.fixed;
        CU_ASSERT_EQUAL(fixed_before, sx_bio_has_vec_fixed(b) ? 4u : 3u);
        /* empty slot 1 again: I/O from that memory falls back to a plain writev */
        CU_ASSERT_EQUAL(sx_bio_update_buffer(b, 1, NULL), 0);
        struct iovec w3 = { pool + 4 * PAGE, PAGE };
        fill(pool + 4 * PAGE, PAGE, 12);
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &w3, 1, 41 * PAGE, 8)), PAGE);
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.fixed, fixed_before);
        struct iovec rc3 = { chk, 2 * PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rc3, 1, 40 * PAGE, 9)), 2 * PAGE);
        CU_ASSERT_EQUAL(memcmp(chk, other, PAGE), 0);
        CU_ASSERT_EQUAL(memcmp(chk + PAGE, pool + 4 * PAGE, PAGE), 0);
        CU_ASSERT_EQUAL(sx_bio_update_buffer(b, 4, &s2), -EINVAL);
        sx_bio_close(b);
        free(pool);
        free(other);
        free(chk);
    }
    /* Other engines say so. */
    struct sx_bio *b = NULL;
    struct iovec one = { &b, sizeof(b) };
    for (size_t ki = 0; ki < NKINDS; ki++) {
        if (kinds[ki] == SX_BIO_URING)
            continue;
        for (size_t ti = 0; ti < NTARGETS; ti++) {
            if (targets[ti].fd < 0)
                continue;
            CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, kinds[ki], targets[ti].fd, 2, 0), 0);
            CU_ASSERT_EQUAL(sx_bio_register_buffers(b, &one, 1), -EOPNOTSUPP);
            sx_bio_close(b);
            break;
        }
    }
}

/* SQPOLL: the kernel thread picks the SQEs up; IOPOLL (O_DIRECT only): completions are
 * found by polling. Data still round-trips. */
static void test_sqpoll_and_iopoll_roundtrip(void)
{
    for (size_t i = 0; i < 2 * NTARGETS; i++) {
        struct target *t = &targets[i % NTARGETS];
        unsigned flags = i < NTARGETS ? SX_BIO_F_SQPOLL : SX_BIO_F_IOPOLL;
        if (!uring_ok || t->fd < 0 || (flags == SX_BIO_F_IOPOLL && (!t->direct || t->blkdev)))
            continue;
        struct sx_bio *b = NULL;
        int rc = sx_bio_open(&b, SX_BIO_URING, t->fd, 8, flags);
        if (rc < 0) {
            printf("\n  %s unavailable: %s\n", flags == SX_BIO_F_SQPOLL ? "SQPOLL" : "IOPOLL",
                   strerror(-rc));
            continue;
        }
        uint8_t *w = xalloc(2 * PAGE), *r = xalloc(2 * PAGE);
        fill(w, 2 * PAGE, 31);
        struct iovec wv = { w, 2 * PAGE }, rv = { r, 2 * PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &wv, 1, 50 * PAGE, 1)), 2 * PAGE);
        int32_t res = do_one(b, sx_bio_readv(b, &rv, 1, 50 * PAGE, 2));
        if (flags == SX_BIO_F_IOPOLL && res == -EOPNOTSUPP) {
            /* A read that needs a polled bio on a device without poll queues
             * (/sys/block/X/queue/io_poll = 0, e.g. virtio-blk without poll_queues). */
            printf("\n  IOPOLL on %s: reads need poll queues, the device has none "
                   "(EOPNOTSUPP)\n", t->name);
        } else {
            CU_ASSERT_EQUAL(res, 2 * PAGE);
            CU_ASSERT_EQUAL(memcmp(w, r, 2 * PAGE), 0);
        }
        sx_bio_close(b);
        free(w);
        free(r);
    }
}

/* MEM: the mapping and the file are one: what the engine writes, pread sees, and what pwrite
 * writes, the engine reads; nothing is cached in between. */
static void test_mem_engine_and_the_file_agree(void)
{
    for (size_t ti = 0; ti < NTARGETS; ti++) {
        if (targets[ti].fd < 0 || targets[ti].blkdev || targets[ti].direct)
            continue;
        struct sx_bio *b = open_engine(&targets[ti], SX_BIO_MEM, 4);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        uint8_t *w = xalloc(2 * PAGE), *r = xalloc(2 * PAGE);
        fill(w, 2 * PAGE, 4242 + ti);
        struct iovec wv[2] = { { w, 512 }, { w + 512, 2 * PAGE - 512 } };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, wv, 2, 40 * PAGE + 512, 1)), 2 * PAGE);
        CU_ASSERT_EQUAL(pread(targets[ti].fd, r, 2 * PAGE, 40 * PAGE + 512), 2 * PAGE);
        CU_ASSERT_EQUAL(memcmp(w, r, 2 * PAGE), 0);
        fill(w, 2 * PAGE, 99 + ti);
        CU_ASSERT_EQUAL(pwrite(targets[ti].fd, w, 2 * PAGE, 60 * PAGE), 2 * PAGE);
        memset(r, 0, 2 * PAGE);
        struct iovec rv = { r, 2 * PAGE };
        CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rv, 1, 60 * PAGE, 2)), 2 * PAGE);
        CU_ASSERT_EQUAL(memcmp(w, r, 2 * PAGE), 0);
        struct sx_bio_stats st;
        sx_bio_get_stats(b, &st);
        CU_ASSERT_EQUAL(st.errors, 0);
        sx_bio_close(b);
        free(w);
        free(r);
    }
}

/* A scratch file on tmpfs with a MEM engine on it (false: no tmpfs here). */
static bool mem_scratch(const char *tag, struct target *t, int *fd, struct sx_bio **b)
{
    if (targets[0].fd < 0)
        return false;
    *t = targets[0];
    *fd = open_target(t, "/dev/shm", tag);
    CU_ASSERT_FATAL(*fd >= 0);
    *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_bio_open(b, SX_BIO_MEM, *fd, 4, 0), 0);
    return true;
}

static void mem_scratch_end(struct target *t, int fd, struct sx_bio *b)
{
    sx_bio_close(b);
    close(fd);
    unlink(t->path);
}

/* MEM: the file shrinks under the mapping (an operator truncates the image; or a sparse image
 * on a full tmpfs). A copy from the vanished pages faults: that operation completes with -EIO,
 * the process lives on, and the next operation on what is still there works. */
static void test_mem_fault_fails_the_operation_not_the_process(void)
{
    struct target t;
    struct sx_bio *b;
    int fd;
    if (!mem_scratch("shrink", &t, &fd, &b))
        return;
    uint8_t *w = xalloc(PAGE), *r = xalloc(PAGE);
    fill(w, PAGE, 5);
    struct iovec wv = { w, PAGE }, rv = { r, PAGE };
    CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &wv, 1, 0, 1)), PAGE);
    CU_ASSERT_EQUAL(ftruncate(fd, 4 * PAGE), 0);
    CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rv, 1, 100 * PAGE, 2)), -EIO);
    CU_ASSERT_EQUAL(do_one(b, sx_bio_writev(b, &wv, 1, 200 * PAGE, 3)), -EIO);
    /* The same again: the guard is re-armed every time. */
    CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rv, 1, 100 * PAGE, 4)), -EIO);
    memset(r, 0, PAGE);
    CU_ASSERT_EQUAL(do_one(b, sx_bio_readv(b, &rv, 1, 0, 5)), PAGE);
    CU_ASSERT_EQUAL(memcmp(w, r, PAGE), 0);
    struct sx_bio_stats st;
    sx_bio_get_stats(b, &st);
    CU_ASSERT_EQUAL(st.errors, 3);
    CU_ASSERT_EQUAL(st.completed, 5);
    mem_scratch_end(&t, fd, b);
    free(w);
    free(r);
}

/* MEM: a SIGBUS outside a guarded copy is not swallowed: a process that touches a vanished
 * page of its own mapping still dies of it (in a child, so the test lives on). */
static void test_mem_guard_leaves_other_faults_alone(void)
{
    struct target t;
    struct sx_bio *b;
    int fd;
    if (!mem_scratch("other", &t, &fd, &b))     /* the engine installed its handler */
        return;
    volatile uint8_t *m = mmap(NULL, 8 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CU_ASSERT_FATAL(m != MAP_FAILED);
    CU_ASSERT_EQUAL(ftruncate(fd, PAGE), 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* A sanitizer's report of the fault would only be noise, and one written to its
         * log_path (as the test runner sets under ThreadSanitizer) fails the run. */
        int fdn = open("/dev/null", O_WRONLY);
        if (fdn >= 0) {
            dup2(fdn, 2);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
            __sanitizer_set_report_fd((void *)(intptr_t)fdn);
#endif
        }
        uint8_t v = m[4 * PAGE];
        _exit(v == 0xAB ? 3 : 0);
    }
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    /* Killed by SIGBUS, or (under a sanitizer) its report's non-zero exit: never a clean 0. */
    CU_ASSERT(WIFSIGNALED(status) ? WTERMSIG(status) == SIGBUS : WEXITSTATUS(status) != 0);
    munmap((void *)m, 8 * PAGE);
    mem_scratch_end(&t, fd, b);
}

static void test_kind_auto_per_target(void)
{
    if (targets[0].fd >= 0) {
        /* tmpfs: mapped (MEM), unless there is nothing to map (an empty file: SYNC). */
        CU_ASSERT_EQUAL(sx_bio_kind_auto(targets[0].fd, NULL), SX_BIO_MEM);
        CU_ASSERT_EQUAL(sx_bio_kind_auto(-1, targets[0].path), SX_BIO_MEM);
        char empty[300];
        snprintf(empty, sizeof(empty), "%s.empty", targets[0].path);
        int efd = open(empty, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CU_ASSERT_FATAL(efd >= 0);
        CU_ASSERT_EQUAL(sx_bio_kind_auto(efd, NULL), SX_BIO_SYNC);
        close(efd);
        unlink(empty);
    }
    if (targets[1].fd >= 0) {
        CU_ASSERT_EQUAL(sx_bio_kind_auto(targets[1].fd, NULL), SX_BIO_SYNC);
    }
    if (targets[2].fd >= 0) {
        CU_ASSERT_EQUAL(sx_bio_kind_auto(targets[2].fd, NULL), SX_BIO_URING);
    }
    if (targets[3].fd >= 0) {
        CU_ASSERT_EQUAL(sx_bio_kind_auto(targets[3].fd, NULL), SX_BIO_URING);
        CU_ASSERT_EQUAL(sx_bio_kind_auto(-1, targets[3].path), SX_BIO_URING);
    }
    struct stat st;
    if (stat("/dev/vda", &st) == 0 && S_ISBLK(st.st_mode)) {
        CU_ASSERT_EQUAL(sx_bio_kind_auto(-1, "/dev/vda"), SX_BIO_URING);
    }
    CU_ASSERT_EQUAL(sx_bio_kind_auto(-1, "/nonexistent/sx"), SX_BIO_URING);
    /* AUTO resolves at open. */
    for (size_t ti = 0; ti < NTARGETS; ti++) {
        if (targets[ti].fd < 0 ||
            (!uring_ok && sx_bio_kind_auto(targets[ti].fd, NULL) == SX_BIO_URING))
            continue;
        struct sx_bio *b = NULL;
        CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, SX_BIO_AUTO, targets[ti].fd, 4, 0), 0);
        CU_ASSERT_EQUAL(sx_bio_kind(b), sx_bio_kind_auto(targets[ti].fd, NULL));
        sx_bio_close(b);
    }
}

static void test_open_rejects_bad_arguments(void)
{
    struct sx_bio *b = (struct sx_bio *)&b;
    int fd = targets[0].fd >= 0 ? targets[0].fd : targets[1].fd >= 0 ? targets[1].fd : targets[2].fd;
    CU_ASSERT_EQUAL(sx_bio_open(&b, SX_BIO_URING, fd, 0, 0), -EINVAL);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT_EQUAL(sx_bio_open(&b, SX_BIO_URING, fd, SX_BIO_MAX_DEPTH + 1, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_open(&b, SX_BIO_SYNC, fd, 4, SX_BIO_F_SQPOLL), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_open(&b, SX_BIO_URING, -1, 4, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_open(&b, SX_BIO_URING, fd, 4, 1u << 7), -EINVAL);
    sx_bio_close(NULL);
    CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, SX_BIO_SYNC, fd, 4, 0), 0);
    struct iovec v = { &fd, sizeof(fd) };
    CU_ASSERT_EQUAL(sx_bio_readv(b, &v, 0, 0, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_readv(b, &v, SX_BIO_MAX_IOVCNT + 1, 0, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_discard(b, 0, 0, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_discard(b, UINT64_MAX - 10, 100, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_bio_busy(b), 0);
    CU_ASSERT_EQUAL(sx_bio_submit(b), 0);
    sx_bio_close(b);
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Regression (issue 14): close waited 10 s for a read that never completes, then closed the
 * ring and freed, although the kernel tears a ring down after close() returns. Now the read is
 * cancelled, its completion collected, and close says nothing is left running: the buffer is
 * the caller's again, and data written to the FIFO afterwards stays in the FIFO. */
static void test_close_cancels_a_read_that_never_completes(void)
{
    if (!uring_ok) {
        printf("note: io_uring unavailable: nothing to cancel\n");
        return;
    }
    char path[64];
    snprintf(path, sizeof(path), "/tmp/sx-io-test.%d.fifo", (int)getpid());
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    int fd = open(path, O_RDWR | O_CLOEXEC);   /* read-write: open does not wait for a peer */
    unlink(path);
    CU_ASSERT_FATAL(fd >= 0);
    struct sx_bio *b = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_bio_open(&b, SX_BIO_URING, fd, 4, 0), 0);
    uint8_t *buf = xalloc(PAGE);
    struct iovec v = { buf, PAGE };
    CU_ASSERT_EQUAL(sx_bio_readv(b, &v, 1, 0, 7), 0);
    CU_ASSERT_EQUAL(sx_bio_submit(b), 1);
    struct sx_bio_cpl c;
    CU_ASSERT_EQUAL(sx_bio_reap(b, &c, 1), 0);
    uint64_t abandoned = sx_bio_abandoned();
    int64_t t0 = mono_ms();
    CU_ASSERT_EQUAL(sx_bio_close(b), 0);
    int64_t took = mono_ms() - t0;
    printf("\n    close with a read hung on a FIFO: %lld ms\n", (long long)took);
    CU_ASSERT(took < 5000);
    CU_ASSERT_EQUAL(sx_bio_abandoned(), abandoned);
    CU_ASSERT_EQUAL(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    CU_ASSERT_EQUAL(write(fd, "late", 4), 4);
    char got[8] = { 0 };
    CU_ASSERT_EQUAL(read(fd, got, sizeof(got)), 4);
    CU_ASSERT_EQUAL(memcmp(got, "late", 4), 0);
    for (unsigned i = 0; i < PAGE; i++)
        if (buf[i] != 0xEE) {
            CU_FAIL("the cancelled read wrote into its buffer");
            break;
        }
    free(buf);
    close(fd);
}

/* An engine standing in for a device that never answers: operations run "in the kernel"
 * until cancelled, and cancel reaches them only when `cancellable`. */
static struct {
    bool cancellable;
    unsigned running, cancelled, cancels;
} hung;

static int hung_open(struct sx_bio *b, unsigned flags) { return 0; }
static void hung_close(struct sx_bio *b) {}
static int hung_queue(struct sx_bio *b, const struct sx_bio_op *op) { return 0; }
static int hung_submit(struct sx_bio *b)
{
    hung.running += b->queued;
    return (int)b->queued;
}
static int hung_reap(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    unsigned n = 0;
    while (n < max && hung.cancelled) {
        out[n++] = (struct sx_bio_cpl){ .cookie = 0, .res = -ECANCELED };
        hung.cancelled--;
    }
    return (int)n;
}
static bool hung_ready(struct sx_bio *b) { return hung.cancelled > 0; }
static void hung_cancel(struct sx_bio *b)
{
    hung.cancels++;
    if (hung.cancellable) {
        hung.cancelled += hung.running;
        hung.running = 0;
        sx_bio_event_signal(b);
    }
}
static const struct sx_bio_ops hung_ops = {
    .open = hung_open, .close = hung_close, .queue = hung_queue, .submit = hung_submit,
    .reap = hung_reap, .ready = hung_ready, .cancel = hung_cancel,
};

/* Close waits only while operations keep completing, cancels the rest, and reports (and counts)
 * what it could not stop, so that the caller keeps those buffers. */
static void test_close_reports_operations_it_cannot_stop(void)
{
    int fd = targets[0].fd >= 0 ? targets[0].fd : targets[1].fd >= 0 ? targets[1].fd : targets[2].fd;
    uint8_t buf[512];
    struct iovec v = { buf, sizeof(buf) };
    for (int cancellable = 1; cancellable >= 0; cancellable--) {
        memset(&hung, 0, sizeof(hung));
        hung.cancellable = cancellable;
        struct sx_bio *b = NULL;
        CU_ASSERT_EQUAL_FATAL(sx_bio_open_ops(&b, &hung_ops, SX_BIO_URING, fd, 4, 0), 0);
        CU_ASSERT_EQUAL(sx_bio_readv(b, &v, 1, 0, 1), 0);
        CU_ASSERT_EQUAL(sx_bio_writev(b, &v, 1, 512, 2), 0);
        CU_ASSERT_EQUAL(sx_bio_submit(b), 2);
        uint64_t abandoned = sx_bio_abandoned();
        int64_t t0 = mono_ms();
        unsigned left = sx_bio_close(b);
        int64_t took = mono_ms() - t0;
        printf("\n    %s: close took %lld ms, %u left\n",
               cancellable ? "cancellable" : "stuck", (long long)took, left);
        CU_ASSERT_EQUAL(hung.cancels, 1);
        CU_ASSERT_EQUAL(left, cancellable ? 0 : 2);
        CU_ASSERT_EQUAL(sx_bio_abandoned(), abandoned + left);
        CU_ASSERT(took < 5000);
    }
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_writev_readv_roundtrip),
    SX_TEST(test_batch_of_64_in_one_submit),
    SX_TEST(test_flush_completes),
    SX_TEST(test_discard_zeroes_range),
    SX_TEST(test_read_past_end_of_short_file),
    SX_TEST(test_write_to_rdonly_fd_completes_with_ebadf),
    SX_TEST(test_queue_full_eagain_then_success_after_reap),
    SX_TEST(test_event_fd_signals_completion),
    SX_TEST(test_quiet_inline_completions_skip_the_event_fd),
    SX_TEST(test_registered_buffers),
    SX_TEST(test_sqpoll_and_iopoll_roundtrip),
    SX_TEST(test_mem_engine_and_the_file_agree),
    SX_TEST(test_mem_fault_fails_the_operation_not_the_process),
    SX_TEST(test_mem_guard_leaves_other_faults_alone),
    SX_TEST(test_kind_auto_per_target),
    SX_TEST(test_open_rejects_bad_arguments),
    SX_TEST(test_close_cancels_a_read_that_never_completes),
    SX_TEST(test_close_reports_operations_it_cannot_stop),
};

SX_TEST_MAIN("blkback_io", cases, suite_init, suite_clean)
