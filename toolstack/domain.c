/*
 * The domain operations the `splitxen` commands share (splitxen.c, migrate.c): connecting to
 * splitxen-core and its xenstored, resolving domains, building a domain from a parsed config
 * (create, restore, the migration receiver) and tearing one down (destroy, save, the migration
 * sender), the device close handshake and the device model's start.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xenstore.h>

#include "clock.h"
#include "log.h"
#include "rundir.h"
#include "platform/platform.h"
#include "toolstack/cmd.h"
#include "toolstack/layout.h"
#include "toolstack/xlcfg.h"
#include "xen-core/core.h"

#define MAX_DOMAINS 1024

static const char *prog = "splitxen";

long sx_cmd_env_long(const char *name, long def, long min, long max)
{
    const char *e = getenv(name);
    if (!e || !*e)
        return def;
    char *ep;
    long v = strtol(e, &ep, 10);
    return (*ep || v < min || v > max) ? def : v;
}


/* ------------------------------------------------------------------------------------------ */
/* Connections. */

int sx_cmd_core_connect(struct sxc_conn **c)
{
    int rc = sxc_connect(c, NULL, 0);
    if (rc < 0)
        fprintf(stderr, "%s: cannot reach splitxen-core in %s: %s (is `splitxen up` done?)\n",
                prog, sx_run_dir(), strerror(-rc));
    return rc;
}

struct xs_handle *sx_cmd_store_open(void)
{
    char path[PATH_MAX];
    if (!getenv("XENSTORED_PATH") && sx_xenstored_path(path, sizeof(path), 0) == 0)
        setenv("XENSTORED_PATH", path, 1);
    struct xs_handle *xs = xs_open(0);
    if (!xs)
        fprintf(stderr, "%s: cannot reach xenstored at %s: %s\n", prog,
                getenv("XENSTORED_PATH"), strerror(errno));
    return xs;
}

/* NAME or numeric ID -> domid known to the core; prints why not. */
int sx_cmd_resolve_domain(struct sxc_conn *c, const char *ref)
{
    struct sxc_dominfo *infos = calloc(MAX_DOMAINS, sizeof(*infos));
    if (!infos)
        return -ENOMEM;
    int n = sxc_domain_list(c, infos, MAX_DOMAINS);
    int rc = -ENOENT;
    if (n < 0) {
        rc = n;
        fprintf(stderr, "%s: listing domains: %s\n", prog, strerror(-n));
        goto out;
    }
    if (n > MAX_DOMAINS)
        n = MAX_DOMAINS;
    char *ep;
    errno = 0;
    unsigned long id = strtoul(ref, &ep, 10);
    bool numeric = isdigit((unsigned char)ref[0]) && !*ep && !errno;
    for (int i = 0; i < n; i++) {
        if (numeric ? infos[i].domid == id : !strncmp(infos[i].name, ref, sizeof(infos[i].name))) {
            rc = (int)infos[i].domid;
            goto out;
        }
    }
out:
    free(infos);
    return rc;
}

/* The backend domain of a device: NULL means the toolstack domain (0). `where`/`line` name
 * the config item for the message (line 0: a command-line spec). */
int sx_cmd_resolve_backend(struct sxc_conn *c, const char *ref, const char *where, int line,
                           const char *what)
{
    if (!ref)
        return 0;
    int rc = sx_cmd_resolve_domain(c, ref);
    if (rc < 0 && line > 0)
        fprintf(stderr, "%s:%d: %s: backend: domain '%s' does not exist\n", where, line, what,
                ref);
    else if (rc < 0)
        fprintf(stderr, "%s: %s: backend: domain '%s' does not exist\n", where, what, ref);
    return rc;
}

char *sx_cmd_xs_read(struct xs_handle *xs, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    unsigned len;
    return xs_read(xs, XBT_NULL, path, &len);
}


/* ------------------------------------------------------------------------------------------ */
/* Device close handshake (libxl__initiate_device_generic_remove): online=0, state=5 (Closing),
 * wait for the backend to reach 6 (Closed). Skipped when no backend ever picked the device up
 * (state still 1). After the timeout the nodes are removed anyway, with a warning. */

