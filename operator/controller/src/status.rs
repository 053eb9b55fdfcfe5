//! From a decision of the core to the status the operator writes: the
//! Kubernetes conditions (keeping `lastTransitionTime` while a condition's
//! status stays the same), the derived fields of each kind, and which
//! condition changes deserve an Event.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use trunkline_api::gateway_ha_group::HaMemberStatus;
use trunkline_api::status::condition;
use trunkline_api::virtual_gateway::VirtualGatewayNodeStatus;
use trunkline_api::{
    ClusterVirtualNetworkPolicy, DCGateway, DCGatewayStatus, ExternalVTEP, ExternalVTEPStatus,
    GatewayHAGroup, GatewayHAGroupStatus, LogicalInterface, LogicalInterfaceStatus, SecurityGroup,
    SecurityGroupStatus, VirtualGateway, VirtualGatewayStatus, VirtualMachineInterface,
    VirtualMachineInterfaceStatus, VirtualNetwork, VirtualNetworkPolicy,
    VirtualNetworkPolicyStatus, VirtualNetworkStatus,
};
use trunkline_operator_core::{Decision, DerivedStatus, Kind};

/// The one field manager every status write uses (server-side apply).
pub const FIELD_MANAGER: &str = "trunkline-operator";

/// A kind whose status the operator writes.
pub trait Reported:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
    /// Its status type.
    type Status: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// Its kind in the core's terms.
    const KIND: Kind;
    /// The status as stored.
    fn current(&self) -> Option<&Self::Status>;
    /// The conditions of a status.
    fn conditions_of(status: &Self::Status) -> &[Condition];
    /// The whole status the operator wants: conditions plus derived fields.
    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status;
    /// The API to write an object of this kind.
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;
    /// Completes `desired` from the status as stored (times the core
    /// leaves to the caller); most kinds have none.
    fn settle(_desired: &mut Self::Status, _previous: Option<&Self::Status>, _now: &Time) {}
    /// Events beyond condition transitions that going from `previous` to
    /// `desired` deserves; most kinds have none.
    fn notes(_previous: Option<&Self::Status>, _desired: &Self::Status) -> Vec<Note> {
        Vec::new()
    }
}

/// An Event that is not a condition's transition: an HA member changing
/// state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Normal (true) or Warning.
    pub normal: bool,
    /// CamelCase reason (`MemberActive`, `MemberStandby`, `MemberDown`).
    pub reason: String,
    /// The Event's action.
    pub action: &'static str,
    /// What happened, for a person.
    pub text: String,
    /// The HA transition it reports, for the transitions metric: (member,
    /// new state) of the object the Event is about.
    pub transition: Option<(String, String)>,
}

/// Now, at the second: the API server stores condition times in seconds,
/// so a finer time would make every comparison with the stored status fail.
pub fn now() -> Time {
    let seconds = Timestamp::now().as_second();
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The decided conditions as Kubernetes conditions. A condition whose status
/// is the same as in `previous` keeps its `lastTransitionTime`.
pub fn conditions(decision: &Decision, previous: &[Condition], now: &Time) -> Vec<Condition> {
    decision
        .conditions
        .iter()
        .map(|c| {
            let status = c.status_str();
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_owned(),
                status: status.to_owned(),
                reason: c.reason.to_owned(),
                message: c.message.clone(),
                observed_generation: Some(decision.generation),
                last_transition_time: since,
            }
        })
        .collect()
}

/// The conditions worth an Event: `Accepted` whenever its status changes
/// (or first appears), and `Ready` when it changes while the object is
/// accepted (when it is not, the `Accepted` event already says why).
pub fn transitions<'a>(previous: &[Condition], desired: &'a [Condition]) -> Vec<&'a Condition> {
    let accepted = desired
        .iter()
        .any(|c| c.type_ == condition::ACCEPTED && c.status == "True");
    desired
        .iter()
        .filter(|c| {
            let changed = !previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == c.status);
            changed && (c.type_ == condition::ACCEPTED || (c.type_ == condition::READY && accepted))
        })
        .collect()
}

