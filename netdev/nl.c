/* Netlink helpers over libmnl; see nl.h. */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/nl.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SX_NL_BUF 32768
#define SX_NETNS_DIR "/run/netns"

struct sx_nl {
    struct mnl_socket *sock;
    unsigned portid;
    unsigned seq;
    char buf[SX_NL_BUF];
};

int sx_nl_open(struct sx_nl **out)
{
    struct sx_nl *nl = calloc(1, sizeof(*nl));
    int one = 1, err;

    *out = NULL;
    if (!nl)
        return -ENOMEM;
    nl->sock = mnl_socket_open(NETLINK_ROUTE);
    if (!nl->sock) {
        err = -errno;
        goto err_free;
    }
    if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        err = -errno;
        goto err_close;
    }
    /* Extended acks carry the kernel's reason; capped acks keep the error message short. Both
     * are optional: old kernels just give the errno. */
    (void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (unsigned)time(NULL);
    *out = nl;
    return 0;

err_close:
    mnl_socket_close(nl->sock);
err_free:
    free(nl);
    return err;
}

int sx_nl_open_netns(int netns_fd, struct sx_nl **out)
{
    int saved, err, err2;

    *out = NULL;
    err = sx_nl_netns_enter(netns_fd, &saved);
    if (err)
        return err;
    err = sx_nl_open(out);
    err2 = sx_nl_netns_leave(saved);
    if (err2) {
        sx_nl_close(*out);
        *out = NULL;
        return err2;
    }
    return err;
}

void sx_nl_close(struct sx_nl *nl)
{
    if (!nl)
        return;
    if (nl->sock)
        mnl_socket_close(nl->sock);
    free(nl);
}

/* ---- request/ack plumbing ---- */

static int ext_ack_cb(const struct nlattr *attr, void *data)
{
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
        *(const char **)data = mnl_attr_get_str(attr);
    return MNL_CB_OK;
}

/* The errno of an NLMSG_ERROR (0 for a plain ack), logging the extended-ack text if any. */
static int handle_error_msg(const struct nlmsghdr *nlh, const char *what)
{
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    const char *msg = NULL;

    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
        return -EBADMSG;
    if (e->error == 0)
        return 0;
    if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        unsigned off = sizeof(*e);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
            off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
        if (mnl_nlmsg_size(off) <= nlh->nlmsg_len)
            (void)mnl_attr_parse(nlh, off, ext_ack_cb, &msg);
    }
    if (msg)
        sx_warn("%s: %s (%s)", what, strerror(-e->error), msg);
    else
        sx_debug("%s: %s", what, strerror(-e->error));
    return e->error;
}

/*
 * Send nlh (NLM_F_ACK is added) and read replies until the ack or NLMSG_DONE. Data messages go
 * to cb (may be NULL). 0 or -errno.
 */
static int nl_talk(struct sx_nl *nl, struct nlmsghdr *nlh, const char *what,
                   int (*cb)(const struct nlmsghdr *, void *), void *data)
{
    unsigned seq = ++nl->seq;
    int cb_err = 0;

    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        int len = (int)n;
        for (const struct nlmsghdr *m = (const struct nlmsghdr *)nl->buf; mnl_nlmsg_ok(m, len);
             m = mnl_nlmsg_next(m, &len)) {
            if (m->nlmsg_seq != seq || (m->nlmsg_pid && m->nlmsg_pid != nl->portid))
                continue; /* stale reply to an earlier, abandoned request */
            if (m->nlmsg_type == NLMSG_ERROR) {
                int err = handle_error_msg(m, what);
                return err ? err : cb_err;
            }
            if (m->nlmsg_type == NLMSG_DONE)
                return cb_err;
            if (cb && !cb_err)
                cb_err = cb(m, data);
        }
    }
}

static struct nlmsghdr *link_msg(struct sx_nl *nl, uint16_t type, uint16_t flags, int ifindex,
                                 struct ifinfomsg **ifm_out)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    if (ifm_out)
        *ifm_out = ifm;
    return nlh;
}

static int check_name(const char *name)
{
    if (!name || !name[0] || strlen(name) >= IFNAMSIZ)
        return -EINVAL;
    return 0;
}

/* ---- queries ---- */

struct link_parse {
    struct sx_nl_link *out;
};

static int tun_data_cb(const struct nlattr *a, void *data)
{
    struct sx_nl_link *l = data;
    switch (mnl_attr_get_type(a)) {
    case IFLA_TUN_TYPE:
        if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
            l->tun_type = mnl_attr_get_u8(a);
        break;
    case IFLA_TUN_VNET_HDR:
        if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
            l->tun_vnet_hdr = mnl_attr_get_u8(a) != 0;
        break;
    case IFLA_TUN_PI:
        if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
            l->tun_pi = mnl_attr_get_u8(a) != 0;
        break;
    case IFLA_TUN_MULTI_QUEUE:
        if (mnl_attr_validate(a, MNL_TYPE_U8) >= 0)
            l->tun_multi_queue = mnl_attr_get_u8(a) != 0;
        break;
    case IFLA_TUN_NUM_QUEUES:
        if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
            l->tun_num_queues = mnl_attr_get_u32(a);
        break;
    }
    return MNL_CB_OK;
}

