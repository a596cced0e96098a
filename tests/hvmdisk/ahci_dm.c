/*
 * sx-ahci-dm: a device model for tests/hvmdisk: the PCI host bridge, the Xen platform device
 * and an AHCI controller with one disk on PATH, serving HVM domain N on sim until it dies or
 * SIGTERM. (splitxen-dm itself gets the same disk with the call in main below.) It takes
 * splitxen-dm's command line too, so `splitxen create` can start it (SPLITXEN_DM_BIN):
 *
 *   sx-ahci-dm --domid N (--ahci PATH [--ro] | --disk PATH[,ro]) [--vcpus N]
 *              [--engine auto|uring|aio|sync] [--no-direct]
 *
 * Prints the AHCI counters on exit. SX_AHCI_ENGINE (uring, aio, sync) and SX_AHCI_NO_DIRECT=1
 * in the environment do what --engine and --no-direct do, for runs started by splitxen create.
 */
#define SX_LOG_MODULE "sx-ahci-dm"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device-model/ahci/ahci.h"
#include "device-model/dm.h"
#include "log.h"
#include "xen-core/platform.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' }, { "ahci", required_argument, NULL, 'a' },
        { "ro", no_argument, NULL, 'r' },          { "engine", required_argument, NULL, 'e' },
        { "no-direct", no_argument, NULL, 'n' },   { "disk", required_argument, NULL, 'D' },
        { "vcpus", required_argument, NULL, 'v' }, { "console", required_argument, NULL, 'c' },
        { 0 },
    };
    long domid = -1;
    struct sx_ahci_cfg cfg = { .devfn = -1, .engine = SX_BIO_AUTO };
    int c;
    long vcpus = 0;
    const char *env_engine = getenv("SX_AHCI_ENGINE");
    if (env_engine)
        cfg.engine = !strcmp(env_engine, "uring") ? SX_BIO_URING : !strcmp(env_engine, "aio") ? SX_BIO_AIO
                   : !strcmp(env_engine, "sync") ? SX_BIO_SYNC : SX_BIO_AUTO;
    if (getenv("SX_AHCI_NO_DIRECT") && !strcmp(getenv("SX_AHCI_NO_DIRECT"), "1"))
        cfg.no_direct = true;
    char *disk = NULL;
    while ((c = getopt_long(argc, argv, "d:a:re:nD:v:c:", opts, NULL)) != -1) {
        switch (c) {
        case 'D': {
            disk = strdup(optarg);
            char *comma = disk ? strrchr(disk, ',') : NULL;
            if (comma && !strcmp(comma, ",ro")) {
                *comma = 0;
                cfg.read_only = true;
            }
            cfg.path = disk;
            break;
        }
        case 'v': vcpus = strtol(optarg, NULL, 10); break;
        case 'c': break;
        case 'd': domid = strtol(optarg, NULL, 10); break;
        case 'a': cfg.path = optarg; break;
        case 'r': cfg.read_only = true; break;
        case 'n': cfg.no_direct = true; break;
        case 'e':
            cfg.engine = !strcmp(optarg, "uring") ? SX_BIO_URING : !strcmp(optarg, "aio") ? SX_BIO_AIO
                       : !strcmp(optarg, "sync") ? SX_BIO_SYNC : SX_BIO_AUTO;
            break;
        default: return 2;
        }
    }
    if (domid < 1 || !cfg.path) {
        fprintf(stderr, "usage: sx-ahci-dm --domid N --ahci PATH [--ro] [--engine E] [--no-direct]\n");
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int ret = 1;
    struct sx_plat *plat = NULL;
    struct sx_dm *dm = NULL;
    struct sx_ioreq *r = NULL;
    struct sx_ahci *ahci = NULL;
    int rc = sx_plat_open(&plat, SX_PLAT_SIM, 0, NULL);
    if (rc == 0)
        rc = sx_dm_open(&dm, (domid_t)domid);
    if (rc == 0)
        rc = sx_dm_pci_host_add(dm);
    if (rc == 0)
        rc = sx_xen_platform_add(dm, -1, true, NULL);
    if (rc == 0)
        rc = sx_ahci_add(dm, &cfg, &ahci);
    if (rc < 0) {
        fprintf(stderr, "sx-ahci-dm: setup: %s\n", strerror(-rc));
        goto out;
    }
    struct sx_ioreq_opts o = { .domid = (domid_t)domid, .nr_vcpus = (unsigned)vcpus,
                               .handler = sx_dm_ioreq_handler, .opaque = dm };
    rc = sx_ioreq_open(&r, plat, &o);
    if (rc == 0)
        rc = sx_dm_set_ioreq(dm, r);
    if (rc == 0)
        rc = sx_ioreq_enable(r);
    if (rc < 0) {
        fprintf(stderr, "sx-ahci-dm: ioreq dom%ld: %s\n", domid, strerror(-rc));
        goto out;
    }
    printf("ready engine=%s direct=%d sectors=%" PRIu64 "\n",
           sx_bio_kind_name(sx_ahci_engine(ahci)), sx_ahci_direct(ahci), sx_ahci_sectors(ahci));
    fflush(stdout);
    rc = sx_dm_run(dm, &stop_flag);
    const struct sx_ahci_stats *s = sx_ahci_stats(ahci);
    printf("ahci cmds=%" PRIu64 " reads=%" PRIu64 " writes=%" PRIu64 " ncq=%" PRIu64
           " flushes=%" PRIu64 " trims=%" PRIu64 " identifies=%" PRIu64 " failed=%" PRIu64
           " bounced=%" PRIu64 " irqs=%" PRIu64 " resets=%" PRIu64 "\n",
           s->cmds, s->reads, s->writes, s->ncq, s->flushes, s->trims, s->identifies, s->failed,
           s->bounced, s->irqs, s->resets);
    ret = rc < 0 ? 1 : 0;
out:
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(r);
    sx_plat_close(plat);
    free(disk);
    return ret;
}
