/*
 * The HVM guest's side of ioreq on sim: what Xen does for a vCPU that traps on an I/O
 * instruction or an MMIO access. It posts an ioreq_t in the vCPU's slot, notifies the device
 * model and blocks until the slot says IORESP_READY. Each vCPU has its own event channel
 * handle, so vCPUs may run in separate threads. See ioreq.h for the sim layout.
 */
#define SX_LOG_MODULE "ioreq-guest"
#include "ioreq/ioreq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evtchn/evtchn.h"
#include "clock.h"
#include "log.h"
#include "barrier.h"
#include "xen-core/core.h"

/* Spin this long on the slot before sleeping on the event channel (SPLITXEN_IOREQ_SPIN_US). */
#define SPIN_US_DEFAULT 20

struct gvcpu {
    struct sx_evtchn *evt;
    int port;
    bool stale;     /* the last request timed out: its slot may still be READY/INPROCESS */
};

struct sx_ioreq_guest {
    struct sx_plat *p;
    struct sxc_dom *dom;
    uint64_t nr_pages;
    shared_iopage_t *iop;
    buffered_iopage_t *buf;
    struct sx_ioreq_sim_page *sp;
    unsigned nr_vcpus;
    struct gvcpu v[SX_IOREQ_MAX_VCPUS];
    struct sx_evtchn *buf_evt, *irq_evt;
    int buf_port, irq_port;
    int timeout_ms;
    int spin_us;
    uint32_t buf_wr;
    uint32_t msi_cons;
    pthread_mutex_t buf_lock;   /* buffered posts from any thread */
    pthread_mutex_t cf8_lock;   /* the 0xCF8/0xCFC pair is one address register for all vCPUs */
};

void sx_ioreq_guest_close(struct sx_ioreq_guest *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < SX_IOREQ_MAX_VCPUS; i++)
        sx_evtchn_close(g->v[i].evt);
    sx_evtchn_close(g->buf_evt);
    sx_evtchn_close(g->irq_evt);
    if (g->p)
        sxc_domain_put(g->p->conn, g->dom);
    pthread_mutex_destroy(&g->buf_lock);
    pthread_mutex_destroy(&g->cf8_lock);
    free(g);
}

static int alloc_port(struct sx_evtchn **e, struct sx_plat *p, domid_t dm, int *port)
{
    int rc = sx_evtchn_open(e, p);
    if (rc < 0)
        return rc;
    rc = sx_evtchn_bind_unbound(*e, dm);
    if (rc < 0)
        return rc;
    *port = rc;
    return 0;
}

int sx_ioreq_guest_open(struct sx_ioreq_guest **out, struct sx_plat *p, domid_t dm_domid)
{
    if (!out || !p)
        return -EINVAL;
    if (p->kind != SX_PLAT_SIM || !p->conn)
        return -EOPNOTSUPP;   /* on Xen the hypervisor is the guest side */
    struct sx_ioreq_guest *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    pthread_mutex_init(&g->buf_lock, NULL);
    pthread_mutex_init(&g->cf8_lock, NULL);
    g->p = p;
    g->timeout_ms = 5000;
    g->spin_us = SPIN_US_DEFAULT;
    const char *e = getenv("SPLITXEN_IOREQ_SPIN_US");
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        g->spin_us = v < 0 ? 0 : v > 10000 ? 10000 : (int)v;
    }
    g->buf_port = g->irq_port = -1;
    int rc = sxc_domain_get(p->conn, p->self, &g->dom);
    if (rc < 0)
        goto fail;
    struct sxd_shared *sh = g->dom->shared;
    if (sh->type != SXD_TYPE_HVM) {
        rc = -EINVAL;
        goto fail;
    }
    rc = sx_ioreq_sim_reserve(sh);
    if (rc < 0)
        goto fail;
    g->nr_pages = g->dom->mem_size / SXD_PAGE_SIZE;
    g->iop = (shared_iopage_t *)(g->dom->mem + sx_ioreq_sim_ioreq_pfn(g->nr_pages) * SXD_PAGE_SIZE);
    g->buf = (buffered_iopage_t *)(g->dom->mem +
                                   sx_ioreq_sim_bufioreq_pfn(g->nr_pages) * SXD_PAGE_SIZE);
    g->sp = (struct sx_ioreq_sim_page *)(g->dom->mem +
                                         sx_ioreq_sim_page_pfn(g->nr_pages) * SXD_PAGE_SIZE);
    g->nr_vcpus = sh->vcpus < SX_IOREQ_MAX_VCPUS ? sh->vcpus : SX_IOREQ_MAX_VCPUS;
    for (unsigned i = 0; i < g->nr_vcpus; i++) {
        rc = alloc_port(&g->v[i].evt, p, dm_domid, &g->v[i].port);
        if (rc < 0)
            goto fail;
    }
    rc = alloc_port(&g->buf_evt, p, dm_domid, &g->buf_port);
    if (rc < 0)
        goto fail;
    rc = alloc_port(&g->irq_evt, p, dm_domid, &g->irq_port);
    if (rc < 0)
        goto fail;
    /* Fresh slots and rings, then the ports, then the generation that publishes them. */
    memset(g->iop, 0, SXD_PAGE_SIZE);
    for (unsigned i = 0; i < g->nr_vcpus; i++)
        g->iop->vcpu_ioreq[i].vp_eport = (uint32_t)g->v[i].port;
    memset(g->buf, 0, SXD_PAGE_SIZE);
    struct sx_ioreq_sim_page *sp = g->sp;
    sp->magic = SX_IOREQ_SIM_MAGIC;
    sp->version = 1;
    sp->nr_vcpus = g->nr_vcpus;
    sp->bufioreq_port = (uint32_t)g->buf_port;
    sp->irq_port = (uint32_t)g->irq_port;
    atomic_store(&sp->msi_prod, 0);
    atomic_store(&sp->msi_cons, 0);
    uint32_t gen = atomic_load(&sp->guest_gen) + 1;
    if (gen == 0)
        gen = 1;
    /* Release: everything above is visible before the new generation. */
    atomic_store_explicit(&sp->guest_gen, gen, memory_order_release);
    *out = g;
    return 0;
