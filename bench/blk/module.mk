# bench/blk/grant_cost.c: map+unmap vs grant copy per page on sim (the non-persistent choice).
PROGS += splitxen-bench-blkgrant
splitxen-bench-blkgrant_SRCS := bench/blk/grant_cost.c
splitxen-bench-blkgrant_LIBS := $(SX_GRANT_LIBS) $(SX_SIMENV_LIBS)
splitxen-bench-blkgrant_LDLIBS := $(SX_GRANT_LDLIBS)
