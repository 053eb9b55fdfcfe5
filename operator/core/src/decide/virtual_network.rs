//! VirtualNetworks: a unique routing instance and a unique VNI each (given,
//! kept from status, or allocated), the encapsulations in effect, a label
//! for accepted ones, and the reference check other kinds use. A DHCP
//! relay is refused (`NotImplemented`) until the gateway can relay.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_model::{
    DhcpMode, Encapsulation, NamespacedName, Placement, Snapshot, VirtualNetwork,
};

use super::index::Index;
use super::labels::Labels;
use super::programmed::programmed_condition;
use super::{Settings, decision};
use crate::claims::Claims;
use crate::decision::{Decisions, DerivedStatus, Findings};

/// The first VNI the operator allocates: lower ones are left to users who
/// set `spec.vni` (and to the original's habit of small explicit ids).
pub const FIRST_ALLOCATED_VNI: u32 = 4096;
/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// What was decided about a network, for the stages after it.
pub(super) struct NetworkVerdict<'a> {
    pub(super) network: &'a VirtualNetwork,
    pub(super) findings: Findings,
    pub(super) vni: Option<u32>,
    pub(super) routing_instance: String,
    pub(super) mpls_label: Option<u32>,
    pub(super) encapsulation: Vec<Encapsulation>,
}

/// The networks' verdicts, by name.
pub(super) type Networks<'a> = BTreeMap<NamespacedName, NetworkVerdict<'a>>;

pub(super) fn decide<'a>(
    snapshot: &'a Snapshot,
    settings: &Settings,
    labels: &mut Labels,
) -> Networks<'a> {
    let mut by_age: Vec<&VirtualNetwork> = snapshot.virtual_networks.iter().collect();
    by_age.sort_by_key(|n| n.meta.age());

    // A VNI is claimed by the network that asks for it (spec.vni) or that
    // already runs with it (status.vni): a running network never changes
    // VNI, and a newer network cannot take it.
    let mut vnis: Claims<u32> = Claims::default();
    let mut instances: Claims<String> = Claims::default();
    for network in &by_age {
        if let Some(vni) = claimed_vni(network) {
            vnis.claim(vni, &network.meta);
        }
        instances.claim(network.effective_routing_instance(), &network.meta);
    }

    let mut next_free = FIRST_ALLOCATED_VNI;
    let mut allocated: BTreeSet<u32> = BTreeSet::new();
    let mut verdicts = BTreeMap::new();
    for network in by_age {
        let mut findings = Findings::default();
        for defect in &network.defects {
            findings.invalid(defect.clone());
        }
        if let DhcpMode::Relay(server) = network.dhcp.mode {
            findings.not_implemented(format!(
                "spec.dhcp.mode Relay (to {server}) is not implemented yet: use mode Server (the gateway answers from each VMI's addresses) or Off (clients' broadcasts are bridged to a DHCP server among the instances)"
            ));
        }
        let routing_instance = network.effective_routing_instance();
        if let Some(holder) = instances.held_by_other(&routing_instance, &network.meta) {
            findings.conflict(format!(
                "routing instance {routing_instance} is already used by {holder} (older): set another spec.routingInstance, or delete that network"
            ));
        }
        let vni = match (network.vni, claimed_vni(network)) {
            (Some(wanted), _) => match vnis.held_by_other(&wanted, &network.meta) {
                Some(holder) => {
                    findings.conflict(format!(
                        "VNI {wanted} is already used by {holder} (older): choose another spec.vni, leave it unset to get one allocated, or delete that network"
                    ));
                    None
                }
                None => Some(wanted),
            },
            (None, Some(running)) if vnis.held_by_other(&running, &network.meta).is_none() => {
                Some(running)
            }
            // Nothing asked for, or the old VNI now belongs to an older
            // network: the lowest free one, oldest networks first.
            _ => {
                while next_free <= MAX_VNI
                    && (vnis.is_held(&next_free) || allocated.contains(&next_free))
                {
                    next_free += 1;
                }
                if next_free > MAX_VNI {
                    findings.conflict(format!(
                        "no free VNI left between {FIRST_ALLOCATED_VNI} and {MAX_VNI}: set spec.vni to a free one below {FIRST_ALLOCATED_VNI}, or delete unused networks"
                    ));
                    None
                } else {
                    allocated.insert(next_free);
                    Some(next_free)
                }
            }
        };
        // Oldest first, and only once everything else is decided: a label
        // for every accepted network.
        let mpls_label = if findings.accepted() {
            let label = labels.assign(&network.meta, network.mpls_label);
            if label.is_none() {
                findings.conflict(Labels::exhausted());
            }
            label
        } else {
            None
        };
        verdicts.insert(
            network.name(),
            NetworkVerdict {
                network,
                findings,
                vni,
                routing_instance,
                mpls_label,
                encapsulation: network
                    .effective_encapsulation(settings.encapsulation_priority.as_slice()),
            },
        );
    }
    verdicts
}

/// The VNI a network claims: the one it asks for, or else the one it runs
/// with (a status value out of range is ignored).
fn claimed_vni(network: &VirtualNetwork) -> Option<u32> {
    network
        .vni
        .or(network.vni_in_use.filter(|v| (1..=MAX_VNI).contains(v)))
}

/// Records in `findings` why a reference to network `name` (in field
/// `field`) does not resolve, if it does not.
pub(super) fn network_ref(
    networks: &Networks<'_>,
    name: &NamespacedName,
    findings: &mut Findings,
    field: &str,
) {
    match networks.get(name) {
        None => findings.not_found(format!(
            "VirtualNetwork {name} does not exist: create it, or fix {field}"
        )),
        Some(n) if !n.findings.accepted() => {
            let [_, accepted] = n.findings.conditions();
            findings.not_accepted(format!(
                "VirtualNetwork {name} is not accepted ({}: {})",
                accepted.reason, accepted.message
            ));
        }
        Some(_) => {}
    }
}

/// The networks' decisions: held by the nodes of their VMIs and virtual
/// gateways.
pub(super) fn decisions(
    snapshot: &Snapshot,
    index: &Index<'_>,
    placement: &Placement,
    networks: &Networks<'_>,
    out: &mut Decisions,
) {
    for network in &snapshot.virtual_networks {
        let name = network.name();
        let verdict = &networks[&name];
        let p = programmed_condition(
            index,
            &network.meta,
            verdict.findings.accepted(),
            placement.network_nodes(&name),
            "no accepted VirtualMachineInterface bound to a logical interface, and no accepted VirtualGateway, uses this network, so no gateway node holds it",
        );
        let derived = DerivedStatus::VirtualNetwork {
            vni: verdict.vni,
            routing_instance: verdict.routing_instance.clone(),
            mpls_label: verdict.mpls_label,
            encapsulation: verdict.encapsulation.clone(),
        };
        out.insert(decision(&network.meta, &verdict.findings, Some(p), derived));
    }
}
