/*
 * splitxen-xenstored: run the sim platform's xenstored in the foreground until SIGTERM/SIGINT.
 *   splitxen-xenstored --dir DIR [--domain N]... [--quota NAME=VALUE]...
 * Quota names: nodes, node-size, perms, watches, transactions, transaction-nodes,
 * pending-events, path-max.
 */
#define SX_LOG_MODULE "xenstored"
#include "log.h"
#include "parse.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenstored/xenstored.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int parse_uint(const char *s, unsigned *out)
{
    unsigned long v;
    int rc = sx_parse_ulong(s, 0x7fffffff, &v);
    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}

static int set_quota(struct sxs_quota *q, const char *arg)
{
    static const struct {
        const char *name;
        size_t off;
    } names[] = {
        { "nodes", offsetof(struct sxs_quota, nodes_per_domain) },
        { "node-size", offsetof(struct sxs_quota, max_node_size) },
        { "perms", offsetof(struct sxs_quota, perms_per_node) },
        { "watches", offsetof(struct sxs_quota, watches_per_conn) },
        { "transactions", offsetof(struct sxs_quota, trans_per_conn) },
        { "transaction-nodes", offsetof(struct sxs_quota, trans_nodes) },
        { "pending-events", offsetof(struct sxs_quota, pending_events) },
        { "path-max", offsetof(struct sxs_quota, path_max) },
    };
    const char *eq = strchr(arg, '=');
    if (!eq)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == (size_t)(eq - arg) &&
            !strncmp(arg, names[i].name, (size_t)(eq - arg)))
            return parse_uint(eq + 1, (unsigned *)((char *)q + names[i].off));
    }
    return -EINVAL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: splitxen-xenstored --dir DIR [--domain N]... [--quota NAME=VALUE]...\n"
               "  dom0 socket: DIR/socket; guest N: DIR/domain/N.sock\n"
               "  quotas: nodes node-size perms watches transactions transaction-nodes\n"
               "          pending-events path-max\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "domain", required_argument, NULL, 'D' },
        { "quota", required_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    unsigned doms[256];
    unsigned ndoms = 0;
    struct sxs_quota q;
    sxs_quota_default(&q);
    int c;
    while ((c = getopt_long(argc, argv, "d:D:q:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'D':
            if (ndoms == 256 || parse_uint(optarg, &doms[ndoms])) {
                fprintf(stderr, "bad --domain %s\n", optarg);
                return 2;
            }
            ndoms++;
            break;
        case 'q':
            if (set_quota(&q, optarg)) {
                fprintf(stderr, "bad --quota %s\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dir || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sxs *s;
    int rc = sxs_open(&s, dir);
    if (rc) {
        sx_err("cannot open xenstored in %s: %s", dir, strerror(-rc));
        return 1;
    }
    rc = sxs_set_quota(s, &q);
    if (rc) {
        sx_err("bad quota: %s", strerror(-rc));
        goto out;
    }
    for (unsigned i = 0; i < ndoms; i++) {
        rc = sxs_domain_add(s, doms[i]);
        if (rc) {
            sx_err("cannot add domain %u: %s", doms[i], strerror(-rc));
            goto out;
        }
    }
    sx_info("xenstored ready in %s", dir);
    while (!stop) {
        rc = sxs_step(s, 1000);
        if (rc < 0 && rc != -EINTR) {
            sx_err("xenstored loop: %s", strerror(-rc));
            break;
        }
    }
    rc = rc < 0 && rc != -EINTR ? rc : 0;
    struct sxs_stats st;
    sxs_get_stats(s, &st);
    sx_info("stopping: %llu requests, %llu events queued, %llu dropped, %u nodes",
            (unsigned long long)st.requests, (unsigned long long)st.events_queued,
            (unsigned long long)st.events_dropped, st.nodes);
out:
    sxs_close(s);
    return rc ? 1 : 0;
}
