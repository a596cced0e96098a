/*
 * netdev: attach and detach for kinds whose device is a Linux interface (see netdev.h). Apart
 * from netdev.c, which holds the kinds' table: the kinds call these, netdev.c calls the kinds.
 */
#include "netdev/netdev.h"
#include "netdev/world.h"

int sx_netdev_link_attach(struct sx_netdev *nd, const struct sx_world *w, const char *ifname,
                          char *err, size_t errlen)
{
    sx_world_detach(nd->world);
    nd->world = NULL;
    return sx_world_attach(&nd->world, w, ifname, err, errlen);
}

void sx_netdev_link_detach(struct sx_netdev *nd)
{
    sx_world_detach(nd->world);
    nd->world = NULL;
}
