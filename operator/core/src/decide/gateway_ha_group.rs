//! GatewayHAGroups: every member's router and port exist, and the BPDU
//! network resolves. No node reports a group: its `Ready` is `Accepted`.

use trunkline_model::{GatewayHaGroup, Snapshot};

use super::decision;
use super::index::Index;
use super::virtual_network::{Networks, network_ref};
use crate::decision::{Decisions, DerivedStatus, Findings};

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

/// The HA groups' decisions.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    networks: &Networks<'_>,
    out: &mut Decisions,
) {
    for group in &snapshot.gateway_ha_groups {
        let findings = decide(group, index, networks);
        out.insert(decision(&group.meta, &findings, None, DerivedStatus::None));
    }
}
