# The emulated e1000 (82540EM) NIC for the device model; world side on netback's TAP code.
LIBS += sxe1000
sxe1000_SRCS := device-model/e1000/e1000.c

# Whatever links sxe1000: these internal libs and -lmnl.
SX_E1000_LIBS := sxe1000 sxdm sxnetback sxioreq sxgrant sxevtchn sxcore sxxenstored sxcommon
SX_E1000_LDLIBS := -lxendevicemodel -lxenforeignmemory -lxengnttab -lxenevtchn -lxenstore -lmnl

UNIT_TESTS += $(if $(wildcard tests/device-model/e1000_test.c),e1000_test)
e1000_test_SRCS := tests/device-model/e1000_test.c
e1000_test_LIBS := $(SX_E1000_LIBS)
e1000_test_LDLIBS := $(SX_E1000_LDLIBS) -lcunit
