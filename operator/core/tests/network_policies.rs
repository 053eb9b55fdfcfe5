//! Network policies in the operator: a policy whose rules name a missing
//! network, or one that does not name it, stays accepted and says why it
//! is not ready; it counts the networks naming it; it is Programmed once
//! the nodes holding either network of a connection run it, and those
//! nodes get the other network's VMIs, incrementally as from scratch.

mod common;

use std::sync::Arc;

use common::*;
use trunkline_api::status::{condition, reason};
use trunkline_model::virtual_network_policy::{Action, NetworkRule};
use trunkline_model::{
    Kind, Meta, NamespacedName, Object, ObjectKey, Protocol, Snapshot, VirtualNetworkPolicy,
};
use trunkline_operator_core::{Change, Decider, DerivedStatus, Settings, decide};

fn np_key(name: &str) -> ObjectKey {
    ObjectKey::namespaced(Kind::VirtualNetworkPolicy, "t", name)
}

/// Policy `ssh`: Allow TCP 22 red <> blue.
fn ssh() -> VirtualNetworkPolicy {
    VirtualNetworkPolicy {
        meta: Meta::namespaced(Kind::VirtualNetworkPolicy, "t", "ssh", Some(3), 1),
        priority: None,
        rules: vec![NetworkRule {
            action: Action::Allow,
            protocol: Protocol::Tcp,
            ports: Some(22..=22),
            source: NamespacedName::new("t", "red"),
            destination: NamespacedName::new("t", "blue"),
            both_ways: true,
        }],
    }
}

fn cnp_key(name: &str) -> ObjectKey {
    ObjectKey::cluster(Kind::ClusterVirtualNetworkPolicy, name)
}

/// The administrator's `cross`: Allow TCP 22 t/red <> u/green.
fn cross() -> VirtualNetworkPolicy {
    VirtualNetworkPolicy {
        meta: Meta::cluster(Kind::ClusterVirtualNetworkPolicy, "cross", Some(4), 1),
        priority: Some(0),
        rules: vec![NetworkRule {
            action: Action::Allow,
            protocol: Protocol::Tcp,
            ports: Some(22..=22),
            source: NamespacedName::new("t", "red"),
            destination: NamespacedName::new("u", "green"),
            both_ways: true,
        }],
    }
}

/// `placed` plus network u/green (VMI g on gw-1) naming no policy, and the
/// cluster policy `cross`.
fn placed_across() -> Snapshot {
    let mut s = placed(&[], &[]);
    s.virtual_network_policies = vec![cross().into()];
    s.virtual_networks
        .push(vn("u", "green", 1, &["10.0.3.0/24"], None).into());
    s.virtual_machine_interfaces
        .push(vmi("u", "g", 2, "green", "02:00:00:00:00:03", &["10.0.3.10"]).into());
    s.logical_interfaces
        .push(li("l3", 2, "gw-1", "eth1", 12, ("u", "g")).into());
    s
}

/// red (VMI r on gw-1) and blue (VMI b on gw-1), naming `red_names` and
/// `blue_names`.
fn placed(red_names: &[&str], blue_names: &[&str]) -> Snapshot {
    let mut red = vn("t", "red", 1, &["10.0.1.0/24"], None);
    red.network_policies = red_names.iter().map(|s| s.to_string()).collect();
    let mut blue = vn("t", "blue", 1, &["10.0.2.0/24"], None);
    blue.network_policies = blue_names.iter().map(|s| s.to_string()).collect();
    Snapshot {
        physical_routers: vec![
            router("gw-1", 1, &["eth1"]).into(),
            router("gw-2", 1, &["eth1"]).into(),
        ],
        virtual_networks: vec![red.into(), blue.into()],
        virtual_machine_interfaces: vec![
            vmi("t", "r", 2, "red", "02:00:00:00:00:01", &["10.0.1.10"]).into(),
            vmi("t", "b", 2, "blue", "02:00:00:00:00:02", &["10.0.2.10"]).into(),
        ],
        logical_interfaces: vec![
            li("l1", 2, "gw-1", "eth1", 10, ("t", "r")).into(),
            li("l2", 2, "gw-1", "eth1", 11, ("t", "b")).into(),
        ],
        virtual_network_policies: vec![ssh().into()],
        ..Snapshot::default()
    }
}

