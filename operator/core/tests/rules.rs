//! One test (or a few) per rule of the core, on hand-built snapshots.

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::{Encapsulation, Kind, PhysicalInterface, Snapshot};
use trunkline_operator_core::{DerivedStatus, NodeState, ObjectKey, decide};

/// A router with one port, a network, a VMI in it, and a logical interface
/// binding the VMI: everything valid.
fn valid_set() -> Snapshot {
    Snapshot {
        physical_routers: vec![router("gw-1", 1, &["eth1"]).into()],
        virtual_networks: vec![vn("t1", "net1", 1, &["10.0.0.0/24"], None).into()],
        virtual_machine_interfaces: vec![
            vmi("t1", "vmi1", 2, "net1", "02:00:00:00:00:01", &["10.0.0.10"]).into(),
        ],
        logical_interfaces: vec![li("li1", 3, "gw-1", "eth1", 100, ("t1", "vmi1")).into()],
        ..Snapshot::default()
    }
}

#[test]
fn a_valid_set_is_accepted_and_waits_for_the_node() {
    let d = decide(&valid_set());
    for key in [li_key("li1"), vmi_key("t1", "vmi1"), vn_key("t1", "net1")] {
        assert!(accepted(&d, &key).status, "{key}: {:?}", accepted(&d, &key));
        assert!(resolved(&d, &key).status, "{key}");
        let programmed = cond(&d, &key, condition::PROGRAMMED);
        assert!(!programmed.status);
        assert_eq!(programmed.reason, reason::PENDING);
        assert!(
            programmed.message.contains("gw-1"),
            "{}",
            programmed.message
        );
        assert!(!d.get(&key).unwrap().is_ready());
    }
    assert_eq!(
        d.get(&vn_key("t1", "net1")).unwrap().derived,
        DerivedStatus::VirtualNetwork {
            vni: Some(4096),
            routing_instance: "default-domain:t1:net1:net1".into(),
            mpls_label: Some(16),
            encapsulation: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
            subnets_summary: Some("10.0.0.0/24".into()),
            fabric_exit: None,
        }
    );
    assert_eq!(
        d.get(&vmi_key("t1", "vmi1")).unwrap().derived,
        DerivedStatus::VirtualMachineInterface {
            routing_instance: Some("default-domain:t1:net1:net1".into()),
            logical_interfaces: vec!["li1".into()],
            mpls_label: Some(17),
            mac_address: Some("02:00:00:00:00:01".into()),
            addresses_summary: Some("10.0.0.10".into()),
        }
    );
}

#[test]
fn conditions_come_in_a_fixed_order() {
    let d = decide(&valid_set());
    let types: Vec<&str> = d
        .get(&li_key("li1"))
        .unwrap()
        .conditions
        .iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["Accepted", "ResolvedRefs", "Programmed", "Ready"]);
}

