//! The devices under test. Each mode forwards the same flow, VLAN 100 on
//! port `in` to VLAN 200 on port `out`, rewriting the MACs and the TTL;
//! modes (a)-(d) on one node, (e)-(g) across two nodes joined by a fabric
//! link (node A holds `in`, node B holds `out`):
//!
//! | mode | device | per frame |
//! |---|---|---|
//! | (a) | `trunkline-dataplane`, AF_XDP, objects from the real control plane | (port, VLAN) -> LI -> VMI, source MAC/IP check, LPM in the VRF, TTL, MACs, re-tag |
//! | (b) | bare AF_XDP forwarder over `trunkline-xdp` | constant rewrite of MACs, tag and TTL: no parsing, no lookup |
//! | (c) | Linux IP forwarding, tc BPF taggers on the ports | untag (VLAN 100 only), rp_filter, FIB, TTL, neighbour, tag 200 |
//! | (d) | Open vSwitch userspace datapath, AF_XDP ports | one OpenFlow rule: match port, VLAN, MACs, IPs; set VLAN, MACs; dec_ttl |
//! | (e) | two `trunkline-dataplane`s, VXLAN between them | A: as (a) up to the LPM, which names a VMI on node B: inner Ethernet to its MAC, VXLAN + UDP + IPv4 + Ethernet to B; B: fabric XDP steers UDP 4789 to AF_XDP, outer checks, VNI -> VRF, inner MAC -> VMI 2, re-tag |
//! | (f) | Linux: routing into a kernel `vxlan` device on A, bridge on B | A: untag, rp_filter, FIB, TTL, neighbour (VMI 2's MAC), vxlan FDB -> B, outer route; B: UDP socket, VNI, bridge FDB -> `out`, tag 200 |
//! | (g) | as (e), MPLS over UDP | A: VMI 2's routed label, inner IP packet, MPLS + UDP 6635 + IPv4 + Ethernet; B: label -> VMI 2, LPM check, Ethernet header, tag |
//! | (h) | `trunkline-dataplane` with its XDP tier (the default backend), objects as (a) | as (a), decided by the tier's XDP program in the kernel (native XDP on `in`, devmap redirect to `out`) from the maps mirrored from the same tables; the agent's AF_XDP sockets idle |
//! | (i) | bare XDP_REDIRECT forwarder (`bpf/redirect.bpf.c`) | as (b) in the kernel: constant rewrite, devmap redirect `in` -> `out`, no parsing or lookup: the kernel's ceiling |
//! | (j) | as (e), with the XDP tier on both nodes | A's tier encapsulates into VXLAN (devmap to the fabric port), B's tier on the fabric port decapsulates, bridges to VMI 2, re-tags |
//! | (k) | as (g), with the XDP tier on both nodes | A's tier: routed label + MPLSoUDP; B's tier: label -> VMI 2, LPM check, Ethernet, tag |
//! | (l) | `trunkline-dataplane` as (h) (`--backend xdp`), a network with SNAT, the node's fabric port `eth0` | the tier hands the frame to AF_XDP (north-south); the pipeline: LI -> VMI, source check, no route in the VRF -> SNAT: flow table lookup (a first packet: a port, two entries), source := 10.10.0.1:port, checksums, TTL, fabric next hop's MAC, out of `eth0` untagged |
//! | (m) | Linux: tc untag on `in`, IP forwarding, netfilter masquerade (iptables) to `eth0`'s address | untag, rp_filter, conntrack (a first packet: NAT binding), FIB, TTL, SNAT, neighbour |
//!
//! (l) and (m) deliver to a host on the fabric (10.10.0.253) instead of
//! VMI 2, and are measured twice per size: established flows (64 flows,
//! frames cycling through them) and new flows (every frame a new flow,
//! from an empty flow table: [`Device::fresh_flows`]).
//! | (o) | as (h), while an observation (`PacketTrace`, mode Observe, a filter every frame of the flow matches) runs on the node | as (h), plus the tier's observe check per frame and records within its rate (issue 19: the cost of `kubectl trunkline observe`) |
//!
//! The kernel-decided modes ((h)-(k), native XDP) run in the receive NAPI of
//! their ports, which on veth is the sender's core: the topology makes those
//! NAPIs threaded and pins their threads to the device's core, so that
//! every device gets one core ([`crate::netns`]).

