/*
 * The toolstack layout for the reference guest (tests/toolstack/reference/guest.cfg) against
 * the tree real Xen 4.17 + libxl left after `xl create -p` (reference/xenstore-paused.txt):
 * the same paths, values and permissions, less what backends, hotplug scripts and consoles
 * write. The comparator is itself tested: a missing node, a wrong permission, a wrong value
 * or an extra node must each be reported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenstore.h>

#include "tests/sxtest.h"
#include "toolstack/layout.h"
#include "toolstack/xlcfg.h"

#define REF_DIR "tests/toolstack/reference"
#define REF_TARGET "/var/lib/xen/images/disk.img"

static char tmpdir[] = "/tmp/sx-layout-XXXXXX";
static char target[300], cfgpath[300];

struct ref_node {
    char path[256], value[512], perms[64];
};
static struct ref_node refs[512];
static size_t nrefs;

static int load_reference(void)
{
    FILE *f = fopen(REF_DIR "/xenstore-paused.txt", "r");
    if (!f)
        return -1;
    char line[1024];
    while (fgets(line, sizeof(line), f) && nrefs < sizeof(refs) / sizeof(refs[0])) {
        /* /path = "value"   (perms) */
        char *eq = strstr(line, " = \"");
        char *close = strrchr(line, ')');
        char *open = strrchr(line, '(');
        if (!eq || !open || !close || open > close)
            continue;
        char *vend = strrchr(eq + 4, '"');
        if (!vend)
            continue;
        struct ref_node *r = &refs[nrefs++];
        snprintf(r->path, sizeof(r->path), "%.*s", (int)(eq - line), line);
        snprintf(r->value, sizeof(r->value), "%.*s", (int)(vend - (eq + 4)), eq + 4);
        snprintf(r->perms, sizeof(r->perms), "%.*s", (int)(close - open - 1), open + 1);
        if (!strcmp(r->value, REF_TARGET))
            snprintf(r->value, sizeof(r->value), "%s", target);
    }
    fclose(f);
    return nrefs > 100 ? 0 : -1;
}

