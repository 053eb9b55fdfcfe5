// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// XDP programs of a gateway node's ports.
//
// trunkline_redirect (trunk ports): every frame goes to the AF_XDP socket
// bound to its receive queue; a frame arriving on a queue without a socket
// falls through to the kernel (XDP_PASS), so the port keeps working while
// the dataplane starts or restarts.
//
// trunkline_fabric (the fabric port, shared with the host): only overlay
// tunnel packets for the node's underlay address (UDP to 6635, MPLS over
// UDP, or 4789, VXLAN; not fragments) go to the AF_XDP socket; everything
// else, the host's own traffic (SSH, the kubelet, ARP, ...), passes to the
// kernel untouched.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define MPLS_OVER_UDP_PORT 6635
#define VXLAN_PORT 4789

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// The node's underlay address (one family), written by the loader.
struct underlay {
    __u32 family;   // 4 or 6; 0: none (nothing is steered)
    __u32 addr4;    // network byte order
    __u8 addr6[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct underlay);
} underlay SEC(".maps");

SEC("xdp")
int trunkline_redirect(struct xdp_md *ctx)
{
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int tunnel_port(struct udphdr *udp)
{
    return udp->dest == bpf_htons(MPLS_OVER_UDP_PORT) || udp->dest == bpf_htons(VXLAN_PORT);
}

SEC("xdp")
int trunkline_fabric(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u32 key = 0;
    struct underlay *me = bpf_map_lookup_elem(&underlay, &key);

    if (!me || (void *)(eth + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(ETH_P_IP) && me->family == 4) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end)
            return XDP_PASS;
        if (ip->daddr != me->addr4 || ip->protocol != IPPROTO_UDP)
            return XDP_PASS;
        // Fragments go to the kernel, which reassembles (and drops) them.
        if (ip->frag_off & bpf_htons(0x3fff))
            return XDP_PASS;
        __u32 ihl = (ip->ihl & 0xf) * 4;
        if (ihl < sizeof(*ip))
            return XDP_PASS;
        struct udphdr *udp = (void *)ip + ihl;
        if ((void *)(udp + 1) > end)
            return XDP_PASS;
        if (tunnel_port(udp))
            return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
        return XDP_PASS;
    }
    if (eth->h_proto == bpf_htons(ETH_P_IPV6) && me->family == 6) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return XDP_PASS;
        if (ip6->nexthdr != IPPROTO_UDP)
            return XDP_PASS;
        const __u32 *want = (const __u32 *)me->addr6;
        const __u32 *got = ip6->daddr.in6_u.u6_addr32;
        if (got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3])
            return XDP_PASS;
        struct udphdr *udp = (void *)(ip6 + 1);
        if ((void *)(udp + 1) > end)
            return XDP_PASS;
        if (tunnel_port(udp))
            return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
