//! The desired state of one gateway node, as plain values.
//!
//! The node dataplane builds a [`NodeConfig`] from the Kubernetes objects
//! that concern its node (after the operator has validated and resolved
//! them) and hands it to [`Tables::compile`](crate::Tables::compile). Nothing
//! here knows about Kubernetes: keys are the objects' `namespace/name`
//! strings, references are keys, and the types derive `Ord` so that
//! compilation can sort its input and be independent of the order it came in.

use core::fmt;
use core::net::IpAddr;

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
    /// What frames arriving on it are.
    pub kind: PortKind,
}

/// What a port is for, which decides how its frames are handled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortKind {
    /// A trunk toward remote instances: frames are classified by their VLAN
    /// into logical interfaces.
    Gateway,
    /// The underlay NIC: its frames are passed to the host stack (overlay
    /// tunnels are a later step).
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkConfig {
    /// `namespace/name`.
    pub key: String,
    /// The VRF identifier, unique on the node.
    pub vrf: u32,
    /// Its subnets.
    pub subnets: Vec<SubnetConfig>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHopConfig {
    /// Out of a host port attached to the same VRF.
    Port(PortId),
    /// Nowhere: matching packets are dropped.
    Discard,
}