static int suite_init(void)
{
    if (access(REF_DIR "/guest.cfg", R_OK) != 0)
        sx_test_skip("run from the top of the tree (" REF_DIR " not found)");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(target, sizeof(target), "%s/disk.img", tmpdir);
    snprintf(cfgpath, sizeof(cfgpath), "%s/guest.cfg", tmpdir);
    FILE *t = fopen(target, "w");
    if (!t)
        return -1;
    fclose(t);
    /* the reference cfg, with its disk image moved to the file this test created */
    FILE *in = fopen(REF_DIR "/guest.cfg", "r"), *out = fopen(cfgpath, "w");
    if (!in || !out)
        return -1;
    char line[1024];
    while (fgets(line, sizeof(line), in)) {
        char *p = strstr(line, REF_TARGET);
        if (p) {
            fprintf(out, "%.*s%s%s", (int)(p - line), line, target, p + strlen(REF_TARGET));
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    return load_reference();
}

static int suite_clean(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Written by someone other than the toolstack: compare the permissions if we have the node,
 * but not the value, and do not require it. */
static bool written_by_backend(const char *path)
{
    if (!strstr(path, "/backend/"))
        return false;
    const char *base = strrchr(path, '/') + 1;
    static const char *const keys[] = { "hotplug-status", "physical-device",
                                        "physical-device-path", "node",
                                        "multi-queue-max-queues", "max-ring-page-order" };
    if (!strncmp(base, "feature-", 8))
        return true;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(base, keys[i]))
            return true;
    return false;
}

/* Present in the tree but with a value someone else decides (state moved on to 2; the vm
 * uuid and the store port/ring are the hypervisor's and libxl's choice). */
static bool value_not_ours(const char *path)
{
    return (strstr(path, "/backend/") && !strcmp(strrchr(path, '/'), "/state")) ||
           !strcmp(path, "/local/domain/1/vm") || !strncmp(path, "/local/domain/1/store/", 22);
}

static bool console_node(const char *path)
{
    return strstr(path, "/console") != NULL;
}

/* Nodes the toolstack writes that the capture did not include (it listed the device
 * directories and the guest's subtree, not their roots nor /vm). */
static bool outside_capture(const char *path)
{
    return !strcmp(path, "/local/domain/1") || !strcmp(path, "/libxl/1") ||
           !strcmp(path, "/local/domain/0/backend") || !strcmp(path, "/vm") ||
           !strcmp(path, "/libxl") || !strncmp(path, "/vm/", 4);
}

/* Number of differences between the layout and the reference; each is printed. */
static int compare(const struct sx_layout *l, bool verbose)
{
    int bad = 0;
    for (size_t i = 0; i < nrefs; i++) {
        const struct ref_node *r = &refs[i];
        if (console_node(r->path))
            continue;
        const struct sx_xs_node *n = sx_layout_find(l, r->path);
        bool theirs = written_by_backend(r->path);
        if (!n) {
            if (!theirs) {
                if (verbose)
                    printf("  missing: %s\n", r->path);
                bad++;
            }
            continue;
        }
        if (strcmp(n->perms, r->perms)) {
            if (verbose)
                printf("  perms: %s is (%s), reference (%s)\n", r->path, n->perms, r->perms);
            bad++;
        }
        if (!theirs && !value_not_ours(r->path) && strcmp(n->value, r->value)) {
            if (verbose)
                printf("  value: %s is \"%s\", reference \"%s\"\n", r->path, n->value,
                       r->value);
            bad++;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->nodes[i].path;
        bool found = false;
        for (size_t j = 0; j < nrefs && !found; j++)
            found = !strcmp(refs[j].path, p);
        if (!found && !outside_capture(p)) {
            if (verbose)
                printf("  extra: %s\n", p);
            bad++;
        }
    }
    return bad;
}

static void build(struct sx_layout *l, struct sx_domcfg **cfgp, uint32_t be)
{
    char err[512] = "";
    struct sx_domcfg *c = NULL;
    int rc = sx_cfg_parse_file(cfgpath, &c, err, sizeof(err));
    if (rc)
        printf("%s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    struct sx_layout_dom d = {
        .domid = 1, .name = c->name, .uuid = "0f0e0d0c-0b0a-4908-8706-050403020100",
        .type = c->type, .memory_kb = c->memory_mib * 1024, .maxmem_kb = c->maxmem_mib * 1024,
        .vcpus = c->vcpus, .maxvcpus = c->maxvcpus, .store_port = 3, .store_ring_ref = 4096,
    };
    sx_layout_init(l);
    CU_ASSERT_EQUAL_FATAL(sx_layout_add_domain(l, &d), 0);
    for (size_t i = 0; i < c->ndisks; i++)
        CU_ASSERT_EQUAL_FATAL(sx_layout_add_vbd(l, 1, be, c->type, &c->disks[i]), 0);
    for (size_t i = 0; i < c->nvifs; i++)
        CU_ASSERT_EQUAL_FATAL(sx_layout_add_vif(l, 1, be, &c->vifs[i]), 0);
    *cfgp = c;
}

static void test_layout_matches_reference(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 0);
    CU_ASSERT_EQUAL(compare(&l, true), 0);
    /* a few nodes spelled out, so a broken comparator cannot hide them */
    const struct sx_xs_node *n = sx_layout_find(&l, "/local/domain/1/device/vbd/51712");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n1,r0");
    CU_ASSERT(n->flags & SX_XS_ROOT);
    n = sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51712/params");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, target);
    CU_ASSERT_STRING_EQUAL(n->perms, "n0,r1");
    n = sx_layout_find(&l, "/local/domain/1/device/vif/0/mtu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n0,r1");
    n = sx_layout_find(&l, "/local/domain/1/memory/target");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "262144");
    n = sx_layout_find(&l, "/local/domain/1/vm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "/vm/0f0e0d0c-0b0a-4908-8706-050403020100");
    /* the toolstack leaves backend-written keys alone */
    CU_ASSERT_PTR_NULL(sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51712/hotplug-status"));
    CU_ASSERT_PTR_NULL(sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51712/physical-device"));
    CU_ASSERT_PTR_NULL(sx_layout_find(&l, "/local/domain/0/backend/vif/1/0/feature-sg"));
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

/* A network target gets params as written and no block script (nothing on the host to set
 * up); a file target keeps the script. */
static void test_network_target_has_no_script(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 0);
    CU_ASSERT_PTR_NOT_NULL(sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51712/script"));
    struct sx_cfg_disk net = c->disks[0];
    net.vdev = "xvdb";
    net.devid = 51728;
    net.target = "rbd:rbd/guest1:conf=/etc/ceph/ceph.conf";
    net.net = true;
    net.script = NULL;
    CU_ASSERT_EQUAL_FATAL(sx_layout_add_vbd(&l, 1, 0, c->type, &net), 0);
    const struct sx_xs_node *n = sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51728/params");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, net.target);
    CU_ASSERT_PTR_NULL(sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51728/script"));
    n = sx_layout_find(&l, "/local/domain/0/backend/vbd/1/51728/type");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "phy");
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

static void drop_node(struct sx_layout *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->nodes[i].path, path)) {
            free(l->nodes[i].path);
            free(l->nodes[i].value);
            free(l->nodes[i].perms);
            memmove(&l->nodes[i], &l->nodes[i + 1], (l->n - i - 1) * sizeof(l->nodes[0]));
            l->n--;
            return;
        }
    }
    CU_FAIL("drop_node: no such node");
}

static void set_field(struct sx_layout *l, const char *path, bool perms, const char *v)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->nodes[i].path, path)) {
            char **f = perms ? &l->nodes[i].perms : &l->nodes[i].value;
            free(*f);
            *f = strdup(v);
            return;
        }
    }
    CU_FAIL("set_field: no such node");
}

