// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Sink of the forwarding benchmark: attached (native XDP) to the sink's end
// of every device under test's egress veth. It counts, per ingress
// interface, the frames that were forwarded as the benchmark asks, and drops
// everything:
//
//   VALID      802.1Q VLAN 200, destination MAC = VMI 2, source MAC = the
//              gateway MAC, IPv4 from VMI 1's to VMI 2's address with a
//              correct header checksum, the frame exactly as long as the
//              IPv4 header says (nothing added or cut: no tunnel headers
//              left), UDP 1024 -> 9 of the right length, and the first
//              PAYLOAD_CHECKED payload bytes as the generator wrote them
//              (0, 1, 2, ...);
//   TTL_DONE   of those, the ones whose TTL was decremented (63);
//   OTHER      anything else.
//
// Loaded a second time for the SNAT modes, with other expectations: no
// tag (`tagged` 0), the fabric host's and the node's MACs, the node's
// underlay address as source, the fabric host's as destination, and any
// UDP ports (`check_ports` 0: the device picks the source port, the
// generator varies both).
//
// Counters live in a per-CPU array at index ifindex * 4 + counter.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VALID 0
#define TTL_DONE 1
#define OTHER 2
#define SLOTS 4
#define MAX_IFINDEX 256
#define PAYLOAD_CHECKED 16
#define SRC_PORT 1024
#define DST_PORT 9

// Expected values, set by the loader (gateway_mac: the source MAC,
// vmi_mac: the destination MAC, vmi_ip: the destination address).
const volatile __u8 gateway_mac[6] = {};
const volatile __u8 vmi_mac[6] = {};
const volatile __u16 vlan_id = 0;
const volatile __u32 vmi_ip = 0;  // network byte order
const volatile __u32 src_ip = 0;  // network byte order
const volatile __u8 ttl_after = 0;
const volatile __u8 tagged = 1;
const volatile __u8 check_ports = 1;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MAX_IFINDEX * SLOTS);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

struct vlan_hdr {
    __be16 tci;
    __be16 proto;
};

static __always_inline void count(__u32 ifindex, __u32 what)
{
    __u32 key = (ifindex % MAX_IFINDEX) * SLOTS + what;
    __u64 *n = bpf_map_lookup_elem(&counts, &key);
    if (n)
        *n += 1;
}

// `l2` is a constant at each call (18 tagged, 14 untagged), so that the
// verifier sees fixed offsets.
static __always_inline int classify(void *data, void *end, __u32 len, const __u32 l2)
{
    struct ethhdr *eth = data;
    struct vlan_hdr *vlan = data + sizeof(*eth);
    struct iphdr *ip = data + l2;
    struct udphdr *udp = (void *)(ip + 1);
    __u8 *payload = (void *)(udp + 1);

    if ((void *)(payload + PAYLOAD_CHECKED) > end)
        return OTHER;
    for (int i = 0; i < 6; i++) {
        if (eth->h_dest[i] != vmi_mac[i] || eth->h_source[i] != gateway_mac[i])
            return OTHER;
    }
    if (l2 == sizeof(*eth) + sizeof(*vlan)) {
        if (eth->h_proto != bpf_htons(ETH_P_8021Q) ||
            (bpf_ntohs(vlan->tci) & 0x0fff) != vlan_id ||
            vlan->proto != bpf_htons(ETH_P_IP))
            return OTHER;
    } else if (eth->h_proto != bpf_htons(ETH_P_IP)) {
        return OTHER;
    }
    if (ip->version != 4 || ip->ihl != 5 || ip->daddr != vmi_ip || ip->saddr != src_ip ||
        ip->protocol != IPPROTO_UDP)
        return OTHER;
    __u16 ip_len = bpf_ntohs(ip->tot_len);
    if (len != l2 + ip_len)
        return OTHER;
    if (check_ports && (udp->source != bpf_htons(SRC_PORT) || udp->dest != bpf_htons(DST_PORT)))
        return OTHER;
    if (bpf_ntohs(udp->len) != ip_len - sizeof(*ip))
        return OTHER;
#pragma unroll
    for (int i = 0; i < PAYLOAD_CHECKED; i++) {
        if (payload[i] != i)
            return OTHER;
    }
    __u16 *words = (__u16 *)ip;
    __u32 sum = 0;
#pragma unroll
    for (int i = 0; i < 10; i++)
        sum += words[i];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    if (sum != 0xffff)
        return OTHER;
    return ip->ttl == ttl_after ? TTL_DONE : VALID;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    // The length from the context's scalars: the verifier refuses
    // arithmetic on the end pointer.
    __u32 len = ctx->data_end - ctx->data;
    __u32 ifindex = ctx->ingress_ifindex;
    int what = tagged ? classify(data, end, len, sizeof(struct ethhdr) + sizeof(struct vlan_hdr))
                      : classify(data, end, len, sizeof(struct ethhdr));

    if (what == TTL_DONE)
        count(ifindex, TTL_DONE);
    count(ifindex, what == OTHER ? OTHER : VALID);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
