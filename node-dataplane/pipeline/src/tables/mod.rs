//! Immutable lookup tables compiled from a [`NodeConfig`].
//!
//! ```text
//!  NodeConfig (any order)
//!      | sort every list (so the input order never matters)
//!      v
//!  networks --> VRFs, a receive route per subnet gateway address;
//!      v        their VNI and bridged label -> the VRF
//!  ports -----> port slots; host ports attached to a VRF; the underlay
//!      v
//!  peers -----> tunnel endpoints by address; per VRF, the peers hosting it
//!      v        and the encapsulation (label or VNI) toward each
//!  VMIs ------> host routes (one per address) and bridge entries (MAC)
//!      v        in their network's VRF; routed label -> VMI
//!  remote ----> host routes and bridge entries through a peer
//!  VMIs
//!      v
//!  logical ---> per gateway port, a 4096-entry array VLAN -> VMI;
//!  interfaces   oldest first, so the older one wins a (port, VLAN);
//!      v        a VMI's first logical interface is its egress;
//!      v        each is a local member of its VRF's flood list
//!  routes ----> extra LPM entries (to a host port, a peer, or discard)
//!      v
//!  address ---> a host route per allowed-address-pair address (/32, /128)
//!  pairs        not otherwise routed, to the VMI holding it now
//!  HA groups -> a role cell per group (active/standby), its member ports;
//!  multihomed   a path cell per VMI several nodes serve: here, or which peer
//! ```
//!
//! Compilation never fails as a whole: an item that cannot be compiled is
//! skipped and reported in a [`Rejected`], and everything else is built.
//! Lookups on the fast path are O(1) for (port, VLAN), labels and VNIs, and
//! a few hash probes for longest-prefix match. The tables are `Send + Sync`
//! and never change once built, but for cells written from outside without
//! a rebuild (relaxed atomics the fast path reads per frame): counters, the
//! underlay next-hop MAC of each peer (resolved by the agent from the host's
//! neighbour table), the holder of each allowed address pair's address
//! (learnt by the pipeline from traffic), the role of each HA group the node
//! is a member of, and the current path of each multi-homed VMI (both
//! flipped by the agent's HA machinery, `ha.rs`). The caller swaps whole
//! tables (an `ArcSwap`) and loads them once per batch.

mod compile;
mod dump;
mod ha;
mod north_south;
mod update;

pub(crate) use north_south::{NorthSouth, Via};

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use trunkline_wire::EthernetAddress;

use crate::config::{FabricExit, HaMode, IpPrefix, NextHopConfig, NodeConfig, PortId};
use crate::counters::{VmiCounterSnapshot, VmiCounters};
use crate::hash::FxHashMap;
use crate::limit::TokenBucket;
use crate::lpm::Lpm;

/// How many VLAN slots a gateway port has (VLAN 0 means untagged).
pub const VLAN_SLOTS: usize = 4096;

/// The largest VLAN a logical interface may use.
pub const MAX_VLAN: u16 = 4094;

/// An empty VLAN slot.
pub(crate) const NO_VMI: u32 = u32::MAX;

/// A gateway port that is no HA group's member port.
pub(crate) const NO_GROUP: u32 = u32::MAX;

pub use ha::{Announcement, HaRole};
pub use update::Rebuilt;

/// A VMI's position in one [`Tables`]; meaningless in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmiId(pub(crate) u32);

impl VmiId {
    /// The position, as an index.
    pub const fn index(&self) -> usize {
        self.0 as usize
    }

    /// A VMI (or none) as a 32-bit tag an I/O layer carries with a frame
    /// and hands back once it is sent.
    pub const fn to_tag(vmi: Option<VmiId>) -> u32 {
        match vmi {
            Some(VmiId(id)) => id,
            None => u32::MAX,
        }
    }

    /// The VMI (or none) a tag made by [`VmiId::to_tag`] names.
    pub const fn from_tag(tag: u32) -> Option<VmiId> {
        if tag == u32::MAX {
            None
        } else {
            Some(VmiId(tag))
        }
    }
}

/// A remote VMI's position in one [`Tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteId(pub(crate) u32);

/// An allowed address pair's host route's position in one [`Tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairId(pub(crate) u32);

/// A tunnel peer's position in one [`Tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub(crate) u32);

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// To the gateway itself (a subnet gateway address).
    Receive,
    /// To a VMI of this node, out of its egress logical interface.
    Vmi(VmiId),
    /// To a VMI behind a peer, through a tunnel.
    Remote(RemoteId),
    /// To a peer that routes it further in the same network.
    Peer(PeerId),
    /// Out of a host port, untagged.
    Port(PortId),
    /// To whichever local VMI holds an allowed address pair's address now
    /// (the one that last sent from it).
    Pair(PairId),
    /// Nowhere.
    Discard,
    /// To a routed peer (a DC gateway): the inner IP packet in MPLS over
    /// UDP with the label the peer gave the route.
    Tunnel {
        /// The peer.
        peer: PeerId,
        /// Its label.
        label: u32,
    },
    /// To a VMI of this node in another network that a network policy
    /// connects to this one: allowed only as the link's rules say.
    Leak {
        /// The VMI.
        vmi: VmiId,
        /// The link (this network to the VMI's), in [`Tables::links`].
        link: LinkId,
    },
    /// To a VMI on another node in a network that a network policy
    /// connects to this one: allowed only as the link's rules say, then
    /// through a tunnel into its network on its node.
    LeakRemote {
        /// The VMI, in [`Tables::linked`].
        remote: LinkedId,
        /// The link (this network to the VMI's), in [`Tables::links`].
        link: LinkId,
    },
}

