/*
 * splitxen-bench-ring: what a shared ring plus event channel costs between two processes, next
 * to the two bounds that frame it, in one run:
 *
 *   a  eventfd ping-pong          two eventfds, blocking reads (the cost of a sleeping wakeup)
 *   b  spin ping-pong             one cache line, acquire/release (the cost of a cache transfer)
 *   c  ring round trip, blocking  1 blkif request, 1 response; idle side: final check, sleep
 *   d  ring round trip, adaptive  same, spinning on the ring up to the budget before sleeping
 *   e  ring batch, blocking       32 requests in flight, one push/notify per batch
 *   f  ring batch, adaptive
 *
 * c-f notify through the sim platform's event channels (evtchn/, splitxen-core started in this
 * process, the two children acting as dom0 and a guest), or through a raw eventfd pair with
 * --notify eventfd. The ring is a 4-page blkif ring in a shared
 * memfd. The frontend (guest) and backend (dom0) children are pinned to different CPUs unless
 * --same-core.
 */
#define SX_LOG_MODULE "bench-ring"
#include "ring/ring.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xen/io/blkif.h>

#include "clock.h"
#include "log.h"

#include "evtchn/evtchn.h"
#include "xen-core/core.h"
#include "platform/platform.h"

SX_RING_CHECK_TYPES(blkif_request_t, blkif_response_t);

#define RING_ORDER 2
#define BATCH 32
#define WAIT_MS 200

enum notify_mode { NOTIFY_EVENTFD, NOTIFY_EVTCHN };

/* Shared by the parent and both children (MAP_SHARED anonymous). */
struct ctl {
    _Atomic uint32_t front_ready, back_ready, stop;
    uint32_t port;                 /* the guest's unbound port, for the backend to bind */
    int front_err, back_err;
    uint64_t ops, ns;              /* measured by the frontend */
    uint64_t f_notifies, f_sleeps, b_notifies, b_sleeps, b_reqs;
    _Alignas(64) _Atomic uint64_t ping;   /* b: ping and pong share one cache line */
    _Atomic uint64_t pong;
    _Alignas(64) char pad[64];
};

struct opts {
    double secs;
    bool same_core;
    enum notify_mode mode;
    uint64_t spin_ns;
    const char *json;
    const char *cases;
    int cpu_front, cpu_back;
};

struct env {
    struct opts o;
    struct ctl *ctl;
    void *ring;
    int efd_f2b, efd_b2f;          /* raw eventfd notification for c-f (nonblocking) */
    int pp_f2b, pp_b2f;            /* a: blocking eventfds */
    char run_dir[64];
    char sock[128];
    struct sxc_server *srv;
    struct sxc_conn *conn;
    int guest;
};

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof(s), &s) < 0)
        sx_warn("cannot pin to cpu %d: %s", cpu, strerror(errno));
}

static void wait_flag(_Atomic uint32_t *f, struct ctl *c)
{
    uint64_t t0 = sx_now_ns();
    while (!atomic_load_explicit(f, memory_order_acquire)) {
        if (c->front_err || c->back_err || sx_now_ns() - t0 > 10000000000ull)
            _exit(90);
        usleep(50);
    }
}

/* ---------------------------------------------------------------- notification */

struct notif {
    enum notify_mode mode;
    int in_fd, out_fd;
    uint64_t sleeps, kicks;
    struct sx_plat *plat;
    struct sx_evtchn *e;
    evtchn_port_t port;
};

