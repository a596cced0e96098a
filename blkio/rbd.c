/*
 * RBD engine (librbd): the target holds one cluster connection and pool context (librados is
 * thread-safe), each engine its own image handle. Completions come through the image's
 * eventfd: rbd_set_image_notification hands librbd the engine's own eventfd (the one
 * sx_bio_event_fd returns), librbd writes it when a completion is ready, and reap collects them
 * with rbd_poll_io_events in the owning thread. No completion callback, no thread of ours.
 *
 * Operations: readv/writev (rbd_aio_readv/_writev take the iovecs as they are), flush
 * (rbd_aio_flush), discard (rbd_aio_discard). A request the cluster does not answer within
 * rados_osd_op_timeout completes with -ETIMEDOUT; librados keeps reconnecting to the monitors
 * and OSDs by itself, so the engine only counts the transitions: the first operation failing
 * for want of the cluster after a success is a disconnect, the first success after that a
 * reconnect.
 *
 * librbd and librados are loaded (dlopen) when the first RBD target is opened: linked in, they
 * cost every program that links blkio ~20 MB of RSS and a fifth of a second at start, RBD or
 * not.
 */
#define SX_LOG_MODULE "blkio"
#include "log.h"

#include "blkio/blkio_impl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the libraries, loaded on first use ----------------------------------------------- */

static struct {
    __typeof__(&rados_create) rados_create;
    __typeof__(&rados_conf_read_file) rados_conf_read_file;
    __typeof__(&rados_conf_set) rados_conf_set;
    __typeof__(&rados_conf_get) rados_conf_get;
    __typeof__(&rados_connect) rados_connect;
    __typeof__(&rados_ioctx_create) rados_ioctx_create;
    __typeof__(&rados_ioctx_set_namespace) rados_ioctx_set_namespace;
    __typeof__(&rados_ioctx_destroy) rados_ioctx_destroy;
    __typeof__(&rados_shutdown) rados_shutdown;
    __typeof__(&rbd_open) rbd_open;
    __typeof__(&rbd_open_read_only) rbd_open_read_only;
    __typeof__(&rbd_close) rbd_close;
    __typeof__(&rbd_get_size) rbd_get_size;
    __typeof__(&rbd_get_features) rbd_get_features;
    __typeof__(&rbd_set_image_notification) rbd_set_image_notification;
    __typeof__(&rbd_aio_create_completion) rbd_aio_create_completion;
    __typeof__(&rbd_aio_readv) rbd_aio_readv;
    __typeof__(&rbd_aio_writev) rbd_aio_writev;
    __typeof__(&rbd_aio_flush) rbd_aio_flush;
    __typeof__(&rbd_aio_discard) rbd_aio_discard;
    __typeof__(&rbd_aio_release) rbd_aio_release;
    __typeof__(&rbd_poll_io_events) rbd_poll_io_events;
    __typeof__(&rbd_aio_get_arg) rbd_aio_get_arg;
    __typeof__(&rbd_aio_get_return_value) rbd_aio_get_return_value;
} L;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256];

