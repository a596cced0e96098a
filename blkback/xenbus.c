/*
 * blkback control plane (Linux drivers/block/xen-blkback/xenbus.c): watches the backend
 * directory /local/domain/<self>/backend/vbd, serves every vbd written there and follows the
 * xenbus handshake for each.
 *
 * A vbd's state is re-evaluated from xenstore after a watch event names it (level-triggered,
 * idempotent; what is watched and what an event costs: "watches and the vbd list" below):
 *
 *   new vbd          open `params` (O_DIRECT when the target takes it, O_RDONLY for mode=r),
 *                    write physical-device, hotplug-status=connected and the features, InitWait
 *   fe Initialised   read ring-page-order, ring-ref(N), multi-queue-num-queues + queue-N/,
 *   or Connected     event-channel, protocol, feature-persistent (every value checked, a bad
 *                    one fails this vbd only: <be>/error + Closing), map rings, bind event
 *                    channels, start one thread per queue, write sectors/info/sector-size,
 *                    Connected
 *   fe Closing       stop threads (in-flight I/O completes), unmap, unbind: Closing
 *   fe Closed/gone,  the same, close the target, remove the stats file: Closed (6)
 *   online=0, toolstack wrote state 5, frontend domain released, vbd directory removed
 *   fe Initialising  after Closed: back to InitWait (reconnect); while connected (its Closed
 *                    and the new Initialising read as one change): disconnect first, InitWait
 *
 * A restarted daemon finds frontends already Initialised or Connected and connects to them
 * straight away: the rings are re-mapped and the ring loop continues from the responses
 * published so far (req_cons = rsp_prod), so requests the previous process took but never
 * answered are executed again. Connected is written again (unchanged if it was there).
 */
#define SX_LOG_MODULE "blkback"
#include "blkback/common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "log.h"
#include "xenbus/xenbus.h"

static const char *const bb_dstat_names[BB_DS_NR + 1] = {
    [BB_DS_WATCH_EVENTS] = "watch_events",
    [BB_DS_WATCH_IGNORED] = "watch_ignored",
    [BB_DS_EVALS] = "vbd_evals",
    [BB_DS_RESCANS] = "rescans",
    [BB_DS_VBDS] = "vbds",
    [BB_DS_CONNECTED] = "connected",
    [BB_DS_ROUNDS] = "rounds",
    [BB_DS_NR] = NULL,
};
/* Levels rather than counts (common/stats.h): what `splitxen top --prometheus` calls gauges. */
static const char *const bb_dstat_gauges[] = { "vbds", "connected", NULL };
static const char *const bb_stat_gauges[] = { "in_flight", NULL };

static void dstat_add(struct bb_daemon *d, enum bb_dstat i, uint64_t n)
{
    sx_stats_add(&d->stats, i, n);
}

/* The gauges, after the vbd list or a vbd's phase may have changed. */
static void dstat_gauges(struct bb_daemon *d)
{
    uint64_t conn = 0;
    for (struct bb_vbd *v = d->vbds; v; v = v->next)
        conn += v->phase == BB_CONNECTED;
    sx_stats_set(&d->stats, BB_DS_VBDS, d->nr_vbds);
    sx_stats_set(&d->stats, BB_DS_CONNECTED, conn);
}

void bb_opts_default(struct bb_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->plat = SX_PLAT_SIM;
    o->domid = 0;
    o->engine = SX_BIO_AUTO;
    o->spin_ns = sx_ring_spin_ns();
    o->turnaround_ns = 20000;
    o->max_queues = 4;
    o->max_ring_order = SX_RING_MAX_ORDER;
    o->max_indirect = 256;
    o->max_pgrants = BB_DEFAULT_MAX_PGRANTS;
    o->spin_yield = true;
    sx_tt_opts_default(&o->tt);
}

/* ------------------------------------------------------------------ helpers */

static void vbd_error(struct bb_vbd *v, int err, const char *what)
{
    struct bb_daemon *d = v->d;
    sx_log_ratelimited(SX_LOG_WARN, "%s: %s: %s", v->bep, what, strerror(-err));
    sx_xenbus_printf(d->xb, XBT_NULL, v->bep, "error", "%d %s", -err, what);
}

static int read_fe_uint(struct bb_vbd *v, const char *dir, const char *key, uint64_t min,
                        uint64_t max, uint64_t dflt, uint64_t *out)
{
    int rc = sx_xenbus_read_uint(v->d->xb, XBT_NULL, dir, key, min, max, out);
    if (rc == -ENOENT && dflt != UINT64_MAX) {
        *out = dflt;
        return 0;
    }
    return rc;
}

/* ------------------------------------------------------------------ target */

static void target_close(struct bb_vbd *v)
{
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    sx_bio_target_close(v->target);   /* after the engines on it: vbd_disconnect came first */
    v->target = NULL;
}

/* A network target (rbd:, nbd://, nbd+unix://): connect once, learn its size and abilities.
 * The vbd offers what the target does (flush, discard) and as many queues as it serves
 * coherently. A bad spec fails with the key at fault in <be>/error. */
