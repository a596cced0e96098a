/*
 * Network targets: a target string -> which engine serves it and with what options
 * (sx_bio_spec_parse), and the target handle that checks the target once and hands each engine
 * opened on it the parsed spec (rbd.c, nbd.c connect and serve). Syntax in blkio.h.
 *
 * Every error names the part of the spec at fault, so a vbd that fails says which key to fix:
 *     rbd: option 'rados_osd_op_timeot': missing '=VALUE'
 *     nbd: port: '99999' is not a port number
 */
#include "blkio/blkio_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

bool sx_bio_target_is_net(const char *spec)
{
    return spec && (!strncmp(spec, "rbd:", 4) || !strncmp(spec, "nbd://", 6) ||
                    !strncmp(spec, "nbd+unix://", 11) || !strncmp(spec, "nbds://", 7) ||
                    !strncmp(spec, "nbds+unix://", 12));
}

/* Copy [s, s+n) into dst (size cap) or fail naming what. */
static int put(char *dst, size_t cap, const char *s, size_t n, const char *kind,
               const char *what, char *err, size_t errlen)
{
    if (n >= cap)
        return spec_fail(err, errlen, "%s: %s: longer than %zu characters", kind, what,
                         cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* ---- rbd:POOL[/NS]/IMAGE[@SNAP][:KEY=VALUE]... ---------------------------------------- */

/* The next ':'-separated field of s (backslash escapes ':' and '\'), unescaped into out.
 * Returns the position after the field (at its ':' or the end), NULL when it does not fit. */
static const char *rbd_field(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s && *s != ':') {
        if (*s == '\\' && (s[1] == ':' || s[1] == '\\'))
            s++;
        if (n + 1 >= cap)
            return NULL;
        out[n++] = *s++;
    }
    out[n] = '\0';
    return s;
}

static int rbd_parse(const char *spec, struct sx_bio_spec *o, char *err, size_t errlen)
{
    char path[512];
    const char *p = rbd_field(spec + 4, path, sizeof(path));
    int rc;

    if (!p)
        return spec_fail(err, errlen, "rbd: pool/image: too long");
    /* POOL/IMAGE or POOL/NAMESPACE/IMAGE, then @SNAP */
    char *at = strchr(path, '@');
    if (at) {
        *at = '\0';
        if (!at[1])
            return spec_fail(err, errlen, "rbd: snapshot: empty after '@'");
        if ((rc = put(o->snap, sizeof(o->snap), at + 1, strlen(at + 1), "rbd", "snapshot", err,
                      errlen)))
            return rc;
    }
    char *s1 = strchr(path, '/');
    if (!path[0] || path[0] == '/')
        return spec_fail(err, errlen, "rbd: pool: missing (rbd:POOL/IMAGE)");
    if (!s1 || !s1[1])
        return spec_fail(err, errlen, "rbd: image: missing (rbd:POOL/IMAGE)");
    char *s2 = strchr(s1 + 1, '/');
    if (s2 && strchr(s2 + 1, '/'))
        return spec_fail(err, errlen, "rbd: image: '%s' has more than POOL/NAMESPACE/IMAGE",
                         path);
    if ((rc = put(o->pool, sizeof(o->pool), path, (size_t)(s1 - path), "rbd", "pool", err,
                  errlen)))
        return rc;
    const char *img = s1 + 1;
    if (s2) {
        if (s2 == s1 + 1)
            return spec_fail(err, errlen, "rbd: namespace: empty");
        if ((rc = put(o->ns, sizeof(o->ns), s1 + 1, (size_t)(s2 - s1 - 1), "rbd", "namespace",
                      err, errlen)))
            return rc;
        img = s2 + 1;
        if (!*img)
            return spec_fail(err, errlen, "rbd: image: missing (rbd:POOL/NAMESPACE/IMAGE)");
    }
    if ((rc = put(o->image, sizeof(o->image), img, strlen(img), "rbd", "image", err, errlen)))
        return rc;
    snprintf(o->name, sizeof(o->name), "rbd:%s/%s%s%s%s%s", o->pool, o->ns, o->ns[0] ? "/" : "",
             o->image, o->snap[0] ? "@" : "", o->snap);

    /* :KEY=VALUE options */
    while (*p == ':') {
        char kv[512];
        p = rbd_field(p + 1, kv, sizeof(kv));
        if (!p)
            return spec_fail(err, errlen, "rbd: option: longer than %zu characters",
                             sizeof(kv) - 1);
        char *eq = strchr(kv, '=');
        if (!kv[0])
            return spec_fail(err, errlen, "rbd: option: empty (a doubled ':'?)");
        if (!eq)
            return spec_fail(err, errlen, "rbd: option '%s': missing '=VALUE'", kv);
        *eq = '\0';
        const char *key = kv, *val = eq + 1;
        if (!key[0])
            return spec_fail(err, errlen, "rbd: option '=%s': missing key", val);
        if (strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- ") !=
            strlen(key))
            return spec_fail(err, errlen, "rbd: option '%s': not a Ceph option name", key);
        if (!strcmp(key, "conf")) {
            if (!val[0])
                return spec_fail(err, errlen, "rbd: option 'conf': empty path");
            if ((rc = put(o->conf, sizeof(o->conf), val, strlen(val), "rbd", "option 'conf'",
                          err, errlen)))
                return rc;
        } else if (!strcmp(key, "id")) {
            if (!val[0])
                return spec_fail(err, errlen, "rbd: option 'id': empty user");
            if ((rc = put(o->id, sizeof(o->id), val, strlen(val), "rbd", "option 'id'", err,
                          errlen)))
                return rc;
        } else {
            if (o->nopts >= SX_BIO_SPEC_MAX_OPTS)
                return spec_fail(err, errlen, "rbd: option '%s': more than %d options", key,
                                 SX_BIO_SPEC_MAX_OPTS);
            char what[96];
            snprintf(what, sizeof(what), "option '%.60s'", key);
            if ((rc = put(o->opt_key[o->nopts], sizeof(o->opt_key[0]), key, strlen(key), "rbd",
                          what, err, errlen)) ||
                (rc = put(o->opt_val[o->nopts], sizeof(o->opt_val[0]), val, strlen(val), "rbd",
                          what, err, errlen)))
                return rc;
            o->nopts++;
        }
    }
    o->kind = SX_BIO_RBD;
    return 0;
}

/* ---- nbd://HOST[:PORT][/EXPORT], nbd+unix:///[EXPORT]?socket=PATH ---------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode [s, s+n) into out. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, const char *what,
                      char *err, size_t errlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return spec_fail(err, errlen, "nbd: %s: bad %%-escape", what);
            c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            if (!c)
                return spec_fail(err, errlen, "nbd: %s: %%00 is not allowed", what);
            i += 2;
        }
        if (k + 1 >= cap)
            return spec_fail(err, errlen, "nbd: %s: longer than %zu characters", what, cap - 1);
        out[k++] = c;
    }
    out[k] = '\0';
    return 0;
}

static int nbd_parse(const char *spec, struct sx_bio_spec *o, char *err, size_t errlen)
{
    int rc;

    if (!strncmp(spec, "nbds://", 7) || !strncmp(spec, "nbds+unix://", 12))
        return spec_fail(err, errlen, "nbd: scheme: TLS (nbds) is not supported");
    o->unix_socket = !strncmp(spec, "nbd+unix://", 11);
    const char *p = spec + (o->unix_socket ? 11 : 6);
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);
    if (strchr(p, '#'))
        return spec_fail(err, errlen, "nbd: fragment: '#' is not allowed in the URI");
    /* authority: up to the first '/' */
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *auth_end = slash ? slash : end;
    if (o->unix_socket) {
        if (auth_end != p)
            return spec_fail(err, errlen, "nbd: host: nbd+unix:// takes no host ('%.*s')",
                             (int)(auth_end - p), p);
    } else {
        const char *h = p, *hend = auth_end, *port = NULL;
        if (h == hend)
            return spec_fail(err, errlen, "nbd: host: missing (nbd://HOST[:PORT]/EXPORT)");
        if (*h == '[') {
            const char *rb = memchr(h, ']', (size_t)(hend - h));
            if (!rb)
                return spec_fail(err, errlen, "nbd: host: '[' without ']'");
            if ((rc = put(o->host, sizeof(o->host), h + 1, (size_t)(rb - h - 1), "nbd", "host",
                          err, errlen)))
                return rc;
            if (rb + 1 < hend && rb[1] != ':')
                return spec_fail(err, errlen, "nbd: host: junk after ']'");
            if (rb + 1 < hend)
                port = rb + 2;
        } else {
            const char *colon = memchr(h, ':', (size_t)(hend - h));
            if ((rc = pct_decode(h, (size_t)((colon ? colon : hend) - h), o->host,
                                 sizeof(o->host), "host", err, errlen)))
                return rc;
            if (colon)
                port = colon + 1;
        }
        if (!o->host[0])
            return spec_fail(err, errlen, "nbd: host: missing (nbd://HOST[:PORT]/EXPORT)");
        if (strchr(o->host, '@'))
            return spec_fail(err, errlen, "nbd: host: user names are not supported");
        snprintf(o->port, sizeof(o->port), "10809");
        if (port) {
            size_t pl = (size_t)(hend - port);
            unsigned long v = 0;
            bool ok = pl > 0 && pl <= 5;
            for (size_t i = 0; ok && i < pl; i++) {
                ok = port[i] >= '0' && port[i] <= '9';
                v = v * 10 + (unsigned long)(port[i] - '0');
            }
            if (!ok || v == 0 || v > 65535)
                return spec_fail(err, errlen, "nbd: port: '%.*s' is not a port number",
                                 (int)pl, port);
            snprintf(o->port, sizeof(o->port), "%lu", v);
        }
    }
    if (slash && (rc = pct_decode(slash + 1, (size_t)(end - slash - 1), o->export_name,
                                  sizeof(o->export_name), "export", err, errlen)))
        return rc;
    /* query: socket= only (nbd+unix), everything else is refused by name */
    while (q && *q) {
        const char *k = q + 1, *amp = strchr(k, '&');
        const char *kend = amp ? amp : k + strlen(k);
        const char *eq = memchr(k, '=', (size_t)(kend - k));
        size_t kl = (size_t)((eq ? eq : kend) - k);
        if (kl == 6 && !strncmp(k, "socket", 6) && o->unix_socket) {
            if (!eq || eq + 1 == kend)
                return spec_fail(err, errlen, "nbd: socket: empty path");
            if ((rc = pct_decode(eq + 1, (size_t)(kend - eq - 1), o->socket, sizeof(o->socket),
                                 "socket", err, errlen)))
                return rc;
        } else if (kl == 6 && !strncmp(k, "socket", 6)) {
            return spec_fail(err, errlen, "nbd: socket: only with nbd+unix://");
        } else if (kl) {
            return spec_fail(err, errlen, "nbd: query key '%.*s': not supported (socket only)",
                             (int)kl, k);
        }
        q = amp;
    }
    if (o->unix_socket && !o->socket[0])
        return spec_fail(err, errlen,
                         "nbd: socket: missing (nbd+unix:///EXPORT?socket=PATH)");
    if (o->unix_socket)
        snprintf(o->name, sizeof(o->name), "nbd+unix:///%s?socket=%s", o->export_name,
                 o->socket);
    else
        snprintf(o->name, sizeof(o->name), "nbd://%s%s%s:%s/%s", strchr(o->host, ':') ? "[" : "",
                 o->host, strchr(o->host, ':') ? "]" : "", o->port, o->export_name);
    o->kind = SX_BIO_NBD;
    return 0;
}

