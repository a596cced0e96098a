/* A domain's state as stream records: export, checks, import (domstate.h). */
#define SX_LOG_MODULE "stream"
#include "xen-core/domstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "xen-core/le.h"

#define PG SXD_PAGE_SIZE


static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EPROTO;
}

static uint64_t words_of(uint64_t bits) { return (bits + 63) / 64; }

/* ------------------------------------------------------------------ DOMAIN */

#define DOMAIN_LEN (4 * 4 + 8 + 4 * 2 + 64 + 40)

void sxm_domain_info(const struct sxc_dom *d, struct sxm_domain *out)
{
    const struct sxd_shared *sh = d->shared;
    memset(out, 0, sizeof(*out));
    out->domid = d->domid;
    out->type = sh->type;
    out->mem_mb = (uint32_t)(d->mem_size >> 20);
    out->vcpus = sh->vcpus;
    out->nr_pages = sh->nr_pages;
    out->nr_grant = sh->nr_grant;
    out->nr_ports = sh->nr_ports;
    memcpy(out->name, sh->name, sizeof(out->name));
    out->name[sizeof(out->name) - 1] = 0;
}

int sxm_put_domain(struct sxm_writer *w, const struct sxm_domain *in)
{
    uint8_t b[DOMAIN_LEN] = { 0 };
    sxm_put32(b, in->domid);
    sxm_put32(b + 4, in->type);
    sxm_put32(b + 8, in->mem_mb);
    sxm_put32(b + 12, in->vcpus);
    sxm_put64(b + 16, in->nr_pages);
    sxm_put32(b + 24, in->nr_grant);
    sxm_put32(b + 28, in->nr_ports);
    memcpy(b + 32, in->name, 64);
    memcpy(b + 96, in->uuid, 40);
    b[95] = b[135] = 0;
    return sxm_write(w, SXM_REC_DOMAIN, b, sizeof(b));
}

