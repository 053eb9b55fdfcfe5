//! What one node must enforce, from the objects the operator accepted: pure
//! (no I/O), so it is tested on plain objects.
//!
//! ```text
//!  API objects --trunkline_model::from_api--> Snapshot (domain types)
//!  PhysicalRouter <node>  --> ports (spec.physicalInterfaces, in order)
//!  LogicalInterface (router = node, Accepted for its generation)
//!     --> VirtualMachineInterface (Accepted) --> VirtualNetwork (Accepted)
//!  VirtualGateway (node listed, Accepted) --> VirtualNetwork (Accepted)
//!  GatewayHAGroup (Accepted, node a member or witness) --> ha::plan (HA groups,
//!     BPDU attachments, multi-homed VMIs, the HA thread's plan)
//!  DCGateway (Accepted, serving a network held here) --> routed peer + labelled routes
//!  VirtualNetwork status.fabricExit --> the VRF's exit (SNAT / IP fabric)
//!  (port MTUs from the router's physical interfaces; each network's MTU
//!  and DHCP settings)
//!  ==> Desired { ports, config: pipeline NodeConfig, held, exceptions, ha }
//! ```
//!
//! What the node reports comes from here too: the objects the tables hold
//! (`held`), and the objects labelled for this node (the operator's ask)
//! that they do not hold, with why (`exceptions`).
//!
//! The operator decides what is valid across objects; the agent only takes
//! objects it accepted at their current generation, by an `Accepted`
//! condition or by the value of their node labels (`Meta::accepted`, read
//! by the model): an invalid object is never
//! programmed; a changed one is enforced as its last accepted version until
//! the operator has accepted its new generation (`last_accepted`, which runs
//! before this module and reports such objects as exceptions).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use trunkline_model::encapsulation::NODE_ENCAPSULATIONS;
use trunkline_model::{
    Dhcp as ModelDhcp, DhcpMode as ModelDhcpMode, Encapsulation as ModelEncapsulation,
    FabricExit as ModelFabricExit, ForwardingMode as ModelForwardingMode, HaLayout, Meta,
    NamespacedName, ObjectKey, Placement, Snapshot, VirtualGateway, VirtualMachineInterface,
    VirtualNetwork,
};
use trunkline_pipeline::config::{
    AllowedAddressPair, CreationOrder, DEFAULT_SNAT_PORTS, DhcpConfig, DhcpMode, Encapsulation,
    FabricExit, FabricRouteConfig, ForwardingMode, LinkedVmiConfig, LogicalInterfaceConfig,
    NetworkConfig, NextHopConfig, NodeConfig, NorthSouthConfig, PeerConfig, PortConfig, PortId,
    PortKind, RemoteVmiConfig, RouteConfig, SubnetConfig, UnderlayConfig, VmiConfig,
};

use crate::ha::HaPlan;
use crate::hostnet::{FabricFacts, VgwSpec, interface_mac};

/// What a port of the node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRole {
    /// A trunk toward remote instances (a physical interface).
    Trunk,
    /// The fabric (underlay) interface, shared with the host: only tunnel
    /// packets for `underlay` go to the fast path.
    Fabric {
        /// The node's underlay address.
        underlay: IpAddr,
    },
    /// A tap this agent creates (a virtual gateway).
    Tap,
}

/// A port of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Linux interface name.
    pub name: String,
    /// What it is.
    pub role: PortRole,
}

impl PortSpec {
    /// Whether it is a tap of a virtual gateway.
    pub fn is_tap(&self) -> bool {
        self.role == PortRole::Tap
    }
}

/// What the agent read from its host (and its flags) that the tables need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The fabric interface's MAC and MTU, once read.
    pub fabric: Option<FabricFacts>,
    /// The host's routes out of the fabric interface (where packets leaving
    /// the overlay untunneled go next).
    pub fabric_routes: Vec<FabricRouteConfig>,
    /// The largest frame the fast path's ports receive whole.
    pub max_frame: usize,
    /// The ports SNAT translates to (`--snat-ports`).
    pub snat_ports: (u16, u16),
}

impl Default for HostFacts {
    fn default() -> Self {
        Self {
            fabric: None,
            fabric_routes: Vec::new(),
            max_frame: trunkline_xdp::FAST_PATH_MAX_FRAME,
            snat_ports: DEFAULT_SNAT_PORTS,
        }
    }
}

/// An Ethernet header with an 802.1Q tag: what a frame adds to its MTU.
const L2_OVERHEAD: usize = 18;
/// An untagged Ethernet header (the fabric's).
const ETHERNET_HEADER: usize = 14;

/// Everything one node enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// The node's ports: trunks in the router's order, the fabric port,
    /// then virtual gateway taps; the index of a port is its [`PortId`].
    pub ports: Vec<PortSpec>,
    /// The node's virtual gateways, each with its object for the report
    /// (held only once its host side is in place).
    pub virtual_gateways: Vec<(VgwSpec, ObjectKey)>,
    /// The fabric interface whose MAC and MTU the host thread reads.
    pub fabric_interface: Option<String>,
    /// The tables' input.
    pub config: NodeConfig,
    /// Every object `config` holds (logical interfaces, local and remote
    /// VMIs, networks, external VTEPs; virtual gateways are in
    /// `virtual_gateways`). Hashed: at 16K pairs each build inserts and
    /// looks up every object of the node, which in a B-tree of keys cost
    /// a sixth of the build.
    pub held: HashSet<ObjectKey>,
    /// The objects labelled for this node (the operator asks it to hold
    /// them) that it does not hold, with why: the report's exceptions.
    pub exceptions: BTreeMap<ObjectKey, String>,
    /// Objects of this node left out, and why (for logs).
    pub skipped: Vec<String>,
    /// Ports whose declared MTU the fast path cannot carry: (port, why).
    pub mtu_problems: Vec<(String, String)>,
    /// Why the underlay waits: the router declares a fabric port whose MAC
    /// and MTU the host thread has not read yet (no tunnel, SNAT or fabric
    /// exit works until then).
    pub fabric_waiting: Option<String>,
    /// What the HA thread works with.
    pub ha: HaPlan,
}

impl Desired {
    /// Whether `other` makes the same tables (and holds the same objects,
    /// and asks the same of the HA thread): only its exceptions or log
    /// lines differ.
    pub fn same_tables(&self, other: &Desired) -> bool {
        self.ports == other.ports
            && self.virtual_gateways == other.virtual_gateways
            && self.fabric_interface == other.fabric_interface
            && self.config == other.config
            && self.held == other.held
            && self.mtu_problems == other.mtu_problems
            && self.fabric_waiting == other.fabric_waiting
            && self.ha == other.ha
    }
}

/// The pipeline's key of a namespaced object: `namespace/name`.
fn key(name: &NamespacedName) -> String {
    key_of(&name.namespace, &name.name)
}

/// [`key`] of `namespace/name` without a `NamespacedName` (not by
/// `format!`: this runs for every VMI of every build).
fn key_of(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + 1 + name.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}

/// The pipeline's key of an external VTEP peer.
pub fn vtep_key(name: &str) -> String {
    format!("ExternalVTEP/{name}")
}

/// The pipeline's key of a DC gateway peer.
pub fn dc_gateway_key(name: &str) -> String {
    format!("DCGateway/{name}")
}