fail:
    sx_ioreq_guest_close(g);
    return rc;
}

unsigned sx_ioreq_guest_nr_vcpus(const struct sx_ioreq_guest *g) { return g->nr_vcpus; }
void sx_ioreq_guest_set_timeout(struct sx_ioreq_guest *g, int ms) { g->timeout_ms = ms; }

static int64_t now_ms(void) { return (int64_t)sx_now_us() / 1000; }

/* Wait until vCPU v's slot says IORESP_READY. */
static int wait_resp(struct sx_ioreq_guest *g, unsigned v)
{
    volatile ioreq_t *slot = (volatile ioreq_t *)&g->iop->vcpu_ioreq[v];
    struct gvcpu *c = &g->v[v];
    /* A device model on another core answers in about a microsecond when it is polling; a
     * sleep and an eventfd wakeup cost tens. Spin a little first. */
    int64_t spin_end = (int64_t)sx_now_us() + g->spin_us;
    do {
        for (int i = 0; i < 64; i++) {
            if (slot->state == STATE_IORESP_READY)
                return 0;
            sx_cpu_relax();
        }
    } while ((int64_t)sx_now_us() < spin_end);
    int64_t deadline = now_ms() + g->timeout_ms;
    for (;;) {
        if (slot->state == STATE_IORESP_READY)
            return 0;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = { .fd = sx_evtchn_fd(c->evt), .events = POLLIN };
        if (poll(&pfd, 1, left > 100 ? 100 : (int)left) < 0 && errno != EINTR)
            return -errno;
        sx_evtchn_drain(c->evt, 0);
    }
}

int sx_ioreq_guest_raw(struct sx_ioreq_guest *g, unsigned vcpu, const ioreq_t *req,
                       ioreq_t *resp)
{
    if (!g || !req || vcpu >= g->nr_vcpus)
        return -EINVAL;
    volatile ioreq_t *slot = (volatile ioreq_t *)&g->iop->vcpu_ioreq[vcpu];
    if (resp && g->v[vcpu].stale) {
        /* A request of ours timed out and may still be in the device model's hands: let it
         * finish first, or its response would be taken for this one's. */
        uint8_t st = slot->state;
        if (st == STATE_IOREQ_READY || st == STATE_IOREQ_INPROCESS) {
            int rc = wait_resp(g, vcpu);
            if (rc < 0)
                return rc;
        }
        g->v[vcpu].stale = false;
    }
    ioreq_t tmp = *req;
    uint8_t state = tmp.state;
    tmp.state = STATE_IOREQ_NONE;
    tmp.vp_eport = (uint32_t)g->v[vcpu].port;
    memcpy((void *)slot, &tmp, sizeof(tmp));
    /* The request is written before its state says READY. */
    xen_wmb();
    slot->state = state;
    int rc = sx_evtchn_notify(g->v[vcpu].evt, (evtchn_port_t)g->v[vcpu].port);
    if (rc < 0 || !resp)
        return rc;
    rc = wait_resp(g, vcpu);
    if (rc < 0) {
        g->v[vcpu].stale = rc == -ETIMEDOUT;
        return rc;
    }
    /* Read the response after seeing IORESP_READY. */
    xen_rmb();
    memcpy(resp, (const void *)slot, sizeof(*resp));
    slot->state = STATE_IOREQ_NONE;
    return 0;
}

