/*
 * netback/pkt.c: netif tx parsing against hostile request runs, and virtio-net header
 * conversion both ways on real packet bytes, with checksums checked against an independent
 * byte-wise reference.
 */
#include "netback/pkt.h"
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

/* ---- packets and an independent checksum reference ---- */

/* Byte-at-a-time RFC 1071 sum, deliberately unlike the implementation under test. */
static uint32_t ref_sum(const uint8_t *b, size_t n, uint32_t sum)
{
    for (size_t i = 0; i < n; i++)
        sum += (i & 1) ? b[i] : (uint32_t)b[i] << 8;
    return sum;
}

static uint16_t ref_fold(uint32_t s)
{
    while (s > 0xffff)
        s = (s >> 16) + (s & 0xffff);
    return (uint16_t)s;
}

struct built {
    size_t len, l3, l4, csum_off;
    int family, proto;
};

/* Pseudo-header sum (folded, not inverted) built as explicit bytes. */
static uint16_t ref_pseudo(const uint8_t *p, const struct built *b)
{
    uint8_t ph[40];
    size_t n;
    uint32_t l4len = (uint32_t)(b->len - b->l4);
    memset(ph, 0, sizeof(ph));
    if (b->family == 4) {
        memcpy(ph, p + b->l3 + 12, 8);
        ph[9] = (uint8_t)b->proto;
        ph[10] = (uint8_t)(l4len >> 8);
        ph[11] = (uint8_t)l4len;
        n = 12;
    } else {
        memcpy(ph, p + b->l3 + 8, 32);
        ph[34] = (uint8_t)(l4len >> 8);
        ph[35] = (uint8_t)l4len;
        ph[39] = (uint8_t)b->proto;
        n = 40;
    }
    return ref_fold(ref_sum(ph, n, 0));
}

/* The full, correct checksum of the L4 segment, computed from scratch. */
static uint16_t ref_l4_csum(const uint8_t *p, const struct built *b)
{
    uint8_t tmp[2048];
    memcpy(tmp, p, b->len);
    tmp[b->l4 + b->csum_off] = tmp[b->l4 + b->csum_off + 1] = 0;
    uint32_t s = ref_sum(tmp + b->l4, b->len - b->l4, ref_pseudo(p, b));
    uint16_t c = (uint16_t)~ref_fold(s);
    return c ? c : 0xffff;
}

/* Ethernet (+VLAN) / IPv4 or IPv6 (+hop-by-hop) / TCP (with 12 bytes of options) or UDP /
 * payload. The L4 checksum field holds the pseudo-header sum, as a csum_blank sender leaves. */