static void load_libs(void)
{
    void *rados = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
    void *rbd = rados ? dlopen("librbd.so.1", RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!rados || !rbd) {
        snprintf(load_err, sizeof(load_err), "%s", dlerror());
        return;
    }
#define SYM(h, f) do { if (!(*(void **)&L.f = dlsym(h, #f))) { \
        snprintf(load_err, sizeof(load_err), "%s: no %s", #h, #f); return; } } while (0)
    SYM(rados, rados_create);
    SYM(rados, rados_conf_read_file);
    SYM(rados, rados_conf_set);
    SYM(rados, rados_conf_get);
    SYM(rados, rados_connect);
    SYM(rados, rados_ioctx_create);
    SYM(rados, rados_ioctx_set_namespace);
    SYM(rados, rados_ioctx_destroy);
    SYM(rados, rados_shutdown);
    SYM(rbd, rbd_open);
    SYM(rbd, rbd_open_read_only);
    SYM(rbd, rbd_close);
    SYM(rbd, rbd_get_size);
    SYM(rbd, rbd_get_features);
    SYM(rbd, rbd_set_image_notification);
    SYM(rbd, rbd_aio_create_completion);
    SYM(rbd, rbd_aio_readv);
    SYM(rbd, rbd_aio_writev);
    SYM(rbd, rbd_aio_flush);
    SYM(rbd, rbd_aio_discard);
    SYM(rbd, rbd_aio_release);
    SYM(rbd, rbd_poll_io_events);
    SYM(rbd, rbd_aio_get_arg);
    SYM(rbd, rbd_aio_get_return_value);
#undef SYM
}

/* 0, or -ENOSYS with the reason in err. */
static int libs_ready(char *err, size_t errlen)
{
    pthread_once(&load_once, load_libs);
    if (!load_err[0])
        return 0;
    snprintf(err, errlen, "rbd: librbd cannot be loaded (install librbd1): %s", load_err);
    return -ENOSYS;
}

struct rbd_target {
    rados_t cluster;
    rados_ioctx_t io;
    bool cluster_ok, io_ok;
};

struct rbd_slot {
    struct rbd_slot *next_free;
    uint64_t cookie;
    int32_t len;
    enum sx_bio_opc opc;
};

struct rbd_eng {
    rbd_image_t img;
    bool img_ok;
    bool down;                  /* the last operation failed for want of the cluster */
    struct sx_bio_op *staged;
    unsigned nstaged;
    struct rbd_slot *slots, *free_slots;
    rbd_completion_t *comps;    /* reap scratch, depth entries */
};

/* ---- the target ------------------------------------------------------------------------ */

void sx_bio_rbd_target_close(struct sx_bio_target *t)
{
    struct rbd_target *r = t->priv;
    if (!r)
        return;
    if (r->io_ok)
        L.rados_ioctx_destroy(r->io);
    if (r->cluster_ok)
        L.rados_shutdown(r->cluster);
    free(r);
    t->priv = NULL;
}

static int open_image(struct sx_bio_target *t, rbd_image_t *img)
{
    struct rbd_target *r = t->priv;
    const char *snap = t->spec.snap[0] ? t->spec.snap : NULL;
    return t->info.read_only ? L.rbd_open_read_only(r->io, t->spec.image, img, snap)
                             : L.rbd_open(r->io, t->spec.image, img, snap);
}

int sx_bio_rbd_target_open(struct sx_bio_target *t, bool read_only, char *err, size_t errlen)
{
    const struct sx_bio_spec *sp = &t->spec;
    struct rbd_target *r = calloc(1, sizeof(*r));
    bool cache = false;
    int rc;

    if (!r)
        return -ENOMEM;
    t->priv = r;
    if ((rc = libs_ready(err, errlen)) < 0)
        return rc;
    rc = L.rados_create(&r->cluster, sp->id[0] ? sp->id : NULL);
    if (rc < 0) {
        snprintf(err, errlen, "rbd: option 'id': '%s': %s", sp->id, strerror(-rc));
        return rc;
    }
    r->cluster_ok = true;
    rc = L.rados_conf_read_file(r->cluster, sp->conf[0] ? sp->conf : NULL);
    if (rc < 0 && sp->conf[0]) {
        snprintf(err, errlen, "rbd: option 'conf': '%s': %s", sp->conf, strerror(-rc));
        return rc;
    }
    /* Requests fail instead of hanging when the cluster does not answer; several image handles
     * of one disk stay coherent without a client cache. The spec's own options come after,
     * so they override these. */
    static const char *const dflt[][2] = {
        { "rados_osd_op_timeout", "10" }, { "rados_mon_op_timeout", "10" },
        { "client_mount_timeout", "10" }, { "rbd_cache", "false" },
    };
    for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
        L.rados_conf_set(r->cluster, dflt[i][0], dflt[i][1]);
    for (unsigned i = 0; i < sp->nopts; i++) {
        rc = L.rados_conf_set(r->cluster, sp->opt_key[i], sp->opt_val[i]);
        if (rc == -ENOENT) {
            snprintf(err, errlen, "rbd: option '%s': not a Ceph option", sp->opt_key[i]);
            return -EINVAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "rbd: option '%s': bad value '%s': %s", sp->opt_key[i],
                     sp->opt_val[i], strerror(-rc));
            return -EINVAL;
        }
    }
    char val[16] = "";
    if (L.rados_conf_get(r->cluster, "rbd_cache", val, sizeof(val)) == 0)
        cache = !strcmp(val, "true") || !strcmp(val, "1");
    rc = L.rados_connect(r->cluster);
    if (rc < 0) {
        snprintf(err, errlen, "rbd: %s: connecting to the cluster: %s", sp->name,
                 strerror(-rc));
        return rc;
    }
    rc = L.rados_ioctx_create(r->cluster, sp->pool, &r->io);
    if (rc < 0) {
        snprintf(err, errlen, "rbd: pool: '%s': %s", sp->pool,
                 rc == -ENOENT ? "no such pool" : strerror(-rc));
        return rc;
    }
    r->io_ok = true;
    if (sp->ns[0])
        L.rados_ioctx_set_namespace(r->io, sp->ns);

    struct sx_bio_target_info *in = &t->info;
    in->read_only = read_only || sp->snap[0];   /* a snapshot is read-only */
    rbd_image_t img;
    rc = open_image(t, &img);
    if (rc < 0) {
        snprintf(err, errlen, "rbd: %s: %s: %s", sp->snap[0] ? "snapshot" : "image", sp->name,
                 rc == -ENOENT ? "does not exist" : strerror(-rc));
        return rc;
    }
    uint64_t size = 0, features = 0;
    rc = L.rbd_get_size(img, &size);
    if (rc == 0)
        rc = L.rbd_get_features(img, &features);
    L.rbd_close(img);
    if (rc < 0) {
        snprintf(err, errlen, "rbd: %s: %s", sp->name, strerror(-rc));
        return rc;
    }
    in->bytes = size;
    in->block_size = 512;
    in->flush = !in->read_only;
    in->discard = !in->read_only;
    in->write_zeroes = !in->read_only;
    in->discard_granularity = 65536;     /* as krbd's alloc_size */
    /* One handle per queue: with the exclusive-lock feature each write would take the lock
     * from the other handle, and a client cache per handle would not see the other's writes. */
    in->max_queues = (!in->read_only && (features & RBD_FEATURE_EXCLUSIVE_LOCK)) || cache ? 1 : 16;
    return 0;
}

