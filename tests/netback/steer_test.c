/*
 * netback/steer.c without threads or a TAP: two queues of a fake vif, frames placed in queue
 * 0's rx batch as if read from its TAP queue, then routed (nb_steer_route), taken by queue 1
 * (nb_steer_pull), a full inbox, the buffers' ownership, and the sleep/kick handshake.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/sxtest.h"
#include "netback/common.h"

static const uint8_t rss_key[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

static struct nb_vif *v;
static char rundir[] = "/tmp/sx-steer-XXXXXX";
static struct nb_hash_snap hs;

/* Place an IPv4 TCP frame (tag in its last byte, source port sport) at q->rxf[rxf_pending],
 * as rx_fill leaves it; non-IP (an ARP ethertype) when arp. */
static void put_frame(struct nb_queue *q, uint16_t sport, uint8_t tag, bool arp)
{
    struct nb_rxframe *f = &q->rxf[q->rxf_pending++];
    uint8_t *b = f->buf + SX_NETDEV_HDR_LEN;
    memset(f->buf, 0, SX_NETDEV_HDR_LEN + 64);
    b[12] = 0x08;
    b[13] = arp ? 0x06 : 0x00;
    b[14] = 0x45;
    b[23] = 6;
    memcpy(b + 26, (uint8_t[]){ 192, 0, 2, 1, 198, 51, 100, 7 }, 8);
    b[34] = (uint8_t)(sport >> 8);
    b[35] = (uint8_t)sport;
    b[37] = 80;
    b[63] = tag;
    f->len = 64;
    f->ready = false;
    f->hashed = false;
}

static uint8_t tag_of(const struct nb_rxframe *f)
{
    return f->buf[SX_NETDEV_HDR_LEN + 63];
}

/* The queue the snapshot picks for frame f (its hash computed here, independently). */
static unsigned want_queue(const struct nb_rxframe *f, uint32_t *hash, bool *has)
{
    uint8_t t;
    *has = nb_hash_frame(&hs.cfg, f->buf + SX_NETDEV_HDR_LEN, f->len, hash, &t);
    return nb_hash_pick(hs.mapping, hs.size, hs.nqueues, *has ? *hash : 0);
}

static int init(void)
{
    if (!mkdtemp(rundir))
        return 1;
    setenv("SPLITXEN_RUN", rundir, 1);
    v = calloc(1, sizeof(*v));
    if (!v)
        return 1;
    v->nqueues = 2;
    if (sx_stats_create(&v->stats, "vif", 1, 0, nb_stat_names) < 0)
        return 1;
    for (unsigned i = 0; i < 2; i++) {
        v->q[i].vif = v;
        v->q[i].id = i;
        if (nb_queue_alloc(&v->q[i]) < 0 || nb_steer_alloc(&v->q[i]) < 0)
            return 1;
    }
    hs.cfg.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
    hs.cfg.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
    memcpy(hs.cfg.key, rss_key, 40);
    hs.nqueues = 2;
    return 0;
}

static int clean(void)
{
    if (v) {
        for (unsigned i = 0; i < 2; i++)
            nb_queue_free(&v->q[i]);   /* frees the inbox too */
        char path[300];
        snprintf(path, sizeof(path), "%s", v->stats.path);
        sx_stats_destroy(&v->stats);
        unlink(path);
        free(v);
    }
    char d[300];
    snprintf(d, sizeof(d), "%s/stats", rundir);
    rmdir(d);
    rmdir(rundir);
    return 0;
}

static uint64_t ctr(enum nb_stat i)
{
    return atomic_load(&v->stats.v[i]);
}

/* Every buffer is owned exactly once: NB_RX_BATCH per rx batch (a frontend without GSO: the
 * queue holds that many) and NB_STEER_SLOTS per inbox, no duplicates. */
