/*
 * splitxen save / restore / migrate / migrate-receive (sim), shaped like xl's:
 *
 *   splitxen save [-c] DOM FILE          suspend the guest, write it to FILE, destroy it
 *                                        (-c: let it go on afterwards, a checkpoint)
 *   splitxen restore [-p] FILE           create it again from FILE (-p: leave it paused)
 *   splitxen migrate [--live] DOM HOST[:PORT]
 *                                        move it to the splitxen-core of another host, whose
 *   splitxen migrate-receive [[ADDR:]PORT]   waits for one incoming domain (port 8002,
 *                                        xend's relocation port, when not given)
 *
 * What travels (xen-core/stream.h, domstate.h): the domain (name, uuid, memory, vCPUs), its
 * config as xl.cfg text rebuilt from the toolstack's copy in /libxl/<domid> (devices attached
 * since create included), the guest's own xenstore nodes (as they were when the save or
 * migration began), its memory, frame allocator, grant table and event channel bindings.
 *
 * Suspending a guest (libxl__domain_suspend's protocol): control/shutdown = "suspend"; every
 * process acting as the guest's kernel quiesces its devices and makes the suspend hypercall
 * (frontends/control); the core says when all have (sxc_domain_wait_suspended); the node is
 * cleared again before anyone resumes. A guest that does not suspend within
 * $SPLITXEN_SUSPEND_TIMEOUT seconds (10) is resumed and the command fails.
 *
 * save: the image is written to FILE.<pid>.tmp and renamed when complete; the guest's
 * processes stay suspended (parked on this core) until a restore of the image on this core
 * resumes them as the new domain. restore reads the whole image and checks every record, its
 * config and its name before it creates anything; a truncated, damaged or foreign image
 * creates nothing.
 *
 * migrate: the receiver builds the domain, paused, as soon as the config arrives, so its
 * backends prepare its devices during the copy. Before the guest is stopped, a SYNC record
 * waits for the receiver to have taken in all that came before (building the domain and the
 * pre-copy take a while on a busy host: not a reason to keep the guest stopped).
 * --live: pre-copy rounds with log-dirty
 * tracking (xen-core/logdirty.c; a guest whose processes cannot be tracked is stopped and
 * copied instead, said on stderr), until a round finds few enough pages or the rounds run
 * out; then the guest is suspended and the last round, the hypervisor state and END go. The
 * receiver answers READY (domid, its core) or FAIL; the sender says GO; the receiver unpauses
 * and answers DONE. Only then does the sender resume the guest's processes as the new domain
 * and tear the source down; on any failure before GO the source resumes where it was.
 * A last line on stdout sums up the migration (times, rounds, pages, bytes) for tools.
 *
 * migrate-receive builds what the stream describes (its disks are paths on this host) for
 * whoever connects: as xl's, which runs over ssh, it trusts its peer. Every record is checked
 * before it is believed, so a broken sender cannot make it write outside the new domain.
 */
#define SX_LOG_MODULE "splitxen"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xenstore.h>

#include "clock.h"
#include "log.h"
#include "rundir.h"
#include "toolstack/cmd.h"
#include "toolstack/layout.h"
#include "toolstack/xlcfg.h"
#include "xen-core/core.h"
#include "xen-core/domstate.h"
#include "xen-core/stream.h"

#define DEFAULT_PORT "8002"
#define MAX_ROUNDS 30
#define STOP_PAGES 256          /* a round this small: stop and copy the rest */
#define REPLY_TIMEOUT_MS 60000

static const char *prog = "splitxen";

static double ms_since(uint64_t t0_us) { return (double)(sx_now_us() - t0_us) / 1e3; }

/* COMMAND [FLAG] A [B]: the flag (flag or its short form) anywhere, then the positionals in
 * order; b NULL: only one. Returns 0, or 2 for a usage error. */
static int parse_args(int argc, char **argv, const char *flag, const char *alt, bool *set,
                      const char **a, const char **b)
{
    *set = false;
    *a = NULL;
    if (b)
        *b = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], flag) || (alt && !strcmp(argv[i], alt)))
            *set = true;
        else if (!*a)
            *a = argv[i];
        else if (b && !*b)
            *b = argv[i];
        else
            return 2;
    }
    return *a && (!b || *b) ? 0 : 2;
}

/* ------------------------------------------------------------------ the config as text */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = b->s ? vsnprintf(b->s + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 1024;
        if (n >= 0 && nc < b->len + (size_t)n + 1)
            nc = b->len + (size_t)n + 1;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return;     /* the caller sees a short text and the parse fails */
        b->s = ns;
        b->cap = nc;
    }
}

/* The backend domain of a device from its backend path, as a name for `backend=`. */
static void backend_name(struct sxc_conn *core, const char *bpath, char *out, size_t len)
{
    out[0] = 0;
    unsigned be;
    if (!bpath || sscanf(bpath, "/local/domain/%u/", &be) != 1 || be == 0)
        return;
    struct sxc_dominfo infos[256];
    int n = sxc_domain_list(core, infos, 256);
    for (int i = 0; i < n && i < 256; i++)
        if (infos[i].domid == be)
            snprintf(out, len, "%.63s", infos[i].name);
}

static bool default_script(const char *path, const char *name)
{
    if (!path)
        return true;
    const char *slash = strrchr(path, '/');
    return !strcmp(slash ? slash + 1 : path, name);
}

/* An xl.cfg that builds this domain again, from /libxl/<domid> (libxl's copy of every
 * device, attached since create or not). */
