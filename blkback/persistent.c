/*
 * Persistent-grant cache: one per queue, owned by its ring thread. A frontend that negotiated
 * feature-persistent reuses a pool of granted pages; the first use of a grant maps it
 * (writable, blkif.h note 8) and the mapping stays until disconnect. A simple cap (as Linux's
 * xen_blkif_max_pgrants): when the cache is full, further grants are mapped per request.
 * Eviction is left out on purpose: an entry may be in use by in-flight I/O, and the frontend
 * bounds its pool by what its ring can have in flight anyway.
 *
 * With io_uring the cache entries double as the registered-buffer table: slot i is entry i's
 * page, so single-page I/O on a cached grant goes out as READ/WRITE_FIXED.
 */
#define SX_LOG_MODULE "blkback"
#include "blkback/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grant/grant.h"
#include "log.h"

#define NIL UINT32_MAX

int bb_pcache_init(struct bb_pcache *pc, struct sx_gnt *gnt, domid_t dom, uint32_t cap,
                   struct sx_bio *bio)
{
    memset(pc, 0, sizeof(*pc));
    pc->gnt = gnt;
    pc->dom = dom;
    pc->free_head = NIL;
    if (cap == 0)
        return 0;
    uint32_t hs = 1;
    while (hs < cap * 2)
        hs <<= 1;
    pc->ents = calloc(cap, sizeof(*pc->ents));
    pc->hash = malloc(hs * sizeof(*pc->hash));
    if (!pc->ents || !pc->hash) {
        free(pc->ents);
        free(pc->hash);
        memset(pc, 0, sizeof(*pc));
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < hs; i++)
        pc->hash[i] = NIL;
    pc->hmask = hs - 1;
    pc->cap = cap;
    if (bio && cap <= SX_BIO_MAX_BUFFERS && sx_bio_kind(bio) == SX_BIO_URING) {
        /* One table of empty slots now, filled as grants get mapped. Failure is not fatal:
         * I/O then goes out as plain readv/writev. */
        struct iovec *iov = calloc(cap, sizeof(*iov));
        if (iov && sx_bio_register_buffers(bio, iov, cap) == 0) {
            pc->bio = bio;
            pc->regbuf = true;
        }
        free(iov);
    }
    return 0;
}

void bb_pcache_unregister(struct bb_pcache *pc)
{
    if (!pc)
        return;
    if (pc->regbuf)
        sx_bio_unregister_buffers(pc->bio);
    pc->regbuf = false;
    pc->bio = NULL;
}

unsigned bb_pcache_destroy(struct bb_pcache *pc)
{
    unsigned failed = 0;
    if (!pc)
        return 0;
    bb_pcache_unregister(pc);
    for (uint32_t i = 0; i < pc->n; i++)
        if (pc->ents[i].addr) {
            if (sx_gnt_unmap(pc->gnt, pc->ents[i].addr, 1) < 0)
                failed++;
        }
    free(pc->ents);
    free(pc->hash);
    memset(pc, 0, sizeof(*pc));
    return failed;
}

static inline uint32_t hash_ref(grant_ref_t g)
{
    return (uint32_t)((g * 2654435761u) >> 7);
}

void *bb_pcache_get(struct bb_pcache *pc, grant_ref_t gref, uint64_t now, bool *hit, int *err)
{
    *hit = false;
    if (pc->cap == 0) {
        *err = -ENOSPC;
        return NULL;
    }
    uint32_t h = hash_ref(gref) & pc->hmask;
    for (uint32_t i = pc->hash[h]; i != NIL; i = pc->ents[i].next)
        if (pc->ents[i].gref == gref) {
            pc->ents[i].last_use = now;
            *hit = true;
            return pc->ents[i].addr;
        }
    if (pc->n == pc->cap) {
        *err = -ENOSPC;
        return NULL;
    }
    void *addr;
    int rc = sx_gnt_map(pc->gnt, pc->dom, 1, &gref, true, &addr, NULL);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    uint32_t i = pc->n++;
    pc->ents[i] = (struct bb_pgrant){ .gref = gref, .next = pc->hash[h], .addr = addr,
                                      .last_use = now };
    pc->hash[h] = i;
    if (pc->regbuf) {
        struct iovec iov = { addr, SX_BLK_PAGE_SIZE };
        if (sx_bio_update_buffer(pc->bio, i, &iov) < 0) {
            /* Fixed I/O would go to a stale page: stop using registered buffers. */
            sx_bio_unregister_buffers(pc->bio);
            pc->regbuf = false;
        }
    }
    return addr;
}
