// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
//
// The maps of the XDP tier (tier.bpf.c): their keys and values. The Rust
// side writes the same bytes (trunkline-pipeline, module `kernel`, which
// builds them from the compiled tables); a change here is a change there,
// and the differential test (BPF_PROG_RUN against the Rust pipeline) fails
// until both agree.
//
// Integers are in host byte order, addresses and MACs in network order.
// Every struct is laid out without implicit padding.
//
// Generations: every map holding the tables' contents has the generation
// (0 or 1) in its key (or, for arrays, in the index: gen * MAX + slot). A
// frame reads `tier_state` once and looks up only entries of that
// generation; the agent writes the other one, flips `tier_state`, and waits
// for an RCU grace period (`tier_sync`) before it touches the old one.
#ifndef TRUNKLINE_TIER_H
#define TRUNKLINE_TIER_H

#include <linux/types.h>

#define TIER_MAX_VMIS 8192
#define TIER_MAX_VRFS 4096
#define TIER_MAX_PEERS 1024
#define TIER_MAX_REMOTES 8192
#define TIER_MAX_PAIRS 4
// XSKMAP slots per port: one per receive queue.
#define TIER_QUEUES 64
#define TIER_MAX_IFACES 64
#define TIER_MAX_ROUTES 65536
#define TIER_MAX_ENTRIES 65536
// The largest frame an AF_XDP buffer takes (trunkline_xdp::FAST_PATH_MAX_FRAME):
// a longer one goes the AF_XDP path's way (its socket refuses it, counted as
// rx_kernel_dropped), so the tier never carries what the userspace path cannot.
#define TIER_MAX_FRAME 1728

// tier_state: one u32. Bit 0: the generation frames use; bit 1: the tables
// are installed (until then every frame of a trunk is handed off).
#define STATE_GEN 1u
#define STATE_ENABLED 2u

// ifaces (written by the I/O layer when it opens a port): ifindex -> iface.
#define IFACE_TRUNK 1
#define IFACE_FABRIC 2
struct iface {
    __u32 xsk_base;  // first XSKMAP slot of the port (+ rx queue)
    __u32 kind;      // IFACE_*
    __u32 family;    // fabric: 4 or 6, the underlay address' family
    __u8 addr[16];   // fabric: the underlay address (IPv4 in the first 4)
};

// globals: ARRAY[2], index gen.
#define GLOBAL_UNDERLAY 1
#define GLOBAL_SNAT 2  // some network translates: snat_lo..snat_hi are its ports
struct globals {
    __u8 gateway_mac[6];
    __u8 underlay_mac[6];
    __u32 flags;            // GLOBAL_*
    __u32 underlay_family;  // 4 or 6
    __u8 underlay_addr[16];
    __u32 fabric_ifindex;   // 0: the fabric port is not open: hand off
    __u32 mtu;              // the fabric's MTU
    __u16 snat_lo;          // the ports SNAT translates to (GLOBAL_SNAT)
    __u16 snat_hi;
};

// ports: HASH {gen, ifindex} -> port.
#define PORT_GATEWAY 1
#define PORT_FABRIC 2
#define PORT_HANDOFF 1  // flag: every frame of the port goes to userspace
struct port_key {
    __u32 gen;
    __u32 ifindex;
};
struct port {
    __u32 role;   // PORT_GATEWAY or PORT_FABRIC
    __u32 flags;  // PORT_HANDOFF
};

// vlans: HASH {gen, ifindex, vlan} -> VMI slot.
struct vlan_key {
    __u32 gen;
    __u32 ifindex;
    __u32 vlan;
};