#[test]
fn programmed_follows_the_node_watermarks_and_exceptions() {
    let mut s = valid_set();
    let keys = [li_key("li1"), vmi_key("t1", "vmi1"), vn_key("t1", "net1")];
    hold(&mut s, "gw-1", &keys);
    let d = decide(&s);
    for key in &keys {
        assert!(cond(&d, key, condition::PROGRAMMED).status, "{key}");
        assert!(d.get(key).unwrap().is_ready(), "{key}");
    }
    // The VMI's spec changed (at resource version 20): the node's tables
    // were built from resource version 10, so not programmed yet.
    Arc::make_mut(&mut s.virtual_machine_interfaces[0])
        .meta
        .generation = 2;
    Arc::make_mut(&mut s.virtual_machine_interfaces[0])
        .meta
        .changed_at = Some(rv("20"));
    let d = decide(&s);
    let p = cond(&d, &vmi_key("t1", "vmi1"), condition::PROGRAMMED);
    assert!(!p.status && !p.unknown);
    assert!(
        p.message.contains("gw-1 (has not programmed it yet)"),
        "{}",
        p.message
    );
    let ready = cond(&d, &vmi_key("t1", "vmi1"), condition::READY);
    assert_eq!((ready.status, ready.reason), (false, reason::PENDING));
    // The node catches up.
    hold(&mut s, "gw-1", &[vmi_key("t1", "vmi1")]);
    assert!(decide(&s).get(&vmi_key("t1", "vmi1")).unwrap().is_ready());

    // The node says it could not hold the logical interface: neither it
    // nor its VMI (which it binds to the port) is programmed.
    Arc::make_mut(&mut s.physical_routers[0])
        .report
        .exceptions
        .insert(li_key("li1"), "port eth1 is not open".into());
    let d = decide(&s);
    for key in [li_key("li1"), vmi_key("t1", "vmi1")] {
        let p = cond(&d, &key, condition::PROGRAMMED);
        assert_eq!(
            (p.status, p.reason),
            (false, reason::NOT_PROGRAMMED),
            "{key}"
        );
        assert!(
            p.message.contains("gw-1: port eth1 is not open"),
            "{}",
            p.message
        );
    }
    assert!(cond(&d, &vn_key("t1", "net1"), condition::PROGRAMMED).status);

    // A report whose exceptions were cut: Unknown, never True.
    Arc::make_mut(&mut s.physical_routers[0])
        .report
        .exceptions
        .clear();
    Arc::make_mut(&mut s.physical_routers[0]).report.truncated = true;
    let d = decide(&s);
    let p = cond(&d, &vn_key("t1", "net1"), condition::PROGRAMMED);
    assert!(p.unknown && !p.status, "{p:?}");
    assert_eq!(p.reason, reason::REPORT_INCOMPLETE);
    assert_eq!(p.status_str(), "Unknown");
    let ready = cond(&d, &vn_key("t1", "net1"), condition::READY);
    assert_eq!(ready.status_str(), "Unknown");

    // Not labelled for the node: the node was never asked to hold it.
    Arc::make_mut(&mut s.physical_routers[0]).report.truncated = false;
    Arc::make_mut(&mut s.virtual_networks[0]).meta.nodes.clear();
    let p = cond(&decide(&s), &vn_key("t1", "net1"), condition::PROGRAMMED).clone();
    assert!(
        !p.status && p.message.contains("gw-1 (has not programmed it yet)"),
        "{}",
        p.message
    );
}

#[test]
fn a_rejected_object_is_never_programmed_whatever_the_report() {
    let mut s = valid_set();
    s.logical_interfaces
        .push(li("thief", 9, "gw-1", "eth1", 100, ("t1", "vmi1")).into());
    hold(&mut s, "gw-1", &[li_key("li1"), li_key("thief")]);
    Arc::make_mut(&mut s.physical_routers[0])
        .report
        .programmed_through
        .insert(trunkline_model::Kind::LogicalInterface, rv("99999"));
    let d = decide(&s);
    let thief = d.get(&li_key("thief")).unwrap();
    assert!(!thief.is_accepted());
    let p = cond(&d, &li_key("thief"), condition::PROGRAMMED);
    assert!(!p.status && !p.unknown, "{p:?}");
    assert!(!thief.is_ready());
}

#[test]
fn a_vmi_on_two_nodes_is_programmed_when_both_report_it() {
    let mut s = valid_set();
    s.physical_routers.push(router("gw-2", 1, &["eth1"]).into());
    s.gateway_ha_groups = vec![
        ha(
            "g",
            1,
            &[("gw-1", "eth1"), ("gw-2", "eth1")],
            Some(("t1", "net1")),
        )
        .into(),
    ];
    s.logical_interfaces
        .push(li("li2", 3, "gw-2", "eth1", 100, ("t1", "vmi1")).into());
    hold(&mut s, "gw-1", &[vmi_key("t1", "vmi1"), li_key("li1")]);
    let d = decide(&s);
    let before = cond(&d, &vmi_key("t1", "vmi1"), condition::PROGRAMMED).clone();
    assert!(
        !before.status && before.message.contains("gw-2 (has not programmed it yet)"),
        "{}",
        before.message
    );
    hold(&mut s, "gw-2", &[vmi_key("t1", "vmi1")]);
    let p = cond(&decide(&s), &vmi_key("t1", "vmi1"), condition::PROGRAMMED).clone();
    assert!(
        !p.status && p.message.contains("gw-2 (has not programmed it yet)"),
        "its logical interface on gw-2 is not held yet: {}",
        p.message
    );
    assert_eq!(
        p.message, before.message,
        "the message does not tell the VMI lagging from its logical interface lagging: \
         it would be written once more per VMI of a burst"
    );
    hold(&mut s, "gw-2", &[li_key("li2")]);
    assert!(cond(&decide(&s), &vmi_key("t1", "vmi1"), condition::PROGRAMMED).status);
}

