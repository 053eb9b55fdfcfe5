//! The desired state of one gateway node, as plain values.
//!
//! The node dataplane builds a [`NodeConfig`] from the Kubernetes objects
//! that concern its node (after the operator has validated and resolved
//! them) and hands it to [`Tables::compile`](crate::Tables::compile). Nothing
//! here knows about Kubernetes: keys are the objects' `namespace/name`
//! strings, references are keys, and the types derive `Ord` so that
//! compilation can sort its input and be independent of the order it came in.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

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

/// Why a prefix could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length is longer than the address.
    #[error("prefix length {len} is too long: at most 32 for IPv4 and 128 for IPv6")]
    TooLong {
        /// The length given.
        len: u8,
    },
    /// The text is not `address/length`.
    #[error("{0:?} is not a prefix: expected address/length, e.g. 10.0.0.0/24 or fd00::/64")]
    Syntax(String),
}

/// An IPv4 or IPv6 prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// A prefix of `len` bits of `addr`; the host bits are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpPrefix, PrefixError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(PrefixError::TooLong { len });
        }
        Ok(IpPrefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    /// The host prefix of `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> IpPrefix {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        IpPrefix { addr, len }
    }

    /// The network address.
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is a default route (length zero).
    pub const fn is_default(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` is inside the prefix (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_u32(self.len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_u128(self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<IpPrefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_owned());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        let len: u8 = len.parse().map_err(|_| syntax())?;
        IpPrefix::new(addr, len)
    }
}

/// The network mask of an IPv4 prefix length (0 for length 0).
pub(crate) const fn mask_u32(len: u8) -> u32 {
    match u32::MAX.checked_shl(32 - len as u32) {
        Some(mask) if len > 0 => mask,
        _ if len >= 32 => u32::MAX,
        _ => 0,
    }
}

/// The network mask of an IPv6 prefix length (0 for length 0).
pub(crate) const fn mask_u128(len: u8) -> u128 {
    match u128::MAX.checked_shl(128 - len as u32) {
        Some(mask) if len > 0 => mask,
        _ if len >= 128 => u128::MAX,
        _ => 0,
    }
}

fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_u32(len))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_u128(len))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_masks_and_contains() {
        let p: IpPrefix = "10.1.2.3/24".parse().unwrap();
        assert_eq!(p.to_string(), "10.1.2.0/24");
        assert!(p.contains("10.1.2.200".parse().unwrap()));
        assert!(!p.contains("10.1.3.1".parse().unwrap()));
        assert!(!p.contains("fd00::1".parse().unwrap()));
        let d: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.is_default() && d.contains("1.2.3.4".parse().unwrap()));
        let h: IpPrefix = "10.0.0.1/32".parse().unwrap();
        assert!(h.contains("10.0.0.1".parse().unwrap()));
        let v6: IpPrefix = "fd00::1:2/112".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::1:0/112");
        assert!(v6.contains("fd00::1:ffff".parse().unwrap()));
        assert_eq!(
            "10.0.0.0/33".parse::<IpPrefix>().unwrap_err(),
            PrefixError::TooLong { len: 33 }
        );
        assert!(matches!(
            "10.0.0.0".parse::<IpPrefix>(),
            Err(PrefixError::Syntax(_))
        ));
        assert!("fd00::/129".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(mask_u32(0), 0);
        assert_eq!(mask_u32(1), 0x8000_0000);
        assert_eq!(mask_u32(24), 0xffff_ff00);
        assert_eq!(mask_u32(32), u32::MAX);
        assert_eq!(mask_u128(0), 0);
        assert_eq!(mask_u128(128), u128::MAX);
        assert_eq!(mask_u128(64), u128::MAX << 64);
    }
}
