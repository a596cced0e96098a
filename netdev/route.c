/*
 * netdev worlds: routed (vif-route) and NATed (vif-nat) devices. The device stays out of any
 * bridge; the driver domain routes the guest's addresses to it.
 *
 *   route  the device gets gatewaydev's primary IPv4 address as a /32 (the guest's gateway,
 *          answered by proxy ARP for any address the driver domain can route), a host route
 *          per ip= entry (src that address), proxy_arp on the device and on gatewaydev (the
 *          LAN's ARP for the guest is answered by the driver domain), forwarding on both, and
 *          strict reverse-path filtering on the device (a guest sending from an address not
 *          routed to it is dropped).
 *   nat    the device gets the router address as a /32, a host route to the guest's address,
 *          proxy_arp, forwarding and rp_filter as above, and an nftables table of its own
 *          (libnftables) that masquerades the guest out of gatewaydev and lets into the device
 *          only what belongs to connections the guest opened.
 *
 * The routes carry metric SX_ROUTE_METRIC, not Xen's: on real Xen, libxl runs vif-route on
 * the same device after us, and its `ip route add ... metric 2` must not find our route in its
 * way (it would fail, and so would the vif); ours stays for a restarted backend, whose device
 * the scripts never see.
 */
#define SX_LOG_MODULE "netdev"
#include "log.h"

#include "netdev/world_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <linux/ip.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#define SX_ROUTE_METRIC 3u

void sx_world_nft_table(const char *ifname, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "splitxen_");
    for (const char *p = ifname; *p && off + 1 < len; p++)
        buf[off++] = isalnum((unsigned char)*p) ? *p : '_';
    if (off < len)
        buf[off] = '\0';
}

/* Run an nft script; on failure err gets nft's first error line. 0 or -EIO. */
static int nft_run(const char *script, char *why, size_t whylen)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx)
        return -ENOMEM;
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, script) ? -EIO : 0;
    if (rc && why && whylen) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        size_t n = e ? strcspn(e, "\n") : 0;
        snprintf(why, whylen, "%.*s", (int)n, e ? e : "");
    }
    nft_ctx_free(ctx);
    return rc;
}

static int nat_table(struct sx_world_link *l, const struct sx_world *w, char *err, size_t errlen)
{
    char t[64], g[INET_ADDRSTRLEN], script[2048], why[256] = "";
    sx_world_nft_table(l->ifname, t, sizeof(t));
    inet_ntop(AF_INET, &w->ips[0].addr, g, sizeof(g));
    /* One batch, applied atomically: a table a previous backend left is replaced whole. */
    snprintf(script, sizeof(script),
             "add table ip %1$s\n"
             "delete table ip %1$s\n"
             "table ip %1$s {\n"
             "  chain postrouting {\n"
             "    type nat hook postrouting priority srcnat; policy accept;\n"
             "    oifname \"%2$s\" ip saddr %3$s masquerade\n"
             "  }\n"
             "  chain forward {\n"
             "    type filter hook forward priority filter; policy accept;\n"
             "    iifname \"%4$s\" ip saddr != %3$s drop\n"
             "    oifname \"%4$s\" ct state established,related accept\n"
             "    oifname \"%4$s\" drop\n"
             "  }\n"
             "}\n",
             t, w->gatewaydev, g, l->ifname);
    if (nft_run(script, why, sizeof(why)))
        return sx_world_fail(err, errlen, -EIO, "gatewaydev: '%s': nftables table %s: %s",
                             w->gatewaydev, t, why);
    return 0;
}

static int conf(struct sx_world_link *l, int ifindex, const char *dev, int which, const char *name,
                char *err, size_t errlen)
{
    int rc = sx_nl_inet_conf_set(l->nl, ifindex, which, 1);
    if (rc)
        return sx_world_fail(err, errlen, rc, "%s: setting %s: %s", dev, name, strerror(-rc));
    return 0;
}