int sx_bio_spec_parse(const char *spec, struct sx_bio_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (!spec)
        return spec_fail(err, errlen, "target: missing");
    if (!strncmp(spec, "rbd:", 4))
        return rbd_parse(spec, out, err, errlen);
    if (sx_bio_target_is_net(spec))
        return nbd_parse(spec, out, err, errlen);
    return spec_fail(err, errlen, "target: '%.200s' is not rbd:, nbd:// or nbd+unix://", spec);
}

/* ---- the target handle ------------------------------------------------------------------ */

int sx_bio_target_check(const char *spec, char *err, size_t errlen)
{
    struct sx_bio_spec *sp = malloc(sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    int rc = sx_bio_spec_parse(spec, sp, err, errlen);
    free(sp);
    return rc;
}

int sx_bio_target_open(struct sx_bio_target **out, const char *spec, bool read_only, char *err,
                       size_t errlen)
{
    struct sx_bio_target *t = calloc(1, sizeof(*t));
    int rc;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    rc = sx_bio_spec_parse(spec, &t->spec, err, errlen);
    if (rc < 0)
        goto fail;
    snprintf(t->info.name, sizeof(t->info.name), "%s", t->spec.name);
    t->info.kind = t->spec.kind;
    if (t->spec.kind == SX_BIO_RBD) {
        t->ops = &sx_bio_rbd_ops;
        rc = sx_bio_rbd_target_open(t, read_only, err, errlen);
    } else {
        t->ops = &sx_bio_nbd_ops;
        rc = sx_bio_nbd_target_open(t, read_only, err, errlen);
    }
    if (rc < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    sx_bio_target_close(t);
    return rc;
}

void sx_bio_target_close(struct sx_bio_target *t)
{
    if (!t)
        return;
    if (t->spec.kind == SX_BIO_RBD)
        sx_bio_rbd_target_close(t);
    free(t);
}

const struct sx_bio_target_info *sx_bio_target_info(const struct sx_bio_target *t)
{
    return &t->info;
}
