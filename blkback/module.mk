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