static int config_text(struct sxc_conn *core, struct xs_handle *xs, unsigned domid,
                       const struct sxc_dominfo *info, const char *uuid, struct sbuf *b)
{
    sbuf_addf(b, "name = \"%s\"\n", info->name);
    if (uuid[0])
        sbuf_addf(b, "uuid = \"%s\"\n", uuid);
    sbuf_addf(b, "type = \"%s\"\n", info->type == SXD_TYPE_HVM ? "hvm" : "pv");
    sbuf_addf(b, "memory = %" PRIu64 "\n", info->mem_mb);
    char *v = sx_cmd_xs_read(xs, "/local/domain/%u/memory/static-max", domid);
    if (v && strtoull(v, NULL, 10) / 1024 > info->mem_mb)
        sbuf_addf(b, "maxmem = %llu\n", strtoull(v, NULL, 10) / 1024);
    free(v);
    sbuf_addf(b, "vcpus = %u\n", info->vcpus);

    char path[128];
    unsigned n;
    const char *kinds[2] = { "vbd", "vif" };
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "/libxl/%u/device/%s", domid, kinds[k]);
        char **devs = xs_directory(xs, XBT_NULL, path, &n);
        if (!devs || n == 0) {
            free(devs);
            continue;
        }
        sbuf_addf(b, "%s = [\n", k == 0 ? "disk" : "vif");
        for (unsigned i = 0; i < n; i++) {
            char dir[160], be[64];
            snprintf(dir, sizeof(dir), "/libxl/%u/device/%s/%s", domid, kinds[k], devs[i]);
            char *bpath = sx_cmd_xs_read(xs, "%s/backend", dir);
            backend_name(core, bpath, be, sizeof(be));
            free(bpath);
            char *script = sx_cmd_xs_read(xs, "%s/script", dir);
            if (k == 0) {
                char *params = sx_cmd_xs_read(xs, "%s/params", dir);
                char *dev = sx_cmd_xs_read(xs, "%s/dev", dir);
                char *mode = sx_cmd_xs_read(xs, "%s/mode", dir);
                char *dtype = sx_cmd_xs_read(xs, "%s/device-type", dir);
                char *disc = sx_cmd_xs_read(xs, "%s/discard-enable", dir);
                char *btype = sx_cmd_xs_read(xs, "%s/type", dir);
                sbuf_addf(b, "  'format=raw, vdev=%s, access=%s%s%s%s%s%s%s%s, target=%s',\n",
                          dev ? dev : devs[i], mode && !strcmp(mode, "r") ? "ro" : "rw",
                          dtype && !strcmp(dtype, "cdrom") ? ", devtype=cdrom" : "",
                          btype && !strcmp(btype, "qdisk") ? ", backendtype=qdisk" : "",
                          disc && !strcmp(disc, "0") ? ", no-discard" : "",
                          be[0] ? ", backend=" : "", be,
                          default_script(script, "block") ? "" : ", script=",
                          default_script(script, "block") ? "" : script, params ? params : "");
                free(params);
                free(dev);
                free(mode);
                free(dtype);
                free(disc);
                free(btype);
            } else {
                static const char *const keys[] = { "mac", "bridge", "ip", "mtu", "queues",
                                                    "vifname", "gatewaydev" };
                sbuf_addf(b, "  'devid=%s", devs[i]);
                for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
                    char *val = sx_cmd_xs_read(xs, "%s/%s", dir, keys[j]);
                    if (val && *val)
                        sbuf_addf(b, ", %s=%s", keys[j], val);
                    free(val);
                }
                char *rate = sx_cmd_xs_read(xs, "%s/rate", dir);
                unsigned long long bytes;
                unsigned usecs;
                if (rate && sscanf(rate, "%llu,%u", &bytes, &usecs) == 2 && usecs)
                    sbuf_addf(b, ", rate=%lluB/s@%uus", bytes * 1000000ull / usecs, usecs);
                free(rate);
                char *type = sx_cmd_xs_read(xs, "%s/type", dir);
                if (type && !strcmp(type, "vif_ioemu"))
                    sbuf_addf(b, ", type=ioemu");
                free(type);
                if (be[0])
                    sbuf_addf(b, ", backend=%s", be);
                if (!default_script(script, "vif-bridge"))
                    sbuf_addf(b, ", script=%s", script);
                sbuf_addf(b, "',\n");
            }
            free(script);
        }
        sbuf_addf(b, "]\n");
        free(devs);
    }
    return b->s ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ the guest's own nodes */

static void perms_text(const struct xs_permissions *p, unsigned n, unsigned self, char *out,
                       size_t len)
{
    size_t off = 0;
    out[0] = 0;
    for (unsigned i = 0; i < n && off + 16 < len; i++) {
        char c = p[i].perms & XS_PERM_READ ? (p[i].perms & XS_PERM_WRITE ? 'b' : 'r')
                                           : (p[i].perms & XS_PERM_WRITE ? 'w' : 'n');
        if (p[i].id == self)
            off += (size_t)snprintf(out + off, len - off, "%s%c@", i ? "," : "", c);
        else
            off += (size_t)snprintf(out + off, len - off, "%s%c%u", i ? "," : "", c, p[i].id);
    }
}

/* Every node under /local/domain/<domid> the guest owns, but its devices and the suspend
 * request (the toolstack writes those anew). */
static int collect_nodes(struct xs_handle *xs, unsigned domid, const char *rel, int depth,
                         struct sxm_xs_buf *out)
{
    if (depth > 16)
        return 0;
    char path[2200];
    snprintf(path, sizeof(path), "/local/domain/%u%s%s", domid, rel[0] ? "/" : "", rel);
    unsigned np = 0;
    struct xs_permissions *perms = xs_get_permissions(xs, XBT_NULL, path, &np);
    if (!perms)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    if (np && perms[0].id == domid) {
        unsigned vlen = 0;
        char *val = xs_read(xs, XBT_NULL, path, &vlen);
        char pt[256];
        perms_text(perms, np, domid, pt, sizeof(pt));
        rc = sxm_xs_add(out, rel, val ? val : "", val ? vlen : 0, pt);
        free(val);
    }
    free(perms);
    unsigned nk = 0;
    char **kids = rc ? NULL : xs_directory(xs, XBT_NULL, path, &nk);
    for (unsigned i = 0; kids && i < nk && rc == 0; i++) {
        char sub[2200];
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", kids[i]);
        if (!strcmp(sub, "device") || !strcmp(sub, "control/shutdown"))
            continue;
        rc = collect_nodes(xs, domid, sub, depth + 1, out);
    }
    free(kids);
    return rc == -E2BIG ? 0 : rc;    /* a node too big for the stream stays behind */
}

