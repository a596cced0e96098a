# netdev: the world side of a network device, for netback, the e1000 and the TAP frontends.
#   netdev/nl.c    rtnetlink (libmnl) helpers and named network namespaces
#   netdev/tap.c   TAP devices with 12-byte vnet headers, multi-queue, bridge attach, netns move
#   netdev/vnet.c  header parsing, checksums, netif <-> virtio-net header conversion (pure)
#   netdev/world.c the world a device joins, from xl's vif keys (bridge and VLANs here),
#   netdev/ovs.c   Open vSwitch ports (ovs-vsctl), netdev/route.c route and NAT (nftables)
#   netdev/netdev.c the kinds' table (bridge.c: TAP), netdev/link.c their attach to a world
#   netdev/afxdp.c kind "afxdp": AF_XDP sockets on an uplink (libxdp, libbpf), steered by the
#                  XDP program netdev/afxdp.bpf.c (clang -target bpf, carried in the binary)
LIBS += sxnetdev
sxnetdev_SRCS := netdev/netdev.c netdev/bridge.c netdev/link.c netdev/nl.c netdev/tap.c \
                 netdev/vnet.c netdev/world.c netdev/ovs.c netdev/route.c netdev/afxdp.c \
                 netdev/dpdk_kind.c
SX_NETDEV_LIBS := sxnetdev $(SX_COMMON_LIBS)
SX_NETDEV_LDLIBS := -lmnl -lnftables -lxdp -lbpf -ldl

#   netdev/dpdk.c  kind "dpdk" itself: a shared object of its own, linked against DPDK 22.11,
#                  that dpdk_kind.c loads when the first DPDK vif opens (SXLIBDIR: install.mk)
SHLIBS += splitxen-netdev-dpdk
splitxen-netdev-dpdk_SRCS := netdev/dpdk.c netdev/vnet.c common/log.c
DPDK_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags libdpdk 2>/dev/null))
splitxen-netdev-dpdk_LDLIBS := $(shell pkg-config --libs libdpdk 2>/dev/null) -pthread
$(B)/pic/netdev/dpdk.o: CFLAGS += $(DPDK_CFLAGS)
netdev_CFLAGS += -DSX_NETDEV_DPDK_PLUGIN='"$(SXLIBDIR)/splitxen-netdev-dpdk.so"'


# The XDP program: built for BPF whatever CC is, and .incbin'd by afxdp.c (the asm names it).
SX_AFXDP_BPF := $(B)/gen/netdev/afxdp.bpf.o
BPF_CLANG ?= clang
$(SX_AFXDP_BPF): netdev/afxdp.bpf.c netdev/afxdp_maps.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -O2 -g -Wall -Werror -target bpf -I. -I/usr/include/$(shell $(CC) -print-multiarch) -c $< -o $@
netdev_CFLAGS += -DSX_AFXDP_BPF_OBJ='"$(abspath $(SX_AFXDP_BPF))"'
$(B)/obj/netdev/afxdp.o $(B)/pic/netdev/afxdp.o: $(SX_AFXDP_BPF)

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