static int linkinfo_cb(const struct nlattr *a, void *data)
{
    struct sx_nl_link *l = data;
    switch (mnl_attr_get_type(a)) {
    case IFLA_INFO_KIND:
        if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
            snprintf(l->kind, sizeof(l->kind), "%s", mnl_attr_get_str(a));
        break;
    case IFLA_INFO_DATA:
        /* Kernel emits KIND before DATA; only tun's data is decoded. */
        if (strcmp(l->kind, "tun") == 0)
            (void)mnl_attr_parse_nested(a, tun_data_cb, l);
        break;
    }
    return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
    struct sx_nl_link *l = data;
    switch (mnl_attr_get_type(a)) {
    case IFLA_IFNAME:
        if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
            snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(a));
        break;
    case IFLA_MTU:
        if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
            l->mtu = mnl_attr_get_u32(a);
        break;
    case IFLA_MASTER:
        if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
            l->master = (int)mnl_attr_get_u32(a);
        break;
    case IFLA_ADDRESS:
        if (mnl_attr_get_payload_len(a) == 6) {
            memcpy(l->mac, mnl_attr_get_payload(a), 6);
            l->has_mac = true;
        }
        break;
    case IFLA_LINKINFO:
        (void)mnl_attr_parse_nested(a, linkinfo_cb, l);
        break;
    }
    return MNL_CB_OK;
}

static int link_reply_cb(const struct nlmsghdr *nlh, void *data)
{
    struct sx_nl_link *l = data;
    const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

    if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)))
        return 0;
    memset(l, 0, sizeof(*l));
    l->ifindex = ifm->ifi_index;
    l->flags = ifm->ifi_flags;
    (void)mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, l);
    return 0;
}

int sx_nl_link_get(struct sx_nl *nl, int ifindex, const char *name, struct sx_nl_link *out)
{
    memset(out, 0, sizeof(*out));
    if (ifindex <= 0 && check_name(name))
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_GETLINK, 0, ifindex > 0 ? ifindex : 0, NULL);
    if (ifindex <= 0)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    int err = nl_talk(nl, nlh, "get link", link_reply_cb, out);
    if (err)
        return err;
    return out->ifindex > 0 ? 0 : -ENODEV;
}

int sx_nl_ifindex(struct sx_nl *nl, const char *name, int *ifindex)
{
    struct sx_nl_link l;
    int err = sx_nl_link_get(nl, 0, name, &l);
    *ifindex = err ? 0 : l.ifindex;
    return err;
}

/* ---- link changes ---- */

int sx_nl_bridge_ensure(struct sx_nl *nl, const char *name, int *ifindex)
{
    struct sx_nl_link l;
    int err = check_name(name);
    if (err)
        return err;

    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, NULL);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, li);
    err = nl_talk(nl, nlh, "create bridge", NULL, NULL);
    if (err && err != -EEXIST)
        return err;
    /* Created, or it was there already (possibly made concurrently): it must be a bridge. */
    err = sx_nl_link_get(nl, 0, name, &l);
    if (err)
        return err;
    if (strcmp(l.kind, "bridge") != 0) {
        sx_warn("%s exists and is not a bridge (kind '%s')", name, l.kind);
        return -EEXIST;
    }
    if (ifindex)
        *ifindex = l.ifindex;
    return 0;
}

int sx_nl_veth_add(struct sx_nl *nl, const char *name, const char *peer)
{
    if (check_name(name) || check_name(peer))
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, NULL);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    /* The peer nest starts with its own ifinfomsg, then the peer's attributes. */
    struct ifinfomsg *pifm = mnl_nlmsg_get_payload_tail(nlh);
    memset(pifm, 0, sizeof(*pifm));
    pifm->ifi_family = AF_UNSPEC;
    nlh->nlmsg_len += MNL_ALIGN(sizeof(*pifm));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
    mnl_attr_nest_end(nlh, p);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, li);
    return nl_talk(nl, nlh, "create veth", NULL, NULL);
}

int sx_nl_link_del(struct sx_nl *nl, int ifindex)
{
    if (ifindex <= 0)
        return -EINVAL;
    return nl_talk(nl, link_msg(nl, RTM_DELLINK, 0, ifindex, NULL), "delete link", NULL, NULL);
}

int sx_nl_link_set_master(struct sx_nl *nl, int ifindex, int master)
{
    if (ifindex <= 0 || master < 0)
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, NULL);
    mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    return nl_talk(nl, nlh, "set master", NULL, NULL);
}

