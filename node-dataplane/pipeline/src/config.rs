//! The desired state of one gateway node, as plain values.
//!
//! The node dataplane builds a [`NodeConfig`] from the Kubernetes objects
//! that concern its node (after the operator has validated and resolved
//! them) and hands it to [`Tables::compile`](crate::Tables::compile). Nothing
//! here knows about Kubernetes: keys are the objects' `namespace/name`
//! strings, references are keys, and the types derive `Ord` so that
//! compilation can sort its input and be independent of the order it came in.
//!
//! ```text
//!  NodeConfig
//!   +- ports: gateway trunks, the fabric (underlay) port, host ports (vgw taps)
//!   +- networks: VRF id, subnets, forwarding mode, VNI, bridged MPLS label,
//!   |            encapsulation priority, the peers that also host it, MTU, DHCP
//!   +- vmis (local), logical_interfaces (port, VLAN) -> VMI
//!   +- underlay: the fabric port, this node's tunnel address and MAC, MTU
//!   +- peers: other gateway nodes and external VTEPs (address, encapsulations)
//!   +- remote_vmis: VMIs (or static endpoints) behind a peer
//!   +- routes: extra VRF routes (to a host port, to a peer, a labelled
//!   |          route to a DC gateway, or discard)
//!   +- ha_groups: the gateway HA groups this node is a member of (its member ports)
//!   +- multihomed: VMIs served by several nodes (an HA group's), with the peers
//!                  that can deliver them besides this node
//!   +- north_south: SNAT port range, the fabric's routes (each network
//!              says whether it leaves by SNAT or IP fabric forwarding)
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

/// The prefix type of every trunkline crate (from `trunkline-wire`),
/// re-exported so that configs name it from here.
pub use trunkline_wire::{IpPrefix, PrefixError};

/// A MAC address as six bytes.
pub type MacAddress = [u8; 6];

/// The gateway MAC the original system answers ARP with: the VRRP MAC
/// `00:00:5e:00:01:00`.
pub const DEFAULT_GATEWAY_MAC: MacAddress = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x00];

/// The identifier of a port of the fast path (a NIC queue set or a tap),
/// chosen by the node dataplane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Everything one node enforces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeConfig {
    /// The MAC the gateway answers ARP/ND with and routes for.
    pub gateway_mac: MacAddress,
    /// The ports of the fast path.
    pub ports: Vec<PortConfig>,
    /// The virtual networks with at least one object on this node.
    pub networks: Vec<NetworkConfig>,
    /// The virtual machine interfaces of those networks.
    pub vmis: Vec<VmiConfig>,
    /// The logical interfaces of this node: (port, VLAN) to VMI.
    pub logical_interfaces: Vec<LogicalInterfaceConfig>,
    /// Extra VRF routes (for example toward a virtual gateway's host port).
    pub routes: Vec<RouteConfig>,
    /// The node's side of the overlay, when it has a fabric port.
    pub underlay: Option<UnderlayConfig>,
    /// Tunnel endpoints of the overlay: the other gateway nodes hosting one
    /// of this node's networks, and external VTEPs.
    pub peers: Vec<PeerConfig>,
    /// VMIs of this node's networks that live behind a peer.
    pub remote_vmis: Vec<RemoteVmiConfig>,
    /// The gateway HA groups this node is a member of.
    pub ha_groups: Vec<HaGroupConfig>,
    /// VMIs (local or remote) that several nodes serve, with the peers
    /// that can deliver them.
    pub multihomed: Vec<MultihomedVmiConfig>,
    /// How traffic leaves the overlay untunneled (source NAT, IP fabric
    /// forwarding): the translated port range and the fabric's routes.
    pub north_south: NorthSouthConfig,
    /// The budget of frames each VMI may have answered by the gateway.
    pub punt_limit: PuntLimit,
    /// The security-group rules of the VMIs of this node that are
    /// policed, by VMI key; a VMI absent here is not policed (every flow
    /// allowed, and its frames stay in the XDP tier).
    pub policies: std::collections::BTreeMap<String, crate::policy::Policy>,
    /// Network policies: each direction of each connection with at least
    /// one network on this node (`VirtualNetworkPolicy`); a network held
    /// here gets the host routes of the local VMIs of every network it has
    /// a link to, and of that network's [`LinkedVmiConfig`]s.
    pub network_links: Vec<crate::network_policy::LinkConfig>,
    /// VMIs on other nodes of networks that a link connects to a network
    /// of this node (network policies across nodes).
    pub linked_vmis: Vec<LinkedVmiConfig>,
}

