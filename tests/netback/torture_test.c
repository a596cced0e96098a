/*
 * netback --torture replays: the same frontend I/O on a vif of the same name (vif-77, on two
 * different domains one after the other) under the same seed draws the same faults, line for
 * line in the torture log, and the frontend's packets all get their answers through them
 * (the fixture: tests/netguest.h).
 *
 * Needs root (TAP, network namespace): skips otherwise.
 */
#include "tests/netguest.h"

#define NPKTS 3100u   /* past the control stream's first threshold (at most 3000) */

static struct netenv E;
static struct netguest A, B;

static int suite_init(void)
{
    struct nb_opts o = netenv_opts(20000);
    o.tt.check = true;
    o.tt.torture = true;
    o.tt.seed = 23;
    o.tt.faults = SX_TT_FAULTS_ALL;   /* error included: a tx packet answered NETIF_RSP_ERROR */
    if (netenv_start_opts(&E, &o) < 0)
        return 1;
    return netguest_open(&E, &A, "replay-a") < 0 || netguest_open(&E, &B, "replay-b") < 0 ? 1 : 0;
}

static int suite_clean(void)
{
    netguest_close(&A);
    netguest_close(&B);
    netenv_stop(&E);
    return 0;
}

/* A file's contents (malloc'ed, NUL-terminated), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Vif 77 of g sends NPKTS packets of lengths 60..1514 one at a time, each answered before the
 * next; then the toolstack removes the vif. Returns its torture log. */
static char *run(struct netguest *g, unsigned *errors)
{
    static struct netvif t;
    nv_close(&t);   /* left by a run that failed fatally */
    CU_ASSERT_EQUAL_FATAL(nv_open(&t, g, 77), 0);
    *errors = 0;
    for (unsigned i = 0; i < NPKTS; i++) {
        nv_put(&t, t.drefs[i % NV_DATA_PAGES], 0, (uint16_t)(60 + (i * 97) % 1455), 0);
        nv_push(&t);
        netif_tx_response_t r;
        CU_ASSERT_EQUAL_FATAL(nv_rsp(&t, &r, 1, 5000), 1);
        *errors += r.status == NETIF_RSP_ERROR;
    }
    /* removed without an unplug, then what the test held let go (nv_close finds no vif) */
    sx_xenbus_rm(E.xb, XBT_NULL, t.be, NULL);
    sx_xenbus_rm(E.xb, XBT_NULL, t.fe, NULL);
    nv_close(&t);
    char path[300];
    snprintf(path, sizeof(path), "%s/check/vif-%u-77.json", E.env.dir, g->dom);
    /* the device goes: its report is written one last time, its log closed */
    uint64_t end = sx_now_ms() + 10000;
    char *json = NULL;
    while (sx_now_ms() < end) {
        free(json);
        json = slurp(path);
        char stats[300];
        snprintf(stats, sizeof(stats), "%s/stats/vifchk-%u-77", E.env.dir, g->dom);
        if (json && access(stats, F_OK) != 0)
            break;
        usleep(20000);
    }
    free(json);
    snprintf(path, sizeof(path), "%s/check/vif-%u-77.torture.log", E.env.dir, g->dom);
    return slurp(path);
}

static void test_same_seed_same_faults_twice(void)
{
    unsigned ea, eb;
    char *la = run(&A, &ea), *lb = run(&B, &eb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(la);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lb);
    CU_ASSERT_STRING_EQUAL(la, lb);
    CU_ASSERT_PTR_NOT_NULL(strstr(la, "# splitxen torture: seed 23, device vif-77"));
    /* a real run: features drawn, bursts, errors, a reconnect or a state rewrite (a tx pause
     * comes once in 4000 packets: net_torture.itest sees them) */
    CU_ASSERT_PTR_NOT_NULL(strstr(la, "feat#1 features feature-sg = "));
    CU_ASSERT_PTR_NOT_NULL(strstr(la, " burst "));
    CU_ASSERT_PTR_NOT_NULL(strstr(la, " error (tx)"));
    CU_ASSERT_TRUE(strstr(la, " reconnect after request ") || strstr(la, " flap after request "));
    unsigned lines = 0, errs = 0;
    for (const char *p = la; (p = strchr(p, '\n')); p++)
        lines++;
    for (const char *p = la; (p = strstr(p, " error (tx)")); p++)
        errs++;
    printf("  %u lines, %u tx errors injected (frontend saw %u and %u)\n", lines, errs, ea, eb);
    CU_ASSERT_EQUAL(ea, errs);
    CU_ASSERT_EQUAL(eb, errs);
    free(la);
    free(lb);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_same_seed_same_faults_twice),
};

SX_TEST_MAIN("netback_torture", cases, suite_init, suite_clean)
