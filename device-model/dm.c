/*
 * Device model framework: device registry, port/MMIO dispatch, PCI bus 0 with config space,
 * BARs and INTx, the host bridge with configuration mechanism #1, bounded DMA, unplug, and
 * the event loop. See dm.h.
 */
#define SX_LOG_MODULE "dm"
#include "device-model/dm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "barrier.h"

#define MAX_REGIONS 64
#define MAX_WATCHES 32
#define NO_ADDR UINT64_MAX

/* Standard header registers (PCI Local Bus 3.0, type 0). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define CMD_IO 0x1u
#define CMD_MEM 0x2u
#define CMD_MASTER 0x4u
#define CMD_PARITY 0x40u
#define CMD_SERR 0x100u
#define CMD_INTX_DISABLE 0x400u
#define STATUS_INTERRUPT 0x8u

struct region {
    struct sx_dm_dev *owner;
    uint8_t sp;
    uint64_t base, len;
    const struct sx_dm_io_ops *ops;
    void *opaque;
};

struct bar {
    uint64_t size;          /* 0: not implemented */
    unsigned flags;
    bool upper;             /* the high dword of the 64-bit BAR below */
    const struct sx_dm_io_ops *ops;
    void *opaque;
    uint64_t mapped;        /* NO_ADDR when not decoding */
};

struct sx_pci {
    struct sx_dm *dm;
    struct sx_dm_dev *dev;
    uint8_t devfn;
    uint8_t config[256], wmask[256], w1cmask[256];
    struct bar bar[6];
    struct sx_pci_info info;
    bool irq_level;         /* what the device asks for */
    bool irq_out;           /* what was last passed on */
};

struct sx_dm_dev {
    struct sx_dm *dm;
    const struct sx_dm_dev_ops *ops;
    void *opaque;
    struct sx_pci *pci;
    uint16_t isa_levels;    /* ISA lines this device asserts */
    struct sx_dm_dev *next;
};

struct watch {
    int fd;
    sx_dm_fd_fn fn;
    void *opaque;
};

struct sx_dm {
    domid_t domid;
    struct sx_ioreq *r;
    struct sx_dm_dev *devs;
    unsigned ndevs;
    struct region regions[MAX_REGIONS];
    unsigned nregions;
    struct sx_pci *pci[256];
    uint32_t cf8;
    uint8_t isa_count[16];
    int epfd;
    unsigned spin_us;
    unsigned first_slot;     /* where devices without a devfn start */
    struct watch watches[MAX_WATCHES];
    struct sx_dm_stats st;
};

static uint64_t ones(unsigned size) { return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1; }

/* ---------------- dm ---------------- */

int sx_dm_open(struct sx_dm **out, domid_t domid)
{
    struct sx_dm *dm = calloc(1, sizeof(*dm));
    if (!dm)
        return -ENOMEM;
    dm->domid = domid;
    dm->spin_us = 20;
    dm->first_slot = 1;
    for (unsigned i = 0; i < MAX_WATCHES; i++)
        dm->watches[i].fd = -1;
    dm->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (dm->epfd < 0) {
        int rc = -errno;
        free(dm);
        return rc;
    }
    *out = dm;
    return 0;
}

void sx_dm_close(struct sx_dm *dm)
{
    if (!dm)
        return;
    while (dm->devs)
        sx_dm_dev_remove(dm->devs);
    if (dm->epfd >= 0)
        close(dm->epfd);
    free(dm);
}

domid_t sx_dm_domid(const struct sx_dm *dm) { return dm->domid; }
const struct sx_dm_stats *sx_dm_stats(const struct sx_dm *dm) { return &dm->st; }
struct sx_ioreq *sx_dm_ioreq(struct sx_dm *dm) { return dm->r; }
unsigned sx_dm_nr_devices(const struct sx_dm *dm) { return dm->ndevs; }

static int claim_range(struct sx_dm *dm, uint8_t sp, uint64_t base, uint64_t len, bool map)
{
    if (!dm->r)
        return 0;
    return map ? sx_ioreq_map_range(dm->r, sp, base, base + len - 1)
               : sx_ioreq_unmap_range(dm->r, sp, base, base + len - 1);
}

