/*
 * splitxen-dm: the device model of one HVM domain (the qemu-dm role).
 *
 *   splitxen-dm --domid N [--platform sim|xen] [--vcpus N] [--console FILE] [--spin-us US]
 *               [--first-slot N] [--nic VIFSPEC]...
 *               [--disk PATH[,ro][,engine=auto|uring|aio|sync][,direct=0|1]]
 *
 * sim: the whole emulated platform: PCI host bridge (0xCF8/0xCFC), 16550A UART on 0x3F8 IRQ 4
 *      whose output goes to $SPLITXEN_RUN/console/<domid>.log (what `splitxen console` shows),
 *      and the Xen platform device with the unplug protocol on port 0x10.
 * xen: an additional ioreq server beside the default device model, which already provides the
 *      host bridge, the serial port and the platform device; only splitxen's own PCI devices
 *      (the e1000s and the AHCI controller, from slot 8 up unless --first-slot says otherwise)
 *      and the BARs the guest's firmware places for them are claimed there. Start it between
 *      `xl create -p` and unpause, so that the firmware finds the devices when it scans.
 * --disk: an AHCI disk on the image or block device PATH, read-only with `ro`. Its I/O engine
 * is blkback's (blkback/io.h), named as splitxen-blkback --engine names it: auto (the default:
 * sx_bio_kind_auto on the opened file), uring (io_uring), aio (libaio) or sync. direct=0
 * never opens the image O_DIRECT; direct=1 insists on it; without the key O_DIRECT is tried
 * and the page cache used where the file system refuses it. An engine or direct=1 that was
 * asked for and cannot be had fails the start (status 1) instead of falling back. The options
 * are the comma-separated words after PATH (`ro`, or KEY=VALUE whose VALUE has no '/'), in any
 * order; PATH may itself contain commas as long as what follows its last one does not look
 * like an option. An unknown key or a bad value is refused before anything is opened.
 * Runs until the domain dies or SIGTERM/SIGINT. Exit status: 0 ok, 1 failure, 2 usage.
 * Under systemd (Type=notify) it sends READY=1 once its ioreq server is enabled (the guest
 * can be unpaused) and STOPPING=1 when it ends.
 */
#define SX_LOG_MODULE "splitxen-dm"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "device-model/dm.h"
#include "device-model/ahci/ahci.h"
#include "device-model/e1000/e1000.h"
#include "log.h"
#include "xen-core/platform.h"
#include "version.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* --help: to stdout, status 0; a usage error: to stderr, status 2. */
static void usage_to(FILE *f, int status)
{
    fprintf(f, "usage: splitxen-dm --domid N [--platform sim|xen] [--vcpus N] "
                    "[--console FILE] [--spin-us US] [--first-slot N] [--nic VIFSPEC]...\n"
                    "                   [--disk PATH[,ro][,engine=auto|uring|aio|sync][,direct=0|1]]\n"
                    "  --first-slot  PCI slot the devices start at (default 1 on sim, 8 on xen)\n"
                    "  --nic   an emulated e1000 (vif spec: mac=, bridge=, vifname=, mtu=)\n"
                    "  --disk  an AHCI disk on the image: ro read-only; engine= blkback's I/O engine\n"
                    "          (default auto); direct=0 no O_DIRECT, direct=1 O_DIRECT or fail\n"
                    "          (default: O_DIRECT where the file system allows it)\n"
                    "       splitxen-dm --help | --version\n");
    exit(status);
}

static void usage(void) { usage_to(stderr, 2); }

/* An e1000's counters, printed when the device model exits (the tests read them). */
static void print_e1000_stats(const struct sx_e1000 *e, unsigned i)
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

#define DM_MAX_NICS 8
#define DM_MAX_DISKS 1

/* One --disk, parsed before anything is opened. */
struct dm_disk {
    char path[PATH_MAX];
    struct sx_ahci_cfg cfg;     /* .path points at path above */
    bool want_direct;           /* direct=1: O_DIRECT or fail */
};

static bool word_is(const char *w, size_t len, const char *word)
{
    return strlen(word) == len && !memcmp(w, word, len);
}

/* The engine names splitxen-blkback --engine takes. -1 for anything else. */
static int dm_engine_from_name(const char *name, size_t len)
{
    if (word_is(name, len, "uring") || word_is(name, len, "io_uring"))
        return SX_BIO_URING;
    if (word_is(name, len, "aio") || word_is(name, len, "libaio"))
        return SX_BIO_AIO;
    if (word_is(name, len, "sync"))
        return SX_BIO_SYNC;
    if (word_is(name, len, "auto"))
        return SX_BIO_AUTO;
    return -1;
}

