//! Property tests: decisions are a function of the set of objects, never of
//! the order they arrive in (the original's bug), and removing the holder
//! of a contended resource hands it to the next oldest claimant.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use trunkline_api::status::{condition, reason};
use trunkline_model::{
    Endpoint, ExternalVtepNetwork, Fabric, HaState, Kind, LogicalInterface, NamespacedName, Object,
    ObjectKey, Snapshot,
};
use trunkline_operator_core::{Change, Decider, Decisions, DerivedStatus, Settings, decide};

const NAMESPACES: [&str; 2] = ["a", "b"];
const PORTS: [&str; 3] = ["eth1", "eth2", "eth3"];
const SUBNETS: [&str; 3] = ["10.0.0.0/29", "10.0.1.0/29", "fd00::/125"];
const ADDRESSES: [&str; 7] = [
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.2", "10.0.9.9", "fd00::2", "fd00::3",
];
const MACS: [&str; 3] = [
    "02:00:00:00:00:01",
    "02-00-00-00-00-02",
    "02:00:00:00:00:02",
];
/// Labels objects may already run with (status): 16 and 17 collide with
/// what a fresh allocation hands out, 3 is out of range.
const LABELS: [u32; 4] = [16, 17, 40, 3];
/// External VTEP addresses: 192.0.2.100 is gw-0's underlay address.
const VTEP_ADDRESSES: [&str; 3] = ["192.0.2.100", "198.51.100.1", "198.51.100.2"];
/// Security group names: the last is never created.
const SECURITY_GROUPS: [&str; 4] = ["default", "web", "admin", "missing"];
/// Namespaced network policy names (networks name them by position; the
/// last is never created).
const NETWORK_POLICIES: [&str; 4] = ["p0", "p1", "p2", "missing"];

