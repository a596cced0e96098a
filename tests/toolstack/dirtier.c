/*
 * splitxen-test-dirtier: a process of a guest's kernel that writes the guest's memory as fast as
 * it can (a counter into pages picked at random among its last PAGES) and takes part in its
 * suspend and resume (frontends/control). When the guest is moved it checks, in the guest's
 * new home, that every one of those pages holds the last value written there: a write that the
 * migration's dirty tracking missed shows as a stale page.
 *   splitxen-test-dirtier --domid N PAGES [TIMEOUT_S]
 * Prints "dirtier: ready" once writing, then "dirtier: W writes over P pages, all as last
 * written in domD" and exits 0; 1 with the first stale page; 3 when not moved in time.
 * The core socket is $SPLITXEN_CORE or $SPLITXEN_RUN/core.sock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontends/control/control.h"
#include "xen-core/core.h"

static struct {
    struct sx_plat *p;
    struct sxc_dom *d;
    uint64_t base, pages;
    uint64_t *last;             /* value last written into each page */
    _Atomic bool stop;
    pthread_t writer;
    bool running;
    uint64_t writes;
    pthread_mutex_t lock;
    pthread_cond_t done;
    int result;                 /* -1 until moved and checked */
    bool moved;                 /* d went with the old host's connection */
} st = { .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER, .result = -1 };

static void *writer(void *arg)
{
    (void)arg;
    uint64_t x = 0x2545f4914f6cdd1dull;
    while (!atomic_load_explicit(&st.stop, memory_order_relaxed)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t i = x % st.pages, v = ++st.writes;
        volatile uint64_t *w = (volatile uint64_t *)(st.d->mem + (st.base + i) * 4096);
        w[0] = v;
        w[511] = ~v;
        st.last[i] = v;
    }
    return NULL;
}

static int start_writer(void)
{
    atomic_store(&st.stop, false);
    st.running = pthread_create(&st.writer, NULL, writer, NULL) == 0;
    return st.running ? 0 : -EAGAIN;
}

static int on_suspend(void *arg)
{
    (void)arg;
    atomic_store(&st.stop, true);
    if (st.running)
        pthread_join(st.writer, NULL);
    st.running = false;
    return 0;
}

static int on_resume(void *arg, bool moved)
{
    (void)arg;
    if (!moved)
        return start_writer();
    st.moved = true;
    struct sxc_dom *nd;
    int rc = sxc_domain_get(st.p->conn, st.p->self, &nd);
    int result = 0;
    if (rc < 0) {
        fprintf(stderr, "dirtier: mapping the new home: %s\n", strerror(-rc));
        result = 1;
    }
    for (uint64_t i = 0; rc == 0 && i < st.pages && !result; i++) {
        const uint64_t *w = (const uint64_t *)(nd->mem + (st.base + i) * 4096);
        uint64_t want = st.last[i], want_tail = want ? ~want : 0;
        if (w[0] != want || w[511] != want_tail) {
            fprintf(stderr, "dirtier: frame %llu holds %llu/%llx, last written %llu: a write "
                    "was lost\n", (unsigned long long)(st.base + i), (unsigned long long)w[0],
                    (unsigned long long)w[511], (unsigned long long)want);
            result = 1;
        }
    }
    if (rc == 0) {
        printf("dirtier: %llu writes over %llu pages, %s in dom%u\n",
               (unsigned long long)st.writes, (unsigned long long)st.pages,
               result ? "NOT all as last written" : "all as last written", st.p->self);
        fflush(stdout);
        sxc_domain_put(st.p->conn, nd);
    }
    pthread_mutex_lock(&st.lock);
    st.result = result;
    pthread_cond_signal(&st.done);
    pthread_mutex_unlock(&st.lock);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--domid")) {
        fprintf(stderr, "usage: %s --domid N PAGES [TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    domid_t domid = (domid_t)strtoul(argv[2], NULL, 10);
    st.pages = strtoull(argv[3], NULL, 0);
    unsigned timeout = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 60;
    struct sx_guest *g = NULL;
    int rc = sx_plat_open(&st.p, SX_PLAT_SIM, domid, NULL);
    if (rc == 0)
        rc = sxc_domain_get(st.p->conn, domid, &st.d);
    if (rc == 0 && (st.pages == 0 || st.pages > st.d->mem_size / 4096 / 2))
        rc = -EINVAL;
    if (rc == 0 && !(st.last = calloc(st.pages, sizeof(*st.last))))
        rc = -ENOMEM;
    if (rc == 0)
        rc = sx_guest_open(&g, st.p);
    const struct sx_guest_dev dev = { .name = "dirtier", .suspend = on_suspend,
                                      .resume = on_resume };
    if (rc == 0)
        rc = sx_guest_add(g, &dev);
    if (rc == 0) {
        st.base = st.d->mem_size / 4096 - st.pages;
        rc = start_writer();
    }
    if (rc == 0)
        rc = sx_guest_start(g);
    if (rc < 0) {
        fprintf(stderr, "dirtier: dom%u: %s\n", domid, strerror(-rc));
        return 1;
    }
    printf("dirtier: ready\n");
    fflush(stdout);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout;
    pthread_mutex_lock(&st.lock);
    while (st.result < 0 && pthread_cond_timedwait(&st.done, &st.lock, &until) != ETIMEDOUT)
        ;
    int result = st.result < 0 ? 3 : st.result;
    pthread_mutex_unlock(&st.lock);
    if (result == 3)
        fprintf(stderr, "dirtier: not moved within %u s\n", timeout);
    /* The guest control first: no suspend may start on a closing process. */
    sx_guest_close(g);
    on_suspend(NULL);
    if (!st.moved)
        sxc_domain_put(st.p->conn, st.d);
    sx_plat_close(st.p);
    free(st.last);
    return result;
}
