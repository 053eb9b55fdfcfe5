//! DCGateways: the networks they serve exist, are accepted and route (not
//! L2 only), whatever their encapsulation; their address is nobody else's tunnel
//! endpoint; their routes stay out of the networks' own subnets, and a
//! prefix of a network is routed by one DC gateway only (the older).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::{
    DcGateway, ForwardingMode, IpPrefix, NamespacedName, Placement, VirtualNetwork,
};

use super::decision;
use super::index::RefIndex;
use super::programmed::{Reports, programmed_condition};
use super::virtual_network::{Networks, network_ref};
use crate::claims::Claims;
use crate::decision::{Decision, DerivedStatus, Findings, summary};

/// A route claim: (network, prefix).
pub(super) type PrefixClaim = (NamespacedName, IpPrefix);

/// What a DC gateway claims: its address among DC gateways, and each
/// prefix it routes in each network.
pub(super) fn claims(gateway: &DcGateway) -> (BTreeSet<IpAddr>, BTreeSet<PrefixClaim>) {
    let endpoints = gateway.address.into_iter().collect();
    let prefixes = gateway
        .networks
        .iter()
        .flat_map(|served| {
            served
                .routes
                .iter()
                .map(|route| (served.network.clone(), route.prefix))
        })
        .collect();
    (endpoints, prefixes)
}

/// The tunnel endpoints a DC gateway's address may not be: gateway nodes'
/// and external VTEPs' (whoever is older).
pub(super) struct TakenEndpoints<'a> {
    pub(super) routers: &'a RefIndex<IpAddr, String>,
    pub(super) vteps: &'a RefIndex<IpAddr, String>,
}

/// The rules of one DC gateway.
pub(super) fn verdict(
    gateway: &DcGateway,
    taken: &TakenEndpoints<'_>,
    endpoints: &Claims<IpAddr>,
    prefixes: &Claims<PrefixClaim>,
    networks: &Networks,
    network_objects: &BTreeMap<NamespacedName, VirtualNetwork>,
) -> Findings {
    let mut findings = Findings::default();
    for defect in &gateway.defects {
        findings.invalid(defect.clone());
    }
    if let Some(address) = gateway.address {
        let mut holders: Vec<String> = taken
            .routers
            .get(&address)
            .map(|r| format!("PhysicalRouter {r}"))
            .chain(
                taken
                    .vteps
                    .get(&address)
                    .map(|x| format!("ExternalVTEP {x}")),
            )
            .collect();
        holders.sort_unstable();
        if !holders.is_empty() {
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
    for served in &gateway.networks {
        let name = &served.network;
        network_ref(networks, name, &mut findings, "spec.networks");
        // Whatever the network's encapsulation: its list governs its
        // tunnels between nodes (and external VTEPs); a DC gateway is sent
        // MPLS over UDP (its own), and its VXLAN with the network's VNI is
        // routed in the VRF like its routed label.
        let (Some(_), Some(network)) = (networks.get(name), network_objects.get(name)) else {
            continue;
        };
        if network.forwarding_mode == ForwardingMode::L2 {
            findings.invalid(format!(
                "VirtualNetwork {name} only bridges (forwardingMode L2): nothing of it is routed to or from a DC gateway; use L2L3 or L3, or remove the network from spec.networks"
            ));
        }
        for route in &served.routes {
            let prefix = route.prefix;
            if let Some(subnet) = network.subnets.iter().find(|s| {
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
    findings
}

/// A DC gateway's decision: held by every node holding one of its
/// networks (each of those nodes routes to the gateway).
pub(super) fn decision_of(
    gateway: &DcGateway,
    findings: &Findings,
    placement: &Placement,
    reports: &Reports,
) -> Decision {
    let nodes = placement.nodes_of(gateway.networks.iter().map(|n| &n.network));
    let p = programmed_condition(
        reports,
        &gateway.meta,
        findings.accepted(),
        &nodes,
        "no gateway node holds any of its networks (no accepted VirtualMachineInterface bound to a logical interface, nor VirtualGateway, in them), so no node routes to it",
        &[],
    );
    let derived = DerivedStatus::DcGateway {
        networks_summary: summary(gateway.networks.iter().map(|n| &n.network)),
    };
    decision(&gateway.meta, findings, Some(p), derived)
}
