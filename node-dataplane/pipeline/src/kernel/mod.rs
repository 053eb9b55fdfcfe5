//! The XDP tier's view of the tables: what the kernel program
//! (`node-dataplane/xdp/bpf/tier.bpf.c`) looks up, built from compiled
//! [`Tables`](crate::Tables), and how it reaches the maps.
//!
//! The Rust pipeline is the specification. The program decides the common
//! case from an image of the tables and hands every other frame, untouched,
//! to the AF_XDP socket of its port, where [`Pipeline::process`](crate::Pipeline::process)
//! decides it as before. It decides in the kernel:
//!
//! - a frame from a trunk: (port, VLAN) to VMI, port security (source MAC,
//!   source IP, allowed address pairs up to four), then by destination MAC
//!   in the VMI's VRF: routed IPv4 and IPv6 (longest prefix, TTL or hop
//!   limit with the incremental checksum) to a VMI of this node (MACs,
//!   re-tag) or through a tunnel; bridged to a VMI of this node (re-tag) or
//!   through a tunnel; the drops on that way that need no answer
//!   ([`KERNEL_DROPS`]);
//! - a tunnel packet for the node on the fabric port: decapsulated, as
//!   above (routed label to its VMI; network label or VNI into its VRF);
//!   anything else on the fabric passes to the host.
//!
//! It hands off what the gateway answers or originates (within the
//! pipeline's budgets): ARP, neighbour discovery and router solicitations,
//! echo and everything to a gateway address, DHCP client messages, TTL or
//! hop limit at 1 (ICMP time exceeded), routed packets larger than the
//! network's, the egress port's or the tunnel's MTU (ICMP errors); and
//! broadcast, multicast and flooding, IPv4 options, host ports (virtual
//! gateway taps), malformed frames, VMIs with more than four allowed address
//! pairs, frames longer than an AF_XDP buffer, and frames governed by a
//! runtime cell the image does not mirror (an allowed address pair's
//! holder: routes to the pair, frames sent from its address).
//!
//! Its flow stage translates established SNAT flows (IPv4 TCP without
//! SYN/FIN/RST, UDP, ICMP echo; both ways) from `tier_flows`, which the
//! agent keeps equal to the pipeline's flow table ([`flows`]); the first
//! packet of a flow, and anything its entry cannot vouch for, is handed
//! off.
//!
//! ```text
//!  Tables ──Mirror::build──> Image: (map, key without generation) -> value
//!                                │   slots stable across builds (Slots)
//!  Mirror::install(image, writer)│
//!    diff against what the idle generation holds ──> its writes
//!    flip `tier_state` to it ──> synchronize (RCU grace period)
//! ```
//!
//! # Maps (`tier.h`)
//!
//! | map | key | value |
//! |---|---|---|
//! | `tier_state` | 0 | generation (bit 0), installed (bit 1) |
//! | `tier_globals` | gen | gateway MAC, underlay address, MAC, MTU, fabric ifindex |
//! | `tier_ports` | gen, ifindex | role (trunk, fabric), flags |
//! | `tier_vlans` | gen, ifindex, VLAN | VMI slot |
//! | `tier_vmis` | gen × 8192 + slot | VRF, MAC, flags, egress ifindex, VLAN and MTU, pairs |
//! | `tier_sources` | gen, VMI, family, address | (a VMI's address) |
//! | `tier_vrfs` | gen × 4096 + slot | routes / bridges / floods unknown unicast / exit / SNAT, MTU, VRF id and flow generation |
//! | `tier_routes4`, `tier_routes6` | LPM: gen, VRF, address | next hop (receive, VMI, remote, peer, port, discard, pair) |
//! | `tier_bridge` | gen, VRF, MAC | VMI or remote VMI |
//! | `tier_remotes` | gen × 8192 + slot | peer, MAC, routed and bridged encapsulation |
//! | `tier_peers` | gen × 1024 + slot | address, underlay next hop MAC (a runtime cell) |
//! | `tier_peer_addrs` | gen, address | peer slot |
//! | `tier_vrf_peers` | gen, VRF, peer | what bridged frames toward it carry |
//! | `tier_labels`, `tier_vnis` | gen, label / VNI | VMI or VRF |
//! | `tier_stats`, `tier_vmi_stats` | 0 / VMI slot | per-CPU counters ([`KernelCounters`]) |
//! | `tier_flows` (LRU hash, no generation: each entry carries the VRF generation it was decided under) | VRF id, 5-tuple ([`crate::flow::FlowKey`]) | [`crate::flow::FlowValue`], idle timeout, VRF slot, fabric next hop ([`flows`]) |
//! | `tier_observe`, `tier_obs_cpu`, `tier_obs_ring` | 0 / 0 / (ring) | an observation's filter (with a byte per CPU: its tokens spent), its per-CPU record, its records; the rate is in `tier_stats` ([`observe`]) |
//!
//! The I/O layer owns `tier_ifaces` (ifindex to the port's kind and AF_XDP
//! slot), `tier_xsks` and `tier_devmap`, written when it opens a port.
//!
//! # Runtime cells
//!
//! The underlay next hop of each peer, a runtime cell of the tables, is
//! part of the image: the agent builds the image again when it changes
//! ([`Tables::cells_version`](crate::Tables::cells_version)) and installs
//! it like any other change, which writes only the entries that differ (a
//! next hop: one peer entry). A cell the image does not carry must make the
//! entries it governs hand off (the `*_HANDOFF` flags, `NH_PAIR`,
//! `VMI_LEARNS`), never be ignored: today the holder of an allowed address
//! pair's address, which the pipeline learns from traffic, and gateway HA's
//! cells (a group's role, a multi-homed VMI's path and `seen` mark): a
//! member port is `PORT_HANDOFF`, a VMI that is multi-homed or whose logical
//! interface is on a member port is `VMI_HANDOFF`, and a multi-homed remote
//! VMI is `REMOTE_HANDOFF`. A role flip or a path move therefore changes
//! nothing in the maps (the image does not depend on them; the differential
//! test checks it), and takes effect at once in the pipeline. The flow
//! table is mirrored for SNAT only: a policed VMI (security groups) is
//! `VMI_HANDOFF`. The fabric next hop a SNAT entry carries is copied from
//! the neighbour cache: a changed or forgotten MAC
//! ([`NeighbourCache::changes`](crate::neighbours::NeighbourCache::changes))
//! makes the agent write every entry again.

mod counters;
#[cfg(test)]
pub(crate) mod differential;
pub mod flows;
mod image;
pub mod layout;
mod mirror;
pub mod observe;
mod slots;

pub use counters::{KERNEL_DROPS, KernelCounters, STATS_SIZE, VMI_STATS_SIZE, vmi_from_per_cpu};
pub use image::{Change, Image};
pub use layout::{Key, Keying, TierMap};
pub use mirror::{Installed, MapWriter, Mirror};
pub use slots::Slots;