static bool printable(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

int sxm_get_domain(const void *buf, size_t len, struct sxm_domain *out, char *err,
                   size_t errlen)
{
    const uint8_t *b = buf;
    if (len != DOMAIN_LEN)
        return bad(err, errlen, "DOMAIN record of %zu bytes (expected %u)", len, DOMAIN_LEN);
    memset(out, 0, sizeof(*out));
    out->domid = sxm_get32(b);
    out->type = sxm_get32(b + 4);
    out->mem_mb = sxm_get32(b + 8);
    out->vcpus = sxm_get32(b + 12);
    out->nr_pages = sxm_get64(b + 16);
    out->nr_grant = sxm_get32(b + 24);
    out->nr_ports = sxm_get32(b + 28);
    memcpy(out->name, b + 32, 64);
    memcpy(out->uuid, b + 96, 40);
    if (!printable(out->name, sizeof(out->name)) || !out->name[0])
        return bad(err, errlen, "DOMAIN record: the name is not a printable string");
    if (!printable(out->uuid, sizeof(out->uuid)))
        return bad(err, errlen, "DOMAIN record: the uuid is not a printable string");
    if (out->domid == 0 || out->domid >= DOMID_FIRST_RESERVED || out->type > SXD_TYPE_HVM ||
        out->mem_mb == 0 || out->mem_mb > 64 * 1024 || out->vcpus == 0 || out->vcpus > 128)
        return bad(err, errlen, "DOMAIN record: domid %u, type %u, %u MiB, %u vCPUs out of "
                   "range", out->domid, out->type, out->mem_mb, out->vcpus);
    if (out->nr_pages != (uint64_t)out->mem_mb << (20 - 12) ||
        out->nr_grant != SXD_NR_GRANT_DEFAULT || out->nr_ports != SXD_NR_PORTS_DEFAULT)
        return bad(err, errlen, "DOMAIN record: geometry %llu frames, %u grants, %u ports is "
                   "not what this splitxen builds for %u MiB", (unsigned long long)out->nr_pages,
                   out->nr_grant, out->nr_ports, out->mem_mb);
    return 0;
}

/* ------------------------------------------------------------------ PAGES */

struct batch {
    struct sxm_writer *w;
    uint8_t *buf;               /* header, frame list, data */
    uint32_t n, ndata;
    uint64_t frames[SXM_PAGES_PER_RECORD];
    const uint8_t *src[SXM_PAGES_PER_RECORD];
};

static int batch_flush(struct batch *b)
{
    if (!b->n)
        return 0;
    size_t hdr = 8 + 8 * (size_t)b->n;
    sxm_put32(b->buf, b->n);
    sxm_put32(b->buf + 4, 0);
    uint8_t *data = b->buf + hdr;
    for (uint32_t i = 0, k = 0; i < b->n; i++) {
        sxm_put64(b->buf + 8 + 8 * (size_t)i, b->frames[i]);
        if (!(b->frames[i] & SXM_PFN_ZERO))
            memcpy(data + (size_t)k++ * PG, b->src[i], PG);
    }
    int rc = sxm_write(b->w, SXM_REC_PAGES, b->buf, hdr + (size_t)b->ndata * PG);
    b->n = b->ndata = 0;
    return rc;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (unsigned i = 0; i < PG / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* Add a frame; zero frames are sent as such when `send_zero`, else left out. */
static int batch_add(struct batch *b, const struct sxc_dom *d, uint64_t frame, bool send_zero,
                     struct sxm_page_stats *st)
{
    const uint8_t *p = d->mem_ro + frame * PG;
    bool zero = page_is_zero(p);
    if (zero && !send_zero) {
        st->skipped++;
        return 0;
    }
    b->frames[b->n] = frame | (zero ? SXM_PFN_ZERO : 0);
    b->src[b->n] = p;
    b->n++;
    if (zero)
        st->zero++;
    else {
        b->ndata++;
        st->pages++;
    }
    return b->n == SXM_PAGES_PER_RECORD ? batch_flush(b) : 0;
}

static int batch_open(struct batch *b, struct sxm_writer *w)
{
    memset(b, 0, sizeof(*b));
    b->w = w;
    b->buf = malloc(8 + 8 * SXM_PAGES_PER_RECORD + (size_t)SXM_PAGES_PER_RECORD * PG);
    return b->buf ? 0 : -ENOMEM;
}

int sxm_put_all_pages(struct sxm_writer *w, const struct sxc_dom *d, struct sxm_page_stats *st)
{
    struct batch b;
    int rc = batch_open(&b, w);
    if (rc < 0)
        return rc;
    uint64_t nr = d->shared->nr_pages, f = 0;
    while (rc == 0 && f < nr) {
        /* Only the parts of the memfd that were ever written hold anything. */
        off_t data = lseek(d->mem_fd, (off_t)(f * PG), SEEK_DATA);
        if (data < 0)
            break;      /* ENXIO: no data from here on */
        off_t hole = lseek(d->mem_fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = (off_t)(nr * PG);
        uint64_t a = (uint64_t)data / PG, e = ((uint64_t)hole + PG - 1) / PG;
        st->skipped += a - f;
        for (f = a; rc == 0 && f < e && f < nr; f++)
            rc = batch_add(&b, d, f, false, st);
    }
    if (rc == 0 && f < nr)
        st->skipped += nr - f;
    if (rc == 0)
        rc = batch_flush(&b);
    free(b.buf);
    return rc;
}

int sxm_put_dirty_pages(struct sxm_writer *w, const struct sxc_dom *d, const uint64_t *bitmap,
                        struct sxm_page_stats *st)
{
    struct batch b;
    int rc = batch_open(&b, w);
    if (rc < 0)
        return rc;
    uint64_t nr = d->shared->nr_pages;
    for (uint64_t wi = 0; rc == 0 && wi < words_of(nr); wi++) {
        uint64_t bits = bitmap[wi];
        while (rc == 0 && bits) {
            uint64_t f = wi * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (f < nr)
                rc = batch_add(&b, d, f, true, st);
        }
    }
    if (rc == 0)
        rc = batch_flush(&b);
    free(b.buf);
    return rc;
}

uint64_t sxm_mark_pinned(const struct sxc_dom *d, uint64_t *bitmap)
{
    struct sxd_shared *sh = d->shared;
    const struct sxd_active *act = sxd_active_table(sh);
    uint64_t added = 0;
    for (uint32_t r = 0; r < sh->nr_grant; r++) {
        /* Read without the entry's lock: a pin taken after this look ends with a mark, or is
         * seen by the next round's look. */
        if (!SX_READ_ONCE(act[r].wr_pins))
            continue;
        uint32_t f = SX_READ_ONCE(act[r].frame);
        if (f >= sh->nr_pages)
            continue;
        uint64_t bit = 1ull << (f % 64);
        if (!(bitmap[f / 64] & bit)) {
            bitmap[f / 64] |= bit;
            added++;
        }
    }
    return added;
}

/* ------------------------------------------------------------------ state */

int sxm_put_state(struct sxm_writer *w, const struct sxc_dom *d)
{
    struct sxd_shared *sh = d->shared;
    uint64_t pw = words_of(sh->nr_pages), gw = words_of(sh->nr_grant);
    size_t cap = 16 + 8 * pw;
    if (cap < 16 + 8 * gw + (size_t)sh->nr_grant * 16)
        cap = 16 + 8 * gw + (size_t)sh->nr_grant * 16;
    if (cap < 8 + (size_t)sh->nr_ports * 16)
        cap = 8 + (size_t)sh->nr_ports * 16;
    uint8_t *b = malloc(cap);
    if (!b)
        return -ENOMEM;

    /* PAGE_ALLOC */
    const uint64_t *pbm = sxd_page_bitmap(sh);
    sxm_put64(b, sh->nr_pages);
    sxm_put64(b + 8, sh->pages_used);
    for (uint64_t i = 0; i < pw; i++)
        sxm_put64(b + 16 + 8 * i, pbm[i]);
    int rc = sxm_write(w, SXM_REC_PAGE_ALLOC, b, 16 + 8 * pw);

    /* GRANTS: the entries of the references the guest allocated */
    if (rc == 0) {
        const uint64_t *gbm = sxd_gref_bitmap(sh);
        const grant_entry_v1_t *gt = sxd_grant_table(sh);
        sxm_put32(b, sh->nr_grant);
        sxm_put64(b + 8, sh->grefs_used);
        for (uint64_t i = 0; i < gw; i++)
            sxm_put64(b + 16 + 8 * i, gbm[i]);
        uint8_t *e = b + 16 + 8 * gw;
        uint32_t count = 0;
        for (uint32_t r = 0; r < sh->nr_grant; r++) {
            uint16_t flags = SX_READ_ONCE(gt[r].flags);
            if (!flags)
                continue;
            sxm_put32(e, r);
            sxm_put16(e + 4, flags & (uint16_t)~(GTF_reading | GTF_writing));
            sxm_put16(e + 6, gt[r].domid);
            sxm_put32(e + 8, gt[r].frame);
            sxm_put32(e + 12, 0);
            e += 16;
            count++;
        }
        sxm_put32(b + 4, count);
        rc = sxm_write(w, SXM_REC_GRANTS, b, (size_t)(e - b));
    }

    /* EVTCHN */
    if (rc == 0) {
        const struct sxd_port *ports = sxd_ports(sh);
        uint32_t count = 0;
        uint8_t *e = b + 8;
        for (uint32_t p = 1; p < sh->nr_ports; p++) {
            uint32_t st = atomic_load(&ports[p].state);
            if (st == SXD_PORT_FREE)
                continue;
            sxm_put32(e, p);
            sxm_put32(e + 4, st);
            sxm_put32(e + 8, atomic_load(&ports[p].remote_dom));
            sxm_put32(e + 12, atomic_load(&ports[p].remote_port));
            e += 16;
            count++;
        }
        sxm_put32(b, count);
        sxm_put32(b + 4, 0);
        rc = sxm_write(w, SXM_REC_EVTCHN, b, (size_t)(e - b));
    }
    free(b);
    return rc;
}

/* ------------------------------------------------------------------ checks */

static uint64_t popcount_words(const uint8_t *p, uint64_t words, uint64_t bits)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < words; i++) {
        uint64_t v = sxm_get64(p + 8 * i);
        if (i == words - 1 && bits % 64)
            v &= (1ull << (bits % 64)) - 1;
        n += (uint64_t)__builtin_popcountll(v);
    }
    return n;
}

static bool bits_beyond(const uint8_t *p, uint64_t words, uint64_t bits)
{
    return bits % 64 && (sxm_get64(p + 8 * (words - 1)) >> (bits % 64)) != 0;
}

static int check_pages(const uint8_t *b, size_t len, const struct sxm_domain *dom, char *err,
                       size_t errlen)
{
    if (len < 8)
        return bad(err, errlen, "PAGES record of %zu bytes", len);
    uint32_t n = sxm_get32(b);
    if (n == 0 || n > SXM_PAGES_PER_RECORD || len < 8 + 8 * (size_t)n)
        return bad(err, errlen, "PAGES record: %u frames in %zu bytes", n, len);
    size_t ndata = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t f = sxm_get64(b + 8 + 8 * (size_t)i);
        if ((f & ~SXM_PFN_ZERO) >= dom->nr_pages)
            return bad(err, errlen, "PAGES record: frame %llu beyond the domain's %llu",
                       (unsigned long long)(f & ~SXM_PFN_ZERO),
                       (unsigned long long)dom->nr_pages);
        ndata += !(f & SXM_PFN_ZERO);
    }
    if (len != 8 + 8 * (size_t)n + ndata * PG)
        return bad(err, errlen, "PAGES record: %zu bytes for %u frames of which %zu carry data",
                   len, n, ndata);
    return 0;
}

static int check_state(uint32_t type, const uint8_t *b, size_t len,
                       const struct sxm_domain *dom, char *err, size_t errlen)
{
    if (type == SXM_REC_PAGE_ALLOC) {
        uint64_t w = words_of(dom->nr_pages);
        if (len != 16 + 8 * w || sxm_get64(b) != dom->nr_pages)
            return bad(err, errlen, "PAGE_ALLOC record of %zu bytes does not fit %llu frames",
                       len, (unsigned long long)dom->nr_pages);
        if (bits_beyond(b + 16, w, dom->nr_pages) ||
            popcount_words(b + 16, w, dom->nr_pages) != sxm_get64(b + 8))
            return bad(err, errlen, "PAGE_ALLOC record: the bitmap does not hold the %llu "
                       "frames it counts", (unsigned long long)sxm_get64(b + 8));
        return 0;
    }
    if (type == SXM_REC_GRANTS) {
        uint64_t w = words_of(dom->nr_grant);
        if (len < 16 + 8 * w || sxm_get32(b) != dom->nr_grant)
            return bad(err, errlen, "GRANTS record of %zu bytes does not fit %u entries", len,
                       dom->nr_grant);
        uint32_t n = sxm_get32(b + 4);
        if (n > dom->nr_grant || len != 16 + 8 * w + 16 * (size_t)n)
            return bad(err, errlen, "GRANTS record: %u entries in %zu bytes", n, len);
        if (bits_beyond(b + 16, w, dom->nr_grant) ||
            popcount_words(b + 16, w, dom->nr_grant) != sxm_get64(b + 8))
            return bad(err, errlen, "GRANTS record: the bitmap does not hold the %llu "
                       "references it counts", (unsigned long long)sxm_get64(b + 8));
        const uint8_t *e = b + 16 + 8 * w;
        uint32_t last = 0;
        for (uint32_t i = 0; i < n; i++, e += 16) {
            uint32_t ref = sxm_get32(e), frame = sxm_get32(e + 8);
            uint16_t flags = sxm_get16(e + 4), gdom = sxm_get16(e + 6);
            if (ref >= dom->nr_grant || (i && ref <= last))
                return bad(err, errlen, "GRANTS record: entry %u names reference %u", i, ref);
            if (frame >= dom->nr_pages || gdom >= DOMID_FIRST_RESERVED ||
                (flags & (GTF_reading | GTF_writing)) || sxm_get32(e + 12))
                return bad(err, errlen, "GRANTS record: reference %u (frame %u, domain %u, "
                           "flags %#x) out of range", ref, frame, gdom, flags);
            last = ref;
        }
        return 0;
    }
    /* EVTCHN */
    if (len < 8)
        return bad(err, errlen, "EVTCHN record of %zu bytes", len);
    uint32_t n = sxm_get32(b);
    if (n >= dom->nr_ports || len != 8 + 16 * (size_t)n)
        return bad(err, errlen, "EVTCHN record: %u ports in %zu bytes", n, len);
    uint32_t last = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + 8 + 16 * (size_t)i;
        uint32_t port = sxm_get32(e), st = sxm_get32(e + 4), rd = sxm_get32(e + 8);
        if (port == 0 || port >= dom->nr_ports || port <= last ||
            (st != SXD_PORT_UNBOUND && st != SXD_PORT_INTERDOMAIN) || rd >= DOMID_FIRST_RESERVED)
            return bad(err, errlen, "EVTCHN record: port %u (state %u, remote domain %u) out of "
                       "range", port, st, rd);
        last = port;
    }
    return 0;
}

