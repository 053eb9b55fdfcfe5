//! Builders for domain objects, so that each test states only what matters.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use trunkline_api::status::condition;
use trunkline_model::{
    Encapsulation, Endpoint, ExternalVtep, ExternalVtepNetwork, ForwardingMode, GatewayHaGroup,
    HaMember, HaMode, HaPeerView, HaReport, HaState, InterfaceType, IpPrefix, Kind,
    LogicalInterface, Meta, NamespacedName, ObjectKey, PhysicalInterface, PhysicalRouter,
    ResourceVersion, Snapshot, Subnet, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
};
use trunkline_model::{Family, Protocol, Remote, Rule, SecurityGroup};
use trunkline_operator_core::{ConditionDecision, Decisions};

pub fn router(name: &str, created: i64, interfaces: &[&str]) -> PhysicalRouter {
    PhysicalRouter {
        meta: Meta::cluster(Kind::PhysicalRouter, name, Some(created), 1),
        interfaces: interfaces
            .iter()
            .map(|s| PhysicalInterface::named(*s))
            .collect(),
        fabric: None,
        interface_limit: 4352,
        report: Default::default(),
        ha_reports: vec![],
        defects: vec![],
    }
}

pub fn li(
    name: &str,
    created: i64,
    router: &str,
    port: &str,
    vlan: u16,
    vmi: (&str, &str),
) -> LogicalInterface {
    LogicalInterface {
        meta: Meta::cluster(Kind::LogicalInterface, name, Some(created), 1),
        physical_router: router.into(),
        physical_interface: port.into(),
        vlan,
        interface_type: InterfaceType::L2,
        vmi: NamespacedName::new(vmi.0, vmi.1),
    }
}

pub fn vmi(
    ns: &str,
    name: &str,
    created: i64,
    network: &str,
    mac: &str,
    ips: &[&str],
) -> VirtualMachineInterface {
    VirtualMachineInterface {
        meta: Meta::namespaced(Kind::VirtualMachineInterface, ns, name, Some(created), 1),
        network: network.into(),
        mac: Some(mac.parse().unwrap()),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        active_active: vec![],
        allowed_address_pairs: vec![],
        port_security: true,
        security_groups: Vec::new(),
        mpls_label: None,
        defects: vec![],
    }
}

/// A security group whose ingress allows TCP 22 from `remote` (a group
/// name), or from anyone.
pub fn security_group(ns: &str, name: &str, created: i64, remote: Option<&str>) -> SecurityGroup {
    SecurityGroup {
        meta: Meta::namespaced(Kind::SecurityGroup, ns, name, Some(created), 1),
        ingress: vec![Rule {
            family: Family::V4,
            protocol: Protocol::Tcp,
            ports: Some(22..=22),
            remote: remote.map_or(Remote::Any, |r| Remote::Group(r.to_owned())),
        }],
        egress: vec![Rule::any(Family::V4, Remote::Any)],
        defects: vec![],
    }
}

pub fn subnet(cidr: &str, gateway: Option<&str>) -> Subnet {
    let prefix: IpPrefix = cidr.parse().unwrap();
    Subnet::new(prefix, gateway.map(|g| g.parse().unwrap()))
}

pub fn vn(
    ns: &str,
    name: &str,
    created: i64,
    subnets: &[&str],
    vni: Option<u32>,
) -> VirtualNetwork {
    VirtualNetwork {
        meta: Meta::namespaced(Kind::VirtualNetwork, ns, name, Some(created), 1),
        subnets: subnets.iter().map(|c| subnet(c, None)).collect(),
        vni,
        vni_in_use: None,
        forwarding_mode: ForwardingMode::L2L3,
        flood_unknown_unicast: false,
        routing_instance: None,
        encapsulation: None,
        encapsulation_in_use: vec![],
        mpls_label: None,
        north_south: Default::default(),
        fabric_exit_in_use: None,
        mtu: None,
        dhcp: Default::default(),
        network_policies: vec![],
        defects: vec![],
    }
}

pub fn vgw(
    name: &str,
    created: i64,
    interface: &str,
    network: (&str, &str),
    subnets: &[&str],
    nodes: &[&str],
) -> VirtualGateway {
    VirtualGateway {
        meta: Meta::cluster(Kind::VirtualGateway, name, Some(created), 1),
        interface: interface.into(),
        network: NamespacedName::new(network.0, network.1),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        routes: vec![],
        nodes: nodes.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        defects: vec![],
    }
}

pub fn ha(
    name: &str,
    created: i64,
    members: &[(&str, &str)],
    bpdu: Option<(&str, &str)>,
) -> GatewayHaGroup {
    GatewayHaGroup {
        meta: Meta::cluster(Kind::GatewayHAGroup, name, Some(created), 1),
        mode: HaMode::Stp,
        members: members
            .iter()
            .map(|(r, i)| HaMember {
                physical_router: r.to_string(),
                physical_interface: i.to_string(),
                priority: 100,
            })
            .collect(),
        bpdu_network: bpdu.map(|(ns, n)| NamespacedName::new(ns, n)),
        timers: None,
        preempt: true,
    }
}

/// A group in mode Fast (default timers).
pub fn fast(name: &str, created: i64, members: &[(&str, &str)]) -> GatewayHaGroup {
    GatewayHaGroup {
        mode: HaMode::Fast,
        ..ha(name, created, members, None)
    }
}

