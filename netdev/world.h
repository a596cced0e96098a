/*
 * netdev worlds: how a vif's device joins the network outside it, chosen per vif with xl's
 * own keys (xl.cfg(5), xl-network-configuration(5)) as libxl writes them into the backend
 * directory, and done the way Xen's hotplug scripts do it:
 *
 *   script=vif-bridge       the device is a port of a switch: `bridge=xenbr0` a Linux bridge
 *                           (created if missing), with vif-openvswitch's VLAN spelling
 *                           `bridge=xenbr0.10` (access port of VLAN 10) and `xenbr0:20:30`
 *                           (trunk of 20 and 30); `xenbr0.10:20:30` is both (VLAN 10 untagged,
 *                           20 and 30 tagged). VLANs go to a VLAN-filtering Linux bridge where
 *                           the kernel has 802.1Q, else to the Open vSwitch bridge of that name.
 *                           A bridge that is an Open vSwitch bridge gets an OVS port.
 *   script=vif-openvswitch  a port of the Open vSwitch bridge `bridge=` (which must exist),
 *                           with its VLAN tag or trunks, through ovsdb (ovs-vsctl)
 *   script=vif-route        routed: the device gets gatewaydev's IPv4 address as a /32, proxy
 *                           ARP and forwarding; each `ip=` address or network is routed to it
 *   script=vif-nat          routed with a private address: the device gets the router address
 *                           (the guest's last octet + 127, as vif-nat), the guest's `ip=` (one
 *                           address; default 10.<domid/256>.<domid%256>.<devid+1>/16 as vif-nat)
 *                           is routed to it and masqueraded out of gatewaydev by an nftables
 *                           table of its own, which also lets no connection in
 *   script=vif-afxdp        (splitxen's own) no TAP: the vif's frames go in and out of the
 *                           uplink `gatewaydev=` (required) through AF_XDP sockets, steered to
 *                           the vif by the guest's MAC (`mac=`, required); netdev kind "afxdp"
 *                           (afxdp.c). On real Xen libxl runs /etc/xen/scripts/vif-afxdp, which
 *                           only reports success (examples/vif-splitxen).
 *   script=vif-dpdk         (splitxen's own) no TAP: the vif is a port of an L2 switch inside
 *                           netback whose uplink is a DPDK port, `gatewaydev=` (required)
 *                           naming it as KIND:ARG: `af_packet:IFACE` (net_af_packet on a
 *                           Linux interface), `tap:NAME` (net_tap: a TAP of that name),
 *                           `memif:/PATH` (net_memif server on that socket); netdev kind "dpdk"
 *                           (dpdk.c). On real Xen, examples/vif-splitxen as /etc/xen/scripts/
 *                           vif-dpdk.
 *
 * gatewaydev defaults to eth0 (vif-route's netdev). Route and NAT carry IPv4 only, as Xen's
 * scripts do. script may be a path (libxl writes /etc/xen/scripts/vif-route): its last
 * component names the mode.
 *
 * Attaching is idempotent (a restarted backend re-attaches a device of the same name over
 * whatever its predecessor left: nft table and OVS port replaced, routes and addresses
 * replaced), and unwinds itself on failure. Detaching removes everything attach made that the
 * device's own removal does not: the OVS port, the nft table, the routes. What stays: a bridge
 * attach created, and proxy_arp/forwarding on gatewaydev (shared by every routed vif).
 *
 * Control plane only: these block on netlink, nftables and ovs-vsctl.
 * Every int is 0 or -errno; err (errlen bytes, may be NULL) gets a message that names the
 * xenstore key and value at fault, e.g. "gatewaydev: 'eth9': no such interface".
 */
