/* PCI bus 0 through configuration mechanism #1 (0xCF8/0xCFC) and IOREQ_TYPE_PCI_CONFIG: the
 * host bridge, standard header fields, BAR sizing and placement, decoding, interrupt pin/line,
 * status write-one-to-clear; the Xen platform device's identity, magic and unplug protocol,
 * and device removal. No ioreq server: accesses go straight to the dispatcher. */
#include <string.h>

#include "device-model/dm.h"
#include "tests/sxtest.h"

static struct sx_dm *dm;

static uint32_t cfg_addr(unsigned dev, unsigned fn, unsigned reg)
{
    return 0x80000000u | (dev << 11) | (fn << 8) | (reg & 0xfc);
}

static uint32_t cfg_read(unsigned dev, unsigned reg, unsigned size)
{
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf8, cfg_addr(dev, 0, reg), 4);
    return (uint32_t)sx_dm_read(dm, IOREQ_TYPE_PIO, 0xcfc + (reg & 3), size);
}

static void cfg_write(unsigned dev, unsigned reg, uint32_t v, unsigned size)
{
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf8, cfg_addr(dev, 0, reg), 4);
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcfc + (reg & 3), v, size);
}

/* ---- a test device: three BARs that record what reaches them ---- */

struct tdev {
    struct sx_dm_dev *dev;
    struct sx_pci *pci;
    uint64_t last_off, last_val;
    unsigned last_bar, last_size, writes, unplugs, destroys;
    uint32_t cfg_writes;
    unsigned *destroyed_flag;
};

static uint64_t t_read(struct tdev *t, unsigned bar, uint64_t off, unsigned size)
{
    t->last_bar = bar;
    t->last_off = off;
    t->last_size = size;
    return 0x1000 * bar + off;
}

static void t_write(struct tdev *t, unsigned bar, uint64_t off, uint64_t v, unsigned size)
{
    t->last_bar = bar;
    t->last_off = off;
    t->last_val = v;
    t->last_size = size;
    t->writes++;
}

#define BAR_OPS(n)                                                                            \
    static uint64_t r##n(void *o, uint64_t off, unsigned size) { return t_read(o, n, off, size); } \
    static void w##n(void *o, uint64_t off, uint64_t v, unsigned size) { t_write(o, n, off, v, size); } \
    static const struct sx_dm_io_ops ops##n = { .read = r##n, .write = w##n };
BAR_OPS(0)
BAR_OPS(1)
BAR_OPS(2)

static void t_unplug(void *o) { ((struct tdev *)o)->unplugs++; }
static void t_destroy(void *o)
{
    struct tdev *t = o;
    if (t->destroyed_flag)
        (*t->destroyed_flag)++;
}
static void t_cfg_write(void *o, struct sx_pci *pd, uint8_t reg, uint32_t val, unsigned size)
{
    ((struct tdev *)o)->cfg_writes++;
}

static const struct sx_dm_dev_ops nic_ops = { .name = "nic", .unplug_mask = SX_DM_UNPLUG_NICS,
                                              .unplug = t_unplug, .destroy = t_destroy };
static const struct sx_dm_dev_ops disk0_ops = { .name = "disk0", .unplug_mask = SX_DM_UNPLUG_DISKS,
                                                .unplug = t_unplug, .destroy = t_destroy };
static const struct sx_dm_dev_ops disk1_ops = {
    .name = "disk1", .unplug_mask = SX_DM_UNPLUG_DISKS | SX_DM_UNPLUG_AUX_DISKS,
    .unplug = t_unplug, .destroy = t_destroy };

static void tdev_add(struct tdev *t, const struct sx_dm_dev_ops *ops, int devfn, uint32_t cls)
{
    memset(t, 0, sizeof(*t));
    CU_ASSERT_FATAL(sx_dm_dev_add(dm, ops, t, &t->dev) == 0);
    struct sx_pci_info info = { .devfn = devfn, .vendor = 0x8086, .device = 0x100e,
                                .class_code = cls, .irq_pin = 1, .config_write = t_cfg_write,
                                .opaque = t };
    CU_ASSERT_FATAL(sx_pci_add(t->dev, &info, &t->pci) == 0);
    CU_ASSERT_FATAL(sx_pci_bar(t->pci, 0, 32, SX_PCI_BAR_IO, &ops0, t) == 0);
    CU_ASSERT_FATAL(sx_pci_bar(t->pci, 1, 4096, SX_PCI_BAR_MEM32, &ops1, t) == 0);
    CU_ASSERT_FATAL(sx_pci_bar(t->pci, 2, 0x10000, SX_PCI_BAR_MEM64 | SX_PCI_BAR_PREFETCH, &ops2,
                               t) == 0);
}

