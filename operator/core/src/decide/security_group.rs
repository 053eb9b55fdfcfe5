//! SecurityGroups: the remote groups their rules name exist, and how many
//! VMIs use each; a VMI naming a group that does not exist is told so.
//!
//! ```text
//!   VMI.spec.securityGroups ──names──> SecurityGroup (same namespace)
//!   SecurityGroup rule.remoteGroup ──names──> SecurityGroup (same namespace)
//!   missing: the reference allows nothing (fail closed), Ready=False GroupNotFound
//! ```
//!
//! Neither problem withdraws anything: a VMI naming a missing group keeps
//! its traffic to what its other groups allow, and a rule naming a missing
//! group matches no one. A VMI naming no group uses its namespace's
//! SecurityGroup `default` when that object exists, and is not policed
//! when it does not (no finding: that is the default configuration).
//!
//! `Enforced` is `Programmed` for groups: True once every node holding a
//! VMI that uses the group reports tables built from the group as it is
//! now (the same watermarks and exceptions, see `programmed.rs`); True
//! too when no VMI bound to a node uses it (nothing to enforce, said so).

use std::collections::BTreeMap;

use std::collections::BTreeSet;
use trunkline_api::status::{condition, reason};

use trunkline_model::{NamespacedName, SecurityGroup, VirtualMachineInterface};

use super::decision;
use super::programmed::{Reports, programmed_condition};
use crate::decision::{ConditionDecision, Decision, DerivedStatus, Findings};

/// Whether group `name` of `namespace` exists.
pub(super) fn exists(
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    namespace: &str,
    name: &str,
) -> bool {
    groups.contains_key(&NamespacedName::new(namespace, name))
}

/// The groups a VMI names that do not exist, as problems of the VMI (the
/// `default` it falls back to naming none is no problem when missing).
pub(super) fn vmi_findings(
    vmi: &VirtualMachineInterface,
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    findings: &mut Findings,
) {
    if !vmi.port_security {
        return;
    }
    for name in vmi.security_groups.iter().map(String::as_str) {
        if !exists(groups, vmi.meta.namespace(), name) {
            findings.not_applied_because(
                reason::GROUP_NOT_FOUND,
                format!(
                    "spec.securityGroups names SecurityGroup {}/{name}, which does not exist: it allows nothing until it is created (or remove it from spec.securityGroups)",
                    vmi.meta.namespace()
                ),
            );
        }
    }
}

/// Whether the nodes holding the group's VMIs (`nodes`) enforce the group
/// as it is now.
fn enforced(
    reports: &Reports,
    group: &SecurityGroup,
    accepted: bool,
    nodes: &BTreeSet<String>,
) -> ConditionDecision {
    if accepted && nodes.is_empty() {
        return ConditionDecision::new(
            condition::ENFORCED,
            true,
            reason::OK,
            "no VirtualMachineInterface bound to a gateway node uses it: nothing to enforce"
                .to_owned(),
        );
    }
    let mut c = programmed_condition(
        reports,
        &group.meta,
        accepted,
        nodes,
        "no VirtualMachineInterface bound to a gateway node uses it",
        &[],
    );
    c.type_ = condition::ENFORCED;
    if c.status {
        c.message = format!(
            "generation {} is enforced (stateful, first packets in userspace) on gateway node(s) {}",
            group.meta.generation,
            super::list_or_none(nodes.iter())
        );
    }
    c
}

/// A group's decision: its rules' remote groups exist; how many VMIs use
/// it; whether the nodes of those VMIs enforce it (`nodes`).
pub(super) fn decision_of(
    group: &SecurityGroup,
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    vmis: &BTreeMap<NamespacedName, VirtualMachineInterface>,
    nodes: &BTreeSet<String>,
    reports: &Reports,
) -> Decision {
    let mut findings = Findings::default();
    for defect in &group.defects {
        findings.invalid(defect.clone());
    }
    let namespace = group.meta.namespace();
    for remote in group.remote_groups() {
        if !exists(groups, namespace, remote) {
            findings.not_applied_because(
                reason::GROUP_NOT_FOUND,
                format!(
                    "a rule names remoteGroup {namespace}/{remote}, which does not exist: the rule matches no one until it is created"
                ),
            );
        }
    }
    let name = group.meta.name();
    let interface_count = vmis
        .values()
        .filter(|v| v.meta.namespace() == namespace && v.groups().contains(&name))
        .count();
    let derived = DerivedStatus::SecurityGroup {
        interface_count: u32::try_from(interface_count).unwrap_or(u32::MAX),
    };
    let enforced = enforced(reports, group, findings.accepted(), nodes);
    decision(&group.meta, &findings, Some(enforced), derived)
}
