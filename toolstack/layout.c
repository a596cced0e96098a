/*
 * The toolstack's xenstore layout: built as data, applied and removed in transactions.
 * See layout.h. Node order and permissions follow libxl (libxl__domain_make,
 * libxl__build_post, libxl__device_generic_add, libxl_disk.c, libxl_nic.c) as captured in
 * ../shared/xenstore-reference/handshake.txt (beside the checkout).
 */
#include "toolstack/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#define SX_LOG_MODULE "toolstack"
#include "log.h"

#define XEN_SCRIPT_DIR "/etc/xen/scripts"

void sx_layout_init(struct sx_layout *l)
{
    l->nodes = NULL;
    l->n = l->cap = 0;
}

void sx_layout_clear(struct sx_layout *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->nodes[i].path);
        free(l->nodes[i].value);
        free(l->nodes[i].perms);
    }
    free(l->nodes);
    sx_layout_init(l);
}

const struct sx_xs_node *sx_layout_find(const struct sx_layout *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->nodes[i].path, path))
            return &l->nodes[i];
    return NULL;
}

/* Append one node; the path is printf-formatted. ENSURE nodes already present are skipped
 * (a domain layout and several device layouts share parents). */
static int add(struct sx_layout *l, unsigned flags, const char *value, const char *perms,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int add(struct sx_layout *l, unsigned flags, const char *value, const char *perms,
               const char *fmt, ...)
{
    char *path;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&path, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    if ((flags & SX_XS_ENSURE) && sx_layout_find(l, path)) {
        free(path);
        return 0;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct sx_xs_node *nn = realloc(l->nodes, nc * sizeof(*nn));
        if (!nn) {
            free(path);
            return -ENOMEM;
        }
        l->nodes = nn;
        l->cap = nc;
    }
    struct sx_xs_node *n = &l->nodes[l->n];
    n->path = path;
    n->value = strdup(value ? value : "");
    n->perms = strdup(perms);
    n->flags = flags | (value ? 0 : SX_XS_DIR);
    if (!n->value || !n->perms) {
        free(n->path);
        free(n->value);
        free(n->perms);
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

/* Permission strings. libxl's "roperm" {n0, r<domid>}: owned by dom0, readable by the
 * domain; "rwperm" {n<domid>}: owned (so writable) by the domain. */
struct perms {
    char ro[32], rw[32], own0[8];
};

static void perms_for(struct perms *p, uint32_t domid)
{
    if (domid == 0)
        snprintf(p->ro, sizeof(p->ro), "n0");
    else
        snprintf(p->ro, sizeof(p->ro), "n0,r%" PRIu32, domid);
    snprintf(p->rw, sizeof(p->rw), "n%" PRIu32, domid);
    snprintf(p->own0, sizeof(p->own0), "n0");
}

#define TRY(x)              \
    do {                    \
        int rc_ = (x);      \
        if (rc_)            \
            return rc_;     \
    } while (0)

int sx_layout_add_domain(struct sx_layout *l, const struct sx_layout_dom *d)
{
    struct perms p;
    char num[32];
    const uint32_t id = d->domid;

    if (!d->name || !d->uuid)
        return -EINVAL;
    perms_for(&p, id);

    /* libxl__domain_make */
    TRY(add(l, SX_XS_ROOT, NULL, p.ro, "/local/domain/%u", id));
    TRY(add(l, SX_XS_ENSURE, NULL, p.own0, "/vm"));
    TRY(add(l, SX_XS_ROOT, NULL, p.ro, "/vm/%s", d->uuid));
    TRY(add(l, SX_XS_ENSURE, NULL, p.own0, "/libxl"));
    TRY(add(l, SX_XS_ROOT, NULL, p.own0, "/libxl/%u", id));
    TRY(add(l, 0, NULL, p.own0, "/libxl/%u/device", id));
    char vm[64];
    snprintf(vm, sizeof(vm), "/vm/%s", d->uuid);
    TRY(add(l, 0, vm, p.ro, "/local/domain/%u/vm", id));
    TRY(add(l, 0, d->name, p.ro, "/local/domain/%u/name", id));
    TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/cpu", id));
    TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/memory", id));
    TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/device", id));
    TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/control", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/control/shutdown", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/control/feature-poweroff", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/control/feature-reboot", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/control/feature-suspend", id));
    TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/device/suspend", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/device/suspend/event-channel", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/data", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/drivers", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/feature", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/attr", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/error", id));
    TRY(add(l, 0, "", p.rw, "/local/domain/%u/control/sysrq", id));
    TRY(add(l, 0, d->uuid, p.ro, "/vm/%s/uuid", d->uuid));
    TRY(add(l, 0, d->name, p.ro, "/vm/%s/name", d->uuid));
    TRY(add(l, 0, "1", p.ro, "/local/domain/%u/control/platform-feature-multiprocessor-suspend",
            id));
    TRY(add(l, 0, "1", p.ro, "/local/domain/%u/control/platform-feature-xs_reset_watches", id));
    TRY(add(l, 0, sx_cfg_domtype_name(d->type), p.own0, "/libxl/%u/type", id));
    TRY(add(l, 0, "qemu_xen", p.own0, "/libxl/%u/dm-version", id));

    /* libxl__build_post */
    snprintf(num, sizeof(num), "%" PRIu64, d->maxmem_kb);
    TRY(add(l, 0, num, p.ro, "/local/domain/%u/memory/static-max", id));
    snprintf(num, sizeof(num), "%" PRIu64, d->memory_kb);
    TRY(add(l, 0, num, p.ro, "/local/domain/%u/memory/target", id));
    TRY(add(l, 0, "0", p.ro, "/local/domain/%u/memory/videoram", id));
    snprintf(num, sizeof(num), "%" PRIu32, id);
    TRY(add(l, 0, num, p.ro, "/local/domain/%u/domid", id));
    if (d->store_port >= 0 || d->store_ring_ref >= 0)
        TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/store", id));
    if (d->store_port >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, d->store_port);
        TRY(add(l, 0, num, p.ro, "/local/domain/%u/store/port", id));
    }
    if (d->store_ring_ref >= 0) {
        snprintf(num, sizeof(num), "%" PRId64, d->store_ring_ref);
        TRY(add(l, 0, num, p.ro, "/local/domain/%u/store/ring-ref", id));
    }
    unsigned maxv = d->maxvcpus > d->vcpus ? d->maxvcpus : d->vcpus;
    for (unsigned i = 0; i < maxv; i++) {
        TRY(add(l, 0, NULL, p.ro, "/local/domain/%u/cpu/%u", id, i));
        TRY(add(l, 0, i < d->vcpus ? "online" : "offline", p.ro,
                "/local/domain/%u/cpu/%u/availability", id, i));
    }
    if (d->start_time)
        TRY(add(l, 0, d->start_time, p.ro, "/vm/%s/start_time", d->uuid));
    return 0;
}

/* The parents a device directory hangs from, as libxl's implicit creation leaves them:
 * each inherits the permissions of the domain directory above it. */
static int add_device_parents(struct sx_layout *l, uint32_t fe, uint32_t be, const char *kind)
{
    struct perms pf, pb;
    perms_for(&pf, fe);
    perms_for(&pb, be);
    TRY(add(l, SX_XS_ENSURE, NULL, pf.ro, "/local/domain/%u/device", fe));
    TRY(add(l, SX_XS_ENSURE, NULL, pf.ro, "/local/domain/%u/device/%s", fe, kind));
    TRY(add(l, SX_XS_ENSURE, NULL, pb.ro, "/local/domain/%u/backend", be));
    TRY(add(l, SX_XS_ENSURE, NULL, pb.ro, "/local/domain/%u/backend/%s", be, kind));
    TRY(add(l, SX_XS_ENSURE, NULL, pb.ro, "/local/domain/%u/backend/%s/%u", be, kind, fe));
    TRY(add(l, SX_XS_ENSURE, NULL, "n0", "/libxl/%u/device", fe));
    TRY(add(l, SX_XS_ENSURE, NULL, "n0", "/libxl/%u/device/%s", fe, kind));
    return 0;
}

/* A flat list of key/value pairs, for libxl's "bents" that go to the backend and its copy. */
struct kv {
    const char *k;
    char v[256];
};

static int add_kvs(struct sx_layout *l, const char *dir, const char *perms,
                   const struct kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        TRY(add(l, 0, kv[i].v, perms, "%s/%s", dir, kv[i].k));
    return 0;
}

static void kv_set(struct kv *kv, size_t *n, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void kv_set(struct kv *kv, size_t *n, const char *k, const char *fmt, ...)
{
    va_list ap;
    kv[*n].k = k;
    va_start(ap, fmt);
    vsnprintf(kv[*n].v, sizeof(kv[*n].v), fmt, ap);
    va_end(ap);
    (*n)++;
}

static const char *script_path(const char *script, char *buf, size_t len)
{
    if (script[0] == '/')
        return script;
    snprintf(buf, len, "%s/%s", XEN_SCRIPT_DIR, script);
    return buf;
}

/* libxl__device_generic_add: libxl copy (frontend, backend), frontend dir with its keys,
 * backend dir with "frontend" and bents, then bents again into the libxl copy. */
static int add_device(struct sx_layout *l, uint32_t fe, uint32_t be, const char *kind,
                      uint32_t devid, const struct kv *front, size_t nfront,
                      const struct kv *ro_front, size_t nro_front, const struct kv *back,
                      size_t nback)
{
    char fdir[128], bdir[128], ldir[128], fperm[32], bperm[32];

    snprintf(fdir, sizeof(fdir), "/local/domain/%u/device/%s/%u", fe, kind, devid);
    snprintf(bdir, sizeof(bdir), "/local/domain/%u/backend/%s/%u/%u", be, kind, fe, devid);
    snprintf(ldir, sizeof(ldir), "/libxl/%u/device/%s/%u", fe, kind, devid);
    snprintf(fperm, sizeof(fperm), "n%u,r%u", fe, be);
    snprintf(bperm, sizeof(bperm), "n%u,r%u", be, fe);
    if (fe == be)       /* a domain serving itself: one entry, as xenstored would show it */
        snprintf(fperm, sizeof(fperm), "n%u", fe), snprintf(bperm, sizeof(bperm), "n%u", be);

    TRY(add_device_parents(l, fe, be, kind));
    TRY(add(l, SX_XS_ROOT, NULL, "n0", "%s", ldir));
    TRY(add(l, 0, fdir, "n0", "%s/frontend", ldir));
    TRY(add(l, 0, bdir, "n0", "%s/backend", ldir));

    TRY(add(l, SX_XS_ROOT, NULL, fperm, "%s", fdir));
    TRY(add(l, 0, bdir, fperm, "%s/backend", fdir));
    TRY(add_kvs(l, fdir, fperm, front, nfront));
    TRY(add_kvs(l, fdir, bperm, ro_front, nro_front));

    TRY(add(l, SX_XS_ROOT, NULL, bperm, "%s", bdir));
    TRY(add(l, 0, fdir, bperm, "%s/frontend", bdir));
    TRY(add_kvs(l, bdir, bperm, back, nback));
    TRY(add_kvs(l, ldir, "n0", back, nback));
    return 0;
}

int sx_layout_add_vbd(struct sx_layout *l, uint32_t fe, uint32_t be, enum sx_cfg_domtype type,
                      const struct sx_cfg_disk *disk)
{
    struct kv front[8], back[16];
    size_t nf = 0, nb = 0;
    char sbuf[256];

    /* libxl_disk.c device_disk_add, in its order */
    kv_set(front, &nf, "backend-id", "%u", be);
    kv_set(front, &nf, "state", "1");
    kv_set(front, &nf, "virtual-device", "%" PRIu32, disk->devid);
    kv_set(front, &nf, "device-type", "%s", disk->cdrom ? "cdrom" : "disk");
    kv_set(front, &nf, "trusted", "%s", disk->trusted ? "1" : "0");
    if (type == SX_CFG_PV)    /* PV only: old blkfronts need it (x86_64 guests) */
        kv_set(front, &nf, "protocol", "x86_64-abi");

    kv_set(back, &nb, "params", "%s", disk->target);
    /* A network target has nothing for the block script to set up: no script unless the
     * config names one (splitxen-blkback then writes hotplug-status itself). */
    if (disk->backendtype == SX_CFG_DISK_PHY && (!disk->net || disk->script))
        kv_set(back, &nb, "script", "%s",
               script_path(disk->script ? disk->script : "block", sbuf, sizeof(sbuf)));
    kv_set(back, &nb, "frontend-id", "%u", fe);
    kv_set(back, &nb, "online", "1");
    kv_set(back, &nb, "removable", "%s", disk->cdrom ? "1" : "0");
    kv_set(back, &nb, "bootable", "1");
    kv_set(back, &nb, "state", "1");
    kv_set(back, &nb, "dev", "%s", disk->vdev);
    kv_set(back, &nb, "type", "%s", disk->backendtype == SX_CFG_DISK_QDISK ? "qdisk" : "phy");
    kv_set(back, &nb, "mode", "%s", disk->readwrite ? "w" : "r");
    kv_set(back, &nb, "device-type", "%s", disk->cdrom ? "cdrom" : "disk");
    kv_set(back, &nb, "discard-enable", "%s", disk->discard ? "1" : "0");
    kv_set(back, &nb, "specification", "xen");

    return add_device(l, fe, be, "vbd", disk->devid, front, nf, NULL, 0, back, nb);
}

int sx_layout_add_vif(struct sx_layout *l, uint32_t fe, uint32_t be,
                      const struct sx_cfg_vif *vif)
{
    struct kv front[8], ro_front[2], back[20];
    size_t nf = 0, nro = 0, nb = 0;
    char mac[18], sbuf[256];

    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", vif->mac[0], vif->mac[1],
             vif->mac[2], vif->mac[3], vif->mac[4], vif->mac[5]);

    /* libxl__device_add_async's generic entries, then libxl__set_xenstore_nic's */
    kv_set(front, &nf, "backend-id", "%u", be);
    kv_set(front, &nf, "state", "1");
    kv_set(front, &nf, "handle", "%d", vif->devid);
    kv_set(front, &nf, "mac", "%s", mac);
    kv_set(front, &nf, "trusted", "%s", vif->trusted ? "1" : "0");
    kv_set(ro_front, &nro, "mtu", "%u", vif->mtu);

    kv_set(back, &nb, "frontend-id", "%u", fe);
    kv_set(back, &nb, "online", "1");
    kv_set(back, &nb, "state", "1");
    kv_set(back, &nb, "script", "%s", script_path(vif->script ? vif->script : "vif-bridge",
                                                  sbuf, sizeof(sbuf)));
    if (vif->vifname)
        kv_set(back, &nb, "vifname", "%s", vif->vifname);
    kv_set(back, &nb, "mac", "%s", mac);
    if (vif->ip)
        kv_set(back, &nb, "ip", "%s", vif->ip);
    if (vif->gatewaydev)
        kv_set(back, &nb, "gatewaydev", "%s", vif->gatewaydev);
    if (vif->rate_interval_usecs > 0)
        kv_set(back, &nb, "rate", "%" PRIu64 ",%" PRIu32, vif->rate_bytes_per_interval,
               vif->rate_interval_usecs);
    if (vif->mtu != 1500)
        kv_set(back, &nb, "mtu", "%u", vif->mtu);
    kv_set(back, &nb, "bridge", "%s", vif->bridge ? vif->bridge : "xenbr0");
    kv_set(back, &nb, "handle", "%d", vif->devid);
    kv_set(back, &nb, "type", "%s", vif->type == SX_CFG_NIC_IOEMU ? "vif_ioemu" : "vif");
    /* splitxen extra: the cap on queues the toolstack asks netback for (absent: its own) */
    if (vif->queues)
        kv_set(back, &nb, "queues", "%u", vif->queues);
    /* libxl: "Force backend to wait for hotplug script execution before switching to
     * connected state." splitxen's netback writes "connected" itself. */
    kv_set(back, &nb, "hotplug-status", "%s", "");

    return add_device(l, fe, be, "vif", (uint32_t)vif->devid, front, nf, ro_front, nro, back,
                      nb);
}

/* ------------------------------------------------------------------------------------------ */

int sx_layout_parse_perms(const char *s, struct xs_permissions *out, unsigned max)
{
    unsigned n = 0;
    const char *p = s;
    while (*p) {
        if (n == max)
            return -EINVAL;
        unsigned t;
        switch (*p) {
        case 'n': t = XS_PERM_NONE; break;
        case 'r': t = XS_PERM_READ; break;
        case 'w': t = XS_PERM_WRITE; break;
        case 'b': t = XS_PERM_READ | XS_PERM_WRITE; break;
        default: return -EINVAL;
        }
        p++;
        char *ep;
        errno = 0;
        unsigned long id = strtoul(p, &ep, 10);
        if (ep == p || errno || id > 0xffff)
            return -EINVAL;
        out[n].id = (unsigned)id;
        out[n].perms = t;
        n++;
        p = ep;
        if (*p == ',') {
            if (!*++p)
                return -EINVAL;   /* trailing comma */
        } else if (*p) {
            return -EINVAL;
        }
    }
    return n ? (int)n : -EINVAL;
}

static char *parent_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s || s == path)
        return strdup("/");
    return strndup(path, s - path);
}

