//! The rules across objects, applied to a whole snapshot at once.
//!
//! ```text
//!  VirtualNetworks ──> VMIs ──> LogicalInterfaces ──┐
//!        │  (VNI, VRF)   (addresses)   (VLANs, limit) │
//!        ├──> VirtualGateways (interfaces, subnets)   ├──> Programmed ──> Ready
//!        └──> GatewayHAGroups (members, BPDU network) │    (node reports)
//!  PhysicalRouters (ports, limits, reports) ──────────┘
//! ```
//!
//! Each stage reads only the snapshot and the stages before it, every
//! contended resource goes to its oldest claimant (see `claims`), and every
//! collection is sorted: so the result is a function of the set of objects,
//! never of the order they arrived in or were listed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_api::status::{condition, reason};

use crate::claims::Claims;
use crate::decision::{
    ConditionDecision, Decision, Decisions, DerivedStatus, Findings, NodeState, NodeStatus, ready,
};
use crate::model::{
    Kind, Meta, NamespacedName, ObjectKey, PhysicalRouter, Snapshot, VirtualNetwork,
};
use crate::net::IpPrefix;

/// The first VNI the operator allocates: lower ones are left to users who
/// set `spec.vni` (and to the original's habit of small explicit ids).
pub const FIRST_ALLOCATED_VNI: u32 = 4096;
/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// Decides every object's conditions and derived status from `snapshot`.
///
/// Pure and deterministic: the same set of objects gives the same
/// decisions, in whatever order the lists hold them. Object keys are
/// expected to be unique within each list (as they are in a cluster).
pub fn decide(snapshot: &Snapshot) -> Decisions {
    let index = Index::new(snapshot);
    let networks = decide_networks(snapshot);
    let vmis = decide_vmis(snapshot, &networks);
    let logical_interfaces = decide_logical_interfaces(snapshot, &index, &vmis);
    let gateways = decide_virtual_gateways(snapshot, &index, &networks);

    let mut decisions = Decisions::default();
    let programmed = |meta: &Meta, accepted: bool, nodes: &BTreeSet<String>, nobody: &str| {
        programmed_condition(&index, meta, accepted, nodes, nobody)
    };

    // Which nodes hold what: a logical interface lives on its router, a VMI
    // wherever an accepted logical interface binds it, a network wherever
    // one of its VMIs or virtual gateways lives.
    let mut vmi_nodes: BTreeMap<NamespacedName, BTreeSet<String>> = BTreeMap::new();
    let mut vmi_lis: BTreeMap<NamespacedName, BTreeSet<String>> = BTreeMap::new();
    for li in &snapshot.logical_interfaces {
        if logical_interfaces[&li.meta.key].accepted() {
            vmi_nodes
                .entry(li.vmi.clone())
                .or_default()
                .insert(li.physical_router.clone());
            vmi_lis
                .entry(li.vmi.clone())
                .or_default()
                .insert(li.meta.name().to_owned());
        }
    }
    let mut network_nodes: BTreeMap<NamespacedName, BTreeSet<String>> = BTreeMap::new();
    for vmi in &snapshot.virtual_machine_interfaces {
        let name = NamespacedName::new(vmi.meta.namespace(), vmi.meta.name());
        if vmis[&name].findings.accepted()
            && let Some(nodes) = vmi_nodes.get(&name)
        {
            network_nodes
                .entry(NamespacedName::new(vmi.meta.namespace(), &vmi.network))
                .or_default()
                .extend(nodes.iter().cloned());
        }
    }
    for gateway in &snapshot.virtual_gateways {
        if gateways[&gateway.meta.key].accepted() {
            network_nodes
                .entry(gateway.network.clone())
                .or_default()
                .extend(gateway.nodes.iter().cloned());
        }
    }

    for li in &snapshot.logical_interfaces {
        let findings = &logical_interfaces[&li.meta.key];
        let nodes = BTreeSet::from([li.physical_router.clone()]);
        let p = programmed(&li.meta, findings.accepted(), &nodes, "");
        decisions.insert(decision(&li.meta, findings, Some(p), DerivedStatus::None));
    }

    for vmi in &snapshot.virtual_machine_interfaces {
        let name = NamespacedName::new(vmi.meta.namespace(), vmi.meta.name());
        let verdict = &vmis[&name];
        let nodes = vmi_nodes.remove(&name).unwrap_or_default();
        let p = programmed(
            &vmi.meta,
            verdict.findings.accepted(),
            &nodes,
            "no accepted LogicalInterface binds this VMI, so no gateway node holds it: create a LogicalInterface whose spec.virtualMachineInterface names it",
        );
        let derived = DerivedStatus::VirtualMachineInterface {
            routing_instance: verdict.routing_instance.clone(),
            logical_interfaces: vmi_lis
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        decisions.insert(decision(&vmi.meta, &verdict.findings, Some(p), derived));
    }

    for network in &snapshot.virtual_networks {
        let name = NamespacedName::new(network.meta.namespace(), network.meta.name());
        let verdict = &networks[&name];
        let nodes = network_nodes.remove(&name).unwrap_or_default();
        let p = programmed(
            &network.meta,
            verdict.findings.accepted(),
            &nodes,
            "no accepted VirtualMachineInterface bound to a logical interface, and no accepted VirtualGateway, uses this network, so no gateway node holds it",
        );
        let derived = DerivedStatus::VirtualNetwork {
            vni: verdict.vni,
            routing_instance: verdict.routing_instance.clone(),
        };
        decisions.insert(decision(&network.meta, &verdict.findings, Some(p), derived));
    }

    for gateway in &snapshot.virtual_gateways {
        let findings = &gateways[&gateway.meta.key];
        let p = programmed(
            &gateway.meta,
            findings.accepted(),
            &gateway.nodes,
            "spec.nodes names no node",
        );
        let nodes = gateway
            .nodes
            .iter()
            .map(|node| node_status(&index, &gateway.meta, node))
            .collect();
        let derived = DerivedStatus::VirtualGateway { nodes };
        decisions.insert(decision(&gateway.meta, findings, Some(p), derived));
    }

    for group in &snapshot.gateway_ha_groups {
        let findings = decide_ha_group(group, &index, &networks);
        // No node reports an HA group: Ready is Accepted.
        decisions.insert(decision(&group.meta, &findings, None, DerivedStatus::None));
    }

    decisions
}

fn decision(
    meta: &Meta,
    findings: &Findings,
    programmed: Option<ConditionDecision>,
    derived: DerivedStatus,
) -> Decision {
    let [resolved, accepted] = findings.conditions();
    let ready = ready(&accepted, programmed.as_ref());
    let mut conditions = vec![accepted, resolved];
    conditions.extend(programmed);
    conditions.push(ready);
    Decision {
        key: meta.key.clone(),
        generation: meta.generation,
        conditions,
        derived,
    }
}

/// Lookups shared by the stages.
struct Index<'a> {
    routers: BTreeMap<&'a str, &'a PhysicalRouter>,
    /// Object -> node -> generation the node holds.
    held: BTreeMap<&'a ObjectKey, BTreeMap<&'a str, i64>>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let routers = snapshot
            .physical_routers
            .iter()
            .map(|r| (r.meta.name(), r))
            .collect();
        let mut held: BTreeMap<&ObjectKey, BTreeMap<&str, i64>> = BTreeMap::new();
        for router in &snapshot.physical_routers {
            for object in &router.programmed {
                let generation = held
                    .entry(&object.key)
                    .or_default()
                    .entry(router.meta.name())
                    .or_insert(object.generation);
                // A report listing an object twice: the newest counts.
                *generation = (*generation).max(object.generation);
            }
        }
        Self { routers, held }
    }

    /// Why `router` does not have port `interface`, if it does not.
    fn port_problem(&self, router: &str, interface: &str, what: &str) -> Option<String> {
        match self.routers.get(router) {
            None => Some(format!(
                "{what}PhysicalRouter {router} does not exist: create it (named after its node)"
            )),
            Some(r) if !r.interfaces.contains(interface) => Some(format!(
                "{what}PhysicalRouter {router} has no physical interface {interface} (it lists: {}): add {interface} to its spec.physicalInterfaces",
                list_or_none(r.interfaces.iter())
            )),
            Some(_) => None,
        }
    }
}

