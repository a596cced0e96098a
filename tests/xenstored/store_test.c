/* Unit tests for xenstored's node store: permissions, paths, quotas, transactions, watches. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tests/sxtest.h"
#include "xenstored/store.h"

static struct sxs_store *st;
static struct sxs_quota quota;
static const struct sxs_who dom0 = { .domid = 0, .target = SXS_NO_TARGET, .priv = true };
static const struct sxs_who dom1 = { .domid = 1, .target = SXS_NO_TARGET, .priv = false };
static const struct sxs_who dom2 = { .domid = 2, .target = SXS_NO_TARGET, .priv = false };

/* Recorded watch firings. */
#define MAX_FIRED 256
static struct {
    char path[256];
    bool exact;
    bool readable_by_1;
} fired[MAX_FIRED];
static int nfired;

static void record(void *arg, const struct sxs_change *ch)
{
    (void)arg;
    if (nfired == MAX_FIRED)
        return;
    snprintf(fired[nfired].path, sizeof(fired[nfired].path), "%s", ch->path);
    fired[nfired].exact = ch->exact;
    bool r = false;
    for (int i = 0; i < 3; i++)
        if (ch->perms[i] && (sxs_perm_for(&dom1, ch->perms[i], ch->nperms[i]) & XS_PERM_READ))
            r = true;
    fired[nfired].readable_by_1 = r;
    nfired++;
}

static int find_fired(const char *path, bool exact)
{
    for (int i = 0; i < nfired; i++)
        if (!strcmp(fired[i].path, path) && fired[i].exact == exact)
            return i;
    return -1;
}

static void fresh(void)
{
    /* Whatever the previous test did left a consistent store. */
    if (st)
        CU_ASSERT_EQUAL(sxs_store_check(st), 0);
    sxs_store_close(st);
    st = NULL;
    sxs_quota_default(&quota);
    CU_ASSERT_FATAL(sxs_store_open(&st, &quota) == 0);
    sxs_store_set_fire(st, record, NULL);
    nfired = 0;
}

static int w(const struct sxs_who *who, struct sxs_tx *tx, const char *path, const char *val)
{
    return sxs_store_write(st, who, tx, path, val, (unsigned)strlen(val));
}

/* Read into a static buffer; returns 0 or -errno. */
static char rbuf[4096];
static int r(const struct sxs_who *who, struct sxs_tx *tx, const char *path)
{
    const char *d;
    unsigned len;
    int rc = sxs_store_read(st, who, tx, path, &d, &len);
    if (!rc) {
        memcpy(rbuf, d, len);
        rbuf[len] = '\0';
    }
    return rc;
}

static int chmod_(const struct sxs_who *who, const char *path, const char *p0, const char *p1)
{
    struct xs_permissions p[2];
    unsigned n = 1;
    if (sxs_perm_parse(p0, &p[0]))
        return -EINVAL;
    if (p1) {
        if (sxs_perm_parse(p1, &p[1]))
            return -EINVAL;
        n = 2;
    }
    return sxs_store_set_perms(st, who, NULL, path, p, n);
}

static void test_initial_tree_has_dom0_and_tool(void)
{
    fresh();
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/local/domain/0/name"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "Domain-0");
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/local/domain/0/domid"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "0");
    const char *ch;
    unsigned len;
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/", &ch, &len, NULL), 0);
    CU_ASSERT_EQUAL(len, sizeof("tool\0local"));
    CU_ASSERT_EQUAL(memcmp(ch, "tool\0local", len), 0);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/tool/xenstored"), 0);
}

