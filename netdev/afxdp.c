/*
 * netdev kind "afxdp": a vif's world side on a named uplink interface through AF_XDP sockets
 * (libxdp's xsk API and its multi-program dispatcher), with the driver domain's kernel stack
 * out of the path. Chosen by the world keys script=vif-afxdp, gatewaydev=UPLINK (world.h).
 *
 * Per uplink, shared by every vif on it (the registry below, refcounted):
 *   - one XDP program (afxdp.bpf.c, carried in the binary) attached through libxdp's
 *     dispatcher (other programs keep running on the uplink), natively where the driver can,
 *     in generic (skb) mode otherwise; it steers a unicast frame by destination MAC to the
 *     socket of that vif for the queue it arrived on, and passes everything else to the kernel;
 *   - one UMEM per uplink queue, with its fill and completion rings: every vif socket bound to
 *     that queue shares it (the kernel allows one buffer pool per device queue). Its frames are
 *     split so that no vif can starve another: rx frames (the fill ring's and, at most, each
 *     vif's rx ring full) circulate among all, tx frames are each vif's own.
 * Per vif: a slot in the uplink's maps, one socket per queue (the vif offers no more queues
 * than the uplink has), and a packet socket on the uplink that reads broadcast and multicast
 * frames (XDP cannot clone a frame to several sockets; the program passes those to the kernel,
 * where every vif's packet socket gets its copy) and keeps the vif's MAC in the uplink's
 * unicast filter (PACKET_MR_UNICAST, dropped by the kernel when the socket closes).
 *
 * Data path, per queue, one thread (netdev.h): rx_burst takes up to n descriptors off the
 * socket's rx ring, copies each frame behind a zero virtio-net header into the caller's buffer
 * and gives the frames back to the fill ring in one batch; tx_burst reclaims completions and
 * takes frames in one batch under the UMEM's lock, copies the frames in (completing partial
 * checksums in software: the uplink gets no offload metadata), submits them to the tx ring and
 * kicks the kernel when it asks (need_wakeup). GSO frames are not taken (the vif offers no GSO:
 * nd->tx_no_gso), nor frames longer than a UMEM frame.
 *
 * Zero-copy where the driver offers it (XDP_ZEROCOPY), copy mode otherwise; veth, as in the
 * tests, offers copy mode. Vifs on one uplink reach each other only through the outside (the
 * uplink does not hairpin), as VEPA-mode macvlans.
 *
 * Teardown leaves nothing: the last vif of an uplink detaches the program (libxdp removes the
 * dispatcher and its bpffs pins), closes the sockets and frees the UMEMs. A program a previous
 * backend left on the uplink (it crashed) is detached when the first vif attaches.
 */
#define SX_LOG_MODULE "netdev"
#include "clock.h"
#include "log.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "netdev/afxdp_maps.h"
#include "netdev/netdev_impl.h"

_Static_assert(SX_AFXDP_MAX_QUEUES == SX_NETDEV_MAX_QUEUES, "a map key per netdev queue");

/* The XDP program, built by netdev/module.mk and carried here. */
__asm__(".pushsection .rodata\n"
        ".balign 8\n"
        ".global sx_afxdp_bpf_obj\n"
        "sx_afxdp_bpf_obj:\n"
        ".incbin \"" SX_AFXDP_BPF_OBJ "\"\n"
        ".global sx_afxdp_bpf_obj_end\n"
        "sx_afxdp_bpf_obj_end:\n"
        ".popsection\n");
extern const char sx_afxdp_bpf_obj[], sx_afxdp_bpf_obj_end[];

#define PROG_NAME "sx_afxdp_steer"
#define FRAME 2048u                     /* UMEM frame: MTU 1500 + VLAN tags with room left */
#define FILL_RING 2048u
#define COMP_RING 1024u
#define RX_RING 1024u
#define TX_RING 256u
#define TX_FRAMES TX_RING               /* each vif's own, per uplink queue */
/* rx frames: the fill ring full, and every vif's rx ring full besides */
#define RX_FRAMES (FILL_RING + SX_AFXDP_MAX_VIFS * RX_RING)
#define NFRAMES (RX_FRAMES + SX_AFXDP_MAX_VIFS * TX_FRAMES)
#define BURST 64u
#define PKT_SLOTS 64u                   /* broadcast frames a burst may take */

