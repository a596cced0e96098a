# splitxen — one entry point.
#   make            build every library and program into build/
#   make check      build and run every test, then again under AddressSanitizer + UBSan
#   make deps       install the Debian packages splitxen needs (apt-get, idempotent)
#   make bench      run the benchmarks in bench/
#   make demo       the main job on the sim platform
#   make install    install into PREFIX (/usr/local) under DESTDIR; make uninstall (mk/install.mk)
#   make deb        the Debian package, build/splitxen_<version>_<arch>.deb; make check-deb
#
# Each module describes itself in <module>/module.mk with these variables:
#   LIBS += name          name_SRCS := files      -> $(B)/lib/libname.a
#   PROGS += name         name_SRCS, name_LIBS (internal, in link order), name_LDLIBS
#   UNIT_TESTS += name    same variables; binary goes to $(B)/tests/name
#   SHLIBS += name        name_SRCS, name_LIBS, name_LDLIBS -> $(B)/lib/name.so (PIC)
#   FUZZERS += name       same variables; a libFuzzer harness -> $(B)/fuzz/name (FUZZ=1 builds)
# Programs land in $(B)/bin, tests in $(B)/tests.
#
#   make fuzz             build the libFuzzer harnesses (build/fuzz: clang, ASan, UBSan) and run
#                         each for FUZZ_SECONDS (default 60) on its corpus (tests/fuzz/run)
#   make check-tsan       the unit tests (and itests marked "# tsan: yes") built with
#                         ThreadSanitizer (build/tsan) and run

B        ?= build
# The release version: debian/changelog's first entry is the one place it is written.
SX_VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
SAN      ?= 0
FUZZ     ?= 0
TSAN     ?= 0
CC       ?= gcc
OPT      ?= -O2
CFLAGS_BASE := -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
               -Wno-missing-field-initializers -D_GNU_SOURCE -fno-strict-aliasing -pthread \
               -MMD -MP -I. -Icommon \
               -D__XEN_TOOLS__
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
# libFuzzer harnesses: Debian's clang, every object instrumented for coverage.
ifeq ($(FUZZ),1)
CC := clang
CFLAGS_BASE += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
# ThreadSanitizer (gcc's): the multi-threaded tests' races.
ifeq ($(TSAN),1)
CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS_SAN := -fsanitize=thread
endif
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(LDFLAGS_SAN) $(EXTRA_LDFLAGS)

LIBS :=
PROGS :=
UNIT_TESTS :=
SHLIBS :=
FUZZERS :=

.DEFAULT_GOAL := all
# Bottom of the stack first: a module uses only the modules above it in this list (folder order
# is link order; mk/layering checks the includes and calls), so a module file may read its
# dependencies' SX_<MODULE>_LIBS / _LDLIBS with :=. Each module sets SX_<MODULE>_LIBS to its
# own libraries followed by its direct dependencies' lists: a consumer names only those.
MODULE_MKS := common/module.mk xenstored/module.mk xen-core/module.mk platform/module.mk \
              grant/module.mk evtchn/module.mk ring/module.mk ioreq/module.mk \
              xenbus/module.mk torture/module.mk netdev/module.mk blkio/module.mk \
              netback/module.mk blkback/module.mk device-model/module.mk \
              frontends/control/module.mk \
              frontends/blkfront/module.mk \
              frontends/netfront/module.mk frontends/pktgen/module.mk \
              frontends/hvmdisk/module.mk \
              frontends/hvmnet/module.mk frontends/fio/module.mk toolstack/module.mk \
              bench/ring/module.mk bench/blk/module.mk bench/net/module.mk
# Tests that span modules (tests/xsa: one program an advisory), after every module: they link
# any module's libraries. Not modules themselves (no layering rank).
TEST_MKS := tests/xsa/module.mk tests/fuzz/module.mk
include $(MODULE_MKS) $(TEST_MKS)

objs = $(patsubst %.c,$(B)/obj/%.o,$(1))
picobjs = $(patsubst %.c,$(B)/pic/%.o,$(1))
libfiles = $(foreach l,$(1),$(B)/lib/lib$(l).a)

