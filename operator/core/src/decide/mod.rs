//! The rules across objects, applied to a whole snapshot at once: one file
//! per kind, plus the shared lookups (`index`) and the `Programmed`
//! condition (`programmed`).
//!
//! ```text
//!  VirtualNetworks ──> VMIs ──> LogicalInterfaces ──┐
//!  (VNI, VRF, label,  (addresses,  (VLANs, limit)    │
//!   encapsulation)     label)                        │
//!        ├──> VirtualGateways (interfaces, subnets)   ├─> placement ─> Programmed ─> Ready
//!        ├──> ExternalVTEPs (address, hosts)          │   (model)      (node reports)
//!        ├──> DCGateways (address, routes)            │
//!        └──> GatewayHAGroups (members, BPDU network) │
//!  PhysicalRouters (ports, limits, underlay, reports)─┘
//! ```
//!
//! Labels: networks and VMIs share one space (`labels`), filled in that
//! order, oldest first; addresses and MACs of a network are claimed by VMIs
//! and external VTEPs' hosts alike (`addresses`).
//!
//! Each stage reads only the snapshot and the stages before it, every
//! contended resource goes to its oldest claimant (see `claims`), and every
//! collection is sorted: so the result is a function of the set of objects,
//! never of the order they arrived in or were listed. Which nodes must hold
//! an object comes from the model's [`Placement`], computed from this
//! pass's own acceptance decisions: the node dataplanes compute the same
//! placement from the status this pass writes.

mod addresses;
mod dc_gateway;
mod external_vtep;
mod gateway_ha_group;
mod index;
mod labels;
mod logical_interface;
mod programmed;
mod virtual_gateway;
mod virtual_machine_interface;
mod virtual_network;

use std::collections::BTreeSet;

use trunkline_model::{EncapsulationPriority, Kind, Meta, ObjectKey, Placement, Snapshot};

use crate::decision::{ConditionDecision, Decision, Decisions, DerivedStatus, Findings, ready};

use addresses::NetworkAddresses;
use index::Index;
use labels::Labels;
pub use virtual_network::{FIRST_ALLOCATED_VNI, MAX_VNI};

/// The kinds the core decides on (PhysicalRouter status belongs to the node
/// dataplane).
pub const DECIDED_KINDS: [Kind; 7] = [
    Kind::LogicalInterface,
    Kind::VirtualMachineInterface,
    Kind::VirtualNetwork,
    Kind::GatewayHAGroup,
    Kind::VirtualGateway,
    Kind::ExternalVTEP,
    Kind::DCGateway,
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
    let index = Index::new(snapshot);
    let mut labels = Labels::new(snapshot);
    let addresses = NetworkAddresses::new(snapshot);
    let networks = virtual_network::decide(snapshot, settings, &mut labels);
    let vmis = virtual_machine_interface::decide(snapshot, &networks, &addresses, &mut labels);
    let logical_interfaces = logical_interface::decide(snapshot, &index, &vmis);
    let gateways = virtual_gateway::decide(snapshot, &index, &networks);
    let vteps = external_vtep::decide(snapshot, &networks, &addresses);
    let dc_gateways = dc_gateway::decide(snapshot, &networks);

    // Which nodes hold what, by this pass's own verdicts.
    let accepted: BTreeSet<&ObjectKey> = logical_interfaces
        .iter()
        .chain(gateways.iter())
        .chain(vteps.iter())
        .chain(dc_gateways.iter())
        .filter(|(_, findings)| findings.accepted())
        .map(|(key, _)| key)
        .chain(
            snapshot
                .virtual_machine_interfaces
                .iter()
                .filter(|v| vmis[&v.name()].findings.accepted())
                .map(|v| &v.meta.key),
        )
        .collect();
    let placement = Placement::new(snapshot, |key| accepted.contains(key));

    let mut decisions = Decisions::default();
    logical_interface::decisions(snapshot, &index, &logical_interfaces, &mut decisions);
    virtual_machine_interface::decisions(
        snapshot,
        &index,
        &placement,
        &vmis,
        &logical_interfaces,
        &mut decisions,
    );
    virtual_network::decisions(snapshot, &index, &placement, &networks, &mut decisions);
    virtual_gateway::decisions(snapshot, &index, &gateways, &mut decisions);
    gateway_ha_group::decisions(snapshot, &index, &networks, &mut decisions);
    external_vtep::decisions(snapshot, &index, &placement, &vteps, &mut decisions);
    dc_gateway::decisions(snapshot, &index, &placement, &dc_gateways, &mut decisions);
    decisions
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
