/*
 * netdev/nl.c, netdev/tap.c and the bridge kind of netdev.h against the real kernel, inside
 * private network and mount namespaces made for this process (nothing is visible outside;
 * everything vanishes when the test exits, even on a crash). Addresses: 192.0.2.0/24 only.
 *
 * Covers: bridge create/reuse, TAP vif9.x on the bridge (kind, vnet_hdr, MAC, master, up,
 * offloads as ethtool shows them), multi-queue, close removes the device, named netns the
 * `ip netns` way, moving a TAP into a netns as eth0 with 192.0.2.2/24, creating one there
 * directly; frames with vnet headers both ways between the TAP fd and a veth on the bridge
 * (AF_PACKET), GSO kept or segmented by TUNSETOFFLOAD; batched TAP I/O (sx_tap_io) both ways
 * and a GSO super-frame written through it segmented on the wire; and a guest namespace's
 * kernel talking UDP through its eth0 TAP with this test playing the wire (ARP, checksum
 * offload both ways).
 */
#include "netdev/netdev.h"
#include "netdev/nl.h"
#include "netdev/vnet.h"
#include "netdev/tap.h"
#include "tests/sxtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

static struct sx_nl *nl;
static char ns_a[64], ns_b[64];
static uint8_t frame[70000];

static const uint8_t mac_vif[6] = {0x00, 0x16, 0x3e, 0x00, 0x09, 0x00};
static const uint8_t mac_peer[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t mac_guest[6] = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x02};

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, s, strlen(s)) < 0) { /* best effort: only quietens IPv6 chatter */
        }
        close(fd);
    }
}

static int suite_init(void)
{
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        sx_test_skip("no /dev/net/tun");
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0)
        sx_test_skip("cannot unshare network and mount namespaces (need root)");
    /* Private mounts: the tmpfs on /run/netns and every netns bind mount die with us. */
    if (mount("", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 1;
    mkdir("/run", 0755);
    mkdir("/run/netns", 0755);
    if (mount("sxtest", "/run/netns", "tmpfs", 0, "mode=755") != 0)
        return 1;
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    snprintf(ns_a, sizeof(ns_a), "sx-a-%d", (int)getpid());
    snprintf(ns_b, sizeof(ns_b), "sx-b-%d", (int)getpid());
    if (sx_nl_open(&nl) != 0)
        return 1;
    int lo;
    if (sx_nl_ifindex(nl, "lo", &lo) || sx_nl_link_set_up(nl, lo, true))
        return 1;
    return 0;
}

static int suite_clean(void)
{
    sx_nl_close(nl);
    return 0;
}

/* Run cmd through the shell; 0 if it printed a line containing want (NULL: exit status 0). */
static int shell_has(const char *cmd, const char *want)
{
    char line[512];
    int found = 0;
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (want && strstr(line, want))
            found = 1;
    int st = pclose(f);
    if (!want)
        return st == 0 ? 0 : -1;
    return found ? 0 : -1;
}

static bool have_ethtool(void)
{
    return shell_has("command -v ethtool >/dev/null 2>&1", NULL) == 0;
}

static void test_bridge_ensure_creates_then_reuses(void)
{
    int a = 0, b = 0, v;
    struct sx_nl_link l;
    CU_ASSERT_EQUAL_FATAL(sx_nl_bridge_ensure(nl, "sxbr0", &a), 0);
    CU_ASSERT(a > 0);
    CU_ASSERT_EQUAL(sx_nl_bridge_ensure(nl, "sxbr0", &b), 0);
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, a, NULL, &l), 0);
    CU_ASSERT_STRING_EQUAL(l.kind, "bridge");
    CU_ASSERT_STRING_EQUAL(l.name, "sxbr0");
    /* a name taken by something else is not a bridge */
    CU_ASSERT_EQUAL_FATAL(sx_nl_veth_add(nl, "sxv0", "sxv0p"), 0);
    CU_ASSERT_EQUAL(sx_nl_bridge_ensure(nl, "sxv0", NULL), -EEXIST);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "sxv0", &v), 0);
    CU_ASSERT_EQUAL(sx_nl_link_del(nl, v), 0);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "sxv0p", &v), -ENODEV); /* the peer went with it */
    CU_ASSERT_EQUAL(sx_nl_link_del(nl, a), 0);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "sxbr0", &v), -ENODEV);
    CU_ASSERT_EQUAL(sx_nl_bridge_ensure(nl, "name-longer-than-ifnamsiz", NULL), -EINVAL);
}

static void test_link_errors_are_errnos(void)
{
    struct in_addr a;
    inet_pton(AF_INET, "192.0.2.9", &a);
    CU_ASSERT_EQUAL(sx_nl_link_set_up(nl, 999999, true), -ENODEV);
    CU_ASSERT_EQUAL(sx_nl_link_set_mtu(nl, 999999, 1500), -ENODEV);
    CU_ASSERT_EQUAL(sx_nl_addr_add_v4(nl, 999999, a, 24), -ENODEV);
    CU_ASSERT_EQUAL(sx_nl_link_del(nl, 999999), -ENODEV);
    int lo;
    CU_ASSERT_EQUAL_FATAL(sx_nl_ifindex(nl, "lo", &lo), 0);
    CU_ASSERT_EQUAL(sx_nl_link_set_master(nl, lo, lo), -EOPNOTSUPP); /* lo is not a master */
    CU_ASSERT_EQUAL_FATAL(sx_nl_veth_add(nl, "sxv1", "sxv1p"), 0);
    CU_ASSERT_EQUAL_FATAL(sx_nl_ifindex(nl, "sxv1", &lo), 0);
    CU_ASSERT_EQUAL(sx_nl_link_set_mtu(nl, lo, 67), -EINVAL); /* below IPv4's minimum */
    CU_ASSERT_EQUAL(sx_nl_link_set_mtu(nl, lo, 9000), 0);
    CU_ASSERT_EQUAL(sx_nl_link_del(nl, lo), 0);
}

