LIBS += sxcommon
sxcommon_SRCS := common/log.c common/stats.c common/parse.c common/version.c

# The version every program's --version prints: SX_VERSION (the Makefile reads it from
# debian/changelog); a new changelog entry rebuilds this one object.
$(B)/obj/common/version.o: CFLAGS += -DSPLITXEN_VERSION='"$(SX_VERSION)"'
$(B)/obj/common/version.o: debian/changelog

UNIT_TESTS += stats_test
stats_test_SRCS := tests/common/stats_test.c
stats_test_LIBS := sxcommon
stats_test_LDLIBS := -lcunit

UNIT_TESTS += parse_test
parse_test_SRCS := tests/common/parse_test.c
parse_test_LIBS := sxcommon
parse_test_LDLIBS := -lcunit