/// How many frames per second one VMI may have answered by the gateway
/// itself (ARP and ND proxy, echo replies, DHCP, router advertisements,
/// ICMP errors), so that one instance flooding questions cannot take the
/// others' share of the node: a token bucket per VMI. Frames over the
/// budget are dropped and counted (`punt_rate_limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PuntLimit {
    /// Answers per second, on average.
    pub per_second: u32,
    /// Answers at once after a quiet period.
    pub burst: u32,
}

impl Default for PuntLimit {
    fn default() -> Self {
        PuntLimit {
            per_second: 2000,
            burst: 200,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            gateway_mac: DEFAULT_GATEWAY_MAC,
            ports: Vec::new(),
            networks: Vec::new(),
            vmis: Vec::new(),
            logical_interfaces: Vec::new(),
            routes: Vec::new(),
            underlay: None,
            peers: Vec::new(),
            remote_vmis: Vec::new(),
            ha_groups: Vec::new(),
            multihomed: Vec::new(),
            north_south: NorthSouthConfig::default(),
            punt_limit: PuntLimit::default(),
            policies: Default::default(),
            network_links: Vec::new(),
            linked_vmis: Vec::new(),
        }
    }
}

/// One port of the fast path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortConfig {
    /// Its identifier, unique on the node.
    pub id: PortId,
    /// Its name (the NIC or tap name), for dumps and messages.
    pub name: String,
    /// The largest IP packet a routed packet leaving by it may be (the
    /// physical interface's `mtu`): a larger one is answered with
    /// fragmentation-needed / packet-too-big. `None`: only the buffers
    /// limit it.
    pub mtu: Option<u16>,
    /// What frames arriving on it are.
    pub kind: PortKind,
}

/// What a port is for, which decides how its frames are handled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortKind {
    /// A trunk toward remote instances: frames are classified by their VLAN
    /// into logical interfaces.
    Gateway,
    /// The underlay NIC: tunnel packets addressed to the node's underlay
    /// address are decapsulated (see [`UnderlayConfig`]); everything else is
    /// passed to the host stack.
    Fabric,
    /// A host interface attached to one network's VRF, such as a virtual
    /// gateway tap: its untagged frames are routed in that VRF, and routes
    /// of that VRF may point to it.
    Host {
        /// The key of the network whose VRF the port is attached to.
        network: String,
        /// The MAC of the host side of the interface: the destination MAC of
        /// the frames the gateway routes into it.
        peer_mac: MacAddress,
    },
}