static bool xs_path_ok(const char *p, size_t n)
{
    if (n == 0)
        return true;    /* the domain's own directory */
    if (p[0] == '/' || p[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '@' || c == '/' || c == '.'))
            return false;
        if (c == '/' && p[i + 1] == '/')
            return false;
        if (c == '.' && (i == 0 || p[i - 1] == '/') && (i + 1 == n || p[i + 1] == '/' ||
                                                         p[i + 1] == '.'))
            return false;
    }
    return true;
}

static bool xs_perms_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool start = i == 0 || p[i - 1] == ',';
        if (start ? !strchr("nrwb", c) : !((c >= '0' && c <= '9') || c == '@' || c == ','))
            return false;
    }
    return true;
}

static int check_xenstore(const uint8_t *b, size_t len, char *err, size_t errlen)
{
    if (len < 8)
        return bad(err, errlen, "XENSTORE record of %zu bytes", len);
    uint32_t n = sxm_get32(b);
    const uint8_t *p = b + 8, *end = b + len;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 8)
            return bad(err, errlen, "XENSTORE record: node %u is cut short", i);
        size_t pl = sxm_get16(p), vl = sxm_get16(p + 2), ml = sxm_get16(p + 4);
        if (sxm_get16(p + 6) || pl > 2048 || vl > 4096 || ml > 255 ||
            (size_t)(end - p - 8) < pl + vl + ml)
            return bad(err, errlen, "XENSTORE record: node %u has bad lengths", i);
        if (!xs_path_ok((const char *)p + 8, pl) || !xs_perms_ok((const char *)p + 8 + pl + vl, ml))
            return bad(err, errlen, "XENSTORE record: node %u has a bad path or permissions", i);
        p += 8 + pl + vl + ml;
    }
    if (p != end)
        return bad(err, errlen, "XENSTORE record: %zu bytes after its %u nodes",
                   (size_t)(end - p), n);
    return 0;
}