static int target_open_net(struct bb_vbd *v, const char *params, bool ro, uint64_t *bytes,
                           bool *discard, uint32_t *gran)
{
    char msg[320];
    int rc = sx_bio_target_open(&v->target, params, ro, msg, sizeof(msg));
    if (rc < 0) {
        v->target = NULL;
        vbd_error(v, rc, msg);
        return rc;
    }
    const struct sx_bio_target_info *in = sx_bio_target_info(v->target);
    if (in->read_only && !ro) {
        vbd_error(v, -EROFS, "mode: w, but the target is read-only");
        return -EROFS;
    }
    *bytes = in->bytes;
    v->dev.sector_size = in->block_size;
    v->flush = in->flush && !ro;
    *discard = *discard && in->discard;
    *gran = in->discard_granularity;
    if (in->max_queues < v->max_queues) {
        sx_info("%s: %s serves %u queue(s) coherently", v->bep, in->name, in->max_queues);
        v->max_queues = in->max_queues;
    }
    v->physdev[0] = '\0';        /* no device numbers */
    v->direct = false;
    v->kind = in->kind;
    return 0;
}

/* Open params, fill v->dev, write physical-device, hotplug-status and the features. */
static int vbd_prepare(struct bb_vbd *v)
{
    struct bb_daemon *d = v->d;
    char params[512], mode[8] = "w";
    int rc = sx_xenbus_read_str(d->xb, XBT_NULL, v->bep, "params", params, sizeof(params));
    if (rc < 0) {
        vbd_error(v, rc, "reading params");
        return rc;
    }
    sx_xenbus_read_str(d->xb, XBT_NULL, v->bep, "mode", mode, sizeof(mode));
    bool ro = mode[0] == 'r';
    uint64_t discard_enable = 1;
    if (sx_xenbus_read_uint(d->xb, XBT_NULL, v->bep, "discard-enable", 0, 1, &discard_enable) < 0)
        discard_enable = 1;
    memset(&v->dev, 0, sizeof(v->dev));
    v->dev.sector_size = 512;
    v->flush = !ro;
    v->max_queues = d->o.max_queues;
    uint32_t pss = 512, gran = 4096;
    uint64_t bytes;
    bool discard = discard_enable != 0 && !ro;
    if (sx_bio_target_is_net(params)) {
        rc = target_open_net(v, params, ro, &bytes, &discard, &gran);
        if (rc < 0) {
            sx_xenbus_write(d->xb, XBT_NULL, v->bep, "hotplug-status", "error");
            target_close(v);
            return rc;
        }
        pss = v->dev.sector_size;
        goto opened;
    }
    int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    v->fd = open(params, flags | O_DIRECT);
    v->direct = v->fd >= 0;
    if (v->fd < 0 && errno == EINVAL)
        v->fd = open(params, flags);
    if (v->fd < 0) {
        rc = -errno;
        vbd_error(v, rc, "opening params");
        sx_xenbus_write(d->xb, XBT_NULL, v->bep, "hotplug-status", "error");
        return rc;
    }
    struct stat st;
    if (fstat(v->fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if (S_ISBLK(st.st_mode)) {
        int lss = 512;
        unsigned ps = 512;
        if (ioctl(v->fd, BLKGETSIZE64, &bytes) < 0) {
            rc = -errno;
            goto fail;
        }
        if (ioctl(v->fd, BLKSSZGET, &lss) == 0 && lss >= 512 && lss <= 4096)
            v->dev.sector_size = (uint32_t)lss;
        if (ioctl(v->fd, BLKPBSZGET, &ps) == 0 && ps >= 512 && ps <= 65536)
            pss = ps;
        snprintf(v->physdev, sizeof(v->physdev), "%x:%x", major(st.st_rdev), minor(st.st_rdev));
        char sys[128];
        snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/queue/discard_granularity",
                 major(st.st_rdev), minor(st.st_rdev));
        FILE *f = fopen(sys, "r");
        unsigned g = 0;
        if (!f || fscanf(f, "%u", &g) != 1 || g == 0)
            discard = false;
        else
            gran = g;
        if (f)
            fclose(f);
    } else if (S_ISREG(st.st_mode)) {
        bytes = (uint64_t)st.st_size;
        snprintf(v->physdev, sizeof(v->physdev), "%x:%x", major(st.st_dev), minor(st.st_dev));
        if (st.st_blksize >= 512 && st.st_blksize <= 65536)
            gran = (uint32_t)st.st_blksize;
    } else {
        rc = -EINVAL;
        goto fail;
    }
    v->kind = d->o.engine == SX_BIO_AUTO ? sx_bio_kind_auto(v->fd, NULL) : d->o.engine;
opened:
    /* blkif's sectors are 512 bytes whatever the logical block size (Xen 4.20's blkif.h):
     * the size in them, of whole logical blocks. */
    v->dev.sectors = bytes / v->dev.sector_size * (v->dev.sector_size / SX_BLK_SECTOR);
    if (gran < v->dev.sector_size || (gran & (gran - 1)))
        gran = v->dev.sector_size;
    v->dev.discard_granularity = gran;
    v->dev.read_only = ro;
    /* A read-only vbd offers no operation that writes: no flush, barrier or discard (Linux
     * blkback writes feature-flush-cache=0 and feature-barrier=0 for one; offered and then
     * refused, Linux blkfront logs "empty flush op failed" and turns its cache off). A network
     * target offers what it has (v->flush is false when it cannot flush). Torture draws within
     * that (bb_offer_pick). */
    if (ro)
        discard = false;
    bb_offer_pick(v, discard);
    const struct bb_offer *f = &v->offer;
    v->dev.max_indirect_segs = f->max_indirect;
    v->dev.features = (f->flush ? SX_BLK_F_FLUSH : 0) | (f->barrier ? SX_BLK_F_BARRIER : 0) |
                      (f->discard ? SX_BLK_F_DISCARD : 0);
    rc = sx_blk_dev_check(&v->dev);
    if (rc < 0)
        goto fail;

    /* What the block hotplug script writes. On Xen, libxl runs the script named by `script`
     * once we reach InitWait, and it owns these keys: written by us, the script's `add` would
     * skip its work and its `remove` then fail on every detach (found by make lab). On sim no
     * script runs, so the backend writes them itself. */
    struct sx_xenbus *xb = d->xb;
    char script[256] = "";
    bool script_runs = sx_plat_traits(d->o.plat)->hotplug_scripts &&
                       sx_xenbus_read_str(xb, XBT_NULL, v->bep, "script", script, sizeof(script)) >= 0 &&
                       script[0];
    rc = 0;
    if (!script_runs) {
        if (v->physdev[0])
            rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "physical-device", v->physdev);
        /* A network target's name without its options (they may name keyrings). */
        if (rc == 0)
            rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "physical-device-path",
                                 v->target ? sx_bio_target_info(v->target)->name : params);
    }
    if (rc == 0)
        rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "feature-flush-cache", f->flush ? "1" : "0");
    if (rc == 0)
        rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "feature-barrier", f->barrier ? "1" : "0");
    if (rc == 0 && f->discard) {
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "discard-granularity", "%u", gran);
        if (rc == 0)
            rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "discard-alignment", "0");
        if (rc == 0)
            rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "discard-secure", "0");
    }
    if (rc == 0)
        rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "feature-discard", f->discard ? "1" : "0");
    if (rc == 0)
        rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "feature-persistent",
                             f->persistent ? "1" : "0");
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "feature-max-indirect-segments", "%u",
                              f->max_indirect);
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "max-ring-page-order", "%u",
                              f->max_ring_order);
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "multi-queue-max-queues", "%u",
                              f->max_queues);
    if (rc == 0 && !script_runs)
        rc = sx_xenbus_write(xb, XBT_NULL, v->bep, "hotplug-status", "connected");
    if (rc < 0)
        goto fail;
    v->pss = pss;
    sx_info("%s: %s %s%s, %llu sectors of %u, engine %s", v->bep,
            v->target ? sx_bio_target_info(v->target)->name : params, ro ? "read-only" : "rw",
            v->direct ? " O_DIRECT" : "", (unsigned long long)v->dev.sectors, v->dev.sector_size,
            sx_bio_kind_name(v->kind));
    return 0;
