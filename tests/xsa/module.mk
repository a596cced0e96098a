# tests/xsa: one hostile-frontend program per Xen security advisory about backends and their
# protocols, named after it (xsaNNN_<backend>_test), each showing the attack fails against the
# real code running in-process. README.md says what each checks and how it was seen to fail
# with its defence removed.
XSA_BLK_LIBS := $(SX_BLKBACK_LIBS) $(SX_SIMENV_LIBS)
XSA_BLK_LDLIBS := $(SX_BLKBACK_LDLIBS) -lcunit
XSA_NET_LIBS := $(SX_NETBACK_LIBS) $(SX_SIMENV_LIBS)
XSA_NET_LDLIBS := $(SX_NETBACK_LDLIBS) -lcunit

XSA_BLK_TESTS := cve_2026_45890_blkback_test xsa361_362_365_blkback_test xsa350_371_blkback_test xsa216_blkback_test xsa155_blkback_test xsa332_blkback_test xsa349_blkback_test
XSA_NET_TESTS := xsa423_432_448_netback_test xsa392_netback_test xsa270_netback_test cve_2026_45890_netback_test xsa361_362_367_netback_test xsa332_netback_test xsa349_netback_test

UNIT_TESTS += $(XSA_BLK_TESTS) $(XSA_NET_TESTS)
$(foreach t,$(XSA_BLK_TESTS),$(eval $(t)_SRCS := tests/xsa/$(t).c) \
    $(eval $(t)_LIBS := $(XSA_BLK_LIBS)) $(eval $(t)_LDLIBS := $(XSA_BLK_LDLIBS)))
$(foreach t,$(XSA_NET_TESTS),$(eval $(t)_SRCS := tests/xsa/$(t).c) \
    $(eval $(t)_LIBS := $(XSA_NET_LIBS)) $(eval $(t)_LDLIBS := $(XSA_NET_LDLIBS)))

# xenstored's advisories: the daemon in-process, raw xs_wire messages (tests/xsraw.h).
XSA_XS_TESTS := xsa326_xenstored_test xsa414_421_xenstored_test xsa481_483_484_xenstored_test
UNIT_TESTS += $(XSA_XS_TESTS)
$(foreach t,$(XSA_XS_TESTS),$(eval $(t)_SRCS := tests/xsa/$(t).c) \
    $(eval $(t)_LIBS := $(SX_XENSTORED_LIBS)) $(eval $(t)_LDLIBS := -lcunit))

# XSA-506 on the ioreq layer (tests/ioreqenv.h: the server and the sim vCPU side in-process).
UNIT_TESTS += xsa506_ioreq_test
xsa506_ioreq_test_SRCS := tests/xsa/xsa506_ioreq_test.c
xsa506_ioreq_test_LIBS := $(ioreq_test_LIBS)
xsa506_ioreq_test_LDLIBS := $(ioreq_test_LDLIBS)