/// A small universe with many collisions: few routers, ports, VLANs,
/// addresses and creation seconds (ties included).
fn snapshot() -> impl Strategy<Value = Snapshot> {
    let routers = prop::collection::vec(
        (
            prop::sample::subsequence(PORTS.to_vec(), 0..=3),
            0i64..4,
            1u32..4,
            // The node's report: watermarks (kind, version), exceptions
            // (logical interfaces), cut or not.
            (
                prop::collection::vec((0usize..8, 0usize..4), 0..4),
                prop::collection::vec(0usize..10, 0..2),
                prop::bool::weighted(0.15),
            ),
        ),
        0..4,
    );
    let networks = prop::collection::vec(
        (
            0usize..2,
            0i64..4,
            prop::sample::subsequence(SUBNETS.to_vec(), 0..=3),
            prop::option::of(prop::sample::select(vec![4096u32, 4097, 9])),
            prop::option::of(prop::sample::select(vec![4096u32, 4098])),
            prop::option::of(prop::sample::select(LABELS.to_vec())),
        ),
        0..5,
    );
    let vmis = prop::collection::vec(
        (
            0usize..2,
            0usize..5,
            0i64..4,
            prop::sample::select(MACS.to_vec()),
            prop::sample::subsequence(ADDRESSES.to_vec(), 0..=2),
            prop::option::of(prop::sample::select(LABELS.to_vec())),
        ),
        0..7,
    );
    let vteps = prop::collection::vec(
        (
            prop::sample::select(VTEP_ADDRESSES.to_vec()),
            0i64..4,
            prop::collection::vec(
                (
                    0usize..2,
                    0usize..5,
                    prop::option::of((
                        prop::sample::select(MACS.to_vec()),
                        prop::sample::subsequence(ADDRESSES.to_vec(), 0..=1),
                    )),
                ),
                1..3,
            ),
        ),
        0..3,
    );
    let lis = prop::collection::vec(
        (0usize..4, 0usize..3, 0u16..3, 0usize..2, 0usize..8, 0i64..4),
        0..10,
    );
    // HA groups over the same ports (contended), in either mode, with the
    // members' reports.
    let groups = prop::collection::vec(
        (
            prop::collection::vec((0usize..4, 0usize..3, any::<u8>()), 1..3),
            0i64..4,
            any::<bool>(),
            0usize..5,
            prop::collection::vec(
                (
                    0usize..4,
                    0u8..3,
                    prop::collection::vec(any::<bool>(), 0..3),
                ),
                0..3,
            ),
        ),
        0..3,
    );
    // Per object: the version it changed at (0: none), the nodes it is
    // labelled for (a mask of gw-0..gw-3).
    let marks = prop::collection::vec((0usize..4, 0u8..16), 32);
    // Security groups of both namespaces, some named by VMIs, some by
    // other groups' rules, some missing.
    let security_groups = prop::collection::vec(
        (0usize..2, 0usize..3, 0i64..4, prop::option::of(0usize..4)),
        0..4,
    );
    // Network policies: namespaced ones (named by networks by position)
    // and the administrator's cluster policies, whose rules name networks
    // of either namespace (some missing).
    let policies = prop::collection::vec(
        (
            prop::bool::weighted(0.4),
            0usize..2,
            0usize..3,
            0i64..4,
            0u16..3,
            prop::collection::vec(
                (
                    0usize..2,
                    0usize..5,
                    0usize..2,
                    0usize..5,
                    0usize..3,
                    any::<bool>(),
                ),
                1..3,
            ),
        ),
        0..4,
    );
    (
        routers,
        networks,
        vmis,
        lis,
        vteps,
        (groups, marks, security_groups, policies),
    )
        .prop_map(
            |(routers, networks, vmis, lis, vteps, (groups, marks, security_groups, policies))| {
                let mut s = Snapshot::default();
                for (i, (ports, created, limit, _)) in routers.iter().enumerate() {
                    let mut r = router(&format!("gw-{i}"), *created, ports);
                    r.interface_limit = *limit;
                    // gw-0's tunnel endpoint is one an external VTEP may ask for.
                    r.fabric = Some(Fabric {
                        interface: "eth0".into(),
                        underlay_address: Some(format!("192.0.2.{}", 100 + i).parse().unwrap()),
                    });
                    s.physical_routers.push(r.into());
                }
                for (i, (ns, created, subnets, vni, running, label)) in
                    networks.into_iter().enumerate()
                {
                    let mut n = vn(NAMESPACES[ns], &format!("net{i}"), created, &subnets, vni);
                    n.vni_in_use = running;
                    n.mpls_label = label;
                    // North-south from the creation second: none, SNAT or IP fabric
                    // forwarding (whose overlapping subnets go to the oldest).
                    n.north_south = trunkline_model::NorthSouth {
                        snat: created % 3 == 1,
                        ip_fabric_forwarding: created % 3 == 2,
                    };
                    n.network_policies = match i % 4 {
                        0 => vec![],
                        1 => vec![NETWORK_POLICIES[0].to_owned()],
                        2 => vec![
                            NETWORK_POLICIES[0].to_owned(),
                            NETWORK_POLICIES[1].to_owned(),
                        ],
                        _ => vec![
                            NETWORK_POLICIES[2].to_owned(),
                            NETWORK_POLICIES[3].to_owned(),
                        ],
                    };
                    s.virtual_networks.push(n.into());
                }
                for (i, (ns, net, created, mac, ips, label)) in vmis.into_iter().enumerate() {
                    let mut v = vmi(
                        NAMESPACES[ns],
                        &format!("vmi{i}"),
                        created,
                        &format!("net{net}"),
                        mac,
                        &ips,
                    );
                    v.mpls_label = label;
                    // Groups by position: the default, one, two, a missing one;
                    // every fifth VMI without port security.
                    v.security_groups = match i % 4 {
                        0 => vec![],
                        1 => vec![SECURITY_GROUPS[1].to_owned()],
                        2 => vec![SECURITY_GROUPS[1].to_owned(), SECURITY_GROUPS[2].to_owned()],
                        _ => vec![SECURITY_GROUPS[3].to_owned()],
                    };
                    v.port_security = i % 5 != 4;
                    s.virtual_machine_interfaces.push(v.into());
                }
                // A DC gateway beside each external VTEP, at the next address (so
                // the two kinds contend for addresses), routing a prefix per network
                // (a default route, one inside the subnets, a public one).
                for (i, (_, created, joined)) in vteps.iter().enumerate() {
                    let address = VTEP_ADDRESSES[(i + 1) % VTEP_ADDRESSES.len()];
                    let mut g = dcgw(&format!("g{i}"), *created, address, &[]);
                    for (ns, net, _) in joined {
                        let network = NamespacedName::new(NAMESPACES[*ns], format!("net{net}"));
                        if g.networks.iter().any(|n| n.network == network) {
                            continue;
                        }
                        let prefix = ["0.0.0.0/0", "10.0.0.0/30", "198.51.100.0/24"][net % 3];
                        g.networks.push(trunkline_model::DcGatewayNetwork {
                            network,
                            routes: vec![trunkline_model::LabelledPrefix {
                                prefix: prefix.parse().unwrap(),
                                label: 16 + i as u32,
                            }],
                        });
                    }
                    s.dc_gateways.push(g.into());
                }
                for (ns, name, created, remote) in security_groups {
                    let name = SECURITY_GROUPS[name];
                    if s.security_groups.iter().any(|g| {
                        g.meta.key
                            == ObjectKey::namespaced(Kind::SecurityGroup, NAMESPACES[ns], name)
                    }) {
                        continue;
                    }
                    s.security_groups.push(
                        security_group(
                            NAMESPACES[ns],
                            name,
                            created,
                            remote.map(|r| SECURITY_GROUPS[r]),
                        )
                        .into(),
                    );
                }
                for (cluster, ns, name, created, priority, rules) in policies {
                    let policy =
                        network_policy(cluster, NAMESPACES[ns], name, created, priority, &rules);
                    if s.virtual_network_policies
                        .iter()
                        .any(|p| p.meta.key == policy.meta.key)
                    {
                        continue;
                    }
                    s.virtual_network_policies.push(policy.into());
                }
                for (i, (address, created, joined)) in vteps.into_iter().enumerate() {
                    let mut x = xvtep(&format!("x{i}"), created, address, &[]);
                    for (ns, net, host) in joined {
                        let network = NamespacedName::new(NAMESPACES[ns], format!("net{net}"));
                        if x.networks.iter().any(|n| n.network == network) {
                            continue;
                        }
                        x.networks.push(ExternalVtepNetwork {
                            network,
                            endpoints: host
                                .into_iter()
                                .map(|(mac, ips)| Endpoint {
                                    mac: mac.parse().unwrap(),
                                    ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
                                })
                                .collect(),
                        });
                    }
                    s.external_vteps.push(x.into());
                }
                for (i, (r, port, vlan, ns, v, created)) in lis.into_iter().enumerate() {
                    s.logical_interfaces.push(
                        li(
                            &format!("li{i}"),
                            created,
                            &format!("gw-{r}"),
                            PORTS[port],
                            vlan,
                            (NAMESPACES[ns], &format!("vmi{v}")),
                        )
                        .into(),
                    );
                }
                for (i, (members, created, stp, bpdu, reports)) in groups.into_iter().enumerate() {
                    let name = format!("ha{i}");
                    let mut members: Vec<(String, &str, u8)> = members
                        .into_iter()
                        .map(|(r, p, prio)| (format!("gw-{r}"), PORTS[p], prio))
                        .collect();
                    members.sort();
                    members.dedup_by(|a, b| a.0 == b.0);
                    let refs: Vec<(&str, &str)> =
                        members.iter().map(|(r, p, _)| (r.as_str(), *p)).collect();
                    let bpdu = format!("net{bpdu}");
                    let mut g = if stp {
                        ha(&name, created, &refs, Some(("a", &bpdu)))
                    } else {
                        fast(&name, created, &refs)
                    };
                    for (m, (_, _, prio)) in g.members.iter_mut().zip(&members) {
                        m.priority = *prio;
                    }
                    for (router, state, heard) in reports {
                        if let Some(r) = s.physical_routers.get_mut(router).map(Arc::make_mut) {
                            let state = [HaState::Active, HaState::Standby, HaState::Down]
                                [usize::from(state)];
                            let peers: Vec<(String, bool)> = members
                                .iter()
                                .zip(heard.iter().chain(std::iter::repeat(&true)))
                                .map(|((m, _, _), h)| (m.clone(), *h))
                                .collect();
                            let peers: Vec<(&str, bool)> =
                                peers.iter().map(|(m, h)| (m.as_str(), *h)).collect();
                            r.ha_reports.retain(|x| x.group != name);
                            r.ha_reports
                                .push(ha_report(&name, state, "Elected", &peers));
                        }
                    }
                    s.gateway_ha_groups.push(g.into());
                }
                // Node reports: watermarks per kind, exceptions on random logical
                // interfaces; and every object changed at some version, labelled
                // for some nodes.
                const KINDS: [Kind; 8] = [
                    Kind::LogicalInterface,
                    Kind::VirtualMachineInterface,
                    Kind::VirtualNetwork,
                    Kind::DCGateway,
                    Kind::ExternalVTEP,
                    Kind::GatewayHAGroup,
                    Kind::VirtualNetworkPolicy,
                    Kind::ClusterVirtualNetworkPolicy,
                ];
                const VERSIONS: [&str; 4] = ["5", "10", "20", "100"];
                for (i, (_, _, _, (through, exceptions, truncated))) in routers.iter().enumerate() {
                    let report = &mut Arc::make_mut(&mut s.physical_routers[i]).report;
                    for (kind, version) in through {
                        report
                            .programmed_through
                            .insert(KINDS[*kind], rv(VERSIONS[*version]));
                    }
                    for li in exceptions {
                        report
                            .exceptions
                            .insert(li_key(&format!("li{li}")), "cannot".into());
                    }
                    report.truncated = *truncated;
                }
                let objects: Vec<Object> = std::mem::take(&mut s)
                    .into_objects()
                    .enumerate()
                    .map(|(i, mut o)| {
                        let (version, nodes) = marks[i % marks.len()];
                        let meta = o.meta_mut();
                        meta.changed_at = (version > 0).then(|| rv(VERSIONS[version]));
                        meta.nodes = (0..4)
                            .filter(|n| nodes & (1 << n) != 0)
                            .map(|n| format!("gw-{n}"))
                            .collect();
                        o
                    })
                    .collect();
                for o in objects {
                    s.push(o);
                }
                s
            },
        )
}

