//! Immutable lookup tables compiled from a [`NodeConfig`].
//!
//! ```text
//!  NodeConfig (any order)
//!      | sort every list (so the input order never matters)
//!      v
//!  networks --> VRFs, with a receive route per subnet gateway address
//!      v
//!  ports -----> port slots; host ports attached to a VRF
//!      v
//!  VMIs ------> host routes (one per address) and bridge entries (MAC)
//!      v           in their network's VRF
//!  logical ---> per gateway port, a 4096-entry array VLAN -> VMI;
//!  interfaces   oldest first, so the older one wins a (port, VLAN);
//!      v        a VMI's first logical interface is its egress
//!  routes ----> extra LPM entries (to a host port, or discard)
//! ```
//!
//! Compilation never fails as a whole: an item that cannot be compiled is
//! skipped and reported in a [`Rejected`], and everything else is built.
//! Lookups on the fast path are O(1) for (port, VLAN) and a few hash probes
//! for longest-prefix match. The tables are `Send + Sync` and never change
//! once built: the caller swaps whole tables (an `ArcSwap`) and loads them
//! once per batch.

use core::fmt::{self, Write as _};
use core::net::IpAddr;
use std::sync::Arc;

use trunkline_wire::EthernetAddress;

use crate::config::{IpPrefix, NextHopConfig, NodeConfig, PortId, PortKind};
use crate::counters::{VmiCounterSnapshot, VmiCounters};
use crate::hash::{FxHashMap, FxHashSet};
use crate::lpm::Lpm;

/// How many VLAN slots a gateway port has (VLAN 0 means untagged).
pub const VLAN_SLOTS: usize = 4096;

/// The largest VLAN a logical interface may use.
pub const MAX_VLAN: u16 = 4094;

/// An empty VLAN slot.
const NO_VMI: u32 = u32::MAX;

/// A VMI's position in one [`Tables`]; meaningless in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmiId(pub(crate) u32);

impl VmiId {
    /// The position, as an index.
    pub const fn index(&self) -> usize {
        self.0 as usize
    }
}

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// To the gateway itself (a subnet gateway address).
    Receive,
    /// To a VMI of this node, out of its egress logical interface.
    Vmi(VmiId),
    /// Out of a host port, untagged.
    Port(PortId),
    /// Nowhere.
    Discard,
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
    pub(crate) counters: Arc<VmiCounters>,
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

/// A compiled routing instance: routes and bridge entries of one network.
#[derive(Debug)]
pub(crate) struct Vrf {
    pub(crate) network: String,
    pub(crate) id: u32,
    pub(crate) v4: Lpm<u32, NextHop>,
    pub(crate) v6: Lpm<u128, NextHop>,
    /// MAC (as a u64) to VMI.
    pub(crate) bridge: FxHashMap<u64, VmiId>,
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

    fn insert(&mut self, prefix: &IpPrefix, next_hop: NextHop) -> Result<(), NextHop> {
        match prefix.addr() {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), prefix.prefix_len(), next_hop),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), prefix.prefix_len(), next_hop),
        }
    }
}

/// What frames arriving on a port are, with what their handling needs.
#[derive(Debug)]
pub(crate) enum PortRole {
    /// A trunk: VLAN (index) to VMI (`NO_VMI` when empty).
    Gateway { vlans: Box<[u32]> },
    /// The underlay: passed to the host.
    Fabric,
    /// A host port attached to a VRF.
    Host {
        vrf: usize,
        peer_mac: EthernetAddress,
    },
}

