/*
 * The xen ioreq server (ioreq/ioreq_xen.c) against fakes of libxendevicemodel,
 * libxenforeignmemory and libxenevtchn: server creation and page mapping, range and PCI
 * registration, enable-then-bind ordering, the handshake on the resource pages, PCI config
 * requests routed by claimed BDF, the buffered ring, interrupt calls, DMA mapping of guest
 * frames through the mapcache (hits without a map call, exact mappings across buckets and in
 * buckets with refused frames, eviction sparing buckets in use, IOREQ_TYPE_INVALIDATE),
 * liveness and teardown without leaks.
 */
#include <string.h>
#include <sys/mman.h>

#include "tests/fakes/fake_xenevtchn.h"
#include "tests/ioreq/fake_xendm.h"
#include "tests/sxtest.h"
#include "ioreq/ioreq.h"

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
    CU_ASSERT_EQUAL(fake_dm.bad_unmaps, 0);
    CU_ASSERT_EQUAL(fake_dm.unmaps, fake_dm.maps);
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

#define MIB (1u << 20)

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
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);          /* the first MiB, cached */
    /* A frame the guest does not have: refused, and the mapping is released. */
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, FAKE_DM_GUEST_PAGES * 4096ull - 2, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, UINT64_MAX - 1, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->dma_refused, 2);
    close_srv();
    CU_ASSERT_EQUAL(fake_dm.unmaps, 2);             /* the bucket once, the refused map once */
}

static void test_mapcache_maps_a_bucket_once(void)
{
    setup();
    open_srv();
    const uint64_t base = 2 * MIB;
    for (unsigned i = 0; i < 100; i++) {
        uint32_t v = 0xa5000000u | i;
        CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, base + i * 1000, &v, 4), 0);
    }
    CU_ASSERT_EQUAL(fake_dm.maps, 1);
    CU_ASSERT_EQUAL(fake_dm.last_map_pages, 256);
    CU_ASSERT_EQUAL(fake_dm.last_map_prot, PROT_READ | PROT_WRITE);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_misses, 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_hits, 99);
    /* Written through the cached mapping: in guest memory. */
    for (unsigned i = 0; i < 100; i++) {
        uint32_t v;
        memcpy(&v, fake_dm.guest + base + i * 1000, 4);
        CU_ASSERT_EQUAL(v, 0xa5000000u | i);
    }
    /* Guest writes are seen through it; a read-only map is served from the same bucket. */
    memcpy(fake_dm.guest + base + MIB - 8, "guest!!!", 8);
    char buf[8];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, base + MIB - 8, buf, 8), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "guest!!!", 8), 0);
    const char *ro = sx_ioreq_dma_map(srv, base + 4096, 64, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ro);
    CU_ASSERT_EQUAL(ro[0], (char)0);
    CU_ASSERT_EQUAL(memcmp(ro - 4096 + 1000, "\x01\x00\x00\xa5", 4), 0);
    sx_ioreq_dma_unmap(srv, (void *)ro, 64);
    CU_ASSERT_EQUAL(fake_dm.maps, 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_hits, 101);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);
    close_srv();
    CU_ASSERT_EQUAL(fake_dm.unmaps, 1);
}

static void test_mapcache_range_across_buckets(void)
{
    setup();
    open_srv();
    /* A mapping held in bucket 1 while an exact one across buckets 1 and 2 comes and goes:
     * each unmap must find its own kind. */
    char *held = sx_ioreq_dma_map(srv, MIB + 64, 64, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, 2 * MIB - 4, "acrossMB", 8), 0);
    CU_ASSERT_EQUAL(memcmp(fake_dm.guest + 2 * MIB - 4, "acrossMB", 8), 0);
    char buf[8];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 2 * MIB - 4, buf, 8), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "acrossMB", 8), 0);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_exact, 2);
    CU_ASSERT_EQUAL(fake_dm.last_map_pages, 2);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);          /* the exact ones are gone, bucket 1 not */
    memcpy(held, "held", 4);
    CU_ASSERT_EQUAL(memcmp(fake_dm.guest + MIB + 64, "held", 4), 0);
    sx_ioreq_dma_unmap(srv, held, 64);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);          /* idle, still cached */
    CU_ASSERT_EQUAL(fake_dm.bad_unmaps, 0);
    close_srv();
}