/// A network policy of the generated universe: namespaced (`p<name>` in
/// `namespace`, its rules naming networks of that namespace) or the
/// administrator's (`c<name>`, rules naming networks of either namespace).
fn network_policy(
    cluster: bool,
    namespace: &str,
    name: usize,
    created: i64,
    priority: u16,
    rules: &[(usize, usize, usize, usize, usize, bool)],
) -> trunkline_model::VirtualNetworkPolicy {
    use trunkline_model::virtual_network_policy::{Action, NetworkRule};
    let rules = rules
        .iter()
        .map(|&(sns, snet, dns, dnet, action, one_way)| {
            let (sns, dns) = if cluster {
                (NAMESPACES[sns], NAMESPACES[dns])
            } else {
                (namespace, namespace)
            };
            // Never the same network twice (the schema refuses it).
            let dnet = if sns == dns && snet == dnet {
                (dnet + 1) % 5
            } else {
                dnet
            };
            NetworkRule {
                action: [Action::Allow, Action::Deny, Action::Pass][action],
                protocol: trunkline_model::Protocol::Tcp,
                ports: Some(22..=22),
                source: NamespacedName::new(sns, format!("net{snet}")),
                destination: NamespacedName::new(dns, format!("net{dnet}")),
                both_ways: !one_way,
            }
        })
        .collect();
    let meta = if cluster {
        trunkline_model::Meta::cluster(
            Kind::ClusterVirtualNetworkPolicy,
            format!("c{name}"),
            Some(created),
            1,
        )
    } else {
        trunkline_model::Meta::namespaced(
            Kind::VirtualNetworkPolicy,
            namespace,
            NETWORK_POLICIES[name],
            Some(created),
            1,
        )
    };
    trunkline_model::VirtualNetworkPolicy {
        meta,
        priority: cluster.then_some(priority),
        rules,
    }
}