#[test]
fn a_vmi_without_logical_interface_is_accepted_but_not_programmed() {
    let mut s = valid_set();
    s.logical_interfaces.clear();
    let d = decide(&s);
    assert!(accepted(&d, &vmi_key("t1", "vmi1")).status);
    let p = cond(&d, &vmi_key("t1", "vmi1"), condition::PROGRAMMED);
    assert!(
        p.message
            .contains("no accepted LogicalInterface binds this VMI"),
        "{}",
        p.message
    );
}

#[test]
fn a_logical_interface_names_the_missing_router_port_or_vmi() {
    let mut s = valid_set();
    s.physical_routers.clear();
    let d = decide(&s);
    let r = resolved(&d, &li_key("li1"));
    assert_eq!((r.status, r.reason), (false, reason::NOT_FOUND));
    assert!(
        r.message.contains("PhysicalRouter gw-1 does not exist"),
        "{}",
        r.message
    );
    let a = accepted(&d, &li_key("li1"));
    assert_eq!((a.status, a.reason), (false, reason::NOT_FOUND));

    let mut s = valid_set();
    Arc::make_mut(&mut s.physical_routers[0]).interfaces = vec![PhysicalInterface::named("eth2")];
    let r = resolved(&decide(&s), &li_key("li1")).clone();
    assert!(
        r.message
            .contains("no physical interface eth1 (it lists: eth2)"),
        "{}",
        r.message
    );
    assert!(
        r.message
            .contains("add eth1 to its spec.physicalInterfaces"),
        "{}",
        r.message
    );

    let mut s = valid_set();
    s.virtual_machine_interfaces.clear();
    let r = resolved(&decide(&s), &li_key("li1")).clone();
    assert_eq!(r.reason, reason::NOT_FOUND);
    assert!(
        r.message
            .contains("VirtualMachineInterface t1/vmi1 does not exist"),
        "{}",
        r.message
    );
}

#[test]
fn a_logical_interface_waits_for_its_vmi_to_be_accepted() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips = vec!["10.9.9.9".parse().unwrap()];
    let d = decide(&s);
    let r = resolved(&d, &li_key("li1"));
    assert_eq!((r.status, r.reason), (false, reason::REF_NOT_ACCEPTED));
    assert!(
        r.message.contains("t1/vmi1 is not accepted (Invalid"),
        "{}",
        r.message
    );
}

