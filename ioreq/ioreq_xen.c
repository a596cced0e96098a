/*
 * ioreq on real Xen: an additional ioreq server (as demu or a second QEMU) created with
 * libxendevicemodel, its buffered and synchronous pages mapped as a resource
 * (XENMEM_resource_ioreq_server), ranges and PCI functions mapped to it, then enabled; only then
 * are the vCPUs' vp_eport values valid and bound (see XEN-LAB.md). libxen* calls return
 * -1 + errno; they are turned into -errno here, once.
 *
 * Guest memory for DMA goes through a mapcache, as qemu's xen-mapcache: every dma_map used to
 * cost a privcmd ioctl plus mmap/munmap (page-table hypercalls), several per packet or command.
 * Guest memory is cut into 1 MiB-aligned buckets of 256 frames, each mapped read-write at its
 * first use with one xenforeignmemory_map and kept; a dma_map inside one bucket returns a
 * pointer into it without a system call. 1 MiB as qemu on x86_64: a descriptor ring, a packet
 * buffer or a PRD region (at most 4 MiB, usually a page or a few) nearly always lies inside one
 * bucket, and 256 frames are one ioctl with 3 KiB of arrays on the stack. At most
 * MC_BUCKETS (64) buckets = 64 MiB of mappings, which holds a guest's rings and the buffers in
 * flight; when full, the least recently used bucket with no mapping in use is unmapped. Each
 * bucket counts the mappings handed out of it (dma_map +1, dma_unmap -1) and is never unmapped
 * while one is in use: the device (or the kernel, for an engine's O_DIRECT I/O) still uses it.
 *
 * The old exact mapping (just the frames asked for, unmapped by dma_unmap) remains for a range
 * across two buckets, a bucket Xen refused in part (holes, MMIO such as the VGA window in the
 * first MiB; remembered as partial so it is not retried every access) and a cache whose buckets
 * are all in use. Xen still refuses frames the guest does not have: EFAULT, as before. dma_unmap
 * tells the two kinds apart by address (inside a bucket's mapping or not).
 *
 * IOREQ_TYPE_INVALIDATE (the guest's physmap changed: ballooning, decrease_reservation) drops
 * every idle bucket and the partial marks at once and dooms the buckets in use: they are
 * unmapped at their last dma_unmap and never handed out again.
 *
 * Threading: none. sx_ioreq_dma_map/unmap run in the device model's one thread (dm.h: every
 * callback runs in the sx_dm_run thread; the AHCI's engine completions are reaped there too,
 * blkio/blkio.h engines belong to one thread), so the cache has no lock. A second thread calling
 * them would need one.
 */
#define SX_LOG_MODULE "ioreq"
#include "ioreq/ioreq_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>
#include <xen/hvm/hvm_op.h>
#include <xen/memory.h>

#include "log.h"

#define PAGE 4096u

#define MC_SHIFT 20u                            /* 1 MiB buckets */
#define MC_PAGES ((1u << MC_SHIFT) / PAGE)       /* 256 frames */
#define MC_BUCKETS 64u                           /* 64 MiB of mappings at most */

struct mc_bucket {
    uint64_t index;         /* gpa >> MC_SHIFT */
    uint8_t *va;            /* MC_PAGES mapped frames; NULL if partial or unused */
    uint64_t lru;           /* x->tick at the last dma_map */
    unsigned refs;          /* mappings handed out and not unmapped yet */
    bool used;              /* slot holds a bucket (mapped or partial) */
    bool partial;           /* Xen refused some frame: served by exact mappings */
    bool doomed;            /* invalidated while in use: unmap at refs == 0, never hand out */
};

struct xen {
    xendevicemodel_handle *dm;
    xenforeignmemory_handle *fm;
    xenforeignmemory_resource_handle *res;
    void *pages;
    ioservid_t id;
    bool created;
    uint64_t tick;
    struct mc_bucket mc[MC_BUCKETS];
};

static int neg_errno(void) { return errno ? -errno : -EIO; }

static void mc_free(struct xen *x, struct mc_bucket *b)
{
    if (b->va)
        xenforeignmemory_unmap(x->fm, b->va, MC_PAGES);
    memset(b, 0, sizeof(*b));
}

