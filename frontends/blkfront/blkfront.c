/*
 * sxblkfront control plane: find the vbd, negotiate with the backend over xenstore, set up and
 * tear down the transport (ring pages, event channels). Follows Linux xen-blkfront's
 * talk_to_blkback / blkfront_connect / blkfront_closing and the key layout of <xen/io/blkif.h>.
 */
#define SX_LOG_MODULE "blkfront"
#include "frontends/blkfront/blkfront_priv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xenbus/xenbus.h"
#include <xen/io/protocols.h>

#define XB_TRANSACTION_RETRIES 16

void sx_blkfront_opts_default(struct sx_blkfront_opts *o)
{
    *o = (struct sx_blkfront_opts){
        .persistent = true,
        .max_indirect_segs = 256,
        .max_ring_order = SX_RING_MAX_ORDER,
        .max_queues = 1,
        .timeout_ms = 10000,
        .spin_ns = sx_ring_spin_ns(),
        .stats_file = true,
    };
}

/* ------------------------------------------------------------------ vdev names */

/* xvd<letters>[<partition>] as Linux names them: a..z, aa..zz, ... (bijective base 26). */
static long parse_disk_letters(const char *s, const char **end)
{
    long idx = 0;
    const char *p = s;
    while (*p >= 'a' && *p <= 'z') {
        idx = idx * 26 + (*p - 'a' + 1);
        if (idx > (1L << 20))
            return -EINVAL;
        p++;
    }
    if (p == s)
        return -EINVAL;
    *end = p;
    return idx - 1;
}

static long parse_partition(const char *p)
{
    if (!*p)
        return 0;
    if (!isdigit((unsigned char)*p) || *p == '0')
        return -EINVAL;
    char *e;
    long v = strtol(p, &e, 10);
    return *e || v > 255 ? -EINVAL : v;
}

long sx_blkfront_parse_vdev(const char *vdev)
{
    if (!vdev || !*vdev)
        return -EINVAL;
    if (isdigit((unsigned char)vdev[0])) {
        char *e;
        errno = 0;
        unsigned long v = strtoul(vdev, &e, 10);
        if (errno || *e || v > INT_MAX)
            return -EINVAL;
        return (long)v;
    }
    const char *rest;
    long disk, part;
    if (!strncmp(vdev, "xvd", 3)) {
        disk = parse_disk_letters(vdev + 3, &rest);
        part = disk < 0 ? -EINVAL : parse_partition(rest);
        if (disk < 0 || part < 0)
            return -EINVAL;
        if (disk < 16 && part < 16)
            return (202L << 8) | (disk << 4) | part;
        if (disk >= (1L << 20))
            return -EINVAL;
        return (1L << 28) | (disk << 8) | part;       /* extended xvd numbering */
    }
    if (!strncmp(vdev, "hd", 2) || !strncmp(vdev, "sd", 2)) {
        disk = parse_disk_letters(vdev + 2, &rest);
        part = disk < 0 ? -EINVAL : parse_partition(rest);
        if (disk < 0 || part < 0 || part > 15)
            return -EINVAL;
        if (vdev[0] == 'h') {
            static const int hd_major[4] = { 3, 3, 22, 22 };
            if (disk > 3 || part > 63)
                return -EINVAL;
            return ((long)hd_major[disk] << 8) | ((disk & 1) << 6) | part;
        }
        if (disk > 15)
            return -EINVAL;
        return (8L << 8) | (disk << 4) | part;
    }
    return -EINVAL;
}

/* ------------------------------------------------------------------ xenstore helpers */

static void fired_cb(void *arg, const char *path, const char *token)
{
    (void)path;
    (void)token;
    (*(unsigned *)arg)++;
}

/* Wait until <dir>/state is one of `want` (bit per state). Returns the state, -ECONNREFUSED
 * when it entered one of `bad`, -ETIMEDOUT (logged with the path and the last state seen). */
