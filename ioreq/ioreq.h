/*
 * ioreq: the device model's side of an HVM domain's device accesses (port I/O, MMIO, PCI
 * config), posted as Xen's ioreq_t (<xen/hvm/ioreq.h>) in one shared_iopage_t slot per vCPU
 * with the READY -> INPROCESS -> IORESP_READY handshake over a per-vCPU event channel, plus
 * the buffered_iopage_t ring for posted writes. One opaque handle (sx_ioreq), a sim and a xen
 * implementation behind it:
 *
 *   xen: an ioreq server created with libxendevicemodel, its pages mapped as a resource with
 *        xenforeignmemory_map_resource, ranges and PCI devices mapped to it, vp_eport of each
 *        vCPU bound with the evtchn module, IRQs through set_isa_irq_level / set_pci_intx_level
 *        / inject_msi, guest memory for DMA through xenforeignmemory_map behind a mapcache of
 *        1 MiB buckets (ioreq_xen.c), dropped on IOREQ_TYPE_INVALIDATE.
 *   sim: the pages are guest frames at a fixed place (like Xen's legacy HVM_PARAM_IOREQ_PFN
 *        pages): the top SX_IOREQ_SIM_FRAMES frames of the HVM domain's memory, reserved in its
 *        page allocator by whichever side opens first. The guest side (guest.c, a process acting
 *        as the HVM domain's vCPUs) allocates one unbound event channel per vCPU for the device
 *        model's domain (as Xen allocates vp_eport), writes it into vcpu_ioreq[v].vp_eport and
 *        the buffered/interrupt ports into the sim page, then bumps guest_gen; the server binds
 *        them when it sees a new generation (it looks on every step and on a 20 ms timer).
 *        Interrupt lines are a level bitmap in the sim page plus a notification on irq_port.
 *        Nothing in splitxen-core changes for any of this.
 *
 * Every ioreq field is guest-controlled: a slot is read once (state first, then the rest after
 * a read barrier) into a private copy and validated there (sx_ioreq_check): size in {1,2,4,8}
 * (8 for MMIO only), 1 <= count and count * size <= one page (count 1 for config space), every
 * device address the request covers inside its space without wrapping, and with data_is_ptr
 * every byte of guest memory it covers inside guest memory. A rep with DF set walks down: it
 * covers [addr - (count-1)*size, addr + size). A bad request is completed (reads return all
 * ones) and counted, so the vCPU never hangs and the server never crashes. A step does a bounded
 * amount of work (round robin over vCPUs); when the budget runs out, the fd stays readable.
 *
 * All calls return 0 (or a count) on success and -errno on failure.
 */
#ifndef SPLITXEN_IOREQ_H
#define SPLITXEN_IOREQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>

#include "platform/platform.h"

struct sx_ioreq;

/* One access, as the device handler sees it (one element of a rep is one access). */
struct sx_ioreq_access {
    uint64_t addr;      /* port, guest-physical MMIO address, or PCI: (SBDF << 32) | register */
    uint64_t data;      /* write: the value; read: the handler stores the result here */
    uint32_t size;      /* 1, 2, 4 or 8 */
    uint8_t type;       /* IOREQ_TYPE_PIO, IOREQ_TYPE_COPY (MMIO), IOREQ_TYPE_PCI_CONFIG */
    uint8_t dir;        /* IOREQ_READ or IOREQ_WRITE */
    uint16_t vcpu;
};

/* Called for every access inside a registered range (see sx_ioreq_map_range). For reads, the
 * handler sets a->data (pre-set to all ones). Never called concurrently for one server. */
typedef void (*sx_ioreq_handler_fn)(void *opaque, struct sx_ioreq_access *a);

enum sx_ioreq_space { SX_IOREQ_PORT = 0, SX_IOREQ_MMIO = 1 };

struct sx_ioreq_opts {
    domid_t domid;              /* the HVM domain served */
    unsigned nr_vcpus;          /* 1..SX_IOREQ_MAX_VCPUS (sim: the domain's vcpus if 0) */
    sx_ioreq_handler_fn handler;
    void *opaque;
    unsigned budget;            /* requests (sync + buffered) handled per step; 0: 256 */
};

#define SX_IOREQ_MAX_VCPUS 32u
#define SX_IOREQ_MAX_RANGES 64u
#define SX_IOREQ_MAX_PCIDEVS 64u
/* A rep with data_is_ptr moves at most one page (Xen clamps reps the same way). */
#define SX_IOREQ_MAX_REP_BYTES 4096u

