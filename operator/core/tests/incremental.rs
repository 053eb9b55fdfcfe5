//! The incremental decider at size: a change decides again only the
//! objects it can affect, not every object (not timed: counted).

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::condition;
use trunkline_model::{Object, Snapshot};
use trunkline_operator_core::{Change, Decider, Settings, decide};

/// One network, `n` VMIs each bound by one logical interface on a router
/// with four trunk ports.
fn scale(n: usize) -> Snapshot {
    let mut s = Snapshot::default();
    let mut r = router("gw", 1, &["p0", "p1", "p2", "p3"]);
    r.interface_limit = 65536;
    s.physical_routers.push(r.into());
    s.virtual_networks
        .push(vn("t", "net", 1, &["10.0.0.0/8"], None).into());
    for i in 0..n {
        let ip = format!("10.{}.{}.{}", i / 62_500, i / 250 % 250, i % 250 + 2);
        let mac = format!(
            "02:10:00:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        s.virtual_machine_interfaces
            .push(vmi("t", &format!("v{i}"), 2, "net", &mac, &[&ip]).into());
        s.logical_interfaces.push(
            li(
                &format!("l{i}"),
                2,
                "gw",
                &format!("p{}", i % 4),
                (i / 4) as u16 + 1,
                ("t", &format!("v{i}")),
            )
            .into(),
        );
    }
    s
}

#[test]
fn a_change_decides_again_only_what_it_can_affect() {
    let s = scale(2000);
    let mut decider = Decider::new(Settings::default());
    decider.apply(s.clone().into_objects().map(Change::Upsert));
    assert_eq!(decider.decisions().len(), 4001);
    assert!(decider.decided_last() >= 4001);

    // A VMI's address changes: it and its logical interface are decided
    // again (its network's decision does not read it).
    let mut v = (*s.virtual_machine_interfaces[7]).clone();
    v.ips = vec!["10.200.0.1".parse().unwrap()];
    v.meta.generation = 2;
    let changed = decider.apply([Change::Upsert(Object::VirtualMachineInterface(v))]);
    assert!(decider.decided_last() <= 3, "{}", decider.decided_last());
    assert!(changed.contains(&vmi_key("t", "v7")));

    // A new VMI taking another's address: the two claimants, not the rest.
    let thief = vmi("t", "thief", 3, "net", "02:99:00:00:00:01", &["10.0.0.10"]);
    let changed = decider.apply([Change::Upsert(Object::VirtualMachineInterface(thief))]);
    assert!(decider.decided_last() <= 4, "{}", decider.decided_last());
    assert!(!accepted(decider.decisions(), &vmi_key("t", "thief")).status);
    assert!(changed.contains(&vmi_key("t", "thief")));

    // A logical interface deleted: it, its VMI, nothing else.
    decider.apply([Change::Delete(li_key("l9"))]);
    assert!(decider.decided_last() <= 3, "{}", decider.decided_last());
    let d = decider.decisions().get(&vmi_key("t", "v9")).unwrap();
    assert!(!d.condition(condition::PROGRAMMED).unwrap().status);

    // Whatever it cost, the result is the one decided from scratch.
    assert_eq!(decider.decisions(), &decide(&decider.snapshot()));
}

/// A node's report moves past a logical interface: the logical interface
/// and its VMI (programmed there only with it) are decided again, and end
/// where a decision from scratch puts them.
#[test]
fn a_report_moving_past_a_logical_interface_programs_its_vmi() {
    let mut s = scale(3);
    let keys: Vec<_> = s
        .logical_interfaces
        .iter()
        .map(|l| l.meta.key.clone())
        .chain(
            s.virtual_machine_interfaces
                .iter()
                .map(|v| v.meta.key.clone()),
        )
        .chain([vn_key("t", "net")])
        .collect();
    hold(&mut s, "gw", &keys);
    Arc::make_mut(&mut s.logical_interfaces[1]).meta.changed_at = Some(rv("30"));
    let mut decider = Decider::new(Settings::default());
    decider.apply(s.clone().into_objects().map(Change::Upsert));
    let vmi = vmi_key("t", "v1");
    assert!(!cond(decider.decisions(), &vmi, condition::PROGRAMMED).status);
    let v0 = cond(
        decider.decisions(),
        &vmi_key("t", "v0"),
        condition::PROGRAMMED,
    );
    assert!(v0.status, "{v0:?}");

    let mut router = (*s.physical_routers[0]).clone();
    router
        .report
        .programmed_through
        .insert(trunkline_model::Kind::LogicalInterface, rv("30"));
    let changed = decider.apply([Change::Upsert(Object::PhysicalRouter(router))]);
    assert!(
        changed.contains(&li_key("l1")) && changed.contains(&vmi),
        "{changed:?}"
    );
    assert!(cond(decider.decisions(), &vmi, condition::PROGRAMMED).status);
    assert!(decider.decided_last() <= 2, "{}", decider.decided_last());
    assert_eq!(decider.decisions(), &decide(&decider.snapshot()));
}

/// What the nodes read did not change (a status write of `Programmed`,
/// say): the object keeps the older resource version, so the nodes'
/// reports need not catch up with the operator's own writes.
#[test]
fn an_unchanged_object_keeps_the_version_it_changed_at() {
    let s = scale(1);
    let mut decider = Decider::new(Settings::default());
    let mut v = (*s.virtual_machine_interfaces[0]).clone();
    v.meta.changed_at = Some(rv("10"));
    decider.apply([Change::Upsert(Object::VirtualMachineInterface(v.clone()))]);
    // Read again at resource version 11, same content: still 10.
    let mut again = Object::VirtualMachineInterface(v.clone());
    again.meta_mut().changed_at = Some(rv("11"));
    decider.keep_changed_at(&mut again);
    assert_eq!(again.meta().changed_at, Some(rv("10")));
    // Read at 12 with a new address: 12.
    v.ips = vec!["10.9.9.9".parse().unwrap()];
    v.meta.changed_at = Some(rv("12"));
    let mut changed = Object::VirtualMachineInterface(v);
    decider.keep_changed_at(&mut changed);
    assert_eq!(changed.meta().changed_at, Some(rv("12")));
}

/// IP fabric forwarding: an overlapping subnet goes to the older network;
/// when the older one stops asking, the newer one gets it, decided
/// incrementally as from scratch.
#[test]
fn ip_fabric_subnets_move_to_the_next_network_when_the_older_leaves() {
    let fabric = |name: &str, created: i64| {
        let mut n = vn("t", name, created, &["10.0.0.0/24"], None);
        n.north_south = trunkline_model::NorthSouth {
            snat: false,
            ip_fabric_forwarding: true,
        };
        n
    };
    let (older, newer) = (fabric("a", 1), fabric("b", 2));
    let mut decider = Decider::new(Settings::default());
    decider.apply([
        Change::Upsert(Object::VirtualNetwork(older.clone())),
        Change::Upsert(Object::VirtualNetwork(newer)),
    ]);
    let ready = |d: &Decider| cond(d.decisions(), &vn_key("t", "b"), condition::ACCEPTED).clone();
    assert!(
        ready(&decider).message.contains("is not applied"),
        "{:?}",
        ready(&decider)
    );
    let mut plain = older;
    plain.north_south = Default::default();
    plain.meta.generation = 2;
    let changed = decider.apply([Change::Upsert(Object::VirtualNetwork(plain))]);
    assert!(changed.contains(&vn_key("t", "b")), "{changed:?}");
    assert!(!ready(&decider).message.contains("is not applied"));
    assert_eq!(decider.decisions(), &decide(&decider.snapshot()));
}
