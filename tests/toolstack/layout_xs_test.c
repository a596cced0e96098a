/*
 * sx_layout_apply / unapply / remove_* against an in-memory fake of libxenstore (the .c is
 * included with the xs_* calls renamed): permissions as written and as inherited, shared
 * parents left alone, the bounded retry on EAGAIN, all-or-nothing on failure, and removal
 * that restores the store exactly.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define xs_read fake_xs_read
#define xs_write fake_xs_write
#define xs_mkdir fake_xs_mkdir
#define xs_rm fake_xs_rm
#define xs_directory fake_xs_directory
#define xs_set_permissions fake_xs_set_permissions
#define xs_transaction_start fake_xs_transaction_start
#define xs_transaction_end fake_xs_transaction_end
#include "toolstack/layout.c"

#include "tests/sxtest.h"

/* ---- the fake store: a flat list of nodes; a transaction works on a copy ---- */

struct fnode {
    char path[256];
    char value[256];
    char perms[64];
};

struct fstore {
    struct fnode n[1024];
    size_t count;
};

static struct fstore live, txcopy;
static bool in_tx;
static int fail_commits;           /* transaction_end returns EAGAIN this many times */
static int commits;                /* transaction_end calls */
static char fail_write_path[256];  /* xs_write to this path fails with EACCES */

static struct fstore *cur(xs_transaction_t t)
{
    return t != XBT_NULL && in_tx ? &txcopy : &live;
}

static struct fnode *find(struct fstore *s, const char *p)
{
    for (size_t i = 0; i < s->count; i++)
        if (!strcmp(s->n[i].path, p))
            return &s->n[i];
    return NULL;
}

/* Create p and missing parents; a new node inherits its parent's permissions. */
static struct fnode *create(struct fstore *s, const char *p)
{
    struct fnode *n = find(s, p);
    if (n)
        return n;
    char parent[256];
    snprintf(parent, sizeof(parent), "%s", p);
    char *slash = strrchr(parent, '/');
    const char *perms = "n0";
    if (slash && slash != parent) {
        *slash = '\0';
        perms = create(s, parent)->perms;
    }
    n = &s->n[s->count++];
    snprintf(n->path, sizeof(n->path), "%s", p);
    n->value[0] = '\0';
    snprintf(n->perms, sizeof(n->perms), "%s", perms);
    return n;
}

static bool under(const char *p, const char *dir)
{
    size_t l = strlen(dir);
    return !strncmp(p, dir, l) && (p[l] == '\0' || p[l] == '/');
}

void *fake_xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned *len)
{
    struct fnode *n = find(cur(t), path);
    if (!n) {
        errno = ENOENT;
        return NULL;
    }
    *len = (unsigned)strlen(n->value);
    return strdup(n->value);
}

bool fake_xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data,
                   unsigned len)
{
    if (!strcmp(path, fail_write_path)) {
        errno = EACCES;
        return false;
    }
    struct fnode *n = create(cur(t), path);
    snprintf(n->value, sizeof(n->value), "%.*s", (int)len, (const char *)data);
    return true;
}

bool fake_xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    create(cur(t), path);
    return true;
}

bool fake_xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    struct fstore *s = cur(t);
    if (!find(s, path)) {
        errno = ENOENT;
        return false;
    }
    size_t w = 0;
    for (size_t i = 0; i < s->count; i++)
        if (!under(s->n[i].path, path))
            s->n[w++] = s->n[i];
    s->count = w;
    return true;
}

char **fake_xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path,
                         unsigned *num)
{
    struct fstore *s = cur(t);
    if (!find(s, path)) {
        errno = ENOENT;
        return NULL;
    }
    char **out = calloc(s->count + 1, sizeof(char *) + 256);
    char *names = (char *)(out + s->count + 1);
    unsigned k = 0;
    size_t l = strlen(path);
    for (size_t i = 0; i < s->count; i++) {
        const char *p = s->n[i].path;
        if (!strncmp(p, path, l) && p[l] == '/' && !strchr(p + l + 1, '/')) {
            out[k] = names + 256 * k;
            snprintf(out[k], 256, "%s", p + l + 1);
            k++;
        }
    }
    *num = k;
    return out;
}

bool fake_xs_set_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
                             struct xs_permissions *perms, unsigned num)
{
    struct fnode *n = find(cur(t), path);
    if (!n) {
        errno = ENOENT;
        return false;
    }
    size_t o = 0;
    for (unsigned i = 0; i < num; i++) {
        const char c = perms[i].perms == XS_PERM_NONE    ? 'n'
                       : perms[i].perms == XS_PERM_READ  ? 'r'
                       : perms[i].perms == XS_PERM_WRITE ? 'w'
                                                         : 'b';
        o += snprintf(n->perms + o, sizeof(n->perms) - o, "%s%c%u", i ? "," : "", c,
                      perms[i].id);
    }
    return true;
}

