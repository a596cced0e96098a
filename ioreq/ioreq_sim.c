/*
 * ioreq on the sim hypervisor: the pages are the top SX_IOREQ_SIM_FRAMES frames of the HVM
 * domain's memory; the guest side publishes its ports in the sim page and bumps guest_gen,
 * and the server (re)binds whenever the generation changes (looked at on every step, and a
 * 20 ms timer keeps steps coming while nothing else happens). Interrupt lines are bits in the
 * sim page; MSIs a small ring there; a rising line or an MSI notifies the guest's irq port.
 */
#define SX_LOG_MODULE "ioreq"
#include "ioreq/ioreq_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "barrier.h"
#include "xen-core/core.h"

struct sim {
    struct sxc_dom *dom;
    struct sx_ioreq_sim_page *sp;
    uint64_t nr_pages;
    unsigned max_vcpus;     /* what the server was opened for */
    uint32_t gen;           /* guest generation we are bound to (0: none) */
    int irq_port;           /* local port bound to the guest's irq port, -1 none */
    uint32_t msi_prod;      /* our copy: the guest could scribble the shared one */
    int tfd;
};

int sx_ioreq_sim_reserve(struct sxd_shared *sh)
{
    if (!sh || sh->nr_pages < 16)
        return -EINVAL;
    int rc = pthread_mutex_lock(&sh->alloc_lock);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(&sh->alloc_lock);
        rc = 0;
    }
    if (rc)
        return -rc;
    uint64_t *bm = sxd_page_bitmap(sh);
    for (uint64_t f = sh->nr_pages - SX_IOREQ_SIM_FRAMES; f < sh->nr_pages; f++)
        if (!(bm[f / 64] & (1ull << (f % 64)))) {
            bm[f / 64] |= 1ull << (f % 64);
            sh->pages_used++;
        }
    pthread_mutex_unlock(&sh->alloc_lock);
    return 0;
}

static void sim_close(struct sx_ioreq *r)
{
    struct sim *s = r->priv;
    if (!s)
        return;
    if (s->irq_port >= 0)
        sx_evtchn_unbind(r->evt, (evtchn_port_t)s->irq_port);
    if (s->tfd >= 0)
        close(s->tfd);
    sxc_domain_put(r->plat->conn, s->dom);
    free(s);
    r->priv = NULL;
}

static int sim_open(struct sx_ioreq *r)
{
    if (!r->plat->conn)
        return -EINVAL;
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->tfd = -1;
    s->irq_port = -1;
    r->priv = s;
    int rc = sxc_domain_get(r->plat->conn, r->domid, &s->dom);
    if (rc < 0)
        return rc;
    struct sxd_shared *sh = s->dom->shared;
    if (sh->type != SXD_TYPE_HVM) {
        sx_err("dom%u is not an HVM domain", r->domid);
        return -EINVAL;
    }
    s->nr_pages = s->dom->mem_size / SXD_PAGE_SIZE;
    rc = sx_ioreq_sim_reserve(sh);
    if (rc < 0)
        return rc;
    unsigned vcpus = sh->vcpus < SX_IOREQ_MAX_VCPUS ? sh->vcpus : SX_IOREQ_MAX_VCPUS;
    if (r->nr_vcpus == 0 || r->nr_vcpus > vcpus)
        r->nr_vcpus = vcpus;
    s->max_vcpus = r->nr_vcpus;
    r->mem_size = s->dom->mem_size;
    s->sp = (struct sx_ioreq_sim_page *)(s->dom->mem +
                                         sx_ioreq_sim_page_pfn(s->nr_pages) * SXD_PAGE_SIZE);
    atomic_store(&s->sp->dm_domid, r->plat->self);
    s->msi_prod = 0;
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->tfd < 0)
        return -errno;
    struct itimerspec its = { .it_interval = { 0, 20 * 1000000 }, .it_value = { 0, 20 * 1000000 } };
    struct epoll_event ev = { .events = EPOLLIN };
    if (timerfd_settime(s->tfd, 0, &its, NULL) < 0 ||
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, s->tfd, &ev) < 0)
        return -errno;
    return 0;
}

/* Look for the guest every 20 ms while it is not there, every 250 ms (a reboot) once it is. */
static void set_timer(struct sim *s, long ms)
{
    struct itimerspec its = { .it_interval = { 0, ms * 1000000 }, .it_value = { 0, ms * 1000000 } };
    timerfd_settime(s->tfd, 0, &its, NULL);
}

static void disconnect(struct sx_ioreq *r, struct sim *s)
{
    if (r->iopage)
        set_timer(s, 20);
    sx_ioreq_unbind_all(r);
    if (s->irq_port >= 0) {
        sx_evtchn_unbind(r->evt, (evtchn_port_t)s->irq_port);
        s->irq_port = -1;
    }
    r->iopage = NULL;
    r->bufpage = NULL;
}