#[test]
fn the_older_logical_interface_keeps_the_vlan() {
    let mut s = valid_set();
    s.logical_interfaces = vec![
        li("new", 20, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
        li("old", 10, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
        li("other-vlan", 30, "gw-1", "eth1", 101, ("t1", "vmi1")).into(),
    ];
    let d = decide(&s);
    assert!(accepted(&d, &li_key("old")).status);
    assert!(accepted(&d, &li_key("other-vlan")).status);
    let lost = accepted(&d, &li_key("new"));
    assert_eq!((lost.status, lost.reason), (false, reason::CONFLICT));
    assert!(
        lost.message
            .contains("VLAN 100 on gw-1/eth1 is already used by LogicalInterface old"),
        "{}",
        lost.message
    );
    // ResolvedRefs is about references only.
    assert!(resolved(&d, &li_key("new")).status);

    // The winner goes away: the loser holds the VLAN.
    s.logical_interfaces.retain(|l| l.meta.name() != "old");
    assert!(accepted(&decide(&s), &li_key("new")).status);
}

#[test]
fn same_second_creation_is_broken_by_name() {
    let mut s = valid_set();
    s.logical_interfaces = vec![
        li("b", 10, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
        li("a", 10, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
    ];
    let d = decide(&s);
    assert!(accepted(&d, &li_key("a")).status);
    assert!(!accepted(&d, &li_key("b")).status);
}

#[test]
fn the_vlan_owner_keeps_it_while_its_vmi_is_missing() {
    let mut s = valid_set();
    s.logical_interfaces = vec![
        li("owner", 10, "gw-1", "eth1", 100, ("t1", "gone")).into(),
        li("newcomer", 20, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
    ];
    let d = decide(&s);
    assert!(!accepted(&d, &li_key("owner")).status);
    let lost = accepted(&d, &li_key("newcomer"));
    assert_eq!(lost.reason, reason::CONFLICT);
}

#[test]
fn the_interface_limit_keeps_the_oldest() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.physical_routers[0]).interface_limit = 2;
    s.logical_interfaces = (0..4)
        .map(|i| {
            li(
                &format!("li{i}"),
                10 + i64::from(i),
                "gw-1",
                "eth1",
                i,
                ("t1", "vmi1"),
            )
        })
        .map(Arc::new)
        .collect();
    // A loser of a VLAN takes no slot.
    s.logical_interfaces
        .push(li("dup", 5, "gw-1", "eth1", 0, ("t1", "vmi1")).into());
    let d = decide(&s);
    let states: Vec<bool> = ["dup", "li0", "li1", "li2", "li3"]
        .iter()
        .map(|n| accepted(&d, &li_key(n)).status)
        .collect();
    assert_eq!(states, [true, false, true, false, false]);
    let over = accepted(&d, &li_key("li2"));
    assert_eq!(over.reason, reason::CONFLICT);
    assert!(
        over.message.contains("at most 2 logical interfaces"),
        "{}",
        over.message
    );
}

#[test]
fn a_vmi_needs_its_network() {
    let mut s = valid_set();
    s.virtual_networks.clear();
    let d = decide(&s);
    let r = resolved(&d, &vmi_key("t1", "vmi1"));
    assert_eq!((r.status, r.reason), (false, reason::NOT_FOUND));
    assert!(
        r.message.contains("VirtualNetwork t1/net1 does not exist"),
        "{}",
        r.message
    );
    // A network of the same name in another namespace does not count.
    s.virtual_networks
        .push(vn("t2", "net1", 1, &["10.0.0.0/24"], None).into());
    assert!(!resolved(&decide(&s), &vmi_key("t1", "vmi1")).status);
}

#[test]
fn addresses_must_be_inside_a_subnet_and_not_the_gateway() {
    let cases = [
        (
            "10.0.1.5",
            Some("outside every subnet of VirtualNetwork t1/net1 (10.0.0.0/24, fd00::/64)"),
        ),
        (
            "10.0.0.1",
            Some("10.0.0.1 is the gateway address of subnet 10.0.0.0/24"),
        ),
        (
            "fd00::1",
            Some("fd00::1 is the gateway address of subnet fd00::/64"),
        ),
        ("fd00::20", None),
        ("10.0.0.254", None),
    ];
    for (address, problem) in cases {
        let mut s = valid_set();
        s.virtual_networks[0] = vn("t1", "net1", 1, &["10.0.0.0/24", "fd00::/64"], None).into();
        Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips = vec![address.parse().unwrap()];
        let a = accepted(&decide(&s), &vmi_key("t1", "vmi1")).clone();
        match problem {
            None => assert!(a.status, "{address}: {a:?}"),
            Some(text) => {
                assert_eq!((a.status, a.reason), (false, reason::INVALID), "{address}");
                assert!(a.message.contains(text), "{address}: {}", a.message);
            }
        }
    }
}

#[test]
fn an_explicit_gateway_replaces_the_first_address() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0]).subnets =
        vec![subnet("10.0.0.0/24", Some("10.0.0.254"))];
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips = vec!["10.0.0.1".parse().unwrap()];
    assert!(accepted(&decide(&s), &vmi_key("t1", "vmi1")).status);
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips = vec!["10.0.0.254".parse().unwrap()];
    assert!(!accepted(&decide(&s), &vmi_key("t1", "vmi1")).status);
}