static void test_tap_on_bridge(void)
{
    struct sx_tap *tap;
    struct sx_nl_link l;
    int br;
    struct sx_tap_config cfg = {.name = "vif9.0", .mac = mac_vif, .mtu = 1400,
                                .offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
                                .bridge = "xenbr-sx", .up = true};
    CU_ASSERT_EQUAL_FATAL(sx_tap_open(&cfg, &tap), 0);
    CU_ASSERT_EQUAL(sx_tap_nqueues(tap), 1);
    CU_ASSERT(sx_tap_fd(tap, 0) >= 0);
    CU_ASSERT_EQUAL(sx_tap_fd(tap, 1), -EINVAL);
    CU_ASSERT(fcntl(sx_tap_fd(tap, 0), F_GETFL) & O_NONBLOCK);
    CU_ASSERT_STRING_EQUAL(sx_tap_name(tap), "vif9.0");
    CU_ASSERT_EQUAL_FATAL(sx_nl_ifindex(nl, "xenbr-sx", &br), 0);
    CU_ASSERT_EQUAL_FATAL(sx_nl_link_get(nl, 0, "vif9.0", &l), 0);
    CU_ASSERT_EQUAL(l.ifindex, sx_tap_ifindex(tap));
    CU_ASSERT_STRING_EQUAL(l.kind, "tun");
    CU_ASSERT_EQUAL(l.tun_type, IFF_TAP);
    CU_ASSERT_TRUE(l.tun_vnet_hdr);
    CU_ASSERT_FALSE(l.tun_pi);
    CU_ASSERT_FALSE(l.tun_multi_queue);
    CU_ASSERT_TRUE(l.has_mac);
    CU_ASSERT_EQUAL(memcmp(l.mac, mac_vif, 6), 0);
    CU_ASSERT_EQUAL(l.master, br);
    CU_ASSERT(l.flags & IFF_UP);
    CU_ASSERT_EQUAL(l.mtu, 1400);
    CU_ASSERT_EQUAL_FATAL(sx_nl_link_get(nl, br, NULL, &l), 0);
    CU_ASSERT(l.flags & IFF_UP);
    /* iproute2 agrees */
    CU_ASSERT_EQUAL(shell_has("ip -d link show vif9.0", "tun type tap pi off vnet_hdr on"), 0);
    CU_ASSERT_EQUAL(shell_has("ip -d link show vif9.0", "master xenbr-sx"), 0);
    /* offloads as the kernel applied them, then withdrawn */
    if (have_ethtool()) {
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-tcp-segmentation: on"), 0);
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-tcp6-segmentation: on"), 0);
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-checksum-ip-generic: on"), 0);
        CU_ASSERT_EQUAL(sx_tap_set_offload(tap, TUN_F_CSUM), 0);
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-tcp-segmentation: off"), 0);
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-checksum-ip-generic: on"), 0);
        CU_ASSERT_EQUAL(sx_tap_set_offload(tap, 0), 0);
        CU_ASSERT_EQUAL(shell_has("ethtool -k vif9.0", "tx-checksum-ip-generic: off"), 0);
    } else {
        printf("(ethtool missing: offload flags not cross-checked)\n");
    }
    CU_ASSERT_EQUAL(sx_tap_set_offload(tap, TUN_F_TSO4), -EINVAL); /* TSO without CSUM */
    CU_ASSERT_EQUAL(sx_tap_set_offload(tap, TUN_F_UFO | TUN_F_CSUM), -EINVAL);
    CU_ASSERT_EQUAL(sx_tap_set_mtu(tap, 1500), 0);
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.0", &l), 0);
    CU_ASSERT_EQUAL(l.mtu, 1500);

    /* the name is ours while we hold it */
    struct sx_tap *dup = NULL;
    CU_ASSERT(sx_tap_open(&cfg, &dup) < 0);
    CU_ASSERT_PTR_NULL(dup);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "vif9.0", &br), 0);

    sx_tap_close(tap);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "vif9.0", &br), -ENODEV);
    sx_tap_close(NULL);
}

static void test_tap_multi_queue(void)
{
    struct sx_tap *tap;
    struct sx_nl_link l;
    struct sx_tap_config cfg = {.name = "vif9.1", .nqueues = 4, .offload = TUN_F_CSUM};
    CU_ASSERT_EQUAL_FATAL(sx_tap_open(&cfg, &tap), 0);
    CU_ASSERT_EQUAL(sx_tap_nqueues(tap), 4);
    for (unsigned i = 0; i < 4; i++)
        for (unsigned j = i + 1; j < 4; j++)
            CU_ASSERT_NOT_EQUAL(sx_tap_fd(tap, i), sx_tap_fd(tap, j));
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.1", &l), 0);
    CU_ASSERT_TRUE(l.tun_multi_queue);
    CU_ASSERT_EQUAL(l.tun_num_queues, 4);
    CU_ASSERT_FALSE(l.flags & IFF_UP);
    sx_tap_close(tap);
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.1", &l), -ENODEV);
    cfg.nqueues = SX_TAP_MAX_QUEUES + 1;
    CU_ASSERT_EQUAL(sx_tap_open(&cfg, &tap), -EINVAL);
}

/* ---- frames ---- */

static int wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms);
}

/* Read frames from fd until one has this ethertype; its length, or -1 after about ms. */
static ssize_t read_ethertype_ms(int fd, size_t skip, uint16_t ethertype, uint8_t *buf,
                                 size_t len, int ms)
{
    for (int tries = 0; tries < ms / 50; tries++) {
        if (wait_readable(fd, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = read(fd, buf, len);
        if (n < (ssize_t)(skip + 14))
            continue;
        if (buf[skip + 12] == ethertype >> 8 && buf[skip + 13] == (ethertype & 0xff))
            return n;
    }
    return -1;
}

static ssize_t read_ethertype(int fd, size_t skip, uint16_t ethertype, uint8_t *buf, size_t len)
{
    return read_ethertype_ms(fd, skip, ethertype, buf, len, 5000);
}

static void drain(int fd)
{
    while (recv(fd, frame, sizeof(frame), MSG_DONTWAIT) > 0 || (errno == ENOTSOCK &&
                                                                read(fd, frame, sizeof(frame)) > 0))
        ;
}

/* The same for IPv4 frames carrying this protocol (skips IGMP and other chatter). */
static ssize_t read_ipv4(int fd, size_t skip, uint8_t proto, uint8_t *buf, size_t len)
{
    for (int tries = 0; tries < 10; tries++) {
        ssize_t n = read_ethertype(fd, skip, 0x0800, buf, len);
        if (n < 0 || (n >= (ssize_t)(skip + 34) && buf[skip + 23] == proto))
            return n;
    }
    return -1;
}

static int packet_socket(int ifindex, bool vnet)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)), one = 1;
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = ifindex};
    if (s < 0)
        return -1;
    /* Not our own sends: only what arrives on the interface counts. */
    if (setsockopt(s, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
        bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
        (vnet && setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)) {
        close(s);
        return -1;
    }
    return s;
}

