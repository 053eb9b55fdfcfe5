//! ExternalVTEPs: the networks they join exist, are accepted and use their
//! encapsulation; their address is nobody else's tunnel endpoint; the hosts
//! behind them have addresses inside the network's subnets and addresses
//! and MACs no older object of the network uses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::{ExternalVtep, NamespacedName, Placement, VirtualNetwork};

use super::addresses::{NetworkAddresses, release_hint};
use super::index::RefIndex;
use super::programmed::{Reports, programmed_condition};
use super::virtual_machine_interface::address_problem;
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::claims::Claims;
use crate::decision::{Decision, DerivedStatus, Findings, summary};

/// What a VTEP claims: its tunnel endpoint address.
pub(super) fn claims(vtep: &ExternalVtep) -> BTreeSet<IpAddr> {
    vtep.address.into_iter().collect()
}

/// The rules of one external VTEP.
pub(super) fn verdict(
    vtep: &ExternalVtep,
    routers_of_underlay: &RefIndex<IpAddr, String>,
    endpoints: &Claims<IpAddr>,
    networks: &Networks,
    network_objects: &BTreeMap<NamespacedName, VirtualNetwork>,
    addresses: &NetworkAddresses,
) -> Findings {
    let mut findings = Findings::default();
    for defect in &vtep.defects {
        findings.invalid(defect.clone());
    }
    if let Some(address) = vtep.address {
        // Gateway nodes' tunnel endpoints are theirs, whatever the ages.
        let routers: Vec<&str> = routers_of_underlay
            .get(&address)
            .map(String::as_str)
            .collect();
        if !routers.is_empty() {
            findings.conflict(format!(
                "address {address} is the underlay address of PhysicalRouter {}: an external VTEP needs a tunnel endpoint of its own; fix spec.address",
                routers.join(", ")
            ));
        }
        if let Some(holder) = endpoints.held_by_other(&address, &vtep.meta) {
            findings.conflict(format!(
                "address {address} is already used by {holder} (older): fix spec.address, or delete that ExternalVTEP"
            ));
        }
    }
    for joined in &vtep.networks {
        let name = &joined.network;
        network_ref(networks, name, &mut findings, "spec.networks");
        let (Some(verdict), Some(network)) = (networks.get(name), network_objects.get(name)) else {
            continue;
        };
        if !verdict.encapsulation.contains(&vtep.encapsulation) {
            findings.invalid(format!(
                "VirtualNetwork {name} does not use {encapsulation} (its encapsulation: {}): add {encapsulation} to the network's spec.encapsulation, or remove the network from spec.networks",
                list_or_none(verdict.encapsulation.iter()),
                encapsulation = vtep.encapsulation,
            ));
        }
        for host in &joined.endpoints {
            let what = format!("spec.networks[{name}]: host {}", host.mac);
            for ip in &host.ips {
                if let Some(problem) = address_problem(network, name, *ip) {
                    findings.invalid(format!("{what}: {problem}"));
                }
                if let Some(holder) = addresses.ip_holder(name, *ip, &vtep.meta) {
                    findings.conflict(format!(
                        "{what}: address {ip} is already used by {holder} (older) in network {name}: use another address, or {}",
                        release_hint(holder)
                    ));
                }
            }
            if let Some(holder) = addresses.mac_holder(name, host.mac, &vtep.meta) {
                findings.conflict(format!(
                    "{what}: MAC address {} is already used by {holder} (older) in network {name}: each interface of a network needs its own MAC",
                    host.mac
                ));
            }
        }
    }
    findings
}

/// An external VTEP's decision: held by every node holding one of its
/// networks (each of those nodes tunnels to the VTEP).
pub(super) fn decision_of(
    vtep: &ExternalVtep,
    findings: &Findings,
    placement: &Placement,
    reports: &Reports,
) -> Decision {
    let nodes = placement.nodes_of(vtep.networks.iter().map(|n| &n.network));
    let p = programmed_condition(
        reports,
        &vtep.meta,
        findings.accepted(),
        &nodes,
        "no gateway node holds any of its networks (no accepted VirtualMachineInterface bound to a logical interface, nor VirtualGateway, in them), so no node tunnels to it",
        &[],
    );
    let derived = DerivedStatus::ExternalVtep {
        networks_summary: summary(vtep.networks.iter().map(|n| &n.network)),
    };
    decision(&vtep.meta, findings, Some(p), derived)
}