fail:
    vbd_error(v, rc, "preparing the target");
    /* What a failing hotplug script writes: libxl gives up on the device at once. */
    sx_xenbus_write(d->xb, XBT_NULL, v->bep, "hotplug-status", "error");
    target_close(v);
    return rc;
}

/* ------------------------------------------------------------------ rings */

static void queue_release(struct bb_vbd *v, struct bb_queue *q)
{
    struct bb_daemon *d = v->d;
    bb_queue_stop(q);
    if (q->bio) {
        struct sx_bio_stats bs;
        sx_bio_get_stats(q->bio, &bs);
        sx_info("%s: queue %u: %s: %llu ops, %llu with registered buffers, %llu errors, "
                "%llu eagain; %u persistent grants", v->bep, q->idx,
                sx_bio_kind_name(sx_bio_kind(q->bio)), (unsigned long long)bs.submitted,
                (unsigned long long)bs.fixed, (unsigned long long)bs.errors,
                (unsigned long long)bs.eagain, q->pc.n);
    }
    /* The engine is closed before anything it writes into (persistent grants, request pages)
     * is unmapped or freed. The ring thread has drained it already (it waits for every
     * operation, without bound, as Linux blkback does), so nothing should be left. */
    bb_pcache_unregister(&q->pc);
    unsigned left = sx_bio_close(q->bio);
    q->bio = NULL;
    if (left) {
        /* Keep the grant mappings and request memory the kernel may still use, for good. */
        sx_err("%s: queue %u: %u operations still running: their pages stay mapped", v->bep,
               q->idx, left);
        memset(&q->pc, 0, sizeof(q->pc));
        bb_queue_forget(q);
    }
    unsigned unmap_failed = bb_pcache_destroy(&q->pc);
    if (unmap_failed)
        sx_warn("%s: queue %u: %u persistent grants could not be unmapped", v->bep, q->idx,
                unmap_failed);
    bb_queue_free(q);
    if (q->evt) {
        if (q->lport >= 0)
            sx_evtchn_unbind(q->evt, (evtchn_port_t)q->lport);
        sx_evtchn_close(q->evt);
    }
    q->evt = NULL;
    q->lport = -1;
    if (q->tt)
        sx_tt_q_stop(q->tt, &q->ring);
    q->tt = NULL;
    sx_back_ring_detach(&q->ring);
    if (q->ring_mem) {
        int rc = sx_ring_unmap(d->gnt, q->ring_mem, v->order);
        if (rc < 0)
            sx_warn("%s: unmap ring %u: %s", v->bep, q->idx, strerror(-rc));
    }
    q->ring_mem = NULL;
}

/* Stop the data plane and release every mapping, port and thread. Idempotent. */
static void vbd_disconnect(struct bb_vbd *v)
{
    for (unsigned i = 0; i < BB_MAX_QUEUES; i++)
        queue_release(v, &v->q[i]);
    if (v->phase == BB_CONNECTED)
        sx_info("%s: disconnected", v->bep);
    v->nq = 0;
}