/* Teardown: every bucket goes, in use or not (the devices are gone by now). */
static void mc_drop_all(struct sx_ioreq *r, struct xen *x)
{
    for (unsigned i = 0; i < MC_BUCKETS; i++) {
        struct mc_bucket *b = &x->mc[i];
        if (b->used && b->refs)
            sx_warn("dom%u: closing with %u DMA mappings in use in bucket %#" PRIx64,
                    r->domid, b->refs, b->index << MC_SHIFT);
        mc_free(x, b);
    }
}

static void xen_close(struct sx_ioreq *r)
{
    struct xen *x = r->priv;
    if (!x)
        return;
    mc_drop_all(r, x);
    if (x->res)
        xenforeignmemory_unmap_resource(x->fm, x->res);
    if (x->created)
        xendevicemodel_destroy_ioreq_server(x->dm, r->domid, x->id);
    if (x->fm)
        xenforeignmemory_close(x->fm);
    if (x->dm)
        xendevicemodel_close(x->dm);
    free(x);
    r->priv = NULL;
    r->iopage = NULL;
    r->bufpage = NULL;
}

static int xen_open(struct sx_ioreq *r)
{
    if (r->nr_vcpus == 0)
        return -EINVAL;   /* Xen does not tell us; the caller must */
    struct xen *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    r->priv = x;
    x->dm = xendevicemodel_open(NULL, 0);
    if (!x->dm)
        return neg_errno();
    x->fm = xenforeignmemory_open(NULL, 0);
    if (!x->fm)
        return neg_errno();
    if (xendevicemodel_create_ioreq_server(x->dm, r->domid, HVM_IOREQSRV_BUFIOREQ_ATOMIC,
                                           &x->id) < 0) {
        int rc = neg_errno();
        sx_err("dom%u: create ioreq server: %d", r->domid, rc);
        return rc;
    }
    x->created = true;
    /* Frame 0 is the buffered page, frame 1 the synchronous one. */
    void *addr = NULL;
    x->res = xenforeignmemory_map_resource(x->fm, r->domid, XENMEM_resource_ioreq_server, x->id,
                                           XENMEM_resource_ioreq_server_frame_bufioreq, 2, &addr,
                                           PROT_READ | PROT_WRITE, 0);
    if (!x->res) {
        int rc = neg_errno();
        sx_err("dom%u: map ioreq server %u pages: %d", r->domid, x->id, rc);
        return rc;
    }
    x->pages = addr;
    r->bufpage = (buffered_iopage_t *)addr;
    r->iopage = (shared_iopage_t *)((char *)addr + PAGE);
    r->mem_size = UINT64_MAX;   /* Xen bounds foreign mappings to the guest's frames */
    sx_info("dom%u: ioreq server %u", r->domid, x->id);
    return 0;
}

static int xen_map_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t s, uint64_t e,
                         bool map)
{
    struct xen *x = r->priv;
    int rc = map ? xendevicemodel_map_io_range_to_ioreq_server(x->dm, r->domid, x->id,
                                                               sp == SX_IOREQ_MMIO, s, e)
                 : xendevicemodel_unmap_io_range_from_ioreq_server(x->dm, r->domid, x->id,
                                                                   sp == SX_IOREQ_MMIO, s, e);
    return rc < 0 ? neg_errno() : 0;
}

static int xen_map_pcidev(struct sx_ioreq *r, uint32_t sbdf, bool map)
{
    struct xen *x = r->priv;
    uint16_t seg = (uint16_t)(sbdf >> 16);
    uint8_t bus = (uint8_t)(sbdf >> 8), dev = (sbdf >> 3) & 31, fn = sbdf & 7;
    int rc = map ? xendevicemodel_map_pcidev_to_ioreq_server(x->dm, r->domid, x->id, seg, bus,
                                                             dev, fn)
                 : xendevicemodel_unmap_pcidev_from_ioreq_server(x->dm, r->domid, x->id, seg,
                                                                 bus, dev, fn);
    return rc < 0 ? neg_errno() : 0;
}