/// A linked VMI's position in one [`Tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkedId(pub(crate) u32);

/// A VMI on another node of a network linked to one of this node's
/// (network policies across nodes).
#[derive(Debug)]
pub(crate) struct Linked {
    pub(crate) key: String,
    /// The key of its network.
    pub(crate) network: String,
    pub(crate) peer: PeerId,
    pub(crate) mac: EthernetAddress,
    /// How a routed packet reaches it: its label (inner IP), or its
    /// network's VNI (inner Ethernet to its MAC).
    pub(crate) routed: Encap,
}

/// A network-policy link's position in one [`Tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub(crate) u32);

/// Where a bridged frame goes, by destination MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BridgeEntry {
    /// A VMI of this node.
    Vmi(VmiId),
    /// A VMI behind a peer.
    Remote(RemoteId),
}

/// What a tunnel packet carries to name its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Encap {
    /// MPLS over UDP with this label.
    Mpls(u32),
    /// VXLAN with this network identifier.
    Vxlan(u32),
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encap::Mpls(label) => write!(f, "mpls label {label}"),
            Encap::Vxlan(vni) => write!(f, "vxlan vni {vni}"),
        }
    }
}

/// The logical interface a VMI's traffic leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Egress {
    /// The gateway port.
    pub port: PortId,
    /// The VLAN (0: untagged).
    pub vlan: u16,
}

/// A compiled VMI.
#[derive(Debug)]
pub struct Vmi {
    key: String,
    network: String,
    pub(crate) vrf: usize,
    pub(crate) mac: EthernetAddress,
    pub(crate) ips: Box<[IpAddr]>,
    /// Allowed address pairs with their MAC resolved.
    pub(crate) pairs: Box<[(IpPrefix, EthernetAddress)]>,
    pub(crate) port_security: bool,
    pub(crate) egress: Option<Egress>,
    pub(crate) label: Option<u32>,
    pub(crate) counters: Arc<VmiCounters>,
    /// When other nodes serve it too: where its traffic goes now.
    pub(crate) path: Option<Box<Path>>,
    /// Its budget of frames answered by the gateway, carried over by
    /// recompilations like its counters.
    pub(crate) punt: Arc<TokenBucket>,
    /// The host routes of its allowed address pairs, whose holder it
    /// becomes by sending from them.
    pub(crate) pair_routes: Box<[(IpPrefix, PairId)]>,
    /// Its security groups, when it is policed.
    pub(crate) policy: Option<Arc<crate::policy::VmiPolicy>>,
}

impl Vmi {
    /// `namespace/name`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key of its network.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Its MAC.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Its addresses.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether source checks apply.
    pub fn port_security(&self) -> bool {
        self.port_security
    }

    /// Its egress logical interface: the first of its logical interfaces in
    /// creation order; `None` when it has none on this node.
    pub fn egress(&self) -> Option<Egress> {
        self.egress
    }

    /// Its routed MPLS label, when it has one.
    pub fn label(&self) -> Option<u32> {
        self.label
    }

    /// Its security groups' rules, zone, generation and counters, when it
    /// is policed.
    pub fn policy(&self) -> Option<&crate::policy::VmiPolicy> {
        self.policy.as_deref()
    }

    /// Its counters.
    pub fn counters(&self) -> &VmiCounters {
        &self.counters
    }

    /// Whether a frame from `mac` with source `ip` is allowed: the VMI's own
    /// MAC with one of its addresses, or an allowed pair's MAC with an
    /// address inside the pair's prefix.
    #[inline]
    pub(crate) fn source_allowed(&self, mac: EthernetAddress, ip: IpAddr) -> bool {
        (mac == self.mac && self.ips.contains(&ip))
            || self
                .pairs
                .iter()
                .any(|(prefix, pair_mac)| *pair_mac == mac && prefix.contains(ip))
    }

    /// Whether `mac` is the VMI's or one of its allowed pairs'.
    #[inline]
    pub(crate) fn mac_allowed(&self, mac: EthernetAddress) -> bool {
        mac == self.mac || self.pairs.iter().any(|(_, pair_mac)| *pair_mac == mac)
    }
}

/// The host route of an address declared as an allowed address pair by
/// one or more local VMIs of a network (a VRRP virtual IP, say): it leads
/// to the VMI that last sent from the address (an ARP or a packet with it
/// as source, learnt by the pipeline), or before any did, to the first
/// declaring VMI in key order. The learnt holder is an atomic cell written
/// on the fast path, without a rebuild, and carried over by recompilation.
#[derive(Debug)]
pub(crate) struct AddressPair {
    pub(crate) prefix: IpPrefix,
    /// The declaring VMIs, in key order, each with the MAC frames to the
    /// address go to (the pair's MAC, or the VMI's).
    pub(crate) owners: Vec<(VmiId, EthernetAddress)>,
    /// The holder's position in `owners`.
    pub(crate) holder: AtomicU32,
}

