/*
 * The save/migration stream (xen-core/stream.c) and a domain's state as its records
 * (xen-core/domstate.c): every record type written and read back; a stream cut at every record
 * boundary (and inside each header and payload) refused as truncated; every single-bit flip
 * refused; another version or magic refused; data after END refused; each record's checks;
 * a domain exported and imported into a new one; the receiver's messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "evtchn/evtchn.h"
#include "grant/grant.h"
#include "tests/simenv.h"
#include "tests/sxtest.h"
#include "xen-core/domstate.h"
#include "xen-core/stream.h"

SIMENV_DOM0_SUITE()

static int memfile(void)
{
    return memfd_create("sx-stream-test", MFD_CLOEXEC);
}

/* The file's bytes (malloc'ed). */
static uint8_t *slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc((size_t)end + 1);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(pread(fd, b, (size_t)end, 0) == end);
    *len = (size_t)end;
    return b;
}

static int file_of(const uint8_t *b, size_t len)
{
    int fd = memfile();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, b, len) == (ssize_t)len);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Read a whole stream: 0 when it ends with a good END, else the failing -errno. Counts the
 * records it returned. */
static int read_all(int fd, unsigned *records, char *err, size_t errlen)
{
    struct sxm_reader *r;
    *records = 0;
    int rc = sxm_reader_open(&r, fd, err, errlen);
    if (rc < 0)
        return rc;
    for (;;) {
        uint32_t t;
        const void *b;
        size_t n;
        rc = sxm_read(r, &t, &b, &n);
        if (rc <= 0)
            break;
        (*records)++;
    }
    if (rc < 0 && err)
        snprintf(err, errlen, "%s", sxm_reader_error(r));
    sxm_reader_close(r);
    return rc;
}

/* A small stream with one record of every type: payloads that pass sxm_check_record for a
 * 4 MiB domain. boundaries[i] is the offset where record i starts (the last: END's). */
#define NREC 8
static const struct sxm_domain small_dom = {
    .domid = 5, .type = SXD_TYPE_PV, .mem_mb = 4, .vcpus = 1, .nr_pages = 1024,
    .nr_grant = SXD_NR_GRANT_DEFAULT, .nr_ports = SXD_NR_PORTS_DEFAULT, .name = "small",
    .uuid = "00000000-0000-4000-8000-000000000001",
};

