//! Property tests: decisions are a function of the set of objects, never of
//! the order they arrive in (the original's bug), and removing the holder
//! of a contended resource hands it to the next oldest claimant.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use trunkline_api::status::{condition, reason};
use trunkline_model::{
    Endpoint, ExternalVtepNetwork, Fabric, HaState, LogicalInterface, NamespacedName, ObjectKey,
    Snapshot,
};
use trunkline_operator_core::{Decisions, DerivedStatus, decide};

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

/// A small universe with many collisions: few routers, ports, VLANs,
/// addresses and creation seconds (ties included).
fn snapshot() -> impl Strategy<Value = Snapshot> {
    let routers = prop::collection::vec(
        (
            prop::sample::subsequence(PORTS.to_vec(), 0..=3),
            0i64..4,
            1u32..4,
            prop::collection::vec((0usize..10, 0usize..3, 0u16..3, 1i64..3), 0..4),
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
    (routers, networks, vmis, lis, vteps, groups).prop_map(
        |(routers, networks, vmis, lis, vteps, groups)| {
            let mut s = Snapshot::default();
            for (i, (ports, created, limit, _)) in routers.iter().enumerate() {
                let mut r = router(&format!("gw-{i}"), *created, ports);
                r.interface_limit = *limit;
                // gw-0's tunnel endpoint is one an external VTEP may ask for.
                r.fabric = Some(Fabric {
                    interface: "eth0".into(),
                    underlay_address: Some(format!("192.0.2.{}", 100 + i).parse().unwrap()),
                });
                s.physical_routers.push(r);
            }
            for (i, (ns, created, subnets, vni, running, label)) in networks.into_iter().enumerate()
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
                s.virtual_networks.push(n);
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
                s.virtual_machine_interfaces.push(v);
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
                s.dc_gateways.push(g);
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
                s.external_vteps.push(x);
            }
            for (i, (r, port, vlan, ns, v, created)) in lis.into_iter().enumerate() {
                s.logical_interfaces.push(li(
                    &format!("li{i}"),
                    created,
                    &format!("gw-{r}"),
                    PORTS[port],
                    vlan,
                    (NAMESPACES[ns], &format!("vmi{v}")),
                ));
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
                    if let Some(r) = s.physical_routers.get_mut(router) {
                        let state =
                            [HaState::Active, HaState::Standby, HaState::Down][usize::from(state)];
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
                s.gateway_ha_groups.push(g);
            }
            // Node reports about random logical interfaces, at random generations.
            for (i, (_, _, _, reports)) in routers.iter().enumerate() {
                s.physical_routers[i].programmed = reports
                    .iter()
                    .map(|(li, _, _, generation)| report(li_key(&format!("li{li}")), *generation))
                    .collect();
            }
            s
        },
    )
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
    }
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
        prop_assert_eq!(decide(&seen), decide(&s));
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
                    prop_assert!((16..1 << 20).contains(&l), "{}: label {}", key, l);
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
        // Ready is exactly Accepted and Programmed.
        for x in d.iter() {
            let programmed = x.condition(condition::PROGRAMMED).is_none_or(|p| p.status);
            prop_assert_eq!(x.is_ready(), x.is_accepted() && programmed);
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
            // Once nothing else blocks it, it is accepted.
            if resolved(&after, &next.meta.key).status && !a.message.contains("interfaceLimit") {
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
            n.mpls_label = label(&d, &n.meta.key);
        }
        for v in &mut restarted.virtual_machine_interfaces {
            v.mpls_label = label(&d, &v.meta.key);
        }
        let settled = restarted.clone();
        for i in 0..extra {
            restarted.virtual_networks.push(vn("a", &format!("late{i}"), -1, &[], None));
            restarted.virtual_machine_interfaces.push(vmi("a", &format!("late{i}"), -1, &format!("late{i}"), "02:00:00:00:00:99", &[]));
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
            if let DerivedStatus::VirtualNetwork { vni, .. } = &d.get(&n.meta.key).unwrap().derived {
                n.vni_in_use = *vni;
            }
        }
        // New networks arrive meanwhile, some of them "older" than the rest.
        for i in 0..extra {
            restarted.virtual_networks.push(vn("a", &format!("late{i}"), -1, &[], None));
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
