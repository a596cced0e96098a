/*
 * Test fixture: blkback's daemon code (bb_daemon_* from blkback/) running in-process on an
 * in-process sim core with xenstored, and guests that play blkfront by hand against it: each
 * guest shares its ring and data pages, writes the frontend keys itself and puts raw blkif
 * requests straight into the shared ring.
 *
 * A test creates the guests it checks (blkguest_create + blkguest_connect) and destroys them
 * (blkguest_destroy: the domain goes away, blkback lets go of the vbd, the toolstack removes
 * the backend directory), so no test depends on what another one left behind. Waits are on
 * the event expected (a state seen through a watch, a response, a counter) with a deadline.
 */
#ifndef SPLITXEN_TEST_BLKGUEST_H
#define SPLITXEN_TEST_BLKGUEST_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkback/common.h"
#include "clock.h"
#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/simenv.h"
#include "tests/sxtest.h"
#include "xen-core/core.h"
#include "xenbus/xenbus.h"

/* ------------------------------------------------------------------ the daemon */

struct blkenv {
    struct simenv env;
    struct sxc_conn *ctl;          /* dom0 on the core: creates and destroys domains */
    struct sx_xenbus *xb;          /* dom0's xenstore: the toolstack's writes */
    struct bb_daemon *d;
    pthread_t thr;
    bool started;
    atomic_int stop;
    struct sx_stats dst;           /* the daemon's counters (blkback-0-0) */
    bool dst_open;
};

static inline void *blkenv_main(void *arg)
{
    struct blkenv *e = arg;
    bb_daemon_run(e->d, &e->stop);
    return NULL;
}

/* Tear down what blkenv_start built (also a failed start). Idempotent. */
static inline void blkenv_stop(struct blkenv *e)
{
    if (e->started) {
        e->stop = 1;
        pthread_join(e->thr, NULL);
        e->started = false;
    }
    bb_daemon_close(e->d);
    e->d = NULL;
    if (e->dst_open)
        sx_stats_close_ro(&e->dst);
    e->dst_open = false;
    sx_xenbus_close(e->xb);
    e->xb = NULL;
    sxc_disconnect(e->ctl);
    e->ctl = NULL;
    if (e->env.srv)
        simenv_stop(&e->env);
}

/* Core, xenstored, the daemon on a thread of its own. o NULL: bb_opts_default with the sync
 * engine. 0 or -errno (everything released on failure). */
static inline int blkenv_start(struct blkenv *e, const struct bb_opts *o)
{
    memset(e, 0, sizeof(*e));
    struct bb_opts dflt;
    if (!o) {
        bb_opts_default(&dflt);
        dflt.engine = SX_BIO_SYNC;
        o = &dflt;
    }
    char p[256];
    int rc = -EIO;
    if (simenv_start(&e->env, true) < 0 || sxc_connect(&e->ctl, e->env.sock, 0) < 0)
        goto fail;
    sx_xenstored_path(p, sizeof(p), 0);
    if ((rc = sx_xenbus_open(&e->xb, NULL, p)) < 0 || (rc = bb_daemon_open(&e->d, o)) < 0)
        goto fail;
    if ((rc = -pthread_create(&e->thr, NULL, blkenv_main, e)) < 0)
        goto fail;
    e->started = true;
    snprintf(p, sizeof(p), "%s/stats/blkback-0-0", e->env.dir);
    if ((rc = sx_stats_open_ro(&e->dst, p)) < 0)
        goto fail;
    e->dst_open = true;
    return 0;
fail:
    fprintf(stderr, "blkenv_start: %s\n", strerror(rc < 0 ? -rc : EIO));
    blkenv_stop(e);
    return rc < 0 ? rc : -EIO;
}

/* A daemon counter (watch_events, vbd_evals, ...). */
static inline uint64_t blkenv_stat(const struct blkenv *e, const char *name)
{
    return sx_stats_get(&e->dst, name);
}

/* ------------------------------------------------------------------ a guest */

#define BG_NDATA 16u
#define BG_IMG_BYTES (4u << 20)

