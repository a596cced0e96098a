/*
 * netdev worlds (see world.h): the keys parsed into a world, and attach/detach. The bridge
 * modes are here; Open vSwitch in ovs.c, route and NAT in route.c.
 */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/world.h"
#include "netdev/world_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sx_world_mode_name(enum sx_world_mode m)
{
    switch (m) {
    case SX_WORLD_BRIDGE: return "bridge";
    case SX_WORLD_OPENVSWITCH: return "openvswitch";
    case SX_WORLD_ROUTE: return "route";
    case SX_WORLD_NAT: return "nat";
    case SX_WORLD_AFXDP: return "afxdp";
    case SX_WORLD_DPDK: return "dpdk";
    }
    return "?";
}

/* ---------------------------------------------------------------- parsing */

static bool valid_ifname(const char *s, size_t len)
{
    if (!len || len >= IFNAMSIZ)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]) || !isprint((unsigned char)s[i]))
            return false;
    return !(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.');
}

/* A VLAN id: 1..4094, decimal digits only. */
static int parse_vid(const char *s, size_t len, uint16_t *out)
{
    unsigned v = 0;
    if (!len || len > 4)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > SX_WORLD_VID_MAX)
        return -ERANGE;
    *out = (uint16_t)v;
    return 0;
}

/* vif-openvswitch's grammar: NAME[.TAG][:TRUNK[:TRUNK...]]. */
static int parse_bridge(struct sx_world *w, const char *spec, char *err, size_t errlen)
{
    size_t n = strcspn(spec, ".:");
    if (!valid_ifname(spec, n))
        return sx_world_fail(err, errlen, -EINVAL,
                             "bridge: '%s' does not start with an interface name", spec);
    memcpy(w->bridge, spec, n);
    w->bridge[n] = '\0';
    const char *p = spec + n;
    if (*p == '.') {
        size_t m = strcspn(p + 1, ":");
        int rc = parse_vid(p + 1, m, &w->tag);
        if (rc)
            return sx_world_fail(err, errlen, -EINVAL, "bridge: '%s': VLAN '%.*s' is not in 1..%u",
                                 spec, (int)m, p + 1, SX_WORLD_VID_MAX);
        p += 1 + m;
    }
    while (*p == ':') {
        size_t m = strcspn(p + 1, ":");
        uint16_t vid;
        if (parse_vid(p + 1, m, &vid))
            return sx_world_fail(err, errlen, -EINVAL,
                                 "bridge: '%s': trunk VLAN '%.*s' is not in 1..%u", spec, (int)m,
                                 p + 1, SX_WORLD_VID_MAX);
        if (w->ntrunks == SX_WORLD_MAX_TRUNKS)
            return sx_world_fail(err, errlen, -EINVAL, "bridge: '%s': more than %u trunk VLANs",
                                 spec, SX_WORLD_MAX_TRUNKS);
        for (unsigned i = 0; i < w->ntrunks; i++)
            if (w->trunks[i] == vid)
                return sx_world_fail(err, errlen, -EINVAL, "bridge: '%s': VLAN %u twice", spec,
                                     vid);
        if (vid == w->tag)
            return sx_world_fail(err, errlen, -EINVAL,
                                 "bridge: '%s': VLAN %u is both the port's tag and a trunk",
                                 spec, vid);
        w->trunks[w->ntrunks++] = vid;
        p += 1 + m;
    }
    if (*p)
        return sx_world_fail(err, errlen, -EINVAL,
                             "bridge: '%s' is not NAME[.VLAN][:VLAN[:VLAN...]]", spec);
    return 0;
}

/* One "a.b.c.d[/len]" of ip=. */
static int parse_prefix(const char *tok, struct sx_world_prefix *out, bool *had_len)
{
    char buf[INET_ADDRSTRLEN + 4];
    if (strlen(tok) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, tok);
    char *slash = strchr(buf, '/');
    unsigned len = 32;
    *had_len = slash != NULL;
    if (slash) {
        *slash = '\0';
        char *end;
        const char *l = slash + 1;
        if (!isdigit((unsigned char)*l))
            return -EINVAL;
        unsigned long v = strtoul(l, &end, 10);
        if (*end || v > 32)
            return -EINVAL;
        len = (unsigned)v;
    }
    if (inet_pton(AF_INET, buf, &out->addr) != 1)
        return -EINVAL;
    out->len = (uint8_t)len;
    return 0;
}