/* One UMEM: uplink queue qid, shared by the vif sockets bound to it. */
struct pool {
    pthread_mutex_t lock;               /* fill, comp, rxfree, txfree */
    struct xsk_umem *umem;
    uint8_t *area;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    uint64_t *rxfree;                   /* rx frames the fill ring had no room for */
    unsigned nrxfree;
    uint64_t *txfree[SX_AFXDP_MAX_VIFS];   /* TX_FRAMES each, a vif slot's free tx frames */
    unsigned ntxfree[SX_AFXDP_MAX_VIFS];
    unsigned users;                     /* sockets bound */
    bool zerocopy;
};

struct uplink {
    struct uplink *next;
    char ifname[IFNAMSIZ];
    int ifindex;
    unsigned nrxq;                      /* the uplink's rx queues (sockets a vif may bind) */
    unsigned refs;                      /* vifs */
    struct xdp_program *prog;
    struct bpf_object *obj;             /* the program's: libxdp leaves closing it to us */
    enum xdp_attach_mode mode;
    int xsks_fd, macs_fd;
    bool slot_used[SX_AFXDP_MAX_VIFS];
    struct pool *pool[SX_AFXDP_MAX_QUEUES];
};

static pthread_mutex_t uplinks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uplink *uplinks;

struct afq {                            /* one socket: uplink queue j */
    struct xsk_socket *xsk;
    struct xsk_ring_cons rx;
    struct xsk_ring_prod tx;
    struct pool *pool;
    int fd;
    int owner;                          /* the netdev queue whose epoll has it (-1: none) */
    bool mapped;                        /* in the XSKMAP */
};

/*
 * A vif has a socket on every queue of its uplink (a frame arrives on whichever queue the
 * uplink picks, and a socket receives only from its own), and offers at most that many queues.
 * With n queues in use (set_queues), netdev queue q reads the sockets j = q, q + n, ... and
 * sends on socket q; its poll fd is an epoll of those (queue 0's also holds the packet socket),
 * fixed from open on (netback reads it before set_queues), its members moved by set_queues.
 */
struct afxdp {
    struct uplink *up;
    unsigned slot;
    bool slot_set;
    uint64_t mackey;
    bool mac_set;
    int pktfd;                          /* broadcast and multicast frames (queue 0 reads it) */
    unsigned nsock;                     /* sockets open, from uplink queue 0 */
    unsigned nactive;                   /* netdev queues in use */
    int ep[SX_NETDEV_MAX_QUEUES];       /* each netdev queue's epoll */
    unsigned rr[SX_NETDEV_MAX_QUEUES];  /* rx: the socket a queue's next burst starts at */
    struct afq s[SX_AFXDP_MAX_QUEUES];
};

/* libxdp's and libbpf's messages: warnings at info level (libxdp warns when it falls back to a
 * single program, which afxdp.c reports itself; a failure comes back as an error), the rest at
 * debug level. */
static int lib_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
    char buf[256];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    if (level == LIBXDP_WARN)
        sx_info("libxdp: %s", buf);
    else
        sx_debug("libxdp: %s", buf);
    return 0;
}

static int bpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    return lib_print(level == LIBBPF_WARN ? LIBXDP_WARN : LIBXDP_DEBUG, fmt, ap);
}

/* ---------------------------------------------------------------- the uplink's UMEMs */

