/*
 * netdev kind "dpdk", the implementation: built into its own shared object (netdev-dpdk.so,
 * linked against Debian's DPDK 22.11) that dpdk_kind.c loads when the first DPDK vif opens, so
 * that no other program, and no host without DPDK vifs, loads DPDK. Chosen by the world keys
 * script=vif-dpdk, gatewaydev=KIND:ARG (world.h).
 *
 * DPDK's EAL starts with the first DPDK vif (--no-huge --no-pci --no-shconf, no telemetry: a
 * driver domain has neither hugepages nor NICs of its own to spare, and nothing here needs
 * state shared between processes; EAL leaves an empty /var/run/dpdk/splitxen), and stays up
 * for the life of the process (EAL cannot start twice). The calling thread's CPU affinity,
 * which EAL narrows to its main lcore, is put back. A failed start fails that vif and every
 * later DPDK vif with the same message.
 *
 * Per uplink (a vdev named by the spec: net_af_packet on a Linux interface, net_tap, net_memif),
 * shared by its vifs: one port with one queue pair, an mbuf pool, and an L2 switch. Ports of
 * the switch: the uplink and each vif. A frame from a vif goes to the vif whose MAC is its
 * destination (the vifs' configured MACs, and source MACs learned from vif frames), else out
 * of the uplink; a broadcast or multicast to the uplink and every other vif. A frame from the
 * uplink goes to the vif of its destination MAC, broadcast and multicast to every vif, unknown
 * unicast nowhere (a promiscuous uplink would otherwise show every vif everyone's traffic).
 * The uplink is served by a thread of the switch's own, in bursts of 32: it reads the port and
 * hands frames to the vifs' rings, and sends what the vifs queued for the uplink (their tx
 * ring, multi-producer). It sleeps on an eventfd the vifs kick when they queue frames for it,
 * looking at the port every 50 us, backing off to every 1 ms while it stays quiet (the PMDs
 * here have no rx interrupt).
 *
 * Per vif: a slot on the switch; per netdev queue, a ring of mbufs for it (multi-producer: the
 * switch thread, other vifs) and an eventfd kicked once per burst that queued frames there (its
 * poll fd). A frame from the uplink goes to queue hash(addresses) % queues in use. rx_burst
 * copies frames out of mbufs into the caller's buffers behind a zero virtio-net header;
 * tx_burst copies the caller's frames into mbufs (one bulk allocation), completing partial
 * checksums in software (the guest is offered no GSO: nd->tx_no_gso). Rings are bounded (a
 * full one drops and counts), so a guest that stops taking frames holds at most its rings'
 * worth of the pool.
 */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_bus_vdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "netdev/netdev_impl.h"

