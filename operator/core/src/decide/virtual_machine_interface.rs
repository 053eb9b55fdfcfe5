//! VirtualMachineInterfaces: a network that exists and is accepted,
//! addresses inside its subnets (not a gateway, nor an IPv4 subnet's
//! network or broadcast address), addresses and MACs unique
//! within the network (hosts behind external VTEPs included), and a label
//! for accepted ones.

use std::collections::BTreeMap;
use std::net::IpAddr;

use trunkline_model::{
    IpPrefix, LogicalInterface, Meta, NamespacedName, Placement, VirtualMachineInterface,
    VirtualNetwork,
};

use super::addresses::{NetworkAddresses, release_hint};
use super::labels::{Pool, exhausted};
use super::programmed::{Reports, programmed_condition};
use super::virtual_network::{Networks, is_ipv4_broadcast, network_ref};
use super::{decision, list_or_none};
use crate::decision::{Decision, DerivedStatus, Findings, summary};

/// What was decided about a VMI before the label pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VmiPre {
    pub(super) findings: Findings,
    pub(super) routing_instance: Option<String>,
}

/// What was decided about a VMI, for the stages after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VmiVerdict {
    pub(super) findings: Findings,
    pub(super) routing_instance: Option<String>,
    pub(super) mpls_label: Option<u32>,
}

/// The VMIs' verdicts, by name.
pub(super) type Vmis = BTreeMap<NamespacedName, VmiVerdict>;

/// The rules of one VMI with its network and the addresses it claims.
pub(super) fn pre(
    vmi: &VirtualMachineInterface,
    network_object: Option<&VirtualNetwork>,
    networks: &Networks,
    addresses: &NetworkAddresses,
) -> VmiPre {
    let network_name = vmi.network_name();
    let mut findings = Findings::default();
    for defect in &vmi.defects {
        findings.invalid(defect.clone());
    }
    network_ref(
        networks,
        &network_name,
        &mut findings,
        "spec.virtualNetwork",
    );
    let network = networks.get(&network_name);
    if let (Some(_), Some(object)) = (network, network_object) {
        for ip in &vmi.ips {
            if let Some(problem) = address_problem(object, &network_name, *ip) {
                findings.invalid(problem);
            }
        }
    }
    for ip in &vmi.ips {
        if let Some(holder) = addresses.ip_holder(&network_name, *ip, &vmi.meta) {
            findings.conflict(format!(
                "address {ip} is already used by {holder} (older) in network {}: use another address, or {}",
                vmi.network,
                release_hint(holder)
            ));
        }
    }
    if let Some(mac) = vmi.mac
        && let Some(holder) = addresses.mac_holder(&network_name, mac, &vmi.meta)
    {
        findings.conflict(format!(
            "MAC address {mac} is already used by {holder} (older) in network {}: each interface of a network needs its own MAC",
            vmi.network
        ));
    }
    VmiPre {
        findings,
        routing_instance: network.map(|n| n.routing_instance.clone()),
    }
}

/// The VMI's verdict once the label pool has handed labels out: only
/// accepted VMIs get one.
pub(super) fn verdict(vmi: &VirtualMachineInterface, pre: &VmiPre, labels: &Pool) -> VmiVerdict {
    let mut findings = pre.findings.clone();
    let mpls_label = if findings.accepted() {
        let label = labels.value(&vmi.meta, vmi.mpls_label, true);
        if label.is_none() {
            findings.conflict(exhausted());
        }
        label
    } else {
        None
    };
    VmiVerdict {
        findings,
        routing_instance: pre.routing_instance.clone(),
        mpls_label,
    }
}

/// Why `ip` cannot be an instance address in `network`, if it cannot.
pub(super) fn address_problem(
    network: &VirtualNetwork,
    name: &NamespacedName,
    ip: IpAddr,
) -> Option<String> {
    let subnets = list_or_none(network.subnets.iter().map(|s| s.prefix));
    match network.subnets.iter().find(|s| s.prefix.contains(ip)) {
        None if network.subnets.is_empty() => Some(format!(
            "address {ip} cannot be used: VirtualNetwork {name} has no subnets; add one containing it to the network's spec.subnets"
        )),
        None => Some(format!(
            "address {ip} is outside every subnet of VirtualNetwork {name} ({subnets}): use an address inside one of them, or add a subnet containing it"
        )),
        Some(subnet) if subnet.gateway == ip => Some(format!(
            "address {ip} is the gateway address of subnet {} of VirtualNetwork {name}, which the gateway node answers for: use another address of the subnet",
            subnet.prefix
        )),
        Some(subnet) if subnet.prefix.is_ipv4() && subnet.prefix.network() == ip => Some(format!(
            "address {ip} is the network address of subnet {} of VirtualNetwork {name}, which no host may use: use a host address of the subnet",
            subnet.prefix
        )),
        Some(subnet) if is_ipv4_broadcast(subnet.prefix, ip) => Some(format!(
            "address {ip} is the broadcast address of subnet {} of VirtualNetwork {name}, which no host may use: use a host address of the subnet",
            subnet.prefix
        )),
        Some(_) => None,
    }
}

/// A VMI's decision: held by the nodes of its accepted logical interfaces
/// (`bound`, sorted), whose names the status lists; programmed on a node
/// once they are too. `group` is the GatewayHAGroup whose member port a
/// binding is on, if one is.
pub(super) fn decision_of(
    vmi: &VirtualMachineInterface,
    verdict: &VmiVerdict,
    bound: &[&LogicalInterface],
    group: Option<&str>,
    placement: &Placement,
    reports: &Reports,
) -> Decision {
    // ActiveActive (ECMP over the members) is not supported yet: the VMI
    // runs active-standby, and says so.
    let noted;
    let verdict = match (group, vmi.active_active.is_empty()) {
        (Some(group), false) => {
            let mut findings = verdict.findings.clone();
            findings.not_applied(format!(
                "mode ActiveActive of {} is not applied: the VMI is served by GatewayHAGroup {group}, and ECMP over its members is not supported yet; the addresses run ActiveStandby (one member active); set their mode to ActiveStandby (the default)",
                list_or_none(vmi.active_active.iter().map(|p| {
                    if *p == IpPrefix::host(p.addr()) {
                        p.addr().to_string()
                    } else {
                        p.to_string()
                    }
                }))
            ));
            noted = VmiVerdict {
                findings,
                routing_instance: verdict.routing_instance.clone(),
                mpls_label: verdict.mpls_label,
            };
            &noted
        }
        _ => verdict,
    };
    let parts: Vec<(&str, &Meta)> = bound
        .iter()
        .map(|li| (li.physical_router.as_str(), &li.meta))
        .collect();
    let p = programmed_condition(
        reports,
        &vmi.meta,
        verdict.findings.accepted(),
        placement.vmi_nodes(&vmi.name()),
        "no accepted LogicalInterface binds this VMI, so no gateway node holds it: create a LogicalInterface whose spec.virtualMachineInterface names it",
        &parts,
    );
    let derived = DerivedStatus::VirtualMachineInterface {
        routing_instance: verdict.routing_instance.clone(),
        logical_interfaces: bound.iter().map(|li| li.meta.name().to_owned()).collect(),
        mpls_label: verdict.mpls_label,
        mac_address: vmi.mac.map(|m| m.to_string()),
        addresses_summary: summary(&vmi.ips),
    };
    decision(&vmi.meta, &verdict.findings, Some(p), derived)
}