static size_t eth(uint8_t *p, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(p, dst, 6);
    memcpy(p + 6, src, 6);
    p[12] = (uint8_t)(type >> 8);
    p[13] = (uint8_t)type;
    return 14;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Ethernet/IPv4/(TCP|UDP) to `to`, payload bytes of a pattern; the L4 checksum field holds the
 * pseudo-header sum (a partial checksum). Returns the frame length. */
static size_t ip4_frame(uint8_t *p, const uint8_t *dmac, const uint8_t *smac, const char *from,
                        const char *to, int proto, uint16_t sport, uint16_t dport, size_t payload)
{
    size_t o = eth(p, dmac, smac, 0x0800), l4hl = proto == 6 ? 20 : 8;
    uint8_t *ip = p + o, *l4 = p + o + 20;
    memset(ip, 0, 20 + l4hl);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + l4hl + payload));
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = (uint8_t)proto;
    inet_pton(AF_INET, from, ip + 12);
    inet_pton(AF_INET, to, ip + 16);
    put16(ip + 10, (uint16_t)~sx_net_csum_fold(sx_net_csum_partial(ip, 20, 0)));
    put16(l4, sport);
    put16(l4 + 2, dport);
    if (proto == 6) {
        l4[4] = 1;
        l4[12] = 5 << 4;
        l4[13] = 0x10;
        put16(l4 + 14, 65535);
    } else {
        put16(l4 + 4, (uint16_t)(8 + payload));
    }
    for (size_t i = 0; i < payload; i++)
        l4[l4hl + i] = (uint8_t)(i * 13 + 1);
    uint32_t s = sx_net_csum_partial(ip + 12, 8, 0) + (uint32_t)proto + (uint32_t)(l4hl + payload);
    put16(l4 + (proto == 6 ? 16 : 6), sx_net_csum_fold(s));
    return o + 20 + l4hl + payload;
}

/* The L4 checksum of an IPv4 frame verifies (sum over pseudo-header and segment is ~0). */
static bool l4_csum_ok(const uint8_t *p, size_t len)
{
    struct sx_net_hdrs h;
    if (sx_net_hdr_parse(p, len, &h) != 0 || h.ethertype != 0x0800)
        return false;
    size_t l4len = len - h.l4_off;
    uint32_t s = sx_net_csum_partial(p + h.l3_off + 12, 8, 0) + h.l4_proto + (uint32_t)l4len;
    return sx_net_csum_fold(sx_net_csum_partial(p + h.l4_off, l4len, s)) == 0xffff;
}

struct bridge_rig {
    struct sx_tap *tap;
    int pkt;   /* AF_PACKET on the veth end outside the bridge */
    int vp;    /* its ifindex */
};

/* A veth sxvb/sxvp with sxvb on xenbr-dp and a packet socket on sxvp; then frames are probed
 * both ways through fd (a TAP queue on the bridge) until the bridge forwards. */
static int rig_link(struct bridge_rig *r, int fd, bool vnet)
{
    int vb, br;
    if (sx_nl_ifindex(nl, "sxvb", &vb) == -ENODEV) {
        if (sx_nl_veth_add(nl, "sxvb", "sxvp") || sx_nl_ifindex(nl, "sxvb", &vb) ||
            sx_nl_ifindex(nl, "xenbr-dp", &br) || sx_nl_link_set_master(nl, vb, br) ||
            sx_nl_link_set_up(nl, vb, true))
            return -1;
    }
    if (sx_nl_ifindex(nl, "sxvp", &r->vp) || sx_nl_link_set_up(nl, r->vp, true))
        return -1;
    r->pkt = packet_socket(r->vp, vnet);
    if (r->pkt < 0)
        return -1;
    /* Bridge ports forward only once the kernel's link watcher has seen both carriers, up to
     * a second after "up": probe each way until a frame gets through, then start clean. */
    const size_t H = SX_TAP_VNET_HDR_LEN, V = vnet ? sizeof(struct virtio_net_hdr) : 0;
    const uint8_t *bc = (const uint8_t *)"\xff\xff\xff\xff\xff\xff";
    uint8_t out[128];
    bool in_ok = false, out_ok = false;
    for (int attempt = 0; attempt < 50 && !(in_ok && out_ok); attempt++) {
        if (!in_ok) {
            memset(out, 0, sizeof(out));
            eth(out + V, bc, mac_peer, 0x88b7);
            if (send(r->pkt, out, V + 60, 0) < 0) {
                printf("probe send: %s\n", strerror(errno));
                return -1;
            }
            in_ok = read_ethertype_ms(fd, H, 0x88b7, frame, sizeof(frame), 100) > 0;
        }
        if (!out_ok) {
            memset(out, 0, sizeof(out)); /* a zero vnet header: no offloads */
            eth(out + H, bc, mac_vif, 0x88b7);
            if (write(fd, out, H + 60) < 0) {
                printf("probe write: %s\n", strerror(errno));
                return -1;
            }
            out_ok = read_ethertype_ms(r->pkt, V, 0x88b7, frame, sizeof(frame), 100) > 0;
        }
    }
    drain(fd);
    drain(r->pkt);
    if (!(in_ok && out_ok))
        printf("probe failed: in %d out %d (%s)\n", in_ok, out_ok, strerror(errno));
    return in_ok && out_ok ? 0 : -1;
}

static int rig_up(struct bridge_rig *r, const char *tapname, unsigned offload, bool vnet)
{
    struct sx_tap_config cfg = {.name = tapname, .mac = mac_vif, .offload = offload,
                                .bridge = "xenbr-dp", .up = true};
    memset(r, 0, sizeof(*r));
    r->pkt = -1;
    if (sx_tap_open(&cfg, &r->tap))
        return -1;
    return rig_link(r, sx_tap_fd(r->tap, 0), vnet);
}

static void rig_down(struct bridge_rig *r)
{
    if (r->pkt >= 0)
        close(r->pkt);
    sx_tap_close(r->tap);
}