/* Write the guest's nodes under its new domid (its own: perms '@' become the new id). */
static int restore_nodes(struct xs_handle *xs, unsigned domid, const void *rec, size_t len)
{
    for (int attempt = 0; attempt < SX_LAYOUT_RETRIES; attempt++) {
        xs_transaction_t t = xs_transaction_start(xs);
        if (t == XBT_NULL)
            return -errno;
        struct sxm_xs_cursor *c = malloc(sizeof(*c));
        if (!c) {
            xs_transaction_end(xs, t, true);
            return -ENOMEM;
        }
        sxm_xs_cursor(c, rec, len);
        struct sxm_xs_node node;
        int rc = 0;
        while (rc == 0 && sxm_xs_next(c, &node) == 1) {
            char path[2200], pt[512];
            snprintf(path, sizeof(path), "/local/domain/%u%s%s", domid, node.path[0] ? "/" : "",
                     node.path);
            size_t o = 0;
            for (const char *q = node.perms; *q && o + 12 < sizeof(pt); q++)
                o += *q == '@' ? (size_t)snprintf(pt + o, sizeof(pt) - o, "%u", domid)
                               : (size_t)snprintf(pt + o, sizeof(pt) - o, "%c", *q);
            struct xs_permissions p[16];
            int np = sx_layout_parse_perms(pt, p, 16);
            if (np < 0 || !xs_write(xs, t, path, node.value, (unsigned)node.vlen) ||
                !xs_set_permissions(xs, t, path, p, (unsigned)np))
                rc = np < 0 ? np : -errno;
        }
        free(c);
        if (rc) {
            xs_transaction_end(xs, t, true);
            return rc;
        }
        if (xs_transaction_end(xs, t, false))
            return 0;
        if (errno != EAGAIN)
            return -errno;
    }
    return -EAGAIN;
}

/* ------------------------------------------------------------------ suspend */

static int write_shutdown(struct xs_handle *xs, int domid, const char *what)
{
    char path[64];
    snprintf(path, sizeof(path), "/local/domain/%d/control/shutdown", domid);
    return xs_write(xs, XBT_NULL, path, what, (unsigned)strlen(what)) ? 0 : -errno;
}

/* Ask the guest to suspend and wait for every process of its kernel. On failure the guest
 * goes on and the reason is printed. Returns the number of processes. */
static int guest_suspend(struct sxc_conn *core, struct xs_handle *xs, int domid)
{
    long tmo = sx_cmd_env_long("SPLITXEN_SUSPEND_TIMEOUT", 10, 1, 3600);
    int rc = write_shutdown(xs, domid, "suspend");
    if (rc < 0) {
        fprintf(stderr, "%s: asking domain %d to suspend: %s\n", prog, domid, strerror(-rc));
        return rc;
    }
    rc = sxc_domain_wait_suspended(core, (domid_t)domid, (unsigned)tmo * 1000);
    /* Cleared before anyone resumes, so nobody acts on the request twice. */
    write_shutdown(xs, domid, "");
    if (rc < 0) {
        if (rc == -ETIMEDOUT)
            fprintf(stderr, "%s: domain %d did not suspend within %ld s; it goes on\n", prog,
                    domid, tmo);
        else
            fprintf(stderr, "%s: suspending domain %d: %s\n", prog, domid, strerror(-rc));
        sxc_domain_resume(core, (domid_t)domid, false, 0, NULL);
    }
    return rc;
}

/* This host's core socket, absolute: what a moved guest's processes connect to. */
static int own_core_path(char *buf, size_t len)
{
    char dir[PATH_MAX];
    if (!realpath(sx_run_dir(), dir))
        return -errno;
    return sxc_socket_path(buf, len, dir);
}

/* ------------------------------------------------------------------ the outgoing stream */

struct outgoing {
    struct sxc_conn *core;
    struct xs_handle *xs;
    int domid;
    struct sxc_dom *d;
    struct sxm_writer *w;
    struct sxm_domain info;
    uint64_t *bm;
    size_t words;
    struct sxm_page_stats st;
};

/* DOMAIN, CONFIG, XENSTORE. */
static int send_head(struct outgoing *o)
{
    struct sxc_dominfo infos[256];
    int n = sxc_domain_list(o->core, infos, 256);
    const struct sxc_dominfo *me = NULL;
    for (int i = 0; i < n && i < 256; i++)
        if (infos[i].domid == (uint32_t)o->domid)
            me = &infos[i];
    if (!me)
        return -ESRCH;
    sxm_domain_info(o->d, &o->info);
    char *vm = sx_cmd_xs_read(o->xs, "/local/domain/%d/vm", o->domid);
    if (vm && !strncmp(vm, "/vm/", 4))
        snprintf(o->info.uuid, sizeof(o->info.uuid), "%.36s", vm + 4);
    free(vm);
    struct sbuf cfg = { 0 };
    int rc = config_text(o->core, o->xs, (unsigned)o->domid, me, o->info.uuid, &cfg);
    struct sxm_xs_buf nodes = { 0 };
    if (rc == 0)
        rc = collect_nodes(o->xs, (unsigned)o->domid, "", 0, &nodes);
    size_t nlen;
    const void *np = sxm_xs_payload(&nodes, &nlen);
    if (rc == 0)
        rc = sxm_put_domain(o->w, &o->info);
    if (rc == 0)
        rc = sxm_write(o->w, SXM_REC_CONFIG, cfg.s, cfg.len);
    if (rc == 0)
        rc = sxm_write(o->w, SXM_REC_XENSTORE, np, nlen);
    free(cfg.s);
    sxm_xs_free(&nodes);
    return rc;
}

/* One pre-copy or final round: the frames pinned writable now, then the ones marked since the
 * last round (in that order: a pin ended between the two looks left its mark). Returns the
 * marked count (pins left out: they are dirty every round), or -errno. */
