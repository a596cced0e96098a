/*
 * splitxen-pktgen: a packet generator and counter acting as a guest's netfront, with no guest
 * kernel in the way. Acting as domain N, it connects vif N.<devid> with sxnetfront and, per
 * queue, one thread that
 *   --tx  keeps the tx ring full of N-byte frames (built once in the granted pages, each send
 *         only a request: the ring takes frames as fast as the backend answers them), and/or
 *   --rx  counts the frames of its shape and tag that arrive on the rx ring (read where the
 *         backend put them, pages reposted a burst at a time),
 * for the given time (or, with --count N, until N frames were sent and answered, or counted),
 * then prints what moved (one line, or JSON with --json).
 *
 *   splitxen-pktgen --domid N [--devid D] [--queues Q] [--size BYTES] [--seconds S]
 *                   [--tx] [--rx] [--dst MAC] [--tag T] [--count N] [--json]
 *                   [--timeout S] [--platform sim|xen] [--core SOCK]
 *   splitxen-pktgen --help | --version
 *
 * Frames (frame.h, the same as bench/net's splitxen-bench-afpkt): IPv4/UDP between
 * documentation addresses, Ethernet dst --dst (default broadcast), src the vif's MAC, the
 * 32-bit --tag, --size bytes (Ethernet header included, no FCS; 60 .. 4096). The rx count
 * takes only frames of that shape with that tag. Without --tx or --rx, both.
 *
 * Exit: 0 when done, 1 on failure, 2 usage.
 */
#define SX_LOG_MODULE "pktgen"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <xen/io/netif.h>

#include "clock.h"
#include "frontends/netfront/netfront.h"
#include "frontends/pktgen/frame.h"
#include "log.h"
#include "parse.h"
#include "ring/ring.h"
#include "version.h"

#define PG_BURST 64u              /* frames queued (or counted) per round */

struct pg_opts {
    unsigned long domid, devid, queues, size, seconds, timeout_s, tag, count;
    uint8_t dst[6];
    bool tx, rx, json;
    const char *platname, *core;
};

struct pg_worker {
    unsigned q;
    pthread_t thr;
    bool started;
    struct sx_netfront *f;
    const struct pg_opts *o;
    int stop_fd;
    int err;
    uint64_t tx_frames, rx_frames, rx_bytes, rx_other, sleeps;
    uint64_t tx_quota;            /* --count: frames this queue sends (0: no limit) */
    uint64_t t0, t1;              /* ns: when the queue started and stopped moving frames */
};

static atomic_bool stop_all;
static atomic_uint_fast64_t rx_total;   /* frames counted by every queue (--count) */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_all, true);
}

/* Fill every free tx page with the frame, once: a page comes back from the backend unchanged
 * (it reads it only), so each later send is a ring request and nothing else. */
static int prime_pages(struct pg_worker *w)
{
    struct sx_netfront_page pg[256];
    int n = sx_netfront_tx_get(w->f, w->q, pg, 256);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        sx_pktgen_frame(pg[i].addr, w->o->size, w->o->dst, sx_netfront_info(w->f)->mac,
                        (uint32_t)w->o->tag, (unsigned)i);
    sx_netfront_tx_put(w->f, w->q, pg, (unsigned)n);
    return 0;
}

/* Queue frames until the ring is full or a burst is done. Returns frames queued, -EAGAIN when
 * none could be (ring full: the tx event is armed), -EPROTO. */
static int tx_round(struct pg_worker *w)
{
    struct sx_netfront_page pg[PG_BURST];
    unsigned want = PG_BURST;
    if (w->tx_quota && w->tx_quota - w->tx_frames < want)
        want = (unsigned)(w->tx_quota - w->tx_frames);
    if (!want)
        return sx_netfront_tx_reap(w->f, w->q) < 0 ? -EPROTO : 0;
    int n = sx_netfront_tx_get(w->f, w->q, pg, want);
    if (n < 0)
        return n;
    int sent = 0, rc = 0;
    for (; sent < n; sent++) {
        rc = sx_netfront_send_pages(w->f, w->q, &pg[sent], 1, w->o->size, NULL,
                                    SX_NETFRONT_SEND_MORE);
        if (rc < 0)
            break;
    }
    sx_netfront_tx_put(w->f, w->q, pg + sent, (unsigned)(n - sent));
    if (rc == -EPROTO || sx_netfront_tx_push(w->f, w->q) < 0)
        return -EPROTO;
    w->tx_frames += (uint64_t)sent;
    if (sent)
        return sent;
    /* Nothing free or no ring room: ask for the event that frees more. */
    rc = rc == -EAGAIN ? 0 : sx_netfront_tx_arm(w->f, w->q);
    return rc < 0 ? rc : rc > 0 ? 0 : -EAGAIN;
}

