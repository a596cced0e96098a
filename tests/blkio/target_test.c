/*
 * Network target specs (blkio/target.c): what each form parses into, and that every malformed
 * spec is refused with a message naming the part at fault. Opening a target nobody serves
 * fails at once with the reason, and the error names the target.
 */
#include <errno.h>
#include <string.h>

#include "blkio/blkio_impl.h"
#include "tests/sxtest.h"

static struct sx_bio_spec sp;
static char err[512];

static int parse(const char *s)
{
    return sx_bio_spec_parse(s, &sp, err, sizeof(err));
}

static void test_rbd_forms(void)
{
    CU_ASSERT_EQUAL_FATAL(parse("rbd:pool/img"), 0);
    CU_ASSERT_EQUAL(sp.kind, SX_BIO_RBD);
    CU_ASSERT_STRING_EQUAL(sp.pool, "pool");
    CU_ASSERT_STRING_EQUAL(sp.image, "img");
    CU_ASSERT_STRING_EQUAL(sp.ns, "");
    CU_ASSERT_STRING_EQUAL(sp.snap, "");
    CU_ASSERT_EQUAL(sp.nopts, 0);

    CU_ASSERT_EQUAL_FATAL(parse("rbd:p/ns/img@s1:conf=/etc/c.conf:id=guest:rados_osd_op_timeout=5"
                                ":mon_host=127.0.0.1\\:3300"), 0);
    CU_ASSERT_STRING_EQUAL(sp.pool, "p");
    CU_ASSERT_STRING_EQUAL(sp.ns, "ns");
    CU_ASSERT_STRING_EQUAL(sp.image, "img");
    CU_ASSERT_STRING_EQUAL(sp.snap, "s1");
    CU_ASSERT_STRING_EQUAL(sp.conf, "/etc/c.conf");
    CU_ASSERT_STRING_EQUAL(sp.id, "guest");
    CU_ASSERT_EQUAL_FATAL(sp.nopts, 2);
    CU_ASSERT_STRING_EQUAL(sp.opt_key[0], "rados_osd_op_timeout");
    CU_ASSERT_STRING_EQUAL(sp.opt_val[0], "5");
    CU_ASSERT_STRING_EQUAL(sp.opt_key[1], "mon_host");
    CU_ASSERT_STRING_EQUAL(sp.opt_val[1], "127.0.0.1:3300");   /* the escaped ':' */
    CU_ASSERT_STRING_EQUAL(sp.name, "rbd:p/ns/img@s1");        /* no options in logs */
}

static void test_nbd_forms(void)
{
    CU_ASSERT_EQUAL_FATAL(parse("nbd://example.org/disk1"), 0);
    CU_ASSERT_EQUAL(sp.kind, SX_BIO_NBD);
    CU_ASSERT_FALSE(sp.unix_socket);
    CU_ASSERT_STRING_EQUAL(sp.host, "example.org");
    CU_ASSERT_STRING_EQUAL(sp.port, "10809");
    CU_ASSERT_STRING_EQUAL(sp.export_name, "disk1");

    CU_ASSERT_EQUAL_FATAL(parse("nbd://127.0.0.1:10900"), 0);
    CU_ASSERT_STRING_EQUAL(sp.port, "10900");
    CU_ASSERT_STRING_EQUAL(sp.export_name, "");

    CU_ASSERT_EQUAL_FATAL(parse("nbd://[::1]:9000/a%20b%2Fc"), 0);
    CU_ASSERT_STRING_EQUAL(sp.host, "::1");
    CU_ASSERT_STRING_EQUAL(sp.port, "9000");
    CU_ASSERT_STRING_EQUAL(sp.export_name, "a b/c");

    CU_ASSERT_EQUAL_FATAL(parse("nbd+unix:///exp?socket=/run/nbd%2B1.sock"), 0);
    CU_ASSERT_TRUE(sp.unix_socket);
    CU_ASSERT_STRING_EQUAL(sp.socket, "/run/nbd+1.sock");
    CU_ASSERT_STRING_EQUAL(sp.export_name, "exp");

    CU_ASSERT_EQUAL_FATAL(parse("nbd+unix://?socket=/s"), 0);
    CU_ASSERT_STRING_EQUAL(sp.export_name, "");
}