void sx_cmd_device_close(struct xs_handle *xs, const char *bpath)
{
    char state_path[300], online_path[300];
    snprintf(state_path, sizeof(state_path), "%s/state", bpath);
    snprintf(online_path, sizeof(online_path), "%s/online", bpath);
    unsigned len;
    char *st = xs_read(xs, XBT_NULL, state_path, &len);
    if (!st)
        return;
    bool engaged = strcmp(st, "1") != 0 && strcmp(st, "6") != 0;
    free(st);
    if (!engaged)
        return;

    if (!xs_watch(xs, state_path, "sx-close")) {
        sx_warn("watch %s: %s", state_path, strerror(errno));
        return;
    }
    for (int attempt = 0; attempt < SX_LAYOUT_RETRIES; attempt++) {
        xs_transaction_t t = xs_transaction_start(xs);
        if (t == XBT_NULL)
            break;
        xs_write(xs, t, online_path, "0", 1);
        xs_write(xs, t, state_path, "5", 1);
        if (xs_transaction_end(xs, t, false) || errno != EAGAIN)
            break;
    }
    long timeout = sx_cmd_env_long("SPLITXEN_DEVICE_TIMEOUT", 10, 0, 3600) * 1000;
    int64_t deadline = (int64_t)sx_now_ms() + timeout;
    int fd = xs_fileno(xs);
    for (;;) {
        st = xs_read(xs, XBT_NULL, state_path, &len);
        bool closed = !st || !strcmp(st, "6");
        free(st);
        if (closed)
            break;
        int64_t left = deadline - (int64_t)sx_now_ms();
        if (left <= 0) {
            fprintf(stderr, "%s: warning: backend %s did not close within %lds; removing it "
                            "anyway\n", prog, bpath, timeout / 1000);
            break;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (fd >= 0)
            poll(&p, 1, (int)(left < 200 ? left : 200));
        else
            usleep(20000);
        char **ev;
        while (fd >= 0 && (ev = xs_check_watch(xs)))
            free(ev);
    }
    xs_unwatch(xs, state_path, "sx-close");
}

/* Close every device of a domain, found through /libxl/<domid>/device. */
void sx_cmd_devices_close(struct xs_handle *xs, unsigned domid)
{
    char path[128];
    unsigned nk, nd;
    snprintf(path, sizeof(path), "/libxl/%u/device", domid);
    char **kinds = xs_directory(xs, XBT_NULL, path, &nk);
    for (unsigned i = 0; kinds && i < nk; i++) {
        snprintf(path, sizeof(path), "/libxl/%u/device/%s", domid, kinds[i]);
        char **devs = xs_directory(xs, XBT_NULL, path, &nd);
        for (unsigned j = 0; devs && j < nd; j++) {
            char *b = sx_cmd_xs_read(xs, "/libxl/%u/device/%s/%s/backend", domid, kinds[i],
                                  devs[j]);
            if (b && !strncmp(b, "/local/domain/", 14))
                sx_cmd_device_close(xs, b);
            free(b);
        }
        free(devs);
    }
    free(kinds);
}

/* Optional wait after create/attach (-w): each backend reports hotplug-status "connected"
 * (splitxen backends write it themselves once their resource is open). */
int sx_cmd_wait_connected(struct xs_handle *xs, const struct sx_layout *l)
{
    long timeout = sx_cmd_env_long("SPLITXEN_DEVICE_TIMEOUT", 10, 0, 3600) * 1000;
    int64_t deadline = (int64_t)sx_now_ms() + timeout;
    for (size_t i = 0; i < l->n; i++) {
        const struct sx_xs_node *n = &l->nodes[i];
        if (!(n->flags & SX_XS_ROOT) || !strstr(n->path, "/backend/"))
            continue;
        for (;;) {
            char *hs = sx_cmd_xs_read(xs, "%s/hotplug-status", n->path);
            bool ok = hs && !strcmp(hs, "connected");
            bool err = hs && !strcmp(hs, "error");
            free(hs);
            if (ok)
                break;
            if (err || (int64_t)sx_now_ms() >= deadline) {
                char *msg = sx_cmd_xs_read(xs, "%s/hotplug-error", n->path);
                fprintf(stderr, "%s: backend %s %s%s%s\n", prog, n->path,
                        err ? "failed" : "did not connect in time", msg ? ": " : "",
                        msg ? msg : "");
                free(msg);
                return -ETIMEDOUT;
            }
            usleep(20000);
        }
    }
    return 0;
}


void sx_cmd_run_file(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", sx_run_dir(), name);
}

/* A program installed next to this one (build/bin), else in ../sbin beside it (an installed
 * /usr/bin/splitxen finds /usr/sbin/splitxen-dm), else from PATH; env overrides. */
int sx_cmd_sibling_bin(char *buf, size_t len, const char *name, const char *env)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(buf, len, "%s", e);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(buf, len, "%s/%s", self, name) < (int)len && access(buf, X_OK) == 0)
                return 0;
            if (snprintf(buf, len, "%s/../sbin/%s", self, name) < (int)len &&
                access(buf, X_OK) == 0)
                return 0;
        }
    }
    snprintf(buf, len, "%s", name);   /* from PATH */
    return 0;
}


