# frontends/hvmdisk: the sim HVM guest's AHCI driver (sx_hvmdisk_*).
LIBS += sxhvmdisk
sxhvmdisk_SRCS := frontends/hvmdisk/hvmdisk.c
SX_HVMDISK_LIBS := sxhvmdisk $(SX_IOREQ_LIBS)
SX_HVMDISK_LDLIBS := $(SX_IOREQ_LDLIBS)

# Guest program of tests/hvmdisk: identify, write/read back with patterns, NCQ, flush, trim.
PROGS += sx-hvmdisk-check
sx-hvmdisk-check_SRCS := tests/hvmdisk/hvmdisk_check.c
sx-hvmdisk-check_LIBS := $(SX_HVMDISK_LIBS)
sx-hvmdisk-check_LDLIBS := $(SX_HVMDISK_LDLIBS)