fn list_or_none<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// What was decided about a network, for the stages after it.
struct NetworkVerdict<'a> {
    network: &'a VirtualNetwork,
    findings: Findings,
    vni: Option<u32>,
    routing_instance: String,
}

fn decide_networks(snapshot: &Snapshot) -> BTreeMap<NamespacedName, NetworkVerdict<'_>> {
    let mut by_age: Vec<&VirtualNetwork> = snapshot.virtual_networks.iter().collect();
    by_age.sort_by_key(|n| n.meta.age());

    // A VNI is claimed by the network that asks for it (spec.vni) or that
    // already runs with it (status.vni): a running network never changes
    // VNI, and a newer network cannot take it.
    let mut vnis: Claims<u32> = Claims::default();
    let mut instances: Claims<String> = Claims::default();
    for network in &by_age {
        if let Some(vni) = claimed_vni(network) {
            vnis.claim(vni, &network.meta);
        }
        instances.claim(network.effective_routing_instance(), &network.meta);
    }

    let mut next_free = FIRST_ALLOCATED_VNI;
    let mut allocated: BTreeSet<u32> = BTreeSet::new();
    let mut verdicts = BTreeMap::new();
    for network in by_age {
        let mut findings = Findings::default();
        for defect in &network.defects {
            findings.invalid(defect.clone());
        }
        let routing_instance = network.effective_routing_instance();
        if let Some(holder) = instances.held_by_other(&routing_instance, &network.meta) {
            findings.conflict(format!(
                "routing instance {routing_instance} is already used by {holder} (older): set another spec.routingInstance, or delete that network"
            ));
        }
        let vni = match (network.vni, claimed_vni(network)) {
            (Some(wanted), _) => match vnis.held_by_other(&wanted, &network.meta) {
                Some(holder) => {
                    findings.conflict(format!(
                        "VNI {wanted} is already used by {holder} (older): choose another spec.vni, leave it unset to get one allocated, or delete that network"
                    ));
                    None
                }
                None => Some(wanted),
            },
            (None, Some(running)) if vnis.held_by_other(&running, &network.meta).is_none() => {
                Some(running)
            }
            // Nothing asked for, or the old VNI now belongs to an older
            // network: the lowest free one, oldest networks first.
            _ => {
                while next_free <= MAX_VNI
                    && (vnis.is_held(&next_free) || allocated.contains(&next_free))
                {
                    next_free += 1;
                }
                if next_free > MAX_VNI {
                    findings.conflict(format!(
                        "no free VNI left between {FIRST_ALLOCATED_VNI} and {MAX_VNI}: set spec.vni to a free one below {FIRST_ALLOCATED_VNI}, or delete unused networks"
                    ));
                    None
                } else {
                    allocated.insert(next_free);
                    Some(next_free)
                }
            }
        };
        verdicts.insert(
            NamespacedName::new(network.meta.namespace(), network.meta.name()),
            NetworkVerdict {
                network,
                findings,
                vni,
                routing_instance,
            },
        );
    }
    verdicts
}

