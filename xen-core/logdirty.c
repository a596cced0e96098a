/*
 * Log-dirty tracking for live migration: which guest frames were written since the last round.
 *
 * Who writes guest memory on sim, and how each is seen:
 *   - the processes acting as the guest's kernel write through their own mappings of its
 *     memfd. A userfaultfd write-protect registration covers one process's page tables only
 *     (checked here: a write through another process's mapping of the same shmem page does not
 *     fault), so each such process creates a userfaultfd for its own mm when it maps its
 *     domain's memory, registers that mapping in write-protect mode and hands the fd to the
 *     core (SXP_DOM_TRACK, client.c). A userfaultfd acts on the mm it was created in whoever
 *     holds it: the core write-protects the mapping when tracking starts and takes the faults
 *     on its own thread here (mark the frame dirty, lift the protection of that page, which
 *     wakes the writer). The core keeps the write-protect in the mappings it handed out.
 *   - backends write only through grants. Ending a writable pin marks the frame dirty
 *     (sxd_grant_unpin, as Xen marks a granted frame on unmap), and a frame pinned writable
 *     when a round is taken is dirty too (the toolstack scans the pins before it takes the
 *     bitmap): a persistent grant is written without ever being unpinned.
 * A process of the domain that mapped its memory without handing over a tracker makes
 * ENABLE fail (-EOPNOTSUPP): its writes would be missed; the toolstack then stops the guest and
 * copies instead.
 *
 * A round (SXP_LOGDIRTY_ROUND): each word of the dirty bitmap is exchanged with zero into the
 * round bitmap, then every tracked mapping of those frames is write-protected again before the
 * reply. The toolstack copies after the reply, so a write before the protection is in the copy
 * and a write after it faults into the next round.
 */
#define SX_LOG_MODULE "xen-core"
#include "xen-core/logdirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

struct tracker {
    struct tracker *next;
    int uffd;
    int owner;              /* the server's connection index */
    domid_t domid;
    struct sxd_shared *sh;  /* NULL while the domain is not in log-dirty mode */
    uint64_t addr, len;     /* in the owner's address space */
    bool dead;              /* its mm or mapping is gone: ioctls fail */
};

/* A process maps its own domain once per connection; a few more is a client's bug or worse. */
#define MAX_TRACKERS_PER_OWNER 4

struct sxc_logdirty {
    pthread_mutex_t lock;
    struct tracker *list;
    int epfd, stop_fd;
    pthread_t thread;
    bool running;
    uint64_t faults;
};

static int wp_range(struct tracker *t, uint64_t addr, uint64_t len, bool protect)
{
    if (t->dead)
        return -ESRCH;
    struct uffdio_writeprotect wp = {
        .range = { .start = addr, .len = len },
        .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    if (ioctl(t->uffd, UFFDIO_WRITEPROTECT, &wp) == 0)
        return 0;
    int rc = -errno;
    if (rc == -ESRCH || rc == -ENOENT) {
        /* The process exited or unmapped its view: nothing of it can write any more. */
        t->dead = true;
        return rc;
    }
    sx_log_ratelimited(SX_LOG_WARN, "dom%u: write-protect %#llx+%llu: %s", t->domid,
                       (unsigned long long)addr, (unsigned long long)len, strerror(-rc));
    return rc;
}

static void handle_fault(struct sxc_logdirty *ld, struct tracker *t)
{
    struct uffd_msg msg[16];
    ssize_t n = read(t->uffd, msg, sizeof(msg));
    if (n <= 0)
        return;
    for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
        if (msg[i].event != UFFD_EVENT_PAGEFAULT)
            continue;
        uint64_t a = msg[i].arg.pagefault.address & ~(uint64_t)(SXD_PAGE_SIZE - 1);
        if (a < t->addr || a >= t->addr + t->len)
            continue;
        if (t->sh)
            sxd_dirty_mark(t->sh, (a - t->addr) / SXD_PAGE_SIZE);
        ld->faults++;
        /* Lifting the protection wakes the writer, also on a tracker whose domain is gone. */
        struct uffdio_writeprotect wp = { .range = { .start = a, .len = SXD_PAGE_SIZE } };
        if (ioctl(t->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
            sx_log_ratelimited(SX_LOG_WARN, "dom%u: releasing a write at %#llx: %s", t->domid,
                               (unsigned long long)a, strerror(errno));
    }
}

static void *fault_thread(void *arg)
{
    struct sxc_logdirty *ld = arg;
    for (;;) {
        struct epoll_event ev[16];
        int n = epoll_wait(ld->epfd, ev, 16, -1);
        if (n < 0 && errno != EINTR)
            break;
        bool stop = false;
        pthread_mutex_lock(&ld->lock);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                stop = true;
                continue;
            }
            /* The pointer is live: trackers leave the epoll set under this lock. */
            handle_fault(ld, ev[i].data.ptr);
        }
        pthread_mutex_unlock(&ld->lock);
        if (stop)
            break;
    }
    return NULL;
}

