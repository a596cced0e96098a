/*
 * The ioreq server's common part: the per-vCPU handshake, validation of each request on a
 * private copy, rep and data_is_ptr handling, the buffered ring, routing by registered ranges,
 * the DMA bounds and counters. Platform specifics are behind struct sx_ioreq_ops.
 */
#define SX_LOG_MODULE "ioreq"
#include "ioreq/ioreq_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "barrier.h"

#define DEFAULT_BUDGET 256u

/* [lo, lo + len) lies within [0, last] without wrapping (len >= 1). */
static bool span_within(uint64_t lo, uint64_t len, uint64_t last)
{
    return len - 1 <= last && lo <= last - (len - 1);
}

/* The lowest address of `count` elements of `size` bytes that end at addr + size (df) or start
 * at addr: a rep walks down from addr with DF set. false if the walk passes below 0. */
static bool rep_low(uint64_t addr, uint64_t span, bool df, uint64_t *lo)
{
    if (df && addr < span)
        return false;
    *lo = df ? addr - span : addr;
    return true;
}

int sx_ioreq_check(const ioreq_t *q, uint64_t mem_size)
{
    uint32_t size = q->size, count = q->count;
    if (q->type != IOREQ_TYPE_PIO && q->type != IOREQ_TYPE_COPY &&
        q->type != IOREQ_TYPE_PCI_CONFIG)
        return -EPROTO;
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return -EINVAL;
    if (size == 8 && q->type != IOREQ_TYPE_COPY)   /* port I/O and config space: up to 4 */
        return -EINVAL;
    /* 64-bit product: count * size cannot overflow it. Config space is never a rep (QEMU
     * refuses one too). */
    if (count == 0 || (uint64_t)count * size > SX_IOREQ_MAX_REP_BYTES ||
        (q->type == IOREQ_TYPE_PCI_CONFIG && count != 1))
        return -ERANGE;
    uint64_t span = (uint64_t)(count - 1) * size, total = span + size;
    /* The device addresses the request covers. An MMIO rep walks them: [addr - span,
     * addr + size) with DF set, [addr, addr + span + size) without. A port or a config
     * register stays the same for every element: [addr, addr + size) within the 64 KiB port
     * space, or within the function's 4 KiB of config space (addr = SBDF << 32 | register). */
    uint64_t lo = q->addr, len = size, last = UINT64_MAX;
    if (q->type == IOREQ_TYPE_COPY) {
        if (!rep_low(q->addr, span, q->df, &lo))
            return -EOVERFLOW;
        len = total;
    } else if (q->type == IOREQ_TYPE_PIO) {
        last = 0xffff;
    } else {
        lo = (uint32_t)q->addr;
        last = 0xfff;
    }
    if (!span_within(lo, len, last))
        return -EOVERFLOW;
    if (q->data_is_ptr) {
        /* Guest memory the rep reads or writes: [data - span, data + size) with DF set. */
        if (mem_size == 0 || !rep_low(q->data, span, q->df, &lo) ||
            !span_within(lo, total, mem_size == UINT64_MAX ? UINT64_MAX : mem_size - 1))
            return -EFAULT;
    }
    return 0;
}

/* ---------------- DMA ---------------- */

static bool dma_ok(struct sx_ioreq *r, uint64_t gpa, size_t len)
{
    if (gpa > r->mem_size || len > r->mem_size - gpa) {
        r->st.dma_refused++;
        return false;
    }
    return true;
}

void *sx_ioreq_dma_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
{
    if (!r || len == 0 || len > SX_IOREQ_DMA_MAP_MAX) {
        errno = EINVAL;
        return NULL;
    }
    if (!dma_ok(r, gpa, len)) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: DMA [%#" PRIx64 ", +%zu) outside guest memory",
                           r->domid, gpa, len);
        errno = EFAULT;
        return NULL;
    }
    void *p = r->ops->dma_map(r, gpa, len, writable);
    if (p)
        r->st.dma_ok++;
    else
        r->st.dma_refused++;
    return p;
}

void sx_ioreq_dma_unmap(struct sx_ioreq *r, void *ptr, size_t len)
{
    if (r && ptr)
        r->ops->dma_unmap(r, ptr, len);
}