fn shuffled(s: &Snapshot, seeds: &[Index]) -> Snapshot {
    fn shuffle<T: Clone>(items: &[T], seeds: &[Index]) -> Vec<T> {
        let mut items = items.to_vec();
        for (i, seed) in seeds.iter().enumerate() {
            if items.len() > 1 {
                let j = seed.index(items.len());
                let len = items.len();
                items.swap(i % len, j);
            }
        }
        items
    }
    Snapshot {
        physical_routers: shuffle(&s.physical_routers, seeds),
        logical_interfaces: shuffle(&s.logical_interfaces, seeds),
        virtual_machine_interfaces: shuffle(&s.virtual_machine_interfaces, seeds),
        virtual_networks: shuffle(&s.virtual_networks, seeds),
        gateway_ha_groups: shuffle(&s.gateway_ha_groups, seeds),
        virtual_gateways: shuffle(&s.virtual_gateways, seeds),
        external_vteps: shuffle(&s.external_vteps, seeds),
        dc_gateways: shuffle(&s.dc_gateways, seeds),
        security_groups: shuffle(&s.security_groups, seeds),
        virtual_network_policies: shuffle(&s.virtual_network_policies, seeds),
    }
}

/// The changes that turn the objects of `old` into those of `new`:
/// deletions of what `new` lacks and upserts of everything `new` holds
/// (changed or not), in an order `seeds` shuffles.
fn changes(old: &Snapshot, new: &Snapshot, seeds: &[Index]) -> Vec<Change> {
    let kept: BTreeSet<ObjectKey> = new
        .clone()
        .into_objects()
        .map(|o| o.key().clone())
        .collect();
    let mut changes: Vec<Change> = old
        .clone()
        .into_objects()
        .map(|o| o.key().clone())
        .filter(|k| !kept.contains(k))
        .map(Change::Delete)
        .collect();
    changes.extend(new.clone().into_objects().map(Change::Upsert));
    let mut order: Vec<usize> = (0..changes.len()).collect();
    for (i, seed) in seeds.iter().enumerate() {
        if order.len() > 1 {
            let j = seed.index(order.len());
            let len = order.len();
            order.swap(i % len, j);
        }
    }
    order.into_iter().map(|i| changes[i].clone()).collect()
}

