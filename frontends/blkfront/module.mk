# frontends/blkfront: the userspace blkif frontend library (sxblkfront) and its tests.
LIBS += sxblkfront
sxblkfront_SRCS := frontends/blkfront/blkfront.c frontends/blkfront/io.c
SX_BLKFRONT_LIBS := sxblkfront $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
SX_BLKFRONT_LDLIBS := $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

UNIT_TESTS += blkfront_test
blkfront_test_SRCS := tests/blkfront/blkfront_test.c
blkfront_test_LIBS := $(SX_BLKFRONT_LIBS) $(SX_SIMENV_LIBS)
blkfront_test_LDLIBS := $(SX_BLKFRONT_LDLIBS) -lcunit

# Helper for tests/blkfront/*.itest: create a sim domain in a running splitxen-core.
PROGS += splitxen-test-mkdom
splitxen-test-mkdom_SRCS := tests/blkfront/mkdom.c
splitxen-test-mkdom_LIBS := $(SX_XEN_CORE_LIBS)

# A RAM-disk blkif backend for end-to-end frontend tests (tests/blkfront/fio_ramback.itest).
PROGS += splitxen-test-ramback
splitxen-test-ramback_SRCS := tests/blkfront/ramback.c
splitxen-test-ramback_LIBS := $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
splitxen-test-ramback_LDLIBS := $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

# A guest that checks no acknowledged write is lost across a storage outage
# (tests/blkback/nbd_outage.itest).
PROGS += splitxen-test-ackcheck
splitxen-test-ackcheck_SRCS := tests/blkback/ackcheck.c
splitxen-test-ackcheck_LIBS := $(SX_BLKFRONT_LIBS)
splitxen-test-ackcheck_LDLIBS := $(SX_BLKFRONT_LDLIBS)
