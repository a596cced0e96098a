/*
 * The ioreq server on sim against the sim vCPU side, in one process: an in-process core, an
 * HVM domain, the server (as dom0) stepping in its own thread and the test acting as the
 * domain's vCPUs. Covers the READY -> INPROCESS -> IORESP_READY handshake, reps with
 * data_is_ptr, the buffered ring, malformed requests (size, count, pointer, type, state), an
 * ioreq flood, DMA bounds, interrupt lines and MSIs, and a guest reconnecting.
 */
#include <inttypes.h>

#include "tests/ioreqenv.h"

/* ---- tests ---- */

static void test_pio_round_trip(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    CU_ASSERT_EQUAL(sx_ioreq_guest_nr_vcpus(g), 2);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0x5a), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x80), 0x5a);
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x82, 0xbeef), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inw(g, 0x82), 0xbeef);
    CU_ASSERT_EQUAL(sx_ioreq_outl(g, 0x84, 0xdeadbeef), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inl(g, 0x84), 0xdeadbeef);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x85), 0xbe);
    CU_ASSERT_EQUAL(regs[4], 0xef);
    /* The slot went back to NONE, with our port in it. */
    CU_ASSERT_EQUAL(slot(g, 0)->state, STATE_IOREQ_NONE);
    /* vCPU 1 is served the same way. */
    uint64_t v = 0;
    CU_ASSERT_EQUAL(sx_ioreq_guest_io(g, 1, IOREQ_TYPE_PIO, IOREQ_READ, 0x84, 4, &v), 0);
    CU_ASSERT_EQUAL(v, 0xdeadbeef);
    CU_ASSERT_EQUAL(sx_ioreq_guest_io(g, 2, IOREQ_TYPE_PIO, IOREQ_READ, 0x84, 4, &v), -EINVAL);
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(st->pio, 8);
    CU_ASSERT_EQUAL(st->handled, 8);
    CU_ASSERT_EQUAL(st->connects, 1);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), 8);
    CU_ASSERT_EQUAL(sx_ioreq_connected(srv), 1);
    CU_ASSERT_EQUAL(sx_ioreq_alive(srv), 1);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_mmio_and_reps(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    CU_ASSERT_EQUAL(sx_ioreq_mmio_write(g, 0xfe000010, 8, 0x0102030405060708ull), 0);
    uint64_t v = 0;
    CU_ASSERT_EQUAL(sx_ioreq_mmio_read(g, 0xfe000010, 8, &v), 0);
    CU_ASSERT_EQUAL(v, 0x0102030405060708ull);
    CU_ASSERT_EQUAL(sx_ioreq_mmio_read(g, 0xfe000014, 2, &v), 0);
    CU_ASSERT_EQUAL(v, 0x0304);

    uint64_t gpa;
    void *va;
    CU_ASSERT_FATAL(sx_ioreq_guest_mem_alloc(g, 1, &gpa, &va) == 0);
    uint32_t *buf = va;
    for (unsigned i = 0; i < 16; i++)
        buf[i] = 0x1000 + i;
    /* rep movsd to MMIO: ascending. */
    CU_ASSERT_EQUAL(sx_ioreq_guest_rep(g, 0, IOREQ_TYPE_COPY, IOREQ_WRITE, 0xfe000100, 4, 16,
                                       gpa, false), 0);
    for (unsigned i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(((uint32_t *)&mmio[0x100])[i], 0x1000 + i);
    /* rep movsd from MMIO into guest memory at +256. */
    CU_ASSERT_EQUAL(sx_ioreq_guest_rep(g, 0, IOREQ_TYPE_COPY, IOREQ_READ, 0xfe000100, 4, 16,
                                       gpa + 256, false), 0);
    CU_ASSERT_EQUAL(memcmp(&buf[64], &mmio[0x100], 64), 0);
    /* With DF set both sides walk down from the given addresses. */
    CU_ASSERT_EQUAL(sx_ioreq_guest_rep(g, 0, IOREQ_TYPE_COPY, IOREQ_WRITE, 0xfe00023c, 4, 16,
                                       gpa + 60, true), 0);
    CU_ASSERT_EQUAL(memcmp(&mmio[0x200], buf, 64), 0);
    /* rep outsb to one port: every byte goes to the same register. */
    memcpy(buf, "ABCDEFGH", 8);
    unsigned calls = atomic_load(&handler_calls);
    CU_ASSERT_EQUAL(sx_ioreq_guest_rep(g, 0, IOREQ_TYPE_PIO, IOREQ_WRITE, 0x8f, 1, 8, gpa, false),
                    0);
    CU_ASSERT_EQUAL(regs[15], 'H');
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls + 8);
    /* rep insb. */
    CU_ASSERT_EQUAL(sx_ioreq_guest_rep(g, 0, IOREQ_TYPE_PIO, IOREQ_READ, 0x8f, 1, 4, gpa + 8,
                                       false), 0);
    CU_ASSERT_EQUAL(memcmp((char *)va + 8, "HHHH", 4), 0);
    /* rep stos (count > 1, value not a pointer): the value repeats over advancing addresses. */
    ioreq_t q = { .addr = 0xfe000300, .data = 0x77, .count = 4, .size = 1,
                  .state = STATE_IOREQ_READY, .dir = IOREQ_WRITE, .type = IOREQ_TYPE_COPY };
    ioreq_t r;
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, &r), 0);
    CU_ASSERT_EQUAL(memcmp(&mmio[0x300], "\x77\x77\x77\x77", 4), 0);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->bad_count, 0);
    sx_ioreq_guest_mem_free(g, gpa, 1);
    sx_ioreq_guest_close(g);
    server_stop();
}

