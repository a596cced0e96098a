/*
 * Log-dirty tracking (xen-core/logdirty.c): a guest process (a forked child, its own mm)
 * writes its memory through its own mapping and the core's rounds see exactly those frames;
 * a write after a round lands in the next one; a mapping made while tracking is on is
 * protected at once; a backend's grant copy and the end of a writable grant mapping mark their
 * frame, and a frame pinned writable is found by the pin scan; a process that maps its domain
 * without handing over a tracker makes ENABLE refuse; after DISABLE rounds are refused.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grant/grant.h"
#include "tests/simenv.h"
#include "tests/sxtest.h"
#include "xen-core/domstate.h"
#include "xen-core/proto.h"

SIMENV_DOM0_SUITE()

/* A child acting as guest `domid`: maps its memory, shares one page with dom0, then writes
 * frames on command. Commands: u32 frame to write (UINT32_MAX: quit). Replies: u32 (the
 * shared page's frame first, then the frame written). */
struct child {
    pid_t pid;
    int cmd, rsp;
};

static void child_main(domid_t domid, int cmd, int rsp)
{
    struct sx_plat *p = NULL;
    struct sxc_dom *d = NULL;
    struct sx_gntshr *shr = NULL;
    uint32_t out = UINT32_MAX;
    if (sx_plat_open(&p, SX_PLAT_SIM, domid, env.sock) == 0 &&
        sxc_domain_get(p->conn, domid, &d) == 0 && sx_gntshr_open(&shr, p) == 0) {
        grant_ref_t ref;
        void *pg;
        if (sx_gntshr_share(shr, 0, 1, true, &ref, &pg) == 0)
            out = (uint32_t)(((uint8_t *)pg - d->mem) / 4096) | ref << 16;
    }
    if (write(rsp, &out, 4) != 4)
        _exit(1);
    uint32_t f;
    while (read(cmd, &f, 4) == 4 && f != UINT32_MAX) {
        d->mem[(uint64_t)f * 4096 + 17] ^= 0x5a;    /* may fault: the core lets it go on */
        if (write(rsp, &f, 4) != 4)
            _exit(1);
    }
    _exit(0);
}

static int child_start(struct child *c, domid_t domid, uint32_t *shared_frame, grant_ref_t *ref)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b))
        return -1;
    fflush(NULL);
    c->pid = fork();
    if (c->pid == 0) {
        close(a[1]);
        close(b[0]);
        child_main(domid, a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    c->cmd = a[1];
    c->rsp = b[0];
    uint32_t v;
    if (read(c->rsp, &v, 4) != 4 || v == UINT32_MAX)
        return -1;
    *shared_frame = v & 0xffff;
    *ref = v >> 16;
    return 0;
}

static int child_write(struct child *c, uint32_t frame)
{
    uint32_t got;
    if (write(c->cmd, &frame, 4) != 4)
        return -1;
    struct pollfd p = { .fd = c->rsp, .events = POLLIN };
    if (poll(&p, 1, 5000) != 1 || read(c->rsp, &got, 4) != 4)
        return -1;
    return got == frame ? 0 : -1;
}

static void child_stop(struct child *c)
{
    uint32_t q = UINT32_MAX;
    if (write(c->cmd, &q, 4) != 4)
        kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->cmd);
    close(c->rsp);
}

/* The frames set in the domain's round bitmap, as a sorted list (at most max). */
static unsigned round_frames(struct sxc_dom *d, uint32_t *out, unsigned max)
{
    unsigned n = 0;
    _Atomic uint64_t *rb = sxd_round_bitmap(d->shared);
    for (uint64_t f = 0; f < d->shared->nr_pages; f++)
        if ((atomic_load(&rb[f / 64]) >> (f % 64)) & 1) {
            if (n < max)
                out[n] = (uint32_t)f;
            n++;
        }
    return n;
}