/* Whether tok[0..len) reads as an option rather than the tail of a path with a comma in it:
 * a bare lowercase word (`ro`, or a misspelt flag, refused later) or KEY=VALUE with KEY
 * lowercase and no '/' in VALUE. */
static bool disk_opt_like(const char *tok, size_t len)
{
    size_t k = 0;
    while (k < len && ((tok[k] >= 'a' && tok[k] <= 'z') || tok[k] == '_'))
        k++;
    if (k == len)
        return len > 0;
    return k > 0 && tok[k] == '=' && !memchr(tok + k, '/', len - k);
}

/* Parse spec (PATH[,ro][,engine=E][,direct=0|1], see the header) into *d. 0, or -EINVAL
 * after a message on stderr that names the offending key. */
static int dm_parse_disk(const char *spec, struct dm_disk *d)
{
    size_t len = strlen(spec), plen = len;
    memset(d, 0, sizeof(*d));
    d->cfg = (struct sx_ahci_cfg){ .path = d->path, .devfn = -1, .engine = SX_BIO_AUTO };
    /* The options are the longest run of option-like words at the end. */
    for (;;) {
        size_t c = plen;
        while (c > 0 && spec[c - 1] != ',')
            c--;
        if (c == 0 || !disk_opt_like(spec + c, plen - c))
            break;
        plen = c - 1;
    }
    if (plen == 0 || plen >= sizeof(d->path)) {
        fprintf(stderr, "splitxen-dm: --disk '%s': expected PATH[,ro][,engine=E][,direct=0|1]\n",
                spec);
        return -EINVAL;
    }
    memcpy(d->path, spec, plen);
    d->path[plen] = 0;
    bool seen_ro = false, seen_engine = false, seen_direct = false, *seen;
    for (size_t pos = plen; pos < len;) {
        const char *key = spec + pos + 1;
        size_t tlen = strcspn(key, ",");
        pos += 1 + tlen;
        const char *eq = memchr(key, '=', tlen);
        size_t klen = eq ? (size_t)(eq - key) : tlen;
        const char *val = eq ? eq + 1 : "";
        int vlen = eq ? (int)(tlen - klen - 1) : 0;
        if (word_is(key, klen, "ro")) {
            if (eq) {
                fprintf(stderr, "splitxen-dm: --disk '%s': ro takes no value\n", spec);
                return -EINVAL;
            }
            seen = &seen_ro;
            d->cfg.read_only = true;
        } else if (word_is(key, klen, "engine") && eq) {
            int e = dm_engine_from_name(val, (size_t)vlen);
            if (e < 0) {
                fprintf(stderr, "splitxen-dm: --disk '%s': engine: '%.*s' is not one of auto, "
                                "uring, aio, sync\n", spec, vlen, val);
                return -EINVAL;
            }
            seen = &seen_engine;
            d->cfg.engine = (enum sx_bio_kind)e;
        } else if (word_is(key, klen, "direct") && eq) {
            if (!word_is(val, (size_t)vlen, "0") && !word_is(val, (size_t)vlen, "1")) {
                fprintf(stderr, "splitxen-dm: --disk '%s': direct: '%.*s' is not 0 or 1\n",
                        spec, vlen, val);
                return -EINVAL;
            }
            seen = &seen_direct;
            d->cfg.no_direct = val[0] == '0';
            d->want_direct = val[0] == '1';
        } else {
            fprintf(stderr, "splitxen-dm: --disk '%s': unknown option '%.*s' (ro, engine=, "
                            "direct=)\n", spec, (int)klen, key);
            return -EINVAL;
        }
        if (*seen) {
            fprintf(stderr, "splitxen-dm: --disk '%s': %.*s given twice\n", spec, (int)klen, key);
            return -EINVAL;
        }
        *seen = true;
    }
    return 0;
}

/* Emulated disks: an AHCI controller whose port 0 is the image of a --disk, on blkback's I/O
 * engine (chosen per target unless engine= says). What was asked for explicitly must be what
 * the disk got: the controller's own fallbacks (another engine, no O_DIRECT) fail here. */