static void test_frames_tap_to_bridge_and_back(void)
{
    struct bridge_rig r;
    struct virtio_net_hdr_v1 h;
    uint8_t out[200];
    CU_ASSERT_EQUAL_FATAL(rig_up(&r, "vif9.2", 0, false), 0);
    int fd = sx_tap_fd(r.tap, 0);

    /* TAP -> bridge -> veth: a broadcast frame of a local experimental ethertype */
    memset(&h, 0, sizeof(h));
    memcpy(out, &h, sizeof(h));
    size_t n = SX_TAP_VNET_HDR_LEN + eth(out + SX_TAP_VNET_HDR_LEN,
                                         (const uint8_t *)"\xff\xff\xff\xff\xff\xff", mac_vif,
                                         0x88b5);
    for (int i = 0; i < 100; i++)
        out[n++] = (uint8_t)(0xa0 + i);
    CU_ASSERT_EQUAL(write(fd, out, n), (ssize_t)n);
    ssize_t got = read_ethertype(r.pkt, 0, 0x88b5, frame, sizeof(frame));
    CU_ASSERT_EQUAL(got, (ssize_t)(n - SX_TAP_VNET_HDR_LEN));
    if (got > 0)
        CU_ASSERT_EQUAL(memcmp(frame, out + SX_TAP_VNET_HDR_LEN, (size_t)got), 0);

    /* veth -> bridge -> TAP: read with its vnet header in front */
    n = eth(out, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", mac_peer, 0x88b6);
    for (int i = 0; i < 80; i++)
        out[n++] = (uint8_t)i;
    CU_ASSERT_EQUAL(send(r.pkt, out, n, 0), (ssize_t)n);
    got = read_ethertype(fd, SX_TAP_VNET_HDR_LEN, 0x88b6, frame, sizeof(frame));
    CU_ASSERT_EQUAL(got, (ssize_t)(SX_TAP_VNET_HDR_LEN + n));
    if (got > 0) {
        memcpy(&h, frame, sizeof(h));
        CU_ASSERT_EQUAL(h.flags, 0);
        CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
        CU_ASSERT_EQUAL(memcmp(frame + SX_TAP_VNET_HDR_LEN, out, n), 0);
    }
    rig_down(&r);
}

/* The netdev ops table over kind "bridge" (netdev/bridge.c): a multi-queue TAP on the bridge;
 * set_queues leaves only the negotiated queues attached, a tx burst reaches the wire and marks
 * what the world refused, an rx burst takes every waiting frame with its vnet header. */
static void test_netdev_bridge_bursts(void)
{
    struct sx_netdev *nd;
    struct sx_netdev_config c = {.kind = "bridge", .name = "vif9.4", .nqueues = 2,
                                 .mac = mac_vif, .bridge = "xenbr-dp"};
    struct sx_netdev_config bad = c;
    bad.kind = "carrier-pigeon";
    CU_ASSERT_EQUAL(sx_netdev_open(&nd, &bad), -EINVAL);
    bad = c;
    bad.nqueues = 0;
    CU_ASSERT_EQUAL(sx_netdev_open(&nd, &bad), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(sx_netdev_open(&nd, &c), 0);
    struct sx_nl_link l;
    int br = 0;
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.4", &l), 0);
    CU_ASSERT_STRING_EQUAL(l.kind, "tun");
    CU_ASSERT_TRUE(l.tun_vnet_hdr);
    CU_ASSERT_TRUE(l.tun_multi_queue);
    CU_ASSERT_TRUE(l.flags & IFF_UP);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "xenbr-dp", &br), 0);
    CU_ASSERT_EQUAL(l.master, br);
    CU_ASSERT(sx_netdev_poll_fd(nd, 0) >= 0);
    CU_ASSERT(sx_netdev_poll_fd(nd, 1) >= 0);
    CU_ASSERT_EQUAL(sx_netdev_poll_fd(nd, 2), -EINVAL);
    const struct sx_net_peer_caps none = {false, false, false, false};
    CU_ASSERT_EQUAL(sx_netdev_set_offloads(nd, &none), 0);
    CU_ASSERT_EQUAL(sx_netdev_set_queues(nd, 2), 0);
    CU_ASSERT_EQUAL(sx_netdev_set_queues(nd, 1), 0);   /* all frames now come to queue 0 */
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.4", &l), 0);
    CU_ASSERT_EQUAL(l.tun_num_queues, 1);
    struct bridge_rig r = {.pkt = -1};
    CU_ASSERT_EQUAL_FATAL(rig_link(&r, sx_netdev_poll_fd(nd, 0), false), 0);

    /* tx: three frames and one too short for its header in one burst */
    static uint8_t out[4][SX_NETDEV_HDR_LEN + 100];
    struct sx_netdev_buf b[4];
    for (int i = 0; i < 4; i++) {
        memset(out[i], 0, sizeof(out[i]));
        eth(out[i] + SX_NETDEV_HDR_LEN, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", mac_vif,
            0x88b5);
        out[i][SX_NETDEV_HDR_LEN + 14] = (uint8_t)(i + 1);
        b[i] = (struct sx_netdev_buf){out[i], sizeof(out[i])};
    }
    b[2].len = 5;
    CU_ASSERT_EQUAL(sx_netdev_tx_burst(nd, 0, b, 4), 3);
    CU_ASSERT_EQUAL(b[2].len, 0);
    CU_ASSERT_EQUAL(b[3].len, sizeof(out[3]));
    for (int want = 1; want <= 4; want++) {
        if (want == 3)
            continue;
        ssize_t got = read_ethertype(r.pkt, 0, 0x88b5, frame, sizeof(frame));
        CU_ASSERT_EQUAL(got, 100);
        CU_ASSERT_EQUAL(got > 14 ? frame[14] : 0, want);
    }

    /* rx: two frames from the wire, taken in bursts with their (zero) vnet headers */
    int fd = sx_netdev_poll_fd(nd, 0);
    uint8_t in[2][200];
    for (int i = 0; i < 2; i++) {
        size_t n = eth(in[i], (const uint8_t *)"\xff\xff\xff\xff\xff\xff", mac_peer, 0x88b6);
        memset(in[i] + n, 0x40 + i, 60);
        CU_ASSERT_EQUAL(send(r.pkt, in[i], n + 60, 0), (ssize_t)(n + 60));
    }
    static uint8_t rbuf[4][SX_NETDEV_HDR_LEN + 2048];
    int seen = 0;
    for (int tries = 0; tries < 100 && seen < 2; tries++) {
        if (wait_readable(fd, 50) <= 0)
            continue;
        struct sx_netdev_buf rb[4];
        for (int i = 0; i < 4; i++)
            rb[i] = (struct sx_netdev_buf){rbuf[i], 0};
        int n = sx_netdev_rx_burst(nd, 0, rb, 4, sizeof(rbuf[0]));
        CU_ASSERT(n >= 0);
        for (int i = 0; i < n; i++) {
            const uint8_t *f = rb[i].data + SX_NETDEV_HDR_LEN;
            if (rb[i].len != SX_NETDEV_HDR_LEN + 74 || f[12] != 0x88 || f[13] != 0xb6)
                continue;   /* chatter */
            CU_ASSERT_EQUAL(memcmp(f, in[seen], 74), 0);
            CU_ASSERT_EQUAL(rb[i].data[0], 0);   /* no offload flags */
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 2);
    struct sx_netdev_buf rb = {rbuf[0], 0};
    drain(fd);
    CU_ASSERT_EQUAL(sx_netdev_rx_burst(nd, 0, &rb, 1, sizeof(rbuf[0])), 0);   /* none waiting */
    if (r.pkt >= 0)
        close(r.pkt);
    sx_netdev_close(nd);
    CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.4", &l), -ENODEV);
    sx_netdev_close(NULL);
}

/* A TSO super-packet sent on the bridge reaches the TAP whole when TUN_F_TSO4 is on, and as
 * checksummed MSS-sized segments when the offloads are off. */
static void test_gso_kept_or_segmented_by_offload(void)
{
    for (int pass = 0; pass < 2; pass++) {
        bool offload = pass == 0;
        struct bridge_rig r;
        CU_ASSERT_EQUAL_FATAL(rig_up(&r, "vif9.3", offload ? TUN_F_CSUM | TUN_F_TSO4 : 0, true), 0);
        int fd = sx_tap_fd(r.tap, 0);
        static uint8_t out[4000];
        struct virtio_net_hdr vh = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                    .hdr_len = 54, .gso_size = 1000, .csum_start = 34,
                                    .csum_offset = 16};
        memcpy(out, &vh, sizeof(vh));
        /* to the guest behind the vif (the TAP's own MAC would be local to the bridge) */
        size_t flen = ip4_frame(out + sizeof(vh), mac_guest, mac_peer, "192.0.2.1", "192.0.2.2",
                                6, 40000, 5201, 3000);
        CU_ASSERT_EQUAL(send(r.pkt, out, sizeof(vh) + flen, 0), (ssize_t)(sizeof(vh) + flen));

        if (offload) {
            ssize_t got = read_ipv4(fd, SX_TAP_VNET_HDR_LEN, 6, frame, sizeof(frame));
            CU_ASSERT_EQUAL(got, (ssize_t)(SX_TAP_VNET_HDR_LEN + flen));
            struct virtio_net_hdr_v1 h;
            memcpy(&h, frame, sizeof(h));
            CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
            CU_ASSERT_EQUAL(le16toh(h.gso_size), 1000);
            CU_ASSERT(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
            CU_ASSERT_EQUAL(le16toh(h.csum_start), 34);
            CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
            struct sx_net_netif_meta m;
            const struct sx_net_peer_caps caps = {true, true, true, true};
            CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, frame + SX_TAP_VNET_HDR_LEN,
                                                (size_t)got - SX_TAP_VNET_HDR_LEN, &caps, &m), 0);
            CU_ASSERT_TRUE(m.has_gso);
            CU_ASSERT_EQUAL(m.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
            CU_ASSERT_EQUAL(m.gso.u.gso.size, 1000);
            CU_ASSERT(m.rx_flags & NETRXF_csum_blank);
        } else {
            size_t total = 0;
            for (int seg = 0; seg < 3; seg++) {
                ssize_t got = read_ipv4(fd, SX_TAP_VNET_HDR_LEN, 6, frame, sizeof(frame));
                CU_ASSERT_FATAL(got > 0);
                struct virtio_net_hdr_v1 h;
                memcpy(&h, frame, sizeof(h));
                CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
                CU_ASSERT_FALSE(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
                CU_ASSERT_EQUAL(got, (ssize_t)(SX_TAP_VNET_HDR_LEN + 54 + 1000));
                CU_ASSERT_TRUE(l4_csum_ok(frame + SX_TAP_VNET_HDR_LEN,
                                          (size_t)got - SX_TAP_VNET_HDR_LEN));
                total += (size_t)got - SX_TAP_VNET_HDR_LEN - 54;
            }
            CU_ASSERT_EQUAL(total, 3000);
        }
        rig_down(&r);
    }
}

/* ---- batched I/O (sx_tap_io) ---- */

/* An IPv4/UDP frame of len bytes (Ethernet header included) with its full checksums, the
 * payload a pattern seeded by seed. */
static size_t udp_frame(uint8_t *p, size_t len, const uint8_t *dmac, const uint8_t *smac,
                        unsigned seed)
{
    size_t n = ip4_frame(p, dmac, smac, "192.0.2.1", "192.0.2.2", 17, (uint16_t)(1000 + seed),
                         9, len - 42);
    for (size_t i = 42; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, n, 34, 6), 0);   /* complete the partial UDP sum */
    return n;
}