static void pool_free(struct pool *p)
{
    if (!p)
        return;
    if (p->umem && xsk_umem__delete(p->umem))
        sx_warn("afxdp: UMEM still in use at teardown");
    if (p->area)
        munmap(p->area, (size_t)NFRAMES * FRAME);
    free(p->rxfree);
    for (unsigned s = 0; s < SX_AFXDP_MAX_VIFS; s++)
        free(p->txfree[s]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int pool_new(struct pool **out)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->area = mmap(NULL, (size_t)NFRAMES * FRAME, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->area == MAP_FAILED) {
        p->area = NULL;
        pool_free(p);
        return -ENOMEM;
    }
    p->rxfree = calloc(RX_FRAMES, sizeof(*p->rxfree));
    if (!p->rxfree) {
        pool_free(p);
        return -ENOMEM;
    }
    for (unsigned s = 0; s < SX_AFXDP_MAX_VIFS; s++) {
        if (!(p->txfree[s] = calloc(TX_FRAMES, sizeof(uint64_t)))) {
            pool_free(p);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < TX_FRAMES; i++)
            p->txfree[s][i] = (uint64_t)(RX_FRAMES + s * TX_FRAMES + i) * FRAME;
        p->ntxfree[s] = TX_FRAMES;
    }
    const struct xsk_umem_config uc = { .fill_size = FILL_RING, .comp_size = COMP_RING,
                                        .frame_size = FRAME, .frame_headroom = 0 };
    int rc = xsk_umem__create(&p->umem, p->area, (uint64_t)NFRAMES * FRAME, &p->fill, &p->comp,
                              &uc);
    if (rc) {
        p->umem = NULL;
        pool_free(p);
        return rc < 0 ? rc : -rc;
    }
    for (unsigned i = 0; i < RX_FRAMES; i++)
        p->rxfree[i] = (uint64_t)i * FRAME;
    p->nrxfree = RX_FRAMES;
    *out = p;
    return 0;
}

/* Give rx frames (and any held back) to the fill ring. Under p->lock. */
static void pool_refill_locked(struct pool *p, const uint64_t *addrs, unsigned n)
{
    unsigned room = xsk_prod_nb_free(&p->fill, n + p->nrxfree);
    uint32_t idx = 0;
    unsigned k = 0;
    if (room && xsk_ring_prod__reserve(&p->fill, room, &idx) == room) {
        for (; k < room && k < n; k++)
            *xsk_ring_prod__fill_addr(&p->fill, idx + k) = addrs[k];
        for (; k < room && p->nrxfree; k++)
            *xsk_ring_prod__fill_addr(&p->fill, idx + k) = p->rxfree[--p->nrxfree];
        xsk_ring_prod__submit(&p->fill, k);
    }
    for (unsigned i = k; i < n; i++)
        p->rxfree[p->nrxfree++] = addrs[i];
}

/* Reclaim tx completions into their vifs' free lists. Under p->lock. */
static void pool_reclaim_locked(struct pool *p)
{
    uint32_t idx = 0;
    unsigned n = xsk_ring_cons__peek(&p->comp, COMP_RING, &idx);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = xsk_umem__extract_addr(*xsk_ring_cons__comp_addr(&p->comp, idx + i));
        uint64_t f = a / FRAME;
        if (f >= RX_FRAMES && f < NFRAMES) {
            unsigned s = (unsigned)((f - RX_FRAMES) / TX_FRAMES);
            if (p->ntxfree[s] < TX_FRAMES)
                p->txfree[s][p->ntxfree[s]++] = a;
        }
    }
    if (n)
        xsk_ring_cons__release(&p->comp, n);
}

/* ---------------------------------------------------------------- the uplink's program */

/* Detach what a previous backend left: every program of ours on the uplink. */
static void detach_leftovers(int ifindex)
{
    for (int round = 0; round < 8; round++) {
        struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
        if (libxdp_get_error(mp) || !mp)
            return;
        struct xdp_program *found = NULL;
        if (xdp_multiprog__is_legacy(mp)) {
            struct xdp_program *m = xdp_multiprog__main_prog(mp);
            if (m && !strcmp(xdp_program__name(m), PROG_NAME))
                found = m;
        } else {
            for (struct xdp_program *p = xdp_multiprog__next_prog(NULL, mp); p;
                 p = xdp_multiprog__next_prog(p, mp))
                if (!strcmp(xdp_program__name(p), PROG_NAME)) {
                    found = p;
                    break;
                }
        }
        int rc = found ? xdp_program__detach(found, ifindex, xdp_multiprog__attach_mode(mp), 0)
                       : 0;
        xdp_multiprog__close(mp);
        if (!found)
            return;
        if (rc) {
            sx_warn("afxdp: cannot detach a leftover %s: %s", PROG_NAME, strerror(-rc));
            return;
        }
        sx_info("afxdp: detached a leftover %s from ifindex %d", PROG_NAME, ifindex);
    }
}

static unsigned uplink_rx_queues(const char *ifname)
{
    char path[128];
    unsigned n = 0;
    for (; n < SX_AFXDP_MAX_QUEUES; n++) {
        snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-%u", ifname, n);
        if (access(path, F_OK))
            break;
    }
    return n ? n : 1;
}

