/*
 * platform/: the kind by name, the traits that differ, the sim xenstored paths, and
 * sx_plat_xs_open reaching the xenstore of the domain a handle acts as (an in-process
 * splitxen-core with xenstored), with $XENSTORED_PATH left as it was.
 */
#include "platform/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenstore.h>

#include "tests/simenv.h"
#include "tests/sxtest.h"

static struct simenv env;
static struct sx_plat *dom0, *guest;

static int setup(void)
{
    if (simenv_start(&env, true) < 0 || !(dom0 = simenv_plat(&env, 0)))
        return 1;
    int d = sxc_domain_create(dom0->conn, "plat-guest", SXD_TYPE_PV, 16, 1, false);
    return d < 0 || !(guest = simenv_plat(&env, (domid_t)d));
}

static int teardown(void)
{
    sx_plat_close(guest);
    sx_plat_close(dom0);
    simenv_stop(&env);
    return 0;
}

static void test_kind_from_name(void)
{
    CU_ASSERT_EQUAL(sx_plat_kind_from_name("sim"), SX_PLAT_SIM);
    CU_ASSERT_EQUAL(sx_plat_kind_from_name("xen"), SX_PLAT_XEN);
    int host = access("/dev/xen/privcmd", F_OK) == 0 ? SX_PLAT_XEN : SX_PLAT_SIM;
    CU_ASSERT_EQUAL(sx_plat_kind_from_name("auto"), host);
    CU_ASSERT_EQUAL(sx_plat_kind_from_name(NULL), host);
    CU_ASSERT_EQUAL(sx_plat_kind_from_name(""), host);
    CU_ASSERT_EQUAL(sx_plat_kind_from_name("kvm"), -EINVAL);
}

/* What a backend or the device model asks instead of testing the kind. */
static void test_traits(void)
{
    const struct sx_plat_traits *s = sx_plat_traits(SX_PLAT_SIM), *x = sx_plat_traits(SX_PLAT_XEN);
    CU_ASSERT_STRING_EQUAL(s->name, "sim");
    CU_ASSERT_STRING_EQUAL(x->name, "xen");
    CU_ASSERT_FALSE(s->hotplug_scripts);
    CU_ASSERT_TRUE(x->hotplug_scripts);
    CU_ASSERT_FALSE(s->companion_dm);
    CU_ASSERT_TRUE(x->companion_dm);
    CU_ASSERT_TRUE(s->vcpus_known);
    CU_ASSERT_FALSE(x->vcpus_known);
    CU_ASSERT_FALSE(s->dma_mapcache);
    CU_ASSERT_TRUE(x->dma_mapcache);
    CU_ASSERT_PTR_EQUAL(sx_plat_traits((enum sx_plat_kind)7), s);
}

static void test_xenstored_path(void)
{
    char p[300], want[300];
    CU_ASSERT_EQUAL(sx_xenstored_path(p, sizeof(p), 0), 0);
    snprintf(want, sizeof(want), "%s/xenstored/socket", env.dir);
    CU_ASSERT_STRING_EQUAL(p, want);
    CU_ASSERT_EQUAL(sx_xenstored_path(p, sizeof(p), 7), 0);
    snprintf(want, sizeof(want), "%s/xenstored/domain/7.sock", env.dir);
    CU_ASSERT_STRING_EQUAL(p, want);
    CU_ASSERT_EQUAL(sx_xenstored_path(p, 8, 7), -ENAMETOOLONG);
}

/* Whether xs may write a node only dom0 may write. */
static bool writes_as_dom0(struct xs_handle *xs)
{
    return xs_write(xs, XBT_NULL, "/tool/sx-plat-test", "1", 1);
}

/* A handle opens the xenstore of the domain it acts as: dom0's socket for dom0, the guest's
 * own for the guest (which may not write dom0's nodes). An explicit path wins; with neither a
 * handle nor a path, libxenstore's defaults ($XENSTORED_PATH) apply. $XENSTORED_PATH is what
 * it was afterwards, set or not. */
static void test_xs_open_per_domain_and_env_restored(void)
{
    struct xs_handle *xs;
    unsetenv("XENSTORED_PATH");
    CU_ASSERT_EQUAL_FATAL(sx_plat_xs_open(dom0, NULL, &xs), 0);
    CU_ASSERT_TRUE(writes_as_dom0(xs));
    xs_close(xs);
    CU_ASSERT_PTR_NULL(getenv("XENSTORED_PATH"));
    CU_ASSERT_EQUAL_FATAL(sx_plat_xs_open(guest, NULL, &xs), 0);
    CU_ASSERT_FALSE(writes_as_dom0(xs));
    xs_close(xs);

    char p0[300];
    CU_ASSERT_EQUAL_FATAL(sx_xenstored_path(p0, sizeof(p0), 0), 0);
    setenv("XENSTORED_PATH", "/nonexistent/sx", 1);
    CU_ASSERT_EQUAL_FATAL(sx_plat_xs_open(guest, p0, &xs), 0);   /* the path wins */
    CU_ASSERT_TRUE(writes_as_dom0(xs));
    xs_close(xs);
    CU_ASSERT_STRING_EQUAL(getenv("XENSTORED_PATH"), "/nonexistent/sx");
    CU_ASSERT(sx_plat_xs_open(NULL, NULL, &xs) < 0);   /* the defaults: $XENSTORED_PATH */
    setenv("XENSTORED_PATH", p0, 1);
    CU_ASSERT_EQUAL_FATAL(sx_plat_xs_open(NULL, NULL, &xs), 0);
    CU_ASSERT_TRUE(writes_as_dom0(xs));
    xs_close(xs);
    unsetenv("XENSTORED_PATH");
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_kind_from_name),
    SX_TEST(test_traits),
    SX_TEST(test_xenstored_path),
    SX_TEST(test_xs_open_per_domain_and_env_restored),
};

SX_TEST_MAIN("platform", cases, setup, teardown)
