//! GatewayHAGroup rules and status: what makes a group valid (members,
//! ports, timers, the BPDU network and VLAN 0), how a VMI is shared by a
//! group, and each member's state from the nodes' reports.

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::{
    Fabric, ForwardingMode, HaMode, HaState, HaTimers, IpPrefix, Snapshot, VirtualNetwork,
};
use trunkline_operator_core::{DerivedStatus, HaMemberState, decide};

/// Two routers with an underlay, a network, a VMI bound on both through
/// their `eth1`, which is each one's member port of Fast group `g`.
fn group_set() -> Snapshot {
    let mut routers = vec![
        router("gw-1", 1, &["eth1", "eth2"]),
        router("gw-2", 1, &["eth1", "eth2"]),
        router("gw-3", 1, &["eth1"]),
    ];
    for (i, r) in routers.iter_mut().enumerate() {
        r.fabric = Some(Fabric {
            interface: "eth0".into(),
            underlay_address: Some(format!("192.0.2.{}", i + 1).parse().unwrap()),
        });
    }
    Snapshot {
        physical_routers: routers.into_iter().map(Arc::new).collect(),
        virtual_networks: vec![vn("t1", "net1", 1, &["10.0.0.0/24"], None).into()],
        virtual_machine_interfaces: vec![
            vmi("t1", "vmi1", 2, "net1", "02:00:00:00:00:01", &["10.0.0.10"]).into(),
        ],
        logical_interfaces: vec![
            li("li1", 3, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
            li("li2", 4, "gw-2", "eth1", 100, ("t1", "vmi1")).into(),
        ],
        gateway_ha_groups: vec![fast("g", 1, &[("gw-1", "eth1"), ("gw-2", "eth1")]).into()],
        ..Snapshot::default()
    }
}

fn members(d: &trunkline_operator_core::Decisions) -> (Option<String>, Vec<HaMemberState>) {
    match &d.get(&ha_key("g")).expect("a decision").derived {
        DerivedStatus::GatewayHaGroup {
            active_member,
            members,
            ..
        } => (active_member.clone(), members.clone()),
        other => panic!("{other:?}"),
    }
}

fn states(members: &[HaMemberState]) -> Vec<(&str, HaState, &str)> {
    members
        .iter()
        .map(|m| (m.physical_router.as_str(), m.state, m.reason.as_str()))
        .collect()
}

#[test]
fn a_group_is_ready_only_while_exactly_one_member_is_active() {
    let mut s = group_set();
    let d = decide(&s);
    for key in [ha_key("g"), li_key("li1"), li_key("li2")] {
        assert!(accepted(&d, &key).status, "{key}: {:?}", accepted(&d, &key));
    }
    // Nobody reports yet: programmed nowhere, both members Down.
    let ready = cond(&d, &ha_key("g"), condition::READY);
    assert_eq!((ready.status, ready.reason), (false, reason::PENDING));
    let (active, m) = members(&d);
    assert_eq!(active, None);
    assert_eq!(
        states(&m),
        [
            ("gw-1", HaState::Down, "NotReporting"),
            ("gw-2", HaState::Down, "NotReporting")
        ]
    );

    // Both hold the group; gw-1 is active, gw-2 standby.
    for node in ["gw-1", "gw-2"] {
        hold(&mut s, node, &[ha_key("g")]);
    }
    Arc::make_mut(&mut s.physical_routers[0]).ha_reports = vec![ha_report(
        "g",
        HaState::Active,
        "Elected",
        &[("gw-2", true)],
    )];
    Arc::make_mut(&mut s.physical_routers[1]).ha_reports = vec![ha_report(
        "g",
        HaState::Standby,
        "HigherPriorityActive",
        &[("gw-1", true)],
    )];
    let d = decide(&s);
    assert!(cond(&d, &ha_key("g"), condition::PROGRAMMED).status);
    let ready = cond(&d, &ha_key("g"), condition::READY);
    assert!(ready.status, "{ready:?}");
    assert!(
        ready.message.contains("gw-1 is active"),
        "{}",
        ready.message
    );
    let (active, m) = members(&d);
    assert_eq!(active.as_deref(), Some("gw-1"));
    assert_eq!(m[0].since, Some(1_000));

    // gw-1's agent died: its last report still says Active and that it
    // hears gw-2, but gw-2 no longer hears it and took over.
    Arc::make_mut(&mut s.physical_routers[1]).ha_reports = vec![ha_report(
        "g",
        HaState::Active,
        "Elected",
        &[("gw-1", false)],
    )];
    let d = decide(&s);
    let (active, m) = members(&d);
    assert_eq!(active.as_deref(), Some("gw-2"));
    assert_eq!(m[0].state, HaState::Down);
    assert_eq!(m[0].reason, "NoHeartbeat");
    assert_eq!(m[0].since, Some(2_000), "since gw-2 stopped hearing it");
    assert!(
        m[0].message
            .as_deref()
            .unwrap()
            .contains("gw-2 hears no heartbeat from gw-1"),
        "{:?}",
        m[0].message
    );
    assert!(d.get(&ha_key("g")).unwrap().is_ready());

    // A partition: each says it does not hear the other and is active:
    // both are believed, and the group says so.
    Arc::make_mut(&mut s.physical_routers[0]).ha_reports = vec![ha_report(
        "g",
        HaState::Active,
        "Elected",
        &[("gw-2", false)],
    )];
    let d = decide(&s);
    let ready = cond(&d, &ha_key("g"), condition::READY);
    assert_eq!((ready.status, ready.reason), (false, reason::SPLIT_BRAIN));
    assert_eq!(members(&d).0, None);

    // Nobody active (gw-1 fenced itself, gw-2 standby).
    Arc::make_mut(&mut s.physical_routers[0]).ha_reports = vec![ha_report(
        "g",
        HaState::Down,
        "FabricDown",
        &[("gw-2", false)],
    )];
    Arc::make_mut(&mut s.physical_routers[1]).ha_reports = vec![ha_report(
        "g",
        HaState::Standby,
        "Starting",
        &[("gw-1", false)],
    )];
    let d = decide(&s);
    let ready = cond(&d, &ha_key("g"), condition::READY);
    assert_eq!(
        (ready.status, ready.reason),
        (false, reason::NO_ACTIVE_MEMBER)
    );
    assert!(
        ready.message.contains("gw-1 Down (FabricDown)"),
        "{}",
        ready.message
    );
}

#[test]
fn a_port_is_a_member_of_one_group() {
    let mut s = group_set();
    s.gateway_ha_groups
        .push(fast("newer", 5, &[("gw-1", "eth1"), ("gw-3", "eth1")]).into());
    let d = decide(&s);
    assert!(accepted(&d, &ha_key("g")).status);
    let a = accepted(&d, &ha_key("newer"));
    assert_eq!((a.status, a.reason), (false, reason::CONFLICT));
    assert!(
        a.message
            .contains("member gw-1/eth1 is already a member port of GatewayHAGroup g (older)"),
        "{}",
        a.message
    );
    // Nothing else is disturbed.
    assert!(accepted(&d, &li_key("li2")).status);
}

#[test]
fn a_member_port_must_exist_on_its_router() {
    let mut s = group_set();
    s.gateway_ha_groups = vec![fast("g", 1, &[("gw-1", "eth9"), ("gw-9", "eth1")]).into()];
    let d = decide(&s);
    let r = resolved(&d, &ha_key("g"));
    assert_eq!((r.status, r.reason), (false, reason::NOT_FOUND));
    for text in [
        "member gw-1: PhysicalRouter gw-1 has no physical interface eth9 (it lists: eth1, eth2): add eth9 to its spec.physicalInterfaces",
        "member gw-9: PhysicalRouter gw-9 does not exist",
    ] {
        assert!(r.message.contains(text), "{text}: {}", r.message);
    }
}

#[test]
fn fast_mode_needs_timers_a_node_honours_and_underlay_addresses() {
    let mut s = group_set();
    Arc::make_mut(&mut s.gateway_ha_groups[0]).timers = Some(HaTimers {
        hello_millis: 20,
        dead_millis: 60,
    });
    Arc::make_mut(&mut s.physical_routers[1]).fabric = None;
    let a = accepted(&decide(&s), &ha_key("g")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    for text in [
        "spec.timers.helloMillis 20 is shorter than the node dataplane honours (50 ms",
        "member gw-2: PhysicalRouter gw-2 declares no spec.fabric.underlayAddress",
    ] {
        assert!(a.message.contains(text), "{text}: {}", a.message);
    }
    // The logical interfaces and the VMI are not disturbed.
    let d = decide(&s);
    for key in [li_key("li1"), li_key("li2"), vmi_key("t1", "vmi1")] {
        assert!(accepted(&d, &key).status, "{key}");
    }
}

#[test]
fn stp_mode_needs_a_bridging_bpdu_network_and_vlan_0_of_every_member_port() {
    let mut s = group_set();
    s.gateway_ha_groups = vec![
        ha(
            "g",
            1,
            &[("gw-1", "eth1"), ("gw-2", "eth1")],
            Some(("infra", "bpdu")),
        )
        .into(),
    ];
    let bpdu = |mode| VirtualNetwork {
        forwarding_mode: mode,
        ..vn("infra", "bpdu", 1, &[], None)
    };
    s.virtual_networks.push(bpdu(ForwardingMode::L2).into());
    assert!(accepted(&decide(&s), &ha_key("g")).status);

    s.virtual_networks[1] = bpdu(ForwardingMode::L3).into();
    let a = accepted(&decide(&s), &ha_key("g")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message
            .contains("spec.bpduNetwork infra/bpdu only routes"),
        "{}",
        a.message
    );

    // VLAN 0 of gw-2's member port carries an untagged instance.
    s.virtual_networks[1] = bpdu(ForwardingMode::L2).into();
    s.virtual_machine_interfaces.push(
        vmi(
            "t1",
            "untagged",
            2,
            "net1",
            "02:00:00:00:00:02",
            &["10.0.0.11"],
        )
        .into(),
    );
    s.logical_interfaces
        .push(li("li0", 5, "gw-2", "eth1", 0, ("t1", "untagged")).into());
    let d = decide(&s);
    let a = accepted(&d, &ha_key("g"));
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message.contains("member gw-2/eth1: VLAN 0 is bound by LogicalInterface li0 to VirtualMachineInterface t1/untagged of network t1/net1: mode STP floods BPDUs on VLAN 0"),
        "{}",
        a.message
    );
    assert!(
        accepted(&d, &li_key("li0")).status,
        "the LI is not disturbed"
    );

    // Bound to a VMI of the BPDU network (the seeds' explicit way): fine.
    s.virtual_machine_interfaces
        .push(vmi("infra", "dummy", 2, "bpdu", "02:00:00:00:00:03", &[]).into());
    s.logical_interfaces.pop();
    s.logical_interfaces
        .push(li("bpdu-1", 5, "gw-1", "eth1", 0, ("infra", "dummy")).into());
    s.logical_interfaces
        .push(li("bpdu-2", 5, "gw-2", "eth1", 0, ("infra", "dummy")).into());
    let d = decide(&s);
    assert!(accepted(&d, &ha_key("g")).status);
    for key in [li_key("bpdu-1"), li_key("bpdu-2")] {
        assert!(accepted(&d, &key).status, "{key}: {:?}", accepted(&d, &key));
    }
}

#[test]
fn a_vmi_is_served_by_one_group_through_its_member_ports() {
    let mut s = group_set();
    // gw-2 is also in group h through eth2.
    s.gateway_ha_groups
        .push(fast("h", 2, &[("gw-2", "eth2"), ("gw-3", "eth1")]).into());
    s.logical_interfaces = vec![
        li("li1", 3, "gw-1", "eth1", 100, ("t1", "vmi1")).into(),
        li("li2", 4, "gw-2", "eth2", 100, ("t1", "vmi1")).into(),
    ];
    let d = decide(&s);
    assert!(accepted(&d, &li_key("li1")).status);
    let lost = accepted(&d, &li_key("li2"));
    assert_eq!((lost.status, lost.reason), (false, reason::CONFLICT));
    assert!(
        lost.message.contains("is served by GatewayHAGroup g (its oldest binding, LogicalInterface li1, is on member port gw-1/eth1), and this logical interface is on gw-2/eth2, a member port of GatewayHAGroup h: a remote instance is served by one group"),
        "{}",
        lost.message
    );

    // Not a member port at all.
    s.gateway_ha_groups.pop();
    let lost = accepted(&decide(&s), &li_key("li2")).clone();
    assert!(
        lost.message.contains(
            "and this logical interface is on gw-2/eth2, which is not a member port of g"
        ),
        "{}",
        lost.message
    );
    // Nor on the serving node itself, once the VMI is the group's.
    s.logical_interfaces[1] = li("li2", 4, "gw-1", "eth2", 100, ("t1", "vmi1")).into();
    let lost = accepted(&decide(&s), &li_key("li2")).clone();
    assert_eq!(lost.reason, reason::CONFLICT, "{}", lost.message);

    // On the group's member ports: shared.
    s.logical_interfaces[1] = li("li2", 4, "gw-2", "eth1", 100, ("t1", "vmi1")).into();
    assert!(accepted(&decide(&s), &li_key("li2")).status);
}

#[test]
fn active_active_is_refused_with_a_clear_status_while_the_vmi_keeps_running() {
    let mut s = group_set();
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).active_active =
        vec![IpPrefix::host("10.0.0.10".parse().unwrap())];
    let d = decide(&s);
    let key = vmi_key("t1", "vmi1");
    assert!(accepted(&d, &key).status, "the VMI keeps running");
    let ready = cond(&d, &key, condition::READY);
    assert_eq!((ready.status, ready.reason), (false, reason::INVALID));
    assert!(
        ready.message.contains("mode ActiveActive of 10.0.0.10 is not applied: the VMI is served by GatewayHAGroup g, and ECMP over its members is not supported yet"),
        "{}",
        ready.message
    );
    // Outside a group, the mode has no meaning and is not refused.
    s.gateway_ha_groups.clear();
    s.logical_interfaces.pop();
    let d = decide(&s);
    assert_ne!(cond(&d, &key, condition::READY).reason, reason::INVALID);
    let _ = HaMode::Fast;
}