static void put32le(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64le(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static size_t make_pages(uint8_t *b)
{
    /* Three frames: 7 with a pattern, 9 zero, 1023 compressible text. */
    put32le(b, 3);
    put32le(b + 4, 0);
    put64le(b + 8, 7);
    put64le(b + 16, 9 | SXM_PFN_ZERO);
    put64le(b + 24, 1023);
    for (int i = 0; i < 4096; i++) {
        b[32 + i] = (uint8_t)(i * 7 + 3);
        b[32 + 4096 + i] = "splitxen"[i % 8];
    }
    return 32 + 2 * 4096;
}

static size_t make_alloc(uint8_t *b)
{
    memset(b, 0, 16 + 8 * 16);
    put64le(b, 1024);
    put64le(b + 8, 3);
    put64le(b + 16, 0x83);      /* frames 0, 1, 7 */
    return 16 + 8 * 16;
}

static size_t make_grants(uint8_t *b)
{
    size_t w = SXD_NR_GRANT_DEFAULT / 64;
    memset(b, 0, 16 + 8 * w + 32);
    put32le(b, SXD_NR_GRANT_DEFAULT);
    put32le(b + 4, 2);
    put64le(b + 8, 2);
    put64le(b + 16, 0x300);     /* refs 8, 9 */
    uint8_t *e = b + 16 + 8 * w;
    put32le(e, 8);
    e[4] = GTF_permit_access;
    put32le(e + 8, 7);
    put32le(e + 16, 9);
    e[20] = GTF_permit_access | GTF_readonly;
    put32le(e + 24, 1);
    return 16 + 8 * w + 32;
}

static size_t make_evtchn(uint8_t *b)
{
    memset(b, 0, 8 + 32);
    put32le(b, 2);
    put32le(b + 8, 1);
    put32le(b + 12, SXD_PORT_INTERDOMAIN);
    put32le(b + 24, 3);
    put32le(b + 28, SXD_PORT_UNBOUND);
    return 8 + 32;
}

static int write_small(int fd, size_t boundaries[NREC + 1])
{
    static uint8_t buf[16 + 8 * (SXD_NR_GRANT_DEFAULT / 64) + 32 + 3 * 4096];
    struct sxm_writer *w;
    int rc = sxm_writer_open(&w, fd, SXM_F_LIVE, 1);
    if (rc < 0)
        return rc;
    static const char cfg[] = "name = \"small\"\nmemory = 4\n";
    struct sxm_xs_buf xs = { 0 };
    sxm_xs_add(&xs, "data/key", "value", 5, "n@,r0");
    sxm_xs_add(&xs, "", "", 0, "n0,r@");
    size_t xlen;
    const void *xp = sxm_xs_payload(&xs, &xlen);
    unsigned i = 0;
    boundaries[i++] = sxm_writer_bytes(w);
    rc = sxm_put_domain(w, &small_dom);
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_CONFIG, cfg, strlen(cfg));
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_XENSTORE, xp, xlen);
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_PAGES, buf, make_pages(buf));
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_PAGE_ALLOC, buf, make_alloc(buf));
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_GRANTS, buf, make_grants(buf));
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_EVTCHN, buf, make_evtchn(buf));
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_write(w, SXM_REC_SYNC, NULL, 0);
    boundaries[i++] = sxm_writer_bytes(w);
    rc = rc ?: sxm_writer_finish(w);
    sxm_xs_free(&xs);
    sxm_writer_close(w);
    return rc;
}

/* The small stream's bytes (malloc'ed) and its record boundaries. */
static uint8_t *small_bytes(size_t bnd[NREC + 1], size_t *len)
{
    int fd = memfile();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(write_small(fd, bnd), 0);
    uint8_t *all = slurp(fd, len);
    close(fd);
    return all;
}

static void test_every_record_type_round_trips_and_checks(void)
{
    int fd = memfile();
    size_t bnd[NREC + 1];
    CU_ASSERT_EQUAL_FATAL(write_small(fd, bnd), 0);
    lseek(fd, 0, SEEK_SET);
    struct sxm_reader *r;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, fd, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(sxm_reader_flags(r), SXM_F_LIVE);
    static const uint32_t want[NREC] = { SXM_REC_DOMAIN, SXM_REC_CONFIG, SXM_REC_XENSTORE,
                                         SXM_REC_PAGES, SXM_REC_PAGE_ALLOC, SXM_REC_GRANTS,
                                         SXM_REC_EVTCHN, SXM_REC_SYNC };
    static uint8_t ref[16 + 8 * (SXD_NR_GRANT_DEFAULT / 64) + 32 + 3 * 4096];
    for (unsigned i = 0; i < NREC; i++) {
        uint32_t t;
        const void *b;
        size_t n;
        CU_ASSERT_EQUAL_FATAL(sxm_read(r, &t, &b, &n), 1);
        CU_ASSERT_EQUAL(t, want[i]);
        CU_ASSERT_EQUAL(sxm_check_record(t, b, n, &small_dom, err, sizeof(err)), 0);
        if (t == SXM_REC_DOMAIN) {
            struct sxm_domain d;
            CU_ASSERT_EQUAL(sxm_get_domain(b, n, &d, err, sizeof(err)), 0);
            CU_ASSERT_EQUAL(memcmp(&d, &small_dom, sizeof(d)), 0);
        } else if (t == SXM_REC_PAGES) {
            CU_ASSERT_EQUAL(n, make_pages(ref));
            CU_ASSERT_EQUAL(memcmp(b, ref, n), 0);
        } else if (t == SXM_REC_GRANTS) {
            CU_ASSERT_EQUAL(n, make_grants(ref));
            CU_ASSERT_EQUAL(memcmp(b, ref, n), 0);
        } else if (t == SXM_REC_XENSTORE) {
            struct sxm_xs_cursor c;
            struct sxm_xs_node node;
            sxm_xs_cursor(&c, b, n);
            CU_ASSERT_EQUAL(sxm_xs_next(&c, &node), 1);
            CU_ASSERT_STRING_EQUAL(node.path, "data/key");
            CU_ASSERT_STRING_EQUAL(node.value, "value");
            CU_ASSERT_STRING_EQUAL(node.perms, "n@,r0");
            CU_ASSERT_EQUAL(sxm_xs_next(&c, &node), 1);
            CU_ASSERT_STRING_EQUAL(node.path, "");
            CU_ASSERT_EQUAL(sxm_xs_next(&c, &node), 0);
        }
    }
    uint32_t t;
    const void *b;
    size_t n;
    CU_ASSERT_EQUAL(sxm_read(r, &t, &b, &n), 0);
    CU_ASSERT_EQUAL(sxm_read(r, &t, &b, &n), 0);     /* stays at the end */
    /* The pages record compressed (text and a pattern): fewer bytes than it holds. */
    CU_ASSERT(bnd[4] - bnd[3] < make_pages(ref));
    sxm_reader_close(r);
    close(fd);
}

