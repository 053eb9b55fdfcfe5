//! North-south rules (seed 004): the fabric exit a network gets (SNAT, IP
//! fabric forwarding, whose subnets the fabric routes to one network), and
//! DC gateways (their address, the networks they serve, their routes).

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::{Encapsulation, Fabric, FabricExit, ForwardingMode, NorthSouth, Snapshot};
use trunkline_operator_core::{DerivedStatus, decide};

fn exit_of(d: &trunkline_operator_core::Decisions, ns: &str, name: &str) -> Option<FabricExit> {
    match &d.get(&vn_key(ns, name)).unwrap().derived {
        DerivedStatus::VirtualNetwork { fabric_exit, .. } => *fabric_exit,
        other => panic!("not a network's status: {other:?}"),
    }
}

/// A node with an underlay address holding net1 (10.0.0.0/24) through a
/// VMI, a DC gateway serving net1 with a default route.
fn set() -> Snapshot {
    let mut gw = router("gw-1", 1, &["eth1"]);
    gw.fabric = Some(Fabric {
        interface: "eth0".into(),
        underlay_address: Some("192.0.2.1".parse().unwrap()),
    });
    Snapshot {
        physical_routers: vec![gw.into()],
        virtual_networks: vec![vn("t1", "net1", 1, &["10.0.0.0/24"], None).into()],
        virtual_machine_interfaces: vec![
            vmi("t1", "vmi1", 2, "net1", "02:00:00:00:00:01", &["10.0.0.10"]).into(),
        ],
        logical_interfaces: vec![li("li1", 3, "gw-1", "eth1", 100, ("t1", "vmi1")).into()],
        dc_gateways: vec![
            dcgw(
                "mx1",
                5,
                "192.0.2.200",
                &[(("t1", "net1"), &[("0.0.0.0/0", 5000)])],
            )
            .into(),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn the_requested_exit_is_put_in_effect() {
    let mut s = set();
    assert_eq!(exit_of(&decide(&s), "t1", "net1"), None);
    Arc::make_mut(&mut s.virtual_networks[0]).north_south = NorthSouth {
        snat: true,
        ip_fabric_forwarding: false,
    };
    assert_eq!(exit_of(&decide(&s), "t1", "net1"), Some(FabricExit::Snat));
    Arc::make_mut(&mut s.virtual_networks[0]).north_south = NorthSouth {
        snat: false,
        ip_fabric_forwarding: true,
    };
    let d = decide(&s);
    assert_eq!(
        exit_of(&d, "t1", "net1"),
        Some(FabricExit::IpFabricForwarding)
    );
    assert!(accepted(&d, &vn_key("t1", "net1")).status);
}

#[test]
fn snat_says_which_subnets_it_cannot_translate_on_which_node() {
    let mut s = set();
    s.virtual_networks[0] = vn("t1", "net1", 1, &["10.0.0.0/24", "fd00::/64"], None).into();
    Arc::make_mut(&mut s.virtual_networks[0]).north_south = NorthSouth {
        snat: true,
        ip_fabric_forwarding: false,
    };
    let d = decide(&s);
    let key = vn_key("t1", "net1");
    // Still in effect for IPv4: accepted, but not Ready, and told why.
    assert_eq!(exit_of(&d, "t1", "net1"), Some(FabricExit::Snat));
    assert!(accepted(&d, &key).status);
    let ready = cond(&d, &key, condition::READY);
    assert!(!ready.status);
    assert_eq!(ready.reason, reason::INVALID);
    assert!(
        ready.message.contains(
            "spec.northSouth.snat does not apply to subnet fd00::/64 on gateway node(s) gw-1 (192.0.2.1)"
        ) && ready.message.contains("snat_other_family")
            && !ready.message.contains("10.0.0.0/24"),
        "{}",
        ready.message
    );
    // Without SNAT the IPv6 subnet asks nothing the nodes cannot do.
    Arc::make_mut(&mut s.virtual_networks[0]).north_south = NorthSouth::default();
    let d = decide(&s);
    let ready = cond(&d, &key, condition::READY);
    assert!(!ready.message.contains("snat"), "{}", ready.message);
}

#[test]
fn ip_fabric_subnets_belong_to_the_older_network() {
    let mut s = set();
    let ipff = NorthSouth {
        snat: false,
        ip_fabric_forwarding: true,
    };
    Arc::make_mut(&mut s.virtual_networks[0]).north_south = ipff;
    let mut younger = vn("t2", "net2", 9, &["10.0.0.128/25"], None);
    younger.north_south = ipff;
    s.virtual_networks.push(younger.into());
    // Same subnets with SNAT: nothing routes them back, no conflict.
    let mut snat = vn("t3", "net3", 10, &["10.0.0.0/24"], None);
    snat.north_south = NorthSouth {
        snat: true,
        ip_fabric_forwarding: false,
    };
    s.virtual_networks.push(snat.into());
    let d = decide(&s);
    assert_eq!(
        exit_of(&d, "t1", "net1"),
        Some(FabricExit::IpFabricForwarding)
    );
    assert_eq!(exit_of(&d, "t2", "net2"), None);
    assert_eq!(exit_of(&d, "t3", "net3"), Some(FabricExit::Snat));
    // The younger keeps running: accepted, not Ready, and told why.
    assert!(accepted(&d, &vn_key("t2", "net2")).status);
    let ready = cond(&d, &vn_key("t2", "net2"), condition::READY);
    assert!(!ready.status);
    assert_eq!(ready.reason, reason::INVALID);
    assert!(
        ready
            .message
            .contains("overlaps subnet 10.0.0.0/24 of VirtualNetwork t1/net1 (older)"),
        "{}",
        ready.message
    );
    // Deleting the older one hands the subnet over.
    s.virtual_networks.remove(0);
    assert_eq!(
        exit_of(&decide(&s), "t2", "net2"),
        Some(FabricExit::IpFabricForwarding)
    );
}

#[test]
fn a_valid_dc_gateway_is_accepted_and_programmed_by_the_networks_nodes() {
    let mut s = set();
    let d = decide(&s);
    let a = accepted(&d, &dcgw_key("mx1"));
    assert!(a.status, "{a:?}");
    let p = cond(&d, &dcgw_key("mx1"), condition::PROGRAMMED);
    assert!(!p.status && p.message.contains("gw-1"), "{}", p.message);
    hold(&mut s, "gw-1", &[dcgw_key("mx1")]);
    let d = decide(&s);
    assert!(d.get(&dcgw_key("mx1")).unwrap().is_ready());
    match &d.get(&dcgw_key("mx1")).unwrap().derived {
        DerivedStatus::DcGateway { networks_summary } => {
            assert_eq!(networks_summary.as_deref(), Some("t1/net1"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dc_gateway_needs_routed_networks_and_an_address_of_its_own() {
    let mut s = set();
    s.dc_gateways[0] = dcgw(
        "mx1",
        5,
        "192.0.2.1",
        &[(("t1", "nope"), &[]), (("t1", "net1"), &[])],
    )
    .into();
    Arc::make_mut(&mut s.virtual_networks[0]).encapsulation = Some(vec![Encapsulation::Vxlan]);
    Arc::make_mut(&mut s.virtual_networks[0]).forwarding_mode = ForwardingMode::L2;
    let d = decide(&s);
    let a = accepted(&d, &dcgw_key("mx1"));
    assert!(!a.status);
    for text in [
        "tunnel endpoint of PhysicalRouter gw-1",
        "only bridges (forwardingMode L2)",
    ] {
        assert!(
            a.message.contains(text),
            "{text:?} missing from {}",
            a.message
        );
    }
    let r = resolved(&d, &dcgw_key("mx1"));
    assert!(!r.status && r.message.contains("VirtualNetwork t1/nope does not exist"));
}

/// A VXLAN-only network may have a DC gateway (L3VPN with ET:8): the
/// gateway is sent MPLS over UDP, its VXLAN with the VNI is routed.
#[test]
fn a_dc_gateway_serves_a_vxlan_only_network() {
    let mut s = set();
    Arc::make_mut(&mut s.virtual_networks[0]).encapsulation = Some(vec![Encapsulation::Vxlan]);
    let d = decide(&s);
    let a = accepted(&d, &dcgw_key("mx1"));
    assert!(a.status, "{a:?}");
}

#[test]
fn routes_stay_outside_the_subnets_and_a_prefix_has_one_gateway() {
    let mut s = set();
    s.dc_gateways.push(
        dcgw(
            "mx2",
            6,
            "192.0.2.201",
            &[(("t1", "net1"), &[("0.0.0.0/0", 7), ("10.0.0.128/25", 8)])],
        )
        .into(),
    );
    s.dc_gateways
        .push(dcgw("mx0", 7, "192.0.2.200", &[(("t1", "net1"), &[])]).into());
    let d = decide(&s);
    assert!(
        accepted(&d, &dcgw_key("mx1")).status,
        "the older keeps its route and address"
    );
    let a = accepted(&d, &dcgw_key("mx2"));
    assert!(!a.status);
    assert!(
        a.message
            .contains("route 10.0.0.128/25 lies inside subnet 10.0.0.0/24"),
        "{}",
        a.message
    );
    assert!(
        a.message
            .contains("route 0.0.0.0/0 is already provided by DCGateway mx1 (older)"),
        "{}",
        a.message
    );
    let a = accepted(&d, &dcgw_key("mx0"));
    assert!(
        !a.status && a.message.contains("already used by DCGateway mx1 (older)"),
        "{}",
        a.message
    );
}
