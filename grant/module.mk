LIBS += sxgrant
sxgrant_SRCS := grant/grant.c grant/grant_sim.c grant/grant_xen.c
