//! Pure cross-object logic of the operator: resolves references between
//! trunkline objects, finds conflicts, allocates VNIs and MPLS labels, and
//! decides every object's conditions and derived status, independent of
//! arrival order.
//!
//! ```text
//!  CRD objects --trunkline_model::from_api--> Snapshot --decide--> Decisions
//!  (trunkline-api)                            (model)              (conditions without times,
//!                                                                   VNI, routing instance, ...)
//! ```
//!
//! The domain model, its conversion from the API and placement (which node
//! holds what) live in `trunkline-model`, shared with the node dataplane;
//! this crate holds the rules only.
//!
//! No Kubernetes client, no async, no clock: the same snapshot always gives
//! the same decisions, so the operator can recompute everything on every
//! change, and an object blocked by another one is accepted as soon as the
//! snapshot no longer holds what blocked it. The caller stamps
//! `lastTransitionTime` and writes status.
//!
//! Who wins a contended resource (a VLAN on a port, an address or MAC in a
//! network, a VNI, an MPLS label, a routing instance, a host interface or
//! subnet on a node, an external VTEP's address): the oldest object asking
//! for it, by `creationTimestamp`, then namespace, then name.

#![forbid(unsafe_code)]

mod claims;
mod decide;
mod decision;

pub use decide::{DECIDED_KINDS, FIRST_ALLOCATED_VNI, MAX_VNI, Settings, decide, decide_with};
pub use decision::{
    ConditionDecision, Decision, Decisions, DerivedStatus, HaMemberState, MAX_MESSAGE_LEN,
    NodeState, NodeStatus, summary,
};
pub use trunkline_model::{Kind, ObjectKey, Snapshot};
