/*
 * splitxen-tapfront: a guest's network interface as a TAP. Acting as guest domain N, it
 * connects vif N.<devid> with sxnetfront and gives a network namespace an eth0 (the vif's MAC,
 * the given IPv4 address) whose frames travel over the netif rings, with GSO/TSO and partial
 * checksums carried whole through IFF_VNET_HDR. One thread per queue moves TAP queue q <->
 * netif queue q as a guest kernel's netfront would, without copies of its own: a burst of TAP
 * reads lands straight in the granted tx pages (one io_uring submission, netdev/tap.h's
 * sx_tap_io), one publish; a burst of received frames goes to the TAP straight from the rx
 * pages (one more submission), then the pages are reposted; then an adaptive spin on the rings
 * before sleeping in poll. The main thread handles signals and the backend's state.
 *
 *   splitxen-tapfront --domid N --devid 0 --netns NAME --ip 192.0.2.2/24 [--queues Q]
 *                     [--mtu 1500] [--stats] [--no-sg] [--no-gso] [--no-csum]
 *                     [--single-evtchn] [--tap-io batched|per-frame] [--timeout S]
 *                     [--platform sim|xen] [--core SOCK]
 *
 * Runs until SIGTERM/SIGINT (or the backend closes); then removes eth0, deletes the namespace
 * if it created it, and disconnects (Closing/Closed). SIGUSR1 prints counters; --stats prints
 * them at exit too.
 *
 * On sim the process is part of its guest's kernel (frontends/control): when the toolstack
 * suspends the guest (save, migration) the queue threads stop, the TAP stays (frames the
 * namespace sends meanwhile wait in its queue), and after a move the vif reconnects on the new
 * host, the threads start again, and a gratuitous ARP tells the network where the guest's
 * address went (as Linux's netfront does on resume).
 */
#define SX_LOG_MODULE "tapfront"
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <xen/io/netif.h>
#include <xen/io/xenbus.h>

#include "frontends/control/control.h"
#include "frontends/netfront/netfront.h"
#include "log.h"
#include "parse.h"
#include "netdev/nl.h"
#include "netdev/tap.h"
#include "ring/ring.h"
#include "version.h"

#define TX_READS 32      /* frames one TAP read burst may take (pages permitting) */
#define RX_BATCH 32      /* frames one TAP write burst carries */
#define MAXP SX_NETFRONT_MAX_PAGES
#define TXIOV (1 + MAXP)
#define RXIOV (1 + SX_NETFRONT_RX_MAX_SEGS)

/* A frame read from the TAP into tx pages that the ring could not take yet. */
struct txframe {
    struct sx_netfront_page pg[MAXP];
    unsigned npages;
    size_t len;
    struct sx_netfront_meta meta;
};

struct worker {
    unsigned q;
    pthread_t thread;
    bool started;
    struct sx_netfront *f;
    struct sx_tap_io *io;                  /* batched reads and writes on tap_fd */
    int tap_fd, nf_fd, stop_fd, dead_fd;   /* dead_fd: told when this worker gives up */
    unsigned maxp;                         /* tx pages the largest frame the TAP gives takes */
    bool sw_csum_multi;                    /* a multi-page frame's partial checksum may need
                                              completing here (the backend cannot take all) */
    uint8_t *bounce;                       /* 64 KiB: such a frame made contiguous */
    /* TAP -> netif: each read lands in tx pages (no copy); frames the ring had no room for
     * wait in `held` (in order) */
    struct virtio_net_hdr_v1 txvh[TX_READS];
    struct iovec txiov[TX_READS][TXIOV];
    struct sx_netfront_page txpg[TX_READS][MAXP];
    struct sx_tap_frame txf[TX_READS];
    struct txframe held[TX_READS];
    unsigned nheld;
    /* netif -> TAP: frames written from the rx pages (no copy) */
    struct sx_netfront_rxframe rxfr[RX_BATCH];
    struct virtio_net_hdr_v1 rxvh[RX_BATCH];
    struct iovec rxiov[RX_BATCH][RXIOV];
    struct sx_tap_frame rxf[RX_BATCH];
    /* tapfront's own counters (the ring counters are netfront's) */
    _Atomic uint64_t tap_reads, tap_writes, tap_write_drops, tx_drops, rx_drops, sleeps, spins_hit;
};

