/*
 * A guest moved to another core (sx_plat_move) with its grant and event handles following it
 * (sx_gntshr_resume, sx_evtchn_resume): two in-process cores, a guest on the first sharing
 * pages and holding a port, its state exported and imported into a new domain on the second.
 * In the new home the old shares are ended and their frames and references freed (the
 * allocator counts what it did before they were made), the restored port is closed, the event
 * handle keeps its fd and a peer on the new core wakes it, and new shares work there.
 */
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/simenv.h"
#include "tests/sxtest.h"
#include "xen-core/domstate.h"

static struct simenv a, b;

static int setup(void)
{
    if (simenv_start(&a, false) < 0 || simenv_start(&b, false) < 0)
        return 1;
    return 0;
}

static int teardown(void)
{
    simenv_stop(&b);
    simenv_stop(&a);
    return 0;
}

/* Copy domain `from` of one core into a new paused domain of another, as a save and restore
 * would. Returns the new domid. */
static int copy_domain(struct sx_plat *src0, domid_t from, struct sx_plat *dst0, const char *name)
{
    struct sxc_dom *d;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(src0->conn, from, &d), 0);
    int fd = memfd_create("sx-move-test", MFD_CLOEXEC);
    struct sxm_writer *w;
    CU_ASSERT_EQUAL_FATAL(sxm_writer_open(&w, fd, 0, 1), 0);
    struct sxm_page_stats st = { 0 };
    CU_ASSERT_EQUAL(sxm_put_all_pages(w, d, &st), 0);
    CU_ASSERT_EQUAL(sxm_put_state(w, d), 0);
    CU_ASSERT_EQUAL(sxm_writer_finish(w), 0);
    sxm_writer_close(w);
    struct sxm_domain info;
    sxm_domain_info(d, &info);
    sxc_domain_put(src0->conn, d);
    int to = sxc_domain_create(dst0->conn, name, SXD_TYPE_PV, info.mem_mb, 1, true);
    CU_ASSERT_FATAL(to > 0);
    struct sxc_dom *nd;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dst0->conn, (domid_t)to, &nd), 0);
    lseek(fd, 0, SEEK_SET);
    struct sxm_reader *r;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, fd, err, sizeof(err)), 0);
    uint32_t t;
    const void *buf;
    size_t len;
    int rc;
    while ((rc = sxm_read(r, &t, &buf, &len)) == 1) {
        CU_ASSERT_EQUAL(sxm_check_record(t, buf, len, &info, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(sxm_apply_record(dst0->conn, nd, t, buf, len), 0);
    }
    CU_ASSERT_EQUAL(rc, 0);
    sxm_reader_close(r);
    close(fd);
    sxc_domain_put(dst0->conn, nd);
    CU_ASSERT_EQUAL(sxc_domain_unpause(dst0->conn, (domid_t)to), 0);
    return to;
}

static void test_a_moved_guest_gives_up_old_grants_and_ports_in_its_new_home(void)
{
    struct sx_plat *a0 = simenv_plat(&a, 0), *b0 = simenv_plat(&b, 0);
    CU_ASSERT_FATAL(a0 && b0);
    int from = sxc_domain_create(a0->conn, "mover", SXD_TYPE_PV, 8, 1, false);
    CU_ASSERT_FATAL(from > 0);
    struct sx_plat *g = simenv_plat(&a, (domid_t)from);
    CU_ASSERT_FATAL(g != NULL);
    struct sx_gntshr *shr;
    struct sx_evtchn *ev;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_open(&shr, g), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ev, g), 0);
    struct sxc_dom *gd;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(g->conn, (domid_t)from, &gd), 0);
    uint64_t pages0 = gd->shared->pages_used, grefs0 = gd->shared->grefs_used;
    sxc_domain_put(g->conn, gd);
    grant_ref_t refs[3];
    void *mem;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 3, true, refs, &mem), 0);
    memset(mem, 0x77, 3 * 4096);
    int port = sx_evtchn_bind_unbound(ev, 0);
    CU_ASSERT_FATAL(port > 0);
    int efd = sx_evtchn_fd(ev);

    int to = copy_domain(a0, (domid_t)from, b0, "mover");
    CU_ASSERT_EQUAL_FATAL(sx_plat_move(g, b.sock, (domid_t)to), 0);
    CU_ASSERT_EQUAL(g->self, (domid_t)to);
    CU_ASSERT_STRING_EQUAL(g->run_dir, b.dir);
    /* A second move while the first is not done is refused. */
    CU_ASSERT_EQUAL(sx_plat_move(g, b.sock, (domid_t)to), -EINVAL);

    struct sxc_dom *nd;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(b0->conn, (domid_t)to, &nd), 0);
    CU_ASSERT_EQUAL(nd->shared->pages_used, pages0 + 3);      /* came with the memory */
    CU_ASSERT_EQUAL(sx_gntshr_resume(shr, g), 0);
    CU_ASSERT_EQUAL(nd->shared->pages_used, pages0);
    CU_ASSERT_EQUAL(nd->shared->grefs_used, grefs0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(sxd_grant_table(nd->shared)[refs[i]].flags, 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, mem, 3), -EINVAL);   /* given up already */

    struct sxd_port *np = &sxd_ports(nd->shared)[port];
    CU_ASSERT_EQUAL(atomic_load(&np->state), SXD_PORT_UNBOUND);  /* restored */
    CU_ASSERT_EQUAL(sx_evtchn_resume(ev, g), 0);
    CU_ASSERT_EQUAL(atomic_load(&np->state), SXD_PORT_FREE);     /* closed in the new home */
    CU_ASSERT_EQUAL(sx_evtchn_fd(ev), efd);
    CU_ASSERT_EQUAL(sx_evtchn_nr_bound(ev), 0);
    sx_plat_move_done(g);

    /* Work goes on there: a new share for B's dom0 and a channel it notifies. */
    void *m2;
    grant_ref_t r2;
    CU_ASSERT_EQUAL(sx_gntshr_share(shr, 0, 1, true, &r2, &m2), 0);
    CU_ASSERT_EQUAL(nd->shared->pages_used, pages0 + 1);
    int p2 = sx_evtchn_bind_unbound(ev, 0);
    CU_ASSERT_FATAL(p2 > 0);
    struct sx_evtchn *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, b0), 0);
    int bp = sx_evtchn_bind_interdomain(be, (domid_t)to, (evtchn_port_t)p2);
    CU_ASSERT_FATAL(bp > 0);
    uint64_t drain;
    while (read(efd, &drain, sizeof(drain)) > 0)
        ;   /* the resume's own wake-up */
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
    struct pollfd pf = { .fd = efd, .events = POLLIN };
    CU_ASSERT_EQUAL(poll(&pf, 1, 2000), 1);
    CU_ASSERT_EQUAL(sx_evtchn_pending(ev), p2);
    sx_evtchn_close(be);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, m2, 1), 0);
    sxc_domain_put(b0->conn, nd);
    sx_evtchn_close(ev);
    sx_gntshr_close(shr);
    sx_plat_close(g);
    CU_ASSERT_EQUAL(sxc_domain_destroy(a0->conn, (domid_t)from), 0);
    CU_ASSERT_EQUAL(sxc_domain_destroy(b0->conn, (domid_t)to), 0);
    sx_plat_close(a0);
    sx_plat_close(b0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_a_moved_guest_gives_up_old_grants_and_ports_in_its_new_home),
};

SX_TEST_MAIN("move", cases, setup, teardown)
