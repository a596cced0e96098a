/* The save and migration stream: framing, compression and checksums (stream.h). */
#define SX_LOG_MODULE "stream"
#include "xen-core/stream.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "clock.h"
#include "xen-core/le.h"

#define SXM_MSG_MAGIC 0x50525853u   /* "SXRP" */
#define RD_BUF (256u << 10)


static uint32_t crc(uint32_t c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {   /* zlib's length is an unsigned int */
        unsigned n = len > (1u << 30) ? 1u << 30 : (unsigned)len;
        c = (uint32_t)crc32(c, p, n);
        p += n;
        len -= n;
    }
    return c;
}

const char *sxm_type_name(uint32_t type)
{
    static const char *const names[] = {
        [SXM_REC_DOMAIN] = "DOMAIN", [SXM_REC_CONFIG] = "CONFIG",
        [SXM_REC_XENSTORE] = "XENSTORE", [SXM_REC_PAGES] = "PAGES",
        [SXM_REC_PAGE_ALLOC] = "PAGE_ALLOC", [SXM_REC_GRANTS] = "GRANTS",
        [SXM_REC_EVTCHN] = "EVTCHN", [SXM_REC_END] = "END", [SXM_REC_SYNC] = "SYNC",
    };
    return type > 0 && type <= SXM_REC_MAX ? names[type] : "unknown";
}

/* ------------------------------------------------------------------ writer */

struct sxm_writer {
    int fd;
    int level;
    int err;                    /* first failure: every later call returns -EIO */
    uint32_t crc;               /* of every byte written */
    unsigned skip;              /* records left to store without trying deflate */
    uint64_t bytes, raw, records;
    uint8_t *zbuf;
    size_t zcap;
};

