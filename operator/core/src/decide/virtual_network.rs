//! VirtualNetworks: a unique routing instance named in the network's own
//! namespace, a unique VNI each (kept from status while running, else given
//! or allocated), usable gateway addresses, the encapsulations in effect, a
//! label for accepted ones, and the reference check other kinds use.
//!
//! The VNI rule: a running network keeps its VNI (`status.vni`). A
//! `spec.vni` that differs from it (the API server refuses setting one, so
//! only an object stored before that rule can have it) is not applied: the
//! network stays accepted with the VNI it runs with, and `Ready` says
//! `Invalid` until `spec.vni` is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::{
    Encapsulation, FabricExit, IpPrefix, NamespacedName, Placement, Snapshot, VirtualNetwork,
};

use super::index::Index;
use super::labels::Labels;
use super::programmed::programmed_condition;
use super::{Settings, decision};
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings, summary};

/// The first VNI the operator allocates: lower ones are left to users who
/// set `spec.vni` (and to the original's habit of small explicit ids).
pub const FIRST_ALLOCATED_VNI: u32 = 4096;
/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// What was decided about a network, for the stages after it.
pub(super) struct NetworkVerdict<'a> {
    pub(super) network: &'a VirtualNetwork,
    pub(super) findings: Findings,
    pub(super) vni: Option<u32>,
    pub(super) routing_instance: String,
    pub(super) mpls_label: Option<u32>,
    pub(super) encapsulation: Vec<Encapsulation>,
    pub(super) fabric_exit: Option<FabricExit>,
}

/// The networks' verdicts, by name.
pub(super) type Networks<'a> = BTreeMap<NamespacedName, NetworkVerdict<'a>>;

