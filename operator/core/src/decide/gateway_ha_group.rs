//! GatewayHAGroups: every member's router and port exist, and the BPDU
//! network resolves. Gateway HA is not implemented yet (no node elects an
//! active member, floods BPDUs or fails over), so an accepted group is
//! never `Ready`: `Programmed` and `Ready` are False with reason
//! `NotImplemented`, and say so.

use std::collections::BTreeMap;

use trunkline_api::status::{condition, reason};
use trunkline_model::{GatewayHaGroup, PhysicalRouter};

use super::decision;
use super::index::port_problem;
use super::virtual_network::{Networks, network_ref};
use crate::decision::{ConditionDecision, Decision, DerivedStatus, Findings, summary};

/// What `Programmed` says of an accepted group until gateway HA lands.
pub(crate) const NOT_IMPLEMENTED: &str = "gateway HA is not implemented yet: the group is validated, but no gateway node elects an active member, floods BPDUs through spec.bpduNetwork or fails over; each member forwards for its own logical interfaces as if the group did not exist";

/// The rules of one group.
pub(super) fn verdict(
    group: &GatewayHaGroup,
    routers: &BTreeMap<String, PhysicalRouter>,
    networks: &Networks,
) -> Findings {
    let mut findings = Findings::default();
    for member in &group.members {
        let what = format!("member {}: ", member.physical_router);
        if let Some(problem) = port_problem(
            routers,
            &member.physical_router,
            &member.physical_interface,
            &what,
        ) {
            findings.not_found(problem);
        }
    }
    if let Some(bpdu) = &group.bpdu_network {
        network_ref(networks, bpdu, &mut findings, "spec.bpduNetwork");
    }
    findings
}

/// `Programmed` of a group: nothing programs one yet.
fn programmed(accepted: bool) -> ConditionDecision {
    if accepted {
        ConditionDecision::new(
            condition::PROGRAMMED,
            false,
            reason::NOT_IMPLEMENTED,
            NOT_IMPLEMENTED.to_owned(),
        )
    } else {
        ConditionDecision::new(
            condition::PROGRAMMED,
            false,
            reason::PENDING,
            "not programmed: a gateway node programs only accepted objects (see Accepted)"
                .to_owned(),
        )
    }
}

/// A group's decision.
pub(super) fn decision_of(group: &GatewayHaGroup, findings: &Findings) -> Decision {
    let p = programmed(findings.accepted());
    let derived = DerivedStatus::GatewayHaGroup {
        members_summary: summary(group.members.iter().map(|m| &m.physical_router)),
    };
    decision(&group.meta, findings, Some(p), derived)
}