static int write_all(struct sxm_writer *w, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? -errno : -EIO;
            return w->err;
        }
        w->crc = crc(w->crc, p, (size_t)n);
        w->bytes += (uint64_t)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sxm_writer_open(struct sxm_writer **out, int fd, uint32_t flags, int level)
{
    struct sxm_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->fd = fd;
    w->level = level < 0 || level > 9 ? 1 : level;
    w->crc = (uint32_t)crc32(0, NULL, 0);
    uint8_t h[SXM_HDR_SIZE] = { 0 };
    memcpy(h, SXM_MAGIC, 8);
    sxm_put32(h + 8, SXM_VERSION);
    sxm_put32(h + 12, flags);
    sxm_put32(h + 24, crc(0, h, 24));
    int rc = write_all(w, h, sizeof(h));
    if (rc < 0) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int write_record(struct sxm_writer *w, uint32_t type, const void *buf, size_t len)
{
    if (w->err)
        return -EIO;
    if (len > SXM_MAX_PAYLOAD)
        return -EMSGSIZE;
    const void *wire = buf;
    size_t wlen = len;
    uint32_t flags = 0;
    if (len >= 64 && w->skip) {
        w->skip--;
    } else if (len >= 64) {
        uLongf zlen = compressBound((uLong)len);
        if (zlen > w->zcap) {
            uint8_t *nb = realloc(w->zbuf, zlen);
            if (!nb)
                return -ENOMEM;
            w->zbuf = nb;
            w->zcap = zlen;
        }
        if (compress2(w->zbuf, &zlen, buf, (uLong)len, w->level) == Z_OK && zlen < len) {
            wire = w->zbuf;
            wlen = zlen;
            flags = SXM_RF_ZLIB;
        }
        /* Data that deflate cannot shrink by an eighth (random, already compressed) costs it
         * its full time for nothing: store the next records as they are, then try again. */
        if (wlen > len - len / 8)
            w->skip = 16;
    }
    uint8_t h[SXM_REC_HDR_SIZE];
    sxm_put32(h, type);
    sxm_put32(h + 4, flags);
    sxm_put32(h + 8, (uint32_t)len);
    sxm_put32(h + 12, (uint32_t)wlen);
    sxm_put32(h + 16, crc(0, buf, len));
    sxm_put32(h + 20, crc(0, h, 20));
    int rc = write_all(w, h, sizeof(h));
    if (rc == 0 && wlen)
        rc = write_all(w, wire, wlen);
    if (rc == 0) {
        w->raw += len;
        w->records++;
    }
    return rc;
}

int sxm_write(struct sxm_writer *w, uint32_t type, const void *buf, size_t len)
{
    if (type == 0 || type == SXM_REC_END || type > SXM_REC_MAX)
        return -EINVAL;
    return write_record(w, type, buf, len);
}

int sxm_writer_finish(struct sxm_writer *w)
{
    uint8_t end[16] = { 0 };
    sxm_put32(end, w->crc);
    sxm_put64(end + 8, w->records);
    return write_record(w, SXM_REC_END, end, sizeof(end));
}

void sxm_writer_close(struct sxm_writer *w)
{
    if (!w)
        return;
    free(w->zbuf);
    free(w);
}

uint64_t sxm_writer_bytes(const struct sxm_writer *w) { return w->bytes; }
uint64_t sxm_writer_raw_bytes(const struct sxm_writer *w) { return w->raw; }

/* ------------------------------------------------------------------ reader */

struct sxm_reader {
    int fd;
    uint32_t flags;
    uint32_t crc;               /* of every byte consumed */
    uint64_t off, records;
    bool done, allow_trailing;
    uint8_t *in;                /* read buffer: [in_pos, in_len) not consumed */
    size_t in_pos, in_len;
    uint8_t *wire, *raw;
    size_t wire_cap, raw_cap;
    char err[256];
};

static int fail(struct sxm_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct sxm_reader *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* Fill dst with exactly len bytes. 0, -ENODATA at a clean end of input before any byte of it
 * (*got = 0) or within it (*got < len), or the read's -errno. */
static int read_exact(struct sxm_reader *r, void *dst, size_t len, size_t *got)
{
    uint8_t *d = dst;
    *got = 0;
    while (*got < len) {
        if (r->in_pos == r->in_len) {
            ssize_t n;
            do
                n = read(r->fd, r->in, RD_BUF);
            while (n < 0 && errno == EINTR);
            if (n < 0)
                return -errno;
            if (n == 0)
                return -ENODATA;
            r->in_pos = 0;
            r->in_len = (size_t)n;
        }
        size_t k = r->in_len - r->in_pos;
        if (k > len - *got)
            k = len - *got;
        memcpy(d + *got, r->in + r->in_pos, k);
        r->in_pos += k;
        *got += k;
    }
    return 0;
}

static int consume(struct sxm_reader *r, void *dst, size_t len, const char *what)
{
    size_t got;
    int rc = read_exact(r, dst, len, &got);
    if (rc == -ENODATA)
        return fail(r, rc, "truncated: the stream ends %zu bytes into %s (byte %llu; %llu "
                    "records read, no END record)", got, what,
                    (unsigned long long)(r->off + got), (unsigned long long)r->records);
    if (rc < 0)
        return fail(r, rc, "read at byte %llu: %s", (unsigned long long)r->off, strerror(-rc));
    r->crc = crc(r->crc, dst, len);
    r->off += len;
    return 0;
}

int sxm_reader_open(struct sxm_reader **out, int fd, char *err, size_t errlen)
{
    struct sxm_reader *r = calloc(1, sizeof(*r));
    if (!r || !(r->in = malloc(RD_BUF))) {
        free(r);
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->fd = fd;
    r->crc = (uint32_t)crc32(0, NULL, 0);
    uint8_t h[SXM_HDR_SIZE];
    size_t got;
    int rc = read_exact(r, h, sizeof(h), &got);
    if (rc == -ENODATA && memcmp(h, SXM_MAGIC, got < 8 ? got : 8))
        rc = fail(r, -EPROTO, "not a splitxen save image or migration stream (bad magic)");
    else if (rc == -ENODATA)
        rc = fail(r, rc, "truncated: the stream ends %zu bytes into its header", got);
    else if (rc < 0)
        rc = fail(r, rc, "read: %s", strerror(-rc));
    if (rc == 0) {
        r->crc = crc(r->crc, h, sizeof(h));
        r->off = sizeof(h);
    }
    if (rc == 0 && memcmp(h, SXM_MAGIC, 8))
        rc = fail(r, -EPROTO, "not a splitxen save image or migration stream (bad magic)");
    else if (rc == 0 && sxm_get32(h + 24) != crc(0, h, 24))
        rc = fail(r, -EPROTO, "the stream header's checksum does not match");
    else if (rc == 0 && sxm_get32(h + 8) != SXM_VERSION)
        rc = fail(r, -EPROTO, "stream version %u; this splitxen reads version %u",
                  sxm_get32(h + 8), SXM_VERSION);
    else if (rc == 0 && (sxm_get32(h + 12) & ~SXM_F_LIVE))
        rc = fail(r, -EPROTO, "unknown stream flags %#x", sxm_get32(h + 12));
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s", r->err);
        sxm_reader_close(r);
        return rc;
    }
    r->flags = sxm_get32(h + 12);
    *out = r;
    return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    uint8_t *nb = realloc(*buf, need ? need : 1);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = need;
    return 0;
}

int sxm_read(struct sxm_reader *r, uint32_t *type, const void **buf, size_t *len)
{
    if (r->done)
        return 0;
    uint64_t at = r->off;
    uint32_t crc_before = r->crc;
    uint8_t h[SXM_REC_HDR_SIZE];
    char what[64];
    snprintf(what, sizeof(what), "the header of record %llu",
             (unsigned long long)r->records + 1);
    int rc = consume(r, h, sizeof(h), what);
    if (rc < 0)
        return rc;
    uint64_t n = r->records + 1;
    if (sxm_get32(h + 20) != crc(0, h, 20))
        return fail(r, -EPROTO, "record %llu at byte %llu: header checksum does not match",
                    (unsigned long long)n, (unsigned long long)at);
    uint32_t t = sxm_get32(h), fl = sxm_get32(h + 4), raw_len = sxm_get32(h + 8), wire_len = sxm_get32(h + 12);
    const char *tn = sxm_type_name(t);
    if (t == 0 || t > SXM_REC_MAX)
        return fail(r, -EPROTO, "record %llu at byte %llu: unknown type %u",
                    (unsigned long long)n, (unsigned long long)at, t);
    if (fl & ~SXM_RF_ZLIB)
        return fail(r, -EPROTO, "record %llu (%s) at byte %llu: unknown flags %#x",
                    (unsigned long long)n, tn, (unsigned long long)at, fl);
    if (raw_len > SXM_MAX_PAYLOAD || (!(fl & SXM_RF_ZLIB) && wire_len != raw_len) ||
        ((fl & SXM_RF_ZLIB) && (wire_len == 0 || wire_len > compressBound(raw_len))))
        return fail(r, -EPROTO, "record %llu (%s) at byte %llu: lengths %u/%u out of range",
                    (unsigned long long)n, tn, (unsigned long long)at, raw_len, wire_len);
    if (grow(&r->wire, &r->wire_cap, wire_len) || grow(&r->raw, &r->raw_cap, raw_len))
        return fail(r, -ENOMEM, "out of memory for record %llu", (unsigned long long)n);
    snprintf(what, sizeof(what), "record %llu (%s)", (unsigned long long)n, tn);
    rc = consume(r, r->wire, wire_len, what);
    if (rc < 0)
        return rc;
    if (fl & SXM_RF_ZLIB) {
        uLongf out = raw_len;
        if (uncompress(r->raw, &out, r->wire, wire_len) != Z_OK || out != raw_len)
            return fail(r, -EPROTO, "record %llu (%s) at byte %llu: the payload does not "
                        "inflate to its %u bytes", (unsigned long long)n, tn,
                        (unsigned long long)at, raw_len);
    } else if (raw_len) {
        memcpy(r->raw, r->wire, raw_len);
    }
    if (crc(0, r->raw, raw_len) != sxm_get32(h + 16))
        return fail(r, -EPROTO, "record %llu (%s) at byte %llu: payload checksum does not "
                    "match", (unsigned long long)n, tn, (unsigned long long)at);
    if (t == SXM_REC_END) {
        if (raw_len != 16 || sxm_get32(r->raw) != crc_before || sxm_get64(r->raw + 8) != r->records)
            return fail(r, -EPROTO, "END record at byte %llu: the stream's checksum or record "
                        "count does not match (%llu records read)", (unsigned long long)at,
                        (unsigned long long)r->records);
        r->done = true;
        if (!r->allow_trailing) {
            uint8_t extra;
            size_t got;
            rc = read_exact(r, &extra, 1, &got);
            if (rc != -ENODATA)
                return fail(r, rc < 0 ? rc : -EPROTO, "data after the END record at byte %llu",
                            (unsigned long long)r->off);
        }
        return 0;
    }
    r->records++;
    *type = t;
    *buf = r->raw;
    *len = raw_len;
    return 1;
}

const char *sxm_reader_error(const struct sxm_reader *r) { return r->err; }
uint32_t sxm_reader_flags(const struct sxm_reader *r) { return r->flags; }
uint64_t sxm_reader_bytes(const struct sxm_reader *r) { return r->off; }
void sxm_reader_allow_trailing(struct sxm_reader *r, bool allow) { r->allow_trailing = allow; }

void sxm_reader_close(struct sxm_reader *r)
{
    if (!r)
        return;
    free(r->in);
    free(r->wire);
    free(r->raw);
    free(r);
}

/* ------------------------------------------------------------------ messages */

#define MSG_SIZE (4 + 4 + 4 + 4 + 128 + 128 + 4)

int sxm_msg_send(int fd, const struct sxm_msg *m)
{
    uint8_t b[MSG_SIZE] = { 0 };
    sxm_put32(b, SXM_MSG_MAGIC);
    sxm_put32(b + 4, m->code);
    sxm_put32(b + 8, (uint32_t)m->rc);
    sxm_put32(b + 12, m->domid);
    memcpy(b + 16, m->core_path, sizeof(m->core_path));
    memcpy(b + 144, m->text, sizeof(m->text));
    b[143] = b[271] = 0;
    sxm_put32(b + 272, crc(0, b, 272));
    size_t off = 0;
    while (off < sizeof(b)) {
        ssize_t n = write(fd, b + off, sizeof(b) - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        off += (size_t)n;
    }
    return 0;
}

int sxm_msg_recv(int fd, struct sxm_msg *m, int timeout_ms)
{
    uint8_t b[MSG_SIZE];
    size_t off = 0;
    uint64_t deadline = timeout_ms < 0 ? 0 : sx_now_ms() + (uint64_t)timeout_ms;
    while (off < sizeof(b)) {
        int left = -1;
        if (timeout_ms >= 0) {
            uint64_t now = sx_now_ms();
            if (now >= deadline)
                return -ETIMEDOUT;
            left = (int)(deadline - now);
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, b + off, sizeof(b) - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -ECONNRESET : -errno;
        if (n == 0)
            return -ECONNRESET;
        off += (size_t)n;
    }
    if (sxm_get32(b) != SXM_MSG_MAGIC || sxm_get32(b + 272) != crc(0, b, 272))
        return -EPROTO;
    memset(m, 0, sizeof(*m));
    m->code = sxm_get32(b + 4);
    m->rc = (int32_t)sxm_get32(b + 8);
    m->domid = sxm_get32(b + 12);
    memcpy(m->core_path, b + 16, sizeof(m->core_path));
    memcpy(m->text, b + 144, sizeof(m->text));
    m->core_path[sizeof(m->core_path) - 1] = 0;
    m->text[sizeof(m->text) - 1] = 0;
    return 0;
}
