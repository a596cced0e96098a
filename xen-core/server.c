/*
 * splitxen-core's server: the domain table, event channel binding and the fds that make the data
 * path run without it. Single-threaded: one epoll loop over the listening socket and clients.
 */
#define SX_LOG_MODULE "xen-core"
#include "xen-core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"
#include "clock.h"
#include "xen-core/logdirty.h"
#include "xen-core/proto.h"
#include "xen-core/server_hooks.h"

#define MAX_DOMS 256
#define MAX_CONNS 1024
#define MAX_HANDLES 4096
#define MAX_WAITERS 64

struct sdom {
    bool used;
    domid_t domid;
    uint32_t mem_mb;
    int mem_fd, ctl_fd;
    struct sxd_shared *sh;
    uint64_t sh_size;
};

struct sconn {
    int fd;                 /* -1 when free */
    domid_t self;
    bool hello;
    bool member;            /* part of its domain's kernel (SXP_DOM_JOIN) */
    bool suspended;         /* in the suspend hypercall: its reply waits for the resume */
    bool maps_self;         /* mapped its own domain's memory (a writer log-dirty must see) */
};

/* A toolstack waiting for a domain's members to be suspended (SXP_DOM_WAIT_SUSPENDED). */
struct swaiter {
    int conn;               /* -1 when free */
    domid_t domid;
    uint64_t deadline_ms;
};

struct shandle {
    bool used;
    int efd;
    int conn;               /* index into conns */
    domid_t dom;
};

struct sxc_server {
    char run_dir[256];
    char sock_path[300];
    int lfd, epfd, stop_efd;
    struct sdom doms[MAX_DOMS];
    struct sconn conns[MAX_CONNS];
    struct shandle handles[MAX_HANDLES];   /* id = index + 1 */
    domid_t next_domid;
    pthread_t thread;
    bool threaded;
    volatile int *stop;
    volatile int stop_flag;
    struct sxc_server_hooks hooks;
    struct sxc_logdirty *ld;
    struct swaiter waiters[MAX_WAITERS];
};

static struct sdom *dom_find(struct sxc_server *s, uint32_t domid)
{
    for (int i = 0; i < MAX_DOMS; i++)
        if (s->doms[i].used && s->doms[i].domid == domid)
            return &s->doms[i];
    return NULL;
}

static struct sdom *dom_find_name(struct sxc_server *s, const char *name)
{
    for (int i = 0; i < MAX_DOMS; i++)
        if (s->doms[i].used && !strncmp(s->doms[i].sh->name, name, sizeof(s->doms[i].sh->name)))
            return &s->doms[i];
    return NULL;
}

/* A connection still acts as domid (a process of a destroyed domain, members parked in a
 * suspend): the id is not handed to a new domain. */
static bool domid_in_use(struct sxc_server *s, domid_t domid)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0 && s->conns[i].hello && s->conns[i].self == domid)
            return true;
    return false;
}

static struct sxd_port *port_of(struct sdom *d, uint32_t port)
{
    if (!d || port == 0 || port >= d->sh->nr_ports)
        return NULL;
    return &sxd_ports(d->sh)[port];
}

/* Close one port as EVTCHNOP_close does: a connected far end falls back to unbound, waiting
 * for our domain again. */
static void port_close(struct sxc_server *s, struct sdom *d, uint32_t port)
{
    struct sxd_port *p = port_of(d, port);
    if (!p || atomic_load(&p->state) == SXD_PORT_FREE)
        return;
    if (atomic_load(&p->state) == SXD_PORT_INTERDOMAIN) {
        struct sdom *rd = dom_find(s, atomic_load(&p->remote_dom));
        struct sxd_port *r = port_of(rd, atomic_load(&p->remote_port));
        if (r && atomic_load(&r->state) == SXD_PORT_INTERDOMAIN &&
            atomic_load(&r->remote_dom) == d->domid && atomic_load(&r->remote_port) == port) {
            atomic_store(&r->state, SXD_PORT_UNBOUND);
            atomic_fetch_add(&r->gen, 1);
        }
    }
    atomic_store(&p->state, SXD_PORT_FREE);
    atomic_store(&p->owner, 0);
    atomic_store(&p->pending, 0);
    atomic_store(&p->masked, 0);
    atomic_fetch_add(&p->gen, 1);
}

static int port_alloc(struct sdom *d)
{
    for (uint32_t i = 1; i < d->sh->nr_ports; i++)
        if (atomic_load(&sxd_ports(d->sh)[i].state) == SXD_PORT_FREE)
            return (int)i;
    return -ENOSPC;
}