static void uplink_put(struct uplink *u)
{
    if (!u || --u->refs)
        return;
    for (struct uplink **pp = &uplinks; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    if (u->prog) {
        int rc = xdp_program__detach(u->prog, u->ifindex, u->mode, 0);
        if (rc)
            sx_warn("afxdp: %s: detaching the XDP program: %s", u->ifname, strerror(-rc));
        xdp_program__close(u->prog);
    }
    bpf_object__close(u->obj);
    for (unsigned q = 0; q < SX_AFXDP_MAX_QUEUES; q++)
        pool_free(u->pool[q]);
    free(u);
}

/* The uplink's shared state, attaching its program on first use. Under uplinks_lock. */
static int uplink_get(const struct sx_netdev_config *cfg, const char *ifname, struct uplink **out)
{
    for (struct uplink *u = uplinks; u; u = u->next)
        if (!strcmp(u->ifname, ifname)) {
            u->refs++;
            *out = u;
            return 0;
        }
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex)
        return sx_netdev_fail(cfg, -ENODEV, "gatewaydev: '%s': no such interface", ifname);
    struct uplink *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    snprintf(u->ifname, sizeof(u->ifname), "%s", ifname);
    u->ifindex = ifindex;
    u->nrxq = uplink_rx_queues(ifname);
    u->refs = 1;
    libxdp_set_print(lib_print);
    libbpf_set_print(bpf_print);
    detach_leftovers(ifindex);

    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "sx_afxdp");
    struct bpf_object *obj = bpf_object__open_mem(
        sx_afxdp_bpf_obj, (size_t)(sx_afxdp_bpf_obj_end - sx_afxdp_bpf_obj), &oo);
    int rc = (int)libbpf_get_error(obj);
    if (rc || !obj) {
        free(u);
        return sx_netdev_fail(cfg, rc ? rc : -EINVAL,
                              "gatewaydev: '%s': opening the XDP program: %s", ifname,
                              strerror(rc ? -rc : EINVAL));
    }
    u->obj = obj;
    u->prog = xdp_program__from_bpf_obj(obj, "xdp");
    rc = (int)libxdp_get_error(u->prog);
    if (rc || !u->prog) {
        u->prog = NULL;
        bpf_object__close(obj);
        free(u);
        return sx_netdev_fail(cfg, rc ? rc : -EINVAL, "gatewaydev: '%s': the XDP program: %s",
                              ifname, strerror(rc ? -rc : EINVAL));
    }
    u->mode = XDP_MODE_NATIVE;
    rc = xdp_program__attach(u->prog, ifindex, u->mode, 0);
    if (rc) {
        u->mode = XDP_MODE_SKB;
        rc = xdp_program__attach(u->prog, ifindex, u->mode, 0);
    }
    if (rc) {
        xdp_program__close(u->prog);
        bpf_object__close(obj);
        free(u);
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': attaching the XDP program: %s", ifname,
                              strerror(-rc));
    }
    struct bpf_object *lo = xdp_program__bpf_obj(u->prog);
    u->xsks_fd = bpf_object__find_map_fd_by_name(lo, "sx_afxdp_xsks");
    u->macs_fd = bpf_object__find_map_fd_by_name(lo, "sx_afxdp_macs");
    u->next = uplinks;
    uplinks = u;
    if (u->xsks_fd < 0 || u->macs_fd < 0) {
        uplink_put(u);
        return sx_netdev_fail(cfg, -ENOENT, "gatewaydev: '%s': the XDP program has no maps",
                              ifname);
    }
    /* libxdp loads its dispatcher where the kernel lets it (freplace programs), else the
     * program alone, which then cannot share the uplink with another */
    struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
    bool legacy = !libxdp_get_error(mp) && mp && xdp_multiprog__is_legacy(mp);
    if (!libxdp_get_error(mp))
        xdp_multiprog__close(mp);
    sx_info("afxdp: %s: XDP program attached (%s mode, %s), %u rx queue(s)", ifname,
            u->mode == XDP_MODE_NATIVE ? "native" : "generic",
            legacy ? "alone: libxdp could not load its dispatcher" : "through libxdp's dispatcher",
            u->nrxq);
    *out = u;
    return 0;
}

/* ---------------------------------------------------------------- open / close */

/* A packet socket on the uplink for broadcast and multicast frames, holding the vif's MAC in
 * the uplink's unicast filter and the uplink in all-multicast mode while it is open. */
