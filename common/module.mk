# common: logging, stats files, number parsing, the run directory, the clock, barriers.
LIBS += sxcommon
sxcommon_SRCS := common/log.c common/stats.c common/parse.c common/rundir.c
SX_COMMON_LIBS := sxcommon

UNIT_TESTS += stats_test
stats_test_SRCS := tests/common/stats_test.c
stats_test_LIBS := $(SX_COMMON_LIBS)
stats_test_LDLIBS := -lcunit

UNIT_TESTS += parse_test
parse_test_SRCS := tests/common/parse_test.c
parse_test_LIBS := $(SX_COMMON_LIBS)
parse_test_LDLIBS := -lcunit
