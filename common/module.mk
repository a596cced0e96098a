# common: logging, stats files, number parsing, the run directory, the clock, barriers, the
# version (version.c), systemd readiness (notify.c).
LIBS += sxcommon
sxcommon_SRCS := common/log.c common/stats.c common/parse.c common/rundir.c \
                 common/version.c
SX_COMMON_LIBS := sxcommon

# The version every program's --version prints: SX_VERSION (the Makefile reads it from
# debian/changelog); a new changelog entry rebuilds this one object, in each of its builds
# (static, PIC, and the fio engine's own PIC objects, frontends/fio/module.mk).
SX_VERSION_DEF := -DSPLITXEN_VERSION='"$(SX_VERSION)"'
$(B)/obj/common/version.o $(B)/pic/common/version.o: CFLAGS += $(SX_VERSION_DEF)
$(B)/fio-pic/common/version.o: SXFIO_CFLAGS += $(SX_VERSION_DEF)
$(B)/obj/common/version.o $(B)/pic/common/version.o $(B)/fio-pic/common/version.o: \
    debian/changelog

# systemd readiness (notify.c) in a library of its own: only the daemons that tell systemd
# they serve link it, and with it libsystemd.
LIBS += sxnotify
sxnotify_SRCS := common/notify.c
SX_NOTIFY_LIBS := sxnotify
SX_NOTIFY_LDLIBS := -lsystemd

UNIT_TESTS += stats_test
stats_test_SRCS := tests/common/stats_test.c
stats_test_LIBS := $(SX_COMMON_LIBS)
stats_test_LDLIBS := -lcunit

UNIT_TESTS += parse_test
parse_test_SRCS := tests/common/parse_test.c
parse_test_LIBS := $(SX_COMMON_LIBS)
parse_test_LDLIBS := -lcunit

UNIT_TESTS += notify_test
notify_test_SRCS := tests/common/notify_test.c
notify_test_LIBS := $(SX_NOTIFY_LIBS)
notify_test_LDLIBS := $(SX_NOTIFY_LDLIBS) -lcunit
