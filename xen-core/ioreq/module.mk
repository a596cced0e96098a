# ioreq: the device model's ioreq server (sim and xen) and the sim HVM guest's vCPU side.
LIBS += sxioreq
sxioreq_SRCS := xen-core/ioreq/ioreq.c xen-core/ioreq/ioreq_sim.c xen-core/ioreq/ioreq_xen.c \
                xen-core/ioreq/guest.c

# Whatever links sxioreq links these too.
SX_IOREQ_LIBS := sxioreq sxgrant sxevtchn sxcore sxxenstored sxcommon
SX_IOREQ_LDLIBS := -lxendevicemodel -lxenforeignmemory -lxengnttab -lxenevtchn -lxenstore

UNIT_TESTS += $(if $(wildcard tests/ioreq/ioreq_test.c),ioreq_test)
ioreq_test_SRCS := tests/ioreq/ioreq_test.c
ioreq_test_LIBS := $(SX_IOREQ_LIBS)
ioreq_test_LDLIBS := $(SX_IOREQ_LDLIBS) -lcunit

# The xen implementation against fakes of libxendevicemodel, libxenforeignmemory and
# libxenevtchn (tests/fakes): no Xen needed, no real xen libraries linked.
UNIT_TESTS += $(if $(wildcard tests/ioreq/ioreq_xen_test.c),ioreq_xen_test)
ioreq_xen_test_SRCS := tests/ioreq/ioreq_xen_test.c tests/ioreq/fake_xendm.c \
                       tests/fakes/fake_xenevtchn.c xen-core/ioreq/ioreq.c \
                       xen-core/ioreq/ioreq_xen.c xen-core/ioreq/ioreq_sim.c evtchn/evtchn.c \
                       evtchn/evtchn_xen.c evtchn/evtchn_sim.c
ioreq_xen_test_LIBS := sxcore sxxenstored sxcommon
ioreq_xen_test_LDLIBS := -lcunit
