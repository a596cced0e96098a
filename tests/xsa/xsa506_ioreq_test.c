/*
 * XSA-506 ("xen/dmop: check number of input buffers"): a device-model call said how many
 * buffers it carried, and Xen used buffers past that count (stack rubble read as a size when
 * XEN_DMOP_modified_memory got one buffer where it needs two).
 *
 * splitxen's ioreq layer (ioreq/) is the device model's side of the same interface; what a
 * request says it carries is checked against what is there before anything is used:
 *
 *   - the buffered ring's pointers claiming more entries than the ring holds: the whole claim
 *     is dropped (counted), no slot read twice or past what was written;
 *   - an 8-byte buffered write needs two slots: with only one published, neither it nor the
 *     slot after it is used;
 *   - a synchronous request's count: 0, past a page of reps, a count whose product with the
 *     size overflows 32 bits, a rep whose guest buffer (data_is_ptr) runs past guest memory:
 *     completed with all ones, never dispatched.
 *
 * Every refused request reaches no device handler (the test device counts its calls), the vCPU
 * is answered, and good requests are served after each.
 */
#include "tests/ioreqenv.h"

#include <unistd.h>

#include "clock.h"

static buffered_iopage_t *bufpage(struct sx_ioreq_guest *g)
{
    uint64_t size;
    uint8_t *mem = sx_ioreq_guest_mem(g, &size);
    return (buffered_iopage_t *)(mem + sx_ioreq_sim_bufioreq_pfn(size / 4096) * 4096);
}

/* The handler saw exactly n more calls than at *mark, then moves the mark. */
static bool calls_since(unsigned *mark, unsigned n)
{
    unsigned now = atomic_load(&handler_calls);
    bool ok = now - *mark == n;
    if (!ok)
        printf("\n  the device saw %u calls, wanted %u\n", now - *mark, n);
    *mark = now;
    return ok;
}

static void test_xsa506_buffered_ring_claims_past_its_slots(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0), 0);      /* connected */
    buffered_iopage_t *bp = bufpage(g);
    unsigned mark = atomic_load(&handler_calls);
    /* Slots full of writes that would hit the device, then pointers claiming 512 + 1. */
    for (unsigned i = 0; i < IOREQ_BUFFER_SLOT_NUM; i++)
        bp->buf_ioreq[i] = (buf_ioreq_t){ .type = IOREQ_TYPE_PIO, .dir = IOREQ_WRITE,
                                          .size = 0, .addr = 0x80, .data = 0x66 };
    uint64_t bad0 = st->bad_buffered;
    uint32_t rd = bp->read_pointer;
    for (uint32_t claim = IOREQ_BUFFER_SLOT_NUM + 1; claim; claim = claim < 0x80000000u
                                                                   ? claim * 4 : 0) {
        atomic_store((_Atomic uint32_t *)&bp->write_pointer, rd + claim);
        CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x81, 1), 0);   /* a kick, and served */
        CU_ASSERT(wait_for(&st->bad_buffered, bad0 + 1));
        bad0 = st->bad_buffered;
        for (uint64_t end = sx_now_ms() + 2000; sx_now_ms() < end &&
             atomic_load((_Atomic uint32_t *)&bp->read_pointer) != bp->write_pointer;)
            usleep(500);
        CU_ASSERT_EQUAL(bp->read_pointer, bp->write_pointer);   /* the claim dropped whole */
        rd = bp->read_pointer;
        CU_ASSERT_TRUE(calls_since(&mark, 1));            /* the outb only */
        CU_ASSERT_NOT_EQUAL(regs[0], 0x66);
    }
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x81), 1);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_xsa506_eight_byte_write_with_one_slot(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    const struct sx_ioreq_stats *st = sx_ioreq_stats(srv);
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x80, 0), 0);
    buffered_iopage_t *bp = bufpage(g);
    uint32_t rd = bp->read_pointer, at = rd % IOREQ_BUFFER_SLOT_NUM;
    /* An 8-byte write (size code 3) in slot `at`, a stale port write in the slot after. */
    bp->buf_ioreq[at] = (buf_ioreq_t){ .type = IOREQ_TYPE_COPY, .dir = IOREQ_WRITE, .size = 3,
                                       .addr = 0x10, .data = 0x11111111 };
    bp->buf_ioreq[(at + 1) % IOREQ_BUFFER_SLOT_NUM] =
        (buf_ioreq_t){ .type = IOREQ_TYPE_PIO, .dir = IOREQ_WRITE, .size = 0, .addr = 0x82,
                       .data = 0x77 };
    unsigned mark = atomic_load(&handler_calls);
    uint64_t bad0 = st->bad_buffered, unclaimed0 = st->unclaimed, buffered0 = st->buffered;
    atomic_store((_Atomic uint32_t *)&bp->write_pointer, rd + 1);   /* one slot only */
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x83, 3), 0);
    CU_ASSERT(wait_for(&st->bad_buffered, bad0 + 1));
    for (uint64_t end = sx_now_ms() + 2000; sx_now_ms() < end &&
         atomic_load((_Atomic uint32_t *)&bp->read_pointer) != rd + 1;)
        usleep(500);
    CU_ASSERT_EQUAL(bp->read_pointer, rd + 1);         /* that slot, not the next */
    CU_ASSERT_TRUE(calls_since(&mark, 1));             /* the outb only */
    CU_ASSERT_EQUAL(st->unclaimed, unclaimed0);        /* the 8-byte write went nowhere */
    CU_ASSERT_EQUAL(st->buffered, buffered0);
    CU_ASSERT_EQUAL(regs[2], 0);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x83), 3);
    sx_ioreq_guest_close(g);
    server_stop();
}