static int64_t send_round(struct outgoing *o)
{
    memset(o->bm, 0, o->words * 8);
    sxm_mark_pinned(o->d, o->bm);
    int64_t n = sxc_domain_logdirty(o->core, (domid_t)o->domid, SXC_LOGDIRTY_ROUND, NULL);
    if (n < 0)
        return n;
    _Atomic uint64_t *round = sxd_round_bitmap(o->d->shared);
    for (size_t i = 0; i < o->words; i++)
        o->bm[i] |= atomic_load_explicit(&round[i], memory_order_relaxed);
    int rc = sxm_put_dirty_pages(o->w, o->d, o->bm, &o->st);
    return rc < 0 ? rc : n;
}

static int outgoing_open(struct outgoing *o, struct sx_domcmd *dc, int fd, bool live)
{
    memset(o, 0, sizeof(*o));
    o->core = dc->core;
    o->xs = dc->xs;
    o->domid = dc->domid;
    char *type = sx_cmd_xs_read(o->xs, "/libxl/%d/type", o->domid);
    bool hvm = type && !strcmp(type, "hvm");
    free(type);
    if (hvm) {
        fprintf(stderr, "%s: domain %d is HVM: its device model's state cannot be saved on "
                        "sim\n", prog, o->domid);
        return -EOPNOTSUPP;
    }
    int rc = sxc_domain_get(o->core, (domid_t)o->domid, &o->d);
    if (rc < 0) {
        o->d = NULL;
        return rc;
    }
    o->words = (size_t)sxd_bitmap_words(o->d->shared);
    o->bm = calloc(o->words, 8);
    if (!o->bm)
        return -ENOMEM;
    int level = (int)sx_cmd_env_long("SPLITXEN_SAVE_ZLEVEL", 1, 0, 9);
    return sxm_writer_open(&o->w, fd, live ? SXM_F_LIVE : 0, level);
}

static void outgoing_close(struct outgoing *o)
{
    sxm_writer_close(o->w);
    free(o->bm);
    if (o->d)
        sxc_domain_put(o->core, o->d);
}

/* The last of the stream once the guest is suspended: its frames (the final round, or all of
 * them), the hypervisor state, END. */
static int send_tail(struct outgoing *o, bool live)
{
    int64_t rc = live ? send_round(o) : sxm_put_all_pages(o->w, o->d, &o->st);
    if (rc >= 0)
        rc = sxm_put_state(o->w, o->d);
    if (rc >= 0)
        rc = sxm_writer_finish(o->w);
    return rc < 0 ? (int)rc : 0;
}

/* ------------------------------------------------------------------ save */

int sx_cmd_save(int argc, char **argv)
{
    bool checkpoint;
    const char *ref, *file;
    if (parse_args(argc, argv, "-c", NULL, &checkpoint, &ref, &file))
        return 2;
    struct sx_domcmd dc;
    struct outgoing o = { 0 };
    char tmp[PATH_MAX];
    int fd = -1, ret = 1, rc;
    bool suspended = false;
    uint64_t t0 = sx_now_us();
    if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", file, (int)getpid()) >= (int)sizeof(tmp)) {
        fprintf(stderr, "%s: %s: name too long\n", prog, file);
        return 1;
    }
    if (sx_cmd_dom_open(&dc, ref, true) < 0)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
        goto out;
    }
    if ((rc = outgoing_open(&o, &dc, fd, false)) < 0 || (rc = send_head(&o)) < 0) {
        fprintf(stderr, "%s: saving domain %d: %s\n", prog, dc.domid, strerror(-rc));
        goto out;
    }
    if (guest_suspend(dc.core, dc.xs, dc.domid) < 0)
        goto out;
    suspended = true;
    uint64_t ts = sx_now_us();
    rc = send_tail(&o, false);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0 && close(fd) < 0)
        rc = -errno;
    fd = -1;
    if (rc == 0 && rename(tmp, file) < 0)
        rc = -errno;
    if (rc < 0) {
        fprintf(stderr, "%s: writing %s: %s\n", prog, file, strerror(-rc));
        goto out;
    }
    uint64_t bytes = sxm_writer_bytes(o.w), pages = o.st.pages;
    double copy_ms = ms_since(ts);
    if (checkpoint) {
        sxc_domain_resume(dc.core, (domid_t)dc.domid, false, 0, NULL);
        suspended = false;
    } else {
        /* Its processes stay parked on this core until a restore of the image. */
        outgoing_close(&o);
        memset(&o, 0, sizeof(o));
        if (sx_cmd_unbuild_domain(dc.core, dc.xs, dc.domid) < 0)
            fprintf(stderr, "%s: warning: domain %d saved but not wholly destroyed\n", prog,
                    dc.domid);
    }
    printf("saved domain %d to %s: %" PRIu64 " pages (%.1f MiB) in %.1f MiB, %.0f ms "
           "(%.0f ms suspended to written)%s\n", dc.domid, file, pages,
           (double)pages * 4096 / (1 << 20), (double)bytes / (1 << 20), ms_since(t0),
           copy_ms, checkpoint ? "; it goes on" : "");
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (ret) {
        unlink(tmp);
        if (suspended)
            sxc_domain_resume(dc.core, (domid_t)dc.domid, false, 0, NULL);
    }
    outgoing_close(&o);
    sx_cmd_dom_close(&dc);
    return ret;
}

/* ------------------------------------------------------------------ the incoming stream */

struct incoming {
    struct sxc_conn *core;
    struct xs_handle *xs;
    const char *where;          /* the file, or "migration stream" */
    bool apply;                 /* build the domain and load it (else only check) */
    struct sxm_domain dom;
    bool have_dom, have_cfg;
    unsigned have_state;        /* PAGE_ALLOC, GRANTS, EVTCHN seen: bits 0..2 */
    struct sx_domcfg *cfg;
    bool have_nodes;
    int reply_fd;               /* a migration's socket: SYNCED goes there; -1 for a file */
    int domid;                  /* built, or -1 */
    struct sxc_dom *d;
    uint64_t pages;
};