int sxm_check_record(uint32_t type, const void *buf, size_t len, const struct sxm_domain *dom,
                     char *err, size_t errlen)
{
    const uint8_t *b = buf;
    switch (type) {
    case SXM_REC_DOMAIN: {
        struct sxm_domain d;
        return sxm_get_domain(buf, len, &d, err, errlen);
    }
    case SXM_REC_SYNC:
        return len ? bad(err, errlen, "SYNC record of %zu bytes", len) : 0;
    case SXM_REC_CONFIG:
        if (len == 0 || len > 65536 || memchr(b, 0, len))
            return bad(err, errlen, "CONFIG record of %zu bytes is not an xl.cfg text", len);
        return 0;
    case SXM_REC_XENSTORE:
        return check_xenstore(b, len, err, errlen);
    case SXM_REC_PAGES:
        return dom ? check_pages(b, len, dom, err, errlen)
                   : bad(err, errlen, "PAGES record before the DOMAIN record");
    case SXM_REC_PAGE_ALLOC:
    case SXM_REC_GRANTS:
    case SXM_REC_EVTCHN:
        return dom ? check_state(type, b, len, dom, err, errlen)
                   : bad(err, errlen, "%s record before the DOMAIN record", sxm_type_name(type));
    default:
        return bad(err, errlen, "unexpected %s record", sxm_type_name(type));
    }
}

