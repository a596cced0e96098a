/*
 * xenbus helpers against the sim xenstored, run in-process on a private thread (a temp dir of
 * sockets), through the real libxenstore.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/sxtest.h"
#include "xenstored/xenstored.h"
#include "xenbus/xenbus.h"

static struct sxs *srv;
static char dir[256];
static char sock0[512], sock1[512];
static struct sx_xenbus *xb0;  /* dom0 */
static struct sx_xenbus *xb1;  /* guest 1 */

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sx-xenbus-test.%d", (int)getpid());
    if (sxs_open(&srv, dir) || sxs_domain_add(srv, 1) || sxs_start_thread(srv))
        return 1;
    sxs_socket_path(srv, 0, sock0, sizeof(sock0));
    sxs_socket_path(srv, 1, sock1, sizeof(sock1));
    if (sx_xenbus_open(&xb0, NULL, sock0) || sx_xenbus_open(&xb1, NULL, sock1))
        return 1;
    /* What the toolstack writes before a vbd connects. */
    char fe[128], be[128];
    sx_xenbus_frontend_path(fe, sizeof(fe), 1, "vbd", 51712);
    sx_xenbus_backend_path(be, sizeof(be), 0, "vbd", 1, 51712);
    struct xs_permissions fe_perms[2] = { { 1, XS_PERM_NONE }, { 0, XS_PERM_READ } };
    struct xs_permissions be_perms[2] = { { 0, XS_PERM_NONE }, { 1, XS_PERM_READ } };
    struct xs_handle *xs = sx_xenbus_xs(xb0);
    if (sx_xenbus_write(xb0, XBT_NULL, fe, "state", "1") ||
        sx_xenbus_write(xb0, XBT_NULL, be, "state", "1") ||
        !xs_set_permissions(xs, XBT_NULL, fe, fe_perms, 2) ||
        !xs_set_permissions(xs, XBT_NULL, "/local/domain/1", fe_perms, 2) ||
        !xs_set_permissions(xs, XBT_NULL, "/local/domain/1/device", fe_perms, 2) ||
        !xs_set_permissions(xs, XBT_NULL, "/local/domain/1/device/vbd", fe_perms, 2) ||
        !xs_set_permissions(xs, XBT_NULL, be, be_perms, 2))
        return 1;
    char p[256];
    snprintf(p, sizeof(p), "%s/state", fe);
    if (!xs_set_permissions(xs, XBT_NULL, p, fe_perms, 2))
        return 1;
    snprintf(p, sizeof(p), "%s/state", be);
    if (!xs_set_permissions(xs, XBT_NULL, p, be_perms, 2))
        return 1;
    return 0;
}

static int suite_clean(void)
{
    sx_xenbus_close(xb0);
    sx_xenbus_close(xb1);
    sxs_close(srv);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static const char *FE = "/local/domain/1/device/vbd/51712";
static const char *BE = "/local/domain/0/backend/vbd/1/51712";

static void test_state_names_and_parse(void)
{
    enum xenbus_state st;
    CU_ASSERT_STRING_EQUAL(sx_xenbus_state_name(XenbusStateConnected), "Connected");
    CU_ASSERT_STRING_EQUAL(sx_xenbus_state_name(XenbusStateInitWait), "InitWait");
    CU_ASSERT_STRING_EQUAL(sx_xenbus_state_name(9), "Invalid");
    CU_ASSERT_STRING_EQUAL(sx_xenbus_state_name(-1), "Invalid");
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("4", &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateConnected);
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("closing", &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateClosing);
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("9", &st), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("-1", &st), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("", &st), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_state_parse("Connectedx", &st), -EINVAL);
}

static void test_device_paths(void)
{
    char buf[128];
    CU_ASSERT_EQUAL(sx_xenbus_backend_path(buf, sizeof(buf), 0, "vbd", 1, 51712), 0);
    CU_ASSERT_STRING_EQUAL(buf, "/local/domain/0/backend/vbd/1/51712");
    CU_ASSERT_EQUAL(sx_xenbus_frontend_path(buf, sizeof(buf), 3, "vif", 0), 0);
    CU_ASSERT_STRING_EQUAL(buf, "/local/domain/3/device/vif/0");
    CU_ASSERT_EQUAL(sx_xenbus_frontend_path(buf, 10, 3, "vif", 0), -ENAMETOOLONG);
    CU_ASSERT_EQUAL(sx_xenbus_frontend_path(buf, sizeof(buf), 3, "v/if", 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_backend_path(buf, sizeof(buf), 0, "", 1, 0), -EINVAL);
}

static void test_read_write_printf_rm(void)
{
    char buf[64];
    CU_ASSERT_EQUAL(sx_xenbus_printf(xb0, XBT_NULL, BE, "sectors", "%llu", 131072ULL), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb1, XBT_NULL, BE, "sectors", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "131072");
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb0, XBT_NULL, BE, "sectors"), 1);
    CU_ASSERT_EQUAL(sx_xenbus_rm(xb0, XBT_NULL, BE, "sectors"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb0, XBT_NULL, BE, "sectors"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, BE, "sectors", buf, sizeof(buf)), -ENOENT);
    /* The frontend writes in its own directory, relative paths work too. */
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, "device/vbd/51712", "ring-ref", "8"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, FE, "ring-ref", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "8");
    /* Permissions hold: the guest may not write the backend's directory. */
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, BE, "evil", "1"), -EACCES);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb0, XBT_NULL, "/local/domain/0/private", NULL, "p"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb1, XBT_NULL, "/local/domain/0/private", NULL, buf,
                                       sizeof(buf)), -EACCES);
    /* Strings: too long for the buffer, or holding a NUL. */
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, FE, "protocol", "x86_64-abi"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, FE, "protocol", buf, 10), -E2BIG);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, FE, "protocol", buf, 11), 0);
    CU_ASSERT_TRUE(xs_write(sx_xenbus_xs(xb1), XBT_NULL, "device/vbd/51712/nul", "a\0b", 3));
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, FE, "nul", buf, sizeof(buf)), -EINVAL);
}

