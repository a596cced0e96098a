/*
 * splitxen-fio: a fio external ioengine that drives a vbd through sxblkfront, acting as a sim
 * guest domain.
 *
 *   fio --ioengine=external:$B/lib/splitxen-fio.so --domid=1 --vdev=xvda --name=t \
 *       --rw=randread --bs=4k --iodepth=32 --size=64M --thread
 *
 * Options (engine): domid (required: the guest domain this process acts as), vdev (xvda or a
 * number, default xvda), queues (default 1), persistent (0/1, default 1), indirect (max
 * indirect segments, 0 = off, default 256), ring_order (default 4), spin_us (spin budget
 * before sleeping, default from $SPLITXEN_SPIN_NS or 20), core (splitxen-core socket, default
 * $SPLITXEN_CORE or $SPLITXEN_RUN/core.sock), timeout_ms (each handshake wait, 10000),
 * zero_copy (0/1, default 1: fio's I/O buffers are granted to the backend, see below).
 *
 * A process holds one blkfront per vbd; the jobs of that process (thread=1) share it, job i
 * on queue i % queues (jobs on one queue serialise on a lock and hand each other's
 * completions over). With fio's default of one process per job, each job connects on its
 * own, so numjobs > 1 on one vbd needs thread=1 (the second connection is refused: -EBUSY).
 * setup() learns the disk size (the "file" fio sees) by connecting; in process mode it
 * disconnects again and the job reconnects (the backend must support reconnection, as Linux
 * blkback does: frontend Closed -> Initialising sends it back to InitWait).
 *
 * fio's I/O buffers come from the engine (iomem_alloc): with zero_copy and persistent grants
 * they are one granted buffer (sx_blkfront_buf_alloc), so requests name fio's own pages and
 * nothing is copied on this side; else ordinary memory, which queue() copies into granted
 * pages (writes) and completion copies out of them (reads). queue() writes ring slots;
 * commit() publishes the batch with at most one notification; getevents() reaps, spinning
 * then sleeping on the event channel. Failed requests complete with io_u->error = errno
 * (EIO, EOPNOTSUPP, ...).
 *
 * Save, restore and live migration: a pv device's process is part of the guest's kernel
 * (frontends/control, on its own thread). When the toolstack suspends the guest, the control
 * thread takes every queue's lock (jobs wait there: the I/O gap fio sees is the guest's
 * pause), keeps the requests in flight and makes the suspend hypercall; after a move the
 * blkfront reconnects on the new host and issues those requests again, and the jobs go on.
 *
 * transport=ahci (default pv) drives the same job through the emulated path instead: the
 * process acts as HVM domain `domid`'s vCPU and uses sx_hvmdisk (frontends/hvmdisk) on the
 * AHCI controller of its device model; reads and writes are NCQ commands through bounce
 * buffers in guest memory (bs up to 4 MiB), sync/trim are FLUSH CACHE EXT / DSM TRIM. The
 * vbd options (vdev, queues, persistent, indirect, ring_order) do not apply there; jobs of
 * one process share the disk (one queue).
 */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <xen/io/xenbus.h>

#include "clock.h"
#include "frontends/blkfront/blkfront.h"
#include "frontends/control/control.h"
#include "frontends/hvmdisk/hvmdisk.h"
#include "platform/platform.h"

struct sxf_options {
    void *pad;                  /* fio treats off1 == 0 as "no offset" */
    unsigned int domid;
    char *vdev;
    unsigned int queues;
    unsigned int persistent;
    unsigned int indirect;
    unsigned int ring_order;
    unsigned int spin_us;
    char *core;
    unsigned int timeout_ms;
    char *transport;
    unsigned int zero_copy;
};

#define SXF_OPT(n, ln, t, field, d, h)                                                   \
    {                                                                                     \
        .name = n, .lname = ln, .type = t, .off1 = offsetof(struct sxf_options, field),  \
        .def = d, .help = h, .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_INVALID,    \
    }