// vmis: ARRAY[2 * TIER_MAX_VMIS], index gen * TIER_MAX_VMIS + slot.
#define VMI_VALID 1
#define VMI_PORT_SECURITY 2
#define VMI_HANDOFF 4   // frames from or to it go to userspace
#define VMI_EGRESS 8    // it has an egress logical interface
#define VMI_LEARNS 16   // a frame from a pair's address makes it the holder: userspace
#define VMI_POLICED 32  // security groups: its flows pass by established flow entries only
struct pair {
    __u8 family;      // 4 or 6
    __u8 prefix_len;
    __u8 learns;      // 1: a frame from this address moves the pair's holder
    __u8 pad;
    __u8 mac[6];
    __u16 pad2;
    __u8 addr[16];    // the prefix (host bits clear)
};
struct vmi {
    __u32 flags;           // VMI_*
    __u32 vrf;             // VRF slot
    __u8 mac[6];
    __u16 egress_vlan;
    __u32 egress_ifindex;  // with VMI_EGRESS; 0: its port is not open: hand off
    __u32 egress_mtu;      // the egress port's MTU; 0: none declared
    __u32 npairs;          // allowed address pairs (at most TIER_MAX_PAIRS)
    struct pair pairs[TIER_MAX_PAIRS];
    __u32 zone;            // VMI_POLICED: its flows' zone (flow_key.vrf)
    __u32 generation;      // VMI_POLICED: its rules' generation (flow_value.generation)
};

// sources: HASH {gen, vmi slot, family, addr} -> 1: the VMI's addresses.
struct source_key {
    __u32 gen;
    __u32 vmi;
    __u32 family;
    __u8 addr[16];
};

// vrfs: ARRAY[2 * TIER_MAX_VRFS], index gen * TIER_MAX_VRFS + slot.
#define VRF_VALID 1
#define VRF_ROUTES 2
#define VRF_BRIDGES 4
#define VRF_FLOOD_UNKNOWN 8
#define VRF_EXIT 16          // leaves by the fabric (SNAT, IP fabric): a route miss is userspace's
#define VRF_ROUTED_PEERS 32  // DC gateways route for it: their tunnel packets are userspace's
#define VRF_SNAT 64          // its exit is SNAT: the flow stage may translate its flows
#define VRF_LINKED 128       // a network policy connects it: a tunnel packet into it is
                             // decided by its inner source's route (a connected VMI's
                             // NH_LINK_REMOTE, or the network's own from its peers)
// The pseudo VRF slot of the routes4 / routes6 tries holding the subnets of
// networks with IP fabric forwarding (NH_NORTH_SOUTH): what the fabric
// routes back to this node.
#define FABRIC_VRF 0x00ffffff
struct vrf {
    __u32 flags;
    __u32 mtu;         // the network's MTU; 0: none declared
    __u32 id;          // its id in flow keys (the pipeline's VRF id, its VNI)
    __u32 generation;  // what its flows are decided under (flow_value.generation)
};

// routes4 / routes6: LPM_TRIE. The data is the generation and VRF slot
// (big endian: gen << 24 | vrf) followed by the address; prefixlen is 32
// plus the route's prefix length.
struct route4_key {
    __u32 prefixlen;
    __u8 data[8];
};
struct route6_key {
    __u32 prefixlen;
    __u8 data[20];
};
#define NH_RECEIVE 1
#define NH_VMI 2
#define NH_REMOTE 3
#define NH_PEER 4
#define NH_PORT 5
#define NH_DISCARD 6
#define NH_PAIR 7  // whoever holds an allowed pair's address now (a runtime cell): userspace
#define NH_NORTH_SOUTH 8  // a DC gateway's route, an IP fabric subnet: userspace
#define NH_LINK_REMOTE 9  // a VMI on another node of a network a network policy connects
                          // (id: its remote slot): by the link's established flows
                          // (route's zone, generation), then encapsulated as NH_REMOTE
#define NH_LINK 10  // a VMI of this node of a network a network policy connects (id: its
                    // slot): by the link's established flows (route's zone, generation)
struct nexthop {
    __u32 kind;  // NH_*
    __u32 id;    // VMI, remote or peer slot
};
// The value of routes4 / routes6: a next hop and, for NH_LINK and
// NH_LINK_REMOTE, the link's flows: their zone (flow_key.vrf; both
// directions of a connection share it, disjoint from VRF ids) and the
// generation of its rules (flow_value.generation; the same for both
// directions when both exist). Zero for every other kind.
#define ROUTE_REVERSE 1  // NH_LINK_REMOTE: the link has its reverse direction, by which
                         // the receiver decides a tunnel packet from that VMI