pid_t sx_cmd_spawn(char *const *args, const char *logf, const char *notify)
{
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (notify && *notify)
            setenv("NOTIFY_SOCKET", notify, 1);
        else if (notify)
            unsetenv("NOTIFY_SOCKET");
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execvp(args[0], args);
        fprintf(stderr, "splitxen: exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Wait for the device model started as pid to be ready (READY=1 on ns) before the domain
 * runs, as xl waits for its device model: a device model that cannot start (bad image, bad
 * option, missing binary) fails the create with its exit status. Without a notify socket
 * (ns < 0), a short grace period stands in for READY. Closes ns. pid or -errno. */
static pid_t dm_wait_ready(pid_t pid, int ns, int domid, const char *logf)
{
    const char *t = getenv("SPLITXEN_DM_START_TIMEOUT");
    uint64_t limit_ms = t && *t ? strtoull(t, NULL, 10) * 1000 : 30000;
    uint64_t end = sx_now_ms() + (ns >= 0 ? limit_ms : 200);
    int rc = ns >= 0 ? -ETIMEDOUT : 0;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "%s: splitxen-dm for domain %d exited at start (status %d); see %s\n",
                    prog, domid, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), logf);
            rc = -EIO;
            break;
        }
        uint64_t now = sx_now_ms();
        if (now >= end)
            break;
        if (ns < 0) {
            usleep(10000);
            continue;
        }
        struct pollfd p = { .fd = ns, .events = POLLIN };
        uint64_t left = end - now;
        if (poll(&p, 1, left < 50 ? (int)left : 50) > 0) {
            char msg[512];
            ssize_t n = recv(ns, msg, sizeof(msg) - 1, MSG_DONTWAIT);
            if (n > 0) {
                msg[n] = '\0';
                if (!strncmp(msg, "READY=1", 7) || strstr(msg, "\nREADY=1")) {
                    rc = 0;
                    break;
                }
            }
        }
    }
    if (ns >= 0)
        close(ns);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "%s: splitxen-dm for domain %d not ready after %" PRIu64 " s; see %s\n",
                prog, domid, limit_ms / 1000, logf);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return rc < 0 ? rc : pid;
}

/*
 * An HVM domain's device model: splitxen-dm serves its port, MMIO and PCI accesses (the
 * qemu-dm role). Each vif not of type=vif gets an emulated e1000 on its bridge and the first
 * disk an AHCI disk, as xl gives an HVM guest emulated twins of its PV devices (the guest can
 * unplug them through the Xen platform device and continue on PV). It exits by itself when
 * the domain is destroyed. Returns its pid or -errno.
 */
