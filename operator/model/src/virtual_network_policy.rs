//! Network policies: ordered rules connecting virtual networks of one
//! namespace (issue 18's second kind, `VirtualNetworkPolicy`) or, by the
//! administrator's `ClusterVirtualNetworkPolicy`, of any namespaces; and
//! which networks they connect.
//!
//! ```text
//!   VirtualNetwork.spec.networkPolicies ──> policies of its namespace, in order
//!   ClusterVirtualNetworkPolicy ──names──> networks of any namespace (no consent needed)
//!   VirtualNetworkPolicy { rules: [Rule { action, protocol, ports, source, destination, both_ways }],
//!                          priority: Some(p) for a cluster policy }
//!
//!   links(networks, policies):
//!     red and blue are connected  <=>  a cluster policy has a rule between them,
//!                                      or (same namespace) some policy named by both has one
//!     link red -> blue: the cluster policies with a rule between them, by (priority, name),
//!                       then the namespaced policies both name, in red's order,
//!                       each with its rules for flows opened from red (source red, or both ways)
//! ```
//!
//! Both kinds become this one type (a cluster policy's namespace is empty,
//! its rules' networks carry their own namespaces), so the operator and the
//! node dataplane handle them with the same code. A rule naming a network
//! that does not exist, or (namespaced) that does not name the policy,
//! connects nothing: [`VirtualNetworkPolicy::problems`] says so (the
//! operator's `Ready` condition).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use trunkline_api::security_group::RuleProtocol;
use trunkline_api::virtual_network_policy::{NetworkPolicyAction, RuleDirection};

use crate::from_api;
use crate::object::{Kind, Meta, NamespacedName};
use crate::security_group::Protocol;
use crate::virtual_network::VirtualNetwork;

/// A network policy: a tenant's (namespaced) or the administrator's
/// (cluster-scoped, `meta.key.kind` is `ClusterVirtualNetworkPolicy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualNetworkPolicy {
    /// Identity (namespaced, or cluster-scoped for a cluster policy).
    pub meta: Meta,
    /// A cluster policy's priority (lower first); `None` for a namespaced
    /// one.
    pub priority: Option<u16>,
    /// Its rules, in order.
    pub rules: Vec<NetworkRule>,
}

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The flow crosses.
    Allow,
    /// The flow is dropped.
    Deny,
    /// The next policy the sending network names decides.
    Pass,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetworkRule {
    /// What it does.
    pub action: Action,
    /// The protocol.
    pub protocol: Protocol,
    /// Destination ports (TCP and UDP); `None`: every port.
    pub ports: Option<RangeInclusive<u16>>,
    /// The network opening the flows (a namespaced policy's rules name
    /// networks of its own namespace).
    pub source: NamespacedName,
    /// The network they go to.
    pub destination: NamespacedName,
    /// Whether flows opened from `destination` toward `source` match too.
    pub both_ways: bool,
}

impl NetworkRule {
    /// Whether the rule is about flows opened from network `from` toward
    /// network `to`.
    pub fn applies(&self, from: &NamespacedName, to: &NamespacedName) -> bool {
        (self.source == *from && self.destination == *to)
            || (self.both_ways && self.source == *to && self.destination == *from)
    }

    /// Whether the rule is between `a` and `b`, either way.
    pub fn between(&self, a: &NamespacedName, b: &NamespacedName) -> bool {
        (self.source == *a && self.destination == *b)
            || (self.source == *b && self.destination == *a)
    }
}

/// Why a policy connects less than its rules say.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// Rule `rule` names network `network`, which does not exist.
    NetworkNotFound {
        /// The rule's index.
        rule: usize,
        /// The network.
        network: NamespacedName,
        /// Whether the policy is a cluster policy (its rules name a
        /// namespace; a namespaced policy's only its own).
        cluster: bool,
    },
    /// Rule `rule` of a namespaced policy names network `network`, which
    /// does not name the policy in `spec.networkPolicies`.
    NotAttached {
        /// The rule's index.
        rule: usize,
        /// The network.
        network: NamespacedName,
    },
}

