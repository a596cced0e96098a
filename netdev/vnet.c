/* Header parsing, checksums and virtio-net header conversion; see vnet.h. */
#include "netdev/vnet.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <string.h>

#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

/* ---- header parsing ---- */

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int sx_net_hdr_parse(const uint8_t *buf, size_t len, struct sx_net_hdrs *h)
{
    size_t off = 12;
    uint8_t proto;

    memset(h, 0, sizeof(*h));
    if (len < SX_NET_ETH_HLEN)
        return -EINVAL;
    uint16_t et = rd16(buf + off);
    off += 2;
    for (int tags = 0; tags < 2 && (et == ETH_P_8021Q || et == ETH_P_8021AD); tags++) {
        if (off + 4 > len)
            return -EINVAL;
        et = rd16(buf + off + 2);
        off += 4;
    }
    h->ethertype = et;
    h->l3_off = (uint16_t)off;

    if (et == ETH_P_IP) {
        if (off + 20 > len || (buf[off] >> 4) != 4)
            return -EINVAL;
        size_t ihl = (size_t)(buf[off] & 0xf) * 4;
        if (ihl < 20 || off + ihl > len || rd16(buf + off + 2) < ihl)
            return -EINVAL;
        if (rd16(buf + off + 6) & 0x3fff) { /* MF or a fragment offset */
            h->fragment = true;
            return -EPROTONOSUPPORT;
        }
        proto = buf[off + 9];
        off += ihl;
    } else if (et == ETH_P_IPV6) {
        if (off + 40 > len || (buf[off] >> 4) != 6)
            return -EINVAL;
        proto = buf[off + 6];
        off += 40;
        for (int n = 0;; n++) {
            size_t hl;
            if (proto != IPPROTO_HOPOPTS && proto != IPPROTO_ROUTING && proto != IPPROTO_DSTOPTS &&
                proto != IPPROTO_FRAGMENT && proto != IPPROTO_AH)
                break;
            if (n == 8 || off + 8 > len)
                return -EINVAL;
            if (proto == IPPROTO_FRAGMENT) {
                if (rd16(buf + off + 2) & 0xfff9) { /* offset or M flag */
                    h->fragment = true;
                    return -EPROTONOSUPPORT;
                }
                hl = 8;
            } else if (proto == IPPROTO_AH) {
                hl = ((size_t)buf[off + 1] + 2) * 4;
            } else {
                hl = ((size_t)buf[off + 1] + 1) * 8;
            }
            proto = buf[off];
            off += hl;
        }
        if (off > len)
            return -EINVAL;
    } else {
        return -EPROTONOSUPPORT;
    }

    h->l4_proto = proto;
    h->l4_off = (uint16_t)off;
    if (proto == IPPROTO_TCP) {
        if (off + 20 > len)
            return -EINVAL;
        size_t doff = (size_t)(buf[off + 12] >> 4) * 4;
        if (doff < 20 || off + doff > len)
            return -EINVAL;
        h->l4_hlen = (uint16_t)doff;
    } else if (proto == IPPROTO_UDP) {
        if (off + 8 > len)
            return -EINVAL;
        h->l4_hlen = 8;
    } else {
        return -EPROTONOSUPPORT;
    }
    return 0;
}

/* ---- checksums ---- */

uint32_t sx_net_csum_partial(const uint8_t *buf, size_t len, uint32_t sum)
{
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        s += rd16(buf + i);
    if (i < len)
        s += (uint32_t)buf[i] << 8;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t sx_net_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* Pseudo-header sum for an L4 segment of l4_len bytes (the uninverted fold, what a partial
 * checksum field holds). */
static uint16_t pseudo_sum(const uint8_t *buf, const struct sx_net_hdrs *h, uint32_t l4_len)
{
    uint32_t s;
    if (h->ethertype == ETH_P_IP) {
        s = sx_net_csum_partial(buf + h->l3_off + 12, 8, 0); /* saddr, daddr */
    } else {
        s = sx_net_csum_partial(buf + h->l3_off + 8, 32, 0);
    }
    s += h->l4_proto;
    s += l4_len >> 16;
    s += l4_len & 0xffff;
    return sx_net_csum_fold(s);
}

int sx_net_csum_fill(uint8_t *buf, size_t len, size_t csum_start, size_t csum_offset)
{
    if (csum_start > len || csum_offset > len || csum_start + csum_offset + 2 > len)
        return -EINVAL;
    uint16_t c = (uint16_t)~sx_net_csum_fold(sx_net_csum_partial(buf + csum_start,
                                                                len - csum_start, 0));
    wr16(buf + csum_start + csum_offset, c ? c : 0xffff);
    return 0;
}

int sx_net_frame_plain(const uint8_t *buf, size_t len, uint8_t *dst, size_t room)
{
    const size_t hl = sizeof(struct virtio_net_hdr_v1);
    if (len < hl + SX_NET_ETH_HLEN || len - hl > room)
        return -EINVAL;
    struct virtio_net_hdr_v1 h;
    memcpy(&h, buf, hl);
    if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
        return -EOPNOTSUPP;
    size_t n = len - hl;
    memcpy(dst, buf + hl, n);
    if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
        sx_net_csum_fill(dst, n, le16toh(h.csum_start), le16toh(h.csum_offset)) < 0)
        return -EINVAL;
    return (int)n;
}

/* ---- netif -> virtio-net header ---- */