static void dom_release(struct sxc_server *s, struct sdom *d)
{
    if (!d->used)
        return;
    for (uint32_t i = 1; i < d->sh->nr_ports; i++)
        port_close(s, d, i);
    atomic_store(&d->sh->state, SXD_STATE_DYING);
    /* Handles bound by processes acting as this domain have nothing left to bind. */
    for (int i = 0; i < MAX_HANDLES; i++)
        if (s->handles[i].used && s->handles[i].dom == d->domid) {
            close(s->handles[i].efd);
            s->handles[i].used = false;
        }
    /* Members suspended in it stay parked under its domid: a restore resumes them as the new
     * domain (SXP_DOM_RESUME names the old domid). */
    sxc_logdirty_drop_domain(s->ld, d->domid, d->sh);
    if (s->hooks.domain_destroyed)
        s->hooks.domain_destroyed(s->hooks.ctx, d->domid);
    munmap(d->sh, d->sh_size);
    close(d->ctl_fd);
    close(d->mem_fd);
    memset(d, 0, sizeof(*d));
    d->mem_fd = d->ctl_fd = -1;
}

static int dom_create(struct sxc_server *s, int domid, const char *name, uint32_t type,
                      uint32_t mem_mb, uint32_t vcpus, bool paused)
{
    if (!name[0] || strlen(name) >= 64 || type > SXD_TYPE_HVM || mem_mb == 0 ||
        mem_mb > 64 * 1024 || vcpus == 0 || vcpus > 128)
        return -EINVAL;
    if (dom_find_name(s, name))
        return -EEXIST;
    struct sdom *d = NULL;
    for (int i = 0; i < MAX_DOMS && !d; i++)
        if (!s->doms[i].used)
            d = &s->doms[i];
    if (!d)
        return -ENOSPC;
    if (domid < 0) {
        for (unsigned tries = 0; tries < DOMID_FIRST_RESERVED; tries++) {
            domid_t cand = s->next_domid;
            s->next_domid = (unsigned)s->next_domid + 1 >= DOMID_FIRST_RESERVED ? 1 : s->next_domid + 1;
            if (!dom_find(s, cand) && !domid_in_use(s, cand)) {
                domid = cand;
                break;
            }
        }
        if (domid < 0)
            return -ENOSPC;
    }
    uint64_t nr_pages = (uint64_t)mem_mb << (20 - 12);
    uint64_t sz = sxd_layout(NULL, nr_pages, SXD_NR_GRANT_DEFAULT, SXD_NR_PORTS_DEFAULT);
    char nm[80];
    int rc;
    d->mem_fd = d->ctl_fd = -1;
    snprintf(nm, sizeof(nm), "sx-dom%d-mem", domid);
    d->mem_fd = memfd_create(nm, MFD_CLOEXEC);
    snprintf(nm, sizeof(nm), "sx-dom%d-ctl", domid);
    d->ctl_fd = memfd_create(nm, MFD_CLOEXEC);
    if (d->mem_fd < 0 || d->ctl_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (ftruncate(d->mem_fd, (off_t)(nr_pages * SXD_PAGE_SIZE)) || ftruncate(d->ctl_fd, (off_t)sz)) {
        rc = -errno;
        goto fail;
    }
    d->sh = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, d->ctl_fd, 0);
    if (d->sh == MAP_FAILED) {
        d->sh = NULL;
        rc = -errno;
        goto fail;
    }
    d->sh_size = sz;
    struct sxd_shared *sh = d->sh;
    sxd_layout(sh, nr_pages, SXD_NR_GRANT_DEFAULT, SXD_NR_PORTS_DEFAULT);
    sh->magic = SXD_MAGIC;
    sh->version = SXD_VERSION;
    sh->domid = (uint32_t)domid;
    sh->type = type;
    sh->vcpus = vcpus;
    snprintf(sh->name, sizeof(sh->name), "%s", name);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&sh->alloc_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    atomic_store(&sh->state, paused ? SXD_STATE_PAUSED : SXD_STATE_RUNNING);
    d->domid = (domid_t)domid;
    d->mem_mb = mem_mb;
    d->used = true;
    if (s->hooks.domain_created)
        s->hooks.domain_created(s->hooks.ctx, d->domid);
    return domid;
fail:
    if (d->sh)
        munmap(d->sh, sz);
    if (d->mem_fd >= 0)
        close(d->mem_fd);
    if (d->ctl_fd >= 0)
        close(d->ctl_fd);
    memset(d, 0, sizeof(*d));
    return rc;
}

static void waiters_check(struct sxc_server *s, domid_t domid);

