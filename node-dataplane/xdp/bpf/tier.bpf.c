// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// The XDP tier: the common case of a gateway node's pipeline decided in the
// kernel, from maps mirrored from the compiled tables (layout: tier.h).
// The Rust pipeline (trunkline-pipeline) is the specification: for every
// frame this program either reaches the same verdict, with the same egress
// and the same bytes, or hands the frame, untouched, to the AF_XDP socket
// of its port (XSKMAP), where the Rust pipeline decides it as before.
//
//   trunk frame: Ethernet [+ 802.1Q] -> (port, VLAN) -> VMI -> port security
//     -> the VMI's VRF, by destination MAC:
//        gateway MAC, IPv4/IPv6 -> LPM -> local VMI: TTL, MACs, re-tag -> XDP_TX / devmap
//                                       -> remote VMI / peer: encapsulate -> fabric (devmap)
//        another MAC           -> bridge -> local VMI: re-tag | remote VMI: encapsulate
//   fabric frame: UDP 6635 / 4789 to our underlay address -> decapsulate
//        -> routed label: to its VMI | label or VNI of a network: as above, from the tunnel
//   not for the fabric's tunnels: SNAT returns, IP fabric subnets -> AF_XDP
//        (north-south is the pipeline's until a flow stage), the rest ->
//        XDP_PASS (the host's own traffic)
//   anything else (ARP, ND and router solicitations, broadcast and flooding,
//   DHCP, TTL expiry and packets too big for the egress MTU (ICMP errors),
//   echo and everything to the gateway, allowed address pairs that move,
//   host ports, options, frames longer than an AF_XDP buffer, misses) -> AF_XDP
//
// Every decision is made before the frame is written: a frame handed off is
// always the frame as it arrived. Counters (per CPU) count only what this
// program decided; the agent adds them to the userspace counters.
//
// Observe: while an observation runs the agent arms `tier_observe`; a
// frame it wants has its head copied on arrival, and a verdict made here
// (drop, transmit) goes into the ring `tier_obs_ring` within a per-CPU
// rate, every one refused counted. Off, one lookup and a branch per frame;
// armed, the filter compared in place, and over the rate a count.
//
// A flow stage (established flows of SNAT, security groups and network
// policies, from a BPF LRU hash the agent writes): SNAT's goes between the
// port security checks and the routing lookup (`flow_stage` below),
// security groups' around the pipeline's: a policed VMI's egress flow
// after port security, before the frame is dispatched (tier_police_out),
// a policed VMI's ingress flow when a frame is delivered to it
// (tier_send); a network policy's connection between two networks of this
// node after the route lookup found the link (NH_LINK), before the
// delivery (tier_link); a connection to a VMI on another node the same way
// at the sender (NH_LINK_REMOTE: tier_link, then the encapsulation of
// NH_REMOTE), and at the receiver, a tunnel packet into a VRF_LINKED VRF
// from a connected VMI on another node by the link its source's route
// names (tier_link_of_source, tier_police_link).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tier.h"

#define MPLS_OVER_UDP_PORT 6635
#define VXLAN_PORT 4789
#define TUNNEL_TTL 64
// The largest offset into a frame the program reads at; frames longer than
// this are handed off where their length matters.
#define MAX_OFF 4095
// The longest UDP datagram whose checksum the program computes (IPv6
// underlay); longer ones are handed off.
#define MAX_CSUM_LEN 2048

// Set by the loader for tests: record every decision in `trace`.
const volatile __u32 trace_enabled = 0;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} tier_state SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, TIER_MAX_IFACES * TIER_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} tier_xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
    __uint(max_entries, TIER_MAX_IFACES);
    __type(key, __u32);
    __type(value, __u32);
} tier_devmap SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TIER_MAX_IFACES);
    __type(key, __u32);
    __type(value, struct iface);
} tier_ifaces SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct globals);
} tier_globals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 2 * TIER_MAX_IFACES);
    __type(key, struct port_key);
    __type(value, struct port);
} tier_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 2 * TIER_MAX_VMIS);
    __type(key, struct vlan_key);
    __type(value, __u32);
} tier_vlans SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * TIER_MAX_VMIS);
    __type(key, __u32);
    __type(value, struct vmi);
} tier_vmis SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TIER_MAX_ENTRIES);
    __type(key, struct source_key);
    __type(value, __u32);
} tier_sources SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * TIER_MAX_VRFS);
    __type(key, __u32);
    __type(value, struct vrf);
} tier_vrfs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, TIER_MAX_ROUTES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct route4_key);
    __type(value, struct route);
} tier_routes4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, TIER_MAX_ROUTES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct route6_key);
    __type(value, struct route);
} tier_routes6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TIER_MAX_ENTRIES);
    __type(key, struct bridge_key);
    __type(value, struct nexthop);
} tier_bridge SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * TIER_MAX_REMOTES);
    __type(key, __u32);
    __type(value, struct remote);
} tier_remotes SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * TIER_MAX_PEERS);
    __type(key, __u32);
    __type(value, struct peer);
} tier_peers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 2 * TIER_MAX_PEERS);
    __type(key, struct peer_addr_key);
    __type(value, __u32);
} tier_peer_addrs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TIER_MAX_ENTRIES);
    __type(key, struct vrf_peer_key);
    __type(value, struct encap);
} tier_vrf_peers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TIER_MAX_ENTRIES);
    __type(key, struct label_key);
    __type(value, struct nexthop);
} tier_labels SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 2 * TIER_MAX_VRFS);
    __type(key, struct vni_key);
    __type(value, __u32);
} tier_vnis SEC(".maps");

// The flow stage's established flows (tier.h, `flows`). Sized by the
// loader (the agent's flag); an entry the LRU evicts is a miss: the next
// frame is handed off and the agent writes it again.
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, TIER_MAX_FLOWS);
    __type(key, struct flow_key);
    __type(value, struct flow_entry);
} tier_flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tier_stats);
} tier_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, TIER_MAX_VMIS);
    __type(key, __u32);
    __type(value, struct vmi_stats);
} tier_vmi_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct trace);
} tier_trace SEC(".maps");

// Observe: the filter the agent writes while an observation runs, the
// per-CPU record and rate, and the ring the agent reads (tier.h).
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct obs_filter);
} tier_observe SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct obs_cpu);
} tier_obs_cpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} tier_obs_ring SEC(".maps");

// The grace period of a generation flip: updating an array of maps from
// userspace returns only after every program that started before has
// finished (the kernel waits for RCU), so the agent knows no frame still
// uses the old generation.
struct sync_inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} tier_sync_inner SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct sync_inner);
} tier_sync SEC(".maps");

// ---------------------------------------------------------------------------
// What the program decided for a frame.
//
// The stages below are global functions: the verifier checks each once,
// with its arguments unknown, instead of once per path that reaches it
// (inlined, the paths multiply past the verifier's limit). Each returns 0
// and leaves its decision in `struct res`.

#define INNER_IP 1       // the routed IP packet itself (a VMI's MPLS label)
#define INNER_ETH 2      // the routed IP packet behind an Ethernet header to `mac`
#define INNER_BRIDGED 3  // the frame itself, untagged

struct encap_q {
    __u32 peer;   // peer slot
    __u32 kind;   // ENCAP_*
    __u32 value;  // label or VNI
    __u32 inner;  // INNER_*
    __u8 mac[6];  // INNER_ETH: the inner destination MAC
    __u16 pad;
};

// What to do with a frame once it is decided to be sent: the stage that
// rewrites it runs from the program's entry, so that the call chain (and
// the stack it needs) stays short.
#define PLAN_SEND 1     // to a local VMI: tier_send(slot, routed)
#define PLAN_ENCAP 2    // into a tunnel: tier_encap(q)
#define PLAN_DELIVER 3  // a routed label's packet to its VMI: tier_deliver
#define PLAN_SNAT 4     // a VMI's packet out by SNAT, if its flow is established: tier_snat_out
#define PLAN_POLICE 5   // a policed VMI's frame: its egress flow checked, then dispatched
                        // (tier_police_out)
#define PLAN_LINK 6     // routed into another network of this node by a network policy:
                        // the link's flow checked, then to VMI `slot` (tier_link)
#define PLAN_LINK_REMOTE 7  // the same to a VMI on another node: the link's flow checked,
                            // then into a tunnel toward remote `slot` (tier_link)

// An IPv6 address, as an argument of the global functions (the verifier
// gives a pointer argument the size of its type).
struct addr6 {
    __u8 b[16];
};

#define NAT_V4 1
#define NAT_V6 2

// flow_ports: an ICMP echo request or reply (security groups).
#define ECHO_EITHER 0x100

struct res {
    __u32 action;  // TRACE_*; 0: not decided yet (see plan)
    __u32 reason;  // enum tier_drop
    __u32 egress;  // ifindex
    __u32 rx_vmi;  // slot + 1
    __u32 tx_vmi;  // slot + 1
    __u32 pass;    // the fabric's: not a tunnel packet for us
    __u32 plan;    // PLAN_*
    __u32 slot;    // PLAN_SEND, PLAN_DELIVER: the VMI slot
    __u32 routed;  // PLAN_SEND: rewrite MACs and TTL
    __u32 packed;  // PLAN_DELIVER: peer << 22 | ip_at << 11 | end
    union {
        struct encap_q q;      // PLAN_ENCAP
        struct addr6 nat_addr6;  // PLAN_SEND with NAT_V6: the IPv6 address
        struct {
            __u32 zone;        // PLAN_LINK, PLAN_LINK_REMOTE: the link's flow zone
            __u32 generation;  // and its rules' generation
        } link;
    };
    __u32 nat;       // PLAN_SEND: NAT_V4 / NAT_V6: rewrite the destination to
                     // nat_addr (nat_addr6):nat_port first
    __u32 nat_addr;  // IPv4, as rd32 reads it
    __u32 nat_port;  // as rd16 reads it
    __u32 flow;      // decided by the flow stage (counted in flow_hits)
};

// Where a frame entered its VRF from.
#define SRC_VMI 1
#define SRC_TUNNEL 2
#define SRC_FABRIC 3  // a SNAT flow's return (the pipeline's Source::Host)

// An Ethernet frame inside the packet, at `base`, ending at `fend`, in its
// VRF.
struct frame {
    __u32 gen;
    __u32 ingress;   // ifindex
    __u32 base;
    __u32 fend;
    __u32 hlen;      // 14, or 18 with a tag
    __u32 tagged;
    __u32 tci;
    __u32 et;        // EtherType (after the tag), host order
    __u32 src_kind;  // SRC_*
    __u32 src_id;    // VMI slot or peer slot
    __u32 vrf;       // VRF slot
};

#define HANDOFF(r)                      \
    do {                                \
        (r)->action = TRACE_HANDOFF;    \
        return 0;                       \
    } while (0)
#define DROP(r, why)                    \
    do {                                \
        (r)->action = TRACE_DROP;       \
        (r)->reason = (why);            \
        return 0;                       \
    } while (0)
#define SEND(r, to, rewrite)            \
    do {                                \
        (r)->plan = PLAN_SEND;          \
        (r)->slot = (to);               \
        (r)->routed = (rewrite);        \
        return 0;                       \
    } while (0)

// ---------------------------------------------------------------------------
// Packet access.

static __always_inline __u8 *ptr_at(struct xdp_md *ctx, __u32 off, __u32 len)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if (off > MAX_OFF)
        return 0;
    // The mask changes nothing but tells the verifier the bound of the
    // very register added to the pointer (the barrier keeps the compiler
    // from dropping it).
    asm volatile("" : "+r"(off));
    __u8 *p = data + (off & MAX_OFF);
    if ((void *)(p + len) > end)
        return 0;
    return p;
}

static __always_inline __u32 frame_len(struct xdp_md *ctx)
{
    return (__u32)(ctx->data_end - ctx->data);
}

static __always_inline __u16 rd16(const __u8 *p)
{
    return ((__u16)p[0] << 8) | p[1];
}