/* Count a burst of received frames where they lie. Returns frames seen, or -EPROTO. */
static int rx_round(struct pg_worker *w)
{
    const uint32_t tag = (uint32_t)w->o->tag;
    int seen = 0, rc = 0;
    while (seen < (int)PG_BURST) {
        struct sx_netfront_rxframe fr;
        rc = sx_netfront_recv_peek(w->f, w->q, &fr);
        if (rc < 0)
            break;
        seen++;
        if (w->o->rx && sx_pktgen_frame_ours(fr.seg[0].iov_base, fr.seg[0].iov_len, tag)) {
            w->rx_frames++;
            w->rx_bytes += fr.len;
            atomic_fetch_add_explicit(&rx_total, 1, memory_order_relaxed);
        } else {
            w->rx_other++;
        }
    }
    if (seen && sx_netfront_recv_release(w->f, w->q) < 0)
        return -EPROTO;
    return rc == -EAGAIN || rc >= 0 ? seen : rc;
}

static void *worker_main(void *arg)
{
    struct pg_worker *w = arg;
    const struct pg_opts *o = w->o;
    if (o->tx && (w->err = prime_pages(w)) < 0)
        return NULL;
    w->t0 = sx_now_ns();
    const uint64_t end = w->t0 + o->seconds * 1000000000ull;
    bool tx_blocked = false;
    for (unsigned round = 0;; round++) {
        if ((round & 63) == 0 && (sx_now_ns() >= end || atomic_load(&stop_all)))
            break;
        /* --count: done once every frame was sent and answered, or counted */
        if (o->count && (!o->tx || (w->tx_frames == w->tx_quota &&
                                    sx_netfront_tx_inflight(w->f, w->q) == 0)) &&
            (!o->rx || atomic_load(&rx_total) >= o->count))
            break;
        int tx = 0, rx = 0;
        if (o->tx) {
            tx = tx_round(w);
            tx_blocked = tx == -EAGAIN;
            if (tx == -EAGAIN)
                tx = 0;
        }
        /* Without --rx, arriving frames are still taken off the ring (counted as other). */
        rx = rx_round(w);
        if (tx < 0 || rx < 0) {
            w->err = tx < 0 ? tx : rx;
            break;
        }
        bool work = tx > 0 || rx > 0;
        if (sx_netfront_spin(w->f, w->q, work) || work)
            continue;
        if (!tx_blocked && o->tx)
            continue;   /* a full ring that emptied meanwhile: fill it again at once */
        sx_netfront_events(w->f, w->q);
        if (sx_netfront_has_work(w->f, w->q))
            continue;
        struct pollfd p[2] = { { .fd = sx_netfront_fd(w->f, w->q), .events = POLLIN },
                               { .fd = w->stop_fd, .events = POLLIN } };
        w->sleeps++;
        uint64_t now = sx_now_ns();
        int ms = now >= end ? 0 : (int)((end - now) / 1000000u) + 1;
        if (sx_netfront_sleep(w->f, w->q, p, 2, ms > 100 ? 100 : ms) < 0)
            break;
    }
    w->t1 = sx_now_ns();
    return NULL;
}

static int parse_mac(const char *s, uint8_t *mac)
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -EINVAL;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: splitxen-pktgen --domid N [--devid D] [--queues Q] [--size BYTES]\n"
            "         [--seconds S] [--tx] [--rx] [--dst MAC] [--tag T] [--count N]\n"
            "         [--json] [--timeout S] [--platform sim|xen] [--core SOCK]\n"
            "       splitxen-pktgen --help | --version\n"
            "Acts as guest domain N on its vif D: --tx keeps the tx ring full of BYTES-byte\n"
            "frames (60..4096, default 64), --rx counts the frames that arrive (both without\n"
            "either), for S seconds (default 5); then prints frames and rates.\n");
}

