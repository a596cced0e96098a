/*
 * Test fixture: splitxen's xenstored (xenstored/) running in-process on a thread of its own in
 * a private directory, and a raw xs_wire client over its UNIX sockets: whole messages, any
 * header, any payload, so tests can send what libxenstore never would. A connection to
 * <dir>/socket acts as dom0, one to <dir>/domain/<N>.sock as guest N.
 */
#ifndef SPLITXEN_TEST_XSRAW_H
#define SPLITXEN_TEST_XSRAW_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore_lib.h>

#include "clock.h"
#include "xenstored/xenstored.h"

struct xsenv {
    char dir[128];
    struct sxs *s;
};

static inline void xsenv_stop(struct xsenv *e)
{
    sxs_close(e->s);
    e->s = NULL;
    if (e->dir[0]) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", e->dir);
        e->dir[0] = '\0';
    }
}

/* xenstored in a fresh directory, guests doms[0..n) introduced, running on its thread. */
static inline int xsenv_start(struct xsenv *e, const unsigned *doms, unsigned n)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/sx-xsraw-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(e->dir))
        return -errno;
    int rc = sxs_open(&e->s, e->dir);
    for (unsigned i = 0; !rc && i < n; i++)
        rc = sxs_domain_add(e->s, doms[i]);
    if (!rc)
        rc = sxs_start_thread(e->s);
    if (rc)
        xsenv_stop(e);
    return rc;
}

/* A connection acting as domid: its fd, or -errno. */
static inline int xs_conn(struct xsenv *e, unsigned domid)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (sxs_socket_path(e->s, domid, a.sun_path, sizeof(a.sun_path)))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static inline bool xs_send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return false;
        }
        b += n;
        len -= (size_t)n;
    }
    return true;
}

/* Read exactly len bytes within ms. */
static inline bool xs_recv_all(int fd, void *p, size_t len, int ms)
{
    uint8_t *b = p;
    uint64_t end = sx_now_ms() + (uint64_t)ms;
    while (len) {
        uint64_t now = sx_now_ms();
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
            return false;
        ssize_t n = recv(fd, b, len, 0);
        if (n <= 0)
            return false;
        b += n;
        len -= (size_t)n;
    }
    return true;
}

/* Watch events read while waiting for replies, counted per connection (the last fd). */
static unsigned xs_events_seen;

/* Send one message (header as given, payload p/len); read messages until the reply to it
 * (watch events are counted and skipped). Returns 0 with the reply's payload (NUL-terminated,
 * up to max - 1 bytes) in out, -errno for an XS_ERROR reply, -EPIPE when the connection broke
 * or nothing came within 5 s. */
static inline int xs_msg(int fd, uint32_t type, uint32_t tx, const void *p, uint32_t len,
                         char *out, size_t max)
{
    struct xsd_sockmsg h = { .type = type, .req_id = 0x5a5a, .tx_id = tx, .len = len };
    if (!xs_send_all(fd, &h, sizeof(h)) || (len && !xs_send_all(fd, p, len)))
        return -EPIPE;
    for (;;) {
        struct xsd_sockmsg r;
        static char body[XENSTORE_PAYLOAD_MAX + 1];
        if (!xs_recv_all(fd, &r, sizeof(r), 5000) || r.len > XENSTORE_PAYLOAD_MAX ||
            !xs_recv_all(fd, body, r.len, 5000))
            return -EPIPE;
        body[r.len] = '\0';
        if (r.type == XS_WATCH_EVENT) {
            xs_events_seen++;
            continue;
        }
        if (r.type == XS_ERROR) {
            for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
                if (!strcmp(body, xsd_errors[i].errstring))
                    return -xsd_errors[i].errnum;
            return -EPROTO;
        }
        if (out && max) {
            size_t n = r.len < max - 1 ? r.len : max - 1;
            memcpy(out, body, n);
            out[n] = '\0';
        }
        return 0;
    }
}

/* A message whose payload is the given strings, each NUL-terminated (n of them). */
static inline int xs_strs(int fd, uint32_t type, uint32_t tx, char *out, size_t max, unsigned n,
                          ...)
{
    char buf[XENSTORE_PAYLOAD_MAX + 64];
    size_t len = 0;
    va_list ap;
    va_start(ap, n);
    for (unsigned i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        size_t l = strlen(s) + 1;
        if (len + l > sizeof(buf)) {
            va_end(ap);
            return -E2BIG;
        }
        memcpy(buf + len, s, l);
        len += l;
    }
    va_end(ap);
    return xs_msg(fd, type, tx, buf, (uint32_t)len, out, max);
}

static inline int xs_write_(int fd, uint32_t tx, const char *path, const char *val)
{
    char buf[XENSTORE_PAYLOAD_MAX + 64];
    size_t pl = strlen(path) + 1, vl = strlen(val);
    if (pl + vl > sizeof(buf))
        return -E2BIG;
    memcpy(buf, path, pl);
    memcpy(buf + pl, val, vl);
    return xs_msg(fd, XS_WRITE, tx, buf, (uint32_t)(pl + vl), NULL, 0);
}

static inline int xs_read_(int fd, uint32_t tx, const char *path, char *out, size_t max)
{
    return xs_strs(fd, XS_READ, tx, out, max, 1, path);
}

static inline int xs_rm_(int fd, uint32_t tx, const char *path)
{
    return xs_strs(fd, XS_RM, tx, NULL, 0, 1, path);
}

/* Start a transaction: its id (> 0), or -errno. */
static inline long xs_tx_start_(int fd)
{
    char id[32];
    int rc = xs_strs(fd, XS_TRANSACTION_START, 0, id, sizeof(id), 1, "");
    return rc < 0 ? rc : strtol(id, NULL, 10);
}

static inline int xs_tx_end_(int fd, uint32_t tx, bool commit)
{
    return xs_strs(fd, XS_TRANSACTION_END, tx, NULL, 0, 1, commit ? "T" : "F");
}

/* The daemon's consistency check (XS_CONTROL check, as dom0). */
static inline int xs_check_(int fd)
{
    return xs_strs(fd, XS_CONTROL, 0, NULL, 0, 1, "check");
}

#endif