#define BURST 32u
#define MAX_VIFS 8u                      /* vifs on one uplink */
#define VIF_RING 1024u                   /* mbufs queued for one vif, all its queues together
                                            (each queue's ring can hold them all) */
#define UPLINK_RING 1024u                /* mbufs the vifs queued for the uplink */
#define PORT_DESC 512u                   /* the port's rx and tx descriptors */
#define POOL_MBUFS (MAX_VIFS * VIF_RING + UPLINK_RING + 2u * PORT_DESC + 1024u - 1u)
#define FDB_SIZE 1024u                   /* learned MACs (power of two) */
#define PORT_UPLINK 0u                   /* switch ports: 0 the uplink, 1 + slot a vif */
#define IDLE_MIN_NS 50000L               /* the switch thread's looks at a quiet port */
#define IDLE_MAX_NS 1000000L

struct dvif;

struct uplink {
    struct uplink *next;
    char spec[SX_WORLD_UPLINK_MAX];      /* gatewaydev as spelled */
    char devname[64];                    /* the vdev: net_af_packet3, ... */
    bool added;                          /* the vdev exists (hotplug_add succeeded) */
    uint16_t port;
    bool have_port, port_started;
    unsigned refs;
    struct rte_mempool *pool;
    struct rte_ring *txr;                /* vifs -> uplink */
    int kickfd;                          /* the switch thread sleeps on it */
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    pthread_rwlock_t lock;               /* vifs[]: readers per burst, writers open/close */
    struct dvif *vifs[MAX_VIFS];
    _Atomic uint64_t fdb[FDB_SIZE];      /* learned MAC (48 bits) << 16 | port; 0 empty */
    _Atomic uint64_t drops;              /* frames no ring had room for */
};

struct dvif {
    struct uplink *up;
    unsigned slot;
    uint8_t mac[6];
    unsigned nq;                          /* queues opened */
    _Atomic unsigned nactive;             /* in use (set_queues) */
    _Atomic unsigned held;                /* mbufs in its rings: at most VIF_RING */
    struct rte_ring *rxr[SX_NETDEV_MAX_QUEUES];
    int evfd[SX_NETDEV_MAX_QUEUES];
};

static pthread_mutex_t uplinks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uplink *uplinks;
static unsigned vdev_seq, ring_seq;
static int eal_state;                     /* 0 not tried, 1 up, -errno failed */
static char eal_why[200];

/* ---------------------------------------------------------------- EAL */

/* Start EAL once. Extra arguments from $SPLITXEN_DPDK_EAL_ARGS (blank-separated). */
static int eal_start(const struct sx_netdev_config *cfg)
{
    if (eal_state == 1)
        return 0;
    if (eal_state < 0)
        return sx_netdev_fail(cfg, eal_state, "script: vif-dpdk: DPDK's EAL did not start: %s",
                              eal_why);
    char *argv[48];
    int argc = 0;
    static char a0[] = "splitxen-netback", a1[] = "--no-huge", a2[] = "-m", a3[] = "256",
                a4[] = "--no-pci", a5[] = "--no-telemetry", a6[] = "--no-shconf",
                a7[] = "--log-level=warning", a8[] = "--file-prefix=splitxen", a9[] = "-l";
    char *base[] = { a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[argc++] = base[i];
    /* the main lcore: the first CPU this thread may run on (EAL pins it there; put back
     * below) */
    cpu_set_t cpus;
    bool had = pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0;
    static char lcore[16];
    int first = 0;
    while (had && first < CPU_SETSIZE - 1 && !CPU_ISSET(first, &cpus))
        first++;
    snprintf(lcore, sizeof(lcore), "%d", first);
    argv[argc++] = lcore;
    char *extra = getenv("SPLITXEN_DPDK_EAL_ARGS") ? strdup(getenv("SPLITXEN_DPDK_EAL_ARGS"))
                                                   : NULL;
    char *save = NULL;
    for (char *t = extra ? strtok_r(extra, " \t", &save) : NULL; t && argc < 47;
         t = strtok_r(NULL, " \t", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    int rc = rte_eal_init(argc, argv);
    int e = rte_errno;
    if (had)
        pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    free(extra);   /* EAL keeps no pointer into argv after init */
    if (rc < 0) {
        snprintf(eal_why, sizeof(eal_why), "%s (SPLITXEN_DPDK_EAL_ARGS '%s')", rte_strerror(e),
                 getenv("SPLITXEN_DPDK_EAL_ARGS") ? getenv("SPLITXEN_DPDK_EAL_ARGS") : "");
        eal_state = e > 0 ? -e : -EIO;
        return sx_netdev_fail(cfg, eal_state, "script: vif-dpdk: DPDK's EAL did not start: %s",
                              eal_why);
    }
    eal_state = 1;
    sx_info("dpdk: EAL started (no hugepages, no PCI)");
    return 0;
}

/* ---------------------------------------------------------------- the switch */

static inline uint64_t mac_key(const uint8_t *m)
{
    return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
           (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

static inline unsigned fdb_hash(uint64_t k)
{
    return (unsigned)((k * 0x9e3779b97f4a7c15ull) >> 54) & (FDB_SIZE - 1);
}

/* The switch port of MAC m: 1 + a vif's slot, or PORT_UPLINK when none is known. Lock-free
 * (entries are single atomic words); the caller holds the read lock, so a port it returns
 * names a vif that exists. */
static unsigned fdb_lookup(struct uplink *u, const uint8_t *m)
{
    uint64_t k = mac_key(m);
    unsigned h = fdb_hash(k);
    for (unsigned i = 0; i < 8; i++) {
        uint64_t e = atomic_load_explicit(&u->fdb[(h + i) & (FDB_SIZE - 1)],
                                          memory_order_relaxed);
        if (!e)
            break;
        if (e >> 16 == k) {
            unsigned port = (unsigned)(e & 0xffff);
            return port > 0 && port <= MAX_VIFS && u->vifs[port - 1] ? port : PORT_UPLINK;
        }
    }
    return PORT_UPLINK;
}

/* Learn (or move) MAC m to port. Multicast sources are not learned. */
static void fdb_learn(struct uplink *u, const uint8_t *m, unsigned port)
{
    if (m[0] & 1)
        return;
    uint64_t k = mac_key(m), want = k << 16 | port;
    unsigned h = fdb_hash(k);
    for (unsigned i = 0; i < 8; i++) {
        _Atomic uint64_t *slot = &u->fdb[(h + i) & (FDB_SIZE - 1)];
        uint64_t e = atomic_load_explicit(slot, memory_order_relaxed);
        if (e == want)
            return;
        if (!e || e >> 16 == k) {
            if (atomic_compare_exchange_strong(slot, &e, want))
                return;
            if (e >> 16 == k)
                return;   /* another thread learned it meanwhile */
        }
    }
    /* the window is full: the oldest-placed entry goes */
    atomic_store(&u->fdb[h], want);
}

static void fdb_forget_port(struct uplink *u, unsigned port)
{
    for (unsigned i = 0; i < FDB_SIZE; i++) {
        uint64_t e = atomic_load(&u->fdb[i]);
        if (e && (e & 0xffff) == port)
            atomic_store(&u->fdb[i], 0);
    }
    /* an emptied entry may break a probe chain: later entries of the chain are looked up
     * again after the next frame from their owner (learning puts them back) */
}

/* The queue of vif v a frame from the uplink goes to: its addresses hashed. */
static unsigned rx_queue_of(const struct dvif *v, const uint8_t *f, uint32_t len)
{
    unsigned n = atomic_load_explicit(&v->nactive, memory_order_relaxed);
    if (n <= 1)
        return 0;
    uint32_t h = 2166136261u;
    uint32_t from = 26, to = 34;   /* IPv4 source and destination */
    if (len >= 14 && f[12] == 0x86 && f[13] == 0xdd) {
        from = 22;                 /* IPv6 source and destination */
        to = 54;
    }
    for (uint32_t i = from; i < to && i < len; i++)
        h = (h ^ f[i]) * 16777619u;
    return h % n;
}

/* Queue mbufs m[0..n) to vif v's queue q, kicking it once; frees what does not fit. */
static void to_vif(struct uplink *u, struct dvif *v, unsigned q, struct rte_mbuf **m, unsigned n)
{
    if (!n)
        return;
    /* the vif's budget first (its queues share it), then the ring */
    unsigned before = atomic_fetch_add_explicit(&v->held, n, memory_order_relaxed);
    unsigned allow = before >= VIF_RING ? 0 : VIF_RING - before < n ? VIF_RING - before : n;
    unsigned k = allow ? rte_ring_enqueue_burst(v->rxr[q], (void **)m, allow, NULL) : 0;
    if (k < n)
        atomic_fetch_sub_explicit(&v->held, n - k, memory_order_relaxed);
    if (k < n) {
        rte_pktmbuf_free_bulk(m + k, n - k);
        atomic_fetch_add_explicit(&u->drops, n - k, memory_order_relaxed);
    }
    if (k) {
        uint64_t one = 1;
        if (write(v->evfd[q], &one, sizeof(one)) < 0) {
            /* the counter is far from full: cannot happen; the consumer polls anyway */
        }
    }
}

static void to_uplink(struct uplink *u, struct rte_mbuf **m, unsigned n)
{
    if (!n)
        return;
    unsigned k = rte_ring_mp_enqueue_burst(u->txr, (void **)m, n, NULL);
    if (k < n) {
        rte_pktmbuf_free_bulk(m + k, n - k);
        atomic_fetch_add_explicit(&u->drops, n - k, memory_order_relaxed);
    }
    if (k) {
        uint64_t one = 1;
        if (write(u->kickfd, &one, sizeof(one)) < 0) {
            /* as above */
        }
    }
}

/* A copy of m for another port (NULL when the pool is dry). */
static struct rte_mbuf *clone_of(struct uplink *u, struct rte_mbuf *m)
{
    return rte_pktmbuf_copy(m, u->pool, 0, UINT32_MAX);
}

/* Frames bound for each switch port, batched: a port's batch goes when it is full, when a frame
 * for another of the port's queues comes, and at the end of the burst. */
struct fwd {
    struct rte_mbuf *out[MAX_VIFS + 1][BURST];
    unsigned n[MAX_VIFS + 1], q[MAX_VIFS + 1];
};

static void fwd_flush(struct uplink *u, struct fwd *fw, unsigned p)
{
    if (!fw->n[p])
        return;
    if (p == PORT_UPLINK)
        to_uplink(u, fw->out[p], fw->n[p]);
    else
        to_vif(u, u->vifs[p - 1], fw->q[p], fw->out[p], fw->n[p]);
    fw->n[p] = 0;
}

/* Frame m (f[0..len)) to port p. */
static void fwd_add(struct uplink *u, struct fwd *fw, unsigned p, struct rte_mbuf *m,
                    const uint8_t *f, uint32_t len)
{
    unsigned q = p == PORT_UPLINK ? 0 : rx_queue_of(u->vifs[p - 1], f, len);
    if (fw->n[p] && (fw->q[p] != q || fw->n[p] == BURST))
        fwd_flush(u, fw, p);
    fw->q[p] = q;
    fw->out[p][fw->n[p]++] = m;
}

/* Frames m[0..n) from switch port `from` (PORT_UPLINK or 1 + a vif's slot): to their ports.
 * Under the read lock. Takes every mbuf. */
static void forward(struct uplink *u, unsigned from, struct rte_mbuf **m, unsigned n)
{
    struct fwd fw;
    memset(fw.n, 0, sizeof(fw.n));
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *f = rte_pktmbuf_mtod(m[i], const uint8_t *);
        uint32_t len = rte_pktmbuf_data_len(m[i]);
        if (len < 14) {
            rte_pktmbuf_free(m[i]);
            continue;
        }
        if (from != PORT_UPLINK)
            fdb_learn(u, f + 6, from);
        if (f[0] & 1) {   /* broadcast, multicast: every port but its own */
            for (unsigned p = 0; p <= MAX_VIFS; p++) {
                if (p == from || (p != PORT_UPLINK && !u->vifs[p - 1]))
                    continue;
                struct rte_mbuf *c = clone_of(u, m[i]);
                if (c)
                    fwd_add(u, &fw, p, c, f, len);
                else
                    atomic_fetch_add_explicit(&u->drops, 1, memory_order_relaxed);
            }
            rte_pktmbuf_free(m[i]);
            continue;
        }
        unsigned p = fdb_lookup(u, f);
        if (p == from)
            rte_pktmbuf_free(m[i]);   /* for its own port, or unknown unicast from the uplink */
        else
            fwd_add(u, &fw, p, m[i], f, len);
    }
    for (unsigned p = 0; p <= MAX_VIFS; p++)
        fwd_flush(u, &fw, p);
}

/* The uplink's thread: its port's rx to the vifs, the vifs' frames to its port's tx. */
static void *uplink_main(void *arg)
{
    struct uplink *u = arg;
    struct rte_mbuf *m[BURST];
    struct rte_mbuf *pend[BURST];
    unsigned npend = 0;
    long idle_ns = IDLE_MIN_NS;
    while (!atomic_load_explicit(&u->stop, memory_order_acquire)) {
        bool work = false;
        uint16_t n = rte_eth_rx_burst(u->port, 0, m, BURST);
        if (n) {
            work = true;
            pthread_rwlock_rdlock(&u->lock);
            forward(u, PORT_UPLINK, m, n);
            pthread_rwlock_unlock(&u->lock);
        }
        if (npend < BURST)
            npend += rte_ring_sc_dequeue_burst(u->txr, (void **)pend + npend, BURST - npend,
                                               NULL);
        if (npend) {
            uint16_t k = rte_eth_tx_burst(u->port, 0, pend, (uint16_t)npend);
            if (k) {
                work = true;
                memmove(pend, pend + k, (npend - k) * sizeof(pend[0]));
                npend -= k;
            }
        }
        if (work) {
            idle_ns = IDLE_MIN_NS;
            continue;
        }
        if (npend) {   /* the port is full: drop what waits rather than spin on it */
            rte_pktmbuf_free_bulk(pend, npend);
            atomic_fetch_add_explicit(&u->drops, npend, memory_order_relaxed);
            npend = 0;
        }
        /* idle: wait for the vifs' kick or a while, then look at the port again; the while
         * doubles from 50 us up to 1 ms as the port stays quiet (an idle uplink costs ~1000
         * wakeups a second, a frame after a quiet spell up to 1 ms) */
        struct pollfd pf = { .fd = u->kickfd, .events = POLLIN };
        struct timespec ts = { 0, idle_ns };
        idle_ns = idle_ns * 2 > IDLE_MAX_NS ? IDLE_MAX_NS : idle_ns * 2;
        if (ppoll(&pf, 1, &ts, NULL) > 0) {
            uint64_t junk;
            if (read(u->kickfd, &junk, sizeof(junk)) < 0) {
                /* EAGAIN: another wake took it */
            }
        }
    }
    if (npend)
        rte_pktmbuf_free_bulk(pend, npend);
    return NULL;
}

/* ---------------------------------------------------------------- uplinks */

static void uplink_put(struct uplink *u)
{
    if (!u || --u->refs)
        return;
    for (struct uplink **pp = &uplinks; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    if (u->port_started) {
        struct rte_eth_stats st;
        if (rte_eth_stats_get(u->port, &st) == 0)
            sx_info("dpdk: %s: port in %" PRIu64 " out %" PRIu64 " missed %" PRIu64
                    " errors %" PRIu64 "/%" PRIu64 ", switch drops %" PRIu64, u->spec,
                    st.ipackets, st.opackets, st.imissed, st.ierrors, st.oerrors,
                    (uint64_t)atomic_load(&u->drops));
    }
    if (u->thr_started) {
        atomic_store(&u->stop, true);
        uint64_t one = 1;
        if (write(u->kickfd, &one, sizeof(one)) < 0) {
            /* the thread wakes within 50 us anyway */
        }
        pthread_join(u->thr, NULL);
    }
    if (u->port_started)
        rte_eth_dev_stop(u->port);
    if (u->have_port)
        rte_eth_dev_close(u->port);
    if (u->added)
        rte_eal_hotplug_remove("vdev", u->devname);
    if (u->txr) {
        void *mb;
        while (rte_ring_dequeue(u->txr, &mb) == 0)
            rte_pktmbuf_free(mb);
        rte_ring_free(u->txr);
    }
    rte_mempool_free(u->pool);
    if (u->kickfd >= 0)
        close(u->kickfd);
    pthread_rwlock_destroy(&u->lock);
    free(u);
}

/* A memif socket a killed backend left (nobody accepts on it): remove it, so the new port can
 * listen there. A socket someone serves stays (the port then fails, saying so). */
static void unlink_stale_socket(const char *path)
{
    struct stat st;
    if (stat(path, &st) || !S_ISSOCK(st.st_mode))
        return;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED) {
        unlink(path);
        sx_info("dpdk: removed the stale memif socket %s", path);
    }
    close(fd);
}

static int uplink_get(const struct sx_netdev_config *cfg, const struct sx_world *w,
                      struct uplink **out)
{
    for (struct uplink *u = uplinks; u; u = u->next)
        if (!strcmp(u->spec, w->uplink)) {
            u->refs++;
            *out = u;
            return 0;
        }
    struct uplink *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    pthread_rwlock_init(&u->lock, NULL);
    u->refs = 1;
    u->kickfd = -1;
    snprintf(u->spec, sizeof(u->spec), "%s", w->uplink);
    u->next = uplinks;
    uplinks = u;
    const char *arg = strchr(w->uplink, ':') + 1;
    unsigned id = vdev_seq++;
    char args[160];
    switch (w->dpdk_kind) {
    case SX_DPDK_AF_PACKET:
        snprintf(u->devname, sizeof(u->devname), "net_af_packet%u", id);
        /* the kernel's ring: 2048 frames (the PMD's default 512 overflowed while the switch
         * thread waited for a CPU) */
        snprintf(args, sizeof(args), "iface=%s,framecnt=2048", arg);
        break;
    case SX_DPDK_TAP:
        snprintf(u->devname, sizeof(u->devname), "net_tap%u", id);
        snprintf(args, sizeof(args), "iface=%s", arg);
        break;
    case SX_DPDK_MEMIF:
    default:
        snprintf(u->devname, sizeof(u->devname), "net_memif%u", id);
        snprintf(args, sizeof(args), "role=server,socket=%s,socket-abstract=no", arg);
        break;
    }
    if (w->dpdk_kind != SX_DPDK_MEMIF && !if_nametoindex(arg) && w->dpdk_kind != SX_DPDK_TAP) {
        uplink_put(u);
        return sx_netdev_fail(cfg, -ENODEV, "gatewaydev: '%s': no such interface", w->uplink);
    }
    if (w->dpdk_kind == SX_DPDK_MEMIF)
        unlink_stale_socket(arg);
    int rc = rte_eal_hotplug_add("vdev", u->devname, args);
    if (rc < 0) {
        int e = rc == -1 && rte_errno > 0 ? rte_errno : -rc;
        sx_netdev_fail(cfg, rc, "gatewaydev: '%s': DPDK cannot make the port %s,%s: %s", w->uplink,
                       u->devname, args, rte_strerror(e));
        uplink_put(u);
        return rc;
    }
    u->added = true;
    if ((rc = rte_eth_dev_get_port_by_name(u->devname, &u->port)) < 0) {
        uplink_put(u);
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': no DPDK port after hotplug", w->uplink);
    }
    u->have_port = true;
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof(name), "sxdpdk%u", id);
    u->pool = rte_pktmbuf_pool_create(name, POOL_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      SOCKET_ID_ANY);
    snprintf(name, sizeof(name), "sxdpdk%u_tx", id);
    u->txr = rte_ring_create(name, UPLINK_RING, SOCKET_ID_ANY, RING_F_SC_DEQ);
    u->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!u->pool || !u->txr || u->kickfd < 0) {
        rc = -ENOMEM;
        uplink_put(u);
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': DPDK memory: %s", w->uplink,
                              rte_strerror(rte_errno));
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if ((rc = rte_eth_dev_configure(u->port, 1, 1, &conf)) < 0 ||
        (rc = rte_eth_rx_queue_setup(u->port, 0, PORT_DESC, SOCKET_ID_ANY, NULL, u->pool)) < 0 ||
        (rc = rte_eth_tx_queue_setup(u->port, 0, PORT_DESC, SOCKET_ID_ANY, NULL)) < 0 ||
        (rc = rte_eth_dev_start(u->port)) < 0) {
        uplink_put(u);
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': starting the DPDK port: %s", w->uplink,
                              rte_strerror(-rc));
    }
    u->port_started = true;
    rte_eth_promiscuous_enable(u->port);   /* the vifs' MACs are not the port's */
    if ((rc = -pthread_create(&u->thr, NULL, uplink_main, u)) < 0) {
        uplink_put(u);
        return sx_netdev_fail(cfg, rc, "gatewaydev: '%s': switch thread: %s", w->uplink,
                              strerror(-rc));
    }
    u->thr_started = true;
    pthread_setname_np(u->thr, "sxdpdk-switch");
    sx_info("dpdk: %s: port %u (%s %s) switching", w->uplink, u->port, u->devname, args);
    *out = u;
    return 0;
}

/* ---------------------------------------------------------------- the netdev ops */

static void dpdk_close(struct sx_netdev *nd)
{
    struct dvif *v = nd->priv;
    if (!v)
        return;
    pthread_mutex_lock(&uplinks_lock);
    struct uplink *u = v->up;
    if (u) {
        pthread_rwlock_wrlock(&u->lock);
        if (u->vifs[v->slot] == v) {
            u->vifs[v->slot] = NULL;
            fdb_forget_port(u, 1 + v->slot);
        }
        pthread_rwlock_unlock(&u->lock);
    }
    for (unsigned q = 0; q < v->nq; q++) {
        if (v->rxr[q]) {
            void *mb;
            while (rte_ring_dequeue(v->rxr[q], &mb) == 0)
                rte_pktmbuf_free(mb);
            rte_ring_free(v->rxr[q]);
        }
        if (v->evfd[q] >= 0)
            close(v->evfd[q]);
    }
    uplink_put(u);
    pthread_mutex_unlock(&uplinks_lock);
    free(v);
    nd->priv = NULL;
}

static int dpdk_open(struct sx_netdev *nd, const struct sx_netdev_config *cfg)
{
    const struct sx_world *w = cfg->world;
    if (!w || w->mode != SX_WORLD_DPDK)
        return sx_netdev_fail(cfg, -EINVAL, "script: the dpdk world side needs script=vif-dpdk");
    if (!w->has_guest_mac || (w->guest_mac[0] & 1))
        return sx_netdev_fail(cfg, -EINVAL, "mac: vif-dpdk needs the guest's unicast MAC");
    struct dvif *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (unsigned q = 0; q < SX_NETDEV_MAX_QUEUES; q++)
        v->evfd[q] = -1;
    memcpy(v->mac, w->guest_mac, 6);
    nd->priv = v;
    nd->tx_no_gso = true;
    pthread_mutex_lock(&uplinks_lock);
    int rc = eal_start(cfg);
    if (rc < 0)
        goto fail;
    if ((rc = uplink_get(cfg, w, &v->up)) < 0) {
        v->up = NULL;
        goto fail;
    }
    struct uplink *u = v->up;
    unsigned s = 0;
    while (s < MAX_VIFS && u->vifs[s])
        s++;
    if (s == MAX_VIFS) {
        rc = sx_netdev_fail(cfg, -ENOSPC, "gatewaydev: '%s': already switches %u vifs", w->uplink,
                            MAX_VIFS);
        goto fail;
    }
    v->slot = s;
    const unsigned size = VIF_RING;   /* rte_ring holds size - 1: the budget ends first */
    for (v->nq = 0; v->nq < cfg->nqueues; v->nq++) {
        char name[RTE_RING_NAMESIZE];
        snprintf(name, sizeof(name), "sxdv%u", ring_seq++);
        v->rxr[v->nq] = rte_ring_create(name, size, SOCKET_ID_ANY, RING_F_SC_DEQ);
        v->evfd[v->nq] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!v->rxr[v->nq] || v->evfd[v->nq] < 0) {
            v->nq++;
            rc = sx_netdev_fail(cfg, -ENOMEM, "dpdk: rings for %s: out of memory", cfg->name);
            goto fail;
        }
    }
    atomic_store(&v->nactive, v->nq);
    pthread_rwlock_wrlock(&u->lock);
    unsigned port = fdb_lookup(u, v->mac);
    if (port != PORT_UPLINK) {
        pthread_rwlock_unlock(&u->lock);
        rc = sx_netdev_fail(cfg, -EEXIST,
                            "mac: %02x:%02x:%02x:%02x:%02x:%02x: another vif on this switch "
                            "has it",
                            v->mac[0], v->mac[1], v->mac[2], v->mac[3], v->mac[4], v->mac[5]);
        goto fail;
    }
    u->vifs[s] = v;
    fdb_learn(u, v->mac, 1 + s);
    pthread_rwlock_unlock(&u->lock);
    pthread_mutex_unlock(&uplinks_lock);
    return 0;
fail:
    pthread_mutex_unlock(&uplinks_lock);
    dpdk_close(nd);
    return rc;
}

static int dpdk_set_queues(struct sx_netdev *nd, unsigned n)
{
    struct dvif *v = nd->priv;
    if (!n || n > v->nq)
        return -EINVAL;
    atomic_store(&v->nactive, n);
    return 0;
}

static int dpdk_poll_fd(struct sx_netdev *nd, unsigned q)
{
    struct dvif *v = nd->priv;
    return q < v->nq ? v->evfd[q] : -EINVAL;
}

static int dpdk_tx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n)
{
    struct dvif *v = nd->priv;
    struct uplink *u = v->up;
    int sent = 0;
    while (n) {
        unsigned m = n < BURST ? n : BURST, k = 0;
        struct rte_mbuf *mb[BURST];
        if (rte_pktmbuf_alloc_bulk(u->pool, mb, m) != 0) {
            for (unsigned i = 0; i < m; i++)
                b[i].len = 0;   /* the pool is dry: lost as on a wire */
            atomic_fetch_add_explicit(&u->drops, m, memory_order_relaxed);
            b += m;
            n -= m;
            continue;
        }
        for (unsigned i = 0; i < m; i++) {
            int len = sx_net_frame_plain(b[i].data, b[i].len, rte_pktmbuf_mtod(mb[k], uint8_t *),
                                         rte_pktmbuf_tailroom(mb[k]));
            if (len < 0) {
                b[i].len = 0;   /* GSO, runt, oversize or a bad checksum offset */
                continue;
            }
            rte_pktmbuf_append(mb[k++], (uint16_t)len);
            sent++;
        }
        if (k < m)
            rte_pktmbuf_free_bulk(mb + k, m - k);
        if (k) {
            pthread_rwlock_rdlock(&u->lock);
            forward(u, 1 + v->slot, mb, k);
            pthread_rwlock_unlock(&u->lock);
        }
        b += m;
        n -= m;
    }
    return sent;
}