static uint32_t mask_of(unsigned len)
{
    return len ? htonl(0xffffffffu << (32 - len)) : 0;
}

static int parse_ips(struct sx_world *w, const char *ip, char *err, size_t errlen)
{
    char *copy = strdup(ip), *save = NULL;
    int rc = 0;
    if (!copy)
        return -ENOMEM;
    for (char *t = strtok_r(copy, " \t,", &save); t && !rc; t = strtok_r(NULL, " \t,", &save)) {
        struct sx_world_prefix p;
        bool had_len;
        if (strchr(t, ':'))
            rc = sx_world_fail(err, errlen, -EINVAL,
                               "ip: '%s': vif-%s carries IPv4 only", t,
                               w->mode == SX_WORLD_NAT ? "nat" : "route");
        else if (parse_prefix(t, &p, &had_len) < 0)
            rc = sx_world_fail(err, errlen, -EINVAL,
                               "ip: '%s' is not an IPv4 address or address/length", t);
        else if (w->mode == SX_WORLD_ROUTE && (p.addr.s_addr & ~mask_of(p.len)))
            rc = sx_world_fail(err, errlen, -EINVAL,
                               "ip: '%s' has host bits set beyond its /%u (a route needs the "
                               "network)", t, p.len);
        else if (w->nips == (w->mode == SX_WORLD_NAT ? 1u : SX_WORLD_MAX_IPS))
            rc = w->mode == SX_WORLD_NAT
                     ? sx_world_fail(err, errlen, -EINVAL,
                                     "ip: '%s': vif-nat gives a guest one address", ip)
                     : sx_world_fail(err, errlen, -EINVAL, "ip: '%s': more than %u addresses",
                                     ip, SX_WORLD_MAX_IPS);
        else
            w->ips[w->nips++] = p;
    }
    free(copy);
    if (!rc && !w->nips)
        rc = sx_world_fail(err, errlen, -EINVAL, "ip: '%s' holds no address", ip);
    return rc;
}

/* vif-nat's router address: the guest's last octet + 127 (its routing_ip). */
static int nat_router(struct sx_world *w, char *err, size_t errlen)
{
    uint32_t a = ntohl(w->ips[0].addr.s_addr);
    unsigned last = (a & 0xffu) + 127u;
    char s[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &w->ips[0].addr, s, sizeof(s));
    if (last > 254u || (a & 0xffu) == 0)
        return sx_world_fail(err, errlen, -EINVAL,
                             "ip: '%s': vif-nat's router address (last octet + 127) would be "
                             "%u: give the guest a last octet in 1..127", s, last);
    w->router.s_addr = htonl((a & ~0xffu) | last);
    return 0;
}

/* vif-dpdk's gatewaydev=KIND:ARG. ARG goes into a DPDK device string: no ',' or '=' (they
 * would add arguments of their own). */
static int parse_dpdk_uplink(struct sx_world *w, const char *up, char *err, size_t errlen)
{
    if (!up || !*up)
        return sx_world_fail(err, errlen, -EINVAL,
                             "gatewaydev: missing: vif-dpdk names its uplink there "
                             "(af_packet:IFACE, tap:NAME or memif:/PATH)");
    static const struct { const char *p; enum sx_world_dpdk_kind k; } kinds[] = {
        { "af_packet:", SX_DPDK_AF_PACKET }, { "tap:", SX_DPDK_TAP }, { "memif:", SX_DPDK_MEMIF },
    };
    const char *arg = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !arg; i++)
        if (!strncmp(up, kinds[i].p, strlen(kinds[i].p))) {
            w->dpdk_kind = kinds[i].k;
            arg = up + strlen(kinds[i].p);
        }
    if (!arg)
        return sx_world_fail(err, errlen, -EINVAL,
                             "gatewaydev: '%s' is not af_packet:IFACE, tap:NAME or memif:/PATH",
                             up);
    if (strlen(up) >= sizeof(w->uplink) || strpbrk(arg, ",= \t"))
        return sx_world_fail(err, errlen, -EINVAL,
                             "gatewaydev: '%s': the uplink's name is too long or holds ',', "
                             "'=' or a blank", up);
    if (w->dpdk_kind == SX_DPDK_MEMIF ? arg[0] != '/'
                                      : !valid_ifname(arg, strlen(arg)))
        return sx_world_fail(err, errlen, -EINVAL, "gatewaydev: '%s': '%s' is not %s", up, arg,
                             w->dpdk_kind == SX_DPDK_MEMIF ? "an absolute socket path"
                                                           : "an interface name");
    snprintf(w->uplink, sizeof(w->uplink), "%s", up);
    return 0;
}