static __always_inline __u32 rd32(const __u8 *p)
{
    return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

static __always_inline void wr16(__u8 *p, __u16 v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static __always_inline void wr32(__u8 *p, __u32 v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

// Compares without a branch per byte (each branch doubles what the
// verifier walks).
static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
    __u32 d = (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
              (a[5] ^ b[5]);
    return d == 0;
}

static __always_inline void mac_cp(__u8 *dst, const __u8 *src)
{
    __builtin_memcpy(dst, src, 6);
}

static __always_inline __u16 fold(__u32 s)
{
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return s;
}

// RFC 1624 equation 3, as trunkline_wire::checksum::update.
static __always_inline __u16 csum_update(__u16 hc, __u16 old, __u16 new)
{
    __u32 s = (__u16)~hc;
    s += (__u16)~old;
    s += new;
    return (__u16)~fold(s);
}

// The one's complement sum (not folded) of `n` bytes at `p` (n even, small).
static __always_inline __u32 sum_words(const __u8 *p, __u32 n)
{
    __u32 s = 0;
#pragma unroll
    for (__u32 i = 0; i + 1 < n; i += 2)
        s += rd16(p + i);
    return s;
}

// The folded one's complement sum of the `len` bytes at `off`, as
// trunkline_wire::checksum::data, plus `seed`. Returns a value above
// 0xffff when the range lies outside the packet or is too long.
__noinline int tier_csum(struct xdp_md *ctx, __u32 off, __u32 len, __u32 seed)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if (off > MAX_OFF || len > MAX_CSUM_LEN)
        return 0x10000;
    asm volatile("" : "+r"(off));
    __u8 *p = data + (off & MAX_OFF);
    __u32 s = seed;
    for (int i = 0; i < MAX_CSUM_LEN / 2; i++) {
        if (len < 2)
            break;
        // Keeps the compiler from turning the bound check into arithmetic
        // on the packet's end, which the verifier refuses.
        __u8 *q = p;
        asm volatile("" : "+r"(q));
        if ((void *)(q + 2) > end)
            return 0x10000;
        s += ((__u32)q[0] << 8) | q[1];
        p = q + 2;
        len -= 2;
    }
    if (len == 1) {
        if ((void *)(p + 1) > end)
            return 0x10000;
        s += (__u32)p[0] << 8;
    }
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return s;
}

// ---------------------------------------------------------------------------
// The flow hash of the outer UDP source port, as the pipeline's
// `flow_hash` (FNV-1a over the inner flow) and `frame_hash`.

#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u

static __always_inline __u32 fnv(__u32 h, __u8 b)
{
    return (h ^ b) * FNV_PRIME;
}

// flow_hash(et, l3) over the bytes [l3, fend): 0..=0xffff, or -1 when the
// program cannot read what the hash covers.
__noinline int tier_hash(struct xdp_md *ctx, __u32 et, __u32 l3, __u32 fend)
{
    __u32 h = FNV_OFFSET;
    __u32 avail = fend > l3 ? fend - l3 : 0;
    if (et == ETH_P_IP && avail >= 20) {
        __u8 *ip = ptr_at(ctx, l3, 20);
        if (!ip)
            return -1;
        __u32 ihl = (ip[0] & 0x0f) * 4;
        h = fnv(h, ip[9]);
#pragma unroll
        for (int i = 12; i < 20; i++)
            h = fnv(h, ip[i]);
        int fragment = (rd16(ip + 6) & 0x3fff) != 0;
        if ((ip[9] == 6 || ip[9] == 17) && !fragment && avail >= ihl + 4) {
            __u8 *l4 = ptr_at(ctx, l3 + ihl, 4);
            if (!l4)
                return -1;
#pragma unroll
            for (int i = 0; i < 4; i++)
                h = fnv(h, l4[i]);
        }
    } else if (et == ETH_P_IPV6 && avail >= 40) {
        __u8 *ip = ptr_at(ctx, l3, 40);
        if (!ip)
            return -1;
        h = fnv(h, ip[6]);
#pragma unroll
        for (int i = 8; i < 40; i++)
            h = fnv(h, ip[i]);
        if ((ip[6] == 6 || ip[6] == 17) && avail >= 44) {
            __u8 *l4 = ptr_at(ctx, l3 + 40, 4);
            if (!l4)
                return -1;
#pragma unroll
            for (int i = 0; i < 4; i++)
                h = fnv(h, l4[i]);
        }
    } else {
        __u32 n = avail < 16 ? avail : 16;
        for (__u32 i = 0; i < 16; i++) {
            if (i >= n)
                break;
            __u8 *c = ptr_at(ctx, l3 + i, 1);
            if (!c)
                return -1;
            h = fnv(h, c[0]);
        }
    }
    return (__u16)(h ^ (h >> 16));
}

// The hash of the MAC addresses (flow_hash of an unknown EtherType over the
// first 12 bytes of a frame).
static __always_inline __u16 mac_hash(const __u8 *macs)
{
    __u32 h = FNV_OFFSET;
#pragma unroll
    for (int i = 0; i < 12; i++)
        h = fnv(h, macs[i]);
    return (__u16)(h ^ (h >> 16));
}

// ---------------------------------------------------------------------------
// Lookups.

static __always_inline struct globals *globals_at(__u32 gen)
{
    __u32 key = gen & 1;
    return bpf_map_lookup_elem(&tier_globals, &key);
}

static __always_inline struct vmi *vmi_at(__u32 gen, __u32 slot)
{
    if (slot >= TIER_MAX_VMIS)
        return 0;
    __u32 key = (gen & 1) * TIER_MAX_VMIS + slot;
    struct vmi *v = bpf_map_lookup_elem(&tier_vmis, &key);
    if (!v || !(v->flags & VMI_VALID))
        return 0;
    return v;
}

static __always_inline struct vrf *vrf_at(__u32 gen, __u32 slot)
{
    if (slot >= TIER_MAX_VRFS)
        return 0;
    __u32 key = (gen & 1) * TIER_MAX_VRFS + slot;
    struct vrf *v = bpf_map_lookup_elem(&tier_vrfs, &key);
    if (!v || !(v->flags & VRF_VALID))
        return 0;
    return v;
}

static __always_inline struct remote *remote_at(__u32 gen, __u32 slot)
{
    if (slot >= TIER_MAX_REMOTES)
        return 0;
    __u32 key = (gen & 1) * TIER_MAX_REMOTES + slot;
    struct remote *v = bpf_map_lookup_elem(&tier_remotes, &key);
    if (!v || !(v->flags & REMOTE_VALID))
        return 0;
    return v;
}

static __always_inline struct peer *peer_at(__u32 gen, __u32 slot)
{
    if (slot >= TIER_MAX_PEERS)
        return 0;
    __u32 key = (gen & 1) * TIER_MAX_PEERS + slot;
    struct peer *v = bpf_map_lookup_elem(&tier_peers, &key);
    if (!v || !(v->flags & PEER_VALID))
        return 0;
    return v;
}

static __always_inline struct route *route4(__u32 gen, __u32 vrf, const __u8 *addr)
{
    struct route4_key key = {.prefixlen = 64};
    wr32(key.data, (gen << 24) | vrf);
    __builtin_memcpy(key.data + 4, addr, 4);
    return bpf_map_lookup_elem(&tier_routes4, &key);
}

static __always_inline struct route *route6(__u32 gen, __u32 vrf, const __u8 *addr)
{
    struct route6_key key = {.prefixlen = 160};
    wr32(key.data, (gen << 24) | vrf);
    __builtin_memcpy(key.data + 4, addr, 16);
    return bpf_map_lookup_elem(&tier_routes6, &key);
}

static __always_inline struct encap *vrf_peer(__u32 gen, __u32 vrf, __u32 peer)
{
    struct vrf_peer_key key = {.gen = gen, .vrf = vrf, .peer = peer};
    return bpf_map_lookup_elem(&tier_vrf_peers, &key);
}

// Whether a frame may be sent out of `ifindex` by this program.
static __always_inline int can_send(__u32 ingress, __u32 ifindex)
{
    if (!ifindex)
        return 0;
    if (ifindex == ingress)
        return 1;
    return bpf_map_lookup_elem(&tier_devmap, &ifindex) != 0;
}

// ---------------------------------------------------------------------------
// Writing the decided frame. Everything below runs only after every check
// passed: from here the frame is ours.

// Move the frame start by `delta` bytes (negative: grow into the headroom).
static __always_inline int move_head(struct xdp_md *ctx, int delta)
{
    if (delta == 0)
        return 0;
    return bpf_xdp_adjust_head(ctx, delta);
}

// Cut the frame to `len` bytes.
static __always_inline int cut_tail(struct xdp_md *ctx, __u32 len)
{
    __u32 now = frame_len(ctx);
    if (now <= len)
        return 0;
    return bpf_xdp_adjust_tail(ctx, -(int)(now - len));
}

// Decrement the TTL (IPv4, incremental checksum) or hop limit (IPv6) of the
// IP header at `l3`.
static __always_inline void decrement_ttl(struct xdp_md *ctx, __u32 l3, __u32 et)
{
    if (et == ETH_P_IP) {
        __u8 *ip = ptr_at(ctx, l3, 20);
        if (!ip)
            return;
        __u8 ttl = ip[8];
        __u16 old = ((__u16)ttl << 8) | ip[9];
        __u16 new = ((__u16)(__u8)(ttl - 1) << 8) | ip[9];
        __u16 sum = csum_update(rd16(ip + 10), old, new);
        ip[8] = ttl - 1;
        wr16(ip + 10, sum);
    } else {
        __u8 *ip = ptr_at(ctx, l3, 40);
        if (!ip)
            return;
        ip[7] -= 1;
    }
}

// ---------------------------------------------------------------------------
// Address and port translation (pipeline: snat::rewrite).

// One 16-bit word of a checksummed field changes from `old` to `new`:
// the checksum at `at` follows (RFC 1624); `optional_zero`: a zero checksum
// means none (UDP over IPv4) and stays, a computed zero is sent as 0xffff.
static __always_inline void sum_patch(__u8 *at, __u32 optional_zero, __u16 old, __u16 new)
{
    __u16 cur = rd16(at);
    if (optional_zero && cur == 0)
        return;
    __u16 upd = csum_update(cur, old, new);
    if (optional_zero && upd == 0)
        upd = 0xffff;
    wr16(at, upd);
}

// Rewrite the source (`source`) or destination address and port of the
// IPv4 packet at `l3` (a 20-byte header; TCP, UDP or ICMP echo, checked by
// the caller) to `addr:port` (as rd32 / rd16 read them), the IPv4 and the
// transport checksums updated word by word in the pipeline's order: the
// address' words (IP header, then the transport's pseudo-header), then the
// port (ICMP echo: the identifier, under the ICMP checksum only).
__noinline int tier_nat(struct xdp_md *ctx, __u32 l3, __u32 source, __u32 addr, __u32 port)
{
    __u8 *ip = ptr_at(ctx, l3, 20);
    if (!ip)
        return 0;
    __u32 proto = ip[9];
    __u8 *l4, *sum, *pp;
    __u32 oz = 0, pseudo = 1;
    if (proto == IPPROTO_TCP) {
        l4 = ptr_at(ctx, l3 + 20, 20);
        if (!l4)
            return 0;
        sum = l4 + 16;
        pp = source ? l4 : l4 + 2;
    } else if (proto == IPPROTO_UDP) {
        l4 = ptr_at(ctx, l3 + 20, 8);
        if (!l4)
            return 0;
        sum = l4 + 6;
        pp = source ? l4 : l4 + 2;
        oz = 1;
    } else {
        l4 = ptr_at(ctx, l3 + 20, 8);
        if (!l4)
            return 0;
        sum = l4 + 2;
        pp = l4 + 4;
        pseudo = 0;
    }
    __u8 *a = source ? ip + 12 : ip + 16;
    __u16 hi = addr >> 16, lo = addr & 0xffff;
    __u16 old = rd16(a);
    sum_patch(ip + 10, 0, old, hi);
    if (pseudo)
        sum_patch(sum, oz, old, hi);
    old = rd16(a + 2);
    sum_patch(ip + 10, 0, old, lo);
    if (pseudo)
        sum_patch(sum, oz, old, lo);
    wr16(a, hi);
    wr16(a + 2, lo);
    old = rd16(pp);
    sum_patch(sum, oz, old, port);
    wr16(pp, port);
    return 0;
}

// Rewrite the source (`source`) or destination address and port of the
// IPv6 packet at `l3` (a 40-byte header, TCP, UDP or ICMPv6 echo right
// after it, checked by the caller) to `addr`:`port` (as rd16 reads it):
// IPv6 has no header checksum; the transport's covers the pseudo-header
// (ICMPv6's too), and a UDP checksum is never optional. Updated word by
// word in the pipeline's order: the address' eight words, then the port
// (ICMPv6 echo: the identifier).
__noinline int tier_nat6(struct xdp_md *ctx, __u32 l3, __u32 source, const struct addr6 *addr,
                         __u32 port)
{
    if (!addr)
        return 0;
    __u8 *ip = ptr_at(ctx, l3, 40);
    if (!ip)
        return 0;
    __u32 proto = ip[6];
    __u8 *l4, *sum, *pp;
    if (proto == IPPROTO_TCP) {
        l4 = ptr_at(ctx, l3 + 40, 20);
        if (!l4)
            return 0;
        sum = l4 + 16;
        pp = source ? l4 : l4 + 2;
    } else if (proto == IPPROTO_UDP) {
        l4 = ptr_at(ctx, l3 + 40, 8);
        if (!l4)
            return 0;
        sum = l4 + 6;
        pp = source ? l4 : l4 + 2;
    } else {
        l4 = ptr_at(ctx, l3 + 40, 8);
        if (!l4)
            return 0;
        sum = l4 + 2;
        pp = l4 + 4;
    }
    __u8 *a = source ? ip + 8 : ip + 24;
#pragma unroll
    for (int i = 0; i < 16; i += 2) {
        __u16 new = rd16(addr->b + i);
        sum_patch(sum, 0, rd16(a + i), new);
        wr16(a + i, new);
    }
    sum_patch(sum, 0, rd16(pp), port);
    wr16(pp, port);
    return 0;
}

// ---------------------------------------------------------------------------
// The flow stage of security groups (pipeline: process/policy.rs).

static __always_inline int flow_ports(struct xdp_md *ctx, __u32 l3, __u32 hlen, __u32 total,
                                      __u32 proto, __u32 echo, struct flow_key *k);

// How stale a policed flow's last-seen may get while its packets pass.
#define LAST_SEEN_STEP 1000000000ull

#define POLICED_ALLOWED 0   // an established flow of the zone allows it
#define POLICED_NOT_IP 1    // not an IP packet: not policed (ARP and the like)
#define POLICED_UNKNOWN -1  // anything else: userspace decides (hand off)

// The packet at `l3` (of EtherType `et`, the frame ending at `fend`)
// crossing a policed VMI whose flows are in `zone`, decided under
// `generation` (its rules'): POLICED_*. Allowed only by a FLOW_FORWARD
// entry of its 5-tuple in the zone (the forward or the reverse entry of a
// flow the pipeline allowed), of the zone's generation, not idle past its
// timeout; its last-seen is updated. Handed off (POLICED_UNKNOWN), for
// the pipeline to decide anew or count: a miss, a denied flow (its drop
// is counted in userspace), a stale or idle entry; what moves the
// pipeline's TCP state (SYN, FIN, RST); what the kernel does not parse:
// IPv4 options and fragments, IPv6 extension headers, ICMP messages but
// echo (errors are allowed by the flow they quote).
static __always_inline int police(struct xdp_md *ctx, __u32 l3, __u32 fend, __u32 et,
                                  __u32 zone, __u32 generation)
{
    __u32 avail = fend > l3 ? fend - l3 : 0;
    struct flow_key k = {.vrf = zone};
    __u32 hlen, total;
    if (et == ETH_P_IP) {
        __u8 *ip = ptr_at(ctx, l3, 20);
        if (!ip || ip[0] != 0x45 || avail < 20)
            return POLICED_UNKNOWN;
        total = rd16(ip + 2);
        if (total < 20 || total > avail || (rd16(ip + 6) & 0x3fff))
            return POLICED_UNKNOWN;
        k.family = 4;
        k.proto = ip[9];
        __builtin_memcpy(k.src, ip + 12, 4);
        __builtin_memcpy(k.dst, ip + 16, 4);
        hlen = 20;
    } else if (et == ETH_P_IPV6) {
        __u8 *ip = ptr_at(ctx, l3, 40);
        if (!ip || (ip[0] >> 4) != 6 || avail < 40)
            return POLICED_UNKNOWN;
        total = 40 + (__u32)rd16(ip + 4);
        if (total > avail)
            return POLICED_UNKNOWN;
        k.family = 6;
        k.proto = ip[6];
        __builtin_memcpy(k.src, ip + 8, 16);
        __builtin_memcpy(k.dst, ip + 24, 16);
        hlen = 40;
    } else {
        return POLICED_NOT_IP;
    }
    if (flow_ports(ctx, l3, hlen, total, k.proto, ECHO_EITHER, &k))
        return POLICED_UNKNOWN;
    struct flow_entry *e = bpf_map_lookup_elem(&tier_flows, &k);
    if (!e || e->v.action != FLOW_FORWARD || e->v.generation != generation)
        return POLICED_UNKNOWN;
    // The coarse clock (the same CLOCK_MONOTONIC, at the tick's
    // resolution: the timeouts are a minute and more) and last-seen
    // written at most once a LAST_SEEN_STEP: no shared cache line dirtied
    // per packet. The packet and byte counts are not kept here (userspace
    // reads only last-seen).
    __u64 now = bpf_ktime_get_coarse_ns();
    __u64 last = e->v.last_seen_ns;
    if (now > last && now - last > e->idle_ns)
        return POLICED_UNKNOWN;
    if (now > last + LAST_SEEN_STEP)
        e->v.last_seen_ns = now;
    return POLICED_ALLOWED;
}

// ---------------------------------------------------------------------------
// Delivery to a VMI of this node (pipeline: send_to_vmi, retag).

__noinline int tier_send(struct xdp_md *ctx, struct frame *f, struct res *r, __u32 slot,
                         __u32 routed)
{
    if (!f || !r)
        return 0;
    struct vmi *to = vmi_at(f->gen, slot);
    if (!to || (to->flags & VMI_HANDOFF))
        HANDOFF(r);
    // A policed VMI's ingress (pipeline: deliver, police): before anything
    // else about it, as the pipeline decides. The return of a SNAT flow is
    // policed after its translation: userspace's.
    if (to->flags & VMI_POLICED) {
        int policed = police(ctx, f->base + f->hlen, f->fend, f->et, to->zone, to->generation);
        if (policed < 0 || r->nat)
            HANDOFF(r);
        if (policed == POLICED_ALLOWED)
            r->flow = 1;
    }
    if (!(to->flags & VMI_EGRESS))
        DROP(r, TD_VMI_UNREACHABLE);
    __u32 egress = to->egress_ifindex;
    if (!can_send(f->ingress, egress))
        HANDOFF(r);
    struct globals *g = globals_at(f->gen);
    if (!g)
        HANDOFF(r);
    __u32 vlan = to->egress_vlan & 0x0fff;
    __u8 macs[12];
    if (routed) {
        mac_cp(macs, to->mac);
        mac_cp(macs + 6, g->gateway_mac);
    } else {
        __u8 *p = ptr_at(ctx, f->base, 12);
        if (!p)
            HANDOFF(r);
        __builtin_memcpy(macs, p, 12);
    }
    // The new frame starts at `start`: the tag popped (+4), pushed (-4),
    // rewritten in place, or absent.
    int start = f->base;
    __u32 tci = vlan;
    if (f->tagged && vlan == 0)
        start += 4;
    else if (!f->tagged && vlan != 0)
        start -= 4;
    else if (f->tagged)
        tci = (f->tci & 0xf000) | vlan;
    __u32 new_hlen = vlan ? 18 : 14;
    __u32 len = f->fend - f->base - f->hlen + new_hlen;
    __u32 et = f->et;
    if (move_head(ctx, start))
        HANDOFF(r);
    // From here on the frame is rewritten: nothing may hand it off.
    r->action = TRACE_TX;
    r->egress = egress;
    r->tx_vmi = slot + 1;
    __u8 *p = ptr_at(ctx, 0, 18);
    if (!p)
        return 0;
    __builtin_memcpy(p, macs, 12);
    if (vlan) {
        wr16(p + 12, ETH_P_8021Q);
        wr16(p + 14, tci);
    }
    if (r->nat == NAT_V4)
        tier_nat(ctx, new_hlen, 0, r->nat_addr, r->nat_port);
    else if (r->nat == NAT_V6)
        tier_nat6(ctx, new_hlen, 0, &r->nat_addr6, r->nat_port);
    if (routed)
        decrement_ttl(ctx, new_hlen, et);
    cut_tail(ctx, len);
    return 0;
}

// ---------------------------------------------------------------------------
// Encapsulation toward a peer (pipeline: route_inner, bridge_to_remote,
// encapsulate).

// The outer headers (Ethernet, IP, UDP, MPLS or VXLAN) of a tunnel packet
// of `total` bytes, at the start of the frame.
static __always_inline int write_outer(struct xdp_md *ctx, struct globals *g, __u32 v6,
                                       const __u8 *next_hop, const __u8 *peer_addr,
                                       __u32 total, __u16 sport, struct encap_q *q)
{
    __u32 ip_hlen = v6 ? 40 : 20;
    __u32 udp_len = total - 14 - ip_hlen;
    __u16 dport = q->kind == ENCAP_VXLAN ? VXLAN_PORT : MPLS_OVER_UDP_PORT;
    __u8 *p = ptr_at(ctx, 0, 14 + 40 + 8 + 8);
    if (!v6)
        p = ptr_at(ctx, 0, 14 + 20 + 8 + 8);
    if (!p)
        return -1;
    mac_cp(p, next_hop);
    mac_cp(p + 6, g->underlay_mac);
    __u8 *udp;
    if (v6) {
        wr16(p + 12, ETH_P_IPV6);
        __u8 *ip = p + 14;
        wr32(ip, 0x60000000);
        wr16(ip + 4, udp_len);
        ip[6] = IPPROTO_UDP;
        ip[7] = TUNNEL_TTL;
        __builtin_memcpy(ip + 8, g->underlay_addr, 16);
        __builtin_memcpy(ip + 24, peer_addr, 16);
        udp = ip + 40;
    } else {
        wr16(p + 12, ETH_P_IP);
        __u8 *ip = p + 14;
        ip[0] = 0x45;
        ip[1] = 0;
        wr16(ip + 2, 20 + udp_len);
        wr16(ip + 4, 0);
        wr16(ip + 6, 0x4000);
        ip[8] = TUNNEL_TTL;
        ip[9] = IPPROTO_UDP;
        wr16(ip + 10, 0);
        __builtin_memcpy(ip + 12, g->underlay_addr, 4);
        __builtin_memcpy(ip + 16, peer_addr, 4);
        wr16(ip + 10, ~fold(sum_words(ip, 20)));
        udp = ip + 20;
    }
    wr16(udp, sport);
    wr16(udp + 2, dport);
    wr16(udp + 4, udp_len);
    wr16(udp + 6, 0);
    __u8 *enc = udp + 8;
    if (q->kind == ENCAP_VXLAN) {
        wr32(enc, 0x08000000);
        wr32(enc + 4, (q->value & 0xffffff) << 8);
    } else {
        wr32(enc, ((q->value & 0xfffff) << 12) | (1 << 8) | TUNNEL_TTL);
    }
    if (v6) {
        __u8 *ip = ptr_at(ctx, 14, 40);
        if (!ip)
            return -1;
        __u32 pseudo = sum_words(ip + 8, 32) + udp_len + IPPROTO_UDP;
        int sum = tier_csum(ctx, 14 + 40, udp_len, pseudo);
        if (sum > 0xffff)
            return -1;
        __u16 csum = ~(__u16)sum;
        if (csum == 0)
            csum = 0xffff;
        __u8 *u = ptr_at(ctx, 14 + 40, 8);
        if (!u)
            return -1;
        wr16(u + 6, csum);
    }
    return 0;
}

__noinline int tier_encap(struct xdp_md *ctx, struct frame *f, struct res *r,
                          struct encap_q *q)
{
    if (!f || !r || !q)
        return 0;
    struct globals *g = globals_at(f->gen);
    if (!g || !(g->flags & GLOBAL_UNDERLAY))
        HANDOFF(r);
    __u32 v6 = g->underlay_family == 6;
    __u32 enc_len = q->kind == ENCAP_VXLAN ? 8 : 4;
    __u32 ip_hlen = v6 ? 40 : 20;
    __u32 outer = 14 + ip_hlen + 8 + enc_len;
    __u32 mtu = g->mtu > ip_hlen + 8 + enc_len ? g->mtu - (ip_hlen + 8 + enc_len) : 0;
    __u32 inner = q->inner;
    __u32 l3 = f->base + f->hlen;
    __u32 payload;
    if (inner == INNER_IP)
        payload = l3;
    else if (inner == INNER_ETH)
        payload = l3 - 14;
    else
        payload = f->base + (f->tagged ? 4 : 0);
    if (payload > f->fend)
        HANDOFF(r);
    __u32 payload_len = f->fend - payload;
    if (payload_len > mtu) {
        // A routed packet gets the ICMP error path MTU discovery needs: userspace.
        if (inner != INNER_BRIDGED)
            HANDOFF(r);
        DROP(r, TD_TUNNEL_MTU_EXCEEDED);
    }
    struct peer *peer = peer_at(f->gen, q->peer);
    if (!peer)
        HANDOFF(r);
    if (!(peer->flags & PEER_RESOLVED))
        DROP(r, TD_TUNNEL_UNRESOLVED);
    if (peer->family != g->underlay_family)
        HANDOFF(r);
    __u32 fabric = g->fabric_ifindex;
    if (!can_send(f->ingress, fabric))
        HANDOFF(r);
    __u32 total = outer + payload_len;
    if (v6 && total - 14 - ip_hlen > MAX_CSUM_LEN)
        HANDOFF(r);
    // The flow hash, before anything moves.
    __u8 macs[12];
    {
        __u8 *p = ptr_at(ctx, f->base, 12);
        if (!p)
            HANDOFF(r);
        __builtin_memcpy(macs, p, 12);
    }
    int hash = tier_hash(ctx, f->et, l3, f->fend);
    if (hash < 0)
        HANDOFF(r);
    if (inner == INNER_BRIDGED)
        hash ^= mac_hash(macs);
    __u16 sport = 0xc000 | (hash & 0x3fff);
    __u32 et = f->et;
    int start = (int)payload - (int)outer;
    if (move_head(ctx, start))
        HANDOFF(r);
    // From here on the frame is rewritten.
    r->action = TRACE_TX;
    r->egress = fabric;
    if (inner == INNER_ETH) {
        __u8 *p = ptr_at(ctx, outer, 14);
        if (!p)
            return 0;
        mac_cp(p, q->mac);
        mac_cp(p + 6, g->gateway_mac);
        wr16(p + 12, et);
        decrement_ttl(ctx, outer + 14, et);
    } else if (inner == INNER_BRIDGED) {
        __u8 *p = ptr_at(ctx, outer, 12);
        if (!p)
            return 0;
        __builtin_memcpy(p, macs, 12);
    } else {
        decrement_ttl(ctx, outer, et);
    }
    write_outer(ctx, g, v6, peer->next_hop, peer->addr, total, sport, q);
    return 0;
}

// ---------------------------------------------------------------------------
// Routing (pipeline: route_v4, route_v6, forward).

// The place for a flow stage before the route lookup. Security groups
// decide a policed VMI's flows around the pipeline's stages instead
// (`police` above), network policies' links after the route lookup
// (tier_link), as the pipeline does.
static __always_inline int flow_stage(struct xdp_md *ctx, struct frame *f)
{
    return 0;
}

// The flow stage of SNAT (pipeline: snat.rs). Only established flows:
// the entry the agent wrote after the pipeline decided the flow's first
// packet, decided under the VRF's current generation, not idle past its
// timeout; IPv4 or IPv6 (in the underlay's family) TCP segments without
// SYN, FIN or RST (they move the pipeline's TCP state), UDP, ICMP or
// ICMPv6 echo. Anything else is handed off untouched: a miss, a stale
// entry, fragments and IPv6 extension headers, TTL or hop limit at 1,
// larger than the fabric's MTU, ICMP errors.

// The entry of `k`, when it may be trusted for action `action`, decided
// under `generation`; its last-seen and counts are updated.
static __always_inline struct flow_entry *flow_hit(struct flow_key *k, __u32 action,
                                                   __u32 generation, __u32 len)
{
    struct flow_entry *e = bpf_map_lookup_elem(&tier_flows, k);
    if (!e || e->v.action != action || e->v.generation != generation)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    __u64 last = e->v.last_seen_ns;
    if (now > last && now - last > e->idle_ns)
        return 0;
    e->v.last_seen_ns = now;
    __sync_fetch_and_add(&e->v.packets, 1);
    __sync_fetch_and_add(&e->v.bytes, len);
    return e;
}

// The transport ports (or echo identifier) of the IP packet at `l3` of
// `total` bytes, its header `hlen` bytes (IPv4: 20, IPv6: 40), into the
// key; `echo`: the ICMP (IPv4) or ICMPv6 (IPv6) type wanted (8 / 128
// request, 0 / 129 reply), its identifier in `sport`, or ECHO_EITHER
// (security groups: a request's identifier in `sport`, a reply's in
// `dport`). 0: a frame the flow stage takes, -1: hand off.
static __always_inline int flow_ports(struct xdp_md *ctx, __u32 l3, __u32 hlen, __u32 total,
                                      __u32 proto, __u32 echo, struct flow_key *k)
{
    if (proto == IPPROTO_TCP) {
        __u8 *t = ptr_at(ctx, l3 + hlen, 20);
        if (!t || total < hlen + 20)
            return -1;
        __u32 doff = (t[12] >> 4) * 4;
        // FIN, SYN, RST: the pipeline's TCP state.
        if (doff < 20 || doff > total - hlen || (t[13] & 0x07))
            return -1;
        __builtin_memcpy(&k->sport, t, 2);
        __builtin_memcpy(&k->dport, t + 2, 2);
        return 0;
    }
    if (proto == IPPROTO_UDP) {
        __u8 *u = ptr_at(ctx, l3 + hlen, 8);
        if (!u || total < hlen + 8)
            return -1;
        __u32 ulen = rd16(u + 4);
        if (ulen < 8 || ulen > total - hlen)
            return -1;
        __builtin_memcpy(&k->sport, u, 2);
        __builtin_memcpy(&k->dport, u + 2, 2);
        return 0;
    }
    if (proto == (hlen == 40 ? 58 : IPPROTO_ICMP)) {
        __u8 *c = ptr_at(ctx, l3 + hlen, 8);
        if (!c || total < hlen + 8)
            return -1;
        if (echo == ECHO_EITHER) {
            // As the pipeline keys echo: a request's identifier on the
            // source side, a reply's on the destination side.
            __u32 request = hlen == 40 ? 128 : 8, reply = hlen == 40 ? 129 : 0;
            if (c[0] == reply) {
                k->sport = 0;
                __builtin_memcpy(&k->dport, c + 4, 2);
                return 0;
            }
            echo = request;
        }
        if (c[0] != echo)
            return -1;
        __builtin_memcpy(&k->sport, c + 4, 2);
        k->dport = 0;
        return 0;
    }
    return -1;
}

// Whether a frame of `avail` bytes past its Ethernet header fits the MTU
// of VRF `v` and of VMI `id`'s egress port (else the ICMP error path MTU
// discovery needs, in userspace).
static __always_inline int fits_vmi(__u32 gen, struct vrf *v, __u32 id, __u32 avail)
{
    __u32 limit = v->mtu;
    struct vmi *vmi = vmi_at(gen, id);
    __u32 port_mtu = vmi ? vmi->egress_mtu : 0;
    if (port_mtu && (!limit || port_mtu < limit))
        limit = port_mtu;
    return !limit || avail <= limit;
}

// The frame as the fabric port received it, untagged, of EtherType `et`,
// in VRF slot `slot` (a translated return on its way to a VMI).
static __always_inline void from_fabric(struct frame *f, __u32 fend, __u16 et, __u32 slot)
{
    f->base = 0;
    f->fend = fend;
    f->hlen = 14;
    f->tagged = 0;
    f->tci = 0;
    f->et = et;
    f->src_kind = SRC_FABRIC;
    f->src_id = 0;
    f->vrf = slot;
}

// A VMI's IPv6 packet its VRF does not route, the VRF's exit SNAT, over
// an IPv6 underlay (pipeline: fabric_exit, snat_out): as tier_snat_out4
// below, with the hop limit (IPv6 has no header checksum). Extension
// headers are not TCP, UDP or ICMPv6: handed off (the pipeline's
// snat_unsupported).
__noinline int tier_snat_out6(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    struct globals *g = globals_at(f->gen);
    struct vrf *v = vrf_at(f->gen, f->vrf);
    if (!g || !v || !(g->flags & GLOBAL_UNDERLAY) || g->underlay_family != 6 ||
        !(v->flags & VRF_SNAT))
        HANDOFF(r);
    __u32 l3 = f->base + f->hlen;
    __u8 *ip = ptr_at(ctx, l3, 40);
    if (!ip)
        HANDOFF(r);
    // tier_route checked the version and the payload within the frame.
    __u32 total = 40 + (__u32)rd16(ip + 4);
    if (ip[7] <= 1 || total > g->mtu)
        HANDOFF(r);
    struct flow_key k = {.vrf = v->id, .family = 6, .proto = ip[6]};
    __builtin_memcpy(k.src, ip + 8, 16);
    __builtin_memcpy(k.dst, ip + 24, 16);
    if (flow_ports(ctx, l3, 40, total, k.proto, 128, &k))
        HANDOFF(r);
    __u32 fabric = g->fabric_ifindex;
    if (!can_send(f->ingress, fabric))
        HANDOFF(r);
    struct flow_entry *e = flow_hit(&k, FLOW_SNAT, v->generation, total);
    if (!e || e->v.nat_vrf != FLOW_FABRIC_VRF)
        HANDOFF(r);
    __u8 nh[6];
    mac_cp(nh, e->next_hop);
    if (!(nh[0] | nh[1] | nh[2] | nh[3] | nh[4] | nh[5]))
        HANDOFF(r);
    __u32 port = rd16((__u8 *)&e->v.nat_port);
    if (move_head(ctx, (int)l3 - 14))
        HANDOFF(r);
    // From here on the frame is rewritten.
    r->action = TRACE_TX;
    r->egress = fabric;
    r->flow = 1;
    tier_nat6(ctx, 14, 1, (const struct addr6 *)e->v.nat_addr, port);
    decrement_ttl(ctx, 14, ETH_P_IPV6);
    __u8 *p = ptr_at(ctx, 0, 14);
    if (!p)
        return 0;
    mac_cp(p, nh);
    mac_cp(p + 6, g->underlay_mac);
    wr16(p + 12, ETH_P_IPV6);
    cut_tail(ctx, 14 + total);
    return 0;
}

// A VMI's IPv4 packet its VRF does not route, the VRF's exit SNAT
// (pipeline: fabric_exit, snat_out): with an established flow, its source
// becomes the flow's address and port, TTL - 1, out of the fabric port to
// the next hop the entry carries.
__noinline int tier_snat_out4(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    struct globals *g = globals_at(f->gen);
    struct vrf *v = vrf_at(f->gen, f->vrf);
    if (!g || !v || !(g->flags & GLOBAL_UNDERLAY) || g->underlay_family != 4 ||
        !(v->flags & VRF_SNAT))
        HANDOFF(r);
    __u32 l3 = f->base + f->hlen;
    __u8 *ip = ptr_at(ctx, l3, 20);
    if (!ip)
        HANDOFF(r);
    // tier_route checked the version, a 20-byte header, the total length
    // within the frame and the header checksum.
    __u32 total = rd16(ip + 2);
    if ((rd16(ip + 6) & 0x3fff) || ip[8] <= 1 || total > g->mtu || total < 20)
        HANDOFF(r);
    struct flow_key k = {.vrf = v->id, .family = 4, .proto = ip[9]};
    __builtin_memcpy(k.src, ip + 12, 4);
    __builtin_memcpy(k.dst, ip + 16, 4);
    if (flow_ports(ctx, l3, 20, total, k.proto, 8, &k))
        HANDOFF(r);
    __u32 fabric = g->fabric_ifindex;
    if (!can_send(f->ingress, fabric))
        HANDOFF(r);
    struct flow_entry *e = flow_hit(&k, FLOW_SNAT, v->generation, total);
    if (!e || e->v.nat_vrf != FLOW_FABRIC_VRF)
        HANDOFF(r);
    __u8 nh[6];
    mac_cp(nh, e->next_hop);
    if (!(nh[0] | nh[1] | nh[2] | nh[3] | nh[4] | nh[5]))
        HANDOFF(r);
    __u32 addr = rd32(e->v.nat_addr);
    __u32 port = rd16((__u8 *)&e->v.nat_port);
    if (move_head(ctx, (int)l3 - 14))
        HANDOFF(r);
    // From here on the frame is rewritten.
    r->action = TRACE_TX;
    r->egress = fabric;
    r->flow = 1;
    tier_nat(ctx, 14, 1, addr, port);
    decrement_ttl(ctx, 14, ETH_P_IP);
    __u8 *p = ptr_at(ctx, 0, 14);
    if (!p)
        return 0;
    mac_cp(p, nh);
    mac_cp(p + 6, g->underlay_mac);
    wr16(p + 12, ETH_P_IP);
    cut_tail(ctx, 14 + total);
    return 0;
}

// tier_snat_in4 for IPv6 on an IPv6 underlay: the hop limit, no header
// checksum, ICMPv6 echo replies; the instance's address goes to
// tier_send in `nat_addr6` (NAT_V6).
__noinline int tier_snat_in6(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    struct globals *g = globals_at(f->gen);
    if (!g || !(g->flags & GLOBAL_UNDERLAY) || !(g->flags & GLOBAL_SNAT) ||
        g->underlay_family != 6)
        HANDOFF(r);
    __u32 fend = frame_len(ctx);
    __u8 *p = ptr_at(ctx, 0, 14 + 40);
    if (!p || rd16(p + 12) != ETH_P_IPV6)
        HANDOFF(r);
    __u8 *ip = p + 14;
    __u32 total = 40 + (__u32)rd16(ip + 4);
    if ((ip[0] >> 4) != 6 || total > fend - 14 || ip[7] <= 1)
        HANDOFF(r);
    __u32 d = 0;
#pragma unroll
    for (int i = 0; i < 16; i++)
        d |= ip[24 + i] ^ g->underlay_addr[i];
    if (d)
        HANDOFF(r);
    struct flow_key k = {.vrf = FLOW_FABRIC_VRF, .family = 6, .proto = ip[6]};
    __builtin_memcpy(k.src, ip + 8, 16);
    __builtin_memcpy(k.dst, ip + 24, 16);
    if (flow_ports(ctx, 14, 40, total, k.proto, 129, &k))
        HANDOFF(r);
    __u16 port = bpf_ntohs(k.proto == 58 ? k.sport : k.dport);
    if (port < g->snat_lo || port > g->snat_hi)
        HANDOFF(r);
    struct flow_entry *e = bpf_map_lookup_elem(&tier_flows, &k);
    if (!e || e->v.action != FLOW_UNSNAT)
        HANDOFF(r);
    __u32 slot = e->vrf_slot;
    struct vrf *v = vrf_at(f->gen, slot);
    if (!v || !(v->flags & VRF_VALID) || !(v->flags & VRF_SNAT) || v->id != e->v.nat_vrf)
        HANDOFF(r);
    // The instance's address, in the result (the union's encapsulation
    // half is unused with PLAN_SEND): no stack of its own.
    __builtin_memcpy(r->nat_addr6.b, e->v.nat_addr, 16);
    struct route *found = route6(f->gen, slot, r->nat_addr6.b);
    if (!found || found->kind != NH_VMI)
        HANDOFF(r);
    __u32 id = found->id;
    if (!fits_vmi(f->gen, v, id, fend - 14))
        HANDOFF(r);
    e = flow_hit(&k, FLOW_UNSNAT, v->generation, total);
    if (!e)
        HANDOFF(r);
    from_fabric(f, fend, ETH_P_IPV6, slot);
    r->nat = NAT_V6;
    r->nat_port = rd16((__u8 *)&e->v.nat_port);
    r->flow = 1;
    SEND(r, id, 1);
}

// A frame of the fabric port to the underlay address on a SNAT port (or
// an echo reply with such an identifier), tier_north_south said (pipeline:
// snat_in, unsnat, route_from_fabric): with an established flow whose
// VRF routes the instance's address to a VMI of this node, its destination
// becomes the instance's address and port, TTL - 1, to the VMI (PLAN_SEND
// with `nat`).
__noinline int tier_snat_in4(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    struct globals *g = globals_at(f->gen);
    if (!g || !(g->flags & GLOBAL_UNDERLAY) || !(g->flags & GLOBAL_SNAT) ||
        g->underlay_family != 4)
        HANDOFF(r);
    __u32 fend = frame_len(ctx);
    __u8 *p = ptr_at(ctx, 0, 14 + 20);
    if (!p || rd16(p + 12) != ETH_P_IP)
        HANDOFF(r);
    __u8 *ip = p + 14;
    __u32 total = rd16(ip + 2);
    if (ip[0] != 0x45 || total < 20 || total > fend - 14 || fold(sum_words(ip, 20)) != 0xffff ||
        (rd16(ip + 6) & 0x3fff) || ip[8] <= 1)
        HANDOFF(r);
    if (rd32(ip + 16) != rd32(g->underlay_addr))
        HANDOFF(r);
    struct flow_key k = {.vrf = FLOW_FABRIC_VRF, .family = 4, .proto = ip[9]};
    __builtin_memcpy(k.src, ip + 12, 4);
    __builtin_memcpy(k.dst, ip + 16, 4);
    if (flow_ports(ctx, 14, 20, total, k.proto, 0, &k))
        HANDOFF(r);
    __u16 port = bpf_ntohs(k.proto == IPPROTO_ICMP ? k.sport : k.dport);
    if (port < g->snat_lo || port > g->snat_hi)
        HANDOFF(r);
    struct flow_entry *e = bpf_map_lookup_elem(&tier_flows, &k);
    if (!e || e->v.action != FLOW_UNSNAT)
        HANDOFF(r);
    __u32 slot = e->vrf_slot;
    struct vrf *v = vrf_at(f->gen, slot);
    if (!v || !(v->flags & VRF_VALID) || !(v->flags & VRF_SNAT) || v->id != e->v.nat_vrf)
        HANDOFF(r);
    __u8 to[4];
    __builtin_memcpy(to, e->v.nat_addr, 4);
    struct route *found = route4(f->gen, slot, to);
    if (!found || found->kind != NH_VMI)
        HANDOFF(r);
    __u32 id = found->id;
    if (!fits_vmi(f->gen, v, id, fend - 14))
        HANDOFF(r);
    e = flow_hit(&k, FLOW_UNSNAT, v->generation, total);
    if (!e)
        HANDOFF(r);
    from_fabric(f, fend, ETH_P_IP, slot);
    r->nat = NAT_V4;
    r->nat_addr = rd32(e->v.nat_addr);
    r->nat_port = rd16((__u8 *)&e->v.nat_port);
    r->flow = 1;
    SEND(r, id, 1);
}

// The flow stage's entry points, by family: each has no stack of its own,
// so that the family's function sits right under the program's entry.
__noinline int tier_snat_out(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    if (f->et == ETH_P_IPV6)
        return tier_snat_out6(ctx, f, r);
    return tier_snat_out4(ctx, f, r);
}

__noinline int tier_snat_in(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    __u8 *eth = ptr_at(ctx, 0, 14);
    if (eth && rd16(eth + 12) == ETH_P_IPV6)
        return tier_snat_in6(ctx, f, r);
    return tier_snat_in4(ctx, f, r);
}

// A routed packet into a tunnel toward remote VMI slot `id` (pipeline:
// route_to_remote, route_through): its routed label (the IP packet) or
// its network's VNI (behind an Ethernet header to its MAC); encapsulated
// by tier_encap (PLAN_ENCAP) from the program's entry.
static __always_inline int plan_remote(struct frame *f, struct res *r, __u32 id)
{
    struct remote *rem = remote_at(f->gen, id);
    if (!rem || (rem->flags & REMOTE_HANDOFF))
        HANDOFF(r);
    r->q.peer = rem->peer;
    r->q.kind = rem->routed.kind;
    r->q.value = rem->routed.value;
    r->q.inner = rem->routed.kind == ENCAP_MPLS ? INNER_IP : INNER_ETH;
    mac_cp(r->q.mac, rem->mac);
    r->plan = PLAN_ENCAP;
    return 0;
}

__noinline int tier_route(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    __u32 l3 = f->base + f->hlen;
    __u32 avail = f->fend > l3 ? f->fend - l3 : 0;
    __u8 ttl;
    struct route *found;
    if (f->et == ETH_P_IP) {
        __u8 *ip = ptr_at(ctx, l3, 20);
        if (!ip || avail < 20 || (ip[0] >> 4) != 4)
            HANDOFF(r);
        __u32 ihl = (ip[0] & 0x0f) * 4;
        __u32 total = rd16(ip + 2);
        if (ihl != 20 || total < ihl || avail < total)
            HANDOFF(r);
        if (fold(sum_words(ip, 20)) != 0xffff)
            DROP(r, TD_IPV4_BAD_CHECKSUM);
        __u8 dst[4];
        __builtin_memcpy(dst, ip + 16, 4);
        if ((dst[0] & 0xf0) == 0xe0 || (dst[0] & dst[1] & dst[2] & dst[3]) == 0xff)
            DROP(r, TD_MULTICAST);
        ttl = ip[8];
        if (flow_stage(ctx, f))
            HANDOFF(r);
        found = route4(f->gen, f->vrf, dst);
    } else {
        __u8 *ip = ptr_at(ctx, l3, 40);
        if (!ip || avail < 40 || (ip[0] >> 4) != 6 || avail < 40 + (__u32)rd16(ip + 4))
            HANDOFF(r);
        __u8 dst[16];
        __builtin_memcpy(dst, ip + 24, 16);
        if (dst[0] == 0xff)
            DROP(r, TD_MULTICAST);
        ttl = ip[7];
        if (flow_stage(ctx, f))
            HANDOFF(r);
        found = route6(f->gen, f->vrf, dst);
    }
    if (!found) {
        // Leaving by the fabric: an established SNAT flow of a packet
        // from a VMI in the flow stage, the rest (first packets, IP
        // fabric forwarding) in userspace.
        struct vrf *v = vrf_at(f->gen, f->vrf);
        if (v && (v->flags & VRF_SNAT) && f->src_kind == SRC_VMI) {
            r->plan = PLAN_SNAT;
            return 0;
        }
        if (!v || (v->flags & VRF_EXIT))
            HANDOFF(r);
        DROP(r, TD_NO_ROUTE);
    }
    __u32 kind = found->kind, id = found->id;
    if (kind == NH_RECEIVE)
        HANDOFF(r);
    if (kind == NH_DISCARD)
        DROP(r, TD_DISCARD_ROUTE);
    if (ttl <= 1)
        HANDOFF(r);
    // Larger than the network's or the egress port's MTU: the ICMP error
    // path MTU discovery needs, in userspace.
    struct vrf *vrf = vrf_at(f->gen, f->vrf);
    __u32 limit = vrf ? vrf->mtu : 0;
    if (kind == NH_VMI || kind == NH_LINK) {
        struct vmi *to = vmi_at(f->gen, id);
        __u32 port_mtu = to ? to->egress_mtu : 0;
        if (port_mtu && (!limit || port_mtu < limit))
            limit = port_mtu;
    }
    if (limit && avail > limit)
        HANDOFF(r);
    if (kind == NH_VMI)
        SEND(r, id, 1);
    if (kind == NH_LINK || kind == NH_LINK_REMOTE) {
        // Into another network by a network policy, to a VMI of this
        // node or through a tunnel to one on another node (pipeline:
        // forward, police_link, then the delivery or route_through): the
        // link's flow is checked from the program's entry (tier_link),
        // where the stack has room for its key. A VMI's packets only: a
        // tunnel's into a linked network are decided by their source
        // network (userspace's), and one routed back into a tunnel is the
        // pipeline's tunnel_hairpin (a VRF_LINKED VRF's tunnel packets
        // never get here).
        if (f->src_kind != SRC_VMI)
            HANDOFF(r);
        r->slot = id;
        r->link.zone = found->zone;
        r->link.generation = found->generation;
        r->plan = kind == NH_LINK ? PLAN_LINK : PLAN_LINK_REMOTE;
        return 0;
    }
    if ((kind == NH_REMOTE || kind == NH_PEER) && f->src_kind == SRC_TUNNEL)
        DROP(r, TD_TUNNEL_HAIRPIN);
    if (kind == NH_REMOTE)
        return plan_remote(f, r, id);
    if (kind == NH_PEER) {
        struct encap *pe = vrf_peer(f->gen, f->vrf, id);
        if (!pe)
            DROP(r, TD_TUNNEL_PEER_NOT_IN_NETWORK);
        struct globals *g = globals_at(f->gen);
        if (!g)
            HANDOFF(r);
        r->q.peer = id;
        r->q.kind = pe->kind;
        r->q.value = pe->value;
        r->q.inner = INNER_ETH;
        mac_cp(r->q.mac, g->gateway_mac);
        r->plan = PLAN_ENCAP;
        return 0;
    }
    // A host port (a virtual gateway's tap): userspace writes to it.
    HANDOFF(r);
}

// ---------------------------------------------------------------------------
// A frame in its VRF, by destination MAC (pipeline: dispatch, bridge).

__noinline int tier_dispatch(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    struct vrf *vrf = vrf_at(f->gen, f->vrf);
    struct globals *g = globals_at(f->gen);
    if (!vrf || !g)
        HANDOFF(r);
    __u32 vflags = vrf->flags;
    __u8 *p = ptr_at(ctx, f->base, 14);
    if (!p || f->fend < f->base + 14)
        HANDOFF(r);
    // Broadcast and multicast: the neighbour proxy and flooding.
    if (p[0] & 1)
        HANDOFF(r);
    __u8 dst[6];
    mac_cp(dst, p);
    if (mac_eq(dst, g->gateway_mac)) {
        if (!(vflags & VRF_ROUTES))
            DROP(r, TD_ROUTING_DISABLED);
        if (f->et == ETH_P_IP)
            return tier_route(ctx, f, r);
        if (f->et != ETH_P_IPV6)
            // ARP (the proxy), and what the pipeline refuses.
            HANDOFF(r);
        __u32 l3 = f->base + f->hlen;
        __u32 avail = f->fend > l3 ? f->fend - l3 : 0;
        __u8 *ip = ptr_at(ctx, l3, 41);
        if (!ip || avail < 40 || (ip[0] >> 4) != 6 || avail < 40 + (__u32)rd16(ip + 4))
            HANDOFF(r);
        // Neighbour discovery: the proxy.
        if (ip[6] == 58 && rd16(ip + 4) >= 1 && ip[40] >= 133 && ip[40] <= 137)
            HANDOFF(r);
        return tier_route(ctx, f, r);
    }
    if (!(vflags & VRF_BRIDGES))
        DROP(r, TD_BRIDGING_DISABLED);
    struct bridge_key key = {.gen = f->gen, .vrf = f->vrf};
    mac_cp(key.mac, dst);
    struct nexthop *found = bpf_map_lookup_elem(&tier_bridge, &key);
    if (!found) {
        if (vflags & VRF_FLOOD_UNKNOWN)
            HANDOFF(r);
        DROP(r, TD_UNKNOWN_UNICAST);
    }
    __u32 kind = found->kind, id = found->id;
    if (kind == NH_VMI) {
        if (f->src_kind == SRC_VMI && f->src_id == id)
            DROP(r, TD_HAIRPIN);
        SEND(r, id, 0);
    }
    if (kind == NH_REMOTE) {
        if (f->src_kind == SRC_TUNNEL)
            DROP(r, TD_TUNNEL_HAIRPIN);
        struct remote *rem = remote_at(f->gen, id);
        if (!rem || (rem->flags & REMOTE_HANDOFF))
            HANDOFF(r);
        r->q.peer = rem->peer;
        r->q.kind = rem->bridged.kind;
        r->q.value = rem->bridged.value;
        r->q.inner = INNER_BRIDGED;
        r->plan = PLAN_ENCAP;
        return 0;
    }
    HANDOFF(r);
}

// ---------------------------------------------------------------------------
// Port security (pipeline: source::check).

// Its first fields are a `struct source_key` (the lookup of a learned
// address uses the question itself as the key: no copy on the stack of
// tier_source, which sits at the bottom of the deepest call chain).
struct source_q {
    __u32 gen;
    __u32 slot;
    __u32 family;
    __u8 addr[16];
    __u8 mac[6];
    __u16 pad;
};
_Static_assert(__builtin_offsetof(struct source_q, addr) == __builtin_offsetof(struct source_key, addr),
               "a source question starts with its source key");

// Whether `addr` (of `family`) lies in the prefix of `pair`: word by word,
// without a branch per byte.
static __always_inline int in_pair(const struct pair *pair, __u32 family, const __u8 *addr)
{
    if (pair->family != family)
        return 0;
    __u32 len = pair->prefix_len;
    __u32 words = family == 4 ? 1 : 4;
    __u32 diff = 0;
#pragma nounroll
    for (__u32 i = 0; i < 4; i++) {
        if (i >= words)
            break;
        __u32 bits = len > i * 32 ? len - i * 32 : 0;
        __u32 mask = bits >= 32 ? 0xffffffff : bits == 0 ? 0 : ~(0xffffffffu >> bits);
        diff |= (rd32(addr + 4 * i) ^ rd32(pair->addr + 4 * i)) & mask;
    }
    return diff == 0;
}

#define SRC_MAC_BAD 1  // the source MAC is neither the VMI's nor a pair's
#define SRC_IP_BAD 2   // the source address is not allowed with that MAC
#define SRC_LEARNS 4   // the source address is a pair's the VMI may take over

// What port security says of a frame's source (SRC_* bits; with `family`
// 0 only the MAC counts), and whether it would move a pair's holder.
__noinline int tier_source(struct source_q *q)
{
    if (!q)
        return SRC_MAC_BAD;
    struct vmi *v = vmi_at(q->gen, q->slot);
    if (!v)
        return SRC_MAC_BAD;
    __u32 n = v->npairs;
    int own = mac_eq(q->mac, v->mac);
    int mac_ok = own, ip_ok = 0, learns = 0;
#pragma nounroll
    for (__u32 i = 0; i < TIER_MAX_PAIRS; i++) {
        if (i >= n)
            break;
        struct pair *pair = &v->pairs[i];
        // A host pair's address: the pipeline learns who holds it from
        // any frame sent from it.
        if (q->family && pair->learns && in_pair(pair, q->family, q->addr))
            learns = 1;
        if (!mac_eq(pair->mac, q->mac))
            continue;
        mac_ok = 1;
        if (q->family && in_pair(pair, q->family, q->addr))
            ip_ok = 1;
    }
    int result = learns ? SRC_LEARNS : 0;
    if (!mac_ok)
        return result | SRC_MAC_BAD;
    if (!q->family)
        return result;
    if (!ip_ok && own)
        ip_ok = bpf_map_lookup_elem(&tier_sources, (struct source_key *)q) != 0;
    return result | (ip_ok ? 0 : SRC_IP_BAD);
}

// ---------------------------------------------------------------------------
// A frame from a trunk port.

__noinline int tier_trunk(struct xdp_md *ctx, struct frame *fp, struct res *r)
{
    if (!fp || !r)
        return 0;
    __u32 gen = fp->gen & 1, ingress = fp->ingress;
    struct frame *f = fp;
    f->base = 0;
    f->fend = frame_len(ctx);
    f->hlen = 14;
    f->tagged = 0;
    f->tci = 0;
    __u8 *p = ptr_at(ctx, 0, 18);
    if (!p) {
        p = ptr_at(ctx, 0, 14);
        if (!p)
            HANDOFF(r);
    }
    __u32 et = rd16(p + 12);
    if (et == ETH_P_8021Q) {
        __u8 *t = ptr_at(ctx, 14, 4);
        if (!t)
            HANDOFF(r);
        __u32 inner = rd16(t + 2);
        if (inner == ETH_P_8021Q || inner == ETH_P_8021AD)
            HANDOFF(r);
        f->tagged = 1;
        f->tci = rd16(t);
        f->hlen = 18;
        et = inner;
    } else if (et == ETH_P_8021AD) {
        HANDOFF(r);
    }
    f->et = et;
    struct source_q q = {.gen = gen};
    p = ptr_at(ctx, 0, 12);
    if (!p)
        HANDOFF(r);
    mac_cp(q.mac, p + 6);
    if (q.mac[0] & 1)
        HANDOFF(r);
    struct vlan_key vk = {.gen = gen, .ifindex = ingress, .vlan = f->tagged ? f->tci & 0x0fff : 0};
    __u32 *slotp = bpf_map_lookup_elem(&tier_vlans, &vk);
    if (!slotp)
        DROP(r, TD_NO_LOGICAL_INTERFACE);
    __u32 slot = *slotp;
    struct vmi *v = vmi_at(gen, slot);
    if (!v || (v->flags & VMI_HANDOFF))
        HANDOFF(r);
    r->rx_vmi = slot + 1;
    f->src_kind = SRC_VMI;
    f->src_id = slot;
    f->vrf = v->vrf;
    // What the frame says it comes from: its family and source address, or
    // 0xff for what userspace takes whatever port security says (ARP, ND,
    // DHCP client messages, malformed headers).
    q.slot = slot;
    __u32 l3 = f->hlen;
    __u32 avail = f->fend > l3 ? f->fend - l3 : 0;
    if (et == ETH_P_IP) {
        __u8 *ip = ptr_at(ctx, l3, 24);
        if (!ip || avail < 20 || (ip[0] >> 4) != 4) {
            q.family = 0xff;
        } else {
            __u32 ihl = (ip[0] & 0x0f) * 4;
            __u32 total = rd16(ip + 2);
            q.family = 4;
            __builtin_memcpy(q.addr, ip + 12, 4);
            if (ihl < 20 || total < ihl || avail < total)
                q.family = 0xff;
            // A DHCP client message (UDP to port 67): the DHCP stage.
            if (ip[9] == IPPROTO_UDP && ihl == 20 && rd16(ip + 22) == 67)
                q.family = 0xff;
            if (ip[9] == IPPROTO_UDP && ihl != 20)
                q.family = 0xff;
        }
    } else if (et == ETH_P_IPV6) {
        __u8 *ip = ptr_at(ctx, l3, 44);
        if (!ip || avail < 40 || (ip[0] >> 4) != 6 || avail < 40 + (__u32)rd16(ip + 4)) {
            q.family = 0xff;
        } else if (ip[6] == 58 && rd16(ip + 4) >= 1 && ip[40] >= 133 && ip[40] <= 137) {
            // Neighbour and router discovery (from any source) is userspace's.
            q.family = 0xff;
        } else if (ip[6] == IPPROTO_UDP && rd16(ip + 42) == 547) {
            // A DHCPv6 client message: the DHCP stage.
            q.family = 0xff;
        } else {
            q.family = 6;
            __builtin_memcpy(q.addr, ip + 8, 16);
        }
    } else if (et == ETH_P_ARP) {
        q.family = 0xff;
    }
    __u32 want = q.family;
    __u32 flags = v->flags;
    if (!(flags & (VMI_PORT_SECURITY | VMI_LEARNS))) {
        if (want == 0xff)
            HANDOFF(r);
        if (flags & VMI_POLICED) {
            r->plan = PLAN_POLICE;
            return 0;
        }
        return tier_dispatch(ctx, f, r);
    }
    if (want == 0xff)
        q.family = 0;
    int verdict = tier_source(&q);
    if ((flags & VMI_PORT_SECURITY) && (verdict & SRC_MAC_BAD))
        DROP(r, TD_SOURCE_MAC_SPOOFED);
    if (want == 0xff)
        HANDOFF(r);
    if ((flags & VMI_PORT_SECURITY) && (verdict & SRC_IP_BAD))
        DROP(r, TD_SOURCE_IP_SPOOFED);
    // A frame from a pair's address moves its holder: userspace does that.
    if (verdict & SRC_LEARNS)
        HANDOFF(r);
    // A policed VMI's egress flow: checked from the program's entry
    // (tier_police_out), where the stack has room for the key.
    if (flags & VMI_POLICED) {
        r->plan = PLAN_POLICE;
        return 0;
    }
    return tier_dispatch(ctx, f, r);
}

// A frame from policed VMI `f->src_id`, past port security (pipeline:
// the egress policing before dispatch): dispatched when an established
// flow of the VMI's zone allows it (or it is not IP), else handed off.
__noinline int tier_police_out(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    r->plan = 0;
    struct vmi *v = vmi_at(f->gen, f->src_id);
    if (!v || !(v->flags & VMI_POLICED))
        HANDOFF(r);
    int policed = police(ctx, f->base + f->hlen, f->fend, f->et, v->zone, v->generation);
    if (policed < 0)
        HANDOFF(r);
    if (policed == POLICED_ALLOWED)
        r->flow = 1;
    return tier_dispatch(ctx, f, r);
}

// A frame routed into another network by a network policy (PLAN_LINK,
// PLAN_LINK_REMOTE: the TTL and the MTU checked, the TTL not yet
// decremented; pipeline: police_link, then the delivery or the tunnel):
// when an established flow of the link's zone allows it, decided under
// its rules' generation, sent to VMI `r->slot` of this node, or planned
// into a tunnel toward remote `r->slot` (the encapsulation checks the
// tunnel's MTU and the fabric next hop, as route_through does after the
// link); else handed off (a first packet, a denied flow, a stale or idle
// entry, what moves the TCP state: the pipeline decides and counts). The
// receiver's own zone, when it is policed, is checked on delivery
// (tier_send), as the pipeline does after the link; across nodes by the
// receiving node.
__noinline int tier_link(struct xdp_md *ctx, struct frame *f, struct res *r)
{
    if (!f || !r)
        return 0;
    __u32 remote = r->plan == PLAN_LINK_REMOTE;
    r->plan = 0;
    int policed = police(ctx, f->base + f->hlen, f->fend, f->et, r->link.zone, r->link.generation);
    if (policed != POLICED_ALLOWED)
        HANDOFF(r);
    r->flow = 1;
    if (remote)
        return plan_remote(f, r, r->slot);
    SEND(r, r->slot, 1);
}

// ---------------------------------------------------------------------------
// A tunnel packet for this node (pipeline: fabric, deliver_routed,
// decapsulated_frame).

#define CROSS_UNKNOWN -1  // userspace decides (network_policy_unknown_source and the like)
#define CROSS_OWN 0       // the network's own traffic, from a peer hosting it
#define CROSS_LINK 1      // from a connected VMI on another node: r->link holds the zone

// The link a tunnel packet from peer `peer` into VRF `vrf` (VRF_LINKED)
// crosses (pipeline: link_of_source), by the route in that VRF of the
// inner source address of the IP packet at `l3` (IP version 4 or 6, its
// fixed header within the frame): CROSS_LINK, with the link's zone and
// generation in r->link, for a connected VMI on another node
// (NH_LINK_REMOTE) behind that very peer whose link has its reverse (the
// pipeline decides by the reverse, of the same zone and generation);
// CROSS_OWN for any other route, or none, when the peer hosts the
// network (`hosts`); CROSS_UNKNOWN for the rest. A global function: its
// key's stack is not the caller's.
__noinline int tier_link_of_source(struct xdp_md *ctx, struct res *r, __u32 gen_vrf,
                                   __u32 peer_hosts, __u32 l3_version)
{
    if (!r)
        return CROSS_UNKNOWN;
    __u32 gen = gen_vrf >> 31, vrf = gen_vrf & 0x7fffffff;
    __u32 peer = peer_hosts >> 1, hosts = peer_hosts & 1;
    __u32 l3 = l3_version >> 4, version = l3_version & 0xf;
    struct route *found;
    if (version == 4) {
        __u8 *ip = ptr_at(ctx, l3, 20);
        if (!ip)
            return CROSS_UNKNOWN;
        __u8 src[4];
        __builtin_memcpy(src, ip + 12, 4);
        found = route4(gen, vrf, src);
    } else if (version == 6) {
        __u8 *ip = ptr_at(ctx, l3, 40);
        if (!ip)
            return CROSS_UNKNOWN;
        __u8 src[16];
        __builtin_memcpy(src, ip + 8, 16);
        found = route6(gen, vrf, src);
    } else {
        return CROSS_UNKNOWN;
    }
    if (!found || (found->kind != NH_LINK_REMOTE && found->kind != NH_LINK))
        return hosts ? CROSS_OWN : CROSS_UNKNOWN;
    // A VMI of a connected network on this node sends no tunnel packet.
    if (found->kind != NH_LINK_REMOTE || !(found->flags & ROUTE_REVERSE))
        return CROSS_UNKNOWN;
    struct remote *rem = remote_at(gen, found->id);
    if (!rem || rem->peer != peer)
        return CROSS_UNKNOWN;
    r->link.zone = found->zone;
    r->link.generation = found->generation;
    return CROSS_LINK;
}

// The packet at `l3` of a frame ending at `fend` (EtherType `et`) crossing
// the link of r->link (pipeline: police_link): POLICED_ALLOWED by an
// established flow of its zone (then counted a flow stage hit), else
// userspace decides. A global function: the flow key's stack is not the
// caller's.
__noinline int tier_police_link(struct xdp_md *ctx, struct res *r, __u32 l3, __u32 fend, __u32 et)
{
    if (!r)
        return POLICED_UNKNOWN;
    if (police(ctx, l3, fend, et, r->link.zone, r->link.generation) != POLICED_ALLOWED)
        return POLICED_UNKNOWN;
    r->flow = 1;
    return POLICED_ALLOWED;
}

// An inner IP packet at [ip_at, end) for the VMI of routed label `slot`,
// from `peer`.
__noinline int tier_deliver(struct xdp_md *ctx, struct res *r, __u32 gen_ingress, __u32 slot,
                            __u32 peer_ip_at_end)
{
    if (!r)
        return 0;
    __u32 gen = gen_ingress >> 31;
    __u32 ingress = gen_ingress & 0x7fffffff;
    __u32 peer = peer_ip_at_end >> 22;
    __u32 ip_at = (peer_ip_at_end >> 11) & 0x7ff;
    __u32 end = peer_ip_at_end & 0x7ff;
    struct vmi *v = vmi_at(gen, slot);
    struct globals *g = globals_at(gen);
    if (!v || !g || (v->flags & VMI_HANDOFF))
        HANDOFF(r);
    __u32 vrf = v->vrf;
    struct vrf *vr = vrf_at(gen, vrf);
    if (!vr)
        HANDOFF(r);
    // Into a network a policy connects, a peer not hosting it may send a
    // connected VMI's packets (decided by their source below).
    __u32 linked = vr->flags & VRF_LINKED;
    __u32 hosts = vrf_peer(gen, vrf, peer) != 0;
    if (!hosts) {
        // A DC gateway routing for the network: userspace.
        if (vr->flags & VRF_ROUTED_PEERS)
            HANDOFF(r);
        if (!linked)
            DROP(r, TD_TUNNEL_PEER_NOT_IN_NETWORK);
    }
    __u32 avail = end > ip_at ? end - ip_at : 0;
    if (avail < 1)
        DROP(r, TD_TUNNEL_MALFORMED);
    __u8 *b = ptr_at(ctx, ip_at, 1);
    if (!b)
        HANDOFF(r);
    __u32 version = b[0] >> 4;
    __u32 ip_len;
    __u32 et;
    struct route *found;
    if (version == 4) {
        if (avail < 20)
            DROP(r, TD_TUNNEL_MALFORMED);
        __u8 *ip = ptr_at(ctx, ip_at, 20);
        if (!ip)
            HANDOFF(r);
        __u32 ihl = (ip[0] & 0x0f) * 4;
        ip_len = rd16(ip + 2);
        if (ihl < 20 || ip_len < ihl || avail < ip_len)
            DROP(r, TD_TUNNEL_MALFORMED);
        __u8 dst[4];
        __builtin_memcpy(dst, ip + 16, 4);
        found = route4(gen, vrf, dst);
        et = ETH_P_IP;
    } else if (version == 6) {
        if (avail < 40)
            DROP(r, TD_TUNNEL_MALFORMED);
        __u8 *ip = ptr_at(ctx, ip_at, 40);
        if (!ip)
            HANDOFF(r);
        ip_len = 40 + (__u32)rd16(ip + 4);
        if (avail < ip_len)
            DROP(r, TD_TUNNEL_MALFORMED);
        __u8 dst[16];
        __builtin_memcpy(dst, ip + 24, 16);
        found = route6(gen, vrf, dst);
        et = ETH_P_IPV6;
    } else {
        DROP(r, TD_TUNNEL_MALFORMED);
    }
    // The link the packet crosses, found by its source (pipeline:
    // link_of_source, before the destination's check); checked after it,
    // as police_link is.
    int crossing = CROSS_OWN;
    if (linked) {
        crossing = tier_link_of_source(ctx, r, (gen << 31) | vrf, (peer << 1) | hosts,
                                       (ip_at << 4) | version);
        if (crossing == CROSS_UNKNOWN)
            HANDOFF(r);
    }
    if (!found || found->kind != NH_VMI || found->id != slot)
        DROP(r, TD_TUNNEL_WRONG_DESTINATION);
    if (crossing == CROSS_LINK && tier_police_link(ctx, r, ip_at, end, et) != POLICED_ALLOWED)
        HANDOFF(r);
    if (!(v->flags & VMI_EGRESS))
        DROP(r, TD_VMI_UNREACHABLE);
    __u32 egress = v->egress_ifindex;
    if (!can_send(ingress, egress))
        HANDOFF(r);
    // A policed VMI's ingress (pipeline: deliver_routed, after its
    // reachability).
    if (v->flags & VMI_POLICED) {
        if (police(ctx, ip_at, end, et, v->zone, v->generation) != POLICED_ALLOWED)
            HANDOFF(r);
        r->flow = 1;
    }
    __u32 vlan = v->egress_vlan & 0x0fff;
    __u8 macs[12];
    mac_cp(macs, v->mac);
    mac_cp(macs + 6, g->gateway_mac);
    __u32 hlen = vlan ? 18 : 14;
    if (move_head(ctx, (int)ip_at - (int)hlen))
        HANDOFF(r);
    r->action = TRACE_TX;
    r->egress = egress;
    r->tx_vmi = slot + 1;
    __u8 *p = ptr_at(ctx, 0, 18);
    if (!p)
        return 0;
    __builtin_memcpy(p, macs, 12);
    if (vlan) {
        wr16(p + 12, ETH_P_8021Q);
        wr16(p + 14, vlan);
        wr16(p + 16, et);
    } else {
        wr16(p + 12, et);
    }
    cut_tail(ctx, hlen + ip_len);
    return 0;
}

// An inner Ethernet frame at [in, end) of VRF `vrf`, from `peer`.
static __always_inline int decapsulated_frame(struct xdp_md *ctx, struct frame *f,
                                              struct res *r, __u32 gen, __u32 ingress,
                                              __u32 vrf, __u32 peer, __u32 in, __u32 end)
{
    struct vrf *vr = vrf_at(gen, vrf);
    if (!vr)
        HANDOFF(r);
    // Into a network a policy connects, a peer not hosting it may send a
    // connected VMI's packets (decided by their source below).
    __u32 linked = vr->flags & VRF_LINKED;
    __u32 hosts = vrf_peer(gen, vrf, peer) != 0;
    if (!hosts) {
        if (vr->flags & VRF_ROUTED_PEERS)
            HANDOFF(r);
        if (!linked)
            DROP(r, TD_TUNNEL_PEER_NOT_IN_NETWORK);
    }
    if (end < in + 14)
        DROP(r, TD_TUNNEL_MALFORMED);
    __u8 *p = ptr_at(ctx, in, 14);
    if (!p)
        HANDOFF(r);
    __u32 et = rd16(p + 12);
    if (et == ETH_P_8021Q || et == ETH_P_8021AD)
        DROP(r, TD_TUNNEL_MALFORMED);
    if (p[6] & 1)
        DROP(r, TD_INVALID_SOURCE_MAC);
    // Into a linked network (pipeline: decapsulated_frame): an IP packet
    // by the link its source's route names, decided before the dispatch;
    // anything else only from a peer hosting the network. An IP packet
    // the pipeline cannot read its source from (tunnel_malformed: the
    // header's lengths against the frame, its version) is userspace's.
    if (linked) {
        int crossing = hosts ? CROSS_OWN : CROSS_UNKNOWN;
        __u32 l3 = in + 14;
        __u32 avail = end - l3;
        if (et == ETH_P_IP) {
            __u8 *ip = ptr_at(ctx, l3, 20);
            crossing = CROSS_UNKNOWN;
            if (ip && avail >= 20 && (ip[0] >> 4) == 4) {
                __u32 ihl = (ip[0] & 0x0f) * 4, total = rd16(ip + 2);
                if (ihl >= 20 && total >= ihl && total <= avail)
                    crossing = tier_link_of_source(ctx, r, (gen << 31) | vrf,
                                                   (peer << 1) | hosts, (l3 << 4) | 4);
            }
        } else if (et == ETH_P_IPV6) {
            __u8 *ip = ptr_at(ctx, l3, 40);
            crossing = CROSS_UNKNOWN;
            if (ip && avail >= 40 && (ip[0] >> 4) == 6 && 40 + (__u32)rd16(ip + 4) <= avail)
                crossing = tier_link_of_source(ctx, r, (gen << 31) | vrf, (peer << 1) | hosts,
                                               (l3 << 4) | 6);
        }
        if (crossing == CROSS_UNKNOWN)
            HANDOFF(r);
        if (crossing == CROSS_LINK && tier_police_link(ctx, r, l3, end, et) != POLICED_ALLOWED)
            HANDOFF(r);
    }
    f->gen = gen;
    f->ingress = ingress;
    f->base = in;
    f->fend = end;
    f->hlen = 14;
    f->tagged = 0;
    f->tci = 0;
    f->et = et;
    f->src_kind = SRC_TUNNEL;
    f->src_id = peer;
    f->vrf = vrf;
    return tier_dispatch(ctx, f, r);
}

// Whether the UDP header at `l4` goes to a tunnel port (needs 4 bytes
// before `fend`).
static __always_inline int tunnel_port(struct xdp_md *ctx, __u32 l4, __u32 fend)
{
    if (fend < l4 + 4)
        return 0;
    __u8 *u = ptr_at(ctx, l4, 4);
    if (!u)
        return 0;
    __u16 port = rd16(u + 2);
    return port == MPLS_OVER_UDP_PORT || port == VXLAN_PORT;
}

// A frame of the fabric port: r->pass when it is not a tunnel packet for
// us; a tunnel packet for us is decided when `decide` is set, else handed
// off.
__noinline int tier_fabric(struct xdp_md *ctx, struct frame *f, struct res *r, __u32 decide)
{
    if (!f || !r)
        return 0;
    __u32 gen = f->gen & 1, ingress = f->ingress;
    struct iface *iface = bpf_map_lookup_elem(&tier_ifaces, &ingress);
    if (!iface) {
        r->pass = 1;
        return 0;
    }
    __u32 fend = frame_len(ctx);
    __u8 *p = ptr_at(ctx, 0, 14);
    if (!p) {
        r->pass = 1;
        return 0;
    }
    __u32 et = rd16(p + 12);
    __u32 family, udp_at, ip_end;
    __u8 src[16] = {};
    if (et == ETH_P_IP && iface->family == 4) {
        __u8 *ip = ptr_at(ctx, 14, 20);
        if (!ip || (ip[0] >> 4) != 4) {
            r->pass = 1;
            return 0;
        }
        __u32 ihl = (ip[0] & 0x0f) * 4;
        __u32 total = rd16(ip + 2);
        __u32 d = (ip[16] ^ iface->addr[0]) | (ip[17] ^ iface->addr[1]) |
                  (ip[18] ^ iface->addr[2]) | (ip[19] ^ iface->addr[3]);
        if (ihl < 20 || total < ihl || fend - 14 < total || d || ip[9] != IPPROTO_UDP ||
            (rd16(ip + 6) & 0x3fff) || !tunnel_port(ctx, 14 + ihl, fend)) {
            r->pass = 1;
            return 0;
        }
        // A tunnel packet for us: decided here or in userspace, never the host's.
        if (!decide || ihl != 20)
            HANDOFF(r);
        ip = ptr_at(ctx, 14, 20);
        if (!ip)
            HANDOFF(r);
        if (fold(sum_words(ip, 20)) != 0xffff)
            DROP(r, TD_IPV4_BAD_CHECKSUM);
        family = 4;
        __builtin_memcpy(src, ip + 12, 4);
        udp_at = 34;
        ip_end = 14 + total;
    } else if (et == ETH_P_IPV6 && iface->family == 6) {
        __u8 *ip = ptr_at(ctx, 14, 40);
        if (!ip || (ip[0] >> 4) != 6 || fend - 14 < 40 + (__u32)rd16(ip + 4) ||
            ip[6] != IPPROTO_UDP) {
            r->pass = 1;
            return 0;
        }
        __u32 d = 0;
#pragma unroll
        for (int i = 0; i < 16; i++)
            d |= ip[24 + i] ^ iface->addr[i];
        if (d || !tunnel_port(ctx, 54, fend)) {
            r->pass = 1;
            return 0;
        }
        if (!decide)
            HANDOFF(r);
        ip = ptr_at(ctx, 14, 40);
        if (!ip)
            HANDOFF(r);
        family = 6;
        __builtin_memcpy(src, ip + 8, 16);
        udp_at = 54;
        ip_end = 54 + rd16(ip + 4);
    } else {
        r->pass = 1;
        return 0;
    }
    struct globals *g = globals_at(gen);
    if (!g || !(g->flags & GLOBAL_UNDERLAY) || g->underlay_family != family)
        HANDOFF(r);
    struct peer_addr_key pk = {.gen = gen, .family = family};
    __builtin_memcpy(pk.addr, src, 16);
    __u32 *peerp = bpf_map_lookup_elem(&tier_peer_addrs, &pk);
    if (!peerp)
        DROP(r, TD_TUNNEL_UNKNOWN_PEER);
    __u32 peer = *peerp;
    __u8 *udp = ptr_at(ctx, udp_at, 8);
    if (!udp || ip_end < udp_at + 8)
        DROP(r, TD_TUNNEL_MALFORMED);
    __u32 udp_len = rd16(udp + 4);
    if (udp_len < 8 || udp_len > ip_end - udp_at)
        DROP(r, TD_TUNNEL_MALFORMED);
    __u32 dport = rd16(udp + 2);
    if (family == 6 && rd16(udp + 6) != 0) {
        __u8 *ip = ptr_at(ctx, 14, 40);
        if (!ip)
            HANDOFF(r);
        __u32 pseudo = sum_words(ip + 8, 32) + udp_len + IPPROTO_UDP;
        int sum = tier_csum(ctx, udp_at, udp_len, pseudo);
        if (sum > 0xffff)
            HANDOFF(r);
        if (sum != 0xffff)
            DROP(r, TD_TUNNEL_MALFORMED);
    }
    __u32 payload = udp_at + 8;
    __u32 payload_end = udp_at + udp_len;
    if (payload_end > 0x7ff || peer >= TIER_MAX_PEERS)
        HANDOFF(r);
    if (dport == MPLS_OVER_UDP_PORT) {
        __u8 *m = ptr_at(ctx, payload, 4);
        if (payload_end < payload + 4 || !m || !(m[2] & 1))
            DROP(r, TD_TUNNEL_MALFORMED);
        struct label_key lk = {.gen = gen, .label = rd32(m) >> 12};
        struct nexthop *t = bpf_map_lookup_elem(&tier_labels, &lk);
        if (!t)
            DROP(r, TD_TUNNEL_UNKNOWN_LABEL);
        __u32 kind = t->kind, id = t->id;
        if (kind == LABEL_ROUTED_VRF)
            HANDOFF(r);
        if (kind == LABEL_VMI) {
            r->plan = PLAN_DELIVER;
            r->slot = id;
            r->packed = (peer << 22) | ((payload + 4) << 11) | payload_end;
            return 0;
        }
        return decapsulated_frame(ctx, f, r, gen, ingress, id, peer, payload + 4, payload_end);
    }
    __u8 *x = ptr_at(ctx, payload, 8);
    if (payload_end < payload + 8 || !x || !(x[0] & 0x08))
        DROP(r, TD_TUNNEL_MALFORMED);
    struct vni_key vk = {.gen = gen, .vni = rd32(x + 4) >> 8};
    __u32 *vrfp = bpf_map_lookup_elem(&tier_vnis, &vk);
    if (!vrfp)
        DROP(r, TD_TUNNEL_UNKNOWN_VNI);
    return decapsulated_frame(ctx, f, r, gen, ingress, *vrfp, peer, payload + 8, payload_end);
}

// ---------------------------------------------------------------------------
// North-south on the fabric (pipeline: fabric_inbound). Until the tier has
// a flow stage, what the pipeline takes in from the fabric besides tunnel
// packets is userspace's: the return of SNAT flows (TCP / UDP to the
// underlay address on a port of the SNAT range, ICMP echo replies whose
// identifier is in it, ICMP errors quoting such a packet) and packets to
// the subnets of networks with IP fabric forwarding. The same rules as the
// AF_XDP-only mode's fabric program (redirect.bpf.c), from the generation's
// image (its globals and the FABRIC_VRF routes), read whether or not the
// tables are enabled: the generation in use always holds a whole image.

static __always_inline int snat_port(struct globals *g, __u16 port)
{
    return (g->flags & GLOBAL_SNAT) && port >= g->snat_lo && port <= g->snat_hi;
}

// Whether the quoted transport at `q` (8 bytes readable) is a SNAT flow's.
static __always_inline int quoted_snat(struct globals *g, __u32 proto, const __u8 *q,
                                       __u32 icmp, __u32 echo_request)
{
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
        return snat_port(g, rd16(q));
    if (proto == icmp && q[0] == echo_request)
        return snat_port(g, rd16(q + 4));
    return 0;
}

// 1: a frame of the fabric port the pipeline takes into a VRF (hand off);
// 0: the host's (XDP_PASS).
__noinline int tier_north_south(struct xdp_md *ctx, __u32 gen)
{
    gen &= 1;
    struct globals *g = globals_at(gen);
    if (!g || !(g->flags & GLOBAL_UNDERLAY))
        return 0;
    __u8 *p = ptr_at(ctx, 0, 14);
    if (!p)
        return 0;
    __u32 et = rd16(p + 12);
    if (et == ETH_P_IP) {
        __u8 *ip = ptr_at(ctx, 14, 20);
        if (!ip)
            return 0;
        __u32 mine = g->underlay_family == 4 && ip[16] == g->underlay_addr[0] &&
                     ip[17] == g->underlay_addr[1] && ip[18] == g->underlay_addr[2] &&
                     ip[19] == g->underlay_addr[3];
        if (!mine) {
            __u8 dst[4];
            __builtin_memcpy(dst, ip + 16, 4);
            return route4(gen, FABRIC_VRF, dst) != 0;
        }
        if (!(g->flags & GLOBAL_SNAT))
            return 0;
        // A header the pipeline checks (its checksum, when SNAT is on):
        // options are userspace's, a bad checksum is its drop.
        if ((ip[0] & 0x0f) != 5 || fold(sum_words(ip, 20)) != 0xffff)
            return 1;
        if (rd16(ip + 6) & 0x3fff)
            return 0;
        __u32 ihl = (ip[0] & 0x0f) * 4;
        if (ihl < 20)
            return 0;
        __u32 proto = ip[9];
        __u8 *l4 = ptr_at(ctx, 14 + ihl, 8);
        if (!l4)
            return 0;
        if (proto == IPPROTO_UDP || proto == IPPROTO_TCP)
            return snat_port(g, rd16(l4 + 2));
        if (proto != IPPROTO_ICMP)
            return 0;
        if (l4[0] == 0)  // echo reply
            return snat_port(g, rd16(l4 + 4));
        if (l4[0] != 3 && l4[0] != 11 && l4[0] != 12)
            return 0;
        __u8 *inner = ptr_at(ctx, 14 + ihl + 8, 28);
        if (!inner || inner[0] != 0x45 || inner[12] != g->underlay_addr[0] ||
            inner[13] != g->underlay_addr[1] || inner[14] != g->underlay_addr[2] ||
            inner[15] != g->underlay_addr[3])
            return 0;
        return quoted_snat(g, inner[9], inner + 20, IPPROTO_ICMP, 8);
    }
    if (et == ETH_P_IPV6) {
        __u8 *ip = ptr_at(ctx, 14, 40);
        if (!ip)
            return 0;
        __u32 d = g->underlay_family != 6;
#pragma unroll
        for (int i = 0; i < 16; i++)
            d |= ip[24 + i] ^ g->underlay_addr[i];
        if (d) {
            __u8 dst[16];
            __builtin_memcpy(dst, ip + 24, 16);
            return route6(gen, FABRIC_VRF, dst) != 0;
        }
        if (!(g->flags & GLOBAL_SNAT))
            return 0;
        __u32 proto = ip[6];
        __u8 *l4 = ptr_at(ctx, 54, 8);
        if (!l4)
            return 0;
        if (proto == IPPROTO_UDP || proto == IPPROTO_TCP)
            return snat_port(g, rd16(l4 + 2));
        if (proto != 58)
            return 0;
        if (l4[0] == 129)  // echo reply
            return snat_port(g, rd16(l4 + 4));
        if (l4[0] < 1 || l4[0] > 4)
            return 0;
        __u8 *inner = ptr_at(ctx, 62, 48);
        if (!inner)
            return 0;
        __u32 s = 0;
#pragma unroll
        for (int i = 0; i < 16; i++)
            s |= inner[8 + i] ^ g->underlay_addr[i];
        if (s)
            return 0;
        return quoted_snat(g, inner[6], inner + 40, 58, 128);
    }
    return 0;
}

// ---------------------------------------------------------------------------

// Observe (below): what the program found for a wanted frame.

// Once a CPU's tokens for the second are spent, the clock is read again
// only every OBS_RECHECK + 1 frames counted over the rate (the low bits of
// `rate_dropped`): a spent second costs a byte's test and a count per
// frame, not a clock read and a copy (the next second's tokens come at
// most OBS_RECHECK + 1 counted frames late). A power of two less one.
#define OBS_RECHECK 63

// What obs_wanted found (the program's `observed`).
// Not wanted.
#define OBS_NO 0
// Wanted, a token left: its head is in the CPU's record.
#define OBS_RECORD 1
// Wanted, this second's tokens spent: counted by count() if the program
// decides it (drops, transmits); a frame handed off or passed is the
// pipeline's or the host's, not counted here.
#define OBS_COUNTED 2
// Wanted by a drops-only filter, tokens spent: counted by count() if the
// program drops it.
#define OBS_COUNT_DROP 3

__noinline int tier_obs_recheck(void);

// The frame's verdict into the CPU's counters; `observed` (OBS_*, of the
// observe section below): a wanted verdict over the rate is counted here,
// in the counters the frame updates anyway.
static __always_inline void count(struct xdp_md *ctx, struct res *r, __u32 rx_len,
                                  __u32 observed)
{
    __u32 zero = 0;
    struct tier_stats *s = bpf_map_lookup_elem(&tier_stats, &zero);
    if (!s)
        return;
    if (r->action == TRACE_HANDOFF) {
        s->handed_off++;
        return;
    }
    s->received++;
    // Wanted with the tokens spent (OBS_COUNTED, OBS_COUNT_DROP) and
    // decided here: over the rate. The count's low bits time the next read
    // of the clock (a new second's tokens).
    if (observed >= OBS_COUNTED && (observed == OBS_COUNTED || r->action == TRACE_DROP)) {
        if (!(++s->obs.rate_dropped & OBS_RECHECK))
            tier_obs_recheck();
    }
    __u32 out_len = frame_len(ctx);
    if (r->action == TRACE_DROP) {
        __u32 reason = r->reason;
        if (reason < TD_COUNT)
            s->drops[reason]++;
    } else {
        s->forwarded++;
        s->sent++;
        s->sent_bytes += out_len;
        if (r->flow)
            s->flow_hits++;
    }
    if (r->rx_vmi) {
        __u32 slot = r->rx_vmi - 1;
        struct vmi_stats *v = bpf_map_lookup_elem(&tier_vmi_stats, &slot);
        if (v) {
            v->rx_packets++;
            v->rx_bytes += rx_len;
            if (r->action == TRACE_DROP)
                v->rx_dropped++;
        }
    }
    if (r->tx_vmi && r->action == TRACE_TX) {
        __u32 slot = r->tx_vmi - 1;
        struct vmi_stats *v = bpf_map_lookup_elem(&tier_vmi_stats, &slot);
        if (v) {
            v->tx_packets++;
            v->tx_bytes += out_len;
        }
    }
}

static __always_inline void trace(struct res *r)
{
    __u32 zero = 0;
    struct trace *t = bpf_map_lookup_elem(&tier_trace, &zero);
    if (!t)
        return;
    t->action = r->action;
    t->reason = r->reason;
    t->egress = r->egress;
    t->rx_vmi = r->rx_vmi;
    t->tx_vmi = r->tx_vmi;
    t->seq++;
}

// ---------------------------------------------------------------------------
// Observe: a frame the filter wants has its head copied aside on arrival
// (before any rewrite); once decided here, its verdict goes into the ring,
// within the rate. What runs for every frame while armed is inline and
// touches only memory the frame touches anyway: the filter, compared in
// place, and once the CPU's tokens of the second are spent (the steady
// state under load) the filter's `spent` byte of the CPU on arrival, and
// the CPU's tier_stats in count(), where the frame's verdict is counted
// anyway. The rate, the copy and the record are global functions with
// scalar arguments (verified once; they add nothing to the paths of the
// program's entry), called for at most `rate` frames a second, once when
// the tokens run out and once every OBS_RECHECK + 1 counted frames.

// A frame the armed observation wants, on a CPU whose `spent` byte is not
// set (or above OBS_SPENT_CPUS): a token (OBS_RECORD), or the tokens of
// the second are spent: the CPU's byte set, OBS_COUNTED / OBS_COUNT_DROP.
// A new observation (epoch) starts with its tokens full.
__noinline int tier_obs_take(void)
{
    __u32 zero = 0;
    struct obs_filter *o = bpf_map_lookup_elem(&tier_observe, &zero);
    struct tier_stats *st = bpf_map_lookup_elem(&tier_stats, &zero);
    if (!o || !st)
        return OBS_NO;
    struct obs_rate *c = &st->obs;
    __u32 cpu = bpf_get_smp_processor_id();
    if (c->epoch != o->epoch) {
        c->epoch = o->epoch;
        c->second = bpf_ktime_get_ns() / 1000000000ull;
        c->tokens = o->rate;
    } else if (!c->tokens && cpu < OBS_SPENT_CPUS) {
        // The tokens ran out, maybe seconds ago: the clock once before the
        // CPU's byte is set. (A CPU above comes here for every wanted
        // frame: tier_obs_recheck gives it the next second's tokens.)
        __u64 second = bpf_ktime_get_ns() / 1000000000ull;
        if (second != c->second) {
            c->second = second;
            c->tokens = o->rate;
        }
    }
    if (c->tokens)
        return OBS_RECORD;
    __u32 spent = (o->flags & OBS_DROPS_ONLY) ? OBS_COUNT_DROP : OBS_COUNTED;
    if (cpu < OBS_SPENT_CPUS)
        o->spent[cpu] = spent;
    return spent;
}

// Every OBS_RECHECK + 1 frames counted over the rate: a new second's
// tokens (or a new observation, which tier_obs_take starts) clear the
// CPU's `spent` byte.
__noinline int tier_obs_recheck(void)
{
    __u32 zero = 0;
    struct obs_filter *o = bpf_map_lookup_elem(&tier_observe, &zero);
    struct tier_stats *st = bpf_map_lookup_elem(&tier_stats, &zero);
    if (!o || !st)
        return 0;
    struct obs_rate *c = &st->obs;
    if (c->epoch == o->epoch) {
        __u64 second = bpf_ktime_get_ns() / 1000000000ull;
        if (second == c->second)
            return 0;
        c->second = second;
        c->tokens = o->rate;
        if (!c->tokens)
            return 0;
    }
    __u32 cpu = bpf_get_smp_processor_id();
    if (cpu < OBS_SPENT_CPUS)
        o->spent[cpu] = 0;
    return 0;
}

// Whether the armed observation `o` (the caller tested OBS_ARMED) wants
// this frame (OBS_*): inline, no call, for every frame while an
// observation is armed; a frame that gets a token then has its head copied
// by tier_obs_copy.
static __always_inline __u32 obs_wanted(struct xdp_md *ctx, __u32 ingress,
                                        const struct obs_filter *o)
{
    if (o->ifindex && o->ifindex != ingress)
        return 0;
    // Read in place with as few instructions as the verifier allows (this
    // runs for every frame while an observation is armed): one bound check
    // per header, fields compared as they lie (network order; unaligned
    // packet loads are allowed where the tier runs: x86-64, arm64).
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    __u8 *l3 = (__u8 *)data + 14;
    if ((void *)l3 > end)
        return 0;
    __u16 et = *(__u16 *)((__u8 *)data + 12);
    __u32 vlan = 0;
    if (et == bpf_htons(ETH_P_8021Q)) {
        if ((void *)(l3 + 4) > end)
            return 0;
        vlan = bpf_ntohs(*(__u16 *)l3) & 0x0fff;
        et = *(__u16 *)(l3 + 2);
        l3 += 4;
    }
    if (et == bpf_htons(ETH_P_8021Q) || et == bpf_htons(0x88a8))
        return 0;
    if (o->vlan != OBS_ANY_VLAN && o->vlan != vlan)
        return 0;
    if (o->family == 4) {
        __u32 want = *(__u32 *)o->addr;
        if (et == bpf_htons(ETH_P_IP)) {
            if ((void *)(l3 + 20) > end)
                return 0;
            if (*(__u32 *)(l3 + 12) != want && *(__u32 *)(l3 + 16) != want)
                return 0;
        } else if (et == bpf_htons(ETH_P_ARP)) {
            if ((void *)(l3 + 28) > end)
                return 0;
            if (*(__u32 *)(l3 + 14) != want && *(__u32 *)(l3 + 24) != want)
                return 0;
        } else {
            return 0;
        }
    } else if (o->family == 6) {
        if (et != bpf_htons(ETH_P_IPV6) || (void *)(l3 + 40) > end)
            return 0;
        const __u32 *a = (const __u32 *)o->addr;
        const __u32 *p = (const __u32 *)(l3 + 8);
        __u32 s = (p[0] ^ a[0]) | (p[1] ^ a[1]) | (p[2] ^ a[2]) | (p[3] ^ a[3]);
        __u32 d = (p[4] ^ a[0]) | (p[5] ^ a[1]) | (p[6] ^ a[2]) | (p[7] ^ a[3]);
        if (s && d)
            return 0;
    } else if (o->family) {
        return 0;
    }
    // The steady state under load: this CPU's tokens spent, told by the
    // filter's byte, which holds what to return (OBS_COUNTED or
    // OBS_COUNT_DROP).
    __u32 cpu = bpf_get_smp_processor_id();
    if (cpu < OBS_SPENT_CPUS) {
        __u32 spent = o->spent[cpu];
        if (spent)
            return spent;
    }
    return tier_obs_take();
}

// A frame obs_wanted gave a token: its head, as it arrived, into the CPU's
// record (OBS_RECORD), or OBS_NO if it cannot be read.
__noinline int tier_obs_copy(struct xdp_md *ctx, __u32 ingress)
{
    __u32 zero = 0;
    struct obs_cpu *rec = bpf_map_lookup_elem(&tier_obs_cpu, &zero);
    if (!rec)
        return 0;
    __u32 n = frame_len(ctx);
    if (n >= OBS_HEAD) {
        n = OBS_HEAD;
        if (bpf_xdp_load_bytes(ctx, 0, rec->rec.head, OBS_HEAD))
            return 0;
    } else {
        // The mask changes nothing (n < OBS_HEAD) but bounds the very
        // register the helper is given.
        asm volatile("" : "+r"(n));
        n &= OBS_HEAD - 1;
        if (n < 14 || bpf_xdp_load_bytes(ctx, 0, rec->rec.head, n))
            return 0;
    }
    rec->rec.len = n;
    rec->rec.ifindex = ingress;
    return OBS_RECORD;
}

// A frame obs_wanted gave a token (OBS_RECORD, its head copied) was
// decided here: `action` (TRACE_DROP or TRACE_TX), with `reason` or
// `egress`. Records it, within the rate; every verdict the filter wants
// and the ring does not get is counted, and only those (over the rate:
// count()).
__noinline int tier_obs_end(struct xdp_md *ctx, __u32 action, __u32 reason, __u32 egress)
{
    __u32 zero = 0;
    struct obs_filter *o = bpf_map_lookup_elem(&tier_observe, &zero);
    struct tier_stats *st = bpf_map_lookup_elem(&tier_stats, &zero);
    struct obs_cpu *rec = bpf_map_lookup_elem(&tier_obs_cpu, &zero);
    if (!o || !st || !rec)
        return 0;
    struct obs_rate *c = &st->obs;
    if ((o->flags & OBS_DROPS_ONLY) && action != TRACE_DROP)
        return 0;
    if (!c->tokens) {
        c->rate_dropped++;
        return 0;
    }
    c->tokens--;
    rec->rec.ns = bpf_ktime_get_ns();
    rec->rec.action = action;
    rec->rec.reason = action == TRACE_DROP ? reason : 0;
    rec->rec.egress = action == TRACE_TX ? egress : 0;
    rec->rec.out_vlan = OBS_ANY_VLAN;
    if (action == TRACE_TX) {
        __u8 *eth = ptr_at(ctx, 0, 18);
        if (eth && rd16(eth + 12) == ETH_P_8021Q)
            rec->rec.out_vlan = rd16(eth + 14) & 0x0fff;
    }
    if (bpf_ringbuf_output(&tier_obs_ring, &rec->rec, sizeof(rec->rec), 0))
        c->ring_full++;
    return 0;
}

SEC("xdp")
int trunkline_tier(struct xdp_md *ctx)
{
    __u32 ingress = ctx->ingress_ifindex;
    struct iface *iface = bpf_map_lookup_elem(&tier_ifaces, &ingress);
    if (!iface)
        return XDP_PASS;
    __u32 queue = ctx->rx_queue_index;
    if (queue >= TIER_QUEUES)
        return XDP_PASS;
    __u32 xsk = iface->xsk_base + queue;
    __u32 kind = iface->kind;
    struct res r = {};
    __u32 rx_len = frame_len(ctx);
    __u32 zero = 0;
    __u32 *state = bpf_map_lookup_elem(&tier_state, &zero);
    __u32 st = state ? *(volatile __u32 *)state : 0;
    __u32 gen = st & STATE_GEN;
    struct port_key pk = {.gen = gen, .ifindex = ingress};
    struct port *port = (st & STATE_ENABLED) ? bpf_map_lookup_elem(&tier_ports, &pk) : 0;
    __u32 role = port && !(port->flags & PORT_HANDOFF) ? port->role : 0;

    // Observe: off, one lookup and a branch.
    struct obs_filter *obs = bpf_map_lookup_elem(&tier_observe, &zero);
    __u32 observed = obs && (obs->flags & OBS_ARMED) ? obs_wanted(ctx, ingress, obs) : OBS_NO;
    if (observed == OBS_RECORD)
        observed = tier_obs_copy(ctx, ingress);

    struct frame f = {.gen = gen, .ingress = ingress};
    // A frame longer than an AF_XDP buffer is handed off undecided: the
    // socket refuses it, as in the AF_XDP-only mode (a counted drop).
    __u32 fits = rx_len <= TIER_MAX_FRAME;
    if (kind == IFACE_FABRIC) {
        // Without tables for it, only tunnel packets for us go to userspace.
        tier_fabric(ctx, &f, &r, role == PORT_FABRIC && fits);
        // North-south: SNAT returns of established flows in the flow
        // stage; the rest (first packets, ICMP errors, IP fabric
        // subnets) userspace's.
        // A frame passed is the host's: neither recorded nor counted.
        if (r.pass && !tier_north_south(ctx, gen))
            return XDP_PASS;
        if (r.pass && role == PORT_FABRIC && fits)
            tier_snat_in(ctx, &f, &r);
        r.pass = 0;
    } else if (role == PORT_GATEWAY && fits) {
        tier_trunk(ctx, &f, &r);
    }
    if (!r.action && r.plan == PLAN_POLICE)
        tier_police_out(ctx, &f, &r);
    if (!r.action && (r.plan == PLAN_LINK || r.plan == PLAN_LINK_REMOTE))
        tier_link(ctx, &f, &r);
    if (!r.action) {
        if (r.plan == PLAN_SEND)
            tier_send(ctx, &f, &r, r.slot, r.routed);
        else if (r.plan == PLAN_ENCAP)
            tier_encap(ctx, &f, &r, &r.q);
        else if (r.plan == PLAN_DELIVER)
            tier_deliver(ctx, &r, (gen << 31) | ingress, r.slot, r.packed);
        else if (r.plan == PLAN_SNAT)
            tier_snat_out(ctx, &f, &r);
    }
    if (!r.action)
        r.action = TRACE_HANDOFF;
    count(ctx, &r, rx_len, observed);
    if (trace_enabled)
        trace(&r);
    if (observed == OBS_RECORD && r.action != TRACE_HANDOFF)
        tier_obs_end(ctx, r.action, r.reason, r.egress);
    switch (r.action) {
    case TRACE_DROP:
        return XDP_DROP;
    case TRACE_TX:
        if (r.egress == ingress)
            return XDP_TX;
        return bpf_redirect_map(&tier_devmap, r.egress, 0);
    default:
        return bpf_redirect_map(&tier_xsks, xsk, XDP_PASS);
    }
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