static int pkt_open(const struct sx_netdev_config *cfg, const struct uplink *u,
                    const uint8_t mac[6])
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0)
        return sx_netdev_fail(cfg, -errno, "gatewaydev: '%s': packet socket: %s", u->ifname,
                              strerror(errno));
    /* Group-address frames only: ldb [0]; jset #1 -> accept, else drop. Attached before
     * bind, so no other frame is ever queued. */
    struct sock_filter code[] = {
        { BPF_LD | BPF_B | BPF_ABS, 0, 0, 0 },
        { BPF_JMP | BPF_JSET | BPF_K, 0, 1, 1 },
        { BPF_RET | BPF_K, 0, 0, 0xffff },
        { BPF_RET | BPF_K, 0, 0, 0 },
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    int one = 1;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = u->ifindex };
    struct packet_mreq uc = { .mr_ifindex = u->ifindex, .mr_type = PACKET_MR_UNICAST,
                              .mr_alen = 6 };
    memcpy(uc.mr_address, mac, 6);
    struct packet_mreq am = { .mr_ifindex = u->ifindex, .mr_type = PACKET_MR_ALLMULTI };
    const char *what = NULL;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
        what = "filter";
    else if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)))
        what = "ignore outgoing";
    else if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
        what = "bind";
    else if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &uc, sizeof(uc)))
        what = "the vif's MAC in the uplink's filter";
    else if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &am, sizeof(am)))
        what = "all-multicast";
    if (what) {
        int e = errno;
        close(fd);
        return sx_netdev_fail(cfg, -e, "gatewaydev: '%s': packet socket (%s): %s", u->ifname, what,
                              strerror(e));
    }
    return fd;
}

/* An AF_XDP socket on queue q of ifname in p's UMEM. The kernel lets go of a closed socket's
 * queue binding a little after close returns (its release is deferred): a vif opened again at
 * once, or a restarted netback, finds the queue busy for a moment. EBUSY is retried for up to
 * 2 s; anything else, and a queue still busy then, is the answer. */
static int xsk_create(struct afq *aq, const char *ifname, unsigned q, struct pool *p,
                      const struct xsk_socket_config *sc)
{
    uint64_t end = sx_now_ms() + 2000;
    for (;;) {
        int rc = xsk_socket__create_shared(&aq->xsk, ifname, q, p->umem, &aq->rx, &aq->tx,
                                           &p->fill, &p->comp, sc);
        if (rc != -EBUSY || sx_now_ms() >= end)
            return rc;
        usleep(10000);
    }
}

/* The vif's socket on uplink queue q, sharing that queue's UMEM. */
static int queue_open(const struct sx_netdev_config *cfg, struct afxdp *a, unsigned q)
{
    struct uplink *u = a->up;
    struct afq *aq = &a->s[q];
    int rc;
    if (!u->pool[q] && (rc = pool_new(&u->pool[q])) < 0)
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': UMEM for queue %u: %s", u->ifname, q,
                              strerror(-rc));
    struct pool *p = u->pool[q];
    struct xsk_socket_config sc = { .rx_size = RX_RING, .tx_size = TX_RING,
                                    .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                                    .bind_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY };
    rc = xsk_create(aq, u->ifname, q, p, &sc);
    if (rc && !p->users) {
        /* no zero-copy in this driver: copy mode (the first socket decides the pool's) */
        sc.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
        rc = xsk_create(aq, u->ifname, q, p, &sc);
    } else if (!rc && !p->users) {
        p->zerocopy = true;
    }
    if (rc) {
        aq->xsk = NULL;
        if (!p->users) {
            pool_free(p);
            u->pool[q] = NULL;
        }
        return sx_netdev_fail(cfg, rc < 0 ? rc : -rc,
                              "gatewaydev: '%s': AF_XDP socket on queue %u: %s", u->ifname, q,
                              strerror(rc < 0 ? -rc : rc));
    }
    aq->pool = p;
    aq->fd = xsk_socket__fd(aq->xsk);
    if (!p->users++) {
        pthread_mutex_lock(&p->lock);
        pool_refill_locked(p, NULL, 0);
        pthread_mutex_unlock(&p->lock);
        sx_info("afxdp: %s queue %u: %s mode", u->ifname, q,
                p->zerocopy ? "zero-copy" : "copy");
    }
    return 0;
}