int sx_ioreq_guest_io(struct sx_ioreq_guest *g, unsigned vcpu, uint8_t type, uint8_t dir,
                      uint64_t addr, uint32_t size, uint64_t *data)
{
    if (!data)
        return -EINVAL;
    ioreq_t q = { .addr = addr, .data = dir == IOREQ_WRITE ? *data : 0, .count = 1,
                  .size = size, .state = STATE_IOREQ_READY, .dir = dir, .type = type };
    ioreq_t resp;
    int rc = sx_ioreq_guest_raw(g, vcpu, &q, &resp);
    if (rc < 0)
        return rc;
    if (dir == IOREQ_READ)
        *data = size >= 8 ? resp.data : resp.data & ((1ull << (size * 8)) - 1);
    return 0;
}

int sx_ioreq_guest_rep(struct sx_ioreq_guest *g, unsigned vcpu, uint8_t type, uint8_t dir,
                       uint64_t addr, uint32_t size, uint32_t count, uint64_t gpa, bool df)
{
    ioreq_t q = { .addr = addr, .data = gpa, .count = count, .size = size,
                  .state = STATE_IOREQ_READY, .data_is_ptr = 1, .dir = dir, .df = df,
                  .type = type };
    ioreq_t resp;
    return sx_ioreq_guest_raw(g, vcpu, &q, &resp);
}

int sx_ioreq_guest_buffered(struct sx_ioreq_guest *g, uint8_t type, uint64_t addr,
                            uint32_t size, uint64_t data)
{
    if (!g || addr >= (1u << 20) || (size != 1 && size != 2 && size != 4 && size != 8))
        return -EINVAL;
    unsigned need = size == 8 ? 2 : 1;
    pthread_mutex_lock(&g->buf_lock);
    uint32_t rd = atomic_load_explicit((_Atomic uint32_t *)&g->buf->read_pointer,
                                       memory_order_acquire);
    uint32_t wr = g->buf_wr;
    if (wr - rd + need > IOREQ_BUFFER_SLOT_NUM) {
        pthread_mutex_unlock(&g->buf_lock);
        return -EAGAIN;
    }
    buf_ioreq_t e = { .type = type, .dir = IOREQ_WRITE,
                      .size = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3,
                      .addr = (uint32_t)addr, .data = (uint32_t)data };
    g->buf->buf_ioreq[wr % IOREQ_BUFFER_SLOT_NUM] = e;
    if (need == 2) {
        buf_ioreq_t hi = e;
        hi.data = (uint32_t)(data >> 32);
        g->buf->buf_ioreq[(wr + 1) % IOREQ_BUFFER_SLOT_NUM] = hi;
    }
    g->buf_wr = wr + need;
    /* Slots are written before the write pointer covers them. */
    xen_wmb();
    SX_WRITE_ONCE(g->buf->write_pointer, g->buf_wr);
    pthread_mutex_unlock(&g->buf_lock);
    return sx_evtchn_notify(g->buf_evt, (evtchn_port_t)g->buf_port);
}

/* ---- instructions on vCPU 0 ---- */

static int out_n(struct sx_ioreq_guest *g, uint16_t port, uint32_t size, uint64_t v)
{
    return sx_ioreq_guest_io(g, 0, IOREQ_TYPE_PIO, IOREQ_WRITE, port, size, &v);
}

static uint64_t in_n(struct sx_ioreq_guest *g, uint16_t port, uint32_t size)
{
    uint64_t v = 0;
    if (sx_ioreq_guest_io(g, 0, IOREQ_TYPE_PIO, IOREQ_READ, port, size, &v) < 0)
        return UINT64_MAX;
    return v;
}

int sx_ioreq_outb(struct sx_ioreq_guest *g, uint16_t port, uint8_t v) { return out_n(g, port, 1, v); }
int sx_ioreq_outw(struct sx_ioreq_guest *g, uint16_t port, uint16_t v) { return out_n(g, port, 2, v); }
int sx_ioreq_outl(struct sx_ioreq_guest *g, uint16_t port, uint32_t v) { return out_n(g, port, 4, v); }
uint8_t sx_ioreq_inb(struct sx_ioreq_guest *g, uint16_t port) { return (uint8_t)in_n(g, port, 1); }
uint16_t sx_ioreq_inw(struct sx_ioreq_guest *g, uint16_t port) { return (uint16_t)in_n(g, port, 2); }
uint32_t sx_ioreq_inl(struct sx_ioreq_guest *g, uint16_t port) { return (uint32_t)in_n(g, port, 4); }