/// The VRF id of a network: its VNI, unique in the cluster and stable for
/// the network's life, so that flows keyed by VRF survive table rebuilds;
/// above every VNI when it has none (yet).
fn vrf_id(network: &VirtualNetwork, index: usize) -> u32 {
    network.vni_in_use.unwrap_or(0x0100_0000 + index as u32)
}

/// Records that the object of `meta` is left out, and why: for the logs
/// (`skipped`) and the report (its exception, when it is one).
fn skip(out: &mut Desired, meta: &Meta, why: String) {
    out.skipped
        .push(format!("{} {}: {why}", meta.key.kind, meta.name()));
    out.exceptions.entry(meta.key.clone()).or_insert(why);
}

fn encapsulation(e: ModelEncapsulation) -> Encapsulation {
    match e {
        ModelEncapsulation::MplsOverUdp => Encapsulation::MplsOverUdp,
        ModelEncapsulation::Vxlan => Encapsulation::Vxlan,
    }
}

/// A network's DHCP settings for the pipeline. A relay to an IPv6 server
/// (the API refuses one) leaves the gateway out.
fn dhcp(d: &ModelDhcp) -> DhcpConfig {
    DhcpConfig {
        mode: match d.mode {
            ModelDhcpMode::Server => DhcpMode::Server,
            ModelDhcpMode::Relay(IpAddr::V4(server)) => DhcpMode::Relay(server),
            ModelDhcpMode::Off | ModelDhcpMode::Relay(IpAddr::V6(_)) => DhcpMode::Off,
        },
        lease_secs: d.lease_secs,
        dns_servers: d.dns_servers.clone(),
        domain: d.domain.clone(),
        next_server: d.next_server,
        boot_file: d.boot_file.clone(),
    }
}

fn forwarding_mode(m: ModelForwardingMode) -> ForwardingMode {
    match m {
        ModelForwardingMode::L2L3 => ForwardingMode::L2L3,
        ModelForwardingMode::L2 => ForwardingMode::L2,
        ModelForwardingMode::L3 => ForwardingMode::L3,
    }
}

/// Computes what node `node` must enforce from every object of `snapshot`
/// and what it read from its host.
pub fn desired(node: &str, snapshot: &Snapshot, host: &HostFacts) -> Desired {
    desired_placed(node, snapshot, host, &Placement::from_status(snapshot))
}

/// [`desired`] with `placement`, which must be `Placement::from_status` of
/// `snapshot` (the compile loop keeps it across builds while
/// `Placement::status_fingerprint` holds, see `build`).
pub fn desired_placed(
    node: &str,
    snapshot: &Snapshot,
    host: &HostFacts,
    placement: &Placement,
) -> Desired {
    let mut out = Desired::default();
    let Some(router) = snapshot
        .physical_routers
        .iter()
        .find(|r| r.meta.name() == node)
    else {
        out.skipped.push(format!(
            "no PhysicalRouter named {node}: nothing to enforce"
        ));
        return out;
    };
    out.ports = router
        .interfaces
        .iter()
        .map(|p| PortSpec {
            name: p.name.clone(),
            role: PortRole::Trunk,
        })
        .collect();
    // Jumbo frames beyond the fast path's buffers are refused here, in the
    // node's status, rather than lost (the kernel would drop them, counted
    // as rx_kernel_dropped).
    let largest_mtu = host.max_frame.saturating_sub(L2_OVERHEAD);
    for interface in &router.interfaces {
        if let Some(mtu) = interface.mtu.filter(|m| *m as usize > largest_mtu) {
            out.mtu_problems.push((
                interface.name.clone(),
                format!(
                    "declared MTU {mtu} exceeds the largest the fast path carries ({largest_mtu}): larger frames are dropped and counted (rx_kernel_dropped, frame_too_large); set spec.physicalInterfaces[].mtu to {largest_mtu} or less"
                ),
            ));
        }
    }
    out.config.ports = router
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, port)| PortConfig {
            id: PortId(i as u16),
            name: port.name.clone(),
            mtu: port.mtu.and_then(|m| u16::try_from(m).ok()),
            kind: PortKind::Gateway,
        })
        .collect();
    fabric(router, host, &mut out);

    // Keyed by borrowed (namespace, name), ordered as `NamespacedName`:
    // at 16K VMIs an owned key per VMI per build was a tenth of the build.
    let vmis: BTreeMap<(&str, &str), &VirtualMachineInterface> = snapshot
        .virtual_machine_interfaces
        .iter()
        .map(|v| ((v.meta.namespace(), v.meta.name()), &**v))
        .collect();
    let networks: BTreeMap<NamespacedName, &VirtualNetwork> = snapshot
        .virtual_networks
        .iter()
        .map(|n| (n.name(), &**n))
        .collect();

    let mut used_vmis = BTreeSet::new();
    let mut lis: Vec<LogicalInterfaceConfig> = Vec::new();
    for li in snapshot
        .logical_interfaces
        .iter()
        .filter(|li| li.physical_router == node)
    {
        let name = li.meta.name();
        if !li.meta.accepted {
            skip(
                &mut out,
                &li.meta,
                "not accepted (yet) by the operator".to_owned(),
            );
            continue;
        }
        let Some(port) = out
            .ports
            .iter()
            .position(|p| p.name == li.physical_interface && p.role == PortRole::Trunk)
        else {
            let why = format!("port {} is not on this node", li.physical_interface);
            skip(&mut out, &li.meta, why);
            continue;
        };
        let Some(vmi) = vmis.get(&(li.vmi.namespace.as_str(), li.vmi.name.as_str())) else {
            skip(&mut out, &li.meta, format!("VMI {} not found", li.vmi));
            continue;
        };
        if !vmi.meta.accepted {
            skip(&mut out, &li.meta, format!("VMI {} not accepted", li.vmi));
            continue;
        }
        let network_name = vmi.network_name();
        let Some(network) = networks.get(&network_name) else {
            let why = format!("network {network_name} not found");
            skip(&mut out, &li.meta, why);
            continue;
        };
        if !network.meta.accepted {
            let why = format!("network {network_name} not accepted");
            skip(&mut out, &li.meta, why);
            continue;
        }
        used_vmis.insert((li.vmi.namespace.as_str(), li.vmi.name.as_str()));
        lis.push(LogicalInterfaceConfig {
            key: name.to_owned(),
            port: PortId(port as u16),
            vlan: li.vlan,
            vmi: key(&li.vmi),
            order: CreationOrder {
                created_secs: li.meta.created.unwrap_or_default(),
                name: name.to_owned(),
            },
        });
        out.held.insert(li.meta.key.clone());
    }
    lis.sort_by(|a, b| a.order.cmp(&b.order));
    out.config.logical_interfaces = lis;

    let mut used_networks = BTreeSet::new();
    let mut seen_networks: BTreeSet<(&str, &str)> = BTreeSet::new();
    for &(namespace, name) in &used_vmis {
        let vmi = vmis[&(namespace, name)];
        let Some(mac) = vmi.mac else {
            skip(&mut out, &vmi.meta, "unparsable MAC".to_owned());
            continue;
        };
        let vmi_key = key_of(namespace, name);
        out.config.vmis.push(VmiConfig {
            key: vmi_key.clone(),
            network: key_of(namespace, &vmi.network),
            mac: mac.0,
            ips: vmi.ips.clone(),
            allowed_address_pairs: vmi
                .allowed_address_pairs
                .iter()
                .map(|pair| AllowedAddressPair {
                    prefix: pair.prefix,
                    mac: pair.mac.map(|m| m.0),
                })
                .collect(),
            port_security: vmi.port_security,
            label: vmi.mpls_label,
        });
        if let Some(policy) = crate::security_groups::policy_of(vmi, snapshot) {
            out.config.policies.insert(vmi_key, policy);
        }
        out.held.insert(vmi.meta.key.clone());
        if seen_networks.insert((namespace, vmi.network.as_str())) {
            used_networks.insert(vmi.network_name());
        }
    }

    virtual_gateways(node, snapshot, &networks, &mut out, &mut used_networks);
    let layout = HaLayout::from_status(snapshot);
    crate::ha::plan::attachments(
        node,
        snapshot,
        &layout,
        &networks,
        &mut out,
        &mut used_networks,
    );

    let mut by_network: BTreeMap<(&str, &str), Vec<&VirtualMachineInterface>> = BTreeMap::new();
    for vmi in vmis.values() {
        by_network
            .entry((vmi.meta.namespace(), vmi.network.as_str()))
            .or_default()
            .push(vmi);
    }
    for (index, network_name) in used_networks.iter().enumerate() {
        let network = networks[network_name];
        let peers = overlay(node, snapshot, placement, network, &by_network, &mut out);
        let routed_peers = dc_gateways(snapshot, placement, network, &mut out);
        out.config.networks.push(NetworkConfig {
            key: key(network_name),
            vrf: vrf_id(network, index),
            subnets: network
                .subnets
                .iter()
                .map(|s| SubnetConfig {
                    prefix: s.prefix,
                    gateway: s.gateway,
                })
                .collect(),
            mode: forwarding_mode(network.forwarding_mode),
            flood_unknown_unicast: network.flood_unknown_unicast,
            vni: network.vni_in_use,
            label: network.mpls_label,
            // Only DC gateways send with it: a network without one has no
            // use for it.
            routed_label: network
                .mpls_label
                .filter(|_| !routed_peers.is_empty())
                .and_then(trunkline_model::routed_label),
            encapsulations: network
                .encapsulation_in_effect()
                .into_iter()
                .map(encapsulation)
                .collect(),
            peers,
            fabric_exit: match network.fabric_exit_in_use {
                None => FabricExit::None,
                Some(ModelFabricExit::Snat) => FabricExit::Snat,
                Some(ModelFabricExit::IpFabricForwarding) => FabricExit::IpFabric,
            },
            routed_peers,
            mtu: network.mtu,
            dhcp: dhcp(&network.dhcp),
        });
        out.held.insert(network.meta.key.clone());
    }
    out.config.north_south = NorthSouthConfig {
        snat_ports: host.snat_ports,
        fabric_routes: host.fabric_routes.clone(),
    };
    out.config.peers.sort();
    out.config.peers.dedup();
    crate::ha::plan::plan(node, snapshot, placement, &layout, &mut out);
    exceptions(node, snapshot, &mut out);
    out
}