static struct built build(uint8_t *p, int family, int proto, size_t payload, bool vlan,
                          bool hbh)
{
    struct built b = {.family = family, .proto = proto};
    size_t o = 12;
    memset(p, 0, 2048);
    memcpy(p, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
    if (vlan) {
        memcpy(p + o, "\x81\x00\x00\x2a", 4);
        o += 4;
    }
    p[o] = family == 4 ? 0x08 : 0x86;
    p[o + 1] = family == 4 ? 0x00 : 0xdd;
    o += 2;
    b.l3 = o;
    size_t l4hl = proto == 6 ? 32 : 8;
    if (family == 4) {
        size_t tot = 20 + l4hl + payload;
        p[o] = 0x45;
        p[o + 2] = (uint8_t)(tot >> 8);
        p[o + 3] = (uint8_t)tot;
        p[o + 6] = 0x40; /* DF */
        p[o + 8] = 64;
        p[o + 9] = (uint8_t)proto;
        memcpy(p + o + 12, "\xc0\x00\x02\x01\xc0\x00\x02\x02", 8); /* 192.0.2.1 -> .2 */
        uint16_t ipc = (uint16_t)~ref_fold(ref_sum(p + o, 20, 0));
        p[o + 10] = (uint8_t)(ipc >> 8);
        p[o + 11] = (uint8_t)ipc;
        o += 20;
    } else {
        size_t plen = (hbh ? 8 : 0) + l4hl + payload;
        p[o] = 0x60;
        p[o + 4] = (uint8_t)(plen >> 8);
        p[o + 5] = (uint8_t)plen;
        p[o + 6] = hbh ? 0 : (uint8_t)proto;
        p[o + 7] = 64;
        memcpy(p + o + 8, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
        memcpy(p + o + 24, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
        o += 40;
        if (hbh) {
            p[o] = (uint8_t)proto; /* next header; length 0 = 8 bytes; PadN */
            p[o + 2] = 1;
            p[o + 3] = 4;
            o += 8;
        }
    }
    b.l4 = o;
    p[o] = 0x30; p[o + 1] = 0x39; /* 12345 */
    p[o + 2] = 0x14; p[o + 3] = 0x51; /* 5201 */
    if (proto == 6) {
        memcpy(p + o + 4, "\x01\x02\x03\x04\x00\x00\x00\x01", 8);
        p[o + 12] = 8 << 4; /* doff 8: 12 bytes of options */
        p[o + 13] = 0x18;   /* PSH|ACK */
        p[o + 14] = 0xff;
        p[o + 15] = 0xff;
        memcpy(p + o + 20, "\x01\x01\x08\x0a\x00\x00\x00\x10\x00\x00\x00\x20", 12);
        b.csum_off = 16;
    } else {
        p[o + 4] = (uint8_t)((8 + payload) >> 8);
        p[o + 5] = (uint8_t)(8 + payload);
        b.csum_off = 6;
    }
    o += l4hl;
    for (size_t i = 0; i < payload; i++)
        p[o + i] = (uint8_t)(i * 7 + 3);
    b.len = o + payload;
    uint16_t ps = ref_pseudo(p, &b);
    p[b.l4 + b.csum_off] = (uint8_t)(ps >> 8);
    p[b.l4 + b.csum_off + 1] = (uint8_t)ps;
    return b;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static struct sx_net_txpkt tx_meta(unsigned len, bool csum_blank, uint8_t gso_type, uint16_t mss)
{
    struct sx_net_txpkt t;
    memset(&t, 0, sizeof(t));
    t.total_len = len;
    t.csum_blank = csum_blank;
    t.gso.type = gso_type;
    t.gso.size = mss;
    return t;
}

static void test_csum_rfc1071_vector(void)
{
    /* RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2. */
    const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CU_ASSERT_EQUAL(sx_net_csum_fold(sx_net_csum_partial(v, sizeof(v), 0)), 0xddf2);
    CU_ASSERT_EQUAL(sx_net_csum_fold(sx_net_csum_partial(v, 7, 0)), ref_fold(ref_sum(v, 7, 0)));
}

static void test_tx_vnet_ipv4_tcp_csum_blank(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 100, false, false);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 34);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    CU_ASSERT_EQUAL(le16toh(h.hdr_len), 34 + 32);
    /* headers-only buffers are enough */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 66, &h), 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 65, &h), -EINVAL);
}

static void test_tx_vnet_ipv6_tcp_gso(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 6, 6, 1000, false, true);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV6, 400);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    CU_ASSERT_EQUAL(le16toh(h.gso_size), 400);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 14 + 40 + 8);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    /* a TCPv4 GSO claim on an IPv6 packet cannot be passed on */
    t.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), -EPROTONOSUPPORT);
}

static void test_tx_vnet_ipv4_udp_and_vlan(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 17, 333, false, false);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 34);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 6);
    /* no UDP GSO in netif: a GSO extra on UDP is refused */
    t.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
    t.gso.size = 500;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), -EPROTONOSUPPORT);
    b = build(p, 4, 6, 10, true, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 38);
}

static void test_tx_vnet_no_offload(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    memset(&h, 0x5a, sizeof(h));
    struct built b = build(p, 4, 6, 10, false, false);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, 0);
    CU_ASSERT_EQUAL(h.gso_type, 0);
    CU_ASSERT_EQUAL(h.csum_start, 0);
    CU_ASSERT_EQUAL(h.num_buffers, 0);
    t.data_validated = true;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    /* neither flag needs the headers: garbage bytes pass untouched */
    memset(p, 0xee, 64);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, 64, &h), 0);
}