static void test_is_net(void)
{
    CU_ASSERT_TRUE(sx_bio_target_is_net("rbd:a/b"));
    CU_ASSERT_TRUE(sx_bio_target_is_net("nbd://h/e"));
    CU_ASSERT_TRUE(sx_bio_target_is_net("nbd+unix:///e?socket=/s"));
    CU_ASSERT_FALSE(sx_bio_target_is_net("/var/lib/xen/images/rbd:x"));
    CU_ASSERT_FALSE(sx_bio_target_is_net("rbd"));
    CU_ASSERT_FALSE(sx_bio_target_is_net("nbd:host"));
    CU_ASSERT_FALSE(sx_bio_target_is_net(NULL));
}

/* Each bad spec fails with -EINVAL and a message holding the key at fault. */
static void test_malformed_specs_name_the_key(void)
{
    static const char *const bad[][2] = {
        { "rbd:", "pool" },
        { "rbd:pool", "image" },
        { "rbd:pool/", "image" },
        { "rbd:/img", "pool" },
        { "rbd:p//img", "namespace" },
        { "rbd:p/a/b/c", "image" },
        { "rbd:p/img@", "snapshot" },
        { "rbd:p/img:conf", "option 'conf'" },
        { "rbd:p/img:conf=", "option 'conf'" },
        { "rbd:p/img:id=", "option 'id'" },
        { "rbd:p/img::x=1", "option" },
        { "rbd:p/img:=5", "missing key" },
        { "rbd:p/img:bad.key=5", "option 'bad.key'" },
        { "nbd://", "host" },
        { "nbd:///exp", "host" },
        { "nbd://h:0/e", "port" },
        { "nbd://h:65536/e", "port" },
        { "nbd://h:12x/e", "port" },
        { "nbd://h:/e", "port" },
        { "nbd://[::1/e", "host" },
        { "nbd://user@h/e", "host" },
        { "nbd://h/e%zz", "export" },
        { "nbd://h/e%00", "export" },
        { "nbd://h/e?socket=/s", "socket" },
        { "nbd://h/e?tls=require", "query key 'tls'" },
        { "nbd://h/e#frag", "fragment" },
        { "nbd+unix:///e", "socket" },
        { "nbd+unix:///e?socket=", "socket" },
        { "nbd+unix://host/e?socket=/s", "host" },
        { "nbds://h/e", "scheme" },
        { "/var/tmp/a.img", "target" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i][0]);
        if (rc != -EINVAL || !strstr(err, bad[i][1]))
            fprintf(stderr, "spec '%s': rc %d, '%s' (wanted '%s')\n", bad[i][0], rc, err,
                    bad[i][1]);
        CU_ASSERT_EQUAL(rc, -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i][1]));
    }
}

static void test_long_values_are_refused_not_cut(void)
{
    char s[1200];
    memset(s, 'a', sizeof(s));
    memcpy(s, "rbd:p/", 6);
    s[sizeof(s) - 1] = '\0';
    CU_ASSERT_EQUAL(parse(s), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too long"));
    snprintf(s, sizeof(s), "nbd+unix:///e?socket=/%0200d", 0);
    CU_ASSERT_EQUAL(parse(s), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "socket"));
}

/* Nobody listens on the socket: the open fails at once and names the target. */
static void test_open_unserved_nbd_fails_with_reason(void)
{
    struct sx_bio_target *t = (void *)1;
    int rc = sx_bio_target_open(&t, "nbd+unix:///e?socket=/nonexistent/sx.sock", false, err,
                                sizeof(err));
    CU_ASSERT(rc < 0);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/sx.sock"));
    sx_bio_target_close(NULL);      /* NULL-safe */
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_rbd_forms),
    SX_TEST(test_nbd_forms),
    SX_TEST(test_is_net),
    SX_TEST(test_malformed_specs_name_the_key),
    SX_TEST(test_long_values_are_refused_not_cut),
    SX_TEST(test_open_unserved_nbd_fails_with_reason),
};

SX_TEST_MAIN("blkio_target", cases, NULL, NULL)