/// A compiled port.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) id: PortId,
    pub(crate) name: String,
    pub(crate) role: PortRole,
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
    },
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
            ObjectRef::Route { network, prefix } => {
                write!(f, "route {prefix} of network {network}")
            }
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
#[derive(Debug)]
pub struct Tables {
    pub(crate) gateway_mac: EthernetAddress,
    /// Port id to position in `ports` plus one (0: no such port).
    port_slots: Box<[u32]>,
    pub(crate) ports: Vec<Port>,
    pub(crate) vmis: Vec<Vmi>,
    pub(crate) vrfs: Vec<Vrf>,
    vmi_keys: FxHashMap<String, VmiId>,
    network_keys: FxHashMap<String, usize>,
    logical_interfaces: Vec<LogicalInterface>,
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
        Compiler::new(config, None).run()
    }

    /// Compile the tables of `config`, carrying over the counters of the
    /// VMIs that `previous` also has (by key), so that a configuration
    /// change does not reset them.
    pub fn recompile(config: &NodeConfig, previous: &Tables) -> (Tables, Vec<Rejected>) {
        Compiler::new(config, Some(previous)).run()
    }

    /// The gateway MAC.
    pub fn gateway_mac(&self) -> EthernetAddress {
        self.gateway_mac
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
        self.vmis.get(id.index())
    }

    /// A VMI's position by key.
    pub fn vmi_id(&self, key: &str) -> Option<VmiId> {
        self.vmi_keys.get(key).copied()
    }

    /// Every VMI, sorted by key.
    pub fn vmis(&self) -> impl Iterator<Item = &Vmi> {
        self.vmis.iter()
    }

    /// The route `network`'s VRF has for `ip` (longest prefix).
    pub fn route(&self, network: &str, ip: IpAddr) -> Option<NextHop> {
        let vrf = self.network_keys.get(network)?;
        self.vrfs[*vrf].lookup(ip)
    }

    /// The logical interfaces that made it into the tables, oldest first.
    pub fn logical_interfaces(&self) -> &[LogicalInterface] {
        &self.logical_interfaces
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
        let mut out = String::new();
        let vmi_key = |id: VmiId| self.vmis[id.index()].key.as_str();
        let hop = |nh: NextHop| match nh {
            NextHop::Receive => "receive".to_owned(),
            NextHop::Vmi(id) => format!("vmi {}", vmi_key(id)),
            NextHop::Port(p) => format!("port {p}"),
            NextHop::Discard => "discard".to_owned(),
        };
        let _ = writeln!(out, "gateway_mac {}", self.gateway_mac);
        for port in &self.ports {
            match &port.role {
                PortRole::Gateway { vlans } => {
                    let _ = writeln!(out, "port {} {} gateway", port.id, port.name);
                    for (vlan, &id) in vlans.iter().enumerate() {
                        if id != NO_VMI {
                            let _ = writeln!(out, "  vlan {vlan} -> {}", vmi_key(VmiId(id)));
                        }
                    }
                }
                PortRole::Fabric => {
                    let _ = writeln!(out, "port {} {} fabric", port.id, port.name);
                }
                PortRole::Host { vrf, peer_mac } => {
                    let _ = writeln!(
                        out,
                        "port {} {} host vrf {} peer {peer_mac}",
                        port.id, port.name, self.vrfs[*vrf].id
                    );
                }
            }
        }
        for vrf in &self.vrfs {
            let _ = writeln!(out, "vrf {} network {}", vrf.id, vrf.network);
            for (k, len, nh) in vrf.v4.entries() {
                let _ = writeln!(
                    out,
                    "  route {}/{len} {}",
                    core::net::Ipv4Addr::from(k),
                    hop(nh)
                );
            }
            for (k, len, nh) in vrf.v6.entries() {
                let _ = writeln!(
                    out,
                    "  route {}/{len} {}",
                    core::net::Ipv6Addr::from(k),
                    hop(nh)
                );
            }
            let mut bridge: Vec<_> = vrf.bridge.iter().collect();
            bridge.sort();
            for (mac, id) in bridge {
                let _ = writeln!(out, "  bridge {mac:012x} -> {}", vmi_key(*id));
            }
        }
        for vmi in &self.vmis {
            let egress = match vmi.egress {
                Some(e) => format!("port {} vlan {}", e.port, e.vlan),
                None => "none".to_owned(),
            };
            let pairs: Vec<String> = vmi.pairs.iter().map(|(p, m)| format!("{p}@{m}")).collect();
            let _ = writeln!(
                out,
                "vmi {} network {} mac {} ips {:?} pairs {:?} port_security {} egress {egress}",
                vmi.key, vmi.network, vmi.mac, vmi.ips, pairs, vmi.port_security
            );
        }
        for li in &self.logical_interfaces {
            let _ = writeln!(
                out,
                "li {} port {} vlan {} vmi {}",
                li.key, li.port, li.vlan, li.vmi
            );
        }
        out
    }
}