static void setup(void)
{
    CU_ASSERT_FATAL(sx_dm_open(&dm, 3) == 0);
    CU_ASSERT_FATAL(sx_dm_pci_host_add(dm) == 0);
}

static void teardown(void)
{
    sx_dm_close(dm);
    dm = NULL;
}

static void test_host_bridge_and_absent_functions(void)
{
    setup();
    CU_ASSERT_EQUAL(cfg_read(0, 0, 4), 0x12378086);
    CU_ASSERT_EQUAL(cfg_read(0, 0x08, 4) >> 8, 0x060000);
    CU_ASSERT_EQUAL(cfg_read(0, 0x0e, 1), 0);
    CU_ASSERT_EQUAL(cfg_read(0, 0x02, 2), 0x1237);          /* word at an offset */
    CU_ASSERT_EQUAL(cfg_read(0, 0x01, 1), 0x80);            /* byte 1 of the vendor id */
    CU_ASSERT_EQUAL(cfg_read(5, 0, 4), 0xffffffff);          /* no device */
    /* Another bus: nothing there. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf8, 0x80010000u, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xcfc, 4), 0xffffffff);
    /* Enable bit clear: config data ports read ones. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf8, 0x00000000u, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xcfc, 4), 0xffffffff);
    /* CONFIG_ADDRESS reads back what was written, reserved bits and bits 1:0 as zero. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf8, 0xff00ff07u, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xcf8, 4), 0x8000ff04u);
    /* A byte write to 0xCF8/0xCF9 does not touch CONFIG_ADDRESS. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xcf9, 0x06, 1);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xcf8, 4), 0x8000ff04u);
    /* Read-only header fields stay. */
    cfg_write(0, 0, 0xdeadbeef, 4);
    CU_ASSERT_EQUAL(cfg_read(0, 0, 4), 0x12378086);
    teardown();
}

static void test_bar_sizing_and_placement(void)
{
    setup();
    struct tdev t;
    tdev_add(&t, &nic_ops, 3 << 3, 0x020000);
    CU_ASSERT_EQUAL(cfg_read(3, 0, 4), 0x100e8086);
    CU_ASSERT_EQUAL(cfg_read(3, 0x3d, 1), 1);                /* INTA# */
    /* Sizing: all ones, read back the size mask with the type bits. */
    cfg_write(3, 0x10, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(3, 0x10, 4), 0xffffffe1);       /* 32 ports, I/O */
    cfg_write(3, 0x14, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(3, 0x14, 4), 0xfffff000);       /* 4 KiB, mem32 */
    cfg_write(3, 0x18, 0xffffffff, 4);
    cfg_write(3, 0x1c, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(3, 0x18, 4), 0xffff000c);       /* 64 KiB, 64-bit, prefetchable */
    CU_ASSERT_EQUAL(cfg_read(3, 0x1c, 4), 0xffffffff);
    cfg_write(3, 0x20, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(3, 0x20, 4), 0);                /* unimplemented BAR4 */
    /* Not placed / not decoding: nothing answers. */
    CU_ASSERT_EQUAL(sx_pci_bar_addr(t.pci, 0), UINT64_MAX);
    /* Place them; decoding still off. */
    cfg_write(3, 0x10, 0xc040, 4);
    cfg_write(3, 0x14, 0xfebf0000, 4);
    cfg_write(3, 0x18, 0x00000000, 4);
    cfg_write(3, 0x1c, 0x00000001, 4);                       /* 4 GiB: above 32 bits */
    CU_ASSERT_EQUAL(cfg_read(3, 0x10, 4), 0xc041);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xc044, 4), 0xffffffff);
    CU_ASSERT_EQUAL(sx_pci_bar_addr(t.pci, 1), UINT64_MAX);
    /* I/O decoding on: BAR0 answers, memory BARs do not. */
    cfg_write(3, 0x04, 0x1, 2);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xc044, 4), 0x0004);
    CU_ASSERT_EQUAL(t.last_bar, 0);
    CU_ASSERT_EQUAL(t.last_off, 4);
    CU_ASSERT_EQUAL(t.last_size, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, 0xfebf0010, 4), 0xffffffff);
    /* Memory decoding on too. */
    cfg_write(3, 0x04, 0x3, 2);
    CU_ASSERT_EQUAL(sx_pci_bar_addr(t.pci, 1), 0xfebf0000);
    CU_ASSERT_EQUAL(sx_pci_bar_addr(t.pci, 2), 0x100000000ull);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, 0xfebf0010, 4), 0x1010);
    sx_dm_write(dm, IOREQ_TYPE_COPY, 0x100000000ull + 0x20, 0x1122334455667788ull, 8);
    CU_ASSERT_EQUAL(t.last_bar, 2);
    CU_ASSERT_EQUAL(t.last_off, 0x20);
    CU_ASSERT_EQUAL(t.last_val, 0x1122334455667788ull);
    /* An access running off the end of a BAR is nobody's. */
    uint64_t unclaimed = sx_dm_stats(dm)->unclaimed;
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, 0xfebf0ffe, 4), 0xffffffff);
    CU_ASSERT_EQUAL(sx_dm_stats(dm)->unclaimed, unclaimed + 1);
    /* Move BAR1: the old place goes quiet, the new one answers. */
    cfg_write(3, 0x14, 0xfeb00000, 4);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, 0xfebf0010, 4), 0xffffffff);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_COPY, 0xfeb00010, 4), 0x1010);
    /* Low bits of a BAR address are not writable. */
    cfg_write(3, 0x14, 0xfeb00fff, 4);
    CU_ASSERT_EQUAL(cfg_read(3, 0x14, 4), 0xfeb00000);
    /* Decoding off again: gone. */
    cfg_write(3, 0x04, 0x0, 2);
    CU_ASSERT_EQUAL(sx_pci_bar_addr(t.pci, 0), UINT64_MAX);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xc044, 4), 0xffffffff);
    CU_ASSERT(t.cfg_writes > 0);
    teardown();
}

