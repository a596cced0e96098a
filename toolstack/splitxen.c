/*
 * splitxen: the sim platform's toolstack CLI, shaped like xl.
 *
 *   splitxen up [--dom0-mem MiB]        start splitxen-core (with xenstored) in $SPLITXEN_RUN
 *   splitxen down                        stop it
 *   splitxen create FILE.cfg [-p] [-w]   create a domain from an xl.cfg (-p: leave it paused,
 *                                        -w: wait until its backends connect)
 *   splitxen list
 *   splitxen destroy NAME|ID
 *   splitxen console NAME|ID [-f]     an HVM domain's serial output (its device model's log)
 *   splitxen pause|unpause NAME|ID
 *   splitxen block-attach DOM SPEC       SPEC in xl-disk-configuration syntax
 *   splitxen block-detach DOM VDEV
 *   splitxen network-attach DOM SPEC     SPEC in xl-network-configuration syntax
 *   splitxen network-detach DOM DEVID|MAC
 *   splitxen save [-c] DOM FILE / restore [-p] FILE
 *   splitxen migrate [--live] DOM HOST[:PORT] / migrate-receive [[ADDR:]PORT]   (migrate.c)
 *
 * Domains live in splitxen-core (libsxcore's client); their xenstore nodes are written over
 * libxenstore to the core's xenstored ($XENSTORED_PATH, default $SPLITXEN_RUN/xenstored/socket)
 * with the layout libxl uses (layout.h). `create` parses everything before it touches
 * anything, and on any later failure destroys the domain and removes its nodes again.
 * Exit status: 0 ok, 1 failure, 2 usage.
 */
#define SX_LOG_MODULE "splitxen"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#include "clock.h"
#include "log.h"
#include "rundir.h"
#include "xen-core/core.h"
#include "platform/platform.h"
#include "toolstack/cmd.h"
#include "toolstack/layout.h"
#include "toolstack/top.h"
#include "toolstack/xlcfg.h"
#include "version.h"

#define MAX_DOMAINS 1024

static const char *prog = "splitxen";

/* help: to stdout, status 0; a usage error: to stderr, status 2. */
static void usage_exit(FILE *f, int status)
{
    fprintf(f,
            "usage: splitxen COMMAND [ARGS]\n"
            "       splitxen --help | --version\n"
            "  up [--dom0-mem MiB]            start splitxen-core in $SPLITXEN_RUN (%s)\n"
            "  down                           stop it\n"
            "  create FILE.cfg [-p] [-w]      create a domain (-p: leave it paused;\n"
            "                                 -w: wait for its backends to connect)\n"
            "  list                           list domains\n"
            "  top [--batch|--json|--prometheus [--textfile DIR]] [-d S] [-n N]\n"
            "                                 domains, vbds and vifs: live, or for scripts\n"
            "                                 (splitxen top --help)\n"
            "  destroy NAME|ID                destroy a domain and remove its xenstore nodes\n"
            "  console NAME|ID [-f]           show (-f: follow) an HVM domain's serial output\n"
            "  pause NAME|ID / unpause NAME|ID\n"
            "  block-attach DOM SPEC [-w]     attach a disk (xl-disk-configuration syntax)\n"
            "  block-detach DOM VDEV          detach a disk\n"
            "  network-attach DOM SPEC [-w]   attach a vif (xl-network-configuration syntax)\n"
            "  network-detach DOM DEVID|MAC   detach a vif\n"
            "  save [-c] DOM FILE             suspend DOM into FILE and destroy it (-c: it goes on)\n"
            "  restore [-p] FILE              create the domain saved in FILE again\n"
            "  migrate [--live] DOM HOST[:PORT]  move DOM to the splitxen-core of HOST\n"
            "  migrate-receive [[ADDR:]PORT]  take one incoming domain (port 8002)\n",
            sx_run_dir());
    exit(status);
}

static void die_usage(void) { usage_exit(stderr, 2); }