#[test]
fn duplicate_addresses_and_macs_in_a_network_go_to_the_older() {
    let mut s = valid_set();
    s.virtual_machine_interfaces = vec![
        vmi("t1", "old", 10, "net1", "02:00:00:00:00:01", &["10.0.0.10"]).into(),
        vmi(
            "t1",
            "same-ip",
            20,
            "net1",
            "02:00:00:00:00:02",
            &["10.0.0.10"],
        )
        .into(),
        vmi(
            "t1",
            "same-mac",
            30,
            "net1",
            "02-00-00-00-00-01",
            &["10.0.0.30"],
        )
        .into(),
        vmi(
            "t1",
            "fine",
            40,
            "net1",
            "02:00:00:00:00:04",
            &["10.0.0.40"],
        )
        .into(),
    ];
    // The same address in another network is fine.
    s.virtual_networks
        .push(vn("t1", "net2", 1, &["10.0.0.0/24"], None).into());
    s.virtual_machine_interfaces.push(
        vmi(
            "t1",
            "elsewhere",
            50,
            "net2",
            "02:00:00:00:00:01",
            &["10.0.0.10"],
        )
        .into(),
    );
    let d = decide(&s);
    assert!(accepted(&d, &vmi_key("t1", "old")).status);
    assert!(accepted(&d, &vmi_key("t1", "fine")).status);
    assert!(accepted(&d, &vmi_key("t1", "elsewhere")).status);
    let ip = accepted(&d, &vmi_key("t1", "same-ip"));
    assert_eq!(ip.reason, reason::CONFLICT);
    assert!(
        ip.message
            .contains("address 10.0.0.10 is already used by VirtualMachineInterface t1/old"),
        "{}",
        ip.message
    );
    let mac = accepted(&d, &vmi_key("t1", "same-mac"));
    assert!(
        mac.message.contains(
            "MAC address 02:00:00:00:00:01 is already used by VirtualMachineInterface t1/old"
        ),
        "{}",
        mac.message
    );

    s.virtual_machine_interfaces
        .retain(|v| v.meta.name() != "old");
    let d = decide(&s);
    assert!(accepted(&d, &vmi_key("t1", "same-ip")).status);
    assert!(accepted(&d, &vmi_key("t1", "same-mac")).status);
}

#[test]
fn vnis_are_allocated_from_4096_in_age_order_around_explicit_ones() {
    let s = Snapshot {
        virtual_networks: vec![
            vn("t1", "c", 30, &[], None).into(),
            vn("t1", "explicit", 5, &[], Some(4097)).into(),
            vn("t1", "a", 10, &[], None).into(),
            vn("t2", "b", 20, &[], None).into(),
        ],
        ..Snapshot::default()
    };
    let d = decide(&s);
    let vni = |ns: &str, n: &str| match &d.get(&vn_key(ns, n)).unwrap().derived {
        DerivedStatus::VirtualNetwork { vni, .. } => *vni,
        other => panic!("{other:?}"),
    };
    assert_eq!(vni("t1", "explicit"), Some(4097));
    assert_eq!(vni("t1", "a"), Some(4096));
    assert_eq!(vni("t2", "b"), Some(4098));
    assert_eq!(vni("t1", "c"), Some(4099));
}

#[test]
fn a_running_network_keeps_its_vni() {
    // "late" was created before "running" but the operator sees it only now
    // (say it was restored from a backup): "running" keeps 4096.
    let mut running = vn("t1", "running", 20, &[], None);
    running.vni_in_use = Some(4096);
    let s = Snapshot {
        virtual_networks: vec![running.into(), vn("t1", "late", 10, &[], None).into()],
        ..Snapshot::default()
    };
    let d = decide(&s);
    let vni = |n: &str| match &d.get(&vn_key("t1", n)).unwrap().derived {
        DerivedStatus::VirtualNetwork { vni, .. } => *vni,
        other => panic!("{other:?}"),
    };
    assert_eq!(vni("running"), Some(4096));
    assert_eq!(vni("late"), Some(4097));

    // A newer network asking for 4096 explicitly does not take it.
    let mut s = s;
    s.virtual_networks
        .push(vn("t1", "greedy", 30, &[], Some(4096)).into());
    let d = decide(&s);
    let lost = accepted(&d, &vn_key("t1", "greedy"));
    assert_eq!(lost.reason, reason::CONFLICT);
    assert!(
        lost.message
            .contains("VNI 4096 is already used by VirtualNetwork t1/running"),
        "{}",
        lost.message
    );
    assert!(accepted(&d, &vn_key("t1", "running")).status);
}

#[test]
fn an_explicit_vni_conflict_goes_to_the_older_network() {
    let s = Snapshot {
        virtual_networks: vec![
            vn("t2", "new", 20, &[], Some(77)).into(),
            vn("t1", "old", 10, &[], Some(77)).into(),
        ],
        ..Snapshot::default()
    };
    let d = decide(&s);
    assert!(accepted(&d, &vn_key("t1", "old")).status);
    assert!(!accepted(&d, &vn_key("t2", "new")).status);
    assert_eq!(
        d.get(&vn_key("t2", "new")).unwrap().derived,
        DerivedStatus::VirtualNetwork {
            vni: None,
            routing_instance: "default-domain:t2:new:new".into(),
            mpls_label: None,
            encapsulation: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
            subnets_summary: None,
            fabric_exit: None,
        }
    );
}