static void queue_close(struct afxdp *a, unsigned q)
{
    struct afq *aq = &a->s[q];
    struct uplink *u = a->up;
    if (aq->mapped) {
        uint32_t key = a->slot * SX_AFXDP_MAX_QUEUES + q;
        bpf_map_delete_elem(u->xsks_fd, &key);
        aq->mapped = false;
    }
    if (aq->xsk) {
        struct xdp_statistics st;
        socklen_t sl = sizeof(st);
        if (!getsockopt(aq->fd, SOL_XDP, XDP_STATISTICS, &st, &sl))
            sx_info("afxdp: %s queue %u slot %u: rx dropped %llu, rx ring full %llu, fill ring "
                    "empty %llu, rx invalid %llu, tx invalid %llu", u->ifname, q, a->slot,
                    (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_ring_full,
                    (unsigned long long)st.rx_fill_ring_empty_descs,
                    (unsigned long long)st.rx_invalid_descs,
                    (unsigned long long)st.tx_invalid_descs);
        /* out of the XSKMAP above: give what its rx ring holds back to the pool */
        uint32_t idx = 0;
        unsigned n;
        while ((n = xsk_ring_cons__peek(&aq->rx, BURST, &idx)) > 0) {
            uint64_t addrs[BURST];
            for (unsigned i = 0; i < n; i++)
                addrs[i] = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&aq->rx, idx + i)->addr);
            xsk_ring_cons__release(&aq->rx, n);
            pthread_mutex_lock(&aq->pool->lock);
            pool_refill_locked(aq->pool, addrs, n);
            pthread_mutex_unlock(&aq->pool->lock);
        }
        xsk_socket__delete(aq->xsk);
        aq->xsk = NULL;
        struct pool *p = aq->pool;
        /* the last socket takes the UMEM with it */
        if (p && !--p->users) {
            pool_free(p);
            u->pool[q] = NULL;
        }
        aq->pool = NULL;
    }
}

/* Socket j into netdev queue (j % n)'s epoll. */
static int place_sockets(struct afxdp *a, unsigned n)
{
    for (unsigned j = 0; j < a->nsock; j++) {
        struct afq *aq = &a->s[j];
        int want = (int)(j % n);
        if (aq->owner == want)
            continue;
        if (aq->owner >= 0)
            epoll_ctl(a->ep[aq->owner], EPOLL_CTL_DEL, aq->fd, NULL);
        aq->owner = -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = aq->fd };
        if (epoll_ctl(a->ep[want], EPOLL_CTL_ADD, aq->fd, &ev))
            return -errno;
        aq->owner = want;
    }
    for (unsigned q = 0; q < SX_NETDEV_MAX_QUEUES; q++)
        a->rr[q] = q;
    a->nactive = n;
    return 0;
}

static void afxdp_close(struct sx_netdev *nd)
{
    struct afxdp *a = nd->priv;
    if (!a)
        return;
    pthread_mutex_lock(&uplinks_lock);
    for (unsigned q = 0; q < a->nsock; q++)
        queue_close(a, q);
    for (unsigned q = 0; q < SX_NETDEV_MAX_QUEUES; q++)
        if (a->ep[q] >= 0)
            close(a->ep[q]);
    if (a->pktfd >= 0)
        close(a->pktfd);
    if (a->mac_set)
        bpf_map_delete_elem(a->up->macs_fd, &a->mackey);
    if (a->slot_set)
        a->up->slot_used[a->slot] = false;
    if (a->up) {
        uplink_put(a->up);
    }
    pthread_mutex_unlock(&uplinks_lock);
    free(a);
    nd->priv = NULL;
}

