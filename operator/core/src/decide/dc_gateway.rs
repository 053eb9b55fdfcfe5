//! DCGateways: the networks they serve exist, are accepted, route (not L2
//! only) and use MPLS over UDP; their address is nobody else's tunnel
//! endpoint; their routes stay out of the networks' own subnets, and a
//! prefix of a network is routed by one DC gateway only (the older).

use std::collections::BTreeMap;
use std::net::IpAddr;

use trunkline_model::{
    DcGateway, Encapsulation, ForwardingMode, IpPrefix, NamespacedName, ObjectKey, Placement,
    Snapshot,
};

use super::index::Index;
use super::programmed::programmed_condition;
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings, summary};

/// The DC gateways' findings, by key.
pub(super) type DcGateways = BTreeMap<ObjectKey, Findings>;

pub(super) fn decide(snapshot: &Snapshot, networks: &Networks<'_>) -> DcGateways {
    // Tunnel endpoints of gateway nodes and external VTEPs are theirs.
    let mut taken: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for router in &snapshot.physical_routers {
        if let Some(address) = router.underlay_address() {
            taken
                .entry(address)
                .or_default()
                .push(format!("PhysicalRouter {}", router.meta.name()));
        }
    }
    for vtep in &snapshot.external_vteps {
        if let Some(address) = vtep.address {
            taken
                .entry(address)
                .or_default()
                .push(format!("ExternalVTEP {}", vtep.meta.name()));
        }
    }
    let mut endpoints: Claims<IpAddr> = Claims::default();
    let mut prefixes: Claims<(NamespacedName, IpPrefix)> = Claims::default();
    for gateway in &snapshot.dc_gateways {
        if let Some(address) = gateway.address {
            endpoints.claim(address, &gateway.meta);
        }
        for served in &gateway.networks {
            for route in &served.routes {
                prefixes.claim((served.network.clone(), route.prefix), &gateway.meta);
            }
        }
    }

    let mut verdicts = BTreeMap::new();
    for gateway in &snapshot.dc_gateways {
        let mut findings = Findings::default();
        for defect in &gateway.defects {
            findings.invalid(defect.clone());
        }
        if let Some(address) = gateway.address {
            if let Some(holders) = taken.get(&address) {
                let mut holders = holders.clone();
                holders.sort_unstable();
                findings.conflict(format!(
                    "address {address} is the tunnel endpoint of {}: a DC gateway needs an address of its own; fix spec.address",
                    holders.join(", ")
                ));
            }
            if let Some(holder) = endpoints.held_by_other(&address, &gateway.meta) {
                findings.conflict(format!(
                    "address {address} is already used by {holder} (older): fix spec.address, or delete that DCGateway"
                ));
            }
        }
        served_networks(gateway, networks, &prefixes, &mut findings);
        verdicts.insert(gateway.meta.key.clone(), findings);
    }
    verdicts
}

/// The rules of each network the gateway serves and of its routes there.
fn served_networks(
    gateway: &DcGateway,
    networks: &Networks<'_>,
    prefixes: &Claims<(NamespacedName, IpPrefix)>,
    findings: &mut Findings,
) {
    for served in &gateway.networks {
        let name = &served.network;
        network_ref(networks, name, findings, "spec.networks");
        let Some(verdict) = networks.get(name) else {
            continue;
        };
        if !verdict.encapsulation.contains(&Encapsulation::MplsOverUdp) {
            findings.invalid(format!(
                "VirtualNetwork {name} does not use MPLSoUDP (its encapsulation: {}): add MPLSoUDP to the network's spec.encapsulation, or remove the network from spec.networks",
                list_or_none(verdict.encapsulation.iter()),
            ));
        }
        if verdict.network.forwarding_mode == ForwardingMode::L2 {
            findings.invalid(format!(
                "VirtualNetwork {name} only bridges (forwardingMode L2): nothing of it is routed to or from a DC gateway; use L2L3 or L3, or remove the network from spec.networks"
            ));
        }
        for route in &served.routes {
            let prefix = route.prefix;
            if let Some(subnet) = verdict.network.subnets.iter().find(|s| {
                s.prefix.contains(prefix.addr()) && s.prefix.prefix_len() <= prefix.prefix_len()
            }) {
                findings.invalid(format!(
                    "spec.networks[{name}]: route {prefix} lies inside subnet {} of the network, whose addresses the overlay routes itself: route a prefix outside the network's subnets",
                    subnet.prefix
                ));
            }
            if let Some(holder) = prefixes.held_by_other(&(name.clone(), prefix), &gateway.meta) {
                findings.conflict(format!(
                    "spec.networks[{name}]: route {prefix} is already provided by {holder} (older): a prefix of a network goes through one DC gateway; remove it here or there"
                ));
            }
        }
    }
}

/// The DC gateways' decisions: held by every node holding one of their
/// networks (each of those nodes routes to the gateway).
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    placement: &Placement,
    gateways: &DcGateways,
    out: &mut Decisions,
) {
    for gateway in &snapshot.dc_gateways {
        let findings = &gateways[&gateway.meta.key];
        let nodes = placement.nodes_of(gateway.networks.iter().map(|n| &n.network));
        let p = programmed_condition(
            index,
            &gateway.meta,
            findings.accepted(),
            &nodes,
            "no gateway node holds any of its networks (no accepted VirtualMachineInterface bound to a logical interface, nor VirtualGateway, in them), so no node routes to it",
        );
        let derived = DerivedStatus::DcGateway {
            networks_summary: summary(gateway.networks.iter().map(|n| &n.network)),
        };
        out.insert(decision(&gateway.meta, findings, Some(p), derived));
    }
}
