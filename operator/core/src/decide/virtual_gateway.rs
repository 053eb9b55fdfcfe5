//! VirtualGateways: an accepted network, existing routers, and per node a
//! host interface name and subnets no older gateway uses.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::{IpPrefix, PhysicalRouter, VirtualGateway};

use super::index::RefIndex;
use super::programmed::{Reports, node_status, programmed_condition};
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::claims::Claims;
use crate::decision::{Decision, DerivedStatus, Findings};

/// An interface claim: (node, host interface).
pub(super) type InterfaceClaim = (String, String);

/// What a gateway claims: its host interface on each of its nodes.
pub(super) fn claims(gateway: &VirtualGateway) -> BTreeSet<InterfaceClaim> {
    gateway
        .nodes
        .iter()
        .map(|node| (node.clone(), gateway.interface.clone()))
        .collect()
}

/// The rules of one gateway: its network, its routers, its interfaces and
/// the subnets of every older gateway on its nodes.
pub(super) fn verdict(
    gateway: &VirtualGateway,
    networks: &Networks,
    routers: &BTreeMap<String, PhysicalRouter>,
    interfaces: &Claims<InterfaceClaim>,
    gateways: &BTreeMap<String, VirtualGateway>,
    gateways_of_node: &RefIndex<String, String>,
) -> Findings {
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
        .filter(|n| !routers.contains_key(n.as_str()))
        .collect();
    if !missing.is_empty() {
        findings.not_found(format!(
            "no PhysicalRouter for node(s) {}: create them, or remove them from spec.nodes",
            list_or_none(missing.iter())
        ));
    }
    let age = gateway.meta.age();
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
        let mut older: Vec<&VirtualGateway> = gateways_of_node
            .get(node)
            .filter_map(|name| gateways.get(name))
            .filter(|o| o.meta.age() < age)
            .collect();
        older.sort_by_key(|o| o.meta.age());
        for older in older {
            for (mine, theirs) in overlapping(&gateway.subnets, &older.subnets) {
                findings.conflict(format!(
                    "subnet {mine} overlaps subnet {theirs} of {} (older) on node {node}: use a disjoint subnet, or run the gateways on different nodes",
                    older.meta.key
                ));
            }
        }
    }
    findings
}

fn overlapping<'a>(
    mine: &'a [IpPrefix],
    theirs: &'a [IpPrefix],
) -> impl Iterator<Item = (&'a IpPrefix, &'a IpPrefix)> {
    mine.iter()
        .flat_map(move |m| theirs.iter().map(move |t| (m, t)))
        .filter(|(m, t)| m.overlaps(t))
}

/// A gateway's decision: held by the nodes it names, with a state per
/// node.
pub(super) fn decision_of(
    gateway: &VirtualGateway,
    findings: &Findings,
    routers: &BTreeMap<String, PhysicalRouter>,
    reports: &Reports,
) -> Decision {
    let p = programmed_condition(
        reports,
        &gateway.meta,
        findings.accepted(),
        &gateway.nodes,
        "spec.nodes names no node",
        &[],
    );
    let nodes = gateway
        .nodes
        .iter()
        .map(|node| node_status(reports, routers, &gateway.meta, node))
        .collect();
    let derived = DerivedStatus::VirtualGateway { nodes };
    decision(&gateway.meta, findings, Some(p), derived)
}
