# blkio: the I/O engines (io_uring, libaio, sync, mem) behind one handle, for blkback's rings and
# the AHCI disk, and the network targets (Ceph RBD, NBD). blkio.c picks a kind (uring.c, aio.c,
# sync.c, mem.c); engine.c is what they share; target.c parses a network target and hands it to
# rbd.c (librbd) or nbd.c (libnbd), each library loaded when first used.
LIBS += sxblkio
sxblkio_SRCS := blkio/blkio.c blkio/uring.c blkio/aio.c blkio/sync.c blkio/mem.c blkio/engine.c \
                blkio/target.c blkio/rbd.c blkio/nbd.c
SX_BLKIO_LIBS := sxblkio $(SX_COMMON_LIBS)
SX_BLKIO_LDLIBS := -luring -laio -ldl

UNIT_TESTS += blkio_test
blkio_test_SRCS := tests/blkio/blkio_test.c
blkio_test_LIBS := $(SX_BLKIO_LIBS)
blkio_test_LDLIBS := $(SX_BLKIO_LDLIBS) -lcunit

UNIT_TESTS += target_test
target_test_SRCS := tests/blkio/target_test.c
target_test_LIBS := $(SX_BLKIO_LIBS)
target_test_LDLIBS := $(SX_BLKIO_LDLIBS) -lcunit