static void test_mapcache_partial_bucket_exact_and_efault(void)
{
    setup();
    open_srv();
    const uint64_t pg = 3 * 256 + 5;               /* a hole in bucket 3 */
    fake_dm.fail_pfns[fake_dm.nfail++] = pg;
    char buf[4];
    memcpy(fake_dm.guest + (pg - 1) * 4096, "prev", 4);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, (pg - 1) * 4096, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "prev", 4), 0);
    CU_ASSERT_EQUAL(fake_dm.maps, 2);              /* the bucket (refused), then exact */
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_partial, 1);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, pg * 4096 + 8, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, pg * 4096 - 2, buf, 4), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, (pg + 1) * 4096, "next", 4), 0);
    CU_ASSERT_EQUAL(memcmp(fake_dm.guest + (pg + 1) * 4096, "next", 4), 0);
    /* The bucket was not tried again: one exact map per access. */
    CU_ASSERT_EQUAL(fake_dm.maps, 5);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_misses, 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_exact, 4);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_hits, 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    /* A bucket Xen refuses whole (the map call fails) is remembered the same way. */
    fake_dm.map_errno = ENOMEM;
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 6 * MIB, buf, 4), -ENOMEM);
    fake_dm.map_errno = 0;
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 6 * MIB, buf, 4), 0);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_partial, 2);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    close_srv();
}

static void test_mapcache_eviction_spares_buckets_in_use(void)
{
    setup();
    open_srv();
    char *held = sx_ioreq_dma_map(srv, 100, 16, true);          /* bucket 0, in use */
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    /* 70 more buckets through a 64-bucket cache: bucket 0 is the oldest but in use. */
    for (unsigned b = 1; b <= 70; b++) {
        uint32_t v = b;
        CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, (uint64_t)b * MIB + 8, &v, 4), 0);
        CU_ASSERT(fake_dm.live_maps <= 64);
    }
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_evictions, 70 - 63);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 64);
    for (unsigned b = 1; b <= 70; b++) {
        uint32_t v;
        memcpy(&v, fake_dm.guest + (uint64_t)b * MIB + 8, 4);
        CU_ASSERT_EQUAL(v, b);
    }
    memcpy(held, "still mapped", 12);
    CU_ASSERT_EQUAL(memcmp(fake_dm.guest + 100, "still mapped", 12), 0);
    unsigned maps = fake_dm.maps;
    char *again = sx_ioreq_dma_map(srv, 200, 4, false);          /* a hit in bucket 0 */
    CU_ASSERT_EQUAL(fake_dm.maps, maps);
    CU_ASSERT_PTR_EQUAL(again, held + 100);
    sx_ioreq_dma_unmap(srv, again, 4);
    sx_ioreq_dma_unmap(srv, held, 16);

    /* Every bucket in use: the next one is mapped exactly, nothing is evicted. */
    char *all[64];
    for (unsigned b = 0; b < 64; b++) {
        all[b] = sx_ioreq_dma_map(srv, (uint64_t)(b + 10) * MIB, 8, true);
        CU_ASSERT_PTR_NOT_NULL_FATAL(all[b]);
    }
    uint64_t ev = sx_ioreq_stats(srv)->mapcache_evictions;
    uint64_t exact = sx_ioreq_stats(srv)->mapcache_exact;
    char *extra = sx_ioreq_dma_map(srv, 75 * MIB, 8, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(extra);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_exact, exact + 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_evictions, ev);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 65);
    memcpy(extra, "x", 1);
    CU_ASSERT_EQUAL(fake_dm.guest[75 * MIB], 'x');
    sx_ioreq_dma_unmap(srv, extra, 8);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 64);
    for (unsigned b = 0; b < 64; b++) {
        memcpy(all[b], &b, sizeof(b));
        sx_ioreq_dma_unmap(srv, all[b], 8);
    }
    for (unsigned b = 0; b < 64; b++) {
        unsigned v;
        memcpy(&v, fake_dm.guest + (uint64_t)(b + 10) * MIB, sizeof(v));
        CU_ASSERT_EQUAL(v, b);
    }
    CU_ASSERT_EQUAL(fake_dm.bad_unmaps, 0);
    close_srv();
}

