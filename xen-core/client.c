/* Client side of splitxen-core's control socket. One connection per process is typical; it is
 * thread-safe (one request at a time). Domains it maps are reference counted: a mapping lives
 * while someone holds it (a grant mapping, a bound event channel, an ioreq server) and is
 * unmapped at the last put, so a destroyed guest's memory is freed once nothing uses it. */
#define SX_LOG_MODULE "xen-core"
#include "xen-core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"
#include "xen-core/proto.h"

/* Domains one connection can map at once. Slots are reused once their domain is unmapped. */
#define MAX_CACHED_DOMS 256
#define SLOT_FREE UINT32_MAX

/*
 * The cache: a fixed array of slots that lives as long as the connection, so a lookup may read
 * any slot at any time. A lookup matches `key`, then takes a reference only if the count is not
 * zero (a slot at zero is closing or free) and checks the key again under that reference. The
 * last put clears the key and unmaps under cache_lock; a new mapping fills a free slot under
 * cache_lock and publishes it by storing refs, then key (release). Lookups take no lock.
 */
struct sxc_conn {
    int fd;
    domid_t self;
    pthread_mutex_t lock;           /* one request at a time on the socket */
    pthread_mutex_t cache_lock;     /* filling and closing slots; never taken by lookups */
    struct sxc_dom doms[MAX_CACHED_DOMS];
    _Atomic unsigned nr_slots;      /* slots ever used: lookups scan these */
    _Atomic unsigned nr_mapped;
};

static int rpc(struct sxc_conn *c, struct sxp_msg *m, int send_fd, void *payload, size_t plen,
               int *fds, int maxfds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = { m, sizeof(*m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (send_fd >= 0) {
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &send_fd, sizeof(int));
    }
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0) {
        rc = -errno;
        goto out;
    }
    struct iovec riov[2] = { { m, sizeof(*m) }, { payload, plen } };
    struct msghdr rh = { .msg_iov = riov, .msg_iovlen = payload ? 2 : 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ssize_t n;
    do
        n = recvmsg(c->fd, &rh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        rc = -errno;
        goto out;
    }
    if (n < (ssize_t)sizeof(*m)) {
        rc = -ECONNRESET;
        goto out;
    }
    int got = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&rh); cm; cm = CMSG_NXTHDR(&rh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int nf = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *fp = (int *)CMSG_DATA(cm);
        for (int i = 0; i < nf; i++) {
            if (got < maxfds)
                fds[got++] = fp[i];
            else
                close(fp[i]);
        }
    }
    if (m->rc == 0 && got < maxfds) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        rc = -EPROTO;
        goto out;
    }
    rc = m->rc;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int sxc_socket_path(char *buf, size_t len, const char *run_dir)
{
    int n = snprintf(buf, len, "%s/core.sock", run_dir);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int sxc_connect(struct sxc_conn **out, const char *sock_path, domid_t self)
{
    char def[300];
    if (!sock_path) {
        const char *e = getenv("SPLITXEN_CORE");
        if (e && *e)
            sock_path = e;
        else {
            if (sxc_socket_path(def, sizeof(def), sx_run_dir()) < 0)
                return -ENAMETOOLONG;
            sock_path = def;
        }
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, sock_path);
    struct sxc_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->cache_lock, NULL);
    for (unsigned i = 0; i < MAX_CACHED_DOMS; i++)
        atomic_init(&c->doms[i].key, SLOT_FREE);
    int rc;
    c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        rc = -errno;
        goto fail;
    }
    struct sxp_msg m = { .op = SXP_HELLO, .a = { self } };
    rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    if (rc < 0)
        goto fail;
    c->self = self;
    *out = c;
    return 0;
fail:
    sxc_disconnect(c);
    return rc;
}

/* Unmap and close what d holds; the struct itself stays (a slot, or the caller's). */
static void dom_unmap(struct sxc_dom *d)
{
    if (d->shared)
        munmap(d->shared, d->shared_size);
    if (d->mem)
        munmap(d->mem, d->mem_size);
    if (d->mem_ro)
        munmap((void *)d->mem_ro, d->mem_size);
    if (d->ctl_fd >= 0)
        close(d->ctl_fd);
    if (d->mem_fd >= 0)
        close(d->mem_fd);
    d->shared = NULL;
    d->mem = NULL;
    d->mem_ro = NULL;
    d->ctl_fd = d->mem_fd = -1;
}