/* Read one queue's transport keys from dir. */
static int read_queue_keys(struct bb_vbd *v, struct bb_queue *q, const char *dir)
{
    uint64_t val;
    int rc;
    for (unsigned k = 0; k < (1u << v->order); k++) {
        char key[32];
        if (v->order == 0)
            snprintf(key, sizeof(key), "ring-ref");
        else
            snprintf(key, sizeof(key), "ring-ref%u", k);
        rc = read_fe_uint(v, dir, key, 0, UINT32_MAX, UINT64_MAX, &val);
        if (rc < 0) {
            vbd_error(v, rc, "reading ring-ref");
            return rc;
        }
        q->ring_refs[k] = (grant_ref_t)val;
    }
    rc = read_fe_uint(v, dir, "event-channel", 0, UINT32_MAX, UINT64_MAX, &val);
    if (rc < 0) {
        vbd_error(v, rc, "reading event-channel");
        return rc;
    }
    q->remote_port = (evtchn_port_t)val;
    return 0;
}

static int queue_connect(struct bb_vbd *v, struct bb_queue *q)
{
    struct bb_daemon *d = v->d;
    int rc = sx_ring_map(d->gnt, v->fe, v->order, q->ring_refs, &q->ring_mem);
    if (rc < 0) {
        q->ring_mem = NULL;
        vbd_error(v, rc, "mapping the ring");
        return rc;
    }
    rc = sx_back_ring_attach(&q->ring, q->ring_mem, sx_ring_bytes(v->order),
                             sx_blk_req_slot_size(v->abi), sx_blk_rsp_slot_size(v->abi));
    if (rc < 0) {
        vbd_error(v, rc, "attaching the ring");
        return rc;
    }
    /* Continue from what was answered (0 for a fresh ring; after a backend restart, requests
     * taken but never answered are taken again). */
    /* rsp_prod is ours to write, but a previous backend process wrote it last: read it once;
     * a frontend that scribbled on it only makes take() see an overflow and halt the ring. */
    RING_IDX rp = SX_READ_ONCE(q->ring.sring->rsp_prod);
    q->ring.req_cons = q->ring.rsp_prod_pvt = q->ring.rsp_pushed = rp;
    rc = sx_evtchn_open(&q->evt, d->p);
    if (rc < 0) {
        q->evt = NULL;
        vbd_error(v, rc, "opening event channels");
        return rc;
    }
    rc = sx_evtchn_bind_interdomain(q->evt, v->fe, q->remote_port);
    if (rc < 0) {
        vbd_error(v, rc, "binding the event channel");
        return rc;
    }
    q->lport = rc;
    unsigned depth = q->ring.nr_ents + 8;
    /* The target's engine, then a fallback of the same nature: a file in memory is served
     * by preadv/pwritev when it cannot be mapped; anything else by libaio, then sync. */
    enum sx_bio_kind kinds[3] = { v->kind, v->kind == SX_BIO_MEM ? SX_BIO_SYNC : SX_BIO_AIO,
                                  SX_BIO_SYNC };
    rc = -EINVAL;
    if (v->target)              /* its own connection; no fallback kind */
        rc = sx_bio_open_target(&q->bio, v->target, depth);
    for (unsigned i = 0; i < 3 && rc < 0 && !v->target; i++) {
        /* The ring loop reaps after every submit and before it sleeps: inline completions
         * need no event fd write. */
        unsigned fl = SX_BIO_F_QUIET_INLINE |
                      (kinds[i] == SX_BIO_URING && d->o.sqpoll ? SX_BIO_F_SQPOLL : 0);
        rc = sx_bio_open(&q->bio, kinds[i], v->fd, depth, fl);
        if (rc < 0 && i == 0)
            sx_warn("%s: engine %s: %s, falling back", v->bep, sx_bio_kind_name(kinds[i]),
                    strerror(-rc));
    }
    if (rc < 0) {
        q->bio = NULL;
        vbd_error(v, rc, "opening the I/O engine");
        return rc;
    }
    rc = bb_queue_alloc(q);
    if (rc == 0)
        rc = bb_pcache_init(&q->pc, d->gnt, v->fe, v->persistent ? d->o.max_pgrants : 0,
                            d->o.no_regbuf ? NULL : q->bio);
    if (rc < 0) {
        vbd_error(v, rc, "allocating request contexts");
        return rc;
    }
    if (v->tt) {
        q->tt = sx_tt_q_get(v->tt, q->idx, (int)q->idx, NULL);
        if (sx_tt_q_start(q->tt, &q->ring, q->ring_refs, 1u << v->order) < 0)
            q->tt = NULL;
    }
    return 0;
}