static int wait_state(struct sx_blkfront *f, const char *dir, unsigned want, unsigned bad,
                      unsigned timeout_ms, const char *what)
{
    char path[256], token[64];
    snprintf(path, sizeof(path), "%s/state", dir);
    /* Already there (a backend waiting at InitWait for a resumed frontend): one read, no
     * watch to set up and take down. */
    enum xenbus_state now;
    if (sx_xenbus_read_state(f->xb, XBT_NULL, dir, &now) == 0 && (want & (1u << now)))
        return (int)now;
    static unsigned seq;
    snprintf(token, sizeof(token), "sx-blkfront-%p-%u", (void *)f, __atomic_add_fetch(&seq, 1,
                                                                         __ATOMIC_RELAXED));
    unsigned fired = 0;
    int rc = sx_xenbus_watch(f->xb, path, token, fired_cb, &fired);
    if (rc < 0) {
        sx_err("watch %s: %s", path, strerror(-rc));
        return rc;
    }
    long long deadline = (long long)sx_now_ms() + timeout_ms;
    enum xenbus_state st = XenbusStateUnknown;
    int last = 0;
    for (;;) {
        last = sx_xenbus_read_state(f->xb, XBT_NULL, dir, &st);
        if (last == 0 && (want & (1u << st))) {
            rc = (int)st;
            break;
        }
        if (last == 0 && (bad & (1u << st))) {
            sx_err("%s: %s went %s while waiting for %s", f->info.frontend_path, path,
                   sx_xenbus_state_name(st), what);
            rc = -ECONNREFUSED;
            break;
        }
        long long left = deadline - (long long)sx_now_ms();
        if (left <= 0) {
            sx_err("%s: timed out after %u ms waiting for %s on %s (last seen: %s)",
                   f->info.frontend_path, timeout_ms, what, path,
                   last ? strerror(-last) : sx_xenbus_state_name(st));
            rc = -ETIMEDOUT;
            break;
        }
        rc = sx_xenbus_dispatch(f->xb, left > 200 ? 200 : (int)left);
        if (rc < 0) {
            sx_err("xenstore connection lost waiting for %s on %s", what, path);
            break;
        }
    }
    sx_xenbus_unwatch(f->xb, token);
    return rc;
}

static uint64_t read_uint_default(struct sx_blkfront *f, const char *dir, const char *key,
                                  uint64_t max, uint64_t dflt)
{
    uint64_t v;
    int rc = sx_xenbus_read_uint(f->xb, XBT_NULL, dir, key, 0, max, &v);
    if (rc == -ENOENT)
        return dflt;
    if (rc < 0) {
        sx_warn("%s/%s: unusable value (%s); using %llu", dir, key, strerror(-rc),
                (unsigned long long)dflt);
        return dflt;
    }
    return v;
}