/* ---- the engine ------------------------------------------------------------------------ */

static void rbd_close_(struct sx_bio *b)
{
    struct rbd_eng *e = b->priv;
    if (!e)
        return;
    if (e->img_ok)
        L.rbd_close(e->img);      /* waits for what librbd still has in flight */
    free(e->staged);
    free(e->slots);
    free(e->comps);
    free(e);
    b->priv = NULL;
}

static int rbd_open_(struct sx_bio *b, unsigned flags)
{
    struct rbd_eng *e = calloc(1, sizeof(*e));
    int rc;

    (void)flags;
    if (!e)
        return -ENOMEM;
    b->priv = e;
    e->staged = calloc(b->depth, sizeof(*e->staged));
    e->slots = calloc(b->depth, sizeof(*e->slots));
    e->comps = calloc(b->depth, sizeof(*e->comps));
    if (!e->staged || !e->slots || !e->comps) {
        rc = -ENOMEM;
        goto err;
    }
    for (unsigned i = b->depth; i-- > 0;) {
        e->slots[i].next_free = e->free_slots;
        e->free_slots = &e->slots[i];
    }
    rc = open_image(b->target, &e->img);
    if (rc < 0) {
        sx_warn("%s: open: %s", b->target->info.name, strerror(-rc));
        goto err;
    }
    e->img_ok = true;
    rc = L.rbd_set_image_notification(e->img, b->efd, EVENT_TYPE_EVENTFD);
    if (rc < 0)
        goto err;
    return 0;
err:
    rbd_close_(b);
    return rc;
}

