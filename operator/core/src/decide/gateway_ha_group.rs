//! GatewayHAGroups: every member's router and port exist, and the BPDU
//! network resolves. Gateway HA is not implemented yet (no node elects an
//! active member, floods BPDUs or fails over), so an accepted group is
//! never `Ready`: `Programmed` and `Ready` are False with reason
//! `NotImplemented`, and say so.

use trunkline_api::status::{condition, reason};
use trunkline_model::{GatewayHaGroup, Snapshot};

use super::decision;
use super::index::Index;
use super::virtual_network::{Networks, network_ref};
use crate::decision::{ConditionDecision, Decisions, DerivedStatus, Findings, summary};

/// What `Programmed` says of an accepted group until gateway HA lands.
pub(crate) const NOT_IMPLEMENTED: &str = "gateway HA is not implemented yet: the group is validated, but no gateway node elects an active member, floods BPDUs through spec.bpduNetwork or fails over; each member forwards for its own logical interfaces as if the group did not exist";

fn decide(group: &GatewayHaGroup, index: &Index<'_>, networks: &Networks<'_>) -> Findings {
    let mut findings = Findings::default();
    for member in &group.members {
        let what = format!("member {}: ", member.physical_router);
        if let Some(problem) =
            index.port_problem(&member.physical_router, &member.physical_interface, &what)
        {
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

/// The HA groups' decisions.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    networks: &Networks<'_>,
    out: &mut Decisions,
) {
    for group in &snapshot.gateway_ha_groups {
        let findings = decide(group, index, networks);
        let p = programmed(findings.accepted());
        let derived = DerivedStatus::GatewayHaGroup {
            members_summary: summary(group.members.iter().map(|m| &m.physical_router)),
        };
        out.insert(decision(&group.meta, &findings, Some(p), derived));
    }
}
