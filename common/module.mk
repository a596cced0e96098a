LIBS += sxcommon
sxcommon_SRCS := common/log.c common/stats.c

UNIT_TESTS += stats_test
stats_test_SRCS := tests/common/stats_test.c
stats_test_LIBS := sxcommon
stats_test_LDLIBS := -lcunit