int sxc_logdirty_open(struct sxc_logdirty **out)
{
    struct sxc_logdirty *ld = calloc(1, sizeof(*ld));
    if (!ld)
        return -ENOMEM;
    pthread_mutex_init(&ld->lock, NULL);
    ld->epfd = epoll_create1(EPOLL_CLOEXEC);
    ld->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = 0;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (ld->epfd < 0 || ld->stop_fd < 0 || epoll_ctl(ld->epfd, EPOLL_CTL_ADD, ld->stop_fd, &ev))
        rc = -errno;
    if (rc == 0) {
        rc = -pthread_create(&ld->thread, NULL, fault_thread, ld);
        ld->running = rc == 0;
    }
    if (rc < 0) {
        sxc_logdirty_close(ld);
        return rc;
    }
    *out = ld;
    return 0;
}

static void tracker_free(struct sxc_logdirty *ld, struct tracker *t)
{
    if (t->sh)
        wp_range(t, t->addr, t->len, false);
    epoll_ctl(ld->epfd, EPOLL_CTL_DEL, t->uffd, NULL);
    close(t->uffd);
    free(t);
}

void sxc_logdirty_close(struct sxc_logdirty *ld)
{
    if (!ld)
        return;
    if (ld->running) {
        uint64_t one = 1;
        if (write(ld->stop_fd, &one, sizeof(one)) < 0)
            sx_warn("log-dirty: stop: %s", strerror(errno));
        pthread_join(ld->thread, NULL);
    }
    while (ld->list) {
        struct tracker *t = ld->list;
        ld->list = t->next;
        tracker_free(ld, t);
    }
    if (ld->epfd >= 0)
        close(ld->epfd);
    if (ld->stop_fd >= 0)
        close(ld->stop_fd);
    pthread_mutex_destroy(&ld->lock);
    free(ld);
}