impl Problem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::NetworkNotFound { .. } => "NetworkNotFound",
            Problem::NotAttached { .. } => "NotAttached",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NetworkNotFound {
                rule,
                network,
                cluster: true,
            } => write!(
                f,
                "spec.rules[{rule}] names VirtualNetwork {network}, which does not exist: create it, or name an existing network"
            ),
            Problem::NetworkNotFound {
                rule,
                network,
                cluster: false,
            } => write!(
                f,
                "spec.rules[{rule}] names VirtualNetwork {}, which does not exist in this namespace: create it, or name an existing network (a VirtualNetworkPolicy connects networks of its own namespace only; networks of different namespaces are connected by an administrator's ClusterVirtualNetworkPolicy)",
                network.name
            ),
            Problem::NotAttached { rule, network } => write!(
                f,
                "spec.rules[{rule}] names VirtualNetwork {}, which does not name this policy: add the policy to the network's spec.networkPolicies",
                network.name
            ),
        }
    }
}

impl VirtualNetworkPolicy {
    /// `namespace/name` of the policy.
    pub fn name(&self) -> NamespacedName {
        self.meta.namespaced_name()
    }

    /// Converts the API object (see [`crate::from_api`]).
    pub fn from_api(policy: &trunkline_api::VirtualNetworkPolicy) -> Self {
        let namespace = policy.metadata.namespace.clone().unwrap_or_default();
        let rules = policy
            .spec
            .rules
            .iter()
            .map(|r| {
                rule(
                    r.action,
                    r.protocol,
                    r.ports.map(|p| p.min..=p.max),
                    NamespacedName::new(&namespace, r.source.as_str()),
                    NamespacedName::new(&namespace, r.destination.as_str()),
                    r.direction,
                )
            })
            .collect();
        let conditions = policy.status.as_ref().map(|s| &s.conditions[..]);
        VirtualNetworkPolicy {
            meta: from_api::meta(
                Kind::VirtualNetworkPolicy,
                &policy.metadata,
                conditions.unwrap_or_default(),
            ),
            priority: None,
            rules,
        }
    }

    /// Converts the administrator's API object (see [`crate::from_api`]).
    pub fn from_cluster_api(policy: &trunkline_api::ClusterVirtualNetworkPolicy) -> Self {
        let network = |r: &trunkline_api::fields::NamespacedRef| {
            NamespacedName::new(r.namespace.as_str(), r.name.as_str())
        };
        let rules = policy
            .spec
            .rules
            .iter()
            .map(|r| {
                rule(
                    r.action,
                    r.protocol,
                    r.ports.map(|p| p.min..=p.max),
                    network(&r.source),
                    network(&r.destination),
                    r.direction,
                )
            })
            .collect();
        let conditions = policy.status.as_ref().map(|s| &s.conditions[..]);
        VirtualNetworkPolicy {
            meta: from_api::meta(
                Kind::ClusterVirtualNetworkPolicy,
                &policy.metadata,
                conditions.unwrap_or_default(),
            ),
            priority: Some(policy.spec.priority),
            rules,
        }
    }

    /// Whether this is the administrator's cluster-scoped policy.
    pub fn is_cluster(&self) -> bool {
        self.priority.is_some()
    }

    /// The networks its rules name, each once.
    pub fn networks(&self) -> BTreeSet<&NamespacedName> {
        self.rules
            .iter()
            .flat_map(|r| [&r.source, &r.destination])
            .collect()
    }

