/*
 * netback/pkt.c: netif tx parsing against hostile request runs, and a packet's round trip
 * through the netfront's conversion, the parser and netdev's vnet header (the vnet conversions
 * themselves: tests/netdev/vnet_test.c).
 */
#include "netback/pkt.h"
#include "tests/netdev/pktbuild.h"
#include "tests/sxtest.h"

#include <errno.h>
#include <string.h>

/* ---- tx request builders ---- */

static netif_tx_request_t req(uint16_t id, uint16_t off, uint16_t size, uint16_t flags)
{
    return (netif_tx_request_t){.gref = 1000u + id, .offset = off, .flags = flags, .id = id,
                                .size = size};
}

static netif_tx_request_t extra(uint8_t type, uint8_t flags)
{
    netif_tx_request_t r;
    netif_extra_info_t e;
    memset(&r, 0xa5, sizeof(r)); /* garbage where the extra does not reach */
    memset(&e, 0, sizeof(e));
    e.type = type;
    e.flags = flags;
    memcpy(&r, &e, sizeof(e));
    return r;
}

static netif_tx_request_t gso_extra(uint8_t gtype, uint16_t size, uint8_t flags)
{
    netif_tx_request_t r = extra(XEN_NETIF_EXTRA_TYPE_GSO, flags);
    netif_extra_info_t e;
    memcpy(&e, &r, sizeof(e));
    e.u.gso.type = gtype;
    e.u.gso.size = size;
    e.u.gso.features = 0;
    memcpy(&r, &e, sizeof(e));
    return r;
}

/* A packet of n slots: first carries total = own + (n-1)*frag, following ones frag bytes. */
static unsigned multi(netif_tx_request_t *s, unsigned n, uint16_t own, uint16_t frag)
{
    s[0] = req(0, 0, (uint16_t)(own + (n - 1) * frag), n > 1 ? NETTXF_more_data : 0);
    for (unsigned i = 1; i < n; i++)
        s[i] = req((uint16_t)i, 0, frag, i + 1 < n ? NETTXF_more_data : 0);
    return n;
}

static struct sx_net_txpkt pkt;

static void test_zero_length_first_slot_is_dropped(void)
{
    netif_tx_request_t s[1] = {req(7, 0, 0, 0)};
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 1, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_RUNT);
    CU_ASSERT_EQUAL(pkt.nr_slots, 1);
    netif_tx_response_t r[1];
    CU_ASSERT_EQUAL(sx_net_tx_responses(&pkt, NETIF_RSP_ERROR, r), 1);
    CU_ASSERT_EQUAL(r[0].id, 7);
    CU_ASSERT_EQUAL(r[0].status, NETIF_RSP_ERROR);
}

static void test_runt_first_slot_is_dropped(void)
{
    netif_tx_request_t s[2];
    multi(s, 2, 13, 100); /* 13 bytes of its own: less than an Ethernet header */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_RUNT);
    CU_ASSERT_EQUAL(pkt.nr_slots, 2);
    multi(s, 2, 14, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, true, &pkt), SX_NET_TX_OK);
}

static void test_slot_limits_follow_linux(void)
{
    netif_tx_request_t s[40];
    /* 1 + 18 following: the legacy maximum, accepted */
    multi(s, 19, 60, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 19, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt.nr_frags, 19);
    CU_ASSERT_EQUAL(pkt.nr_slots, 19);
    /* 1 + 19 and 1 + 20: dropped, every slot consumed */
    multi(s, 20, 60, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 20, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_TOO_MANY_SLOTS);
    CU_ASSERT_EQUAL(pkt.nr_slots, 20);
    multi(s, 21, 60, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 21, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.nr_slots, 21);
    /* 1 + 21: malicious, halt the vif */
    multi(s, 22, 60, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 22, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MALICIOUS_SLOTS);
    /* a chain that never ends, with far more published slots */
    multi(s, 40, 60, 100);
    s[39].flags |= NETTXF_more_data;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 40, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MALICIOUS_SLOTS);
}

