//! VirtualMachineInterfaces: a network that exists and is accepted,
//! addresses inside its subnets (not a gateway, nor an IPv4 subnet's
//! network or broadcast address), addresses and MACs unique
//! within the network (hosts behind external VTEPs included), and a label
//! for accepted ones.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::ha::member_port_claims;
use trunkline_model::{IpPrefix, NamespacedName, ObjectKey, Placement, Snapshot, VirtualNetwork};

use super::addresses::{NetworkAddresses, release_hint};
use super::index::Index;
use super::labels::Labels;
use super::programmed::programmed_condition;
use super::virtual_network::{Networks, is_ipv4_broadcast, network_ref};
use super::{decision, list_or_none};
use crate::decision::{Decisions, DerivedStatus, Findings, summary};

/// What was decided about a VMI, for the stages after it.
pub(super) struct VmiVerdict {
    pub(super) findings: Findings,
    pub(super) routing_instance: Option<String>,
    pub(super) mpls_label: Option<u32>,
}

/// The VMIs' verdicts, by name.
pub(super) type Vmis = BTreeMap<NamespacedName, VmiVerdict>;

pub(super) fn decide(
    snapshot: &Snapshot,
    networks: &Networks<'_>,
    addresses: &NetworkAddresses,
    labels: &mut Labels,
) -> Vmis {
    let mut verdicts = BTreeMap::new();
    for vmi in &snapshot.virtual_machine_interfaces {
        let network_name = vmi.network_name();
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
            if let Some(holder) = addresses.ip_holder(&network_name, *ip, &vmi.meta) {
                findings.conflict(format!(
                    "address {ip} is already used by {holder} (older) in network {}: use another address, or {}",
                    vmi.network,
                    release_hint(holder)
                ));
            }
        }
        if let Some(mac) = vmi.mac
            && let Some(holder) = addresses.mac_holder(&network_name, mac, &vmi.meta)
        {
            findings.conflict(format!(
                "MAC address {mac} is already used by {holder} (older) in network {}: each interface of a network needs its own MAC",
                vmi.network
            ));
        }
        verdicts.insert(
            vmi.name(),
            VmiVerdict {
                findings,
                routing_instance: network.map(|n| n.routing_instance.clone()),
                mpls_label: None,
            },
        );
    }

    // A label for every accepted VMI, oldest first.
    let mut by_age: Vec<_> = snapshot.virtual_machine_interfaces.iter().collect();
    by_age.sort_by_key(|v| v.meta.age());
    for vmi in by_age {
        let Some(verdict) = verdicts.get_mut(&vmi.name()) else {
            continue;
        };
        if verdict.findings.accepted() {
            verdict.mpls_label = labels.assign(&vmi.meta, vmi.mpls_label);
            if verdict.mpls_label.is_none() {
                verdict.findings.conflict(Labels::exhausted());
            }
        }
    }
    verdicts
}

/// Why `ip` cannot be an instance address in `network`, if it cannot.
pub(super) fn address_problem(
    network: &VirtualNetwork,
    name: &NamespacedName,
    ip: IpAddr,
) -> Option<String> {
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
        Some(subnet) if subnet.prefix.is_ipv4() && subnet.prefix.network() == ip => Some(format!(
            "address {ip} is the network address of subnet {} of VirtualNetwork {name}, which no host may use: use a host address of the subnet",
            subnet.prefix
        )),
        Some(subnet) if is_ipv4_broadcast(subnet.prefix, ip) => Some(format!(
            "address {ip} is the broadcast address of subnet {} of VirtualNetwork {name}, which no host may use: use a host address of the subnet",
            subnet.prefix
        )),
        Some(_) => None,
    }
}

/// The VMIs' decisions: held by the nodes of their accepted logical
/// interfaces, whose names the status lists.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    placement: &Placement,
    vmis: &Vmis,
    logical_interfaces: &BTreeMap<ObjectKey, Findings>,
    out: &mut Decisions,
) {
    let mut bound: BTreeMap<&NamespacedName, BTreeSet<&str>> = BTreeMap::new();
    // VMI -> the group whose member port an accepted binding is on.
    let claims = member_port_claims(snapshot);
    let mut grouped: BTreeMap<&NamespacedName, &str> = BTreeMap::new();
    for li in &snapshot.logical_interfaces {
        if logical_interfaces[&li.meta.key].accepted() {
            bound.entry(&li.vmi).or_default().insert(li.meta.name());
            let port = (li.physical_router.clone(), li.physical_interface.clone());
            if let Some(group) = claims.get(&port).and_then(|g| g.first()) {
                grouped.entry(&li.vmi).or_insert(group.meta.name());
            }
        }
    }
    for vmi in &snapshot.virtual_machine_interfaces {
        let name = vmi.name();
        let verdict = &vmis[&name];
        // ActiveActive (ECMP over the members) is not supported yet: the
        // VMI runs active-standby, and says so.
        let mut findings = verdict.findings.clone();
        if let (Some(group), false) = (grouped.get(&name), vmi.active_active.is_empty()) {
            findings.not_applied(format!(
                "mode ActiveActive of {} is not applied: the VMI is served by GatewayHAGroup {group}, and ECMP over its members is not supported yet; the addresses run ActiveStandby (one member active); set their mode to ActiveStandby (the default)",
                list_or_none(vmi.active_active.iter().map(|p| {
                    if *p == IpPrefix::host(p.addr()) {
                        p.addr().to_string()
                    } else {
                        p.to_string()
                    }
                }))
            ));
        }
        let verdict = VmiVerdict {
            findings,
            routing_instance: verdict.routing_instance.clone(),
            mpls_label: verdict.mpls_label,
        };
        let verdict = &verdict;
        let p = programmed_condition(
            index,
            &vmi.meta,
            verdict.findings.accepted(),
            placement.vmi_nodes(&name),
            "no accepted LogicalInterface binds this VMI, so no gateway node holds it: create a LogicalInterface whose spec.virtualMachineInterface names it",
        );
        let derived = DerivedStatus::VirtualMachineInterface {
            routing_instance: verdict.routing_instance.clone(),
            logical_interfaces: bound
                .get(&name)
                .into_iter()
                .flatten()
                .map(|n| (*n).to_owned())
                .collect(),
            mpls_label: verdict.mpls_label,
            mac_address: vmi.mac.map(|m| m.to_string()),
            addresses_summary: summary(&vmi.ips),
        };
        out.insert(decision(&vmi.meta, &verdict.findings, Some(p), derived));
    }
}
