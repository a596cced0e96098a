# splitxen — one entry point.
#   make            build every library and program into build/
#   make check      build and run every test, then again under AddressSanitizer + UBSan
#   make deps       install the Debian packages splitxen needs (apt-get, idempotent)
#   make bench      run the benchmarks in bench/
#   make demo       the main job on the sim platform
#
# Each module describes itself in <module>/module.mk with these variables:
#   LIBS += name          name_SRCS := files      -> $(B)/lib/libname.a
#   PROGS += name         name_SRCS, name_LIBS (internal, in link order), name_LDLIBS
#   UNIT_TESTS += name    same variables; binary goes to $(B)/tests/name
#   SHLIBS += name        name_SRCS, name_LIBS, name_LDLIBS -> $(B)/lib/name.so (PIC)
# Programs land in $(B)/bin, tests in $(B)/tests.

B        ?= build
SAN      ?= 0
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
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(LDFLAGS_SAN) $(EXTRA_LDFLAGS)

LIBS :=
PROGS :=
UNIT_TESTS :=
SHLIBS :=

.DEFAULT_GOAL := all
# Bottom of the stack first: a module uses only the modules above it in this list (folder order
# is link order; mk/layering checks the includes and calls), so a module file may read its
# dependencies' SX_<MODULE>_LIBS / _LDLIBS with :=. Each module sets SX_<MODULE>_LIBS to its
# own libraries followed by its direct dependencies' lists: a consumer names only those.
MODULE_MKS := common/module.mk xenstored/module.mk xen-core/module.mk platform/module.mk \
              grant/module.mk evtchn/module.mk ring/module.mk ioreq/module.mk \
              xenbus/module.mk netdev/module.mk blkio/module.mk netback/module.mk \
              blkback/module.mk device-model/module.mk frontends/control/module.mk \
              frontends/blkfront/module.mk \
              frontends/netfront/module.mk frontends/hvmdisk/module.mk \
              frontends/hvmnet/module.mk frontends/fio/module.mk toolstack/module.mk \
              bench/ring/module.mk bench/blk/module.mk
include $(MODULE_MKS)

objs = $(patsubst %.c,$(B)/obj/%.o,$(1))
picobjs = $(patsubst %.c,$(B)/pic/%.o,$(1))
libfiles = $(foreach l,$(1),$(B)/lib/lib$(l).a)

LIB_FILES   := $(call libfiles,$(LIBS))
PROG_FILES  := $(addprefix $(B)/bin/,$(PROGS))
TEST_FILES  := $(addprefix $(B)/tests/,$(UNIT_TESTS))
SHLIB_FILES := $(foreach s,$(SHLIBS),$(B)/lib/$(s).so)

.PHONY: all tests check check-unit check-san deps bench demo lab clean layering module-dirs
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

define shlib_rule
$(B)/lib/$(1).so: $(call picobjs,$($(1)_SRCS))
	@mkdir -p $$(dir $$@)
	$$(CC) -shared $$(LDFLAGS) -o $$@ $$^ $($(1)_LDLIBS)
endef
$(foreach s,$(SHLIBS),$(eval $(call shlib_rule,$(s))))

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Folder order is link order: no upward include or call, no circle between files
# (tests/mk/layering.itest runs this in make check).
layering: all
	mk/layering --objs $(B)/obj $(dir $(MODULE_MKS))

module-dirs:
	@echo $(dir $(MODULE_MKS))

# make check: the whole suite on the normal build, then on the sanitizer build.
check:
	$(MAKE) tests
	$(MAKE) tests B=build/san SAN=1 OPT=-O1
	tests/run-tests --build build --build-san build/san

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

lab: all
	lab/run

clean:
	rm -rf build
