/*
 * netdev/world.c: xl's vif keys (script, bridge with vif-openvswitch's VLAN spelling, ip,
 * gatewaydev) parsed into a world, and every bad spec refused with a message that names the
 * key and the value.
 */
#include "netdev/world.h"
#include "tests/sxtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

static char err[256];

static int parse(struct sx_world *w, const char *script, const char *bridge, const char *ip,
                 const char *gw)
{
    struct sx_world_keys k = { .script = script, .bridge = bridge, .ip = ip, .gatewaydev = gw,
                               .mac = "00:16:3e:0a:0b:0c", .domid = 300, .devid = 1 };
    return sx_world_parse(w, &k, "xenbr0", err, sizeof(err));
}

static const char *addr(struct in_addr a)
{
    static char s[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &a, s, sizeof(s));
}

static void test_no_script_is_bridge_on_default(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, NULL, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_BRIDGE);
    CU_ASSERT_STRING_EQUAL(w.bridge, "xenbr0");
    CU_ASSERT_EQUAL(w.tag, 0);
    CU_ASSERT_EQUAL(w.ntrunks, 0);
    CU_ASSERT_TRUE(w.has_guest_mac);
    CU_ASSERT_EQUAL(w.guest_mac[5], 0x0c);
}

static void test_script_path_names_the_mode(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL(parse(&w, "/etc/xen/scripts/vif-openvswitch", "ovsbr0", NULL, NULL), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_OPENVSWITCH);
    CU_ASSERT_EQUAL(parse(&w, "vif-bridge", "xenbr1", NULL, NULL), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_BRIDGE);
    CU_ASSERT_STRING_EQUAL(w.bridge, "xenbr1");
}

static void test_unknown_script_names_key_and_value(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL(parse(&w, "/etc/xen/scripts/vif-carrier-pigeon", NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "script: '/etc/xen/scripts/vif-carrier-pigeon'"));
}

static void test_bridge_vlan_access_and_trunks(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-bridge", "xenbr0.10", NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(w.bridge, "xenbr0");
    CU_ASSERT_EQUAL(w.tag, 10);
    CU_ASSERT_EQUAL(w.ntrunks, 0);
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-openvswitch", "ovsbr0:20:30", NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(w.bridge, "ovsbr0");
    CU_ASSERT_EQUAL(w.tag, 0);
    CU_ASSERT_EQUAL_FATAL(w.ntrunks, 2);
    CU_ASSERT_EQUAL(w.trunks[0], 20);
    CU_ASSERT_EQUAL(w.trunks[1], 30);
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-bridge", "xenbr0.10:20:4094", NULL, NULL), 0);
    CU_ASSERT_EQUAL(w.tag, 10);
    CU_ASSERT_EQUAL(w.ntrunks, 2);
    CU_ASSERT_EQUAL(w.trunks[1], 4094);
}