/* Post q, expect a completed response with `data` (for reads) and no device access. */
static void expect_rejected(struct sx_ioreq_guest *g, ioreq_t q, const _Atomic uint64_t *ctr)
{
    uint64_t before = *ctr;
    unsigned calls = atomic_load(&handler_calls);
    ioreq_t r;
    q.state = STATE_IOREQ_READY;
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, &r), 0);
    CU_ASSERT_EQUAL(r.state, STATE_IORESP_READY);
    if (q.dir == IOREQ_READ && !q.data_is_ptr)
        CU_ASSERT_EQUAL(r.data, UINT64_MAX);
    CU_ASSERT_EQUAL(*ctr, before + 1);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls);
}

static void test_malformed_requests(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    uint64_t memsz;
    sx_ioreq_guest_mem(g, &memsz);
    ioreq_t base = { .addr = 0x80, .count = 1, .size = 1, .dir = IOREQ_READ,
                     .type = IOREQ_TYPE_PIO };
    ioreq_t q = base;
    q.size = 3;
    expect_rejected(g, q, &st->bad_size);
    q.size = 0;
    expect_rejected(g, q, &st->bad_size);
    q.size = 8;                                   /* no 8-byte port I/O */
    expect_rejected(g, q, &st->bad_size);
    q = base;
    q.size = 0x80000000u;
    expect_rejected(g, q, &st->bad_size);
    q = base;
    q.count = 0;
    expect_rejected(g, q, &st->bad_count);
    q.count = 0xffffffffu;                        /* would loop 4 G times */
    q.data_is_ptr = 1;
    q.data = 0;
    expect_rejected(g, q, &st->bad_count);
    q = base;
    q.count = 4097;                               /* more than a page of reps */
    expect_rejected(g, q, &st->bad_count);
    q = base;
    q.type = IOREQ_TYPE_COPY;
    q.addr = UINT64_MAX - 1;                      /* MMIO range wraps */
    q.size = 4;
    expect_rejected(g, q, &st->bad_addr);
    /* data_is_ptr out of guest memory, at its end, wrapping, and walking down below 0. */
    q = base;
    q.data_is_ptr = 1;
    q.count = 2;
    q.data = memsz - 1;
    expect_rejected(g, q, &st->bad_ptr);
    q.data = memsz;
    expect_rejected(g, q, &st->bad_ptr);
    q.data = UINT64_MAX;
    expect_rejected(g, q, &st->bad_ptr);
    q.data = 0;
    q.df = 1;
    expect_rejected(g, q, &st->bad_ptr);
    /* Unknown type. */
    q = base;
    q.type = 5;
    expect_rejected(g, q, &st->bad_type);
    /* Invalidate (Xen sends it to every server): completed, counted, no device access. */
    q = base;
    q.dir = IOREQ_WRITE;
    q.type = IOREQ_TYPE_INVALIDATE;
    expect_rejected(g, q, &st->invalidate);
    /* The last valid byte of memory is fine. */
    uint64_t gpa;
    void *va;
    CU_ASSERT_EQUAL(sx_ioreq_guest_mem_alloc(g, 1, &gpa, &va), 0);
    q = base;
    q.data_is_ptr = 1;
    q.count = 4096;
    q.data = gpa;
    q.state = STATE_IOREQ_READY;
    ioreq_t r;
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, &r), 0);
    CU_ASSERT_EQUAL(st->bad_count + st->bad_ptr + st->bad_size + st->bad_addr, 12);
    /* Still serving. */
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x81, 9), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x81), 9);
    CU_ASSERT_EQUAL(atomic_load(&step_errors), 0);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_bad_states_are_counted_not_served(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 1), 0);   /* connected */
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    unsigned calls = atomic_load(&handler_calls);
    uint64_t handled = st->handled;
    ioreq_t q = { .addr = 0x80, .count = 1, .size = 1, .dir = IOREQ_WRITE, .data = 2,
                  .type = IOREQ_TYPE_PIO, .state = 7 };
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, NULL), 0);
    CU_ASSERT(wait_for(&st->bad_state, 1));
    q.state = STATE_IOREQ_INPROCESS;                  /* the guest claims the server's state */
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, NULL), 0);
    CU_ASSERT(wait_for(&st->bad_state, 2));
    /* Counted once per change, not once per step. */
    struct timespec ts = { 0, 150 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    CU_ASSERT_EQUAL(st->bad_state, 2);
    CU_ASSERT_EQUAL(st->handled, handled);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls);
    CU_ASSERT_EQUAL(regs[0], 1);
    /* A proper request afterwards works. */
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 3), 0);
    CU_ASSERT_EQUAL(regs[0], 3);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_unclaimed_and_registration(void)
{
    server_open(0);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0x9f, 0xa0), -EEXIST);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0x70, 0x7f), 0);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0x10, 0x5), -EINVAL);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0xfff0, 0x10000), -EINVAL);
    CU_ASSERT_EQUAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0x70, 0x7f), 0);  /* other space */
    CU_ASSERT_EQUAL(sx_ioreq_unmap_range(srv, SX_IOREQ_PORT, 0x70, 0x7e), -ENOENT);
    CU_ASSERT_EQUAL(sx_ioreq_unmap_range(srv, SX_IOREQ_PORT, 0x70, 0x7f), 0);
    CU_ASSERT_EQUAL(sx_ioreq_map_pcidev(srv, 0, 0, 3, 0), 0);
    CU_ASSERT_EQUAL(sx_ioreq_map_pcidev(srv, 0, 0, 3, 0), -EEXIST);
    CU_ASSERT_EQUAL(sx_ioreq_map_pcidev(srv, 0, 0, 32, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_ioreq_unmap_pcidev(srv, 0, 0, 4, 0), -ENOENT);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x300), 0xff);
    CU_ASSERT_EQUAL(sx_ioreq_inl(g, 0x9e), 0xffffffff);   /* runs past the claimed range */
    uint64_t v = 0;
    CU_ASSERT_EQUAL(sx_ioreq_mmio_read(g, 0xfd000000, 4, &v), 0);
    CU_ASSERT_EQUAL(v, 0xffffffff);
    CU_ASSERT_EQUAL(st->unclaimed, 3);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), 0);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_buffered_writes(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0), 0);   /* connected */
    for (unsigned i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0x80 + i, 1, 0xa0 + i), 0);
    CU_ASSERT(wait_for(&st->buffered, 16));
    for (unsigned i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(regs[i], 0xa0 + i);
    CU_ASSERT_EQUAL(sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0x1 << 20, 1, 0), -EINVAL);
    /* Fill the ring faster than it drains: -EAGAIN, never a lost or torn entry. */
    unsigned posted = 0, again = 0;
    for (unsigned i = 0; i < 5000; i++) {
        int rc = sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0x8e, 2, i);
        if (rc == 0)
            posted++;
        else if (rc == -EAGAIN)
            again++;
    }
    CU_ASSERT_EQUAL(posted + again, 5000);
    CU_ASSERT(wait_for(&st->buffered, 16 + posted));
    CU_ASSERT_EQUAL(st->bad_buffered, 0);
    /* A hostile write pointer: counted, the ring resynchronised, requests still served. */
    uint64_t size;
    uint8_t *mem = sx_ioreq_guest_mem(g, &size);
    buffered_iopage_t *bp = (buffered_iopage_t *)(mem + sx_ioreq_sim_bufioreq_pfn(size / 4096) * 4096);
    bp->write_pointer = bp->read_pointer + 100000;
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0x11), 0);
    CU_ASSERT(wait_for(&st->bad_buffered, 1));
    CU_ASSERT_EQUAL(bp->read_pointer, bp->write_pointer);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x80), 0x11);
    sx_ioreq_guest_close(g);
    server_stop();
}