static void test_config_via_pci_config_ioreqs(void)
{
    setup();
    struct tdev t;
    tdev_add(&t, &nic_ops, 4 << 3, 0x020000);
    /* What Xen sends a claiming server: (SBDF << 32) | register. */
    uint64_t sbdf = (uint64_t)(4 << 3) << 32;
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PCI_CONFIG, sbdf | 0, 4), 0x100e8086);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PCI_CONFIG, sbdf | 0x0b, 1), 0x02);
    sx_dm_write(dm, IOREQ_TYPE_PCI_CONFIG, sbdf | 0x3c, 0x0a, 1);
    CU_ASSERT_EQUAL(cfg_read(4, 0x3c, 1), 0x0a);                    /* interrupt line */
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PCI_CONFIG, (1ull << 48) | sbdf, 4), 0xffffffff);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PCI_CONFIG, sbdf | 0x100, 4), 0);  /* no ext. */
    teardown();
}

static void test_command_status_irq(void)
{
    setup();
    struct tdev t;
    tdev_add(&t, &nic_ops, -1, 0x020000);
    unsigned dev = sx_pci_devfn(t.pci) >> 3;
    CU_ASSERT_EQUAL(dev, 1);                                  /* first free slot */
    CU_ASSERT_EQUAL(cfg_read(dev, 0x3c, 1), sx_ioreq_pci_intx_gsi(dev, 0));
    cfg_write(dev, 0x04, 0xffff, 2);
    CU_ASSERT_EQUAL(cfg_read(dev, 0x04, 2), 0x0547);          /* only implemented bits */
    CU_ASSERT_EQUAL(sx_pci_set_irq(t.pci, true), 0);
    CU_ASSERT(cfg_read(dev, 0x06, 2) & 0x8);                  /* STATUS.INTERRUPT */
    CU_ASSERT_EQUAL(sx_pci_set_irq(t.pci, false), 0);
    CU_ASSERT_FALSE(cfg_read(dev, 0x06, 2) & 0x8);
    /* Error bits are write-one-to-clear; INTERRUPT is read-only. */
    sx_pci_config(t.pci)[0x07] = 0xf9;
    cfg_write(dev, 0x06, 0x0800, 2);
    CU_ASSERT_EQUAL(cfg_read(dev, 0x07, 1), 0xf1);
    cfg_write(dev, 0x06, 0xffff, 2);
    CU_ASSERT_EQUAL(cfg_read(dev, 0x06, 2), 0);
    /* No DMA without an ioreq server, and never without bus mastering. */
    uint8_t b[4];
    cfg_write(dev, 0x04, 0x0, 2);
    CU_ASSERT_EQUAL(sx_pci_dma_read(t.pci, 0, b, 4), -EPERM);
    CU_ASSERT_EQUAL(sx_dm_stats(dm)->dma_no_master, 1);
    cfg_write(dev, 0x04, 0x4, 2);
    CU_ASSERT_EQUAL(sx_pci_dma_read(t.pci, 0, b, 4), -ENODEV);
    teardown();
}

