# frontends/hvmnet: the sim HVM guest's e1000 driver exposing the NIC as eth0 in a netns.
PROGS += splitxen-hvmnet
splitxen-hvmnet_SRCS := frontends/hvmnet/hvmnet.c
splitxen-hvmnet_LIBS := $(SX_IOREQ_LIBS) $(SX_NETDEV_LIBS)
splitxen-hvmnet_LDLIBS := $(SX_IOREQ_LDLIBS) $(SX_NETDEV_LDLIBS)