static pid_t start_dm(int domid, const struct sx_domcfg *cfg)
{
    char bin[PATH_MAX], logf[PATH_MAX], name[64];
    sx_cmd_sibling_bin(bin, sizeof(bin), "splitxen-dm", "SPLITXEN_DM_BIN");
    snprintf(name, sizeof(name), "dm-%d.log", domid);
    sx_cmd_run_file(logf, sizeof(logf), name);
    size_t max = 8 + 2 * (cfg->nvifs + cfg->ndisks);
    char **args = calloc(max, sizeof(char *));
    char **owned = calloc(max, sizeof(char *));
    if (!args || !owned) {
        free(args);
        free(owned);
        return -ENOMEM;
    }
    int a = 0, o = 0;
    char dom[16], vcpus[16];
    snprintf(dom, sizeof(dom), "%d", domid);
    snprintf(vcpus, sizeof(vcpus), "%u", cfg->vcpus);
    args[a++] = bin;
    args[a++] = "--domid";
    args[a++] = dom;
    args[a++] = "--vcpus";
    args[a++] = vcpus;
    for (size_t i = 0; i < cfg->nvifs; i++) {
        const struct sx_cfg_vif *v = &cfg->vifs[i];
        if (v->type == SX_CFG_NIC_VIF)
            continue;   /* PV only */
        if (v->model && strcmp(v->model, "e1000") && strcmp(v->model, "rtl8139"))
            fprintf(stderr, "%s: vif %d: model %s is not emulated; using an e1000\n", prog,
                    v->devid, v->model);
        char *nic = NULL;
        if (asprintf(&nic, "mac=%02x:%02x:%02x:%02x:%02x:%02x,bridge=%s", v->mac[0], v->mac[1],
                     v->mac[2], v->mac[3], v->mac[4], v->mac[5],
                     v->bridge ? v->bridge : "xenbr0") < 0)
            break;
        args[a++] = "--nic";
        args[a++] = owned[o++] = nic;
    }
    if (cfg->ndisks > 0 && !cfg->disks[0].cdrom) {
        char *disk = NULL;
        if (asprintf(&disk, "%s%s", cfg->disks[0].target, cfg->disks[0].readwrite ? "" : ",ro") >= 0) {
            args[a++] = "--disk";
            args[a++] = owned[o++] = disk;
        }
    }
    args[a] = NULL;
    /* The device model says READY=1 (systemd's notify protocol) once its ioreq server is
     * enabled: a datagram socket of our own, autobound in the abstract namespace, is its
     * $NOTIFY_SOCKET. */
    char notify_env[64] = "";
    int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ns >= 0) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t sl = sizeof(sa);
        if (bind(ns, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ||
            getsockname(ns, (struct sockaddr *)&sa, &sl) < 0 ||
            sl <= offsetof(struct sockaddr_un, sun_path) + 1 ||
            sl - offsetof(struct sockaddr_un, sun_path) - 1 >= sizeof(notify_env) - 1) {
            close(ns);
            ns = -1;
        } else {
            size_t n = sl - offsetof(struct sockaddr_un, sun_path) - 1;
            notify_env[0] = '@';
            memcpy(notify_env + 1, sa.sun_path + 1, n);
            notify_env[n + 1] = '\0';
        }
    }
    pid_t pid = sx_cmd_spawn(args, logf, notify_env);
    int err = errno;
    for (int i = 0; i < o; i++)
        free(owned[i]);
    free(owned);
    free(args);
    if (pid < 0) {
        if (ns >= 0)
            close(ns);
        return -err;
    }
    return dm_wait_ready(pid, ns, domid, logf);
}


/* ------------------------------------------------------------------------------------------ */
/* create */

static int gen_uuid(char out[37])
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -errno;
    b[6] = (b[6] & 0x0f) | 0x40;   /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80;   /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

int sx_cmd_build_domain(struct sxc_conn *core, struct xs_handle *xs,
                        const struct sx_domcfg *cfg, const char *where, const char *uuid_in,
                        bool wait_be, pid_t *dm_pid_out)
{
    struct sx_layout l;
    int domid = -1, rc;
    pid_t dm_pid = -1;
    int *disk_be = NULL, *vif_be = NULL;

    sx_layout_init(&l);
    if (sxc_domain_lookup(core, cfg->name) >= 0) {
        fprintf(stderr, "%s: domain '%s' already exists\n", prog, cfg->name);
        rc = -EEXIST;
        goto out;
    }
    disk_be = calloc(cfg->ndisks + 1, sizeof(int));
    vif_be = calloc(cfg->nvifs + 1, sizeof(int));
    if (!disk_be || !vif_be) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->ndisks; i++) {
        if ((rc = disk_be[i] = sx_cmd_resolve_backend(core, cfg->disks[i].backend, where,
                                               cfg->disks[i].line, "disk")) < 0)
            goto out;
    }
    for (size_t i = 0; i < cfg->nvifs; i++) {
        if ((rc = vif_be[i] = sx_cmd_resolve_backend(core, cfg->vifs[i].backend, where,
                                              cfg->vifs[i].line, "vif")) < 0)
            goto out;
    }
    char uuid[37];
    if (uuid_in && *uuid_in)
        snprintf(uuid, sizeof(uuid), "%s", uuid_in);
    else if (cfg->uuid)
        snprintf(uuid, sizeof(uuid), "%s", cfg->uuid);
    else if ((rc = gen_uuid(uuid)) < 0)
        goto out;

    /* Nothing exists yet. From here on, failure destroys the domain and its nodes. */
    domid = sxc_domain_create(core, cfg->name,
                              cfg->type == SX_CFG_HVM ? SXD_TYPE_HVM : SXD_TYPE_PV,
                              (uint32_t)cfg->memory_mib, cfg->vcpus, true);
    if (domid < 0) {
        rc = domid;
        fprintf(stderr, "%s: creating domain '%s': %s\n", prog, cfg->name, strerror(-rc));
        goto out;
    }
    for (size_t i = 0; i < cfg->ndisks; i++)
        if (disk_be[i] == domid) {
            fprintf(stderr, "%s: disk %s: a domain cannot be its own backend\n", prog,
                    cfg->disks[i].vdev);
            rc = -EINVAL;
            goto fail_domain;
        }

    struct timeval tv;
    gettimeofday(&tv, NULL);
    char start_time[32];
    snprintf(start_time, sizeof(start_time), "%lu.%02d", (unsigned long)tv.tv_sec,
             (int)(tv.tv_usec / 10000));
    struct sx_layout_dom d = {
        .domid = (uint32_t)domid, .name = cfg->name, .uuid = uuid, .type = cfg->type,
        .memory_kb = cfg->memory_mib * 1024, .maxmem_kb = cfg->maxmem_mib * 1024,
        .vcpus = cfg->vcpus, .maxvcpus = cfg->maxvcpus,
        .store_port = -1, .store_ring_ref = -1,   /* sim: xenstore is a socket, no ring */
        .start_time = start_time,
    };
    if ((rc = sx_layout_add_domain(&l, &d)))
        goto fail_domain;
    for (size_t i = 0; i < cfg->ndisks; i++)
        if ((rc = sx_layout_add_vbd(&l, (uint32_t)domid, (uint32_t)disk_be[i], cfg->type,
                                    &cfg->disks[i])))
            goto fail_domain;
    for (size_t i = 0; i < cfg->nvifs; i++)
        if ((rc = sx_layout_add_vif(&l, (uint32_t)domid, (uint32_t)vif_be[i], &cfg->vifs[i])))
            goto fail_domain;
    if ((rc = sx_layout_apply(xs, &l))) {
        fprintf(stderr, "%s: writing xenstore for domain %d: %s\n", prog, domid,
                strerror(-rc));
        goto fail_domain;
    }
    if (cfg->type == SX_CFG_HVM) {
        dm_pid = start_dm(domid, cfg);
        if (dm_pid < 0) {
            rc = dm_pid;
            goto fail_nodes;
        }
    }
    if (wait_be && (rc = sx_cmd_wait_connected(xs, &l)))
        goto fail_nodes;
    if (dm_pid_out)
        *dm_pid_out = dm_pid;
    rc = domid;
    goto out;