static void test_tx_vnet_gso_without_csum_blank_is_fixed_up(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 1200, false, false);
    uint16_t want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = 0x12; /* a full (or stale) checksum where the pseudo-header sum belongs */
    p[b.l4 + 17] = 0x34;
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_TCPV4, 600);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
    /* and IPv6 */
    b = build(p, 6, 6, 1200, false, false);
    want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = p[b.l4 + 17] = 0;
    t = tx_meta((unsigned)b.len, false, XEN_NETIF_GSO_TYPE_TCPV6, 600);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
}

static void test_tx_vnet_hostile_headers(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 10, false, false);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    uint8_t q[2048];

    memcpy(q, p, b.len);
    q[b.l3 + 9] = 1; /* ICMP: no L4 checksum offload for it */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    memcpy(q, p, b.len);
    q[b.l3 + 6] = 0x20; /* MF: a fragment */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    memcpy(q, p, b.len);
    q[b.l3] = 0x4f; /* ihl 60 */
    q[b.l3 + 2] = 0; q[b.l3 + 3] = 30; /* total length below ihl */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l3] = 0x44; /* ihl below 20 */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l4 + 12] = 0xf0; /* doff 60 beyond the buffer end */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.l4 + 40, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[12] = 0x08; q[13] = 0x06; /* ARP */
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, 10, &h), -EINVAL);
    /* IPv6: an endless chain of extension headers, and a real fragment */
    b = build(p, 6, 6, 10, false, true);
    memcpy(q, p, b.len);
    for (size_t o = b.l3 + 40; o + 8 <= 1500; o += 8) {
        q[o] = 0;     /* next: hop-by-hop again */
        q[o + 1] = 0; /* 8 bytes */
    }
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, 1500, &h), -EINVAL);
    memcpy(q, p, b.len);
    q[b.l3 + 6] = 44; /* fragment header, offset 8 */
    q[b.l3 + 40] = 6;
    q[b.l3 + 43] = 0x08;
    CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&t, q, b.len, &h), -EPROTONOSUPPORT);
}

/* IPv6 with k 16-byte destination-options headers, then an AH (24 bytes) if ah, then TCP. */
static size_t build_v6_ext(uint8_t *p, int k, bool ah)
{
    memset(p, 0, 2048);
    p[12] = 0x86;
    p[13] = 0xdd;
    p[14] = 0x60;
    size_t o = 54;
    uint8_t *next = p + 14 + 6;
    for (int i = 0; i < k; i++) {
        *next = 60; /* destination options */
        next = p + o;
        p[o + 1] = 1;  /* (1 + 1) * 8 = 16 bytes */
        p[o + 2] = 1;  /* PadN */
        p[o + 3] = 12;
        o += 16;
    }
    if (ah) {
        *next = 51;
        next = p + o;
        p[o + 1] = 4; /* (4 + 2) * 4 = 24 bytes */
        o += 24;
    }
    *next = 6;
    p[o + 12] = 5 << 4;
    return o;
}

static void test_ipv6_extension_headers(void)
{
    uint8_t p[2048];
    struct sx_net_hdrs h;
    for (int k = 0; k <= 7; k++) {
        size_t l4 = build_v6_ext(p, k, k == 3);
        CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 20, &h), 0);
        CU_ASSERT_EQUAL(h.l4_off, l4);
        CU_ASSERT_EQUAL(h.l4_proto, 6);
        CU_ASSERT_EQUAL(h.l4_hlen, 20);
        CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 19, &h), -EINVAL);
    }
    /* more than 8 extension headers is not a packet anyone needs offloads for */
    size_t l4 = build_v6_ext(p, 9, false);
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, l4 + 20, &h), -EINVAL);
    /* an atomic fragment (offset 0, no M flag) is still a whole packet */
    memset(p, 0, 128);
    p[12] = 0x86; p[13] = 0xdd; p[14] = 0x60; p[20] = 44;
    p[54] = 17;
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, 54 + 8 + 8, &h), 0);
    CU_ASSERT_EQUAL(h.l4_off, 62);
    CU_ASSERT_EQUAL(h.l4_proto, 17);
    p[57] = 1; /* M flag */
    CU_ASSERT_EQUAL(sx_net_hdr_parse(p, 54 + 8 + 8, &h), -EPROTONOSUPPORT);
    CU_ASSERT_TRUE(h.fragment);
}

