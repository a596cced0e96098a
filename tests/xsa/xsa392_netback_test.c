/*
 * XSA-392 ("Guest can force Linux netback driver to hog large amounts of kernel memory"):
 * frames for a guest are held until it posts rx buffers. Linux bounded that only by a
 * 60-second stall timeout, which a guest resets by keeping a single buffer posted while each
 * frame needs more than one slot (GSO): gigabytes piled up (CVE-2021-28715, CVE-2021-28714).
 *
 * netback holds at most NB_RX_BATCH frames a queue in preallocated buffers, and while a frame
 * waits for buffers it stops reading the world side altogether (its TAP's own queue then drops
 * and counts), so a guest that never posts, or posts one buffer for frames that need more,
 * costs neither memory nor CPU. Here the world floods H's vif (broadcast frames, and 9000-byte
 * GSO frames H's features let through whole) for a few seconds while H posts nothing, then
 * one buffer; G, on the same bridge, posts buffers and must keep receiving. The process RSS
 * stays flat, H's queue thread sleeps (a small share of a core), H's stall is counted, and
 * once H posts buffers it receives again.
 */
#include "tests/netguest.h"
#include "tests/storm.h"

#include <stdatomic.h>

static struct netenv E;
static struct netguest G, H;
static struct netvif good, hv;
static struct sx_tap *world;

#define ET 0x88b5

static uint64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtoull(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ------------------------------------------------------------------ the world's flood */

struct flood {
    pthread_t thr;
    atomic_bool stop;
    atomic_uint_fast64_t frames, bytes;
};
static struct flood FL;

/* A broadcast frame: small (60 bytes) or a 9000-byte TCP/IPv4 GSO frame (vnet header says
 * TCPV4, MSS 1448, partial checksum), marked "X392" after the Ethernet header (small) or in the
 * TCP payload (GSO). Returns the bytes to write (vnet header included). */
static size_t frame(uint8_t *b, bool gso, uint32_t n)
{
    memset(b, 0, SX_TAP_VNET_HDR_LEN + 64);
    uint8_t *e = b + SX_TAP_VNET_HDR_LEN;
    memset(e, 0xff, 6);
    memcpy(e + 6, (uint8_t[]){ 0x02, 0, 0, 0, 0x03, 0x92 }, 6);
    if (!gso) {
        e[12] = ET >> 8;
        e[13] = ET & 0xff;
        memcpy(e + 14, "X392", 4);
        memcpy(e + 18, &n, 4);
        return SX_TAP_VNET_HDR_LEN + 60;
    }
    struct virtio_net_hdr_v1 *vh = (void *)b;
    const unsigned len = 9000, tot = len - 14;
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    vh->hdr_len = 14 + 20 + 20;
    vh->gso_size = 1448;
    vh->csum_start = 14 + 20;
    vh->csum_offset = 16;
    e[12] = 0x08;
    uint8_t *ip = e + 14, *tcp = ip + 20;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, (uint8_t[]){ 192, 0, 2, 9, 192, 0, 2, 255 }, 8);
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    tcp[0] = 0x13;
    tcp[2] = 0x13;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    tcp[15] = 0xff;
    memcpy(tcp + 20, "X392", 4);
    return SX_TAP_VNET_HDR_LEN + len;
}

static void *flood_main(void *arg)
{
    struct flood *fl = arg;
    static uint8_t b[SX_TAP_VNET_HDR_LEN + 9000];
    int fd = sx_tap_fd(world, 0);
    for (uint32_t n = 0; !atomic_load(&fl->stop); n++) {
        size_t len = frame(b, n % 4 == 3, n);
        if (write(fd, b, len) == (ssize_t)len) {
            atomic_fetch_add(&fl->frames, 1);
            atomic_fetch_add(&fl->bytes, len);
        }
    }
    return NULL;
}

/* G keeps buffers posted and counts the small marked frames it receives, for window ms. */
static unsigned g_receives(int ms)
{
    unsigned got = 0;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    while (sx_now_ms() < end) {
        netif_rx_response_t r;
        unsigned used = 0;
        while (sx_front_ring_take_rsp(&good.rx, &r, 1) == 1) {
            used++;
            if (r.status >= 22 && r.id < NV_RX_PAGES) {
                const uint8_t *f = (const uint8_t *)good.rxbuf + r.id * 4096 + r.offset;
                got += !memcmp(f + 14, "X392", 4);
            }
            netif_rx_request_t q = { .id = r.id, .gref = good.rxrefs[r.id % NV_RX_PAGES] };
            sx_front_ring_put_req(&good.rx, &q);
        }
        if (used) {
            sx_front_ring_push(&good.rx);
            sx_evtchn_notify(G.ev, (evtchn_port_t)good.port);
        }
        usleep(1000);
    }
    return got;
}

