//! What the core decides for one object: its conditions (without times:
//! the caller stamps `lastTransitionTime`) and the status fields derived
//! from other objects.

use std::collections::BTreeMap;

use trunkline_api::status::{condition, reason};

use trunkline_model::{Encapsulation, FabricExit, ObjectKey};

/// Longest condition message written; the API allows 32768 bytes, but a
/// message is read by a person in `kubectl describe`.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// One decided condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionDecision {
    /// Condition type (`Accepted`, `ResolvedRefs`, `Programmed`, `Ready`).
    pub type_: &'static str,
    /// True or False (`false` too when [`ConditionDecision::unknown`]).
    pub status: bool,
    /// The status is Unknown: what would decide it cannot be told (a
    /// node's report was cut). Only `Programmed` and `Ready` are ever
    /// Unknown.
    pub unknown: bool,
    /// CamelCase reason (see `trunkline_api::status::reason`).
    pub reason: &'static str,
    /// What is wrong and what would fix it, or what is fine.
    pub message: String,
}

impl ConditionDecision {
    /// A condition with its message cut to [`MAX_MESSAGE_LEN`].
    pub fn new(type_: &'static str, status: bool, reason: &'static str, message: String) -> Self {
        Self {
            type_,
            status,
            unknown: false,
            reason,
            message: truncate(message),
        }
    }

    /// A condition whose status is Unknown.
    pub fn unknown(type_: &'static str, reason: &'static str, message: String) -> Self {
        Self {
            unknown: true,
            ..Self::new(type_, false, reason, message)
        }
    }

    /// `"True"`, `"False"` or `"Unknown"`, as Kubernetes spells it.
    pub fn status_str(&self) -> &'static str {
        match (self.unknown, self.status) {
            (true, _) => "Unknown",
            (false, true) => "True",
            (false, false) => "False",
        }
    }
}

/// How one node stands with one virtual gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeState {
    /// The node holds the current generation.
    Programmed,
    /// The node does not hold the current generation (yet).
    Pending,
    /// The node cannot hold it (no PhysicalRouter of that name).
    Failed,
}

impl NodeState {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Programmed => "Programmed",
            NodeState::Pending => "Pending",
            NodeState::Failed => "Failed",
        }
    }
}

/// One node's state for a virtual gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Node (PhysicalRouter) name.
    pub node: String,
    /// Its state.
    pub state: NodeState,
    /// Why, when not programmed.
    pub message: Option<String>,
}

/// One member's state in an HA group, as the operator concludes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaMemberState {
    /// The member's PhysicalRouter.
    pub physical_router: String,
    /// Active, Standby or Down.
    pub state: trunkline_model::HaState,
    /// Since when (seconds since the epoch), when a node said so; `None`
    /// when the operator concluded it (the caller stamps the time of the
    /// change).
    pub since: Option<i64>,
    /// Why (CamelCase).
    pub reason: String,
    /// Why, for a person.
    pub message: Option<String>,
}

/// Status fields derived from other objects, per kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerivedStatus {
    /// Nothing beyond conditions.
    None,
    /// A network's VNI, routing instance, label and encapsulations in use.
    VirtualNetwork {
        /// The VNI in use (given or allocated); `None` when the given one is
        /// held by an older network or none is free.
        vni: Option<u32>,
        /// The routing instance name in use.
        routing_instance: String,
        /// The label of its bridged and flooded traffic; only accepted
        /// networks have one.
        mpls_label: Option<u32>,
        /// The encapsulations in effect, in priority order.
        encapsulation: Vec<Encapsulation>,
        /// Its subnets, comma-separated; `None` without subnets.
        subnets_summary: Option<String>,
        /// The fabric exit in effect (`spec.northSouth`, when applied).
        fabric_exit: Option<FabricExit>,
    },
    /// A VMI's routing instance, bound logical interfaces and label.
    VirtualMachineInterface {
        /// The routing instance of its network, when the network exists.
        routing_instance: Option<String>,
        /// Names of the accepted logical interfaces bound to it, sorted.
        logical_interfaces: Vec<String>,
        /// The label of traffic routed to it; only accepted VMIs have one.
        mpls_label: Option<u32>,
        /// Its MAC, normalised (lower case, `:`), when readable.
        mac_address: Option<String>,
        /// Its addresses, normalised and comma-separated; `None` without.
        addresses_summary: Option<String>,
    },
    /// An HA group's members and who is active.
    GatewayHaGroup {
        /// The member PhysicalRouters, comma-separated.
        members_summary: Option<String>,
        /// The one member in state Active, when exactly one is.
        active_member: Option<String>,
        /// Each member's state, sorted by router (empty while the group
        /// is not accepted).
        members: Vec<HaMemberState>,
    },
    /// An external VTEP's networks.
    ExternalVtep {
        /// The networks it joins (`namespace/name`), comma-separated.
        networks_summary: Option<String>,
    },
    /// A security group's users.
    SecurityGroup {
        /// How many VirtualMachineInterfaces name it (or use it as the
        /// default group).
        interface_count: u32,
    },
    /// How many networks name a network policy (a cluster policy: how many
    /// of the networks its rules name exist).
    VirtualNetworkPolicy {
        /// VirtualNetworks naming it in `spec.networkPolicies` (a cluster
        /// policy: existing networks its rules name).
        network_count: u32,
    },
    /// A DC gateway's networks.
    DcGateway {
        /// The networks it serves (`namespace/name`), comma-separated.
        networks_summary: Option<String>,
    },
    /// A virtual gateway's state per node.
    VirtualGateway {
        /// One entry per node of `spec.nodes`, sorted by node.
        nodes: Vec<NodeStatus>,
    },
}

