//! The rules across objects: one file per kind, the shared lookups
//! (`index`), the allocation pools (`labels`, and VNIs in
//! `virtual_network`), the `Programmed` condition (`programmed`), and the
//! incremental driver (`decider`) that applies them to what changed.
//!
//! ```text
//!  VirtualNetworks ──> VMIs ──> LogicalInterfaces ──┐
//!  (VNI, VRF, label,  (addresses,  (VLANs, limit)    │
//!   encapsulation)     label)                        │
//!        ├──> VirtualGateways (interfaces, subnets)   ├─> placement ─> Programmed ─> Ready
//!        ├──> ExternalVTEPs (address, hosts)          │   (model)      (node reports)
//!        ├──> DCGateways (address, routes)            │
//!        └──> GatewayHAGroups (members, BPDU network) │
//!  SecurityGroups <── VMIs (named groups, counted)    │
//!  PhysicalRouters (ports, limits, underlay, reports)─┘
//! ```
//!
//! Labels: networks and VMIs share one space (`labels`), filled in that
//! order, oldest first; addresses and MACs of a network are claimed by VMIs
//! and external VTEPs' hosts alike (`addresses`).
//!
//! Each stage reads only the objects and the stages before it, every
//! contended resource goes to its oldest claimant (see `claims`), and every
//! collection is sorted: so the result is a function of the set of objects,
//! never of the order they arrived in or were listed. Which nodes must hold
//! an object comes from the model's [`Placement`], computed from these
//! decisions' own acceptance verdicts: the node dataplanes compute the same
//! placement from the status the operator writes.
//!
//! [`Decider`] keeps every verdict between changes and, per change,
//! decides again only the objects the change can affect (its dependency
//! index: who refers to whom, who claims what); [`decide`] is a
//! [`Decider`] given every object at once, and a property test holds the
//! two equal after any sequence of changes.

mod addresses;
mod dc_gateway;
mod decider;
mod external_vtep;
mod gateway_ha_group;
mod index;
mod labels;
mod logical_interface;
mod programmed;
mod security_group;
mod virtual_gateway;
mod virtual_machine_interface;
mod virtual_network;
mod virtual_network_policy;

use trunkline_model::{EncapsulationPriority, Kind, Meta, Snapshot};

use crate::decision::{ConditionDecision, Decision, Decisions, DerivedStatus, Findings, ready};

pub use decider::{Change, Decider};
pub use virtual_network::{FIRST_ALLOCATED_VNI, MAX_VNI};

/// The kinds the core decides on (PhysicalRouter status belongs to the node
/// dataplane).
pub const DECIDED_KINDS: [Kind; 10] = [
    Kind::LogicalInterface,
    Kind::VirtualMachineInterface,
    Kind::VirtualNetwork,
    Kind::GatewayHAGroup,
    Kind::VirtualGateway,
    Kind::ExternalVTEP,
    Kind::DCGateway,
    Kind::SecurityGroup,
    Kind::VirtualNetworkPolicy,
    Kind::ClusterVirtualNetworkPolicy,
];

/// What the operator is told by its flags rather than by objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The cluster default of `VirtualNetwork.spec.encapsulation`
    /// (`--encapsulation-priority`).
    pub encapsulation_priority: EncapsulationPriority,
}

/// Decides every object's conditions and derived status from `snapshot`,
/// with the default [`Settings`].
pub fn decide(snapshot: &Snapshot) -> Decisions {
    decide_with(snapshot, &Settings::default())
}

/// Decides every object's conditions and derived status from `snapshot`.
///
/// Pure and deterministic: the same set of objects gives the same
/// decisions, in whatever order the lists hold them. Object keys are
/// expected to be unique within each list (as they are in a cluster).
pub fn decide_with(snapshot: &Snapshot, settings: &Settings) -> Decisions {
    let mut decider = Decider::new(settings.clone());
    decider.apply(snapshot.clone().into_objects().map(Change::Upsert));
    decider.into_decisions()
}

/// One object's decision: `Accepted`, `ResolvedRefs`, `Programmed` (for
/// kinds a node programs) and `Ready`, with the derived status.
fn decision(
    meta: &Meta,
    findings: &Findings,
    programmed: Option<ConditionDecision>,
    derived: DerivedStatus,
) -> Decision {
    let [resolved, accepted] = findings.conditions();
    let ready = ready(&accepted, findings.unapplied(), programmed.as_ref());
    let mut conditions = vec![accepted, resolved];
    conditions.extend(programmed);
    conditions.push(ready);
    Decision {
        key: meta.key.clone(),
        generation: meta.generation,
        conditions,
        derived,
    }
}

/// `a, b, c`, or `none`.
fn list_or_none<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