static enum sx_cfg_domtype domain_type(struct xs_handle *xs, unsigned domid)
{
    char *t = sx_cmd_xs_read(xs, "/libxl/%u/type", domid);
    enum sx_cfg_domtype r = t && !strcmp(t, "hvm") ? SX_CFG_HVM : SX_CFG_PV;
    free(t);
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* up / down */

static int core_bin(char *buf, size_t len)
{
    return sx_cmd_sibling_bin(buf, len, "splitxen-core", "SPLITXEN_CORE_BIN");
}

static bool core_alive(void)
{
    struct sxc_conn *c;
    if (sxc_connect(&c, NULL, 0) < 0)
        return false;
    sxc_disconnect(c);
    return true;
}

static int cmd_up(int argc, char **argv)
{
    const char *dom0_mem = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dom0-mem") && i + 1 < argc)
            dom0_mem = argv[++i];
        else
            die_usage();
    }
    const char *dir = sx_run_dir();
    if (core_alive()) {
        printf("splitxen-core already running in %s\n", dir);
        return 0;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "%s: mkdir %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    char bin[PATH_MAX], logf[PATH_MAX], pidf[PATH_MAX], xsp[PATH_MAX];
    core_bin(bin, sizeof(bin));
    sx_cmd_run_file(logf, sizeof(logf), "core.log");
    sx_cmd_run_file(pidf, sizeof(pidf), "core.pid");
    sx_xenstored_path(xsp, sizeof(xsp), 0);

    char *args[8];
    int a = 0;
    args[a++] = bin;
    args[a++] = "--run-dir";
    args[a++] = (char *)dir;
    if (dom0_mem) {
        args[a++] = "--dom0-mem";
        args[a++] = (char *)dom0_mem;
    }
    args[a] = NULL;
    pid_t pid = sx_cmd_spawn(args, logf, NULL);
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
        return 1;
    }
    FILE *pf = fopen(pidf, "w");
    if (pf) {
        fprintf(pf, "%d\n", (int)pid);
        fclose(pf);
    }
    long timeout = sx_cmd_env_long("SPLITXEN_UP_TIMEOUT", 10, 1, 600) * 1000;
    int64_t deadline = (int64_t)sx_now_ms() + timeout;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "%s: splitxen-core exited (status %d) during start-up; see %s\n",
                    prog, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                    logf);
            unlink(pidf);
            return 1;
        }
        if (core_alive() && access(xsp, F_OK) == 0)
            break;
        if ((int64_t)sx_now_ms() >= deadline) {
            fprintf(stderr, "%s: splitxen-core did not come up within %lds; see %s\n", prog,
                    timeout / 1000, logf);
            kill(pid, SIGTERM);
            unlink(pidf);
            return 1;
        }
        usleep(10000);
    }
    printf("splitxen-core running in %s (pid %d)\n", dir, (int)pid);
    return 0;
}

static int cmd_down(int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        die_usage();
    char pidf[PATH_MAX];
    sx_cmd_run_file(pidf, sizeof(pidf), "core.pid");
    FILE *f = fopen(pidf, "r");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 1) {
        if (f)
            fclose(f);
        if (core_alive()) {
            fprintf(stderr, "%s: splitxen-core is running in %s but not started by `splitxen "
                            "up` (no %s)\n", prog, sx_run_dir(), pidf);
            return 1;
        }
        printf("splitxen-core is not running in %s\n", sx_run_dir());
        return 0;
    }
    fclose(f);
    if (kill(pid, SIGTERM) < 0 && errno == ESRCH) {
        unlink(pidf);
        printf("splitxen-core is not running in %s\n", sx_run_dir());
        return 0;
    }
    int64_t deadline = (int64_t)sx_now_ms() + sx_cmd_env_long("SPLITXEN_UP_TIMEOUT", 10, 1, 600) * 1000;
    while (kill(pid, 0) == 0) {
        /* our child only if `up` ran in this process tree; reap if so, else just poll */
        waitpid(pid, NULL, WNOHANG);
        if ((int64_t)sx_now_ms() >= deadline) {
            fprintf(stderr, "%s: splitxen-core (pid %d) ignored SIGTERM; killing it\n", prog,
                    pid);
            kill(pid, SIGKILL);
            break;
        }
        usleep(10000);
    }
    unlink(pidf);
    printf("splitxen-core stopped\n");
    return 0;
}

static int cmd_create(int argc, char **argv)
{
    const char *file = NULL;
    bool paused = false, wait_be = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p"))
            paused = true;
        else if (!strcmp(argv[i], "-w"))
            wait_be = true;
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            die_usage();
    }
    if (!file)
        die_usage();

    struct sx_domcfg *cfg = NULL;
    struct sxc_conn *core = NULL;
    struct xs_handle *xs = NULL;
    int domid = -1, rc;
    pid_t dm_pid = -1;
    char err[1024];

    fprintf(stderr, "Parsing config from %s\n", file);
    rc = sx_cfg_parse_file(file, &cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s\n", err[0] ? err : strerror(-rc));
        goto out;
    }
    if ((rc = sx_cmd_core_connect(&core)) < 0)
        goto out;
    if (!(xs = sx_cmd_store_open())) {
        rc = -EIO;
        goto out;
    }
    domid = sx_cmd_build_domain(core, xs, cfg, file, NULL, wait_be, &dm_pid);
    if (domid < 0) {
        rc = domid;
        goto out;
    }
    if (!paused && (rc = sxc_domain_unpause(core, (domid_t)domid)) < 0) {
        fprintf(stderr, "%s: unpausing domain %d: %s\n", prog, domid, strerror(-rc));
        if (dm_pid > 0)
            kill(dm_pid, SIGTERM);
        sx_cmd_unbuild_domain(core, xs, domid);
        goto out;
    }
    printf("created domain '%s' (domid %d)%s\n", cfg->name, domid, paused ? ", paused" : "");
    rc = 0;