/* Paths the toolstack never prunes, even when empty: the tree's fixed skeleton and the
 * per-domain roots (those go only with the domain). /vm and /libxl are the toolstack's own
 * and go when the last domain does. */
static bool protected_path(const char *p)
{
    unsigned id;
    int used = -1;
    if (!strcmp(p, "/") || !strcmp(p, "/local") || !strcmp(p, "/local/domain"))
        return true;
    if (sscanf(p, "/local/domain/%u%n", &id, &used) == 1 && used == (int)strlen(p))
        return true;
    if (sscanf(p, "/libxl/%u%n", &id, &used) == 1 && used == (int)strlen(p))
        return true;
    /* libxl prunes this one too; splitxen keeps it so that detaching the last device gives
     * back the tree the domain had before the attach */
    used = -1;
    if (sscanf(p, "/libxl/%u/device%n", &id, &used) == 1 && used == (int)strlen(p))
        return true;
    return false;
}

/* An op failed: -errno (EAGAIN tells the caller to retry the transaction). */
static int xs_errno(void)
{
    return errno ? -errno : -EIO;
}

static int node_exists(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
    unsigned len;
    void *v = xs_read(xs, t, path, &len);
    if (v) {
        free(v);
        return 1;
    }
    return errno == ENOENT ? 0 : xs_errno();
}