static void handle_drop(struct sxc_server *s, int idx)
{
    struct shandle *h = &s->handles[idx];
    if (!h->used)
        return;
    struct sdom *d = dom_find(s, h->dom);
    if (d)
        for (uint32_t i = 1; i < d->sh->nr_ports; i++)
            if (atomic_load(&sxd_ports(d->sh)[i].owner) == (uint32_t)idx + 1)
                port_close(s, d, i);
    close(h->efd);
    h->used = false;
}

static void conn_drop(struct sxc_server *s, int ci)
{
    struct sconn *c = &s->conns[ci];
    if (c->fd < 0)
        return;
    for (int i = 0; i < MAX_HANDLES; i++)
        if (s->handles[i].used && s->handles[i].conn == ci)
            handle_drop(s, i);
    sxc_logdirty_drop_owner(s->ld, ci);
    for (int i = 0; i < MAX_WAITERS; i++)
        if (s->waiters[i].conn == ci)
            s->waiters[i].conn = -1;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    bool was_member = c->member;
    domid_t self = c->self;
    *c = (struct sconn){ .fd = -1 };
    /* One member fewer may be all a waiting toolstack needed. */
    if (was_member)
        waiters_check(s, self);
}

static int send_reply(int fd, struct sxp_msg *m, const void *payload, size_t plen,
                      const int *fds, int nfds)
{
    struct iovec iov[2] = { { m, sizeof(*m) }, { (void *)payload, plen } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = plen ? 2 : 1 };
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    if (nfds > 0) {
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* One request being served: what a handler reads (m, the fd that came with it) and fills in
 * (the reply, fds and payload to send back). */
struct sreq {
    struct sxc_server *s;
    int ci;
    struct sconn *c;
    const struct sxp_msg *m;
    struct sxp_msg r;
    int rfd;                        /* a handler that keeps it sets it to -1 */
    int fds[2];
    int nfds;
    const void *payload;
    size_t plen;
    bool deferred;                  /* no reply now: it is sent when the awaited event comes */
    struct sxc_dominfo infos[MAX_DOMS];   /* SXP_DOM_LIST's payload */
};

/* Each handler returns the reply's rc (0 or -errno). */
typedef int sreq_fn(struct sreq *q);

static int op_hello(struct sreq *q)
{
    if (!dom_find(q->s, q->m->a[0]))
        return -ESRCH;
    q->c->self = (domid_t)q->m->a[0];
    q->c->hello = true;
    return 0;
}

static int op_dom_create(struct sreq *q)
{
    const struct sxp_msg *m = q->m;
    int rc = dom_create(q->s, -1, m->name, m->a[0], m->a[1], m->a[2], m->a[3] != 0);
    if (rc < 0)
        return rc;
    q->r.a[0] = (uint32_t)rc;
    return 0;
}

static int op_dom_destroy(struct sreq *q)
{
    struct sdom *d = dom_find(q->s, q->m->a[0]);
    if (!d)
        return -ESRCH;
    if (d->domid == 0)
        return -EPERM;
    dom_release(q->s, d);
    return 0;
}

static int op_dom_pause(struct sreq *q)
{
    struct sdom *d = dom_find(q->s, q->m->a[0]);
    if (!d)
        return -ESRCH;
    atomic_store(&d->sh->state, q->m->op == SXP_DOM_PAUSE ? SXD_STATE_PAUSED : SXD_STATE_RUNNING);
    return 0;
}

static int op_dom_list(struct sreq *q)
{
    struct sxc_dominfo *infos = q->infos;
    unsigned n = 0;
    for (int i = 0; i < MAX_DOMS; i++) {
        struct sdom *d = &q->s->doms[i];
        if (!d->used)
            continue;
        infos[n] = (struct sxc_dominfo){ .domid = d->domid, .type = d->sh->type,
                                         .state = atomic_load(&d->sh->state),
                                         .vcpus = d->sh->vcpus, .mem_mb = d->mem_mb };
        memcpy(infos[n].name, d->sh->name, sizeof(infos[n].name));
        n++;
    }
    /* Sorted by domid, as xl list shows them. */
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && infos[j - 1].domid > infos[j].domid; j--) {
            struct sxc_dominfo t = infos[j];
            infos[j] = infos[j - 1];
            infos[j - 1] = t;
        }
    q->r.a[0] = n;
    q->payload = infos;
    q->plen = n * sizeof(infos[0]);
    return 0;
}

static int op_dom_lookup(struct sreq *q)
{
    struct sdom *d = dom_find_name(q->s, q->m->name);
    if (!d)
        return -ENOENT;
    q->r.a[0] = d->domid;
    return 0;
}

static int op_dom_get(struct sreq *q)
{
    struct sdom *d = dom_find(q->s, q->m->a[0]);
    if (!d)
        return -ESRCH;
    if (d->domid != 0 && d->domid == q->c->self)
        q->c->maps_self = true;     /* it writes its own memory: log-dirty must see it */
    q->fds[0] = d->ctl_fd;
    q->fds[1] = d->mem_fd;
    q->nfds = 2;
    q->r.a[0] = (uint32_t)d->sh_size;
    q->r.a[1] = (uint32_t)(d->sh_size >> 32);
    uint64_t msz = (uint64_t)d->mem_mb << 20;
    q->r.a[2] = (uint32_t)msz;
    q->r.a[3] = (uint32_t)(msz >> 32);
    return 0;
}

static int op_ev_register(struct sreq *q)
{
    struct sxc_server *s = q->s;
    if (q->rfd < 0)
        return -EBADF;
    int idx = -1;
    for (int i = 0; i < MAX_HANDLES && idx < 0; i++)
        if (!s->handles[i].used)
            idx = i;
    if (idx < 0)
        return -EMFILE;
    s->handles[idx] = (struct shandle){ .used = true, .efd = q->rfd, .conn = q->ci,
                                        .dom = q->c->self };
    q->rfd = -1;   /* kept */
    q->r.a[0] = (uint32_t)idx + 1;
    return 0;
}

/* Handle h (1-based) is one this connection registered. */
static bool handle_is_ours(const struct sreq *q, uint32_t h)
{
    return h != 0 && h <= MAX_HANDLES && q->s->handles[h - 1].used &&
           q->s->handles[h - 1].conn == q->ci;
}

static int op_ev_unregister(struct sreq *q)
{
    if (!handle_is_ours(q, q->m->a[0]))
        return -EINVAL;
    handle_drop(q->s, (int)q->m->a[0] - 1);
    return 0;
}

/* EVTCHNOP_alloc_unbound and EVTCHNOP_bind_interdomain on handle a0. */
static int op_ev_bind(struct sreq *q)
{
    const struct sxp_msg *m = q->m;
    uint32_t h = m->a[0];
    domid_t self = q->c->self;
    struct sdom *d = dom_find(q->s, self);
    if (!handle_is_ours(q, h))
        return -EINVAL;
    if (!d)
        return -ESRCH;
    uint32_t remote = m->a[1] == DOMID_SELF ? self : m->a[1];
    struct sdom *rd = dom_find(q->s, remote);
    if (!rd)
        return -ESRCH;
    struct sxd_port *rp = NULL;
    if (m->op == SXP_EV_BIND) {
        rp = port_of(rd, m->a[2]);
        if (!rp || atomic_load(&rp->state) != SXD_PORT_UNBOUND ||
            atomic_load(&rp->remote_dom) != self)
            return -EINVAL;
    }
    int lp = port_alloc(d);
    if (lp < 0)
        return lp;
    struct sxd_port *p = &sxd_ports(d->sh)[lp];
    atomic_store(&p->pending, 0);
    atomic_store(&p->masked, 0);
    atomic_store(&p->owner, h);
    atomic_store(&p->remote_dom, remote);
    if (rp) {
        atomic_store(&p->remote_port, m->a[2]);
        atomic_store(&rp->remote_port, (uint32_t)lp);
        atomic_store(&rp->remote_dom, self);
        atomic_store(&rp->state, SXD_PORT_INTERDOMAIN);
        atomic_fetch_add(&rp->gen, 1);
        atomic_store(&p->state, SXD_PORT_INTERDOMAIN);
    } else {
        atomic_store(&p->remote_port, 0);
        atomic_store(&p->state, SXD_PORT_UNBOUND);
    }
    atomic_fetch_add(&p->gen, 1);
    q->r.a[0] = (uint32_t)lp;
    return 0;
}

static int op_ev_close(struct sreq *q)
{
    struct sdom *d = dom_find(q->s, q->c->self);
    struct sxd_port *p = port_of(d, q->m->a[0]);
    uint32_t owner = p ? atomic_load(&p->owner) : 0;
    /* A port no handle owns (restored with its domain) is any of its processes' to close. */
    if (!p || atomic_load(&p->state) == SXD_PORT_FREE ||
        (owner != 0 && (owner > MAX_HANDLES || q->s->handles[owner - 1].conn != q->ci)))
        return -EINVAL;
    port_close(q->s, d, q->m->a[0]);
    return 0;
}

static int op_ev_peer(struct sreq *q)
{
    struct sxc_server *s = q->s;
    struct sdom *d = dom_find(s, q->c->self);
    struct sxd_port *p = port_of(d, q->m->a[0]);
    if (!p)
        return -EINVAL;
    if (atomic_load(&p->state) != SXD_PORT_INTERDOMAIN)
        return -ENOTCONN;
    struct sdom *rd = dom_find(s, atomic_load(&p->remote_dom));
    struct sxd_port *rp = port_of(rd, atomic_load(&p->remote_port));
    uint32_t owner = rp ? atomic_load(&rp->owner) : 0;
    if (!rp || owner == 0 || owner > MAX_HANDLES || !s->handles[owner - 1].used)
        return -ENOTCONN;
    q->r.a[0] = rd->domid;
    q->r.a[1] = atomic_load(&p->remote_port);
    q->r.a[2] = atomic_load(&rp->gen);
    q->fds[0] = s->handles[owner - 1].efd;
    q->nfds = 1;
    return 0;
}


/* ------------------------------------------------------------------ suspend and resume
 *
 * The processes acting as a domain's kernel join it (SXP_DOM_JOIN). To suspend, the toolstack
 * asks the guest through xenstore (control/shutdown = "suspend"); each member quiesces its
 * devices and makes the suspend hypercall (SXP_DOM_SUSPEND), whose reply waits here. Once
 * every member is in, the domain is suspended and a toolstack waiting for it
 * (SXP_DOM_WAIT_SUSPENDED) is told. SXP_DOM_RESUME ends the hypercalls: cancelled (go on
 * here) or moved (go on as another domain at another core). Members of a destroyed domain stay
 * parked under its domid until a resume names it: that is how a restore on this core, or the
 * sender of a migration, wakes the guest's processes.
 */

static void members(struct sxc_server *s, domid_t domid, unsigned *all, unsigned *susp)
{
    *all = *susp = 0;
    for (int i = 0; i < MAX_CONNS; i++) {
        const struct sconn *c = &s->conns[i];
        if (c->fd < 0 || !c->member || c->self != domid)
            continue;
        (*all)++;
        *susp += c->suspended;
    }
}

static void waiter_reply(struct sxc_server *s, struct swaiter *w, int rc, uint32_t a0)
{
    struct sxp_msg r = { .op = SXP_DOM_WAIT_SUSPENDED, .rc = rc, .a = { a0 } };
    int fd = s->conns[w->conn].fd;
    w->conn = -1;
    /* A toolstack that went away is dropped when its socket reports the hangup. */
    if (fd >= 0)
        send_reply(fd, &r, NULL, 0, NULL, 0);
}

static void waiters_check(struct sxc_server *s, domid_t domid)
{
    unsigned all, susp;
    members(s, domid, &all, &susp);
    struct sdom *d = dom_find(s, domid);
    if (d && susp < all)
        return;
    for (int i = 0; i < MAX_WAITERS; i++) {
        struct swaiter *w = &s->waiters[i];
        if (w->conn < 0 || w->domid != domid)
            continue;
        if (d)
            atomic_store(&d->sh->state, SXD_STATE_SUSPENDED);
        waiter_reply(s, w, d ? 0 : -ESRCH, all);
    }
}

/* Waiters whose time is up; returns the milliseconds to the next deadline (-1: none). */
static int waiters_expire(struct sxc_server *s)
{
    uint64_t now = sx_now_ms(), next = UINT64_MAX;
    for (int i = 0; i < MAX_WAITERS; i++) {
        struct swaiter *w = &s->waiters[i];
        if (w->conn < 0)
            continue;
        if (w->deadline_ms <= now) {
            unsigned all, susp;
            members(s, w->domid, &all, &susp);
            waiter_reply(s, w, -ETIMEDOUT, susp);
        } else if (w->deadline_ms < next) {
            next = w->deadline_ms;
        }
    }
    return next == UINT64_MAX ? -1 : (int)(next - now);
}

static int op_dom_join(struct sreq *q)
{
    if (q->c->self == 0)
        return -EINVAL;
    if (!dom_find(q->s, q->c->self))
        return -ESRCH;
    q->c->member = true;
    return 0;
}

static int op_dom_suspend(struct sreq *q)
{
    if (!q->c->member)
        return -EINVAL;
    if (q->c->suspended)
        return -EBUSY;
    q->c->suspended = true;
    q->deferred = true;
    waiters_check(q->s, q->c->self);
    return 0;
}

static int op_dom_wait_suspended(struct sreq *q)
{
    struct sxc_server *s = q->s;
    if (q->c->self != 0)
        return -EPERM;
    struct sdom *d = dom_find(s, q->m->a[0]);
    if (!d)
        return -ESRCH;
    unsigned all, susp;
    members(s, d->domid, &all, &susp);
    if (susp == all) {
        atomic_store(&d->sh->state, SXD_STATE_SUSPENDED);
        q->r.a[0] = all;
        return 0;
    }
    for (int i = 0; i < MAX_WAITERS; i++) {
        if (s->waiters[i].conn >= 0)
            continue;
        s->waiters[i] = (struct swaiter){ .conn = q->ci, .domid = d->domid,
                                          .deadline_ms = sx_now_ms() + q->m->a[1] };
        q->deferred = true;
        return 0;
    }
    return -EBUSY;
}

static int op_dom_resume(struct sreq *q)
{
    struct sxc_server *s = q->s;
    const struct sxp_msg *m = q->m;
    if (q->c->self != 0)
        return -EPERM;
    uint32_t mode = m->a[1];
    if (mode != SXP_RESUME_CANCELLED && mode != SXP_RESUME_MOVED)
        return -EINVAL;
    if (mode == SXP_RESUME_MOVED && (!m->name[0] || m->a[2] == 0 ||
                                     m->a[2] >= DOMID_FIRST_RESERVED))
        return -EINVAL;
    domid_t domid = (domid_t)m->a[0];
    struct sdom *d = dom_find(s, domid);
    unsigned n = 0;
    for (int i = 0; i < MAX_CONNS; i++) {
        struct sconn *c = &s->conns[i];
        if (c->fd < 0 || !c->member || !c->suspended || c->self != domid)
            continue;
        struct sxp_msg r = { .op = SXP_DOM_SUSPEND, .a = { mode, domid } };
        if (mode == SXP_RESUME_MOVED) {
            r.a[1] = m->a[2];
            memcpy(r.name, m->name, sizeof(r.name));
            c->member = false;      /* it goes on elsewhere */
        }
        c->suspended = false;
        if (send_reply(c->fd, &r, NULL, 0, NULL, 0) == 0)
            n++;
    }
    if (d && mode == SXP_RESUME_CANCELLED &&
        atomic_load(&d->sh->state) == SXD_STATE_SUSPENDED)
        atomic_store(&d->sh->state, SXD_STATE_RUNNING);
    q->r.a[0] = n;
    return 0;
}

/* ------------------------------------------------------------------ log-dirty */

static int op_dom_track(struct sreq *q)
{
    struct sxc_server *s = q->s;
    const struct sxp_msg *m = q->m;
    if (q->rfd < 0)
        return -EBADF;
    domid_t self = q->c->self;
    struct sdom *d = self ? dom_find(s, self) : NULL;
    if (!d)
        return self ? -ESRCH : -EINVAL;
    uint64_t addr = m->a[0] | ((uint64_t)m->a[1] << 32);
    uint64_t len = m->a[2] | ((uint64_t)m->a[3] << 32);
    if (len > (uint64_t)d->mem_mb << 20)
        return -EINVAL;
    if (!s->ld) {
        int rc = sxc_logdirty_open(&s->ld);
        if (rc < 0)
            return rc;
    }
    int rc = sxc_logdirty_track(s->ld, q->ci, self, q->rfd, addr, len,
                                atomic_load(&d->sh->logdirty) ? d->sh : NULL);
    if (rc == 0)
        q->rfd = -1;    /* the tracker owns it */
    return rc;
}

static int op_dom_logdirty(struct sreq *q)
{
    struct sxc_server *s = q->s;
    if (q->c->self != 0)
        return -EPERM;
    struct sdom *d = dom_find(s, q->m->a[0]);
    if (!d || d->domid == 0)
        return d ? -EINVAL : -ESRCH;
    switch (q->m->a[1]) {
    case SXP_LOGDIRTY_ENABLE: {
        /* Every process of the guest that maps its memory must be tracked. */
        unsigned untracked = 0;
        for (int i = 0; i < MAX_CONNS; i++) {
            const struct sconn *c = &s->conns[i];
            if (c->fd >= 0 && c->self == d->domid && c->maps_self &&
                !(s->ld && sxc_logdirty_tracked(s->ld, i, d->domid)))
                untracked++;
        }
        if (untracked) {
            q->r.a[1] = untracked;
            return -EOPNOTSUPP;
        }
        if (!s->ld) {
            int rc = sxc_logdirty_open(&s->ld);
            if (rc < 0)
                return rc;
        }
        return sxc_logdirty_enable(s->ld, d->domid, d->sh);
    }
    case SXP_LOGDIRTY_ROUND: {
        int64_t n = s->ld ? sxc_logdirty_round(s->ld, d->domid, d->sh) : -EINVAL;
        if (n < 0)
            return (int)n;
        q->r.a[0] = (uint32_t)n;
        return 0;
    }
    case SXP_LOGDIRTY_DISABLE:
        if (s->ld)
            sxc_logdirty_disable(s->ld, d->domid, d->sh);
        return 0;
    default:
        return -EINVAL;
    }
}

/* A port of a domain being restored: unbound for its old peer, owned by no handle (the guest's
 * processes close or reuse it once they resume). Only into a paused domain. */
static int op_ev_restore(struct sreq *q)
{
    if (q->c->self != 0)
        return -EPERM;
    struct sdom *d = dom_find(q->s, q->m->a[0]);
    if (!d)
        return -ESRCH;
    if (atomic_load(&d->sh->state) != SXD_STATE_PAUSED)
        return -EBUSY;
    struct sxd_port *p = port_of(d, q->m->a[1]);
    if (!p || q->m->a[2] >= DOMID_FIRST_RESERVED)
        return -EINVAL;
    if (atomic_load(&p->state) != SXD_PORT_FREE)
        return -EEXIST;
    atomic_store(&p->pending, 0);
    atomic_store(&p->masked, 0);
    atomic_store(&p->owner, 0);
    atomic_store(&p->remote_dom, q->m->a[2]);
    atomic_store(&p->remote_port, 0);
    atomic_store(&p->state, SXD_PORT_UNBOUND);
    atomic_fetch_add(&p->gen, 1);
    return 0;
}

static sreq_fn *const sreq_ops[] = {
    [SXP_HELLO] = op_hello,
    [SXP_DOM_CREATE] = op_dom_create,
    [SXP_DOM_DESTROY] = op_dom_destroy,
    [SXP_DOM_PAUSE] = op_dom_pause,
    [SXP_DOM_UNPAUSE] = op_dom_pause,
    [SXP_DOM_LIST] = op_dom_list,
    [SXP_DOM_LOOKUP] = op_dom_lookup,
    [SXP_DOM_GET] = op_dom_get,
    [SXP_EV_REGISTER] = op_ev_register,
    [SXP_EV_UNREGISTER] = op_ev_unregister,
    [SXP_EV_ALLOC_UNBOUND] = op_ev_bind,
    [SXP_EV_BIND] = op_ev_bind,
    [SXP_EV_CLOSE] = op_ev_close,
    [SXP_EV_PEER] = op_ev_peer,
    [SXP_DOM_JOIN] = op_dom_join,
    [SXP_DOM_SUSPEND] = op_dom_suspend,
    [SXP_DOM_WAIT_SUSPENDED] = op_dom_wait_suspended,
    [SXP_DOM_RESUME] = op_dom_resume,
    [SXP_DOM_TRACK] = op_dom_track,
    [SXP_DOM_LOGDIRTY] = op_dom_logdirty,
    [SXP_EV_RESTORE] = op_ev_restore,
};

static void handle_request(struct sxc_server *s, int ci, struct sxp_msg *m, int rfd)
{
    struct sreq q = { .s = s, .ci = ci, .c = &s->conns[ci], .m = m, .r = { .op = m->op },
                      .rfd = rfd };
    m->name[sizeof(m->name) - 1] = 0;
    if (m->op != SXP_HELLO && !q.c->hello)
        q.r.rc = -EPERM;
    else if (m->op >= sizeof(sreq_ops) / sizeof(sreq_ops[0]) || !sreq_ops[m->op])
        q.r.rc = -EOPNOTSUPP;
    else
        q.r.rc = sreq_ops[m->op](&q);
    if (q.rfd >= 0)
        close(q.rfd);
    if (q.deferred && q.r.rc == 0)
        return;
    if (send_reply(q.c->fd, &q.r, q.payload, q.plen, q.fds, q.nfds) < 0)
        conn_drop(s, ci);
}

static void conn_readable(struct sxc_server *s, int ci)
{
    struct sconn *c = &s->conns[ci];
    struct sxp_msg m;
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = { &m, sizeof(m) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof(cbuf) };
    ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    int rfd = -1, extra = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int nf = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *fp = (int *)CMSG_DATA(cm);
            for (int i = 0; i < nf; i++) {
                if (rfd < 0)
                    rfd = fp[i];
                else {
                    close(fp[i]);
                    extra++;
                }
            }
        }
    }
    if (n <= 0 || (size_t)n != sizeof(m) || extra || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (rfd >= 0)
            close(rfd);
        conn_drop(s, ci);   /* EOF or a malformed message: that client only */
        return;
    }
    handle_request(s, ci, &m, rfd);
}

