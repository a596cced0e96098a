/*
 * Per-device counters that tools read while a backend runs.
 *
 * A backend creates one stats file per device ($SPLITXEN_RUN/stats/<kind>-<domid>-<devid>), a
 * small mmap'd region: a header naming each counter, then the 64-bit counters themselves. The
 * data path bumps counters with relaxed atomic adds in shared memory (no syscall); `splitxen
 * top` and tests map the files read-only. The file is removed when the device goes away.
 *
 * Each value is a counter (it only grows: requests, bytes, drops) or a gauge (a level that goes
 * up and down: requests in flight, queues, mapped pages). The type is kept in the last byte of
 * the value's name slot, which is 0 for a counter and SX_STATS_GAUGE for a gauge, so a name
 * that is marked a gauge has at most SX_STATS_NAME - 2 characters. Readers that stop at the
 * name's NUL see the same names as before.
 */
#ifndef SPLITXEN_STATS_H
#define SPLITXEN_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SX_STATS_MAGIC 0x53585354u   /* "SXST" */
#define SX_STATS_MAX 48
#define SX_STATS_NAME 24
#define SX_STATS_GAUGE 'g'

struct sx_stats_hdr {
    uint32_t magic, nr;
    uint32_t domid, devid;
    int32_t pid;                      /* the backend process serving the device */
    uint32_t pad;
    char kind[8];                     /* "vbd", "vif", ... */
    char names[SX_STATS_MAX][SX_STATS_NAME];
};

struct sx_stats {
    struct sx_stats_hdr *hdr;
    _Atomic uint64_t *v;              /* v[i] is the counter named names[i] */
    size_t size;
    char path[256];
};

/* Create (or replace) the stats file for kind/domid/devid with the given counter names
 * (NULL-terminated list, at most SX_STATS_MAX). Returns 0 or -errno. */
int sx_stats_create(struct sx_stats *s, const char *kind, uint32_t domid, uint32_t devid,
                    const char *const *names);
/* The same, with the names in `gauges` (NULL-terminated, each one of `names`, at most
 * SX_STATS_NAME - 2 characters) typed as gauges before the file appears. Returns 0, -EINVAL
 * for a gauge that is not among the names or too long, or -errno. */
int sx_stats_create_with_gauges(struct sx_stats *s, const char *kind, uint32_t domid,
                                uint32_t devid, const char *const *names,
                                const char *const *gauges);
/* Unmap and remove the file. NULL-safe, idempotent. */
void sx_stats_destroy(struct sx_stats *s);

static inline void sx_stats_add(struct sx_stats *s, unsigned i, uint64_t n)
{
    if (s->v)
        atomic_fetch_add_explicit(&s->v[i], n, memory_order_relaxed);
}
static inline void sx_stats_set(struct sx_stats *s, unsigned i, uint64_t n)
{
    if (s->v)
        atomic_store_explicit(&s->v[i], n, memory_order_relaxed);
}

/* Reading side: map an existing stats file read-only. Returns 0 or -errno. */
int sx_stats_open_ro(struct sx_stats *s, const char *path);
void sx_stats_close_ro(struct sx_stats *s);
/* Whether value i of a mapped file is a gauge (else a counter). */
static inline int sx_stats_is_gauge(const struct sx_stats_hdr *h, unsigned i)
{
    return i < SX_STATS_MAX && h->names[i][SX_STATS_NAME - 1] == SX_STATS_GAUGE;
}
/* Value of the counter called `name`, or -1 (as UINT64_MAX) when there is none. */
uint64_t sx_stats_get(const struct sx_stats *s, const char *name);
/* Directory holding the stats files: $SPLITXEN_RUN/stats. */
int sx_stats_dir(char *buf, size_t len);

#endif
