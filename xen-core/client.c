/* Client side of splitxen-core's control socket. One connection per process is typical; it is
 * thread-safe (one request at a time), and keeps the domains it mapped until disconnect. */
#define SX_LOG_MODULE "xen-core"
#include "xen-core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "xen-core/platform.h"
#include "xen-core/proto.h"

#define MAX_CACHED_DOMS 256

struct sxc_conn {
    int fd;
    domid_t self;
    pthread_mutex_t lock;
    struct sxc_dom *doms[MAX_CACHED_DOMS];
    _Atomic unsigned nr_doms;
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

static void dom_unmap(struct sxc_dom *d)
{
    if (!d)
        return;
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
    free(d);
}

void sxc_disconnect(struct sxc_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (unsigned i = 0; i < atomic_load(&c->nr_doms); i++)
        dom_unmap(c->doms[i]);
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

int sxc_domain_get(struct sxc_conn *c, domid_t domid, struct sxc_dom **out)
{
    /* Lock-free lookup: entries are appended and published with a release store of nr_doms. */
    unsigned n = atomic_load_explicit(&c->nr_doms, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct sxc_dom *d = c->doms[i];
        if (d->domid == domid && atomic_load(&d->shared->state) != SXD_STATE_DYING) {
            *out = d;
            return 0;
        }
    }
    struct sxc_dom *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->ctl_fd = d->mem_fd = -1;
    d->domid = domid;
    struct sxp_msg m = { .op = SXP_DOM_GET, .a = { domid } };
    int fds[2] = { -1, -1 };
    int rc = rpc(c, &m, -1, NULL, 0, fds, 2);
    if (rc < 0)
        goto fail;
    d->ctl_fd = fds[0];
    d->mem_fd = fds[1];
    d->shared_size = m.a[0] | ((uint64_t)m.a[1] << 32);
    d->mem_size = m.a[2] | ((uint64_t)m.a[3] << 32);
    d->shared = mmap(NULL, d->shared_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->ctl_fd, 0);
    if (d->shared == MAP_FAILED) {
        d->shared = NULL;
        rc = -errno;
        goto fail;
    }
    d->mem = mmap(NULL, d->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->mem_fd, 0);
    if (d->mem == MAP_FAILED) {
        d->mem = NULL;
        rc = -errno;
        goto fail;
    }
    d->mem_ro = mmap(NULL, d->mem_size, PROT_READ, MAP_SHARED, d->mem_fd, 0);
    if (d->mem_ro == MAP_FAILED) {
        d->mem_ro = NULL;
        rc = -errno;
        goto fail;
    }
    if (d->shared->magic != SXD_MAGIC || d->shared->version != SXD_VERSION) {
        rc = -EPROTO;
        goto fail;
    }
    pthread_mutex_lock(&c->lock);
    n = atomic_load(&c->nr_doms);
    /* Another thread may have mapped it meanwhile. */
    for (unsigned i = 0; i < n; i++)
        if (c->doms[i]->domid == domid && atomic_load(&c->doms[i]->shared->state) != SXD_STATE_DYING) {
            pthread_mutex_unlock(&c->lock);
            dom_unmap(d);
            *out = c->doms[i];
            return 0;
        }
    if (n == MAX_CACHED_DOMS) {
        pthread_mutex_unlock(&c->lock);
        rc = -ENOSPC;
        goto fail;
    }
    c->doms[n] = d;
    atomic_store_explicit(&c->nr_doms, n + 1, memory_order_release);
    pthread_mutex_unlock(&c->lock);
    *out = d;
    return 0;
fail:
    dom_unmap(d);
    return rc;
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
