# The sim hypervisor. sxcore is what a process acting as a domain links: the shared domain
# state and the client of splitxen-core's control socket. sxcored is the server (the domain
# table, event channel binding) with xenstored hosted in its loop: splitxen-core, and tests
# that run the core in-process (tests/simenv.h).
LIBS += sxcore
sxcore_SRCS := xen-core/shared.c xen-core/client.c
SX_XEN_CORE_LIBS := sxcore $(SX_COMMON_LIBS)

LIBS += sxcored
sxcored_SRCS := xen-core/server.c xen-core/server_xs.c xen-core/logdirty.c
SX_XEN_CORE_SERVER_LIBS := sxcored $(SX_XENSTORED_LIBS) $(SX_XEN_CORE_LIBS)

PROGS += splitxen-core
splitxen-core_SRCS := xen-core/splitxen-core.c
splitxen-core_LIBS := $(SX_XEN_CORE_SERVER_LIBS)

# The save/migration stream (framing, zlib, checksums) and a domain's state as its records:
# what the toolstack's save, restore and migrate use.
LIBS += sxmigrate
sxmigrate_SRCS := xen-core/stream.c xen-core/domstate.c
SX_XEN_CORE_MIGRATE_LIBS := sxmigrate $(SX_XEN_CORE_LIBS)
SX_XEN_CORE_MIGRATE_LDLIBS := -lz