static struct {
    struct sx_netfront *f;
    unsigned nq;
    struct worker w[SX_NETFRONT_MAX_QUEUES];
} g;

static void print_stats(FILE *out)
{
    struct sx_netfront_stats s;
    for (unsigned q = 0; q < g.nq; q++) {
        if (sx_netfront_stats(g.f, q, &s) < 0)
            continue;
        struct worker *w = &g.w[q];
        const struct sx_tap_io_stats *io = w->io ? sx_tap_io_stats(w->io) : NULL;
        fprintf(out,
                "queue %u: tx_pkts=%lu tx_bytes=%lu tx_slots=%lu tx_gso=%lu tx_csum_blank=%lu "
                "tx_full=%lu tx_rsp_errors=%lu tx_bad_rsp=%lu tx_notifies=%lu "
                "rx_pkts=%lu rx_bytes=%lu rx_slots=%lu rx_gso=%lu rx_csum_blank=%lu "
                "rx_rsp_errors=%lu rx_bad=%lu rx_oversize=%lu rx_notifies=%lu events=%lu "
                "tap_reads=%lu tap_writes=%lu tap_write_drops=%lu tx_drops=%lu rx_drops=%lu "
                "sleeps=%lu spin_hits=%lu tap_calls=%lu tap_empty_reads=%lu\n",
                q, s.tx_pkts, s.tx_bytes, s.tx_slots, s.tx_gso, s.tx_csum_blank, s.tx_full,
                s.tx_rsp_errors, s.tx_bad_rsp, s.tx_notifies, s.rx_pkts, s.rx_bytes, s.rx_slots,
                s.rx_gso, s.rx_csum_blank, s.rx_rsp_errors, s.rx_bad, s.rx_oversize,
                s.rx_notifies, s.events, (unsigned long)w->tap_reads,
                (unsigned long)w->tap_writes, (unsigned long)w->tap_write_drops,
                (unsigned long)w->tx_drops, (unsigned long)w->rx_drops,
                (unsigned long)w->sleeps, (unsigned long)w->spins_hit,
                (unsigned long)(io ? io->calls : 0), (unsigned long)(io ? io->empty_reads : 0));
    }
    fflush(out);
}

/* The netif offload metadata of a frame read into pages pg[0..np) with header vh. A partial
 * checksum the backend cannot take is completed here, over a contiguous copy when the frame
 * spans pages. 0 or -errno (drop the frame). */
static int tx_meta(struct worker *w, const struct virtio_net_hdr_v1 *vh,
                   const struct sx_netfront_page *pg, unsigned np, size_t len,
                   struct sx_netfront_meta *meta)
{
    if (np == 1)
        return sx_netfront_meta_from_vnet(w->f, vh, pg[0].addr, len, meta);
    if (!(w->sw_csum_multi && (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)))
        /* Only the headers are looked at: they lie in the first page. */
        return sx_netfront_meta_from_vnet(w->f, vh, pg[0].addr, SX_NETFRONT_PAGE_SIZE, meta);
    for (unsigned k = 0; k < np; k++)
        memcpy(w->bounce + (size_t)k * SX_NETFRONT_PAGE_SIZE, pg[k].addr,
               k + 1 < np ? SX_NETFRONT_PAGE_SIZE : len - (size_t)k * SX_NETFRONT_PAGE_SIZE);
    int rc = sx_netfront_meta_from_vnet(w->f, vh, w->bounce, len, meta);
    for (unsigned k = 0; rc == 0 && k < np; k++)
        memcpy(pg[k].addr, w->bounce + (size_t)k * SX_NETFRONT_PAGE_SIZE,
               k + 1 < np ? SX_NETFRONT_PAGE_SIZE : len - (size_t)k * SX_NETFRONT_PAGE_SIZE);
    return rc;
}

/* Queue the held frames in order. Returns frames queued, or -EAGAIN when the ring is full
 * (the rest stay held, the tx event armed), or -EPROTO. */
static int send_held(struct worker *w)
{
    unsigned k = 0;
    int rc = 0;
    for (; k < w->nheld; k++) {
        struct txframe *t = &w->held[k];
        rc = sx_netfront_send_pages(w->f, w->q, t->pg, t->npages, t->len, &t->meta,
                                    SX_NETFRONT_SEND_MORE);
        if (rc == -EAGAIN)
            break;
        if (rc < 0) {
            sx_netfront_tx_put(w->f, w->q, t->pg, t->npages);
            w->tx_drops++;
            if (rc == -EPROTO)
                return rc;
        }
    }
    memmove(w->held, w->held + k, (w->nheld - k) * sizeof(w->held[0]));
    w->nheld -= k;
    return w->nheld ? -EAGAIN : (int)k;
}

