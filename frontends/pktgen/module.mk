# frontends/pktgen: splitxen-pktgen, a netif frontend that fills a vif's tx ring with N-byte
# frames and counts what arrives on its rx ring (packet rates with no guest kernel in the way).
PROGS += splitxen-pktgen
splitxen-pktgen_SRCS := frontends/pktgen/pktgen.c
splitxen-pktgen_LIBS := $(SX_NETFRONT_LIBS)
splitxen-pktgen_LDLIBS := $(SX_NETFRONT_LDLIBS)