LIB_FILES   := $(call libfiles,$(LIBS))
PROG_FILES  := $(addprefix $(B)/bin/,$(PROGS))
TEST_FILES  := $(addprefix $(B)/tests/,$(UNIT_TESTS))
SHLIB_FILES := $(foreach s,$(SHLIBS),$(B)/lib/$(s).so)
FUZZ_FILES  := $(addprefix $(B)/fuzz/,$(FUZZERS))

.PHONY: all tests check check-unit check-san deps bench demo lab lab-long clean layering module-dirs \
        fuzzers fuzz check-tsan soak
EXTRA_TARGETS ?=
all: $(LIB_FILES) $(PROG_FILES) $(SHLIB_FILES) $(EXTRA_TARGETS)
tests: all $(TEST_FILES)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $($(firstword $(subst /, ,$*))_CFLAGS) -c $< -o $@

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC $($(firstword $(subst /, ,$*))_CFLAGS) -c $< -o $@

define lib_rule
$(B)/lib/lib$(1).a: $(call objs,$($(1)_SRCS))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LIBS),$(eval $(call lib_rule,$(l))))

define link_rule
$(2)/$(1): $(call objs,$($(1)_SRCS)) $(call libfiles,$($(1)_LIBS))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(call libfiles,$($(1)_LIBS)) $($(1)_LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call link_rule,$(p),$(B)/bin)))
$(foreach t,$(UNIT_TESTS),$(eval $(call link_rule,$(t),$(B)/tests)))

define fuzz_rule
$(B)/fuzz/$(1): $(call objs,$($(1)_SRCS)) $(call libfiles,$($(1)_LIBS))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -fsanitize=fuzzer -o $$@ $$(filter %.o,$$^) $(call libfiles,$($(1)_LIBS)) $($(1)_LDLIBS)
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(f))))

define shlib_rule
$(B)/lib/$(1).so: $(call picobjs,$($(1)_SRCS))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared $$(LDFLAGS) -o $$@ $$^ $($(1)_LDLIBS)
endef
$(foreach s,$(SHLIBS),$(eval $(call shlib_rule,$(s))))

-include $(shell find $(B) -path $(B)/deb -prune -o -name '*.d' -print 2>/dev/null)

include mk/install.mk

# Folder order is link order: no upward include or call, no circle between files
# (tests/mk/layering.itest runs this in make check).
layering: all
	mk/layering --objs $(B)/obj $(dir $(MODULE_MKS))

module-dirs:
	@echo $(dir $(MODULE_MKS))

# make check: the whole suite on the normal build, then on the sanitizer build, the unit tests
# on the ThreadSanitizer build, and the fuzzers over their corpora for a few seconds each
# (tests/fuzz/fuzz.itest).
check:
	$(MAKE) tests
	$(MAKE) tests B=build/san SAN=1 OPT=-O1
	$(MAKE) tests B=build/tsan TSAN=1 OPT=-O1
	$(MAKE) fuzzers B=build/fuzz FUZZ=1 OPT=-O1
	tests/run-tests --build build --build-san build/san --build-tsan build/tsan

fuzzers: $(FUZZ_FILES)

FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) fuzzers B=build/fuzz FUZZ=1 OPT=-O1
	tests/fuzz/run --build build/fuzz --seconds $(FUZZ_SECONDS)

check-tsan:
	$(MAKE) tests B=build/tsan TSAN=1 OPT=-O1
	tests/run-tests --build build/tsan --tsan

check-unit: tests
	tests/run-tests --build build --only unit

deps:
	./mk/deps.sh

bench: all
	bench/run-all

demo:
	./mk/deps.sh
	$(MAKE) all
	./examples/demo.sh

# make lab (CI's form, to keep CI within its time): every splitxen case, the torture case's I/O
# loop for 60 s, without the Linux-backend baseline boot. make lab-long: the baseline too, the
# torture loop at 180 s, then the migration cases (xl migrate, PVH guests).
lab: all
	LAB_BASELINE=$${LAB_BASELINE-} LAB_TORTURE_SECS=$${LAB_TORTURE_SECS:-60} lab/run

lab-long: all
	lab/run
	lab/run splitxen-migrate splitxen-move splitxen-save-pvh splitxen-migrate-pvh

clean:
	rm -rf build