static int afxdp_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    const struct sx_world *w = cfg->world;
    if (!w || w->mode != SX_WORLD_AFXDP)
        return sx_netdev_fail(cfg, -EINVAL, "script: the afxdp world side needs script=vif-afxdp");
    if (!w->has_guest_mac)
        return sx_netdev_fail(cfg, -EINVAL,
                              "mac: missing: vif-afxdp steers frames by the guest's MAC");
    if (w->guest_mac[0] & 1)
        return sx_netdev_fail(cfg, -EINVAL, "mac: a multicast MAC cannot be a vif's");
    struct afxdp *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->pktfd = -1;
    for (unsigned q = 0; q < SX_NETDEV_MAX_QUEUES; q++)
        a->ep[q] = a->s[q].fd = a->s[q].owner = -1;
    memcpy(&a->mackey, w->guest_mac, 6);
    nd->priv = a;
    nd->tx_no_gso = true;

    pthread_mutex_lock(&uplinks_lock);
    int rc = uplink_get(cfg, w->gatewaydev, &a->up);
    if (rc < 0) {
        a->up = NULL;
        goto fail;
    }
    struct uplink *u = a->up;
    unsigned s = 0;
    while (s < SX_AFXDP_MAX_VIFS && u->slot_used[s])
        s++;
    if (s == SX_AFXDP_MAX_VIFS) {
        rc = sx_netdev_fail(cfg, -ENOSPC, "gatewaydev: '%s': already carries %u AF_XDP vifs",
                            u->ifname, SX_AFXDP_MAX_VIFS);
        goto fail;
    }
    a->slot = s;
    a->slot_set = true;
    u->slot_used[s] = true;
    /* a vif offers the uplink's queues at most (a socket serves one uplink queue) */
    nd->nqueues = cfg->nqueues < u->nrxq ? cfg->nqueues : u->nrxq;
    for (a->nsock = 0; a->nsock < u->nrxq; a->nsock++)
        if ((rc = queue_open(cfg, a, a->nsock)) < 0)
            goto fail;
    uint32_t v = s;
    if (bpf_map_update_elem(u->macs_fd, &a->mackey, &v, BPF_NOEXIST)) {
        rc = -errno;
        rc = sx_netdev_fail(cfg, rc, "mac: %02x:%02x:%02x:%02x:%02x:%02x: %s", w->guest_mac[0],
                            w->guest_mac[1], w->guest_mac[2], w->guest_mac[3], w->guest_mac[4],
                            w->guest_mac[5],
                            rc == -EEXIST ? "another vif on this uplink has it" : strerror(-rc));
        goto fail;
    }
    a->mac_set = true;
    if ((rc = pkt_open(cfg, u, w->guest_mac)) < 0)
        goto fail;
    a->pktfd = rc;
    for (unsigned q = 0; q < nd->nqueues; q++)
        if ((a->ep[q] = epoll_create1(EPOLL_CLOEXEC)) < 0) {
            rc = sx_netdev_fail(cfg, -errno, "epoll: %s", strerror(errno));
            goto fail;
        }
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = a->pktfd };
    if (epoll_ctl(a->ep[0], EPOLL_CTL_ADD, a->pktfd, &ev)) {
        rc = sx_netdev_fail(cfg, -errno, "epoll: %s", strerror(errno));
        goto fail;
    }
    /* every socket read by some queue until the guest says how many it uses */
    if ((rc = place_sockets(a, nd->nqueues)) < 0) {
        rc = sx_netdev_fail(cfg, rc, "epoll: %s", strerror(-rc));
        goto fail;
    }
    pthread_mutex_unlock(&uplinks_lock);
    return 0;
fail:
    pthread_mutex_unlock(&uplinks_lock);
    afxdp_close(nd);
    return rc;
}

/* With n queues in use: socket j in queue (j % n)'s epoll, and in the XSKMAP. */
static int afxdp_set_queues(struct sx_netdev *nd, unsigned n)
{
    struct afxdp *a = nd->priv;
    if (!n || n > nd->nqueues)
        return -EINVAL;
    int rc = place_sockets(a, n);
    if (rc < 0)
        return rc;
    for (unsigned j = 0; j < a->nsock; j++) {
        if (a->s[j].mapped)
            continue;
        uint32_t key = a->slot * SX_AFXDP_MAX_QUEUES + j, fd = (uint32_t)a->s[j].fd;
        if (bpf_map_update_elem(a->up->xsks_fd, &key, &fd, BPF_ANY))
            return -errno;
        a->s[j].mapped = true;
    }
    return 0;
}

static int afxdp_poll_fd(struct sx_netdev *nd, unsigned q)
{
    struct afxdp *a = nd->priv;
    return q < nd->nqueues ? a->ep[q] : -EINVAL;
}