out:
    if (xs)
        xs_close(xs);
    sxc_disconnect(core);
    sx_cfg_free(cfg);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

static const char *state_name(uint32_t s)
{
    switch (s) {
    case SXD_STATE_RUNNING: return "r-----";
    case SXD_STATE_PAUSED: return "--p---";
    case SXD_STATE_DYING: return "-----d";
    case SXD_STATE_SUSPENDED: return "---s--";
    default: return "------";
    }
}

static int cmd_list(int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        die_usage();
    struct sxc_conn *core;
    if (sx_cmd_core_connect(&core) < 0)
        return 1;
    struct sxc_dominfo *infos = calloc(MAX_DOMAINS, sizeof(*infos));
    int n = infos ? sxc_domain_list(core, infos, MAX_DOMAINS) : -ENOMEM;
    if (n < 0) {
        fprintf(stderr, "%s: list: %s\n", prog, strerror(-n));
        free(infos);
        sxc_disconnect(core);
        return 1;
    }
    if (n > MAX_DOMAINS)
        n = MAX_DOMAINS;
    printf("%-32s %5s %7s %5s %-6s %s\n", "Name", "ID", "Mem", "VCPUs", "State", "Type");
    for (int i = 0; i < n; i++)
        printf("%-32.*s %5u %7" PRIu64 " %5u %-6s %s\n", (int)sizeof(infos[i].name),
               infos[i].name, infos[i].domid, infos[i].mem_mb, infos[i].vcpus,
               state_name(infos[i].state), infos[i].type == SXD_TYPE_HVM ? "hvm" : "pv");
    free(infos);
    sxc_disconnect(core);
    return 0;
}

static int cmd_destroy(int argc, char **argv)
{
    if (argc != 2)
        die_usage();
    struct sx_domcmd d;
    int ret = 1;
    if (sx_cmd_dom_open(&d, argv[1], true) < 0)
        goto out;
    ret = sx_cmd_unbuild_domain(d.core, d.xs, d.domid) < 0;
out:
    sx_cmd_dom_close(&d);
    return ret;
}

static int cmd_pause(int argc, char **argv, bool pause)
{
    if (argc != 2)
        die_usage();
    struct sx_domcmd d;
    int ret = 1;
    if (sx_cmd_dom_open(&d, argv[1], false) < 0)
        goto out;
    int rc = pause ? sxc_domain_pause(d.core, (domid_t)d.domid)
                   : sxc_domain_unpause(d.core, (domid_t)d.domid);
    if (rc < 0)
        fprintf(stderr, "%s: %s %d: %s\n", prog, pause ? "pause" : "unpause", d.domid,
                strerror(-rc));
    ret = rc < 0;
out:
    sx_cmd_dom_close(&d);
    return ret;
}

static int attach(struct sx_domcmd *d, struct sx_layout *l, const char *kind, uint32_t devid,
                  bool wait_be)
{
    char *exists = sx_cmd_xs_read(d->xs, "/libxl/%d/device/%s/%u", d->domid, kind, devid);
    if (exists) {
        free(exists);
        fprintf(stderr, "%s: domain %d already has %s device %u\n", prog, d->domid, kind,
                devid);
        return -EEXIST;
    }
    int rc = sx_layout_apply(d->xs, l);
    if (rc) {
        fprintf(stderr, "%s: writing xenstore: %s\n", prog, strerror(-rc));
        return rc;
    }
    if (wait_be && (rc = sx_cmd_wait_connected(d->xs, l))) {
        sx_cmd_devices_close(d->xs, (unsigned)d->domid);
        sx_layout_unapply(d->xs, l);
        return rc;
    }
    return 0;
}

