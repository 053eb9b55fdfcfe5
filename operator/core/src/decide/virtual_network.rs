//! VirtualNetworks: a unique routing instance named in the network's own
//! namespace, a unique VNI each (kept from status while running, else given
//! or allocated), usable gateway addresses, the encapsulations in effect, a
//! label for accepted ones, and the reference check other kinds use.
//!
//! The VNI rule: a running network keeps its VNI (`status.vni`). A
//! `spec.vni` that differs from it (the API server refuses setting one, so
//! only an object stored before that rule can have it) is not applied: the
//! network stays accepted with the VNI it runs with, and `Ready` says
//! `Invalid` until `spec.vni` is fixed.
//!
//! ```text
//!  pre:     rules of the network alone and its claims (routing instance,
//!           VNI kept, VNI asked for)        -> findings, VNI or "allocate"
//!  VNI pool: the networks that allocate, oldest first
//!  label pool: accepted networks (then VMIs)
//!  fabric: accepted networks with IP fabric forwarding, oldest first: a
//!          subnet overlapping an older one's is not applied
//!  verdict: findings + VNI + label + fabric exit
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::{
    Encapsulation, FabricExit, IpPrefix, NamespacedName, Placement, VirtualNetwork,
};

use super::labels::{Pool, exhausted};
use super::programmed::{Reports, programmed_condition};
use super::{Settings, decision};
use crate::claims::Claims;
use crate::decision::{Decision, DerivedStatus, Findings, summary};

/// The first VNI the operator allocates: lower ones are left to users who
/// set `spec.vni` (and to the original's habit of small explicit ids).
pub const FIRST_ALLOCATED_VNI: u32 = 4096;
/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// Where a network's VNI comes from, before the pool hands VNIs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum VniChoice {
    /// Kept, given, or none (refused).
    Decided(Option<u32>),
    /// The lowest free one, oldest networks first.
    Allocate,
}

/// What was decided about a network before the pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NetworkPre {
    pub(super) findings: Findings,
    pub(super) vni: VniChoice,
}

/// What was decided about a network, for the stages after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NetworkVerdict {
    pub(super) findings: Findings,
    pub(super) vni: Option<u32>,
    pub(super) routing_instance: String,
    pub(super) mpls_label: Option<u32>,
    pub(super) encapsulation: Vec<Encapsulation>,
    pub(super) fabric_exit: Option<FabricExit>,
}

/// The networks' verdicts, by name.
pub(super) type Networks = BTreeMap<NamespacedName, NetworkVerdict>;

/// The VNI pool.
pub(super) fn vni_pool() -> Pool {
    Pool::new(FIRST_ALLOCATED_VNI..=MAX_VNI)
}

/// What a network claims: its routing instance, and the VNIs it runs with
/// (`status.vni`) and asks for (`spec.vni`): a running network never
/// changes VNI, and a newer network cannot take it.
pub(super) fn claims(network: &VirtualNetwork) -> (BTreeSet<String>, BTreeSet<u32>) {
    let instances = BTreeSet::from([network.effective_routing_instance()]);
    let vnis = running_vni(network)
        .into_iter()
        .chain(network.vni)
        .collect();
    (instances, vnis)
}