/* A guest of 8 MiB with a child process acting as it (sharing one page with dom0), mapped
 * here, in log-dirty mode after an empty first round. Returns its domid. */
static int tracked_guest(const char *name, struct child *ch, uint32_t *sframe,
                         grant_ref_t *ref, struct sxc_dom **d)
{
    struct sxc_conn *c = dom0->conn;
    int dom = sxc_domain_create(c, name, SXD_TYPE_PV, 8, 1, false);
    CU_ASSERT_FATAL(dom > 0);
    CU_ASSERT_EQUAL_FATAL(child_start(ch, (domid_t)dom, sframe, ref), 0);
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(c, (domid_t)dom, d), 0);
    unsigned untracked = 99;
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ENABLE, &untracked), 0);
    CU_ASSERT_EQUAL(untracked, 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 0);
    return dom;
}

static void test_guest_writes_from_another_process_are_tracked(void)
{
    struct sxc_conn *c = dom0->conn;
    struct child ch;
    uint32_t sframe;
    grant_ref_t ref;
    struct sxc_dom *d;
    int dom = tracked_guest("ld-guest", &ch, &sframe, &ref, &d);

    /* Three frames, one of them twice, one never populated before. */
    CU_ASSERT_EQUAL(child_write(&ch, 3), 0);
    CU_ASSERT_EQUAL(child_write(&ch, 700), 0);
    CU_ASSERT_EQUAL(child_write(&ch, 3), 0);
    CU_ASSERT_EQUAL(child_write(&ch, 2047), 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 3);
    uint32_t f[8];
    CU_ASSERT_EQUAL_FATAL(round_frames(d, f, 8), 3);
    CU_ASSERT(f[0] == 3 && f[1] == 700 && f[2] == 2047);
    /* The content the round copies is the written one (the write went through). */
    CU_ASSERT_EQUAL(d->mem_ro[3 * 4096 + 17], 0);      /* written twice: back to 0 */
    CU_ASSERT_EQUAL(d->mem_ro[700 * 4096 + 17], 0x5a);

    /* After the round the frames are protected again: a second write is seen again. */
    CU_ASSERT_EQUAL(child_write(&ch, 700), 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 1);
    CU_ASSERT_EQUAL(round_frames(d, f, 8), 1);
    CU_ASSERT_EQUAL(f[0], 700);
    /* Nothing written: an empty round. */
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 0);

    /* A second process of the guest maps its memory while tracking is on: protected at once
     * (its share of a page and its write both show). */
    struct child ch2;
    uint32_t sframe2;
    grant_ref_t ref2;
    CU_ASSERT_EQUAL_FATAL(child_start(&ch2, (domid_t)dom, &sframe2, &ref2), 0);
    CU_ASSERT_EQUAL(child_write(&ch2, 1500), 0);
    int64_t n = sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL);
    unsigned k = round_frames(d, f, 8);
    CU_ASSERT_EQUAL(n, (int64_t)k);
    bool seen = false, seen_share = false;
    for (unsigned i = 0; i < k && i < 8; i++) {
        seen |= f[i] == 1500;
        seen_share |= f[i] == sframe2;
    }
    CU_ASSERT(seen);
    CU_ASSERT(seen_share);

    /* Off: rounds are refused, writes go on. */
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_DISABLE, NULL), 0);
    CU_ASSERT_EQUAL(child_write(&ch, 5), 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), -EINVAL);
    child_stop(&ch2);
    child_stop(&ch);
    sxc_domain_put(c, d);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)dom), 0);
}