struct route {
    __u32 kind;  // NH_*
    __u32 id;    // as struct nexthop's
    __u32 zone;
    __u32 generation;
    __u32 flags;  // ROUTE_*
};

// bridge: HASH {gen, vrf, mac} -> nexthop (NH_VMI or NH_REMOTE).
struct bridge_key {
    __u32 gen;
    __u32 vrf;
    __u8 mac[6];
    __u16 pad;
};

#define ENCAP_MPLS 1
#define ENCAP_VXLAN 2
struct encap {
    __u32 kind;   // ENCAP_*
    __u32 value;  // label or VNI
};

// remotes: ARRAY[2 * TIER_MAX_REMOTES], index gen * TIER_MAX_REMOTES + slot:
// the remote VMIs of this node's networks, and the VMIs on other nodes of
// the networks a network policy connects to them (NH_LINK_REMOTE's; only
// `routed` is used, `bridged` is zero).
#define REMOTE_VALID 1
#define REMOTE_HANDOFF 2
struct remote {
    __u32 flags;
    __u32 peer;  // peer slot
    __u8 mac[6];
    __u16 pad;
    struct encap routed;
    struct encap bridged;
};

// peers: ARRAY[2 * TIER_MAX_PEERS], index gen * TIER_MAX_PEERS + slot.
#define PEER_VALID 1
#define PEER_RESOLVED 2
struct peer {
    __u32 flags;
    __u32 family;
    __u8 addr[16];
    __u8 next_hop[6];  // with PEER_RESOLVED
    __u16 pad;
};

// peer_addrs: HASH {gen, family, addr} -> peer slot.
struct peer_addr_key {
    __u32 gen;
    __u32 family;
    __u8 addr[16];
};

// vrf_peers: HASH {gen, vrf, peer} -> encap: the peers hosting a network
// and what its bridged frames toward each carry.
struct vrf_peer_key {
    __u32 gen;
    __u32 vrf;
    __u32 peer;
};

// labels: HASH {gen, label} -> nexthop: kind LABEL_VMI (a VMI's routed
// label, id its slot), LABEL_VRF (a network's bridged label, id the VRF)
// or LABEL_ROUTED_VRF (a network's routed label, from DC gateways: an IP
// packet routed in the VRF, which userspace does).
#define LABEL_VMI 1
#define LABEL_VRF 2
#define LABEL_ROUTED_VRF 3
struct label_key {
    __u32 gen;
    __u32 label;
};
// vnis: HASH {gen, vni} -> VRF slot.
struct vni_key {
    __u32 gen;
    __u32 vni;
};

