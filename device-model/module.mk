# The device model: framework (registry, PCI bus, dispatch) and built-in devices over ioreq/,
# the AHCI disk (ahci/, engine from blkio/), the e1000 NIC (e1000/, world side from netdev/),
# and splitxen-dm serving them all.
LIBS += sxdm
sxdm_SRCS := device-model/dm.c device-model/uart.c device-model/xen_platform.c
SX_DM_LIBS := sxdm $(SX_IOREQ_LIBS)
SX_DM_LDLIBS := $(SX_IOREQ_LDLIBS)

UNIT_TESTS += uart_test
uart_test_SRCS := tests/device-model/uart_test.c
uart_test_LIBS := $(SX_DM_LIBS)
uart_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

UNIT_TESTS += pci_test
pci_test_SRCS := tests/device-model/pci_test.c
pci_test_LIBS := $(SX_DM_LIBS)
pci_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

UNIT_TESTS += dm_sim_test
dm_sim_test_SRCS := tests/device-model/dm_sim_test.c
dm_sim_test_LIBS := $(SX_DM_LIBS) $(SX_SIMENV_LIBS)
dm_sim_test_LDLIBS := $(SX_DM_LDLIBS) -lcunit

# The HVM guest program of the integration test (a sim vCPU probing the platform).
PROGS += sx-hvm-probe
sx-hvm-probe_SRCS := tests/device-model/hvm_probe.c
sx-hvm-probe_LIBS := $(SX_IOREQ_LIBS)
sx-hvm-probe_LDLIBS := $(SX_IOREQ_LDLIBS)

# device-model/ahci: the AHCI controller (ich9-ahci) on a blkio engine.
LIBS += sxahci
sxahci_SRCS := device-model/ahci/ahci.c
SX_AHCI_LIBS := sxahci $(SX_DM_LIBS) $(SX_BLKIO_LIBS)
SX_AHCI_LDLIBS := $(SX_DM_LDLIBS) $(SX_BLKIO_LDLIBS)

UNIT_TESTS += ahci_test
ahci_test_SRCS := tests/device-model/ahci_test.c
ahci_test_LIBS := $(SX_AHCI_LIBS) $(SX_SIMENV_LIBS)
# The test puts a stand-in engine under one controller by wrapping sx_bio_open.
ahci_test_LDLIBS := $(SX_AHCI_LDLIBS) -lcunit -Wl,--wrap=sx_bio_open

# device-model/e1000: the emulated e1000 (82540EM) NIC; world side from netdev/.
LIBS += sxe1000
sxe1000_SRCS := device-model/e1000/e1000.c
SX_E1000_LIBS := sxe1000 $(SX_DM_LIBS) $(SX_NETDEV_LIBS)
SX_E1000_LDLIBS := $(SX_DM_LDLIBS) $(SX_NETDEV_LDLIBS)

UNIT_TESTS += e1000_test
e1000_test_SRCS := tests/device-model/e1000_test.c
e1000_test_LIBS := $(SX_E1000_LIBS) $(SX_SIMENV_LIBS)
e1000_test_LDLIBS := $(SX_E1000_LDLIBS) -lcunit

# splitxen-dm: every device above on one ioreq server.
PROGS += splitxen-dm
splitxen-dm_SRCS := device-model/splitxen-dm.c
splitxen-dm_LIBS := $(SX_AHCI_LIBS) $(SX_E1000_LIBS) $(SX_NOTIFY_LIBS)
splitxen-dm_LDLIBS := $(SX_AHCI_LDLIBS) $(SX_E1000_LDLIBS) $(SX_NOTIFY_LDLIBS)