/// The rules of one network and its claims.
pub(super) fn pre(network: &VirtualNetwork, instances: &Claims<String>, vnis: &Pool) -> NetworkPre {
    let mut findings = Findings::default();
    for defect in &network.defects {
        findings.invalid(defect.clone());
    }
    let routing_instance = network.effective_routing_instance();
    if let Some(problem) = routing_instance_problem(network, &routing_instance) {
        findings.invalid(problem);
    }
    for subnet in &network.subnets {
        if is_ipv4_broadcast(subnet.prefix, subnet.gateway) {
            findings.invalid(format!(
                "gateway {} of subnet {} is the subnet's broadcast address, which no instance can use as its gateway: set spec.subnets[{}].gateway to a host address of the subnet",
                subnet.gateway, subnet.prefix, subnet.prefix
            ));
        }
    }
    if let Some(holder) = instances.held_by_other(&routing_instance, &network.meta) {
        findings.conflict(format!(
            "routing instance {routing_instance} is already used by {holder} (older): set another spec.routingInstance, or delete that network"
        ));
    }
    let running = running_vni(network)
        .filter(|running| vnis.claims.held_by_other(running, &network.meta).is_none());
    let vni = match (running, network.vni) {
        // Running: kept, whatever spec.vni says.
        (Some(running), wanted) => {
            if let Some(wanted) = wanted.filter(|w| *w != running) {
                findings.not_applied(format!(
                    "spec.vni {wanted} is not applied: the network runs with VNI {running} (status.vni) and a running network keeps its VNI; set spec.vni to {running} or remove it, or create a new network for VNI {wanted}"
                ));
            }
            VniChoice::Decided(Some(running))
        }
        (None, Some(wanted)) => match vnis.claims.held_by_other(&wanted, &network.meta) {
            Some(holder) => {
                findings.conflict(format!(
                    "VNI {wanted} is already used by {holder} (older): choose another spec.vni, leave it unset to get one allocated, or delete that network"
                ));
                VniChoice::Decided(None)
            }
            None => VniChoice::Decided(Some(wanted)),
        },
        // Nothing asked for, or the old VNI now belongs to an older
        // network: the lowest free one, oldest networks first.
        (None, None) => VniChoice::Allocate,
    };
    NetworkPre { findings, vni }
}

/// The findings and VNI once the VNI pool has handed VNIs out.
pub(super) fn with_vni(
    network: &VirtualNetwork,
    pre: &NetworkPre,
    vnis: &Pool,
) -> (Findings, Option<u32>) {
    let mut findings = pre.findings.clone();
    let vni = match pre.vni {
        VniChoice::Decided(vni) => vni,
        VniChoice::Allocate => {
            let given = vnis.given(&network.meta.key).flatten();
            if given.is_none() {
                findings.conflict(format!(
                    "no free VNI left between {FIRST_ALLOCATED_VNI} and {MAX_VNI}: set spec.vni to a free one below {FIRST_ALLOCATED_VNI}, or delete unused networks"
                ));
            }
            given
        }
    };
    (findings, vni)
}

/// The network's verdict once the label pool has handed labels out: only
/// accepted networks get one.
pub(super) fn verdict(
    network: &VirtualNetwork,
    (mut findings, vni): (Findings, Option<u32>),
    labels: &Pool,
    settings: &Settings,
) -> NetworkVerdict {
    let mpls_label = if findings.accepted() {
        let label = labels.value(&network.meta, network.mpls_label, true);
        if label.is_none() {
            findings.conflict(exhausted());
        }
        label
    } else {
        None
    };
    NetworkVerdict {
        findings,
        vni,
        routing_instance: network.effective_routing_instance(),
        mpls_label,
        encapsulation: network.effective_encapsulation(settings.encapsulation_priority.as_slice()),
        fabric_exit: None,
    }
}

/// Whether an accepted network asks for IP fabric forwarding (it then
/// takes part in [`FabricSubnets`]).
pub(super) fn wants_fabric(network: &VirtualNetwork, verdict: &NetworkVerdict) -> bool {
    verdict.findings.accepted()
        && network.north_south.requested() == Some(FabricExit::IpFabricForwarding)
}

/// The verdict with its fabric exit: what the network asks for, when
/// accepted, unless IP fabric forwarding was refused (`refused`: why).
pub(super) fn with_fabric_exit(
    network: &VirtualNetwork,
    mut verdict: NetworkVerdict,
    refused: Option<&String>,
) -> NetworkVerdict {
    if !verdict.findings.accepted() {
        return verdict;
    }
    verdict.fabric_exit = match refused {
        Some(why) => {
            verdict.findings.not_applied(why.clone());
            None
        }
        None => network.north_south.requested(),
    };
    verdict
}