static void accept_conn(struct sxc_server *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    int ci = -1;
    for (int i = 0; i < MAX_CONNS && ci < 0; i++)
        if (s->conns[i].fd < 0)
            ci = i;
    if (ci < 0) {
        sx_warn("too many clients; refusing one");
        close(fd);
        return;
    }
    s->conns[ci] = (struct sconn){ .fd = fd };
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)ci + 2 };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        conn_drop(s, ci);
}

static void server_teardown(struct sxc_server *s)
{
    for (int i = 0; i < MAX_CONNS; i++)
        conn_drop(s, i);
    for (int i = 0; i < MAX_DOMS; i++)
        if (s->doms[i].used && s->doms[i].domid != 0)
            dom_release(s, &s->doms[i]);
    for (int i = 0; i < MAX_DOMS; i++)
        dom_release(s, &s->doms[i]);
    sxc_logdirty_close(s->ld);
    s->ld = NULL;
    if (s->hooks.close)
        s->hooks.close(s->hooks.ctx);
    if (s->lfd >= 0) {
        close(s->lfd);
        unlink(s->sock_path);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->stop_efd >= 0)
        close(s->stop_efd);
}

static int server_init(struct sxc_server *s, const struct sxc_server_opts *o)
{
    s->lfd = s->epfd = s->stop_efd = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    for (int i = 0; i < MAX_WAITERS; i++)
        s->waiters[i].conn = -1;
    s->next_domid = 1;
    const char *dir = o && o->run_dir ? o->run_dir : sx_run_dir();
    int rc;
    if (snprintf(s->run_dir, sizeof(s->run_dir), "%s", dir) >= (int)sizeof(s->run_dir) ||
        sxc_socket_path(s->sock_path, sizeof(s->sock_path), dir) < 0)
        return -ENAMETOOLONG;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->lfd < 0)
        return -errno;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(s->sock_path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, s->sock_path);
    unlink(s->sock_path);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 64) < 0)
        return -errno;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epfd < 0 || s->stop_efd < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0)
        return -errno;
    ev.data.u32 = 1;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_efd, &ev) < 0)
        return -errno;
    if (o && o->with_xenstored) {
        rc = sxc_server_hooks_xenstored(&s->hooks, s->run_dir);
        if (rc < 0)
            return rc;
        ev.data.u32 = UINT32_MAX;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->hooks.fd, &ev) < 0)
            return -errno;
    }
    rc = dom_create(s, 0, "Domain-0", SXD_TYPE_PV, o && o->dom0_mem_mb ? o->dom0_mem_mb : 64, 1,
                    false);
    return rc < 0 ? rc : 0;
}

