/*
 * The device model end to end on sim, in one process: splitxen-dm's platform (host bridge,
 * UART, Xen platform device) plus a test PCI device doing DMA and INTx, served by sx_dm_run in
 * a thread, driven by the test acting as the HVM domain's vCPU through port and MMIO accesses
 * only: what the e1000/AHCI drivers will do.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "device-model/dm.h"
#include "tests/sxtest.h"
#include "tests/simenv.h"
#include "xen-core/core.h"

static struct simenv env;
static struct sx_plat *plat0, *platg;
static domid_t hvm;
static struct sx_dm *dm;
static struct sx_ioreq *srv;
static struct sx_ioreq_guest *g;
static pthread_t thr;
static atomic_int stop_run;
static int run_rc;
static int uart_pipe[2];

/* ---- a test DMA device: BAR0 4 KiB of registers ---- */

struct tdev {
    struct sx_pci *pci;
    uint32_t addr_lo, addr_hi, len;
    int32_t status;
    unsigned unplugged, destroyed;
};
static struct tdev tdev;

static uint64_t t_read(void *o, uint64_t off, unsigned size)
{
    struct tdev *t = o;
    switch (off) {
    case 0x00: return t->addr_lo;
    case 0x04: return t->addr_hi;
    case 0x08: return t->len;
    case 0x10: return (uint32_t)t->status;
    default: return 0;
    }
}

static void t_write(void *o, uint64_t off, uint64_t v, unsigned size)
{
    struct tdev *t = o;
    switch (off) {
    case 0x00: t->addr_lo = (uint32_t)v; break;
    case 0x04: t->addr_hi = (uint32_t)v; break;
    case 0x08: t->len = (uint32_t)v; break;
    case 0x0c: {
        /* "Go": write a pattern of len bytes at the programmed guest address. */
        static uint8_t pat[8192];
        for (unsigned i = 0; i < sizeof(pat); i++)
            pat[i] = (uint8_t)(i * 7 + 1);
        uint64_t gpa = (uint64_t)t->addr_hi << 32 | t->addr_lo;
        t->status = t->len > sizeof(pat) ? -EINVAL : sx_pci_dma_write(t->pci, gpa, pat, t->len);
        break;
    }
    case 0x14: sx_pci_set_irq(t->pci, v & 1); break;
    }
}

static const struct sx_dm_io_ops t_ops = { .read = t_read, .write = t_write };
static void t_unplug(void *o) { ((struct tdev *)o)->unplugged++; }
static void t_destroy(void *o) { ((struct tdev *)o)->destroyed++; }
static const struct sx_dm_dev_ops t_dev_ops = { .name = "testnic", .unplug_mask = SX_DM_UNPLUG_NICS,
                                                .unplug = t_unplug, .destroy = t_destroy };

static void *run_main(void *arg)
{
    (void)arg;
    run_rc = sx_dm_run(dm, &stop_run);
    return NULL;
}

static uint32_t cfg(unsigned dev, unsigned reg, unsigned size)
{
    uint32_t v;
    CU_ASSERT_EQUAL(sx_ioreq_pci_cfg_read(g, 0, (uint8_t)dev, 0, (uint8_t)reg, size, &v), 0);
    return v;
}

static void cfg_w(unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
    CU_ASSERT_EQUAL(sx_ioreq_pci_cfg_write(g, 0, (uint8_t)dev, 0, (uint8_t)reg, size, v), 0);
}

static uint32_t mr(uint64_t a)
{
    uint64_t v = 0;
    CU_ASSERT_EQUAL(sx_ioreq_mmio_read(g, a, 4, &v), 0);
    return (uint32_t)v;
}

static void mw(uint64_t a, uint32_t v) { CU_ASSERT_EQUAL(sx_ioreq_mmio_write(g, a, 4, v), 0); }

#define BAR 0xfebf0000u

