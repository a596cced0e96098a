# device-model/ahci: the AHCI controller (ich9-ahci) on blkback's I/O engine.
LIBS += sxahci
sxahci_SRCS := device-model/ahci/ahci.c
SX_AHCI_LIBS = sxahci sxblkback $(SX_DM_LIBS)
SX_AHCI_LDLIBS = $(SX_DM_LDLIBS) -luring -laio

UNIT_TESTS += $(if $(wildcard tests/device-model/ahci_test.c),ahci_test)
ahci_test_SRCS := tests/device-model/ahci_test.c
ahci_test_LIBS = $(SX_AHCI_LIBS)
# The test puts a stand-in engine under one controller by wrapping sx_bio_open.
ahci_test_LDLIBS = $(SX_AHCI_LDLIBS) -lcunit -Wl,--wrap=sx_bio_open