static void test_perm_strings_parse_and_format(void)
{
    struct xs_permissions p;
    char buf[16];
    CU_ASSERT_EQUAL(sxs_perm_parse("r1", &p), 0);
    CU_ASSERT_EQUAL(p.id, 1);
    CU_ASSERT_EQUAL(p.perms, XS_PERM_READ);
    CU_ASSERT_EQUAL(sxs_perm_parse("b65535", &p), 0);
    CU_ASSERT_EQUAL(p.perms, XS_PERM_READ | XS_PERM_WRITE);
    CU_ASSERT_EQUAL(sxs_perm_parse("n0", &p), 0);
    CU_ASSERT_EQUAL(p.perms, XS_PERM_NONE);
    CU_ASSERT_EQUAL(sxs_perm_parse("w7", &p), 0);
    CU_ASSERT_EQUAL(p.perms, XS_PERM_WRITE);
    CU_ASSERT_EQUAL(sxs_perm_format(&p, buf, sizeof(buf)), 2);
    CU_ASSERT_STRING_EQUAL(buf, "w7");
    CU_ASSERT_EQUAL(sxs_perm_parse("x1", &p), -EINVAL);
    CU_ASSERT_EQUAL(sxs_perm_parse("r", &p), -EINVAL);
    CU_ASSERT_EQUAL(sxs_perm_parse("r1x", &p), -EINVAL);
    CU_ASSERT_EQUAL(sxs_perm_parse("r65536", &p), -EINVAL);
    CU_ASSERT_EQUAL(sxs_perm_parse("r-1", &p), -EINVAL);
}

static void test_perm_for_owner_default_and_explicit_entries(void)
{
    struct xs_permissions p[3] = { { 1, XS_PERM_NONE }, { 2, XS_PERM_READ }, { 3, XS_PERM_WRITE } };
    const unsigned all = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
    struct sxs_who d3 = { 3, SXS_NO_TARGET, false }, d4 = { 4, SXS_NO_TARGET, false };
    CU_ASSERT_EQUAL(sxs_perm_for(&dom1, p, 3), all);           /* owner */
    CU_ASSERT_EQUAL(sxs_perm_for(&dom2, p, 3), XS_PERM_READ);  /* explicit */
    CU_ASSERT_EQUAL(sxs_perm_for(&d3, p, 3), XS_PERM_WRITE);
    CU_ASSERT_EQUAL(sxs_perm_for(&d4, p, 3), XS_PERM_NONE);    /* default = owner entry */
    CU_ASSERT_EQUAL(sxs_perm_for(&dom0, p, 3), all);           /* privileged */
    p[0].perms = XS_PERM_READ;
    CU_ASSERT_EQUAL(sxs_perm_for(&d4, p, 3), XS_PERM_READ);
    /* A device model acting for its target gets the target's rights. */
    struct sxs_who dm = { 5, 1, false };
    CU_ASSERT_EQUAL(sxs_perm_for(&dm, p, 3), all);
}

