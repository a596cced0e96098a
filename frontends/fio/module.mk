# frontends/fio: fio external ioengines.
#
# Debian's fio ships without headers; mk/fio-src.sh (run by `make deps`, or by the stamp rule
# below on first use) unpacks the matching Debian source package into .deps/fio-<version>/ and
# runs its ./configure. An engine is compiled against that tree with fio's own config-host.h
# forced in, so it cannot use the generic SHLIBS rule; each engine gets an explicit rule here.
# The engine is loaded into Debian's (uninstrumented) fio, so it never takes the sanitizer
# flags, whatever SAN says.

FIO_VERSION := $(shell dpkg-query -W -f='$${Version}' fio 2>/dev/null)
ifneq ($(FIO_VERSION),)
FIO_SRC := $(abspath .deps/fio-$(subst :,_,$(FIO_VERSION)))
FIO_STAMP := $(FIO_SRC)/.splitxen-ready
FIO_ENGINE_CFLAGS := -std=gnu11 -g -O2 -fPIC -Wall -Wextra -Werror -Wshadow \
    -Wno-unused-parameter -Wno-missing-field-initializers -D_GNU_SOURCE \
    -include config-host.h -I$(FIO_SRC) -I. -Icommon -D__XEN_TOOLS__ $(EXTRA_CFLAGS)

$(FIO_STAMP):
	./mk/fio-src.sh

# Smoke engine: does nothing, measures fio's ceiling (tests/blkback/fio_smoke.itest).
$(B)/lib/splitxen-fio-smoke.so: frontends/fio/smoke_engine.c $(FIO_STAMP)
	@mkdir -p $(dir $@) $(B)/pic/frontends/fio
	$(CC) $(FIO_ENGINE_CFLAGS) -MMD -MP -MF $(B)/pic/frontends/fio/smoke_engine.d -MT $@ \
	    -shared -o $@ $<

FIO_ENGINES := $(B)/lib/splitxen-fio-smoke.so

# With the fio source in place (make deps), the engines are ordinary targets of `all`. Without
# it, `all` tries to fetch it once and builds them, but never fails the whole build over an
# unreachable archive: the fio itests then skip and say why.
ifneq ($(wildcard $(FIO_STAMP)),)
EXTRA_TARGETS += $(FIO_ENGINES)
else
EXTRA_TARGETS += fio-engines-try
.PHONY: fio-engines-try
fio-engines-try:
	@mkdir -p .deps; if ./mk/fio-src.sh >.deps/fio-src.log 2>&1; then \
	    $(MAKE) --no-print-directory B=$(B) $(FIO_ENGINES); \
	else echo "note: fio source unavailable (see .deps/fio-src.log); fio engines not built"; fi
endif
endif

# splitxen-fio: the blkfront engine (frontends/fio/splitxen_engine.c). The splitxen code it
# needs is compiled into the .so from source, as position-independent objects of its own under
# $(B)/fio-pic/ (never sanitized either: Debian's fio is not): every source of the libraries
# sxblkfront and sxhvmdisk link (SX_BLKFRONT_LIBS, SX_HVMDISK_LIBS). With --transport=ahci it
# drives the emulated AHCI disk through sx_hvmdisk and the ioreq guest side.
ifneq ($(FIO_VERSION),)
SXFIO_LIBS := $(SX_BLKFRONT_LIBS) $(SX_HVMDISK_LIBS) $(SX_GUEST_LIBS)
SXFIO_LIB_SRCS := $(sort $(foreach l,$(SXFIO_LIBS),$($(l)_SRCS)))
SXFIO_CFLAGS := -std=gnu11 -g -O2 -fPIC -pthread -Wall -Wextra -Werror -Wshadow \
    -Wno-unused-parameter -Wno-missing-field-initializers -D_GNU_SOURCE -fno-strict-aliasing \
    -I. -Icommon -D__XEN_TOOLS__ $(EXTRA_CFLAGS)
SXFIO_OBJS := $(patsubst %.c,$(B)/fio-pic/%.o,$(SXFIO_LIB_SRCS))

$(B)/fio-pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SXFIO_CFLAGS) -MMD -MP -c $< -o $@

$(B)/lib/splitxen-fio.so: frontends/fio/splitxen_engine.c $(SXFIO_OBJS) $(FIO_STAMP)
	@mkdir -p $(dir $@) $(B)/pic/frontends/fio
	$(CC) $(FIO_ENGINE_CFLAGS) -pthread -MMD -MP -MF $(B)/pic/frontends/fio/splitxen_engine.d \
	    -MT $@ -shared -o $@ $< $(SXFIO_OBJS) $(SX_BLKFRONT_LDLIBS) $(SX_HVMDISK_LDLIBS) \
	    $(EXTRA_LDFLAGS)

# Built with the other engines (FIO_ENGINES above: part of `all` once the fio source is there,
# tried without failing the build otherwise).
FIO_ENGINES += $(B)/lib/splitxen-fio.so
endif
