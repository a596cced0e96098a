/* virtio-net header <-> netfront meta, for TAP users; the conversions are netdev/vnet.c's. */
#include <errno.h>
#include <string.h>

#include "frontends/netfront/common.h"
#include "netdev/vnet.h"
#include "netdev/tap.h"

int sx_netfront_meta_from_vnet(const struct sx_netfront *f, const struct virtio_net_hdr_v1 *vh,
                               uint8_t *buf, size_t len, struct sx_netfront_meta *meta)
{
    if (!f || !vh || !buf || !meta)
        return -EINVAL;
    const struct sx_netfront_info *i = &f->info;
    const struct sx_net_peer_caps caps = {
        .csum = i->tx_csum,
        .csum_v6 = i->tx_csum && i->tx_ipv6_csum,
        .gso_tcpv4 = i->tx_gso_tcpv4,
        .gso_tcpv6 = i->tx_gso_tcpv6,
    };
    struct sx_net_netif_meta nm;
    int rc = sx_net_vnet_to_netif(vh, buf, len, &caps, &nm);
    if (rc < 0)
        return rc;
    memset(meta, 0, sizeof(*meta));
    if (nm.tx_flags & NETTXF_csum_blank)
        meta->flags |= SX_NETFRONT_CSUM_BLANK;
    if (nm.tx_flags & NETTXF_data_validated)
        meta->flags |= SX_NETFRONT_DATA_VALIDATED;
    if (nm.has_gso) {
        meta->gso_type = nm.gso.u.gso.type;
        meta->gso_size = nm.gso.u.gso.size;
    }
    return 0;
}

int sx_netfront_vnet_from_meta(const struct sx_netfront_meta *meta, uint8_t *buf, size_t len,
                               struct virtio_net_hdr_v1 *vh)
{
    if (!meta || !buf || !vh)
        return -EINVAL;
    uint16_t rxf = 0;
    if (meta->flags & SX_NETFRONT_CSUM_BLANK)
        rxf |= NETRXF_csum_blank;
    if (meta->flags & SX_NETFRONT_DATA_VALIDATED)
        rxf |= NETRXF_data_validated;
    netif_extra_info_t gso = { .type = XEN_NETIF_EXTRA_TYPE_GSO };
    if (meta->gso_type != XEN_NETIF_GSO_TYPE_NONE) {
        gso.u.gso.type = meta->gso_type;
        gso.u.gso.size = meta->gso_size;
        rxf |= NETRXF_extra_info;
    }
    int rc = sx_net_rx_vnet_hdr(rxf, meta->gso_type != XEN_NETIF_GSO_TYPE_NONE ? &gso : NULL,
                                buf, len, vh);
    return rc < 0 ? rc : 0;
}

int sx_netfront_vnet_from_frame(const struct sx_netfront_rxframe *fr,
                                struct virtio_net_hdr_v1 *vh)
{
    if (!fr || !vh || !fr->nseg)
        return -EINVAL;
    const struct sx_netfront_meta *m = &fr->meta;
    const struct sx_net_tx_meta tm = {
        .total_len = (unsigned)fr->len,
        .csum_blank = (m->flags & SX_NETFRONT_CSUM_BLANK) != 0,
        .data_validated = (m->flags & SX_NETFRONT_DATA_VALIDATED) != 0,
        .gso_type = m->gso_type,
        .gso_size = m->gso_size,
    };
    /* netif's rx and tx offload encodings convert to the same virtio-net header */
    int rc = sx_net_tx_vnet_hdr(&tm, fr->seg[0].iov_base, fr->seg[0].iov_len, vh);
    return rc < 0 ? rc : 0;
}