/// A node's report on group `group`: its state, reason, and whether it
/// hears each of `peers`.
pub fn ha_report(group: &str, state: HaState, reason: &str, peers: &[(&str, bool)]) -> HaReport {
    HaReport {
        group: group.into(),
        generation: 1,
        state,
        since: 1_000,
        reason: reason.into(),
        message: None,
        peers: peers
            .iter()
            .map(|(p, heard)| HaPeerView {
                physical_router: p.to_string(),
                heard: *heard,
                since: 2_000,
            })
            .collect(),
    }
}

/// The hosts behind an external VTEP in one network: `(mac, ips)`.
pub type Hosts<'a> = &'a [(&'a str, &'a [&'a str])];

/// An external VTEP joining `networks` (namespace, name), each with hosts.
pub fn xvtep(
    name: &str,
    created: i64,
    address: &str,
    networks: &[((&str, &str), Hosts<'_>)],
) -> ExternalVtep {
    ExternalVtep {
        meta: Meta::cluster(Kind::ExternalVTEP, name, Some(created), 1),
        address: Some(address.parse().unwrap()),
        encapsulation: Encapsulation::Vxlan,
        networks: networks
            .iter()
            .map(|((ns, n), hosts)| ExternalVtepNetwork {
                network: NamespacedName::new(*ns, *n),
                endpoints: hosts
                    .iter()
                    .map(|(mac, ips)| Endpoint {
                        mac: mac.parse().unwrap(),
                        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
                    })
                    .collect(),
            })
            .collect(),
        defects: vec![],
    }
}

/// A resource version.
pub fn rv(text: &str) -> ResourceVersion {
    ResourceVersion::parse(text).unwrap()
}

/// Node `node` reports it holds the objects of `keys` as they are: they
/// are labelled for it (and changed at resource version 10 when they have
/// no version yet), and its watermark of their kinds covers them.
pub fn hold(s: &mut Snapshot, node: &str, keys: &[ObjectKey]) {
    let objects = std::mem::take(s).into_objects().map(|mut o| {
        if keys.contains(o.key()) {
            let meta = o.meta_mut();
            meta.nodes.insert(node.to_owned());
            meta.changed_at.get_or_insert_with(|| rv("10"));
        }
        o
    });
    let objects: Vec<_> = objects.collect();
    let versions: Vec<(Kind, ResourceVersion)> = objects
        .iter()
        .filter(|o| keys.contains(o.key()))
        .filter_map(|o| Some((o.key().kind, o.meta().changed_at.clone()?)))
        .collect();
    for o in objects {
        s.push(o);
    }
    let router = s
        .physical_routers
        .iter_mut()
        .find(|r| r.meta.name() == node)
        .unwrap_or_else(|| panic!("no router {node}"));
    let router = Arc::make_mut(router);
    for (kind, version) in versions {
        let through = router
            .report
            .programmed_through
            .entry(kind)
            .or_insert(version.clone());
        if *through < version {
            *through = version;
        }
    }
}

pub fn li_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::LogicalInterface, name)
}

pub fn vmi_key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced(Kind::VirtualMachineInterface, ns, name)
}

pub fn vn_key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced(Kind::VirtualNetwork, ns, name)
}

pub fn vgw_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::VirtualGateway, name)
}

pub fn xvtep_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::ExternalVTEP, name)
}

pub fn ha_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::GatewayHAGroup, name)
}

/// The condition `type_` of `key`; panics when there is none.
pub fn cond<'a>(d: &'a Decisions, key: &ObjectKey, type_: &str) -> &'a ConditionDecision {
    d.get(key)
        .unwrap_or_else(|| panic!("no decision for {key}"))
        .condition(type_)
        .unwrap_or_else(|| panic!("no {type_} on {key}"))
}

pub fn accepted<'a>(d: &'a Decisions, key: &ObjectKey) -> &'a ConditionDecision {
    cond(d, key, condition::ACCEPTED)
}

/// The label a network or VMI got.
pub fn label(d: &Decisions, key: &ObjectKey) -> Option<u32> {
    match &d
        .get(key)
        .unwrap_or_else(|| panic!("no decision for {key}"))
        .derived
    {
        trunkline_operator_core::DerivedStatus::VirtualNetwork { mpls_label, .. }
        | trunkline_operator_core::DerivedStatus::VirtualMachineInterface { mpls_label, .. } => {
            *mpls_label
        }
        other => panic!("{key} has no label: {other:?}"),
    }
}

pub fn resolved<'a>(d: &'a Decisions, key: &ObjectKey) -> &'a ConditionDecision {
    cond(d, key, condition::RESOLVED_REFS)
}

/// The routes of a DC gateway in one network: `(prefix, label)`.
pub type Routes<'a> = &'a [(&'a str, u32)];

/// A DC gateway serving `networks` (namespace, name), each with routes.
#[allow(dead_code)]
pub fn dcgw(
    name: &str,
    created: i64,
    address: &str,
    networks: &[((&str, &str), Routes<'_>)],
) -> trunkline_model::DcGateway {
    trunkline_model::DcGateway {
        meta: Meta::cluster(Kind::DCGateway, name, Some(created), 1),
        address: Some(address.parse().unwrap()),
        encapsulation: Encapsulation::MplsOverUdp,
        networks: networks
            .iter()
            .map(|((ns, n), routes)| trunkline_model::DcGatewayNetwork {
                network: NamespacedName::new(*ns, *n),
                routes: routes
                    .iter()
                    .map(|(p, label)| trunkline_model::LabelledPrefix {
                        prefix: p.parse().unwrap(),
                        label: *label,
                    })
                    .collect(),
            })
            .collect(),
        defects: vec![],
    }
}

#[allow(dead_code)]
pub fn dcgw_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::DCGateway, name)
}
