/*
 * splitxen-test-ramback: a minimal blkif backend serving a RAM disk, for testing frontends
 * (sxblkfront, the fio engine) end to end before and besides splitxen-blkback. Acts as dom0
 * for one vbd whose libxl layout the caller wrote; follows the backend's side of the xenbus
 * handshake (features, InitWait, Connected, Closing, Closed) and reconnects as often as the
 * frontend comes back (Closed -> Initialising), until killed or --connections are served.
 *
 *   splitxen-test-ramback --fe DOMID [--devid 51712] [--size MiB] [--max-order N]
 *       [--max-queues N] [--max-indirect N] [--persistent 0|1] [--connections N]
 *
 * It is a test tool: one thread, every segment mapped and unmapped per request, requests
 * checked only as far as keeping itself safe (a bad request gets BLKIF_RSP_ERROR).
 * Counters are printed on exit.
 */
#define SX_LOG_MODULE "ramback"
#include "ring/ring.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xen/io/blkif.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "log.h"
#include "rundir.h"
#include "platform/platform.h"
#include "xenbus/xenbus.h"

#define MAXQ 16

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

struct q {
    void *mem;
    struct sx_back_ring ring;
    int lport;
};

static struct {
    domid_t fe;
    unsigned devid, max_order, max_queues, max_indirect, connections;
    bool persistent;
    uint64_t size;
    uint8_t *disk;
    struct sx_plat *p;
    struct sx_gnt *gnt;
    struct sx_evtchn *evt;
    struct sx_xenbus *xb;
    char fep[128], bep[128];
    unsigned order, nq;
    struct q q[MAXQ];
    uint64_t reqs, bytes, errors, indirect, flushes, discards;
} g;

static int wait_fe(unsigned want_mask, int *seen)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/state", g.fep);
    unsigned fired = 0;
    while (!stop) {
        enum xenbus_state st;
        if (sx_xenbus_read_state(g.xb, XBT_NULL, g.fep, &st) == 0 && (want_mask & (1u << st))) {
            *seen = (int)st;
            return 0;
        }
        int rc = sx_xenbus_dispatch(g.xb, 100);
        if (rc < 0)
            return rc;
        (void)fired;
    }
    return -EINTR;
}

static int rdu(const char *dir, const char *key, uint64_t max, uint64_t dflt, uint64_t *v)
{
    int rc = sx_xenbus_read_uint(g.xb, XBT_NULL, dir, key, 0, max, v);
    if (rc == -ENOENT) {
        *v = dflt;
        return 0;
    }
    return rc;
}

static int connect_rings(void)
{
    uint64_t v;
    if (rdu(g.fep, "ring-page-order", g.max_order, 0, &v) < 0)
        return -EPROTO;
    g.order = (unsigned)v;
    if (rdu(g.fep, "multi-queue-num-queues", g.max_queues, 1, &v) < 0 || v == 0)
        return -EPROTO;
    g.nq = (unsigned)v;
    for (unsigned i = 0; i < g.nq; i++) {
        char dir[192];
        if (g.nq == 1)
            snprintf(dir, sizeof(dir), "%s", g.fep);
        else
            snprintf(dir, sizeof(dir), "%s/queue-%u", g.fep, i);
        grant_ref_t refs[SX_RING_MAX_PAGES];
        for (unsigned k = 0; k < (1u << g.order); k++) {
            char key[32];
            if (g.order == 0)
                snprintf(key, sizeof(key), "ring-ref");
            else
                snprintf(key, sizeof(key), "ring-ref%u", k);
            if (rdu(dir, key, UINT32_MAX, UINT64_MAX, &v) < 0 || v == UINT64_MAX)
                return -EPROTO;
            refs[k] = (grant_ref_t)v;
        }
        if (rdu(dir, "event-channel", UINT32_MAX, UINT64_MAX, &v) < 0 || v == UINT64_MAX)
            return -EPROTO;
        struct q *q = &g.q[i];
        int rc = sx_ring_map(g.gnt, g.fe, g.order, refs, &q->mem);
        if (rc < 0)
            return rc;
        rc = sx_back_ring_attach(&q->ring, q->mem, sx_ring_bytes(g.order), sizeof(blkif_request_t),
                                 sizeof(blkif_response_t));
        if (rc < 0)
            return rc;
        q->lport = sx_evtchn_bind_interdomain(g.evt, g.fe, (evtchn_port_t)v);
        if (q->lport < 0)
            return q->lport;
    }
    return 0;
}

