# blkback: blkif backend. request.c decodes and validates blkif requests (the one place that
# knows both ABIs); the daemon is the control plane (xenbus.c), the ring loop (blkback.c) and
# persistent grants (persistent.c), I/O through blkio/.
LIBS += sxblkback
sxblkback_SRCS := blkback/request.c blkback/xenbus.c blkback/blkback.c blkback/persistent.c \
                  blkback/check.c
SX_BLKBACK_LIBS := sxblkback $(SX_BLKIO_LIBS) $(SX_TORTURE_LIBS) $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
SX_BLKBACK_LDLIBS := $(SX_BLKIO_LDLIBS) $(SX_TORTURE_LDLIBS) $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

PROGS += splitxen-blkback
splitxen-blkback_SRCS := blkback/main.c
splitxen-blkback_LIBS := $(SX_BLKBACK_LIBS) $(SX_NOTIFY_LIBS)
splitxen-blkback_LDLIBS := $(SX_BLKBACK_LDLIBS) $(SX_NOTIFY_LDLIBS)

UNIT_TESTS += request_test
request_test_SRCS := tests/blkback/request_test.c
request_test_LIBS := $(SX_BLKBACK_LIBS)
request_test_LDLIBS := $(SX_BLKBACK_LDLIBS) -lcunit

UNIT_TESTS += hostile_test
hostile_test_SRCS := tests/blkback/hostile_test.c
hostile_test_LIBS := $(SX_BLKBACK_LIBS) $(SX_SIMENV_LIBS)
# The test refuses chosen engine queue calls as full by wrapping them (queue_io retry).
hostile_test_LDLIBS := $(SX_BLKBACK_LDLIBS) -lcunit \
                       -Wl,--wrap=sx_bio_rw,--wrap=sx_bio_flush,--wrap=sx_bio_discard

# --check against deliberately broken frontends (the in-process fixture, tests/blkguest.h).
# The test ends a grant under an in-flight request by wrapping the engine's read/write call.
UNIT_TESTS += blkback_check_test
blkback_check_test_SRCS := tests/blkback/check_test.c
blkback_check_test_LIBS := $(SX_BLKBACK_LIBS) $(SX_SIMENV_LIBS)
blkback_check_test_LDLIBS := $(SX_BLKBACK_LDLIBS) -lcunit -Wl,--wrap=sx_bio_rw
