# netback: netif backend. The control plane (xenbus.c), tx (netback.c) with the netif tx
# parser (pkt.c), rx (rx.c), the credit limiter (rate.c), multicast control (mcast.c), the ctrl
# ring and hashing (hash.c), rx steering (steer.c); the world side through netdev/. A library,
# so the hostile-frontend test can run the daemon in-process.
LIBS += sxnetback
sxnetback_SRCS := netback/pkt.c netback/xenbus.c netback/netback.c netback/rx.c \
                  netback/rate.c netback/mcast.c netback/hash.c netback/steer.c netback/check.c
SX_NETBACK_LIBS := sxnetback $(SX_NETDEV_LIBS) $(SX_TORTURE_LIBS) $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
SX_NETBACK_LDLIBS := $(SX_NETDEV_LDLIBS) $(SX_TORTURE_LDLIBS) $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

PROGS += splitxen-netback
splitxen-netback_SRCS := netback/main.c
splitxen-netback_LIBS := $(SX_NETBACK_LIBS) $(SX_NOTIFY_LIBS)
splitxen-netback_LDLIBS := $(SX_NETBACK_LDLIBS) $(SX_NOTIFY_LDLIBS)

UNIT_TESTS += netback_pkt_test
netback_pkt_test_SRCS := tests/netback/pkt_test.c
netback_pkt_test_LIBS := $(SX_NETBACK_LIBS)
netback_pkt_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

# Hostile frontends against the in-process daemon. Needs root (TAP, unshare): skips otherwise.
UNIT_TESTS += netback_hostile_test
netback_hostile_test_SRCS := tests/netback/netback_hostile_test.c
netback_hostile_test_LIBS := $(SX_NETBACK_LIBS) $(SX_SIMENV_LIBS)
netback_hostile_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

UNIT_TESTS += netback_rate_test
netback_rate_test_SRCS := tests/netback/rate_test.c
netback_rate_test_LIBS := $(SX_NETBACK_LIBS)
netback_rate_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

# Toeplitz vectors and control-message statuses (pure: a fake grant copy).
UNIT_TESTS += netback_hash_test
netback_hash_test_SRCS := tests/netback/hash_test.c
netback_hash_test_LIBS := $(SX_NETBACK_LIBS)
netback_hash_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

# Rx steering mechanics (route, inbox bound, ownership, kick) on a fake two-queue vif.
UNIT_TESTS += netback_steer_test
netback_steer_test_SRCS := tests/netback/steer_test.c
netback_steer_test_LIBS := $(SX_NETBACK_LIBS)
netback_steer_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

# --check against deliberately broken frontends (the in-process fixture, tests/netguest.h).
# Needs root (TAP, unshare): skips otherwise.
UNIT_TESTS += netback_check_test
netback_check_test_SRCS := tests/netback/check_test.c
netback_check_test_LIBS := $(SX_NETBACK_LIBS) $(SX_SIMENV_LIBS)
netback_check_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

# --torture replays: the same I/O, the same seed, the same torture log (tests/netguest.h).
UNIT_TESTS += netback_torture_test
netback_torture_test_SRCS := tests/netback/torture_test.c
netback_torture_test_LIBS := $(SX_NETBACK_LIBS) $(SX_SIMENV_LIBS)
netback_torture_test_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit
