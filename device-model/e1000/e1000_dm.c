/*
 * sx-e1000-dm: the sim device model of one HVM domain with e1000 NICs, for tests and benches
 * until splitxen-dm creates the e1000 from the domain's vif specs itself. The same platform as
 * splitxen-dm on sim (PCI host bridge, 16550A UART on 0x3F8, Xen platform device) plus one
 * e1000 per --vif (an xl vif spec: mac=, bridge=, vifname=, mtu=).
 *
 *   sx-e1000-dm --domid N --nic 'mac=00:16:3e:00:00:01,bridge=xenbr0' [--nic ...]
 *               [--vcpus N] [--console FILE] [--spin-us US] [--disk SPEC (ignored)]
 *
 * It takes splitxen-dm's options (--vif is an alias of --nic), so `splitxen create` can start it
 * for an HVM domain with SPLITXEN_DM_BIN=.../sx-e1000-dm.
 *
 * Runs until the domain dies or SIGTERM/SIGINT; prints the e1000 counters on exit.
 */
#define SX_LOG_MODULE "sx-e1000-dm"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device-model/dm.h"
#include "device-model/e1000/e1000.h"
#include "log.h"
#include "xen-core/platform.h"

#define MAX_VIFS 4

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static void usage(void)
{
    fprintf(stderr, "usage: sx-e1000-dm --domid N --nic SPEC [--nic SPEC] [--vcpus N] "
                    "[--console FILE] [--spin-us US]\n");
    exit(2);
}

static void print_stats(const struct sx_e1000 *e, unsigned i)
{
    const struct sx_e1000_stats *s = sx_e1000_stats(e);
    printf("e1000.%u tx_frames=%" PRIu64 " tx_bytes=%" PRIu64 " tx_tso=%" PRIu64
           " tx_csum=%" PRIu64 " tx_dropped=%" PRIu64 " rx_frames=%" PRIu64 " rx_bytes=%" PRIu64
           " rx_filtered=%" PRIu64 " rx_paused=%" PRIu64 " ring_errors=%" PRIu64
           " desc_dma_errors=%" PRIu64 " buf_dma_errors=%" PRIu64 " irq_raises=%" PRIu64 "\n",
           i, s->tx_frames, s->tx_bytes, s->tx_tso, s->tx_csum, s->tx_dropped, s->rx_frames,
           s->rx_bytes, s->rx_filtered, s->rx_paused, s->ring_errors, s->desc_dma_errors,
           s->buf_dma_errors, s->irq_raises);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "vif", required_argument, NULL, 'n' },
        { "nic", required_argument, NULL, 'n' },
        { "vcpus", required_argument, NULL, 'v' },
        { "disk", required_argument, NULL, 'k' },
        { "spin-us", required_argument, NULL, 's' },
        { "console", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    long domid = -1, vcpus = 0, spin_us = 20;
    const char *vifs[MAX_VIFS], *console = NULL;
    unsigned nvifs = 0;
    int c;
    while ((c = getopt_long(argc, argv, "d:n:v:k:s:c:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            domid = strtol(optarg, &end, 10);
            if (*end || domid < 1 || domid >= DOMID_FIRST_RESERVED)
                usage();
            break;
        case 'n':
            if (nvifs == MAX_VIFS)
                usage();
            vifs[nvifs++] = optarg;
            break;
        case 'c':
            console = optarg;
            break;
        case 'v':
            vcpus = strtol(optarg, &end, 10);
            if (*end || vcpus < 1 || vcpus > SX_IOREQ_MAX_VCPUS)
                usage();
            break;
        case 's':
            spin_us = strtol(optarg, &end, 10);
            if (*end || spin_us < 0 || spin_us > 10000)
                usage();
            break;
        case 'k':
            fprintf(stderr, "sx-e1000-dm: no AHCI here; --disk %s ignored\n", optarg);
            break;
        default:
            usage();
        }
    }
    if (domid < 0 || optind != argc)
        usage();
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1, rc, con_fd = -1;
    struct sx_plat *plat = NULL;
    struct sx_dm *dm = NULL;
    struct sx_ioreq *r = NULL;
    struct sx_e1000 *nics[MAX_VIFS] = { 0 };
    rc = sx_plat_open(&plat, SX_PLAT_SIM, 0, NULL);
    if (rc < 0) {
        fprintf(stderr, "sx-e1000-dm: platform: %s\n", strerror(-rc));
        goto out;
    }
    rc = sx_dm_open(&dm, (domid_t)domid);
    if (rc < 0)
        goto fail;
    sx_dm_set_spin(dm, (unsigned)spin_us);
    char path[PATH_MAX];
    if (!console) {
        snprintf(path, sizeof(path), "%s/console", sx_run_dir());
        if (mkdir(path, 0755) == 0 || errno == EEXIST) {
            snprintf(path, sizeof(path), "%s/console/%ld.log", sx_run_dir(), domid);
            console = path;
        }
    }
    if (console) {
        con_fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (con_fd < 0) {
            rc = -errno;
            goto fail;
        }
    }
    rc = sx_dm_pci_host_add(dm);
    if (rc == 0)
        rc = sx_uart_add(dm, 0x3f8, 4, con_fd, NULL);
    if (rc == 0)
        rc = sx_xen_platform_add(dm, -1, true, NULL);
    if (rc < 0)
        goto fail;
    for (unsigned i = 0; i < nvifs; i++) {
        struct sx_e1000_cfg cfg;
        rc = sx_e1000_parse_vif(vifs[i], i, &cfg, NULL);
        if (rc < 0) {
            fprintf(stderr, "sx-e1000-dm: bad vif spec '%s'\n", vifs[i]);
            goto out;
        }
        rc = sx_e1000_add(dm, &cfg, &nics[i]);
        if (rc < 0)
            goto fail;
        printf("e1000.%u %s\n", i, sx_e1000_ifname(nics[i]));
    }
    fflush(stdout);
    struct sx_ioreq_opts o = { .domid = (domid_t)domid, .nr_vcpus = (unsigned)vcpus,
                               .handler = sx_dm_ioreq_handler,
                               .opaque = dm };
    rc = sx_ioreq_open(&r, plat, &o);
    if (rc < 0)
        goto fail;
    rc = sx_dm_set_ioreq(dm, r);
    if (rc == 0)
        rc = sx_ioreq_enable(r);
    if (rc < 0)
        goto fail;
    sx_info("serving dom%ld (%u devices)", domid, sx_dm_nr_devices(dm));
    rc = sx_dm_run(dm, &stop_flag);
    if (rc < 0)
        goto fail;
    for (unsigned i = 0; i < nvifs; i++)
        if (sx_dm_dev_find(dm, "e1000"))   /* still plugged */
            print_stats(nics[i], i);
    ret = 0;
    goto out;
fail:
    fprintf(stderr, "sx-e1000-dm: dom%ld: %s\n", domid, strerror(-rc));
out:
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(r);
    sx_plat_close(plat);
    if (con_fd >= 0)
        close(con_fd);
    return ret;
}
