/* Private to netdev: the kinds behind sx_netdev_open. */
#ifndef SPLITXEN_NETDEV_IMPL_H
#define SPLITXEN_NETDEV_IMPL_H

#include "netdev/netdev.h"
#include "netdev/world_impl.h"

/* A kind's open failing: cfg->err (may be NULL) gets the message, naming the key at fault. */
#define sx_netdev_fail(cfg, rc, ...) sx_world_fail((cfg)->err, (cfg)->errlen, (rc), __VA_ARGS__)

extern const struct sx_netdev_ops sx_netdev_bridge_ops;   /* bridge.c */
extern const struct sx_netdev_ops sx_netdev_afxdp_ops;    /* afxdp.c */
/* dpdk_kind.c: open loads dpdk.c's table (sx_netdev_dpdk_impl) and hands the device to it */
extern const struct sx_netdev_ops sx_netdev_dpdk_ops;

#endif