static const struct sx_net_peer_caps all_caps = {true, true, true, true};

static void test_rx_vnet_gso_and_csum(void)
{
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 6, 1400, false, false);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV4, 700);
    /* round trip: what we would write to the TAP comes back as the same netif metadata */
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info);
    CU_ASSERT_EQUAL(m.tx_flags, NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info);
    CU_ASSERT_TRUE(m.has_gso);
    CU_ASSERT_EQUAL(m.gso.type, XEN_NETIF_EXTRA_TYPE_GSO);
    CU_ASSERT_EQUAL(m.gso.flags, 0);
    CU_ASSERT_EQUAL(m.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    CU_ASSERT_EQUAL(m.gso.u.gso.size, 700);
    CU_ASSERT_FALSE(m.sw_csum);

    b = build(p, 6, 6, 1400, false, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV6, 1000);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.gso.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
    CU_ASSERT_EQUAL(m.gso.u.gso.size, 1000);
    struct sx_net_peer_caps no6 = all_caps;
    no6.gso_tcpv6 = false;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &no6, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EOPNOTSUPP);
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    h.gso_size = 0;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EINVAL);

    memset(&h, 0, sizeof(h));
    h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_data_validated);
    CU_ASSERT_EQUAL(m.tx_flags, NETTXF_data_validated);
    CU_ASSERT_FALSE(m.has_gso);
    h.flags = 0;
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), 0);
    CU_ASSERT_EQUAL(m.rx_flags, 0);
    /* a partial checksum pointing past the frame */
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.csum_start = htole16((uint16_t)b.len - 10);
    h.csum_offset = htole16(16);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &all_caps, &m), -EINVAL);
}

/* The software checksum matches the reference for each protocol, wherever it is needed. */
static void check_sw_csum(int family, int proto, size_t payload, const struct sx_net_peer_caps *caps)
{
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, family, proto, payload, false, false);
    uint16_t want = ref_l4_csum(p, &b);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, caps, &m), 0);
    CU_ASSERT_TRUE(m.sw_csum);
    CU_ASSERT_EQUAL(m.rx_flags, 0);
    CU_ASSERT_EQUAL(get16(p + b.l4 + b.csum_off), want);
    /* and the receiver's check: the sum over pseudo-header and segment is all ones */
    CU_ASSERT_EQUAL(ref_fold(ref_sum(p + b.l4, b.len - b.l4,
                                     ref_pseudo(p, &b))), 0xffff);
}

static void test_rx_sw_csum_when_frontend_lacks_offload(void)
{
    const struct sx_net_peer_caps none = {false, false, false, false};
    const struct sx_net_peer_caps v4only = {true, false, true, false};
    check_sw_csum(4, 6, 1000, &none);
    check_sw_csum(4, 6, 1001, &none); /* odd length */
    check_sw_csum(4, 17, 333, &none);
    check_sw_csum(6, 6, 777, &none);
    check_sw_csum(6, 17, 1200, &v4only); /* v4 offload does not cover IPv6 */

    /* with the offload, the partial checksum is passed on untouched */
    uint8_t p[2048];
    struct sx_net_netif_meta m;
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 4, 17, 100, false, false);
    uint16_t partial = get16(p + b.l4 + 6);
    struct sx_net_txpkt t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_NONE, 0);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &v4only, &m), 0);
    CU_ASSERT_FALSE(m.sw_csum);
    CU_ASSERT_EQUAL(m.rx_flags, NETRXF_csum_blank | NETRXF_data_validated);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 6), partial);
    /* a GSO super-packet cannot be completed in software */
    b = build(p, 4, 6, 1400, false, false);
    t = tx_meta((unsigned)b.len, true, XEN_NETIF_GSO_TYPE_TCPV4, 700);
    CU_ASSERT_EQUAL_FATAL(sx_net_tx_vnet_hdr(&t, p, b.len, &h), 0);
    struct sx_net_peer_caps gso_nocsum = {false, false, true, true};
    CU_ASSERT_EQUAL(sx_net_vnet_to_netif(&h, p, b.len, &gso_nocsum, &m), -EOPNOTSUPP);
}