static int dma_copy(struct sx_ioreq *r, uint64_t gpa, void *buf, size_t len, bool to_guest)
{
    if (len == 0)
        return 0;
    if (!dma_ok(r, gpa, len)) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: DMA [%#" PRIx64 ", +%zu) outside guest memory",
                           r->domid, gpa, len);
        return -EFAULT;
    }
    /* Bounded chunks so a xen mapping never exceeds SX_IOREQ_DMA_MAP_MAX. */
    while (len) {
        size_t n = len > SX_IOREQ_DMA_MAP_MAX ? SX_IOREQ_DMA_MAP_MAX : len;
        void *p = sx_ioreq_dma_map(r, gpa, n, to_guest);
        if (!p)
            return -errno;
        if (to_guest)
            memcpy(p, buf, n);
        else
            memcpy(buf, p, n);
        sx_ioreq_dma_unmap(r, p, n);
        gpa += n;
        buf = (char *)buf + n;
        len -= n;
    }
    return 0;
}

int sx_ioreq_dma_read(struct sx_ioreq *r, uint64_t gpa, void *buf, size_t len)
{
    return dma_copy(r, gpa, buf, len, false);
}

int sx_ioreq_dma_write(struct sx_ioreq *r, uint64_t gpa, const void *buf, size_t len)
{
    return dma_copy(r, gpa, (void *)buf, len, true);
}

/* ---------------- registration ---------------- */

static uint32_t sbdf_of(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
    return ((uint32_t)seg << 16) | ((uint32_t)bus << 8) | ((uint32_t)(dev & 31) << 3) | (fn & 7);
}

int sx_ioreq_map_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t start, uint64_t end)
{
    if (!r || end < start || (sp != SX_IOREQ_PORT && sp != SX_IOREQ_MMIO) ||
        (sp == SX_IOREQ_PORT && end > 0xffff))
        return -EINVAL;
    for (unsigned i = 0; i < r->nranges; i++)
        if (r->ranges[i].sp == sp && start <= r->ranges[i].end && r->ranges[i].start <= end)
            return -EEXIST;
    if (r->nranges == SX_IOREQ_MAX_RANGES)
        return -ENOSPC;
    int rc = r->ops->map_range(r, sp, start, end, true);
    if (rc < 0)
        return rc;
    r->ranges[r->nranges++] = (struct sx_ioreq_range){ .sp = sp, .start = start, .end = end };
    return 0;
}

int sx_ioreq_unmap_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t start,
                         uint64_t end)
{
    if (!r)
        return -EINVAL;
    for (unsigned i = 0; i < r->nranges; i++) {
        struct sx_ioreq_range *g = &r->ranges[i];
        if (g->sp == sp && g->start == start && g->end == end) {
            int rc = r->ops->map_range(r, sp, start, end, false);
            *g = r->ranges[--r->nranges];
            return rc;
        }
    }
    return -ENOENT;
}

int sx_ioreq_map_pcidev(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
    if (!r || dev > 31 || fn > 7)
        return -EINVAL;
    uint32_t s = sbdf_of(seg, bus, dev, fn);
    for (unsigned i = 0; i < r->npcidevs; i++)
        if (r->pcidevs[i] == s)
            return -EEXIST;
    if (r->npcidevs == SX_IOREQ_MAX_PCIDEVS)
        return -ENOSPC;
    int rc = r->ops->map_pcidev(r, s, true);
    if (rc < 0)
        return rc;
    r->pcidevs[r->npcidevs++] = s;
    return 0;
}

int sx_ioreq_unmap_pcidev(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                          uint8_t fn)
{
    if (!r)
        return -EINVAL;
    uint32_t s = sbdf_of(seg, bus, dev, fn);
    for (unsigned i = 0; i < r->npcidevs; i++)
        if (r->pcidevs[i] == s) {
            int rc = r->ops->map_pcidev(r, s, false);
            r->pcidevs[i] = r->pcidevs[--r->npcidevs];
            return rc;
        }
    return -ENOENT;
}

static bool claimed(const struct sx_ioreq *r, uint8_t type, uint64_t addr, uint32_t size)
{
    if (type == IOREQ_TYPE_PCI_CONFIG) {
        uint32_t s = (uint32_t)(addr >> 32);
        for (unsigned i = 0; i < r->npcidevs; i++)
            if (r->pcidevs[i] == s)
                return true;
        return false;
    }
    uint8_t sp = type == IOREQ_TYPE_PIO ? SX_IOREQ_PORT : SX_IOREQ_MMIO;
    for (unsigned i = 0; i < r->nranges; i++) {
        const struct sx_ioreq_range *g = &r->ranges[i];
        if (g->sp == sp && addr >= g->start && addr <= g->end && size - 1 <= g->end - addr)
            return true;
    }
    return false;
}

/* ---------------- dispatch ---------------- */