static void test_enumerate_and_place(void)
{
    unsigned found = 0;
    for (unsigned d = 0; d < 32; d++) {
        uint32_t id = cfg(d, 0, 4);
        if (id == 0xffffffff)
            continue;
        found++;
        if (d == 0)
            CU_ASSERT_EQUAL(id, 0x12378086);
        if (d == 2)
            CU_ASSERT_EQUAL(id, 0x00015853);
        if (d == 3)
            CU_ASSERT_EQUAL(id, 0x100e8086);
    }
    CU_ASSERT_EQUAL(found, 3);
    cfg_w(3, 0x10, 4, 0xffffffff);
    CU_ASSERT_EQUAL(cfg(3, 0x10, 4), 0xfffff000);
    cfg_w(3, 0x10, 4, BAR);
    CU_ASSERT_EQUAL(mr(BAR + 0x10), 0xffffffff);        /* memory decoding still off */
    cfg_w(3, 0x04, 2, 0x2);
    mw(BAR + 0x08, 1234);
    CU_ASSERT_EQUAL(mr(BAR + 0x08), 1234);
    CU_ASSERT_EQUAL(cfg(3, 0x3c, 1), sx_ioreq_pci_intx_gsi(3, 0));
}

static void test_device_dma_into_guest_memory(void)
{
    uint64_t gpa;
    void *va;
    CU_ASSERT_FATAL(sx_ioreq_guest_mem_alloc(g, 2, &gpa, &va) == 0);
    mw(BAR + 0x00, (uint32_t)gpa);
    mw(BAR + 0x04, (uint32_t)(gpa >> 32));
    mw(BAR + 0x08, 8192);
    /* Bus mastering off: the device may not touch memory. */
    mw(BAR + 0x0c, 1);
    CU_ASSERT_EQUAL((int32_t)mr(BAR + 0x10), -EPERM);
    CU_ASSERT_EQUAL(((uint8_t *)va)[0], 0);
    cfg_w(3, 0x04, 2, 0x6);                              /* memory + bus master */
    mw(BAR + 0x0c, 1);
    CU_ASSERT_EQUAL((int32_t)mr(BAR + 0x10), 0);
    const uint8_t *m = va;
    CU_ASSERT_EQUAL(m[0], 1);
    CU_ASSERT_EQUAL(m[8191], (uint8_t)(8191 * 7 + 1));
    /* A guest-programmed address past the end of memory is refused, nothing written. */
    uint64_t memsz;
    sx_ioreq_guest_mem(g, &memsz);
    mw(BAR + 0x00, (uint32_t)(memsz - 4096));
    mw(BAR + 0x04, 0);
    mw(BAR + 0x0c, 1);
    CU_ASSERT_EQUAL((int32_t)mr(BAR + 0x10), -EFAULT);
    mw(BAR + 0x00, 0xfffff000);
    mw(BAR + 0x04, 0xffffffff);
    mw(BAR + 0x0c, 1);
    CU_ASSERT_EQUAL((int32_t)mr(BAR + 0x10), -EFAULT);
    CU_ASSERT(sx_dm_stats(dm)->dma_refused >= 2);
    CU_ASSERT_EQUAL(sx_dm_stats(dm)->dma_no_master, 1);
    sx_ioreq_guest_mem_free(g, gpa, 2);
}

static void test_intx_reaches_the_guest(void)
{
    unsigned gsi = sx_ioreq_pci_intx_gsi(3, 0);
    while (sx_ioreq_guest_irq_wait(g, 0) > 0)
        ;
    mw(BAR + 0x14, 1);
    CU_ASSERT_EQUAL(sx_ioreq_guest_irq_wait(g, 2000), 1);
    CU_ASSERT(sx_ioreq_guest_irq_level(g, gsi));
    CU_ASSERT(cfg(3, 0x06, 2) & 0x8);
    /* INTX_DISABLE masks the line, the status bit stays. */
    cfg_w(3, 0x04, 2, 0x406);
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, gsi));
    CU_ASSERT(cfg(3, 0x06, 2) & 0x8);
    cfg_w(3, 0x04, 2, 0x006);
    CU_ASSERT(sx_ioreq_guest_irq_level(g, gsi));
    mw(BAR + 0x14, 0);
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, gsi));
}