static int claim_pci(struct sx_dm *dm, uint8_t devfn, bool map)
{
    if (!dm->r)
        return 0;
    return map ? sx_ioreq_map_pcidev(dm->r, 0, 0, devfn >> 3, devfn & 7)
               : sx_ioreq_unmap_pcidev(dm->r, 0, 0, devfn >> 3, devfn & 7);
}

static void bars_update(struct sx_pci *pd);

int sx_dm_set_ioreq(struct sx_dm *dm, struct sx_ioreq *r)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
    if (!dm)
        return r ? -EINVAL : 0;   /* teardown of a device model never opened */
    if (dm->r)
        epoll_ctl(dm->epfd, EPOLL_CTL_DEL, sx_ioreq_fd(dm->r), NULL);
    dm->r = r;
    if (!r)
        return 0;
    if (epoll_ctl(dm->epfd, EPOLL_CTL_ADD, sx_ioreq_fd(r), &ev) < 0)
        return -errno;
    int rc = 0;
    for (unsigned i = 0; i < dm->nregions && rc == 0; i++)
        rc = claim_range(dm, dm->regions[i].sp, dm->regions[i].base, dm->regions[i].len, true);
    for (unsigned d = 0; d < 256 && rc == 0; d++)
        if (dm->pci[d]) {
            rc = claim_pci(dm, (uint8_t)d, true);
            /* BARs decoding already are claimed as they are placed. */
            for (unsigned b = 0; b < 6; b++)
                dm->pci[d]->bar[b].mapped = NO_ADDR;
            bars_update(dm->pci[d]);
        }
    return rc;
}

/* ---------------- dispatch ---------------- */

static bool inside(uint64_t addr, unsigned size, uint64_t base, uint64_t len)
{
    return addr >= base && addr - base < len && size <= len - (addr - base);
}

static uint64_t pci_cfg_access(struct sx_dm *dm, uint64_t addr, unsigned size, bool write,
                               uint64_t val)
{
    uint32_t sbdf = (uint32_t)(addr >> 32);
    uint16_t reg = addr & 0xfff;
    if (sbdf >> 16) {   /* segment 0 only */
        dm->st.pci_cfg_absent++;
        return ones(size);
    }
    if (write) {
        sx_dm_pci_cfg_write(dm, (uint8_t)(sbdf >> 8), (uint8_t)sbdf, reg, (uint32_t)val, size);
        return 0;
    }
    return sx_dm_pci_cfg_read(dm, (uint8_t)(sbdf >> 8), (uint8_t)sbdf, reg, size);
}

static uint64_t dm_access(struct sx_dm *dm, uint8_t type, uint64_t addr, unsigned size, bool write,
                       uint64_t val)
{
    dm->st.accesses++;
    if (type == IOREQ_TYPE_PCI_CONFIG)
        return pci_cfg_access(dm, addr, size, write, val);
    uint8_t sp = type == IOREQ_TYPE_PIO ? SX_IOREQ_PORT : SX_IOREQ_MMIO;
    const struct sx_dm_io_ops *ops = NULL;
    void *opaque = NULL;
    uint64_t off = 0;
    for (unsigned i = 0; i < dm->nregions && !ops; i++) {
        struct region *g = &dm->regions[i];
        if (g->sp == sp && inside(addr, size, g->base, g->len)) {
            ops = g->ops;
            opaque = g->opaque;
            off = addr - g->base;
        }
    }
    /* BARs: walk the (few) devices rather than all 256 functions; this is the MMIO hot path. */
    for (struct sx_dm_dev *dv = dm->devs; dv && !ops; dv = dv->next) {
        struct sx_pci *pd = dv->pci;
        if (!pd)
            continue;
        for (unsigned b = 0; b < 6; b++) {
            struct bar *br = &pd->bar[b];
            if (br->size && !br->upper && br->mapped != NO_ADDR &&
                (br->flags & SX_PCI_BAR_IO ? SX_IOREQ_PORT : SX_IOREQ_MMIO) == sp &&
                inside(addr, size, br->mapped, br->size)) {
                ops = br->ops;
                opaque = br->opaque;
                off = addr - br->mapped;
                break;
            }
        }
    }
    if (!ops) {
        dm->st.unclaimed++;
        sx_log_ratelimited(SX_LOG_DEBUG, "dom%u: unclaimed %s %s %#" PRIx64 "/%u", dm->domid,
                           sp == SX_IOREQ_PORT ? "port" : "mmio", write ? "write" : "read",
                           addr, size);
        return ones(size);
    }
    if (write) {
        if (ops->write)
            ops->write(opaque, off, val & ones(size), size);
        return 0;
    }
    return ops->read ? ops->read(opaque, off, size) & ones(size) : ones(size);
}