static uint64_t size_mask(uint32_t size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

static void dispatch(struct sx_ioreq *r, struct sx_ioreq_access *a)
{
    /* Every access was range-checked with its request (sx_ioreq_check). */
    r->st.accesses++;
    if (!claimed(r, a->type, a->addr, a->size)) {
        r->st.unclaimed++;
        if (a->dir == IOREQ_READ)
            a->data = size_mask(a->size);
        return;
    }
    if (a->dir == IOREQ_READ)
        a->data = size_mask(a->size);
    else
        a->data &= size_mask(a->size);
    r->handler(r->opaque, a);
    a->data &= size_mask(a->size);
}

/* Run one validated request; returns the value for a non-pointer read. */
static uint64_t run_request(struct sx_ioreq *r, unsigned vcpu, const ioreq_t *q)
{
    uint32_t size = q->size;
    int64_t step = q->df ? -(int64_t)size : (int64_t)size;
    uint64_t result = size_mask(size);
    uint8_t *mem = NULL;
    if (q->data_is_ptr) {
        /* Map the whole validated range once. */
        uint64_t span = (uint64_t)(q->count - 1) * size;
        uint64_t lo = q->df ? q->data - span : q->data;
        mem = sx_ioreq_dma_map(r, lo, span + size, q->dir == IOREQ_READ);
        if (!mem) {
            r->st.bad_ptr++;
            return result;
        }
        uint8_t *base = mem;
        for (uint32_t i = 0; i < q->count; i++) {
            struct sx_ioreq_access a = {
                .addr = q->type == IOREQ_TYPE_COPY ? q->addr + (uint64_t)((int64_t)i * step)
                                                   : q->addr,
                .size = size, .type = q->type, .dir = q->dir, .vcpu = (uint16_t)vcpu,
            };
            uint8_t *p = base + (q->df ? span - (uint64_t)i * size : (uint64_t)i * size);
            if (q->dir == IOREQ_WRITE) {
                uint64_t v = 0;
                memcpy(&v, p, size);    /* little-endian guest, little-endian host */
                a.data = v;
            }
            dispatch(r, &a);
            if (q->dir == IOREQ_READ)
                memcpy(p, &a.data, size);
        }
        sx_ioreq_dma_unmap(r, mem, span + size);
        return result;
    }
    for (uint32_t i = 0; i < q->count; i++) {
        struct sx_ioreq_access a = {
            .addr = q->type == IOREQ_TYPE_COPY ? q->addr + (uint64_t)((int64_t)i * step) : q->addr,
            .data = q->data, .size = size, .type = q->type, .dir = q->dir,
            .vcpu = (uint16_t)vcpu,
        };
        dispatch(r, &a);
        result = a.data;
    }
    return result;
}

static void count_bad(struct sx_ioreq *r, int rc, const ioreq_t *q)
{
    switch (rc) {
    case -EPROTO: r->st.bad_type++; break;
    case -EINVAL: r->st.bad_size++; break;
    case -ERANGE: r->st.bad_count++; break;
    case -EOVERFLOW: r->st.bad_addr++; break;
    default: r->st.bad_ptr++; break;
    }
    sx_log_ratelimited(SX_LOG_WARN,
                       "dom%u: bad ioreq (%d): type %u size %u count %u ptr %u addr %#" PRIx64,
                       r->domid, rc, q->type, q->size, q->count, q->data_is_ptr, q->addr);
}

/* Serve vCPU v's slot if it holds a request. Returns 1 if one was completed. */
static int serve_vcpu(struct sx_ioreq *r, unsigned v)
{
    volatile ioreq_t *slot = (volatile ioreq_t *)&r->iopage->vcpu_ioreq[v];
    uint8_t state = slot->state;
    if (state != STATE_IOREQ_READY) {
        if (state == STATE_IOREQ_NONE || state == STATE_IORESP_READY) {
            r->last_bad_state[v] = 0;
        } else if (r->last_bad_state[v] != state) {
            /* INPROCESS is ours only during a step; anything else is no state at all. */
            r->last_bad_state[v] = state;
            r->st.bad_state++;
        }
        return 0;
    }
    r->last_bad_state[v] = 0;
    /* Read the request only after seeing READY (pairs with the poster's wmb before state). */
    xen_rmb();
    ioreq_t q;
    memcpy(&q, (const void *)slot, sizeof(q));   /* the one copy we validate and use */
    slot->state = STATE_IOREQ_INPROCESS;
    uint64_t data = q.data;
    switch (q.type) {
    case IOREQ_TYPE_INVALIDATE:
        r->st.invalidate++;
        if (r->ops->invalidate)
            r->ops->invalidate(r);
        break;
    case IOREQ_TYPE_TIMEOFFSET:
        r->st.timeoffset++;
        break;
    default: {
        int rc = sx_ioreq_check(&q, r->mem_size);
        if (rc < 0) {
            count_bad(r, rc, &q);
            if (q.dir == IOREQ_READ && !q.data_is_ptr)
                data = UINT64_MAX;
            break;
        }
        if (q.type == IOREQ_TYPE_PIO)
            r->st.pio++;
        else if (q.type == IOREQ_TYPE_COPY)
            r->st.mmio++;
        else
            r->st.pci_config++;
        uint64_t res = run_request(r, v, &q);
        if (q.dir == IOREQ_READ && !q.data_is_ptr)
            data = res;
        break;
    }
    }
    if (q.dir == IOREQ_READ && !q.data_is_ptr)
        slot->data = data;
    r->st.handled++;   /* counted before answered: who sees the response sees the count */
    /* The response data is visible before the state says so. */
    xen_wmb();
    slot->state = STATE_IORESP_READY;
    if (r->vcpu_port[v] >= 0 && sx_evtchn_notify(r->evt, (evtchn_port_t)r->vcpu_port[v]) < 0)
        r->st.notify_errors++;
    return 1;
}

/* Drain up to `max` buffered requests. Returns how many. */
static unsigned serve_buffered(struct sx_ioreq *r, unsigned max)
{
    buffered_iopage_t *b = r->bufpage;
    if (!b)
        return 0;
    uint32_t rd = SX_READ_ONCE(b->read_pointer);
    uint32_t wr = SX_READ_ONCE(b->write_pointer);
    /* Slots are read after the write pointer that covers them. */
    xen_rmb();
    if (wr - rd > IOREQ_BUFFER_SLOT_NUM) {
        r->st.bad_buffered++;
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: buffered ring pointers %u/%u: dropping", r->domid,
                           rd, wr);
        atomic_fetch_add((_Atomic uint32_t *)&b->read_pointer, wr - rd);
        return 0;
    }
    unsigned n = 0;
    uint32_t start = rd;
    while (rd != wr && n < max) {
        buf_ioreq_t e;
        memcpy(&e, &b->buf_ioreq[rd % IOREQ_BUFFER_SLOT_NUM], sizeof(e));
        uint32_t size = 1u << e.size;
        uint64_t data = e.data;
        uint32_t used = 1;
        if (size == 8) {
            if (wr - rd < 2) {   /* the second half is not there yet */
                r->st.bad_buffered++;
                rd = wr;
                break;
            }
            buf_ioreq_t hi;
            memcpy(&hi, &b->buf_ioreq[(rd + 1) % IOREQ_BUFFER_SLOT_NUM], sizeof(hi));
            data |= (uint64_t)hi.data << 32;
            used = 2;
        }
        rd += used;
        n++;
        /* The same checks as a synchronous request: size, and the address range in its
         * space (a port write at 0xffff of 2 bytes runs off the port space). */
        ioreq_t q = { .addr = e.addr, .size = size, .count = 1, .dir = e.dir, .type = e.type };
        if (e.dir != IOREQ_WRITE || (e.type != IOREQ_TYPE_PIO && e.type != IOREQ_TYPE_COPY) ||
            sx_ioreq_check(&q, r->mem_size) < 0) {
            r->st.bad_buffered++;
            continue;
        }
        struct sx_ioreq_access a = { .addr = e.addr, .data = data, .size = size, .type = e.type,
                                     .dir = IOREQ_WRITE };
        r->st.buffered++;
        dispatch(r, &a);
    }
    /* Finished reading the slots before handing them back. An add, not a store: Xen may
     * rebase both pointers concurrently (HVM_IOREQSRV_BUFIOREQ_ATOMIC), as QEMU does. */
    xen_mb();
    atomic_fetch_add((_Atomic uint32_t *)&b->read_pointer, rd - start);
    return n;
}