int sx_route_attach(struct sx_world_link *l, const struct sx_world *w, char *err, size_t errlen)
{
    const char *gw = w->gatewaydev;
    int gwi, rc;
    if ((rc = sx_nl_ifindex(l->nl, gw, &gwi)))
        return sx_world_fail(err, errlen, rc, "gatewaydev: '%s': %s", gw,
                             rc == -ENODEV ? "no such interface" : strerror(-rc));
    struct in_addr self;
    if (w->mode == SX_WORLD_ROUTE) {
        if ((rc = sx_nl_addr_get_v4(l->nl, gwi, &self, NULL)))
            return sx_world_fail(err, errlen, rc, "gatewaydev: '%s': %s", gw,
                                 rc == -EADDRNOTAVAIL ? "has no IPv4 address" : strerror(-rc));
    } else {
        self = w->router;
    }
    l->routed = true;
    if ((rc = sx_nl_addr_add_v4(l->nl, l->ifindex, self, 32)))
        return sx_world_fail(err, errlen, rc, "%s: address: %s", l->ifname, strerror(-rc));
    if ((rc = sx_nl_link_set_up(l->nl, l->ifindex, true)))
        return sx_world_fail(err, errlen, rc, "%s: up: %s", l->ifname, strerror(-rc));
    if ((rc = conf(l, l->ifindex, l->ifname, IPV4_DEVCONF_PROXY_ARP, "proxy_arp", err, errlen)) ||
        (rc = conf(l, l->ifindex, l->ifname, IPV4_DEVCONF_FORWARDING, "forwarding", err, errlen)) ||
        (rc = conf(l, l->ifindex, l->ifname, IPV4_DEVCONF_RP_FILTER, "rp_filter", err, errlen)) ||
        (rc = conf(l, gwi, gw, IPV4_DEVCONF_FORWARDING, "forwarding", err, errlen)))
        return rc;
    if (w->mode == SX_WORLD_ROUTE &&
        (rc = conf(l, gwi, gw, IPV4_DEVCONF_PROXY_ARP, "proxy_arp", err, errlen)))
        return rc;
    for (unsigned i = 0; i < w->nips; i++) {
        struct sx_world_prefix p = w->ips[i];
        if (w->mode == SX_WORLD_NAT)
            p.len = 32;   /* the guest's own address; its prefix is its netmask */
        if ((rc = sx_nl_route_v4(l->nl, true, p.addr, p.len, l->ifindex, &self,
                                 SX_ROUTE_METRIC))) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &p.addr, a, sizeof(a));
            return sx_world_fail(err, errlen, rc, "ip: '%s/%u': route via %s: %s", a, p.len,
                                 l->ifname, strerror(-rc));
        }
    }
    if (w->mode == SX_WORLD_NAT && (rc = nat_table(l, w, err, errlen)))
        return rc;
    return 0;
}

void sx_route_detach(struct sx_world_link *l)
{
    const struct sx_world *w = &l->w;
    if (w->mode == SX_WORLD_NAT) {
        char t[64], script[192], why[256] = "";
        sx_world_nft_table(l->ifname, t, sizeof(t));
        /* "add" first, so that a table that is not there is not an error */
        snprintf(script, sizeof(script), "add table ip %1$s\ndelete table ip %1$s\n", t);
        if (nft_run(script, why, sizeof(why)))
            sx_warn("%s: removing nftables table %s: %s", l->ifname, t, why);
    }
    /* The device's removal takes its routes along; a device that stays (detach without close)
     * must not keep them. Already gone is fine. */
    for (unsigned i = 0; i < w->nips; i++) {
        struct sx_world_prefix p = w->ips[i];
        if (w->mode == SX_WORLD_NAT)
            p.len = 32;
        int rc = sx_nl_route_v4(l->nl, false, p.addr, p.len, l->ifindex, NULL, SX_ROUTE_METRIC);
        if (rc && rc != -ESRCH && rc != -ENODEV)
            sx_debug("%s: removing route: %s", l->ifname, strerror(-rc));
    }
    l->routed = false;
}