/// The state of one compilation.
struct Compiler<'c> {
    config: &'c NodeConfig,
    previous: Option<&'c Tables>,
    rejected: Vec<Rejected>,
    ports: Vec<Port>,
    vmis: Vec<Vmi>,
    vrfs: Vec<Vrf>,
    vmi_keys: FxHashMap<String, VmiId>,
    network_keys: FxHashMap<String, usize>,
    logical_interfaces: Vec<LogicalInterface>,
}

impl<'c> Compiler<'c> {
    fn new(config: &'c NodeConfig, previous: Option<&'c Tables>) -> Self {
        Compiler {
            config,
            previous,
            rejected: Vec::new(),
            ports: Vec::new(),
            vmis: Vec::new(),
            vrfs: Vec::new(),
            vmi_keys: FxHashMap::default(),
            network_keys: FxHashMap::default(),
            logical_interfaces: Vec::new(),
        }
    }

    fn reject(&mut self, object: ObjectRef, reason: RejectReason) {
        self.rejected.push(Rejected { object, reason });
    }

    fn run(mut self) -> (Tables, Vec<Rejected>) {
        let gateway_mac = EthernetAddress(self.config.gateway_mac);
        let gateway_mac = if gateway_mac.is_multicast() {
            self.reject(ObjectRef::Node, RejectReason::MulticastMac(gateway_mac));
            EthernetAddress(crate::config::DEFAULT_GATEWAY_MAC)
        } else {
            gateway_mac
        };
        self.networks();
        self.ports();
        self.vmis();
        self.logical_interfaces();
        self.routes();
        let slots = self.ports.iter().map(|p| usize::from(p.id.0) + 1).max();
        let mut port_slots = vec![0u32; slots.unwrap_or(0)];
        for (i, port) in self.ports.iter().enumerate() {
            // At most 65536 ports (distinct u16 ids), so i + 1 fits a u32.
            port_slots[usize::from(port.id.0)] = i as u32 + 1;
        }
        let tables = Tables {
            gateway_mac,
            port_slots: port_slots.into_boxed_slice(),
            ports: self.ports,
            vmis: self.vmis,
            vrfs: self.vrfs,
            vmi_keys: self.vmi_keys,
            network_keys: self.network_keys,
            logical_interfaces: self.logical_interfaces,
        };
        (tables, self.rejected)
    }

    fn networks(&mut self) {
        let mut networks: Vec<_> = self.config.networks.iter().collect();
        networks.sort();
        let mut vrf_owners: FxHashMap<u32, String> = FxHashMap::default();
        for network in networks {
            let object = || ObjectRef::Network(network.key.clone());
            if self.network_keys.contains_key(&network.key) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            if let Some(by) = vrf_owners.get(&network.vrf) {
                let reason = RejectReason::VrfInUse {
                    vrf: network.vrf,
                    by: by.clone(),
                };
                self.reject(object(), reason);
                continue;
            }
            vrf_owners.insert(network.vrf, network.key.clone());
            let mut vrf = Vrf {
                network: network.key.clone(),
                id: network.vrf,
                v4: Lpm::default(),
                v6: Lpm::default(),
                bridge: FxHashMap::default(),
            };
            let mut subnets: Vec<_> = network.subnets.iter().collect();
            subnets.sort();
            for subnet in subnets {
                if !subnet.prefix.contains(subnet.gateway) {
                    let object = ObjectRef::Subnet {
                        network: network.key.clone(),
                        prefix: subnet.prefix,
                    };
                    let reason = RejectReason::GatewayOutsideSubnet {
                        gateway: subnet.gateway,
                        prefix: subnet.prefix,
                    };
                    self.reject(object, reason);
                    continue;
                }
                // Two subnets sharing a gateway address both get it: the
                // second insert finds the same receive route.
                let _ = vrf.insert(&IpPrefix::host(subnet.gateway), NextHop::Receive);
            }
            self.network_keys
                .insert(network.key.clone(), self.vrfs.len());
            self.vrfs.push(vrf);
        }
    }

