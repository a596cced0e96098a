# blkback: blkif backend. Data-plane building blocks so far: I/O engines (io*.c).
LIBS += sxblkback
sxblkback_SRCS := blkback/io.c blkback/io_uring.c blkback/io_aio.c blkback/io_sync.c
SXBLKBACK_LDLIBS := -luring -laio

UNIT_TESTS += io_test
io_test_SRCS := tests/blkback/io_test.c
io_test_LIBS := sxblkback sxcommon
io_test_LDLIBS := -lcunit $(SXBLKBACK_LDLIBS)