xs_transaction_t fake_xs_transaction_start(struct xs_handle *h)
{
    CU_ASSERT_FALSE(in_tx);      /* the layout code never nests transactions */
    txcopy = live;
    in_tx = true;
    return 1;
}

bool fake_xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort_tx)
{
    in_tx = false;
    if (abort_tx)
        return true;
    commits++;
    if (fail_commits > 0) {
        fail_commits--;
        errno = EAGAIN;
        return false;
    }
    live = txcopy;
    return true;
}

/* ---- helpers ---- */

static void reset(void)
{
    memset(&live, 0, sizeof(live));
    in_tx = false;
    fail_commits = commits = 0;
    fail_write_path[0] = '\0';
    /* what xenstored starts with (xenstored) */
    create(&live, "/tool/xenstored");
    create(&live, "/local/domain/0/name");
    snprintf(find(&live, "/local/domain/0/name")->value, 256, "Domain-0");
}

static bool same(const struct fstore *a, const struct fstore *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        bool found = false;
        for (size_t j = 0; j < b->count && !found; j++)
            found = !memcmp(&a->n[i], &b->n[j], sizeof(a->n[i]));
        if (!found) {
            printf("  differs at %s\n", a->n[i].path);
            return false;
        }
    }
    return true;
}

static struct sx_cfg_disk disk = {
    .vdev = "xvda", .devid = 51712, .target = "/tmp/disk.img", .readwrite = true,
    .discard = true, .trusted = true,
};
static struct sx_cfg_vif vif = {
    .devid = 0, .mac = { 0x00, 0x16, 0x3e, 0, 0, 1 }, .bridge = "xenbr0",
    .script = "vif-bridge", .mtu = 1500, .trusted = true,
};

static void build(struct sx_layout *l, bool domain, bool devices)
{
    struct sx_layout_dom d = {
        .domid = 1, .name = "domu1", .uuid = "5b5119ea-e6a2-11f1-a9dd-46aa4027df80",
        .memory_kb = 262144, .maxmem_kb = 262144, .vcpus = 1, .maxvcpus = 1,
        .store_port = -1, .store_ring_ref = -1,
    };
    sx_layout_init(l);
    if (domain)
        CU_ASSERT_EQUAL_FATAL(sx_layout_add_domain(l, &d), 0);
    if (devices) {
        CU_ASSERT_EQUAL_FATAL(sx_layout_add_vbd(l, 1, 0, SX_CFG_PV, &disk), 0);
        CU_ASSERT_EQUAL_FATAL(sx_layout_add_vif(l, 1, 0, &vif), 0);
    }
}

/* ---- tests ---- */

static void test_apply_writes_every_node_with_its_perms(void)
{
    struct sx_layout l;
    reset();
    build(&l, true, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &l), 0);
    CU_ASSERT_EQUAL(commits, 1);
    for (size_t i = 0; i < l.n; i++) {
        struct fnode *n = find(&live, l.nodes[i].path);
        CU_ASSERT_PTR_NOT_NULL(n);
        if (!n)
            continue;
        if (strcmp(n->perms, l.nodes[i].perms))
            printf("  %s: perms %s, want %s\n", n->path, n->perms, l.nodes[i].perms);
        CU_ASSERT_STRING_EQUAL(n->perms, l.nodes[i].perms);
        CU_ASSERT_STRING_EQUAL(n->value, l.nodes[i].value);
    }
    /* exactly the layout plus the initial nodes: nothing created on the side */
    /* /tool, /tool/xenstored, /local, /local/domain, /local/domain/0 and its name */
    CU_ASSERT_EQUAL(live.count, l.n + 6);
    sx_layout_clear(&l);
}

static void test_existing_shared_parent_keeps_its_perms(void)
{
    struct sx_layout l;
    reset();
    snprintf(create(&live, "/local/domain/0/backend")->perms, 64, "n0,r7");
    build(&l, true, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &l), 0);
    CU_ASSERT_STRING_EQUAL(find(&live, "/local/domain/0/backend")->perms, "n0,r7");
    /* its children that the layout creates get their own */
    CU_ASSERT_STRING_EQUAL(find(&live, "/local/domain/0/backend/vbd/1/51712")->perms, "n0,r1");
    sx_layout_clear(&l);
}