static void test_bridge_name_with_dot_is_a_name_for_vif_bridge(void)
{
    /* vif-bridge takes any bridge name: "br.lan" is no VLAN spec */
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-bridge", "br.lan", NULL, NULL), 0);
    CU_ASSERT_STRING_EQUAL(w.bridge, "br.lan");
    CU_ASSERT_EQUAL(w.tag, 0);
    /* vif-openvswitch's grammar has no such names */
    CU_ASSERT_EQUAL(parse(&w, "vif-openvswitch", "br.lan", NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bridge: 'br.lan'"));
}

static void test_bad_vlans_refused(void)
{
    struct sx_world w;
    const char *bad[] = { "xenbr0.0", "xenbr0.4095", "xenbr0.10:0", "xenbr0:20:20",
                          "xenbr0.10:10", "xenbr0.x", "xenbr0:", "xenbr0.10.20", ".10",
                          "averyveryverylongbridge.10", "xenbr0:20:x" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(parse(&w, "vif-openvswitch", bad[i], NULL, NULL), -EINVAL);
        char want[64];
        snprintf(want, sizeof(want), "bridge: '%s'", bad[i]);
        if (!strstr(err, want))
            fprintf(stderr, "%s: message '%s'\n", bad[i], err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    }
}

static void test_route_ips_and_gatewaydev(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, "/etc/xen/scripts/vif-route", NULL,
                                "192.0.2.10 198.51.100.0/24", "veth0"), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_ROUTE);
    CU_ASSERT_STRING_EQUAL(w.gatewaydev, "veth0");
    CU_ASSERT_EQUAL_FATAL(w.nips, 2);
    CU_ASSERT_STRING_EQUAL(addr(w.ips[0].addr), "192.0.2.10");
    CU_ASSERT_EQUAL(w.ips[0].len, 32);
    CU_ASSERT_STRING_EQUAL(addr(w.ips[1].addr), "198.51.100.0");
    CU_ASSERT_EQUAL(w.ips[1].len, 24);
    /* gatewaydev defaults to eth0, as vif-route's netdev */
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-route", NULL, "192.0.2.10", NULL), 0);
    CU_ASSERT_STRING_EQUAL(w.gatewaydev, "eth0");
}

static void test_route_bad_ips_refused(void)
{
    struct sx_world w;
    struct { const char *ip, *want; } bad[] = {
        { "192.0.2.300", "ip: '192.0.2.300'" },
        { "192.0.2.10/33", "ip: '192.0.2.10/33'" },
        { "192.0.2.10/24", "host bits" },
        { "2001:db8::5", "IPv4 only" },
        { "  ", "holds no address" },
        { "192.0.2.1/", "ip: '192.0.2.1/'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(parse(&w, "vif-route", NULL, bad[i].ip, "eth0"), -EINVAL);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "'%s': message '%s'\n", bad[i].ip, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
    }
    CU_ASSERT_EQUAL(parse(&w, "vif-route", NULL, NULL, "eth0"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ip: missing"));
    CU_ASSERT_EQUAL(parse(&w, "vif-route", NULL, "192.0.2.10", "bad/dev"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: 'bad/dev'"));
}

static void test_nat_router_is_last_octet_plus_127(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-nat", NULL, "203.0.113.2/24", "veth0"), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_NAT);
    CU_ASSERT_EQUAL_FATAL(w.nips, 1);
    CU_ASSERT_STRING_EQUAL(addr(w.ips[0].addr), "203.0.113.2");
    CU_ASSERT_EQUAL(w.ips[0].len, 24);
    CU_ASSERT_STRING_EQUAL(addr(w.router), "203.0.113.129");
    /* one address only; a last octet past 127 has no router address */
    CU_ASSERT_EQUAL(parse(&w, "vif-nat", NULL, "203.0.113.2 203.0.113.3", "veth0"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "one address"));
    CU_ASSERT_EQUAL(parse(&w, "vif-nat", NULL, "203.0.113.200", "veth0"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ip: '203.0.113.200'"));
}

static void test_nat_default_address_as_vif_nat(void)
{
    /* vif-nat's ip_from_dom for domid 300, devid 1: 10.1.44.2/16, router 10.1.44.129 */
    struct sx_world w;
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-nat", NULL, NULL, "veth0"), 0);
    CU_ASSERT_STRING_EQUAL(addr(w.ips[0].addr), "10.1.44.2");
    CU_ASSERT_EQUAL(w.ips[0].len, 16);
    CU_ASSERT_STRING_EQUAL(addr(w.router), "10.1.44.129");
}

static void test_describe_and_nft_table_name(void)
{
    struct sx_world w;
    char d[128];
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-openvswitch", "ovsbr0.10:20", NULL, NULL), 0);
    sx_world_describe(&w, d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "openvswitch ovsbr0 vlan 10 trunks 20");
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-nat", NULL, "203.0.113.2/24", "veth0"), 0);
    sx_world_describe(&w, d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "nat via veth0: 203.0.113.2/24 router 203.0.113.129");
    sx_world_nft_table("vif5.0", d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "splitxen_vif5_0");
}

static void test_afxdp_uplink_and_mac(void)
{
    struct sx_world w;
    char d[128];
    CU_ASSERT_EQUAL_FATAL(parse(&w, "/etc/xen/scripts/vif-afxdp", "xenbr0", NULL, "eth1"), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_AFXDP);
    CU_ASSERT_STRING_EQUAL(w.gatewaydev, "eth1");
    CU_ASSERT_TRUE(w.has_guest_mac);
    sx_world_describe(&w, d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "afxdp on eth1");
    CU_ASSERT_STRING_EQUAL(sx_world_mode_name(w.mode), "afxdp");
}

static void test_afxdp_bad_specs_refused(void)
{
    struct sx_world w;
    /* no uplink: no default (eth0 is vif-route's; an uplink is named on purpose) */
    CU_ASSERT_EQUAL(parse(&w, "vif-afxdp", NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: missing"));
    CU_ASSERT_EQUAL(parse(&w, "vif-afxdp", NULL, NULL, "eth 1"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: 'eth 1'"));
    CU_ASSERT_EQUAL(parse(&w, "vif-afxdp", NULL, NULL, "a-name-that-is-too-long"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: 'a-name-that-is-too-long'"));
    /* frames are steered by the guest's MAC: it must be there and unicast */
    struct sx_world_keys k = { .script = "vif-afxdp", .gatewaydev = "eth1", .mac = NULL };
    CU_ASSERT_EQUAL(sx_world_parse(&w, &k, "xenbr0", err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "mac: '(missing)'"));
    k.mac = "00:16:3e:zz:00:01";
    CU_ASSERT_EQUAL(sx_world_parse(&w, &k, "xenbr0", err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "mac: '00:16:3e:zz:00:01'"));
    k.mac = "01:00:5e:00:00:01";
    CU_ASSERT_EQUAL(sx_world_parse(&w, &k, "xenbr0", err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "mac: '01:00:5e:00:00:01' is a multicast address"));
}

static void test_dpdk_uplink_kinds(void)
{
    struct sx_world w;
    char d[160];
    CU_ASSERT_EQUAL_FATAL(parse(&w, "vif-dpdk", NULL, NULL, "af_packet:eth1"), 0);
    CU_ASSERT_EQUAL(w.mode, SX_WORLD_DPDK);
    CU_ASSERT_EQUAL(w.dpdk_kind, SX_DPDK_AF_PACKET);
    CU_ASSERT_STRING_EQUAL(w.uplink, "af_packet:eth1");
    sx_world_describe(&w, d, sizeof(d));
    CU_ASSERT_STRING_EQUAL(d, "dpdk switch on af_packet:eth1");
    CU_ASSERT_EQUAL(parse(&w, "/etc/xen/scripts/vif-dpdk", NULL, NULL, "tap:dtap0"), 0);
    CU_ASSERT_EQUAL(w.dpdk_kind, SX_DPDK_TAP);
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, "memif:/run/splitxen/memif.sock"), 0);
    CU_ASSERT_EQUAL(w.dpdk_kind, SX_DPDK_MEMIF);
    CU_ASSERT_STRING_EQUAL(sx_world_mode_name(w.mode), "dpdk");
}

static void test_dpdk_bad_uplinks_refused(void)
{
    struct sx_world w;
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: missing"));
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, "eth1"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: 'eth1' is not af_packet:IFACE"));
    /* an argument of the device string's own must not ride in on the name */
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, "af_packet:eth1,qpairs=4"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gatewaydev: 'af_packet:eth1,qpairs=4'"));
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, "tap:a-name-that-is-too-long"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not an interface name"));
    CU_ASSERT_EQUAL(parse(&w, "vif-dpdk", NULL, NULL, "memif:relative.sock"), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not an absolute socket path"));
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_no_script_is_bridge_on_default),
    SX_TEST(test_script_path_names_the_mode),
    SX_TEST(test_unknown_script_names_key_and_value),
    SX_TEST(test_bridge_vlan_access_and_trunks),
    SX_TEST(test_bridge_name_with_dot_is_a_name_for_vif_bridge),
    SX_TEST(test_bad_vlans_refused),
    SX_TEST(test_route_ips_and_gatewaydev),
    SX_TEST(test_route_bad_ips_refused),
    SX_TEST(test_nat_router_is_last_octet_plus_127),
    SX_TEST(test_nat_default_address_as_vif_nat),
    SX_TEST(test_describe_and_nft_table_name),
    SX_TEST(test_afxdp_uplink_and_mac),
    SX_TEST(test_afxdp_bad_specs_refused),
    SX_TEST(test_dpdk_uplink_kinds),
    SX_TEST(test_dpdk_bad_uplinks_refused),
};

SX_TEST_MAIN("netdev_world", cases, NULL, NULL)
