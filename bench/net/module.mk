# splitxen-bench-afpkt: bench/net's raw packet-rate baseline and world-side generator/counter
# (AF_PACKET with PACKET_MMAP TX and RX rings).
PROGS += splitxen-bench-afpkt
splitxen-bench-afpkt_SRCS := bench/net/afpkt.c
splitxen-bench-afpkt_LIBS :=
splitxen-bench-afpkt_LDLIBS :=
