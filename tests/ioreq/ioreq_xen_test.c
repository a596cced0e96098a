/*
 * The xen ioreq server (xen-core/ioreq/ioreq_xen.c) against fakes of libxendevicemodel,
 * libxenforeignmemory and libxenevtchn: server creation and page mapping, range and PCI
 * registration, enable-then-bind ordering, the handshake on the resource pages, PCI config
 * requests routed by claimed BDF, the buffered ring, interrupt calls, DMA mapping of guest
 * frames, liveness and teardown without leaks.
 */
#include <string.h>

#include "tests/fakes/fake_xenevtchn.h"
#include "tests/ioreq/fake_xendm.h"
#include "tests/sxtest.h"
#include "xen-core/ioreq/ioreq.h"

static struct sx_plat plat = { .kind = SX_PLAT_XEN, .self = 0 };
static struct sx_ioreq *srv;
static struct sx_ioreq_access last;
static unsigned calls;

static void handler(void *opaque, struct sx_ioreq_access *a)
{
    calls++;
    if (a->dir == IOREQ_READ)
        a->data = 0x1234 + (a->addr & 0xff);
    last = *a;
}

static shared_iopage_t *iopage(void) { return (shared_iopage_t *)(fake_dm.pages + 4096); }
static buffered_iopage_t *bufpage(void) { return (buffered_iopage_t *)fake_dm.pages; }

static int setup(void)
{
    fake_dm_reset();
    fake_evtchn_reset();
    calls = 0;
    memset(&last, 0, sizeof(last));
    return 0;
}

static void open_srv(void)
{
    struct sx_ioreq_opts o = { .domid = 9, .nr_vcpus = 2, .handler = handler };
    CU_ASSERT_FATAL(sx_ioreq_open(&srv, &plat, &o) == 0);
}

static void close_srv(void)
{
    sx_ioreq_close(srv);
    srv = NULL;
    CU_ASSERT_EQUAL(fake_dm.live_dm, 0);
    CU_ASSERT_EQUAL(fake_dm.live_fm, 0);
    CU_ASSERT_EQUAL(fake_dm.live_resources, 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    CU_ASSERT_EQUAL(fake_evtchn.live_handles, 0);
}

static void post(unsigned v, ioreq_t q)
{
    q.state = STATE_IOREQ_NONE;
    q.vp_eport = iopage()->vcpu_ioreq[v].vp_eport;
    iopage()->vcpu_ioreq[v] = q;
    iopage()->vcpu_ioreq[v].state = STATE_IOREQ_READY;
}

static void test_open_creates_and_maps_server(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(fake_dm.creates, 1);
    CU_ASSERT_EQUAL(fake_dm.domid, 9);
    CU_ASSERT_EQUAL(fake_dm.handle_bufioreq, HVM_IOREQSRV_BUFIOREQ_ATOMIC);
    CU_ASSERT_EQUAL(fake_dm.resource_type, 0);              /* XENMEM_resource_ioreq_server */
    CU_ASSERT_EQUAL(fake_dm.resource_id, 1);
    CU_ASSERT_EQUAL(fake_dm.resource_frame, 0);             /* bufioreq, then ioreq(0) */
    CU_ASSERT_EQUAL(fake_dm.resource_nr, 2);
    CU_ASSERT_EQUAL(sx_ioreq_connected(srv), 0);
    close_srv();
    CU_ASSERT_EQUAL(fake_dm.destroys, 1);
}

static void test_open_failures_unwind(void)
{
    setup();
    struct sx_ioreq_opts o = { .domid = 9, .nr_vcpus = 0, .handler = handler };
    CU_ASSERT_EQUAL(sx_ioreq_open(&srv, &plat, &o), -EINVAL);   /* Xen needs nr_vcpus */
    o.nr_vcpus = 1;
    fake_dm.create_errno = EPERM;
    CU_ASSERT_EQUAL(sx_ioreq_open(&srv, &plat, &o), -EPERM);
    fake_dm.create_errno = 0;
    fake_dm.map_resource_errno = EOPNOTSUPP;
    CU_ASSERT_EQUAL(sx_ioreq_open(&srv, &plat, &o), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(fake_dm.destroys, 1);                       /* the created one went away */
    fake_dm.map_resource_errno = 0;
    fake_evtchn.open_errno = ENOENT;
    CU_ASSERT_EQUAL(sx_ioreq_open(&srv, &plat, &o), -ENOENT);
    fake_dm.open_errno = EACCES;
    fake_evtchn.open_errno = 0;
    CU_ASSERT_EQUAL(sx_ioreq_open(&srv, &plat, &o), -EACCES);
    CU_ASSERT_EQUAL(fake_dm.live_dm, 0);
    CU_ASSERT_EQUAL(fake_dm.live_fm, 0);
    CU_ASSERT_EQUAL(fake_dm.live_resources, 0);
    CU_ASSERT_EQUAL(fake_evtchn.live_handles, 0);
}

static void test_ranges_and_pcidevs_reach_xen(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0xc000, 0xc03f), 0);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0xfebc0000, 0xfebdffff), 0);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0xfebd0000, 0xfebd0fff), -EEXIST);
    CU_ASSERT_EQUAL(sx_ioreq_map_pcidev(srv, 0, 0, 4, 0), 0);
    CU_ASSERT_EQUAL(fake_dm.nranges, 2);
    CU_ASSERT_EQUAL(fake_dm.ranges[0].is_mmio, 0);
    CU_ASSERT_EQUAL(fake_dm.ranges[0].end, 0xc03f);
    CU_ASSERT_EQUAL(fake_dm.ranges[1].is_mmio, 1);
    CU_ASSERT_EQUAL(fake_dm.ranges[1].start, 0xfebc0000);
    CU_ASSERT_EQUAL(fake_dm.npcidevs, 1);
    CU_ASSERT_EQUAL(fake_dm.pcidev_sbdf[0], 4 << 3);
    CU_ASSERT_EQUAL(sx_ioreq_unmap_range(srv, SX_IOREQ_PORT, 0xc000, 0xc03f), 0);
    CU_ASSERT_EQUAL(fake_dm.nranges, 3);
    CU_ASSERT_FALSE(fake_dm.ranges[2].map);
    close_srv();
}