/* Both ways through one TAP queue on the bridge, batched (io_uring) and a system call a frame:
 * a burst of 40 frames of 60..1425 bytes written in one call arrives at the wire whole, in
 * order, checksums good; 40 frames sent from the wire come back through read bursts, in order
 * and whole. Batched, the 40 writes are one system call and the reads a handful, and once a
 * burst emptied the queue rx_ready is false until the next frame arrives. */
static void test_tap_io_bursts_arrive_intact(void)
{
    for (int pass = 0; pass < 2; pass++) {
        bool batched = pass == 0;
        struct bridge_rig r;
        CU_ASSERT_EQUAL_FATAL(rig_up(&r, "vif9.5", 0, false), 0);
        int fd = sx_tap_fd(r.tap, 0);
        struct sx_tap_io *io;
        CU_ASSERT_EQUAL_FATAL(sx_tap_io_open(&io, fd, batched ? 0 : SX_TAP_IO_SYSCALLS), 0);
        if (batched && !sx_tap_io_batched(io)) {
            printf("(no io_uring here: batched pass runs a system call a frame) ");
            batched = false;
        }
        CU_ASSERT_EQUAL(sx_tap_io_batched(io), batched);

        enum { N = 40 };
        static uint8_t out[N][SX_TAP_VNET_HDR_LEN + 1514];
        static struct iovec iov[N][2];
        struct sx_tap_frame f[N];
        size_t len[N];
        for (int i = 0; i < N; i++) {
            memset(out[i], 0, SX_TAP_VNET_HDR_LEN);   /* no offloads: the frame as it is */
            len[i] = udp_frame(out[i] + SX_TAP_VNET_HDR_LEN, 60 + (size_t)i * 35, mac_guest,
                               mac_vif, (unsigned)i);
            /* header and frame in two pieces, as writers with a separate header have them */
            iov[i][0] = (struct iovec){ out[i], SX_TAP_VNET_HDR_LEN };
            iov[i][1] = (struct iovec){ out[i] + SX_TAP_VNET_HDR_LEN, len[i] };
            f[i] = (struct sx_tap_frame){ .iov = iov[i], .niov = 2 };
        }
        uint64_t calls0 = sx_tap_io_stats(io)->calls;
        CU_ASSERT_EQUAL(sx_tap_io_write(io, f, N), N);
        for (int i = 0; i < N; i++)
            CU_ASSERT_EQUAL(f[i].res, (int)(SX_TAP_VNET_HDR_LEN + len[i]));
        CU_ASSERT_EQUAL(sx_tap_io_stats(io)->calls - calls0, batched ? 1u : (unsigned)N);
        CU_ASSERT_EQUAL(sx_tap_io_stats(io)->writes, N);
        for (int i = 0; i < N; i++) {
            ssize_t got = read_ipv4(r.pkt, 0, 17, frame, sizeof(frame));
            CU_ASSERT_EQUAL(got, (ssize_t)len[i]);
            if (got != (ssize_t)len[i])
                break;
            CU_ASSERT_EQUAL(memcmp(frame, out[i] + SX_TAP_VNET_HDR_LEN, len[i]), 0);
            CU_ASSERT_TRUE(l4_csum_ok(frame, len[i]));
        }

        /* wire -> TAP: read bursts of up to 16 */
        static uint8_t in[N][1514];
        for (int i = 0; i < N; i++) {
            /* to the guest behind the vif: the TAP's own MAC is local to the bridge */
            size_t n = udp_frame(in[i], 60 + (size_t)i * 35, mac_guest, mac_peer,
                                 100u + (unsigned)i);
            CU_ASSERT_EQUAL(send(r.pkt, in[i], n, 0), (ssize_t)n);
        }
        static uint8_t rbuf[16][SX_TAP_VNET_HDR_LEN + 2048];
        static struct iovec riov[16];
        int seen = 0;
        uint64_t reads0 = sx_tap_io_stats(io)->calls;
        for (int tries = 0; tries < 200 && seen < N; tries++) {
            if (wait_readable(fd, 50) <= 0)
                continue;
            struct sx_tap_frame rf[16];
            for (int i = 0; i < 16; i++) {
                riov[i] = (struct iovec){ rbuf[i], sizeof(rbuf[i]) };
                rf[i] = (struct sx_tap_frame){ .iov = &riov[i], .niov = 1 };
            }
            int n = sx_tap_io_read(io, rf, 16);
            CU_ASSERT(n >= 0);
            for (int i = 0; i < n; i++) {
                const uint8_t *fr = (const uint8_t *)rf[i].iov->iov_base + SX_TAP_VNET_HDR_LEN;
                size_t fl = (size_t)rf[i].res - SX_TAP_VNET_HDR_LEN;
                if (fl < 42 || fr[12] != 0x08 || fr[23] != 17)
                    continue;   /* chatter */
                size_t want = 60 + (size_t)seen * 35;
                CU_ASSERT_EQUAL(fl, want);
                CU_ASSERT_EQUAL(memcmp(fr, in[seen], want), 0);
                seen++;
            }
        }
        CU_ASSERT_EQUAL(seen, N);
        uint64_t rcalls = sx_tap_io_stats(io)->calls - reads0;
        if (batched)
            CU_ASSERT(rcalls < (uint64_t)N);
        /* nothing waiting: an empty burst, not an error */
        drain(fd);
        struct sx_tap_frame one = { .iov = &riov[0], .niov = 1 };
        riov[0] = (struct iovec){ rbuf[0], sizeof(rbuf[0]) };
        CU_ASSERT_EQUAL(sx_tap_io_read(io, &one, 1), 0);
        if (batched) {
            /* emptied: rx_ready says so without a system call, until a frame comes */
            CU_ASSERT_FALSE(sx_tap_io_rx_ready(io));
            size_t n = udp_frame(in[0], 100, mac_guest, mac_peer, 7);
            CU_ASSERT_EQUAL(send(r.pkt, in[0], n, 0), (ssize_t)n);
            bool ready = false;
            for (int i = 0; i < 2000 && !ready; i++) {
                ready = sx_tap_io_rx_ready(io);
                if (!ready)
                    usleep(1000);
            }
            CU_ASSERT_TRUE(ready);
            int got = 0;
            for (int i = 0; i < 20 && !got; i++)
                got = sx_tap_io_read(io, &one, 1);
            CU_ASSERT_EQUAL(got, 1);
        } else {
            CU_ASSERT_TRUE(sx_tap_io_rx_ready(io));   /* no hint: always worth a read */
        }
        CU_ASSERT_EQUAL(sx_tap_io_write(io, f, SX_TAP_IO_MAX + 1), -EINVAL);
        sx_tap_io_close(io);
        rig_down(&r);
        /* the ring held the queue fd: closing both leaves no device behind */
        struct sx_nl_link l;
        CU_ASSERT_EQUAL(sx_nl_link_get(nl, 0, "vif9.5", &l), -ENODEV);
    }
    sx_tap_io_close(NULL);
}

