/*
 * grant/grant_xen.c against a fake libxengnttab/libxengntshr (tests/fakes/fake_xengnttab.c):
 * errno conversion, map status filling, pass-through of unmap counts and copy segments,
 * open failure and NULL-safe close.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "grant/grant_impl.h"
#include "tests/fakes/fake_xengnttab.h"
#include "tests/sxtest.h"

static const struct sx_gnt_ops *G = &sx_gnt_xen_ops;
static const struct sx_gntshr_ops *S = &sx_gntshr_xen_ops;
static struct sx_plat plat = { .kind = SX_PLAT_XEN, .self = 0 };

static void *open_gnt(void)
{
    void *priv = NULL;

    fake_gnt_reset();
    CU_ASSERT_EQUAL_FATAL(G->open(&priv, &plat), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(priv);
    return priv;
}

static void test_open_failure_returns_neg_errno(void)
{
    void *priv = (void *)&plat;

    fake_gnt_reset();
    fake_gnt.open_errno = ENOENT;
    CU_ASSERT_EQUAL(G->open(&priv, &plat), -ENOENT);
    CU_ASSERT_PTR_NULL(priv);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 0);

    fake_gnt.open_errno = EACCES;
    CU_ASSERT_EQUAL(G->open(&priv, &plat), -EACCES);
    CU_ASSERT_PTR_NULL(priv);
}

static void test_open_asks_max_grants_and_close_releases(void)
{
    void *priv = open_gnt();

    CU_ASSERT_EQUAL(fake_gnt.set_max_calls, 1);
    CU_ASSERT(fake_gnt.set_max >= 1024);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 1);
    G->close(priv);
    CU_ASSERT_EQUAL(fake_gnt.closes, 1);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 0);
    /* NULL-safe: no library call. */
    G->close(NULL);
    S->close(NULL);
    CU_ASSERT_EQUAL(fake_gnt.closes, 1);
    CU_ASSERT_EQUAL(fake_gnt.shr_closes, 0);
}

static void test_open_tolerates_set_max_grants_refusal(void)
{
    void *priv = NULL;

    fake_gnt_reset();
    fake_gnt.set_max_errno = ENOTTY;     /* recent kernels no longer implement the ioctl */
    CU_ASSERT_EQUAL(G->open(&priv, &plat), 0);
    CU_ASSERT_PTR_NOT_NULL(priv);
    G->close(priv);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 0);
}

static void test_map_success_returns_fake_address_and_status_okay(void)
{
    void *priv = open_gnt();
    const grant_ref_t refs[3] = { 11, 12, 4000 };
    int16_t status[3] = { 99, 99, 99 };
    void *addr = NULL;

    CU_ASSERT_EQUAL(G->map(priv, 7, 3, refs, true, &addr, status), 0);
    CU_ASSERT_PTR_NOT_NULL(addr);
    CU_ASSERT_PTR_EQUAL(addr, fake_gnt.map_addr);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(status[i], GNTST_okay);
        CU_ASSERT_EQUAL(fake_gnt.map_refs[i], refs[i]);
    }
    CU_ASSERT_EQUAL(fake_gnt.map_domid, 7);
    CU_ASSERT_EQUAL(fake_gnt.map_count, 3);
    CU_ASSERT_EQUAL(fake_gnt.map_prot, PROT_READ | PROT_WRITE);
    memset(addr, 0xa5, 3 * SX_PAGE_SIZE);                 /* the range is really there */
    CU_ASSERT_EQUAL(G->unmap(priv, addr, 3), 0);

    /* Read-only, no status array. */
    addr = NULL;
    CU_ASSERT_EQUAL(G->map(priv, 9, 1, refs, false, &addr, NULL), 0);
    CU_ASSERT_PTR_EQUAL(addr, fake_gnt.map_addr);
    CU_ASSERT_EQUAL(fake_gnt.map_prot, PROT_READ);
    CU_ASSERT_EQUAL(G->unmap(priv, addr, 1), 0);
    CU_ASSERT_EQUAL(fake_gnt.live_pages, 0);
    G->close(priv);
}