static void test_path_validation(void)
{
    fresh();
    char *out;
    size_t pl;
    CU_ASSERT_EQUAL(sxs_canon(st, &dom1, "device/vbd", false, &out, &pl), 0);
    CU_ASSERT_STRING_EQUAL(out, "/local/domain/1/device/vbd");
    CU_ASSERT_EQUAL(pl, strlen("/local/domain/1/"));
    free(out);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom1, "/a/b-c_d@e", false, &out, &pl), 0);
    CU_ASSERT_EQUAL(pl, 0);
    free(out);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/", false, &out, NULL), 0);
    free(out);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "@releaseDomain", true, &out, NULL), 0);
    free(out);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "@releaseDomain", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/a/", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/a//b", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/a b", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/a.b", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, "/a\n", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom1, "", false, &out, NULL), -EINVAL);
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, NULL, false, &out, NULL), -EINVAL);
    /* Length: at most path_max below /local/domain/<id>/, and absolute outside it. */
    char big[3000];
    memset(big, 'x', sizeof(big));
    big[0] = '/';
    big[XENSTORE_REL_PATH_MAX] = '\0'; /* "/" + 2047 x: 2048 chars */
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, big, false, &out, NULL), 0);
    free(out);
    big[XENSTORE_REL_PATH_MAX] = 'x';
    big[XENSTORE_REL_PATH_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(sxs_canon(st, &dom0, big, false, &out, NULL), -EINVAL);
    memset(big, 'x', sizeof(big));
    big[XENSTORE_REL_PATH_MAX] = '\0'; /* relative: 2048 chars below the domain path */
    CU_ASSERT_EQUAL(sxs_canon(st, &dom1, big, false, &out, NULL), 0);
    free(out);
    big[XENSTORE_REL_PATH_MAX] = 'x';
    big[XENSTORE_REL_PATH_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(sxs_canon(st, &dom1, big, false, &out, NULL), -EINVAL);
}

static void test_write_creates_parents_inheriting_perms(void)
{
    fresh();
    CU_ASSERT_EQUAL(sxs_store_mkdir(st, &dom0, NULL, "/local/domain/1"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1", "n1", "r0"), 0);
    /* Guest 1 owns its home, so it may create below it; parents are created implicitly. */
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/1/a/b/c", "v"), 0);
    const struct xs_permissions *p;
    unsigned n;
    CU_ASSERT_EQUAL(sxs_store_get_perms(st, &dom0, NULL, "/local/domain/1/a/b", &p, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(p[0].id, 1);
    CU_ASSERT_EQUAL(p[1].id, 0);
    CU_ASSERT_EQUAL(p[1].perms, XS_PERM_READ);
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 4); /* home + a + b + c */
    /* Dom0 creating under a guest-owned node keeps the inherited owner. */
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/1/x/y", "1"), 0);
    CU_ASSERT_EQUAL(sxs_store_get_perms(st, &dom0, NULL, "/local/domain/1/x/y", &p, &n), 0);
    CU_ASSERT_EQUAL(p[0].id, 1);
    /* An unprivileged writer becomes owner of what it creates under a node it may write. */
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/shared/dir", ""), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/shared/dir", "n0", "b2"), 0);
    CU_ASSERT_EQUAL(w(&dom2, NULL, "/shared/dir/k", "v2"), 0);
    CU_ASSERT_EQUAL(sxs_store_get_perms(st, &dom0, NULL, "/shared/dir/k", &p, &n), 0);
    CU_ASSERT_EQUAL(p[0].id, 2);
    CU_ASSERT_EQUAL(n, 2);
    const char *ch;
    unsigned len;
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/local/domain/1", &ch, &len, NULL), 0);
    CU_ASSERT_EQUAL(len, sizeof("a\0x"));
    CU_ASSERT_EQUAL(memcmp(ch, "a\0x", len), 0);
}

static void test_guest_denied_other_domains_node_unless_granted(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/2/secret", "s"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/2/secret", "n2", NULL), 0);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/2/secret"), -EACCES);
    CU_ASSERT_EQUAL(r(&dom2, NULL, "/local/domain/2/secret"), 0);
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/2/secret", "x"), -EACCES);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/2/secret", "n2", "r1"), 0);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/2/secret"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "s");
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/2/secret", "x"), -EACCES);
    /* A missing node under an unreadable parent is EACCES, not ENOENT (no existence leak);
     * under a readable one it is ENOENT. */
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/2/nothing"), -EACCES);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/2/secret/nothing"), -ENOENT);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/local/domain/2/nothing"), -ENOENT);
}

