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
//!
//! Slots: the oldest logical interfaces that may hold a slot on a router
//! (their VLAN is theirs, their port exists, their VMI is not served
//! elsewhere) hold its `interfaceLimit` slots; the others are refused.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::{Age, LogicalInterface, NamespacedName, PhysicalRouter};

use super::decision;
use super::index::port_problem;
use super::programmed::{Reports, programmed_condition};
use super::virtual_machine_interface::Vmis;
use crate::claims::Claims;
use crate::decision::{Decision, DerivedStatus, Findings};

/// A VLAN claim: (router, port, VLAN).
pub(super) type VlanClaim = (String, String, u16);

/// A member port claim of a GatewayHAGroup: (router, port). The oldest
/// group naming a port holds it (as `member_port_claims` says).
pub(super) type PortClaim = (String, String);

/// What was decided about a logical interface before the slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LiPre {
    pub(super) findings: Findings,
    /// Whether it may take a slot on its router.
    pub(super) eligible: bool,
}

/// What a logical interface claims: its VLAN on its port, and its VMI (the
/// oldest binding names the node serving the VMI).
pub(super) fn claims(li: &LogicalInterface) -> (BTreeSet<VlanClaim>, BTreeSet<NamespacedName>) {
    (
        BTreeSet::from([(
            li.physical_router.clone(),
            li.physical_interface.clone(),
            li.vlan,
        )]),
        BTreeSet::from([li.vmi.clone()]),
    )
}

/// The rules of one logical interface.
pub(super) fn pre(
    li: &LogicalInterface,
    routers: &BTreeMap<String, PhysicalRouter>,
    vmis: &Vmis,
    vlans: &Claims<VlanClaim>,
    first_binding: Option<&LogicalInterface>,
    member_ports: &Claims<PortClaim>,
) -> LiPre {
    let mut findings = Findings::default();
    let port_problem = port_problem(routers, &li.physical_router, &li.physical_interface, "");
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
    let group_of = |router: &str, port: &str| -> Option<&str> {
        member_ports
            .holder(&(router.to_owned(), port.to_owned()))
            .map(|k| k.name.as_str())
    };
    let elsewhere = first_binding.and_then(|first| served_elsewhere(first, li, &group_of));
    if let Some(problem) = &elsewhere {
        findings.conflict(problem.clone());
    }
    let eligible = holder.is_none()
        && elsewhere.is_none()
        && port_problem.is_none()
        && routers.contains_key(li.physical_router.as_str());
    LiPre { findings, eligible }
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

/// The logical interfaces that may hold a slot, per router, oldest first,
/// and those beyond the router's limit.
#[derive(Debug, Default)]
pub(super) struct Slots {
    eligible: BTreeMap<String, BTreeSet<(Age, String)>>,
    entry: BTreeMap<String, (String, Age)>,
    refused: BTreeMap<String, BTreeSet<String>>,
}

impl Slots {
    /// Records whether logical interface `name` (of age `age`) may hold a
    /// slot on `router` (`None`: on no router); returns the router(s)
    /// whose slots must be handed out again.
    pub(super) fn set(&mut self, name: &str, at: Option<(&str, Age)>) -> Vec<String> {
        let wanted = at.map(|(r, age)| (r.to_owned(), age));
        if self.entry.get(name) == wanted.as_ref() {
            return Vec::new();
        }
        let mut routers = Vec::new();
        if let Some((router, age)) = self.entry.remove(name) {
            if let Some(set) = self.eligible.get_mut(&router) {
                set.remove(&(age, name.to_owned()));
                if set.is_empty() {
                    self.eligible.remove(&router);
                }
            }
            routers.push(router);
        }
        if let Some((router, age)) = wanted {
            self.eligible
                .entry(router.clone())
                .or_default()
                .insert((age.clone(), name.to_owned()));
            self.entry.insert(name.to_owned(), (router.clone(), age));
            routers.push(router);
        }
        routers
    }

    /// Hands `router`'s `limit` slots out again; returns the logical
    /// interfaces whose slot changed.
    pub(super) fn hand_out(&mut self, router: &str, limit: u32) -> BTreeSet<String> {
        let refused: BTreeSet<String> = match self.eligible.get(router) {
            Some(set) if set.len() > limit as usize => set
                .iter()
                .skip(limit as usize)
                .map(|(_, name)| name.clone())
                .collect(),
            _ => BTreeSet::new(),
        };
        let before = if refused.is_empty() {
            self.refused.remove(router).unwrap_or_default()
        } else {
            self.refused
                .insert(router.to_owned(), refused.clone())
                .unwrap_or_default()
        };
        before.symmetric_difference(&refused).cloned().collect()
    }

    /// Whether `name`, which may hold a slot on `router`, got none.
    pub(super) fn refused(&self, router: &str, name: &str) -> bool {
        self.refused.get(router).is_some_and(|r| r.contains(name))
    }
}

/// The logical interface's verdict once the slots are handed out.
pub(super) fn verdict(
    li: &LogicalInterface,
    pre: &LiPre,
    slots: &Slots,
    routers: &BTreeMap<String, PhysicalRouter>,
) -> Findings {
    let mut findings = pre.findings.clone();
    if pre.eligible
        && slots.refused(&li.physical_router, li.meta.name())
        && let Some(router) = routers.get(&li.physical_router)
    {
        findings.conflict(format!(
            "PhysicalRouter {} accepts at most {} logical interfaces (spec.interfaceLimit) and older ones use them all: raise its spec.interfaceLimit, or delete a logical interface on it",
            li.physical_router, router.interface_limit
        ));
    }
    findings
}

/// A logical interface's decision: it is held by its own router.
pub(super) fn decision_of(
    li: &LogicalInterface,
    findings: &Findings,
    reports: &Reports,
) -> Decision {
    let nodes = BTreeSet::from([li.physical_router.clone()]);
    let p = programmed_condition(reports, &li.meta, findings.accepted(), &nodes, "", &[]);
    decision(&li.meta, findings, Some(p), DerivedStatus::None)
}
