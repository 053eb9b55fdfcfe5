// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// Sink of the forwarding benchmark: attached (native XDP) to the sink's end
// of every device under test's egress veth. It counts, per ingress
// interface, the frames that were forwarded as the benchmark asks, and drops
// everything:
//
//   VALID      802.1Q VLAN 200, destination MAC = VMI 2, source MAC = the
//              gateway MAC, IPv4 to VMI 2's address with a correct header
//              checksum;
//   TTL_DONE   of those, the ones whose TTL was decremented (63);
//   OTHER      anything else.
//
// Counters live in a per-CPU array at index ifindex * 4 + counter.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VALID 0
#define TTL_DONE 1
#define OTHER 2
#define SLOTS 4
#define MAX_IFINDEX 256

// Expected values, set by the loader.
const volatile __u8 gateway_mac[6] = {};
const volatile __u8 vmi_mac[6] = {};
const volatile __u16 vlan_id = 0;
const volatile __u32 vmi_ip = 0;  // network byte order
const volatile __u8 ttl_after = 0;

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

static __always_inline int classify(void *data, void *end)
{
    struct ethhdr *eth = data;
    struct vlan_hdr *vlan = data + sizeof(*eth);
    struct iphdr *ip = data + sizeof(*eth) + sizeof(*vlan);

    if ((void *)(ip + 1) > end)
        return OTHER;
    for (int i = 0; i < 6; i++) {
        if (eth->h_dest[i] != vmi_mac[i] || eth->h_source[i] != gateway_mac[i])
            return OTHER;
    }
    if (eth->h_proto != bpf_htons(ETH_P_8021Q) ||
        (bpf_ntohs(vlan->tci) & 0x0fff) != vlan_id ||
        vlan->proto != bpf_htons(ETH_P_IP))
        return OTHER;
    if (ip->version != 4 || ip->ihl != 5 || ip->daddr != vmi_ip)
        return OTHER;
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
    __u32 ifindex = ctx->ingress_ifindex;
    int what = classify(data, end);

    if (what == TTL_DONE)
        count(ifindex, TTL_DONE);
    count(ifindex, what == OTHER ? OTHER : VALID);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