static void test_registration_rules(void)
{
    setup();
    struct tdev t;
    tdev_add(&t, &nic_ops, 3 << 3, 0x020000);
    struct sx_dm_dev *d2;
    struct tdev scratch = { 0 };
    CU_ASSERT_FATAL(sx_dm_dev_add(dm, &disk0_ops, &scratch, &d2) == 0);
    struct sx_pci_info info = { .devfn = 3 << 3, .vendor = 1 };
    CU_ASSERT_EQUAL(sx_pci_add(d2, &info, NULL), -EEXIST);    /* slot taken */
    info.devfn = (3 << 3) | 1;
    struct sx_pci *fn1;
    CU_ASSERT_EQUAL(sx_pci_add(d2, &info, &fn1), 0);
    CU_ASSERT_EQUAL(cfg_read(3, 0x0e, 1) & 0x80, 0x80);         /* function 0: multi-function */
    CU_ASSERT_EQUAL(sx_pci_bar(fn1, 0, 24, SX_PCI_BAR_IO, &ops0, NULL), -EINVAL);  /* not 2^n */
    CU_ASSERT_EQUAL(sx_pci_bar(fn1, 5, 4096, SX_PCI_BAR_MEM64, &ops0, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sx_pci_bar(t.pci, 3, 4096, SX_PCI_BAR_MEM32, &ops0, NULL), -EINVAL);  /* upper half */
    CU_ASSERT_EQUAL(sx_dm_dev_region(d2, SX_IOREQ_PORT, 0xcfa, 4, &ops0, NULL), -EEXIST);
    CU_ASSERT_EQUAL(sx_dm_dev_region(d2, SX_IOREQ_PORT, 0xfffe, 4, &ops0, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sx_dm_dev_region(d2, SX_IOREQ_PORT, 0x1f0, 8, &ops0, &scratch), 0);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x1f2, 1), 0x02);
    sx_dm_dev_remove(d2);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x1f2, 1), 0xff);
    CU_ASSERT_EQUAL(cfg_read(3, 0x100 - 4, 4), 0);
    CU_ASSERT_EQUAL(sx_dm_pci_cfg_read(dm, 0, (3 << 3) | 1, 0, 4), 0xffffffff);
    teardown();
}

static void test_platform_device_identity_and_magic(void)
{
    setup();
    struct sx_xen_platform *x;
    CU_ASSERT_FATAL(sx_xen_platform_add(dm, -1, true, &x) == 0);
    CU_ASSERT_EQUAL(cfg_read(2, 0, 4), 0x00015853);
    CU_ASSERT_EQUAL(cfg_read(2, 0x08, 4), 0xff800001);        /* class ff80, revision 1 */
    CU_ASSERT_EQUAL(cfg_read(2, 0x2c, 4), 0x00015853);        /* subsystem */
    CU_ASSERT_EQUAL(cfg_read(2, 0x3d, 1), 1);
    cfg_write(2, 0x10, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(2, 0x10, 4), 0xffffff01);        /* 256 I/O ports */
    cfg_write(2, 0x14, 0xffffffff, 4);
    CU_ASSERT_EQUAL(cfg_read(2, 0x14, 4), 0xff000008);        /* 16 MiB prefetchable */
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x10, 2), 0x49d2);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x12, 1), 1);     /* protocol version */
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x10, 1), 0);     /* flags */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x10, 0xff, 1);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0x10, 1), 1);     /* ROM lock only */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x12, 3, 2);
    CU_ASSERT_EQUAL(sx_xen_platform_stats(x)->product, 3);
    const char *msg = "pv up\n";
    for (const char *p = msg; *p; p++)
        sx_dm_write(dm, IOREQ_TYPE_PIO, 0x12, (uint8_t)*p, 1);
    CU_ASSERT_EQUAL(sx_xen_platform_stats(x)->log_bytes, strlen(msg));
    teardown();
}

