/*
 * Malformed-but-legal tx chains (the netback advisories of 2022-2023):
 *
 *   XSA-423 ("Guests can trigger NIC interface reset/abort/crash via netback"): a packet whose
 *     protocol headers are split over several slots reached the NIC with its headers outside
 *     the linear part of the skb, which drivers assume.
 *   XSA-432 ("Linux: buffer overrun in netback due to unusual packet"): the XSA-423 fix copied a
 *     header area from as many slots as needed and overran it for a packet split into the most
 *     slots allowed yet shorter than that area.
 *   XSA-448 ("Linux: netback processing of zero-length transmit fragment"): slots of length zero
 *     became empty skb fragments, and all-empty ones a NULL dereference in the core.
 *
 * netback copies every slot of a packet into one linear buffer (the vnet header, then the
 * frame) and parses headers there, bounded by the frame; a zero-length following slot drops
 * the packet (stricter than Linux). A world TAP of the test's own on the bridge, without any
 * offload, receives what netback sends: the kernel completes checksums and segments GSO for it,
 * so a frame there with the right bytes and a valid checksum means netback handed on a
 * consistent one. Also: the largest legal chain (4 extras, 18 following slots) at the edge of a
 * 64-packet batch.
 */
#include "tests/netguest.h"

static struct netenv E;
static struct netguest H;
static struct netvif hv;
static struct sx_tap *world;

/* A TCP/IPv4 frame of len bytes (payload marked with tag) in f, its TCP checksum field holding
 * the pseudo header's sum: what a frontend sending with NETTXF_csum_blank leaves there (a
 * partial checksum, as Linux's CHECKSUM_PARTIAL). */
static void tcp_frame(uint8_t *f, unsigned len, const char *tag)
{
    memset(f, 0, len);
    memset(f, 0xff, 6);
    memcpy(f + 6, (uint8_t[]){ 0x00, 0x16, 0x3e, 0x00, 0x04, 0x23 }, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14, *tcp = ip + 20;
    unsigned tot = len - 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, (uint8_t[]){ 198, 51, 100, 1, 198, 51, 100, 2 }, 8);
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    tcp[0] = 0x30;
    tcp[1] = 0x39;
    tcp[2] = 0x00;
    tcp[3] = 0x50;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    tcp[15] = 0xff;
    uint8_t *pl = tcp + 20;
    for (unsigned i = 0; i < len - 54; i++)
        pl[i] = (uint8_t)(i * 7 + 3);
    memcpy(pl, tag, strlen(tag) < len - 54 ? strlen(tag) : len - 54);
    uint32_t ps = 6 + tot - 20;
    for (unsigned i = 12; i < 20; i += 2)
        ps += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (ps >> 16)
        ps = (ps & 0xffff) + (ps >> 16);
    tcp[16] = (uint8_t)(ps >> 8);
    tcp[17] = (uint8_t)ps;
}