/// Network policies across nodes: for each link whose `from` network is
/// held here (`out.config.network_links`, set by the caller), the VMIs of
/// its `to` network on other nodes (the operator labels them, their
/// logical interfaces and their network for the nodes of `from`), each
/// behind the first of its nodes with an underlay address, with what a
/// tunnel into its network there needs (its label; its network's VNI and
/// encapsulations). The network and VMIs used are held, so no longer
/// exceptions.
pub fn linked_vmis(node: &str, snapshot: &Snapshot, placement: &Placement, out: &mut Desired) {
    let held: BTreeSet<&str> = out.config.networks.iter().map(|n| n.key.as_str()).collect();
    let targets: BTreeSet<String> = out
        .config
        .network_links
        .iter()
        .filter(|l| held.contains(l.from.as_str()))
        .map(|l| l.to.clone())
        .collect();
    if targets.is_empty() {
        return;
    }
    for network in snapshot
        .virtual_networks
        .iter()
        .filter(|n| n.meta.accepted && targets.contains(&key(&n.name())))
    {
        let network_name = network.name();
        out.held.insert(network.meta.key.clone());
        out.exceptions.remove(&network.meta.key);
        for vmi in snapshot
            .virtual_machine_interfaces
            .iter()
            .filter(|v| v.meta.accepted && v.network_name() == network_name)
        {
            let nodes = placement.vmi_nodes(&vmi.name());
            if nodes.contains(node) {
                continue;
            }
            let Some((peer, address)) = nodes
                .iter()
                .find_map(|n| placement.underlay_address(n).map(|a| (n, a)))
            else {
                continue;
            };
            let Some(mac) = vmi.mac else {
                continue;
            };
            out.config.peers.push(PeerConfig {
                key: peer.clone(),
                address,
                encapsulations: NODE_ENCAPSULATIONS
                    .iter()
                    .copied()
                    .map(encapsulation)
                    .collect(),
            });
            out.config.linked_vmis.push(LinkedVmiConfig {
                key: key(&vmi.name()),
                network: key(&network_name),
                peer: peer.clone(),
                mac: mac.0,
                ips: vmi.ips.clone(),
                label: vmi.mpls_label,
                vni: network.vni_in_use,
                encapsulations: network
                    .encapsulation_in_effect()
                    .into_iter()
                    .map(encapsulation)
                    .collect(),
            });
            out.held.insert(vmi.meta.key.clone());
            out.exceptions.remove(&vmi.meta.key);
        }
    }
    out.config.peers.sort();
    out.config.peers.dedup();
    out.config.linked_vmis.sort();
}

/// The exceptions of the report: every object labelled for `node` that
/// it should hold (its own logical interfaces and virtual gateways, every
/// VMI, network and external VTEP) and does not, with the reason it was
/// left out, or else why nothing here needs it. Objects held are no
/// exception, whatever was noted while computing.
fn exceptions(node: &str, snapshot: &Snapshot, out: &mut Desired) {
    let mut noted = std::mem::take(&mut out.exceptions);
    let gateways: BTreeSet<&ObjectKey> = out.virtual_gateways.iter().map(|(_, k)| k).collect();
    // Each kind: the objects the node is asked to hold, whether they are
    // held, and why not when nothing better was noted.
    type Asked<'a> = (&'a Meta, bool, bool, &'static str);
    let s = snapshot;
    let held = |m: &Meta| out.held.contains(&m.key);
    let asked: Vec<Asked<'_>> = s
        .logical_interfaces
        .iter()
        .map(|li| {
            (
                &li.meta,
                li.physical_router == node,
                held(&li.meta),
                "not in this node's tables",
            )
        })
        .chain(s.virtual_machine_interfaces.iter().map(|v| {
            // A VMI is held here as its logical interfaces are (the
            // operator counts it programmed on a node only with them):
            // only what was noted against the VMI itself is an exception,
            // not its waiting for a logical interface this node has not
            // received yet (thousands of those, while objects arrive).
            (&v.meta, noted.contains_key(&v.meta.key), held(&v.meta), "")
        }))
        .chain(s.virtual_networks.iter().map(|n| {
            (
                &n.meta,
                true,
                held(&n.meta),
                "no VMI or virtual gateway of this node uses it",
            )
        }))
        .chain(s.virtual_gateways.iter().map(|g| {
            (
                &g.meta,
                g.nodes.contains(node),
                gateways.contains(&g.meta.key),
                "not set up on this node",
            )
        }))
        .chain(s.external_vteps.iter().map(|x| {
            (
                &x.meta,
                true,
                held(&x.meta),
                "none of its networks is held here, or it is not accepted",
            )
        }))
        .chain(s.gateway_ha_groups.iter().map(|g| {
            (
                &g.meta,
                g.member(node).is_some(),
                held(&g.meta),
                "its member port here is not a trunk of this node",
            )
        }))
        .chain(s.dc_gateways.iter().map(|g| {
            (
                &g.meta,
                true,
                held(&g.meta),
                "none of its networks is held here, or it is not accepted",
            )
        }))
        .collect();
    for (meta, asked, held, otherwise) in asked {
        if !meta.labelled_for(node) {
            continue;
        }
        if asked && !held {
            let why = noted
                .remove(&meta.key)
                .unwrap_or_else(|| otherwise.to_owned());
            out.exceptions.insert(meta.key.clone(), why);
        }
    }
}

