# The sim hypervisor: shared domain state, the core server and its client, the platform handle.
LIBS += sxcore
sxcore_SRCS := xen-core/shared.c xen-core/server.c xen-core/client.c xen-core/platform.c \
               xen-core/server_xs.c

# Everything that links the platform libraries needs these.
SX_PLAT_LIBS := sxgrant sxevtchn sxcore sxxenstored sxcommon
SX_PLAT_LDLIBS := -lxengnttab -lxenevtchn -lxenstore

ifneq ($(wildcard xen-core/xenstored/module.mk),)
PROGS += splitxen-core
splitxen-core_SRCS := xen-core/splitxen-core.c
splitxen-core_LIBS := $(SX_PLAT_LIBS)
splitxen-core_LDLIBS := $(SX_PLAT_LDLIBS)

UNIT_TESTS += $(if $(wildcard tests/xen-core/core_test.c),core_test)
core_test_SRCS := tests/xen-core/core_test.c
core_test_LIBS := $(SX_PLAT_LIBS)
core_test_LDLIBS := $(SX_PLAT_LDLIBS) -lcunit
UNIT_TESTS += $(if $(wildcard tests/grant/grant_sim_test.c),grant_sim_test)
grant_sim_test_SRCS := tests/grant/grant_sim_test.c
grant_sim_test_LIBS := $(SX_PLAT_LIBS)
grant_sim_test_LDLIBS := $(SX_PLAT_LDLIBS) -lcunit
UNIT_TESTS += $(if $(wildcard tests/evtchn/evtchn_sim_test.c),evtchn_sim_test)
evtchn_sim_test_SRCS := tests/evtchn/evtchn_sim_test.c
evtchn_sim_test_LIBS := $(SX_PLAT_LIBS)
evtchn_sim_test_LDLIBS := $(SX_PLAT_LDLIBS) -lcunit
endif