/* The guest published (new) ports: bind them. Everything read here is guest-controlled. */
static int connect_guest(struct sx_ioreq *r, struct sim *s, uint32_t gen)
{
    disconnect(r, s);
    s->gen = gen;   /* a generation that fails to bind is not retried: wait for the next */
    struct sx_ioreq_sim_page *sp = s->sp;
    if (SX_READ_ONCE(sp->magic) != SX_IOREQ_SIM_MAGIC) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: ioreq sim page has no magic", r->domid);
        return 0;
    }
    uint32_t nr = SX_READ_ONCE(sp->nr_vcpus);
    uint32_t bufport = SX_READ_ONCE(sp->bufioreq_port);
    uint32_t irqport = SX_READ_ONCE(sp->irq_port);
    if (nr == 0 || nr > SX_IOREQ_MAX_VCPUS) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: guest claims %u vCPUs", r->domid, nr);
        return 0;
    }
    r->nr_vcpus = nr < s->max_vcpus ? nr : s->max_vcpus;
    shared_iopage_t *iop = (shared_iopage_t *)(s->dom->mem +
                                               sx_ioreq_sim_ioreq_pfn(s->nr_pages) * SXD_PAGE_SIZE);
    int rc = 0;
    for (unsigned v = 0; v < r->nr_vcpus && rc == 0; v++)
        rc = sx_ioreq_bind_vcpu(r, v, SX_READ_ONCE(iop->vcpu_ioreq[v].vp_eport));
    if (rc == 0)
        rc = sx_ioreq_bind_buf(r, bufport);
    if (rc == 0) {
        int p = sx_evtchn_bind_interdomain(r->evt, r->domid, irqport);
        rc = p < 0 ? p : 0;
        s->irq_port = p;
    }
    if (rc < 0) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: cannot bind the guest's ioreq ports (gen %u): %d",
                           r->domid, gen, rc);
        disconnect(r, s);
        return 0;
    }
    r->iopage = iop;
    r->bufpage = (buffered_iopage_t *)(s->dom->mem +
                                       sx_ioreq_sim_bufioreq_pfn(s->nr_pages) * SXD_PAGE_SIZE);
    memset(r->last_bad_state, 0, sizeof(r->last_bad_state));
    s->msi_prod = SX_READ_ONCE(sp->msi_cons);
    SX_WRITE_ONCE(sp->msi_prod, s->msi_prod);
    r->st.connects++;
    set_timer(s, 250);
    sx_info("dom%u: ioreq connected (%u vCPUs, gen %u)", r->domid, r->nr_vcpus, gen);
    return 0;
}

static int sim_poll(struct sx_ioreq *r)
{
    struct sim *s = r->priv;
    uint64_t ticks;
    if (read(s->tfd, &ticks, sizeof(ticks)) < 0) {
        /* EAGAIN: the timer did not fire. */
    }
    if (atomic_load(&s->dom->shared->state) == SXD_STATE_DYING) {
        if (r->iopage)
            disconnect(r, s);
        return 0;
    }
    /* Acquire: the ports are read after the generation that published them. */
    uint32_t gen = atomic_load_explicit(&s->sp->guest_gen, memory_order_acquire);
    if (gen != 0 && gen != s->gen)
        return connect_guest(r, s, gen);
    return 0;
}

static int sim_map_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t st, uint64_t e,
                         bool map)
{
    /* On sim this server is the whole platform: registration only defines routing. */
    return 0;
}

static int sim_map_pcidev(struct sx_ioreq *r, uint32_t sbdf, bool map) { return 0; }
static int sim_enable(struct sx_ioreq *r) { return 0; }

static int notify_irq(struct sx_ioreq *r, struct sim *s)
{
    if (s->irq_port < 0)
        return 0;   /* no guest yet: the level is there when it comes */
    int rc = sx_evtchn_notify(r->evt, (evtchn_port_t)s->irq_port);
    if (rc < 0)
        r->st.notify_errors++;
    return rc;
}

static int set_line(struct sx_ioreq *r, unsigned line, bool level)
{
    struct sim *s = r->priv;
    if (line >= SX_IOREQ_SIM_LINES)
        return -EINVAL;
    _Atomic uint64_t *w = &s->sp->irq_level[line / 64];
    uint64_t bit = 1ull << (line % 64);
    if (!level) {
        atomic_fetch_and(w, ~bit);
        return 0;
    }
    /* Notify on the rising edge only; the guest reads levels after the event. */
    if (atomic_fetch_or(w, bit) & bit)
        return 0;
    return notify_irq(r, s);
}

static int sim_isa_irq(struct sx_ioreq *r, uint8_t irq, bool level)
{
    return set_line(r, irq, level);
}

static int sim_pci_intx(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                        uint8_t intx, bool level)
{
    if (seg || bus)
        return -EINVAL;   /* one root bus on sim */
    return set_line(r, sx_ioreq_pci_intx_gsi(dev, intx), level);
}

static int sim_msi(struct sx_ioreq *r, uint64_t addr, uint32_t data)
{
    struct sim *s = r->priv;
    uint32_t cons = atomic_load_explicit(&s->sp->msi_cons, memory_order_acquire);
    if (s->msi_prod - cons >= SX_IOREQ_SIM_MSI_SLOTS)
        return -EAGAIN;
    unsigned i = s->msi_prod % SX_IOREQ_SIM_MSI_SLOTS;
    s->sp->msi[i].addr = addr;
    s->sp->msi[i].data = data;
    s->msi_prod++;
    /* Release: the message is written before the producer index shows it. */
    atomic_store_explicit(&s->sp->msi_prod, s->msi_prod, memory_order_release);
    return notify_irq(r, s);
}

static int sim_alive(struct sx_ioreq *r)
{
    struct sim *s = r->priv;
    return atomic_load(&s->dom->shared->state) != SXD_STATE_DYING;
}

static void *sim_dma_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
{
    struct sim *s = r->priv;
    return s->dom->mem + gpa;   /* bounds checked by the caller against mem_size */
}

static void sim_dma_unmap(struct sx_ioreq *r, void *ptr, size_t len) {}

const struct sx_ioreq_ops sx_ioreq_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .map_range = sim_map_range,
    .map_pcidev = sim_map_pcidev,
    .enable = sim_enable,
    .poll = sim_poll,
    .isa_irq = sim_isa_irq,
    .pci_intx = sim_pci_intx,
    .msi = sim_msi,
    .alive = sim_alive,
    .dma_map = sim_dma_map,
    .dma_unmap = sim_dma_unmap,
};
