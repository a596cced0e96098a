/*
 * The Xen platform PCI device (vendor 5853 XenSource, device 0001): what Linux's
 * xen-platform-pci and Windows PV drivers look for before they switch to PV devices. Its PCI
 * identity and BARs are QEMU's (class ff80, revision 1, subsystem 5853:0001, INTA#, BAR0 256
 * I/O ports, BAR1 16 MiB prefetchable memory). The fixed ports 0x10..0x1f carry the unplug
 * protocol (Xen's docs/misc/hvm-emulated-unplug):
 *   0x10 16-bit read: magic 0x49d2;  0x12 8-bit read: protocol version 1;
 *   0x10 16-bit write: unplug mask (1 all IDE/SATA/SCSI disks, 2 all NICs, 4 aux IDE disks);
 *   0x12 16-bit write: PV driver product number;  0x10 32-bit write: driver build number;
 *   0x10 8-bit read/write: platform flags;  0x12 8-bit write: a log byte.
 * BAR0 offsets 4 and 8 take the old SUSE/VMDP unplug writes as QEMU does.
 */
#define SX_LOG_MODULE "xen-platform"
#include "device-model/dm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define XEN_IOPORT_BASE 0x10
#define XEN_IOPORT_MAGIC_VAL 0x49d2
#define PFFLAG_ROM_LOCK 1

struct sx_xen_platform {
    struct sx_dm *dm;
    struct sx_dm_dev *dev;
    struct sx_pci *pci;
    uint8_t flags;
    char log[256];
    unsigned log_len;
    struct sx_xen_platform_stats st;
};

static void log_byte(struct sx_xen_platform *x, uint8_t b)
{
    x->st.log_bytes++;
    if (b == '\n' || x->log_len == sizeof(x->log) - 1) {
        x->log[x->log_len] = 0;
        for (unsigned i = 0; i < x->log_len; i++)   /* guest text: printable only */
            if (x->log[i] < 0x20 || x->log[i] > 0x7e)
                x->log[i] = '.';
        sx_log_ratelimited(SX_LOG_INFO, "dom%u guest: %s", sx_dm_domid(x->dm), x->log);
        x->log_len = 0;
    } else {
        x->log[x->log_len++] = (char)b;
    }
}

static void unplug(struct sx_xen_platform *x, unsigned mask)
{
    x->st.unplug_writes++;
    /* "All disks" overrides "aux disks" (QEMU's reading): a device opts in per bit. */
    unsigned m = mask & (SX_DM_UNPLUG_DISKS | SX_DM_UNPLUG_NICS | SX_DM_UNPLUG_AUX_DISKS);
    if (m & SX_DM_UNPLUG_DISKS)
        m &= ~SX_DM_UNPLUG_AUX_DISKS;
    sx_info("dom%u: unplug request %#x", sx_dm_domid(x->dm), mask);
    if (m)
        x->st.unplugged += (uint64_t)sx_dm_unplug(x->dm, m);
}

static uint64_t fixed_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_xen_platform *x = opaque;
    if (size == 2)
        return off == 0 ? XEN_IOPORT_MAGIC_VAL : 0xffff;
    if (size == 1)
        return off == 0 ? x->flags : off == 2 ? 1 : 0xff;
    return UINT64_MAX;
}

static void fixed_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_xen_platform *x = opaque;
    if (size == 2 && off == 0)
        unplug(x, (unsigned)val);
    else if (size == 2 && off == 2)
        x->st.product = (uint16_t)val;
    else if (size == 1 && off == 0)
        x->flags = (uint8_t)val & PFFLAG_ROM_LOCK;
    else if (size == 1 && off == 2)
        log_byte(x, (uint8_t)val);
    /* size 4 at 0: the driver's build number, ignored as QEMU does. */
}

static const struct sx_dm_io_ops fixed_ops = { .read = fixed_read, .write = fixed_write };

static uint64_t bar0_read(void *opaque, uint64_t off, unsigned size)
{
    struct sx_xen_platform *x = opaque;
    return off == 0 && size == 1 ? x->flags : UINT64_MAX;
}

static void bar0_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct sx_xen_platform *x = opaque;
    if (size != 1)
        return;
    if (off == 0)
        x->flags = (uint8_t)val & PFFLAG_ROM_LOCK;
    else if (off == 4 && val == 1)
        unplug(x, SX_DM_UNPLUG_DISKS | SX_DM_UNPLUG_NICS);
    else if (off == 8 && (val == 1 || val == 2))
        unplug(x, val == 1 ? SX_DM_UNPLUG_DISKS : SX_DM_UNPLUG_NICS);
    else if (off == 8)
        log_byte(x, (uint8_t)val);
}

static const struct sx_dm_io_ops bar0_ops = { .read = bar0_read, .write = bar0_write };

static uint64_t bar1_read(void *opaque, uint64_t off, unsigned size) { return 0; }
static void bar1_write(void *opaque, uint64_t off, uint64_t val, unsigned size) {}
static const struct sx_dm_io_ops bar1_ops = { .read = bar1_read, .write = bar1_write };

static void platform_destroy(void *opaque) { free(opaque); }
static const struct sx_dm_dev_ops platform_dev_ops = { .name = "xen-platform",
                                                       .destroy = platform_destroy };

int sx_xen_platform_add(struct sx_dm *dm, int devfn, bool with_fixed_ports,
                        struct sx_xen_platform **out)
{
    struct sx_xen_platform *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->dm = dm;
    int rc = sx_dm_dev_add(dm, &platform_dev_ops, x, &x->dev);
    if (rc < 0) {
        free(x);
        return rc;
    }
    struct sx_pci_info info = {
        .devfn = devfn < 0 ? 2 << 3 : devfn, .vendor = 0x5853, .device = 0x0001,
        .subsys_vendor = 0x5853, .subsys_id = 0x0001, .class_code = 0xff8000,
        .revision = 1, .irq_pin = 1,
    };
    rc = sx_pci_add(x->dev, &info, &x->pci);
    if (rc == 0)
        rc = sx_pci_bar(x->pci, 0, 0x100, SX_PCI_BAR_IO, &bar0_ops, x);
    if (rc == 0)
        rc = sx_pci_bar(x->pci, 1, 0x1000000, SX_PCI_BAR_MEM32 | SX_PCI_BAR_PREFETCH, &bar1_ops, x);
    if (rc == 0 && with_fixed_ports)
        rc = sx_dm_dev_region(x->dev, SX_IOREQ_PORT, XEN_IOPORT_BASE, 16, &fixed_ops, x);
    if (rc < 0) {
        sx_dm_dev_remove(x->dev);   /* frees x */
        return rc;
    }
    if (out)
        *out = x;
    return 0;
}

const struct sx_xen_platform_stats *sx_xen_platform_stats(const struct sx_xen_platform *x)
{
    return &x->st;
}
