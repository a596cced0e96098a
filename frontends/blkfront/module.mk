# frontends/blkfront: the userspace blkif frontend library (sxblkfront) and its tests.
# Module files are included in sorted path order, so xen-core/module.mk (SX_PLAT_LIBS) comes
# after this one: expand those variables late (=, not :=).
LIBS += sxblkfront
sxblkfront_SRCS := frontends/blkfront/blkfront.c frontends/blkfront/io.c

# Everything a program using sxblkfront links, in order.
SX_BLKFRONT_LIBS = sxblkfront sxxenbus sxring $(SX_PLAT_LIBS)

UNIT_TESTS += blkfront_test
blkfront_test_SRCS := tests/blkfront/blkfront_test.c
blkfront_test_LIBS = $(SX_BLKFRONT_LIBS)
blkfront_test_LDLIBS = $(SX_PLAT_LDLIBS) -lcunit

# Helper for tests/blkfront/*.itest: create a sim domain in a running splitxen-core.
PROGS += splitxen-test-mkdom
splitxen-test-mkdom_SRCS := tests/blkfront/mkdom.c
splitxen-test-mkdom_LIBS = $(SX_PLAT_LIBS)
splitxen-test-mkdom_LDLIBS = $(SX_PLAT_LDLIBS)

# A RAM-disk blkif backend for end-to-end frontend tests (tests/blkfront/fio_ramback.itest).
PROGS += splitxen-test-ramback
splitxen-test-ramback_SRCS := tests/blkfront/ramback.c
splitxen-test-ramback_LIBS = sxxenbus sxring $(SX_PLAT_LIBS)
splitxen-test-ramback_LDLIBS = $(SX_PLAT_LDLIBS)