static struct fio_option sxf_opts[] = {
    SXF_OPT("domid", "splitxen guest domid", FIO_OPT_INT, domid, "0",
            "Guest domain to act as (required)"),
    SXF_OPT("vdev", "splitxen vbd", FIO_OPT_STR_STORE, vdev, "xvda",
            "Virtual device: xvda or a devid number"),
    SXF_OPT("queues", "splitxen queues", FIO_OPT_INT, queues, "1",
            "Queues to negotiate (capped by the backend)"),
    SXF_OPT("persistent", "splitxen persistent grants", FIO_OPT_BOOL, persistent, "1",
            "Offer persistent grants"),
    SXF_OPT("indirect", "splitxen indirect segments", FIO_OPT_INT, indirect, "256",
            "Max indirect segments per request (0 = no indirect descriptors)"),
    SXF_OPT("ring_order", "splitxen ring page order", FIO_OPT_INT, ring_order, "4",
            "Max ring-page-order (0..4)"),
    SXF_OPT("spin_us", "splitxen spin budget", FIO_OPT_INT, spin_us, "4294967295",
            "Spin on the ring this long before sleeping (default: $SPLITXEN_SPIN_NS or 20)"),
    SXF_OPT("core", "splitxen-core socket", FIO_OPT_STR_STORE, core, "",
            "splitxen-core socket (default $SPLITXEN_CORE or $SPLITXEN_RUN/core.sock)"),
    SXF_OPT("timeout_ms", "splitxen handshake timeout", FIO_OPT_INT, timeout_ms, "10000",
            "Timeout of each xenbus handshake wait"),
    SXF_OPT("transport", "splitxen transport", FIO_OPT_STR_STORE, transport, "pv",
            "pv (blkfront on a vbd) or ahci (the HVM domain's emulated AHCI disk)"),
    SXF_OPT("zero_copy", "splitxen granted buffers", FIO_OPT_BOOL, zero_copy, "1",
            "fio's buffers granted to the backend: no copy in the frontend (needs persistent grants)"),
    { .name = NULL },
};

/* ------------------------------------------------------------------ shared devices */

struct sxf_queue {
    pthread_mutex_t lock;
    unsigned users;
    _Atomic unsigned spinning;  /* jobs spinning on the ring outside the lock */
};

struct sxf_dev {
    struct sxf_dev *next;
    char key[512];
    struct sx_plat *plat;
    struct sx_blkfront *bf;
    struct sx_hvmdisk *hd;      /* transport=ahci instead of bf */
    struct sx_guest *guest;     /* pv on sim: suspend and resume (frontends/control) */
    _Atomic bool suspended;     /* from the suspend hook to the end of the resume */
    unsigned refs, attached;
    struct sxf_queue q[SX_BLKFRONT_MAX_QUEUES];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sxf_dev *reg;

struct sxf_job {
    struct sxf_dev *dev;
    unsigned queue;
    bool attached;
    bool shared;                /* another job may use this queue: never sleep long */
    uint64_t spin_ns;           /* adaptive polling budget: the most */
    uint64_t spin_cur;          /* ... the current one (haltpoll's rule, see getevents) */
    unsigned depth;
    struct io_u **events;       /* filled by getevents, read by event() */
    struct sx_blkfront_cpl *cpl;
    struct sx_hvmdisk_cpl *hcpl;
    struct io_u **pending;      /* queued since the last commit */
    unsigned npending;
    struct io_u **mailbox;      /* completions another job reaped for us (queue lock) */
    unsigned nmail;
    bool zero_copy;             /* option zero_copy: ask for granted I/O buffers */
    bool granted_buf;           /* td->orig_buffer is a granted buffer (sx_blkfront_buf_alloc) */
};

static void fill_opts(const struct sxf_options *o, struct sx_blkfront_opts *bo)
{
    sx_blkfront_opts_default(bo);
    bo->persistent = o->persistent != 0;
    bo->max_indirect_segs = o->indirect;
    bo->max_ring_order = o->ring_order;
    bo->max_queues = o->queues ? o->queues : 1;
    if (o->timeout_ms)
        bo->timeout_ms = o->timeout_ms;
    if (o->spin_us != UINT_MAX)
        bo->spin_ns = (uint64_t)o->spin_us * 1000;
}

static const char *core_path(const struct sxf_options *o)
{
    if (!o->core || !*o->core)
        return NULL;
    /* The xenstored sockets live next to the core socket: derive the run dir from it. */
    if (!getenv("SPLITXEN_RUN")) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", o->core);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            setenv("SPLITXEN_RUN", dir, 0);
        }
    }
    return o->core;
}