static void test_platform_unplug_removes_devices(void)
{
    setup();
    struct sx_xen_platform *x;
    CU_ASSERT_FATAL(sx_xen_platform_add(dm, -1, true, &x) == 0);
    unsigned destroyed = 0;
    struct tdev nic, d0, d1;
    tdev_add(&nic, &nic_ops, 4 << 3, 0x020000);
    tdev_add(&d0, &disk0_ops, 5 << 3, 0x010601);
    tdev_add(&d1, &disk1_ops, 6 << 3, 0x010601);
    nic.destroyed_flag = d0.destroyed_flag = d1.destroyed_flag = &destroyed;
    /* Give the NIC a decoding BAR and an asserted interrupt: removal must undo both. */
    cfg_write(4, 0x10, 0xc100, 4);
    cfg_write(4, 0x04, 0x1, 2);
    sx_pci_set_irq(nic.pci, true);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xc100, 1), 0);
    unsigned before = sx_dm_nr_devices(dm);
    /* Unplug NICs. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x10, SX_DM_UNPLUG_NICS, 2);
    CU_ASSERT_EQUAL(nic.unplugs, 1);
    CU_ASSERT_EQUAL(destroyed, 1);
    CU_ASSERT_EQUAL(sx_dm_nr_devices(dm), before - 1);
    CU_ASSERT_EQUAL(cfg_read(4, 0, 4), 0xffffffff);
    CU_ASSERT_EQUAL(sx_dm_read(dm, IOREQ_TYPE_PIO, 0xc100, 1), 0xff);
    CU_ASSERT_PTR_NULL(sx_dm_dev_find(dm, "nic"));
    /* Aux disks: everything but the primary. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x10, SX_DM_UNPLUG_AUX_DISKS, 2);
    CU_ASSERT_EQUAL(d1.unplugs, 1);
    CU_ASSERT_EQUAL(d0.unplugs, 0);
    CU_ASSERT_EQUAL(cfg_read(5, 0, 4), 0x100e8086);
    CU_ASSERT_EQUAL(cfg_read(6, 0, 4), 0xffffffff);
    /* All disks (with aux: all wins). */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x10, SX_DM_UNPLUG_DISKS | SX_DM_UNPLUG_AUX_DISKS, 2);
    CU_ASSERT_EQUAL(d0.unplugs, 1);
    CU_ASSERT_EQUAL(destroyed, 3);
    /* Again: nothing left to unplug; the platform device and host bridge stay. */
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0x10, 0x7, 2);
    CU_ASSERT_EQUAL(destroyed, 3);
    CU_ASSERT_EQUAL(sx_xen_platform_stats(x)->unplug_writes, 4);
    CU_ASSERT_EQUAL(sx_xen_platform_stats(x)->unplugged, 3);
    CU_ASSERT_EQUAL(cfg_read(2, 0, 4), 0x00015853);
    CU_ASSERT_EQUAL(cfg_read(0, 0, 4), 0x12378086);
    /* The old BAR0 protocol (SUSE: outb(1, bar0 + 4)) reaches the same unplug. */
    struct tdev nic2;
    tdev_add(&nic2, &nic_ops, 4 << 3, 0x020000);
    nic2.destroyed_flag = &destroyed;
    cfg_write(2, 0x10, 0xc200, 4);
    cfg_write(2, 0x04, 0x1, 2);
    sx_dm_write(dm, IOREQ_TYPE_PIO, 0xc204, 1, 1);
    CU_ASSERT_EQUAL(nic2.unplugs, 1);
    CU_ASSERT_EQUAL(destroyed, 4);
    teardown();
}

static void test_close_destroys_every_device_once(void)
{
    setup();
    unsigned destroyed = 0;
    struct tdev a, b;
    tdev_add(&a, &nic_ops, -1, 0x020000);
    tdev_add(&b, &disk0_ops, -1, 0x010601);
    a.destroyed_flag = b.destroyed_flag = &destroyed;
    teardown();
    CU_ASSERT_EQUAL(destroyed, 2);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_host_bridge_and_absent_functions),
    SX_TEST(test_bar_sizing_and_placement),
    SX_TEST(test_config_via_pci_config_ioreqs),
    SX_TEST(test_command_status_irq),
    SX_TEST(test_registration_rules),
    SX_TEST(test_platform_device_identity_and_magic),
    SX_TEST(test_platform_unplug_removes_devices),
    SX_TEST(test_close_destroys_every_device_once),
};

SX_TEST_MAIN("pci", cases, NULL, NULL)
