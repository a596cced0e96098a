# xenstored for the sim platform: library sxxenstored, program splitxen-xenstored.
LIBS += sxxenstored
sxxenstored_SRCS := xen-core/xenstored/store.c xen-core/xenstored/server.c

PROGS += splitxen-xenstored
splitxen-xenstored_SRCS := xen-core/xenstored/main.c
splitxen-xenstored_LIBS := sxxenstored sxcommon

UNIT_TESTS += store_test
store_test_SRCS := tests/xenstored/store_test.c
store_test_LIBS := sxxenstored sxcommon
store_test_LDLIBS := -lcunit


# libxenstore against the daemon: in-process by default, or a running one with SX_XS_DIR.
UNIT_TESTS += xs_client_test
xs_client_test_SRCS := tests/xenstored/xs_client_test.c
xs_client_test_LIBS := sxxenstored sxcommon
xs_client_test_LDLIBS := -lxenstore -lcunit