static int notif_kick(struct notif *n)
{
    n->kicks++;
    if (n->mode == NOTIFY_EVTCHN)
        return sx_evtchn_notify(n->e, n->port);
    uint64_t one = 1;
    return write(n->out_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

/* Sleep until kicked (or WAIT_MS, so a stop flag is always seen). `sleeps` counts poll calls. */
static int notif_wait(struct notif *n)
{
    if (n->mode == NOTIFY_EVTCHN) {
        /* An event already pending (it arrived while we were spinning or in the final check):
         * take it and go back to the ring without sleeping. The sim fd stays readable after
         * an event is claimed, so polling first would return at once, for nothing. */
        int port = sx_evtchn_pending(n->e);
        if (port >= 0)
            return sx_evtchn_unmask(n->e, (evtchn_port_t)port);
        if (port != -EAGAIN)
            return port;
    }
    n->sleeps++;
    struct pollfd pfd = { .fd = n->in_fd, .events = POLLIN };
    int rc = poll(&pfd, 1, WAIT_MS);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (rc == 0)
        return 0;
    if (n->mode == NOTIFY_EVTCHN) {
        int port = sx_evtchn_pending(n->e);
        if (port >= 0)
            return sx_evtchn_unmask(n->e, (evtchn_port_t)port);
        return port == -EAGAIN ? 0 : port;
    }
    uint64_t v;
    if (read(n->in_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

static void notif_close(struct notif *n)
{
    sx_evtchn_close(n->e);
    n->e = NULL;
    sx_plat_close(n->plat);
    n->plat = NULL;
}

/* Frontend (guest) side: allocate the port the backend binds to, then initialise the ring. */
static int front_setup(struct env *v, struct notif *n, struct sx_front_ring *f)
{
    memset(n, 0, sizeof(*n));
    n->mode = v->o.mode;
    n->in_fd = v->efd_b2f;
    n->out_fd = v->efd_f2b;
    if (n->mode == NOTIFY_EVTCHN) {
        int rc = sx_plat_open(&n->plat, SX_PLAT_SIM, (domid_t)v->guest, v->sock);
        if (rc == 0)
            rc = sx_evtchn_open(&n->e, n->plat);
        if (rc == 0)
            rc = sx_evtchn_bind_unbound(n->e, 0);
        if (rc < 0)
            return rc;
        n->port = (evtchn_port_t)rc;
        n->in_fd = sx_evtchn_fd(n->e);
        v->ctl->port = n->port;
    }
    int rc = sx_front_ring_init(f, v->ring, sx_ring_bytes(RING_ORDER), sizeof(blkif_request_t),
                                sizeof(blkif_response_t));
    if (rc < 0)
        return rc;
    atomic_store_explicit(&v->ctl->front_ready, 1, memory_order_release);
    wait_flag(&v->ctl->back_ready, v->ctl);
    return 0;
}

/* Backend (dom0) side: bind to the guest's port, attach to the ring it initialised. */
static int back_setup(struct env *v, struct notif *n, struct sx_back_ring *b)
{
    memset(n, 0, sizeof(*n));
    n->mode = v->o.mode;
    n->in_fd = v->efd_f2b;
    n->out_fd = v->efd_b2f;
    wait_flag(&v->ctl->front_ready, v->ctl);
    if (n->mode == NOTIFY_EVTCHN) {
        int rc = sx_plat_open(&n->plat, SX_PLAT_SIM, 0, v->sock);
        if (rc == 0)
            rc = sx_evtchn_open(&n->e, n->plat);
        if (rc == 0)
            rc = sx_evtchn_bind_interdomain(n->e, (domid_t)v->guest, v->ctl->port);
        if (rc < 0)
            return rc;
        n->port = (evtchn_port_t)rc;
        n->in_fd = sx_evtchn_fd(n->e);
    }
    int rc = sx_back_ring_attach(b, v->ring, sx_ring_bytes(RING_ORDER), sizeof(blkif_request_t),
                                 sizeof(blkif_response_t));
    if (rc < 0)
        return rc;
    atomic_store_explicit(&v->ctl->back_ready, 1, memory_order_release);
    return 0;
}

/* ---------------------------------------------------------------- a, b */

static void case_a_front(struct env *v)
{
    atomic_store(&v->ctl->front_ready, 1);
    wait_flag(&v->ctl->back_ready, v->ctl);
    uint64_t one = 1, val, ops = 0;
    uint64_t t0 = sx_now_ns(), end = t0 + (uint64_t)(v->o.secs * 1e9), t = t0;
    do {
        if (write(v->pp_f2b, &one, 8) != 8 || read(v->pp_b2f, &val, 8) != 8) {
            v->ctl->front_err = -errno;
            break;
        }
        ops++;
    } while ((t = sx_now_ns()) < end);
    v->ctl->ops = ops;
    v->ctl->ns = t - t0;
    atomic_store(&v->ctl->stop, 1);
    ssize_t w = write(v->pp_f2b, &one, 8);
    (void)w;
}

static void case_a_back(struct env *v)
{
    atomic_store(&v->ctl->back_ready, 1);
    uint64_t one = 1, val;
    for (;;) {
        if (read(v->pp_f2b, &val, 8) != 8) {
            v->ctl->back_err = -errno;
            return;
        }
        if (atomic_load(&v->ctl->stop))
            return;
        if (write(v->pp_b2f, &one, 8) != 8) {
            v->ctl->back_err = -errno;
            return;
        }
    }
}

static void case_b_front(struct env *v)
{
    struct ctl *c = v->ctl;
    atomic_store(&c->front_ready, 1);
    wait_flag(&c->back_ready, c);
    uint64_t ops = 0, t0 = sx_now_ns(), end = t0 + (uint64_t)(v->o.secs * 1e9), t = t0;
    for (uint64_t i = 1;; i++) {
        atomic_store_explicit(&c->ping, i, memory_order_release);   /* publish ping i */
        while (atomic_load_explicit(&c->pong, memory_order_acquire) != i)   /* wait for echo */
            sx_cpu_relax();
        ops++;
        if ((i & 255) == 0 && (t = sx_now_ns()) >= end)
            break;
    }
    c->ops = ops;
    c->ns = t - t0;
    atomic_store(&c->stop, 1);
}

static void case_b_back(struct env *v)
{
    struct ctl *c = v->ctl;
    atomic_store(&c->back_ready, 1);
    uint64_t last = 0;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        uint64_t p = atomic_load_explicit(&c->ping, memory_order_acquire);
        if (p != last) {
            atomic_store_explicit(&c->pong, p, memory_order_release);
            last = p;
        } else {
            sx_cpu_relax();
        }
    }
}

/* ---------------------------------------------------------------- c-f: the ring */

struct back_pred {
    struct sx_back_ring *b;
    struct ctl *c;
};

static bool back_pred(void *arg)
{
    struct back_pred *p = arg;
    return sx_back_ring_has_requests(p->b) ||
           atomic_load_explicit(&p->c->stop, memory_order_relaxed);
}

/* The backend of c-f: take a batch, answer all of it, push once, notify if asked; when idle
 * spin up to the budget, then final check, then sleep on the event channel. */
static void ring_back(struct env *v, uint64_t spin_ns)
{
    struct notif n;
    struct sx_back_ring b;
    int rc = back_setup(v, &n, &b);
    if (rc < 0) {
        v->ctl->back_err = rc;
        return;
    }
    struct back_pred bp = { &b, v->ctl };
    blkif_request_t q[BATCH];
    while (!atomic_load_explicit(&v->ctl->stop, memory_order_relaxed)) {
        int k = sx_back_ring_take(&b, q, BATCH);
        if (k < 0) {
            rc = k;
            break;
        }
        if (k > 0) {
            for (int i = 0; i < k; i++) {
                blkif_response_t r = { .id = q[i].id, .operation = q[i].operation,
                                       .status = BLKIF_RSP_OKAY };
                sx_back_ring_put_rsp(&b, &r);
            }
            if (sx_back_ring_push(&b) && (rc = notif_kick(&n)) < 0)
                break;
            continue;
        }
        if (spin_ns && sx_idle_spin_budget(back_pred, &bp, spin_ns))
            continue;
        if (sx_back_ring_final_check(&b))
            continue;
        if ((rc = notif_wait(&n)) < 0)
            break;
    }
    v->ctl->back_err = rc < 0 ? rc : 0;
    v->ctl->b_notifies = b.stats.notifies;
    v->ctl->b_sleeps = n.sleeps;
    v->ctl->b_reqs = b.stats.reqs;
    notif_close(&n);
}

/* Wait until at least one response is there (spin, final check, sleep). */
static int front_wait_rsp(struct sx_front_ring *f, struct notif *n, uint64_t spin_ns)
{
    for (;;) {
        if (sx_front_ring_has_responses(f))
            return 0;
        if (spin_ns && sx_idle_spin_budget(sx_front_ring_pred, f, spin_ns))
            return 0;
        int rc = sx_front_ring_final_check(f);
        if (rc)
            return rc < 0 ? rc : 0;
        if ((rc = notif_wait(n)) < 0)
            return rc;
    }
}

/* The frontend of c-f: keep `depth` requests in flight (1: round trips) for the duration. */
static void ring_front(struct env *v, unsigned depth, uint64_t spin_ns)
{
    struct ctl *c = v->ctl;
    struct notif n;
    struct sx_front_ring f;
    int rc = front_setup(v, &n, &f);
    if (rc < 0) {
        c->front_err = rc;
        return;
    }
    blkif_response_t rsp[BATCH];
    uint64_t sent = 0, done = 0, t0 = sx_now_ns(), end = t0 + (uint64_t)(v->o.secs * 1e9), t = t0;
    bool timeup = false;
    while (!timeup || done < sent) {
        unsigned put = 0;
        while (!timeup && sent - done < depth) {
            blkif_request_t q = { .operation = BLKIF_OP_READ, .nr_segments = 1, .id = sent };
            q.sector_number = sent * 8;
            if ((rc = sx_front_ring_put_req(&f, &q)) < 0)
                goto out;
            sent++;
            put++;
        }
        if (put && sx_front_ring_push(&f) && (rc = notif_kick(&n)) < 0)
            goto out;
        if ((rc = front_wait_rsp(&f, &n, spin_ns)) < 0)
            goto out;
        int k = sx_front_ring_take_rsp(&f, rsp, BATCH);
        if (k < 0) {
            rc = k;
            goto out;
        }
        for (int i = 0; i < k; i++, done++)
            if (rsp[i].id != done) {
                rc = -EPROTO;
                goto out;
            }
        if (!timeup && (t = sx_now_ns()) >= end)
            timeup = true;
    }
    rc = 0;
out:
    c->front_err = rc;
    c->ops = done;
    c->ns = t - t0;
    c->f_notifies = f.stats.notifies;
    c->f_sleeps = n.sleeps;
    atomic_store(&c->stop, 1);
    notif_kick(&n);   /* wake the backend so it sees stop */
    notif_close(&n);
}

/* ---------------------------------------------------------------- driver */

struct bcase {
    char id;
    const char *name;
    const char *unit;
    double rate, us;
    uint64_t ops, f_notifies, f_sleeps, b_notifies, b_sleeps;
    bool ran;
};

static struct bcase cases[] = {
    { 'a', "eventfd ping-pong", "round trips/s" },
    { 'b', "spin ping-pong (1 cache line)", "round trips/s" },
    { 'c', "ring round trip, blocking", "round trips/s" },
    { 'd', "ring round trip, adaptive", "round trips/s" },
    { 'e', "ring 32 in flight, blocking", "requests/s" },
    { 'f', "ring 32 in flight, adaptive", "requests/s" },
};

static void run_role(struct env *v, char id, bool front)
{
    pin(front ? v->o.cpu_front : v->o.cpu_back);
    alarm((unsigned)v->o.secs + 30);   /* a hung case ends; the parent reports it */
    switch (id) {
    case 'a': front ? case_a_front(v) : case_a_back(v); break;
    case 'b': front ? case_b_front(v) : case_b_back(v); break;
    case 'c': front ? ring_front(v, 1, 0) : ring_back(v, 0); break;
    case 'd': front ? ring_front(v, 1, v->o.spin_ns) : ring_back(v, v->o.spin_ns); break;
    case 'e': front ? ring_front(v, BATCH, 0) : ring_back(v, 0); break;
    case 'f': front ? ring_front(v, BATCH, v->o.spin_ns) : ring_back(v, v->o.spin_ns); break;
    }
}

static void drain(int fd)
{
    uint64_t x;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (poll(&p, 1, 0) == 1 && read(fd, &x, 8) == 8)
        ;
}

static int run_case(struct env *v, struct bcase *bc)
{
    struct ctl *c = v->ctl;
    memset(c, 0, sizeof(*c));
    drain(v->efd_f2b);
    drain(v->efd_b2f);
    drain(v->pp_f2b);
    drain(v->pp_b2f);
    fflush(NULL);
    pid_t pb = fork();
    if (pb < 0)
        return -errno;
    if (pb == 0) {
        run_role(v, bc->id, false);
        _exit(c->back_err ? 1 : 0);
    }
    pid_t pf = fork();
    if (pf < 0) {
        kill(pb, SIGKILL);
        waitpid(pb, NULL, 0);
        return -errno;
    }
    if (pf == 0) {
        run_role(v, bc->id, true);
        _exit(c->front_err ? 1 : 0);
    }
    int sf = 0, sb = 0;
    waitpid(pf, &sf, 0);
    if (!WIFEXITED(sf))
        kill(pb, SIGKILL);
    waitpid(pb, &sb, 0);
    if (!WIFEXITED(sf) || WEXITSTATUS(sf) || !WIFEXITED(sb) || WEXITSTATUS(sb) || !c->ns) {
        fprintf(stderr, "case %c failed: front status %#x err %d, back status %#x err %d\n",
                bc->id, sf, c->front_err, sb, c->back_err);
        return -EIO;
    }
    bc->ops = c->ops;
    bc->rate = c->ops / (c->ns / 1e9);
    bc->us = c->ns / 1e3 / (double)c->ops;
    bc->f_notifies = c->f_notifies;
    bc->f_sleeps = c->f_sleeps;
    bc->b_notifies = c->b_notifies;
    bc->b_sleeps = c->b_sleeps;
    bc->ran = true;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static int sim_start(struct env *v)
{
    snprintf(v->run_dir, sizeof(v->run_dir), "/tmp/sx-bench-ring-%d", (int)getpid());
    struct sxc_server_opts so = { .run_dir = v->run_dir, .dom0_mem_mb = 16 };
    int rc = sxc_server_open(&v->srv, &so);
    if (rc < 0)
        return rc;
    rc = sxc_socket_path(v->sock, sizeof(v->sock), v->run_dir);
    if (rc < 0)
        return rc;
    rc = sxc_connect(&v->conn, v->sock, 0);
    if (rc < 0)
        return rc;
    char name[64];
    snprintf(name, sizeof(name), "bench-ring-%d", (int)getpid());
    rc = sxc_domain_create(v->conn, name, SXD_TYPE_PV, 16, 1, false);
    if (rc < 0)
        return rc;
    v->guest = rc;
    return 0;
}

static void sim_stop(struct env *v)
{
    if (v->conn && v->guest > 0)
        sxc_domain_destroy(v->conn, (domid_t)v->guest);
    sxc_disconnect(v->conn);
    v->conn = NULL;
    sxc_server_close(v->srv);
    v->srv = NULL;
    if (v->run_dir[0])
        nftw(v->run_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: splitxen-bench-ring [-t SECONDS_PER_CASE] [--same-core] [--notify evtchn|eventfd]\n"
            "                           [--spin-ns NS] [--cases abcdef] [--json FILE]\n");
}

static void write_json(struct env *v, FILE *f, const struct bcase *a, const struct bcase *b)
{
    char ts[32];
    time_t now = time(NULL);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "{\n  \"bench\": \"ring\",\n  \"timestamp\": \"%s\",\n", ts);
    fprintf(f, "  \"cpus_online\": %ld,\n  \"same_core\": %s,\n  \"cpu_front\": %d,\n"
               "  \"cpu_back\": %d,\n", sysconf(_SC_NPROCESSORS_ONLN),
            v->o.same_core ? "true" : "false", v->o.cpu_front, v->o.cpu_back);
    fprintf(f, "  \"notify\": \"%s\",\n  \"spin_ns\": %llu,\n  \"seconds_per_case\": %.2f,\n",
            v->o.mode == NOTIFY_EVTCHN ? "sim-evtchn" : "eventfd",
            (unsigned long long)v->o.spin_ns, v->o.secs);
    fprintf(f, "  \"ring_pages\": %u,\n  \"batch\": %u,\n  \"cases\": [", 1u << RING_ORDER, BATCH);
    bool first = true;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bcase *x = &cases[i];
        if (!x->ran)
            continue;
        fprintf(f, "%s\n    {\"id\": \"%c\", \"name\": \"%s\", \"unit\": \"%s\", \"rate\": %.1f, "
                   "\"us_per_op\": %.4f, \"ops\": %llu",
                first ? "" : ",", x->id, x->name, x->unit, x->rate, x->us,
                (unsigned long long)x->ops);
        if (a->ran)
            fprintf(f, ", \"vs_eventfd_pingpong\": %.4f", x->rate / a->rate);
        if (b->ran)
            fprintf(f, ", \"vs_spin_pingpong\": %.4f", x->rate / b->rate);
        if (x->id >= 'c')
            fprintf(f, ", \"front_notifies\": %llu, \"front_sleeps\": %llu, "
                       "\"back_notifies\": %llu, \"back_sleeps\": %llu",
                    (unsigned long long)x->f_notifies, (unsigned long long)x->f_sleeps,
                    (unsigned long long)x->b_notifies, (unsigned long long)x->b_sleeps);
        fprintf(f, "}");
        first = false;
    }
    fprintf(f, "\n  ]\n}\n");
}

int main(int argc, char **argv)
{
    struct env v = { .o = { .secs = 1.5, .cases = "abcdef", .spin_ns = sx_ring_spin_ns() },
                     .efd_f2b = -1, .efd_b2f = -1, .pp_f2b = -1, .pp_b2f = -1 };
    v.o.mode = NOTIFY_EVTCHN;
    static const struct option lo[] = {
        { "seconds", required_argument, 0, 't' }, { "same-core", no_argument, 0, 's' },
        { "notify", required_argument, 0, 'n' }, { "spin-ns", required_argument, 0, 'p' },
        { "cases", required_argument, 0, 'c' }, { "json", required_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int opt;
    while ((opt = getopt_long(argc, argv, "t:sn:p:c:j:h", lo, NULL)) != -1) {
        switch (opt) {
        case 't': v.o.secs = atof(optarg); break;
        case 's': v.o.same_core = true; break;
        case 'n':
            if (!strcmp(optarg, "eventfd"))
                v.o.mode = NOTIFY_EVENTFD;
            else if (!strcmp(optarg, "evtchn"))
                v.o.mode = NOTIFY_EVTCHN;
            else {
                fprintf(stderr, "--notify %s: eventfd or evtchn\n", optarg);
                return 2;
            }
            break;
        case 'p': v.o.spin_ns = strtoull(optarg, NULL, 10); break;
        case 'c': v.o.cases = optarg; break;
        case 'j': v.o.json = optarg; break;
        default: usage(); return opt == 'h' ? 0 : 2;
        }
    }
    if (v.o.secs <= 0 || v.o.secs > 60) {
        usage();
        return 2;
    }

    /* Two CPUs out of our affinity mask; both the same with --same-core or only one CPU. */
    cpu_set_t allowed;
    int cpus[2] = { 0, 0 }, ncpu = 0;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
        for (int i = 0; i < CPU_SETSIZE && ncpu < 2; i++)
            if (CPU_ISSET(i, &allowed))
                cpus[ncpu++] = i;
    if (ncpu < 2 && !v.o.same_core) {
        fprintf(stderr, "only one CPU available: running same-core\n");
        v.o.same_core = true;
    }
    v.o.cpu_front = cpus[0];
    v.o.cpu_back = v.o.same_core ? cpus[0] : cpus[1];

    int rc = 1;
    v.ctl = mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
    size_t rbytes = sx_ring_bytes(RING_ORDER);
    int mfd = memfd_create("sx-bench-ring", MFD_CLOEXEC);
    if (v.ctl == MAP_FAILED || mfd < 0 || ftruncate(mfd, (off_t)rbytes) < 0) {
        perror("setup");
        return 1;
    }
    v.ring = mmap(NULL, rbytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    close(mfd);
    v.efd_f2b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    v.efd_b2f = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    v.pp_f2b = eventfd(0, EFD_CLOEXEC);
    v.pp_b2f = eventfd(0, EFD_CLOEXEC);
    if (v.ring == MAP_FAILED || v.efd_f2b < 0 || v.efd_b2f < 0 || v.pp_f2b < 0 || v.pp_b2f < 0) {
        perror("setup");
        return 1;
    }
    if (v.o.mode == NOTIFY_EVTCHN && strpbrk(v.o.cases, "cdef")) {
        int src = sim_start(&v);
        if (src < 0) {
            fprintf(stderr, "starting the sim core failed: %s\n", strerror(-src));
            goto out;
        }
    }

    printf("splitxen ring benchmark: %s, front cpu %d, back cpu %d, notify %s, spin budget %llu ns, "
           "%.1f s per case\n", v.o.same_core ? "same core" : "cross core", v.o.cpu_front,
           v.o.cpu_back, v.o.mode == NOTIFY_EVTCHN ? "sim event channel" : "raw eventfd",
           (unsigned long long)v.o.spin_ns, v.o.secs);
    rc = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strchr(v.o.cases, cases[i].id) && run_case(&v, &cases[i]) < 0)
            rc = 1;

    struct bcase *a = &cases[0], *b = &cases[1];
    printf("\n%-2s %-38s %14s %-14s %10s %10s %10s %9s %9s\n", "", "case", "rate", "unit",
           "us/op", "x eventfd", "x spin", "ntf/op", "sleep/op");
    /* ntf/op: notifications sent by both sides per operation; sleep/op: poll() calls. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bcase *x = &cases[i];
        if (!x->ran)
            continue;
        char ra[16] = "-", rb[16] = "-", np[16] = "-", sp[16] = "-";
        if (a->ran)
            snprintf(ra, sizeof(ra), "%.3f", x->rate / a->rate);
        if (b->ran)
            snprintf(rb, sizeof(rb), "%.4f", x->rate / b->rate);
        if (x->id >= 'c') {
            snprintf(np, sizeof(np), "%.3f", (double)(x->f_notifies + x->b_notifies) / x->ops);
            snprintf(sp, sizeof(sp), "%.3f", (double)(x->f_sleeps + x->b_sleeps) / x->ops);
        }
        printf("%c  %-38s %14.0f %-14s %10.3f %10s %10s %9s %9s\n", x->id, x->name, x->rate,
               x->unit, x->us, ra, rb, np, sp);
    }
    if (v.o.json) {
        FILE *f = fopen(v.o.json, "w");
        if (!f) {
            perror(v.o.json);
            rc = 1;
        } else {
            write_json(&v, f, a, b);
            fclose(f);
            printf("\nwrote %s\n", v.o.json);
        }
    }
out:
    sim_stop(&v);
    return rc;
}