/// A virtual network and its routing instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NetworkConfig {
    /// `namespace/name`.
    pub key: String,
    /// The VRF identifier, unique on the node.
    pub vrf: u32,
    /// Its subnets.
    pub subnets: Vec<SubnetConfig>,
    /// Bridging, routing or both.
    pub mode: ForwardingMode,
    /// Flood frames for unknown unicast MACs instead of dropping them.
    pub flood_unknown_unicast: bool,
    /// Its VXLAN network identifier, when it has one.
    pub vni: Option<u32>,
    /// Its MPLS label for bridged and flooded frames (payload: Ethernet),
    /// the same on every node.
    pub label: Option<u32>,
    /// Its routed label (payload: an IP packet routed in its VRF), the
    /// same on every node: what a DC gateway sends with for the prefixes
    /// the BGP speaker exports on the network's behalf (a virtual
    /// gateway's subnets and routes). Only its routed peers may use it.
    pub routed_label: Option<u32>,
    /// Encapsulations in order of preference; toward each peer the first
    /// one the peer supports is used.
    pub encapsulations: Vec<Encapsulation>,
    /// Keys of the peers that also host the network: flooded frames are
    /// replicated to them, and only they may send its tunnel traffic.
    pub peers: Vec<String>,
    /// How packets to destinations the VRF does not route (outside the
    /// network's subnets) leave: not at all, source-translated to the
    /// node's underlay address, or untranslated on the fabric.
    pub fabric_exit: FabricExit,
    /// Keys of peers that route for the network without being part of its
    /// layer 2 (DC gateways): routes may point to them with a label, and
    /// they may send routed (label) traffic to its VMIs; nothing is
    /// flooded to them.
    pub routed_peers: Vec<String>,
    /// The network's MTU, when it declares one: the largest IP packet
    /// routed to its instances (never more than the egress port's), and
    /// what DHCP and router advertisements tell them.
    pub mtu: Option<u16>,
    /// How the gateway answers DHCP (and IPv6 router solicitations) of the
    /// network's instances.
    pub dhcp: DhcpConfig,
}

/// How a network's traffic leaves the overlay without a tunnel (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FabricExit {
    /// It does not: destinations the VRF does not route are dropped.
    #[default]
    None,
    /// Source NAT to the node's underlay address (distributed SNAT): TCP,
    /// UDP and ICMP echo, with per-flow state.
    Snat,
    /// IP fabric forwarding: sent on the fabric as they are; the fabric
    /// routes the network's subnets back to a gateway node.
    IpFabric,
}

impl FabricExit {
    /// Whether packets leave by the fabric.
    pub const fn leaves(self) -> bool {
        !matches!(self, FabricExit::None)
    }
}

/// The node-wide settings of traffic leaving the overlay untunneled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NorthSouthConfig {
    /// The ports (and ICMP echo identifiers) source NAT translates to, on
    /// the underlay address: a range the host's own sockets never use.
    pub snat_ports: (u16, u16),
    /// The host's routes out of the fabric port: where packets leaving
    /// untunneled go next.
    pub fabric_routes: Vec<FabricRouteConfig>,
}

/// The SNAT port range by default: above Linux's default ephemeral range
/// (`net.ipv4.ip_local_port_range` = 32768 60999), so the host's own
/// connections never take one of its ports.
pub const DEFAULT_SNAT_PORTS: (u16, u16) = (61000, 65535);

impl Default for NorthSouthConfig {
    fn default() -> Self {
        NorthSouthConfig {
            snat_ports: DEFAULT_SNAT_PORTS,
            fabric_routes: Vec::new(),
        }
    }
}

/// The lease the original agent gave gateway VMIs: one day.
pub const DEFAULT_LEASE_SECS: u32 = 86_400;

/// How a network's instances get their addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DhcpConfig {
    /// Whether the gateway answers.
    pub mode: DhcpMode,
    /// Lease time in seconds (addresses never change: the lease is only
    /// how often clients come back).
    pub lease_secs: u32,
    /// DNS servers to announce (IPv4 ones by DHCPv4, IPv6 ones by DHCPv6).
    pub dns_servers: Vec<IpAddr>,
    /// The domain name (DHCPv4 option 15, DHCPv6 domain list).
    pub domain: Option<String>,
    /// PXE: the server to fetch the boot file from (`siaddr`, option 66).
    pub next_server: Option<Ipv4Addr>,
    /// PXE: the boot file (`file`, option 67).
    pub boot_file: Option<String>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            mode: DhcpMode::Server,
            lease_secs: DEFAULT_LEASE_SECS,
            dns_servers: Vec::new(),
            domain: None,
            next_server: None,
            boot_file: None,
        }
    }
}

/// A route of the host out of the fabric port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FabricRouteConfig {
    /// The destination.
    pub prefix: IpPrefix,
    /// The router it goes through; `None`: on the fabric's own link.
    pub via: Option<IpAddr>,
}