static void disconnect_rings(void)
{
    for (unsigned i = 0; i < g.nq; i++) {
        struct q *q = &g.q[i];
        sx_back_ring_detach(&q->ring);
        if (q->mem)
            sx_ring_unmap(g.gnt, q->mem, g.order);
        q->mem = NULL;
        if (q->lport >= 0)
            sx_evtchn_unbind(g.evt, (evtchn_port_t)q->lport);
        q->lport = -1;
    }
    g.nq = 0;
}

/* Move one request's data; returns a BLKIF_RSP_* status. */
static int16_t serve(const blkif_request_t *rq)
{
    struct blkif_request_segment segs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * 512];
    unsigned nseg;
    uint8_t op = rq->operation;
    uint64_t sector;
    if (op == BLKIF_OP_FLUSH_DISKCACHE) {
        g.flushes++;
        return BLKIF_RSP_OKAY;
    }
    if (op == BLKIF_OP_DISCARD) {
        blkif_request_discard_t d;
        memcpy(&d, rq, sizeof(d));
        if (d.sector_number > g.size / 512 || d.nr_sectors > g.size / 512 - d.sector_number)
            return BLKIF_RSP_ERROR;
        memset(g.disk + d.sector_number * 512, 0, d.nr_sectors * 512);
        g.discards++;
        return BLKIF_RSP_OKAY;
    }
    if (op == BLKIF_OP_INDIRECT) {
        blkif_request_indirect_t ind;
        memcpy(&ind, rq, sizeof(ind));
        op = ind.indirect_op;
        nseg = ind.nr_segments;
        sector = ind.sector_number;
        if ((op != BLKIF_OP_READ && op != BLKIF_OP_WRITE) || nseg == 0 ||
            nseg > g.max_indirect)
            return BLKIF_RSP_ERROR;
        unsigned npg = (nseg + 511) / 512;
        void *ip;
        if (sx_gnt_map(g.gnt, g.fe, npg, ind.indirect_grefs, false, &ip, NULL) < 0)
            return BLKIF_RSP_ERROR;
        memcpy(segs, ip, nseg * sizeof(segs[0]));
        sx_gnt_unmap(g.gnt, ip, npg);
        g.indirect++;
    } else if (op == BLKIF_OP_READ || op == BLKIF_OP_WRITE) {
        nseg = rq->nr_segments;
        sector = rq->sector_number;
        if (nseg == 0 || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST)
            return BLKIF_RSP_ERROR;
        memcpy(segs, rq->seg, nseg * sizeof(segs[0]));
    } else {
        return BLKIF_RSP_EOPNOTSUPP;
    }
    uint64_t pos = sector * 512;
    for (unsigned i = 0; i < nseg; i++) {
        struct blkif_request_segment s = segs[i];
        if (s.first_sect > s.last_sect || s.last_sect > 7)
            return BLKIF_RSP_ERROR;
        size_t off = s.first_sect * 512u, n = (s.last_sect - s.first_sect + 1u) * 512u;
        if (pos > g.size || n > g.size - pos)
            return BLKIF_RSP_ERROR;
        void *pg;
        bool w = op == BLKIF_OP_READ;
        if (sx_gnt_map(g.gnt, g.fe, 1, &s.gref, w, &pg, NULL) < 0)
            return BLKIF_RSP_ERROR;
        if (w)
            memcpy((uint8_t *)pg + off, g.disk + pos, n);
        else
            memcpy(g.disk + pos, (uint8_t *)pg + off, n);
        sx_gnt_unmap(g.gnt, pg, 1);
        pos += n;
        g.bytes += n;
    }
    return BLKIF_RSP_OKAY;
}

static volatile bool fe_changed;
static void fe_state_cb(void *arg, const char *path, const char *token)
{
    (void)arg;
    (void)path;
    (void)token;
    fe_changed = true;
}

/* Serve until the frontend leaves Connected. The frontend's state is read only when its
 * watch fires: a xenstore round trip per loop would dominate the latency. */
