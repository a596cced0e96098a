/*
 * splitxen-blkback: the blkif backend daemon. Serves every vbd under
 * /local/domain/<domid>/backend/vbd until SIGTERM/SIGINT.
 *
 *   splitxen-blkback [--platform sim|xen|auto] [--domid N] [--engine uring|aio|sync|mem|auto]
 *       [--spin-us N] [--turnaround-us N] [--max-queues N] [--max-ring-order N] [--max-indirect N]
 *       [--max-pgrants N] [--sqpoll] [--no-regbuf] [--spin-yield|--no-spin-yield]
 *       [--spin-inflight] [--check] [--torture[=SEED]] [--torture-faults=LIST] [--version]
 *
 * Under systemd (Type=notify) it sends READY=1 once it watches xenstore, and STOPPING=1 when
 * a signal ends it (sd_notify; nothing without $NOTIFY_SOCKET).
 *
 * On exit it stops its ring threads and releases its mappings but leaves the xenbus states
 * alone, so a restarted blkback reconnects to the frontends that are still running.
 *
 * --check and --torture are for frontend authors (torture/torture.h): a protocol checker that
 * reports each mistake of a frontend, and seeded fault injection within the protocol's rules.
 */
#define SX_LOG_MODULE "blkback"
#include "blkback/common.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify.h"
#include "parse.h"
#include "version.h"

static atomic_int stop;   /* lock-free, so the signal handler may set it */
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--platform sim|xen|auto] [--domid N] [--engine uring|aio|sync|mem|auto]\n"
            "          [--spin-us N] [--turnaround-us N] [--max-queues N] [--max-ring-order N]\n"
            "          [--max-indirect N] [--max-pgrants N] [--sqpoll] [--no-regbuf]\n"
            "          [--spin-yield|--no-spin-yield] [--spin-inflight]\n"
            "          [--check] [--torture[=SEED]] [--torture-faults=LIST]\n"
            "       %s --help | --version\n%s", argv0, argv0, sx_tt_usage);
}

int main(int argc, char **argv)
{
    struct bb_opts o;
    bb_opts_default(&o);
    const char *plat = "sim";
    static const struct option lo[] = {
        { "platform", required_argument, NULL, 'p' },
        { "domid", required_argument, NULL, 'd' },
        { "engine", required_argument, NULL, 'e' },
        { "spin-us", required_argument, NULL, 's' },
        { "turnaround-us", required_argument, NULL, 't' },
        { "spin-inflight", no_argument, NULL, 'I' },
        { "max-queues", required_argument, NULL, 'q' },
        { "max-ring-order", required_argument, NULL, 'o' },
        { "max-indirect", required_argument, NULL, 'i' },
        { "max-pgrants", required_argument, NULL, 'g' },
        { "sqpoll", no_argument, NULL, 'S' },
        { "no-regbuf", no_argument, NULL, 'R' },
        { "spin-yield", no_argument, NULL, 'Y' },
        { "check", no_argument, NULL, 'C' },
        { "torture", optional_argument, NULL, 'T' },
        { "torture-faults", required_argument, NULL, 'F' },
        { "no-spin-yield", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    int c;
    unsigned long v;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p': plat = optarg; break;
        case 'd': bad = sx_parse_ulong(optarg, DOMID_FIRST_RESERVED - 1, &v); o.domid = (domid_t)v; break;
        case 'e':
            if (!strcmp(optarg, "uring") || !strcmp(optarg, "io_uring")) o.engine = SX_BIO_URING;
            else if (!strcmp(optarg, "aio") || !strcmp(optarg, "libaio")) o.engine = SX_BIO_AIO;
            else if (!strcmp(optarg, "sync")) o.engine = SX_BIO_SYNC;
            else if (!strcmp(optarg, "mem")) o.engine = SX_BIO_MEM;
            else if (!strcmp(optarg, "auto")) o.engine = SX_BIO_AUTO;
            else bad = 1;
            break;
        case 's': bad = sx_parse_ulong(optarg, 1000000, &v); o.spin_ns = (uint64_t)v * 1000; break;
        case 't': bad = sx_parse_ulong(optarg, 1000000, &v); o.turnaround_ns = (uint64_t)v * 1000; break;
        case 'q': bad = sx_parse_ulong(optarg, BB_MAX_QUEUES, &v) || v == 0; o.max_queues = (unsigned)v; break;
        case 'o': bad = sx_parse_ulong(optarg, SX_RING_MAX_ORDER, &v); o.max_ring_order = (unsigned)v; break;
        case 'i': bad = sx_parse_ulong(optarg, SX_BLK_MAX_INDIRECT_SEGS, &v); o.max_indirect = (unsigned)v; break;
        case 'g': bad = sx_parse_ulong(optarg, SX_BIO_MAX_BUFFERS, &v); o.max_pgrants = (unsigned)v; break;
        case 'S': o.sqpoll = true; break;
        case 'I': o.spin_inflight = true; break;
        case 'R': o.no_regbuf = true; break;
        case 'Y': o.spin_yield = true; break;
        case 'C': o.tt.check = true; break;
        case 'T': bad = sx_tt_parse_torture(&o.tt, optarg) < 0; break;
        case 'F': bad = sx_tt_parse_faults(&o.tt, optarg) < 0; break;
        case 'N': o.spin_yield = false; break;
        case 'h': usage(stdout, argv[0]); return 0;
        case 'V': return sx_print_version("splitxen-blkback");
        default: usage(stderr, argv[0]); return 2;
        }
        if (bad) {
            fprintf(stderr, "%s: bad value for --%s: %s\n", argv[0], lo[0].name, optarg);
            for (const struct option *x = lo; x->name; x++)
                if (x->val == c)
                    fprintf(stderr, "  (option --%s)\n", x->name);
            return 2;
        }
    }
    int k = sx_plat_kind_from_name(plat);
    if (k < 0) {
        fprintf(stderr, "%s: unknown platform %s\n", argv[0], plat);
        return 2;
    }
    o.plat = (enum sx_plat_kind)k;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct bb_daemon *d;
    int rc = bb_daemon_open(&d, &o);
    if (rc < 0) {
        fprintf(stderr, "splitxen-blkback: %s\n", strerror(-rc));
        return 1;
    }
    sx_info("serving %s (engine %s, spin %llu us, max queues %u, ring order %u, indirect %u)",
            d->root, o.engine == SX_BIO_AUTO ? "auto" : sx_bio_kind_name(o.engine),
            (unsigned long long)(o.spin_ns / 1000), o.max_queues, o.max_ring_order,
            o.max_indirect);
    /* The watch on the backend directory is registered: vbds written from now on are served. */
    sx_notify_ready("serving %s", d->root);
    rc = bb_daemon_run(d, &stop);
    sx_notify_stopping();
    bb_daemon_close(d);
    return rc < 0 ? 1 : 0;
}
