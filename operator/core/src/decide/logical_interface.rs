//! LogicalInterfaces: an existing router port, an accepted VMI served by
//! one gateway node (or the members of one HA group), a VLAN free on that
//! port, and a slot within the router's interface limit.
//!
//! One node per VMI: two gateway nodes binding the same remote instance
//! would both answer for its addresses and route for it. The node of the
//! oldest logical interface binding a VMI serves it; a logical interface on
//! another node is a conflict, unless both nodes are members of one
//! GatewayHAGroup (which is how gateway HA will share a VMI).

use std::collections::{BTreeMap, BTreeSet};

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
    let grouped = GroupedRouters::new(snapshot);

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
        let served_elsewhere = first_binding.get(&li.vmi).filter(|first| {
            first.physical_router != li.physical_router
                && !grouped.together(&first.physical_router, &li.physical_router)
        });
        if let Some(first) = served_elsewhere {
            findings.conflict(format!(
                "VirtualMachineInterface {} is already bound on PhysicalRouter {} by {} (older), and PhysicalRouter {} is not in a GatewayHAGroup with {}: a remote instance is served by one gateway node, or by the members of one HA group; delete this logical interface (or {}), or make both routers members of one GatewayHAGroup",
                li.vmi,
                first.physical_router,
                first.meta.key,
                li.physical_router,
                first.physical_router,
                first.meta.name()
            ));
        }
        if holder.is_none()
            && served_elsewhere.is_none()
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

/// Which routers are members of a GatewayHAGroup together.
struct GroupedRouters<'a> {
    /// Router -> the groups it is a member of.
    groups: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> GroupedRouters<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for group in &snapshot.gateway_ha_groups {
            for member in &group.members {
                groups
                    .entry(member.physical_router.as_str())
                    .or_default()
                    .insert(group.meta.name());
            }
        }
        Self { groups }
    }

    /// Whether routers `a` and `b` are members of one group.
    fn together(&self, a: &str, b: &str) -> bool {
        match (self.groups.get(a), self.groups.get(b)) {
            (Some(a), Some(b)) => !a.is_disjoint(b),
            _ => false,
        }
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
