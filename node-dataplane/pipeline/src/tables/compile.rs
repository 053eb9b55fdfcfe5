//! Compilation of a [`NodeConfig`] into [`Tables`]: every list sorted first,
//! each item checked against what came before it, the ones that cannot be
//! built rejected with a reason, the rest built. The stages run in the order
//! of the module diagram in [`super`].

use core::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use trunkline_wire::EthernetAddress;
use trunkline_wire::mpls::{FIRST_UNRESERVED_LABEL, MAX_LABEL};
use trunkline_wire::vxlan::MAX_VNI;

use super::{
    AddressPair, BridgeEntry, Encap, FloodLocal, HaGroup, HaRole, LabelTarget, Linked, LinkedId,
    LogicalInterface, MAX_VLAN, NO_GROUP, NO_VMI, NextHop, ObjectRef, PairId, Path, PathPeer, Peer,
    PeerId, Port, PortRole, RejectReason, Rejected, Remote, RemoteId, Tables, Underlay, VLAN_SLOTS,
    Vmi, VmiId, Vrf, mac_key,
};
use crate::config::{
    DEFAULT_GATEWAY_MAC, DhcpConfig, DhcpMode, Encapsulation, IpPrefix, NextHopConfig, NodeConfig,
    PeerConfig, PortId, PortKind,
};
use crate::hash::{FxHashMap, FxHashSet};
use crate::limit::TokenBucket;
use crate::lpm::Lpm;

mod north_south;

/// The encapsulations tried when a network names none: the original's
/// default order (without MPLS over GRE, which trunkline does not do).
const DEFAULT_ENCAPSULATIONS: [Encapsulation; 2] =
    [Encapsulation::MplsOverUdp, Encapsulation::Vxlan];

/// A network's DHCP settings as the server uses them: DNS servers split by
/// family, the domain in both encodings, texts cut to what their fields
/// hold (a domain label longer than 63 bytes is left out of the DHCPv6
/// list, which cannot carry it).
fn dhcp_server(config: &DhcpConfig) -> super::DhcpServer {
    let domain = config.domain.as_deref().unwrap_or_default();
    let domain = &domain.as_bytes()[..domain.len().min(255)];
    let mut wire = Vec::new();
    if !domain.is_empty() {
        for label in domain.split(|b| *b == b'.').filter(|l| !l.is_empty()) {
            if label.len() > 63 {
                wire.clear();
                break;
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        if !wire.is_empty() {
            wire.push(0);
        }
    }
    let boot_file = config.boot_file.as_deref().unwrap_or_default().as_bytes();
    super::DhcpServer {
        lease_secs: config.lease_secs.max(60),
        dns4: config
            .dns_servers
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        dns6: config
            .dns_servers
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            })
            .collect(),
        domain: domain.into(),
        domain_wire: wire.into_boxed_slice(),
        next_server: config.next_server,
        boot_file: boot_file[..boot_file.len().min(127)].into(),
    }
}

/// The state of one compilation.
pub(super) struct Compiler<'c> {
    config: &'c NodeConfig,
    previous: Option<&'c Tables>,
    rejected: Vec<Rejected>,
    ports: Vec<Port>,
    vmis: Vec<Vmi>,
    vrfs: Vec<Vrf>,
    vmi_keys: FxHashMap<String, VmiId>,
    network_keys: FxHashMap<String, usize>,
    logical_interfaces: Vec<LogicalInterface>,
    underlay: Option<Underlay>,
    peers: Vec<Peer>,
    peer_keys: FxHashMap<String, PeerId>,
    peer_addrs: FxHashMap<IpAddr, PeerId>,
    /// The encapsulations each peer accepts.
    peer_encaps: Vec<Vec<Encapsulation>>,
    remotes: Vec<Remote>,
    labels: FxHashMap<u32, LabelTarget>,
    vnis: FxHashMap<u32, usize>,
    remote_keys: FxHashMap<String, RemoteId>,
    ha_groups: Vec<HaGroup>,
    ha_group_keys: FxHashMap<String, usize>,
    pairs: Vec<AddressPair>,
    links: Vec<crate::network_policy::Link>,
    linked: Vec<Linked>,
    linked_keys: FxHashMap<String, LinkedId>,
}

