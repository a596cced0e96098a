/*
 * xl.cfg parsing: good configs give the right fields; every bad config fails with a message
 * naming the file, the line and the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/sxtest.h"
#include "toolstack/xlcfg.h"

static char tmpdir[] = "/tmp/sx-xlcfg-XXXXXX";
static char disk_a[256], disk_b[256];

static int suite_init(void)
{
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(disk_a, sizeof(disk_a), "%s/a.img", tmpdir);
    snprintf(disk_b, sizeof(disk_b), "%s/b.img", tmpdir);
    FILE *f = fopen(disk_a, "w");
    FILE *g = fopen(disk_b, "w");
    if (!f || !g)
        return -1;
    fclose(f);
    fclose(g);
    return 0;
}

static int suite_clean(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write `text` (with %A / %B replaced by the two disk images) to a temp cfg; returns path. */
static const char *write_cfg(const char *name, const char *text)
{
    static char path[300];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (const char *p = text; *p; p++) {
        if (p[0] == '%' && (p[1] == 'A' || p[1] == 'B')) {
            fputs(p[1] == 'A' ? disk_a : disk_b, f);
            p++;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    return path;
}

static void test_reference_guest_parses(void)
{
    const char *path = write_cfg("guest.cfg",
        "# PV domU\n"
        "name    = \"domu1\"\n"
        "type    = \"pv\"\n"
        "kernel  = \"/guest/vmlinuz\"\n"
        "ramdisk = \"/guest/domu.cpio\"\n"
        "extra   = \"console=hvc0 loglevel=6\"\n"
        "memory  = 256\n"
        "vcpus   = 1\n"
        "disk    = [ 'format=raw, vdev=xvda, access=rw, backendtype=phy, target=%A' ]\n"
        "vif     = [ 'mac=00:16:3e:00:00:01, bridge=xenbr0' ]\n"
        "on_poweroff = \"destroy\"\n"
        "on_crash    = \"destroy\"\n");
    char err[512] = "";
    struct sx_domcfg *c = NULL;
    int rc = sx_cfg_parse_file(path, &c, err, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    if (rc)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_STRING_EQUAL(c->name, "domu1");
    CU_ASSERT_EQUAL(c->type, SX_CFG_PV);
    CU_ASSERT_EQUAL(c->memory_mib, 256);
    CU_ASSERT_EQUAL(c->maxmem_mib, 256);
    CU_ASSERT_EQUAL(c->vcpus, 1);
    CU_ASSERT_STRING_EQUAL(c->kernel, "/guest/vmlinuz");
    CU_ASSERT_STRING_EQUAL(c->ramdisk, "/guest/domu.cpio");
    CU_ASSERT_STRING_EQUAL(c->extra, "console=hvc0 loglevel=6");
    CU_ASSERT_EQUAL(c->on_poweroff, SX_CFG_ACT_DESTROY);
    CU_ASSERT_EQUAL(c->on_reboot, SX_CFG_ACT_RESTART);     /* default */
    CU_ASSERT_PTR_NULL(c->uuid);
    CU_ASSERT_EQUAL_FATAL(c->ndisks, 1);
    CU_ASSERT_STRING_EQUAL(c->disks[0].vdev, "xvda");
    CU_ASSERT_EQUAL(c->disks[0].devid, 51712);
    CU_ASSERT_STRING_EQUAL(c->disks[0].target, disk_a);
    CU_ASSERT_TRUE(c->disks[0].readwrite);
    CU_ASSERT_TRUE(c->disks[0].discard);
    CU_ASSERT_EQUAL(c->disks[0].backendtype, SX_CFG_DISK_PHY);
    CU_ASSERT_PTR_NULL(c->disks[0].backend);
    CU_ASSERT_EQUAL(c->disks[0].line, 9);
    CU_ASSERT_EQUAL_FATAL(c->nvifs, 1);
    const uint8_t mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 };
    CU_ASSERT_EQUAL(memcmp(c->vifs[0].mac, mac, 6), 0);
    CU_ASSERT_STRING_EQUAL(c->vifs[0].bridge, "xenbr0");
    CU_ASSERT_EQUAL(c->vifs[0].devid, 0);
    CU_ASSERT_EQUAL(c->vifs[0].mtu, 1500);
    CU_ASSERT_EQUAL(c->vifs[0].rate_interval_usecs, 0);
    CU_ASSERT_EQUAL(c->vifs[0].queues, 0);
    sx_cfg_free(c);
}

static void test_positional_disk_driver_domain_and_vif_extras(void)
{
    const char *path = write_cfg("many.cfg",
        "name = \"many\"\n"
        "type = \"hvm\"\n"
        "memory = 512\n"
        "maxmem = 1024\n"
        "vcpus = 2\n"
        "maxvcpus = 4\n"
        "uuid = \"5b5119ea-e6a2-11f1-a9dd-46aa4027df80\"\n"
        "on_reboot = 'preserve'\n"
        "disk = [ '%A,raw,xvdb,ro',\n"
        "         'vdev=hdc, access=rw, backend=storage1, target=%B' ]\n"
        "vif = [ 'bridge=br-test, rate=100Mb/s@20ms, ip=192.0.2.7, queues=4, backend=net1',\n"
        "        'mac=00:16:3e:12:34:56, vifname=guestnet, mtu=9000, type=ioemu' ]\n");
    char err[512] = "";
    struct sx_domcfg *c = NULL;
    int rc = sx_cfg_parse_file(path, &c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(c->type, SX_CFG_HVM);
    CU_ASSERT_EQUAL(c->memory_mib, 512);
    CU_ASSERT_EQUAL(c->maxmem_mib, 1024);
    CU_ASSERT_EQUAL(c->vcpus, 2);
    CU_ASSERT_EQUAL(c->maxvcpus, 4);
    CU_ASSERT_STRING_EQUAL(c->uuid, "5b5119ea-e6a2-11f1-a9dd-46aa4027df80");
    CU_ASSERT_EQUAL(c->on_reboot, SX_CFG_ACT_PRESERVE);
    CU_ASSERT_EQUAL_FATAL(c->ndisks, 2);
    CU_ASSERT_STRING_EQUAL(c->disks[0].target, disk_a);
    CU_ASSERT_EQUAL(c->disks[0].devid, 51728);         /* xvdb = 202<<8 | 1<<4 */
    CU_ASSERT_FALSE(c->disks[0].readwrite);
    CU_ASSERT_FALSE(c->disks[0].discard);              /* libxl: default !readonly */
    CU_ASSERT_EQUAL(c->disks[0].line, 9);
    CU_ASSERT_EQUAL(c->disks[1].devid, 22 << 8);       /* hdc */
    CU_ASSERT_STRING_EQUAL(c->disks[1].backend, "storage1");
    CU_ASSERT_EQUAL(c->disks[1].line, 10);
    CU_ASSERT_EQUAL_FATAL(c->nvifs, 2);
    struct sx_cfg_vif *v = &c->vifs[0];
    CU_ASSERT_EQUAL(v->mac[0], 0x00);
    CU_ASSERT_EQUAL(v->mac[1], 0x16);
    CU_ASSERT_EQUAL(v->mac[2], 0x3e);
    CU_ASSERT_EQUAL(v->mac[3] & 0x80, 0);               /* generated like libxl */
    CU_ASSERT_STRING_EQUAL(v->bridge, "br-test");
    /* 100 Mbit/s = 12.5 MB/s; over 20 ms: 250000 bytes */
    CU_ASSERT_EQUAL(v->rate_bytes_per_interval, 250000);
    CU_ASSERT_EQUAL(v->rate_interval_usecs, 20000);
    CU_ASSERT_STRING_EQUAL(v->ip, "192.0.2.7");
    CU_ASSERT_EQUAL(v->queues, 4);
    CU_ASSERT_STRING_EQUAL(v->backend, "net1");
    CU_ASSERT_STRING_EQUAL(v->script, "vif-bridge");
    CU_ASSERT_EQUAL(v->line, 11);
    v = &c->vifs[1];
    CU_ASSERT_EQUAL(v->devid, 1);
    CU_ASSERT_EQUAL(v->mac[5], 0x56);
    CU_ASSERT_STRING_EQUAL(v->vifname, "guestnet");
    CU_ASSERT_EQUAL(v->mtu, 9000);
    CU_ASSERT_EQUAL(v->type, SX_CFG_NIC_IOEMU);
    CU_ASSERT_STRING_EQUAL(v->bridge, "xenbr0");
    CU_ASSERT_EQUAL(v->line, 12);
    sx_cfg_free(c);
}

static void test_rate_default_interval(void)
{
    struct sx_cfg_vif v;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_vif("rate=10MB/s", "t", 0, 3, &v, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(v.rate_interval_usecs, 50000);      /* libxlutil's default 50 ms */
    CU_ASSERT_EQUAL(v.rate_bytes_per_interval, 500000);
    CU_ASSERT_EQUAL(v.devid, 3);
    sx_cfg_vif_clear(&v);
}

static void test_vdev_numbers_match_libxl(void)
{
    static const struct { const char *vdev; long devid; } ok[] = {
        { "xvda", 51712 }, { "xvdb", 51728 }, { "xvda1", 51713 }, { "xvdp15", 202 << 8 | 15 << 4 | 15 },
        { "xvdq", (1L << 28) | (16 << 8) }, { "xvda16", (1L << 28) | 16 },
        { "xvdaa", (1L << 28) | (26 << 8) }, { "d0p0", 51712 }, { "d20p3", (1L << 28) | (20 << 8) | 3 },
        { "hda", 3 << 8 }, { "hdb", 3 << 8 | 64 }, { "hdc", 22 << 8 }, { "hdd1", 22 << 8 | 64 | 1 },
        { "sda", 8 << 8 }, { "sdb2", 8 << 8 | 16 | 2 }, { "51712", 51712 }, { "0x100", 256 },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        long got = sx_cfg_vdev_to_devid(ok[i].vdev);
        if (got != ok[i].devid)
            fprintf(stderr, "vdev %s: got %ld want %ld\n", ok[i].vdev, got, ok[i].devid);
        CU_ASSERT_EQUAL(got, ok[i].devid);
    }
    static const char *const bad[] = { "", "xvd", "xvdA", "xvda0", "xvda256", "sdq", "hde",
                                       "foo", "d1p", "hda64", "xvda-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long got = sx_cfg_vdev_to_devid(bad[i]);
        if (got >= 0)
            fprintf(stderr, "vdev '%s' accepted as %ld\n", bad[i], got);
        CU_ASSERT(got < 0);
    }
}

static void test_mac_parsing(void)
{
    uint8_t m[6];
    CU_ASSERT_EQUAL(sx_cfg_parse_mac("00:16:3e:0a:Bb:ff", m), 0);
    CU_ASSERT_EQUAL(m[3], 0x0a);
    CU_ASSERT_EQUAL(m[4], 0xbb);
    CU_ASSERT(sx_cfg_parse_mac("00:16:3e:00:01", m) < 0);
    CU_ASSERT(sx_cfg_parse_mac("00:16:3e:00:00:0g", m) < 0);
    CU_ASSERT(sx_cfg_parse_mac("01:16:3e:00:00:01", m) < 0);   /* multicast */
    CU_ASSERT(sx_cfg_parse_mac("00:00:00:00:00:00", m) < 0);
    CU_ASSERT(sx_cfg_parse_mac("00-16-3e-00-00-01", m) < 0);
}

/* Each bad config: the exact "file:line: key:" prefix and a phrase saying what is wrong. */
static void test_bad_configs_name_file_line_key(void)
{
    static const struct { const char *file, *prefix, *phrase; } cases[] = {
        { "unknown-key.cfg", ":5: colour: ", "unknown setting 'colour'" },
        { "disk-malformed.cfg", ":4: disk: ", "unknown value for format" },
        { "disk-unknown-key.cfg", ":6: disk: ", "unknown key 'formt' in disk spec" },
        { "disk-missing-target.cfg", ":4: disk: ",
          "target: '/nonexistent/splitxen/disk.img': No such file or directory" },
        { "disk-bad-vdev.cfg", ":5: disk: ", "vdev: invalid virtual device 'xvdA'" },
        { "vif-bad-mac.cfg", ":5: vif: ", "mac: invalid MAC address '00:16:3e:00:01'" },
        { "vif-bad-rate.cfg", ":5: vif: ", "rate: invalid replenishment interval" },
        { "syntax.cfg", ":3: ", "config parsing error" },
        { "bad-memory.cfg", ":3: memory: ", "expected a number" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256], want[512], err[1024] = "";
        struct sx_domcfg *c = (struct sx_domcfg *)1;
        snprintf(path, sizeof(path), "tests/toolstack/bad/%s", cases[i].file);
        if (access(path, R_OK) != 0)
            sx_test_skip("run from the top of the tree (tests/toolstack/bad not found)");
        int rc = sx_cfg_parse_file(path, &c, err, sizeof(err));
        printf("  %s -> %s\n", cases[i].file, err);
        CU_ASSERT_EQUAL(rc, -EINVAL);
        CU_ASSERT_PTR_NULL(c);
        snprintf(want, sizeof(want), "%s%s", path, cases[i].prefix);
        if (strncmp(err, want, strlen(want)) != 0)
            fprintf(stderr, "%s: message does not start with '%s'\n", cases[i].file, want);
        CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
        if (!strstr(err, cases[i].phrase))
            fprintf(stderr, "%s: message lacks '%s'\n", cases[i].file, cases[i].phrase);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].phrase));
    }
}

static void expect_fail(const char *name, const char *text, const char *prefix_after_path,
                        const char *phrase)
{
    const char *path = write_cfg(name, text);
    char want[512], err[1024] = "";
    struct sx_domcfg *c = NULL;
    CU_ASSERT_EQUAL(sx_cfg_parse_file(path, &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NULL(c);
    snprintf(want, sizeof(want), "%s%s", path, prefix_after_path);
    if (strncmp(err, want, strlen(want)) || !strstr(err, phrase))
        fprintf(stderr, "%s: got '%s', want prefix '%s' and '%s'\n", name, err, want, phrase);
    CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, phrase));
    sx_cfg_free(c);
}

static void test_more_semantic_errors(void)
{
    expect_fail("noname.cfg", "memory = 64\n", ": name: ", "missing");
    expect_fail("type.cfg", "name = \"x\"\n\ntype = \"pvh\"\n", ":3: type: ", "'pvh'");
    expect_fail("dupvdev.cfg",
                "name = \"x\"\ndisk = [ 'vdev=xvda, target=%A',\n 'vdev=51712, target=%B' ]\n",
                ":3: disk: ", "same device as 'xvda' (line 2)");
    expect_fail("qcow.cfg", "name = \"x\"\ndisk = [ 'format=qcow2, vdev=xvda, target=%A' ]\n",
                ":2: disk: ", "format: 'qcow2' is not supported");
    expect_fail("vifkey.cfg", "name = \"x\"\nvif = [ 'bridge=xenbr0, colour=red' ]\n",
                ":2: vif: ", "unknown key 'colour'");
    expect_fail("queues.cfg", "name = \"x\"\nvif = [ 'queues=0' ]\n", ":2: vif: ", "queues");
    expect_fail("ioemu.cfg", "name = \"x\"\nvif = [ 'type=ioemu' ]\n", ":2: vif: ",
                "needs an HVM guest");
    expect_fail("action.cfg", "name = \"x\"\non_crash = \"explode\"\n", ":2: on_crash: ",
                "unknown action 'explode'");
    expect_fail("uuid.cfg", "name = \"x\"\nuuid = \"1234\"\n", ":2: uuid: ", "not a UUID");
    expect_fail("digits.cfg", "name = \"42\"\n", ":1: name: ", "not a valid domain name");
    expect_fail("disklist.cfg", "name = \"x\"\ndisk = 'vdev=xvda, target=%A'\n", ":2: disk: ",
                "expected a list");
    /* a read-only target may not be attached rw */
    char ro[300];
    snprintf(ro, sizeof(ro), "%s/ro.img", tmpdir);
    FILE *f = fopen(ro, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    chmod(ro, 0444);
    if (geteuid() != 0) {   /* root may write anything: skip this one there */
        char text[512];
        snprintf(text, sizeof(text), "name = \"x\"\ndisk = [ 'vdev=xvda, access=rw, target=%s' ]\n",
                 ro);
        expect_fail("rotarget.cfg", text, ":2: disk: ", "not writable");
    }
}

static void test_ignored_keys_are_accepted(void)
{
    const char *path = write_cfg("ignored.cfg",
        "name = \"ign\"\nbootloader = \"pygrub\"\ncpus = \"0-1\"\nvnc = 1\n"
        "serial = 'pty'\non_watchdog = \"destroy\"\n");
    char err[512] = "";
    struct sx_domcfg *c = NULL;
    CU_ASSERT_EQUAL(sx_cfg_parse_file(path, &c, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (c) {
        CU_ASSERT_EQUAL(c->memory_mib, 32);     /* libxl's default */
        CU_ASSERT_EQUAL(c->ndisks, 0);
    }
    sx_cfg_free(c);
}

static void test_block_attach_spec(void)
{
    struct sx_cfg_disk d;
    char err[512], spec[400];
    snprintf(spec, sizeof(spec), "vdev=xvdc, access=ro, target=%s", disk_a);
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_disk(spec, "block-attach", 0, &d, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(d.devid, 51744);
    CU_ASSERT_FALSE(d.readwrite);
    sx_cfg_disk_clear(&d);
    CU_ASSERT_EQUAL(sx_cfg_parse_disk("vdev=xvdc, target=/nonexistent/x", "block-attach", 0, &d,
                                      err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(strncmp(err, "block-attach: disk: target:", 27), 0);
}

/* Network targets as xl users write them: target=rbd:POOL/IMAGE[:opts] (commas and colons
 * belong to the target), backendtype phy or qdisk, the NBD URIs; nothing is stat'ed, and a
 * malformed one names its key. */
static void test_network_targets(void)
{
    struct sx_cfg_disk d;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_disk("vdev=xvda, backendtype=phy, access=rw, "
                                            "target=rbd:rbd/guest1:conf=/etc/ceph/ceph.conf:"
                                            "mon_host=127.0.0.1,127.0.0.2", "t", 0, &d, err,
                                            sizeof(err)), 0);
    CU_ASSERT_TRUE(d.net);
    CU_ASSERT_STRING_EQUAL(d.target, "rbd:rbd/guest1:conf=/etc/ceph/ceph.conf:"
                                     "mon_host=127.0.0.1,127.0.0.2");
    CU_ASSERT_EQUAL(d.backendtype, SX_CFG_DISK_PHY);
    CU_ASSERT_PTR_NULL(d.script);
    sx_cfg_disk_clear(&d);
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_disk("backendtype=qdisk, vdev=xvdb, access=ro, "
                                            "target=nbd://192.0.2.7:10809/guest1", "t", 0, &d,
                                            err, sizeof(err)), 0);
    CU_ASSERT_TRUE(d.net);
    CU_ASSERT_FALSE(d.readwrite);
    CU_ASSERT_EQUAL(d.backendtype, SX_CFG_DISK_QDISK);
    sx_cfg_disk_clear(&d);
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_disk("vdev=xvdc, target=nbd+unix:///e?socket=/run/n.sock",
                                            "t", 0, &d, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(d.net);
    sx_cfg_disk_clear(&d);
    CU_ASSERT_EQUAL(sx_cfg_parse_disk("vdev=xvdc, target=rbd:rbd/g:conf", "block-attach", 0, &d,
                                      err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "block-attach: disk: target: rbd: option 'conf'"));
    CU_ASSERT_EQUAL(sx_cfg_parse_disk("vdev=xvdc, target=nbd://h:70000/e", "block-attach", 0, &d,
                                      err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "port"));
}

/* Regression (found by tests/fuzz/fuzz_xlcfg): a newline in a disk spec made libxlutil's lexer
 * exit() the process ("flex scanner jammed"). Control characters are refused with the key and
 * offset named; the process lives on. */
static void test_disk_spec_control_characters_refused(void)
{
    static const char *const bad[] = { "=\nh", "vdev=xvda,\ntarget=/x", "vdev=xvda\t", "\x7f",
                                       "target=/tmp/a\rb" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sx_cfg_disk d;
        char err[512] = "";
        CU_ASSERT_EQUAL(sx_cfg_parse_disk(bad[i], "block-attach", 0, &d, err, sizeof(err)),
                        -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "disk: control character"));
    }
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_reference_guest_parses),
    SX_TEST(test_network_targets),
    SX_TEST(test_positional_disk_driver_domain_and_vif_extras),
    SX_TEST(test_rate_default_interval),
    SX_TEST(test_vdev_numbers_match_libxl),
    SX_TEST(test_mac_parsing),
    SX_TEST(test_bad_configs_name_file_line_key),
    SX_TEST(test_more_semantic_errors),
    SX_TEST(test_ignored_keys_are_accepted),
    SX_TEST(test_block_attach_spec),
    SX_TEST(test_disk_spec_control_characters_refused),
};

SX_TEST_MAIN("toolstack/xlcfg", cases, suite_init, suite_clean)
