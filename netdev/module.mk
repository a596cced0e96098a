# netdev: the world side of a network device, for netback, the e1000 and the TAP frontends.
#   netdev/nl.c    rtnetlink (libmnl) helpers and named network namespaces
#   netdev/tap.c   TAP devices with 12-byte vnet headers, multi-queue, bridge attach, netns move
#   netdev/vnet.c  header parsing, checksums, netif <-> virtio-net header conversion (pure)
#   netdev/world.c the world a device joins, from xl's vif keys (bridge and VLANs here),
#   netdev/ovs.c   Open vSwitch ports (ovs-vsctl), netdev/route.c route and NAT (nftables)
#   netdev/netdev.c the kinds' table (bridge.c: TAP), netdev/link.c their attach to a world
LIBS += sxnetdev
sxnetdev_SRCS := netdev/netdev.c netdev/bridge.c netdev/link.c netdev/nl.c netdev/tap.c \
                 netdev/vnet.c netdev/world.c netdev/ovs.c netdev/route.c
SX_NETDEV_LIBS := sxnetdev $(SX_COMMON_LIBS)
SX_NETDEV_LDLIBS := -lmnl -lnftables

# The world keys parsed (pure)
UNIT_TESTS += netdev_world_test
netdev_world_test_SRCS := tests/netdev/world_test.c
netdev_world_test_LIBS := $(SX_NETDEV_LIBS)
netdev_world_test_LDLIBS := $(SX_NETDEV_LDLIBS) -lcunit

UNIT_TESTS += netdev_vnet_test
netdev_vnet_test_SRCS := tests/netdev/vnet_test.c
netdev_vnet_test_LIBS := $(SX_NETDEV_LIBS)
netdev_vnet_test_LDLIBS := $(SX_NETDEV_LDLIBS) -lcunit

# Needs root (unshare of net+mount namespaces, /dev/net/tun); skips (77) otherwise.
UNIT_TESTS += netdev_tap_test
netdev_tap_test_SRCS := tests/netdev/tap_test.c
netdev_tap_test_LIBS := $(SX_NETDEV_LIBS)
netdev_tap_test_LDLIBS := $(SX_NETDEV_LDLIBS) -lcunit
