# The toolstack: xl.cfg parsing (libxlutil), the xenstore layout libxl writes, and the
# `splitxen` CLI.
LIBS += sxtoolstack
sxtoolstack_SRCS := xen-core/toolstack/xlcfg.c xen-core/toolstack/layout.c

SXTOOLSTACK_LDLIBS := -lxlutil -lxenlight -lxenstore

UNIT_TESTS += xlcfg_test
xlcfg_test_SRCS := tests/toolstack/xlcfg_test.c
xlcfg_test_LIBS := sxtoolstack sxcommon
xlcfg_test_LDLIBS := -lcunit $(SXTOOLSTACK_LDLIBS)

UNIT_TESTS += layout_test
layout_test_SRCS := tests/toolstack/layout_test.c
layout_test_LIBS := sxtoolstack sxcommon
layout_test_LDLIBS := -lcunit $(SXTOOLSTACK_LDLIBS)

# The CLI needs the core's client library (xen-core/module.mk).
ifneq ($(wildcard xen-core/core.h),)
PROGS += splitxen
splitxen_SRCS := xen-core/toolstack/splitxen.c xen-core/toolstack/top.c
splitxen_LIBS := sxtoolstack $(SX_PLAT_LIBS)
splitxen_LDLIBS := $(SXTOOLSTACK_LDLIBS) $(SX_PLAT_LDLIBS)
endif

# layout.c against an in-memory fake of libxenstore (the test includes the .c)
UNIT_TESTS += layout_xs_test
layout_xs_test_SRCS := tests/toolstack/layout_xs_test.c
layout_xs_test_LIBS := sxtoolstack sxcommon
layout_xs_test_LDLIBS := -lcunit $(SXTOOLSTACK_LDLIBS)