static void test_comparator_catches_missing_node(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 0);
    drop_node(&l, "/local/domain/1/device/vbd/51712/virtual-device");
    CU_ASSERT_EQUAL(compare(&l, false), 1);
    drop_node(&l, "/local/domain/1/control/sysrq");
    CU_ASSERT_EQUAL(compare(&l, false), 2);
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

static void test_comparator_catches_wrong_perms_and_values(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 0);
    set_field(&l, "/local/domain/1/device/vif/0/mtu", true, "n1,r0");
    CU_ASSERT_EQUAL(compare(&l, false), 1);
    set_field(&l, "/local/domain/0/backend/vbd/1/51712/mode", false, "r");
    CU_ASSERT_EQUAL(compare(&l, false), 2);
    set_field(&l, "/local/domain/0/backend/vbd/1/51712/state", true, "n1");
    CU_ASSERT_EQUAL(compare(&l, false), 3);
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

static void test_comparator_catches_extra_node(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 0);
    struct sx_cfg_disk extra = c->disks[0];
    extra.vdev = "xvdb";
    extra.devid = 51728;
    CU_ASSERT_EQUAL_FATAL(sx_layout_add_vbd(&l, 1, 0, c->type, &extra), 0);
    CU_ASSERT(compare(&l, false) > 10);
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

/* A driver domain (2) serving the guest: the same shape with the other owner. */
static void test_driver_domain_permissions(void)
{
    struct sx_layout l;
    struct sx_domcfg *c;
    build(&l, &c, 2);
    const struct sx_xs_node *n;
    n = sx_layout_find(&l, "/local/domain/2/backend/vbd/1/51712");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n2,r1");
    n = sx_layout_find(&l, "/local/domain/1/device/vif/0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n1,r2");
    n = sx_layout_find(&l, "/local/domain/1/device/vif/0/backend-id");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "2");
    n = sx_layout_find(&l, "/local/domain/1/device/vif/0/backend");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "/local/domain/2/backend/vif/1/0");
    n = sx_layout_find(&l, "/local/domain/1/device/vif/0/mtu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n2,r1");
    n = sx_layout_find(&l, "/local/domain/2/backend");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->perms, "n0,r2");
    CU_ASSERT(n->flags & SX_XS_ENSURE);
    sx_layout_clear(&l);
    sx_cfg_free(c);
}

static void test_vif_optional_keys(void)
{
    struct sx_cfg_vif v;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(sx_cfg_parse_vif("mac=00:16:3e:00:00:07, rate=1MB/s@10ms, ip=192.0.2.9,"
                                           " vifname=gv0, mtu=9000, queues=2", "t", 0, 5, &v,
                                           err, sizeof(err)), 0);
    struct sx_layout l;
    sx_layout_init(&l);
    CU_ASSERT_EQUAL_FATAL(sx_layout_add_vif(&l, 3, 0, &v), 0);
    const struct sx_xs_node *n = sx_layout_find(&l, "/local/domain/0/backend/vif/3/5/rate");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "10000,10000");
    n = sx_layout_find(&l, "/local/domain/0/backend/vif/3/5/mtu");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "9000");
    n = sx_layout_find(&l, "/local/domain/0/backend/vif/3/5/vifname");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "gv0");
    n = sx_layout_find(&l, "/local/domain/0/backend/vif/3/5/queues");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "2");
    n = sx_layout_find(&l, "/local/domain/3/device/vif/5/handle");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->value, "5");
    sx_layout_clear(&l);
    sx_cfg_vif_clear(&v);
}

static void test_parse_perms(void)
{
    struct xs_permissions p[4];
    CU_ASSERT_EQUAL(sx_layout_parse_perms("n1,r0", p, 4), 2);
    CU_ASSERT_EQUAL(p[0].id, 1);
    CU_ASSERT_EQUAL(p[0].perms, XS_PERM_NONE);
    CU_ASSERT_EQUAL(p[1].id, 0);
    CU_ASSERT_EQUAL(p[1].perms, XS_PERM_READ);
    CU_ASSERT_EQUAL(sx_layout_parse_perms("b3", p, 4), 1);
    CU_ASSERT_EQUAL(p[0].perms, XS_PERM_READ | XS_PERM_WRITE);
    CU_ASSERT(sx_layout_parse_perms("x1", p, 4) < 0);
    CU_ASSERT(sx_layout_parse_perms("n1,", p, 4) < 0);
    CU_ASSERT(sx_layout_parse_perms("", p, 4) < 0);
    CU_ASSERT(sx_layout_parse_perms("n1,r2,r3", p, 2) < 0);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_layout_matches_reference),
    SX_TEST(test_network_target_has_no_script),
    SX_TEST(test_comparator_catches_missing_node),
    SX_TEST(test_comparator_catches_wrong_perms_and_values),
    SX_TEST(test_comparator_catches_extra_node),
    SX_TEST(test_driver_domain_permissions),
    SX_TEST(test_vif_optional_keys),
    SX_TEST(test_parse_perms),
};

SX_TEST_MAIN("toolstack/layout", cases, suite_init, suite_clean)
