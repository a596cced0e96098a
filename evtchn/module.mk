LIBS += sxevtchn
sxevtchn_SRCS := evtchn/evtchn.c evtchn/evtchn_sim.c evtchn/evtchn_xen.c evtchn/lateeoi.c
