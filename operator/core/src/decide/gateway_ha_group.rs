//! GatewayHAGroups: what makes a group valid, and its status from what its
//! members' node dataplanes report.
//!
//! ```text
//!  members' routers and ports exist ─┐
//!  a port is a member of one group   ├─> Accepted / ResolvedRefs
//!  Fast: timers honoured, underlay   │
//!  STP: BPDU network bridges, VLAN 0 ┘
//!  of every member port free for BPDUs
//!
//!  PhysicalRouter.status.haGroups (each member's own report,
//!  and what it hears of the others)  ──> per member Active / Standby / Down,
//!                                         activeMember; Ready = exactly one Active
//!  PhysicalRouter.status.programmed  ──> Programmed (every member holds the group)
//! ```
//!
//! A member's own report says what it is, unless another member that is
//! itself up reports it does not hear it (mode Fast): a member whose agent
//! was killed cannot report its death, and one cut from the fabric cannot
//! reach the API server to say it fenced itself.

use std::collections::BTreeMap;

use trunkline_api::status::{condition, reason};
use trunkline_model::ha::member_port_claims;
use trunkline_model::{
    ForwardingMode, GatewayHaGroup, HaMode, HaState, MIN_HELLO_MILLIS, Snapshot,
};

use super::index::Index;
use super::programmed::programmed_condition;
use super::virtual_network::{Networks, network_ref};
use super::{decision, list_or_none};
use crate::decision::{
    ConditionDecision, Decisions, DerivedStatus, Findings, HaMemberState, summary,
};

fn decide(
    snapshot: &Snapshot,
    group: &GatewayHaGroup,
    index: &Index<'_>,
    networks: &Networks<'_>,
) -> Findings {
    let mut findings = Findings::default();
    let claims = member_port_claims(snapshot);
    for member in &group.members {
        let router = &member.physical_router;
        let port = &member.physical_interface;
        let what = format!("member {router}: ");
        if let Some(problem) = index.port_problem(router, port, &what) {
            findings.not_found(problem);
        }
        let owner = claims
            .get(&(router.clone(), port.clone()))
            .and_then(|groups| groups.first())
            .filter(|owner| owner.meta.key != group.meta.key);
        if let Some(owner) = owner {
            findings.conflict(format!(
                "member {router}/{port} is already a member port of GatewayHAGroup {} (older): a port belongs to one group; remove it from one of them",
                owner.meta.name()
            ));
        }
    }
    match group.mode {
        HaMode::Fast => fast_rules(group, index, &mut findings),
        HaMode::Stp => stp_rules(snapshot, group, networks, &mut findings),
    }
    findings
}

/// Mode Fast: timers a node honours, and an underlay address per member
/// (heartbeats travel over the fabric).
fn fast_rules(group: &GatewayHaGroup, index: &Index<'_>, findings: &mut Findings) {
    if let Some(timers) = group.timers_in_effect()
        && timers.hello_millis < MIN_HELLO_MILLIS
    {
        findings.invalid(format!(
            "spec.timers.helloMillis {} is shorter than the node dataplane honours ({MIN_HELLO_MILLIS} ms: its heartbeat thread can be woken late by several milliseconds on a loaded node, and a dead time of 3 hellos would then fire without a failure): set helloMillis to {MIN_HELLO_MILLIS} or more",
            timers.hello_millis
        ));
    }
    for member in &group.members {
        let router = &member.physical_router;
        if let Some(r) = index.routers.get(router.as_str())
            && r.underlay_address().is_none()
        {
            findings.invalid(format!(
                "member {router}: PhysicalRouter {router} declares no spec.fabric.underlayAddress: mode Fast sends heartbeats over the fabric; declare the node's underlay address"
            ));
        }
    }
}

/// Mode STP: a BPDU network that bridges, and VLAN 0 of every member port
/// free for BPDUs (or bound to the BPDU network).
fn stp_rules(
    snapshot: &Snapshot,
    group: &GatewayHaGroup,
    networks: &Networks<'_>,
    findings: &mut Findings,
) {
    let Some(bpdu) = &group.bpdu_network else {
        findings.invalid(
            "mode STP needs spec.bpduNetwork: the virtual network that floods BPDUs between the members"
                .to_owned(),
        );
        return;
    };
    network_ref(networks, bpdu, findings, "spec.bpduNetwork");
    if let Some(verdict) = networks.get(bpdu)
        && verdict.network.forwarding_mode == ForwardingMode::L3
    {
        findings.invalid(format!(
            "spec.bpduNetwork {bpdu} only routes (forwardingMode L3): BPDUs are layer-2 frames the network must flood; use forwardingMode L2"
        ));
    }
    let vmi_networks: BTreeMap<_, _> = snapshot
        .virtual_machine_interfaces
        .iter()
        .map(|v| (v.name(), v.network_name()))
        .collect();
    let mut vlan0: Vec<_> = snapshot
        .logical_interfaces
        .iter()
        .filter(|li| li.vlan == 0)
        .collect();
    vlan0.sort_by_key(|li| li.meta.age());
    for member in &group.members {
        for li in vlan0.iter().filter(|li| {
            li.physical_router == member.physical_router
                && li.physical_interface == member.physical_interface
        }) {
            let network = vmi_networks.get(&li.vmi);
            if network != Some(bpdu) {
                findings.invalid(format!(
                    "member {}/{}: VLAN 0 is bound by LogicalInterface {} to VirtualMachineInterface {}{}: mode STP floods BPDUs on VLAN 0 (untagged) of every member port; move that instance to a VLAN, or bind VLAN 0 to a VMI of spec.bpduNetwork {bpdu} (or to nothing: the operator derives the BPDU attachment)",
                    member.physical_router,
                    member.physical_interface,
                    li.meta.name(),
                    li.vmi,
                    network
                        .map(|n| format!(" of network {n}"))
                        .unwrap_or_default(),
                ));
            }
        }
    }
}

