/* sx_notify_ready / sx_notify_stopping: what reaches a NOTIFY_SOCKET, and what they return
 * without one or with one nobody listens on. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "tests/sxtest.h"

static char dir[64];
static char sock_path[96];
static int sock = -1;

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sx-notify-%d", (int)getpid());
    if (mkdir(dir, 0700) < 0)
        return 1;
    snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", dir);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return sock >= 0 && bind(sock, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : 1;
}

static int teardown(void)
{
    if (sock >= 0)
        close(sock);
    unlink(sock_path);
    return rmdir(dir) == 0 ? 0 : 1;
}

/* The next datagram on the test's socket, NUL-terminated, or "" after a 5 s deadline. */
static const char *next_message(void)
{
    static char buf[512];
    struct pollfd p = { .fd = sock, .events = POLLIN };
    buf[0] = '\0';
    if (poll(&p, 1, 5000) == 1) {
        ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

static void test_ready_and_stopping_reach_the_notify_socket(void)
{
    setenv("NOTIFY_SOCKET", sock_path, 1);
    CU_ASSERT_EQUAL(sx_notify_ready("serving dom%u (%u devices)", 5u, 2u), 0);
    CU_ASSERT_STRING_EQUAL(next_message(), "READY=1\nSTATUS=serving dom5 (2 devices)");
    CU_ASSERT_EQUAL(sx_notify_stopping(), 0);
    CU_ASSERT_STRING_EQUAL(next_message(), "STOPPING=1\nSTATUS=stopping");
    unsetenv("NOTIFY_SOCKET");
}

/* A status longer than the helper's buffer is cut, and READY=1 still goes first. */
static void test_long_status_is_cut_not_dropped(void)
{
    char longer[1000];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    setenv("NOTIFY_SOCKET", sock_path, 1);
    CU_ASSERT_EQUAL(sx_notify_ready("%s", longer), 0);
    const char *m = next_message();
    CU_ASSERT_EQUAL(strncmp(m, "READY=1\nSTATUS=xxx", 18), 0);
    CU_ASSERT(strlen(m) > 100 && strlen(m) < sizeof(longer));
    unsetenv("NOTIFY_SOCKET");
}

/* Started outside systemd: nothing to tell, nothing sent, not an error. */
static void test_without_notify_socket_nothing_is_sent(void)
{
    unsetenv("NOTIFY_SOCKET");
    CU_ASSERT_EQUAL(sx_notify_ready("serving"), 0);
    CU_ASSERT_EQUAL(sx_notify_stopping(), 0);
    struct pollfd p = { .fd = sock, .events = POLLIN };
    CU_ASSERT_EQUAL(poll(&p, 1, 0), 0);
}

static void test_socket_nobody_listens_on_is_an_errno(void)
{
    char gone[128];
    snprintf(gone, sizeof(gone), "%s/nobody.sock", dir);
    setenv("NOTIFY_SOCKET", gone, 1);
    int rc = sx_notify_ready("serving");
    CU_ASSERT(rc == -ENOENT || rc == -ECONNREFUSED);
    CU_ASSERT(sx_notify_stopping() < 0);
    unsetenv("NOTIFY_SOCKET");
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_ready_and_stopping_reach_the_notify_socket),
    SX_TEST(test_long_status_is_cut_not_dropped),
    SX_TEST(test_without_notify_socket_nothing_is_sent),
    SX_TEST(test_socket_nobody_listens_on_is_an_errno),
};

SX_TEST_MAIN("notify", cases, setup, teardown)