static unsigned min_u(unsigned a, unsigned b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ transport */

static void queue_transport_release(struct sx_blkfront *f, struct bf_queue *q)
{
    if (q->ring_live) {
        sx_front_ring_detach(&q->ring);
        q->ring_live = false;
    }
    if (q->ring_mem) {
        int rc = -EBUSY;
        /* The backend unmaps when it sees us Closing; give it a moment if it is late. */
        for (int i = 0; i < 100 && (rc = sx_gntshr_unshare(f->shr, q->ring_mem,
                                                            1u << f->info.ring_order)) == -EBUSY; i++)
            usleep(10000);
        if (rc < 0)
            sx_warn("queue %u: ring pages not ungranted (%s); leaving them to the grant handle",
                    q->idx, strerror(-rc));
        q->ring_mem = NULL;
    }
    sx_evtchn_close(q->evt);         /* unbinds the port */
    q->evt = NULL;
    q->port = -1;
}

static int queue_transport_setup(struct sx_blkfront *f, struct bf_queue *q)
{
    unsigned pages = 1u << f->info.ring_order;
    int rc = sx_gntshr_share(f->shr, f->info.backend_id, pages, true, q->ring_refs, &q->ring_mem);
    if (rc < 0) {
        q->ring_mem = NULL;
        sx_err("queue %u: share %u ring pages: %s", q->idx, pages, strerror(-rc));
        return rc;
    }
    rc = sx_front_ring_init(&q->ring, q->ring_mem, sx_ring_bytes(f->info.ring_order),
                            sizeof(blkif_request_t), sizeof(blkif_response_t));
    if (rc < 0)
        return rc;
    q->ring_live = true;
    /* A resumed queue keeps its handle (and the fd its users poll). */
    rc = q->evt ? 0 : sx_evtchn_open(&q->evt, f->plat);
    if (rc < 0) {
        q->evt = NULL;
        sx_err("queue %u: open event channels: %s", q->idx, strerror(-rc));
        return rc;
    }
    rc = sx_evtchn_bind_unbound(q->evt, f->info.backend_id);
    if (rc < 0) {
        sx_err("queue %u: bind_unbound to dom%u: %s", q->idx, f->info.backend_id, strerror(-rc));
        return rc;
    }
    q->port = rc;
    return 0;
}

/* The per-ring keys (Linux write_per_ring_nodes) under dir. */
static int write_ring_nodes(struct sx_blkfront *f, xs_transaction_t t, const char *dir,
                            struct bf_queue *q)
{
    int rc;
    if (f->info.ring_order == 0) {
        rc = sx_xenbus_printf(f->xb, t, dir, "ring-ref", "%u", q->ring_refs[0]);
    } else {
        rc = 0;
        for (unsigned i = 0; rc == 0 && i < (1u << f->info.ring_order); i++) {
            char key[32];
            snprintf(key, sizeof(key), "ring-ref%u", i);
            rc = sx_xenbus_printf(f->xb, t, dir, key, "%u", q->ring_refs[i]);
        }
    }
    if (rc == 0)
        rc = sx_xenbus_printf(f->xb, t, dir, "event-channel", "%d", q->port);
    return rc;
}

/* A reconnect may negotiate differently from the last connection: drop every transport key
 * an earlier one may have left, so the backend never reads a stale ring-page-order or queue.
 * The directory is listed once and only keys that are there are removed: a fresh directory (a
 * first connection, or one on a new host after a move) costs one round trip, not forty. */
static bool transport_key(const char *k)
{
    static const char *const keys[] = { "ring-ref", "ring-page-order", "num-ring-pages",
                                        "event-channel", "multi-queue-num-queues" };
    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(k, keys[i]))
            return true;
    unsigned n;
    char tail;
    return (sscanf(k, "ring-ref%u%c", &n, &tail) == 1 && n < SX_RING_MAX_PAGES) ||
           (sscanf(k, "queue-%u%c", &n, &tail) == 1 && n < SX_BLKFRONT_MAX_QUEUES);
}

static int remove_stale_transport(struct sx_blkfront *f, xs_transaction_t t)
{
    return sx_xenbus_rm_if(f->xb, t, f->info.frontend_path, transport_key);
}

static int publish_transport(struct sx_blkfront *f)
{
    const char *fe = f->info.frontend_path;
    int rc = -EAGAIN;
    for (int attempt = 0; rc == -EAGAIN && attempt < XB_TRANSACTION_RETRIES; attempt++) {
        xs_transaction_t t;
        rc = sx_xenbus_transaction_start(f->xb, &t);
        if (rc < 0)
            return rc;
        rc = remove_stale_transport(f, t);
        if (rc == 0 && f->info.ring_order > 0)
            rc = sx_xenbus_printf(f->xb, t, fe, "ring-page-order", "%u", f->info.ring_order);
        if (rc == 0 && f->info.nr_queues == 1) {
            rc = write_ring_nodes(f, t, fe, &f->q[0]);
        } else if (rc == 0) {
            rc = sx_xenbus_printf(f->xb, t, fe, "multi-queue-num-queues", "%u",
                                  f->info.nr_queues);
            for (unsigned i = 0; rc == 0 && i < f->info.nr_queues; i++) {
                char dir[192];
                snprintf(dir, sizeof(dir), "%s/queue-%u", fe, i);
                rc = write_ring_nodes(f, t, dir, &f->q[i]);
            }
        }
        if (rc == 0)
            rc = sx_xenbus_write(f->xb, t, fe, "protocol", XEN_IO_PROTO_ABI_NATIVE);
        if (rc == 0)
            rc = sx_xenbus_printf(f->xb, t, fe, "feature-persistent", "%u",
                                  f->opts.persistent ? 1u : 0u);
        if (rc < 0) {
            sx_xenbus_transaction_end(f->xb, t, true);
            sx_err("%s: writing transport keys: %s", fe, strerror(-rc));
            return rc;
        }
        rc = sx_xenbus_transaction_end(f->xb, t, false);
    }
    return rc;
}