void sx_dm_ioreq_handler(void *opaque, struct sx_ioreq_access *a)
{
    struct sx_dm *dm = opaque;
    if (a->dir == IOREQ_WRITE)
        dm_access(dm, a->type, a->addr, a->size, true, a->data);
    else
        a->data = dm_access(dm, a->type, a->addr, a->size, false, 0);
}

uint64_t sx_dm_read(struct sx_dm *dm, uint8_t type, uint64_t addr, unsigned size)
{
    return dm_access(dm, type, addr, size, false, 0);
}

void sx_dm_write(struct sx_dm *dm, uint8_t type, uint64_t addr, uint64_t val, unsigned size)
{
    dm_access(dm, type, addr, size, true, val);
}

/* ---------------- devices ---------------- */

int sx_dm_dev_add(struct sx_dm *dm, const struct sx_dm_dev_ops *ops, void *opaque,
                  struct sx_dm_dev **out)
{
    if (!dm || !ops || !ops->name)
        return -EINVAL;
    struct sx_dm_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    dev->dm = dm;
    dev->ops = ops;
    dev->opaque = opaque;
    /* Append: devices are removed in creation order at close. */
    struct sx_dm_dev **pp = &dm->devs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = dev;
    dm->ndevs++;
    if (out)
        *out = dev;
    return 0;
}

struct sx_dm_dev *sx_dm_dev_find(struct sx_dm *dm, const char *name)
{
    for (struct sx_dm_dev *d = dm->devs; d; d = d->next)
        if (!strcmp(d->ops->name, name))
            return d;
    return NULL;
}

static void pci_remove(struct sx_pci *pd);

void sx_dm_dev_remove(struct sx_dm_dev *dev)
{
    if (!dev)
        return;
    struct sx_dm *dm = dev->dm;
    for (uint8_t irq = 0; irq < 16; irq++)
        if (dev->isa_levels & (1u << irq))
            sx_dm_dev_set_isa_irq(dev, irq, false);
    if (dev->pci)
        pci_remove(dev->pci);
    for (unsigned i = 0; i < dm->nregions;) {
        struct region *g = &dm->regions[i];
        if (g->owner == dev) {
            claim_range(dm, g->sp, g->base, g->len, false);
            *g = dm->regions[--dm->nregions];
        } else {
            i++;
        }
    }
    for (struct sx_dm_dev **pp = &dm->devs; *pp; pp = &(*pp)->next)
        if (*pp == dev) {
            *pp = dev->next;
            break;
        }
    dm->ndevs--;
    if (dev->ops->destroy)
        dev->ops->destroy(dev->opaque);
    free(dev);
}

int sx_dm_unplug(struct sx_dm *dm, unsigned mask)
{
    dm->st.unplug_requests++;
    int n = 0;
    struct sx_dm_dev *d = dm->devs;
    while (d) {
        struct sx_dm_dev *next = d->next;
        if (d->ops->unplug_mask & mask) {
            sx_info("dom%u: unplugging %s", dm->domid, d->ops->name);
            if (d->ops->unplug)
                d->ops->unplug(d->opaque);
            sx_dm_dev_remove(d);
            dm->st.devices_unplugged++;
            n++;
        }
        d = next;
    }
    return n;
}

int sx_dm_dev_region(struct sx_dm_dev *dev, enum sx_ioreq_space sp, uint64_t base, uint64_t len,
                     const struct sx_dm_io_ops *ops, void *opaque)
{
    struct sx_dm *dm = dev->dm;
    if (len == 0 || base + len - 1 < base || !ops ||
        (sp == SX_IOREQ_PORT && base + len - 1 > 0xffff))
        return -EINVAL;
    for (unsigned i = 0; i < dm->nregions; i++) {
        struct region *g = &dm->regions[i];
        if (g->sp == sp && base <= g->base + g->len - 1 && g->base <= base + len - 1)
            return -EEXIST;
    }
    if (dm->nregions == MAX_REGIONS)
        return -ENOSPC;
    int rc = claim_range(dm, sp, base, len, true);
    if (rc < 0)
        return rc;
    dm->regions[dm->nregions++] = (struct region){ .owner = dev, .sp = sp, .base = base,
                                                   .len = len, .ops = ops, .opaque = opaque };
    return 0;
}

