//! LogicalInterfaces: an existing router port, an accepted VMI served by
//! one gateway node (or the members of one HA group), a VLAN free on that
//! port, and a slot within the router's interface limit.
//!
//! One node per VMI: two gateway nodes binding the same remote instance
//! would both answer for its addresses and route for it. The node of the
//! oldest logical interface binding a VMI serves it; a logical interface on
//! another node is a conflict, unless both are on member ports of one
//! GatewayHAGroup (which is how gateway HA shares a VMI: one member active,
//! the others standby). A VMI whose oldest binding is on a group's member
//! port is served by that group: every binding of it must be on that
//! group's member ports (a node in two groups cannot have them both claim
//! it).

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::ha::member_port_claims;
use trunkline_model::{LogicalInterface, NamespacedName, ObjectKey, Snapshot};

use super::decision;
use super::index::Index;
use super::programmed::programmed_condition;
use super::virtual_machine_interface::Vmis;
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings};

/// The logical interfaces' findings, by key.
pub(super) type LogicalInterfaces = BTreeMap<ObjectKey, Findings>;

pub(super) fn decide(snapshot: &Snapshot, index: &Index<'_>, vmis: &Vmis) -> LogicalInterfaces {
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

    // The oldest binding of each VMI names the node serving it.
    let mut first_binding: BTreeMap<&NamespacedName, &LogicalInterface> = BTreeMap::new();
    for li in &by_age {
        first_binding.entry(&li.vmi).or_insert(li);
    }
    let claims = member_port_claims(snapshot);
    let group_of = |router: &str, port: &str| -> Option<&str> {
        claims
            .get(&(router.to_owned(), port.to_owned()))
            .and_then(|groups| groups.first())
            .map(|g| g.meta.name())
    };

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
        let elsewhere = first_binding
            .get(&li.vmi)
            .and_then(|first| served_elsewhere(first, li, &group_of));
        if let Some(problem) = &elsewhere {
            findings.conflict(problem.clone());
        }
        if holder.is_none()
            && elsewhere.is_none()
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

/// Why `li` may not bind its VMI, whose oldest binding is `first`: the
/// VMI is served by `first`'s node, or by the group of `first`'s port.
fn served_elsewhere<'a>(
    first: &LogicalInterface,
    li: &LogicalInterface,
    group_of: &impl Fn(&str, &str) -> Option<&'a str>,
) -> Option<String> {
    if first.meta.key == li.meta.key {
        return None;
    }
    let vmi = &li.vmi;
    let here = format!("{}/{}", li.physical_router, li.physical_interface);
    let there = format!("{}/{}", first.physical_router, first.physical_interface);
    match (
        group_of(&first.physical_router, &first.physical_interface),
        group_of(&li.physical_router, &li.physical_interface),
    ) {
        (Some(a), Some(b)) if a == b => None,
        (Some(a), Some(b)) => Some(format!(
            "VirtualMachineInterface {vmi} is served by GatewayHAGroup {a} (its oldest binding, {}, is on member port {there}), and this logical interface is on {here}, a member port of GatewayHAGroup {b}: a remote instance is served by one group; bind it on member ports of {a} only",
            first.meta.key
        )),
        (Some(a), None) => Some(format!(
            "VirtualMachineInterface {vmi} is served by GatewayHAGroup {a} (its oldest binding, {}, is on member port {there}), and this logical interface is on {here}, which is not a member port of {a}: bind it on a member port of {a}, or add {here} to {a}'s members",
            first.meta.key
        )),
        (None, _) if first.physical_router == li.physical_router => None,
        (None, _) => Some(format!(
            "VirtualMachineInterface {vmi} is already bound on PhysicalRouter {} by {} (older), and PhysicalRouter {} is not in a GatewayHAGroup with {}: a remote instance is served by one gateway node, or by the members of one HA group; delete this logical interface (or {}), or make both ports ({there}, {here}) member ports of one GatewayHAGroup",
            first.physical_router,
            first.meta.key,
            li.physical_router,
            first.physical_router,
            first.meta.name()
        )),
    }
}

/// The logical interfaces' decisions: each is held by its own router.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    logical_interfaces: &LogicalInterfaces,
    out: &mut Decisions,
) {
    for li in &snapshot.logical_interfaces {
        let findings = &logical_interfaces[&li.meta.key];
        let nodes = BTreeSet::from([li.physical_router.clone()]);
        let p = programmed_condition(index, &li.meta, findings.accepted(), &nodes, "");
        out.insert(decision(&li.meta, findings, Some(p), DerivedStatus::None));
    }
}
