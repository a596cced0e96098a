#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "barrier.h"
#include "rundir.h"

static size_t stats_size(void)
{
    return sizeof(struct sx_stats_hdr) + SX_STATS_MAX * sizeof(uint64_t);
}

int sx_stats_dir(char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/stats", sx_run_dir());
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Index of `name` in the NULL-terminated list, or -1. */
static int name_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

int sx_stats_create(struct sx_stats *s, const char *kind, uint32_t domid, uint32_t devid,
                    const char *const *names)
{
    return sx_stats_create_with_gauges(s, kind, domid, devid, names, NULL);
}

int sx_stats_create_with_gauges(struct sx_stats *s, const char *kind, uint32_t domid,
                                uint32_t devid, const char *const *names,
                                const char *const *gauges)
{
    memset(s, 0, sizeof(*s));
    for (unsigned g = 0; gauges && gauges[g]; g++)
        if (name_index(names, gauges[g]) < 0 || strlen(gauges[g]) > SX_STATS_NAME - 2)
            return -EINVAL;
    char dir[200];
    int rc = sx_stats_dir(dir, sizeof(dir));
    if (rc < 0)
        return rc;
    /* mkdir -p: the run dir itself may not exist yet (a backend started before anything
     * else on a real Xen host); open below reports real failures. */
    for (char *sl = strchr(dir + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
        *sl = '\0';
        mkdir(dir, 0755);
        *sl = '/';
    }
    mkdir(dir, 0755);
    if (snprintf(s->path, sizeof(s->path), "%s/%s-%u-%u", dir, kind, domid, devid) >=
        (int)sizeof(s->path))
        return -ENAMETOOLONG;
    unsigned nr = 0;
    while (names[nr])
        if (++nr > SX_STATS_MAX)
            return -E2BIG;
    /* Write a fresh file and rename it in, so a reader never sees a half-written header. */
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.%d", s->path, (int)getpid());
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    s->size = stats_size();
    if (ftruncate(fd, (off_t)s->size) < 0) {
        rc = -errno;
        close(fd);
        unlink(tmp);
        return rc;
    }
    void *m = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        unlink(tmp);
        return -errno;
    }
    s->hdr = m;
    s->v = (_Atomic uint64_t *)((char *)m + sizeof(struct sx_stats_hdr));
    s->hdr->nr = nr;
    s->hdr->domid = domid;
    s->hdr->devid = devid;
    s->hdr->pid = (int32_t)getpid();
    snprintf(s->hdr->kind, sizeof(s->hdr->kind), "%s", kind);
    for (unsigned i = 0; i < nr; i++)
        snprintf(s->hdr->names[i], SX_STATS_NAME, "%s", names[i]);
    for (unsigned g = 0; gauges && gauges[g]; g++)
        s->hdr->names[name_index(names, gauges[g])][SX_STATS_NAME - 1] = SX_STATS_GAUGE;
    sx_wmb();   /* header complete before the magic */
    s->hdr->magic = SX_STATS_MAGIC;
    if (rename(tmp, s->path) < 0) {
        rc = -errno;
        munmap(m, s->size);
        unlink(tmp);
        memset(s, 0, sizeof(*s));
        return rc;
    }
    return 0;
}

void sx_stats_destroy(struct sx_stats *s)
{
    if (!s || !s->hdr)
        return;
    unlink(s->path);
    munmap(s->hdr, s->size);
    s->hdr = NULL;
    s->v = NULL;
}

int sx_stats_open_ro(struct sx_stats *s, const char *path)
{
    memset(s, 0, sizeof(*s));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < stats_size()) {
        close(fd);
        return -EINVAL;
    }
    void *m = mmap(NULL, stats_size(), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -errno;
    s->hdr = m;
    s->size = stats_size();
    if (s->hdr->magic != SX_STATS_MAGIC || s->hdr->nr > SX_STATS_MAX) {
        munmap(m, s->size);
        memset(s, 0, sizeof(*s));
        return -EINVAL;
    }
    s->v = (_Atomic uint64_t *)((char *)m + sizeof(struct sx_stats_hdr));
    snprintf(s->path, sizeof(s->path), "%s", path);
    return 0;
}

void sx_stats_close_ro(struct sx_stats *s)
{
    if (s && s->hdr) {
        munmap(s->hdr, s->size);
        s->hdr = NULL;
        s->v = NULL;
    }
}

uint64_t sx_stats_get(const struct sx_stats *s, const char *name)
{
    if (!s->hdr)
        return UINT64_MAX;
    for (unsigned i = 0; i < s->hdr->nr; i++)
        if (!strncmp(s->hdr->names[i], name, SX_STATS_NAME))
            return atomic_load_explicit(&s->v[i], memory_order_relaxed);
    return UINT64_MAX;
}