static void test_enable_binds_vp_eports_then_serves(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0x80, 0x8f), 0);
    CU_ASSERT_EQUAL(fake_evtchn.bind_calls, 0);
    CU_ASSERT_EQUAL(sx_ioreq_enable(srv), 0);
    CU_ASSERT_EQUAL(fake_dm.enabled, 1);
    /* Two vCPU ports and the buffered one, bound after enabling (vp_eport was 0 before). */
    CU_ASSERT_EQUAL(fake_evtchn.bind_calls, 3);
    CU_ASSERT_EQUAL(fake_evtchn.bind_domid, 9);
    CU_ASSERT_EQUAL(fake_evtchn.bind_rport, 60);
    CU_ASSERT_EQUAL(sx_ioreq_connected(srv), 1);
    /* vCPU 1 reads port 0x84. */
    ioreq_t q = { .addr = 0x84, .count = 1, .size = 2, .dir = IOREQ_READ, .type = IOREQ_TYPE_PIO };
    post(1, q);
    /* Local ports were handed out 5, 6, 7: vCPU 1's is 6. */
    CU_ASSERT_EQUAL(fake_evtchn_fire(6), 0);
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 1);
    CU_ASSERT_EQUAL(iopage()->vcpu_ioreq[1].state, STATE_IORESP_READY);
    CU_ASSERT_EQUAL(iopage()->vcpu_ioreq[1].data, 0x1234 + 0x84);
    CU_ASSERT_EQUAL(last.vcpu, 1);
    CU_ASSERT_EQUAL(fake_evtchn.notify_port, 6);
    CU_ASSERT_EQUAL(fake_evtchn.unmask_port, 6);
    /* The slot is not served again until the guest (Xen) posts anew. */
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 0);
    /* Invalidate goes to every server and must be completed. */
    ioreq_t inv = { .count = 1, .size = 1, .type = IOREQ_TYPE_INVALIDATE };
    post(0, inv);
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->invalidate, 1);
    CU_ASSERT_EQUAL(calls, 1);
    close_srv();
    CU_ASSERT_EQUAL(fake_evtchn.unbind_calls, 3);
}

static void test_pci_config_routed_by_claimed_bdf(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_map_pcidev(srv, 0, 0, 4, 0), 0);
    CU_ASSERT_EQUAL(sx_ioreq_enable(srv), 0);
    /* (SBDF << 32) | register, the register including the byte offset. */
    ioreq_t q = { .addr = ((uint64_t)(4 << 3) << 32) | 0x3e, .count = 1, .size = 1,
                  .dir = IOREQ_READ, .type = IOREQ_TYPE_PCI_CONFIG };
    post(0, q);
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 1);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(last.addr, q.addr);
    CU_ASSERT_EQUAL(iopage()->vcpu_ioreq[0].data, (0x1234 + 0x3e) & 0xff);
    q.addr = ((uint64_t)(5 << 3) << 32) | 0x00;              /* not ours */
    q.size = 4;
    post(0, q);
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 1);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(iopage()->vcpu_ioreq[0].data, 0xffffffff);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->unclaimed, 1);
    close_srv();
}

