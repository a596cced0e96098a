# platform: sim or xen, the traits that differ, opening xenstore for either.
LIBS += sxplatform
sxplatform_SRCS := platform/platform.c
SX_PLATFORM_LIBS := sxplatform $(SX_XEN_CORE_LIBS)
SX_PLATFORM_LDLIBS := -lxenstore

# What a test using tests/simenv.h (an in-process splitxen-core) links besides its module.
SX_SIMENV_LIBS := $(SX_PLATFORM_LIBS) $(SX_XEN_CORE_SERVER_LIBS)

UNIT_TESTS += platform_test
platform_test_SRCS := tests/platform/platform_test.c
platform_test_LIBS := $(SX_SIMENV_LIBS)
platform_test_LDLIBS := $(SX_PLATFORM_LDLIBS) -lcunit