static void test_apply_retries_on_eagain(void)
{
    struct sx_layout l;
    reset();
    build(&l, true, true);
    fail_commits = 3;
    CU_ASSERT_EQUAL(sx_layout_apply(NULL, &l), 0);
    CU_ASSERT_EQUAL(commits, 4);
    CU_ASSERT_PTR_NOT_NULL(find(&live, "/local/domain/1/device/vif/0/mac"));
    sx_layout_clear(&l);
}

static void test_apply_gives_up_after_bounded_retries(void)
{
    struct sx_layout l;
    reset();
    struct fstore before = live;
    build(&l, true, true);
    fail_commits = 1000;
    CU_ASSERT_EQUAL(sx_layout_apply(NULL, &l), -EAGAIN);
    CU_ASSERT_EQUAL(commits, SX_LAYOUT_RETRIES);
    CU_ASSERT_TRUE(same(&live, &before));
    sx_layout_clear(&l);
}

static void test_failed_write_aborts_everything(void)
{
    struct sx_layout l;
    reset();
    struct fstore before = live;
    build(&l, true, true);
    snprintf(fail_write_path, sizeof(fail_write_path), "/local/domain/0/backend/vif/1/0/mac");
    CU_ASSERT_EQUAL(sx_layout_apply(NULL, &l), -EACCES);
    CU_ASSERT_EQUAL(commits, 0);
    CU_ASSERT_TRUE(same(&live, &before));
    sx_layout_clear(&l);
}

static void test_unapply_restores_the_store(void)
{
    struct sx_layout l;
    reset();
    struct fstore before = live;
    build(&l, true, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &l), 0);
    CU_ASSERT_EQUAL(sx_layout_unapply(NULL, &l), 0);
    CU_ASSERT_TRUE(same(&live, &before));
    sx_layout_clear(&l);
}

static void test_remove_domain_from_xenstore_alone(void)
{
    struct sx_layout l;
    reset();
    struct fstore before = live;
    build(&l, true, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &l), 0);
    /* a backend wrote its own keys meanwhile: they go with the backend directory */
    create(&live, "/local/domain/0/backend/vbd/1/51712/feature-flush-cache");
    create(&live, "/local/domain/0/backend/vif/1/0/hotplug-status");
    CU_ASSERT_EQUAL(sx_layout_remove_domain(NULL, 1), 0);
    CU_ASSERT_TRUE(same(&live, &before));
    CU_ASSERT_EQUAL(sx_layout_remove_domain(NULL, 0), -EPERM);
    sx_layout_clear(&l);
}

static void test_remove_one_device_keeps_the_rest(void)
{
    struct sx_layout dom, dev;
    reset();
    build(&dom, true, false);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &dom), 0);
    struct fstore with_domain = live;
    build(&dev, false, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &dev), 0);
    CU_ASSERT_EQUAL(sx_layout_remove_device(NULL, 1, "vbd", 51712), 0);
    CU_ASSERT_PTR_NULL(find(&live, "/local/domain/0/backend/vbd"));
    CU_ASSERT_PTR_NULL(find(&live, "/local/domain/1/device/vbd"));
    CU_ASSERT_PTR_NOT_NULL(find(&live, "/local/domain/1/device/vif/0"));
    CU_ASSERT_EQUAL(sx_layout_remove_device(NULL, 1, "vbd", 51712), -ENOENT);
    CU_ASSERT_EQUAL(sx_layout_remove_device(NULL, 1, "vif", 0), 0);
    CU_ASSERT_TRUE(same(&live, &with_domain));
    sx_layout_clear(&dom);
    sx_layout_clear(&dev);
}

static void test_remove_ignores_forged_paths(void)
{
    struct sx_layout l;
    reset();
    build(&l, true, true);
    CU_ASSERT_EQUAL_FATAL(sx_layout_apply(NULL, &l), 0);
    /* a corrupted record must not make the toolstack remove someone else's tree */
    snprintf(find(&live, "/libxl/1/device/vbd/51712/backend")->value, 256, "/local/domain/0");
    CU_ASSERT_EQUAL(sx_layout_remove_domain(NULL, 1), 0);
    CU_ASSERT_PTR_NOT_NULL(find(&live, "/local/domain/0/name"));
    sx_layout_clear(&l);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_apply_writes_every_node_with_its_perms),
    SX_TEST(test_existing_shared_parent_keeps_its_perms),
    SX_TEST(test_apply_retries_on_eagain),
    SX_TEST(test_apply_gives_up_after_bounded_retries),
    SX_TEST(test_failed_write_aborts_everything),
    SX_TEST(test_unapply_restores_the_store),
    SX_TEST(test_remove_domain_from_xenstore_alone),
    SX_TEST(test_remove_one_device_keeps_the_rest),
    SX_TEST(test_remove_ignores_forged_paths),
};

SX_TEST_MAIN("toolstack/layout_xs", cases, NULL, NULL)