static void test_set_perms_only_owner_and_no_giving_away(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/1/k", "v"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1/k", "n1", NULL), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/2/k", "v"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/2/k", "b2", "b1"), 0);
    /* Dom1 may read and write dom2's node but is not its owner. */
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/2/k", "w"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom1, "/local/domain/2/k", "b2", "b1"), -EACCES);
    /* The owner may change the list but not the owner. */
    CU_ASSERT_EQUAL(chmod_(&dom1, "/local/domain/1/k", "n1", "r2"), 0);
    CU_ASSERT_EQUAL(r(&dom2, NULL, "/local/domain/1/k"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom1, "/local/domain/1/k", "n2", NULL), -EPERM);
    /* Too many entries for an unprivileged domain. */
    struct xs_permissions p[7];
    for (int i = 0; i < 7; i++)
        p[i] = (struct xs_permissions){ (unsigned)(i ? i + 1 : 1), XS_PERM_READ };
    CU_ASSERT_EQUAL(sxs_store_set_perms(st, &dom1, NULL, "/local/domain/1/k", p, 7), -ENOSPC);
    CU_ASSERT_EQUAL(sxs_store_set_perms(st, &dom0, NULL, "/local/domain/1/k", p, 7), 0);
    /* Special nodes have permissions too. */
    const struct xs_permissions *gp;
    unsigned n;
    CU_ASSERT_EQUAL(sxs_store_get_perms(st, &dom0, NULL, "@releaseDomain", &gp, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(gp[0].perms, XS_PERM_NONE);
}

static void test_rm_removes_subtree_and_missing_is_fine(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/a/b/c", "1"), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/a/b/d", "2"), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/a/e", "3"), 0);
    unsigned before = sxs_store_node_count(st);
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/a/b"), 0);
    CU_ASSERT_EQUAL(sxs_store_node_count(st), before - 3);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/a/b/c"), -ENOENT);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/a/e"), 0);
    const char *ch;
    unsigned len;
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/a", &ch, &len, NULL), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_STRING_EQUAL(ch, "e");
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/a/zzz"), 0);      /* parent exists */
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/q/zzz"), -ENOENT); /* it does not */
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/"), -EINVAL);
    CU_ASSERT_EQUAL(sxs_store_mkdir(st, &dom0, NULL, "/a/e"), 0);     /* exists: fine */
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/a/e"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "3");
}

static void test_quota_nodes_per_domain(void)
{
    fresh();
    quota.nodes_per_domain = 5;
    sxs_store_set_quota(st, &quota);
    CU_ASSERT_EQUAL(sxs_store_mkdir(st, &dom0, NULL, "/local/domain/1"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1", "n1", NULL), 0); /* 1 node owned */
    char p[64];
    int ok = 0, rc = 0;
    for (int i = 0; i < 10 && !rc; i++) {
        snprintf(p, sizeof(p), "/local/domain/1/n%d", i);
        rc = w(&dom1, NULL, p, "x");
        ok += !rc;
    }
    CU_ASSERT_EQUAL(ok, 4);
    CU_ASSERT_EQUAL(rc, -ENOSPC);
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 5);
    /* A multi-level create that would cross the quota creates nothing. */
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom1, NULL, "/local/domain/1/n0"), 0);
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/1/d/e", "x"), -ENOSPC);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/1/d"), -ENOENT);
    /* Overwriting an existing node needs no quota; dom0 is exempt. */
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/1/n1", "y"), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof(p), "/dom0stuff/n%d", i);
        CU_ASSERT_EQUAL(w(&dom0, NULL, p, "x"), 0);
    }
    /* The quota holds inside a transaction, and again at commit (nodes created outside it
     * meanwhile, in a place the transaction did not touch, so there is no conflict). */
    for (int i = 1; i < 4; i++) {
        snprintf(p, sizeof(p), "/local/domain/1/n%d", i);
        CU_ASSERT_EQUAL(sxs_store_rm(st, &dom1, NULL, p), 0);
    }
    CU_ASSERT_EQUAL(sxs_store_mkdir(st, &dom1, NULL, "/local/domain/1/other"), 0);
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 2);
    struct sxs_tx *tx;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom1, &tx), 0);
    CU_ASSERT_EQUAL(w(&dom1, tx, "/local/domain/1/t1", "x"), 0);
    CU_ASSERT_EQUAL(w(&dom1, tx, "/local/domain/1/t2", "x"), 0);
    CU_ASSERT_EQUAL(w(&dom1, tx, "/local/domain/1/t3", "x"), 0);
    CU_ASSERT_EQUAL(w(&dom1, tx, "/local/domain/1/t4", "x"), -ENOSPC);
    CU_ASSERT_EQUAL(w(&dom1, NULL, "/local/domain/1/other/a", "x"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom1, tx, true), -ENOSPC);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/1/t1"), -ENOENT);
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 3);
}