/// The VNI a network claims: the one it asks for, or else the one it runs
/// with (a status value out of range is ignored).
fn claimed_vni(network: &VirtualNetwork) -> Option<u32> {
    network
        .vni
        .or(network.vni_in_use.filter(|v| (1..=MAX_VNI).contains(v)))
}

/// Why a reference to network `name` does not resolve, if it does not.
fn network_ref(
    networks: &BTreeMap<NamespacedName, NetworkVerdict<'_>>,
    name: &NamespacedName,
    findings: &mut Findings,
    field: &str,
) {
    match networks.get(name) {
        None => findings.not_found(format!(
            "VirtualNetwork {name} does not exist: create it, or fix {field}"
        )),
        Some(n) if !n.findings.accepted() => {
            let [_, accepted] = n.findings.conditions();
            findings.not_accepted(format!(
                "VirtualNetwork {name} is not accepted ({}: {})",
                accepted.reason, accepted.message
            ));
        }
        Some(_) => {}
    }
}

/// What was decided about a VMI, for the stages after it.
struct VmiVerdict {
    findings: Findings,
    routing_instance: Option<String>,
}

fn decide_vmis(
    snapshot: &Snapshot,
    networks: &BTreeMap<NamespacedName, NetworkVerdict<'_>>,
) -> BTreeMap<NamespacedName, VmiVerdict> {
    // Addresses and MACs are unique within a network.
    let mut addresses: Claims<(String, String, IpAddr)> = Claims::default();
    let mut macs: Claims<(String, String, String)> = Claims::default();
    for vmi in &snapshot.virtual_machine_interfaces {
        let ns = vmi.meta.namespace().to_owned();
        for ip in &vmi.ips {
            addresses.claim((ns.clone(), vmi.network.clone(), *ip), &vmi.meta);
        }
        if let Some(mac) = &vmi.mac {
            macs.claim((ns.clone(), vmi.network.clone(), mac.clone()), &vmi.meta);
        }
    }

    let mut verdicts = BTreeMap::new();
    for vmi in &snapshot.virtual_machine_interfaces {
        let ns = vmi.meta.namespace().to_owned();
        let network_name = NamespacedName::new(&ns, &vmi.network);
        let mut findings = Findings::default();
        for defect in &vmi.defects {
            findings.invalid(defect.clone());
        }
        network_ref(
            networks,
            &network_name,
            &mut findings,
            "spec.virtualNetwork",
        );
        let network = networks.get(&network_name);
        if let Some(verdict) = network {
            for ip in &vmi.ips {
                if let Some(problem) = address_problem(verdict.network, &network_name, *ip) {
                    findings.invalid(problem);
                }
            }
        }
        for ip in &vmi.ips {
            if let Some(holder) =
                addresses.held_by_other(&(ns.clone(), vmi.network.clone(), *ip), &vmi.meta)
            {
                findings.conflict(format!(
                    "address {ip} is already used by {holder} (older) in network {}: use another address, or remove it from that VMI",
                    vmi.network
                ));
            }
        }
        if let Some(mac) = &vmi.mac
            && let Some(holder) =
                macs.held_by_other(&(ns.clone(), vmi.network.clone(), mac.clone()), &vmi.meta)
        {
            findings.conflict(format!(
                "MAC address {mac} is already used by {holder} (older) in network {}: each interface of a network needs its own MAC",
                vmi.network
            ));
        }
        verdicts.insert(
            NamespacedName::new(&ns, vmi.meta.name()),
            VmiVerdict {
                findings,
                routing_instance: network.map(|n| n.routing_instance.clone()),
            },
        );
    }
    verdicts
}

