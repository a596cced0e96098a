/*
 * Grant tables on real Xen: the backend side over libxengnttab (/dev/xen/gntdev, Linux module
 * xen-gntdev) and the frontend side over libxengntshr (/dev/xen/gntalloc, xen-gntalloc).
 *
 * These are the `xen` entries of the per-platform ops tables in grant_impl.h; grant/grant.c
 * owns the generic handle, its counters and its idempotent close. Every op returns 0 or
 * -errno: the libraries' -1/NULL + errno is converted here, once.
 *
 * Differences from the sim implementation, forced by what gntdev/gntalloc expose:
 *  - map is all-or-nothing in gntdev and reports no per-ref result. With a status array, every
 *    entry gets GNTST_okay on success and GNTST_general_error on failure (the kernel's
 *    per-ref GNTST_* code does not reach userspace; gntdev fails a bad grant with -EINVAL).
 *  - copy: the segments go to the kernel as they are (same layout as gntdev's ioctl). When the
 *    ioctl fails the kernel may have completed part of the batch and left the other statuses
 *    as the caller initialised them, so every status is overwritten with GNTST_general_error:
 *    a caller that only looks at statuses never mistakes a failed batch for a good one.
 *  - unshare cannot report -EBUSY: gntalloc unmaps at once and ends foreign access later,
 *    in the kernel, when the peer has unmapped (the page stays allocated until then).
 *  - gntalloc pages are zeroed by the kernel (alloc_page(__GFP_ZERO)), as the API promises.
 *
 * Handles are not thread-safe beyond what libxengnttab gives (its calls are independent
 * ioctls/mmaps, safe from several threads); the generic layer owns any shared counters.
 */
#define SX_LOG_MODULE "grant-xen"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "grant/grant_impl.h"

/* Per-handle mapping limit asked of gntdev. Recent Linux kernels ignore the request (the limit
 * is the gntdev module's global `limit` parameter, 64 Ki pages by default); older ones apply
 * it per open file, where the default was 1024, too few for multi-queue blkback with
 * persistent grants. Best-effort: a refusal is not an error. */
#define SX_GNT_XEN_MAX_GRANTS 65536u

/* -errno from the errno a libxen* call left; -EIO if it left none (never return 0 on failure). */
static int neg_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

static void fill_status(int16_t *status, uint32_t count, int16_t code)
{
    if (!status)
        return;
    for (uint32_t i = 0; i < count; i++)
        status[i] = code;
}

/* ---- backend side: libxengnttab ---- */

struct gnt_xen {
    xengnttab_handle *xgt;
};

static void gnt_xen_close(void *priv)
{
    struct gnt_xen *g = priv;

    if (!g)
        return;
    if (g->xgt)
        xengnttab_close(g->xgt);
    free(g);
}

static int gnt_xen_open(void **priv, struct sx_plat *p)
{
    struct gnt_xen *g;
    int rc;

    (void)p;
    *priv = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->xgt = xengnttab_open(NULL, 0);
    if (!g->xgt) {
        rc = neg_errno();
        sx_err("xengnttab_open (/dev/xen/gntdev): %d (is xen-gntdev loaded?)", rc);
        goto err_free;
    }
    if (xengnttab_set_max_grants(g->xgt, SX_GNT_XEN_MAX_GRANTS) < 0)
        sx_debug("xengnttab_set_max_grants(%u): errno %d, keeping the kernel's limit",
                 SX_GNT_XEN_MAX_GRANTS, errno);
    *priv = g;
    return 0;

err_free:
    gnt_xen_close(g);
    return rc;
}

static int gnt_xen_map(void *priv, domid_t domid, uint32_t count, const grant_ref_t *refs,
                       bool writable, void **addr, int16_t *status)
{
    struct gnt_xen *g = priv;
    void *va;
    int rc;

    if (!g || !addr || !refs || count == 0) {
        fill_status(status, count, GNTST_general_error);
        return -EINVAL;
    }
    /* libxengnttab only reads refs; its prototype lacks the const (grant_ref_t is uint32_t). */
    va = xengnttab_map_domain_grant_refs(g->xgt, count, domid, (uint32_t *)refs,
                                         writable ? PROT_READ | PROT_WRITE : PROT_READ);
    if (!va) {
        rc = neg_errno();
        fill_status(status, count, GNTST_general_error);
        sx_log_ratelimited(SX_LOG_DEBUG, "map of %u grants from dom%u (first ref %u): %d",
                           count, domid, refs[0], rc);
        return rc;
    }
    fill_status(status, count, GNTST_okay);
    *addr = va;
    return 0;
}

static int gnt_xen_unmap(void *priv, void *addr, uint32_t count)
{
    struct gnt_xen *g = priv;

    if (!g || !addr || count == 0)
        return -EINVAL;
    if (xengnttab_unmap(g->xgt, addr, count) < 0)
        return neg_errno();
    return 0;
}

static int gnt_xen_copy(void *priv, uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
    struct gnt_xen *g = priv;
    int rc;

    if (!g || (count && !segs))
        return -EINVAL;
    if (count == 0)
        return 0;
    if (xengnttab_grant_copy(g->xgt, count, segs) < 0) {
        rc = neg_errno();
        for (uint32_t i = 0; i < count; i++)
            segs[i].status = GNTST_general_error;
        sx_log_ratelimited(SX_LOG_WARN, "grant copy of %u segments not issued: %d", count, rc);
        return rc;
    }
    return 0;
}

const struct sx_gnt_ops sx_gnt_xen_ops = {
    .open = gnt_xen_open,
    .close = gnt_xen_close,
    .map = gnt_xen_map,
    .unmap = gnt_xen_unmap,
    .copy = gnt_xen_copy,
};

/* ---- frontend side: libxengntshr (gntalloc) ---- */

struct gntshr_xen {
    xengntshr_handle *xgs;
};

static void gntshr_xen_close(void *priv)
{
    struct gntshr_xen *s = priv;

    if (!s)
        return;
    if (s->xgs)
        xengntshr_close(s->xgs);
    free(s);
}

static int gntshr_xen_open(void **priv, struct sx_plat *p)
{
    struct gntshr_xen *s;
    int rc;

    (void)p;
    *priv = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->xgs = xengntshr_open(NULL, 0);
    if (!s->xgs) {
        rc = neg_errno();
        sx_err("xengntshr_open (/dev/xen/gntalloc): %d (is xen-gntalloc loaded?)", rc);
        goto err_free;
    }
    *priv = s;
    return 0;

err_free:
    gntshr_xen_close(s);
    return rc;
}

static int gntshr_xen_share(void *priv, domid_t domid, uint32_t count, bool writable,
                            grant_ref_t *refs, void **addr)
{
    struct gntshr_xen *s = priv;
    void *va;

    if (!s || !refs || !addr || count == 0 || count > INT_MAX)
        return -EINVAL;
    va = xengntshr_share_pages(s->xgs, domid, (int)count, refs, writable);
    if (!va)
        return neg_errno();
    *addr = va;
    return 0;
}

static int gntshr_xen_unshare(void *priv, void *addr, uint32_t count)
{
    struct gntshr_xen *s = priv;

    if (!s || !addr || count == 0)
        return -EINVAL;
    if (xengntshr_unshare(s->xgs, addr, count) < 0)
        return neg_errno();
    return 0;
}

const struct sx_gntshr_ops sx_gntshr_xen_ops = {
    .open = gntshr_xen_open,
    .close = gntshr_xen_close,
    .share = gntshr_xen_share,
    .unshare = gntshr_xen_unshare,
};
