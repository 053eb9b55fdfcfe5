//! ExternalVTEPs: the networks they join exist, are accepted and use their
//! encapsulation; their address is nobody else's tunnel endpoint; the hosts
//! behind them have addresses inside the network's subnets and addresses
//! and MACs no older object of the network uses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use trunkline_model::{ExternalVtep, ObjectKey, Placement, Snapshot};

use super::addresses::{NetworkAddresses, release_hint};
use super::index::Index;
use super::programmed::programmed_condition;
use super::virtual_machine_interface::address_problem;
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings, summary};

/// The external VTEPs' findings, by key.
pub(super) type ExternalVteps = BTreeMap<ObjectKey, Findings>;

pub(super) fn decide(
    snapshot: &Snapshot,
    networks: &Networks<'_>,
    addresses: &NetworkAddresses,
) -> ExternalVteps {
    // Gateway nodes' tunnel endpoints are theirs, whatever the ages.
    let mut underlay: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
    for router in &snapshot.physical_routers {
        if let Some(address) = router.underlay_address() {
            underlay
                .entry(address)
                .or_default()
                .push(router.meta.name());
        }
    }
    let mut endpoints: Claims<IpAddr> = Claims::default();
    for vtep in &snapshot.external_vteps {
        if let Some(address) = vtep.address {
            endpoints.claim(address, &vtep.meta);
        }
    }

    let mut verdicts = BTreeMap::new();
    for vtep in &snapshot.external_vteps {
        let mut findings = Findings::default();
        for defect in &vtep.defects {
            findings.invalid(defect.clone());
        }
        if let Some(address) = vtep.address {
            if let Some(routers) = underlay.get(&address) {
                let mut routers = routers.clone();
                routers.sort_unstable();
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
        joined_networks(vtep, networks, addresses, &mut findings);
        verdicts.insert(vtep.meta.key.clone(), findings);
    }
    verdicts
}

/// The rules of each network the VTEP joins and of the hosts behind it.
fn joined_networks(
    vtep: &ExternalVtep,
    networks: &Networks<'_>,
    addresses: &NetworkAddresses,
    findings: &mut Findings,
) {
    for joined in &vtep.networks {
        let name = &joined.network;
        network_ref(networks, name, findings, "spec.networks");
        let Some(verdict) = networks.get(name) else {
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
                if let Some(problem) = address_problem(verdict.network, name, *ip) {
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
}

/// The external VTEPs' decisions: held by every node holding one of their
/// networks (each of those nodes tunnels to the VTEP).
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    placement: &Placement,
    vteps: &ExternalVteps,
    out: &mut Decisions,
) {
    for vtep in &snapshot.external_vteps {
        let findings = &vteps[&vtep.meta.key];
        let nodes = placement.nodes_of(vtep.networks.iter().map(|n| &n.network));
        let p = programmed_condition(
            index,
            &vtep.meta,
            findings.accepted(),
            &nodes,
            "no gateway node holds any of its networks (no accepted VirtualMachineInterface bound to a logical interface, nor VirtualGateway, in them), so no node tunnels to it",
        );
        let derived = DerivedStatus::ExternalVtep {
            networks_summary: summary(vtep.networks.iter().map(|n| &n.network)),
        };
        out.insert(decision(&vtep.meta, findings, Some(p), derived));
    }
}