static void test_truncation_at_every_record_boundary_is_refused(void)
{
    size_t bnd[NREC + 1], len;
    uint8_t *all = small_bytes(bnd, &len);
    char err[256];
    unsigned recs;
    /* At each boundary, one byte into the record's header, and one byte into its payload;
     * and at the end of the header and one byte short of the whole. */
    size_t cuts[4 * (NREC + 1) + 3];
    unsigned nc = 0;
    for (unsigned i = 0; i <= NREC; i++) {
        cuts[nc++] = bnd[i];
        cuts[nc++] = bnd[i] + 1;
        cuts[nc++] = bnd[i] + SXM_REC_HDR_SIZE;
        cuts[nc++] = bnd[i] + SXM_REC_HDR_SIZE + 1;
    }
    cuts[nc++] = 0;
    cuts[nc++] = SXM_HDR_SIZE - 1;
    cuts[nc++] = len - 1;
    for (unsigned i = 0; i < nc; i++) {
        if (cuts[i] >= len)
            continue;
        int f = file_of(all, cuts[i]);
        int rc = read_all(f, &recs, err, sizeof(err));
        if (rc != -ENODATA)
            printf("\n    cut at %zu of %zu: rc %d (%s)\n", cuts[i], len, rc, err);
        CU_ASSERT_EQUAL(rc, -ENODATA);
        CU_ASSERT(strstr(err, "truncated") != NULL);
        /* Never a record past the cut. */
        unsigned whole = 0;
        for (unsigned k = 0; k < NREC; k++)
            whole += bnd[k + 1] <= cuts[i];
        CU_ASSERT(recs <= whole);
        close(f);
    }
    /* The whole stream reads. */
    int f = file_of(all, len);
    CU_ASSERT_EQUAL(read_all(f, &recs, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(recs, NREC);
    close(f);
    free(all);
}

static void test_every_bit_flip_is_refused(void)
{
    size_t bnd[NREC + 1], len;
    uint8_t *all = small_bytes(bnd, &len);
    char err[256];
    unsigned recs, accepted = 0, tried = 0;
    int f = memfile();
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            all[byte] ^= (uint8_t)(1u << bit);
            CU_ASSERT_FATAL(pwrite(f, all, len, 0) == (ssize_t)len);
            lseek(f, 0, SEEK_SET);
            int rc = read_all(f, &recs, err, sizeof(err));
            tried++;
            if (rc == 0) {
                accepted++;
                if (accepted < 4)
                    printf("\n    flip of bit %d at byte %zu accepted\n", bit, byte);
            }
            all[byte] ^= (uint8_t)(1u << bit);
        }
    }
    printf("\n    %u single-bit flips over %zu bytes, %u accepted\n", tried, len, accepted);
    CU_ASSERT_EQUAL(accepted, 0);
    close(f);
    free(all);
}

