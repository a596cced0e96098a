/*
 * The hostile-frontend fixture of blkback's in-process tests (hostile_test.c, check_test.c):
 * the real daemon (bb_daemon_*) on an in-process sim core with xenstored, and guests that share
 * their ring and data pages, write the frontend keys by hand and produce raw blkif requests
 * straight into the shared ring.
 */
#ifndef SPLITXEN_TESTS_BLKBACK_HOSTILE_H
#define SPLITXEN_TESTS_BLKBACK_HOSTILE_H

#include "blkback/common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"
#include "xenbus/xenbus.h"

#define IMG_BYTES (4u << 20)
#define NDATA 16

struct gfront {
    domid_t dom;
    unsigned devid;
    struct sx_plat *p;
    struct sx_gntshr *shr;
    struct sx_evtchn *evt;
    int port;
    grant_ref_t ring_ref;
    void *ring_mem;
    struct sx_front_ring ring;
    grant_ref_t data_refs[NDATA];
    uint8_t *data;
    char fep[128], bep[128];
    char img[256];
};

static struct simenv env;
static struct bb_daemon *daemon_;
static pthread_t daemon_thr;
static volatile int daemon_stop;
static struct sx_xenbus *xb;
static uint64_t next_id = 1;

static inline void *daemon_main(void *arg)
{
    (void)arg;
    bb_daemon_run(daemon_, &daemon_stop);
    return NULL;
}

