/*
 * A programmable stand-in for libxengnttab / libxengntshr (the functions grant/grant_xen.c
 * calls, with the real <xengnttab.h> prototypes). A unit test links fake_xengnttab.c instead
 * of -lxengnttab, sets failures in `fake_gnt` and reads back what was called.
 * Maps and shares are real anonymous mmaps, so the code under test can touch the pages.
 */
#ifndef SPLITXEN_FAKE_XENGNTTAB_H
#define SPLITXEN_FAKE_XENGNTTAB_H

#include <stdint.h>
#include <xengnttab.h>

#define FAKE_GNT_MAX_RECORD 64

struct fake_gnt_state {
    /* Programmed: a non-zero errno makes the call fail with it (-1 or NULL). */
    int open_errno, shr_open_errno;
    int map_errno, unmap_errno, copy_errno, set_max_errno, share_errno, unshare_errno;
    /* copy: status written into segment i (on success and, to mimic a partial batch, into
     * the first copy_fail_after segments on failure). */
    int16_t copy_status[FAKE_GNT_MAX_RECORD];
    uint32_t copy_fail_after;
    uint32_t next_ref;              /* share hands out refs from here */

    /* Recorded. */
    unsigned opens, closes, shr_opens, shr_closes;
    int live_handles;               /* opened minus closed, both kinds */
    unsigned map_calls, unmap_calls, copy_calls, set_max_calls, share_calls, unshare_calls;
    uint32_t map_domid, map_count, map_refs[FAKE_GNT_MAX_RECORD];
    int map_prot;
    void *map_addr;                 /* what the last successful map returned */
    void *unmap_addr;
    uint32_t unmap_count;
    uint32_t copy_count;
    xengnttab_grant_copy_segment_t *copy_segs;
    xengnttab_grant_copy_segment_t copy_seen[FAKE_GNT_MAX_RECORD]; /* as passed in */
    uint32_t set_max;
    uint32_t share_domid;
    int share_count, share_writable;
    void *share_addr;
    void *unshare_addr;
    uint32_t unshare_count;
    long live_pages;                /* mapped + shared pages not yet unmapped/unshared */
};

extern struct fake_gnt_state fake_gnt;

/* Forget everything programmed and recorded (pages still mapped are leaked on purpose: call
 * it only between tests that cleaned up). */
void fake_gnt_reset(void);

#endif