static void test_quota_node_size(void)
{
    fresh();
    CU_ASSERT_EQUAL(sxs_store_mkdir(st, &dom0, NULL, "/local/domain/1"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1", "n1", NULL), 0);
    static char big[4000];
    memset(big, 'v', sizeof(big));
    unsigned max = quota.max_node_size - (unsigned)sizeof(struct xs_permissions);
    CU_ASSERT_EQUAL(sxs_store_write(st, &dom1, NULL, "/local/domain/1/v", big, max), 0);
    CU_ASSERT_EQUAL(sxs_store_write(st, &dom1, NULL, "/local/domain/1/v", big, max + 1), -ENOSPC);
    CU_ASSERT_EQUAL(sxs_store_write(st, &dom1, NULL, "/local/domain/1/new", big, max + 1), -ENOSPC);
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/1/new"), -ENOENT);
    CU_ASSERT_EQUAL(sxs_store_write(st, &dom0, NULL, "/local/domain/1/v", big, 4000), 0);
}

static void test_tx_conflict_gets_eagain(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/t/a", "0"), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/t/b", "0"), 0);
    struct sxs_tx *t1, *t2;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t1), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t2), 0);
    CU_ASSERT_EQUAL(r(&dom0, t1, "/t/a"), 0);
    CU_ASSERT_EQUAL(r(&dom0, t2, "/t/b"), 0);
    CU_ASSERT_EQUAL(w(&dom0, t1, "/t/b", "1"), 0);
    CU_ASSERT_EQUAL(w(&dom0, t2, "/t/a", "2"), 0);
    /* Isolation: t1's write is invisible outside it, visible inside. */
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/b"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "0");
    CU_ASSERT_EQUAL(r(&dom0, t1, "/t/b"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "1");
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t1, true), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t2, true), -EAGAIN);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/a"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "0");
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/b"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "1");
}

static void test_tx_conflicts_on_delete_and_concurrent_create(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/t/a", "0"), 0);
    struct sxs_tx *tx;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &tx), 0);
    CU_ASSERT_EQUAL(r(&dom0, tx, "/t/a"), 0);
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/t/a"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, tx, true), -EAGAIN);
    /* Two creators of the same new node: the second commit fails. */
    struct sxs_tx *t1, *t2;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t1), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t2), 0);
    CU_ASSERT_EQUAL(w(&dom0, t1, "/t/new", "1"), 0);
    CU_ASSERT_EQUAL(w(&dom0, t2, "/t/new", "2"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t1, true), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t2, true), -EAGAIN);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/new"), 0);
    CU_ASSERT_STRING_EQUAL(rbuf, "1");
    /* Unrelated transactions both commit. */
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t1), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &t2), 0);
    CU_ASSERT_EQUAL(w(&dom0, t1, "/t/new", "3"), 0);
    CU_ASSERT_EQUAL(w(&dom0, t2, "/u/x", "4"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t1, true), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, t2, true), 0);
}

