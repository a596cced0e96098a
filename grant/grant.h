/*
 * Grant tables: the backend side (map/unmap/copy a frontend's grants) and the frontend side
 * (share pages with another domain, end that access). One opaque handle per process and role,
 * sim and xen implementations behind it. Wire types come from Xen's headers: grant_ref_t and
 * GNTST_* from <xen/grant_table.h>, the copy segment from <xengnttab.h>.
 *
 * All calls return 0 (or a count/port) on success and -errno on failure.
 */
#ifndef SPLITXEN_GRANT_H
#define SPLITXEN_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xengnttab.h>

#include "platform/platform.h"

#define SX_PAGE_SIZE 4096u
#define SX_PAGE_SHIFT 12

struct sx_gnt;      /* backend: map and copy foreign grants */
struct sx_gntshr;   /* frontend: grant own pages to another domain */

/* ---- backend side ---- */
int sx_gnt_open(struct sx_gnt **out, struct sx_plat *p);
void sx_gnt_close(struct sx_gnt *g);                      /* NULL-safe */

/* Map `count` grants of domain `domid` into one contiguous range at *addr. With `status`
 * non-NULL each entry gets that ref's GNTST_* code. All or nothing: on failure nothing stays
 * mapped and the return is -EINVAL (a bad grant), -ENOMEM, -ESRCH (no such domain). */
int sx_gnt_map(struct sx_gnt *g, domid_t domid, uint32_t count, const grant_ref_t *refs,
               bool writable, void **addr, int16_t *status);
/* Unmap a range returned by sx_gnt_map; count must match. */
int sx_gnt_unmap(struct sx_gnt *g, void *addr, uint32_t count);
/* Batched grant copy. Each segment's `status` gets a GNTST_* code. Returns 0 when the batch was
 * executed (check each status), -errno when it could not be issued at all. */
int sx_gnt_copy(struct sx_gnt *g, uint32_t count, xengnttab_grant_copy_segment_t *segs);
/* Number of pages currently mapped through this handle (for leak checks and counters). */
uint64_t sx_gnt_mapped_pages(const struct sx_gnt *g);
/* Whether domid's grant `ref` grants the caller's domain access right now, read from the
 * granting domain's table: 1 yes, 0 no (ended, or for another domain). -EOPNOTSUPP where a
 * backend cannot read another domain's grant table (xen), -ESRCH (no such domain), -EINVAL (ref
 * beyond the table). For checks: a frontend that ends a grant the backend maps (the checker). */
int sx_gnt_query(struct sx_gnt *g, domid_t domid, grant_ref_t ref);

/* ---- frontend side ---- */
int sx_gntshr_open(struct sx_gntshr **out, struct sx_plat *p);
void sx_gntshr_close(struct sx_gntshr *s);                 /* NULL-safe */

/* Allocate `count` zeroed pages, grant each to `domid` (read-only unless `writable`), return the
 * refs and a contiguous mapping. */
int sx_gntshr_share(struct sx_gntshr *s, domid_t domid, uint32_t count, bool writable,
                    grant_ref_t *refs, void **addr);
/* As sx_gntshr_share, for pages the caller keeps as its own memory (an I/O buffer): after a
 * move (sx_gntshr_resume) they are no longer shared but stay mapped at *addr, with what they
 * held, until sx_gntshr_close. */
int sx_gntshr_share_buf(struct sx_gntshr *s, domid_t domid, uint32_t count, bool writable,
                        grant_ref_t *refs, void **addr);
/* End access to and free pages from sx_gntshr_share. -EBUSY if the peer still maps any of
 * them (nothing is freed then; call again after the peer unmapped). */
int sx_gntshr_unshare(struct sx_gntshr *s, void *addr, uint32_t count);
/* The domain moved (sx_plat_move, sim): the handle follows it to p's connection. Every page
 * still shared through it is given up there, as a resumed kernel gives up its old rings and
 * buffers: the domain's memory, allocator and grant table travelled with it, so the grant is
 * ended and the frame and reference freed in its new home (nothing there maps them). Later
 * unshares of those addresses return -EINVAL. -EOPNOTSUPP where the platform's own kernel
 * does this (xen). */
int sx_gntshr_resume(struct sx_gntshr *s, struct sx_plat *p);

#endif