/* ---- flood ---- */

static struct sx_ioreq_guest *flood_g;
static _Atomic int flood_stop;
static _Atomic unsigned long flood_posts;

static void *flooder(void *arg)
{
    (void)arg;
    ioreq_t q = { .addr = 0x8c, .count = 4096, .size = 1, .data_is_ptr = 0, .data = 1,
                  .dir = IOREQ_WRITE, .type = IOREQ_TYPE_PIO, .state = STATE_IOREQ_READY };
    while (!atomic_load(&flood_stop)) {
        /* Repost without waiting for responses: the slot is READY nearly all the time, and
         * every request asks for the maximum rep count. */
        sx_ioreq_guest_raw(flood_g, 0, &q, NULL);
        atomic_fetch_add(&flood_posts, 1);
    }
    return NULL;
}

static void test_flood_keeps_server_bounded_and_responsive(void)
{
    const unsigned budget = 8;
    server_open(budget);
    server_start();
    flood_g = guest_open();
    CU_ASSERT_EQUAL(sx_ioreq_outb(flood_g, 0x80, 0), 0);
    atomic_store(&flood_stop, 0);
    atomic_store(&flood_posts, 0);
    pthread_t ft;
    CU_ASSERT_FATAL(pthread_create(&ft, NULL, flooder, NULL) == 0);
    /* vCPU 1 keeps working while vCPU 0 floods. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double worst = 0, elapsed = 0;
    unsigned ok = 0, i = 0;
    for (; elapsed < 400.0; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        uint64_t v = i & 0xff;
        if (sx_ioreq_guest_io(flood_g, 1, IOREQ_TYPE_PIO, IOREQ_WRITE, 0x81, 1, &v) == 0)
            ok++;
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms > worst)
            worst = ms;
        elapsed = (double)(b.tv_sec - t0.tv_sec) * 1e3 + (double)(b.tv_nsec - t0.tv_nsec) / 1e6;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_store(&flood_stop, 1);
    pthread_join(ft, NULL);
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    printf("\n    flood: %lu posts, %" PRIu64 " handled, %" PRIu64 " steps, %" PRIu64
           " budget-limited, max %d per step; vCPU 1: %u/%u ok, worst %.2f ms, total %.0f ms\n",
           atomic_load(&flood_posts), st->handled, st->steps, st->budget_exhausted,
           atomic_load(&max_step), ok, i,
           worst, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    CU_ASSERT_EQUAL(ok, i);
    CU_ASSERT(i > 100);
    CU_ASSERT(atomic_load(&max_step) <= (int)budget);
    CU_ASSERT(atomic_load(&flood_posts) > i);
    CU_ASSERT(st->handled > i);       /* the flood was served too, just bounded */
    CU_ASSERT(worst < 1000.0);
    CU_ASSERT_EQUAL(atomic_load(&step_errors), 0);
    sx_ioreq_guest_close(flood_g);
    server_stop();
}