/// Makes most objects of `s` valid, so that many are accepted, placed
/// and programmed: every router has every port, VMIs have unique MACs and
/// no address, and bind networks (logical interfaces VMIs) that exist.
fn befriend(s: &mut Snapshot) {
    for r in &mut s.physical_routers {
        let r = Arc::make_mut(r);
        r.interfaces = PORTS
            .iter()
            .map(|p| trunkline_model::PhysicalInterface::named(*p))
            .collect();
        r.interface_limit = 8;
    }
    let networks: Vec<NamespacedName> = s.virtual_networks.iter().map(|n| n.name()).collect();
    for (i, v) in s
        .virtual_machine_interfaces
        .iter_mut()
        .map(Arc::make_mut)
        .enumerate()
    {
        v.ips.clear();
        v.mac = Some(trunkline_model::EthernetAddress([2, 0, 0, 0, 1, i as u8]));
        if let Some(n) = networks.iter().find(|n| n.namespace == v.meta.namespace()) {
            v.network = n.name.clone();
        }
    }
    let vmis: Vec<NamespacedName> = s
        .virtual_machine_interfaces
        .iter()
        .map(|v| v.name())
        .collect();
    for (i, li) in s
        .logical_interfaces
        .iter_mut()
        .map(Arc::make_mut)
        .enumerate()
    {
        if !vmis.is_empty() {
            li.vmi = vmis[i % vmis.len()].clone();
        }
    }
    // Labelled for every node, and reported on (at random versions).
    for r in &mut s.physical_routers {
        let r = Arc::make_mut(r);
        for kind in [
            Kind::LogicalInterface,
            Kind::VirtualMachineInterface,
            Kind::VirtualNetwork,
            Kind::VirtualGateway,
            Kind::ExternalVTEP,
            Kind::GatewayHAGroup,
        ] {
            r.report
                .programmed_through
                .entry(kind)
                .or_insert_with(|| rv("20"));
        }
    }
    let objects: Vec<Object> = std::mem::take(s)
        .into_objects()
        .map(|mut o| {
            let meta = o.meta_mut();
            meta.changed_at.get_or_insert_with(|| rv("10"));
            meta.nodes = (0..4).map(|n| format!("gw-{n}")).collect();
            o
        })
        .collect();
    for o in objects {
        s.push(o);
    }
}

/// `current` with the routers' reports of `generated` (by router name).
fn with_reports_of(current: &Snapshot, generated: &Snapshot) -> Snapshot {
    let mut next = current.clone();
    for router in &mut next.physical_routers {
        let router = Arc::make_mut(router);
        let from = generated
            .physical_routers
            .iter()
            .find(|r| r.meta.name() == router.meta.name());
        router.report = from.map(|r| r.report.clone()).unwrap_or_default();
        router.ha_reports = from.map(|r| r.ha_reports.clone()).unwrap_or_default();
    }
    next
}

/// `current` with the node labels and resource versions of the objects
/// of `generated` (by key).
fn with_marks_of(current: &Snapshot, generated: &Snapshot) -> Snapshot {
    let marks: BTreeMap<ObjectKey, trunkline_model::Meta> = generated
        .clone()
        .into_objects()
        .map(|o| (o.key().clone(), o.meta().clone()))
        .collect();
    let mut next = Snapshot::default();
    for mut o in current.clone().into_objects() {
        if let Some(m) = marks.get(o.key()) {
            o.meta_mut().changed_at = m.changed_at.clone();
            o.meta_mut().nodes = m.nodes.clone();
        }
        next.push(o);
    }
    next
}

/// `changes` cut into batches at the points `cuts` pick.
fn batches(changes: Vec<Change>, cuts: &[Index]) -> Vec<Vec<Change>> {
    let mut points: BTreeSet<usize> = cuts.iter().map(|c| c.index(changes.len() + 1)).collect();
    points.insert(changes.len());
    let mut out = Vec::new();
    let mut from = 0;
    for to in points {
        out.push(changes[from..to].to_vec());
        from = to;
    }
    out
}

fn accepted_set(d: &Decisions) -> BTreeSet<ObjectKey> {
    d.iter()
        .filter(|x| x.is_accepted())
        .map(|x| x.key.clone())
        .collect()
}