/* ------------------------------------------------------------------ import */

static int apply_pages(struct sxc_dom *d, const uint8_t *b)
{
    uint32_t n = sxm_get32(b);
    const uint8_t *data = b + 8 + 8 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t f = sxm_get64(b + 8 + 8 * (size_t)i);
        off_t off = (off_t)((f & ~SXM_PFN_ZERO) * PG);
        if (f & SXM_PFN_ZERO) {
            /* Back to a hole: nothing maps the new domain yet. */
            if (fallocate(d->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, PG) < 0)
                return -errno;
            continue;
        }
        for (size_t done = 0; done < PG;) {
            ssize_t w = pwrite(d->mem_fd, data + done, PG - done, off + (off_t)done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return w < 0 ? -errno : -EIO;
            done += (size_t)w;
        }
        data += PG;
    }
    return 0;
}

static int apply_state(struct sxc_conn *conn, struct sxc_dom *d, uint32_t type,
                       const uint8_t *b)
{
    struct sxd_shared *sh = d->shared;
    if (type == SXM_REC_PAGE_ALLOC) {
        uint64_t *bm = sxd_page_bitmap(sh);
        for (uint64_t i = 0; i < words_of(sh->nr_pages); i++)
            bm[i] = sxm_get64(b + 16 + 8 * i);
        sh->pages_used = sxm_get64(b + 8);
        return 0;
    }
    if (type == SXM_REC_GRANTS) {
        uint64_t w = words_of(sh->nr_grant);
        uint64_t *bm = sxd_gref_bitmap(sh);
        for (uint64_t i = 0; i < w; i++)
            bm[i] = sxm_get64(b + 16 + 8 * i);
        sh->grefs_used = sxm_get64(b + 8);
        grant_entry_v1_t *gt = sxd_grant_table(sh);
        const uint8_t *e = b + 16 + 8 * w;
        for (uint32_t i = 0; i < sxm_get32(b + 4); i++, e += 16) {
            grant_entry_v1_t *g = &gt[sxm_get32(e)];
            g->frame = sxm_get32(e + 8);
            g->domid = sxm_get16(e + 6);
            /* Frame and domid before the flags that make the entry valid. */
            sx_wmb();
            SX_WRITE_ONCE(g->flags, sxm_get16(e + 4));
        }
        return 0;
    }
    /* EVTCHN: what the old peers see of a port whose far end closed. */
    for (uint32_t i = 0; i < sxm_get32(b); i++) {
        const uint8_t *e = b + 8 + 16 * (size_t)i;
        int rc = sxc_evtchn_restore(conn, d->domid, sxm_get32(e), (domid_t)sxm_get32(e + 8));
        if (rc < 0)
            return rc;
    }
    return 0;
}