// flows: LRU_HASH flow_key -> flow_entry: the flow stage. Established
// flows of the pipeline's flow table (trunkline-pipeline `flow.rs`, whose
// FlowKey / FlowValue have these very bytes), written by the agent after
// the pipeline decides a flow's first packet, deleted when the pipeline's
// flow goes; not part of the tables' generation swap (an entry carries the
// generation of the configuration it was decided under: the VRF's
// `generation` must equal it, or the frame is handed off and decided
// again). The program reads entries and writes only `last_seen_ns`,
// `packets` and `bytes` (a policed flow's: `last_seen_ns` alone, at most
// once a second); the agent reads `last_seen_ns` before it expires a
// flow. Keys are as the packet enters a VRF: `vrf` is the VRF's id
// (FLOW_FABRIC_VRF for the fabric). Security groups (issue 18) key their
// flows the same way with the VMI's zone in `vrf` (`struct vmi`'s `zone`,
// high bit set: disjoint from VRF ids) and its rules' generation: a
// policed VMI's frame passes in the kernel only by a FLOW_FORWARD entry
// (either direction) of the sender's zone (egress) and of the receiver's
// zone (ingress), each when the VMI is policed. Network policies' links
// (a route of kind NH_LINK or NH_LINK_REMOTE) key theirs with the
// connection's zone (`struct route`'s `zone`, bits 31 and 30 set) and its
// rules' generation: a frame crosses into the other network in the kernel
// only by a FLOW_FORWARD entry (either direction) of that zone, besides
// the VMIs' own zones; the program writes only `last_seen_ns`, as for a
// policed flow.
#define FLOW_FABRIC_VRF 0
#define TIER_MAX_FLOWS 524288
#define FLOW_FORWARD 0
#define FLOW_DENY 1
#define FLOW_SNAT 2    // rewrite the source to nat_addr:nat_port, out of the fabric
#define FLOW_UNSNAT 3  // rewrite the destination to nat_addr:nat_port, into VRF nat_vrf
struct flow_key {
    __u32 vrf;
    __u8 family;  // 4 or 6
    __u8 proto;
    __u8 pad[2];
    __u8 src[16];
    __u8 dst[16];
    __u16 sport;  // network order; ICMP echo: the identifier
    __u16 dport;  // network order; ICMP echo: 0
};
struct flow_value {
    __u8 action;  // FLOW_*
    __u8 tcp;     // TCP_* bits seen (userspace's)
    __u8 pad[2];
    __u32 generation;
    __u32 nat_vrf;
    __u8 nat_addr[16];
    __u16 nat_port;  // network order
    __u8 pad2[2];
    __u64 last_seen_ns;  // bpf_ktime_get_ns (CLOCK_MONOTONIC)
    __u64 packets;
    __u64 bytes;
};
// What the kernel needs besides the pipeline's value: the runtime cells
// the pipeline looks up per packet, as they were when the entry was
// written (the agent writes the entry again when they change).
struct flow_entry {
    struct flow_value v;
    __u64 idle_ns;      // the flow's idle timeout now (by protocol and TCP state)
    __u32 vrf_slot;     // FLOW_UNSNAT: the slot of VRF nat_vrf
    __u8 next_hop[6];   // FLOW_SNAT: the fabric next hop's MAC; zero: hand off
    __u8 pad[6];
};

// The frames the kernel drops itself, each counted under the pipeline's
// reason of the same name (the Rust side maps them in this order).
enum tier_drop {
    TD_NO_LOGICAL_INTERFACE,
    TD_SOURCE_MAC_SPOOFED,
    TD_SOURCE_IP_SPOOFED,
    TD_IPV4_BAD_CHECKSUM,
    TD_MULTICAST,
    TD_NO_ROUTE,
    TD_DISCARD_ROUTE,
    TD_VMI_UNREACHABLE,
    TD_HAIRPIN,
    TD_UNKNOWN_UNICAST,
    TD_ROUTING_DISABLED,
    TD_BRIDGING_DISABLED,
    TD_INVALID_SOURCE_MAC,
    TD_TUNNEL_UNKNOWN_PEER,
    TD_TUNNEL_UNKNOWN_LABEL,
    TD_TUNNEL_UNKNOWN_VNI,
    TD_TUNNEL_PEER_NOT_IN_NETWORK,
    TD_TUNNEL_MALFORMED,
    TD_TUNNEL_WRONG_DESTINATION,
    TD_TUNNEL_HAIRPIN,
    TD_TUNNEL_UNRESOLVED,
    TD_TUNNEL_MTU_EXCEEDED,
    TD_COUNT,
};

// stats: PERCPU_ARRAY[1]: what the kernel decided.
// An observation's rate on one CPU: its tokens and what it did not
// record. Kept in the CPU's tier_stats, beside the counters every frame
// updates, so that counting a wanted frame over the rate (the steady state
// under load, in count()) touches no memory the frame would not touch
// anyway; whether the tokens are spent is told by the filter's `spent`.
struct obs_rate {
    __u32 tokens;
    __u32 epoch;         // the observation the tokens are for
    __u32 pad[2];
    __u64 rate_dropped;  // matching verdicts over the rate
    __u64 second;        // the second (ns / 1e9) the tokens are for
    __u64 ring_full;     // matching verdicts the ring had no room for
};
struct tier_stats {
    __u64 received;    // frames decided here (forwarded + dropped)
    __u64 forwarded;   // sent to one egress
    __u64 sent;        // handed to the kernel's transmit (XDP_TX, devmap)
    __u64 sent_bytes;
    __u64 handed_off;  // to userspace (AF_XDP), not counted above
    struct obs_rate obs;
    __u64 drops[TD_COUNT];
    __u64 flow_hits;   // of `forwarded`: decided by the flow stage (a SNAT flow
                       // translated, a policed VMI's flow allowed, a network
                       // policy's connection crossed)
};