/* Counters. The thread stepping the server writes them; another may read them while it runs (a
 * test waiting for the server, the device model's stats dump), so they are atomic: a locked
 * add on x86, a few nanoseconds beside a request's microseconds. */
struct sx_ioreq_stats {
    _Atomic uint64_t steps, handled, pio, mmio, pci_config, buffered, accesses;
    _Atomic uint64_t invalidate, timeoffset;
    _Atomic uint64_t bad_size, bad_count, bad_ptr, bad_type, bad_state, bad_buffered;
    _Atomic uint64_t bad_addr;         /* device addresses wrap or leave their space (port
                                        * > 0xffff) */
    _Atomic uint64_t unclaimed;        /* no registered range covers it: read ones, write
                                        * dropped */
    _Atomic uint64_t budget_exhausted; /* steps that stopped with work left */
    _Atomic uint64_t notify_errors, connects, irq_raises, irq_lowers, msis;
    _Atomic uint64_t dma_ok, dma_refused;
    /* xen's mapcache of guest memory (zero on sim; see ioreq_xen.c). */
    _Atomic uint64_t mapcache_hits;    /* dma_map served from a mapped bucket: no system call */
    _Atomic uint64_t mapcache_misses;  /* a bucket mapped (or tried) for a dma_map */
    _Atomic uint64_t mapcache_exact;   /* dma_map mapped exactly: across buckets, partial
                                        * bucket or every bucket in use */
    _Atomic uint64_t mapcache_partial; /* buckets found with frames Xen refuses (holes, MMIO) */
    _Atomic uint64_t mapcache_evictions;     /* idle buckets unmapped to make room */
    _Atomic uint64_t mapcache_invalidations; /* buckets dropped (or doomed) by
                                              * IOREQ_TYPE_INVALIDATE */
};

/* Open a server for opts->domid. sim: maps the domain (must be HVM), reserves its ioreq frames
 * and waits for the guest to publish its ports. xen: creates the ioreq server and maps its
 * pages; ranges are mapped next, then sx_ioreq_enable. */
int sx_ioreq_open(struct sx_ioreq **out, struct sx_plat *p, const struct sx_ioreq_opts *o);
/* NULL-safe; destroys the server (xen), unbinds every port. */
void sx_ioreq_close(struct sx_ioreq *r);
/* Pollable: readable when sx_ioreq_step has something to do. */
int sx_ioreq_fd(struct sx_ioreq *r);

/* Claim [start, end] (inclusive, as Xen's map_io_range). -EEXIST if it overlaps a claimed
 * range, -EINVAL if end < start, -ENOSPC when full. */
int sx_ioreq_map_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t start, uint64_t end);
/* Release exactly a range claimed before; -ENOENT otherwise. */
int sx_ioreq_unmap_range(struct sx_ioreq *r, enum sx_ioreq_space sp, uint64_t start,
                         uint64_t end);
/* Claim PCI config accesses of one function (IOREQ_TYPE_PCI_CONFIG requests). -EEXIST twice. */
int sx_ioreq_map_pcidev(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn);
int sx_ioreq_unmap_pcidev(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                          uint8_t fn);
/* Start serving (xen: set the server state, read vp_eports and bind them). */
int sx_ioreq_enable(struct sx_ioreq *r);

/* Handle pending requests: returns how many were completed (0: none), or -errno. Bounded by
 * opts->budget; when it stops with work left the fd stays readable. */
int sx_ioreq_step(struct sx_ioreq *r);
/* 1 if a request is waiting (a READY slot or buffered entries): shared-memory reads only, no
 * system call, for polling loops that spin before sleeping on the fd. */
int sx_ioreq_has_work(const struct sx_ioreq *r);
/* 1 while the domain lives, 0 once it is dying or gone, -errno if that cannot be told. */
int sx_ioreq_alive(struct sx_ioreq *r);
/* sim: 1 once the guest's ports are bound (xen: once enabled). */
int sx_ioreq_connected(struct sx_ioreq *r);
const struct sx_ioreq_stats *sx_ioreq_stats(const struct sx_ioreq *r);

/* Interrupts. An ISA IRQ (0..15) level; a PCI INTx (intx 0..3 = INTA..INTD) level; an MSI.
 * sim: lines are a level bitmap in the sim page (ISA irq n = line n, PCI INTx = line
 * sx_ioreq_pci_intx_gsi(dev, intx), Xen's routing), with a notification when one rises. */
int sx_ioreq_set_isa_irq(struct sx_ioreq *r, uint8_t irq, bool level);
int sx_ioreq_set_pci_intx(struct sx_ioreq *r, uint16_t seg, uint8_t bus, uint8_t dev,
                          uint8_t intx, bool level);