#[test]
fn routing_instances_are_unique() {
    // Within a namespace: another namespace cannot name it at all.
    let mut clash = vn("t1", "other", 20, &[], None);
    clash.routing_instance = Some("default-domain:t1:net1:net1".into());
    let s = Snapshot {
        virtual_networks: vec![vn("t1", "net1", 10, &[], None).into(), clash.into()],
        ..Snapshot::default()
    };
    let lost = accepted(&decide(&s), &vn_key("t1", "other")).clone();
    assert_eq!(lost.reason, reason::CONFLICT);
    assert!(
        lost.message.contains(
            "routing instance default-domain:t1:net1:net1 is already used by VirtualNetwork t1/net1"
        ),
        "{}",
        lost.message
    );
}

#[test]
fn a_vmi_of_a_refused_network_is_not_resolved() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0]).vni = Some(9);
    s.virtual_networks
        .push(vn("t0", "older", 0, &[], Some(9)).into());
    let r = resolved(&decide(&s), &vmi_key("t1", "vmi1")).clone();
    assert_eq!((r.status, r.reason), (false, reason::REF_NOT_ACCEPTED));
}

fn gateway_set() -> Snapshot {
    let mut s = valid_set();
    s.physical_routers.push(router("gw-2", 1, &["eth1"]).into());
    s
}

