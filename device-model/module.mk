# The device model: framework (registry, PCI bus, dispatch), built-in devices, splitxen-dm.
LIBS += sxdm
sxdm_SRCS := device-model/dm.c device-model/uart.c device-model/xen_platform.c

# Spelled out: xen-core/ioreq/module.mk is read after this file.
SX_DM_IOREQ_LIBS := sxioreq sxgrant sxevtchn sxcore sxxenstored sxcommon
SX_DM_LIBS := sxdm $(SX_DM_IOREQ_LIBS)
SX_DM_LDLIBS := -lxendevicemodel -lxenforeignmemory -lxengnttab -lxenevtchn -lxenstore

PROGS += splitxen-dm
splitxen-dm_SRCS := device-model/splitxen-dm.c
# Spelled out: device-model/e1000/module.mk is read after this file.
splitxen-dm_LIBS := sxe1000 sxahci sxdm sxnetback sxblkback $(SX_DM_IOREQ_LIBS)
splitxen-dm_LDLIBS := $(SX_DM_LDLIBS) -lmnl -luring -laio -lsystemd

UNIT_TESTS += $(if $(wildcard tests/device-model/uart_test.c),uart_test)
uart_test_SRCS := tests/device-model/uart_test.c
uart_test_LIBS := $(SX_DM_LIBS)
uart_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

UNIT_TESTS += $(if $(wildcard tests/device-model/pci_test.c),pci_test)
pci_test_SRCS := tests/device-model/pci_test.c
pci_test_LIBS := $(SX_DM_LIBS)
pci_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

UNIT_TESTS += $(if $(wildcard tests/device-model/dm_sim_test.c),dm_sim_test)
dm_sim_test_SRCS := tests/device-model/dm_sim_test.c
dm_sim_test_LIBS := $(SX_DM_LIBS)
dm_sim_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

# The HVM guest program of the integration test (a sim vCPU probing the platform).
PROGS += sx-hvm-probe
sx-hvm-probe_SRCS := tests/device-model/hvm_probe.c
sx-hvm-probe_LIBS := $(SX_DM_IOREQ_LIBS)
sx-hvm-probe_LDLIBS := $(SX_DM_LDLIBS)