/* Netfront side: rx response flags + GSO extra -> the header for a TAP write. */
static void test_netfront_rx_vnet_hdr(void)
{
    uint8_t p[2048];
    struct virtio_net_hdr_v1 h;
    struct built b = build(p, 6, 6, 1400, false, false);
    netif_tx_request_t r = gso_extra(XEN_NETIF_GSO_TYPE_TCPV6, 1200, 0);
    netif_extra_info_t e;
    memcpy(&e, &r, sizeof(e));
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank | NETRXF_data_validated |
                                       NETRXF_extra_info, &e, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    CU_ASSERT_EQUAL(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    CU_ASSERT_EQUAL(le16toh(h.gso_size), 1200);
    CU_ASSERT_EQUAL(le16toh(h.csum_start), 54);
    CU_ASSERT_EQUAL(le16toh(h.csum_offset), 16);
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_data_validated, NULL, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(0, NULL, p, b.len, &h), 0);
    CU_ASSERT_EQUAL(h.flags, 0);
    /* a backend's bad extras are refused, not passed to the kernel */
    e.u.gso.size = 0;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    e.u.gso.size = 1200;
    e.u.gso.type = 7;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    e.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV6;
    e.type = XEN_NETIF_EXTRA_TYPE_HASH;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(NETRXF_csum_blank, &e, p, b.len, &h), -EINVAL);
    /* GSO without csum_blank: the pseudo-header sum is put in place */
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    uint16_t want = get16(p + b.l4 + 16);
    p[b.l4 + 16] = p[b.l4 + 17] = 0xee;
    CU_ASSERT_EQUAL(sx_net_rx_vnet_hdr(0, &e, p, b.len, &h), 1);
    CU_ASSERT_EQUAL(get16(p + b.l4 + 16), want);
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
        CU_ASSERT_EQUAL(sx_net_tx_vnet_hdr(&pkt, p, b.len, &out), 0);
        CU_ASSERT_EQUAL(out.flags, in.flags);
        CU_ASSERT_EQUAL(out.gso_type, in.gso_type);
        CU_ASSERT_EQUAL(out.gso_size, in.gso_size);
        CU_ASSERT_EQUAL(out.csum_start, in.csum_start);
        CU_ASSERT_EQUAL(out.csum_offset, in.csum_offset);
    }
}

static void test_csum_fill_bounds(void)
{
    uint8_t p[64] = {0};
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 62, 0), 0);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 62, 1), -EINVAL);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 70, 0), -EINVAL);
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), (size_t)-1, 4), -EINVAL);
    /* all zeroes sums to 0: stored as 0xffff, never 0 */
    CU_ASSERT_EQUAL(sx_net_csum_fill(p, sizeof(p), 0, 6), 0);
    CU_ASSERT_EQUAL(get16(p + 6), 0xffff);
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
    SX_TEST(test_csum_rfc1071_vector),
    SX_TEST(test_tx_vnet_ipv4_tcp_csum_blank),
    SX_TEST(test_tx_vnet_ipv6_tcp_gso),
    SX_TEST(test_tx_vnet_ipv4_udp_and_vlan),
    SX_TEST(test_tx_vnet_no_offload),
    SX_TEST(test_tx_vnet_gso_without_csum_blank_is_fixed_up),
    SX_TEST(test_tx_vnet_hostile_headers),
    SX_TEST(test_ipv6_extension_headers),
    SX_TEST(test_rx_vnet_gso_and_csum),
    SX_TEST(test_rx_sw_csum_when_frontend_lacks_offload),
    SX_TEST(test_netfront_rx_vnet_hdr),
    SX_TEST(test_vnet_netif_round_trip),
    SX_TEST(test_csum_fill_bounds),
};

SX_TEST_MAIN("netback_pkt", cases, NULL, NULL)
