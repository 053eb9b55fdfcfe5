//! Security groups in the operator: a VMI naming a missing group is told
//! so (and stays accepted), a group reports its users and its missing
//! remote groups, and is labelled for the nodes that need it.

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::{Kind, Object, ObjectKey, Snapshot};
use trunkline_operator_core::{Change, Decider, DerivedStatus, Settings, decide};

fn sg_key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::namespaced(Kind::SecurityGroup, ns, name)
}

/// A network, two VMIs bound on gw-1 (one in group web, one in none: the
/// default), a third on gw-2 in group admin.
fn placed() -> Snapshot {
    let mut web = vmi("t", "web-1", 2, "net", "02:00:00:00:00:01", &["10.0.0.10"]);
    web.security_groups = vec!["web".into()];
    let plain = vmi("t", "plain", 2, "net", "02:00:00:00:00:02", &["10.0.0.11"]);
    let mut admin = vmi(
        "t",
        "admin-1",
        2,
        "net",
        "02:00:00:00:00:03",
        &["10.0.0.12"],
    );
    admin.security_groups = vec!["admin".into()];
    Snapshot {
        physical_routers: vec![
            router("gw-1", 1, &["eth1"]).into(),
            router("gw-2", 1, &["eth1"]).into(),
        ],
        virtual_networks: vec![vn("t", "net", 1, &["10.0.0.0/24"], None).into()],
        virtual_machine_interfaces: vec![web.into(), plain.into(), admin.into()],
        logical_interfaces: vec![
            li("l1", 2, "gw-1", "eth1", 10, ("t", "web-1")).into(),
            li("l2", 2, "gw-1", "eth1", 11, ("t", "plain")).into(),
            li("l3", 2, "gw-2", "eth1", 12, ("t", "admin-1")).into(),
        ],
        security_groups: vec![
            // web admits TCP 22 from admin; admin admits anyone.
            security_group("t", "web", 3, Some("admin")).into(),
            security_group("t", "admin", 3, None).into(),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn a_vmi_naming_a_missing_group_stays_accepted_and_is_told_why_it_is_not_ready() {
    let mut s = placed();
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).security_groups =
        vec!["web".into(), "nope".into()];
    let d = decide(&s);
    let key = vmi_key("t", "web-1");
    assert!(accepted(&d, &key).status);
    let ready = cond(&d, &key, condition::READY);
    assert!(!ready.status);
    assert_eq!(ready.reason, reason::GROUP_NOT_FOUND);
    assert!(
        ready.message.contains("SecurityGroup t/nope"),
        "{}",
        ready.message
    );
    // Naming no group without a SecurityGroup `default`: not policed,
    // nothing missing.
    let plain = cond(&d, &vmi_key("t", "plain"), condition::READY);
    assert_ne!(plain.reason, reason::GROUP_NOT_FOUND);
    // Naming `default` explicitly when it does not exist is missing.
    let mut named = s.clone();
    Arc::make_mut(&mut named.virtual_machine_interfaces[1]).security_groups =
        vec!["default".into()];
    let d = decide(&named);
    let ready = cond(&d, &vmi_key("t", "plain"), condition::READY);
    assert_eq!(ready.reason, reason::GROUP_NOT_FOUND);

    // Creating the group clears it, incrementally too.
    let mut decider = Decider::new(Settings::default());
    decider.apply(s.clone().into_objects().map(Change::Upsert));
    let changed = decider.apply([Change::Upsert(Object::SecurityGroup(security_group(
        "t", "nope", 5, None,
    )))]);
    assert!(changed.contains(&key));
    let ready = cond(decider.decisions(), &key, condition::READY);
    assert_ne!(ready.reason, reason::GROUP_NOT_FOUND);
}

#[test]
fn a_group_reports_its_users_and_is_enforced_once_the_nodes_of_its_vmis_hold_it() {
    let mut s = placed();
    s.security_groups
        .push(security_group("t", "default", 3, Some("default")).into());
    let d = decide(&s);
    let count = |name: &str| match &d.get(&sg_key("t", name)).unwrap().derived {
        DerivedStatus::SecurityGroup { interface_count } => *interface_count,
        other => panic!("{other:?}"),
    };
    assert_eq!(count("web"), 1);
    assert_eq!(count("admin"), 1);
    assert_eq!(count("default"), 1, "the VMI naming no group uses default");
    let key = sg_key("t", "web");
    assert!(accepted(&d, &key).status);
    // gw-1 (web-1's node) has not reported tables built from it yet.
    let enforced = cond(&d, &key, condition::ENFORCED);
    assert!(!enforced.status);
    assert_eq!(enforced.reason, reason::PENDING);
    assert!(!cond(&d, &key, condition::READY).status);
    // gw-2 holding it changes nothing: its VMI is on gw-1.
    let mut held = s.clone();
    hold(&mut held, "gw-2", std::slice::from_ref(&key));
    assert!(!cond(&decide(&held), &key, condition::ENFORCED).status);
    hold(&mut held, "gw-1", std::slice::from_ref(&key));
    let d = decide(&held);
    let enforced = cond(&d, &key, condition::ENFORCED);
    assert!(enforced.status, "{}", enforced.message);
    assert!(enforced.message.contains("gw-1"), "{}", enforced.message);
    assert!(cond(&d, &key, condition::READY).status);
    // A group no bound VMI uses has nothing to enforce.
    let mut unused = s.clone();
    unused
        .security_groups
        .push(security_group("t", "spare", 3, None).into());
    let d = decide(&unused);
    let enforced = cond(&d, &sg_key("t", "spare"), condition::ENFORCED);
    assert!(enforced.status, "{}", enforced.message);

    // A VMI without port security uses no group.
    Arc::make_mut(&mut s.virtual_machine_interfaces[0]).port_security = false;
    let d = decide(&s);
    assert_eq!(
        d.get(&key).unwrap().derived,
        DerivedStatus::SecurityGroup { interface_count: 0 }
    );
}

#[test]
fn a_rule_naming_a_missing_group_matches_no_one_and_says_so() {
    let mut s = placed();
    s.security_groups[0] = security_group("t", "web", 3, Some("ghost")).into();
    let d = decide(&s);
    let key = sg_key("t", "web");
    assert!(accepted(&d, &key).status);
    let ready = cond(&d, &key, condition::READY);
    assert_eq!(ready.reason, reason::GROUP_NOT_FOUND);
    assert!(
        ready.message.contains("remoteGroup t/ghost"),
        "{}",
        ready.message
    );
}

#[test]
fn a_group_goes_to_the_nodes_of_its_users_and_of_the_groups_naming_it() {
    let s = placed();
    let mut decider = Decider::new(Settings::default());
    decider.apply(s.clone().into_objects().map(Change::Upsert));
    let nodes =
        |d: &Decider, name: &str| -> Vec<String> { d.node_labels(&sg_key("t", name)).to_vec() };
    // web: its user web-1 is on gw-1.
    assert_eq!(nodes(&decider, "web"), ["gw-1"]);
    // admin: its user on gw-2, and web (on gw-1) names it.
    assert_eq!(nodes(&decider, "admin"), ["gw-1", "gw-2"]);

    // web-1's logical interface moves to gw-2: the labels follow.
    let moved = li("l1", 2, "gw-2", "eth1", 10, ("t", "web-1"));
    decider.apply([Change::Upsert(Object::LogicalInterface(moved))]);
    assert_eq!(nodes(&decider, "web"), ["gw-2"]);
    assert_eq!(nodes(&decider, "admin"), ["gw-2"]);
    let mut scratch = Decider::new(Settings::default());
    scratch.apply(decider.snapshot().into_objects().map(Change::Upsert));
    assert_eq!(decider.all_node_labels(), scratch.all_node_labels());
}