/// Subnets the fabric routes back to the overlay (IP fabric forwarding):
/// each goes to one network, the oldest of those asking whose own subnets
/// it got (a network refused gives its subnets up).
#[derive(Debug, Default)]
pub(super) struct FabricSubnets {
    asks: BTreeMap<(trunkline_model::Age, NamespacedName), Vec<IpPrefix>>,
    of: BTreeMap<NamespacedName, trunkline_model::Age>,
    refused: BTreeMap<NamespacedName, String>,
    stale: bool,
}

impl FabricSubnets {
    /// Whether `network` (when `asks`) asks for IP fabric forwarding of its
    /// subnets.
    pub(super) fn ask(&mut self, network: &VirtualNetwork, asks: bool) {
        let name = network.name();
        let wanted = asks.then(|| network.subnets.iter().map(|s| s.prefix).collect::<Vec<_>>());
        if let Some(age) = self.of.get(&name) {
            let key = (age.clone(), name.clone());
            if wanted.is_some()
                && self.asks.get(&key) == wanted.as_ref()
                && *age == network.meta.age()
            {
                return;
            }
            self.asks.remove(&key);
            self.of.remove(&name);
            self.stale = true;
        }
        if let Some(prefixes) = wanted {
            self.asks
                .insert((network.meta.age(), name.clone()), prefixes);
            self.of.insert(name, network.meta.age());
            self.stale = true;
        }
    }

    /// `name` is gone.
    pub(super) fn forget(&mut self, name: &NamespacedName) {
        if let Some(age) = self.of.remove(name) {
            self.asks.remove(&(age, name.clone()));
            self.stale = true;
        }
    }

    /// Hands the subnets out again if anything changed; returns the
    /// networks whose outcome changed.
    pub(super) fn run(&mut self) -> BTreeSet<NamespacedName> {
        if !self.stale {
            return BTreeSet::new();
        }
        self.stale = false;
        let mut taken: Vec<(IpPrefix, &NamespacedName)> = Vec::new();
        let mut refused = BTreeMap::new();
        for ((_, name), subnets) in &self.asks {
            let clash = subnets.iter().find_map(|subnet| {
                taken
                    .iter()
                    .find(|(p, _)| p.overlaps(subnet))
                    .map(|(theirs, holder)| (subnet, theirs, holder))
            });
            match clash {
                Some((subnet, theirs, holder)) => {
                    refused.insert(name.clone(), format!(
                        "spec.northSouth.ipFabricForwarding is not applied: subnet {subnet} overlaps subnet {theirs} of VirtualNetwork {holder} (older), which also uses IP fabric forwarding, and the fabric can route it to one network only; use other subnets, or SNAT"
                    ));
                }
                None => taken.extend(subnets.iter().map(|p| (*p, name))),
            }
        }
        let mut changed: BTreeSet<NamespacedName> = BTreeSet::new();
        for (name, why) in &refused {
            if self.refused.get(name) != Some(why) {
                changed.insert(name.clone());
            }
        }
        for name in self.refused.keys() {
            if !refused.contains_key(name) {
                changed.insert(name.clone());
            }
        }
        self.refused = refused;
        changed
    }

    /// Why `name`'s IP fabric forwarding is refused, if it is.
    pub(super) fn refused(&self, name: &NamespacedName) -> Option<&String> {
        self.refused.get(name)
    }
}

/// The VNI a network runs with (a status value out of range is ignored).
fn running_vni(network: &VirtualNetwork) -> Option<u32> {
    network.vni_in_use.filter(|v| (1..=MAX_VNI).contains(v))
}

/// Why a network may not use `routing_instance`, if it may not: the
/// project part of `domain:project:network:network` is the namespace, so
/// that a tenant cannot take (or block) another tenant's names.
fn routing_instance_problem(network: &VirtualNetwork, routing_instance: &str) -> Option<String> {
    let namespace = network.meta.namespace();
    let project = routing_instance.split(':').nth(1).unwrap_or_default();
    (project != namespace).then(|| {
        format!(
            "spec.routingInstance {routing_instance} names project {project:?}, but a routing instance belongs to the namespace of its network: use default-domain:{namespace}:<network>:<network> (or leave it unset)"
        )
    })
}

