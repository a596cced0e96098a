/*
 * Test fixture: the ioreq server on sim against the sim vCPU side, in one process: an
 * in-process core, an HVM domain (2 vCPUs, 16 MiB), the server (as dom0) stepping in its own
 * thread and dispatching to a small test device (byte registers at ports 0x80-0x8f, interrupt
 * lines at 0x90-0x94, 4 KiB of MMIO at 0xfe000000), and the test acting as the domain's vCPUs.
 * ioreqenv_init / ioreqenv_clean are a suite's init and clean.
 */
#ifndef SPLITXEN_TEST_IOREQENV_H
#define SPLITXEN_TEST_IOREQENV_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"
#include "ioreq/ioreq.h"

static struct simenv env;
static struct sx_plat *plat0, *platg;
static domid_t hvm;

/* ---- the test device the server dispatches to (runs in the server thread) ---- */

static struct sx_ioreq *srv;
static uint8_t regs[16];
static uint8_t mmio[4096];
static _Atomic unsigned handler_calls;

static inline void handler(void *opaque, struct sx_ioreq_access *a)
{
    atomic_fetch_add(&handler_calls, 1);
    if (a->type == IOREQ_TYPE_PIO && a->addr >= 0x80 && a->addr < 0x90) {
        unsigned off = (unsigned)a->addr - 0x80;
        if (off + a->size > sizeof(regs))
            return;
        if (a->dir == IOREQ_WRITE)
            memcpy(&regs[off], &a->data, a->size);
        else {
            a->data = 0;
            memcpy(&a->data, &regs[off], a->size);
        }
        return;
    }
    if (a->type == IOREQ_TYPE_PIO && a->dir == IOREQ_WRITE) {
        uint32_t v = (uint32_t)a->data;
        if (a->addr == 0x90)
            sx_ioreq_set_isa_irq(srv, v & 0xff, (v >> 8) & 1);
        else if (a->addr == 0x92)
            sx_ioreq_set_pci_intx(srv, 0, 0, v & 31, (v >> 5) & 3, (v >> 7) & 1);
        else if (a->addr == 0x94)
            sx_ioreq_inject_msi(srv, 0xfee00000, v);
        return;
    }
    if (a->type == IOREQ_TYPE_COPY) {
        uint64_t off = a->addr - 0xfe000000;
        if (off + a->size > sizeof(mmio))
            return;
        if (a->dir == IOREQ_WRITE)
            memcpy(&mmio[off], &a->data, a->size);
        else {
            a->data = 0;
            memcpy(&a->data, &mmio[off], a->size);
        }
    }
}

/* ---- server thread ---- */

static pthread_t thr;
static _Atomic int stop_thr;
static _Atomic int max_step, step_errors;
static bool thr_running;

static inline void *server_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_thr)) {
        struct pollfd pfd = { .fd = sx_ioreq_fd(srv), .events = POLLIN };
        poll(&pfd, 1, 50);
        int n = sx_ioreq_step(srv);
        if (n < 0)
            atomic_fetch_add(&step_errors, 1);
        if (n > atomic_load(&max_step))
            atomic_store(&max_step, n);
    }
    return NULL;
}

static inline void server_open(unsigned budget)
{
    memset(regs, 0, sizeof(regs));
    memset(mmio, 0, sizeof(mmio));
    atomic_store(&handler_calls, 0);
    atomic_store(&max_step, 0);
    atomic_store(&step_errors, 0);
    struct sx_ioreq_opts o = { .domid = hvm, .handler = handler, .budget = budget };
    CU_ASSERT_FATAL(sx_ioreq_open(&srv, plat0, &o) == 0);
    CU_ASSERT_FATAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0x80, 0x9f) == 0);
    CU_ASSERT_FATAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0xfe000000, 0xfe000fff) == 0);
    CU_ASSERT_FATAL(sx_ioreq_enable(srv) == 0);
}

static inline void server_start(void)
{
    atomic_store(&stop_thr, 0);
    CU_ASSERT_FATAL(pthread_create(&thr, NULL, server_main, NULL) == 0);
    thr_running = true;
}

static inline void server_stop(void)
{
    if (thr_running) {
        atomic_store(&stop_thr, 1);
        pthread_join(thr, NULL);
        thr_running = false;
    }
    sx_ioreq_close(srv);
    srv = NULL;
}

static inline struct sx_ioreq_guest *guest_open(void)
{
    struct sx_ioreq_guest *g = NULL;
    CU_ASSERT_FATAL(sx_ioreq_guest_open(&g, platg, 0) == 0);
    sx_ioreq_guest_set_timeout(g, 3000);
    return g;
}

static inline const ioreq_t *slot(struct sx_ioreq_guest *g, unsigned v)
{
    uint64_t size;
    uint8_t *mem = sx_ioreq_guest_mem(g, &size);
    return &((shared_iopage_t *)(mem + sx_ioreq_sim_ioreq_pfn(size / 4096) * 4096))->vcpu_ioreq[v];
}

/* Wait for a counter the server thread bumps. */
static inline bool wait_for(const _Atomic uint64_t *ctr, uint64_t want)
{
    for (int i = 0; i < 300; i++) {
        if (atomic_load(ctr) >= want)
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

static inline int ioreqenv_init(void)
{
    if (simenv_start(&env, false) < 0)
        return 1;
    plat0 = simenv_plat(&env, 0);
    if (!plat0)
        return 1;
    int d = sxc_domain_create(plat0->conn, "hvm-ioreq", SXD_TYPE_HVM, 16, 2, false);
    if (d <= 0)
        return 1;
    hvm = (domid_t)d;
    platg = simenv_plat(&env, hvm);
    return platg ? 0 : 1;
}

static inline int ioreqenv_clean(void)
{
    sx_plat_close(platg);
    sx_plat_close(plat0);
    simenv_stop(&env);
    return 0;
}

#endif
