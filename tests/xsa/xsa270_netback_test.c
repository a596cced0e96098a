/*
 * XSA-270 ("Linux netback driver OOB access in hash handling"): the control ring lets a
 * frontend set the table that maps a packet's hash to a queue; Linux checked
 * XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING's offset and length with a sum that could wrap, and
 * wrote the frontend's entries out of the table's bounds.
 *
 * Against netback's ctrl ring (netback/hash.c), in-process: every out-of-bounds request is
 * refused with INVALID_PARAMETER (or BUFFER_OVERFLOW for a key) and leaves the table, its size
 * and what follows it exactly as they were; a good request after them is applied; the ctrl
 * ring and the data path go on.
 */
#include "tests/netguest.h"

static struct netenv E;
static struct netguest H;
static struct netvif hv;
static struct nv_ctrl cf;

/* The vif's hash state, read under its lock (the ctrl thread writes it). */
static struct nb_hash *vif_hash(void)
{
    for (struct nb_vif *v = E.nb->vifs; v; v = v->next)
        if (v->fe_domid == H.dom && v->devid == hv.dev)
            return &v->hash;
    return NULL;
}

struct snap {
    uint32_t size, nqueues;
    uint32_t mapping[NB_HASH_MAPPING_MAX];
};

static void take(struct nb_hash *h, struct snap *s)
{
    pthread_mutex_lock(&h->lock);
    s->size = h->size;
    s->nqueues = h->nqueues;
    memcpy(s->mapping, h->mapping, sizeof(s->mapping));
    pthread_mutex_unlock(&h->lock);
}

static uint32_t req(uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2)
{
    return nv_ctrl_req(&cf, type, d0, d1, d2, NULL);
}

static void test_xsa270_mapping_out_of_bounds_refused(void)
{
    struct nb_hash *h = vif_hash();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
                        XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 8, 0, 0),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    uint32_t *pg = cf.pg;
    for (unsigned i = 0; i < 1024; i++)
        pg[i] = 0;                                   /* queue 0: valid everywhere */
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, cf.pgref, 8, 0),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    struct snap before, after;
    take(h, &before);
    const struct { uint32_t len, off; const char *what; } bad[] = {
        { 2, 0xffffffffu, "offset + length wraps" },
        { 0xffffffffu, 1, "length wraps the sum" },
        { 0x80000000u, 0x80000000u, "sum wraps to 0" },
        { 2, 7, "ends past the table" },
        { 1, 8, "starts at the end" },
        { 9, 0, "longer than the table" },
        { 1025, 0, "more than a page of entries" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t st = req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, cf.pgref, bad[i].len, bad[i].off);
        if (st != XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER)
            printf("\n  %s: status %u\n", bad[i].what, st);
        CU_ASSERT_EQUAL(st, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    }
    /* An entry naming a queue the vif does not have (one queue: 1 is out of range). */
    pg[3] = 1;
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, cf.pgref, 8, 0),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    pg[3] = 0;
    pg[0] = 0xffffffffu;   /* entries come from the start of the page, go to the offset */
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, cf.pgref, 1, 3),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    /* A size past the largest, a key longer than the largest, a copy from a bad grant. */
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, NB_HASH_MAPPING_MAX + 1, 0, 0),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 0xffffffffu, 0, 0),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, cf.pgref, NB_HASH_KEY_MAX + 1, 0),
                    XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, cf.pgref, 0xffffffffu, 0),
                    XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 424242, 8, 0),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    take(h, &after);
    CU_ASSERT_EQUAL(after.size, 8);
    CU_ASSERT_EQUAL(after.nqueues, before.nqueues);
    CU_ASSERT_EQUAL(memcmp(after.mapping, before.mapping, sizeof(before.mapping)), 0);
    /* A good request after all that is applied. */
    pg[0] = 0;
    CU_ASSERT_EQUAL(req(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, cf.pgref, 1, 7),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(nv_stat(&hv, "ctrl_fatal"), 0);
    CU_ASSERT_TRUE(nv_send_ok(&hv));
}

static int suite_init(void)
{
    if (netenv_start(&E, 20000) < 0 || netguest_open(&E, &H, "hostile") < 0)
        return 1;
    return nv_open_ex(&hv, &H, 1, NULL, NULL, nv_ctrl_pre_connect, &cf,
                      XenbusStateConnected) ? 1 : 0;
}

static int suite_clean(void)
{
    nv_close(&hv);
    netguest_close(&H);
    netenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa270_mapping_out_of_bounds_refused),
};

SX_TEST_MAIN("xsa270_netback", cases, suite_init, suite_clean)