static void test_buffered_ring_on_xen_page(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0xa0000, 0xbffff), 0);
    CU_ASSERT_EQUAL(sx_ioreq_enable(srv), 0);
    buffered_iopage_t *b = bufpage();
    /* Xen's pointers may have been rebased: start near the slot count. */
    b->read_pointer = b->write_pointer = 2 * IOREQ_BUFFER_SLOT_NUM - 1;
    uint32_t wp = b->write_pointer;
    buf_ioreq_t e = { .type = IOREQ_TYPE_COPY, .dir = IOREQ_WRITE, .size = 2, .addr = 0xa0010,
                      .data = 0xcafe };
    b->buf_ioreq[wp++ % IOREQ_BUFFER_SLOT_NUM] = e;
    e.size = 3;                                         /* 8 bytes: two slots */
    e.addr = 0xa0020;
    e.data = 0x11111111;
    b->buf_ioreq[wp++ % IOREQ_BUFFER_SLOT_NUM] = e;
    e.data = 0x22222222;
    b->buf_ioreq[wp++ % IOREQ_BUFFER_SLOT_NUM] = e;
    b->write_pointer = wp;
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 2);
    CU_ASSERT_EQUAL(b->read_pointer, wp);
    CU_ASSERT_EQUAL(last.addr, 0xa0020);
    CU_ASSERT_EQUAL(last.size, 8);
    CU_ASSERT_EQUAL(last.data, 0x2222222211111111ull);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->buffered, 2);
    close_srv();
}

static void test_interrupts_go_to_libxendevicemodel(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_set_isa_irq(srv, 4, true), 0);
    CU_ASSERT_EQUAL(fake_dm.isa_irq, 4);
    CU_ASSERT_EQUAL(fake_dm.isa_level, 1);
    CU_ASSERT_EQUAL(sx_ioreq_set_pci_intx(srv, 0, 0, 4, 0, true), 0);
    CU_ASSERT_EQUAL(fake_dm.intx_dev, 4);
    CU_ASSERT_EQUAL(fake_dm.intx_level, 1);
    CU_ASSERT_EQUAL(sx_ioreq_inject_msi(srv, 0xfee01000, 0x4021), 0);
    CU_ASSERT_EQUAL(fake_dm.msi_addr, 0xfee01000);
    CU_ASSERT_EQUAL(fake_dm.msi_data, 0x4021);
    CU_ASSERT_EQUAL(sx_ioreq_set_isa_irq(srv, 16, true), -EINVAL);
    fake_dm.irq_errno = ESRCH;
    CU_ASSERT_EQUAL(sx_ioreq_set_isa_irq(srv, 4, false), -ESRCH);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->irq_raises, 2);
    close_srv();
}

static void test_dma_maps_guest_frames(void)
{
    setup();
    open_srv();
    memcpy(fake_dm.guest + 3 * 4096 - 2, "abcd", 4);
    char buf[4];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 3 * 4096 - 2, buf, 4), 0);   /* across two frames */
    CU_ASSERT_EQUAL(memcmp(buf, "abcd", 4), 0);
    CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, 5 * 4096, "wxyz", 4), 0);
    CU_ASSERT_EQUAL(memcmp(fake_dm.guest + 5 * 4096, "wxyz", 4), 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    /* A frame the guest does not have: refused, and the mapping is released. */
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, FAKE_DM_GUEST_PAGES * 4096 - 2, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, UINT64_MAX - 1, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->dma_refused, 2);
    close_srv();
}

static void test_alive_follows_the_server(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL(sx_ioreq_alive(srv), 1);
    fake_dm.info_errno = ESRCH;            /* the domain (and its servers) are gone */
    CU_ASSERT_EQUAL(sx_ioreq_alive(srv), 0);
    fake_dm.info_errno = EPERM;
    CU_ASSERT_EQUAL(sx_ioreq_alive(srv), -EPERM);
    fake_dm.info_errno = 0;
    close_srv();
}

static int clean(void)
{
    fake_dm_free();
    return 0;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_open_creates_and_maps_server),
    SX_TEST(test_open_failures_unwind),
    SX_TEST(test_ranges_and_pcidevs_reach_xen),
    SX_TEST(test_enable_binds_vp_eports_then_serves),
    SX_TEST(test_pci_config_routed_by_claimed_bdf),
    SX_TEST(test_buffered_ring_on_xen_page),
    SX_TEST(test_interrupts_go_to_libxendevicemodel),
    SX_TEST(test_dma_maps_guest_frames),
    SX_TEST(test_alive_follows_the_server),
};

SX_TEST_MAIN("ioreq-xen", cases, NULL, clean)