/* A TCP super-frame written with its GSO vnet header (as netback's tx path writes a guest's
 * GSO packet) leaves the bridge towards a port without TSO, GSO or checksum offload as
 * MSS-sized segments with good checksums and consecutive sequence numbers, the payload whole. */
static void test_tap_io_gso_superframe_segments(void)
{
    if (!have_ethtool()) {
        printf("(no ethtool) ");
        return;
    }
    struct bridge_rig r;
    CU_ASSERT_EQUAL_FATAL(rig_up(&r, "vif9.6", 0, false), 0);
    CU_ASSERT_EQUAL_FATAL(shell_has("ethtool -K sxvb tso off gso off tx off >/dev/null 2>&1",
                                    NULL), 0);
    struct sx_tap_io *io;
    CU_ASSERT_EQUAL_FATAL(sx_tap_io_open(&io, sx_tap_fd(r.tap, 0), 0), 0);
    static uint8_t out[SX_TAP_VNET_HDR_LEN + 4000];
    struct virtio_net_hdr_v1 vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
                                    .gso_size = 1000, .csum_start = 34, .csum_offset = 16 };
    memcpy(out, &vh, sizeof(vh));
    size_t flen = ip4_frame(out + sizeof(vh), mac_guest, mac_vif, "192.0.2.2", "192.0.2.1", 6,
                            40000, 5201, 3000);
    struct iovec iov = { out, sizeof(vh) + flen };
    struct sx_tap_frame f = { .iov = &iov, .niov = 1 };
    CU_ASSERT_EQUAL(sx_tap_io_write(io, &f, 1), 1);
    uint32_t seq0 = 0;
    size_t total = 0;
    for (int seg = 0; seg < 3; seg++) {
        ssize_t got = read_ipv4(r.pkt, 0, 6, frame, sizeof(frame));
        CU_ASSERT_FATAL(got > 0);
        CU_ASSERT_EQUAL(got, 54 + 1000);
        CU_ASSERT_TRUE(l4_csum_ok(frame, (size_t)got));
        uint32_t seq = (uint32_t)frame[38] << 24 | (uint32_t)frame[39] << 16 |
                       (uint32_t)frame[40] << 8 | frame[41];
        if (seg == 0)
            seq0 = seq;
        CU_ASSERT_EQUAL(seq - seq0, (uint32_t)total);
        CU_ASSERT_EQUAL(memcmp(frame + 54, out + sizeof(vh) + 54 + total, 1000), 0);
        total += (size_t)got - 54;
    }
    CU_ASSERT_EQUAL(total, 3000);
    shell_has("ethtool -K sxvb tso on gso on tx on >/dev/null 2>&1", NULL);
    sx_tap_io_close(io);
    rig_down(&r);
}

/* A process killed while its batched I/O handle has a ring (the multishot poll armed, as a
 * netback queue thread's is between bursts) takes its TAP with it: the device is gone once
 * the process is, so a restarted netback can create it again at once. (The kernel tears a
 * dead process's io_uring down later, in a worker: a ring that held the TAP's file, by a
 * poll on it or a registered file, kept the device alive for a while after its process.)
 * Five rounds, each checked the moment waitpid returns. */
