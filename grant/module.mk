# grant: grant tables behind one handle, sim (xen-core's grant engine) and xen (libxengnttab).
LIBS += sxgrant
sxgrant_SRCS := grant/grant.c grant/grant_sim.c grant/grant_xen.c
SX_GRANT_LIBS := sxgrant $(SX_PLATFORM_LIBS)
SX_GRANT_LDLIBS := -lxengnttab $(SX_PLATFORM_LDLIBS)

UNIT_TESTS += grant_sim_test
grant_sim_test_SRCS := tests/grant/grant_sim_test.c
grant_sim_test_LIBS := $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
grant_sim_test_LDLIBS := $(SX_GRANT_LDLIBS) -lcunit