/// Why `ip` cannot be an instance address in `network`, if it cannot.
fn address_problem(network: &VirtualNetwork, name: &NamespacedName, ip: IpAddr) -> Option<String> {
    let subnets = list_or_none(network.subnets.iter().map(|s| s.prefix));
    match network.subnets.iter().find(|s| s.prefix.contains(ip)) {
        None if network.subnets.is_empty() => Some(format!(
            "address {ip} cannot be used: VirtualNetwork {name} has no subnets; add one containing it to the network's spec.subnets"
        )),
        None => Some(format!(
            "address {ip} is outside every subnet of VirtualNetwork {name} ({subnets}): use an address inside one of them, or add a subnet containing it"
        )),
        Some(subnet) if subnet.gateway == ip => Some(format!(
            "address {ip} is the gateway address of subnet {} of VirtualNetwork {name}, which the gateway node answers for: use another address of the subnet",
            subnet.prefix
        )),
        Some(_) => None,
    }
}

fn decide_logical_interfaces(
    snapshot: &Snapshot,
    index: &Index<'_>,
    vmis: &BTreeMap<NamespacedName, VmiVerdict>,
) -> BTreeMap<ObjectKey, Findings> {
    let mut by_age: Vec<_> = snapshot.logical_interfaces.iter().collect();
    by_age.sort_by_key(|li| li.meta.age());

    let mut vlans: Claims<(String, String, u16)> = Claims::default();
    for li in &by_age {
        vlans.claim(
            (
                li.physical_router.clone(),
                li.physical_interface.clone(),
                li.vlan,
            ),
            &li.meta,
        );
    }

    // Slots on a router go to the oldest logical interfaces that hold their
    // VLAN on one of its ports.
    let mut used_slots: BTreeMap<&str, u32> = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    for li in by_age {
        let mut findings = Findings::default();
        let port_problem = index.port_problem(&li.physical_router, &li.physical_interface, "");
        if let Some(problem) = &port_problem {
            findings.not_found(problem.clone());
        }
        match vmis.get(&li.vmi) {
            None => findings.not_found(format!(
                "VirtualMachineInterface {} does not exist: create it, or fix spec.virtualMachineInterface",
                li.vmi
            )),
            Some(v) if !v.findings.accepted() => {
                let [_, accepted] = v.findings.conditions();
                findings.not_accepted(format!(
                    "VirtualMachineInterface {} is not accepted ({}: {})",
                    li.vmi, accepted.reason, accepted.message
                ));
            }
            Some(_) => {}
        }
        let port = (
            li.physical_router.clone(),
            li.physical_interface.clone(),
            li.vlan,
        );
        let holder = vlans.held_by_other(&port, &li.meta);
        if let Some(holder) = holder {
            findings.conflict(format!(
                "VLAN {} on {}/{} is already used by {holder} (older): use another VLAN, or delete {}",
                li.vlan, li.physical_router, li.physical_interface, holder.name
            ));
        }
        if holder.is_none()
            && port_problem.is_none()
            && let Some(router) = index.routers.get(li.physical_router.as_str())
        {
            let used = used_slots.entry(router.meta.name()).or_default();
            if *used >= router.interface_limit {
                findings.conflict(format!(
                    "PhysicalRouter {} accepts at most {} logical interfaces (spec.interfaceLimit) and older ones use them all: raise its spec.interfaceLimit, or delete a logical interface on it",
                    li.physical_router, router.interface_limit
                ));
            } else {
                *used += 1;
            }
        }
        verdicts.insert(li.meta.key.clone(), findings);
    }
    verdicts
}