int sx_nl_link_set_up(struct sx_nl *nl, int ifindex, bool up)
{
    struct ifinfomsg *ifm;
    if (ifindex <= 0)
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, &ifm);
    ifm->ifi_change = IFF_UP;
    ifm->ifi_flags = up ? IFF_UP : 0;
    return nl_talk(nl, nlh, up ? "set up" : "set down", NULL, NULL);
}

int sx_nl_link_set_mtu(struct sx_nl *nl, int ifindex, unsigned mtu)
{
    if (ifindex <= 0 || mtu == 0)
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, NULL);
    mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
    return nl_talk(nl, nlh, "set mtu", NULL, NULL);
}

int sx_nl_link_set_mac(struct sx_nl *nl, int ifindex, const uint8_t mac[6])
{
    if (ifindex <= 0 || !mac)
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, NULL);
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
    return nl_talk(nl, nlh, "set mac", NULL, NULL);
}

int sx_nl_link_set_netns(struct sx_nl *nl, int ifindex, int netns_fd, const char *newname)
{
    if (ifindex <= 0 || netns_fd < 0 || (newname && check_name(newname)))
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, NULL);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
    if (newname)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, newname);
    return nl_talk(nl, nlh, "move link to netns", NULL, NULL);
}

int sx_nl_addr_add_v4(struct sx_nl *nl, int ifindex, struct in_addr addr, unsigned prefix)
{
    if (ifindex <= 0 || prefix > 32)
        return -EINVAL;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = RTM_NEWADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (uint8_t)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)ifindex;
    mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
    mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
    return nl_talk(nl, nlh, "add address", NULL, NULL);
}

struct addr_query {
    int ifindex;
    bool found;
    struct in_addr addr;
    unsigned prefix;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
    struct in_addr *local = data;
    if (mnl_attr_get_type(a) == IFA_LOCAL && mnl_attr_get_payload_len(a) == sizeof(*local))
        memcpy(local, mnl_attr_get_payload(a), sizeof(*local));
    return MNL_CB_OK;
}

static int addr_reply_cb(const struct nlmsghdr *nlh, void *data)
{
    struct addr_query *q = data;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)) ||
        q->found || ifa->ifa_family != AF_INET || (int)ifa->ifa_index != q->ifindex ||
        (ifa->ifa_flags & IFA_F_SECONDARY))
        return 0;
    struct in_addr local = { 0 };
    (void)mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &local);
    if (!local.s_addr)
        return 0;
    q->found = true;
    q->addr = local;
    q->prefix = ifa->ifa_prefixlen;
    return 0;
}

int sx_nl_addr_get_v4(struct sx_nl *nl, int ifindex, struct in_addr *addr, unsigned *prefix)
{
    if (ifindex <= 0)
        return -EINVAL;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = RTM_GETADDR;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET;
    ifa->ifa_index = (unsigned)ifindex;   /* a hint: older kernels dump every address */
    struct addr_query q = { .ifindex = ifindex };
    int err = nl_talk(nl, nlh, "get addresses", addr_reply_cb, &q);
    if (err)
        return err;
    if (!q.found)
        return -EADDRNOTAVAIL;
    *addr = q.addr;
    if (prefix)
        *prefix = q.prefix;
    return 0;
}

int sx_nl_route_v4(struct sx_nl *nl, bool add, struct in_addr dst, unsigned prefix, int oif,
                   const struct in_addr *src, unsigned metric)
{
    if (oif <= 0 || prefix > 32)
        return -EINVAL;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = (uint8_t)prefix;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_LINK;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
    mnl_attr_put_u32(nlh, RTA_PRIORITY, metric);
    if (src)
        mnl_attr_put(nlh, RTA_PREFSRC, sizeof(*src), src);
    return nl_talk(nl, nlh, add ? "add route" : "delete route", NULL, NULL);
}

int sx_nl_inet_conf_set(struct sx_nl *nl, int ifindex, int conf, uint32_t value)
{
    if (ifindex <= 0 || conf <= 0)
        return -EINVAL;
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, 0, ifindex, NULL);
    struct nlattr *af = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    struct nlattr *inet = mnl_attr_nest_start(nlh, AF_INET);
    struct nlattr *cf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
    mnl_attr_put_u32(nlh, (uint16_t)conf, value);
    mnl_attr_nest_end(nlh, cf);
    mnl_attr_nest_end(nlh, inet);
    mnl_attr_nest_end(nlh, af);
    return nl_talk(nl, nlh, "set ipv4 devconf", NULL, NULL);
}