static bool is_ring_key(const char *k) { return !strncmp(k, "ring-ref", 8); }

static void test_rm_if_removes_only_matching_keys(void)
{
    const char *d = "device/vbd/51712/rm-if";
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, d, "ring-ref0", "8"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, d, "ring-ref1", "9"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, d, "keep", "1"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_rm_if(xb1, XBT_NULL, d, is_ring_key), 0);
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb1, XBT_NULL, d, "ring-ref0"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb1, XBT_NULL, d, "ring-ref1"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb1, XBT_NULL, d, "keep"), 1);
    /* Nothing to remove, or no directory at all: not an error. */
    CU_ASSERT_EQUAL(sx_xenbus_rm_if(xb1, XBT_NULL, d, is_ring_key), 0);
    CU_ASSERT_EQUAL(sx_xenbus_rm_if(xb1, XBT_NULL, "device/vbd/9", is_ring_key), 0);
    /* A directory it may not list. */
    CU_ASSERT_EQUAL(sx_xenbus_rm_if(xb1, XBT_NULL, "/local/domain/0/private", is_ring_key),
                    -EACCES);
    CU_ASSERT_EQUAL(sx_xenbus_rm(xb1, XBT_NULL, d, NULL), 0);
}

static void test_read_uint_rejects_hostile_values(void)
{
    static const char *bad[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1e3", "12a",
                                 "18446744073709551616", "99999999999999999999999999999" };
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(sx_xenbus_write(xb1, XBT_NULL, FE, "event-channel", bad[i]), 0);
        CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "event-channel", 0, UINT64_MAX,
                                            &v), -EINVAL);
    }
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, FE, "event-channel", "18446744073709551615"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "event-channel", 0, UINT64_MAX, &v), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, FE, "event-channel", "0008"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "event-channel", 1, 4095, &v), 0);
    CU_ASSERT_EQUAL(v, 8);
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "event-channel", 9, 4095, &v), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "event-channel", 0, 7, &v), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_read_uint(xb0, XBT_NULL, FE, "missing", 0, 7, &v), -ENOENT);
}

static void count(void *arg, const char *path, const char *token)
{
    (void)path;
    (void)token;
    (*(unsigned *)arg)++;
}

static void test_switch_state_writes_only_changes(void)
{
    enum xenbus_state st;
    unsigned events = 0;
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb0, BE, XenbusStateInitWait), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb1, XBT_NULL, BE, &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateInitWait);
    char buf[8];
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, BE, "state", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "2");
    /* A watcher sees the initial event and one per real change, none for a no-op switch. */
    CU_ASSERT_EQUAL(sx_xenbus_watch(xb1, "/local/domain/0/backend/vbd/1/51712/state", "cnt",
                                    count, &events), 0);
    while (sx_xenbus_dispatch(xb1, 200) > 0)
        ;
    CU_ASSERT_EQUAL(events, 1);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb0, BE, XenbusStateInitWait), 0);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb0, BE, XenbusStateConnected), 0);
    while (sx_xenbus_dispatch(xb1, 200) > 0)
        ;
    CU_ASSERT_EQUAL(events, 2);
    CU_ASSERT_EQUAL(sx_xenbus_unwatch(xb1, "cnt"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_unwatch(xb1, "cnt"), -ENOENT);
    /* Garbage in state reads as -EINVAL and is overwritten by a switch. */
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, XBT_NULL, FE, "state", "banana"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb0, XBT_NULL, FE, &st), -EINVAL);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb1, FE, XenbusStateInitialising), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb0, XBT_NULL, FE, &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateInitialising);
    /* A removed device is not recreated; a missing state reads as Unknown. */
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb0, "/local/domain/0/backend/vbd/1/999",
                                           XenbusStateClosed), -ENOENT);
    CU_ASSERT_EQUAL(sx_xenbus_exists(xb0, XBT_NULL, "/local/domain/0/backend/vbd/1/999", NULL), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_state(xb0, XBT_NULL, "/local/domain/0/backend/vbd/1/999", &st), 0);
    CU_ASSERT_EQUAL(st, XenbusStateUnknown);
}

