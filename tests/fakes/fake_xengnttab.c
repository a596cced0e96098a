/* See fake_xengnttab.h. Single-threaded, like the tests that use it. */
#include "tests/fakes/fake_xengnttab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FAKE_PAGE 4096u

struct xengntdev_handle {
    int is_shr;
};

struct fake_gnt_state fake_gnt;

void fake_gnt_reset(void)
{
    memset(&fake_gnt, 0, sizeof(fake_gnt));
    fake_gnt.next_ref = 8;
}

static struct xengntdev_handle *fake_open(int err, int is_shr)
{
    struct xengntdev_handle *h;

    if (err) {
        errno = err;
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->is_shr = is_shr;
    fake_gnt.live_handles++;
    return h;
}

static int fake_close(struct xengntdev_handle *h, int is_shr)
{
    if (!h)
        return 0;
    /* A handle of the wrong kind or a double close shows up as a negative live count. */
    if (h->is_shr != is_shr)
        fake_gnt.live_handles -= 1000;
    fake_gnt.live_handles--;
    free(h);
    return 0;
}

static void *fake_pages(uint32_t count)
{
    void *va = mmap(NULL, (size_t)count * FAKE_PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return va == MAP_FAILED ? NULL : va;
}

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    fake_gnt.opens++;
    return fake_open(fake_gnt.open_errno, 0);
}

int xengnttab_close(xengnttab_handle *xgt)
{
    fake_gnt.closes++;
    return fake_close(xgt, 0);
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    (void)xgt;
    fake_gnt.set_max_calls++;
    fake_gnt.set_max = nr_grants;
    if (fake_gnt.set_max_errno) {
        errno = fake_gnt.set_max_errno;
        return -1;
    }
    return 0;
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count, uint32_t domid,
                                      uint32_t *refs, int prot)
{
    void *va;

    (void)xgt;
    fake_gnt.map_calls++;
    fake_gnt.map_domid = domid;
    fake_gnt.map_count = count;
    fake_gnt.map_prot = prot;
    for (uint32_t i = 0; i < count && i < FAKE_GNT_MAX_RECORD; i++)
        fake_gnt.map_refs[i] = refs[i];
    if (fake_gnt.map_errno) {
        errno = fake_gnt.map_errno;
        return NULL;
    }
    va = fake_pages(count);
    if (!va) {
        errno = ENOMEM;
        return NULL;
    }
    fake_gnt.map_addr = va;
    fake_gnt.live_pages += count;
    return va;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    (void)xgt;
    fake_gnt.unmap_calls++;
    fake_gnt.unmap_addr = start_address;
    fake_gnt.unmap_count = count;
    if (fake_gnt.unmap_errno) {
        errno = fake_gnt.unmap_errno;
        return -1;
    }
    if (munmap(start_address, (size_t)count * FAKE_PAGE) < 0)
        return -1;
    fake_gnt.live_pages -= count;
    return 0;
}

int xengnttab_grant_copy(xengnttab_handle *xgt, uint32_t count,
                         xengnttab_grant_copy_segment_t *segs)
{
    uint32_t done;

    (void)xgt;
    fake_gnt.copy_calls++;
    fake_gnt.copy_count = count;
    fake_gnt.copy_segs = segs;
    for (uint32_t i = 0; i < count && i < FAKE_GNT_MAX_RECORD; i++)
        fake_gnt.copy_seen[i] = segs[i];
    done = fake_gnt.copy_errno ? fake_gnt.copy_fail_after : count;
    for (uint32_t i = 0; i < done && i < count; i++)
        segs[i].status = i < FAKE_GNT_MAX_RECORD ? fake_gnt.copy_status[i] : GNTST_okay;
    if (fake_gnt.copy_errno) {
        errno = fake_gnt.copy_errno;
        return -1;
    }
    return 0;
}

xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    fake_gnt.shr_opens++;
    return fake_open(fake_gnt.shr_open_errno, 1);
}

int xengntshr_close(xengntshr_handle *xgs)
{
    fake_gnt.shr_closes++;
    return fake_close(xgs, 1);
}

void *xengntshr_share_pages(xengntshr_handle *xgs, uint32_t domid, int count, uint32_t *refs,
                            int writable)
{
    void *va;

    (void)xgs;
    fake_gnt.share_calls++;
    fake_gnt.share_domid = domid;
    fake_gnt.share_count = count;
    fake_gnt.share_writable = writable;
    if (fake_gnt.share_errno) {
        errno = fake_gnt.share_errno;
        return NULL;
    }
    if (count <= 0) {
        errno = EINVAL;
        return NULL;
    }
    va = fake_pages((uint32_t)count);     /* anonymous pages are zeroed, like gntalloc's */
    if (!va) {
        errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < count; i++)
        refs[i] = fake_gnt.next_ref++;
    fake_gnt.share_addr = va;
    fake_gnt.live_pages += count;
    return va;
}

int xengntshr_unshare(xengntshr_handle *xgs, void *start_address, uint32_t count)
{
    (void)xgs;
    fake_gnt.unshare_calls++;
    fake_gnt.unshare_addr = start_address;
    fake_gnt.unshare_count = count;
    if (fake_gnt.unshare_errno) {
        errno = fake_gnt.unshare_errno;
        return -1;
    }
    if (munmap(start_address, (size_t)count * FAKE_PAGE) < 0)
        return -1;
    fake_gnt.live_pages -= count;
    return 0;
}