static int serve_loop(void)
{
    blkif_request_t rq[32];
    char path[192];
    snprintf(path, sizeof(path), "%s/state", g.fep);
    fe_changed = true;
    if (sx_xenbus_watch(g.xb, path, "ramback-fe", fe_state_cb, NULL) < 0)
        return -EIO;
    int ret = -EINTR;
    while (!stop) {
        bool work = false;
        for (unsigned i = 0; i < g.nq; i++) {
            struct q *q = &g.q[i];
            int n = sx_back_ring_take(&q->ring, rq, 32);
            if (n < 0)
                continue;           /* halted: wait for the frontend to close */
            for (int k = 0; k < n; k++) {
                int16_t st = serve(&rq[k]);
                g.reqs++;
                g.errors += st != BLKIF_RSP_OKAY;
                uint8_t rop = rq[k].operation;
                if (rop == BLKIF_OP_INDIRECT)   /* answered with the inner operation */
                    rop = ((const blkif_request_indirect_t *)&rq[k])->indirect_op;
                blkif_response_t r = { .id = rq[k].id, .operation = rop, .status = st };
                sx_back_ring_put_rsp(&q->ring, &r);
            }
            if (n > 0) {
                work = true;
                if (sx_back_ring_push(&q->ring) == 1)
                    sx_evtchn_notify(g.evt, (evtchn_port_t)q->lport);
            }
        }
        if (fe_changed) {
            enum xenbus_state st;
            fe_changed = false;
            if (sx_xenbus_read_state(g.xb, XBT_NULL, g.fep, &st) < 0 ||
                st != XenbusStateConnected) {
                ret = 0;
                break;
            }
        }
        if (work)
            continue;
        sx_evtchn_drain(g.evt, 0);
        bool again = false;
        for (unsigned i = 0; i < g.nq; i++)
            again |= sx_back_ring_final_check(&g.q[i].ring) == 1;
        if (again)
            continue;
        struct pollfd pfd[2] = { { .fd = sx_evtchn_fd(g.evt), .events = POLLIN },
                                 { .fd = sx_xenbus_fd(g.xb), .events = POLLIN } };
        poll(pfd, 2, 100);
        if (pfd[1].revents && sx_xenbus_dispatch(g.xb, 0) < 0) {
            ret = -ENOTCONN;
            break;
        }
    }
    sx_xenbus_unwatch(g.xb, "ramback-fe");
    return ret;
}

