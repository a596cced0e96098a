/* See fake_xendm.h. */
#include "tests/ioreq/fake_xendm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/hvm/ioreq.h>

struct fake_dm_state fake_dm;

struct xendevicemodel_handle { int dummy; };
struct xenforeignmemory_handle { int dummy; };
struct xenforeignmemory_resource_handle { void *addr; };

#define GUEST_BYTES ((size_t)FAKE_DM_GUEST_PAGES * 4096)

void fake_dm_free(void)
{
    free(fake_dm.pages);
    /* Mappings a test leaked (it has failed already): release them with the guest. */
    for (unsigned i = 0; i < FAKE_DM_MAX_MAPS; i++)
        if (fake_dm.map[i].addr)
            munmap(fake_dm.map[i].addr, fake_dm.map[i].pages * 4096);
    if (fake_dm.guest)
        munmap(fake_dm.guest, GUEST_BYTES);
    if (fake_dm.guest_fd > 0)
        close(fake_dm.guest_fd);
    fake_dm.pages = fake_dm.guest = NULL;
    fake_dm.guest_fd = -1;
    memset(fake_dm.map, 0, sizeof(fake_dm.map));
}

void fake_dm_reset(void)
{
    fake_dm_free();
    memset(&fake_dm, 0, sizeof(fake_dm));
    fake_dm.pages = aligned_alloc(4096, 2 * 4096);
    memset(fake_dm.pages, 0, 2 * 4096);
    /* Sparse: only the pages a test touches cost memory. */
    fake_dm.guest_fd = memfd_create("fake-guest", MFD_CLOEXEC);
    if (fake_dm.guest_fd < 0 || ftruncate(fake_dm.guest_fd, (off_t)GUEST_BYTES) < 0)
        abort();    /* the test machine, not the code under test */
    fake_dm.guest = mmap(NULL, GUEST_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
                         fake_dm.guest_fd, 0);
    if (fake_dm.guest == MAP_FAILED)
        abort();
    fake_dm.vp_eport_base = 40;
    fake_dm.bufioreq_port = 60;
    fake_dm.nr_vcpus = 2;
}

static int fail(int e)
{
    errno = e;
    return -1;
}

xendevicemodel_handle *xendevicemodel_open(struct xentoollog_logger *logger, unsigned int flags)
{
    if (fake_dm.open_errno) {
        errno = fake_dm.open_errno;
        return NULL;
    }
    fake_dm.live_dm++;
    return calloc(1, sizeof(xendevicemodel_handle));
}

int xendevicemodel_close(xendevicemodel_handle *dmod)
{
    fake_dm.live_dm--;
    free(dmod);
    return 0;
}

int xendevicemodel_create_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                       int handle_bufioreq, ioservid_t *id)
{
    if (fake_dm.create_errno)
        return fail(fake_dm.create_errno);
    fake_dm.creates++;
    fake_dm.domid = domid;
    fake_dm.handle_bufioreq = handle_bufioreq;
    *id = 1;   /* the second server: qemu has 0 */
    return 0;
}

int xendevicemodel_get_ioreq_server_info(xendevicemodel_handle *dmod, domid_t domid,
                                         ioservid_t id, xen_pfn_t *ioreq_gfn,
                                         xen_pfn_t *bufioreq_gfn, evtchn_port_t *bufioreq_port)
{
    if (fake_dm.info_errno)
        return fail(fake_dm.info_errno);
    if (bufioreq_port)
        *bufioreq_port = fake_dm.bufioreq_port;
    return 0;
}

static int range(int is_mmio, uint64_t s, uint64_t e, bool map)
{
    if (fake_dm.nranges < FAKE_DM_MAX_CALLS)
        fake_dm.ranges[fake_dm.nranges++] = (struct fake_dm_range){ is_mmio, s, e, map };
    return 0;
}

int xendevicemodel_map_io_range_to_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                ioservid_t id, int is_mmio, uint64_t start,
                                                uint64_t end)
{
    return range(is_mmio, start, end, true);
}

int xendevicemodel_unmap_io_range_from_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                    ioservid_t id, int is_mmio, uint64_t start,
                                                    uint64_t end)
{
    return range(is_mmio, start, end, false);
}

int xendevicemodel_map_pcidev_to_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                              ioservid_t id, uint16_t segment, uint8_t bus,
                                              uint8_t device, uint8_t function)
{
    if (fake_dm.npcidevs < FAKE_DM_MAX_CALLS)
        fake_dm.pcidev_sbdf[fake_dm.npcidevs++] =
            (uint32_t)segment << 16 | (uint32_t)bus << 8 | (uint32_t)device << 3 | function;
    return 0;
}

int xendevicemodel_unmap_pcidev_from_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                                  ioservid_t id, uint16_t segment, uint8_t bus,
                                                  uint8_t device, uint8_t function)
{
    return 0;
}

int xendevicemodel_destroy_ioreq_server(xendevicemodel_handle *dmod, domid_t domid,
                                        ioservid_t id)
{
    fake_dm.destroys++;
    return 0;
}