int sx_ioreq_mmio_write(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t size, uint64_t v)
{
    return sx_ioreq_guest_io(g, 0, IOREQ_TYPE_COPY, IOREQ_WRITE, gpa, size, &v);
}

int sx_ioreq_mmio_read(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t size, uint64_t *v)
{
    return sx_ioreq_guest_io(g, 0, IOREQ_TYPE_COPY, IOREQ_READ, gpa, size, v);
}

static uint32_t cf8_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg)
{
    return 0x80000000u | ((uint32_t)bus << 16) | ((uint32_t)(dev & 31) << 11) |
           ((uint32_t)(fn & 7) << 8) | (reg & 0xfc);
}

static int pci_cfg(struct sx_ioreq_guest *g, uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg,
                   uint32_t size, uint8_t dir, uint64_t *v)
{
    if ((size != 1 && size != 2 && size != 4) || (reg & (size - 1)))
        return -EINVAL;
    pthread_mutex_lock(&g->cf8_lock);
    int rc = out_n(g, 0xcf8, 4, cf8_addr(bus, dev, fn, reg));
    if (rc == 0)
        rc = sx_ioreq_guest_io(g, 0, IOREQ_TYPE_PIO, dir, 0xcfc + (reg & 3), size, v);
    pthread_mutex_unlock(&g->cf8_lock);
    return rc;
}

int sx_ioreq_pci_cfg_read(struct sx_ioreq_guest *g, uint8_t bus, uint8_t dev, uint8_t fn,
                          uint8_t reg, uint32_t size, uint32_t *v)
{
    uint64_t x = 0;
    int rc = pci_cfg(g, bus, dev, fn, reg, size, IOREQ_READ, &x);
    *v = rc < 0 ? UINT32_MAX : (uint32_t)x;
    return rc;
}

int sx_ioreq_pci_cfg_write(struct sx_ioreq_guest *g, uint8_t bus, uint8_t dev, uint8_t fn,
                           uint8_t reg, uint32_t size, uint32_t v)
{
    uint64_t x = v;
    return pci_cfg(g, bus, dev, fn, reg, size, IOREQ_WRITE, &x);
}

/* ---- interrupts ---- */

int sx_ioreq_guest_irq_fd(struct sx_ioreq_guest *g) { return sx_evtchn_fd(g->irq_evt); }

int sx_ioreq_guest_irq_wait(struct sx_ioreq_guest *g, int timeout_ms)
{
    struct pollfd pfd = { .fd = sx_evtchn_fd(g->irq_evt), .events = POLLIN };
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    return sx_evtchn_drain(g->irq_evt, 0) > 0;
}

bool sx_ioreq_guest_irq_level(struct sx_ioreq_guest *g, unsigned line)
{
    if (line >= SX_IOREQ_SIM_LINES)
        return false;
    return (atomic_load(&g->sp->irq_level[line / 64]) >> (line % 64)) & 1;
}

int sx_ioreq_guest_msi_pop(struct sx_ioreq_guest *g, uint64_t *addr, uint32_t *data)
{
    /* Acquire: the message is read after the index that published it. */
    uint32_t prod = atomic_load_explicit(&g->sp->msi_prod, memory_order_acquire);
    if (prod - g->msi_cons > SX_IOREQ_SIM_MSI_SLOTS)
        g->msi_cons = prod - SX_IOREQ_SIM_MSI_SLOTS;   /* nonsense index: keep the last ones */
    if (prod == g->msi_cons)
        return 0;
    unsigned i = g->msi_cons % SX_IOREQ_SIM_MSI_SLOTS;
    *addr = g->sp->msi[i].addr;
    *data = g->sp->msi[i].data;
    g->msi_cons++;
    /* Release: done reading the slot before the server may reuse it. */
    atomic_store_explicit(&g->sp->msi_cons, g->msi_cons, memory_order_release);
    return 1;
}

/* ---- memory ---- */

int sx_ioreq_guest_mem_alloc(struct sx_ioreq_guest *g, uint32_t pages, uint64_t *gpa, void **va)
{
    int64_t f = sxd_pages_alloc(g->dom->shared, pages);
    if (f < 0)
        return (int)f;
    *gpa = (uint64_t)f * SXD_PAGE_SIZE;
    *va = g->dom->mem + *gpa;
    memset(*va, 0, (size_t)pages * SXD_PAGE_SIZE);
    return 0;
}

void sx_ioreq_guest_mem_free(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t pages)
{
    if (g && gpa % SXD_PAGE_SIZE == 0)
        sxd_pages_free(g->dom->shared, gpa / SXD_PAGE_SIZE, pages);
}

uint8_t *sx_ioreq_guest_mem(struct sx_ioreq_guest *g, uint64_t *size)
{
    if (size)
        *size = g->dom->mem_size;
    return g->dom->mem;
}
