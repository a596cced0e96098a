/*
 * A domain's state as the records of the save/migration stream (stream.h): export from a
 * domain mapped with sxc_domain_get, checks, and import into a new paused domain.
 *
 * Payloads (little-endian, as the stream):
 *   DOMAIN      struct sxm_domain: source domid, type, memory, vCPUs, geometry, name, uuid
 *   CONFIG      the xl.cfg text the toolstack rebuilds the devices from
 *   XENSTORE    u32 count, u32 0; count x { u16 path, value, perms lengths, u16 0; path
 *               (relative to /local/domain/<domid>), value, perms ("n@,r0": '@' is the
 *               domain itself) }
 *   PAGES       u32 count, u32 0; count x u64 frame (SXM_PFN_ZERO: the page is all zero and
 *               carries no data); then 4096 bytes for each frame without SXM_PFN_ZERO
 *   PAGE_ALLOC  u64 frames, u64 used; the guest's frame bitmap
 *   GRANTS      u32 entries, u32 count, u64 used; the grant-reference bitmap; count x { u32
 *               ref, u16 flags, u16 domid, u32 frame, u32 0 } (entries in use)
 *   EVTCHN      u32 count, u32 0; count x { u32 port, u32 state, u32 remote domid, u32 remote
 *               port }
 * What is not in the stream: the hypervisor's pins (a grant entry arrives without
 * GTF_reading/GTF_writing: nothing maps it on the new host) and who owned a port (ports come
 * back unbound for their old peer, owned by no process: the guest's processes close them when
 * they resume, as a resumed kernel makes new channels).
 *
 * Functions return 0 (or a count) or -errno; checks write a message naming what is wrong.
 */
#ifndef SPLITXEN_XEN_CORE_DOMSTATE_H
#define SPLITXEN_XEN_CORE_DOMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xen-core/core.h"
#include "xen-core/stream.h"

#define SXM_PFN_ZERO (1ull << 63)
#define SXM_PAGES_PER_RECORD 512u

struct sxm_domain {
    uint32_t domid;             /* on the source */
    uint32_t type;              /* enum sxd_dom_type */
    uint32_t mem_mb, vcpus;
    uint64_t nr_pages;
    uint32_t nr_grant, nr_ports;
    char name[64];
    char uuid[40];              /* "" when unknown */
};

/* Fill from a mapped domain (name, uuid left to the caller when d has none). */
void sxm_domain_info(const struct sxc_dom *d, struct sxm_domain *out);
int sxm_put_domain(struct sxm_writer *w, const struct sxm_domain *info);
/* Decode and check a DOMAIN payload. */
int sxm_get_domain(const void *buf, size_t len, struct sxm_domain *out, char *err,
                   size_t errlen);

/* Counters of what a sender sent. */
struct sxm_page_stats {
    uint64_t pages;             /* frames with data */
    uint64_t zero;              /* frames sent as zero */
    uint64_t skipped;           /* frames never populated (round 0): not sent */
};

/* Round 0 / a save: every populated, non-zero frame (holes in the memfd are skipped without
 * reading them). */
int sxm_put_all_pages(struct sxm_writer *w, const struct sxc_dom *d, struct sxm_page_stats *st);
/* The frames set in `bitmap` (nr_pages bits), zero ones as SXM_PFN_ZERO. */
int sxm_put_dirty_pages(struct sxm_writer *w, const struct sxc_dom *d, const uint64_t *bitmap,
                        struct sxm_page_stats *st);
/* The hypervisor state of a suspended domain: PAGE_ALLOC, GRANTS, EVTCHN. */
int sxm_put_state(struct sxm_writer *w, const struct sxc_dom *d);

/* Set in `bitmap` every frame some grant of the domain has pinned writable (a backend may
 * write it any time: it is dirty in every round). Returns how many were not set before. */
uint64_t sxm_mark_pinned(const struct sxc_dom *d, uint64_t *bitmap);

/* Check a record of `type` against the domain it is for: structure, counts, ranges. */
int sxm_check_record(uint32_t type, const void *buf, size_t len, const struct sxm_domain *dom,
                     char *err, size_t errlen);
/* Import a checked record into the new, paused domain d (frames by pwrite on its memfd, the
 * allocator and grant table into its shared region, ports through the core on conn). CONFIG,
 * XENSTORE and DOMAIN are the toolstack's and ignored here. */
int sxm_apply_record(struct sxc_conn *conn, struct sxc_dom *d, uint32_t type, const void *buf,
                     size_t len);

/* XENSTORE records: a growing buffer of nodes, and a cursor over a checked payload. */
struct sxm_xs_buf {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
};
int sxm_xs_add(struct sxm_xs_buf *b, const char *path, const char *value, size_t vlen,
               const char *perms);
/* The payload to write (count patched in). */
const void *sxm_xs_payload(struct sxm_xs_buf *b, size_t *len);
void sxm_xs_free(struct sxm_xs_buf *b);
struct sxm_xs_node {
    const char *path, *value, *perms;   /* NUL-terminated copies in the cursor's storage */
    size_t vlen;
};
struct sxm_xs_cursor {
    const uint8_t *p, *end;
    uint32_t left;
    char path[2049], value[4097], perms[256];
};
void sxm_xs_cursor(struct sxm_xs_cursor *c, const void *buf, size_t len);
/* 1 and *n filled, 0 at the end, -EPROTO (only on a payload sxm_check_record refused). */
int sxm_xs_next(struct sxm_xs_cursor *c, struct sxm_xs_node *n);

#endif