int sxc_logdirty_track(struct sxc_logdirty *ld, int owner, domid_t domid, int uffd,
                       uint64_t addr, uint64_t len, struct sxd_shared *active)
{
    if (len == 0 || addr % SXD_PAGE_SIZE || len % SXD_PAGE_SIZE || addr + len < addr)
        return -EINVAL;
    /* The registration is done here, on the mm the fd was made for: anything but a
     * userfaultfd whose API handshake offered write-protection on shmem fails (-EINVAL,
     * -ENOTTY), and so does a range that is not a shared mapping in that mm. */
    struct uffdio_register r = { .range = { .start = addr, .len = len },
                                 .mode = UFFDIO_REGISTER_MODE_WP };
    if (ioctl(uffd, UFFDIO_REGISTER, &r) < 0)
        return -errno;
    struct tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    *t = (struct tracker){ .uffd = uffd, .owner = owner, .domid = domid, .addr = addr,
                           .len = len };
    int fl = fcntl(uffd, F_GETFL);
    if (fl >= 0)
        fcntl(uffd, F_SETFL, fl | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
    pthread_mutex_lock(&ld->lock);
    unsigned mine = 0;
    for (struct tracker *o = ld->list; o; o = o->next)
        mine += o->owner == owner;
    if (mine >= MAX_TRACKERS_PER_OWNER) {
        pthread_mutex_unlock(&ld->lock);
        free(t);
        return -ENOSPC;
    }
    if (epoll_ctl(ld->epfd, EPOLL_CTL_ADD, uffd, &ev) < 0) {
        int rc = -errno;
        pthread_mutex_unlock(&ld->lock);
        free(t);
        return rc;
    }
    if (active) {
        /* Tracking is on: everything this new view could write starts protected. */
        t->sh = active;
        wp_range(t, t->addr, t->len, true);
    }
    t->next = ld->list;
    ld->list = t;
    pthread_mutex_unlock(&ld->lock);
    return 0;
}

void sxc_logdirty_drop_owner(struct sxc_logdirty *ld, int owner)
{
    if (!ld)
        return;
    pthread_mutex_lock(&ld->lock);
    for (struct tracker **pp = &ld->list; *pp;) {
        struct tracker *t = *pp;
        if (t->owner == owner) {
            *pp = t->next;
            tracker_free(ld, t);
        } else {
            pp = &t->next;
        }
    }
    pthread_mutex_unlock(&ld->lock);
}

void sxc_logdirty_drop_domain(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh)
{
    if (!ld)
        return;
    /* Not freed here: lifting a protection (or closing the fd, which does the same in the
     * kernel) walks the whole range under the process's mmap lock, and a domain dies just
     * as its processes resume elsewhere (a migration's source): they would wait for that
     * walk over a mapping they are about to drop. The trackers go with their connections,
     * which close after the processes unmapped it. */
    pthread_mutex_lock(&ld->lock);
    for (struct tracker *t = ld->list; t; t = t->next)
        if (t->domid == domid) {
            t->sh = NULL;
            t->dead = true;
        }
    pthread_mutex_unlock(&ld->lock);
    if (sh)
        atomic_store(&sh->logdirty, 0);
}

bool sxc_logdirty_tracked(struct sxc_logdirty *ld, int owner, domid_t domid)
{
    bool found = false;
    pthread_mutex_lock(&ld->lock);
    for (struct tracker *t = ld->list; t && !found; t = t->next)
        found = t->owner == owner && t->domid == domid && !t->dead;
    pthread_mutex_unlock(&ld->lock);
    return found;
}

int sxc_logdirty_enable(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh)
{
    uint64_t words = sxd_bitmap_words(sh);
    pthread_mutex_lock(&ld->lock);
    for (uint64_t w = 0; w < words; w++) {
        atomic_store_explicit(&sxd_dirty_bitmap(sh)[w], 0, memory_order_relaxed);
        atomic_store_explicit(&sxd_round_bitmap(sh)[w], 0, memory_order_relaxed);
    }
    /* On before the protection: an unpin from here on marks its frame. */
    atomic_store(&sh->logdirty, 1);
    int rc = 0;
    for (struct tracker *t = ld->list; t; t = t->next) {
        if (t->domid != domid)
            continue;
        t->sh = sh;
        int r = wp_range(t, t->addr, t->len, true);
        if (r < 0 && r != -ESRCH && r != -ENOENT && rc == 0)
            rc = r;
    }
    pthread_mutex_unlock(&ld->lock);
    return rc;
}

int64_t sxc_logdirty_round(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh)
{
    if (!atomic_load(&sh->logdirty))
        return -EINVAL;
    uint64_t words = sxd_bitmap_words(sh);
    _Atomic uint64_t *dirty = sxd_dirty_bitmap(sh), *round = sxd_round_bitmap(sh);
    int64_t count = 0;
    pthread_mutex_lock(&ld->lock);
    for (uint64_t w = 0; w < words; w++) {
        uint64_t bits = atomic_exchange(&dirty[w], 0);
        atomic_store_explicit(&round[w], bits, memory_order_relaxed);
        count += __builtin_popcountll(bits);
    }
    /* Protect the round's frames again in every view, a run of set bits at a time. */
    for (struct tracker *t = ld->list; t; t = t->next) {
        if (t->domid != domid || t->dead)
            continue;
        uint64_t pages = t->len / SXD_PAGE_SIZE;
        if (pages > sh->nr_pages)
            pages = sh->nr_pages;
        for (uint64_t f = 0; f < pages;) {
            uint64_t bits = atomic_load_explicit(&round[f / 64], memory_order_relaxed);
            if (!(bits >> (f % 64))) {
                f = (f / 64 + 1) * 64;
                continue;
            }
            if (!((bits >> (f % 64)) & 1)) {
                f++;
                continue;
            }
            uint64_t start = f;
            while (f < pages &&
                   ((atomic_load_explicit(&round[f / 64], memory_order_relaxed) >> (f % 64)) & 1))
                f++;
            wp_range(t, t->addr + start * SXD_PAGE_SIZE, (f - start) * SXD_PAGE_SIZE, true);
        }
    }
    pthread_mutex_unlock(&ld->lock);
    return count;
}

void sxc_logdirty_disable(struct sxc_logdirty *ld, domid_t domid, struct sxd_shared *sh)
{
    pthread_mutex_lock(&ld->lock);
    atomic_store(&sh->logdirty, 0);
    for (struct tracker *t = ld->list; t; t = t->next) {
        if (t->domid != domid || !t->sh)
            continue;
        wp_range(t, t->addr, t->len, false);
        t->sh = NULL;
    }
    pthread_mutex_unlock(&ld->lock);
}

uint64_t sxc_logdirty_faults(struct sxc_logdirty *ld)
{
    pthread_mutex_lock(&ld->lock);
    uint64_t n = ld->faults;
    pthread_mutex_unlock(&ld->lock);
    return n;
}
