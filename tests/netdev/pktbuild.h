/* Test packets for the vnet and netif tests: Ethernet/IPv4 or IPv6/TCP or UDP frames built byte by
 * byte, and an independent checksum reference. */
#ifndef SPLITXEN_TEST_NETDEV_PKTBUILD_H
#define SPLITXEN_TEST_NETDEV_PKTBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Byte-at-a-time RFC 1071 sum, deliberately unlike the implementation under test. */
static inline uint32_t ref_sum(const uint8_t *b, size_t n, uint32_t sum)
{
    for (size_t i = 0; i < n; i++)
        sum += (i & 1) ? b[i] : (uint32_t)b[i] << 8;
    return sum;
}

static inline uint16_t ref_fold(uint32_t s)
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
static inline uint16_t ref_pseudo(const uint8_t *p, const struct built *b)
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
static inline uint16_t ref_l4_csum(const uint8_t *p, const struct built *b)
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
static inline struct built build(uint8_t *p, int family, int proto, size_t payload, bool vlan,
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

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

#endif