pub mod agent;
pub mod bare;
pub mod cluster;
pub mod linux;
pub mod linux_vxlan;
pub mod masquerade;
pub mod overlay;
pub mod ovs;
pub mod redirect;
pub mod snat;

use crate::Error;
pub use crate::report::FlowCounts;

/// A device under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// (a) our node dataplane.
    Agent,
    /// (b) the bare AF_XDP forwarder.
    Bare,
    /// (c) Linux IP forwarding.
    Linux,
    /// (d) Open vSwitch, userspace datapath.
    Ovs,
    /// (e) our overlay across two nodes, VXLAN.
    OverlayVxlan,
    /// (f) Linux routing and kernel VXLAN across two nodes.
    LinuxVxlan,
    /// (g) our overlay across two nodes, MPLS over UDP.
    OverlayMpls,
    /// (h) our node dataplane with its XDP tier.
    AgentTier,
    /// (i) the bare XDP_REDIRECT forwarder.
    Redirect,
    /// (j) our overlay, VXLAN, with the XDP tier on both nodes.
    OverlayVxlanTier,
    /// (k) our overlay, MPLS over UDP, with the XDP tier on both nodes.
    OverlayMplsTier,
    /// (l) our node dataplane (XDP tier), SNAT to the fabric.
    Snat,
    /// (m) Linux netfilter masquerade to the fabric.
    Masquerade,
    /// (o) as (h), with an observation running.
    AgentTierObserved,
    /// (p) as (h), both VMIs policed by a security group of 100 rules.
    AgentTierPoliced,
}

impl Mode {
    /// Every mode, in the benchmark's order.
    pub const ALL: [Mode; 15] = [
        Mode::Agent,
        Mode::Bare,
        Mode::Linux,
        Mode::Ovs,
        Mode::OverlayVxlan,
        Mode::LinuxVxlan,
        Mode::OverlayMpls,
        Mode::AgentTier,
        Mode::Redirect,
        Mode::OverlayVxlanTier,
        Mode::OverlayMplsTier,
        Mode::Snat,
        Mode::Masquerade,
        Mode::AgentTierObserved,
        Mode::AgentTierPoliced,
    ];

