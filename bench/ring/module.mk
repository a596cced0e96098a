# splitxen-bench-ring: ring + event channel costs between two processes (bench/ring/run), on
# the sim platform's event channels with splitxen-core running in-process.
PROGS += splitxen-bench-ring
splitxen-bench-ring_SRCS := bench/ring/bench_ring.c
splitxen-bench-ring_LIBS := $(SX_RING_LIBS) $(SX_SIMENV_LIBS)
splitxen-bench-ring_LDLIBS := $(SX_RING_LDLIBS)
