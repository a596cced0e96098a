/* Grant tables on the sim hypervisor: Xen's v1 semantics, each failure status. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#include "grant/grant.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"

static struct simenv env;
static struct sx_plat *dom0, *guest;
static struct sx_gnt *gnt;         /* backend, dom0 */
static struct sx_gntshr *shr;      /* frontend, guest */
static domid_t gid, other;

static int setup(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    if (!dom0)
        return 1;
    int d = sxc_domain_create(dom0->conn, "guest", SXD_TYPE_PV, 16, 1, false);
    int o = sxc_domain_create(dom0->conn, "other", SXD_TYPE_PV, 16, 1, false);
    if (d < 0 || o < 0)
        return 1;
    gid = (domid_t)d;
    other = (domid_t)o;
    guest = simenv_plat(&env, gid);
    if (!guest || sx_gnt_open(&gnt, dom0) < 0 || sx_gntshr_open(&shr, guest) < 0)
        return 1;
    return 0;
}

static int teardown(void)
{
    sx_gnt_close(gnt);
    sx_gntshr_close(shr);
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static grant_entry_v1_t *entry(grant_ref_t ref)
{
    struct sxc_dom *d;
    if (sxc_domain_get(guest->conn, gid, &d) < 0)
        return NULL;
    return &sxd_grant_table(d->shared)[ref];
}

static void test_map_writable_sets_status_bits_and_unshare_is_refused_while_mapped(void)
{
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    CU_ASSERT(ref >= SXD_GNTTAB_RESERVED);
    memset(gpage, 0xab, 4096);
    int16_t st = 99;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &ref, true, &bpage, &st), 0);
    CU_ASSERT_EQUAL(st, GNTST_okay);
    CU_ASSERT_EQUAL(((uint8_t *)bpage)[100], 0xab);
    ((uint8_t *)bpage)[7] = 0x11;                 /* the backend's write is the guest's data */
    CU_ASSERT_EQUAL(((uint8_t *)gpage)[7], 0x11);
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 1);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), -EBUSY);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 1), 0);
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), 0);
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 1), -EINVAL);   /* not mapped any more */
}

static void test_map_by_wrong_domain_is_general_error(void)
{
    grant_ref_t ref;
    void *gpage, *bpage = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, other, 1, true, &ref, &gpage), 0);
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_general_error);
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static void test_map_of_revoked_grant_is_general_error(void)
{
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_unshare(shr, gpage, 1), 0);
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_general_error);
}

static void test_writable_map_of_readonly_grant_is_general_error(void)
{
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, false, &ref, &gpage), 0);
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, true, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_general_error);
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), 0);
    /* Read-only is fine, and sets only GTF_reading. */
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), 0);
    CU_ASSERT_EQUAL(st, GNTST_okay);
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), GTF_reading);
    /* A write through a read-only mapping faults: check in a child. */
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);   /* sanitizers install their own handler */
        ((volatile uint8_t *)bpage)[0] = 1;
        _exit(0);
    }
    int wst;
    waitpid(pid, &wst, 0);
    CU_ASSERT(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGSEGV);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static void test_bad_ref_is_bad_gntref(void)
{
    grant_ref_t ref = SXD_NR_GRANT_DEFAULT + 3;
    void *bpage;
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_bad_gntref);
}

static void test_frame_outside_memory_is_bad_page(void)
{
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    /* A hostile guest rewrites its own entry to point past its memory. */
    grant_entry_v1_t *e = entry(ref);
    uint32_t saved = e->frame;
    e->frame = 16u * 256u + 5u;
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, true, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_bad_page);
    CU_ASSERT_EQUAL(e->flags & (GTF_reading | GTF_writing), 0);
    e->frame = saved;
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static void test_unknown_domain_is_bad_domain(void)
{
    grant_ref_t ref = 10;
    void *bpage;
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, 777, 1, &ref, false, &bpage, &st), -ESRCH);
    CU_ASSERT_EQUAL(st, GNTST_bad_domain);
}

static void test_batched_map_reports_each_status_and_is_all_or_nothing(void)
{
    grant_ref_t refs[3];
    void *p0, *p1, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &refs[0], &p0), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, false, &refs[2], &p1), 0);
    refs[1] = SXD_NR_GRANT_DEFAULT + 1;
    int16_t st[3] = { 9, 9, 9 };
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 3, refs, true, &bpage, st), -EINVAL);
    CU_ASSERT_EQUAL(st[0], GNTST_okay);
    CU_ASSERT_EQUAL(st[1], GNTST_bad_gntref);
    CU_ASSERT_EQUAL(st[2], GNTST_general_error);   /* read-only grant, writable map */
    CU_ASSERT_EQUAL(entry(refs[0])->flags & (GTF_reading | GTF_writing), 0);   /* rolled back */
    CU_ASSERT_EQUAL(sx_gnt_mapped_pages(gnt), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, p0, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, p1, 1), 0);
}

static void test_batched_map_of_scattered_frames_is_contiguous(void)
{
    grant_ref_t a, b, c;
    void *pa, *pb, *pc, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &a, &pa), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &b, &pb), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &c, &pc), 0);
    memset(pa, 'A', 4096);
    memset(pc, 'C', 4096);
    grant_ref_t refs[2] = { c, a };     /* reverse order: not contiguous in guest memory */
    int16_t st[2];
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 2, refs, true, &bpage, st), 0);
    CU_ASSERT_EQUAL(((uint8_t *)bpage)[0], 'C');
    CU_ASSERT_EQUAL(((uint8_t *)bpage)[4095], 'C');
    CU_ASSERT_EQUAL(((uint8_t *)bpage)[4096], 'A');
    ((uint8_t *)bpage)[4097] = 'z';
    CU_ASSERT_EQUAL(((uint8_t *)pa)[1], 'z');
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 2), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, pa, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, pb, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, pc, 1), 0);
}