static int vbd_connect(struct bb_vbd *v)
{
    struct bb_daemon *d = v->d;
    struct sx_xenbus *xb = d->xb;
    uint64_t val;
    int rc = read_fe_uint(v, v->fep, "ring-page-order", 0, v->offer.max_ring_order, 0, &val);
    if (rc < 0) {
        vbd_error(v, rc, "reading ring-page-order");
        return rc;
    }
    v->order = (unsigned)val;
    rc = read_fe_uint(v, v->fep, "multi-queue-num-queues", 1, v->offer.max_queues, 1, &val);
    if (rc < 0) {
        vbd_error(v, rc, "reading multi-queue-num-queues");
        return rc;
    }
    unsigned nq = (unsigned)val;
    char proto[32] = "";
    rc = sx_xenbus_read_str(xb, XBT_NULL, v->fep, "protocol", proto, sizeof(proto));
    if (rc < 0 && rc != -ENOENT) {
        vbd_error(v, rc, "reading protocol");
        return rc;
    }
    rc = sx_blk_abi_from_protocol(proto, &v->abi);
    if (rc < 0) {
        vbd_error(v, rc, "unknown protocol");
        return rc;
    }
    rc = read_fe_uint(v, v->fep, "feature-persistent", 0, 1, 0, &val);
    if (rc < 0) {
        vbd_error(v, rc, "reading feature-persistent");
        return rc;
    }
    v->persistent = val && v->offer.persistent;
    for (unsigned i = 0; i < nq; i++) {
        struct bb_queue *q = &v->q[i];
        char dir[192];
        if (nq == 1)
            snprintf(dir, sizeof(dir), "%s", v->fep);
        else
            snprintf(dir, sizeof(dir), "%s/queue-%u", v->fep, i);
        rc = read_queue_keys(v, q, dir);
        if (rc < 0)
            return rc;
    }
    v->nq = nq;
    for (unsigned i = 0; i < nq; i++) {
        rc = queue_connect(v, &v->q[i]);
        if (rc < 0)
            return rc;
    }
    if (!v->stats_ok) {
        rc = sx_stats_create_with_gauges(&v->stats, "vbd", v->fe, v->devid, bb_stat_names,
                                         bb_stat_gauges);
        if (rc < 0)
            sx_warn("%s: stats file: %s", v->bep, strerror(-rc));
        v->stats_ok = rc == 0;
    }
    for (unsigned i = 0; i < nq; i++) {
        if (v->target && v->stats_ok)
            sx_bio_set_stats(v->q[i].bio, &v->stats, BB_ST_TARGET_DISCONNECTS);
        rc = bb_queue_start(&v->q[i]);
        if (rc < 0) {
            vbd_error(v, rc, "starting the ring thread");
            return rc;
        }
    }
    /* Linux connect(): sectors, info, sector-size, physical-sector-size, then Connected. */
    rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "sectors", "%llu",
                          (unsigned long long)v->dev.sectors);
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "info", "%u",
                              v->dev.read_only ? VDISK_READONLY : 0u);
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "sector-size", "%u", v->dev.sector_size);
    if (rc == 0)
        rc = sx_xenbus_printf(xb, XBT_NULL, v->bep, "physical-sector-size", "%u", v->pss);
    if (rc < 0) {
        vbd_error(v, rc, "writing the disk properties");
        return rc;
    }
    sx_info("%s: connected: %u queue(s), ring order %u, %s, persistent %s, engine %s", v->bep,
            nq, v->order, v->abi == SX_BLK_ABI_NATIVE ? "native abi" : "x86_32 abi",
            v->persistent ? "yes" : "no", sx_bio_kind_name(sx_bio_kind(v->q[0].bio)));
    return 0;
}

/* ------------------------------------------------------------------ state machine */

static void vbd_switch(struct bb_vbd *v, enum xenbus_state s)
{
    int rc = sx_xenbus_switch_state(v->d->xb, v->bep, s);
    if (rc < 0 && rc != -ENOENT)
        sx_warn("%s: switch to %s: %s", v->bep, sx_xenbus_state_name(s), strerror(-rc));
    v->written = s;
}

/* Release everything and write Closed (6): exactly once per connection. */
static void vbd_close(struct bb_vbd *v)
{
    vbd_disconnect(v);
    target_close(v);
    if (v->stats_ok)
        sx_stats_destroy(&v->stats);
    v->stats_ok = false;
    if (v->phase != BB_CLOSED) {
        vbd_switch(v, XenbusStateClosed);
        sx_info("%s: closed (daemon-wide: %llu grant pages mapped)", v->bep,
                (unsigned long long)sx_gnt_mapped_pages(v->d->gnt));
    }
    v->phase = BB_CLOSED;
}

static bool fe_domain_alive(struct bb_vbd *v)
{
    struct xs_handle *xs = sx_xenbus_xs(v->d->xb);
    errno = 0;
    bool in = xs_is_domain_introduced(xs, v->fe);
    return in || errno != 0;   /* an error is not proof of death */
}