void sxc_disconnect(struct sxc_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    /* Whatever is still referenced goes with the connection, as before. */
    for (unsigned i = 0; i < atomic_load(&c->nr_slots); i++)
        if (atomic_load(&c->doms[i].key) != SLOT_FREE)
            dom_unmap(&c->doms[i]);
    pthread_mutex_destroy(&c->cache_lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

domid_t sxc_self(const struct sxc_conn *c) { return c->self; }

int sxc_domain_create(struct sxc_conn *c, const char *name, enum sxd_dom_type type,
                      uint32_t mem_mb, uint32_t vcpus, bool paused)
{
    struct sxp_msg m = { .op = SXP_DOM_CREATE, .a = { type, mem_mb, vcpus, paused } };
    if (!name || strlen(name) >= sizeof(m.name))
        return -EINVAL;
    strcpy(m.name, name);
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

static int simple(struct sxc_conn *c, uint32_t op, uint32_t a0)
{
    struct sxp_msg m = { .op = op, .a = { a0 } };
    return rpc(c, &m, -1, NULL, 0, NULL, 0);
}

int sxc_domain_destroy(struct sxc_conn *c, domid_t d) { return simple(c, SXP_DOM_DESTROY, d); }
int sxc_domain_pause(struct sxc_conn *c, domid_t d) { return simple(c, SXP_DOM_PAUSE, d); }
int sxc_domain_unpause(struct sxc_conn *c, domid_t d) { return simple(c, SXP_DOM_UNPAUSE, d); }

int sxc_domain_list(struct sxc_conn *c, struct sxc_dominfo *out, unsigned max)
{
    struct sxc_dominfo *buf = calloc(256, sizeof(*buf));
    if (!buf)
        return -ENOMEM;
    struct sxp_msg m = { .op = SXP_DOM_LIST };
    int rc = rpc(c, &m, -1, buf, 256 * sizeof(*buf), NULL, 0);
    if (rc == 0) {
        unsigned n = m.a[0] > 256 ? 256 : m.a[0];
        memcpy(out, buf, (n < max ? n : max) * sizeof(*buf));
        rc = (int)n;
    }
    free(buf);
    return rc;
}

int sxc_domain_lookup(struct sxc_conn *c, const char *name)
{
    struct sxp_msg m = { .op = SXP_DOM_LOOKUP };
    if (!name || strlen(name) >= sizeof(m.name))
        return -EINVAL;
    strcpy(m.name, name);
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

/*
 * A process acting as its domain writes the domain's memory through this mapping. For live
 * migration the core must see those writes (xen-core/logdirty.c): hand it a userfaultfd of
 * this process's mm covering the mapping, which it write-protects while the domain is in
 * log-dirty mode. The fd is not kept here: if the core goes away, the registration goes with
 * it and no write waits on a handler that is gone. A process that cannot make one (no
 * userfaultfd, no write-protection of shared memory) runs untracked, and the core refuses
 * live migration of its domain (the toolstack then stops the guest to copy it).
 */
static void track_own_memory(struct sxc_conn *c, const struct sxc_dom *d)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        sx_debug("dom%u: no userfaultfd (%s): memory writes untracked", d->domid,
                 strerror(errno));
        return;
    }
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
    if (ioctl(uffd, UFFDIO_API, &api) < 0 || !(api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)) {
        sx_debug("dom%u: userfaultfd cannot write-protect shared memory: writes untracked",
                 d->domid);
        close(uffd);
        return;
    }
    uint64_t addr = (uint64_t)(uintptr_t)d->mem;
    struct sxp_msg m = { .op = SXP_DOM_TRACK,
                         .a = { (uint32_t)addr, (uint32_t)(addr >> 32), (uint32_t)d->mem_size,
                                (uint32_t)(d->mem_size >> 32) } };
    int rc = rpc(c, &m, uffd, NULL, 0, NULL, 0);
    close(uffd);    /* the core has its own reference now */
    if (rc < 0)
        sx_debug("dom%u: the core does not track this mapping (%s)", d->domid, strerror(-rc));
}

/* A live domain's mapping with a reference taken, or NULL. No lock, no system call. */
static struct sxc_dom *cache_find(struct sxc_conn *c, domid_t domid)
{
    unsigned n = atomic_load_explicit(&c->nr_slots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct sxc_dom *d = &c->doms[i];
        if (atomic_load_explicit(&d->key, memory_order_acquire) != domid)
            continue;
        /* A count of zero is a slot being closed: never bring it back. */
        uint32_t r = atomic_load(&d->refs);
        do {
            if (r == 0)
                break;
        } while (!atomic_compare_exchange_weak(&d->refs, &r, r + 1));
        if (r == 0)
            continue;
        /* Ours now: the slot cannot close or change under us. It may have been refilled for
         * another domain between the key check and the reference, hence the second look. */
        if (atomic_load_explicit(&d->key, memory_order_acquire) == domid &&
            atomic_load(&d->shared->state) != SXD_STATE_DYING)
            return d;
        sxc_domain_put(c, d);
    }
    return NULL;
}

int sxc_domain_get(struct sxc_conn *c, domid_t domid, struct sxc_dom **out)
{
    struct sxc_dom *d = cache_find(c, domid);
    if (d) {
        *out = d;
        return 0;
    }
    /* Map it outside any lock; two threads racing here both map it, which is harmless (each
     * mapping is counted and closed on its own). */
    struct sxc_dom n = { .domid = domid, .ctl_fd = -1, .mem_fd = -1 };
    struct sxp_msg m = { .op = SXP_DOM_GET, .a = { domid } };
    int fds[2] = { -1, -1 };
    int rc = rpc(c, &m, -1, NULL, 0, fds, 2);
    if (rc < 0)
        goto fail;
    n.ctl_fd = fds[0];
    n.mem_fd = fds[1];
    n.shared_size = m.a[0] | ((uint64_t)m.a[1] << 32);
    n.mem_size = m.a[2] | ((uint64_t)m.a[3] << 32);
    n.shared = mmap(NULL, n.shared_size, PROT_READ | PROT_WRITE, MAP_SHARED, n.ctl_fd, 0);
    if (n.shared == MAP_FAILED) {
        n.shared = NULL;
        rc = -errno;
        goto fail;
    }
    n.mem = mmap(NULL, n.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, n.mem_fd, 0);
    if (n.mem == MAP_FAILED) {
        n.mem = NULL;
        rc = -errno;
        goto fail;
    }
    n.mem_ro = mmap(NULL, n.mem_size, PROT_READ, MAP_SHARED, n.mem_fd, 0);
    if (n.mem_ro == MAP_FAILED) {
        n.mem_ro = NULL;
        rc = -errno;
        goto fail;
    }
    if (n.shared->magic != SXD_MAGIC || n.shared->version != SXD_VERSION) {
        rc = -EPROTO;
        goto fail;
    }
    if (domid != 0 && domid == c->self)
        track_own_memory(c, &n);
    pthread_mutex_lock(&c->cache_lock);
    unsigned used = atomic_load(&c->nr_slots), i;
    for (i = 0; i < used; i++)
        if (atomic_load(&c->doms[i].key) == SLOT_FREE)
            break;
    if (i == MAX_CACHED_DOMS) {
        pthread_mutex_unlock(&c->cache_lock);
        rc = -ENOSPC;
        goto fail;
    }
    d = &c->doms[i];
    d->domid = domid;
    d->ctl_fd = n.ctl_fd;
    d->mem_fd = n.mem_fd;
    d->shared = n.shared;
    d->shared_size = n.shared_size;
    d->mem = n.mem;
    d->mem_ro = n.mem_ro;
    d->mem_size = n.mem_size;
    /* The fields are visible before the reference and the key that let lookups in. */
    atomic_store_explicit(&d->refs, 1, memory_order_release);
    atomic_store_explicit(&d->key, domid, memory_order_release);
    if (i == used)
        atomic_store_explicit(&c->nr_slots, used + 1, memory_order_release);
    atomic_fetch_add(&c->nr_mapped, 1);
    pthread_mutex_unlock(&c->cache_lock);
    *out = d;
    return 0;
fail:
    dom_unmap(&n);
    return rc;
}

void sxc_domain_put(struct sxc_conn *c, struct sxc_dom *d)
{
    if (!c || !d)
        return;
    uint32_t r = atomic_fetch_sub(&d->refs, 1);
    if (r != 1) {
        if (r == 0) {   /* more puts than gets: a caller's bug; keep the count sane */
            atomic_fetch_add(&d->refs, 1);
            sx_err("dom%u: mapping released once too often", d->domid);
        }
        return;
    }
    /* The last reference: lookups can no longer take one (the count is zero). */
    pthread_mutex_lock(&c->cache_lock);
    atomic_store(&d->key, SLOT_FREE);
    dom_unmap(d);
    atomic_fetch_sub(&c->nr_mapped, 1);
    pthread_mutex_unlock(&c->cache_lock);
}

unsigned sxc_domains_mapped(struct sxc_conn *c)
{
    return c ? atomic_load(&c->nr_mapped) : 0;
}

int sxc_evtchn_register(struct sxc_conn *c, int efd)
{
    struct sxp_msg m = { .op = SXP_EV_REGISTER };
    int rc = rpc(c, &m, efd, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

int sxc_evtchn_unregister(struct sxc_conn *c, uint32_t h) { return simple(c, SXP_EV_UNREGISTER, h); }

int sxc_evtchn_alloc_unbound(struct sxc_conn *c, uint32_t h, domid_t remote)
{
    struct sxp_msg m = { .op = SXP_EV_ALLOC_UNBOUND, .a = { h, remote } };
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

int sxc_evtchn_bind_interdomain(struct sxc_conn *c, uint32_t h, domid_t remote, uint32_t rport)
{
    struct sxp_msg m = { .op = SXP_EV_BIND, .a = { h, remote, rport } };
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

int sxc_evtchn_close(struct sxc_conn *c, uint32_t port) { return simple(c, SXP_EV_CLOSE, port); }

int sxc_evtchn_peer(struct sxc_conn *c, uint32_t port, domid_t *rdom, uint32_t *rport,
                    uint32_t *rgen, int *efd)
{
    struct sxp_msg m = { .op = SXP_EV_PEER, .a = { port } };
    int fd = -1;
    int rc = rpc(c, &m, -1, NULL, 0, &fd, 1);
    if (rc < 0)
        return rc;
    *rdom = (domid_t)m.a[0];
    *rport = m.a[1];
    *rgen = m.a[2];
    *efd = fd;
    return 0;
}

/* ------------------------------------------------------------------ suspend and resume */

int sxc_domain_join(struct sxc_conn *c) { return simple(c, SXP_DOM_JOIN, 0); }

int sxc_domain_suspend(struct sxc_conn *c, struct sxc_resume *out)
{
    struct sxp_msg m = { .op = SXP_DOM_SUSPEND };
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (m.a[0] == SXP_RESUME_MOVED) {
        m.name[sizeof(m.name) - 1] = 0;
        if (!m.name[0] || m.a[1] == 0 || m.a[1] >= DOMID_FIRST_RESERVED)
            return -EPROTO;
        out->moved = true;
        out->domid = (domid_t)m.a[1];
        snprintf(out->core_path, sizeof(out->core_path), "%s", m.name);
    } else {
        out->domid = c->self;
    }
    return 0;
}

int sxc_domain_wait_suspended(struct sxc_conn *c, domid_t domid, unsigned timeout_ms)
{
    struct sxp_msg m = { .op = SXP_DOM_WAIT_SUSPENDED, .a = { domid, timeout_ms } };
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

int sxc_domain_resume(struct sxc_conn *c, domid_t domid, bool moved, domid_t new_domid,
                      const char *core_path)
{
    struct sxp_msg m = { .op = SXP_DOM_RESUME,
                         .a = { domid, moved ? SXP_RESUME_MOVED : SXP_RESUME_CANCELLED,
                                new_domid } };
    if (moved) {
        if (!core_path || strlen(core_path) >= sizeof(m.name))
            return -ENAMETOOLONG;
        strcpy(m.name, core_path);
    }
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    return rc < 0 ? rc : (int)m.a[0];
}

int64_t sxc_domain_logdirty(struct sxc_conn *c, domid_t domid, enum sxc_logdirty_cmd cmd,
                            unsigned *untracked)
{
    static const uint32_t ops[] = { [SXC_LOGDIRTY_ENABLE] = SXP_LOGDIRTY_ENABLE,
                                    [SXC_LOGDIRTY_ROUND] = SXP_LOGDIRTY_ROUND,
                                    [SXC_LOGDIRTY_DISABLE] = SXP_LOGDIRTY_DISABLE };
    if ((unsigned)cmd >= sizeof(ops) / sizeof(ops[0]))
        return -EINVAL;
    struct sxp_msg m = { .op = SXP_DOM_LOGDIRTY, .a = { domid, ops[cmd] } };
    int rc = rpc(c, &m, -1, NULL, 0, NULL, 0);
    if (untracked)
        *untracked = m.a[1];
    return rc < 0 ? rc : (int64_t)m.a[0];
}

int sxc_evtchn_restore(struct sxc_conn *c, domid_t domid, uint32_t port, domid_t remote)
{
    struct sxp_msg m = { .op = SXP_EV_RESTORE, .a = { domid, port, remote } };
    return rpc(c, &m, -1, NULL, 0, NULL, 0);
}