#ifndef SPLITXEN_NETDEV_WORLD_H
#define SPLITXEN_NETDEV_WORLD_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sx_world_mode {
    SX_WORLD_BRIDGE = 0,     /* vif-bridge (the default) */
    SX_WORLD_OPENVSWITCH,    /* vif-openvswitch */
    SX_WORLD_ROUTE,          /* vif-route */
    SX_WORLD_NAT,            /* vif-nat */
    SX_WORLD_AFXDP,          /* vif-afxdp: AF_XDP on the uplink gatewaydev */
    SX_WORLD_DPDK,           /* vif-dpdk: a port of a switch on the DPDK uplink gatewaydev */
};

/* vif-dpdk's uplink kinds (gatewaydev=KIND:ARG). */
enum sx_world_dpdk_kind { SX_DPDK_AF_PACKET, SX_DPDK_TAP, SX_DPDK_MEMIF };
#define SX_WORLD_UPLINK_MAX 108u

#define SX_WORLD_MAX_TRUNKS 32u
#define SX_WORLD_MAX_IPS 16u
#define SX_WORLD_VID_MAX 4094u

struct sx_world_prefix {
    struct in_addr addr;     /* network order */
    uint8_t len;             /* 0..32 */
};

/* A parsed world: what sx_world_parse makes of the backend's keys. */
struct sx_world {
    enum sx_world_mode mode;
    char bridge[IFNAMSIZ];            /* bridge modes: the switch, without VLAN suffixes */
    uint16_t tag;                     /* bridge modes: access VLAN (0: none) */
    uint16_t trunks[SX_WORLD_MAX_TRUNKS];
    unsigned ntrunks;
    char gatewaydev[IFNAMSIZ];        /* route, nat; afxdp: the uplink */
    struct sx_world_prefix ips[SX_WORLD_MAX_IPS];   /* route: ip=; nat: the guest's one */
    unsigned nips;
    struct in_addr router;            /* nat: the device's own address */
    enum sx_world_dpdk_kind dpdk_kind;     /* dpdk: the uplink's PMD */
    char uplink[SX_WORLD_UPLINK_MAX];      /* dpdk: gatewaydev as spelled; its ARG after ':' */
    uint8_t guest_mac[6];             /* OVS external-ids:attached-mac (may stay zero) */
    bool has_guest_mac;
};

/* The backend keys a world is made of (any may be NULL: absent). */
struct sx_world_keys {
    const char *script;      /* "vif-route" or "/etc/xen/scripts/vif-route"; NULL: vif-bridge */
    const char *bridge;      /* NULL or "": the caller's default bridge */
    const char *ip;          /* space-separated addresses or networks */
    const char *gatewaydev;
    const char *mac;         /* the guest's MAC (backend "mac") */
    unsigned domid, devid;   /* for vif-nat's default address */
};

/* Parse and validate the keys (syntax only: no interface is looked at). -EINVAL with err
 * naming the key and value. default_bridge is used when keys->bridge is NULL or empty. */
int sx_world_parse(struct sx_world *w, const struct sx_world_keys *keys,
                   const char *default_bridge, char *err, size_t errlen);

/* "bridge", "openvswitch", "route", "nat", "afxdp", "dpdk". */
const char *sx_world_mode_name(enum sx_world_mode m);
/* Describe w in buf ("route via eth0: 192.0.2.10/32", "bridge xenbr0 vlan 10"...). */
void sx_world_describe(const struct sx_world *w, char *buf, size_t len);

/* An attached device: what detach needs to undo. */
struct sx_world_link;

/*
 * Join the link called ifname (in the caller's network namespace) to w. Idempotent; on failure
 * nothing attach made is left and err says why. *out is NULL on failure.
 */
int sx_world_attach(struct sx_world_link **out, const struct sx_world *w, const char *ifname,
                    char *err, size_t errlen);
/* Undo attach (OVS port, nft table, routes). NULL-safe; safe when the link is already gone. */
void sx_world_detach(struct sx_world_link *l);

/* The nftables table a vif-nat link of this name uses ("splitxen_vif5_0" for "vif5.0"). */
void sx_world_nft_table(const char *ifname, char *buf, size_t len);

#endif