static int parse_mode(struct sx_world *w, const char *script, char *err, size_t errlen)
{
    if (!script || !*script) {
        w->mode = SX_WORLD_BRIDGE;
        return 0;
    }
    const char *base = strrchr(script, '/');
    base = base ? base + 1 : script;
    static const struct { const char *name; enum sx_world_mode mode; } names[] = {
        { "vif-bridge", SX_WORLD_BRIDGE },
        { "vif-openvswitch", SX_WORLD_OPENVSWITCH },
        { "vif-route", SX_WORLD_ROUTE },
        { "vif-nat", SX_WORLD_NAT },
        { "vif-afxdp", SX_WORLD_AFXDP },
        { "vif-dpdk", SX_WORLD_DPDK },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(base, names[i].name)) {
            w->mode = names[i].mode;
            return 0;
        }
    return sx_world_fail(err, errlen, -EINVAL,
                         "script: '%s' is not vif-bridge, vif-openvswitch, vif-route, vif-nat, "
                         "vif-afxdp or vif-dpdk",
                         script);
}

static void parse_mac(struct sx_world *w, const char *mac)
{
    unsigned b[6];
    char tail;
    if (mac && sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                      &b[5], &tail) == 6) {
        for (int i = 0; i < 6; i++)
            w->guest_mac[i] = (uint8_t)b[i];
        w->has_guest_mac = true;
    }
}

int sx_world_parse(struct sx_world *w, const struct sx_world_keys *k, const char *default_bridge,
                   char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    if (err && errlen)
        err[0] = '\0';
    int rc = parse_mode(w, k->script, err, errlen);
    if (rc)
        return rc;
    parse_mac(w, k->mac);
    switch (w->mode) {
    case SX_WORLD_BRIDGE:
    case SX_WORLD_OPENVSWITCH: {
        const char *b = k->bridge && *k->bridge ? k->bridge : default_bridge;
        if (!b || !*b)
            return sx_world_fail(err, errlen, -EINVAL, "bridge: missing");
        /* vif-bridge takes any bridge name; a name with a dot that is not a VLAN suffix
         * (br.lan) is a name. */
        if (w->mode == SX_WORLD_BRIDGE && !strchr(b, ':')) {
            const char *dot = strchr(b, '.');
            uint16_t vid;
            if (dot && parse_vid(dot + 1, strlen(dot + 1), &vid) == -EINVAL &&
                valid_ifname(b, strlen(b))) {
                snprintf(w->bridge, sizeof(w->bridge), "%s", b);
                return 0;
            }
        }
        return parse_bridge(w, b, err, errlen);
    }
    case SX_WORLD_ROUTE:
    case SX_WORLD_NAT: {
        const char *gw = k->gatewaydev && *k->gatewaydev ? k->gatewaydev : "eth0";
        if (!valid_ifname(gw, strlen(gw)))
            return sx_world_fail(err, errlen, -EINVAL,
                                 "gatewaydev: '%s' is not an interface name", gw);
        snprintf(w->gatewaydev, sizeof(w->gatewaydev), "%s", gw);
        if (k->ip && *k->ip) {
            if ((rc = parse_ips(w, k->ip, err, errlen)))
                return rc;
        } else if (w->mode == SX_WORLD_ROUTE) {
            return sx_world_fail(err, errlen, -EINVAL,
                                 "ip: missing: vif-route routes the guest's ip= addresses");
        } else {
            /* vif-nat's ip_from_dom: 10.<domid / 256>.<domid % 256>.<devid + 1>/16 */
            if (k->devid + 1 > 127)
                return sx_world_fail(err, errlen, -EINVAL,
                                     "ip: missing, and vif-nat's default for devid %u has no "
                                     "router address", k->devid);
            w->ips[0].addr.s_addr = htonl(10u << 24 | (k->domid / 256u % 256u) << 16 |
                                          (k->domid % 256u) << 8 | (k->devid + 1));
            w->ips[0].len = 16;
            w->nips = 1;
        }
        return w->mode == SX_WORLD_NAT ? nat_router(w, err, errlen) : 0;
    }
    case SX_WORLD_AFXDP: {
        const char *up = k->gatewaydev;
        if (!up || !*up)
            return sx_world_fail(err, errlen, -EINVAL,
                                 "gatewaydev: missing: vif-afxdp names its uplink there");
        if (!valid_ifname(up, strlen(up)))
            return sx_world_fail(err, errlen, -EINVAL,
                                 "gatewaydev: '%s' is not an interface name", up);
        snprintf(w->gatewaydev, sizeof(w->gatewaydev), "%s", up);
        if (!w->has_guest_mac)
            return sx_world_fail(err, errlen, -EINVAL,
                                 "mac: '%s': vif-afxdp steers frames by the guest's MAC",
                                 k->mac ? k->mac : "(missing)");
        if (w->guest_mac[0] & 1)
            return sx_world_fail(err, errlen, -EINVAL,
                                 "mac: '%s' is a multicast address", k->mac);
        return 0;
    }
    case SX_WORLD_DPDK:
        return parse_dpdk_uplink(w, k->gatewaydev, err, errlen);
    }
    return -EINVAL;
}

