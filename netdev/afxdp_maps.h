/* What netdev/afxdp.c and its XDP program (afxdp.bpf.c) agree on: the maps' sizes and keys.
 * sx_afxdp_macs: the vif's MAC in the low 6 bytes of a zeroed u64 (memory order) -> its slot;
 * sx_afxdp_xsks: slot * SX_AFXDP_MAX_QUEUES + the uplink's rx queue -> the vif's socket. */
#ifndef SPLITXEN_NETDEV_AFXDP_MAPS_H
#define SPLITXEN_NETDEV_AFXDP_MAPS_H

#define SX_AFXDP_MAX_VIFS 8       /* vifs on one uplink */
#define SX_AFXDP_MAX_QUEUES 16    /* = SX_NETDEV_MAX_QUEUES */

#endif
