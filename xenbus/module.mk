# xenbus helpers over libxenstore: library sxxenbus.
LIBS += sxxenbus
sxxenbus_SRCS := xenbus/xenbus.c

UNIT_TESTS += xenbus_test
xenbus_test_SRCS := tests/xenbus/xenbus_test.c
xenbus_test_LIBS := sxxenbus sxxenstored sxcommon
xenbus_test_LDLIBS := -lxenstore -lcunit
