/*
 * splitxen-bench-afpkt: the raw packet-rate baseline of bench/net, and its world-side
 * generator and counter. AF_PACKET with PACKET_MMAP rings: the sender fills a TPACKET_V2 TX
 * ring with N-byte frames (built once, then only marked for sending) and flushes it with one
 * sendto() a round, bypassing the qdisc as a NIC driver's ring would; the counter reads a
 * TPACKET_V3 RX ring a block at a time. The frames are splitxen-pktgen's (same header, tag and
 * pattern), so one tool both drives and counts a path with or without splitxen on it.
 *
 *   splitxen-bench-afpkt tx --if IF --size BYTES --seconds S [--dst MAC] [--src MAC]
 *                        [--threads T] [--tag T] [--count N]
 *   splitxen-bench-afpkt rx --if IF --seconds S [--tag T] [--count N]
 *
 * Prints one JSON line: frames, seconds, Mpps (tx: sent; rx: those of pktgen's shape with the
 * tag). tx with --threads T uses T sockets (one TX ring each) on T threads. --count N: send
 * exactly N frames (then stop; --seconds no longer limits), or stop counting at N.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frontends/pktgen/frame.h"

#define TX_FRAME 4096u       /* TX ring slot (a frame of up to 4096 - header) */
#define TX_FRAMES 1024u
#define RX_BLOCK (1u << 20)
#define RX_BLOCKS 64u
#define MAX_THREADS 16

struct opts {
    bool tx;
    const char *ifname;
    unsigned long size, seconds, threads, tag, count;
    uint8_t dst[6], src[6];
    bool have_src;
};

static atomic_bool stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop, true);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int parse_mac(const char *s, uint8_t *mac)
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

static int packet_socket(const struct opts *o, int *ifindex)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (s < 0) {
        perror("socket(AF_PACKET)");
        return -1;
    }
    *ifindex = (int)if_nametoindex(o->ifname);
    if (!*ifindex) {
        fprintf(stderr, "no interface %s\n", o->ifname);
        close(s);
        return -1;
    }
    return s;
}

/* ---- tx ---- */

struct txw {
    const struct opts *o;
    uint64_t quota;          /* --count: frames this thread sends (0: no limit) */
    pthread_t thr;
    uint64_t frames, t0, t1;
    int err;
};

static void *tx_main(void *arg)
{
    struct txw *w = arg;
    const struct opts *o = w->o;
    int ifindex, v = TPACKET_V2, one = 1;
    int s = packet_socket(o, &ifindex);
    if (s < 0) {
        w->err = 1;
        return NULL;
    }
    struct tpacket_req req = { .tp_block_size = TX_FRAME * 16, .tp_block_nr = TX_FRAMES / 16,
                               .tp_frame_size = TX_FRAME, .tp_frame_nr = TX_FRAMES };
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = ifindex };
    if (setsockopt(s, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
        setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0 ||
        setsockopt(s, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0 ||
        bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror("tx socket setup");
        close(s);
        w->err = 1;
        return NULL;
    }
    size_t maplen = (size_t)req.tp_block_size * req.tp_block_nr;
    uint8_t *ring = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    if (ring == MAP_FAILED) {
        perror("mmap tx ring");
        close(s);
        w->err = 1;
        return NULL;
    }
    const size_t data_off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
    for (unsigned i = 0; i < TX_FRAMES; i++)
        sx_pktgen_frame(ring + (size_t)i * TX_FRAME + data_off, o->size, o->dst, o->src,
                        (uint32_t)o->tag, i);
    unsigned cur = 0;
    w->t0 = now_ns();
    uint64_t end = w->t0 + o->seconds * 1000000000ull;
    while (!atomic_load(&stop)) {
        /* Mark every free slot for sending, then one flush. */
        unsigned marked = 0;
        uint64_t left = w->quota ? w->quota - w->frames : UINT64_MAX;
        if (!left)
            break;
        for (; marked < left;) {
            struct tpacket2_hdr *h = (void *)(ring + (size_t)cur * TX_FRAME);
            uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
            if (st != TP_STATUS_AVAILABLE && st != TP_STATUS_WRONG_FORMAT)
                break;
            if (st == TP_STATUS_WRONG_FORMAT) {
                fprintf(stderr, "tx ring: frame refused (wrong format)\n");
                w->err = 1;
                goto out;
            }
            h->tp_len = (uint32_t)o->size;
            __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
            cur = (cur + 1) % TX_FRAMES;
            if (++marked == TX_FRAMES)
                break;
        }
        if (!marked) {
            /* every slot is still being sent: let the kernel get on with it */
            struct pollfd p = { .fd = s, .events = POLLOUT };
            poll(&p, 1, 10);
        }
        ssize_t r = sendto(s, NULL, 0, 0, NULL, 0);
        if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) {
            perror("sendto");
            w->err = 1;
            break;
        }
        if (r > 0)
            w->frames += (uint64_t)r / o->size;
        if (now_ns() >= end && !w->quota)
            break;
    }
out:
    w->t1 = now_ns();
    munmap(ring, maplen);
    close(s);
    return NULL;
}