impl AddressPair {
    /// Where packets for the address go now.
    #[inline]
    pub(crate) fn holder(&self) -> (VmiId, EthernetAddress) {
        let i = self.holder.load(Ordering::Relaxed) as usize;
        self.owners.get(i).copied().unwrap_or(self.owners[0])
    }

    /// Record that `vmi` sent from the address; whether the holder changed.
    #[inline]
    pub(crate) fn learn(&self, vmi: VmiId) -> bool {
        let Some(i) = self.owners.iter().position(|(id, _)| *id == vmi) else {
            return false;
        };
        self.holder.swap(i as u32, Ordering::Relaxed) != i as u32
    }
}

/// A compiled VMI behind a peer.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) key: String,
    pub(crate) vrf: usize,
    pub(crate) peer: PeerId,
    pub(crate) mac: EthernetAddress,
    pub(crate) ips: Box<[IpAddr]>,
    /// How a routed packet reaches it: its label (inner IP), or the
    /// network's VNI (inner Ethernet to its MAC).
    pub(crate) routed: Encap,
    /// How a bridged frame reaches it: the network's label or VNI.
    pub(crate) bridged: Encap,
    /// When several peers serve it: which one does now.
    pub(crate) path: Option<Box<Path>>,
}

/// The paths of a VMI several nodes serve, and which one is current: a
/// cell the agent flips (claims of the HA machinery) and the fast path
/// reads per frame.
#[derive(Debug)]
pub(crate) struct Path {
    /// [`Path::HERE`], or the position in `peers` of the current peer.
    pub(crate) via: AtomicU32,
    /// The peers that can deliver it, sorted by key.
    pub(crate) peers: Box<[PathPeer]>,
    /// Set by the fast path when the VMI's own traffic arrives on one of
    /// this node's logical interfaces; taken (cleared) by the agent.
    pub(crate) seen: AtomicBool,
}

impl Path {
    /// The VMI is served by this node.
    pub(crate) const HERE: u32 = u32::MAX;

    /// The current peer, or `None` when served here.
    #[inline]
    pub(crate) fn current(&self) -> Option<&PathPeer> {
        self.peers.get(self.via.load(Ordering::Relaxed) as usize)
    }
}

/// A peer through which a multi-homed VMI is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathPeer {
    pub(crate) peer: PeerId,
    /// What a routed packet toward it carries.
    pub(crate) routed: Encap,
    /// What a bridged frame toward it carries.
    pub(crate) bridged: Encap,
}

/// A gateway HA group the node is a member of.
#[derive(Debug)]
pub(crate) struct HaGroup {
    pub(crate) key: String,
    pub(crate) mode: HaMode,
    /// [`HaRole`] as a `u8`, written by the agent, shared with the tables
    /// that follow (so that a rebuild never flips it back).
    pub(crate) role: Arc<AtomicU8>,
}

/// A tunnel endpoint.
#[derive(Debug)]
pub struct Peer {
    key: String,
    pub(crate) addr: IpAddr,
    /// The underlay next hop's MAC as `0x1_0000_0000_0000 | mac`, or 0 when
    /// not resolved; written by [`Tables::set_next_hop_mac`].
    pub(crate) next_hop: Arc<AtomicU64>,
}

impl Peer {
    /// Its key (a node name, or `ExternalVTEP/<name>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Its underlay address.
    pub fn address(&self) -> IpAddr {
        self.addr
    }

    /// The MAC frames toward it are sent to, when resolved.
    #[inline]
    pub fn next_hop_mac(&self) -> Option<EthernetAddress> {
        let v = self.next_hop.load(Ordering::Relaxed);
        (v != 0).then(|| {
            let b = v.to_be_bytes();
            EthernetAddress([b[2], b[3], b[4], b[5], b[6], b[7]])
        })
    }
}

/// A member of a VRF's flood list on this node: a logical interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FloodLocal {
    pub(crate) port: PortId,
    pub(crate) vlan: u16,
    pub(crate) vmi: VmiId,
}

/// A compiled routing instance: routes and bridge entries of one network.
#[derive(Debug, Clone)]
pub(crate) struct Vrf {
    pub(crate) network: String,
    pub(crate) id: u32,
    pub(crate) v4: Lpm<u32, NextHop>,
    pub(crate) v6: Lpm<u128, NextHop>,
    /// MAC (as a u64) to VMI.
    pub(crate) bridge: FxHashMap<u64, BridgeEntry>,
    pub(crate) bridges: bool,
    pub(crate) routes: bool,
    pub(crate) flood_unknown_unicast: bool,
    pub(crate) vni: Option<u32>,
    pub(crate) label: Option<u32>,
    /// The subnets and their gateway addresses (the source of the ICMP
    /// errors the gateway sends).
    pub(crate) gateways: Box<[(IpPrefix, IpAddr)]>,
    /// Logical interfaces of the network on this node, sorted.
    pub(crate) locals: Vec<FloodLocal>,
    /// The network's MTU, when it declares one.
    pub(crate) mtu: Option<u16>,
    /// The DHCP server of a routing network whose DHCP is on.
    pub(crate) dhcp: Option<Box<DhcpServer>>,
    /// The DHCP server a routing network relays to.
    pub(crate) dhcp_relay: Option<Ipv4Addr>,
    /// Peers hosting the network, each with what bridged frames toward it
    /// carry; sorted by peer.
    pub(crate) peers: Vec<(PeerId, Encap)>,
    /// Peers that route for the network (DC gateways): they may send its
    /// VMIs routed-label traffic; never flooded to. Sorted.
    pub(crate) routed_peers: Vec<PeerId>,
    /// How destinations the VRF does not route leave (SNAT, IP fabric).
    pub(crate) exit: FabricExit,
    /// Whether a network-policy link names the network: a tunnel packet
    /// into it is classified by its source network first (the XDP tier
    /// hands such packets off).
    pub(crate) linked: bool,
    /// The generation of what its flows were decided under: changes when
    /// the network's exit, the underlay address or the SNAT ports do.
    pub(crate) generation: u32,
}