impl Reported for LogicalInterface {
    type Status = LogicalInterfaceStatus;
    const KIND: Kind = Kind::LogicalInterface;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        LogicalInterfaceStatus {
            observed_generation: Some(decision.generation),
            conditions,
        }
    }

    fn api(client: Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

impl Reported for VirtualMachineInterface {
    type Status = VirtualMachineInterfaceStatus;
    const KIND: Kind = Kind::VirtualMachineInterface;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        match &decision.derived {
            DerivedStatus::VirtualMachineInterface {
                routing_instance,
                logical_interfaces,
                mpls_label,
                mac_address,
                addresses_summary,
            } => VirtualMachineInterfaceStatus {
                observed_generation: Some(decision.generation),
                conditions,
                routing_instance: routing_instance.clone(),
                logical_interfaces: logical_interfaces.clone(),
                mpls_label: *mpls_label,
                mac_address: mac_address.clone(),
                addresses_summary: addresses_summary.clone(),
            },
            _ => VirtualMachineInterfaceStatus {
                observed_generation: Some(decision.generation),
                conditions,
                ..VirtualMachineInterfaceStatus::default()
            },
        }
    }

    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
}

impl Reported for VirtualNetwork {
    type Status = VirtualNetworkStatus;
    const KIND: Kind = Kind::VirtualNetwork;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        match &decision.derived {
            DerivedStatus::VirtualNetwork {
                vni,
                routing_instance,
                mpls_label,
                encapsulation,
                subnets_summary,
                fabric_exit,
            } => VirtualNetworkStatus {
                observed_generation: Some(decision.generation),
                conditions,
                vni: *vni,
                routing_instance: Some(routing_instance.clone()),
                subnets_summary: subnets_summary.clone(),
                mpls_label: *mpls_label,
                encapsulation: encapsulation.iter().map(|e| e.to_api()).collect(),
                fabric_exit: fabric_exit.map(|e| e.to_api()),
            },
            _ => VirtualNetworkStatus {
                observed_generation: Some(decision.generation),
                conditions,
                ..VirtualNetworkStatus::default()
            },
        }
    }

    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
}

impl Reported for GatewayHAGroup {
    type Status = GatewayHAGroupStatus;
    const KIND: Kind = Kind::GatewayHAGroup;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let (members_summary, active_member, members) = match &decision.derived {
            DerivedStatus::GatewayHaGroup {
                members_summary,
                active_member,
                members,
            } => (
                members_summary.clone(),
                active_member.clone(),
                members
                    .iter()
                    .map(|m| HaMemberStatus {
                        physical_router: m.physical_router.clone(),
                        state: m.state.as_str().to_owned(),
                        since: m
                            .since
                            .and_then(|s| Timestamp::from_second(s).ok())
                            .map(Time),
                        reason: Some(m.reason.clone()),
                        message: m.message.clone(),
                    })
                    .collect(),
            ),
            _ => (None, None, Vec::new()),
        };
        GatewayHAGroupStatus {
            observed_generation: Some(decision.generation),
            conditions,
            members_summary,
            active_member,
            members,
        }
    }

    fn api(client: Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }

    /// A state the operator concluded (no time from a node) keeps the time
    /// it was first concluded, else gets `now`.
    fn settle(desired: &mut Self::Status, previous: Option<&Self::Status>, now: &Time) {
        for member in desired.members.iter_mut().filter(|m| m.since.is_none()) {
            let kept = previous
                .iter()
                .flat_map(|p| &p.members)
                .find(|p| p.physical_router == member.physical_router && p.state == member.state)
                .and_then(|p| p.since.clone());
            member.since = Some(kept.unwrap_or_else(|| now.clone()));
        }
    }

    /// One Event per member whose state changed.
    fn notes(previous: Option<&Self::Status>, desired: &Self::Status) -> Vec<Note> {
        desired
            .members
            .iter()
            .filter_map(|m| {
                let before = previous
                    .iter()
                    .flat_map(|p| &p.members)
                    .find(|p| p.physical_router == m.physical_router);
                if before.is_some_and(|b| b.state == m.state) {
                    return None;
                }
                let reason = m.reason.as_deref().unwrap_or("Unknown");
                let text = format!(
                    "member {} is {} ({reason}{}){}",
                    m.physical_router,
                    m.state,
                    m.message
                        .as_deref()
                        .map(|x| format!(": {x}"))
                        .unwrap_or_default(),
                    before
                        .map(|b| format!(", was {}", b.state))
                        .unwrap_or_default()
                );
                Some(Note {
                    normal: m.state != "Down",
                    reason: format!("Member{}", m.state),
                    action: "Failover",
                    text,
                    transition: Some((m.physical_router.clone(), m.state.clone())),
                })
            })
            .collect()
    }
}

