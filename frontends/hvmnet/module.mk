# frontends/hvmnet: the sim HVM guest's e1000 driver exposing the NIC as eth0 in a netns.
PROGS += splitxen-hvmnet
splitxen-hvmnet_SRCS := frontends/hvmnet/hvmnet.c
splitxen-hvmnet_LIBS := sxnetback sxioreq sxgrant sxevtchn sxcore sxxenstored sxcommon
splitxen-hvmnet_LDLIBS := -lxendevicemodel -lxenforeignmemory -lxengnttab -lxenevtchn \
                          -lxenstore -lmnl