static int dm_add_disk(struct sx_dm *dm, const struct dm_disk *d, struct sx_ahci **out)
{
    int rc = sx_ahci_add(dm, &d->cfg, out);
    if (rc < 0) {
        fprintf(stderr, "splitxen-dm: --disk %s: %s\n", d->path, strerror(-rc));
        return rc;
    }
    enum sx_bio_kind got = sx_ahci_engine(*out);
    if (d->cfg.engine != SX_BIO_AUTO && got != d->cfg.engine) {
        fprintf(stderr, "splitxen-dm: --disk %s: engine=%s is not available here (fell back to "
                        "%s)\n", d->path, sx_bio_kind_name(d->cfg.engine), sx_bio_kind_name(got));
        return -EOPNOTSUPP;
    }
    if (d->want_direct && !sx_ahci_direct(*out)) {
        fprintf(stderr, "splitxen-dm: --disk %s: direct=1 but the file system refuses O_DIRECT\n",
                d->path);
        return -EOPNOTSUPP;
    }
    printf("ready engine=%s direct=%d sectors=%" PRIu64 "\n", sx_bio_kind_name(got),
           sx_ahci_direct(*out), sx_ahci_sectors(*out));
    fflush(stdout);
    return 0;
}

static void print_ahci_stats(const struct sx_ahci *a)
{
    const struct sx_ahci_stats *s = sx_ahci_stats(a);
    printf("ahci cmds=%" PRIu64 " reads=%" PRIu64 " writes=%" PRIu64 " ncq=%" PRIu64
           " flushes=%" PRIu64 " trims=%" PRIu64 " identifies=%" PRIu64 " failed=%" PRIu64
           " bounced=%" PRIu64 " irqs=%" PRIu64 " resets=%" PRIu64 "\n",
           s->cmds, s->reads, s->writes, s->ncq, s->flushes, s->trims, s->identifies, s->failed,
           s->bounced, s->irqs, s->resets);
    fflush(stdout);
}