impl Vrf {
    /// Longest-prefix match.
    #[inline]
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<NextHop> {
        match ip {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }

    /// The route for exactly this prefix, if any.
    fn exact(&self, prefix: &IpPrefix) -> Option<NextHop> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.get(u32::from(a), prefix.prefix_len()),
            IpAddr::V6(a) => self.v6.get(u128::from(a), prefix.prefix_len()),
        }
    }

    /// Remove exactly this prefix, returning where it led.
    fn remove(&mut self, prefix: &IpPrefix) -> Option<NextHop> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.remove(u32::from(a), prefix.prefix_len()),
            IpAddr::V6(a) => self.v6.remove(u128::from(a), prefix.prefix_len()),
        }
    }

    fn insert(&mut self, prefix: &IpPrefix, next_hop: NextHop) -> Result<(), NextHop> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), prefix.prefix_len(), next_hop),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), prefix.prefix_len(), next_hop),
        }
    }

    /// What bridged frames toward `peer` carry, when the peer hosts the
    /// network.
    #[inline]
    pub(crate) fn peer_encap(&self, peer: PeerId) -> Option<Encap> {
        self.peers
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, encap)| *encap)
    }

    /// Whether `ip` is inside one of the network's subnets.
    #[inline]
    pub(crate) fn in_subnets(&self, ip: IpAddr) -> bool {
        self.gateways.iter().any(|(prefix, _)| prefix.contains(ip))
    }

    /// Whether `peer` may send routed-label traffic for the network: a
    /// peer hosting it, or a peer routing for it.
    #[inline]
    pub(crate) fn accepts_routed_from(&self, peer: PeerId) -> bool {
        self.peer_encap(peer).is_some() || self.routed_peers.contains(&peer)
    }

    /// The gateway address of the subnet holding `ip`, or else the first
    /// gateway address of the same family.
    pub(crate) fn gateway_for(&self, ip: IpAddr) -> Option<IpAddr> {
        self.gateways
            .iter()
            .find(|(prefix, _)| prefix.contains(ip))
            .or_else(|| {
                self.gateways
                    .iter()
                    .find(|(_, gw)| gw.is_ipv4() == ip.is_ipv4())
            })
            .map(|(_, gw)| *gw)
    }
}

/// What a network's DHCP server (v4 and v6) hands out besides each VMI's
/// own addresses, compiled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DhcpServer {
    pub(crate) lease_secs: u32,
    pub(crate) dns4: Box<[Ipv4Addr]>,
    pub(crate) dns6: Box<[Ipv6Addr]>,
    /// The domain name as text (DHCPv4 option 15), at most 255 bytes.
    pub(crate) domain: Box<[u8]>,
    /// The domain in DNS wire format (DHCPv6 domain list).
    pub(crate) domain_wire: Box<[u8]>,
    pub(crate) next_server: Option<Ipv4Addr>,
    /// At most 127 bytes (the `file` field keeps a terminating zero).
    pub(crate) boot_file: Box<[u8]>,
}

impl DhcpServer {
    /// Renewal time (T1): half the lease.
    pub(crate) fn renewal_secs(&self) -> u32 {
        self.lease_secs / 2
    }

    /// Rebinding time (T2): seven eighths of the lease.
    pub(crate) fn rebinding_secs(&self) -> u32 {
        (u64::from(self.lease_secs) * 7 / 8) as u32
    }
}

/// What frames arriving on a port are, with what their handling needs.
#[derive(Debug, Clone)]
pub(crate) enum PortRole {
    /// A trunk: VLAN (index) to VMI (`NO_VMI` when empty).
    Gateway { vlans: Box<[u32]> },
    /// The underlay: tunnel packets for us are decapsulated, the rest is
    /// passed to the host.
    Fabric,
    /// A host port attached to a VRF.
    Host {
        vrf: usize,
        peer_mac: EthernetAddress,
    },
}

/// A compiled port.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub(crate) id: PortId,
    pub(crate) name: String,
    pub(crate) mtu: Option<u16>,
    pub(crate) role: PortRole,
    /// The HA group it is a member port of ([`NO_GROUP`]: none).
    pub(crate) ha_group: u32,
}