struct blkguest_opts {
    const char *name;
    bool ro;                       /* mode=r */
    bool x86_32;                   /* protocol x86_32-abi */
    bool persistent;               /* feature-persistent=1 */
    bool own_xs;                   /* write the frontend keys over the guest's own connection,
                                      with libxl's permissions (else as dom0) */
};

struct blkguest {
    struct blkenv *e;
    struct blkguest_opts o;
    domid_t dom;
    unsigned devid;
    struct sx_plat *p;
    struct sx_gntshr *shr;
    struct sx_evtchn *evt;
    struct sx_xenbus *gxb;         /* the guest's own xenstore connection (own_xs) */
    int port;
    grant_ref_t ring_ref;
    void *ring_mem;
    struct sx_front_ring ring;
    grant_ref_t data_refs[BG_NDATA];
    uint8_t *data;
    char fep[128], bep[128], img[256];
    uint64_t next_id;
    uint8_t last_op;               /* operation of the last response taken */
    bool alive;                    /* the domain exists */
};

/* Byte i of sector s of every image: (s + i) & 0xff. */
static inline uint8_t blkguest_pattern(uint64_t s, unsigned i)
{
    return (uint8_t)(s + i);
}

/* The backend state of g, waited for through a watch (deadline ms). 0 or -ETIMEDOUT. */
static inline int blkguest_wait_be(struct blkguest *g, enum xenbus_state want, int ms)
{
    enum xenbus_state seen = XenbusStateUnknown;
    int rc = sx_xenbus_wait_state(g->e->xb, g->bep, want, ms, &seen);
    if (rc < 0)
        fprintf(stderr, "%s/state: %s, wanted %s\n", g->bep, sx_xenbus_state_name((int)seen),
                sx_xenbus_state_name((int)want));
    return rc;
}

/* A domain with an image (the pattern), a ring page, BG_NDATA data pages granted to dom0 and
 * an unbound event channel for it. Nothing in xenstore yet. 0 or -errno. */