static int run_tx(const struct opts *o)
{
    struct txw w[MAX_THREADS];
    memset(w, 0, sizeof(w));
    for (unsigned i = 0; i < o->threads; i++) {
        w[i].o = o;
        if (o->count)
            w[i].quota = o->count / o->threads + (i < o->count % o->threads ? 1 : 0);
        if (pthread_create(&w[i].thr, NULL, tx_main, &w[i]) != 0)
            return 1;
    }
    uint64_t frames = 0, t0 = UINT64_MAX, t1 = 0;
    int err = 0;
    for (unsigned i = 0; i < o->threads; i++) {
        pthread_join(w[i].thr, NULL);
        frames += w[i].frames;
        err |= w[i].err;
        t0 = w[i].t0 && w[i].t0 < t0 ? w[i].t0 : t0;
        t1 = w[i].t1 > t1 ? w[i].t1 : t1;
    }
    double secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    printf("{\"mode\": \"tx\", \"if\": \"%s\", \"size\": %lu, \"threads\": %lu, "
           "\"frames\": %" PRIu64 ", \"seconds\": %.6f, \"mpps\": %.6f}\n",
           o->ifname, o->size, o->threads, frames, secs, secs ? (double)frames / secs / 1e6 : 0);
    return err;
}

/* ---- rx ---- */

static int run_rx(const struct opts *o)
{
    int ifindex, v = TPACKET_V3;
    int s = packet_socket(o, &ifindex);
    if (s < 0)
        return 1;
    struct tpacket_req3 req = { .tp_block_size = RX_BLOCK, .tp_block_nr = RX_BLOCKS,
                                .tp_frame_size = 2048, .tp_frame_nr = RX_BLOCK / 2048 * RX_BLOCKS,
                                .tp_retire_blk_tov = 2 };
    /* IPv4 only (the kernel filters by protocol); the tag picks ours. */
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
                               .sll_ifindex = ifindex };
    if (setsockopt(s, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0 ||
        setsockopt(s, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0 ||
        bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        perror("rx socket setup");
        close(s);
        return 1;
    }
    size_t maplen = (size_t)req.tp_block_size * req.tp_block_nr;
    uint8_t *ring = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    if (ring == MAP_FAILED) {
        perror("mmap rx ring");
        close(s);
        return 1;
    }
    uint64_t frames = 0, other = 0, bytes = 0;
    uint64_t t0 = now_ns(), end = t0 + o->seconds * 1000000000ull;
    unsigned blk = 0;
    const uint32_t tag = (uint32_t)o->tag;
    while (!atomic_load(&stop) && now_ns() < end && !(o->count && frames >= o->count)) {
        struct tpacket_block_desc *bd = (void *)(ring + (size_t)blk * RX_BLOCK);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            struct pollfd p = { .fd = s, .events = POLLIN | POLLERR };
            poll(&p, 1, 50);
            continue;
        }
        struct tpacket3_hdr *h = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
        for (uint32_t i = 0; i < bd->hdr.bh1.num_pkts; i++) {
            if (sx_pktgen_frame_ours((const uint8_t *)h + h->tp_mac, h->tp_snaplen, tag)) {
                frames++;
                bytes += h->tp_len;
            } else {
                other++;
            }
            h = (void *)((uint8_t *)h + h->tp_next_offset);
        }
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        blk = (blk + 1) % RX_BLOCKS;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    struct tpacket_stats_v3 st;
    socklen_t sl = sizeof(st);
    memset(&st, 0, sizeof(st));
    getsockopt(s, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
    printf("{\"mode\": \"rx\", \"if\": \"%s\", \"frames\": %" PRIu64 ", \"bytes\": %" PRIu64
           ", \"other\": %" PRIu64 ", \"seconds\": %.6f, \"mpps\": %.6f, \"ring_drops\": %u}\n",
           o->ifname, frames, bytes, other, secs, secs ? (double)frames / secs / 1e6 : 0,
           st.tp_drops);
    munmap(ring, maplen);
    close(s);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: splitxen-bench-afpkt tx|rx --if IF [--size BYTES] [--seconds S]\n"
               "         [--dst MAC] [--src MAC] [--threads T] [--tag T] [--count N]\n");
}

int main(int argc, char **argv)
{
    struct opts o = { .size = 64, .seconds = 5, .threads = 1, .tag = 0x5a5a0001,
                      .dst = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
                      .src = { 0x02, 0, 0, 0, 0, 1 } };
    if (argc < 2 || (strcmp(argv[1], "tx") && strcmp(argv[1], "rx"))) {
        usage(stderr);
        return 2;
    }
    o.tx = !strcmp(argv[1], "tx");
    static const struct option lo[] = {
        { "if", required_argument, NULL, 'i' },      { "size", required_argument, NULL, 's' },
        { "seconds", required_argument, NULL, 'S' }, { "dst", required_argument, NULL, 'd' },
        { "src", required_argument, NULL, 'r' },     { "threads", required_argument, NULL, 't' },
        { "tag", required_argument, NULL, 'g' },    { "count", required_argument, NULL, 'n' },
        { 0 },
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        bool bad = false;
        switch (c) {
        case 'i': o.ifname = optarg; break;
        case 's':
            o.size = strtoul(optarg, &end, 0);
            bad = *end || o.size < SX_PKTGEN_MIN || o.size > 4000;
            break;
        case 'S': o.seconds = strtoul(optarg, &end, 0); bad = *end || !o.seconds; break;
        case 'd': bad = parse_mac(optarg, o.dst) < 0; break;
        case 'r': bad = parse_mac(optarg, o.src) < 0; break;
        case 't':
            o.threads = strtoul(optarg, &end, 0);
            bad = *end || !o.threads || o.threads > MAX_THREADS;
            break;
        case 'g': o.tag = strtoul(optarg, &end, 0); bad = *end || o.tag > 0xffffffffu; break;
        case 'n': o.count = strtoul(optarg, &end, 0); bad = *end || !o.count; break;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "splitxen-bench-afpkt: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (!o.ifname || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return o.tx ? run_tx(&o) : run_rx(&o);
}
