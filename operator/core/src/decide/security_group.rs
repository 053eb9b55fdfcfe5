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
//! group matches no one. The default group (`default`) always exists,
//! implicitly when no SecurityGroup carries its name.

use std::collections::BTreeMap;

use trunkline_api::status::{condition, reason};
use trunkline_model::{DEFAULT_GROUP, NamespacedName, SecurityGroup, VirtualMachineInterface};

use super::decision;
use crate::decision::{ConditionDecision, Decision, DerivedStatus, Findings};

/// Whether group `name` of `namespace` exists (the default always does).
pub(super) fn exists(
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    namespace: &str,
    name: &str,
) -> bool {
    name == DEFAULT_GROUP || groups.contains_key(&NamespacedName::new(namespace, name))
}

/// The groups a VMI names that do not exist, as problems of the VMI.
pub(super) fn vmi_findings(
    vmi: &VirtualMachineInterface,
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    findings: &mut Findings,
) {
    for name in vmi.groups() {
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

/// Whether security groups are enforced by the node dataplanes, and where
/// not.
pub(super) fn enforced() -> ConditionDecision {
    ConditionDecision::new(
        condition::ENFORCED,
        false,
        reason::NOT_IMPLEMENTED,
        "accepted, but no node dataplane enforces security groups yet: every flow of the VMIs using it is allowed".to_owned(),
    )
}

/// A group's decision: its rules' remote groups exist; how many VMIs use it.
pub(super) fn decision_of(
    group: &SecurityGroup,
    groups: &BTreeMap<NamespacedName, SecurityGroup>,
    vmis: &BTreeMap<NamespacedName, VirtualMachineInterface>,
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
    decision(&group.meta, &findings, Some(enforced()), derived)
}
