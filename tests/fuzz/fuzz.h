/*
 * Shared bits of the libFuzzer harnesses (tests/fuzz/): each feeds bytes to the real parsing
 * code and checks, beside "no crash, no sanitizer report", the invariants the code promises
 * its callers; a broken one traps (the input is kept as a crash reproducer).
 */
#ifndef SPLITXEN_FUZZ_H
#define SPLITXEN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A promise the code under test broke: report and trap. */
#define FUZZ_CHECK(cond)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: broken invariant: %s\n", __FILE__, __LINE__, #cond);  \
            __builtin_trap();                                                           \
        }                                                                               \
    } while (0)

/* A cursor over the input: bytes taken from the front; zeros once it ran out. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline void fuzz_take(struct fuzz_in *in, void *out, size_t len)
{
    size_t k = len < in->n ? len : in->n;
    memcpy(out, in->p, k);
    memset((uint8_t *)out + k, 0, len - k);
    in->p += k;
    in->n -= k;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    uint8_t v;
    fuzz_take(in, &v, 1);
    return v;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t v;
    fuzz_take(in, &v, 4);
    return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v;
    fuzz_take(in, &v, 8);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
