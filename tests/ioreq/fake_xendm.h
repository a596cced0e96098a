/*
 * Programmable stand-ins for the libxendevicemodel and libxenforeignmemory calls
 * ioreq/ioreq_xen.c makes (real prototypes from <xendevicemodel.h> and
 * <xenforeignmemory.h>). The ioreq server's two pages are a private buffer; vp_eport values
 * appear in them only when the server is enabled, as on Xen. Guest memory is a memfd of
 * FAKE_DM_GUEST_PAGES pages (sparse), also mapped at fake_dm.guest; xenforeignmemory_map maps
 * the asked frames at a fresh address (as privcmd does) so writes through it reach
 * fake_dm.guest. A frame beyond the guest or listed in fail_pfns maps nothing and sets its err
 * entry to -EFAULT. Every mapping is recorded: xenforeignmemory_unmap of anything but a live
 * mapping's exact address and size is counted in bad_unmaps and ignored.
 */
#ifndef SPLITXEN_TESTS_FAKE_XENDM_H
#define SPLITXEN_TESTS_FAKE_XENDM_H

#include <stdbool.h>
#include <stdint.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>

#define FAKE_DM_GUEST_PAGES (80u * 256)   /* 80 MiB: more than the mapcache's 64 buckets */
#define FAKE_DM_MAX_CALLS 32
#define FAKE_DM_MAX_MAPS 256
#define FAKE_DM_MAX_FAIL 8

struct fake_dm_range { int is_mmio; uint64_t start, end; bool map; };

struct fake_dm_state {
    /* Programmed. */
    int open_errno, create_errno, map_resource_errno, info_errno, irq_errno;
    uint32_t vp_eport_base;         /* vCPU v gets vp_eport_base + v when enabled */
    uint32_t bufioreq_port;
    unsigned nr_vcpus;
    xen_pfn_t fail_pfns[FAKE_DM_MAX_FAIL];   /* frames Xen refuses (holes, MMIO) */
    unsigned nfail;
    int map_errno;                  /* xenforeignmemory_map fails whole with this */

    /* Recorded. */
    int live_dm, live_fm, live_resources, live_maps;
    unsigned maps, unmaps, bad_unmaps;      /* xenforeignmemory_map / _unmap calls */
    size_t last_map_pages;
    int last_map_prot;
    struct { void *addr; size_t pages; } map[FAKE_DM_MAX_MAPS];   /* live, addr NULL: free */
    unsigned creates, destroys;
    uint32_t domid;
    int handle_bufioreq;
    int enabled;
    unsigned resource_type, resource_id;
    unsigned long resource_frame, resource_nr;
    struct fake_dm_range ranges[FAKE_DM_MAX_CALLS];
    unsigned nranges;
    uint32_t pcidev_sbdf[FAKE_DM_MAX_CALLS];
    unsigned npcidevs;
    int isa_irq, isa_level, intx_dev, intx_intx, intx_level;
    uint64_t msi_addr;
    uint32_t msi_data;

    /* The pages. */
    uint8_t *pages;                 /* 2 pages: buffered, then synchronous */
    uint8_t *guest;                 /* FAKE_DM_GUEST_PAGES pages */
    int guest_fd;                   /* the memfd behind it */
};

extern struct fake_dm_state fake_dm;

void fake_dm_reset(void);
void fake_dm_free(void);

#endif
