# blkback: blkif backend. Data-plane building blocks so far: I/O engines (io*.c) and blkif
# request decoding/validation (request.c).
LIBS += sxblkback
sxblkback_SRCS := blkback/io.c blkback/io_uring.c blkback/io_aio.c blkback/io_sync.c \
                  blkback/request.c
SXBLKBACK_LDLIBS := -luring -laio

UNIT_TESTS += io_test request_test
io_test_SRCS := tests/blkback/io_test.c
io_test_LIBS := sxblkback sxcommon
io_test_LDLIBS := -lcunit $(SXBLKBACK_LDLIBS)
request_test_SRCS := tests/blkback/request_test.c
request_test_LIBS := sxblkback sxcommon
request_test_LDLIBS := -lcunit

# The daemon: control plane (xenbus.c), ring loop (blkback.c), persistent grants.
LIBS += sxblkbackd
sxblkbackd_SRCS := blkback/xenbus.c blkback/blkback.c blkback/persistent.c
PROGS += splitxen-blkback
splitxen-blkback_SRCS := blkback/main.c
splitxen-blkback_LIBS = sxblkbackd sxblkback sxxenbus sxring $(SX_PLAT_LIBS)
splitxen-blkback_LDLIBS = $(SXBLKBACK_LDLIBS) $(SX_PLAT_LDLIBS) -lsystemd

UNIT_TESTS += hostile_test
hostile_test_SRCS := tests/blkback/hostile_test.c
hostile_test_LIBS = sxblkbackd sxblkback sxxenbus sxring $(SX_PLAT_LIBS)
hostile_test_LDLIBS = -lcunit $(SXBLKBACK_LDLIBS) $(SX_PLAT_LDLIBS)

UNIT_TESTS += xsa349_test
xsa349_test_SRCS := tests/blkback/xsa349_test.c
xsa349_test_LIBS = sxblkbackd sxblkback sxxenbus sxring $(SX_PLAT_LIBS)
xsa349_test_LDLIBS = -lcunit $(SXBLKBACK_LDLIBS) $(SX_PLAT_LDLIBS)

# bench/blk/grant_cost.c: map+unmap vs grant copy per page on sim (the non-persistent choice).
PROGS += splitxen-bench-blkgrant
splitxen-bench-blkgrant_SRCS := bench/blk/grant_cost.c
splitxen-bench-blkgrant_LIBS = $(SX_PLAT_LIBS)
splitxen-bench-blkgrant_LDLIBS = $(SX_PLAT_LDLIBS)
