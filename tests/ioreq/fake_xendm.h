/*
 * Programmable stand-ins for the libxendevicemodel and libxenforeignmemory calls
 * xen-core/ioreq/ioreq_xen.c makes (real prototypes from <xendevicemodel.h> and
 * <xenforeignmemory.h>). The ioreq server's two pages are a private buffer; vp_eport values
 * appear in them only when the server is enabled, as on Xen. Guest memory is a buffer of
 * FAKE_DM_GUEST_PAGES pages; mapping a frame beyond it sets that frame's err entry.
 */
#ifndef SPLITXEN_TESTS_FAKE_XENDM_H
#define SPLITXEN_TESTS_FAKE_XENDM_H

#include <stdbool.h>
#include <stdint.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>

#define FAKE_DM_GUEST_PAGES 16
#define FAKE_DM_MAX_CALLS 32

struct fake_dm_range { int is_mmio; uint64_t start, end; bool map; };

struct fake_dm_state {
    /* Programmed. */
    int open_errno, create_errno, map_resource_errno, info_errno, irq_errno;
    uint32_t vp_eport_base;         /* vCPU v gets vp_eport_base + v when enabled */
    uint32_t bufioreq_port;
    unsigned nr_vcpus;

    /* Recorded. */
    int live_dm, live_fm, live_resources, live_maps;
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
};

extern struct fake_dm_state fake_dm;

void fake_dm_reset(void);
void fake_dm_free(void);

#endif