static void test_uart_interrupt_line(void)
{
    const uint16_t com1 = 0x3f8;
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));
    sx_ioreq_outb(g, com1 + 1, 0x02);                    /* ETBEI: THRE pending at once */
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));     /* OUT2 off: the line stays low */
    sx_ioreq_outb(g, com1 + 4, 0x08);                    /* OUT2 */
    CU_ASSERT(sx_ioreq_guest_irq_level(g, 4));
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, com1 + 2), 0x02);    /* IIR: THRE, which clears it */
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));
    sx_ioreq_outb(g, com1, 'k');                         /* sent at once: THRE again */
    CU_ASSERT(sx_ioreq_guest_irq_level(g, 4));
    sx_ioreq_outb(g, com1 + 1, 0x00);
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));
    char c = 0;
    CU_ASSERT_EQUAL(read(uart_pipe[0], &c, 1), 1);
    CU_ASSERT_EQUAL(c, 'k');
}

static void test_unplug_through_port_0x10(void)
{
    CU_ASSERT_EQUAL(sx_ioreq_inw(g, 0x10), 0x49d2);
    mw(BAR + 0x14, 1);                                  /* the NIC holds its line up */
    unsigned gsi = sx_ioreq_pci_intx_gsi(3, 0);
    CU_ASSERT(sx_ioreq_guest_irq_level(g, gsi));
    uint64_t unclaimed = sx_ioreq_stats(srv)->unclaimed;
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x10, SX_DM_UNPLUG_DISKS), 0);   /* no disks: nothing */
    CU_ASSERT_EQUAL(tdev.unplugged, 0);
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x10, SX_DM_UNPLUG_NICS), 0);
    CU_ASSERT_EQUAL(tdev.unplugged, 1);
    CU_ASSERT_EQUAL(tdev.destroyed, 1);
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, gsi));   /* its line went down with it */
    CU_ASSERT_EQUAL(cfg(3, 0, 4), 0xffffffff);
    CU_ASSERT_EQUAL(mr(BAR + 0x08), 0xffffffff);
    /* The BAR is no longer claimed on the ioreq server either. */
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->unclaimed, unclaimed + 1);
    CU_ASSERT_PTR_NULL(sx_dm_dev_find(dm, "testnic"));
    CU_ASSERT_EQUAL(cfg(2, 0, 4), 0x00015853);
}

/* ---- a flooding vCPU does not starve the loop's other fds ---- */

static int wpipe[2];
static _Atomic unsigned pipe_events;
static _Atomic int flood_stop;

static void on_pipe(void *opaque, uint32_t events)
{
    char b[64];
    if (read(wpipe[0], b, sizeof(b)) > 0)
        atomic_fetch_add(&pipe_events, 1);
}

static void *flooder(void *arg)
{
    (void)arg;
    ioreq_t q = { .addr = 0x3f8 + 7, .count = 4096, .size = 1, .data = 0x55,
                  .dir = IOREQ_WRITE, .type = IOREQ_TYPE_PIO, .state = STATE_IOREQ_READY };
    while (!atomic_load(&flood_stop))
        sx_ioreq_guest_raw(g, 0, &q, NULL);   /* repost without waiting */
    return NULL;
}

