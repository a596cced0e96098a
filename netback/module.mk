# netback: world side building blocks (netlink, TAP, netif packet handling).
LIBS += sxnetback
sxnetback_SRCS := netback/nl.c netback/tap.c netback/pkt.c

UNIT_TESTS += pkt_test
pkt_test_SRCS := tests/netback/pkt_test.c
pkt_test_LIBS := sxnetback sxcommon
pkt_test_LDLIBS := -lcunit

UNIT_TESTS += tap_test
tap_test_SRCS := tests/netback/tap_test.c
tap_test_LIBS := sxnetback sxcommon
tap_test_LDLIBS := -lcunit -lmnl