static void test_map_failure_fills_status_error_and_returns_neg_errno(void)
{
    void *priv = open_gnt();
    const grant_ref_t refs[4] = { 1, 2, 3, 4 };
    int16_t status[4] = { GNTST_okay, GNTST_okay, GNTST_okay, GNTST_okay };
    void *addr = (void *)&plat;

    fake_gnt.map_errno = EINVAL;
    CU_ASSERT_EQUAL(G->map(priv, 3, 4, refs, true, &addr, status), -EINVAL);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(status[i], GNTST_general_error);
    CU_ASSERT_PTR_EQUAL(addr, (void *)&plat);            /* untouched on failure */

    fake_gnt.map_errno = ENOMEM;
    CU_ASSERT_EQUAL(G->map(priv, 3, 4, refs, true, &addr, NULL), -ENOMEM);
    CU_ASSERT_EQUAL(fake_gnt.live_pages, 0);
    G->close(priv);
}

static void test_map_rejects_empty_request_without_calling_library(void)
{
    void *priv = open_gnt();
    const grant_ref_t refs[1] = { 5 };
    void *addr = NULL;

    CU_ASSERT_EQUAL(G->map(priv, 3, 0, refs, true, &addr, NULL), -EINVAL);
    CU_ASSERT_EQUAL(G->map(priv, 3, 1, NULL, true, &addr, NULL), -EINVAL);
    CU_ASSERT_EQUAL(fake_gnt.map_calls, 0);
    G->close(priv);
}

static void test_unmap_passes_count_and_converts_errno(void)
{
    void *priv = open_gnt();
    const grant_ref_t refs[5] = { 1, 2, 3, 4, 5 };
    void *addr = NULL;

    CU_ASSERT_EQUAL_FATAL(G->map(priv, 2, 5, refs, true, &addr, NULL), 0);
    fake_gnt.unmap_errno = EINVAL;
    CU_ASSERT_EQUAL(G->unmap(priv, addr, 5), -EINVAL);
    CU_ASSERT_EQUAL(fake_gnt.unmap_count, 5);
    fake_gnt.unmap_errno = 0;
    CU_ASSERT_EQUAL(G->unmap(priv, addr, 5), 0);
    CU_ASSERT_PTR_EQUAL(fake_gnt.unmap_addr, addr);
    CU_ASSERT_EQUAL(fake_gnt.unmap_count, 5);
    CU_ASSERT_EQUAL(fake_gnt.unmap_calls, 2);
    CU_ASSERT_EQUAL(fake_gnt.live_pages, 0);
    G->close(priv);
}

static void test_copy_passes_segments_and_statuses_through(void)
{
    void *priv = open_gnt();
    char local[64];
    xengnttab_grant_copy_segment_t segs[3];

    memset(segs, 0, sizeof(segs));
    segs[0].source.foreign.ref = 21;
    segs[0].source.foreign.offset = 100;
    segs[0].source.foreign.domid = 4;
    segs[0].dest.virt = local;
    segs[0].len = 64;
    segs[0].flags = GNTCOPY_source_gref;
    segs[1].source.virt = local;
    segs[1].dest.foreign.ref = 22;
    segs[1].dest.foreign.domid = 4;
    segs[1].len = 32;
    segs[1].flags = GNTCOPY_dest_gref;
    segs[2] = segs[0];
    segs[2].source.foreign.ref = 23;
    fake_gnt.copy_status[0] = GNTST_okay;
    fake_gnt.copy_status[1] = GNTST_bad_gntref;
    fake_gnt.copy_status[2] = GNTST_permission_denied;

    CU_ASSERT_EQUAL(G->copy(priv, 3, segs), 0);
    CU_ASSERT_EQUAL(fake_gnt.copy_calls, 1);
    CU_ASSERT_EQUAL(fake_gnt.copy_count, 3);
    CU_ASSERT_PTR_EQUAL(fake_gnt.copy_segs, segs);        /* no bounce copy */
    CU_ASSERT_EQUAL(fake_gnt.copy_seen[0].source.foreign.ref, 21);
    CU_ASSERT_EQUAL(fake_gnt.copy_seen[0].source.foreign.offset, 100);
    CU_ASSERT_EQUAL(fake_gnt.copy_seen[1].dest.foreign.ref, 22);
    CU_ASSERT_EQUAL(fake_gnt.copy_seen[1].flags, GNTCOPY_dest_gref);
    CU_ASSERT_EQUAL(fake_gnt.copy_seen[2].source.foreign.ref, 23);
    CU_ASSERT_EQUAL(segs[0].status, GNTST_okay);
    CU_ASSERT_EQUAL(segs[1].status, GNTST_bad_gntref);
    CU_ASSERT_EQUAL(segs[2].status, GNTST_permission_denied);

    /* An empty batch is done without a syscall. */
    CU_ASSERT_EQUAL(G->copy(priv, 0, NULL), 0);
    CU_ASSERT_EQUAL(fake_gnt.copy_calls, 1);
    G->close(priv);
}