    fn ports(&mut self) {
        let mut ports: Vec<_> = self.config.ports.iter().collect();
        ports.sort();
        for port in ports {
            if self.ports.last().is_some_and(|p| p.id == port.id) {
                self.reject(ObjectRef::Port(port.id), RejectReason::Duplicate);
                continue;
            }
            let role = match &port.kind {
                PortKind::Gateway => PortRole::Gateway {
                    vlans: vec![NO_VMI; VLAN_SLOTS].into_boxed_slice(),
                },
                PortKind::Fabric => PortRole::Fabric,
                PortKind::Host { network, peer_mac } => match self.network_keys.get(network) {
                    Some(&vrf) => PortRole::Host {
                        vrf,
                        peer_mac: EthernetAddress(*peer_mac),
                    },
                    None => {
                        let reason = RejectReason::UnknownNetwork(network.clone());
                        self.reject(ObjectRef::Port(port.id), reason);
                        continue;
                    }
                },
            };
            self.ports.push(Port {
                id: port.id,
                name: port.name.clone(),
                role,
            });
        }
    }

    fn describe(&self, vrf: &Vrf, next_hop: NextHop) -> String {
        match next_hop {
            NextHop::Receive => format!("the gateway of network {}", vrf.network),
            NextHop::Vmi(id) => format!("VMI {}", self.vmis[id.index()].key),
            NextHop::Port(port) => format!("a route to port {port}"),
            NextHop::Discard => "a discard route".to_owned(),
        }
    }

    fn vmis(&mut self) {
        let mut vmis: Vec<_> = self.config.vmis.iter().collect();
        vmis.sort();
        for config in vmis {
            let object = || ObjectRef::Vmi(config.key.clone());
            if self.vmi_keys.contains_key(&config.key) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            let Some(&vrf_index) = self.network_keys.get(&config.network) else {
                let reason = RejectReason::UnknownNetwork(config.network.clone());
                self.reject(object(), reason);
                continue;
            };
            let mac = EthernetAddress(config.mac);
            if mac.is_multicast() {
                self.reject(object(), RejectReason::MulticastMac(mac));
                continue;
            }
            let vrf = &self.vrfs[vrf_index];
            if let Some(&by) = vrf.bridge.get(&mac_key(mac)) {
                let by = self.vmis[by.index()].key.clone();
                self.reject(object(), RejectReason::MacInUse { mac, by });
                continue;
            }
            let mut ips = config.ips.clone();
            ips.sort();
            ips.dedup();
            let conflict = ips.iter().find_map(|ip| {
                vrf.exact(&IpPrefix::host(*ip))
                    .map(|nh| (*ip, self.describe(vrf, nh)))
            });
            if let Some((ip, by)) = conflict {
                self.reject(object(), RejectReason::AddressInUse { ip, by });
                continue;
            }
            let id = VmiId(self.vmis.len() as u32);
            let vrf = &mut self.vrfs[vrf_index];
            for ip in &ips {
                let _ = vrf.insert(&IpPrefix::host(*ip), NextHop::Vmi(id));
            }
            vrf.bridge.insert(mac_key(mac), id);
            let mut pairs: Vec<(IpPrefix, EthernetAddress)> = config
                .allowed_address_pairs
                .iter()
                .map(|pair| (pair.prefix, EthernetAddress(pair.mac.unwrap_or(config.mac))))
                .collect();
            pairs.sort();
            pairs.dedup();
            for (_, pair_mac) in &pairs {
                // A pair MAC may be shared (a VRRP MAC of two instances):
                // the first VMI in key order gets the bridge entry.
                if pair_mac.is_unicast() {
                    vrf.bridge.entry(mac_key(*pair_mac)).or_insert(id);
                }
            }
            let counters = self
                .previous
                .and_then(|p| p.vmi_id(&config.key).and_then(|id| p.vmi(id)))
                .map(|vmi| vmi.counters.clone())
                .unwrap_or_default();
            self.vmi_keys.insert(config.key.clone(), id);
            self.vmis.push(Vmi {
                key: config.key.clone(),
                network: config.network.clone(),
                vrf: vrf_index,
                mac,
                ips: ips.into_boxed_slice(),
                pairs: pairs.into_boxed_slice(),
                port_security: config.port_security,
                egress: None,
                counters,
            });
        }
    }