impl Port {
    /// The VMI bound to `vlan`, for a gateway port.
    #[inline]
    pub(crate) fn vmi_at(&self, vlan: u16) -> Option<VmiId> {
        match &self.role {
            PortRole::Gateway { vlans } => match vlans.get(usize::from(vlan)) {
                Some(&id) if id != NO_VMI => Some(VmiId(id)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The node's side of the overlay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Underlay {
    pub(crate) port: PortId,
    pub(crate) addr: IpAddr,
    pub(crate) mac: EthernetAddress,
    pub(crate) mtu: u16,
}

/// What an MPLS label names on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LabelTarget {
    /// A local VMI: the payload is an IP packet for it.
    Vmi(VmiId),
    /// A VRF: the payload is an Ethernet frame of its network.
    Vrf(usize),
    /// A VRF: the payload is an IP packet routed in it (from a DC
    /// gateway only).
    RoutedVrf(usize),
}

/// A logical interface that made it into the tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalInterface {
    /// `namespace/name`.
    pub key: String,
    /// The gateway port.
    pub port: PortId,
    /// The VLAN (0: untagged).
    pub vlan: u16,
    /// The key of its VMI.
    pub vmi: String,
}

/// Which configuration item a [`Rejected`] is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectRef {
    /// The node-wide settings.
    Node,
    /// A port.
    Port(PortId),
    /// A network.
    Network(String),
    /// One subnet of a network.
    Subnet {
        /// The network's key.
        network: String,
        /// The subnet.
        prefix: IpPrefix,
    },
    /// A VMI.
    Vmi(String),
    /// A logical interface.
    LogicalInterface(String),
    /// A route.
    Route {
        /// The network's key.
        network: String,
        /// The destination.
        prefix: IpPrefix,
        /// Where it pointed.
        next_hop: NextHopConfig,
    },
    /// The underlay settings.
    Underlay,
    /// The north-south settings (SNAT ports, fabric routes).
    NorthSouth,
    /// A tunnel peer.
    Peer(String),
    /// A VMI behind a peer.
    RemoteVmi(String),
    /// An HA group.
    HaGroup(String),
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Node => write!(f, "node"),
            ObjectRef::Port(id) => write!(f, "port {id}"),
            ObjectRef::Network(key) => write!(f, "network {key}"),
            ObjectRef::Subnet { network, prefix } => {
                write!(f, "subnet {prefix} of network {network}")
            }
            ObjectRef::Vmi(key) => write!(f, "VMI {key}"),
            ObjectRef::LogicalInterface(key) => write!(f, "logical interface {key}"),
            ObjectRef::Route {
                network,
                prefix,
                next_hop,
            } => {
                write!(f, "route {prefix} ({next_hop:?}) of network {network}")
            }
            ObjectRef::Underlay => write!(f, "underlay"),
            ObjectRef::NorthSouth => write!(f, "north-south settings"),
            ObjectRef::Peer(key) => write!(f, "peer {key}"),
            ObjectRef::RemoteVmi(key) => write!(f, "remote VMI {key}"),
            ObjectRef::HaGroup(key) => write!(f, "HA group {key}"),
        }
    }
}