/// Whether the gateway serves DHCP in a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum DhcpMode {
    /// The gateway answers DHCPv4 and DHCPv6 from each VMI's configured
    /// addresses, and router advertisements send hosts to DHCPv6.
    #[default]
    Server,
    /// The gateway does not answer: a client's broadcasts are bridged like
    /// any other (to a DHCP server among the instances, say); router
    /// advertisements do not send hosts to DHCPv6.
    Off,
    /// The gateway relays DHCPv4 to this server (RFC 1542): the request
    /// leaves from the client's subnet gateway address (`giaddr`), routed
    /// in the network; the server's reply to that address goes back to the
    /// client. DHCPv6 is not relayed (as with `Off`).
    Relay(Ipv4Addr),
}

/// How a network forwards, as the original's forwarding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ForwardingMode {
    /// Bridge within the network, route across subnets (the default).
    #[default]
    L2L3,
    /// Bridge only: no gateway address, no ARP proxy, no routing.
    L2,
    /// Route only: no bridging and no flooding.
    L3,
}

impl ForwardingMode {
    /// Whether frames are bridged (and broadcasts flooded).
    pub const fn bridges(self) -> bool {
        matches!(self, ForwardingMode::L2L3 | ForwardingMode::L2)
    }

    /// Whether packets to the gateway MAC are routed.
    pub const fn routes(self) -> bool {
        matches!(self, ForwardingMode::L2L3 | ForwardingMode::L3)
    }
}

/// An encapsulation between tunnel endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encapsulation {
    /// MPLS over UDP (RFC 7510, port 6635): a label per VMI for routed
    /// packets (inner IP), the network's label for bridged frames.
    MplsOverUdp,
    /// VXLAN (RFC 7348, port 4789): the network's VNI, inner Ethernet.
    Vxlan,
}

/// The node's side of the overlay.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnderlayConfig {
    /// The fabric port (a [`PortKind::Fabric`] port).
    pub port: PortId,
    /// The node's tunnel address: outer source of what it sends, and the
    /// destination of the tunnel packets it decapsulates.
    pub address: IpAddr,
    /// The fabric port's MAC: outer source MAC.
    pub mac: MacAddress,
    /// The fabric's MTU: an outer IP packet never exceeds it.
    pub mtu: u16,
}

/// A tunnel endpoint: another gateway node, or an external VTEP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerConfig {
    /// Its key (a node name, or `ExternalVTEP/<name>`).
    pub key: String,
    /// Its underlay address (the same family as the node's).
    pub address: IpAddr,
    /// The encapsulations it accepts.
    pub encapsulations: Vec<Encapsulation>,
}

/// A VMI of one of this node's networks that lives behind a peer (on
/// another gateway node, or a static endpoint behind an external VTEP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteVmiConfig {
    /// `namespace/name` (unique among local and remote VMIs).
    pub key: String,
    /// The key of its network.
    pub network: String,
    /// The key of the peer it lives behind.
    pub peer: String,
    /// Its MAC.
    pub mac: MacAddress,
    /// Its addresses (each gets a host route through the peer).
    pub ips: Vec<IpAddr>,
    /// Its routed MPLS label (payload: IP), when it has one.
    pub label: Option<u32>,
}

/// A VMI on another gateway node, in a network that a network policy
/// connects to one of this node's (the `to` of a link whose `from` is
/// held here): routed to through a tunnel into its network on its node,
/// with its routed label (MPLS over UDP) or its network's VNI and its MAC
/// (VXLAN). Its network need not be held here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkedVmiConfig {
    /// `namespace/name`.
    pub key: String,
    /// The key of its network.
    pub network: String,
    /// The key of the peer (node) it lives behind.
    pub peer: String,
    /// Its MAC.
    pub mac: MacAddress,
    /// Its addresses (each a host route in the linked networks' VRFs).
    pub ips: Vec<IpAddr>,
    /// Its routed MPLS label (payload: IP), when it has one.
    pub label: Option<u32>,
    /// Its network's VNI, when it has one.
    pub vni: Option<u32>,
    /// Its network's encapsulations in order of preference (empty: the
    /// default order); the first the peer accepts is used.
    pub encapsulations: Vec<Encapsulation>,
}