static void vbd_evaluate(struct bb_vbd *v)
{
    struct bb_daemon *d = v->d;
    struct sx_xenbus *xb = d->xb;
    uint64_t online = 1;
    if (sx_xenbus_read_uint(xb, XBT_NULL, v->bep, "online", 0, 1, &online) == -EINVAL)
        online = 1;
    enum xenbus_state be = XenbusStateUnknown, fe = XenbusStateUnknown;
    sx_xenbus_read_state(xb, XBT_NULL, v->bep, &be);
    if (sx_xenbus_read_state(xb, XBT_NULL, v->fep, &fe) < 0)
        fe = XenbusStateUnknown;
    sx_tt_fe_state(v->tt, xb, fe, (enum xenbus_state)v->written);
    /* The toolstack asks for removal with online=0 (and writes state 5 itself). */
    bool remove = !online || (be == XenbusStateClosing && v->written != XenbusStateClosing &&
                              v->phase != BB_NEW);
    if (v->fe_dead)
        remove = true;

    switch (v->phase) {
    case BB_NEW:
    case BB_CLOSED:
        if (remove) {
            if (v->phase == BB_NEW || be != XenbusStateClosed) {
                v->phase = BB_NEW;
                vbd_close(v);
            }
            return;
        }
        if (v->phase == BB_CLOSED && fe != XenbusStateInitialising &&
            fe != XenbusStateInitialised && fe != XenbusStateConnected)
            return;
        /* A toolstack writing the directory key by key: wait for params and state. */
        if (sx_xenbus_exists(xb, XBT_NULL, v->bep, "params") != 1 ||
            sx_xenbus_exists(xb, XBT_NULL, v->bep, "state") != 1)
            return;
        if (vbd_prepare(v) < 0) {
            v->phase = BB_FAILED;
            vbd_switch(v, XenbusStateClosing);
            return;
        }
        v->phase = BB_READY;
        if (fe != XenbusStateInitialised && fe != XenbusStateConnected) {
            vbd_switch(v, XenbusStateInitWait);
            return;
        }
        /* A frontend already past InitWait: a restarted backend reconnects at once. */
        sx_info("%s: frontend is %s: reconnecting", v->bep, sx_xenbus_state_name(fe));
        /* fall through */
    case BB_READY:
        if (remove || fe == XenbusStateClosed || (fe == XenbusStateUnknown && v->phase == BB_READY &&
                                                   v->written == XenbusStateClosing)) {
            vbd_close(v);
            return;
        }
        if (fe == XenbusStateClosing) {
            vbd_switch(v, XenbusStateClosing);
            return;
        }
        if (fe != XenbusStateInitialised && fe != XenbusStateConnected) {
            if (v->written != XenbusStateInitWait)
                vbd_switch(v, XenbusStateInitWait);
            return;
        }
        if (vbd_connect(v) < 0) {
            vbd_disconnect(v);
            v->phase = BB_FAILED;
            vbd_switch(v, XenbusStateClosing);
            return;
        }
        v->phase = BB_CONNECTED;
        sx_xenbus_rm(xb, XBT_NULL, v->bep, "error");
        vbd_switch(v, XenbusStateConnected);
        return;
    case BB_CONNECTED:
        if (remove || fe == XenbusStateClosed || fe == XenbusStateUnknown) {
            vbd_close(v);
            return;
        }
        if (fe == XenbusStateClosing) {
            vbd_disconnect(v);
            v->phase = BB_READY;
            vbd_switch(v, XenbusStateClosing);
        }
        /* A frontend starting over (Closed then Initialising, read as one change): it has left
         * the rings we map; let go of them and wait for its new ones. */
        if (fe == XenbusStateInitialising) {
            vbd_disconnect(v);
            v->phase = BB_READY;
            vbd_switch(v, XenbusStateInitWait);
        }
        return;
    case BB_FAILED:
        /* Wait for the frontend (or the toolstack) to close; then start over. */
        if (remove || fe == XenbusStateClosed || fe == XenbusStateUnknown) {
            v->phase = BB_READY;
            vbd_close(v);
        }
        return;
    }
}

/* --torture: what is due now on a connected vbd. A reconnect is what a restarted daemon does
 * (rings, event channels and grant mappings dropped and taken again from the frontend's keys,
 * in-flight I/O answered first); a flap rewrites the state node with the state it holds. */
