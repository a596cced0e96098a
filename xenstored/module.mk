# xenstored for the sim platform: library sxxenstored, program splitxen-xenstored.
LIBS += sxxenstored
sxxenstored_SRCS := xenstored/store.c xenstored/server.c
SX_XENSTORED_LIBS := sxxenstored $(SX_COMMON_LIBS)

PROGS += splitxen-xenstored
splitxen-xenstored_SRCS := xenstored/main.c
splitxen-xenstored_LIBS := $(SX_XENSTORED_LIBS)

UNIT_TESTS += store_test
store_test_SRCS := tests/xenstored/store_test.c
store_test_LIBS := $(SX_XENSTORED_LIBS)
store_test_LDLIBS := -lcunit

# libxenstore against the daemon: in-process by default, or a running one with SX_XS_DIR.
UNIT_TESTS += xs_client_test
xs_client_test_SRCS := tests/xenstored/xs_client_test.c
xs_client_test_LIBS := $(SX_XENSTORED_LIBS)
xs_client_test_LDLIBS := -lxenstore -lcunit

# The protocol of Xen 4.19+ as whole xs_wire messages (tests/xsraw.h).
UNIT_TESTS += xenstored_wire_test
xenstored_wire_test_SRCS := tests/xenstored/wire_test.c
xenstored_wire_test_LIBS := $(SX_XENSTORED_LIBS)
xenstored_wire_test_LDLIBS := -lcunit