static void test_wrong_version_and_magic_are_refused(void)
{
    size_t bnd[NREC + 1], len;
    uint8_t *all = small_bytes(bnd, &len);
    char err[256];
    unsigned recs;
    /* Version 2 with a header checksum that matches: refused for the version itself. */
    put32le(all + 8, SXM_VERSION + 1);
    put32le(all + 24, (uint32_t)crc32(0, all, 24));
    int f = file_of(all, len);
    CU_ASSERT_EQUAL(read_all(f, &recs, err, sizeof(err)), -EPROTO);
    CU_ASSERT(strstr(err, "version 2") != NULL);
    CU_ASSERT_EQUAL(recs, 0);
    close(f);
    put32le(all + 8, SXM_VERSION);
    memcpy(all, "SXSTREAX", 8);
    put32le(all + 24, (uint32_t)crc32(0, all, 24));
    f = file_of(all, len);
    CU_ASSERT_EQUAL(read_all(f, &recs, err, sizeof(err)), -EPROTO);
    CU_ASSERT(strstr(err, "magic") != NULL);
    close(f);
    /* Not a stream at all. */
    f = file_of((const uint8_t *)"name = \"x\"\n", 11);
    CU_ASSERT(read_all(f, &recs, err, sizeof(err)) < 0);
    close(f);
    free(all);
}

static void test_data_after_end_is_refused_unless_allowed(void)
{
    size_t bnd[NREC + 1], len;
    uint8_t *all = small_bytes(bnd, &len);
    uint8_t *more = malloc(len + 5);
    memcpy(more, all, len);
    memcpy(more + len, "extra", 5);
    char err[256];
    unsigned recs;
    int f = file_of(more, len + 5);
    CU_ASSERT_EQUAL(read_all(f, &recs, err, sizeof(err)), -EPROTO);
    CU_ASSERT(strstr(err, "after the END") != NULL);
    lseek(f, 0, SEEK_SET);
    struct sxm_reader *r;
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, f, err, sizeof(err)), 0);
    sxm_reader_allow_trailing(r, true);
    uint32_t t;
    const void *b;
    size_t n;
    int rc;
    while ((rc = sxm_read(r, &t, &b, &n)) == 1)
        ;
    CU_ASSERT_EQUAL(rc, 0);
    sxm_reader_close(r);
    close(f);
    free(more);
    free(all);
}

static void test_record_checks_refuse_bad_contents(void)
{
    static uint8_t b[16 + 8 * (SXD_NR_GRANT_DEFAULT / 64) + 32 + 3 * 4096];
    char err[256];
    size_t n = make_pages(b);
    put64le(b + 24, 1024);          /* frame beyond 4 MiB */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_PAGES, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    n = make_pages(b);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_PAGES, b, n - 1, &small_dom, err, sizeof(err)), -EPROTO);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_PAGES, b, n, NULL, err, sizeof(err)), -EPROTO);
    n = make_alloc(b);
    put64le(b + 8, 4);              /* counts four frames, holds three */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_PAGE_ALLOC, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    n = make_grants(b);
    uint8_t *e = b + 16 + 8 * (SXD_NR_GRANT_DEFAULT / 64);
    e[4] |= GTF_writing;            /* a pin cannot travel */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_GRANTS, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    n = make_grants(b);
    put32le(e + 8, 5000);           /* frame beyond the domain */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_GRANTS, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    n = make_evtchn(b);
    put32le(b + 12, 7);             /* no such port state */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_EVTCHN, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    n = make_evtchn(b);
    put32le(b + 8, 0);              /* port 0 is never bound */
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_EVTCHN, b, n, &small_dom, err, sizeof(err)), -EPROTO);
    struct sxm_xs_buf xs = { 0 };
    sxm_xs_add(&xs, "../0/x", "v", 1, "n@");
    const void *xp = sxm_xs_payload(&xs, &n);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_XENSTORE, xp, n, &small_dom, err, sizeof(err)), -EPROTO);
    sxm_xs_free(&xs);
    sxm_xs_add(&xs, "data/x", "v", 1, "x@");
    xp = sxm_xs_payload(&xs, &n);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_XENSTORE, xp, n, &small_dom, err, sizeof(err)), -EPROTO);
    sxm_xs_free(&xs);
    struct sxm_domain d = small_dom;
    d.mem_mb = 8;                   /* geometry of 4 MiB, memory of 8 */
    int fd = memfile();
    struct sxm_writer *w;
    CU_ASSERT_EQUAL_FATAL(sxm_writer_open(&w, fd, 0, 1), 0);
    CU_ASSERT_EQUAL(sxm_put_domain(w, &d), 0);
    sxm_writer_close(w);
    lseek(fd, 0, SEEK_SET);
    struct sxm_reader *r;
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, fd, err, sizeof(err)), 0);
    sxm_reader_allow_trailing(r, true);
    uint32_t t;
    const void *p;
    CU_ASSERT_EQUAL_FATAL(sxm_read(r, &t, &p, &n), 1);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_DOMAIN, p, n, NULL, err, sizeof(err)), -EPROTO);
    CU_ASSERT(strstr(err, "geometry") != NULL);
    sxm_reader_close(r);
    close(fd);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_CONFIG, "a\0b", 3, NULL, err, sizeof(err)), -EPROTO);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_END, "", 0, NULL, err, sizeof(err)), -EPROTO);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_SYNC, "", 0, NULL, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(sxm_check_record(SXM_REC_SYNC, "x", 1, NULL, err, sizeof(err)), -EPROTO);
}

