/*
 * splitxen-bench-blkgrant: what blkback's two ways of reaching non-persistent guest pages cost
 * on the sim platform, per 4 KiB page, with an in-process splitxen-core:
 *   map    sx_gnt_map of N pages (one call per request) + sx_gnt_unmap, then touch the page
 *          (the I/O reads/writes guest memory directly)
 *   copy   sx_gnt_copy of N segments from the guest pages into a bounce buffer (the extra
 *          copy a bounce-buffer design needs for every write; reads copy the other way)
 *   splitxen-bench-blkgrant [PAGES_PER_REQUEST] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grant/grant.h"
#include "tests/simenv.h"
#include "xen-core/core.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 1, rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 50000;
    if (n == 0 || n > 256)
        n = 1;
    struct simenv env;
    struct sxc_conn *c;
    if (simenv_start(&env, false) < 0 || sxc_connect(&c, env.sock, 0) < 0) {
        fprintf(stderr, "cannot start the sim core\n");
        return 1;
    }
    int dom = sxc_domain_create(c, "grantcost", SXD_TYPE_PV, 64, 1, false);
    struct sx_plat *g = simenv_plat(&env, (domid_t)dom), *b = simenv_plat(&env, 0);
    struct sx_gntshr *shr;
    struct sx_gnt *gnt;
    grant_ref_t refs[256];
    void *pages;
    if (dom < 0 || !g || !b || sx_gntshr_open(&shr, g) < 0 || sx_gnt_open(&gnt, b) < 0 ||
        sx_gntshr_share(shr, 0, n, true, refs, &pages) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    static uint8_t bounce[256 * 4096];
    volatile uint8_t sink = 0;
    double t0 = now_s();
    for (unsigned r = 0; r < rounds; r++) {
        void *a;
        if (sx_gnt_map(gnt, (domid_t)dom, n, refs, true, &a, NULL) < 0)
            return 1;
        for (unsigned i = 0; i < n; i++)
            sink += ((uint8_t *)a)[i * 4096];
        sx_gnt_unmap(gnt, a, n);
    }
    double tmap = (now_s() - t0) / rounds / n;
    xengnttab_grant_copy_segment_t seg[256];
    t0 = now_s();
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < n; i++) {
            memset(&seg[i], 0, sizeof(seg[i]));
            seg[i].flags = GNTCOPY_source_gref;
            seg[i].source.foreign.ref = refs[i];
            seg[i].source.foreign.domid = (domid_t)dom;
            seg[i].dest.virt = bounce + i * 4096;
            seg[i].len = 4096;
        }
        if (sx_gnt_copy(gnt, n, seg) < 0 || seg[0].status != GNTST_okay)
            return 1;
    }
    double tcopy = (now_s() - t0) / rounds / n;
    printf("sim, %u page(s) per request: map+unmap %.0f ns/page, grant copy %.0f ns/page\n", n,
           tmap * 1e9, tcopy * 1e9);
    (void)sink;
    sx_gnt_close(gnt);
    sx_gntshr_unshare(shr, pages, n);
    sx_gntshr_close(shr);
    sx_plat_close(g);
    sx_plat_close(b);
    sxc_disconnect(c);
    simenv_stop(&env);
    return 0;
}