static void test_dma_bounds(void)
{
    server_open(0);
    struct sx_ioreq_guest *g = guest_open();
    uint64_t memsz;
    uint8_t *mem = sx_ioreq_guest_mem(g, &memsz);
    uint64_t gpa;
    void *va;
    CU_ASSERT_FATAL(sx_ioreq_guest_mem_alloc(g, 2, &gpa, &va) == 0);
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, gpa + 4090, "crossing", 8), 0);
    CU_ASSERT_EQUAL(memcmp((char *)va + 4090, "crossing", 8), 0);
    char buf[8];
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, gpa + 4090, buf, 8), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "crossing", 8), 0);
    uint64_t refused = st->dma_refused;
    CU_ASSERT_EQUAL(sx_ioreq_dma_write(srv, memsz - 4, buf, 8), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, memsz, buf, 1), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, UINT64_MAX - 2, buf, 8), -EFAULT);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, 0, buf, (size_t)memsz + 1), -EFAULT);
    CU_ASSERT_EQUAL(st->dma_refused, refused + 4);
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, memsz - 8, buf, 8), 0);     /* the last bytes */
    CU_ASSERT_EQUAL(sx_ioreq_dma_read(srv, memsz, buf, 0), 0);         /* empty is fine */
    uint8_t *p = sx_ioreq_dma_map(srv, gpa, 8192, true);
    CU_ASSERT_FATAL(p != NULL);
    p[8191] = 0x5c;                                   /* the server's mapping is guest memory */
    CU_ASSERT_EQUAL(mem[gpa + 8191], 0x5c);
    sx_ioreq_dma_unmap(srv, p, 8192);
    errno = 0;
    CU_ASSERT_PTR_NULL(sx_ioreq_dma_map(srv, memsz - 4096, 8192, false));
    CU_ASSERT_EQUAL(errno, EFAULT);
    CU_ASSERT_PTR_NULL(sx_ioreq_dma_map(srv, 0, SX_IOREQ_DMA_MAP_MAX + 1, false));
    CU_ASSERT_EQUAL(errno, EINVAL);
    sx_ioreq_guest_mem_free(g, gpa, 2);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_interrupt_lines_and_msi(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x90, 4 | 0x100), 0);    /* raise ISA IRQ 4 */
    CU_ASSERT_EQUAL(sx_ioreq_guest_irq_wait(g, 2000), 1);
    CU_ASSERT(sx_ioreq_guest_irq_level(g, 4));
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x90, 4 | 0x100), 0);    /* already high: no new event */
    CU_ASSERT_EQUAL(sx_ioreq_guest_irq_wait(g, 100), 0);
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x90, 4), 0);            /* lower */
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, 4));
    /* PCI INTA# of device 3 arrives on Xen's GSI for it. */
    unsigned gsi = sx_ioreq_pci_intx_gsi(3, 0);
    CU_ASSERT_EQUAL(gsi, 28);
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x92, 3 | 0x80), 0);
    CU_ASSERT_EQUAL(sx_ioreq_guest_irq_wait(g, 2000), 1);
    CU_ASSERT(sx_ioreq_guest_irq_level(g, gsi));
    CU_ASSERT_EQUAL(sx_ioreq_outw(g, 0x92, 3), 0);
    CU_ASSERT_FALSE(sx_ioreq_guest_irq_level(g, gsi));
    /* MSIs queue in order. */
    CU_ASSERT_EQUAL(sx_ioreq_outl(g, 0x94, 0x4041), 0);
    CU_ASSERT_EQUAL(sx_ioreq_outl(g, 0x94, 0x4042), 0);
    CU_ASSERT_EQUAL(sx_ioreq_guest_irq_wait(g, 2000), 1);
    uint64_t addr;
    uint32_t data;
    CU_ASSERT_EQUAL(sx_ioreq_guest_msi_pop(g, &addr, &data), 1);
    CU_ASSERT_EQUAL(addr, 0xfee00000);
    CU_ASSERT_EQUAL(data, 0x4041);
    CU_ASSERT_EQUAL(sx_ioreq_guest_msi_pop(g, &addr, &data), 1);
    CU_ASSERT_EQUAL(data, 0x4042);
    CU_ASSERT_EQUAL(sx_ioreq_guest_msi_pop(g, &addr, &data), 0);
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(st->irq_raises, 3);
    CU_ASSERT_EQUAL(st->irq_lowers, 2);
    CU_ASSERT_EQUAL(st->msis, 2);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_guest_reconnects(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0x42), 0);
    sx_ioreq_guest_close(g);
    g = guest_open();                                 /* a rebooted guest: new ports */
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x80), 0x42);
    CU_ASSERT_EQUAL(sx_ioreq_stats(srv)->connects, 2);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_guest_before_server_and_no_server(void)
{
    /* The guest comes first: its request waits until the server shows up. */
    struct sx_ioreq_guest *g = guest_open();
    sx_ioreq_guest_set_timeout(g, 200);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 1), -ETIMEDOUT);    /* nobody serves */
    server_open(0);
    server_start();
    sx_ioreq_guest_set_timeout(g, 3000);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 7), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x80), 7);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_not_hvm(void)
{
    int pv = sxc_domain_create(plat0->conn, "pv-ioreq", SXD_TYPE_PV, 16, 1, false);
    CU_ASSERT_FATAL(pv > 0);
    struct sx_ioreq_opts o = { .domid = (domid_t)pv, .handler = handler };
    struct sx_ioreq *r = NULL;
    CU_ASSERT_EQUAL(sx_ioreq_open(&r, plat0, &o), -EINVAL);
    CU_ASSERT_PTR_NULL(r);
    o.handler = NULL;
    o.domid = hvm;
    CU_ASSERT_EQUAL(sx_ioreq_open(&r, plat0, &o), -EINVAL);
    o.handler = handler;
    o.nr_vcpus = SX_IOREQ_MAX_VCPUS + 1;
    CU_ASSERT_EQUAL(sx_ioreq_open(&r, plat0, &o), -EINVAL);
    struct sx_plat *pp = simenv_plat(&env, (domid_t)pv);
    CU_ASSERT_FATAL(pp != NULL);
    struct sx_ioreq_guest *g = NULL;
    CU_ASSERT_EQUAL(sx_ioreq_guest_open(&g, pp, 0), -EINVAL);
    sx_plat_close(pp);
    sxc_domain_destroy(plat0->conn, (domid_t)pv);
}