int sx_ioreq_inject_msi(struct sx_ioreq *r, uint64_t addr, uint32_t data);
/* Xen's hvm_pci_intx_gsi(): 16..47. */
static inline unsigned sx_ioreq_pci_intx_gsi(unsigned dev, unsigned intx)
{
    return ((((dev) << 2) + ((dev) >> 3) + (intx)) & 31) + 16;
}

/* Guest memory for device DMA. Every address and length comes from the guest: anything not
 * wholly inside guest memory (or overflowing) is -EFAULT and counted. len may be 0 (no-op). */
int sx_ioreq_dma_read(struct sx_ioreq *r, uint64_t gpa, void *buf, size_t len);
int sx_ioreq_dma_write(struct sx_ioreq *r, uint64_t gpa, const void *buf, size_t len);
/* Map [gpa, gpa+len) for direct access (len <= SX_IOREQ_DMA_MAP_MAX); NULL + errno on failure
 * (EFAULT outside memory). Pair with sx_ioreq_dma_unmap(r, ptr, len); on xen the mapping may
 * come from a cached bucket, which stays mapped while any mapping from it is not unmapped.
 * Not thread-safe: one thread (the device model's) maps and unmaps. */
#define SX_IOREQ_DMA_MAP_MAX (4u << 20)
void *sx_ioreq_dma_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable);
void sx_ioreq_dma_unmap(struct sx_ioreq *r, void *ptr, size_t len);

/* Validate one ioreq copy (exposed for tests and the guest side). 0, or
 *   -EPROTO    unknown type;
 *   -EINVAL    size not 1, 2, 4 or 8 (or 8 for port I/O or config space);
 *   -ERANGE    count 0, count * size over SX_IOREQ_MAX_REP_BYTES, a config space rep;
 *   -EOVERFLOW the device addresses covered wrap or leave their space: MMIO [lo, hi) within
 *              2^64, ports within 0..0xffff, config registers (addr's low 32 bits) within
 *              0..0xfff; an MMIO rep covers [addr - (count-1)*size, addr + size) with DF set,
 *              [addr, addr + count*size) without; ports and registers do not advance;
 *   -EFAULT    data_is_ptr memory (walked the same way) not wholly inside [0, mem_size).
 * mem_size UINT64_MAX: no bound known. */
int sx_ioreq_check(const ioreq_t *req, uint64_t mem_size);

/* ---------------- sim layout (both sides agree on it) ---------------- */

#define SX_IOREQ_SIM_FRAMES 3u
#define SX_IOREQ_SIM_MAGIC 0x51525853u     /* "SXRQ" */
#define SX_IOREQ_SIM_LINES 256u
#define SX_IOREQ_SIM_MSI_SLOTS 64u

/* The sim page (top frame): written by the guest side (ports, generation) and the server
 * (lines, MSIs). Not a Xen structure: on Xen these are hypercalls. */
struct sx_ioreq_sim_page {
    uint32_t magic;
    uint32_t version;
    _Atomic uint32_t guest_gen;     /* bumped (release) by the guest after publishing ports */
    uint32_t nr_vcpus;              /* the guest side's vCPU count */
    uint32_t bufioreq_port;         /* guest's port for buffered requests */
    uint32_t irq_port;              /* guest's port the server notifies on a rising line / MSI */
    _Atomic uint32_t dm_domid;      /* written by the server for information */
    uint32_t pad;
    _Atomic uint64_t irq_level[SX_IOREQ_SIM_LINES / 64];
    _Atomic uint32_t msi_prod, msi_cons;
    struct { uint64_t addr; uint32_t data, pad; } msi[SX_IOREQ_SIM_MSI_SLOTS];
};

/* Frames for a domain of nr_pages pages: ioreq page, buffered page, sim page. */
static inline uint64_t sx_ioreq_sim_ioreq_pfn(uint64_t nr_pages) { return nr_pages - 3; }
static inline uint64_t sx_ioreq_sim_bufioreq_pfn(uint64_t nr_pages) { return nr_pages - 2; }
static inline uint64_t sx_ioreq_sim_page_pfn(uint64_t nr_pages) { return nr_pages - 1; }

struct sxd_shared;
/* Mark the ioreq frames used in the domain's page allocator (idempotent). 0 or -errno. */
int sx_ioreq_sim_reserve(struct sxd_shared *sh);

/* ---------------- guest side (sim only): a process acting as the HVM domain ---------------- */

struct sx_ioreq_guest;