#[test]
fn a_rule_naming_an_unattached_or_missing_network_is_told_why_it_is_not_ready() {
    let d = decide(&placed(&["ssh"], &[]));
    let key = np_key("ssh");
    assert!(accepted(&d, &key).status, "still accepted");
    let ready = cond(&d, &key, condition::READY);
    assert!(!ready.status);
    assert_eq!(ready.reason, reason::NOT_ATTACHED);
    assert!(
        ready.message.contains("VirtualNetwork blue"),
        "{}",
        ready.message
    );
    match &d.get(&key).unwrap().derived {
        DerivedStatus::VirtualNetworkPolicy { network_count } => assert_eq!(*network_count, 1),
        other => panic!("{other:?}"),
    }
    // A rule naming a network that does not exist.
    let mut missing = placed(&["ssh"], &["ssh"]);
    Arc::make_mut(&mut missing.virtual_network_policies[0]).rules[0].destination =
        NamespacedName::new("t", "green");
    let d = decide(&missing);
    assert_eq!(
        cond(&d, &key, condition::READY).reason,
        reason::NETWORK_NOT_FOUND
    );
    // Connecting nothing, it has nothing to program.
    assert!(cond(&d, &key, condition::PROGRAMMED).status);
}

#[test]
fn a_connecting_policy_is_programmed_once_the_node_of_both_networks_runs_it() {
    let s = placed(&["ssh"], &["ssh"]);
    let key = np_key("ssh");
    let d = decide(&s);
    assert!(cond(&d, &key, condition::ACCEPTED).status);
    let programmed = cond(&d, &key, condition::PROGRAMMED);
    assert!(!programmed.status, "gw-1 has not reported it yet");
    assert_eq!(programmed.reason, reason::PENDING);
    let mut held = s.clone();
    hold(&mut held, "gw-1", std::slice::from_ref(&key));
    let d = decide(&held);
    let programmed = cond(&d, &key, condition::PROGRAMMED);
    assert!(programmed.status, "{}", programmed.message);
    assert!(
        programmed.message.contains("gw-1"),
        "{}",
        programmed.message
    );
    assert!(
        !programmed.message.contains("gw-2"),
        "{}",
        programmed.message
    );
    assert!(cond(&d, &key, condition::READY).status);
}

#[test]
fn attaching_the_policy_to_the_second_network_clears_it_incrementally() {
    let key = np_key("ssh");
    let mut decider = Decider::new(Settings::default());
    decider.apply(placed(&["ssh"], &[]).into_objects().map(Change::Upsert));
    assert_eq!(
        cond(decider.decisions(), &key, condition::READY).reason,
        reason::NOT_ATTACHED
    );
    let attached = placed(&["ssh"], &["ssh"]);
    let blue = attached
        .virtual_networks
        .iter()
        .find(|n| n.meta.name() == "blue")
        .unwrap()
        .as_ref()
        .clone();
    let changed = decider.apply([Change::Upsert(Object::VirtualNetwork(blue))]);
    assert!(changed.contains(&key), "{changed:?}");
    let ready = cond(decider.decisions(), &key, condition::READY);
    assert_ne!(ready.reason, reason::NOT_ATTACHED);
    assert_eq!(
        decider.decisions().get(&key),
        decide(&attached).get(&key),
        "incremental equals from scratch"
    );
    // Deleted: its decision goes.
    decider.apply([Change::Delete(key.clone())]);
    assert!(decider.decisions().get(&key).is_none());
}

#[test]
fn a_policy_and_its_networks_vmis_go_to_the_nodes_holding_either_network() {
    let mut decider = Decider::new(Settings::default());
    decider.apply(
        placed(&["ssh"], &["ssh"])
            .into_objects()
            .map(Change::Upsert),
    );
    let nodes = |d: &Decider, key: &ObjectKey| -> Vec<String> { d.node_labels(key).to_vec() };
    let same_as_from_scratch = |decider: &Decider| {
        let mut scratch = Decider::new(Settings::default());
        scratch.apply(decider.snapshot().into_objects().map(Change::Upsert));
        assert_eq!(decider.all_node_labels(), scratch.all_node_labels());
        assert_eq!(
            decider.decisions().get(&np_key("ssh")),
            scratch.decisions().get(&np_key("ssh"))
        );
    };
    assert_eq!(nodes(&decider, &np_key("ssh")), ["gw-1"]);
    // blue's VMI moves to gw-2: each node holds one network, both run the
    // policy, and each gets the other network with its VMI and logical
    // interface (routes across nodes).
    let moved = li("l2", 2, "gw-2", "eth1", 11, ("t", "b"));
    decider.apply([Change::Upsert(Object::LogicalInterface(moved))]);
    let both = ["gw-1", "gw-2"];
    assert_eq!(nodes(&decider, &np_key("ssh")), both);
    let blue = ObjectKey::namespaced(Kind::VirtualNetwork, "t", "blue");
    let b = ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "b");
    let r = ObjectKey::namespaced(Kind::VirtualMachineInterface, "t", "r");
    let l2 = ObjectKey::cluster(Kind::LogicalInterface, "l2");
    for key in [&blue, &b, &r, &l2] {
        assert_eq!(nodes(&decider, key), both, "{key:?}");
    }
    same_as_from_scratch(&decider);
    // The policy goes: each network's objects stay on its own node.
    decider.apply([Change::Delete(np_key("ssh"))]);
    assert_eq!(nodes(&decider, &blue), ["gw-2"]);
    assert_eq!(nodes(&decider, &b), ["gw-2"]);
    assert_eq!(nodes(&decider, &r), ["gw-1"]);
    same_as_from_scratch(&decider);
}