/// A gateway HA group this node is a member of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaGroupConfig {
    /// The group's name.
    pub key: String,
    /// Who decides which member is active.
    pub mode: HaMode,
    /// The node's member ports (gateway ports): while the node is standby
    /// in the group, nothing is received from, answered on or sent out of
    /// them.
    pub ports: Vec<PortId>,
}

/// How a group's active member is chosen, as far as the fast path cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaMode {
    /// The switches' spanning tree blocks the other members' ports: every
    /// member forwards what reaches it (its role starts and stays active).
    Stp,
    /// Heartbeats elect one member: the role starts standby until the
    /// node's agent says otherwise.
    Fast,
}

/// A VMI several nodes serve (the members of an HA group holding it): the
/// peers that can deliver it besides this node. Which one does now is a
/// runtime cell of the tables ([`Tables::set_vmi_path`](crate::Tables::set_vmi_path)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MultihomedVmiConfig {
    /// The key of a VMI of this node or of a remote VMI.
    pub vmi: String,
    /// The keys of the peers that also hold it.
    pub peers: Vec<String>,
}

/// A subnet of a network and the gateway address the node answers for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubnetConfig {
    /// The subnet.
    pub prefix: IpPrefix,
    /// The gateway address inside it.
    pub gateway: IpAddr,
}

/// A virtual machine interface: a remote instance's port in a network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmiConfig {
    /// `namespace/name`.
    pub key: String,
    /// The key of its network.
    pub network: String,
    /// Its MAC.
    pub mac: MacAddress,
    /// Its addresses (each gets a host route in the network's VRF).
    pub ips: Vec<IpAddr>,
    /// Other sources it may use when port security is on.
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    /// Whether source MAC and IP are checked (on by default in the original).
    pub port_security: bool,
    /// Its routed MPLS label: tunnel packets carrying it are IP packets for
    /// this VMI.
    pub label: Option<u32>,
}

/// A source prefix (and MAC) a VMI may send from besides its own addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllowedAddressPair {
    /// The allowed source prefix.
    pub prefix: IpPrefix,
    /// The MAC it comes with; `None` means the VMI's own MAC.
    pub mac: Option<MacAddress>,
}

/// A logical interface: a (port, VLAN) of this node bound to a VMI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalInterfaceConfig {
    /// `namespace/name`.
    pub key: String,
    /// The gateway port.
    pub port: PortId,
    /// The VLAN, 0 (untagged) to 4094.
    pub vlan: u16,
    /// The key of the VMI.
    pub vmi: String,
    /// Which of two logical interfaces claiming the same (port, VLAN) wins:
    /// the smaller, that is the older.
    pub order: CreationOrder,
}

/// The order of logical interfaces: creation time, then name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CreationOrder {
    /// Creation time, in seconds since the epoch.
    pub created_secs: i64,
    /// The object's name, to break ties.
    pub name: String,
}

/// An extra route in a network's VRF.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteConfig {
    /// The key of the network.
    pub network: String,
    /// The destination.
    pub prefix: IpPrefix,
    /// Where matching packets go.
    pub next_hop: NextHopConfig,
}

/// Where a configured route sends packets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHopConfig {
    /// Out of a host port attached to the same VRF.
    Port(PortId),
    /// To a peer (by key), which routes the packet in the same network
    /// (another node's virtual gateway, say).
    Peer(String),
    /// Nowhere: matching packets are dropped.
    Discard,
    /// To a routed peer (a DC gateway) of the network, by key, with the
    /// MPLS label it gave the route: the inner IP packet goes in MPLS over
    /// UDP (what a VPNv4 route learned by BGP will also give).
    Tunnel {
        /// The peer's key (one of the network's `routed_peers`).
        peer: String,
        /// The label the peer decapsulates by.
        label: u32,
    },
}