pub(super) fn decide<'a>(
    snapshot: &'a Snapshot,
    settings: &Settings,
    labels: &mut Labels,
) -> Networks<'a> {
    let mut by_age: Vec<&VirtualNetwork> = snapshot.virtual_networks.iter().collect();
    by_age.sort_by_key(|n| n.meta.age());

    // A VNI is claimed by the network that already runs with it
    // (status.vni) and by the one that asks for it (spec.vni): a running
    // network never changes VNI, and a newer network cannot take it.
    let mut vnis: Claims<u32> = Claims::default();
    let mut instances: Claims<String> = Claims::default();
    for network in &by_age {
        for vni in running_vni(network).into_iter().chain(network.vni) {
            vnis.claim(vni, &network.meta);
        }
        instances.claim(network.effective_routing_instance(), &network.meta);
    }

    let mut next_free = FIRST_ALLOCATED_VNI;
    let mut allocated: BTreeSet<u32> = BTreeSet::new();
    // Subnets the fabric routes back to the overlay (IP fabric
    // forwarding), by the older network using them.
    let mut fabric_subnets: Vec<(IpPrefix, NamespacedName)> = Vec::new();
    let mut verdicts = BTreeMap::new();
    for network in by_age {
        let mut findings = Findings::default();
        for defect in &network.defects {
            findings.invalid(defect.clone());
        }
        let routing_instance = network.effective_routing_instance();
        if let Some(problem) = routing_instance_problem(network, &routing_instance) {
            findings.invalid(problem);
        }
        for subnet in &network.subnets {
            if is_ipv4_broadcast(subnet.prefix, subnet.gateway) {
                findings.invalid(format!(
                    "gateway {} of subnet {} is the subnet's broadcast address, which no instance can use as its gateway: set spec.subnets[{}].gateway to a host address of the subnet",
                    subnet.gateway, subnet.prefix, subnet.prefix
                ));
            }
        }
        if let Some(holder) = instances.held_by_other(&routing_instance, &network.meta) {
            findings.conflict(format!(
                "routing instance {routing_instance} is already used by {holder} (older): set another spec.routingInstance, or delete that network"
            ));
        }
        let running = running_vni(network)
            .filter(|running| vnis.held_by_other(running, &network.meta).is_none());
        let vni = match (running, network.vni) {
            // Running: kept, whatever spec.vni says.
            (Some(running), wanted) => {
                if let Some(wanted) = wanted.filter(|w| *w != running) {
                    findings.not_applied(format!(
                        "spec.vni {wanted} is not applied: the network runs with VNI {running} (status.vni) and a running network keeps its VNI; set spec.vni to {running} or remove it, or create a new network for VNI {wanted}"
                    ));
                }
                Some(running)
            }
            (None, Some(wanted)) => match vnis.held_by_other(&wanted, &network.meta) {
                Some(holder) => {
                    findings.conflict(format!(
                        "VNI {wanted} is already used by {holder} (older): choose another spec.vni, leave it unset to get one allocated, or delete that network"
                    ));
                    None
                }
                None => Some(wanted),
            },
            // Nothing asked for, or the old VNI now belongs to an older
            // network: the lowest free one, oldest networks first.
            (None, None) => {
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
        // Oldest first, and only once everything else is decided: a label
        // for every accepted network.
        let mpls_label = if findings.accepted() {
            let label = labels.assign(&network.meta, network.mpls_label);
            if label.is_none() {
                findings.conflict(Labels::exhausted());
            }
            label
        } else {
            None
        };
        let fabric_exit = if findings.accepted() {
            fabric_exit(network, &mut fabric_subnets, &mut findings)
        } else {
            None
        };
        verdicts.insert(
            network.name(),
            NetworkVerdict {
                network,
                findings,
                vni,
                routing_instance,
                mpls_label,
                fabric_exit,
                encapsulation: network
                    .effective_encapsulation(settings.encapsulation_priority.as_slice()),
            },
        );
    }
    verdicts
}

/// The fabric exit a network gets: what it asks for, unless IP fabric
/// forwarding would claim a subnet an older network with IP fabric
/// forwarding has (the fabric routes each subnet to one place): then none,
/// and `Ready` says why (the network itself keeps running).
fn fabric_exit(
    network: &VirtualNetwork,
    fabric_subnets: &mut Vec<(IpPrefix, NamespacedName)>,
    findings: &mut Findings,
) -> Option<FabricExit> {
    let exit = network.north_south.requested()?;
    if exit == FabricExit::IpFabricForwarding {
        for subnet in &network.subnets {
            if let Some((theirs, holder)) = fabric_subnets
                .iter()
                .find(|(p, _)| p.overlaps(&subnet.prefix))
            {
                findings.not_applied(format!(
                    "spec.northSouth.ipFabricForwarding is not applied: subnet {} overlaps subnet {theirs} of VirtualNetwork {holder} (older), which also uses IP fabric forwarding, and the fabric can route it to one network only; use other subnets, or SNAT",
                    subnet.prefix
                ));
                return None;
            }
        }
        let name = network.name();
        fabric_subnets.extend(network.subnets.iter().map(|s| (s.prefix, name.clone())));
    }
    Some(exit)
}

/// The VNI a network runs with (a status value out of range is ignored).
fn running_vni(network: &VirtualNetwork) -> Option<u32> {
    network.vni_in_use.filter(|v| (1..=MAX_VNI).contains(v))
}

/// Why a network may not use `routing_instance`, if it may not: the
/// project part of `domain:project:network:network` is the namespace, so
/// that a tenant cannot take (or block) another tenant's names.
fn routing_instance_problem(network: &VirtualNetwork, routing_instance: &str) -> Option<String> {
    let namespace = network.meta.namespace();
    let project = routing_instance.split(':').nth(1).unwrap_or_default();
    (project != namespace).then(|| {
        format!(
            "spec.routingInstance {routing_instance} names project {project:?}, but a routing instance belongs to the namespace of its network: use default-domain:{namespace}:<network>:<network> (or leave it unset)"
        )
    })
}

/// Whether `ip` is the broadcast address of IPv4 subnet `prefix`.
pub(super) fn is_ipv4_broadcast(prefix: trunkline_model::IpPrefix, ip: IpAddr) -> bool {
    match (prefix.network(), ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) if prefix.prefix_len() < 31 => {
            let host_bits = u32::MAX >> prefix.prefix_len();
            u32::from(ip) == u32::from(network) | host_bits
        }
        _ => false,
    }
}