#[test]
fn a_cluster_policy_connects_two_tenants_without_their_consent() {
    let s = placed_across();
    let key = cnp_key("cross");
    let d = decide(&s);
    assert!(accepted(&d, &key).status);
    match &d.get(&key).unwrap().derived {
        DerivedStatus::VirtualNetworkPolicy { network_count } => assert_eq!(*network_count, 2),
        other => panic!("{other:?}"),
    }
    let programmed = cond(&d, &key, condition::PROGRAMMED);
    assert!(
        !programmed.status,
        "gw-1 holds both networks, has not run it"
    );
    let mut held = s.clone();
    hold(&mut held, "gw-1", std::slice::from_ref(&key));
    let d = decide(&held);
    assert!(cond(&d, &key, condition::READY).status);

    // Its networks' node gets it, incrementally as from scratch, and a
    // missing network is named with its namespace.
    let mut decider = Decider::new(Settings::default());
    decider.apply(s.clone().into_objects().map(Change::Upsert));
    let labels: Vec<String> = decider.node_labels(&key).to_vec();
    assert_eq!(labels, ["gw-1"]);
    let changed = decider.apply([Change::Delete(ObjectKey::namespaced(
        Kind::VirtualNetwork,
        "u",
        "green",
    ))]);
    assert!(changed.contains(&key), "{changed:?}");
    let ready = cond(decider.decisions(), &key, condition::READY);
    assert_eq!(ready.reason, reason::NETWORK_NOT_FOUND);
    assert!(ready.message.contains("u/green"), "{}", ready.message);
    assert!(decider.node_labels(&key).is_empty());
    let mut scratch = Decider::new(Settings::default());
    scratch.apply(decider.snapshot().into_objects().map(Change::Upsert));
    assert_eq!(decider.all_node_labels(), scratch.all_node_labels());
    assert_eq!(decider.decisions().get(&key), scratch.decisions().get(&key));
    decider.apply([Change::Delete(key.clone())]);
    assert!(decider.decisions().get(&key).is_none());
}

#[test]
fn a_tenants_policy_naming_another_tenants_network_is_refused_in_status() {
    // t's own policy names "green", which exists only in namespace u.
    let mut s = placed_across();
    let mut own = ssh();
    own.rules[0].destination = NamespacedName::new("t", "green");
    s.virtual_network_policies = vec![own.into()];
    Arc::make_mut(&mut s.virtual_networks[0]).network_policies = vec!["ssh".into()];
    let d = decide(&s);
    let key = np_key("ssh");
    let ready = cond(&d, &key, condition::READY);
    assert!(!ready.status);
    assert_eq!(ready.reason, reason::NETWORK_NOT_FOUND);
    assert!(
        ready.message.contains("ClusterVirtualNetworkPolicy"),
        "{}",
        ready.message
    );
}

#[test]
fn cluster_policies_of_one_priority_on_one_connection_say_so() {
    let mut s = placed_across();
    let mut twin = cross();
    twin.meta = Meta::cluster(Kind::ClusterVirtualNetworkPolicy, "also", Some(1), 1);
    let mut later = cross();
    later.meta = Meta::cluster(Kind::ClusterVirtualNetworkPolicy, "later", Some(1), 1);
    later.priority = Some(5);
    s.virtual_network_policies
        .extend([twin.into(), later.into()]);
    let d = decide(&s);
    let tie = cond(&d, &cnp_key("cross"), condition::CONFLICTED);
    assert!(tie.status);
    assert_eq!(tie.reason, reason::PRIORITY_TIE);
    assert!(tie.message.contains("also"), "{}", tie.message);
    assert!(!tie.message.contains("later"), "{}", tie.message);
    let tie = cond(&d, &cnp_key("also"), condition::CONFLICTED);
    assert!(
        tie.status && tie.message.contains("cross"),
        "{}",
        tie.message
    );
    let alone = cond(&d, &cnp_key("later"), condition::CONFLICTED);
    assert!(!alone.status, "{}", alone.message);
    // Ready is not affected: the tie is ordered, by name.
    assert_eq!(
        cond(&d, &cnp_key("cross"), condition::READY).reason,
        cond(&d, &cnp_key("later"), condition::READY).reason
    );
    // A namespaced policy has no such condition.
    let mut own = placed(&["ssh"], &["ssh"]);
    own.virtual_network_policies.push(cross().into());
    assert!(
        decide(&own)
            .get(&np_key("ssh"))
            .unwrap()
            .condition(condition::CONFLICTED)
            .is_none()
    );
}
