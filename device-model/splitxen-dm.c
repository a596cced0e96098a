/*
 * splitxen-dm: the device model of one HVM domain (the qemu-dm role).
 *
 *   splitxen-dm --domid N [--platform sim|xen] [--vcpus N] [--console FILE] [--spin-us US]
 *               [--first-slot N] [--nic VIFSPEC]...
 *               [--disk PATH[,ro][,engine=auto|uring|aio|sync|mem][,direct=0|1]]
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
 * is blkback's (blkio/blkio.h), named as splitxen-blkback --engine names it: auto (the default:
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
#include <unistd.h>

#include "device-model/dm.h"
#include "device-model/ahci/ahci.h"
#include "device-model/e1000/e1000.h"
#include "log.h"
#include "notify.h"
#include "rundir.h"
#include "platform/platform.h"
#include "version.h"

static atomic_int stop_flag;   /* lock-free, so the signal handler may set it */

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* --help: to stdout, status 0; a usage error: to stderr, status 2. */
static void usage_to(FILE *f, int status)
{
    fprintf(f, "usage: splitxen-dm --domid N [--platform sim|xen] [--vcpus N] "
                    "[--console FILE] [--spin-us US] [--first-slot N] [--nic VIFSPEC]...\n"
                    "                   [--disk PATH[,ro][,engine=auto|uring|aio|sync|mem][,direct=0|1]]\n"
                    "  --first-slot  PCI slot the devices start at (default 1 on sim, 8 on xen)\n"
                    "  --nic   an emulated e1000 (vif spec: mac=, bridge=, vifname=, mtu=)\n"
                    "  --disk  an AHCI disk on the image: ro read-only; engine= the blkio engine\n"
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
    if (word_is(name, len, "mem"))
        return SX_BIO_MEM;
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

/* Emulated disks: an AHCI controller whose port 0 is the image of a --disk, on a blkio
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

/* What the command line asks for. */
struct dm_args {
    long domid, vcpus, spin_us, first_slot;
    const char *plat_name, *console;
    const char *nics[DM_MAX_NICS];
    struct dm_disk disks[DM_MAX_DISKS];
    unsigned nnics, ndisks;
    enum sx_plat_kind kind;
    const struct sx_plat_traits *traits;
};

/* What main sets up, each field invalid until its step succeeds; dm_teardown undoes them. */
struct dm_state {
    struct sx_plat *plat;
    struct sx_dm *dm;
    struct sx_ioreq *r;
    int con_fd;
    char console[PATH_MAX];
    struct sx_e1000 *nic_dev[DM_MAX_NICS];
    struct sx_ahci *disk_dev;
};

/* Returns 0, or the status to exit with (a bad command line: usage() exits by itself). */
static int parse_args(int argc, char **argv, struct dm_args *a)
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
    a->domid = -1;
    a->spin_us = 20;
    a->first_slot = -1;
    a->plat_name = "sim";
    int c;
    while ((c = getopt_long(argc, argv, "d:p:v:c:s:n:k:f:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            a->domid = strtol(optarg, &end, 10);
            if (*end || a->domid < 1 || a->domid >= DOMID_FIRST_RESERVED)
                usage();
            break;
        case 'p':
            a->plat_name = optarg;
            break;
        case 'v':
            a->vcpus = strtol(optarg, &end, 10);
            if (*end || a->vcpus < 1 || a->vcpus > SX_IOREQ_MAX_VCPUS)
                usage();
            break;
        case 'c':
            a->console = optarg;
            break;
        case 's':
            a->spin_us = strtol(optarg, &end, 10);
            if (*end || a->spin_us < 0 || a->spin_us > 10000)
                usage();
            break;
        case 'f':
            a->first_slot = strtol(optarg, &end, 10);
            if (*end || a->first_slot < 1 || a->first_slot > 31)
                usage();
            break;
        case 'n':
            if (a->nnics == DM_MAX_NICS) {
                fprintf(stderr, "splitxen-dm: at most %d --nic\n", DM_MAX_NICS);
                return 2;
            }
            a->nics[a->nnics++] = optarg;
            break;
        case 'k':
            if (a->ndisks == DM_MAX_DISKS) {
                fprintf(stderr, "splitxen-dm: at most %d --disk\n", DM_MAX_DISKS);
                return 2;
            }
            if (dm_parse_disk(optarg, &a->disks[a->ndisks]) < 0)
                usage();
            a->ndisks++;
            break;
        case 'h':
            usage_to(stdout, 0);
            break;
        case 'V':
            exit(sx_print_version("splitxen-dm"));
        default:
            usage();
        }
    }
    if (a->domid < 0 || optind != argc)
        usage();
    int kind = sx_plat_kind_from_name(a->plat_name);
    if (kind < 0)
        usage();
    a->kind = (enum sx_plat_kind)kind;
    a->traits = sx_plat_traits(a->kind);
    if (!a->traits->vcpus_known && a->vcpus == 0) {
        fprintf(stderr, "splitxen-dm: --vcpus is needed on xen\n");
        return 2;
    }
    if (a->first_slot < 0)
        a->first_slot = a->traits->companion_dm ? 8 : 1;
    return 0;
}

/* Without a companion device model (sim), ours is the whole platform: the PCI host bridge, a
 * 16550A whose output is the console log, the Xen platform device. 0 or -errno (logged). */
static int add_base_devices(const struct dm_args *a, struct dm_state *d)
{
    int rc;
    const char *console = a->console;
    if (!console) {
        snprintf(d->console, sizeof(d->console), "%s/console", sx_run_dir());
        if (mkdir(d->console, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            fprintf(stderr, "splitxen-dm: %s: %s\n", d->console, strerror(-rc));
            return rc;
        }
        snprintf(d->console, sizeof(d->console), "%s/console/%ld.log", sx_run_dir(), a->domid);
        console = d->console;
    }
    d->con_fd = open_console(console);
    if (d->con_fd < 0) {
        fprintf(stderr, "splitxen-dm: console %s: %s\n", console, strerror(-d->con_fd));
        return d->con_fd;
    }
    rc = sx_dm_pci_host_add(d->dm);
    if (rc == 0)
        rc = sx_uart_add(d->dm, 0x3f8, 4, d->con_fd, NULL);
    if (rc == 0)
        rc = sx_xen_platform_add(d->dm, -1, true, NULL);
    if (rc < 0)
        fprintf(stderr, "splitxen-dm: dom%ld: %s\n", a->domid, strerror(-rc));
    return rc;
}

/* Emulated NICs: an e1000 per --nic (a vif spec: mac=, bridge=, ...), its world side a TAP
 * hvm<domid>.<n> on the bridge; an AHCI disk per --disk. 0 or -errno (logged). */
static int add_devices(const struct dm_args *a, struct dm_state *d)
{
    int rc;
    for (unsigned i = 0; i < a->nnics; i++) {
        struct sx_e1000_cfg nc;
        rc = sx_e1000_parse_vif(a->nics[i], i, &nc, NULL);
        if (rc < 0) {
            fprintf(stderr, "splitxen-dm: --nic '%s': %s\n", a->nics[i], strerror(-rc));
            return rc;
        }
        rc = sx_e1000_add(d->dm, &nc, &d->nic_dev[i]);
        if (rc < 0) {
            fprintf(stderr, "splitxen-dm: e1000 for '%s': %s\n", a->nics[i], strerror(-rc));
            return rc;
        }
    }
    for (unsigned i = 0; i < a->ndisks; i++)
        if ((rc = dm_add_disk(d->dm, &a->disks[i], &d->disk_dev)) < 0)
            return rc;
    return 0;
}

/* The ioreq server for the domain, serving until a signal or the domain's end, then its
 * counters. 0 or -errno (logged). */
static int serve(const struct dm_args *a, struct dm_state *d)
{
    struct sx_ioreq_opts o = { .domid = (domid_t)a->domid, .nr_vcpus = (unsigned)a->vcpus,
                               .handler = sx_dm_ioreq_handler, .opaque = d->dm };
    int rc = sx_ioreq_open(&d->r, d->plat, &o);
    if (rc < 0) {
        d->r = NULL;
        fprintf(stderr, "splitxen-dm: ioreq server for dom%ld: %s\n", a->domid, strerror(-rc));
        return rc;
    }
    rc = sx_dm_set_ioreq(d->dm, d->r);
    if (rc == 0)
        rc = sx_ioreq_enable(d->r);
    if (rc == 0) {
        sx_info("serving dom%ld on %s (%u devices)", a->domid, a->plat_name,
                sx_dm_nr_devices(d->dm));
        sx_notify_ready("serving dom%ld (%u devices)", a->domid, sx_dm_nr_devices(d->dm));
        rc = sx_dm_run(d->dm, &stop_flag);
        sx_notify_stopping();
    }
    if (rc < 0) {
        fprintf(stderr, "splitxen-dm: dom%ld: %s\n", a->domid, strerror(-rc));
        return rc;
    }
    const struct sx_ioreq_stats *s = sx_ioreq_stats(d->r);
    sx_info("dom%ld: %" PRIu64 " requests (%" PRIu64 " pio, %" PRIu64 " mmio, %" PRIu64
            " pci), %" PRIu64 " malformed, %" PRIu64 " unclaimed",
            a->domid, s->handled, s->pio, s->mmio, s->pci_config,
            s->bad_size + s->bad_count + s->bad_ptr + s->bad_type + s->bad_state +
                s->bad_addr,
            s->unclaimed);
    if (a->traits->dma_mapcache)
        sx_info("dom%ld: DMA mapcache %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                " exact, %" PRIu64 " partial, %" PRIu64 " evictions, %" PRIu64 " invalidations",
                a->domid, s->mapcache_hits, s->mapcache_misses, s->mapcache_exact,
                s->mapcache_partial, s->mapcache_evictions, s->mapcache_invalidations);
    return 0;
}

static void dm_teardown(const struct dm_args *a, struct dm_state *d)
{
    /* NICs are removed all together by an unplug; print only while they exist. */
    if (d->dm && sx_dm_dev_find(d->dm, "e1000"))
        for (unsigned i = 0; i < a->nnics; i++)
            if (d->nic_dev[i])
                print_e1000_stats(d->nic_dev[i], i);
    if (d->dm && d->disk_dev && sx_dm_dev_find(d->dm, "ahci"))
        print_ahci_stats(d->disk_dev);
    if (d->dm)   /* sx_dm_set_ioreq is not NULL-safe; dm is NULL when the platform failed */
        sx_dm_set_ioreq(d->dm, NULL);
    sx_dm_close(d->dm);
    sx_ioreq_close(d->r);
    sx_plat_close(d->plat);
    if (d->con_fd >= 0)
        close(d->con_fd);
}

int main(int argc, char **argv)
{
    static struct dm_args a;    /* the disk specs are large */
    int ret = parse_args(argc, argv, &a);
    if (ret)
        return ret;

    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static struct dm_state d = { .con_fd = -1 };
    int rc = sx_plat_open(&d.plat, a.kind, 0, NULL);
    if (rc < 0) {
        d.plat = NULL;
        fprintf(stderr, "splitxen-dm: platform %s: %s\n", a.plat_name, strerror(-rc));
    } else if ((rc = sx_dm_open(&d.dm, (domid_t)a.domid)) < 0) {
        d.dm = NULL;
        fprintf(stderr, "splitxen-dm: dom%ld: %s\n", a.domid, strerror(-rc));
    } else {
        sx_dm_set_spin(d.dm, (unsigned)a.spin_us);
        sx_dm_set_first_slot(d.dm, (unsigned)a.first_slot);
        if ((a.traits->companion_dm || (rc = add_base_devices(&a, &d)) == 0) &&
            (rc = add_devices(&a, &d)) == 0)
            rc = serve(&a, &d);
    }
    dm_teardown(&a, &d);
    return rc < 0 ? 1 : 0;
}