/// Each member's state, from its own report and the others' views.
fn member_states(group: &GatewayHaGroup, index: &Index<'_>) -> Vec<HaMemberState> {
    let name = group.meta.name();
    let reports: BTreeMap<&str, _> = group
        .members
        .iter()
        .filter_map(|m| {
            let router = index.routers.get(m.physical_router.as_str())?;
            Some((m.physical_router.as_str(), router.ha_report(name)?))
        })
        .collect();
    let mut states: Vec<HaMemberState> = group
        .members
        .iter()
        .map(|m| {
            let router = m.physical_router.as_str();
            let Some(report) = reports.get(router) else {
                let message = if index.routers.contains_key(router) {
                    format!(
                        "the node dataplane of {router} has not reported on this group (not running, or not yet)"
                    )
                } else {
                    format!("PhysicalRouter {router} does not exist")
                };
                return HaMemberState {
                    physical_router: router.to_owned(),
                    state: HaState::Down,
                    since: None,
                    reason: "NotReporting".to_owned(),
                    message: Some(message),
                };
            };
            // Another member, itself up, that does not hear this one while
            // this one's report says it hears that member: the report is
            // older than the silence (its node dataplane died or lost the
            // API server). Two members that report not hearing each other
            // are both believed (a partition: both may be active).
            let unheard = reports
                .iter()
                .filter(|(other, r)| **other != router && r.state != HaState::Down)
                .find_map(|(other, r)| {
                    let silence = r
                        .peers
                        .iter()
                        .find(|p| p.physical_router == router && !p.heard)?;
                    let hears_other = report
                        .peers
                        .iter()
                        .find(|p| p.physical_router == *other)
                        .is_none_or(|p| p.heard);
                    hears_other.then_some((*other, silence.since))
                });
            match unheard {
                Some((other, since)) if group.mode == HaMode::Fast => HaMemberState {
                    physical_router: router.to_owned(),
                    state: HaState::Down,
                    since: Some(since),
                    reason: "NoHeartbeat".to_owned(),
                    message: Some(format!(
                        "{other} hears no heartbeat from {router} (its own last report: {}, {})",
                        report.state.as_str(),
                        report.reason
                    )),
                },
                _ => HaMemberState {
                    physical_router: router.to_owned(),
                    state: report.state,
                    since: Some(report.since),
                    reason: report.reason.clone(),
                    message: report.message.clone(),
                },
            }
        })
        .collect();
    states.sort_by(|a, b| a.physical_router.cmp(&b.physical_router));
    states
}

/// `Ready` of an accepted, programmed group: exactly one member active.
fn ready_of(states: &[HaMemberState]) -> ConditionDecision {
    let active: Vec<&str> = states
        .iter()
        .filter(|s| s.state == HaState::Active)
        .map(|s| s.physical_router.as_str())
        .collect();
    let describe = || {
        list_or_none(
            states
                .iter()
                .map(|s| format!("{} {} ({})", s.physical_router, s.state.as_str(), s.reason)),
        )
    };
    match active.as_slice() {
        [one] => ConditionDecision::new(
            condition::READY,
            true,
            reason::OK,
            format!("{one} is active: {}", describe()),
        ),
        [] => ConditionDecision::new(
            condition::READY,
            false,
            reason::NO_ACTIVE_MEMBER,
            format!("no member is active: {}", describe()),
        ),
        many => ConditionDecision::new(
            condition::READY,
            false,
            reason::SPLIT_BRAIN,
            format!(
                "{} members say they are active ({}): {}",
                many.len(),
                many.join(", "),
                describe()
            ),
        ),
    }
}

/// The HA groups' decisions.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    networks: &Networks<'_>,
    out: &mut Decisions,
) {
    for group in &snapshot.gateway_ha_groups {
        let findings = decide(snapshot, group, index, networks);
        let members = group
            .members
            .iter()
            .map(|m| m.physical_router.clone())
            .collect();
        let p = programmed_condition(
            index,
            &group.meta,
            findings.accepted(),
            &members,
            "the group has no member",
        );
        let states = if findings.accepted() {
            member_states(group, index)
        } else {
            Vec::new()
        };
        let active_member = {
            let active: Vec<&HaMemberState> = states
                .iter()
                .filter(|s| s.state == HaState::Active)
                .collect();
            match active.as_slice() {
                [one] => Some(one.physical_router.clone()),
                _ => None,
            }
        };
        let derived = DerivedStatus::GatewayHaGroup {
            members_summary: summary(group.members.iter().map(|m| &m.physical_router)),
            active_member,
            members: states.clone(),
        };
        let mut d = decision(&group.meta, &findings, Some(p), derived);
        if d.is_ready()
            && let Some(ready) = d
                .conditions
                .iter_mut()
                .find(|c| c.type_ == condition::READY)
        {
            *ready = ready_of(&states);
        }
        out.insert(d);
    }
}