static int parse_args(int argc, char **argv, struct pg_opts *o)
{
    *o = (struct pg_opts){ .domid = ~0ul, .queues = 1, .size = 64, .seconds = 5,
                           .timeout_s = 30, .tag = 0x5a5a0001,
                           .dst = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, .platname = "sim" };
    static const struct option lo[] = {
        { "domid", required_argument, NULL, 'd' },   { "devid", required_argument, NULL, 'v' },
        { "queues", required_argument, NULL, 'q' },  { "size", required_argument, NULL, 's' },
        { "seconds", required_argument, NULL, 'S' }, { "tx", no_argument, NULL, 'T' },
        { "rx", no_argument, NULL, 'R' },            { "dst", required_argument, NULL, 'D' },
        { "tag", required_argument, NULL, 'g' },
        { "json", no_argument, NULL, 'j' },          { "timeout", required_argument, NULL, 't' },
        { "platform", required_argument, NULL, 'p' }, { "core", required_argument, NULL, 'c' },
        { "count", required_argument, NULL, 'n' },  { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': bad = sx_parse_ulong(optarg, DOMID_FIRST_RESERVED - 1, &o->domid); break;
        case 'v': bad = sx_parse_ulong(optarg, 65535, &o->devid); break;
        case 'q':
            bad = sx_parse_ulong(optarg, SX_NETFRONT_MAX_QUEUES, &o->queues) || !o->queues;
            break;
        case 's':
            bad = sx_parse_ulong(optarg, SX_NETFRONT_PAGE_SIZE, &o->size) ||
                  o->size < SX_PKTGEN_MIN;
            break;
        case 'S': bad = sx_parse_ulong(optarg, 86400, &o->seconds) || !o->seconds; break;
        case 'T': o->tx = true; break;
        case 'R': o->rx = true; break;
        case 'D': bad = parse_mac(optarg, o->dst); break;
        case 'g': bad = sx_parse_ulong(optarg, 0xffffffffu, &o->tag); break;
        case 'j': o->json = true; break;
        case 'n': bad = sx_parse_ulong(optarg, ~0ul, &o->count) || !o->count; break;
        case 't': bad = sx_parse_ulong(optarg, 3600, &o->timeout_s); break;
        case 'p': o->platname = optarg; break;
        case 'c': o->core = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': return sx_print_version("splitxen-pktgen");
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "splitxen-pktgen: bad value '%s' for %s\n", optarg, argv[optind - 1]);
            return 2;
        }
    }
    if (o->domid == ~0ul || o->domid == 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!o->tx && !o->rx)
        o->tx = o->rx = true;
    return -1;
}

