# torture: the frontend checker (--check) and seeded fault injection (--torture) the backends
# call through narrow hooks. Findings, reports, the torture log and the generators (report.c);
# the xenbus state and key checks and the rings' probes after Closed (check.c); the rings' data
# path: ids in flight, index history, notification timer, held responses (ring.c); daemon and
# device lifetimes and the control plane's decisions (torture.c).
LIBS += sxtorture
sxtorture_SRCS := torture/report.c torture/check.c torture/ring.c torture/torture.c
SX_TORTURE_LIBS := sxtorture $(SX_XENBUS_LIBS) $(SX_RING_LIBS)
SX_TORTURE_LDLIBS := $(SX_XENBUS_LDLIBS) $(SX_RING_LDLIBS)

UNIT_TESTS += torture_test
torture_test_SRCS := tests/torture/torture_test.c
torture_test_LIBS := $(SX_TORTURE_LIBS)
torture_test_LDLIBS := $(SX_TORTURE_LDLIBS) -lcunit