static int netif_to_vnet(bool csum_blank, bool data_validated, uint8_t gso_type,
                         uint16_t gso_size, unsigned total_len, uint8_t *buf, size_t len,
                         struct virtio_net_hdr_v1 *hdr)
{
    struct sx_net_hdrs h;
    int err, ret = 0;

    memset(hdr, 0, sizeof(*hdr));
    if (!csum_blank && gso_type == XEN_NETIF_GSO_TYPE_NONE) {
        if (data_validated)
            hdr->flags = VIRTIO_NET_HDR_F_DATA_VALID;
        return 0;
    }
    err = sx_net_hdr_parse(buf, len, &h);
    if (err)
        return err;
    if (gso_type != XEN_NETIF_GSO_TYPE_NONE) {
        bool v4 = gso_type == XEN_NETIF_GSO_TYPE_TCPV4;
        if (h.l4_proto != IPPROTO_TCP || h.ethertype != (v4 ? ETH_P_IP : ETH_P_IPV6))
            return -EPROTONOSUPPORT;
        hdr->gso_type = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
        hdr->gso_size = htole16(gso_size);
        if (!csum_blank) {
            /* A GSO packet must be checksum-partial; some peers forget csum_blank. Put the
             * pseudo-header sum in place, as Linux's checksum_setup(recalculate). */
            if (total_len < h.l4_off)
                return -EINVAL;
            wr16(buf + h.l4_off + TCP_CSUM_OFF, pseudo_sum(buf, &h, total_len - h.l4_off));
            ret = 1;
        }
    }
    hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr->csum_start = htole16(h.l4_off);
    hdr->csum_offset = htole16(h.l4_proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
    hdr->hdr_len = htole16((uint16_t)(h.l4_off + h.l4_hlen));
    return ret;
}

int sx_net_tx_vnet_hdr(const struct sx_net_tx_meta *m, uint8_t *buf, size_t len,
                       struct virtio_net_hdr_v1 *hdr)
{
    return netif_to_vnet(m->csum_blank, m->data_validated, m->gso_type, m->gso_size,
                         m->total_len, buf, len, hdr);
}

int sx_net_rx_vnet_hdr(uint16_t rx_flags, const netif_extra_info_t *gso, uint8_t *buf,
                       size_t len, struct virtio_net_hdr_v1 *hdr)
{
    uint8_t gtype = XEN_NETIF_GSO_TYPE_NONE;
    uint16_t gsize = 0;

    if (gso) {
        if (gso->type != XEN_NETIF_EXTRA_TYPE_GSO || gso->u.gso.size == 0 ||
            (gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 &&
             gso->u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)) {
            memset(hdr, 0, sizeof(*hdr));
            return -EINVAL;
        }
        gtype = gso->u.gso.type;
        gsize = gso->u.gso.size;
    }
    return netif_to_vnet((rx_flags & NETRXF_csum_blank) != 0,
                         (rx_flags & NETRXF_data_validated) != 0, gtype, gsize,
                         len > UINT16_MAX ? UINT16_MAX : (unsigned)len, buf, len, hdr);
}

/* ---- virtio-net header -> netif ---- */

int sx_net_vnet_to_netif(const struct virtio_net_hdr_v1 *hdr, uint8_t *buf, size_t len,
                         const struct sx_net_peer_caps *caps, struct sx_net_netif_meta *meta)
{
    uint8_t gso = hdr->gso_type;
    uint16_t gso_size = le16toh(hdr->gso_size);
    uint16_t cstart = le16toh(hdr->csum_start), coff = le16toh(hdr->csum_offset);

    memset(meta, 0, sizeof(*meta));
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && caps->gso_tcpv4)
            meta->gso.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
        else if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && caps->gso_tcpv6)
            meta->gso.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV6;
        else
            return -EOPNOTSUPP; /* UDP, ECN, or a type this peer did not ask for */
        if (gso_size == 0 || !(hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
            return -EINVAL;
        meta->has_gso = true;
        meta->gso.type = XEN_NETIF_EXTRA_TYPE_GSO;
        meta->gso.flags = 0;
        meta->gso.u.gso.size = gso_size;
        meta->gso.u.gso.pad = 0;
        meta->gso.u.gso.features = 0;
    }

    if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if ((size_t)cstart + coff + 2 > len)
            return -EINVAL;
        struct sx_net_hdrs h;
        /* Only the family matters here; the parser records the ethertype before it can fail
         * on anything deeper. */
        (void)sx_net_hdr_parse(buf, len, &h);
        bool offload = h.ethertype == ETH_P_IPV6 ? caps->csum_v6 : caps->csum;
        if (offload) {
            meta->rx_flags = NETRXF_csum_blank | NETRXF_data_validated;
            meta->tx_flags = NETTXF_csum_blank | NETTXF_data_validated;
        } else {
            if (meta->has_gso)
                return -EOPNOTSUPP; /* cannot complete a super-packet's checksum */
            int err = sx_net_csum_fill(buf, len, cstart, coff);
            if (err)
                return err;
            meta->sw_csum = true; /* flags stay 0: as Linux after skb_checksum_help */
        }
    } else if (hdr->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
        meta->rx_flags = NETRXF_data_validated;
        meta->tx_flags = NETTXF_data_validated;
    }
    if (meta->has_gso) {
        meta->rx_flags |= NETRXF_extra_info;
        meta->tx_flags |= NETTXF_extra_info;
    }
    return 0;
}