fn decide_virtual_gateways(
    snapshot: &Snapshot,
    index: &Index<'_>,
    networks: &BTreeMap<NamespacedName, NetworkVerdict<'_>>,
) -> BTreeMap<ObjectKey, Findings> {
    let mut by_age: Vec<_> = snapshot.virtual_gateways.iter().collect();
    by_age.sort_by_key(|g| g.meta.age());

    let mut interfaces: Claims<(String, String)> = Claims::default();
    for gateway in &by_age {
        for node in &gateway.nodes {
            interfaces.claim((node.clone(), gateway.interface.clone()), &gateway.meta);
        }
    }

    let mut verdicts = BTreeMap::new();
    for (position, gateway) in by_age.iter().enumerate() {
        let mut findings = Findings::default();
        for defect in &gateway.defects {
            findings.invalid(defect.clone());
        }
        network_ref(
            networks,
            &gateway.network,
            &mut findings,
            "spec.virtualNetwork",
        );
        let missing: Vec<&String> = gateway
            .nodes
            .iter()
            .filter(|n| !index.routers.contains_key(n.as_str()))
            .collect();
        if !missing.is_empty() {
            findings.not_found(format!(
                "no PhysicalRouter for node(s) {}: create them, or remove them from spec.nodes",
                list_or_none(missing.iter())
            ));
        }
        for node in &gateway.nodes {
            if let Some(holder) =
                interfaces.held_by_other(&(node.clone(), gateway.interface.clone()), &gateway.meta)
            {
                findings.conflict(format!(
                    "interface {} on node {node} is already used by {holder} (older): choose another spec.interface",
                    gateway.interface
                ));
            }
            // Every older gateway on the node keeps its subnets.
            for older in by_age[..position].iter().filter(|o| o.nodes.contains(node)) {
                for (mine, theirs) in overlapping(&gateway.subnets, &older.subnets) {
                    findings.conflict(format!(
                        "subnet {mine} overlaps subnet {theirs} of {} (older) on node {node}: use a disjoint subnet, or run the gateways on different nodes",
                        older.meta.key
                    ));
                }
            }
        }
        verdicts.insert(gateway.meta.key.clone(), findings);
    }
    verdicts
}

