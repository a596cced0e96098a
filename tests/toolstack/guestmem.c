/*
 * splitxen-test-guestmem: act as a guest and write, or check, a pattern in the last pages of
 * its memory (where no frontend allocates), for the save/restore and migration tests; or, as
 * domain 0, count the event channel ports domain N has bound or left unbound towards domain R
 * (what a backend may have leaked of a guest that went).
 *   splitxen-test-guestmem --domid N write|check SEED [PAGES]
 *   splitxen-test-guestmem --domid N ports R        prints the count
 * The core socket is $SPLITXEN_CORE or $SPLITXEN_RUN/core.sock. Exit 0 when written or when
 * every byte matches; 1 with the first mismatch printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen-core/core.h"

/* The word at word index w of frame f. */
static uint64_t pattern(uint64_t seed, uint64_t frame, unsigned w)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (frame << 9 | w);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x & 0x0f0f0f0f0f0f0f0full;   /* half the bits: deflate shrinks it, not to nothing */
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "--domid") ||
        (strcmp(argv[3], "write") && strcmp(argv[3], "check") && strcmp(argv[3], "ports"))) {
        fprintf(stderr, "usage: %s --domid N write|check SEED [PAGES] | ports REMOTE\n", argv[0]);
        return 2;
    }
    domid_t domid = (domid_t)strtoul(argv[2], NULL, 10);
    uint64_t seed = strtoull(argv[4], NULL, 0);
    uint64_t pages = argc > 5 ? strtoull(argv[5], NULL, 0) : 64;
    struct sxc_conn *c;
    struct sxc_dom *d;
    int rc = sxc_connect(&c, NULL, domid);
    if (rc == 0)
        rc = sxc_domain_get(c, domid, &d);
    if (rc < 0) {
        fprintf(stderr, "guestmem: dom%u: %s\n", domid, strerror(-rc));
        return 1;
    }
    if (!strcmp(argv[3], "ports")) {
        unsigned n = 0;
        for (uint32_t i = 1; i < d->shared->nr_ports; i++) {
            struct sxd_port *p = &sxd_ports(d->shared)[i];
            n += atomic_load(&p->state) != SXD_PORT_FREE && atomic_load(&p->remote_dom) == seed;
        }
        printf("%u\n", n);
        sxc_domain_put(c, d);
        sxc_disconnect(c);
        return 0;
    }
    uint64_t nr = d->mem_size / 4096;
    if (pages > nr)
        pages = nr;
    int ret = 0;
    for (uint64_t f = nr - pages; f < nr && !ret; f++) {
        uint64_t *p = (uint64_t *)(void *)(d->mem + f * 4096);
        for (unsigned i = 0; i < 512; i++) {
            uint64_t want = pattern(seed, f, i);
            if (!strcmp(argv[3], "write")) {
                p[i] = want;
            } else if (p[i] != want) {
                fprintf(stderr, "guestmem: dom%u frame %llu word %u: %#llx, expected %#llx\n",
                        domid, (unsigned long long)f, i, (unsigned long long)p[i],
                        (unsigned long long)want);
                ret = 1;
                break;
            }
        }
    }
    sxc_domain_put(c, d);
    sxc_disconnect(c);
    return ret;
}