// vmi_stats: PERCPU_ARRAY[TIER_MAX_VMIS], index VMI slot.
struct vmi_stats {
    __u64 rx_packets;
    __u64 rx_bytes;
    __u64 rx_dropped;
    __u64 tx_packets;
    __u64 tx_bytes;
};

// trace: ARRAY[1], written per frame only when the loader sets
// `trace_enabled` (tests): what the program decided for the last frame.
#define TRACE_HANDOFF 1
#define TRACE_DROP 2
#define TRACE_TX 3
#define TRACE_PASS 4
struct trace {
    __u32 action;  // TRACE_*
    __u32 reason;  // enum tier_drop, with TRACE_DROP
    __u32 egress;  // ifindex, with TRACE_TX
    __u32 rx_vmi;  // VMI slot + 1, or 0
    __u32 tx_vmi;  // VMI slot + 1, or 0
    __u32 seq;     // +1 per traced frame
};

// Observe (an Observe PacketTrace running on the node): the agent writes a
// filter into `tier_observe` while one runs; the program records the
// verdicts it makes itself (drops and transmits; what it hands off is the
// pipeline's to sample) for matching frames into the ring `tier_obs_ring`,
// at most `rate` records a second per CPU. Off (flags 0) costs one lookup
// and a branch per frame.
#define OBS_ARMED 1
#define OBS_DROPS_ONLY 2
#define OBS_ANY_VLAN 0xffffffffu
// CPUs whose spent tokens the filter tells (`spent`); a CPU above reads its
// rate for every wanted frame.
#define OBS_SPENT_CPUS 64
// How many bytes of the frame, as it arrived, a record keeps.
#define OBS_HEAD 64
// observe: ARRAY[1].
struct obs_filter {
    __u32 flags;     // OBS_*; 0: no observation
    __u32 ifindex;   // the ingress port; 0: any
    __u32 vlan;      // 0 untagged; OBS_ANY_VLAN: any
    __u32 family;    // from or to addr: 4 or 6; 0: any address
    __u8 addr[16];
    __u32 rate;      // records a second, per CPU
    __u32 epoch;     // changes with every observation: its tokens start full
    // Written by the program, zero when the agent arms: not 0, CPU n
    // (below OBS_SPENT_CPUS) has spent its tokens of this second, so a
    // frame the filter wants there is counted, not recorded, without
    // reading the CPU's rate; the value is what the program then found
    // (tier.bpf.c's OBS_COUNTED or OBS_COUNT_DROP). One byte per CPU:
    // each CPU writes only its own.
    __u8 spent[OBS_SPENT_CPUS];
};
// The ring's records.
struct obs_record {
    __u64 ns;        // bpf_ktime_get_ns (CLOCK_MONOTONIC)
    __u32 ifindex;   // the ingress port
    __u32 action;    // TRACE_DROP or TRACE_TX
    __u32 reason;    // enum tier_drop, with TRACE_DROP
    __u32 egress;    // ifindex, with TRACE_TX
    __u32 out_vlan;  // with TRACE_TX: the VLAN it left with; OBS_ANY_VLAN: untagged
    __u32 len;       // bytes of head
    __u8 head[OBS_HEAD];  // the frame's first bytes as it arrived
};
// obs_cpu: PERCPU_ARRAY[1]: the record being built (the frame's head is
// copied before the program rewrites it); the rate is in tier_stats.
struct obs_cpu {
    struct obs_record rec;
};
#endif