static inline int blkguest_create(struct blkenv *e, struct blkguest *g,
                                  const struct blkguest_opts *o)
{
    memset(g, 0, sizeof(*g));
    g->e = e;
    g->o = *o;
    g->devid = 51712;
    g->next_id = 1;
    g->port = -1;
    int rc = sxc_domain_create(e->ctl, o->name, SXD_TYPE_PV, 32, 1, false);
    if (rc < 0)
        return rc;
    g->dom = (domid_t)rc;
    g->alive = true;
    snprintf(g->img, sizeof(g->img), "%s/%s.img", e->env.dir, o->name);
    int fd = open(g->img, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    uint8_t *buf = malloc(BG_IMG_BYTES);
    rc = buf ? 0 : -ENOMEM;
    for (size_t i = 0; buf && i < BG_IMG_BYTES; i++)
        buf[i] = blkguest_pattern(i / 512, (unsigned)(i % 512));
    if (buf && pwrite(fd, buf, BG_IMG_BYTES, 0) != (ssize_t)BG_IMG_BYTES)
        rc = -EIO;
    free(buf);
    close(fd);
    if (rc < 0)
        return rc;
    if (!(g->p = simenv_plat(&e->env, g->dom)))
        return -EIO;
    if ((rc = sx_gntshr_open(&g->shr, g->p)) < 0 || (rc = sx_evtchn_open(&g->evt, g->p)) < 0)
        return rc;
    if ((rc = sx_gntshr_share(g->shr, 0, 1, true, &g->ring_ref, &g->ring_mem)) < 0)
        return rc;
    if ((rc = sx_front_ring_init(&g->ring, g->ring_mem, SX_RING_PAGE_SIZE,
                                 sx_blk_req_slot_size(o->x86_32 ? SX_BLK_ABI_X86_32
                                                                : SX_BLK_ABI_NATIVE),
                                 sx_blk_rsp_slot_size(o->x86_32 ? SX_BLK_ABI_X86_32
                                                                : SX_BLK_ABI_NATIVE))) < 0)
        return rc;
    void *d;
    if ((rc = sx_gntshr_share(g->shr, 0, BG_NDATA, true, g->data_refs, &d)) < 0)
        return rc;
    g->data = d;
    if ((g->port = sx_evtchn_bind_unbound(g->evt, 0)) < 0)
        return g->port;
    sx_xenbus_frontend_path(g->fep, sizeof(g->fep), g->dom, "vbd", g->devid);
    sx_xenbus_backend_path(g->bep, sizeof(g->bep), 0, "vbd", g->dom, g->devid);
    if (o->own_xs) {
        char xsp[256];
        sx_xenstored_path(xsp, sizeof(xsp), g->dom);
        if ((rc = sx_xenbus_open(&g->gxb, NULL, xsp)) < 0)
            return rc;
    }
    return 0;
}

/* owner with no access for others, read for reader (xenstore-chmod nOWNER rREADER) */
static inline int blkguest_chmod(struct blkguest *g, const char *dir, const char *key,
                                 unsigned owner, unsigned reader)
{
    char path[256];
    snprintf(path, sizeof(path), "%s%s%s", dir, key ? "/" : "", key ? key : "");
    struct xs_permissions p[2] = { { .id = owner, .perms = XS_PERM_NONE },
                                   { .id = reader, .perms = XS_PERM_READ } };
    return xs_set_permissions(sx_xenbus_xs(g->e->xb), XBT_NULL, path, p, 2) ? 0 : -EACCES;
}

/* The toolstack's part of the vbd (libxl's layout; with own_xs its permissions too), up to the
 * backend's InitWait. 0 or -errno. */
static inline int blkguest_toolstack(struct blkguest *g)
{
    struct sx_xenbus *xb = g->e->xb;
    int rc;
    if ((rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "backend", g->bep)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "backend-id", "0")) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, g->fep, "virtual-device", "%u", g->devid)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->fep, "state", "1")))
        return rc;
    if (g->gxb) {
        char dev[64], vbd[80];
        snprintf(dev, sizeof(dev), "/local/domain/%u/device", g->dom);
        snprintf(vbd, sizeof(vbd), "%s/vbd", dev);
        if ((rc = blkguest_chmod(g, dev, NULL, 0, g->dom)) ||
            (rc = blkguest_chmod(g, vbd, NULL, 0, g->dom)) ||
            (rc = blkguest_chmod(g, g->fep, NULL, g->dom, 0)) ||
            (rc = blkguest_chmod(g, g->fep, "backend", g->dom, 0)) ||
            (rc = blkguest_chmod(g, g->fep, "backend-id", g->dom, 0)) ||
            (rc = blkguest_chmod(g, g->fep, "virtual-device", g->dom, 0)) ||
            (rc = blkguest_chmod(g, g->fep, "state", g->dom, 0)))
            return rc;
    }
    if ((rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "frontend", g->fep)) ||
        (rc = sx_xenbus_printf(xb, XBT_NULL, g->bep, "frontend-id", "%u", g->dom)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "params", g->img)) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "type", "phy")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "mode", g->o.ro ? "r" : "w")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "online", "1")) ||
        (rc = sx_xenbus_write(xb, XBT_NULL, g->bep, "state", "1")))
        return rc;
    return blkguest_wait_be(g, XenbusStateInitWait, 20000);
}

/* The frontend's handshake from the backend's InitWait: its keys, Initialised, the backend's
 * Connected, Connected. 0 or -errno. */
static inline int blkguest_handshake(struct blkguest *g)
{
    struct sx_xenbus *fxb = g->gxb ? g->gxb : g->e->xb;
    int rc;
    if ((rc = sx_xenbus_printf(fxb, XBT_NULL, g->fep, "ring-ref", "%u", g->ring_ref)) ||
        (rc = sx_xenbus_printf(fxb, XBT_NULL, g->fep, "event-channel", "%d", g->port)) ||
        (rc = sx_xenbus_write(fxb, XBT_NULL, g->fep, "protocol",
                              g->o.x86_32 ? "x86_32-abi" : "x86_64-abi")) ||
        (rc = sx_xenbus_write(fxb, XBT_NULL, g->fep, "feature-persistent",
                              g->o.persistent ? "1" : "0")) ||
        (rc = sx_xenbus_write(fxb, XBT_NULL, g->fep, "state", "3")))
        return rc;
    if ((rc = blkguest_wait_be(g, XenbusStateConnected, 20000)))
        return rc;
    return sx_xenbus_write(fxb, XBT_NULL, g->fep, "state", "4");
}

