# ring: shared rings over <xen/io/ring.h> (ring.c), mapping a frontend's ring pages through
# grant/ (ring_map.c), and the spin-arm-sleep idle step over evtchn/ (idle.c).
LIBS += sxring
sxring_SRCS := ring/ring.c ring/ring_map.c ring/idle.c
SX_RING_LIBS := sxring $(SX_EVTCHN_LIBS) $(SX_GRANT_LIBS)
SX_RING_LDLIBS := $(SX_EVTCHN_LDLIBS) $(SX_GRANT_LDLIBS)

UNIT_TESTS += ring_test
ring_test_SRCS := tests/ring/ring_test.c
ring_test_LIBS := $(SX_RING_LIBS)
ring_test_LDLIBS := $(SX_RING_LDLIBS) -lcunit

UNIT_TESTS += ring_xproc_test
ring_xproc_test_SRCS := tests/ring/ring_xproc_test.c
ring_xproc_test_LIBS := $(SX_RING_LIBS)
ring_xproc_test_LDLIBS := $(SX_RING_LDLIBS) -lcunit

# sx_ring_map/unmap against the sim grant engine.
UNIT_TESTS += ring_map_test
ring_map_test_SRCS := tests/ring/ring_map_test.c
ring_map_test_LIBS := $(SX_RING_LIBS) $(SX_SIMENV_LIBS)
ring_map_test_LDLIBS := $(SX_RING_LDLIBS) -lcunit

# sx_idle (spin, late EOI, poll) against the sim event channels.
UNIT_TESTS += ring_idle_test
ring_idle_test_SRCS := tests/ring/idle_test.c
ring_idle_test_LIBS := $(SX_RING_LIBS) $(SX_SIMENV_LIBS)
ring_idle_test_LDLIBS := $(SX_RING_LDLIBS) -lcunit