static void test_check_rules(void)
{
    ioreq_t q = { .addr = 0x1000, .count = 1, .size = 4, .type = IOREQ_TYPE_COPY };
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), 0);
    q.size = 8;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), 0);
    q.type = IOREQ_TYPE_PCI_CONFIG;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), -EINVAL);
    q.type = IOREQ_TYPE_COPY;
    q.data_is_ptr = 1;
    q.count = 512;                      /* 4096 bytes */
    q.data = (1 << 20) - 4096;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), 0);
    q.data += 1;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), -EFAULT);
    q.df = 1;
    q.data = 4088;                      /* walks down to exactly 0 */
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), 0);
    q.data = 4087;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), -EFAULT);
    q.count = 513;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 1 << 20), -ERANGE);
}

/* One check case: a request and what sx_ioreq_check says of it. */
struct check_case {
    const char *what;
    uint8_t type, df, ptr;
    uint64_t addr, data;
    uint32_t size, count;
    int want;
};

#define MEM (1ull << 20)
#define TOP UINT64_MAX

static const struct check_case range_cases[] = {
    /* MMIO at the top of the address space, DF clear: [addr, addr + count*size). */
    { "mmio ends at 2^64", IOREQ_TYPE_COPY, 0, 0, TOP - 3, 0, 4, 1, 0 },
    { "mmio wraps by 1", IOREQ_TYPE_COPY, 0, 0, TOP - 2, 0, 4, 1, -EOVERFLOW },
    { "mmio 0xff..fe size 4", IOREQ_TYPE_COPY, 0, 0, TOP - 1, 0, 4, 1, -EOVERFLOW },
    { "mmio 8 bytes at the top", IOREQ_TYPE_COPY, 0, 0, TOP - 7, 0, 8, 1, 0 },
    { "mmio rep ends at 2^64", IOREQ_TYPE_COPY, 0, 0, TOP - 15, 0, 4, 4, 0 },
    { "mmio rep wraps", IOREQ_TYPE_COPY, 0, 0, TOP - 14, 0, 4, 4, -EOVERFLOW },
    /* DF set: [addr - (count-1)*size, addr + size); both ends count. */
    { "mmio df 0xff..fe size 4", IOREQ_TYPE_COPY, 1, 0, TOP - 1, 0, 4, 1, -EOVERFLOW },
    { "mmio df ends at 2^64", IOREQ_TYPE_COPY, 1, 0, TOP - 3, 0, 4, 1, 0 },
    { "mmio df rep top wraps", IOREQ_TYPE_COPY, 1, 0, TOP - 2, 0, 4, 4, -EOVERFLOW },
    { "mmio df rep top fits", IOREQ_TYPE_COPY, 1, 0, TOP - 3, 0, 4, 4, 0 },
    { "mmio df rep reaches 0", IOREQ_TYPE_COPY, 1, 0, 12, 0, 4, 4, 0 },
    { "mmio df rep below 0", IOREQ_TYPE_COPY, 1, 0, 11, 0, 4, 4, -EOVERFLOW },
    { "mmio df rep stos below 0", IOREQ_TYPE_COPY, 1, 0, 0, 0, 1, 2, -EOVERFLOW },
    /* Ports: 0..0xffff, the port does not advance in a rep, whichever DF. */
    { "port 0xffff size 1", IOREQ_TYPE_PIO, 0, 0, 0xffff, 0, 1, 1, 0 },
    { "port 0xfffc size 4", IOREQ_TYPE_PIO, 0, 0, 0xfffc, 0, 4, 1, 0 },
    { "port 0xfffe size 4", IOREQ_TYPE_PIO, 0, 0, 0xfffe, 0, 4, 1, -EOVERFLOW },
    { "port 0xffff size 2", IOREQ_TYPE_PIO, 0, 0, 0xffff, 0, 2, 1, -EOVERFLOW },
    { "port 0x10000", IOREQ_TYPE_PIO, 0, 0, 0x10000, 0, 1, 1, -EOVERFLOW },
    { "port 0xff..fe size 4", IOREQ_TYPE_PIO, 0, 0, TOP - 1, 0, 4, 1, -EOVERFLOW },
    { "port df 0xff..fe size 4", IOREQ_TYPE_PIO, 1, 0, TOP - 1, 0, 4, 1, -EOVERFLOW },
    { "port rep at 0xfffc", IOREQ_TYPE_PIO, 0, 1, 0xfffc, 0x1000, 4, 16, 0 },
    { "port df rep at 0xfffc", IOREQ_TYPE_PIO, 1, 1, 0xfffc, 0x1000, 4, 16, 0 },
    { "port rep at 0xfffe", IOREQ_TYPE_PIO, 0, 1, 0xfffe, 0x1000, 4, 16, -EOVERFLOW },
    { "port df rep at 0xfffe", IOREQ_TYPE_PIO, 1, 1, 0xfffe, 0x1000, 4, 16, -EOVERFLOW },
    /* Config space: the register (low 32 bits) within 0..0xfff, the SBDF above it. */
    { "config 0xffc size 4", IOREQ_TYPE_PCI_CONFIG, 0, 0, (0x18ull << 32) | 0xffc, 0, 4, 1, 0 },
    { "config 0xffe size 4", IOREQ_TYPE_PCI_CONFIG, 0, 0, (0x18ull << 32) | 0xffe, 0, 4, 1,
      -EOVERFLOW },
    { "config 0x1000", IOREQ_TYPE_PCI_CONFIG, 0, 0, (0x18ull << 32) | 0x1000, 0, 1, 1,
      -EOVERFLOW },
    { "config 0xffffffff", IOREQ_TYPE_PCI_CONFIG, 0, 0, (0x18ull << 32) | 0xffffffff, 0, 1, 1,
      -EOVERFLOW },
    { "config rep", IOREQ_TYPE_PCI_CONFIG, 0, 0, 0x18ull << 32, 0, 4, 2, -ERANGE },
    /* count * size: a 64-bit product, never wrapped to something small. */
    { "count*size 2^32", IOREQ_TYPE_COPY, 0, 1, 0, 0, 8, 0x20000000u, -ERANGE },
    { "count*size 2^32 + 4", IOREQ_TYPE_COPY, 0, 1, 0, 0, 4, 0x40000001u, -ERANGE },
    { "count 2^32-1 size 8", IOREQ_TYPE_COPY, 1, 1, TOP, TOP, 8, 0xffffffffu, -ERANGE },
    { "count 0", IOREQ_TYPE_COPY, 0, 0, 0x1000, 0, 4, 0, -ERANGE },
    { "one page of reps", IOREQ_TYPE_COPY, 0, 1, 0x1000, 0, 8, 512, 0 },
    { "a page and one element", IOREQ_TYPE_COPY, 0, 1, 0x1000, 0, 8, 513, -ERANGE },
    /* Sizes. */
    { "size 0", IOREQ_TYPE_COPY, 0, 0, 0x1000, 0, 0, 1, -EINVAL },
    { "size 0 at the top", IOREQ_TYPE_COPY, 0, 0, TOP, 0, 0, 1, -EINVAL },
    { "size 0 port", IOREQ_TYPE_PIO, 0, 0, 0x80, 0, 0, 1, -EINVAL },
    { "size 3", IOREQ_TYPE_COPY, 0, 0, 0x1000, 0, 3, 1, -EINVAL },
    { "size 16", IOREQ_TYPE_COPY, 0, 0, 0x1000, 0, 16, 1, -EINVAL },
    { "size 2^31", IOREQ_TYPE_COPY, 0, 0, 0x1000, 0, 0x80000000u, 1, -EINVAL },
    { "size 2^32-1", IOREQ_TYPE_PIO, 0, 0, 0x80, 0, 0xffffffffu, 1, -EINVAL },
    { "size 8 port", IOREQ_TYPE_PIO, 0, 0, 0x80, 0, 8, 1, -EINVAL },
    { "size 8 config", IOREQ_TYPE_PCI_CONFIG, 0, 0, 0, 0, 8, 1, -EINVAL },
    /* Guest memory of a pointer rep, walked like the device side, against 1 MiB. */
    { "ptr ends at memory end", IOREQ_TYPE_COPY, 0, 1, 0x1000, MEM - 16, 4, 4, 0 },
    { "ptr one past", IOREQ_TYPE_COPY, 0, 1, 0x1000, MEM - 15, 4, 4, -EFAULT },
    { "ptr df ends at memory end", IOREQ_TYPE_COPY, 1, 1, 0x100c, MEM - 4, 4, 4, 0 },
    { "ptr df one past", IOREQ_TYPE_COPY, 1, 1, 0x100c, MEM - 3, 4, 4, -EFAULT },
    { "ptr df top wraps", IOREQ_TYPE_COPY, 1, 1, 0x100c, TOP - 1, 4, 4, -EFAULT },
    { "ptr df below 0", IOREQ_TYPE_COPY, 1, 1, 0x100c, 11, 4, 4, -EFAULT },
};