/* Take free tx pages for as many reads as fit whole largest frames (w->maxp pages each) into
 * w->txpg/txiov/txf. Returns the number of reads (> 0), -EAGAIN when too few pages are free
 * (every page in flight: the tx event is armed for the responses that free them), or
 * -EPROTO. */
static int tx_reserve(struct worker *w)
{
    struct sx_netfront_page pg[TX_READS * MAXP];
    unsigned nreads = 0;
    for (int tries = 0; tries < 2 && !nreads; tries++) {
        int got = sx_netfront_tx_get(w->f, w->q, pg, TX_READS * w->maxp);
        if (got < 0)
            return got;
        nreads = (unsigned)got / w->maxp;
        sx_netfront_tx_put(w->f, w->q, pg + nreads * w->maxp, (unsigned)got - nreads * w->maxp);
        int rc = nreads ? 0 : sx_netfront_tx_arm(w->f, w->q);
        if (rc < 0)
            return rc;
        if (!nreads && rc == 0)
            return -EAGAIN;   /* armed: sleep for the responses */
    }
    if (!nreads)
        return -EAGAIN;
    for (unsigned i = 0; i < nreads; i++) {
        w->txiov[i][0] = (struct iovec){ &w->txvh[i], SX_TAP_VNET_HDR_LEN };
        for (unsigned k = 0; k < w->maxp; k++) {
            w->txpg[i][k] = pg[i * w->maxp + k];
            w->txiov[i][1 + k] = (struct iovec){ w->txpg[i][k].addr, SX_NETFRONT_PAGE_SIZE };
        }
        w->txf[i] = (struct sx_tap_frame){ .iov = w->txiov[i], .niov = 1 + w->maxp };
    }
    return (int)nreads;
}

/* One read burst into the reserved pages: each frame read keeps the pages it filled and
 * joins `held` with its netif metadata; every other page goes back. Returns frames read. */
static int tx_read(struct worker *w, unsigned nreads)
{
    int n = sx_tap_io_read(w->io, w->txf, nreads);
    if (n < 0)
        sx_log_ratelimited(SX_LOG_WARN, "queue %u: TAP read: %s", w->q, strerror(-n));
    /* Frames in arrival order; a burst may have exchanged the reads' slots (tap.h). */
    bool used[TX_READS] = { false };
    int got = 0;
    for (int j = 0; j < n; j++) {
        unsigned i = (unsigned)(w->txf[j].iov - w->txiov[0]) / TXIOV;
        used[i] = true;
        w->tap_reads++;
        struct sx_netfront_page *fp = w->txpg[i];
        size_t len = w->txf[j].res > (int)SX_TAP_VNET_HDR_LEN
                         ? (size_t)w->txf[j].res - SX_TAP_VNET_HDR_LEN : 0;
        unsigned np = (unsigned)((len + SX_NETFRONT_PAGE_SIZE - 1) / SX_NETFRONT_PAGE_SIZE);
        struct txframe *t = &w->held[w->nheld];
        if (len == 0 || tx_meta(w, &w->txvh[i], fp, np, len, &t->meta) < 0) {
            w->tx_drops++;
            sx_netfront_tx_put(w->f, w->q, fp, w->maxp);
            continue;
        }
        sx_netfront_tx_put(w->f, w->q, fp + np, w->maxp - np);
        memcpy(t->pg, fp, np * sizeof(*fp));
        t->npages = np;
        t->len = len;
        w->nheld++;
        got++;
    }
    for (unsigned i = 0; i < nreads; i++)
        if (!used[i])
            sx_netfront_tx_put(w->f, w->q, w->txpg[i], w->maxp);
    return got;
}

/* TAP -> netif: frames read straight into tx pages, a burst at a time, and queued without a
 * copy (held frames first, in order). Returns frames handled; *blocked when the tx ring is
 * full or every page in flight (the tx event is armed; frames read wait in held). */