void sx_world_describe(const struct sx_world *w, char *buf, size_t len)
{
    size_t off = 0;
#define PUT(...)                                                                           \
    do {                                                                                   \
        int n_ = snprintf(buf + off, off < len ? len - off : 0, __VA_ARGS__);              \
        if (n_ > 0)                                                                        \
            off += (size_t)n_;                                                             \
    } while (0)
    if (!len)
        return;
    buf[0] = '\0';
    char a[INET_ADDRSTRLEN];
    switch (w->mode) {
    case SX_WORLD_BRIDGE:
    case SX_WORLD_OPENVSWITCH:
        PUT("%s %s", w->mode == SX_WORLD_BRIDGE ? "bridge" : "openvswitch", w->bridge);
        if (w->tag)
            PUT(" vlan %u", w->tag);
        for (unsigned i = 0; i < w->ntrunks; i++)
            PUT("%s%u", i ? "," : " trunks ", w->trunks[i]);
        break;
    case SX_WORLD_ROUTE:
    case SX_WORLD_NAT:
        PUT("%s via %s:", sx_world_mode_name(w->mode), w->gatewaydev);
        for (unsigned i = 0; i < w->nips; i++) {
            inet_ntop(AF_INET, &w->ips[i].addr, a, sizeof(a));
            PUT(" %s/%u", a, w->ips[i].len);
        }
        if (w->mode == SX_WORLD_NAT) {
            inet_ntop(AF_INET, &w->router, a, sizeof(a));
            PUT(" router %s", a);
        }
        break;
    case SX_WORLD_AFXDP:
        PUT("afxdp on %s", w->gatewaydev);
        break;
    case SX_WORLD_DPDK:
        PUT("dpdk switch on %s", w->uplink);
        break;
    }
#undef PUT
}

/* ---------------------------------------------------------------- attach / detach */

/* The VLANs of a Linux bridge port: only the spec's (the default PVID 1 goes). */
static int linux_vlans(struct sx_world_link *l, const struct sx_world *w)
{
    int rc = sx_nl_bridge_vlan(l->nl, l->ifindex, false, 1, false);
    if (rc && rc != -ENOENT && rc != -EINVAL)
        return rc;
    if (w->tag && (rc = sx_nl_bridge_vlan(l->nl, l->ifindex, true, w->tag, true)))
        return rc;
    for (unsigned i = 0; i < w->ntrunks; i++)
        if ((rc = sx_nl_bridge_vlan(l->nl, l->ifindex, true, w->trunks[i], false)))
            return rc;
    return 0;
}