int sx_dm_dev_set_isa_irq(struct sx_dm_dev *dev, uint8_t irq, bool level)
{
    if (irq > 15)
        return -EINVAL;
    struct sx_dm *dm = dev->dm;
    uint16_t bit = (uint16_t)(1u << irq);
    if (!!(dev->isa_levels & bit) == level)
        return 0;
    dev->isa_levels = level ? dev->isa_levels | bit : dev->isa_levels & ~bit;
    /* Lines are shared: the line is high while any device asserts it. */
    bool was = dm->isa_count[irq] > 0;
    dm->isa_count[irq] = (uint8_t)(dm->isa_count[irq] + (level ? 1 : -1));
    bool now = dm->isa_count[irq] > 0;
    if (was == now || !dm->r)
        return 0;
    int rc = sx_ioreq_set_isa_irq(dm->r, irq, now);
    if (rc < 0)
        dm->st.irq_errors++;
    return rc;
}

/* ---------------- PCI ---------------- */

static void put16(uint8_t *c, unsigned reg, uint16_t v) { c[reg] = (uint8_t)v; c[reg + 1] = (uint8_t)(v >> 8); }
static uint16_t get16(const uint8_t *c, unsigned reg) { return (uint16_t)(c[reg] | c[reg + 1] << 8); }
static uint32_t get32(const uint8_t *c, unsigned reg)
{
    return (uint32_t)c[reg] | (uint32_t)c[reg + 1] << 8 | (uint32_t)c[reg + 2] << 16 |
           (uint32_t)c[reg + 3] << 24;
}
static void put32(uint8_t *c, unsigned reg, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        c[reg + i] = (uint8_t)(v >> (8 * i));
}

void sx_pci_set_wmask(struct sx_pci *pd, uint8_t reg, unsigned len, uint8_t mask)
{
    for (unsigned i = 0; i < len && reg + i < 256; i++)
        pd->wmask[reg + i] = mask;
}

uint8_t *sx_pci_config(struct sx_pci *pd) { return pd->config; }
uint8_t sx_pci_devfn(const struct sx_pci *pd) { return pd->devfn; }

uint64_t sx_pci_bar_addr(const struct sx_pci *pd, unsigned n)
{
    return n < 6 ? pd->bar[n].mapped : NO_ADDR;
}

int sx_pci_add(struct sx_dm_dev *dev, const struct sx_pci_info *info, struct sx_pci **out)
{
    struct sx_dm *dm = dev->dm;
    if (!info || dev->pci || info->irq_pin > 4 || info->devfn > 255)
        return -EINVAL;
    int devfn = info->devfn;
    if (devfn < 0) {
        for (int slot = (int)dm->first_slot; slot < 32 && devfn < 0; slot++)
            if (!dm->pci[slot << 3])
                devfn = slot << 3;
        if (devfn < 0)
            return -ENOSPC;
    }
    if (dm->pci[devfn])
        return -EEXIST;
    struct sx_pci *pd = calloc(1, sizeof(*pd));
    if (!pd)
        return -ENOMEM;
    pd->dm = dm;
    pd->dev = dev;
    pd->devfn = (uint8_t)devfn;
    pd->info = *info;
    for (unsigned b = 0; b < 6; b++)
        pd->bar[b].mapped = NO_ADDR;
    uint8_t *c = pd->config;
    put16(c, PCI_VENDOR_ID, info->vendor);
    put16(c, PCI_DEVICE_ID, info->device);
    c[PCI_REVISION] = info->revision;
    c[PCI_CLASS_PROG] = (uint8_t)info->class_code;
    c[PCI_CLASS_PROG + 1] = (uint8_t)(info->class_code >> 8);
    c[PCI_CLASS_PROG + 2] = (uint8_t)(info->class_code >> 16);
    c[PCI_HEADER_TYPE] = info->header_type & 0x7f;
    put16(c, PCI_SUBSYS_VENDOR, info->subsys_vendor);
    put16(c, PCI_SUBSYS_ID, info->subsys_id);
    c[PCI_INTERRUPT_PIN] = info->irq_pin;
    if (info->irq_pin)
        c[PCI_INTERRUPT_LINE] = (uint8_t)sx_ioreq_pci_intx_gsi((unsigned)devfn >> 3,
                                                               info->irq_pin - 1u);
    put16(pd->wmask, PCI_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER | CMD_PARITY | CMD_SERR |
                                  CMD_INTX_DISABLE);
    /* STATUS: error bits are write-one-to-clear. */
    pd->w1cmask[PCI_STATUS + 1] = 0xf9;
    pd->wmask[PCI_INTERRUPT_LINE] = 0xff;
    pd->wmask[0x0c] = 0xff;   /* cache line size */
    pd->wmask[0x0d] = 0xff;   /* latency timer */
    int rc = claim_pci(dm, (uint8_t)devfn, true);
    if (rc < 0) {
        free(pd);
        return rc;
    }
    dm->pci[devfn] = pd;
    /* Function 0 says multi-function when there are others in its slot. */
    int f0 = devfn & ~7;
    for (int f = 1; f < 8; f++)
        if (dm->pci[f0 + f] && dm->pci[f0])
            dm->pci[f0]->config[PCI_HEADER_TYPE] |= 0x80;
    dev->pci = pd;
    if (out)
        *out = pd;
    return 0;
}