/// `a,b,c` (what a printer column shows of a list), or `None` for no item.
pub fn summary<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> Option<String> {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    (!items.is_empty()).then(|| items.join(","))
}

/// Everything decided about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The object.
    pub key: ObjectKey,
    /// The `metadata.generation` the decision describes.
    pub generation: i64,
    /// `Accepted`, `ResolvedRefs`, `Programmed` (kinds a node programs) and
    /// `Ready`, in that order.
    pub conditions: Vec<ConditionDecision>,
    /// Derived status fields.
    pub derived: DerivedStatus,
}

impl Decision {
    /// The condition of type `type_`, if decided.
    pub fn condition(&self, type_: &str) -> Option<&ConditionDecision> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether `Accepted` is True.
    pub fn is_accepted(&self) -> bool {
        self.condition(condition::ACCEPTED)
            .is_some_and(|c| c.status)
    }

    /// Whether `Ready` is True.
    pub fn is_ready(&self) -> bool {
        self.condition(condition::READY).is_some_and(|c| c.status)
    }
}

/// The decisions for every object of a snapshot (PhysicalRouters excepted:
/// their status belongs to the node dataplane).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    objects: BTreeMap<ObjectKey, Decision>,
}

impl Decisions {
    pub(crate) fn insert(&mut self, decision: Decision) {
        self.objects.insert(decision.key.clone(), decision);
    }

    pub(crate) fn remove(&mut self, key: &ObjectKey) -> Option<Decision> {
        self.objects.remove(key)
    }

    /// The decision about `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Decision> {
        self.objects.get(key)
    }

    /// Every decision, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = &Decision> {
        self.objects.values()
    }

    /// How many objects were decided.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing was decided.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// One problem found with an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

/// The problems found with one object, sorted into reference problems
/// (`ResolvedRefs`), the rest (`Accepted`), and the parts of a spec that
/// are refused while the object stays accepted as it runs (`Ready`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    refs: Vec<Problem>,
    rejections: Vec<Problem>,
    unapplied: Vec<Problem>,
}

impl Findings {
    /// A referenced object does not exist.
    pub(crate) fn not_found(&mut self, message: String) {
        self.refs.push(Problem {
            reason: reason::NOT_FOUND,
            message,
        });
    }

    /// A referenced object exists but is not accepted.
    pub(crate) fn not_accepted(&mut self, message: String) {
        self.refs.push(Problem {
            reason: reason::REF_NOT_ACCEPTED,
            message,
        });
    }

    /// An older object holds what this one asks for.
    pub(crate) fn conflict(&mut self, message: String) {
        self.rejections.push(Problem {
            reason: reason::CONFLICT,
            message,
        });
    }

    /// Invalid with the objects it refers to, or a field could not be read.
    pub(crate) fn invalid(&mut self, message: String) {
        self.rejections.push(Problem {
            reason: reason::INVALID,
            message,
        });
    }

    /// Part of the spec is refused, but the object keeps running as it did
    /// (a network keeps the VNI it runs with): it stays accepted, and
    /// `Ready` is False with reason `Invalid` until the spec is fixed.
    pub(crate) fn not_applied(&mut self, message: String) {
        self.unapplied.push(Problem {
            reason: reason::INVALID,
            message,
        });
    }

    /// Like [`Findings::not_applied`], with its own reason (a reference
    /// that is not fatal: a missing SecurityGroup allows nothing).
    pub(crate) fn not_applied_because(&mut self, reason: &'static str, message: String) {
        self.unapplied.push(Problem { reason, message });
    }