static int pump_tx(struct worker *w, bool *blocked)
{
    int work = 0, rc = 0;
    *blocked = false;
    if (w->nheld && (rc = send_held(w)) > 0)
        work += rc;
    /* Read only when nothing is held back and frames came since the TAP was last emptied
     * (known without a system call). */
    if (rc >= 0 && sx_tap_io_rx_ready(w->io)) {
        rc = tx_reserve(w);
        if (rc > 0) {
            work += tx_read(w, (unsigned)rc);
            rc = w->nheld ? send_held(w) : 0;
        }
    }
    if (rc == -EPROTO)
        return rc;
    *blocked = rc == -EAGAIN;
    rc = sx_netfront_tx_push(w->f, w->q);
    if (rc < 0)
        return rc;
    rc = sx_netfront_tx_reap(w->f, w->q);
    return rc < 0 ? rc : work;
}

/* netif -> TAP: a burst of frames written from the rx pages where the backend put them, then
 * the pages handed back. Returns frames handled. */
static int pump_rx(struct worker *w)
{
    unsigned nf = 0, nw = 0;
    int rc = 0;
    while (nf < RX_BATCH) {
        struct sx_netfront_rxframe *fr = &w->rxfr[nf];
        rc = sx_netfront_recv_peek(w->f, w->q, fr);
        if (rc == -EAGAIN) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        nf++;
        if (sx_netfront_vnet_from_frame(fr, &w->rxvh[nw]) < 0) {
            w->rx_drops++;
            continue;
        }
        w->rxiov[nw][0] = (struct iovec){ &w->rxvh[nw], SX_TAP_VNET_HDR_LEN };
        memcpy(&w->rxiov[nw][1], fr->seg, fr->nseg * sizeof(fr->seg[0]));
        w->rxf[nw] = (struct sx_tap_frame){ .iov = w->rxiov[nw], .niov = 1 + fr->nseg };
        nw++;
    }
    if (nw) {
        int sent = sx_tap_io_write(w->io, w->rxf, nw);
        w->tap_writes += (unsigned)sent;
        /* the kernel's queue is full or the device went away */
        w->tap_write_drops += nw - (unsigned)sent;
    }
    int rel = nf ? sx_netfront_recv_release(w->f, w->q) : 0;
    if (rc < 0)
        return rc;
    return rel < 0 ? rel : (int)nf;
}

static void *worker_loop(struct worker *w);

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    void *stopped = worker_loop(w);
    sx_tap_io_release(w->io);   /* this thread's ring, before the TAP goes (or a resume's
                                   new thread takes the handle) */
    if (stopped)
        return NULL;    /* asked to stop */
    uint64_t one = 1;
    if (write(w->dead_fd, &one, sizeof(one)) < 0)
        sx_warn("queue %u: cannot report exit: %s", w->q, strerror(errno));
    return NULL;
}

/* Returns w when stopped, NULL when the queue cannot go on. */
static void *worker_loop(struct worker *w)
{
    for (;;) {
        bool blocked;
        int tx = pump_tx(w, &blocked);
        int rx = pump_rx(w);
        if (tx < 0 || rx < 0) {
            sx_err("queue %u: ring halted (%s); stopping this queue", w->q,
                   strerror(-(tx < 0 ? tx : rx)));
            return NULL;
        }
        /* Idle (ring/'s sx_idle): spin on the rings for a while after work (a wakeup costs
         * far more), take and unmask the events, look once more, then sleep. */
        bool work = tx > 0 || rx > 0;
        if (sx_netfront_spin(w->f, w->q, work)) {
            w->spins_hit++;
            continue;
        }
        if (work)
            continue;
        sx_netfront_events(w->f, w->q);
        if (sx_netfront_has_work(w->f, w->q))
            continue;
        struct pollfd p[3] = {
            { .fd = w->nf_fd, .events = POLLIN },
            { .fd = w->stop_fd, .events = POLLIN },
            { .fd = w->tap_fd, .events = POLLIN },
        };
        w->sleeps++;
        /* While the tx ring is full, wait for its (armed) event rather than for the TAP. */
        int rc = sx_netfront_sleep(w->f, w->q, p, blocked ? 2 : 3, -1);
        if (rc < 0 && rc != -EINTR) {
            sx_err("queue %u: poll: %s", w->q, strerror(-rc));
            return NULL;
        }
        if (rc > 0 && p[1].revents)
            return w;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: splitxen-tapfront --domid N --netns NAME --ip A.B.C.D/P [--devid D]\n"
            "         [--queues Q] [--mtu M] [--stats] [--no-sg] [--no-gso] [--no-csum]\n"
            "         [--single-evtchn] [--tap-io batched|per-frame] [--timeout S]\n"
            "         [--platform sim|xen] [--core SOCK]\n"
            "       splitxen-tapfront --help | --version\n"
            "Acts as guest domain N, connects its vif D (default 0) and gives namespace NAME\n"
            "(created if missing) an eth0 with the vif's MAC and address A.B.C.D/P.\n"
            "Runs until SIGTERM/SIGINT; SIGUSR1 prints counters (--stats: also at exit).\n");
}