static int bridge_attach(struct sx_world_link *l, const struct sx_world *w, char *err,
                         size_t errlen)
{
    bool vlans = w->tag || w->ntrunks;
    const char *spec = l->bridge_spec;
    struct sx_nl_link bl;
    int rc = sx_nl_link_get(l->nl, 0, w->bridge, &bl);
    if (rc == 0 && strcmp(bl.kind, "bridge") != 0) {
        /* Not a Linux bridge: an Open vSwitch bridge of that name, or a mistake. */
        rc = sx_ovs_bridge_exists(w->bridge, err, errlen);
        if (rc == 1)
            return sx_ovs_attach(l, w, err, errlen);
        if (rc == 0)
            return sx_world_fail(err, errlen, -EEXIST,
                                 "bridge: '%s': %s is neither a Linux nor an Open vSwitch bridge",
                                 spec, w->bridge);
        return rc;
    }
    if (rc && rc != -ENODEV)
        return sx_world_fail(err, errlen, rc, "bridge: '%s': looking %s up: %s", spec, w->bridge,
                             strerror(-rc));
    int br;
    if (!vlans) {
        rc = sx_nl_bridge_ensure(l->nl, w->bridge, &br);
    } else {
        rc = sx_nl_bridge_ensure_vlan(l->nl, w->bridge, &br);
        if (rc == -EOPNOTSUPP || rc == -EINVAL) {
            /* No 802.1Q in this kernel: the VLANs go through Open vSwitch. */
            if (sx_ovs_bridge_exists(w->bridge, NULL, 0) == 1)
                return sx_ovs_attach(l, w, err, errlen);
            return sx_world_fail(err, errlen, -EOPNOTSUPP,
                                 "bridge: '%s': this kernel's bridges cannot filter VLANs (no "
                                 "802.1Q) and Open vSwitch has no bridge %s", spec, w->bridge);
        }
    }
    if (rc)
        return sx_world_fail(err, errlen, rc, "bridge: '%s': %s", spec, strerror(-rc));
    if ((rc = sx_nl_link_set_up(l->nl, br, true)) ||
        (rc = sx_nl_link_set_master(l->nl, l->ifindex, br)))
        return sx_world_fail(err, errlen, rc, "bridge: '%s': joining %s: %s", spec, w->bridge,
                             strerror(-rc));
    if (vlans && (rc = linux_vlans(l, w)))
        return sx_world_fail(err, errlen, rc, "bridge: '%s': port VLANs: %s", spec,
                             strerror(-rc));
    return 0;
}

int sx_world_attach(struct sx_world_link **out, const struct sx_world *w, const char *ifname,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    struct sx_world_link *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->w = *w;
    snprintf(l->ifname, sizeof(l->ifname), "%s", ifname);
    /* The bridge key as it was spelled, for messages */
    if (w->mode == SX_WORLD_BRIDGE || w->mode == SX_WORLD_OPENVSWITCH) {
        size_t off = (size_t)snprintf(l->bridge_spec, sizeof(l->bridge_spec), "%s", w->bridge);
        if (w->tag && off < sizeof(l->bridge_spec))
            off += (size_t)snprintf(l->bridge_spec + off, sizeof(l->bridge_spec) - off, ".%u",
                                    w->tag);
        for (unsigned i = 0; i < w->ntrunks && off < sizeof(l->bridge_spec); i++)
            off += (size_t)snprintf(l->bridge_spec + off, sizeof(l->bridge_spec) - off, ":%u",
                                    w->trunks[i]);
    }
    int rc = sx_nl_open(&l->nl);
    if (rc) {
        free(l);
        return sx_world_fail(err, errlen, rc, "netlink: %s", strerror(-rc));
    }
    if ((rc = sx_nl_ifindex(l->nl, ifname, &l->ifindex))) {
        rc = sx_world_fail(err, errlen, rc, "%s: %s", ifname, strerror(-rc));
        goto fail;
    }
    switch (w->mode) {
    case SX_WORLD_BRIDGE: rc = bridge_attach(l, w, err, errlen); break;
    case SX_WORLD_OPENVSWITCH: rc = sx_ovs_attach(l, w, err, errlen); break;
    case SX_WORLD_ROUTE:
    case SX_WORLD_NAT: rc = sx_route_attach(l, w, err, errlen); break;
    default:
        rc = sx_world_fail(err, errlen, -EINVAL, "script: vif-%s has no device to attach",
                           sx_world_mode_name(w->mode));
        break;
    }
    if (rc)
        goto fail;
    *out = l;
    return 0;
fail:
    sx_world_detach(l);
    return rc;
}

void sx_world_detach(struct sx_world_link *l)
{
    if (!l)
        return;
    if (l->ovs_port)
        sx_ovs_detach(l);
    if (l->routed)
        sx_route_detach(l);
    sx_nl_close(l->nl);
    free(l);
}