/// Whether `ip` is the broadcast address of IPv4 subnet `prefix`.
pub(super) fn is_ipv4_broadcast(prefix: trunkline_model::IpPrefix, ip: IpAddr) -> bool {
    match (prefix.network(), ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) if prefix.prefix_len() < 31 => {
            let host_bits = u32::MAX >> prefix.prefix_len();
            u32::from(ip) == u32::from(network) | host_bits
        }
        _ => false,
    }
}

/// Records in `findings` why a reference to network `name` (in field
/// `field`) does not resolve, if it does not.
pub(super) fn network_ref(
    networks: &Networks,
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

/// A network's decision: held by the nodes of its VMIs and virtual
/// gateways.
pub(super) fn decision_of(
    network: &VirtualNetwork,
    verdict: &NetworkVerdict,
    placement: &Placement,
    reports: &Reports,
) -> Decision {
    let name = network.name();
    let p = programmed_condition(
        reports,
        &network.meta,
        verdict.findings.accepted(),
        placement.network_nodes(&name),
        "no accepted VirtualMachineInterface bound to a logical interface, and no accepted VirtualGateway, uses this network, so no gateway node holds it",
        &[],
    );
    let mut findings = verdict.findings.clone();
    if verdict.fabric_exit == Some(FabricExit::Snat) {
        for gap in snat_family_gaps(network, placement.network_nodes(&name), placement) {
            findings.not_applied(gap);
        }
    }
    let derived = DerivedStatus::VirtualNetwork {
        vni: verdict.vni,
        routing_instance: verdict.routing_instance.clone(),
        mpls_label: verdict.mpls_label,
        encapsulation: verdict.encapsulation.clone(),
        subnets_summary: summary(network.subnets.iter().map(|s| s.prefix)),
        fabric_exit: verdict.fabric_exit,
    };
    decision(&network.meta, &findings, Some(p), derived)
}

/// What SNAT cannot do for `network` on the nodes holding it: it translates
/// to each node's underlay address, so only packets of that address's
/// family; a subnet of the other family gets nothing out by SNAT on that
/// node (its packets are counted drops, `snat_other_family`). One message
/// per such subnet.
fn snat_family_gaps(
    network: &VirtualNetwork,
    nodes: &BTreeSet<String>,
    placement: &Placement,
) -> Vec<String> {
    let family = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut gaps = Vec::new();
    for subnet in &network.subnets {
        let wanted = family(subnet.prefix.addr());
        let others: Vec<String> = nodes
            .iter()
            .filter_map(|node| {
                let underlay = placement.underlay_address(node)?;
                (family(underlay) != wanted).then(|| format!("{node} ({underlay})"))
            })
            .collect();
        if !others.is_empty() {
            gaps.push(format!(
                "spec.northSouth.snat does not apply to subnet {} on gateway node(s) {}: SNAT translates to the node's underlay address, which is not {wanted}, so the subnet's packets to destinations outside the network are dropped there (snat_other_family); give those nodes an underlay address of the subnet's family, or reach outside from that subnet through a DC gateway or a virtual gateway",
                subnet.prefix,
                others.join(", ")
            ));
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_address_is_the_last_one_of_an_ipv4_subnet() {
        let p = |s: &str| s.parse::<trunkline_model::IpPrefix>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_ipv4_broadcast(p("192.168.1.0/24"), ip("192.168.1.255")));
        assert!(!is_ipv4_broadcast(p("192.168.1.0/24"), ip("192.168.1.254")));
        assert!(is_ipv4_broadcast(p("10.0.0.0/30"), ip("10.0.0.3")));
        assert!(is_ipv4_broadcast(p("10.0.0.0/8"), ip("10.255.255.255")));
        assert!(!is_ipv4_broadcast(p("10.0.0.0/31"), ip("10.0.0.1")));
        assert!(!is_ipv4_broadcast(
            p("fd00::/64"),
            ip("fd00::ffff:ffff:ffff:ffff")
        ));
    }
}
