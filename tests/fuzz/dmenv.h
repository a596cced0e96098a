/*
 * Fuzz fixture for the emulated devices: an in-process sim core, an HVM domain (16 MiB), the
 * device model framework (device-model/dm.h) with its PCI host bridge, and the ioreq server that
 * gives the devices bounded DMA into the domain's memory; G_LEN bytes of that memory at G_BASE
 * are mapped here, where a harness lays out what the guest would (rings, descriptors, command
 * tables, buffers) from its input. The harness drives the device through the dispatcher
 * (sx_dm_read / sx_dm_write, PCI configuration), as the ioreq server would. Set up once per
 * process (LLVMFuzzerInitialize).
 */
#ifndef SPLITXEN_FUZZ_DMENV_H
#define SPLITXEN_FUZZ_DMENV_H

#include "tests/fuzz/fuzz.h"
#include "tests/simenv.h"
#include "device-model/dm.h"
#include "ioreq/ioreq.h"
#include "xen-core/core.h"

#define G_BASE 0x100000ull
#define G_LEN 0x40000ull

static struct simenv dm_env;
static struct sx_plat *dm_plat0;
static struct sx_dm *DM;
static struct sx_ioreq *DM_SRV;
static uint8_t *GMEM;              /* guest memory at G_BASE */

/* The core, the domain, the framework with its host bridge; the device is added by the caller
 * before dmenv_connect. Exits on failure (a harness cannot run without it). */
static inline void dmenv_open(void)
{
    setenv("SPLITXEN_LOG", "err", 1);
    if (simenv_start(&dm_env, false) < 0 || !(dm_plat0 = simenv_plat(&dm_env, 0)))
        abort();
    int d = sxc_domain_create(dm_plat0->conn, "fuzz-hvm", SXD_TYPE_HVM, 16, 1, false);
    if (d <= 0 || sx_dm_open(&DM, (domid_t)d) || sx_dm_pci_host_add(DM))
        abort();
}

/* The ioreq server for DMA, and the guest memory window. */
static inline void dmenv_connect(void)
{
    struct sx_ioreq_opts o = { .domid = sx_dm_domid(DM), .handler = sx_dm_ioreq_handler,
                               .opaque = DM };
    if (sx_ioreq_open(&DM_SRV, dm_plat0, &o) || sx_dm_set_ioreq(DM, DM_SRV))
        abort();
    if (!(GMEM = sx_ioreq_dma_map(DM_SRV, G_BASE, G_LEN, true)))
        abort();
}

static inline void cfg_wr(unsigned devfn, unsigned reg, uint32_t v, unsigned size)
{
    sx_dm_pci_cfg_write(DM, 0, (uint8_t)devfn, (uint16_t)reg, v, size);
}

#endif
