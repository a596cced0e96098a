/* splitxen-core: domain lifecycle, guest memory allocator, cleanup on destroy and disconnect. */
#include <errno.h>
#include <limits.h>
#include <sys/wait.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"

static struct simenv env;
static struct sx_plat *dom0;

static int setup(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    dom0 = simenv_plat(&env, 0);
    return dom0 ? 0 : 1;
}

static int teardown(void)
{
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static void test_create_list_lookup_pause_destroy(void)
{
    struct sxc_conn *c = dom0->conn;
    int a = sxc_domain_create(c, "alpha", SXD_TYPE_PV, 32, 2, true);
    int b = sxc_domain_create(c, "beta", SXD_TYPE_HVM, 8, 1, false);
    CU_ASSERT_FATAL(a > 0 && b > 0 && a != b);
    CU_ASSERT_EQUAL(sxc_domain_create(c, "alpha", SXD_TYPE_PV, 8, 1, false), -EEXIST);
    CU_ASSERT_EQUAL(sxc_domain_create(c, "", SXD_TYPE_PV, 8, 1, false), -EINVAL);
    CU_ASSERT_EQUAL(sxc_domain_create(c, "z", SXD_TYPE_PV, 0, 1, false), -EINVAL);
    CU_ASSERT_EQUAL(sxc_domain_create(c, "z", 7, 8, 1, false), -EINVAL);
    CU_ASSERT_EQUAL(sxc_domain_lookup(c, "beta"), b);
    CU_ASSERT_EQUAL(sxc_domain_lookup(c, "gamma"), -ENOENT);
    struct sxc_dominfo info[8];
    int n = sxc_domain_list(c, info, 8);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(info[0].domid, 0);
    CU_ASSERT_STRING_EQUAL(info[0].name, "Domain-0");
    CU_ASSERT_EQUAL(info[1].domid, (uint32_t)a);
    CU_ASSERT_EQUAL(info[1].state, SXD_STATE_PAUSED);
    CU_ASSERT_EQUAL(info[1].vcpus, 2);
    CU_ASSERT_EQUAL(info[1].mem_mb, 32);
    CU_ASSERT_EQUAL(info[2].type, SXD_TYPE_HVM);
    CU_ASSERT_EQUAL(sxc_domain_unpause(c, (domid_t)a), 0);
    CU_ASSERT_EQUAL(sxc_domain_list(c, info, 8), 3);
    CU_ASSERT_EQUAL(info[1].state, SXD_STATE_RUNNING);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, 0), -EPERM);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, 999), -ESRCH);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)a), 0);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)b), 0);
    CU_ASSERT_EQUAL(sxc_domain_list(c, info, 8), 1);
}

static void test_connecting_as_a_missing_domain_fails(void)
{
    struct sxc_conn *c;
    CU_ASSERT_EQUAL(sxc_connect(&c, env.sock, 4321), -ESRCH);
}

static void test_page_allocator_and_reserved_grefs(void)
{
    int d = sxc_domain_create(dom0->conn, "mem", SXD_TYPE_PV, 1, 1, false);   /* 256 pages */
    CU_ASSERT_FATAL(d > 0);
    struct sxc_dom *dom;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, (domid_t)d, &dom), 0);
    struct sxd_shared *s = dom->shared;
    int64_t a = sxd_pages_alloc(s, 200);
    CU_ASSERT(a >= 0);
    CU_ASSERT_EQUAL(sxd_pages_alloc(s, 100), -ENOMEM);
    int64_t b = sxd_pages_alloc(s, 56);
    CU_ASSERT(b >= 0 && b >= a + 200);
    CU_ASSERT_EQUAL(sxd_pages_alloc(s, 1), -ENOMEM);
    sxd_pages_free(s, (uint64_t)a, 200);
    CU_ASSERT_EQUAL(sxd_pages_alloc(s, 100), a);
    for (int i = 0; i < 100; i++) {
        int64_t r = sxd_gref_alloc(s);
        CU_ASSERT(r >= SXD_GNTTAB_RESERVED);
    }
    CU_ASSERT_EQUAL(s->grefs_used, 100);
    CU_ASSERT_EQUAL(sxc_domain_destroy(dom0->conn, (domid_t)d), 0);
}

