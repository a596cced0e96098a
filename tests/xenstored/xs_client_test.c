/*
 * The sim xenstored through Debian's libxenstore, the acceptance client.
 *
 * With SX_XS_DIR set, talks to a running splitxen-xenstored whose --dir is SX_XS_DIR and which
 * has domain 1 introduced (the integration tests do this); otherwise starts one in-process on a
 * private thread in a temp dir.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenstore.h>

#include "tests/sxtest.h"
#include "xenstored/xenstored.h"

static struct sxs *srv;
static char dir[256];
static char sock0[512], sock1[512];
static struct xs_handle *h0, *h0b, *h1;
static char base[64];
static char base_counter[96];

static struct xs_handle *open_at(const char *path)
{
    setenv("XENSTORED_PATH", path, 1);
    struct xs_handle *h = xs_open(0);
    unsetenv("XENSTORED_PATH");
    return h;
}

static int suite_init(void)
{
    const char *ext = getenv("SX_XS_DIR");
    if (ext) {
        snprintf(dir, sizeof(dir), "%s", ext);
    } else {
        snprintf(dir, sizeof(dir), "/tmp/sx-xs-client-test.%d", (int)getpid());
        if (sxs_open(&srv, dir) || sxs_domain_add(srv, 1) || sxs_start_thread(srv))
            return 1;
    }
    snprintf(sock0, sizeof(sock0), "%s/socket", dir);
    snprintf(sock1, sizeof(sock1), "%s/domain/1.sock", dir);
    h0 = open_at(sock0);
    h0b = open_at(sock0);
    h1 = open_at(sock1);
    if (!h0 || !h0b || !h1)
        return 1;
    /* A private subtree per run, so the tests can share a daemon. */
    snprintf(base, sizeof(base), "/xs-client-test-%d", (int)getpid());
    return xs_mkdir(h0, XBT_NULL, base) ? 0 : 1;
}

static int suite_clean(void)
{
    if (h0)
        xs_rm(h0, XBT_NULL, base);
    xs_close(h0);
    xs_close(h0b);
    xs_close(h1);
    if (srv) {
        sxs_close(srv);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd))
            return 1;
    }
    return 0;
}

static char *p(const char *rel)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, 256, "%s/%s", base, rel);
    return b;
}

static void test_conflicting_transactions_one_gets_eagain(void)
{
    CU_ASSERT_TRUE(xs_write(h0, XBT_NULL, p("tx/a"), "0", 1));
    xs_transaction_t t1 = xs_transaction_start(h0);
    xs_transaction_t t2 = xs_transaction_start(h0b);
    CU_ASSERT_NOT_EQUAL_FATAL(t1, XBT_NULL);
    CU_ASSERT_NOT_EQUAL_FATAL(t2, XBT_NULL);
    unsigned len;
    char *v1 = xs_read(h0, t1, p("tx/a"), &len);
    char *v2 = xs_read(h0b, t2, p("tx/a"), &len);
    CU_ASSERT_PTR_NOT_NULL(v1);
    CU_ASSERT_PTR_NOT_NULL(v2);
    free(v1);
    free(v2);
    CU_ASSERT_TRUE(xs_write(h0, t1, p("tx/a"), "1", 1));
    CU_ASSERT_TRUE(xs_write(h0b, t2, p("tx/a"), "2", 1));
    CU_ASSERT_TRUE(xs_transaction_end(h0, t1, false));
    errno = 0;
    CU_ASSERT_FALSE(xs_transaction_end(h0b, t2, false));
    CU_ASSERT_EQUAL(errno, EAGAIN);
    char *v = xs_read(h0, XBT_NULL, p("tx/a"), &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "1");
    free(v);
    /* The retry, as every xenstore client does it, succeeds. */
    t2 = xs_transaction_start(h0b);
    v = xs_read(h0b, t2, p("tx/a"), &len);
    free(v);
    CU_ASSERT_TRUE(xs_write(h0b, t2, p("tx/a"), "2", 1));
    CU_ASSERT_TRUE(xs_transaction_end(h0b, t2, false));
    /* Aborting discards; ending twice is ENOENT. */
    t1 = xs_transaction_start(h0);
    CU_ASSERT_TRUE(xs_write(h0, t1, p("tx/b"), "x", 1));
    CU_ASSERT_TRUE(xs_transaction_end(h0, t1, true));
    errno = 0;
    CU_ASSERT_PTR_NULL(xs_read(h0, XBT_NULL, p("tx/b"), &len));
    CU_ASSERT_EQUAL(errno, ENOENT);
    errno = 0;
    CU_ASSERT_FALSE(xs_transaction_end(h0, t1, false));
    CU_ASSERT_EQUAL(errno, ENOENT);
}