/// Why an item was left out of the tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum RejectReason {
    /// Another item of the same kind has the same key (or port id); the one
    /// sorting first was kept.
    #[error("another item of the same kind has the same key; the first in sort order was kept")]
    Duplicate,
    /// A referenced port is not declared.
    #[error("port {0} is not declared")]
    UnknownPort(PortId),
    /// A referenced network is not declared, or was itself rejected.
    #[error("network {0:?} is not declared (or was rejected)")]
    UnknownNetwork(String),
    /// A referenced VMI is not declared, or was itself rejected.
    #[error("VMI {0:?} is not declared (or was rejected)")]
    UnknownVmi(String),
    /// A referenced peer is not declared, or was itself rejected.
    #[error("peer {0:?} is not declared (or was rejected)")]
    UnknownPeer(String),
    /// The VRF id is taken.
    #[error("VRF {vrf} is already used by network {by:?}")]
    VrfInUse {
        /// The VRF id.
        vrf: u32,
        /// The network that has it.
        by: String,
    },
    /// The VLAN is outside 0..=4094.
    #[error("VLAN {0} is out of range: valid VLANs are 0 (untagged) to 4094")]
    VlanOutOfRange(u16),
    /// An older logical interface has the (port, VLAN).
    #[error(
        "VLAN {vlan} of port {port} is already bound to logical interface {by:?}, which is older"
    )]
    VlanTaken {
        /// The port.
        port: PortId,
        /// The VLAN.
        vlan: u16,
        /// The logical interface that has it.
        by: String,
    },
    /// Logical interfaces need a gateway port.
    #[error(
        "port {0} is not a gateway port: logical interfaces need a trunk toward remote instances"
    )]
    NotAGatewayPort(PortId),
    /// Route next hops need a host port of the same network.
    #[error(
        "port {port} is not a host port attached to network {network:?}: routes may only point to such a port"
    )]
    NotAHostPortOfNetwork {
        /// The port.
        port: PortId,
        /// The route's network.
        network: String,
    },
    /// The address is already routed in the VRF.
    #[error("address {ip} is already used by {by}")]
    AddressInUse {
        /// The address.
        ip: IpAddr,
        /// Who has it.
        by: String,
    },
    /// The MAC is already used in the network.
    #[error("MAC {mac} is already used by VMI {by:?} in this network")]
    MacInUse {
        /// The MAC.
        mac: EthernetAddress,
        /// The VMI that has it.
        by: String,
    },
    /// The MAC is a group address.
    #[error("MAC {0} is a multicast address: a unicast MAC is needed")]
    MulticastMac(EthernetAddress),
    /// The gateway address is not inside its subnet.
    #[error("gateway address {gateway} is outside subnet {prefix}")]
    GatewayOutsideSubnet {
        /// The gateway address.
        gateway: IpAddr,
        /// The subnet.
        prefix: IpPrefix,
    },
    /// The prefix is already routed in the VRF.
    #[error("prefix {0} is already routed in this VRF")]
    PrefixInUse(IpPrefix),
    /// The fabric port of the underlay is not a fabric port.
    #[error("port {0} is not a fabric port: the underlay needs the node's fabric (underlay) port")]
    NotAFabricPort(PortId),
    /// The underlay MTU is too small to carry anything.
    #[error("underlay MTU {0} is too small: at least 576 (IPv4) or 1280 (IPv6)")]
    MtuTooSmall(u16),
    /// Tunnels need the node's underlay.
    #[error("the node has no underlay (fabric port and underlay address): tunnels cannot be built")]
    NoUnderlay,
    /// The peer's address is not of the underlay's family, or is the node's own.
    #[error("peer address {0} is not usable: it must be another address of the underlay's family")]
    PeerAddressUnusable(IpAddr),
    /// Another peer has the same address.
    #[error("address {addr} is already the address of peer {by:?}")]
    PeerAddressInUse {
        /// The address.
        addr: IpAddr,
        /// The peer that has it.
        by: String,
    },
    /// No encapsulation of the network's list is supported by the peer, or
    /// the network lacks what the one chosen needs (a VNI, a label).
    #[error("no usable encapsulation toward peer {peer:?}: {why}")]
    NoEncapsulation {
        /// The peer.
        peer: String,
        /// What is missing.
        why: &'static str,
    },
    /// The label is outside 16..=1048575 or already names something else.
    #[error("MPLS label {label} is unusable: {why}")]
    LabelUnusable {
        /// The label.
        label: u32,
        /// Why.
        why: String,
    },
    /// The port is already a member port of another HA group.
    #[error("port {port} is already a member port of HA group {by:?}")]
    PortInGroup {
        /// The port.
        port: PortId,
        /// The group that has it.
        by: String,
    },
    /// Leaving by the fabric (SNAT, IP fabric forwarding) needs the node's
    /// underlay, and IP fabric forwarding a subnet no other such network
    /// of the node uses.
    #[error("the network cannot leave by the fabric: {0}")]
    FabricExitUnusable(String),
    /// The SNAT port range is empty or reversed.
    #[error("SNAT port range {0}-{1} is empty: give LOW-HIGH with LOW <= HIGH")]
    SnatPortsEmpty(u16, u16),
    /// A labelled route names a peer that does not route for the network.
    #[error("peer {0:?} does not route for this network (not one of its routed peers)")]
    NotARoutedPeer(String),
    /// The VNI is outside 1..=16777215 or already names another network.
    #[error("VNI {vni} is unusable: {why}")]
    VniUnusable {
        /// The VNI.
        vni: u32,
        /// Why.
        why: String,
    },
}

/// An item left out of the tables, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
#[error("{object}: {reason}")]
pub struct Rejected {
    /// The item.
    pub object: ObjectRef,
    /// Why.
    pub reason: RejectReason,
}

/// The compiled lookup tables of one node.
///
/// Every large part is behind an `Arc`, and each VMI and VRF behind its
/// own: [`Tables::update`] builds the next tables from these ones by
/// rebuilding the VMIs and VRFs a change touches and sharing the rest.
#[derive(Debug)]
pub struct Tables {
    pub(crate) gateway_mac: EthernetAddress,
    /// The gateway's IPv6 link-local address (from its MAC, EUI-64): the
    /// source of router advertisements and DHCPv6 replies, the router
    /// hosts learn.
    pub(crate) gateway_link_local: Ipv6Addr,
    /// The DHCPv6 server's DUID: DUID-LL of the gateway MAC.
    pub(crate) server_duid: [u8; 10],
    /// Port id to position in `ports` plus one (0: no such port).
    port_slots: Arc<[u32]>,
    pub(crate) ports: Arc<Vec<Port>>,
    pub(crate) vmis: Vec<Arc<Vmi>>,
    pub(crate) vrfs: Vec<Arc<Vrf>>,
    vmi_keys: Arc<FxHashMap<Arc<str>, VmiId>>,
    network_keys: Arc<FxHashMap<String, usize>>,
    logical_interfaces: Vec<Arc<LogicalInterface>>,
    pub(crate) underlay: Option<Underlay>,
    pub(crate) peers: Arc<Vec<Peer>>,
    pub(crate) peer_addrs: Arc<FxHashMap<IpAddr, PeerId>>,
    pub(crate) remotes: Arc<Vec<Remote>>,
    pub(crate) labels: Arc<FxHashMap<u32, LabelTarget>>,
    pub(crate) vnis: Arc<FxHashMap<u32, usize>>,
    /// Bumped by every write of a runtime cell: the XDP tier's mirror
    /// rebuilds its image when it changes.
    pub(crate) cells_version: AtomicU64,
    pub(crate) remote_keys: Arc<FxHashMap<String, RemoteId>>,
    pub(crate) ha_groups: Arc<Vec<HaGroup>>,
    pub(crate) ha_group_keys: Arc<FxHashMap<String, usize>>,
    /// Leaving the overlay untunneled: SNAT ports, IP fabric prefixes, the
    /// fabric's routes and next hops.
    pub(crate) north_south: Arc<NorthSouth>,
    /// VRF id to position.
    pub(crate) vrf_ids: Arc<FxHashMap<u32, usize>>,
    pub(crate) pairs: Arc<Vec<AddressPair>>,
    /// Network-policy links between this node's networks.
    pub(crate) links: Arc<Vec<crate::network_policy::Link>>,
    /// VMIs on other nodes of networks linked to this node's.
    pub(crate) linked: Arc<Vec<Linked>>,
    /// Whether the compilation rejected nothing: only such tables are
    /// updated in place by [`Tables::update`] (a rejection may depend on
    /// any other item).
    pub(crate) clean: bool,
}