/// The fabric port and the underlay, when the router declares them: the
/// port is opened as soon as the underlay address is known; the underlay
/// itself (and so every tunnel) waits for the host thread to have read the
/// interface's MAC and MTU.
fn fabric(router: &trunkline_model::PhysicalRouter, host: &HostFacts, out: &mut Desired) {
    let Some(fabric) = &router.fabric else {
        return;
    };
    let Some(underlay) = fabric.underlay_address else {
        out.skipped.push(format!(
            "fabric interface {} has no underlayAddress: this node takes no part in the overlay",
            fabric.interface
        ));
        return;
    };
    if out.ports.iter().any(|p| p.name == fabric.interface) {
        out.skipped.push(format!(
            "fabric interface {} is also a trunk port: no overlay",
            fabric.interface
        ));
        return;
    }
    let id = PortId(out.ports.len() as u16);
    out.ports.push(PortSpec {
        name: fabric.interface.clone(),
        role: PortRole::Fabric { underlay },
    });
    out.config.ports.push(PortConfig {
        id,
        name: fabric.interface.clone(),
        mtu: None,
        kind: PortKind::Fabric,
    });
    out.fabric_interface = Some(fabric.interface.clone());
    match host.fabric {
        Some(facts) => {
            // Tunnel packets never exceed what a peer's fast path takes,
            // whatever the fabric's MTU (a jumbo fabric is fine).
            let mtu = (facts.mtu as usize).min(host.max_frame - ETHERNET_HEADER);
            out.config.underlay = Some(UnderlayConfig {
                port: id,
                address: underlay,
                mac: facts.mac,
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            })
        }
        None => {
            let why = format!(
                "fabric interface {}: MAC and MTU not read yet (is it present on the node?)",
                fabric.interface
            );
            out.skipped.push(why.clone());
            out.fabric_waiting = Some(why);
        }
    }
}

