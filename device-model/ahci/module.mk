# device-model/ahci: the AHCI controller (ich9-ahci) on blkback's I/O engine.
LIBS += sxahci
sxahci_SRCS := device-model/ahci/ahci.c
SX_AHCI_LIBS = sxahci sxblkback $(SX_DM_LIBS)
SX_AHCI_LDLIBS = $(SX_DM_LDLIBS) -luring -laio

UNIT_TESTS += $(if $(wildcard tests/device-model/ahci_test.c),ahci_test)
ahci_test_SRCS := tests/device-model/ahci_test.c
ahci_test_LIBS = $(SX_AHCI_LIBS)
ahci_test_LDLIBS = $(SX_AHCI_LDLIBS) -lcunit

# A device model for tests/hvmdisk: host bridge, platform device and the AHCI disk.
PROGS += $(if $(wildcard tests/hvmdisk/ahci_dm.c),sx-ahci-dm)
sx-ahci-dm_SRCS := tests/hvmdisk/ahci_dm.c
sx-ahci-dm_LIBS = $(SX_AHCI_LIBS)
sx-ahci-dm_LDLIBS = $(SX_AHCI_LDLIBS)