static void vbd_torture(struct bb_vbd *v)
{
    switch (sx_tt_ctl_due(v->tt)) {
    case SX_TT_CTL_RECONNECT:
        vbd_disconnect(v);
        if (vbd_connect(v) < 0) {
            vbd_disconnect(v);
            v->phase = BB_FAILED;
            vbd_switch(v, XenbusStateClosing);
        }
        return;
    case SX_TT_CTL_FLAP:
        sx_tt_flap(v->d->xb, v->bep, (enum xenbus_state)v->written);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------------ watches and the vbd list */

/*
 * What blkback watches, and what an event costs it. A guest may write under its own device
 * directory as fast as xenstored lets it (XSA-349), so nothing it writes there may cost more
 * than the event itself, and nothing it does may make another vbd be re-evaluated:
 *
 *   <root> (backend/vbd)      the toolstack's writes and our own. An event below
 *                             <root>/<fe>/<devid>/ marks that vbd dirty. One naming a vbd not
 *                             known yet, a vbd directory itself or anything above asks for a
 *                             listing of <root> (vbds added or removed).
 *   <fep>/state, one per vbd  the frontend's state node only, as Linux blkback. Events for
 *                             nodes below it (a guest can create them) are counted and
 *                             dropped; everything else a frontend writes (ring-ref,
 *                             event-channel, queue-N/...) is read when its state says so.
 *   @releaseDomain            marks the vbds of frontends that are gone dirty.
 *
 * Callbacks only mark. bb_daemon_step then lists <root> when asked and evaluates each dirty
 * vbd once, however many events named it: vbd_evaluate reads everything it needs from
 * xenstore, so events that arrive together cost one evaluation and lose nothing. (An event
 * xenstored never delivers is not made up for by other vbds' events any more: a vbd waits for
 * its own next one.)
 */

/* A decimal id of len characters at s, at most max. */
static bool parse_id_n(const char *s, size_t len, unsigned max, unsigned *out)
{
    if (!len || len > 10)
        return false;
    unsigned long long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    if (x > max)
        return false;
    *out = (unsigned)x;
    return true;
}

static bool parse_id(const char *s, unsigned max, unsigned *out)
{
    return parse_id_n(s, strlen(s), max, out);
}

#define FE_ID_MAX (DOMID_FIRST_RESERVED - 1)
#define DEVID_MAX (UINT32_MAX >> 1)

static struct bb_vbd *vbd_find(struct bb_daemon *d, unsigned fe, unsigned devid)
{
    struct bb_vbd *v = d->vbds;
    while (v && !(v->fe == fe && v->devid == devid))
        v = v->next;
    return v;
}

static void on_backend(void *arg, const char *path, const char *token)
{
    struct bb_daemon *d = arg;
    size_t rl = strlen(d->root);
    (void)token;
    dstat_add(d, BB_DS_WATCH_EVENTS, 1);
    if (strncmp(path, d->root, rl) || (path[rl] != '/' && path[rl] != '\0')) {
        dstat_add(d, BB_DS_WATCH_IGNORED, 1);   /* not ours: cannot happen */
        return;
    }
    /* <root> or <root>/<fe>: a frontend's vbds (or all of them) came or went */
    const char *fe_s = path + rl + (path[rl] == '/');
    const char *dev_s = strchr(fe_s, '/');
    if (path[rl] == '\0' || !dev_s) {
        d->rescan = true;
        return;
    }
    dev_s++;
    const char *key = strchr(dev_s, '/');
    size_t dev_len = key ? (size_t)(key - dev_s) : strlen(dev_s);
    unsigned fe, devid;
    if (!parse_id_n(fe_s, (size_t)(dev_s - 1 - fe_s), FE_ID_MAX, &fe) ||
        !parse_id_n(dev_s, dev_len, DEVID_MAX, &devid)) {
        dstat_add(d, BB_DS_WATCH_IGNORED, 1);   /* not a vbd directory: the listing skips it */
        return;
    }
    struct bb_vbd *v = vbd_find(d, fe, devid);
    if (v)
        v->dirty = true;
    /* A vbd not known yet, or its directory itself created or removed: list. */
    if (!v || !key)
        d->rescan = true;
}

static void on_fe_state(void *arg, const char *path, const char *token)
{
    struct bb_vbd *v = arg;   /* valid: vbd_free unwatches first, events look the token up */
    (void)token;
    dstat_add(v->d, BB_DS_WATCH_EVENTS, 1);
    if (strcmp(path, v->fe_state)) {
        dstat_add(v->d, BB_DS_WATCH_IGNORED, 1);   /* a node below state: not the state */
        return;
    }
    sx_tt_fe_event(v->tt);
    v->dirty = true;
}

static void on_release(void *arg, const char *path, const char *token)
{
    struct bb_daemon *d = arg;
    (void)path;
    (void)token;
    dstat_add(d, BB_DS_WATCH_EVENTS, 1);
    for (struct bb_vbd *v = d->vbds; v; v = v->next)
        if (!v->fe_dead && !fe_domain_alive(v)) {
            sx_info("%s: frontend domain %u is gone", v->bep, v->fe);
            v->fe_dead = true;
            v->dirty = true;
        }
}

static struct bb_vbd *vbd_new(struct bb_daemon *d, unsigned fe, unsigned devid)
{
    struct bb_vbd *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->d = d;
    v->fe = (domid_t)fe;
    v->devid = devid;
    v->fd = -1;
    v->written = XenbusStateUnknown;
    v->dirty = true;
    for (unsigned i = 0; i < BB_MAX_QUEUES; i++) {
        v->q[i].v = v;
        v->q[i].idx = i;
        v->q[i].lport = -1;
        v->q[i].stop_fd = -1;
    }
    if (sx_xenbus_backend_path(v->bep, sizeof(v->bep), d->o.domid, "vbd", fe, devid) < 0 ||
        sx_xenbus_frontend_path(v->fep, sizeof(v->fep), fe, "vbd", devid) < 0) {
        free(v);
        return NULL;
    }
    snprintf(v->fe_state, sizeof(v->fe_state), "%s/state", v->fep);
    snprintf(v->fe_token, sizeof(v->fe_token), "fe-%u-%u", fe, devid);
    v->tt = sx_tt_dev_open(d->tt, SX_TT_BLKIF, (domid_t)fe, devid, v->fep, v->bep);
    if (sx_xenbus_watch(d->xb, v->fe_state, v->fe_token, on_fe_state, v) == 0)
        v->fe_watched = true;
    else
        sx_warn("%s: cannot watch %s: the frontend's state changes will be missed", v->bep,
                v->fe_state);
    v->next = d->vbds;
    d->vbds = v;
    d->nr_vbds++;
    sx_info("%s: new vbd", v->bep);
    return v;
}

static void vbd_free(struct bb_vbd *v)
{
    if (v->phase != BB_CLOSED && v->phase != BB_NEW)
        vbd_close(v);
    else {
        vbd_disconnect(v);
        target_close(v);
        if (v->stats_ok)
            sx_stats_destroy(&v->stats);
    }
    if (v->fe_watched)
        sx_xenbus_unwatch(v->d->xb, v->fe_token);
    sx_tt_dev_close(v->tt);
    free(v);
}

static void rescan(struct bb_daemon *d)
{
    struct xs_handle *xs = sx_xenbus_xs(d->xb);
    dstat_add(d, BB_DS_RESCANS, 1);
    for (struct bb_vbd *v = d->vbds; v; v = v->next)
        v->seen = false;
    unsigned nfe = 0;
    char **fes = xs_directory(xs, XBT_NULL, d->root, &nfe);
    for (unsigned i = 0; fes && i < nfe; i++) {
        unsigned fe;
        if (!parse_id(fes[i], FE_ID_MAX, &fe))
            continue;
        char dir[160];
        snprintf(dir, sizeof(dir), "%s/%u", d->root, fe);
        unsigned ndev = 0;
        char **devs = xs_directory(xs, XBT_NULL, dir, &ndev);
        for (unsigned k = 0; devs && k < ndev; k++) {
            unsigned devid;
            if (!parse_id(devs[k], DEVID_MAX, &devid))
                continue;
            struct bb_vbd *v = vbd_find(d, fe, devid);
            if (!v)
                v = vbd_new(d, fe, devid);
            if (v)
                v->seen = true;
        }
        free(devs);
    }
    free(fes);
    /* vbd directories that were removed: tear down and forget. */
    struct bb_vbd **pp = &d->vbds;
    while (*pp) {
        struct bb_vbd *v = *pp;
        if (v->seen) {
            pp = &v->next;
            continue;
        }
        sx_info("%s: removed", v->bep);
        *pp = v->next;
        d->nr_vbds--;
        vbd_free(v);
    }
}

/* ------------------------------------------------------------------ daemon */

int bb_daemon_open(struct bb_daemon **out, const struct bb_opts *o)
{
    struct bb_daemon *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->o = *o;
    int rc = sx_plat_open(&d->p, o->plat, o->domid, NULL);
    if (rc < 0) {
        sx_err("open the %s platform as dom%u: %s", sx_plat_traits(o->plat)->name,
               o->domid, strerror(-rc));
        d->p = NULL;
        goto fail;
    }
    rc = sx_gnt_open(&d->gnt, d->p);
    if (rc < 0) {
        d->gnt = NULL;
        sx_err("open grant tables: %s", strerror(-rc));
        goto fail;
    }
    rc = sx_xenbus_open(&d->xb, d->p, NULL);
    if (rc < 0) {
        d->xb = NULL;
        sx_err("connect to xenstore: %s", strerror(-rc));
        goto fail;
    }
    if (sx_tt_on(&o->tt) && (rc = sx_tt_open(&d->tt, &o->tt, d->gnt)) < 0) {
        d->tt = NULL;
        goto fail;
    }
    snprintf(d->root, sizeof(d->root), "/local/domain/%u/backend/vbd", o->domid);
    rc = sx_stats_create_with_gauges(&d->stats, "blkback", o->domid, 0, bb_dstat_names,
                                     bb_dstat_gauges);
    if (rc < 0)
        sx_warn("daemon stats file: %s", strerror(-rc));   /* counters are then not kept */
    rc = sx_xenbus_watch(d->xb, d->root, "root", on_backend, d);
    if (rc == 0)
        rc = sx_xenbus_watch(d->xb, "@releaseDomain", "release", on_release, d);
    if (rc < 0) {
        sx_err("watch %s: %s", d->root, strerror(-rc));
        goto fail;
    }
    d->rescan = true;
    *out = d;
    return 0;
fail:
    bb_daemon_close(d);
    return rc;
}

int bb_daemon_step(struct bb_daemon *d, int timeout_ms)
{
    int rc = sx_xenbus_dispatch(d->xb, timeout_ms);
    if (rc < 0 && rc != -EINTR && rc != -ETIMEDOUT)
        return rc;
    bool changed = d->rescan;
    if (d->rescan) {
        d->rescan = false;
        rescan(d);   /* new vbds come dirty */
    }
    for (struct bb_vbd *v = d->vbds; v; v = v->next) {
        if (!v->dirty)
            continue;
        v->dirty = false;   /* an event from here on marks it again */
        dstat_add(d, BB_DS_EVALS, 1);
        vbd_evaluate(v);
        changed = true;
    }
    if (d->tt) {
        for (struct bb_vbd *v = d->vbds; v; v = v->next)
            if (v->phase == BB_CONNECTED)
                vbd_torture(v);
        sx_tt_tick(d->tt, d->xb);
    }
    if (changed)
        dstat_gauges(d);
    dstat_add(d, BB_DS_ROUNDS, 1);   /* after the evaluations: tests wait for a round's end */
    return rc < 0 ? 0 : rc;
}

int bb_daemon_run(struct bb_daemon *d, atomic_int *stop)
{
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int rc = bb_daemon_step(d, 500);
        if (rc < 0) {
            sx_err("xenstore: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

void bb_daemon_close(struct bb_daemon *d)
{
    if (!d)
        return;
    while (d->vbds) {
        struct bb_vbd *v = d->vbds;
        d->vbds = v->next;
        /* A daemon that exits leaves the handshake where it is, so a restarted one
         * reconnects; it only stops the threads and releases its own resources. */
        vbd_disconnect(v);
        target_close(v);
        if (v->stats_ok)
            sx_stats_destroy(&v->stats);
        if (v->fe_watched)
            sx_xenbus_unwatch(d->xb, v->fe_token);
        sx_tt_dev_close(v->tt);
        free(v);
    }
    sx_tt_close(d->tt);
    sx_stats_destroy(&d->stats);
    sx_xenbus_close(d->xb);
    sx_gnt_close(d->gnt);
    sx_plat_close(d->p);
    free(d);
}
