# Unit tests of the xen platform (grant/grant_xen.c, evtchn/evtchn_xen.c). The first two link
# programmable fakes of libxengnttab/libxenevtchn instead of the real libraries, so they build
# and run without Xen and without the grant/evtchn libraries; xen_nodev_test links the real
# libraries and checks that opening them without Xen fails with -errno.
UNIT_TESTS += grant_xen_test evtchn_xen_test xen_nodev_test

grant_xen_test_SRCS := tests/grant/grant_xen_test.c grant/grant_xen.c \
                       tests/fakes/fake_xengnttab.c
grant_xen_test_LIBS := sxcommon
grant_xen_test_LDLIBS := -lcunit

evtchn_xen_test_SRCS := tests/evtchn/evtchn_xen_test.c evtchn/evtchn_xen.c \
                        tests/fakes/fake_xenevtchn.c
evtchn_xen_test_LIBS := sxcommon
evtchn_xen_test_LDLIBS := -lcunit

xen_nodev_test_SRCS := tests/fakes/xen_nodev_test.c grant/grant_xen.c evtchn/evtchn_xen.c
xen_nodev_test_LIBS := sxcommon
xen_nodev_test_LDLIBS := -lxengnttab -lxenevtchn -lxenstore -lxenctrl -lcunit