/* What the command line asks for. */
struct tf_args {
    unsigned long domid, devid, queues, mtu, timeout_s, prefix;
    const char *netns, *ip, *platname, *core;
    struct in_addr addr;
    int kind;
    bool stats;
    bool per_frame_io;
    struct sx_netfront_opts o;
};

/* What main sets up, each field invalid until its step succeeds; teardown undoes them all. */
struct tf_state {
    struct sx_plat *plat;
    struct sx_guest *guest;     /* sim: suspend and resume */
    struct sx_tap *tap;
    struct sx_nl *nl;
    int netns_fd, stop_fd, sig_fd, dead_fd;
    bool made_netns;
    unsigned mtu, offload;      /* eth0's, for the banner */
    bool per_frame_io;          /* --tap-io per-frame */
};

/* Returns -1 to run, or the status to exit with (0 for --help, 2 for a bad command line). */
static int parse_args(int argc, char **argv, struct tf_args *a)
{
    *a = (struct tf_args){ .domid = ~0ul, .queues = 1, .timeout_s = 30, .platname = "sim" };
    static const struct option lopts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "devid", required_argument, NULL, 'v' },
        { "netns", required_argument, NULL, 'n' },
        { "ip", required_argument, NULL, 'i' },
        { "queues", required_argument, NULL, 'q' },
        { "mtu", required_argument, NULL, 'm' },
        { "stats", no_argument, NULL, 's' },
        { "no-sg", no_argument, NULL, 'S' },
        { "no-gso", no_argument, NULL, 'G' },
        { "no-csum", no_argument, NULL, 'C' },
        { "single-evtchn", no_argument, NULL, 'E' },
        { "tap-io", required_argument, NULL, 'I' },
        { "timeout", required_argument, NULL, 't' },
        { "platform", required_argument, NULL, 'p' },
        { "core", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': bad = sx_parse_ulong(optarg, DOMID_FIRST_RESERVED - 1, &a->domid); break;
        case 'v': bad = sx_parse_ulong(optarg, 65535, &a->devid); break;
        case 'n': a->netns = optarg; break;
        case 'i': a->ip = optarg; break;
        case 'q':
            bad = sx_parse_ulong(optarg, SX_NETFRONT_MAX_QUEUES, &a->queues) || !a->queues;
            break;
        case 'm': bad = sx_parse_ulong(optarg, 65535, &a->mtu) || a->mtu < 68; break;
        case 's': a->stats = true; break;
        case 'S': a->o.no_sg = true; break;
        case 'G': a->o.no_gso = true; break;
        case 'C': a->o.no_csum_offload = true; break;
        case 'E': a->o.single_evtchn = true; break;
        case 'I':
            bad = strcmp(optarg, "batched") && strcmp(optarg, "per-frame");
            a->per_frame_io = !strcmp(optarg, "per-frame");
            break;
        case 't': bad = sx_parse_ulong(optarg, 3600, &a->timeout_s); break;
        case 'p': a->platname = optarg; break;
        case 'c': a->core = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': return sx_print_version("splitxen-tapfront");
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "splitxen-tapfront: bad value '%s' for %s\n", optarg,
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (a->domid == ~0ul || a->domid == 0 || !a->netns || !a->ip || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (strlen(a->netns) == 0 || strlen(a->netns) > 200 || strchr(a->netns, '/')) {
        fprintf(stderr, "splitxen-tapfront: bad namespace name '%s'\n", a->netns);
        return 2;
    }
    char ipbuf[64];
    snprintf(ipbuf, sizeof(ipbuf), "%s", a->ip);
    char *slash = strchr(ipbuf, '/');
    if (!slash || (*slash = 0, inet_pton(AF_INET, ipbuf, &a->addr) != 1) ||
        sx_parse_ulong(slash + 1, 32, &a->prefix) < 0) {
        fprintf(stderr, "splitxen-tapfront: --ip wants A.B.C.D/PREFIX, got '%s'\n", a->ip);
        return 2;
    }
    a->kind = sx_plat_kind_from_name(a->platname);
    if (a->kind < 0) {
        fprintf(stderr, "splitxen-tapfront: unknown platform '%s'\n", a->platname);
        return 2;
    }
    a->o.devid = (unsigned)a->devid;
    a->o.max_queues = (unsigned)a->queues;
    a->o.timeout_ms = (int)a->timeout_s * 1000;
    a->o.spin_ns = sx_ring_spin_ns();
    return -1;
}

/* Act as the guest and connect its vif: 0 or -errno (logged). */
static int open_vif(const struct tf_args *a, struct tf_state *t)
{
    int rc = sx_plat_open(&t->plat, (enum sx_plat_kind)a->kind, (domid_t)a->domid, a->core);
    if (rc < 0) {
        t->plat = NULL;
        sx_err("cannot act as domain %lu on %s: %s", a->domid, a->platname, strerror(-rc));
        return rc;
    }
    if ((rc = sx_netfront_open(&g.f, t->plat, &a->o)) < 0) {
        sx_err("vif %lu.%lu: %s", a->domid, a->devid, strerror(-rc));
        return rc;
    }
    if ((rc = sx_netfront_wait_connected(g.f, a->o.timeout_ms)) < 0)
        return rc;
    g.nq = sx_netfront_info(g.f)->nqueues;
    return 0;
}

/* eth0 in the namespace (created if missing): a TAP with the vif's MAC, the backend's tx
 * offloads and the address asked for. 0 or -errno (logged). */
static int make_eth0(const struct tf_args *a, struct tf_state *t)
{
    const struct sx_netfront_info *in = sx_netfront_info(g.f);
    int rc;
    t->netns_fd = sx_nl_netns_open(a->netns);
    if (t->netns_fd == -ENOENT) {
        if ((rc = sx_nl_netns_add(a->netns)) < 0) {
            sx_err("cannot create network namespace %s: %s", a->netns, strerror(-rc));
            return rc;
        }
        t->made_netns = true;
        t->netns_fd = sx_nl_netns_open(a->netns);
    }
    if (t->netns_fd < 0) {
        sx_err("cannot open network namespace %s: %s", a->netns, strerror(-t->netns_fd));
        return t->netns_fd;
    }
    /* What the kernel may hand us on read is what the backend takes on tx. */
    t->mtu = a->mtu ? (unsigned)a->mtu : in->mtu;
    t->offload = sx_tap_offload_for(in->tx_csum, in->tx_gso_tcpv4,
                                    in->tx_gso_tcpv6 && in->tx_ipv6_csum);
    struct sx_tap_config tc = { .name = "eth0", .nqueues = g.nq, .mac = in->mac, .mtu = t->mtu,
                                .offload = t->offload, .up = true, .use_netns = true,
                                .netns_fd = t->netns_fd };
    if ((rc = sx_tap_open(&tc, &t->tap)) < 0) {
        t->tap = NULL;
        sx_err("cannot create eth0 in %s: %s", a->netns, strerror(-rc));
        return rc;
    }
    if ((rc = sx_nl_open_netns(t->netns_fd, &t->nl)) < 0 ||
        (rc = sx_nl_addr_add_v4(t->nl, sx_tap_ifindex(t->tap), a->addr,
                                (unsigned)a->prefix)) < 0) {
        sx_err("cannot give eth0 address %s: %s", a->ip, strerror(-rc));
        return rc;
    }
    int lo;
    if (t->made_netns && sx_nl_ifindex(t->nl, "lo", &lo) == 0)
        (void)sx_nl_link_set_up(t->nl, lo, true);
    return 0;
}

/* A thread per queue, moving TAP queue q <-> netif queue q. 0 or -1 (logged). */
static int start_workers(const struct tf_state *t)
{
    for (unsigned q = 0; q < g.nq; q++) {
        struct worker *w = &g.w[q];
        w->q = q;
        w->f = g.f;
        w->tap_fd = sx_tap_fd(t->tap, q);
        w->nf_fd = sx_netfront_fd(g.f, q);
        w->stop_fd = t->stop_fd;
        w->dead_fd = t->dead_fd;
        const struct sx_netfront_info *in = sx_netfront_info(g.f);
        /* The largest frame the TAP hands us: a GSO super-frame with the TSO offloads on,
         * else the MTU's (plus a VLAN tag). */
        size_t maxframe = (t->offload & (TUN_F_TSO4 | TUN_F_TSO6)) ? SX_NETFRONT_MAX_FRAME
                                                                    : (size_t)t->mtu + 18;
        w->maxp = (unsigned)((maxframe + SX_NETFRONT_PAGE_SIZE - 1) / SX_NETFRONT_PAGE_SIZE);
        if (w->maxp > MAXP)
            w->maxp = MAXP;
        w->sw_csum_multi = !(in->tx_csum && in->tx_ipv6_csum);
        /* a resume starts the workers again: the buffer and the TAP's I/O handle stay */
        if (!w->bounce)
            w->bounce = malloc(MAXP * SX_NETFRONT_PAGE_SIZE);
        int rc = w->tap_fd < 0 ? w->tap_fd
                 : w->io      ? 0
                              : sx_tap_io_open(&w->io, w->tap_fd,
                                               t->per_frame_io ? SX_TAP_IO_SYSCALLS : 0);
        if (rc < 0 || !w->bounce || w->nf_fd < 0) {
            sx_err("queue %u: setup failed", q);
            return -1;
        }
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            sx_err("queue %u: pthread_create: %s", q, strerror(rc));
            return -1;
        }
        w->started = true;
    }
    return 0;
}