static void test_guest_permissions_through_libxenstore(void)
{
    CU_ASSERT_TRUE(xs_write(h0, XBT_NULL, p("perm/k"), "v", 1));
    unsigned len;
    errno = 0;
    CU_ASSERT_PTR_NULL(xs_read(h1, XBT_NULL, p("perm/k"), &len));
    CU_ASSERT_EQUAL(errno, EACCES);
    struct xs_permissions perms[2] = { { 0, XS_PERM_NONE }, { 1, XS_PERM_READ } };
    CU_ASSERT_TRUE(xs_set_permissions(h0, XBT_NULL, p("perm/k"), perms, 2));
    char *v = xs_read(h1, XBT_NULL, p("perm/k"), &len);
    CU_ASSERT_PTR_NOT_NULL(v);
    free(v);
    errno = 0;
    CU_ASSERT_FALSE(xs_write(h1, XBT_NULL, p("perm/k"), "w", 1));
    CU_ASSERT_EQUAL(errno, EACCES);
    errno = 0;
    CU_ASSERT_FALSE(xs_set_permissions(h1, XBT_NULL, p("perm/k"), perms, 2));
    CU_ASSERT_EQUAL(errno, EACCES);
    unsigned n;
    struct xs_permissions *got = xs_get_permissions(h1, XBT_NULL, p("perm/k"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(got[1].id, 1);
    CU_ASSERT_EQUAL(got[1].perms, XS_PERM_READ);
    free(got);
    /* Privileged operations are refused to guests. */
    errno = 0;
    CU_ASSERT_FALSE(xs_introduce_domain(h1, 7, 0, 0));
    CU_ASSERT_EQUAL(errno, EACCES);
}

static void test_domain_path_and_introduce_release(void)
{
    char *dp = xs_get_domain_path(h1, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
    CU_ASSERT_STRING_EQUAL(dp, "/local/domain/1");
    free(dp);
    CU_ASSERT_TRUE(xs_is_domain_introduced(h0, 1));
    CU_ASSERT_FALSE(xs_is_domain_introduced(h0, 77));
    /* @introduceDomain / @releaseDomain fire on INTRODUCE / RELEASE. */
    struct xs_handle *w = open_at(sock0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_TRUE(xs_watch(w, "@introduceDomain", "intro"));
    CU_ASSERT_TRUE(xs_watch(w, "@releaseDomain", "rel"));
    unsigned num;
    char **ev = xs_read_watch(w, &num);  /* the two initial events */
    free(ev);
    ev = xs_read_watch(w, &num);
    free(ev);
    CU_ASSERT_TRUE(xs_introduce_domain(h0, 77, 0x1000, 3));
    CU_ASSERT_TRUE(xs_is_domain_introduced(h0, 77));
    ev = xs_read_watch(w, &num);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(ev[XS_WATCH_PATH], "@introduceDomain");
    CU_ASSERT_STRING_EQUAL(ev[XS_WATCH_TOKEN], "intro");
    free(ev);
    char s77[600];
    snprintf(s77, sizeof(s77), "%s/domain/77.sock", dir);
    CU_ASSERT_EQUAL(access(s77, F_OK), 0);
    struct xs_handle *g = open_at(s77);
    CU_ASSERT_PTR_NOT_NULL(g);
    CU_ASSERT_TRUE(xs_release_domain(h0, 77));
    ev = xs_read_watch(w, &num);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(ev[XS_WATCH_PATH], "@releaseDomain");
    free(ev);
    CU_ASSERT_NOT_EQUAL(access(s77, F_OK), 0);
    /* The released guest's connection is gone. */
    unsigned len;
    CU_ASSERT_PTR_NULL(xs_read(g, XBT_NULL, "name", &len));
    xs_close(g);
    errno = 0;
    CU_ASSERT_FALSE(xs_release_domain(h0, 77));
    CU_ASSERT_EQUAL(errno, ENOENT);
    xs_close(w);
}

static void test_big_directory_falls_back_to_directory_part(void)
{
    /* 400 children of 20+ chars: more than one 4 KiB reply, so DIRECTORY says E2BIG and
     * libxenstore pages with DIRECTORY_PART. */
    char name[128];
    xs_transaction_t t = xs_transaction_start(h0);
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof(name), "%s/child-with-a-long-name-%04d", p("big"), i);
        CU_ASSERT_TRUE_FATAL(xs_write(h0, t, name, "", 0));
    }
    CU_ASSERT_TRUE_FATAL(xs_transaction_end(h0, t, false));
    unsigned n;
    char **list = xs_directory(h0, XBT_NULL, p("big"), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL(n, 400);
    int ok = 1;
    for (unsigned i = 0; i < n && i < 400; i++) {
        snprintf(name, sizeof(name), "child-with-a-long-name-%04u", i);
        ok &= !strcmp(list[i], name);
    }
    CU_ASSERT_TRUE(ok);
    free(list);
    CU_ASSERT_TRUE(xs_rm(h0, XBT_NULL, p("big")));
}

static int wait_event(struct xs_handle *h, char *path, size_t len, int ms)
{
    struct pollfd pfd = { .fd = xs_fileno(h), .events = POLLIN };
    if (poll(&pfd, 1, ms) <= 0)
        return -ETIMEDOUT;
    char **ev = xs_check_watch(h);
    if (!ev)
        return -EAGAIN;
    snprintf(path, len, "%s", ev[XS_WATCH_PATH]);
    free(ev);
    return 0;
}

static void test_watches_relative_and_rm(void)
{
    /* Guest 1's relative watch reports relative paths. */
    CU_ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, "/local/domain/1/data"));
    struct xs_permissions own[1] = { { 1, XS_PERM_NONE } };
    CU_ASSERT_TRUE(xs_set_permissions(h0, XBT_NULL, "/local/domain/1/data", own, 1));
    CU_ASSERT_TRUE(xs_watch(h1, "data", "rel"));
    char path[512];
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    CU_ASSERT_STRING_EQUAL(path, "data");
    CU_ASSERT_TRUE(xs_write(h0, XBT_NULL, "/local/domain/1/data/x", "1", 1));
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    CU_ASSERT_STRING_EQUAL(path, "data/x");
    /* A node the guest cannot read fires nothing for it. */
    CU_ASSERT_TRUE(xs_write(h0, XBT_NULL, "/local/domain/1/data/hidden", "1", 1));
    struct xs_permissions n0[1] = { { 0, XS_PERM_NONE } };
    CU_ASSERT_TRUE(xs_set_permissions(h0, XBT_NULL, "/local/domain/1/data/hidden", n0, 1));
    while (wait_event(h1, path, sizeof(path), 200) == 0)
        ; /* the write and the chmod (old perms allowed it) */
    CU_ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, "/local/domain/1/data/hidden/deeper"));
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 300), -ETIMEDOUT);
    /* rm of an ancestor fires the watch. */
    CU_ASSERT_TRUE(xs_rm(h0, XBT_NULL, "/local/domain/1/data"));
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    CU_ASSERT_STRING_EQUAL(path, "data");
    CU_ASSERT_TRUE(xs_unwatch(h1, "data", "rel"));
    errno = 0;
    CU_ASSERT_FALSE(xs_unwatch(h1, "data", "rel"));
    CU_ASSERT_EQUAL(errno, ENOENT);
    /* Duplicate watch: EEXIST. */
    CU_ASSERT_TRUE(xs_watch(h0, p("dup"), "t"));
    errno = 0;
    CU_ASSERT_FALSE(xs_watch(h0, p("dup"), "t"));
    CU_ASSERT_EQUAL(errno, EEXIST);
    CU_ASSERT_TRUE(xs_unwatch(h0, p("dup"), "t"));
}

