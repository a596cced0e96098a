/* sxguest: control/shutdown and the suspend protocol of a sim guest's process (control.h). */
#define SX_LOG_MODULE "guest"
#include "frontends/control/control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xenbus/xenbus.h"

#define WATCH_TOKEN "sx-guest-shutdown"

struct sx_guest {
    struct sx_plat *p;
    struct sx_xenbus *xb;
    char control[64];               /* /local/domain/<self>/control */
    bool fired;
    pthread_mutex_t lock;           /* devs, stats */
    struct sx_guest_dev devs[SX_GUEST_MAX_DEVS];
    unsigned ndevs;
    struct sx_guest_stats st;
    pthread_t thread;
    bool running;
    int stop_fd;
};

static void fired_cb(void *arg, const char *path, const char *token)
{
    (void)path;
    (void)token;
    ((struct sx_guest *)arg)->fired = true;
}

/* Connect to the xenstore of the host the guest is on and watch control/shutdown there. */
static int attach(struct sx_guest *g)
{
    int rc = sx_xenbus_open(&g->xb, g->p, NULL);
    if (rc < 0) {
        g->xb = NULL;
        return rc;
    }
    snprintf(g->control, sizeof(g->control), "/local/domain/%u/control", g->p->self);
    /* As Linux's setup_shutdown_watcher: say what the guest can do. Best effort: a domain
     * set up without the node still works with the toolstack's timeout. */
    if (sx_xenbus_write(g->xb, XBT_NULL, g->control, "feature-suspend", "1") < 0)
        sx_debug("%s/feature-suspend not writable", g->control);
    char path[96];
    snprintf(path, sizeof(path), "%s/shutdown", g->control);
    rc = sx_xenbus_watch(g->xb, path, WATCH_TOKEN, fired_cb, g);
    if (rc == 0)
        rc = sx_plat_guest_join(g->p);
    return rc;
}

