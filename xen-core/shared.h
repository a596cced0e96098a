/*
 * The sim hypervisor's per-domain shared state.
 *
 * Every domain has two memfds:
 *   mem  — guest memory; frame number = page offset in the file.
 *   ctl  — this structure: the domain's grant table (as the guest sees it, grant_entry_v1_t),
 *          the hypervisor's active-grant (pin) table, event channel ports, and the guest page
 *          and grant-reference allocators.
 * The daemon creates both; processes that attach to the domain (its "kernel") or open it as a
 * foreign domain (backends) map them. Grant map/copy and event notification then run in the
 * calling process on this shared memory with atomics, never through the daemon.
 * The sim is not an isolation boundary: a process that holds the fds can write anything.
 */
#ifndef SPLITXEN_XEN_CORE_SHARED_H
#define SPLITXEN_XEN_CORE_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>

#define SXD_MAGIC 0x31445853u   /* "SXD1" */
#define SXD_VERSION 2u
#define SXD_PAGE_SIZE 4096u

#define SXD_NR_GRANT_DEFAULT 32768u   /* 64 grant frames of v1 entries */
#define SXD_NR_PORTS_DEFAULT 4096u
/* Xen reserves the first grant entries for the toolstack (console, xenstore). */
#define SXD_GNTTAB_RESERVED 8u

enum sxd_dom_type { SXD_TYPE_PV = 0, SXD_TYPE_HVM = 1 };
enum sxd_dom_state {
    SXD_STATE_RUNNING = 0,
    SXD_STATE_PAUSED = 1,
    SXD_STATE_DYING = 2,
    SXD_STATE_SUSPENDED = 3,     /* every process of its kernel is in the suspend hypercall */
};

enum sxd_port_state {
    SXD_PORT_FREE = 0,
    SXD_PORT_UNBOUND = 1,      /* allocated for remote_dom to bind */
    SXD_PORT_INTERDOMAIN = 2,  /* connected to remote_dom:remote_port */
};

/* One event channel port. State fields change only in the daemon (bumping gen); pending and
 * masked are shared between notifiers and the owning handle. */
struct sxd_port {
    _Atomic uint32_t state;
    _Atomic uint32_t remote_dom;
    _Atomic uint32_t remote_port;
    _Atomic uint32_t gen;        /* bumped on every bind/close */
    _Atomic uint32_t pending;
    _Atomic uint32_t masked;
    _Atomic uint32_t owner;      /* daemon handle id of the binding handle */
    uint32_t pad;
};

/* The hypervisor's view of one grant entry while pinned (Xen's active_grant_entry). */
struct sxd_active {
    _Atomic uint32_t lock;
    uint32_t rd_pins;            /* read-only mappings and copies in flight */
    uint32_t wr_pins;            /* writable mappings and copies in flight */
    uint32_t frame;              /* frame latched at first pin */
    uint32_t mapper;             /* domid holding the pins */
    uint32_t pad[3];
};

struct sxd_shared {
    uint32_t magic, version;
    uint32_t domid, type;
    _Atomic uint32_t state;
    uint32_t vcpus;
    char name[64];
    uint64_t nr_pages;
    uint32_t nr_grant, nr_ports;
    uint64_t off_page_bitmap, off_gref_bitmap, off_grant, off_active, off_ports;
    uint64_t off_dirty, off_round;   /* log-dirty bitmaps, one bit a guest frame */
    uint64_t total_size;
    /* Log-dirty mode (live migration): while set, whoever writes guest memory other than
     * through the guest's own tracked mappings marks the frames in the dirty bitmap. The
     * grant engine does it when a writable pin (a backend's mapping or copy) ends, as Xen marks
     * a granted frame dirty on unmap. The daemon moves the bitmap to the round bitmap for the
     * toolstack (SXP_LOGDIRTY_ROUND). */
    _Atomic uint32_t logdirty;
    uint32_t pad2;
    pthread_mutex_t alloc_lock;  /* robust, process-shared: guards both bitmaps */
    uint64_t pages_used, grefs_used;
    _Atomic uint64_t stat_grant_maps, stat_grant_copies, stat_evtchn_sends;
};

static inline grant_entry_v1_t *sxd_grant_table(struct sxd_shared *s)
{
    return (grant_entry_v1_t *)((char *)s + s->off_grant);
}
static inline struct sxd_active *sxd_active_table(struct sxd_shared *s)
{
    return (struct sxd_active *)((char *)s + s->off_active);
}
static inline struct sxd_port *sxd_ports(struct sxd_shared *s)
{
    return (struct sxd_port *)((char *)s + s->off_ports);
}
static inline uint64_t *sxd_page_bitmap(struct sxd_shared *s)
{
    return (uint64_t *)((char *)s + s->off_page_bitmap);
}
static inline uint64_t *sxd_gref_bitmap(struct sxd_shared *s)
{
    return (uint64_t *)((char *)s + s->off_gref_bitmap);
}
static inline _Atomic uint64_t *sxd_dirty_bitmap(struct sxd_shared *s)
{
    return (_Atomic uint64_t *)((char *)s + s->off_dirty);
}
static inline _Atomic uint64_t *sxd_round_bitmap(struct sxd_shared *s)
{
    return (_Atomic uint64_t *)((char *)s + s->off_round);
}
/* Words in a frame bitmap of this domain. */
static inline uint64_t sxd_bitmap_words(const struct sxd_shared *s)
{
    return (s->nr_pages + 63) / 64;
}

/* Size of the ctl region for the given geometry; fills the offsets when s is non-NULL. */
uint64_t sxd_layout(struct sxd_shared *s, uint64_t nr_pages, uint32_t nr_grant, uint32_t nr_ports);

/* Allocate `count` contiguous guest frames (first-fit). Returns first frame or -ENOMEM. */
int64_t sxd_pages_alloc(struct sxd_shared *s, uint32_t count);
void sxd_pages_free(struct sxd_shared *s, uint64_t frame, uint32_t count);
/* Allocate one grant reference (never a reserved one). Returns the ref or -ENOSPC. */
int64_t sxd_gref_alloc(struct sxd_shared *s);
void sxd_gref_free(struct sxd_shared *s, grant_ref_t ref);

/* Pin grant `ref` of domain `s` for domain `mapper` (Xen's _set_status_v1 + active entry).
 * Returns GNTST_okay and the frame, or a GNTST_* error. */
int16_t sxd_grant_pin(struct sxd_shared *s, grant_ref_t ref, domid_t mapper, int writable,
                      uint32_t *frame);
/* Ends one pin. Ending a writable pin while the domain is in log-dirty mode marks the frame
 * dirty. */
void sxd_grant_unpin(struct sxd_shared *s, grant_ref_t ref, int writable);

/* Mark a frame dirty (log-dirty mode). */
static inline void sxd_dirty_mark(struct sxd_shared *s, uint64_t frame)
{
    if (frame < s->nr_pages)
        atomic_fetch_or_explicit(&sxd_dirty_bitmap(s)[frame / 64], 1ull << (frame % 64),
                                 memory_order_relaxed);
}

#endif
