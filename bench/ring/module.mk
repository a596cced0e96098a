# splitxen-bench-ring: ring + event channel costs between two processes (bench/ring/run).
# Cases c-f use the sim platform's event channels when xen-core/ provides the platform
# libraries (SX_PLAT_LIBS), raw eventfds otherwise. xen-core/module.mk is included after this
# file (sorted paths): test for the files and expand SX_PLAT_LIBS late (=, not :=).
PROGS += splitxen-bench-ring
splitxen-bench-ring_SRCS := bench/ring/bench_ring.c
ifneq ($(and $(wildcard xen-core/module.mk),$(wildcard xen-core/xenstored/module.mk)),)
splitxen-bench-ring_LIBS = sxring $(SX_PLAT_LIBS)
splitxen-bench-ring_LDLIBS = $(SX_PLAT_LDLIBS)
bench_CFLAGS += -DSX_BENCH_RING_SIM=1
else
splitxen-bench-ring_LIBS := sxring sxcommon
endif
