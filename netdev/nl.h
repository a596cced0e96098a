/*
 * Netlink (rtnetlink over libmnl) helpers for netback's world side and the TAP netfront:
 * bridges (and their VLANs), veths, link attributes, IPv4 addresses, routes and per-device
 * sysctls, and network namespaces. No shelling out.
 *
 * One handle = one NETLINK_ROUTE socket, bound to the network namespace of the thread that
 * opened it (sx_nl_open) or of a given namespace fd (sx_nl_open_netns). A handle is not
 * thread-safe: one thread at a time. These are control-plane calls (they block on the kernel's
 * ack); never call them from a ring loop.
 *
 * Every call returns 0 or -errno. When the kernel attaches an extended-ack message to an error
 * (NETLINK_EXT_ACK), it is logged at warning level together with the operation.
 */
#ifndef SPLITXEN_NETDEV_NL_H
#define SPLITXEN_NETDEV_NL_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct sx_nl;

/* Open a route socket in the calling thread's network namespace. 0 or -errno. */
int sx_nl_open(struct sx_nl **out);
/* Open a route socket inside the namespace netns_fd (the thread's namespace is restored before
 * returning). 0 or -errno. */
int sx_nl_open_netns(int netns_fd, struct sx_nl **out);
/* NULL-safe, idempotent on NULL. */
void sx_nl_close(struct sx_nl *nl);

/* ifindex of the link called name in the handle's namespace. 0 or -errno (-ENODEV). */
int sx_nl_ifindex(struct sx_nl *nl, const char *name, int *ifindex);

/* What sx_nl_link_get reports. tun_* are valid only when kind is "tun". */
struct sx_nl_link {
    int ifindex;
    char name[IFNAMSIZ];
    unsigned flags;        /* IFF_* (IFF_UP, IFF_RUNNING...) */
    unsigned mtu;
    uint8_t mac[6];
    bool has_mac;
    int master;            /* ifindex of the master (bridge), 0 if none */
    char kind[16];         /* IFLA_INFO_KIND: "bridge", "tun", "veth", "" for none */
    int tun_type;          /* IFF_TUN or IFF_TAP, 0 if unknown */
    bool tun_vnet_hdr;
    bool tun_pi;
    bool tun_multi_queue;
    unsigned tun_num_queues;
};
/* Query one link by ifindex (> 0) or, when ifindex is 0, by name. 0 or -errno. */
int sx_nl_link_get(struct sx_nl *nl, int ifindex, const char *name, struct sx_nl_link *out);

/* Create the bridge if no link has that name; if one does, it must be a bridge (-EEXIST
 * otherwise). *ifindex (may be NULL) gets its ifindex. Does not bring it up. 0 or -errno. */
int sx_nl_bridge_ensure(struct sx_nl *nl, const char *name, int *ifindex);
/* Create a veth pair name <-> peer (both in the handle's namespace). 0 or -errno. */
int sx_nl_veth_add(struct sx_nl *nl, const char *name, const char *peer);
/* Delete a link. 0 or -errno (-ENODEV when gone). */
int sx_nl_link_del(struct sx_nl *nl, int ifindex);
/* Enslave ifindex to master (a bridge); master 0 detaches. 0 or -errno. */
int sx_nl_link_set_master(struct sx_nl *nl, int ifindex, int master);
/* Set or clear IFF_UP. 0 or -errno. */
int sx_nl_link_set_up(struct sx_nl *nl, int ifindex, bool up);
int sx_nl_link_set_mtu(struct sx_nl *nl, int ifindex, unsigned mtu);
int sx_nl_link_set_mac(struct sx_nl *nl, int ifindex, const uint8_t mac[6]);
/* Move the link into the namespace netns_fd, renaming it to newname when not NULL (one
 * message, so the name never exists in the target under the old name). The link goes down and
 * loses its addresses and master, as the kernel does on any move. 0 or -errno. */
int sx_nl_link_set_netns(struct sx_nl *nl, int ifindex, int netns_fd, const char *newname);
/* Add (or replace) an IPv4 address addr/prefix on ifindex. 0 or -errno. */
int sx_nl_addr_add_v4(struct sx_nl *nl, int ifindex, struct in_addr addr, unsigned prefix);

/* The primary (first, non-secondary) IPv4 address of ifindex. -EADDRNOTAVAIL if it has none. */
int sx_nl_addr_get_v4(struct sx_nl *nl, int ifindex, struct in_addr *addr, unsigned *prefix);
/* Add or replace (add) or delete (!add) the main-table route dst/prefix dev oif, with source
 * address src (may be NULL) and metric. Deleting a route that is not there is -ESRCH. */
int sx_nl_route_v4(struct sx_nl *nl, bool add, struct in_addr dst, unsigned prefix, int oif,
                   const struct in_addr *src, unsigned metric);
/* Set one of ifindex's IPv4 sysctls (net.ipv4.conf.<dev>.*) by its IPV4_DEVCONF_* number
 * (<linux/ip.h>), e.g. IPV4_DEVCONF_PROXY_ARP. 0 or -errno. */
int sx_nl_inet_conf_set(struct sx_nl *nl, int ifindex, int conf, uint32_t value);

/* Like sx_nl_bridge_ensure, for a VLAN-filtering bridge: a missing one is created with VLAN
 * filtering on, an existing Linux bridge gets it turned on. -EOPNOTSUPP when the kernel's
 * bridges cannot filter VLANs (no 802.1Q): then nothing was created. */
int sx_nl_bridge_ensure_vlan(struct sx_nl *nl, const char *name, int *ifindex);
/* Add (add) or remove (!add) VLAN vid on bridge port ifindex; pvid_untagged makes it the
 * port's untagged VLAN (bridge vlan add ... pvid untagged). 0 or -errno. */
int sx_nl_bridge_vlan(struct sx_nl *nl, int ifindex, bool add, uint16_t vid, bool pvid_untagged);

/*
 * Named network namespaces, compatible with `ip netns`: /run/netns/<name> is a bind mount of
 * the namespace (so `ip netns exec <name> ...` and `ip netns del <name>` work on ours, and
 * sx_nl_netns_open works on namespaces made by `ip netns add`).
 */
/* Create /run/netns/<name> holding a new, empty network namespace. The calling thread's
 * namespace is unchanged. -EEXIST if the name is taken. 0 or -errno. */
int sx_nl_netns_add(const char *name);
/* Unmount and remove /run/netns/<name>; the namespace dies with its last user. 0 or -errno. */
int sx_nl_netns_del(const char *name);
/* Open /run/netns/<name> (O_RDONLY|O_CLOEXEC). Returns the fd (>= 0) or -errno. */
int sx_nl_netns_open(const char *name);
/* Switch the calling thread into netns_fd; *saved_fd gets a fd of the previous namespace for
 * sx_nl_netns_leave. Only this thread moves. 0 or -errno. */
int sx_nl_netns_enter(int netns_fd, int *saved_fd);
/* Return the calling thread to saved_fd and close it. 0 or -errno (the thread then stays where
 * it was: treat as fatal for that thread). */
int sx_nl_netns_leave(int saved_fd);

#endif