static void test_backend_writes_through_grants_are_tracked(void)
{
    struct sxc_conn *c = dom0->conn;
    struct child ch;
    uint32_t sframe;
    grant_ref_t ref;
    struct sxc_dom *d;
    int dom = tracked_guest("ld-backend", &ch, &sframe, &ref, &d);

    /* A grant copy into the guest's page (netback's rx). */
    struct sx_gnt *gnt;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_open(&gnt, dom0), 0);
    uint8_t src[64];
    memset(src, 0x33, sizeof(src));
    xengnttab_grant_copy_segment_t seg = {
        .source.virt = src, .dest.foreign = { .ref = ref, .offset = 0, .domid = (domid_t)dom },
        .len = sizeof(src), .flags = GNTCOPY_dest_gref,
    };
    CU_ASSERT_EQUAL(sx_gnt_copy(gnt, 1, &seg), 0);
    CU_ASSERT_EQUAL(seg.status, GNTST_okay);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 1);
    uint32_t f[4];
    CU_ASSERT_EQUAL(round_frames(d, f, 4), 1);
    CU_ASSERT_EQUAL(f[0], sframe);

    /* A writable mapping held across rounds (a persistent grant): the pin scan finds it, and
     * its end marks it. */
    void *map;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, (domid_t)dom, 1, &ref, true, &map, NULL), 0);
    memset(map, 0x44, 32);
    uint64_t bm[2048 / 64] = { 0 };
    CU_ASSERT_EQUAL(sxm_mark_pinned(d, bm), 1);
    CU_ASSERT((bm[sframe / 64] >> (sframe % 64)) & 1);
    CU_ASSERT_EQUAL(sxm_mark_pinned(d, bm), 0);     /* already set */
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 0);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, map, 1), 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 1);
    /* A read-only mapping marks nothing. */
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, (domid_t)dom, 1, &ref, false, &map, NULL), 0);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, map, 1), 0);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), 0);
    sx_gnt_close(gnt);
    child_stop(&ch);
    sxc_domain_put(c, d);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)dom), 0);
}

/* Speak the core's protocol by hand: HELLO as `domid`, then map its memory without handing
 * over a tracker. Returns the connected socket. */
static int raw_mapper(domid_t domid)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(env.sock) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, env.sock, strlen(env.sock) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    struct sxp_msg m = { .op = SXP_HELLO, .a = { domid } };
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    for (int step = 0; step < 2; step++) {
        if (send(fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m))
            return -1;
        struct iovec iov = { &m, sizeof(m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf) };
        if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(m) || m.rc != 0)
            return -1;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            int *fds = (int *)CMSG_DATA(cm);
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                close(fds[i]);
        }
        m = (struct sxp_msg){ .op = SXP_DOM_GET, .a = { domid } };
    }
    return fd;
}

static void test_an_untracked_writer_refuses_log_dirty(void)
{
    struct sxc_conn *c = dom0->conn;
    int dom = sxc_domain_create(c, "ld-untracked", SXD_TYPE_PV, 8, 1, false);
    CU_ASSERT_FATAL(dom > 0);
    int fd = raw_mapper((domid_t)dom);
    CU_ASSERT_FATAL(fd >= 0);
    unsigned untracked = 0;
    CU_ASSERT_EQUAL(sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ENABLE, &untracked),
                    -EOPNOTSUPP);
    CU_ASSERT_EQUAL(untracked, 1);
    /* Once it is gone, tracking can start. */
    close(fd);
    int rc = -1;
    for (int i = 0; i < 200 && rc != 0; i++) {
        rc = (int)sxc_domain_logdirty(c, (domid_t)dom, SXC_LOGDIRTY_ENABLE, NULL);
        if (rc)
            usleep(5000);
    }
    CU_ASSERT_EQUAL(rc, 0);
    /* Only the toolstack domain may drive it. */
    struct sx_plat *g = simenv_plat(&env, (domid_t)dom);
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT_EQUAL(sxc_domain_logdirty(g->conn, (domid_t)dom, SXC_LOGDIRTY_ROUND, NULL), -EPERM);
    sx_plat_close(g);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)dom), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_guest_writes_from_another_process_are_tracked),
    SX_TEST(test_backend_writes_through_grants_are_tracked),
    SX_TEST(test_an_untracked_writer_refuses_log_dirty),
};

SX_TEST_MAIN("logdirty", cases, setup, teardown)
