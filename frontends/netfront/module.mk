# frontends/netfront: the userspace netif frontend library (sxnetfront) and the TAP netfront
# program for network namespaces (splitxen-tapfront).
# Module files are included in sorted path order, so xen-core/, xenbus/ and netback/ come after
# this one: expand SX_PLAT_LIBS / SX_PLAT_LDLIBS late (=, not :=).
LIBS += sxnetfront
sxnetfront_SRCS := frontends/netfront/xenbus.c frontends/netfront/tx.c \
                   frontends/netfront/rx.c frontends/netfront/vnet.c
NETFRONT_LIBS = sxnetfront sxnetback sxxenbus sxring $(SX_PLAT_LIBS)
NETFRONT_LDLIBS = $(SX_PLAT_LDLIBS) -lmnl

PROGS += splitxen-tapfront
splitxen-tapfront_SRCS := frontends/netfront/tapfront.c
splitxen-tapfront_LIBS = $(NETFRONT_LIBS)
splitxen-tapfront_LDLIBS = $(NETFRONT_LDLIBS)

UNIT_TESTS += netfront_test
netfront_test_SRCS := tests/netfront/netfront_test.c
netfront_test_LIBS = $(NETFRONT_LIBS)
netfront_test_LDLIBS = $(NETFRONT_LDLIBS) -lcunit

# A minimal two-port netif backend for the tapfront integration test (tests/netfront/).
PROGS += splitxen-test-netloop
splitxen-test-netloop_SRCS := tests/netfront/netloop.c
splitxen-test-netloop_LIBS = sxnetback sxxenbus sxring $(SX_PLAT_LIBS)
splitxen-test-netloop_LDLIBS = $(SX_PLAT_LDLIBS)