static void test_destroy_releases_ports_others_hold_and_keeps_mappings_safe(void)
{
    int d = sxc_domain_create(dom0->conn, "victim", SXD_TYPE_PV, 4, 1, false);
    CU_ASSERT_FATAL(d > 0);
    struct sx_plat *g = simenv_plat(&env, (domid_t)d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    struct sx_evtchn *ge, *be;
    struct sx_gntshr *shr;
    struct sx_gnt *gnt;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, g), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_open(&shr, g), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gnt_open(&gnt, dom0), 0);
    int gp = sx_evtchn_bind_unbound(ge, 0);
    int bp = sx_evtchn_bind_interdomain(be, (domid_t)d, (evtchn_port_t)gp);
    CU_ASSERT_FATAL(bp > 0);
    grant_ref_t ref;
    void *gpage, *bpage;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 1, true, &ref, &gpage), 0);
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, (domid_t)d, 1, &ref, true, &bpage, NULL), 0);

    CU_ASSERT_EQUAL(sxc_domain_destroy(dom0->conn, (domid_t)d), 0);
    struct sxc_dom *d0;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, 0, &d0), 0);
    CU_ASSERT_EQUAL(atomic_load(&sxd_ports(d0->shared)[bp].state), SXD_PORT_UNBOUND);
    CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);   /* dropped, no crash */
    /* The backend's mapping is still memory it may touch until it unmaps. */
    ((volatile uint8_t *)bpage)[0] = 5;
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 1), 0);
    /* New maps of the dead domain fail. */
    int16_t st;
    CU_ASSERT(sx_gnt_map(gnt, (domid_t)d, 1, &ref, true, &bpage, &st) < 0);
    sx_gnt_close(gnt);
    sx_gntshr_close(shr);
    sx_evtchn_close(ge);
    sx_evtchn_close(be);
    sx_plat_close(g);
}

static void test_disconnect_closes_that_clients_ports(void)
{
    int d = sxc_domain_create(dom0->conn, "leaver", SXD_TYPE_PV, 4, 1, false);
    CU_ASSERT_FATAL(d > 0);
    struct sx_evtchn *be;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    int bp = sx_evtchn_bind_unbound(be, (domid_t)d);
    CU_ASSERT_FATAL(bp > 0);
    int pfd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* The guest process binds, then vanishes without closing anything. */
        struct sx_plat *g;
        struct sx_evtchn *ge;
        if (sx_plat_open(&g, SX_PLAT_SIM, (domid_t)d, env.sock) < 0 || sx_evtchn_open(&ge, g) < 0 ||
            sx_evtchn_bind_interdomain(ge, 0, (evtchn_port_t)bp) < 0)
            _exit(1);
        char c = 'b';
        if (write(pfd[1], &c, 1) != 1)
            _exit(2);
        _exit(0);
    }
    close(pfd[1]);
    char c = 0;
    CU_ASSERT_EQUAL(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct sxc_dom *d0;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(dom0->conn, 0, &d0), 0);
    for (int i = 0; i < 200 && atomic_load(&sxd_ports(d0->shared)[bp].state) != SXD_PORT_UNBOUND; i++)
        usleep(5000);
    CU_ASSERT_EQUAL(atomic_load(&sxd_ports(d0->shared)[bp].state), SXD_PORT_UNBOUND);
    sx_evtchn_close(be);
    CU_ASSERT_EQUAL(sxc_domain_destroy(dom0->conn, (domid_t)d), 0);
}

/* File descriptors of this process that name domain d's memfds (/memfd:sx-domN-mem, -ctl). */
static int memfds_of(int d)
{
    char prefix[64], link[PATH_MAX], path[64];
    snprintf(prefix, sizeof(prefix), "/memfd:sx-dom%d-", d);
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t l = readlink(path, link, sizeof(link) - 1);
        if (l <= 0)
            continue;
        link[l] = 0;
        n += strncmp(link, prefix, strlen(prefix)) == 0;
    }
    return n;
}