static int rbd_queue_(struct sx_bio *b, const struct sx_bio_op *op)
{
    struct rbd_eng *e = b->priv;
    if (e->nstaged >= b->depth)
        return -EAGAIN;
    e->staged[e->nstaged++] = *op;
    return 0;
}

/* The cluster answered (res >= 0) or did not (a link error): count the transitions. */
static void note_link(struct sx_bio *b, int32_t res)
{
    struct rbd_eng *e = b->priv;
    if (res < 0 && sx_bio_err_is_link(res)) {
        sx_bio_count(b, SX_BIO_TST_FAILED, 1);
        if (!e->down) {
            e->down = true;
            sx_bio_count(b, SX_BIO_TST_DISCONNECTS, 1);
            sx_log_ratelimited(SX_LOG_WARN, "%s: the cluster does not answer: %s",
                               b->target->info.name, strerror(-res));
        }
    } else if (res >= 0 && e->down) {
        e->down = false;
        sx_bio_count(b, SX_BIO_TST_RECONNECTS, 1);
        sx_log_ratelimited(SX_LOG_INFO, "%s: the cluster answers again", b->target->info.name);
    }
}

static int rbd_submit_(struct sx_bio *b)
{
    struct rbd_eng *e = b->priv;
    unsigned n = e->nstaged;

    e->nstaged = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct sx_bio_op *o = &e->staged[i];
        struct rbd_slot *s = e->free_slots;      /* depth bounds it: never NULL */
        rbd_completion_t c;
        int rc;

        e->free_slots = s->next_free;
        s->cookie = o->cookie;
        s->opc = o->opc;
        s->len = 0;
        for (int k = 0; k < o->iovcnt; k++)
            s->len += (int32_t)o->iov[k].iov_len;
        rc = L.rbd_aio_create_completion(s, NULL, &c);
        if (rc == 0) {
            switch (o->opc) {
            case SX_BIO_OP_READ:
                rc = L.rbd_aio_readv(e->img, o->iov, o->iovcnt, o->off, c);
                break;
            case SX_BIO_OP_WRITE:
                rc = L.rbd_aio_writev(e->img, o->iov, o->iovcnt, o->off, c);
                break;
            case SX_BIO_OP_FLUSH:
                rc = L.rbd_aio_flush(e->img, c);
                break;
            case SX_BIO_OP_DISCARD:
                rc = L.rbd_aio_discard(e->img, o->off, o->len, c);
                break;
            }
            if (rc < 0)
                L.rbd_aio_release(c);
        }
        if (rc < 0) {
            /* Refused before it left: complete it here with the error. */
            sx_bio_icq_push(b, s->cookie, rc);
            s->next_free = e->free_slots;
            e->free_slots = s;
        }
    }
    return (int)n;
}

static int rbd_reap_(struct sx_bio *b, struct sx_bio_cpl *out, unsigned max)
{
    struct rbd_eng *e = b->priv;
    if (max > b->depth)
        max = b->depth;
    int n = L.rbd_poll_io_events(e->img, e->comps, (int)max);
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        struct rbd_slot *s = L.rbd_aio_get_arg(e->comps[i]);
        ssize_t r = L.rbd_aio_get_return_value(e->comps[i]);
        L.rbd_aio_release(e->comps[i]);
        int32_t res = r < 0 ? (int32_t)r
                    : (s->opc == SX_BIO_OP_READ || s->opc == SX_BIO_OP_WRITE) ? s->len : 0;
        note_link(b, res);
        out[i] = (struct sx_bio_cpl){ .cookie = s->cookie, .res = res };
        s->next_free = e->free_slots;
        e->free_slots = s;
    }
    return n;
}

static bool rbd_ready_(struct sx_bio *b)
{
    (void)b;
    return false;               /* librbd says so on the eventfd */
}

const struct sx_bio_ops sx_bio_rbd_ops = {
    .open = rbd_open_,
    .close = rbd_close_,
    .queue = rbd_queue_,
    .submit = rbd_submit_,
    .reap = rbd_reap_,
    .ready = rbd_ready_,
};