/* ------------------------------------------------------------------ connect */

static int read_backend_properties(struct sx_blkfront *f)
{
    const char *be = f->info.backend_path;
    struct sx_blkfront_info *in = &f->info;
    uint64_t v;
    int rc = sx_xenbus_read_uint(f->xb, XBT_NULL, be, "sectors", 0, UINT64_MAX / 4096, &v);
    if (rc < 0) {
        sx_err("%s/sectors: %s", be, strerror(-rc));
        return rc == -ENOENT ? -EPROTO : rc;
    }
    in->sectors = v;
    in->sector_size = (uint32_t)read_uint_default(f, be, "sector-size", 1u << 20, 512);
    if (in->sector_size < 512 || (in->sector_size & (in->sector_size - 1))) {
        sx_err("%s/sector-size %u is not a power of two >= 512", be, in->sector_size);
        return -EPROTO;
    }
    in->physical_sector_size = (uint32_t)read_uint_default(f, be, "physical-sector-size",
                                                           1u << 20, in->sector_size);
    if (in->physical_sector_size % in->sector_size)
        in->physical_sector_size = in->sector_size;
    in->vdisk_info = (uint32_t)read_uint_default(f, be, "info", UINT32_MAX, 0);
    in->size_bytes = in->sectors * 512;   /* blkif's sectors are 512 bytes (Xen 4.20 blkif.h) */
    char mode[8] = "";
    sx_xenbus_read_str(f->xb, XBT_NULL, be, "mode", mode, sizeof(mode));
    in->readonly = (in->vdisk_info & VDISK_READONLY) || !strcmp(mode, "r");
    in->flush = read_uint_default(f, be, "feature-flush-cache", 1, 0);
    in->barrier = read_uint_default(f, be, "feature-barrier", 1, 0);
    in->discard = read_uint_default(f, be, "feature-discard", 1, 0);
    if (in->discard) {
        in->discard_granularity = (uint32_t)read_uint_default(f, be, "discard-granularity",
                                                              UINT32_MAX, in->sector_size);
        in->discard_alignment = (uint32_t)read_uint_default(f, be, "discard-alignment",
                                                            UINT32_MAX, 0);
        in->discard_secure = read_uint_default(f, be, "discard-secure", 1, 0);
    }
    /* As Linux blkfront_gather_backend_features: persistent and indirect are settled now. */
    in->persistent = f->opts.persistent && read_uint_default(f, be, "feature-persistent", 1, 0);
    unsigned be_ind = (unsigned)read_uint_default(f, be, "feature-max-indirect-segments",
                                                  UINT32_MAX, 0);
    unsigned segs = min_u(min_u(be_ind, f->opts.max_indirect_segs), BF_MAX_INDIRECT_SEGS);
    in->max_indirect_segs = segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ? segs : 0;
    f->segs_per_req = in->max_indirect_segs ? in->max_indirect_segs
                                            : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    f->pages_per_slot = f->segs_per_req +
        (in->max_indirect_segs ? (unsigned)((in->max_indirect_segs + BF_SEGS_PER_IND_PAGE - 1) /
                                            BF_SEGS_PER_IND_PAGE) : 0);
    in->max_req_bytes = f->segs_per_req * SX_PAGE_SIZE;
    return 0;
}