static int open_console(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' },
        { "platform", required_argument, NULL, 'p' },
        { "vcpus", required_argument, NULL, 'v' },
        { "console", required_argument, NULL, 'c' },
        { "spin-us", required_argument, NULL, 's' },
        { "nic", required_argument, NULL, 'n' },
        { "disk", required_argument, NULL, 'k' },
        { "first-slot", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    long domid = -1, vcpus = 0, spin_us = 20, first_slot = -1;
    const char *plat_name = "sim", *console = NULL;
    const char *nics[DM_MAX_NICS] = { 0 };
    static struct dm_disk disks[DM_MAX_DISKS];
    unsigned nnics = 0, ndisks = 0;
    struct sx_e1000 *nic_dev[DM_MAX_NICS] = { 0 };
    struct sx_ahci *disk_dev = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "d:p:v:c:s:n:k:f:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            domid = strtol(optarg, &end, 10);
            if (*end || domid < 1 || domid >= DOMID_FIRST_RESERVED)
                usage();
            break;
        case 'p':
            plat_name = optarg;
            break;
        case 'v':
            vcpus = strtol(optarg, &end, 10);
            if (*end || vcpus < 1 || vcpus > SX_IOREQ_MAX_VCPUS)
                usage();
            break;
        case 'c':
            console = optarg;
            break;
        case 's':
            spin_us = strtol(optarg, &end, 10);
            if (*end || spin_us < 0 || spin_us > 10000)
                usage();
            break;
        case 'f':
            first_slot = strtol(optarg, &end, 10);
            if (*end || first_slot < 1 || first_slot > 31)
                usage();
            break;
        case 'n':
            if (nnics == DM_MAX_NICS) {
                fprintf(stderr, "splitxen-dm: at most %d --nic\n", DM_MAX_NICS);
                return 2;
            }
            nics[nnics++] = optarg;
            break;
        case 'k':
            if (ndisks == DM_MAX_DISKS) {
                fprintf(stderr, "splitxen-dm: at most %d --disk\n", DM_MAX_DISKS);
                return 2;
            }
            if (dm_parse_disk(optarg, &disks[ndisks]) < 0)
                usage();
            ndisks++;
            break;
        case 'h':
            usage_to(stdout, 0);
            break;
        case 'V':
            return sx_print_version("splitxen-dm");
        default:
            usage();
        }
    }
    if (domid < 0 || optind != argc)
        usage();
    int kind = sx_plat_kind_from_name(plat_name);
    if (kind < 0)
        usage();
    if (kind == SX_PLAT_XEN && vcpus == 0) {
        fprintf(stderr, "splitxen-dm: --vcpus is needed on xen\n");
        return 2;
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1, rc, con_fd = -1;
    struct sx_plat *plat = NULL;
    struct sx_dm *dm = NULL;
    struct sx_ioreq *r = NULL;
    rc = sx_plat_open(&plat, (enum sx_plat_kind)kind, 0, NULL);
    if (rc < 0) {
        fprintf(stderr, "splitxen-dm: platform %s: %s\n", plat_name, strerror(-rc));
        goto out;
    }
    rc = sx_dm_open(&dm, (domid_t)domid);
    if (rc < 0)
        goto fail;
    sx_dm_set_spin(dm, (unsigned)spin_us);
    if (first_slot < 0)
        first_slot = kind == SX_PLAT_XEN ? 8 : 1;
    sx_dm_set_first_slot(dm, (unsigned)first_slot);
    char path[PATH_MAX];
    if (kind == SX_PLAT_SIM) {
        if (!console) {
            snprintf(path, sizeof(path), "%s/console", sx_run_dir());
            if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                rc = -errno;
                goto fail;
            }
            snprintf(path, sizeof(path), "%s/console/%ld.log", sx_run_dir(), domid);
            console = path;
        }
        con_fd = open_console(console);
        if (con_fd < 0) {
            rc = con_fd;
            fprintf(stderr, "splitxen-dm: console %s: %s\n", console, strerror(-rc));
            goto out;
        }
        rc = sx_dm_pci_host_add(dm);
        if (rc == 0)
            rc = sx_uart_add(dm, 0x3f8, 4, con_fd, NULL);
        if (rc == 0)
            rc = sx_xen_platform_add(dm, -1, true, NULL);
        if (rc < 0)
            goto fail;
    }
    /* Emulated NICs: an e1000 per --nic (a vif spec: mac=, bridge=, ...), its world side a
     * TAP hvm<domid>.<n> on the bridge. */
    for (unsigned i = 0; i < nnics; i++) {
        struct sx_e1000_cfg nc;
        rc = sx_e1000_parse_vif(nics[i], i, &nc, NULL);
        if (rc < 0) {
            fprintf(stderr, "splitxen-dm: --nic '%s': %s\n", nics[i], strerror(-rc));
            goto out;
        }
        rc = sx_e1000_add(dm, &nc, &nic_dev[i]);
        if (rc < 0) {
            fprintf(stderr, "splitxen-dm: e1000 for '%s': %s\n", nics[i], strerror(-rc));
            goto out;
        }
    }
    for (unsigned i = 0; i < ndisks; i++)
        if ((rc = dm_add_disk(dm, &disks[i], &disk_dev)) < 0)
            goto out;
    struct sx_ioreq_opts o = { .domid = (domid_t)domid, .nr_vcpus = (unsigned)vcpus,
                               .handler = sx_dm_ioreq_handler, .opaque = dm };
    rc = sx_ioreq_open(&r, plat, &o);
    if (rc < 0) {
        fprintf(stderr, "splitxen-dm: ioreq server for dom%ld: %s\n", domid, strerror(-rc));
        goto out;
    }
    rc = sx_dm_set_ioreq(dm, r);
    if (rc == 0)
        rc = sx_ioreq_enable(r);
    if (rc < 0)
        goto fail;
    sx_info("serving dom%ld on %s (%u devices)", domid, plat_name, sx_dm_nr_devices(dm));
    sd_notifyf(0, "READY=1\nSTATUS=serving dom%ld (%u devices)", domid, sx_dm_nr_devices(dm));
    rc = sx_dm_run(dm, &stop_flag);
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    if (rc < 0)
        goto fail;
    const struct sx_ioreq_stats *s = sx_ioreq_stats(r);
    sx_info("dom%ld: %" PRIu64 " requests (%" PRIu64 " pio, %" PRIu64 " mmio, %" PRIu64
            " pci), %" PRIu64 " malformed, %" PRIu64 " unclaimed",
            domid, s->handled, s->pio, s->mmio, s->pci_config,
            s->bad_size + s->bad_count + s->bad_ptr + s->bad_type + s->bad_state +
                s->bad_addr,
            s->unclaimed);
    if (kind == SX_PLAT_XEN)
        sx_info("dom%ld: DMA mapcache %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                " exact, %" PRIu64 " partial, %" PRIu64 " evictions, %" PRIu64 " invalidations",
                domid, s->mapcache_hits, s->mapcache_misses, s->mapcache_exact,
                s->mapcache_partial, s->mapcache_evictions, s->mapcache_invalidations);
    ret = 0;
    goto out;
fail:
    fprintf(stderr, "splitxen-dm: dom%ld: %s\n", domid, strerror(-rc));
out:
    /* NICs are removed all together by an unplug; print only while they exist. */
    if (dm && sx_dm_dev_find(dm, "e1000"))
        for (unsigned i = 0; i < nnics; i++)
            if (nic_dev[i])
                print_e1000_stats(nic_dev[i], i);
    if (dm && disk_dev && sx_dm_dev_find(dm, "ahci"))
        print_ahci_stats(disk_dev);
    if (dm)   /* sx_dm_set_ioreq is not NULL-safe; dm is NULL when the platform failed */
        sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(r);
    sx_plat_close(plat);
    if (con_fd >= 0)
        close(con_fd);
    return ret;
}