static bool buffers_conserved(void)
{
    uint8_t *all[4 * NB_RX_BATCH];
    unsigned n = 0;
    for (unsigned i = 0; i < 2; i++) {
        for (unsigned k = 0; k < NB_RX_BATCH; k++)
            all[n++] = v->q[i].rxf[k].buf;
        for (unsigned k = 0; k < NB_STEER_SLOTS; k++)
            all[n++] = v->q[i].steer->slot[k].buf;
    }
    for (unsigned a = 0; a < n; a++) {
        if (!all[a])
            return false;
        for (unsigned b = a + 1; b < n; b++)
            if (all[a] == all[b])
                return false;
    }
    return true;
}

static void test_route_keeps_own_frames_in_order_and_hands_the_rest(void)
{
    struct nb_queue *q0 = &v->q[0], *q1 = &v->q[1];
    hs.size = 0;                                     /* hash % 2 */
    q0->rxf_pending = 1;                             /* a frame already held stays first */
    q0->rxf[0].buf[SX_NETDEV_HDR_LEN + 63] = 0xee;
    unsigned want[12], n0 = 0, n1 = 0;
    for (uint8_t t = 0; t < 12; t++) {
        put_frame(q0, (uint16_t)(1000 + 17 * t), t, t == 5);
        uint32_t h;
        bool has;
        want[t] = want_queue(&q0->rxf[q0->rxf_pending - 1], &h, &has);
        if (t == 5) {
            CU_ASSERT_FALSE(has);                    /* ARP: no type applies, hash 0 */
            CU_ASSERT_EQUAL(want[t], 0);
        }
        *(want[t] ? &n1 : &n0) += 1;
    }
    CU_ASSERT_TRUE_FATAL(n0 > 1 && n1 > 1);          /* the data exercises both ways */
    uint64_t steered = ctr(NBS_RX_STEERED);
    CU_ASSERT_EQUAL(nb_steer_route(q0, 1, &hs), n1);
    CU_ASSERT_EQUAL(ctr(NBS_RX_STEERED) - steered, n1);
    CU_ASSERT_EQUAL(q0->rxf_pending, 1 + n0);
    CU_ASSERT_EQUAL(tag_of(&q0->rxf[0]), 0xee);
    CU_ASSERT_EQUAL(atomic_load(&q1->steer->count), n1);
    unsigned k = 1;
    for (uint8_t t = 0; t < 12; t++)
        if (want[t] == 0) {
            CU_ASSERT_EQUAL(tag_of(&q0->rxf[k]), t);
            CU_ASSERT_TRUE(q0->rxf[k].hashed);
            k++;
        }
    /* queue 1 takes them in order, hashed with the hash that chose it */
    q1->rxf_pending = 0;
    CU_ASSERT_EQUAL(nb_steer_pull(q1), n1);
    CU_ASSERT_EQUAL(atomic_load(&q1->steer->count), 0);
    k = 0;
    for (uint8_t t = 0; t < 12; t++)
        if (want[t] == 1) {
            const struct nb_rxframe *f = &q1->rxf[k++];
            uint32_t h;
            bool has;
            CU_ASSERT_EQUAL(tag_of(f), t);
            CU_ASSERT_EQUAL(f->len, 64);
            CU_ASSERT_TRUE(f->hashed);
            CU_ASSERT_EQUAL(want_queue(f, &h, &has), 1);
            CU_ASSERT_EQUAL(f->has_hash, has);
            CU_ASSERT_EQUAL(f->hash, h);
        }
    CU_ASSERT_EQUAL(nb_steer_pull(q1), 0);
    CU_ASSERT_TRUE(buffers_conserved());
    q0->rxf_pending = q1->rxf_pending = 0;
}