/* The TCP checksum over the frame is right (the pseudo header included). */
static bool tcp_csum_ok(const uint8_t *f, unsigned len)
{
    const uint8_t *ip = f + 14;
    unsigned tl = len - 34;
    uint32_t sum = 0;
    for (unsigned i = 12; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    sum += 6 + tl;
    const uint8_t *t = ip + 20;
    for (unsigned i = 0; i + 1 < tl; i += 2)
        sum += (uint32_t)(t[i] << 8 | t[i + 1]);
    if (tl & 1)
        sum += (uint32_t)t[tl - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

/* A frame handed on with a partial checksum (the vnet header's NEEDS_CSUM: the field holds
 * the pseudo header's sum) completed as a NIC would: false when csum_start and csum_offset do
 * not point at the TCP checksum. */
static bool complete_csum(uint8_t *f, unsigned len, const struct virtio_net_hdr_v1 *vh)
{
    if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        return true;
    if (vh->csum_start != 34 || vh->csum_offset != 16)
        return false;
    uint32_t sum = 0;
    for (unsigned i = 34; i + 1 < len; i += 2)
        sum += (uint32_t)(f[i] << 8 | f[i + 1]);
    if ((len - 34) & 1)
        sum += (uint32_t)f[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    f[50] = (uint8_t)(~sum >> 8);
    f[51] = (uint8_t)~sum;
    return true;
}

/* Frames the world TAP receives within ms whose TCP payload starts with tag: copied into out
 * (one after the other, max each, a partial checksum completed), their count returned. A
 * partial checksum pointing elsewhere than the TCP checksum leaves the frame's bytes zero. */
static unsigned world_tcp(const char *tag, uint8_t out[][2048], unsigned *lens, unsigned max,
                          int ms)
{
    static uint8_t buf[SX_TAP_VNET_HDR_LEN + 70000];
    unsigned n = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    int fd = sx_tap_fd(world, 0);
    while (n < max && sx_now_ms() < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < SX_TAP_VNET_HDR_LEN + 54)
            continue;
        const uint8_t *f = buf + SX_TAP_VNET_HDR_LEN;
        unsigned len = (unsigned)r - SX_TAP_VNET_HDR_LEN;
        if (f[12] != 0x08 || f[23] != 6 || memcmp(f + 54, tag, strlen(tag)))
            continue;
        uint8_t *g = buf + SX_TAP_VNET_HDR_LEN;
        if (!complete_csum(g, len, (const struct virtio_net_hdr_v1 *)buf))
            memset(g, 0, len);
        lens[n] = len;
        memcpy(out[n++], f, len < 2048 ? len : 2048);
    }
    return n;
}

/* The slots of one packet: (page offset, size) into data page 1 of hv, copied from frame. */
struct piece {
    uint16_t off, size;
};

/* Put frame (len) as a chain of the pieces given (piece 0 first, its size the whole packet),
 * each piece copied to its place in data page 1 (read-only grant: netback only reads). */
static void put_chain(const uint8_t *frame, unsigned len, const struct piece *pc, unsigned n,
                      uint16_t flags0)
{
    uint8_t *page = (uint8_t *)hv.data + 4096;
    unsigned at = 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(page + pc[i].off, frame + at, pc[i].size);
        at += pc[i].size;
    }
    CU_ASSERT_EQUAL(at, len);
    for (unsigned i = 0; i < n; i++)
        nv_put(&hv, hv.drefs[1], pc[i].off, i ? pc[i].size : (uint16_t)len,
               (uint16_t)((i ? 0 : flags0) | (i + 1 < n ? NETTXF_more_data : 0)));
}

static void put_extra(uint8_t type, bool more, uint16_t gso_size)
{
    netif_extra_info_t ex;
    memset(&ex, 0, sizeof(ex));
    ex.type = type;
    ex.flags = more ? XEN_NETIF_EXTRA_FLAG_MORE : 0;
    if (type == XEN_NETIF_EXTRA_TYPE_GSO) {
        ex.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
        ex.u.gso.size = gso_size;
    } else {
        ex.u.hash.type = _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP;
        ex.u.hash.algorithm = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ;
    }
    nv_put_extra(&hv, &ex);
}

/* All n responses OKAY (extras NULL). */
static bool all_ok(unsigned n)
{
    netif_tx_response_t r[128];
    if (nv_rsp(&hv, r, (int)n, 3000) != (int)n)
        return false;
    bool ok = true;
    for (unsigned i = 0; i < n; i++)
        ok &= r[i].status == NETIF_RSP_OKAY || r[i].status == NETIF_RSP_NULL;
    return ok;
}

static void drain_world(void)
{
    uint8_t f[1][2048];
    unsigned l[1];
    while (world_tcp("", f, l, 1, 100))
        ;
}

/* XSA-423: Ethernet, IP and TCP headers each split across slots (14 | 7 | 13 | 9 | 11 | rest),
 * checksum left to the backend (csum_blank): one frame at the world with the same bytes and a
 * valid checksum. */
static void test_xsa423_headers_split_across_slots(void)
{
    static uint8_t frame[200], out[4][2048];
    unsigned lens[4];
    drain_world();
    tcp_frame(frame, 200, "X423a");
    const struct piece pc[] = { { 0, 14 }, { 100, 7 }, { 200, 13 }, { 300, 9 }, { 400, 11 },
                                { 500, 146 } };
    put_chain(frame, 200, pc, 6, NETTXF_csum_blank);
    nv_push(&hv);
    CU_ASSERT_TRUE(all_ok(6));
    CU_ASSERT_EQUAL_FATAL(world_tcp("X423a", out, lens, 1, 3000), 1);
    CU_ASSERT_EQUAL(lens[0], 200);
    CU_ASSERT_EQUAL(memcmp(out[0], frame, 50), 0);            /* headers (checksum aside) */
    CU_ASSERT_EQUAL(memcmp(out[0] + 54, frame + 54, 146), 0);
    CU_ASSERT_TRUE(tcp_csum_ok(out[0], lens[0]));
}

/* XSA-423 with GSO: a 3000-byte TCP packet with headers split across slots and a GSO extra
 * (MSS 1000): the world's kernel segments it; three frames whose payloads concatenate to the
 * original, each with a valid checksum. */
static void test_xsa423_split_headers_with_gso(void)
{
    static uint8_t frame[3000], out[4][2048];
    unsigned lens[4];
    drain_world();
    tcp_frame(frame, 3000, "X423b");
    /* 20 | 20 | 14 | 1500 | 1446: the headers end in the third slot */
    const struct piece pc[] = { { 0, 20 }, { 64, 20 }, { 128, 14 }, { 256, 1500 },
                                { 1800, 1446 } };
    uint8_t *page = (uint8_t *)hv.data + 4096;
    nv_put(&hv, hv.drefs[1], pc[0].off, 3000,
           NETTXF_csum_blank | NETTXF_extra_info | NETTXF_more_data);
    put_extra(XEN_NETIF_EXTRA_TYPE_GSO, false, 1000);
    memcpy(page + pc[0].off, frame, pc[0].size);
    unsigned at = pc[0].size;
    for (unsigned i = 1; i < 5; i++) {
        memcpy(page + pc[i].off, frame + at, pc[i].size);
        at += pc[i].size;
        nv_put(&hv, hv.drefs[1], pc[i].off, pc[i].size, i < 4 ? NETTXF_more_data : 0);
    }
    CU_ASSERT_EQUAL(at, 3000);
    nv_push(&hv);
    CU_ASSERT_TRUE(all_ok(6));
    unsigned n = world_tcp("", out, lens, 3, 3000);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    unsigned pay = 0;
    bool same = true, csum = true;
    for (unsigned i = 0; i < n; i++) {
        unsigned pl = lens[i] - 54;
        same &= pay + pl <= 2946 && !memcmp(out[i] + 54, frame + 54 + pay, pl);
        csum &= tcp_csum_ok(out[i], lens[i]);
        pay += pl;
    }
    CU_ASSERT_EQUAL(pay, 2946);
    CU_ASSERT_TRUE(same);
    CU_ASSERT_TRUE(csum);
}

/* XSA-432: the most slots a packet may have (1 + 18 following), each tiny, the whole packet
 * (104 bytes) shorter than any header-copy area, checksum left to the backend: delivered
 * intact. */
static void test_xsa432_most_slots_tiny_packet(void)
{
    static uint8_t frame[104], out[1][2048];
    unsigned lens[1];
    drain_world();
    tcp_frame(frame, 104, "X432a");
    struct piece pc[19];
    pc[0] = (struct piece){ 0, 14 };
    for (unsigned i = 1; i < 19; i++)
        pc[i] = (struct piece){ (uint16_t)(100 * i), 5 };
    put_chain(frame, 104, pc, 19, NETTXF_csum_blank);
    nv_push(&hv);
    CU_ASSERT_TRUE(all_ok(19));
    CU_ASSERT_EQUAL_FATAL(world_tcp("X432a", out, lens, 1, 3000), 1);
    CU_ASSERT_EQUAL(lens[0], 104);
    CU_ASSERT_EQUAL(memcmp(out[0] + 54, frame + 54, 50), 0);
    CU_ASSERT_TRUE(tcp_csum_ok(out[0], lens[0]));
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_fatal"), 0);
}

/* The largest legal chain, 1 + 4 extras + 18 following slots, right after 63 small packets (the
 * 64th of a batch: it spans the batch edge and the copied-request queue's refill): delivered
 * intact, the 63 too, nothing halted. */
static void test_xsa432_four_extras_and_most_slots_at_a_batch_edge(void)
{
    static uint8_t frame[104], out[1][2048];
    unsigned lens[1];
    drain_world();
    uint64_t pk0 = nv_stat(&hv, "tx_pkts");
    for (unsigned i = 0; i < 63; i++)
        nv_put(&hv, hv.drefs[0], 0, 60, 0);
    tcp_frame(frame, 104, "X432b");
    uint8_t *page = (uint8_t *)hv.data + 4096;
    memcpy(page, frame, 14);
    nv_put(&hv, hv.drefs[1], 0, 104, NETTXF_csum_blank | NETTXF_extra_info | NETTXF_more_data);
    put_extra(XEN_NETIF_EXTRA_TYPE_HASH, true, 0);
    put_extra(XEN_NETIF_EXTRA_TYPE_HASH, true, 0);
    put_extra(XEN_NETIF_EXTRA_TYPE_HASH, true, 0);
    put_extra(XEN_NETIF_EXTRA_TYPE_HASH, false, 0);
    for (unsigned i = 1; i < 19; i++) {
        memcpy(page + 100 * i, frame + 14 + 5 * (i - 1), 5);
        nv_put(&hv, hv.drefs[1], (uint16_t)(100 * i), 5, i < 18 ? NETTXF_more_data : 0);
    }
    nv_push(&hv);
    CU_ASSERT_TRUE(all_ok(63 + 23));
    CU_ASSERT_EQUAL_FATAL(world_tcp("X432b", out, lens, 1, 3000), 1);
    CU_ASSERT_EQUAL(lens[0], 104);
    CU_ASSERT_TRUE(tcp_csum_ok(out[0], lens[0]));
    CU_ASSERT_TRUE(nv_stat_wait(&hv, "tx_pkts", pk0 + 64, 2000) >= pk0 + 64);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_fatal"), 0);
}

/* XSA-448: zero-length following slots (every one of them, or one among others): the packet is
 * dropped with an error on each slot and nothing reaches the world; the vif goes on. */
static void test_xsa448_zero_length_fragments_dropped(void)
{
    static uint8_t frame[100], out[1][2048];
    unsigned lens[1];
    drain_world();
    uint64_t d0 = nv_stat(&hv, "tx_drop_zero_frag");
    tcp_frame(frame, 100, "X448");
    memcpy((uint8_t *)hv.data + 4096, frame, 100);
    /* all following slots empty: the first slot carries everything */
    nv_put(&hv, hv.drefs[1], 0, 100, NETTXF_csum_blank | NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 0, 0, NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 0, 0, NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 0, 0, 0);
    /* one empty slot between two with data */
    nv_put(&hv, hv.drefs[1], 0, 100, NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 60, 20, NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 0, 0, NETTXF_more_data);
    nv_put(&hv, hv.drefs[1], 80, 20, 0);
    nv_push(&hv);
    netif_tx_response_t r[8];
    CU_ASSERT_EQUAL_FATAL(nv_rsp(&hv, r, 8, 3000), 8);
    for (unsigned i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(r[i].status, NETIF_RSP_ERROR);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_drop_zero_frag"), d0 + 2);
    CU_ASSERT_EQUAL(world_tcp("X448", out, lens, 1, 500), 0);
    CU_ASSERT_EQUAL(nv_stat(&hv, "tx_fatal"), 0);
    CU_ASSERT_TRUE(nv_send_ok(&hv));
}

/* H offers GSO (so a GSO extra is accepted) and SG. */
static int gso_features(struct netvif *t, void *arg)
{
    (void)arg;
    return sx_xenbus_write(t->g->e->xb, XBT_NULL, t->fe, "feature-gso-tcpv4", "1");
}

static int suite_init(void)
{
    if (netenv_start(&E, 20000) < 0 || netguest_open(&E, &H, "chains") < 0)
        return 1;
    if (nv_open_ex(&hv, &H, 1, NULL, NULL, gso_features, NULL, XenbusStateConnected))
        return 1;
    world = nv_world_open("sxworld0");
    return world ? 0 : 1;
}

static int suite_clean(void)
{
    nv_close(&hv);
    sx_tap_close(world);
    world = NULL;
    netguest_close(&H);
    netenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa423_headers_split_across_slots),
    SX_TEST(test_xsa423_split_headers_with_gso),
    SX_TEST(test_xsa432_most_slots_tiny_packet),
    SX_TEST(test_xsa432_four_extras_and_most_slots_at_a_batch_edge),
    SX_TEST(test_xsa448_zero_length_fragments_dropped),
};

SX_TEST_MAIN("xsa423_432_448_netback", cases, suite_init, suite_clean)