static void test_flood_does_not_starve_other_fds(void)
{
    atomic_store(&flood_stop, 0);
    pthread_t ft;
    CU_ASSERT_FATAL(pthread_create(&ft, NULL, flooder, NULL) == 0);
    int64_t worst = 0;
    for (unsigned i = 0; i < 10; i++) {
        unsigned before = atomic_load(&pipe_events);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        CU_ASSERT_EQUAL(write(wpipe[1], "x", 1), 1);
        int64_t us = 0;
        while (atomic_load(&pipe_events) == before && us < 2000000) {
            usleep(200);
            clock_gettime(CLOCK_MONOTONIC, &b);
            us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        }
        if (us > worst)
            worst = us;
        CU_ASSERT(atomic_load(&pipe_events) > before);
    }
    atomic_store(&flood_stop, 1);
    pthread_join(ft, NULL);
    printf("\n    pipe callbacks under an ioreq flood: worst %lld us; %" PRIu64 " requests\n",
           (long long)worst, sx_ioreq_stats(srv)->handled);
    CU_ASSERT(worst < 500000);
    /* Let the last flood request finish, then the vCPU is usable again. */
    for (int i = 0; i < 100; i++) {
        uint64_t size;
        uint8_t *mem = sx_ioreq_guest_mem(g, &size);
        const ioreq_t *sl = &((shared_iopage_t *)(mem + sx_ioreq_sim_ioreq_pfn(size / 4096) *
                                                   4096))->vcpu_ioreq[0];
        if (((volatile const ioreq_t *)sl)->state != STATE_IOREQ_READY &&
            ((volatile const ioreq_t *)sl)->state != STATE_IOREQ_INPROCESS)
            break;
        usleep(10000);
    }
    CU_ASSERT_EQUAL(sx_ioreq_inw(g, 0x10), 0x49d2);
}

static int suite_init(void)
{
    if (simenv_start(&env, false) < 0 || !(plat0 = simenv_plat(&env, 0)))
        return 1;
    int d = sxc_domain_create(plat0->conn, "hvm-dm", SXD_TYPE_HVM, 32, 1, false);
    if (d <= 0 || !(platg = simenv_plat(&env, (domid_t)d)))
        return 1;
    hvm = (domid_t)d;
    if (pipe2(uart_pipe, O_NONBLOCK) < 0 || sx_dm_open(&dm, hvm) < 0 ||
        sx_dm_pci_host_add(dm) < 0 || sx_uart_add(dm, 0x3f8, 4, uart_pipe[1], NULL) < 0 ||
        sx_xen_platform_add(dm, -1, true, NULL) < 0)
        return 1;
    struct sx_dm_dev *dev;
    struct sx_pci_info info = { .devfn = 3 << 3, .vendor = 0x8086, .device = 0x100e,
                                .class_code = 0x020000, .irq_pin = 1 };
    if (sx_dm_dev_add(dm, &t_dev_ops, &tdev, &dev) < 0 || sx_pci_add(dev, &info, &tdev.pci) < 0 ||
        sx_pci_bar(tdev.pci, 0, 4096, SX_PCI_BAR_MEM32, &t_ops, &tdev) < 0)
        return 1;
    struct sx_ioreq_opts o = { .domid = hvm, .handler = sx_dm_ioreq_handler, .opaque = dm };
    if (sx_ioreq_open(&srv, plat0, &o) < 0 || sx_dm_set_ioreq(dm, srv) < 0 ||
        sx_ioreq_enable(srv) < 0)
        return 1;
    if (pipe2(wpipe, O_NONBLOCK) < 0 || sx_dm_watch_fd(dm, wpipe[0], EPOLLIN, on_pipe, NULL) < 0)
        return 1;
    if (pthread_create(&thr, NULL, run_main, NULL) != 0)
        return 1;
    if (sx_ioreq_guest_open(&g, platg, 0) < 0)
        return 1;
    sx_ioreq_guest_set_timeout(g, 3000);
    return 0;
}

static int suite_clean(void)
{
    stop_run = 1;
    pthread_join(thr, NULL);
    int rc = run_rc;
    sx_ioreq_guest_close(g);
    sx_dm_set_ioreq(dm, NULL);
    sx_dm_close(dm);
    sx_ioreq_close(srv);
    sx_plat_close(platg);
    sx_plat_close(plat0);
    simenv_stop(&env);
    close(uart_pipe[0]);
    close(uart_pipe[1]);
    close(wpipe[0]);
    close(wpipe[1]);
    return rc == 0 ? 0 : 1;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_enumerate_and_place),
    SX_TEST(test_device_dma_into_guest_memory),
    SX_TEST(test_intx_reaches_the_guest),
    SX_TEST(test_uart_interrupt_line),
    SX_TEST(test_unplug_through_port_0x10),
    SX_TEST(test_flood_does_not_starve_other_fds),
};

SX_TEST_MAIN("dm-sim", cases, suite_init, suite_clean)
