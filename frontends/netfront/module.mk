# frontends/netfront: the userspace netif frontend library (sxnetfront) and the TAP netfront
# program for network namespaces (splitxen-tapfront).
LIBS += sxnetfront
sxnetfront_SRCS := frontends/netfront/xenbus.c frontends/netfront/tx.c \
                   frontends/netfront/rx.c frontends/netfront/vnet.c
SX_NETFRONT_LIBS := sxnetfront $(SX_NETDEV_LIBS) $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
SX_NETFRONT_LDLIBS := $(SX_NETDEV_LDLIBS) $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

PROGS += splitxen-tapfront
splitxen-tapfront_SRCS := frontends/netfront/tapfront.c
splitxen-tapfront_LIBS := $(SX_GUEST_LIBS) $(SX_NETFRONT_LIBS)
splitxen-tapfront_LDLIBS := $(SX_GUEST_LDLIBS) $(SX_NETFRONT_LDLIBS)

UNIT_TESTS += netfront_test
netfront_test_SRCS := tests/netfront/netfront_test.c
netfront_test_LIBS := $(SX_NETFRONT_LIBS) $(SX_NETBACK_LIBS) $(SX_SIMENV_LIBS)
netfront_test_LDLIBS := $(SX_NETFRONT_LDLIBS) $(SX_NETBACK_LDLIBS) -lcunit

# A minimal two-port netif backend for the tapfront integration test (tests/netfront/).
PROGS += splitxen-test-netloop
splitxen-test-netloop_SRCS := tests/netfront/netloop.c
splitxen-test-netloop_LIBS := $(SX_NETBACK_LIBS)
splitxen-test-netloop_LDLIBS := $(SX_NETBACK_LDLIBS)