static void test_copy_failure_marks_every_segment_failed(void)
{
    void *priv = open_gnt();
    char local[16];
    xengnttab_grant_copy_segment_t segs[3];

    memset(segs, 0, sizeof(segs));               /* status 0 == GNTST_okay before the call */
    for (int i = 0; i < 3; i++) {
        segs[i].source.foreign.ref = 30 + i;
        segs[i].dest.virt = local;
        segs[i].len = 16;
        segs[i].flags = GNTCOPY_source_gref;
    }
    fake_gnt.copy_errno = EFAULT;
    fake_gnt.copy_fail_after = 1;                /* the kernel did segment 0, then failed */
    CU_ASSERT_EQUAL(G->copy(priv, 3, segs), -EFAULT);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(segs[i].status, GNTST_general_error);
    G->close(priv);
}

static void test_gntshr_open_failure_returns_neg_errno(void)
{
    void *priv = (void *)&plat;

    fake_gnt_reset();
    fake_gnt.shr_open_errno = ENOENT;
    CU_ASSERT_EQUAL(S->open(&priv, &plat), -ENOENT);
    CU_ASSERT_PTR_NULL(priv);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 0);
}

static void test_gntshr_share_and_unshare(void)
{
    void *priv = NULL;
    grant_ref_t refs[2] = { 0, 0 };
    void *addr = NULL;
    const unsigned char *b;

    fake_gnt_reset();
    fake_gnt.next_ref = 40;
    CU_ASSERT_EQUAL_FATAL(S->open(&priv, &plat), 0);
    CU_ASSERT_EQUAL(S->share(priv, 6, 2, true, refs, &addr), 0);
    CU_ASSERT_PTR_EQUAL(addr, fake_gnt.share_addr);
    CU_ASSERT_EQUAL(refs[0], 40);
    CU_ASSERT_EQUAL(refs[1], 41);
    CU_ASSERT_EQUAL(fake_gnt.share_domid, 6);
    CU_ASSERT_EQUAL(fake_gnt.share_count, 2);
    CU_ASSERT_EQUAL(fake_gnt.share_writable, 1);
    b = addr;
    CU_ASSERT_EQUAL(b[0] | b[2 * SX_PAGE_SIZE - 1], 0);

    fake_gnt.unshare_errno = EINVAL;
    CU_ASSERT_EQUAL(S->unshare(priv, addr, 2), -EINVAL);
    fake_gnt.unshare_errno = 0;
    CU_ASSERT_EQUAL(S->unshare(priv, addr, 2), 0);
    CU_ASSERT_PTR_EQUAL(fake_gnt.unshare_addr, addr);
    CU_ASSERT_EQUAL(fake_gnt.unshare_count, 2);

    CU_ASSERT_EQUAL(S->share(priv, 6, 1, false, refs, &addr), 0);
    CU_ASSERT_EQUAL(fake_gnt.share_writable, 0);
    CU_ASSERT_EQUAL(S->unshare(priv, addr, 1), 0);

    fake_gnt.share_errno = ENOSPC;               /* gntalloc's limit reached */
    CU_ASSERT_EQUAL(S->share(priv, 6, 1, true, refs, &addr), -ENOSPC);
    CU_ASSERT_EQUAL(S->share(priv, 6, 0, true, refs, &addr), -EINVAL);
    CU_ASSERT_EQUAL(fake_gnt.live_pages, 0);
    S->close(priv);
    CU_ASSERT_EQUAL(fake_gnt.shr_closes, 1);
    CU_ASSERT_EQUAL(fake_gnt.live_handles, 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_open_failure_returns_neg_errno),
    SX_TEST(test_open_asks_max_grants_and_close_releases),
    SX_TEST(test_open_tolerates_set_max_grants_refusal),
    SX_TEST(test_map_success_returns_fake_address_and_status_okay),
    SX_TEST(test_map_failure_fills_status_error_and_returns_neg_errno),
    SX_TEST(test_map_rejects_empty_request_without_calling_library),
    SX_TEST(test_unmap_passes_count_and_converts_errno),
    SX_TEST(test_copy_passes_segments_and_statuses_through),
    SX_TEST(test_copy_failure_marks_every_segment_failed),
    SX_TEST(test_gntshr_open_failure_returns_neg_errno),
    SX_TEST(test_gntshr_share_and_unshare),
};

SX_TEST_MAIN("grant_xen", cases, NULL, NULL)