static void test_xsa392_guest_that_never_posts_rx_costs_nothing(void)
{
    char victim[16];
    snprintf(victim, sizeof(victim), "nb%u.%u-q0", H.dom, hv.dev);
    int tid = sx_test_thread_by_name(victim);
    CU_ASSERT_TRUE_FATAL(tid > 0);
    nv_post_rx(&good);
    uint64_t rss0 = rss_kb(), c0 = sx_test_thread_cpu_ns(tid), t0 = sx_now_ns();
    uint64_t stalls0 = nv_stat(&hv, "rx_stalls");
    atomic_store(&FL.stop, false);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&FL.thr, NULL, flood_main, &FL), 0);
    unsigned g_got = g_receives(3000);                 /* H posts nothing meanwhile */
    uint64_t c1 = sx_test_thread_cpu_ns(tid), t1 = sx_now_ns(), rss1 = rss_kb();
    /* Then one buffer, while frames keep coming (GSO ones need more than one slot). */
    netif_rx_request_t one = { .id = 0, .gref = hv.rxrefs[0] };
    CU_ASSERT_EQUAL(sx_front_ring_put_req(&hv.rx, &one), 0);
    sx_front_ring_push(&hv.rx);
    sx_evtchn_notify(H.ev, (evtchn_port_t)hv.port);
    g_got += g_receives(1500);
    uint64_t c2 = sx_test_thread_cpu_ns(tid), t2 = sx_now_ns(), rss2 = rss_kb();
    atomic_store(&FL.stop, true);
    pthread_join(FL.thr, NULL);
    double share = (double)(c1 - c0) / (double)(t1 - t0);
    double share1 = (double)(c2 - c1) / (double)(t2 - t1);
    printf("\n  world flood: %llu frames (%.1f MB) in 4.5 s; H (no rx buffers) queue thread %.2f%% "
           "of a core, then with one buffer %.2f%%; process RSS %llu -> %llu -> %llu kB; "
           "G received %u marked frames; H rx_stalls %llu, rx_pkts %llu\n",
           (unsigned long long)FL.frames, (double)FL.bytes / 1e6, share * 100, share1 * 100,
           (unsigned long long)rss0, (unsigned long long)rss1, (unsigned long long)rss2, g_got,
           (unsigned long long)(nv_stat(&hv, "rx_stalls") - stalls0),
           (unsigned long long)nv_stat(&hv, "rx_pkts"));
    CU_ASSERT_TRUE(FL.bytes > 20000000);                /* the flood was real */
    CU_ASSERT_TRUE(share < 0.05);
    CU_ASSERT_TRUE(share1 < 0.05);
    CU_ASSERT_TRUE(rss2 < rss0 + 8192);                 /* flat: well under 8 MB */
    CU_ASSERT_TRUE(g_got > 100);                        /* the other guest kept receiving */
    CU_ASSERT_TRUE(nv_stat(&hv, "rx_stalls") > stalls0);
    CU_ASSERT_EQUAL(nv_stat(&hv, "rx_fatal"), 0);
    /* H posts its buffers: it receives again. */
    uint64_t pk0 = nv_stat(&hv, "rx_pkts");
    for (unsigned i = 1; i < NV_RX_PAGES; i++) {
        netif_rx_request_t q = { .id = (uint16_t)i, .gref = hv.rxrefs[i] };
        CU_ASSERT_EQUAL(sx_front_ring_put_req(&hv.rx, &q), 0);
    }
    sx_front_ring_push(&hv.rx);
    sx_evtchn_notify(H.ev, (evtchn_port_t)hv.port);
    uint8_t b[SX_TAP_VNET_HDR_LEN + 64];
    uint64_t end = sx_now_ms() + 5000;
    while (nv_stat(&hv, "rx_pkts") == pk0 && sx_now_ms() < end) {
        size_t len = frame(b, false, 0);
        if (write(sx_tap_fd(world, 0), b, len) != (ssize_t)len)
            break;
        usleep(10000);
    }
    CU_ASSERT_TRUE(nv_stat(&hv, "rx_pkts") > pk0);
}

/* H: GSO and SG, so 9000-byte frames reach it whole (3 slots and a GSO extra each). */
static int gso_features(struct netvif *t, void *arg)
{
    (void)arg;
    return sx_xenbus_write(t->g->e->xb, XBT_NULL, t->fe, "feature-gso-tcpv4", "1");
}

static int suite_init(void)
{
    if (netenv_start(&E, 20000) < 0)
        return 1;
    if (netguest_open(&E, &G, "good") || netguest_open(&E, &H, "hoarder") ||
        nv_open(&good, &G, 0) ||
        nv_open_ex(&hv, &H, 1, NULL, NULL, gso_features, NULL, XenbusStateConnected))
        return 1;
    world = nv_world_open("sxworld0");
    return world ? 0 : 1;
}

static int suite_clean(void)
{
    nv_close(&hv);
    nv_close(&good);
    sx_tap_close(world);
    world = NULL;
    netguest_close(&G);
    netguest_close(&H);
    netenv_stop(&E);
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa392_guest_that_never_posts_rx_costs_nothing),
};

SX_TEST_MAIN("xsa392_netback", cases, suite_init, suite_clean)