fn port(li: &LogicalInterface) -> (String, String, u16) {
    (
        li.physical_router.clone(),
        li.physical_interface.clone(),
        li.vlan,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever order the objects arrive in, every decision is the same.
    #[test]
    fn decisions_do_not_depend_on_arrival_order(s in snapshot(), seeds in prop::collection::vec(any::<Index>(), 0..16)) {
        let first = decide(&s);
        let second = decide(&shuffled(&s, &seeds));
        prop_assert_eq!(accepted_set(&first), accepted_set(&second));
        prop_assert_eq!(first, second);
    }

    /// Objects arriving one at a time: at every step the decision is the one
    /// of the set seen so far, and the last step equals the whole set's.
    #[test]
    fn arriving_one_by_one_ends_where_the_whole_set_is(s in snapshot(), seeds in prop::collection::vec(any::<Index>(), 0..16)) {
        let order = shuffled(&s, &seeds);
        let mut seen = Snapshot { physical_routers: order.physical_routers.clone(), ..Snapshot::default() };
        for li in &order.logical_interfaces {
            seen.logical_interfaces.push(li.clone());
            let _ = decide(&seen);
        }
        for v in &order.virtual_machine_interfaces {
            seen.virtual_machine_interfaces.push(v.clone());
            let _ = decide(&seen);
        }
        for n in &order.virtual_networks {
            seen.virtual_networks.push(n.clone());
        }
        for x in &order.external_vteps {
            seen.external_vteps.push(x.clone());
            let _ = decide(&seen);
        }
        for g in &order.gateway_ha_groups {
            seen.gateway_ha_groups.push(g.clone());
            let _ = decide(&seen);
        }
        for g in &order.dc_gateways {
            seen.dc_gateways.push(g.clone());
            let _ = decide(&seen);
        }
        for g in &order.security_groups {
            seen.security_groups.push(g.clone());
            let _ = decide(&seen);
        }
        for p in &order.virtual_network_policies {
            seen.virtual_network_policies.push(p.clone());
            let _ = decide(&seen);
        }
        prop_assert_eq!(decide(&seen), decide(&s));
    }

    /// The operator's incremental decisions: after any sequence of
    /// changes, in batches of any size (single objects included), the
    /// decisions kept up to date equal those decided from scratch on the
    /// same objects, and every decision that changed is reported changed.
    ///
    /// A step moves to a new set of objects, or changes only what the
    /// nodes report, or only the objects' node labels and resource
    /// versions (what the operator's own writes and the nodes' reports
    /// change at run time). The node labels the decider wants are the
    /// ones decided from scratch too.
    #[test]
    fn incremental_decisions_equal_decisions_from_scratch(
        steps in prop::collection::vec(
            (
                snapshot(),
                prop::collection::vec(any::<Index>(), 0..32),
                prop::collection::vec(any::<Index>(), 0..6),
                0usize..3,
                any::<bool>(),
            ),
            1..5,
        ),
    ) {
        let mut decider = Decider::new(Settings::default());
        let mut current = Snapshot::default();
        for (mut generated, seeds, cuts, mode, friendly) in steps {
            if friendly {
                befriend(&mut generated);
            }
            let next = match mode {
                0 => generated,
                1 => with_reports_of(&current, &generated),
                _ => with_marks_of(&current, &generated),
            };
            for batch in batches(changes(&current, &next, &seeds), &cuts) {
                let before = decider.decisions().clone();
                let relabelled_before = decider.all_node_labels().clone();
                let changed = decider.apply(batch);
                let relabelled = decider.take_relabelled();
                let mut scratch = Decider::new(Settings::default());
                scratch.apply(decider.snapshot().into_objects().map(Change::Upsert));
                prop_assert_eq!(decider.decisions(), scratch.decisions());
                prop_assert_eq!(decider.decisions(), &decide(&decider.snapshot()));
                prop_assert_eq!(decider.all_node_labels(), scratch.all_node_labels());
                let keys: BTreeSet<&ObjectKey> = before.iter().map(|d| &d.key)
                    .chain(scratch.decisions().iter().map(|d| &d.key)).collect();
                for key in keys {
                    if before.get(key) != scratch.decisions().get(key) {
                        prop_assert!(changed.contains(key), "{} changed unreported", key);
                    }
                }
                let keys: BTreeSet<&ObjectKey> = relabelled_before.keys()
                    .chain(scratch.all_node_labels().keys()).collect();
                for key in keys {
                    if relabelled_before.get(key) != scratch.all_node_labels().get(key) {
                        prop_assert!(relabelled.contains(key), "{} relabelled unreported", key);
                    }
                }
            }
            prop_assert_eq!(decider.decisions(), &decide(&next));
            current = next;
        }
    }

    /// Invariants of the accepted set: nothing contended is accepted twice,
    /// and an accepted object's references are accepted.
    #[test]
    fn the_accepted_set_is_consistent(s in snapshot()) {
        let d = decide(&s);
        let mut ports = BTreeSet::new();
        let mut per_router: BTreeMap<&str, u32> = BTreeMap::new();
        for li in &s.logical_interfaces {
            if d.get(&li.meta.key).unwrap().is_accepted() {
                prop_assert!(ports.insert(port(li)), "VLAN accepted twice: {:?}", port(li));
                prop_assert!(d.get(&vmi_key(&li.vmi.namespace, &li.vmi.name)).unwrap().is_accepted());
                *per_router.entry(li.physical_router.as_str()).or_default() += 1;
            }
        }
        for r in &s.physical_routers {
            prop_assert!(per_router.get(r.meta.name()).copied().unwrap_or(0) <= r.interface_limit);
        }
        let mut addresses = BTreeSet::new();
        let mut macs = BTreeSet::new();
        for v in &s.virtual_machine_interfaces {
            if d.get(&v.meta.key).unwrap().is_accepted() {
                prop_assert!(d.get(&vn_key(v.meta.namespace(), &v.network)).unwrap().is_accepted());
                for ip in &v.ips {
                    prop_assert!(addresses.insert((v.meta.namespace().to_owned(), v.network.clone(), *ip)));
                }
                prop_assert!(macs.insert((v.meta.namespace().to_owned(), v.network.clone(), v.mac)));
            }
        }
        let mut vnis = BTreeSet::new();
        for n in &s.virtual_networks {
            if let DerivedStatus::VirtualNetwork { vni: Some(vni), .. } = &d.get(&n.meta.key).unwrap().derived {
                prop_assert!(vnis.insert(*vni), "VNI {} in use twice", vni);
            }
        }
        // Labels: from 16 up, unique across networks and VMIs, and only for
        // accepted objects.
        let mut labels = BTreeSet::new();
        let keys = s.virtual_networks.iter().map(|n| &n.meta.key)
            .chain(s.virtual_machine_interfaces.iter().map(|v| &v.meta.key));
        for key in keys {
            let decision = d.get(key).unwrap();
            match label(&d, key) {
                Some(l) => {
                    prop_assert!(decision.is_accepted(), "{} has label {} but is not accepted", key, l);
                    prop_assert!((16..1 << 19).contains(&l), "{}: label {} (the upper half is the routed labels)", key, l);
                    prop_assert!(labels.insert(l), "label {} in use twice", l);
                }
                None => prop_assert!(!decision.is_accepted(), "{} is accepted without a label", key),
            }
        }
        // An external VTEP's hosts never share an accepted VMI's address.
        for x in &s.external_vteps {
            if !d.get(&x.meta.key).unwrap().is_accepted() {
                continue;
            }
            for joined in &x.networks {
                for host in &joined.endpoints {
                    for ip in &host.ips {
                        prop_assert!(!addresses.contains(&(joined.network.namespace.clone(), joined.network.name.clone(), *ip)),
                            "{} and a VMI both hold {}", x.meta.key, ip);
                    }
                }
            }
        }
        // Ready is exactly Accepted (with all of its spec applied) and
        // Programmed; for a gateway HA group, also exactly one member
        // active; for security groups, enforced and every group named found.
        for x in d.iter() {
            let programmed = x.condition(condition::PROGRAMMED).is_none_or(|p| p.status);
            let serving = match &x.derived {
                DerivedStatus::GatewayHaGroup { active_member, .. } => active_member.is_some(),
                _ => true,
            };
            // Security groups: Enforced stands for Programmed, and a
            // missing group named keeps the user's object from Ready.
            let enforced = x.condition(condition::ENFORCED).is_none_or(|p| p.status);
            let groups_found = x.condition(condition::READY).is_none_or(|r| r.reason != reason::GROUP_NOT_FOUND);
            // Accepted as it runs with part of its spec refused (a running
            // network's new VNI, say): by design not Ready.
            let applied = x.condition(condition::ACCEPTED).is_none_or(|a| !a.message.starts_with("accepted as it runs, but part of its spec is not applied"));
            prop_assert_eq!(x.is_ready(), x.is_accepted() && programmed && serving && enforced && groups_found && applied, "{} {:?}", x.key, x.conditions);
            // A rejected object is never Programmed, whatever the reports.
            if !x.is_accepted() {
                prop_assert!(x.condition(condition::PROGRAMMED).is_none_or(|p| !p.status && !p.unknown));
            }
            // Unknown only from a cut report, and never True.
            if let Some(p) = x.condition(condition::PROGRAMMED).filter(|p| p.unknown) {
                prop_assert!(!p.status);
                prop_assert!(s.physical_routers.iter().any(|r| r.report.truncated));
            }
        }
    }

    /// Removing the holder of a VLAN hands it to the next oldest claimant,
    /// which is then not refused for that VLAN.
    #[test]
    fn removing_a_vlan_holder_promotes_the_next_oldest(s in snapshot()) {
        let d = decide(&s);
        for loser in &s.logical_interfaces {
            let a = d.get(&loser.meta.key).unwrap().condition(condition::ACCEPTED).unwrap();
            if a.reason != reason::CONFLICT || !a.message.contains("VLAN") {
                continue;
            }
            let holder = s.logical_interfaces.iter()
                .filter(|l| port(l) == port(loser))
                .min_by_key(|l| l.meta.age())
                .unwrap();
            prop_assert!(a.message.contains(&format!("LogicalInterface {}", holder.meta.name())), "{}", a.message);
            let mut without = s.clone();
            without.logical_interfaces.retain(|l| l.meta.key != holder.meta.key);
            let next = without.logical_interfaces.iter()
                .filter(|l| port(l) == port(loser))
                .min_by_key(|l| l.meta.age())
                .unwrap();
            let after = decide(&without);
            let a = after.get(&next.meta.key).unwrap().condition(condition::ACCEPTED).unwrap();
            let vlan_taken = format!("VLAN {} on {}/{} is already used", loser.vlan, loser.physical_router, loser.physical_interface);
            prop_assert!(!a.message.contains(&vlan_taken), "{} still refused: {}", next.meta.name(), a.message);
            // Once nothing else blocks it (no slot limit, its VMI served
            // nowhere else), it is accepted.
            let served_elsewhere = a.message.contains("is already bound on PhysicalRouter")
                || a.message.contains("is served by GatewayHAGroup");
            if resolved(&after, &next.meta.key).status
                && !a.message.contains("interfaceLimit")
                && !served_elsewhere
            {
                prop_assert!(a.status, "{}: {:?}", next.meta.name(), a);
            }
        }
    }

    /// Removing the holder of an address hands it to the next oldest
    /// claimant (a VMI, or an external VTEP with a host at that address).
    #[test]
    fn removing_an_address_holder_promotes_the_next_oldest(s in snapshot()) {
        let d = decide(&s);
        for loser in &s.virtual_machine_interfaces {
            let network = loser.network_name();
            for ip in &loser.ips {
                let claimants = |s: &Snapshot| -> Vec<ObjectKey> {
                    let vmis = s.virtual_machine_interfaces.iter()
                        .filter(|v| v.network_name() == network && v.ips.contains(ip))
                        .map(|v| &v.meta);
                    let vteps = s.external_vteps.iter()
                        .filter(|x| x.networks.iter().any(|n| n.network == network
                            && n.endpoints.iter().any(|h| h.ips.contains(ip))))
                        .map(|x| &x.meta);
                    let mut c: Vec<_> = vmis.chain(vteps).collect();
                    c.sort_by_key(|m| m.age());
                    c.into_iter().map(|m| m.key.clone()).collect()
                };
                let before = claimants(&s);
                if before.len() < 2 || before[0] == loser.meta.key {
                    continue;
                }
                let text = format!("address {ip} is already used by {}", before[0]);
                prop_assert!(accepted(&d, &loser.meta.key).message.contains(&text));
                let mut without = s.clone();
                without.virtual_machine_interfaces.retain(|v| v.meta.key != before[0]);
                without.external_vteps.retain(|x| x.meta.key != before[0]);
                let next = &claimants(&without)[0];
                let after = decide(&without);
                let message = &accepted(&after, next).message;
                prop_assert!(!message.contains(&format!("address {ip} is already used")), "{}", message);
            }
        }
    }

    /// Reading back the labels in use (as after an operator restart) changes
    /// no label, even when new objects (some of them "older") arrive
    /// meanwhile; deleting a holder frees its label for the next pass.
    #[test]
    fn labels_are_stable_across_restarts(s in snapshot(), extra in 0usize..3) {
        let d = decide(&s);
        let mut restarted = s.clone();
        for n in &mut restarted.virtual_networks {
            let n = Arc::make_mut(n);
            n.mpls_label = label(&d, &n.meta.key);
        }
        for v in &mut restarted.virtual_machine_interfaces {
            let v = Arc::make_mut(v);
            v.mpls_label = label(&d, &v.meta.key);
        }
        let settled = restarted.clone();
        for i in 0..extra {
            restarted.virtual_networks.push(vn("a", &format!("late{i}"), -1, &[], None).into());
            restarted.virtual_machine_interfaces.push(vmi("a", &format!("late{i}"), -1, &format!("late{i}"), "02:00:00:00:00:99", &[]).into());
        }
        let again = decide(&restarted);
        let keys = s.virtual_networks.iter().map(|n| &n.meta.key)
            .chain(s.virtual_machine_interfaces.iter().map(|v| &v.meta.key));
        for key in keys {
            prop_assert_eq!(label(&d, key), label(&again, key), "{}", key);
        }
        // Deleting the holder of a label: nobody else takes it over while
        // the others keep theirs, and the next allocation may reuse it.
        if let Some(gone) = settled.virtual_machine_interfaces.first() {
            let mut without = settled.clone();
            without.virtual_machine_interfaces.remove(0);
            let after = decide(&without);
            for v in &without.virtual_machine_interfaces {
                if after.get(&v.meta.key).unwrap().is_accepted() == d.get(&v.meta.key).unwrap().is_accepted() {
                    prop_assert_eq!(label(&after, &v.meta.key), label(&d, &v.meta.key), "{} after {} is gone", v.meta.key, gone.meta.key);
                }
            }
        }
    }

    /// Reading back the VNIs in use (as after an operator restart) changes
    /// no VNI.
    #[test]
    fn vnis_are_stable_across_restarts(s in snapshot(), extra in 0usize..3) {
        let d = decide(&s);
        let mut restarted = s.clone();
        for n in &mut restarted.virtual_networks {
            let n = Arc::make_mut(n);
            if let DerivedStatus::VirtualNetwork { vni, .. } = &d.get(&n.meta.key).unwrap().derived {
                n.vni_in_use = *vni;
            }
        }
        // New networks arrive meanwhile, some of them "older" than the rest.
        for i in 0..extra {
            restarted.virtual_networks.push(vn("a", &format!("late{i}"), -1, &[], None).into());
        }
        let again = decide(&restarted);
        for n in &s.virtual_networks {
            let vni = |d: &Decisions| match &d.get(&n.meta.key).unwrap().derived {
                DerivedStatus::VirtualNetwork { vni, .. } => *vni,
                _ => None,
            };
            if vni(&d).is_some() {
                prop_assert_eq!(vni(&d), vni(&again), "{}", n.meta.key);
            }
        }
    }
}