static int dpdk_rx_burst(struct sx_netdev *nd, unsigned q, struct sx_netdev_buf *b, unsigned n,
                         uint32_t cap)
{
    struct dvif *v = nd->priv;
    if (q >= v->nq)
        return -EINVAL;
    struct rte_mbuf *mb[BURST];
    unsigned got = 0;
    bool cleared = false;
    while (got < n) {
        unsigned want = n - got < BURST ? n - got : BURST;
        unsigned k = rte_ring_sc_dequeue_burst(v->rxr[q], (void **)mb, want, NULL);
        if (!k && !cleared) {
            /* ran empty: take the kick, then look once more (a frame queued before the kick
             * was taken shows now; one queued after it kicks again) */
            uint64_t junk;
            if (read(v->evfd[q], &junk, sizeof(junk)) < 0) {
                /* EAGAIN: no kick pending */
            }
            cleared = true;
            continue;
        }
        for (unsigned i = 0; i < k; i++) {
            uint32_t len = rte_pktmbuf_pkt_len(mb[i]);
            if (len + SX_NETDEV_HDR_LEN <= cap && rte_pktmbuf_is_contiguous(mb[i])) {
                memset(b[got].data, 0, SX_NETDEV_HDR_LEN);
                memcpy(b[got].data + SX_NETDEV_HDR_LEN, rte_pktmbuf_mtod(mb[i], void *), len);
                b[got++].len = SX_NETDEV_HDR_LEN + len;
            }
        }
        if (k) {
            rte_pktmbuf_free_bulk(mb, k);
            atomic_fetch_sub_explicit(&v->held, k, memory_order_relaxed);
        }
        if (!k)
            break;
    }
    return (int)got;
}

const struct sx_netdev_ops sx_netdev_dpdk_impl = {
    .kind = "dpdk",
    .open = dpdk_open,
    .close = dpdk_close,
    .set_queues = dpdk_set_queues,
    .poll_fd = dpdk_poll_fd,
    .tx_burst = dpdk_tx_burst,
    .rx_burst = dpdk_rx_burst,
};