int sx_pci_bar(struct sx_pci *pd, unsigned n, uint64_t size, unsigned flags,
               const struct sx_dm_io_ops *ops, void *opaque)
{
    bool io = flags & SX_PCI_BAR_IO, b64 = !io && (flags & SX_PCI_BAR_MEM64);
    if (n > 5 || (b64 && n > 4) || !ops || size == 0 || (size & (size - 1)) ||
        (io && (size < 4 || size > 256)) || (!io && size < 16) || (!b64 && !io && size > (1ull << 31)) ||
        pd->bar[n].size || pd->bar[n].upper || (b64 && (pd->bar[n + 1].size || pd->bar[n + 1].upper)))
        return -EINVAL;
    struct bar *b = &pd->bar[n];
    b->size = size;
    b->flags = flags;
    b->ops = ops;
    b->opaque = opaque;
    b->mapped = NO_ADDR;
    unsigned reg = PCI_BAR0 + 4 * n;
    uint64_t mask = ~(size - 1);
    if (io) {
        put32(pd->config, reg, 0x1);
        put32(pd->wmask, reg, (uint32_t)mask & 0xfffffffcu);
    } else {
        uint32_t low = (b64 ? 0x4u : 0) | (flags & SX_PCI_BAR_PREFETCH ? 0x8u : 0);
        put32(pd->config, reg, low);
        put32(pd->wmask, reg, (uint32_t)mask & 0xfffffff0u);
        if (b64) {
            pd->bar[n + 1].upper = true;
            put32(pd->wmask, reg + 4, (uint32_t)(mask >> 32));
        }
    }
    return 0;
}

/* The address BAR n decodes at, or NO_ADDR. */
static uint64_t bar_decode(const struct sx_pci *pd, unsigned n)
{
    const struct bar *b = &pd->bar[n];
    uint16_t cmd = get16(pd->config, PCI_COMMAND);
    unsigned reg = PCI_BAR0 + 4 * n;
    uint64_t addr;
    if (b->flags & SX_PCI_BAR_IO) {
        if (!(cmd & CMD_IO))
            return NO_ADDR;
        addr = get32(pd->config, reg) & ~(uint32_t)3 & ~(uint32_t)(b->size - 1);
        if (addr + b->size - 1 > 0xffff)
            return NO_ADDR;
    } else {
        if (!(cmd & CMD_MEM))
            return NO_ADDR;
        addr = get32(pd->config, reg) & ~(uint32_t)0xf;
        if (b->flags & SX_PCI_BAR_MEM64)
            addr |= (uint64_t)get32(pd->config, reg + 4) << 32;
        addr &= ~(b->size - 1);
        if (addr + b->size - 1 < addr)
            return NO_ADDR;
    }
    return addr == 0 ? NO_ADDR : addr;   /* 0: not placed (as QEMU treats it) */
}

