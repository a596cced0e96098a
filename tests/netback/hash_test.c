/*
 * netback/hash.c: Toeplitz against the Microsoft RSS verification suite (the standard 40-byte
 * key, IPv4/IPv6 with and without TCP ports), frame hashing per the flags, queue selection, and
 * every control message with good and bad arguments (a fake grant copy stands in for the
 * frontend's granted page).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "tests/sxtest.h"
#include "netback/common.h"

static const uint8_t rss_key[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct v4 { const char *src, *dst; uint16_t sport, dport; uint32_t h_ip, h_tcp; };
static const struct v4 v4s[] = {
    { "66.9.149.187", "161.142.100.80", 2794, 1766, 0x323e8fc2, 0x51ccc178 },
    { "199.92.111.2", "65.69.140.83", 14230, 4739, 0xd718262a, 0xc626b0ea },
    { "24.19.198.95", "12.22.207.184", 12898, 38024, 0xd2d0a5de, 0x5c2b394a },
    { "38.27.205.30", "209.142.163.6", 48228, 2217, 0x82989176, 0xafc7327f },
    { "153.39.163.191", "202.188.127.2", 44251, 1303, 0x5d1809c5, 0x10e828a2 },
};
struct v6 { const char *src, *dst; uint16_t sport, dport; uint32_t h_ip, h_tcp; };
static const struct v6 v6s[] = {
    { "3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766, 0x2cc18cd5, 0x40207d3d },
    { "3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739, 0x0f0c461c, 0xdde51bbf },
    { "3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf", 44251, 38024,
      0x4b61e985, 0x02d1feef },
};

static void test_toeplitz_ipv4_vectors(void)
{
    for (size_t i = 0; i < sizeof(v4s) / sizeof(v4s[0]); i++) {
        uint8_t b[12];
        CU_ASSERT_EQUAL(inet_pton(AF_INET, v4s[i].src, b), 1);
        CU_ASSERT_EQUAL(inet_pton(AF_INET, v4s[i].dst, b + 4), 1);
        uint16_t sp = htons(v4s[i].sport), dp = htons(v4s[i].dport);
        memcpy(b + 8, &sp, 2);
        memcpy(b + 10, &dp, 2);
        CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 40, b, 8), v4s[i].h_ip);
        CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 40, b, 12), v4s[i].h_tcp);
    }
}

static void test_toeplitz_ipv6_vectors(void)
{
    for (size_t i = 0; i < sizeof(v6s) / sizeof(v6s[0]); i++) {
        uint8_t b[36];
        CU_ASSERT_EQUAL(inet_pton(AF_INET6, v6s[i].src, b), 1);
        CU_ASSERT_EQUAL(inet_pton(AF_INET6, v6s[i].dst, b + 16), 1);
        uint16_t sp = htons(v6s[i].sport), dp = htons(v6s[i].dport);
        memcpy(b + 32, &sp, 2);
        memcpy(b + 34, &dp, 2);
        CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 40, b, 32), v6s[i].h_ip);
        CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 40, b, 36), v6s[i].h_tcp);
    }
}

static void test_toeplitz_short_key_is_zero_padded(void)
{
    uint8_t k[40] = { 0 }, b[12] = { 0x12, 0x34, 0x56, 0x78, 9, 8, 7, 6, 5, 4, 3, 2 };
    memcpy(k, rss_key, 10);
    CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 10, b, 12), nb_toeplitz(k, 40, b, 12));
    CU_ASSERT_EQUAL(nb_toeplitz(rss_key, 0, b, 12), 0);
}

/* An Ethernet frame: IPv4 (proto, frag bits) or IPv6 (next header) with ports. */
static uint32_t frame4(uint8_t *f, const struct v4 *v, uint8_t proto, uint16_t frag)
{
    memset(f, 0, 64);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[6] = (uint8_t)(frag >> 8);
    ip[7] = (uint8_t)frag;
    ip[9] = proto;
    inet_pton(AF_INET, v->src, ip + 12);
    inet_pton(AF_INET, v->dst, ip + 16);
    uint16_t sp = htons(v->sport), dp = htons(v->dport);
    memcpy(ip + 20, &sp, 2);
    memcpy(ip + 22, &dp, 2);
    return 14 + 20 + 20;
}

