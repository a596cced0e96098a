/*
 * ioreq handling (ioreq/ioreq.c, included here to reach its serving functions without an
 * event channel): the shared ioreq page of 4 vCPUs and the buffered ring, filled from the
 * input, served once by the real code against a server whose registered ranges and guest
 * memory size also come from the input; then sx_ioreq_check on the requests alone. What the
 * layer promises the device model: an access reaches the device only inside a range it
 * claimed, with a size of 1, 2, 4 or 8; guest memory is mapped only inside guest memory; a
 * READY slot is always answered; the buffered ring's read pointer never passes its write
 * pointer.
 */
#include "tests/fuzz/fuzz.h"
#include "ioreq/ioreq.c"

static struct sx_ioreq R;
static uint8_t gmem[64 * 1024];

static void handler(void *opaque, struct sx_ioreq_access *a)
{
    (void)opaque;
    FUZZ_CHECK(a->size == 1 || a->size == 2 || a->size == 4 || a->size == 8);
    FUZZ_CHECK(claimed(&R, a->type, a->addr, a->size));
    if (a->dir == IOREQ_READ)
        a->data = 0x0123456789abcdefull;
}

static void *fake_map(struct sx_ioreq *r, uint64_t gpa, size_t len, bool writable)
{
    (void)writable;
    FUZZ_CHECK(gpa <= r->mem_size && len <= r->mem_size - gpa);
    FUZZ_CHECK(r->mem_size <= sizeof(gmem));
    return gmem + gpa;
}

static void fake_unmap(struct sx_ioreq *r, void *p, size_t len)
{
    (void)r;
    (void)p;
    (void)len;
}

static const struct sx_ioreq_ops fake_ops = { .name = "fuzz", .dma_map = fake_map,
                                              .dma_unmap = fake_unmap };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    /* shared_iopage_t declares one slot; the page holds one per vCPU */
    static union { shared_iopage_t p; uint8_t page[4096]; } iou;
    shared_iopage_t *iop = &iou.p;
    static buffered_iopage_t buf;
    memset(&R, 0, sizeof(R));
    R.ops = &fake_ops;
    R.domid = 7;
    R.nr_vcpus = 4;
    R.handler = handler;
    R.iopage = iop;
    R.bufpage = &buf;
    R.enabled = true;
    R.kickfd = -1;
    R.mem_size = fuzz_u32(&in) % (sizeof(gmem) + 1);
    for (unsigned v = 0; v < SX_IOREQ_MAX_VCPUS; v++)
        R.vcpu_port[v] = -1;
    R.nranges = fuzz_u8(&in) % 5;
    for (unsigned i = 0; i < R.nranges; i++) {
        R.ranges[i].sp = fuzz_u8(&in) & 1;
        R.ranges[i].start = fuzz_u64(&in);
        uint64_t len = fuzz_u32(&in);
        R.ranges[i].end = R.ranges[i].start + len < R.ranges[i].start ? UINT64_MAX
                                                                       : R.ranges[i].start + len;
    }
    R.npcidevs = fuzz_u8(&in) % 3;
    for (unsigned i = 0; i < R.npcidevs; i++)
        R.pcidevs[i] = fuzz_u32(&in);
    fuzz_take(&in, iou.page, sizeof(ioreq_t) * R.nr_vcpus);
    buf.read_pointer = fuzz_u32(&in);
    buf.write_pointer = fuzz_u32(&in);
    fuzz_take(&in, buf.buf_ioreq, sizeof(buf.buf_ioreq));
    fuzz_take(&in, gmem, sizeof(gmem));
    ioreq_t copy[4];
    memcpy(copy, iou.page, sizeof(copy));

    uint32_t rd0 = buf.read_pointer, wr0 = buf.write_pointer;
    unsigned n = serve_buffered(&R, 256);
    FUZZ_CHECK(n <= 256);
    /* It moves by at most the entries published (a bogus claim: by all of it, reading none). */
    FUZZ_CHECK(buf.read_pointer - rd0 <= wr0 - rd0);
    if (wr0 - rd0 <= IOREQ_BUFFER_SLOT_NUM)
        FUZZ_CHECK(buf.read_pointer - rd0 <= wr0 - rd0);
    for (unsigned v = 0; v < R.nr_vcpus; v++) {
        bool ready = copy[v].state == STATE_IOREQ_READY;
        int done = serve_vcpu(&R, v);
        FUZZ_CHECK(done == (ready ? 1 : 0));
        if (ready)
            FUZZ_CHECK(((volatile ioreq_t *)iou.page)[v].state == STATE_IORESP_READY);
        int rc = sx_ioreq_check(&copy[v], R.mem_size);
        FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EINVAL || rc == -ERANGE ||
                   rc == -EOVERFLOW || rc == -EFAULT);
        if (rc == 0)
            FUZZ_CHECK((uint64_t)copy[v].count * copy[v].size <= SX_IOREQ_MAX_REP_BYTES);
    }
    return 0;
}