/* Regression (issue 14): a COPY at 0xffff...fffe of 4 bytes with DF set was accepted (it wraps
 * past 2^64), and port ranges were never checked (addr + size - 1 > 0xffff). */
static void test_check_every_address_range_without_wrap(void)
{
    for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
        const struct check_case *c = &range_cases[i];
        ioreq_t q = { .addr = c->addr, .data = c->data, .count = c->count, .size = c->size,
                      .df = c->df, .data_is_ptr = c->ptr, .dir = IOREQ_WRITE, .type = c->type };
        int rc = sx_ioreq_check(&q, MEM);
        if (rc != c->want)
            fprintf(stderr, "  case '%s': got %d, want %d\n", c->what, rc, c->want);
        CU_ASSERT_EQUAL(rc, c->want);
    }
    /* No bound known for memory (xen): a pointer rep may end exactly at 2^64. */
    ioreq_t q = { .addr = 0x1000, .data = TOP - 15, .count = 4, .size = 4, .data_is_ptr = 1,
                  .type = IOREQ_TYPE_COPY };
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, UINT64_MAX), 0);
    q.data = TOP - 14;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, UINT64_MAX), -EFAULT);
    /* No memory at all. */
    q.data = 0;
    CU_ASSERT_EQUAL(sx_ioreq_check(&q, 0), -EFAULT);
}