void sx_ioreq_kick(struct sx_ioreq *r)
{
    uint64_t one = 1;
    if (write(r->kickfd, &one, sizeof(one)) < 0) {
        /* EAGAIN: already readable. */
    }
}

int sx_ioreq_step(struct sx_ioreq *r)
{
    if (!r)
        return -EINVAL;
    r->st.steps++;
    uint64_t v;
    if (read(r->kickfd, &v, sizeof(v)) < 0) {
        /* EAGAIN: not kicked. */
    }
    /* Take and re-arm every event first, then scan: a request posted after the scan
     * notifies an unmasked port again (final check). */
    sx_evtchn_drain(r->evt, 4 * SX_IOREQ_MAX_VCPUS + 8);
    int rc = r->ops->poll(r);
    if (rc < 0)
        return rc;
    if (!r->iopage || !r->enabled)
        return 0;
    unsigned budget = r->budget, done = 0;
    done += serve_buffered(r, budget / 2 ? budget / 2 : 1);
    bool progress = true;
    while (done < budget && progress) {
        progress = false;
        for (unsigned k = 0; k < r->nr_vcpus && done < budget; k++) {
            unsigned vc = (r->rr + k) % r->nr_vcpus;
            if (serve_vcpu(r, vc)) {
                done++;
                progress = true;
            }
        }
        r->rr = (r->rr + 1) % r->nr_vcpus;
    }
    if (done >= budget) {
        r->st.budget_exhausted++;
        sx_ioreq_kick(r);   /* come back after the caller's other work */
    }
    return (int)done;
}