static void test_slot_crossing_page_is_fatal(void)
{
    netif_tx_request_t s[3];
    multi(s, 3, 100, 200);
    s[2].offset = 3900; /* 3900 + 200 > 4096 */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_CROSS_PAGE);
    s[2].offset = 3896; /* ends exactly at the page end */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_OK);
    /* the first slot's own part crossing */
    s[0].offset = 4000;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_CROSS_PAGE);
    /* a single slot can never cover more than a page */
    s[0] = req(1, 0, 4097, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 1, true, &pkt), SX_NET_TX_FATAL);
}

static void test_unknown_extra_type_is_fatal(void)
{
    netif_tx_request_t s[3] = {req(1, 0, 100, NETTXF_extra_info),
                               extra(XEN_NETIF_EXTRA_TYPE_MAX, 0)};
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_EXTRA_TYPE);
    s[1] = extra(XEN_NETIF_EXTRA_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_EXTRA_TYPE);
    /* an unknown type deeper in the chain */
    s[1] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, XEN_NETIF_EXTRA_FLAG_MORE);
    s[2] = extra(200, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_EXTRA_TYPE);
}

static void test_extra_more_with_nothing_after(void)
{
    netif_tx_request_t s[2] = {req(1, 0, 100, NETTXF_extra_info),
                               gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, XEN_NETIF_EXTRA_FLAG_MORE)};
    /* all the frontend published: broken */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MISSING_EXTRA);
    /* only a window onto the ring: ask for more */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 2, false, &pkt), SX_NET_TX_NEED_MORE);
    /* extra_info flag with no extra slot at all */
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 1, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 1, false, &pkt), SX_NET_TX_NEED_MORE);
}

static void test_too_many_extras_is_fatal(void)
{
    netif_tx_request_t s[8] = {req(1, 0, 100, NETTXF_extra_info)};
    for (int i = 1; i < 8; i++)
        s[i] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, XEN_NETIF_EXTRA_FLAG_MORE);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 8, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_TOO_MANY_EXTRAS);
    /* four, the last ending the chain, is fine */
    s[4] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 8, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt.nr_extras, 4);
    CU_ASSERT_EQUAL(pkt.nr_slots, 5);
}

static void test_first_size_below_fragment_sum_is_dropped(void)
{
    netif_tx_request_t s[4] = {
        req(10, 0, 300, NETTXF_more_data | NETTXF_extra_info),
        gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, 0),
        req(11, 0, 200, NETTXF_more_data),
        req(12, 0, 200, 0), /* 200 + 200 > 300 */
    };
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 4, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_SLOT_OVERSIZE);
    CU_ASSERT_EQUAL(pkt.nr_slots, 4);
    netif_tx_response_t r[4];
    CU_ASSERT_EQUAL(sx_net_tx_responses(&pkt, NETIF_RSP_ERROR, r), 4);
    CU_ASSERT_EQUAL(r[0].id, 10);
    CU_ASSERT_EQUAL(r[0].status, NETIF_RSP_ERROR);
    CU_ASSERT_EQUAL(r[1].status, NETIF_RSP_NULL);
    CU_ASSERT_EQUAL(r[2].id, 11);
    CU_ASSERT_EQUAL(r[2].status, NETIF_RSP_ERROR);
    CU_ASSERT_EQUAL(r[3].id, 12);
    CU_ASSERT_EQUAL(r[3].status, NETIF_RSP_ERROR);
    /* exactly equal: no data left for the first slot, a runt */
    s[0].size = 400;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 4, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_RUNT);
}

static void test_zero_length_fragment_is_dropped(void)
{
    netif_tx_request_t s[3];
    multi(s, 3, 100, 50);
    s[1].size = 0;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_ZERO_FRAG);
    CU_ASSERT_EQUAL(pkt.nr_slots, 3);
}

