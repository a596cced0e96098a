# xenbus helpers over libxenstore: library sxxenbus.
LIBS += sxxenbus
sxxenbus_SRCS := xenbus/xenbus.c
SX_XENBUS_LIBS := sxxenbus $(SX_PLATFORM_LIBS)
SX_XENBUS_LDLIBS := $(SX_PLATFORM_LDLIBS)

UNIT_TESTS += xenbus_test
xenbus_test_SRCS := tests/xenbus/xenbus_test.c
xenbus_test_LIBS := $(SX_XENBUS_LIBS) $(SX_XENSTORED_LIBS)
xenbus_test_LDLIBS := $(SX_XENBUS_LDLIBS) -lcunit