/* ------------------------------------------------------------------ suspend and resume */

struct tf_ctx {
    const struct tf_args *a;
    struct tf_state *t;
};

static void stop_workers(const struct tf_state *t)
{
    uint64_t one = 1;
    if (write(t->stop_fd, &one, sizeof(one)) < 0)
        sx_warn("stop: %s", strerror(errno));
    for (unsigned q = 0; q < g.nq; q++) {
        if (g.w[q].started)
            pthread_join(g.w[q].thread, NULL);
        g.w[q].started = false;
    }
    uint64_t v;
    if (read(t->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        sx_warn("stop: %s", strerror(errno));
}

/* A gratuitous ARP from the guest's address (Linux's netdev_notify_peers on resume): bridges
 * learn where its MAC is now, peers refresh their caches. */
static void announce(const struct tf_args *a)
{
    const uint8_t *mac = sx_netfront_info(g.f)->mac;
    uint8_t fr[60] = { 0 };
    memset(fr, 0xff, 6);
    memcpy(fr + 6, mac, 6);
    fr[12] = 0x08, fr[13] = 0x06;                   /* ARP */
    fr[14] = 0, fr[15] = 1;                         /* Ethernet */
    fr[16] = 0x08, fr[17] = 0x00;                   /* IPv4 */
    fr[18] = 6, fr[19] = 4, fr[20] = 0, fr[21] = 1; /* request */
    memcpy(fr + 22, mac, 6);
    memcpy(fr + 28, &a->addr, 4);
    memcpy(fr + 38, &a->addr, 4);
    if (sx_netfront_send(g.f, 0, fr, sizeof(fr), NULL, 0) < 0 || sx_netfront_tx_push(g.f, 0) < 0)
        sx_warn("could not announce the guest's address after the move");
}

static int tf_suspend(void *arg)
{
    struct tf_ctx *c = arg;
    stop_workers(c->t);
    return 0;
}

static int tf_resume(void *arg, bool moved)
{
    struct tf_ctx *c = arg;
    int rc = sx_netfront_resume(g.f, moved);
    if (rc < 0)
        return rc;
    if (moved)
        announce(c->a);
    return start_workers(c->t) == 0 ? 0 : -EIO;
}

/* On a platform where the guest's processes suspend themselves, take part (0 or -1). */
static int follow_guest(const struct tf_args *a, struct tf_state *t)
{
    static struct tf_ctx ctx;
    if (!sx_plat_traits(t->plat->kind)->guest_suspend)
        return 0;
    ctx = (struct tf_ctx){ .a = a, .t = t };
    int rc = sx_guest_open(&t->guest, t->plat);
    if (rc == 0) {
        const struct sx_guest_dev d = { .name = "tapfront vif", .suspend = tf_suspend,
                                        .resume = tf_resume, .arg = &ctx };
        rc = sx_guest_add(t->guest, &d);
    }
    if (rc < 0)
        sx_err("cannot follow the guest's suspend: %s", strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* The main thread: signals (SIGUSR1 prints counters, the others stop), a queue giving up, the
 * backend leaving, a suspend. Returns the exit status. */
static int control_loop(const struct tf_state *t)
{
    for (;;) {
        struct pollfd p[4] = { { .fd = t->sig_fd, .events = POLLIN },
                               { .fd = sx_netfront_ctrl_fd(g.f), .events = POLLIN },
                               { .fd = t->dead_fd, .events = POLLIN },
                               { .fd = t->guest ? sx_guest_fd(t->guest) : -1,
                                 .events = POLLIN } };
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            sx_err("poll: %s", strerror(errno));
            return 1;
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            if (read(t->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGUSR1) {
                    print_stats(stdout);
                    continue;
                }
                sx_info("signal %u: shutting down", si.ssi_signo);
                return 0;
            }
        }
        if (p[3].revents) {
            /* Suspend and resume run here, the queue threads stopped meanwhile; after a move
             * every fd but the queues' changed: poll again before looking at the others. */
            int rc = sx_guest_handle(t->guest);
            if (rc < 0) {
                sx_err("the guest cannot go on after its suspend (%s); shutting down",
                       strerror(-rc));
                return 1;
            }
            if (rc > 0)
                continue;
        }
        if (p[2].revents) {
            sx_err("a queue stopped; shutting down");
            return 1;
        }
        if (p[1].revents) {
            int st = sx_netfront_ctrl_handle(g.f);
            if (st < 0 || st == XenbusStateClosing || st == XenbusStateClosed ||
                st == XenbusStateUnknown) {
                sx_err("backend went away (state %d); shutting down", st);
                return 1;
            }
        }
    }
}

/* Stop the workers, remove eth0 (and the namespace if ours), disconnect: whatever got set up. */
static void teardown(const struct tf_args *a, struct tf_state *t)
{
    if (t->stop_fd >= 0)
        stop_workers(t);
    for (unsigned q = 0; q < g.nq; q++) {
        /* before the TAP: the ring holds a reference on its queue fd */
        sx_tap_io_close(g.w[q].io);
        g.w[q].io = NULL;
    }
    sx_guest_close(t->guest);
    if (a->stats && g.f)
        print_stats(stdout);
    sx_nl_close(t->nl);
    sx_tap_close(t->tap);   /* the kernel removes eth0 with its last queue fd */
    if (t->netns_fd >= 0)
        close(t->netns_fd);
    int rc;
    if (t->made_netns && (rc = sx_nl_netns_del(a->netns)) < 0)
        sx_warn("cannot delete network namespace %s: %s", a->netns, strerror(-rc));
    sx_netfront_close(g.f);
    for (unsigned q = 0; q < g.nq; q++)
        free(g.w[q].bounce);
    sx_plat_close(t->plat);
    if (t->sig_fd >= 0)
        close(t->sig_fd);
    if (t->stop_fd >= 0)
        close(t->stop_fd);
    if (t->dead_fd >= 0)
        close(t->dead_fd);
}

int main(int argc, char **argv)
{
    struct tf_args a;
    int status = parse_args(argc, argv, &a);
    if (status >= 0)
        return status;

    /* Signals go to the main thread's signalfd; workers inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct tf_state t = { .netns_fd = -1, .per_frame_io = a.per_frame_io };
    status = 1;
    t.sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    t.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    t.dead_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t.sig_fd < 0 || t.stop_fd < 0 || t.dead_fd < 0)
        sx_err("signalfd/eventfd: %s", strerror(errno));
    else if (open_vif(&a, &t) == 0 && make_eth0(&a, &t) == 0 && start_workers(&t) == 0 &&
             follow_guest(&a, &t) == 0) {
        printf("splitxen-tapfront: domain %lu vif %lu: eth0 in %s, %s, %u queue(s), mtu %u, "
               "offloads 0x%x\n", a.domid, a.devid, a.netns, a.ip, g.nq, t.mtu, t.offload);
        fflush(stdout);
        status = control_loop(&t);
    }
    teardown(&a, &t);
    return status;
}
