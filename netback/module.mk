# netback: world-side building blocks shared with the TAP netfront.
#   netback/nl.c   rtnetlink (libmnl) helpers and named network namespaces
#   netback/tap.c  TAP devices with 12-byte vnet headers, multi-queue, bridge attach, netns move
#   netback/pkt.c  netif tx parsing/validation and virtio-net header conversion (pure)
# Programs linking sxnetback add -lmnl to their LDLIBS.
LIBS += sxnetback
sxnetback_SRCS := netback/nl.c netback/tap.c netback/pkt.c

UNIT_TESTS += netback_pkt_test
netback_pkt_test_SRCS := tests/netback/pkt_test.c
netback_pkt_test_LIBS := sxnetback sxcommon
netback_pkt_test_LDLIBS := -lcunit

# Needs root (unshare of net+mount namespaces, /dev/net/tun); skips (77) otherwise.
UNIT_TESTS += netback_tap_test
netback_tap_test_SRCS := tests/netback/tap_test.c
netback_tap_test_LIBS := sxnetback sxcommon
netback_tap_test_LDLIBS := -lcunit -lmnl

# The daemon: control plane (xenbus.c), tx (netback.c), rx (rx.c), credit limiter (rate.c),
# multicast control (mcast.c), ctrl ring and hashing (hash.c), rx steering (steer.c).
# Split into a library so the hostile-frontend test can run it in-process.
LIBS += sxnetbackd
sxnetbackd_SRCS := netback/xenbus.c netback/netback.c netback/rx.c netback/rate.c \
                   netback/mcast.c netback/hash.c netback/steer.c
NETBACKD_LIBS = sxnetbackd sxnetback sxxenbus sxring $(SX_PLAT_LIBS)
NETBACKD_LDLIBS = $(SX_PLAT_LDLIBS) -lmnl -lpthread

PROGS += splitxen-netback
splitxen-netback_SRCS := netback/main.c
splitxen-netback_LIBS = $(NETBACKD_LIBS)
splitxen-netback_LDLIBS = $(NETBACKD_LDLIBS) -lsystemd

# Hostile frontends against the in-process daemon. Needs root (TAP, unshare): skips otherwise.
UNIT_TESTS += netback_hostile_test
netback_hostile_test_SRCS := tests/netback/netback_hostile_test.c
netback_hostile_test_LIBS = $(NETBACKD_LIBS)
netback_hostile_test_LDLIBS = $(NETBACKD_LDLIBS) -lcunit

UNIT_TESTS += netback_rate_test
netback_rate_test_SRCS := tests/netback/rate_test.c
netback_rate_test_LIBS = $(NETBACKD_LIBS)
netback_rate_test_LDLIBS = $(NETBACKD_LDLIBS) -lcunit

# Toeplitz vectors and control-message statuses (pure: a fake grant copy).
UNIT_TESTS += netback_hash_test
netback_hash_test_SRCS := tests/netback/hash_test.c
netback_hash_test_LIBS = $(NETBACKD_LIBS)
netback_hash_test_LDLIBS = $(NETBACKD_LDLIBS) -lcunit

# Rx steering mechanics (route, inbox bound, ownership, kick) on a fake two-queue vif.
UNIT_TESTS += netback_steer_test
netback_steer_test_SRCS := tests/netback/steer_test.c
netback_steer_test_LIBS = $(NETBACKD_LIBS)
netback_steer_test_LDLIBS = $(NETBACKD_LDLIBS) -lcunit