static void test_full_inbox_drops_and_counts(void)
{
    struct nb_queue *q0 = &v->q[0], *q1 = &v->q[1];
    hs.size = 1;
    hs.mapping[0] = 1;                               /* everything to queue 1 */
    uint64_t steered = ctr(NBS_RX_STEERED), drops = ctr(NBS_RX_DROP_STEER),
             rxdrops = ctr(NBS_RX_DROPS);
    /* two full batches and 5 frames, nobody pulls: the inbox takes NB_STEER_SLOTS, the rest
     * is dropped */
    unsigned sent = 0;
    for (unsigned round = 0; round < 3; round++) {
        unsigned n = round < 2 ? NB_RX_BATCH : 5;
        for (unsigned t = 0; t < n; t++)
            put_frame(q0, (uint16_t)(2000 + sent + t), (uint8_t)(sent + t), false);
        CU_ASSERT_EQUAL(nb_steer_route(q0, 0, &hs), n);
        CU_ASSERT_EQUAL(q0->rxf_pending, 0);
        sent += n;
    }
    CU_ASSERT_EQUAL(atomic_load(&q1->steer->count), NB_STEER_SLOTS);
    CU_ASSERT_EQUAL(ctr(NBS_RX_STEERED) - steered, NB_STEER_SLOTS);
    CU_ASSERT_EQUAL(ctr(NBS_RX_DROP_STEER) - drops, sent - NB_STEER_SLOTS);
    CU_ASSERT_EQUAL(ctr(NBS_RX_DROPS) - rxdrops, sent - NB_STEER_SLOTS);
    CU_ASSERT_TRUE(buffers_conserved());
    /* a queue two frames short of full takes 2, then the rest as it makes room */
    q1->rxf_pending = NB_RX_BATCH - 2;
    CU_ASSERT_EQUAL(nb_steer_pull(q1), 2);
    CU_ASSERT_EQUAL(tag_of(&q1->rxf[NB_RX_BATCH - 2]), 0);   /* the first ones, in order */
    CU_ASSERT_EQUAL(tag_of(&q1->rxf[NB_RX_BATCH - 1]), 1);
    CU_ASSERT_EQUAL(nb_steer_pull(q1), 0);
    q1->rxf_pending = 0;
    CU_ASSERT_EQUAL(nb_steer_pull(q1), NB_STEER_SLOTS - 2);
    CU_ASSERT_EQUAL(tag_of(&q1->rxf[0]), 2);
    CU_ASSERT_EQUAL(atomic_load(&q1->steer->count), 0);
    CU_ASSERT_TRUE(buffers_conserved());
    q1->rxf_pending = 0;
}

static bool readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_sleeping_owner_is_kicked_once(void)
{
    struct nb_queue *q0 = &v->q[0], *q1 = &v->q[1];
    hs.size = 1;
    hs.mapping[0] = 1;
    /* a busy owner (not sleeping): no kick */
    put_frame(q0, 3000, 1, false);
    CU_ASSERT_EQUAL(nb_steer_route(q0, 0, &hs), 1);
    CU_ASSERT_FALSE(readable(q1->steer->kickfd));
    /* frames waiting: the owner must not sleep */
    CU_ASSERT_FALSE(nb_steer_sleep(q1));
    CU_ASSERT_EQUAL(nb_steer_pull(q1), 1);
    q1->rxf_pending = 0;
    /* asleep: the next handoff kicks, once */
    CU_ASSERT_TRUE(nb_steer_sleep(q1));
    put_frame(q0, 3001, 2, false);
    put_frame(q0, 3002, 3, false);
    CU_ASSERT_EQUAL(nb_steer_route(q0, 0, &hs), 2);
    CU_ASSERT_TRUE(readable(q1->steer->kickfd));
    CU_ASSERT_FALSE(atomic_load(&q1->steer->sleeping));
    nb_steer_wake(q1, true);
    CU_ASSERT_FALSE(readable(q1->steer->kickfd));
    CU_ASSERT_EQUAL(nb_steer_pull(q1), 2);
    q1->rxf_pending = 0;
    /* a frame for the reader itself wakes nobody */
    CU_ASSERT_TRUE(nb_steer_sleep(q1));
    hs.mapping[0] = 0;
    put_frame(q0, 3003, 4, false);
    CU_ASSERT_EQUAL(nb_steer_route(q0, 0, &hs), 0);
    CU_ASSERT_EQUAL(q0->rxf_pending, 1);
    CU_ASSERT_FALSE(readable(q1->steer->kickfd));
    nb_steer_wake(q1, false);
    q0->rxf_pending = 0;
    CU_ASSERT_TRUE(buffers_conserved());
}

/* A frontend that takes GSO gets few big rx buffers a queue (rx_nbuf within NB_RX_BUDGET, not
 * NB_RX_BATCH of them), and an inbox does not change that: the queue takes handed frames into
 * the entries it has buffers for, and the rest wait in the inbox. */
static void test_gso_queue_keeps_its_rx_budget_with_an_inbox(void)
{
    struct nb_vif *g = calloc(1, sizeof(*g));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    g->nqueues = 2;
    g->rx_caps.gso_tcpv4 = true;
    bool ok = sx_stats_create(&g->stats, "vif", 2, 0, nb_stat_names) == 0;
    for (unsigned i = 0; i < 2; i++) {
        g->q[i].vif = g;
        g->q[i].id = i;
        g->q[i].worldfd = g->q[i].stopfd = -1;
        ok = ok && nb_queue_alloc(&g->q[i]) == 0 && nb_steer_alloc(&g->q[i]) == 0;
    }
    CU_ASSERT_TRUE(ok);
    struct nb_queue *q0 = &g->q[0], *q1 = &g->q[1];
    if (ok) {
        const unsigned nbuf = q1->rx_nbuf;
        CU_ASSERT_TRUE(nbuf > 0 && nbuf < NB_RX_BATCH);
        CU_ASSERT_TRUE(nbuf * q1->rx_cap <= NB_RX_BUDGET);
        for (unsigned k = nbuf; k < NB_RX_BATCH; k++)
            CU_ASSERT_PTR_NULL(q1->rxf[k].buf);
        /* everything to queue 1: two of queue 0's batches fill queue 1's inbox past its own
         * buffers */
        struct nb_hash_snap gs = hs;
        gs.size = 1;
        gs.mapping[0] = 1;
        uint8_t tag = 0;
        for (unsigned round = 0; round < 2; round++) {
            unsigned n = q0->rx_nbuf;
            for (unsigned t = 0; t < n; t++, tag++)
                put_frame(q0, (uint16_t)(4000 + tag), tag, false);
            CU_ASSERT_EQUAL(nb_steer_route(q0, 0, &gs), n);
        }
        unsigned held = atomic_load(&q1->steer->count);
        CU_ASSERT_TRUE(held > nbuf);
        q1->rxf_pending = 0;
        CU_ASSERT_EQUAL(nb_steer_pull(q1), nbuf);
        CU_ASSERT_EQUAL(nb_steer_pull(q1), 0);
        CU_ASSERT_EQUAL(atomic_load(&q1->steer->count), held - nbuf);
        for (unsigned k = 0; k < nbuf; k++)
            CU_ASSERT_EQUAL(tag_of(&q1->rxf[k]), k);
        for (unsigned k = nbuf; k < NB_RX_BATCH; k++)
            CU_ASSERT_PTR_NULL(q1->rxf[k].buf);
    }
    for (unsigned i = 0; i < 2; i++)
        nb_queue_free(&g->q[i]);
    if (g->stats.path[0]) {
        char path[300];
        snprintf(path, sizeof(path), "%s", g->stats.path);
        sx_stats_destroy(&g->stats);
        unlink(path);
    }
    free(g);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_route_keeps_own_frames_in_order_and_hands_the_rest),
    SX_TEST(test_full_inbox_drops_and_counts),
    SX_TEST(test_sleeping_owner_is_kicked_once),
    SX_TEST(test_gso_queue_keeps_its_rx_budget_with_an_inbox),
};

SX_TEST_MAIN("netback_steer", cases, init, clean)