/* RTM_NEWLINK for a bridge with IFLA_BR_VLAN_FILTERING = 1 (creating it when create). */
static int bridge_vlan_filtering(struct sx_nl *nl, const char *name, int ifindex, bool create)
{
    struct nlmsghdr *nlh = link_msg(nl, RTM_NEWLINK, create ? NLM_F_CREATE | NLM_F_EXCL : 0,
                                    create ? 0 : ifindex, NULL);
    if (create)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    mnl_attr_put_u8(nlh, IFLA_BR_VLAN_FILTERING, 1);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, li);
    return nl_talk(nl, nlh, create ? "create vlan-filtering bridge" : "set vlan_filtering",
                   NULL, NULL);
}

int sx_nl_bridge_ensure_vlan(struct sx_nl *nl, const char *name, int *ifindex)
{
    struct sx_nl_link l;
    int err = check_name(name);
    if (err)
        return err;
    /* The kernel registers the bridge, then applies vlan_filtering; when it cannot (no
     * 802.1Q), it unregisters the bridge again and the whole request fails. */
    err = bridge_vlan_filtering(nl, name, 0, true);
    if (err && err != -EEXIST)
        return err;
    if ((err = sx_nl_link_get(nl, 0, name, &l)))
        return err;
    if (strcmp(l.kind, "bridge") != 0)
        return -EEXIST;
    if ((err = bridge_vlan_filtering(nl, name, l.ifindex, false)))
        return err;
    if (ifindex)
        *ifindex = l.ifindex;
    return 0;
}

int sx_nl_bridge_vlan(struct sx_nl *nl, int ifindex, bool add, uint16_t vid, bool pvid_untagged)
{
    if (ifindex <= 0 || vid == 0 || vid > 4094)
        return -EINVAL;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = add ? RTM_SETLINK : RTM_DELLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
    ifm->ifi_family = AF_BRIDGE;
    ifm->ifi_index = ifindex;
    struct nlattr *af = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    struct bridge_vlan_info vi = {
        .flags = pvid_untagged ? BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED : 0,
        .vid = vid,
    };
    mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof(vi), &vi);
    mnl_attr_nest_end(nlh, af);
    return nl_talk(nl, nlh, add ? "add bridge vlan" : "delete bridge vlan", NULL, NULL);
}

/* ---- named network namespaces ---- */

static int netns_path(const char *name, char *path, size_t len)
{
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0)
        return -EINVAL;
    if ((size_t)snprintf(path, len, SX_NETNS_DIR "/%s", name) >= len)
        return -ENAMETOOLONG;
    return 0;
}

int sx_nl_netns_enter(int netns_fd, int *saved_fd)
{
    *saved_fd = -1;
    int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0)
        return -errno;
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        int err = -errno;
        close(saved);
        return err;
    }
    *saved_fd = saved;
    return 0;
}

int sx_nl_netns_leave(int saved_fd)
{
    if (saved_fd < 0)
        return -EBADF;
    int err = setns(saved_fd, CLONE_NEWNET) < 0 ? -errno : 0;
    if (err)
        sx_err("cannot return thread to its network namespace: %s", strerror(-err));
    close(saved_fd);
    return err;
}

/* What `ip netns add` does first: /run/netns exists and is a shared mount, so namespaces
 * mounted there propagate to other mount namespaces. */
static int netns_dir_prepare(void)
{
    if (mkdir("/run", 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mkdir(SX_NETNS_DIR, 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mount("", SX_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    /* Not a mount point yet: bind it onto itself, then make it shared. */
    if (mount(SX_NETNS_DIR, SX_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
        return -errno;
    if (mount("", SX_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
        return -errno;
    return 0;
}

int sx_nl_netns_add(const char *name)
{
    char path[256];
    int err = netns_path(name, path, sizeof(path)), saved = -1, fd;

    if (err)
        return err;
    err = netns_dir_prepare();
    if (err)
        return err;
    fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    close(fd);

    saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0) {
        err = -errno;
        goto err_unlink;
    }
    /* unshare(CLONE_NEWNET) moves only this thread; the bind mount pins the namespace. */
    if (unshare(CLONE_NEWNET) < 0) {
        err = -errno;
        goto err_saved;
    }
    if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
        err = -errno;
    if (sx_nl_netns_leave(saved) < 0) {
        /* The thread is stranded in the new namespace; nothing sane is left to do but say so. */
        if (!err)
            (void)umount2(path, MNT_DETACH);
        unlink(path);
        return -EIO;
    }
    if (err)
        goto err_unlink;
    return 0;

err_saved:
    close(saved);
err_unlink:
    unlink(path);
    return err;
}

int sx_nl_netns_del(const char *name)
{
    char path[256];
    int err = netns_path(name, path, sizeof(path));
    if (err)
        return err;
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL)
        err = -errno;
    if (unlink(path) < 0 && !err)
        err = -errno;
    return err;
}

int sx_nl_netns_open(const char *name)
{
    char path[256];
    int err = netns_path(name, path, sizeof(path));
    if (err)
        return err;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