static void incoming_init(struct incoming *in, struct sxc_conn *core, struct xs_handle *xs,
                          const char *where, bool apply)
{
    memset(in, 0, sizeof(*in));
    in->core = core;
    in->xs = xs;
    in->where = where;
    in->apply = apply;
    in->reply_fd = -1;
    in->domid = -1;
}

/* Undo what was built (failure). */
static void incoming_unbuild(struct incoming *in)
{
    if (in->d)
        sxc_domain_put(in->core, in->d);
    in->d = NULL;
    if (in->domid > 0)
        sx_cmd_unbuild_domain(in->core, in->xs, in->domid);
    in->domid = -1;
}

static void incoming_free(struct incoming *in)
{
    if (in->d)
        sxc_domain_put(in->core, in->d);
    sx_cfg_free(in->cfg);
}

/* One record: checked, and with apply, loaded. 0 or -errno with err filled. */
static int incoming_record(struct incoming *in, uint32_t type, const void *buf, size_t len,
                           char *err, size_t errlen)
{
    if (!in->have_dom && type != SXM_REC_DOMAIN)
        return snprintf(err, errlen, "%s record before the DOMAIN record", sxm_type_name(type)),
               -EPROTO;
    int rc = sxm_check_record(type, buf, len, in->have_dom ? &in->dom : NULL, err, errlen);
    if (rc < 0)
        return rc;
    switch (type) {
    case SXM_REC_DOMAIN:
        if (in->have_dom)
            return snprintf(err, errlen, "a second DOMAIN record"), -EPROTO;
        in->have_dom = true;
        return sxm_get_domain(buf, len, &in->dom, err, errlen);
    case SXM_REC_CONFIG: {
        if (in->have_cfg)
            return snprintf(err, errlen, "a second CONFIG record"), -EPROTO;
        char name[300];
        snprintf(name, sizeof(name), "%s (config of %s)", in->where, in->dom.name);
        rc = sx_cfg_parse_data(name, buf, len, &in->cfg, err, errlen);
        if (rc < 0)
            return rc;
        in->have_cfg = true;
        if (strcmp(in->cfg->name, in->dom.name) || in->cfg->memory_mib != in->dom.mem_mb ||
            (in->cfg->type == SX_CFG_HVM) != (in->dom.type == SXD_TYPE_HVM))
            return snprintf(err, errlen, "the config (%s, %" PRIu64 " MiB) is not the domain's "
                            "(%s, %u MiB)", in->cfg->name, in->cfg->memory_mib, in->dom.name,
                            in->dom.mem_mb), -EPROTO;
        if (in->cfg->type == SX_CFG_HVM)
            return snprintf(err, errlen, "an HVM domain: not restorable on sim"), -EOPNOTSUPP;
        if (sxc_domain_lookup(in->core, in->dom.name) >= 0)
            return snprintf(err, errlen, "domain '%s' already exists here", in->dom.name),
                   -EEXIST;
        if (!in->apply)
            return 0;
        in->domid = sx_cmd_build_domain(in->core, in->xs, in->cfg, name, in->dom.uuid, false,
                                        NULL);
        if (in->domid < 0) {
            rc = in->domid;
            in->domid = -1;
            return snprintf(err, errlen, "building domain '%s': %s", in->dom.name,
                            strerror(-rc)), rc;
        }
        rc = sxc_domain_get(in->core, (domid_t)in->domid, &in->d);
        if (rc < 0)
            in->d = NULL;
        return rc < 0 ? (snprintf(err, errlen, "mapping the new domain: %s", strerror(-rc)), rc)
                      : 0;
    }
    case SXM_REC_XENSTORE:
        if (in->have_nodes)
            return snprintf(err, errlen, "a second XENSTORE record"), -EPROTO;
        in->have_nodes = true;
        if (!in->apply)
            return 0;
        if (!in->have_cfg)
            return snprintf(err, errlen, "XENSTORE record before the CONFIG record"), -EPROTO;
        /* Written now, while the rest travels: they are the nodes as the guest left them
         * when its migration began (a running guest's later writes stay behind). */
        rc = restore_nodes(in->xs, (unsigned)in->domid, buf, len);
        return rc < 0 ? (snprintf(err, errlen, "writing the guest's xenstore nodes: %s",
                                  strerror(-rc)), rc) : 0;
    case SXM_REC_SYNC:
        if (in->reply_fd < 0)
            return 0;   /* a file has no one to answer */
        {
            const struct sxm_msg synced = { .code = SXM_MSG_SYNCED,
                                            .domid = (uint32_t)in->domid };
            rc = sxm_msg_send(in->reply_fd, &synced);
        }
        return rc < 0 ? (snprintf(err, errlen, "telling the sender: %s", strerror(-rc)), rc) : 0;
    default:
        if (!in->have_cfg)
            return snprintf(err, errlen, "%s record before the CONFIG record",
                            sxm_type_name(type)), -EPROTO;
        if (type == SXM_REC_PAGES) {
            uint32_t frames;
            memcpy(&frames, buf, sizeof(frames));   /* little-endian, as this host */
            in->pages += frames;
        } else
            in->have_state |= 1u << (type - SXM_REC_PAGE_ALLOC);
        if (!in->apply)
            return 0;
        rc = sxm_apply_record(in->core, in->d, type, buf, len);
        return rc < 0 ? (snprintf(err, errlen, "loading a %s record: %s", sxm_type_name(type),
                                  strerror(-rc)), rc) : 0;
    }
}

/* After END: what must have come did. */
static int incoming_finish(struct incoming *in, char *err, size_t errlen)
{
    if (!in->have_cfg)
        return snprintf(err, errlen, "no CONFIG record"), -EPROTO;
    if (in->have_state != 7)
        return snprintf(err, errlen, "no PAGE_ALLOC, GRANTS or EVTCHN record"), -EPROTO;
    return 0;
}

