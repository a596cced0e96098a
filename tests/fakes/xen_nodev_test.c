/*
 * The xen platform against the REAL libxengnttab / libxenevtchn / libxenstore / libxenctrl on a
 * host without Xen: the libraries link, and sx's xen open returns -errno (-ENOENT when the
 * device node is missing) instead of crashing. On a host that has the device node the open is
 * allowed to succeed, and is closed again.
 * (Lives with the fakes because it is their counterpart: same code, real libraries.)
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenstore.h>

#include "evtchn/evtchn_impl.h"
#include "grant/grant_impl.h"
#include "tests/sxtest.h"

static struct sx_plat plat = { .kind = SX_PLAT_XEN, .self = 0 };

static bool present(const char *path)
{
    return access(path, F_OK) == 0;
}

static void check_open(int (*open)(void **, struct sx_plat *), void (*close_fn)(void *),
                       const char *dev)
{
    void *priv = (void *)&plat;
    int rc = open(&priv, &plat);

    if (!present(dev)) {
        CU_ASSERT_EQUAL(rc, -ENOENT);
        CU_ASSERT_PTR_NULL(priv);
    } else {
        CU_ASSERT(rc == 0 || (rc < 0 && rc > -4096));
        CU_ASSERT((rc == 0) == (priv != NULL));
    }
    if (rc == 0)
        close_fn(priv);
}

static void test_evtchn_open_without_xen_is_neg_errno(void)
{
    check_open(sx_evtchn_xen_ops.open, sx_evtchn_xen_ops.close, "/dev/xen/evtchn");
}

static void test_gnt_open_without_xen_is_neg_errno(void)
{
    check_open(sx_gnt_xen_ops.open, sx_gnt_xen_ops.close, "/dev/xen/gntdev");
}

static void test_gntshr_open_without_xen_is_neg_errno(void)
{
    check_open(sx_gntshr_xen_ops.open, sx_gntshr_xen_ops.close, "/dev/xen/gntalloc");
}

/* libxenstore and libxenctrl link and fail cleanly too (what the xen platform's xenstore
 * client and toolstack pieces will call). */
static void test_xenstore_and_xenctrl_fail_cleanly_without_xen(void)
{
    struct xs_handle *xs;
    xc_interface *xc;

    unsetenv("XENSTORED_PATH");                  /* do not pick up a sim xenstored */
    xs = xs_open(0);
    if (!present("/var/run/xenstored/socket") && !present("/dev/xen/xenbus"))
        CU_ASSERT_PTR_NULL(xs);
    if (xs)
        xs_close(xs);

    xc = xc_interface_open(NULL, NULL, 0);
    if (!present("/dev/xen/privcmd") && !present("/proc/xen/privcmd"))
        CU_ASSERT_PTR_NULL(xc);
    if (xc)
        xc_interface_close(xc);
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_evtchn_open_without_xen_is_neg_errno),
    SX_TEST(test_gnt_open_without_xen_is_neg_errno),
    SX_TEST(test_gntshr_open_without_xen_is_neg_errno),
    SX_TEST(test_xenstore_and_xenctrl_fail_cleanly_without_xen),
};

SX_TEST_MAIN("xen_nodev", cases, NULL, NULL)