/* A 4 MiB guest with memory written, frames and references allocated, grants and ports, saved
 * through the stream and loaded into a new paused domain: the same memory and state, without
 * pins, ports unbound for their old peer and closable by the new domain's processes. */
static void test_domain_state_exported_and_imported(void)
{
    struct sxc_conn *c = dom0->conn;
    int src = sxc_domain_create(c, "export-src", SXD_TYPE_PV, 4, 1, false);
    CU_ASSERT_FATAL(src > 0);
    struct sx_plat *g = simenv_plat(&env, (domid_t)src);
    CU_ASSERT_FATAL(g != NULL);
    struct sx_gntshr *shr;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_open(&shr, g), 0);
    grant_ref_t refs[3];
    void *pages;
    CU_ASSERT_EQUAL_FATAL(sx_gntshr_share(shr, 0, 3, true, refs, &pages), 0);
    memset(pages, 0xa5, 3 * 4096);
    struct sx_evtchn *ev;
    CU_ASSERT_EQUAL_FATAL(sx_evtchn_open(&ev, g), 0);
    int port = sx_evtchn_bind_unbound(ev, 0);
    CU_ASSERT_FATAL(port > 0);
    /* A backend has one of the pages mapped: the pin must not travel. */
    struct sx_gnt *gnt;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_open(&gnt, dom0), 0);
    void *bmap;
    CU_ASSERT_EQUAL_FATAL(sx_gnt_map(gnt, (domid_t)src, 1, &refs[1], true, &bmap, NULL), 0);

    struct sxc_dom *d;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(c, (domid_t)src, &d), 0);
    int fd = memfile();
    struct sxm_writer *w;
    CU_ASSERT_EQUAL_FATAL(sxm_writer_open(&w, fd, 0, 1), 0);
    struct sxm_domain info;
    sxm_domain_info(d, &info);
    CU_ASSERT_STRING_EQUAL(info.name, "export-src");
    CU_ASSERT_EQUAL(sxm_put_domain(w, &info), 0);
    struct sxm_page_stats st = { 0 };
    CU_ASSERT_EQUAL(sxm_put_all_pages(w, d, &st), 0);
    CU_ASSERT_EQUAL(sxm_put_state(w, d), 0);
    CU_ASSERT_EQUAL(sxm_writer_finish(w), 0);
    sxm_writer_close(w);
    /* Three pages of data; the rest never written: not read, not sent. */
    CU_ASSERT_EQUAL(st.pages, 3);
    CU_ASSERT_EQUAL(st.pages + st.zero + st.skipped, 1024);
    uint64_t used = d->shared->pages_used, grefs = d->shared->grefs_used;

    int dst = sxc_domain_create(c, "export-dst", SXD_TYPE_PV, 4, 1, true);
    CU_ASSERT_FATAL(dst > 0);
    struct sxc_dom *nd;
    CU_ASSERT_EQUAL_FATAL(sxc_domain_get(c, (domid_t)dst, &nd), 0);
    lseek(fd, 0, SEEK_SET);
    struct sxm_reader *r;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, fd, err, sizeof(err)), 0);
    uint32_t t;
    const void *b;
    size_t n;
    int rc;
    struct sxm_domain got;
    while ((rc = sxm_read(r, &t, &b, &n)) == 1) {
        if (t == SXM_REC_DOMAIN)
            CU_ASSERT_EQUAL(sxm_get_domain(b, n, &got, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(sxm_check_record(t, b, n, &got, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(sxm_apply_record(c, nd, t, b, n), 0);
    }
    CU_ASSERT_EQUAL(rc, 0);
    sxm_reader_close(r);
    close(fd);

    CU_ASSERT_EQUAL(memcmp(nd->mem, d->mem, nd->mem_size), 0);
    CU_ASSERT_EQUAL(nd->shared->pages_used, used);
    CU_ASSERT_EQUAL(nd->shared->grefs_used, grefs);
    CU_ASSERT_EQUAL(memcmp(sxd_page_bitmap(nd->shared), sxd_page_bitmap(d->shared), 1024 / 8), 0);
    grant_entry_v1_t *og = sxd_grant_table(d->shared), *ng = sxd_grant_table(nd->shared);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(ng[refs[i]].frame, og[refs[i]].frame);
        CU_ASSERT_EQUAL(ng[refs[i]].domid, 0);
        CU_ASSERT_EQUAL(ng[refs[i]].flags, GTF_permit_access);
    }
    CU_ASSERT(og[refs[1]].flags & GTF_writing);     /* the source's pin stayed there */
    struct sxd_port *np = &sxd_ports(nd->shared)[port];
    CU_ASSERT_EQUAL(atomic_load(&np->state), SXD_PORT_UNBOUND);
    CU_ASSERT_EQUAL(atomic_load(&np->remote_dom), 0);
    CU_ASSERT_EQUAL(atomic_load(&np->owner), 0);
    /* Restoring a port twice, or into a running domain, is refused. */
    CU_ASSERT_EQUAL(sxc_evtchn_restore(c, (domid_t)dst, (uint32_t)port, 0), -EEXIST);
    CU_ASSERT_EQUAL(sxc_evtchn_restore(c, (domid_t)src, 100, 0), -EBUSY);
    /* A process of the new domain closes the port no handle owns. */
    struct sx_plat *ng_plat = simenv_plat(&env, (domid_t)dst);
    CU_ASSERT_FATAL(ng_plat != NULL);
    CU_ASSERT_EQUAL(sxc_evtchn_close(ng_plat->conn, (uint32_t)port), 0);
    CU_ASSERT_EQUAL(atomic_load(&np->state), SXD_PORT_FREE);
    sx_plat_close(ng_plat);

    sxc_domain_put(c, nd);
    sxc_domain_put(c, d);
    CU_ASSERT_EQUAL(sx_gnt_unmap(gnt, bmap, 1), 0);
    sx_gnt_close(gnt);
    sx_evtchn_close(ev);
    sx_gntshr_close(shr);
    sx_plat_close(g);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)src), 0);
    CU_ASSERT_EQUAL(sxc_domain_destroy(c, (domid_t)dst), 0);
}