static int find_device(struct sx_blkfront *f, const char *vdev)
{
    long devid = sx_blkfront_parse_vdev(vdev);
    if (devid < 0) {
        sx_err("'%s' is not a vbd name or number", vdev);
        return -EINVAL;
    }
    f->info.devid = (unsigned)devid;
    f->handle = (uint16_t)devid;      /* blkif_vdev_t, as Linux: the devid, truncated */
    int rc = sx_xenbus_frontend_path(f->info.frontend_path, sizeof(f->info.frontend_path),
                                     f->plat->self, "vbd", (unsigned)devid);
    if (rc < 0)
        return rc;
    const char *fe = f->info.frontend_path;
    rc = sx_xenbus_read_str(f->xb, XBT_NULL, fe, "backend", f->info.backend_path,
                            sizeof(f->info.backend_path));
    if (rc < 0) {
        sx_err("%s/backend: %s (is vbd %s configured for dom%u?)", fe, strerror(-rc), vdev,
               f->plat->self);
        /* A missing node under a directory we cannot list reads as EACCES. */
        return rc == -ENOENT || rc == -EACCES ? -ENOENT : rc;
    }
    uint64_t beid;
    rc = sx_xenbus_read_uint(f->xb, XBT_NULL, fe, "backend-id", 0, DOMID_FIRST_RESERVED - 1,
                             &beid);
    if (rc < 0) {
        sx_err("%s/backend-id: %s", fe, strerror(-rc));
        return rc == -ENOENT ? -ENOENT : rc;
    }
    f->info.backend_id = (domid_t)beid;
    return 0;
}

/* The handshake of one connection (Linux talk_to_blkback and blkfront_connect), from our
 * Initialising to Connected. nq_want: the queue count it must come out with (a resume), 0 to
 * take what the negotiation gives. */
static int connect_vbd(struct sx_blkfront *f, unsigned nq_want)
{
    const char *fe = f->info.frontend_path, *be = f->info.backend_path;
    enum xenbus_state mine;
    int rc = sx_xenbus_read_state(f->xb, XBT_NULL, fe, &mine);
    if (rc < 0)
        return rc;
    if (mine == XenbusStateInitialised || mine == XenbusStateConnected ||
        mine == XenbusStateClosing) {
        sx_err("%s is %s: another frontend holds this vbd", fe, sx_xenbus_state_name(mine));
        return -EBUSY;
    }
    if (mine != XenbusStateInitialising) {
        /* Closed by an earlier connection: Initialising again asks the backend to prepare
         * for a reconnect (Linux blkback goes back to InitWait). */
        rc = sx_xenbus_switch_state(f->xb, fe, XenbusStateInitialising);
        if (rc < 0)
            return rc;
    }

    rc = wait_state(f, be, 1u << XenbusStateInitWait, 0, f->opts.timeout_ms,
                    "the backend to reach InitWait");
    if (rc < 0)
        return rc;

    /* Transport parameters (Linux talk_to_blkback). */
    unsigned be_order = (unsigned)read_uint_default(f, be, "max-ring-page-order", 31, 0);
    if (be_order == 0) {
        unsigned pages = (unsigned)read_uint_default(f, be, "max-ring-pages", 1u << 16, 1);
        while (pages > 1) {
            be_order++;
            pages >>= 1;
        }
    }
    f->info.ring_order = min_u(min_u(be_order, f->opts.max_ring_order), SX_RING_MAX_ORDER);
    unsigned be_queues = (unsigned)read_uint_default(f, be, "multi-queue-max-queues", 1u << 16, 1);
    f->info.nr_queues = min_u(min_u(be_queues ? be_queues : 1, f->opts.max_queues),
                              SX_BLKFRONT_MAX_QUEUES);
    if (f->info.nr_queues == 0)
        f->info.nr_queues = 1;
    if (nq_want && f->info.nr_queues != nq_want) {
        sx_err("%s: the backend offers %u queue(s); the requests in flight are on %u", be,
               f->info.nr_queues, nq_want);
        return -EPROTO;
    }

    if (!f->shr) {
        rc = sx_gntshr_open(&f->shr, f->plat);
        if (rc < 0) {
            f->shr = NULL;
            return rc;
        }
    }
    for (unsigned i = 0; i < f->info.nr_queues; i++) {
        rc = queue_transport_setup(f, &f->q[i]);
        if (rc < 0)
            return rc;
    }
    f->info.ring_entries = f->q[0].ring.nr_ents;
    rc = publish_transport(f);
    if (rc < 0)
        return rc;
    rc = sx_xenbus_switch_state(f->xb, fe, XenbusStateInitialised);
    if (rc < 0)
        return rc;
    f->announced = true;

    rc = wait_state(f, be, 1u << XenbusStateConnected,
                    (1u << XenbusStateClosing) | (1u << XenbusStateClosed), f->opts.timeout_ms,
                    "the backend to reach Connected");
    if (rc < 0)
        return rc;
    rc = read_backend_properties(f);
    if (rc < 0)
        return rc;
    rc = bf_data_setup(f);
    if (rc < 0)
        return rc;
    rc = sx_xenbus_switch_state(f->xb, fe, XenbusStateConnected);
    if (rc < 0)
        return rc;
    sx_info("%s connected to %s: %llu sectors of %u, %u queue(s), ring order %u (%u entries), "
            "indirect %u, persistent %s", fe, be, (unsigned long long)f->info.sectors,
            f->info.sector_size, f->info.nr_queues, f->info.ring_order, f->info.ring_entries,
            f->info.max_indirect_segs, f->info.persistent ? "yes" : "no");
    return 0;
}