static inline int wait_be_state(struct gfront *g, enum xenbus_state want)
{
    for (int i = 0; i < 400; i++) {
        enum xenbus_state st;
        if (sx_xenbus_read_state(xb, XBT_NULL, g->bep, &st) == 0 && st == want)
            return 0;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

/* The core with xenstored, dom0's xenstore handle and the daemon with o, on a thread. 0 or -1. */
static inline int hostile_start(const struct bb_opts *o)
{
    if (simenv_start(&env, true) < 0)
        return -1;
    if (sx_xenbus_open(&xb, NULL, NULL) < 0) {
        char p[256];
        sx_xenstored_path(p, sizeof(p), 0);
        if (sx_xenbus_open(&xb, NULL, p) < 0)
            return -1;
    }
    if (bb_daemon_open(&daemon_, o) < 0)
        return -1;
    if (pthread_create(&daemon_thr, NULL, daemon_main, NULL))
        return -1;
    return 0;
}

static inline void hostile_stop(void)
{
    daemon_stop = 1;
    pthread_join(daemon_thr, NULL);
    bb_daemon_close(daemon_);
    sx_xenbus_close(xb);
}

/* The toolstack's part (libxl layout) and the frontend's setup, by hand, up to the backend's
 * InitWait: a domain, an image with a known pattern, a ring page, data pages, an event
 * channel. 0 or -errno. */
static inline int gfront_create(struct gfront *g, struct sxc_conn *c, const char *name, bool ro,
                                bool x86_32)
{
    int rc = sxc_domain_create(c, name, SXD_TYPE_PV, 32, 1, false);
    if (rc < 0)
        return rc;
    g->dom = (domid_t)rc;
    g->devid = 51712;
    snprintf(g->img, sizeof(g->img), "%s/%s.img", env.dir, name);
    int fd = open(g->img, O_CREAT | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, IMG_BYTES) < 0)
        return -errno;
    /* A recognisable pattern: byte i of sector s is (s + i) & 0xff. */
    uint8_t *buf = malloc(IMG_BYTES);
    for (size_t i = 0; i < IMG_BYTES; i++)
        buf[i] = (uint8_t)(i / 512 + i);
    if (pwrite(fd, buf, IMG_BYTES, 0) != (ssize_t)IMG_BYTES)
        return -EIO;
    free(buf);
    close(fd);
    g->p = simenv_plat(&env, g->dom);
    if (!g->p)
        return -EIO;
    if ((rc = sx_gntshr_open(&g->shr, g->p)) < 0 || (rc = sx_evtchn_open(&g->evt, g->p)) < 0)
        return rc;
    rc = sx_gntshr_share(g->shr, 0, 1, true, &g->ring_ref, &g->ring_mem);
    if (rc < 0)
        return rc;
    rc = sx_front_ring_init(&g->ring, g->ring_mem, SX_RING_PAGE_SIZE,
                            x86_32 ? sizeof(struct sx_blkif_x86_32_request) : sizeof(blkif_request_t),
                            x86_32 ? sizeof(struct sx_blkif_x86_32_response) : sizeof(blkif_response_t));
    if (rc < 0)
        return rc;
    void *d;
    rc = sx_gntshr_share(g->shr, 0, NDATA, true, g->data_refs, &d);
    if (rc < 0)
        return rc;
    g->data = d;
    g->port = sx_evtchn_bind_unbound(g->evt, 0);
    if (g->port < 0)
        return g->port;
    sx_xenbus_frontend_path(g->fep, sizeof(g->fep), g->dom, "vbd", g->devid);
    sx_xenbus_backend_path(g->bep, sizeof(g->bep), 0, "vbd", g->dom, g->devid);
    sx_xenbus_write(xb, XBT_NULL, g->fep, "backend", g->bep);
    sx_xenbus_write(xb, XBT_NULL, g->fep, "backend-id", "0");
    sx_xenbus_write(xb, XBT_NULL, g->fep, "virtual-device", "51712");
    sx_xenbus_write(xb, XBT_NULL, g->fep, "state", "1");
    sx_xenbus_write(xb, XBT_NULL, g->bep, "frontend", g->fep);
    sx_xenbus_printf(xb, XBT_NULL, g->bep, "frontend-id", "%u", g->dom);
    sx_xenbus_write(xb, XBT_NULL, g->bep, "params", g->img);
    sx_xenbus_write(xb, XBT_NULL, g->bep, "type", "phy");
    sx_xenbus_write(xb, XBT_NULL, g->bep, "mode", ro ? "r" : "w");
    sx_xenbus_write(xb, XBT_NULL, g->bep, "online", "1");
    sx_xenbus_write(xb, XBT_NULL, g->bep, "state", "1");
    return wait_be_state(g, XenbusStateInitWait);
}

/* The frontend's keys and Initialised, the backend's Connected, then Connected. 0 or -errno. */
static inline int gfront_connect(struct gfront *g)
{
    int rc;
    bool x86_32 = g->ring.req_size == sizeof(struct sx_blkif_x86_32_request);
    sx_xenbus_printf(xb, XBT_NULL, g->fep, "ring-ref", "%u", g->ring_ref);
    sx_xenbus_printf(xb, XBT_NULL, g->fep, "event-channel", "%d", g->port);
    sx_xenbus_write(xb, XBT_NULL, g->fep, "protocol", x86_32 ? "x86_32-abi" : "x86_64-abi");
    sx_xenbus_write(xb, XBT_NULL, g->fep, "feature-persistent", "1");
    sx_xenbus_write(xb, XBT_NULL, g->fep, "state", "3");
    if ((rc = wait_be_state(g, XenbusStateConnected)) < 0)
        return rc;
    sx_xenbus_write(xb, XBT_NULL, g->fep, "state", "4");
    return 0;
}

static inline int gfront_setup(struct gfront *g, struct sxc_conn *c, const char *name, bool ro,
                               bool x86_32)
{
    int rc = gfront_create(g, c, name, ro, x86_32);
    return rc < 0 ? rc : gfront_connect(g);
}

/* Put one raw request slot, push, notify; wait up to 2 s for one response.
 * Returns the status, or 100 when no response came. */
static uint8_t last_rsp_op;   /* operation of the last response roundtrip() saw */

static inline int roundtrip(struct gfront *g, const void *slot, uint64_t *id_out)
{
    CU_ASSERT_EQUAL_FATAL(sx_front_ring_put_req(&g->ring, slot), 0);
    if (sx_front_ring_push(&g->ring) == 1)
        sx_evtchn_notify(g->evt, (evtchn_port_t)g->port);
    union {
        blkif_response_t n;
        struct sx_blkif_x86_32_response x;
    } rsp;
    bool x86_32 = g->ring.rsp_size == sizeof(struct sx_blkif_x86_32_response);
    for (int i = 0; i < 2000; i++) {
        int n = sx_front_ring_take_rsp(&g->ring, &rsp, 1);
        if (n == 1) {
            if (id_out)
                *id_out = x86_32 ? rsp.x.id : rsp.n.id;
            last_rsp_op = x86_32 ? rsp.x.operation : rsp.n.operation;
            return x86_32 ? rsp.x.status : rsp.n.status;
        }
        sx_evtchn_drain(g->evt, 0);
        usleep(1000);
    }
    return 100;
}

static inline blkif_request_t rw_req(uint8_t op, uint64_t sector, unsigned nseg, grant_ref_t gref,
                              uint8_t first, uint8_t last)
{
    blkif_request_t r;
    memset(&r, 0, sizeof(r));
    r.operation = op;
    r.nr_segments = (uint8_t)nseg;
    r.handle = 0;
    r.id = next_id++;
    r.sector_number = sector;
    for (unsigned i = 0; i < nseg && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
        r.seg[i] = (struct blkif_request_segment){ .gref = gref, .first_sect = first,
                                                   .last_sect = last };
    return r;
}

/* A discard of n sectors from sector s, as a ring slot. */
static inline blkif_request_t discard_req(uint64_t s, uint64_t n)
{
    union { blkif_request_t slot; blkif_request_discard_t d; } u;
    memset(&u, 0, sizeof(u));
    u.d.operation = BLKIF_OP_DISCARD;
    u.d.id = next_id++;
    u.d.sector_number = s;
    u.d.nr_sectors = n;
    return u.slot;
}

/* The first and last byte of the 4 KiB at sector s of g's image both hold v. */
static inline void check_image(struct gfront *g, uint64_t s, uint8_t v)
{
    int fd = open(g->img, O_RDONLY);
    uint8_t buf[4096];
    CU_ASSERT_EQUAL(pread(fd, buf, sizeof(buf), (off_t)(s * 512)), (ssize_t)sizeof(buf));
    CU_ASSERT_EQUAL(buf[0], v);
    CU_ASSERT_EQUAL(buf[4095], v);
    close(fd);
}

/* A good read of sector s into data page 0 answers OKAY with the image's bytes. */
static inline void check_good_read(struct gfront *g, uint64_t s)
{
    memset(g->data, 0, SX_PAGE_SIZE);
    blkif_request_t r = rw_req(BLKIF_OP_READ, s, 1, g->data_refs[0], 0, 7);
    uint64_t id = 0;
    CU_ASSERT_EQUAL(roundtrip(g, &r, &id), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(id, r.id);
    CU_ASSERT_EQUAL(g->data[0], (uint8_t)s);
    CU_ASSERT_EQUAL(g->data[4095], (uint8_t)(s + 7 + 4095));
}

static inline uint64_t stat_of(struct gfront *g, const char *name)
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


#endif