    fn logical_interfaces(&mut self) {
        let mut lis: Vec<_> = self.config.logical_interfaces.iter().collect();
        // Oldest first: the first to claim a (port, VLAN) keeps it, and a
        // VMI's first logical interface becomes its egress.
        lis.sort_by(|a, b| {
            (&a.order, &a.key, a.port, a.vlan, &a.vmi)
                .cmp(&(&b.order, &b.key, b.port, b.vlan, &b.vmi))
        });
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        let mut winners: FxHashMap<(PortId, u16), usize> = FxHashMap::default();
        for li in lis {
            let object = || ObjectRef::LogicalInterface(li.key.clone());
            if !seen.insert(li.key.as_str()) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            if li.vlan > MAX_VLAN {
                self.reject(object(), RejectReason::VlanOutOfRange(li.vlan));
                continue;
            }
            let Some(&vmi_id) = self.vmi_keys.get(&li.vmi) else {
                self.reject(object(), RejectReason::UnknownVmi(li.vmi.clone()));
                continue;
            };
            let Some(port) = self.ports.iter_mut().find(|p| p.id == li.port) else {
                self.reject(object(), RejectReason::UnknownPort(li.port));
                continue;
            };
            let PortRole::Gateway { vlans } = &mut port.role else {
                self.reject(object(), RejectReason::NotAGatewayPort(li.port));
                continue;
            };
            let slot = &mut vlans[usize::from(li.vlan)];
            if *slot != NO_VMI {
                let by = winners
                    .get(&(li.port, li.vlan))
                    .map(|&i| self.logical_interfaces[i].key.clone())
                    .unwrap_or_default();
                let reason = RejectReason::VlanTaken {
                    port: li.port,
                    vlan: li.vlan,
                    by,
                };
                self.reject(object(), reason);
                continue;
            }
            *slot = vmi_id.0;
            winners.insert((li.port, li.vlan), self.logical_interfaces.len());
            let vmi = &mut self.vmis[vmi_id.index()];
            if vmi.egress.is_none() {
                vmi.egress = Some(Egress {
                    port: li.port,
                    vlan: li.vlan,
                });
            }
            self.logical_interfaces.push(LogicalInterface {
                key: li.key.clone(),
                port: li.port,
                vlan: li.vlan,
                vmi: li.vmi.clone(),
            });
        }
    }

    fn routes(&mut self) {
        let mut routes: Vec<_> = self.config.routes.iter().collect();
        routes.sort();
        for route in routes {
            let object = || ObjectRef::Route {
                network: route.network.clone(),
                prefix: route.prefix,
            };
            let Some(&vrf_index) = self.network_keys.get(&route.network) else {
                let reason = RejectReason::UnknownNetwork(route.network.clone());
                self.reject(object(), reason);
                continue;
            };
            let next_hop = match route.next_hop {
                NextHopConfig::Discard => NextHop::Discard,
                NextHopConfig::Port(id) => {
                    match self.ports.iter().find(|p| p.id == id).map(|p| &p.role) {
                        None => {
                            self.reject(object(), RejectReason::UnknownPort(id));
                            continue;
                        }
                        Some(PortRole::Host { vrf, .. }) if *vrf == vrf_index => NextHop::Port(id),
                        Some(_) => {
                            let reason = RejectReason::NotAHostPortOfNetwork {
                                port: id,
                                network: route.network.clone(),
                            };
                            self.reject(object(), reason);
                            continue;
                        }
                    }
                }
            };
            if self.vrfs[vrf_index]
                .insert(&route.prefix, next_hop)
                .is_err()
            {
                self.reject(object(), RejectReason::PrefixInUse(route.prefix));
            }
        }
    }
}

#[cfg(test)]
mod tests;