impl<'c> Compiler<'c> {
    pub(super) fn new(config: &'c NodeConfig, previous: Option<&'c Tables>) -> Self {
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
            underlay: None,
            peers: Vec::new(),
            peer_keys: FxHashMap::default(),
            peer_addrs: FxHashMap::default(),
            peer_encaps: Vec::new(),
            remotes: Vec::new(),
            labels: FxHashMap::default(),
            vnis: FxHashMap::default(),
            remote_keys: FxHashMap::default(),
            ha_groups: Vec::new(),
            ha_group_keys: FxHashMap::default(),
            pairs: Vec::new(),
            links: Vec::new(),
            linked: Vec::new(),
            linked_keys: FxHashMap::default(),
        }
    }

    fn reject(&mut self, object: ObjectRef, reason: RejectReason) {
        self.rejected.push(Rejected { object, reason });
    }

    pub(super) fn run(mut self) -> (Tables, Vec<Rejected>) {
        let gateway_mac = EthernetAddress(self.config.gateway_mac);
        let gateway_mac = if gateway_mac.is_multicast() {
            self.reject(ObjectRef::Node, RejectReason::MulticastMac(gateway_mac));
            EthernetAddress(DEFAULT_GATEWAY_MAC)
        } else {
            gateway_mac
        };
        self.networks();
        self.ports();
        self.ha_groups();
        self.underlay();
        self.peers();
        self.network_peers();
        self.vmis();
        self.remote_vmis();
        self.logical_interfaces();
        self.multihomed();
        self.routed_peers();
        self.routes();
        self.address_pairs();
        self.linked_vmis();
        self.network_links();
        let north_south = self.north_south();
        for vrf in &mut self.vrfs {
            vrf.locals.sort();
        }
        let slots = self.ports.iter().map(|p| usize::from(p.id.0) + 1).max();
        let mut port_slots = vec![0u32; slots.unwrap_or(0)];
        for (i, port) in self.ports.iter().enumerate() {
            // At most 65536 ports (distinct u16 ids), so i + 1 fits a u32.
            port_slots[usize::from(port.id.0)] = i as u32 + 1;
        }
        let vrf_ids = self
            .vrfs
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id, i))
            .collect();
        let m = gateway_mac.0;
        let tables = Tables {
            gateway_mac,
            gateway_link_local: super::link_local(gateway_mac),
            server_duid: [0, 3, 0, 1, m[0], m[1], m[2], m[3], m[4], m[5]],
            port_slots: port_slots.into(),
            ports: Arc::new(self.ports),
            vmis: self.vmis.into_iter().map(Arc::new).collect(),
            vrfs: self.vrfs.into_iter().map(Arc::new).collect(),
            vmi_keys: Arc::new(
                self.vmi_keys
                    .into_iter()
                    .map(|(k, v)| (Arc::from(k), v))
                    .collect(),
            ),
            network_keys: Arc::new(self.network_keys),
            logical_interfaces: self.logical_interfaces.into_iter().map(Arc::new).collect(),
            underlay: self.underlay,
            peers: Arc::new(self.peers),
            peer_addrs: Arc::new(self.peer_addrs),
            remotes: Arc::new(self.remotes),
            vrf_ids: Arc::new(vrf_ids),
            labels: Arc::new(self.labels),
            vnis: Arc::new(self.vnis),
            cells_version: AtomicU64::new(0),
            remote_keys: Arc::new(self.remote_keys),
            ha_groups: Arc::new(self.ha_groups),
            ha_group_keys: Arc::new(self.ha_group_keys),
            north_south: Arc::new(north_south),
            pairs: Arc::new(self.pairs),
            links: Arc::new(self.links),
            linked: Arc::new(self.linked),
            clean: self.rejected.is_empty(),
        };
        (tables, self.rejected)
    }

    /// Whether `label` can be given to something: in range and free.
    fn label_problem(&self, label: u32) -> Option<String> {
        if !(FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label) {
            return Some(format!(
                "outside {FIRST_UNRESERVED_LABEL}..={MAX_LABEL} (0 to 15 are reserved)"
            ));
        }
        self.labels.get(&label).map(|target| match target {
            LabelTarget::Vmi(id) => {
                format!("already the label of VMI {}", self.vmis[id.index()].key)
            }
            LabelTarget::Vrf(v) => {
                format!("already the label of network {}", self.vrfs[*v].network)
            }
            LabelTarget::RoutedVrf(v) => {
                format!(
                    "already the routed label of network {}",
                    self.vrfs[*v].network
                )
            }
        })
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
            if let Some(label) = network.label
                && let Some(why) = self.label_problem(label)
            {
                self.reject(object(), RejectReason::LabelUnusable { label, why });
                continue;
            }
            if let Some(label) = network.routed_label {
                let why = if network.label == Some(label) {
                    Some("the same as its bridged label".to_owned())
                } else {
                    self.label_problem(label)
                };
                if let Some(why) = why {
                    self.reject(object(), RejectReason::LabelUnusable { label, why });
                    continue;
                }
            }
            if let Some(vni) = network.vni {
                let why = if !(1..=MAX_VNI).contains(&vni) {
                    Some(format!("outside 1..={MAX_VNI}"))
                } else {
                    self.vnis
                        .get(&vni)
                        .map(|v| format!("already the VNI of network {}", self.vrfs[*v].network))
                };
                if let Some(why) = why {
                    self.reject(object(), RejectReason::VniUnusable { vni, why });
                    continue;
                }
            }
            vrf_owners.insert(network.vrf, network.key.clone());
            let mut vrf = Vrf {
                network: network.key.clone(),
                id: network.vrf,
                v4: Lpm::default(),
                v6: Lpm::default(),
                bridge: FxHashMap::default(),
                bridges: network.mode.bridges(),
                routes: network.mode.routes(),
                flood_unknown_unicast: network.flood_unknown_unicast,
                vni: network.vni,
                label: network.label,
                gateways: Box::default(),
                locals: Vec::new(),
                peers: Vec::new(),
                routed_peers: Vec::new(),
                exit: network.fabric_exit,
                linked: false,
                generation: 0,
                mtu: network.mtu,
                dhcp: (network.mode.routes() && network.dhcp.mode == DhcpMode::Server)
                    .then(|| Box::new(dhcp_server(&network.dhcp))),
                dhcp_relay: match network.dhcp.mode {
                    DhcpMode::Relay(server) if network.mode.routes() => Some(server),
                    _ => None,
                },
            };
            let mut subnets: Vec<_> = network.subnets.iter().collect();
            subnets.sort();
            let mut gateways = Vec::new();
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
                gateways.push((subnet.prefix, subnet.gateway));
                // A network that only bridges has no gateway address.
                if vrf.routes {
                    // Two subnets sharing a gateway address both get it: the
                    // second insert finds the same receive route.
                    let _ = vrf.insert(&IpPrefix::host(subnet.gateway), NextHop::Receive);
                }
            }
            vrf.gateways = gateways.into_boxed_slice();
            let index = self.vrfs.len();
            if let Some(label) = network.label {
                self.labels.insert(label, LabelTarget::Vrf(index));
            }
            if let Some(label) = network.routed_label {
                self.labels.insert(label, LabelTarget::RoutedVrf(index));
            }
            if let Some(vni) = network.vni {
                self.vnis.insert(vni, index);
            }
            self.network_keys.insert(network.key.clone(), index);
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
                mtu: port.mtu,
                role,
                ha_group: NO_GROUP,
            });
        }
    }

    fn underlay(&mut self) {
        let Some(config) = &self.config.underlay else {
            return;
        };
        match self.ports.iter().find(|p| p.id == config.port) {
            None => {
                return self.reject(ObjectRef::Underlay, RejectReason::UnknownPort(config.port));
            }
            Some(p) if !matches!(p.role, PortRole::Fabric) => {
                return self.reject(
                    ObjectRef::Underlay,
                    RejectReason::NotAFabricPort(config.port),
                );
            }
            Some(_) => {}
        }
        let minimum = if config.address.is_ipv4() { 576 } else { 1280 };
        if config.mtu < minimum {
            return self.reject(ObjectRef::Underlay, RejectReason::MtuTooSmall(config.mtu));
        }
        let mac = EthernetAddress(config.mac);
        if mac.is_multicast() {
            return self.reject(ObjectRef::Underlay, RejectReason::MulticastMac(mac));
        }
        self.underlay = Some(Underlay {
            port: config.port,
            addr: config.address,
            mac,
            mtu: config.mtu,
        });
    }

    fn peers(&mut self) {
        let mut peers: Vec<&PeerConfig> = self.config.peers.iter().collect();
        peers.sort();
        for config in peers {
            let object = || ObjectRef::Peer(config.key.clone());
            if self.peer_keys.contains_key(&config.key) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            let Some(underlay) = self.underlay else {
                self.reject(object(), RejectReason::NoUnderlay);
                continue;
            };
            let addr = config.address;
            if addr.is_ipv4() != underlay.addr.is_ipv4()
                || addr == underlay.addr
                || addr.is_unspecified()
                || addr.is_multicast()
            {
                self.reject(object(), RejectReason::PeerAddressUnusable(addr));
                continue;
            }
            if let Some(by) = self.peer_addrs.get(&addr) {
                let by = self.peers[by.0 as usize].key().to_owned();
                self.reject(object(), RejectReason::PeerAddressInUse { addr, by });
                continue;
            }
            // A resolved next hop survives a recompile.
            let next_hop = self
                .previous
                .and_then(|p| p.peer_addrs.get(&addr).map(|id| &p.peers[id.0 as usize]))
                .map(|p| p.next_hop.clone())
                .unwrap_or_else(|| Arc::new(AtomicU64::new(0)));
            let id = PeerId(self.peers.len() as u32);
            self.peer_keys.insert(config.key.clone(), id);
            self.peer_addrs.insert(addr, id);
            let mut encaps = config.encapsulations.clone();
            encaps.sort();
            encaps.dedup();
            self.peer_encaps.push(encaps);
            self.peers.push(Peer {
                key: config.key.clone(),
                addr,
                next_hop,
            });
        }
    }

    /// Each network's peers, with what bridged frames toward each carry.
    fn network_peers(&mut self) {
        let mut networks: Vec<_> = self.config.networks.iter().collect();
        networks.sort();
        for network in networks {
            let Some(&vrf) = self.network_keys.get(&network.key) else {
                continue;
            };
            let mut keys: Vec<&String> = network.peers.iter().collect();
            keys.sort();
            keys.dedup();
            let order: &[Encapsulation] = if network.encapsulations.is_empty() {
                &DEFAULT_ENCAPSULATIONS
            } else {
                &network.encapsulations
            };
            for key in keys {
                let object = || ObjectRef::Network(network.key.clone());
                let Some(&peer) = self.peer_keys.get(key) else {
                    self.reject(object(), RejectReason::UnknownPeer(key.clone()));
                    continue;
                };
                let supported = &self.peer_encaps[peer.0 as usize];
                let chosen = order.iter().find(|e| supported.contains(e));
                let encap = match chosen {
                    None => Err("the peer accepts none of the network's encapsulations"),
                    Some(Encapsulation::MplsOverUdp) => network
                        .label
                        .map(Encap::Mpls)
                        .ok_or("MPLS over UDP needs the network's label"),
                    Some(Encapsulation::Vxlan) => network
                        .vni
                        .map(Encap::Vxlan)
                        .ok_or("VXLAN needs the network's VNI"),
                };
                match encap {
                    Ok(encap) => self.vrfs[vrf].peers.push((peer, encap)),
                    Err(why) => self.reject(
                        object(),
                        RejectReason::NoEncapsulation {
                            peer: key.clone(),
                            why,
                        },
                    ),
                }
            }
            self.vrfs[vrf].peers.sort();
        }
    }

    fn describe(&self, vrf: &Vrf, next_hop: NextHop) -> String {
        match next_hop {
            NextHop::Receive => format!("the gateway of network {}", vrf.network),
            NextHop::Vmi(id) => format!("VMI {}", self.vmis[id.index()].key),
            NextHop::Remote(id) => format!("remote VMI {}", self.remotes[id.0 as usize].key),
            NextHop::Peer(id) => format!("a route to peer {}", self.peers[id.0 as usize].key()),
            NextHop::Port(port) => format!("a route to port {port}"),
            NextHop::Pair(id) => {
                format!("allowed address pair {}", self.pairs[id.0 as usize].prefix)
            }
            NextHop::Discard => "a discard route".to_owned(),
            NextHop::Leak { vmi, .. } => {
                format!("VMI {} of a connected network", self.vmis[vmi.index()].key)
            }
            NextHop::LeakRemote { remote, .. } => format!(
                "VMI {} of a connected network, on another node",
                self.linked[remote.0 as usize].key
            ),
            NextHop::Tunnel { peer, label } => format!(
                "a route to {} with label {label}",
                self.peers[peer.0 as usize].key()
            ),
        }
    }

    fn bridge_owner(&self, entry: BridgeEntry) -> String {
        match entry {
            BridgeEntry::Vmi(id) => self.vmis[id.index()].key.clone(),
            BridgeEntry::Remote(id) => self.remotes[id.0 as usize].key.clone(),
        }
    }

    /// The first of `ips` (sorted, deduplicated) already routed in `vrf`.
    fn address_conflict(&self, vrf: usize, ips: &[IpAddr]) -> Option<(IpAddr, String)> {
        let vrf = &self.vrfs[vrf];
        ips.iter().find_map(|ip| {
            vrf.exact(&IpPrefix::host(*ip))
                .map(|nh| (*ip, self.describe(vrf, nh)))
        })
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
            if let Some(&by) = self.vrfs[vrf_index].bridge.get(&mac_key(mac)) {
                let by = self.bridge_owner(by);
                self.reject(object(), RejectReason::MacInUse { mac, by });
                continue;
            }
            let mut ips = config.ips.clone();
            ips.sort();
            ips.dedup();
            if let Some((ip, by)) = self.address_conflict(vrf_index, &ips) {
                self.reject(object(), RejectReason::AddressInUse { ip, by });
                continue;
            }
            if let Some(label) = config.label
                && let Some(why) = self.label_problem(label)
            {
                self.reject(object(), RejectReason::LabelUnusable { label, why });
                continue;
            }
            let id = VmiId(self.vmis.len() as u32);
            let vrf = &mut self.vrfs[vrf_index];
            for ip in &ips {
                let _ = vrf.insert(&IpPrefix::host(*ip), NextHop::Vmi(id));
            }
            vrf.bridge.insert(mac_key(mac), BridgeEntry::Vmi(id));
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
                    vrf.bridge
                        .entry(mac_key(*pair_mac))
                        .or_insert(BridgeEntry::Vmi(id));
                }
            }
            if let Some(label) = config.label {
                self.labels.insert(label, LabelTarget::Vmi(id));
            }
            let previous = self
                .previous
                .and_then(|p| p.vmi_id(&config.key).and_then(|id| p.vmi(id)));
            let counters = previous.map(|vmi| vmi.counters.clone()).unwrap_or_default();
            let limit = self.config.punt_limit;
            let (rate, burst) = (u64::from(limit.per_second), u64::from(limit.burst));
            let punt = previous
                .map(|vmi| vmi.punt.clone())
                .filter(|bucket| bucket.limits() == (rate, burst))
                .unwrap_or_else(|| Arc::new(TokenBucket::new(rate, burst)));
            let policy = self.config.policies.get(&config.key).map(|rules| {
                let before = previous.and_then(|vmi| vmi.policy.as_deref());
                Arc::new(crate::policy::VmiPolicy::new(
                    &config.key,
                    rules.clone(),
                    before,
                ))
            });
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
                label: config.label,
                counters,
                path: None,
                punt,
                pair_routes: Box::default(),
                policy,
            });
        }
    }

    /// Network policies across nodes: the VMIs on other nodes of networks
    /// linked to this node's, each with the tunnel that reaches it (its
    /// network's encapsulation toward its peer: its routed label, or the
    /// network's VNI and its MAC). Their host routes go into the linking
    /// networks' VRFs with the links ([`Compiler::network_links`]).
    fn linked_vmis(&mut self) {
        let mut configs: Vec<_> = self.config.linked_vmis.iter().collect();
        configs.sort();
        for config in configs {
            let object = || ObjectRef::RemoteVmi(config.key.clone());
            if self.linked_keys.contains_key(&config.key) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            let Some(&peer) = self.peer_keys.get(&config.peer) else {
                self.reject(object(), RejectReason::UnknownPeer(config.peer.clone()));
                continue;
            };
            let order: &[Encapsulation] = if config.encapsulations.is_empty() {
                &DEFAULT_ENCAPSULATIONS
            } else {
                &config.encapsulations
            };
            let supported = &self.peer_encaps[peer.0 as usize];
            let routed = match order.iter().find(|e| supported.contains(e)) {
                None => Err("the peer accepts none of the network's encapsulations"),
                Some(Encapsulation::MplsOverUdp) => config
                    .label
                    .filter(|l| (FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(l))
                    .map(Encap::Mpls)
                    .ok_or("MPLS over UDP needs the VMI's label"),
                Some(Encapsulation::Vxlan) => config
                    .vni
                    .map(Encap::Vxlan)
                    .ok_or("VXLAN needs the network's VNI"),
            };
            let routed = match routed {
                Ok(routed) => routed,
                Err(why) => {
                    let peer = config.peer.clone();
                    self.reject(object(), RejectReason::NoEncapsulation { peer, why });
                    continue;
                }
            };
            let mac = EthernetAddress(config.mac);
            if mac.is_multicast() {
                self.reject(object(), RejectReason::MulticastMac(mac));
                continue;
            }
            let id = LinkedId(self.linked.len() as u32);
            self.linked_keys.insert(config.key.clone(), id);
            self.linked.push(Linked {
                key: config.key.clone(),
                network: config.network.clone(),
                peer,
                mac,
                routed,
            });
        }
    }

    /// Network policies: each link from network A to network B gives A
    /// (when held here) the host routes of B's local VMIs (their own
    /// addresses, not their allowed address pairs) and of B's VMIs on other
    /// nodes, unless A routes that address itself. A link whose A is not
    /// held here is kept for the packets B receives from A's VMIs on other
    /// nodes, which are decided by it; a link naming no network of this
    /// node is rejected.
    fn network_links(&mut self) {
        let mut configs: Vec<_> = self.config.network_links.iter().collect();
        configs.sort();
        configs.dedup_by(|a, b| a.from == b.from && a.to == b.to);
        let first = self.links.len();
        for config in configs {
            let object = || ObjectRef::Network(config.from.clone());
            let from_vrf = self.network_keys.get(&config.from).copied();
            let to_vrf = self.network_keys.get(&config.to).copied();
            if from_vrf.is_none() && to_vrf.is_none() {
                self.reject(object(), RejectReason::UnknownNetwork(config.from.clone()));
                continue;
            }
            if config.from == config.to {
                continue;
            }
            let back = self
                .config
                .network_links
                .iter()
                .find(|l| l.from == config.to && l.to == config.from);
            let previous = self.previous.and_then(|p| {
                p.links
                    .iter()
                    .find(|l| l.config == *config)
                    .map(|l| l.counters.clone())
            });
            let id = super::LinkId(self.links.len() as u32);
            self.links.push(crate::network_policy::Link {
                config: config.clone(),
                zone: crate::network_policy::Link::zone_of(&config.from, &config.to),
                generation: crate::network_policy::Link::generation_of(config, back),
                counters: previous
                    .unwrap_or_else(|| Arc::new(crate::network_policy::LinkCounters::new(config))),
                reverse: None,
            });
            for vrf in [from_vrf, to_vrf].into_iter().flatten() {
                self.vrfs[vrf].linked = true;
            }
            let Some(from_vrf) = from_vrf else {
                continue;
            };
            let mut targets: Vec<(IpAddr, NextHop)> = Vec::new();
            if let Some(to_vrf) = to_vrf {
                targets.extend(
                    self.vmis
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.vrf == to_vrf)
                        .flat_map(|(i, v)| {
                            v.ips.iter().map(move |ip| {
                                (
                                    *ip,
                                    NextHop::Leak {
                                        vmi: VmiId(i as u32),
                                        link: id,
                                    },
                                )
                            })
                        }),
                );
            }
            let remotes = self
                .config
                .linked_vmis
                .iter()
                .filter(|l| l.network == config.to)
                .filter_map(|l| self.linked_keys.get(&l.key).map(|id| (l, *id)));
            for (l, remote) in remotes {
                targets.extend(
                    l.ips
                        .iter()
                        .map(|ip| (*ip, NextHop::LeakRemote { remote, link: id })),
                );
            }
            let vrf = &mut self.vrfs[from_vrf];
            for (ip, next_hop) in targets {
                let prefix = IpPrefix::host(ip);
                if vrf.exact(&prefix).is_none() {
                    let _ = vrf.insert(&prefix, next_hop);
                }
            }
        }
        // Each direction finds the other (the receiver decides a packet by
        // the link in the direction it was opened).
        for i in first..self.links.len() {
            let (from, to) = (&self.links[i].config.from, &self.links[i].config.to);
            let reverse = self.links[first..]
                .iter()
                .position(|l| l.config.from == *to && l.config.to == *from)
                .map(|j| super::LinkId((first + j) as u32));
            self.links[i].reverse = reverse;
        }
    }

    fn remote_vmis(&mut self) {
        let mut remotes: Vec<_> = self.config.remote_vmis.iter().collect();
        remotes.sort();
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        for config in remotes {
            let object = || ObjectRef::RemoteVmi(config.key.clone());
            if self.vmi_keys.contains_key(&config.key) || !seen.insert(config.key.as_str()) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            let Some(&vrf_index) = self.network_keys.get(&config.network) else {
                let reason = RejectReason::UnknownNetwork(config.network.clone());
                self.reject(object(), reason);
                continue;
            };
            let Some(&peer) = self.peer_keys.get(&config.peer) else {
                self.reject(object(), RejectReason::UnknownPeer(config.peer.clone()));
                continue;
            };
            let Some(bridged) = self.vrfs[vrf_index].peer_encap(peer) else {
                // The network does not list the peer (or no encapsulation
                // toward it works: its own rejection says why).
                self.reject(object(), RejectReason::UnknownPeer(config.peer.clone()));
                continue;
            };
            let routed = match bridged {
                Encap::Vxlan(vni) => Encap::Vxlan(vni),
                Encap::Mpls(_) => match config.label {
                    Some(label) if (FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label) => {
                        Encap::Mpls(label)
                    }
                    Some(label) => {
                        let why = format!("outside {FIRST_UNRESERVED_LABEL}..={MAX_LABEL}");
                        self.reject(object(), RejectReason::LabelUnusable { label, why });
                        continue;
                    }
                    None => {
                        let reason = RejectReason::NoEncapsulation {
                            peer: config.peer.clone(),
                            why: "MPLS over UDP needs the remote VMI's label",
                        };
                        self.reject(object(), reason);
                        continue;
                    }
                },
            };
            let mac = EthernetAddress(config.mac);
            if mac.is_multicast() {
                self.reject(object(), RejectReason::MulticastMac(mac));
                continue;
            }
            if let Some(&by) = self.vrfs[vrf_index].bridge.get(&mac_key(mac)) {
                let by = self.bridge_owner(by);
                self.reject(object(), RejectReason::MacInUse { mac, by });
                continue;
            }
            let mut ips = config.ips.clone();
            ips.sort();
            ips.dedup();
            if let Some((ip, by)) = self.address_conflict(vrf_index, &ips) {
                self.reject(object(), RejectReason::AddressInUse { ip, by });
                continue;
            }
            let id = RemoteId(self.remotes.len() as u32);
            self.remote_keys.insert(config.key.clone(), id);
            let vrf = &mut self.vrfs[vrf_index];
            for ip in &ips {
                let _ = vrf.insert(&IpPrefix::host(*ip), NextHop::Remote(id));
            }
            vrf.bridge.insert(mac_key(mac), BridgeEntry::Remote(id));
            self.remotes.push(Remote {
                key: config.key.clone(),
                vrf: vrf_index,
                peer,
                mac,
                ips: ips.into_boxed_slice(),
                routed,
                bridged,
                path: None,
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
                vmi.egress = Some(super::Egress {
                    port: li.port,
                    vlan: li.vlan,
                });
            }
            self.vrfs[vmi.vrf].locals.push(FloodLocal {
                port: li.port,
                vlan: li.vlan,
                vmi: vmi_id,
            });
            self.logical_interfaces.push(LogicalInterface {
                key: li.key.clone(),
                port: li.port,
                vlan: li.vlan,
                vmi: li.vmi.clone(),
            });
        }
    }

    /// The HA groups the node is a member of: a role cell each (shared with
    /// the previous tables' group of the same key and mode), and their
    /// member ports marked.
    fn ha_groups(&mut self) {
        let mut groups: Vec<_> = self.config.ha_groups.iter().collect();
        groups.sort();
        for config in groups {
            let object = || ObjectRef::HaGroup(config.key.clone());
            if self.ha_group_keys.contains_key(&config.key) {
                self.reject(object(), RejectReason::Duplicate);
                continue;
            }
            let index = self.ha_groups.len();
            let mut ports = config.ports.clone();
            ports.sort();
            ports.dedup();
            for id in ports {
                match self.ports.iter_mut().find(|p| p.id == id) {
                    None => self.reject(object(), RejectReason::UnknownPort(id)),
                    Some(p) if !matches!(p.role, PortRole::Gateway { .. }) => {
                        self.reject(object(), RejectReason::NotAGatewayPort(id))
                    }
                    Some(p) if p.ha_group != NO_GROUP => {
                        let by = self.ha_groups[p.ha_group as usize].key.clone();
                        self.reject(object(), RejectReason::PortInGroup { port: id, by })
                    }
                    Some(p) => p.ha_group = index as u32,
                }
            }
            let role = self
                .previous
                .and_then(|p| p.ha_group_keys.get(&config.key).map(|g| &p.ha_groups[*g]))
                .filter(|g| g.mode == config.mode)
                .map(|g| g.role.clone())
                .unwrap_or_else(|| Arc::new(AtomicU8::new(HaRole::initial(config.mode).to_u8())));
            self.ha_group_keys.insert(config.key.clone(), index);
            self.ha_groups.push(HaGroup {
                key: config.key.clone(),
                mode: config.mode,
                role,
            });
        }
    }

    /// What frames toward `peer` carry for a VMI of VRF `vrf` whose routed
    /// label is `label`.
    fn path_peer(
        &self,
        vrf: usize,
        peer: PeerId,
        label: Option<u32>,
    ) -> Result<PathPeer, RejectReason> {
        let key = || self.peers[peer.0 as usize].key().to_owned();
        let bridged = self.vrfs[vrf]
            .peer_encap(peer)
            .ok_or_else(|| RejectReason::UnknownPeer(key()))?;
        let routed = match bridged {
            Encap::Vxlan(vni) => Encap::Vxlan(vni),
            Encap::Mpls(_) => match label {
                Some(label) if (FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label) => {
                    Encap::Mpls(label)
                }
                _ => {
                    return Err(RejectReason::NoEncapsulation {
                        peer: key(),
                        why: "MPLS over UDP needs the VMI's label",
                    });
                }
            },
        };
        Ok(PathPeer {
            peer,
            routed,
            bridged,
        })
    }

    /// The paths of the VMIs several nodes serve: every peer that can
    /// deliver each (with a remote VMI's own peer), and the current one,
    /// carried over from the previous tables by the peer it names.
    fn multihomed(&mut self) {
        let mut configs: Vec<_> = self.config.multihomed.iter().collect();
        configs.sort();
        let mut done: FxHashSet<&str> = FxHashSet::default();
        for config in configs {
            let key = config.vmi.as_str();
            if !done.insert(key) {
                self.reject(ObjectRef::Vmi(config.vmi.clone()), RejectReason::Duplicate);
                continue;
            }
            let (vrf, label, default, object) = if let Some(id) = self.vmi_keys.get(key) {
                let vmi = &self.vmis[id.index()];
                (vmi.vrf, vmi.label, None, ObjectRef::Vmi(config.vmi.clone()))
            } else if let Some(id) = self.remote_keys.get(key) {
                let remote = &self.remotes[id.0 as usize];
                let label = match remote.routed {
                    Encap::Mpls(label) => Some(label),
                    Encap::Vxlan(_) => self
                        .config
                        .remote_vmis
                        .iter()
                        .find(|r| r.key == config.vmi)
                        .and_then(|r| r.label),
                };
                (
                    remote.vrf,
                    label,
                    Some(remote.peer),
                    ObjectRef::RemoteVmi(config.vmi.clone()),
                )
            } else {
                self.reject(
                    ObjectRef::Vmi(config.vmi.clone()),
                    RejectReason::UnknownVmi(config.vmi.clone()),
                );
                continue;
            };
            let mut peers: Vec<PeerId> = default.into_iter().collect();
            for peer_key in &config.peers {
                match self.peer_keys.get(peer_key) {
                    Some(&p) => peers.push(p),
                    None => {
                        self.reject(object.clone(), RejectReason::UnknownPeer(peer_key.clone()))
                    }
                }
            }
            let mut paths: Vec<(String, PathPeer)> = Vec::new();
            for peer in peers {
                let peer_key = self.peers[peer.0 as usize].key().to_owned();
                if paths.iter().any(|(k, _)| *k == peer_key) {
                    continue;
                }
                match self.path_peer(vrf, peer, label) {
                    Ok(p) => paths.push((peer_key, p)),
                    Err(reason) => self.reject(object.clone(), reason),
                }
            }
            paths.sort_by(|a, b| a.0.cmp(&b.0));
            // Where it went before, when that path still exists; else here
            // (a VMI of this node) or its own peer.
            let before = self
                .previous
                .and_then(|p| p.vmi_path(key))
                .map(|via| via.map(str::to_owned));
            let position = |k: &str| paths.iter().position(|(p, _)| p == k).map(|i| i as u32);
            let via = match (before, default) {
                (Some(None), None) => Some(Path::HERE),
                (Some(Some(k)), _) => position(&k),
                _ => None,
            }
            .or_else(|| match default {
                None => Some(Path::HERE),
                Some(peer) => position(self.peers[peer.0 as usize].key()),
            })
            .unwrap_or(0);
            let path = Some(Box::new(Path {
                via: AtomicU32::new(via),
                peers: paths.into_iter().map(|(_, p)| p).collect(),
                seen: AtomicBool::new(false),
            }));
            if let Some(id) = self.vmi_keys.get(key) {
                self.vmis[id.index()].path = path;
            } else if let Some(id) = self.remote_keys.get(key) {
                self.remotes[id.0 as usize].path = path;
            }
        }
    }

    /// A host route per allowed-address-pair address of the local VMIs
    /// (prefixes of one address only: wider ones only relax port
    /// security), unless the address is routed otherwise; VMIs declaring
    /// the same address share it. A holder learnt by the tables this
    /// compilation replaces is kept.
    fn address_pairs(&mut self) {
        for i in 0..self.vmis.len() {
            let id = VmiId(i as u32);
            let vrf_index = self.vmis[id.index()].vrf;
            let mut routes = Vec::new();
            let pairs: Vec<(IpPrefix, EthernetAddress)> = self.vmis[id.index()].pairs.to_vec();
            for (prefix, mac) in pairs {
                if prefix.prefix_len() != IpPrefix::host(prefix.addr()).prefix_len() {
                    continue;
                }
                let vrf = &mut self.vrfs[vrf_index];
                let pair = match vrf.exact(&prefix) {
                    None => {
                        let pair = PairId(self.pairs.len() as u32);
                        let _ = vrf.insert(&prefix, NextHop::Pair(pair));
                        self.pairs.push(AddressPair {
                            prefix,
                            owners: Vec::new(),
                            holder: AtomicU32::new(0),
                        });
                        pair
                    }
                    Some(NextHop::Pair(pair)) => pair,
                    Some(_) => continue,
                };
                let owners = &mut self.pairs[pair.0 as usize].owners;
                if !owners.iter().any(|(v, _)| *v == id) {
                    owners.push((id, mac));
                }
                routes.push((prefix, pair));
            }
            self.vmis[id.index()].pair_routes = routes.into_boxed_slice();
        }
        for pair in &mut self.pairs {
            pair.owners
                .sort_by(|a, b| self.vmis[a.0.index()].key.cmp(&self.vmis[b.0.index()].key));
        }
        let Some(previous) = self.previous else {
            return;
        };
        for pair in &self.pairs {
            let (first, _) = pair.owners[0];
            let network = &self.vrfs[self.vmis[first.index()].vrf].network;
            let Some(held_by) = previous.address_pair_holder(network, pair.prefix.addr()) else {
                continue;
            };
            if let Some(i) = pair
                .owners
                .iter()
                .position(|(v, _)| self.vmis[v.index()].key == held_by)
            {
                pair.holder.store(i as u32, Ordering::Relaxed);
            }
        }
    }

    fn routes(&mut self) {
        let mut routes: Vec<_> = self.config.routes.iter().collect();
        routes.sort();
        for route in routes {
            let object = || ObjectRef::Route {
                network: route.network.clone(),
                prefix: route.prefix,
                next_hop: route.next_hop.clone(),
            };
            let Some(&vrf_index) = self.network_keys.get(&route.network) else {
                let reason = RejectReason::UnknownNetwork(route.network.clone());
                self.reject(object(), reason);
                continue;
            };
            let next_hop = match &route.next_hop {
                NextHopConfig::Discard => NextHop::Discard,
                NextHopConfig::Tunnel { peer: key, label } => {
                    match self.tunnel_next_hop(vrf_index, key, *label) {
                        Ok(next_hop) => next_hop,
                        Err(reason) => {
                            self.reject(object(), reason);
                            continue;
                        }
                    }
                }
                NextHopConfig::Peer(key) => match self.peer_keys.get(key) {
                    Some(&peer) if self.vrfs[vrf_index].peer_encap(peer).is_some() => {
                        NextHop::Peer(peer)
                    }
                    _ => {
                        self.reject(object(), RejectReason::UnknownPeer(key.clone()));
                        continue;
                    }
                },
                NextHopConfig::Port(id) => {
                    let id = *id;
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