/// The overlay of one network hosted here: its peers (the other nodes
/// holding it, and external VTEPs joined to it) and the VMIs behind them.
/// Returns the peers' keys.
fn overlay(
    node: &str,
    snapshot: &Snapshot,
    placement: &Placement,
    network: &VirtualNetwork,
    vmis: &BTreeMap<(&str, &str), Vec<&VirtualMachineInterface>>,
    out: &mut Desired,
) -> Vec<String> {
    let network_name = network.name();
    let mut keys = Vec::new();
    for peer in placement.peers(&network_name, node) {
        let Some(address) = peer.underlay_address else {
            out.skipped.push(format!(
                "network {network_name}: node {} has no underlay address: its instances are unreachable from here",
                peer.node
            ));
            continue;
        };
        out.config.peers.push(PeerConfig {
            key: peer.node.clone(),
            address,
            encapsulations: NODE_ENCAPSULATIONS
                .iter()
                .copied()
                .map(encapsulation)
                .collect(),
        });
        keys.push(peer.node.clone());
    }
    // The VMIs of the network held by another node (the first by name when
    // several hold it; one held here is local). None without a peer node.
    let of_network = vmis
        .get(&(network_name.namespace.as_str(), network_name.name.as_str()))
        .filter(|_| !keys.is_empty());
    for vmi in of_network.into_iter().flatten() {
        let nodes = placement.vmi_nodes(&vmi.name());
        if !vmi.meta.accepted || nodes.is_empty() || nodes.contains(node) {
            continue;
        }
        let Some(peer) = nodes.iter().find(|n| keys.contains(*n)) else {
            continue;
        };
        let Some(mac) = vmi.mac else {
            continue;
        };
        out.config.remote_vmis.push(RemoteVmiConfig {
            key: key(&vmi.name()),
            network: key(&network_name),
            peer: peer.clone(),
            mac: mac.0,
            ips: vmi.ips.clone(),
            label: vmi.mpls_label,
        });
        out.held.insert(vmi.meta.key.clone());
    }
    for vtep in placement.external_vteps(&network_name) {
        let peer = vtep_key(&vtep.name);
        out.config.peers.push(PeerConfig {
            key: peer.clone(),
            address: vtep.address,
            encapsulations: vec![encapsulation(vtep.encapsulation)],
        });
        keys.push(peer.clone());
        let Some(object) = snapshot
            .external_vteps
            .iter()
            .find(|x| x.meta.name() == vtep.name)
        else {
            continue;
        };
        out.held.insert(object.meta.key.clone());
        for joined in object.networks.iter().filter(|j| j.network == network_name) {
            for endpoint in &joined.endpoints {
                out.config.remote_vmis.push(RemoteVmiConfig {
                    key: format!("{peer}/{}", endpoint.mac),
                    network: key(&network_name),
                    peer: peer.clone(),
                    mac: endpoint.mac.0,
                    ips: endpoint.ips.clone(),
                    label: None,
                });
            }
        }
    }
    // Virtual gateways of the network on other nodes: their routes reach
    // this node too (the seeds' simple gateway exports its default route to
    // the network's other nodes), through the first such node.
    let local: BTreeSet<_> = out
        .config
        .routes
        .iter()
        .filter(|r| r.network == key(&network_name))
        .map(|r| r.prefix)
        .collect();
    for gateway in snapshot
        .virtual_gateways
        .iter()
        .filter(|g| g.network == network_name && g.meta.accepted && !g.nodes.contains(node))
    {
        let Some(via) = gateway.nodes.iter().find(|n| keys.contains(*n)) else {
            continue;
        };
        for prefix in gateway.effective_routes() {
            if !local.contains(&prefix) {
                out.config.routes.push(RouteConfig {
                    network: key(&network_name),
                    prefix,
                    next_hop: NextHopConfig::Peer(via.clone()),
                });
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The DC gateways serving a network held here: each a routed peer (MPLS
/// over UDP, never flooded to) with its routes in the network's VRF.
/// Returns the peers' keys. The routes are [`trunkline_model::ExternalRoute`]s:
/// routes learned by BGP will come in the same shape.
fn dc_gateways(
    snapshot: &Snapshot,
    placement: &Placement,
    network: &VirtualNetwork,
    out: &mut Desired,
) -> Vec<String> {
    let network_name = network.name();
    let mut keys = Vec::new();
    for peer in placement.dc_gateways(&network_name) {
        let Some(object) = snapshot
            .dc_gateways
            .iter()
            .find(|g| g.meta.name() == peer.name)
        else {
            continue;
        };
        let peer_key = dc_gateway_key(&peer.name);
        out.config.peers.push(PeerConfig {
            key: peer_key.clone(),
            address: peer.address,
            encapsulations: vec![Encapsulation::MplsOverUdp],
        });
        for route in object.routes_for(&network_name) {
            out.config.routes.push(RouteConfig {
                network: key(&network_name),
                prefix: route.prefix,
                next_hop: NextHopConfig::Tunnel {
                    peer: peer_key.clone(),
                    label: route.label,
                },
            });
        }
        out.held.insert(object.meta.key.clone());
        keys.push(peer_key);
    }
    keys
}

/// Adds the accepted virtual gateways of the node: a host port attached to
/// the network's VRF, the VRF's routes toward it, and the host side to set
/// up.
fn virtual_gateways(
    node: &str,
    snapshot: &Snapshot,
    networks: &BTreeMap<NamespacedName, &VirtualNetwork>,
    out: &mut Desired,
    used_networks: &mut BTreeSet<NamespacedName>,
) {
    let mut gateways: Vec<&VirtualGateway> = snapshot
        .virtual_gateways
        .iter()
        .map(|g| &**g)
        .filter(|g| g.nodes.contains(node))
        .collect();
    // The older gateway gets the lower port id.
    gateways.sort_by_key(|g| (g.meta.created, g.meta.name().to_owned()));
    for vgw in gateways {
        let name = vgw.meta.name();
        if !vgw.meta.accepted {
            skip(
                out,
                &vgw.meta,
                "not accepted (yet) by the operator".to_owned(),
            );
            continue;
        }
        let interface = vgw.interface.clone();
        if out.ports.iter().any(|p| p.name == interface) {
            let why = format!("interface {interface} is already a port of this node");
            skip(out, &vgw.meta, why);
            continue;
        }
        let network = &vgw.network;
        if !networks.get(network).is_some_and(|n| n.meta.accepted) {
            let why = format!("network {network} not found or not accepted");
            skip(out, &vgw.meta, why);
            continue;
        }
        let id = PortId(out.ports.len() as u16);
        let mac = interface_mac(&interface);
        out.ports.push(PortSpec {
            name: interface.clone(),
            role: PortRole::Tap,
        });
        out.config.ports.push(PortConfig {
            id,
            name: interface.clone(),
            mtu: None,
            kind: PortKind::Host {
                network: key(network),
                peer_mac: mac,
            },
        });
        for prefix in vgw.effective_routes() {
            out.config.routes.push(RouteConfig {
                network: key(network),
                prefix,
                next_hop: NextHopConfig::Port(id),
            });
        }
        used_networks.insert(network.clone());
        out.virtual_gateways.push((
            VgwSpec {
                name: name.to_owned(),
                interface,
                mac,
                subnets: vgw.subnets.clone(),
            },
            vgw.meta.key.clone(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::IpAddr;
    use trunkline_api::{
        LogicalInterface, PhysicalRouter, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    };
    use trunkline_model::Kind;
    use trunkline_model::from_api::OwnedObjects;

    /// Converts the API objects as the agent does, then computes the node's
    /// desired state.
    fn run(
        node: &str,
        router: Option<&PhysicalRouter>,
        lis: &[LogicalInterface],
        vmis: &[VirtualMachineInterface],
        networks: &[VirtualNetwork],
        gateways: &[VirtualGateway],
    ) -> Desired {
        let snapshot = OwnedObjects {
            physical_routers: router.into_iter().cloned().collect(),
            logical_interfaces: lis.to_vec(),
            virtual_machine_interfaces: vmis.to_vec(),
            virtual_networks: networks.to_vec(),
            virtual_gateways: gateways.to_vec(),
            ..OwnedObjects::default()
        }
        .snapshot();
        desired(node, &snapshot, &HostFacts::default())
    }

    fn accepted_status(generation: i64) -> serde_json::Value {
        json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}]})
    }

    fn objects() -> (
        PhysicalRouter,
        Vec<LogicalInterface>,
        Vec<VirtualMachineInterface>,
        Vec<VirtualNetwork>,
    ) {
        let router = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": "gw1", "generation": 1},
            "spec": {"physicalInterfaces": [{"name": "eth1"}, {"name": "eth2"}]}
        }))
        .expect("router");
        let li = |name: &str,
                  node: &str,
                  port: &str,
                  vlan: u16,
                  vmi: &str,
                  accepted: bool|
         -> LogicalInterface {
            let mut li = json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                "metadata": {"name": name, "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z",
                             "labels": {"node.trunkline.io/gw1": ""}},
                "spec": {"physicalRouter": node, "physicalInterface": port, "vlan": vlan,
                         "virtualMachineInterface": {"namespace": "t", "name": vmi}}
            });
            if accepted {
                li["status"] = accepted_status(1);
            }
            serde_json::from_value(li).expect("li")
        };
        let lis = vec![
            li("a", "gw1", "eth1", 100, "bms-1", true),
            li("b", "gw1", "eth2", 200, "bms-2", true),
            li("c", "gw2", "eth1", 300, "bms-1", true),
            li("d", "gw1", "eth1", 400, "bms-1", false),
            li("e", "gw1", "eth9", 500, "bms-1", true),
        ];
        let vmi = |name: &str, mac: &str, ip: &str| -> VirtualMachineInterface {
            serde_json::from_value(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": name, "namespace": "t", "generation": 3},
                "spec": {"virtualNetwork": "net1", "macAddress": mac, "ips": [{"address": ip}]},
                "status": accepted_status(3)
            }))
            .expect("vmi")
        };
        let vmis = vec![
            vmi("bms-1", "02-00-00-00-01-01", "192.168.1.10"),
            vmi("bms-2", "02:00:00:00:02:01", "192.168.1.20"),
        ];
        let network = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": "t", "generation": 2},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24"}]},
            "status": accepted_status(2)
        }))
        .expect("network");
        (router, lis, vmis, vec![network])
    }

    #[test]
    fn takes_the_accepted_objects_of_this_node_only() {
        let (router, lis, vmis, networks) = objects();
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[]);
        let ports: Vec<&str> = d.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(ports, ["eth1", "eth2"]);
        let names: Vec<&str> = d
            .config
            .logical_interfaces
            .iter()
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(
            names,
            ["a", "b"],
            "c is another node's, d not accepted, e on a port the node lacks"
        );
        assert_eq!(d.config.logical_interfaces[1].port, PortId(1));
        assert_eq!(d.config.vmis.len(), 2);
        assert_eq!(d.config.vmis[0].mac, [2, 0, 0, 0, 1, 1]);
        assert_eq!(d.config.networks.len(), 1);
        assert_eq!(
            d.config.networks[0].subnets[0].gateway,
            "192.168.1.1".parse::<IpAddr>().unwrap(),
            "default gateway"
        );
        assert_eq!(d.held.len(), 5);
        assert!(d.held.contains(&ObjectKey::namespaced(
            Kind::VirtualMachineInterface,
            "t",
            "bms-1"
        )));
        // What the operator labelled for gw1 and gw1 does not hold: d (not
        // accepted) and e (no such port); c is gw2's, not an exception.
        let exceptions: Vec<(&str, &str)> = d
            .exceptions
            .iter()
            .map(|(k, why)| (k.name.as_str(), why.as_str()))
            .collect();
        assert_eq!(
            exceptions,
            [
                ("d", "not accepted (yet) by the operator"),
                ("e", "port eth9 is not on this node")
            ]
        );
        // d and e, and gw2 (which holds bms-1 too) has no underlay address.
        assert_eq!(d.skipped.len(), 3, "{:?}", d.skipped);
    }

    #[test]
    fn port_and_network_mtus_and_dhcp_settings_reach_the_tables() {
        let (mut router, lis, vmis, mut networks) = objects();
        router.spec.physical_interfaces[1].mtu = Some(1400);
        networks[0].spec.mtu = Some(9000);
        networks[0].spec.dhcp = serde_json::from_value(json!({
            "leaseSeconds": 600, "dnsServers": ["192.0.2.53"], "domain": "lab.example",
            "nextServer": "192.168.1.5", "bootFile": "pxelinux.0"
        }))
        .unwrap();
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[]);
        let mtus: Vec<Option<u16>> = d.config.ports.iter().map(|p| p.mtu).collect();
        assert_eq!(mtus, [None, Some(1400)]);
        let network = &d.config.networks[0];
        assert_eq!(network.mtu, Some(9000));
        assert_eq!(network.dhcp.mode, DhcpMode::Server);
        assert_eq!(network.dhcp.lease_secs, 600);
        assert_eq!(network.dhcp.boot_file.as_deref(), Some("pxelinux.0"));
        assert_eq!(
            network.dhcp.next_server,
            Some(std::net::Ipv4Addr::new(192, 168, 1, 5))
        );
        networks[0].spec.dhcp = serde_json::from_value(json!({"mode": "Off"})).unwrap();
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[]);
        assert_eq!(d.config.networks[0].dhcp.mode, DhcpMode::Off);
        networks[0].spec.dhcp =
            serde_json::from_value(json!({"mode": "Relay", "relayServer": "192.168.1.5"})).unwrap();
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[]);
        assert_eq!(
            d.config.networks[0].dhcp.mode,
            DhcpMode::Relay(std::net::Ipv4Addr::new(192, 168, 1, 5))
        );
    }

    #[test]
    fn a_stale_acceptance_does_not_count() {
        let (router, mut lis, vmis, networks) = objects();
        lis[0].metadata.generation = Some(2);
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[]);
        assert!(d.config.logical_interfaces.iter().all(|l| l.key != "a"));
    }

    #[test]
    fn no_router_no_state() {
        let d = run("gw1", None, &[], &[], &[], &[]);
        assert!(d.ports.is_empty() && d.config.logical_interfaces.is_empty());
    }

    #[test]
    fn addresses_pairs_and_virtual_gateways_come_from_the_model() {
        let (router, lis, mut vmis, networks) = objects();
        vmis[0].spec.allowed_address_pairs = serde_json::from_value(json!([
            {"prefix": "192.168.1.100/24"},
            {"prefix": "192.168.1.7/32", "macAddress": "02-00-00-00-00-07"}
        ]))
        .unwrap();
        let gateway: VirtualGateway = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway",
            "metadata": {"name": "g1", "generation": 4},
            "spec": {"interface": "vgw1", "virtualNetwork": {"namespace": "t", "name": "net1"},
                     "subnets": ["192.168.1.0/24", "fd00::/64"], "nodes": ["gw1"]},
            "status": accepted_status(4)
        }))
        .unwrap();
        let d = run("gw1", Some(&router), &lis, &vmis, &networks, &[gateway]);
        let pairs = &d.config.vmis[0].allowed_address_pairs;
        assert_eq!(pairs[0].prefix.to_string(), "192.168.1.0/24");
        assert_eq!(pairs[0].mac, None);
        assert_eq!(pairs[1].mac, Some([2, 0, 0, 0, 0, 7]));
        assert_eq!(
            d.config.vmis[0].ips,
            ["192.168.1.10".parse::<IpAddr>().unwrap()]
        );
        let ports: Vec<(&str, bool)> = d
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.is_tap()))
            .collect();
        assert_eq!(ports, [("eth1", false), ("eth2", false), ("vgw1", true)]);
        let routes: Vec<String> = d
            .config
            .routes
            .iter()
            .map(|r| format!("{} {} {:?}", r.network, r.prefix, r.next_hop))
            .collect();
        assert_eq!(
            routes,
            [
                "t/net1 0.0.0.0/0 Port(PortId(2))",
                "t/net1 ::/0 Port(PortId(2))"
            ]
        );
        assert_eq!(d.virtual_gateways.len(), 1);
        assert_eq!(d.virtual_gateways[0].0.subnets.len(), 2);
        assert_eq!(d.virtual_gateways[0].1.kind, Kind::VirtualGateway);
        assert_eq!(
            d.config.networks.len(),
            1,
            "the gateway's network is the VMIs'"
        );
    }
}

