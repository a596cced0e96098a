/* splitxen-core: the sim hypervisor's daemon (domains, grant tables, event channels, xenstored). */
#define SX_LOG_MODULE "splitxen-core"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "version.h"
#include "xen-core/core.h"
#include "rundir.h"

static volatile int stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void usage(FILE *f)
{
    fprintf(f, "usage: splitxen-core [--run-dir DIR] [--dom0-mem MiB] [--no-xenstored]\n"
               "       splitxen-core --help | --version\n"
               "Runs the sim hypervisor in the foreground until SIGTERM/SIGINT.\n"
               "The run dir defaults to $SPLITXEN_RUN or /run/splitxen.\n");
}

int main(int argc, char **argv)
{
    struct sxc_server_opts o = { .run_dir = sx_run_dir(), .dom0_mem_mb = 64, .with_xenstored = true };
    static const struct option opts[] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "dom0-mem", required_argument, NULL, 'm' },
        { "no-xenstored", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "r:m:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': o.run_dir = optarg; break;
        case 'm': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 65536) {
                fprintf(stderr, "splitxen-core: --dom0-mem: expected MiB in 1..65536, got '%s'\n", optarg);
                return 2;
            }
            o.dom0_mem_mb = (uint32_t)v;
            break;
        }
        case 'n': o.with_xenstored = false; break;
        case 'h': usage(stdout); return 0;
        case 'V': return sx_print_version("splitxen-core");
        default: usage(stderr); return 2;
        }
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = sxc_server_run(&o, &stop);
    if (rc < 0) {
        fprintf(stderr, "splitxen-core: cannot start in %s: %s\n", o.run_dir, strerror(-rc));
        return 1;
    }
    return 0;
}
