# Shared-ring helpers. ring_map.c (sx_ring_map/unmap) needs libsxgrant and idle.c (sx_idle_*)
# libsxevtchn: link them only if you call those; the static archive pulls ring_map.o and idle.o
# in only then.
LIBS += sxring
sxring_SRCS := ring/ring.c ring/ring_map.c ring/idle.c

UNIT_TESTS += ring_test
ring_test_SRCS := tests/ring/ring_test.c
ring_test_LIBS := sxring sxcommon
ring_test_LDLIBS := -lcunit

UNIT_TESTS += ring_xproc_test
ring_xproc_test_SRCS := tests/ring/ring_xproc_test.c
ring_xproc_test_LIBS := sxring sxcommon
ring_xproc_test_LDLIBS := -lcunit

# sx_ring_map/unmap against the sim grant engine, once xen-core/ provides the platform
# libraries. Module files are included in sorted path order, so xen-core/module.mk comes after
# this one: test for the files, and expand SX_PLAT_LIBS late (=, not :=).
ifneq ($(and $(wildcard xen-core/module.mk),$(wildcard xen-core/xenstored/module.mk),$(wildcard tests/ring/ring_map_test.c)),)
UNIT_TESTS += ring_map_test
ring_map_test_SRCS := tests/ring/ring_map_test.c
ring_map_test_LIBS = sxring $(SX_PLAT_LIBS)
ring_map_test_LDLIBS = $(SX_PLAT_LDLIBS) -lcunit

# sx_idle (spin, late EOI, poll) against the sim event channels.
UNIT_TESTS += ring_idle_test
ring_idle_test_SRCS := tests/ring/idle_test.c
ring_idle_test_LIBS = sxring $(SX_PLAT_LIBS)
ring_idle_test_LDLIBS = $(SX_PLAT_LDLIBS) -lcunit
endif
