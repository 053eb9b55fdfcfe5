//! Names shared by the status of every kind: condition types and reasons.
//!
//! Status is ours, spec is the user's: the operator writes conditions by
//! server-side apply under one field manager, the node dataplane writes the
//! per-node part of a PhysicalRouter's status. Every status carries standard
//! `metav1.Condition`s (a list-map keyed by `type`) and `observedGeneration`.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Condition types.
pub mod condition {
    /// The object is valid across objects and its references resolve.
    pub const ACCEPTED: &str = "Accepted";
    /// Every object this one references exists and is itself accepted.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// The node dataplane(s) concerned report the object in their tables.
    pub const PROGRAMMED: &str = "Programmed";
    /// Summary: accepted and programmed; what `kubectl get` shows.
    pub const READY: &str = "Ready";
    /// Whether the node dataplanes enforce what a SecurityGroup declares.
    pub const ENFORCED: &str = "Enforced";
    /// Whether the object competes with another for the same thing (a
    /// ClusterVirtualNetworkPolicy of the same priority on a connection):
    /// True says with which, and how the tie is broken.
    pub const CONFLICTED: &str = "Conflicted";
}

/// Condition reasons (CamelCase, as Kubernetes conventions require).
pub mod reason {
    /// Everything checked is fine.
    pub const OK: &str = "Ok";
    /// A referenced object does not exist (yet).
    pub const NOT_FOUND: &str = "RefNotFound";
    /// A referenced object exists but is not accepted itself.
    pub const REF_NOT_ACCEPTED: &str = "RefNotAccepted";
    /// Another object holds what this one asks for (a VLAN, an address).
    pub const CONFLICT: &str = "Conflict";
    /// Valid alone but invalid with the objects it refers to.
    pub const INVALID: &str = "Invalid";
    /// Waiting for the node dataplane to report.
    pub const PENDING: &str = "Pending";
    /// A node that should hold the object reports it could not (its
    /// tables do not hold it, and it says why).
    pub const NOT_PROGRAMMED: &str = "NotProgrammed";
    /// A node's report is incomplete (its exceptions were cut): whether it
    /// holds the object cannot be told (`Programmed=Unknown`).
    pub const REPORT_INCOMPLETE: &str = "ReportIncomplete";
    /// The object is valid and accepted, but nothing enforces what it
    /// declares yet: `Ready` is `False` with this reason, so that no one
    /// takes it for working.
    pub const NOT_IMPLEMENTED: &str = "NotImplemented";
    /// A GatewayHAGroup none of whose members is active.
    pub const NO_ACTIVE_MEMBER: &str = "NoActiveMember";
    /// A GatewayHAGroup with more than one member saying it is active.
    pub const SPLIT_BRAIN: &str = "SplitBrain";
    /// A VMI or a rule names a SecurityGroup that does not exist: it
    /// allows nothing until the group exists.
    pub const GROUP_NOT_FOUND: &str = "GroupNotFound";
    /// A VirtualNetworkPolicy's rule names a network that does not exist:
    /// the rule connects nothing.
    pub const NETWORK_NOT_FOUND: &str = "NetworkNotFound";
    /// A VirtualNetworkPolicy's rule names a network that does not name
    /// the policy: the rule connects nothing.
    pub const NOT_ATTACHED: &str = "NotAttached";
    /// A ClusterVirtualNetworkPolicy has the priority of another with
    /// rules on a connection they share: their rules are ordered by name.
    pub const PRIORITY_TIE: &str = "PriorityTie";
}