static void report(const struct pg_opts *o, struct sx_netfront *f, const struct pg_worker *w,
                   unsigned nq)
{
    const struct sx_netfront_info *in = sx_netfront_info(f);
    uint64_t tx = 0, rx = 0, rxb = 0, other = 0, sleeps = 0, t0 = UINT64_MAX, t1 = 0;
    for (unsigned q = 0; q < nq; q++) {
        tx += w[q].tx_frames;
        rx += w[q].rx_frames;
        rxb += w[q].rx_bytes;
        other += w[q].rx_other;
        sleeps += w[q].sleeps;
        t0 = w[q].t0 < t0 ? w[q].t0 : t0;
        t1 = w[q].t1 > t1 ? w[q].t1 : t1;
    }
    double secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    struct sx_netfront_stats st;
    memset(&st, 0, sizeof(st));
    sx_netfront_stats(f, ~0u, &st);
    if (o->json) {
        printf("{\"domid\": %lu, \"devid\": %lu, \"queues\": %u, \"size\": %lu, "
               "\"seconds\": %.6f, \"tx_frames\": %" PRIu64 ", \"rx_frames\": %" PRIu64
               ", \"rx_bytes\": %" PRIu64 ", \"rx_other\": %" PRIu64 ", \"tx_mpps\": %.6f, "
               "\"rx_mpps\": %.6f, \"sleeps\": %" PRIu64 ", \"tx_notifies\": %" PRIu64
               ", \"rx_notifies\": %" PRIu64 ", \"events\": %" PRIu64 ", \"tx_full\": %" PRIu64
               ", \"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\"}\n",
               o->domid, o->devid, nq, o->size, secs, tx, rx, rxb, other,
               secs ? (double)tx / secs / 1e6 : 0, secs ? (double)rx / secs / 1e6 : 0, sleeps,
               st.tx_notifies, st.rx_notifies, st.events, st.tx_full, in->mac[0], in->mac[1],
               in->mac[2], in->mac[3], in->mac[4], in->mac[5]);
    } else {
        printf("splitxen-pktgen: vif %lu.%lu, %u queue(s), %lu-byte frames, %.2f s: "
               "tx %" PRIu64 " (%.3f Mpps), rx %" PRIu64 " (%.3f Mpps), other rx %" PRIu64 "\n",
               o->domid, o->devid, nq, o->size, secs, tx, secs ? (double)tx / secs / 1e6 : 0, rx,
               secs ? (double)rx / secs / 1e6 : 0, other);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct pg_opts o;
    int status = parse_args(argc, argv, &o);
    if (status >= 0)
        return status;
    int kind = sx_plat_kind_from_name(o.platname);
    if (kind < 0) {
        fprintf(stderr, "splitxen-pktgen: unknown platform '%s'\n", o.platname);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct sx_plat *plat = NULL;
    struct sx_netfront *f = NULL;
    struct pg_worker w[SX_NETFRONT_MAX_QUEUES];
    memset(w, 0, sizeof(w));
    unsigned nq = 0;
    int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    status = 1;
    /* No GSO on rx: every frame arrives as it was sent (what is counted is what moved). */
    struct sx_netfront_opts fo = { .devid = (unsigned)o.devid, .max_queues = (unsigned)o.queues,
                                   .no_gso = true, .timeout_ms = (int)o.timeout_s * 1000,
                                   .spin_ns = sx_ring_spin_ns() };
    int rc = stop_fd < 0 ? -errno : sx_plat_open(&plat, (enum sx_plat_kind)kind,
                                                  (domid_t)o.domid, o.core);
    if (rc < 0) {
        sx_err("cannot act as domain %lu: %s", o.domid, strerror(-rc));
        goto out;
    }
    if ((rc = sx_netfront_open(&f, plat, &fo)) < 0 ||
        (rc = sx_netfront_wait_connected(f, fo.timeout_ms)) < 0) {
        sx_err("vif %lu.%lu: %s", o.domid, o.devid, strerror(-rc));
        goto out;
    }
    nq = sx_netfront_info(f)->nqueues;
    fprintf(stderr, "splitxen-pktgen: vif %lu.%lu connected, %u queue(s)\n", o.domid, o.devid,
            nq);
    for (unsigned q = 0; q < nq; q++) {
        w[q] = (struct pg_worker){ .q = q, .f = f, .o = &o, .stop_fd = stop_fd };
        if (o.count)   /* the frames to send, split over the queues */
            w[q].tx_quota = o.count / nq + (q < o.count % nq ? 1 : 0);
        if ((rc = pthread_create(&w[q].thr, NULL, worker_main, &w[q])) != 0) {
            sx_err("queue %u: pthread_create: %s", q, strerror(rc));
            atomic_store(&stop_all, true);
            break;
        }
        w[q].started = true;
    }
    status = 0;
    for (unsigned q = 0; q < nq; q++) {
        if (w[q].started)
            pthread_join(w[q].thr, NULL);
        if (!w[q].started || w[q].err) {
            sx_err("queue %u: %s", q, w[q].err ? strerror(-w[q].err) : "not started");
            status = 1;
        }
    }
    report(&o, f, w, nq);
out:
    sx_netfront_close(f);
    sx_plat_close(plat);
    if (stop_fd >= 0)
        close(stop_fd);
    return status;
}