    /// What its rules name that connects nothing, given every network.
    pub fn problems(&self, networks: &[VirtualNetwork]) -> Vec<Problem> {
        let own = self.meta.namespaced_name().name;
        let mut out = Vec::new();
        for (rule, r) in self.rules.iter().enumerate() {
            for network in [&r.source, &r.destination] {
                let found = networks
                    .iter()
                    .find(|n| n.meta.namespaced_name() == *network);
                match found {
                    None => out.push(Problem::NetworkNotFound {
                        rule,
                        network: network.clone(),
                        cluster: self.is_cluster(),
                    }),
                    // The administrator's policy needs no consent.
                    Some(_) if self.is_cluster() => {}
                    Some(n) if !n.network_policies.contains(&own) => {
                        out.push(Problem::NotAttached {
                            rule,
                            network: network.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// One rule from its API fields.
fn rule(
    action: NetworkPolicyAction,
    protocol: RuleProtocol,
    ports: Option<RangeInclusive<u16>>,
    source: NamespacedName,
    destination: NamespacedName,
    direction: RuleDirection,
) -> NetworkRule {
    NetworkRule {
        action: match action {
            NetworkPolicyAction::Allow => Action::Allow,
            NetworkPolicyAction::Deny => Action::Deny,
            NetworkPolicyAction::Pass => Action::Pass,
        },
        protocol: match protocol {
            RuleProtocol::Any => Protocol::Any,
            RuleProtocol::Tcp => Protocol::Tcp,
            RuleProtocol::Udp => Protocol::Udp,
            RuleProtocol::Icmp => Protocol::Icmp,
        },
        ports,
        source,
        destination,
        both_ways: direction == RuleDirection::Both,
    }
}

/// The rules of one policy for one direction of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPolicy {
    /// The policy (a cluster policy's namespace is empty).
    pub policy: NamespacedName,
    /// Its rules for flows opened in this direction, with their index in
    /// `spec.rules`, in order.
    pub rules: Vec<(usize, NetworkRule)>,
}

/// One direction of a connection between two networks of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The network opening the flows.
    pub from: NamespacedName,
    /// The network they go to (whose VMIs' routes `from` gets).
    pub to: NamespacedName,
    /// The cluster policies with a rule between the two networks, by
    /// (priority, name), then the namespaced policies both name, in
    /// `from`'s order, each with its rules for this direction (possibly
    /// none: then no flow opens this way).
    pub policies: Vec<LinkPolicy>,
}

impl LinkPolicy {
    /// How the dataplane names the policy (metrics, traces): `namespace/name`
    /// for a namespaced policy, the bare name for a cluster policy (which
    /// can never contain a `/`).
    pub fn label(&self) -> String {
        if self.policy.namespace.is_empty() {
            self.policy.name.clone()
        } else {
            self.policy.to_string()
        }
    }
}

/// Every direction of every connection: for each ordered pair of distinct
/// networks that a cluster policy has a rule between, or (in one
/// namespace) that both name a policy with a rule between them. Sorted by
/// (from, to).
pub fn links(
    networks: &[impl Borrow<VirtualNetwork>],
    policies: &[impl Borrow<VirtualNetworkPolicy>],
) -> Vec<Link> {
    let by_name: BTreeMap<NamespacedName, &VirtualNetworkPolicy> = policies
        .iter()
        .map(Borrow::borrow)
        .filter(|p| !p.is_cluster())
        .map(|p| (p.name(), p))
        .collect();
    let mut cluster: Vec<&VirtualNetworkPolicy> = policies
        .iter()
        .map(Borrow::borrow)
        .filter(|p| p.is_cluster())
        .collect();
    cluster.sort_by(|a, b| (a.priority, a.meta.name()).cmp(&(b.priority, b.meta.name())));
    let link_policy =
        |p: &VirtualNetworkPolicy, from: &NamespacedName, to: &NamespacedName| LinkPolicy {
            policy: p.name(),
            rules: p
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.applies(from, to))
                .map(|(i, r)| (i, r.clone()))
                .collect(),
        };
    // The pairs worth looking at: those a cluster policy names, and those
    // of one namespace.
    let names: BTreeMap<NamespacedName, &VirtualNetwork> = networks
        .iter()
        .map(Borrow::borrow)
        .map(|n: &VirtualNetwork| (n.meta.namespaced_name(), n))
        .collect();
    let mut pairs: BTreeSet<(&NamespacedName, &NamespacedName)> = BTreeSet::new();
    for p in &cluster {
        for r in &p.rules {
            if let (Some((s, _)), Some((d, _))) = (
                names.get_key_value(&r.source),
                names.get_key_value(&r.destination),
            ) {
                pairs.insert((s, d));
                pairs.insert((d, s));
            }
        }
    }
    for from in names.keys() {
        for to in names.keys() {
            if from.namespace == to.namespace && from != to {
                pairs.insert((from, to));
            }
        }
    }
    let mut out = Vec::new();
    for (from_name, to_name) in pairs {
        let (from, to) = (names[from_name], names[to_name]);
        let admin: Vec<&VirtualNetworkPolicy> = cluster
            .iter()
            .copied()
            .filter(|p| p.rules.iter().any(|r| r.between(from_name, to_name)))
            .collect();
        let shared: Vec<&VirtualNetworkPolicy> = if from_name.namespace == to_name.namespace {
            from.network_policies
                .iter()
                .filter(|p| to.network_policies.contains(p))
                .filter_map(|p| {
                    by_name
                        .get(&NamespacedName::new(&from_name.namespace, p))
                        .copied()
                })
                .collect()
        } else {
            Vec::new()
        };
        let connected = !admin.is_empty()
            || shared
                .iter()
                .any(|p| p.rules.iter().any(|r| r.between(from_name, to_name)));
        if !connected {
            continue;
        }
        out.push(Link {
            from: from_name.clone(),
            to: to_name.clone(),
            policies: admin
                .iter()
                .chain(&shared)
                .map(|p| link_policy(p, from_name, to_name))
                .collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t1(name: &str) -> NamespacedName {
        NamespacedName::new("t1", name)
    }

    fn network(name: &str, policies: &[&str]) -> VirtualNetwork {
        network_in("t1", name, policies)
    }

    fn network_in(namespace: &str, name: &str, policies: &[&str]) -> VirtualNetwork {
        let api: trunkline_api::VirtualNetwork = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"networkPolicies": policies},
        }))
        .unwrap();
        crate::from_api::virtual_network(&api)
    }

    fn policy(name: &str, rules: serde_json::Value) -> VirtualNetworkPolicy {
        let api: trunkline_api::VirtualNetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
            "metadata": {"name": name, "namespace": "t1", "generation": 1},
            "spec": {"rules": rules},
        }))
        .unwrap();
        crate::from_api::virtual_network_policy(&api)
    }

    fn cluster_policy(name: &str, priority: u16, rules: serde_json::Value) -> VirtualNetworkPolicy {
        let api: trunkline_api::ClusterVirtualNetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "ClusterVirtualNetworkPolicy",
            "metadata": {"name": name, "generation": 1},
            "spec": {"priority": priority, "rules": rules},
        }))
        .unwrap();
        crate::from_api::cluster_virtual_network_policy(&api)
    }

    /// t1/app -> t2/dns on UDP 53, one way.
    fn shared_dns() -> VirtualNetworkPolicy {
        cluster_policy(
            "shared-dns",
            10,
            json!([{"action": "Allow", "protocol": "UDP", "ports": {"min": 53, "max": 53},
                    "source": {"namespace": "t1", "name": "app"},
                    "destination": {"namespace": "t2", "name": "dns"},
                    "direction": "OneWay"}]),
        )
    }

    fn ssh() -> VirtualNetworkPolicy {
        policy(
            "ssh",
            json!([{"action": "Allow", "protocol": "TCP", "ports": {"min": 22, "max": 22},
                    "source": "red", "destination": "blue"}]),
        )
    }

    #[test]
    fn a_policy_reads_its_rules() {
        let p = policy(
            "p",
            json!([
                {"action": "Deny", "protocol": "UDP", "ports": {"min": 53, "max": 54},
                 "source": "red", "destination": "blue", "direction": "OneWay"},
                {"action": "Pass", "source": "blue", "destination": "red"},
            ]),
        );
        assert_eq!(p.name(), NamespacedName::new("t1", "p"));
        assert_eq!(
            p.rules[0],
            NetworkRule {
                action: Action::Deny,
                protocol: Protocol::Udp,
                ports: Some(53..=54),
                source: t1("red"),
                destination: t1("blue"),
                both_ways: false,
            }
        );
        assert_eq!(p.rules[1].action, Action::Pass);
        assert!(p.rules[1].both_ways);
        assert!(p.rules[1].applies(&t1("red"), &t1("blue")));
        assert!(!p.rules[0].applies(&t1("blue"), &t1("red")));
        assert!(!p.is_cluster());
    }

    #[test]
    fn two_networks_naming_the_policy_are_linked_both_ways() {
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links(&networks, &[ssh()]);
        assert_eq!(links.len(), 2);
        let (to_red, to_blue) = (&links[0], &links[1]);
        assert_eq!(to_blue.from, NamespacedName::new("t1", "red"));
        assert_eq!(to_blue.to, NamespacedName::new("t1", "blue"));
        assert_eq!(to_blue.policies[0].policy, NamespacedName::new("t1", "ssh"));
        assert_eq!(to_blue.policies[0].rules.len(), 1);
        // Both ways by default: blue -> red has the rule too.
        assert_eq!(to_red.from, NamespacedName::new("t1", "blue"));
        assert_eq!(to_red.policies[0].rules.len(), 1);
        assert!(ssh().problems(&networks).is_empty());
    }

    #[test]
    fn no_link_unless_both_networks_name_the_policy() {
        // blue does not name it: no routes leak, and the policy says why.
        let networks = [network("red", &["ssh"]), network("blue", &[])];
        assert!(links(&networks, &[ssh()]).is_empty());
        assert_eq!(
            ssh().problems(&networks),
            [Problem::NotAttached {
                rule: 0,
                network: t1("blue")
            }]
        );
        // A missing network.
        let alone = [network("red", &["ssh"])];
        assert!(links(&alone, &[ssh()]).is_empty());
        assert_eq!(ssh().problems(&alone)[0].reason(), "NetworkNotFound");
        // Both name a policy that does not exist: nothing.
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        assert!(links(&networks, &[] as &[VirtualNetworkPolicy]).is_empty());
        // Both name a policy whose rules are about other networks: nothing.
        let other = policy(
            "ssh",
            json!([{"action": "Allow", "source": "red", "destination": "green"}]),
        );
        assert!(links(&networks, &[other]).is_empty());
    }

    #[test]
    fn a_one_way_rule_links_both_networks_but_rules_only_one_direction() {
        let one_way = policy(
            "ssh",
            json!([{"action": "Allow", "source": "red", "destination": "blue", "direction": "OneWay"}]),
        );
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links(&networks, &[one_way]);
        assert_eq!(links.len(), 2, "routes both ways: replies must come back");
        assert!(
            links[0].policies[0].rules.is_empty(),
            "blue -> red opens nothing"
        );
        assert_eq!(links[1].policies[0].rules.len(), 1);
    }

    #[test]
    fn policies_come_in_the_sending_networks_order() {
        let a = policy(
            "a",
            json!([{"action": "Pass", "source": "red", "destination": "blue"}]),
        );
        let b = policy(
            "b",
            json!([{"action": "Allow", "source": "red", "destination": "blue"}]),
        );
        let networks = [network("red", &["b", "a"]), network("blue", &["a", "b"])];
        let links = links(&networks, &[a, b]);
        let names = |l: &Link| -> Vec<String> {
            l.policies.iter().map(|p| p.policy.name.clone()).collect()
        };
        assert_eq!(names(&links[1]), ["b", "a"], "red's order");
        assert_eq!(names(&links[0]), ["a", "b"], "blue's order");
    }

    #[test]
    fn a_cluster_policy_links_networks_of_two_namespaces_without_their_consent() {
        let networks = [network_in("t1", "app", &[]), network_in("t2", "dns", &[])];
        let p = shared_dns();
        assert!(p.is_cluster());
        assert_eq!(p.name(), NamespacedName::new("", "shared-dns"));
        assert_eq!(p.meta.key.kind, Kind::ClusterVirtualNetworkPolicy);
        let links = links(&networks, std::slice::from_ref(&p));
        assert_eq!(links.len(), 2, "routes both ways: replies come back");
        let (to_dns, to_app) = (&links[0], &links[1]);
        assert_eq!(to_dns.from, t1("app"));
        assert_eq!(to_dns.to, NamespacedName::new("t2", "dns"));
        assert_eq!(to_dns.policies[0].rules.len(), 1);
        assert_eq!(to_dns.policies[0].label(), "shared-dns");
        assert!(to_app.policies[0].rules.is_empty(), "one way");
        assert!(p.problems(&networks).is_empty(), "no consent needed");
        // A network it names is missing: nothing, and it says so.
        assert!(super::links(&networks[..1], std::slice::from_ref(&p)).is_empty());
        let problems = p.problems(&networks[..1]);
        assert_eq!(problems[0].reason(), "NetworkNotFound");
        assert!(
            problems[0].to_string().contains("t2/dns"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_namespaced_policy_never_reaches_another_namespace() {
        // t1's policy names "dns", which exists only in t2: not found, and
        // the message points at the administrator's kind.
        let p = policy(
            "p",
            json!([{"action": "Allow", "source": "app", "destination": "dns"}]),
        );
        let networks = [
            network_in("t1", "app", &["p"]),
            network_in("t2", "dns", &["p"]),
        ];
        assert!(links(&networks, std::slice::from_ref(&p)).is_empty());
        let problems = p.problems(&networks);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].reason(), "NetworkNotFound");
        assert!(
            problems[0]
                .to_string()
                .contains("ClusterVirtualNetworkPolicy"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn cluster_policies_come_first_by_priority_then_the_senders_own() {
        let own = policy(
            "own",
            json!([{"action": "Allow", "source": "red", "destination": "blue"}]),
        );
        let admin = |name: &str, priority| {
            cluster_policy(
                name,
                priority,
                json!([{"action": "Pass",
                        "source": {"namespace": "t1", "name": "red"},
                        "destination": {"namespace": "t1", "name": "blue"}}]),
            )
        };
        let networks = [network("red", &["own"]), network("blue", &["own"])];
        let links = links(
            &networks,
            &[own, admin("b", 5), admin("a", 5), admin("first", 1)],
        );
        let names: Vec<String> = links[1].policies.iter().map(LinkPolicy::label).collect();
        assert_eq!(names, ["first", "a", "b", "t1/own"]);
    }
}
