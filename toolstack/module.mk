# The toolstack: xl.cfg parsing (libxlutil), the xenstore layout libxl writes, and the
# `splitxen` CLI (with `top`).
LIBS += sxtoolstack
sxtoolstack_SRCS := toolstack/xlcfg.c toolstack/layout.c
SX_TOOLSTACK_LIBS := sxtoolstack $(SX_BLKIO_LIBS) $(SX_PLATFORM_LIBS)
SX_TOOLSTACK_LDLIBS := -lxlutil -lxenlight $(SX_BLKIO_LDLIBS) $(SX_PLATFORM_LDLIBS)

PROGS += splitxen
splitxen_SRCS := toolstack/splitxen.c toolstack/top.c toolstack/domain.c toolstack/migrate.c
splitxen_LIBS := $(SX_TOOLSTACK_LIBS) $(SX_XEN_CORE_MIGRATE_LIBS)
splitxen_LDLIBS := $(SX_TOOLSTACK_LDLIBS) $(SX_XEN_CORE_MIGRATE_LDLIBS)

UNIT_TESTS += xlcfg_test
xlcfg_test_SRCS := tests/toolstack/xlcfg_test.c
xlcfg_test_LIBS := $(SX_TOOLSTACK_LIBS)
xlcfg_test_LDLIBS := $(SX_TOOLSTACK_LDLIBS) -lcunit

UNIT_TESTS += layout_test
layout_test_SRCS := tests/toolstack/layout_test.c
layout_test_LIBS := $(SX_TOOLSTACK_LIBS)
layout_test_LDLIBS := $(SX_TOOLSTACK_LDLIBS) -lcunit

# layout.c against an in-memory fake of libxenstore (the test includes the .c)
UNIT_TESTS += layout_xs_test
layout_xs_test_SRCS := tests/toolstack/layout_xs_test.c
layout_xs_test_LIBS := $(SX_TOOLSTACK_LIBS)
layout_xs_test_LDLIBS := $(SX_TOOLSTACK_LDLIBS) -lcunit

# Helper for the save/restore and migration tests: a pattern in a guest's memory.
PROGS += splitxen-test-guestmem
splitxen-test-guestmem_SRCS := tests/toolstack/guestmem.c
splitxen-test-guestmem_LIBS := $(SX_XEN_CORE_LIBS)

# Helper for the live migration test: a guest process writing its memory during the move and
# checking it after (the dirty tracking end to end).
PROGS += splitxen-test-dirtier
splitxen-test-dirtier_SRCS := tests/toolstack/dirtier.c
splitxen-test-dirtier_LIBS := $(SX_GUEST_LIBS) $(SX_PLATFORM_LIBS)
splitxen-test-dirtier_LDLIBS := $(SX_GUEST_LDLIBS) $(SX_PLATFORM_LDLIBS)