static void invalidate(void)
{
    ioreq_t inv = { .count = 1, .size = 1, .type = IOREQ_TYPE_INVALIDATE };
    post(0, inv);
    CU_ASSERT_EQUAL(sx_ioreq_step(srv), 1);
}

static void test_invalidate_drops_idle_now_in_use_at_last_unmap(void)
{
    setup();
    open_srv();
    CU_ASSERT_EQUAL_FATAL(sx_ioreq_enable(srv), 0);
    char buf[4];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 1 * MIB, buf, 4), 0);      /* bucket 1: idle */
    char *held = sx_ioreq_dma_map(srv, 2 * MIB + 16, 32, true);     /* bucket 2: in use */
    CU_ASSERT_PTR_NOT_NULL_FATAL(held);
    char *held2 = sx_ioreq_dma_map(srv, 2 * MIB + 64, 32, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(held2);
    fake_dm.fail_pfns[fake_dm.nfail++] = 3 * 256;                   /* bucket 3: partial */
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 3 * MIB + 4096, buf, 4), 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 2);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_partial, 1);

    invalidate();
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->invalidate, 1);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_invalidations, 3);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);           /* bucket 1 gone, bucket 2 doomed */
    /* The doomed bucket is not handed out again: a fresh mapping of the same MiB. */
    unsigned maps = fake_dm.maps;
    char *fresh = sx_ioreq_dma_map(srv, 2 * MIB + 16, 32, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
    CU_ASSERT_EQUAL(fake_dm.maps, maps + 1);
    CU_ASSERT_PTR_NOT_EQUAL(fresh, held);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 2);
    memcpy(held, "old", 3);                          /* still valid until unmapped */
    CU_ASSERT_EQUAL(memcmp(fresh, "old", 3), 0);
    sx_ioreq_dma_unmap(srv, held, 32);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 2);           /* held2 still uses it */
    sx_ioreq_dma_unmap(srv, held2, 32);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);           /* the doomed bucket, at its last unmap */
    sx_ioreq_dma_unmap(srv, fresh, 32);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 1);           /* the fresh one stays cached */
    /* The partial mark went too: with the hole filled, bucket 3 maps whole. */
    fake_dm.nfail = 0;
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 3 * MIB + 4096, buf, 4), 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 2);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_partial, 1);
    /* A second invalidate with nothing in use drops everything. */
    invalidate();
    CU_ASSERT_EQUAL(fake_dm.live_maps, 0);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->mapcache_invalidations, 5);
    CU_ASSERT_EQUAL(fake_dm.bad_unmaps, 0);
    close_srv();
}

static void test_close_unmaps_buckets_in_use_once(void)
{
    setup();
    open_srv();
    CU_ASSERT_PTR_NOT_NULL(sx_ioreq_dma_map(srv, 4 * MIB, 8, true));   /* never unmapped */
    char buf[4];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 5 * MIB, buf, 4), 0);
    CU_ASSERT_EQUAL(fake_dm.live_maps, 2);
    close_srv();                                      /* live_maps 0, unmaps == maps */
    CU_ASSERT_EQUAL(fake_dm.unmaps, 2);
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
    SX_TEST(test_mapcache_maps_a_bucket_once),
    SX_TEST(test_mapcache_range_across_buckets),
    SX_TEST(test_mapcache_partial_bucket_exact_and_efault),
    SX_TEST(test_mapcache_eviction_spares_buckets_in_use),
    SX_TEST(test_invalidate_drops_idle_now_in_use_at_last_unmap),
    SX_TEST(test_close_unmaps_buckets_in_use_once),
    SX_TEST(test_alive_follows_the_server),
};

SX_TEST_MAIN("ioreq-xen", cases, NULL, clean)