static void test_bad_paths_are_einval(void)
{
    unsigned len;
    errno = 0;
    CU_ASSERT_FALSE(xs_write(h0, XBT_NULL, "/bad path", "x", 1));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(xs_read(h0, XBT_NULL, "/trailing/", &len));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_FALSE(xs_mkdir(h0, XBT_NULL, "/a//b"));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_FALSE(xs_rm(h0, XBT_NULL, "/"));
    CU_ASSERT_EQUAL(errno, EINVAL);
    static char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    errno = 0;
    CU_ASSERT_FALSE(xs_write(h0, XBT_NULL, big, "x", 1));
    CU_ASSERT(errno == EINVAL || errno == E2BIG);
}

static void test_in_process_api_wakes_watchers(void)
{
    if (!srv)
        return; /* against an external daemon there is no in-process handle */
    CU_ASSERT_TRUE(xs_watch(h1, "/local/domain/1/api", "api"));
    char path[512];
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    /* The server thread sleeps in epoll_wait: the API calls must wake it to deliver. */
    CU_ASSERT_EQUAL(sxs_mkdir(srv, "/local/domain/1/api"), 0); /* n0: invisible to guest 1 */
    const char *perms[] = { "n1", "r0" };
    CU_ASSERT_EQUAL(sxs_set_perms(srv, "/local/domain/1/api", perms, 2), 0);
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    CU_ASSERT_STRING_EQUAL(path, "/local/domain/1/api");
    CU_ASSERT_EQUAL(sxs_write(srv, "/local/domain/1/api/k", "v1", 2), 0);
    CU_ASSERT_EQUAL(wait_event(h1, path, sizeof(path), 2000), 0);
    CU_ASSERT_STRING_EQUAL(path, "/local/domain/1/api/k");
    unsigned len;
    char *v = xs_read(h1, XBT_NULL, "/local/domain/1/api/k", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "v1");
    free(v);
    CU_ASSERT_TRUE(xs_write(h1, XBT_NULL, "api/k2", "v2", 2));
    char *r = NULL;
    CU_ASSERT_EQUAL(sxs_read(srv, "/local/domain/1/api/k2", &r, &len), 0);
    CU_ASSERT_STRING_EQUAL(r, "v2");
    CU_ASSERT_EQUAL(len, 2);
    free(r);
    CU_ASSERT_EQUAL(sxs_read(srv, "relative", &r, &len), -EINVAL);
    CU_ASSERT_EQUAL(sxs_set_perms(srv, "/local/domain/1/api", perms, 0), -EINVAL);
    const char *badp[] = { "x1" };
    CU_ASSERT_EQUAL(sxs_set_perms(srv, "/local/domain/1/api", badp, 1), -EINVAL);
    CU_ASSERT_EQUAL(sxs_rm(srv, "/local/domain/1/api"), 0);
    CU_ASSERT_EQUAL(sxs_read(srv, "/local/domain/1/api/k", &r, &len), -ENOENT);
    CU_ASSERT_EQUAL(sxs_mkdir(srv, "/local/domain/1/api2"), 0);
    struct sxs_stats st;
    sxs_get_stats(srv, &st);
    CU_ASSERT(st.connections >= 3);
    CU_ASSERT(st.requests > 0);
    CU_ASSERT_TRUE(xs_unwatch(h1, "/local/domain/1/api", "api"));
    /* libxenstore keeps events already queued for a removed watch (unless the handle was
     * opened with XS_UNWATCH_FILTER): drain them. */
    while (wait_event(h1, path, sizeof(path), 200) == 0)
        ;
}

