/*
 * Test helpers for event storms (XSA-332 class): a thread that notifies an event channel port
 * in a loop, as a hostile guest does, and the CPU time of one of this process's threads, found
 * by name, so a test that runs a backend in-process can bound what the storm costs it.
 * CPU time comes from /proc/self/task/<tid>/schedstat (nanoseconds on a CPU, first field).
 */
#ifndef SPLITXEN_TEST_STORM_H
#define SPLITXEN_TEST_STORM_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "evtchn/evtchn.h"

/* The tid of this process's thread called `name` (its comm), or -ENOENT. */
static inline int sx_test_thread_by_name(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -errno;
    int tid = -ENOENT;
    struct dirent *de;
    while (tid < 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        if (!strcmp(comm, name))
            tid = atoi(de->d_name);
    }
    closedir(d);
    return tid;
}

/* Nanoseconds thread tid of this process has run on a CPU, or UINT64_MAX. */
static inline uint64_t sx_test_thread_cpu_ns(int tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return UINT64_MAX;
    uint64_t ns = UINT64_MAX;
    if (fscanf(f, "%" SCNu64, &ns) != 1)
        ns = UINT64_MAX;
    fclose(f);
    return ns;
}

/* A storm: a thread notifies `port` of handle `e` until stopped, in a tight loop (rate 0) or
 * paced at `rate` notifications a second ($SX_STORM_RATE, for measurements; tests use a tight
 * loop), while the victim thread's CPU time is measured over a window. While it runs, only the
 * storm thread may use `e`. */
struct sx_test_storm {
    struct sx_evtchn *e;
    evtchn_port_t port;
    unsigned rate;
    int tid;                        /* the victim */
    pthread_t thr;
    atomic_bool stop;
    bool started;
    uint64_t sent;
    uint64_t t0, c0, t1, c1;        /* wall clock and the victim's CPU time, start and stop */
    double share;                   /* of one CPU, over the window */
};

static inline void *sx_test_storm_main(void *arg)
{
    struct sx_test_storm *s = arg;
    uint64_t gap = s->rate ? 1000000000ull / s->rate : 0, next = sx_now_ns();
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        if (gap) {
            uint64_t now;
            while ((now = sx_now_ns()) < next) {
                struct timespec ts = { 0, (long)(next - now) };
                nanosleep(&ts, NULL);
            }
            next += gap;
        }
        sx_evtchn_notify(s->e, s->port);
        s->sent++;
    }
    return NULL;
}

/* Start storming; victim names the thread whose CPU time is measured. 0 or -errno. */
static inline int sx_test_storm_start(struct sx_test_storm *s, struct sx_evtchn *e,
                                      evtchn_port_t port, const char *victim)
{
    const char *r = getenv("SX_STORM_RATE");
    *s = (struct sx_test_storm){ .e = e, .port = port, .tid = sx_test_thread_by_name(victim),
                                 .rate = r ? (unsigned)strtoul(r, NULL, 10) : 0 };
    atomic_init(&s->stop, false);
    if (s->tid < 0)
        return s->tid;
    s->t0 = sx_now_ns();
    s->c0 = sx_test_thread_cpu_ns(s->tid);
    int rc = pthread_create(&s->thr, NULL, sx_test_storm_main, s);
    s->started = rc == 0;
    return -rc;
}

/* Wait until ns after the storm's start (to act in the middle of it). */
static inline void sx_test_storm_wait(const struct sx_test_storm *s, uint64_t ns)
{
    while (sx_now_ns() - s->t0 < ns)
        usleep(20000);
}

/* Let the storm run until window_ns after its start (a measurement window, not a wait for an
 * event), then stop it and take the victim's share of a CPU. Idempotent. */
static inline void sx_test_storm_stop(struct sx_test_storm *s, uint64_t window_ns)
{
    if (!s->started)
        return;
    sx_test_storm_wait(s, window_ns);
    s->c1 = sx_test_thread_cpu_ns(s->tid);
    s->t1 = sx_now_ns();
    atomic_store(&s->stop, true);
    pthread_join(s->thr, NULL);
    s->started = false;
    if (s->c0 != UINT64_MAX && s->c1 != UINT64_MAX)
        s->share = (double)(s->c1 - s->c0) / (double)(s->t1 - s->t0);
    else
        s->share = 1.0;
}

/* One line for the test log: what the storm cost and what the backend counted (deltas; sleeps
 * 0 when the victim does not count them). */
static inline void sx_test_storm_print(const struct sx_test_storm *s, const char *what,
                                       uint64_t sleeps, uint64_t spurious, uint64_t delays,
                                       uint64_t delayed_us)
{
    printf("\n  %s: %" PRIu64 " notifications in %.2f s; thread %.2f%% of a core (%.2f us "
           "a notification)", what, s->sent, (double)(s->t1 - s->t0) / 1e9, s->share * 100,
           s->sent ? (double)(s->c1 - s->c0) / 1e3 / (double)s->sent : 0.0);
    if (sleeps)   /* 0: the victim does not count its sleeps */
        printf(", %" PRIu64 " sleeps (%.1f us of CPU each)", sleeps,
               (double)(s->c1 - s->c0) / 1e3 / (double)sleeps);
    printf(", %" PRIu64 " spurious events, %" PRIu64 " delays (%" PRIu64 " ms)\n", spurious,
           delays, delayed_us / 1000);
}

#endif