fail_nodes:
    if (dm_pid > 0)
        kill(dm_pid, SIGTERM);
    sx_cmd_devices_close(xs, (unsigned)domid);
fail_domain:
    /* remove everything the layout may have written (the transaction is all or nothing,
     * but a later step may have failed), then the domain */
    if (xs) {
        int r = sx_layout_remove_domain(xs, (unsigned)domid);
        if (r)
            fprintf(stderr, "%s: warning: removing xenstore nodes of domain %d: %s\n", prog,
                    domid, strerror(-r));
    }
    {
        int r = sxc_domain_destroy(core, (domid_t)domid);
        if (r < 0)
            fprintf(stderr, "%s: warning: destroying domain %d: %s\n", prog, domid,
                    strerror(-r));
    }
out:
    free(disk_be);
    free(vif_be);
    sx_layout_clear(&l);
    return rc;
}

int sx_cmd_unbuild_domain(struct sxc_conn *core, struct xs_handle *xs, int domid)
{
    if (domid <= 0)
        return -EINVAL;
    /* As libxl__destroy_domid: pause, close the devices, remove the nodes, destroy. */
    sxc_domain_pause(core, (domid_t)domid);
    sx_cmd_devices_close(xs, (unsigned)domid);
    int rc = sx_layout_remove_domain(xs, (unsigned)domid);
    if (rc)
        fprintf(stderr, "%s: removing xenstore nodes of domain %d: %s\n", prog, domid,
                strerror(-rc));
    int r = sxc_domain_destroy(core, (domid_t)domid);
    if (r < 0)
        fprintf(stderr, "%s: destroying domain %d: %s\n", prog, domid, strerror(-r));
    return rc ? rc : r < 0 ? r : 0;
}


int sx_cmd_dom_open(struct sx_domcmd *d, const char *ref, bool need_xs)
{
    d->core = NULL;
    d->xs = NULL;
    d->domid = -1;
    if (sx_cmd_core_connect(&d->core) < 0)
        return -1;
    if (need_xs && !(d->xs = sx_cmd_store_open()))
        return -1;
    d->domid = sx_cmd_resolve_domain(d->core, ref);
    if (d->domid == -ENOENT)
        fprintf(stderr, "%s: no domain '%s'\n", prog, ref);
    if (d->domid == 0) {
        fprintf(stderr, "%s: domain 0 cannot be the target of this command\n", prog);
        return -1;
    }
    return d->domid < 0 ? -1 : 0;
}

void sx_cmd_dom_close(struct sx_domcmd *d)
{
    if (d->xs)
        xs_close(d->xs);
    sxc_disconnect(d->core);
}