static void bars_update(struct sx_pci *pd)
{
    struct sx_dm *dm = pd->dm;
    for (unsigned n = 0; n < 6; n++) {
        struct bar *b = &pd->bar[n];
        if (!b->size || b->upper)
            continue;
        uint64_t want = bar_decode(pd, n);
        if (want == b->mapped)
            continue;
        uint8_t sp = b->flags & SX_PCI_BAR_IO ? SX_IOREQ_PORT : SX_IOREQ_MMIO;
        if (b->mapped != NO_ADDR) {
            claim_range(dm, sp, b->mapped, b->size, false);
            dm->st.bar_unmaps++;
            b->mapped = NO_ADDR;
        }
        if (want == NO_ADDR)
            continue;
        int rc = claim_range(dm, sp, want, b->size, true);
        if (rc < 0) {
            /* Overlaps something else: the BAR does not decode (counted, guest's problem). */
            dm->st.bar_conflicts++;
            sx_log_ratelimited(SX_LOG_WARN, "dom%u: %02x.%u BAR%u at %#" PRIx64 ": %d", dm->domid,
                               pd->devfn >> 3, pd->devfn & 7, n, want, rc);
            continue;
        }
        b->mapped = want;
        dm->st.bar_maps++;
    }
}

static void irq_update(struct sx_pci *pd)
{
    struct sx_dm *dm = pd->dm;
    uint16_t cmd = get16(pd->config, PCI_COMMAND);
    bool out = pd->irq_level && !(cmd & CMD_INTX_DISABLE) && pd->info.irq_pin;
    uint16_t st = get16(pd->config, PCI_STATUS);
    put16(pd->config, PCI_STATUS, pd->irq_level ? st | STATUS_INTERRUPT : st & ~STATUS_INTERRUPT);
    if (out == pd->irq_out)
        return;
    pd->irq_out = out;
    if (!dm->r)
        return;
    if (sx_ioreq_set_pci_intx(dm->r, 0, 0, pd->devfn >> 3, pd->info.irq_pin - 1u, out) < 0)
        dm->st.irq_errors++;
}

int sx_pci_set_irq(struct sx_pci *pd, bool level)
{
    if (!pd->info.irq_pin)
        return -EINVAL;
    pd->irq_level = level;
    irq_update(pd);
    return 0;
}

static void pci_remove(struct sx_pci *pd)
{
    struct sx_dm *dm = pd->dm;
    pd->irq_level = false;
    if (pd->info.irq_pin)
        irq_update(pd);
    put16(pd->config, PCI_COMMAND, 0);
    bars_update(pd);
    claim_pci(dm, pd->devfn, false);
    dm->pci[pd->devfn] = NULL;
    pd->dev->pci = NULL;
    free(pd);
}

uint32_t sx_dm_pci_cfg_read(struct sx_dm *dm, uint8_t bus, uint8_t devfn, uint16_t reg,
                            unsigned size)
{
    dm->st.pci_cfg_reads++;
    struct sx_pci *pd = bus == 0 ? dm->pci[devfn] : NULL;
    if (!pd) {
        dm->st.pci_cfg_absent++;
        return (uint32_t)ones(size > 4 ? 4 : size);
    }
    if ((size != 1 && size != 2 && size != 4) || reg + size > 256)
        return reg >= 256 && size <= 4 && reg + size <= 4096 ? 0 : (uint32_t)ones(4);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)pd->config[reg + i] << (8 * i);
    if (pd->info.config_read)
        v = pd->info.config_read(pd->info.opaque, pd, (uint8_t)reg, v, size);
    return v;
}

void sx_dm_pci_cfg_write(struct sx_dm *dm, uint8_t bus, uint8_t devfn, uint16_t reg,
                         uint32_t val, unsigned size)
{
    dm->st.pci_cfg_writes++;
    struct sx_pci *pd = bus == 0 ? dm->pci[devfn] : NULL;
    if (!pd) {
        dm->st.pci_cfg_absent++;
        return;
    }
    if ((size != 1 && size != 2 && size != 4) || reg + size > 256)
        return;
    for (unsigned i = 0; i < size; i++) {
        unsigned r = reg + i;
        uint8_t b = (uint8_t)(val >> (8 * i));
        pd->config[r] &= (uint8_t)~(b & pd->w1cmask[r]);
        pd->config[r] = (uint8_t)((pd->config[r] & ~pd->wmask[r]) | (b & pd->wmask[r]));
    }
    unsigned end = reg + size;
    if (reg < PCI_COMMAND + 2 && end > PCI_COMMAND) {
        bars_update(pd);
        irq_update(pd);
    } else if (reg < PCI_BAR0 + 24 && end > PCI_BAR0) {
        bars_update(pd);
    }
    if (pd->info.config_write)
        pd->info.config_write(pd->info.opaque, pd, (uint8_t)reg, val, size);
}