/* Push the tx ring's descriptors out (copy mode: each sendto sends a budget of them). */
static void tx_kick(struct afq *aq, unsigned n)
{
    if (!aq->pool->zerocopy || xsk_ring_prod__needs_wakeup(&aq->tx)) {
        for (unsigned i = 0; i < n / 32 + 2; i++) {
            if (sendto(aq->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
                break;
            if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS && errno != EINTR)
                break;
        }
    }
}

static int afxdp_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n)
{
    struct afxdp *a = nd->priv;
    if (q >= a->nactive)
        return -EINVAL;
    struct afq *aq = &a->s[q];
    struct pool *p = aq->pool;
    const unsigned s = a->slot;
    int sent = 0;
    while (n) {
        unsigned m = n < BURST ? n : BURST;
        /* frames: this vif's free ones (completions reclaimed first), no more than the tx
         * ring has room for */
        unsigned k = xsk_prod_nb_free(&aq->tx, m);
        if (k > m)
            k = m;
        uint64_t fr[BURST];
        pthread_mutex_lock(&p->lock);
        pool_reclaim_locked(p);
        if (k > p->ntxfree[s])
            k = p->ntxfree[s];
        for (unsigned i = 0; i < k; i++)
            fr[i] = p->txfree[s][--p->ntxfree[s]];
        pthread_mutex_unlock(&p->lock);
        uint32_t lens[BURST];
        unsigned used = 0;
        for (unsigned i = 0; i < m; i++) {
            int len = used < k ? sx_net_frame_plain(b[i].data, b[i].len, p->area + fr[used],
                                                    FRAME) : -ENOBUFS;
            if (len < 0) {
                b[i].len = 0;   /* no frame or ring slot, or a frame the uplink cannot take */
            } else {
                lens[used++] = (uint32_t)len;
            }
        }
        uint32_t idx = 0;
        if (used && xsk_ring_prod__reserve(&aq->tx, used, &idx) == used) {
            for (unsigned i = 0; i < used; i++) {
                struct xdp_desc *d = xsk_ring_prod__tx_desc(&aq->tx, idx + i);
                d->addr = fr[i];
                d->len = lens[i];
            }
            xsk_ring_prod__submit(&aq->tx, used);
            tx_kick(aq, used);
            sent += (int)used;
        } else {
            used = 0;   /* cannot happen: the room was counted above */
        }
        if (used < k) {
            pthread_mutex_lock(&p->lock);
            for (unsigned i = used; i < k; i++)
                p->txfree[s][p->ntxfree[s]++] = fr[i];
            pthread_mutex_unlock(&p->lock);
        }
        b += m;
        n -= m;
    }
    return sent;
}

/* Up to n frames off socket aq's rx ring into b (room for cap bytes each). */
static unsigned rx_socket(struct afq *aq, struct sx_netdev_buf *b, unsigned n, uint32_t cap)
{
    struct pool *p = aq->pool;
    uint32_t idx = 0;
    unsigned k = xsk_ring_cons__peek(&aq->rx, n, &idx), got = 0, na = 0;
    uint64_t addrs[BURST];
    for (unsigned i = 0; i < k; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&aq->rx, idx + i);
        uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
        if (d->len + SX_NETDEV_HDR_LEN <= cap && addr + d->len <= (uint64_t)NFRAMES * FRAME) {
            memset(b[got].data, 0, SX_NETDEV_HDR_LEN);
            memcpy(b[got].data + SX_NETDEV_HDR_LEN, p->area + addr, d->len);
            b[got++].len = SX_NETDEV_HDR_LEN + d->len;
        }
        addrs[na++] = xsk_umem__extract_addr(d->addr);
        if (na == BURST || i + 1 == k) {
            pthread_mutex_lock(&p->lock);
            pool_refill_locked(p, addrs, na);
            pthread_mutex_unlock(&p->lock);
            na = 0;
        }
    }
    if (k) {
        xsk_ring_cons__release(&aq->rx, k);
        if (xsk_ring_prod__needs_wakeup(&p->fill))
            recvfrom(aq->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
    }
    return got;
}

static int afxdp_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                          uint32_t cap)
{
    struct afxdp *a = nd->priv;
    if (q >= a->nactive)
        return -EINVAL;
    unsigned got = 0;
    /* broadcast and multicast frames (queue 0) */
    while (q == 0 && got < n && got < PKT_SLOTS && cap > SX_NETDEV_HDR_LEN) {
        ssize_t r = recv(a->pktfd, b[got].data + SX_NETDEV_HDR_LEN, cap - SX_NETDEV_HDR_LEN,
                         MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0)
            break;
        if ((size_t)r > cap - SX_NETDEV_HDR_LEN)
            continue;   /* longer than the caller's buffer: lost */
        memset(b[got].data, 0, SX_NETDEV_HDR_LEN);
        b[got++].len = SX_NETDEV_HDR_LEN + (uint32_t)r;
    }
    /* this queue's sockets, starting after the one the last burst started at */
    unsigned first = a->rr[q], j = first;
    do {
        if (got < n)
            got += rx_socket(&a->s[j], b + got, n - got, cap);
        j += a->nactive;
        if (j >= a->nsock)
            j = q;
    } while (j != first);
    a->rr[q] = first + a->nactive < a->nsock ? first + a->nactive : q;
    return (int)got;
}

const struct sx_netdev_ops sx_netdev_afxdp_ops = {
    .kind = "afxdp",
    .open = afxdp_open,
    .close = afxdp_close,
    .set_queues = afxdp_set_queues,
    .poll_fd = afxdp_poll_fd,
    .tx_burst = afxdp_tx_burst,
    .rx_burst = afxdp_rx_burst,
};
