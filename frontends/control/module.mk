# frontends/control: the guest kernel's control plane in a sim guest's process (sxguest):
# control/shutdown and the suspend protocol around its frontends.
LIBS += sxguest
sxguest_SRCS := frontends/control/control.c
SX_GUEST_LIBS := sxguest $(SX_XENBUS_LIBS)
SX_GUEST_LDLIBS := $(SX_XENBUS_LDLIBS)
