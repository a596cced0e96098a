/*
 * The XDP program of netdev kind "afxdp" (afxdp.c), one per uplink, shared by every AF_XDP vif
 * on it and attached through libxdp's dispatcher (so other XDP programs keep running on the
 * uplink). Built with clang -target bpf at build time and carried inside the binary.
 *
 * A unicast frame whose destination MAC is a vif's (sx_afxdp_macs: MAC -> the vif's slot) goes
 * to that vif's AF_XDP socket for the queue it arrived on (sx_afxdp_xsks[slot * MAXQ + queue]).
 * Everything else passes to the kernel: broadcast and multicast frames (XDP cannot clone a
 * frame to several sockets; each vif reads its copy from a packet socket, see afxdp.c), frames
 * for no vif, and frames for a vif with no socket on that queue.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "netdev/afxdp_maps.h"

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, SX_AFXDP_MAX_VIFS * SX_AFXDP_MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} sx_afxdp_xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SX_AFXDP_MAX_VIFS);
    __type(key, __u64);
    __type(value, __u32);
} sx_afxdp_macs SEC(".maps");

SEC("xdp")
int sx_afxdp_steer(struct xdp_md *ctx)
{
    const __u8 *d = (const __u8 *)(long)ctx->data;
    const __u8 *end = (const __u8 *)(long)ctx->data_end;
    if (d + 14 > end || (d[0] & 1))
        return XDP_PASS;
    __u64 mac = 0;
    __builtin_memcpy(&mac, d, 6);
    const __u32 *slot = bpf_map_lookup_elem(&sx_afxdp_macs, &mac);
    __u32 q = ctx->rx_queue_index;
    if (!slot || q >= SX_AFXDP_MAX_QUEUES)
        return XDP_PASS;
    /* no socket at that key: XDP_PASS (the flags' low bits are the action on a miss) */
    return bpf_redirect_map(&sx_afxdp_xsks, *slot * SX_AFXDP_MAX_QUEUES + q, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