    /// What of the spec is not applied, as (reason, message), if anything.
    pub(crate) fn unapplied(&self) -> Option<(&'static str, String)> {
        let first = self.unapplied.first()?;
        Some((first.reason, join(&self.unapplied)))
    }

    /// Whether nothing is wrong.
    pub(crate) fn accepted(&self) -> bool {
        self.refs.is_empty() && self.rejections.is_empty()
    }

    /// `ResolvedRefs` then `Accepted`.
    pub(crate) fn conditions(&self) -> [ConditionDecision; 2] {
        let resolved = if self.refs.is_empty() {
            ConditionDecision::new(
                condition::RESOLVED_REFS,
                true,
                reason::OK,
                "every referenced object exists and is accepted".to_owned(),
            )
        } else {
            // A missing object is the first thing to fix.
            let reason = if self.refs.iter().any(|p| p.reason == reason::NOT_FOUND) {
                reason::NOT_FOUND
            } else {
                reason::REF_NOT_ACCEPTED
            };
            ConditionDecision::new(condition::RESOLVED_REFS, false, reason, join(&self.refs))
        };
        let accepted = if self.accepted() && self.unapplied.is_empty() {
            ConditionDecision::new(
                condition::ACCEPTED,
                true,
                reason::OK,
                "valid together with every object it refers to".to_owned(),
            )
        } else if self.accepted() {
            ConditionDecision::new(
                condition::ACCEPTED,
                true,
                reason::OK,
                format!(
                    "accepted as it runs, but part of its spec is not applied: {}",
                    join(&self.unapplied)
                ),
            )
        } else {
            // Invalid, then Conflict, then the reference problems: the
            // reason names what the user must change first.
            let first = [reason::INVALID, reason::CONFLICT]
                .into_iter()
                .find(|r| self.rejections.iter().any(|p| p.reason == *r))
                .unwrap_or(resolved.reason);
            let all: Vec<Problem> = self
                .rejections
                .iter()
                .chain(self.refs.iter())
                .cloned()
                .collect();
            ConditionDecision::new(condition::ACCEPTED, false, first, join(&all))
        };
        [resolved, accepted]
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut end = MAX_MESSAGE_LEN - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// `Ready` from `Accepted`, what of the spec is not applied, and, when the
/// kind is programmed, `Programmed`.
pub(crate) fn ready(
    accepted: &ConditionDecision,
    unapplied: Option<(&'static str, String)>,
    programmed: Option<&ConditionDecision>,
) -> ConditionDecision {
    if !accepted.status {
        return ConditionDecision::new(
            condition::READY,
            false,
            accepted.reason,
            accepted.message.clone(),
        );
    }
    if let Some((reason, message)) = unapplied {
        return ConditionDecision::new(condition::READY, false, reason, message);
    }
    match programmed {
        Some(p) if p.unknown => {
            ConditionDecision::unknown(condition::READY, p.reason, p.message.clone())
        }
        Some(p) if !p.status => {
            ConditionDecision::new(condition::READY, false, p.reason, p.message.clone())
        }
        Some(_) => ConditionDecision::new(
            condition::READY,
            true,
            reason::OK,
            "accepted and programmed on every gateway node concerned".to_owned(),
        ),
        None => ConditionDecision::new(condition::READY, true, reason::OK, "accepted".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let c = ConditionDecision::new("Accepted", false, "Invalid", "é".repeat(MAX_MESSAGE_LEN));
        assert!(c.message.len() <= MAX_MESSAGE_LEN);
        assert!(c.message.ends_with("..."));
    }

    #[test]
    fn invalid_comes_before_conflict_and_refs() {
        let mut f = Findings::default();
        f.not_found("x missing".into());
        f.conflict("y taken".into());
        f.invalid("z bad".into());
        let [resolved, accepted] = f.conditions();
        assert_eq!(resolved.reason, reason::NOT_FOUND);
        assert_eq!(accepted.reason, reason::INVALID);
        assert_eq!(accepted.message, "y taken; z bad; x missing");
    }

    #[test]
    fn a_spec_part_not_applied_keeps_accepted_and_makes_ready_false() {
        let mut f = Findings::default();
        f.not_applied("spec.vni 7 is not applied".into());
        assert!(f.accepted());
        let [_, accepted] = f.conditions();
        assert!(accepted.status);
        assert!(accepted.message.contains("spec.vni 7 is not applied"));
        let programmed = ConditionDecision::new("Programmed", true, reason::OK, "ok".into());
        let r = ready(&accepted, f.unapplied(), Some(&programmed));
        assert!(!r.status);
        assert_eq!(r.reason, reason::INVALID);
        assert_eq!(r.message, "spec.vni 7 is not applied");
    }
}