/* Read a stream to its END through incoming_record. */
static int incoming_stream(struct incoming *in, int fd, bool socket, char *err, size_t errlen)
{
    struct sxm_reader *r;
    int rc = sxm_reader_open(&r, fd, err, errlen);
    if (rc < 0)
        return rc;
    sxm_reader_allow_trailing(r, socket);
    for (;;) {
        uint32_t type;
        const void *buf;
        size_t len;
        rc = sxm_read(r, &type, &buf, &len);
        if (rc < 0) {
            snprintf(err, errlen, "%s", sxm_reader_error(r));
            break;
        }
        if (rc == 0) {
            rc = incoming_finish(in, err, errlen);
            break;
        }
        rc = incoming_record(in, type, buf, len, err, errlen);
        if (rc < 0)
            break;
    }
    sxm_reader_close(r);
    return rc;
}

/* The guest's processes parked on this core (a save here) go on as the new domain. Not when a
 * live domain has the old id (the image came from elsewhere). */
static int resume_parked(struct sxc_conn *core, domid_t old, int domid)
{
    struct sxc_dominfo infos[256];
    int n = sxc_domain_list(core, infos, 256);
    for (int i = 0; i < n && i < 256; i++)
        if (infos[i].domid == old)
            return 0;
    char path[PATH_MAX];
    int rc = own_core_path(path, sizeof(path));
    return rc < 0 ? rc : sxc_domain_resume(core, old, true, (domid_t)domid, path);
}

int sx_cmd_restore(int argc, char **argv)
{
    bool paused;
    const char *file;
    if (parse_args(argc, argv, "-p", NULL, &paused, &file, NULL))
        return 2;
    struct sxc_conn *core = NULL;
    struct xs_handle *xs = NULL;
    struct incoming in;
    char err[1024] = "";
    int ret = 1, rc;
    uint64_t t0 = sx_now_us();
    incoming_init(&in, NULL, NULL, file, false);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        return 1;
    }
    if (sx_cmd_core_connect(&core) < 0 || !(xs = sx_cmd_store_open()))
        goto out;
    /* First the whole image is read and checked; nothing is created before it passed. */
    incoming_init(&in, core, xs, file, false);
    rc = incoming_stream(&in, fd, false, err, sizeof(err));
    incoming_free(&in);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s; nothing was restored\n", prog, file, err);
        goto out;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        goto out;
    }
    incoming_init(&in, core, xs, file, true);
    rc = incoming_stream(&in, fd, false, err, sizeof(err));
    if (rc == 0 && !paused && (rc = sxc_domain_unpause(core, (domid_t)in.domid)) < 0)
        snprintf(err, sizeof(err), "unpausing: %s", strerror(-rc));
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, err);
        incoming_unbuild(&in);
        incoming_free(&in);
        goto out;
    }
    int woken = resume_parked(core, (domid_t)in.dom.domid, in.domid);
    printf("restored domain '%s' (domid %d) from %s: %" PRIu64 " frames loaded, "
           "%.0f ms%s", in.dom.name, in.domid, file, in.pages, ms_since(t0),
           paused ? ", paused" : "");
    if (woken > 0)
        printf("; %d guest process%s resumed", woken, woken == 1 ? "" : "es");
    printf("\n");
    incoming_free(&in);
    ret = 0;
out:
    close(fd);
    if (xs)
        xs_close(xs);
    sxc_disconnect(core);
    return ret;
}

/* ------------------------------------------------------------------ migrate */

/* HOST[:PORT], [V6]:PORT. */
static int split_host(const char *arg, char *host, size_t hlen, char *port, size_t plen)
{
    const char *p = NULL;
    if (arg[0] == '[') {
        const char *e = strchr(arg, ']');
        if (!e || (size_t)(e - arg - 1) >= hlen)
            return -EINVAL;
        memcpy(host, arg + 1, (size_t)(e - arg - 1));
        host[e - arg - 1] = 0;
        p = e[1] == ':' ? e + 2 : e[1] ? NULL : "";
        if (!p)
            return -EINVAL;
    } else {
        const char *c = strchr(arg, ':');
        if (c && strchr(c + 1, ':'))
            c = NULL;   /* a bare IPv6 address */
        size_t n = c ? (size_t)(c - arg) : strlen(arg);
        if (n == 0 || n >= hlen)
            return -EINVAL;
        memcpy(host, arg, n);
        host[n] = 0;
        p = c ? c + 1 : "";
    }
    snprintf(port, plen, "%s", *p ? p : DEFAULT_PORT);
    return 0;
}