/* The same through the server: wrapping requests complete with all ones, are counted as
 * bad_addr and never reach the device, synchronous or buffered. */
static void test_wrapping_requests_never_reach_the_device(void)
{
    server_open(0);
    /* A claim that covers the top of the port space and all of MMIO above the test window,
     * so only the range check stands between these requests and the handler. */
    CU_ASSERT_FATAL(sx_ioreq_map_range(srv, SX_IOREQ_PORT, 0xff00, 0xffff) == 0);
    CU_ASSERT_FATAL(sx_ioreq_map_range(srv, SX_IOREQ_MMIO, 0xfe001000, UINT64_MAX) == 0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    ioreq_t base = { .count = 1, .size = 4, .dir = IOREQ_READ, .type = IOREQ_TYPE_COPY };
    ioreq_t q = base;
    q.addr = UINT64_MAX - 1;
    q.df = 1;
    expect_rejected(g, q, &st->bad_addr);
    q.df = 0;
    expect_rejected(g, q, &st->bad_addr);
    q.addr = UINT64_MAX - 3;   /* ends exactly at 2^64: served */
    ioreq_t r;
    unsigned calls = atomic_load(&handler_calls);
    q.state = STATE_IOREQ_READY;
    CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, &r), 0);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls + 1);
    q = base;
    q.type = IOREQ_TYPE_PIO;
    q.addr = 0xfffe;
    expect_rejected(g, q, &st->bad_addr);
    q.addr = UINT64_MAX - 1;
    expect_rejected(g, q, &st->bad_addr);
    q.dir = IOREQ_WRITE;
    q.addr = 0xffff;
    q.size = 2;
    expect_rejected(g, q, &st->bad_addr);
    CU_ASSERT_EQUAL(sx_ioreq_inl(g, 0xfffc), 0xffffffffu);   /* the last 4 ports: served */
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls + 2);
    q = base;
    q.type = IOREQ_TYPE_PCI_CONFIG;
    q.addr = 0xffe;
    expect_rejected(g, q, &st->bad_addr);
    /* Buffered writes: a 2-byte write at port 0xffff runs off the port space. */
    uint64_t bad = st->bad_buffered, unclaimed = st->unclaimed;
    CU_ASSERT_EQUAL(sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0xffff, 2, 0x1234), 0);
    CU_ASSERT_EQUAL(sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0xfffe, 4, 0x1234), 0);
    CU_ASSERT_EQUAL(sx_ioreq_guest_buffered(g, IOREQ_TYPE_PIO, 0xffff, 1, 0x12), 0);
    CU_ASSERT(wait_for(&st->buffered, 1));
    CU_ASSERT_EQUAL(st->bad_buffered, bad + 2);
    CU_ASSERT_EQUAL(st->unclaimed, unclaimed);
    CU_ASSERT_EQUAL(atomic_load(&handler_calls), calls + 3);
    CU_ASSERT_EQUAL(atomic_load(&step_errors), 0);
    sx_ioreq_guest_close(g);
    server_stop();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_check_rules),
    SX_TEST(test_check_every_address_range_without_wrap),
    SX_TEST(test_wrapping_requests_never_reach_the_device),
    SX_TEST(test_pio_round_trip),
    SX_TEST(test_mmio_and_reps),
    SX_TEST(test_malformed_requests),
    SX_TEST(test_bad_states_are_counted_not_served),
    SX_TEST(test_unclaimed_and_registration),
    SX_TEST(test_buffered_writes),
    SX_TEST(test_flood_keeps_server_bounded_and_responsive),
    SX_TEST(test_dma_bounds),
    SX_TEST(test_interrupt_lines_and_msi),
    SX_TEST(test_guest_reconnects),
    SX_TEST(test_guest_before_server_and_no_server),
    SX_TEST(test_not_hvm),
};

SX_TEST_MAIN("ioreq", cases, ioreqenv_init, ioreqenv_clean)