#[test]
fn a_virtual_gateway_needs_its_network_and_routers() {
    let mut s = gateway_set();
    s.virtual_gateways = vec![
        vgw(
            "g1",
            10,
            "vgw1",
            ("t1", "net1"),
            &["192.0.2.0/24"],
            &["gw-1", "gw-2"],
        )
        .into(),
    ];
    let d = decide(&s);
    assert!(accepted(&d, &vgw_key("g1")).status);

    s.virtual_gateways[0] = vgw(
        "g1",
        10,
        "vgw1",
        ("t1", "nope"),
        &["192.0.2.0/24"],
        &["gw-1", "gw-3", "gw-4"],
    )
    .into();
    let d = decide(&s);
    let r = resolved(&d, &vgw_key("g1"));
    assert_eq!(r.reason, reason::NOT_FOUND);
    assert!(
        r.message.contains("VirtualNetwork t1/nope does not exist"),
        "{}",
        r.message
    );
    assert!(
        r.message
            .contains("no PhysicalRouter for node(s) gw-3, gw-4"),
        "{}",
        r.message
    );
    match &d.get(&vgw_key("g1")).unwrap().derived {
        DerivedStatus::VirtualGateway { nodes } => {
            let states: Vec<_> = nodes.iter().map(|n| (n.node.as_str(), n.state)).collect();
            assert_eq!(
                states,
                [
                    ("gw-1", NodeState::Pending),
                    ("gw-3", NodeState::Failed),
                    ("gw-4", NodeState::Failed)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn virtual_gateways_on_one_node_need_distinct_interfaces_and_subnets() {
    let mut s = gateway_set();
    s.virtual_networks
        .push(vn("t1", "net2", 1, &[], None).into());
    s.virtual_gateways = vec![
        vgw(
            "old",
            10,
            "vgw1",
            ("t1", "net1"),
            &["192.0.2.0/24"],
            &["gw-1"],
        )
        .into(),
        vgw(
            "same-name",
            20,
            "vgw1",
            ("t1", "net2"),
            &["198.51.100.0/24"],
            &["gw-1"],
        )
        .into(),
        vgw(
            "overlap",
            30,
            "vgw2",
            ("t1", "net2"),
            &["192.0.2.128/25"],
            &["gw-1"],
        )
        .into(),
        vgw(
            "other-node",
            40,
            "vgw1",
            ("t1", "net2"),
            &["192.0.2.0/24"],
            &["gw-2"],
        )
        .into(),
    ];
    let d = decide(&s);
    assert!(accepted(&d, &vgw_key("old")).status);
    assert!(accepted(&d, &vgw_key("other-node")).status);
    let name = accepted(&d, &vgw_key("same-name"));
    assert!(
        name.message
            .contains("interface vgw1 on node gw-1 is already used by VirtualGateway old"),
        "{}",
        name.message
    );
    let overlap = accepted(&d, &vgw_key("overlap"));
    assert!(overlap.message.contains("subnet 192.0.2.128/25 overlaps subnet 192.0.2.0/24 of VirtualGateway old (older) on node gw-1"), "{}", overlap.message);

    s.virtual_gateways.retain(|g| g.meta.name() != "old");
    let d = decide(&s);
    assert!(accepted(&d, &vgw_key("same-name")).status);
    assert!(accepted(&d, &vgw_key("overlap")).status);
}

#[test]
fn a_virtual_gateway_is_programmed_on_all_its_nodes() {
    let mut s = gateway_set();
    s.virtual_gateways = vec![
        vgw(
            "g1",
            10,
            "vgw1",
            ("t1", "net1"),
            &["192.0.2.0/24"],
            &["gw-1", "gw-2"],
        )
        .into(),
    ];
    hold(&mut s, "gw-1", &[vgw_key("g1"), vn_key("t1", "net1")]);
    hold(&mut s, "gw-2", &[vgw_key("g1")]);
    let d = decide(&s);
    assert!(cond(&d, &vgw_key("g1"), condition::PROGRAMMED).status);
    // The network lives on gw-2 too (through the gateway), which lacks it.
    let p = cond(&d, &vn_key("t1", "net1"), condition::PROGRAMMED);
    assert!(
        !p.status && p.message.contains("gw-2 (has not programmed it yet)"),
        "{}",
        p.message
    );
}

#[test]
fn defects_are_reported_as_invalid() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_machine_interfaces[0])
        .defects
        .push("spec.ips: \"x\" is not an IPv4 or IPv6 address".into());
    let a = accepted(&decide(&s), &vmi_key("t1", "vmi1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(a.message.contains("spec.ips"), "{}", a.message);
}

#[test]
fn physical_routers_get_no_decision() {
    let d = decide(&valid_set());
    assert!(
        d.get(&ObjectKey::cluster(Kind::PhysicalRouter, "gw-1"))
            .is_none()
    );
    assert_eq!(d.len(), 3);
}

#[test]
fn a_vmi_bound_on_two_nodes_outside_an_ha_group_is_a_conflict() {
    let mut s = gateway_set();
    s.logical_interfaces
        .push(li("li2", 5, "gw-2", "eth1", 100, ("t1", "vmi1")).into());
    // A second binding on the node that serves it is fine.
    s.logical_interfaces
        .push(li("li3", 6, "gw-1", "eth1", 101, ("t1", "vmi1")).into());
    let d = decide(&s);
    assert!(accepted(&d, &li_key("li1")).status);
    assert!(accepted(&d, &li_key("li3")).status);
    let lost = accepted(&d, &li_key("li2"));
    assert_eq!((lost.status, lost.reason), (false, reason::CONFLICT));
    for text in [
        "VirtualMachineInterface t1/vmi1 is already bound on PhysicalRouter gw-1 by LogicalInterface li1 (older)",
        "PhysicalRouter gw-2 is not in a GatewayHAGroup with gw-1",
        "make both ports (gw-1/eth1, gw-2/eth1) member ports of one GatewayHAGroup",
    ] {
        assert!(lost.message.contains(text), "{text}: {}", lost.message);
    }
    // Only the serving node holds the VMI.
    let p = cond(&d, &vmi_key("t1", "vmi1"), condition::PROGRAMMED);
    assert!(!p.message.contains("gw-2"), "{}", p.message);

    // Members of one HA group may share it.
    s.gateway_ha_groups = vec![
        ha(
            "g",
            1,
            &[("gw-1", "eth1"), ("gw-2", "eth1")],
            Some(("t1", "net1")),
        )
        .into(),
    ];
    assert!(accepted(&decide(&s), &li_key("li2")).status);

    // Whatever the order, the older binding wins.
    s.gateway_ha_groups.clear();
    s.logical_interfaces.reverse();
    let d = decide(&s);
    assert!(accepted(&d, &li_key("li1")).status);
    assert!(!accepted(&d, &li_key("li2")).status);
}

#[test]
fn network_and_broadcast_addresses_are_not_instance_addresses() {
    for (ip, what) in [
        ("10.0.0.0", "network address of subnet 10.0.0.0/24"),
        ("10.0.0.255", "broadcast address of subnet 10.0.0.0/24"),
    ] {
        let mut s = valid_set();
        Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips = vec![ip.parse().unwrap()];
        let a = accepted(&decide(&s), &vmi_key("t1", "vmi1")).clone();
        assert_eq!((a.status, a.reason), (false, reason::INVALID), "{ip}");
        assert!(a.message.contains(what), "{ip}: {}", a.message);
        assert!(
            a.message.contains("use a host address of the subnet"),
            "{}",
            a.message
        );
    }
    // IPv6 has no broadcast; the last address is a host address.
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0])
        .subnets
        .push(subnet("fd00::/64", None));
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips =
        vec!["fd00::ffff:ffff:ffff:ffff".parse().unwrap()];
    assert!(accepted(&decide(&s), &vmi_key("t1", "vmi1")).status);
}

#[test]
fn a_gateway_on_the_broadcast_address_is_invalid() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0]).subnets =
        vec![subnet("10.0.0.0/24", Some("10.0.0.255"))];
    let a = accepted(&decide(&s), &vn_key("t1", "net1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message
            .contains("gateway 10.0.0.255 of subnet 10.0.0.0/24 is the subnet's broadcast address"),
        "{}",
        a.message
    );
}

#[test]
fn a_routing_instance_belongs_to_the_networks_namespace() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0]).routing_instance =
        Some("default-domain:t2:net1:net1".into());
    let a = accepted(&decide(&s), &vn_key("t1", "net1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message.contains(
            "names project \"t2\", but a routing instance belongs to the namespace of its network"
        ),
        "{}",
        a.message
    );
    Arc::make_mut(&mut s.virtual_networks[0]).routing_instance =
        Some("my-domain:t1:net1:net1".into());
    assert!(accepted(&decide(&s), &vn_key("t1", "net1")).status);
}