int sx_blkfront_open(struct sx_blkfront **out, struct sx_plat *p, const char *vdev_or_devid,
                     const struct sx_blkfront_opts *opts)
{
    if (!out || !p || !vdev_or_devid)
        return -EINVAL;
    struct sx_blkfront *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->plat = p;
    pthread_mutex_init(&f->xb_lock, NULL);
    pthread_mutex_init(&f->buf_lock, NULL);
    if (opts)
        f->opts = *opts;
    else
        sx_blkfront_opts_default(&f->opts);
    if (!f->opts.timeout_ms)
        f->opts.timeout_ms = 10000;
    for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++)
        f->q[i] = (struct bf_queue){ .f = f, .idx = i, .port = -1 };

    int rc = sx_xenbus_open(&f->xb, p, NULL);
    if (rc < 0) {
        sx_err("connect to xenstore as dom%u: %s", p->self, strerror(-rc));
        f->xb = NULL;
        goto fail;
    }
    rc = find_device(f, vdev_or_devid);
    if (rc < 0)
        goto fail;
    rc = connect_vbd(f, 0);
    if (rc < 0)
        goto fail;
    /* Once per open: a resume keeps the file, or makes it again under a new domid. */
    if (f->opts.stats_file &&
        sx_stats_create(&f->stats, "vbdfe", p->self, f->info.devid, bf_stat_names) < 0)
        sx_debug("%s: no stats file: counters stay private", f->info.frontend_path);
    f->stats_dom = p->self;
    *out = f;
    return 0;
fail:
    sx_blkfront_close(f);
    return rc;
}

/* ------------------------------------------------------------------ suspend / resume */

int sx_blkfront_suspend(struct sx_blkfront *f)
{
    if (!f || f->suspended || !f->data_ready)
        return -EINVAL;
    int rc = bf_inflight_save(f);
    if (rc < 0)
        return rc;
    f->suspended = true;
    return 0;
}

/* A queue's ring and port after a move: the pages were given up with the domain's old grants
 * (sx_gntshr_resume), the port with the event handle's old ports (sx_evtchn_resume). */
static void queue_transport_forget(struct bf_queue *q)
{
    if (q->ring_live) {
        sx_front_ring_detach(&q->ring);
        q->ring_live = false;
    }
    q->ring_mem = NULL;
    q->port = -1;
}

