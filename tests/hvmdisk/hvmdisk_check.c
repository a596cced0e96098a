/*
 * sx-hvmdisk-check: a sim HVM guest exercising the AHCI disk through sx_hvmdisk: identify,
 * synchronous write/read-back at several sizes, 32 NCQ writes then reads in flight at once
 * (patterns per tag), flush, trim (reads back zeros). Prints the identity and "PASS".
 *
 *   sx-hvmdisk-check --domid N
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/hvmdisk/hvmdisk.h"

#define CHECK(c, ...)                                                                  \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\n");                                                     \
            goto out;                                                                  \
        }                                                                              \
    } while (0)

static void fill(uint8_t *b, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i += 4) {
        seed = seed * 1103515245u + 12345u;
        memcpy(b + i, &seed, 4);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--domid"))
        return 2;
    domid_t domid = (domid_t)atoi(argv[2]);
    struct sx_plat *p = NULL;
    struct sx_hvmdisk *h = NULL;
    uint8_t *wb = NULL, *rb = NULL;
    int ret = 1, rc = sx_plat_open(&p, SX_PLAT_SIM, domid, NULL);
    CHECK(rc == 0, "attach: %s", strerror(-rc));
    rc = sx_hvmdisk_open(&h, p, NULL);
    CHECK(rc == 0, "open: %s", strerror(-rc));
    const struct sx_hvmdisk_info *in = sx_hvmdisk_info(h);
    printf("devfn %02x abar %#" PRIx64 " line %u\n", in->devfn, in->abar, in->irq_line);
    printf("sectors %" PRIu64 " model '%s' serial '%s' firmware '%s' ncq %u depth %u\n",
           in->sectors, in->model, in->serial, in->firmware, in->ncq_depth, in->depth);
    wb = aligned_alloc(4096, 32 * 65536);
    rb = aligned_alloc(4096, 32 * 65536);
    CHECK(wb && rb, "alloc");
    static const size_t sizes[] = { 512, 4096, 8192 + 512, 65536, 131072 };
    uint64_t off = 0;
    for (unsigned i = 0; i < 5; i++) {
        fill(wb, sizes[i], i + 1);
        rc = sx_hvmdisk_rw(h, SX_HVMDISK_WRITE, off, wb, sizes[i]);
        CHECK(rc == 0, "write %zu at %" PRIu64 ": %s", sizes[i], off, strerror(-rc));
        memset(rb, 0, sizes[i]);
        rc = sx_hvmdisk_rw(h, SX_HVMDISK_READ, off, rb, sizes[i]);
        CHECK(rc == 0, "read %zu: %s", sizes[i], strerror(-rc));
        CHECK(!memcmp(wb, rb, sizes[i]), "data mismatch at size %zu", sizes[i]);
        off += 262144;
    }
    /* The last sector, and one past the end. */
    uint64_t last = in->size_bytes - 512;
    fill(wb, 512, 99);
    CHECK(sx_hvmdisk_rw(h, SX_HVMDISK_WRITE, last, wb, 512) == 0, "write last sector");
    CHECK(sx_hvmdisk_rw(h, SX_HVMDISK_READ, last, rb, 512) == 0 && !memcmp(wb, rb, 512),
          "read last sector");
    CHECK(sx_hvmdisk_submit(h, SX_HVMDISK_READ, in->size_bytes, rb, 512, NULL) == -EINVAL,
          "read past the end accepted");
    /* NCQ: every slot in flight at once, writes then reads. */
    unsigned depth = in->depth;
    struct sx_hvmdisk_cpl cpl[32];
    for (int phase = 0; phase < 2; phase++) {
        for (unsigned t = 0; t < depth; t++) {
            uint8_t *b = (phase ? rb : wb) + t * 65536;
            if (!phase)
                fill(b, 16384, 1000 + t);
            rc = sx_hvmdisk_submit(h, phase ? SX_HVMDISK_READ : SX_HVMDISK_WRITE,
                                   (1u << 20) + (uint64_t)t * 65536, b, 16384,
                                   (void *)(uintptr_t)(t + 1));
            CHECK(rc == 0, "submit %u: %s", t, strerror(-rc));
        }
        CHECK(sx_hvmdisk_submit(h, SX_HVMDISK_READ, 0, rb, 512, NULL) == (depth == 32 ? -EAGAIN : 0),
              "slot accounting");
        unsigned got = 0;
        while (got < depth) {
            int n = sx_hvmdisk_wait(h, cpl, 1, 32, 5000);
            CHECK(n > 0, "wait: %d", n);
            for (int i = 0; i < n; i++)
                CHECK(cpl[i].res == 16384, "tag result %d", cpl[i].res);
            got += (unsigned)n;
        }
    }
    for (unsigned t = 0; t < depth; t++)
        CHECK(!memcmp(wb + t * 65536, rb + t * 65536, 16384), "NCQ data mismatch tag %u", t);
    CHECK(sx_hvmdisk_rw(h, SX_HVMDISK_FLUSH, 0, NULL, 0) == 0, "flush");
    /* Trim 64 KiB, read back zeros. */
    CHECK(sx_hvmdisk_rw(h, SX_HVMDISK_DISCARD, 1u << 20, NULL, 65536) == 0, "trim");
    memset(rb, 0xaa, 65536);
    CHECK(sx_hvmdisk_rw(h, SX_HVMDISK_READ, 1u << 20, rb, 65536) == 0, "read trimmed");
    for (unsigned i = 0; i < 65536; i++)
        CHECK(rb[i] == 0, "trimmed byte %u not zero", i);
    const struct sx_hvmdisk_stats *s = sx_hvmdisk_stats(h);
    printf("submitted %" PRIu64 " completed %" PRIu64 " errors %" PRIu64 " mmio %" PRIu64 "\n",
           s->submitted, s->completed, s->errors, s->mmio);
    printf("PASS\n");
    ret = 0;
out:
    free(wb);
    free(rb);
    sx_hvmdisk_close(h);
    sx_plat_close(p);
    return ret;
}