#[cfg(test)]
mod overlay_tests {
    use super::*;
    use serde_json::json;
    use trunkline_api::{
        ExternalVTEP, LogicalInterface, PhysicalRouter, VirtualGateway, VirtualMachineInterface,
        VirtualNetwork,
    };
    use trunkline_model::Kind;
    use trunkline_model::from_api::OwnedObjects;

    fn accepted(generation: i64) -> serde_json::Value {
        json!([{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}])
    }

    fn router(name: &str, underlay: &str) -> PhysicalRouter {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": name, "generation": 1},
            "spec": {"physicalInterfaces": [{"name": "eth1"}],
                     "fabric": {"interface": "eth0", "underlayAddress": underlay}}
        }))
        .unwrap()
    }

    fn li(name: &str, node: &str, vlan: u16, vmi: &str) -> LogicalInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": name, "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"physicalRouter": node, "physicalInterface": "eth1", "vlan": vlan,
                     "virtualMachineInterface": {"namespace": "t", "name": vmi}},
            "status": {"conditions": accepted(1)}
        }))
        .unwrap()
    }

    fn vmi(name: &str, mac: &str, ip: &str, label: u32) -> VirtualMachineInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": name, "namespace": "t", "generation": 1},
            "spec": {"virtualNetwork": "net1", "macAddress": mac, "ips": [{"address": ip}]},
            "status": {"conditions": accepted(1), "mplsLabel": label}
        }))
        .unwrap()
    }

    fn network() -> VirtualNetwork {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": "t", "generation": 1},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24"}]},
            "status": {"conditions": accepted(1), "vni": 4096, "mplsLabel": 16,
                       "encapsulation": ["MPLSoUDP", "VXLAN"]}
        }))
        .unwrap()
    }

    fn vtep() -> ExternalVTEP {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "ExternalVTEP",
            "metadata": {"name": "tor1", "generation": 2},
            "spec": {"address": "10.0.0.100", "encapsulation": "VXLAN",
                     "networks": [{"namespace": "t", "name": "net1",
                                   "endpoints": [{"macAddress": "02:00:00:00:09:01", "ips": ["192.168.1.50"]}]}]},
            "status": {"conditions": accepted(2)}
        }))
        .unwrap()
    }

    fn gateway(nodes: &[&str]) -> VirtualGateway {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway",
            "metadata": {"name": "g1", "generation": 1},
            "spec": {"interface": "vgw1", "virtualNetwork": {"namespace": "t", "name": "net1"},
                     "subnets": ["192.168.1.0/24"], "nodes": nodes},
            "status": {"conditions": accepted(1)}
        }))
        .unwrap()
    }

    fn run(node: &str, facts: bool, gateways: &[VirtualGateway]) -> Desired {
        let routers = [
            router("gw1", "10.0.0.1"),
            router("gw2", "10.0.0.2"),
            router("gw3", "10.0.0.3"),
        ];
        let lis = [li("a", "gw1", 100, "bms1"), li("b", "gw2", 200, "bms2")];
        let vmis = [
            vmi("bms1", "02:00:00:00:01:01", "192.168.1.10", 100),
            vmi("bms2", "02:00:00:00:02:01", "192.168.1.20", 101),
        ];
        let snapshot = OwnedObjects {
            physical_routers: routers.to_vec(),
            logical_interfaces: lis.to_vec(),
            virtual_machine_interfaces: vmis.to_vec(),
            virtual_networks: vec![network()],
            virtual_gateways: gateways.to_vec(),
            external_vteps: vec![vtep()],
            ..OwnedObjects::default()
        }
        .snapshot();
        let host = HostFacts {
            fabric: facts.then_some(FabricFacts {
                mac: [2, 0xfa, 0, 0, 0, 1],
                mtu: 1500,
            }),
            ..HostFacts::default()
        };
        desired(node, &snapshot, &host)
    }

    #[test]
    fn peers_remote_vmis_and_external_endpoints_of_the_networks_held_here() {
        let d = run("gw1", true, &[]);
        assert_eq!(
            d.ports[1],
            PortSpec {
                name: "eth0".into(),
                role: PortRole::Fabric {
                    underlay: "10.0.0.1".parse().unwrap()
                }
            }
        );
        let underlay = d.config.underlay.as_ref().expect("underlay");
        assert_eq!((underlay.port, underlay.mtu), (PortId(1), 1500));
        let network = &d.config.networks[0];
        assert_eq!(
            (network.vni, network.label, network.peers.clone()),
            (
                Some(4096),
                Some(16),
                vec!["ExternalVTEP/tor1".to_owned(), "gw2".to_owned()]
            ),
            "gw3 holds nothing of net1: not a peer"
        );
        assert_eq!(d.config.vmis[0].label, Some(100));
        let remotes: Vec<(&str, &str, Option<u32>)> = d
            .config
            .remote_vmis
            .iter()
            .map(|r| (r.key.as_str(), r.peer.as_str(), r.label))
            .collect();
        assert_eq!(
            remotes,
            [
                ("t/bms2", "gw2", Some(101)),
                (
                    "ExternalVTEP/tor1/02:00:00:00:09:01",
                    "ExternalVTEP/tor1",
                    None
                )
            ]
        );
        let vtep_peer = d
            .config
            .peers
            .iter()
            .find(|p| p.key == "ExternalVTEP/tor1")
            .unwrap();
        assert_eq!(vtep_peer.encapsulations, [Encapsulation::Vxlan]);
        assert!(
            d.held
                .contains(&ObjectKey::cluster(Kind::ExternalVTEP, "tor1"))
        );
        // The tables accept all of it.
        let (_, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
    }

    #[test]
    fn dc_gateways_and_the_fabric_exit_reach_the_tables() {
        let routers = [router("gw1", "10.0.0.1"), router("gw2", "10.0.0.2")];
        let lis = [li("a", "gw1", 100, "bms1")];
        let vmis = [vmi("bms1", "02:00:00:00:01:01", "192.168.1.10", 100)];
        let mut net = network();
        net.status.as_mut().unwrap().fabric_exit =
            Some(trunkline_api::virtual_network::FabricExit::Snat);
        let gateway: trunkline_api::DCGateway = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "DCGateway",
            "metadata": {"name": "mx1", "generation": 3},
            "spec": {"address": "10.0.0.200", "networks": [{"namespace": "t", "name": "net1",
                     "routes": [{"prefix": "203.0.113.0/24", "label": 5000}]}]},
            "status": {"conditions": accepted(3)}
        }))
        .unwrap();
        let snapshot = OwnedObjects {
            physical_routers: routers.to_vec(),
            logical_interfaces: lis.to_vec(),
            virtual_machine_interfaces: vmis.to_vec(),
            virtual_networks: vec![net],
            dc_gateways: vec![gateway],
            ..OwnedObjects::default()
        }
        .snapshot();
        let route = |p: &str, via: Option<&str>| FabricRouteConfig {
            prefix: p.parse().unwrap(),
            via: via.map(|v| v.parse().unwrap()),
        };
        let host = HostFacts {
            fabric: Some(FabricFacts {
                mac: [2, 0xfa, 0, 0, 0, 1],
                mtu: 1500,
            }),
            fabric_routes: vec![
                route("10.0.0.0/24", None),
                route("0.0.0.0/0", Some("10.0.0.254")),
            ],
            snat_ports: (62000, 62999),
            ..HostFacts::default()
        };
        let d = desired("gw1", &snapshot, &host);
        let network = &d.config.networks[0];
        assert_eq!(
            network.vrf, 4096,
            "the VRF is the VNI: stable across rebuilds"
        );
        assert_eq!(network.fabric_exit, FabricExit::Snat);
        assert_eq!(network.routed_peers, ["DCGateway/mx1"]);
        assert!(
            network.peers.is_empty(),
            "a DC gateway is not part of the layer 2"
        );
        assert_eq!(
            d.config.routes[0].next_hop,
            NextHopConfig::Tunnel {
                peer: "DCGateway/mx1".into(),
                label: 5000
            }
        );
        assert_eq!(d.config.north_south.snat_ports, (62000, 62999));
        assert_eq!(d.config.north_south.fabric_routes.len(), 2);
        assert!(d.held.contains(&ObjectKey::cluster(Kind::DCGateway, "mx1")));
        let (tables, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert!(tables.uses_flows());
        // A node not holding the network has nothing of the gateway.
        let d = desired("gw2", &snapshot, &host);
        assert!(d.config.peers.is_empty() && d.config.routes.is_empty());
    }

    #[test]
    fn the_underlay_waits_for_the_fabric_facts() {
        let d = run("gw1", false, &[]);
        assert!(d.ports.iter().any(|p| p.name == "eth0"), "the port opens");
        assert!(d.config.underlay.is_none());
        assert!(
            d.skipped
                .iter()
                .any(|s| s.contains("MAC and MTU not read yet"))
        );
        assert!(
            d.fabric_waiting
                .as_deref()
                .is_some_and(|w| w.contains("fabric interface eth0")),
            "the node is not ready meanwhile"
        );
        assert_eq!(run("gw1", true, &[]).fabric_waiting, None);
    }

    #[test]
    fn a_virtual_gateway_on_another_node_gives_routes_through_it() {
        let d = run("gw1", true, &[gateway(&["gw2"])]);
        let routes: Vec<String> = d
            .config
            .routes
            .iter()
            .map(|r| format!("{} {:?}", r.prefix, r.next_hop))
            .collect();
        assert_eq!(routes, ["0.0.0.0/0 Peer(\"gw2\")"]);
        // On its own node it is a local port, not a peer route.
        let d = run("gw2", true, &[gateway(&["gw2"])]);
        assert!(
            d.config
                .routes
                .iter()
                .all(|r| matches!(r.next_hop, NextHopConfig::Port(_)))
        );
    }

    #[test]
    fn jumbo_mtus_are_refused_in_status_and_tunnels_fit_the_fast_path() {
        let router: PhysicalRouter = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": "gw1", "generation": 1},
            "spec": {"physicalInterfaces": [{"name": "eth1", "mtu": 9000}, {"name": "eth2", "mtu": 1500}],
                     "fabric": {"interface": "eth0", "underlayAddress": "10.0.0.1"}}
        }))
        .unwrap();
        let snapshot = OwnedObjects {
            physical_routers: vec![router],
            ..OwnedObjects::default()
        }
        .snapshot();
        let host = HostFacts {
            fabric: Some(FabricFacts {
                mac: [2, 0, 0, 0, 0, 1],
                mtu: 9000,
            }),
            ..HostFacts::default()
        };
        let d = desired("gw1", &snapshot, &host);
        assert_eq!(d.mtu_problems.len(), 1, "{:?}", d.mtu_problems);
        assert_eq!(d.mtu_problems[0].0, "eth1");
        assert!(d.mtu_problems[0].1.contains("declared MTU 9000 exceeds"));
        let mtu = d.config.underlay.expect("underlay").mtu as usize;
        assert_eq!(mtu, trunkline_xdp::FAST_PATH_MAX_FRAME - 14);
    }

    /// Network policies across nodes: gw1 holds net1 (bms1); blue's c3
    /// lives on gw3. With links between them, gw1 lists c3 behind gw3
    /// (a peer now), with its label and blue's VNI, and holds blue and c3
    /// (labelled for gw1 by the operator): no longer exceptions.
    #[test]
    fn vmis_of_a_network_linked_to_one_held_here_live_behind_their_nodes() {
        let routers = [router("gw1", "10.0.0.1"), router("gw3", "10.0.0.3")];
        let lis = [li("a", "gw1", 100, "bms1"), li("c", "gw3", 300, "c3")];
        let labelled = json!({"node.trunkline.io/gw1": ""});
        let c3: VirtualMachineInterface = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "c3", "namespace": "t", "generation": 1, "labels": labelled},
            "spec": {"virtualNetwork": "blue", "macAddress": "02:00:00:00:03:01",
                     "ips": [{"address": "192.168.3.30"}]},
            "status": {"conditions": accepted(1), "mplsLabel": 102}
        }))
        .unwrap();
        let blue: VirtualNetwork = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "blue", "namespace": "t", "generation": 1, "labels": labelled},
            "spec": {"subnets": [{"cidr": "192.168.3.0/24"}]},
            "status": {"conditions": accepted(1), "vni": 4097, "mplsLabel": 17,
                       "encapsulation": ["VXLAN", "MPLSoUDP"]}
        }))
        .unwrap();
        let vmis = [vmi("bms1", "02:00:00:00:01:01", "192.168.1.10", 100), c3];
        let networks = [network(), blue];
        let snapshot = OwnedObjects {
            physical_routers: routers.to_vec(),
            logical_interfaces: lis.to_vec(),
            virtual_machine_interfaces: vmis.to_vec(),
            virtual_networks: networks.to_vec(),
            ..OwnedObjects::default()
        }
        .snapshot();
        let host = HostFacts {
            fabric: Some(FabricFacts {
                mac: [2, 0xfa, 0, 0, 0, 1],
                mtu: 1500,
            }),
            ..HostFacts::default()
        };
        let blue_key = ObjectKey::namespaced(Kind::VirtualNetwork, "t", "blue");
        let c3_key = ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "c3");
        let mut d = desired("gw1", &snapshot, &host);
        assert!(d.exceptions.contains_key(&blue_key), "{:?}", d.exceptions);
        let link = |from: &str, to: &str| trunkline_pipeline::network_policy::LinkConfig {
            from: from.into(),
            to: to.into(),
            policies: Vec::new(),
        };
        d.config.network_links = vec![link("t/net1", "t/blue"), link("t/blue", "t/net1")];
        linked_vmis("gw1", &snapshot, &Placement::from_status(&snapshot), &mut d);
        assert_eq!(
            d.config.linked_vmis,
            [LinkedVmiConfig {
                key: "t/c3".into(),
                network: "t/blue".into(),
                peer: "gw3".into(),
                mac: [2, 0, 0, 0, 3, 1],
                ips: vec!["192.168.3.30".parse().unwrap()],
                label: Some(102),
                vni: Some(4097),
                encapsulations: vec![Encapsulation::Vxlan, Encapsulation::MplsOverUdp],
            }]
        );
        let peers: Vec<&str> = d.config.peers.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(peers, ["gw3"]);
        assert!(d.held.contains(&blue_key) && d.held.contains(&c3_key));
        assert!(d.exceptions.is_empty(), "{:?}", d.exceptions);
        // The tables take it: blue's VMI is routed from net1 through gw3.
        let (tables, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert!(
            tables.dump().contains(
                "vmi t/c3 of t/blue behind peer gw3 vxlan vni 4097 by link t/net1 -> t/blue"
            ),
            "{}",
            tables.dump()
        );
    }

    /// A build that keeps its placement while the placement's fingerprint
    /// holds builds what a build from scratch does, through changes that
    /// move something and changes that do not.
    #[test]
    fn a_kept_placement_builds_what_a_fresh_one_does() {
        use crate::build::{BuildInputs, Kept, build};
        let base = OwnedObjects {
            physical_routers: vec![
                router("gw1", "10.0.0.1"),
                router("gw2", "10.0.0.2"),
                router("gw3", "10.0.0.3"),
            ],
            logical_interfaces: vec![li("a", "gw1", 100, "bms1"), li("b", "gw2", 200, "bms2")],
            virtual_machine_interfaces: vec![
                vmi("bms1", "02:00:00:00:01:01", "192.168.1.10", 100),
                vmi("bms2", "02:00:00:00:02:01", "192.168.1.20", 101),
            ],
            virtual_networks: vec![network()],
            external_vteps: vec![vtep()],
            ..OwnedObjects::default()
        };
        let mut steps = vec![base.clone()];
        let mut step = base.clone();
        // An address: nothing moves.
        step.virtual_machine_interfaces[1] = vmi("bms2", "02:00:00:00:02:01", "192.168.1.21", 101);
        steps.push(step.clone());
        // bms2 moves to gw3.
        step.logical_interfaces[1] = li("b", "gw3", 200, "bms2");
        steps.push(step.clone());
        // gw3's underlay address changes.
        step.physical_routers[2] = router("gw3", "10.0.0.33");
        steps.push(step.clone());
        // The external VTEP goes; a gateway on gw2 comes.
        step.external_vteps.clear();
        step.virtual_gateways = vec![gateway(&["gw2"])];
        steps.push(step.clone());
        // Back to the start.
        steps.push(base);
        let host = HostFacts {
            fabric: Some(FabricFacts {
                mac: [2, 0xfa, 0, 0, 0, 1],
                mtu: 1500,
            }),
            ..HostFacts::default()
        };
        let inputs = BuildInputs {
            node: "gw1",
            facts: &host,
            policies: &[],
            punt_limit: Default::default(),
        };
        let mut kept = Kept::default();
        let mut outcomes = Vec::new();
        for (i, objects) in steps.iter().enumerate() {
            let kept_build = build(objects.snapshot(), &inputs, &mut kept);
            let fresh = build(objects.snapshot(), &inputs, &mut Kept::default());
            assert_eq!(kept_build, fresh, "step {i}");
            outcomes.push((fresh.config.remote_vmis.clone(), fresh.config.peers.clone()));
        }
        // The steps did move what the overlay holds.
        assert_ne!(outcomes[1], outcomes[2], "bms2 moved");
        assert_ne!(outcomes[2], outcomes[3], "gw3's address changed");
    }
}