static int rm_quiet(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
    if (xs_rm(xs, t, path) || errno == ENOENT)
        return 0;
    return xs_errno();
}

/* As libxl__xs_path_cleanup's upward walk: remove `path` and its parents while empty. */
static int prune_up(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
    char *p = strdup(path);
    int rc = 0;
    if (!p)
        return -ENOMEM;
    while (!protected_path(p)) {
        unsigned num;
        char **d = xs_directory(xs, t, p, &num);
        if (!d && errno != ENOENT) {
            rc = xs_errno();
            break;
        }
        free(d);
        if (d && num > 0)
            break;
        if (d && (rc = rm_quiet(xs, t, p)))
            break;
        char *up = parent_of(p);
        free(p);
        p = up;
        if (!p)
            return -ENOMEM;
    }
    free(p);
    return rc;
}

static int perms_equal(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static int apply_node(struct xs_handle *xs, xs_transaction_t t, const struct sx_layout *l,
                      const struct sx_xs_node *n)
{
    struct xs_permissions perms[8];
    int np, rc;

    if (n->flags & SX_XS_ENSURE) {
        rc = node_exists(xs, t, n->path);
        if (rc)
            return rc < 0 ? rc : 0;
    }
    if ((n->flags & SX_XS_ROOT) && (rc = rm_quiet(xs, t, n->path)))
        return rc;
    if (n->flags & SX_XS_DIR) {
        if (!xs_mkdir(xs, t, n->path))
            return xs_errno();
    } else if (!xs_write(xs, t, n->path, n->value, strlen(n->value))) {
        return xs_errno();
    }
    /* A node created under a parent inherits the parent's permissions; set them only where
     * they differ (or where the parent is not ours), as libxl does. */
    char *parent = parent_of(n->path);
    if (!parent)
        return -ENOMEM;
    const struct sx_xs_node *pn = sx_layout_find(l, parent);
    bool inherit = pn && !(n->flags & (SX_XS_ROOT | SX_XS_ENSURE)) &&
                   !(pn->flags & SX_XS_ENSURE) && perms_equal(pn->perms, n->perms);
    free(parent);
    if (inherit)
        return 0;
    np = sx_layout_parse_perms(n->perms, perms, 8);
    if (np < 0)
        return np;
    if (!xs_set_permissions(xs, t, n->path, perms, (unsigned)np))
        return xs_errno();
    return 0;
}

/* Run `body` in a transaction, retrying the whole of it on EAGAIN a bounded number of
 * times. */
static int in_transaction(struct xs_handle *xs,
                          int (*body)(struct xs_handle *, xs_transaction_t, const void *),
                          const void *arg)
{
    for (int attempt = 0; attempt < SX_LAYOUT_RETRIES; attempt++) {
        xs_transaction_t t = xs_transaction_start(xs);
        if (t == XBT_NULL)
            return xs_errno();
        int rc = body(xs, t, arg);
        if (rc) {
            xs_transaction_end(xs, t, true);
            if (rc == -EAGAIN)
                continue;
            return rc;
        }
        if (xs_transaction_end(xs, t, false))
            return 0;
        if (errno != EAGAIN)
            return xs_errno();
        sx_debug("transaction conflict, retry %d", attempt + 1);
    }
    sx_warn("xenstore transaction still conflicting after %d attempts", SX_LAYOUT_RETRIES);
    return -EAGAIN;
}

static int apply_body(struct xs_handle *xs, xs_transaction_t t, const void *arg)
{
    const struct sx_layout *l = arg;
    for (size_t i = 0; i < l->n; i++) {
        int rc = apply_node(xs, t, l, &l->nodes[i]);
        if (rc) {
            sx_err("xenstore: writing %s failed: %s", l->nodes[i].path, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

int sx_layout_apply(struct xs_handle *xs, const struct sx_layout *l)
{
    return in_transaction(xs, apply_body, l);
}

static int unapply_body(struct xs_handle *xs, xs_transaction_t t, const void *arg)
{
    const struct sx_layout *l = arg;
    int rc;
    for (size_t i = l->n; i-- > 0;) {
        const struct sx_xs_node *n = &l->nodes[i];
        if ((n->flags & SX_XS_ROOT) && (rc = rm_quiet(xs, t, n->path)))
            return rc;
    }
    for (size_t i = l->n; i-- > 0;) {
        const struct sx_xs_node *n = &l->nodes[i];
        if (n->flags & SX_XS_ENSURE) {
            rc = prune_up(xs, t, n->path);
        } else if (n->flags & SX_XS_ROOT) {
            char *parent = parent_of(n->path);
            rc = parent ? prune_up(xs, t, parent) : -ENOMEM;
            free(parent);
        } else {
            rc = 0;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int sx_layout_unapply(struct xs_handle *xs, const struct sx_layout *l)
{
    return in_transaction(xs, unapply_body, l);
}

/* ------------------------------------------------------------------------------------------ */
/* Removal from what xenstore holds. Only paths of the expected shape are removed: the
 * /libxl tree is dom0-only, but the check costs nothing. */

static bool device_path_ok(const char *p, const char *kind, bool backend)
{
    unsigned a, b, c;
    char k[16];
    int used = -1;
    if (backend)
        return sscanf(p, "/local/domain/%u/backend/%15[a-z0-9]/%u/%u%n", &a, k, &b, &c,
                      &used) == 4 && used == (int)strlen(p) && !strcmp(k, kind);
    return sscanf(p, "/local/domain/%u/device/%15[a-z0-9]/%u%n", &a, k, &b, &used) == 3 &&
           used == (int)strlen(p) && !strcmp(k, kind);
}

/* Remove one device recorded at /libxl/<fe>/device/<kind>/<devid>. */
static int remove_one_device(struct xs_handle *xs, xs_transaction_t t, uint32_t fe,
                             const char *kind, const char *devid)
{
    char ldir[160], key[192];
    int rc = 0;
    snprintf(ldir, sizeof(ldir), "/libxl/%u/device/%s/%s", fe, kind, devid);
    for (int i = 0; i < 2 && !rc; i++) {
        unsigned len;
        snprintf(key, sizeof(key), "%s/%s", ldir, i ? "backend" : "frontend");
        char *p = xs_read(xs, t, key, &len);
        if (!p) {
            if (errno != ENOENT)
                rc = xs_errno();
            continue;
        }
        if (device_path_ok(p, kind, i == 1)) {
            rc = rm_quiet(xs, t, p);
            if (!rc) {
                char *parent = parent_of(p);
                rc = parent ? prune_up(xs, t, parent) : -ENOMEM;
                free(parent);
            }
        } else {
            sx_warn("xenstore: %s holds an unexpected path '%s'; left alone", key, p);
        }
        free(p);
    }
    if (!rc)
        rc = rm_quiet(xs, t, ldir);
    if (!rc) {
        snprintf(key, sizeof(key), "/libxl/%u/device/%s", fe, kind);
        rc = prune_up(xs, t, key);
    }
    return rc;
}

struct rm_dev_arg {
    uint32_t fe;
    const char *kind;
    char devid[16];
};

static int remove_device_body(struct xs_handle *xs, xs_transaction_t t, const void *arg)
{
    const struct rm_dev_arg *a = arg;
    char ldir[160];
    snprintf(ldir, sizeof(ldir), "/libxl/%u/device/%s/%s", a->fe, a->kind, a->devid);
    int rc = node_exists(xs, t, ldir);
    if (rc <= 0)
        return rc < 0 ? rc : -ENOENT;
    return remove_one_device(xs, t, a->fe, a->kind, a->devid);
}

int sx_layout_remove_device(struct xs_handle *xs, uint32_t fe, const char *kind,
                            uint32_t devid)
{
    struct rm_dev_arg a = { .fe = fe, .kind = kind };
    if (strlen(kind) > 15 || strchr(kind, '/'))
        return -EINVAL;
    snprintf(a.devid, sizeof(a.devid), "%u", devid);
    return in_transaction(xs, remove_device_body, &a);
}

static int remove_domain_body(struct xs_handle *xs, xs_transaction_t t, const void *arg)
{
    uint32_t domid = *(const uint32_t *)arg;
    char path[128];
    unsigned nk, nd;
    int rc = 0;

    snprintf(path, sizeof(path), "/libxl/%u/device", domid);
    char **kinds = xs_directory(xs, t, path, &nk);
    if (!kinds && errno != ENOENT)
        return xs_errno();
    for (unsigned i = 0; kinds && i < nk && !rc; i++) {
        if (strlen(kinds[i]) > 15)
            continue;
        snprintf(path, sizeof(path), "/libxl/%u/device/%s", domid, kinds[i]);
        char **devs = xs_directory(xs, t, path, &nd);
        if (!devs) {
            if (errno != ENOENT)
                rc = xs_errno();
            continue;
        }
        for (unsigned j = 0; j < nd && !rc; j++)
            if (strlen(devs[j]) < 16)
                rc = remove_one_device(xs, t, domid, kinds[i], devs[j]);
        free(devs);
    }
    free(kinds);
    if (rc)
        return rc;

    snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
    unsigned len;
    char *vm = xs_read(xs, t, path, &len);
    if (!vm && errno != ENOENT)
        return xs_errno();
    if (vm && strncmp(vm, "/vm/", 4) == 0 && !strstr(vm, "..") && !strchr(vm + 4, '/') &&
        vm[4])
        rc = rm_quiet(xs, t, vm);
    free(vm);
    if (rc)
        return rc;
    snprintf(path, sizeof(path), "/local/domain/%u", domid);
    if ((rc = rm_quiet(xs, t, path)))
        return rc;
    snprintf(path, sizeof(path), "/libxl/%u", domid);
    if ((rc = rm_quiet(xs, t, path)))
        return rc;
    if ((rc = prune_up(xs, t, "/vm")))
        return rc;
    return prune_up(xs, t, "/libxl");
}

int sx_layout_remove_domain(struct xs_handle *xs, uint32_t domid)
{
    if (domid == 0)
        return -EPERM;
    return in_transaction(xs, remove_domain_body, &domid);
}
