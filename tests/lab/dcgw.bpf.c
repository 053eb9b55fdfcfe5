// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// The lab's DC gateway: MPLS over UDP (RFC 7510) to and from the overlay,
// since the kernel here has no MPLS routing (no mpls_router module). The
// namespace routes the inner packets itself, between the fabric (eth0) and
// the host behind it (eth1).
//
//   tc ingress on eth0 (section "decap"): an IPv4 UDP datagram to LOCAL
//     port 6635 loses its outer IPv4, UDP and MPLS headers (32 bytes); the
//     inner IPv4 or IPv6 packet goes on into the namespace's routing. The
//     label is not looked at: the lab gateway has one routing table.
//   route encap on eth0 (section "encap", one object per NODE and LABEL):
//     `ip route add <instance>/32 encap bpf xmit obj ... sec encap dev eth0`
//     pushes outer IPv4 (LOCAL -> NODE), UDP (to 6635) and the MPLS label
//     LABEL (bottom of stack, TTL 64); the kernel reroutes the result to
//     NODE and fills the IPv4 checksum.
//
// Build: -DLOCAL=<u32 in network order> [-DNODE=<u32> -DLABEL=<label>].
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef LOCAL
#error "build with -DLOCAL=<the gateway's fabric address, network order>"
#endif

// The decapsulation flags of bpf_skb_adjust_room (kernel 6.3+; the running
// kernel has them, older uapi headers do not): the inner packet's family,
// so that the kernel sets skb->protocol.
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

#define MPLS_OVER_UDP_PORT 6635
#define OUTER (sizeof(struct iphdr) + sizeof(struct udphdr) + 4)

SEC("decap")
int mpls_decap(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    __u8 *mpls = (void *)(udp + 1);

    if ((void *)(mpls + 5) > end)
        return TC_ACT_OK;
    if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->daddr != LOCAL ||
        ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(MPLS_OVER_UDP_PORT))
        return TC_ACT_OK;
    // One label, bottom of stack.
    if (!(mpls[2] & 0x01))
        return TC_ACT_SHOT;
    __u8 version = mpls[4] >> 4;
    __u64 flags;
    __u16 proto;
    if (version == 4) {
        flags = ADJ_ROOM_DECAP_L3_IPV4;
        proto = bpf_htons(ETH_P_IP);
    } else if (version == 6) {
        flags = ADJ_ROOM_DECAP_L3_IPV6;
        proto = bpf_htons(ETH_P_IPV6);
    } else {
        return TC_ACT_SHOT;
    }
    if (bpf_skb_adjust_room(skb, -(__s32)OUTER, BPF_ADJ_ROOM_MAC, flags))
        return TC_ACT_SHOT;
    if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
        return TC_ACT_SHOT;
    return TC_ACT_OK;
}

#if defined(NODE) && defined(LABEL)
struct outer {
    struct iphdr ip;
    struct udphdr udp;
    __u8 mpls[4];
} __attribute__((packed));

SEC("encap")
int mpls_encap(struct __sk_buff *skb)
{
    struct outer hdr;
    __u32 entry = ((__u32)LABEL << 12) | 0x100 | 64;

    __builtin_memset(&hdr, 0, sizeof(hdr));
    hdr.ip.version = 4;
    hdr.ip.ihl = 5;
    hdr.ip.ttl = 64;
    hdr.ip.protocol = IPPROTO_UDP;
    hdr.ip.saddr = LOCAL;
    hdr.ip.daddr = NODE;
    hdr.ip.tot_len = bpf_htons(skb->len + sizeof(hdr));
    // A fixed source port: the lab has one path.
    hdr.udp.source = bpf_htons(49152);
    hdr.udp.dest = bpf_htons(MPLS_OVER_UDP_PORT);
    hdr.udp.len = bpf_htons(skb->len + sizeof(hdr) - sizeof(struct iphdr));
    hdr.mpls[0] = entry >> 24;
    hdr.mpls[1] = entry >> 16;
    hdr.mpls[2] = entry >> 8;
    hdr.mpls[3] = entry;
    if (bpf_lwt_push_encap(skb, BPF_LWT_ENCAP_IP, &hdr, sizeof(hdr)))
        return BPF_DROP;
    return BPF_LWT_REROUTE;
}
#endif

char LICENSE[] SEC("license") = "GPL";
