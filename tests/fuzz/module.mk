# libFuzzer harnesses on the real parsing code, one per guest-facing parser (make fuzz; make
# check runs each briefly over its corpus). Seed corpora: tests/fuzz/corpus/<name>/; inputs
# that once crashed: tests/fuzz/regress/<name>/ (run by make check, never to fail again).
FUZZERS += fuzz_blkif fuzz_netif fuzz_ctrl fuzz_xenstored fuzz_ioreq fuzz_e1000 fuzz_ahci \
           fuzz_xlcfg

fuzz_blkif_SRCS := tests/fuzz/fuzz_blkif.c
fuzz_blkif_LIBS := $(SX_BLKBACK_LIBS)
fuzz_blkif_LDLIBS := $(SX_BLKBACK_LDLIBS)

fuzz_netif_SRCS := tests/fuzz/fuzz_netif.c
fuzz_netif_LIBS := $(SX_NETBACK_LIBS)
fuzz_netif_LDLIBS := $(SX_NETBACK_LDLIBS)

fuzz_ctrl_SRCS := tests/fuzz/fuzz_ctrl.c
fuzz_ctrl_LIBS := $(SX_NETBACK_LIBS)
fuzz_ctrl_LDLIBS := $(SX_NETBACK_LDLIBS)

# server.c is included by the harness (its static parser); store.c beside it.
fuzz_xenstored_SRCS := tests/fuzz/fuzz_xenstored.c xenstored/store.c
fuzz_xenstored_LIBS := $(SX_COMMON_LIBS)

# ioreq.c is included by the harness (its static serving functions).
fuzz_ioreq_SRCS := tests/fuzz/fuzz_ioreq.c
fuzz_ioreq_LIBS := $(SX_IOREQ_LIBS) $(SX_PLATFORM_LIBS)
fuzz_ioreq_LDLIBS := $(SX_IOREQ_LDLIBS)

fuzz_e1000_SRCS := tests/fuzz/fuzz_e1000.c
fuzz_e1000_LIBS := $(SX_E1000_LIBS) $(SX_SIMENV_LIBS)
fuzz_e1000_LDLIBS := $(SX_E1000_LDLIBS)

fuzz_ahci_SRCS := tests/fuzz/fuzz_ahci.c
fuzz_ahci_LIBS := $(SX_AHCI_LIBS) $(SX_SIMENV_LIBS)
fuzz_ahci_LDLIBS := $(SX_AHCI_LDLIBS)

fuzz_xlcfg_SRCS := tests/fuzz/fuzz_xlcfg.c
fuzz_xlcfg_LIBS := $(SX_TOOLSTACK_LIBS)
fuzz_xlcfg_LDLIBS := $(SX_TOOLSTACK_LDLIBS)
