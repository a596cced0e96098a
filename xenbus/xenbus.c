/* xenbus helpers over libxenstore: see xenbus.h. */
#define SX_LOG_MODULE "xenbus"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "platform/platform.h"
#include "xenbus/xenbus.h"

#define SX_XB_PATH_MAX (XENSTORE_ABS_PATH_MAX + 1)
#define SX_XB_SWITCH_RETRIES 16

struct xb_watch {
    struct xb_watch *next;
    char *path;
    char *token;
    sx_xenbus_watch_fn *fn;
    sx_xenbus_state_fn *state_fn;
    void *arg;
    char *dir; /* for state watches */
};

struct sx_xenbus {
    struct xs_handle *xs;
    struct xb_watch *watches;
    unsigned wait_seq;
    char err[SX_XB_PATH_MAX + 256];
};

static int neg_errno(void)
{
    return errno ? -errno : -EIO;
}

int sx_xenbus_open(struct sx_xenbus **out, const struct sx_plat *p, const char *xenstored_path)
{
    struct sx_xenbus *xb = calloc(1, sizeof(*xb));
    if (!xb)
        return -ENOMEM;
    int rc = sx_plat_xs_open(p, xenstored_path, &xb->xs);
    if (rc < 0) {
        free(xb);
        return rc;
    }
    /* Create the watch pipe now so sx_xenbus_fd is stable. */
    if (xs_fileno(xb->xs) < 0) {
        xs_close(xb->xs);
        free(xb);
        return -EMFILE;
    }
    *out = xb;
    return 0;
}

static void watch_free(struct xb_watch *w)
{
    free(w->path);
    free(w->token);
    free(w->dir);
    free(w);
}

void sx_xenbus_close(struct sx_xenbus *xb)
{
    if (!xb)
        return;
    while (xb->watches) {
        struct xb_watch *w = xb->watches;
        xb->watches = w->next;
        watch_free(w);
    }
    xs_close(xb->xs);
    free(xb);
}

struct xs_handle *sx_xenbus_xs(struct sx_xenbus *xb)
{
    return xb->xs;
}

int sx_xenbus_fd(struct sx_xenbus *xb)
{
    return xs_fileno(xb->xs);
}

const char *sx_xenbus_last_error(const struct sx_xenbus *xb)
{
    return xb->err;
}

/* ---- states and paths ----------------------------------------------------------------------- */

static const char *const state_names[] = {
    [XenbusStateUnknown] = "Unknown",
    [XenbusStateInitialising] = "Initialising",
    [XenbusStateInitWait] = "InitWait",
    [XenbusStateInitialised] = "Initialised",
    [XenbusStateConnected] = "Connected",
    [XenbusStateClosing] = "Closing",
    [XenbusStateClosed] = "Closed",
    [XenbusStateReconfiguring] = "Reconfiguring",
    [XenbusStateReconfigured] = "Reconfigured",
};
#define N_STATES (int)(sizeof(state_names) / sizeof(state_names[0]))

const char *sx_xenbus_state_name(int state)
{
    return state >= 0 && state < N_STATES ? state_names[state] : "Invalid";
}

/* Strict decimal: digits only, no sign or space, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sx_xenbus_state_parse(const char *s, enum xenbus_state *out)
{
    uint64_t v;
    if (!parse_u64(s, &v)) {
        if (v >= (uint64_t)N_STATES)
            return -EINVAL;
        *out = (enum xenbus_state)v;
        return 0;
    }
    for (int i = 0; s && i < N_STATES; i++) {
        if (!strcasecmp(s, state_names[i])) {
            *out = (enum xenbus_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

static bool valid_type(const char *type)
{
    if (!type || !*type)
        return false;
    for (const char *p = type; *p; p++)
        if (*p == '/' || !(strchr("-_@", *p) || (*p >= 'a' && *p <= 'z') ||
                           (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

int sx_xenbus_backend_path(char *buf, size_t len, unsigned be, const char *type, unsigned fe,
                           unsigned devid)
{
    if (!valid_type(type))
        return -EINVAL;
    int r = snprintf(buf, len, "/local/domain/%u/backend/%s/%u/%u", be, type, fe, devid);
    return (r < 0 || (size_t)r >= len) ? -ENAMETOOLONG : 0;
}

int sx_xenbus_frontend_path(char *buf, size_t len, unsigned fe, const char *type,
                            unsigned devid)
{
    if (!valid_type(type))
        return -EINVAL;
    int r = snprintf(buf, len, "/local/domain/%u/device/%s/%u", fe, type, devid);
    return (r < 0 || (size_t)r >= len) ? -ENAMETOOLONG : 0;
}

/* ---- keys ----------------------------------------------------------------------------------- */