static void test_tx_abort_discards_and_rm_inside_tx(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/t/a/b", "0"), 0);
    unsigned nodes = sxs_store_node_count(st);
    struct sxs_tx *tx;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &tx), 0);
    CU_ASSERT_EQUAL(w(&dom0, tx, "/t/c/d/e", "1"), 0);
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, tx, "/t/a"), 0);
    CU_ASSERT_EQUAL(r(&dom0, tx, "/t/a/b"), -ENOENT);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/a/b"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, tx, false), 0);
    CU_ASSERT_EQUAL(sxs_store_node_count(st), nodes);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/c"), -ENOENT);
    /* The same, committed. */
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &tx), 0);
    CU_ASSERT_EQUAL(w(&dom0, tx, "/t/c/d/e", "1"), 0);
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, tx, "/t/a"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, tx, true), 0);
    CU_ASSERT_EQUAL(sxs_store_node_count(st), nodes - 2 + 3);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/c/d/e"), 0);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/t/a"), -ENOENT);
    const char *ch;
    unsigned len;
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/t", &ch, &len, NULL), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_STRING_EQUAL(ch, "c");
}

static void test_watch_events_for_write_rm_and_tx(void)
{
    fresh();
    CU_ASSERT_TRUE(sxs_path_is_child("/a/b", "/a"));
    CU_ASSERT_TRUE(sxs_path_is_child("/a", "/a"));
    CU_ASSERT_FALSE(sxs_path_is_child("/ab", "/a"));
    CU_ASSERT_TRUE(sxs_path_is_child("/ab", "/"));
    CU_ASSERT_FALSE(sxs_path_is_child("@releaseDomain", "/"));

    CU_ASSERT_EQUAL(w(&dom0, NULL, "/w/x/y", "1"), 0);
    CU_ASSERT_EQUAL(nfired, 1);
    CU_ASSERT(find_fired("/w/x/y", false) >= 0);
    nfired = 0;
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/w/x"), 0);
    /* Descendants fire only watches exactly on them; the removed root fires everything on or
     * above it. */
    CU_ASSERT_EQUAL(nfired, 2);
    CU_ASSERT(find_fired("/w/x/y", true) >= 0);
    CU_ASSERT(find_fired("/w/x", false) >= 0);
    /* Nothing fires during a transaction; the commit fires once per changed node. */
    nfired = 0;
    struct sxs_tx *tx;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &tx), 0);
    CU_ASSERT_EQUAL(w(&dom0, tx, "/w/t", "1"), 0);
    CU_ASSERT_EQUAL(w(&dom0, tx, "/w/t", "2"), 0);
    CU_ASSERT_EQUAL(nfired, 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, tx, true), 0);
    CU_ASSERT_EQUAL(nfired, 1);
    CU_ASSERT(find_fired("/w/t", false) >= 0);
    /* An aborted transaction fires nothing. */
    nfired = 0;
    CU_ASSERT_EQUAL(sxs_store_tx_start(st, &dom0, &tx), 0);
    CU_ASSERT_EQUAL(w(&dom0, tx, "/w/t", "3"), 0);
    CU_ASSERT_EQUAL(sxs_store_tx_end(st, &dom0, tx, false), 0);
    CU_ASSERT_EQUAL(nfired, 0);
    /* Visibility: guest 1 may see a change only on a node (or parent) it can read, and a
     * chmod that takes its access away still reaches it (old permissions count). */
    nfired = 0;
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/w/t", "4"), 0);
    CU_ASSERT_EQUAL(nfired, 1);
    CU_ASSERT_FALSE(fired[0].readable_by_1);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/w/t", "n0", "r1"), 0);
    CU_ASSERT_TRUE(fired[1].readable_by_1);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/w/t", "n0", NULL), 0);
    CU_ASSERT_TRUE(fired[2].readable_by_1);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/w/t", "5"), 0);
    CU_ASSERT_FALSE(fired[3].readable_by_1);
    /* Special nodes fire exactly. */
    nfired = 0;
    sxs_store_fire_special(st, "@releaseDomain");
    CU_ASSERT_EQUAL(nfired, 1);
    CU_ASSERT(find_fired("@releaseDomain", true) >= 0);
}