static void test_good_packets_of_1_to_19_slots(void)
{
    netif_tx_request_t s[SX_NET_TX_MAX_FRAGS + 1];
    for (unsigned n = 1; n <= SX_NET_TX_MAX_FRAGS; n++) {
        multi(s, n, 1000, 3000);
        for (unsigned i = 1; i < n; i++)
            s[i].offset = (uint16_t)(i * 7); /* 7*i + 3000 stays inside the page */
        s[n] = req(99, 0, 60, 0);            /* the next packet must not be touched */
        CU_ASSERT_EQUAL_FATAL(sx_net_tx_parse(s, n + 1, true, &pkt), SX_NET_TX_OK);
        CU_ASSERT_EQUAL(pkt.nr_slots, n);
        CU_ASSERT_EQUAL(pkt.nr_frags, n);
        CU_ASSERT_EQUAL(pkt.total_len, 1000 + (n - 1) * 3000);
        CU_ASSERT_EQUAL(pkt.frags[0].len, 1000);
        CU_ASSERT_EQUAL(pkt.frags[0].gref, 1000);
        unsigned sum = 0;
        for (unsigned i = 0; i < pkt.nr_frags; i++) {
            sum += pkt.frags[i].len;
            CU_ASSERT_EQUAL(pkt.frags[i].id, i);
            CU_ASSERT_EQUAL(pkt.frags[i].gref, 1000 + i);
            CU_ASSERT_EQUAL(pkt.frags[i].offset, i * 7);
        }
        CU_ASSERT_EQUAL(sum, pkt.total_len);
        CU_ASSERT_EQUAL(pkt.gso.type, XEN_NETIF_GSO_TYPE_NONE);
        CU_ASSERT_FALSE(pkt.csum_blank);
    }
    /* the largest packet the protocol can express */
    multi(s, 16, 4095, 4096);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 16, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt.total_len, 0xffff);
}

static void test_more_data_past_window(void)
{
    netif_tx_request_t s[4];
    multi(s, 4, 100, 100);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, false, &pkt), SX_NET_TX_NEED_MORE);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MISSING_SLOTS);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 4, false, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 0, false, &pkt), SX_NET_TX_NEED_MORE);
}

/* 1 + 4 extras + 20 following slots, every following one with more_data: exactly
 * SX_NET_TX_MAX_SLOTS requests, and the packet still wants more. Returns the slot count. */
static unsigned four_extras_twenty_more(netif_tx_request_t *s)
{
    s[0] = req(0, 0, 14 + 20 * 10, NETTXF_extra_info | NETTXF_more_data);
    for (unsigned i = 1; i <= 4; i++)
        s[i] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, i < 4 ? XEN_NETIF_EXTRA_FLAG_MORE : 0);
    for (unsigned i = 5; i < 25; i++)
        s[i] = req((uint16_t)i, (uint16_t)(i * 10), 10, NETTXF_more_data);
    return 25;
}

/* The netback tx livelock: this packet held exactly SX_NET_TX_MAX_SLOTS copied requests and
 * the parser answered NEED_MORE (its slot count ran out before its fatal check), so the ring
 * loop never refilled (it refills below 25) and never halted. The 21st following slot is
 * fatal before the parser looks for it. */
