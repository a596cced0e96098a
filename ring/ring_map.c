/*
 * Multi-page rings from a grant-reference list. Kept apart from ring.c so that users of the
 * ring helpers alone do not pull in libsxgrant: link sxgrant only if you call these.
 */
#define SX_LOG_MODULE "ring"
#include "ring/ring.h"

#include <errno.h>

#include "grant/grant.h"
#include "log.h"

int sx_ring_map(struct sx_gnt *g, domid_t dom, unsigned order, const grant_ref_t *refs,
                void **mem)
{
    if (!g || !refs || !mem || order > SX_RING_MAX_ORDER)
        return -EINVAL;
    *mem = NULL;
    uint32_t count = 1u << order;
    void *addr = NULL;
    int rc = sx_gnt_map(g, dom, count, refs, true, &addr, NULL);
    if (rc < 0) {
        sx_log_ratelimited(SX_LOG_WARN, "dom%u: mapping a %u-page ring failed: %d",
                           (unsigned)dom, count, rc);
        return rc;
    }
    *mem = addr;
    return 0;
}

int sx_ring_unmap(struct sx_gnt *g, void *mem, unsigned order)
{
    if (!mem)
        return 0;
    if (!g || order > SX_RING_MAX_ORDER)
        return -EINVAL;
    return sx_gnt_unmap(g, mem, 1u << order);
}
