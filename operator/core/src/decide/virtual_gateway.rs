//! VirtualGateways: an accepted network, existing routers, and per node a
//! host interface name and subnets no older gateway uses.

use std::collections::BTreeMap;

use trunkline_model::{IpPrefix, ObjectKey, Snapshot};

use super::index::Index;
use super::programmed::{node_status, programmed_condition};
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings};

/// The virtual gateways' findings, by key.
pub(super) type VirtualGateways = BTreeMap<ObjectKey, Findings>;

pub(super) fn decide(
    snapshot: &Snapshot,
    index: &Index<'_>,
    networks: &Networks<'_>,
) -> VirtualGateways {
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

/// The virtual gateways' decisions: held by the nodes they name, with a
/// state per node.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    gateways: &VirtualGateways,
    out: &mut Decisions,
) {
    for gateway in &snapshot.virtual_gateways {
        let findings = &gateways[&gateway.meta.key];
        let p = programmed_condition(
            index,
            &gateway.meta,
            findings.accepted(),
            &gateway.nodes,
            "spec.nodes names no node",
        );
        let nodes = gateway
            .nodes
            .iter()
            .map(|node| node_status(index, &gateway.meta, node))
            .collect();
        let derived = DerivedStatus::VirtualGateway { nodes };
        out.insert(decision(&gateway.meta, findings, Some(p), derived));
    }
}