/* The toolstack's part, then the frontend's handshake up to Connected. 0 or -errno. */
static inline int blkguest_connect(struct blkguest *g)
{
    int rc = blkguest_toolstack(g);
    return rc < 0 ? rc : blkguest_handshake(g);
}

/* create + connect. 0 or -errno. */
static inline int blkguest_up(struct blkenv *e, struct blkguest *g, const struct blkguest_opts *o)
{
    int rc = blkguest_create(e, g, o);
    if (rc == 0)
        rc = blkguest_connect(g);
    if (rc < 0)
        fprintf(stderr, "guest %s: %s\n", o->name, strerror(-rc));
    return rc;
}

/* The domain goes away (its handles closed, destroyed: blkback sees @releaseDomain and lets
 * go), blkback says Closed, and the toolstack removes both directories (blkback forgets the
 * vbd). NULL-safe, idempotent. */
static inline void blkguest_destroy(struct blkguest *g)
{
    if (!g || !g->e)
        return;
    if (g->alive) {
        sxc_domain_destroy(g->e->ctl, g->dom);
        g->alive = false;
        if (g->bep[0] && sx_xenbus_exists(g->e->xb, XBT_NULL, g->bep, "state") == 1)
            blkguest_wait_be(g, XenbusStateClosed, 20000);
    }
    /* blkback let go of every mapping at Closed: the guest's handles close cleanly. */
    sx_xenbus_close(g->gxb);
    g->gxb = NULL;
    sx_evtchn_close(g->evt);
    g->evt = NULL;
    sx_gntshr_close(g->shr);
    g->shr = NULL;
    sx_plat_close(g->p);
    g->p = NULL;
    if (g->bep[0]) {
        char dir[64];
        snprintf(dir, sizeof(dir), "/local/domain/0/backend/vbd/%u", g->dom);
        sx_xenbus_rm(g->e->xb, XBT_NULL, dir, NULL);
        snprintf(dir, sizeof(dir), "/local/domain/%u", g->dom);
        sx_xenbus_rm(g->e->xb, XBT_NULL, dir, NULL);
    }
    if (g->img[0])
        unlink(g->img);
    g->e = NULL;
}

/* Wait until blkback has handled every xenstore change made so far: a write below g's
 * frontend state node is one event blkback counts as ignored; events arrive in order, so once
 * the count covers it every earlier event was dispatched, and once the round that dispatched
 * it ended, every vbd those events named was evaluated. True when both were seen in time. */
static inline bool blkguest_quiesce(struct blkguest *g)
{
    static unsigned seq;
    uint64_t ign = blkenv_stat(g->e, "watch_ignored");
    if (sx_xenbus_printf(g->e->xb, XBT_NULL, g->fep, "state/sx-barrier", "%u", seq++) < 0)
        return false;
    uint64_t end = sx_now_ms() + 10000;
    while (blkenv_stat(g->e, "watch_ignored") < ign + 1 && sx_now_ms() < end)
        usleep(500);
    uint64_t r = blkenv_stat(g->e, "rounds");
    while (blkenv_stat(g->e, "rounds") <= r && sx_now_ms() < end)
        usleep(500);
    return blkenv_stat(g->e, "rounds") > r;
}

/* A vbd counter of g from its stats file (UINT64_MAX when there is none). */
static inline uint64_t blkguest_stat(const struct blkguest *g, const char *name)
{
    char dir[200], path[300];
    sx_stats_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/vbd-%u-%u", dir, g->dom, g->devid);
    struct sx_stats s;
    memset(&s, 0, sizeof(s));
    if (sx_stats_open_ro(&s, path) < 0)
        return UINT64_MAX;
    uint64_t v = sx_stats_get(&s, name);
    sx_stats_close_ro(&s);
    return v;
}

/* Wait until g's counter name reaches at least want (deadline ms); its value. */
static inline uint64_t blkguest_stat_wait(const struct blkguest *g, const char *name,
                                          uint64_t want, int ms)
{
    uint64_t end = sx_now_ms() + (uint64_t)ms, v;
    while (((v = blkguest_stat(g, name)) < want || v == UINT64_MAX) && sx_now_ms() < end)
        usleep(1000);
    return v;
}