/* Regression (issue 14): a backend kept every foreign domain it ever mapped (memory and control
 * memfds, mappings) until it exited, and could map no more than 256 over its life. Now the
 * mapping goes with the last grant mapping, bound event channel or copy that used it: 300
 * guests in turn each have a page mapped, a page copied and a channel notified by dom0, then
 * are torn down and destroyed; after each, dom0 holds nothing of them. */
static void test_destroyed_domains_are_let_go_after_unmap(void)
{
    struct sx_gnt *gnt;
    struct sx_evtchn *be;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_open(&gnt, dom0), 0);
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&be, dom0), 0);
    unsigned base = sxc_domains_mapped(dom0->conn);
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof(name), "churn%d", i);
        int d = sxc_domain_create(dom0->conn, name, SXD_TYPE_PV, 1, 1, false);
        CU_ASSERT_FATAL(d > 0);
        struct sx_plat *g = simenv_plat(&env, (domid_t)d);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        struct sx_evtchn *ge;
        struct sx_gntshr *shr;
        CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ge, g), 0);
        CU_ASSERT_EQUAL_FATAL(sx_gntshr_open(&shr, g), 0);
        int gp = sx_evtchn_bind_unbound(ge, 0);
        int bp = sx_evtchn_bind_interdomain(be, (domid_t)d, (evtchn_port_t)gp);
        CU_ASSERT_FATAL(bp > 0);
        grant_ref_t ref[2];
        void *gpage, *bpage;
        CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 2, true, ref, &gpage), 0);
        int16_t st;
        CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, (domid_t)d, 1, ref, true, &bpage, &st), 0);
        ((uint8_t *)bpage)[0] = (uint8_t)i;
        uint8_t buf[16] = { 0 };
        xengnttab_grant_copy_segment_t seg = {
            .source.foreign = { .ref = ref[1], .offset = 0, .domid = (domid_t)d },
            .dest.virt = buf, .len = sizeof(buf), .flags = GNTCOPY_source_gref,
        };
        memset((uint8_t *)gpage + 4096, 0x5a, 16);
        CU_ASSERT_EQUAL(sx_gnt_copy(gnt, 1, &seg), 0);
        CU_ASSERT_EQUAL(seg.status, GNTST_okay);
        CU_ASSERT_EQUAL(buf[15], 0x5a);
        CU_ASSERT_EQUAL(sx_evtchn_notify(be, (evtchn_port_t)bp), 0);
        CU_ASSERT_EQUAL(((uint8_t *)gpage)[0], (uint8_t)i);
        CU_ASSERT_EQUAL(sxc_domains_mapped(dom0->conn), base + 1);
        /* Teardown as a backend and a guest do it, then the toolstack destroys the domain. */
        CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bpage, 1), 0);
        CU_ASSERT_EQUAL(sx_evtchn_unbind(be, (evtchn_port_t)bp), 0);
        sx_gntshr_close(shr);
        sx_evtchn_close(ge);
        sx_plat_close(g);
        CU_ASSERT_EQUAL(sxc_domain_destroy(dom0->conn, (domid_t)d), 0);
        CU_ASSERT_EQUAL(sxc_domains_mapped(dom0->conn), base);
        int left = memfds_of(d);
        if (left)
            printf("\n    dom%d (guest %d): %d memfds still open\n", d, i, left);
        CU_ASSERT_EQUAL_FATAL(left, 0);
    }
    sx_evtchn_close(be);
    sx_gnt_close(gnt);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_destroyed_domains_are_let_go_after_unmap),
    SX_TEST(test_create_list_lookup_pause_destroy),
    SX_TEST(test_connecting_as_a_missing_domain_fails),
    SX_TEST(test_page_allocator_and_reserved_grefs),
    SX_TEST(test_destroy_releases_ports_others_hold_and_keeps_mappings_safe),
    SX_TEST(test_disconnect_closes_that_clients_ports),
};

SX_TEST_MAIN("core", cases, setup, teardown)
