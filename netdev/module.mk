# netdev: the world side of a network device, for netback, the e1000 and the TAP frontends.
#   netdev/nl.c    rtnetlink (libmnl) helpers and named network namespaces
#   netdev/tap.c   TAP devices with 12-byte vnet headers, multi-queue, bridge attach, netns move
#   netdev/vnet.c  header parsing, checksums, netif <-> virtio-net header conversion (pure)
LIBS += sxnetdev
sxnetdev_SRCS := netdev/netdev.c netdev/bridge.c netdev/nl.c netdev/tap.c netdev/vnet.c
SX_NETDEV_LIBS := sxnetdev $(SX_COMMON_LIBS)
SX_NETDEV_LDLIBS := -lmnl

UNIT_TESTS += netdev_vnet_test
netdev_vnet_test_SRCS := tests/netdev/vnet_test.c
netdev_vnet_test_LIBS := $(SX_NETDEV_LIBS)
netdev_vnet_test_LDLIBS := $(SX_NETDEV_LDLIBS) -lcunit

# Needs root (unshare of net+mount namespaces, /dev/net/tun); skips (77) otherwise.
UNIT_TESTS += netdev_tap_test
netdev_tap_test_SRCS := tests/netdev/tap_test.c
netdev_tap_test_LIBS := $(SX_NETDEV_LIBS)
netdev_tap_test_LDLIBS := $(SX_NETDEV_LDLIBS) -lcunit
