/*
 * ioreq on real Xen: an additional ioreq server (as demu or a second QEMU) created with
 * libxendevicemodel, its buffered and synchronous pages mapped as a resource
 * (XENMEM_resource_ioreq_server), ranges and PCI functions mapped to it, then enabled; only then
 * are the vCPUs' vp_eport values valid and bound (see XEN-LAB.md). Guest memory for DMA is
 * mapped page by page with xenforeignmemory_map; Xen refuses frames the guest does not have.
 * libxen* calls return -1 + errno; they are turned into -errno here, once.
 */
#define SX_LOG_MODULE "ioreq"
#include "xen-core/ioreq/ioreq_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>
#include <xen/hvm/hvm_op.h>
#include <xen/memory.h>

#include "log.h"

#define PAGE 4096u

struct xen {
    xendevicemodel_handle *dm;
    xenforeignmemory_handle *fm;
    xenforeignmemory_resource_handle *res;
    void *pages;
    ioservid_t id;
    bool created;
};

static int neg_errno(void) { return errno ? -errno : -EIO; }

static void xen_close(struct sx_ioreq *r)
{
    struct xen *x = r->priv;
    if (!x)
        return;
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

static void *xen_dma_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
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
    return p ? (char *)p + (gpa % PAGE) : NULL;
}

static void xen_dma_unmap(struct sx_ioreq *r, void *ptr, size_t len)
{
    struct xen *x = r->priv;
    uintptr_t a = (uintptr_t)ptr;
    size_t off = a % PAGE;
    xenforeignmemory_unmap(x->fm, (void *)(a - off), (off + len + PAGE - 1) / PAGE);
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
};