static void test_messages_round_trip_and_corruption_is_refused(void)
{
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct sxm_msg m = { .code = SXM_MSG_READY, .rc = -5, .domid = 12 }, got;
    snprintf(m.core_path, sizeof(m.core_path), "/run/b/core.sock");
    snprintf(m.text, sizeof(m.text), "fine");
    CU_ASSERT_EQUAL(sxm_msg_send(sv[0], &m), 0);
    CU_ASSERT_EQUAL(sxm_msg_recv(sv[1], &got, 1000), 0);
    CU_ASSERT_EQUAL(got.code, SXM_MSG_READY);
    CU_ASSERT_EQUAL(got.rc, -5);
    CU_ASSERT_EQUAL(got.domid, 12);
    CU_ASSERT_STRING_EQUAL(got.core_path, "/run/b/core.sock");
    CU_ASSERT_STRING_EQUAL(got.text, "fine");
    /* Nothing sent: the wait times out. */
    CU_ASSERT_EQUAL(sxm_msg_recv(sv[1], &got, 20), -ETIMEDOUT);
    /* A damaged message is refused. */
    uint8_t junk[276];
    memset(junk, 0x41, sizeof(junk));
    CU_ASSERT_EQUAL(write(sv[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
    CU_ASSERT_EQUAL(sxm_msg_recv(sv[1], &got, 1000), -EPROTO);
    /* The peer gone: reset. */
    close(sv[0]);
    CU_ASSERT_EQUAL(sxm_msg_recv(sv[1], &got, 1000), -ECONNRESET);
    close(sv[1]);
}

/* Random data does not deflate: it is stored as it is, and so are the next 16 records without
 * a try; the 17th is compressed again. Every record reads back whole. */
static void test_incompressible_data_is_stored_and_deflate_retried_later(void)
{
    int fd = memfile();
    struct sxm_writer *w;
    CU_ASSERT_EQUAL_FATAL(sxm_writer_open(&w, fd, 0, 1), 0);
    static uint8_t rnd[65536], txt[65536];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rnd[i] = (uint8_t)x;
        txt[i] = "splitxen "[i % 9];
    }
    uint64_t size[19], before = sxm_writer_bytes(w);
    for (int i = 0; i < 19; i++) {
        CU_ASSERT_EQUAL(sxm_write(w, SXM_REC_CONFIG, i ? txt : rnd, sizeof(txt)), 0);
        size[i] = sxm_writer_bytes(w) - before;
        before += size[i];
    }
    CU_ASSERT_EQUAL(sxm_writer_finish(w), 0);
    sxm_writer_close(w);
    CU_ASSERT(size[0] > sizeof(rnd));                  /* stored */
    CU_ASSERT(size[1] > sizeof(txt) && size[16] > sizeof(txt));   /* not tried */
    CU_ASSERT(size[17] < sizeof(txt) / 10);            /* tried again: compressed */
    lseek(fd, 0, SEEK_SET);
    struct sxm_reader *r;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sxm_reader_open(&r, fd, err, sizeof(err)), 0);
    uint32_t t;
    const void *b;
    size_t n;
    CU_ASSERT_EQUAL(sxm_read(r, &t, &b, &n), 1);
    CU_ASSERT(n == sizeof(rnd) && !memcmp(b, rnd, n));
    for (int i = 1; i < 19; i++) {
        CU_ASSERT_EQUAL(sxm_read(r, &t, &b, &n), 1);
        CU_ASSERT(n == sizeof(txt) && !memcmp(b, txt, n));
    }
    CU_ASSERT_EQUAL(sxm_read(r, &t, &b, &n), 0);
    sxm_reader_close(r);
    close(fd);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_every_record_type_round_trips_and_checks),
    SX_TEST(test_truncation_at_every_record_boundary_is_refused),
    SX_TEST(test_every_bit_flip_is_refused),
    SX_TEST(test_wrong_version_and_magic_are_refused),
    SX_TEST(test_data_after_end_is_refused_unless_allowed),
    SX_TEST(test_record_checks_refuse_bad_contents),
    SX_TEST(test_domain_state_exported_and_imported),
    SX_TEST(test_messages_round_trip_and_corruption_is_refused),
    SX_TEST(test_incompressible_data_is_stored_and_deflate_retried_later),
};

SX_TEST_MAIN("stream", cases, setup, teardown)