static int xen_enable(struct sx_ioreq *r)
{
    struct xen *x = r->priv;
    if (xendevicemodel_set_ioreq_server_state(x->dm, r->domid, x->id, 1) < 0)
        return neg_errno();
    evtchn_port_t bufport = 0;
    if (xendevicemodel_get_ioreq_server_info(x->dm, r->domid, x->id, NULL, NULL, &bufport) < 0)
        return neg_errno();
    int rc = 0;
    for (unsigned v = 0; v < r->nr_vcpus && rc == 0; v++)
        rc = sx_ioreq_bind_vcpu(r, v, r->iopage->vcpu_ioreq[v].vp_eport);
    if (rc == 0)
        rc = sx_ioreq_bind_buf(r, bufport);
    if (rc < 0) {
        sx_err("dom%u: bind ioreq event channels: %d", r->domid, rc);
        sx_ioreq_unbind_all(r);
        xendevicemodel_set_ioreq_server_state(x->dm, r->domid, x->id, 0);
        return rc;
    }
    r->st.connects++;
    return 0;
}

static int xen_poll(struct sx_ioreq *r) { return 0; }

static int xen_isa_irq(struct sx_ioreq *r, uint8_t irq, bool level)
{
    struct xen *x = r->priv;
    return xendevicemodel_set_isa_irq_level(x->dm, r->domid, irq, level) < 0 ? neg_errno() : 0;
}

static int xen_pci_intx(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                        uint8_t intx, bool level)
{
    struct xen *x = r->priv;
    return xendevicemodel_set_pci_intx_level(x->dm, r->domid, seg, bus, dev, intx, level) < 0
               ? neg_errno() : 0;
}

static int xen_msi(struct sx_ioreq *r, uint64_t addr, uint32_t data)
{
    struct xen *x = r->priv;
    return xendevicemodel_inject_msi(x->dm, r->domid, addr, data) < 0 ? neg_errno() : 0;
}

static int xen_alive(struct sx_ioreq *r)
{
    struct xen *x = r->priv;
    if (xendevicemodel_get_ioreq_server_info(x->dm, r->domid, x->id, NULL, NULL, NULL) == 0)
        return 1;
    return errno == ESRCH || errno == ENOENT ? 0 : neg_errno();
}

#define MAX_MAP_PAGES (SX_IOREQ_DMA_MAP_MAX / PAGE + 1)

/* The frames of [gpa, gpa+len) mapped exactly; unmapped by exact_unmap. */
static void *exact_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
{
    struct xen *x = r->priv;
    uint64_t first = gpa / PAGE, last = (gpa + len - 1) / PAGE;
    size_t n = (size_t)(last - first + 1);
    if (n > MAX_MAP_PAGES) {
        errno = EINVAL;
        return NULL;
    }
    /* On the stack (12 KiB at most): no allocation per DMA. */
    xen_pfn_t pfns[MAX_MAP_PAGES];
    int err[MAX_MAP_PAGES];
    for (size_t i = 0; i < n; i++) {
        pfns[i] = first + i;
        err[i] = 0;
    }
    void *p = xenforeignmemory_map(x->fm, r->domid,
                                   writable ? PROT_READ | PROT_WRITE : PROT_READ, n, pfns, err);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (err[i]) {
            xenforeignmemory_unmap(x->fm, p, n);
            errno = EFAULT;
            return NULL;
        }
    return (char *)p + (gpa % PAGE);
}

static void exact_unmap(struct xen *x, void *ptr, size_t len)
{
    uintptr_t a = (uintptr_t)ptr;
    size_t off = a % PAGE;
    xenforeignmemory_unmap(x->fm, (void *)(a - off), (off + len + PAGE - 1) / PAGE);
}

/* Map bucket `index` whole into slot b: 0, or -errno and b marked partial (some frame refused,
 * or the whole call failed). */