fn overlapping<'a>(
    mine: &'a [IpPrefix],
    theirs: &'a [IpPrefix],
) -> impl Iterator<Item = (&'a IpPrefix, &'a IpPrefix)> {
    mine.iter()
        .flat_map(move |m| theirs.iter().map(move |t| (m, t)))
        .filter(|(m, t)| m.overlaps(t))
}

fn decide_ha_group(
    group: &crate::model::GatewayHaGroup,
    index: &Index<'_>,
    networks: &BTreeMap<NamespacedName, NetworkVerdict<'_>>,
) -> Findings {
    let mut findings = Findings::default();
    for member in &group.members {
        let what = format!("member {}: ", member.physical_router);
        if let Some(problem) =
            index.port_problem(&member.physical_router, &member.physical_interface, &what)
        {
            findings.not_found(problem);
        }
    }
    if let Some(bpdu) = &group.bpdu_network {
        network_ref(networks, bpdu, &mut findings, "spec.bpduNetwork");
    }
    findings
}

/// `Programmed`: every node that should hold the object reports it at the
/// object's current generation.
fn programmed_condition(
    index: &Index<'_>,
    meta: &Meta,
    accepted: bool,
    nodes: &BTreeSet<String>,
    nobody: &str,
) -> ConditionDecision {
    let pending = |message: String| {
        ConditionDecision::new(condition::PROGRAMMED, false, reason::PENDING, message)
    };
    if !accepted {
        return pending(
            "not programmed: a gateway node programs only accepted objects (see Accepted)"
                .to_owned(),
        );
    }
    if nodes.is_empty() {
        return pending(format!("not programmed: {nobody}"));
    }
    let held = index.held.get(&meta.key);
    let lagging: Vec<String> = nodes
        .iter()
        .filter_map(|node| match held.and_then(|h| h.get(node.as_str())) {
            Some(g) if *g == meta.generation => None,
            Some(g) => Some(format!("{node} (holds generation {g})")),
            None => Some(format!("{node} (does not hold it)")),
        })
        .collect();
    if lagging.is_empty() {
        ConditionDecision::new(
            condition::PROGRAMMED,
            true,
            reason::OK,
            format!(
                "generation {} is programmed on gateway node(s) {}",
                meta.generation,
                list_or_none(nodes.iter())
            ),
        )
    } else {
        pending(format!(
            "waiting for gateway node(s) {} to program generation {}: their node dataplane reports it in its PhysicalRouter's status.programmed",
            lagging.join(", "),
            meta.generation
        ))
    }
}

fn node_status(index: &Index<'_>, meta: &Meta, node: &str) -> NodeStatus {
    if !index.routers.contains_key(node) {
        return NodeStatus {
            node: node.to_owned(),
            state: NodeState::Failed,
            message: Some(format!("no PhysicalRouter {node}")),
        };
    }
    match index.held.get(&meta.key).and_then(|h| h.get(node)) {
        Some(g) if *g == meta.generation => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Programmed,
            message: None,
        },
        Some(g) => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Pending,
            message: Some(format!("holds generation {g}, not {}", meta.generation)),
        },
        None => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Pending,
            message: Some("not reported by the node dataplane yet".to_owned()),
        },
    }
}

/// The kinds the core decides on (PhysicalRouter status belongs to the node
/// dataplane).
pub const DECIDED_KINDS: [Kind; 5] = [
    Kind::LogicalInterface,
    Kind::VirtualMachineInterface,
    Kind::VirtualNetwork,
    Kind::GatewayHAGroup,
    Kind::VirtualGateway,
];