static void test_tx_livelock_4_extras_20_more_at_max_slots_is_fatal(void)
{
    netif_tx_request_t s[40];
    CU_ASSERT_EQUAL(four_extras_twenty_more(s), SX_NET_TX_MAX_SLOTS);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, SX_NET_TX_MAX_SLOTS, false, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MALICIOUS_SLOTS);
    CU_ASSERT_EQUAL(pkt.nr_slots, SX_NET_TX_MAX_SLOTS);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, SX_NET_TX_MAX_SLOTS, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MALICIOUS_SLOTS);
    /* more published after it, whatever they hold: the same */
    for (unsigned i = 25; i < 40; i++)
        s[i] = req((uint16_t)i, 0, 10, i & 1 ? NETTXF_more_data : 0);
    for (unsigned avail = 26; avail <= 40; avail++) {
        CU_ASSERT_EQUAL(sx_net_tx_parse(s, avail, false, &pkt), SX_NET_TX_FATAL);
        CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_MALICIOUS_SLOTS);
        CU_ASSERT_EQUAL(sx_net_tx_parse(s, avail, true, &pkt), SX_NET_TX_FATAL);
    }
    /* the same chain ending on its 20th following slot: a complete packet of 25 slots,
     * dropped (over the legacy 18), every slot consumed */
    s[24].flags = 0;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, SX_NET_TX_MAX_SLOTS, false, &pkt), SX_NET_TX_DROP);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_TOO_MANY_SLOTS);
    CU_ASSERT_EQUAL(pkt.nr_slots, SX_NET_TX_MAX_SLOTS);
    /* below the budget the parser may still ask for more */
    s[24].flags = NETTXF_more_data;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, SX_NET_TX_MAX_SLOTS - 1, false, &pkt),
                    SX_NET_TX_NEED_MORE);
    /* a fifth extra is fatal before the parser looks for it as well */
    s[4] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, XEN_NETIF_EXTRA_FLAG_MORE);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 5, false, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_TOO_MANY_EXTRAS);
}

/* The invariant the ring loop relies on: with SX_NET_TX_MAX_SLOTS requests or more the parser
 * never answers NEED_MORE, whatever they hold. Every shape of extra chain (0..5 extras, the
 * last one ending the chain or not) and more_data run (0..30 following slots, the last one
 * ending the packet or not), at every avail from the budget to 8 over it. */
static void test_tx_never_need_more_with_max_slots(void)
{
    enum { N = SX_NET_TX_MAX_SLOTS + 16 };
    netif_tx_request_t s[N];
    unsigned need_more = 0, cases = 0;
    for (unsigned ex = 0; ex <= 5; ex++)
        for (unsigned ex_open = 0; ex_open < 2; ex_open++)
            for (unsigned nf = 0; nf <= 30; nf++)
                for (unsigned f_open = 0; f_open < 2; f_open++) {
                    unsigned i = 0;
                    s[i++] = req(0, 0, 14 + 10 * nf, (ex ? NETTXF_extra_info : 0) |
                                                         (nf || f_open ? NETTXF_more_data : 0));
                    for (unsigned e = 0; e < ex && i < N; e++)
                        s[i++] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448,
                                           e + 1 < ex || ex_open ? XEN_NETIF_EXTRA_FLAG_MORE : 0);
                    for (unsigned f = 0; f < nf && i < N; f++, i++)
                        s[i] = req((uint16_t)i, 0, 10,
                                   f + 1 < nf || f_open ? NETTXF_more_data : 0);
                    for (; i < N; i++) /* more of the same after the shape */
                        s[i] = req((uint16_t)i, 0, 10, NETTXF_more_data);
                    for (unsigned avail = SX_NET_TX_MAX_SLOTS; avail <= SX_NET_TX_MAX_SLOTS + 8;
                         avail++) {
                        need_more += sx_net_tx_parse(s, avail, false, &pkt) == SX_NET_TX_NEED_MORE;
                        cases++;
                    }
                }
    CU_ASSERT_EQUAL(need_more, 0);
    CU_ASSERT_EQUAL(cases, 6 * 2 * 31 * 2 * 9);
}