int sx_blkfront_resume(struct sx_blkfront *f, bool moved)
{
    if (!f || !f->suspended)
        return -EINVAL;
    if (!moved) {
        /* Cancelled: the requests are still on their rings; forget the copies. */
        for (unsigned i = 0; i < f->info.nr_queues; i++)
            f->q[i].nrequeue = f->q[i].nrequeue_pre;
        f->suspended = false;
        int st = sx_blkfront_backend_state(f);
        return st == XenbusStateConnected ? 0 : -ENOTCONN;
    }
    unsigned nq = f->info.nr_queues;
    int rc = sx_gntshr_resume(f->shr, f->plat);
    for (unsigned i = 0; rc == 0 && i < SX_BLKFRONT_MAX_QUEUES; i++)
        if (f->q[i].evt)
            rc = sx_evtchn_resume(f->q[i].evt, f->plat);
    if (rc < 0) {
        sx_err("%s: cannot follow the domain to its new home: %s", f->info.frontend_path,
               strerror(-rc));
        return rc;
    }
    bf_data_teardown(f, false);
    bf_bufs_forget(f);
    for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++)
        queue_transport_forget(&f->q[i]);
    f->announced = false;
    pthread_mutex_lock(&f->xb_lock);
    sx_xenbus_close(f->xb);
    rc = sx_xenbus_open(&f->xb, f->plat, NULL);
    if (rc < 0)
        f->xb = NULL;
    pthread_mutex_unlock(&f->xb_lock);
    char devid[16];
    snprintf(devid, sizeof(devid), "%u", f->info.devid);
    if (rc == 0)
        rc = find_device(f, devid);
    if (rc == 0)
        rc = connect_vbd(f, nq);
    if (rc < 0) {
        sx_err("vbd %u: reconnect after the move: %s", f->info.devid, strerror(-rc));
        return rc;
    }
    if (f->stats.v && f->stats_dom != f->plat->self) {
        /* The file is named for the domain, which has a new id here: the counters go on in
         * a file under that id (every one published again: the new file starts at 0). */
        sx_stats_destroy(&f->stats);
        if (sx_stats_create(&f->stats, "vbdfe", f->plat->self, f->info.devid,
                            bf_stat_names) < 0)
            sx_debug("%s: no stats file: counters stay private", f->info.frontend_path);
        for (unsigned i = 0; i < nq; i++)
            f->q[i].pub = (struct sx_blkfront_stats){ 0 };
        f->stats_dom = f->plat->self;
    }
    for (unsigned i = 0; i < nq && rc == 0; i++) {
        f->q[i].st.resumes++;
        rc = bf_requeue_drain(f, &f->q[i]);
    }
    f->suspended = false;
    return rc;
}

void sx_blkfront_close(struct sx_blkfront *f)
{
    if (!f)
        return;
    const char *fe = f->info.frontend_path, *be = f->info.backend_path;
    unsigned tmo = f->opts.timeout_ms;
    if (f->announced) {
        /* blkfront_closing: Closing, wait for the backend to drop the rings, then Closed. */
        if (sx_xenbus_switch_state(f->xb, fe, XenbusStateClosing) == 0)
            wait_state(f, be, (1u << XenbusStateClosing) | (1u << XenbusStateClosed) |
                              (1u << XenbusStateUnknown), 0, tmo,
                       "the backend to reach Closing");
    }
    bf_data_teardown(f, true);
    bf_bufs_release(f);
    sx_stats_destroy(&f->stats);
    for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++) {
        queue_transport_release(f, &f->q[i]);
        free(f->q[i].requeue);
    }
    if (f->announced) {
        if (sx_xenbus_switch_state(f->xb, fe, XenbusStateClosed) == 0)
            wait_state(f, be, (1u << XenbusStateClosed) | (1u << XenbusStateUnknown) |
                              (1u << XenbusStateInitWait), 0, tmo < 2000 ? tmo : 2000,
                       "the backend to reach Closed");
        f->announced = false;
    }
    sx_gntshr_close(f->shr);
    sx_xenbus_close(f->xb);
    pthread_mutex_destroy(&f->xb_lock);
    pthread_mutex_destroy(&f->buf_lock);
    free(f);
}

const struct sx_blkfront_info *sx_blkfront_info(const struct sx_blkfront *f)
{
    return &f->info;
}