/* Open as the calling platform's own domain (must be HVM): reserve the ioreq frames, allocate
 * the ports for `dm_domid`, publish them. One event channel handle per vCPU, so each vCPU may
 * run in its own thread (a vCPU's calls must not run concurrently). */
int sx_ioreq_guest_open(struct sx_ioreq_guest **out, struct sx_plat *p, domid_t dm_domid);
void sx_ioreq_guest_close(struct sx_ioreq_guest *g);      /* NULL-safe */
unsigned sx_ioreq_guest_nr_vcpus(const struct sx_ioreq_guest *g);
/* Response timeout for every blocking call below (default 5000 ms). */
void sx_ioreq_guest_set_timeout(struct sx_ioreq_guest *g, int timeout_ms);

/* One access on vCPU `vcpu`: type IOREQ_TYPE_PIO or IOREQ_TYPE_COPY, size 1/2/4/8. For reads,
 * *data gets the result. -ETIMEDOUT if the device model does not answer. */
int sx_ioreq_guest_io(struct sx_ioreq_guest *g, unsigned vcpu, uint8_t type, uint8_t dir,
                      uint64_t addr, uint32_t size, uint64_t *data);
/* A rep (string) access moving count elements between addr and guest memory at gpa. */
int sx_ioreq_guest_rep(struct sx_ioreq_guest *g, unsigned vcpu, uint8_t type, uint8_t dir,
                       uint64_t addr, uint32_t size, uint32_t count, uint64_t gpa, bool df);
/* Post an arbitrary ioreq (tests: malformed ones) and, with resp non-NULL, wait for the
 * response and copy the slot back. Without resp it returns right after the notification. */
int sx_ioreq_guest_raw(struct sx_ioreq_guest *g, unsigned vcpu, const ioreq_t *req,
                       ioreq_t *resp);
/* A buffered (posted) write: no response. -EAGAIN when the ring is full. */
int sx_ioreq_guest_buffered(struct sx_ioreq_guest *g, uint8_t type, uint64_t addr,
                            uint32_t size, uint64_t data);

/* x86 instructions on vCPU 0. Reads return the value (all ones if it failed). */
int sx_ioreq_outb(struct sx_ioreq_guest *g, uint16_t port, uint8_t v);
int sx_ioreq_outw(struct sx_ioreq_guest *g, uint16_t port, uint16_t v);
int sx_ioreq_outl(struct sx_ioreq_guest *g, uint16_t port, uint32_t v);
uint8_t sx_ioreq_inb(struct sx_ioreq_guest *g, uint16_t port);
uint16_t sx_ioreq_inw(struct sx_ioreq_guest *g, uint16_t port);
uint32_t sx_ioreq_inl(struct sx_ioreq_guest *g, uint16_t port);
int sx_ioreq_mmio_write(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t size, uint64_t v);
int sx_ioreq_mmio_read(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t size, uint64_t *v);
/* PCI configuration mechanism #1 through 0xCF8/0xCFC, as a CPU does it. */
int sx_ioreq_pci_cfg_read(struct sx_ioreq_guest *g, uint8_t bus, uint8_t dev, uint8_t fn,
                          uint8_t reg, uint32_t size, uint32_t *v);
int sx_ioreq_pci_cfg_write(struct sx_ioreq_guest *g, uint8_t bus, uint8_t dev, uint8_t fn,
                           uint8_t reg, uint32_t size, uint32_t v);

/* Interrupts: a pollable fd (readable when a line rose or an MSI came), a wait, the levels. */
int sx_ioreq_guest_irq_fd(struct sx_ioreq_guest *g);
/* Wait up to timeout_ms for an interrupt notification: 1 got one, 0 timeout, -errno. */
int sx_ioreq_guest_irq_wait(struct sx_ioreq_guest *g, int timeout_ms);
bool sx_ioreq_guest_irq_level(struct sx_ioreq_guest *g, unsigned line);
/* Next MSI: 1 and the message, 0 when none. */
int sx_ioreq_guest_msi_pop(struct sx_ioreq_guest *g, uint64_t *addr, uint32_t *data);

/* DMA-visible guest memory: contiguous frames from the domain's own page allocator. */
int sx_ioreq_guest_mem_alloc(struct sx_ioreq_guest *g, uint32_t pages, uint64_t *gpa,
                             void **va);
void sx_ioreq_guest_mem_free(struct sx_ioreq_guest *g, uint64_t gpa, uint32_t pages);
/* The whole guest memory as this process maps it, and its size. */
uint8_t *sx_ioreq_guest_mem(struct sx_ioreq_guest *g, uint64_t *size);

#endif