static void server_loop(struct sxc_server *s)
{
    struct epoll_event evs[32];
    while (!s->stop_flag && !(s->stop && *s->stop)) {
        int next = waiters_expire(s);
        int n = epoll_wait(s->epfd, evs, 32, next >= 0 && next < 500 ? next : 500);
        for (int i = 0; i < n; i++) {
            uint32_t k = evs[i].data.u32;
            if (k == 0)
                accept_conn(s);
            else if (k == UINT32_MAX)
                s->hooks.step(s->hooks.ctx);
            else if (k == 1)
                s->stop_flag = 1;
            else
                conn_readable(s, (int)k - 2);
        }
    }
}

static void *server_thread(void *arg)
{
    server_loop(arg);
    return NULL;
}

int sxc_server_open(struct sxc_server **out, const struct sxc_server_opts *opts)
{
    struct sxc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = server_init(s, opts);
    if (rc < 0)
        goto fail;
    rc = -pthread_create(&s->thread, NULL, server_thread, s);
    if (rc < 0)
        goto fail;
    s->threaded = true;
    *out = s;
    return 0;
fail:
    server_teardown(s);
    free(s);
    return rc;
}

void sxc_server_close(struct sxc_server *s)
{
    if (!s)
        return;
    if (s->threaded) {
        uint64_t one = 1;
        ssize_t w = write(s->stop_efd, &one, sizeof(one));
        (void)w;
        pthread_join(s->thread, NULL);
    }
    server_teardown(s);
    free(s);
}

int sxc_server_run(const struct sxc_server_opts *opts, volatile int *stop)
{
    struct sxc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = server_init(s, opts);
    if (rc == 0) {
        s->stop = stop;
        server_loop(s);
    }
    server_teardown(s);
    free(s);
    return rc;
}