int xendevicemodel_set_ioreq_server_state(xendevicemodel_handle *dmod, domid_t domid,
                                          ioservid_t id, int enabled)
{
    fake_dm.enabled = enabled;
    if (enabled) {
        /* Xen fills in each vCPU's event channel when the server is enabled. */
        shared_iopage_t *p = (shared_iopage_t *)(fake_dm.pages + 4096);
        for (unsigned v = 0; v < fake_dm.nr_vcpus; v++)
            p->vcpu_ioreq[v].vp_eport = fake_dm.vp_eport_base + v;
    }
    return 0;
}

int xendevicemodel_set_isa_irq_level(xendevicemodel_handle *dmod, domid_t domid, uint8_t irq,
                                     unsigned int level)
{
    if (fake_dm.irq_errno)
        return fail(fake_dm.irq_errno);
    fake_dm.isa_irq = irq;
    fake_dm.isa_level = (int)level;
    return 0;
}

int xendevicemodel_set_pci_intx_level(xendevicemodel_handle *dmod, domid_t domid,
                                      uint16_t segment, uint8_t bus, uint8_t device,
                                      uint8_t intx, unsigned int level)
{
    if (fake_dm.irq_errno)
        return fail(fake_dm.irq_errno);
    fake_dm.intx_dev = device;
    fake_dm.intx_intx = intx;
    fake_dm.intx_level = (int)level;
    return 0;
}

int xendevicemodel_inject_msi(xendevicemodel_handle *dmod, domid_t domid, uint64_t msi_addr,
                              uint32_t msi_data)
{
    if (fake_dm.irq_errno)
        return fail(fake_dm.irq_errno);
    fake_dm.msi_addr = msi_addr;
    fake_dm.msi_data = msi_data;
    return 0;
}

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger,
                                               unsigned int open_flags)
{
    fake_dm.live_fm++;
    return calloc(1, sizeof(xenforeignmemory_handle));
}

int xenforeignmemory_close(xenforeignmemory_handle *fmem)
{
    fake_dm.live_fm--;
    free(fmem);
    return 0;
}

xenforeignmemory_resource_handle *xenforeignmemory_map_resource(
    xenforeignmemory_handle *fmem, domid_t domid, unsigned int type, unsigned int id,
    unsigned long frame, unsigned long nr_frames, void **paddr, int prot, int flags)
{
    if (fake_dm.map_resource_errno) {
        errno = fake_dm.map_resource_errno;
        return NULL;
    }
    fake_dm.resource_type = type;
    fake_dm.resource_id = id;
    fake_dm.resource_frame = frame;
    fake_dm.resource_nr = nr_frames;
    fake_dm.live_resources++;
    xenforeignmemory_resource_handle *h = calloc(1, sizeof(*h));
    *paddr = h->addr = fake_dm.pages;
    return h;
}

int xenforeignmemory_unmap_resource(xenforeignmemory_handle *fmem,
                                    xenforeignmemory_resource_handle *fres)
{
    fake_dm.live_resources--;
    free(fres);
    return 0;
}

static bool refused(xen_pfn_t pfn)
{
    if (pfn >= FAKE_DM_GUEST_PAGES)
        return true;
    for (unsigned i = 0; i < fake_dm.nfail; i++)
        if (fake_dm.fail_pfns[i] == pfn)
            return true;
    return false;
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[])
{
    if (fake_dm.map_errno) {
        errno = fake_dm.map_errno;
        return NULL;
    }
    unsigned slot = 0;
    while (slot < FAKE_DM_MAX_MAPS && fake_dm.map[slot].addr)
        slot++;
    if (slot == FAKE_DM_MAX_MAPS || pages == 0) {
        errno = ENOMEM;
        return NULL;
    }
    /* A fresh range, as privcmd's mmap; refused frames stay inaccessible. */
    uint8_t *base = mmap(NULL, pages * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < pages;) {
        if (refused(arr[i])) {
            err[i++] = -EFAULT;
            continue;
        }
        size_t n = 1;
        while (i + n < pages && !refused(arr[i + n]) && arr[i + n] == arr[i] + n)
            n++;
        if (mmap(base + i * 4096, n * 4096, prot, MAP_SHARED | MAP_FIXED, fake_dm.guest_fd,
                 (off_t)(arr[i] * 4096)) == MAP_FAILED)
            abort();
        for (size_t k = 0; k < n; k++)
            err[i + k] = 0;
        i += n;
    }
    fake_dm.map[slot].addr = base;
    fake_dm.map[slot].pages = pages;
    fake_dm.live_maps++;
    fake_dm.maps++;
    fake_dm.last_map_pages = pages;
    fake_dm.last_map_prot = prot;
    return base;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages)
{
    for (unsigned i = 0; i < FAKE_DM_MAX_MAPS; i++)
        if (fake_dm.map[i].addr == addr && addr) {
            if (fake_dm.map[i].pages != pages)
                break;
            munmap(addr, pages * 4096);
            fake_dm.map[i].addr = NULL;
            fake_dm.live_maps--;
            fake_dm.unmaps++;
            return 0;
        }
    fake_dm.bad_unmaps++;
    errno = EINVAL;
    return -1;
}