static int tcp_connect(const char *arg)
{
    char host[256], port[32];
    if (split_host(arg, host, sizeof(host), port, sizeof(port)) < 0) {
        fprintf(stderr, "%s: migrate: '%s' is not HOST[:PORT]\n", prog, arg);
        return -EINVAL;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    int gr = getaddrinfo(host, port, &hints, &res);
    if (gr) {
        fprintf(stderr, "%s: migrate: %s: %s\n", prog, host, gai_strerror(gr));
        return -EHOSTUNREACH;
    }
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "%s: migrate: connecting to %s port %s: %s\n", prog, host, port,
                strerror(err));
        return -err;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Pre-copy: round 0 sends every populated frame, then rounds of what was written meanwhile
 * until one is small enough or they stop getting smaller. Returns the rounds run, or -errno. */
static int precopy(struct outgoing *o, unsigned *last_pages)
{
    int rc = sxm_put_all_pages(o->w, o->d, &o->st);
    if (rc < 0)
        return rc;
    int64_t prev = INT64_MAX;
    unsigned rounds = 1, worse = 0;
    long stop = sx_cmd_env_long("SPLITXEN_MIGRATE_STOP_PAGES", STOP_PAGES, 0, 1 << 30);
    long max = sx_cmd_env_long("SPLITXEN_MIGRATE_ROUNDS", MAX_ROUNDS, 1, 1000);
    for (;;) {
        int64_t n = send_round(o);
        if (n < 0)
            return (int)n;
        rounds++;
        *last_pages = (unsigned)n;
        if (n <= stop || rounds >= (unsigned)max)
            break;
        worse = n >= prev ? worse + 1 : 0;
        if (worse >= 3)
            break;      /* the guest writes faster than we copy: stop it */
        prev = n;
    }
    return (int)rounds;
}

int sx_cmd_migrate(int argc, char **argv)
{
    bool live;
    const char *ref, *host;
    if (parse_args(argc, argv, "--live", "-l", &live, &ref, &host))
        return 2;
    struct sx_domcmd dc;
    struct outgoing o = { 0 };
    int fd = -1, ret = 1, rc, rounds = 0;
    bool suspended = false, logdirty = false, heard = false;
    unsigned last = 0;
    uint64_t t0 = sx_now_us(), t_susp = 0, t_resumed = 0;
    struct sxm_msg m;
    if (sx_cmd_dom_open(&dc, ref, true) < 0)
        goto out;
    if ((fd = tcp_connect(host)) < 0)
        goto out;
    if ((rc = outgoing_open(&o, &dc, fd, live)) < 0 || (rc = send_head(&o)) < 0) {
        fprintf(stderr, "%s: migrate: sending domain %d: %s\n", prog, dc.domid, strerror(-rc));
        goto out;
    }
    if (live) {
        unsigned untracked = 0;
        int64_t r = sxc_domain_logdirty(dc.core, (domid_t)dc.domid, SXC_LOGDIRTY_ENABLE,
                                        &untracked);
        if (r == -EOPNOTSUPP) {
            fprintf(stderr, "%s: migrate: %u process%s of domain %d write%s its memory "
                            "untracked: stopping it to copy instead of live\n", prog, untracked,
                    untracked == 1 ? "" : "es", dc.domid, untracked == 1 ? "s" : "");
            live = false;
        } else if (r < 0) {
            fprintf(stderr, "%s: migrate: log-dirty: %s\n", prog, strerror((int)-r));
            goto out;
        } else {
            logdirty = true;
            rounds = precopy(&o, &last);
            if (rounds < 0) {
                fprintf(stderr, "%s: migrate: sending memory: %s\n", prog, strerror(-rounds));
                goto out;
            }
        }
    }
    /* The guest stops only once the receiver has taken in all that came so far (the
     * domain built, its devices with their backends, the pre-copy): that takes a while, and
     * is no reason to keep the guest stopped. */
    rc = sxm_write(o.w, SXM_REC_SYNC, NULL, 0);
    if (rc == 0)
        rc = sxm_msg_recv(fd, &m, REPLY_TIMEOUT_MS);
    heard = rc == 0 && m.code == SXM_MSG_FAIL;
    if (rc < 0 || m.code != SXM_MSG_SYNCED) {
        fprintf(stderr, "%s: migrate: the receiver %s%s\n", prog,
                rc < 0 ? "did not keep up: " : "failed: ", rc < 0 ? strerror(-rc) : m.text);
        goto out;
    }
    t_susp = sx_now_us();
    if (guest_suspend(dc.core, dc.xs, dc.domid) < 0)
        goto out;
    suspended = true;
    uint64_t t_in = sx_now_us();
    if ((rc = send_tail(&o, live)) < 0) {
        fprintf(stderr, "%s: migrate: sending the suspended domain: %s\n", prog, strerror(-rc));
        goto out;
    }
    /* The receiver has it all: wait for it to have loaded it. */
    rc = sxm_msg_recv(fd, &m, REPLY_TIMEOUT_MS);
    heard = rc == 0;
    if (rc < 0 || m.code != SXM_MSG_READY) {
        fprintf(stderr, "%s: migrate: the receiver %s%s%s\n", prog,
                rc < 0 ? "did not answer: " : "failed: ", rc < 0 ? strerror(-rc) : m.text,
                rc < 0 ? "" : "");
        goto out;
    }
    uint64_t t_ready = sx_now_us();
    struct sxm_msg go = { .code = SXM_MSG_GO };
    domid_t newid = (domid_t)m.domid;
    char core_path[sizeof(m.core_path)];
    snprintf(core_path, sizeof(core_path), "%s", m.core_path);
    if ((rc = sxm_msg_send(fd, &go)) < 0 || (rc = sxm_msg_recv(fd, &m, REPLY_TIMEOUT_MS)) < 0 ||
        m.code != SXM_MSG_DONE) {
        /* After GO the receiver may be running it: resuming here could run it twice. */
        fprintf(stderr, "%s: migrate: no word from the receiver after the go-ahead (%s); "
                        "domain %d stays suspended here: destroy it once the destination "
                        "runs it, or unpause nothing there and resume it here\n", prog,
                rc < 0 ? strerror(-rc) : m.text, dc.domid);
        suspended = false;
        ret = 1;
        goto out;
    }
    /* The destination runs it: the guest's processes go on there, the source goes. */
    uint64_t t_done = sx_now_us();
    rc = sxc_domain_resume(dc.core, (domid_t)dc.domid, true, newid, core_path);
    t_resumed = sx_now_us();
    sx_debug("suspended after %.1f ms, sent and built %.1f ms, go/done %.1f ms, resume %.1f ms",
             (t_in - t_susp) / 1e3, (t_ready - t_in) / 1e3, (t_done - t_ready) / 1e3,
             (t_resumed - t_done) / 1e3);
    suspended = false;
    logdirty = false;
    if (rc < 0)
        fprintf(stderr, "%s: migrate: telling the guest's processes: %s\n", prog, strerror(-rc));
    int moved = rc;
    double downtime = (double)(t_resumed - t_susp) / 1e3;
    struct sxm_page_stats st = o.st;
    uint64_t sent = sxm_writer_bytes(o.w);
    outgoing_close(&o);
    memset(&o, 0, sizeof(o));
    sx_cmd_unbuild_domain(dc.core, dc.xs, dc.domid);
    printf("migrated domain %d to %s as domid %u: %s, %d round%s, %.0f ms in all, guest "
           "suspended %.1f ms\n", dc.domid, host, newid, live ? "live" : "stopped and copied",
           rounds, rounds == 1 ? "" : "s", ms_since(t0), downtime);
    printf("migrate: total_ms=%.1f downtime_ms=%.1f rounds=%d last_round_pages=%u pages=%" PRIu64
           " zero_pages=%" PRIu64 " bytes=%" PRIu64 " live=%d processes=%d\n", ms_since(t0),
           downtime, rounds, last, st.pages, st.zero, sent, live, moved);
    ret = 0;
out:
    if (ret && fd >= 0 && !heard && !t_resumed) {
        /* A receiver that gave up says why before it closes: show it. */
        struct sxm_msg why;
        if (sxm_msg_recv(fd, &why, 200) == 0 && why.code == SXM_MSG_FAIL)
            fprintf(stderr, "%s: migrate: the receiver: %s\n", prog, why.text);
    }
    if (logdirty)
        sxc_domain_logdirty(dc.core, (domid_t)dc.domid, SXC_LOGDIRTY_DISABLE, NULL);
    if (ret && suspended) {
        /* Nothing runs it elsewhere: it goes on here. */
        sxc_domain_resume(dc.core, (domid_t)dc.domid, false, 0, NULL);
        fprintf(stderr, "%s: migrate failed; domain %d runs on here\n", prog, dc.domid);
    } else if (ret && dc.domid > 0 && fd >= 0) {
        fprintf(stderr, "%s: migrate failed; domain %d runs on here\n", prog, dc.domid);
    }
    if (fd >= 0)
        close(fd);
    outgoing_close(&o);
    sx_cmd_dom_close(&dc);
    return ret;
}

/* ------------------------------------------------------------------ migrate-receive */

static int tcp_listen(const char *arg, char *shown, size_t slen)
{
    char host[256] = "", port[32];
    if (!arg || !*arg)
        arg = DEFAULT_PORT;
    if (!strchr(arg, ':') && arg[0] != '[') {
        snprintf(port, sizeof(port), "%s", arg);
    } else if (split_host(arg, host, sizeof(host), port, sizeof(port)) < 0) {
        fprintf(stderr, "%s: migrate-receive: '%s' is not [ADDR:]PORT\n", prog, arg);
        return -EINVAL;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *res;
    int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gr) {
        fprintf(stderr, "%s: migrate-receive: %s: %s\n", prog, arg, gai_strerror(gr));
        return -EINVAL;
    }
    int fd = -1, err = EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        int one = 1;
        if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
                        bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 1) < 0)) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "%s: migrate-receive: listening on %s: %s\n", prog, arg, strerror(err));
        return -err;
    }
    snprintf(shown, slen, "%s:%s", host[0] ? host : "*", port);
    return fd;
}