static void test_gso_extras(void)
{
    netif_tx_request_t s[3] = {
        req(1, 64, 3000, NETTXF_more_data | NETTXF_extra_info | NETTXF_csum_blank),
        gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, 0),
        req(2, 0, 1000, 0),
    };
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(pkt.gso.size, 1448);
    CU_ASSERT_TRUE(pkt.csum_blank);
    CU_ASSERT_FALSE(pkt.data_validated);
    CU_ASSERT_EQUAL(pkt.nr_slots, 3);
    CU_ASSERT_EQUAL(pkt.nr_extras, 1);
    CU_ASSERT_EQUAL(pkt.nr_frags, 2);
    CU_ASSERT_EQUAL(pkt.frags[0].len, 2000);
    CU_ASSERT_EQUAL(pkt.frags[0].offset, 64);
    CU_ASSERT_EQUAL(pkt.frags[1].id, 2);
    netif_tx_response_t r[3];
    CU_ASSERT_EQUAL(sx_net_tx_responses(&pkt, NETIF_RSP_OKAY, r), 3);
    CU_ASSERT_EQUAL(r[0].id, 1);
    CU_ASSERT_EQUAL(r[0].status, NETIF_RSP_OKAY);
    CU_ASSERT_EQUAL(r[1].status, NETIF_RSP_NULL);
    CU_ASSERT_EQUAL(r[2].id, 2);
    CU_ASSERT_EQUAL(r[2].status, NETIF_RSP_OKAY);

    s[1] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV6, 1428, 0);
    s[0].flags |= NETTXF_data_validated;
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_EQUAL(pkt.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
    CU_ASSERT_EQUAL(pkt.gso.size, 1428);
    CU_ASSERT_TRUE(pkt.data_validated);

    s[1] = gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 0, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_GSO_SIZE);
    s[1] = gso_extra(3 /* no such GSO type */, 1448, 0);
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_FATAL);
    CU_ASSERT_EQUAL(pkt.reason, SX_NET_TXR_GSO_TYPE);
}

static void test_hash_and_gso_chain(void)
{
    netif_tx_request_t s[3] = {req(1, 0, 1500, NETTXF_extra_info),
                               gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448, XEN_NETIF_EXTRA_FLAG_MORE),
                               extra(XEN_NETIF_EXTRA_TYPE_HASH, 0)};
    netif_extra_info_t e;
    memcpy(&e, &s[2], sizeof(e));
    e.u.hash.type = 3;
    e.u.hash.algorithm = 1;
    memcpy(e.u.hash.value, "\x11\x22\x33\x44", 4);
    memcpy(&s[2], &e, sizeof(e));
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_OK);
    CU_ASSERT_TRUE(pkt.has_hash);
    CU_ASSERT_EQUAL(pkt.hash.type, 3);
    CU_ASSERT_EQUAL(pkt.hash.value[3], 0x44);
    CU_ASSERT_EQUAL(pkt.gso.size, 1448);
    CU_ASSERT_EQUAL(pkt.nr_slots, 3);
    CU_ASSERT_EQUAL(pkt.nr_frags, 1);
}