static uint32_t frame6(uint8_t *f, const struct v6 *v, uint8_t nh)
{
    memset(f, 0, 128);
    f[12] = 0x86;
    f[13] = 0xdd;
    uint8_t *ip = f + 14;
    ip[0] = 0x60;
    ip[6] = nh;
    inet_pton(AF_INET6, v->src, ip + 8);
    inet_pton(AF_INET6, v->dst, ip + 24);
    uint16_t sp = htons(v->sport), dp = htons(v->dport);
    memcpy(ip + 40, &sp, 2);
    memcpy(ip + 42, &dp, 2);
    return 14 + 40 + 20;
}

static void test_hash_frame_follows_flags(void)
{
    struct nb_hash_cfg c = { .alg = XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
                             .flags = NB_HASH_FLAGS_ALL };
    memcpy(c.key, rss_key, 40);
    uint8_t f[128];
    uint32_t h = 0;
    uint8_t t = 0xff;
    uint32_t n = frame4(f, &v4s[0], 6, 0);
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, n, &h, &t));
    CU_ASSERT_EQUAL(h, v4s[0].h_tcp);
    CU_ASSERT_EQUAL(t, _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
    /* UDP: netif.h has no UDP type: the address hash */
    n = frame4(f, &v4s[1], 17, 0);
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, n, &h, &t));
    CU_ASSERT_EQUAL(h, v4s[1].h_ip);
    CU_ASSERT_EQUAL(t, _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
    /* a TCP fragment has no ports to hash */
    n = frame4(f, &v4s[2], 6, 0x2000);
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, n, &h, &t));
    CU_ASSERT_EQUAL(h, v4s[2].h_ip);
    n = frame6(f, &v6s[0], 6);
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, n, &h, &t));
    CU_ASSERT_EQUAL(h, v6s[0].h_tcp);
    CU_ASSERT_EQUAL(t, _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
    /* only IPV6 set: TCP hashed over addresses */
    c.flags = XEN_NETIF_CTRL_HASH_TYPE_IPV6;
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, n, &h, &t));
    CU_ASSERT_EQUAL(h, v6s[0].h_ip);
    CU_ASSERT_EQUAL(t, _XEN_NETIF_CTRL_HASH_TYPE_IPV6);
    /* no IPv4 flag: an IPv4 frame gets no hash */
    n = frame4(f, &v4s[0], 6, 0);
    CU_ASSERT_FALSE(nb_hash_frame(&c, f, n, &h, &t));
    /* truncated frames and algorithm NONE: none */
    c.flags = NB_HASH_FLAGS_ALL;
    CU_ASSERT_FALSE(nb_hash_frame(&c, f, 14 + 19, &h, &t));
    CU_ASSERT_TRUE(nb_hash_frame(&c, f, 14 + 20, &h, &t));   /* no room for ports: IPv4 */
    CU_ASSERT_EQUAL(t, _XEN_NETIF_CTRL_HASH_TYPE_IPV4);
    c.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
    CU_ASSERT_FALSE(nb_hash_frame(&c, f, n, &h, &t));
}

/* ---------------------------------------------------------------- control messages */

static uint8_t page[4096];
static int copies;
static int fake_copy(void *arg, uint32_t gref, void *dst, uint32_t len)
{
    (void)arg;
    copies++;
    if (gref != 7 || len > sizeof(page))
        return -EIO;      /* any other gref is a bad grant */
    memcpy(dst, page, len);
    return 0;
}

static struct nb_hash H;

static uint32_t ctrl(uint16_t type, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t *data)
{
    struct xen_netif_ctrl_request rq = { .id = 0x1234, .type = type, .data = { d0, d1, d2 } };
    struct xen_netif_ctrl_response rs;
    memset(&rs, 0xa5, sizeof(rs));
    nb_ctrl_handle(&H, &rq, &rs, fake_copy, NULL);
    CU_ASSERT_EQUAL(rs.id, 0x1234);
    CU_ASSERT_EQUAL(rs.type, type);
    if (data)
        *data = rs.data;
    return rs.status;
}

static int init(void)
{
    pthread_mutex_init(&H.lock, NULL);
    return 0;
}

static int clean(void)
{
    nb_hash_destroy(&H);
    return 0;
}