int sx_guest_open(struct sx_guest **out, struct sx_plat *p)
{
    if (!p || !sx_plat_traits(p->kind)->guest_suspend)
        return -EOPNOTSUPP;
    struct sx_guest *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->p = p;
    g->stop_fd = -1;
    pthread_mutex_init(&g->lock, NULL);
    int rc = attach(g);
    if (rc < 0) {
        sx_err("dom%u: cannot follow control/shutdown: %s", p->self, strerror(-rc));
        sx_guest_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

void sx_guest_close(struct sx_guest *g)
{
    if (!g)
        return;
    if (g->running) {
        uint64_t one = 1;
        if (write(g->stop_fd, &one, sizeof(one)) < 0)
            sx_warn("stop: %s", strerror(errno));
        pthread_join(g->thread, NULL);
    }
    if (g->stop_fd >= 0)
        close(g->stop_fd);
    sx_xenbus_close(g->xb);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int sx_guest_add(struct sx_guest *g, const struct sx_guest_dev *dev)
{
    pthread_mutex_lock(&g->lock);
    int rc = -ENOSPC;
    if (g->ndevs < SX_GUEST_MAX_DEVS) {
        g->devs[g->ndevs++] = *dev;
        rc = 0;
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void sx_guest_remove(struct sx_guest *g, void *arg)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < g->ndevs; i++)
        if (g->devs[i].arg == arg) {
            memmove(&g->devs[i], &g->devs[i + 1], (g->ndevs - i - 1) * sizeof(g->devs[0]));
            g->ndevs--;
            break;
        }
    pthread_mutex_unlock(&g->lock);
}

int sx_guest_fd(struct sx_guest *g) { return sx_xenbus_fd(g->xb); }

/* The move itself: the new host, the devices there, then let the old host go. Under g->lock. */
static int resume_devices(struct sx_guest *g, const struct sx_plat_resume *r)
{
    int rc = 0;
    uint64_t t0 = sx_now_us();
    if (r->moved) {
        rc = sx_plat_move(g->p, r->core_path, r->domid);
        if (rc < 0) {
            sx_err("cannot reach the guest's new home (dom%u at %s): %s", r->domid,
                   r->core_path, strerror(-rc));
            return rc;
        }
        /* Our own xenstore view moves too: the old watch goes with the old connection. */
        sx_xenbus_close(g->xb);
        g->xb = NULL;
    }
    uint64_t t1 = sx_now_us();
    for (unsigned i = 0; i < g->ndevs; i++) {
        uint64_t td = sx_now_us();
        int r2 = g->devs[i].resume(g->devs[i].arg, r->moved);
        sx_debug("%s resumed in %.3f ms", g->devs[i].name, (sx_now_us() - td) / 1e3);
        if (r2 < 0) {
            sx_err("%s did not resume: %s", g->devs[i].name, strerror(-r2));
            g->st.resume_errors++;
            if (rc == 0)
                rc = r2;
        }
    }
    sx_debug("moved in %.3f ms, devices %.3f ms", (t1 - t0) / 1e3, (sx_now_us() - t1) / 1e3);
    if (r->moved) {
        sx_plat_move_done(g->p);
        int r3 = attach(g);
        if (r3 < 0) {
            sx_err("dom%u: cannot follow control/shutdown after the move: %s", g->p->self,
                   strerror(-r3));
            if (rc == 0)
                rc = r3;
        }
    }
    return rc;
}

int sx_guest_handle(struct sx_guest *g)
{
    if (!g->xb)
        return -ENOTCONN;
    int rc = sx_xenbus_dispatch(g->xb, 0);
    if (rc < 0)
        return rc;
    if (!g->fired)
        return 0;
    g->fired = false;
    char req[32] = "";
    rc = sx_xenbus_read_str(g->xb, XBT_NULL, g->control, "shutdown", req, sizeof(req));
    if (rc < 0 || strcmp(req, "suspend"))
        return 0;   /* "", or poweroff/reboot: not this process's to act on */

    uint64_t t0 = sx_now_us();
    domid_t was = g->p->self;
    pthread_mutex_lock(&g->lock);
    unsigned done = 0;
    for (; done < g->ndevs; done++) {
        rc = g->devs[done].suspend(g->devs[done].arg);
        if (rc < 0) {
            sx_err("%s did not suspend: %s", g->devs[done].name, strerror(-rc));
            break;
        }
    }
    struct sx_plat_resume r = { .moved = false };
    uint64_t t1 = sx_now_us(), t2 = t1;
    sx_debug("devices quiesced in %.3f ms", (t1 - t0) / 1e3);
    if (rc == 0) {
        rc = sx_plat_guest_suspend(g->p, &r);
        t2 = sx_now_us();
        if (rc < 0) {
            /* The host is gone (its core closed the connection): nothing will resume the
             * guest. Let the devices go on as cancelled, so their users find them dead
             * instead of waiting on them for ever. */
            sx_err("dom%u: the suspend hypercall failed: %s", was, strerror(-rc));
            r.moved = false;
            resume_devices(g, &r);
            pthread_mutex_unlock(&g->lock);
            return rc;
        }
    } else {
        /* A device that cannot quiesce: the hypercall is not made, the toolstack times out
         * and cancels; the ones that did suspend go on as they were. */
        unsigned all = g->ndevs;
        g->ndevs = done;
        resume_devices(g, &r);
        g->ndevs = all;
        pthread_mutex_unlock(&g->lock);
        return rc;
    }
    if (rc == 0)
        rc = resume_devices(g, &r);
    uint64_t t3 = sx_now_us();
    g->st.suspends++;
    g->st.moves += r.moved;
    g->st.cancels += !r.moved;
    g->st.last_pause_us = t3 - t0;
    g->st.last_hypercall_us = t2 - t1;
    if (g->st.last_pause_us > g->st.max_pause_us)
        g->st.max_pause_us = g->st.last_pause_us;
    pthread_mutex_unlock(&g->lock);
    if (r.moved)
        sx_info("dom%u: suspended %.3f ms (%.3f ms in the hypercall); resumed as dom%u at %s%s",
                was, (t3 - t0) / 1e3, (t2 - t1) / 1e3, r.domid, g->p->run_dir,
                rc < 0 ? " with errors" : "");
    else
        sx_info("dom%u: suspend cancelled after %.3f ms%s", was, (t3 - t0) / 1e3,
                rc < 0 ? " (with errors)" : "");
    return rc < 0 ? rc : 1;
}

static void *guest_thread(void *arg)
{
    struct sx_guest *g = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = g->xb ? sx_xenbus_fd(g->xb) : -1, .events = POLLIN },
                               { .fd = g->stop_fd, .events = POLLIN } };
        int n = poll(p, 2, g->xb ? 1000 : 100);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!g->xb) {
            /* Lost after a failed move: try to follow the guest again. */
            if (attach(g) < 0)
                continue;
        }
        int rc = sx_guest_handle(g);
        if (rc < 0 && rc != -ENOTCONN)
            sx_log_ratelimited(SX_LOG_ERR, "dom%u: suspend/resume: %s", g->p->self,
                               strerror(-rc));
    }
    return NULL;
}

int sx_guest_start(struct sx_guest *g)
{
    if (g->running)
        return -EBUSY;
    g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->stop_fd < 0)
        return -errno;
    int rc = -pthread_create(&g->thread, NULL, guest_thread, g);
    if (rc == 0)
        g->running = true;
    return rc;
}

void sx_guest_get_stats(struct sx_guest *g, struct sx_guest_stats *out)
{
    pthread_mutex_lock(&g->lock);
    *out = g->st;
    pthread_mutex_unlock(&g->lock);
}