static void test_many_children_and_generation(void)
{
    fresh();
    char p[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(p, sizeof(p), "/many/child-%04d", i);
        CU_ASSERT_EQUAL_FATAL(w(&dom0, NULL, p, "x"), 0);
    }
    const char *ch;
    unsigned len;
    uint64_t g1, g2;
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/many", &ch, &len, &g1), 0);
    CU_ASSERT_EQUAL(len, 2000 * sizeof("child-0000"));
    CU_ASSERT_STRING_EQUAL(ch, "child-0000"); /* insertion order */
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/many/child-0000"), 0);
    CU_ASSERT_EQUAL(sxs_store_directory(st, &dom0, NULL, "/many", &ch, &len, &g2), 0);
    CU_ASSERT_NOT_EQUAL(g1, g2);
    CU_ASSERT_STRING_EQUAL(ch, "child-0001");
    CU_ASSERT_EQUAL(sxs_store_rm(st, &dom0, NULL, "/many"), 0);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/many/child-0005"), -ENOENT);
}

/* XSA-419: a gone domain's nodes are removed (given to dom0, which has no quota, they would
 * pile up over reboots), its entries in other lists dropped (XSA-417: a later domain with its
 * domid inherits nothing). */
static void test_domain_gone_removes_its_nodes(void)
{
    fresh();
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/1/k", "v"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1", "n1", NULL), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/1/k", "n1", "r2"), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/local/domain/2/shared", "s"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/local/domain/2/shared", "n2", "b1"), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/elsewhere/by1", "x"), 0);
    CU_ASSERT_EQUAL(chmod_(&dom0, "/elsewhere/by1", "n1", NULL), 0);
    CU_ASSERT_EQUAL(w(&dom0, NULL, "/elsewhere/by1/dom0s", "y"), 0);   /* below it: goes too */
    unsigned nodes = sxs_store_node_count(st);
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 4);
    CU_ASSERT_TRUE(sxs_store_domain_gone(st, 1) >= 3);   /* two subtrees, one list */
    CU_ASSERT_EQUAL(sxs_store_nodes_owned(st, 1), 0);
    CU_ASSERT_EQUAL(sxs_store_node_count(st), nodes - 4);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/local/domain/1"), -ENOENT);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/elsewhere/by1/dom0s"), -ENOENT);
    CU_ASSERT_EQUAL(r(&dom0, NULL, "/elsewhere"), 0);
    /* A new domain 1 inherits nothing. */
    CU_ASSERT_EQUAL(r(&dom1, NULL, "/local/domain/2/shared"), -EACCES);
    const struct xs_permissions *p;
    unsigned n;
    CU_ASSERT_EQUAL(sxs_store_get_perms(st, &dom0, NULL, "/local/domain/2/shared", &p, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(p[0].id, 2);
    CU_ASSERT_EQUAL(sxs_store_check(st), 0);
}

static int suite_clean(void)
{
    int bad = st && sxs_store_check(st) != 0;
    sxs_store_close(st);
    st = NULL;
    return bad;
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_initial_tree_has_dom0_and_tool),
    SX_TEST(test_perm_strings_parse_and_format),
    SX_TEST(test_perm_for_owner_default_and_explicit_entries),
    SX_TEST(test_path_validation),
    SX_TEST(test_write_creates_parents_inheriting_perms),
    SX_TEST(test_guest_denied_other_domains_node_unless_granted),
    SX_TEST(test_set_perms_only_owner_and_no_giving_away),
    SX_TEST(test_rm_removes_subtree_and_missing_is_fine),
    SX_TEST(test_quota_nodes_per_domain),
    SX_TEST(test_quota_node_size),
    SX_TEST(test_tx_conflict_gets_eagain),
    SX_TEST(test_tx_conflicts_on_delete_and_concurrent_create),
    SX_TEST(test_tx_abort_discards_and_rm_inside_tx),
    SX_TEST(test_watch_events_for_write_rm_and_tx),
    SX_TEST(test_many_children_and_generation),
    SX_TEST(test_domain_gone_removes_its_nodes),
};

SX_TEST_MAIN("xenstored_store", cases, NULL, suite_clean)