static int join(char *buf, const char *dir, const char *key)
{
    int r = (key && *key) ? snprintf(buf, SX_XB_PATH_MAX, "%s/%s", dir, key)
                          : snprintf(buf, SX_XB_PATH_MAX, "%s", dir);
    return (r < 0 || r >= SX_XB_PATH_MAX) ? -ENAMETOOLONG : 0;
}

int sx_xenbus_read(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key,
                   char **val, unsigned *len)
{
    char path[SX_XB_PATH_MAX];
    int rc = join(path, dir, key);
    if (rc)
        return rc;
    unsigned l;
    errno = 0;
    char *v = xs_read(xb->xs, t, path, &l);
    if (!v)
        return neg_errno();
    *val = v;
    if (len)
        *len = l;
    return 0;
}

int sx_xenbus_read_str(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                       const char *key, char *buf, size_t size)
{
    char *v;
    unsigned len;
    int rc = sx_xenbus_read(xb, t, dir, key, &v, &len);
    if (rc)
        return rc;
    if (memchr(v, '\0', len))
        rc = -EINVAL;
    else if ((size_t)len >= size)
        rc = -E2BIG;
    else
        memcpy(buf, v, (size_t)len + 1);
    free(v);
    return rc;
}

int sx_xenbus_read_uint(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                        const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[32];
    int rc = sx_xenbus_read_str(xb, t, dir, key, buf, sizeof(buf));
    if (rc == -E2BIG)
        return -EINVAL; /* no in-range decimal is that long */
    if (rc)
        return rc;
    uint64_t v;
    if (parse_u64(buf, &v) || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int sx_xenbus_write(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key,
                    const char *val)
{
    char path[SX_XB_PATH_MAX];
    int rc = join(path, dir, key);
    if (rc)
        return rc;
    errno = 0;
    return xs_write(xb->xs, t, path, val, (unsigned)strlen(val)) ? 0 : neg_errno();
}

int sx_xenbus_printf(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                     const char *key, const char *fmt, ...)
{
    char val[XENSTORE_PAYLOAD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof(val))
        return -E2BIG;
    return sx_xenbus_write(xb, t, dir, key, val);
}

int sx_xenbus_rm(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key)
{
    char path[SX_XB_PATH_MAX];
    int rc = join(path, dir, key);
    if (rc)
        return rc;
    errno = 0;
    return xs_rm(xb->xs, t, path) ? 0 : neg_errno();
}

int sx_xenbus_rm_if(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                    bool (*match)(const char *key))
{
    unsigned num = 0;
    errno = 0;
    char **ents = xs_directory(xb->xs, t, dir, &num);
    if (!ents)
        return errno == ENOENT ? 0 : neg_errno();
    int rc = 0;
    for (unsigned i = 0; i < num && rc == 0; i++) {
        if (!match(ents[i]))
            continue;
        rc = sx_xenbus_rm(xb, t, dir, ents[i]);
        if (rc == -ENOENT)
            rc = 0;
    }
    free(ents);
    return rc;
}

int sx_xenbus_exists(struct sx_xenbus *xb, xs_transaction_t t, const char *dir, const char *key)
{
    char *v;
    int rc = sx_xenbus_read(xb, t, dir, key, &v, NULL);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    free(v);
    return 1;
}

int sx_xenbus_transaction_start(struct sx_xenbus *xb, xs_transaction_t *t)
{
    errno = 0;
    xs_transaction_t id = xs_transaction_start(xb->xs);
    if (id == XBT_NULL)
        return neg_errno();
    *t = id;
    return 0;
}

int sx_xenbus_transaction_end(struct sx_xenbus *xb, xs_transaction_t t, bool abort)
{
    errno = 0;
    return xs_transaction_end(xb->xs, t, abort) ? 0 : neg_errno();
}

/* ---- state machine -------------------------------------------------------------------------- */

int sx_xenbus_read_state(struct sx_xenbus *xb, xs_transaction_t t, const char *dir,
                         enum xenbus_state *out)
{
    char buf[16];
    int rc = sx_xenbus_read_str(xb, t, dir, "state", buf, sizeof(buf));
    if (rc == -ENOENT) {
        *out = XenbusStateUnknown;
        return 0;
    }
    if (rc == -E2BIG)
        return -EINVAL;
    if (rc)
        return rc;
    uint64_t v;
    if (parse_u64(buf, &v) || v >= (uint64_t)N_STATES)
        return -EINVAL;
    *out = (enum xenbus_state)v;
    return 0;
}

int sx_xenbus_switch_state(struct sx_xenbus *xb, const char *dir, enum xenbus_state state)
{
    if ((int)state < 0 || (int)state >= N_STATES)
        return -EINVAL;
    for (int attempt = 0; attempt < SX_XB_SWITCH_RETRIES; attempt++) {
        xs_transaction_t t;
        int rc = sx_xenbus_transaction_start(xb, &t);
        if (rc)
            return rc;
        char buf[16];
        uint64_t cur;
        rc = sx_xenbus_read_str(xb, t, dir, "state", buf, sizeof(buf));
        if (!rc && !parse_u64(buf, &cur) && cur == (uint64_t)state) {
            sx_xenbus_transaction_end(xb, t, true);
            return 0;
        }
        if (!rc || rc == -E2BIG || rc == -EINVAL) /* a garbage value is overwritten */
            rc = sx_xenbus_printf(xb, t, dir, "state", "%d", (int)state);
        if (rc) {
            sx_xenbus_transaction_end(xb, t, true);
            return rc;
        }
        rc = sx_xenbus_transaction_end(xb, t, false);
        if (rc != -EAGAIN)
            return rc;
    }
    return -EAGAIN;
}

/* ---- watches -------------------------------------------------------------------------------- */

static struct xb_watch *find_token(struct sx_xenbus *xb, const char *token)
{
    for (struct xb_watch *w = xb->watches; w; w = w->next)
        if (!strcmp(w->token, token))
            return w;
    return NULL;
}

static int add_watch(struct sx_xenbus *xb, const char *path, const char *token,
                     sx_xenbus_watch_fn *fn, sx_xenbus_state_fn *sfn, const char *dir, void *arg)
{
    if (find_token(xb, token))
        return -EEXIST;
    struct xb_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->path = strdup(path);
    w->token = strdup(token);
    w->dir = dir ? strdup(dir) : NULL;
    if (!w->path || !w->token || (dir && !w->dir)) {
        watch_free(w);
        return -ENOMEM;
    }
    w->fn = fn;
    w->state_fn = sfn;
    w->arg = arg;
    errno = 0;
    if (!xs_watch(xb->xs, path, token)) {
        int rc = neg_errno();
        watch_free(w);
        return rc;
    }
    w->next = xb->watches;
    xb->watches = w;
    return 0;
}

int sx_xenbus_watch(struct sx_xenbus *xb, const char *path, const char *token,
                    sx_xenbus_watch_fn *fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    return add_watch(xb, path, token, fn, NULL, NULL, arg);
}

int sx_xenbus_watch_state(struct sx_xenbus *xb, const char *dir, const char *token,
                          sx_xenbus_state_fn *fn, void *arg)
{
    char path[SX_XB_PATH_MAX];
    int rc = join(path, dir, "state");
    if (rc)
        return rc;
    if (!fn)
        return -EINVAL;
    return add_watch(xb, path, token, NULL, fn, dir, arg);
}

int sx_xenbus_unwatch(struct sx_xenbus *xb, const char *token)
{
    for (struct xb_watch **pp = &xb->watches; *pp; pp = &(*pp)->next) {
        struct xb_watch *w = *pp;
        if (strcmp(w->token, token))
            continue;
        *pp = w->next;
        errno = 0;
        int rc = xs_unwatch(xb->xs, w->path, w->token) ? 0 : neg_errno();
        watch_free(w);
        return rc;
    }
    return -ENOENT;
}

/* Run the callback for one event; the table may change under the callback. */
static void deliver(struct sx_xenbus *xb, const char *path, const char *token)
{
    struct xb_watch *w = find_token(xb, token);
    if (!w)
        return; /* unwatched meanwhile */
    if (w->fn) {
        w->fn(w->arg, path, token);
        return;
    }
    sx_xenbus_state_fn *sfn = w->state_fn;
    void *arg = w->arg;
    char *dir = strdup(w->dir);
    if (!dir)
        return;
    enum xenbus_state st;
    int rc = sx_xenbus_read_state(xb, XBT_NULL, dir, &st);
    sfn(arg, dir, rc ? rc : (int)st);
    free(dir);
}

int sx_xenbus_dispatch(struct sx_xenbus *xb, int timeout_ms)
{
    int n = 0;
    struct pollfd pfd = { .fd = xs_fileno(xb->xs), .events = POLLIN };
    if (pfd.fd < 0)
        return -ENOTCONN;
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0)
        return errno == EINTR ? 0 : -errno;
    for (;;) {
        errno = 0;
        char **vec = xs_check_watch(xb->xs);
        if (!vec) {
            if (errno == EAGAIN || errno == 0)
                return n;
            return n ? n : -ENOTCONN;
        }
        deliver(xb, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
        free(vec);
        n++;
    }
}

static void wait_cb(void *arg, const char *path, const char *token)
{
    (void)path;
    (void)token;
    (*(unsigned *)arg)++;
}

int sx_xenbus_wait_state(struct sx_xenbus *xb, const char *dir, enum xenbus_state want,
                         int timeout_ms, enum xenbus_state *seen)
{
    char path[SX_XB_PATH_MAX], token[64];
    int rc = join(path, dir, "state");
    if (rc)
        return rc;
    snprintf(token, sizeof(token), "sx-xenbus-wait-%u", xb->wait_seq++);
    unsigned fired = 0;
    rc = sx_xenbus_watch(xb, path, token, wait_cb, &fired);
    if (rc)
        return rc;
    long long deadline = timeout_ms < 0 ? -1 : (long long)sx_now_ms() + timeout_ms;
    enum xenbus_state st = XenbusStateUnknown;
    int last_err = 0;
    for (;;) {
        last_err = sx_xenbus_read_state(xb, XBT_NULL, dir, &st);
        if (!last_err && st == want) {
            rc = 0;
            break;
        }
        long long left = deadline < 0 ? -1 : deadline - (long long)sx_now_ms();
        if (deadline >= 0 && left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = sx_xenbus_dispatch(xb, left > 1000 || left < 0 ? 1000 : (int)left);
        if (rc < 0)
            break;
    }
    sx_xenbus_unwatch(xb, token);
    if (seen)
        *seen = st;
    if (rc) {
        snprintf(xb->err, sizeof(xb->err),
                 "%s waiting for %s to become %d (%s); last seen %s%s",
                 rc == -ETIMEDOUT ? "timed out" : strerror(-rc), path, (int)want,
                 sx_xenbus_state_name(want),
                 last_err ? "an unreadable value: " : sx_xenbus_state_name(st),
                 last_err ? strerror(-last_err) : "");
        sx_warn("%s", xb->err);
    }
    return rc;
}