static int cmd_block_attach(int argc, char **argv)
{
    bool wait_be = argc == 4 && !strcmp(argv[3], "-w");
    if (argc != 3 && !wait_be)
        die_usage();
    struct sx_domcmd d;
    struct sx_cfg_disk disk = { 0 };
    struct sx_layout l;
    char err[1024];
    int ret = 1, be;
    sx_layout_init(&l);
    if (sx_cfg_parse_disk(argv[2], "block-attach", 0, &disk, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        d.core = NULL, d.xs = NULL;
        goto out;
    }
    if (sx_cmd_dom_open(&d, argv[1], true) < 0)
        goto out;
    if ((be = sx_cmd_resolve_backend(d.core, disk.backend, "block-attach", 0, "disk")) < 0)
        goto out;
    if (sx_layout_add_vbd(&l, (uint32_t)d.domid, (uint32_t)be,
                          domain_type(d.xs, (unsigned)d.domid), &disk))
        goto out;
    ret = attach(&d, &l, "vbd", disk.devid, wait_be) ? 1 : 0;
out:
    sx_layout_clear(&l);
    sx_cfg_disk_clear(&disk);
    sx_cmd_dom_close(&d);
    return ret;
}

static int detach(struct sx_domcmd *d, const char *kind, uint32_t devid)
{
    char *b = sx_cmd_xs_read(d->xs, "/libxl/%d/device/%s/%u/backend", d->domid, kind, devid);
    if (!b) {
        fprintf(stderr, "%s: domain %d has no %s device %u\n", prog, d->domid, kind, devid);
        return -ENOENT;
    }
    if (!strncmp(b, "/local/domain/", 14))
        sx_cmd_device_close(d->xs, b);
    free(b);
    int rc = sx_layout_remove_device(d->xs, (uint32_t)d->domid, kind, devid);
    if (rc)
        fprintf(stderr, "%s: removing %s %u: %s\n", prog, kind, devid, strerror(-rc));
    return rc;
}

static int cmd_block_detach(int argc, char **argv)
{
    if (argc != 3)
        die_usage();
    struct sx_domcmd d;
    int ret = 1;
    long devid = sx_cfg_vdev_to_devid(argv[2]);
    if (devid < 0) {
        fprintf(stderr, "%s: block-detach: '%s' is not a virtual device\n", prog, argv[2]);
        return 1;
    }
    if (sx_cmd_dom_open(&d, argv[1], true) < 0)
        goto out;
    ret = detach(&d, "vbd", (uint32_t)devid) ? 1 : 0;
out:
    sx_cmd_dom_close(&d);
    return ret;
}

static int next_vif_devid(struct xs_handle *xs, int domid)
{
    char path[64];
    unsigned n;
    int next = 0;
    snprintf(path, sizeof(path), "/libxl/%d/device/vif", domid);
    char **devs = xs_directory(xs, XBT_NULL, path, &n);
    for (unsigned i = 0; devs && i < n; i++) {
        int v = atoi(devs[i]);
        if (v >= next)
            next = v + 1;
    }
    free(devs);
    return next;
}

static int cmd_network_attach(int argc, char **argv)
{
    bool wait_be = argc == 4 && !strcmp(argv[3], "-w");
    if (argc != 3 && !wait_be)
        die_usage();
    struct sx_domcmd d;
    struct sx_cfg_vif vif = { 0 };
    struct sx_layout l;
    char err[1024];
    int ret = 1, be;
    sx_layout_init(&l);
    if (sx_cmd_dom_open(&d, argv[1], true) < 0)
        goto out;
    if (sx_cfg_parse_vif(argv[2], "network-attach", 0, next_vif_devid(d.xs, d.domid), &vif,
                         err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if ((be = sx_cmd_resolve_backend(d.core, vif.backend, "network-attach", 0, "vif")) < 0)
        goto out;
    if (sx_layout_add_vif(&l, (uint32_t)d.domid, (uint32_t)be, &vif))
        goto out;
    ret = attach(&d, &l, "vif", (uint32_t)vif.devid, wait_be) ? 1 : 0;
    if (!ret)
        printf("vif devid %d\n", vif.devid);
out:
    sx_layout_clear(&l);
    sx_cfg_vif_clear(&vif);
    sx_cmd_dom_close(&d);
    return ret;
}

static int cmd_network_detach(int argc, char **argv)
{
    if (argc != 3)
        die_usage();
    struct sx_domcmd d;
    int ret = 1;
    long devid = -1;
    uint8_t mac[6];
    bool by_mac = sx_cfg_parse_mac(argv[2], mac) == 0;
    if (!by_mac) {
        char *ep;
        devid = strtol(argv[2], &ep, 10);
        if (*ep || devid < 0 || devid > 65535 || !isdigit((unsigned char)argv[2][0])) {
            fprintf(stderr, "%s: network-detach: '%s' is neither a devid nor a MAC\n", prog,
                    argv[2]);
            return 1;
        }
    }
    if (sx_cmd_dom_open(&d, argv[1], true) < 0)
        goto out;
    if (by_mac) {
        char path[64];
        unsigned n;
        snprintf(path, sizeof(path), "/libxl/%d/device/vif", d.domid);
        char **devs = xs_directory(d.xs, XBT_NULL, path, &n);
        for (unsigned i = 0; devs && i < n && devid < 0; i++) {
            char *m = sx_cmd_xs_read(d.xs, "/libxl/%d/device/vif/%s/mac", d.domid, devs[i]);
            if (m && !strcasecmp(m, argv[2]))
                devid = atol(devs[i]);
            free(m);
        }
        free(devs);
        if (devid < 0) {
            fprintf(stderr, "%s: domain %d has no vif with MAC %s\n", prog, d.domid, argv[2]);
            goto out;
        }
    }
    ret = detach(&d, "vif", (uint32_t)devid) ? 1 : 0;
out:
    sx_cmd_dom_close(&d);
    return ret;
}

/* console DOM [-f]: the domain's emulated serial output as its device model logs it
 * ($SPLITXEN_RUN/console/<domid>.log, written by splitxen-dm's 16550A). -f follows the log
 * until interrupted or the domain is gone. */
static int cmd_console(int argc, char **argv)
{
    bool follow = false;
    const char *ref = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f"))
            follow = true;
        else if (!ref)
            ref = argv[i];
        else
            die_usage();
    }
    if (!ref)
        die_usage();
    struct sx_domcmd d;
    if (sx_cmd_dom_open(&d, ref, false) < 0) {
        sx_cmd_dom_close(&d);
        return 1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/console/%d.log", sx_run_dir(), d.domid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && !follow) {
        fprintf(stderr, "%s: no console log for domain %d (%s): is its device model running?\n",
                prog, d.domid, path);
        sx_cmd_dom_close(&d);
        return 1;
    }
    int ret = 0;
    int64_t last_check = (int64_t)sx_now_ms();
    for (;;) {
        char buf[4096];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : 0;
        if (n < 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            ret = 1;
            break;
        }
        if (n > 0) {
            if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
                ret = 1;
                break;
            }
            continue;
        }
        fflush(stdout);
        if (!follow)
            break;
        if ((int64_t)sx_now_ms() - last_check >= 1000) {
            last_check = (int64_t)sx_now_ms();
            if (sx_cmd_resolve_domain(d.core, ref) != d.domid)
                break;   /* the domain is gone: everything it wrote has been shown */
        }
        usleep(100 * 1000);
        if (fd < 0)
            fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0)
        close(fd);
    sx_cmd_dom_close(&d);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die_usage();
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (!strcmp(cmd, "up"))
        return cmd_up(argc, argv);
    if (!strcmp(cmd, "down"))
        return cmd_down(argc, argv);
    if (!strcmp(cmd, "create"))
        return cmd_create(argc, argv);
    if (!strcmp(cmd, "list"))
        return cmd_list(argc, argv);
    if (!strcmp(cmd, "top"))
        return sx_cmd_top(argc, argv);
    if (!strcmp(cmd, "destroy"))
        return cmd_destroy(argc, argv);
    if (!strcmp(cmd, "console"))
        return cmd_console(argc, argv);
    if (!strcmp(cmd, "pause"))
        return cmd_pause(argc, argv, true);
    if (!strcmp(cmd, "unpause"))
        return cmd_pause(argc, argv, false);
    if (!strcmp(cmd, "block-attach"))
        return cmd_block_attach(argc, argv);
    if (!strcmp(cmd, "block-detach"))
        return cmd_block_detach(argc, argv);
    if (!strcmp(cmd, "network-attach"))
        return cmd_network_attach(argc, argv);
    if (!strcmp(cmd, "network-detach"))
        return cmd_network_detach(argc, argv);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } moves[] = { { "save", sx_cmd_save }, { "restore", sx_cmd_restore },
                  { "migrate", sx_cmd_migrate }, { "migrate-receive", sx_cmd_migrate_receive } };
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
        if (!strcmp(cmd, moves[i].name)) {
            int rc = moves[i].fn(argc, argv);
            if (rc == 2)
                die_usage();
            return rc;
        }
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        usage_exit(stdout, 0);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version"))
        return sx_print_version("splitxen");
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    die_usage();
}