static int one_connection(void)
{
    int seen;
    if (g.max_indirect)
        sx_xenbus_printf(g.xb, XBT_NULL, g.bep, "feature-max-indirect-segments", "%u",
                         g.max_indirect);
    sx_xenbus_printf(g.xb, XBT_NULL, g.bep, "multi-queue-max-queues", "%u", g.max_queues);
    sx_xenbus_printf(g.xb, XBT_NULL, g.bep, "max-ring-page-order", "%u", g.max_order);
    /* A frontend that closed must come back to Initialising before we offer again. */
    int rc = wait_fe((1u << XenbusStateInitialising) | (1u << XenbusStateInitialised), &seen);
    if (rc < 0)
        return rc;
    sx_xenbus_switch_state(g.xb, g.bep, XenbusStateInitWait);
    rc = wait_fe(1u << XenbusStateInitialised, &seen);
    if (rc < 0)
        return rc;
    rc = connect_rings();
    if (rc < 0) {
        sx_err("cannot connect the frontend's rings: %s", strerror(-rc));
        disconnect_rings();
        sx_xenbus_switch_state(g.xb, g.bep, XenbusStateClosing);
    } else {
        sx_xenbus_printf(g.xb, XBT_NULL, g.bep, "sectors", "%llu",
                         (unsigned long long)(g.size / 512));
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "sector-size", "512");
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "info", "0");
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "feature-flush-cache", "1");
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "feature-discard", "1");
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "discard-granularity", "512");
        sx_xenbus_write(g.xb, XBT_NULL, g.bep, "discard-alignment", "0");
        sx_xenbus_printf(g.xb, XBT_NULL, g.bep, "feature-persistent", "%u", g.persistent);
        sx_xenbus_switch_state(g.xb, g.bep, XenbusStateConnected);
        wait_fe((1u << XenbusStateConnected) | (1u << XenbusStateClosing) |
                (1u << XenbusStateClosed), &seen);
        rc = serve_loop();
        disconnect_rings();
        sx_xenbus_switch_state(g.xb, g.bep, XenbusStateClosing);
    }
    if (wait_fe((1u << XenbusStateClosed) | (1u << XenbusStateInitialising), &seen) == 0)
        sx_xenbus_switch_state(g.xb, g.bep, XenbusStateClosed);
    return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
    g.devid = 51712;
    g.size = 64ull << 20;
    g.max_order = 4;
    g.max_queues = 4;
    g.max_indirect = 256;
    g.persistent = true;
    static const struct option lo[] = {
        { "fe", required_argument, NULL, 'f' },         { "devid", required_argument, NULL, 'd' },
        { "size", required_argument, NULL, 's' },       { "max-order", required_argument, NULL, 'o' },
        { "max-queues", required_argument, NULL, 'q' }, { "max-indirect", required_argument, NULL, 'i' },
        { "persistent", required_argument, NULL, 'p' }, { "connections", required_argument, NULL, 'c' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        unsigned long v = optarg ? strtoul(optarg, NULL, 0) : 0;
        switch (c) {
        case 'f': g.fe = (domid_t)v; break;
        case 'd': g.devid = (unsigned)v; break;
        case 's': g.size = (uint64_t)v << 20; break;
        case 'o': g.max_order = (unsigned)v; break;
        case 'q': g.max_queues = (unsigned)(v ? (v > MAXQ ? MAXQ : v) : 1); break;
        case 'i': g.max_indirect = (unsigned)(v > 4096 ? 4096 : v); break;
        case 'p': g.persistent = v != 0; break;
        case 'c': g.connections = (unsigned)v; break;
        default:
            fprintf(stderr, "usage: %s --fe DOMID [--devid N] [--size MiB] [--max-order N] "
                            "[--max-queues N] [--max-indirect N] [--persistent 0|1] "
                            "[--connections N]\n", argv[0]);
            return 2;
        }
    }
    if (!g.fe || g.max_order > SX_RING_MAX_ORDER) {
        fprintf(stderr, "ramback: --fe DOMID required; --max-order at most %u\n", SX_RING_MAX_ORDER);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (unsigned i = 0; i < MAXQ; i++)
        g.q[i].lport = -1;
    g.disk = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char xsp[256];
    int rc;
    if (g.disk == MAP_FAILED || sx_xenstored_path(xsp, sizeof(xsp), 0) < 0 ||
        (rc = sx_plat_open(&g.p, SX_PLAT_SIM, 0, NULL)) < 0 || sx_gnt_open(&g.gnt, g.p) < 0 ||
        sx_evtchn_open(&g.evt, g.p) < 0 || sx_xenbus_open(&g.xb, NULL, xsp) < 0) {
        fprintf(stderr, "ramback: setup failed (is splitxen-core running? SPLITXEN_RUN=%s)\n",
                sx_run_dir());
        return 1;
    }
    sx_xenbus_backend_path(g.bep, sizeof(g.bep), 0, "vbd", g.fe, g.devid);
    sx_xenbus_frontend_path(g.fep, sizeof(g.fep), g.fe, "vbd", g.devid);
    printf("ramback: serving %s (%llu MiB)\n", g.bep, (unsigned long long)(g.size >> 20));
    fflush(stdout);
    unsigned served = 0;
    rc = 0;
    while (!stop && (!g.connections || served < g.connections)) {
        rc = one_connection();
        if (rc == -EINTR) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        served++;
    }
    printf("ramback: connections %u reqs %llu bytes %llu indirect %llu flushes %llu "
           "discards %llu errors %llu\n", served, (unsigned long long)g.reqs,
           (unsigned long long)g.bytes, (unsigned long long)g.indirect,
           (unsigned long long)g.flushes, (unsigned long long)g.discards,
           (unsigned long long)g.errors);
    disconnect_rings();
    sx_xenbus_close(g.xb);
    sx_evtchn_close(g.evt);
    sx_gnt_close(g.gnt);
    sx_plat_close(g.p);
    return rc < 0 ? 1 : 0;
}