static void test_mcast_request(void)
{
    netif_tx_request_t s[3] = {req(5, 0, 1, NETTXF_extra_info | NETTXF_more_data),
                               extra(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, 0), req(6, 0, 60, 0)};
    netif_extra_info_t e;
    memcpy(&e, &s[1], sizeof(e));
    memcpy(e.u.mcast.addr, "\x01\x00\x5e\x00\x00\x01", 6);
    memcpy(&s[1], &e, sizeof(e));
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_MCAST);
    CU_ASSERT_EQUAL(pkt.mcast_op, XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
    CU_ASSERT_EQUAL(memcmp(pkt.mcast_addr, "\x01\x00\x5e\x00\x00\x01", 6), 0);
    CU_ASSERT_EQUAL(pkt.nr_slots, 2); /* as Linux: more_data is not followed */
    e.type = XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
    memcpy(&s[1], &e, sizeof(e));
    CU_ASSERT_EQUAL(sx_net_tx_parse(s, 3, true, &pkt), SX_NET_TX_MCAST);
    CU_ASSERT_EQUAL(pkt.mcast_op, XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
}

static void test_rx_slot_count(void)
{
    CU_ASSERT_EQUAL(sx_net_rx_slots(60, false, false), 1);
    CU_ASSERT_EQUAL(sx_net_rx_slots(4096, false, false), 1);
    CU_ASSERT_EQUAL(sx_net_rx_slots(4097, false, false), 2);
    CU_ASSERT_EQUAL(sx_net_rx_slots(65535 + 14, true, false), 17 + 1);
    CU_ASSERT_EQUAL(sx_net_rx_slots(1514, true, true), 3);
    CU_ASSERT_EQUAL(sx_net_rx_slots(0, false, false), 1);
}

static void test_reason_names(void)
{
    CU_ASSERT_STRING_EQUAL(sx_net_tx_reason_str(SX_NET_TXR_CROSS_PAGE), "cross_page");
    CU_ASSERT_STRING_EQUAL(sx_net_tx_reason_str(SX_NET_TXR_NR), "unknown");
    for (int r = 0; r < SX_NET_TXR_NR; r++)
        CU_ASSERT_STRING_NOT_EQUAL(sx_net_tx_reason_str(r), "unknown");
}

/* TAP read on the netfront -> netif tx slots -> netback parse -> TAP write: the header that
 * comes out is the header that went in. */
static void test_vnet_netif_round_trip(void)
{
    const struct sx_net_peer_caps caps = {true, true, true, true};
    const int fam[] = {4, 6, 4}, proto[] = {6, 6, 17};
    for (int k = 0; k < 3; k++) {
        uint8_t p[2048];
        struct virtio_net_hdr_v1 in, out;
        struct sx_net_netif_meta m;
        struct built b = build(p, fam[k], proto[k], 1500, k == 2, false);
        memset(&in, 0, sizeof(in));
        in.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        in.csum_start = htole16((uint16_t)b.l4);
        in.csum_offset = htole16((uint16_t)b.csum_off);
        if (proto[k] == 6) {
            in.gso_type = fam[k] == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
            in.gso_size = htole16(500);
        }
        CU_ASSERT_EQUAL_FATAL(sx_net_vnet_to_netif(&in, p, b.len, &caps, &m), 0);
        /* the netfront's slots: first (with flags), the GSO extra, one more fragment */
        netif_tx_request_t s[3];
        unsigned n = 0;
        s[n++] = req(1, 0, (uint16_t)b.len, (uint16_t)(m.tx_flags | NETTXF_more_data));
        if (m.has_gso)
            memcpy(&s[n++], &m.gso, sizeof(m.gso));
        s[n++] = req(2, 0, 1000, 0);
        CU_ASSERT_EQUAL_FATAL(sx_net_tx_parse(s, n, true, &pkt), SX_NET_TX_OK);
        const struct sx_net_tx_meta tm = sx_net_txpkt_meta(&pkt);
        CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&tm, p, b.len, &out), 0);
        CU_ASSERT_EQUAL(out.flags, in.flags);
        CU_ASSERT_EQUAL(out.gso_type, in.gso_type);
        CU_ASSERT_EQUAL(out.gso_size, in.gso_size);
        CU_ASSERT_EQUAL(out.csum_start, in.csum_start);
        CU_ASSERT_EQUAL(out.csum_offset, in.csum_offset);
    }
}

static const struct sx_test_case cases[] = {
    SX_TEST(test_zero_length_first_slot_is_dropped),
    SX_TEST(test_runt_first_slot_is_dropped),
    SX_TEST(test_slot_limits_follow_linux),
    SX_TEST(test_slot_crossing_page_is_fatal),
    SX_TEST(test_unknown_extra_type_is_fatal),
    SX_TEST(test_extra_more_with_nothing_after),
    SX_TEST(test_too_many_extras_is_fatal),
    SX_TEST(test_first_size_below_fragment_sum_is_dropped),
    SX_TEST(test_zero_length_fragment_is_dropped),
    SX_TEST(test_good_packets_of_1_to_19_slots),
    SX_TEST(test_more_data_past_window),
    SX_TEST(test_tx_livelock_4_extras_20_more_at_max_slots_is_fatal),
    SX_TEST(test_tx_never_need_more_with_max_slots),
    SX_TEST(test_gso_extras),
    SX_TEST(test_hash_and_gso_chain),
    SX_TEST(test_mcast_request),
    SX_TEST(test_rx_slot_count),
    SX_TEST(test_reason_names),
    SX_TEST(test_vnet_netif_round_trip),
};

SX_TEST_MAIN("netback_pkt", cases, NULL, NULL)