#[test]
fn a_running_network_keeps_its_vni_when_spec_asks_for_another() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0]).vni_in_use = Some(4096);
    Arc::make_mut(&mut s.virtual_networks[0]).vni = Some(5000);
    hold(
        &mut s,
        "gw-1",
        &[li_key("li1"), vmi_key("t1", "vmi1"), vn_key("t1", "net1")],
    );
    let d = decide(&s);
    let key = vn_key("t1", "net1");
    let network = d.get(&key).unwrap();
    assert!(
        matches!(
            network.derived,
            DerivedStatus::VirtualNetwork {
                vni: Some(4096),
                ..
            }
        ),
        "{:?}",
        network.derived
    );
    // Still accepted (its traffic keeps flowing), but not Ready.
    assert!(network.is_accepted());
    let ready = cond(&d, &key, condition::READY);
    assert_eq!((ready.status, ready.reason), (false, reason::INVALID));
    assert!(
        ready
            .message
            .contains("spec.vni 5000 is not applied: the network runs with VNI 4096"),
        "{}",
        ready.message
    );
    // Its VMI is unaffected.
    assert!(d.get(&vmi_key("t1", "vmi1")).unwrap().is_ready());
    // 5000 is asked for: a newer network cannot have it either.
    s.virtual_networks
        .push(vn("t1", "newer", 9, &[], Some(5000)).into());
    assert_eq!(
        accepted(&decide(&s), &vn_key("t1", "newer")).reason,
        reason::CONFLICT
    );
    // Pinning spec.vni to the running VNI is fine.
    Arc::make_mut(&mut s.virtual_networks[0]).vni = Some(4096);
    assert!(decide(&s).get(&key).unwrap().is_ready());
}

#[test]
fn status_summaries_list_every_item_normalised() {
    let mut s = valid_set();
    Arc::make_mut(&mut s.virtual_networks[0])
        .subnets
        .push(subnet("fd00::/64", None));
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).mac =
        Some("02-AA-00-00-00-01".parse().unwrap());
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).ips =
        vec!["10.0.0.10".parse().unwrap(), "fd00:0::0:a".parse().unwrap()];
    let d = decide(&s);
    match &d.get(&vn_key("t1", "net1")).unwrap().derived {
        DerivedStatus::VirtualNetwork {
            subnets_summary, ..
        } => {
            assert_eq!(subnets_summary.as_deref(), Some("10.0.0.0/24,fd00::/64"))
        }
        other => panic!("{other:?}"),
    }
    match &d.get(&vmi_key("t1", "vmi1")).unwrap().derived {
        DerivedStatus::VirtualMachineInterface {
            mac_address,
            addresses_summary,
            ..
        } => {
            assert_eq!(mac_address.as_deref(), Some("02:aa:00:00:00:01"));
            assert_eq!(addresses_summary.as_deref(), Some("10.0.0.10,fd00::a"));
        }
        other => panic!("{other:?}"),
    }
}