int sx_pci_dma_read(struct sx_pci *pd, uint64_t gpa, void *buf, size_t len)
{
    struct sx_dm *dm = pd->dm;
    if (!(get16(pd->config, PCI_COMMAND) & CMD_MASTER)) {
        dm->st.dma_no_master++;
        return -EPERM;
    }
    if (!dm->r)
        return -ENODEV;
    int rc = sx_ioreq_dma_read(dm->r, gpa, buf, len);
    if (rc < 0)
        dm->st.dma_refused++;
    return rc;
}

int sx_pci_dma_write(struct sx_pci *pd, uint64_t gpa, const void *buf, size_t len)
{
    struct sx_dm *dm = pd->dm;
    if (!(get16(pd->config, PCI_COMMAND) & CMD_MASTER)) {
        dm->st.dma_no_master++;
        return -EPERM;
    }
    if (!dm->r)
        return -ENODEV;
    int rc = sx_ioreq_dma_write(dm->r, gpa, buf, len);
    if (rc < 0)
        dm->st.dma_refused++;
    return rc;
}

void *sx_pci_dma_map(struct sx_pci *pd, uint64_t gpa, size_t len, bool writable)
{
    struct sx_dm *dm = pd->dm;
    if (!(get16(pd->config, PCI_COMMAND) & CMD_MASTER)) {
        dm->st.dma_no_master++;
        errno = EPERM;
        return NULL;
    }
    if (!dm->r) {
        errno = ENODEV;
        return NULL;
    }
    void *p = sx_ioreq_dma_map(dm->r, gpa, len, writable);
    if (!p)
        dm->st.dma_refused++;
    return p;
}

void sx_pci_dma_unmap(struct sx_pci *pd, void *ptr, size_t len)
{
    if (pd->dm->r)
        sx_ioreq_dma_unmap(pd->dm->r, ptr, len);
}

int sx_pci_msi(struct sx_pci *pd, uint64_t addr, uint32_t data)
{
    if (!pd->dm->r)
        return -ENODEV;
    int rc = sx_ioreq_inject_msi(pd->dm->r, addr, data);
    if (rc < 0)
        pd->dm->st.irq_errors++;
    return rc;
}

/* ---------------- host bridge ---------------- */

static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_dm *dm = opaque;
    if (off < 4)   /* the address register is dword-only; byte 0xCF9 is reset control */
        return off == 0 && size == 4 ? dm->cf8 : ones(size);
    unsigned boff = (unsigned)off - 4;
    if (!(dm->cf8 & 0x80000000u) || boff + size > 4)
        return ones(size);
    return sx_dm_pci_cfg_read(dm, (uint8_t)(dm->cf8 >> 16), (uint8_t)(dm->cf8 >> 8),
                              (uint16_t)((dm->cf8 & 0xfc) + boff), size);
}

static void cf8_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_dm *dm = opaque;
    if (off < 4) {
        if (off == 0 && size == 4)
            dm->cf8 = (uint32_t)val & 0x80fffffcu;
        return;
    }
    unsigned boff = (unsigned)off - 4;
    if (!(dm->cf8 & 0x80000000u) || boff + size > 4)
        return;
    sx_dm_pci_cfg_write(dm, (uint8_t)(dm->cf8 >> 16), (uint8_t)(dm->cf8 >> 8),
                        (uint16_t)((dm->cf8 & 0xfc) + boff), (uint32_t)val, size);
}

static const struct sx_dm_io_ops cf8_ops = { .read = cf8_read, .write = cf8_write };
static const struct sx_dm_dev_ops host_ops = { .name = "pci-host" };