impl Reported for VirtualGateway {
    type Status = VirtualGatewayStatus;
    const KIND: Kind = Kind::VirtualGateway;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let nodes = match &decision.derived {
            DerivedStatus::VirtualGateway { nodes } => nodes
                .iter()
                .map(|n| VirtualGatewayNodeStatus {
                    node: n.node.clone(),
                    state: n.state.as_str().to_owned(),
                    message: n.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        VirtualGatewayStatus {
            observed_generation: Some(decision.generation),
            conditions,
            nodes,
        }
    }

    fn api(client: Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

impl Reported for ExternalVTEP {
    type Status = ExternalVTEPStatus;
    const KIND: Kind = Kind::ExternalVTEP;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let networks_summary = match &decision.derived {
            DerivedStatus::ExternalVtep { networks_summary } => networks_summary.clone(),
            _ => None,
        };
        ExternalVTEPStatus {
            observed_generation: Some(decision.generation),
            conditions,
            networks_summary,
        }
    }

    fn api(client: Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

impl Reported for DCGateway {
    type Status = DCGatewayStatus;
    const KIND: Kind = Kind::DCGateway;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let networks_summary = match &decision.derived {
            DerivedStatus::DcGateway { networks_summary } => networks_summary.clone(),
            _ => None,
        };
        DCGatewayStatus {
            observed_generation: Some(decision.generation),
            conditions,
            networks_summary,
        }
    }

    fn api(client: Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

impl Reported for SecurityGroup {
    type Status = SecurityGroupStatus;
    const KIND: Kind = Kind::SecurityGroup;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let interface_count = match &decision.derived {
            DerivedStatus::SecurityGroup { interface_count } => *interface_count,
            _ => 0,
        };
        SecurityGroupStatus {
            observed_generation: Some(decision.generation),
            conditions,
            interface_count,
        }
    }

    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
}

impl Reported for VirtualNetworkPolicy {
    type Status = VirtualNetworkPolicyStatus;
    const KIND: Kind = Kind::VirtualNetworkPolicy;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        let network_count = match &decision.derived {
            DerivedStatus::VirtualNetworkPolicy { network_count } => *network_count,
            _ => 0,
        };
        VirtualNetworkPolicyStatus {
            observed_generation: Some(decision.generation),
            conditions,
            network_count,
        }
    }

    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
}

impl Reported for ClusterVirtualNetworkPolicy {
    type Status = VirtualNetworkPolicyStatus;
    const KIND: Kind = Kind::ClusterVirtualNetworkPolicy;

    fn current(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }

    fn conditions_of(status: &Self::Status) -> &[Condition] {
        &status.conditions
    }

    fn desired(decision: &Decision, conditions: Vec<Condition>) -> Self::Status {
        VirtualNetworkPolicy::desired(decision, conditions)
    }

    fn api(client: Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_operator_core::{ConditionDecision, ObjectKey};

    fn decision(accepted: bool, ready: bool) -> Decision {
        Decision {
            key: ObjectKey::cluster(Kind::LogicalInterface, "li"),
            generation: 2,
            conditions: vec![
                ConditionDecision::new("Accepted", accepted, "Ok", "fine".into()),
                ConditionDecision::new("Ready", ready, "Pending", "waiting".into()),
            ],
            derived: DerivedStatus::None,
        }
    }

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let first = conditions(&decision(true, false), &[], &at(100));
        assert!(first.iter().all(|c| c.last_transition_time == at(100)));
        assert!(first.iter().all(|c| c.observed_generation == Some(2)));
        let second = conditions(&decision(true, true), &first, &at(200));
        assert_eq!(second[0].last_transition_time, at(100));
        assert_eq!(second[1].last_transition_time, at(200));
        // Nothing changed: the same conditions, so no write is needed.
        assert_eq!(conditions(&decision(true, true), &second, &at(300)), second);
    }

    #[test]
    fn events_are_for_accepted_and_for_ready_of_accepted_objects() {
        let first = conditions(&decision(true, false), &[], &at(1));
        let types: Vec<&str> = transitions(&[], &first)
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["Accepted", "Ready"]);
        let refused = conditions(&decision(false, false), &first, &at(2));
        let types: Vec<&str> = transitions(&first, &refused)
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["Accepted"]);
        assert!(transitions(&refused, &refused).is_empty());
    }

    #[test]
    fn labels_and_encapsulations_reach_the_status() {
        use trunkline_model::Encapsulation;
        let network = Decision {
            key: ObjectKey::namespaced(Kind::VirtualNetwork, "t", "n"),
            generation: 1,
            conditions: vec![],
            derived: DerivedStatus::VirtualNetwork {
                vni: Some(4096),
                routing_instance: "default-domain:t:n:n".into(),
                mpls_label: Some(16),
                encapsulation: vec![Encapsulation::Vxlan, Encapsulation::MplsOverUdp],
                subnets_summary: Some("10.0.0.0/24,fd00::/64".into()),
                fabric_exit: Some(trunkline_model::FabricExit::Snat),
            },
        };
        let status = serde_json::to_value(VirtualNetwork::desired(&network, vec![])).unwrap();
        assert_eq!(status["mplsLabel"], 16);
        assert_eq!(status["fabricExit"], "SNAT");
        assert_eq!(
            status["encapsulation"],
            serde_json::json!(["VXLAN", "MPLSoUDP"])
        );
        assert_eq!(status["subnetsSummary"], "10.0.0.0/24,fd00::/64");
        let vmi = Decision {
            key: ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "v"),
            generation: 1,
            conditions: vec![],
            derived: DerivedStatus::VirtualMachineInterface {
                routing_instance: None,
                logical_interfaces: vec![],
                mpls_label: Some(17),
                mac_address: Some("02:aa:00:00:00:01".into()),
                addresses_summary: Some("10.0.0.5,fd00::5".into()),
            },
        };
        let status = serde_json::to_value(VirtualMachineInterface::desired(&vmi, vec![])).unwrap();
        assert_eq!(status["mplsLabel"], 17);
        assert_eq!(status["macAddress"], "02:aa:00:00:00:01");
        assert_eq!(status["addressesSummary"], "10.0.0.5,fd00::5");
        // No label (not accepted): the field is absent, so an apply drops it.
        let refused = Decision {
            derived: DerivedStatus::VirtualMachineInterface {
                routing_instance: None,
                logical_interfaces: vec![],
                mpls_label: None,
                mac_address: None,
                addresses_summary: None,
            },
            ..vmi
        };
        let status =
            serde_json::to_value(VirtualMachineInterface::desired(&refused, vec![])).unwrap();
        assert!(status.get("mplsLabel").is_none());
    }

    #[test]
    fn ha_members_keep_their_time_and_each_change_is_an_event() {
        use trunkline_model::HaState;
        use trunkline_operator_core::HaMemberState;
        let group = |states: &[(&str, HaState, Option<i64>)]| Decision {
            key: ObjectKey::cluster(Kind::GatewayHAGroup, "g"),
            generation: 1,
            conditions: vec![],
            derived: DerivedStatus::GatewayHaGroup {
                members_summary: Some("gw1,gw2".into()),
                active_member: None,
                members: states
                    .iter()
                    .map(|(r, s, since)| HaMemberState {
                        physical_router: r.to_string(),
                        state: *s,
                        since: *since,
                        reason: "Why".into(),
                        message: None,
                    })
                    .collect(),
            },
        };
        let mut first = GatewayHAGroup::desired(
            &group(&[
                ("gw1", HaState::Active, Some(50)),
                ("gw2", HaState::Down, None),
            ]),
            vec![],
        );
        GatewayHAGroup::settle(&mut first, None, &at(100));
        assert_eq!(first.members[0].since, Some(at(50)), "the node's time");
        assert_eq!(first.members[1].since, Some(at(100)), "the operator's");
        let notes = GatewayHAGroup::notes(None, &first);
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[1].reason, "MemberDown");
        assert!(!notes[1].normal);

        // gw2 still Down later: same time, no event, nothing to write.
        let mut again = GatewayHAGroup::desired(
            &group(&[
                ("gw1", HaState::Active, Some(50)),
                ("gw2", HaState::Down, None),
            ]),
            vec![],
        );
        GatewayHAGroup::settle(&mut again, Some(&first), &at(200));
        assert_eq!(again, first);
        assert!(GatewayHAGroup::notes(Some(&first), &again).is_empty());

        // gw1 went Down, gw2 Active: two events.
        let mut after = GatewayHAGroup::desired(
            &group(&[
                ("gw1", HaState::Down, None),
                ("gw2", HaState::Active, Some(300)),
            ]),
            vec![],
        );
        GatewayHAGroup::settle(&mut after, Some(&first), &at(310));
        let notes = GatewayHAGroup::notes(Some(&first), &after);
        let reasons: Vec<&str> = notes.iter().map(|n| n.reason.as_str()).collect();
        assert_eq!(reasons, ["MemberDown", "MemberActive"]);
        assert!(
            notes[0]
                .text
                .contains("member gw1 is Down (Why), was Active"),
            "{}",
            notes[0].text
        );
        assert_eq!(
            notes[1].transition,
            Some(("gw2".to_owned(), "Active".to_owned()))
        );
    }

    #[test]
    fn now_has_no_fraction_of_a_second() {
        assert_eq!(now().0.subsec_nanosecond(), 0);
    }
}