static void test_tap_gone_when_its_process_is_killed_with_a_ring(void)
{
    for (int round = 0; round < 5; round++) {
        int pfd[2];
        CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            struct sx_tap_config tc = { .name = "vif9.7", .nqueues = 1, .up = true };
            struct sx_tap *tap;
            struct sx_tap_io *io;
            char ok = 'n';
            if (sx_tap_open(&tc, &tap) == 0 && sx_tap_io_open(&io, sx_tap_fd(tap, 0), 0) == 0) {
                static uint8_t buf[SX_TAP_VNET_HDR_LEN + 1514];
                struct iovec iov = { buf, sizeof(buf) };
                struct sx_tap_frame f = { .iov = &iov, .niov = 1 };
                /* the first burst sets the ring up and arms its poll */
                ok = sx_tap_io_read(io, &f, 1) >= 0 ? (sx_tap_io_batched(io) ? 'b' : 's') : 'n';
            }
            if (write(pfd[1], &ok, 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
        close(pfd[1]);
        char ok = 0;
        CU_ASSERT_EQUAL(read(pfd[0], &ok, 1), 1);
        close(pfd[0]);
        kill(pid, SIGKILL);
        CU_ASSERT_EQUAL(waitpid(pid, NULL, 0), pid);
        struct sx_nl_link l;
        int rc = sx_nl_link_get(nl, 0, "vif9.7", &l);
        CU_ASSERT_NOT_EQUAL(ok, 'n');
        CU_ASSERT_EQUAL(rc, -ENODEV);
        if (ok == 's') {
            printf("(no io_uring here: no ring to outlive) ");
            return;
        }
        if (rc != -ENODEV) {
            fprintf(stderr, "round %d: vif9.7 outlived its process\n", round);
            /* let the kernel's teardown finish before the next test uses the name */
            for (int i = 0; i < 2000 && sx_nl_link_get(nl, 0, "vif9.7", &l) != -ENODEV; i++)
                usleep(1000);
            return;
        }
    }
}

/* ---- namespaces ---- */

static ino_t thread_netns(void)
{
    struct stat st;
    return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

static void test_netns_add_open_del(void)
{
    CU_ASSERT_EQUAL_FATAL(sx_nl_netns_add(ns_a), 0);
    CU_ASSERT_EQUAL(sx_nl_netns_add(ns_a), -EEXIST);
    CU_ASSERT_EQUAL(sx_nl_netns_add("../etc"), -EINVAL);
    /* ip netns sees it and can run in it */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ip netns list");
    CU_ASSERT_EQUAL(shell_has(cmd, ns_a), 0);
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ip link show lo", ns_a);
    CU_ASSERT_EQUAL(shell_has(cmd, "lo:"), 0);
    int fd = sx_nl_netns_open(ns_a), saved;
    CU_ASSERT_FATAL(fd >= 0);
    ino_t before = thread_netns();
    CU_ASSERT_EQUAL(sx_nl_netns_enter(fd, &saved), 0);
    CU_ASSERT_NOT_EQUAL(thread_netns(), before);
    CU_ASSERT_EQUAL(sx_nl_netns_leave(saved), 0);
    CU_ASSERT_EQUAL(thread_netns(), before);
    close(fd);
    CU_ASSERT_EQUAL(sx_nl_netns_open("sx-no-such-ns"), -ENOENT);
}

/* Create in the bridge namespace, move into the guest namespace as eth0, address it. */
static void test_tap_move_into_netns_as_eth0(void)
{
    struct sx_tap *tap;
    struct sx_nl *gnl = NULL;
    struct sx_nl_link l;
    int v, fd = sx_nl_netns_open(ns_a);
    CU_ASSERT_FATAL(fd >= 0);
    struct sx_tap_config cfg = {.name = "sxtmp0", .mac = mac_guest, .offload = TUN_F_CSUM,
                                .up = true};
    CU_ASSERT_EQUAL_FATAL(sx_tap_open(&cfg, &tap), 0);
    int qfd = sx_tap_fd(tap, 0);
    CU_ASSERT_EQUAL(sx_tap_move(tap, fd, "eth0"), 0);
    CU_ASSERT_STRING_EQUAL(sx_tap_name(tap), "eth0");
    CU_ASSERT_EQUAL(sx_tap_fd(tap, 0), qfd); /* the fd survives the move */
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "sxtmp0", &v), -ENODEV);
    CU_ASSERT_EQUAL_FATAL(sx_nl_open_netns(fd, &gnl), 0);
    CU_ASSERT_EQUAL(sx_nl_link_get(gnl, 0, "eth0", &l), 0);
    CU_ASSERT_EQUAL(l.ifindex, sx_tap_ifindex(tap));
    CU_ASSERT_STRING_EQUAL(l.kind, "tun");
    CU_ASSERT_TRUE(l.tun_vnet_hdr);
    CU_ASSERT(l.flags & IFF_UP);
    CU_ASSERT_EQUAL(memcmp(l.mac, mac_guest, 6), 0);
    struct in_addr a;
    inet_pton(AF_INET, "192.0.2.2", &a);
    CU_ASSERT_EQUAL(sx_nl_addr_add_v4(gnl, l.ifindex, a, 24), 0);
    CU_ASSERT_EQUAL(sx_nl_addr_add_v4(gnl, l.ifindex, a, 24), 0); /* idempotent */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ip -4 addr show dev eth0", ns_a);
    CU_ASSERT_EQUAL(shell_has(cmd, "inet 192.0.2.2/24"), 0);
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ip -d link show eth0", ns_a);
    CU_ASSERT_EQUAL(shell_has(cmd, "tun type tap pi off vnet_hdr on"), 0);
    sx_nl_close(gnl);
    sx_tap_close(tap);
    close(fd);
}

/* Create eth0 directly in a second namespace, from this thread, which stays where it is. */
static void test_tap_created_inside_netns(void)
{
    struct sx_tap *tap;
    struct sx_nl *gnl = NULL;
    struct sx_nl_link l;
    int v;
    CU_ASSERT_EQUAL_FATAL(sx_nl_netns_add(ns_b), 0);
    int fd = sx_nl_netns_open(ns_b);
    CU_ASSERT_FATAL(fd >= 0);
    ino_t before = thread_netns();
    struct sx_tap_config cfg = {.name = "eth0", .mac = mac_guest, .nqueues = 2,
                                .offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, .up = true,
                                .use_netns = true, .netns_fd = fd};
    CU_ASSERT_EQUAL_FATAL(sx_tap_open(&cfg, &tap), 0);
    CU_ASSERT_EQUAL(thread_netns(), before);
    CU_ASSERT_EQUAL(sx_nl_ifindex(nl, "eth0", &v), -ENODEV);
    CU_ASSERT_EQUAL_FATAL(sx_nl_open_netns(fd, &gnl), 0);
    CU_ASSERT_EQUAL(sx_nl_link_get(gnl, 0, "eth0", &l), 0);
    CU_ASSERT_EQUAL(l.tun_num_queues, 2);
    CU_ASSERT(l.flags & IFF_UP);
    sx_tap_close(tap);
    CU_ASSERT_EQUAL(sx_nl_ifindex(gnl, "eth0", &v), -ENODEV);
    sx_nl_close(gnl);
    close(fd);
    CU_ASSERT_EQUAL(sx_nl_netns_del(ns_b), 0);
    CU_ASSERT_EQUAL(sx_nl_netns_open(ns_b), -ENOENT);
    CU_ASSERT_EQUAL(sx_nl_netns_del(ns_b), -ENOENT);
}

/* The guest namespace's kernel speaks UDP through eth0; this test is the wire: it answers the
 * ARP request and the datagram, with a partial checksum built by sx_net_tx_vnet_hdr. */
static void test_guest_udp_through_eth0(void)
{
    struct sx_tap *tap;
    struct sx_nl *gnl = NULL;
    int nsfd = sx_nl_netns_open(ns_a), saved, s = -1, gi;
    CU_ASSERT_FATAL(nsfd >= 0);
    struct sx_tap_config cfg = {.name = "eth0", .mac = mac_guest, .offload = TUN_F_CSUM,
                                .up = true, .use_netns = true, .netns_fd = nsfd};
    CU_ASSERT_EQUAL_FATAL(sx_tap_open(&cfg, &tap), 0);
    CU_ASSERT_EQUAL_FATAL(sx_nl_open_netns(nsfd, &gnl), 0);
    struct in_addr a;
    inet_pton(AF_INET, "192.0.2.2", &a);
    CU_ASSERT_EQUAL(sx_nl_ifindex(gnl, "eth0", &gi), 0);
    CU_ASSERT_EQUAL(sx_nl_addr_add_v4(gnl, gi, a, 24), 0);

    /* a socket in the guest namespace */
    CU_ASSERT_EQUAL_FATAL(sx_nl_netns_enter(nsfd, &saved), 0);
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_EQUAL_FATAL(sx_nl_netns_leave(saved), 0);
    CU_ASSERT_FATAL(s >= 0);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(7777)};
    inet_pton(AF_INET, "192.0.2.1", &peer.sin_addr);
    CU_ASSERT_EQUAL(sendto(s, "hello", 5, 0, (struct sockaddr *)&peer, sizeof(peer)), 5);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    CU_ASSERT_EQUAL(getsockname(s, (struct sockaddr *)&me, &ml), 0);

    int fd = sx_tap_fd(tap, 0);
    const size_t H = SX_TAP_VNET_HDR_LEN;
    uint8_t out[256];
    struct virtio_net_hdr_v1 h;

    /* ARP who-has 192.0.2.1 tell 192.0.2.2 */
    ssize_t got = read_ethertype(fd, H, 0x0806, frame, sizeof(frame));
    CU_ASSERT_FATAL(got >= (ssize_t)(H + 42));
    const uint8_t *arp = frame + H + 14;
    CU_ASSERT_EQUAL(arp[7], 1); /* request */
    CU_ASSERT_EQUAL(memcmp(arp + 8, mac_guest, 6), 0);
    CU_ASSERT_EQUAL(memcmp(arp + 24, &peer.sin_addr, 4), 0);
    memset(out, 0, sizeof(out));
    size_t n = H + eth(out + H, mac_guest, mac_peer, 0x0806);
    memcpy(out + n, "\x00\x01\x08\x00\x06\x04\x00\x02", 8);
    memcpy(out + n + 8, mac_peer, 6);
    memcpy(out + n + 14, &peer.sin_addr, 4);
    memcpy(out + n + 18, mac_guest, 6);
    memcpy(out + n + 24, &a, 4);
    n += 28;
    CU_ASSERT_EQUAL(write(fd, out, n), (ssize_t)n);

    /* the datagram, with a partial checksum (TUN_F_CSUM); complete it and check it */
    got = read_ipv4(fd, H, 17, frame, sizeof(frame));
    CU_ASSERT_FATAL(got > (ssize_t)H);
    memcpy(&h, frame, sizeof(h));
    CU_ASSERT(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
    struct sx_net_netif_meta m;
    const struct sx_net_peer_caps nocsum = {false, false, false, false};
    size_t flen = (size_t)got - H;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, frame + H, flen, &nocsum, &m), 0);
    CU_ASSERT_TRUE(m.sw_csum);
    CU_ASSERT_TRUE(l4_csum_ok(frame + H, flen));
    CU_ASSERT_EQUAL(flen, 14 + 20 + 8 + 5);
    CU_ASSERT_EQUAL(memcmp(frame + H + 42, "hello", 5), 0);

    /* the answer, checksum left to the receiver through the vnet header */
    size_t rl = ip4_frame(out + H, mac_guest, mac_peer, "192.0.2.1", "192.0.2.2", 17, 7777,
                          ntohs(me.sin_port), 5);
    memcpy(out + H + 42, "world", 5);
    const struct sx_net_tx_meta t = { .total_len = (unsigned)rl, .csum_blank = true };
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, out + H, rl, &h), 0);
    memcpy(out, &h, H);
    CU_ASSERT_EQUAL(write(fd, out, H + rl), (ssize_t)(H + rl));
    char buf[16] = {0};
    CU_ASSERT_EQUAL(wait_readable(s, 2000), 1);
    CU_ASSERT_EQUAL(recv(s, buf, sizeof(buf), MSG_DONTWAIT), 5);
    CU_ASSERT_STRING_EQUAL(buf, "world");

    close(s);
    sx_nl_close(gnl);
    sx_tap_close(tap);
    close(nsfd);
    CU_ASSERT_EQUAL(sx_nl_netns_del(ns_a), 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_bridge_ensure_creates_then_reuses),
    SX_TEST(test_link_errors_are_errnos),
    SX_TEST(test_tap_on_bridge),
    SX_TEST(test_tap_multi_queue),
    SX_TEST(test_frames_tap_to_bridge_and_back),
    SX_TEST(test_netdev_bridge_bursts),
    SX_TEST(test_gso_kept_or_segmented_by_offload),
    SX_TEST(test_tap_io_bursts_arrive_intact),
    SX_TEST(test_tap_io_gso_superframe_segments),
    SX_TEST(test_tap_gone_when_its_process_is_killed_with_a_ring),
    SX_TEST(test_netns_add_open_del),
    SX_TEST(test_tap_move_into_netns_as_eth0),
    SX_TEST(test_tap_created_inside_netns),
    SX_TEST(test_guest_udp_through_eth0),
};

SX_TEST_MAIN("netdev_tap", cases, suite_init, suite_clean)
