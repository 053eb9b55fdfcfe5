//! The overlay's control-plane rules: MPLS labels, encapsulation lists and
//! external VTEPs, one test (or a few) per rule.

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::{Encapsulation, EncapsulationPriority, Fabric, Snapshot};
use trunkline_operator_core::{DerivedStatus, Settings, decide, decide_with};

/// Two networks, three VMIs (one invalid), all in t1.
fn labelled_set() -> Snapshot {
    Snapshot {
        virtual_networks: vec![
            vn("t1", "net-b", 20, &["10.0.1.0/24"], None).into(),
            vn("t1", "net-a", 10, &["10.0.0.0/24"], None).into(),
        ],
        virtual_machine_interfaces: vec![
            vmi("t1", "v3", 33, "net-a", "02:00:00:00:00:03", &["10.0.0.3"]).into(),
            vmi("t1", "v1", 31, "net-a", "02:00:00:00:00:01", &["10.0.0.1"]).into(),
            vmi("t1", "v2", 32, "net-b", "02:00:00:00:00:02", &["10.0.1.2"]).into(),
            vmi("t1", "bad", 30, "net-a", "02:00:00:00:00:04", &["10.9.9.9"]).into(),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn labels_are_allocated_from_16_networks_then_vmis_oldest_first() {
    let d = decide(&labelled_set());
    assert_eq!(label(&d, &vn_key("t1", "net-a")), Some(16));
    assert_eq!(label(&d, &vn_key("t1", "net-b")), Some(17));
    // v1 is the gateway address 10.0.0.1 of net-a: refused, no label.
    assert!(!accepted(&d, &vmi_key("t1", "v1")).status);
    assert_eq!(label(&d, &vmi_key("t1", "v1")), None);
    assert_eq!(label(&d, &vmi_key("t1", "bad")), None);
    assert_eq!(label(&d, &vmi_key("t1", "v2")), Some(18));
    assert_eq!(label(&d, &vmi_key("t1", "v3")), Some(19));
}

#[test]
fn a_running_object_keeps_its_label_across_a_restart() {
    // As after a restart: the status holds labels some other allocation
    // order would not give.
    let mut s = labelled_set();
    Arc::make_mut(&mut s.virtual_networks[0]).mpls_label = Some(40); // net-b
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).mpls_label = Some(16); // v3
    let d = decide(&s);
    assert_eq!(label(&d, &vn_key("t1", "net-b")), Some(40));
    assert_eq!(label(&d, &vmi_key("t1", "v3")), Some(16));
    // The free ones go around them.
    assert_eq!(label(&d, &vn_key("t1", "net-a")), Some(17));
    assert_eq!(label(&d, &vmi_key("t1", "v2")), Some(18));

    // Deciding again from the written status changes nothing.
    for n in &mut s.virtual_networks {
        let n = Arc::make_mut(n);
        n.mpls_label = label(&d, &n.meta.key);
    }
    for v in &mut s.virtual_machine_interfaces {
        let v = Arc::make_mut(v);
        v.mpls_label = label(&d, &v.meta.key);
    }
    assert_eq!(decide(&s), d);
}

#[test]
fn a_contended_label_goes_to_the_oldest_and_the_other_gets_a_new_one() {
    let mut s = labelled_set();
    // A restored backup: net-b (20) and v2 (32) both claim 16.
    Arc::make_mut(&mut s.virtual_networks[0]).mpls_label = Some(16);
    Arc::make_mut(&mut s.virtual_machine_interfaces[2]).mpls_label = Some(16);
    let d = decide(&s);
    assert_eq!(label(&d, &vn_key("t1", "net-b")), Some(16));
    let v2 = label(&d, &vmi_key("t1", "v2")).unwrap();
    assert_ne!(v2, 16);
    assert!(accepted(&d, &vmi_key("t1", "v2")).status, "not a conflict");
    // Out-of-range values in status are not kept.
    let mut s = labelled_set();
    Arc::make_mut(&mut s.virtual_networks[1]).mpls_label = Some(3); // net-a
    assert_eq!(label(&decide(&s), &vn_key("t1", "net-a")), Some(16));
    Arc::make_mut(&mut s.virtual_networks[1]).mpls_label = Some(1 << 20);
    assert_eq!(label(&decide(&s), &vn_key("t1", "net-a")), Some(16));
}

#[test]
fn a_deleted_or_refused_object_frees_its_label() {
    let s = labelled_set();
    let d = decide(&s);
    let v2 = label(&d, &vmi_key("t1", "v2"));
    // v2 is deleted: its label is free for the next newcomer.
    let mut without = s.clone();
    without
        .virtual_machine_interfaces
        .retain(|v| v.meta.name() != "v2");
    for v in &mut without.virtual_machine_interfaces {
        let v = Arc::make_mut(v);
        v.mpls_label = label(&d, &v.meta.key);
    }
    for n in &mut without.virtual_networks {
        let n = Arc::make_mut(n);
        n.mpls_label = label(&d, &n.meta.key);
    }
    without.virtual_machine_interfaces.push(
        vmi(
            "t1",
            "newcomer",
            99,
            "net-a",
            "02:00:00:00:00:09",
            &["10.0.0.9"],
        )
        .into(),
    );
    let after = decide(&without);
    assert_eq!(label(&after, &vmi_key("t1", "newcomer")), v2);
    assert_eq!(
        label(&after, &vmi_key("t1", "v3")),
        label(&d, &vmi_key("t1", "v3"))
    );

    // A refused object gets none, even with one in its status.
    let mut s = labelled_set();
    Arc::make_mut(&mut s.virtual_machine_interfaces[1]).mpls_label = Some(77); // v1, refused
    assert_eq!(label(&decide(&s), &vmi_key("t1", "v1")), None);
}

fn encapsulation_of(
    d: &trunkline_operator_core::Decisions,
    ns: &str,
    n: &str,
) -> Vec<Encapsulation> {
    match &d.get(&vn_key(ns, n)).unwrap().derived {
        DerivedStatus::VirtualNetwork { encapsulation, .. } => encapsulation.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_encapsulation_list_is_the_networks_or_the_cluster_default() {
    use Encapsulation::*;
    let mut s = Snapshot {
        virtual_networks: vec![
            vn("t1", "default", 1, &[], None).into(),
            vn("t1", "vxlan", 2, &[], None).into(),
        ],
        ..Snapshot::default()
    };
    Arc::make_mut(&mut s.virtual_networks[1]).encapsulation = Some(vec![Vxlan]);
    let d = decide(&s);
    assert_eq!(encapsulation_of(&d, "t1", "default"), [MplsOverUdp, Vxlan]);
    assert_eq!(encapsulation_of(&d, "t1", "vxlan"), [Vxlan]);

    let settings = Settings {
        encapsulation_priority: "VXLAN,MPLSoUDP".parse::<EncapsulationPriority>().unwrap(),
    };
    let d = decide_with(&s, &settings);
    assert_eq!(encapsulation_of(&d, "t1", "default"), [Vxlan, MplsOverUdp]);
    assert_eq!(encapsulation_of(&d, "t1", "vxlan"), [Vxlan]);
}

/// A router with an underlay address, a network with a VMI on it, and an
/// external VTEP joining the network with one host.
fn vtep_set() -> Snapshot {
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
        external_vteps: vec![
            xvtep(
                "tor-1",
                5,
                "192.0.2.50",
                &[(("t1", "net1"), &[("02:00:00:00:0a:01", &["10.0.0.50"])])],
            )
            .into(),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn a_valid_external_vtep_is_accepted_and_programmed_by_the_networks_nodes() {
    let mut s = vtep_set();
    let d = decide(&s);
    let a = accepted(&d, &xvtep_key("tor-1"));
    assert!(a.status, "{a:?}");
    let p = cond(&d, &xvtep_key("tor-1"), condition::PROGRAMMED);
    assert!(
        !p.status && p.message.contains("gw-1 (has not programmed it yet)"),
        "{}",
        p.message
    );
    hold(&mut s, "gw-1", &[xvtep_key("tor-1")]);
    let d = decide(&s);
    assert!(cond(&d, &xvtep_key("tor-1"), condition::PROGRAMMED).status);
    assert!(d.get(&xvtep_key("tor-1")).unwrap().is_ready());

    // Nobody holds the network: nothing programs the VTEP.
    s.logical_interfaces.clear();
    let p = cond(&decide(&s), &xvtep_key("tor-1"), condition::PROGRAMMED).clone();
    assert!(
        !p.status
            && p.message
                .contains("no gateway node holds any of its networks"),
        "{}",
        p.message
    );
}

#[test]
fn an_external_vtep_needs_its_networks_accepted_and_speaking_its_encapsulation() {
    let mut s = vtep_set();
    s.external_vteps[0] = xvtep(
        "tor-1",
        5,
        "192.0.2.50",
        &[(("t1", "nope"), &[]), (("t1", "net1"), &[])],
    )
    .into();
    let d = decide(&s);
    let r = resolved(&d, &xvtep_key("tor-1"));
    assert_eq!((r.status, r.reason), (false, reason::NOT_FOUND));
    assert!(
        r.message
            .contains("VirtualNetwork t1/nope does not exist: create it, or fix spec.networks"),
        "{}",
        r.message
    );

    let mut s = vtep_set();
    Arc::make_mut(&mut s.virtual_networks[0]).encapsulation =
        Some(vec![Encapsulation::MplsOverUdp]);
    let a = accepted(&decide(&s), &xvtep_key("tor-1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message.contains(
            "VirtualNetwork t1/net1 does not use VXLAN (its encapsulation: MPLSoUDP): add VXLAN"
        ),
        "{}",
        a.message
    );

    let mut s = vtep_set();
    Arc::make_mut(&mut s.virtual_networks[0]).vni = Some(9);
    s.virtual_networks
        .push(vn("t0", "older", 0, &[], Some(9)).into());
    let r = resolved(&decide(&s), &xvtep_key("tor-1")).clone();
    assert_eq!((r.status, r.reason), (false, reason::REF_NOT_ACCEPTED));
}

#[test]
fn an_external_vtep_address_is_nobody_elses_tunnel_endpoint() {
    let mut s = vtep_set();
    Arc::make_mut(&mut s.external_vteps[0]).address = Some("192.0.2.1".parse().unwrap());
    let a = accepted(&decide(&s), &xvtep_key("tor-1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::CONFLICT));
    assert!(
        a.message
            .contains("address 192.0.2.1 is the underlay address of PhysicalRouter gw-1"),
        "{}",
        a.message
    );

    let mut s = vtep_set();
    s.external_vteps
        .push(xvtep("tor-0", 1, "192.0.2.50", &[(("t1", "net1"), &[])]).into());
    let d = decide(&s);
    assert!(accepted(&d, &xvtep_key("tor-0")).status);
    let lost = accepted(&d, &xvtep_key("tor-1"));
    assert!(
        lost.message
            .contains("address 192.0.2.50 is already used by ExternalVTEP tor-0 (older)"),
        "{}",
        lost.message
    );
    s.external_vteps.retain(|x| x.meta.name() != "tor-0");
    assert!(accepted(&decide(&s), &xvtep_key("tor-1")).status);
}

#[test]
fn hosts_behind_an_external_vtep_are_inside_the_subnets() {
    for (ip, problem) in [
        (
            "10.0.1.5",
            "outside every subnet of VirtualNetwork t1/net1 (10.0.0.0/24)",
        ),
        (
            "10.0.0.1",
            "10.0.0.1 is the gateway address of subnet 10.0.0.0/24",
        ),
    ] {
        let mut s = vtep_set();
        Arc::make_mut(&mut s.external_vteps[0]).networks[0].endpoints[0].ips =
            vec![ip.parse().unwrap()];
        let a = accepted(&decide(&s), &xvtep_key("tor-1")).clone();
        assert_eq!((a.status, a.reason), (false, reason::INVALID), "{ip}");
        assert!(
            a.message
                .contains("spec.networks[t1/net1]: host 02:00:00:00:0a:01"),
            "{}",
            a.message
        );
        assert!(a.message.contains(problem), "{ip}: {}", a.message);
    }
}

#[test]
fn a_host_and_a_vmi_sharing_an_address_or_mac_the_newer_loses() {
    // The VMI (created 2) is older than the VTEP (5).
    let mut s = vtep_set();
    Arc::make_mut(&mut s.external_vteps[0]).networks[0].endpoints[0].ips =
        vec!["10.0.0.10".parse().unwrap()];
    Arc::make_mut(&mut s.external_vteps[0]).networks[0].endpoints[0].mac =
        "02-00-00-00-00-01".parse().unwrap();
    let d = decide(&s);
    assert!(accepted(&d, &vmi_key("t1", "vmi1")).status);
    let lost = accepted(&d, &xvtep_key("tor-1"));
    assert_eq!((lost.status, lost.reason), (false, reason::CONFLICT));
    for text in [
        "address 10.0.0.10 is already used by VirtualMachineInterface t1/vmi1 (older) in network t1/net1",
        "MAC address 02:00:00:00:00:01 is already used by VirtualMachineInterface t1/vmi1 (older)",
    ] {
        assert!(lost.message.contains(text), "{text}: {}", lost.message);
    }

    // The VTEP is older: the VMI loses, and the message says how to free it.
    Arc::make_mut(&mut s.external_vteps[0]).meta.created = Some(0);
    let d = decide(&s);
    assert!(accepted(&d, &xvtep_key("tor-1")).status);
    let lost = accepted(&d, &vmi_key("t1", "vmi1"));
    assert_eq!((lost.status, lost.reason), (false, reason::CONFLICT));
    assert!(
        lost.message.contains("address 10.0.0.10 is already used by ExternalVTEP tor-1 (older) in network net1: use another address, or remove that host from the ExternalVTEP's endpoints"),
        "{}",
        lost.message
    );
    assert_eq!(label(&d, &vmi_key("t1", "vmi1")), None);
    // The same address in another network is fine.
    let mut s = vtep_set();
    s.virtual_networks
        .push(vn("t1", "net2", 1, &["10.0.0.0/24"], None).into());
    Arc::make_mut(&mut s.external_vteps[0]).networks[0].network =
        trunkline_model::NamespacedName::new("t1", "net2");
    Arc::make_mut(&mut s.external_vteps[0]).networks[0].endpoints[0].ips =
        vec!["10.0.0.10".parse().unwrap()];
    assert!(accepted(&decide(&s), &xvtep_key("tor-1")).status);
}

#[test]
fn hosts_of_two_external_vteps_go_to_the_older() {
    let mut s = vtep_set();
    s.external_vteps.push(
        xvtep(
            "tor-2",
            9,
            "192.0.2.60",
            &[(("t1", "net1"), &[("02:00:00:00:0a:02", &["10.0.0.50"])])],
        )
        .into(),
    );
    let d = decide(&s);
    assert!(accepted(&d, &xvtep_key("tor-1")).status);
    let lost = accepted(&d, &xvtep_key("tor-2"));
    assert!(
        lost.message
            .contains("address 10.0.0.50 is already used by ExternalVTEP tor-1 (older)"),
        "{}",
        lost.message
    );
}

#[test]
fn external_vteps_are_decided_and_counted() {
    let d = decide(&vtep_set());
    let types: Vec<&str> = d
        .get(&xvtep_key("tor-1"))
        .unwrap()
        .conditions
        .iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["Accepted", "ResolvedRefs", "Programmed", "Ready"]);
    assert!(matches!(
        &d.get(&xvtep_key("tor-1")).unwrap().derived,
        DerivedStatus::ExternalVtep { networks_summary: Some(networks) } if networks.starts_with("t1/")
    ));
    assert!(trunkline_operator_core::DECIDED_KINDS.contains(&trunkline_model::Kind::ExternalVTEP));
}

#[test]
fn a_host_behind_an_external_vtep_cannot_use_the_broadcast_address() {
    let mut s = vtep_set();
    Arc::make_mut(&mut s.external_vteps[0]).networks[0].endpoints[0].ips =
        vec!["10.0.0.255".parse().unwrap()];
    let a = accepted(&decide(&s), &xvtep_key("tor-1")).clone();
    assert_eq!((a.status, a.reason), (false, reason::INVALID));
    assert!(
        a.message
            .contains("address 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24"),
        "{}",
        a.message
    );
}