/// The link-local address of `mac` (RFC 4291 appendix A: EUI-64 with the
/// universal/local bit flipped).
pub(crate) fn link_local(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// Turn a MAC into a hash key.
#[inline]
pub(crate) fn mac_key(mac: EthernetAddress) -> u64 {
    let b = mac.0;
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

impl Default for Tables {
    /// Tables with no port: every frame is dropped as `unknown_port`.
    fn default() -> Self {
        Tables::compile(&NodeConfig::default()).0
    }
}

impl Tables {
    /// Compile the tables of `config`. Deterministic: the same config in any
    /// order gives the same tables and the same rejections.
    pub fn compile(config: &NodeConfig) -> (Tables, Vec<Rejected>) {
        compile::Compiler::new(config, None).run()
    }

    /// Compile the tables of `config`, carrying over what `previous` learnt
    /// at run time: the counters of the VMIs it also has (by key), so that
    /// a configuration change does not reset them, and the resolved next-hop
    /// MACs of its peers (by address).
    pub fn recompile(config: &NodeConfig, previous: &Tables) -> (Tables, Vec<Rejected>) {
        compile::Compiler::new(config, Some(previous)).run()
    }

    /// The tables of `after`, built from `previous`, which were compiled
    /// from `before` (by any of these functions): when the change is one
    /// [`update`](self::update) handles, only the VMIs and VRFs it touches
    /// are built again and every other part is shared with `previous`;
    /// else `after` is compiled as by [`Tables::recompile`]. Either way the
    /// result equals a compilation of `after` (same dump, same
    /// rejections), and the runtime cells carry over.
    pub fn update(
        previous: &Tables,
        before: &NodeConfig,
        after: &NodeConfig,
    ) -> (Tables, Vec<Rejected>, Rebuilt) {
        match update::update(previous, before, after) {
            Some((tables, rebuilt)) => (tables, Vec::new(), rebuilt),
            None => {
                let (tables, rejected) = Tables::recompile(after, previous);
                (tables, rejected, Rebuilt::Everything)
            }
        }
    }

    /// The gateway MAC.
    pub fn gateway_mac(&self) -> EthernetAddress {
        self.gateway_mac
    }

    /// The gateway's IPv6 link-local address: the router instances learn
    /// from its router advertisements.
    pub fn gateway_link_local(&self) -> Ipv6Addr {
        self.gateway_link_local
    }

    /// The port with this id.
    #[inline]
    pub(crate) fn port(&self, id: PortId) -> Option<&Port> {
        match self.port_slots.get(usize::from(id.0)) {
            Some(&slot) if slot != 0 => self.ports.get(slot as usize - 1),
            _ => None,
        }
    }

    /// The VMI bound to (port, VLAN).
    pub fn vmi_at(&self, port: PortId, vlan: u16) -> Option<VmiId> {
        self.port(port)?.vmi_at(vlan)
    }

    /// A VMI by position.
    pub fn vmi(&self, id: VmiId) -> Option<&Vmi> {
        self.vmis.get(id.index()).map(|vmi| &**vmi)
    }

    /// A VMI's position by key.
    pub fn vmi_id(&self, key: &str) -> Option<VmiId> {
        self.vmi_keys.get(key).copied()
    }

    /// Every VMI: sorted by key after a compilation, with the VMIs an
    /// update added after the others.
    pub fn vmis(&self) -> impl Iterator<Item = &Vmi> {
        self.vmis.iter().map(|vmi| &**vmi)
    }

    /// The route `network`'s VRF has for `ip` (longest prefix).
    pub fn route(&self, network: &str, ip: IpAddr) -> Option<NextHop> {
        let vrf = self.network_keys.get(network)?;
        self.vrfs[*vrf].lookup(ip)
    }

    /// The VMI that holds the allowed-address-pair address `ip` of
    /// `network` now (learnt from its traffic), when `ip` is one.
    pub fn address_pair_holder(&self, network: &str, ip: IpAddr) -> Option<&str> {
        match self.route(network, ip)? {
            NextHop::Pair(id) => {
                let (vmi, _) = self.pairs[id.0 as usize].holder();
                Some(self.vmis[vmi.index()].key())
            }
            _ => None,
        }
    }

    /// The key of a remote VMI.
    pub fn remote_key(&self, id: RemoteId) -> Option<&str> {
        self.remotes.get(id.0 as usize).map(|r| r.key.as_str())
    }

    /// The logical interfaces that made it into the tables, oldest first.
    pub fn logical_interfaces(
        &self,
    ) -> impl ExactSizeIterator<Item = &LogicalInterface> + Clone + '_ {
        self.logical_interfaces.iter().map(|li| &**li)
    }

    /// How many routing instances (VRFs) the tables hold.
    pub fn routing_instance_count(&self) -> usize {
        self.vrfs.len()
    }

    /// How many routes the VRFs hold (host routes, gateway addresses,
    /// configured routes).
    pub fn route_count(&self) -> usize {
        self.vrfs
            .iter()
            .map(|vrf| vrf.v4.len() + vrf.v6.len())
            .sum()
    }

    /// How many remote VMIs (behind peers) the tables route to.
    pub fn remote_vmi_count(&self) -> usize {
        self.remotes.len()
    }

    /// The tunnel peers, sorted by key.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// The underlay's fabric port and address, when the node has one.
    pub fn underlay(&self) -> Option<(PortId, IpAddr)> {
        self.underlay.map(|u| (u.port, u.addr))
    }

    /// Records the MAC the underlay next hop toward the peer at `addr` has
    /// (`None`: not known). Takes effect at once for every batch using these
    /// tables, without a rebuild. Returns whether such a peer exists.
    pub fn set_next_hop_mac(&self, addr: IpAddr, mac: Option<EthernetAddress>) -> bool {
        let Some(peer) = self.peer_addrs.get(&addr) else {
            return false;
        };
        let value = mac.map_or(0, |m| (1u64 << 48) | mac_key(m));
        let cell = &self.peers[peer.0 as usize].next_hop;
        if cell.swap(value, Ordering::Relaxed) != value {
            self.cells_version.fetch_add(1, Ordering::Release);
        }
        true
    }

    /// A count of the changes to the tables' runtime cells (next hops, ...):
    /// whoever mirrors the tables elsewhere (the XDP tier) looks again when
    /// it moves.
    pub fn cells_version(&self) -> u64 {
        self.cells_version.load(Ordering::Acquire)
    }

    /// The fabric's next hops (for the host thread, which resolves them).
    pub fn fabric_neighbours(&self) -> &crate::neighbours::NeighbourCache {
        &self.north_south.neighbours
    }

    /// The MAC of the fabric next hop toward `dst` (by the host's routes
    /// out of the fabric port and the fabric's neighbour cache), when it is
    /// known; a lookup that claims no slot (unlike the pipeline's, it does
    /// not ask for an unknown one).
    pub fn fabric_next_hop_mac(&self, dst: IpAddr) -> Option<[u8; 6]> {
        let ns = &self.north_south;
        ns.neighbours.peek(ns.next_hop(dst)?)
    }

    /// The network of the VRF whose flow-key id is `id`.
    pub fn vrf_network_of_id(&self, id: u32) -> Option<&str> {
        self.vrf_ids
            .get(&id)
            .map(|i| self.vrfs[*i].network.as_str())
    }

    /// The ports source NAT translates to.
    pub fn snat_ports(&self) -> (u16, u16) {
        self.north_south.snat_ports
    }

    /// Whether some network leaves by source NAT or some VMI is policed
    /// (the caller then keeps a flow table).
    pub fn uses_flows(&self) -> bool {
        self.north_south.snat_networks > 0
            || self.vmis.iter().any(|v| v.policy.is_some())
            || !self.links.is_empty()
    }

    /// The network-policy links between this node's networks.
    pub fn network_links(&self) -> &[crate::network_policy::Link] {
        &self.links
    }

    /// The subnets of networks with IP fabric forwarding: what the fabric
    /// routes back to this node (the fabric port's XDP program steers them
    /// to the fast path).
    pub fn ip_fabric_prefixes(&self) -> &[IpPrefix] {
        &self.north_south.ip_fabric_prefixes
    }

    /// The security groups of every policed VMI, by key.
    pub fn vmi_policies(&self) -> impl Iterator<Item = (&str, &crate::policy::VmiPolicy)> {
        self.vmis
            .iter()
            .filter_map(|vmi| vmi.policy.as_deref().map(|p| (vmi.key.as_str(), p)))
    }

    /// Every VMI's counters, by key.
    pub fn vmi_counters(&self) -> impl Iterator<Item = (&str, VmiCounterSnapshot)> {
        self.vmis
            .iter()
            .map(|vmi| (vmi.key.as_str(), vmi.counters.snapshot()))
    }

    /// A canonical text dump of every table, for tests, debugging and
    /// comparing two compilations: sorted, no positions or addresses of
    /// memory, VLAN slots read back from the arrays themselves.
    pub fn dump(&self) -> String {
        dump::dump(self)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_update;