static bool is_ahci(const struct sxf_options *o)
{
    return o->transport && !strcmp(o->transport, "ahci");
}

static int sxf_connect(struct thread_data *td, const struct sxf_options *o, struct sx_plat **pp,
                       struct sx_blkfront **bfp, struct sx_hvmdisk **hdp)
{
    if (o->transport && *o->transport && strcmp(o->transport, "pv") && !is_ahci(o)) {
        log_err("splitxen: transport=%s: pv or ahci\n", o->transport);
        return -EINVAL;
    }
    if (!o->domid) {
        log_err("splitxen: --domid=N is required (the guest domain to act as)\n");
        return -EINVAL;
    }
    const char *core = core_path(o);
    int kind = sx_plat_kind_from_name(getenv("SPLITXEN_PLATFORM") ? getenv("SPLITXEN_PLATFORM")
                                                                   : "sim");
    if (kind < 0)
        return kind;
    int rc = sx_plat_open(pp, (enum sx_plat_kind)kind, (domid_t)o->domid, core);
    if (rc < 0) {
        log_err("splitxen: attach to dom%u via %s: %s\n", o->domid, core ? core : "default core",
                strerror(-rc));
        return rc;
    }
    if (is_ahci(o)) {
        struct sx_hvmdisk_opts ho;
        sx_hvmdisk_opts_default(&ho);
        unsigned long long bs = td->o.max_bs[DDIR_READ] > td->o.max_bs[DDIR_WRITE]
                                    ? td->o.max_bs[DDIR_READ] : td->o.max_bs[DDIR_WRITE];
        bs = (bs + 4095) & ~4095ull;
        if (bs > ho.max_io)
            ho.max_io = bs > (4u << 20) ? (4u << 20) : (size_t)bs;
        if (o->timeout_ms)
            ho.timeout_ms = (int)o->timeout_ms;
        if (o->spin_us != UINT_MAX)
            ho.spin_us = o->spin_us;
        rc = sx_hvmdisk_open(hdp, *pp, &ho);
        if (rc < 0) {
            log_err("splitxen: AHCI disk of dom%u: %s\n", o->domid, strerror(-rc));
            sx_plat_close(*pp);
            *pp = NULL;
        }
        return rc;
    }
    struct sx_blkfront_opts bo;
    fill_opts(o, &bo);
    rc = sx_blkfront_open(bfp, *pp, o->vdev && *o->vdev ? o->vdev : "xvda", &bo);
    if (rc < 0) {
        log_err("splitxen: connect dom%u vbd %s: %s\n", o->domid, o->vdev, strerror(-rc));
        sx_plat_close(*pp);
        *pp = NULL;
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ suspend and resume */

static unsigned dev_queues(const struct sxf_dev *d)
{
    return d->hd ? 1 : sx_blkfront_info(d->bf)->nr_queues;
}

/* Stop the jobs: every queue lock, then no job left spinning on a ring outside its lock. */
static int dev_suspend(void *arg)
{
    struct sxf_dev *d = arg;
    for (unsigned i = 0; i < dev_queues(d); i++)
        pthread_mutex_lock(&d->q[i].lock);
    atomic_store(&d->suspended, true);
    for (unsigned i = 0; i < dev_queues(d); i++)
        while (atomic_load(&d->q[i].spinning))
            sched_yield();
    int rc = sx_blkfront_suspend(d->bf);
    if (rc < 0) {
        atomic_store(&d->suspended, false);
        for (unsigned i = 0; i < dev_queues(d); i++)
            pthread_mutex_unlock(&d->q[i].lock);
    }
    return rc;
}

/* The blkfront reconnects and reissues; the jobs go on (a job asleep on the event channel is
 * woken by the resumed handle). On failure they find the device gone. */
static int dev_resume(void *arg, bool moved)
{
    struct sxf_dev *d = arg;
    int rc = sx_blkfront_resume(d->bf, moved);
    atomic_store(&d->suspended, false);
    for (unsigned i = 0; i < dev_queues(d); i++)
        pthread_mutex_unlock(&d->q[i].lock);
    return rc;
}

/* A pv device on a platform whose guest processes suspend themselves follows control/shutdown
 * on a thread of its own. */
static void dev_follow_guest(struct sxf_dev *d)
{
    if (!d->bf || !sx_plat_traits(d->plat->kind)->guest_suspend)
        return;
    int rc = sx_guest_open(&d->guest, d->plat);
    if (rc == 0) {
        const struct sx_guest_dev gd = { .name = "splitxen-fio vbd", .suspend = dev_suspend,
                                         .resume = dev_resume, .arg = d };
        rc = sx_guest_add(d->guest, &gd);
        if (rc == 0)
            rc = sx_guest_start(d->guest);
    }
    if (rc < 0) {
        log_info("splitxen: dom%u will not follow a suspend (save, migration): %s\n",
                 d->plat->self, strerror(-rc));
        sx_guest_close(d->guest);
        d->guest = NULL;
    }
}

static int dev_get(struct thread_data *td, const struct sxf_options *o, struct sxf_dev **out)
{
    char key[512];
    snprintf(key, sizeof(key), "%s|%u|%s|%s", o->core ? o->core : "", o->domid,
             o->vdev ? o->vdev : "xvda", is_ahci(o) ? "ahci" : "pv");
    pthread_mutex_lock(&reg_lock);
    struct sxf_dev *d;
    for (d = reg; d; d = d->next)
        if (!strcmp(d->key, key))
            break;
    int rc = 0;
    if (d) {
        d->refs++;
    } else {
        d = calloc(1, sizeof(*d));
        rc = d ? sxf_connect(td, o, &d->plat, &d->bf, &d->hd) : -ENOMEM;
        if (rc == 0) {
            snprintf(d->key, sizeof(d->key), "%s", key);
            for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++)
                pthread_mutex_init(&d->q[i].lock, NULL);
            dev_follow_guest(d);
            d->refs = 1;
            d->next = reg;
            reg = d;
        } else {
            free(d);
            d = NULL;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    *out = d;
    return rc;
}

static void dev_put(struct sxf_dev *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&reg_lock);
    bool last = --d->refs == 0;
    if (last) {
        for (struct sxf_dev **pp = &reg; *pp; pp = &(*pp)->next)
            if (*pp == d) {
                *pp = d->next;
                break;
            }
    }
    pthread_mutex_unlock(&reg_lock);
    if (!last)
        return;
    sx_guest_close(d->guest);       /* first: no suspend may start on a closing device */
    sx_blkfront_close(d->bf);
    sx_hvmdisk_close(d->hd);
    sx_plat_close(d->plat);
    for (unsigned i = 0; i < SX_BLKFRONT_MAX_QUEUES; i++)
        pthread_mutex_destroy(&d->q[i].lock);
    free(d);
}

/* ------------------------------------------------------------------ setup / init */

static uint64_t dev_size(const struct sxf_dev *d)
{
    return d->hd ? sx_hvmdisk_info(d->hd)->size_bytes : sx_blkfront_info(d->bf)->size_bytes;
}

static struct sxf_job *job_alloc(struct thread_data *td)
{
    struct sxf_job *j = td->io_ops_data;
    if (j)
        return j;
    j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    td->io_ops_data = j;
    return j;
}

static int sxf_setup(struct thread_data *td)
{
    struct sxf_options *o = td->eo;
    if (!o->domid) {
        td_verror(td, EINVAL, "splitxen: --domid=N is required");
        return 1;
    }
    /* The "file" is the whole disk: learn its size (size= only limits the I/O). In thread
     * mode keep the connection for the jobs; a forked job reconnects on its own. */
    unsigned long long per_file = 0;
    struct sx_plat *p = NULL;
    struct sx_blkfront *bf = NULL;
    struct sx_hvmdisk *hd = NULL;
    int rc;
    if (td->o.use_thread) {
        struct sxf_job *j = job_alloc(td);
        rc = j ? (j->dev ? 0 : dev_get(td, o, &j->dev)) : -ENOMEM;
        if (rc == 0)
            per_file = dev_size(j->dev);
    } else {
        rc = sxf_connect(td, o, &p, &bf, &hd);
        if (rc == 0)
            per_file = hd ? sx_hvmdisk_info(hd)->size_bytes : sx_blkfront_info(bf)->size_bytes;
        sx_blkfront_close(bf);
        sx_hvmdisk_close(hd);
        sx_plat_close(p);
    }
    if (rc < 0) {
        td_verror(td, -rc, "splitxen: connect to the vbd to learn its size");
        return 1;
    }
    per_file /= td->o.nr_files ? td->o.nr_files : 1;
    struct fio_file *f;
    unsigned int i;
    for_each_file(td, f, i) {
        f->real_file_size = per_file;
        fio_file_set_size_known(f);
    }
    return 0;
}

static int sxf_init(struct thread_data *td)
{
    struct sxf_options *o = td->eo;
    struct sxf_job *j = job_alloc(td);
    if (!j) {
        td_verror(td, ENOMEM, "splitxen: init");
        return 1;
    }
    unsigned depth = td->o.iodepth ? td->o.iodepth : 1;
    j->depth = depth;
    j->events = calloc(depth, sizeof(*j->events));
    j->cpl = calloc(depth, sizeof(*j->cpl));
    j->hcpl = calloc(depth, sizeof(*j->hcpl));
    j->pending = calloc(depth, sizeof(*j->pending));
    j->mailbox = calloc(depth, sizeof(*j->mailbox));
    if (!j->events || !j->cpl || !j->hcpl || !j->pending || !j->mailbox) {
        td_verror(td, ENOMEM, "splitxen: init");
        return 1;
    }
    if (!j->dev) {
        int rc = dev_get(td, o, &j->dev);
        if (rc < 0) {
            td_verror(td, -rc, "splitxen: connect to the vbd");
            return 1;
        }
    }
    struct sxf_dev *d = j->dev;
    pthread_mutex_lock(&reg_lock);
    unsigned nq = d->hd ? 1 : sx_blkfront_info(d->bf)->nr_queues;
    j->queue = d->attached++ % nq;
    d->q[j->queue].users++;
    j->attached = true;
    /* In thread mode every job's setup() took its reference before any init(): refs is the
     * number of jobs, and queue q gets jobs q, q + nq, ... Also count late attachers. */
    j->shared = d->q[j->queue].users > 1 || d->refs > nq;
    pthread_mutex_unlock(&reg_lock);
    struct sx_blkfront_opts bo;
    fill_opts(o, &bo);
    j->spin_ns = bo.spin_ns;
    j->spin_cur = bo.spin_ns;
    j->zero_copy = o->zero_copy != 0;
    td->io_ops->flags |= FIO_ASYNCIO_SETS_ISSUE_TIME;
    td_set_ioengine_flags(td);
    return 0;
}

static void sxf_cleanup(struct thread_data *td)
{
    struct sxf_job *j = td->io_ops_data;
    if (!j)
        return;
    if (j->attached) {
        pthread_mutex_lock(&reg_lock);
        j->dev->q[j->queue].users--;
        pthread_mutex_unlock(&reg_lock);
    }
    dev_put(j->dev);
    free(j->events);
    free(j->cpl);
    free(j->hcpl);
    free(j->pending);
    free(j->mailbox);
    free(j);
    td->io_ops_data = NULL;
}

/* fio's I/O buffers: granted to the backend when the vbd allows it (persistent grants), so a
 * read lands in fio's buffer and a write leaves from it with no copy on this side; otherwise
 * ordinary memory, copied through the ring's pages. fio asks after init(): the device is
 * connected by then. */
static int sxf_iomem_alloc(struct thread_data *td, size_t size)
{
    struct sxf_job *j = td->io_ops_data;
    void *p = NULL;
    j->granted_buf = false;
    if (j->dev && j->dev->bf && j->zero_copy && sx_blkfront_buf_alloc(j->dev->bf, size, &p) == 0) {
        j->granted_buf = true;
    } else if (posix_memalign(&p, 4096, size ? size : 1)) {
        return 1;
    }
    td->orig_buffer = p;
    return 0;
}

static void sxf_iomem_free(struct thread_data *td)
{
    struct sxf_job *j = td->io_ops_data;
    /* A granted buffer stays granted until the device closes (the backend keeps it mapped). */
    if (!j || !j->granted_buf)
        free(td->orig_buffer);
    td->orig_buffer = NULL;
}

static int sxf_open_file(struct thread_data *td, struct fio_file *f)
{
    struct sxf_job *j = td->io_ops_data;
    uint64_t size = dev_size(j->dev);
    /* fio keeps I/O inside real_file_size, which setup() set to the disk size; a job of
     * another process may have learned it from a different disk under the same name. */
    if (f->real_file_size > size) {
        log_err("splitxen: %s: %llu bytes expected, the disk has %llu\n", f->file_name,
                (unsigned long long)f->real_file_size, (unsigned long long)size);
        td_verror(td, EINVAL, "splitxen: size beyond the disk");
        return 1;
    }
    return 0;
}

static int sxf_close_file(struct thread_data *td, struct fio_file *f)
{
    return 0;
}

/* ------------------------------------------------------------------ data path */

static enum fio_q_status sxf_queue(struct thread_data *td, struct io_u *io_u)
{
    struct sxf_job *j = td->io_ops_data;
    fio_ro_check(td, io_u);
    enum sx_blkfront_op op;
    switch (io_u->ddir) {
    case DDIR_READ:
        op = SX_BLKFRONT_READ;
        break;
    case DDIR_WRITE:
        op = SX_BLKFRONT_WRITE;
        break;
    case DDIR_SYNC:
    case DDIR_DATASYNC:
        op = SX_BLKFRONT_FLUSH;
        break;
    case DDIR_TRIM:
        op = SX_BLKFRONT_DISCARD;
        break;
    default:
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    io_u->engine_data = j;
    pthread_mutex_lock(&j->dev->q[j->queue].lock);
    int rc;
    if (j->dev->hd) {
        static const enum sx_hvmdisk_op hop[] = {
            [SX_BLKFRONT_READ] = SX_HVMDISK_READ, [SX_BLKFRONT_WRITE] = SX_HVMDISK_WRITE,
            [SX_BLKFRONT_FLUSH] = SX_HVMDISK_FLUSH, [SX_BLKFRONT_DISCARD] = SX_HVMDISK_DISCARD,
        };
        bool fl = op == SX_BLKFRONT_FLUSH;
        rc = sx_hvmdisk_submit(j->dev->hd, hop[op], fl ? 0 : io_u->offset,
                               fl ? NULL : io_u->xfer_buf, fl ? 0 : io_u->xfer_buflen, io_u);
    } else rc = sx_blkfront_submit(j->dev->bf, j->queue, op,
                                op == SX_BLKFRONT_FLUSH ? 0 : io_u->offset,
                                op == SX_BLKFRONT_FLUSH ? NULL : io_u->xfer_buf,
                                op == SX_BLKFRONT_FLUSH ? 0 : io_u->xfer_buflen, io_u);
    pthread_mutex_unlock(&j->dev->q[j->queue].lock);
    if (rc == -EAGAIN)
        return FIO_Q_BUSY;          /* fio commits, reaps and retries */
    if (rc == -EOPNOTSUPP && op == SX_BLKFRONT_FLUSH) {
        /* A disk without flush (never offered, or answered EOPNOTSUPP): no volatile cache,
         * what completed is durable; fsync succeeds, as on a write-through disk in Linux. */
        io_u->error = 0;
        return FIO_Q_COMPLETED;
    }
    if (rc < 0) {
        io_u->error = -rc;
        return FIO_Q_COMPLETED;
    }
    j->pending[j->npending++] = io_u;
    return FIO_Q_QUEUED;
}

static int sxf_commit(struct thread_data *td)
{
    struct sxf_job *j = td->io_ops_data;
    if (!j->npending)
        return 0;
    pthread_mutex_lock(&j->dev->q[j->queue].lock);
    int rc = j->dev->hd ? sx_hvmdisk_kick(j->dev->hd) : sx_blkfront_kick(j->dev->bf, j->queue);
    pthread_mutex_unlock(&j->dev->q[j->queue].lock);
    if (rc < 0) {
        td_verror(td, -rc, "splitxen: kick");
        return -rc;
    }
    struct timespec now;
    bool stamp = fio_fill_issue_time(td);
    if (stamp)
        fio_gettime(&now, NULL);
    for (unsigned i = 0; i < j->npending; i++) {
        if (stamp)
            memcpy(&j->pending[i]->issue_time, &now, sizeof(now));
        io_u_queued(td, j->pending[i]);
    }
    io_u_mark_submit(td, j->npending);
    j->npending = 0;
    return 0;
}

static void take(struct sxf_job *j, struct io_u *io_u, int res, unsigned *n)
{
    io_u->error = res < 0 ? -res : 0;
    io_u->resid = 0;
    j->events[(*n)++] = io_u;
}

/* Route completions reaped on a shared queue: ours to events, others' to their mailbox. */
static void route(struct sxf_job *j, int got, unsigned *n)
{
    for (int i = 0; i < got; i++) {
        struct io_u *io_u = j->cpl[i].cookie;
        struct sxf_job *owner = io_u->engine_data;
        if (owner == j) {
            take(j, io_u, j->cpl[i].res, n);
        } else {
            io_u->error = j->cpl[i].res < 0 ? -j->cpl[i].res : 0;
            owner->mailbox[owner->nmail++] = io_u;
        }
    }
}

/* transport=ahci: reap under the lock; a job alone on the disk sleeps in sx_hvmdisk_wait
 * (interrupt line), a shared one only ever waits briefly. */
static int ahci_getevents(struct thread_data *td, struct sxf_job *j, unsigned min, unsigned max,
                          int tmo)
{
    struct sxf_queue *q = &j->dev->q[0];
    unsigned n = 0;
    struct timespec start;
    fio_gettime(&start, NULL);
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (j->nmail && n < max)
            j->events[n++] = j->mailbox[--j->nmail];
        int got = 0;
        if (n < max) {
            int left = tmo < 0 ? 100 : tmo - (int)mtime_since_now(&start);
            if (left > 100)
                left = 100;
            if (left < 0)
                left = 0;
            got = n < min && !j->shared
                      ? sx_hvmdisk_wait(j->dev->hd, j->hcpl, min - n, max - n, left)
                      : sx_hvmdisk_poll(j->dev->hd, j->hcpl, max - n);
        }
        for (int i = 0; i < got; i++) {
            j->cpl[i].cookie = j->hcpl[i].cookie;
            j->cpl[i].res = j->hcpl[i].res;
        }
        if (got > 0)
            route(j, got, &n);
        pthread_mutex_unlock(&q->lock);
        if (got < 0) {
            td_verror(td, -got, "splitxen: AHCI reap");
            return got;
        }
        if (n >= min)
            return (int)n;
        if (tmo >= 0 && (int)mtime_since_now(&start) >= tmo)
            return (int)n;
        if (j->shared) {
            struct timespec ts = { 0, 20 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
}

static int sxf_getevents(struct thread_data *td, unsigned int min, unsigned int max,
                         const struct timespec *t)
{
    struct sxf_job *j = td->io_ops_data;
    struct sx_blkfront *bf = j->dev->bf;
    struct sxf_queue *q = &j->dev->q[j->queue];
    int tmo = t ? (int)(t->tv_sec * 1000 + t->tv_nsec / 1000000) : -1;
    if (max > j->depth)
        max = j->depth;
    if (min > max)
        min = max;
    if (j->dev->hd)
        return ahci_getevents(td, j, min, max, tmo);
    unsigned n = 0;
    struct timespec start;
    bool started = false;       /* the clock is read only once a wait begins */
    for (;;) {
        /* Every ring access is under the queue lock: jobs may share a queue, and a job
         * attaching later must not race one that started alone. */
        pthread_mutex_lock(&q->lock);
        while (j->nmail && n < max)
            j->events[n++] = j->mailbox[--j->nmail];
        int got = n < max ? sx_blkfront_poll(bf, j->queue, j->cpl, max - n) : 0;
        if (got > 0)
            route(j, got, &n);
        pthread_mutex_unlock(&q->lock);
        if (got < 0) {
            td_verror(td, -got, "splitxen: reap");
            return got;
        }
        if (n >= min || tmo == 0)
            return (int)n;
        if (!started) {
            fio_gettime(&start, NULL);
            started = true;
        } else if (tmo > 0 && (int)mtime_since_now(&start) >= tmo) {
            return (int)n;
        }
        /* Adaptive polling: spin on the ring before arming the event and sleeping. The
         * budget follows the waits (the haltpoll governor's rule): a sleep shorter than the
         * most we may spin doubles it (spinning that long would have caught the response: a
         * fast device, a busy backend), a longer one halves it (a slow device: sleep at once).
         * Not while the guest is suspended: a resume replaces the ring. */
        if (j->spin_cur) {
            atomic_fetch_add(&q->spinning, 1);
            bool hit = !atomic_load(&j->dev->suspended) &&
                       sx_blkfront_spin(bf, j->queue, j->spin_cur);
            atomic_fetch_sub(&q->spinning, 1);
            if (hit)
                continue;
        }
        pthread_mutex_lock(&q->lock);
        int armed = sx_blkfront_arm(bf, j->queue);
        pthread_mutex_unlock(&q->lock);
        if (armed != 0)
            continue;
        /* A job sharing the queue may reap our completions and consume the event that
         * would wake us: then never sleep long. */
        int left = j->shared ? 1 : tmo < 0 || tmo > 1000 ? 1000 : tmo;
        struct pollfd pfd = { .fd = sx_blkfront_fd(bf, j->queue), .events = POLLIN };
        uint64_t t0 = sx_now_ns();
        int pr = poll(&pfd, 1, left);
        uint64_t slept = sx_now_ns() - t0, floor_ns = j->spin_ns / 16;
        if (slept < j->spin_ns)
            j->spin_cur = j->spin_cur < floor_ns ? floor_ns
                        : j->spin_cur * 2 > j->spin_ns ? j->spin_ns : j->spin_cur * 2;
        else
            j->spin_cur /= 2;
        if (pr == 0 && mtime_since_now(&start) >= 1000 &&
            !atomic_load(&j->dev->suspended) &&
            sx_blkfront_backend_state(bf) != XenbusStateConnected) {
            /* Silence for a second and the backend has gone: fail instead of hanging. */
            log_err("splitxen: the backend left Connected with I/O outstanding\n");
            td_verror(td, ENOTCONN, "splitxen: backend gone");
            return -ENOTCONN;
        }
    }
}

static struct io_u *sxf_event(struct thread_data *td, int event)
{
    struct sxf_job *j = td->io_ops_data;
    return j->events[event];
}

struct ioengine_ops ioengine = {
    .name = "splitxen-fio",
    .version = FIO_IOOPS_VERSION,
    .setup = sxf_setup,
    .init = sxf_init,
    .cleanup = sxf_cleanup,
    .queue = sxf_queue,
    .commit = sxf_commit,
    .getevents = sxf_getevents,
    .event = sxf_event,
    .open_file = sxf_open_file,
    .close_file = sxf_close_file,
    .iomem_alloc = sxf_iomem_alloc,
    .iomem_free = sxf_iomem_free,
    .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL,
    .options = sxf_opts,
    .option_struct_size = sizeof(struct sxf_options),
};