    /// The letter, also used in namespace and interface names.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Agent => "a",
            Mode::Bare => "b",
            Mode::Linux => "c",
            Mode::Ovs => "d",
            Mode::OverlayVxlan => "e",
            Mode::LinuxVxlan => "f",
            Mode::OverlayMpls => "g",
            Mode::AgentTier => "h",
            Mode::Redirect => "i",
            Mode::OverlayVxlanTier => "j",
            Mode::OverlayMplsTier => "k",
            Mode::Snat => "l",
            Mode::Masquerade => "m",
            Mode::AgentTierObserved => "o",
            Mode::AgentTierPoliced => "p",
        }
    }

    /// A short name for tables and the plot.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Agent => "(a) trunkline AF_XDP",
            Mode::Bare => "(b) bare AF_XDP forwarder",
            Mode::Linux => "(c) Linux IP forwarding",
            Mode::Ovs => "(d) Open vSwitch AF_XDP",
            Mode::OverlayVxlan => "(e) trunkline overlay, VXLAN",
            Mode::LinuxVxlan => "(f) Linux VXLAN",
            Mode::OverlayMpls => "(g) trunkline overlay, MPLSoUDP",
            Mode::AgentTier => "(h) trunkline XDP tier",
            Mode::Redirect => "(i) bare XDP_REDIRECT forwarder",
            Mode::OverlayVxlanTier => "(j) trunkline overlay, VXLAN, XDP tier",
            Mode::OverlayMplsTier => "(k) trunkline overlay, MPLSoUDP, XDP tier",
            Mode::Snat => "(l) trunkline SNAT",
            Mode::Masquerade => "(m) Linux masquerade",
            Mode::AgentTierObserved => "(o) trunkline XDP tier, observed",
            Mode::AgentTierPoliced => "(p) trunkline XDP tier, security groups (100 rules)",
        }
    }

    /// Parses a mode's letter (or its name).
    pub fn parse(s: &str) -> Result<Mode, Error> {
        match s.trim() {
            "a" | "agent" => Ok(Mode::Agent),
            "b" | "bare" => Ok(Mode::Bare),
            "c" | "linux" => Ok(Mode::Linux),
            "d" | "ovs" => Ok(Mode::Ovs),
            "e" | "overlay-vxlan" => Ok(Mode::OverlayVxlan),
            "f" | "linux-vxlan" => Ok(Mode::LinuxVxlan),
            "g" | "overlay-mpls" => Ok(Mode::OverlayMpls),
            "h" | "tier" => Ok(Mode::AgentTier),
            "i" | "redirect" => Ok(Mode::Redirect),
            "j" | "overlay-vxlan-tier" => Ok(Mode::OverlayVxlanTier),
            "k" | "overlay-mpls-tier" => Ok(Mode::OverlayMplsTier),
            "l" | "snat" => Ok(Mode::Snat),
            "m" | "masquerade" => Ok(Mode::Masquerade),
            "o" | "tier-observed" => Ok(Mode::AgentTierObserved),
            "p" | "tier-policed" => Ok(Mode::AgentTierPoliced),
            other => Err(Error::Options(format!(
                "unknown mode {other:?}: a (agent), b (bare), c (linux), d (ovs), \
                 e (overlay-vxlan), f (linux-vxlan), g (overlay-mpls), h (tier), \
                 i (redirect), j (overlay-vxlan-tier), k (overlay-mpls-tier), \
                 l (snat), m (masquerade), o (tier-observed), p (tier-policed)"
            ))),
        }
    }

    /// Whether the mode's path crosses two nodes (a fabric link between
    /// them) rather than one.
    pub fn across_nodes(self) -> bool {
        matches!(
            self,
            Mode::OverlayVxlan
                | Mode::LinuxVxlan
                | Mode::OverlayMpls
                | Mode::OverlayVxlanTier
                | Mode::OverlayMplsTier
        )
    }

    /// Whether the mode translates to the fabric ((l), (m)): its egress
    /// port is the node's fabric port `eth0`, toward a fabric host, and it
    /// is measured with established and with new flows.
    pub fn to_fabric(self) -> bool {
        matches!(self, Mode::Snat | Mode::Masquerade)
    }

    /// Whether the mode runs agents against the control plane.
    pub fn needs_control_plane(self) -> bool {
        self.agent_backend().is_some()
    }

    /// The `--backend` of the mode's agents, when it runs agents.
    pub fn agent_backend(self) -> Option<&'static str> {
        match self {
            Mode::Agent | Mode::OverlayVxlan | Mode::OverlayMpls => Some("af-xdp"),
            Mode::AgentTier
            | Mode::OverlayVxlanTier
            | Mode::OverlayMplsTier
            | Mode::Snat
            | Mode::AgentTierObserved
            | Mode::AgentTierPoliced => Some("xdp"),
            _ => None,
        }
    }

    /// Whether the device forwards in native XDP, in the receive NAPI of
    /// its ports (made threaded and pinned to the device's core).
    pub fn native_xdp(self) -> bool {
        matches!(
            self,
            Mode::AgentTier
                | Mode::Redirect
                | Mode::OverlayVxlanTier
                | Mode::OverlayMplsTier
                | Mode::AgentTierObserved
                | Mode::AgentTierPoliced
        )
    }
}