#define INC_THREADS 4
#define INC_EACH 150

struct inc_arg {
    struct xs_handle *h;
    int failures;
    int retries;
};

/* Read-modify-write of one counter in transactions, retried on EAGAIN. */
static void *incrementer(void *p)
{
    struct inc_arg *a = p;
    struct xs_handle *h = a->h;
    for (int i = 0; i < INC_EACH; i++) {
        for (int attempt = 0;; attempt++) {
            xs_transaction_t t = xs_transaction_start(h);
            unsigned len;
            char *v = t ? xs_read(h, t, base_counter, &len) : NULL;
            if (!v) {
                a->failures++;
                break;
            }
            char nv[32];
            int l = snprintf(nv, sizeof(nv), "%ld", strtol(v, NULL, 10) + 1);
            free(v);
            if (!xs_write(h, t, base_counter, nv, (unsigned)l)) {
                a->failures++;
                xs_transaction_end(h, t, true);
                break;
            }
            if (xs_transaction_end(h, t, false))
                break;
            if (errno != EAGAIN || attempt > 10000) {
                a->failures++;
                break;
            }
            a->retries++;
        }
    }
    return NULL;
}

static void test_concurrent_increments_are_atomic(void)
{
    snprintf(base_counter, sizeof(base_counter), "%s/counter", base);
    CU_ASSERT_TRUE_FATAL(xs_write(h0, XBT_NULL, base_counter, "0", 1));
    pthread_t th[INC_THREADS];
    struct inc_arg args[INC_THREADS] = { { NULL, 0, 0 } };
    /* Connections are opened here, not in the threads: open_at() points
     * libxenstore at the socket through the environment, which is
     * process-wide. */
    for (int i = 0; i < INC_THREADS; i++) {
        args[i].h = open_at(sock0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(args[i].h);
    }
    for (int i = 0; i < INC_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, incrementer, &args[i]), 0);
    int failures = 0, retries = 0;
    for (int i = 0; i < INC_THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += args[i].failures;
        retries += args[i].retries;
        xs_close(args[i].h);
    }
    CU_ASSERT_EQUAL(failures, 0);
    unsigned len;
    char *v = xs_read(h0, XBT_NULL, base_counter, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(strtol(v, NULL, 10), INC_THREADS * INC_EACH);
    printf("\n    %d increments, %d EAGAIN retries\n", INC_THREADS * INC_EACH, retries);
    free(v);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_concurrent_increments_are_atomic),
    SX_TEST(test_in_process_api_wakes_watchers),
    SX_TEST(test_conflicting_transactions_one_gets_eagain),
    SX_TEST(test_guest_permissions_through_libxenstore),
    SX_TEST(test_domain_path_and_introduce_release),
    SX_TEST(test_big_directory_falls_back_to_directory_part),
    SX_TEST(test_watches_relative_and_rm),
    SX_TEST(test_bad_paths_are_einval),
};

SX_TEST_MAIN("xs_client", cases, suite_init, suite_clean)
