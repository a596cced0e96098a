/*
 * splitxen-netback: the netif backend daemon of a driver domain.
 *
 *   splitxen-netback [--platform sim|xen|auto] [--domid N] [--bridge-default NAME]
 *                    [--spin-us N] [--core SOCKET]
 *                    [--check] [--torture[=SEED]] [--torture-faults=LIST] [--version]
 *
 * --spin-us: how long a queue thread polls its rings and TAP before sleeping on the event
 * channel (default $SPLITXEN_SPIN_NS or 20 us; 0 never spins).
 *
 * --check and --torture are for frontend authors (torture/torture.h): a protocol checker that
 * reports each mistake of a frontend, and seeded fault injection within the protocol's rules.
 *
 * Serves every vif under /local/domain/<domid>/backend/vif until SIGINT/SIGTERM. Under systemd
 * (Type=notify) it sends READY=1 once it watches xenstore and STOPPING=1 when a signal ends it.
 */
#define SX_LOG_MODULE "netback"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netback/common.h"
#include "notify.h"
#include "version.h"

static struct nb *g_nb;

static void on_signal(int sig)
{
    (void)sig;
    if (g_nb)
        atomic_store(&g_nb->stop, true);
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--platform sim|xen|auto] [--domid N] [--bridge-default NAME]\n"
            "          [--spin-us N] [--core SOCKET]\n"
            "          [--check] [--torture[=SEED]] [--torture-faults=LIST]\n"
            "       %s --help | --version\n%s", prog, prog, sx_tt_usage);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "platform", required_argument, NULL, 'p' },
        { "domid", required_argument, NULL, 'd' },
        { "bridge-default", required_argument, NULL, 'b' },
        { "spin-us", required_argument, NULL, 's' },
        { "core", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'C' },
        { "torture", optional_argument, NULL, 'T' },
        { "torture-faults", required_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *platform = NULL;
    /* Spin budget: --spin-us, else $SPLITXEN_SPIN_NS / the ring default (sx_ring_spin_ns). */
    struct nb_opts o = { .domid = 0, .bridge_default = "xenbr0", .spin_ns = sx_ring_spin_ns() };
    sx_tt_opts_default(&o.tt);
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'p': platform = optarg; break;
        case 'd':
            o.domid = (unsigned)strtoul(optarg, &end, 10);
            if (*end || o.domid >= DOMID_FIRST_RESERVED) {
                fprintf(stderr, "bad --domid '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b': o.bridge_default = optarg; break;
        case 's':
            o.spin_ns = strtoull(optarg, &end, 10) * 1000u;
            if (*end) {
                fprintf(stderr, "bad --spin-us '%s'\n", optarg);
                return 2;
            }
            break;
        case 'c': o.core_path = optarg; break;
        case 'C': o.tt.check = true; break;
        case 'T':
            if (sx_tt_parse_torture(&o.tt, optarg) < 0) {
                fprintf(stderr, "bad --torture seed '%s'\n", optarg);
                return 2;
            }
            break;
        case 'F':
            if (sx_tt_parse_faults(&o.tt, optarg) < 0) {
                fprintf(stderr, "bad --torture-faults '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout, argv[0]); return 0;
        case 'V': return sx_print_version("splitxen-netback");
        default: usage(stderr, argv[0]); return 2;
        }
    }
    int kind = sx_plat_kind_from_name(platform);
    if (kind < 0) {
        fprintf(stderr, "unknown platform '%s'\n", platform);
        return 2;
    }
    o.platform = kind;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = nb_open(&g_nb, &o);
    if (rc < 0) {
        fprintf(stderr, "splitxen-netback: %s\n", strerror(-rc));
        return 1;
    }
    sx_info("serving %s (spin %llu us)", g_nb->vif_dir, (unsigned long long)(o.spin_ns / 1000));
    /* The watch on the vif directory is registered: vifs written from now on are served. */
    sx_notify_ready("serving %s", g_nb->vif_dir);
    rc = nb_run(g_nb);
    sx_notify_stopping();
    nb_close(g_nb);
    return rc < 0 ? 1 : 0;
}