/// A running device under test.
pub enum Device {
    /// (a)
    Agent(Box<agent::AgentDevice>),
    /// (b)
    Bare(bare::BareDevice),
    /// (c)
    Linux(linux::LinuxDevice),
    /// (d)
    Ovs(ovs::OvsDevice),
    /// (e), (g)
    Overlay(Box<overlay::OverlayDevice>),
    /// (f)
    LinuxVxlan(linux_vxlan::LinuxVxlanDevice),
    /// (i)
    Redirect(redirect::RedirectDevice),
    /// (l)
    Snat(Box<snat::SnatDevice>),
    /// (m)
    Masquerade(masquerade::MasqueradeDevice),
}

impl Device {
    /// Which mode it is.
    pub fn mode(&self) -> Mode {
        match self {
            Device::Agent(d) => d.mode(),
            Device::Bare(_) => Mode::Bare,
            Device::Linux(_) => Mode::Linux,
            Device::Ovs(_) => Mode::Ovs,
            Device::Overlay(d) => d.mode(),
            Device::LinuxVxlan(_) => Mode::LinuxVxlan,
            Device::Redirect(_) => Mode::Redirect,
            Device::Snat(_) => Mode::Snat,
            Device::Masquerade(_) => Mode::Masquerade,
        }
    }

    /// The processes whose CPU time is the device's (none for the kernel;
    /// two for the overlay, one agent per node).
    pub fn pids(&self) -> Vec<u32> {
        match self {
            Device::Agent(d) => d.pid().into_iter().collect(),
            Device::Snat(d) => d.pid().into_iter().collect(),
            Device::Bare(d) => d.pid().into_iter().collect(),
            Device::Linux(_)
            | Device::LinuxVxlan(_)
            | Device::Redirect(_)
            | Device::Masquerade(_) => Vec::new(),
            Device::Ovs(d) => d.pid().into_iter().collect(),
            Device::Overlay(d) => d.pids(),
        }
    }

    /// Prepares a measurement (Open vSwitch adds its ports: its poll-mode
    /// thread spins while it has ports, so they exist only during its runs).
    pub fn before_run(&mut self) -> Result<(), Error> {
        match self {
            Device::Ovs(d) => d.add_ports(),
            Device::Overlay(d) => d.before_run(),
            Device::Agent(_)
            | Device::Bare(_)
            | Device::Linux(_)
            | Device::LinuxVxlan(_)
            | Device::Redirect(_)
            | Device::Snat(_)
            | Device::Masquerade(_) => Ok(()),
        }
    }

    /// Ends a measurement; fails when the device's process died.
    pub fn after_run(&mut self) -> Result<(), Error> {
        match self {
            Device::Ovs(d) => d.remove_ports(),
            Device::Bare(d) => d.check(),
            Device::Overlay(d) => d.after_run(),
            Device::Snat(d) => d.check(),
            Device::Agent(_)
            | Device::Linux(_)
            | Device::LinuxVxlan(_)
            | Device::Redirect(_)
            | Device::Masquerade(_) => Ok(()),
        }
    }

    /// Empties the device's flow table before a new-flow run ((l): the
    /// agent restarts, its flows live in its memory; (m): the namespace's
    /// conntrack table is flushed); nothing for the other modes.
    pub async fn fresh_flows(&mut self) -> Result<(), Error> {
        match self {
            Device::Snat(d) => d.restart().await,
            Device::Masquerade(d) => d.flush(),
            _ => Ok(()),
        }
    }

    /// The device's flow counters now ((l), (m)); none for the others.
    pub fn flow_counts(&self) -> Option<FlowCounts> {
        match self {
            Device::Snat(d) => Some(d.flow_counts()),
            Device::Masquerade(d) => Some(d.flow_counts()),
            _ => None,
        }
    }

    /// What differs from the other modes, for the report.
    pub fn notes(&self) -> Vec<String> {
        match self {
            Device::Agent(d) => d.notes(),
            Device::Bare(_) => bare::notes(),
            Device::Linux(_) => linux::notes(),
            Device::Ovs(d) => d.notes(),
            Device::Overlay(d) => d.notes(),
            Device::LinuxVxlan(d) => d.notes(),
            Device::Redirect(_) => redirect::notes(),
            Device::Snat(d) => d.notes(),
            Device::Masquerade(_) => masquerade::notes(),
        }
    }
}