static void test_xsa506_synchronous_counts_checked(void)
{
    server_open(0);
    server_start();
    struct sx_ioreq_guest *g = guest_open();
    uint64_t memsz;
    sx_ioreq_guest_mem(g, &memsz);
    unsigned mark = atomic_load(&handler_calls);
    static const struct { uint32_t count, size; uint8_t type, ptr; uint64_t addr, data; }
        bad[] = {
            { 0, 1, IOREQ_TYPE_PIO, 0, 0x80, 0 },
            { 4097, 1, IOREQ_TYPE_PIO, 0, 0x80, 0 },
            { 0x40000001u, 4, IOREQ_TYPE_PIO, 0, 0x80, 0 },          /* count * 4 == 4 (mod 2^32) */
            { 0x20000001u, 8, IOREQ_TYPE_COPY, 0, 0xfe000000, 0 },    /* count * 8 == 8 */
            { 0xffffffffu, 1, IOREQ_TYPE_PIO, 1, 0x80, 0 },
            { 2, 4, IOREQ_TYPE_PIO, 1, 0x80, UINT64_MAX - 4 },        /* buffer wraps */
            { 512, 8, IOREQ_TYPE_COPY, 1, 0xfe000000, 0 },             /* runs past memory */
            { 2, 1, IOREQ_TYPE_PCI_CONFIG, 0, 0, 0 },                  /* no rep in config */
        };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ioreq_t q = { .addr = bad[i].addr, .count = bad[i].count, .size = bad[i].size,
                      .dir = IOREQ_READ, .type = bad[i].type, .data_is_ptr = bad[i].ptr,
                      .data = bad[i].data, .state = STATE_IOREQ_READY };
        if (i == 6)
            q.data = memsz - 8 * 256;
        ioreq_t r;
        CU_ASSERT_EQUAL(sx_ioreq_guest_raw(g, 0, &q, &r), 0);   /* answered */
        uint64_t ones = ~0ull >> (64 - 8 * bad[i].size);
        if (!bad[i].ptr)   /* a read answered with all ones */
            CU_ASSERT_EQUAL(r.data & ones, ones);
        CU_ASSERT_TRUE(calls_since(&mark, 0));
    }
    CU_ASSERT_EQUAL(sx_ioreq_outb(g, 0x84, 0x42), 0);
    CU_ASSERT_EQUAL(sx_ioreq_inb(g, 0x84), 0x42);
    CU_ASSERT_EQUAL(atomic_load(&step_errors), 0);
    sx_ioreq_guest_close(g);
    server_stop();
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_xsa506_buffered_ring_claims_past_its_slots),
    SX_TEST(test_xsa506_eight_byte_write_with_one_slot),
    SX_TEST(test_xsa506_synchronous_counts_checked),
};

SX_TEST_MAIN("xsa506_ioreq", cases, ioreqenv_init, ioreqenv_clean)