/// Records in `findings` why a reference to network `name` (in field
/// `field`) does not resolve, if it does not.
pub(super) fn network_ref(
    networks: &Networks<'_>,
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

/// The networks' decisions: held by the nodes of their VMIs and virtual
/// gateways.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    placement: &Placement,
    networks: &Networks<'_>,
    out: &mut Decisions,
) {
    for network in &snapshot.virtual_networks {
        let name = network.name();
        let verdict = &networks[&name];
        let p = programmed_condition(
            index,
            &network.meta,
            verdict.findings.accepted(),
            placement.network_nodes(&name),
            "no accepted VirtualMachineInterface bound to a logical interface, and no accepted VirtualGateway, uses this network, so no gateway node holds it",
        );
        let mut findings = verdict.findings.clone();
        if verdict.fabric_exit == Some(FabricExit::Snat) {
            for gap in snat_family_gaps(network, placement.network_nodes(&name), placement) {
                findings.not_applied(gap);
            }
        }
        let derived = DerivedStatus::VirtualNetwork {
            vni: verdict.vni,
            routing_instance: verdict.routing_instance.clone(),
            mpls_label: verdict.mpls_label,
            encapsulation: verdict.encapsulation.clone(),
            subnets_summary: summary(network.subnets.iter().map(|s| s.prefix)),
            fabric_exit: verdict.fabric_exit,
        };
        out.insert(decision(&network.meta, &findings, Some(p), derived));
    }
}

/// What SNAT cannot do for `network` on the nodes holding it: it translates
/// to each node's underlay address, so only packets of that address's
/// family; a subnet of the other family gets nothing out by SNAT on that
/// node (its packets are counted drops, `snat_other_family`). One message
/// per such subnet.
fn snat_family_gaps(
    network: &VirtualNetwork,
    nodes: &BTreeSet<String>,
    placement: &Placement,
) -> Vec<String> {
    let family = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut gaps = Vec::new();
    for subnet in &network.subnets {
        let wanted = family(subnet.prefix.addr());
        let others: Vec<String> = nodes
            .iter()
            .filter_map(|node| {
                let underlay = placement.underlay_address(node)?;
                (family(underlay) != wanted).then(|| format!("{node} ({underlay})"))
            })
            .collect();
        if !others.is_empty() {
            gaps.push(format!(
                "spec.northSouth.snat does not apply to subnet {} on gateway node(s) {}: SNAT translates to the node's underlay address, which is not {wanted}, so the subnet's packets to destinations outside the network are dropped there (snat_other_family); give those nodes an underlay address of the subnet's family, or reach outside from that subnet through a DC gateway or a virtual gateway",
                subnet.prefix,
                others.join(", ")
            ));
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_address_is_the_last_one_of_an_ipv4_subnet() {
        let p = |s: &str| s.parse::<trunkline_model::IpPrefix>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_ipv4_broadcast(p("192.168.1.0/24"), ip("192.168.1.255")));
        assert!(!is_ipv4_broadcast(p("192.168.1.0/24"), ip("192.168.1.254")));
        assert!(is_ipv4_broadcast(p("10.0.0.0/30"), ip("10.0.0.3")));
        assert!(is_ipv4_broadcast(p("10.0.0.0/8"), ip("10.255.255.255")));
        assert!(!is_ipv4_broadcast(p("10.0.0.0/31"), ip("10.0.0.1")));
        assert!(!is_ipv4_broadcast(
            p("fd00::/64"),
            ip("fd00::ffff:ffff:ffff:ffff")
        ));
    }
}