static void test_ctrl_algorithm_and_flags(void)
{
    nb_hash_init(&H, 4);
    uint32_t d = 99;
    /* flags need an algorithm first */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, &d),
                    XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV4, 0, 0,
                         NULL), XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, 2, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(H.cfg.alg, XEN_NETIF_CTRL_HASH_ALGORITHM_NONE);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
                         XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS, 0, 0, 0, &d),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(d, NB_HASH_FLAGS_ALL);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 1u << 4, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(H.cfg.flags, 0);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
                         0, 0, NULL), XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.cfg.flags, XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM,
                         XEN_NETIF_CTRL_HASH_ALGORITHM_NONE, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.cfg.alg, XEN_NETIF_CTRL_HASH_ALGORITHM_NONE);
}

static void test_ctrl_key(void)
{
    nb_hash_init(&H, 4);
    memcpy(page, rss_key, 40);
    page[40] = 0xee;
    copies = 0;
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 7, 41, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 7, 0xffffffffu, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW);
    CU_ASSERT_EQUAL(copies, 0);   /* refused before touching the grant */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 7, 40, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(memcmp(H.cfg.key, rss_key, 40), 0);
    /* a bad grant: INVALID_PARAMETER, the old key stays */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 8, 40, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(memcmp(H.cfg.key, rss_key, 40), 0);
    /* a shorter key: the rest is zero */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 7, 16, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(memcmp(H.cfg.key, rss_key, 16), 0);
    CU_ASSERT_EQUAL(H.cfg.key[16], 0);
    CU_ASSERT_EQUAL(H.cfg.key[39], 0);
    /* size 0 clears the key without a copy */
    copies = 0;
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, 8, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(copies, 0);
    CU_ASSERT_EQUAL(H.cfg.key[0], 0);
}

static void test_ctrl_mapping(void)
{
    nb_hash_init(&H, 4);
    uint32_t d = 0;
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE, 0, 0, 0, &d),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(d, NB_HASH_MAPPING_MAX);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, NB_HASH_MAPPING_MAX + 1, 0,
                         0, NULL), XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(H.size, 0);
    /* without a table: hash % queues */
    CU_ASSERT_EQUAL(nb_hash_queue(&H, 4 * 1000 + 3), 3);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 8, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.size, 8);
    uint32_t *m = (uint32_t *)page;
    for (unsigned i = 0; i < 8; i++)
        m[i] = 3 - (i % 4);
    /* out of range: offset + len past the size, wrapping, bad grant */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 7, 8, 1, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 7, 2, 0xffffffffu, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 8, 8, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 7, 8, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.mapping[0], 3);
    CU_ASSERT_EQUAL(H.mapping[5], 2);
    CU_ASSERT_EQUAL(nb_hash_queue(&H, 8 * 77 + 1), 2);
    /* an entry >= the number of queues: refused, table unchanged */
    m[1] = 4;
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 7, 2, 4, NULL),
                    XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
    CU_ASSERT_EQUAL(H.mapping[4], 3);
    CU_ASSERT_EQUAL(H.mapping[5], 2);
    /* a sub-table at an offset leaves the rest alone */
    m[0] = 1;
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, 7, 1, 6, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.mapping[6], 1);
    CU_ASSERT_EQUAL(H.mapping[5], 2);
    CU_ASSERT_EQUAL(H.mapping[7], 0);
    /* a new size zero-fills */
    CU_ASSERT_EQUAL(ctrl(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 4, 0, 0, NULL),
                    XEN_NETIF_CTRL_STATUS_SUCCESS);
    CU_ASSERT_EQUAL(H.mapping[0], 0);
    CU_ASSERT_EQUAL(nb_hash_queue(&H, 3), 0);
}

static void test_ctrl_unknown_types(void)
{
    nb_hash_init(&H, 1);
    uint16_t types[] = { XEN_NETIF_CTRL_TYPE_INVALID, XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE,
                         XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING,
                         XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING, 11, 0xffff };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint32_t d = 5;
        CU_ASSERT_EQUAL(ctrl(types[i], 1, 2, 3, &d), XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED);
        CU_ASSERT_EQUAL(d, 0);
    }
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_toeplitz_ipv4_vectors),
    SX_TEST(test_toeplitz_ipv6_vectors),
    SX_TEST(test_toeplitz_short_key_is_zero_padded),
    SX_TEST(test_hash_frame_follows_flags),
    SX_TEST(test_ctrl_algorithm_and_flags),
    SX_TEST(test_ctrl_key),
    SX_TEST(test_ctrl_mapping),
    SX_TEST(test_ctrl_unknown_types),
};

SX_TEST_MAIN("netback_hash", cases, init, clean)