/* ------------------------------------------------------------------ requests */

static inline bool blkguest_x86_32(const struct blkguest *g)
{
    return g->o.x86_32;
}

/* Take one response within ms: its status (id in *id), or 100 when none came. The event
 * channel is drained meanwhile (the guest's own events: it trusts its backend). */
static inline int blkguest_take(struct blkguest *g, uint64_t *id, int ms)
{
    union {
        blkif_response_t n;
        struct sx_blkif_x86_32_response x;
    } rsp;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    do {
        if (sx_front_ring_take_rsp(&g->ring, &rsp, 1) == 1) {
            bool x = blkguest_x86_32(g);
            if (id)
                *id = x ? rsp.x.id : rsp.n.id;
            g->last_op = x ? rsp.x.operation : rsp.n.operation;
            return x ? rsp.x.status : rsp.n.status;
        }
        if (g->evt)
            sx_evtchn_drain(g->evt, 0);
        usleep(200);
    } while (sx_now_ms() < end);
    return 100;
}

/* Put one raw request slot, push, notify; wait up to 2 s for its response. Returns the
 * status, or 100 when no response came. */
static inline int blkguest_roundtrip(struct blkguest *g, const void *slot, uint64_t *id)
{
    if (sx_front_ring_put_req(&g->ring, slot) != 0)
        return 101;
    if (sx_front_ring_push(&g->ring) == 1)
        sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    return blkguest_take(g, id, 2000);
}

static inline blkif_request_t blkguest_rw(struct blkguest *g, uint8_t op, uint64_t sector,
                                          unsigned nseg, grant_ref_t gref, uint8_t first,
                                          uint8_t last)
{
    blkif_request_t r;
    memset(&r, 0, sizeof(r));
    r.operation = op;
    r.nr_segments = (uint8_t)nseg;
    r.id = g->next_id++;
    r.sector_number = sector;
    for (unsigned i = 0; i < nseg && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
        r.seg[i] = (struct blkif_request_segment){ .gref = gref, .first_sect = first,
                                                   .last_sect = last };
    return r;
}

/* A discard of n sectors from sector s, as a ring slot. */
static inline blkif_request_t blkguest_discard(struct blkguest *g, uint64_t s, uint64_t n)
{
    union { blkif_request_t slot; blkif_request_discard_t d; } u;
    memset(&u, 0, sizeof(u));
    u.d.operation = BLKIF_OP_DISCARD;
    u.d.id = g->next_id++;
    u.d.sector_number = s;
    u.d.nr_sectors = n;
    return u.slot;
}

/* A good read of the 4 KiB at sector s into data page 0: OKAY with the image's bytes. */
static inline bool blkguest_good_read(struct blkguest *g, uint64_t s)
{
    memset(g->data, 0, SX_PAGE_SIZE);
    blkif_request_t r = blkguest_rw(g, BLKIF_OP_READ, s, 1, g->data_refs[0], 0, 7);
    uint64_t id = 0;
    int st = blkguest_roundtrip(g, &r, &id);
    return st == BLKIF_RSP_OKAY && id == r.id && g->data[0] == blkguest_pattern(s, 0) &&
           g->data[4095] == blkguest_pattern(s + 7, 4095);
}

/* The 4 KiB at sector s of g's image: all v (v >= 0), or still the pattern (v < 0). */
static inline bool blkguest_image_is(struct blkguest *g, uint64_t s, int v)
{
    int fd = open(g->img, O_RDONLY | O_CLOEXEC);
    uint8_t buf[4096];
    bool ok = fd >= 0 && pread(fd, buf, sizeof(buf), (off_t)(s * 512)) == (ssize_t)sizeof(buf);
    for (unsigned i = 0; ok && i < sizeof(buf); i++)
        ok = buf[i] == (v >= 0 ? (uint8_t)v : blkguest_pattern(s + i / 512, i % 512));
    if (fd >= 0)
        close(fd);
    return ok;
}

#endif
