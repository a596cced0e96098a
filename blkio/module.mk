# blkio: the I/O engines (io_uring, libaio, sync, mem) behind one handle, for blkback's rings and
# the AHCI disk. blkio.c picks a kind (uring.c, aio.c, sync.c, mem.c); engine.c is what they share.
LIBS += sxblkio
sxblkio_SRCS := blkio/blkio.c blkio/uring.c blkio/aio.c blkio/sync.c blkio/mem.c blkio/engine.c
SX_BLKIO_LIBS := sxblkio $(SX_COMMON_LIBS)
SX_BLKIO_LDLIBS := -luring -laio

UNIT_TESTS += blkio_test
blkio_test_SRCS := tests/blkio/blkio_test.c
blkio_test_LIBS := $(SX_BLKIO_LIBS)
blkio_test_LDLIBS := $(SX_BLKIO_LDLIBS) -lcunit