static int mc_fill(struct sx_ioreq *r, struct xen *x, struct mc_bucket *b, uint64_t index)
{
    xen_pfn_t pfns[MC_PAGES];
    int err[MC_PAGES];
    for (unsigned i = 0; i < MC_PAGES; i++) {
        pfns[i] = index * MC_PAGES + i;
        err[i] = 0;
    }
    memset(b, 0, sizeof(*b));
    b->used = true;
    b->index = index;
    b->lru = ++x->tick;
    r->st.mapcache_misses++;
    void *p = xenforeignmemory_map(x->fm, r->domid, PROT_READ | PROT_WRITE, MC_PAGES, pfns, err);
    int rc = p ? 0 : neg_errno();
    for (unsigned i = 0; p && i < MC_PAGES && rc == 0; i++)
        if (err[i])
            rc = -EFAULT;
    if (rc < 0) {
        if (p)
            xenforeignmemory_unmap(x->fm, p, MC_PAGES);
        b->partial = true;
        r->st.mapcache_partial++;
        sx_debug("dom%u: bucket %#" PRIx64 " partly unmappable (%d): exact mappings there",
                 r->domid, index << MC_SHIFT, rc);
        return rc;
    }
    b->va = p;
    return 0;
}

/* A slot for a new bucket: a free one, else the least recently used idle one (evicted), else
 * NULL (every bucket in use). */
static struct mc_bucket *mc_slot(struct sx_ioreq *r, struct xen *x)
{
    struct mc_bucket *victim = NULL;
    for (unsigned i = 0; i < MC_BUCKETS; i++) {
        struct mc_bucket *b = &x->mc[i];
        if (!b->used)
            return b;
        if (b->refs == 0 && (!victim || b->lru < victim->lru))
            victim = b;
    }
    if (victim) {
        r->st.mapcache_evictions++;
        mc_free(x, victim);
    }
    return victim;
}

static void *xen_dma_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
{
    struct xen *x = r->priv;
    uint64_t index = gpa >> MC_SHIFT;
    if (((gpa + len - 1) >> MC_SHIFT) != index)
        goto exact;                 /* across buckets (gpa + len cannot overflow: checked) */
    struct mc_bucket *b = NULL;
    for (unsigned i = 0; i < MC_BUCKETS; i++)
        if (x->mc[i].used && !x->mc[i].doomed && x->mc[i].index == index) {
            b = &x->mc[i];
            break;
        }
    if (b && b->partial)
        goto exact;
    if (!b) {
        b = mc_slot(r, x);
        if (!b || mc_fill(r, x, b, index) < 0)
            goto exact;
    } else {
        r->st.mapcache_hits++;
        b->lru = ++x->tick;
    }
    b->refs++;
    return b->va + (gpa & ((1u << MC_SHIFT) - 1));
exact:
    r->st.mapcache_exact++;
    return exact_map(r, gpa, len, writable);
}

static void xen_dma_unmap(struct sx_ioreq *r, void *ptr, size_t len)
{
    struct xen *x = r->priv;
    uint8_t *p = ptr;
    for (unsigned i = 0; i < MC_BUCKETS; i++) {
        struct mc_bucket *b = &x->mc[i];
        /* Pointer comparison across objects: as integers. */
        if (b->va && (uintptr_t)p >= (uintptr_t)b->va &&
            (uintptr_t)p - (uintptr_t)b->va < (1u << MC_SHIFT)) {
            if (b->refs == 0) {
                sx_log_ratelimited(SX_LOG_WARN, "dom%u: DMA unmap of an idle bucket", r->domid);
                return;
            }
            if (--b->refs == 0 && b->doomed)
                mc_free(x, b);
            return;
        }
    }
    exact_unmap(x, ptr, len);
}

/* The guest's physmap changed: no cached frame can be trusted any more. */
static void xen_invalidate(struct sx_ioreq *r)
{
    struct xen *x = r->priv;
    for (unsigned i = 0; i < MC_BUCKETS; i++) {
        struct mc_bucket *b = &x->mc[i];
        if (!b->used || b->doomed)
            continue;
        r->st.mapcache_invalidations++;
        if (b->refs)
            b->doomed = true;
        else
            mc_free(x, b);
    }
}

const struct sx_ioreq_ops sx_ioreq_xen_ops = {
    .name = "xen",
    .open = xen_open,
    .close = xen_close,
    .map_range = xen_map_range,
    .map_pcidev = xen_map_pcidev,
    .enable = xen_enable,
    .poll = xen_poll,
    .isa_irq = xen_isa_irq,
    .pci_intx = xen_pci_intx,
    .msi = xen_msi,
    .alive = xen_alive,
    .dma_map = xen_dma_map,
    .dma_unmap = xen_dma_unmap,
    .invalidate = xen_invalidate,
};
