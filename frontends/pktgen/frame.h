/*
 * The frames splitxen-pktgen sends and counts, shared with bench/net's AF_PACKET tool so that
 * both ends of a path (and its raw baseline) move and count the same frames:
 *
 *   Ethernet (dst, src, 0x0800) | IPv4 198.51.100.1 -> 198.51.100.200, DF, TTL 64 |
 *   UDP from port 1024 + (n % 64) to 9 (discard), no checksum | tag (32 bits, host order) |
 *   counter (32 bits, 0) | a byte pattern up to the frame's size
 *
 * Documentation addresses; 64 source ports so that a multi-queue world side spreads them.
 */
#ifndef SPLITXEN_PKTGEN_FRAME_H
#define SPLITXEN_PKTGEN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SX_PKTGEN_HDRS (14u + 20u + 8u)   /* Ethernet, IPv4, UDP */
#define SX_PKTGEN_MIN 60u                 /* headers and tag, padded to Ethernet's minimum */
#define SX_PKTGEN_PORT 9u

/* Build frame number n of size bytes (SX_PKTGEN_MIN .. 65535) at p. */
static inline void sx_pktgen_frame(uint8_t *p, size_t size, const uint8_t *dst,
                                   const uint8_t *src, uint32_t tag, unsigned n)
{
    memset(p, 0, SX_PKTGEN_HDRS);
    memcpy(p, dst, 6);
    memcpy(p + 6, src, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14, *udp = ip + 20;
    uint16_t iplen = (uint16_t)(size - 14), udplen = (uint16_t)(iplen - 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(iplen >> 8);
    ip[3] = (uint8_t)iplen;
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, (const uint8_t[]){ 198, 51, 100, 1 }, 4);
    memcpy(ip + 16, (const uint8_t[]){ 198, 51, 100, 200 }, 4);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    uint16_t sport = (uint16_t)(1024 + n % 64);
    udp[0] = (uint8_t)(sport >> 8);
    udp[1] = (uint8_t)sport;
    udp[3] = SX_PKTGEN_PORT;
    udp[4] = (uint8_t)(udplen >> 8);
    udp[5] = (uint8_t)udplen;
    memcpy(p + SX_PKTGEN_HDRS, &tag, 4);
    memset(p + SX_PKTGEN_HDRS + 4, 0, 4);
    for (size_t i = SX_PKTGEN_HDRS + 8; i < size; i++)
        p[i] = (uint8_t)(i * 7 + 3);
}

/* One of ours: IPv4, UDP to SX_PKTGEN_PORT, this tag (p holds at least len bytes). */
static inline bool sx_pktgen_frame_ours(const uint8_t *p, size_t len, uint32_t tag)
{
    uint32_t t;
    if (len < SX_PKTGEN_HDRS + 4 || p[12] != 0x08 || p[13] != 0 || p[14 + 9] != 17 ||
        p[14 + 22] != 0 || p[14 + 23] != SX_PKTGEN_PORT)
        return false;
    memcpy(&t, p + SX_PKTGEN_HDRS, 4);
    return t == tag;
}

#endif