int sx_ioreq_has_work(const struct sx_ioreq *r)
{
    if (!r || !r->iopage || !r->enabled)
        return 0;
    for (unsigned v = 0; v < r->nr_vcpus; v++)
        if (((volatile ioreq_t *)&r->iopage->vcpu_ioreq[v])->state == STATE_IOREQ_READY)
            return 1;
    return r->bufpage && SX_READ_ONCE(r->bufpage->read_pointer) !=
                         SX_READ_ONCE(r->bufpage->write_pointer);
}

/* ---------------- lifecycle ---------------- */

int sx_ioreq_open(struct sx_ioreq **out, struct sx_plat *p, const struct sx_ioreq_opts *o)
{
    if (!out || !p || !o || !o->handler || o->nr_vcpus > SX_IOREQ_MAX_VCPUS)
        return -EINVAL;
    struct sx_ioreq *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->ops = p->kind == SX_PLAT_XEN ? &sx_ioreq_xen_ops : &sx_ioreq_sim_ops;
    r->plat = p;
    r->domid = o->domid;
    r->nr_vcpus = o->nr_vcpus;
    r->handler = o->handler;
    r->opaque = o->opaque;
    r->budget = o->budget ? o->budget : DEFAULT_BUDGET;
    r->epfd = r->kickfd = -1;
    r->buf_port = -1;
    for (unsigned i = 0; i < SX_IOREQ_MAX_VCPUS; i++)
        r->vcpu_port[i] = -1;
    int rc = sx_evtchn_open(&r->evt, p);
    if (rc < 0)
        goto fail;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->epfd < 0 || r->kickfd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, sx_evtchn_fd(r->evt), &ev) < 0 ||
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->kickfd, &ev) < 0) {
        rc = -errno;
        goto fail;
    }
    rc = r->ops->open(r);
    if (rc < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    sx_ioreq_close(r);
    return rc;
}

void sx_ioreq_close(struct sx_ioreq *r)
{
    if (!r)
        return;
    if (r->evt)
        sx_ioreq_unbind_all(r);
    if (r->ops)
        r->ops->close(r);
    sx_evtchn_close(r->evt);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->kickfd >= 0)
        close(r->kickfd);
    free(r);
}

int sx_ioreq_fd(struct sx_ioreq *r) { return r ? r->epfd : -EINVAL; }

int sx_ioreq_enable(struct sx_ioreq *r)
{
    if (!r)
        return -EINVAL;
    int rc = r->ops->enable(r);
    if (rc == 0)
        r->enabled = true;
    return rc;
}

int sx_ioreq_alive(struct sx_ioreq *r) { return r ? r->ops->alive(r) : -EINVAL; }

int sx_ioreq_connected(struct sx_ioreq *r)
{
    return r && r->enabled && r->iopage && r->vcpu_port[0] >= 0;
}

const struct sx_ioreq_stats *sx_ioreq_stats(const struct sx_ioreq *r) { return &r->st; }

int sx_ioreq_set_isa_irq(struct sx_ioreq *r, uint8_t irq, bool level)
{
    if (!r || irq > 15)
        return -EINVAL;
    int rc = r->ops->isa_irq(r, irq, level);
    if (rc == 0)
        level ? r->st.irq_raises++ : r->st.irq_lowers++;
    return rc;
}

int sx_ioreq_set_pci_intx(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                          uint8_t intx, bool level)
{
    if (!r || dev > 31 || intx > 3)
        return -EINVAL;
    int rc = r->ops->pci_intx(r, seg, bus, dev, intx, level);
    if (rc == 0)
        level ? r->st.irq_raises++ : r->st.irq_lowers++;
    return rc;
}

int sx_ioreq_inject_msi(struct sx_ioreq *r, uint64_t addr, uint32_t data)
{
    if (!r)
        return -EINVAL;
    int rc = r->ops->msi(r, addr, data);
    if (rc == 0)
        r->st.msis++;
    return rc;
}
