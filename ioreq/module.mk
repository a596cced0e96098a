# ioreq: the device model's ioreq server (sim and xen), the xen DMA mapcache, and the sim HVM
# guest's vCPU side.
LIBS += sxioreq
sxioreq_SRCS := ioreq/ioreq.c ioreq/ioreq_sim.c ioreq/ioreq_xen.c ioreq/ports.c ioreq/guest.c
SX_IOREQ_LIBS := sxioreq $(SX_EVTCHN_LIBS)
SX_IOREQ_LDLIBS := -lxendevicemodel -lxenforeignmemory $(SX_EVTCHN_LDLIBS)

UNIT_TESTS += ioreq_test
ioreq_test_SRCS := tests/ioreq/ioreq_test.c
ioreq_test_LIBS := $(SX_IOREQ_LIBS) $(SX_SIMENV_LIBS)
ioreq_test_LDLIBS := $(SX_IOREQ_LDLIBS) -lcunit

# The xen implementation against fakes of libxendevicemodel, libxenforeignmemory and
# libxenevtchn (tests/fakes): no Xen needed, no real xen libraries linked.
UNIT_TESTS += ioreq_xen_test
ioreq_xen_test_SRCS := tests/ioreq/ioreq_xen_test.c tests/ioreq/fake_xendm.c \
                       tests/fakes/fake_xenevtchn.c ioreq/ioreq.c ioreq/ioreq_xen.c \
                       ioreq/ioreq_sim.c ioreq/ports.c evtchn/evtchn.c evtchn/evtchn_xen.c \
                       evtchn/evtchn_sim.c
ioreq_xen_test_LIBS := $(SX_XEN_CORE_LIBS)
ioreq_xen_test_LDLIBS := -lcunit
