// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// XDP programs of a gateway node's ports.
//
// trunkline_redirect (trunk ports): every frame goes to the AF_XDP socket
// bound to its receive queue; a frame arriving on a queue without a socket
// falls through to the kernel (XDP_PASS), so the port keeps working while
// the dataplane starts or restarts.
//
// trunkline_fabric (the fabric port, shared with the host): only what the
// fast path owns goes to the AF_XDP socket; everything else, the host's own
// traffic (SSH, the kubelet, ARP, ...), passes to the kernel untouched.
// What the fast path owns:
//   - overlay tunnel packets for the node's underlay address (UDP to 6635,
//     MPLS over UDP, or 4789, VXLAN; not fragments);
//   - the return of SNAT flows: TCP/UDP to the underlay address on a port of
//     the SNAT range, ICMP echo replies whose identifier is in it, ICMP
//     errors quoting a packet from the underlay address with such a source
//     port or identifier (the host never uses that range: the agent keeps
//     it out of the kernel's ephemeral ports);
//   - packets to the subnets of networks with IP fabric forwarding (LPM
//     tries ip_fabric4 / ip_fabric6, written by the agent).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// ICMP and ICMPv6 types (linux/icmp.h pulls in libc headers BPF cannot
// build with); the identifier of an echo is at offset 4 of the message.
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PARAMPROB 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

#define MPLS_OVER_UDP_PORT 6635
#define VXLAN_PORT 4789

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

// The node's underlay address (one family) and SNAT range, written by the
// loader and updated in place by the agent.
struct underlay {
    __u32 family;   // 4 or 6; 0: none (nothing is steered)
    __u32 addr4;    // network byte order
    __u8 addr6[16];
    __u16 snat_lo;  // host byte order; 0: no SNAT
    __u16 snat_hi;
};

// Subnets of networks with IP fabric forwarding: the fabric routes them to
// this node; the value is unused.
struct lpm4 {
    __u32 prefixlen;
    __u8 addr[4];
};

struct lpm6 {
    __u32 prefixlen;
    __u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm4);
    __type(value, __u8);
} ip_fabric4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm6);
    __type(value, __u8);
} ip_fabric6 SEC(".maps");

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

// Whether `port` (network byte order) is one SNAT translates to.
static __always_inline int snat_port(const struct underlay *me, __u16 port)
{
    __u16 p = bpf_ntohs(port);
    return me->snat_lo && p >= me->snat_lo && p <= me->snat_hi;
}

// The quoted transport of an ICMP error (at `l4`, 8 bytes checked by the
// caller) is a packet of a SNAT flow: its source port (TCP, UDP) or echo
// identifier (ICMP echo request `echo_request`) is in the range.
static __always_inline int quoted_snat(const struct underlay *me, __u8 proto, __u8 *l4,
                                       __u8 icmp, __u8 echo_request)
{
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
        return snat_port(me, *(__u16 *)l4);
    if (proto == icmp && l4[0] == echo_request)
        return snat_port(me, *(__u16 *)(l4 + 4));
    return 0;
}

static __always_inline int to_fast_path(struct xdp_md *ctx)
{
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int fabric4(struct xdp_md *ctx, struct underlay *me, struct iphdr *ip,
                                   void *end)
{
    if (ip->daddr != me->addr4 || me->family != 4) {
        struct lpm4 key = {.prefixlen = 32};
        __builtin_memcpy(key.addr, &ip->daddr, 4);
        if (bpf_map_lookup_elem(&ip_fabric4, &key))
            return to_fast_path(ctx);
        return XDP_PASS;
    }
    // Fragments go to the kernel, which reassembles (and drops) them.
    if (ip->frag_off & bpf_htons(0x3fff))
        return XDP_PASS;
    __u32 ihl = (ip->ihl & 0xf) * 4;
    if (ihl < sizeof(*ip))
        return XDP_PASS;
    void *l4 = (void *)ip + ihl;
    if (l4 + 8 > end)
        return XDP_PASS;
    if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *udp = l4;
        if (tunnel_port(udp) || snat_port(me, udp->dest))
            return to_fast_path(ctx);
    } else if (ip->protocol == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;
        if (snat_port(me, tcp->dest))
            return to_fast_path(ctx);
    } else if (ip->protocol == IPPROTO_ICMP) {
        __u8 type = *(__u8 *)l4;
        if (type == ICMP_ECHOREPLY && snat_port(me, *(__u16 *)(l4 + 4)))
            return to_fast_path(ctx);
        if (type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB) {
            struct iphdr *inner = l4 + 8;
            if ((void *)(inner + 1) + 8 > end || inner->ihl != 5 || inner->saddr != me->addr4)
                return XDP_PASS;
            if (quoted_snat(me, inner->protocol, (__u8 *)(inner + 1), IPPROTO_ICMP, ICMP_ECHO))
                return to_fast_path(ctx);
        }
    }
    return XDP_PASS;
}

static __always_inline int same6(const __u8 *a, const struct in6_addr *b)
{
    const __u32 *x = (const __u32 *)a;
    const __u32 *y = b->in6_u.u6_addr32;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int fabric6(struct xdp_md *ctx, struct underlay *me, struct ipv6hdr *ip6,
                                   void *end)
{
    if (me->family != 6 || !same6(me->addr6, &ip6->daddr)) {
        struct lpm6 key = {.prefixlen = 128};
        __builtin_memcpy(key.addr, &ip6->daddr, 16);
        if (bpf_map_lookup_elem(&ip_fabric6, &key))
            return to_fast_path(ctx);
        return XDP_PASS;
    }
    void *l4 = ip6 + 1;
    if (l4 + 8 > end)
        return XDP_PASS;
    if (ip6->nexthdr == IPPROTO_UDP) {
        struct udphdr *udp = l4;
        if (tunnel_port(udp) || snat_port(me, udp->dest))
            return to_fast_path(ctx);
    } else if (ip6->nexthdr == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;
        if (snat_port(me, tcp->dest))
            return to_fast_path(ctx);
    } else if (ip6->nexthdr == IPPROTO_ICMPV6) {
        __u8 type = *(__u8 *)l4;
        if (type == ICMPV6_ECHO_REPLY && snat_port(me, *(__u16 *)(l4 + 4)))
            return to_fast_path(ctx);
        if (type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB) {
            struct ipv6hdr *inner = l4 + 8;
            if ((void *)(inner + 1) + 8 > end || !same6(me->addr6, &inner->saddr))
                return XDP_PASS;
            if (quoted_snat(me, inner->nexthdr, (__u8 *)(inner + 1), IPPROTO_ICMPV6,
                            ICMPV6_ECHO_REQUEST))
                return to_fast_path(ctx);
        }
    }
    return XDP_PASS;
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
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end)
            return XDP_PASS;
        return fabric4(ctx, me, ip, end);
    }
    if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return XDP_PASS;
        return fabric6(ctx, me, ip6, end);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
