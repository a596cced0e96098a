# evtchn: event channels behind one handle, sim (xen-core's ports over eventfds) and xen
# (libxenevtchn); late EOI (lateeoi.c).
LIBS += sxevtchn
sxevtchn_SRCS := evtchn/evtchn.c evtchn/evtchn_sim.c evtchn/evtchn_xen.c evtchn/lateeoi.c
SX_EVTCHN_LIBS := sxevtchn $(SX_PLATFORM_LIBS)
SX_EVTCHN_LDLIBS := -lxenevtchn $(SX_PLATFORM_LDLIBS)

UNIT_TESTS += evtchn_sim_test
evtchn_sim_test_SRCS := tests/evtchn/evtchn_sim_test.c
evtchn_sim_test_LIBS := $(SX_EVTCHN_LIBS) $(SX_SIMENV_LIBS)
evtchn_sim_test_LDLIBS := $(SX_EVTCHN_LDLIBS) -lcunit

# The xen implementations against programmable fakes of libxengnttab/libxenevtchn
# (tests/fakes): no Xen, no real xen libraries. xen_nodev_test links the real libraries and
# checks that opening them without Xen fails with -errno. Here rather than in grant/: they
# cover both handles.
UNIT_TESTS += grant_xen_test evtchn_xen_test xen_nodev_test
grant_xen_test_SRCS := tests/grant/grant_xen_test.c grant/grant_xen.c \
                       tests/fakes/fake_xengnttab.c
grant_xen_test_LIBS := $(SX_COMMON_LIBS)
grant_xen_test_LDLIBS := -lcunit

evtchn_xen_test_SRCS := tests/evtchn/evtchn_xen_test.c evtchn/evtchn_xen.c \
                        tests/fakes/fake_xenevtchn.c
evtchn_xen_test_LIBS := $(SX_COMMON_LIBS)
evtchn_xen_test_LDLIBS := -lcunit

xen_nodev_test_SRCS := tests/fakes/xen_nodev_test.c grant/grant_xen.c evtchn/evtchn_xen.c
xen_nodev_test_LIBS := $(SX_COMMON_LIBS)
xen_nodev_test_LDLIBS := -lxengnttab -lxenevtchn -lxenstore -lxenctrl -lcunit

# xen-core's domains, ports and grant pins as its clients see them: through the sim grant and
# event channel handles (tests/xen-core/core_test.c), so declared once both are known.
UNIT_TESTS += core_test
core_test_SRCS := tests/xen-core/core_test.c
core_test_LIBS := $(SX_EVTCHN_LIBS) $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
core_test_LDLIBS := $(SX_EVTCHN_LDLIBS) $(SX_GRANT_LDLIBS) -lcunit

# The save/migration stream and a domain's state as its records (xen-core/stream.c,
# domstate.c), with grants and ports of an in-process core.
UNIT_TESTS += stream_test
stream_test_SRCS := tests/xen-core/stream_test.c
stream_test_LIBS := $(SX_XEN_CORE_MIGRATE_LIBS) $(SX_EVTCHN_LIBS) $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
stream_test_LDLIBS := $(SX_XEN_CORE_MIGRATE_LDLIBS) $(SX_EVTCHN_LDLIBS) $(SX_GRANT_LDLIBS) -lcunit

# Log-dirty tracking (xen-core/logdirty.c): guest processes and grant writers.
UNIT_TESTS += logdirty_test
logdirty_test_SRCS := tests/xen-core/logdirty_test.c
logdirty_test_LIBS := $(SX_XEN_CORE_MIGRATE_LIBS) $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
logdirty_test_LDLIBS := $(SX_XEN_CORE_MIGRATE_LDLIBS) $(SX_GRANT_LDLIBS) -lcunit

# A guest moved to another core: platform move, grant and event handles following it.
UNIT_TESTS += move_test
move_test_SRCS := tests/platform/move_test.c
move_test_LIBS := $(SX_XEN_CORE_MIGRATE_LIBS) $(SX_EVTCHN_LIBS) $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
move_test_LDLIBS := $(SX_XEN_CORE_MIGRATE_LDLIBS) $(SX_EVTCHN_LDLIBS) $(SX_GRANT_LDLIBS) -lcunit
