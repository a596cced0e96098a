/* ioreq internals shared by the common step (ioreq.c) and the sim and xen implementations. */
#ifndef SPLITXEN_IOREQ_IMPL_H
#define SPLITXEN_IOREQ_IMPL_H

#include "ioreq/ioreq.h"
#include "evtchn/evtchn.h"

struct sx_ioreq_range {
    uint8_t sp;
    uint64_t start, end;        /* inclusive */
};

struct sx_ioreq;

struct sx_ioreq_ops {
    const char *name;
    /* Set r->iopage / r->bufpage (may stay NULL until the guest shows up on sim) and
     * r->mem_size; may add fds to r->epfd. Unwinds itself on failure; close is called too. */
    int (*open)(struct sx_ioreq *r);
    void (*close)(struct sx_ioreq *r);
    int (*map_range)(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t s, uint64_t e, bool map);
    int (*map_pcidev)(struct sx_ioreq *r, uint32_t sbdf, bool map);
    int (*enable)(struct sx_ioreq *r);
    /* Called at the start of every step: sim (re)connects to the guest's ports. */
    int (*poll)(struct sx_ioreq *r);
    int (*isa_irq)(struct sx_ioreq *r, uint8_t irq, bool level);
    int (*pci_intx)(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t intx,
                    bool level);
    int (*msi)(struct sx_ioreq *r, uint64_t addr, uint32_t data);
    int (*alive)(struct sx_ioreq *r);
    /* Map/unmap a range already checked against r->mem_size. NULL + errno on failure. */
    void *(*dma_map)(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable);
    void (*dma_unmap)(struct sx_ioreq *r, void *ptr, size_t len);
    /* Optional (NULL on sim): the guest's physmap changed (IOREQ_TYPE_INVALIDATE); forget
     * every cached mapping of guest memory (at once if idle, at its last unmap if in use). */
    void (*invalidate)(struct sx_ioreq *r);
};

extern const struct sx_ioreq_ops sx_ioreq_sim_ops;
extern const struct sx_ioreq_ops sx_ioreq_xen_ops;

struct sx_ioreq {
    const struct sx_ioreq_ops *ops;
    void *priv;
    struct sx_plat *plat;
    domid_t domid;
    unsigned nr_vcpus, budget, rr;
    sx_ioreq_handler_fn handler;
    void *opaque;
    shared_iopage_t *iopage;        /* NULL while not connected */
    buffered_iopage_t *bufpage;     /* NULL without buffered requests */
    uint64_t mem_size;              /* bound for DMA and data_is_ptr; UINT64_MAX on xen */
    struct sx_evtchn *evt;
    int vcpu_port[SX_IOREQ_MAX_VCPUS];   /* local ports, -1 unbound */
    int buf_port;
    bool enabled;
    int epfd, kickfd;
    uint8_t last_bad_state[SX_IOREQ_MAX_VCPUS];
    struct sx_ioreq_range ranges[SX_IOREQ_MAX_RANGES];
    unsigned nranges;
    uint32_t pcidevs[SX_IOREQ_MAX_PCIDEVS];
    unsigned npcidevs;
    struct sx_ioreq_stats st;
};

/* Unbind every guest port (reconnect, close). */
void sx_ioreq_unbind_all(struct sx_ioreq *r);
/* Bind vCPU v's vp_eport / the buffered port of the served domain. 0 or -errno. */
int sx_ioreq_bind_vcpu(struct sx_ioreq *r, unsigned v, evtchn_port_t remote);
int sx_ioreq_bind_buf(struct sx_ioreq *r, evtchn_port_t remote);
/* Make the fd readable now (more work, or a reconnect). */
void sx_ioreq_kick(struct sx_ioreq *r);

#endif