int sxm_apply_record(struct sxc_conn *conn, struct sxc_dom *d, uint32_t type, const void *buf,
                     size_t len)
{
    (void)len;
    switch (type) {
    case SXM_REC_PAGES:
        return apply_pages(d, buf);
    case SXM_REC_PAGE_ALLOC:
    case SXM_REC_GRANTS:
    case SXM_REC_EVTCHN:
        return apply_state(conn, d, type, buf);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ XENSTORE */

int sxm_xs_add(struct sxm_xs_buf *b, const char *path, const char *value, size_t vlen,
               const char *perms)
{
    size_t pl = strlen(path), ml = strlen(perms);
    if (pl > 2048 || vlen > 4096 || ml > 255)
        return -E2BIG;
    if (!b->buf) {
        b->cap = 4096;
        if (!(b->buf = malloc(b->cap)))
            return -ENOMEM;
        memset(b->buf, 0, 8);
        b->len = 8;
    }
    size_t need = b->len + 8 + pl + vlen + ml;
    if (need > b->cap) {
        size_t nc = b->cap * 2 > need ? b->cap * 2 : need;
        uint8_t *nb = realloc(b->buf, nc);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = nc;
    }
    uint8_t *p = b->buf + b->len;
    sxm_put16(p, (uint16_t)pl);
    sxm_put16(p + 2, (uint16_t)vlen);
    sxm_put16(p + 4, (uint16_t)ml);
    sxm_put16(p + 6, 0);
    memcpy(p + 8, path, pl);
    memcpy(p + 8 + pl, value, vlen);
    memcpy(p + 8 + pl + vlen, perms, ml);
    b->len = need;
    b->count++;
    return 0;
}

const void *sxm_xs_payload(struct sxm_xs_buf *b, size_t *len)
{
    static const uint8_t empty[8];
    if (!b->buf) {
        *len = sizeof(empty);
        return empty;
    }
    sxm_put32(b->buf, b->count);
    *len = b->len;
    return b->buf;
}

void sxm_xs_free(struct sxm_xs_buf *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

void sxm_xs_cursor(struct sxm_xs_cursor *c, const void *buf, size_t len)
{
    c->p = (const uint8_t *)buf + 8;
    c->end = (const uint8_t *)buf + len;
    c->left = len >= 8 ? sxm_get32(buf) : 0;
}

int sxm_xs_next(struct sxm_xs_cursor *c, struct sxm_xs_node *n)
{
    if (!c->left)
        return 0;
    if (c->end - c->p < 8)
        return -EPROTO;
    size_t pl = sxm_get16(c->p), vl = sxm_get16(c->p + 2), ml = sxm_get16(c->p + 4);
    if (pl >= sizeof(c->path) || vl >= sizeof(c->value) || ml >= sizeof(c->perms) ||
        (size_t)(c->end - c->p - 8) < pl + vl + ml)
        return -EPROTO;
    memcpy(c->path, c->p + 8, pl);
    c->path[pl] = 0;
    memcpy(c->value, c->p + 8 + pl, vl);
    c->value[vl] = 0;
    memcpy(c->perms, c->p + 8 + pl + vl, ml);
    c->perms[ml] = 0;
    c->p += 8 + pl + vl + ml;
    c->left--;
    *n = (struct sxm_xs_node){ .path = c->path, .value = c->value, .perms = c->perms,
                               .vlen = vl };
    return 1;
}