struct seen {
    int n;
    int last;
};

static void on_state(void *arg, const char *d, int state)
{
    struct seen *s = arg;
    (void)d;
    s->n++;
    s->last = state;
}

static void test_watch_state_dispatches_by_token(void)
{
    struct seen a = { 0, -1 }, b = { 0, -1 };
    CU_ASSERT_EQUAL(sx_xenbus_watch_state(xb0, FE, "fe-state", on_state, &a), 0);
    CU_ASSERT_EQUAL(sx_xenbus_watch_state(xb0, BE, "be-state", on_state, &b), 0);
    CU_ASSERT_EQUAL(sx_xenbus_watch_state(xb0, BE, "be-state", on_state, &b), -EEXIST);
    while (sx_xenbus_dispatch(xb0, 200) > 0)
        ;
    CU_ASSERT_EQUAL(a.n, 1);
    CU_ASSERT_EQUAL(b.n, 1);
    CU_ASSERT_EQUAL(a.last, XenbusStateInitialising);
    CU_ASSERT_EQUAL(sx_xenbus_switch_state(xb1, FE, XenbusStateInitialised), 0);
    while (sx_xenbus_dispatch(xb0, 200) > 0)
        ;
    CU_ASSERT_EQUAL(a.n, 2);
    CU_ASSERT_EQUAL(a.last, XenbusStateInitialised);
    CU_ASSERT_EQUAL(b.n, 1);
    CU_ASSERT_EQUAL(sx_xenbus_unwatch(xb0, "fe-state"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_unwatch(xb0, "be-state"), 0);
}

static void *switch_later(void *arg)
{
    (void)arg;
    usleep(100 * 1000);
    sx_xenbus_switch_state(xb1, FE, XenbusStateConnected);
    return NULL;
}

static void test_wait_state_and_timeout_names_path(void)
{
    pthread_t t;
    enum xenbus_state seen;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, switch_later, NULL), 0);
    CU_ASSERT_EQUAL(sx_xenbus_wait_state(xb0, FE, XenbusStateConnected, 5000, &seen), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(seen, XenbusStateConnected);
    CU_ASSERT_EQUAL(sx_xenbus_wait_state(xb0, FE, XenbusStateClosed, 200, &seen), -ETIMEDOUT);
    CU_ASSERT_EQUAL(seen, XenbusStateConnected);
    CU_ASSERT_PTR_NOT_NULL(strstr(sx_xenbus_last_error(xb0),
                                  "/local/domain/1/device/vbd/51712/state"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sx_xenbus_last_error(xb0), "Closed"));
}

static void test_conflicting_transactions_eagain(void)
{
    xs_transaction_t t0, t1;
    char buf[16];
    CU_ASSERT_EQUAL(sx_xenbus_transaction_start(xb0, &t0), 0);
    CU_ASSERT_EQUAL(sx_xenbus_transaction_start(xb1, &t1), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, t0, FE, "ring-ref", buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb1, t1, FE, "ring-ref", buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb1, t1, FE, "ring-ref", "9"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_write(xb0, t0, FE, "ring-ref", "10"), 0);
    CU_ASSERT_EQUAL(sx_xenbus_transaction_end(xb1, t1, false), 0);
    CU_ASSERT_EQUAL(sx_xenbus_transaction_end(xb0, t0, false), -EAGAIN);
    CU_ASSERT_EQUAL(sx_xenbus_read_str(xb0, XBT_NULL, FE, "ring-ref", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "9");
}

static void test_open_fails_cleanly_without_daemon(void)
{
    struct sx_xenbus *x = NULL;
    char p[600];
    snprintf(p, sizeof(p), "%s/no-such.sock", dir);
    setenv("XENSTORED_PATH", "/before", 1);
    CU_ASSERT_NOT_EQUAL(sx_xenbus_open(&x, NULL, p), 0);
    CU_ASSERT_PTR_NULL(x);
    CU_ASSERT_STRING_EQUAL(getenv("XENSTORED_PATH"), "/before"); /* restored */
    unsetenv("XENSTORED_PATH");
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_state_names_and_parse),
    SX_TEST(test_device_paths),
    SX_TEST(test_read_write_printf_rm),
    SX_TEST(test_read_uint_rejects_hostile_values),
    SX_TEST(test_rm_if_removes_only_matching_keys),
    SX_TEST(test_switch_state_writes_only_changes),
    SX_TEST(test_watch_state_dispatches_by_token),
    SX_TEST(test_wait_state_and_timeout_names_path),
    SX_TEST(test_conflicting_transactions_eagain),
    SX_TEST(test_open_fails_cleanly_without_daemon),
};

SX_TEST_MAIN("xenbus", cases, suite_init, suite_clean)
