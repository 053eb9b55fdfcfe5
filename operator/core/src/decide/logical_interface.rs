//! LogicalInterfaces: an existing router port, an accepted VMI, a VLAN
//! free on that port, and a slot within the router's interface limit.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::{ObjectKey, Snapshot};

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
        if holder.is_none()
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