static void send_fail(int fd, int rc, const char *why)
{
    struct sxm_msg m = { .code = SXM_MSG_FAIL, .rc = rc };
    snprintf(m.text, sizeof(m.text), "%s", why);
    sxm_msg_send(fd, &m);
}

int sx_cmd_migrate_receive(int argc, char **argv)
{
    if (argc > 2)
        return 2;
    struct sxc_conn *core = NULL;
    struct xs_handle *xs = NULL;
    struct incoming in;
    char err[1024] = "", shown[300];
    int lfd = -1, fd = -1, ret = 1, rc;
    incoming_init(&in, NULL, NULL, "migration stream", true);
    if (sx_cmd_core_connect(&core) < 0 || !(xs = sx_cmd_store_open()))
        goto out;
    char core_path[PATH_MAX];
    if ((rc = own_core_path(core_path, sizeof(core_path))) < 0) {
        fprintf(stderr, "%s: migrate-receive: %s: %s\n", prog, sx_run_dir(), strerror(-rc));
        goto out;
    }
    if ((lfd = tcp_listen(argc == 2 ? argv[1] : NULL, shown, sizeof(shown))) < 0)
        goto out;
    printf("migrate-receive: listening on %s\n", shown);
    fflush(stdout);
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: migrate-receive: accept: %s\n", prog, strerror(errno));
        goto out;
    }
    close(lfd);
    lfd = -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t t0 = sx_now_us();
    incoming_init(&in, core, xs, "migration stream", true);
    in.reply_fd = fd;
    rc = incoming_stream(&in, fd, true, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "%s: migrate-receive: %s\n", prog, err);
        send_fail(fd, rc, err);
        goto fail;
    }
    struct sxm_msg m = { .code = SXM_MSG_READY, .domid = (uint32_t)in.domid };
    if (strlen(core_path) >= sizeof(m.core_path)) {
        send_fail(fd, -ENAMETOOLONG, "the receiving core's socket path is too long");
        goto fail;
    }
    memcpy(m.core_path, core_path, strlen(core_path) + 1);
    if ((rc = sxm_msg_send(fd, &m)) < 0 || (rc = sxm_msg_recv(fd, &m, REPLY_TIMEOUT_MS)) < 0 ||
        m.code != SXM_MSG_GO) {
        fprintf(stderr, "%s: migrate-receive: no go-ahead from the sender (%s)\n", prog,
                rc < 0 ? strerror(-rc) : m.text);
        goto fail;
    }
    rc = sxc_domain_unpause(core, (domid_t)in.domid);
    if (rc < 0) {
        fprintf(stderr, "%s: migrate-receive: unpausing: %s\n", prog, strerror(-rc));
        send_fail(fd, rc, "unpausing the domain failed");
        goto fail;
    }
    m = (struct sxm_msg){ .code = SXM_MSG_DONE, .domid = (uint32_t)in.domid };
    sxm_msg_send(fd, &m);
    printf("migrate-receive: domain '%s' runs as domid %d (%.0f ms)\n", in.dom.name, in.domid,
           ms_since(t0));
    ret = 0;
    goto out;
fail:
    incoming_unbuild(&in);
out:
    incoming_free(&in);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    if (xs)
        xs_close(xs);
    sxc_disconnect(core);
    return ret;
}