static void test_two_mappings_pin_until_both_are_gone(void)
{
    grant_ref_t ref;
    void *gpage, *m1, *m2;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &ref, true, &m1, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, gid, 1, &ref, false, &m2, NULL), 0);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, m1, 1), 0);
    /* The writable pin is gone, the read-only one stays. */
    CU_ASSERT_EQUAL(entry(ref)->flags & (GTF_reading | GTF_writing), GTF_reading);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), -EBUSY);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, m2, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static void test_copy_statuses_and_data(void)
{
    grant_ref_t rw, ro;
    void *prw, *pro;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &rw, &prw), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, false, &ro, &pro), 0);
    memset(pro, 'r', 4096);
    char local[4096], out[64];
    memset(local, 'L', sizeof(local));
    memset(out, 0, sizeof(out));
    xengnttab_grant_copy_segment_t s[5] = {
        /* guest ro page -> local */
        { .source.foreign = { .ref = ro, .offset = 100, .domid = gid }, .dest.virt = out,
          .len = 64, .flags = GNTCOPY_source_gref },
        /* local -> guest rw page */
        { .source.virt = local, .dest.foreign = { .ref = rw, .offset = 4000, .domid = gid },
          .len = 96, .flags = GNTCOPY_dest_gref },
        /* local -> read-only grant: refused */
        { .source.virt = local, .dest.foreign = { .ref = ro, .offset = 0, .domid = gid },
          .len = 16, .flags = GNTCOPY_dest_gref },
        /* crossing the page */
        { .source.virt = local, .dest.foreign = { .ref = rw, .offset = 4000, .domid = gid },
          .len = 97, .flags = GNTCOPY_dest_gref },
        /* bad domain */
        { .source.foreign = { .ref = ro, .offset = 0, .domid = 999 }, .dest.virt = out,
          .len = 1, .flags = GNTCOPY_source_gref },
    };
    CU_ASSERT_EQUAL(sx_gnt_copy(gnt, 5, s), 0);
    CU_ASSERT_EQUAL(s[0].status, GNTST_okay);
    CU_ASSERT_EQUAL(s[1].status, GNTST_okay);
    CU_ASSERT_EQUAL(s[2].status, GNTST_general_error);
    CU_ASSERT_EQUAL(s[3].status, GNTST_bad_copy_arg);
    CU_ASSERT_EQUAL(s[4].status, GNTST_bad_domain);
    CU_ASSERT_EQUAL(out[0], 'r');
    CU_ASSERT_EQUAL(out[63], 'r');
    CU_ASSERT_EQUAL(((char *)prw)[4000], 'L');
    CU_ASSERT_EQUAL(((char *)prw)[4095], 'L');
    CU_ASSERT_EQUAL(((char *)prw)[3999], 0);
    /* Copies leave no pin behind. */
    CU_ASSERT_EQUAL(entry(rw)->flags & (GTF_reading | GTF_writing), 0);
    CU_ASSERT_EQUAL(entry(ro)->flags & (GTF_reading | GTF_writing), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, prw, 1), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, pro, 1), 0);
}

static void test_guest_changing_entry_to_invalid_blocks_new_pins(void)
{
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    grant_entry_v1_t *e = entry(ref);
    uint16_t saved = e->flags;
    e->flags = GTF_accept_transfer;      /* not a permit_access entry */
    int16_t st = 0;
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), -EINVAL);
    CU_ASSERT_EQUAL(st, GNTST_general_error);
    e->flags = saved | GTF_sub_page;     /* sub-page grants are not mappable */
    CU_ASSERT_EQUAL(sx_gnt_map(gnt, gid, 1, &ref, false, &bpage, &st), -EINVAL);
    e->flags = saved;
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static void test_closing_the_handle_releases_its_mappings(void)
{
    struct sx_gnt *g2;
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_open(&g2, dom0), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(g2, gid, 1, &ref, true, &bpage, NULL), 0);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), -EBUSY);
    sx_gnt_close(g2);
    CU_ASSERT_EQUAL(sx_gntshr_unshare(shr, gpage, 1), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_map_writable_sets_status_bits_and_unshare_is_refused_while_mapped),
    SX_TEST(test_map_by_wrong_domain_is_general_error),
    SX_TEST(test_map_of_revoked_grant_is_general_error),
    SX_TEST(test_writable_map_of_readonly_grant_is_general_error),
    SX_TEST(test_bad_ref_is_bad_gntref),
    SX_TEST(test_frame_outside_memory_is_bad_page),
    SX_TEST(test_unknown_domain_is_bad_domain),
    SX_TEST(test_batched_map_reports_each_status_and_is_all_or_nothing),
    SX_TEST(test_batched_map_of_scattered_frames_is_contiguous),
    SX_TEST(test_two_mappings_pin_until_both_are_gone),
    SX_TEST(test_copy_statuses_and_data),
    SX_TEST(test_guest_changing_entry_to_invalid_blocks_new_pins),
    SX_TEST(test_closing_the_handle_releases_its_mappings),
};

SX_TEST_MAIN("grant_sim", cases, setup, teardown)