int sx_dm_pci_host_add(struct sx_dm *dm)
{
    struct sx_dm_dev *dev;
    int rc = sx_dm_dev_add(dm, &host_ops, dm, &dev);
    if (rc < 0)
        return rc;
    struct sx_pci_info info = {
        .devfn = 0, .vendor = 0x8086, .device = 0x1237, .class_code = 0x060000,
        .revision = 0x02, .subsys_vendor = 0x5853, .subsys_id = 0x0001,
    };
    rc = sx_pci_add(dev, &info, NULL);
    if (rc == 0)
        rc = sx_dm_dev_region(dev, SX_IOREQ_PORT, 0xcf8, 8, &cf8_ops, dm);
    if (rc < 0)
        sx_dm_dev_remove(dev);
    return rc;
}

/* ---------------- event loop ---------------- */

int sx_dm_watch_fd(struct sx_dm *dm, int fd, uint32_t events, sx_dm_fd_fn fn, void *opaque)
{
    if (fd < 0 || !fn)
        return -EINVAL;
    for (unsigned i = 0; i < MAX_WATCHES; i++)
        if (dm->watches[i].fd < 0) {
            struct epoll_event ev = { .events = events, .data.u32 = i + 1 };
            if (epoll_ctl(dm->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
            dm->watches[i] = (struct watch){ .fd = fd, .fn = fn, .opaque = opaque };
            return 0;
        }
    return -ENOSPC;
}

int sx_dm_unwatch_fd(struct sx_dm *dm, int fd)
{
    for (unsigned i = 0; i < MAX_WATCHES; i++)
        if (dm->watches[i].fd == fd) {
            epoll_ctl(dm->epfd, EPOLL_CTL_DEL, fd, NULL);
            dm->watches[i].fd = -1;
            return 0;
        }
    return -ENOENT;
}

/* Serve whatever arrives within spin_us of the last request (shared-memory polling). Bounded:
 * a guest that keeps posting must not keep us from the other fds or from *stop, so after
 * SPIN_MAX_STEPS steps or 10 x spin_us we go back to epoll (which returns at once if more is
 * pending). */
#define SPIN_MAX_STEPS 64
static int spin(struct sx_dm *dm)
{
    int64_t start = (int64_t)sx_now_us(), end = start + dm->spin_us;
    int64_t hard_end = start + 10 * dm->spin_us;
    unsigned steps = 0;
    while ((int64_t)sx_now_us() < end && steps < SPIN_MAX_STEPS) {
        for (int i = 0; i < 64; i++) {
            if (sx_ioreq_has_work(dm->r)) {
                int rc = sx_ioreq_step(dm->r);
                if (rc < 0)
                    return rc;
                dm->st.spin_hits++;
                steps++;
                int64_t t = (int64_t)sx_now_us() + dm->spin_us;
                end = t < hard_end ? t : hard_end;
                break;
            }
            sx_cpu_relax();
        }
    }
    return 0;
}

void sx_dm_set_spin(struct sx_dm *dm, unsigned us) { dm->spin_us = us > 10000 ? 10000 : us; }

int sx_dm_set_first_slot(struct sx_dm *dm, unsigned slot)
{
    if (slot < 1 || slot > 31)
        return -EINVAL;
    dm->first_slot = slot;
    return 0;
}

int sx_dm_run(struct sx_dm *dm, atomic_int *stop)
{
    if (!dm->r)
        return -EINVAL;
    time_t last_alive = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        struct epoll_event evs[16];
        int n = epoll_wait(dm->epfd, evs, 16, 200);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == 0) {
                int rc = sx_ioreq_step(dm->r);
                if (rc < 0)
                    return rc;
                /* A vCPU that was just answered often comes back at once (register
                 * sequences): poll the slots for a while before sleeping again. */
                if (rc > 0 && dm->spin_us > 0 && (rc = spin(dm)) < 0)
                    return rc;
            } else if (id <= MAX_WATCHES && dm->watches[id - 1].fd >= 0) {
                dm->watches[id - 1].fn(dm->watches[id - 1].opaque, evs[i].events);
            }
        }
        /* Is the domain still there? Once a second: on Xen this is a hypercall. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec != last_alive) {
            last_alive = now.tv_sec;
            if (sx_ioreq_alive(dm->r) == 0) {
                sx_info("dom%u is gone", dm->domid);
                return 0;
            }
        }
    }
    return 0;
}
